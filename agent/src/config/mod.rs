//! `agent.yaml`: what the daemon reads, where it keeps state, where it listens.
//!
//! Parsed with the same position-keeping YAML reader as the SLO specs, so a
//! mistake is reported as `file:line:col: message`, all of them at once.
//!
//! ```yaml
//! specs: [slo-specs]                 # files or directories, relative to this file
//! state: /var/lib/slo-agent/state.redb
//! listen: 127.0.0.1:9464
//! api:                               # tokens and roles for protected endpoints (docs/api.md)
//!   tokens: [{name: oncall-bot, role: silence, token_file: /etc/slo-agent/tokens/oncall}]
//! tick: 5s                           # how often every SLO is evaluated
//! poll_interval: 500ms               # how often sources look for new data
//! max_future: 5m                     # events further ahead of the clock are dropped and counted
//! push_timeout: 30s                  # how long a push request waits for its delivery to be committed
//! github: {app_id: 123456, private_key_file: github-app.pem, webhook_secret_file: github-secret}
//!                                    # GitHub deployment protection rules (docs/deploy-gates.md)
//! freeze: {source: prometheus, prometheus: {url: "http://prometheus:9090"}}
//!                                    # the fleet's freeze answer (docs/deploy-gates.md)
//! signals:                           # live series, business events, anomaly alerts, quotas (docs/forecasts.md)
//!   business: [{name: checkout_confirmed, method: POST, path: /checkout/confirm, status: 2xx}]
//! outage: {window: 10m, total_share: 0.9}  # "is it partial or total?" (docs/operations.md)
//! export:                           # push the SLO figures out (docs/export.md, docs/cloudwatch.md)
//!   otlp: {endpoint: "http://otel-collector:4318"}
//!   cloudwatch: {mode: emf, namespace: SloAgent, interval: 60s}
//! sources:
//!   - name: cloudfront
//!     type: file
//!     paths: ["/var/log/cloudfront/*.log", "/var/log/cloudfront/*.gz"]
//!     format: cloudfront             # auto | cloudfront | ndjson
//!     service: shop                  # for records that name no service
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::source::SourceConfig;
use crate::spec::Diagnostic;
use crate::yaml::fields::Ctx;
use crate::yaml::values::{parse_duration, resolve};
use crate::yaml::{self, Node};

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub specs: Vec<PathBuf>,
    pub state: PathBuf,
    pub listen: SocketAddr,
    /// API tokens and roles (`api:`); none by default.
    pub api: crate::auth::ApiConfig,
    pub tick: Duration,
    pub poll_interval: Duration,
    pub max_future: Duration,
    /// How long a push request waits for its delivery to be committed.
    pub push_timeout: Duration,
    /// Route templates for events whose hop names no route.
    pub routes: RouteConfig,
    /// The alert lifecycle's low-traffic guard and delays.
    pub alerts: crate::alert::AlertPolicy,
    /// Receivers and routes for notifications (`notify:`).
    pub notify: crate::notify::routing::NotifyConfig,
    /// Limits of the HTTP server (`http:`).
    pub http: HttpLimits,
    pub sources: Vec<SourceConfig>,
    /// GitHub custom deployment protection rules (`github:`); off without it.
    pub github: Option<crate::gate::github::GithubConfig>,
    /// Where the freeze answer's figures come from (`freeze:`): this
    /// agent's own, or the fleet's from Prometheus.
    pub freeze: crate::fleet::FreezeConfig,
    /// Hop probes and journeys (`probes:`, `journeys:`), and the region
    /// this agent labels their results with (`region:`).
    pub synthetic: crate::synthetic::SyntheticConfig,
    /// Where the SLO figures are pushed besides `/metrics` (`export:`): OTLP, CloudWatch.
    pub export: crate::export::ExportConfig,
    /// Live signals, business events, anomaly alerts and quotas (`signals:`).
    pub signals: crate::signals::config::SignalsConfig,
    /// The thresholds of the outage verdict (`outage:`).
    pub outage: crate::outage::OutageConfig,
    /// Alert severities whose SLO alerts open incidents (`incidents.open_on`; default page).
    pub incidents_open_on: std::collections::BTreeSet<crate::spec::model::Severity>,
    /// The public status page (`status:`); `None`: `/status` says it is not configured.
    pub status: Option<crate::status::StatusConfig>,
    /// Where the status page's component states and incidents are pushed (`status.push`).
    pub status_push: Option<crate::status::push::StatusPushConfig>,
}

/// Limits of the HTTP server (`http:` in agent.yaml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// A connection that has not sent a request's headers within this time
    /// is closed (a keep-alive connection idle this long too).
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// Requests in flight per route class (`api`; `metrics` gets a quarter,
    /// at least 2; `push` four times the push sources' decoding permits).
    pub max_in_flight: usize,
    /// Push requests read, inflated and decoded at once.
    pub max_push_in_flight: usize,
    /// From SIGTERM to exit, whatever the open connections do.
    pub shutdown_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 256,
            max_in_flight: 64,
            max_push_in_flight: crate::source::push::DEFAULT_MAX_CONCURRENT,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// `routes:`: how paths become route templates (`docs/dimensions.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub patterns: Vec<crate::dims::SegmentPattern>,
    pub max_routes: usize,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig { patterns: crate::dims::RouteTemplater::default_patterns(), max_routes: DEFAULT_MAX_ROUTES }
    }
}

impl RouteConfig {
    pub fn templater(&self) -> crate::dims::RouteTemplater {
        crate::dims::RouteTemplater::new(self.patterns.clone(), self.max_routes)
    }
}

/// Distinct route templates kept before new ones fold into `other`.
pub const DEFAULT_MAX_ROUTES: usize = 1000;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<AgentConfig, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic { file: file.clone(), line: 1, col: 1, message: format!("cannot read the config: {e}") }]
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&file, &text, &base)
}

/// Validate config text; relative paths are resolved against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<AgentConfig, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let parsed = yaml::parse(text);
    for e in &parsed.errors {
        diags.push(Diagnostic { file: file.to_string(), line: e.pos.line, col: e.pos.col, message: e.message.clone() });
    }
    let root = match parsed.documents.iter().filter_map(|d| d.root.as_ref()).collect::<Vec<_>>().as_slice() {
        [one] => (*one).clone(),
        [] => {
            if diags.is_empty() {
                diags.push(Diagnostic { file: file.into(), line: 1, col: 1, message: "the config is empty".into() });
            }
            return Err(diags);
        }
        [_, second, ..] => {
            diags.push(Diagnostic {
                file: file.into(),
                line: second.pos.line,
                col: second.pos.col,
                message: "the config must be a single YAML document".into(),
            });
            return Err(diags);
        }
    };
    let mut cx = Ctx { file, diags: &mut diags };
    let cfg = read_root(&mut cx, &root, base);
    if diags.is_empty() { cfg.ok_or_else(Vec::new) } else { Err(diags) }
}

fn read_root(cx: &mut Ctx<'_>, root: &Node, base: &Path) -> Option<AgentConfig> {
    let allowed = [
        "specs",
        "state",
        "listen",
        "api",
        "tick",
        "poll_interval",
        "max_future",
        "push_timeout",
        "routes",
        "alerts",
        "notify",
        "http",
        "sources",
        "github",
        "freeze",
        "region",
        "probes",
        "journeys",
        "traces",
        "certificates",
        "export",
        "signals",
        "outage",
        "incidents",
        "status",
    ];
    let f = cx.map(root, "config", &allowed)?;
    let mut specs = Vec::new();
    if let Some(n) = f.require(cx, "specs") {
        for item in cx.one_or_many(n, "specs") {
            if let Some(t) = cx.text(item, "specs") {
                specs.push(resolve(base, t));
            }
        }
    }
    let state = f.require(cx, "state").and_then(|n| cx.text(n, "state")).map(|t| resolve(base, t));
    let listen = match f.get("listen") {
        Some(n) => cx.text(n, "listen").and_then(|t| match t.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                cx.err(n.pos, format!("`listen` must be an address and port such as {DEFAULT_LISTEN}, found `{t}`"));
                None
            }
        }),
        None => DEFAULT_LISTEN.parse().ok(),
    };
    let api = match f.get("api") {
        None => Some(crate::auth::ApiConfig::default()),
        Some(n) => crate::auth::config::read_api(cx, n, base),
    };
    let tick = duration_field(cx, &f, "tick", Duration::from_secs(5));
    let poll_interval = duration_field(cx, &f, "poll_interval", Duration::from_millis(500));
    let max_future = duration_field(cx, &f, "max_future", Duration::from_secs(300));
    let push_timeout = duration_field(cx, &f, "push_timeout", Duration::from_secs(30));
    let routes = match f.get("routes") {
        None => Some(RouteConfig::default()),
        Some(n) => read_routes(cx, n),
    };
    let alerts = match f.get("alerts") {
        None => Some(crate::alert::AlertPolicy::default()),
        Some(n) => read_alerts(cx, n),
    };
    let notify = match f.get("notify") {
        None => Some(crate::notify::routing::NotifyConfig {
            max_outbox: crate::notify::routing::DEFAULT_MAX_OUTBOX,
            ..Default::default()
        }),
        Some(n) => crate::notify::config::read_notify(cx, n, base),
    };
    let http = match f.get("http") {
        None => Some(HttpLimits::default()),
        Some(n) => read_http(cx, n),
    };
    let github = match f.get("github") {
        None => Some(None),
        Some(n) => crate::gate::github::config::read_github(cx, n, base).map(Some),
    };
    let freeze = match f.get("freeze") {
        None => Some(crate::fleet::FreezeConfig::default()),
        Some(n) => crate::fleet::config::read_freeze(cx, n, base),
    };
    let synthetic = crate::synthetic::config::read(cx, &f, base);
    let export = match f.get("export") {
        None => Some(crate::export::ExportConfig::default()),
        Some(n) => crate::export::read_config(cx, n, base),
    };
    let signals = match f.get("signals") {
        None => Some(crate::signals::config::SignalsConfig::default()),
        Some(n) => crate::signals::config::read_signals(cx, n),
    };
    let outage = match f.get("outage") {
        None => Some(crate::outage::OutageConfig::default()),
        Some(n) => crate::outage::config::read_outage(cx, n),
    };
    let incidents_open_on = match f.get("incidents") {
        None => Some([crate::spec::model::Severity::Page].into()),
        Some(n) => read_incidents(cx, n),
    };
    let status = match f.get("status") {
        None => Some(None),
        Some(n) => {
            let journeys: Option<Vec<(&str, &str)>> =
                synthetic.as_ref().map(|s| s.journeys.iter().map(|j| (j.name.as_str(), j.service.as_str())).collect());
            crate::status::config::read(cx, n, journeys.as_deref()).map(Some)
        }
    };
    let status_push = match (f.get("status").and_then(|n| child(n, "push")), &status) {
        (None, _) => Some(None),
        (Some(n), Some(Some(s))) => {
            let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
            crate::status::push_config::read(cx, n, base, &names).map(Some)
        }
        // `status:` has errors of its own, reported already.
        (Some(_), _) => None,
    };
    let mut sources = Vec::new();
    // An agent that only probes (one per region, say) reads no logs.
    let probes_only = f.get("probes").is_some() || f.get("journeys").is_some();
    let sources_node = if probes_only { f.get("sources") } else { f.require(cx, "sources") };
    if let Some(n) = sources_node
        && let Some(items) = cx.list(n, "sources")
    {
        let mut names: Vec<(String, yaml::Pos)> = Vec::new();
        for item in items {
            if let Some(s) = crate::source::config::read(cx, item, base) {
                if let Some((_, first)) = names.iter().find(|(n, _)| n == s.name()) {
                    cx.err(item.pos, format!("duplicate source name `{}` (first at line {})", s.name(), first.line));
                }
                names.push((s.name().to_string(), item.pos));
                sources.push(s);
            }
        }
    }
    // Links in notifications point at the API as it is served.
    let scheme = if api.as_ref().is_some_and(|a| a.tls.is_some()) { "https" } else { "http" };
    Some(AgentConfig {
        specs,
        state: state?,
        listen: listen?,
        api: api?,
        tick: tick?,
        poll_interval: poll_interval?,
        max_future: max_future?,
        push_timeout: push_timeout?,
        routes: routes?,
        alerts: alerts?,
        http: http?,
        notify: notify.map(|mut n| {
            if n.external_url.is_empty() {
                n.external_url =
                    format!("{scheme}://{}", listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid")));
            }
            n
        })?,
        sources,
        github: github?,
        freeze: freeze?,
        synthetic: synthetic?,
        export: export?,
        signals: signals?,
        outage: outage?,
        incidents_open_on: incidents_open_on?,
        status: status?,
        status_push: status_push?,
    })
}

/// The value of `key` in the map `node`.
fn child<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        yaml::Value::Map(entries) => entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
        _ => None,
    }
}

/// `incidents: {open_on: [page]}`: which alert severities open incidents
/// (`[]`: none; `[page, ticket]`: both).
fn read_incidents(cx: &mut Ctx<'_>, node: &Node) -> Option<std::collections::BTreeSet<crate::spec::model::Severity>> {
    use crate::spec::model::Severity;
    let f = cx.map(node, "incidents", &["open_on"])?;
    let Some(n) = f.get("open_on") else { return Some([Severity::Page].into()) };
    let mut out = std::collections::BTreeSet::new();
    let mut ok = true;
    for item in cx.list(n, "open_on")? {
        match cx.text(item, "open_on") {
            Some("page") => {
                out.insert(Severity::Page);
            }
            Some("ticket") => {
                out.insert(Severity::Ticket);
            }
            Some(t) => {
                cx.err(item.pos, format!("`open_on` holds alert severities, page or ticket, found `{t}`"));
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn duration_field(
    cx: &mut Ctx<'_>,
    f: &crate::yaml::fields::Fields<'_>,
    key: &str,
    default: Duration,
) -> Option<Duration> {
    match f.get(key) {
        None => Some(default),
        Some(n) => {
            let t = cx.text(n, key)?;
            match parse_duration(t) {
                Some(d) if !d.is_zero() => Some(d),
                _ => {
                    cx.err(n.pos, format!("`{key}` must be a positive duration such as 500ms, 5s, 1m, found `{t}`"));
                    None
                }
            }
        }
    }
}

/// `routes: {patterns: [number, uuid, hex:16, token:20, prefix:order-], max_routes: 1000}`.
fn read_routes(cx: &mut Ctx<'_>, node: &Node) -> Option<RouteConfig> {
    use crate::dims::SegmentPattern;
    let f = cx.map(node, "routes", &["patterns", "max_routes"])?;
    let mut ok = true;
    let patterns = match f.get("patterns") {
        None => crate::dims::RouteTemplater::default_patterns(),
        Some(n) => {
            let mut out = Vec::new();
            for item in cx.one_or_many(n, "patterns") {
                let Some(t) = cx.text(item, "patterns") else {
                    ok = false;
                    continue;
                };
                let (kind, arg) = t.split_once(':').map_or((t, None), |(k, a)| (k, Some(a)));
                let len = |default: usize| match arg {
                    None => Some(default),
                    Some(a) => a.parse::<usize>().ok().filter(|n| (1..=256).contains(n)),
                };
                let p = match kind {
                    "number" if arg.is_none() => Some(SegmentPattern::Number),
                    "uuid" if arg.is_none() => Some(SegmentPattern::Uuid),
                    "hex" => len(16).map(|min_len| SegmentPattern::Hex { min_len }),
                    "token" => len(20).map(|min_len| SegmentPattern::Token { min_len }),
                    "prefix" => arg
                        .filter(|a| !a.is_empty() && !a.contains('/'))
                        .map(|a| SegmentPattern::PrefixedNumber { prefix: a.to_string() }),
                    _ => None,
                };
                match p {
                    Some(p) => out.push(p),
                    None => {
                        ok = false;
                        cx.err(
                            item.pos,
                            format!(
                                "unknown route pattern `{t}`; expected number, uuid, hex[:MIN_LEN], token[:MIN_LEN] or prefix:TEXT"
                            ),
                        );
                    }
                }
            }
            out
        }
    };
    let max_routes = match f.get("max_routes") {
        None => Some(DEFAULT_MAX_ROUTES),
        Some(n) => cx.number(n, "max_routes").and_then(|v| {
            if (1.0..=100_000.0).contains(&v) && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, "`max_routes` must be a whole number from 1 to 100000");
                None
            }
        }),
    };
    if !ok {
        return None;
    }
    Some(RouteConfig { patterns, max_routes: max_routes? })
}

/// `http: {header_read_timeout: 5s, max_connections: 256, max_in_flight: 64,
/// max_push_in_flight: 4, shutdown_timeout: 10s}`.
fn read_http(cx: &mut Ctx<'_>, node: &Node) -> Option<HttpLimits> {
    let d = HttpLimits::default();
    let keys = ["header_read_timeout", "max_connections", "max_in_flight", "max_push_in_flight", "shutdown_timeout"];
    let f = cx.map(node, "http", &keys)?;
    let header_read_timeout = duration_field(cx, &f, "header_read_timeout", d.header_read_timeout);
    let shutdown_timeout = duration_field(cx, &f, "shutdown_timeout", d.shutdown_timeout);
    let mut count = |key: &str, default: usize, max: usize| match f.get(key) {
        None => Some(default),
        Some(n) => cx.number(n, key).and_then(|v| {
            if v >= 1.0 && v <= max as f64 && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, format!("`http.{key}` must be a whole number from 1 to {max}"));
                None
            }
        }),
    };
    let max_connections = count("max_connections", d.max_connections, 100_000);
    let max_in_flight = count("max_in_flight", d.max_in_flight, 10_000);
    let max_push_in_flight = count("max_push_in_flight", d.max_push_in_flight, 1_000);
    Some(HttpLimits {
        header_read_timeout: header_read_timeout?,
        max_connections: max_connections?,
        max_in_flight: max_in_flight?,
        max_push_in_flight: max_push_in_flight?,
        shutdown_timeout: shutdown_timeout?,
    })
}

/// `alerts: {min_events: 100, pending_for: 0s, resolve_after: 5m}`.
fn read_alerts(cx: &mut Ctx<'_>, node: &Node) -> Option<crate::alert::AlertPolicy> {
    let d = crate::alert::AlertPolicy::default();
    let f = cx.map(node, "alerts", &["min_events", "pending_for", "resolve_after"])?;
    let min_events = match f.get("min_events") {
        None => Some(d.min_events),
        Some(n) => cx.number(n, "min_events").and_then(|v| {
            if (0.0..=1e12).contains(&v) && v.fract() == 0.0 {
                Some(v as u64)
            } else {
                cx.err(n.pos, "`min_events` must be a whole number of events, 0 or more");
                None
            }
        }),
    };
    let mut duration = |key: &str, default: Duration| match f.get(key) {
        None => Some(default),
        Some(n) => {
            let t = cx.text(n, key)?;
            let parsed = if t.trim() == "0" { Some(Duration::ZERO) } else { parse_duration(t) };
            if parsed.is_none() {
                cx.err(n.pos, format!("`{key}` must be a duration such as 0s, 2m or 1h, found `{t}`"));
            }
            parsed
        }
    };
    let pending_for = duration("pending_for", d.pending_for);
    let resolve_after = duration("resolve_after", d.resolve_after);
    Some(crate::alert::AlertPolicy {
        min_events: min_events?,
        pending_for: pending_for?,
        resolve_after: resolve_after?,
    })
}

#[cfg(test)]
mod api_tests;

#[cfg(test)]
mod aws_tests;

#[cfg(test)]
mod export_tests;

#[cfg(test)]
mod freeze_tests;
#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod synthetic_tests;

#[cfg(test)]
mod notify_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Format;

    fn errs(text: &str) -> Vec<String> {
        parse("agent.yaml", text, Path::new("/etc/slo")).unwrap_err().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn full_config() {
        let c = parse(
            "agent.yaml",
            "specs: [slo-specs]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1s\nsources:\n  - name: cf\n    type: file\n    paths: [\"logs/*.log\"]\n    format: cloudfront\n    service: shop\n",
            Path::new("/etc/slo"),
        )
        .unwrap();
        assert_eq!(c.specs, vec![PathBuf::from("/etc/slo/slo-specs")]);
        assert_eq!(c.state, PathBuf::from("/etc/slo/state.redb"));
        assert_eq!(c.tick, Duration::from_secs(1));
        assert_eq!(c.poll_interval, Duration::from_millis(500));
        let SourceConfig::File { file } = &c.sources[0] else { panic!("a file source") };
        assert_eq!(file.paths, vec!["/etc/slo/logs/*.log".to_string()]);
        assert_eq!(file.format, Format::CloudFront);
    }

    #[test]
    fn every_problem_with_position() {
        let e = errs(
            "specs: [a]\nstate: s\nlisten: nowhere\ntick: 5x\nsourcez: []\nsources:\n  - name: a\n    type: kafka\n    paths: [x]\n",
        );
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:3:9: `listen`")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:4:7: `tick`")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:5:1: unknown field `sourcez`")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:8:11: unknown source type `kafka`")), "{e:?}");
    }

    #[test]
    fn realtime_format_needs_a_field_list() {
        let e = errs(
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    format: cloudfront-realtime\n",
        );
        assert!(
            e.iter().any(|m| m.starts_with("agent.yaml:7:13: `format: cloudfront-realtime` needs `fields`")),
            "{e:?}"
        );
        let e = errs(
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    format: cloudfront\n    fields: [timestamp]\n",
        );
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:8:13: `fields` is only for")), "{e:?}");
        let e = errs(
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    format: cloudfront-realtime\n    fields: [timestamp, sc-statuz]\n",
        );
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:8:13: ") && m.contains("sc-statuz")), "{e:?}");
        let c = parse(
            "agent.yaml",
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    format: cloudfront-realtime\n    fields: [timestamp, sc-status]\n",
            Path::new("/"),
        )
        .unwrap();
        let SourceConfig::File { file } = &c.sources[0] else { panic!("a file source") };
        assert_eq!(file.fields, vec!["timestamp".to_string(), "sc-status".to_string()]);
    }

    #[test]
    fn fingerprint_bytes() {
        let c = parse(
            "a.yaml",
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    fingerprint_bytes: 4096\n",
            Path::new("/etc/slo"),
        )
        .unwrap();
        let SourceConfig::File { file } = &c.sources[0] else { panic!("not a file source") };
        assert_eq!(file.fingerprint_bytes, 4096);
        let e = errs(
            "specs: [a]\nstate: s\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    fingerprint_bytes: 10\n",
        );
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:7:24: `fingerprint_bytes` must be")), "{e:?}");
    }

    #[test]
    fn route_patterns() {
        use crate::dims::SegmentPattern;
        let c = parse(
            "agent.yaml",
            "specs: [a]\nstate: s\nroutes: {patterns: [number, \"hex:8\", \"prefix:order-\"], max_routes: 50}\nsources: []\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            c.routes.patterns,
            vec![
                SegmentPattern::Number,
                SegmentPattern::Hex { min_len: 8 },
                SegmentPattern::PrefixedNumber { prefix: "order-".into() }
            ]
        );
        assert_eq!(c.routes.templater().template("/o/order-12/ab12cd34"), "/o/order-{id}/{hex}");
        let e = errs("specs: [a]\nstate: s\nroutes: {patterns: [number, regex], max_routes: 0}\nsources: []\n");
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:3:29: unknown route pattern `regex`")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("agent.yaml:3:49: `max_routes` must be")), "{e:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1w"), Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    #[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
    fn short_push_tokens_and_plain_http_slack_urls_are_refused() {
        // SAFETY: these variable names are unique to this test.
        unsafe {
            std::env::set_var("SLO_AGENT_TEST_SHORT_PUSH_TOKEN", "short");
            std::env::set_var("SLO_AGENT_TEST_SLACK_HTTP", "http://hooks.slack.example/T/B/x");
        }
        let e = errs(
            "specs: [s]\nstate: st\nsources:\n  - {name: fh, type: firehose, token_env: SLO_AGENT_TEST_SHORT_PUSH_TOKEN}\n",
        );
        assert_eq!(
            e,
            [
                "agent.yaml:4:43: the Firehose access key is shorter than 16 characters; make one with `openssl rand -hex 32`"
            ]
        );
        let e = errs(
            "specs: [s]\nstate: st\nsources: []\nnotify:\n  receivers:\n    - {name: team, type: slack, webhook_url_env: SLO_AGENT_TEST_SLACK_HTTP}\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].ends_with("the Slack webhook URL must start with https://"), "{e:?}");
    }

    #[test]
    fn the_outage_section() {
        let base = "specs: [s]\nstate: st\nsources: []\n";
        let c = parse("agent.yaml", base, Path::new("/x")).unwrap();
        assert_eq!(c.outage, crate::outage::OutageConfig::default());
        let text = format!(
            "{base}outage: {{window: 5m, baseline: 2h, min_requests: 50, failing_success_ratio: 0.95, drop_from_baseline: 0.1, total_share: 0.8}}\n"
        );
        let o = parse("agent.yaml", &text, Path::new("/x")).unwrap().outage;
        assert_eq!((o.window_minutes, o.baseline_minutes, o.min_requests), (5, 120, 50));
        assert_eq!((o.failing_success_ratio, o.drop_from_baseline, o.total_share), (0.95, 0.1, 0.8));
        let e = errs(&format!("{base}outage:\n  window: 90s\n  total_share: 2\n  min_requests: 0\n  shape: x\n"));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|e| e.starts_with("agent.yaml:5:11: `outage.window` must be whole minutes")), "{e:?}");
        assert!(e.iter().any(|e| e.starts_with("agent.yaml:6:16: `outage.total_share` must be above 0")), "{e:?}");
        let e = errs(&format!("{base}outage: {{window: 5h, baseline: 2h}}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
    }

    /// The shipped example must not expose the API: loopback, or every read
    /// needs a token.
    #[test]
    fn the_shipped_example_is_safe() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = parse("agent.yaml", &text, Path::new("/etc/slo-agent")).unwrap_or_else(|d| panic!("{d:?}"));
        assert!(c.listen.ip().is_loopback() || c.api.read_requires_token, "{:?}", c.listen);
        // Its live-signal example is read as written.
        assert_eq!((c.signals.lateness_ms, c.signals.business.len(), c.signals.alerts.len()), (600_000, 1, 2));
        assert_eq!(c.signals.quotas.functions.get("checkout-fn"), Some(&200.0));
    }
}
