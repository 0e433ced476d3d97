//! How deliveries are sent: parallel sessions, relay limits, retries of transient failures.
//!
//! A plain settings type at the bottom of the crate: config builds it and jobs follows it, and
//! jobs already imports config, so it lives in neither.

use std::time::Duration;

/// How deliveries are sent: parallel sessions, relay limits, retries of transient failures.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Parallel SMTP sessions, each a long-lived connection.
    pub concurrency: usize,
    /// Threads that render and send (0: automatic, see `worker_threads`); read at start.
    pub threads: usize,
    /// Relay limits; 0 for none.
    pub max_per_second: u32,
    pub max_per_hour: u32,
    /// Attempts of one delivery before it is recorded failed.
    pub max_attempts: u32,
    /// Backoff after a transient failure: retry_base, doubling, at most retry_max, jittered.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A delivery still failing this long after it was planned is recorded failed.
    pub give_up_after: Duration,
    /// How long a claimed delivery stays with its sender before another may take it over.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            concurrency: 4,
            threads: 0,
            max_per_second: 0,
            max_per_hour: 0,
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
            give_up_after: Duration::from_secs(12 * 3600),
            lease: Duration::from_secs(5 * 60),
        }
    }
}

impl DeliveryPolicy {
    /// The runtime's worker threads for `cpus` processors: `threads` where set, else one
    /// fewer than the processors, at least one. The mail server and the database often run
    /// on the same machine, and one of them (a sink, a relay's smtpd) works on one core:
    /// all cores busy rendering made it wait for its turn on one.
    pub fn worker_threads(&self, cpus: usize) -> usize {
        match self.threads {
            0 => cpus.saturating_sub(1).max(1),
            n => n,
        }
    }

    /// Whether the relay's limits (`max_per_second`, `max_per_hour`) are set.
    pub fn rate_limited(&self) -> bool {
        self.max_per_second > 0 || self.max_per_hour > 0
    }
}
