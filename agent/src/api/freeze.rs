//! `GET /api/v1/freeze`: may service X deploy now, and if not, why.
//!
//! Answers come from the snapshot of the last evaluation (the decision is
//! made on the tick, [`crate::freeze`]), never recomputed per request.
//! `?service=X[&change=feature|hotfix|rollback]` answers 200 when that
//! change may go ahead and 423 (Locked) when it may not, with the same JSON
//! either way; without `service`, 200 with every known service.
//!
//! `GET /api/v1/freeze/verdict` answers the same JSON with 200 whatever the
//! verdict: for callers such as Argo Rollouts' `web` metric provider, which
//! take any other status for a failed measurement rather than a verdict.
//!
//! `POST /api/v1/freeze/flagger` is a Flagger gate webhook: it takes
//! Flagger's payload (`name`, `namespace`, `phase`, `checksum`,
//! `metadata`), reads the service from `metadata.service` (else the
//! canary's `name`) and the change type from `metadata.change`, and answers
//! 200 (go) or 403 (halt) with the same JSON.
//!
//! Manual freezes and unfreezes (`/api/v1/freeze/overrides`, role
//! `approve`) are laid over the board when an answer is made
//! ([`crate::freeze::overrides`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::error;
use super::state::ApiState;
use crate::freeze::overrides::{self, Action, DEFAULT_OVERRIDE_MS, MAX_OVERRIDE_MS, Override};
use crate::freeze::{Board, Reason, ServiceFreeze};
use crate::spec::policy::ChangeType;
use crate::timefmt::rfc3339;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/freeze", get(|s, q| freeze(s, q, false)))
        .route("/api/v1/freeze/verdict", get(|s, q| freeze(s, q, true)))
        .route("/api/v1/freeze/flagger", axum::routing::post(flagger))
        .route("/api/v1/freeze/overrides", get(list_overrides).post(create_override))
        .route("/api/v1/freeze/overrides/{id}", get(get_override).delete(end_override))
}

/// The answer for one service and change type, with the service's active
/// overrides laid over the board's decision.
fn answer(state: &ApiState, base: &ServiceFreeze, change: ChangeType, at_ms: i64) -> (bool, Value) {
    let now = state.clock.now_ms();
    let book = state.overrides.read();
    let active = book.of(&base.service, now);
    let s = overrides::overlay(base, &active);
    let mut v = decision(&s, change, at_ms);
    v["overrides"] = Value::Array(active.iter().map(|o| override_json(o)).collect());
    (s.allows(change), v)
}

pub fn override_json(o: &Override) -> Value {
    json!({
        "id": o.id,
        "service": o.service,
        "action": o.action.as_str(),
        "reason": o.reason,
        "created_by": o.created_by,
        "created_at": rfc3339(o.created_at_ms),
        "expires_at": rfc3339(o.ends_at_ms),
        "ended_by": o.ended_by,
    })
}

/// The answer for one service and change type (without overrides).
pub fn decision(s: &ServiceFreeze, change: ChangeType, at_ms: i64) -> Value {
    json!({
        "service": s.service,
        "change": change.as_str(),
        "allowed": s.allows(change),
        "frozen": s.frozen,
        "status": s.status.as_str(),
        "policy": s.policy,
        "reasons": s.reasons.iter().map(reason).collect::<Vec<_>>(),
        "never_block": s.never_block.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "approvers_for_bypass": s.approvers,
        "slos": s.slos.iter().map(|f| json!({
            "name": f.name,
            "budget_remaining": f.budget_remaining,
            "sli": f.sli,
            "events": f.events,
            "judged": f.judged,
            "burn_rates": f.burn_rates,
        })).collect::<Vec<_>>(),
        "overrides": [],
        "evaluated_at": rfc3339(at_ms),
    })
}

fn reason(r: &Reason) -> Value {
    json!({
        "kind": r.kind,
        "slo": r.slo,
        "measured": r.measured,
        "threshold": r.threshold,
        "since": rfc3339(r.since_ms),
        "message": r.message,
    })
}

async fn freeze(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
    always_200: bool,
) -> Response {
    if let Some(unknown) = q.keys().find(|k| !matches!(k.as_str(), "service" | "change")) {
        return error(StatusCode::BAD_REQUEST, &format!("unknown parameter `{unknown}`; use `service` and `change`"));
    }
    let change = match q.get("change").map(String::as_str) {
        None | Some("") => ChangeType::Feature,
        Some(c) => match ChangeType::parse(c) {
            Some(c) => c,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`change` must be feature, hotfix or rollback, not {c:?}"),
                );
            }
        },
    };
    let snap = s.snapshot();
    if snap.at_ms == 0 {
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "no evaluation yet; ask again in a moment");
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let board: &Board = &snap.freeze;
    match q.get("service") {
        None => {
            let services: Vec<Value> = board.services.iter().map(|sv| answer(&s, sv, change, board.at_ms).1).collect();
            axum::Json(json!({"evaluated_at": rfc3339(board.at_ms), "change": change.as_str(), "services": services}))
                .into_response()
        }
        Some(name) => match board.get(name) {
            Some(sv) => {
                let (allowed, v) = answer(&s, sv, change, board.at_ms);
                let status = if always_200 || allowed { StatusCode::OK } else { StatusCode::LOCKED };
                (status, axum::Json(v)).into_response()
            }
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "error": format!("no SLO has the service {name:?}"),
                    "known_services": board.services.iter().map(|sv| sv.service.as_str()).collect::<Vec<_>>(),
                })),
            )
                .into_response(),
        },
    }
}

/// What Flagger posts to a webhook.
#[derive(serde::Deserialize)]
struct FlaggerPayload {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

async fn flagger(State(s): State<Arc<ApiState>>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    // A read: open unless reads need a token.
    if let Err(r) = super::auth::authorize(&s, &headers, None, crate::auth::Role::Read) {
        return r.into_response();
    }
    let p: FlaggerPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("not a Flagger webhook payload ({{\"name\", \"namespace\", \"phase\", \"metadata\"}}): {e}"),
            );
        }
    };
    let service = p.metadata.get("service").cloned().unwrap_or_else(|| p.name.clone());
    let change = match p.metadata.get("change").map(String::as_str) {
        None | Some("") => ChangeType::Feature,
        Some(c) => match ChangeType::parse(c) {
            Some(c) => c,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("metadata.change must be feature, hotfix or rollback, not {c:?}"),
                );
            }
        },
    };
    let snap = s.snapshot();
    if snap.at_ms == 0 {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no evaluation yet; Flagger will ask again");
    }
    let board: &Board = &snap.freeze;
    match board.get(&service) {
        Some(sv) => {
            let (allowed, mut v) = answer(&s, sv, change, board.at_ms);
            v["flagger"] = json!({"name": p.name, "namespace": p.namespace, "phase": p.phase});
            let status = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
            (status, axum::Json(v)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error": format!("no SLO has the service {service:?} (from metadata.service, else the canary's name)"),
                "known_services": board.services.iter().map(|sv| sv.service.as_str()).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}

const CREATE: &str = "freeze.override.create";
const END: &str = "freeze.override.end";
const MAX_REASON_CHARS: usize = 1000;

/// The body of `POST /api/v1/freeze/overrides`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    service: String,
    action: String,
    reason: String,
    #[serde(default)]
    expires_in: Option<String>,
}

/// `POST /api/v1/freeze/overrides` (role `approve`): freeze or unfreeze a
/// service by hand, with a reason and an expiry (default 4h, at most 30d).
async fn create_override(
    State(s): State<Arc<ApiState>>,
    super::auth::RemoteAddr(remote): super::auth::RemoteAddr,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    use crate::auth::Role;
    let caller = match super::auth::authorize_audited(&s, &headers, remote, Role::Approve, CREATE, None).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let bytes = match super::silences::read_body(&headers, body).await {
        Ok(b) => b,
        Err((status, message)) => return super::silences::refuse(&s, &caller, CREATE, None, status, &message).await,
    };
    let now = s.clock.now_ms();
    let parsed = serde_json::from_slice::<CreateBody>(&bytes)
        .map_err(|e| {
            format!(
                "the body must be {{\"service\", \"action\": \"freeze\"|\"unfreeze\", \"reason\", \"expires_in\"}}: {e}"
            )
        })
        .and_then(|b| {
            let action = match b.action.as_str() {
                "freeze" => Action::Freeze,
                "unfreeze" => Action::Unfreeze,
                other => return Err(format!("`action` must be freeze or unfreeze, not {other:?}")),
            };
            let reason = b.reason.trim();
            if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
                return Err(format!("`reason` must say why, on one line, in at most {MAX_REASON_CHARS} characters"));
            }
            let length = match &b.expires_in {
                None => DEFAULT_OVERRIDE_MS,
                Some(t) => match crate::yaml::values::parse_duration(t).and_then(|d| i64::try_from(d.as_millis()).ok())
                {
                    Some(ms) if (60_000..=MAX_OVERRIDE_MS).contains(&ms) => ms,
                    _ => return Err(format!("`expires_in` must be a duration from 1m to 30d such as 4h, not {t:?}")),
                },
            };
            Ok((b.service, action, reason.to_string(), length))
        });
    let (service, action, reason, length) = match parsed {
        Ok(p) => p,
        Err(m) => return super::silences::refuse(&s, &caller, CREATE, None, StatusCode::BAD_REQUEST, &m).await,
    };
    let known = s.snapshot().freeze.get(&service).is_some();
    if !known {
        let snap = s.snapshot();
        let names: Vec<&str> = snap.freeze.services.iter().map(|sv| sv.service.as_str()).collect();
        let m = format!("no SLO has the service {service:?}; known services: {}", names.join(", "));
        return super::silences::refuse(&s, &caller, CREATE, Some(&service), StatusCode::NOT_FOUND, &m).await;
    }
    let o = Override {
        id: crate::secret::random_id(),
        service,
        action,
        reason,
        created_by: caller.name.clone(),
        created_at_ms: now,
        ends_at_ms: now + length,
        ended_by: None,
    };
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.overrides.writes.lock().unwrap_or_else(|e| e.into_inner());
        let entry = caller.audit(now, CREATE, Some(&o.id), &format!("ok: {} {}", o.action.as_str(), o.service));
        let json = serde_json::to_vec(&o).expect("overrides serialize");
        if let Err(e) = shared.store.put_kept(crate::store::Kept::FreezeOverrides, &o.id, &json, &entry) {
            let message = format!("the override could not be stored, so it was not made: {e}");
            super::auth::record(&shared, &caller.audit(now, CREATE, None, &format!("error: {message}")));
            return super::unavailable(&message);
        }
        shared.overrides.write().put(o.clone());
        super::auth::log(&entry);
        tracing::warn!(
            service = %crate::untrusted::Escaped(&o.service),
            action = o.action.as_str(),
            by = %o.created_by,
            reason = %crate::untrusted::Escaped(&o.reason),
            until = %rfc3339(o.ends_at_ms),
            "freeze override made"
        );
        (StatusCode::CREATED, axum::Json(override_json(&o))).into_response()
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `DELETE /api/v1/freeze/overrides/{id}` (role `approve`): end it now.
async fn end_override(
    State(s): State<Arc<ApiState>>,
    super::auth::RemoteAddr(remote): super::auth::RemoteAddr,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    use crate::auth::Role;
    let caller = match super::auth::authorize_audited(&s, &headers, remote, Role::Approve, END, Some(&id)).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.overrides.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let found = shared.overrides.read().get(&id).cloned();
        let Some(mut o) = found.filter(|o| o.active(now)) else {
            super::auth::record(&shared, &caller.audit(now, END, Some(&id), "not_found"));
            return error(StatusCode::NOT_FOUND, &format!("no active override with id {id:?}"));
        };
        o.ends_at_ms = now;
        o.ended_by = Some(caller.name.clone());
        let entry = caller.audit(now, END, Some(&o.id), "ok");
        let json = serde_json::to_vec(&o).expect("overrides serialize");
        if let Err(e) = shared.store.put_kept(crate::store::Kept::FreezeOverrides, &o.id, &json, &entry) {
            let message = format!("the override could not be stored, so it still holds: {e}");
            super::auth::record(&shared, &caller.audit(now, END, Some(&o.id), &format!("error: {message}")));
            return super::unavailable(&message);
        }
        shared.overrides.write().put(o.clone());
        super::auth::log(&entry);
        tracing::warn!(service = %crate::untrusted::Escaped(&o.service), id = %o.id, by = %caller.name, "freeze override ended");
        axum::Json(override_json(&o)).into_response()
    })
    .await;
    done.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `GET /api/v1/freeze/overrides[?all=true]`: the active overrides (with
/// `all`, also those that ended within 7 days), newest first.
async fn list_overrides(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`all` must be true or false"),
    };
    let now = s.clock.now_ms();
    let book = s.overrides.read();
    let list: Vec<Value> = book.list(now, !all).map(override_json).collect();
    axum::Json(json!({"overrides": list})).into_response()
}

async fn get_override(
    State(s): State<Arc<ApiState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match s.overrides.read().get(&id) {
        Some(o) => axum::Json(override_json(o)).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no override with id {id:?}")),
    }
}

/// Forget overrides that ended more than 7 days ago. Blocking; the
/// runtime's maintenance calls it hourly.
pub fn prune(state: &ApiState) {
    let before = state.clock.now_ms() - overrides::ENDED_RETENTION_MS;
    let _turn = state.overrides.writes.lock().unwrap_or_else(|e| e.into_inner());
    let gone = state.overrides.write().prune(before);
    match state.store.prune_kept(crate::store::Kept::FreezeOverrides, before) {
        Ok(n) if n > 0 || !gone.is_empty() => tracing::info!(overrides = n, "pruned ended freeze overrides"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning ended freeze overrides failed"),
    }
}
