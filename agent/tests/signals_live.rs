//! The live signals in a running agent (in-process, on a paused clock):
//! four hours of a shop's ordinary traffic, conversions included, then a
//! burst of 403s from three addresses. Through the real router: the
//! anomalies and "are we under attack?" with the addresses, the forecasts,
//! the metrics, the anomaly alert a `signals.alerts` rule raises, and the
//! freeze a policy's `freeze_when.anomalies` makes of it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::call;
use slo_agent::clock::ManualClock;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;
const MINUTES: i64 = 240;
const BURST_AT: i64 = 220;

/// Deterministic pseudo-random numbers.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn traffic() -> String {
    let mut r = Lcg(11);
    let mut log = String::new();
    for m in 0..MINUTES {
        let n = 150 + r.next() % 20;
        for i in 0..n {
            let ts = T0 + m * MIN + (i as i64 * MIN / n as i64);
            let addr = format!("198.51.{}.{}", r.next() % 40, r.next() % 250);
            let (method, path, status) = match r.next() % 30 {
                0 => ("POST", "/checkout/confirm", 201),
                1 => ("GET", "/missing", 404),
                2 => ("GET", "/cart", 503),
                _ => ("GET", "/products", 200),
            };
            log.push_str(&format!(
                "{{\"ts\":{ts},\"service\":\"shop\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"latency_ms\":{},\"client_addr\":\"{addr}\",\"user_agent\":\"Mozilla/5.0\"}}\n",
                20 + r.next() % 30
            ));
        }
        if m >= BURST_AT {
            for (k, addr) in ["203.0.113.7", "203.0.113.8", "203.0.113.9"].iter().enumerate() {
                for i in 0..100 {
                    let ts = T0 + m * MIN + k as i64 * 7 + i * 600;
                    log.push_str(&format!(
                        "{{\"ts\":{ts},\"service\":\"shop\",\"method\":\"POST\",\"path\":\"/login\",\"status\":403,\"client_addr\":\"{addr}\",\"user_agent\":\"python-requests/2.31\",\"asn\":64500}}\n"
                    ));
                }
            }
        }
    }
    log
}

#[test]
fn an_attack_is_found_named_alerted_and_freezes_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: shop}, good: {status: \"< 500\"}}\n---\napiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: shop}\nspec:\n  services: [shop]\n  freeze_when: {anomalies: [ticket]}\n",
    )
    .unwrap();
    std::fs::write(d.join("logs/app.log"), traffic()).unwrap();
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\nsignals:\n  lateness: 1m\n  business: [{name: checkout_confirmed, method: POST, path: /checkout/confirm}]\n  alerts: [{signal: forbidden_share, score: 0.5, for: 2m, severity: ticket}]\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}\n";
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0 + MINUTES * MIN);
    let served = common::in_process(config, Arc::new(clock.clone()));
    let port = served.port;
    // The tick is an hour: evaluate by hand until the whole log is counted
    // and its minutes are closed (the newest event less a minute of lateness).
    served.evaluate_until("the log to be read", |s| s.signals.closed_until_ms >= T0 + (MINUTES - 2) * MIN);
    let burst = "2026-11-20T03:40:00Z";

    let (status, a) = call(port, "GET", "/api/v1/anomalies?service=shop", None, "");
    assert_eq!(status, 200, "{a}");
    let attack = &a["attack"][0];
    assert_eq!(attack["suspected"], true, "{attack}");
    let since = attack["since"].as_str().unwrap();
    assert!((burst..="2026-11-20T03:42:00Z").contains(&since), "{since}");
    let named: Vec<&str> = attack["top"]["client_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|h| h["value"].as_str().unwrap())
        .collect();
    for addr in ["203.0.113.7", "203.0.113.8", "203.0.113.9"] {
        assert!(named.contains(&addr), "{named:?}");
    }
    assert_eq!(attack["top"]["user_agents"][0]["value"], "python-requests/2.31");
    assert_eq!(attack["top"]["paths"][0]["value"], "/login");
    assert_eq!(attack["top"]["asns"][0]["value"], "64500");
    let forbidden = a["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["signal"] == "forbidden_share" && x["dimension"] == "all")
        .unwrap_or_else(|| panic!("no forbidden_share anomaly: {a}"));
    assert_eq!(forbidden["direction"], "up");
    assert!(forbidden["evidence"]["minutes"].as_array().unwrap().len() >= 10);
    // The conversions are a business signal of their own.
    assert!(a["business"].as_array().unwrap().iter().any(|b| b["signal"] == "business:checkout_confirmed"), "{a}");
    let (status, bad) = call(port, "GET", "/api/v1/anomalies?dimension=country", None, "");
    assert_eq!(status, 400, "{bad}");

    // The rule's ticket fires, and the policy freezes the service for it.
    let (_, alerts) = call(port, "GET", "/api/v1/alerts", None, "");
    let text = alerts.to_string();
    assert!(text.contains("anomaly_ticket") && text.contains("shop/ndjson/forbidden_share"), "{text}");
    let (status, f) = call(port, "GET", "/api/v1/freeze?service=shop&change=feature", None, "");
    assert_eq!(status, 423, "{f}");
    assert!(f.to_string().contains("anomaly_ticket alert firing"), "{f}");

    // The forecasts: the SLO's budget outlook, and a series' hourly forecast.
    let (status, fc) = call(port, "GET", "/api/v1/forecasts?service=shop&signal=requests&dimension=all", None, "");
    assert_eq!(status, 200, "{fc}");
    let b = &fc["budgets"][0];
    assert_eq!(b["slo"], "shop-availability");
    assert!(b["forecast_burn_rate"].as_f64().unwrap() > 1.0, "{b}");
    assert!(b["expected_remaining_at_end"].is_number());
    assert_eq!(fc["series"][0]["signal"], "requests");
    assert!(fc["series"][0]["history_hours"].as_u64().unwrap() >= 3, "{fc}");

    let metrics = common::http_get(port, "/metrics").unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("slo_agent_anomaly_score{")
                && l.contains("signal=\"forbidden_share\"")
                && l.contains("dimension=\"all\"")
        })
        .unwrap_or_else(|| panic!("no score line"));
    assert!(line.contains("service=\"shop\"") && line.contains("origin=\"ndjson\""), "{line}");
    assert!(metrics.contains("slo_agent_signal_upper{"));
    assert!(metrics.contains("slo_agent_slo_forecast_burn_rate_ratio{"));
    served.agent.stop(Instant::now() + Duration::from_secs(5));
}

/// A backlog read in many small batches while the clock is a day past it
/// (a file tail catching up after downtime): the minutes close by the events,
/// not by the clock, so no event of the backlog is left out as late.
#[test]
fn a_backlog_read_in_small_batches_is_scored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: shop}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    let log = traffic();
    std::fs::write(d.join("logs/app.log"), &log).unwrap();
    // About 65 batches of 64 KiB.
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson, max_batch_bytes: 65536}\n";
    assert!(log.len() > 40 * 65536, "{}", log.len());
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0 + 1440 * MIN);
    let served = common::in_process(config, Arc::new(clock.clone()));
    // Evaluations between the batches: each would close every minute by
    // the clock if the backlog did not hold it back.
    let snap = served.evaluate_until("the log to be read", |s| s.signals.closed_until_ms >= T0 + (MINUTES - 6) * MIN);
    assert_eq!(snap.signals.stats.late, 0, "{:?}", snap.signals.stats);
    let requests = snap
        .signals
        .series
        .iter()
        .find(|s| &*s.key.service == "shop" && s.signal == "requests" && s.key.dim.dimension() == "all")
        .expect("the requests series");
    // Every hour of the log whole (the last with the burst's 403s); the
    // hours after it, up to the clock, are zeros once the backlog is read.
    let hours: Vec<(i64, f32)> = requests.hours.iter().copied().collect();
    assert!(hours.len() >= 3, "{hours:?}");
    for (i, (start, n)) in hours.iter().enumerate() {
        assert_eq!(*start, T0 + i as i64 * 60 * MIN);
        match i {
            0..3 => assert!((150.0 * 60.0..=170.0 * 60.0).contains(n), "hour {i}: {n} requests"),
            3 => assert!(*n >= 150.0 * 60.0 + 3.0 * 100.0 * 20.0, "hour {i}: {n} requests"),
            _ => assert_eq!(*n, 0.0, "hour {i}: {hours:?}"),
        }
    }
    served.agent.stop(Instant::now() + Duration::from_secs(5));
}
