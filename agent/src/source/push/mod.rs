//! Push sources: telemetry that arrives on the agent's HTTP server instead of
//! being read from files or pulled from AWS.
//!
//! - **Firehose** (`POST /ingest/firehose/{source}`): the Amazon Data Firehose
//!   HTTP endpoint delivery protocol. Records are base64; they hold CloudWatch
//!   Logs subscription payloads (the usual way API Gateway and Lambda logs
//!   leave CloudWatch) or log lines of any line format (CloudFront real-time
//!   logs through Kinesis).
//! - **Lambda Telemetry API** (`POST /ingest/lambda-telemetry/{source}`): the
//!   JSON arrays the Lambda platform posts to an extension's listener.
//! - **OTLP/HTTP** traces (`POST /v1/traces`, or
//!   `/ingest/otlp/{source}/v1/traces`).
//!
//! **Architecture invariant:** a push request costs bounded memory and CPU
//! before anything is counted: the token is checked first, then a permit is
//! taken from [`PushGate::permits`] (too many requests in flight: 503 with
//! `Retry-After`, before any body is read or inflated), the body is read
//! within `max_body_bytes`, and gzip (of the body and of each record) is
//! undone within one budget of `max_decoded_bytes` for the whole request
//! (over it: 413, nothing counted). The request is decoded into an
//! [`EventBatch`] by the handler, away from the engine; the runtime counts
//! the batch and commits the counts (with the delivery's request id, when the
//! protocol has one) in one store transaction, and only then is the request
//! answered with success. A delivery is therefore either counted and
//! acknowledged, or not counted and retried by the sender: a delivery whose
//! handler gave up waiting ([`Claim`]) is never counted, and a Firehose
//! request id that was committed before is acknowledged again without
//! counting. The queue to the runtime is bounded ([`QUEUE_DEPTH`]).

pub mod config;
pub mod firehose;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::decode::lambda::LambdaDecoder;
use crate::decode::{Decoder, Format, MAX_LINE, RejectReason, Rejects, feed_line, otlp};
use crate::event::{EventBatch, EventSink, Wanted};
use crate::secret::Secret;

/// Deliveries waiting for the runtime to count them, across all push sources.
pub const QUEUE_DEPTH: usize = 4;
/// Default limit on a request body as sent (possibly gzip-compressed).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// Default limit on a body after gzip and base64 are undone.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 64 << 20;

/// Which protocol a push source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    Firehose,
    LambdaTelemetry,
    Otlp,
}

impl PushKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Firehose => "firehose",
            PushKind::LambdaTelemetry => "lambda-telemetry",
            PushKind::Otlp => "otlp",
        }
    }

    pub fn parse(s: &str) -> Option<PushKind> {
        [PushKind::Firehose, PushKind::LambdaTelemetry, PushKind::Otlp].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushSourceConfig {
    pub name: String,
    pub kind: PushKind,
    /// What Firehose records hold: `cloudwatch-logs` for subscription
    /// payloads, or a line format. Unused by the other kinds.
    pub records: RecordFormat,
    /// Service for records that name none.
    pub service: String,
    /// Required when set: the Firehose access key, or the bearer token.
    pub token: Option<Secret>,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
}

/// What a Firehose record holds.
#[derive(Debug, Clone)]
pub enum RecordFormat {
    /// CloudWatch Logs subscription payloads; the log group picks the decoder.
    CloudWatchLogs(Vec<LogGroupRoute>),
    /// Log lines (one or more per record) of one format.
    Lines { format: Format, fields: Vec<String> },
}

impl PartialEq for RecordFormat {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RecordFormat::CloudWatchLogs(a), RecordFormat::CloudWatchLogs(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.log_group.as_str() == y.log_group.as_str() && x.format == y.format && x.service == y.service
                    })
            }
            (RecordFormat::Lines { format: f1, fields: a }, RecordFormat::Lines { format: f2, fields: b }) => {
                f1 == f2 && a == b
            }
            _ => false,
        }
    }
}

/// A request body, unwrapped by the handler, waiting to be counted.
#[derive(Debug)]
pub enum Payload {
    /// Firehose records, base64 already undone.
    FirehoseRecords(Vec<Vec<u8>>),
    /// One Telemetry API POST body (a JSON array).
    TelemetryBatch(Vec<u8>),
    /// An OTLP `ExportTraceServiceRequest`.
    OtlpTraces { body: Vec<u8>, json: bool },
}

impl Payload {
    pub fn bytes(&self) -> u64 {
        match self {
            Payload::FirehoseRecords(r) => r.iter().map(|r| r.len() as u64).sum(),
            Payload::TelemetryBatch(b) | Payload::OtlpTraces { body: b, .. } => b.len() as u64,
        }
    }
}

/// What counting a delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// The request id was committed before; nothing was counted now.
    pub duplicate: bool,
    pub events: u64,
    /// Lines, records or spans that could not be used (counted as rejects).
    pub rejected: u64,
}

/// Why a delivery was not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nack {
    /// The agent is stopping; the sender should retry (elsewhere or later).
    ShuttingDown,
    /// The state store failed; the sender should retry.
    Unavailable(String),
    /// The payload as a whole could not be read (e.g. an OTLP body that is
    /// not a request); nothing was counted.
    Invalid(String),
}

/// Who counts a delivery: the runtime, unless the handler gave up first.
/// Whichever gets there first wins; the other does nothing.
#[derive(Debug, Default)]
pub struct Claim(AtomicU8);

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    /// The runtime is about to count the delivery. `false`: the handler
    /// already gave up (and told the sender to retry); do not count it.
    pub fn take(&self) -> bool {
        self.0.compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The handler gives up waiting. `false`: the runtime took the delivery
    /// already, so its answer is coming and must be waited for.
    pub fn abandon(&self) -> bool {
        self.0.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// One request, decoded by its handler, waiting to be counted.
#[derive(Debug)]
pub struct Delivery {
    pub source: String,
    pub kind: PushKind,
    /// Firehose's `X-Amz-Firehose-Request-Id`: the key that makes a
    /// redelivery count once. `None` for protocols without one.
    pub request_id: Option<String>,
    pub events: EventBatch,
    pub rejects: Rejects,
    /// Lines, records or spans looked at.
    pub lines: u64,
    /// Payload bytes (after gzip and base64).
    pub bytes: u64,
    /// CloudWatch Logs events of log groups no route covers.
    pub unrouted: Unrouted,
    pub claim: Arc<Claim>,
    pub reply: tokio::sync::oneshot::Sender<Result<Ack, Nack>>,
}

/// CloudWatch Logs events in a delivery whose log group no route covers:
/// counted, never decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unrouted {
    pub log_events: u64,
    /// Log groups the source's decoder had not named before (untrusted text).
    pub new_groups: Vec<String>,
}

/// A payload decoded by its handler, ready to become a [`Delivery`].
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: EventBatch,
    pub rejects: Rejects,
    /// Lines, records or spans looked at.
    pub lines: u64,
    pub unrouted: Unrouted,
}

/// Why a delivery could not be queued.
#[derive(Debug)]
pub enum QueueError {
    Full,
    Closed,
}

/// Longest request id accepted (Firehose sends UUIDs): it is kept for a day
/// in the store and echoed in the answer.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Push requests decoded at once, per agent, unless configured otherwise.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// What the HTTP handlers of push sources share: the sources, their
/// decoders, the permits that bound requests in flight, and the queue to
/// the runtime.
pub struct PushGate {
    pub sources: BTreeMap<String, PushSourceConfig>,
    decoders: Mutex<PushDecoders>,
    /// Which optional fields the SLOs read (the runtime sets it on reload).
    wanted: Mutex<Wanted>,
    queue: tokio::sync::mpsc::Sender<Delivery>,
    /// How long a handler waits for its delivery to be committed.
    pub timeout: std::time::Duration,
    /// Requests that may be read, inflated and decoded at once; the rest are
    /// refused before their body is read.
    pub permits: Arc<tokio::sync::Semaphore>,
}

impl PushGate {
    /// `Err` when a source's line format cannot be built (checked when the config loads).
    pub fn new(
        sources: Vec<PushSourceConfig>,
        queue: tokio::sync::mpsc::Sender<Delivery>,
        timeout: std::time::Duration,
        max_concurrent: usize,
    ) -> Result<PushGate, String> {
        let decoders = PushDecoders::new(&sources)?;
        Ok(PushGate {
            sources: sources.into_iter().map(|s| (s.name.clone(), s)).collect(),
            decoders: Mutex::new(decoders),
            wanted: Mutex::new(Wanted::ALL),
            queue,
            timeout,
            permits: Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1))),
        })
    }

    pub fn set_wanted(&self, wanted: Wanted) {
        *self.wanted.lock().unwrap_or_else(|e| e.into_inner()) = wanted;
    }

    /// Decode a payload into events (blocking: call it off the async
    /// runtime). Lines that cannot be used are counted in the rejects; `Err`
    /// means the payload as a whole could not be read, and nothing is counted.
    pub fn decode(&self, source: &str, request_id: Option<&str>, payload: &Payload) -> Result<Decoded, Nack> {
        let wanted = *self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        let mut decoders = self.decoders.lock().unwrap_or_else(|e| e.into_inner());
        decoders.set_wanted(wanted);
        let mut d = Decoded { events: EventBatch::new(), ..Decoded::default() };
        d.lines = decoders.decode(source, request_id, payload, &mut d.events, &mut d.rejects, &mut d.unrouted)?;
        d.events.shrink_to_fit();
        Ok(d)
    }

    /// Hand a decoded delivery to the runtime, without waiting.
    pub fn submit(&self, d: Delivery) -> Result<(), QueueError> {
        self.queue.try_send(d).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => QueueError::Full,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }
}

/// Undo gzip (raw, or base64 of gzip, as CloudWatch Logs subscriptions
/// deliver) of every record, within one budget for all of them together.
/// `Err` when the records would inflate past `budget` bytes: the caller
/// refuses the whole request.
pub fn inflate_records(records: Vec<Vec<u8>>, mut budget: u64) -> Result<Vec<Vec<u8>>, InflateError> {
    use base64::Engine as _;
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let trimmed = rec.trim_ascii();
        let gz: Option<std::borrow::Cow<'_, [u8]>> = if trimmed.starts_with(&[0x1f, 0x8b]) {
            Some(std::borrow::Cow::Borrowed(trimmed))
        } else if trimmed.first().is_some_and(|b| *b != b'{') {
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .ok()
                .filter(|d| d.starts_with(&[0x1f, 0x8b]))
                .map(std::borrow::Cow::Owned)
        } else {
            None
        };
        let plain = match gz {
            None => {
                budget = budget.checked_sub(rec.len() as u64).ok_or(InflateError::TooLarge)?;
                rec
            }
            Some(gz) => match crate::decode::gunzip_bounded(&gz, budget) {
                Ok(v) => {
                    budget -= v.len() as u64;
                    v
                }
                Err(crate::decode::GunzipError::TooLarge) => return Err(InflateError::TooLarge),
                // Not gzip after all: the decoder rejects the record (counted).
                Err(crate::decode::GunzipError::Corrupt(_)) => rec,
            },
        };
        out.push(plain);
    }
    Ok(out)
}

/// Why records could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    TooLarge,
}

/// Per-source decoding state.
enum SourceDecoder {
    Subscription(SubscriptionDecoder),
    Lines(Box<dyn Decoder>),
    Telemetry(Box<LambdaDecoder>),
    #[allow(dead_code)] // read by the OTLP/HTTP receiver, wired next
    Otlp {
        service: String,
    },
}

/// Decodes payloads into events, one decoder per push source.
pub struct PushDecoders {
    decoders: BTreeMap<String, SourceDecoder>,
}

impl PushDecoders {
    /// Decoders for every push source. `Err` when a line format cannot be
    /// built from its configuration (already checked when the config loads).
    pub fn new(sources: &[PushSourceConfig]) -> Result<PushDecoders, String> {
        let mut decoders = BTreeMap::new();
        for s in sources {
            let d = match (s.kind, &s.records) {
                (PushKind::Firehose, RecordFormat::CloudWatchLogs(routes)) => SourceDecoder::Subscription(
                    SubscriptionDecoder::new(&s.service, routes.clone()).with_limit(s.max_decoded_bytes as u64),
                ),
                (PushKind::Firehose, RecordFormat::Lines { format, fields }) => {
                    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                    SourceDecoder::Lines(
                        format
                            .decoder_with_fields(&s.service, &fields)
                            .map_err(|e| format!("source {}: {e}", s.name))?,
                    )
                }
                (PushKind::LambdaTelemetry, _) => SourceDecoder::Telemetry(Box::new(LambdaDecoder::new(&s.service))),
                (PushKind::Otlp, _) => SourceDecoder::Otlp { service: s.service.clone() },
            };
            decoders.insert(s.name.clone(), d);
        }
        Ok(PushDecoders { decoders })
    }

    pub fn set_wanted(&mut self, wanted: Wanted) {
        for d in self.decoders.values_mut() {
            match d {
                SourceDecoder::Subscription(s) => s.want(wanted),
                SourceDecoder::Lines(l) => l.want(wanted),
                SourceDecoder::Telemetry(t) => t.want(wanted),
                SourceDecoder::Otlp { .. } => {}
            }
        }
    }

    /// Decode a delivery's payload into `sink`. Lines and records that
    /// cannot be used are counted in `rejects` (sampled with their place),
    /// log events of log groups no route covers in `unrouted`;
    /// `Err` means the payload as a whole was unusable and nothing was
    /// emitted. Returns how many lines, records or spans were looked at.
    pub fn decode(
        &mut self,
        source: &str,
        request_id: Option<&str>,
        payload: &Payload,
        sink: &mut dyn EventSink,
        rejects: &mut Rejects,
        unrouted: &mut Unrouted,
    ) -> Result<u64, Nack> {
        let Some(dec) = self.decoders.get_mut(source) else {
            return Err(Nack::Invalid(format!("no push source named {source:?}")));
        };
        let id = request_id.unwrap_or("-");
        match (payload, dec) {
            (Payload::FirehoseRecords(records), SourceDecoder::Subscription(sub)) => {
                for (i, rec) in records.iter().enumerate() {
                    let place = format!("{}:{id}:record {}", source, i + 1);
                    match sub.decode_payload(rec, sink, rejects, &place) {
                        Ok(stats) => {
                            unrouted.log_events += stats.unrouted_log_events;
                            unrouted.new_groups.extend(stats.new_unrouted_groups);
                        }
                        Err(r) => rejects.record(r.reason, || place.clone(), rec),
                    }
                }
                Ok(records.len() as u64)
            }
            (Payload::FirehoseRecords(records), SourceDecoder::Lines(dec)) => {
                let mut lines = 0u64;
                for (i, rec) in records.iter().enumerate() {
                    for (j, line) in rec.split(|&b| b == b'\n').enumerate() {
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        lines += 1;
                        let overlong = line.len() > MAX_LINE;
                        let place = || format!("{}:{id}:record {} line {}", source, i + 1, j + 1);
                        feed_line(dec.as_mut(), line, overlong, sink, rejects, place);
                    }
                }
                Ok(lines)
            }
            (Payload::TelemetryBatch(body), SourceDecoder::Telemetry(t)) => {
                let result = t.decode_telemetry_batch(body, sink);
                for (reason, n) in t.take_batch_rejects() {
                    for _ in 0..n {
                        rejects.record(reason, || format!("{}:batch", source), b"");
                    }
                }
                match result {
                    Ok(n) => Ok(n as u64),
                    Err(r) => {
                        rejects.record(r.reason, || format!("{}:batch", source), body);
                        Ok(0)
                    }
                }
            }
            (Payload::OtlpTraces { body, json }, SourceDecoder::Otlp { service }) => {
                // All or nothing: the decoders emit only once the whole body has been read.
                let decoded = if *json {
                    otlp::decode_traces_json(body, service, sink)
                } else {
                    otlp::decode_traces_protobuf(body, service, sink)
                };
                let stats = decoded.map_err(|e| Nack::Invalid(e.to_string()))?;
                let r = &stats.rejected;
                for (reason, n) in [
                    (RejectReason::BadTimestamp, r.missing_time + r.end_before_start),
                    (RejectReason::BadStatus, r.bad_status),
                ] {
                    for _ in 0..n {
                        rejects.record(reason, || format!("{}:{id}", source), b"");
                    }
                }
                Ok(stats.spans)
            }
            _ => Err(Nack::Invalid(format!("source {:?} does not take this kind of payload", source))),
        }
    }
}
