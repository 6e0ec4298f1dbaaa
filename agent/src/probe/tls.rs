//! The `tls` phase's configuration: which certificates are trusted, and a
//! verifier that keeps the chain the server presented, so its expiry is
//! reported whenever a certificate was received — also when verification
//! fails (an expired certificate is exactly when its expiry matters).
//!
//! Trusted: the system's roots (`rustls-native-certs`, which also reads
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`; read once per process), and the
//! probe's own `ca_file` (read again when it changes). One verifier per
//! `ca_file` is shared by every probe. The crate's rustls with the ring
//! provider, TLS 1.2 and 1.3.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest as _;

use super::{ChainProblem, HttpVersion, PeerCertificate, ProblemKind, TlsOptions};

/// The largest `ca_file` read.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// The system's roots, read once per process: parsing them costs
/// milliseconds of CPU, which a thousand probes a minute would pay each
/// time. A changed system store (or `SSL_CERT_FILE`) is read at the next
/// start; a probe's own `ca_file` is read again whenever it changes.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static NATIVE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    NATIVE.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// A `ca_file` as the cache knows it: its path, length and modification time.
type CaKey = Option<(std::path::PathBuf, u64, Option<std::time::SystemTime>)>;

/// Verifiers built, by `ca_file`; a handful (one per distinct `ca_file`),
/// at most [`MAX_VERIFIERS`].
static VERIFIERS: Mutex<Vec<(CaKey, Arc<WebPkiServerVerifier>)>> = Mutex::new(Vec::new());
const MAX_VERIFIERS: usize = 64;

/// The verifier for the system roots and `ca_file`, built once and shared
/// by every probe with the same `ca_file` (as long as the file is unchanged).
fn shared_verifier(
    ca_file: Option<&std::path::Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let key: CaKey = match ca_file {
        None => None,
        Some(path) => {
            let shown = path.display();
            let meta = std::fs::metadata(path).map_err(|e| format!("cannot read ca_file {shown}: {e}"))?;
            if meta.len() > MAX_CA_FILE_BYTES {
                return Err(format!("ca_file {shown} is larger than 1 MiB"));
            }
            Some((path.to_path_buf(), meta.len(), meta.modified().ok()))
        }
    };
    if let Some((_, v)) = VERIFIERS.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key) {
        return Ok(v.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read ca_file {shown}: {e}"))?;
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("ca_file {shown} is not PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("ca_file {shown} holds an unusable certificate: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("ca_file {shown} holds no certificate"));
        }
    }
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("no usable trust roots: {e}"))?;
    let mut cache = VERIFIERS.lock().unwrap_or_else(|e| e.into_inner());
    // A changed file replaces its old entry; the oldest goes when full.
    cache.retain(|(k, _)| k.as_ref().map(|k| &k.0) != key.as_ref().map(|k| &k.0));
    if cache.len() >= MAX_VERIFIERS {
        cache.remove(0);
    }
    cache.push((key, v.clone()));
    Ok(v)
}

/// The trust of one probe, loaded once and shared by its attempts.
pub(super) struct Trust {
    options: TlsOptions,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl Trust {
    /// Loads the roots now when `eager` (an https URL), so that reading them
    /// is not counted in the first handshake; else on first use (a redirect to https).
    pub(super) fn load(options: &TlsOptions, eager: bool) -> Trust {
        let trust = Trust {
            options: options.clone(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            verifier: OnceLock::new(),
        };
        if eager && !options.insecure_skip_verify {
            let _ = trust.verifier();
        }
        trust
    }

    fn verifier(&self) -> &Result<Arc<WebPkiServerVerifier>, String> {
        self.verifier.get_or_init(|| shared_verifier(self.options.ca_file.as_deref(), &self.provider))
    }

    /// A client configuration for one connection, and the slot its verifier
    /// fills with the presented chain.
    pub(super) fn client_config(&self, http: HttpVersion) -> Result<(rustls::ClientConfig, Arc<Recorded>), String> {
        let inner = if self.options.insecure_skip_verify { None } else { Some(self.verifier().clone()?) };
        let recorded = Arc::new(Recorded::default());
        let verifier =
            Arc::new(RecordingVerifier { inner, provider: self.provider.clone(), recorded: recorded.clone() });
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = match http {
            HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2 => vec![b"h2".to_vec()],
        };
        Ok((config, recorded))
    }

    pub(super) fn server_name(&self) -> Option<&str> {
        self.options.server_name.as_deref()
    }
}

/// What the verifier saw: the presented chain, whether it verified, and
/// what the checks said.
#[derive(Default)]
pub(super) struct Recorded {
    seen: Mutex<Option<Seen>>,
}

struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verified: bool,
    checks: Checks,
}

/// The verdicts a chain's problems are read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    /// The handshake's time, seconds since the epoch.
    pub now_s: i64,
    /// The name the leaf was checked against, and its verdict (`None` when
    /// the leaf could not be parsed for the check).
    pub name: Option<(String, bool)>,
    /// The verifier's verdict; `None` with `insecure_skip_verify`.
    pub verdict: Option<Result<(), rustls::Error>>,
}

impl Recorded {
    /// The chain (leaf first), whether it verified, and its problems.
    pub(super) fn take(&self) -> Option<(Vec<PeerCertificate>, bool, Vec<ChainProblem>)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let chain: Vec<PeerCertificate> = seen.chain.iter().map(|c| describe(c)).collect();
        let problems = chain_problems(&chain, &seen.checks);
        Some((chain, seen.verified, problems))
    }
}

/// Which certificate of the chain, in words: `the leaf certificate (CN=shop)`.
fn which(i: usize, c: &PeerCertificate) -> String {
    let role = if i == 0 { "leaf" } else { "intermediate" };
    if c.subject.is_empty() {
        format!("the {role} certificate")
    } else {
        format!("the {role} certificate ({})", c.subject)
    }
}

/// What is wrong with a presented chain (leaf first), from the verifier's
/// verdicts: every expired or not yet valid certificate by name, a name the
/// leaf is not valid for, a self-signed leaf that is not trusted, an
/// unknown issuer, and any other verification failure in rustls's words.
pub fn chain_problems(chain: &[PeerCertificate], checks: &Checks) -> Vec<ChainProblem> {
    let mut out = Vec::new();
    let mut add = |kind, text: String| out.push(ChainProblem { kind, text });
    for (i, c) in chain.iter().enumerate() {
        if let Some(t) = c.not_after.filter(|t| *t < checks.now_s) {
            add(ProblemKind::Expired, format!("{} expired at {}", which(i, c), crate::timefmt::rfc3339(t * 1000)));
        }
        if let Some(t) = c.not_before.filter(|t| *t > checks.now_s) {
            add(
                ProblemKind::NotYetValid,
                format!("{} is not valid before {}", which(i, c), crate::timefmt::rfc3339(t * 1000)),
            );
        }
    }
    if let (Some((name, false)), Some(leaf)) = (&checks.name, chain.first()) {
        let names = if leaf.subject_alternative.is_empty() { "none" } else { leaf.subject_alternative.as_str() };
        add(ProblemKind::NameMismatch, format!("{} is not valid for `{name}` (its names: {names})", which(0, leaf)));
    }
    let trusted = matches!(checks.verdict, Some(Ok(())));
    let self_signed = chain.first().is_some_and(|l| !l.subject.is_empty() && l.subject == l.issuer);
    if self_signed && !trusted {
        add(ProblemKind::SelfSigned, format!("{} is self-signed and not trusted", which(0, &chain[0])));
    }
    if let Some(Err(e)) = &checks.verdict {
        use rustls::CertificateError as C;
        match e {
            // Said above, with the certificate named.
            rustls::Error::InvalidCertificate(
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. }
                | C::NotValidForName
                | C::NotValidForNameContext { .. },
            ) => {}
            // Whatever a self-signed leaf fails with (no issuer; a root of the
            // same name but another key), being self-signed says why.
            _ if self_signed => {}
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
                let last = chain.last().map_or("", |c| c.issuer.as_str());
                add(
                    ProblemKind::UnknownIssuer,
                    format!("the chain does not lead to a trusted root (it ends at an issuer {last})"),
                );
            }
            other => add(ProblemKind::VerificationFailed, format!("verification failed: {other}")),
        }
    }
    out
}

#[derive(Debug)]
struct RecordingVerifier {
    /// `None`: `insecure_skip_verify`.
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    recorded: Arc<Recorded>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorded")
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Ok(ServerCertVerified::assertion()),
        };
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        let verified = self.inner.is_some() && verdict.is_ok();
        // The name is checked on its own: the verifier stops at the first
        // failure, and a self-signed leaf would hide a wrong name.
        let name = rustls::server::ParsedCertificate::try_from(end_entity).ok().map(|leaf| {
            (server_name.to_str().into_owned(), rustls::client::verify_server_name(&leaf, server_name).is_ok())
        });
        let checks = Checks {
            now_s: now.as_secs() as i64,
            name,
            verdict: self.inner.as_ref().map(|_| verdict.as_ref().map(|_| ()).map_err(Clone::clone)),
        };
        *self.recorded.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Seen { chain, verified, checks });
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A presented certificate in the probe's words; a certificate x509-parser
/// cannot read still counts, with what is known (its fingerprint).
fn describe(der: &CertificateDer<'_>) -> PeerCertificate {
    let fingerprint_sha256 = crate::secret::hex(&sha2::Sha256::digest(der.as_ref()));
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let mut sans = Vec::new();
            if let Ok(Some(ext)) = cert.subject_alternative_name() {
                for name in &ext.value.general_names {
                    match name {
                        x509_parser::extensions::GeneralName::DNSName(n) => sans.push((*n).to_string()),
                        x509_parser::extensions::GeneralName::IPAddress(b) => {
                            if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                sans.push(std::net::IpAddr::from(a).to_string());
                            } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                sans.push(std::net::IpAddr::from(a).to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
            PeerCertificate {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_after: Some(cert.validity().not_after.timestamp()),
                not_before: Some(cert.validity().not_before.timestamp()),
                fingerprint_sha256,
                subject_alternative: sans.join(","),
            }
        }
        Err(_) => PeerCertificate {
            subject: String::new(),
            issuer: String::new(),
            not_after: None,
            not_before: None,
            fingerprint_sha256,
            subject_alternative: String::new(),
        },
    }
}

/// blackbox's spelling of a TLS version.
pub(super) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}
