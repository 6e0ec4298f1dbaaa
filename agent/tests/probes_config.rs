//! `probes:` in agent.yaml through the running binary: each hop is probed
//! on the probe's interval and its last outcome is on `/metrics` in
//! blackbox_exporter's names, labelled with the probe, the hop and the
//! configured region; a header read from a file reaches the target.

mod common;

use std::time::{Duration, Instant};

/// A local target: `/ok` answers 200 when the `x-api-key` header is right,
/// `/down` always 503.
fn target() -> (u16, tokio::runtime::Runtime) {
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::get(|h: axum::http::HeaderMap| async move {
                if h.get("x-api-key").is_some_and(|v| v == "k-123") {
                    (axum::http::StatusCode::OK, "healthy")
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, "no key")
                }
            }),
        )
        .route("/down", axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }));
    common::serve_app(app)
}

#[test]
fn configured_probes_run_and_export_blackbox_metrics() {
    let (tport, _rt) = target();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(d.join("key"), "k-123\n").unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        concat!(
            "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, good: {status: \"< 500\"}}\n",
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: storefront-edge}\nspec:\n  service: storefront\n  objective: 99\n  window: 28d\n  indicator: {source: synthetic, filter: {hop: edge, region: [europe]}, good: {status: 2xx}}\n",
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: storefront-origin}\nspec:\n  service: storefront\n  objective: 99\n  window: 28d\n  indicator: {source: synthetic, filter: {hop: origin}, good: {latency: \"< 10s\"}}\n",
        ),
    )
    .unwrap();
    let port = common::free_port();
    let config = format!(
        "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 1s\nregion: eu-west-1\nsources:\n  - {{name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}}\nprobes:\n  - name: storefront\n    interval: 1s\n    retries: 0\n    headers: {{x-api-key_file: key}}\n    hops:\n      - {{name: edge, url: \"http://127.0.0.1:{tport}/ok\"}}\n      - {{name: origin, url: \"http://127.0.0.1:{tport}/down\"}}\n    expect: {{status: [200], body_matches: healthy}}\n"
    );
    std::fs::write(d.join("agent.yaml"), config).unwrap();
    let mut child = common::start(&d.join("agent.yaml"));
    let until = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = common::http_get(port, "/metrics").unwrap_or_default();
        if m.contains("probe_success{") && m.contains("hop=\"origin\"") && m.contains("hop=\"edge\"") {
            break m;
        }
        assert!(Instant::now() < until, "no probe results on /metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Probe results are events: the SLOs on the synthetic source count them
    // (the origin answers 503 quickly: bad for an SLO on latency alone too).
    let until = Instant::now() + Duration::from_secs(20);
    let totals = loop {
        let (_, report) = common::call(port, "GET", "/api/v1/slos", None, "");
        let t = common::totals(&report);
        let n = |name: &str| t.iter().find(|(n, ..)| n == name).map_or(0, |(_, total, _)| *total);
        if n("storefront-edge") >= 2 && n("storefront-origin") >= 2 {
            break t;
        }
        assert!(Instant::now() < until, "the synthetic SLOs counted nothing: {t:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for (name, total, good) in &totals {
        match name.as_str() {
            "storefront-edge" => assert_eq!(good, total, "{totals:?}"),
            "storefront-origin" => assert_eq!(*good, 0, "{totals:?}"),
            _ => assert_eq!(*total, 0, "{totals:?}"),
        }
    }
    // The hop chain: the origin failed every run and is the hop to look at.
    let (status, chain) = common::call(port, "GET", "/api/v1/hops?probe=storefront&window=5m", None, "");
    assert_eq!(status, 200, "{chain}");
    assert_eq!(chain["source"], "probe");
    let hops = chain["hops"].as_array().unwrap();
    assert_eq!(hops.iter().map(|h| h["name"].as_str().unwrap()).collect::<Vec<_>>(), ["edge", "origin"], "{chain}");
    assert!(hops[0]["count"].as_u64().unwrap() >= 2 && hops[0]["p50_ms"].as_f64().unwrap() > 0.0, "{chain}");
    assert_eq!(hops[1]["count"], 0, "{chain}");
    assert!(hops[1]["failures"].as_u64().unwrap() >= 2, "{chain}");
    assert_eq!(chain["blame"], "origin", "{chain}");
    assert_eq!(common::call(port, "GET", "/api/v1/hops?probe=nothing", None, "").0, 404);
    let _ = child.kill();
    let _ = child.wait();
    let series = |name: &str, hop: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("hop=\"{hop}\"")))
            .unwrap_or_else(|| panic!("no {name} for {hop} in\n{metrics}"))
            .to_string()
    };
    let edge = series("probe_success", "edge");
    assert!(edge.contains("probe=\"storefront\"") && edge.contains("region=\"eu-west-1\""), "{edge}");
    assert!(edge.ends_with(" 1"), "the key from the file reached the target: {edge}");
    assert!(series("probe_success", "origin").ends_with(" 0"));
    assert!(series("probe_http_status_code", "origin").ends_with(" 503"));
    assert!(series("probe_http_duration_seconds", "edge").contains("phase="));
    // The scheduler says what it did.
    assert!(common::metric(&metrics, "slo_agent_check_runs_started{kind=\"probe\"}").unwrap() >= 1.0, "{metrics}");
    assert!(common::metric(&metrics, "slo_agent_check_start_lateness_p99_seconds{kind=\"probe\"}").is_some());
    // The key's value is nowhere in what the agent exports.
    assert!(!metrics.contains("k-123"));
}
