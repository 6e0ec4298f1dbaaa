//! Exporters: the agent's state as other systems read it.
//!
//! `prometheus` renders `/metrics`; `cloudwatch` sends every SLO's figures
//! to CloudWatch (`export.cloudwatch:`). The `export:` section of agent.yaml
//! is read here, each exporter's part by the exporter's own `config.rs`.

pub mod cloudwatch;
pub mod prometheus;

use std::path::Path;

use serde_json::Value;

use crate::source::SourceConfig;
use crate::yaml::Node;
use crate::yaml::fields::Ctx;

/// `export:` in agent.yaml: the exporters that push the figures somewhere
/// (the Prometheus exposition is always served, and needs no config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportConfig {
    /// `export.cloudwatch:`; off without it.
    pub cloudwatch: Option<cloudwatch::CloudWatchExportConfig>,
}

/// Read `export:`, handing each exporter's key to its reader.
pub fn read_export(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ExportConfig> {
    let f = cx.map(node, "export", &["cloudwatch"])?;
    let cloudwatch = match f.get("cloudwatch") {
        None => Some(None),
        Some(n) => cloudwatch::config::read(cx, n, base).map(Some),
    };
    Some(ExportConfig { cloudwatch: cloudwatch? })
}

/// The least-privilege IAM policy of the configured AWS sources
/// (`source::aws::iam`) and exporters (`slo-agent iam-policy`):
/// `export.cloudwatch` with `mode: put_metric_data` adds
/// `cloudwatch:PutMetricData` (the action takes no resource), held to its
/// namespace by the `cloudwatch:namespace` condition; EMF needs nothing.
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
