//! `sources:` entries of `type: firehose | lambda-telemetry | otlp`.
//!
//! ```yaml
//! - name: edge-logs
//!   type: firehose
//!   token_file: /etc/slo-agent/firehose-access-key   # or token_env: FIREHOSE_ACCESS_KEY
//!   records: cloudwatch-logs          # or a line format: cloudfront-realtime, apigateway, lambda, …
//!   log_groups:                       # cloudwatch-logs only: which decoder reads which log group
//!     - {log_group: "/aws/lambda/*", format: lambda}
//!     - {log_group: "/aws/apigateway/*", format: apigateway, service: checkout}
//!   fields: [timestamp, c-ip, …]      # cloudfront-realtime only: the distribution's field list
//!   service: shop
//!   max_body_bytes: 16777216          # as sent (gzip counts compressed)
//!   max_decoded_bytes: 67108864       # after gzip and base64
//! ```

use std::path::Path;

use crate::decode::Format;
use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::secret::Secret;
use crate::source::push::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECODED_BYTES, PushKind, PushSourceConfig, RecordFormat,
};
use crate::spec::glob::Glob;
use crate::yaml::Node;
use crate::yaml::fields::{Ctx, Fields};

pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path, kind: PushKind) -> Option<PushSourceConfig> {
    let common = ["name", "type", "service", "token_file", "token_env", "max_body_bytes", "max_decoded_bytes"];
    let mut allowed = common.to_vec();
    if kind == PushKind::Firehose {
        allowed.extend(["records", "log_groups", "fields"]);
    }
    let f = cx.map(node, "sources[]", &allowed)?;
    let name = crate::source::config::source_name(cx, &f);
    let service = match f.get("service") {
        Some(n) => cx.text(n, "service").map(str::to_string),
        None => Some(String::new()),
    };
    let token = read_token(cx, &f, base, kind);
    let max_body_bytes = byte_limit(cx, &f, "max_body_bytes", DEFAULT_MAX_BODY_BYTES);
    let max_decoded_bytes = byte_limit(cx, &f, "max_decoded_bytes", DEFAULT_MAX_DECODED_BYTES);
    let records = if kind == PushKind::Firehose {
        read_records(cx, &f)
    } else {
        Some(RecordFormat::Lines { format: Format::Auto, fields: Vec::new() })
    };
    Some(PushSourceConfig {
        name: name?,
        kind,
        records: records?,
        service: service?,
        token: token?,
        max_body_bytes: max_body_bytes?,
        max_decoded_bytes: max_decoded_bytes?,
    })
}

/// Shortest push token accepted (as for API tokens): a short one can be guessed.
pub const MIN_TOKEN_BYTES: usize = crate::auth::MIN_TOKEN_BYTES;

fn read_token(cx: &mut Ctx<'_>, f: &Fields<'_>, base: &Path, kind: PushKind) -> Option<Option<Secret>> {
    let what = if kind == PushKind::Firehose { "the Firehose access key" } else { "the bearer token" };
    let token = crate::yaml::values::read_secret(cx, f, base, "token", what)?;
    if let Some(t) = &token
        && t.expose().len() < MIN_TOKEN_BYTES
    {
        let at = f.get("token_file").or(f.get("token_env")).map_or(f.node.pos, |n| n.pos);
        cx.err(
            at,
            format!("{what} is shorter than {MIN_TOKEN_BYTES} characters; make one with `openssl rand -hex 32`"),
        );
        return None;
    }
    Some(token)
}

fn byte_limit(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: usize) -> Option<usize> {
    match f.get(key) {
        None => Some(default),
        Some(n) => cx.number(n, key).and_then(|v| {
            if (1024.0..=(1u64 << 32) as f64).contains(&v) && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, format!("`{key}` must be a whole number of bytes from 1024 to 4294967296"));
                None
            }
        }),
    }
}

fn read_records(cx: &mut Ctx<'_>, f: &Fields<'_>) -> Option<RecordFormat> {
    let records = match f.get("records") {
        None => "cloudwatch-logs",
        Some(n) => cx.text(n, "records")?,
    };
    if records == "cloudwatch-logs" {
        if let Some(n) = f.get("fields") {
            cx.err(n.pos, "`fields` is for `records: cloudfront-realtime`");
        }
        let routes = match f.get("log_groups") {
            None => SubscriptionDecoder::default_routes(),
            Some(n) => {
                let mut routes = Vec::new();
                for item in cx.list(n, "log_groups")? {
                    if let Some(r) = read_route(cx, item) {
                        routes.push(r);
                    }
                }
                routes
            }
        };
        return Some(RecordFormat::CloudWatchLogs(routes));
    }
    let pos = f.get("records").map(|n| n.pos).unwrap_or(f.node.pos);
    if let Some(n) = f.get("log_groups") {
        cx.err(n.pos, "`log_groups` is for `records: cloudwatch-logs`");
    }
    let format = match Format::parse(records) {
        Some(Format::Auto) => {
            cx.err(pos, "`records` must name the format (Firehose records carry no header to detect it from)");
            return None;
        }
        Some(fm) => fm,
        None => {
            cx.err(
                pos,
                format!("unknown record format `{records}`; expected cloudwatch-logs or one of {}", Format::NAMES),
            );
            return None;
        }
    };
    let fields = crate::source::config::field_list(cx, f, format, pos, "records")?;
    Some(RecordFormat::Lines { format, fields })
}

fn read_route(cx: &mut Ctx<'_>, node: &Node) -> Option<LogGroupRoute> {
    let f = cx.map(node, "log_groups[]", &["log_group", "format", "service"])?;
    let log_group = f.require(cx, "log_group").and_then(|n| {
        let t = cx.text(n, "log_group")?;
        match Glob::new(t) {
            Ok(g) => Some(g),
            Err(e) => {
                cx.err(n.pos, format!("bad log group pattern `{t}`: {e}"));
                None
            }
        }
    });
    let format = f.require(cx, "format").and_then(|n| {
        let t = cx.text(n, "format")?;
        match Format::parse(t) {
            Some(Format::Auto) | Some(Format::CloudFrontRealtime) | None => {
                cx.err(n.pos, format!("log group format must be one of apigateway, lambda, ndjson, cloudfront, cloudfront-v2; found `{t}`"));
                None
            }
            Some(fm) => Some(fm),
        }
    });
    let service = f.get("service").and_then(|n| cx.text(n, "service")).map(str::to_string);
    Some(LogGroupRoute { log_group: log_group?, format: format?, service })
}
