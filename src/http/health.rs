//! `/healthz`: whether this process works (the HTTP status: 200 or 503) and whether the
//! digests go out (`status` "degraded" when the latest run failed), for a monitor to read.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::HttpState;

/// 200 with `status` "ok" or "degraded" (the process works; the latest run failed), 503 with
/// "unhealthy" (the database does not answer, or the scheduler of `paperboy run` is stuck).
/// Under `paperboy serve`, `scheduler` is "none" and no field claims a scheduler's life.
pub(super) async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    let mut body = Map::new();
    let scheduler_alive = match &s.scheduler {
        None => {
            body.insert("scheduler".into(), "none".into());
            true
        }
        Some(beat) => {
            let age = Utc::now().timestamp() - beat.last_turn.load(Ordering::Relaxed);
            let alive = age <= beat.max_age;
            body.insert(
                "scheduler".into(),
                if alive { "alive" } else { "stuck" }.into(),
            );
            body.insert("scheduler_alive".into(), alive.into());
            body.insert("scheduler_heartbeat_age_seconds".into(), age.into());
            alive
        }
    };
    let database = s.store.ping().await.map_err(|e| e.to_string());
    let last_run = s
        .store
        .runs(None, 1)
        .await
        .ok()
        .and_then(|r| r.into_iter().next());
    let works = scheduler_alive && database.is_ok();
    let last_failed = last_run.as_ref().is_some_and(|r| r.status == "failed");
    let status = match (works, last_failed) {
        (false, _) => "unhealthy",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    body.insert("status".into(), status.into());
    body.insert(
        "database".into(),
        match database {
            Ok(()) => "ok".into(),
            Err(e) => e.into(),
        },
    );
    body.insert(
        "last_run".into(),
        last_run.map_or(Value::Null, |r| {
            json!({
                "digest_date": r.digest_date.to_string(),
                "status": r.status,
                "started_at": r.started_at.to_rfc3339(),
                "finished_at": r.finished_at.map(|t| t.to_rfc3339()),
                "sent": r.sent, "skipped": r.skipped, "failed": r.failed, "deferred": r.deferred,
                "error": r.error,
            })
        }),
    );
    let code = if works {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Value::Object(body)))
}
