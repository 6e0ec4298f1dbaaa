//! `slo-agent replay --output json`: the report's shape and numbers, on a
//! log whose right answers are known by construction, plus a golden file
//! for the whole document (`UPDATE_GOLDEN=1` rewrites it).

#[path = "../src/testing/golden.rs"]
mod golden;

use std::path::Path;
use std::process::Command;

const SPEC: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata:
  name: checkout-availability
  labels: {team: payments, tier: "1"}
spec:
  service: checkout
  description: Checkout answers without server errors
  objective: 99.9
  window: 28d
  budgeting: occurrences
  indicator:
    source: ndjson
    filter:
      host: shop.example.com
      path: ["/checkout*", "/api/cart/*"]
      method: [GET, POST]
    good:
      status: "< 500"
      latency: "<= 800ms"
  alerting:
    page:   {runbook: "https://runbooks.example.com/checkout"}
    ticket: {runbook: "https://runbooks.example.com/checkout"}
"#;

/// 1000 counted requests over the day before 2026-11-20T12:00Z, two of them
/// 503s at 01:00 (inside 1d and 3d, outside 6h), plus requests the filter
/// leaves out and one malformed line.
fn write_log(path: &Path) {
    let end_ms: i64 = 1_795_176_000_000; // 2026-11-20T12:00:00Z
    let mut out = String::new();
    for i in 0..1000i64 {
        let ts = end_ms - 86_340_000 + i * 86_340;
        let latency = 5 + (i % 100); // 5..=104 ms, uniform
        out.push_str(&format!(
            "{{\"ts\": {ts}, \"service\": \"checkout\", \"host\": \"shop.example.com\", \"path\": \"/checkout/pay\", \"method\": \"POST\", \"status\": 200, \"latency_ms\": {latency}}}\n"
        ));
    }
    for ts in ["2026-11-20T01:00:00Z", "2026-11-20T01:00:30.500Z"] {
        out.push_str(&format!(
            "{{\"ts\": \"{ts}\", \"service\": \"checkout\", \"host\": \"shop.example.com\", \"path\": \"/api/cart/7\", \"method\": \"GET\", \"status\": 503, \"latency_ms\": 20}}\n"
        ));
    }
    // Not counted: another host, another method, another path.
    out.push_str("{\"ts\": 1795166000000, \"host\": \"admin.example.com\", \"path\": \"/checkout\", \"method\": \"GET\", \"status\": 500, \"latency_ms\": 1}\n");
    out.push_str("{\"ts\": 1795166000000, \"host\": \"shop.example.com\", \"path\": \"/checkout\", \"method\": \"DELETE\", \"status\": 500, \"latency_ms\": 1}\n");
    out.push_str("{\"ts\": 1795166000000, \"host\": \"shop.example.com\", \"path\": \"/about\", \"method\": \"GET\", \"status\": 500, \"latency_ms\": 1}\n");
    out.push_str("this is not json\n");
    std::fs::write(path, out).unwrap();
}

fn replay_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let log = dir.join("events.ndjson");
    write_log(&log);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slo-agent"));
    cmd.args(["replay", "--specs"]).arg(&spec).args(["--output", "json"]).args(extra).arg(&log);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn replay_report_has_the_documented_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let v = replay_json(dir.path(), &["--at", "2026-11-20T12:00:00Z"]);
    assert_eq!(v["at"], "2026-11-20T12:00:00Z");
    assert_eq!(v["rejected_lines"], 1);
    assert_eq!(v["rejects"]["bad_json"]["count"], 1);
    let s = &v["slos"][0];
    assert_eq!(s["name"], "checkout-availability");
    assert_eq!(s["service"], "checkout");
    assert_eq!(s["objective"], 0.999);
    assert_eq!(s["window"], "28d");
    assert_eq!(s["events"], serde_json::json!({"total": 1002, "good": 1000, "bad": 2}));
    let sli = s["sli"].as_f64().unwrap();
    assert!((sli - 1000.0 / 1002.0).abs() < 1e-9);
    let consumed = s["error_budget"]["consumed"].as_f64().unwrap();
    assert!((consumed - (2.0 / 1002.0) / 0.001).abs() < 1e-6, "{consumed}");
    let remaining = s["error_budget"]["remaining"].as_f64().unwrap();
    assert!((remaining - (1.0 - consumed)).abs() < 1e-9);
    for w in ["5m", "30m", "1h", "2h", "6h"] {
        assert_eq!(s["burn_rates"][w], 0.0, "window {w}");
    }
    for w in ["1d", "3d"] {
        let b = s["burn_rates"][w].as_f64().unwrap();
        assert!((b - (2.0 / 1002.0) / 0.001).abs() < 1e-6, "window {w}: {b}");
    }
    // Latencies 5..=104 ms uniform (and two of 20 ms): percentiles within HDR's 1 %.
    let p50 = s["latency_ms"]["p50"].as_f64().unwrap();
    let p99 = s["latency_ms"]["p99"].as_f64().unwrap();
    assert!((p50 - 54.0).abs() <= 1.5, "p50 {p50}");
    assert!((p99 - 103.0).abs() <= 1.5, "p99 {p99}");
    let alerts = s["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 4);
    let ticket = alerts.iter().find(|a| a["long_window"] == "1d").unwrap();
    assert_eq!(ticket["severity"], "ticket");
    assert_eq!(ticket["short_window"], "2h");
    assert_eq!(ticket["burn_rate_threshold"], 2.8); // 0.10 × 672 h / 24 h for a 28-day window
    assert_eq!(ticket["firing"], false);
    assert!(alerts.iter().all(|a| a["firing"] == false));
}

#[test]
fn at_leaves_out_later_events_and_defaults_to_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    // As of 01:00:10 only the first 503 and the events before it count.
    let v = replay_json(dir.path(), &["--at", "2026-11-20T01:00:10Z"]);
    let s = &v["slos"][0];
    assert_eq!(s["events"]["bad"], 1);
    assert!(v["events_after_at"].as_u64().unwrap() > 0);
    // Without --at: the newest event (12:00:00 minus 86.34 s steps → 11:58:33.660).
    let v = replay_json(dir.path(), &[]);
    assert_eq!(v["at"], "2026-11-20T11:58:33.660Z");
    assert_eq!(v["slos"][0]["events"]["total"], 1002);
}

#[test]
fn golden_report() {
    let dir = tempfile::tempdir().unwrap();
    let v = replay_json(dir.path(), &["--at", "2026-11-20T12:00:00Z"]);
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    // Sample locations hold the temp dir's path.
    text = text.replace(&dir.path().display().to_string(), "$DIR");
    text.push('\n');
    golden::check_text("tests/golden/replay-checkout.json", &text);
}

#[test]
fn gzip_files_replay_like_plain_ones_and_formats_are_detected_per_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plain = replay_json(dir.path(), &["--at", "2026-11-20T12:00:00Z"]);
    let log = dir.path().join("events.ndjson");
    let gz = dir.path().join("events.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(&std::fs::read(&log).unwrap()).unwrap();
    enc.finish().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(dir.path().join("spec.yaml"))
        .args(["--output", "json", "--at", "2026-11-20T12:00:00Z"])
        .arg(&gz)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["slos"], plain["slos"]);
    assert_eq!(v["rejected_lines"], plain["rejected_lines"]);

    // A file in no known format is a clear error that names it.
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\nworld\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(dir.path().join("spec.yaml"))
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.txt") && err.contains("--format"), "{err}");
}
