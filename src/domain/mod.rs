//! Domain types parsed once at the edges: papers, arXiv ids, subscribers, addresses, and
//! the key that is a subscriber's one identity; and text cut to a length.

mod cut;
mod paper;
mod subscriber;
mod subscriber_key;

pub use cut::trim_words;
pub use paper::{ArxivId, Paper, join_words, normalize_whitespace, papers_by_id, show_id};
pub use subscriber::{EmailAddress, Subscriber};
pub use subscriber_key::SubscriberKey;
