//! `/api/v1/incidents` (list, show, open) and `/api/v1/incidents/{id}/updates`
//! (post an update; `resolved` closes the incident).
//!
//! Opening and updating need the `incident` role (`admin` holds it); reads
//! need `read` only when `api.read_requires_token` is set. Like silences,
//! each change is stored with the audit entry of its call in one
//! transaction before it is put in the book and answered; refusals are
//! audited too. The model and its checks are [`crate::incident`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth;
use super::error;
use super::silences::{read_body_within, refuse};
use super::state::ApiState;
use crate::incident::{Draft, Impact, Incident, IncidentError, Incidents, RECENT_MS, RESOLVED_RETENTION_MS, Status};
use crate::store::Kept;
use crate::timefmt::{parse_rfc3339, rfc3339};

/// Largest request body accepted (a message is at most 4,000 characters).
pub const MAX_BODY_BYTES: usize = 32 * 1024;

const OPEN: &str = "incident.open";
const UPDATE: &str = "incident.update";

/// The incidents the API changes and the status page and the alerts read.
pub type IncidentBook = super::state::Book<Incidents>;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/incidents", get(list).post(open))
        .route("/api/v1/incidents/{id}", get(show))
        .route("/api/v1/incidents/{id}/updates", post(update))
}

fn status_of(e: &IncidentError) -> StatusCode {
    match e {
        IncidentError::Invalid(_) => StatusCode::BAD_REQUEST,
        IncidentError::NotFound(_) => StatusCode::NOT_FOUND,
        IncidentError::Conflict(_) => StatusCode::CONFLICT,
    }
}

/// `GET /api/v1/incidents[?days=N]`: open incidents, then those resolved
/// within the last `days` (default 7, at most 90).
async fn list(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let days = match q.get("days").map(|v| v.parse::<i64>()) {
        None => RECENT_MS / 86_400_000,
        Some(Ok(n)) if (0..=90).contains(&n) => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`days` must be a whole number from 0 to 90"),
    };
    let now = s.clock.now_ms();
    let book = s.incidents.read();
    let list: Vec<serde_json::Value> = book.list(now - days * 86_400_000).into_iter().map(Incident::to_json).collect();
    axum::Json(serde_json::json!({"at": rfc3339(now), "incidents": list})).into_response()
}

/// `GET /api/v1/incidents/{id}`.
async fn show(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    match s.incidents.read().get(&id) {
        Some(i) => axum::Json(i.to_json()).into_response(),
        None => error(StatusCode::NOT_FOUND, &IncidentError::NotFound(id).to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    title: String,
    services: Vec<String>,
    #[serde(default)]
    impact: Option<String>,
    #[serde(default)]
    status: Option<String>,
    message: String,
    #[serde(default)]
    started_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: String,
    message: String,
    #[serde(default)]
    impact: Option<String>,
}

fn status_field(s: &str) -> Result<Status, String> {
    Status::parse(s)
        .ok_or_else(|| format!("`status` must be investigating, identified, monitoring or resolved, not {s:?}"))
}

fn impact_field(s: &str) -> Result<Impact, String> {
    Impact::parse(s).ok_or_else(|| format!("`impact` must be none, minor, major or critical, not {s:?}"))
}

fn parse_open(bytes: &[u8], by: &str) -> Result<Draft, String> {
    let b: OpenBody = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the body must be {{\"title\", \"services\", \"message\", \"impact\", \"status\", \"started_at\"}}: {e}"
        )
    })?;
    Ok(Draft {
        title: b.title,
        services: b.services,
        impact: b.impact.as_deref().map(impact_field).transpose()?.unwrap_or(Impact::Minor),
        status: b.status.as_deref().map(status_field).transpose()?.unwrap_or(Status::Investigating),
        message: b.message,
        started_at_ms: b
            .started_at
            .as_deref()
            .map(|t| parse_rfc3339(t).map_err(|e| format!("`started_at`: {e}")))
            .transpose()?,
        opened_by: by.to_string(),
    })
}

fn parse_update(bytes: &[u8]) -> Result<(Status, String, Option<Impact>), String> {
    let b: UpdateBody = serde_json::from_slice(bytes)
        .map_err(|e| format!("the body must be {{\"status\", \"message\", \"impact\"}}: {e}"))?;
    Ok((status_field(&b.status)?, b.message, b.impact.as_deref().map(impact_field).transpose()?))
}

/// Store an incident with its audit entry (and its push to the external
/// status page, `status.push`), then keep it; the answer when the store refused.
fn commit(s: &ApiState, i: &Incident, entry: &crate::auth::AuditEntry, what: &str) -> Option<Response> {
    let push = s.status.push.as_ref().map(|p| p.incident_queue(i)).unwrap_or_default();
    match super::freeze::commit_with_push(s, Kept::Incidents, &i.id, i, entry, what, &push) {
        Ok(queued) => {
            if let Some(p) = &s.status.push {
                p.queued(&s.store, &s.telemetry, &queued);
            }
            None
        }
        Err(r) => Some(*r),
    }
}

/// `POST /api/v1/incidents`: 201 with the incident and `Location`.
async fn open(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body_within(&headers, body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err((status, message)) => return refuse(&s, &caller, OPEN, None, status, &message).await,
    };
    let by = format!("user:{}", caller.name);
    let draft = match parse_open(&bytes, &by) {
        Ok(d) => d,
        Err(m) => return refuse(&s, &caller, OPEN, None, StatusCode::BAD_REQUEST, &m).await,
    };
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.incidents.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let opened = shared.incidents.read().open(draft, now);
        let i = match opened {
            Ok(i) => i,
            Err(e) => {
                let m = e.to_string();
                auth::record(&shared, &caller.audit(now, OPEN, None, &format!("invalid: {m}")));
                return error(status_of(&e), &m);
            }
        };
        let entry =
            caller.audit(now, OPEN, Some(&i.id), &format!("ok: {} {}", i.impact.as_str(), i.services.join(",")));
        if let Some(r) = commit(&shared, &i, &entry, "the incident was not opened") {
            return r;
        }
        shared.incidents.write().put(i.clone());
        tracing::info!(
            incident = %i.id,
            title = %crate::untrusted::Escaped(&i.title),
            services = %crate::untrusted::Escaped(&i.services.join(",")),
            by = %crate::untrusted::Escaped(&caller.name),
            "incident opened"
        );
        let mut r = (StatusCode::CREATED, axum::Json(i.to_json())).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/incidents/{}", i.id)) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `POST /api/v1/incidents/{id}/updates`: 201 with the incident after the update.
async fn update(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body_within(&headers, body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err((status, message)) => return refuse(&s, &caller, UPDATE, Some(&id), status, &message).await,
    };
    let (status, message, impact) = match parse_update(&bytes) {
        Ok(x) => x,
        Err(m) => return refuse(&s, &caller, UPDATE, Some(&id), StatusCode::BAD_REQUEST, &m).await,
    };
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.incidents.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let by = format!("user:{}", caller.name);
        let changed = shared.incidents.read().updated(&id, status, &message, impact, &by, now);
        let i = match changed {
            Ok(i) => i,
            Err(e) => {
                let m = e.to_string();
                let outcome = match e {
                    IncidentError::NotFound(_) => "not_found".to_string(),
                    _ => format!("invalid: {m}"),
                };
                auth::record(&shared, &caller.audit(now, UPDATE, Some(&id), &outcome));
                return error(status_of(&e), &m);
            }
        };
        let entry = caller.audit(now, UPDATE, Some(&i.id), &format!("ok: {}", status.as_str()));
        if let Some(r) = commit(&shared, &i, &entry, "the update was not posted") {
            return r;
        }
        shared.incidents.write().put(i.clone());
        tracing::info!(incident = %i.id, status = status.as_str(), by = %crate::untrusted::Escaped(&caller.name), "incident updated");
        (StatusCode::CREATED, axum::Json(i.to_json())).into_response()
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// Open or update incidents for alert transitions (`incidents.open_on`),
/// storing each change with an audit entry of actor `alert`. Blocking; the
/// state thread calls it after the transitions were committed. A failure
/// is logged: the alert still notifies; the incident is missed.
pub fn on_transitions(
    s: &ApiState,
    transitions: &[crate::alert::Transition],
    open_on: &BTreeSet<crate::spec::model::Severity>,
) {
    if open_on.is_empty() || transitions.is_empty() {
        return;
    }
    let _turn = s.incidents.writes.lock().unwrap_or_else(|e| e.into_inner());
    let changes = s.incidents.read().from_transitions(transitions, open_on);
    for service in &changes.refused {
        tracing::warn!(service = %crate::untrusted::Escaped(service), "a page alert could not open an incident (too many kept)");
    }
    for i in changes.changed {
        let at = i.updates.last().map_or(i.started_at_ms, |u| u.at_ms);
        let action = if i.updates.len() == 1 { OPEN } else { UPDATE };
        let actor = i.updates.last().map_or("alert", |u| u.by.as_str()).to_string();
        let entry = crate::auth::AuditEntry::new(at, &actor, None, action, Some(&i.id), "ok: automatic", None);
        let push = s.status.push.as_ref().map(|p| p.incident_queue(&i)).unwrap_or_default();
        match s.store.put_kept_with_push(Kept::Incidents, &i.id, &i.to_record(), &entry, &push) {
            Ok(queued) => {
                if let Some(p) = &s.status.push {
                    p.queued(&s.store, &s.telemetry, &queued);
                }
                auth::log(&entry);
                tracing::info!(incident = %i.id, action, "incident changed by an alert");
                s.incidents.write().put(i);
            }
            Err(e) => tracing::warn!(incident = %i.id, error = %e, "an alert's incident change could not be stored"),
        }
    }
}

/// Forget incidents resolved more than 90 days ago. Blocking; hourly.
pub fn prune(state: &ApiState) {
    let before = state.clock.now_ms() - RESOLVED_RETENTION_MS;
    {
        let _turn = state.incidents.writes.lock().unwrap_or_else(|e| e.into_inner());
        state.incidents.write().prune(before);
    }
    match state.store.prune_kept(Kept::Incidents, before) {
        Ok(n) if n > 0 => tracing::info!(incidents = n, "pruned resolved incidents"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning resolved incidents failed"),
    }
    // The Statuspage ids of incidents forgotten here are forgotten too.
    let prefix = crate::status::push::incident_key("");
    let keep = |id: &str| state.incidents.read().get(id).is_some();
    if let Err(e) = state.store.prune_status_push_values(&prefix, &keep) {
        tracing::warn!(error = %e, "pruning the status push's incident ids failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_or_refused_with_reasons() {
        let d =
            parse_open(br#"{"title": "t", "services": ["a"], "message": "m", "impact": "major"}"#, "user:x").unwrap();
        assert_eq!((d.impact, d.status, d.opened_by.as_str()), (Impact::Major, Status::Investigating, "user:x"));
        let cases = [
            (r#"{"title": "t", "services": ["a"]}"#, "missing field `message`"),
            (r#"{"title": "t", "services": ["a"], "message": "m", "x": 1}"#, "unknown field `x`"),
            (r#"{"title": "t", "services": ["a"], "message": "m", "impact": "huge"}"#, "`impact` must be none"),
            (r#"{"title": "t", "services": ["a"], "message": "m", "status": "fixed"}"#, "`status` must be"),
            (r#"{"title": "t", "services": ["a"], "message": "m", "started_at": "now"}"#, "`started_at`"),
        ];
        for (body, want) in cases {
            let got = parse_open(body.as_bytes(), "user:x").unwrap_err();
            assert!(got.contains(want), "{body}: {got}");
        }
        assert_eq!(parse_update(br#"{"status": "resolved", "message": "ok"}"#).unwrap().0, Status::Resolved);
        assert!(parse_update(br#"{"message": "ok"}"#).unwrap_err().contains("missing field `status`"));
    }
}
