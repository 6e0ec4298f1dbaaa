//! `export.cloudwatch:` in agent.yaml (docs/cloudwatch.md).
//!
//! ```yaml
//! export:
//!   cloudwatch:
//!     mode: emf                    # emf (default): Embedded Metric Format lines, no AWS call, no permission
//!                                  # put_metric_data: PutMetricData calls (an `aws` build)
//!     emf_file: /var/log/slo-agent/emf.log   # emf only; default: stdout
//!     namespace: SloAgent          # default SloAgent; must not start with AWS/
//!     interval: 60s                # how often the figures are exported (1s to 1h)
//!     windows: [5m, 1h, 6h]        # burn-rate windows exported; default: every alert window
//!     dimensions: {Cluster: prod}  # fixed dimensions added to every metric (at most 27)
//!     # put_metric_data only, like the AWS sources:
//!     region: eu-west-1
//!     endpoint_url: https://monitoring.eu-west-1.amazonaws.com
//!     profile: agent
//!     credentials: {access_key_id: ..., secret_access_key: ...}
//!     timeout: 10s
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::source::aws::config::{AwsConnection, CONNECTION_KEYS, SUPPORTED, duration, read_connection};
use crate::spec::model::{ALERT_WINDOWS, Minutes};
use crate::yaml::Node;
use crate::yaml::Value;
use crate::yaml::fields::Ctx;
use crate::yaml::values::resolve;

pub const DEFAULT_NAMESPACE: &str = "SloAgent";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The dimensions the exporter names itself: `Service`, `SLO`, `Window`.
pub const OWN_DIMENSIONS: [&str; 3] = ["Service", "SLO", "Window"];
/// A metric has at most 30 dimensions; three are the exporter's own.
pub const MAX_EXTRA_DIMENSIONS: usize = 30 - OWN_DIMENSIONS.len();

/// Where the figures go and what they look like.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchExportConfig {
    pub mode: CloudWatchMode,
    pub namespace: String,
    pub interval: Duration,
    /// The burn-rate windows exported, in order (a subset of the alert windows).
    pub windows: Vec<Minutes>,
    /// Fixed dimensions added to every metric, in config order.
    pub dimensions: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CloudWatchMode {
    /// Embedded Metric Format documents, one JSON line each, to stdout or
    /// appended to `file`. CloudWatch Logs turns them into metrics.
    Emf { file: Option<PathBuf> },
    /// PutMetricData calls with the AWS SDK (the `aws` feature).
    PutMetricData(AwsConnection),
}

impl CloudWatchMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            CloudWatchMode::Emf { .. } => "emf",
            CloudWatchMode::PutMetricData(_) => "put_metric_data",
        }
    }
}

/// Read `export.cloudwatch`; every problem is reported at its position.
pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<CloudWatchExportConfig> {
    let own = ["mode", "emf_file", "namespace", "interval", "windows", "dimensions"];
    let allowed: Vec<&str> = own.iter().chain(CONNECTION_KEYS.iter()).copied().collect();
    let f = cx.map(node, "export.cloudwatch", &allowed)?;
    let mode_name = match f.get("mode") {
        None => Some("emf"),
        Some(n) => cx.text(n, "export.cloudwatch.mode").and_then(|t| match t {
            "emf" | "put_metric_data" => Some(t),
            other => {
                cx.err(n.pos, format!("`export.cloudwatch.mode` must be `emf` or `put_metric_data`, found `{other}`"));
                None
            }
        }),
    };
    let mode = match mode_name {
        Some("put_metric_data") => {
            if let Some(n) = f.get("emf_file") {
                cx.err(n.pos, "`emf_file` is only read with `mode: emf`");
            }
            if !SUPPORTED {
                let at = f.get("mode").map_or(node.pos, |n| n.pos);
                cx.err(
                    at,
                    "`mode: put_metric_data` needs an AWS build (--features aws); `mode: emf` needs none (its lines reach CloudWatch through CloudWatch Logs)",
                );
            }
            read_connection(cx, &f).map(CloudWatchMode::PutMetricData)
        }
        Some(_) => {
            for key in CONNECTION_KEYS {
                if let Some(n) = f.get(key) {
                    let e = f.path(key);
                    cx.err(n.pos, format!("`{e}` is only read with `mode: put_metric_data` (EMF makes no AWS call)"));
                }
            }
            match f.get("emf_file") {
                None => Some(CloudWatchMode::Emf { file: None }),
                Some(n) => cx.text(n, "emf_file").and_then(|t| {
                    if t.trim().is_empty() {
                        cx.err(n.pos, "`emf_file` must be a file path (leave it out for stdout)");
                        None
                    } else {
                        Some(CloudWatchMode::Emf { file: Some(resolve(base, t)) })
                    }
                }),
            }
        }
        None => None,
    };
    let namespace = match f.get("namespace") {
        None => Some(DEFAULT_NAMESPACE.to_string()),
        Some(n) => cx.text(n, "namespace").and_then(|t| match namespace_problem(t) {
            None => Some(t.to_string()),
            Some(why) => {
                cx.err(n.pos, format!("`namespace` {why}, found `{}`", t.escape_default()));
                None
            }
        }),
    };
    let interval = duration(cx, &f, "interval", DEFAULT_INTERVAL, false).and_then(|d| {
        if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
            Some(d)
        } else {
            let at = f.get("interval").map_or(node.pos, |n| n.pos);
            cx.err(at, "`interval` must be from 1s to 1h");
            None
        }
    });
    let windows = match f.get("windows") {
        None => Some(ALERT_WINDOWS.to_vec()),
        Some(n) => read_windows(cx, n),
    };
    let dimensions = match f.get("dimensions") {
        None => Some(Vec::new()),
        Some(n) => read_dimensions(cx, n),
    };
    Some(CloudWatchExportConfig {
        mode: mode?,
        namespace: namespace?,
        interval: interval?,
        windows: windows?,
        dimensions: dimensions?,
    })
}

/// Why a namespace would be refused by CloudWatch, if it would.
fn namespace_problem(t: &str) -> Option<&'static str> {
    if t.is_empty() || t.len() > 255 {
        Some("must have 1 to 255 characters")
    } else if !t.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Some("must be printable ASCII")
    } else if t.starts_with(':') {
        Some("must not start with `:`")
    } else if t.to_ascii_uppercase().starts_with("AWS/") {
        Some("must not start with `AWS/` (reserved for AWS's own metrics)")
    } else {
        None
    }
}

fn read_windows(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<Minutes>> {
    let items = cx.list(node, "windows")?;
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(t) = cx.text(item, "windows[]") else {
            ok = false;
            continue;
        };
        let m = crate::yaml::values::parse_duration(t)
            .filter(|d| d.as_secs().is_multiple_of(60))
            .map(|d| Minutes((d.as_secs() / 60) as u32))
            .filter(|m| ALERT_WINDOWS.contains(m));
        match m {
            Some(m) if out.contains(&m) => {
                cx.err(item.pos, format!("window `{t}` is listed twice"));
                ok = false;
            }
            Some(m) => out.push(m),
            None => {
                let all: Vec<String> = ALERT_WINDOWS.iter().map(|w| w.to_string()).collect();
                cx.err(
                    item.pos,
                    format!("`{t}` is not an alert window; the agent computes burn rates over {}", all.join(", ")),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn read_dimensions(cx: &mut Ctx<'_>, node: &Node) -> Option<Vec<(String, String)>> {
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`dimensions` must be a map of name: value, found {}", node.kind_name()));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let name = k.text.as_str();
        let Some(value) = cx.text(v, &format!("dimensions.{name}")) else {
            ok = false;
            continue;
        };
        let ascii = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !s.trim().is_empty();
        if OWN_DIMENSIONS.contains(&name) {
            cx.err(k.pos, format!("dimension `{name}` is the exporter's own; name another"));
            ok = false;
        } else if name.len() > 255 || !ascii(name) || name.starts_with(':') {
            cx.err(k.pos, "a dimension name has 1 to 255 printable ASCII characters and does not start with `:`");
            ok = false;
        } else if value.len() > 1024 || !ascii(value) {
            cx.err(v.pos, format!("the value of dimension `{name}` must have 1 to 1024 printable ASCII characters"));
            ok = false;
        } else {
            out.push((name.to_string(), value.to_string()));
        }
    }
    if out.len() > MAX_EXTRA_DIMENSIONS {
        cx.err(
            node.pos,
            format!(
                "{} dimensions; a metric has at most 30, and {} of them are the exporter's own",
                out.len(),
                OWN_DIMENSIONS.len()
            ),
        );
        ok = false;
    }
    ok.then_some(out)
}
