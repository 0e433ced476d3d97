//! The feeder of a delivery pass: claims due rows in batches and queues them for the workers,
//! sized so that a claim serves many sends and no claimed row waits long.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;
use tracing::debug;

use super::paper_cache::load_papers;
use super::pass::{Job, QUEUED_WHILE_PLANNING, Shared};
use crate::digest::Digest;

/// Rows queued, and claimed by one query at most, while no plan is being written. The feeder
/// claims when the queue is half empty, so a claim (a write) serves about half this many
/// messages: 64 rather than 32 cost PostgreSQL about 15% less CPU over a run.
const CLAIM_BATCH: usize = 128;

/// Rows queued per worker at most: a queued row waits (under its lease, renewed after a
/// quarter of it) for about this many sends of one worker.
const QUEUED_PER_WORKER: usize = 16;

/// How many rows the queue holds while no plan is being written, for `workers` workers.
pub(super) fn usual_queue(workers: usize) -> usize {
    CLAIM_BATCH
        .min(QUEUED_PER_WORKER * workers)
        .max(2 * workers)
}

/// How often the feeder looks for rows whose lease ran out while its claims come back full.
const EXPIRED_EVERY: Duration = Duration::from_secs(1);

/// Claims due rows in batches and queues them, until nothing is due within the horizon and
/// nothing claimed is still unsettled (a transient failure may come back due), or stopped.
pub(super) async fn feeder(sh: &Shared, jobs: mpsc::Sender<Job>) -> anyhow::Result<()> {
    // Claim when the queue is half empty: claims of a row or two each (a write and a commit
    // apiece) would cost more than the sends they feed. While a plan is written, claims are
    // few and far between: the queue then holds up to QUEUED_WHILE_PLANNING rows, and
    // afterwards again as many as it holds without a plan (queued rows wait unrenewed).
    let planning = || (sh.opts.planning.as_ref()).is_some_and(|p| !p.is_cancelled());
    let usual = usual_queue(sh.cfg.delivery.concurrency).min(jobs.max_capacity());
    let mut expired_checked: Option<Instant> = None;
    while !sh.stopping() {
        let (target, most) = if planning() {
            (jobs.max_capacity(), QUEUED_WHILE_PLANNING)
        } else {
            (usual, CLAIM_BATCH)
        };
        // Claim only what the queue can take now, so that claimed rows do not wait long.
        let room = tokio::select! {
            permits = jobs.reserve_many(jobs.max_capacity() - target / 2) => {
                drop(permits?);
                let queued = jobs.max_capacity() - jobs.capacity();
                target.saturating_sub(queued).clamp(1, most)
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        let expired = expired_checked.is_none_or(|at| at.elapsed() >= EXPIRED_EVERY);
        if expired {
            // Rows of a process of this host that is gone are taken over now, with the rows
            // whose lease ran out.
            sh.store.expire_leases_of_the_gone().await?;
        }
        let batch = (sh.store)
            .claim_batch(sh.cfg.delivery.lease, room, expired)
            .await?;
        if expired {
            expired_checked = Some(Instant::now());
        }
        if batch.len() < room {
            expired_checked = None;
        }
        if batch.is_empty() {
            let wait = if planning() || sh.progress.in_flight.load(Ordering::SeqCst) > 0 {
                Duration::from_millis(20)
            } else {
                match sh.store.next_wakeup().await? {
                    None => break,
                    Some(at) => {
                        let until = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        if sh.opts.horizon.is_some_and(|h| until > h) {
                            break;
                        }
                        until.clamp(Duration::from_millis(20), Duration::from_secs(1))
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = sh.progress.all_settled.notified() => {}
                _ = sh.opts.stop.cancelled() => break,
            }
            continue;
        }
        sh.progress
            .in_flight
            .fetch_add(batch.len(), Ordering::SeqCst);
        let claimed = Instant::now();
        // The batch's papers, read here in one query: otherwise the workers that start
        // together each read them (a connection and a query each). A failure is left to
        // the workers, whose own read then fails the way a delivery can.
        let digests: Vec<&Digest> = batch.iter().map(|d| &d.digest).collect();
        if let Err(e) = load_papers(sh, &digests).await {
            debug!(error = %e, "reading a claimed batch's papers failed; the workers try again");
        }
        for d in batch {
            // The room was reserved above and only this task sends: this does not wait.
            if let Err(mpsc::error::SendError(job)) = jobs.send(Job { d, claimed }).await {
                sh.store.release(&job.d, None, None).await?;
                sh.settled(1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_sixteen_rows_a_worker_up_to_a_claims_batch() {
        assert_eq!(usual_queue(1), 16);
        assert_eq!(usual_queue(4), 64);
        assert_eq!(usual_queue(8), CLAIM_BATCH);
        assert_eq!(usual_queue(32), CLAIM_BATCH);
        assert_eq!(usual_queue(100), 200);
    }
}
