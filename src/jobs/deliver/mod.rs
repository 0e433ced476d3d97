//! Delivering a date's planned emails with `delivery.concurrency` workers, each with its own
//! long-lived connection: claim a row (a lease), render, wait for the relay limits, send,
//! record the outcome. Transient failures come back after a jittered exponential backoff until
//! `max_attempts` or `give_up_after`; permanent ones are recorded failed with the reply.

mod feeder;
mod limits;
mod paper_cache;
mod pass;
mod prepare;
mod recorder;
mod send;
mod worker;

pub use limits::RelayLimits;
pub use pass::DeliverOptions;
pub(crate) use prepare::{Row, Unmade, email_for};
pub use send::backoff;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::mail::Mailer;
use crate::render::Renderer;
use crate::store::Store;
use feeder::{feeder, usual_queue};
use pass::{Job, OUTCOMES, Progress, QUEUED_WHILE_PLANNING, Shared};
use recorder::{Patience, recorder};
use worker::worker;

/// Sends every delivery that is or becomes due, whatever its date (a run also finishes what an
/// interrupted one left), and returns when none is pending or in flight any more (or, with a
/// horizon, none falls due within it; or when stopped). A recipient's SMTP error is recorded
/// on its row and does not stop the others; a template error or a session error (login or
/// sender refused) stops the run and leaves the row pending. Returns how many were sent by
/// this call.
///
/// One feeder claims due rows in batches and queues them for `delivery.concurrency` workers,
/// each with its own long-lived connection (with no relay limits, a worker renders the next
/// queued row before it sends one, and tells the server of it with this one: see
/// `SmtpSender::send`); one recorder writes the outcomes, as many per
/// transaction as have arrived while the previous one committed. So the database sees a
/// claim per batch and a commit per group of outcomes, not several writes per message.
/// A crash loses at most the outcomes not yet written: those rows are still "sending" and are
/// sent again once their lease expires (at once, by a process of the same host, when the
/// process that claimed them is gone), like any message in flight. At most
/// 8 × `delivery.concurrency` messages are handed to the server and unrecorded at any time
/// (see `unrecorded_bound`): no more can arrive twice. An outcome that cannot be recorded
/// stops the pass at once; the recorder keeps trying it (see `recorder`).
pub async fn deliver(
    cfg: Arc<Config>,
    store: Store,
    renderer: Arc<Renderer>,
    opts: DeliverOptions,
) -> anyhow::Result<u64> {
    let workers = cfg.delivery.concurrency;
    // Runs left running by a process of this host that is gone are recorded failed (their
    // deliveries are taken over by the feeder's first claim).
    if let Err(e) = store.settle_runs_of_the_gone().await {
        tracing::warn!(error = %e, "looking for runs of processes that are gone");
    }
    let mut mailers = Vec::with_capacity(workers);
    for _ in 0..workers {
        mailers.push(Mailer::from_config(&cfg)?);
    }
    let (outcomes, outcomes_rx) = mpsc::channel(OUTCOMES);
    let shared = Arc::new(Shared {
        subscribers: cfg
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.email.key(), i))
            .collect(),
        limits: opts.relay_limits.limits(&cfg.delivery),
        cfg,
        store,
        renderer,
        opts,
        progress: Arc::new(Progress::new(workers)),
        papers: RwLock::new(HashMap::new()),
        outcomes,
    });
    // Rows queued hold their lease while they wait. With relay limits, a worker waits for its
    // permit before it takes a row, and the queue holds one row: no claimed row waits for the
    // limiter.
    let depth = if shared.cfg.delivery.rate_limited() {
        1
    } else if shared.opts.planning.is_some() {
        QUEUED_WHILE_PLANNING.max(2 * workers)
    } else {
        usual_queue(workers)
    };
    let (jobs, jobs_rx) = mpsc::channel::<Job>(depth);
    let jobs_rx = Arc::new(tokio::sync::Mutex::new(jobs_rx));
    let patience = Patience {
        lease: shared.cfg.delivery.lease,
        hard_stop: shared.opts.hard_stop.clone(),
    };
    let recorder = tokio::spawn(recorder(
        shared.store.clone(),
        shared.progress.clone(),
        patience,
        outcomes_rx,
    ));
    let mut set = tokio::task::JoinSet::new();
    for mailer in mailers {
        set.spawn(worker(shared.clone(), mailer, jobs_rx.clone()));
    }
    // Only the workers hold the queue's receiving end: if they all die, the feeder's sends
    // fail instead of waiting for room forever.
    drop(jobs_rx);
    let feeding = {
        let sh = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = feeder(&sh, jobs).await {
                sh.fail(e);
            }
        })
    };
    let mut sent = 0;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(n) => sent += n,
            // A worker that panicked: stop the pass (the feeder stops claiming; the row it
            // held waits for its lease).
            Err(e) => shared.fail(anyhow::anyhow!("a delivery worker died: {e}")),
        }
    }
    if let Err(e) = feeding.await {
        shared.fail(anyhow::anyhow!("the delivery feeder died: {e}"));
    }
    // The workers are gone: the recorder writes what is left and ends.
    let Ok(shared) = Arc::try_unwrap(shared) else {
        anyhow::bail!("a delivery task outlived the pass");
    };
    let Shared {
        outcomes, progress, ..
    } = shared;
    drop(outcomes);
    if let Err(e) = recorder.await {
        progress.fail(anyhow::anyhow!("the delivery recorder died: {e}"));
    }
    match progress.take_err() {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}
