//! The probe client against local HTTP and HTTPS servers written here, with
//! injected delays: each phase must show its delay (within max(2 ms, 10 %))
//! and the others must not. Also: HTTP/2 by ALPN, certificate expiry (from
//! a certificate made here with a known not-after, and from an expired one
//! that fails verification), named assertion failures, retries, refused
//! connections, redirects, `localhost`, and IPv6 loopback when the host has it.
//!
//! On loopback the kernel completes the TCP handshake before the server's
//! `accept`, so a slow accept is seen by the client in the next phase: the
//! TLS handshake over https, `processing` over http. Both are tested.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slo_agent::probe::{self, HttpVersion, Outcome, ProbeSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const MS: Duration = Duration::from_millis(1);

/// What the server answers: (status, extra headers, body) for the n-th request (from 0) and path.
type Respond = dyn Fn(usize, &str) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync;

#[derive(Clone, Copy, Default)]
struct Delays {
    /// After accept, before anything else.
    accept: Duration,
    /// After the ClientHello has arrived, before the server answers it.
    tls: Duration,
    /// After the request head, before the response head.
    first_byte: Duration,
    /// Between the first and second half of the body.
    body: Duration,
}

struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn ok_body(_: usize, _: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (200, vec![], "hello, probe\n".repeat(10))
}

/// An HTTP/1.1 server written by hand so each byte goes out when the test says.
async fn server(host: &str, tls: Option<tokio_rustls::TlsAcceptor>, delays: Delays, respond: Arc<Respond>) -> Server {
    let listener = TcpListener::bind(format!("{host}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (tls, respond, counter) = (tls.clone(), respond.clone(), counter.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delays.accept).await;
                match tls {
                    Some(acceptor) => {
                        tcp.readable().await.unwrap();
                        tokio::time::sleep(delays.tls).await;
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            answer(stream, delays, &*respond, &counter).await;
                        }
                    }
                    None => answer(tcp, delays, &*respond, &counter).await,
                }
            });
        }
    });
    let host = if addr.is_ipv6() { format!("[{}]", addr.ip()) } else { addr.ip().to_string() };
    Server { url: format!("{scheme}://{host}:{}/", addr.port()), hits }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, delays: Delays, respond: &Respond, hits: &AtomicUsize) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        assert!(head.len() < 65536, "request head too long");
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    let n = hits.fetch_add(1, Ordering::SeqCst);
    let (status, headers, body) = respond(n, &path);
    tokio::time::sleep(delays.first_byte).await;
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    // The client may be gone (a timeout, a body too large): errors end the answer.
    let half = body.len() / 2;
    let _ = async {
        s.write_all(out.as_bytes()).await?;
        s.write_all(&body.as_bytes()[..half]).await?;
        s.flush().await?;
        tokio::time::sleep(delays.body).await;
        s.write_all(&body.as_bytes()[half..]).await?;
        s.flush().await?;
        s.shutdown().await
    }
    .await;
}

struct Tls {
    dir: tempfile::TempDir,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Tls {
    fn new(not_after_year: i32, alpn: &[&[u8]]) -> Tls {
        let (ca, leaf, key) = common::certs::ca_and_leaf(&["localhost", "127.0.0.1", "::1"], not_after_year);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        Tls { dir, acceptor: common::certs::acceptor(&leaf, &key, alpn) }
    }

    fn spec(&self, url: &str) -> ProbeSpec {
        let mut spec = spec(url);
        spec.tls.ca_file = Some(self.dir.path().join("ca.pem"));
        spec
    }
}

fn spec(url: &str) -> ProbeSpec {
    let mut spec = ProbeSpec::new(url.parse().unwrap());
    spec.name = "shop".into();
    spec.hop = "origin".into();
    spec.region = "test".into();
    spec.retries = 0;
    spec
}

/// `got` is the injected delay plus at most max(2 ms, 10 %).
fn near(what: &str, got: Duration, want: Duration) -> Result<(), String> {
    let tolerance = (want / 10).max(2 * MS);
    if got + MS >= want && got <= want + tolerance {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {want:?} (+{tolerance:?})"))
    }
}

/// Phases other than the delayed one stay well under the delay.
fn small(what: &str, got: Duration) -> Result<(), String> {
    if got < 40 * MS { Ok(()) } else { Err(format!("{what}: {got:?} should hold no injected delay")) }
}

/// Runs the probe until `timing` holds, at most three times: on a loaded
/// machine (the whole suite in parallel on two cores) one run can be late;
/// a systematic error misses all three.
async fn timed(spec: &ProbeSpec, timing: impl Fn(&Outcome) -> Result<(), String>) -> Outcome {
    let mut misses = Vec::new();
    for _ in 0..3 {
        let o = probe::run(spec).await;
        check_ok(&o);
        match timing(&o) {
            Ok(()) => return o,
            Err(e) => misses.push(e),
        }
    }
    panic!("timing missed three times: {misses:#?}");
}

fn check_ok(o: &Outcome) {
    assert!(o.success, "probe failed: {:?}", o.last().reasons());
}

const DELAY: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_first_byte_is_processing() {
    let s = server("127.0.0.1", None, Delays { first_byte: DELAY, ..Delays::default() }, Arc::new(ok_body)).await;
    let o = timed(&spec(&s.url), |o| {
        let p = o.last().phases;
        near("processing", p.processing, DELAY)?;
        small("transfer", p.transfer)?;
        small("connect", p.connect)
    })
    .await;
    let p = o.last().phases;
    assert_eq!(p.tls, Duration::ZERO);
    assert_eq!(o.last().status, Some(200));
    assert_eq!(o.last().http_version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(o.last().body_bytes, 130);
    assert_eq!(o.last().content_length, 130);
    let written = o.last().request_written.expect("the request was written");
    assert!(written < p.processing, "the request is written before the response starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_transfer() {
    let s = server("127.0.0.1", None, Delays { body: DELAY, ..Delays::default() }, Arc::new(ok_body)).await;
    timed(&spec(&s.url), |o| {
        near("transfer", o.last().phases.transfer, DELAY)?;
        small("processing", o.last().phases.processing)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_accept_over_http_is_processing() {
    let s = server("127.0.0.1", None, Delays { accept: DELAY, ..Delays::default() }, Arc::new(ok_body)).await;
    timed(&spec(&s.url), |o| {
        near("processing", o.last().phases.processing, DELAY)?;
        small("connect", o.last().phases.connect)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_tls_and_slow_accept_over_https_are_tls() {
    let tls = Tls::new(2031, &[b"http/1.1"]);
    for delays in [Delays { tls: DELAY, ..Delays::default() }, Delays { accept: DELAY, ..Delays::default() }] {
        let s = server("127.0.0.1", Some(tls.acceptor.clone()), delays, Arc::new(ok_body)).await;
        let o = timed(&tls.spec(&s.url), |o| {
            let p = o.last().phases;
            near("tls", p.tls, DELAY)?;
            small("connect", p.connect)?;
            small("processing", p.processing)
        })
        .await;
        let info = o.last().tls.as_ref().expect("TLS info");
        assert!(info.verified);
        assert!(info.version == "TLS 1.3" || info.version == "TLS 1.2", "{}", info.version);
        assert!(!info.cipher.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_is_the_leafs_not_after() {
    let tls = Tls::new(2031, &[b"http/1.1"]);
    let s = server("127.0.0.1", Some(tls.acceptor.clone()), Delays::default(), Arc::new(ok_body)).await;
    let o = probe::run(&tls.spec(&s.url)).await;
    check_ok(&o);
    let info = o.last().tls.as_ref().unwrap();
    assert_eq!(info.earliest_expiry(), Some(1_924_992_000), "2031-01-01T00:00:00Z");
    let text = probe::metrics::render(&o);
    let l = r#"probe="shop",hop="origin",region="test""#;
    assert!(text.contains(&format!("probe_ssl_earliest_cert_expiry{{{l}}} 1924992000\n")), "{text}");
    assert!(text.contains(&format!("probe_ssl_last_chain_expiry_timestamp_seconds{{{l}}} 1924992000\n")), "{text}");
    assert!(text.contains(&format!("probe_http_ssl{{{l}}} 1\n")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_fails_and_its_expiry_is_still_reported() {
    let tls = Tls::new(2020, &[b"http/1.1"]);
    let s = server("127.0.0.1", Some(tls.acceptor.clone()), Delays::default(), Arc::new(ok_body)).await;
    let o = probe::run(&tls.spec(&s.url)).await;
    assert!(!o.success);
    let reasons = o.last().reasons().join("; ");
    assert!(reasons.contains("TLS handshake") && reasons.contains("xpired"), "{reasons}");
    let info = o.last().tls.as_ref().expect("the chain was received");
    assert!(!info.verified);
    assert_eq!(info.earliest_expiry(), Some(1_577_836_800));
    let text = probe::metrics::render(&o);
    assert!(text.contains("probe_ssl_earliest_cert_expiry{") && text.contains("} 1577836800\n"), "{text}");
    assert!(!text.contains("probe_ssl_last_chain_expiry_timestamp_seconds{"), "no verified chain:\n{text}");
    // The same with verification off: success, expiry reported.
    let mut insecure = tls.spec(&s.url);
    insecure.tls.insecure_skip_verify = true;
    let o = probe::run(&insecure).await;
    check_ok(&o);
    assert_eq!(o.last().tls.as_ref().unwrap().earliest_expiry(), Some(1_577_836_800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_fails_verification() {
    let tls = Tls::new(2031, &[b"http/1.1"]);
    let s = server("127.0.0.1", Some(tls.acceptor.clone()), Delays::default(), Arc::new(ok_body)).await;
    let o = probe::run(&spec(&s.url)).await;
    assert!(!o.success);
    let reasons = o.last().reasons().join("; ");
    assert!(reasons.contains("TLS handshake"), "{reasons}");
    assert_eq!(o.last().tls.as_ref().unwrap().earliest_expiry(), Some(1_924_992_000));
}

/// An HTTP/2 server (hyper), over TLS or in plaintext (h2c), answering after `first_byte`.
async fn h2_server(acceptor: Option<tokio_rustls::TlsAcceptor>, first_byte: Duration) -> String {
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    tokio::time::sleep(first_byte).await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        hyper::body::Bytes::from_static(b"{\"status\":\"ok\"}"),
                    )))
                });
                let builder = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                    }
                    None => {
                        let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    format!("{scheme}://localhost:{port}/health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_alpn_with_its_first_byte_delay() {
    let tls = Tls::new(2031, &[b"h2", b"http/1.1"]);
    let url = h2_server(Some(tls.acceptor.clone()), DELAY).await;
    let mut spec = tls.spec(&url);
    spec.assertions.http_versions = vec!["HTTP/2.0".into()];
    spec.assertions.json = vec![probe::JsonValueCheck { pointer: "/status".into(), expected: serde_json::json!("ok") }];
    let o = timed(&spec, |o| near("processing", o.last().phases.processing, DELAY)).await;
    let a = o.last();
    assert_eq!(a.http_version.as_deref(), Some("HTTP/2.0"));
    assert_eq!(a.tls.as_ref().unwrap().alpn.as_deref(), Some("h2"));
    assert!(
        probe::metrics::render(&o).contains("probe_http_version{probe=\"shop\",hop=\"origin\",region=\"test\"} 2\n")
    );
    // HTTP/1.1 only: the server offers h2 only, so no protocol is agreed and
    // hyper's HTTP/2 server refuses the HTTP/1.1 request.
    spec.http_version = HttpVersion::Http1;
    let o = probe::run(&spec).await;
    assert!(!o.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_in_plaintext_by_prior_knowledge() {
    let url = h2_server(None, Duration::ZERO).await;
    let mut spec = spec(&url);
    spec.http_version = HttpVersion::Http2;
    let o = probe::run(&spec).await;
    check_ok(&o);
    assert_eq!(o.last().http_version.as_deref(), Some("HTTP/2.0"));
    assert!(!o.last().ssl);
    // Offered HTTP/1.1, an HTTP/2-only server answers nothing usable.
    spec.http_version = HttpVersion::Auto;
    assert!(!probe::run(&spec).await.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_assertion_names_itself() {
    let s = server(
        "127.0.0.1",
        None,
        Delays::default(),
        Arc::new(|_, _| (503, vec![("x-cache", "Error from cloudfront".into())], "upstream down".into())),
    )
    .await;
    let mut spec = spec(&s.url);
    spec.assertions.valid_status = vec![200];
    spec.assertions.body_must_not_match = vec![probe::assert::Pattern::new("down").unwrap()];
    spec.assertions.latency_budget = Some(Duration::ZERO);
    let o = probe::run(&spec).await;
    assert!(!o.success);
    let reasons = o.last().reasons();
    assert_eq!(reasons[..2], ["status 503 not in [200]".to_string(), "body matches /down/".to_string()]);
    assert!(reasons[2].starts_with("latency ") && reasons[2].ends_with("over budget 0ms"), "{reasons:?}");
    let text = probe::metrics::render(&o);
    assert!(text.contains("probe_failed_due_to_regex{probe=\"shop\",hop=\"origin\",region=\"test\"} 1\n"));
    assert!(text.contains("probe_success{probe=\"shop\",hop=\"origin\",region=\"test\"} 0\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_counted_and_reported() {
    let s = server(
        "127.0.0.1",
        None,
        Delays::default(),
        Arc::new(|n, _| if n == 0 { (503, vec![], "cold".into()) } else { (200, vec![], "warm".into()) }),
    )
    .await;
    let mut spec = spec(&s.url);
    spec.retries = 1;
    let o = probe::run(&spec).await;
    check_ok(&o);
    assert_eq!(o.attempts.len(), 2);
    assert_eq!(o.retries(), 1);
    assert_eq!(o.attempts[0].reasons(), ["status 503 not 2xx"]);
    assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    assert!(
        probe::metrics::render(&o)
            .contains("slo_agent_probe_attempts{probe=\"shop\",hop=\"origin\",region=\"test\"} 2\n")
    );
    // With no retries the first failure counts.
    spec.retries = 0;
    let s2 = server("127.0.0.1", None, Delays::default(), Arc::new(|_, _| (503, vec![], String::new()))).await;
    spec.url = s2.url.parse().unwrap();
    let o = probe::run(&spec).await;
    assert!(!o.success);
    assert_eq!(o.attempts.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_with_its_reason() {
    // A port that was just free: bound, then closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut spec = spec(&format!("http://127.0.0.1:{port}/"));
    spec.retries = 1;
    let o = probe::run(&spec).await;
    assert!(!o.success);
    assert_eq!(o.attempts.len(), 2, "retried once");
    let reason = o.last().reasons().join("; ");
    assert!(reason.starts_with(&format!("connect to 127.0.0.1:{port}")) && reason.contains("refused"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_the_phase() {
    let s = server("127.0.0.1", None, Delays { first_byte: 2 * DELAY, ..Delays::default() }, Arc::new(ok_body)).await;
    let mut spec = spec(&s.url);
    spec.timeout = DELAY;
    let o = probe::run(&spec).await;
    assert!(!o.success);
    assert_eq!(o.last().reasons(), ["timed out after 200 ms during processing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_counted_and_summed() {
    let s = server(
        "127.0.0.1",
        None,
        Delays { first_byte: DELAY / 2, ..Delays::default() },
        Arc::new(|_, path| match path {
            "/" => (302, vec![("Location", "/next".into())], String::new()),
            "/next" => (301, vec![("Location", "/final".into())], String::new()),
            _ => (200, vec![], "here".into()),
        }),
    )
    .await;
    let o = timed(&spec(&s.url), |o| near("processing over three requests", o.last().phases.processing, 3 * DELAY / 2))
        .await;
    assert_eq!(o.last().redirects, 2);
    let mut capped = spec(&s.url);
    capped.max_redirects = 1;
    assert_eq!(probe::run(&capped).await.last().reasons(), ["more than 1 redirects"]);
    let mut not_followed = spec(&s.url);
    not_followed.follow_redirects = false;
    let o = probe::run(&not_followed).await;
    assert_eq!(o.last().reasons(), ["status 302 not 2xx"]);
}

/// The final response's headers and body are kept only when asked, never
/// serialized, and their `Debug` shows no value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_is_kept_only_when_asked() {
    let s = server(
        "127.0.0.1",
        None,
        Delays::default(),
        Arc::new(|_, path| match path {
            "/" => (302, vec![("Location", "/final".into())], String::new()),
            _ => (200, vec![("Set-Cookie", "session=s-secret-1".into())], "{\"token\": \"t-secret-2\"}".into()),
        }),
    )
    .await;
    assert!(probe::run(&spec(&s.url)).await.last().response.is_none(), "not asked, not kept");
    let mut asked = spec(&s.url);
    asked.keep_response = true;
    let o = probe::run(&asked).await;
    check_ok(&o);
    let r = o.last().response.as_ref().expect("asked, kept");
    assert!(r.url.ends_with("/final"), "the URL that answered: {}", r.url);
    assert_eq!(r.header("set-cookie"), Some("session=s-secret-1"));
    assert_eq!(r.body, br#"{"token": "t-secret-2"}"#);
    let shown = format!("{:?} {}", o, serde_json::to_string(&o).unwrap());
    assert!(!shown.contains("secret"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_is_bounded() {
    let s = server("127.0.0.1", None, Delays::default(), Arc::new(ok_body)).await;
    let mut spec = spec(&s.url);
    spec.max_body_bytes = 100;
    assert_eq!(probe::run(&spec).await.last().reasons(), ["body larger than 100 bytes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_resolves_through_the_hosts_file() {
    let s = server("127.0.0.1", None, Delays::default(), Arc::new(ok_body)).await;
    let url = s.url.replace("127.0.0.1", "localhost");
    let o = probe::run(&spec(&url)).await;
    check_ok(&o);
    assert_eq!(o.last().ip, Some("127.0.0.1".parse().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED ipv6_loopback: this host has no IPv6 loopback ([::1] cannot be bound)");
        return;
    }
    let tls = Tls::new(2031, &[b"http/1.1"]);
    let s = server(
        "[::1]",
        Some(tls.acceptor.clone()),
        Delays { first_byte: DELAY, ..Delays::default() },
        Arc::new(ok_body),
    )
    .await;
    assert!(s.url.starts_with("https://[::1]:"), "{}", s.url);
    let o = timed(&tls.spec(&s.url), |o| near("processing", o.last().phases.processing, DELAY)).await;
    let text = probe::metrics::render(&o);
    assert!(text.contains("probe_ip_protocol{probe=\"shop\",hop=\"origin\",region=\"test\"} 6\n"), "{text}");
}
