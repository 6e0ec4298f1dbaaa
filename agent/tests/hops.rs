//! The hop decomposition through the running binary: CloudFront standard
//! logs (with `origin-fbl`), API Gateway JSON access logs (with the
//! integration's request id) and Lambda `REPORT` lines of one service, three
//! hours and more of a steady site and then ten minutes of a slow gateway;
//! `GET /api/v1/hops` must show every hop, what each adds, and blame the
//! gateway.
//!
//! The logs are written here, in the shapes AWS writes (see
//! `../shared/real-logs/`), with times relative to now.

mod common;

use std::io::{Read, Write};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

const SPEC: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-api}\nspec:\n  service: shop\n  objective: 99\n  window: 7d\n  indicator: {source: apigateway, good: {status: \"< 500\"}}\n";

struct Agent {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

fn rfc3339(ms: i64) -> String {
    slo_agent::timefmt::rfc3339(ms)
}

/// Minutes of logs, and the last ones with a slow gateway.
const MINUTES: i64 = 200;
const SLOW_MINUTES: i64 = 10;
const PER_MINUTE: i64 = 3;
/// Per request: the edge's own time, the gateway's, Lambda's overhead, the function.
const EDGE_MS: i64 = 20;
const GATEWAY_MS: i64 = 10;
const SLOW_GATEWAY_MS: i64 = 150;
const OVERHEAD_MS: i64 = 8;
const FUNCTION_MS: i64 = 60;

fn write_logs(dir: &std::path::Path, now: i64) {
    let mut cf = String::from(
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end origin-fbl origin-lbl\n",
    );
    let mut gw = String::new();
    let mut fun = String::new();
    for m in 0..MINUTES {
        let gateway = if m >= MINUTES - SLOW_MINUTES { SLOW_GATEWAY_MS } else { GATEWAY_MS };
        for k in 0..PER_MINUTE {
            let t = now - (MINUTES - 1 - m) * 60_000 - 20_000 + k * 1000;
            let n = m * PER_MINUTE + k;
            let id = format!("6f1d2c3b-0000-4000-8000-{n:012}");
            let integration = OVERHEAD_MS + FUNCTION_MS;
            let response = gateway + integration;
            let origin = response + 5;
            let taken = origin + EDGE_MS;
            let date = rfc3339(t);
            let (day, time) = (&date[..10], &date[11..19]);
            cf.push_str(&format!(
                "{day}\t{time}\tFRA56-P2\t612\t192.0.2.{}\tGET\td111111abcdef8.cloudfront.net\t/cart/{n}\t200\t-\tMozilla/5.0%20(X11;%20Linux%20x86_64)\t-\t-\tMiss\tEDGE{n:08}x==\tshop.example.com\thttps\t180\t{:.3}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t44321\t{:.3}\tMiss\tapplication/json\t120\t-\t-\t{:.3}\t{:.3}\n",
                n % 250,
                taken as f64 / 1000.0,
                taken as f64 / 1000.0,
                origin as f64 / 1000.0,
                origin as f64 / 1000.0 + 0.001,
            ));
            gw.push_str(&format!(
                "{{\"apiId\":\"d2zxhf2ieg\",\"extendedRequestId\":\"AyDBtGT_vHcEQ{n:03}=\",\"httpMethod\":\"GET\",\"integrationLatency\":\"{integration}\",\"integrationStatus\":\"200\",\"integration.requestId\":\"{id}\",\"path\":\"/prod/cart/{n}\",\"protocol\":\"HTTP/1.1\",\"requestId\":\"57021f9a-d6e4-441d-80b0-{n:012}\",\"requestTime\":\"-\",\"requestTimeEpoch\":\"{t}\",\"resourcePath\":\"/cart/{{cartId}}\",\"responseLatency\":\"{response}\",\"responseLength\":\"120\",\"sourceIp\":\"192.0.2.10\",\"stage\":\"prod\",\"status\":\"200\",\"userAgent\":\"Amazon CloudFront\"}}\n"
            ));
            let init = if n % 10 == 0 { "\tInit Duration: 250.00 ms" } else { "" };
            fun.push_str(&format!(
                "{} START RequestId: {id} Version: $LATEST\n{} END RequestId: {id}\n{} REPORT RequestId: {id}\tDuration: {FUNCTION_MS}.00 ms\tBilled Duration: {FUNCTION_MS} ms\tMemory Size: 128 MB\tMax Memory Used: 66 MB{init}\t\n",
                rfc3339(t - FUNCTION_MS),
                rfc3339(t),
                rfc3339(t),
            ));
        }
    }
    std::fs::write(dir.join("logs/cloudfront/E2EXAMPLE.2026-12-04-15.log"), cf).unwrap();
    std::fs::write(dir.join("logs/apigateway/access.log"), gw).unwrap();
    std::fs::write(dir.join("logs/lambda/shop-fn.log"), fun).unwrap();
}

fn start() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    for d in ["specs", "logs/cloudfront", "logs/apigateway", "logs/lambda"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join("specs/slos.yaml"), SPEC).unwrap();
    write_logs(dir.path(), now_ms());
    let port = common::free_port();
    // One service on all three sources: that is what ties the hops together.
    let config = format!(
        "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 100ms\nsources:\n  - {{name: gateway, type: file, paths: [\"logs/apigateway/*.log\"], format: apigateway, service: shop}}\n  - {{name: functions, type: file, paths: [\"logs/lambda/*.log\"], format: lambda, service: shop}}\n  - {{name: edge, type: file, paths: [\"logs/cloudfront/*.log\"], format: cloudfront, service: shop}}\n"
    );
    std::fs::write(dir.path().join("agent.yaml"), config).unwrap();
    let child = common::start(&dir.path().join("agent.yaml"));
    Agent { child, port, _dir: dir }
}

/// `GET path`: (status, JSON body).
fn get(port: u16, path: &str) -> Option<(u16, Value)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn hop<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["hops"].as_array().and_then(|h| h.iter().find(|h| h["name"] == name)).unwrap_or(&Value::Null)
}

#[track_caller]
fn near(v: &Value, want: i64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let want = want as f64;
    assert!((got - want).abs() <= want * 0.05 + 0.5, "{got} vs {want}");
}

#[test]
fn a_slow_gateway_is_blamed_from_the_logs() {
    let a = start();
    let path = "/api/v1/hops?service=shop&route=/cart/%7Bid%7D";
    let until = Instant::now() + Duration::from_secs(30);
    // Until every record is in: the function's invocations all joined.
    let answer = loop {
        if let Some((200, body)) = get(a.port, path)
            && body["joins"]["joined"] == MINUTES * PER_MINUTE
            && hop(&body, "edge")["count"].as_u64().is_some()
        {
            break body;
        }
        assert!(Instant::now() < until, "no full answer in time: {:?}", get(a.port, path));
        std::thread::sleep(Duration::from_millis(100));
    };
    let names: Vec<&str> = answer["hops"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["edge", "gateway", "lambda_overhead", "function", "cold_start"], "{answer:#}");
    assert_eq!((answer["window"].as_str(), answer["baseline"].as_str()), (Some("15m"), Some("3h")));
    assert_eq!(answer["route"], "/cart/{id}");

    near(&hop(&answer, "edge")["adds_ms"], EDGE_MS);
    near(&hop(&answer, "edge")["baseline_adds_ms"], EDGE_MS);
    // Ten of the window's fifteen minutes were slow: its median is the slow value.
    let gateway = hop(&answer, "gateway");
    near(&gateway["adds_ms"], SLOW_GATEWAY_MS);
    near(&gateway["p99_ms"], SLOW_GATEWAY_MS);
    near(&gateway["baseline_adds_ms"], GATEWAY_MS);
    assert_eq!(gateway["basis"], "measured");
    let overhead = hop(&answer, "lambda_overhead");
    assert_eq!(overhead["basis"], "joined");
    near(&overhead["adds_ms"], OVERHEAD_MS);
    near(&hop(&answer, "function")["p50_ms"], FUNCTION_MS);
    let cold = hop(&answer, "cold_start");
    assert!((cold["share"].as_f64().unwrap() - 0.1).abs() < 0.05, "{cold}");
    near(&cold["p50_ms"], 250);

    assert_eq!(answer["blame"], "gateway", "{answer:#}");
    assert!(answer["blame_reason"].as_str().unwrap().contains("gateway"), "{answer:#}");

    // A window of the steady hours only: nothing to blame.
    let (status, steady) = get(a.port, "/api/v1/hops?service=shop&window=30m&baseline=2h").unwrap();
    assert_eq!(status, 200, "{steady}");
    assert!(steady["route"].is_null());
    // Thirty minutes of which ten slow: the median is still the steady gateway.
    near(&hop(&steady, "gateway")["adds_ms"], GATEWAY_MS);
    assert!(steady["blame"].is_null(), "{steady:#}");

    // Refusals say what to do.
    assert_eq!(get(a.port, "/api/v1/hops").unwrap().0, 400);
    assert_eq!(get(a.port, "/api/v1/hops?service=shop&window=5h&baseline=3h").unwrap().0, 400);
    let (status, body) = get(a.port, "/api/v1/hops?probe=checkout").unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no probe"), "{body}");
    assert_eq!(get(a.port, "/api/v1/hops?service=nobody").unwrap().0, 404);
}
