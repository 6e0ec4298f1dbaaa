//! Exporters: the agent's state as other systems read it.
//!
//! | file | what |
//! | --- | --- |
//! | [`slo`] | the SLO figures as metric families, shared by every exporter |
//! | [`prometheus`] | the `/metrics` exposition |
//! | [`otlp`] | OTLP metrics pushed to a collector or a vendor (`export.otlp`) |
//! | [`cloudwatch`] | every SLO's figures to CloudWatch (`export.cloudwatch`: EMF or PutMetricData) |
//!
//! The `export:` section of agent.yaml is read here, each exporter's part by
//! the exporter's own `config.rs`.
//!
//! **Architecture invariant:** exporters read the published snapshot's
//! figures, never the engine; pushing exporters run one export at a time,
//! each bounded by its timeout, so a receiver that is down costs a counter
//! and a log line, never memory or a blocked thread.

pub mod cloudwatch;
pub mod otlp;
pub mod prometheus;
pub mod slo;

use std::path::Path;

use serde_json::Value;

use crate::source::SourceConfig;
use crate::yaml::Node;
use crate::yaml::fields::Ctx;

/// `export:` in `agent.yaml`: where the figures are pushed, besides `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportConfig {
    /// `export.otlp`: OTLP metrics; none when unset.
    pub otlp: Option<otlp::OtlpConfig>,
    /// `export.cloudwatch:`; off without it.
    pub cloudwatch: Option<cloudwatch::CloudWatchExportConfig>,
}

/// Read `export:`, each exporter's block by its own reader.
pub fn read_config(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ExportConfig> {
    let f = cx.map(node, "export", &["otlp", "cloudwatch"])?;
    let otlp = match f.get("otlp") {
        None => Some(None),
        Some(n) => otlp::config::read(cx, n, base).map(Some),
    };
    let cloudwatch = match f.get("cloudwatch") {
        None => Some(None),
        Some(n) => cloudwatch::config::read(cx, n, base).map(Some),
    };
    Some(ExportConfig { otlp: otlp?, cloudwatch: cloudwatch? })
}

/// The least-privilege IAM policy of the configured AWS sources
/// (`source::aws::iam`) and exporters (`slo-agent iam-policy`):
/// `export.cloudwatch` with `mode: put_metric_data` adds
/// `cloudwatch:PutMetricData` (the action takes no resource), held to its
/// namespace by the `cloudwatch:namespace` condition; EMF and OTLP need nothing.
pub fn iam_policy(sources: &[SourceConfig], export: &ExportConfig, account: Option<&str>) -> Value {
    use crate::source::aws::iam::{sid, statement};
    let mut policy = crate::source::aws::iam::policy(sources, account);
    if let Some(c) = &export.cloudwatch
        && let cloudwatch::CloudWatchMode::PutMetricData(_) = c.mode
        && let Some(statements) = policy["Statement"].as_array_mut()
    {
        statements.push(statement(
            &sid("cloudwatch", "Export"),
            &["cloudwatch:PutMetricData"],
            vec!["*".into()],
            Some(serde_json::json!({"StringEquals": {"cloudwatch:namespace": c.namespace}})),
        ));
    }
    policy
}
