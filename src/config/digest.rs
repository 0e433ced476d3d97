//! `[digest]`: what an email shows (abstracts or AI summaries, how much of them, thumbnails)
//! and where the operator's templates are.

use std::path::PathBuf;

use super::raw::{RawDigest, non_empty_path};

/// The text shown under each paper's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextChoice {
    Abstract,
    AiSummary,
}

/// What one email shows, and the templates that show it.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub text: TextChoice,
    pub text_max_chars: usize,
    pub max_authors: usize,
    pub send_empty: bool,
    pub templates_dir: Option<PathBuf>,
    /// Show each paper's thumbnail (an external image); off by default.
    pub thumbnails: bool,
}

pub(super) fn validate(raw: RawDigest, problems: &mut Vec<String>) -> DigestConfig {
    let text = match raw.text.as_str() {
        "abstract" => TextChoice::Abstract,
        "ai_summary" => TextChoice::AiSummary,
        other => {
            problems.push(format!(
                "digest.text: {other:?} is neither \"abstract\" nor \"ai_summary\""
            ));
            TextChoice::Abstract
        }
    };
    DigestConfig {
        text,
        text_max_chars: raw.text_max_chars,
        max_authors: raw.max_authors.max(1),
        send_empty: raw.send_empty,
        templates_dir: non_empty_path(&raw.templates_dir),
        thumbnails: raw.thumbnails,
    }
}
