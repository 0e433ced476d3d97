//! `/metrics`: the Prometheus (OpenMetrics) text, with the delivery and run counts read from
//! the database at each scrape.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;

use super::HttpState;
use crate::metrics::{Metrics, metrics};

pub(super) async fn metrics_text(State(s): State<HttpState>) -> impl IntoResponse {
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
