//! `paperboy retry`: requeue the failed deliveries of a date and send them now.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::config::Config;
use crate::jobs::{cli_deliver_options, deliver};
use crate::render::Renderer;

use super::shared::open_store;

pub async fn retry_command(
    cfg: &Arc<Config>,
    renderer: &Arc<Renderer>,
    date: NaiveDate,
) -> anyhow::Result<ExitCode> {
    let store = open_store(cfg).await?;
    let n = store.requeue_failed(date).await?;
    println!("{date}: {n} failed deliveries requeued");
    let sent = deliver(
        cfg.clone(),
        store.clone(),
        renderer.clone(),
        cli_deliver_options(cfg),
    )
    .await;
    let counts = store.counts(date).await;
    store.close().await;
    let (sent, counts) = (sent?, counts?);
    println!(
        "{date}: {sent} sent by this run; now {} sent, {} failed, {} pending",
        counts.sent, counts.failed, counts.pending
    );
    Ok(ExitCode::SUCCESS)
}
