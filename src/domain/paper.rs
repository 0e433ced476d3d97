//! A paper as the digest needs it, and its arXiv identifier.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An arXiv identifier such as `2503.02130` or `hep-th/9901001v2`: non-empty, printable ASCII,
/// no white space and nothing that would need escaping in a URL path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArxivId(String);

impl ArxivId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("empty arXiv id".into());
        }
        if s.len() > 64 {
            return Err(format!("arXiv id too long ({} characters)", s.len()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_')))
        {
            return Err(format!("arXiv id {s:?} contains {c:?}"));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

impl Paper {
    /// The paper's page on Hugging Face.
    pub fn hf_url(&self) -> String {
        format!("https://huggingface.co/papers/{}", self.id)
    }

    pub fn arxiv_abs_url(&self) -> String {
        format!("https://arxiv.org/abs/{}", self.id)
    }

    pub fn arxiv_pdf_url(&self) -> String {
        format!("https://arxiv.org/pdf/{}", self.id)
    }
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
        assert!(ArxivId::parse("2503.02130").is_ok());
        assert!(ArxivId::parse("hep-th/9901001v2").is_ok());
        assert!(ArxivId::parse("").is_err());
        assert!(ArxivId::parse("2503 02130").is_err());
        assert!(ArxivId::parse("\"><script>").is_err());
    }

    #[test]
    fn whitespace_is_normalised() {
        assert_eq!(
            normalize_whitespace("  A\n  title\twith   gaps "),
            "A title with gaps"
        );
    }
}
