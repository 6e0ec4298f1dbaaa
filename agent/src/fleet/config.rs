//! `freeze:`: where the freeze answer's figures come from.
//!
//! ```yaml
//! freeze:
//!   source: prometheus                 # local (default): this agent's own counts
//!   prometheus:
//!     url: http://prometheus:9090      # the query API base; /api/v1/query is appended
//!     bearer_token_file: /var/run/secrets/prom-token   # optional; read again at every reading
//!     headers: {X-Scope-OrgID: tenant-1}                # optional (Mimir, Cortex)
//!     timeout: 5s                      # one reading, all its queries
//!     interval: 30s                    # how often to read (never more often than `tick`)
//! ```

use std::path::Path;
use std::time::Duration;

use super::{FreezeConfig, FreezeSource, PrometheusConfig};
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::{parse_duration, resolve};
use crate::yaml::{Node, Value};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Headers sent with every query, at most.
const MAX_HEADERS: usize = 32;

pub fn read_freeze(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<FreezeConfig> {
    let f = cx.map(node, "freeze", &["source", "prometheus"])?;
    let source = match f.get("source") {
        None => Some("local"),
        Some(n) => cx.text(n, "freeze.source").and_then(|t| match t {
            "local" | "prometheus" => Some(t),
            other => {
                cx.err(n.pos, format!("`freeze.source` must be `local` or `prometheus`, found `{other}`"));
                None
            }
        }),
    }?;
    match (source, f.get("prometheus")) {
        ("local", None) => Some(FreezeConfig { source: FreezeSource::Local }),
        ("local", Some(n)) => {
            cx.err(n.pos, "`freeze.prometheus` is only read with `freeze.source: prometheus`");
            None
        }
        (_, None) => {
            cx.err(node.pos, "`freeze.source: prometheus` needs `freeze.prometheus` with at least `url`");
            None
        }
        (_, Some(n)) => read_prometheus(cx, n, base).map(|p| FreezeConfig { source: FreezeSource::Prometheus(p) }),
    }
}

fn read_prometheus(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<PrometheusConfig> {
    let keys = ["url", "bearer_token_file", "headers", "timeout", "interval"];
    let f = cx.map(node, "freeze.prometheus", &keys)?;
    let url = f.require(cx, "url").and_then(|n| {
        let t = cx.text(n, "freeze.prometheus.url")?;
        let url = crate::yaml::values::base_url(t);
        if url.is_none() {
            cx.err(
                n.pos,
                format!(
                    "`freeze.prometheus.url` must be an http(s) URL without user, query or fragment, the base of the query API (such as http://prometheus:9090 or https://mimir.example.com/prometheus), found `{}`",
                    t.trim().trim_end_matches('/')
                ),
            );
        }
        url
    });
    let token_file = match f.get("bearer_token_file") {
        None => Some(None),
        Some(n) => cx.text(n, "freeze.prometheus.bearer_token_file").and_then(|t| {
            let path = resolve(base, t);
            match super::read_token(&path) {
                Ok(_) => Some(Some(path)),
                Err(e) => {
                    cx.err(n.pos, e);
                    None
                }
            }
        }),
    };
    let headers = match f.get("headers") {
        None => Some(Vec::new()),
        Some(n) => read_headers(cx, n, token_file.as_ref().is_some_and(Option::is_some)),
    };
    let timeout = duration(cx, &f, "timeout", DEFAULT_TIMEOUT);
    let interval = duration(cx, &f, "interval", DEFAULT_INTERVAL);
    Some(PrometheusConfig {
        url: url?,
        bearer_token_file: token_file?,
        headers: headers?,
        timeout: timeout?,
        interval: interval?,
    })
}

fn read_headers(cx: &mut Ctx<'_>, node: &Node, with_token: bool) -> Option<Vec<(String, String)>> {
    let Value::Map(entries) = &node.value else {
        cx.err(
            node.pos,
            format!("`freeze.prometheus.headers` must be a map of names to values, found {}", node.kind_name()),
        );
        return None;
    };
    if entries.len() > MAX_HEADERS {
        cx.err(node.pos, format!("`freeze.prometheus.headers`: at most {MAX_HEADERS} headers"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let name = k.text.trim();
        let Some(value) = cx.text(v, &format!("freeze.prometheus.headers.{name}")) else {
            ok = false;
            continue;
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            cx.err(k.pos, format!("`{name}` is not an HTTP header name"));
            ok = false;
        } else if name.eq_ignore_ascii_case("authorization") && with_token {
            cx.err(k.pos, "`Authorization` is set from `bearer_token_file`; give one or the other");
            ok = false;
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            cx.err(v.pos, format!("the value of header `{name}` is not a valid HTTP header value"));
            ok = false;
        } else {
            out.push((name.to_string(), value.to_string()));
        }
    }
    ok.then_some(out)
}

fn duration(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: Duration) -> Option<Duration> {
    let Some(n) = f.get(key) else { return Some(default) };
    let t = cx.text(n, &f.path(key))?;
    match parse_duration(t) {
        Some(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(3600) => Some(d),
        _ => {
            cx.err(
                n.pos,
                format!("`{}` must be a duration from 100ms to 1h, such as 5s or 30s, found `{t}`", f.path(key)),
            );
            None
        }
    }
}
