//! `slo-agent replay` on log group lines saved with `aws logs tail` and
//! `awslogs get` (the fixtures `tests/fixtures/lambda/saved.log` and
//! `tests/fixtures/apigateway/saved.log`), with the format detected: every
//! report and access-log record is counted, and each line that cannot be is
//! a reject with a reason, never silently dropped.

use std::path::Path;
use std::process::Command;

fn replay(dir: &Path, spec: &str, fixture: &str, service: &str) -> serde_json::Value {
    let spec_path = dir.join("spec.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--specs"])
        .arg(&spec_path)
        .args(["--output", "json", "--service", service, "--at", "2026-11-21T09:00:00Z"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lambda_lines_saved_by_the_cli_tools_are_counted_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-fn}\nspec:\n  service: checkout-fn\n  objective: 99\n  window: 7d\n  indicator: {source: lambda, good: {status: \"< 500\"}}\n";
    let v = replay(dir.path(), spec, "lambda/saved.log", "checkout-fn");
    // 8 reports read (one a timeout); the one without a time and the one
    // behind an unknown prefix rejected; START, END, app lines ignored.
    assert_eq!(v["slos"][0]["events"], serde_json::json!({"total": 8, "good": 7, "bad": 1}));
    assert_eq!(v["rejected_lines"], 2);
    assert_eq!(v["rejects"]["missing_field"]["count"], 1);
    assert_eq!(v["rejects"]["unrecognized"]["count"], 1);
}

#[test]
fn api_gateway_lines_saved_by_the_cli_tools_are_counted_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-api}\nspec:\n  service: shop\n  objective: 99\n  window: 7d\n  indicator: {source: apigateway, good: {status: \"< 500\"}}\n";
    let v = replay(dir.path(), spec, "apigateway/saved.log", "shop");
    // JSON, CLF and CSV records behind the prefixes: 9 read, one of them a 502;
    // a record without a time and one behind another tool's prefix rejected.
    assert_eq!(v["slos"][0]["events"], serde_json::json!({"total": 9, "good": 8, "bad": 1}));
    assert_eq!(v["rejected_lines"], 2);
    assert_eq!(v["rejects"]["missing_field"]["count"], 2);
}
