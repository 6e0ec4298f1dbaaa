//! Reading `probes:`, `journeys:` and `region:` of `agent.yaml`.
//!
//! ```yaml
//! region: eu-west-1                      # default: AWS_REGION, AWS_DEFAULT_REGION, else `local`
//! probes:
//!   - name: storefront
//!     interval: 30s
//!     hops:
//!       - {name: edge, url: "https://www.shop.example.com/api/health"}
//!       - {name: gateway, url: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/health"}
//!       - {name: function, url: "https://xyz.lambda-url.eu-west-1.on.aws/health"}
//!     expect: {status: [200], latency: 800ms}
//! journeys:
//!   - name: checkout
//!     interval: 1m
//!     steps:
//!       - {name: home, request: {method: GET, url: "https://www.shop.example.com/"}, expect: {status: [200]}}
//!       - name: login
//!         request: {method: POST, url: "https://www.shop.example.com/api/login", json: {user: synthetic, password_file: /run/secrets/pw}}
//!         extract: {token: {json: "$.token"}}
//!       - {name: cart, request: {method: POST, url: "https://www.shop.example.com/api/cart", headers: {authorization: "Bearer ${token}"}, json: {sku: A1}}}
//! ```

use std::path::Path;
use std::time::Duration;

use crate::alert::certs::CertificatePolicy;

use super::{
    Body, Connection, Expect, Extract, HttpVersion, IpFamily, JourneyConfig, JsonPath, JsonTemplate, PathStep,
    ProbeConfig, StatusMatch, Step, SyntheticConfig, Target, Text,
};
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::{parse_duration, resolve};
use crate::yaml::{Node, Style, Value};

pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_JOURNEY_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRIES: u32 = 1;
/// Probes and journeys an agent runs at most.
pub const MAX_CHECKS: usize = 2_000;
/// Hops of one probe, steps of one journey, at most.
pub const MAX_HOPS: usize = 10;
pub const MAX_STEPS: usize = 50;
/// Compiled size of an expectation's pattern, at most.
const REGEX_SIZE_LIMIT: usize = 64 * 1024;

const PROBE_KEYS: &[&str] = &[
    "name",
    "service",
    "interval",
    "timeout",
    "retries",
    "url",
    "hops",
    "method",
    "headers",
    "expect",
    "ca_file",
    "insecure_skip_verify",
    "ip_protocol",
    "ip_fallback",
    "follow_redirects",
    "http_version",
    "certificates",
];
const CERTIFICATE_KEYS: &[&str] = &["ticket_below", "page_below", "self_signed", "runbook"];
const CONNECTION_KEYS: &[&str] =
    &["timeout", "ca_file", "insecure_skip_verify", "ip_protocol", "ip_fallback", "follow_redirects", "http_version"];

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_name(cx: &mut Ctx<'_>, f: &Fields<'_>, what: &str) -> Option<String> {
    let n = f.require(cx, "name")?;
    let t = cx.text(n, &format!("{what}.name"))?;
    if !is_name(t) {
        cx.err(n.pos, format!("`{what}.name` must be 1 to 64 letters, digits, `-`, `_` or `.`, found `{t}`"));
        return None;
    }
    Some(t.to_string())
}

/// A duration key of a `Fields` map, within `min..=max`, or `default` when absent.
pub(crate) fn duration(
    cx: &mut Ctx<'_>,
    f: &Fields<'_>,
    key: &str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let Some(n) = f.get(key) else { return Some(default) };
    let t = cx.text(n, &f.path(key))?;
    match parse_duration(t) {
        Some(d) if d >= min && d <= max => Some(d),
        _ => {
            cx.err(
                n.pos,
                format!("`{}` must be a duration from {min:?} to {max:?} such as 30s or 1m, found `{t}`", f.path(key)),
            );
            None
        }
    }
}

fn boolean(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: bool) -> Option<bool> {
    match f.get(key) {
        None => Some(default),
        Some(n) => cx.boolean(n, &f.path(key)),
    }
}

/// The `${name}`s a template uses; a malformed `${` is reported.
pub fn variables(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without a closing `}}` in `{text}`"));
        };
        let v = &after[..end];
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{v}}}` is not a variable name (letters, digits, `_`)"));
        }
        out.push(v);
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// Reads a `certificates:` map over `default` (the top-level one, or the
/// built-in 21 and 3 days): `ticket_below`, `page_below`, `self_signed`,
/// `runbook`. A page threshold must be below the ticket's.
fn read_certificates(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    default: &CertificatePolicy,
) -> Option<CertificatePolicy> {
    let f = cx.map(node, what, CERTIFICATE_KEYS)?;
    let (min, max) = (Duration::from_secs(3600), Duration::from_secs(366 * 86_400));
    let ticket_below = duration(cx, &f, "ticket_below", default.ticket_below, min, max);
    let page_below = duration(cx, &f, "page_below", default.page_below, min, max);
    let self_signed = boolean(cx, &f, "self_signed", default.self_signed);
    let runbook = match f.get("runbook") {
        None => Some(default.runbook.clone()),
        Some(n) => cx.text(n, &f.path("runbook")).map(|t| Some(t.to_string())),
    };
    let (ticket_below, page_below) = (ticket_below?, page_below?);
    if page_below > ticket_below {
        let at = f.get("page_below").or(f.get("ticket_below")).map_or(node.pos, |n| n.pos);
        cx.err(
            at,
            format!(
                "`{what}`: `page_below` ({}d) must not be longer than `ticket_below` ({}d)",
                page_below.as_secs() / 86_400,
                ticket_below.as_secs() / 86_400
            ),
        );
        return None;
    }
    Some(CertificatePolicy { ticket_below, page_below, self_signed: self_signed?, runbook: runbook? })
}

/// Reads `region`, `probes`, `journeys` and `certificates` of the config's root map.
pub fn read(cx: &mut Ctx<'_>, root: &Fields<'_>, base: &Path) -> Option<SyntheticConfig> {
    let certificates = match root.get("certificates") {
        None => Some(CertificatePolicy::default()),
        Some(n) => read_certificates(cx, n, "certificates", &CertificatePolicy::default()),
    };
    let region = match root.get("region") {
        Some(n) => cx.text(n, "region").and_then(|t| {
            if is_name(t) {
                Some(t.to_string())
            } else {
                cx.err(n.pos, format!("`region` must be 1 to 64 letters, digits, `-`, `_` or `.`, found `{t}`"));
                None
            }
        }),
        None => Some(
            ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|r| is_name(r)))
                .unwrap_or_else(|| "local".to_string()),
        ),
    };
    let mut ok = true;
    // Names first, from every entry that has one, so a duplicate is named even
    // when an entry has other mistakes.
    let mut names: Vec<(String, usize)> = Vec::new();
    for key in ["probes", "journeys"] {
        let Some(Value::Seq(items)) = root.get(key).map(|n| &n.value) else { continue };
        for item in items {
            let Value::Map(entries) = &item.value else { continue };
            let Some((_, n)) = entries.iter().find(|(k, _)| k.text == "name") else { continue };
            let Value::Scalar(s) = &n.value else { continue };
            if let Some((_, line)) = names.iter().find(|(x, _)| *x == s.text) {
                cx.err(item.pos, format!("duplicate probe or journey name `{}` (first at line {line})", s.text));
                ok = false;
            }
            names.push((s.text.clone(), item.pos.line));
        }
    }
    let mut probes = Vec::new();
    if let Some(n) = root.get("probes") {
        for item in cx.list(n, "probes").unwrap_or_default() {
            match read_probe(cx, item, base, certificates.as_ref()) {
                Some(p) => probes.push(p),
                None => ok = false,
            }
        }
    }
    let mut journeys = Vec::new();
    if let Some(n) = root.get("journeys") {
        for item in cx.list(n, "journeys").unwrap_or_default() {
            match read_journey(cx, item, base) {
                Some(j) => journeys.push(j),
                None => ok = false,
            }
        }
    }
    if names.len() > MAX_CHECKS {
        cx.err(root.node.pos, format!("at most {MAX_CHECKS} probes and journeys, found {}", names.len()));
        ok = false;
    }
    let traces = match root.get("traces") {
        None => Some(None),
        Some(n) => read_traces(cx, n, base).map(Some),
    };
    let region = region?;
    certificates?;
    let traces = traces?;
    ok.then_some(SyntheticConfig { region, probes, journeys, traces })
}

/// `traces:`: where the probes' traces go (OTLP/HTTP).
fn read_traces(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<super::trace::TraceConfig> {
    let f = cx.map(node, "traces", &["endpoint", "headers", "timeout"])?;
    let endpoint = f.require(cx, "endpoint").and_then(|n| {
        let t = cx.text(n, "traces.endpoint")?;
        match url::Url::parse(t) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                // A collector's base URL gets the traces path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
                if u.path() == "/" { Some(format!("{}v1/traces", u.as_str())) } else { Some(t.to_string()) }
            }
            _ => {
                cx.err(n.pos, format!("`traces.endpoint` must be an http(s) URL such as http://otel-collector:4318/v1/traces, found `{t}`"));
                None
            }
        }
    });
    let headers = match f.get("headers") {
        None => Some(Vec::new()),
        Some(n) => text_map(cx, n, "traces.headers", base, false),
    };
    let timeout =
        duration(cx, &f, "timeout", Duration::from_secs(10), Duration::from_millis(100), Duration::from_secs(60));
    Some(super::trace::TraceConfig { endpoint: endpoint?, headers: headers?, timeout: timeout? })
}

fn read_connection(cx: &mut Ctx<'_>, f: &Fields<'_>, base: &Path, interval: Duration) -> Option<Connection> {
    let timeout = duration(cx, f, "timeout", DEFAULT_TIMEOUT.min(interval), Duration::from_millis(100), interval);
    let ca_file = match f.get("ca_file") {
        None => Some(None),
        Some(n) => cx.text(n, &f.path("ca_file")).and_then(|t| {
            let p = resolve(base, t);
            if p.is_file() {
                Some(Some(p))
            } else {
                cx.err(n.pos, format!("`{}`: {} is not a readable file", f.path("ca_file"), p.display()));
                None
            }
        }),
    };
    let ip_family = match f.get("ip_protocol") {
        None => Some(IpFamily::Ip4),
        Some(n) => match cx.text(n, &f.path("ip_protocol")) {
            Some("ip4") => Some(IpFamily::Ip4),
            Some("ip6") => Some(IpFamily::Ip6),
            Some(o) => {
                cx.err(n.pos, format!("`{}` must be `ip4` or `ip6`, found `{o}`", f.path("ip_protocol")));
                None
            }
            None => None,
        },
    };
    let http_version = match f.get("http_version") {
        None => Some(None),
        Some(n) => http_version(cx, n, &f.path("http_version")).map(Some),
    };
    Some(Connection {
        timeout: timeout?,
        ca_file: ca_file?,
        insecure_skip_verify: boolean(cx, f, "insecure_skip_verify", false)?,
        ip_family: ip_family?,
        ip_fallback: boolean(cx, f, "ip_fallback", true)?,
        follow_redirects: boolean(cx, f, "follow_redirects", true)?,
        http_version: http_version?,
    })
}

fn http_version(cx: &mut Ctx<'_>, n: &Node, what: &str) -> Option<HttpVersion> {
    match cx.text(n, what)? {
        "1.1" | "HTTP/1.1" => Some(HttpVersion::Http1),
        "2" | "2.0" | "HTTP/2" | "HTTP/2.0" => Some(HttpVersion::Http2),
        o => {
            cx.err(n.pos, format!("`{what}` must be `1.1` or `2`, found `{o}`"));
            None
        }
    }
}

fn url(cx: &mut Ctx<'_>, n: &Node, what: &str, variables_allowed: bool) -> Option<String> {
    let t = cx.text(n, what)?.trim();
    let vars = match variables(t) {
        Ok(v) => v,
        Err(m) => {
            cx.err(n.pos, format!("`{what}`: {m}"));
            return None;
        }
    };
    if !vars.is_empty() && !variables_allowed {
        cx.err(n.pos, format!("`{what}` uses `${{{}}}`, but only journey steps have variables", vars[0]));
        return None;
    }
    // Check the URL with every variable filled in by a harmless value.
    let mut probe = t.to_string();
    for v in &vars {
        probe = probe.replace(&format!("${{{v}}}"), "x");
    }
    match reqwest::Url::parse(&probe) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(t.to_string()),
        _ => {
            cx.err(n.pos, format!("`{what}` must be an http:// or https:// URL with a host, found `{t}`"));
            None
        }
    }
}

fn read_probe(
    cx: &mut Ctx<'_>,
    node: &Node,
    base: &Path,
    default_certificates: Option<&CertificatePolicy>,
) -> Option<ProbeConfig> {
    let f = cx.map(node, "probes[]", PROBE_KEYS)?;
    let name = read_name(cx, &f, "probes[]")?;
    let what = format!("probes[{name}]");
    let f = Fields { what: what.clone(), ..f };
    let builtin = CertificatePolicy::default();
    let certificates = match f.get("certificates") {
        None => Some(default_certificates.unwrap_or(&builtin).clone()),
        Some(n) => read_certificates(cx, n, &f.path("certificates"), default_certificates.unwrap_or(&builtin)),
    };
    let service = match f.get("service") {
        None => Some(name.clone()),
        Some(n) => cx.text(n, &f.path("service")).map(str::to_string),
    };
    let interval =
        duration(cx, &f, "interval", DEFAULT_PROBE_INTERVAL, Duration::from_secs(1), Duration::from_secs(3600))?;
    let retries = match f.get("retries") {
        None => Some(DEFAULT_RETRIES),
        Some(n) => cx.number(n, &f.path("retries")).and_then(|v| {
            if v.fract() == 0.0 && (0.0..=5.0).contains(&v) {
                Some(v as u32)
            } else {
                cx.err(n.pos, format!("`{}` must be a whole number from 0 to 5, found {v}", f.path("retries")));
                None
            }
        }),
    };
    let connection = read_connection(cx, &f, base, interval);
    let method = method(cx, &f)?;
    let headers = match f.get("headers") {
        None => Some(Vec::new()),
        Some(n) => text_map(cx, n, &f.path("headers"), base, false),
    };
    let expect = match f.get("expect") {
        None => Some(Expect::default()),
        Some(n) => read_expect(cx, n, &f.path("expect")),
    };
    // The hops are read (and their mistakes reported) even when the shared fields had some.
    let shared = headers.is_some() && expect.is_some();
    let (headers, expect) = (headers.unwrap_or_default(), expect.unwrap_or_default());
    let hops = match (f.get("url"), f.get("hops")) {
        (Some(_), Some(n)) => {
            cx.err(n.pos, format!("`{what}` has `url` and `hops`; give one URL, or the hops"));
            None
        }
        (None, None) => {
            cx.err(
                node.pos,
                format!("`{what}` needs `url` (one target) or `hops` (a chain such as edge, gateway, function)"),
            );
            None
        }
        (Some(n), None) => url(cx, n, &f.path("url"), false).map(|u| {
            vec![Target {
                name: "target".into(),
                url: u,
                method: method.clone(),
                headers: headers.clone(),
                body: None,
                expect: expect.clone(),
            }]
        }),
        (None, Some(n)) => {
            let items = cx.list(n, &f.path("hops"))?;
            if items.is_empty() || items.len() > MAX_HOPS {
                cx.err(n.pos, format!("`{}` must list 1 to {MAX_HOPS} hops", f.path("hops")));
                return None;
            }
            let mut hops: Vec<Target> = Vec::new();
            let mut ok = true;
            for item in items {
                let Some(h) = cx.map(item, &f.path("hops[]"), &["name", "url", "headers", "expect"]) else {
                    ok = false;
                    continue;
                };
                let hop_name = read_name(cx, &h, &f.path("hops[]"));
                let hop_url = h.require(cx, "url").and_then(|u| url(cx, u, &f.path("hops[].url"), false));
                let hop_headers = match h.get("headers") {
                    None => Some(headers.clone()),
                    Some(n) => text_map(cx, n, &f.path("hops[].headers"), base, false).map(|mut own| {
                        let mut all = headers.clone();
                        all.retain(|(k, _)| !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)));
                        all.append(&mut own);
                        all
                    }),
                };
                let hop_expect = match h.get("expect") {
                    None => Some(expect.clone()),
                    Some(n) => read_expect(cx, n, &f.path("hops[].expect")),
                };
                match (hop_name, hop_url, hop_headers, hop_expect) {
                    (Some(nm), Some(u), Some(hd), Some(ex)) => {
                        if hops.iter().any(|x| x.name == nm) {
                            cx.err(item.pos, format!("duplicate hop name `{nm}` in `{what}`"));
                            ok = false;
                        }
                        hops.push(Target {
                            name: nm,
                            url: u,
                            method: method.clone(),
                            headers: hd,
                            body: None,
                            expect: ex,
                        });
                    }
                    _ => ok = false,
                }
            }
            ok.then_some(hops)
        }
    };
    let hops = hops.filter(|_| shared);
    Some(ProbeConfig {
        name,
        service: service?,
        interval,
        retries: retries?,
        connection: connection?,
        hops: hops?,
        certificates: certificates?,
    })
}

fn method(cx: &mut Ctx<'_>, f: &Fields<'_>) -> Option<String> {
    match f.get("method") {
        None => Some("GET".into()),
        Some(n) => {
            let t = cx.text(n, &f.path("method"))?.to_ascii_uppercase();
            if matches!(t.as_str(), "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") {
                Some(t)
            } else {
                cx.err(
                    n.pos,
                    format!("`{}` must be an HTTP method such as GET or POST, found `{t}`", f.path("method")),
                );
                None
            }
        }
    }
}

/// A map of strings where any `<key>_file` / `<key>_env` entry is read at
/// run time under the name `<key>` (request headers; also `export.otlp.headers`).
pub fn text_map(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    base: &Path,
    variables_allowed: bool,
) -> Option<Vec<(String, Text)>> {
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`{what}` must be a map, found {}", node.kind_name()));
        return None;
    };
    let mut out: Vec<(String, Text)> = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let path = format!("{what}.{}", k.text);
        match text_value(cx, &k.text, v, &path, base, variables_allowed) {
            Some((key, t)) => {
                if out.iter().any(|(o, _)| *o == key) {
                    cx.err(k.pos, format!("`{what}` sets `{key}` twice"));
                    ok = false;
                }
                out.push((key, t));
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One string entry: `key: text`, `key_file: path` or `key_env: VAR`.
fn text_value(
    cx: &mut Ctx<'_>,
    key: &str,
    v: &Node,
    what: &str,
    base: &Path,
    variables_allowed: bool,
) -> Option<(String, Text)> {
    let t = cx.text(v, what)?;
    if let Some(k) = key.strip_suffix("_file").filter(|k| !k.is_empty()) {
        let p = resolve(base, t);
        if let Err(e) = std::fs::metadata(&p) {
            cx.err(v.pos, format!("`{what}`: cannot read {}: {e}", p.display()));
            return None;
        }
        return Some((k.to_string(), Text::File(p)));
    }
    if let Some(k) = key.strip_suffix("_env").filter(|k| !k.is_empty()) {
        if std::env::var(t).is_err() {
            cx.err(v.pos, format!("`{what}`: environment variable `{t}` is not set"));
            return None;
        }
        return Some((k.to_string(), Text::Env(t.to_string())));
    }
    match variables(t) {
        Err(m) => {
            cx.err(v.pos, format!("`{what}`: {m}"));
            None
        }
        Ok(vars) if !vars.is_empty() && !variables_allowed => {
            cx.err(v.pos, format!("`{what}` uses `${{{}}}`, but only journey steps have variables", vars[0]));
            None
        }
        Ok(_) => Some((key.to_string(), Text::Plain(t.to_string()))),
    }
}

fn regex(cx: &mut Ctx<'_>, n: &Node, what: &str) -> Option<regex_lite::Regex> {
    let t = cx.text(n, what)?;
    match regex_lite::RegexBuilder::new(t).size_limit(REGEX_SIZE_LIMIT).build() {
        Ok(r) => Some(r),
        Err(e) => {
            cx.err(n.pos, format!("`{what}` is not a valid pattern: {e}"));
            None
        }
    }
}

/// A JSON path of the subset `$.a.b[0]['c d']`.
pub fn json_path(text: &str) -> Result<JsonPath, String> {
    let bad = || format!("`{text}` is not a JSON path of the form $.key.key[0]['other key']");
    let mut rest = text.trim().strip_prefix('$').ok_or_else(bad)?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or_else(bad)?;
            steps.push(PathStep::Key(r[..end].to_string()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(bad)?;
            steps.push(PathStep::Index(r[..end].parse().map_err(|_| bad())?));
            rest = &r[end + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(JsonPath { text: text.trim().to_string(), steps })
}

/// A YAML scalar as the JSON value it means: quoted text is a string;
/// plain `true`, `false`, `null` and numbers are themselves.
fn scalar_json(n: &Node) -> Option<serde_json::Value> {
    let Value::Scalar(s) = &n.value else { return None };
    if s.style != Style::Plain {
        return Some(serde_json::Value::String(s.text.clone()));
    }
    Some(match s.text.as_str() {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        "null" | "~" => serde_json::Value::Null,
        t => match t.parse::<serde_json::Number>() {
            Ok(num) => serde_json::Value::Number(num),
            Err(_) => serde_json::Value::String(t.to_string()),
        },
    })
}

fn read_expect(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Expect> {
    let keys = ["status", "latency", "body_matches", "body_not_matches", "headers", "json", "http_version", "tls"];
    let f = cx.map(node, what, &keys)?;
    let mut ok = true;
    let status = match f.get("status") {
        None => Some(StatusMatch::Success),
        Some(n) => {
            let mut codes = Vec::new();
            for item in cx.one_or_many(n, &f.path("status")) {
                match cx.text(item, &f.path("status")) {
                    Some("2xx") => codes.extend(200..300),
                    Some(t) => match t.parse::<u16>() {
                        Ok(c) if (100..600).contains(&c) => codes.push(c),
                        _ => {
                            cx.err(
                                item.pos,
                                format!("`{}` takes status codes (100 to 599) or `2xx`, found `{t}`", f.path("status")),
                            );
                            ok = false;
                        }
                    },
                    None => ok = false,
                }
            }
            Some(StatusMatch::Codes(codes))
        }
    };
    let latency = match f.get("latency") {
        None => None,
        Some(n) => match cx.text(n, &f.path("latency")).map(|t| (t, parse_duration(t))) {
            Some((_, Some(d))) if d > Duration::ZERO => Some(d),
            Some((t, _)) => {
                cx.err(n.pos, format!("`{}` must be a duration such as 800ms, found `{t}`", f.path("latency")));
                ok = false;
                None
            }
            None => {
                ok = false;
                None
            }
        },
    };
    let mut patterns = |key: &str, cx: &mut Ctx<'_>| -> Vec<regex_lite::Regex> {
        let mut out = Vec::new();
        if let Some(n) = f.get(key) {
            for item in cx.one_or_many(n, &f.path(key)) {
                match regex(cx, item, &f.path(key)) {
                    Some(r) => out.push(r),
                    None => ok = false,
                }
            }
        }
        out
    };
    let body_matches = patterns("body_matches", cx);
    let body_not_matches = patterns("body_not_matches", cx);
    let mut headers = Vec::new();
    if let Some(n) = f.get("headers") {
        match &n.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    match regex(cx, v, &format!("{}.{}", f.path("headers"), k.text)) {
                        Some(r) => headers.push((k.text.to_ascii_lowercase(), r)),
                        None => ok = false,
                    }
                }
            }
            _ => {
                cx.err(n.pos, format!("`{}` must be a map of header name to pattern", f.path("headers")));
                ok = false;
            }
        }
    }
    let mut json = Vec::new();
    if let Some(n) = f.get("json") {
        match &n.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    match (json_path(&k.text), scalar_json(v)) {
                        (Ok(p), Some(val)) => json.push((p, val)),
                        (Err(m), _) => {
                            cx.err(k.pos, format!("`{}`: {m}", f.path("json")));
                            ok = false;
                        }
                        (_, None) => {
                            cx.err(v.pos, format!("`{}.{}` must be a single value", f.path("json"), k.text));
                            ok = false;
                        }
                    }
                }
            }
            _ => {
                cx.err(n.pos, format!("`{}` must be a map of JSON path to value", f.path("json")));
                ok = false;
            }
        }
    }
    let http_version = match f.get("http_version") {
        None => None,
        Some(n) => {
            let v = http_version(cx, n, &f.path("http_version"));
            ok &= v.is_some();
            v
        }
    };
    let tls = match f.get("tls") {
        None => None,
        Some(n) => {
            let v = cx.boolean(n, &f.path("tls"));
            ok &= v.is_some();
            v
        }
    };
    let status = status?;
    ok.then_some(Expect { status, latency, body_matches, body_not_matches, headers, json, http_version, tls })
}

fn json_template(cx: &mut Ctx<'_>, node: &Node, what: &str, base: &Path) -> Option<JsonTemplate> {
    match &node.value {
        Value::Null => Some(JsonTemplate::Null),
        Value::Scalar(_) => match scalar_json(node)? {
            serde_json::Value::Bool(b) => Some(JsonTemplate::Bool(b)),
            serde_json::Value::Number(n) => Some(JsonTemplate::Number(n)),
            serde_json::Value::Null => Some(JsonTemplate::Null),
            _ => text_value(cx, "value", node, what, base, true).map(|(_, t)| JsonTemplate::Text(t)),
        },
        Value::Seq(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match json_template(cx, item, &format!("{what}[{i}]"), base) {
                    Some(t) => out.push(t),
                    None => ok = false,
                }
            }
            ok.then_some(JsonTemplate::Array(out))
        }
        Value::Map(entries) => {
            let mut out: Vec<(String, JsonTemplate)> = Vec::new();
            let mut ok = true;
            for (k, v) in entries {
                let path = format!("{what}.{}", k.text);
                let read =
                    if matches!(v.value, Value::Scalar(_)) && (k.text.ends_with("_file") || k.text.ends_with("_env")) {
                        text_value(cx, &k.text, v, &path, base, true).map(|(key, t)| (key, JsonTemplate::Text(t)))
                    } else {
                        json_template(cx, v, &path, base).map(|t| (k.text.clone(), t))
                    };
                match read {
                    Some((key, t)) => {
                        if out.iter().any(|(o, _)| *o == key) {
                            cx.err(k.pos, format!("`{what}` sets `{key}` twice"));
                            ok = false;
                        }
                        out.push((key, t));
                    }
                    None => ok = false,
                }
            }
            ok.then_some(JsonTemplate::Object(out))
        }
    }
}

/// The `${variables}` a text value uses (values read from files or the environment use none).
fn text_variables(t: &Text, out: &mut Vec<String>) {
    if let Text::Plain(s) = t {
        out.extend(variables(s).unwrap_or_default().into_iter().map(str::to_string));
    }
}

/// The `${variables}` a JSON template uses.
fn template_variables(t: &JsonTemplate, out: &mut Vec<String>) {
    match t {
        JsonTemplate::Text(t) => text_variables(t, out),
        JsonTemplate::Array(items) => items.iter().for_each(|i| template_variables(i, out)),
        JsonTemplate::Object(entries) => entries.iter().for_each(|(_, v)| template_variables(v, out)),
        _ => {}
    }
}

fn read_journey(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<JourneyConfig> {
    let mut keys: Vec<&str> = vec!["name", "service", "interval", "steps"];
    keys.extend_from_slice(CONNECTION_KEYS);
    let f = cx.map(node, "journeys[]", &keys)?;
    let name = read_name(cx, &f, "journeys[]")?;
    let what = format!("journeys[{name}]");
    let f = Fields { what: what.clone(), ..f };
    let service = match f.get("service") {
        None => Some(name.clone()),
        Some(n) => cx.text(n, &f.path("service")).map(str::to_string),
    };
    let interval =
        duration(cx, &f, "interval", DEFAULT_JOURNEY_INTERVAL, Duration::from_secs(10), Duration::from_secs(86_400))?;
    let connection = read_connection(cx, &f, base, interval);
    let items = f.require(cx, "steps").and_then(|n| cx.list(n, &f.path("steps")))?;
    if items.is_empty() || items.len() > MAX_STEPS {
        cx.err(node.pos, format!("`{}` must list 1 to {MAX_STEPS} steps", f.path("steps")));
        return None;
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        match read_step(cx, item, &what, base, &known, interval) {
            Some(s) => {
                if steps.iter().any(|x| x.target.name == s.target.name) {
                    cx.err(item.pos, format!("duplicate step name `{}` in `{what}`", s.target.name));
                    ok = false;
                }
                known.extend(s.extract.iter().map(|(v, _)| v.clone()));
                steps.push(s);
            }
            None => ok = false,
        }
    }
    let (service, connection) = (service?, connection?);
    ok.then_some(JourneyConfig { name, service, interval, connection, steps })
}

fn read_step(
    cx: &mut Ctx<'_>,
    node: &Node,
    journey: &str,
    base: &Path,
    known: &[String],
    interval: Duration,
) -> Option<Step> {
    let keys = ["name", "request", "extract", "expect", "think_time", "timeout"];
    let f = cx.map(node, &format!("{journey}.steps[]"), &keys)?;
    let name = read_name(cx, &f, &format!("{journey}.steps[]"))?;
    let what = format!("{journey}.steps[{name}]");
    let f = Fields { what: what.clone(), ..f };
    let r = f.require(cx, "request").and_then(|n| {
        cx.map(
            n,
            &format!("{what}.request"),
            &["method", "url", "headers", "query", "json", "form", "body", "body_file", "body_env"],
        )
    })?;
    let method = method(cx, &r);
    let url = r.require(cx, "url").and_then(|n| url(cx, n, &r.path("url"), true));
    let headers = match r.get("headers") {
        None => Some(Vec::new()),
        Some(n) => text_map(cx, n, &r.path("headers"), base, true),
    };
    let query = match r.get("query") {
        None => Some(Vec::new()),
        Some(n) => text_map(cx, n, &r.path("query"), base, true),
    };
    let bodies: Vec<&str> =
        ["json", "form", "body", "body_file", "body_env"].into_iter().filter(|k| r.has(k)).collect();
    let body = match bodies.as_slice() {
        [] => Some(None),
        ["json"] => json_template(cx, r.get("json")?, &r.path("json"), base).map(|t| Some(Body::Json(t))),
        ["form"] => text_map(cx, r.get("form")?, &r.path("form"), base, true).map(|m| Some(Body::Form(m))),
        [k] => text_value(cx, k, r.get(k)?, &r.path(k), base, true).map(|(_, t)| Some(Body::Raw(t))),
        _ => {
            cx.err(r.node.pos, format!("`{}` has {}: give one body", r.what, bodies.join(" and ")));
            None
        }
    };
    let extract = match f.get("extract") {
        None => Some(Vec::new()),
        Some(n) => read_extract(cx, n, &f.path("extract")),
    };
    let expect = match f.get("expect") {
        None => Some(Expect::default()),
        Some(n) => read_expect(cx, n, &f.path("expect")),
    };
    let think_time = duration(cx, &f, "think_time", Duration::ZERO, Duration::ZERO, Duration::from_secs(600));
    let timeout = match f.get("timeout") {
        None => Some(None),
        Some(_) => duration(cx, &f, "timeout", DEFAULT_TIMEOUT, Duration::from_millis(100), interval).map(Some),
    };
    let (method, url, headers, query, body) = (method?, url?, headers?, query?, body?);
    // Every variable used here must come from an earlier step.
    let mut used: Vec<String> = variables(&url).unwrap_or_default().into_iter().map(str::to_string).collect();
    let form: &[(String, Text)] = match &body {
        Some(Body::Form(m)) => m,
        _ => &[],
    };
    for (_, t) in headers.iter().chain(&query).chain(form) {
        text_variables(t, &mut used);
    }
    match &body {
        Some(Body::Json(t)) => template_variables(t, &mut used),
        Some(Body::Raw(t)) => text_variables(t, &mut used),
        _ => {}
    }
    let mut ok = true;
    for v in &used {
        if !known.contains(v) {
            cx.err(node.pos, format!("`{what}` uses `${{{v}}}`, but no earlier step extracts `{v}`"));
            ok = false;
        }
    }
    let target = Target { name, url, method, headers, body, expect: expect? };
    ok.then_some(Step { target, query, extract: extract?, think_time: think_time?, timeout: timeout? })
}

fn read_extract(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<(String, Extract)>> {
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`{what}` must be a map of variable name to {{json|header|regex|cookie: …}}"));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let path = format!("{what}.{}", k.text);
        if variables(&format!("${{{}}}", k.text)).is_err() {
            cx.err(k.pos, format!("`{path}`: a variable name is letters, digits and `_`"));
            ok = false;
            continue;
        }
        let Some(m) = cx.map(v, &path, &["json", "header", "regex", "cookie"]) else {
            ok = false;
            continue;
        };
        let given: Vec<&str> = ["json", "header", "regex", "cookie"].into_iter().filter(|x| m.has(x)).collect();
        let [kind] = given.as_slice() else {
            cx.err(v.pos, format!("`{path}` takes exactly one of json, header, regex, cookie"));
            ok = false;
            continue;
        };
        let n = m.get(kind)?;
        let Some(t) = cx.text(n, &format!("{path}.{kind}")) else {
            ok = false;
            continue;
        };
        let e = match *kind {
            "json" => json_path(t).map(Extract::Json),
            "header" => Ok(Extract::Header(t.to_ascii_lowercase())),
            "cookie" => Ok(Extract::Cookie(t.to_string())),
            _ => regex_lite::RegexBuilder::new(t)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(|_| Extract::Regex(t.to_string()))
                .map_err(|e| format!("not a valid pattern: {e}")),
        };
        match e {
            Ok(e) => out.push((k.text.clone(), e)),
            Err(m) => {
                cx.err(n.pos, format!("`{path}.{kind}`: {m}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
