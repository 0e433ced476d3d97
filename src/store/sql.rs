//! The SQL behind the Store, written once for both backends: `$N` placeholders (SQLite reads
//! them too), SQL both dialects share, and `on_pool!` expanding each body for the backend in
//! use. Only the claim differs: PostgreSQL locks the rows it takes with FOR UPDATE SKIP
//! LOCKED, so instances sharing the database never claim the same row and never wait for each
//! other; SQLite has one writer at a time, which serialises claims by itself.
//!
//! SQLite: WAL mode, a busy timeout, synchronous=FULL. PostgreSQL: a pool per process; the
//! migrator holds an advisory lock, so instances starting together migrate once.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    Delivery, DeliveryStatus, HistoryFilter, HistoryRow, NewDelivery, RunRecord, SentPairs,
    StatusCounts, StoreError,
};
use crate::config::redact_url;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The advisory lock that serialises planning across the instances sharing a PostgreSQL
/// database ("paperboy" in ASCII).
const PLAN_LOCK_KEY: i64 = 0x7061_7065_7262_6f79;

/// Rows per multi-row INSERT when planning (10 binds a row: well under either backend's limit).
const PLAN_CHUNK: usize = 500;

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
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
    pub retry_at: Option<DateTime<Utc>>,
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

/// Held while a date is planned: with PostgreSQL, a session advisory lock that other
/// instances wait for, so that the read of what was sent and the insert of the new rows are
/// not interleaved with another plan. Dropping it closes the connection, which releases the
/// lock even on an error path.
pub struct PlanLock {
    conn: Option<PoolConnection<Postgres>>,
}

impl PlanLock {
    /// Lets the next instance plan. (The connection is closed, not pooled: simpler than
    /// proving the lock was released on every path.)
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PLAN_LOCK_KEY)
                .execute(&mut *conn)
                .await;
        }
    }
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |cause| StoreError::Query { what, cause }
}

fn corrupt_json(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

/// `$first, $first+1, …` for `n` values.
fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `$body` with `$pool` bound to the backend's pool (the body is compiled for each).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

const CLAIM_COLUMNS: &str =
    "RETURNING id, subscriber, digest_date, message_id, digest, attempts, created_at, error";

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, created if missing, or `postgres://…`)
    /// and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url).await
        } else {
            Self::connect_sqlite(url).await
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let open = |cause| StoreError::Open {
            url: redact_url(url),
            cause,
        };
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(open)?;
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .map_err(|cause| StoreError::Migrate {
                url: redact_url(url),
                cause,
            })?;
        Ok(Self {
            pool: Pool::Postgres(pool),
        })
    }

    async fn connect_sqlite(url: &str) -> Result<Self, StoreError> {
        let open = |cause| StoreError::Open {
            url: url.to_string(),
            cause,
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = opts.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| open(sqlx::Error::Io(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open)?;
        // SQLite has no migration lock: two processes starting on a new file (the service
        // and a command) can race; the loser finds the work done when it tries again.
        let mut tries = 0;
        loop {
            match SQLITE_MIGRATOR.run(&pool).await {
                Ok(()) => break,
                Err(_) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(cause) => {
                    return Err(StoreError::Migrate {
                        url: url.to_string(),
                        cause,
                    });
                }
            }
        }
        Ok(Self {
            pool: Pool::Sqlite(pool),
        })
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Serialises planning with the other instances on the same database (a no-op on
    /// SQLite, which one machine's processes share).
    pub async fn lock_planning(&self) -> Result<PlanLock, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(PlanLock { conn: None }),
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await.map_err(q("acquire planning lock"))?;
                conn.close_on_drop();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PLAN_LOCK_KEY)
                    .execute(&mut *conn)
                    .await
                    .map_err(q("take planning lock"))?;
                Ok(PlanLock { conn: Some(conn) })
            }
        }
    }

    /// Stores the papers of a day (updating ones already known) and replaces that day's list.
    pub async fn save_day(&self, date: NaiveDate, papers: &[Paper]) -> Result<(), StoreError> {
        self.upsert_papers(papers).await?;
        self.replace_list(date, papers).await
    }

    /// Stores papers, updating the ones already known (upvotes rise during the day).
    pub async fn upsert_papers(&self, papers: &[Paper]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut rows = Vec::with_capacity(papers.len());
        for p in papers {
            rows.push((
                p.id.as_str(),
                serde_json::to_string(p).map_err(corrupt_json("paper to JSON"))?,
            ));
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(q("begin upsert papers"))?;
            for (id, data) in &rows {
                sqlx::query(
                    "INSERT INTO papers (arxiv_id, data, first_seen_at, updated_at)
                     VALUES ($1, $2, $3, $3)
                     ON CONFLICT (arxiv_id) DO UPDATE
                        SET data = excluded.data, updated_at = excluded.updated_at",
                )
                .bind(*id)
                .bind(data)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("upsert paper"))?;
            }
            tx.commit().await.map_err(q("commit upsert papers"))
        })
    }

    /// Replaces the stored list of `date` (its papers must be stored).
    pub async fn replace_list(&self, date: NaiveDate, papers: &[Paper]) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(q("begin replace list"))?;
            sqlx::query("DELETE FROM daily_list WHERE digest_date = $1")
                .bind(date)
                .execute(&mut *tx)
                .await
                .map_err(q("clear daily list"))?;
            for (rank, p) in papers.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO daily_list (digest_date, arxiv_id, rank, upvotes, fetched_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(date)
                .bind(p.id.as_str())
                .bind(rank as i64)
                .bind(p.upvotes)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("insert daily list"))?;
            }
            tx.commit().await.map_err(q("commit replace list"))
        })
    }

    /// The ids of the stored list of `date` (empty when it was never fetched).
    pub async fn list_ids(&self, date: NaiveDate) -> Result<HashSet<ArxivId>, StoreError> {
        let ids: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT arxiv_id FROM daily_list WHERE digest_date = $1")
                .bind(date)
                .fetch_all(pool)
                .await
                .map_err(q("select list"))?
        });
        ids.iter()
            .map(|id| {
                ArxivId::parse(id).map_err(|message| StoreError::Corrupt {
                    what: "daily_list.arxiv_id",
                    message,
                })
            })
            .collect()
    }

    /// Records that a run of `date` starts (again).
    pub async fn start_run(
        &self,
        date: NaiveDate,
        tick_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO runs (digest_date, tick_at, started_at, status)
                 VALUES ($1, $2, $3, 'running')
                 ON CONFLICT (digest_date) DO UPDATE SET
                     tick_at = COALESCE(excluded.tick_at, runs.tick_at),
                     started_at = excluded.started_at, finished_at = NULL, status = 'running',
                     attempts = runs.attempts + 1, error = NULL",
            )
            .bind(date)
            .bind(tick_at)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map_err(q("start run"))?;
        });
        Ok(())
    }

    /// Records how a run of `date` ended.
    pub async fn finish_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE runs SET finished_at = $1, status = $2, papers = $3, sent = $4,
                        skipped = $5, failed = $6, deferred = $7, error = $8
                  WHERE digest_date = $9",
            )
            .bind(Utc::now())
            .bind(&run.status)
            .bind(run.papers)
            .bind(run.sent)
            .bind(run.skipped)
            .bind(run.failed)
            .bind(run.deferred)
            .bind(&run.error)
            .bind(run.digest_date)
            .execute(pool)
            .await
            .map_err(q("finish run"))?;
        });
        Ok(())
    }

    /// Finished runs that ended with deliveries still open.
    pub async fn open_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let dates: Vec<NaiveDate> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT digest_date FROM runs WHERE deferred > 0 AND finished_at IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .map_err(q("open runs"))?
        });
        let mut out = Vec::new();
        for d in dates {
            out.extend(self.run(d).await?);
        }
        Ok(out)
    }

    /// Updates the counts of a finished run.
    pub async fn update_run_counts(&self, run: &RunRecord) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE runs SET sent = $1, skipped = $2, failed = $3, deferred = $4
                  WHERE digest_date = $5",
            )
            .bind(run.sent)
            .bind(run.skipped)
            .bind(run.failed)
            .bind(run.deferred)
            .bind(run.digest_date)
            .execute(pool)
            .await
            .map_err(q("update run counts"))?;
        });
        Ok(())
    }

    /// The run of `date`, if any.
    pub async fn run(&self, date: NaiveDate) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.runs(Some(date), 1).await?.into_iter().next())
    }

    /// The latest runs, newest digest date first.
    pub async fn runs(
        &self,
        date: Option<NaiveDate>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT digest_date, tick_at, started_at, finished_at, status, attempts, papers,
                        sent, skipped, failed, deferred, error
                   FROM runs WHERE ($1 IS NULL OR digest_date = $1)
                  ORDER BY digest_date DESC LIMIT $2",
            )
            .bind(date)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(q("select runs"))?;
            Ok(rows
                .into_iter()
                .map(|r| RunRecord {
                    digest_date: r.get(0),
                    tick_at: r.get(1),
                    started_at: r.get(2),
                    finished_at: r.get(3),
                    status: r.get(4),
                    attempts: r.get(5),
                    papers: r.get(6),
                    sent: r.get(7),
                    skipped: r.get(8),
                    failed: r.get(9),
                    deferred: r.get(10),
                    error: r.get(11),
                })
                .collect())
        })
    }

    /// Papers by id, as last fetched.
    pub async fn papers(&self, ids: &[&ArxivId]) -> Result<HashMap<ArxivId, Paper>, StoreError> {
        let mut out = HashMap::new();
        // One query per 500 papers, not one per paper.
        for chunk in ids.chunks(500) {
            // Only "$N" placeholders are spliced in; the ids are bound.
            let sql = format!(
                "SELECT arxiv_id, data FROM papers WHERE arxiv_id IN ({})",
                marks(1, chunk.len())
            );
            let rows: Vec<(String, String)> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                query.fetch_all(pool).await.map_err(q("select papers"))?
            });
            for (id, data) in rows {
                let paper: Paper =
                    serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                        what: "papers.data",
                        message: format!("{id}: {e}"),
                    })?;
                out.insert(paper.id.clone(), paper);
            }
        }
        Ok(out)
    }

    /// Of `papers`, those `subscriber` already has from a date other than `date`.
    pub async fn sent_pairs_for(
        &self,
        subscriber: &str,
        date: NaiveDate,
        papers: &[Paper],
    ) -> Result<HashSet<ArxivId>, StoreError> {
        let mut out = HashSet::new();
        for p in papers {
            let hit: Option<i32> = on_pool!(self, pool => {
                sqlx::query_scalar(
                    "SELECT 1 FROM delivery_papers dp JOIN deliveries d ON d.id = dp.delivery_id
                      WHERE dp.subscriber = $1 AND dp.arxiv_id = $2 AND d.digest_date <> $3
                        AND d.status IN ('pending', 'sending', 'sent') LIMIT 1",
                )
                .bind(subscriber)
                .bind(p.id.as_str())
                .bind(date)
                .fetch_optional(pool)
                .await
                .map_err(q("select sent paper"))?
            });
            if hit.is_some() {
                out.insert(p.id.clone());
            }
        }
        Ok(out)
    }

    /// For `papers` (not of `date`'s list): which subscribers already have them from a date
    /// other than `date`.
    pub async fn sent_pairs_of(
        &self,
        papers: &[Paper],
        date: NaiveDate,
    ) -> Result<SentPairs, StoreError> {
        let mut out = SentPairs::new();
        for p in papers {
            let who: Vec<String> = on_pool!(self, pool => {
                sqlx::query_scalar(
                    "SELECT dp.subscriber FROM delivery_papers dp
                       JOIN deliveries d ON d.id = dp.delivery_id
                      WHERE dp.arxiv_id = $1 AND d.digest_date <> $2
                        AND d.status IN ('pending', 'sending', 'sent')",
                )
                .bind(p.id.as_str())
                .bind(date)
                .fetch_all(pool)
                .await
                .map_err(q("select sent pairs of papers"))?
            });
            out.extend(who.into_iter().map(|w| (w, p.id.clone())));
        }
        Ok(out)
    }

    /// Subscribers that already have a delivery row for `date`.
    pub async fn planned_subscribers(
        &self,
        date: NaiveDate,
    ) -> Result<HashSet<String>, StoreError> {
        let who: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT subscriber FROM deliveries WHERE digest_date = $1")
                .bind(date)
                .fetch_all(pool)
                .await
                .map_err(q("select planned"))?
        });
        Ok(who.into_iter().collect())
    }

    /// Inserts the planned deliveries of `date`, a few hundred rows per statement, in one
    /// transaction; a subscriber that already has a row for the date keeps it (the unique
    /// (subscriber, digest_date) key: two instances planning at once make one set of rows).
    /// Returns how many rows were new.
    pub async fn plan(&self, date: NaiveDate, planned: &[NewDelivery]) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut digests = Vec::with_capacity(planned.len());
        for d in planned {
            digests.push(serde_json::to_string(&d.digest).map_err(corrupt_json("digest to JSON"))?);
        }
        match &self.pool {
            Pool::Sqlite(pool) => plan_sqlite(pool, date, planned, &digests, now).await,
            Pool::Postgres(pool) => plan_postgres(pool, date, planned, &digests, now).await,
        }
    }

    /// Claims the next due delivery; see [`Store::claim_batch`].
    pub async fn claim_next(&self, lease: Duration) -> Result<Option<Delivery>, StoreError> {
        Ok(self.claim_batch(lease, 1).await?.pop())
    }

    /// Claims up to `max` due deliveries of any date: first rows in flight whose lease expired
    /// (their sender died), then pending rows whose time has come, oldest due first. Each
    /// claim holds for `lease` and carries a fresh token.
    pub async fn claim_batch(
        &self,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let token = uuid::Uuid::new_v4().simple().to_string();
        // With PostgreSQL, rows another instance is claiming right now are skipped, not waited
        // for; SQLite's single writer makes the UPDATE atomic on its own.
        let lock = match self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        // The ids are picked in a materialised CTE: as a subquery of the UPDATE, PostgreSQL may
        // run the LIMIT ... SKIP LOCKED pick more than once and claim more than asked.
        let claim = |pick: &str| {
            format!(
                "WITH picked AS MATERIALIZED ({pick} LIMIT $4{lock})
                 UPDATE deliveries
                    SET status = 'sending', lease_expires_at = $1, claim_token = $2,
                        attempts = attempts + 1, updated_at = $3
                  WHERE id IN (SELECT id FROM picked) {CLAIM_COLUMNS}"
            )
        };
        let expired = claim(
            "SELECT id FROM deliveries WHERE status = 'sending' AND lease_expires_at < $3
              ORDER BY id",
        );
        let due = claim(
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3
              ORDER BY next_attempt_at, id",
        );
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for sql in [expired, due] {
            let left = max.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            // Only the fixed lock clause is spliced in; the values are bound.
            on_pool!(self, pool => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(expires)
                    .bind(&token)
                    .bind(now)
                    .bind(left as i64)
                    .fetch_all(pool)
                    .await
                    .map_err(q("claim deliveries"))?;
                for r in rows {
                    let id: i64 = r.get(0);
                    let digest: String = r.get(4);
                    match serde_json::from_str(&digest) {
                        Ok(digest) => out.push(Delivery {
                            id,
                            subscriber: r.get(1),
                            digest_date: r.get(2),
                            message_id: r.get(3),
                            digest,
                            attempts: r.get(5),
                            created_at: r.get(6),
                            last_error: r.get(7),
                            claim_token: token.clone(),
                        }),
                        Err(e) => unreadable.push((id, e.to_string())),
                    }
                }
            });
        }
        // A row that cannot be read is failed with the reason, not claimed again and again.
        for (id, e) in unreadable {
            tracing::error!(delivery = id, error = %e, "a planned delivery cannot be read; recorded failed");
            let why = format!("the stored digest cannot be read: {e}");
            on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', error = $1, lease_expires_at = NULL,
                            claim_token = NULL, updated_at = $2
                      WHERE id = $3 AND claim_token = $4",
                )
                .bind(&why)
                .bind(now)
                .bind(id)
                .bind(&token)
                .execute(pool)
                .await
                .map_err(q("fail unreadable delivery"))?;
            });
        }
        // RETURNING gives no order: keep the claim's.
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// Ends a claimed delivery: sent (with the server's reply), failed, skipped, or back to
    /// pending (a transient error) to be tried again no earlier than `retry_at`.
    /// Returns false when the claim was no longer ours (our lease ran out and another sender
    /// took the row over): then nothing is written, and the other sender records the outcome.
    pub async fn finish(
        &self,
        d: &Delivery,
        status: DeliveryStatus,
        smtp_reply: Option<&str>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let f = Finish {
            smtp_reply: smtp_reply.map(str::to_string),
            error: error.map(str::to_string),
            retry_at,
            ..Finish::new(d, status)
        };
        Ok(self.finish_many(&[f]).await?[0])
    }

    /// Records many outcomes in one transaction (one commit, one fsync for SQLite). For each,
    /// whether the claim was still ours (see [`Store::finish`]).
    pub async fn finish_many(&self, done: &[Finish]) -> Result<Vec<bool>, StoreError> {
        let now = Utc::now();
        match &self.pool {
            Pool::Sqlite(pool) => finish_sqlite(pool, done, now).await,
            Pool::Postgres(pool) => finish_postgres(pool, done, now).await,
        }
    }

    /// Hands a claimed delivery back untouched, as if never tried (the attempt is not
    /// counted): for a run that stops before it could really try.
    pub async fn release(
        &self,
        d: &Delivery,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries
                    SET status = 'pending',
                        attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                        error = COALESCE($1, error), lease_expires_at = NULL, claim_token = NULL,
                        next_attempt_at = $2, updated_at = $3
                  WHERE id = $4 AND claim_token = $5 AND status = 'sending'",
            )
            .bind(error)
            .bind(retry_at.unwrap_or(now))
            .bind(now)
            .bind(d.id)
            .bind(&d.claim_token)
            .execute(pool)
            .await
            .map_err(q("release delivery"))?;
        });
        Ok(())
    }

    /// Extends the lease of a delivery we are sending; false when it is no longer ours.
    pub async fn renew(&self, d: &Delivery, lease: Duration) -> Result<bool, StoreError> {
        let expires =
            Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let done = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries SET lease_expires_at = $1
                  WHERE id = $2 AND claim_token = $3 AND status = 'sending'",
            )
            .bind(expires)
            .bind(d.id)
            .bind(&d.claim_token)
            .execute(pool)
            .await
            .map_err(q("renew lease"))?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// When something may next become claimable: the earliest retry time of a pending row,
    /// or lease expiry of one in flight. `None` when nothing is left to do.
    pub async fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        const SQL: &str = "SELECT MIN(t) FROM (
                 SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'
                 UNION ALL
                 SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 'sending') AS w";
        match &self.pool {
            // MIN over a union of TEXT columns comes back as TEXT.
            Pool::Sqlite(pool) => {
                let t: Option<String> = sqlx::query_scalar(SQL)
                    .fetch_one(pool)
                    .await
                    .map_err(q("next wake-up"))?;
                t.map(|t| {
                    DateTime::parse_from_rfc3339(&t)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|e| StoreError::Corrupt {
                            what: "deliveries time",
                            message: format!("{t:?}: {e}"),
                        })
                })
                .transpose()
            }
            Pool::Postgres(pool) => sqlx::query_scalar(SQL)
                .fetch_one(pool)
                .await
                .map_err(q("next wake-up")),
        }
    }

    /// Records that an alert of `kind` goes out on `day`; false when one already did.
    pub async fn claim_alert(
        &self,
        kind: &str,
        day: NaiveDate,
        subject: &str,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO alerts (kind, day, subject, sent_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, day) DO NOTHING",
            )
            .bind(kind)
            .bind(day)
            .bind(subject)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map_err(q("claim alert"))?
            .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn unclaim_alert(&self, kind: &str, day: NaiveDate) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM alerts WHERE kind = $1 AND day = $2")
                .bind(kind)
                .bind(day)
                .execute(pool)
                .await
                .map_err(q("unclaim alert"))?;
        });
        Ok(())
    }

    /// Puts the failed deliveries of `date` back in the queue; returns how many.
    pub async fn requeue_failed(&self, date: NaiveDate) -> Result<u64, StoreError> {
        let now = Utc::now();
        Ok(on_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                        created_at = $1, updated_at = $1
                  WHERE digest_date = $2 AND status = 'failed'",
            )
            .bind(now)
            .bind(date)
            .execute(pool)
            .await
            .map_err(q("requeue failed"))?
            .rows_affected()
        }))
    }

    /// Deliveries matching the filters, newest date first.
    pub async fn history(&self, f: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT digest_date, subscriber, status, attempts, digest, message_id, smtp_reply,
                        error, updated_at, sent_at
                   FROM deliveries
                  WHERE ($1 IS NULL OR digest_date = $1)
                    AND ($2 IS NULL OR lower(subscriber) = lower($2))
                    AND ($3 IS NULL OR status = $3)
                  ORDER BY digest_date DESC, id
                  LIMIT $4",
            )
            .bind(f.date)
            .bind(f.subscriber.as_deref())
            .bind(f.status.map(DeliveryStatus::as_str))
            .bind(f.limit)
            .fetch_all(pool)
            .await
            .map_err(q("history"))?;
            rows.into_iter()
                .map(|r| {
                    let digest: String = r.get(4);
                    let digest: Digest =
                        serde_json::from_str(&digest).map_err(corrupt_json("deliveries.digest"))?;
                    Ok(HistoryRow {
                        digest_date: r.get(0),
                        subscriber: r.get(1),
                        status: r.get(2),
                        attempts: r.get(3),
                        papers: digest.paper_ids().map(|p| p.to_string()).collect(),
                        message_id: r.get(5),
                        smtp_reply: r.get(6),
                        error: r.get(7),
                        updated_at: r.get(8),
                        sent_at: r.get(9),
                    })
                })
                .collect()
        })
    }

    /// Records an opt-out; returns false when the subscriber had already opted out.
    pub async fn opt_out(&self, subscriber: &str, via: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO optouts (subscriber, at, via) VALUES ($1, $2, $3)
                 ON CONFLICT (subscriber) DO NOTHING",
            )
            .bind(subscriber)
            .bind(Utc::now())
            .bind(via)
            .execute(pool)
            .await
            .map_err(q("opt out"))?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Clears an opt-out; returns false when there was none.
    pub async fn resume(&self, subscriber: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM optouts WHERE lower(subscriber) = lower($1)")
                .bind(subscriber)
                .execute(pool)
                .await
                .map_err(q("resume"))?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Everyone who opted out, with when and how.
    pub async fn optouts(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as("SELECT subscriber, at, via FROM optouts ORDER BY at")
                .fetch_all(pool)
                .await
                .map_err(q("optouts"))?
        }))
    }

    pub async fn is_opted_out(&self, subscriber: &str) -> Result<bool, StoreError> {
        Ok(!self.opted_out_among(&[subscriber]).await?.is_empty())
    }

    /// Which of `subscribers` opted out (one query per 500).
    pub async fn opted_out_among(
        &self,
        subscribers: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let mut out = HashSet::new();
        for chunk in subscribers.chunks(500) {
            // Only "$N" placeholders are spliced in; the keys are bound.
            let sql = format!(
                "SELECT subscriber FROM optouts WHERE subscriber IN ({})",
                marks(1, chunk.len())
            );
            let who: Vec<String> = on_pool!(self, pool => {
                let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                for s in chunk {
                    query = query.bind(*s);
                }
                query.fetch_all(pool).await.map_err(q("optouts among"))?
            });
            out.extend(who);
        }
        Ok(out)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map_err(q("ping"))?;
        });
        Ok(())
    }

    /// How many runs are in each state.
    pub async fn run_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status")
                .fetch_all(pool)
                .await
                .map_err(q("count runs"))?
        });
        Ok(rows.into_iter().collect())
    }

    /// How many deliveries of every date are in each state.
    pub async fn counts_all(&self) -> Result<StatusCounts, StoreError> {
        self.counts_where(None).await
    }

    pub async fn counts(&self, date: NaiveDate) -> Result<StatusCounts, StoreError> {
        self.counts_where(Some(date)).await
    }

    async fn counts_where(&self, date: Option<NaiveDate>) -> Result<StatusCounts, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM deliveries WHERE ($1 IS NULL OR digest_date = $1)
                  GROUP BY status",
            )
            .bind(date)
            .fetch_all(pool)
            .await
            .map_err(q("count deliveries"))?
        });
        let mut c = StatusCounts::default();
        for (status, n) in rows {
            match DeliveryStatus::parse(&status) {
                Some(DeliveryStatus::Pending) => c.pending = n,
                Some(DeliveryStatus::Sending) => c.sending = n,
                Some(DeliveryStatus::Sent) => c.sent = n,
                Some(DeliveryStatus::Failed) => c.failed = n,
                Some(DeliveryStatus::Skipped) => c.skipped = n,
                None => {}
            }
        }
        Ok(c)
    }
}

/// The rows a `Finish` writes besides its status: when it may be claimed again (a row going
/// back to pending is due at once unless told otherwise) and when it was sent.
fn finish_times(f: &Finish, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let next = (f.status == DeliveryStatus::Pending).then(|| f.retry_at.unwrap_or(now));
    let sent_at = (f.status == DeliveryStatus::Sent).then_some(now);
    (next, sent_at)
}

/// SQLite: one UPDATE per outcome, all in one transaction (one commit).
async fn finish_sqlite(
    pool: &SqlitePool,
    done: &[Finish],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = pool.begin().await.map_err(q("begin finish deliveries"))?;
    let mut ours = Vec::with_capacity(done.len());
    for f in done {
        let (next, sent_at) = finish_times(f, now);
        let r = sqlx::query(
            "UPDATE deliveries
                SET status = $1, smtp_reply = COALESCE($2, smtp_reply), error = $3,
                    lease_expires_at = NULL, claim_token = NULL, next_attempt_at = $4,
                    updated_at = $5, sent_at = COALESCE($6, sent_at)
              WHERE id = $7 AND claim_token = $8 AND status = 'sending'",
        )
        .bind(f.status.as_str())
        .bind(f.smtp_reply.as_deref())
        .bind(f.error.as_deref())
        .bind(next)
        .bind(now)
        .bind(sent_at)
        .bind(f.id)
        .bind(&f.claim_token)
        .execute(&mut *tx)
        .await
        .map_err(q("finish delivery"))?;
        ours.push(r.rows_affected() == 1);
    }
    tx.commit().await.map_err(q("commit finish deliveries"))?;
    Ok(ours)
}

/// PostgreSQL: one UPDATE for the whole batch, its values passed as arrays (a round trip
/// per outcome would cost more than the update itself).
async fn finish_postgres(
    pool: &PgPool,
    done: &[Finish],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    let (mut ids, mut tokens, mut statuses, mut replies, mut errors, mut nexts, mut sents) = (
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
        Vec::with_capacity(done.len()),
    );
    for f in done {
        let (next, sent_at) = finish_times(f, now);
        ids.push(f.id);
        tokens.push(f.claim_token.as_str());
        statuses.push(f.status.as_str());
        replies.push(f.smtp_reply.as_deref());
        errors.push(f.error.as_deref());
        nexts.push(next);
        sents.push(sent_at);
    }
    let updated: Vec<i64> = sqlx::query_scalar(
        "UPDATE deliveries AS d
            SET status = f.status, smtp_reply = COALESCE(f.reply, d.smtp_reply),
                error = f.error, lease_expires_at = NULL, claim_token = NULL,
                next_attempt_at = f.next, updated_at = $8,
                sent_at = COALESCE(f.sent_at, d.sent_at)
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::timestamptz[])
                AS f(id, token, status, reply, error, next, sent_at)
          WHERE d.id = f.id AND d.claim_token = f.token AND d.status = 'sending'
      RETURNING d.id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&statuses)
    .bind(&replies)
    .bind(&errors)
    .bind(&nexts)
    .bind(&sents)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(q("finish deliveries"))?;
    let updated: HashSet<i64> = updated.into_iter().collect();
    Ok(done.iter().map(|f| updated.contains(&f.id)).collect())
}

/// The papers of the deliveries just inserted (`rows`: id and subscriber), as
/// (delivery id, subscriber, arXiv id).
fn papers_of_inserted<'a>(
    chunk: &'a [NewDelivery],
    rows: &'a [(i64, String)],
) -> Vec<(i64, &'a str, &'a str)> {
    let by_subscriber: HashMap<&str, &NewDelivery> =
        chunk.iter().map(|d| (d.subscriber.as_str(), d)).collect();
    rows.iter()
        .filter_map(|(id, who)| by_subscriber.get(who.as_str()).map(|d| (*id, *d)))
        .flat_map(|(id, d)| {
            d.digest
                .paper_ids()
                .map(move |p| (id, d.subscriber.as_str(), p.as_str()))
        })
        .collect()
}

/// SQLite: multi-row INSERTs of PLAN_CHUNK rows, in one transaction.
async fn plan_sqlite(
    pool: &SqlitePool,
    date: NaiveDate,
    planned: &[NewDelivery],
    digests: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(q("begin plan"))?;
    let mut inserted = 0;
    for (chunk, digests) in planned.chunks(PLAN_CHUNK).zip(digests.chunks(PLAN_CHUNK)) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO deliveries (subscriber, digest_date, status, message_id, digest,
                 paper_count, error, next_attempt_at, created_at, updated_at) ",
        );
        qb.push_values(chunk.iter().zip(digests), |mut b, (d, digest)| {
            b.push_bind(&d.subscriber)
                .push_bind(date)
                .push_bind(d.status.as_str())
                .push_bind(&d.message_id)
                .push_bind(digest)
                .push_bind(d.digest.paper_count() as i64)
                .push_bind(&d.note)
                .push_bind(d.not_before.unwrap_or(now))
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" ON CONFLICT (subscriber, digest_date) DO NOTHING RETURNING id, subscriber");
        // Statements of a few thousand binds, sized by the chunk: not worth keeping prepared
        // (each connection's cache would hold megabytes of them).
        let rows: Vec<(i64, String)> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("insert deliveries"))?;
        inserted += rows.len() as u64;
        for part in papers_of_inserted(chunk, &rows).chunks(PLAN_CHUNK * 2) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO delivery_papers (delivery_id, subscriber, arxiv_id) ",
            );
            qb.push_values(part, |mut b, (id, who, paper)| {
                b.push_bind(*id).push_bind(*who).push_bind(*paper);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(q("insert delivery papers"))?;
        }
    }
    tx.commit().await.map_err(q("commit plan"))?;
    Ok(inserted)
}

/// PostgreSQL: the rows passed as arrays and unnested, two statements in one transaction (a
/// VALUES list of thousands of binds costs PostgreSQL more to parse than to insert).
async fn plan_postgres(
    pool: &PgPool,
    date: NaiveDate,
    planned: &[NewDelivery],
    digests: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let subscribers: Vec<&str> = planned.iter().map(|d| d.subscriber.as_str()).collect();
    let statuses: Vec<&str> = planned.iter().map(|d| d.status.as_str()).collect();
    let message_ids: Vec<&str> = planned.iter().map(|d| d.message_id.as_str()).collect();
    let counts: Vec<i64> = planned
        .iter()
        .map(|d| d.digest.paper_count() as i64)
        .collect();
    let notes: Vec<Option<&str>> = planned.iter().map(|d| d.note.as_deref()).collect();
    let due: Vec<DateTime<Utc>> = planned
        .iter()
        .map(|d| d.not_before.unwrap_or(now))
        .collect();
    let mut tx = pool.begin().await.map_err(q("begin plan"))?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO deliveries (subscriber, digest_date, status, message_id, digest,
             paper_count, error, next_attempt_at, created_at, updated_at)
         SELECT s, $7, st, m, dg, pc, e, n, $8, $8
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                       $6::text[], $9::timestamptz[]) AS t(s, st, m, dg, pc, e, n)
         ON CONFLICT (subscriber, digest_date) DO NOTHING
         RETURNING id, subscriber",
    )
    .bind(&subscribers)
    .bind(&statuses)
    .bind(&message_ids)
    .bind(digests)
    .bind(&counts)
    .bind(&notes)
    .bind(date)
    .bind(now)
    .bind(&due)
    .fetch_all(&mut *tx)
    .await
    .map_err(q("insert deliveries"))?;
    let papers = papers_of_inserted(planned, &rows);
    let ids: Vec<i64> = papers.iter().map(|p| p.0).collect();
    let who: Vec<&str> = papers.iter().map(|p| p.1).collect();
    let arxiv: Vec<&str> = papers.iter().map(|p| p.2).collect();
    sqlx::query(
        "INSERT INTO delivery_papers (delivery_id, subscriber, arxiv_id)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&who)
    .bind(&arxiv)
    .execute(&mut *tx)
    .await
    .map_err(q("insert delivery papers"))?;
    tx.commit().await.map_err(q("commit plan"))?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_history() {
        let history = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(history(&SQLITE_MIGRATOR), history(&POSTGRES_MIGRATOR));
        assert!(SQLITE_MIGRATOR.iter().count() >= 5);
    }

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(marks(1, 3), "$1, $2, $3");
        assert_eq!(marks(4, 1), "$4");
    }
}
