//! What differs between the backends: how a plan's rows are inserted and how a batch of
//! outcomes is written.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::sql::q;
use super::{DeliveryStatus, Finish, NewDelivery, StoreError};

/// Rows per multi-row INSERT when planning (10 binds a row: well under either backend's limit).
const PLAN_CHUNK: usize = 500;

/// The rows a `Finish` writes besides its status: when it may be claimed again (a row going
/// back to pending is due at once unless told otherwise) and when it was sent.
fn finish_times(f: &Finish, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let next = (f.status == DeliveryStatus::Pending).then(|| f.retry_at.unwrap_or(now));
    let sent_at = (f.status == DeliveryStatus::Sent).then_some(now);
    (next, sent_at)
}

/// Outcomes per SQLite statement: a batch is cut into pieces of these sizes (the largest
/// first), so that SQLite prepares at most four statements once each and keeps them, instead
/// of parsing a statement of a new size for nearly every batch. (9 binds an outcome: far
/// under SQLite's limit of 32,766.)
const FINISH_SIZES: [usize; 4] = [64, 16, 4, 1];

/// `n` cut into pieces of [`FINISH_SIZES`], the largest first.
fn finish_pieces(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for size in FINISH_SIZES {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    out
}

/// SQLite: one UPDATE … FROM (VALUES …) per piece of the batch, all in one transaction (one
/// commit). A statement per outcome would cost a round trip to SQLite's worker thread each.
pub(super) async fn finish_sqlite(
    pool: &SqlitePool,
    done: &[Finish],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = pool.begin().await.map_err(q("begin finish deliveries"))?;
    let mut updated = HashSet::with_capacity(done.len());
    let mut rest = done;
    for size in finish_pieces(done.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut qb =
            sqlx::QueryBuilder::new("WITH f(id, token, status, reply, error, next, sent_at) AS (");
        qb.push_values(chunk, |mut b, f| {
            let (next, sent_at) = finish_times(f, now);
            b.push_bind(f.id)
                .push_bind(&f.claim_token)
                .push_bind(f.status.as_str())
                .push_bind(f.smtp_reply.as_deref())
                .push_bind(f.error.as_deref())
                .push_bind(next)
                .push_bind(sent_at);
        });
        qb.push(
            ") UPDATE deliveries
                 SET status = f.status, smtp_reply = COALESCE(f.reply, deliveries.smtp_reply),
                     error = f.error, lease_expires_at = NULL, claim_token = NULL,
                     next_attempt_at = f.next, updated_at = ",
        );
        qb.push_bind(now);
        qb.push(
            ", sent_at = COALESCE(f.sent_at, deliveries.sent_at)
                FROM f
               WHERE deliveries.id = f.id AND deliveries.claim_token = f.token
                 AND deliveries.status = 'sending'
           RETURNING deliveries.id",
        );
        let ids: Vec<i64> = qb
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(q("finish deliveries"))?;
        updated.extend(ids);
    }
    tx.commit().await.map_err(q("commit finish deliveries"))?;
    Ok(done.iter().map(|f| updated.contains(&f.id)).collect())
}

/// PostgreSQL: one UPDATE for the whole batch, its values passed as arrays (a round trip
/// per outcome would cost more than the update itself).
pub(super) async fn finish_postgres(
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

/// One paper's deliveries among those just inserted: a row of `delivery_paper_sets`.
#[derive(Debug, PartialEq)]
struct PaperSet<'a> {
    arxiv_id: &'a str,
    /// The smallest of `ids` (with the paper, the row's key).
    first: i64,
    /// Ascending.
    ids: Vec<i64>,
}

/// Delivery ids in one row of `delivery_paper_sets`, at most. A row stays under PostgreSQL's
/// TOAST threshold (about 2 KB): a longer array was compressed with pglz as it was written,
/// 15% of the server's CPU while a plan was written. Readers unnest every row of a paper, so
/// one paper's deliveries of one write may take several rows.
pub(super) const SET_IDS: usize = 200;

/// The deliveries just inserted (`rows`: id and subscriber; a row another instance inserted
/// first is not among them) grouped by paper, papers in order, each paper's ids cut into
/// rows of at most `SET_IDS`.
fn paper_sets<'a>(chunk: &'a [NewDelivery], rows: &[(i64, String)]) -> Vec<PaperSet<'a>> {
    // The rows come back with the keys' text as bound: matched as text, here at the edge.
    let by_subscriber: HashMap<&str, &NewDelivery> =
        chunk.iter().map(|d| (d.subscriber.as_str(), d)).collect();
    let mut sets: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (id, who) in rows {
        if let Some(d) = by_subscriber.get(who.as_str()) {
            for paper in d.digest.paper_ids() {
                sets.entry(paper.as_str()).or_default().push(*id);
            }
        }
    }
    let mut out = Vec::with_capacity(sets.len());
    for (arxiv_id, mut ids) in sets {
        ids.sort_unstable();
        ids.dedup();
        for piece in ids.chunks(SET_IDS) {
            out.push(PaperSet {
                arxiv_id,
                first: piece[0],
                ids: piece.to_vec(),
            });
        }
    }
    out
}

/// Inserts `sets` in `tx`, a row per set, `ids` giving a set's delivery ids as the backend
/// stores them (SQLite: a JSON array; PostgreSQL: an array). 4 binds a row: PLAN_CHUNK rows
/// are far under either backend's limit, a day's list is one statement.
macro_rules! insert_sets {
    ($tx:ident, $sets:expr, $date:expr, |$set:ident| $ids:expr) => {
        for part in $sets.chunks(PLAN_CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO delivery_paper_sets (arxiv_id, digest_date, first_delivery_id,
                     delivery_ids) ",
            );
            qb.push_values(part, |mut b, $set: &PaperSet| {
                b.push_bind($set.arxiv_id)
                    .push_bind($date)
                    .push_bind($set.first)
                    .push_bind($ids);
            });
            qb.build()
                .persistent(false)
                .execute(&mut *$tx)
                .await
                .map_err(q("insert delivery paper sets"))?;
        }
    };
}

/// SQLite: multi-row INSERTs of PLAN_CHUNK deliveries, then one row per paper, in one
/// transaction.
pub(super) async fn plan_sqlite(
    pool: &SqlitePool,
    date: NaiveDate,
    planned: &[NewDelivery],
    digests: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await.map_err(q("begin plan"))?;
    let mut all_rows = Vec::with_capacity(planned.len());
    for (chunk, digests) in planned.chunks(PLAN_CHUNK).zip(digests.chunks(PLAN_CHUNK)) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO deliveries (subscriber, digest_date, status, message_id, digest,
                 paper_count, error, next_attempt_at, created_at, updated_at) ",
        );
        qb.push_values(chunk.iter().zip(digests), |mut b, (d, digest)| {
            b.push_bind(d.subscriber.as_str())
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
        all_rows.extend(rows);
    }
    insert_sets!(tx, paper_sets(planned, &all_rows), date, |set| json_ids(
        &set.ids
    ));
    tx.commit().await.map_err(q("commit plan"))?;
    Ok(all_rows.len() as u64)
}

/// PostgreSQL: the deliveries passed as arrays and unnested (a VALUES list of thousands of
/// binds costs PostgreSQL more to parse than to insert), then one row per paper, in one
/// transaction.
pub(super) async fn plan_postgres(
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
    insert_sets!(tx, paper_sets(planned, &rows), date, |set| &set.ids);
    tx.commit().await.map_err(q("commit plan"))?;
    Ok(rows.len() as u64)
}

/// Delivery ids as a JSON array, as SQLite's json_each reads them.
fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("a list of integers is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Digest, DigestGroup};
    use crate::domain::{ArxivId, SubscriberKey};

    fn planned(who: &str, groups: &[&[&str]]) -> NewDelivery {
        let groups = groups
            .iter()
            .map(|papers| DigestGroup {
                topic: "t".into(),
                papers: papers.iter().map(|p| ArxivId::parse(p).unwrap()).collect(),
            })
            .collect();
        NewDelivery {
            subscriber: SubscriberKey::from_stored(who.into()),
            message_id: format!("<{who}>"),
            digest: Digest { groups },
            status: DeliveryStatus::Pending,
            note: None,
            not_before: None,
        }
    }

    #[test]
    fn each_paper_gets_one_set_of_the_deliveries_actually_inserted() {
        let chunk = [
            planned("a@x.org", &[&["2604.00002", "2604.00001"]]),
            planned("b@x.org", &[&["2604.00001"], &["2604.00001", "2604.00003"]]),
            planned("c@x.org", &[&["2604.00003"]]),
            planned("d@x.org", &[]),
        ];
        // c was inserted by another instance first: not returned, not in any set.
        let rows = [
            (12, "b@x.org".into()),
            (11, "a@x.org".into()),
            (14, "d@x.org".into()),
        ];
        let sets = paper_sets(&chunk, &rows);
        let set = |arxiv_id, ids: &[i64]| PaperSet {
            arxiv_id,
            first: ids[0],
            ids: ids.to_vec(),
        };
        assert_eq!(
            sets,
            [
                set("2604.00001", &[11, 12]),
                set("2604.00002", &[11]),
                set("2604.00003", &[12]),
            ]
        );
        assert_eq!(json_ids(&sets[0].ids), "[11,12]");
        assert_eq!(json_ids(&[]), "[]");
    }

    #[test]
    fn a_paper_of_many_deliveries_takes_rows_of_at_most_set_ids() {
        let chunk: Vec<NewDelivery> = (0..1000)
            .map(|i| {
                let mut papers: Vec<&str> = vec!["2604.00001"];
                if i % 3 == 0 {
                    papers.push("2604.00002");
                }
                planned(&format!("r{i}@x.org"), &[&papers])
            })
            .collect();
        // Ids as an insert returns them, not in order.
        let rows: Vec<(i64, String)> = (0..1000)
            .rev()
            .map(|i| (5000 + i, format!("r{i}@x.org")))
            .collect();
        let sets = paper_sets(&chunk, &rows);
        for (paper, expected) in [
            (
                "2604.00001",
                (0..1000).map(|i| 5000 + i).collect::<Vec<i64>>(),
            ),
            (
                "2604.00002",
                (0..1000).step_by(3).map(|i| 5000 + i).collect(),
            ),
        ] {
            let mine: Vec<&PaperSet> = sets.iter().filter(|s| s.arxiv_id == paper).collect();
            assert_eq!(mine.len(), expected.len().div_ceil(SET_IDS), "{paper}");
            assert!(
                mine.iter()
                    .all(|s| s.ids.len() <= SET_IDS && s.first == s.ids[0])
            );
            let all: Vec<i64> = mine.iter().flat_map(|s| s.ids.iter().copied()).collect();
            assert_eq!(all, expected, "{paper}: every id once, in order");
        }
    }

    #[test]
    fn a_batch_is_cut_into_few_pieces_of_the_prepared_sizes() {
        for n in 0..300 {
            let pieces = finish_pieces(n);
            assert_eq!(pieces.iter().sum::<usize>(), n);
            assert!(pieces.iter().all(|p| FINISH_SIZES.contains(p)));
            assert!(pieces.is_sorted_by(|a, b| a >= b));
            assert!(pieces.len() <= n / 64 + 9, "{n}: {pieces:?}");
        }
    }
}
