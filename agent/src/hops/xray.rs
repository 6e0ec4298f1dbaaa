//! One request's hops from its X-Ray trace: the segment documents that
//! BatchGetTraces returns (`Traces[].Segments[].Document`), decomposed into
//! what the gateway, the Lambda service and the function each took.
//!
//! | figure | from the segments |
//! | --- | --- |
//! | `gateway_ms` | `AWS::ApiGateway::Stage` segment − its Lambda call subsegment (`Lambda`, or one naming `aws.function_name`) |
//! | `integration_ms` | that Lambda call subsegment (API Gateway's `integrationLatency`) |
//! | `lambda_overhead_ms` | `AWS::Lambda` segment − `AWS::Lambda::Function` segment; without the service segment, the call subsegment − the function segment |
//! | `init_ms` | the function segment's `Initialization` subsegment (`Init`, or SnapStart's `Restore`): a cold start |
//! | `invocation_ms` | its `Invocation` (`Invoke`) subsegment: the handler, like the `REPORT` line's `Duration` |
//! | `function_overhead_ms` | its `Overhead` subsegment: after the response, before the next invoke (extensions) |
//!
//! Segments are tied together by `parent_id`: the Lambda service segment's
//! parent is the stage segment's call subsegment, the function segment's
//! parent the service segment. Where a link is missing (a segment of the
//! trace not returned yet, older trace formats) the earliest segment of the
//! kind is taken. The request is the trace's root stage segment (the one
//! whose parent is not in the trace: a probe's own trace header names a
//! parent outside it). A trace of a function alone (a function URL, a direct
//! invoke) gives the Lambda figures without the gateway's.
//!
//! In-progress segments (no `end_time`) give no duration; negative
//! differences (clock skew between services) are clamped to 0.
//!
//! **Bounds.** A document larger than [`MAX_DOCUMENT_BYTES`] is refused, a
//! trace of more than [`MAX_SEGMENTS`] documents is cut there. Nothing here
//! does I/O: `source::aws::xray` fetches the documents.

use serde::Deserialize;
use serde_json::Value;

/// X-Ray takes documents of up to 64 kB; more than this is not a segment.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Documents read per trace.
pub const MAX_SEGMENTS: usize = 200;

const STAGE: &str = "AWS::ApiGateway::Stage";
const LAMBDA: &str = "AWS::Lambda";
const FUNCTION: &str = "AWS::Lambda::Function";

/// One request's hops, from its trace.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TracedRequest {
    pub trace_id: String,
    /// Start of the request (the stage segment, else the Lambda segment), ms since the epoch.
    pub start_ms: i64,
    /// `api-name/stage` (the stage segment's name).
    pub api: String,
    pub stage: String,
    pub method: String,
    pub host: String,
    /// URL path without the query, and without a leading `/{stage}`.
    pub path: String,
    /// HTTP status the gateway answered (or the function's, without a gateway); 0 unknown.
    pub status: u16,
    /// API Gateway's request id (its access log's `requestId`).
    pub request_id: String,
    /// The invocation's request id (the Lambda `REPORT`'s `RequestId`).
    pub lambda_request_id: String,
    /// The function's name.
    pub function: String,
    /// The whole stage segment: API Gateway's `responseLatency`.
    pub response_ms: Option<f64>,
    pub integration_ms: Option<f64>,
    pub gateway_ms: Option<f64>,
    /// The `AWS::Lambda` service segment.
    pub lambda_ms: Option<f64>,
    pub lambda_overhead_ms: Option<f64>,
    /// The `AWS::Lambda::Function` segment.
    pub function_ms: Option<f64>,
    pub init_ms: Option<f64>,
    pub invocation_ms: Option<f64>,
    pub function_overhead_ms: Option<f64>,
    /// The function segment had an initialization (or restore) subsegment.
    pub cold: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TraceError {
    #[error("trace {trace_id}: segment document of {bytes} bytes (at most {MAX_DOCUMENT_BYTES})")]
    TooLarge { trace_id: String, bytes: usize },
    #[error("trace {trace_id}: segment document is not a segment: {message}")]
    NotASegment { trace_id: String, message: String },
    #[error("trace {trace_id}: no API Gateway or Lambda segment")]
    NothingToDecompose { trace_id: String },
}

/// A segment or subsegment: the fields read, the rest ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Segment {
    id: String,
    name: String,
    start_time: f64,
    end_time: Option<f64>,
    parent_id: Option<String>,
    origin: Option<String>,
    http: Option<Http>,
    aws: Option<Value>,
    subsegments: Vec<Segment>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Http {
    request: Option<HttpRequest>,
    response: Option<HttpResponse>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HttpRequest {
    url: Option<String>,
    method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HttpResponse {
    status: Option<Value>,
}

impl Segment {
    fn duration_ms(&self) -> Option<f64> {
        let end = self.end_time?;
        let ms = (end - self.start_time) * 1000.0;
        // Microseconds: what the timestamps can carry.
        ms.is_finite().then(|| ((ms * 1000.0).round() / 1000.0).max(0.0))
    }

    fn origin_is(&self, o: &str) -> bool {
        self.origin.as_deref() == Some(o)
    }

    fn aws_str(&self, path: &[&str]) -> Option<&str> {
        let mut v = self.aws.as_ref()?;
        for k in path {
            v = v.get(k)?;
        }
        v.as_str()
    }

    fn status(&self) -> u16 {
        let s = self.http.as_ref().and_then(|h| h.response.as_ref()).and_then(|r| r.status.as_ref());
        match s {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
            Some(Value::String(t)) => t.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// The stage's call to Lambda.
    fn lambda_call(&self) -> Option<&Segment> {
        self.subsegments.iter().find(|s| s.name == "Lambda" || s.aws_str(&["function_name"]).is_some())
    }

    fn sub_ms(&self, names: &[&str]) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in self.subsegments.iter().filter(|s| names.contains(&s.name.as_str())) {
            found = true;
            total += s.duration_ms()?;
        }
        found.then_some(total)
    }

    fn start_ms(&self) -> i64 {
        let ms = self.start_time * 1000.0;
        if ms.is_finite() { ms.round() as i64 } else { 0 }
    }

    /// Every id in this segment and its subsegments.
    fn ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.push(&self.id);
        for s in &self.subsegments {
            s.ids(out);
        }
    }
}

/// Parse the documents of one trace (at most [`MAX_SEGMENTS`]).
fn parse(trace_id: &str, documents: &[&str]) -> Result<Vec<Segment>, TraceError> {
    let mut out = Vec::with_capacity(documents.len().min(MAX_SEGMENTS));
    for doc in documents.iter().take(MAX_SEGMENTS) {
        if doc.len() > MAX_DOCUMENT_BYTES {
            return Err(TraceError::TooLarge { trace_id: trace_id.to_string(), bytes: doc.len() });
        }
        let seg: Segment = serde_json::from_str(doc)
            .map_err(|e| TraceError::NotASegment { trace_id: trace_id.to_string(), message: e.to_string() })?;
        out.push(seg);
    }
    Ok(out)
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(((a? - b?) * 1000.0).round().max(0.0) / 1000.0)
}

/// Decompose one trace, given the `Document`s of its segments.
pub fn decompose(trace_id: &str, documents: &[&str]) -> Result<TracedRequest, TraceError> {
    let segs = parse(trace_id, documents)?;
    let mut ids = Vec::new();
    for s in &segs {
        s.ids(&mut ids);
    }
    let earliest = |pred: &dyn Fn(&Segment) -> bool| -> Option<&Segment> {
        segs.iter().filter(|s| pred(s)).min_by(|a, b| a.start_time.total_cmp(&b.start_time))
    };
    let outside = |s: &Segment| s.parent_id.as_deref().is_none_or(|p| !ids.contains(&p));
    let stage = earliest(&|s| s.origin_is(STAGE) && outside(s)).or_else(|| earliest(&|s| s.origin_is(STAGE)));
    let call = stage.and_then(Segment::lambda_call);
    let lambda = call
        .and_then(|c| earliest(&|s| s.origin_is(LAMBDA) && s.parent_id.as_deref() == Some(&c.id)))
        .or_else(|| earliest(&|s| s.origin_is(LAMBDA)));
    let function = lambda
        .and_then(|l| earliest(&|s| s.origin_is(FUNCTION) && s.parent_id.as_deref() == Some(&l.id)))
        .or_else(|| earliest(&|s| s.origin_is(FUNCTION)));
    let Some(first) = stage.or(lambda).or(function) else {
        return Err(TraceError::NothingToDecompose { trace_id: trace_id.to_string() });
    };

    let mut t = TracedRequest { trace_id: trace_id.to_string(), start_ms: first.start_ms(), ..Default::default() };
    if let Some(st) = stage {
        t.api = st.name.clone();
        t.stage = st.aws_str(&["api_gateway", "stage"]).unwrap_or("").to_string();
        t.request_id = st.aws_str(&["api_gateway", "request_id"]).unwrap_or("").to_string();
        t.status = st.status();
        if let Some(req) = st.http.as_ref().and_then(|h| h.request.as_ref()) {
            t.method = req.method.clone().unwrap_or_default();
            if let Some((host, path)) = req.url.as_deref().and_then(host_and_path) {
                t.host = host;
                t.path = strip_stage(&path, &t.stage).to_string();
            }
        }
        t.response_ms = st.duration_ms();
        t.integration_ms = call.and_then(Segment::duration_ms);
        t.gateway_ms = diff(t.response_ms, t.integration_ms);
        t.function = call.and_then(|c| c.aws_str(&["function_name"])).unwrap_or("").to_string();
    }
    if let Some(l) = lambda {
        t.lambda_ms = l.duration_ms();
        t.lambda_request_id = l.aws_str(&["request_id"]).unwrap_or("").to_string();
        if t.function.is_empty() {
            t.function = l.name.clone();
        }
        if stage.is_none() {
            t.status = l.status();
        }
    }
    if let Some(f) = function {
        t.function_ms = f.duration_ms();
        t.init_ms = f.sub_ms(&["Initialization", "Init", "Restore"]);
        t.invocation_ms = f.sub_ms(&["Invocation", "Invoke"]);
        t.function_overhead_ms = f.sub_ms(&["Overhead"]);
        t.cold = f.subsegments.iter().any(|s| matches!(s.name.as_str(), "Initialization" | "Init" | "Restore"));
        if t.function.is_empty() {
            t.function = f.name.clone();
        }
    }
    t.lambda_overhead_ms = match (t.lambda_ms, t.function_ms) {
        (Some(_), Some(_)) => diff(t.lambda_ms, t.function_ms),
        _ => diff(t.integration_ms, t.function_ms),
    };
    Ok(t)
}

/// `https://host/dev/cart/7?x=1` → (`host`, `/dev/cart/7`).
fn host_and_path(url: &str) -> Option<(String, String)> {
    let u = url::Url::parse(url).ok()?;
    let path = percent_decode(u.path());
    Some((u.host_str().unwrap_or("").to_string(), path))
}

fn percent_decode(p: &str) -> String {
    percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()
}

/// REST API URLs on the execute-api host carry the stage first: the route does not.
fn strip_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    if stage.is_empty() {
        return path;
    }
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The root trace id of an `X-Amzn-Trace-Id` header value
/// (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=…;Sampled=1`), or of a
/// bare trace id; `None` when it holds none of the X-Ray shape
/// (`1-` + 8 hex digits + `-` + 24 hex digits).
pub fn root_trace_id(header: &str) -> Option<&str> {
    let id = header
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix("Root="))
        .or_else(|| Some(header.trim()).filter(|h| !h.contains('=')))?;
    let b = id.as_bytes();
    let hex = |s: &[u8]| s.iter().all(u8::is_ascii_hexdigit);
    (b.len() == 35 && b.starts_with(b"1-") && b[10] == b'-' && hex(&b[2..10]) && hex(&b[11..])).then_some(id)
}

#[cfg(test)]
mod tests;
