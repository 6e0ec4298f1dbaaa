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
    let port = common::free_port();
    let rest = format!(
        "sources:\n  - {{name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}}\nprobes:\n  - name: storefront\n    interval: 1s\n    retries: 0\n    headers: {{x-api-key_file: key}}\n    hops:\n      - {{name: edge, url: \"http://127.0.0.1:{tport}/ok\"}}\n      - {{name: origin, url: \"http://127.0.0.1:{tport}/down\"}}\n    expect: {{status: [200], body_matches: healthy}}\n"
    );
    let config = common::write_agent_config(d, port, &rest);
    let mut child = common::start(&config);
    let until = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = common::http_get(port, "/metrics").unwrap_or_default();
        if m.contains("probe_success{") && m.contains("hop=\"origin\"") && m.contains("hop=\"edge\"") {
            break m;
        }
        assert!(Instant::now() < until, "no probe results on /metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
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
    assert!(edge.contains("probe=\"storefront\"") && edge.contains("region=\"eu-test-1\""), "{edge}");
    assert!(edge.ends_with(" 1"), "the key from the file reached the target: {edge}");
    assert!(series("probe_success", "origin").ends_with(" 0"));
    assert!(series("probe_http_status_code", "origin").ends_with(" 503"));
    assert!(series("probe_http_duration_seconds", "edge").contains("phase="));
    // The key's value is nowhere in what the agent exports.
    assert!(!metrics.contains("k-123"));
}
