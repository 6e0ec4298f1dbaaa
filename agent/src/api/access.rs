//! Who may call what: the route × role table, and the one middleware that
//! enforces it for every request before any handler runs.
//!
//! Every route of the API is in [`ROUTES`] with its [`Access`]. The gate
//! finds the request's entry (a `{…}` segment matches any one segment),
//! checks the bearer token and the per-token rate limit, audits refusals of
//! changes, and hands the handler the [`Caller`] as a request extension.
//! A path no entry matches is treated as a read when it is a `GET`/`HEAD`
//! (the 404 of a closed API still needs a token) and as needing `admin`
//! otherwise, so a route added without an entry fails closed; a unit test
//! checks that every route the routers register is in the table.
//!
//! `docs/api.md` shows the same table.

use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::auth::{self, ANONYMOUS, AuditEntry, Caller, Refused, Role};
use super::state::ApiState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, always (the probes).
    Open,
    /// A token of any role when `api.read_requires_token` is set; anyone otherwise.
    Read,
    /// A token holding one of `roles` (`admin` holds them all). `audit`:
    /// the action a refusal is audited as (changes); `None` for reads.
    Roles { roles: &'static [Role], audit: Option<&'static str> },
    /// Not API tokens: the route checks its own credential (a push
    /// source's key, GitHub's webhook signature).
    OwnCredential,
}

/// One route: method, path pattern, access.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> Route {
    Route { method, path, access }
}

const fn change(roles: &'static [Role], action: &'static str) -> Access {
    Access::Roles { roles, audit: Some(action) }
}

use Access::{OwnCredential, Read};

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Access::Open),
    route("GET", "/readyz", Access::Open),
    route("GET", "/metrics", Read),
    // The public status page: never a token, whatever `read_requires_token` says.
    route("GET", "/status", Access::Open),
    route("GET", "/status.json", Access::Open),
    route("GET", "/api/v1/slos", Read),
    route("GET", "/api/v1/slos/{name}", Read),
    route("GET", "/api/v1/alerts", Read),
    route("GET", "/api/v1/notifications", Read),
    route("GET", "/api/v1/freeze", Read),
    route("GET", "/api/v1/freeze/verdict", Read),
    route("POST", "/api/v1/freeze/flagger", Read),
    route("GET", "/api/v1/freeze/overrides", Read),
    route("POST", "/api/v1/freeze/overrides", change(&[Role::Approve], "freeze.override.create")),
    route("GET", "/api/v1/freeze/overrides/{id}", Read),
    route("DELETE", "/api/v1/freeze/overrides/{id}", change(&[Role::Approve], "freeze.override.end")),
    route("GET", "/api/v1/freeze/bypasses", Read),
    route("POST", "/api/v1/freeze/bypasses", change(&[Role::Deploy], "freeze.bypass.create")),
    route("GET", "/api/v1/freeze/bypasses/{id}", Read),
    // The requester (role deploy) may revoke its own; the handler checks whose it is.
    route("DELETE", "/api/v1/freeze/bypasses/{id}", change(&[Role::Approve, Role::Deploy], "freeze.bypass.revoke")),
    route("POST", "/api/v1/freeze/bypasses/{id}/approve", change(&[Role::Approve], "freeze.bypass.approve")),
    route("GET", "/api/v1/deploys", Read),
    route("POST", "/api/v1/deploys", change(&[Role::Deploy], "deploy.record")),
    route("GET", "/api/v1/deploys/{id}", Read),
    route("GET", "/api/v1/annotations", Read),
    route("GET", "/api/v1/hops", Read),
    route("GET", "/api/v1/crawlers", Read),
    route("GET", "/api/v1/anomalies", Read),
    route("GET", "/api/v1/forecasts", Read),
    route("GET", "/api/v1/outage", Read),
    route("GET", "/api/v1/journeys", Read),
    route("GET", "/api/v1/journeys/{name}", Read),
    // The status page with its internals (crawler figures, SLO names): a read, never public.
    route("GET", "/api/v1/status", Read),
    route("GET", "/api/v1/timeline", Read),
    route("GET", "/api/v1/silences", Read),
    route("POST", "/api/v1/silences", change(&[Role::Silence], "silence.create")),
    route("GET", "/api/v1/silences/{id}", Read),
    route("DELETE", "/api/v1/silences/{id}", change(&[Role::Silence], "silence.expire")),
    route("GET", "/api/v1/incidents", Read),
    route("POST", "/api/v1/incidents", change(&[Role::Incident], "incident.open")),
    route("GET", "/api/v1/incidents/{id}", Read),
    route("GET", "/api/v1/incidents/{id}/timeline", Read),
    route("POST", "/api/v1/incidents/{id}/updates", change(&[Role::Incident], "incident.update")),
    route("GET", "/api/v1/audit", Access::Roles { roles: &[Role::Admin], audit: None }),
    route("GET", "/api/v1/audit/verify", Access::Roles { roles: &[Role::Admin], audit: None }),
    route("GET", "/api/v1/backup", Access::Roles { roles: &[Role::Admin], audit: Some("state.backup") }),
    route("POST", "/api/v1/github/webhook", OwnCredential),
    route("POST", "/ingest/firehose/{source}", OwnCredential),
    route("POST", "/ingest/lambda-telemetry/{source}", OwnCredential),
    route("POST", "/ingest/otlp/{source}/v1/traces", OwnCredential),
    route("POST", "/v1/traces", OwnCredential),
];

/// What a path no route matches needs.
const UNKNOWN_CHANGE: Access = Access::Roles { roles: &[Role::Admin], audit: None };

/// Whether `path` fits `pattern`; the value of its first `{…}` segment.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Option<&'p str>> {
    let mut target = None;
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(target),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                target = target.or(Some(g));
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// The access a request needs, and its target (the first `{…}` segment).
pub fn access(method: &Method, path: &str) -> (Access, Option<String>) {
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    for r in ROUTES.iter().filter(|r| r.method == method) {
        if let Some(target) = matches(r.path, path) {
            return (r.access, target.map(str::to_string));
        }
    }
    if method == "GET" { (Read, None) } else { (UNKNOWN_CHANGE, None) }
}

/// The token's caller for the first of `roles` it holds.
fn check_any(
    state: &ApiState,
    headers: &axum::http::HeaderMap,
    roles: &[Role],
) -> Result<(String, Option<Role>), Refused> {
    let mut refusal = None;
    for &role in roles {
        match auth::check(&state.auth.config, headers, role) {
            Ok(c) => return Ok(c),
            // Unknown or missing tokens are refused the same for every role.
            Err(r) if r.status == axum::http::StatusCode::UNAUTHORIZED => return Err(r),
            Err(r) => refusal = refusal.or(Some(r)),
        }
    }
    Err(refusal.expect("every Roles entry names a role"))
}

/// The middleware: enforce [`ROUTES`] for every request.
pub async fn gate(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (needs, target) = access(req.method(), req.uri().path());
    let remote = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let (roles, audit) = match needs {
        Access::Open | Access::OwnCredential => return next.run(req).await,
        Read if !state.auth.config.read_requires_token => return next.run(req).await,
        Read => (&[Role::Read][..], None),
        Access::Roles { roles, audit } => (roles, audit),
    };
    let checked = check_any(&state, req.headers(), roles).and_then(|c| auth::limited(&state, c));
    match checked {
        Ok((name, role)) => {
            req.extensions_mut().insert(Caller { name, role, remote });
            next.run(req).await
        }
        Err(r) => {
            if let Some(action) = audit {
                let (actor, role) = match &r.actor {
                    Some((name, role)) => (name.as_str(), Some(*role)),
                    None => (ANONYMOUS, None),
                };
                let at = state.clock.now_ms();
                let entry = AuditEntry::new(at, actor, role, action, target.as_deref(), r.outcome, remote);
                auth::record_async(state.clone(), entry).await;
            }
            r.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_routes_and_targets() {
        let get = Method::GET;
        assert_eq!(access(&get, "/api/v1/freeze"), (Read, None));
        assert_eq!(access(&Method::HEAD, "/healthz"), (Access::Open, None));
        let (a, t) = access(&Method::DELETE, "/api/v1/freeze/bypasses/abc");
        assert_eq!(a, change(&[Role::Approve, Role::Deploy], "freeze.bypass.revoke"));
        assert_eq!(t.as_deref(), Some("abc"));
        let (a, t) = access(&Method::POST, "/api/v1/freeze/bypasses/abc/approve");
        assert_eq!((a, t.as_deref()), (change(&[Role::Approve], "freeze.bypass.approve"), Some("abc")));
        assert_eq!(access(&Method::POST, "/ingest/otlp/edge/v1/traces").0, OwnCredential);
        // Unknown: reads stay reads, anything else needs admin.
        assert_eq!(access(&get, "/nope").0, Read);
        assert_eq!(access(&Method::POST, "/api/v1/slos").0, UNKNOWN_CHANGE);
        assert_eq!(access(&Method::PUT, "/api/v1/silences/x").0, UNKNOWN_CHANGE);
        // An empty segment is not an id.
        assert_eq!(access(&Method::DELETE, "/api/v1/silences/").0, UNKNOWN_CHANGE);
    }

    /// Every `.route(…)` the API's routers register is in the table with
    /// each of its methods, and the table names nothing they do not.
    #[test]
    fn the_table_lists_exactly_the_routes_the_routers_register() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("silences.rs"),
            include_str!("freeze.rs"),
            include_str!("deploys.rs"),
            include_str!("audit.rs"),
            include_str!("backup.rs"),
            include_str!("github.rs"),
            include_str!("hops.rs"),
            include_str!("crawlers.rs"),
            include_str!("signals.rs"),
            include_str!("journeys.rs"),
            include_str!("timeline.rs"),
            include_str!("outage.rs"),
            include_str!("incidents.rs"),
            include_str!("status.rs"),
        ];
        let mut registered = std::collections::BTreeSet::new();
        for src in sources {
            let mut rest = src;
            while let Some(i) = rest.find(".route(\"") {
                rest = &rest[i + 8..];
                let path = &rest[..rest.find('"').unwrap()];
                let call = &rest[..rest.find("))").map_or(rest.len(), |e| e + 2)];
                let handlers = &call[path.len()..];
                for (needle, method) in [("get(", "GET"), ("post(", "POST"), ("delete(", "DELETE"), ("put(", "PUT")] {
                    if handlers.contains(needle) {
                        registered.insert((method, path.to_string()));
                    }
                }
            }
        }
        let table: std::collections::BTreeSet<(&str, String)> =
            ROUTES.iter().map(|r| (r.method, r.path.to_string())).collect();
        assert_eq!(registered, table);
    }
}
