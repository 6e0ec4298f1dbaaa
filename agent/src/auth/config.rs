//! `api:`: who may call the HTTP API's protected endpoints (`docs/api.md`).
//!
//! ```yaml
//! api:
//!   read_requires_token: false       # GET endpoints open by default (Prometheus scrapes /metrics)
//!   tokens:
//!     - name: oncall-bot
//!       role: silence                # read | silence | deploy | approve | admin
//!     - name: release-bot
//!       roles: [deploy, approve]     # several roles; every role may read, admin may do everything
//!       token_file: /etc/slo-agent/tokens/oncall   # or token_env: NAME
//!     - name: deploy-pipeline
//!       role: read
//!       token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```
//!
//! TLS (`docs/api.md`, "TLS"):
//!
//! ```yaml
//! api:
//!   tls:
//!     cert_file: /etc/slo-agent/tls/tls.crt      # PEM, the chain; relative to this file
//!     key_file: /etc/slo-agent/tls/tls.key       # PEM
//!     client_ca_file: /etc/slo-agent/tls/ca.crt  # optional: every client needs a certificate from it
//!     reload_interval: 30s                       # how often the files are read again
//! ```
//!
//! `token_sha256` holds only the SHA-256 of the token (hex), so a config map
//! or a repository holds nothing a caller could present.

use std::path::Path;
use std::time::Duration;

use crate::auth::{ApiConfig, ApiToken, DEFAULT_TLS_RELOAD_INTERVAL, MIN_TOKEN_BYTES, Role, TlsConfig, TokenValue};
use crate::secret::Secret;
use crate::yaml::Node;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::{parse_duration, resolve};

pub fn read_api(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ApiConfig> {
    let f = cx.map(node, "api", &["read_requires_token", "tokens", "rate_limit", "tls"])?;
    let tls = match f.get("tls") {
        None => Some(None),
        Some(n) => read_tls(cx, n, base).map(Some),
    };
    let rate_limit = match f.get("rate_limit") {
        None => Some(crate::auth::DEFAULT_RATE_LIMIT),
        Some(n) => cx.number(n, "rate_limit").and_then(|v| {
            if v.fract() == 0.0 && (1.0..=100_000.0).contains(&v) {
                Some(v as u32)
            } else {
                cx.err(
                    n.pos,
                    format!("`api.rate_limit` must be whole requests per second from 1 to 100000, found {v}"),
                );
                None
            }
        }),
    };
    let read_requires_token = match f.get("read_requires_token") {
        None => Some(false),
        Some(n) => cx.boolean(n, "read_requires_token"),
    };
    let mut tokens: Vec<ApiToken> = Vec::new();
    let mut ok = true;
    if let Some(n) = f.get("tokens")
        && let Some(items) = cx.list(n, "tokens")
    {
        let mut lines: Vec<usize> = Vec::new();
        for item in items {
            let Some(t) = read_token_entry(cx, item, base) else {
                ok = false;
                continue;
            };
            if let Some(i) = tokens.iter().position(|o| o.name == t.name) {
                cx.err(item.pos, format!("duplicate API token name `{}` (first at line {})", t.name, lines[i]));
                ok = false;
            } else if let Some(i) = tokens.iter().position(|o| o.token.digest() == t.token.digest()) {
                // A caller must be one name in the audit log, never two.
                cx.err(
                    item.pos,
                    format!("API token `{}` has the same value as `{}` (line {})", t.name, tokens[i].name, lines[i]),
                );
                ok = false;
            }
            lines.push(item.pos.line);
            tokens.push(t);
        }
    }
    if read_requires_token == Some(true) && tokens.is_empty() && ok {
        let at = f.get("read_requires_token").map_or(node.pos, |n| n.pos);
        cx.err(at, "`read_requires_token: true` needs at least one token in `tokens` (or nobody could read)");
        return None;
    }
    if !ok {
        return None;
    }
    Some(ApiConfig { read_requires_token: read_requires_token?, tokens, rate_limit: rate_limit?, tls: tls? })
}

/// `api.tls`. Only paths are read here; the files themselves are read when
/// the agent starts, and again on every reload.
fn read_tls(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<TlsConfig> {
    let f = cx.map(node, "api.tls", &["cert_file", "key_file", "client_ca_file", "reload_interval"])?;
    let path = |cx: &mut Ctx<'_>, n: &Node, key: &str| {
        let t = cx.text(n, key)?;
        if t.trim().is_empty() {
            cx.err(n.pos, format!("`api.tls.{key}` must be a path to a PEM file"));
            return None;
        }
        Some(resolve(base, t))
    };
    let cert_file = f.require(cx, "cert_file").and_then(|n| path(cx, n, "cert_file"));
    let key_file = f.require(cx, "key_file").and_then(|n| path(cx, n, "key_file"));
    let client_ca_file = match f.get("client_ca_file") {
        None => Some(None),
        Some(n) => path(cx, n, "client_ca_file").map(Some),
    };
    let reload_interval = match f.get("reload_interval") {
        None => Some(DEFAULT_TLS_RELOAD_INTERVAL),
        Some(n) => cx.text(n, "reload_interval").and_then(|t| match parse_duration(t) {
            Some(d) if d >= Duration::from_millis(100) => Some(d),
            _ => {
                cx.err(
                    n.pos,
                    format!(
                        "`api.tls.reload_interval` must be a duration of at least 100ms such as 30s or 5m, found `{t}`"
                    ),
                );
                None
            }
        }),
    };
    Some(TlsConfig {
        cert_file: cert_file?,
        key_file: key_file?,
        client_ca_file: client_ca_file?,
        reload_interval: reload_interval?,
    })
}

fn read_token_entry(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ApiToken> {
    let f = cx.map(node, "tokens[]", &["name", "role", "roles", "token_file", "token_env", "token_sha256"])?;
    let name = f.require(cx, "name").and_then(|n| {
        let t = cx.text(n, "name")?;
        let valid = !t.is_empty()
            && t.len() <= 64
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !valid {
            cx.err(
                n.pos,
                format!("API token name `{t}` may use only letters, digits, `-`, `_`, `.` and `@` (at most 64)"),
            );
            return None;
        }
        Some(t.to_string())
    });
    let role = roles(cx, &f, node);
    if let Some(n) = f.get("token_sha256") {
        if let Some(other) = f.get("token_file").or(f.get("token_env")) {
            cx.err(other.pos, "give the token as `token_sha256` or as `token_file` / `token_env`, not both");
            return None;
        }
        let hex = cx.text(n, "token_sha256")?.trim();
        let hash = (hex.len() == 64)
            .then(|| {
                let mut h = [0u8; 32];
                for (i, b) in h.iter_mut().enumerate() {
                    *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(h)
            })
            .flatten();
        let Some(hash) = hash else {
            cx.err(
                n.pos,
                "`token_sha256` must be 64 hex digits, the SHA-256 of the token (`printf %s \"$TOKEN\" | sha256sum`)",
            );
            return None;
        };
        return Some(ApiToken { name: name?, roles: role?, token: TokenValue::Sha256(hash) });
    }
    let token = read_secret(cx, &f, base);
    if f.get("token_file").is_none() && f.get("token_env").is_none() {
        cx.err(node.pos, "an API token needs `token_file` or `token_env` (or its hash in `token_sha256`)");
        return None;
    }
    let token = token??;
    if token.expose().len() < MIN_TOKEN_BYTES {
        let at = f.get("token_file").or(f.get("token_env")).map_or(node.pos, |n| n.pos);
        cx.err(
            at,
            format!(
                "API token `{}` is shorter than {MIN_TOKEN_BYTES} characters; make one with `openssl rand -hex 32`",
                name.as_deref().unwrap_or("?")
            ),
        );
        return None;
    }
    Some(ApiToken { name: name?, roles: role?, token: TokenValue::Plain(token) })
}

/// `token_file` or `token_env`, read now: a missing file or variable is a
/// config error, not a surprise at the first request.
fn read_secret(cx: &mut Ctx<'_>, f: &Fields<'_>, base: &Path) -> Option<Option<Secret>> {
    crate::yaml::values::read_secret(cx, f, base, "token", "the API token")
}

/// `role: R` or `roles: [R, …]` (one of them, at least one role).
fn roles(cx: &mut Ctx<'_>, f: &Fields<'_>, node: &Node) -> Option<Vec<Role>> {
    let expected = "expected read, silence, deploy, approve, incident or admin";
    let nodes: Vec<&Node> = match (f.get("role"), f.get("roles")) {
        (Some(_), Some(n)) => {
            cx.err(n.pos, "give `role` or `roles`, not both");
            return None;
        }
        (Some(n), None) => vec![n],
        (None, Some(n)) => {
            let items = cx.one_or_many(n, "roles");
            if items.is_empty() {
                return None;
            }
            items
        }
        (None, None) => {
            cx.err(node.pos, format!("an API token needs a `role` (or `roles: [...]`); {expected}"));
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for n in nodes {
        let Some(t) = cx.text(n, "role") else {
            ok = false;
            continue;
        };
        match Role::parse(t) {
            Some(r) if !out.contains(&r) => out.push(r),
            Some(_) => {}
            None => {
                cx.err(n.pos, format!("unknown role `{t}`; {expected}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
