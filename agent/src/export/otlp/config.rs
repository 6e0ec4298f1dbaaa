//! `export.otlp` of `agent.yaml`.
//!
//! ```yaml
//! export:
//!   otlp:
//!     endpoint: http://otel-collector:4318      # OTLP/HTTP: `/v1/metrics` is added to a bare host
//!     protocol: http                            # http (protobuf, default) | grpc (endpoint http://collector:4317)
//!     temporality: cumulative                   # cumulative (default) | delta
//!     compression: none                         # none (default) | gzip
//!     interval: 60s                             # how often the figures are sent
//!     timeout: 10s                              # one export, retries included
//!     headers:                                  # `NAME: value`, `NAME_file: path`, `NAME_env: VAR`
//!       authorization_file: /run/secrets/otlp-authorization
//!     resource: {deployment.environment.name: prod}
//! ```

use std::path::Path;
use std::time::Duration;

use crate::synthetic::Text;
use crate::synthetic::config::duration;
use crate::yaml::fields::Ctx;
use crate::yaml::{Node, Value};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra resource attributes, at most.
pub const MAX_RESOURCE_ATTRIBUTES: usize = 64;

/// How the figures travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`), `POST …/v1/metrics`.
    Http,
    /// OTLP/gRPC, `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
    Grpc,
}

/// What a counter's data point holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// The total since the agent started; a lost export loses nothing.
    Cumulative,
    /// The increase since the previous export (Datadog's preference); a
    /// failed export loses its increase.
    Delta,
}

/// `export.otlp` in `agent.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The URL requests go to: for HTTP the whole metrics URL
    /// (`http://collector:4318/v1/metrics`), for gRPC the server's
    /// (`http://collector:4317`).
    pub endpoint: String,
    pub protocol: Protocol,
    pub temporality: Temporality,
    pub interval: Duration,
    /// Bodies gzip-compressed.
    pub gzip: bool,
    /// The bound of one export, its retries included.
    pub timeout: Duration,
    /// Request headers (gRPC metadata), lower case; values from files or
    /// the environment are read again at every export.
    pub headers: Vec<(String, Text)>,
    /// Resource attributes that override every other source of them.
    pub resource: Vec<(String, String)>,
}

const KEYS: &[&str] =
    &["endpoint", "protocol", "temporality", "compression", "interval", "timeout", "headers", "resource"];

/// Read `export.otlp`; every problem is reported at its place.
pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<OtlpConfig> {
    let f = cx.map(node, "export.otlp", KEYS)?;
    let protocol = match f.get("protocol") {
        None => Some(Protocol::Http),
        Some(n) => match cx.text(n, "export.otlp.protocol")? {
            "http" | "http/protobuf" => Some(Protocol::Http),
            "grpc" => Some(Protocol::Grpc),
            other => {
                cx.err(n.pos, format!("`export.otlp.protocol` must be http or grpc, found `{other}`"));
                None
            }
        },
    };
    let temporality = match f.get("temporality") {
        None => Some(Temporality::Cumulative),
        Some(n) => match cx.text(n, "export.otlp.temporality")? {
            "cumulative" => Some(Temporality::Cumulative),
            "delta" => Some(Temporality::Delta),
            other => {
                cx.err(n.pos, format!("`export.otlp.temporality` must be cumulative or delta, found `{other}`"));
                None
            }
        },
    };
    let gzip = match f.get("compression") {
        None => Some(false),
        Some(n) => match cx.text(n, "export.otlp.compression")? {
            "none" => Some(false),
            "gzip" => Some(true),
            other => {
                cx.err(n.pos, format!("`export.otlp.compression` must be none or gzip, found `{other}`"));
                None
            }
        },
    };
    let endpoint = f.require(cx, "endpoint").and_then(|n| {
        let t = cx.text(n, "export.otlp.endpoint")?;
        let e = endpoint(t, protocol.unwrap_or(Protocol::Http));
        if let Err(m) = &e {
            cx.err(n.pos, m.clone());
        }
        e.ok()
    });
    let interval = duration(cx, &f, "interval", DEFAULT_INTERVAL, Duration::from_secs(1), Duration::from_secs(3600));
    let timeout = duration(cx, &f, "timeout", DEFAULT_TIMEOUT, Duration::from_millis(100), Duration::from_secs(60));
    let headers = match f.get("headers") {
        None => Some(Vec::new()),
        Some(n) => headers(cx, n, base),
    };
    let resource = match f.get("resource") {
        None => Some(Vec::new()),
        Some(n) => resource(cx, n),
    };
    Some(OtlpConfig {
        endpoint: endpoint?,
        protocol: protocol?,
        temporality: temporality?,
        interval: interval?,
        gzip: gzip?,
        timeout: timeout?,
        headers: headers?,
        resource: resource?,
    })
}

/// The URL exports go to, from what the config says.
fn endpoint(t: &str, protocol: Protocol) -> Result<String, String> {
    let example = match protocol {
        Protocol::Http => "http://otel-collector:4318 or https://otlp.example.com/otlp/v1/metrics",
        Protocol::Grpc => "http://otel-collector:4317",
    };
    let bad = || format!("`export.otlp.endpoint` must be an http(s) URL such as {example}, found `{t}`");
    let u = url::Url::parse(t.trim()).map_err(|_| bad())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() || u.fragment().is_some() {
        return Err(bad());
    }
    // Keys in a URL end up in logs and error messages; headers do not.
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() {
        return Err(
            "`export.otlp.endpoint` must carry no credentials or query; put keys in `headers` (from a file or the environment)"
                .into(),
        );
    }
    match protocol {
        // A collector's base URL gets the metrics path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
        Protocol::Http if u.path() == "/" => Ok(format!("{}v1/metrics", u.as_str())),
        Protocol::Http => Ok(u.as_str().to_string()),
        Protocol::Grpc if u.path() == "/" => Ok(u.as_str().trim_end_matches('/').to_string()),
        Protocol::Grpc => Err(format!(
            "`export.otlp.endpoint` of `protocol: grpc` is a server, without a path, such as {example}; found `{t}`"
        )),
    }
}

/// `headers:`: names valid as HTTP header names and gRPC metadata keys
/// (lower-cased); plain values checked now, the others at each export.
fn headers(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<Vec<(String, Text)>> {
    let map = crate::synthetic::config::text_map(cx, node, "export.otlp.headers", base, false)?;
    let Value::Map(entries) = &node.value else { return None };
    let mut ok = true;
    let mut out = Vec::with_capacity(map.len());
    for ((name, value), (key, v)) in map.into_iter().zip(entries) {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.ends_with("-bin") {
            cx.err(key.pos, format!("`export.otlp.headers`: `{name}` is not a header name (letters, digits, `-`)"));
            ok = false;
            continue;
        }
        if matches!(lower.as_str(), "content-type" | "content-length" | "content-encoding" | "te" | "host") {
            cx.err(key.pos, format!("`export.otlp.headers`: `{name}` is set by the exporter itself"));
            ok = false;
            continue;
        }
        if let Text::Plain(p) = &value
            && http::HeaderValue::from_str(p).is_err()
        {
            cx.err(v.pos, format!("`export.otlp.headers.{name}` is not a valid header value"));
            ok = false;
            continue;
        }
        if out.iter().any(|(o, _): &(String, Text)| *o == lower) {
            cx.err(key.pos, format!("`export.otlp.headers` sets `{lower}` twice"));
            ok = false;
            continue;
        }
        out.push((lower, value));
    }
    ok.then_some(out)
}

/// `resource:`: attribute names to text values.
fn resource(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, String)>> {
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`export.otlp.resource` must be a map, found {}", node.kind_name()));
        return None;
    };
    if entries.len() > MAX_RESOURCE_ATTRIBUTES {
        cx.err(node.pos, format!("`export.otlp.resource` holds at most {MAX_RESOURCE_ATTRIBUTES} attributes"));
        return None;
    }
    let mut ok = true;
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in entries {
        let name = k.text.trim();
        if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            cx.err(k.pos, format!("`export.otlp.resource`: `{}` is not an attribute name", k.text));
            ok = false;
            continue;
        }
        let Some(t) = cx.text(v, &format!("export.otlp.resource.{name}")) else {
            ok = false;
            continue;
        };
        if out.iter().any(|(o, _)| o == name) {
            cx.err(k.pos, format!("`export.otlp.resource` sets `{name}` twice"));
            ok = false;
            continue;
        }
        out.push((name.to_string(), t.to_string()));
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::fields::Ctx;

    fn parse(text: &str) -> Result<OtlpConfig, Vec<String>> {
        let parsed = crate::yaml::parse(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let root = parsed.documents.into_iter().next().and_then(|d| d.root).expect("one document");
        let mut diags = Vec::new();
        let mut cx = Ctx { file: "agent.yaml", diags: &mut diags };
        let out = read(&mut cx, &root, Path::new("/etc/slo-agent"));
        if diags.is_empty() {
            Ok(out.expect("no diagnostics means a config"))
        } else {
            Err(diags.iter().map(|d| d.to_string()).collect())
        }
    }

    #[test]
    fn defaults_and_the_metrics_path() {
        let c = parse("endpoint: http://collector:4318\n").unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/metrics");
        assert_eq!((c.protocol, c.temporality), (Protocol::Http, Temporality::Cumulative));
        assert_eq!((c.interval, c.timeout, c.gzip), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, false));
        let c = parse("endpoint: https://otlp.example.com/otlp/v1/metrics\n").unwrap();
        assert_eq!(c.endpoint, "https://otlp.example.com/otlp/v1/metrics");
        let c = parse(
            "endpoint: http://collector:4317/\nprotocol: grpc\ntemporality: delta\ninterval: 15s\ncompression: gzip\n",
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4317");
        assert!(c.gzip);
        assert_eq!(
            (c.protocol, c.temporality, c.interval),
            (Protocol::Grpc, Temporality::Delta, Duration::from_secs(15))
        );
    }

    /// The commented example in `deploy/agent.yaml` reads as it says.
    #[test]
    fn the_shipped_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let key = tempfile::NamedTempFile::new().unwrap();
        let block: String = text
            .lines()
            .skip_while(|l| !l.starts_with("#   otlp:"))
            .skip(1)
            .take_while(|l| l.starts_with("#     "))
            .map(|l| format!("{}\n", &l["#   ".len()..]))
            .collect();
        let block = block.replace("/run/secrets/otlp/authorization", &key.path().display().to_string());
        let c = parse(&block).unwrap_or_else(|e| panic!("{e:?} in\n{block}"));
        assert_eq!(c.endpoint, "http://otel-collector.observability:4318/v1/metrics");
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.resource, [("deployment.environment.name".to_string(), "prod".to_string())]);
    }

    #[test]
    #[allow(unsafe_code)] // the `unsafe` inside carries its SAFETY comment
    fn headers_and_resource() {
        // SAFETY: this variable name is unique to this test.
        unsafe { std::env::set_var("SLO_AGENT_TEST_OTLP_KEY", "k") };
        let c = parse(
            "endpoint: http://c:4318\nheaders: {X-Scope-OrgID: tenant-1, dd-api-key_env: SLO_AGENT_TEST_OTLP_KEY}\nresource: {deployment.environment.name: prod, team: sre}\n",
        )
        .unwrap();
        assert_eq!(
            c.headers,
            [
                ("x-scope-orgid".to_string(), Text::Plain("tenant-1".into())),
                ("dd-api-key".to_string(), Text::Env("SLO_AGENT_TEST_OTLP_KEY".into()))
            ]
        );
        assert_eq!(
            c.resource,
            [("deployment.environment.name".to_string(), "prod".to_string()), ("team".to_string(), "sre".to_string())]
        );
    }

    #[test]
    fn every_mistake_at_its_place() {
        let e = parse(
            "endpoint: ftp://c\nprotocol: thrift\ntemporality: sometimes\ninterval: 0s\ntimeout: 2m\nheaders: {\"bad header\": x, content-type: y, auth_env: SLO_AGENT_TEST_OTLP_UNSET}\nresource: {a: [1]}\nextra: 1\n",
        )
        .unwrap_err();
        let want = [
            "agent.yaml:8:1: unknown field `extra`",
            "agent.yaml:2:11: `export.otlp.protocol` must be http or grpc, found `thrift`",
            "agent.yaml:3:14: `export.otlp.temporality` must be cumulative or delta",
            "agent.yaml:1:11: `export.otlp.endpoint` must be an http(s) URL",
            "agent.yaml:4:11: `export.otlp.interval` must be a duration from 1s to 3600s",
            "agent.yaml:5:10: `export.otlp.timeout` must be a duration from 100ms to 60s",
            "agent.yaml:6:",
            "agent.yaml:7:15: `export.otlp.resource.a` must be a string",
        ];
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "no `{w}` in {e:#?}");
        }
        assert!(e.iter().any(|m| m.contains("SLO_AGENT_TEST_OTLP_UNSET") && m.contains("is not set")), "{e:#?}");
        let e = parse("endpoint: http://c:4317/v1/metrics\nprotocol: grpc\n").unwrap_err();
        assert!(e[0].starts_with("agent.yaml:1:11: `export.otlp.endpoint` of `protocol: grpc` is a server"), "{e:?}");
        for bad in ["https://user:pw@c:4318", "https://c/v1/metrics?api_key=x"] {
            let e = parse(&format!("endpoint: {bad}\n")).unwrap_err();
            assert!(e[0].contains("must carry no credentials or query"), "{e:?}");
        }
        let e = parse("headers: {content-type: x}\nendpoint: http://c\n").unwrap_err();
        assert_eq!(e, ["agent.yaml:1:11: `export.otlp.headers`: `content-type` is set by the exporter itself"]);
        let e = parse("endpoint: http://c\ncompression: zstd\n").unwrap_err();
        assert_eq!(e, ["agent.yaml:2:14: `export.otlp.compression` must be none or gzip, found `zstd`"]);
        let e = parse("protocol: http\n").unwrap_err();
        assert_eq!(e, ["agent.yaml:1:1: `export.otlp` is missing required field `endpoint`"]);
    }
}
