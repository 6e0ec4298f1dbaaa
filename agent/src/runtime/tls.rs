//! TLS on the API (`api.tls`): the rustls server configuration built from
//! the PEM files, and the reloader that builds it again when they change.
//!
//! The listener speaks TLS 1.2 and 1.3 and nothing else (set explicitly;
//! rustls implements nothing older), with ALPN `http/1.1`, through the ring
//! provider that reqwest's rustls already uses. Every accepted connection
//! takes the configuration current at that moment ([`ServerTls::acceptor`]);
//! a reload replaces it, so new connections get the new certificate and open
//! ones go on with the one they started with.
//!
//! The files are read again every `reload_interval` and compared by content
//! (SHA-256), not by modification time or inotify: the kubelet updates a
//! mounted Secret (cert-manager's renewals) by swapping a symlink. A changed
//! set that cannot be used — unreadable, not PEM, a key that does not belong
//! to the certificate, an unusable client CA — leaves the previous
//! configuration serving, and is reported once per change, not on every check.
//!
//! **Architecture invariant:** with `api.tls` set, nothing is served in
//! plaintext: the agent does not start without a usable certificate and key,
//! and a connection whose handshake fails gets no HTTP answer.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

use crate::auth::TlsConfig;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{TlsCertificateServed, TlsReloadRefused};

/// Why the TLS files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} `{path}`: {error}")]
    Unreadable { what: &'static str, path: String, error: std::io::Error },
    #[error("the {what} `{path}` {problem}")]
    Unusable { what: &'static str, path: String, problem: String },
    #[error("the key in `{key}` does not belong to the certificate in `{cert}`")]
    Mismatch { cert: String, key: String },
}

const CERT: &str = "certificate file (api.tls.cert_file)";
const KEY: &str = "key file (api.tls.key_file)";
const CLIENT_CA: &str = "client CA file (api.tls.client_ca_file)";

/// The bytes of the files, as read at one check.
struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsFiles {
    fn digest(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for part in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()] {
            let bytes = part.map_or(&[][..], |b| b.as_slice());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        h.finalize().into()
    }
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// The largest PEM file read: a long chain or CA bundle is tens of KiB; a
/// path pointing at something endless must not be read forever.
const MAX_PEM_BYTES: u64 = 1 << 20;

async fn read(cfg: &TlsConfig) -> Result<TlsFiles, TlsError> {
    async fn one(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
        use tokio::io::AsyncReadExt as _;
        let unreadable = |error| TlsError::Unreadable { what, path: shown(path), error };
        let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let mut bytes = Vec::new();
        file.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes).await.map_err(unreadable)?;
        if bytes.len() as u64 > MAX_PEM_BYTES {
            return Err(TlsError::Unusable { what, path: shown(path), problem: "is larger than 1 MiB".into() });
        }
        Ok(bytes)
    }
    let cert = one(CERT, &cfg.cert_file).await?;
    let key = one(KEY, &cfg.key_file).await?;
    let client_ca = match &cfg.client_ca_file {
        Some(p) => Some(one(CLIENT_CA, p).await?),
        None => None,
    };
    Ok(TlsFiles { cert, key, client_ca })
}

/// A usable configuration and what it was built from.
pub struct Loaded {
    config: Arc<ServerConfig>,
    digest: [u8; 32],
    /// The serving certificate's not-after (ms since the epoch), when it could be read.
    not_after_ms: Option<i64>,
}

fn build(cfg: &TlsConfig, files: &TlsFiles) -> Result<Loaded, TlsError> {
    let unusable = |what, path: &Path, problem: String| TlsError::Unusable { what, path: shown(path), problem };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| unusable(CERT, &cfg.cert_file, format!("is not PEM: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(unusable(CERT, &cfg.cert_file, "holds no certificate (`BEGIN CERTIFICATE`)".into()));
    };
    let not_after_ms = x509_parser::parse_x509_certificate(leaf)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp().saturating_mul(1000));
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no private key (`BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)".into()
            }
            other => format!("is not a PEM private key: {other}"),
        };
        unusable(KEY, &cfg.key_file, problem)
    })?;
    // TLS 1.2 is the oldest version served; rustls has nothing older, and
    // saying so here keeps it true whatever rustls's defaults become.
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| unusable(CERT, &cfg.cert_file, format!("cannot be served: {e}")))?;
    let builder = match (&cfg.client_ca_file, &files.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| unusable(CLIENT_CA, path, format!("is not PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| unusable(CLIENT_CA, path, format!("holds an unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(unusable(CLIENT_CA, path, "holds no certificate (`BEGIN CERTIFICATE`)".into()));
            }
            // Requires a certificate from every client (no anonymous clients).
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| unusable(CLIENT_CA, path, format!("cannot verify clients: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::Mismatch { cert: shown(&cfg.cert_file), key: shown(&cfg.key_file) }
        }
        other => unusable(KEY, &cfg.key_file, format!("cannot be used with the certificate: {other}")),
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded { config: Arc::new(config), digest: files.digest(), not_after_ms })
}

/// Read and check the files at start: an error here stops the start, so the
/// agent never serves plaintext instead.
pub async fn load(cfg: &TlsConfig) -> Result<Loaded, TlsError> {
    build(cfg, &read(cfg).await?)
}

/// What the server accepts connections with: the configuration current now.
#[derive(Clone)]
pub struct ServerTls {
    current: tokio::sync::watch::Receiver<Arc<ServerConfig>>,
}

impl ServerTls {
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.borrow().clone())
    }
}

/// Reads the files again every `reload_interval`; see the module docs.
pub struct TlsReloader {
    cfg: TlsConfig,
    tx: tokio::sync::watch::Sender<Arc<ServerConfig>>,
    serving: [u8; 32],
    /// What the last refused change looked like, so it is reported once.
    refused: Option<[u8; 32]>,
    telemetry: Arc<Telemetry>,
}

/// Start serving `loaded`: the server's handle and the reloader to run.
pub fn start(cfg: &TlsConfig, loaded: Loaded, telemetry: Arc<Telemetry>) -> (ServerTls, TlsReloader) {
    TlsCertificateServed { reloaded: false, cert_file: &shown(&cfg.cert_file), not_after_ms: loaded.not_after_ms }
        .emit(&telemetry);
    let (tx, current) = tokio::sync::watch::channel(loaded.config);
    let reloader = TlsReloader { cfg: cfg.clone(), tx, serving: loaded.digest, refused: None, telemetry };
    (ServerTls { current }, reloader)
}

impl TlsReloader {
    /// Check every `reload_interval` until the server is gone.
    pub async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.cfg.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        while !self.tx.is_closed() {
            ticks.tick().await;
            self.check().await;
        }
    }

    /// One check: unchanged files do nothing; changed ones are served when
    /// usable, else reported (once for this content).
    pub async fn check(&mut self) {
        let files = read(&self.cfg).await;
        let seen = match &files {
            Ok(f) => f.digest(),
            Err(e) => sha2::Sha256::digest(e.to_string().as_bytes()).into(),
        };
        if seen == self.serving {
            // Back to what is served: a later bad change is news again.
            self.refused = None;
            return;
        }
        if self.refused == Some(seen) {
            return;
        }
        match files.and_then(|f| build(&self.cfg, &f)) {
            Ok(loaded) => {
                self.serving = loaded.digest;
                self.refused = None;
                let not_after_ms = loaded.not_after_ms;
                self.tx.send_replace(loaded.config);
                TlsCertificateServed { reloaded: true, cert_file: &shown(&self.cfg.cert_file), not_after_ms }
                    .emit(&self.telemetry);
            }
            Err(e) => {
                self.refused = Some(seen);
                TlsReloadRefused { error: &e.to_string() }.emit(&self.telemetry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::events::TLS_RELOADS;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn config(dir: &Path) -> TlsConfig {
        TlsConfig {
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
            client_ca_file: None,
            reload_interval: std::time::Duration::from_secs(30),
        }
    }

    fn write(dir: &Path, cert: &str, key: &str) {
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
    }

    async fn error(cfg: &TlsConfig) -> String {
        match load(cfg).await {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    /// Every way the files can be wrong at start is an error naming the file.
    #[tokio::test]
    async fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let d = dir.path().display();
        assert!(error(&cfg).await.starts_with(&format!("cannot read the {CERT} `{d}/tls.crt`")));
        let (cert, key) = pair("a.example");
        let (_, other_key) = pair("b.example");
        write(dir.path(), &cert, "garbage");
        assert_eq!(
            error(&cfg).await,
            format!(
                "the {KEY} `{d}/tls.key` holds no private key (`BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)"
            )
        );
        write(dir.path(), &key, &key);
        assert_eq!(error(&cfg).await, format!("the {CERT} `{d}/tls.crt` holds no certificate (`BEGIN CERTIFICATE`)"));
        write(dir.path(), &cert, &other_key);
        assert_eq!(
            error(&cfg).await,
            format!("the key in `{d}/tls.key` does not belong to the certificate in `{d}/tls.crt`")
        );
        let with_ca = TlsConfig { client_ca_file: Some(dir.path().join("ca.crt")), ..cfg.clone() };
        write(dir.path(), &cert, &key);
        std::fs::write(dir.path().join("ca.crt"), "").unwrap();
        assert_eq!(
            error(&with_ca).await,
            format!("the {CLIENT_CA} `{d}/ca.crt` holds no certificate (`BEGIN CERTIFICATE`)")
        );
        let loaded = load(&cfg).await.unwrap();
        assert_eq!(loaded.config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(loaded.not_after_ms.is_some());
    }

    /// A bad change is refused once (one error, however many checks see
    /// it); a good one replaces the configuration; going back and forth
    /// counts each change.
    #[tokio::test]
    async fn a_change_is_reported_once_and_a_good_one_served() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let (cert, key) = pair("a.example");
        write(dir.path(), &cert, &key);
        let telemetry = Arc::new(Telemetry::default());
        let (server, mut reloader) = start(&cfg, load(&cfg).await.unwrap(), telemetry.clone());
        let first = server.current.borrow().clone();
        let count = |result| telemetry.value(&TLS_RELOADS, &[("result", result)]);
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (0.0, 0.0));

        std::fs::write(dir.path().join("tls.key"), "garbage").unwrap();
        reloader.check().await;
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (0.0, 1.0));
        assert!(Arc::ptr_eq(&first, &server.current.borrow()), "the old pair still serves");

        let (cert2, key2) = pair("b.example");
        write(dir.path(), &cert2, &key2);
        reloader.check().await;
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (1.0, 1.0));
        assert!(!Arc::ptr_eq(&first, &server.current.borrow()));

        std::fs::remove_file(dir.path().join("tls.crt")).unwrap();
        reloader.check().await;
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (1.0, 2.0));
    }

    /// A new client CA file is a change too: served when usable, refused
    /// (the old verifier stays) when not.
    #[tokio::test]
    async fn a_changed_client_ca_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsConfig { client_ca_file: Some(dir.path().join("ca.crt")), ..config(dir.path()) };
        let (cert, key) = pair("a.example");
        write(dir.path(), &cert, &key);
        std::fs::write(dir.path().join("ca.crt"), pair("ca-1").0).unwrap();
        let telemetry = Arc::new(Telemetry::default());
        let (server, mut reloader) = start(&cfg, load(&cfg).await.unwrap(), telemetry.clone());
        let first = server.current.borrow().clone();
        let count = |result| telemetry.value(&TLS_RELOADS, &[("result", result)]);
        std::fs::write(dir.path().join("ca.crt"), pair("ca-2").0).unwrap();
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (1.0, 0.0));
        assert!(!Arc::ptr_eq(&first, &server.current.borrow()));
        std::fs::write(dir.path().join("ca.crt"), "not a certificate").unwrap();
        reloader.check().await;
        assert_eq!((count("ok"), count("error")), (1.0, 1.0));
    }
}
