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
//! **Architecture invariant:** HTTP handlers only check, read, unwrap and
//! queue a [`Delivery`]; the ingest thread decodes it, counts it and commits
//! the counts (with the delivery's request id, when the protocol has one) in
//! one store transaction, and only then is the request answered with success.
//! A delivery is therefore either counted and acknowledged, or not counted and
//! retried by the sender; a Firehose request id that was committed before is
//! acknowledged again without counting ([`crate::store::Store::delivery`]).
//! The queue is bounded ([`QUEUE_DEPTH`] deliveries of at most
//! `max_decoded_bytes` each); when it is full the sender is told to retry.

pub mod config;
pub mod firehose;

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::decode::lambda::LambdaDecoder;
use crate::decode::{Decoder, Format, MAX_LINE, RejectReason, Rejects, feed_line, otlp};
use crate::event::{EventSink, Wanted};
use crate::secret::Secret;

/// Deliveries waiting for the ingest thread, across all push sources.
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

/// One request handed from an HTTP handler to the ingest thread.
#[derive(Debug)]
pub struct Delivery {
    pub source: String,
    /// Firehose's `X-Amz-Firehose-Request-Id`: the key that makes a
    /// redelivery count once. `None` for protocols without one.
    pub request_id: Option<String>,
    pub payload: Payload,
    pub reply: tokio::sync::oneshot::Sender<Result<Ack, Nack>>,
}

/// The handlers' end of the queue.
#[derive(Clone)]
pub struct PushQueue {
    tx: SyncSender<Delivery>,
}

/// Why a delivery could not be queued.
#[derive(Debug)]
pub enum QueueError {
    Full(Delivery),
    Closed(Delivery),
}

impl PushQueue {
    /// A queue of [`QUEUE_DEPTH`] deliveries and the ingest thread's end.
    pub fn new() -> (PushQueue, Receiver<Delivery>) {
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        (PushQueue { tx }, rx)
    }

    /// Queue without waiting: a full queue is the sender's cue to retry.
    pub fn offer(&self, d: Delivery) -> Result<(), QueueError> {
        self.tx.try_send(d).map_err(|e| match e {
            TrySendError::Full(d) => QueueError::Full(d),
            TrySendError::Disconnected(d) => QueueError::Closed(d),
        })
    }
}

/// Per-source decoding state, owned by the ingest thread.
enum SourceDecoder {
    Subscription(SubscriptionDecoder),
    Lines(Box<dyn Decoder>),
    Telemetry(Box<LambdaDecoder>),
    #[allow(dead_code)] // read by the OTLP/HTTP receiver, wired next
    Otlp {
        service: String,
    },
}

/// Decodes deliveries into events; lives on the ingest thread.
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
    /// cannot be used are counted in `rejects` (sampled with their place);
    /// `Err` means the payload as a whole was unusable and nothing was
    /// emitted. Returns how many lines, records or spans were looked at.
    pub fn decode(&mut self, d: &Delivery, sink: &mut dyn EventSink, rejects: &mut Rejects) -> Result<u64, Nack> {
        let Some(dec) = self.decoders.get_mut(&d.source) else {
            return Err(Nack::Invalid(format!("no push source named {:?}", d.source)));
        };
        let id = d.request_id.as_deref().unwrap_or("-");
        match (&d.payload, dec) {
            (Payload::FirehoseRecords(records), SourceDecoder::Subscription(sub)) => {
                for (i, rec) in records.iter().enumerate() {
                    let place = format!("{}:{id}:record {}", d.source, i + 1);
                    if let Err(r) = sub.decode_payload(rec, sink, rejects, &place) {
                        rejects.record(r.reason, || place.clone(), rec);
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
                        let place = || format!("{}:{id}:record {} line {}", d.source, i + 1, j + 1);
                        feed_line(dec.as_mut(), line, overlong, sink, rejects, place);
                    }
                }
                Ok(lines)
            }
            (Payload::TelemetryBatch(body), SourceDecoder::Telemetry(t)) => {
                let result = t.decode_telemetry_batch(body, sink);
                for (reason, n) in t.take_batch_rejects() {
                    for _ in 0..n {
                        rejects.record(reason, || format!("{}:batch", d.source), b"");
                    }
                }
                match result {
                    Ok(n) => Ok(n as u64),
                    Err(r) => {
                        rejects.record(r.reason, || format!("{}:batch", d.source), body);
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
                        rejects.record(reason, || format!("{}:{id}", d.source), b"");
                    }
                }
                Ok(stats.spans)
            }
            _ => Err(Nack::Invalid(format!("source {:?} does not take this kind of payload", d.source))),
        }
    }
}
