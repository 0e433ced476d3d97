//! Sending one prepared delivery over a worker's connection, with its lease renewed while the
//! server takes long, and turning the server's answer into the row's outcome: sent, failed,
//! or pending again after a jittered exponential backoff.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::Utc;
use tracing::{info, warn};

use super::pass::{Ready, Shared, age, record, release};
use crate::delivery_policy::DeliveryPolicy;
use crate::mail::{Email, MailError, Mailer};
use crate::store::DeliveryStatus;

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

/// What became of one claimed delivery.
pub(super) enum Outcome {
    Sent,
    /// Recorded failed, skipped, or back to pending after a recipient's transient error.
    Recorded,
    /// The server could not be reached: handed back uncharged.
    Unavailable(String),
    /// Stopping: handed back untouched.
    Stopped,
}

/// Sends one prepared delivery and records its outcome. `next`: the message to be sent
/// after it, if one is ready.
pub(super) async fn send_ready(
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
    // The message's permit (see `unrecorded_bound`): taken before its data goes out, given
    // back once its outcome is committed. A pass that stops meanwhile (the database cannot
    // record what was sent) sends nothing more: the row goes back untried.
    let permit = tokio::select! {
        p = sh.progress.unrecorded.clone().acquire_owned() => p.ok(),
        _ = sh.progress.abort.cancelled() => None,
        _ = sh.opts.hard_stop.cancelled() => None,
    };
    let permit = match permit {
        Some(p) if !sh.progress.abort.is_cancelled() && !sh.opts.hard_stop.is_cancelled() => p,
        _ => {
            release(sh, &d, None, None).await?;
            return Ok(Outcome::Stopped);
        }
    };
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
            record(sh, &d, Sent, Some(&reply), None, None, Some(permit)).await?;
            info!(delivery = d.id, to_domain = domain, message_id = %d.message_id, "sent");
            Ok(Outcome::Sent)
        }
        Err(MailError::Permanent(e)) | Err(MailError::Build(e)) => {
            record(sh, &d, Failed, None, Some(&e), None, Some(permit)).await?;
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
                record(sh, &d, Failed, None, Some(&why), None, Some(permit)).await?;
                warn!(delivery = d.id, to_domain = domain, error = %why, "failed");
            } else {
                let delay = backoff(p, attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(delay)?;
                record(
                    sh,
                    &d,
                    Pending,
                    None,
                    Some(&e),
                    Some(retry_at),
                    Some(permit),
                )
                .await?;
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
