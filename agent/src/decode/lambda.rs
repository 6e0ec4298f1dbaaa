//! AWS Lambda logs: the platform lines of a function's CloudWatch log group
//! (text or JSON log format) and the batches the Telemetry API posts to an
//! extension. One invocation is one event, taken from its report.
//!
//! Text log format, one CloudWatch Logs message per line, optionally after
//! the prefix of a tool that saved it (the first time in it is the line's):
//! an RFC 3339 time, `aws logs tail`'s `<time> <log stream>`, its `--format
//! short` `<time>` (UTC, no offset), or `awslogs get`'s `<log group> <log
//! stream>` with `--timestamp`'s time after them (see `decode/saved.rs`; a group
//! is recognised before a Lambda stream name, `2023/04/05/[$LATEST]c23d…`,
//! or when it is named `/aws/lambda/…`). JSON log format lines may stand
//! behind the same prefixes. The `REPORT` fields are tab-separated in real
//! logs:
//!
//! ```text
//! START RequestId: 8f5c… Version: $LATEST
//! 2026-11-20T12:00:03.456Z 8f5c… Task timed out after 3.00 seconds
//! END RequestId: 8f5c…
//! REPORT RequestId: 8f5c… Duration: 3000.00 ms Billed Duration: 3000 ms Memory Size: 128 MB Max Memory Used: 70 MB Init Duration: 150.12 ms Status: timeout XRAY TraceId: 1-… SegmentId: … Sampled: true
//! ```
//!
//! `REPORT` fields may be separated by tabs or spaces; the optional ones may
//! be absent and unknown ones are skipped. JSON log format and the Telemetry
//! API carry the same facts as `{"time", "type": "platform.report",
//! "record": {"requestId", "status", "metrics": {"durationMs", …}, "tracing":
//! {"value": "Root=1-…;…"}}}`.
//!
//! | event field | from |
//! | --- | --- |
//! | `ts_ms` | the line's leading timestamp (text) or `time` (JSON); else the hint of [`LambdaDecoder::set_time_hint`]; else the line is rejected as `MissingField` |
//! | `latency_ms` | `Duration` / `durationMs` (required) |
//! | `billed_ms`, `init_ms`, `memory_size_mb`, `max_memory_used_mb` | `Billed Duration`, `Init Duration` (cold starts only), `Memory Size`, `Max Memory Used` |
//! | `request_id`, `trace_id` | `RequestId`, `XRAY TraceId` / the `Root=` of `tracing.value` (only when wanted) |
//! | `error_type` | `Error Type` / `errorType` |
//! | `outcome`, `status` | see below |
//! | `service` | the source's default service |
//! | `host`, `path`, `method`, `route` | empty: SLOs select Lambda events by `service` (and `indicator.source: lambda`) |
//!
//! **Outcome and status.** Lambda has no HTTP status. So that `status`
//! criteria work on Lambda SLOs, the outcome is mapped to one: success → 200,
//! error → 500, timeout → 504. The outcome is `Status:` / `record.status`
//! when present (`success`; `timeout`; `error`, `failure` and any other value
//! → error, so an unknown status never counts as good). A report without a
//! status takes the outcome remembered for its request id from an earlier
//! `Task timed out` line or a failed `platform.runtimeDone`; else success.
//! At most [`REMEMBERED`] such ids are kept, oldest forgotten first.
//!
//! **One event per invocation.** Only reports produce events.
//! `platform.runtimeDone` describes the same invocation as the report that
//! follows it, so it only contributes its status; `platform.start`,
//! `platform.initReport`, `START`, `END`, `INIT_START` and application log
//! lines (text or JSON) produce nothing and are not rejects: a log group holds
//! all of them (nor is the `XRAY TraceId` line `aws logs tail` prints under
//! a `REPORT`). A line that is not valid JSON is rejected as `BadJson` only if
//! it mentions a `"platform.` type; other unparseable output belongs to the
//! application. A text line that holds `REPORT RequestId:` or
//! `"platform.report"` but is not read as a report (an unknown prefix before
//! it) is rejected as `Unrecognized`, so no report vanishes silently.
//!
//! The text path scans each line once and allocates nothing; the JSON path
//! borrows its strings from the line (only strings with escapes are copied).

use std::borrow::Cow;
use std::fmt;

use memchr::memmem;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::decode::ndjson::rfc3339_ms;
use crate::decode::saved::{self, Time, is_blank, skip_blanks, split_word};
use crate::decode::scalar::Scalar;
use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason};
use crate::event::{EventSink, Origin, Outcome, RequestEvent, Wanted};

/// How many request ids with a failure seen before their report are kept.
pub const REMEMBERED: usize = 256;
/// Longest request id that can be remembered (Lambda's are 36-byte UUIDs).
const ID_MAX: usize = 64;

/// Decodes Lambda platform log lines and Telemetry API batches.
pub struct LambdaDecoder {
    default_service: String,
    time_hint: Option<i64>,
    want_ids: bool,
    failures: RememberedFailures,
    batch_rejects: [u32; RejectReason::ALL.len()],
}

impl fmt::Debug for LambdaDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaDecoder")
            .field("default_service", &self.default_service)
            .field("time_hint", &self.time_hint)
            .field("want_ids", &self.want_ids)
            .finish_non_exhaustive()
    }
}

impl LambdaDecoder {
    /// `default_service` names the service of every event (Lambda records
    /// carry none).
    pub fn new(default_service: &str) -> Self {
        LambdaDecoder {
            default_service: default_service.to_owned(),
            time_hint: None,
            want_ids: true,
            failures: RememberedFailures::new(),
            batch_rejects: [0; RejectReason::ALL.len()],
        }
    }

    /// The time of the log event the next lines belong to, for sources that
    /// know it (CloudWatch Logs events carry a timestamp; a `REPORT` message
    /// does not). A line's own leading timestamp still wins.
    pub fn set_time_hint(&mut self, ts_ms: i64) {
        self.time_hint = Some(ts_ms);
    }

    pub fn clear_time_hint(&mut self) {
        self.time_hint = None;
    }

    /// Decode one Telemetry API POST body: a JSON array of `{"time", "type",
    /// "record"}` objects, parsed once. Returns how many events were emitted.
    ///
    /// A body that is not a JSON array is `BadJson`; if the JSON breaks
    /// midway, the events of the elements before the break have already been
    /// emitted. An element that is a report but cannot be used is skipped and
    /// counted; [`LambdaDecoder::take_batch_rejects`] hands the counts over.
    pub fn decode_telemetry_batch(&mut self, body: &[u8], sink: &mut dyn EventSink) -> Result<usize, Reject> {
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
            return Err(RejectReason::BadJson.into());
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let emitted = de::Deserializer::deserialize_seq(&mut de, BatchVisitor { decoder: self, sink })
            .map_err(|_| RejectReason::BadJson)?;
        de.end().map_err(|_| RejectReason::BadJson)?;
        Ok(emitted)
    }

    /// Reasons and counts of the batch elements skipped since the last call.
    pub fn take_batch_rejects(&mut self) -> impl Iterator<Item = (RejectReason, u32)> + use<> {
        let counts = std::mem::replace(&mut self.batch_rejects, [0; RejectReason::ALL.len()]);
        RejectReason::ALL.into_iter().zip(counts).filter(|&(_, n)| n > 0)
    }

    fn decode_text(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let (time, rest) = split_prefix(line);
        if rest.first() == Some(&b'{') {
            return self.decode_json(rest, sink);
        }
        if let Some(fields) = rest.strip_prefix(b"REPORT").filter(|f| f.first().is_some_and(|&b| is_blank(b))) {
            let ts = match time {
                Time::At(ms) => Some(ms),
                Time::Absent => None,
                // A first word that looks like a timestamp but is not one.
                Time::Bad => return Err(RejectReason::BadTimestamp.into()),
            };
            return self.report(ts, fields, sink);
        }
        let (id, after) = split_word(rest);
        if skip_blanks(after).starts_with(b"Task timed out after ") {
            self.failures.remember(id, Outcome::Timeout);
        }
        // Other platform lines and the application's output are not
        // requests; a report this decoder could not find is a reject.
        if memmem::find(rest, b"REPORT RequestId:").is_some() || memmem::find(rest, b"\"platform.report\"").is_some() {
            return Err(RejectReason::Unrecognized.into());
        }
        Ok(())
    }

    fn report(&mut self, ts: Option<i64>, fields: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let ts_ms = ts.or(self.time_hint).ok_or(RejectReason::MissingField)?;
        let mut request_id: Option<&[u8]> = None;
        let mut trace_id: &[u8] = b"";
        let mut error_type: &[u8] = b"";
        let mut status: &[u8] = b"";
        let mut event = RequestEvent { ts_ms, origin: Some(Origin::Lambda), ..RequestEvent::default() };
        let mut rest = fields;
        while let Some((key, value, after)) = next_field(rest) {
            rest = after;
            match key {
                b"RequestId" => request_id = Some(value),
                b"Duration" => event.latency_ms = Some(millis(value)?),
                b"Billed Duration" => event.billed_ms = Some(millis(value)?),
                b"Init Duration" => event.init_ms = Some(millis(value)?),
                b"Memory Size" => event.memory_size_mb = Some(megabytes(value)?),
                b"Max Memory Used" => event.max_memory_used_mb = Some(megabytes(value)?),
                b"Status" => status = value,
                b"Error Type" => error_type = value,
                b"XRAY TraceId" => trace_id = value,
                _ => {}
            }
        }
        let request_id = request_id.ok_or(RejectReason::MissingField)?;
        if event.latency_ms.is_none() {
            return Err(RejectReason::MissingField.into());
        }
        let remembered = self.failures.take(request_id);
        let outcome = if status.is_empty() { remembered.unwrap_or(Outcome::Success) } else { outcome_of(status) };
        set_outcome(&mut event, outcome);
        event.service = &self.default_service;
        event.error_type = utf8(error_type)?;
        if self.want_ids {
            event.request_id = utf8(request_id)?;
            event.trace_id = utf8(trace_id)?;
        }
        sink.event(&event);
        Ok(())
    }

    fn decode_json(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let parsed: PlatformLine<'_> = match serde_json::from_slice(line) {
            Ok(p) => p,
            Err(_) if memmem::find(line, b"\"platform.").is_some() => return Err(RejectReason::BadJson.into()),
            Err(_) => return Ok(()),
        };
        self.platform_event(&parsed, sink).map(|_| ()).map_err(Reject::from)
    }

    /// One `{"time", "type", "record"}` object; whether it emitted an event.
    fn platform_event(&mut self, p: &PlatformLine<'_>, sink: &mut dyn EventSink) -> Result<bool, RejectReason> {
        let Some(kind) = text(&p.kind) else { return Ok(false) };
        let Some(RecordValue::Platform(record)) = &p.record else { return Ok(false) };
        let request_id = record.request_id.as_deref().unwrap_or("");
        match kind {
            "platform.report" => {}
            "platform.runtimeDone" => {
                let outcome = record.status.as_deref().map_or(Outcome::Success, |s| outcome_of(s.as_bytes()));
                if outcome != Outcome::Success {
                    self.failures.remember(request_id.as_bytes(), outcome);
                }
                return Ok(false);
            }
            _ => return Ok(false),
        }
        let ts_ms = match text(&p.time) {
            Some(t) => timestamp_ms(t.as_bytes()).ok_or(RejectReason::BadTimestamp)?,
            None => self.time_hint.ok_or(RejectReason::MissingField)?,
        };
        let metrics = record.metrics.as_ref().ok_or(RejectReason::MissingField)?;
        let latency = metrics.duration_ms.ok_or(RejectReason::MissingField)?;
        let mut event = RequestEvent {
            ts_ms,
            origin: Some(Origin::Lambda),
            service: &self.default_service,
            latency_ms: Some(non_negative(latency)?),
            billed_ms: metrics.billed_duration_ms.map(non_negative).transpose()?,
            init_ms: metrics.init_duration_ms.map(non_negative).transpose()?,
            memory_size_mb: metrics.memory_size_mb.map(whole_megabytes).transpose()?,
            max_memory_used_mb: metrics.max_memory_used_mb.map(whole_megabytes).transpose()?,
            error_type: record.error_type.as_deref().unwrap_or(""),
            ..RequestEvent::default()
        };
        let remembered = self.failures.take(request_id.as_bytes());
        let outcome = match record.status.as_deref() {
            Some(s) if !s.is_empty() => outcome_of(s.as_bytes()),
            _ => remembered.unwrap_or(Outcome::Success),
        };
        set_outcome(&mut event, outcome);
        if self.want_ids {
            event.request_id = request_id;
            event.trace_id = record.tracing.as_ref().and_then(|t| t.value.as_deref()).map_or("", xray_root);
        }
        sink.event(&event);
        Ok(true)
    }
}

impl Decoder for LambdaDecoder {
    fn set_time_hint(&mut self, ts_ms: Option<i64>) {
        self.time_hint = ts_ms;
    }

    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        if line.len() > MAX_LINE {
            return Err(RejectReason::TooLong.into());
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.iter().find(|b| !b.is_ascii_whitespace()) {
            None => Ok(()),
            Some(b'{') => self.decode_json(line, sink),
            Some(_) => self.decode_text(line, sink),
        }
    }

    fn reset(&mut self) {
        self.time_hint = None;
        self.failures = RememberedFailures::new();
    }

    fn want(&mut self, fields: Wanted) {
        self.want_ids = fields.request_id;
    }
}

/// Whether `line` (the first of a file or stream) is a Lambda platform line.
pub(crate) fn looks_like_lambda(line: &[u8]) -> bool {
    if line.first() == Some(&b'{') {
        return memmem::find(line, b"\"type\":\"platform.").is_some()
            || memmem::find(line, b"\"type\": \"platform.").is_some();
    }
    let (_, rest) = split_prefix(line);
    if rest.first() == Some(&b'{') && rest.len() < line.len() {
        return looks_like_lambda(rest);
    }
    [&b"START RequestId:"[..], b"REPORT RequestId:", b"END RequestId:", b"INIT_START Runtime Version:"]
        .iter()
        .any(|p| rest.starts_with(p))
}

fn set_outcome(event: &mut RequestEvent<'_>, outcome: Outcome) {
    event.outcome = outcome;
    event.status = match outcome {
        Outcome::Timeout => 504,
        Outcome::Success => 200,
        _ => 500,
    };
}

fn outcome_of(status: &[u8]) -> Outcome {
    if status.eq_ignore_ascii_case(b"success") {
        Outcome::Success
    } else if status.eq_ignore_ascii_case(b"timeout") {
        Outcome::Timeout
    } else {
        Outcome::Error
    }
}

/// The message of a line and the time before it: up to five leading words
/// that are timestamps (the first one counts; the message may repeat its
/// own), a Lambda log stream name, or the log group before a stream name or
/// named `/aws/lambda/…`. Covers `aws logs tail` (both formats), `awslogs
/// get` and exports that put an RFC 3339 time first (see `decode/saved.rs`).
fn split_prefix(line: &[u8]) -> (Time, &[u8]) {
    let mut time = Time::Absent;
    let mut rest = skip_blanks(line);
    for _ in 0..5 {
        let (word, after) = split_word(rest);
        let next = skip_blanks(after);
        match saved::time_word(word) {
            Time::Absent => {
                let group = saved::is_name(word)
                    && (word.starts_with(b"/aws/lambda/") || saved::is_lambda_stream(split_word(next).0));
                if !saved::is_lambda_stream(word) && !group {
                    break;
                }
            }
            t => {
                if time == Time::Absent {
                    time = t;
                }
            }
        }
        rest = next;
    }
    (time, rest)
}

fn timestamp_ms(s: &[u8]) -> Option<i64> {
    rfc3339_ms(s).or_else(|| {
        let ts: jiff::Timestamp = std::str::from_utf8(s).ok()?.parse().ok()?;
        Some(ts.as_millisecond())
    })
}

/// The next `Key: value [unit]` of a `REPORT` line: a key is the text up
/// to the next `:`, the value the word after it, and a following `ms` or
/// `MB` is the value's unit.
fn next_field(s: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let s = skip_blanks(s);
    let colon = memchr::memchr(b':', s)?;
    let key = &s[..colon];
    let (value, rest) = split_word(skip_blanks(&s[colon + 1..]));
    let (unit, after) = split_word(skip_blanks(rest));
    let rest = if unit == b"ms" || unit == b"MB" { after } else { rest };
    Some((key, value, rest))
}

/// A non-negative decimal number of milliseconds (`12`, `12.34`).
fn millis(s: &[u8]) -> Result<f64, RejectReason> {
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    if int.is_empty() || (frac.is_empty() && s.len() != int.len()) || !all_digits(int) || !all_digits(frac) {
        return Err(RejectReason::BadNumber);
    }
    if int.len() + frac.len() > 15 {
        // Past 2^53 the integer division below would round twice.
        return utf8(s).ok().and_then(|t| t.parse::<f64>().ok()).ok_or(RejectReason::BadNumber);
    }
    let n = int.iter().chain(frac).fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    // Both are exact in an f64, so the quotient is the correctly rounded
    // value of the decimal, the same as `str::parse` gives.
    Ok(n as f64 / 10u64.pow(frac.len() as u32) as f64)
}

fn megabytes(s: &[u8]) -> Result<u32, RejectReason> {
    if s.is_empty() || s.len() > 9 {
        return Err(RejectReason::BadNumber);
    }
    s.iter().try_fold(0u32, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 { Err(RejectReason::BadNumber) } else { Ok(acc * 10 + u32::from(d)) }
    })
}

fn non_negative(x: f64) -> Result<f64, RejectReason> {
    if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(RejectReason::BadNumber) }
}

fn whole_megabytes(x: f64) -> Result<u32, RejectReason> {
    if x.is_finite() && x >= 0.0 && x <= f64::from(u32::MAX) && x.fract() == 0.0 {
        Ok(x as u32)
    } else {
        Err(RejectReason::BadNumber)
    }
}

fn utf8(s: &[u8]) -> Result<&str, RejectReason> {
    std::str::from_utf8(s).map_err(|_| RejectReason::BadEncoding)
}

/// The `Root=` part of an `X-Amzn-Trace-Id` value (`Root=1-…;Parent=…;Sampled=1`),
/// so JSON and text reports carry the same trace id; the whole value if it has none.
fn xray_root(value: &str) -> &str {
    value.split(';').find_map(|part| part.trim().strip_prefix("Root=")).unwrap_or(value)
}

/// Request ids whose invocation failed before its report arrived, in a fixed
/// ring: nothing is allocated after construction.
struct RememberedFailures {
    ids: Box<[[u8; ID_MAX]; REMEMBERED]>,
    lens: [u8; REMEMBERED],
    outcomes: [Outcome; REMEMBERED],
    next: usize,
    live: usize,
}

impl RememberedFailures {
    fn new() -> Self {
        RememberedFailures {
            ids: Box::new([[0; ID_MAX]; REMEMBERED]),
            lens: [0; REMEMBERED],
            outcomes: [Outcome::Unknown; REMEMBERED],
            next: 0,
            live: 0,
        }
    }

    fn find(&self, id: &[u8]) -> Option<usize> {
        if self.live == 0 {
            return None;
        }
        (0..REMEMBERED).find(|&i| usize::from(self.lens[i]) == id.len() && &self.ids[i][..id.len()] == id)
    }

    fn remember(&mut self, id: &[u8], outcome: Outcome) {
        if id.is_empty() || id.len() > ID_MAX {
            return;
        }
        if let Some(i) = self.find(id) {
            self.outcomes[i] = outcome;
            return;
        }
        let i = self.next;
        self.next = (self.next + 1) % REMEMBERED;
        if self.lens[i] == 0 {
            self.live += 1;
        }
        self.ids[i][..id.len()].copy_from_slice(id);
        self.lens[i] = id.len() as u8;
        self.outcomes[i] = outcome;
    }

    fn take(&mut self, id: &[u8]) -> Option<Outcome> {
        let i = self.find(id)?;
        self.lens[i] = 0;
        self.live -= 1;
        Some(self.outcomes[i])
    }
}

/// The keys of a platform event this decoder reads; the rest are skipped.
#[derive(Deserialize)]
struct PlatformLine<'a> {
    #[serde(borrow, default)]
    time: Option<Scalar<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    record: Option<RecordValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(borrow, default)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error_type: Option<Cow<'a, str>>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(borrow, default)]
    tracing: Option<Tracing<'a>>,
}

#[derive(Deserialize)]
struct Metrics {
    #[serde(rename = "durationMs", default)]
    duration_ms: Option<f64>,
    #[serde(rename = "billedDurationMs", default)]
    billed_duration_ms: Option<f64>,
    #[serde(rename = "memorySizeMB", default)]
    memory_size_mb: Option<f64>,
    #[serde(rename = "maxMemoryUsedMB", default)]
    max_memory_used_mb: Option<f64>,
    #[serde(rename = "initDurationMs", default)]
    init_duration_ms: Option<f64>,
}

#[derive(Deserialize)]
struct Tracing<'a> {
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
}

/// A string, or nothing when the value has another type: an application's
/// own JSON may use `type` or `time` for anything.
fn text<'s>(v: &'s Option<Scalar<'_>>) -> Option<&'s str> {
    v.as_ref().and_then(Scalar::as_text)
}

/// `record` is an object for platform events and a string for function and
/// extension log lines.
enum RecordValue<'a> {
    Platform(Record<'a>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for RecordValue<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Record::deserialize(de::value::MapAccessDeserializer::new(map)).map(RecordValue::Platform)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RecordValue::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RecordValue::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Walks a Telemetry API array, handing each element to the decoder as it is
/// parsed, so a batch needs no vector of its own.
struct BatchVisitor<'d, 's> {
    decoder: &'d mut LambdaDecoder,
    sink: &'s mut dyn EventSink,
}

impl<'de> Visitor<'de> for BatchVisitor<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of telemetry events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut emitted = 0;
        while let Some(element) = seq.next_element::<Lenient<PlatformLine<'de>>>()? {
            let Lenient(Some(p)) = element else { continue };
            match self.decoder.platform_event(&p, self.sink) {
                Ok(true) => emitted += 1,
                Ok(false) => {}
                Err(reason) => {
                    if let Some(i) = RejectReason::ALL.iter().position(|&r| r == reason) {
                        self.decoder.batch_rejects[i] += 1;
                    }
                }
            }
        }
        Ok(emitted)
    }
}

/// An array element that is not an object (skipped rather than failing the batch).
struct Lenient<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Lenient(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests;
