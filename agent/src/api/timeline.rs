//! `GET /api/v1/timeline?service=X&from=T1&to=T2`: what the agent knows about
//! a service between two times, in one ordered list ([`crate::timeline`]).
//! This file gathers the inputs — the stored alert history, state changes and audit log,
//! the deploy, override, bypass and silence books, the latest snapshot,
//! the journeys' last runs — and [`crate::timeline::build`] merges them.
//!
//! Audit entries (who did what) are included only for a caller with role
//! `admin`, as on `GET /api/v1/audit`; everyone who may read sees the rest.
//!
//! [`incident_timeline`] is the same for an incident: its services, from an
//! hour before its start to its resolution, with its status updates.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::{Caller, Role};
use super::error;
use super::state::ApiState;
use crate::synthetic::journey::Status;
use crate::timefmt::parse_rfc3339;
use crate::timeline::{Failure, Inputs, StatusUpdate, Timeline};

/// Stored alert transitions and audit entries read at most for one timeline
/// (the newest; older ones are beyond the store's retention anyway).
pub const MAX_STORED_READ: usize = 20_000;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/timeline", get(timeline)).route("/api/v1/incidents/{id}/timeline", get(incident))
}

/// Why a timeline could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("{0}")]
    Query(#[from] crate::timeline::QueryError),
    #[error("reading the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Whether a caller sees audit entries: role `admin` only, as on `GET /api/v1/audit`.
/// An open read (no `api.read_requires_token`) passes the gate without a
/// [`Caller`], so a presented token is checked here.
pub fn sees_audit(s: &ApiState, caller: Option<&Caller>, headers: &HeaderMap) -> bool {
    caller.is_some_and(|c| c.role == Some(Role::Admin))
        || (headers.contains_key(axum::http::header::AUTHORIZATION)
            && crate::auth::check(&s.auth.config, headers, Role::Admin).is_ok_and(|(_, r)| r == Some(Role::Admin)))
}

/// The timeline of `q` (with the audit entries about it when `with_audit`):
/// blocking (it reads the store), so call it off the async workers.
pub fn gather(
    s: &ApiState,
    q: &crate::timeline::Query,
    updates: &[StatusUpdate],
    with_audit: bool,
) -> Result<Timeline, TimelineError> {
    let snap = s.snapshot();
    let alerts = s.store.alert_history(MAX_STORED_READ)?;
    let audit = if with_audit { s.store.audit(MAX_STORED_READ)? } else { Vec::new() };
    let changes: Vec<crate::timeline::changes::Change> = s
        .store
        .state_changes(&q.services, q.from_ms, q.to_ms)?
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect();
    let deploys: Vec<_> = s.deploys.read().list(q.now_ms, false).cloned().collect();
    let overrides: Vec<_> = s.overrides.read().list(q.now_ms, false).cloned().collect();
    let bypasses: Vec<_> = s.bypasses.read().list(q.now_ms, false).cloned().collect();
    let silences: Vec<_> = s.silences.read().list(q.now_ms, true).into_iter().cloned().collect();
    // Journeys keep their last run only: a failing one shows once, at its start.
    let failures: Vec<Failure> = s
        .journeys
        .runs()
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| {
            let step = r.steps.iter().find(|st| Some(&st.name) == r.failed_step.as_ref());
            Failure {
                at_ms: r.started_ms,
                source: "journeys",
                service: r.service.clone(),
                name: r.name.clone(),
                part: r.failed_step.clone(),
                region: r.region.clone(),
                http_status: step.and_then(|st| st.http_status),
                error: step.and_then(|st| st.error.clone()),
            }
        })
        .collect();
    let inputs = Inputs {
        alerts: &alerts,
        deploys: &deploys,
        impacts: &snap.deploys,
        freeze: &snap.freeze.services,
        overrides: &overrides,
        bypasses: &bypasses,
        silences: &silences,
        failures: &failures,
        audit: &audit,
        reports: &snap.reports,
        reports_at_ms: (snap.at_ms > 0).then_some(snap.at_ms),
        updates,
        changes: &changes,
    };
    Ok(crate::timeline::build(q, &inputs))
}

/// An incident's timeline, for `GET /api/v1/incidents/{id}/timeline`: its
/// services from [`crate::timeline::INCIDENT_LEAD_MS`] before `started_ms`
/// to `resolved_ms` (or now), with its status updates as `status_update`
/// entries. Blocking, like [`gather`]; `with_audit` from [`sees_audit`].
pub fn incident_timeline(
    s: &ApiState,
    services: Vec<String>,
    started_ms: i64,
    resolved_ms: Option<i64>,
    updates: &[StatusUpdate],
    with_audit: bool,
) -> Result<Timeline, TimelineError> {
    let q = crate::timeline::Query::incident(services, started_ms, resolved_ms, s.clock.now_ms())?;
    gather(s, &q, updates, with_audit)
}

fn time_param(q: &HashMap<String, String>, name: &str) -> Result<i64, String> {
    match q.get(name) {
        None => Err(format!("`{name}` is required (an RFC 3339 time such as 2026-11-20T12:00:00Z)")),
        Some(v) => parse_rfc3339(v).map_err(|e| format!("`{name}`: {e}")),
    }
}

/// `GET /api/v1/incidents/{id}/timeline`: the timeline of the incident's
/// services from an hour before it started to its resolution (or now), with
/// its status updates as entries.
async fn incident(
    State(s): State<Arc<ApiState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
) -> Response {
    let with_audit = sees_audit(&s, caller.as_ref().map(|c| &c.0), &headers);
    let Some(found) = s.incidents.read().get(&id).cloned() else {
        return error(StatusCode::NOT_FOUND, &crate::incident::IncidentError::NotFound(id).to_string());
    };
    let updates: Vec<StatusUpdate> = found
        .updates
        .iter()
        .map(|u| StatusUpdate {
            at_ms: u.at_ms,
            status: u.status.as_str().to_string(),
            message: u.message.clone(),
            by: u.by.clone(),
        })
        .collect();
    let answer = tokio::task::spawn_blocking(move || {
        incident_timeline(&s, found.services, found.started_at_ms, found.resolved_at_ms, &updates, with_audit)
    })
    .await;
    match answer {
        Ok(Ok(t)) => axum::Json(t).into_response(),
        Ok(Err(TimelineError::Query(e))) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn timeline(
    State(s): State<Arc<ApiState>>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let with_audit = sees_audit(&s, caller.as_ref().map(|c| &c.0), &headers);
    if let Some(k) = q.keys().find(|k| !["service", "from", "to"].contains(&k.as_str())) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("unknown parameter {:?}; use service, from, to", crate::untrusted::Escaped(k)),
        );
    }
    let Some(service) = q.get("service").filter(|v| !v.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "`service` is required");
    };
    let (from, to) = match (time_param(&q, "from"), time_param(&q, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let query = match crate::timeline::Query::new(vec![service.clone()], from, to, s.clock.now_ms()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match tokio::task::spawn_blocking(move || gather(&s, &query, &[], with_audit)).await {
        Ok(Ok(t)) => axum::Json(t).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
