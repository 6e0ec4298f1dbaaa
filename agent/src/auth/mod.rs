//! Who may call what: bearer tokens with roles, and the audit log of every
//! mutating call, accepted or refused.
//!
//! A token has a name (shown in logs and the audit log) and a role. Roles
//! nest: `admin` can do what `silence` can, which can do what `read` can.
//! A handler asks [`check`] for the role it needs (through `api::auth`),
//! and gets the caller or the refusal to answer with: 401 (and `www-authenticate: Bearer`) for a missing or
//! unknown token, 403 for a known token without the role, and 403 for every
//! protected endpoint while no token is configured at all.
//!
//! **Architecture invariant:** a token value is compared in constant time
//! against every configured token, never logged and never stored; only its
//! name is.

pub mod config;

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Shortest token value accepted in the config.
pub const MIN_TOKEN_BYTES: usize = 16;

/// What a token may do. Every role may read; `admin` may do everything;
/// `silence`, `deploy` and `approve` each add their own endpoints. A token
/// may hold several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// GET endpoints, when `read_requires_token` is set.
    Read,
    /// Create and expire silences.
    Silence,
    /// Everything, the audit log included.
    Admin,
    /// Record deploy events, request bypasses, check the freeze.
    Deploy,
    /// Approve bypasses; freeze and unfreeze services by hand.
    Approve,
    /// Open incidents and post their updates.
    Incident,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Silence => "silence",
            Role::Admin => "admin",
            Role::Deploy => "deploy",
            Role::Approve => "approve",
            Role::Incident => "incident",
        }
    }

    pub const ALL: [Role; 6] = [Role::Read, Role::Silence, Role::Admin, Role::Deploy, Role::Approve, Role::Incident];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a caller with this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || needed == Role::Read || self == needed
    }
}

/// Requests per second each token may make by default (bursts of twice
/// that): enough for a fleet of CI runners sharing one token.
pub const DEFAULT_RATE_LIMIT: u32 = 100;

/// `api:` in agent.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// GET endpoints need a token (any role) too. Off by default so that
    /// Prometheus can scrape `/metrics`.
    pub read_requires_token: bool,
    pub tokens: Vec<ApiToken>,
    /// Requests per second per token (`rate_limit`), bursts of twice that.
    pub rate_limit: u32,
    /// `tls`: serve the API over TLS only; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { read_requires_token: false, tokens: Vec::new(), rate_limit: DEFAULT_RATE_LIMIT, tls: None }
    }
}

/// How often the TLS files are read again by default (`api.tls.reload_interval`).
pub const DEFAULT_TLS_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// `api.tls`: the listener speaks TLS (1.2 and 1.3) and nothing else. The
/// files are read at start (a problem stops the start) and again every
/// `reload_interval`; a changed pair serves new connections.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM: the serving certificate first, then the rest of its chain.
    pub cert_file: std::path::PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
    /// PEM: the CAs client certificates must chain to. When set, every
    /// client must present a certificate (client-certificate authentication).
    pub client_ca_file: Option<std::path::PathBuf>,
    /// How often the files are read again to look for a change.
    pub reload_interval: std::time::Duration,
}

/// One API token.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    /// Who holds it, as logs and the audit log name the caller.
    pub name: String,
    /// One or more (`role:` or `roles: [...]`).
    pub roles: Vec<Role>,
    pub token: TokenValue,
}

/// What a configured token is checked against: the token itself, or only
/// its SHA-256 (`token_sha256:`), so a config map holds nothing a caller
/// could present.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenValue {
    Plain(Secret),
    Sha256([u8; 32]),
}

impl TokenValue {
    /// Whether a presented token is this one, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::Digest as _;
        match self {
            TokenValue::Plain(s) => s.matches(presented),
            TokenValue::Sha256(h) => crate::secret::constant_time_eq(h, &sha2::Sha256::digest(presented)),
        }
    }

    /// The SHA-256 of the token, to find two entries for one token.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest as _;
        match self {
            TokenValue::Plain(s) => sha2::Sha256::digest(s.expose().as_bytes()).into(),
            TokenValue::Sha256(h) => *h,
        }
    }
}

impl std::fmt::Debug for TokenValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenValue::Plain(_) => f.write_str("TokenValue(***)"),
            TokenValue::Sha256(_) => f.write_str("TokenValue(sha256)"),
        }
    }
}

/// The API's access rules, and the limiter that keeps callers without a
/// valid token from filling the audit log.
#[derive(Debug, Default)]
pub struct ApiAuth {
    pub config: ApiConfig,
    pub anonymous: Mutex<AnonymousRefusals>,
    /// Per token name: the requests it may still make now (a token bucket).
    buckets: Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl ApiAuth {
    pub fn new(config: ApiConfig) -> ApiAuth {
        ApiAuth { config, anonymous: Mutex::default(), buckets: Mutex::default() }
    }

    /// Whether the token `name` may make one more request now: a bucket of
    /// twice `rate_limit` requests, refilled at `rate_limit` a second.
    pub fn admit(&self, name: &str, now: std::time::Instant) -> bool {
        let rate = f64::from(self.config.rate_limit.max(1));
        let burst = 2.0 * rate;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (left, at) = b.entry(name.to_string()).or_insert((burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * rate;
        *left = (*left + refill).min(burst);
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Refusals of callers without a valid token stored per minute; more are
/// counted and stored as one summary entry.
pub const MAX_ANONYMOUS_AUDIT_PER_MINUTE: u64 = 60;

#[derive(Debug, Default)]
pub struct AnonymousRefusals {
    minute: i64,
    recorded: u64,
    suppressed: u64,
}

/// What to do with one refusal of a caller without a valid token.
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    /// Store this one.
    pub record: bool,
    /// Refusals of an earlier minute that were only counted: (minute start
    /// ms, how many), to store as one summary entry.
    pub summary: Option<(i64, u64)>,
    /// The first one of its minute over the limit (say so once in the log).
    pub first_suppressed: bool,
}

impl AnonymousRefusals {
    pub fn admit(&mut self, at_ms: i64) -> Admission {
        let minute = at_ms.div_euclid(60_000);
        let mut summary = None;
        if self.minute != minute {
            if self.suppressed > 0 {
                summary = Some((self.minute * 60_000, self.suppressed));
            }
            *self = AnonymousRefusals { minute, recorded: 0, suppressed: 0 };
        }
        let record = self.recorded < MAX_ANONYMOUS_AUDIT_PER_MINUTE;
        if record {
            self.recorded += 1;
        } else {
            self.suppressed += 1;
        }
        Admission { record, summary, first_suppressed: self.suppressed == 1 && !record }
    }
}

/// Who is calling, once authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `anonymous` on an open read.
    pub name: String,
    pub role: Option<Role>,
    pub remote: Option<SocketAddr>,
}

pub const ANONYMOUS: &str = "anonymous";

impl Caller {
    /// The audit entry of a call this caller made.
    pub fn audit(&self, at_ms: i64, action: &str, target: Option<&str>, outcome: &str) -> AuditEntry {
        AuditEntry::new(at_ms, &self.name, self.role, action, target, outcome, self.remote)
    }
}

/// One mutating API call, accepted or refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339.
    pub at: String,
    pub at_ms: i64,
    /// The token's name, or `anonymous` when none was recognised.
    pub actor: String,
    /// The token's role; none for `anonymous`.
    pub role: Option<Role>,
    /// What was asked: `silence.create`, `silence.expire`, …
    pub action: String,
    /// What it was asked of (a silence id), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok`, `unauthorized`, `forbidden`, `not_found`, `invalid: <why>`,
    /// `error: <why>`.
    pub outcome: String,
    /// The peer's address (the TCP connection's; a proxy in front shows
    /// as itself).
    pub remote: Option<String>,
}

/// Longest target and outcome kept in an entry: both can come from the
/// request (a path segment, a validation message quoting the body).
const MAX_AUDIT_FIELD: usize = 300;

impl AuditEntry {
    pub fn new(
        at_ms: i64,
        actor: &str,
        role: Option<Role>,
        action: &str,
        target: Option<&str>,
        outcome: &str,
        remote: Option<SocketAddr>,
    ) -> AuditEntry {
        AuditEntry {
            at: crate::timefmt::rfc3339(at_ms),
            at_ms,
            actor: actor.to_string(),
            role,
            action: action.to_string(),
            target: target.map(|t| cut(t, MAX_AUDIT_FIELD)),
            outcome: cut(outcome, MAX_AUDIT_FIELD),
            remote: remote.map(|r| r.to_string()),
        }
    }

    /// Whether the caller was not recognised (no token, an unknown one).
    /// The agent's own entries (spec reloads) have no role either, but are
    /// not anonymous.
    pub fn anonymous(&self) -> bool {
        self.role.is_none() && self.actor == ANONYMOUS
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The one log line of an audited call (target `audit`, level info).
pub fn log(e: &AuditEntry) {
    tracing::info!(
        target: "audit",
        actor = %e.actor,
        role = %e.role.map_or("none", Role::as_str),
        action = %e.action,
        target_id = %e.target.as_deref().unwrap_or("-"),
        outcome = %e.outcome,
        remote = %e.remote.as_deref().unwrap_or("-"),
        "api call"
    );
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    /// The audit outcome: `unauthorized`, `forbidden` or `rate_limited`.
    pub outcome: &'static str,
    /// The token's name when it was recognised (a 403 for the role).
    pub actor: Option<(String, Role)>,
    pub message: String,
}

/// The `Authorization: Bearer` token a request presented, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii())
}

/// Check the caller's `Authorization: Bearer` token for the role `needed`.
/// Open reads (`needed` is read and `read_requires_token` is off) pass
/// without looking at the token.
pub fn check(auth: &ApiConfig, headers: &HeaderMap, needed: Role) -> Result<(String, Option<Role>), Refused> {
    if needed == Role::Read && !auth.read_requires_token {
        return Ok((ANONYMOUS.to_string(), None));
    }
    if auth.tokens.is_empty() {
        let what = if needed == Role::Admin { "endpoints that need the admin role" } else { "mutating endpoints" };
        return Err(Refused {
            status: StatusCode::FORBIDDEN,
            outcome: "forbidden",
            actor: None,
            message: format!("no API tokens are configured; {what} are disabled (see docs/api.md)"),
        });
    }
    let unauthorized = |message: &str| Refused {
        status: StatusCode::UNAUTHORIZED,
        outcome: "unauthorized",
        actor: None,
        message: message.to_string(),
    };
    let Some(presented) = bearer(headers) else {
        return Err(unauthorized("this endpoint needs `Authorization: Bearer <token>`"));
    };
    // Every token is compared, whichever matches: the time taken says
    // nothing about which token (or which prefix) is right.
    let mut found: Option<&ApiToken> = None;
    for t in &auth.tokens {
        if t.token.matches(presented) {
            found = Some(t);
        }
    }
    let Some(t) = found else {
        return Err(unauthorized("unknown API token"));
    };
    // The role that grants it is the one the audit log records.
    let Some(granted) = t.roles.iter().copied().find(|r| r.allows(needed)) else {
        let held: Vec<&str> = t.roles.iter().map(|r| r.as_str()).collect();
        return Err(Refused {
            status: StatusCode::FORBIDDEN,
            outcome: "forbidden",
            actor: Some((t.name.clone(), t.roles.first().copied().unwrap_or(Role::Read))),
            message: format!(
                "the token `{}` has the role {}; this needs the role {}",
                t.name,
                held.join(", "),
                needed.as_str()
            ),
        });
    };
    Ok((t.name.clone(), Some(granted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token may make `rate_limit` requests a second, in bursts of twice
    /// that; other tokens have their own buckets.
    #[test]
    fn each_token_has_its_own_rate_limit() {
        let auth = ApiAuth::new(ApiConfig { rate_limit: 50, ..Default::default() });
        let t0 = std::time::Instant::now();
        assert_eq!((0..100).filter(|_| auth.admit("ci", t0)).count(), 100, "a burst of 2 × 50");
        assert!(!auth.admit("ci", t0));
        assert!(auth.admit("other", t0), "another token is not held back");
        let later = t0 + std::time::Duration::from_millis(100);
        assert_eq!((0..10).filter(|_| auth.admit("ci", later)).count(), 5, "refilled at 50 a second");
    }

    /// Every role reads; admin does everything; the others only their own.
    #[test]
    fn what_each_role_allows() {
        let table: Vec<String> = Role::ALL
            .iter()
            .map(|r| {
                let ok: Vec<&str> = Role::ALL.iter().filter(|n| r.allows(**n)).map(|n| n.as_str()).collect();
                format!("{}: {}", r.as_str(), ok.join(" "))
            })
            .collect();
        assert_eq!(
            table,
            [
                "read: read",
                "silence: read silence",
                "admin: read silence admin deploy approve incident",
                "deploy: read deploy",
                "approve: read approve",
                "incident: read incident",
            ]
        );
    }
    use axum::http::HeaderValue;

    fn config(read_requires_token: bool) -> ApiConfig {
        let token = |name: &str, role, value: &str| ApiToken {
            name: name.into(),
            roles: vec![role],
            token: TokenValue::Plain(Secret::new(value.into())),
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

    /// (status or "ok", caller) for each case.
    fn outcome(cfg: &ApiConfig, auth: Option<&str>, needed: Role) -> String {
        match check(cfg, &headers(auth), needed) {
            Ok((name, role)) => format!("ok {name} {}", role.map_or("-", Role::as_str)),
            Err(r) => format!("{} {}", r.status.as_u16(), r.outcome),
        }
    }

    #[test]
    fn roles_nest_and_each_refusal_has_its_status() {
        let cfg = config(false);
        let cases = [
            (None, Role::Read, "ok anonymous -"),
            (Some("Bearer nonsense"), Role::Read, "ok anonymous -"),
            (None, Role::Silence, "401 unauthorized"),
            (Some("Basic b25jYWxs"), Role::Silence, "401 unauthorized"),
            (Some("Bearer silence-token-012345678"), Role::Silence, "401 unauthorized"),
            (Some("Bearer read-token-0123456789"), Role::Silence, "403 forbidden"),
            (Some("Bearer silence-token-0123456789"), Role::Silence, "ok oncall-bot silence"),
            (Some("bearer   silence-token-0123456789 "), Role::Silence, "ok oncall-bot silence"),
            (Some("Bearer silence-token-0123456789"), Role::Admin, "403 forbidden"),
            (Some("Bearer admin-token-0123456789"), Role::Silence, "ok ops admin"),
            (Some("Bearer admin-token-0123456789"), Role::Admin, "ok ops admin"),
        ];
        for (auth, needed, want) in cases {
            assert_eq!(outcome(&cfg, auth, needed), want, "{auth:?} {needed:?}");
        }
        let cfg = config(true);
        assert_eq!(outcome(&cfg, None, Role::Read), "401 unauthorized");
        assert_eq!(outcome(&cfg, Some("Bearer read-token-0123456789"), Role::Read), "ok viewer read");
    }

    #[test]
    fn without_tokens_protected_endpoints_are_off() {
        let r = check(&ApiConfig::default(), &headers(Some("Bearer anything")), Role::Silence).unwrap_err();
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.message, "no API tokens are configured; mutating endpoints are disabled (see docs/api.md)");
        assert!(check(&ApiConfig::default(), &headers(None), Role::Read).is_ok());
    }

    #[test]
    fn refusals_without_a_valid_token_are_stored_at_a_bounded_rate() {
        let mut a = AnonymousRefusals::default();
        let t0 = 1_800_000_000_000; // a whole minute
        for i in 0..MAX_ANONYMOUS_AUDIT_PER_MINUTE {
            assert_eq!(a.admit(t0 + i as i64), Admission { record: true, summary: None, first_suppressed: false });
        }
        assert_eq!(a.admit(t0 + 100), Admission { record: false, summary: None, first_suppressed: true });
        assert_eq!(a.admit(t0 + 200), Admission { record: false, summary: None, first_suppressed: false });
        let next = a.admit(t0 + 60_000);
        assert_eq!(next, Admission { record: true, summary: Some((t0, 2)), first_suppressed: false });
        assert_eq!(a.admit(t0 + 180_000).summary, None);
    }

    #[test]
    fn audit_fields_from_the_request_are_bounded() {
        let long = "é".repeat(400);
        let e = AuditEntry::new(0, "a", None, "silence.expire", Some(&long), &long, None);
        assert!(e.target.as_ref().unwrap().len() <= MAX_AUDIT_FIELD + "…".len());
        assert!(e.outcome.ends_with('…'));
        assert_eq!(e.at, "1970-01-01T00:00:00Z");
    }
}
