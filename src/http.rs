//! The optional HTTP listener (`[http] listen`): `/healthz`, `/metrics`, and `/unsubscribe`
//! (the signed link of the email's footer, and RFC 8058 one-click POSTs).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::domain::SubscriberKey;
use crate::mail::Tokens;
use crate::metrics::{Metrics, metrics};
use crate::store::Store;

/// What the handlers read: the store, the current config, and the scheduler's heartbeat.
#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub config: watch::Receiver<Arc<Config>>,
    /// Unix time of the scheduler loop's last turn.
    pub heartbeat: Arc<AtomicI64>,
    /// How stale the heartbeat may be before the scheduler counts as stuck.
    pub heartbeat_max_age: i64,
}

pub async fn serve(listener: tokio::net::TcpListener, state: HttpState) -> std::io::Result<()> {
    info!(addr = %listener.local_addr()?, "HTTP listener up: /healthz, /metrics");
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/metrics", axum::routing::get(metrics_text))
        .route(
            "/unsubscribe",
            axum::routing::get(unsubscribe_link).post(unsubscribe_one_click),
        )
        .with_state(state);
    axum::serve(listener, app).await
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    t: String,
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body style=\"font-family:-apple-system,BlinkMacSystemFont,\
         'Segoe UI',Roboto,Helvetica,Arial,sans-serif;max-width:32rem;margin:3rem auto;\
         padding:0 1rem;color:#18181b;\"><h1 style=\"font-size:1.4rem;\">{title}</h1>{body}</body></html>"
    )
}

/// Who a page names, HTML-escaped: the configured subscriber's address as written there, as
/// the command line names them; the key when no configured subscriber has it any more.
fn shown(cfg: &Config, key: &SubscriberKey) -> String {
    let address = cfg
        .subscriber(key)
        .map_or(key.as_str(), |s| s.email.as_str());
    handlebars::html_escape(address)
}

/// Checks a token and records the opt-out: (status, HTML page).
async fn opt_out(s: &HttpState, token: &str, via: &str) -> (StatusCode, String) {
    let cfg = s.config.borrow().clone();
    let secret = cfg.unsubscribe.secret.clone();
    let Some(key) = secret.and_then(|sec| Tokens::new(sec).verify(token)) else {
        return (
            StatusCode::FORBIDDEN,
            page(
                "This link is not valid",
                "<p>The unsubscribe link is incomplete or was altered. Use the link from your \
                 latest email, or reply to it.</p>",
            ),
        );
    };
    match s.store.opt_out(&key, via).await {
        Ok(first) => {
            info!(via, first, "unsubscribed");
            (
                StatusCode::OK,
                page(
                    "You are unsubscribed",
                    &format!(
                        "<p>{} will receive no more paperboy digests.</p>",
                        shown(&cfg, &key)
                    ),
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "recording an opt-out failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Please try again later",
                    "<p>The request could not be recorded.</p>",
                ),
            )
        }
    }
}

/// The link in the email's footer: a page with a button. A GET changes nothing, because link
/// scanners (Safe Links and the like) fetch every URL in an email; the button POSTs.
async fn unsubscribe_link(
    State(s): State<HttpState>,
    axum::extract::Query(q): axum::extract::Query<TokenQuery>,
) -> impl IntoResponse {
    let cfg = s.config.borrow().clone();
    let secret = cfg.unsubscribe.secret.clone();
    let (code, html) = match secret.and_then(|sec| Tokens::new(sec).verify(&q.t)) {
        None => (
            StatusCode::FORBIDDEN,
            page(
                "This link is not valid",
                "<p>The unsubscribe link is incomplete or was altered. Use the link from your \
                 latest email, or reply to it.</p>",
            ),
        ),
        Some(key) => (
            StatusCode::OK,
            page(
                "Unsubscribe from paperboy?",
                &format!(
                    "<p>{} will receive no more digests.</p>\
                     <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" \
                     value=\"One-Click\"><button type=\"submit\" style=\"font-size:1rem;\
                     padding:.5rem 1rem;\">Unsubscribe</button></form>",
                    shown(&cfg, &key)
                ),
            ),
        ),
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
}

/// RFC 8058 one-click (a POST of `List-Unsubscribe=One-Click` to the List-Unsubscribe URL),
/// and the confirmation page's button.
async fn unsubscribe_one_click(
    State(s): State<HttpState>,
    axum::extract::Query(q): axum::extract::Query<TokenQuery>,
) -> impl IntoResponse {
    let (code, html) = opt_out(&s, &q.t, "one-click").await;
    (
        code,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
}

async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let age = Utc::now().timestamp() - s.heartbeat.load(Ordering::Relaxed);
    let scheduler_alive = age <= s.heartbeat_max_age;
    let database = s.store.ping().await.map_err(|e| e.to_string());
    let last_run = s
        .store
        .runs(None, 1)
        .await
        .ok()
        .and_then(|r| r.into_iter().next());
    let ok = scheduler_alive && database.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "scheduler_alive": scheduler_alive,
        "scheduler_heartbeat_age_seconds": age,
        "database": match &database { Ok(()) => "ok".to_string(), Err(e) => e.clone() },
        "last_run": last_run.map(|r| serde_json::json!({
            "digest_date": r.digest_date.to_string(),
            "status": r.status,
            "started_at": r.started_at.to_rfc3339(),
            "finished_at": r.finished_at.map(|t| t.to_rfc3339()),
            "sent": r.sent, "skipped": r.skipped, "failed": r.failed, "deferred": r.deferred,
            "error": r.error,
        })),
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

async fn metrics_text(State(s): State<HttpState>) -> impl IntoResponse {
    let m = metrics();
    match s.store.counts_all().await {
        Ok(c) => {
            for (status, n) in [
                ("pending", c.pending),
                ("sending", c.sending),
                ("sent", c.sent),
                ("failed", c.failed),
                ("skipped", c.skipped),
            ] {
                Metrics::set_status(&m.deliveries, status, n);
            }
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("database: {e}"),
            );
        }
    }
    if let Ok(runs) = s.store.run_counts().await {
        for status in ["running", "done", "skipped", "failed"] {
            Metrics::set_status(&m.runs, status, runs.get(status).copied().unwrap_or(0));
        }
    }
    let cfg = s.config.borrow().clone();
    if let Some(t) = cfg.schedule.next_after(Utc::now()) {
        m.next_tick.set(t.timestamp());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}
