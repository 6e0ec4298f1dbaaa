//! `/api/v1/audit` (the newest entries) and `/api/v1/audit/verify` (check
//! the hash chain of the live state file): both need `admin`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error;
use super::state::ApiState;

/// Audit entries returned at most by one `GET /api/v1/audit`.
const MAX_AUDIT_LIMIT: usize = 1000;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/audit", get(audit_log)).route("/api/v1/audit/verify", get(verify))
}

/// `GET /api/v1/audit?limit=N`: the newest entries first (default 100).
async fn audit_log(State(s): State<Arc<ApiState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match q.get("limit").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if n <= MAX_AUDIT_LIMIT => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("`limit` must be a whole number from 0 to {MAX_AUDIT_LIMIT}"),
            );
        }
    };
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.audit(limit)).await {
        Ok(Ok(entries)) => axum::Json(serde_json::json!({"entries": entries})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("reading the audit log: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /api/v1/audit/verify`: `{"intact", "entries", "first_broken", …}`
/// (see [`crate::store::audit::Verdict`]); 200 whether intact or not.
async fn verify(State(s): State<Arc<ApiState>>) -> Response {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.verify_audit()).await {
        Ok(Ok(verdict)) => {
            if !verdict.intact {
                tracing::error!(target: "audit", first_broken = ?verdict.first_broken, "the audit chain is broken");
            }
            axum::Json(verdict).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("reading the audit log: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
