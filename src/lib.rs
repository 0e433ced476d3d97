//! paperboy: a daemon that emails a personalised daily digest of new machine-learning papers.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery_policy;
pub mod digest;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod metrics;
mod panic_text;
pub mod render;
pub mod schedule;
pub mod source;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_rng;
pub mod topics;
