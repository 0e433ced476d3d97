//! One run of a digest date: plan, then deliver (or, for a dry run, render to the outbox).

use std::collections::HashMap;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use tracing::info;

use super::alerts::{AlertKind, alert};
use super::{RunReport, deliver, plan};
use crate::config::Config;
use crate::mail::{Mailer, build_message};
use crate::render::Renderer;
use crate::source::{FetchError, HfSource};
use crate::store::{DeliveryStatus, Store};

/// Runs `date` and tells the operator when it failed or too many of its deliveries did.
pub async fn run_date(
    cfg: &Config,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let result = run_inner(cfg, store, source, date, dry_run).await;
    match &result {
        Err(e) => {
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
        }
        Ok(r) if !dry_run => {
            let done = r.sent + r.failed;
            if r.failed > 0 && r.failed as f64 > cfg.alerts.failure_ratio * done as f64 {
                let summary = format!("{} of {done} deliveries of {date} failed", r.failed);
                let details = format!(
                    "More than {:.0}% of the deliveries failed (alerts.failure_ratio).\n\
                     List them with: paperboy history --date {date} --status failed\n\
                     Requeue them with: paperboy retry --date {date}",
                    cfg.alerts.failure_ratio * 100.0
                );
                alert(cfg, store, AlertKind::FailureRatio, &summary, &details).await;
            }
            if r.papers_fetched == 0 && date.weekday().number_from_monday() <= 5 {
                let summary = format!("the Daily Papers list of {date}, a weekday, is empty");
                alert(
                    cfg,
                    store,
                    AlertKind::EmptyList,
                    &summary,
                    "No digest was sent.",
                )
                .await;
            }
        }
        Ok(_) => {}
    }
    result
}

async fn run_inner(
    cfg: &Config,
    store: &Store,
    source: &HfSource,
    date: NaiveDate,
    dry_run: bool,
) -> anyhow::Result<RunReport> {
    let renderer = Renderer::new(&cfg.digest)?;
    let planned = plan(cfg, store, source, date, !dry_run).await?;
    let mut report = RunReport {
        digest_date: Some(date),
        papers_fetched: planned.papers.len(),
        subscribers: cfg.subscribers.len(),
        planned: planned.inserted,
        ..Default::default()
    };
    if dry_run {
        let mut outbox = Mailer::outbox(cfg.outbox_dir.clone());
        let papers: HashMap<_, _> = planned
            .papers
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        for d in &planned.new {
            if d.status != DeliveryStatus::Pending {
                report.skipped += 1;
                continue;
            }
            let sub = cfg
                .subscribers
                .iter()
                .find(|s| s.email.key() == d.subscriber)
                .context("a planned subscriber vanished from the config")?;
            let rendered = renderer.render(sub, date, &d.digest, &papers)?;
            let msg = build_message(&cfg.smtp, sub, &d.message_id, &rendered)?;
            outbox.send(&msg).await?;
            report.sent += 1;
            report.sent_now += 1;
        }
        info!(
            digest_date = %date,
            papers_fetched = report.papers_fetched,
            subscribers = report.subscribers,
            written = report.sent,
            skipped = report.skipped,
            outbox = %cfg.outbox_dir.display(),
            "dry run finished: emails written to the outbox, nothing recorded"
        );
        return Ok(report);
    }
    report.sent_now = deliver(
        std::sync::Arc::new(cfg.clone()),
        store.clone(),
        std::sync::Arc::new(renderer),
    )
    .await?;
    report.fill_counts(&store.counts(date).await?);
    info!(
        digest_date = %date,
        papers_fetched = report.papers_fetched,
        subscribers = report.subscribers,
        planned = report.planned,
        sent = report.sent,
        sent_now = report.sent_now,
        skipped = report.skipped,
        failed = report.failed,
        deferred = report.deferred,
        "run finished"
    );
    Ok(report)
}
