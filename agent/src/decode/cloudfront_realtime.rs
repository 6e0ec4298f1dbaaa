//! CloudFront real-time logs: one Kinesis record per request, the values of
//! the fields the real-time log configuration selected, separated by tabs,
//! with no header. The order of the fields is AWS's canonical order of the
//! selected ones, so the source configuration must declare the same list.
//!
//! Values follow the standard log's conventions (`-` is empty, text is
//! URL-encoded, `sc-status` `000` means no status was sent), except that
//! `timestamp` is epoch seconds with milliseconds (`1732104000.123`) and a
//! few names differ (`cs-host`, `cs-user-agent`). `origin-fbl` (seconds)
//! becomes the upstream latency. A record may end with a newline.
//!
//! The record is split and read by the standard log's code
//! ([`RecordReader`]): same speed, same handling of odd input.

use crate::decode::cloudfront::{ColumnMap, RecordReader};
use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason};
use crate::event::{EventSink, Origin, Wanted};

/// Every field a real-time log configuration can select, in AWS's canonical
/// order.
pub const REALTIME_FIELDS: [&str; 62] = [
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
    "c-country",
    "cs-accept-encoding",
    "cs-accept",
    "cache-behavior-path-pattern",
    "cs-headers",
    "cs-header-names",
    "cs-headers-count",
    "primary-distribution-id",
    "primary-distribution-dns-name",
    "origin-fbl",
    "origin-lbl",
    "asn",
    "cmcd-encoded-bitrate",
    "cmcd-buffer-length",
    "cmcd-buffer-starvation",
    "cmcd-content-id",
    "cmcd-object-duration",
    "cmcd-deadline",
    "cmcd-measured-throughput",
    "cmcd-next-object-request",
    "cmcd-next-range-request",
    "cmcd-object-type",
    "cmcd-playback-rate",
    "cmcd-requested-maximum-throughput",
    "cmcd-streaming-format",
    "cmcd-session-id",
    "cmcd-stream-type",
    "cmcd-startup",
    "cmcd-top-bitrate",
];

/// Decodes CloudFront real-time log records.
#[derive(Debug, Clone)]
pub struct CloudFrontRealtimeDecoder {
    columns: ColumnMap,
    reader: RecordReader,
}

impl CloudFrontRealtimeDecoder {
    /// `fields` is the real-time log configuration's field list, in order.
    /// It must name only real-time log fields (see [`REALTIME_FIELDS`]),
    /// each once, and include `timestamp` and `sc-status`, without which no
    /// record could be counted.
    pub fn new(default_service: &str, fields: &[&str]) -> Result<Self, String> {
        for (i, name) in fields.iter().enumerate() {
            if !REALTIME_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "unknown CloudFront real-time log field `{name}` (position {}); expected one of {}",
                    i + 1,
                    REALTIME_FIELDS.join(", ")
                ));
            }
            if fields[..i].iter().any(|f| f.eq_ignore_ascii_case(name)) {
                return Err(format!("CloudFront real-time log field `{name}` is listed twice"));
            }
        }
        for required in ["timestamp", "sc-status"] {
            if !fields.iter().any(|f| f.eq_ignore_ascii_case(required)) {
                return Err(format!("CloudFront real-time log fields must include `{required}`"));
            }
        }
        Ok(CloudFrontRealtimeDecoder {
            columns: ColumnMap::from_names(fields.iter().map(|f| f.as_bytes())),
            reader: RecordReader::new(default_service, Origin::CloudFrontRealtime),
        })
    }
}

impl Decoder for CloudFrontRealtimeDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        if line.len() > MAX_LINE {
            return Err(RejectReason::TooLong.into());
        }
        // A Kinesis record keeps its newline; the reader drops a last `\r`.
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.reader.read(&self.columns, line, sink)
    }

    fn want(&mut self, fields: Wanted) {
        self.reader.wanted = fields;
    }
}

#[cfg(test)]
mod tests;
