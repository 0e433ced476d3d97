//! `paperboy send`: fetch a day's papers and send every subscriber's digest now, or, with
//! `--to`, one subscriber's digest to a test address with nothing recorded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;

use crate::config::{Config, TransportKind};
use crate::domain::{EmailAddress, Subscriber};
use crate::jobs::{RunOptions, RunOutcome, cli_deliver_options, run_date};
use crate::mail::Mailer;
use crate::render::Renderer;

use super::one_digest::render_one;
use super::shared::{date_for, find_subscriber, open_store_warm, source_for};

pub async fn send_command(
    cfg: &Arc<Config>,
    renderer: &Renderer,
    date: Option<NaiveDate>,
    dry_run: bool,
    source_file: Option<PathBuf>,
    to: Option<String>,
    subscriber: Option<String>,
) -> anyhow::Result<ExitCode> {
    match to {
        Some(to) => send_test(cfg, renderer, date, source_file, to, subscriber).await,
        None => send_all(cfg, date, dry_run, source_file).await,
    }
}

/// `send --to`: one subscriber's digest (`--subscriber`, or the first configured) to `to`.
async fn send_test(
    cfg: &Config,
    renderer: &Renderer,
    date: Option<NaiveDate>,
    source_file: Option<PathBuf>,
    to: String,
    subscriber: Option<String>,
) -> anyhow::Result<ExitCode> {
    let date = date_for(cfg, date, source_file.as_deref())?;
    let sub = match &subscriber {
        Some(s) => find_subscriber(cfg, s)?.clone(),
        None => cfg
            .subscribers
            .first()
            .context("no subscriber in the config to take topics from")?
            .clone(),
    };
    let to = EmailAddress::parse(&to).map_err(anyhow::Error::msg)?;
    let source = source_for(cfg, source_file)?;
    let (rendered, n, links) = render_one(cfg, renderer, &source, &sub, date).await?;
    let test = Subscriber {
        email: to.clone(),
        name: None,
        ..sub.clone()
    };
    let mid = crate::mail::test_message_id(&to.key(), date, cfg.smtp.from.email.domain());
    let head = crate::mail::Head::new(cfg, &test, &mid, &links);
    let email = crate::mail::build_email(&head, rendered)?;
    let mut mailer = Mailer::from_config(cfg)?;
    let reply = mailer.send_email(email, None).await;
    mailer.close().await;
    let reply = reply?;
    println!(
        "{date}: test digest ({n} papers, as for {}) sent to {to}: {reply}",
        sub.email
    );
    Ok(ExitCode::SUCCESS)
}

/// Every subscriber's digest of the date: planned, then sent or written to the outbox.
async fn send_all(
    cfg: &Arc<Config>,
    date: Option<NaiveDate>,
    dry_run: bool,
    source_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let date = date_for(cfg, date, source_file.as_deref())?;
    let source = source_for(cfg, source_file)?;
    // Planning and sending use several connections at once: opened ahead, while
    // the schema is checked.
    let store = open_store_warm(cfg, if dry_run { 0 } else { 4 }).await?;
    let opts = RunOptions {
        dry_run,
        final_try: true,
        deliver: cli_deliver_options(cfg),
        ..Default::default()
    };
    let outcome = run_date(cfg, &store, &source, date, opts).await;
    store.close().await;
    let report = match outcome? {
        RunOutcome::Done(r) => r,
        RunOutcome::NotYet(why) => anyhow::bail!("{why}"),
    };
    if dry_run {
        println!(
            "{date}: {} papers, {} emails written to {} (dry run, nothing recorded), {} skipped",
            report.papers_fetched,
            report.sent,
            cfg.outbox_dir.display(),
            report.skipped
        );
    } else {
        let via = match cfg.transport {
            TransportKind::Smtp => format!("via {}:{}", cfg.smtp.host, cfg.smtp.port),
            TransportKind::Outbox => format!("into {}", cfg.outbox_dir.display()),
        };
        println!(
            "{date}: {} papers; {} subscribers: {} sent ({} by this run) {via}, {} skipped, {} failed, {} deferred",
            report.papers_fetched,
            report.subscribers,
            report.sent,
            report.sent_now,
            report.skipped,
            report.failed,
            report.deferred
        );
    }
    Ok(ExitCode::SUCCESS)
}
