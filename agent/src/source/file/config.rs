//! `sources:` entries of `type: file`.
//!
//! ```yaml
//! - name: cloudfront
//!   type: file
//!   paths: ["/var/log/cloudfront/*.log", "/var/log/cloudfront/*.gz"]
//!   format: cloudfront             # auto | cloudfront | ndjson | …
//!   service: shop                  # for records that name no service
//!   max_batch_bytes: 4194304       # read at most this much per poll
//!   fingerprint_bytes: 1024        # how much of a file identifies it
//! ```

use std::path::Path;

use super::{DEFAULT_FINGERPRINT_BYTES, FileSourceConfig, MAX_FINGERPRINT_BYTES, MIN_FINGERPRINT_BYTES};
use crate::decode::Format;
use crate::yaml::Node;
use crate::yaml::fields::Ctx;
use crate::yaml::values::resolve;

/// Read at most this many bytes per poll by default.
pub const DEFAULT_BATCH_BYTES: usize = 4 << 20;

pub fn read(cx: &mut Ctx<'_>, node: &Node, base: &Path) -> Option<FileSourceConfig> {
    let allowed = ["name", "type", "paths", "format", "fields", "service", "max_batch_bytes", "fingerprint_bytes"];
    let f = cx.map(node, "sources[]", &allowed)?;
    let name = super::super::config::source_name(cx, &f);
    let kind = f.require(cx, "type").and_then(|n| {
        let t = cx.text(n, "type")?;
        if t != "file" {
            cx.err(n.pos, format!("unknown source type `{t}`; supported: {}", super::super::config::SOURCE_TYPES));
            return None;
        }
        Some(t)
    });
    let mut paths = Vec::new();
    if let Some(n) = f.require(cx, "paths") {
        for item in cx.one_or_many(n, "paths") {
            if let Some(t) = cx.text(item, "paths") {
                let p = resolve(base, t).display().to_string();
                match glob::Pattern::new(&p) {
                    Ok(_) => paths.push(p),
                    Err(e) => cx.err(item.pos, format!("bad glob `{t}`: {e}")),
                }
            }
        }
    }
    let format = match f.get("format") {
        None => Some(Format::Auto),
        Some(n) => cx.text(n, "format").and_then(|t| match Format::parse(t) {
            Some(fm) => Some(fm),
            None => {
                cx.err(n.pos, format!("unknown format `{t}`; expected one of {}", Format::NAMES));
                None
            }
        }),
    };
    let fields = format.and_then(|fm| {
        let pos = f.get("format").map(|n| n.pos).unwrap_or(node.pos);
        super::super::config::field_list(cx, &f, fm, pos, "format")
    });
    let service = match f.get("service") {
        Some(n) => cx.text(n, "service").map(str::to_string),
        None => Some(String::new()),
    };
    let max_batch_bytes = match f.get("max_batch_bytes") {
        None => Some(DEFAULT_BATCH_BYTES),
        Some(n) => cx.number(n, "max_batch_bytes").and_then(|v| {
            if v >= 4096.0 && v <= (1u64 << 32) as f64 && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(n.pos, "`max_batch_bytes` must be a whole number from 4096 to 4294967296");
                None
            }
        }),
    };
    let fingerprint_bytes = match f.get("fingerprint_bytes") {
        None => Some(DEFAULT_FINGERPRINT_BYTES),
        Some(n) => cx.number(n, "fingerprint_bytes").and_then(|v| {
            if v >= MIN_FINGERPRINT_BYTES as f64 && v <= MAX_FINGERPRINT_BYTES as f64 && v.fract() == 0.0 {
                Some(v as usize)
            } else {
                cx.err(
                    n.pos,
                    format!(
                        "`fingerprint_bytes` must be a whole number from {MIN_FINGERPRINT_BYTES} to {MAX_FINGERPRINT_BYTES}"
                    ),
                );
                None
            }
        }),
    };
    kind?;
    Some(FileSourceConfig {
        name: name?,
        paths,
        format: format?,
        fields: fields?,
        service: service?,
        max_batch_bytes: max_batch_bytes?,
        fingerprint_bytes: fingerprint_bytes?,
    })
}
