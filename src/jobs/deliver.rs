//! Delivering a date's planned emails with `delivery.concurrency` workers, each with its own
//! long-lived connection: claim a row (a lease), render, wait for the relay limits, send,
//! record the outcome. Transient failures come back after a jittered exponential backoff until
//! `max_attempts` or `give_up_after`; permanent ones are recorded failed with the reply.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use backon::BackoffBuilder;
use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, DeliveryPolicy};
use crate::domain::Subscriber;
use crate::mail::{MailError, Mailer, UnsubscribeLinks, build_message};
use crate::render::Renderer;
use crate::store::{Delivery, DeliveryStatus, Store};

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
}

struct Shared {
    opts: DeliverOptions,
    cfg: Arc<Config>,
    store: Store,
    renderer: Arc<Renderer>,
    subscribers: HashMap<String, Subscriber>,
    limits: Arc<Limits>,
    abort: AtomicBool,
}

/// Sends every delivery that is or becomes due, whatever its date (a run also finishes what an
/// interrupted one left), and returns when none is pending or in flight any more (or, with a
/// horizon, none falls due within it; or when stopped). A
/// recipient's SMTP error is recorded on its row and does not stop the others; a template
/// error or a session error (login or sender refused) stops the run and leaves the row
/// pending. Returns how many were sent by this call.
pub async fn deliver(
    cfg: Arc<Config>,
    store: Store,
    renderer: Arc<Renderer>,
    opts: DeliverOptions,
) -> anyhow::Result<u64> {
    let workers = cfg.delivery.concurrency;
    let shared = Arc::new(Shared {
        subscribers: cfg
            .subscribers
            .iter()
            .map(|s| (s.email.key(), s.clone()))
            .collect(),
        limits: Limits::shared(&cfg.delivery),
        cfg,
        store,
        renderer,
        opts,
        abort: AtomicBool::new(false),
    });
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let mailer = Mailer::from_config(&shared.cfg)?;
        set.spawn(worker(shared.clone(), mailer));
    }
    let mut sent = 0;
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(n)) => sent += n,
            Ok(Err(e)) => {
                shared.abort.store(true, Ordering::SeqCst);
                first_err.get_or_insert(e);
            }
            Err(e) => {
                shared.abort.store(true, Ordering::SeqCst);
                first_err.get_or_insert(anyhow::anyhow!("a delivery worker died: {e}"));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(sent),
    }
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

async fn worker(sh: Arc<Shared>, mut mailer: Mailer) -> anyhow::Result<u64> {
    let mut sent = 0;
    // Connection failures in a row: this worker backs off, and gives up the pass after
    // max_attempts of them (its deliveries stay pending, uncharged).
    let mut unreachable = 0u32;
    let result = async {
        while !sh.abort.load(Ordering::SeqCst) && !sh.opts.stop.is_cancelled() {
            match sh.store.claim_next(sh.cfg.delivery.lease).await? {
                Some(d) => match process(&sh, &mut mailer, d, unreachable).await? {
                    Outcome::Sent => {
                        sent += 1;
                        unreachable = 0;
                    }
                    Outcome::Recorded => unreachable = 0,
                    Outcome::Stopped => break,
                    Outcome::Unavailable(e) => {
                        unreachable += 1;
                        if unreachable >= sh.cfg.delivery.max_attempts {
                            anyhow::bail!(
                                "the SMTP server stayed unreachable ({unreachable} tries): {e}; \
                                 the deliveries stay pending"
                            );
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff(&sh.cfg.delivery, unreachable)) => {}
                            _ = sh.opts.stop.cancelled() => break,
                        }
                    }
                },
                None => match sh.store.next_wakeup().await? {
                    None => break,
                    Some(at) => {
                        let until = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        if sh.opts.horizon.is_some_and(|h| until > h) {
                            break;
                        }
                        // Wait for a retry to fall due or a sibling's message to finish.
                        let wait = until.clamp(Duration::from_millis(20), Duration::from_secs(1));
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = sh.opts.stop.cancelled() => break,
                        }
                    }
                },
            }
        }
        anyhow::Ok(())
    }
    .await;
    mailer.close().await;
    result.map(|()| sent)
}

/// Records an outcome; a claim lost meanwhile (our lease ran out) is logged, not an error.
async fn record(
    store: &Store,
    d: &Delivery,
    status: DeliveryStatus,
    reply: Option<&str>,
    error: Option<&str>,
    retry_at: Option<chrono::DateTime<Utc>>,
) -> anyhow::Result<()> {
    if !store.finish(d, status, reply, error, retry_at).await? {
        warn!(
            delivery = d.id,
            outcome = status.as_str(),
            "the lease ran out before the outcome was recorded; another sender has the delivery"
        );
    }
    Ok(())
}

/// Renders and sends one claimed delivery and records its outcome.
async fn process(
    sh: &Shared,
    mailer: &mut Mailer,
    d: Delivery,
    unreachable: u32,
) -> anyhow::Result<Outcome> {
    use DeliveryStatus::{Failed, Pending, Sent, Skipped};
    let store = &sh.store;
    let p = &sh.cfg.delivery;
    let Some(sub) = sh.subscribers.get(&d.subscriber) else {
        let why = "no longer a subscriber in the config";
        record(store, &d, Skipped, None, Some(why), None).await?;
        return Ok(Outcome::Recorded);
    };
    if store.is_opted_out(&d.subscriber).await? {
        record(store, &d, Skipped, None, Some("unsubscribed"), None).await?;
        return Ok(Outcome::Recorded);
    }
    let age = (Utc::now() - d.created_at)
        .to_std()
        .unwrap_or(Duration::ZERO);
    if age >= p.give_up_after {
        let mut why = format!(
            "gave up: not sent within delivery.give_up_after ({}) of being planned, after {} attempts",
            humantime::format_duration(p.give_up_after),
            d.attempts - 1
        );
        if let Some(last) = &d.last_error {
            why.push_str("; last error: ");
            why.push_str(last);
        }
        record(store, &d, Failed, None, Some(&why), None).await?;
        return Ok(Outcome::Recorded);
    }
    let ids: Vec<_> = d.digest.paper_ids().collect();
    let papers = store.papers(&ids).await?;
    let links = UnsubscribeLinks::for_subscriber(&sh.cfg, &d.subscriber);
    let rendered = match sh
        .renderer
        .render(sub, d.digest_date, &d.digest, &papers, links.visible())
    {
        Ok(r) => r,
        Err(e) => {
            store.release(&d, Some(&e.to_string()), None).await?;
            return Err(e).context("rendering a digest; the delivery stays pending");
        }
    };
    let msg = match build_message(
        &sh.cfg.smtp,
        sub,
        &d.message_id,
        &rendered,
        &links,
        sh.cfg.dkim.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => {
            record(store, &d, Failed, None, Some(&e.to_string()), None).await?;
            warn!(delivery = d.id, error = %e, "message could not be built");
            return Ok(Outcome::Recorded);
        }
    };
    let waited = Instant::now();
    tokio::select! {
        _ = sh.limits.acquire() => {}
        _ = sh.opts.stop.cancelled() => {
            store.release(&d, None, None).await?;
            return Ok(Outcome::Stopped);
        }
    }
    if waited.elapsed() > p.lease / 4 && !store.renew(&d, p.lease).await? {
        // Our lease ran out while we waited and another sender took the row over.
        return Ok(Outcome::Recorded);
    }
    let domain = sub.email.domain();
    let started = Instant::now();
    // The lease is renewed while the send takes long, so nobody takes the row over meanwhile.
    let send = mailer.send(&msg);
    tokio::pin!(send);
    let every = p.lease / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let sent = loop {
        tokio::select! {
            r = &mut send => break r,
            _ = renew.tick() => {
                if !store.renew(&d, p.lease).await? {
                    warn!(delivery = d.id, "the lease was lost during a send");
                }
            }
            _ = sh.opts.hard_stop.cancelled() => {
                store.release(&d, Some("stopped while sending; the message may have gone out"), None).await?;
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
            record(store, &d, Sent, Some(&reply), None, None).await?;
            info!(delivery = d.id, to_domain = domain, message_id = %d.message_id, "sent");
            Ok(Outcome::Sent)
        }
        Err(MailError::Permanent(e)) | Err(MailError::Build(e)) => {
            record(store, &d, Failed, None, Some(&e), None).await?;
            warn!(delivery = d.id, to_domain = domain, error = %e, "refused permanently");
            Ok(Outcome::Recorded)
        }
        Err(MailError::Session(e)) => {
            store.release(&d, Some(&e), None).await?;
            anyhow::bail!("the SMTP session cannot be used: {e}; the deliveries stay pending")
        }
        Err(MailError::Unavailable(e)) => {
            let delay = backoff(p, unreachable + 1);
            let retry_at = Utc::now() + chrono::Duration::from_std(delay)?;
            store.release(&d, Some(&e), Some(retry_at)).await?;
            warn!(delivery = d.id, error = %e, "the SMTP server is unreachable; backing off");
            Ok(Outcome::Unavailable(e))
        }
        Err(MailError::Transient(e)) => {
            let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
            if attempts >= p.max_attempts || age >= p.give_up_after {
                let why = format!(
                    "gave up after {attempts} attempts over {}: {e}",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                );
                record(store, &d, Failed, None, Some(&why), None).await?;
                warn!(delivery = d.id, to_domain = domain, error = %why, "failed");
            } else {
                let delay = backoff(p, attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(delay)?;
                record(store, &d, Pending, None, Some(&e), Some(retry_at)).await?;
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
