//! Filters on derived dimensions (region of the edge location, client class)
//! count exactly the events a brute-force reading of the log says they
//! should, and bad names are spec errors with a position.

use std::process::Command;

const SPECS: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata: {name: crawlers}
spec:
  service: shop
  objective: 99
  window: 28d
  indicator:
    source: cloudfront
    filter: {client: crawler}
    good: {status: "< 500"}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: europe-browsers}
spec:
  service: shop
  objective: 99
  window: 28d
  indicator:
    source: cloudfront
    filter: {region: [europe], client: [browser]}
    good: {status: "< 500"}
"#;

#[test]
fn region_and_client_filters_count_what_the_log_says() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cf.log");
    let st = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["generate", "--lines", "20000", "--date", "2026-11-20", "--out"])
        .arg(&log)
        .status()
        .unwrap();
    assert!(st.success());
    let spec = dir.path().join("specs.yaml");
    std::fs::write(&spec, SPECS).unwrap();

    // Brute force: the generator's crawlers are Googlebot and bingbot; its
    // European edges are FRA and LHR; browsers are the Mozilla agents that
    // are not crawlers.
    let text = std::fs::read_to_string(&log).unwrap();
    let (mut crawlers, mut eu_browsers) = (0u64, 0u64);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let ua = f[10].to_ascii_lowercase();
        let crawler = ua.contains("googlebot") || ua.contains("bingbot");
        crawlers += u64::from(crawler);
        let eu = f[2].starts_with("FRA") || f[2].starts_with("LHR");
        eu_browsers += u64::from(eu && !crawler && ua.starts_with("mozilla/"));
    }
    assert!(crawlers > 100 && eu_browsers > 1000, "{crawlers} {eu_browsers}");

    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["replay", "--output", "json", "--specs"])
        .arg(&spec)
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["slos"][0]["events"]["total"], crawlers);
    assert_eq!(v["slos"][1]["events"]["total"], eu_browsers);
}

#[test]
fn unknown_region_client_or_outcome_is_a_positioned_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  objective: 99\n  window: 28d\n  indicator:\n    source: cloudfront\n    filter: {region: [eurpoe], client: robot, outcome: throttle}\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent")).arg("validate").arg(&spec).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(":10:23: unknown region `eurpoe`; did you mean `europe`?"), "{text}");
    assert!(text.contains("unknown client `robot`"), "{text}");
    assert!(text.contains("unknown outcome `throttle`; did you mean `throttled`?"), "{text}");
}
