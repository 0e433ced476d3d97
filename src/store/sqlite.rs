//! The SQLite store: WAL mode, a busy timeout, migrations embedded at compile time.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    Delivery, DeliveryStatus, HistoryFilter, HistoryRow, NewDelivery, RunRecord, SentPairs,
    StatusCounts, StoreError,
};
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |cause| StoreError::Query { what, cause }
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
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
            match MIGRATOR.run(&pool).await {
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
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores the papers of a day (updating ones already known) and replaces that day's list.
    pub async fn save_day(&self, date: NaiveDate, papers: &[Paper]) -> Result<(), StoreError> {
        self.upsert_papers(papers).await?;
        self.replace_list(date, papers).await
    }

    /// Stores papers, updating the ones already known (upvotes rise during the day).
    pub async fn upsert_papers(&self, papers: &[Paper]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(q("begin upsert papers"))?;
        for p in papers {
            let data = serde_json::to_string(p).map_err(|e| StoreError::Corrupt {
                what: "paper to JSON",
                message: e.to_string(),
            })?;
            sqlx::query(
                "INSERT INTO papers (arxiv_id, data, first_seen_at, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (arxiv_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            )
            .bind(p.id.as_str())
            .bind(data)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("upsert paper"))?;
        }
        tx.commit().await.map_err(q("commit upsert papers"))
    }

    /// Replaces the stored list of `date` (its papers must be stored).
    pub async fn replace_list(&self, date: NaiveDate, papers: &[Paper]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(q("begin replace list"))?;
        sqlx::query("DELETE FROM daily_list WHERE digest_date = ?")
            .bind(date)
            .execute(&mut *tx)
            .await
            .map_err(q("clear daily list"))?;
        for (rank, p) in papers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO daily_list (digest_date, arxiv_id, rank, upvotes, fetched_at) VALUES (?, ?, ?, ?, ?)",
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
    }

    /// The ids of the stored list of `date` (empty when it was never fetched).
    pub async fn list_ids(
        &self,
        date: NaiveDate,
    ) -> Result<std::collections::HashSet<ArxivId>, StoreError> {
        let rows = sqlx::query("SELECT arxiv_id FROM daily_list WHERE digest_date = ?")
            .bind(date)
            .fetch_all(&self.pool)
            .await
            .map_err(q("select list"))?;
        rows.into_iter()
            .map(|r| {
                ArxivId::parse(&r.get::<String, _>(0)).map_err(|message| StoreError::Corrupt {
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
        tick_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (digest_date, tick_at, started_at, status) VALUES (?, ?, ?, 'running')
             ON CONFLICT (digest_date) DO UPDATE SET
                 tick_at = COALESCE(excluded.tick_at, runs.tick_at), started_at = excluded.started_at,
                 finished_at = NULL, status = 'running', attempts = runs.attempts + 1, error = NULL",
        )
        .bind(date)
        .bind(tick_at)
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(q("start run"))?;
        Ok(())
    }

    /// Records how a run of `date` ended.
    pub async fn finish_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET finished_at = ?, status = ?, papers = ?, sent = ?, skipped = ?,
                    failed = ?, deferred = ?, error = ?
              WHERE digest_date = ?",
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
        .execute(&self.pool)
        .await
        .map_err(q("finish run"))?;
        Ok(())
    }

    /// Finished runs that ended with deliveries still open.
    pub async fn open_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let dates: Vec<NaiveDate> = sqlx::query_scalar(
            "SELECT digest_date FROM runs WHERE deferred > 0 AND finished_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("open runs"))?;
        let mut out = Vec::new();
        for d in dates {
            out.extend(self.run(d).await?);
        }
        Ok(out)
    }

    /// Updates the counts of a finished run.
    pub async fn update_run_counts(&self, run: &RunRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET sent = ?, skipped = ?, failed = ?, deferred = ? WHERE digest_date = ?",
        )
        .bind(run.sent)
        .bind(run.skipped)
        .bind(run.failed)
        .bind(run.deferred)
        .bind(run.digest_date)
        .execute(&self.pool)
        .await
        .map_err(q("update run counts"))?;
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
        let rows = sqlx::query(
            "SELECT digest_date, tick_at, started_at, finished_at, status, attempts, papers, sent,
                    skipped, failed, deferred, error
               FROM runs WHERE (?1 IS NULL OR digest_date = ?1)
              ORDER BY digest_date DESC LIMIT ?2",
        )
        .bind(date)
        .bind(limit)
        .fetch_all(&self.pool)
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
    }

    /// Papers by id, as last fetched.
    pub async fn papers(&self, ids: &[&ArxivId]) -> Result<HashMap<ArxivId, Paper>, StoreError> {
        let mut out = HashMap::new();
        // One query per delivery, not one per paper (SQLite allows 32,766 binds; a digest
        // holds far fewer papers, but chunk anyway).
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT arxiv_id, data FROM papers WHERE arxiv_id IN ({marks})");
            // Only "?" placeholders are spliced in; the ids are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(q("select papers"))?;
            for row in rows {
                let id: String = row.get(0);
                let data: String = row.get(1);
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
    ) -> Result<std::collections::HashSet<ArxivId>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for p in papers {
            let hit = sqlx::query(
                "SELECT 1 FROM delivery_papers dp JOIN deliveries d ON d.id = dp.delivery_id
                  WHERE dp.subscriber = ? AND dp.arxiv_id = ? AND d.digest_date <> ?
                    AND d.status IN ('pending', 'sending', 'sent') LIMIT 1",
            )
            .bind(subscriber)
            .bind(p.id.as_str())
            .bind(date)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("select sent paper"))?;
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
            let rows = sqlx::query(
                "SELECT dp.subscriber FROM delivery_papers dp JOIN deliveries d ON d.id = dp.delivery_id
                  WHERE dp.arxiv_id = ? AND d.digest_date <> ?
                    AND d.status IN ('pending', 'sending', 'sent')",
            )
            .bind(p.id.as_str())
            .bind(date)
            .fetch_all(&self.pool)
            .await
            .map_err(q("select sent pairs of papers"))?;
            for r in rows {
                out.insert((r.get(0), p.id.clone()));
            }
        }
        Ok(out)
    }

    /// Subscribers that already have a delivery row for `date`.
    pub async fn planned_subscribers(
        &self,
        date: NaiveDate,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT subscriber FROM deliveries WHERE digest_date = ?")
            .bind(date)
            .fetch_all(&self.pool)
            .await
            .map_err(q("select planned"))?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Inserts the planned deliveries of `date` in one transaction; a subscriber that already
    /// has a row for the date keeps it. Returns how many rows were new.
    pub async fn plan(&self, date: NaiveDate, planned: &[NewDelivery]) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(q("begin plan"))?;
        let mut inserted = 0;
        for d in planned {
            let digest = serde_json::to_string(&d.digest).map_err(|e| StoreError::Corrupt {
                what: "digest to JSON",
                message: e.to_string(),
            })?;
            let row = sqlx::query(
                "INSERT INTO deliveries (subscriber, digest_date, status, message_id, digest,
                     paper_count, error, next_attempt_at, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (subscriber, digest_date) DO NOTHING
                 RETURNING id",
            )
            .bind(&d.subscriber)
            .bind(date)
            .bind(d.status.as_str())
            .bind(&d.message_id)
            .bind(digest)
            .bind(d.digest.paper_count() as i64)
            .bind(&d.note)
            .bind(d.not_before)
            .bind(d.not_before.unwrap_or(now))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("insert delivery"))?;
            let Some(row) = row else { continue };
            inserted += 1;
            let id: i64 = row.get(0);
            for paper in d.digest.paper_ids() {
                sqlx::query(
                    "INSERT INTO delivery_papers (delivery_id, subscriber, arxiv_id) VALUES (?, ?, ?)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(&d.subscriber)
                .bind(paper.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q("insert delivery paper"))?;
            }
        }
        tx.commit().await.map_err(q("commit plan"))?;
        Ok(inserted)
    }

    /// Claims the next due delivery of any date: pending and due, or in flight with an expired
    /// lease (its sender died). The claim holds for `lease` and carries a fresh token.
    pub async fn claim_next(&self, lease: Duration) -> Result<Option<Delivery>, StoreError> {
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query(
            "UPDATE deliveries
                SET status = 'sending', lease_expires_at = ?, claim_token = ?,
                    attempts = attempts + 1, updated_at = ?
              WHERE id = (SELECT id FROM deliveries
                           WHERE (status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?))
                              OR (status = 'sending' AND lease_expires_at < ?)
                           ORDER BY digest_date, id LIMIT 1)
          RETURNING id, subscriber, digest_date, message_id, digest, attempts, created_at, error",
        )
        .bind(expires)
        .bind(&token)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("claim delivery"))?;
        row.map(|r| {
            let digest: String = r.get(4);
            let digest: Digest =
                serde_json::from_str(&digest).map_err(|e| StoreError::Corrupt {
                    what: "deliveries.digest",
                    message: e.to_string(),
                })?;
            Ok(Delivery {
                id: r.get(0),
                subscriber: r.get(1),
                digest_date: r.get(2),
                message_id: r.get(3),
                digest,
                attempts: r.get(5),
                created_at: r.get(6),
                last_error: r.get(7),
                claim_token: token.clone(),
            })
        })
        .transpose()
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
        retry_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let sent_at = (status == DeliveryStatus::Sent).then_some(now);
        let done = sqlx::query(
            "UPDATE deliveries
                SET status = ?, smtp_reply = COALESCE(?, smtp_reply), error = ?,
                    lease_expires_at = NULL, claim_token = NULL, next_attempt_at = ?,
                    updated_at = ?, sent_at = COALESCE(?, sent_at)
              WHERE id = ? AND claim_token = ? AND status = 'sending'",
        )
        .bind(status.as_str())
        .bind(smtp_reply)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(sent_at)
        .bind(d.id)
        .bind(&d.claim_token)
        .execute(&self.pool)
        .await
        .map_err(q("finish delivery"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Hands a claimed delivery back untouched, as if never tried (the attempt is not
    /// counted): for a run that stops before it could really try.
    pub async fn release(
        &self,
        d: &Delivery,
        error: Option<&str>,
        retry_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries
                SET status = 'pending', attempts = MAX(attempts - 1, 0), error = COALESCE(?, error),
                    lease_expires_at = NULL, claim_token = NULL, next_attempt_at = ?,
                    updated_at = ?
              WHERE id = ? AND claim_token = ? AND status = 'sending'",
        )
        .bind(error)
        .bind(retry_at)
        .bind(Utc::now())
        .bind(d.id)
        .bind(&d.claim_token)
        .execute(&self.pool)
        .await
        .map_err(q("release delivery"))?;
        Ok(())
    }

    /// Extends the lease of a delivery we are sending; false when it is no longer ours.
    pub async fn renew(&self, d: &Delivery, lease: Duration) -> Result<bool, StoreError> {
        let expires =
            Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let done = sqlx::query(
            "UPDATE deliveries SET lease_expires_at = ?
              WHERE id = ? AND claim_token = ? AND status = 'sending'",
        )
        .bind(expires)
        .bind(d.id)
        .bind(&d.claim_token)
        .execute(&self.pool)
        .await
        .map_err(q("renew lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// When something may next become claimable: the earliest retry time of a pending row,
    /// or lease expiry of one in flight. `None` when nothing is left to do.
    pub async fn next_wakeup(&self) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
        let now = Utc::now();
        let row = sqlx::query(
            "SELECT MIN(t) FROM (
                 SELECT COALESCE(next_attempt_at, ?) AS t FROM deliveries WHERE status = 'pending'
                 UNION ALL
                 SELECT lease_expires_at FROM deliveries WHERE status = 'sending')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(q("next wake-up"))?;
        let t: Option<String> = row.get(0);
        t.map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| StoreError::Corrupt {
                    what: "deliveries time",
                    message: format!("{t:?}: {e}"),
                })
        })
        .transpose()
    }

    /// Records that an alert of `kind` goes out on `day`; false when one already did.
    pub async fn claim_alert(
        &self,
        kind: &str,
        day: NaiveDate,
        subject: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO alerts (kind, day, subject, sent_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (kind, day) DO NOTHING",
        )
        .bind(kind)
        .bind(day)
        .bind(subject)
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(q("claim alert"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn unclaim_alert(&self, kind: &str, day: NaiveDate) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM alerts WHERE kind = ? AND day = ?")
            .bind(kind)
            .bind(day)
            .execute(&self.pool)
            .await
            .map_err(q("unclaim alert"))?;
        Ok(())
    }

    /// Puts the failed deliveries of `date` back in the queue; returns how many.
    pub async fn requeue_failed(&self, date: NaiveDate) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = NULL,
                    created_at = ?, updated_at = ?
              WHERE digest_date = ? AND status = 'failed'",
        )
        .bind(Utc::now())
        .bind(Utc::now())
        .bind(date)
        .execute(&self.pool)
        .await
        .map_err(q("requeue failed"))?;
        Ok(done.rows_affected())
    }

    /// Deliveries matching the filters, newest date first.
    pub async fn history(&self, f: &HistoryFilter) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest_date, subscriber, status, attempts, digest, message_id, smtp_reply,
                    error, updated_at, sent_at
               FROM deliveries
              WHERE (?1 IS NULL OR digest_date = ?1)
                AND (?2 IS NULL OR subscriber = ?2 COLLATE NOCASE)
                AND (?3 IS NULL OR status = ?3)
              ORDER BY digest_date DESC, id
              LIMIT ?4",
        )
        .bind(f.date)
        .bind(f.subscriber.as_deref())
        .bind(f.status.map(DeliveryStatus::as_str))
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("history"))?;
        rows.into_iter()
            .map(|r| {
                let digest: String = r.get(4);
                let digest: Digest =
                    serde_json::from_str(&digest).map_err(|e| StoreError::Corrupt {
                        what: "deliveries.digest",
                        message: e.to_string(),
                    })?;
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
    }

    /// Records an opt-out; returns false when the subscriber had already opted out.
    pub async fn opt_out(&self, subscriber: &str, via: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO optouts (subscriber, at, via) VALUES (?, ?, ?)
             ON CONFLICT (subscriber) DO NOTHING",
        )
        .bind(subscriber)
        .bind(Utc::now())
        .bind(via)
        .execute(&self.pool)
        .await
        .map_err(q("opt out"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Clears an opt-out; returns false when there was none.
    pub async fn resume(&self, subscriber: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM optouts WHERE subscriber = ? COLLATE NOCASE")
            .bind(subscriber)
            .execute(&self.pool)
            .await
            .map_err(q("resume"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Everyone who opted out, with when and how.
    pub async fn optouts(
        &self,
    ) -> Result<Vec<(String, chrono::DateTime<Utc>, String)>, StoreError> {
        let rows = sqlx::query("SELECT subscriber, at, via FROM optouts ORDER BY at")
            .fetch_all(&self.pool)
            .await
            .map_err(q("optouts"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    pub async fn is_opted_out(&self, subscriber: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM optouts WHERE subscriber = ?")
            .bind(subscriber)
            .fetch_one(&self.pool)
            .await
            .map_err(q("optout"))?;
        Ok(n > 0)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(q("ping"))?;
        Ok(())
    }

    /// How many runs are in each state.
    pub async fn run_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM runs GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(q("count runs"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// How many deliveries of every date are in each state.
    pub async fn counts_all(&self) -> Result<StatusCounts, StoreError> {
        self.counts_where(None).await
    }

    pub async fn counts(&self, date: NaiveDate) -> Result<StatusCounts, StoreError> {
        self.counts_where(Some(date)).await
    }

    async fn counts_where(&self, date: Option<NaiveDate>) -> Result<StatusCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM deliveries WHERE (?1 IS NULL OR digest_date = ?1)
              GROUP BY status",
        )
        .bind(date)
        .fetch_all(&self.pool)
        .await
        .map_err(q("count deliveries"))?;
        let mut c = StatusCounts::default();
        for r in rows {
            let n: i64 = r.get(1);
            match DeliveryStatus::parse(&r.get::<String, _>(0)) {
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
