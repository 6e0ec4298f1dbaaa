//! `slo-agent replay` on the files people have besides plain log lines:
//! a directory with one file whose format cannot be told (reported, the
//! others replayed, exit 2), CloudFront real-time logs with `--fields`,
//! saved CloudWatch Logs subscription payloads (JSON, gzip, base64 records)
//! with an unrouted log group, and saved Lambda Telemetry API batches.
//! Every fixture is written here, from AWS's documented shapes.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

const SPEC: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata:
  name: function-errors
spec:
  service: shop
  objective: 99
  window: 28d
  indicator:
    source: lambda
    good:
      status: "< 500"
---
apiVersion: slo-agent/v1
kind: SLO
metadata:
  name: edge-errors
spec:
  service: shop
  objective: 99
  window: 28d
  indicator:
    source: cloudfront
    good:
      status: "< 500"
---
apiVersion: slo-agent/v1
kind: SLO
metadata:
  name: realtime-errors
spec:
  service: shop
  objective: 99
  window: 28d
  indicator:
    source: cloudfront-realtime
    good:
      status: "< 500"
"#;

struct Run {
    code: i32,
    json: serde_json::Value,
    stderr: String,
}

fn replay(dir: &Path, args: &[&str], files: &[&Path]) -> Run {
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(&spec)
        .args(["--output", "json", "--service", "shop"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    Run { code: out.status.code().unwrap_or(-1), json, stderr }
}

fn slo<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["slos"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Lambda `REPORT` lines as a log export writes them: time first.
const LAMBDA_LINES: &str = "2026-11-20T10:00:00.000Z REPORT RequestId: a1\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\n\
2026-11-20T10:00:01.000Z REPORT RequestId: a2\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tStatus: timeout\n";

#[test]
fn a_file_of_unknown_format_is_reported_and_the_others_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("function.log");
    std::fs::write(&good, LAMBDA_LINES).unwrap();
    let odd = dir.path().join("notes.txt");
    std::fs::write(&odd, "these are not log lines\nnor is this\n").unwrap();
    let missing = dir.path().join("gone.log");
    let r = replay(dir.path(), &[], &[&odd, &good, &missing]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The report covers the file that could be read.
    assert_eq!(slo(&r.json, "function-errors")["events"], serde_json::json!({"total": 2, "good": 1, "bad": 1}));
    let failed = r.json["failed_files"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["path"], odd.display().to_string());
    assert!(failed[0]["error"].as_str().unwrap().contains("cannot tell the log format"), "{failed:?}");
    assert_eq!(failed[1]["path"], missing.display().to_string());
    // Each skipped file is named on stderr with why.
    assert!(r.stderr.contains(&format!("error: {}: cannot tell the log format", odd.display())), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: {}:", missing.display())), "{}", r.stderr);
    assert!(r.stderr.contains("2 of 3 files skipped"), "{}", r.stderr);

    // Without the odd files: exit 0, no failed_files.
    let r = replay(dir.path(), &[], &[&good]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json.get("failed_files").is_none());
}

#[test]
fn cloudfront_realtime_logs_are_read_with_the_field_list() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("realtime.log");
    // CloudFront writes the selected fields in its own order, tab-separated.
    std::fs::write(
        &log,
        "1795176000.123\t192.0.2.1\t200\tGET\tshop.example.com\t/index.html\t0.012\n\
         1795176001.500\t192.0.2.2\t503\tGET\tshop.example.com\t/cart?id=7\t0.300\n\
         1795176002.000\t192.0.2.3\t204\tPOST\tshop.example.com\t/api/ping\t0.001\n",
    )
    .unwrap();
    // The field list in any order, as the configuration may list it.
    let fields = "cs-host,timestamp,c-ip,sc-status,cs-method,cs-uri-stem,time-taken";
    let r = replay(dir.path(), &["--format", "cloudfront-realtime", "--fields", fields], &[&log]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(slo(&r.json, "realtime-errors")["events"], serde_json::json!({"total": 3, "good": 2, "bad": 1}));
    assert_eq!(r.json["at"], "2026-11-20T12:00:02Z");
    assert_eq!(r.json["rejected_lines"], 0);

    // Without --fields, or with a field CloudFront does not have: a usage error.
    let r = replay(dir.path(), &["--format", "cloudfront-realtime"], &[&log]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("needs --fields"), "{}", r.stderr);
    let r = replay(dir.path(), &["--format", "cloudfront-realtime", "--fields", "timestamp,c-ipp"], &[&log]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("c-ipp"), "{}", r.stderr);
}

fn data_message(group: &str, events: &[(i64, &str)]) -> String {
    let events: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, (ts, msg))| {
            format!(r#"{{"id": "{i}", "timestamp": {ts}, "message": {}}}"#, serde_json::to_string(msg).unwrap())
        })
        .collect();
    format!(
        r#"{{"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": {}, "logStream": "2026/11/20/[$LATEST]abc", "subscriptionFilters": ["slo"], "logEvents": [{}]}}"#,
        serde_json::to_string(group).unwrap(),
        events.join(", ")
    )
}

const REPORT_OK: &str =
    "REPORT RequestId: b1\tDuration: 20.00 ms\tBilled Duration: 20 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n";
const REPORT_ERR: &str = "REPORT RequestId: b2\tDuration: 40.00 ms\tBilled Duration: 40 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: error\n";

#[test]
fn cloudwatch_subscription_payloads_are_read_in_their_saved_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let t = 1_795_176_000_000i64; // 2026-11-20T12:00:00Z
    let lambda =
        data_message("/aws/lambda/checkout", &[(t, "START RequestId: b1\n"), (t + 1, REPORT_OK), (t + 2, REPORT_ERR)]);
    let other = data_message("/custom/app\u{1b}[31m", &[(t, "hello"), (t + 5, "again")]);
    let control = r#"{"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "", "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1795176000000, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;

    // As a subscriber saves them: pretty-printed JSON, messages one after another.
    let pretty = dir.path().join("messages.json");
    let v: serde_json::Value = serde_json::from_str(&lambda).unwrap();
    std::fs::write(&pretty, format!("{}\n{control}{other}\n", serde_json::to_string_pretty(&v).unwrap())).unwrap();
    // As Firehose delivers records: one base64 gzip payload per line.
    let b64 = dir.path().join("records.txt");
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(gzip(s.as_bytes()));
    std::fs::write(&b64, format!("{}\n{}\n", enc(&lambda), enc(control))).unwrap();
    // As Firehose writes them to S3: gzip of the messages back to back.
    let gz = dir.path().join("s3-object.gz");
    std::fs::write(&gz, gzip(format!("{lambda}{lambda}").as_bytes())).unwrap();

    for args in [&["--format", "cloudwatch-logs"][..], &[][..]] {
        let r = replay(dir.path(), args, &[&pretty, &b64, &gz]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        // Four copies of the lambda message, two reports each (START makes none).
        assert_eq!(
            slo(&r.json, "function-errors")["events"],
            serde_json::json!({"total": 8, "good": 4, "bad": 4}),
            "{args:?}"
        );
        assert_eq!(r.json["rejected_lines"], 0, "{}", r.json["rejects"]);
        assert_eq!(r.json["unrouted_log_events"], 2);
        assert_eq!(r.json["unrouted_log_groups"], serde_json::json!(["/custom/app\u{1b}[31m"]));
        // On stderr the group is named, escaped.
        assert!(r.stderr.contains("2 log events of log groups no --log-group route covers"), "{}", r.stderr);
        assert!(!r.stderr.contains('\u{1b}'), "{}", r.stderr);
    }

    // A route for the other group: its events are read as NDJSON… and rejected as not JSON.
    let r = replay(
        dir.path(),
        &["--format", "cloudwatch-logs", "--log-group", "/custom/*=ndjson", "--log-group", "/aws/lambda/*=lambda"],
        &[&pretty],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json.get("unrouted_log_events").is_none());
    assert_eq!(r.json["rejects"]["bad_json"]["count"], 2);

    // A broken record is a reject with its place, not the end of the file.
    let broken = dir.path().join("broken.txt");
    std::fs::write(&broken, format!("H4sInotbase64!!\n{}\n", enc(&lambda))).unwrap();
    let r = replay(dir.path(), &["--format", "cloudwatch-logs"], &[&broken]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json["rejects"]["bad_encoding"]["count"], 1);
    assert_eq!(slo(&r.json, "function-errors")["events"]["total"], 2);
}

#[test]
fn lambda_telemetry_batches_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let report = |time: &str, id: &str, status: &str, ms: f64| {
        format!(
            r#"{{"time": "{time}", "type": "platform.report", "record": {{"requestId": "{id}", "status": "{status}", "metrics": {{"durationMs": {ms}, "billedDurationMs": 13, "memorySizeMB": 128, "maxMemoryUsedMB": 70}}}}}}"#
        )
    };
    let start = r#"{"time": "2026-11-20T11:00:00.000Z", "type": "platform.start", "record": {"requestId": "c1", "version": "$LATEST"}}"#;
    let batch1 = format!(
        "[{start}, {}, {}]",
        report("2026-11-20T11:00:00.100Z", "c1", "success", 12.5),
        report("2026-11-20T11:00:01.000Z", "c2", "timeout", 3000.0)
    );
    let batch2 = format!("[\n  {}\n]", report("2026-11-20T11:00:02.000Z", "c3", "success", 8.0));
    let file = dir.path().join("telemetry.json");
    std::fs::write(&file, format!("{batch1}\n{batch2}\n")).unwrap();
    for args in [&["--format", "lambda-telemetry"][..], &[][..]] {
        let r = replay(dir.path(), args, &[&file]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(
            slo(&r.json, "function-errors")["events"],
            serde_json::json!({"total": 3, "good": 2, "bad": 1}),
            "{args:?}"
        );
        assert_eq!(r.json["at"], "2026-11-20T11:00:02Z");
    }
    // A batch that breaks midway: a reject, and the batches before it counted.
    std::fs::write(&file, format!("{batch1}\n[{{\"time\": oops\n")).unwrap();
    let r = replay(dir.path(), &["--format", "lambda-telemetry"], &[&file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(slo(&r.json, "function-errors")["events"]["total"], 2);
    assert_eq!(r.json["rejects"]["bad_json"]["count"], 1);
}
