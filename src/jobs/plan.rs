//! Planning a digest date: fetch the list (and re-read the previous `lookback_days` lists for
//! papers that arrived late), store it, choose each subscriber's papers, and record one
//! delivery row per subscriber (idempotent: a subscriber planned before keeps its row).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use tracing::{info, warn};

use crate::config::Config;
use crate::digest::{DayList, Digest};
use crate::domain::{ArxivId, Paper, SubscriberKey};
use crate::mail::message_id;
use crate::source::HfSource;
use crate::store::{DeliveryStatus, NewDelivery, Store};

/// Subscribers planned per insert (and held in memory at once).
const PLAN_CHUNK: usize = 1000;
/// The first insert is smaller: its commit starts the sending (`first_write`), so a short
/// first chunk has the first emails out while the rest is chosen and written.
const FIRST_PLAN_CHUNK: usize = 64;

pub struct PlanOutcome {
    /// The date's own list.
    pub papers: Vec<Paper>,
    /// Papers of earlier lists that were not there when we last read them.
    pub late: Vec<Paper>,
    /// Deliveries chosen by a dry run (a recorded plan writes them as it goes and keeps none).
    pub new: Vec<NewDelivery>,
    /// Rows actually inserted (0 for a dry run).
    pub inserted: u64,
}

impl PlanOutcome {
    pub fn all_papers(&self) -> impl Iterator<Item = &Paper> {
        self.papers.iter().chain(&self.late)
    }
}

/// Fetches `date`'s list and plans its deliveries. With `record = false` (a dry run) no
/// delivery row is written. When the date's own list is empty on a workday and this is not the
/// `final_try`, nothing is planned (the papers are late; try again). Otherwise an empty list
/// plans only late papers, and nobody gets an empty digest.
///
/// The stored list of a date is what its first plan saw: a paper that joins the list after
/// that counts as late, and the next plans offer it to everyone who has not had it. Plans
/// after the first (a second tick, a restart) write no list, so nothing late is hidden.
///
/// `first_write` is told once the first full chunk of rows is committed, so that sending can
/// start while the rest is planned.
pub async fn plan(
    cfg: &Config,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    record: bool,
    final_try: bool,
    first_write: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<PlanOutcome> {
    let papers = source.fetch_day(date).await?;
    let quiet_if_empty = final_try || !cfg.schedule_policy.is_workday(date);
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
    if source.has_dated_lists() {
        for back in 1..=cfg.lookback_days {
            let Some(day) = date.checked_sub_days(chrono::Days::new(back.into())) else {
                break;
            };
            match source.fetch_day(day).await {
                Ok(list) if !list.is_empty() => late_lists.push((day, list)),
                Ok(_) => {}
                // A directory of saved lists need not hold every earlier day.
                Err(e @ crate::source::FetchError::File { .. }) => {
                    tracing::debug!(day = %day, error = %e, "no earlier list to re-read")
                }
                // Its late papers would be missed for good: try the whole plan again later.
                Err(e) if !final_try => {
                    return Err(e).with_context(|| format!("re-reading the list of {day}"));
                }
                Err(e) => warn!(day = %day, error = %e, "an earlier list could not be re-read"),
            }
        }
    }
    // From here to the insert, what is stored decides what is planned: other instances on the
    // same database wait (they then find this date planned and these papers sent).
    let lock = store.lock_planning().await?;
    let result = plan_locked(cfg, store, date, record, papers, late_lists, first_write).await;
    lock.release().await;
    result
}

async fn plan_locked(
    cfg: &Config,
    store: &Store,
    date: NaiveDate,
    record: bool,
    papers: Vec<Paper>,
    late_lists: Vec<(NaiveDate, Vec<Paper>)>,
    mut first_write: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<PlanOutcome> {
    let mut late: Vec<Paper> = Vec::new();
    let mut seen: HashSet<ArxivId> = papers.iter().map(|p| p.id.clone()).collect();
    for (day, list) in &late_lists {
        let stored = store.list_ids(*day).await?;
        late.extend(
            list.iter()
                .filter(|p| !stored.contains(&p.id) && seen.insert(p.id.clone()))
                .cloned(),
        );
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
    let planned = store.planned_subscribers(date).await?;
    // A plan cut short (rows are written a chunk at a time) leaves the lists unstored: their
    // papers then count as late next time and are offered to whoever has not had them, which
    // the sent pairs keep from being sent twice.
    let first_plan = planned.is_empty();
    store
        .upsert_papers(&papers)
        .await
        .context("storing the daily list")?;
    store
        .upsert_papers(&late)
        .await
        .context("storing late papers")?;
    let mut sent: HashMap<SubscriberKey, HashSet<ArxivId>> = HashMap::new();
    for (who, id) in store.sent_pairs_of(&papers, date).await? {
        sent.entry(who).or_default().insert(id);
    }
    for (who, id) in store.sent_pairs_of(&late, date).await? {
        sent.entry(who).or_default().insert(id);
    }
    let opted_out: HashSet<SubscriberKey> = store
        .optouts()
        .await?
        .into_iter()
        .map(|(who, _, _)| who)
        .collect();
    let candidates: Vec<Paper> = papers.iter().chain(&late).cloned().collect();
    let day = DayList::new(&candidates);
    let none = HashSet::new();
    let from_domain = cfg.smtp.from.email.domain().to_string();
    let now = Utc::now();
    let choose = |s: &crate::domain::Subscriber| {
        let key = s.email.key();
        let digest: Digest = if opted_out.contains(&key) {
            Digest::default()
        } else {
            day.select(
                s,
                &cfg.topics,
                sent.get(&key).unwrap_or(&none),
                cfg.filter_for(&key),
            )
        };
        let (status, note) = if opted_out.contains(&key) {
            (DeliveryStatus::Skipped, Some("unsubscribed".to_string()))
        } else if digest.is_empty() && (!s.send_empty || quiet_day) {
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
    };
    let unplanned = cfg
        .subscribers
        .iter()
        .filter(|s| !planned.contains(&s.email.key()));
    // Recorded a chunk at a time, so that memory does not grow with the number of subscribers
    // (each row is keyed by subscriber and date: a plan cut short is completed by the next).
    let mut new = Vec::new();
    let mut chosen = 0;
    let mut inserted = 0;
    if record {
        // A chunk is written while the next is chosen (one write at a time, in order).
        let mut unplanned = unplanned;
        let mut size = FIRST_PLAN_CHUNK;
        let mut writing: Option<tokio::task::JoinHandle<Result<u64, crate::store::StoreError>>> =
            None;
        loop {
            // Choosing is CPU work without an await: off the runtime's thread, so that the
            // emails already planned go on being sent meanwhile.
            let chunk: Vec<NewDelivery> =
                off_the_runtime(|| unplanned.by_ref().take(size).map(&choose).collect());
            size = PLAN_CHUNK;
            if let Some(w) = writing.take() {
                inserted += w.await.context("writing the plan")??;
            }
            if chunk.is_empty() {
                break;
            }
            chosen += chunk.len();
            let store = store.clone();
            // Once the first chunk is committed, its rows can be sent while the rest is
            // planned.
            let first = first_write.take();
            writing = Some(tokio::spawn(async move {
                let written = store.plan(date, &chunk).await;
                if let (Ok(_), Some(tx)) = (&written, first) {
                    let _ = tx.send(());
                }
                written
            }));
        }
        // Only now, and only at the first plan of the date, do the lists become "seen": had
        // planning failed, or been partial, their late papers still count as late next time.
        if first_plan {
            if !papers.is_empty() {
                store.replace_list(date, &papers).await?;
            }
            for (day, list) in &late_lists {
                store.replace_list(*day, list).await?;
            }
        }
    } else {
        new = unplanned.map(choose).collect();
        chosen = new.len();
    }
    info!(
        digest_date = %date,
        papers = papers.len(),
        late_papers = late.len(),
        subscribers = cfg.subscribers.len(),
        already_planned = planned.len(),
        planned = chosen,
        "planned"
    );
    Ok(PlanOutcome {
        papers,
        late,
        new,
        inserted,
    })
}

/// Runs CPU-bound work where it does not hold up the runtime's other tasks: on a worker
/// thread of a multi-threaded runtime (the daemon's runs), that thread hands its tasks to
/// another for the while (`block_in_place`); on the thread of `block_on` (the command line's)
/// or a single-threaded runtime (the tests'), no other task waits for it, and it runs in
/// place.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
