//! The topic query parser: any text parses into a query whose terms all hold words, which
//! parentheses leave as it is and NOT negates, and which matches papers without failing; or
//! into an error whose column lies in the text (or just after it).

use std::sync::OnceLock;

use paperboy::domain::Paper;
use paperboy::source::parse_daily_papers;
use paperboy::topics::{PaperText, Query};

/// A recorded day's papers, each with its text as matching reads it.
fn papers() -> &'static [(Paper, PaperText)] {
    static PAPERS: OnceLock<Vec<(Paper, PaperText)>> = OnceLock::new();
    PAPERS.get_or_init(|| {
        let day = include_bytes!("../../tests/fixtures/hf/2026-04-10.json");
        let papers = parse_daily_papers(day).expect("the recorded day parses");
        papers
            .into_iter()
            .map(|p| {
                let text = PaperText::new(&p);
                (p, text)
            })
            .collect()
    })
}

fn terms_hold_words(q: &Query) {
    match q {
        Query::Term { words, .. } => {
            assert!(
                !words.is_empty() && words.iter().all(|w| !w.is_empty()),
                "{q:?}"
            )
        }
        Query::Not(inner) => terms_hold_words(inner),
        Query::And(parts) | Query::Or(parts) => {
            assert!(parts.len() >= 2, "{q:?}");
            parts.iter().for_each(terms_hold_words);
        }
        Query::HasRepo(_) | Query::Number { .. } => {}
    }
}

/// `wrapped` is `expected`, unless the wrapping nested the query too deep.
fn same_or_too_deep(wrapped: &str, expected: &Query) {
    match Query::parse(wrapped) {
        Ok(q) => assert_eq!(&q, expected, "{wrapped:?}"),
        Err(e) => assert!(e.message.contains("nested"), "{wrapped:?}: {e}"),
    }
}

/// The property, for one input (as the fuzz target and the regression tests give it).
pub fn check(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let q = match Query::parse(src) {
        Ok(q) => q,
        Err(e) => {
            let end = src.chars().count() + 1;
            assert!((1..=end).contains(&e.column), "{src:?}: {e}");
            assert!(!e.message.is_empty());
            return;
        }
    };
    terms_hold_words(&q);
    same_or_too_deep(&format!("({src})"), &q);
    same_or_too_deep(&format!("NOT ({src})"), &Query::Not(Box::new(q.clone())));
    for (paper, text) in papers() {
        q.matches(paper, text);
    }
}
