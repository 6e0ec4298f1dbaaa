//! `sources:` in `agent.yaml`: one entry per source, read by the module of
//! its type (`file/config.rs`, `push/config.rs`, `aws/config.rs`); what all
//! of them share (name, type, field lists) is here.

use std::path::Path;

use super::aws::config::{AwsSourceConfig, TYPES as AWS_TYPES};
use super::file::FileSourceConfig;
use super::push::{PushKind, PushSourceConfig};
use crate::decode::Format;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::{self, Node};

#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    File {
        file: FileSourceConfig,
    },
    /// Firehose, Lambda Telemetry API or OTLP/HTTP on the agent's server.
    Push {
        push: PushSourceConfig,
    },
    /// `cloudwatch-logs`, `cloudwatch-metrics`, `s3`, `xray` (see `source::aws::config`).
    Aws(Box<AwsSourceConfig>),
}

impl SourceConfig {
    /// The source's name: its checkpoint key and metric label.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::File { file } => &file.name,
            SourceConfig::Push { push } => &push.name,
            SourceConfig::Aws(a) => a.name(),
        }
    }
}

/// Read one `sources:` entry: its `type` picks the reader.
pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<SourceConfig> {
    if let Some(kind) = source_type(node).and_then(PushKind::parse) {
        return super::push::config::read(cx, node, base, kind).map(|push| SourceConfig::Push { push });
    }
    if let Some(kind) = source_type(node).filter(|k| AWS_TYPES.contains(k)) {
        return super::aws::config::read_source(cx, node, kind).map(|a| SourceConfig::Aws(Box::new(a)));
    }
    super::file::config::read(cx, node, base).map(|file| SourceConfig::File { file })
}

/// Every `type` a source may have.
pub const SOURCE_TYPES: &str = "file, firehose, lambda-telemetry, otlp, cloudwatch-logs, cloudwatch-metrics, s3, xray";

/// The `type` of a source entry, looked up before its fields are checked
/// (which fields are allowed depends on it).
pub fn source_type(node: &Node) -> Option<&str> {
    let yaml::Value::Map(entries) = &node.value else { return None };
    entries.iter().find(|(k, _)| k.text == "type").and_then(|(_, v)| match &v.value {
        yaml::Value::Scalar(s) => Some(s.text.as_str()),
        _ => None,
    })
}

/// A source's `name`: letters, digits, `-` and `_` (it is a metric label,
/// a checkpoint key and part of push URLs).
pub fn source_name(cx: &mut Ctx<'_>, f: &crate::yaml::fields::Fields<'_>) -> Option<String> {
    f.require(cx, "name").and_then(|n| {
        let t = cx.text(n, "name")?;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            cx.err(n.pos, format!("source name `{t}` may use only letters, digits, `-` and `_`"));
            return None;
        }
        Some(t.to_string())
    })
}

/// The `fields` of a source whose format takes a field list (CloudFront
/// real-time logs), checked by building the decoder; `what` names the key
/// that chose the format, for the message.
pub fn field_list(
    cx: &mut Ctx<'_>,
    f: &Fields<'_>,
    format: Format,
    pos: crate::yaml::Pos,
    what: &str,
) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    if let Some(n) = f.get("fields") {
        for item in cx.one_or_many(n, "fields") {
            if let Some(t) = cx.text(item, "fields") {
                fields.push(t.to_string());
            }
        }
    }
    if format != Format::CloudFrontRealtime {
        if let Some(n) = f.get("fields") {
            cx.err(n.pos, format!("`fields` is only for `{what}: cloudfront-realtime`"));
            return None;
        }
        return Some(fields);
    }
    if fields.is_empty() {
        cx.err(
            pos,
            format!("`{what}: cloudfront-realtime` needs `fields`, the distribution's real-time log field list"),
        );
        return None;
    }
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    if let Err(e) = format.decoder_with_fields("", &names) {
        let at = f.get("fields").map(|n| n.pos).unwrap_or(pos);
        cx.err(at, e);
        return None;
    }
    Some(fields)
}

/// Why a source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    File(#[from] super::file::FileSourceError),
    #[error(transparent)]
    Aws(#[from] super::aws::AwsSourceError),
}

/// A source built from its config: polled by the ingest thread, or served
/// on the HTTP server.
pub enum BuiltSource {
    Polled(Box<dyn super::Source>),
    Push(PushSourceConfig),
}

impl BuiltSource {
    /// The name of the source: its checkpoint key and metric label.
    pub fn name(&self) -> &str {
        match self {
            BuiltSource::Polled(s) => s.name(),
            BuiltSource::Push(p) => &p.name,
        }
    }

    /// The source type as configured, a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            BuiltSource::Polled(s) => s.kind(),
            BuiltSource::Push(p) => p.kind.as_str(),
        }
    }
}

impl SourceConfig {
    /// Validate what can only be checked now and build the source, resuming
    /// from `checkpoint` (its last committed position; push sources have none).
    pub fn build(
        &self,
        checkpoint: Option<&[u8]>,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Result<BuiltSource, BuildError> {
        Ok(match self {
            SourceConfig::File { file } => {
                BuiltSource::Polled(Box::new(super::file::FileTail::new(file.clone(), checkpoint)?))
            }
            SourceConfig::Aws(aws) => BuiltSource::Polled(super::aws::build(aws, checkpoint, clock)?),
            SourceConfig::Push { push } => {
                if push.token.is_none() {
                    tracing::warn!(
                        source = %push.name,
                        kind = push.kind.as_str(),
                        "push source accepts deliveries without a token; set token_file or token_env unless the listener is private"
                    );
                }
                BuiltSource::Push(push.clone())
            }
        })
    }

    /// The source type as configured, a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::File { .. } => "file",
            SourceConfig::Push { push } => push.kind.as_str(),
            SourceConfig::Aws(a) => a.kind(),
        }
    }

    /// Whether the source keeps a checkpoint (polled sources do).
    pub fn has_checkpoint(&self) -> bool {
        !matches!(self, SourceConfig::Push { .. })
    }
}
