//! One run of a digest date: plan, then deliver (or, for a dry run, render to the outbox).

use std::collections::HashMap;

use anyhow::Context;
use chrono::NaiveDate;
use tracing::info;

use super::{RunReport, deliver, plan};
use crate::config::Config;
use crate::mail::{Mailer, build_message};
use crate::render::Renderer;
use crate::source::HfSource;
use crate::store::{DeliveryStatus, Store};

pub async fn run_date(
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
    let mut mailer = Mailer::from_config(cfg)?;
    report.sent_now = deliver(cfg, store, &renderer, &mut mailer, date).await?;
    let counts = store.counts(date).await?;
    report.sent = counts.sent;
    report.skipped = counts.skipped;
    report.failed = counts.failed;
    report.deferred = counts.pending + counts.sending;
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
