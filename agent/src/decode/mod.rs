//! Decoders: bytes in, [`RequestEvent`]s out. One file per wire or file format.
//!
//! **Architecture invariant:** a decoder never blocks, never does I/O, never
//! panics on input, and never allocates per event or per field on the hot path
//! (it may keep scratch buffers of its own). A line it cannot use is a
//! [`Reject`] with a reason from a fixed set; the caller counts it and keeps a
//! sample. Adding a log format means adding one file here and one arm to
//! [`Format`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use crate::event::{EventSink, Wanted};

pub mod apigateway;
pub mod cloudfront;
pub mod cloudfront_realtime;
pub mod cloudfront_v2;
pub mod cloudwatch_export;
pub mod cloudwatch_logs;
pub mod lambda;
pub mod ndjson;
pub mod otlp;
pub(crate) mod saved;
pub(crate) mod scalar;

/// Why a line was not turned into an event. Reasons are a bounded set so they
/// can be metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reject {
    pub reason: RejectReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// A data line arrived before any header told what its columns are.
    NoHeader,
    /// Fewer fields than the header promised, or a required field missing.
    MissingField,
    BadTimestamp,
    BadStatus,
    BadNumber,
    /// Not valid JSON, or JSON that is not an object.
    BadJson,
    /// Not UTF-8 where text was required.
    BadEncoding,
    /// Longer than the decoder accepts.
    TooLong,
    /// A field of the wrong JSON type (a number where text belongs, an
    /// object where a number belongs, …) that is neither a timestamp, a
    /// status nor a number.
    BadField,
    /// A request record (a Lambda `REPORT` line or `platform.report`
    /// event) behind a prefix or in a shape the decoder does not know.
    Unrecognized,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        RejectReason::BadField,
        RejectReason::NoHeader,
        RejectReason::MissingField,
        RejectReason::BadTimestamp,
        RejectReason::BadStatus,
        RejectReason::BadNumber,
        RejectReason::BadJson,
        RejectReason::BadEncoding,
        RejectReason::TooLong,
        RejectReason::Unrecognized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoHeader => "no_header",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadStatus => "bad_status",
            RejectReason::BadNumber => "bad_number",
            RejectReason::BadJson => "bad_json",
            RejectReason::BadEncoding => "bad_encoding",
            RejectReason::TooLong => "too_long",
            RejectReason::BadField => "bad_field",
            RejectReason::Unrecognized => "unrecognized",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RejectReason> for Reject {
    fn from(reason: RejectReason) -> Self {
        Reject { reason }
    }
}

/// Why [`gunzip_bounded`] gave up.
#[derive(Debug)]
pub enum GunzipError {
    /// Not gzip, or damaged.
    Corrupt(io::Error),
    /// It decompresses to more than the limit (a zip bomb, or a mistake).
    TooLarge,
}

/// Decompress (possibly multi-member) gzip, at most `max` bytes of output:
/// never more than `max + 1` bytes are produced before it gives up.
pub fn gunzip_bounded(compressed: &[u8], max: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() as u64 > max {
        return Err(GunzipError::TooLarge);
    }
    Ok(out)
}

/// Longest line any decoder accepts (bytes); longer lines are rejected as `TooLong`.
pub const MAX_LINE: usize = 64 * 1024;

/// A line-oriented decoder. Lines come without their trailing `\n` (a trailing
/// `\r` may still be there). Header and comment lines are consumed silently
/// (they update the decoder's state and emit nothing).
pub trait Decoder: Send {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject>;

    /// Forget per-file state (column maps); called when a new file starts.
    fn reset(&mut self) {}

    /// Which optional fields the consumer reads; the rest may be skipped.
    /// Decoders start with [`Wanted::ALL`].
    fn want(&mut self, _fields: Wanted) {}

    /// The time of the record the next lines come from, when the transport
    /// knows it (a CloudWatch Logs event's timestamp), for formats whose lines
    /// carry none (Lambda `REPORT`). `None` clears it.
    fn set_time_hint(&mut self, _ts_ms: Option<i64>) {}
}

/// Feed one line, as read from a file or stream, to a decoder: blank lines
/// are skipped, overlong and undecodable ones counted (and sampled with
/// `place`, e.g. `file:line`).
pub fn feed_line(
    decoder: &mut dyn Decoder,
    bytes: &[u8],
    overlong: bool,
    sink: &mut dyn EventSink,
    rejects: &mut Rejects,
    place: impl FnOnce() -> String,
) {
    if overlong {
        rejects.record(RejectReason::TooLong, place, bytes);
        return;
    }
    if bytes.is_empty() || bytes == b"\r" {
        return;
    }
    if let Err(r) = decoder.decode_line(bytes, sink) {
        rejects.record(r.reason, place, bytes);
    }
}

/// The common start of a JSON-per-line decoder: `Ok(None)` for a blank
/// line (nothing to decode), `Ok(Some(object))` for a line that may hold a
/// JSON object, a reject for an overlong line or one that cannot be an
/// object. The object may stand behind the prefix `aws logs tail` or
/// `awslogs get` put before a saved CloudWatch Logs message (at most four
/// timestamps and log group or stream names, `decode/saved.rs`); the
/// prefix's time is not used, the record carries its own.
pub(crate) fn json_object_line(line: &[u8]) -> Result<Option<&[u8]>, Reject> {
    if line.len() > MAX_LINE {
        return Err(RejectReason::TooLong.into());
    }
    match line.iter().position(|b| !b.is_ascii_whitespace()) {
        None => Ok(None),
        Some(i) if line[i] == b'{' => Ok(Some(line)),
        // serde would read a JSON array as a struct's fields in order.
        Some(i) => saved::strip_prefix(&line[i..], 4, |s| s.first() == Some(&b'{'))
            .map(|(_, object)| Some(object))
            .ok_or_else(|| RejectReason::BadJson.into()),
    }
}

/// The formats `--format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    CloudFront,
    Ndjson,
    /// CloudFront standard logging v2, `json` output.
    CloudFrontV2Json,
    /// CloudFront real-time logs; needs the configured field list
    /// ([`Format::decoder_with_fields`]).
    CloudFrontRealtime,
    Lambda,
    ApiGateway,
    /// OpenTelemetry traces as the Collector's file exporter writes them:
    /// one OTLP/JSON `ExportTraceServiceRequest` per line.
    OtlpJson,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "auto" => Some(Format::Auto),
            "cloudfront" => Some(Format::CloudFront),
            "ndjson" => Some(Format::Ndjson),
            "cloudfront-v2" => Some(Format::CloudFrontV2Json),
            "cloudfront-realtime" => Some(Format::CloudFrontRealtime),
            "lambda" => Some(Format::Lambda),
            "apigateway" => Some(Format::ApiGateway),
            "otlp-json" => Some(Format::OtlpJson),
            _ => None,
        }
    }

    pub const NAMES: &'static str =
        "auto, cloudfront, cloudfront-v2, cloudfront-realtime, ndjson, apigateway, lambda, otlp-json";

    /// Guess the format from the first bytes of a file or stream.
    pub fn detect(head: &[u8]) -> Option<Format> {
        let first = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .find(|l| !l.iter().all(|b| b.is_ascii_whitespace()))?;
        if first.starts_with(b"#Version:") || first.starts_with(b"#Fields:") {
            return Some(Format::CloudFront);
        }
        if lambda::looks_like_lambda(first) {
            return Some(Format::Lambda);
        }
        // A JSON record, from the first byte or behind a saved line's prefix.
        let object = match first.first() {
            Some(b'{') => Some(first),
            _ => saved::strip_prefix(first, 4, |s| s.first() == Some(&b'{')).map(|(_, object)| object),
        };
        if let Some(object) = object {
            if otlp::looks_like_otlp_json(object) {
                return Some(Format::OtlpJson);
            }
            // CloudFront v2 names its fields after the W3C columns.
            let v2 = [&b"\"sc-status\""[..], b"\"x-edge-location\""];
            if v2.iter().any(|key| memchr::memmem::find(object, key).is_some()) {
                return Some(Format::CloudFrontV2Json);
            }
            if apigateway::looks_like_json(object) {
                return Some(Format::ApiGateway);
            }
            // The function's own JSON output, saved from its log group.
            if saved::names_lambda(&first[..first.len() - object.len()]) {
                return Some(Format::Lambda);
            }
            return Some(Format::Ndjson);
        }
        // A CloudFront standard log whose header was cut off (or a stream of
        // bare records): the canonical 33 tab-separated fields, date first.
        if looks_like_headerless_cloudfront(first) {
            return Some(Format::CloudFront);
        }
        if apigateway::looks_like_preset(first) {
            return Some(Format::ApiGateway);
        }
        None
    }

    /// A fresh decoder; `default_service` names the service for events whose
    /// record carries none (CloudFront logs never do). `None` for `Auto`, and
    /// for formats that need a field list ([`Format::decoder_with_fields`]).
    pub fn decoder(self, default_service: &str) -> Option<Box<dyn Decoder>> {
        match self {
            Format::Auto | Format::CloudFrontRealtime => None,
            Format::CloudFrontV2Json => Some(Box::new(cloudfront_v2::CloudFrontV2JsonDecoder::new(default_service))),
            Format::CloudFront => Some(Box::new(cloudfront::CloudFrontStandardDecoder::new(default_service))),
            Format::Ndjson => Some(Box::new(ndjson::NdjsonDecoder::new(default_service))),
            Format::Lambda => Some(Box::new(lambda::LambdaDecoder::new(default_service))),
            Format::ApiGateway => Some(Box::new(apigateway::ApiGatewayDecoder::new(default_service))),
            Format::OtlpJson => Some(Box::new(otlp::OtlpJsonDecoder::new(default_service))),
        }
    }

    /// A fresh decoder for records whose fields the configuration lists
    /// (CloudFront real-time logs); other formats ignore `fields`. `Err` says
    /// what is wrong with the list, or that `Auto` has no decoder.
    pub fn decoder_with_fields(self, default_service: &str, fields: &[&str]) -> Result<Box<dyn Decoder>, String> {
        match self {
            Format::CloudFrontRealtime => {
                Ok(Box::new(cloudfront_realtime::CloudFrontRealtimeDecoder::new(default_service, fields)?))
            }
            f => f.decoder(default_service).ok_or_else(|| "`auto` is not a concrete format".to_owned()),
        }
    }
}

/// Whether `line` looks like a CloudFront standard log record without its
/// header: exactly 33 tab-separated fields and a `YYYY-MM-DD` date first.
pub(crate) fn looks_like_headerless_cloudfront(line: &[u8]) -> bool {
    line.get(..11).is_some_and(|head| head[10] == b'\t' && parse_date(&head[..10]).is_some())
        && memchr::memchr_iter(b'\t', line).count() == cloudfront::CANONICAL_FIELDS.len() - 1
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`.
///
/// The caller guarantees `1 <= m <= 12` and `1 <= d <= 31`. The computation
/// counts from a year that starts in March, so the leap day is the last day
/// of its year and each 400-year era has the same length (146 097 days).
#[inline]
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let month_from_march = i64::from((m + 9) % 12); // March = 0 … February = 11
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(d) - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

#[inline]
pub(crate) fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

#[inline]
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap_year(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `n` ASCII digits as a number; `None` if any byte is not a digit.
#[inline]
fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then(|| acc * 10 + u32::from(d))
    })
}

/// `YYYY-MM-DD` to days since the Unix epoch; `None` unless it is a real date.
#[inline]
pub(crate) fn parse_date(s: &[u8]) -> Option<i64> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s else {
        return None;
    };
    let y = i64::from(digits(&[y0, y1, y2, y3])?);
    let m = digits(&[m0, m1])?;
    let d = digits(&[d0, d1])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:MM:SS` to seconds since midnight; `None` unless it is a real time of day.
#[inline]
pub(crate) fn parse_time_of_day(s: &[u8]) -> Option<i64> {
    let [h0, h1, b':', m0, m1, b':', s0, s1] = *s else {
        return None;
    };
    let h = digits(&[h0, h1])?;
    let m = digits(&[m0, m1])?;
    let sec = digits(&[s0, s1])?;
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(i64::from(h * 3600 + m * 60 + sec))
}

/// Test support: decode `input` line by line and render each outcome as one
/// line of text (events, rejects; header lines render nothing), so tests can
/// compare whole runs against expected text.
#[cfg(test)]
pub(crate) fn render_run(decoder: &mut dyn Decoder, input: &[u8]) -> String {
    render_with(decoder, input, render_event)
}

/// Test support: decode `input` line by line with `wanted`, and render the
/// requester of each event (client address, user agent, ASN) as one line,
/// or `reject <reason>`.
#[cfg(test)]
pub(crate) fn render_requesters(decoder: &mut dyn Decoder, wanted: Wanted, input: &[u8]) -> String {
    decoder.want(wanted);
    render_with(decoder, input, |e| format!("addr={:?} ua={:?} asn={:?}", e.client_addr, e.user_agent, e.asn))
}

/// Each line's events rendered by `render`, one per line, or `reject <reason>`.
#[cfg(test)]
fn render_with(
    decoder: &mut dyn Decoder,
    input: &[u8],
    render: impl Fn(&crate::event::RequestEvent<'_>) -> String,
) -> String {
    let mut out = String::new();
    for line in input.split(|&b| b == b'\n') {
        let mut rendered = Vec::new();
        match decoder.decode_line(line, &mut |e: &crate::event::RequestEvent<'_>| rendered.push(render(e))) {
            Ok(()) => rendered.iter().for_each(|r| {
                out.push_str(r);
                out.push('\n');
            }),
            Err(reject) => {
                out.push_str("reject ");
                out.push_str(reject.reason.as_str());
                out.push('\n');
            }
        }
    }
    out
}

/// Test support: decode `input` line by line with `wanted`, and render the
/// viewer's protocol and TLS version of each event as one line (`proto=https
/// tls=TLSv1.3`), or `reject <reason>`.
#[cfg(test)]
pub(crate) fn render_connections(decoder: &mut dyn Decoder, wanted: Wanted, input: &[u8]) -> String {
    decoder.want(wanted);
    render_with(decoder, input, |e| format!("proto={} tls={}", e.protocol.as_str(), e.tls_version.as_str()))
}

/// Test support: `expected` with each line trimmed and blank lines dropped,
/// to compare with [`render_requesters`].
#[cfg(test)]
pub(crate) fn expected_lines(expected: &str) -> String {
    expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect()
}

/// One event as one line of text; fields at their defaults are left out.
#[cfg(test)]
pub(crate) fn render_event(e: &crate::event::RequestEvent<'_>) -> String {
    use std::fmt::Write;
    let mut s = match jiff::Timestamp::from_millisecond(e.ts_ms) {
        Ok(ts) => format!("{ts}"),
        Err(_) => format!("ts_ms={}", e.ts_ms),
    };
    let origin = e.origin.map_or("-", |o| o.as_str());
    let _ = write!(s, " {origin} {} {} {} {:?} {}", e.service, e.host, e.method, e.path, e.status);
    if let Some(l) = e.latency_ms {
        let _ = write!(s, " latency={l}");
    }
    if let Some(l) = e.upstream_latency_ms {
        let _ = write!(s, " upstream={l}");
    }
    for (name, v) in [("edge", e.edge_location), ("id", e.request_id), ("trace", e.trace_id)] {
        if !v.is_empty() {
            let _ = write!(s, " {name}={v}");
        }
    }
    if e.client != crate::event::ClientClass::Unknown {
        let _ = write!(s, " client={:?}", e.client);
    }
    if e.cache != crate::event::CacheResult::Unknown {
        let _ = write!(s, " cache={:?}", e.cache);
    }
    if e.bytes != 0 {
        let _ = write!(s, " bytes={}", e.bytes);
    }
    s
}

/// How many samples of rejected lines are kept per source and reason.
pub const SAMPLES_PER_REASON: usize = 5;
/// How much of a rejected line a sample keeps.
pub const SAMPLE_BYTES: usize = 300;

/// Rejected lines, counted per reason, with the first few kept as samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejects {
    pub by_reason: BTreeMap<RejectReason, RejectStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectStats {
    pub count: u64,
    /// `(where, line prefix)`; `where` is `file:line` or a source's position.
    pub samples: Vec<(String, String)>,
}

impl Rejects {
    pub fn record(&mut self, reason: RejectReason, place: impl FnOnce() -> String, line: &[u8]) {
        let stats = self.by_reason.entry(reason).or_default();
        stats.count += 1;
        if stats.samples.len() < SAMPLES_PER_REASON {
            let cut = &line[..line.len().min(SAMPLE_BYTES)];
            stats.samples.push((place(), String::from_utf8_lossy(cut).into_owned()));
        }
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|s| s.count).sum()
    }

    pub fn merge(&mut self, other: &Rejects) {
        for (reason, s) in &other.by_reason {
            let mine = self.by_reason.entry(*reason).or_default();
            mine.count += s.count;
            for sample in &s.samples {
                if mine.samples.len() < SAMPLES_PER_REASON {
                    mine.samples.push(sample.clone());
                }
            }
        }
    }
}
