//! The recorder of a delivery pass: writes the workers' outcomes in groups, one transaction
//! for all that arrived while the previous one committed, and gives back the permits of
//! their messages (see `unrecorded_bound`). A write that fails stops the pass at once (no
//! message more is handed to the server) and is tried again, with backoff, its outcomes held,
//! until the database takes them, the rows' lease is over or the pass is stopped hard; the
//! outcomes then given up on are counted in the log and in the pass's error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::pass::{OUTCOMES, Progress, Unrecorded};
use crate::store::{DeliveryStatus, Finish, Store};

/// The recorder writes outcomes in groups of at least this many (or half the permits, if
/// fewer), waiting up to GROUP_WAIT for them, unless every permit is taken (the workers wait
/// for this write) or these are the outcomes of every row in flight.
const GROUP: usize = 32;
const GROUP_WAIT: Duration = Duration::from_millis(10);

/// The wait before writing held outcomes again: doubling from the first, at most the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How long the recorder keeps trying, and what stops it early.
pub(super) struct Patience {
    /// From the first failed write: the rows' lease (after it, another sender may take the
    /// rows over, and the outcomes are no longer ours to write).
    pub(super) lease: Duration,
    /// The pass is stopped hard: what is still held is given up.
    pub(super) hard_stop: CancellationToken,
}

/// Outcomes given up on.
#[derive(Default)]
struct Lost {
    outcomes: usize,
    /// Of which, messages the server accepted: they will be sent a second time.
    sent: usize,
}

/// Writes outcomes as they come, each time all that arrived while the previous write ran.
pub(super) async fn recorder(
    store: Store,
    progress: Arc<Progress>,
    patience: Patience,
    mut rx: mpsc::Receiver<Unrecorded>,
) {
    let mut buf = Vec::with_capacity(OUTCOMES);
    // Since when writes fail (None while they succeed).
    let mut failing_since: Option<Instant> = None;
    let mut lost = Lost::default();
    // At most half the permits: the workers send with the other half while a group commits.
    let group = GROUP.min(progress.unrecorded_max / 2).max(1);
    while rx.recv_many(&mut buf, OUTCOMES).await > 0 {
        // A few outcomes: wait a moment for more, so that a commit (a sync to disk with
        // SQLite) serves a group rather than one or two; unless no more can come before
        // this write (every permit is taken, or these are the outcomes of every row in
        // flight).
        let gather = Instant::now() + GROUP_WAIT;
        while buf.len() < group
            && buf.len() < progress.in_flight.load(Ordering::SeqCst)
            && progress.unrecorded.available_permits() > 0
            && let Ok(n) = tokio::time::timeout_at(gather, rx.recv_many(&mut buf, OUTCOMES)).await
            && n > 0
        {}
        let (finishes, permits): (Vec<Finish>, Vec<_>) =
            buf.drain(..).map(|u| (u.finish, u.permit)).unzip();
        write(
            &store,
            &progress,
            &patience,
            &finishes,
            &mut failing_since,
            &mut lost,
        )
        .await;
        progress.settled(finishes.len());
        // The permits of these messages: others may go out now.
        drop(permits);
    }
    if lost.outcomes > 0 {
        let why = format!(
            "{} delivery outcomes could not be recorded ({} of them of messages the server \
             accepted, which will be sent a second time); their deliveries stay in flight \
             until their lease ends",
            lost.outcomes, lost.sent
        );
        error!("{why}");
        let cause = (progress.take_err()).unwrap_or_else(|| anyhow::anyhow!("the database"));
        progress.fail(cause.context(why));
    }
}

/// Writes one group of outcomes, trying again while the database refuses; on the first
/// failure, stops the pass.
async fn write(
    store: &Store,
    progress: &Progress,
    patience: &Patience,
    finishes: &[Finish],
    failing_since: &mut Option<Instant>,
    lost: &mut Lost,
) {
    let mut tries = 0u32;
    loop {
        match store.finish_many(finishes).await {
            Ok(ours) => {
                for (f, ours) in finishes.iter().zip(ours) {
                    if !ours && tries == 0 {
                        warn!(
                            delivery = f.id,
                            outcome = f.status.as_str(),
                            "the lease ran out before the outcome was recorded; another \
                             sender has the delivery"
                        );
                    } else if !ours {
                        // A try that failed may have committed before its answer was lost.
                        warn!(
                            delivery = f.id,
                            outcome = f.status.as_str(),
                            "the outcome was not written again: a try before wrote it (its \
                             answer lost), or the lease ran out and another sender has the \
                             delivery"
                        );
                    }
                }
                if tries > 0 {
                    info!(
                        outcomes = finishes.len(),
                        tries = tries + 1,
                        "the outcomes held were recorded"
                    );
                }
                *failing_since = None;
                return;
            }
            Err(e) => {
                tries += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                let sent = (finishes.iter())
                    .filter(|f| f.status == DeliveryStatus::Sent)
                    .count();
                let give_up =
                    since.elapsed() >= patience.lease || patience.hard_stop.is_cancelled();
                if give_up {
                    error!(
                        outcomes = finishes.len(),
                        sent,
                        error = %e,
                        "giving up recording these outcomes"
                    );
                } else {
                    warn!(
                        error = %e,
                        try_ = tries,
                        outcomes = finishes.len(),
                        sent,
                        "recording outcomes failed; sending stopped, the outcomes are held \
                         and written again"
                    );
                }
                // No message more goes out; the first cause is the pass's error.
                progress
                    .fail(anyhow::Error::new(e).context(
                        "recording delivery outcomes failed, so the pass stopped sending",
                    ));
                if give_up {
                    lost.outcomes += finishes.len();
                    lost.sent += sent;
                    return;
                }
                let wait = RETRY_FIRST
                    .saturating_mul(1 << (tries - 1).min(16))
                    .min(RETRY_MAX);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = patience.hard_stop.cancelled() => {}
                }
            }
        }
    }
}
