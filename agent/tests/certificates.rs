//! Certificates (docs/probes.md#certificates): real TLS servers on the
//! loopback with rcgen-made chains of known dates, probed by the real
//! client; the chain's problems named; and an agent whose probe sees a
//! certificate close to its expiry, on a paused clock, delivering the ticket
//! and then the page to a webhook receiver.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use slo_agent::clock::ManualClock;
use slo_agent::probe::{self, ProbeSpec, ProblemKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 2099-01-01T00:00:00Z: far enough that the real clock never passes it.
const Y2099_S: i64 = 4_070_908_800;
const DAY_MS: i64 = 86_400_000;

/// A certificate's names and dates, and who signs it.
struct Made {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

fn params(cn: &str, names: &[&str], not_after_year: i32, ca: bool) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2019, 1, 1);
    p.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
    if ca {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    } else {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    }
    p
}

fn self_signed(params: rcgen::CertificateParams) -> Made {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Made { params, key, cert }
}

fn signed(params: rcgen::CertificateParams, by: &Made) -> Made {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &rcgen::Issuer::from_params(&by.params, &by.key)).unwrap();
    Made { params, key, cert }
}

/// A TLS server on 127.0.0.1 presenting `chain` (leaf first), answering
/// every request `200 ok`; its `https://localhost:<port>/` URL.
async fn site(chain: &[&Made]) -> String {
    let certs: Vec<CertificateDer<'static>> = chain.iter().map(|m| m.cert.der().clone()).collect();
    let key = PrivateKeyDer::from_pem_slice(chain[0].key.serialize_pem().as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}/")
}

fn ca_file(dir: &tempfile::TempDir, root: &Made) -> std::path::PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, root.cert.pem()).unwrap();
    path
}

fn spec(url: &str, ca: Option<std::path::PathBuf>) -> ProbeSpec {
    let mut s = ProbeSpec::new(url::Url::parse(url).unwrap());
    s.retries = 0;
    s.timeout = Duration::from_secs(5);
    s.tls.ca_file = ca;
    s
}

/// The kinds and texts of the last attempt's chain problems.
fn problems(o: &probe::Outcome) -> Vec<(ProblemKind, String)> {
    let tls = o.last().tls.as_ref().expect("a chain was received");
    tls.problems.iter().map(|p| (p.kind, p.text.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_chain_has_no_problems_and_its_expiry_is_the_earliest() {
    let dir = tempfile::tempdir().unwrap();
    let root = self_signed(params("certs test root", &[], 2100, true));
    let inter = signed(params("certs test intermediate", &[], 2099, true), &root);
    let leaf = signed(params("localhost", &["localhost"], 2099, false), &inter);
    let url = site(&[&leaf, &inter]).await;
    let o = probe::run(&spec(&url, Some(ca_file(&dir, &root)))).await;
    assert!(o.success, "{:?}", o.last().reasons());
    assert_eq!(problems(&o), []);
    assert_eq!(o.last().tls.as_ref().unwrap().earliest_expiry(), Some(Y2099_S));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_intermediate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = self_signed(params("certs test root", &[], 2100, true));
    let inter = signed(params("certs test intermediate", &[], 2020, true), &root);
    let leaf = signed(params("localhost", &["localhost"], 2099, false), &inter);
    let url = site(&[&leaf, &inter]).await;
    let o = probe::run(&spec(&url, Some(ca_file(&dir, &root)))).await;
    assert!(!o.success);
    let p = problems(&o);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, ProblemKind::Expired);
    assert_eq!(
        p[0].1, "the intermediate certificate (CN=certs test intermediate) expired at 2020-01-01T00:00:00Z",
        "{p:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_name_is_a_name_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = self_signed(params("certs test root", &[], 2100, true));
    let leaf = signed(params("shop.example", &["shop.example", "www.shop.example"], 2099, false), &root);
    let url = site(&[&leaf]).await;
    let o = probe::run(&spec(&url, Some(ca_file(&dir, &root)))).await;
    assert!(!o.success);
    assert_eq!(
        problems(&o),
        [(
            ProblemKind::NameMismatch,
            "the leaf certificate (CN=shop.example) is not valid for `localhost` (its names: shop.example,www.shop.example)"
                .to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_leaf_is_self_signed_unless_trusted() {
    let leaf = self_signed(params("localhost", &["localhost"], 2099, false));
    let url = site(&[&leaf]).await;
    let o = probe::run(&spec(&url, None)).await;
    assert!(!o.success);
    assert_eq!(
        problems(&o),
        [(ProblemKind::SelfSigned, "the leaf certificate (CN=localhost) is self-signed and not trusted".to_string())]
    );
    // With the probe's JSON (`slo-agent probe --json`) carrying them.
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["attempts"][0]["tls"]["problems"][0]["kind"], "self_signed", "{json}");
    // Trusted through ca_file: no problem.
    let dir = tempfile::tempdir().unwrap();
    let o = probe::run(&spec(&url, Some(ca_file(&dir, &leaf)))).await;
    assert!(o.success, "{:?}", o.last().reasons());
    assert_eq!(problems(&o), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_issuer_and_the_problem_gauge() {
    let root = self_signed(params("certs test root", &[], 2100, true));
    let leaf = signed(params("localhost", &["localhost"], 2099, false), &root);
    let url = site(&[&leaf]).await;
    let o = probe::run(&spec(&url, None)).await;
    let p = problems(&o);
    assert_eq!(p.iter().map(|x| x.0).collect::<Vec<_>>(), [ProblemKind::UnknownIssuer], "{p:?}");
    let text = probe::metrics::render_all_at(std::slice::from_ref(&o), (Y2099_S - 10 * 86_400) * 1000);
    let l = r#"probe="localhost",hop="direct",region="local""#;
    assert!(text.contains(&format!("slo_agent_cert_problem{{{l},problem=\"unknown_issuer\"}} 1\n")), "{text}");
    assert!(text.contains(&format!("slo_agent_cert_problem{{{l},problem=\"expired\"}} 0\n")), "{text}");
    assert!(text.contains(&format!("slo_agent_cert_expiry_remaining_seconds{{{l}}} 864000\n")), "{text}");
}

type Inbox = Arc<Mutex<Vec<serde_json::Value>>>;

/// A webhook receiver keeping every notification it gets.
async fn receiver(inbox: Inbox) -> SocketAddr {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let inbox = inbox.clone();
            async move {
                inbox.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or_default());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first notification whose first alert is of `kind`.
fn first_of(inbox: &Inbox, kind: &str) -> Option<serde_json::Value> {
    inbox.lock().unwrap().iter().find(|n| n["alerts"][0]["kind"] == kind).cloned()
}

/// The certificate alerts (kind, status) the receiver was told about.
fn told(inbox: &Inbox) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in inbox.lock().unwrap().iter() {
        for a in n["alerts"].as_array().into_iter().flatten() {
            out.push((a["kind"].as_str().unwrap_or("").to_string(), a["status"].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

#[test]
fn an_agent_on_a_paused_clock_tickets_then_pages_a_certificate_near_its_expiry() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = self_signed(params("certs test root", &[], 2100, true));
    let leaf = signed(params("localhost", &["localhost"], 2099, false), &root);
    let url = rt.block_on(site(&[&leaf]));
    std::fs::write(d.join("ca.pem"), root.cert.pem()).unwrap();
    let inbox: Inbox = Arc::default();
    let hook = rt.block_on(receiver(inbox.clone()));
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::write(
        d.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    let port = common::free_port();
    let yaml = format!(
        "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nregion: test\nsources:\n  - {{name: app, type: file, paths: [\"logs/*.log\"], format: ndjson}}\nnotify:\n  external_url: https://slo.example.com\n  receivers:\n    - {{name: hook, type: webhook, url: \"http://{hook}/hook\"}}\n  routes:\n    - {{receiver: hook, group_by: [slo, kind], group_wait: 0s, group_interval: 1s}}\ncertificates: {{runbook: \"https://runbooks.example/certificates\"}}\nprobes:\n  - name: shop\n    service: shop\n    interval: 1s\n    ca_file: ca.pem\n    hops:\n      - {{name: edge, url: \"{url}\"}}\n"
    );
    std::fs::write(d.join("agent.yaml"), yaml).unwrap();
    let config = slo_agent::config::load(&d.join("agent.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    // Twenty days before the leaf's not-after: below the ticket's 21 days.
    let not_after_ms = Y2099_S * 1000;
    let clock = ManualClock::new(not_after_ms - 20 * DAY_MS);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = rt.spawn(slo_agent::runtime::run(config, Arc::new(clock.clone()), async move {
        let _ = stopped.await;
    }));

    let ticket = wait_for("the ticket", || first_of(&inbox, "certificate_ticket"));
    let a = &ticket["alerts"][0];
    assert_eq!(a["status"], "firing", "{ticket}");
    assert_eq!(a["severity"], "ticket");
    assert_eq!(a["slo"], "shop/edge");
    assert_eq!(a["dedup_key"], "slo-agent/shop/edge/certificate_ticket/1");
    assert_eq!((a["labels"]["probe"].as_str(), a["labels"]["hop"].as_str()), (Some("shop"), Some("edge")));
    assert_eq!(a["runbook"], "https://runbooks.example/certificates");
    let c = &a["certificate"];
    assert_eq!(c["subject"], "CN=localhost", "{ticket}");
    assert_eq!(c["not_after_ms"], not_after_ms);
    assert_eq!(c["days_left"], 20.0);
    assert_eq!(c["url"].as_str(), Some(url.as_str()));
    assert!(told(&inbox).iter().all(|(k, _)| k == "certificate_ticket"), "no page yet: {:?}", told(&inbox));

    // The alert in the API.
    let (status, alerts) = common::call(port, "GET", "/api/v1/alerts", None, "");
    assert_eq!(status, 200);
    let listed = alerts["alerts"].as_array().unwrap();
    let r = listed.iter().find(|r| r["kind"] == "certificate_ticket").expect("listed");
    assert_eq!((r["slo"].as_str(), r["phase"].as_str()), (Some("shop/edge"), Some("firing")));
    assert_eq!(r["certificate"]["days_left"], 20.0);

    // Seventeen days later (on the paused clock): below three days, a page.
    clock.set(not_after_ms - 2 * DAY_MS - 12 * 3_600_000);
    let page = wait_for("the page", || first_of(&inbox, "certificate_page"));
    let a = &page["alerts"][0];
    assert_eq!((a["severity"].as_str(), a["status"].as_str()), (Some("page"), Some("firing")));
    assert_eq!(a["certificate"]["days_left"], 2.5);
    assert_eq!(a["certificate"]["below_days"], 3.0);
    let m = common::http_get(port, "/metrics").unwrap();
    assert!(
        m.contains("slo_agent_cert_expiry_remaining_seconds{probe=\"shop\",hop=\"edge\",region=\"test\"} 216000\n"),
        "{m}"
    );
    // Once each: the receiver heard of one ticket and one page.
    std::thread::sleep(Duration::from_millis(500));
    let mut kinds = told(&inbox);
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            ("certificate_page".to_string(), "firing".to_string()),
            ("certificate_ticket".to_string(), "firing".to_string())
        ]
    );

    let _ = stop.send(());
    rt.block_on(agent).unwrap().unwrap();
}
