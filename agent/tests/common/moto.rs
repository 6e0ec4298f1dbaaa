//! moto, the AWS API emulator the AWS tests run against, and what the
//! tests put between the SDK and moto:
//!
//! - [`Moto`]: a `moto_server` of the test's own on 127.0.0.1, stopped on
//!   drop (tests/run installs it from PyPI; without it the tests fail when
//!   `CI=true` and print a loud skip message otherwise);
//! - [`CborProxy`]: moto does not speak RPC-v2 CBOR, which current
//!   aws-sdk-cloudwatch releases use; it translates CloudWatch calls to the
//!   CloudWatch JSON protocol that moto does speak (docs/architecture.md);
//! - [`XRayProxy`]: mends what moto answers differently from the real X-Ray
//!   API (see there);
//! - [`Keys`] and [`enforce_iam`]: moto's IAM enforcement. A proxy changes
//!   the request it forwards, so the caller's SigV4 signature no longer
//!   matches it; given the caller's secret, a proxy signs what it forwards
//!   again, as the same access key, so moto authenticates and authorises
//!   the caller it would have seen.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use slo_agent::source::aws::config::{AwsConnection, StaticCredentials};

use super::{free_port, serve_app};

// ------------------------------------------------------------- moto

pub fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200")
}

/// A moto server of this test's own, stopped on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    /// `None` (after a loud message) when moto is not installed, outside CI.
    pub fn start() -> Option<Moto> {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = match Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!(
                        "CI=true and `{bin}` cannot be started ({e}): tests/run installs it with pip (moto[server])"
                    );
                }
                eprintln!(
                    "\n{0}\nSKIPPED: `{bin}` cannot be started ({e}).\nInstall it with `pip install 'moto[server]'` (tests/run does); in CI this is a failure.\n{0}\n",
                    "*".repeat(72)
                );
                return None;
            }
        };
        let mut moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !http_ok(port, "/moto-api/") {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server did not answer within 90 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn connection(endpoint: &str) -> AwsConnection {
    AwsConnection {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
        profile: None,
        credentials: Some(StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        }),
        timeout: Duration::from_secs(10),
    }
}

/// SDK configuration for seeding (as the `testing` key moto accepts while
/// it does not authenticate), and a runtime to run the calls on.
pub fn seeder(endpoint: &str) -> (tokio::runtime::Runtime, SdkConfig) {
    seeder_as(endpoint, "testing", "testing")
}

/// SDK configuration that calls as the access key `id`.
pub fn seeder_as(endpoint: &str, id: &str, secret: &str) -> (tokio::runtime::Runtime, SdkConfig) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let creds = aws_sdk_s3::config::Credentials::new(id, secret, None, None, "test");
    let conf = rt.block_on(
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load(),
    );
    (rt, conf)
}

// ------------------------------------------------------- RPC-v2 CBOR proxy

/// Translates CloudWatch's RPC-v2 CBOR (what the SDK speaks) to the
/// CloudWatch JSON protocol (what moto speaks) and back. Generic over
/// operations; the only shape knowledge is which response members are
/// timestamps (CBOR tag 1) and which numbers are doubles.
pub struct CborProxy {
    pub url: String,
    /// Answer this many of the next requests with a ThrottlingException.
    pub throttle: Arc<AtomicU32>,
    _rt: tokio::runtime::Runtime,
}

impl CborProxy {
    pub fn start(moto_url: &str) -> CborProxy {
        CborProxy::signing(moto_url, None)
    }

    /// With `keys`, requests signed by one of them are signed again for
    /// what moto receives (see [`Keys`]).
    pub fn signing(moto_url: &str, keys: Option<Keys>) -> CborProxy {
        let upstream = moto_url.to_string();
        let throttle = Arc::new(AtomicU32::new(0));
        let throttle_in = throttle.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let client = client.clone();
            let upstream = upstream.clone();
            let keys = keys.clone();
            let throttled = throttle_in.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            async move {
                if throttled {
                    return cbor_response(
                        400,
                        serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
                    );
                }
                proxy_one(client, &upstream, req, keys).await
            }
        });
        let (port, rt) = serve_app(app);
        CborProxy { url: format!("http://127.0.0.1:{port}"), throttle, _rt: rt }
    }
}

async fn proxy_one(
    client: reqwest::Client,
    upstream: &str,
    req: axum::extract::Request,
    keys: Option<Keys>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path().to_string();
    // /service/GraniteServiceVersion20100801/operation/GetMetricData
    let parts: Vec<&str> = path.split('/').collect();
    let (service, op) = match parts.as_slice() {
        ["", "service", s, "operation", o] => (s.to_string(), o.to_string()),
        _ => return (axum::http::StatusCode::NOT_FOUND, format!("not an RPC-v2 path: {path}")).into_response(),
    };
    let auth = req.headers().get("authorization").cloned();
    let gzipped = req.headers().get("content-encoding").is_some_and(|v| v.as_bytes() == b"gzip");
    let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.unwrap();
    let raw = if gzipped {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        body.to_vec()
    };
    let input = if raw.is_empty() {
        serde_json::json!({})
    } else {
        cbor_to_json(ciborium::from_reader::<ciborium::Value, _>(&raw[..]).unwrap())
    };
    let body = input.to_string();
    let target = format!("{service}.{op}");
    let headers = [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", target.as_str())];
    let mut fwd = client.post(upstream).body(body.clone());
    for (k, v) in headers {
        fwd = fwd.header(k, v);
    }
    match resign(keys.as_ref(), auth.as_ref(), upstream, "/", &headers, body.as_bytes()) {
        Some(signed) => {
            for (k, v) in signed {
                fwd = fwd.header(k, v);
            }
        }
        None => {
            if let Some(a) = auth {
                fwd = fwd.header("authorization", a.as_bytes());
            }
        }
    }
    let resp = fwd.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.bytes().await.unwrap();
    cbor_response(status, json_or_xml_error(&text))
}

/// An answer's JSON; moto answers IAM refusals in XML whatever the
/// protocol: those become the JSON protocols' error shape, with moto's code
/// and message (`{}` for anything else).
fn json_or_xml_error(body: &[u8]) -> serde_json::Value {
    if let Ok(v) = serde_json::from_slice(body) {
        return v;
    }
    let text = String::from_utf8_lossy(body);
    let between = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        Some(text[start..start + text[start..].find(&format!("</{tag}>"))?].to_string())
    };
    match between("Code") {
        Some(code) => serde_json::json!({"__type": code, "message": between("Message").unwrap_or_default()}),
        None => serde_json::json!({}),
    }
}

pub fn cbor_response(status: u16, body: serde_json::Value) -> axum::response::Response {
    let mut out = Vec::new();
    ciborium::into_writer(&json_to_cbor(body, ""), &mut out).unwrap();
    axum::http::Response::builder()
        .status(status)
        .header("content-type", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .body(axum::body::Body::from(out))
        .unwrap()
}

fn cbor_to_json(v: ciborium::Value) -> serde_json::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match v {
        C::Null => J::Null,
        C::Bool(b) => J::Bool(b),
        C::Integer(i) => J::from(i128::from(i) as i64),
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(s) => J::String(s),
        C::Bytes(b) => {
            use base64::Engine as _;
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // Tag 1 (epoch seconds) is a plain number in the JSON protocol.
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(a) => J::Array(a.into_iter().map(cbor_to_json).collect()),
        C::Map(m) => J::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, cbor_to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        other => panic!("unexpected CBOR value {other:?}"),
    }
}

/// `key` is the member the value belongs to (list items inherit it).
fn json_to_cbor(v: serde_json::Value, key: &str) -> ciborium::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    const TIMESTAMPS: [&str; 7] = [
        "Timestamps",
        "Timestamp",
        "StartTime",
        "EndTime",
        "StateUpdatedTimestamp",
        "StateTransitionedTimestamp",
        "AlarmConfigurationUpdatedTimestamp",
    ];
    const DOUBLES: [&str; 4] = ["Values", "Value", "Sum", "Average"];
    match v {
        J::Null => C::Null,
        J::Bool(b) => C::Bool(b),
        J::Number(n) if TIMESTAMPS.contains(&key) => C::Tag(1, Box::new(C::Float(n.as_f64().unwrap()))),
        J::Number(n) if DOUBLES.contains(&key) || n.is_f64() => C::Float(n.as_f64().unwrap()),
        J::Number(n) => C::Integer(n.as_i64().unwrap().into()),
        J::String(s) => C::Text(s),
        J::Array(a) => C::Array(a.into_iter().map(|x| json_to_cbor(x, key)).collect()),
        J::Object(m) => C::Map(m.into_iter().map(|(k, v)| (C::Text(k.clone()), json_to_cbor(v, &k))).collect()),
    }
}

// ------------------------------------------------------------ X-Ray proxy

/// What the X-Ray proxy saw the SDK ask.
#[derive(Debug, Default)]
pub struct XRaySeen {
    /// Trace ids per BatchGetTraces call.
    pub batches: Vec<usize>,
    /// Filter expressions of GetTraceSummaries calls.
    pub filters: Vec<String>,
    pub summary_calls: usize,
    /// Answer the BatchGetTraces call with this number (counting from 1) with a ThrottlingException.
    pub throttle_batch: usize,
}

/// Between the SDK and moto: mends what moto answers that the real X-Ray
/// API would not, and adds what moto leaves out, so that the product is
/// tested against the API's real shapes:
///
/// - moto answers `"Users": {}` in trace summaries where the API has a list
///   (the SDK refuses the answer): rewritten to `[]` unless `fix_users` is off;
/// - moto fails any GetTraceSummaries with a `FilterExpression` (not
///   implemented, HTTP 500): the proxy records the expression and drops it;
/// - moto never pages: the proxy pages GetTraceSummaries by `page_size`
///   summaries with its own `NextToken`s;
/// - moto does not limit BatchGetTraces to 5 ids: the proxy records each
///   call's count and refuses more than 5, as the API does.
pub struct XRayProxy {
    pub url: String,
    pub seen: Arc<std::sync::Mutex<XRaySeen>>,
    _rt: tokio::runtime::Runtime,
}

impl XRayProxy {
    pub fn start(moto_url: &str, fix_users: bool, page_size: usize) -> XRayProxy {
        XRayProxy::signing(moto_url, fix_users, page_size, None)
    }

    /// With `keys`, requests signed by one of them are signed again for
    /// what moto receives (see [`Keys`]).
    pub fn signing(moto_url: &str, fix_users: bool, page_size: usize, keys: Option<Keys>) -> XRayProxy {
        let upstream = moto_url.to_string();
        let seen = Arc::new(std::sync::Mutex::new(XRaySeen::default()));
        let seen_in = seen.clone();
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (client, upstream, seen, keys) = (client.clone(), upstream.clone(), seen_in.clone(), keys.clone());
            async move { xray_one(client, &upstream, req, seen, fix_users, page_size, keys).await }
        });
        let (port, rt) = serve_app(app);
        XRayProxy { url: format!("http://127.0.0.1:{port}"), seen, _rt: rt }
    }
}

async fn xray_one(
    client: reqwest::Client,
    upstream: &str,
    req: axum::extract::Request,
    seen: Arc<std::sync::Mutex<XRaySeen>>,
    fix_users: bool,
    page_size: usize,
    keys: Option<Keys>,
) -> axum::response::Response {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.unwrap();
    let mut input: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| serde_json::json!({}));
    let mut offset = 0usize;
    if path == "/TraceSummaries" {
        let mut s = seen.lock().unwrap();
        s.summary_calls += 1;
        if let Some(f) = input.as_object_mut().and_then(|o| o.remove("FilterExpression")) {
            s.filters.push(f.as_str().unwrap_or_default().to_string());
        }
        if let Some(t) = input.as_object_mut().and_then(|o| o.remove("NextToken")) {
            offset = t.as_str().and_then(|t| t.strip_prefix("page-")).and_then(|n| n.parse().ok()).unwrap();
        }
    }
    if path == "/Traces" {
        let n = input["TraceIds"].as_array().map_or(0, Vec::len);
        let mut s = seen.lock().unwrap();
        s.batches.push(n);
        if s.batches.len() == s.throttle_batch {
            let refusal = serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
            return xray_response(400, refusal);
        }
        if n > 5 {
            let refusal = serde_json::json!({"__type": "InvalidRequestException", "message": "at most 5 trace ids"});
            return xray_response(400, refusal);
        }
    }
    let body = input.to_string();
    let mut fwd = client.post(format!("{upstream}{path}")).body(body.clone());
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let signed = resign(
        keys.as_ref(),
        headers.get("authorization"),
        upstream,
        &path,
        &[("content-type", content_type)],
        body.as_bytes(),
    );
    match signed {
        Some(signed) => {
            fwd = fwd.header("content-type", content_type);
            for (k, v) in signed {
                fwd = fwd.header(k, v);
            }
        }
        None => {
            for name in ["authorization", "content-type", "x-amz-date", "x-amz-target", "x-amz-security-token"] {
                if let Some(v) = headers.get(name) {
                    fwd = fwd.header(name, v.as_bytes());
                }
            }
        }
    }
    let resp = fwd.send().await.unwrap();
    let status = resp.status().as_u16();
    let mut output = json_or_xml_error(&resp.bytes().await.unwrap());
    if path == "/TraceSummaries"
        && status == 200
        && let Some(all) = output.get_mut("TraceSummaries").and_then(|v| v.as_array_mut())
    {
        let total = all.len();
        let page: Vec<serde_json::Value> = all.drain(..).skip(offset).take(page_size).collect();
        *all = page;
        if offset + page_size < total {
            output["NextToken"] = serde_json::json!(format!("page-{}", offset + page_size));
        }
    }
    if fix_users {
        users_as_lists(&mut output);
    }
    xray_response(status, output)
}

/// Every `"Users": {}` in an answer becomes `"Users": []`.
fn users_as_lists(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "Users" && v.as_object().is_some_and(|o| o.is_empty()) {
                    *v = serde_json::json!([]);
                } else {
                    users_as_lists(v);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(users_as_lists),
        _ => {}
    }
}

fn xray_response(status: u16, body: serde_json::Value) -> axum::response::Response {
    let mut b = axum::http::Response::builder().status(status).header("content-type", "application/json");
    if let Some(t) = body.get("__type").and_then(|t| t.as_str()) {
        b = b.header("x-amzn-errortype", t);
    }
    b.body(axum::body::Body::from(body.to_string())).unwrap()
}

/// The documents of one request's trace as API Gateway and Lambda write
/// them: the stage segment with its Lambda call, the Lambda service segment
/// and the function segment (Initialization when `init_ms`, Invocation,
/// Overhead). Returns the trace id, the documents, and the figures the
/// decomposition must find: (gateway, lambda overhead, invocation, init).
pub fn request_trace(i: u32, start_ms: i64, init_ms: Option<i64>) -> (String, Vec<String>, [f64; 4]) {
    let id = format!("1-{:08x}-{:024x}", (start_ms / 1000) as u32, 0xabc000 + i);
    let s = |ms: i64| (start_ms + ms) as f64 / 1000.0;
    let (gateway, overhead, invocation, tail) = (10 + i as i64, 6, 40 + 3 * i as i64, 4);
    let init = init_ms.unwrap_or(0);
    let function_len = init + invocation + tail;
    let lambda_len = function_len + overhead;
    let call_len = lambda_len + 2;
    let (call_at, lambda_at) = (gateway / 2, gateway / 2 + 1);
    let function_at = lambda_at + overhead / 2;
    let mut subs = Vec::new();
    if init_ms.is_some() {
        subs.push(serde_json::json!({"id": format!("{:016x}", 0x100 + i), "name": "Initialization",
            "start_time": s(function_at), "end_time": s(function_at + init)}));
    }
    subs.push(serde_json::json!({"id": format!("{:016x}", 0x200 + i), "name": "Invocation",
        "start_time": s(function_at + init), "end_time": s(function_at + init + invocation)}));
    subs.push(serde_json::json!({"id": format!("{:016x}", 0x300 + i), "name": "Overhead",
        "start_time": s(function_at + init + invocation), "end_time": s(function_at + function_len)}));
    let call_id = format!("{:016x}", 0x400 + i);
    let lambda_id = format!("{:016x}", 0x500 + i);
    let docs = vec![
        serde_json::json!({
            "id": format!("{:016x}", 0x600 + i), "name": "shop-api/prod", "trace_id": id,
            "start_time": s(0), "end_time": s(call_len + gateway), "origin": "AWS::ApiGateway::Stage",
            "http": {"request": {"url": format!("https://abc123.execute-api.us-east-1.amazonaws.com/prod/cart/{i}"), "method": "GET"},
                     "response": {"status": 200}},
            "aws": {"api_gateway": {"rest_api_id": "abc123", "stage": "prod", "request_id": format!("gw-{i}")}},
            "subsegments": [{"id": call_id, "name": "Lambda", "namespace": "aws", "start_time": s(call_at),
                "end_time": s(call_at + call_len), "aws": {"function_name": "checkout", "operation": "Invoke"}}]
        }),
        serde_json::json!({
            "id": lambda_id, "name": "checkout", "trace_id": id, "parent_id": call_id, "origin": "AWS::Lambda",
            "start_time": s(lambda_at), "end_time": s(lambda_at + lambda_len), "aws": {"request_id": format!("fn-{i}")}
        }),
        serde_json::json!({
            "id": format!("{:016x}", 0x700 + i), "name": "checkout", "trace_id": id, "parent_id": lambda_id,
            "origin": "AWS::Lambda::Function", "start_time": s(function_at), "end_time": s(function_at + function_len),
            "subsegments": subs
        }),
    ];
    let want = [gateway as f64, overhead as f64, invocation as f64, init as f64];
    (id, docs.into_iter().map(|d| d.to_string()).collect(), want)
}

/// PutTraceSegments, 20 documents a call.
pub fn put_segments(endpoint: &str, docs: Vec<String>) {
    let (rt, conf) = seeder(endpoint);
    let client = aws_sdk_xray::Client::new(&conf);
    for chunk in docs.chunks(20) {
        let out = rt.block_on(client.put_trace_segments().set_trace_segment_documents(Some(chunk.to_vec())).send());
        assert!(out.unwrap().unprocessed_trace_segments().is_empty());
    }
}

// ---------------------------------------------------------- IAM and SigV4

/// From now on moto authenticates every request and authorises it against
/// the caller's IAM policies. In server mode this is what the
/// `INITIAL_NO_AUTH_ACTION_COUNT` setting does after that many requests
/// (moto's `set_initial_no_auth_action_count` posts the same to
/// `/moto-api/reset-auth`): seed first, then enforce.
pub fn enforce_iam(moto: &Moto) {
    let port: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200") && out.contains("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"), "{out}");
}

/// The secret access keys the proxies may sign with, by key id.
#[derive(Clone, Default)]
pub struct Keys(Arc<Mutex<BTreeMap<String, String>>>);

impl Keys {
    pub fn add(&self, id: &str, secret: &str) {
        self.0.lock().unwrap().insert(id.to_string(), secret.to_string());
    }

    fn secret(&self, id: &str) -> Option<String> {
        self.0.lock().unwrap().get(id).cloned()
    }
}

/// The headers that sign a proxy's request again as the caller: the key id,
/// region and service of the caller's own `Authorization`, the secret from
/// `keys`. `None` (forward the caller's header as it is) without keys or
/// for a key the test did not give.
fn resign(
    keys: Option<&Keys>,
    auth: Option<&axum::http::HeaderValue>,
    upstream: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Vec<(&'static str, String)>> {
    let auth = auth?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [id, _, region, service, _] = parts.as_slice() else { return None };
    let secret = keys?.secret(id)?;
    let host = upstream.trim_start_matches("http://").trim_end_matches('/');
    let now = slo_agent::clock::Clock::now_ms(&slo_agent::clock::SystemClock);
    let (date, authorization) = sigv4(host, path, headers, body, id, &secret, region, service, now);
    Some(vec![("x-amz-date", date), ("authorization", authorization)])
}

/// AWS Signature Version 4 of a POST without a query string: the
/// `x-amz-date` and `Authorization` headers. `headers` (lower-case names)
/// are signed with `host` and `x-amz-date`.
#[allow(clippy::too_many_arguments)]
pub fn sigv4(
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now_ms: i64,
) -> (String, String) {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mac = |key: &[u8], data: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let t = jiff::Timestamp::from_millisecond(now_ms).unwrap();
    let amz_date = t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let day = &amz_date[..8];
    let mut signed: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_string(), v.trim().to_string())).collect();
    signed.push(("host".into(), host.into()));
    signed.push(("x-amz-date".into(), amz_date.clone()));
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let request = format!("POST\n{path}\n\n{canonical_headers}\n{names}\n{}", hex(&Sha256::digest(body)));
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(request.as_bytes())));
    let mut key = mac(format!("AWS4{secret}").as_bytes(), day);
    for part in [region, service, "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex(&mac(&key, &to_sign));
    (amz_date, format!("AWS4-HMAC-SHA256 Credential={id}/{scope}, SignedHeaders={names}, Signature={signature}"))
}

/// One call of moto's IAM (the Query protocol: a form), as the `testing`
/// key, before [`enforce_iam`]; the answer's XML.
pub fn iam(moto: &Moto, params: &[(&str, &str)]) -> String {
    let mut form: Vec<String> = vec!["Version=2010-05-08".into()];
    for (k, v) in params {
        let v: String = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        form.push(format!("{k}={v}"));
    }
    let body = form.join("&");
    let host = moto.url.trim_start_matches("http://");
    let ct = "application/x-www-form-urlencoded; charset=utf-8";
    let now = slo_agent::clock::Clock::now_ms(&slo_agent::clock::SystemClock);
    let (date, auth) =
        sigv4(host, "/", &[("content-type", ct)], body.as_bytes(), "testing", "testing", "us-east-1", "iam", now);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let resp = rt
        .block_on(
            reqwest::Client::new()
                .post(format!("{}/", moto.url))
                .header("content-type", ct)
                .header("x-amz-date", date)
                .header("authorization", auth)
                .body(body)
                .send(),
        )
        .unwrap();
    let status = resp.status();
    let text = rt.block_on(resp.text()).unwrap();
    assert!(status.is_success(), "IAM {params:?}: {status} {text}");
    text
}

/// The text of the first `<tag>` element of an XML answer.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

/// An IAM user whose only policy is `policy`, and an access key of it:
/// (key id, secret).
pub fn iam_user(moto: &Moto, name: &str, policy: &serde_json::Value) -> (String, String) {
    iam(moto, &[("Action", "CreateUser"), ("UserName", name)]);
    let doc = policy.to_string();
    iam(
        moto,
        &[("Action", "PutUserPolicy"), ("UserName", name), ("PolicyName", "slo-agent"), ("PolicyDocument", &doc)],
    );
    let key = iam(moto, &[("Action", "CreateAccessKey"), ("UserName", name)]);
    (xml_text(&key, "AccessKeyId").to_string(), xml_text(&key, "SecretAccessKey").to_string())
}
