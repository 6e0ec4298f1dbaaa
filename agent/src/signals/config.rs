//! `signals:` in `agent.yaml`: the live series, business events, anomaly
//! alerts and quotas. Every key is optional; without the section the agent
//! watches its request signals with the defaults below and the AWS default
//! quotas.
//!
//! ```yaml
//! signals:
//!   lateness: 5m            # how long (event time) a minute stays open for late records
//!   idle_close: 15m         # with no records at all, minutes close by the clock after this
//!   max_series: 2000        # live series at most (more are counted and not created)
//!   max_edge_locations: 50  # per service; further edge locations fold into `other`
//!   min_events: 20          # a minute's ratio or percentile is scored with at least this many requests
//!   threshold: 0.6          # a score at or above opens an anomaly (and its evidence)
//!   top: 10                 # top client addresses, user agents, paths, ASNs reported (at most 50)
//!   business:
//!     - name: checkout_confirmed
//!       service: shop          # optional: any service
//!       method: POST           # optional: any method
//!       path: /checkout/confirm   # exact, or a prefix ending in `*`
//!       status: 2xx            # 2xx, 4xx, a code, or a list of them (default 2xx)
//!   alerts:                 # anomalies that alert (none by default)
//!     - {signal: business:checkout_confirmed, score: 0.7, for: 10m, severity: page}
//!     - {signal: forbidden_share, score: 0.8, severity: ticket}
//!   quotas:                 # defaults: the documented AWS default quotas
//!     horizon: 7d           # how far the saturation forecast looks
//!     alert_within: 3d      # a quota ticket when it is reached sooner at the forecast growth
//!     lambda_concurrency: 1000     # per account and region
//!     apigateway_rps: 10000        # per account and region
//!     cloudfront_rps: 250000       # per distribution
//!     cloudfront_bandwidth_gbps: 150   # per distribution
//!     functions: {checkout: 200}   # reserved concurrency per function (service)
//!     stages: {shop-api: 5000}     # stage throttle per API service
//!     distributions: {shop: {rps: 100000, bandwidth_gbps: 40}}
//!     accounts:                    # services of another account, with its quotas
//!       "210987654321": {services: [search], lambda_concurrency: 3000, apigateway_rps: 20000}
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::yaml::Node;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::parse_duration;

pub const DEFAULT_LATENESS: Duration = Duration::from_secs(300);
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(900);
pub const DEFAULT_MAX_SERVICES: usize = 2000;
pub const MAX_SERIES: usize = 100_000;
pub const DEFAULT_MAX_EDGES: usize = 50;
pub const DEFAULT_MIN_EVENTS: u64 = 20;
pub const DEFAULT_THRESHOLD: f64 = 0.6;
pub const DEFAULT_TOP: usize = 10;
pub const MAX_TOP: usize = 50;
pub const MAX_BUSINESS: usize = 64;

/// AWS default quotas (Service Quotas, as documented): Lambda concurrent
/// executions per account and region; API Gateway requests per second per
/// account and region; CloudFront requests per second and data transfer
/// rate per distribution.
pub const AWS_LAMBDA_CONCURRENCY: f64 = 1000.0;
pub const AWS_APIGATEWAY_RPS: f64 = 10_000.0;
pub const AWS_CLOUDFRONT_RPS: f64 = 250_000.0;
pub const AWS_CLOUDFRONT_GBPS: f64 = 150.0;

#[derive(Debug, Clone, PartialEq)]
pub struct SignalsConfig {
    pub lateness_ms: i64,
    pub idle_close_ms: i64,
    pub max_series: usize,
    pub max_edge_locations: usize,
    pub min_events: u64,
    pub threshold: f64,
    pub top: usize,
    pub business: Vec<BusinessSignal>,
    pub alerts: Vec<AnomalyAlert>,
    pub quotas: Quotas,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            lateness_ms: DEFAULT_LATENESS.as_millis() as i64,
            idle_close_ms: DEFAULT_IDLE_CLOSE.as_millis() as i64,
            max_series: DEFAULT_MAX_SERVICES,
            max_edge_locations: DEFAULT_MAX_EDGES,
            min_events: DEFAULT_MIN_EVENTS,
            threshold: DEFAULT_THRESHOLD,
            top: DEFAULT_TOP,
            business: Vec::new(),
            alerts: Vec::new(),
            quotas: Quotas::default(),
        }
    }
}

/// A count of matching requests per minute ("conversions").
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessSignal {
    pub name: String,
    pub service: Option<String>,
    /// Upper case.
    pub method: Option<String>,
    pub path: PathMatch,
    /// Inclusive ranges.
    pub status: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

impl BusinessSignal {
    pub fn matches(&self, service: &str, method: &str, path: &str, status: u16) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && match &self.path {
                PathMatch::Exact(p) => p == path,
                PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            }
            && self.status.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// An anomaly that alerts: a signal's score (any service, dimension `all`)
/// at or above `score` for `for_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyAlert {
    /// A signal name (`requests`, `business:checkout_confirmed`, …).
    pub signal: String,
    pub service: Option<String>,
    pub score: f64,
    pub for_ms: i64,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    pub horizon_ms: i64,
    pub alert_within_ms: i64,
    pub lambda_concurrency: f64,
    pub apigateway_rps: f64,
    pub cloudfront_rps: f64,
    pub cloudfront_bps: f64,
    pub functions: BTreeMap<String, f64>,
    pub stages: BTreeMap<String, f64>,
    /// Per distribution (service): requests per second, bits per second.
    pub distributions: BTreeMap<String, DistributionLimits>,
    pub accounts: Vec<Account>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            horizon_ms: 7 * 86_400_000,
            alert_within_ms: 3 * 86_400_000,
            lambda_concurrency: AWS_LAMBDA_CONCURRENCY,
            apigateway_rps: AWS_APIGATEWAY_RPS,
            cloudfront_rps: AWS_CLOUDFRONT_RPS,
            cloudfront_bps: AWS_CLOUDFRONT_GBPS * 1e9,
            functions: BTreeMap::new(),
            stages: BTreeMap::new(),
            distributions: BTreeMap::new(),
            accounts: Vec::new(),
        }
    }
}

/// A distribution's own quotas: requests per second, bits per second.
pub type DistributionLimits = (Option<f64>, Option<f64>);

/// Services that run in another account than the agent's default one.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub services: Vec<String>,
    pub lambda_concurrency: f64,
    pub apigateway_rps: f64,
}

/// The account that runs `service` (`default` unless `quotas.accounts` names it).
impl Quotas {
    pub fn account_of(&self, service: &str) -> &str {
        self.accounts.iter().find(|a| a.services.iter().any(|s| s == service)).map_or("default", |a| a.id.as_str())
    }

    pub fn account_limits(&self, account: &str) -> (f64, f64) {
        match self.accounts.iter().find(|a| a.id == account) {
            Some(a) => (a.lambda_concurrency, a.apigateway_rps),
            None => (self.lambda_concurrency, self.apigateway_rps),
        }
    }
}

fn duration_ms(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: Duration) -> Option<i64> {
    match f.get(key) {
        None => Some(default.as_millis() as i64),
        Some(n) => {
            let t = cx.text(n, &f.path(key))?;
            match parse_duration(t) {
                Some(d) if !d.is_zero() && d <= Duration::from_secs(366 * 86_400) => Some(d.as_millis() as i64),
                _ => {
                    cx.err(n.pos, format!("`{}` must be a duration such as 5m or 3d, found `{t}`", f.path(key)));
                    None
                }
            }
        }
    }
}

fn positive(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: f64, max: f64) -> Option<f64> {
    match f.get(key) {
        None => Some(default),
        Some(n) => {
            let v = cx.number(n, &f.path(key))?;
            if v > 0.0 && v <= max {
                Some(v)
            } else {
                cx.err(n.pos, format!("`{}` must be above 0 and at most {max}, found {v}", f.path(key)));
                None
            }
        }
    }
}

fn count(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: usize, max: usize) -> Option<usize> {
    positive(cx, f, key, default as f64, max as f64).map(|v| v as usize)
}

pub fn read_signals(cx: &mut Ctx<'_>, node: &Node) -> Option<SignalsConfig> {
    let keys = [
        "lateness",
        "idle_close",
        "max_series",
        "max_edge_locations",
        "min_events",
        "threshold",
        "top",
        "business",
        "alerts",
        "quotas",
    ];
    let f = cx.map(node, "signals", &keys)?;
    let d = SignalsConfig::default();
    let lateness_ms = duration_ms(cx, &f, "lateness", DEFAULT_LATENESS);
    let idle_close_ms = duration_ms(cx, &f, "idle_close", DEFAULT_IDLE_CLOSE);
    let max_series = count(cx, &f, "max_series", d.max_series, MAX_SERIES);
    let max_edge_locations = count(cx, &f, "max_edge_locations", d.max_edge_locations, 1000);
    let min_events = count(cx, &f, "min_events", d.min_events as usize, 1_000_000).map(|v| v as u64);
    let threshold = positive(cx, &f, "threshold", d.threshold, 1.0);
    let top = count(cx, &f, "top", d.top, MAX_TOP);
    let business = match f.get("business") {
        None => Some(Vec::new()),
        Some(n) => read_business(cx, n),
    };
    let alerts = match f.get("alerts") {
        None => Some(Vec::new()),
        Some(n) => read_alerts(cx, n, business.as_deref().unwrap_or(&[])),
    };
    let quotas = match f.get("quotas") {
        None => Some(Quotas::default()),
        Some(n) => read_quotas(cx, n),
    };
    Some(SignalsConfig {
        lateness_ms: lateness_ms?,
        idle_close_ms: idle_close_ms?,
        max_series: max_series?,
        max_edge_locations: max_edge_locations?,
        min_events: min_events?,
        threshold: threshold?,
        top: top?,
        business: business?,
        alerts: alerts?,
        quotas: quotas?,
    })
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic()
}

fn read_business(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<BusinessSignal>> {
    let items = cx.list(node, "signals.business")?;
    if items.len() > MAX_BUSINESS {
        cx.err(node.pos, format!("`signals.business` holds at most {MAX_BUSINESS} signals, found {}", items.len()));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("signals.business[{i}]");
        let Some(f) = cx.map(item, &what, &["name", "service", "method", "path", "status"]) else {
            ok = false;
            continue;
        };
        let name = f.require(cx, "name").and_then(|n| {
            let t = cx.text(n, &f.path("name"))?;
            if !name_ok(t) {
                cx.err(
                    n.pos,
                    format!(
                        "`{}` must be a letter then letters, digits, `_` or `-` (at most 64), found `{t}`",
                        f.path("name")
                    ),
                );
                return None;
            }
            if out.iter().any(|b: &BusinessSignal| b.name == t) {
                cx.err(n.pos, format!("business signal `{t}` is defined twice"));
                return None;
            }
            Some(t.to_string())
        });
        let service = f.get("service").map(|n| cx.text(n, &f.path("service")).map(str::to_string));
        let method = f.get("method").map(|n| cx.text(n, &f.path("method")).map(str::to_ascii_uppercase));
        let path = f.require(cx, "path").and_then(|n| {
            let t = cx.text(n, &f.path("path"))?;
            if !t.starts_with('/') {
                cx.err(n.pos, format!("`{}` must start with `/`, found `{t}`", f.path("path")));
                return None;
            }
            Some(match t.strip_suffix('*') {
                Some(p) => PathMatch::Prefix(p.to_string()),
                None => PathMatch::Exact(t.to_string()),
            })
        });
        let status = match f.get("status") {
            None => Some(vec![(200, 299)]),
            Some(n) => {
                let mut v = Vec::new();
                let mut good = true;
                for s in cx.one_or_many(n, &f.path("status")) {
                    match cx.text(s, &f.path("status")).and_then(status_range) {
                        Some(r) => v.push(r),
                        None => {
                            cx.err(
                                s.pos,
                                format!("`{}` entries are a class such as 2xx or a code such as 201", f.path("status")),
                            );
                            good = false;
                        }
                    }
                }
                (good && !v.is_empty()).then_some(v)
            }
        };
        match (name, service, method, path, status) {
            (Some(name), service, method, Some(path), Some(status))
                if service.as_ref().is_none_or(Option::is_some) && method.as_ref().is_none_or(Option::is_some) =>
            {
                out.push(BusinessSignal { name, service: service.flatten(), method: method.flatten(), path, status })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn status_range(t: &str) -> Option<(u16, u16)> {
    let t = t.trim();
    if t.len() == 3 && t.ends_with("xx") {
        let c = t.as_bytes()[0];
        return (b'1'..=b'5').contains(&c).then(|| {
            let lo = u16::from(c - b'0') * 100;
            (lo, lo + 99)
        });
    }
    t.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(|c| (c, c))
}

/// The signal names an alert may name (besides `business:<name>`).
pub const SIGNAL_NAMES: [&str; 9] = [
    "requests",
    "error_ratio",
    "client_error_share",
    "forbidden_share",
    "latency_p95",
    "top_client_share",
    "concurrency",
    "peak_rps",
    "peak_bandwidth",
];

fn read_alerts(cx: &mut Ctx<'_>, node: &Node, business: &[BusinessSignal]) -> Option<Vec<AnomalyAlert>> {
    let items = cx.list(node, "signals.alerts")?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("signals.alerts[{i}]");
        let Some(f) = cx.map(item, &what, &["signal", "service", "score", "for", "severity"]) else {
            ok = false;
            continue;
        };
        let signal = f.require(cx, "signal").and_then(|n| {
            let t = cx.text(n, &f.path("signal"))?;
            let known = SIGNAL_NAMES.contains(&t)
                || t.strip_prefix("business:").is_some_and(|b| business.iter().any(|x| x.name == b));
            if !known {
                let names: Vec<String> = SIGNAL_NAMES
                    .iter()
                    .map(|s| s.to_string())
                    .chain(business.iter().map(|b| format!("business:{}", b.name)))
                    .collect();
                cx.err(n.pos, format!("unknown signal `{t}` in `{}`; known: {}", f.path("signal"), names.join(", ")));
                return None;
            }
            Some(t.to_string())
        });
        let service = f.get("service").map(|n| cx.text(n, &f.path("service")).map(str::to_string));
        let score = positive(cx, &f, "score", 0.8, 1.0);
        let for_ms = duration_ms(cx, &f, "for", Duration::from_secs(300));
        let severity = match f.get("severity") {
            None => Some(Severity::Ticket),
            Some(n) => match cx.text(n, &f.path("severity")) {
                Some("page") => Some(Severity::Page),
                Some("ticket") => Some(Severity::Ticket),
                Some(other) => {
                    cx.err(n.pos, format!("`{}` must be `page` or `ticket`, found `{other}`", f.path("severity")));
                    None
                }
                None => None,
            },
        };
        match (signal, service, score, for_ms, severity) {
            (Some(signal), service, Some(score), Some(for_ms), Some(severity))
                if service.as_ref().is_none_or(Option::is_some) =>
            {
                out.push(AnomalyAlert { signal, service: service.flatten(), score, for_ms, severity })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_quotas(cx: &mut Ctx<'_>, node: &Node) -> Option<Quotas> {
    let keys = [
        "horizon",
        "alert_within",
        "lambda_concurrency",
        "apigateway_rps",
        "cloudfront_rps",
        "cloudfront_bandwidth_gbps",
        "functions",
        "stages",
        "distributions",
        "accounts",
    ];
    let f = cx.map(node, "signals.quotas", &keys)?;
    let d = Quotas::default();
    let horizon_ms = duration_ms(cx, &f, "horizon", Duration::from_millis(d.horizon_ms as u64));
    let alert_within_ms = duration_ms(cx, &f, "alert_within", Duration::from_millis(d.alert_within_ms as u64));
    const BIG: f64 = 1e12;
    let lambda_concurrency = positive(cx, &f, "lambda_concurrency", d.lambda_concurrency, BIG);
    let apigateway_rps = positive(cx, &f, "apigateway_rps", d.apigateway_rps, BIG);
    let cloudfront_rps = positive(cx, &f, "cloudfront_rps", d.cloudfront_rps, BIG);
    let cloudfront_bps = positive(cx, &f, "cloudfront_bandwidth_gbps", AWS_CLOUDFRONT_GBPS, BIG).map(|g| g * 1e9);
    let functions = numbers_of(cx, &f, "functions");
    let stages = numbers_of(cx, &f, "stages");
    let distributions = match f.get("distributions") {
        None => Some(BTreeMap::new()),
        Some(n) => read_distributions(cx, n),
    };
    let accounts = match f.get("accounts") {
        None => Some(Vec::new()),
        Some(n) => read_accounts(
            cx,
            n,
            lambda_concurrency.unwrap_or(d.lambda_concurrency),
            apigateway_rps.unwrap_or(d.apigateway_rps),
        ),
    };
    Some(Quotas {
        horizon_ms: horizon_ms?,
        alert_within_ms: alert_within_ms?,
        lambda_concurrency: lambda_concurrency?,
        apigateway_rps: apigateway_rps?,
        cloudfront_rps: cloudfront_rps?,
        cloudfront_bps: cloudfront_bps?,
        functions: functions?,
        stages: stages?,
        distributions: distributions?,
        accounts: accounts?,
    })
}

/// A map of names to positive numbers (`functions:`, `stages:`).
fn numbers_of(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str) -> Option<BTreeMap<String, f64>> {
    let Some(n) = f.get(key) else { return Some(BTreeMap::new()) };
    let crate::yaml::Value::Map(entries) = &n.value else {
        cx.err(n.pos, format!("`{}` must be a map of names to numbers, found {}", f.path(key), n.kind_name()));
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let what = format!("{}.{}", f.path(key), k.text);
        match cx.number(v, &what) {
            Some(x) if x > 0.0 => {
                out.insert(k.text.clone(), x);
            }
            Some(x) => {
                cx.err(v.pos, format!("`{what}` must be above 0, found {x}"));
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_distributions(cx: &mut Ctx<'_>, node: &Node) -> Option<BTreeMap<String, DistributionLimits>> {
    let crate::yaml::Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`signals.quotas.distributions` must be a map, found {}", node.kind_name()));
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let what = format!("signals.quotas.distributions.{}", k.text);
        let Some(f) = cx.map(v, &what, &["rps", "bandwidth_gbps"]) else {
            ok = false;
            continue;
        };
        let rps = f.get("rps").map(|n| cx.number(n, &f.path("rps")).filter(|x| *x > 0.0));
        let gbps = f.get("bandwidth_gbps").map(|n| cx.number(n, &f.path("bandwidth_gbps")).filter(|x| *x > 0.0));
        if rps.as_ref().is_some_and(Option::is_none) || gbps.as_ref().is_some_and(Option::is_none) {
            cx.err(v.pos, format!("`{what}`: `rps` and `bandwidth_gbps` must be numbers above 0"));
            ok = false;
            continue;
        }
        out.insert(k.text.clone(), (rps.flatten(), gbps.flatten().map(|g| g * 1e9)));
    }
    ok.then_some(out)
}

fn read_accounts(cx: &mut Ctx<'_>, node: &Node, lambda: f64, rps: f64) -> Option<Vec<Account>> {
    let crate::yaml::Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`signals.quotas.accounts` must be a map of account ids, found {}", node.kind_name()));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let what = format!("signals.quotas.accounts.{}", k.text);
        let Some(f) = cx.map(v, &what, &["services", "lambda_concurrency", "apigateway_rps"]) else {
            ok = false;
            continue;
        };
        let services: Vec<String> = match f.require(cx, "services") {
            Some(n) => cx
                .one_or_many(n, &f.path("services"))
                .into_iter()
                .filter_map(|s| cx.text(s, &f.path("services")).map(str::to_string))
                .collect(),
            None => {
                ok = false;
                continue;
            }
        };
        let l = positive(cx, &f, "lambda_concurrency", lambda, 1e12);
        let r = positive(cx, &f, "apigateway_rps", rps, 1e12);
        match (l, r) {
            (Some(l), Some(r)) => {
                out.push(Account { id: k.text.clone(), services, lambda_concurrency: l, apigateway_rps: r })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<SignalsConfig, Vec<String>> {
        let parsed = crate::yaml::parse(text);
        let doc = parsed.documents[0].root.clone().unwrap();
        let mut diags = Vec::new();
        let mut cx = Ctx { file: "agent.yaml", diags: &mut diags };
        let c = read_signals(&mut cx, &doc);
        if diags.is_empty() {
            c.ok_or_else(Vec::new)
        } else {
            Err(diags.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect())
        }
    }

    #[test]
    fn a_full_section_reads_and_defaults_fill_the_rest() {
        let c = read(
            "business:\n  - {name: checkout_confirmed, method: post, path: /checkout/confirm}\n  - {name: carts, path: /cart/*, status: [200, 201]}\nalerts:\n  - {signal: business:checkout_confirmed, score: 0.7, for: 10m, severity: page}\nquotas:\n  functions: {checkout: 200}\n  distributions: {shop: {rps: 1000}}\n  accounts:\n    \"2109\": {services: [search], lambda_concurrency: 3000}\n",
        )
        .unwrap();
        assert_eq!(c.lateness_ms, 300_000);
        assert_eq!(c.business.len(), 2);
        assert!(c.business[0].matches("shop", "POST", "/checkout/confirm", 201));
        assert!(!c.business[0].matches("shop", "POST", "/checkout/confirm", 500));
        assert!(c.business[1].matches("any", "GET", "/cart/12", 201));
        assert!(!c.business[1].matches("any", "GET", "/cart/12", 204));
        assert_eq!(c.alerts[0].severity, Severity::Page);
        assert_eq!(c.alerts[0].for_ms, 600_000);
        assert_eq!(c.quotas.functions["checkout"], 200.0);
        assert_eq!(c.quotas.distributions["shop"], (Some(1000.0), None));
        assert_eq!(c.quotas.account_of("search"), "2109");
        assert_eq!(c.quotas.account_limits("2109"), (3000.0, AWS_APIGATEWAY_RPS));
        assert_eq!(c.quotas.account_of("shop"), "default");
        assert_eq!(c.quotas.cloudfront_bps, 150e9);
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        let e = read("threshold: 2\nbusiness:\n  - {name: 1x, path: checkout}\nalerts:\n  - {signal: conversions}\n")
            .unwrap_err();
        assert!(e.iter().any(|m| m.starts_with("1:") && m.contains("threshold")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("3:") && m.contains("letter")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("3:") && m.contains("must start with `/`")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("5:") && m.contains("unknown signal `conversions`")), "{e:?}");
        let e = read("quotas: {functions: {a: -1}, horizon: forever}\n").unwrap_err();
        assert!(e.iter().any(|m| m.contains("horizon")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("functions.a")), "{e:?}");
    }
}
