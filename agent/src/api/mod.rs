//! The HTTP API (axum): health, readiness, `/metrics`, and the SLO reports.
//!
//! **Architecture invariant:** handlers never take the engine lock; they read
//! the latest evaluation snapshot, so a busy ingest never slows an answer.
//! Push endpoints ([`push`]) hand their deliveries to the ingest thread.
//! Silences and the audit log ([`silences`]) need API tokens ([`auth`]).

pub mod access;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod crawlers;
pub mod deploys;
pub mod freeze;
pub mod github;
pub mod hops;
pub mod incidents;
pub mod journeys;
pub mod outage;
pub mod push;
pub mod signals;
pub mod silences;
pub mod state;
pub mod status;
pub mod status_push;
pub mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use state::{ApiState, Health, SilenceBook, Snapshot, SnapshotCell};

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/slos", get(list_slos))
        .route("/api/v1/slos/{name}", get(get_slo))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/notifications", get(list_notifications))
        .route("/ingest/firehose/{source}", post(push::firehose))
        .route("/ingest/lambda-telemetry/{source}", post(push::lambda_telemetry))
        .route("/ingest/otlp/{source}/v1/traces", post(push::otlp_traces))
        .route("/v1/traces", post(push::otlp_default))
        .merge(silences::routes())
        .merge(audit::routes())
        .merge(backup::routes())
        .merge(crawlers::routes())
        .merge(deploys::routes())
        .merge(freeze::routes())
        .merge(github::routes())
        .merge(hops::routes())
        .merge(signals::routes())
        .merge(journeys::routes())
        .merge(timeline::routes())
        .merge(outage::routes())
        .merge(incidents::routes())
        .merge(status::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::gate))
        .with_state(state)
}

/// 200 while the agent can do its job; else 503 with every reason, one per
/// line (`state: …`, `store: …`, `ingest: …`).
async fn readyz(State(s): State<Arc<ApiState>>) -> Response {
    let reasons = s.health.reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", reasons.join("\n"))).into_response()
    }
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the classic
/// text format for everyone else (curl, promtool, older tools).
async fn metrics(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let body = tokio::task::spawn_blocking(move || s.metrics()).await.unwrap_or_default();
    if openmetrics {
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
    } else {
        let text = crate::export::prometheus::to_classic_text(&body);
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
    }
}

async fn list_slos(State(s): State<Arc<ApiState>>) -> Response {
    axum::Json(s.snapshot().report()).into_response()
}

async fn get_slo(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let snap = s.snapshot();
    match snap.reports.iter().find(|r| r.name == name) {
        Some(r) => axum::Json(r.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no SLO named {name:?}")),
    }
}

/// Every alert that is pending, firing or resolved, and the newest changes
/// (`?history=N`, default 50, at most 1000).
async fn list_alerts(
    State(s): State<Arc<ApiState>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = match q.get("history").map(|v| v.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if n <= 1000 => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`history` must be a whole number from 0 to 1000"),
    };
    let snap = s.snapshot();
    let store = s.store.clone();
    let history = tokio::task::spawn_blocking(move || store.alert_history(limit)).await;
    match history {
        Ok(Ok(history)) => axum::Json(serde_json::json!({
            "at": crate::timefmt::rfc3339(snap.at_ms),
            "alerts": snap.alerts,
            "history": history,
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("reading the alert history: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Every receiver's delivery figures (outbox depth, sent, retried, failed,
/// silenced) and the newest notifications that could not be delivered
/// (`?failed=N`, default 20, at most 1000).
async fn list_notifications(
    State(s): State<Arc<ApiState>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = match q.get("failed").map(|v| v.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if n <= 1000 => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`failed` must be a whole number from 0 to 1000"),
    };
    use crate::telemetry::events::{NOTIFICATIONS, NOTIFY_LATENCY, OUTBOX_DEPTH};
    let t = &s.telemetry;
    let receivers: Vec<serde_json::Value> = s
        .receivers
        .iter()
        .map(|(name, kind)| {
            let l = [("receiver", name.as_str()), ("kind", *kind)];
            let result = |r: &str| t.value(&NOTIFICATIONS, &[l[0], l[1], ("result", r)]) as u64;
            let latency = t.value(&NOTIFY_LATENCY, &l);
            serde_json::json!({
                "name": name, "kind": kind, "outbox_depth": t.value(&OUTBOX_DEPTH, &l) as u64,
                "sent": result("sent"), "retried": result("retried"), "failed": result("failed"),
                "silenced": result("silenced"),
                "last_latency_seconds": (result("sent") > 0).then_some(latency),
            })
        })
        .collect();
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || crate::notify::outbox::Outbox::failed(&*store, limit)).await {
        Ok(Ok(failed)) => axum::Json(serde_json::json!({"receivers": receivers, "failed": failed})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("reading the failed notifications: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/v1/slos, /api/v1/alerts, /api/v1/freeze, /api/v1/hops, /api/v1/crawlers, /api/v1/journeys, /api/v1/status, /api/v1/outage, /api/v1/anomalies, /api/v1/forecasts, /api/v1/silences, /api/v1/timeline, /metrics, /healthz, /readyz, /ingest/…",
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// An answer computed on a blocking thread (merging minutes, forecasting),
/// as JSON; 500 if the computation panicked.
async fn answered_blocking<T: serde::Serialize + Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(a) => axum::Json(a).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// 503 with `Retry-After`: the state file cannot take the change now (the
/// runtime is reopening it); the same request can succeed shortly.
fn unavailable(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    r
}
