//! Jobs: planning a digest date and delivering its emails.

pub mod alerts;
mod deliver;
mod plan;
mod renderer;
mod run;

pub use deliver::{DeliverOptions, RelayLimits, backoff, deliver};
pub use plan::{PlanOutcome, plan};
pub use renderer::renderer;
pub use run::{RunOptions, RunOutcome, cli_deliver_options, run_date, settle_open_runs};

use chrono::{NaiveDate, Utc};

use crate::config::{Config, DigestDay};
use crate::source::FetchError;

/// What one run of a digest date did; the counts cover every delivery row of the date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub digest_date: Option<NaiveDate>,
    pub papers_fetched: usize,
    /// Papers of earlier lists that arrived after those lists were read.
    pub late_papers: usize,
    pub subscribers: usize,
    pub planned: u64,
    pub sent: i64,
    /// Sent by this run (the others were sent by an earlier one).
    pub sent_now: u64,
    pub skipped: i64,
    pub failed: i64,
    /// Still pending after a transient error: tried again by the next run.
    pub deferred: i64,
}

impl RunReport {
    pub fn fill_counts(&mut self, c: &crate::store::StatusCounts) {
        self.sent = c.sent;
        self.skipped = c.skipped;
        self.failed = c.failed;
        self.deferred = c.pending + c.sending;
    }
}

/// The date a run sends when none is given: yesterday or today in the schedule's time zone.
pub fn default_digest_date(cfg: &Config, now: chrono::DateTime<Utc>) -> NaiveDate {
    let today = now.with_timezone(&cfg.timezone).date_naive();
    match cfg.digest_day {
        DigestDay::Today => today,
        DigestDay::Yesterday => today.pred_opt().unwrap_or(today),
    }
}

/// The API has no list for a date after today's in UTC (the earliest "today" it knows).
pub fn check_not_future(date: NaiveDate, now: chrono::DateTime<Utc>) -> Result<(), FetchError> {
    let today = now.date_naive();
    if date > today {
        return Err(FetchError::Future { date, today });
    }
    Ok(())
}
