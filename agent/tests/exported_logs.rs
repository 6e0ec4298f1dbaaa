//! `slo-agent replay` on log events exported from CloudWatch Logs (the
//! fixtures in `tests/fixtures/exports/`): the console's and Logs Insights'
//! CSV downloads, `aws logs get-log-events` / `filter-log-events` JSON and
//! Logs Insights JSON, for every format whose messages travel through
//! CloudWatch Logs, with the container and the messages' format detected.
//! Every request is counted and every message that cannot be read is a
//! reject with a reason; nothing vanishes. Also the saved-line prefixes of
//! `aws logs tail` and `awslogs get` before CloudFront v2 and NDJSON records.

use std::path::Path;
use std::process::{Command, Output};

fn spec(name: &str, service: &str, source: &str) -> String {
    format!(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: {service}\n  objective: 99\n  window: 7d\n  indicator: {{source: {source}, good: {{status: \"< 500\"}}}}\n"
    )
}

fn run(dir: &Path, spec: &str, fixture: &str, extra: &[&str]) -> Output {
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    run_file(dir, spec, &log, extra)
}

fn run_file(dir: &Path, spec: &str, log: &Path, extra: &[&str]) -> Output {
    let spec_path = dir.join("spec.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(&spec_path)
        .args(["--output", "json", "--at", "2026-11-21T09:00:00Z"])
        .args(extra)
        .arg(log)
        .output()
        .unwrap()
}

fn replay(spec: &str, fixture: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), spec, fixture, extra);
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn events(v: &serde_json::Value) -> &serde_json::Value {
    &v["slos"][0]["events"]
}

fn rejects(v: &serde_json::Value) -> Vec<(String, u64)> {
    let mut r: Vec<(String, u64)> = v["rejects"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(reason, s)| (reason.clone(), s["count"].as_u64().unwrap()))
        .collect();
    r.sort();
    r
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|&(r, n)| (r.to_owned(), n)).collect()
}

#[test]
fn logs_insights_csv_of_a_lambda_log_group() {
    let v = replay(
        &spec("checkout-fn", "checkout-fn", "lambda"),
        "exports/lambda.insights.csv",
        &["--service", "checkout-fn"],
    );
    // Four reports, each timed by its row: one success, one timeout (told by
    // the line before it), one error, one success. START, END and the
    // function's output (quoted, with commas and quotes) are no requests.
    assert_eq!(events(&v), &serde_json::json!({"total": 4, "good": 2, "bad": 2}));
    assert_eq!(rejects(&v), pairs(&[("bad_number", 1), ("bad_timestamp", 1), ("missing_field", 1)]));
    assert_eq!(v["rejected_lines"], 3);
    let sample = &v["rejects"]["bad_timestamp"]["samples"][0]["at"];
    assert!(sample.as_str().unwrap().ends_with("lambda.insights.csv:21"), "{sample}");
}

#[test]
fn get_log_events_json_of_a_lambda_log_stream() {
    let v = replay(
        &spec("checkout-fn", "checkout-fn", "lambda"),
        "exports/lambda.get-log-events.json",
        &["--service", "checkout-fn"],
    );
    // No log group in the file: the format is told by INIT_START, after the
    // function's JSON output that came first (kept until then). Two text
    // reports timed by their events, one JSON platform.report (a timeout).
    assert_eq!(events(&v), &serde_json::json!({"total": 3, "good": 2, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("bad_field", 1), ("missing_field", 1)]));
    assert_eq!(v["lines"], 7, "every log event is counted");
}

#[test]
fn filter_log_events_pages_of_an_api_gateway_log_group() {
    let v = replay(
        &spec("shop-api", "shop", "apigateway"),
        "exports/apigateway.filter-log-events.json",
        &["--service", "shop"],
    );
    // Two pages saved one after the other: JSON and CLF access-log records.
    assert_eq!(events(&v), &serde_json::json!({"total": 5, "good": 4, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("missing_field", 1)]));
}

#[test]
fn console_csv_of_cloudfront_v2_json_delivered_to_cloudwatch_logs() {
    let v = replay(&spec("site", "shop", "cloudfront"), "exports/cloudfront-v2.console.csv", &["--service", "shop"]);
    assert_eq!(events(&v), &serde_json::json!({"total": 4, "good": 3, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("bad_field", 1), ("bad_status", 1)]));
}

#[test]
fn logs_insights_json_of_an_ndjson_log_group() {
    let v = replay(&spec("pay", "checkout", "ndjson"), "exports/ndjson.insights.json", &[]);
    assert_eq!(events(&v), &serde_json::json!({"total": 4, "good": 3, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("bad_timestamp", 1)]));
    // A route names the format of the group's messages instead.
    let v = replay(
        &spec("pay", "checkout", "ndjson"),
        "exports/ndjson.insights.json",
        &["--log-group", "/app/*=apigateway"],
    );
    assert_eq!(events(&v)["total"], 0);
    assert_eq!(v["rejected_lines"], 5, "API Gateway reads no NDJSON record: each is a reject");
}

#[test]
fn messages_that_tell_no_format_skip_the_file_unless_the_format_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("checkout-fn", "checkout-fn", "lambda");
    let out = run(dir.path(), &s, "exports/untold.get-log-events.json", &[]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["failed_files"][0]["error"].as_str().unwrap().contains("cannot tell the log format"), "{v}");
    // `--format lambda`: the messages are a function's output, not requests.
    let v = replay(&s, "exports/untold.get-log-events.json", &["--format", "lambda"]);
    assert_eq!(
        (events(&v)["total"].as_u64(), v["lines"].as_u64(), v["rejected_lines"].as_u64()),
        (Some(0), Some(3), Some(0))
    );
}

#[test]
fn cloudfront_v2_and_ndjson_records_behind_saved_line_prefixes() {
    let v = replay(&spec("site", "shop", "cloudfront"), "cloudfront/v2.saved.log", &["--service", "shop"]);
    assert_eq!(events(&v), &serde_json::json!({"total": 4, "good": 3, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("bad_json", 1)]), "a prefix of another tool");
    let v = replay(&spec("pay", "checkout", "ndjson"), "ndjson/saved.log", &[]);
    assert_eq!(events(&v), &serde_json::json!({"total": 4, "good": 3, "bad": 1}));
    assert_eq!(rejects(&v), pairs(&[("bad_json", 1), ("missing_field", 1)]));
}

#[test]
fn hostile_exports_are_cut_at_their_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("checkout-fn", "checkout-fn", "lambda");
    let report = "REPORT RequestId: 3c9e7a51-6b2d-4f80-a1c4-0d5e6f7a8b01\\tDuration: 1.00 ms\\tBilled Duration: 1 ms\\tMemory Size: 128 MB\\tMax Memory Used: 60 MB";
    // A JSON export whose second event's message is 6 MiB: the event is
    // rejected as too long and the file ends there (the first counts).
    let huge = "x".repeat(6 << 20);
    let json = format!(
        "{{\"events\": [{{\"timestamp\": 1795248000000, \"message\": \"{report}\"}}, {{\"timestamp\": 1795248001000, \"message\": \"{huge}\"}}, {{\"timestamp\": 1795248002000, \"message\": \"{report}\"}}]}}"
    );
    let path = dir.path().join("huge.json");
    std::fs::write(&path, json).unwrap();
    let out = run_file(dir.path(), &s, &path, &["--service", "checkout-fn"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events(&v)["total"], 1);
    assert_eq!(rejects(&v), pairs(&[("too_long", 1)]));
    // A CSV row whose quote never closes: one overlong record, not a file in memory.
    let csv = format!(
        "timestamp,message\n1795248000000,\"{}\"\n1795248002000,\"{}\n",
        report.replace("\\t", "\t"),
        "y\n".repeat(3 << 20)
    );
    let path = dir.path().join("open.csv");
    std::fs::write(&path, csv).unwrap();
    let out = run_file(dir.path(), &s, &path, &["--service", "checkout-fn"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events(&v)["total"], 1);
    assert_eq!(rejects(&v), pairs(&[("too_long", 1)]));
}
