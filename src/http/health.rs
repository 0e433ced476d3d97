//! `/healthz`: whether the scheduler turns and the database answers, with the latest run.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;

use super::HttpState;

pub(super) async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
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
