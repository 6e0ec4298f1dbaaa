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

use crate::auth::bearer;
use crate::daemon::{Shared, lock};
use crate::decode::{GunzipError, gunzip_bounded};
use crate::source::push::{Ack, Delivery, Nack, Payload, PushKind, PushSourceConfig, QueueError, firehose};

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
}

fn count_refusal(shared: &Shared, source: &str, reason: &'static str) {
    if let Some(f) = lock(&shared.sources).get_mut(source) {
        crate::export::prometheus::bump(&mut f.refused, reason);
    }
}

/// The push source named `name`, if it is of `kind`.
fn source(shared: &Shared, name: &str, kind: PushKind) -> Result<PushSourceConfig, Refusal> {
    match shared.push.sources.get(name) {
        Some(s) if s.kind == kind => Ok(s.clone()),
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no {} source named {name:?} is configured", kind.as_str()),
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

/// Read the body within the source's limits and undo `Content-Encoding: gzip`.
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
            tokio::task::spawn_blocking(move || gunzip(&bytes, max))
                .await
                .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        }
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_encoding",
            format!("Content-Encoding `{other}` is not supported; send gzip or no encoding"),
        )),
    }
}

/// Decompress at most `max` bytes of (possibly multi-member) gzip.
fn gunzip(bytes: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    gunzip_bounded(bytes, max as u64).map_err(|e| match e {
        GunzipError::Corrupt(e) => {
            Refusal::new(StatusCode::BAD_REQUEST, "bad_body", format!("the body is not valid gzip: {e}"))
        }
        GunzipError::TooLarge => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body decompresses to more than {max} bytes"),
        ),
    })
}

/// Queue a delivery and wait until the ingest thread has committed it.
async fn deliver(shared: &Shared, source: &str, request_id: Option<String>, payload: Payload) -> Result<Ack, Refusal> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let d = Delivery { source: source.to_string(), request_id, payload, reply };
    match shared.push.queue.offer(d) {
        Ok(()) => {}
        Err(QueueError::Full(_)) => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the agent is busy counting earlier deliveries; retry shortly",
            ));
        }
        Err(QueueError::Closed(_)) => {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping"));
        }
    }
    match tokio::time::timeout(shared.push.timeout, answer).await {
        Err(_) => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the delivery was not committed within {} s; retry (a Firehose retry with the same request id is counted once)",
                shared.push.timeout.as_secs()
            ),
        )),
        Ok(Err(_)) => Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping")),
        Ok(Ok(Ok(ack))) => Ok(ack),
        Ok(Ok(Err(Nack::ShuttingDown))) => {
            Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the agent is stopping"))
        }
        Ok(Ok(Err(Nack::Unavailable(m)))) => Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)),
        Ok(Ok(Err(Nack::Invalid(m)))) => Err(Refusal::new(StatusCode::BAD_REQUEST, "bad_body", m)),
    }
}

/// `POST /ingest/firehose/{source}`.
pub async fn firehose(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let header_id = headers
        .get("x-amz-firehose-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_string);
    let result = async {
        let src = source(&shared, &name, PushKind::Firehose)?;
        authorize(&src, headers.get("x-amz-firehose-access-key").map(|v| v.as_bytes()))?;
        let body = read_body(&src, &headers, body).await?;
        let max = src.max_decoded_bytes;
        let parsed = tokio::task::spawn_blocking(move || firehose::parse_request(&body, max))
            .await
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
            .map_err(|m| Refusal::new(StatusCode::BAD_REQUEST, "bad_body", m))?;
        let id = header_id.clone().or(parsed.request_id);
        let ack = deliver(&shared, &name, id.clone(), Payload::FirehoseRecords(parsed.records)).await?;
        Ok::<_, Refusal>((id, ack))
    }
    .await;
    let now = shared.clock.now_ms();
    match result {
        Ok((id, _ack)) => {
            let body = firehose::response(id.as_deref().unwrap_or(""), now, None);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(r) => {
            count_refusal(&shared, &name, r.reason);
            let body = firehose::response(header_id.as_deref().unwrap_or(""), now, Some(&r.message));
            (r.status, axum::Json(body)).into_response()
        }
    }
}

/// `POST /ingest/lambda-telemetry/{source}`: a Telemetry API batch.
pub async fn lambda_telemetry(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let src = source(&shared, &name, PushKind::LambdaTelemetry)?;
        authorize(&src, bearer(&headers))?;
        let body = read_body(&src, &headers, body).await?;
        deliver(&shared, &name, None, Payload::TelemetryBatch(body)).await
    }
    .await;
    match result {
        Ok(ack) => (StatusCode::OK, axum::Json(serde_json::json!({"events": ack.events, "rejected": ack.rejected})))
            .into_response(),
        Err(r) => {
            count_refusal(&shared, &name, r.reason);
            (r.status, axum::Json(serde_json::json!({"error": r.message}))).into_response()
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
pub async fn otlp_default(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let names: Vec<&String> =
        shared.push.sources.values().filter(|s| s.kind == PushKind::Otlp).map(|s| &s.name).collect();
    match names.as_slice() {
        [one] => {
            let name = (*one).clone();
            otlp_traces(State(shared), Path(name), headers, body).await
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
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = otlp_encoding(&headers).unwrap_or(false);
    let result = async {
        let src = source(&shared, &name, PushKind::Otlp)?;
        authorize(&src, bearer(&headers))?;
        let json = otlp_encoding(&headers)?;
        let body = read_body(&src, &headers, body).await?;
        deliver(&shared, &name, None, Payload::OtlpTraces { body, json }).await
    }
    .await;
    if let Err(r) = &result {
        count_refusal(&shared, &name, r.reason);
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
