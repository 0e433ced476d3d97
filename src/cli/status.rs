//! `paperboy status`: the next scheduled tick, the latest runs, and the deliveries pending or
//! failed.

use std::process::ExitCode;

use chrono::Utc;

use crate::config::Config;

use super::shared::open_store;

pub async fn status_command(cfg: &Config) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match cfg.schedule.next_after(now) {
        Some(t) => println!(
            "next tick: {} ({}, {}), digest of {}",
            t.with_timezone(&cfg.timezone)
                .format("%a %Y-%m-%d %H:%M:%S %Z"),
            cfg.schedule.pattern(),
            cfg.timezone,
            cfg.schedule.digest_date(t)
        ),
        None => println!("next tick: never ({})", cfg.schedule.pattern()),
    }
    let store = open_store(cfg).await?;
    let runs = store.runs(None, 10).await?;
    let totals = store.counts_all().await?;
    store.close().await;
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in runs {
        println!(
            "run {}: {:<7} started {}{}  papers={} sent={} skipped={} failed={} deferred={}{}",
            r.digest_date,
            r.status,
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.finished_at
                .map(|f| format!(", finished {}", f.format("%H:%M:%S")))
                .unwrap_or_default(),
            r.papers,
            r.sent,
            r.skipped,
            r.failed,
            r.deferred,
            r.error
                .map(|e| format!("\n    error: {e}"))
                .unwrap_or_default()
        );
    }
    println!(
        "deliveries: {} pending, {} sending, {} failed, {} sent, {} skipped",
        totals.pending, totals.sending, totals.failed, totals.sent, totals.skipped
    );
    Ok(ExitCode::SUCCESS)
}
