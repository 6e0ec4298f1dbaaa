//! The API's side of [`crate::auth`]: refusals as HTTP answers, the audit
//! log written through the store, the per-token rate limit, and the
//! caller's address. Who may call what is [`super::access`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::state::ApiState;
pub use crate::auth::{ANONYMOUS, AuditEntry, Caller, MAX_ANONYMOUS_AUDIT_PER_MINUTE, Refused, Role, check, log};

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = super::error(self.status, &self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"slo-agent\""));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// Log an audited call and append it to the audit log. Blocking (a store
/// write): call it from `spawn_blocking` or use [`record_async`]. Refusals of
/// callers without a valid token are stored at most
/// [`MAX_ANONYMOUS_AUDIT_PER_MINUTE`] a minute; the rest are summed into one
/// entry (`audit.suppressed`) when the next minute's first one comes.
pub fn record(state: &ApiState, entry: &AuditEntry) {
    let mut entries = Vec::with_capacity(2);
    if entry.anonymous() {
        let a = state.auth.anonymous.lock().unwrap_or_else(|e| e.into_inner()).admit(entry.at_ms);
        if let Some((minute_ms, n)) = a.summary {
            let outcome = format!(
                "{n} more refused calls without a valid token in the minute from {} were not recorded one by one",
                crate::timefmt::rfc3339(minute_ms)
            );
            entries.push(AuditEntry::new(entry.at_ms, ANONYMOUS, None, "audit.suppressed", None, &outcome, None));
        }
        if a.first_suppressed {
            tracing::warn!(
                target: "audit",
                limit = MAX_ANONYMOUS_AUDIT_PER_MINUTE,
                "more refused calls without a valid token this minute than the audit log records one by one; counting the rest"
            );
        }
        if a.record {
            entries.push(entry.clone());
        }
    } else {
        entries.push(entry.clone());
    }
    for e in &entries {
        log(e);
        if let Err(err) = state.store.append_audit(e) {
            tracing::error!(target: "audit", error = %err, action = %e.action, "could not append to the audit log");
        }
    }
}

/// [`record`] off the async runtime.
pub async fn record_async(state: Arc<ApiState>, entry: AuditEntry) {
    let _ = tokio::task::spawn_blocking(move || record(&state, &entry)).await;
}

/// A recognised token over its rate limit is refused with 429.
pub(super) fn limited(state: &ApiState, caller: (String, Option<Role>)) -> Result<(String, Option<Role>), Refused> {
    match caller.1 {
        Some(role) if !state.auth.admit(&caller.0, std::time::Instant::now()) => Err(Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            outcome: "rate_limited",
            message: format!(
                "the token `{}` is over its {} requests a second; retry shortly",
                caller.0, state.auth.config.rate_limit
            ),
            actor: Some((caller.0, role)),
        }),
        _ => Ok(caller),
    }
}

/// The TCP peer of a request, when the server was started with connect
/// info (`runtime::serving` is; tests that mount the router may not be).
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for RemoteAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<RemoteAddr, Self::Rejection> {
        Ok(RemoteAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ApiConfig, ApiToken};
    use crate::secret::Secret;
    use axum::http::HeaderMap;

    fn config(read_requires_token: bool) -> ApiConfig {
        let token = |name: &str, role, value: &str| ApiToken {
            name: name.into(),
            roles: vec![role],
            token: crate::auth::TokenValue::Plain(Secret::new(value.into())),
        };
        ApiConfig {
            read_requires_token,
            tokens: vec![
                token("viewer", Role::Read, "read-token-0123456789"),
                token("oncall-bot", Role::Silence, "silence-token-0123456789"),
                token("ops", Role::Admin, "admin-token-0123456789"),
            ],
            rate_limit: crate::auth::DEFAULT_RATE_LIMIT,
            tls: None,
        }
    }

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn a_401_asks_for_a_bearer_token_and_no_message_names_a_value() {
        let cfg = config(false);
        let r = check(&cfg, &headers(Some("Bearer read-token-0123456789")), Role::Admin).unwrap_err();
        assert_eq!(r.message, "the token `viewer` has the role read; this needs the role admin");
        let resp = check(&cfg, &headers(Some("Bearer wrong")), Role::Admin).unwrap_err().into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"slo-agent\"");
        assert!(!format!("{cfg:?}").contains("token-0123456789"));
    }
}
