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
use crate::freeze::bypass::{ApproveError, Bypass};
use crate::freeze::ledger::Entry as _;
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
        .route("/api/v1/freeze/bypasses", get(list_bypasses).post(create_bypass))
        .route("/api/v1/freeze/bypasses/{id}", get(get_bypass).delete(revoke_bypass))
        .route("/api/v1/freeze/bypasses/{id}/approve", axum::routing::post(approve_bypass))
}

/// The answer for one service and change type, with the service's active
/// overrides laid over the board's decision.
pub(super) fn answer(state: &ApiState, base: &ServiceFreeze, change: ChangeType, at_ms: i64) -> (bool, Value) {
    let now = state.clock.now_ms();
    let book = state.overrides.read();
    let active = book.of(&base.service, now);
    let s = overrides::overlay(base, &active);
    let bypasses = state.bypasses.read();
    let open = bypasses.of(&base.service, now);
    let bypassed = open.iter().any(|b| b.effective(now) && b.change_type() == Some(change));
    let allowed = s.allows(change) || bypassed;
    let mut v = decision(&s, change, at_ms);
    v["allowed"] = allowed.into();
    let mut listed: Vec<Value> = active.iter().map(|o| override_json(o)).collect();
    listed.extend(open.iter().map(|b| bypass_json(b, now)));
    v["overrides"] = Value::Array(listed);
    (allowed, v)
}

pub fn bypass_json(b: &Bypass, now_ms: i64) -> Value {
    json!({
        "id": b.id,
        "service": b.service,
        "action": "bypass",
        "change": b.change,
        "state": b.state(now_ms),
        "reason": b.reason,
        "requested_by": b.requested_by,
        "created_at": rfc3339(b.created_at_ms),
        "expires_at": rfc3339(b.ends_at_ms),
        "approvers_needed": b.needs,
        "approvals": b.approvals.iter().map(|a| json!({"by": a.by, "at": rfc3339(a.at_ms), "comment": a.comment})).collect::<Vec<_>>(),
        "revoked_by": b.revoked_by,
    })
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
        "source": s.source.as_str(),
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

/// A change type as a request names it (`what`): absent or empty is
/// `feature`; anything else unknown is a 400 message.
fn change_type(given: Option<&str>, what: &str) -> Result<ChangeType, String> {
    match given {
        None | Some("") => Ok(ChangeType::Feature),
        Some(c) => {
            ChangeType::parse(c).ok_or_else(|| format!("`{what}` must be feature, hotfix or rollback, not {c:?}"))
        }
    }
}

/// The snapshot's board, unless no evaluation has run yet.
pub(super) fn evaluated(snap: &super::state::Snapshot) -> Option<&Board> {
    (snap.at_ms != 0).then_some(&*snap.freeze)
}

/// 503 before the first evaluation.
pub(super) fn not_evaluated() -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "no evaluation yet; ask again in a moment");
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    r
}

/// 503 while the fleet's figures cannot be read (`freeze.source: prometheus`).
pub(super) fn fleet_unavailable(why: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, why);
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("10"));
    r
}

/// The verdict route's answer while there is no freeze answer: 200, not
/// allowed, and why, so a caller that only reads `allowed` fails closed.
fn unavailable_verdict(board: &Board, service: &str, change: ChangeType, why: &str) -> Response {
    axum::Json(json!({
        "service": service,
        "source": board.source.as_str(),
        "change": change.as_str(),
        "allowed": false,
        "frozen": null,
        "status": "UNAVAILABLE",
        "error": why,
        "reasons": [],
        "evaluated_at": rfc3339(board.at_ms),
    }))
    .into_response()
}

/// The services a board knows, for messages about an unknown one.
pub(super) fn known_services(board: &Board) -> Vec<&str> {
    board.services.iter().map(|sv| sv.service.as_str()).collect()
}

/// 404 for a service no SLO names, with the ones it could have been.
pub(super) fn unknown_service(board: &Board, message: String) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": message, "known_services": known_services(board)})))
        .into_response()
}

async fn freeze(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
    always_200: bool,
) -> Response {
    if let Some(unknown) = q.keys().find(|k| !matches!(k.as_str(), "service" | "change")) {
        return error(StatusCode::BAD_REQUEST, &format!("unknown parameter `{unknown}`; use `service` and `change`"));
    }
    let change = match change_type(q.get("change").map(String::as_str), "change") {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let snap = s.snapshot();
    let Some(board) = evaluated(&snap) else {
        return not_evaluated();
    };
    if let Some(why) = &board.unavailable {
        return match q.get("service") {
            Some(name) if always_200 => unavailable_verdict(board, name, change, why),
            _ => fleet_unavailable(why),
        };
    }
    match q.get("service") {
        None => {
            let services: Vec<Value> = board.services.iter().map(|sv| answer(&s, sv, change, board.at_ms).1).collect();
            axum::Json(json!({
                "evaluated_at": rfc3339(board.at_ms),
                "source": board.source.as_str(),
                "change": change.as_str(),
                "services": services,
            }))
            .into_response()
        }
        Some(name) => match board.get(name) {
            Some(sv) => {
                let (allowed, body) = rendered(&s, &snap.freeze, sv, change);
                let status = if always_200 || allowed { StatusCode::OK } else { StatusCode::LOCKED };
                (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            None => unknown_service(board, format!("no SLO has the service {name:?}")),
        },
    }
}

/// One service's answers rendered once per board: a gate polled by many
/// pipelines gets the bytes of the first answer after each evaluation.
/// Only answers without active overrides or bypasses are kept (those change
/// between evaluations); at most every known service × change type.
#[derive(Debug, Default)]
pub struct RenderedAnswers {
    kept: std::sync::RwLock<Option<RenderedBoard>>,
}

type RenderedBoard = (Arc<Board>, HashMap<(String, ChangeType), (bool, axum::body::Bytes)>);

/// `(allowed, JSON body)` of one service's answer.
fn rendered(s: &ApiState, board: &Arc<Board>, sv: &ServiceFreeze, change: ChangeType) -> (bool, axum::body::Bytes) {
    let now = s.clock.now_ms();
    let plain = s.overrides.read().of(&sv.service, now).is_empty() && s.bypasses.read().of(&sv.service, now).is_empty();
    if plain {
        let kept = s.rendered.kept.read().unwrap_or_else(|e| e.into_inner());
        if let Some((b, answers)) = kept.as_ref()
            && Arc::ptr_eq(b, board)
            && let Some((allowed, bytes)) = answers.get(&(sv.service.clone(), change))
        {
            return (*allowed, bytes.clone());
        }
    }
    let (allowed, v) = answer(s, sv, change, board.at_ms);
    let bytes = axum::body::Bytes::from(serde_json::to_vec(&v).expect("answers serialize"));
    if plain {
        let mut kept = s.rendered.kept.write().unwrap_or_else(|e| e.into_inner());
        if !kept.as_ref().is_some_and(|(b, _)| Arc::ptr_eq(b, board)) {
            *kept = Some((board.clone(), HashMap::new()));
        }
        if let Some((_, answers)) = kept.as_mut() {
            answers.insert((sv.service.clone(), change), (allowed, bytes.clone()));
        }
    }
    (allowed, bytes)
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

/// A read (the access table gates it): open unless reads need a token.
async fn flagger(State(s): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
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
    let change = match change_type(p.metadata.get("change").map(String::as_str), "metadata.change") {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let snap = s.snapshot();
    let Some(board) = evaluated(&snap) else {
        return not_evaluated();
    };
    if let Some(why) = &board.unavailable {
        // Anything but 200 halts the canary: failing closed.
        return fleet_unavailable(why);
    }
    match board.get(&service) {
        Some(sv) => {
            let (allowed, mut v) = answer(&s, sv, change, board.at_ms);
            v["flagger"] = json!({"name": p.name, "namespace": p.namespace, "phase": p.phase});
            let status = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
            (status, axum::Json(v)).into_response()
        }
        None => unknown_service(
            board,
            format!("no SLO has the service {service:?} (from metadata.service, else the canary's name)"),
        ),
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
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
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
            Ok((b.service, action, reason_text(&b.reason)?, expiry(b.expires_in.as_deref())?))
        });
    let (service, action, reason, length) = match parsed {
        Ok(p) => p,
        Err(m) => return super::silences::refuse(&s, &caller, CREATE, None, StatusCode::BAD_REQUEST, &m).await,
    };
    let snap = s.snapshot();
    if snap.freeze.get(&service).is_none() {
        let m =
            format!("no SLO has the service {service:?}; known services: {}", known_services(&snap.freeze).join(", "));
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
        if let Some(r) =
            commit(&shared, crate::store::Kept::FreezeOverrides, &o.id, &o, &entry, "the override was not made")
        {
            return r;
        }
        shared.overrides.write().put(o.clone());
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
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let shared = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _turn = shared.overrides.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let found = shared.overrides.read().get(&id).cloned();
        let Some(mut o) = found.filter(|o| o.open(now)) else {
            super::auth::record(&shared, &caller.audit(now, END, Some(&id), "not_found"));
            return error(StatusCode::NOT_FOUND, &format!("no active override with id {id:?}"));
        };
        o.ends_at_ms = now;
        o.ended_by = Some(caller.name.clone());
        let entry = caller.audit(now, END, Some(&o.id), "ok");
        if let Some(r) = commit(&shared, crate::store::Kept::FreezeOverrides, &o.id, &o, &entry, "the override still holds") {
            return r;
        }
        shared.overrides.write().put(o.clone());
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
    drop(_turn);
    let _turn = state.bypasses.writes.lock().unwrap_or_else(|e| e.into_inner());
    let gone_bypasses = state.bypasses.write().prune(before);
    for (kind, what, gone) in [
        (crate::store::Kept::FreezeOverrides, "overrides", gone),
        (crate::store::Kept::FreezeBypasses, "bypasses", gone_bypasses),
    ] {
        match state.store.prune_kept(kind, before) {
            Ok(n) if n > 0 || gone > 0 => tracing::info!(what, pruned = n, "pruned ended freeze records"),
            Ok(_) => {}
            Err(e) => tracing::warn!(what, error = %e, "pruning ended freeze records failed"),
        }
    }
}

/// Store a changed record with the audit entry of the call (one
/// transaction), then put it in its book: under the book's write turn, so
/// changes do not race. A refusal of the store is the 503 to answer.
pub(super) fn commit<T: serde::Serialize>(
    state: &ApiState,
    kind: crate::store::Kept,
    id: &str,
    record: &T,
    entry: &crate::auth::AuditEntry,
    what: &str,
) -> Option<Response> {
    commit_with_push(state, kind, id, record, entry, what, &Default::default()).err().map(|r| *r)
}

/// [`commit`], and the status push records the change causes, in the same
/// transaction; what queueing them did.
pub(super) fn commit_with_push<T: serde::Serialize>(
    state: &ApiState,
    kind: crate::store::Kept,
    id: &str,
    record: &T,
    entry: &crate::auth::AuditEntry,
    what: &str,
    push: &crate::store::status_push::PushQueue,
) -> Result<crate::store::status_push::Queued, Box<Response>> {
    let json = serde_json::to_vec(record).expect("freeze records serialize");
    match state.store.put_kept_with_push(kind, id, &json, entry, push) {
        Ok(queued) => {
            super::auth::log(entry);
            Ok(queued)
        }
        Err(e) => {
            let message = format!("the state file cannot take it right now, so {what}: {e}");
            let mut failed = entry.clone();
            failed.outcome = format!("error: {message}");
            super::auth::record(state, &failed);
            Err(Box::new(super::unavailable(&message)))
        }
    }
}

const BYPASS_CREATE: &str = "freeze.bypass.create";
const BYPASS_APPROVE: &str = "freeze.bypass.approve";
const BYPASS_REVOKE: &str = "freeze.bypass.revoke";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BypassBody {
    service: String,
    #[serde(default)]
    change: Option<String>,
    reason: String,
    #[serde(default)]
    expires_in: Option<String>,
}

/// A reason: required, one line, bounded.
fn reason_text(reason: &str) -> Result<String, String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > MAX_REASON_CHARS || r.chars().any(char::is_control) {
        return Err(format!("`reason` must say why, on one line, in at most {MAX_REASON_CHARS} characters"));
    }
    Ok(r.to_string())
}

/// `expires_in`: default 4h, from 1m to 30d.
fn expiry(text: Option<&str>) -> Result<i64, String> {
    match text {
        None => Ok(DEFAULT_OVERRIDE_MS),
        Some(t) => match crate::yaml::values::parse_duration(t).and_then(|d| i64::try_from(d.as_millis()).ok()) {
            Some(ms) if (60_000..=MAX_OVERRIDE_MS).contains(&ms) => Ok(ms),
            _ => Err(format!("`expires_in` must be a duration from 1m to 30d such as 4h, not {t:?}")),
        },
    }
}

/// `POST /api/v1/freeze/bypasses` (role `deploy`): ask to deploy one change
/// type of a service despite a freeze.
async fn create_bypass(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let bytes = match super::silences::read_body(&headers, body).await {
        Ok(b) => b,
        Err((status, m)) => return super::silences::refuse(&s, &caller, BYPASS_CREATE, None, status, &m).await,
    };
    let parsed = serde_json::from_slice::<BypassBody>(&bytes)
        .map_err(|e| format!("the body must be {{\"service\", \"change\", \"reason\", \"expires_in\"}}: {e}"))
        .and_then(|b| {
            let change = change_type(b.change.as_deref(), "change")?;
            Ok((b.service, change, reason_text(&b.reason)?, expiry(b.expires_in.as_deref())?))
        });
    let (service, change, reason, length) = match parsed {
        Ok(p) => p,
        Err(m) => return super::silences::refuse(&s, &caller, BYPASS_CREATE, None, StatusCode::BAD_REQUEST, &m).await,
    };
    let snap = s.snapshot();
    let Some(needs) = snap.freeze.get(&service).map(|sv| sv.approvers) else {
        let m =
            format!("no SLO has the service {service:?}; known services: {}", known_services(&snap.freeze).join(", "));
        return super::silences::refuse(&s, &caller, BYPASS_CREATE, Some(&service), StatusCode::NOT_FOUND, &m).await;
    };
    let now = s.clock.now_ms();
    let b = Bypass {
        id: crate::secret::random_id(),
        service,
        change: change.as_str().to_string(),
        reason,
        requested_by: caller.name.clone(),
        created_at_ms: now,
        ends_at_ms: now + length,
        needs,
        approvals: Vec::new(),
        revoked_by: None,
    };
    let shared = s.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = shared.bypasses.writes.lock().unwrap_or_else(|e| e.into_inner());
        let entry = caller.audit(now, BYPASS_CREATE, Some(&b.id), &format!("ok: {} {}", b.change, b.service));
        if let Some(r) =
            commit(&shared, crate::store::Kept::FreezeBypasses, &b.id, &b, &entry, "the bypass was not made")
        {
            return r;
        }
        shared.bypasses.write().put(b.clone());
        tracing::warn!(service = %crate::untrusted::Escaped(&b.service), change = %b.change, by = %b.requested_by,
            reason = %crate::untrusted::Escaped(&b.reason), needs = b.needs, "freeze bypass requested");
        (StatusCode::CREATED, axum::Json(bypass_json(&b, now))).into_response()
    })
    .await
    .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /api/v1/freeze/bypasses/{id}/approve` (role `approve`): one
/// approval; the requester's own and a second one by the same approver are
/// refused with 409 and do not count.
async fn approve_bypass(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Body,
) -> Response {
    let bytes = match super::silences::read_body(&headers, body).await {
        Ok(b) => b,
        Err((status, m)) => return super::silences::refuse(&s, &caller, BYPASS_APPROVE, Some(&id), status, &m).await,
    };
    let comment = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<ApproveBody>(&bytes) {
            Ok(b) => b.comment.map(|c| c.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect()),
            Err(e) => {
                let m = format!("the body must be {{\"comment\"}} or empty: {e}");
                return super::silences::refuse(&s, &caller, BYPASS_APPROVE, Some(&id), StatusCode::BAD_REQUEST, &m)
                    .await;
            }
        }
    };
    let shared = s.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = shared.bypasses.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let Some(found) = shared.bypasses.read().get(&id).cloned() else {
            super::auth::record(&shared, &caller.audit(now, BYPASS_APPROVE, Some(&id), "not_found"));
            return error(StatusCode::NOT_FOUND, &format!("no bypass with id {id:?}"));
        };
        let b = match found.approved(&caller.name, now, comment) {
            Ok(b) => b,
            Err(e) => {
                let status = if e == ApproveError::Ended { StatusCode::GONE } else { StatusCode::CONFLICT };
                super::auth::record(&shared, &caller.audit(now, BYPASS_APPROVE, Some(&id), &format!("refused: {e}")));
                return error(status, &e.to_string());
            }
        };
        let entry =
            caller.audit(now, BYPASS_APPROVE, Some(&b.id), &format!("ok: {} of {}", b.approvals.len(), b.needs));
        if let Some(r) =
            commit(&shared, crate::store::Kept::FreezeBypasses, &b.id, &b, &entry, "the approval did not count")
        {
            return r;
        }
        shared.bypasses.write().put(b.clone());
        tracing::warn!(id = %b.id, service = %crate::untrusted::Escaped(&b.service), by = %caller.name,
            approvals = b.approvals.len(), needs = b.needs, "freeze bypass approved");
        axum::Json(bypass_json(&b, now)).into_response()
    })
    .await
    .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `DELETE /api/v1/freeze/bypasses/{id}`: revoke it (role `approve`, or
/// the requester).
async fn revoke_bypass(
    State(s): State<Arc<ApiState>>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let requester = s.bypasses.read().get(&id).map(|b| b.requested_by.clone());
    // The access table let in `approve` and `deploy`; a deploy token only for its own request.
    let approver = caller.role.is_some_and(|r| r.allows(crate::auth::Role::Approve));
    if !approver && requester.is_some() && requester.as_deref() != Some(caller.name.as_str()) {
        let m = "only the requester or a token with the role approve may revoke a bypass";
        let entry = caller.audit(s.clock.now_ms(), BYPASS_REVOKE, Some(&id), "forbidden");
        super::auth::record_async(s.clone(), entry).await;
        return error(StatusCode::FORBIDDEN, m);
    }
    let shared = s.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = shared.bypasses.writes.lock().unwrap_or_else(|e| e.into_inner());
        let now = shared.clock.now_ms();
        let Some(mut b) = shared.bypasses.read().get(&id).cloned().filter(|b| b.open(now)) else {
            super::auth::record(&shared, &caller.audit(now, BYPASS_REVOKE, Some(&id), "not_found"));
            return error(StatusCode::NOT_FOUND, &format!("no open bypass with id {id:?}"));
        };
        b.ends_at_ms = now;
        b.revoked_by = Some(caller.name.clone());
        let entry = caller.audit(now, BYPASS_REVOKE, Some(&b.id), "ok");
        if let Some(r) =
            commit(&shared, crate::store::Kept::FreezeBypasses, &b.id, &b, &entry, "the bypass still holds")
        {
            return r;
        }
        shared.bypasses.write().put(b.clone());
        axum::Json(bypass_json(&b, now)).into_response()
    })
    .await
    .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// `GET /api/v1/freeze/bypasses[?all=true]`: the open bypasses (with `all`,
/// also those that ended within 7 days), newest first.
async fn list_bypasses(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "`all` must be true or false"),
    };
    let now = s.clock.now_ms();
    let list: Vec<Value> = s.bypasses.read().list(now, !all).map(|b| bypass_json(b, now)).collect();
    axum::Json(json!({"bypasses": list})).into_response()
}

async fn get_bypass(State(s): State<Arc<ApiState>>, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    let now = s.clock.now_ms();
    match s.bypasses.read().get(&id) {
        Some(b) => axum::Json(bypass_json(b, now)).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no bypass with id {id:?}")),
    }
}
