//! The Daily Papers response parser: any body gives papers that keep the parser's promises
//! (at most one per item, each id once and a valid arXiv id, a title, white space normalised,
//! every field within its cap, no negative count, only web URLs of a sane length), or an
//! error saying what is wrong.

use paperboy::domain::{ArxivId, normalize_whitespace};
use paperboy::source::limits;
use paperboy::source::parse_daily_papers;
use serde::de::IgnoredAny;

fn normalised(text: &str) -> bool {
    normalize_whitespace(text) == text
}

fn web_url(u: &str) -> bool {
    u.len() <= limits::URL_BYTES
        && url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Within `max` characters, and an ellipsis where it was cut.
fn capped(text: &str, max: usize) -> bool {
    let n = text.chars().count();
    n <= max || (n == max + 1 && text.ends_with('\u{2026}'))
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
    // The body is one JSON array, and each of its items is at most one paper, each id once.
    let items: Vec<IgnoredAny> =
        serde_json::from_slice(body).expect("a list that parsed is one JSON array");
    assert!(papers.len() <= items.len());
    let mut ids = std::collections::HashSet::new();
    for p in &papers {
        assert_eq!(ArxivId::parse(p.id.as_str()).as_ref(), Ok(&p.id));
        assert!(ids.insert(p.id.as_str()), "{} twice", p.id.as_str());
        assert!(!p.title.is_empty() && normalised(&p.title), "{:?}", p.title);
        assert!(capped(&p.title, limits::TITLE_CHARS), "{:?}", p.title);
        assert!(normalised(&p.abstract_text));
        assert!(capped(&p.abstract_text, limits::ABSTRACT_CHARS));
        assert!(p.authors.len() <= limits::MAX_AUTHORS);
        assert!(p.ai_keywords.len() <= limits::KEYWORDS);
        for text in &p.authors {
            assert!(!text.is_empty() && normalised(text), "{text:?}");
            assert!(capped(text, limits::AUTHOR_NAME_CHARS), "{text:?}");
        }
        for text in &p.ai_keywords {
            assert!(!text.is_empty() && normalised(text), "{text:?}");
            assert!(capped(text, limits::KEYWORD_CHARS), "{text:?}");
        }
        for (text, max) in [
            (&p.ai_summary, limits::AI_SUMMARY_CHARS),
            (&p.organization, limits::ORGANIZATION_CHARS),
        ] {
            if let Some(text) = text {
                assert!(!text.is_empty() && normalised(text), "{text:?}");
                assert!(capped(text, max), "{text:?}");
            }
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
