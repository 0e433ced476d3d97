//! The database: papers, daily lists and the delivery ledger behind one Store API, on SQLite
//! (embedded, the default) or PostgreSQL (shared by any number of instances).

/// Runs `$body` with `$pool` bound to the backend's pool (the body is compiled for each).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

mod backends;
mod connect;
mod explain;
mod papers;
mod queue;
mod records;
mod sql;
mod url;

pub use connect::Store;
pub use queue::PlanLock;
pub use url::DatabaseUrl;

use crate::digest::Digest;
use crate::domain::{ArxivId, SubscriberKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The causes are part of the message (and not chained as sources, which would print
    // them twice).
    #[error("opening the database {url}: {cause}")]
    Open {
        url: DatabaseUrl,
        cause: sqlx::Error,
    },
    /// The first connection to a PostgreSQL server failed: where it went, and why.
    #[error("opening the database {url}: connecting to {server}: {cause}")]
    Connect {
        url: DatabaseUrl,
        server: String,
        cause: String,
    },
    #[error("migrating the database {url}: {cause}")]
    Migrate {
        url: DatabaseUrl,
        cause: sqlx::migrate::MigrateError,
    },
    #[error("database query ({what}): {cause}")]
    Query {
        what: &'static str,
        cause: sqlx::Error,
    },
    #[error("the database holds a row it cannot read ({what}): {message}")]
    Corrupt { what: &'static str, message: String },
}

/// The ledger's states; see migrations for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Sending,
    Sent,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }
}

/// A delivery to plan: one subscriber, one date.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub subscriber: SubscriberKey,
    pub message_id: String,
    pub digest: Digest,
    pub status: DeliveryStatus,
    pub note: Option<String>,
    /// Not to be sent before this (the subscriber's own delivery time).
    pub not_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// A claimed delivery, ready to render and send.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub subscriber: SubscriberKey,
    pub digest_date: chrono::NaiveDate,
    pub message_id: String,
    pub digest: Digest,
    pub attempts: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// What went wrong at the previous attempt, if any.
    pub last_error: Option<String>,
    /// This claim's token: only its holder may record the outcome.
    pub claim_token: String,
    /// Whether the subscriber had unsubscribed when the row was claimed.
    pub opted_out: bool,
}

/// The outcome of a claimed delivery, to record (in batches: see [`Store::finish_many`]).
#[derive(Debug, Clone)]
pub struct Finish {
    pub id: i64,
    pub claim_token: String,
    pub status: DeliveryStatus,
    pub smtp_reply: Option<String>,
    pub error: Option<String>,
    /// For a row going back to pending: not before this.
    pub retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Finish {
    pub fn new(d: &Delivery, status: DeliveryStatus) -> Self {
        Self {
            id: d.id,
            claim_token: d.claim_token.clone(),
            status,
            smtp_reply: None,
            error: None,
            retry_at: None,
        }
    }
}

/// How many deliveries of a date are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// (subscriber, arXiv id) pairs already sent or on their way.
pub type SentPairs = std::collections::HashSet<(SubscriberKey, ArxivId)>;

/// Which deliveries `paperboy history` lists.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub date: Option<chrono::NaiveDate>,
    pub subscriber: Option<SubscriberKey>,
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
}

/// One delivery as `paperboy history` shows it.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub digest_date: chrono::NaiveDate,
    pub subscriber: SubscriberKey,
    pub status: String,
    pub attempts: i64,
    pub papers: Vec<String>,
    pub message_id: String,
    pub smtp_reply: Option<String>,
    pub error: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A run of one digest date.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub digest_date: chrono::NaiveDate,
    pub tick_at: Option<chrono::DateTime<chrono::Utc>>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// running, done, skipped or failed.
    pub status: String,
    pub attempts: i64,
    pub papers: i64,
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
    pub deferred: i64,
    pub error: Option<String>,
}
