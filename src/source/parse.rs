//! Parsing the Daily Papers JSON (a bare array of items) into domain papers.

use serde::Deserialize;

use crate::domain::{ArxivId, Paper, normalize_whitespace};

#[derive(Deserialize)]
struct Item {
    paper: RawPaper,
    #[serde(rename = "numComments", default)]
    num_comments: i64,
    #[serde(default)]
    thumbnail: Option<String>,
    #[serde(default)]
    organization: Option<RawOrg>,
}

#[derive(Deserialize)]
struct RawPaper {
    id: String,
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    authors: Vec<RawAuthor>,
    #[serde(default)]
    upvotes: i64,
    #[serde(rename = "publishedAt", default)]
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    ai_summary: Option<String>,
    #[serde(default)]
    ai_keywords: Option<Vec<String>>,
    #[serde(rename = "githubRepo", default)]
    github_repo: Option<String>,
    #[serde(rename = "githubStars", default)]
    github_stars: Option<i64>,
    #[serde(rename = "projectPage", default)]
    project_page: Option<String>,
    #[serde(default)]
    organization: Option<RawOrg>,
}

#[derive(Deserialize)]
struct RawAuthor {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hidden: bool,
}

#[derive(Deserialize)]
struct RawOrg {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fullname: Option<String>,
}

/// Only absolute http(s) URLs from the feed are kept: anything else (javascript:, data:, junk)
/// must never reach an href.
fn web_url(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let url = url::Url::parse(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

fn non_empty(raw: Option<String>) -> Option<String> {
    raw.map(|s| normalize_whitespace(&s))
        .filter(|s| !s.is_empty())
}

impl Item {
    fn into_paper(self) -> Result<Paper, String> {
        let p = self.paper;
        let id = ArxivId::parse(&p.id)?;
        let title = normalize_whitespace(&p.title);
        if title.is_empty() {
            return Err(format!("paper {id} has an empty title"));
        }
        let org = p
            .organization
            .or(self.organization)
            .and_then(|o| non_empty(o.fullname).or_else(|| non_empty(o.name)));
        Ok(Paper {
            id,
            title,
            abstract_text: normalize_whitespace(&p.summary),
            authors: p
                .authors
                .into_iter()
                .filter(|a| !a.hidden)
                .map(|a| normalize_whitespace(&a.name))
                .filter(|n| !n.is_empty())
                .collect(),
            upvotes: p.upvotes.max(0),
            num_comments: self.num_comments.max(0),
            ai_summary: non_empty(p.ai_summary),
            ai_keywords: p
                .ai_keywords
                .unwrap_or_default()
                .iter()
                .map(|k| normalize_whitespace(k))
                .filter(|k| !k.is_empty())
                .collect(),
            github_repo: web_url(p.github_repo),
            github_stars: p.github_stars.filter(|s| *s >= 0),
            project_page: web_url(p.project_page),
            organization: org,
            thumbnail: web_url(self.thumbnail),
            published_at: p.published_at,
        })
    }
}

/// Parses one response body. The error names the JSON path and position of the first problem.
pub fn parse_daily_papers(body: &[u8]) -> Result<Vec<Paper>, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let items: Vec<Item> = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("at {path}: {inner}")
        }
    })?;
    // The list is the whole body: anything but white space after it is not a response.
    de.end().map_err(|e| format!("after the list: {e}"))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| item.into_paper().map_err(|e| format!("at [{i}]: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_item_parses_and_optional_fields_stay_empty() {
        let body = br#"[{"paper":{"id":"2401.00001","title":" A\n  title ","summary":"S",
            "authors":[{"name":"Ada","hidden":false},{"name":"Hidden","hidden":true}],
            "upvotes":3,"unknown":1},"numComments":2}]"#;
        let papers = parse_daily_papers(body).unwrap();
        assert_eq!(papers.len(), 1);
        let p = &papers[0];
        assert_eq!(p.title, "A title");
        assert_eq!(p.authors, vec!["Ada"]);
        assert_eq!((p.upvotes, p.num_comments), (3, 2));
        assert!(p.ai_summary.is_none() && p.github_repo.is_none());
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let body = br#"[{"paper":{"id":"1","title":"t","upvotes":1}},{"paper":{"id":"2","title":"t","upvotes":"many"}}]"#;
        let err = parse_daily_papers(body).unwrap_err();
        assert!(err.contains("[1].paper.upvotes"), "{err}");
        let err = parse_daily_papers(b"[{\"paper\":{\"id\":\"1\"").unwrap_err();
        assert!(err.contains("EOF"), "{err}");
        assert!(parse_daily_papers(b"<html>").is_err());
    }

    #[test]
    fn anything_but_white_space_after_the_list_is_refused() {
        let err = parse_daily_papers(b"[]\"githubRepo\"").unwrap_err();
        assert!(err.contains("after the list: trailing characters"), "{err}");
        assert!(parse_daily_papers(b"[]{}").is_err());
        assert!(parse_daily_papers(b" [] \r\n").unwrap().is_empty());
    }

    #[test]
    fn only_web_urls_survive() {
        assert_eq!(web_url(Some("javascript:alert(1)".into())), None);
        assert_eq!(
            web_url(Some("https://github.com/a/b".into())).as_deref(),
            Some("https://github.com/a/b")
        );
    }
}
