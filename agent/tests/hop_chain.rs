//! A probe's hop chain against a local chain of three servers: an HTTPS
//! edge (a certificate made here, trusted through the probe's `ca_file`)
//! that forwards to an HTTP gateway that forwards to an HTTP function, each
//! with a delay and a failure the test injects. The probe runs (the
//! library's `run_probe`, with the times of the runs given, so a baseline
//! and a window an hour apart take seconds) must attribute an added delay
//! to the hop that added it, within 10 %, and name a failing hop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use slo_agent::clock::Clock;
use slo_agent::synthetic::run::{Results, run_probe};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What one hop does to each request: wait, then fail or forward.
#[derive(Default)]
struct Hop {
    delay_ms: AtomicU64,
    fail: AtomicBool,
}

/// A hop's server: answers after its delay, 502 when failing, else the
/// status of the next hop (or 200 for the last).
async fn hop_server(tls: Option<tokio_rustls::TlsAcceptor>, hop: Arc<Hop>, next: Option<String>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (tls, hop, next, client) = (tls.clone(), hop.clone(), next.clone(), client.clone());
            tokio::spawn(async move {
                match tls {
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            answer(s, &hop, next.as_deref(), &client).await
                        }
                    }
                    None => answer(tcp, &hop, next.as_deref(), &client).await,
                }
            });
        }
    });
    port
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, hop: &Hop, next: Option<&str>, client: &reqwest::Client) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    tokio::time::sleep(Duration::from_millis(hop.delay_ms.load(Ordering::SeqCst))).await;
    let status = if hop.fail.load(Ordering::SeqCst) {
        502
    } else if let Some(next) = next {
        match client.get(next).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 504,
        }
    } else {
        200
    };
    let body = "ok\n";
    let out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = s.write_all(out.as_bytes()).await;
    let _ = s.shutdown().await;
}

struct Chain {
    edge: Arc<Hop>,
    gateway: Arc<Hop>,
    function: Arc<Hop>,
    probe: slo_agent::synthetic::ProbeConfig,
    _dir: tempfile::TempDir,
}

async fn chain() -> Chain {
    let (ca, leaf, key) = common::certs::ca_and_leaf(&["localhost", "127.0.0.1"], 2040);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    std::fs::write(dir.path().join("slos.yaml"), "").unwrap();
    let (edge, gateway, function) = (Arc::new(Hop::default()), Arc::new(Hop::default()), Arc::new(Hop::default()));
    let f = hop_server(None, function.clone(), None).await;
    let g = hop_server(None, gateway.clone(), Some(format!("http://127.0.0.1:{f}/health"))).await;
    let e = hop_server(
        Some(common::certs::acceptor(&leaf, &key, &[])),
        edge.clone(),
        Some(format!("http://127.0.0.1:{g}/prod/health")),
    )
    .await;
    let yaml = format!(
        "specs: [slos.yaml]\nstate: state.redb\nregion: eu-west-1\nprobes:\n  - name: storefront\n    interval: 30s\n    retries: 0\n    ca_file: ca.pem\n    hops:\n      - {{name: edge, url: \"https://localhost:{e}/api/health\"}}\n      - {{name: gateway, url: \"http://127.0.0.1:{g}/prod/health\"}}\n      - {{name: function, url: \"http://127.0.0.1:{f}/health\"}}\n    expect: {{status: [200], latency: 2s}}\n"
    );
    let config = slo_agent::config::parse("agent.yaml", &yaml, dir.path()).unwrap_or_else(|d| panic!("{d:?}"));
    let probe = config.synthetic.probes[0].clone();
    Chain { edge, gateway, function, probe, _dir: dir }
}

const MINUTE_MS: i64 = 60_000;

/// `runs` runs of the probe, stamped from `start_ms` a second apart.
async fn runs(c: &Chain, results: &Results, start_ms: i64, runs: i64) {
    for k in 0..runs {
        let events = run_probe(&c.probe, "eu-west-1", results, start_ms + k * 1000).await;
        assert_eq!(events.len(), 3);
    }
}

fn figure(answer: &slo_agent::hops::answer::HopsAnswer, name: &str) -> slo_agent::hops::answer::HopFigures {
    answer.hops.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no {name} in {answer:?}")).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_delay_is_attributed_to_its_hop_within_ten_percent() {
    let c = chain().await;
    let results = Results::default();
    let now = slo_agent::clock::SystemClock.now_ms() / MINUTE_MS * MINUTE_MS;
    // The baseline, an hour ago: every hop quick.
    c.edge.delay_ms.store(5, Ordering::SeqCst);
    c.gateway.delay_ms.store(10, Ordering::SeqCst);
    c.function.delay_ms.store(20, Ordering::SeqCst);
    runs(&c, &results, now - 60 * MINUTE_MS, 12).await;
    // Now the gateway adds 150 ms.
    const ADDED: f64 = 150.0;
    c.gateway.delay_ms.store(10 + ADDED as u64, Ordering::SeqCst);
    runs(&c, &results, now - 2 * MINUTE_MS, 12).await;

    let a = results.chain_answer("storefront", now, 15, 180).expect("the probe ran");
    assert_eq!(a.hops.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["edge", "gateway", "function"]);
    assert_eq!(a.blame.as_deref(), Some("gateway"), "{a:#?}");
    for (name, added) in [("edge", 0.0), ("gateway", ADDED), ("function", 0.0)] {
        let f = figure(&a, name);
        let rise = f.adds_ms - f.baseline_adds_ms.expect("a baseline");
        // Within 10 % of the injected delay, where it was added and where it was not.
        assert!((rise - added).abs() <= ADDED * 0.1, "{name} rose {rise} ms, injected {added} at the gateway: {a:#?}");
        assert_eq!((f.count, f.failures), (12, Some(0)), "{f:?}");
    }
    // Every hop's latency includes the hops behind it.
    let (e, g, f) = (figure(&a, "edge"), figure(&a, "gateway"), figure(&a, "function"));
    assert!(e.p50_ms >= g.p50_ms && g.p50_ms >= f.p50_ms && f.p50_ms >= 20.0, "{a:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hop_is_named_and_its_events_are_bad() {
    let c = chain().await;
    let results = Results::default();
    let now = slo_agent::clock::SystemClock.now_ms() / MINUTE_MS * MINUTE_MS;
    c.function.fail.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for k in 0..4 {
        let events = run_probe(&c.probe, "eu-west-1", &results, now - MINUTE_MS + k * 1000).await;
        events.replay(&mut |e: &slo_agent::event::RequestEvent<'_>| {
            outcomes.push((e.hop.to_string(), e.status, e.outcome, e.service.to_string(), e.edge_location.to_string()))
        });
    }
    let a = results.chain_answer("storefront", now, 5, 60).unwrap();
    assert_eq!(a.blame.as_deref(), Some("function"), "{a:#?}");
    assert!(a.blame_reason.contains("innermost"), "{}", a.blame_reason);
    assert!(a.hops.iter().all(|h| h.failures == Some(4) && h.count == 0), "{a:#?}");
    // One event per hop and run: the 502 passed outwards, each one bad.
    assert_eq!(outcomes.len(), 12);
    for (hop, status, outcome, service, region) in &outcomes {
        assert_eq!((*status, *outcome), (502, slo_agent::event::Outcome::Error), "{hop}");
        assert_eq!((service.as_str(), region.as_str()), ("storefront", "eu-west-1"));
    }
    // The last outcome of each hop says why.
    let last = results.outcomes();
    assert!(last.iter().all(|o| !o.success && o.last().reasons()[0].contains("502")), "{last:?}");
}
