//! A delivery worker: takes queued rows one by one, waits for the relay's limits, prepares
//! each (rendering the next ahead while one is sent, when the relay is not limited) and
//! sends it over its own long-lived connection; after an error or a stop it hands rows back.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::pass::{Job, Ready, Shared};
use super::prepare::{prepare, prepare_queued};
use super::send::{Outcome, backoff, send_ready};
use crate::mail::Mailer;
use crate::store::Delivery;

/// Takes queued rows until the queue closes; after an error or a stop, hands them back.
pub(super) async fn worker(
    sh: Arc<Shared>,
    mut mailer: Mailer,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) -> u64 {
    let mut sent = 0;
    // Connection failures in a row: this worker backs off, and gives up the pass after
    // max_attempts of them (its deliveries stay pending, uncharged).
    let mut unreachable = 0u32;
    // With no relay limits, the next queued row is rendered before this one is sent, so that
    // the server can be told of it with this one (see `SmtpSender::send`).
    let look_ahead = !sh.cfg.delivery.rate_limited();
    let mut ahead: Option<Ready> = None;
    loop {
        let ready = match ahead.take() {
            Some(r) if !sh.stopping() => r,
            Some(r) => {
                hand_back_with_queued(&sh, &jobs, vec![r.d]).await;
                continue;
            }
            None => {
                // The relay's limits are waited for before a row is taken, so no claimed row
                // waits.
                if !sh.stopping() {
                    tokio::select! {
                        _ = sh.limits.acquire() => {}
                        _ = sh.opts.stop.cancelled() => {}
                    }
                }
                let job = jobs.lock().await.recv().await;
                let Some(job) = job else { break };
                if sh.stopping() {
                    hand_back_with_queued(&sh, &jobs, vec![job.d]).await;
                    continue;
                }
                match prepare(&sh, job).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        unreachable = 0;
                        continue;
                    }
                    Err(e) => {
                        sh.fail(e);
                        continue;
                    }
                }
            }
        };
        if look_ahead && mailer.takes_next() && !sh.stopping() {
            ahead = prepare_queued(&sh, &jobs).await;
        }
        let next = ahead.as_ref().map(|r| &r.email);
        match send_ready(&sh, &mut mailer, ready, next, unreachable).await {
            Ok(Outcome::Sent) => {
                sent += 1;
                unreachable = 0;
            }
            Ok(Outcome::Recorded) => unreachable = 0,
            Ok(Outcome::Stopped) => {}
            Ok(Outcome::Unavailable(e)) => {
                unreachable += 1;
                if unreachable >= sh.cfg.delivery.max_attempts {
                    sh.fail(anyhow::anyhow!(
                        "the SMTP server stayed unreachable ({unreachable} tries): {e}; \
                         the deliveries stay pending"
                    ));
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff(&sh.cfg.delivery, unreachable)) => {}
                    _ = sh.opts.stop.cancelled() => {}
                }
            }
            Err(e) => sh.fail(e),
        }
    }
    mailer.close().await;
    sent
}

/// Hands the rows a stopping worker has taken back untried, with all still queued, in one
/// write (up to QUEUED_WHILE_PLANNING of them, not one each; settled at once); a failure
/// stops the pass.
async fn hand_back_with_queued(
    sh: &Shared,
    jobs: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
    mut taken: Vec<Delivery>,
) {
    let mut rx = jobs.lock().await;
    while let Ok(job) = rx.try_recv() {
        taken.push(job.d);
    }
    drop(rx);
    let ds: Vec<&Delivery> = taken.iter().collect();
    if let Err(e) = sh.store.release_untried(&ds).await {
        sh.fail(e.into());
    }
    sh.settled(ds.len());
}
