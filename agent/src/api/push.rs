//! Push endpoints: Firehose HTTP endpoint deliveries, Lambda Telemetry API
//! batches, OTLP/HTTP traces.
//!
//! A handler checks the token (in constant time), reads the body within its
//! size limit and the request timeout, undoes gzip (bounded), and queues the
//! delivery for the ingest thread ([`crate::push`]). It answers success only
//! after the ingest thread committed the delivery's counts. Every refusal has
//! a 4xx or 5xx status with a message saying what was wrong, and is counted
//! in `slo_agent_push_requests_total{result=…}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::state::ApiState;
use crate::auth::bearer;
use crate::decode::{GunzipError, gunzip_bounded};
use crate::source::push::{
    Ack, Claim, Delivery, InflateError, MAX_REQUEST_ID_BYTES, Nack, Payload, PushKind, PushSourceConfig, QueueError,
    firehose, inflate_records,
};
use crate::telemetry::events::PushAnswered;

/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A refused request: status, a reason label for the metric, a message.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { status, reason, message: message.into() }
    }

    fn too_large(limit: usize) -> Refusal {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request decompresses to more than {limit} bytes; nothing of it was counted"),
        )
    }
}

fn count(state: &ApiState, source: &str, kind: PushKind, result: &'static str) {
    PushAnswered { source, kind: kind.as_str(), result }.emit(&state.telemetry);
}

/// The push source named `name`, if it is of `kind`.
fn source(state: &ApiState, name: &str, kind: PushKind) -> Result<PushSourceConfig, Refusal> {
    match state.push.sources.get(name) {
        Some(s) if s.kind == kind => Ok(s.clone()),
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!(
                "no {} source named {:?} is configured",
                kind.as_str(),
                crate::untrusted::Escaped(name).to_string()
            ),
        )),
    }
}

/// Check the token a client presented against the source's, if it has one.
fn authorize(src: &PushSourceConfig, presented: Option<&[u8]>) -> Result<(), Refusal> {
    let Some(token) = &src.token else { return Ok(()) };
    let what = if src.kind == PushKind::Firehose { "X-Amz-Firehose-Access-Key" } else { "Authorization: Bearer" };
    match presented {
        None => Err(Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized", format!("missing {what}"))),
        Some(p) if token.matches(p) => Ok(()),
        Some(_) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized", format!("wrong {what}"))),
    }
}

/// A permit to read, inflate and decode one request: taken before the body
/// is read, so a burst of requests costs at most `max_concurrent` bodies.
fn permit(state: &ApiState) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    state.push.permits.clone().try_acquire_owned().map_err(|_| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many push requests are being read at once; retry shortly",
        )
    })
}

/// Read the body within the source's limits and undo `Content-Encoding:
/// gzip` within the request's decoding budget.
async fn read_body(src: &PushSourceConfig, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
    let limit = src.max_body_bytes;
    let too_large =
        || Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than {limit} bytes"));
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await;
    let bytes: Bytes = match collected {
        Err(_) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            ));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Ok(Err(e)) => return Err(Refusal::new(StatusCode::BAD_REQUEST, "bad_body", format!("reading the body: {e}"))),
        Ok(Ok(c)) => c.to_bytes(),
    };
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(bytes.to_vec()),
        Some("gzip") => {
            let max = src.max_decoded_bytes;
            blocking(move || gunzip(&bytes, max)).await?
        }
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_encoding",
            format!(
                "Content-Encoding `{}` is not supported; send gzip or no encoding",
                crate::untrusted::Escaped(other)
            ),
        )),
    }
}

/// CPU work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Decompress at most `max` bytes of (possibly multi-member) gzip.
fn gunzip(bytes: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    gunzip_bounded(bytes, max as u64).map_err(|e| match e {
        GunzipError::Corrupt(e) => {
            Refusal::new(StatusCode::BAD_REQUEST, "bad_body", format!("the body is not valid gzip: {e}"))
        }
        GunzipError::TooLarge => Refusal::too_large(max),
    })
}

/// A request id from a header or the body: at most [`MAX_REQUEST_ID_BYTES`].
fn request_id(id: Option<&str>) -> Result<Option<String>, Refusal> {
    match id {
        None | Some("") => Ok(None),
        Some(id) if id.len() <= MAX_REQUEST_ID_BYTES && !id.chars().any(char::is_control) => Ok(Some(id.to_string())),
        Some(id) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_request_id",
            format!(
                "the request id is {} bytes or has control characters; at most {MAX_REQUEST_ID_BYTES} printable bytes",
                id.len()
            ),
        )),
    }
}

/// Decode a payload away from the engine, queue it for counting, and wait
/// until it is committed. A handler that gives up waiting makes sure the
/// delivery is never counted, unless the runtime already took it; then it
/// waits for the runtime's answer.
async fn deliver(
    state: &Arc<ApiState>,
    src: &PushSourceConfig,
    request_id: Option<String>,
    payload: Payload,
) -> Result<Ack, Refusal> {
    let bytes = payload.bytes();
    let s2 = state.clone();
    let (name, id) = (src.name.clone(), request_id.clone());
    let decoded = blocking(move || s2.push.decode(&name, id.as_deref(), &payload)).await?.map_err(nack_refusal)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let claim = Arc::new(Claim::default());
    let d = Delivery {
        source: src.name.clone(),
        kind: src.kind,
        request_id,
        events: decoded.events,
        rejects: decoded.rejects,
        lines: decoded.lines,
        bytes,
        unrouted: decoded.unrouted,
        claim: claim.clone(),
        reply,
    };
    match state.push.submit(d) {
        Ok(()) => {}
        Err(QueueError::Full) => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the agent is busy counting earlier deliveries; retry shortly",
            ));
        }
        Err(QueueError::Closed) => {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping"));
        }
    }
    let timeout = state.push.timeout;
    tokio::pin!(answer);
    let result = match tokio::time::timeout(timeout, &mut answer).await {
        Ok(r) => r,
        Err(_) if claim.abandon() => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the delivery was not counted within {} s and will not be; retry (a Firehose retry with the same request id is counted once)",
                    timeout.as_secs()
                ),
            ));
        }
        // The runtime is counting it: its answer is due shortly.
        Err(_) => match tokio::time::timeout(timeout, &mut answer).await {
            Ok(r) => r,
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the delivery is being committed but the state file is slow; retry",
                ));
            }
        },
    };
    match result {
        Err(_) => Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping")),
        Ok(Ok(ack)) => Ok(ack),
        Ok(Err(n)) => Err(nack_refusal(n)),
    }
}

fn nack_refusal(n: Nack) -> Refusal {
    match n {
        Nack::ShuttingDown => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping"),
        Nack::Unavailable(m) => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
        Nack::Invalid(m) => Refusal::new(StatusCode::BAD_REQUEST, "bad_body", m),
    }
}

/// A refusal as an answer with `Retry-After` when retrying later can work.
fn with_retry_after(mut resp: Response) -> Response {
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    resp
}

/// `POST /ingest/firehose/{source}`.
pub async fn firehose(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let header_id = headers.get("x-amz-firehose-request-id").map(|v| v.to_str().unwrap_or("\u{0}"));
    // The answer echoes the request id only when it is one we accept.
    let echo = request_id(header_id).ok().flatten();
    let result = async {
        let src = source(&state, &name, PushKind::Firehose)?;
        authorize(&src, headers.get("x-amz-firehose-access-key").map(|v| v.as_bytes()))?;
        let header_id = request_id(header_id)?;
        let _permit = permit(&state)?;
        let body = read_body(&src, &headers, body).await?;
        let max = src.max_decoded_bytes;
        // One budget for the request: what the body inflated to counts
        // against what its records may inflate to.
        let left = (max as u64).saturating_sub(body.len() as u64);
        let parsed = blocking(move || firehose::parse_request(&body, max))
            .await?
            .map_err(|m| Refusal::new(StatusCode::BAD_REQUEST, "bad_body", m))?;
        let id = match header_id {
            Some(id) => Some(id),
            None => request_id(parsed.request_id.as_deref())?,
        };
        let records = parsed.records;
        let inflate = matches!(src.records, crate::source::push::RecordFormat::CloudWatchLogs(_));
        let records = if inflate {
            blocking(move || inflate_records(records, left))
                .await?
                .map_err(|InflateError::TooLarge| Refusal::too_large(max))?
        } else {
            records
        };
        let ack = deliver(&state, &src, id.clone(), Payload::FirehoseRecords(records)).await?;
        Ok::<_, Refusal>((id, ack))
    }
    .await;
    let now = state.clock.now_ms();
    match result {
        Ok((id, ack)) => {
            count(&state, &name, PushKind::Firehose, if ack.duplicate { "duplicate" } else { "counted" });
            let body = firehose::response(id.as_deref().unwrap_or(""), now, None);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(r) => {
            if state.push.sources.contains_key(&name) {
                count(&state, &name, PushKind::Firehose, r.reason);
            }
            let body = firehose::response(echo.as_deref().unwrap_or(""), now, Some(&r.message));
            with_retry_after((r.status, axum::Json(body)).into_response())
        }
    }
}

/// `POST /ingest/lambda-telemetry/{source}`: a Telemetry API batch.
pub async fn lambda_telemetry(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let src = source(&state, &name, PushKind::LambdaTelemetry)?;
        authorize(&src, bearer(&headers))?;
        let _permit = permit(&state)?;
        let body = read_body(&src, &headers, body).await?;
        deliver(&state, &src, None, Payload::TelemetryBatch(body)).await
    }
    .await;
    match result {
        Ok(ack) => {
            count(&state, &name, PushKind::LambdaTelemetry, "counted");
            (StatusCode::OK, axum::Json(serde_json::json!({"events": ack.events, "rejected": ack.rejected})))
                .into_response()
        }
        Err(r) => {
            if state.push.sources.contains_key(&name) {
                count(&state, &name, PushKind::LambdaTelemetry, r.reason);
            }
            with_retry_after((r.status, axum::Json(serde_json::json!({"error": r.message}))).into_response())
        }
    }
}

/// Which encoding an OTLP/HTTP request uses, from its `Content-Type`.
fn otlp_encoding(headers: &HeaderMap) -> Result<bool, Refusal> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" => Ok(false),
        "application/json" => Ok(true),
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_encoding",
            format!("Content-Type `{ct}` is not OTLP/HTTP; send application/x-protobuf or application/json"),
        )),
    }
}

/// `POST /v1/traces`: the OTLP/HTTP default path, for the one OTLP source.
pub async fn otlp_default(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Response {
    let names: Vec<&String> =
        state.push.sources.values().filter(|s| s.kind == PushKind::Otlp).map(|s| &s.name).collect();
    match names.as_slice() {
        [one] => {
            let name = (*one).clone();
            otlp_traces(State(state), Path(name), headers, body).await
        }
        [] => otlp_answer(
            false,
            Err(Refusal::new(StatusCode::NOT_FOUND, "unknown_source", "no otlp source is configured")),
        ),
        _ => otlp_answer(
            false,
            Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_source",
                "several otlp sources are configured: send to /ingest/otlp/{source}/v1/traces",
            )),
        ),
    }
}

/// `POST /ingest/otlp/{source}/v1/traces`.
pub async fn otlp_traces(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = otlp_encoding(&headers).unwrap_or(false);
    let result = async {
        let src = source(&state, &name, PushKind::Otlp)?;
        authorize(&src, bearer(&headers))?;
        let json = otlp_encoding(&headers)?;
        let _permit = permit(&state)?;
        let body = read_body(&src, &headers, body).await?;
        deliver(&state, &src, None, Payload::OtlpTraces { body, json }).await
    }
    .await;
    if state.push.sources.contains_key(&name) {
        let result = match &result {
            Ok(_) => "counted",
            Err(r) => r.reason,
        };
        count(&state, &name, PushKind::Otlp, result);
    }
    otlp_answer(json, result)
}

/// An OTLP/HTTP answer: `ExportTraceServiceResponse` (with
/// `partial_success` when spans were rejected) or a `google.rpc.Status`, in
/// the request's encoding.
fn otlp_answer(json: bool, result: Result<Ack, Refusal>) -> Response {
    let (status, body) = match &result {
        Ok(ack) => {
            let body = if ack.rejected == 0 {
                if json { b"{}".to_vec() } else { Vec::new() }
            } else {
                let msg = format!("{} span(s) rejected; see slo_agent_rejected_lines_total", ack.rejected);
                if json {
                    serde_json::json!({"partialSuccess": {"rejectedSpans": ack.rejected.to_string(), "errorMessage": msg}})
                        .to_string()
                        .into_bytes()
                } else {
                    let mut inner = Vec::new();
                    pb_varint_field(&mut inner, 1, ack.rejected);
                    pb_bytes_field(&mut inner, 2, msg.as_bytes());
                    let mut out = Vec::new();
                    pb_bytes_field(&mut out, 1, &inner);
                    out
                }
            };
            (StatusCode::OK, body)
        }
        Err(r) => {
            // google.rpc.Status: code 3 is INVALID_ARGUMENT, 14 UNAVAILABLE, 16 UNAUTHENTICATED.
            let code: u64 = match r.status {
                StatusCode::UNAUTHORIZED => 16,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => 14,
                StatusCode::NOT_FOUND => 5,
                _ => 3,
            };
            let body = if json {
                serde_json::json!({"code": code, "message": r.message}).to_string().into_bytes()
            } else {
                let mut out = Vec::new();
                pb_varint_field(&mut out, 1, code);
                pb_bytes_field(&mut out, 2, r.message.as_bytes());
                out
            };
            (r.status, body)
        }
    };
    let ct = if json { "application/json" } else { "application/x-protobuf" };
    let mut resp = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    resp
}

fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    pb_varint(out, field << 3);
    pb_varint(out, v);
}

fn pb_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    pb_varint(out, (field << 3) | 2);
    pb_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
