//! `paperboy serve`: only the HTTP listener ([http] listen): /unsubscribe, /healthz, /metrics;
//! stops on Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;

use crate::config::Config;

use super::shared::open_store;

pub async fn serve_command(cfg: &Arc<Config>) -> anyhow::Result<ExitCode> {
    let addr = cfg
        .http_listen
        .context("paperboy serve needs [http] listen = \"address:port\"")?;
    let store = open_store(cfg).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("http.listen {addr}"))?;
    let heartbeat = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let beat = heartbeat.clone();
    tokio::spawn(async move {
        loop {
            beat.store(Utc::now().timestamp(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let state = crate::http::HttpState {
        store,
        config: tokio::sync::watch::Sender::new(cfg.clone()).subscribe(),
        heartbeat,
        heartbeat_max_age: 30,
    };
    tokio::select! {
        r = crate::http::serve(listener, state) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
