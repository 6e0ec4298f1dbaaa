//! "Is it partial or total?" in a running agent (in-process, on a paused
//! clock): 90 minutes of a shop's traffic through five edge locations, the
//! last 12 with one of them (FRA56-P1) answering 502. Through the real
//! router and the binary: the verdict, its scope and share, the gauges (the
//! verdict's, every judged slice's, the freeze's and the deploys'), the
//! status page's component, the verdict's change in the timeline, and the
//! refusals of bad questions.

mod common;

use std::sync::Arc;

use common::call;
use slo_agent::clock::ManualClock;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;
const MINUTES: i64 = 90;
const FAULT_AT: i64 = 78;
const POPS: [&str; 5] = ["IAD89-C1", "JFK50-P1", "FRA56-P1", "LHR61-P2", "GRU3-C1"];

fn traffic() -> String {
    let mut log = String::new();
    for m in 0..MINUTES {
        for (p, pop) in POPS.iter().enumerate() {
            for i in 0..40i64 {
                let ts = T0 + m * MIN + i * 1_400 + p as i64 * 13;
                let status = if m >= FAULT_AT && *pop == "FRA56-P1" { 502 } else { 200 };
                log.push_str(&format!(
                    "{{\"ts\":{ts},\"service\":\"shop\",\"method\":\"GET\",\"path\":\"/products\",\"status\":{status},\"latency_ms\":30,\"edge_location\":\"{pop}\",\"user_agent\":\"Mozilla/5.0\"}}\n"
                ));
            }
        }
    }
    log
}

#[test]
fn one_edge_location_down_is_a_partial_outage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: shop}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    std::fs::write(d.join("logs/app.log"), traffic()).unwrap();
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\nsignals: {lateness: 1m}\noutage: {window: 10m, min_requests: 20}\nstatus: {components: [{name: Shop, service: shop}]}\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}\n";
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0 + MINUTES * MIN);
    let served = common::in_process(config, Arc::new(clock.clone()));
    let port = served.port;
    served.evaluate_until("the log to be read", |s| s.signals.closed_until_ms >= T0 + (MINUTES - 2) * MIN);

    let (status, a) = call(port, "GET", "/api/v1/outage?service=shop", None, "");
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["service"], "shop");
    assert_eq!(a["window_minutes"], 10);
    assert_eq!(a["verdict"], "partial", "{a:#}");
    assert_eq!(a["failing_share"], 0.2, "{a:#}");
    let pops = a["scope"]["edge_locations"].as_array().unwrap();
    assert_eq!(pops.len(), 1, "{a:#}");
    assert_eq!(pops[0]["name"], "FRA56-P1");
    assert_eq!(pops[0]["success_ratio"], 0.0);
    assert_eq!(pops[0]["baseline"], 1.0, "the hour before the window was clean: {a:#}");
    assert_eq!(pops[0]["requests"], 400);
    assert_eq!(pops[0]["share"], 0.2);
    assert_eq!(a["scope"]["regions"][0]["name"], "europe", "{a:#}");
    assert_eq!(a["scope"]["routes"], serde_json::json!([]));
    // No CloudFront, gateway or Lambda records: no hop data to blame one with.
    assert_eq!(a["blame"], serde_json::Value::Null);
    assert!(a["evidence"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().contains("FRA56-P1")), "{a:#}");

    // The gauges.
    let metrics = common::http_get(port, "/metrics").unwrap();
    assert_eq!(common::metric(&metrics, "slo_agent_outage_verdict{service=\"shop\"}"), Some(1.0), "{metrics}");
    assert_eq!(common::metric(&metrics, "slo_agent_outage_failing_share{service=\"shop\"}"), Some(0.2));
    // Every judged slice, failing or not, with its baseline.
    let slice = |name: &str, dimension: &str, slice: &str| {
        common::metric(&metrics, &format!("{name}{{service=\"shop\",dimension=\"{dimension}\",slice=\"{slice}\"}}"))
    };
    assert_eq!(slice("slo_agent_outage_slice_success_ratio", "edge_location", "FRA56-P1"), Some(0.0), "{metrics}");
    assert_eq!(slice("slo_agent_outage_slice_baseline_ratio", "edge_location", "FRA56-P1"), Some(1.0));
    assert_eq!(slice("slo_agent_outage_slice_success_ratio", "edge_location", "IAD89-C1"), Some(1.0));
    assert_eq!(slice("slo_agent_outage_slice_success_ratio", "region", "europe"), Some(0.5));
    // The freeze and deploy gauges of the SLO's service: no deploy recorded.
    assert!(common::metric(&metrics, "slo_agent_freeze_frozen{service=\"shop\"}").is_some(), "{metrics}");
    assert_eq!(common::metric(&metrics, "slo_agent_deploy_last_timestamp_seconds{service=\"shop\"}"), Some(0.0));

    // The public status page: no page alert fires (12 minutes of a fifth of the
    // traffic failing burn the budget too slowly; a ticket alone would say
    // degraded performance): the verdict makes it a partial outage.
    let (status, alerts) = call(port, "GET", "/api/v1/alerts", None, "");
    assert_eq!(status, 200);
    let paging = |a: &&serde_json::Value| a["kind"] == "page" && a["phase"] == "firing";
    let list = alerts.as_array().or_else(|| alerts["alerts"].as_array()).expect("a list of alerts");
    assert!(!list.iter().any(|a| paging(&a)), "{alerts:#}");
    let (status, page) = call(port, "GET", "/status.json", None, "");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["components"][0]["name"], "Shop");
    assert_eq!(page["components"][0]["status"], "partial_outage", "{page:#}");

    // The verdict's change is recorded for the timeline.
    let (status, t) =
        call(port, "GET", "/api/v1/timeline?service=shop&from=2026-11-20T00:00:00Z&to=2026-11-20T02:00:00Z", None, "");
    assert_eq!(status, 200, "{t}");
    let outage: Vec<&serde_json::Value> =
        t["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "outage").collect();
    assert_eq!(outage.len(), 1, "{t:#}");
    assert_eq!(outage[0]["source"], "state_changes");
    assert_eq!(outage[0]["details"]["verdict"], "partial");
    assert_eq!(
        outage[0]["summary"],
        "shop: partial outage, 20.0 % of the traffic failing (edge locations FRA56-P1; regions europe)"
    );
    // And what the public page showed, with the same time.
    let page: Vec<&serde_json::Value> =
        t["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "status_page").collect();
    assert_eq!(page.len(), 1, "{t:#}");
    assert_eq!(page[0]["summary"], "status page: Shop partial outage");
    assert_eq!(page[0]["details"]["component"], "Shop");
    assert_eq!(page[0]["at_ms"], outage[0]["at_ms"]);

    // Bad questions.
    for (path, want) in [
        ("/api/v1/outage", 400),
        ("/api/v1/outage?service=", 400),
        ("/api/v1/outage?service=nope", 404),
        ("/api/v1/outage?service=shop&window=1h", 400),
        ("/api/v1/outage?service=%0A%1B%5B31m", 400),
        ("/api/v1/outage?service=..%2F..%2Fetc%2Fpasswd", 404),
        ("/api/v1/outage?service=%3Cscript%3E", 404),
        ("/api/v1/outage?service=%FF%FE", 404),
        ("/api/v1/outage?%3Cx%3E=1&service=shop", 400),
    ] {
        let (status, body) = call(port, "GET", path, None, "");
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let long = format!("/api/v1/outage?service={}", "x".repeat(5000));
    assert_eq!(call(port, "GET", &long, None, "").0, 400);

    // The command line: exit 1 for an outage, 2 for an unknown service.
    let url = format!("http://127.0.0.1:{port}");
    let out = std::process::Command::new(common::bin())
        .args(["outage", "--service", "shop", "--url", &url, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "partial");
    let out = std::process::Command::new(common::bin())
        .args(["outage", "--service", "shop", "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("shop: partial outage, 20.0% of requests failing"), "{text}");
    assert!(text.contains("FRA56-P1"), "{text}");
    let out = std::process::Command::new(common::bin())
        .args(["outage", "--service", "nope", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"), "{}", String::from_utf8_lossy(&out.stderr));
}
