//! Delivering a date's planned emails: claim a row, render, send, record the outcome.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use tracing::{info, warn};

use crate::config::Config;
use crate::domain::Subscriber;
use crate::mail::{MailError, Mailer, build_message};
use crate::render::Renderer;
use crate::store::{DeliveryStatus, Store};

/// How long a claimed row stays ours; after that another run may take it over.
const LEASE: Duration = Duration::from_secs(600);
/// When a delivery that met a transient error is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// Sends every claimable delivery of `date`. A recipient's SMTP error is recorded on its row
/// and does not stop the others; a template error stops the run and leaves the row pending.
/// Returns how many were sent by this call.
pub async fn deliver(
    cfg: &Config,
    store: &Store,
    renderer: &Renderer,
    mailer: &mut Mailer,
    date: NaiveDate,
) -> anyhow::Result<u64> {
    let mut sent_now = 0;
    let subscribers: HashMap<String, &Subscriber> =
        cfg.subscribers.iter().map(|s| (s.email.key(), s)).collect();
    while let Some(d) = store.claim_next(date, LEASE).await? {
        let Some(sub) = subscribers.get(&d.subscriber) else {
            store
                .finish(
                    d.id,
                    DeliveryStatus::Skipped,
                    None,
                    Some("no longer a subscriber in the config"),
                    None,
                )
                .await?;
            continue;
        };
        let ids: Vec<_> = d.digest.paper_ids().collect();
        let papers = store.papers(&ids).await?;
        let rendered = match renderer.render(sub, date, &d.digest, &papers) {
            Ok(r) => r,
            Err(e) => {
                store
                    .finish(
                        d.id,
                        DeliveryStatus::Pending,
                        None,
                        Some(&e.to_string()),
                        None,
                    )
                    .await?;
                return Err(e).context("rendering a digest; the delivery stays pending");
            }
        };
        let msg = match build_message(&cfg.smtp, sub, &d.message_id, &rendered) {
            Ok(m) => m,
            Err(e) => {
                store
                    .finish(
                        d.id,
                        DeliveryStatus::Failed,
                        None,
                        Some(&e.to_string()),
                        None,
                    )
                    .await?;
                warn!(delivery = d.id, error = %e, "message could not be built");
                continue;
            }
        };
        let domain = sub.email.domain();
        match mailer.send(&msg).await {
            Ok(reply) => {
                sent_now += 1;
                store
                    .finish(d.id, DeliveryStatus::Sent, Some(&reply), None, None)
                    .await?;
                info!(delivery = d.id, to_domain = domain, message_id = %d.message_id, "sent");
            }
            Err(MailError::Permanent(e)) => {
                store
                    .finish(d.id, DeliveryStatus::Failed, None, Some(&e), None)
                    .await?;
                warn!(delivery = d.id, to_domain = domain, error = %e, "refused permanently");
            }
            Err(e) => {
                let retry_at = Utc::now() + chrono::Duration::from_std(RETRY_AFTER)?;
                store
                    .finish(
                        d.id,
                        DeliveryStatus::Pending,
                        None,
                        Some(&e.to_string()),
                        Some(retry_at),
                    )
                    .await?;
                warn!(delivery = d.id, to_domain = domain, error = %e, "deferred after a transient error");
            }
        }
    }
    mailer.close().await;
    Ok(sent_now)
}
