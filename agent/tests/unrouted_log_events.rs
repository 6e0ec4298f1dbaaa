//! CloudWatch Logs events of log groups no route covers, through the built
//! binary: `slo_agent_unrouted_log_events_total{source}` counts every one
//! (zero from the start), and a warning names each new log group once,
//! escaped.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod common;
use common::{bin, free_port, http_get};

const SPEC: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata: {name: fn-errors}
spec:
  service: pay
  objective: 99
  window: 7d
  indicator:
    source: lambda
    good: {status: "< 500"}
"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

/// A subscription record (gzip JSON) of `n` log events of `group`.
fn record(group: &str, n: usize) -> Vec<u8> {
    let t = now_ms() - 60_000;
    let events: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("e{i}"), "timestamp": t + i as i64,
                "message": format!("REPORT RequestId: r{i}\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t")})
        })
        .collect();
    let msg = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group,
        "logStream": "s", "subscriptionFilters": ["slo"], "logEvents": events});
    gzip(msg.to_string().as_bytes())
}

/// POST a Firehose delivery; the answer's status code.
fn deliver(port: u16, request_id: &str, records: &[Vec<u8>]) -> u16 {
    let recs: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(r)}))
        .collect();
    let body = serde_json::json!({"requestId": request_id, "timestamp": now_ms(), "records": recs}).to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /ingest/firehose/logs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nX-Amz-Firehose-Request-Id: {request_id}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn unrouted(metrics: &str) -> Option<String> {
    metrics.lines().find(|l| l.starts_with("slo_agent_unrouted_log_events_total{")).map(str::to_string)
}

#[test]
fn unrouted_log_events_are_counted_and_their_groups_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("specs.yaml"), SPEC).unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\nsources:\n  - name: logs\n    type: firehose\n    service: pay\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("SLO_AGENT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let metrics = loop {
        if let Some(m) = http_get(port, "/metrics") {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Zero before anything arrives, so a dashboard shows "none".
    assert_eq!(unrouted(&metrics).as_deref(), Some(r#"slo_agent_unrouted_log_events_total{source="logs"} 0"#));

    // The default route reads /aws/lambda/*; the other groups are unrouted.
    let hostile = "/ecs/app\u{1b}[2J\nfake log line";
    let st = deliver(port, "req-1", &[record("/aws/lambda/pay", 3), record("/ecs/app", 4), record(hostile, 1)]);
    assert_eq!(st, 200);
    let st = deliver(port, "req-2", &[record("/ecs/app", 2)]);
    assert_eq!(st, 200);
    // A redelivery is not counted again.
    let st = deliver(port, "req-2", &[record("/ecs/app", 2)]);
    assert_eq!(st, 200);

    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(unrouted(&metrics).as_deref(), Some(r#"slo_agent_unrouted_log_events_total{source="logs"} 7"#));
    // The routed group's events are counted (once the next tick evaluates).
    let started = Instant::now();
    loop {
        let slo = http_get(port, "/api/v1/slos/fn-errors").unwrap();
        if slo.contains(r#""total":3"#) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{slo}");
        std::thread::sleep(Duration::from_millis(50));
    }

    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("no route covers")).collect();
    // One warning, for the first delivery, naming both groups once; the
    // second delivery's group was named already.
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("/ecs/app"), "{text}");
    assert!(warnings[0].contains(r"/ecs/app\u{1b}[2J\nfake log line"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("fake log line")), "{text}");
}
