//! The Daily Papers response parser: any body gives papers that keep the parser's promises
//! (one per item, a valid id, a title, white space normalised, no negative count, only web
//! URLs), or an error saying what is wrong.

use paperboy::domain::{ArxivId, normalize_whitespace};
use paperboy::source::parse_daily_papers;
use serde::de::IgnoredAny;

fn normalised(text: &str) -> bool {
    normalize_whitespace(text) == text
}

fn web_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// The property, for one input (as the fuzz target and the regression tests give it).
pub fn check(body: &[u8]) {
    let papers = match parse_daily_papers(body) {
        Ok(papers) => papers,
        Err(e) => {
            assert!(!e.trim().is_empty(), "an error that says nothing");
            return;
        }
    };
    // The body is one JSON array, and each of its items is one paper.
    let items: Vec<IgnoredAny> =
        serde_json::from_slice(body).expect("a list that parsed is one JSON array");
    assert_eq!(papers.len(), items.len());
    for p in &papers {
        assert_eq!(ArxivId::parse(p.id.as_str()).as_ref(), Ok(&p.id));
        assert!(!p.title.is_empty() && normalised(&p.title), "{:?}", p.title);
        assert!(normalised(&p.abstract_text));
        for text in p.authors.iter().chain(&p.ai_keywords) {
            assert!(!text.is_empty() && normalised(text), "{text:?}");
        }
        for text in [&p.ai_summary, &p.organization].into_iter().flatten() {
            assert!(!text.is_empty() && normalised(text), "{text:?}");
        }
        assert!(p.upvotes >= 0 && p.num_comments >= 0);
        assert!(p.github_stars.is_none_or(|s| s >= 0));
        for u in [&p.github_repo, &p.project_page, &p.thumbnail]
            .into_iter()
            .flatten()
        {
            assert!(web_url(u), "{u:?}");
        }
    }
}
