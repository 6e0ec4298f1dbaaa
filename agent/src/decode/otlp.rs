//! OpenTelemetry traces (OTLP): server spans in, request events out.
//!
//! The input is an `ExportTraceServiceRequest` (opentelemetry-proto
//! `collector/trace/v1`), in either encoding OTLP/HTTP allows:
//!
//! - **binary protobuf** ([`decode_traces_protobuf`]), read by a small
//!   bounds-checked wire reader of our own (`otlp/protobuf.rs`): no generated
//!   code, no build script;
//! - **OTLP/JSON** ([`decode_traces_json`]): the proto3 JSON mapping with the
//!   OTLP deviations: keys are lowerCamelCase only (the spec says the original
//!   snake_case field names are *not* valid keys, so `resource_spans` is an
//!   unknown field and is ignored like any other), trace and span ids are hex,
//!   enums are integers (an enum name is an error), and 64-bit integers are
//!   decimal strings or numbers. Unknown keys are ignored, as the spec
//!   requires; `null` is the same as a missing key.
//!
//! The OpenTelemetry Collector's file exporter writes one JSON request per
//! line; [`OtlpJsonDecoder`] reads those files (format `otlp-json`).
//!
//! # Which spans become events
//!
//! Only spans of kind `SPAN_KIND_SERVER` (2) are requests served; every
//! other kind is counted in [`OtlpStats::spans`] and skipped, never rejected.
//! A server span becomes one [`RequestEvent`]:
//!
//! | event field | from |
//! | --- | --- |
//! | `ts_ms` | `end_time_unix_nano`, in milliseconds (rounded down) |
//! | `latency_ms` | `end_time_unix_nano − start_time_unix_nano`, in milliseconds |
//! | `status` | `http.response.status_code`, else `http.status_code` (an int, or a string of digits) |
//! | `method` | `http.request.method` (its `http.request.method_original` when it is `_OTHER`), else `http.method` |
//! | `path` | `url.path`, else `http.target`; the query string (from `?`) is dropped |
//! | `host` | `server.address`, else `http.host`, else `net.host.name` |
//! | `route` | `http.route`; empty when missing |
//! | `service` | the resource's `service.name`; the source's default service when missing or empty |
//! | `trace_id`, `request_id` | the trace id and the span id, lowercase hex; empty when missing or invalid |
//! | `client_addr` | `client.address`, else `http.client_ip`, else `net.peer.ip` |
//! | `user_agent` | `user_agent.original`, else `http.user_agent` |
//! | `origin` | `otlp` |
//!
//! The current semantic conventions win over the old ones when a span has
//! both. [`decode_traces_protobuf`] and [`decode_traces_json`] always fill the
//! requester (`client_addr`, `user_agent`; spans carry no ASN);
//! [`OtlpJsonDecoder`] fills it only when [`Wanted::requester`] is asked for. Attribute values of another type than expected (a number for
//! `url.path`) are ignored, except the status code: see below.
//!
//! `outcome`: status ≥ 500 → `error`; status 429 → `throttled`; span status
//! `STATUS_CODE_ERROR` (2) → `error`; otherwise `success` when the span has an
//! HTTP status or span status `STATUS_CODE_OK` (1), `unknown` when it has
//! neither.
//!
//! **A server span without an HTTP status** (gRPC, a queue handler, or an
//! instrumentation that sets none) still counts. Its `status` is 0, "none",
//! like CloudFront's `000`: it matches `"< 500"` and not `2xx`. If its span
//! status is `STATUS_CODE_ERROR`, its `status` is 500 instead, so that status
//! criteria (the usual availability SLO, `"< 500"`) count the failure, the way
//! the Lambda decoder gives failed invocations 500.
//!
//! # Rejected spans
//!
//! A server span is rejected (counted in [`OtlpStats::rejected`], never a
//! panic, and the rest of the request is still used) when a start or end time
//! is missing (zero), when it ends before it starts, or when its HTTP status
//! attribute is not a status (not 0–999, or not a whole number). The numbers
//! are what an OTLP receiver answers in `partial_success.rejected_spans`
//! ([`OtlpStats::rejected_spans`], [`OtlpStats::rejection_message`]).
//!
//! A body that is not a request at all (truncated or malformed protobuf, a
//! wrong wire type for a field read here, invalid UTF-8 in a string read here,
//! a JSON syntax error, a JSON value of the wrong type for a known field) is an
//! [`OtlpError`] that says where, and **no event is emitted**: the decoders
//! collect a request's events first and hand them to the sink only once the
//! whole body has been read, so a refused request counts nothing.
//!
//! # Cost
//!
//! Events borrow their strings from the body (JSON strings with escapes in
//! them are copied). A request allocates a vector for its server spans and
//! one entry per resource; nothing is allocated per span or per attribute.
//! In protobuf, attributes with keys not read here are skipped without
//! decoding their values; in JSON a value may come before its key, so every
//! value is read (strings without copying).

use std::borrow::Cow;
use std::fmt;

use crate::decode::{Decoder, Reject, RejectReason};
use crate::event::{EventSink, Origin, Outcome, RequestEvent, Wanted, parse_status};

mod json;
mod protobuf;
#[cfg(test)]
mod test_encoder;
#[cfg(test)]
mod tests;

/// Largest request body either decoder reads (bytes). The OTLP spec
/// recommends that receivers refuse bodies over 20 MiB after decompression;
/// this is a backstop above that for callers that allow more.
pub const MAX_BODY: usize = 64 << 20;

const SPAN_KIND_SERVER: i64 = 2;
const STATUS_CODE_OK: i64 = 1;
const STATUS_CODE_ERROR: i64 = 2;

/// What one request held, besides its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Every span in the request, of every kind.
    pub spans: u64,
    /// Spans of kind `SPAN_KIND_SERVER`: `events + rejected_spans()`.
    pub server_spans: u64,
    /// Events handed to the sink.
    pub events: u64,
    /// Server spans that could not be used, by reason.
    pub rejected: SpanRejects,
}

/// Server spans that could not be used, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanRejects {
    /// `start_time_unix_nano` or `end_time_unix_nano` missing or zero.
    pub missing_time: u64,
    /// `end_time_unix_nano` before `start_time_unix_nano`.
    pub end_before_start: u64,
    /// An HTTP status attribute that is not a status code.
    pub bad_status: u64,
}

impl OtlpStats {
    /// The number for OTLP's `partial_success.rejected_spans`.
    pub fn rejected_spans(&self) -> u64 {
        self.rejected.missing_time + self.rejected.end_before_start + self.rejected.bad_status
    }

    /// A message for OTLP's `partial_success.error_message`, in English:
    /// `None` when no span was rejected.
    pub fn rejection_message(&self) -> Option<String> {
        let r = &self.rejected;
        let parts: Vec<String> = [
            (r.missing_time, "without a start or end time"),
            (r.end_before_start, "that end before they start"),
            (r.bad_status, "whose HTTP status attribute is not a status code"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} server span(s) {why}"))
        .collect();
        (!parts.is_empty()).then(|| format!("rejected {}", parts.join("; ")))
    }
}

/// A body that is not an `ExportTraceServiceRequest` at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    #[error("request body of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("not a protobuf ExportTraceServiceRequest: {problem} at byte {offset}")]
    Protobuf { offset: usize, problem: WireProblem },
    #[error("not an OTLP/JSON ExportTraceServiceRequest: {message} at line {line}, column {column}")]
    Json { line: usize, column: usize, message: String },
}

/// What is wrong with a protobuf body, at the byte offset the error gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireProblem {
    /// The body or an enclosing message ends inside a field.
    Truncated,
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    VarintTooLong,
    /// Field number 0 or above 2^29 − 1.
    BadFieldNumber,
    /// Wire types 3 and 4 (groups) and 6 and 7 do not occur in OTLP.
    UnsupportedWireType(u8),
    /// A field read here, encoded with another wire type than its proto type has.
    WrongWireType { field: &'static str, wire_type: u8 },
    /// A string field read here that is not UTF-8.
    InvalidUtf8 { field: &'static str },
}

impl fmt::Display for WireProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireProblem::Truncated => f.write_str("the message ends inside a field"),
            WireProblem::VarintTooLong => f.write_str("varint longer than 64 bits"),
            WireProblem::BadFieldNumber => f.write_str("field number out of range"),
            WireProblem::UnsupportedWireType(t) => write!(f, "wire type {t}, which OTLP does not use"),
            WireProblem::WrongWireType { field, wire_type } => write!(f, "{field} has wire type {wire_type}"),
            WireProblem::InvalidUtf8 { field } => write!(f, "{field} is not UTF-8"),
        }
    }
}

/// Decode a binary protobuf `ExportTraceServiceRequest` (OTLP/HTTP
/// `application/x-protobuf`, or the payload of an OTLP/gRPC `Export` call).
/// Events go to `sink` only when the whole body is readable.
pub fn decode_traces_protobuf(
    body: &[u8],
    default_service: &str,
    sink: &mut dyn EventSink,
) -> Result<OtlpStats, OtlpError> {
    check_size(body)?;
    let mut request = Request::default();
    protobuf::read_request(body, &mut request)?;
    Ok(request.emit(default_service, true, sink))
}

/// Decode an OTLP/JSON `ExportTraceServiceRequest` (OTLP/HTTP
/// `application/json`, or one line of the Collector's file exporter).
/// Events go to `sink` only when the whole body is readable.
pub fn decode_traces_json(
    body: &[u8],
    default_service: &str,
    sink: &mut dyn EventSink,
) -> Result<OtlpStats, OtlpError> {
    traces_json(body, default_service, true, sink)
}

/// [`decode_traces_json`], with the requester left empty unless `requester`.
fn traces_json(
    body: &[u8],
    default_service: &str,
    requester: bool,
    sink: &mut dyn EventSink,
) -> Result<OtlpStats, OtlpError> {
    check_size(body)?;
    let mut request = Request::default();
    json::read_request(body, &mut request)?;
    Ok(request.emit(default_service, requester, sink))
}

fn check_size(body: &[u8]) -> Result<(), OtlpError> {
    if body.len() > MAX_BODY {
        return Err(OtlpError::TooLarge { len: body.len(), max: MAX_BODY });
    }
    Ok(())
}

/// Reads files of the OpenTelemetry Collector's file exporter: one OTLP/JSON
/// `ExportTraceServiceRequest` per line.
///
/// A line that is not a request is `BadJson` (`TooLong` over the line
/// limit). A line with rejected spans still gives the events of its good
/// spans, and then one reject (`BadTimestamp` when a span's times were bad,
/// else `BadStatus`), so the bad line is counted and sampled.
#[derive(Debug, Clone)]
pub struct OtlpJsonDecoder {
    default_service: String,
    /// Only `requester` is looked at.
    wanted: Wanted,
}

impl OtlpJsonDecoder {
    /// `default_service` names the service of spans whose resource has no `service.name`.
    pub fn new(default_service: &str) -> Self {
        OtlpJsonDecoder { default_service: default_service.to_owned(), wanted: Wanted::ALL }
    }
}

impl Decoder for OtlpJsonDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let Some(line) = crate::decode::json_object_line(line)? else {
            return Ok(());
        };
        let stats = traces_json(line, &self.default_service, self.wanted.requester, sink).map_err(|e| match e {
            OtlpError::TooLarge { .. } => RejectReason::TooLong,
            OtlpError::Json { .. } | OtlpError::Protobuf { .. } => RejectReason::BadJson,
        })?;
        let r = stats.rejected;
        if r.missing_time + r.end_before_start > 0 {
            return Err(RejectReason::BadTimestamp.into());
        }
        if r.bad_status > 0 {
            return Err(RejectReason::BadStatus.into());
        }
        Ok(())
    }

    fn want(&mut self, fields: Wanted) {
        self.wanted = fields;
    }
}

/// Whether a line is the start of an OTLP/JSON traces request, as the
/// Collector's file exporter writes it.
pub(crate) fn looks_like_otlp_json(line: &[u8]) -> bool {
    line.strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"resourceSpans\""))
}

/// An attribute value, as far as the mapping needs it.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// An array, a key-value list, bytes, or an empty value.
    Other,
}

/// Where the attributes of a span or a resource go.
trait Attributes<'a> {
    /// The slot for `key`, when it is a key this decoder reads.
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<Value<'a>>>;
}

/// The resource attributes read here.
#[derive(Debug, Default)]
struct ResourceAttributes<'a> {
    service_name: Option<Value<'a>>,
}

impl<'a> Attributes<'a> for ResourceAttributes<'a> {
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<Value<'a>>> {
        (key == b"service.name").then_some(&mut self.service_name)
    }
}

impl<'a> ResourceAttributes<'a> {
    fn service(self) -> Option<Cow<'a, str>> {
        match self.service_name {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// The span attributes read here, current semantic conventions and old.
#[derive(Debug, Default)]
struct HttpAttributes<'a> {
    status: Option<Value<'a>>,
    status_old: Option<Value<'a>>,
    method: Option<Value<'a>>,
    method_original: Option<Value<'a>>,
    method_old: Option<Value<'a>>,
    url_path: Option<Value<'a>>,
    target_old: Option<Value<'a>>,
    server_address: Option<Value<'a>>,
    host_old: Option<Value<'a>>,
    net_host_name_old: Option<Value<'a>>,
    route: Option<Value<'a>>,
    client_address: Option<Value<'a>>,
    client_ip_old: Option<Value<'a>>,
    peer_ip_old: Option<Value<'a>>,
    user_agent: Option<Value<'a>>,
    user_agent_old: Option<Value<'a>>,
}

impl<'a> Attributes<'a> for HttpAttributes<'a> {
    fn slot(&mut self, key: &[u8]) -> Option<&mut Option<Value<'a>>> {
        Some(match key {
            b"http.response.status_code" => &mut self.status,
            b"http.status_code" => &mut self.status_old,
            b"http.request.method" => &mut self.method,
            b"http.request.method_original" => &mut self.method_original,
            b"http.method" => &mut self.method_old,
            b"url.path" => &mut self.url_path,
            b"http.target" => &mut self.target_old,
            b"server.address" => &mut self.server_address,
            b"http.host" => &mut self.host_old,
            b"net.host.name" => &mut self.net_host_name_old,
            b"http.route" => &mut self.route,
            b"client.address" => &mut self.client_address,
            b"http.client_ip" => &mut self.client_ip_old,
            b"net.peer.ip" => &mut self.peer_ip_old,
            b"user_agent.original" => &mut self.user_agent,
            b"http.user_agent" => &mut self.user_agent_old,
            _ => return None,
        })
    }
}

/// The fields of one span that the mapping reads. Times are 0 when unset
/// (proto3 has no other "missing").
#[derive(Debug, Default)]
struct SpanFields<'a> {
    kind: i64,
    start_ns: u64,
    end_ns: u64,
    status_code: i64,
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
    attributes: HttpAttributes<'a>,
}

/// Why a server span was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanReject {
    MissingTime,
    EndBeforeStart,
    BadStatus,
}

/// A server span turned into everything its event needs except the
/// service, which comes from its resource (possibly read after the span).
#[derive(Debug)]
struct ServerSpan<'a> {
    resource: usize,
    ts_ms: i64,
    latency_ms: f64,
    status: u16,
    outcome: Outcome,
    method: Cow<'a, str>,
    path: Cow<'a, str>,
    host: Cow<'a, str>,
    route: Cow<'a, str>,
    client_addr: Cow<'a, str>,
    user_agent: Cow<'a, str>,
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
}

impl<'a> SpanFields<'a> {
    fn into_server_span(self, resource: usize) -> Result<ServerSpan<'a>, SpanReject> {
        if self.start_ns == 0 || self.end_ns == 0 {
            return Err(SpanReject::MissingTime);
        }
        let Some(duration_ns) = self.end_ns.checked_sub(self.start_ns) else {
            return Err(SpanReject::EndBeforeStart);
        };
        let a = self.attributes;
        let http_status = match a.status.or(a.status_old) {
            None => None,
            Some(v) => Some(status_code(&v).ok_or(SpanReject::BadStatus)?),
        };
        let span_error = self.status_code == STATUS_CODE_ERROR;
        let outcome = match http_status {
            Some(s) if s >= 500 => Outcome::Error,
            Some(429) => Outcome::Throttled,
            _ if span_error => Outcome::Error,
            Some(_) => Outcome::Success,
            None if self.status_code == STATUS_CODE_OK => Outcome::Success,
            None => Outcome::Unknown,
        };
        let status = http_status.unwrap_or(if span_error { 500 } else { 0 });
        let method = match text(a.method) {
            m if m == "_OTHER" => match text(a.method_original) {
                o if o.is_empty() => m,
                o => o,
            },
            m if m.is_empty() => text(a.method_old),
            m => m,
        };
        let path = match text(a.url_path) {
            p if p.is_empty() => text(a.target_old),
            p => p,
        };
        let host = [a.server_address, a.host_old, a.net_host_name_old]
            .into_iter()
            .map(text)
            .find(|h| !h.is_empty())
            .unwrap_or_default();
        let client_addr = [a.client_address, a.client_ip_old, a.peer_ip_old]
            .into_iter()
            .map(text)
            .find(|c| !c.is_empty())
            .unwrap_or_default();
        let user_agent = match text(a.user_agent) {
            u if u.is_empty() => text(a.user_agent_old),
            u => u,
        };
        Ok(ServerSpan {
            resource,
            // At most u64::MAX / 10^6 ≈ 1.8e13, well inside i64.
            ts_ms: (self.end_ns / 1_000_000) as i64,
            latency_ms: duration_ns as f64 / 1e6,
            status,
            outcome,
            method,
            path: without_query(path),
            host,
            route: text(a.route),
            client_addr,
            user_agent,
            trace_id: self.trace_id,
            span_id: self.span_id,
        })
    }
}

/// An HTTP status from an attribute: an integer 0–999, or a string of 1–3 digits.
fn status_code(v: &Value<'_>) -> Option<u16> {
    match v {
        Value::Int(n) => u16::try_from(*n).ok().filter(|&n| n <= 999),
        Value::Str(s) => parse_status(s.as_bytes()),
        _ => None,
    }
}

/// A string attribute; empty when missing or of another type.
fn text(v: Option<Value<'_>>) -> Cow<'_, str> {
    match v {
        Some(Value::Str(s)) => s,
        _ => Cow::Borrowed(""),
    }
}

fn without_query(path: Cow<'_, str>) -> Cow<'_, str> {
    match path {
        Cow::Borrowed(p) => Cow::Borrowed(p.split_once('?').map_or(p, |(p, _query)| p)),
        Cow::Owned(mut p) => {
            if let Some(i) = p.find('?') {
                p.truncate(i);
            }
            Cow::Owned(p)
        }
    }
}

/// A trace or span id from its bytes: `None` unless it has the right length
/// and is not all zeroes (both invalid per the OTLP spec).
fn id_from_bytes<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id: [u8; N] = bytes.try_into().ok()?;
    id.iter().any(|&b| b != 0).then_some(id)
}

/// The same from case-insensitive hex, as OTLP/JSON writes ids.
fn id_from_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let hex = hex.as_bytes();
    if hex.len() != 2 * N {
        return None;
    }
    let mut id = [0u8; N];
    for (out, pair) in id.iter_mut().zip(hex.chunks_exact(2)) {
        *out = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    id.iter().any(|&b| b != 0).then_some(id)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `id` as lowercase hex in `out` (which holds at least twice its length).
fn hex<'b>(id: &[u8], out: &'b mut [u8]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &b) in out.chunks_exact_mut(2).zip(id) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    std::str::from_utf8(&out[..2 * id.len()]).unwrap_or("")
}

/// One request's spans, collected before any is handed on.
#[derive(Debug, Default)]
struct Request<'a> {
    /// `service.name` of each `ResourceSpans`, in order.
    services: Vec<Option<Cow<'a, str>>>,
    spans: Vec<ServerSpan<'a>>,
    stats: OtlpStats,
}

impl<'a> Request<'a> {
    /// A new `ResourceSpans`; returns its index for its spans.
    fn begin_resource(&mut self) -> usize {
        self.services.push(None);
        self.services.len() - 1
    }

    fn set_service(&mut self, resource: usize, service: Option<Cow<'a, str>>) {
        if let (Some(slot), Some(s)) = (self.services.get_mut(resource), service) {
            *slot = Some(s);
        }
    }

    fn span(&mut self, resource: usize, span: SpanFields<'a>) {
        self.stats.spans += 1;
        if span.kind != SPAN_KIND_SERVER {
            return;
        }
        self.stats.server_spans += 1;
        match span.into_server_span(resource) {
            Ok(s) => self.spans.push(s),
            Err(SpanReject::MissingTime) => self.stats.rejected.missing_time += 1,
            Err(SpanReject::EndBeforeStart) => self.stats.rejected.end_before_start += 1,
            Err(SpanReject::BadStatus) => self.stats.rejected.bad_status += 1,
        }
    }

    fn emit(mut self, default_service: &str, requester: bool, sink: &mut dyn EventSink) -> OtlpStats {
        let (mut trace_hex, mut span_hex) = ([0u8; 32], [0u8; 16]);
        for s in &self.spans {
            let service = match self.services.get(s.resource) {
                Some(Some(name)) if !name.is_empty() => name,
                _ => default_service,
            };
            let event = RequestEvent {
                ts_ms: s.ts_ms,
                origin: Some(Origin::Otlp),
                service,
                host: &s.host,
                path: &s.path,
                method: &s.method,
                status: s.status,
                latency_ms: Some(s.latency_ms),
                trace_id: s.trace_id.as_ref().map_or("", |id| hex(id, &mut trace_hex)),
                request_id: s.span_id.as_ref().map_or("", |id| hex(id, &mut span_hex)),
                route: &s.route,
                outcome: s.outcome,
                client_addr: if requester { &s.client_addr } else { "" },
                user_agent: if requester { &s.user_agent } else { "" },
                ..RequestEvent::default()
            };
            sink.event(&event);
            self.stats.events += 1;
        }
        self.stats
    }
}
