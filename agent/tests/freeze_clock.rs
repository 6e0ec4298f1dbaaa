//! Bypasses and manual freezes expire by the agent's clock: an agent run
//! in-process on a paused clock (`ManualClock`) answers through its real
//! router, and moving the clock past an expiry changes the answer at once,
//! without waiting for any real time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::call;
use slo_agent::clock::ManualClock;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const DEV: &str = "clock-test-deploy-token-0123456789";
const LEAD: &str = "clock-test-approve-token-0123456789";
const SRE: &str = "clock-test-admin-token-0123456789";

#[test]
fn bypasses_and_manual_freezes_end_when_the_paused_clock_passes_their_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: search-availability}\nspec:\n  service: search\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: search}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    for (name, value) in [("dev", DEV), ("lead", LEAD), ("sre", SRE)] {
        std::fs::write(d.join(format!("{name}.token")), value).unwrap();
    }
    let mut log = String::new();
    for i in 0..2_000 {
        let status = if i % 20 == 0 { 503 } else { 200 };
        log.push_str(&format!("{{\"ts\":{},\"service\":\"checkout\",\"status\":{status}}}\n", T0 - 600_000 + i));
        log.push_str(&format!("{{\"ts\":{},\"service\":\"search\",\"status\":200}}\n", T0 - 600_000 + i));
    }
    std::fs::write(d.join("logs/app.log"), log).unwrap();
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\napi:\n  tokens:\n    - {name: dev, role: deploy, token_file: dev.token}\n    - {name: lead, role: approve, token_file: lead.token}\n    - {name: sre, role: admin, token_file: sre.token}\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}\n";
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0);
    let served = common::in_process(config, Arc::new(clock.clone()));
    let (agent, port) = (&served.agent, served.port);
    // The tick is an hour: evaluate by hand until the log is counted.
    let until = Instant::now() + Duration::from_secs(20);
    while agent.evaluate().freeze.get("checkout").is_none_or(|c| c.slos[0].events < 2_000) {
        assert!(Instant::now() < until, "the log was not read");
        std::thread::sleep(Duration::from_millis(20));
    }
    let freeze = |service: &str, change: &str| {
        call(port, "GET", &format!("/api/v1/freeze?service={service}&change={change}"), None, "")
    };
    assert_eq!(freeze("checkout", "feature").0, 423);

    // A feature bypass of checkout for 2 hours, approved by two others.
    let (status, b) = call(
        port,
        "POST",
        "/api/v1/freeze/bypasses",
        Some(DEV),
        r#"{"service":"checkout","change":"feature","reason":"INC-7 fix","expires_in":"2h"}"#,
    );
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["expires_at"], "2026-11-20T02:00:00Z");
    for approver in [LEAD, SRE] {
        let (status, a) = call(port, "POST", &format!("/api/v1/freeze/bypasses/{id}/approve"), Some(approver), "{}");
        assert_eq!(status, 200, "{a}");
    }
    assert_eq!(freeze("checkout", "feature").0, 200);

    // A manual freeze of search for 30 minutes.
    let (status, o) = call(
        port,
        "POST",
        "/api/v1/freeze/overrides",
        Some(LEAD),
        r#"{"service":"search","action":"freeze","reason":"migration","expires_in":"30m"}"#,
    );
    assert_eq!(status, 201, "{o}");
    assert_eq!(freeze("search", "feature").0, 423);

    // One millisecond before each expiry: still in force. At it: gone, without a tick.
    clock.set(T0 + 30 * 60_000 - 1);
    assert_eq!(freeze("search", "feature").0, 423);
    clock.set(T0 + 30 * 60_000);
    let (status, s) = freeze("search", "feature");
    assert_eq!((status, s["overrides"].as_array().map(Vec::len)), (200, Some(0)), "{s}");

    clock.set(T0 + 2 * 3_600_000 - 1);
    assert_eq!(freeze("checkout", "feature").0, 200);
    clock.set(T0 + 2 * 3_600_000);
    let (status, c) = freeze("checkout", "feature");
    assert_eq!(status, 423, "{c}");
    let (_, shown) = call(port, "GET", &format!("/api/v1/freeze/bypasses/{id}"), None, "");
    assert_eq!(shown["state"], "ended", "{shown}");
    // An ended bypass takes no more approvals.
    let (status, _) = call(port, "POST", &format!("/api/v1/freeze/bypasses/{id}/approve"), Some(SRE), "{}");
    assert_eq!(status, 410);
    served.agent.stop(Instant::now() + Duration::from_secs(5));
}
