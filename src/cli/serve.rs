//! `paperboy serve`: only the HTTP listener ([http] listen): /unsubscribe, /healthz, /metrics;
//! stops on Ctrl-C. It has no scheduler, and /healthz says so.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

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
    let state = crate::http::HttpState {
        store,
        config: tokio::sync::watch::Sender::new(cfg.clone()).subscribe(),
        scheduler: None,
    };
    tokio::select! {
        r = crate::http::serve(listener, state) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
