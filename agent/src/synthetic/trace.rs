//! Traces of the agent's own probes: each probe run is an OpenTelemetry
//! trace, sent over OTLP/HTTP (protobuf) to the `traces:` endpoint of
//! `agent.yaml`, and each request carries an `X-Amzn-Trace-Id` header of
//! the same trace, so the request can be found in X-Ray (API Gateway and
//! Lambda continue a trace whose header says `Sampled=1`) and in the
//! backend's logs.
//!
//! | span | kind | from |
//! | --- | --- | --- |
//! | `probe NAME` | internal | the run: from its start to the last hop's end |
//! | `GET HOP` | client | one hop's attempt that counts (`url.full`, `http.response.status_code`, `probe.hop`, `probe.attempts`) |
//! | `resolve`, `connect`, `tls`, `processing`, `transfer` | internal | the attempt's phases, one after the other |
//!
//! The trace id is an X-Ray one (its first four bytes are the run's start
//! in Unix seconds), so `1-5f2b1c3d-…` in X-Ray is `5f2b1c3d…` in OTLP; the
//! header's `Parent` is the hop's client span. Phases are measured as
//! durations (`probe::Phases`, summed over redirects); their spans are laid
//! end to end from the attempt's start, which is the run's start plus the
//! earlier attempts' durations (a retry starts at once).
//!
//! Spans wait in a bounded queue ([`QUEUE_SPANS`]) and go out in batches
//! of at most [`BATCH_SPANS`] every [`FLUSH_EVERY`]; a full queue drops
//! spans and counts them, an export that fails is logged and counted, never
//! retried beyond the exporter's own attempt: traces are a diagnostic, the
//! probe's result and events do not depend on them.
//!
//! Hand-assembled spans rather than the SDK's tracer: the phases are known
//! only after the request, as durations, and the trace id must be the one
//! the header carried, so the spans are built as `SpanData` and handed to
//! the `opentelemetry-otlp` exporter directly.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use rand::{RngCore, SeedableRng};

use super::Text;
use crate::probe;
use crate::telemetry::Telemetry;
use crate::telemetry::events as ev;

/// Spans waiting to be sent, at most.
pub const QUEUE_SPANS: usize = 8192;
/// Spans per export request, at most.
pub const BATCH_SPANS: usize = 512;
/// How long a span waits for its batch to fill.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// `traces:` in `agent.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// The OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    pub endpoint: String,
    /// Request headers (an API key); values may come from files or the environment.
    pub headers: Vec<(String, Text)>,
    pub timeout: Duration,
}

/// The ids of one run's trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTrace {
    pub trace_id: [u8; 16],
    pub root: [u8; 8],
}

impl RunTrace {
    /// New random ids; the trace id starts with `start_ms` in Unix seconds, as X-Ray's do.
    pub fn new(start_ms: i64) -> RunTrace {
        let mut rng = rand::rngs::SmallRng::from_os_rng();
        let mut trace_id = [0u8; 16];
        rng.fill_bytes(&mut trace_id);
        let secs = u32::try_from(start_ms.div_euclid(1000)).unwrap_or(0);
        trace_id[..4].copy_from_slice(&secs.to_be_bytes());
        RunTrace { trace_id, root: span_id(&mut rng) }
    }

    /// A new span id for a span of this run.
    pub fn span(&self) -> [u8; 8] {
        span_id(&mut rand::rngs::SmallRng::from_os_rng())
    }

    /// `X-Amzn-Trace-Id` for a request whose client span is `parent`.
    pub fn header(&self, parent: [u8; 8]) -> String {
        let t = hex(&self.trace_id);
        format!("Root=1-{}-{};Parent={};Sampled=1", &t[..8], &t[8..], hex(&parent))
    }
}

fn span_id(rng: &mut impl RngCore) -> [u8; 8] {
    loop {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        if id != [0; 8] {
            return id;
        }
    }
}

use crate::secret::hex;

/// The header's name.
pub const HEADER: &str = "x-amzn-trace-id";

fn at(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One span of a run, before it is `SpanData`.
struct Desc {
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    kind: SpanKind,
    name: String,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    status: Status,
}

fn span(t: &RunTrace, d: Desc) -> SpanData {
    let Desc { id, parent, kind, name, start, end, attributes, status } = d;
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(t.trace_id),
            SpanId::from_bytes(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: InstrumentationScope::builder("slo-agent").build(),
    }
}

/// The spans of one hop's outcome under `parent`: its client span (id
/// `client`, the one its header named) and the phases of the attempt that
/// counts. Returns them and the hop's end.
pub fn hop_spans(
    t: &RunTrace,
    parent: [u8; 8],
    client: [u8; 8],
    o: &probe::Outcome,
    method: &str,
    start_ms: i64,
) -> (Vec<SpanData>, SystemTime) {
    let earlier: Duration = o.attempts[..o.attempts.len() - 1].iter().map(|a| a.duration).sum();
    let last = o.last();
    let start = at(start_ms) + earlier;
    let end = start + last.duration;
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("url.full", o.url.clone()),
        KeyValue::new("probe.name", o.probe.clone()),
        KeyValue::new("probe.hop", o.hop.clone()),
        KeyValue::new("probe.region", o.region.clone()),
        KeyValue::new("probe.attempts", o.attempts.len() as i64),
    ];
    if let Some(s) = last.status {
        attributes.push(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    if let Some(v) = &last.http_version {
        attributes.push(KeyValue::new("network.protocol.version", v.trim_start_matches("HTTP/").to_string()));
    }
    let status = if o.success { Status::Ok } else { Status::error(last.reasons().join("; ")) };
    let client_span = Desc {
        id: client,
        parent: Some(parent),
        kind: SpanKind::Client,
        name: format!("{method} {}", o.hop),
        start,
        end,
        attributes,
        status,
    };
    let mut out = vec![span(t, client_span)];
    let mut phase_start = start;
    for (name, d) in last.phases.named() {
        if d.is_zero() {
            continue;
        }
        let phase = Desc {
            id: t.span(),
            parent: Some(client),
            kind: SpanKind::Internal,
            name: name.to_string(),
            start: phase_start,
            end: phase_start + d,
            attributes: vec![],
            status: Status::Unset,
        };
        out.push(span(t, phase));
        phase_start += d;
    }
    (out, end)
}

/// The root span of a run named `name` (`probe storefront`) from `start_ms` to `end`.
pub fn root_span(
    t: &RunTrace,
    name: String,
    start_ms: i64,
    end: SystemTime,
    ok: bool,
    attributes: Vec<KeyValue>,
) -> SpanData {
    let status = if ok { Status::Ok } else { Status::error("a check failed") };
    let d =
        Desc { id: t.root, parent: None, kind: SpanKind::Internal, name, start: at(start_ms), end, attributes, status };
    span(t, d)
}

/// The spans of a journey run: `journey NAME` from its start to its end,
/// and under it each sent step's client span (the one its header named)
/// with its phases; a step that failed after its answer (an extraction) is
/// an error span too.
pub fn journey_spans(run: &super::journey::JourneyRun) -> Vec<SpanData> {
    let t = &run.trace;
    let end = at(run.started_ms) + run.duration;
    let mut out = vec![root_span(
        t,
        format!("journey {}", run.name),
        run.started_ms,
        end,
        run.status != super::journey::Status::Failed,
        vec![
            KeyValue::new("journey.name", run.name.clone()),
            KeyValue::new("journey.status", run.status.as_str()),
            KeyValue::new("probe.region", run.region.clone()),
        ],
    )];
    for step in &run.steps {
        let Some(o) = &step.outcome else { continue };
        let start_ms = run.started_ms + step.offset.as_millis() as i64;
        let (mut spans, _) = hop_spans(t, t.root, step.span, o, &step.method, start_ms);
        if let (Some(first), Some(error)) = (spans.first_mut(), &step.error) {
            first.status = Status::error(error.clone());
        }
        out.append(&mut spans);
    }
    out
}

/// Sends spans to the OTLP endpoint from a bounded queue.
#[derive(Debug, Clone)]
pub struct Tracer {
    tx: tokio::sync::mpsc::Sender<SpanData>,
    telemetry: Arc<Telemetry>,
}

impl Tracer {
    /// Queue spans; those that do not fit are dropped and counted.
    pub fn send(&self, spans: Vec<SpanData>) {
        let mut dropped = 0u64;
        for s in spans {
            if self.tx.try_send(s).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            ev::TraceSpans { exported: 0, dropped, failed: false }.emit(&self.telemetry);
        }
    }
}

/// Headers added to every request of an OTLP/HTTP exporter, changeable
/// between exports (the metrics exporter re-reads its `_file`/`_env` values).
pub(crate) type SharedHeaders = Arc<std::sync::Mutex<http::HeaderMap>>;

/// The longest collector answer read: it is small; the rest is left unread.
const MAX_ANSWER: usize = 64 << 10;

/// An OTLP/HTTP exporter's HTTP client: the agent's reqwest (its TLS, its
/// trust roots), with optional extra headers. Both the trace exporter here
/// and the metrics exporter (`export::otlp`) use it.
#[derive(Debug)]
pub(crate) struct OtlpHttpClient {
    pub client: reqwest::Client,
    pub headers: Option<SharedHeaders>,
}

type HttpResult = Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError>;

impl opentelemetry_http::HttpClient for OtlpHttpClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: http::Request<bytes::Bytes>,
    ) -> Pin<Box<dyn Future<Output = HttpResult> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)?;
            if let Some(headers) = &self.headers {
                for (k, v) in headers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    request.headers_mut().insert(k.clone(), v.clone());
                }
            }
            let mut response = self.client.execute(request).await?;
            let mut out = http::Response::builder().status(response.status());
            for (k, v) in response.headers() {
                out = out.header(k, v);
            }
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER
                && let Some(chunk) = response.chunk().await?
            {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
            }
            Ok(out.body(bytes::Bytes::from(body))?)
        })
    }
}

/// Start the exporter task for `config`; spans sent to the returned
/// [`Tracer`] go out until the tracer and its clones are dropped.
pub fn start(config: &TraceConfig, telemetry: Arc<Telemetry>) -> Result<(Tracer, tokio::task::JoinHandle<()>), String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    let mut headers = std::collections::HashMap::new();
    for (k, v) in &config.headers {
        headers.insert(k.clone(), v.value().map_err(|e| format!("traces.headers.{k}: {e}"))?);
    }
    let client = reqwest::Client::builder().timeout(config.timeout).build().map_err(|e| format!("traces: {e}"))?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpHttpClient { client, headers: None })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| format!("traces: {e}"))?;
    exporter.set_resource(
        &opentelemetry_sdk::Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "slo-agent"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SpanData>(QUEUE_SPANS);
    let t = telemetry.clone();
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH_SPANS);
        loop {
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            let mut closed = false;
            while batch.len() < BATCH_SPANS {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(s)) => batch.push(s),
                    Ok(None) => {
                        closed = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                let n = batch.len() as u64;
                match exporter.export(std::mem::take(&mut batch)).await {
                    Ok(()) => ev::TraceSpans { exported: n, dropped: 0, failed: false }.emit(&t),
                    Err(e) => {
                        tracing::warn!(spans = n, error = %e, "sending the probes' traces failed; they are dropped");
                        ev::TraceSpans { exported: 0, dropped: n, failed: true }.emit(&t);
                    }
                }
            }
            if closed {
                return;
            }
        }
    });
    Ok((Tracer { tx, telemetry }, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_x_rays_with_the_time_in_front() {
        let t = RunTrace::new(1_600_000_000_123);
        let h = t.header([1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(h.starts_with("Root=1-5f5e1000-"), "{h}");
        assert!(h.ends_with(";Parent=0102030405060708;Sampled=1"), "{h}");
        let root = h.split(';').next().unwrap().trim_start_matches("Root=1-").replace('-', "");
        assert_eq!(root, hex(&t.trace_id));
        assert_ne!(t.span(), t.span());
        assert_ne!(RunTrace::new(0).trace_id, RunTrace::new(0).trace_id);
    }

    #[test]
    fn phases_are_laid_end_to_end_after_earlier_attempts() {
        let t = RunTrace::new(1_000_000);
        let attempt = |ms: u64, ok: bool| probe::Attempt {
            duration: Duration::from_millis(ms),
            phases: probe::Phases {
                resolve: Duration::from_millis(1),
                connect: Duration::from_millis(2),
                tls: Duration::ZERO,
                processing: Duration::from_millis(ms - 4),
                transfer: Duration::from_millis(1),
            },
            status: Some(if ok { 200 } else { 503 }),
            failed_assertions: if ok {
                vec![]
            } else {
                vec![probe::AssertionFailure::Status { status: 503, valid: vec![] }]
            },
            ..Default::default()
        };
        let o = probe::Outcome {
            probe: "storefront".into(),
            hop: "edge".into(),
            region: "eu-west-1".into(),
            url: "https://shop.example.com/health".into(),
            success: true,
            attempts: vec![attempt(100, false), attempt(40, true)],
        };
        let client = t.span();
        let (spans, end) = hop_spans(&t, t.root, client, &o, "GET", 1_000_000);
        assert_eq!(
            spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(),
            ["GET edge", "resolve", "connect", "processing", "transfer"]
        );
        // The counted attempt starts after the failed one.
        assert_eq!(spans[0].start_time, at(1_000_100));
        assert_eq!(end, at(1_000_140));
        assert_eq!(spans[0].parent_span_id, SpanId::from_bytes(t.root));
        assert!(spans[1..].iter().all(|s| s.parent_span_id == SpanId::from_bytes(client)));
        assert_eq!(spans[1].start_time, at(1_000_100));
        assert_eq!(spans[2].start_time, at(1_000_101));
        assert_eq!(spans[4].end_time, at(1_000_140));
        assert!(spans[0].attributes.iter().any(|kv| kv.key.as_str() == "probe.attempts" && kv.value.as_str() == "2"));
        assert_eq!(spans[0].span_kind, SpanKind::Client);
    }
}
