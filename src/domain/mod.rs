//! Domain types parsed once at the edges: papers, arXiv ids, subscribers, addresses.

mod paper;
mod subscriber;

pub use paper::{ArxivId, Paper, normalize_whitespace};
pub use subscriber::{EmailAddress, Subscriber};
