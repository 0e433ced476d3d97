//! Delivering a date's planned emails with `delivery.concurrency` workers, each with its own
//! long-lived connection: claim a row (a lease), render, wait for the relay limits, send,
//! record the outcome. Transient failures come back after a jittered exponential backoff until
//! `max_attempts` or `give_up_after`; permanent ones are recorded failed with the reply.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use backon::BackoffBuilder;
use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::delivery_policy::DeliveryPolicy;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, SubscriberKey};
use crate::mail::{Email, Head, MailError, Mailer, UnsubscribeLinks, build_email};
use crate::render::Renderer;
use crate::store::{Delivery, DeliveryStatus, Finish, Store};

/// The relay's limits, shared by all workers.
struct Limits {
    per_second: Option<DefaultDirectRateLimiter>,
    per_hour: Option<DefaultDirectRateLimiter>,
}

impl Limits {
    /// The process's limiter for these limits: one across all passes, so that a new pass does
    /// not start a fresh hour's budget.
    fn shared(p: &DeliveryPolicy) -> Arc<Self> {
        type Keyed = Option<((u32, u32), Arc<Limits>)>;
        static CURRENT: std::sync::Mutex<Keyed> = std::sync::Mutex::new(None);
        let key = (p.max_per_second, p.max_per_hour);
        let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        match &*cur {
            Some((k, l)) if *k == key => l.clone(),
            _ => {
                let l = Arc::new(Self::new(p));
                *cur = Some((key, l.clone()));
                l
            }
        }
    }

    fn new(p: &DeliveryPolicy) -> Self {
        Self {
            per_second: NonZeroU32::new(p.max_per_second)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            per_hour: NonZeroU32::new(p.max_per_hour)
                .map(|n| RateLimiter::direct(Quota::per_hour(n))),
        }
    }

    async fn acquire(&self) {
        if let Some(l) = &self.per_hour {
            l.until_ready().await;
        }
        if let Some(l) = &self.per_second {
            l.until_ready().await;
        }
    }
}

/// The delay before attempt `attempts + 1`: retry_base doubling up to retry_max, plus up to
/// 100% jitter so that failed deliveries do not come back in lockstep.
pub fn backoff(p: &DeliveryPolicy, attempts: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(p.retry_base)
        .with_max_delay(p.retry_max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(p.retry_max)
}

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
}

/// The recorder writes outcomes in groups of at least this many, waiting up to GROUP_WAIT
/// for them (a crash loses the outcomes not written yet: those messages go again).
const GROUP: usize = 32;
const GROUP_WAIT: Duration = Duration::from_millis(10);

/// Rows queued, and claimed by one query at most, while no plan is being written. The feeder
/// claims when the queue is half empty, so a claim (a write) serves about half this many
/// messages: 64 rather than 32 cost PostgreSQL about 15% less CPU over a run.
const CLAIM_BATCH: usize = 128;

/// Rows queued per worker at most: a queued row waits (under its lease, renewed after a
/// quarter of it) for about this many sends of one worker.
const QUEUED_PER_WORKER: usize = 16;

/// How many rows the queue holds while no plan is being written, for `workers` workers.
fn usual_queue(workers: usize) -> usize {
    CLAIM_BATCH
        .min(QUEUED_PER_WORKER * workers)
        .max(2 * workers)
}

/// Rows queued and claimed at once while a plan is being written. The database is free for
/// a claim or a record only between the plan's batches (about a tenth of a second each with
/// SQLite): the queue and the outcomes waiting to be recorded then hold that long of sending,
/// or sending stalls until planning ends.
const QUEUED_WHILE_PLANNING: usize = 512;

/// Outcomes waiting for the recorder, and written by one `finish_many` at most.
const OUTCOMES: usize = 2 * QUEUED_WHILE_PLANNING;

/// How often the feeder looks for rows whose lease ran out while its claims come back full.
const EXPIRED_EVERY: Duration = Duration::from_secs(1);

struct Shared {
    opts: DeliverOptions,
    cfg: Arc<Config>,
    store: Store,
    renderer: Arc<Renderer>,
    /// Subscriber key -> index in the config's list.
    subscribers: HashMap<SubscriberKey, usize>,
    limits: Arc<Limits>,
    progress: Arc<Progress>,
    first_err: std::sync::Mutex<Option<anyhow::Error>>,
    /// The papers of this pass, read once each (the same for every subscriber).
    papers: RwLock<HashMap<ArxivId, Arc<Paper>>>,
    /// Outcomes, written by the recorder in batches.
    outcomes: mpsc::Sender<Finish>,
}

/// What the feeder, the workers and the recorder share about the pass.
#[derive(Default)]
struct Progress {
    /// Set on the first error: claim nothing more, hand queued rows back.
    abort: AtomicBool,
    /// Claimed rows whose outcome is not yet written (queued, being sent, or waiting for the
    /// recorder): while any are, the pass is not over.
    in_flight: AtomicUsize,
    /// Told when the last claimed row is settled: the feeder, waiting for what is in flight,
    /// looks again then rather than at its next poll.
    all_settled: tokio::sync::Notify,
}

impl Progress {
    /// Claimed rows are settled (their outcome written, or the rows handed back).
    fn settled(&self, n: usize) {
        if self.in_flight.fetch_sub(n, Ordering::SeqCst) == n {
            self.all_settled.notify_one();
        }
    }
}

impl Shared {
    fn fail(&self, e: anyhow::Error) {
        self.progress.abort.store(true, Ordering::SeqCst);
        self.first_err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }

    fn stopping(&self) -> bool {
        self.progress.abort.load(Ordering::SeqCst) || self.opts.stop.is_cancelled()
    }

    fn settled(&self, n: usize) {
        self.progress.settled(n);
    }
}

/// A claimed delivery waiting for a worker.
struct Job {
    d: Delivery,
    claimed: Instant,
}

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
/// sent again once their lease expires, like any message in flight.
pub async fn deliver(
    cfg: Arc<Config>,
    store: Store,
    renderer: Arc<Renderer>,
    opts: DeliverOptions,
) -> anyhow::Result<u64> {
    let workers = cfg.delivery.concurrency;
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
        limits: Limits::shared(&cfg.delivery),
        cfg,
        store,
        renderer,
        opts,
        progress: Arc::new(Progress::default()),
        first_err: std::sync::Mutex::new(None),
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
    let recorder = tokio::spawn(recorder(
        shared.store.clone(),
        shared.progress.clone(),
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
        outcomes,
        first_err,
        ..
    } = shared;
    drop(outcomes);
    match recorder.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            first_err
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
        Err(e) => {
            first_err
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(anyhow::anyhow!("the delivery recorder died: {e}"));
        }
    }
    match first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

/// Claims due rows in batches and queues them, until nothing is due within the horizon and
/// nothing claimed is still unsettled (a transient failure may come back due), or stopped.
async fn feeder(sh: &Shared, jobs: mpsc::Sender<Job>) -> anyhow::Result<()> {
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

/// Writes outcomes as they come, each time all that arrived while the previous write ran.
async fn recorder(
    store: Store,
    progress: Arc<Progress>,
    mut rx: mpsc::Receiver<Finish>,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(OUTCOMES);
    let mut result = Ok(());
    while rx.recv_many(&mut buf, OUTCOMES).await > 0 {
        // A few outcomes: wait a moment for more, so that a commit (a sync to disk with
        // SQLite) serves a group rather than one or two; unless these are the outcomes of
        // every row in flight (the last of a pass): no more are coming.
        let gather = tokio::time::Instant::now() + GROUP_WAIT;
        while buf.len() < GROUP
            && buf.len() < progress.in_flight.load(Ordering::SeqCst)
            && let Ok(n) = tokio::time::timeout_at(gather, rx.recv_many(&mut buf, OUTCOMES)).await
            && n > 0
        {}
        if result.is_ok() {
            // A short outage of the database must not turn sent messages into resends.
            let mut tries = 0;
            loop {
                match store.finish_many(&buf).await {
                    Ok(ours) => {
                        for (f, ours) in buf.iter().zip(ours) {
                            if !ours {
                                warn!(
                                    delivery = f.id,
                                    outcome = f.status.as_str(),
                                    "the lease ran out before the outcome was recorded; \
                                     another sender has the delivery"
                                );
                            }
                        }
                        break;
                    }
                    Err(e) if tries < 5 => {
                        tries += 1;
                        warn!(error = %e, try_ = tries, "recording outcomes failed; trying again");
                        tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    }
                    Err(e) => {
                        // Stop the pass; these rows stay "sending" until their lease expires.
                        progress.abort.store(true, Ordering::SeqCst);
                        result = Err(anyhow::Error::new(e).context("recording delivery outcomes"));
                        break;
                    }
                }
            }
        }
        progress.settled(buf.len());
        buf.clear();
    }
    result
}

/// What became of one claimed delivery.
enum Outcome {
    Sent,
    /// Recorded failed, skipped, or back to pending after a recipient's transient error.
    Recorded,
    /// The server could not be reached: handed back uncharged.
    Unavailable(String),
    /// Stopping: handed back untouched.
    Stopped,
}

/// Takes queued rows until the queue closes; after an error or a stop, hands them back.
async fn worker(
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

/// Hands an outcome to the recorder.
async fn record(
    sh: &Shared,
    d: &Delivery,
    status: DeliveryStatus,
    reply: Option<&str>,
    error: Option<&str>,
    retry_at: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<()> {
    let f = Finish {
        smtp_reply: reply.map(str::to_string),
        error: error.map(str::to_string),
        retry_at,
        ..Finish::new(d, status)
    };
    if sh.outcomes.send(f).await.is_err() {
        sh.settled(1);
        anyhow::bail!("the delivery recorder stopped");
    }
    Ok(())
}

/// Hands a claimed row back untouched (settled at once).
async fn release(
    sh: &Shared,
    d: &Delivery,
    error: Option<&str>,
    retry_at: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<()> {
    let r = sh.store.release(d, error, retry_at).await;
    sh.settled(1);
    Ok(r?)
}

/// The papers of these digests, into the pass's cache (read from the store once each).
async fn load_papers(sh: &Shared, digests: &[&Digest]) -> anyhow::Result<()> {
    let missing: Vec<&ArxivId> = {
        let cache = sh.papers.read().unwrap_or_else(|e| e.into_inner());
        let mut missing: Vec<&ArxivId> = (digests.iter())
            .flat_map(|d| d.paper_ids())
            .filter(|id| !cache.contains_key(*id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    };
    if !missing.is_empty() {
        let found = sh.store.papers(&missing).await?;
        keep_first(
            &mut sh.papers.write().unwrap_or_else(|e| e.into_inner()),
            found,
        );
    }
    Ok(())
}

/// Adds the papers `found` that `cache` does not hold yet. Workers that started together read
/// the same papers at once: the one a paper got first stays, as the Renderer tells the cards
/// it rendered by their paper's address (an equal paper at another address is compared field
/// by field, for every card of every email).
fn keep_first(cache: &mut HashMap<ArxivId, Arc<Paper>>, found: HashMap<ArxivId, Paper>) {
    for (id, paper) in found {
        cache.entry(id).or_insert_with(|| Arc::new(paper));
    }
}

/// How long ago `d` was planned.
fn age(d: &Delivery) -> Duration {
    (Utc::now() - d.created_at)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

/// A claimed delivery rendered and built, ready to be sent.
struct Ready {
    d: Delivery,
    /// The subscriber's place in the config's list.
    subscriber: usize,
    email: Email,
    claimed: Instant,
}

/// A queued row, taken without waiting, prepared: the first that is to be sent (the others
/// taken on the way are recorded). None when nothing is queued or the queue is in use.
async fn prepare_queued(
    sh: &Shared,
    jobs: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
) -> Option<Ready> {
    loop {
        let job = jobs.try_lock().ok()?.try_recv().ok()?;
        match prepare(sh, job).await {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                sh.fail(e);
                return None;
            }
        }
    }
}

/// Renders and builds one claimed delivery; or records why it is not sent (None).
async fn prepare(sh: &Shared, job: Job) -> anyhow::Result<Option<Ready>> {
    use DeliveryStatus::{Failed, Skipped};
    let p = &sh.cfg.delivery;
    let d = job.d;
    let Some(&subscriber) = sh.subscribers.get(&d.subscriber) else {
        let why = "no longer a subscriber in the config";
        record(sh, &d, Skipped, None, Some(why), None).await?;
        return Ok(None);
    };
    let sub = &sh.cfg.subscribers[subscriber];
    if d.opted_out {
        record(sh, &d, Skipped, None, Some("unsubscribed"), None).await?;
        return Ok(None);
    }
    if age(&d) >= p.give_up_after {
        let mut why = format!(
            "gave up: not sent within delivery.give_up_after ({}) of being planned, after {} attempts",
            humantime::format_duration(p.give_up_after),
            d.attempts - 1
        );
        if let Some(last) = &d.last_error {
            why.push_str("; last error: ");
            why.push_str(last);
        }
        record(sh, &d, Failed, None, Some(&why), None).await?;
        return Ok(None);
    }
    if let Err(e) = load_papers(sh, &[&d.digest]).await {
        release(sh, &d, None, None).await?;
        return Err(e);
    }
    let links = UnsubscribeLinks::for_subscriber(&sh.cfg, &d.subscriber);
    let rendered = {
        let papers = sh.papers.read().unwrap_or_else(|e| e.into_inner());
        sh.renderer
            .render(sub, d.digest_date, &d.digest, &papers, links.visible())
    };
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            release(sh, &d, Some(&e.to_string()), None).await?;
            return Err(e).context("rendering a digest; the delivery stays pending");
        }
    };
    let head = Head::new(&sh.cfg, sub, &d.message_id, &links);
    match build_email(&head, rendered) {
        Ok(email) => Ok(Some(Ready {
            d,
            subscriber,
            email,
            claimed: job.claimed,
        })),
        Err(e) => {
            record(sh, &d, Failed, None, Some(&e.to_string()), None).await?;
            warn!(delivery = d.id, error = %e, "message could not be built");
            Ok(None)
        }
    }
}

/// Sends one prepared delivery and records its outcome. `next`: the message to be sent
/// after it, if one is ready.
async fn send_ready(
    sh: &Shared,
    mailer: &mut Mailer,
    ready: Ready,
    next: Option<&Email>,
    unreachable: u32,
) -> anyhow::Result<Outcome> {
    use DeliveryStatus::{Failed, Pending, Sent};
    let store = &sh.store;
    let p = &sh.cfg.delivery;
    let Ready {
        d,
        subscriber,
        email,
        claimed,
    } = ready;
    let sub = &sh.cfg.subscribers[subscriber];
    // A row that waited long in the queue renews its lease first.
    if claimed.elapsed() > p.lease / 4 && !store.renew(&d, p.lease).await? {
        // Our lease ran out meanwhile and another sender took the row over.
        sh.settled(1);
        return Ok(Outcome::Recorded);
    }
    let domain = sub.email.domain();
    let started = Instant::now();
    // The lease is renewed while the send takes long, so nobody takes the row over meanwhile.
    let send = mailer.send_email(email, next);
    tokio::pin!(send);
    let every = p.lease / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let sent = loop {
        tokio::select! {
            r = &mut send => break r,
            _ = renew.tick() => {
                // The message may be on its way: a failed renewal must not abandon it.
                match store.renew(&d, p.lease).await {
                    Ok(true) => {}
                    Ok(false) => warn!(delivery = d.id, "the lease was lost during a send"),
                    Err(e) => warn!(delivery = d.id, error = %e, "the lease could not be renewed during a send"),
                }
            }
            _ = sh.opts.hard_stop.cancelled() => {
                release(sh, &d, Some("stopped while sending; the message may have gone out"), None).await?;
                warn!(delivery = d.id, "stopping: the message in flight was abandoned; its delivery stays pending");
                return Ok(Outcome::Stopped);
            }
        }
    };
    let outcome = match &sent {
        Ok(_) => "sent",
        Err(MailError::Transient(_)) => "transient",
        Err(MailError::Session(_)) => "session",
        Err(MailError::Unavailable(_)) => "unavailable",
        Err(_) => "permanent",
    };
    crate::metrics::metrics().observe_send(outcome, started.elapsed().as_secs_f64());
    match sent {
        Ok(reply) => {
            record(sh, &d, Sent, Some(&reply), None, None).await?;
            info!(delivery = d.id, to_domain = domain, message_id = %d.message_id, "sent");
            Ok(Outcome::Sent)
        }
        Err(MailError::Permanent(e)) | Err(MailError::Build(e)) => {
            record(sh, &d, Failed, None, Some(&e), None).await?;
            warn!(delivery = d.id, to_domain = domain, error = %e, "refused permanently");
            Ok(Outcome::Recorded)
        }
        Err(MailError::Session(e)) => {
            release(sh, &d, Some(&e), None).await?;
            anyhow::bail!("the SMTP session cannot be used: {e}; the deliveries stay pending")
        }
        Err(MailError::Unavailable(e)) => {
            let delay = backoff(p, unreachable + 1);
            let retry_at = Utc::now() + chrono::Duration::from_std(delay)?;
            release(sh, &d, Some(&e), Some(retry_at)).await?;
            warn!(delivery = d.id, error = %e, "the SMTP server is unreachable; backing off");
            Ok(Outcome::Unavailable(e))
        }
        Err(MailError::Transient(e)) => {
            let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
            let age = age(&d);
            if attempts >= p.max_attempts || age >= p.give_up_after {
                let why = format!(
                    "gave up after {attempts} attempts over {}: {e}",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                );
                record(sh, &d, Failed, None, Some(&why), None).await?;
                warn!(delivery = d.id, to_domain = domain, error = %why, "failed");
            } else {
                let delay = backoff(p, attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(delay)?;
                record(sh, &d, Pending, None, Some(&e), Some(retry_at)).await?;
                warn!(
                    delivery = d.id,
                    to_domain = domain,
                    attempt = attempts,
                    retry_in = %humantime::format_duration(Duration::from_millis(delay.as_millis() as u64)),
                    error = %e,
                    "transient failure; will retry"
                );
            }
            Ok(Outcome::Recorded)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paper_read_again_keeps_the_address_it_got_first() {
        let papers = crate::source::recorded_papers();
        let found = |n: usize| -> HashMap<ArxivId, Paper> {
            papers[..n]
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect()
        };
        let mut cache = HashMap::new();
        keep_first(&mut cache, found(1));
        let first = Arc::clone(&cache[&papers[0].id]);
        // Another worker read the same paper, and one more, at the same time.
        keep_first(&mut cache, found(2));
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&cache[&papers[0].id], &first));
    }

    #[test]
    fn the_queue_holds_sixteen_rows_a_worker_up_to_a_claims_batch() {
        assert_eq!(usual_queue(1), 16);
        assert_eq!(usual_queue(4), 64);
        assert_eq!(usual_queue(8), CLAIM_BATCH);
        assert_eq!(usual_queue(32), CLAIM_BATCH);
        assert_eq!(usual_queue(100), 200);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_growing_at_the_cap() {
        let p = DeliveryPolicy {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..Default::default()
        };
        for (attempt, base) in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)] {
            let d = backoff(&p, attempt);
            let base = Duration::from_secs(base);
            assert!(d >= base && d < base * 2, "attempt {attempt}: {d:?}");
        }
    }
}
