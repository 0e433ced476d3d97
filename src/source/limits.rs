//! How much of what the source sends is taken: each field of a paper capped (text cut with an
//! ellipsis, a URL too long dropped: a cut URL is a broken link), and what makes an item or a
//! response absurd as a whole (skipped, or refused).
//!
//! The limits sit well above everything in the 548 recorded days (2024-05-27 to 2026-08-12,
//! 9,352 papers), so that no real paper is ever cut, and low enough that a paper at every cap
//! takes a few KB of an email. Measured there (characters after white space is normalised;
//! URLs and JSON in bytes), with the command below:
//!
//! | field                     | p50   | p99    | p99.9  | max    | limit           |
//! |---------------------------|-------|--------|--------|--------|-----------------|
//! | title                     | 75    | 125    | 146    | 175    | 300             |
//! | abstract (`summary`)      | 1,391 | 1,914  | 1,920  | 1,923  | 4,000           |
//! | `ai_summary`              | 204   | 307    | 995    | 1,606  | 4,000           |
//! | an author's name          | 11    | 21     | 28     | 55     | 100             |
//! | authors listed            | 7     | 64     | 313    | 664    | 10,000 (skip)   |
//! | `ai_keywords`, count      | 10    | 22     | 28     | 44     | 100             |
//! | a keyword                 | 19    | 42     | 53     | 73     | 150             |
//! | organization name         | 10    | 51     | 74     | 79     | 200             |
//! | `githubRepo`              | 39    | 66     | 90     | 110    | 2,048 (drop)    |
//! | `projectPage`             | 38    | 77     | 135    | 247    | 2,048 (drop)    |
//! | `thumbnail`               | 77    | 77     | 77     | 77     | 2,048 (drop)    |
//! | an item's JSON            | 5,968 | 15,064 | 49,573 | 96,528 | 1 MiB (skip)    |
//! | a response                | 92,280| 318,173|        | 358,838| 32 MiB (refuse) |
//!
//! (BENCHMARKS.md, "Field lengths of the source", has the script that prints these figures.) The authors are not cut to a count: the email says how many it leaves
//! out ("and 660 more"), and real papers have thousands (the largest arXiv author lists pass
//! 5,000); an item listing more than 10,000 is skipped instead. Ids are checked by
//! [`crate::domain::ArxivId::parse`].

use crate::domain::{normalize_whitespace, trim_words};

/// The longest title kept, in characters; longer ones are cut with an ellipsis.
pub const TITLE_CHARS: usize = 300;
/// The longest abstract kept, in characters (arXiv's own limit is 1,920).
pub const ABSTRACT_CHARS: usize = 4_000;
/// The longest AI summary kept, in characters.
pub const AI_SUMMARY_CHARS: usize = 4_000;
/// The longest author name kept, in characters.
pub const AUTHOR_NAME_CHARS: usize = 100;
/// An item listing more authors than this is skipped.
pub const MAX_AUTHORS: usize = 10_000;
/// The keywords kept (the first ones).
pub const KEYWORDS: usize = 100;
/// The longest keyword kept, in characters.
pub const KEYWORD_CHARS: usize = 150;
/// The longest organization name kept, in characters.
pub const ORGANIZATION_CHARS: usize = 200;
/// The longest URL kept, in bytes; a longer one is dropped (not cut).
pub const URL_BYTES: usize = 2_048;
/// An item whose JSON is longer than this is skipped.
pub const ITEM_BYTES: usize = 1024 * 1024;
/// A response longer than this is refused.
pub const RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// `raw` with its white space normalised, cut to `max` characters.
pub(super) fn text(raw: &str, max: usize) -> String {
    trim_words(&normalize_whitespace(raw), max)
}

/// Only absolute http(s) URLs of at most [`URL_BYTES`] are kept: anything else (javascript:,
/// data:, junk, a URL too long for a link) must never reach an href.
pub(super) fn web_url(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    let raw = raw.trim();
    if raw.len() > URL_BYTES {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url.to_string()).filter(|u| u.len() <= URL_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_of_a_sane_length_survive() {
        assert_eq!(web_url(Some("javascript:alert(1)".into())), None);
        assert_eq!(
            web_url(Some(" https://github.com/a/b ".into())).as_deref(),
            Some("https://github.com/a/b")
        );
        let long = format!("https://example.org/{}", "a".repeat(URL_BYTES));
        assert_eq!(web_url(Some(long)), None, "dropped, not cut");
        // Short as sent, too long once its non-ASCII letters are percent-encoded.
        let grows = format!("https://example.org/{}", "é".repeat(URL_BYTES / 3));
        assert!(grows.len() <= URL_BYTES);
        assert_eq!(web_url(Some(grows)), None);
    }

    #[test]
    fn text_is_normalised_then_cut() {
        assert_eq!(text(" a\n  b ", 10), "a b");
        let cut = text(&"word ".repeat(1000), TITLE_CHARS);
        assert!(cut.ends_with('…') && cut.chars().count() <= TITLE_CHARS + 1);
    }
}
