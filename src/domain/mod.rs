//! Domain types parsed once at the edges: papers, arXiv ids, subscribers, addresses.

mod paper;
mod subscriber;

pub use paper::{ArxivId, Paper, join_words, normalize_whitespace, papers_by_id};
pub use subscriber::{EmailAddress, Subscriber};
