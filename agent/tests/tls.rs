//! TLS on the API (`api.tls`) through the running binary: https with a
//! private CA, nothing in plaintext, certificate rotation without a restart
//! (and a broken rotation that keeps the old certificate), client
//! certificates, TLS 1.2 clients, and `slo-agent freeze check` over https.
//! Certificates are made here with rcgen; no key is kept in the repository.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPEC: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 28d\n  indicator: {source: ndjson, filter: {service: checkout}, good: {status: \"< 500\"}}\n";

/// A CA, and certificates it signs.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// (certificate PEM, key PEM) for `names`, valid until `not_after_year`-01-01.
    fn issue(&self, common_name: &str, names: &[&str], not_after_year: i32, client: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    }
}

struct Agent {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) {
    // As the kubelet does with a mounted Secret: new files, then a rename.
    for (name, text) in [("tls.crt", cert), ("tls.key", key)] {
        std::fs::write(dir.join(format!("{name}.new")), text).unwrap();
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
    }
}

/// An agent serving TLS with `pair`, requiring client certificates from
/// `client_ca_pem` when given.
fn start(ca: &Ca, pair: &(String, String), client_ca_pem: Option<&str>) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join("specs/slos.yaml"), SPEC).unwrap();
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    write_pair(dir.path(), pair);
    let mut tls_extra = String::new();
    if let Some(pem) = client_ca_pem {
        std::fs::write(dir.path().join("client-ca.crt"), pem).unwrap();
        tls_extra.push_str("    client_ca_file: client-ca.crt\n");
    }
    let port = common::free_port();
    let config = format!(
        "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\nhttp: {{header_read_timeout: 1s}}\napi:\n  tls:\n    cert_file: tls.crt\n    key_file: tls.key\n    reload_interval: 100ms\n{tls_extra}sources: []\n"
    );
    std::fs::write(dir.path().join("agent.yaml"), config).unwrap();
    let child = common::start(&dir.path().join("agent.yaml"));
    Agent { child, port, dir }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `ca_pem`, speaking only `versions`, presenting `identity`.
fn client(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&(String, String)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).map(Result::unwrap).collect();
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap()).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What an https `GET path` got: the server's certificate (DER) and the
/// whole answer (head and body), or the error.
#[derive(Debug)]
struct Got {
    peer: Vec<u8>,
    answer: String,
}

fn https_get(port: u16, config: Arc<rustls::ClientConfig>, path: &str) -> Result<Got, String> {
    rt().block_on(async move {
        let go = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
            let peer = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            // A peer that closes without close_notify ends the read with an
            // error; what it sent before counts.
            let read = tls.read_to_end(&mut buf).await;
            if buf.is_empty() {
                return Err(format!("no answer: {read:?}"));
            }
            Ok(Got { peer: peer.unwrap_or_default(), answer: String::from_utf8_lossy(&buf).into_owned() })
        };
        tokio::time::timeout(Duration::from_secs(5), go).await.map_err(|_| "timed out".to_string())?
    })
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn der(cert_pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap().to_vec()
}

fn metrics(port: u16, config: &Arc<rustls::ClientConfig>) -> String {
    https_get(port, config.clone(), "/metrics").unwrap().answer
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .env_remove("SLO_AGENT_URL")
        .env_remove("SLO_AGENT_TOKEN")
        .env_remove("SLO_AGENT_CA_FILE")
        .env_remove("SLO_AGENT_CERT_FILE")
        .env_remove("SLO_AGENT_KEY_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const NAMES: &[&str] = &["localhost", "127.0.0.1"];

#[test]
fn https_only_and_the_certificate_rotates_without_a_restart() {
    let ca = Ca::new("slo-agent test CA");
    let first = ca.issue("agent-1", NAMES, 2031, false);
    let mut a = start(&ca, &first, None);
    let tls13 = client(&ca.pem, &[&rustls::version::TLS13], None);
    wait("https", || https_get(a.port, tls13.clone(), "/healthz").is_ok());
    let got = https_get(a.port, tls13.clone(), "/healthz").unwrap();
    assert!(got.answer.starts_with("HTTP/1.1 200"), "{}", got.answer);
    assert!(got.answer.trim_end().ends_with("\r\n\r\nok"), "{}", got.answer);
    assert_eq!(got.peer, der(&first.0));

    // A client that speaks only TLS 1.2 is served too.
    let tls12 = client(&ca.pem, &[&rustls::version::TLS12], None);
    assert!(https_get(a.port, tls12, "/healthz").unwrap().answer.starts_with("HTTP/1.1 200"));

    // Plain HTTP on the same port gets no HTTP answer.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(!out.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&out));
    assert!(!String::from_utf8_lossy(&out).contains("ok"), "{out:?}");

    // A client that never starts its handshake holds one connection, not
    // the accept loop, and is closed after the header-read timeout.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    assert!(https_get(a.port, tls13.clone(), "/healthz").is_ok());
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(silent.read(&mut byte), Ok(0) | Err(_)), "closed");

    let m = metrics(a.port, &tls13);
    assert_eq!(common::metric(&m, "slo_agent_tls_handshake_failures_total{reason=\"timeout\"}"), Some(1.0));
    assert_eq!(common::metric(&m, "slo_agent_tls_certificate_expiry_timestamp_seconds"), Some(1_924_992_000.0));
    assert_eq!(common::metric(&m, "slo_agent_tls_reloads_total{result=\"ok\"}"), Some(0.0));
    assert_eq!(common::metric(&m, "slo_agent_tls_handshake_failures_total{reason=\"error\"}"), Some(1.0));

    // `freeze check` over https, trusting the private CA: an answer (0:
    // allowed, no data yet); without the CA, no answer (2).
    let url = format!("https://127.0.0.1:{}", a.port);
    let ca_file = a.dir.path().join("ca.crt");
    let ca_file = ca_file.to_str().unwrap();
    wait("the first evaluation", || {
        https_get(a.port, tls13.clone(), "/api/v1/freeze?service=checkout")
            .is_ok_and(|g| g.answer.starts_with("HTTP/1.1 200"))
    });
    let (code, out, err) = cli(&["freeze", "check", "--service", "checkout", "--url", &url, "--ca-file", ca_file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ALLOWED: checkout"), "{out}");
    let (code, _, err) = cli(&["freeze", "check", "--service", "checkout", "--url", &url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("certificate"), "{err}");

    // Rotation: new files, same process; a new connection sees the new certificate.
    let second = ca.issue("agent-2", NAMES, 2032, false);
    write_pair(a.dir.path(), &second);
    wait("the new certificate", || {
        https_get(a.port, tls13.clone(), "/healthz").is_ok_and(|g| g.peer == der(&second.0))
    });
    let m = metrics(a.port, &tls13);
    assert_eq!(common::metric(&m, "slo_agent_tls_reloads_total{result=\"ok\"}"), Some(1.0));
    assert_eq!(common::metric(&m, "slo_agent_tls_certificate_expiry_timestamp_seconds"), Some(1_956_528_000.0));

    // A broken rotation (a garbage key): the previous certificate keeps
    // serving, and the error is counted once.
    let third = ca.issue("agent-3", NAMES, 2033, false);
    write_pair(a.dir.path(), &(third.0.clone(), "garbage".into()));
    wait("the refused reload", || {
        common::metric(&metrics(a.port, &tls13), "slo_agent_tls_reloads_total{result=\"error\"}") == Some(1.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    let m = metrics(a.port, &tls13);
    assert_eq!(common::metric(&m, "slo_agent_tls_reloads_total{result=\"error\"}"), Some(1.0), "once per change");
    assert_eq!(https_get(a.port, tls13.clone(), "/healthz").unwrap().peer, der(&second.0));
    assert!(a.child.try_wait().unwrap().is_none(), "the agent never restarted");
}

#[test]
fn client_certificates_from_the_configured_ca_are_required() {
    let ca = Ca::new("slo-agent test CA");
    let clients = Ca::new("slo-agent client CA");
    let stranger = Ca::new("someone else's CA");
    let pair = ca.issue("agent", NAMES, 2031, false);
    let a = start(&ca, &pair, Some(&clients.pem));

    let ci = clients.issue("ci-runner", &["ci-runner"], 2031, true);
    let with_cert = client(&ca.pem, &[&rustls::version::TLS13, &rustls::version::TLS12], Some(&ci));
    wait("https with a client certificate", || https_get(a.port, with_cert.clone(), "/healthz").is_ok());
    assert!(https_get(a.port, with_cert.clone(), "/healthz").unwrap().answer.starts_with("HTTP/1.1 200"));

    // No client certificate, or one from another CA: no answer.
    for identity in [None, Some(stranger.issue("intruder", &["intruder"], 2031, true))] {
        let c = client(&ca.pem, &[&rustls::version::TLS13, &rustls::version::TLS12], identity.as_ref());
        let got = https_get(a.port, c, "/healthz");
        assert!(
            got.as_ref().is_err() || !got.as_ref().unwrap().answer.starts_with("HTTP/"),
            "{:?}",
            got.map(|g| g.answer)
        );
    }
    // Over TLS 1.2 the refusal comes in the handshake itself.
    let c = client(&ca.pem, &[&rustls::version::TLS12], None);
    assert!(https_get(a.port, c, "/healthz").unwrap_err().starts_with("handshake"));

    // The CLI presents a certificate with --cert-file/--key-file.
    std::fs::write(a.dir.path().join("ci.crt"), &ci.0).unwrap();
    std::fs::write(a.dir.path().join("ci.key"), &ci.1).unwrap();
    let path = |n: &str| a.dir.path().join(n).to_str().unwrap().to_string();
    let url = format!("https://127.0.0.1:{}", a.port);
    wait("the first evaluation", || {
        https_get(a.port, with_cert.clone(), "/api/v1/freeze?service=checkout")
            .is_ok_and(|g| g.answer.starts_with("HTTP/1.1 200"))
    });
    let base = ["freeze", "check", "--service", "checkout", "--url", &url];
    let (ca_file, ci_crt, ci_key) = (path("ca.crt"), path("ci.crt"), path("ci.key"));
    let with_ca = [&base[..], &["--ca-file", &ca_file]].concat();
    let (code, out, err) = cli(&[&with_ca[..], &["--cert-file", &ci_crt, "--key-file", &ci_key]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = cli(&with_ca);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&[&with_ca[..], &["--cert-file", &ci_crt]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--cert-file needs --key-file"), "{err}");
}

/// A key that does not belong to the certificate stops the start, with a
/// message naming both files; nothing listens.
#[test]
fn a_mismatched_key_stops_the_start() {
    let ca = Ca::new("slo-agent test CA");
    let (cert, _) = ca.issue("agent", NAMES, 2031, false);
    let (_, other_key) = ca.issue("other", NAMES, 2031, false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join("specs/slos.yaml"), SPEC).unwrap();
    write_pair(dir.path(), &(cert, other_key));
    let port = common::free_port();
    std::fs::write(
        dir.path().join("agent.yaml"),
        format!("specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\napi:\n  tls: {{cert_file: tls.crt, key_file: tls.key}}\nsources: []\n"),
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["run", "--config"])
        .arg(dir.path().join("agent.yaml"))
        .env("SLO_AGENT_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let d = dir.path().display();
    assert!(
        err.contains(&format!("api.tls: the key in `{d}/tls.key` does not belong to the certificate in `{d}/tls.crt`")),
        "{err}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.path().join("state.redb").exists(), "it stopped before opening the state file");
}
