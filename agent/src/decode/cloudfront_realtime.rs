//! CloudFront real-time logs: one Kinesis record per request, the values of
//! the fields the real-time log configuration selected, separated by tabs,
//! with no header.
//!
//! CloudFront writes the selected fields in its own fixed order (the order
//! of [`REALTIME_FIELDS`]), whatever order the configuration listed them in;
//! selecting another field can move the others. So the source configuration
//! names the selected fields in any order, and the decoder puts them in
//! that order. Source: "Create a Kinesis Data Streams consumer" and
//! "Fields" in
//! <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/real-time-logs.html>.
//!
//! Values follow the standard log's conventions (`-` is empty, text is
//! URL-encoded, `sc-status` `000` means no status was sent), with these
//! differences, all from the same page:
//!
//! - `cs-uri-stem` is the whole request URL without the domain, query
//!   string included (`/images/cat.jpg?mobile=true`); the path ends at the
//!   first `?`.
//! - `cs-host` is the `Host` header the viewer sent (an alternate domain
//!   name, or the CloudFront domain name), which is the event's host;
//!   `x-host-header` is the distribution's domain name
//!   (`d111111abcdef8.cloudfront.net`), used only when `cs-host` is not
//!   selected. (The standard log has it the other way round: `cs(Host)` is
//!   the distribution's name, `x-host-header` the viewer's `Host`.)
//! - The user agent is `cs-user-agent`.
//! - `timestamp` is read as epoch seconds with up to three decimals
//!   (`1732104000.123`). The page says only that it is the date and time at
//!   which the edge server finished responding, not how it is written: the
//!   format is this decoder's assumption, not checked against AWS's
//!   documentation.
//! - `origin-fbl` (seconds of first-byte latency between CloudFront and the
//!   origin) becomes the upstream latency.
//!
//! A record may end with a newline. The record is split and read by the
//! standard log's code ([`RecordReader`]): same speed, same handling of odd
//! input.

use crate::decode::cloudfront::{ColumnMap, RecordReader};
use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason};
use crate::event::{EventSink, Origin, Wanted};

/// Every field a real-time log configuration can select, in the order
/// CloudFront writes them (the "Fields" list of
/// <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/real-time-logs.html>).
/// The decoder reads a few of them; the others are skipped.
pub const REALTIME_FIELDS: [&str; 69] = [
    "timestamp",
    "c-ip",
    "s-ip",
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
    "cmcd-version",
    "r-host",
    "sr-reason",
    "x-edge-mqcs",
    "distribution-tenant-id",
    "connection-id",
];

/// Where `name` comes in [`REALTIME_FIELDS`], ignoring ASCII case.
fn canonical_position(name: &str) -> Option<usize> {
    REALTIME_FIELDS.iter().position(|f| f.eq_ignore_ascii_case(name))
}

/// Decodes CloudFront real-time log records.
#[derive(Debug, Clone)]
pub struct CloudFrontRealtimeDecoder {
    columns: ColumnMap,
    reader: RecordReader,
}

impl CloudFrontRealtimeDecoder {
    /// `fields` is the real-time log configuration's field list, in any
    /// order: records hold them in CloudFront's order (see
    /// [`REALTIME_FIELDS`]). It must name only real-time log fields, each
    /// once, and include `timestamp` and `sc-status`, without which no
    /// record could be counted.
    pub fn new(default_service: &str, fields: &[&str]) -> Result<Self, String> {
        let mut positions = Vec::with_capacity(fields.len());
        for (i, name) in fields.iter().enumerate() {
            let Some(position) = canonical_position(name) else {
                return Err(format!(
                    "unknown CloudFront real-time log field `{name}` (position {}); expected one of {}",
                    i + 1,
                    REALTIME_FIELDS.join(", ")
                ));
            };
            if positions.contains(&position) {
                return Err(format!("CloudFront real-time log field `{name}` is listed twice"));
            }
            positions.push(position);
        }
        for required in ["timestamp", "sc-status"] {
            if !fields.iter().any(|f| f.eq_ignore_ascii_case(required)) {
                return Err(format!("CloudFront real-time log fields must include `{required}`"));
            }
        }
        positions.sort_unstable();
        let mut reader = RecordReader::new(default_service, Origin::CloudFrontRealtime);
        reader.stem_has_query = true;
        Ok(CloudFrontRealtimeDecoder {
            columns: ColumnMap::from_realtime_names(positions.iter().map(|&p| REALTIME_FIELDS[p].as_bytes())),
            reader,
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
