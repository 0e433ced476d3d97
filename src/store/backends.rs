//! What differs between the backends: how a plan's rows are inserted and how a batch of
//! outcomes is written.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::sql::{Finish, PLAN_CHUNK, q};
use super::{DeliveryStatus, NewDelivery, StoreError};

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
pub(super) async fn plan_sqlite(
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
