//! Topics: keyword phrases matched as whole words, with excludes and thresholds.

mod text;

pub use text::{PaperText, Phrase, tokenize};

use crate::domain::Paper;

/// A compiled topic, ready to test papers against.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub name: String,
    pub keywords: Vec<Phrase>,
    pub exclude: Vec<Phrase>,
    pub min_upvotes: i64,
    pub max_papers: usize,
}

impl Topic {
    /// A paper matches when any keyword occurs (whole words, case-insensitive) in its title,
    /// abstract or AI keywords, no exclude does, and it has at least `min_upvotes`.
    pub fn matches(&self, paper: &Paper, text: &PaperText) -> bool {
        paper.upvotes >= self.min_upvotes
            && self.keywords.iter().any(|k| text.contains(k))
            && !self.exclude.iter().any(|k| text.contains(k))
    }
}
