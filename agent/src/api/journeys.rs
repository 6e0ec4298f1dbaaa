//! `GET /api/v1/journeys` and `GET /api/v1/journeys/{name}`: the last run of
//! every configured journey ("customers can't check out": which step fails,
//! and how), read from what the journey runner keeps; no request waits for
//! a run. A journey appears once it has run. Nothing of a request or a
//! response is shown beyond the status code and timings (`docs/api.md`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;
use crate::synthetic::journey::{JourneyRun, StepRun};

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/journeys", get(list)).route("/api/v1/journeys/{name}", get(one))
}

#[derive(Debug, serde::Serialize)]
pub struct Answer {
    pub journeys: Vec<Journey>,
}

/// One journey's last run.
#[derive(Debug, serde::Serialize)]
pub struct Journey {
    pub name: String,
    pub service: String,
    pub region: String,
    /// `ok`, `degraded` or `failed`.
    pub status: &'static str,
    pub failed_step: Option<String>,
    /// When the run started, RFC 3339.
    pub last_run: String,
    pub duration_ms: u64,
    pub steps: Vec<Step>,
}

/// One step of that run.
#[derive(Debug, serde::Serialize)]
pub struct Step {
    pub name: String,
    /// `ok`, `degraded`, `failed` or `skipped`.
    pub status: &'static str,
    /// The request, DNS to the end of the body; 0 when none was sent.
    pub duration_ms: u64,
    /// Why it failed; `null` unless failed.
    pub error: Option<String>,
    /// Why it is degraded (over its latency budget); `null` unless degraded.
    pub degraded_reason: Option<String>,
    pub http_status: Option<u16>,
    /// Seconds per blackbox phase (`resolve`, `connect`, `tls`, `processing`,
    /// `transfer`); `null` when no request was sent.
    pub phases: Option<crate::probe::Phases>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn step(s: &StepRun) -> Step {
    Step {
        name: s.name.clone(),
        status: s.status.as_str(),
        duration_ms: ms(s.duration),
        error: s.error.clone(),
        degraded_reason: s.degraded.clone(),
        http_status: s.http_status,
        phases: s.outcome.as_ref().map(|o| o.last().phases),
    }
}

/// The answer for one run.
pub fn journey(r: &JourneyRun) -> Journey {
    Journey {
        name: r.name.clone(),
        service: r.service.clone(),
        region: r.region.clone(),
        status: r.status.as_str(),
        failed_step: r.failed_step.clone(),
        last_run: crate::timefmt::rfc3339(r.started_ms),
        duration_ms: ms(r.duration),
        steps: r.steps.iter().map(step).collect(),
    }
}

async fn list(State(s): State<Arc<ApiState>>) -> Response {
    let journeys = s.journeys.runs().iter().map(|r| journey(r)).collect();
    axum::Json(Answer { journeys }).into_response()
}

async fn one(State(s): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    match s.journeys.runs().iter().find(|r| r.name == name) {
        Some(r) => axum::Json(journey(r)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no run of a journey named {name:?} yet (journeys appear after their first run)"),
        ),
    }
}
