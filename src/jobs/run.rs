//! One run of a digest date: plan, then deliver (or, for a dry run, render to the outbox),
//! recorded in the runs table, with alerts for the operator.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use tracing::{error, info, warn};

use super::alerts::{AlertKind, alert};
use super::deliver::{Row, Unmade, email_for};
use super::renderer::renderer;
use super::{DeliverOptions, RunReport, deliver, plan};
use crate::config::Config;
use crate::mail::Mailer;
use crate::source::{FetchError, HfSource};
use crate::store::{DeliveryStatus, RunRecord, Store};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Render into the outbox and record nothing.
    pub dry_run: bool,
    /// The schedule tick this run is for, if any.
    pub tick_at: Option<DateTime<Utc>>,
    /// The last try for this date (a manual run, or the deadline has come): an empty list or a
    /// failing source is given up on, recorded and alerted. Before that, the run reports
    /// `NotYet` and records nothing, so that it can be tried again.
    pub final_try: bool,
    pub deliver: DeliverOptions,
}

pub enum RunOutcome {
    Done(RunReport),
    /// The list is empty on a weekday, or the source failed: try again later.
    NotYet(String),
}

/// Runs `date`: records it, and tells the operator when it failed or too many of its
/// deliveries did.
pub async fn run_date(
    cfg: &Arc<Config>,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    opts: RunOptions,
) -> anyhow::Result<RunOutcome> {
    if !opts.dry_run {
        store.start_run(date, opts.tick_at).await?;
        store.claim_run(date).await?;
    }
    let result = run_inner(cfg, store, source, date, &opts).await;
    let record = |status: &str, r: &RunReport, error: Option<String>| RunRecord {
        digest_date: date,
        status: status.to_string(),
        papers: r.papers_fetched as i64,
        sent: r.sent,
        skipped: r.skipped,
        failed: r.failed,
        deferred: r.deferred,
        error,
        ..Default::default()
    };
    match &result {
        Err(e) => {
            if opts.final_try || !is_transient(e) {
                if !opts.dry_run {
                    let r = record("failed", &RunReport::default(), Some(format!("{e:#}")));
                    // The run's own error is the one to report; this one is logged.
                    if let Err(fe) = finish_run(cfg, store, &r).await {
                        error!(
                            error = format!("{fe:#}"),
                            "the run's failure is not recorded"
                        );
                    }
                }
                let unparseable = e.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<FetchError>(),
                        Some(FetchError::Parse { .. })
                    )
                });
                let (kind, summary) = if unparseable {
                    (
                        AlertKind::SourceUnparseable,
                        format!("the Daily Papers answer for {date} no longer parses"),
                    )
                } else {
                    (AlertKind::RunFailed, format!("the run of {date} failed"))
                };
                alert(cfg, store, kind, &summary, &format!("{e:#}")).await;
            } else {
                return Ok(RunOutcome::NotYet(format!("{e:#}")));
            }
        }
        Ok(RunOutcome::NotYet(_)) => {}
        Ok(RunOutcome::Done(r)) if !opts.dry_run => {
            let status = if r.papers_fetched == 0 && r.late_papers == 0 {
                "skipped"
            } else {
                "done"
            };
            finish_run(cfg, store, &record(status, r, None)).await?;
            if r.failed > 0 {
                alert_if_too_many_failed(cfg, store, date, r.sent, r.failed).await;
            }
            if r.papers_fetched == 0 && cfg.schedule_policy.is_workday(date) {
                let summary = format!("the Daily Papers list of {date}, a weekday, is empty");
                alert(
                    cfg,
                    store,
                    AlertKind::EmptyList,
                    &summary,
                    "No digest was sent for it.",
                )
                .await;
            }
        }
        Ok(RunOutcome::Done(_)) => {}
    }
    result
}

/// Records how a run ended, trying again while the database refuses (often the outage that
/// failed the run), for up to `delivery.lease`. A run whose end is never recorded stays
/// "running" until a process of this host, started after this one is gone, records it failed
/// (see `Store::settle_runs_of_the_gone`).
async fn finish_run(cfg: &Config, store: &Store, run: &RunRecord) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match store.finish_run(run).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() < cfg.delivery.lease => {
                warn!(error = %e, "recording the run's end failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::Error::new(e).context("recording the run's end")),
        }
    }
}

/// Brings the runs whose deliveries were still open when they ended up to date, once those
/// deliveries have settled (sent, failed or skipped), and alerts if too many failed.
pub async fn settle_open_runs(cfg: &Config, store: &Store) -> anyhow::Result<()> {
    for mut run in store.open_runs().await? {
        let c = store.counts(run.digest_date).await?;
        if c.pending + c.sending > 0 {
            continue;
        }
        let newly_failed = c.failed - run.failed;
        run.sent = c.sent;
        run.skipped = c.skipped;
        run.failed = c.failed;
        run.deferred = 0;
        store.update_run_counts(&run).await?;
        if newly_failed > 0 {
            alert_if_too_many_failed(cfg, store, run.digest_date, c.sent, c.failed).await;
        }
    }
    Ok(())
}

/// The failure_ratio alert, when more than that share of a date's deliveries failed.
async fn alert_if_too_many_failed(
    cfg: &Config,
    store: &Store,
    date: NaiveDate,
    sent: i64,
    failed: i64,
) {
    let done = sent + failed;
    if failed as f64 <= cfg.alerts.failure_ratio * done as f64 {
        return;
    }
    let summary = format!("{failed} of {done} deliveries of {date} failed");
    let details = format!(
        "More than {:.0}% of the deliveries failed (alerts.failure_ratio).\n\
         List them with: paperboy history --date {date} --status failed\n\
         Requeue them with: paperboy retry --date {date}",
        cfg.alerts.failure_ratio * 100.0
    );
    alert(cfg, store, AlertKind::FailureRatio, &summary, &details).await;
}

/// Errors worth another try before the deadline: the source's.
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<FetchError>()
            .is_some_and(FetchError::is_transient)
    })
}

async fn run_inner(
    cfg: &Arc<Config>,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    let renderer = renderer(cfg)?;
    let early = !opts.final_try && cfg.schedule_policy.is_workday(date);
    // Once the plan has committed its first rows, they are sent while it writes the rest: the
    // pass does not end before the plan does (the token is cancelled however this ends).
    let planning = CancellationToken::new();
    let _planning_over = planning.clone().drop_guard();
    let (first_write, written) = tokio::sync::oneshot::channel();
    let record = !opts.dry_run;
    let planned = plan(
        cfg,
        store,
        source,
        date,
        record,
        opts.final_try,
        Some(first_write),
    );
    // A pass started early belongs to this run: dropped with it (the run aborted), it is
    // aborted too, never left running on its own. It waits for the plan's first commit in
    // a task of its own, so that it starts then, not when the planning task next yields.
    let mut early_pass = tokio::task::JoinSet::new();
    // A plan that fails stops the pass (what it committed waits for the next).
    let early_stop = opts.deliver.stop.child_token();
    {
        let opts = DeliverOptions {
            planning: Some(planning.clone()),
            stop: early_stop.clone(),
            ..opts.deliver.clone()
        };
        let (cfg, store, renderer) = (cfg.clone(), store.clone(), renderer.clone());
        early_pass.spawn(async move {
            match written.await {
                Ok(()) => deliver(cfg, store, renderer, opts).await.map(Some),
                // The plan committed nothing (a dry run, nobody new, or it failed).
                Err(_) => Ok(None),
            }
        });
    }
    let planned = planned.await;
    planning.cancel();
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            early_stop.cancel();
            if let Some(Err(d)) = (early_pass.join_next().await)
                .map(|r| r.map_err(anyhow::Error::from).and_then(|r| r))
            {
                tracing::warn!(error = %format!("{d:#}"), "the delivery pass stopped with the failed plan");
            }
            return Err(e);
        }
    };
    if planned.papers.is_empty() && early {
        // Only late papers were planned, if anything: a pass they started finishes first.
        if let Some(r) = early_pass.join_next().await {
            r.context("the delivery pass died")??;
        }
        return Ok(RunOutcome::NotYet(format!(
            "the list of {date} is still empty"
        )));
    }
    let mut report = RunReport {
        digest_date: Some(date),
        papers_fetched: planned.papers.len(),
        late_papers: planned.late.len(),
        subscribers: cfg.subscribers.len(),
        planned: planned.inserted,
        ..Default::default()
    };
    if opts.dry_run {
        let mut outbox = Mailer::outbox(cfg.outbox_dir.clone());
        let papers = RwLock::new(crate::domain::papers_by_id(planned.all_papers()));
        for d in &planned.new {
            if d.status != DeliveryStatus::Pending {
                report.skipped += 1;
                continue;
            }
            let sub = cfg
                .subscriber(&d.subscriber)
                .context("a planned subscriber vanished from the config")?;
            let row = Row {
                subscriber: &d.subscriber,
                date,
                digest: &d.digest,
                message_id: &d.message_id,
            };
            let email = match email_for(cfg, &renderer, sub, row, &papers) {
                Ok(email) => email,
                Err(Unmade::Build(e)) => {
                    // As a delivery would be: this one fails, the others are written.
                    warn!(subscriber = %d.subscriber, error = %e, "message could not be built");
                    report.failed += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            outbox.send_email(email, None).await?;
            report.sent += 1;
            report.sent_now += 1;
        }
        info!(
            digest_date = %date,
            papers_fetched = report.papers_fetched,
            subscribers = report.subscribers,
            written = report.sent,
            skipped = report.skipped,
            failed = report.failed,
            outbox = %cfg.outbox_dir.display(),
            "dry run finished: emails written to the outbox, nothing recorded"
        );
        return Ok(RunOutcome::Done(report));
    }
    let early_sent = match early_pass.join_next().await {
        Some(r) => r.context("the delivery pass died")??,
        None => None,
    };
    report.sent_now = match early_sent {
        Some(n) => n,
        // No early pass: rows planned before (or retries) are due all the same.
        None => deliver(cfg.clone(), store.clone(), renderer, opts.deliver.clone()).await?,
    };
    report.fill_counts(&store.counts(date).await?);
    info!(
        digest_date = %date,
        papers_fetched = report.papers_fetched,
        late_papers = report.late_papers,
        subscribers = report.subscribers,
        planned = report.planned,
        sent = report.sent,
        sent_now = report.sent_now,
        skipped = report.skipped,
        failed = report.failed,
        deferred = report.deferred,
        "run finished"
    );
    Ok(RunOutcome::Done(report))
}

/// A delivery pass of the command line: it waits for retries (up to twice `retry_max`), not
/// for subscribers whose own delivery time is later.
pub fn cli_deliver_options(cfg: &Config) -> DeliverOptions {
    DeliverOptions {
        horizon: Some(cfg.delivery.retry_max * 2 + Duration::from_secs(1)),
        ..Default::default()
    }
}
