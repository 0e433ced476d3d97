//! Topics: keyword phrases matched as whole words, with excludes and thresholds.

mod query;
mod rank;
mod settings;
mod text;

pub use query::{Query, QueryError};
pub use rank::{Scorer, ScoringTerm};
pub use settings::{TopicSettings, build_filter, build_topics};
pub use text::{Field, PaperText, Phrase, is_phrase, tokenize, words};

use crate::domain::Paper;

/// A compiled topic, ready to test papers against.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub name: String,
    pub keywords: Vec<Phrase>,
    /// A query beside the keywords: a paper matching either is in.
    pub query: Option<Query>,
    /// Followed authors and organisations: their papers are in whatever their words.
    pub authors: Vec<Phrase>,
    pub organizations: Vec<Phrase>,
    pub exclude: Vec<Phrase>,
    pub min_upvotes: i64,
    pub max_papers: usize,
    pub sort: Sort,
}

/// How a topic orders its papers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Most upvoted first.
    #[default]
    Upvotes,
    /// Best BM25 match of the topic's words (title, AI keywords, abstract), with upvotes.
    Relevance,
}

impl Topic {
    /// A paper matches when any keyword occurs (whole words, case-insensitive) in its title,
    /// abstract or AI keywords or the query matches it, no exclude occurs, and it has at least
    /// `min_upvotes`.
    pub fn matches(&self, paper: &Paper, text: &PaperText) -> bool {
        self.follows(text)
            || (paper.upvotes >= self.min_upvotes
                && (self.keywords.iter().any(|k| text.contains(k))
                    || self.query.as_ref().is_some_and(|q| q.matches(paper, text)))
                && !self.exclude.iter().any(|k| text.contains(k)))
    }

    /// A followed author or organisation wrote it (names matched as whole words).
    pub fn follows(&self, text: &PaperText) -> bool {
        self.authors
            .iter()
            .any(|a| text.contains_words(Some(Field::Author), a.words(), false))
            || self
                .organizations
                .iter()
                .any(|o| text.contains_words(Some(Field::Org), o.words(), false))
    }
}

/// A subscriber's own limits, on top of their topics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriberFilter {
    /// Papers matching this are never sent to the subscriber.
    pub exclude: Option<Query>,
    pub min_upvotes: i64,
    /// At most this many papers in one email (over all topics).
    pub max_papers: Option<usize>,
}

impl SubscriberFilter {
    pub fn admits(&self, paper: &Paper, text: &PaperText) -> bool {
        paper.upvotes >= self.min_upvotes
            && !self
                .exclude
                .as_ref()
                .is_some_and(|q| q.matches(paper, text))
    }
}
