//! API Gateway access logs, REST and HTTP APIs, in the three shapes users
//! configure: JSON with any subset of `$context` variables, and the console's
//! CLF and CSV presets. One decoder reads all three and tells them apart per
//! line (`{` starts JSON; a `[` after the third space-separated token starts
//! CLF; otherwise CSV). The console's fourth preset, XML, is not read.
//!
//! Sources: the presets of
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>
//! (REST) and
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html>
//! (HTTP APIs); the variables of
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-variables-for-access-logging.html>
//! and
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html>.
//!
//! ## Saved lines
//!
//! A line may carry the prefix `aws logs tail` (`<time> <log stream>`, or
//! `<time>` with `--format short`) or `awslogs get` (`<log group> <log
//! stream>`, optionally followed by times) put before each message, separated
//! by spaces or tabs (see `decode/saved.rs`). The record must start right after at
//! most four such words: `{`, a CLF line or a CSV line. A line that is a
//! record from its first byte is never cut; the prefix's time is not used
//! (every record has its own).
//!
//! ## JSON
//!
//! ```json
//! {"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","requestTimeEpoch":1795176000123,
//!  "httpMethod":"GET","resourcePath":"/cart/{id}","path":"/prod/cart/7","status":"200",
//!  "responseLatency":"42","integrationLatency":"38","domainName":"api.example.com"}
//! ```
//!
//! Keys are named after the `$context` variable they hold, as users usually
//! name them. Dotted variables are read both as flat keys (`"integration.latency"`)
//! and as nested objects (`{"integration":{"latency":…}}`).
//!
//! | key | event field | |
//! | --- | --- | --- |
//! | `requestTimeEpoch` | time | epoch milliseconds for REST APIs; the HTTP API page gives no unit, and a value below 10¹¹ is taken as seconds |
//! | `requestTime` | time | when `requestTimeEpoch` is missing: `20/Nov/2026:12:00:00 +0000`, any offset |
//! | `status` | status | required |
//! | `httpMethod` | method | |
//! | `routeKey` | route, method | HTTP APIs: `GET /cart/{id}` is method `GET`, route `/cart/{id}`; `$default` is route `$default`; `ANY` names no method |
//! | `resourcePath` | route | REST, when there is no `routeKey` |
//! | `path` | path | the query string is dropped; when missing, the route's path (not `$default`) |
//! | `domainName` | host | |
//! | `responseLatency` | latency | milliseconds |
//! | `integrationLatency`, `integration.latency` | upstream latency | milliseconds |
//! | `integrationStatus`, `integration.status` | upstream status | `integrationStatus` first: for REST Lambda proxy integrations it is Lambda's own answer, while `integration.status` is what the function returned |
//! | `error.responseType` | error type | a gateway response type: `THROTTLED`, `INTEGRATION_TIMEOUT`, … |
//! | `xrayTraceId` | trace id | only when wanted |
//! | `requestId` | request id | only when wanted |
//! | `integration.requestId`, `integrationRequestId`, `awsEndpointRequestId` | upstream request id | only when wanted; for a Lambda integration, the function's `RequestId` (what the hop decomposition joins on) |
//! | `responseLength` | bytes | only when wanted |
//! | `sourceIp`, `identity.sourceIp`, `identitySourceIp`, `ip` | client address | only when the requester is wanted; the first present in this order (the console presets call it `ip`) |
//! | `userAgent`, `identity.userAgent`, `identityUserAgent` | user agent | only when the requester is wanted |
//!
//! The console's JSON presets hold no latency (their keys: `requestId`,
//! `extendedRequestId`, `ip`, `caller` and `user` for REST, `requestTime`,
//! `httpMethod`, `resourcePath` or `routeKey`, `status`, `protocol`,
//! `responseLength`), so their events have none.
//!
//! Numbers and statuses may be JSON numbers or strings of digits. The string
//! `"-"` (what API Gateway writes for a variable without a value), `""` and
//! `null` all mean missing. Other keys (`caller`, `stage`, `apiId`, `protocol`,
//! `error.message`, …) are ignored. The service is always the source's
//! default service: `apiId` and `stage` identify a deployment, not a service.
//!
//! ## CLF and CSV presets
//!
//! ```text
//! 198.51.100.7 - - [20/Nov/2026:12:00:00 +0000]"GET /cart/{id} HTTP/1.1" 200 512 c6af9ac6-… SBdYxH…        (REST)
//! 198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET GET /cart/{id} HTTP/1.1" 200 512 Vb4lsh… Vb4lsh…    (HTTP API)
//! 198.51.100.7,-,-,20/Nov/2026:12:00:00 +0000,GET,/cart/{id},HTTP/1.1,200,512,c6af9ac6-…,SBdYxH…          (REST, 11 fields)
//! 198.51.100.7,20/Nov/2026:12:00:00 +0000,GET,GET /cart/{id},HTTP/1.1,200,512,Vb4lsh…,Vb4lsh…              (HTTP API, 9 fields)
//! ```
//!
//! Fields are read by position: client address, caller, user (REST only),
//! time, method, resource path (REST) or route key (HTTP APIs), protocol,
//! status, response length, request id, extended request id. The REST CLF
//! preset has no space between the time's `]` and the request's `"`; a
//! space there is read too. Older versions of the presets stopped at the
//! request id (10 and 8 CSV fields), and are read as well. The extended
//! request id is not kept. The client address is the requester's when it
//! is wanted; the presets hold no user agent. These presets carry no latency, so their events
//! have none.
//!
//! ## Outcome
//!
//! The first rule that matches decides:
//!
//! 1. `Throttled`: `error.responseType` is `THROTTLED` or `QUOTA_EXCEEDED`, or the status is 429,
//!    or the integration status is 429 (Lambda refused the invocation).
//! 2. `Timeout`: `error.responseType` is `INTEGRATION_TIMEOUT`, or the status is 504 and the
//!    integration took at least [`TIMEOUT_LATENCY_MS`] (API Gateway's limits are 29 s for REST
//!    and 30 s for HTTP APIs).
//! 3. `IntegrationError`: `error.responseType` is `INTEGRATION_FAILURE` (or `INTEGRATION_ERROR`,
//!    which is not a documented gateway response type but is taken the same way), or the
//!    integration status is 500 or more, or the status is 502.
//! 4. `Success`: the status is 100–399.
//! 5. `Unknown` otherwise (client errors, 500s API Gateway does not explain, status 0).
//!
//! ## Rejects
//!
//! A time and a status are required (`MissingField`). Values that do not
//! parse reject the line: `BadTimestamp`, `BadStatus` (also for the
//! integration status), `BadNumber` (latencies, lengths, negative or
//! non-finite numbers), `BadField` (a number or object where text belongs).
//! A JSON line that is not one object, or repeats a key, is `BadJson`; a CLF or
//! CSV line that is not UTF-8 is `BadEncoding`.
//!
//! ## Cost
//!
//! A JSON line is parsed once into a struct whose strings borrow from the
//! line. Flat objects without escapes (what API Gateway writes) take a
//! dedicated scanner ([`flat_record`]); anything else (escapes, nested
//! objects, arrays, repeated keys, invalid JSON) goes through `serde_json`,
//! where only strings with JSON escapes in them are copied (and so allocate).
//! CLF and CSV lines are split in place. Nothing else allocates.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::decode::saved;
use crate::decode::scalar::Scalar;
use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason, days_from_civil, days_in_month, parse_time_of_day};
use crate::event::{EventSink, Origin, Outcome, RequestEvent, Wanted, parse_status};

/// Integration latency from which a 504 counts as a timeout: just under
/// API Gateway's 29-second REST limit (HTTP APIs stop at 30 s).
pub const TIMEOUT_LATENCY_MS: f64 = 28_900.0;

/// Decodes API Gateway access logs (REST and HTTP APIs; JSON, CLF or CSV).
#[derive(Debug, Clone)]
pub struct ApiGatewayDecoder {
    default_service: String,
    wanted: Wanted,
}

impl ApiGatewayDecoder {
    /// `default_service` is the service of every event (the source's config).
    pub fn new(default_service: &str) -> Self {
        ApiGatewayDecoder { default_service: default_service.to_owned(), wanted: Wanted::ALL }
    }
}

impl Decoder for ApiGatewayDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        if line.len() > MAX_LINE {
            return Err(RejectReason::TooLong.into());
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(start) = line.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Ok(());
        };
        let line = saved_message(&line[start..]);
        if line.first() == Some(&b'{') {
            let mut record = Record::default();
            if !std::str::from_utf8(line).is_ok_and(|line| flat_record(line, &mut record)) {
                record = serde_json::from_slice(line).map_err(|_| RejectReason::BadJson)?;
            }
            let parts = record.parts(self.wanted)?;
            sink.event(&parts.event(&self.default_service));
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| RejectReason::BadEncoding)?;
        let parts = if is_clf(text.as_bytes()) { clf_parts(text)? } else { csv_parts(text)? };
        let parts = parts.wanted(self.wanted);
        sink.event(&parts.event(&self.default_service));
        Ok(())
    }

    fn want(&mut self, fields: Wanted) {
        self.wanted = fields;
    }
}

/// The access-log record behind the prefix `aws logs tail` or `awslogs get`
/// put before it (see `decode/saved.rs`); the line itself when it has none. The
/// record must start right after at most four timestamps and log group or
/// stream names: a JSON object, a CLF preset line (three words, then `[`), or
/// a CSV preset line (a word with commas in it). A line that is a record
/// from its first byte is never cut.
fn saved_message(line: &[u8]) -> &[u8] {
    if is_record_start(line) {
        return line;
    }
    saved::strip_prefix(line, 4, is_record_start).map_or(line, |(_, message)| message)
}

fn is_record_start(s: &[u8]) -> bool {
    match s.first() {
        Some(b'{') => true,
        Some(_) => saved::split_word(s).0.contains(&b',') || is_clf(s),
        None => false,
    }
}

/// Whether a first line of a file looks like API Gateway's JSON access log
/// (and not the generic NDJSON format): an identifying key and a timing key.
/// The console's JSON presets time requests with `requestTime` only.
pub(crate) fn looks_like_json(line: &[u8]) -> bool {
    let line = saved_message(line);
    let has = |key: &[u8]| memchr::memmem::find(line, key).is_some();
    line.first() == Some(&b'{')
        && !has(b"\"ts\"")
        && [&b"\"requestId\""[..], b"\"routeKey\"", b"\"resourcePath\"", b"\"httpMethod\""].into_iter().any(has)
        && [&b"\"responseLatency\""[..], b"\"integrationLatency\"", b"\"requestTimeEpoch\"", b"\"requestTime\""]
            .into_iter()
            .any(has)
}

/// Whether a first line of a file is one of the console's CLF or CSV
/// presets, or a JSON access-log line behind a saved line's prefix (format
/// detection asks this of every line that does not start with `{`).
pub(crate) fn looks_like_preset(line: &[u8]) -> bool {
    let message = saved_message(line);
    if message.first() == Some(&b'{') {
        return looks_like_json(message);
    }
    let Ok(text) = std::str::from_utf8(message) else {
        return false;
    };
    if is_clf(text.as_bytes()) { clf_parts(text).is_ok() } else { csv_parts(text).is_ok() }
}

/// What one line says, whatever its shape, before it becomes an event.
#[derive(Debug, Default)]
struct Parts<'a> {
    ts_ms: i64,
    status: u16,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    route: &'a str,
    latency_ms: Option<f64>,
    upstream_latency_ms: Option<f64>,
    upstream_status: u16,
    error_type: &'a str,
    trace_id: &'a str,
    request_id: &'a str,
    upstream_request_id: &'a str,
    bytes: u64,
    client_addr: &'a str,
    user_agent: &'a str,
}

impl<'a> Parts<'a> {
    /// Fills method, route and path from a route key (`GET /cart/{id}`,
    /// `$default`) or a resource path, keeping what the record said itself.
    fn set_route(&mut self, route_key_or_resource: &'a str) {
        let (verb, route) = match route_key_or_resource.split_once(' ') {
            Some((verb, route)) => (verb, route.trim_start()),
            None => ("", route_key_or_resource),
        };
        if self.method.is_empty() && !verb.is_empty() && verb != "ANY" {
            self.method = verb;
        }
        self.route = route;
        if self.path.is_empty() && route != "$default" {
            self.path = route;
        }
    }

    fn wanted(mut self, wanted: Wanted) -> Self {
        if !wanted.request_id {
            self.request_id = "";
            self.trace_id = "";
            self.upstream_request_id = "";
        }
        if !wanted.bytes {
            self.bytes = 0;
        }
        if !wanted.requester {
            self.client_addr = "";
            self.user_agent = "";
        }
        self
    }

    fn outcome(&self) -> Outcome {
        let is = |t: &str| self.error_type.eq_ignore_ascii_case(t);
        if is("THROTTLED") || is("QUOTA_EXCEEDED") || self.status == 429 || self.upstream_status == 429 {
            Outcome::Throttled
        } else if is("INTEGRATION_TIMEOUT")
            || (self.status == 504 && self.upstream_latency_ms.is_some_and(|l| l >= TIMEOUT_LATENCY_MS))
        {
            Outcome::Timeout
        } else if is("INTEGRATION_FAILURE")
            || is("INTEGRATION_ERROR")
            || self.upstream_status >= 500
            || self.status == 502
        {
            Outcome::IntegrationError
        } else if (100..400).contains(&self.status) {
            Outcome::Success
        } else {
            Outcome::Unknown
        }
    }

    fn event<'s>(&'s self, service: &'s str) -> RequestEvent<'s> {
        RequestEvent {
            ts_ms: self.ts_ms,
            origin: Some(Origin::ApiGateway),
            service,
            host: self.host,
            path: self.path.split_once('?').map_or(self.path, |(p, _query)| p),
            method: self.method,
            status: self.status,
            latency_ms: self.latency_ms,
            upstream_latency_ms: self.upstream_latency_ms,
            bytes: self.bytes,
            request_id: self.request_id,
            trace_id: self.trace_id,
            upstream_request_id: self.upstream_request_id,
            route: self.route,
            outcome: self.outcome(),
            upstream_status: self.upstream_status,
            error_type: self.error_type,
            client_addr: self.client_addr,
            user_agent: self.user_agent,
            ..RequestEvent::default()
        }
    }
}

// ---------------------------------------------------------------------------
// JSON

/// The keys this decoder reads, each taken as whatever JSON type it has so a
/// wrong type is reported against its key instead of failing the parse.
#[derive(Debug, Default, PartialEq, Deserialize)]
struct Record<'a> {
    #[serde(borrow, rename = "requestId")]
    request_id: Option<Scalar<'a>>,
    #[serde(borrow, rename = "requestTime")]
    request_time: Option<Scalar<'a>>,
    #[serde(borrow, rename = "requestTimeEpoch")]
    request_time_epoch: Option<Scalar<'a>>,
    #[serde(borrow, rename = "httpMethod")]
    http_method: Option<Scalar<'a>>,
    #[serde(borrow, rename = "routeKey")]
    route_key: Option<Scalar<'a>>,
    #[serde(borrow, rename = "resourcePath")]
    resource_path: Option<Scalar<'a>>,
    #[serde(borrow)]
    path: Option<Scalar<'a>>,
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
    #[serde(borrow, rename = "responseLatency")]
    response_latency: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integrationLatency")]
    integration_latency: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integration.latency")]
    integration_dot_latency: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integrationStatus")]
    integration_status: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integration.status")]
    integration_dot_status: Option<Scalar<'a>>,
    #[serde(borrow, rename = "error.responseType")]
    error_dot_response_type: Option<Scalar<'a>>,
    #[serde(borrow, rename = "xrayTraceId")]
    xray_trace_id: Option<Scalar<'a>>,
    #[serde(borrow, rename = "domainName")]
    domain_name: Option<Scalar<'a>>,
    #[serde(borrow, rename = "responseLength")]
    response_length: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integration.requestId")]
    integration_dot_request_id: Option<Scalar<'a>>,
    #[serde(borrow, rename = "integrationRequestId")]
    integration_request_id: Option<Scalar<'a>>,
    #[serde(borrow, rename = "awsEndpointRequestId")]
    aws_endpoint_request_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    ip: Option<Scalar<'a>>,
    #[serde(borrow, rename = "sourceIp")]
    source_ip: Option<Scalar<'a>>,
    #[serde(borrow, rename = "identitySourceIp")]
    identity_source_ip: Option<Scalar<'a>>,
    #[serde(borrow, rename = "identity.sourceIp")]
    identity_dot_source_ip: Option<Scalar<'a>>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<Scalar<'a>>,
    #[serde(borrow, rename = "identityUserAgent")]
    identity_user_agent: Option<Scalar<'a>>,
    #[serde(borrow, rename = "identity.userAgent")]
    identity_dot_user_agent: Option<Scalar<'a>>,
    /// `{"identity": {"sourceIp": …, "userAgent": …}}`
    #[serde(borrow)]
    identity: Option<Group<'a>>,
    /// `{"integration": {"latency": …, "status": …}}`
    #[serde(borrow)]
    integration: Option<Group<'a>>,
    /// `{"error": {"responseType": …}}`
    #[serde(borrow)]
    error: Option<Group<'a>>,
}

impl Record<'_> {
    fn parts<'r>(&'r self, wanted: Wanted) -> Result<Parts<'r>, RejectReason> {
        let ts_ms = match present(&self.request_time_epoch) {
            Some(epoch) => epoch_ms(epoch).ok_or(RejectReason::BadTimestamp)?,
            None => match text(&self.request_time).map_err(|_| RejectReason::BadTimestamp)? {
                Some(t) => clf_time_ms(t.as_bytes()).ok_or(RejectReason::BadTimestamp)?,
                None => return Err(RejectReason::MissingField),
            },
        };
        let status = match present(&self.status) {
            Some(s) => status_of(s).ok_or(RejectReason::BadStatus)?,
            None => return Err(RejectReason::MissingField),
        };
        let integration = self.integration.as_ref();
        let error = self.error.as_ref();
        let upstream_status = match present(&self.integration_status)
            .or(present(&self.integration_dot_status))
            .or(integration.and_then(|g| present(&g.status)))
        {
            Some(s) => status_of(s).ok_or(RejectReason::BadStatus)?,
            None => 0,
        };
        let upstream_latency = match self.integration_latency.as_ref().filter(|l| is_present(l)) {
            Some(l) => Some(l),
            None => match self.integration_dot_latency.as_ref().filter(|l| is_present(l)) {
                Some(l) => Some(l),
                None => integration.and_then(|g| g.latency.as_ref()),
            },
        };
        let error_type = match text(&self.error_dot_response_type)? {
            Some(t) => Some(t),
            None => error.map(|g| text(&g.response_type)).transpose()?.flatten(),
        };

        let mut parts = Parts {
            ts_ms,
            status,
            method: text(&self.http_method)?.unwrap_or(""),
            host: text(&self.domain_name)?.unwrap_or(""),
            path: text(&self.path)?.unwrap_or(""),
            latency_ms: millis(&self.response_latency)?,
            upstream_latency_ms: millis_of(upstream_latency)?,
            upstream_status,
            error_type: error_type.unwrap_or(""),
            ..Parts::default()
        };
        match (text(&self.route_key)?, text(&self.resource_path)?) {
            (Some(route), _) | (None, Some(route)) => parts.set_route(route),
            (None, None) => {}
        }
        if wanted.request_id {
            parts.request_id = text(&self.request_id)?.unwrap_or("");
            parts.trace_id = text(&self.xray_trace_id)?.unwrap_or("");
            parts.upstream_request_id = match text(&self.integration_dot_request_id)? {
                Some(id) => id,
                None => match text(&self.integration_request_id)? {
                    Some(id) => id,
                    None => match integration.map(|g| text(&g.request_id)).transpose()?.flatten() {
                        Some(id) => id,
                        None => text(&self.aws_endpoint_request_id)?.unwrap_or(""),
                    },
                },
            };
        }
        if wanted.bytes {
            parts.bytes = millis(&self.response_length)?.map_or(0, |n| n as u64);
        }
        if wanted.requester {
            let identity = self.identity.as_ref();
            let first = |flat: [&'r Option<Scalar<'_>>; 3], nested: Option<&'r Option<Scalar<'_>>>| {
                for v in flat.into_iter().chain(nested) {
                    if let Some(t) = text(v)? {
                        return Ok(t);
                    }
                }
                Ok::<_, RejectReason>("")
            };
            let nested_ip = identity.map(|g| &g.source_ip);
            // Who asked is evidence, not the request: a value of the wrong
            // type is left out rather than rejecting the line.
            parts.client_addr =
                match first([&self.source_ip, &self.identity_dot_source_ip, &self.identity_source_ip], nested_ip)
                    .unwrap_or("")
                {
                    "" => text(&self.ip).ok().flatten().unwrap_or(""),
                    ip => ip,
                };
            parts.user_agent = first(
                [&self.user_agent, &self.identity_dot_user_agent, &self.identity_user_agent],
                identity.map(|g| &g.user_agent),
            )
            .unwrap_or("");
        }
        Ok(parts)
    }
}

/// The fast path for JSON lines: a flat object whose strings have no escapes
/// and whose values are strings, numbers, `true`, `false` or `null`, read
/// into `record` (which starts empty; filled in place, as it is large). `false`
/// means "not that simple": the caller then parses with `serde_json`, which
/// gives the same [`Record`] for every line this accepts (see the tests) and
/// decides whether the line is valid at all. (Floats with more than 15
/// significant digits may differ from serde_json's in the last bit: this
/// scanner rounds them correctly.)
fn flat_record<'a>(line: &'a str, record: &mut Record<'a>) -> bool {
    flat_record_inner(line, record).is_some()
}

fn flat_record_inner<'a>(line: &'a str, record: &mut Record<'a>) -> Option<()> {
    let b = line.as_bytes();
    let mut seen = 0u32;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key, next) = plain_string(line, i + 1)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let (value, next) = plain_value(line, skip_ws(b, i + 1))?;
            i = skip_ws(b, next);
            let slot = match key {
                "requestId" => Some((0, &mut record.request_id)),
                "requestTime" => Some((1, &mut record.request_time)),
                "requestTimeEpoch" => Some((2, &mut record.request_time_epoch)),
                "httpMethod" => Some((3, &mut record.http_method)),
                "routeKey" => Some((4, &mut record.route_key)),
                "resourcePath" => Some((5, &mut record.resource_path)),
                "path" => Some((6, &mut record.path)),
                "status" => Some((7, &mut record.status)),
                "responseLatency" => Some((8, &mut record.response_latency)),
                "integrationLatency" => Some((9, &mut record.integration_latency)),
                "integration.latency" => Some((10, &mut record.integration_dot_latency)),
                "integrationStatus" => Some((11, &mut record.integration_status)),
                "integration.status" => Some((12, &mut record.integration_dot_status)),
                "error.responseType" => Some((13, &mut record.error_dot_response_type)),
                "xrayTraceId" => Some((14, &mut record.xray_trace_id)),
                "domainName" => Some((15, &mut record.domain_name)),
                "responseLength" => Some((16, &mut record.response_length)),
                "integration.requestId" => Some((19, &mut record.integration_dot_request_id)),
                "integrationRequestId" => Some((20, &mut record.integration_request_id)),
                "awsEndpointRequestId" => Some((21, &mut record.aws_endpoint_request_id)),
                "ip" => Some((22, &mut record.ip)),
                "sourceIp" => Some((23, &mut record.source_ip)),
                "identitySourceIp" => Some((24, &mut record.identity_source_ip)),
                "identity.sourceIp" => Some((25, &mut record.identity_dot_source_ip)),
                "userAgent" => Some((26, &mut record.user_agent)),
                "identityUserAgent" => Some((27, &mut record.identity_user_agent)),
                "identity.userAgent" => Some((28, &mut record.identity_dot_user_agent)),
                // Not an object (those go to serde): the same as serde's `Group` of a scalar.
                "integration" | "error" | "identity" => {
                    let (bit, group) = match key {
                        "integration" => (17, &mut record.integration),
                        "error" => (18, &mut record.error),
                        _ => (29, &mut record.identity),
                    };
                    if seen & (1 << bit) != 0 {
                        return None;
                    }
                    seen |= 1 << bit;
                    *group = value.is_some().then(Group::default);
                    None
                }
                _ => None,
            };
            if let Some((bit, slot)) = slot {
                if seen & (1 << bit) != 0 {
                    return None; // a repeated key: serde rejects it
                }
                seen |= 1 << bit;
                *slot = value;
            }
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string starting at `start` (just after its opening quote) and the
/// index after its closing quote; `None` if it has an escape or a control
/// character, or does not end.
fn plain_string(line: &str, start: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    // Strings here are short: a plain loop beats memchr's setup.
    let end = start + b.get(start..)?.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    if b[end] != b'"' {
        return None;
    }
    // Both ends sit next to an ASCII quote, so they are char boundaries.
    Some((line.get(start..end)?, end + 1))
}

/// A scalar value at `i` and the index after it; `Some((None, _))` for `null`.
fn plain_value(line: &str, i: usize) -> Option<(Option<Scalar<'_>>, usize)> {
    let b = line.as_bytes();
    match *b.get(i)? {
        b'"' => plain_string(line, i + 1).map(|(s, next)| (Some(Scalar::Text(Cow::Borrowed(s))), next)),
        b'-' | b'0'..=b'9' => {
            let rest = &b[i..];
            let mut n = usize::from(rest[0] == b'-');
            let int_start = n;
            n += rest[n..].iter().take_while(|c| c.is_ascii_digit()).count();
            let int_digits = n - int_start;
            if int_digits == 0 || (int_digits > 1 && rest[int_start] == b'0') {
                return None;
            }
            let mut integer = true;
            if rest.get(n) == Some(&b'.') {
                let frac = rest[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if frac == 0 {
                    return None;
                }
                n += 1 + frac;
                integer = false;
            }
            if matches!(rest.get(n), Some(b'e' | b'E')) {
                n += 1;
                if matches!(rest.get(n), Some(b'+' | b'-')) {
                    n += 1;
                }
                let exp = rest[n..].iter().take_while(|c| c.is_ascii_digit()).count();
                if exp == 0 {
                    return None;
                }
                n += exp;
                integer = false;
            }
            let text = line.get(i..i + n)?;
            let leaf = if !integer {
                // serde_json rejects numbers out of f64's range.
                Scalar::Float(text.parse::<f64>().ok().filter(|x| x.is_finite())?)
            } else if int_start == 1 {
                return None; // negative integers (and serde_json's `-0` is a float): not worth a fast path
            } else {
                Scalar::Unsigned(text.parse().ok()?)
            };
            Some((Some(leaf), i + n))
        }
        b'n' if b[i..].starts_with(b"null") => Some((None, i + 4)),
        b't' if b[i..].starts_with(b"true") => Some((Some(Scalar::Bool(true)), i + 4)),
        b'f' if b[i..].starts_with(b"false") => Some((Some(Scalar::Bool(false)), i + 5)),
        _ => None,
    }
}

/// A nested `integration`, `error` or `identity` object. Any other value
/// under those keys is ignored (it is not one of the `$context` variables we
/// read). Each group's own keys are read in any of them (an `error.latency`
/// is read and never used), so one type serves all three.
#[derive(Debug, Default, PartialEq)]
struct Group<'a> {
    latency: Option<Scalar<'a>>,
    status: Option<Scalar<'a>>,
    response_type: Option<Scalar<'a>>,
    request_id: Option<Scalar<'a>>,
    source_ip: Option<Scalar<'a>>,
    user_agent: Option<Scalar<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Group<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Key {
            Latency,
            Status,
            ResponseType,
            RequestId,
            SourceIp,
            UserAgent,
            Other,
        }
        impl<'de> Deserialize<'de> for Key {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct KeyVisitor;
                impl Visitor<'_> for KeyVisitor {
                    type Value = Key;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                        Ok(match v {
                            "latency" => Key::Latency,
                            "status" => Key::Status,
                            "responseType" => Key::ResponseType,
                            "requestId" => Key::RequestId,
                            "sourceIp" => Key::SourceIp,
                            "userAgent" => Key::UserAgent,
                            _ => Key::Other,
                        })
                    }
                }
                d.deserialize_identifier(KeyVisitor)
            }
        }

        struct GroupVisitor;
        impl<'de> Visitor<'de> for GroupVisitor {
            type Value = Group<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut group = Group::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Latency => &mut group.latency,
                        Key::Status => &mut group.status,
                        Key::ResponseType => &mut group.response_type,
                        Key::RequestId => &mut group.request_id,
                        Key::SourceIp => &mut group.source_ip,
                        Key::UserAgent => &mut group.user_agent,
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("repeated key"));
                    }
                    *slot = map.next_value::<Option<Scalar<'de>>>()?;
                }
                Ok(group)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Group::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Group::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Group::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Group::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Group::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Group::default())
            }
        }
        d.deserialize_any(GroupVisitor)
    }
}

/// `"-"` and `""` are how API Gateway (and users) write a missing value.
fn is_present(v: &Scalar<'_>) -> bool {
    !matches!(v, Scalar::Text(t) if t.is_empty() || t == "-")
}

fn present<'r, 'a>(v: &'r Option<Scalar<'a>>) -> Option<&'r Scalar<'a>> {
    v.as_ref().filter(|v| is_present(v))
}

fn text<'r>(v: &'r Option<Scalar<'_>>) -> Result<Option<&'r str>, RejectReason> {
    match present(v) {
        None => Ok(None),
        Some(Scalar::Text(s)) => Ok(Some(s)),
        Some(_) => Err(RejectReason::BadField),
    }
}

fn millis(v: &Option<Scalar<'_>>) -> Result<Option<f64>, RejectReason> {
    millis_of(present(v))
}

/// A non-negative, finite number, as a JSON number or a string.
fn millis_of(v: Option<&Scalar<'_>>) -> Result<Option<f64>, RejectReason> {
    let n = match v {
        None => return Ok(None),
        Some(Scalar::Text(t)) if t.is_empty() || t == "-" => return Ok(None),
        Some(Scalar::Unsigned(n)) => *n as f64,
        Some(Scalar::Float(x)) => *x,
        Some(Scalar::Text(t)) => number_text(t).ok_or(RejectReason::BadNumber)?,
        Some(_) => return Err(RejectReason::BadNumber),
    };
    if n.is_finite() && n >= 0.0 { Ok(Some(n)) } else { Err(RejectReason::BadNumber) }
}

/// A decimal number without sign or exponent (`f64::from_str` accepts `inf`,
/// `NaN` and `1e3`, which are not what API Gateway writes).
fn number_text(t: &str) -> Option<f64> {
    // Whole numbers (nearly all of them) without the general float parser.
    if (1..=15).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) {
        return Some(t.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64);
    }
    let ok = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|&b| b == b'.').count() <= 1
        && t.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if ok { t.parse().ok() } else { None }
}

fn status_of(v: &Scalar<'_>) -> Option<u16> {
    match v {
        Scalar::Unsigned(n) => u16::try_from(*n).ok().filter(|&n| n <= 999),
        Scalar::Text(s) => parse_status(s.as_bytes()),
        _ => None,
    }
}

/// Epoch milliseconds from `requestTimeEpoch`: milliseconds for REST APIs,
/// seconds for HTTP APIs; a value below 10¹¹ (March 1973 in milliseconds,
/// year 5138 in seconds) is taken as seconds.
fn epoch_ms(v: &Scalar<'_>) -> Option<i64> {
    let n = match v {
        Scalar::Unsigned(n) => *n as f64,
        Scalar::Float(x) => *x,
        Scalar::Text(t) => number_text(t)?,
        _ => return None,
    };
    if !(0.0..9.0e15).contains(&n) {
        return None;
    }
    let ms = if n < 1.0e11 { n * 1000.0 } else { n };
    Some(ms.floor() as i64)
}

/// `20/Nov/2026:12:00:00 +0000` (CLF, as `$context.requestTime`) to epoch
/// milliseconds.
fn clf_time_ms(s: &[u8]) -> Option<i64> {
    let [d0, d1, b'/', m0, m1, m2, b'/', y0, y1, y2, y3, b':', ref hms @ .., b' ', sign, oh0, oh1, om0, om1] = *s
    else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u32::from(b - b'0'));
    let day = digit(d0)? * 10 + digit(d1)?;
    let month = match &[m0, m1, m2] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = i64::from(digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let secs = parse_time_of_day(hms)?;
    let (oh, om) = (digit(oh0)? * 10 + digit(oh1)?, digit(om0)? * 10 + digit(om1)?);
    if oh > 23 || om > 59 {
        return None;
    }
    let offset = i64::from(oh * 3600 + om * 60);
    let offset = match sign {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };
    let instant = (days_from_civil(year, month, day) * 86_400 + secs - offset) * 1000;
    (instant >= 0).then_some(instant)
}

// ---------------------------------------------------------------------------
// CLF and CSV presets

/// CLF: three space-separated tokens (without tabs, so a saved line's
/// tab-separated prefix is not taken for a token), then `[`.
fn is_clf(text: &[u8]) -> bool {
    let mut rest = text;
    for _ in 0..3 {
        match memchr::memchr2(b' ', b'\t', rest) {
            Some(i) if rest[i] == b' ' => rest = &rest[i + 1..],
            _ => return false,
        }
    }
    rest.first() == Some(&b'[')
}

/// `ip caller user [time] "method target protocol" status length requestId [extendedRequestId]`
///
/// The REST preset puts no space between `]` and `"`; the HTTP API preset
/// does. The presets end with `$context.extendedRequestId`, which older
/// versions of them did not have.
fn clf_parts(text: &str) -> Result<Parts<'_>, RejectReason> {
    let missing = RejectReason::MissingField;
    let (ip, rest) = text.split_once(' ').ok_or(missing)?;
    let (_caller, rest) = rest.split_once(' ').ok_or(missing)?;
    let (_user, rest) = rest.split_once(' ').ok_or(missing)?;
    let (time, rest) = rest.strip_prefix('[').and_then(|r| r.split_once(']')).ok_or(missing)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (request, rest) = rest.strip_prefix('"').and_then(|r| r.split_once('"')).ok_or(missing)?;
    let mut tail = rest.trim_start().split(' ');
    let (status, length, id) = (tail.next().unwrap_or(""), tail.next().unwrap_or(""), tail.next().unwrap_or(""));
    let _extended_id = tail.next();
    if tail.next().is_some() {
        return Err(RejectReason::BadField);
    }
    let (method, request) = request.split_once(' ').ok_or(missing)?;
    let (target, _protocol) = request.rsplit_once(' ').ok_or(missing)?;
    preset_parts(ip, time, method, target, status, length, id)
}

/// REST: `ip,caller,user,time,method,resourcePath,protocol,status,length,requestId[,extendedRequestId]`
/// (10 or 11 fields); HTTP APIs: `ip,time,method,routeKey,protocol,status,length,requestId[,extendedRequestId]`
/// (8 or 9 fields).
fn csv_parts(text: &str) -> Result<Parts<'_>, RejectReason> {
    let mut f = [""; 11];
    let mut n = 0;
    for field in text.split(',') {
        *f.get_mut(n).ok_or(RejectReason::BadField)? = field;
        n += 1;
    }
    match n {
        10 | 11 => preset_parts(f[0], f[3], f[4], f[5], f[7], f[8], f[9]),
        8 | 9 => preset_parts(f[0], f[1], f[2], f[3], f[5], f[6], f[7]),
        _ => Err(RejectReason::MissingField),
    }
}

fn preset_parts<'a>(
    ip: &'a str,
    time: &'a str,
    method: &'a str,
    target: &'a str,
    status: &'a str,
    length: &'a str,
    id: &'a str,
) -> Result<Parts<'a>, RejectReason> {
    let dash = |s: &'a str| if s == "-" { "" } else { s };
    let (time, status, length) = (dash(time), dash(status), dash(length));
    if time.is_empty() || status.is_empty() {
        return Err(RejectReason::MissingField);
    }
    let mut parts = Parts {
        ts_ms: clf_time_ms(time.as_bytes()).ok_or(RejectReason::BadTimestamp)?,
        status: parse_status(status.as_bytes()).ok_or(RejectReason::BadStatus)?,
        method: dash(method),
        request_id: dash(id),
        client_addr: dash(ip),
        bytes: if length.is_empty() { 0 } else { length.parse().map_err(|_| RejectReason::BadNumber)? },
        ..Parts::default()
    };
    let target = dash(target);
    if !target.is_empty() {
        parts.set_route(target);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
