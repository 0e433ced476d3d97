//! The optional HTTP listener (`[http] listen`): `/healthz`, `/metrics`, and `/unsubscribe`
//! (the signed link of the email's footer, and RFC 8058 one-click POSTs).

mod conn_clock;
mod health;
mod listener;
mod metrics_page;
mod one_click_body;
mod pages;
mod security_headers;
mod unsubscribe;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::store::Store;

/// What the handlers read: the store, the current config, and the scheduler's heartbeat.
#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub config: watch::Receiver<Arc<Config>>,
    /// The scheduler's heartbeat under `paperboy run`; `None` under `paperboy serve`, which
    /// has no scheduler.
    pub scheduler: Option<SchedulerHeartbeat>,
}

/// The scheduler loop's sign of life.
#[derive(Clone)]
pub struct SchedulerHeartbeat {
    /// Unix time of the scheduler loop's last turn.
    pub last_turn: Arc<AtomicI64>,
    /// How stale the heartbeat may be (seconds) before the scheduler counts as stuck.
    pub max_age: i64,
}

/// Serves the routes on `listener` with the limits of `[http]` as they were at the start.
pub async fn serve(listener: tokio::net::TcpListener, state: HttpState) -> std::io::Result<()> {
    let limits = state.config.borrow().http_limits;
    info!(
        addr = %listener.local_addr()?,
        max_connections = limits.max_connections,
        "HTTP listener up: /healthz, /metrics, /unsubscribe"
    );
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/metrics", axum::routing::get(metrics_page::metrics_text))
        .route(
            "/unsubscribe",
            axum::routing::get(unsubscribe::unsubscribe_link)
                .post(unsubscribe::unsubscribe_one_click),
        )
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers::add))
        .with_state(state);
    listener::serve(listener, app, limits).await
}
