//! Papers, daily lists, and what each subscriber was already sent.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, Utc};

use super::connect::{Pool, Store};
use super::sql::{corrupt_json, marks, q};
use super::{SentPairs, StoreError};
use crate::domain::{ArxivId, Paper, SubscriberKey};

/// Papers per statement that stores papers or a list (5 binds a row at most: well under
/// either backend's limit on binds).
const PAPERS_CHUNK: usize = 500;

/// The subscribers that already have a delivery of the date `$1`.
pub(super) const PLANNED_SUBSCRIBERS: &str =
    "SELECT subscriber FROM deliveries WHERE digest_date = $1";

impl Store {
    /// Stores papers, updating the ones already known (upvotes rise during the day): a
    /// statement per 500 papers, not one per paper (the plan waits for it before its first
    /// rows). A paper listed twice is stored as listed last.
    pub async fn upsert_papers(&self, papers: &[Paper]) -> Result<(), StoreError> {
        let now = Utc::now();
        // One row per paper, its last: PostgreSQL refuses a statement that updates a row
        // twice.
        let mut seen = HashSet::with_capacity(papers.len());
        let mut rows = Vec::with_capacity(papers.len());
        for p in papers.iter().rev().filter(|p| seen.insert(p.id.as_str())) {
            let data = serde_json::to_string(p).map_err(corrupt_json("paper to JSON"))?;
            rows.push((p.id.as_str(), data));
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(q("begin upsert papers"))?;
            for chunk in rows.chunks(PAPERS_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO papers (arxiv_id, data, first_seen_at, updated_at) ",
                );
                qb.push_values(chunk, |mut b, (id, data)| {
                    b.push_bind(*id).push_bind(data).push_bind(now).push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (arxiv_id) DO UPDATE
                        SET data = excluded.data, updated_at = excluded.updated_at",
                );
                // Sized by the day's list: not worth a prepared statement per size.
                qb.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("upsert papers"))?;
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
            for (c, chunk) in papers.chunks(PAPERS_CHUNK).enumerate() {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO daily_list (digest_date, arxiv_id, rank, upvotes, fetched_at) ",
                );
                let ranked = chunk.iter().enumerate().map(|(i, p)| (c * PAPERS_CHUNK + i, p));
                qb.push_values(ranked, |mut b, (rank, p)| {
                    b.push_bind(date)
                        .push_bind(p.id.as_str())
                        .push_bind(rank as i64)
                        .push_bind(p.upvotes)
                        .push_bind(now);
                });
                qb.build()
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert daily list"))?;
            }
            tx.commit().await.map_err(q("commit replace list"))
        })
    }

    /// The ids of the stored list of `date` (empty when it was never fetched), but those that
    /// are not arXiv ids (see [`ArxivId::from_stored`]).
    pub async fn list_ids(&self, date: NaiveDate) -> Result<HashSet<ArxivId>, StoreError> {
        let ids: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT arxiv_id FROM daily_list WHERE digest_date = $1")
                .bind(date)
                .fetch_all(pool)
                .await
                .map_err(q("select list"))?
        });
        Ok(ids
            .iter()
            .filter_map(|id| ArxivId::from_stored(id, "daily_list.arxiv_id"))
            .collect())
    }

    /// Papers by id, as last fetched; one stored under an id that is not an arXiv id is left
    /// out (see [`ArxivId::from_stored`]).
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
                if ArxivId::from_stored(&id, "papers.arxiv_id").is_none() {
                    continue;
                }
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
        subscriber: &SubscriberKey,
        date: NaiveDate,
        papers: &[Paper],
    ) -> Result<HashSet<ArxivId>, StoreError> {
        Ok(self
            .sent_pairs(Some(subscriber), papers, date)
            .await?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    /// For `papers` (not of `date`'s list): which subscribers already have them from a date
    /// other than `date`.
    pub async fn sent_pairs_of(
        &self,
        papers: &[Paper],
        date: NaiveDate,
    ) -> Result<SentPairs, StoreError> {
        self.sent_pairs(None, papers, date).await
    }

    /// (subscriber, paper) pairs of `papers` sent or on their way on a date other than `date`,
    /// for one subscriber or all: one query per 500 papers.
    async fn sent_pairs(
        &self,
        subscriber: Option<&SubscriberKey>,
        papers: &[Paper],
        date: NaiveDate,
    ) -> Result<SentPairs, StoreError> {
        let mut out = SentPairs::new();
        for chunk in papers.chunks(500) {
            // Each set's delivery ids, unnested, joined to their deliveries. Only the fixed
            // unnesting and "$N" placeholders are spliced in; the values are bound.
            let ids = match self.pool {
                Pool::Sqlite(_) => {
                    "json_each(s.delivery_ids) AS u JOIN deliveries d ON d.id = u.value"
                }
                Pool::Postgres(_) => {
                    "unnest(s.delivery_ids) AS u(id) JOIN deliveries d ON d.id = u.id"
                }
            };
            let sql = format!(
                "SELECT d.subscriber, s.arxiv_id FROM delivery_paper_sets s CROSS JOIN {ids}
                  WHERE s.arxiv_id IN ({}) AND s.digest_date <> $2
                    AND ($1 IS NULL OR d.subscriber = $1)
                    AND d.status IN ('pending', 'sending', 'sent')",
                marks(3, chunk.len())
            );
            let rows: Vec<(String, String)> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(subscriber.map(SubscriberKey::as_str))
                    .bind(date);
                for p in chunk {
                    query = query.bind(p.id.as_str());
                }
                query.fetch_all(pool).await.map_err(q("select sent pairs"))?
            });
            // The ids come back as bound: take the papers' own.
            let ids: HashMap<&str, &ArxivId> =
                chunk.iter().map(|p| (p.id.as_str(), &p.id)).collect();
            out.extend(rows.into_iter().filter_map(|(who, id)| {
                let id = ids.get(id.as_str())?;
                Some((SubscriberKey::from_stored(who), (*id).clone()))
            }));
        }
        Ok(out)
    }

    /// Subscribers that already have a delivery row for `date`.
    pub async fn planned_subscribers(
        &self,
        date: NaiveDate,
    ) -> Result<HashSet<SubscriberKey>, StoreError> {
        let who: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar(PLANNED_SUBSCRIBERS)
                .bind(date)
                .fetch_all(pool)
                .await
                .map_err(q("select planned"))?
        });
        Ok(who.into_iter().map(SubscriberKey::from_stored).collect())
    }
}
