//! "Search ranking dropped — are the crawlers getting our pages?" in a
//! running agent (in-process, on a paused clock), through the real router:
//! Googlebot gets 503s on /products while browsers get 200s there. The
//! operators' status (`GET /api/v1/status`) shows the figures under the
//! shop's component; the public page (`/status`, `/status.json`) never does.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::call;
use slo_agent::clock::ManualClock;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;
const MINUTES: i64 = 120;

const GOOGLE: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const BING: &str = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0)";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";

fn line(ts: i64, client: &str, ua: &str, path: &str, status: u16, latency: u32) -> String {
    format!(
        "{{\"ts\":{ts},\"service\":\"shop\",\"method\":\"GET\",\"path\":\"{path}\",\"status\":{status},\"latency_ms\":{latency},\"client\":\"{client}\",\"user_agent\":\"{ua}\"}}\n"
    )
}

fn traffic() -> String {
    let mut log = String::new();
    for m in 0..MINUTES {
        let ts = T0 + m * MIN;
        for i in 0..10 {
            log.push_str(&line(ts + i * 1000, "browser", FIREFOX, &format!("/products/{i}"), 200, 40));
        }
        log.push_str(&line(ts + 100, "crawler", GOOGLE, &format!("/products/{m}"), 503, 1200));
        log.push_str(&line(ts + 200, "crawler", GOOGLE, "/about", 200, 60));
        log.push_str(&line(ts + 300, "crawler", BING, "/products/1", 200, 80));
        if m % 30 == 0 {
            log.push_str(&line(ts + 400, "crawler", GOOGLE, "/robots.txt", 200, 5));
        }
    }
    log
}

#[test]
fn googlebot_failing_on_products_while_browsers_succeed_shows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: shop}, good: {status: \"< 500\"}}\n---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: quiet-availability}\nspec:\n  service: quiet\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, filter: {service: quiet}, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    std::fs::write(d.join("logs/app.log"), traffic()).unwrap();
    let yaml = "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:0\ntick: 1h\npoll_interval: 20ms\nstatus:\n  components:\n    - {name: Shop, service: shop}\n    - {name: Quiet, service: quiet}\nsources:\n  - {name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}\n";
    let config = slo_agent::config::parse("agent.yaml", yaml, d).unwrap_or_else(|e| panic!("{e:?}"));
    let clock = ManualClock::new(T0 + MINUTES * MIN);
    let served = common::in_process(config, Arc::new(clock.clone()));
    let (agent, port) = (&served.agent, served.port);
    // Evaluate by hand until the whole log is counted.
    let want = (MINUTES * 13 + MINUTES / 30) as u64;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let snap = agent.evaluate();
        let counted: u64 = snap
            .crawlers
            .service("shop")
            .map(|s| {
                let w = &s.windows[0];
                w.crawlers.iter().map(|c| c.requests).sum::<u64>() + w.browsers.as_ref().map_or(0, |b| b.requests)
            })
            .unwrap_or(0);
        if counted >= want {
            break;
        }
        assert!(Instant::now() < until, "the log was not read: {counted} of {want}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, a) = call(port, "GET", "/api/v1/crawlers?service=shop", None, "");
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["service"], "shop");
    assert_eq!(a["at"], "2026-11-20T02:00:00Z");
    let windows = a["windows"].as_array().unwrap();
    assert_eq!(windows.iter().map(|w| w["window"].as_str().unwrap()).collect::<Vec<_>>(), ["1d", "7d"]);
    for w in windows {
        let google = w["crawlers"].as_array().unwrap().iter().find(|c| c["name"] == "Googlebot").expect("Googlebot");
        assert_eq!(google["requests"], 2 * MINUTES + MINUTES / 30, "{google}");
        let ratio = google["success_ratio"].as_f64().unwrap();
        assert!((0.5..0.52).contains(&ratio), "{ratio}");
        let products = google["by_prefix"].as_array().unwrap().iter().find(|p| p["prefix"] == "/products").unwrap();
        assert_eq!(products["requests"], MINUTES, "{products}");
        assert_eq!(products["5xx"], MINUTES, "{products}");
        assert_eq!(products["4xx"], 0, "{products}");
        assert_eq!(products["browser_success_ratio"], 1.0, "{products}");
        assert!(google["latency_ms"]["p99"].as_f64().unwrap() >= 1200.0, "{google}");
        assert_eq!(google["robots_txt"]["200"], MINUTES / 30, "{google}");
        let bing = w["crawlers"].as_array().unwrap().iter().find(|c| c["name"] == "Bingbot").expect("Bingbot");
        assert_eq!(bing["success_ratio"], 1.0);
        assert_eq!(w["browsers"]["requests"], 10 * MINUTES);
        assert_eq!(w["browsers"]["success_ratio"], 1.0);
    }

    // A service of the SLOs that saw no crawler: empty windows; unknown: 404; none: 400.
    let (status, quiet) = call(port, "GET", "/api/v1/crawlers?service=quiet", None, "");
    assert_eq!(status, 200, "{quiet}");
    assert_eq!(quiet["windows"][0]["crawlers"].as_array().unwrap().len(), 0);
    let (status, body) = call(port, "GET", "/api/v1/crawlers?service=nope", None, "");
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(port, "GET", "/api/v1/crawlers", None, "");
    assert_eq!(status, 400, "{body}");

    // The operators' status: each component's crawler figures (none seen for Quiet).
    let (status, ops) = call(port, "GET", "/api/v1/status", None, "");
    assert_eq!(status, 200, "{ops}");
    let shop = &ops["components"][0];
    assert_eq!(shop["name"], "Shop");
    assert_eq!(shop["internal"]["service"], "shop");
    assert_eq!(shop["internal"]["slos"], serde_json::json!(["shop-availability"]));
    let google = shop["internal"]["crawlers"]["windows"][0]["crawlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Googlebot")
        .expect("Googlebot under Shop");
    assert_eq!(google["requests"], 2 * MINUTES + MINUTES / 30);
    assert_eq!(ops["components"][1]["internal"]["crawlers"], serde_json::Value::Null);
    // The public page: the same components, no crawler, no service or SLO name.
    let (status, public) = call(port, "GET", "/status.json", None, "");
    assert_eq!(status, 200);
    for c in public["components"].as_array().unwrap() {
        let mut keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["days", "name", "status", "uptime_percent"], "{c}");
    }
    let html = raw_get(port, "/status");
    for text in [public.to_string(), html] {
        assert!(!text.to_lowercase().contains("crawler"), "crawlers on the public page");
        for internal in ["Googlebot", "Bingbot", "robots", "shop-availability", "\"shop\""] {
            assert!(!text.contains(internal), "{internal} on the public page");
        }
    }
    served.agent.stop(Instant::now() + Duration::from_secs(5));
}

/// The body of a GET, as text.
fn raw_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}
