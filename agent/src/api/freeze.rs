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
use crate::freeze::{Board, Reason, ServiceFreeze};
use crate::spec::policy::ChangeType;
use crate::timefmt::rfc3339;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/freeze", get(|s, q| freeze(s, q, false)))
        .route("/api/v1/freeze/verdict", get(|s, q| freeze(s, q, true)))
        .route("/api/v1/freeze/flagger", axum::routing::post(flagger))
}

/// The answer for one service and change type.
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
            let services: Vec<Value> = board.services.iter().map(|sv| decision(sv, change, board.at_ms)).collect();
            axum::Json(json!({"evaluated_at": rfc3339(board.at_ms), "change": change.as_str(), "services": services}))
                .into_response()
        }
        Some(name) => match board.get(name) {
            Some(sv) => {
                let status = if always_200 || sv.allows(change) { StatusCode::OK } else { StatusCode::LOCKED };
                (status, axum::Json(decision(sv, change, board.at_ms))).into_response()
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
            let mut v = decision(sv, change, board.at_ms);
            v["flagger"] = json!({"name": p.name, "namespace": p.namespace, "phase": p.phase});
            let status = if sv.allows(change) { StatusCode::OK } else { StatusCode::FORBIDDEN };
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
