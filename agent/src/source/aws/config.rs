//! `agent.yaml` sources that pull from AWS: `cloudwatch-logs`,
//! `cloudwatch-metrics`, `s3` and `xray`.
//!
//! The config types are plain data and always compiled, so `validate` reads
//! the same file whatever the build; a build without the `aws` feature
//! refuses these types with a clear message instead of an unknown type.
//!
//! ```yaml
//! sources:
//!   - name: lambda-logs
//!     type: cloudwatch-logs
//!     region: eu-west-1                # default: the AWS chain (AWS_REGION, profile, IMDS)
//!     log_groups:
//!       - name: /aws/lambda/checkout   # format defaults to lambda for /aws/lambda/*
//!         service: checkout
//!       - {name: /aws/apigateway/shop, format: apigateway}
//!     start: 1h                        # a fresh source starts this far back
//!     delay: 30s                       # read only events older than this
//!   - name: edge-metrics
//!     type: cloudwatch-metrics
//!     service: shop
//!     settle: 5m
//!     queries:
//!       - namespace: AWS/ApiGateway
//!         dimensions: {ApiName: shop}
//!         total: Count
//!         errors: 5XXError
//!   - name: cf-logs
//!     type: s3
//!     bucket: shop-cloudfront-logs
//!     prefix: cf/E2EXAMPLE.
//!     format: cloudfront
//!   - name: traces
//!     type: xray
//!     service: shop                    # default: the API's name (before `/stage`), else the function's
//!     filter: 'service("shop-api/prod")'  # a GetTraceSummaries filter expression (optional)
//!     delay: 1m                        # traces younger than this are not read yet
//!     max_traces_per_poll: 500
//! ```

use std::fmt;
use std::time::Duration;

use crate::decode::Format;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::parse_duration;
use crate::yaml::{Node, Value};

/// The source types this file reads.
pub const TYPES: [&str; 4] = ["cloudwatch-logs", "cloudwatch-metrics", "s3", "xray"];

/// Whether this build can run AWS sources.
pub const SUPPORTED: bool = cfg!(feature = "aws");

/// Where and as whom to call AWS. Every field is optional: what is left out
/// comes from the standard AWS chain (environment, shared config and
/// credentials files, web identity / IRSA, ECS and EC2 metadata).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsConnection {
    pub region: Option<String>,
    /// Another endpoint than AWS's own (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// A profile of the shared config files.
    pub profile: Option<String>,
    /// Fixed credentials instead of the chain (tests, emulators).
    pub credentials: Option<StaticCredentials>,
    /// Most time one API call may take, retries included.
    pub timeout: Duration,
}

/// Credentials written in the config. Prefer the chain in production.
#[derive(Clone, PartialEq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AwsSourceConfig {
    CloudWatchLogs(CloudWatchLogsConfig),
    CloudWatchMetrics(CloudWatchMetricsConfig),
    S3(S3Config),
    XRay(XRayConfig),
}

impl AwsSourceConfig {
    pub fn name(&self) -> &str {
        match self {
            AwsSourceConfig::CloudWatchLogs(c) => &c.name,
            AwsSourceConfig::CloudWatchMetrics(c) => &c.name,
            AwsSourceConfig::S3(c) => &c.name,
            AwsSourceConfig::XRay(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AwsSourceConfig::CloudWatchLogs(_) => "cloudwatch-logs",
            AwsSourceConfig::CloudWatchMetrics(_) => "cloudwatch-metrics",
            AwsSourceConfig::S3(_) => "s3",
            AwsSourceConfig::XRay(_) => "xray",
        }
    }
}

/// `type: cloudwatch-logs`: FilterLogEvents over each log group.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchLogsConfig {
    pub name: String,
    pub aws: AwsConnection,
    pub log_groups: Vec<LogGroupConfig>,
    /// A source without a checkpoint starts this far before now.
    pub start: Duration,
    /// Only events at least this old are read: CloudWatch Logs accepts
    /// events a little late, and a window once read is never read again.
    pub delay: Duration,
    pub poll_interval: Duration,
    /// FilterLogEvents pages per log group and poll.
    pub max_pages_per_poll: u32,
    /// Events per FilterLogEvents page (1–10000).
    pub page_size: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogGroupConfig {
    pub name: String,
    pub format: Format,
    /// Service for records that carry none.
    pub service: String,
}

/// `type: cloudwatch-metrics`: per-minute sums from GetMetricData.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchMetricsConfig {
    pub name: String,
    pub aws: AwsConnection,
    /// Service of the queries that name none.
    pub service: String,
    pub queries: Vec<MetricQuery>,
    /// Minutes younger than this are not read yet (datapoints arrive late).
    pub settle: Duration,
    /// A source without a checkpoint starts this far before now.
    pub start: Duration,
    pub poll_interval: Duration,
    /// Most minutes one poll reads.
    pub max_minutes_per_poll: u32,
}

/// One SLI from CloudWatch metrics: which metric counts what, per minute.
/// Either `total` or `good` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub namespace: String,
    pub dimensions: Vec<(String, String)>,
    pub service: Option<String>,
    /// All requests, errors included (API Gateway `Count`, Lambda `Invocations`, CloudFront `Requests`).
    pub total: Option<String>,
    /// Good requests, when a metric counts them directly.
    pub good: Option<String>,
    /// Failed requests, part of `total` (`5XXError`, `Errors`).
    pub errors: Option<String>,
    /// Failed requests as a percentage of `total` (CloudFront `5xxErrorRate`).
    pub error_rate_percent: Option<String>,
    /// Throttled requests, *not* part of `total` (Lambda `Throttles`).
    pub throttles: Option<String>,
}

impl MetricQuery {
    /// The metric names and their roles, in a fixed order.
    pub fn metrics(&self) -> impl Iterator<Item = (MetricRole, &str)> {
        [
            (MetricRole::Total, &self.total),
            (MetricRole::Good, &self.good),
            (MetricRole::Errors, &self.errors),
            (MetricRole::ErrorRatePercent, &self.error_rate_percent),
            (MetricRole::Throttles, &self.throttles),
        ]
        .into_iter()
        .filter_map(|(r, m)| m.as_deref().map(|m| (r, m)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetricRole {
    Total,
    Good,
    Errors,
    ErrorRatePercent,
    Throttles,
}

/// `type: s3`: log objects under a prefix, each read once.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    pub name: String,
    pub aws: AwsConnection,
    pub bucket: String,
    pub prefix: String,
    pub format: Format,
    pub service: String,
    /// A source without a checkpoint skips keys up to and including this one.
    pub start_after: Option<String>,
    /// Objects may appear this long after others whose keys sort after
    /// theirs (CloudFront delivers most log files within an hour, a few up
    /// to a day late): keys are remembered one by one for this long.
    pub late_arrival: Duration,
    pub poll_interval: Duration,
    pub max_objects_per_poll: u32,
    /// Largest object (after decompression) that is read; larger ones are skipped and counted.
    pub max_object_bytes: u64,
    /// `bucket` in the path instead of the host name (most emulators).
    pub force_path_style: bool,
}

/// `type: xray`: requests decomposed from their X-Ray traces
/// (GetTraceSummaries over time ranges, then BatchGetTraces).
#[derive(Debug, Clone, PartialEq)]
pub struct XRayConfig {
    pub name: String,
    pub aws: AwsConnection,
    /// Service of the requests; empty: the API's name (`shop-api` of
    /// `shop-api/prod`), else the function's.
    pub service: String,
    /// A GetTraceSummaries filter expression (`service("shop-api/prod")`).
    pub filter: Option<String>,
    /// A source without a checkpoint starts this far before now.
    pub start: Duration,
    /// Only traces that started at least this long ago are read: their
    /// segments arrive over the request's length and a little after, and
    /// a range once read is not read again.
    pub delay: Duration,
    pub poll_interval: Duration,
    /// Longest time range one poll reads.
    pub max_range_per_poll: Duration,
    /// Most traces one poll fetches; a range with more keeps the first ones
    /// and counts the rest as skipped.
    pub max_traces_per_poll: u32,
}

pub(crate) const CONNECTION_KEYS: [&str; 5] = ["region", "endpoint_url", "profile", "credentials", "timeout"];

/// Read a `sources[]` entry whose `type` is one of [`TYPES`].
pub fn read_source(cx: &mut Ctx<'_>, node: &Node, kind: &str) -> Option<AwsSourceConfig> {
    let specific: &[&str] = match kind {
        "cloudwatch-logs" => &["log_groups", "start", "delay", "poll_interval", "max_pages_per_poll", "page_size"],
        "cloudwatch-metrics" => &["service", "queries", "settle", "start", "poll_interval", "max_minutes_per_poll"],
        "xray" => {
            &["service", "filter", "start", "delay", "poll_interval", "max_range_per_poll", "max_traces_per_poll"]
        }
        _ => &[
            "bucket",
            "prefix",
            "format",
            "service",
            "start_after",
            "late_arrival",
            "poll_interval",
            "max_objects_per_poll",
            "max_object_bytes",
            "force_path_style",
        ],
    };
    let allowed: Vec<&str> = ["name", "type"].iter().chain(CONNECTION_KEYS.iter()).chain(specific).copied().collect();
    let f = cx.map(node, "sources[]", &allowed)?;
    if !SUPPORTED && let Some(t) = f.get("type") {
        cx.err(t.pos, format!("source type `{kind}`: this build has no AWS support; build with --features aws"));
    }
    let name = source_name(cx, &f);
    let aws = read_connection(cx, &f);
    let out = match kind {
        "cloudwatch-logs" => read_logs(cx, &f, name?, aws?).map(AwsSourceConfig::CloudWatchLogs),
        "cloudwatch-metrics" => read_metrics(cx, &f, name?, aws?).map(AwsSourceConfig::CloudWatchMetrics),
        "xray" => read_xray(cx, &f, name?, aws?).map(AwsSourceConfig::XRay),
        _ => read_s3(cx, &f, name?, aws?).map(AwsSourceConfig::S3),
    };
    if SUPPORTED { out } else { None }
}

fn source_name(cx: &mut Ctx<'_>, f: &Fields<'_>) -> Option<String> {
    let n = f.require(cx, "name")?;
    let t = cx.text(n, "name")?;
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        cx.err(n.pos, format!("source name `{t}` may use only letters, digits, `-` and `_`"));
        return None;
    }
    Some(t.to_string())
}

fn opt_text(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str) -> Result<Option<String>, ()> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => match cx.text(n, key) {
            Some(t) if !t.is_empty() => Ok(Some(t.to_string())),
            Some(_) => {
                cx.err(n.pos, format!("`{key}` must not be empty"));
                Err(())
            }
            None => Err(()),
        },
    }
}

pub(crate) fn read_connection(cx: &mut Ctx<'_>, f: &Fields<'_>) -> Option<AwsConnection> {
    let region = opt_text(cx, f, "region");
    let endpoint_url = opt_text(cx, f, "endpoint_url");
    if let (Ok(Some(url)), Some(n)) = (&endpoint_url, f.get("endpoint_url"))
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        cx.err(n.pos, format!("`endpoint_url` must start with http:// or https://, found `{url}`"));
    }
    let profile = opt_text(cx, f, "profile");
    let credentials = match f.get("credentials") {
        None => Ok(None),
        Some(n) => {
            let c = cx.map(n, "credentials", &["access_key_id", "secret_access_key", "session_token"]);
            match c {
                Some(c) => {
                    let id = c.require(cx, "access_key_id").and_then(|n| cx.text(n, "access_key_id"));
                    let secret = c.require(cx, "secret_access_key").and_then(|n| cx.text(n, "secret_access_key"));
                    let token = opt_text(cx, &c, "session_token");
                    match (id, secret, token) {
                        (Some(id), Some(secret), Ok(token)) => Ok(Some(StaticCredentials {
                            access_key_id: id.to_string(),
                            secret_access_key: secret.to_string(),
                            session_token: token,
                        })),
                        _ => Err(()),
                    }
                }
                None => Err(()),
            }
        }
    };
    let timeout = duration(cx, f, "timeout", Duration::from_secs(10), false);
    Some(AwsConnection {
        region: region.ok()?,
        endpoint_url: endpoint_url.ok()?,
        profile: profile.ok()?,
        credentials: credentials.ok()?,
        timeout: timeout?,
    })
}

/// A duration field; `allow_zero` also accepts `0s` (and `now`).
pub(crate) fn duration(
    cx: &mut Ctx<'_>,
    f: &Fields<'_>,
    key: &str,
    default: Duration,
    allow_zero: bool,
) -> Option<Duration> {
    let Some(n) = f.get(key) else { return Some(default) };
    let t = cx.text(n, key)?;
    let parsed = if allow_zero && t.trim() == "now" { Some(Duration::ZERO) } else { parse_duration(t) };
    match parsed {
        Some(d) if allow_zero || !d.is_zero() => Some(d),
        _ => {
            let what = if allow_zero { "a duration" } else { "a positive duration" };
            cx.err(n.pos, format!("`{key}` must be {what} such as 500ms, 5s, 1m, 2h, found `{t}`"));
            None
        }
    }
}

fn whole(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: u64, min: u64, max: u64) -> Option<u64> {
    let Some(n) = f.get(key) else { return Some(default) };
    let v = cx.number(n, key)?;
    if v.fract() == 0.0 && v >= min as f64 && v <= max as f64 {
        Some(v as u64)
    } else {
        cx.err(n.pos, format!("`{key}` must be a whole number from {min} to {max}"));
        None
    }
}

fn format_field(cx: &mut Ctx<'_>, n: &Node, key: &str) -> Option<Format> {
    let t = cx.text(n, key)?;
    match Format::parse(t) {
        Some(Format::Auto) | Some(Format::CloudFrontRealtime) => {
            cx.err(n.pos, format!("format `{t}` cannot be read by AWS pull sources; name a concrete format"));
            None
        }
        Some(fm) => Some(fm),
        None => {
            cx.err(n.pos, format!("unknown format `{t}`; expected one of {}", Format::NAMES));
            None
        }
    }
}

fn read_logs(cx: &mut Ctx<'_>, f: &Fields<'_>, name: String, aws: AwsConnection) -> Option<CloudWatchLogsConfig> {
    let mut groups = Vec::new();
    let mut ok = true;
    if let Some(n) = f.require(cx, "log_groups")
        && let Some(items) = cx.list(n, "log_groups")
    {
        if items.is_empty() {
            cx.err(n.pos, "`log_groups` is empty; name at least one log group");
            ok = false;
        }
        for item in items {
            match read_log_group(cx, item) {
                Some(g) => {
                    if groups.iter().any(|o: &LogGroupConfig| o.name == g.name) {
                        cx.err(item.pos, format!("log group `{}` is listed twice", g.name));
                        ok = false;
                    }
                    groups.push(g)
                }
                None => ok = false,
            }
        }
    }
    let start = duration(cx, f, "start", Duration::from_secs(3600), true);
    let delay = duration(cx, f, "delay", Duration::from_secs(30), true);
    let poll_interval = duration(cx, f, "poll_interval", Duration::from_secs(10), false);
    let max_pages = whole(cx, f, "max_pages_per_poll", 5, 1, 1000);
    let page_size = whole(cx, f, "page_size", 10_000, 1, 10_000);
    if !ok || groups.is_empty() {
        return None;
    }
    Some(CloudWatchLogsConfig {
        name,
        aws,
        log_groups: groups,
        start: start?,
        delay: delay?,
        poll_interval: poll_interval?,
        max_pages_per_poll: max_pages? as u32,
        page_size: page_size? as u32,
    })
}

fn read_log_group(cx: &mut Ctx<'_>, node: &Node) -> Option<LogGroupConfig> {
    // A bare name is a Lambda log group (or must be one).
    let (name, name_node, format_node, service) = match &node.value {
        Value::Scalar(_) => (cx.text(node, "log_groups[]")?.to_string(), node, None, String::new()),
        _ => {
            let g = cx.map(node, "log_groups[]", &["name", "format", "service"])?;
            let n = g.require(cx, "name")?;
            let name = cx.text(n, "log_groups[].name")?.to_string();
            let service = match g.get("service") {
                Some(s) => cx.text(s, "service")?.to_string(),
                None => String::new(),
            };
            (name, n, g.get("format"), service)
        }
    };
    if name.is_empty() || name.len() > 512 {
        cx.err(name_node.pos, "a log group name has 1 to 512 characters");
        return None;
    }
    let format = match format_node {
        Some(n) => format_field(cx, n, "format")?,
        None if name.starts_with("/aws/lambda/") => Format::Lambda,
        None => {
            cx.err(
                name_node.pos,
                format!("log group `{name}` needs a `format` (only /aws/lambda/* groups default to `lambda`)"),
            );
            return None;
        }
    };
    Some(LogGroupConfig { name, format, service })
}

fn read_metrics(cx: &mut Ctx<'_>, f: &Fields<'_>, name: String, aws: AwsConnection) -> Option<CloudWatchMetricsConfig> {
    let service = match f.get("service") {
        Some(n) => cx.text(n, "service").map(str::to_string),
        None => Some(String::new()),
    };
    let mut queries = Vec::new();
    let mut ok = true;
    if let Some(n) = f.require(cx, "queries")
        && let Some(items) = cx.list(n, "queries")
    {
        if items.is_empty() {
            cx.err(n.pos, "`queries` is empty; name at least one");
            ok = false;
        }
        for item in items {
            match read_query(cx, item) {
                Some(q) => queries.push(q),
                None => ok = false,
            }
        }
    }
    let metric_count: usize = queries.iter().map(|q| q.metrics().count()).sum();
    if metric_count > 500 {
        cx.err(f.node.pos, format!("{metric_count} metrics in one source; GetMetricData takes at most 500"));
        ok = false;
    }
    let settle = duration(cx, f, "settle", Duration::from_secs(300), true);
    let start = duration(cx, f, "start", Duration::from_secs(3 * 3600), true);
    let poll_interval = duration(cx, f, "poll_interval", Duration::from_secs(60), false);
    let max_minutes = whole(cx, f, "max_minutes_per_poll", 180, 1, 1440);
    if !ok {
        return None;
    }
    Some(CloudWatchMetricsConfig {
        name,
        aws,
        service: service?,
        queries,
        settle: settle?,
        start: start?,
        poll_interval: poll_interval?,
        max_minutes_per_poll: max_minutes? as u32,
    })
}

fn read_query(cx: &mut Ctx<'_>, node: &Node) -> Option<MetricQuery> {
    let keys = ["namespace", "dimensions", "service", "total", "good", "errors", "error_rate_percent", "throttles"];
    let q = cx.map(node, "queries[]", &keys)?;
    let namespace = q.require(cx, "namespace").and_then(|n| cx.text(n, "namespace")).map(str::to_string);
    let mut dimensions = Vec::new();
    if let Some(n) = q.get("dimensions") {
        match &n.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    if let Some(t) = cx.text(v, &format!("dimensions.{}", k.text)) {
                        dimensions.push((k.text.clone(), t.to_string()));
                    }
                }
                if dimensions.len() > 30 {
                    cx.err(n.pos, "a metric has at most 30 dimensions");
                }
            }
            _ => cx.err(n.pos, format!("`dimensions` must be a map of name: value, found {}", n.kind_name())),
        }
    }
    let service = opt_text(cx, &q, "service").ok()?;
    let total = opt_text(cx, &q, "total").ok()?;
    let good = opt_text(cx, &q, "good").ok()?;
    let errors = opt_text(cx, &q, "errors").ok()?;
    let rate = opt_text(cx, &q, "error_rate_percent").ok()?;
    let throttles = opt_text(cx, &q, "throttles").ok()?;
    let at = node.pos;
    match (&total, &good) {
        (None, None) => {
            cx.err(at, "a query needs `total` (all requests) or `good` (good requests)");
            return None;
        }
        (Some(_), Some(_)) => {
            cx.err(at, "a query takes `total` or `good`, not both");
            return None;
        }
        _ => {}
    }
    if rate.is_some() && total.is_none() {
        cx.err(at, "`error_rate_percent` is a percentage of `total`; name the `total` metric");
        return None;
    }
    if rate.is_some() && errors.is_some() {
        cx.err(at, "a query takes `errors` or `error_rate_percent`, not both");
        return None;
    }
    Some(MetricQuery {
        namespace: namespace?,
        dimensions,
        service,
        total,
        good,
        errors,
        error_rate_percent: rate,
        throttles,
    })
}

fn read_s3(cx: &mut Ctx<'_>, f: &Fields<'_>, name: String, aws: AwsConnection) -> Option<S3Config> {
    let bucket = f.require(cx, "bucket").and_then(|n| {
        let t = cx.text(n, "bucket")?;
        if t.len() < 3 || t.len() > 63 || t.contains('/') {
            cx.err(n.pos, format!("`bucket` must be a bucket name (3 to 63 characters, no `/`), found `{t}`"));
            return None;
        }
        Some(t.to_string())
    });
    let prefix = match f.get("prefix") {
        Some(n) => cx.text(n, "prefix").map(str::to_string),
        None => Some(String::new()),
    };
    let format = match f.get("format") {
        Some(n) => format_field(cx, n, "format"),
        None => Some(Format::CloudFront),
    };
    let service = match f.get("service") {
        Some(n) => cx.text(n, "service").map(str::to_string),
        None => Some(String::new()),
    };
    let start_after = opt_text(cx, f, "start_after");
    let late_arrival = duration(cx, f, "late_arrival", Duration::from_secs(24 * 3600), true);
    let poll_interval = duration(cx, f, "poll_interval", Duration::from_secs(60), false);
    let max_objects = whole(cx, f, "max_objects_per_poll", 20, 1, 1000);
    let max_bytes = whole(cx, f, "max_object_bytes", 1 << 30, 1024, 1 << 36);
    let force_path_style = match f.get("force_path_style") {
        Some(n) => cx.boolean(n, "force_path_style"),
        None => Some(false),
    };
    Some(S3Config {
        name,
        aws,
        bucket: bucket?,
        prefix: prefix?,
        format: format?,
        service: service?,
        start_after: start_after.ok()?,
        late_arrival: late_arrival?,
        poll_interval: poll_interval?,
        max_objects_per_poll: max_objects? as u32,
        max_object_bytes: max_bytes?,
        force_path_style: force_path_style?,
    })
}

fn read_xray(cx: &mut Ctx<'_>, f: &Fields<'_>, name: String, aws: AwsConnection) -> Option<XRayConfig> {
    let service = match f.get("service") {
        Some(n) => cx.text(n, "service").map(str::to_string),
        None => Some(String::new()),
    };
    let filter = opt_text(cx, f, "filter");
    if let (Ok(Some(t)), Some(n)) = (&filter, f.get("filter"))
        && t.len() > 2000
    {
        cx.err(n.pos, format!("`filter` has {} characters; a filter expression has at most 2000", t.len()));
    }
    let start = duration(cx, f, "start", Duration::from_secs(3600), true);
    let delay = duration(cx, f, "delay", Duration::from_secs(60), true);
    let poll_interval = duration(cx, f, "poll_interval", Duration::from_secs(30), false);
    let max_range = duration(cx, f, "max_range_per_poll", Duration::from_secs(300), false);
    if let (Some(d), Some(n)) = (max_range, f.get("max_range_per_poll"))
        && d > Duration::from_secs(6 * 3600)
    {
        cx.err(n.pos, "`max_range_per_poll` must be at most 6h (one poll stays short)");
    }
    let max_traces = whole(cx, f, "max_traces_per_poll", 500, 1, 10_000);
    Some(XRayConfig {
        name,
        aws,
        service: service?,
        filter: filter.ok()?,
        start: start?,
        delay: delay?,
        poll_interval: poll_interval?,
        max_range_per_poll: max_range.filter(|d| *d <= Duration::from_secs(6 * 3600))?,
        max_traces_per_poll: max_traces? as u32,
    })
}
