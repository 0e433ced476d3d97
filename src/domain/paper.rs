//! A paper as the digest needs it, and its arXiv identifier.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An arXiv identifier, in one of arXiv's two forms and nothing else:
/// - new style (since April 2007): `YYMM.NNNN` up to 1412, `YYMM.NNNNN` from 1501, such as
///   `2503.02130`;
/// - old style: `archive/YYMMNNN` or `archive.SUBJ/YYMMNNN`, such as `hep-th/9901001` or
///   `math.GT/0309136` (an archive is lowercase letters and hyphens, its subject class letters
///   and hyphens);
///
/// either with a version, `v2`. Only ASCII letters, digits, `.`, `-` and one `/` can pass:
/// an id goes into links (see [`ArxivId::hf_url`]) as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArxivId(String);

/// Longer than any arXiv id (`physics.acc-ph/0101001v12` is 25 characters).
const MAX_ID_LEN: usize = 40;

impl ArxivId {
    /// `raw` (white space around it ignored) if it is an arXiv id. The error shows the id
    /// escaped and cut short.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("empty arXiv id".into());
        }
        if s.len() > MAX_ID_LEN {
            return Err(format!(
                "{} is not an arXiv id ({} bytes long)",
                show_id(s),
                s.len()
            ));
        }
        let well_formed = match s.split_once('/') {
            Some((archive, number)) => old_style(archive, number),
            None => new_style(s),
        };
        if !well_formed {
            return Err(format!(
                "{} is not an arXiv id (YYMM.NNNNN or archive/YYMMNNN, with an optional vN)",
                show_id(s)
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// An id read back from the database, `None` (with a warning naming `what` holds it) if
    /// it is not an arXiv id: earlier versions stored any id made of URL-safe characters.
    /// Such an id is left out of what is read, never put in a link, and the rest is read.
    pub fn from_stored(raw: &str, what: &str) -> Option<Self> {
        Self::parse(raw)
            .map_err(|error| {
                tracing::warn!(what, %error, "a stored paper id is not an arXiv id; left out");
            })
            .ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The paper's page on Hugging Face.
    pub fn hf_url(&self) -> String {
        format!("https://huggingface.co/papers/{}", self.0)
    }

    /// The paper's abstract page on arXiv.
    pub fn arxiv_abs_url(&self) -> String {
        format!("https://arxiv.org/abs/{}", self.0)
    }

    /// The paper's PDF on arXiv.
    pub fn arxiv_pdf_url(&self) -> String {
        format!("https://arxiv.org/pdf/{}", self.0)
    }
}

/// An id that is not one, as a message may show it: escaped, at most 60 characters of it.
pub fn show_id(raw: &str) -> String {
    let shown: String = raw.chars().take(60).collect();
    if shown.len() < raw.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

/// `s` is made of ASCII digits only, and there are `n` of them.
fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYMM` with a month from 01 to 12.
fn year_month(s: &str) -> Option<u32> {
    let yymm: u32 = s.parse().ok().filter(|_| digits(s, 4))?;
    (1..=12).contains(&(yymm % 100)).then_some(yymm)
}

/// `s` without its version suffix (`v` and a number from 1), or `s` itself if it has none;
/// `None` for a malformed one.
fn without_version(s: &str) -> Option<&str> {
    match s.rsplit_once('v') {
        Some((head, v)) => {
            let ok = !v.is_empty() && v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit());
            (ok && !v.starts_with('0')).then_some(head)
        }
        None => Some(s),
    }
}

/// `YYMM.NNNN` (April 2007 to December 2014) or `YYMM.NNNNN` (from January 2015), maybe with
/// a version.
fn new_style(s: &str) -> bool {
    let Some((yymm, number)) = without_version(s).and_then(|s| s.split_once('.')) else {
        return false;
    };
    match year_month(yymm) {
        Some(704..=1412) => digits(number, 4),
        Some(1501..) => digits(number, 5),
        _ => false,
    }
}

/// `archive/YYMMNNN` or `archive.SUBJ/YYMMNNN`, maybe with a version.
fn old_style(archive: &str, number: &str) -> bool {
    let (archive, subject) = match archive.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (archive, None),
    };
    // Letters with single hyphens between them: "hep-th", "cond-mat", "q-bio".
    let name = |s: &str, letter: fn(&u8) -> bool| {
        !s.is_empty()
            && s.split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| letter(&b)))
    };
    let Some(number) = without_version(number) else {
        return false;
    };
    name(archive, u8::is_ascii_lowercase)
        && subject.is_none_or(|s| name(s, u8::is_ascii_alphabetic))
        && digits(number, 7)
        && year_month(&number[..4]).is_some()
}

impl TryFrom<String> for ArxivId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ArxivId> for String {
    fn from(value: ArxivId) -> Self {
        value.0
    }
}

impl fmt::Display for ArxivId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One paper of a daily list. Text fields hold the feed's text as is (white space normalised);
/// escaping is the renderer's job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    pub id: ArxivId,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub authors: Vec<String>,
    pub upvotes: i64,
    pub num_comments: i64,
    #[serde(default)]
    pub ai_summary: Option<String>,
    #[serde(default)]
    pub ai_keywords: Vec<String>,
    #[serde(default)]
    pub github_repo: Option<String>,
    #[serde(default)]
    pub github_stars: Option<i64>,
    #[serde(default)]
    pub project_page: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub thumbnail: Option<String>,
    #[serde(default)]
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `papers` by id, shared: a pass renders every email from one copy of each paper (and its
/// cards are told apart by that copy's address).
pub fn papers_by_id<'a>(
    papers: impl IntoIterator<Item = &'a Paper>,
) -> std::collections::HashMap<ArxivId, std::sync::Arc<Paper>> {
    papers
        .into_iter()
        .map(|p| (p.id.clone(), std::sync::Arc::new(p.clone())))
        .collect()
}

/// Collapses every run of white space (including arXiv's "\n  " line breaks) into one space.
pub fn normalize_whitespace(s: &str) -> String {
    join_words(s.split_whitespace())
}

/// The non-empty `words`, one space between each.
pub fn join_words<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for word in words.filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arxiv_ids_accept_new_and_old_style_and_refuse_junk() {
        for ok in [
            "2503.02130",
            "2503.02130v12",
            " 2401.00001 ",
            "0704.0001",
            "1412.9999v3",
            "hep-th/9901001",
            "hep-th/9901001v2",
            "math.GT/0309136",
            "cond-mat/0501234v1",
            "physics.acc-ph/0101001",
            "q-bio/0401001",
        ] {
            assert!(ArxivId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../../../etc/passwd",
            "2503 02130",
            "\"><script>",
            "2503.0213",
            "2503.021300",
            "1412.12345",
            "1501.1234",
            "2513.02130",
            "2500.02130",
            "2503.02130v",
            "2503.02130v0",
            "2503.02130V2",
            "2503.02130v2v3",
            "2503.02130/x",
            "2503_02130",
            "Hep-th/9901001",
            "hep-/9901001",
            "hep--th/9901001",
            "hep-th/990100",
            "hep-th/99010011",
            "hep-th/9913001",
            "hep-th/9901001/",
            "math.G.T/0309136",
            "math./0309136",
            "/9901001",
            "abc/12é45",
            "2503.0213\u{661}",
            "javascript:alert(1)",
        ] {
            assert!(ArxivId::parse(bad).is_err(), "{bad:?}");
        }
        let long = "1".repeat(1_000_000);
        let err = ArxivId::parse(&long).unwrap_err();
        assert!(err.len() < 200, "the message shows the id cut short: {err}");
        let err = ArxivId::parse("../../../etc/passwd").unwrap_err();
        assert!(
            err.contains("\"../../../etc/passwd\" is not an arXiv id"),
            "{err}"
        );
    }

    #[test]
    fn links_are_made_of_ids() {
        let id = ArxivId::parse("hep-th/9901001v2").unwrap();
        assert_eq!(
            id.hf_url(),
            "https://huggingface.co/papers/hep-th/9901001v2"
        );
        assert_eq!(id.arxiv_abs_url(), "https://arxiv.org/abs/hep-th/9901001v2");
        assert_eq!(id.arxiv_pdf_url(), "https://arxiv.org/pdf/hep-th/9901001v2");
    }

    #[test]
    fn whitespace_is_normalised() {
        assert_eq!(
            normalize_whitespace("  A\n  title\twith   gaps "),
            "A title with gaps"
        );
    }
}
