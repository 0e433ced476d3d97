//! Planning a digest date: fetch the list (and re-read the previous `lookback_days` lists for
//! papers that arrived late), store it, choose each subscriber's papers, and record one
//! delivery row per subscriber (idempotent: a subscriber planned before keeps its row).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use tracing::{info, warn};

use crate::config::Config;
use crate::digest::{DayList, Digest};
use crate::domain::{ArxivId, Paper};
use crate::mail::message_id;
use crate::source::HfSource;
use crate::store::{DeliveryStatus, NewDelivery, Store};

pub struct PlanOutcome {
    /// The date's own list.
    pub papers: Vec<Paper>,
    /// Papers of earlier lists that were not there when we last read them.
    pub late: Vec<Paper>,
    /// Deliveries chosen this time (not yet in the store when planning a dry run).
    pub new: Vec<NewDelivery>,
    /// Rows actually inserted (0 for a dry run).
    pub inserted: u64,
}

impl PlanOutcome {
    pub fn all_papers(&self) -> impl Iterator<Item = &Paper> {
        self.papers.iter().chain(&self.late)
    }
}

/// Fetches `date`'s list and plans its deliveries. With `record = false` (a dry run) the list
/// is stored but no delivery row is written. When the date's own list is empty: with
/// `quiet_if_empty` (a weekend, a holiday, or the deadline has come) only late papers are
/// planned and nobody gets an empty digest; without it nothing is planned (too early).
pub async fn plan(
    cfg: &Config,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    record: bool,
    quiet_if_empty: bool,
) -> anyhow::Result<PlanOutcome> {
    let papers = source.fetch_day(date).await?;
    if papers.is_empty() && !quiet_if_empty {
        return Ok(PlanOutcome {
            papers,
            late: Vec::new(),
            new: Vec::new(),
            inserted: 0,
        });
    }
    // Earlier lists, re-read: what is in them now and was not when we stored them arrived late.
    let mut late_lists = Vec::new();
    let mut late: Vec<Paper> = Vec::new();
    if source.has_dated_lists() {
        let mut seen: HashSet<ArxivId> = papers.iter().map(|p| p.id.clone()).collect();
        for back in 1..=cfg.lookback_days {
            let Some(day) = date.checked_sub_days(chrono::Days::new(back.into())) else {
                break;
            };
            match source.fetch_day(day).await {
                Ok(list) => {
                    let stored = store.list_ids(day).await?;
                    late.extend(
                        list.iter()
                            .filter(|p| !stored.contains(&p.id) && seen.insert(p.id.clone()))
                            .cloned(),
                    );
                    if !list.is_empty() {
                        late_lists.push((day, list));
                    }
                }
                // A directory of saved lists need not hold every earlier day.
                Err(e @ crate::source::FetchError::File { .. }) => {
                    tracing::debug!(day = %day, error = %e, "no earlier list to re-read")
                }
                Err(e) => warn!(day = %day, error = %e, "an earlier list could not be re-read"),
            }
        }
    }
    let quiet_day = papers.is_empty();
    if quiet_day && late.is_empty() {
        warn!(digest_date = %date, "the list of this date is empty; nothing planned");
        return Ok(PlanOutcome {
            papers,
            late,
            new: Vec::new(),
            inserted: 0,
        });
    }
    if !papers.is_empty() {
        store
            .save_day(date, &papers)
            .await
            .context("storing the daily list")?;
    }
    store
        .upsert_papers(&late)
        .await
        .context("storing late papers")?;

    let planned = store.planned_subscribers(date).await?;
    let mut sent: HashMap<String, HashSet<ArxivId>> = HashMap::new();
    for (who, id) in store.sent_pairs(date).await? {
        sent.entry(who).or_default().insert(id);
    }
    for (who, id) in store.sent_pairs_of(&late, date).await? {
        sent.entry(who).or_default().insert(id);
    }
    let candidates: Vec<Paper> = papers.iter().chain(&late).cloned().collect();
    let day = DayList::new(&candidates);
    let none = HashSet::new();
    let from_domain = cfg.smtp.from.email.domain().to_string();
    let now = Utc::now();
    let new: Vec<NewDelivery> = cfg
        .subscribers
        .iter()
        .filter(|s| !planned.contains(&s.email.key()))
        .map(|s| {
            let key = s.email.key();
            let digest: Digest = day.select(s, &cfg.topics, sent.get(&key).unwrap_or(&none));
            let (status, note) = if digest.is_empty() && (!s.send_empty || quiet_day) {
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
                not_before: s.not_before(now),
            }
        })
        .collect();
    let inserted = if record {
        let n = store.plan(date, &new).await?;
        // Only now do the re-read lists replace the stored ones: had planning failed, their
        // late papers would still count as late next time.
        for (day, list) in &late_lists {
            store.replace_list(*day, list).await?;
        }
        n
    } else {
        0
    };
    info!(
        digest_date = %date,
        papers = papers.len(),
        late_papers = late.len(),
        subscribers = cfg.subscribers.len(),
        already_planned = planned.len(),
        planned = new.len(),
        "planned"
    );
    Ok(PlanOutcome {
        papers,
        late,
        new,
        inserted,
    })
}
