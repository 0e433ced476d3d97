//! Runs, alerts, opt-outs, history and counts: the records around the delivery ledger.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::connect::{Pool, Store};
use super::sql::{corrupt_json, q};
use super::{DeliveryStatus, HistoryFilter, HistoryRow, RunRecord, StatusCounts, StoreError};
use crate::digest::Digest;
use crate::domain::SubscriberKey;

impl Store {
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
                    AND ($2 IS NULL OR subscriber = $2)
                    AND ($3 IS NULL OR status = $3)
                  ORDER BY digest_date DESC, id
                  LIMIT $4",
            )
            .bind(f.date)
            .bind(f.subscriber.as_ref().map(SubscriberKey::as_str))
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
                        subscriber: SubscriberKey::from_stored(r.get(1)),
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
    pub async fn opt_out(&self, subscriber: &SubscriberKey, via: &str) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO optouts (subscriber, at, via) VALUES ($1, $2, $3)
                 ON CONFLICT (subscriber) DO NOTHING",
            )
            .bind(subscriber.as_str())
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
    pub async fn resume(&self, subscriber: &SubscriberKey) -> Result<bool, StoreError> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM optouts WHERE subscriber = $1")
                .bind(subscriber.as_str())
                .execute(pool)
                .await
                .map_err(q("resume"))?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Everyone who opted out, with when and how.
    pub async fn optouts(&self) -> Result<Vec<(SubscriberKey, DateTime<Utc>, String)>, StoreError> {
        let rows: Vec<(String, DateTime<Utc>, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT subscriber, at, via FROM optouts ORDER BY at")
                .fetch_all(pool)
                .await
                .map_err(q("optouts"))?
        });
        Ok(rows
            .into_iter()
            .map(|(who, at, via)| (SubscriberKey::from_stored(who), at, via))
            .collect())
    }

    /// Whether `subscriber` opted out.
    pub async fn is_opted_out(&self, subscriber: &SubscriberKey) -> Result<bool, StoreError> {
        let found: Option<i32> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT 1 FROM optouts WHERE subscriber = $1")
                .bind(subscriber.as_str())
                .fetch_optional(pool)
                .await
                .map_err(q("optout"))?
        });
        Ok(found.is_some())
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
