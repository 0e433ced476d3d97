//! The delivery queue: planning a date's rows (under the planning lock), claiming due rows,
//! recording their outcomes, handing them back, renewing leases, and when to look again.
//! Only the claim differs between the backends: PostgreSQL locks the rows it takes with FOR
//! UPDATE SKIP LOCKED, so instances sharing the database never claim the same row and never
//! wait for each other; SQLite has one writer at a time, which serialises claims by itself.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;

use super::backends;
use super::claimer::Claimer;
use super::connect::{Pool, Store};
use super::sql::{corrupt_json, marks, q};
use super::{Delivery, Finish, NewDelivery, StoreError};
use crate::domain::SubscriberKey;

/// The advisory lock that serialises planning across the instances sharing a PostgreSQL
/// database ("paperboy" in ASCII).
const PLAN_LOCK_KEY: i64 = 0x7061_7065_7262_6f79;

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

/// When something may next become claimable (see [`Store::next_wakeup`]).
pub(super) const NEXT_WAKEUP: &str = "SELECT MIN(t) FROM (
         SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'
         UNION ALL
         SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 'sending') AS w";

/// What a claim returns of each row, and whether its subscriber has unsubscribed since the
/// row was planned (read with the claim: a query of its own per batch was a statement of its
/// own for each batch size, parsed and planned each time).
const CLAIM_COLUMNS: &str =
    "RETURNING id, subscriber, digest_date, message_id, digest, attempts, created_at, error,
               EXISTS (SELECT 1 FROM optouts o WHERE o.subscriber = deliveries.subscriber)
                   AS opted_out";

/// How a claim begins on PostgreSQL. The pick must walk the queue's index in order and stop
/// after the rows it takes, and the update find those rows by their key. On a table without
/// statistics (a new database, before autovacuum first analyses it) the planner takes the
/// pick for a few rows and reads and sorts every pending row instead, for each claim planned
/// for its values: 5-9 ms a claim at 10,000 pending, where the index takes 0.5 ms. On a small
/// analysed table it joins the picked ids to every row of the table. Bitmap and sequential
/// scans and hash and merge joins are ruled out, for the claim's transaction alone.
pub(super) const PG_CLAIM_BEGIN: &str = "BEGIN; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
     SET LOCAL enable_mergejoin = off";

/// A row as a claim returns it (`CLAIM_COLUMNS`).
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    subscriber: String,
    digest_date: NaiveDate,
    message_id: String,
    digest: String,
    attempts: i64,
    created_at: DateTime<Utc>,
    error: Option<String>,
    opted_out: bool,
}

/// A claimed row handed back as never tried: pending again, its attempt not counted, its
/// lease and claim gone.
const RELEASED: &str = "status = 'pending',
        attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
        lease_expires_at = NULL, claim_token = NULL";

impl Store {
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
        let _turn = self.write_turn().await;
        match &self.pool {
            Pool::Sqlite(pool) => backends::plan_sqlite(pool, date, planned, &digests, now).await,
            Pool::Postgres(pool) => {
                backends::plan_postgres(pool, date, planned, &digests, now).await
            }
        }
    }

    /// The claim of rows in flight whose lease ran out (`expired`: their sender died), the
    /// longest expired first, or of pending rows whose time has come, oldest due first. `$1`
    /// is the new lease's end, `$2` the claim's token, `$3` now, `$4` how many at most, `$5`
    /// the claiming process (see [`Claimer`]).
    pub(super) fn claim_sql(&self, expired: bool) -> String {
        // With PostgreSQL, rows another instance is claiming right now are skipped, not waited
        // for; SQLite's single writer makes the UPDATE atomic on its own.
        let lock = match self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let pick = if expired {
            // In the order of deliveries_leases: SQLite's planner walks the whole table
            // in id order rather than sort the few rows that index finds.
            "SELECT id FROM deliveries WHERE status = 'sending' AND lease_expires_at < $3
              ORDER BY lease_expires_at, id"
        } else {
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3
              ORDER BY next_attempt_at, id"
        };
        // The ids are picked in a materialised CTE: as a subquery of the UPDATE, PostgreSQL may
        // run the LIMIT ... SKIP LOCKED pick more than once and claim more than asked.
        format!(
            "WITH picked AS MATERIALIZED ({pick} LIMIT $4{lock})
             UPDATE deliveries
                SET status = 'sending', lease_expires_at = $1, claim_token = $2,
                    attempts = attempts + 1, updated_at = $3, claimer = $5
              WHERE id IN (SELECT id FROM picked) {CLAIM_COLUMNS}"
        )
    }

    /// Claims up to `max` due deliveries of any date: first (with `expired`) rows in flight
    /// whose lease expired (their sender died), then pending rows whose time has come, oldest
    /// due first. Each claim holds for `lease` and carries a fresh token, and names this
    /// process as its claimer.
    pub async fn claim_batch(
        &self,
        lease: Duration,
        max: usize,
        expired: bool,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        let _turn = self.write_turn().await;
        let picks = if expired {
            vec![self.claim_sql(true), self.claim_sql(false)]
        } else {
            vec![self.claim_sql(false)]
        };
        for sql in picks {
            let left = max.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            // Only the fixed lock clause is spliced in; the values are bound.
            macro_rules! claim {
                ($executor:expr) => {
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(expires)
                        .bind(&token)
                        .bind(now)
                        .bind(left as i64)
                        .bind(Claimer::this_process_stored())
                        .fetch_all($executor)
                        .await
                        .map_err(q("claim deliveries"))?
                };
            }
            let rows: Vec<ClaimedRow> = match &self.pool {
                Pool::Sqlite(pool) => claim!(pool),
                Pool::Postgres(pool) => {
                    // In a transaction of its own, for PG_CLAIM_BEGIN's settings.
                    let mut tx = pool
                        .begin_with(PG_CLAIM_BEGIN)
                        .await
                        .map_err(q("claim deliveries"))?;
                    let rows = claim!(&mut *tx);
                    tx.commit().await.map_err(q("claim deliveries"))?;
                    rows
                }
            };
            for r in rows {
                match serde_json::from_str(&r.digest) {
                    Ok(digest) => out.push(Delivery {
                        id: r.id,
                        subscriber: SubscriberKey::from_stored(r.subscriber),
                        digest_date: r.digest_date,
                        message_id: r.message_id,
                        digest,
                        attempts: r.attempts,
                        created_at: r.created_at,
                        last_error: r.error,
                        claim_token: token.clone(),
                        opted_out: r.opted_out,
                    }),
                    Err(e) => unreadable.push((r.id, e.to_string())),
                }
            }
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

    /// Records the outcomes of claimed deliveries (sent with the server's reply, failed,
    /// skipped, or back to pending until `retry_at`) in one transaction: one commit, one fsync
    /// for SQLite. For each, whether the claim was still ours: false when our lease ran out
    /// and another sender took the row over; then nothing is written for it.
    pub async fn finish_many(&self, done: &[Finish]) -> Result<Vec<bool>, StoreError> {
        let _turn = self.write_turn().await;
        let now = Utc::now();
        match &self.pool {
            Pool::Sqlite(pool) => backends::finish_sqlite(pool, done, now).await,
            Pool::Postgres(pool) => backends::finish_postgres(pool, done, now).await,
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
        let _turn = self.write_turn().await;
        on_pool!(self, pool => {
            // Only the fixed RELEASED clause is spliced in; the values are bound.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE deliveries SET {RELEASED}, error = COALESCE($1, error),
                        next_attempt_at = $2, updated_at = $3
                  WHERE id = $4 AND claim_token = $5 AND status = 'sending'"
            )))
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

    /// Hands claimed deliveries back untouched, as [`Store::release`] does with no error and
    /// no retry time, in one statement per claim (and per 500 rows) instead of one each: the
    /// rows a stopping pass still holds queued.
    pub async fn release_untried(&self, ds: &[&Delivery]) -> Result<(), StoreError> {
        let mut by_claim: HashMap<&str, Vec<i64>> = HashMap::new();
        for d in ds {
            by_claim.entry(&d.claim_token).or_default().push(d.id);
        }
        let now = Utc::now();
        let _turn = self.write_turn().await;
        for (token, ids) in &by_claim {
            for ids in ids.chunks(500) {
                // Only RELEASED and "$N" placeholders are spliced in; the values are bound.
                let sql = format!(
                    "UPDATE deliveries SET {RELEASED}, next_attempt_at = $1, updated_at = $1
                      WHERE claim_token = $2 AND status = 'sending' AND id IN ({})",
                    marks(3, ids.len())
                );
                on_pool!(self, pool => {
                    // Of as many sizes as there are queue lengths: not worth keeping prepared.
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .persistent(false)
                        .bind(now)
                        .bind(*token);
                    for id in ids {
                        query = query.bind(*id);
                    }
                    query.execute(pool).await.map_err(q("release deliveries"))?;
                });
            }
        }
        Ok(())
    }

    /// Extends the lease of a delivery we are sending; false when it is no longer ours.
    pub async fn renew(&self, d: &Delivery, lease: Duration) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
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
        match &self.pool {
            // MIN over a union of TEXT columns comes back as TEXT.
            Pool::Sqlite(pool) => {
                let t: Option<String> = sqlx::query_scalar(NEXT_WAKEUP)
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
            Pool::Postgres(pool) => sqlx::query_scalar(NEXT_WAKEUP)
                .fetch_one(pool)
                .await
                .map_err(q("next wake-up")),
        }
    }
}
