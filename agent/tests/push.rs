//! Push endpoints end to end, in process: a real HTTP server, a real client,
//! a real store. Firehose deliveries (CloudWatch Logs subscription records,
//! gzip, access key), redeliveries across a restart, limits and bad bodies,
//! Lambda Telemetry API batches.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use slo_agent::clock::SystemClock;
use slo_agent::config;

mod common;
use common::free_port;

const SPECS: &str = r#"
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: fn-errors}
spec:
  service: pay
  objective: 99
  window: 7d
  indicator:
    source: lambda
    good: {status: "< 500"}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: edge-errors}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator:
    source: cloudfront-realtime
    good: {status: "< 500"}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: traced}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator:
    source: otlp
    good: {status: "< 500"}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: api-errors}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator:
    source: apigateway
    good: {status: "< 500"}
"#;

const KEY: &str = "fh-test-key-0123456789";

#[path = "../src/decode/otlp/test_encoder.rs"]
#[allow(dead_code)]
mod test_encoder;

#[allow(unsafe_code)] // set_var in a test; SAFETY below
fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    // SAFETY: every test sets the same value; nothing reads the environment concurrently in a way that matters.
    unsafe { std::env::set_var("SLO_AGENT_TEST_OTLP_TOKEN", "otlp-token-0123456789") };
    std::fs::write(dir.join("specs.yaml"), SPECS).unwrap();
    std::fs::write(dir.join("fh.key"), format!("{KEY}\n")).unwrap();
    let cfg = format!(
        r#"specs: [specs.yaml]
state: state.redb
listen: 127.0.0.1:{port}
tick: 100ms
poll_interval: 50ms
sources:
  - name: logs
    type: firehose
    token_file: fh.key
    max_body_bytes: 65536
    max_decoded_bytes: 1048576
    log_groups:
      - {{log_group: "/aws/lambda/*", format: lambda, service: pay}}
      - {{log_group: "/aws/apigateway/*", format: apigateway, service: shop}}
  - name: telemetry
    type: lambda-telemetry
    service: pay
  - name: traces
    type: otlp
    token_env: SLO_AGENT_TEST_OTLP_TOKEN
    service: shop
  - name: realtime
    type: firehose
    records: cloudfront-realtime
    fields: [timestamp, c-ip, sc-status, cs-method, cs-host, cs-uri-stem, time-taken, x-edge-location, x-edge-result-type]
    service: shop
"#
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

struct Running {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    base: String,
}

impl Running {
    fn start(config_path: &Path, port: u16) -> Running {
        let cfg = config::load(config_path).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(slo_agent::runtime::run(cfg, Arc::new(SystemClock), async move {
            let _ = stopped.await;
        }));
        let base = format!("http://127.0.0.1:{port}");
        let r = Running { rt, stop: Some(stop), task: Some(task), base };
        // Wait until it answers.
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let ok = r.rt.block_on(async { client.get(format!("{}/readyz", r.base)).send().await.is_ok() });
            if ok {
                return r;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the agent did not start");
    }

    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        self.rt.block_on(task).unwrap().unwrap();
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let mut req = reqwest::Client::new().post(format!("{}{path}", self.base)).body(body);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
        })
    }

    /// An SLO's event totals once the evaluator has caught up.
    fn totals(&self, slo: &str) -> (u64, u64) {
        std::thread::sleep(Duration::from_millis(300));
        self.rt.block_on(async {
            let v: serde_json::Value =
                reqwest::get(format!("{}/api/v1/slos/{slo}", self.base)).await.unwrap().json().await.unwrap();
            (v["events"]["total"].as_u64().unwrap(), v["events"]["good"].as_u64().unwrap())
        })
    }

    fn metrics(&self) -> String {
        self.rt.block_on(async { reqwest::get(format!("{}/metrics", self.base)).await.unwrap().text().await.unwrap() })
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    SystemClock.now_ms()
}

/// A CloudWatch Logs subscription record (gzip JSON) holding `messages`.
fn subscription_record(log_group: &str, messages: &[String]) -> Vec<u8> {
    let t = now_ms() - 60_000;
    let events: Vec<serde_json::Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": format!("e{i}"), "timestamp": t + i as i64, "message": m}))
        .collect();
    let msg = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": log_group,
        "logStream": "s", "subscriptionFilters": ["slo"], "logEvents": events,
    });
    gzip(msg.to_string().as_bytes())
}

fn firehose_body(request_id: &str, records: &[Vec<u8>]) -> Vec<u8> {
    let recs: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(r)}))
        .collect();
    serde_json::json!({"requestId": request_id, "timestamp": now_ms(), "records": recs}).to_string().into_bytes()
}

fn report(id: usize, status: Option<&str>) -> String {
    let mut s = format!(
        "REPORT RequestId: 00000000-0000-0000-0000-{id:012}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t"
    );
    if let Some(st) = status {
        s.push_str(&format!("Status: {st}\t"));
    }
    s
}

fn api_line(i: usize, status: u16) -> String {
    serde_json::json!({
        "requestId": format!("r{i}"), "requestTimeEpoch": now_ms() - 30_000, "httpMethod": "GET",
        "resourcePath": "/cart/{id}", "status": status.to_string(), "responseLatency": "20",
    })
    .to_string()
}

#[test]
fn firehose_deliveries_count_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let agent = Running::start(&cfg, port);

    let lambda: Vec<String> = (0..10).map(|i| report(i, if i < 2 { Some("error") } else { None })).collect();
    let api: Vec<String> = (0..5).map(|i| api_line(i, if i == 0 { 502 } else { 200 })).collect();
    let body = firehose_body(
        "req-1",
        &[subscription_record("/aws/lambda/pay", &lambda), subscription_record("/aws/apigateway/shop", &api)],
    );
    let headers = [("x-amz-firehose-request-id", "req-1"), ("x-amz-firehose-access-key", KEY)];

    // A wrong key: 401 with Firehose's response shape; nothing counted.
    let (st, v) = agent.post(
        "/ingest/firehose/logs",
        &[("x-amz-firehose-request-id", "req-1"), ("x-amz-firehose-access-key", "fh-test-key-0123456788")],
        body.clone(),
    );
    assert_eq!(st, 401, "{v}");
    assert_eq!(v["requestId"], "req-1");
    assert_eq!(v["errorMessage"], "wrong X-Amz-Firehose-Access-Key");
    assert!(v["timestamp"].as_i64().unwrap() > 0);
    let (st, v) = agent.post("/ingest/firehose/logs", &[("x-amz-firehose-request-id", "req-1")], body.clone());
    assert_eq!((st, v["errorMessage"].as_str().unwrap()), (401, "missing X-Amz-Firehose-Access-Key"));

    // The delivery, gzip-compressed as Firehose may send it.
    let mut gz_headers = headers.to_vec();
    gz_headers.push(("content-encoding", "gzip"));
    let (st, v) = agent.post("/ingest/firehose/logs", &gz_headers, gzip(&body));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["requestId"], "req-1");
    assert!(v.get("errorMessage").is_none());
    assert_eq!(agent.totals("fn-errors"), (10, 8));
    assert_eq!(agent.totals("api-errors"), (5, 4));

    // Firehose retries with the same id: acknowledged, not counted again.
    let (st, _) = agent.post("/ingest/firehose/logs", &headers, body.clone());
    assert_eq!(st, 200);
    assert_eq!(agent.totals("fn-errors"), (10, 8));
    let m = agent.metrics();
    assert!(m.contains(r#"slo_agent_push_requests_total{source="logs",kind="firehose",result="counted"} 1"#), "{m}");
    assert!(m.contains(r#"slo_agent_push_requests_total{source="logs",kind="firehose",result="duplicate"} 1"#), "{m}");
    assert!(
        m.contains(r#"slo_agent_push_requests_total{source="logs",kind="firehose",result="unauthorized"} 2"#),
        "{m}"
    );
    agent.stop();

    // After a restart the id is still remembered, and the counts are back.
    let agent = Running::start(&cfg, port);
    let (st, _) = agent.post("/ingest/firehose/logs", &headers, body.clone());
    assert_eq!(st, 200);
    assert_eq!(agent.totals("fn-errors"), (10, 8));
    // A new id counts.
    let body2 = firehose_body("req-2", &[subscription_record("/aws/lambda/pay", &lambda[..3])]);
    let (st, _) = agent.post(
        "/ingest/firehose/logs",
        &[("x-amz-firehose-request-id", "req-2"), ("x-amz-firehose-access-key", KEY)],
        body2,
    );
    assert_eq!(st, 200);
    assert_eq!(agent.totals("fn-errors"), (13, 9));
    agent.stop();
}

#[test]
fn bad_deliveries_get_a_clear_4xx_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let agent = Running::start(&cfg, port);
    let auth = |id: &'static str| vec![("x-amz-firehose-request-id", id), ("x-amz-firehose-access-key", KEY)];

    let (st, v) = agent.post("/ingest/firehose/logs", &auth("a"), b"{not json".to_vec());
    assert_eq!(st, 400);
    assert!(v["errorMessage"].as_str().unwrap().contains("not a Firehose delivery request"), "{v}");

    let (st, v) = agent.post("/ingest/firehose/logs", &auth("b"), vec![b' '; 70_000]);
    assert_eq!(st, 413, "{v}");
    assert!(v["errorMessage"].as_str().unwrap().contains("larger than 65536 bytes"), "{v}");

    // A gzip bomb: small on the wire, too big once inflated.
    let bomb = gzip(&vec![b'{'; 4 << 20]);
    assert!(bomb.len() < 65536);
    let mut h = auth("c");
    h.push(("content-encoding", "gzip"));
    let (st, v) = agent.post("/ingest/firehose/logs", &h, bomb);
    assert_eq!(st, 413, "{v}");
    assert!(v["errorMessage"].as_str().unwrap().contains("decompresses to more than"), "{v}");

    let mut h = auth("d");
    h.push(("content-encoding", "br"));
    let (st, _) = agent.post("/ingest/firehose/logs", &h, b"{}".to_vec());
    assert_eq!(st, 415);

    let (st, v) = agent.post("/ingest/firehose/nope", &auth("e"), b"{}".to_vec());
    assert_eq!(st, 404);
    assert!(v["errorMessage"].as_str().unwrap().contains("no firehose source named \"nope\""), "{v}");

    // Records that are not subscription payloads are accepted (retrying
    // would not help) and counted as rejects, with nothing else lost.
    let lambda = vec![report(1, None)];
    let body = firehose_body("f", &[b"garbage".to_vec(), subscription_record("/aws/lambda/x", &lambda)]);
    let (st, _) = agent.post("/ingest/firehose/logs", &auth("f"), body);
    assert_eq!(st, 200);
    assert_eq!(agent.totals("fn-errors"), (1, 1));

    let m = agent.metrics();
    for (result, n) in [("bad_body", 1), ("too_large", 2), ("bad_encoding", 1), ("counted", 1)] {
        let want = format!(r#"slo_agent_push_requests_total{{source="logs",kind="firehose",result="{result}"}} {n}"#);
        assert!(m.contains(&want), "missing {want} in\n{m}");
    }
    assert!(
        m.contains(r#"slo_agent_rejected_lines_total{source="logs",kind="firehose",reason="bad_encoding"} 1"#),
        "{m}"
    );
    agent.stop();
}

#[test]
fn lambda_telemetry_batches_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let agent = Running::start(&cfg, port);
    let t = jiff::Timestamp::from_millisecond(now_ms() - 10_000).unwrap().to_string();
    let batch = serde_json::json!([
        {"time": t, "type": "platform.start", "record": {"requestId": "a", "version": "$LATEST"}},
        {"time": t, "type": "platform.report", "record": {"requestId": "a", "status": "success",
            "metrics": {"durationMs": 20.5, "billedDurationMs": 21, "memorySizeMB": 128, "maxMemoryUsedMB": 70}}},
        {"time": t, "type": "platform.report", "record": {"requestId": "b", "status": "timeout",
            "metrics": {"durationMs": 3000.0, "billedDurationMs": 3000, "memorySizeMB": 128, "maxMemoryUsedMB": 70}}},
        {"time": t, "type": "function", "record": "hello"}
    ]);
    let (st, v) = agent.post("/ingest/lambda-telemetry/telemetry", &[], batch.to_string().into_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["events"], 2);
    assert_eq!(agent.totals("fn-errors"), (2, 1));
    let (st, v) = agent.post("/ingest/lambda-telemetry/telemetry", &[], b"{\"not\": \"an array\"}".to_vec());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rejected"], 1);
    agent.stop();
}

#[test]
fn push_config_mistakes_are_positioned() {
    let dir = tempfile::tempdir().unwrap();
    let text = "specs: [s]\nstate: s\nsources:\n  - name: a\n    type: firehose\n    token_file: missing.key\n    records: cloudfront-realtime\n  - name: b\n    type: otlp\n    log_groups: []\n";
    let errs: Vec<String> =
        config::parse("agent.yaml", text, dir.path()).unwrap_err().iter().map(|d| d.to_string()).collect();
    assert!(errs.iter().any(|e| e.starts_with("agent.yaml:6:17: cannot read")), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.starts_with("agent.yaml:7:14: `records: cloudfront-realtime` needs `fields`")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.starts_with("agent.yaml:10:5: unknown field `log_groups`")), "{errs:?}");
}

#[test]
fn firehose_records_of_cloudfront_realtime_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let agent = Running::start(&cfg, port);
    let t = (now_ms() - 20_000) as f64 / 1000.0;
    // Kinesis → Firehose: one real-time log line per record (newline-ended),
    // and a record with two lines; one line has a bad status. The fields
    // come in CloudFront's order (`x-edge-location` before `time-taken`),
    // not in the order the configuration lists them.
    let line = |status: &str| format!("{t:.3}\t192.0.2.1\t{status}\tGET\tshop.example.com\t/p\tFRA56-P3\t0.012\tHit\n");
    let records = vec![
        line("200").into_bytes(),
        line("503").into_bytes(),
        format!("{}{}", line("200"), line("2x0")).into_bytes(),
    ];
    let (st, v) = agent.post(
        "/ingest/firehose/realtime",
        &[("x-amz-firehose-request-id", "rt-1")],
        firehose_body("rt-1", &records),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(agent.totals("edge-errors"), (3, 2));
    let m = agent.metrics();
    assert!(
        m.contains(r#"slo_agent_rejected_lines_total{source="realtime",kind="firehose",reason="bad_status"} 1"#),
        "{m}"
    );
    agent.stop();
}

/// An OTLP/JSON request with `n` server spans ending now minus a minute
/// (status from `statuses`), one client span, and one span ending before it starts.
fn otlp_request(statuses: &[u16]) -> serde_json::Value {
    let end = (now_ms() - 60_000) as u128 * 1_000_000;
    let mut spans: Vec<serde_json::Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, st)| {
            serde_json::json!({
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("{i:016x}"), "name": "GET /cart",
                "kind": 2, "startTimeUnixNano": (end - 20_000_000).to_string(), "endTimeUnixNano": end.to_string(),
                "attributes": [
                    {"key": "http.request.method", "value": {"stringValue": "GET"}},
                    {"key": "http.route", "value": {"stringValue": "/cart"}},
                    {"key": "http.response.status_code", "value": {"intValue": st.to_string()}},
                ],
            })
        })
        .collect();
    spans.push(
        serde_json::json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "00000000000000ff", "name": "db",
        "kind": 3, "startTimeUnixNano": (end - 5).to_string(), "endTimeUnixNano": end.to_string()}),
    );
    spans.push(serde_json::json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "00000000000000fe", "name": "GET /x",
        "kind": 2, "startTimeUnixNano": (end + 5).to_string(), "endTimeUnixNano": end.to_string()}));
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
    }]})
}

#[test]
fn otlp_http_traces_in_protobuf_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let agent = Running::start(&cfg, port);
    let bearer = [("authorization", "Bearer otlp-token-0123456789"), ("content-type", "application/json")];

    // JSON, on the default path: 3 good server spans of 4, one span rejected.
    let req = otlp_request(&[200, 200, 503, 201]);
    let (st, v) = agent.post("/v1/traces", &bearer, req.to_string().into_bytes());
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    assert_eq!(agent.totals("traced"), (4, 3));

    // Protobuf, gzip, on the per-source path: an empty answer means all accepted.
    let pb = test_encoder::otlp_json_to_protobuf(&otlp_request(&[200, 500]));
    let (st, v) = agent.post(
        "/ingest/otlp/traces/v1/traces",
        &[
            ("authorization", "Bearer otlp-token-0123456789"),
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        gzip(&pb),
    );
    assert_eq!(st, 200, "{v}");
    // partial_success { rejected_spans: 1, error_message: … } as protobuf bytes.
    let raw = match &v {
        serde_json::Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    assert_eq!(&raw[..4], &[0x0a, raw[1], 0x08, 0x01], "{raw:?}");
    assert_eq!(agent.totals("traced"), (6, 4));

    // A body that is not a request: 400 with a google.rpc.Status saying where; nothing counted.
    let (st, v) = agent.post("/v1/traces", &bearer, b"{\"resourceSpans\": 7}".to_vec());
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["code"], 3);
    assert!(v["message"].as_str().unwrap().contains("line 1, column"), "{v}");
    let mut truncated = pb.clone();
    truncated.truncate(pb.len() / 2);
    let (st, _) = agent.post(
        "/v1/traces",
        &[("authorization", "Bearer otlp-token-0123456789"), ("content-type", "application/x-protobuf")],
        truncated,
    );
    assert_eq!(st, 400);
    // Wrong token, wrong content type.
    let (st, v) = agent.post(
        "/v1/traces",
        &[("authorization", "Bearer nope"), ("content-type", "application/json")],
        b"{}".to_vec(),
    );
    assert_eq!((st, v["code"].as_u64()), (401, Some(16)));
    let (st, _) = agent.post(
        "/v1/traces",
        &[("authorization", "Bearer otlp-token-0123456789"), ("content-type", "text/plain")],
        b"{}".to_vec(),
    );
    assert_eq!(st, 415);
    assert_eq!(agent.totals("traced"), (6, 4));
    agent.stop();
}
