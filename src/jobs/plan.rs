//! Planning a digest date: fetch the list, store it, choose each subscriber's papers, and record
//! one delivery row per subscriber (idempotent: a subscriber planned before keeps its row).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::NaiveDate;
use tracing::{info, warn};

use crate::config::Config;
use crate::digest::{DayList, Digest};
use crate::domain::{ArxivId, Paper};
use crate::mail::message_id;
use crate::source::HfSource;
use crate::store::{DeliveryStatus, NewDelivery, Store};

pub struct PlanOutcome {
    pub papers: Vec<Paper>,
    /// Deliveries chosen this time (not yet in the store when planning a dry run).
    pub new: Vec<NewDelivery>,
    /// Rows actually inserted (0 for a dry run).
    pub inserted: u64,
}

/// Fetches `date`'s list and plans its deliveries. With `record = false` (a dry run) the list
/// is stored but no delivery row is written.
pub async fn plan(
    cfg: &Config,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    record: bool,
) -> anyhow::Result<PlanOutcome> {
    let papers = source.fetch_day(date).await?;
    if papers.is_empty() {
        warn!(digest_date = %date, "the list of this date is empty; nothing planned");
        return Ok(PlanOutcome {
            papers,
            new: Vec::new(),
            inserted: 0,
        });
    }
    store
        .save_day(date, &papers)
        .await
        .context("storing the daily list")?;

    let planned = store.planned_subscribers(date).await?;
    let mut sent: HashMap<String, HashSet<ArxivId>> = HashMap::new();
    for (who, id) in store.sent_pairs(date).await? {
        sent.entry(who).or_default().insert(id);
    }
    let day = DayList::new(&papers);
    let none = HashSet::new();
    let from_domain = cfg.smtp.from.email.domain().to_string();
    let new: Vec<NewDelivery> = cfg
        .subscribers
        .iter()
        .filter(|s| !planned.contains(&s.email.key()))
        .map(|s| {
            let key = s.email.key();
            let digest: Digest = day.select(s, &cfg.topics, sent.get(&key).unwrap_or(&none));
            let (status, note) = if digest.is_empty() && !s.send_empty {
                (
                    DeliveryStatus::Skipped,
                    Some("no new paper matched the subscriber's topics".to_string()),
                )
            } else {
                (DeliveryStatus::Pending, None)
            };
            NewDelivery {
                message_id: message_id(&key, date, &from_domain),
                subscriber: key,
                digest,
                status,
                note,
            }
        })
        .collect();
    let inserted = if record {
        store.plan(date, &new).await?
    } else {
        0
    };
    info!(
        digest_date = %date,
        papers = papers.len(),
        subscribers = cfg.subscribers.len(),
        already_planned = planned.len(),
        planned = new.len(),
        "planned"
    );
    Ok(PlanOutcome {
        papers,
        new,
        inserted,
    })
}
