//! What the feeder, the workers and the recorder of one delivery pass share: its options, its
//! state, the rows between them, and the two ways a claimed row is settled (an outcome handed
//! to the recorder, or the row handed back).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::limits::{Limits, RelayLimits};
use crate::config::Config;
use crate::domain::{ArxivId, Paper, SubscriberKey};
use crate::mail::Email;
use crate::render::Renderer;
use crate::store::{Delivery, DeliveryStatus, Finish, Store};

/// When a delivery pass ends, and how it stops early.
#[derive(Clone, Default)]
pub struct DeliverOptions {
    /// Return once nothing is due within this long (rows waiting for a subscriber's own
    /// delivery time stay pending for a later pass); `None` waits for everything.
    pub horizon: Option<Duration>,
    /// Cancelled: claim nothing more (finish what is in flight).
    pub stop: CancellationToken,
    /// Cancelled: abandon the message in flight, handing its row back untouched.
    pub hard_stop: CancellationToken,
    /// A plan is still writing rows for this pass: until this is cancelled, running out of
    /// due rows does not end the pass.
    pub planning: Option<CancellationToken>,
    /// The relay's budget this pass draws on: give every pass of one owner the same.
    pub relay_limits: RelayLimits,
}

/// Rows queued and claimed at once while a plan is being written. The database is free for
/// a claim or a record only between the plan's batches (about a tenth of a second each with
/// SQLite): the queue and the outcomes waiting to be recorded then hold that long of sending,
/// or sending stalls until planning ends.
pub(super) const QUEUED_WHILE_PLANNING: usize = 512;

/// Outcomes waiting for the recorder, and written by one `finish_many` at most.
pub(super) const OUTCOMES: usize = 2 * QUEUED_WHILE_PLANNING;

/// The pass's state, shared by its tasks.
pub(super) struct Shared {
    pub(super) opts: DeliverOptions,
    pub(super) cfg: Arc<Config>,
    pub(super) store: Store,
    pub(super) renderer: Arc<Renderer>,
    /// Subscriber key -> index in the config's list.
    pub(super) subscribers: HashMap<SubscriberKey, usize>,
    pub(super) limits: Arc<Limits>,
    pub(super) progress: Arc<Progress>,
    /// The papers of this pass, read once each (the same for every subscriber).
    pub(super) papers: RwLock<HashMap<ArxivId, Arc<Paper>>>,
    /// Outcomes, written by the recorder in batches.
    pub(super) outcomes: mpsc::Sender<Unrecorded>,
}

/// Messages handed to the server whose outcome is not yet recorded, at most: for
/// `concurrency` workers, 8 × concurrency. A worker takes one of these permits before a
/// message's data goes out and the recorder gives it back once the outcome is committed: a
/// message the server accepted counts until then, whether it is still on the wire, its
/// outcome waits for the recorder or the recorder is writing it. A process that dies (or a
/// database that cannot record) leaves at most this many messages accepted and unrecorded:
/// those are sent again, the only duplicates. A transaction a worker opened ahead for its
/// next message (see `SmtpSender::send`) holds no permit: its data is not sent before the
/// permit is taken, and a server discards a transaction whose data never ended.
pub(super) fn unrecorded_bound(concurrency: usize) -> usize {
    UNRECORDED_PER_WORKER * concurrency.max(1)
}

/// See [`unrecorded_bound`]: each worker's message on the wire and seven more outcomes, so
/// that the workers go on while the recorder commits a group (at most half the permits), and
/// a SQLite commit that waits for a batch of the plan does not stop them at once. With 4 a
/// worker, `send` of 10,000 subscribers on SQLite was some 6% slower than with no bound (the
/// workers waited for the plan's batches); with 8, 2-4% (BENCHMARKS.md).
const UNRECORDED_PER_WORKER: usize = 8;

/// What the feeder, the workers and the recorder share about the pass.
pub(super) struct Progress {
    /// Cancelled on the first error: claim nothing more, send nothing more, hand queued rows
    /// back.
    pub(super) abort: CancellationToken,
    /// The first error, which the pass ends with.
    pub(super) first_err: std::sync::Mutex<Option<anyhow::Error>>,
    /// Claimed rows whose outcome is not yet written (queued, being sent, or waiting for the
    /// recorder): while any are, the pass is not over.
    pub(super) in_flight: AtomicUsize,
    /// Told when the last claimed row is settled: the feeder, waiting for what is in flight,
    /// looks again then rather than at its next poll.
    pub(super) all_settled: tokio::sync::Notify,
    /// Permits for messages handed to the server and not yet recorded (see
    /// [`unrecorded_bound`]), and how many there are.
    pub(super) unrecorded: Arc<Semaphore>,
    pub(super) unrecorded_max: usize,
}

impl Progress {
    pub(super) fn new(concurrency: usize) -> Self {
        Self {
            abort: CancellationToken::new(),
            first_err: std::sync::Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            all_settled: tokio::sync::Notify::new(),
            unrecorded: Arc::new(Semaphore::new(unrecorded_bound(concurrency))),
            unrecorded_max: unrecorded_bound(concurrency),
        }
    }

    /// Claimed rows are settled (their outcome written, or the rows handed back).
    pub(super) fn settled(&self, n: usize) {
        if self.in_flight.fetch_sub(n, Ordering::SeqCst) == n {
            self.all_settled.notify_one();
        }
    }

    /// Stops the pass: the first error is the one it ends with.
    pub(super) fn fail(&self, e: anyhow::Error) {
        self.first_err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
        self.abort.cancel();
    }

    /// The error the pass ends with, if any.
    pub(super) fn take_err(&self) -> Option<anyhow::Error> {
        self.first_err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl Shared {
    pub(super) fn fail(&self, e: anyhow::Error) {
        self.progress.fail(e);
    }

    pub(super) fn stopping(&self) -> bool {
        self.progress.abort.is_cancelled() || self.opts.stop.is_cancelled()
    }

    pub(super) fn settled(&self, n: usize) {
        self.progress.settled(n);
    }
}

/// An outcome on its way to the recorder, with the permit of its message, if it was handed
/// to the server (given back once the outcome is committed).
pub(super) struct Unrecorded {
    pub(super) finish: Finish,
    pub(super) permit: Option<OwnedSemaphorePermit>,
}

/// A claimed delivery waiting for a worker.
pub(super) struct Job {
    pub(super) d: Delivery,
    pub(super) claimed: Instant,
}

/// A claimed delivery rendered and built, ready to be sent.
pub(super) struct Ready {
    pub(super) d: Delivery,
    /// The subscriber's place in the config's list.
    pub(super) subscriber: usize,
    pub(super) email: Email,
    pub(super) claimed: Instant,
}

/// Hands an outcome to the recorder, with the permit of its message if it was handed to the
/// server.
pub(super) async fn record(
    sh: &Shared,
    d: &Delivery,
    status: DeliveryStatus,
    reply: Option<&str>,
    error: Option<&str>,
    retry_at: Option<chrono::DateTime<Utc>>,
    permit: Option<OwnedSemaphorePermit>,
) -> anyhow::Result<()> {
    let finish = Finish {
        smtp_reply: reply.map(str::to_string),
        error: error.map(str::to_string),
        retry_at,
        ..Finish::new(d, status)
    };
    if (sh.outcomes.send(Unrecorded { finish, permit }).await).is_err() {
        sh.settled(1);
        anyhow::bail!("the delivery recorder stopped");
    }
    Ok(())
}

/// Hands a claimed row back untouched (settled at once).
pub(super) async fn release(
    sh: &Shared,
    d: &Delivery,
    error: Option<&str>,
    retry_at: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<()> {
    let r = sh.store.release(d, error, retry_at).await;
    sh.settled(1);
    Ok(r?)
}

/// How long ago `d` was planned.
pub(super) fn age(d: &Delivery) -> Duration {
    (Utc::now() - d.created_at)
        .to_std()
        .unwrap_or(Duration::ZERO)
}
