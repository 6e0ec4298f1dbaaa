//! Exporters: the agent's state as other systems read it.
//!
//! | file | what |
//! | --- | --- |
//! | [`slo`] | the SLO figures as metric families, shared by every exporter |
//! | [`prometheus`] | the `/metrics` exposition |
//! | [`otlp`] | OTLP metrics pushed to a collector or a vendor (`export.otlp`) |
//!
//! **Architecture invariant:** exporters read the published snapshot's
//! figures, never the engine; pushing exporters run one export at a time,
//! each bounded by its timeout, so a receiver that is down costs a counter
//! and a log line, never memory or a blocked thread.

pub mod otlp;
pub mod prometheus;
pub mod slo;

use std::path::Path;

use crate::yaml::Node;
use crate::yaml::fields::Ctx;

/// `export:` in `agent.yaml`: where the figures are pushed, besides `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportConfig {
    /// `export.otlp`: OTLP metrics; none when unset.
    pub otlp: Option<otlp::OtlpConfig>,
}

/// Read `export:`, each exporter's block by its own reader.
pub fn read_config(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<ExportConfig> {
    let f = cx.map(node, "export", &["otlp"])?;
    let otlp = match f.get("otlp") {
        None => Some(None),
        Some(n) => otlp::config::read(cx, n, base).map(Some),
    };
    Some(ExportConfig { otlp: otlp? })
}
