//! A paper as the templates see it under a topic: its fields, its text chosen and cut, its
//! authors shortened, and the topic's words marked in its title and text.

use serde::Serialize;

use super::highlight::{Part, highlight};
use crate::config::{DigestConfig, TextChoice};
use crate::domain::{Paper, trim_words};
use crate::topics::{Field, ScoringTerm};

#[derive(Serialize)]
pub(super) struct PaperView {
    /// The title in pieces, the topic's words marked ("why this paper").
    title_parts: Vec<Part>,
    /// The same for the text shown.
    text_parts: Vec<Part>,
    thumbnail: Option<String>,
    id: String,
    title: String,
    url: String,
    authors: String,
    organization: Option<String>,
    upvotes: i64,
    comments: i64,
    text: String,
    arxiv_abs: String,
    arxiv_pdf: String,
    github_repo: Option<String>,
    github_name: Option<String>,
    github_stars: Option<i64>,
    project_page: Option<String>,
}

impl PaperView {
    /// `p` as templates see it under the topic of `terms`, its text cut to `chars` (0: whole).
    pub fn new(p: &Paper, terms: &[ScoringTerm], opts: &DigestConfig, chars: usize) -> Self {
        let text = match opts.text {
            TextChoice::AiSummary => p.ai_summary.as_deref().unwrap_or(&p.abstract_text),
            TextChoice::Abstract => &p.abstract_text,
        };
        let text = trim_words(text, chars);
        Self {
            id: p.id.to_string(),
            title: p.title.clone(),
            url: p.id.hf_url(),
            authors: shorten_authors(&p.authors, opts.max_authors),
            organization: p.organization.clone(),
            upvotes: p.upvotes,
            comments: p.num_comments,
            title_parts: highlight(&p.title, terms, Field::Title),
            text_parts: highlight(&text, terms, Field::Abstract),
            text,
            thumbnail: p.thumbnail.clone().filter(|_| opts.thumbnails),
            arxiv_abs: p.id.arxiv_abs_url(),
            arxiv_pdf: p.id.arxiv_pdf_url(),
            github_repo: p.github_repo.clone(),
            github_name: p.github_repo.as_deref().map(repo_name),
            github_stars: p.github_stars,
            project_page: p.project_page.clone(),
        }
    }
}

/// "A, B, C, D and 12 more" once there are more than `max` authors.
pub fn shorten_authors(authors: &[String], max: usize) -> String {
    match authors.len() {
        0 => String::new(),
        n if n <= max => match authors {
            [only] => only.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        },
        n => format!("{} and {} more", authors[..max].join(", "), n - max),
    }
}

/// "owner/repo" for a GitHub URL; the URL itself otherwise.
fn repo_name(url: &str) -> String {
    url.strip_prefix("https://github.com/")
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("A{i}")).collect()
    }

    #[test]
    fn authors_are_shortened() {
        assert_eq!(shorten_authors(&names(1), 3), "A1");
        assert_eq!(shorten_authors(&names(3), 3), "A1, A2 and A3");
        assert_eq!(shorten_authors(&names(15), 3), "A1, A2, A3 and 12 more");
    }
}
