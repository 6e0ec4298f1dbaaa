//! Probes: one HTTP(S) request to an endpoint on a fresh connection, timed
//! phase by phase, checked against assertions, and reported with
//! blackbox_exporter's metric names (`docs/probes.md`).
//!
//! What it owns: the probe's description ([`ProbeSpec`]), running it
//! ([`run`]: DNS, TCP connect, TLS handshake, the request and the response,
//! redirects, retries) and its result ([`Outcome`]), which [`metrics`] renders
//! as `probe_*` series labelled `probe`, `hop` and `region`.
//!
//! The phases follow blackbox_exporter's `prober/http.go` so that both tools
//! report the same figures for the same request: `resolve` is the DNS lookup,
//! `connect` the TCP handshake, `tls` the TLS handshake, `processing` from
//! the connection being ready (after TLS) to the response head, `transfer`
//! from the response head to the end of the body. Over redirects each phase
//! is the sum of its parts. The request being written (`request_written`) is
//! measured too, as a part of `processing`, but is not a blackbox phase.
//!
//! Hand-written here rather than taken from a crate: the phase timing (no
//! Rust HTTP client exposes connect/TLS/first-byte instants on a fresh
//! connection; this is hyper's connection API on a socket we open), and the
//! JSON value check, which uses RFC 6901 JSON Pointers through
//! `serde_json::Value::pointer` instead of a JSONPath engine.
//!
//! **Architecture invariant:** a probe is bounded in every dimension: one
//! timeout over the whole attempt (DNS included), at most `max_redirects`
//! redirects, at most `max_body_bytes` of body read, at most `retries + 1`
//! attempts. It never logs header values or bodies (they may carry secrets).

pub mod assert;
mod client;
mod dns;
pub mod metrics;
mod tls;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use assert::{AssertionFailure, Assertions, HeaderMatch, JsonValueCheck, TlsExpectation};
pub use tls::chain_problems;

/// Which address family to connect over when a name has both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    Ip4,
    Ip6,
}

impl IpFamily {
    /// 4 or 6, as `probe_ip_protocol` reports it.
    pub fn number(self) -> u8 {
        match self {
            IpFamily::Ip4 => 4,
            IpFamily::Ip6 => 6,
        }
    }

    pub fn of(ip: IpAddr) -> IpFamily {
        if ip.is_ipv4() { IpFamily::Ip4 } else { IpFamily::Ip6 }
    }
}

/// Which HTTP versions the probe offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HttpVersion {
    /// Over TLS, ALPN `h2` then `http/1.1` (the server picks); in plaintext, HTTP/1.1.
    Auto,
    /// HTTP/1.1 only (ALPN `http/1.1`).
    Http1,
    /// HTTP/2 only: ALPN `h2` over TLS, prior knowledge (h2c) in plaintext.
    Http2,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (PEM), on top of the system roots and `SSL_CERT_FILE`.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (the chain is still read for its expiry).
    pub insecure_skip_verify: bool,
    /// The name sent in SNI and checked against the certificate; default the URL's host.
    pub server_name: Option<String>,
}

/// One probe: what to request and what to expect.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// The probe's name (label `probe`).
    pub name: String,
    /// The hop it measures, e.g. `cloudfront`, `apigateway`, `origin` (label `hop`).
    pub hop: String,
    /// Where the probe runs from (label `region`).
    pub region: String,
    pub url: url::Url,
    pub method: String,
    /// Request headers. Their values are never logged or printed.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub http_version: HttpVersion,
    /// The family tried first; default IPv4 (blackbox_exporter's default is IPv6).
    pub preferred_ip: IpFamily,
    /// Use the other family when the name has no address of the preferred one.
    pub ip_fallback: bool,
    /// The whole attempt, DNS to the end of the body, redirects included.
    pub timeout: Duration,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    /// Body bytes read at most; a longer body fails the probe.
    pub max_body_bytes: u64,
    pub tls: TlsOptions,
    pub assertions: Assertions,
    /// Attempts after a failed one before the probe counts as failed.
    pub retries: u32,
    /// Keep the final response's headers and body (at most `max_body_bytes`)
    /// in [`Attempt::response`], for a caller that reads them (a journey's
    /// extractions and cookies). Off by default: they may hold tokens.
    pub keep_response: bool,
}

impl ProbeSpec {
    /// A GET of `url` with the defaults: 2xx expected, redirects followed (at
    /// most 10), 10 s timeout, 10 MiB of body, IPv4 preferred, one retry.
    pub fn new(url: url::Url) -> ProbeSpec {
        let name = url.host_str().unwrap_or("probe").trim_matches(['[', ']']).to_string();
        ProbeSpec {
            name,
            hop: "direct".into(),
            region: "local".into(),
            url,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            http_version: HttpVersion::Auto,
            preferred_ip: IpFamily::Ip4,
            ip_fallback: true,
            timeout: Duration::from_secs(10),
            follow_redirects: true,
            max_redirects: 10,
            max_body_bytes: 10 << 20,
            tls: TlsOptions::default(),
            assertions: Assertions::default(),
            retries: 1,
            keep_response: false,
        }
    }
}

/// The time spent in each phase, summed over redirects (blackbox's
/// `probe_http_duration_seconds{phase}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Phases {
    #[serde(serialize_with = "secs")]
    pub resolve: Duration,
    #[serde(serialize_with = "secs")]
    pub connect: Duration,
    #[serde(serialize_with = "secs")]
    pub tls: Duration,
    /// From the connection being ready to the response head.
    #[serde(serialize_with = "secs")]
    pub processing: Duration,
    /// From the response head to the end of the body.
    #[serde(serialize_with = "secs")]
    pub transfer: Duration,
}

impl Phases {
    pub fn named(&self) -> [(&'static str, Duration); 5] {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
        ]
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// One certificate the server presented.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerCertificate {
    pub subject: String,
    pub issuer: String,
    /// Not-after, seconds since the epoch; `None` when the certificate could not be read.
    pub not_after: Option<i64>,
    /// Not-before, seconds since the epoch; `None` when the certificate could not be read.
    pub not_before: Option<i64>,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint_sha256: String,
    /// Subject alternative names (DNS names and IP addresses), comma-separated.
    pub subject_alternative: String,
}

/// What the TLS handshake gave: negotiated parameters and the peer's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// `TLS 1.2` or `TLS 1.3` (blackbox's spelling); empty when the handshake failed.
    pub version: String,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<String>,
    /// Whether the chain was verified against the trusted roots.
    pub verified: bool,
    /// The presented chain, leaf first.
    pub chain: Vec<PeerCertificate>,
    /// What is wrong with the chain, as seen at the handshake (empty when
    /// nothing is). Reported also when verification is skipped
    /// (`insecure_skip_verify`), except `unknown_issuer`, which needs it.
    pub problems: Vec<ChainProblem>,
}

/// What can be wrong with a presented chain: a bounded set, so it can be a
/// metric label (`slo_agent_cert_problem{problem}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A certificate of the chain (leaf or intermediate) is past its not-after.
    Expired,
    /// A certificate of the chain is before its not-before.
    NotYetValid,
    /// The leaf is not valid for the name the probe asked for.
    NameMismatch,
    /// The leaf is its own issuer and is not trusted (add it to `ca_file`,
    /// or say `certificates: {self_signed: true}`).
    SelfSigned,
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// Verification failed for another reason (rustls's, in the text).
    VerificationFailed,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 6] = [
        ProblemKind::Expired,
        ProblemKind::NotYetValid,
        ProblemKind::NameMismatch,
        ProblemKind::SelfSigned,
        ProblemKind::UnknownIssuer,
        ProblemKind::VerificationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Expired => "expired",
            ProblemKind::NotYetValid => "not_yet_valid",
            ProblemKind::NameMismatch => "name_mismatch",
            ProblemKind::SelfSigned => "self_signed",
            ProblemKind::UnknownIssuer => "unknown_issuer",
            ProblemKind::VerificationFailed => "verification_failed",
        }
    }
}

/// One problem of a presented chain: its kind and what it is, in words
/// (naming the certificate: leaf or intermediate, with its subject).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainProblem {
    pub kind: ProblemKind,
    pub text: String,
}

impl TlsInfo {
    /// The earliest not-after in the presented chain (`probe_ssl_earliest_cert_expiry`).
    pub fn earliest_expiry(&self) -> Option<i64> {
        self.chain.iter().filter_map(|c| c.not_after).min()
    }

    /// The earliest not-after of the verified chain (`probe_ssl_last_chain_expiry_timestamp_seconds`).
    /// rustls does not hand out the chain it built, so this is the presented
    /// chain's, and only when it verified; a trust anchor that expires before
    /// every presented certificate is not seen.
    pub fn last_chain_expiry(&self) -> Option<i64> {
        if self.verified { self.earliest_expiry() } else { None }
    }
}

/// Why a request did not complete. Its text is the probe's failure reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum RequestFailure {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("DNS: {0}")]
    Resolve(String),
    #[error("connect to {0}")]
    Connect(String),
    #[error("TLS handshake: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(u64),
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("timed out after {timeout_ms} ms during {phase}")]
    Timeout { phase: &'static str, timeout_ms: u128 },
}

/// One try of the probe.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Attempt {
    /// From the start of DNS to the end of the last body (or the failure).
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub phases: Phases,
    /// The first DNS lookup (`probe_dns_lookup_time_seconds`).
    #[serde(serialize_with = "secs")]
    pub dns_lookup: Duration,
    /// From the connection being ready to the last request byte handed to the
    /// socket, for the final request; part of `processing`.
    #[serde(serialize_with = "opt_secs")]
    pub request_written: Option<Duration>,
    /// The address connected to on the first request.
    pub ip: Option<IpAddr>,
    /// The final response's status.
    pub status: Option<u16>,
    /// `HTTP/1.1` or `HTTP/2.0`, as blackbox spells it.
    pub http_version: Option<String>,
    /// The final response's `Content-Length`, -1 when it had none.
    pub content_length: i64,
    /// Body bytes read from the final response.
    pub body_bytes: u64,
    pub redirects: u32,
    /// The final URL (after redirects) was https.
    pub ssl: bool,
    /// The final connection's TLS, or the chain received before a failed handshake.
    pub tls: Option<TlsInfo>,
    /// The final response's `Last-Modified`, seconds since the epoch.
    pub last_modified: Option<i64>,
    pub failure: Option<RequestFailure>,
    pub failed_assertions: Vec<AssertionFailure>,
    /// The final response's headers and body, when [`ProbeSpec::keep_response`]
    /// asked for them. Never serialized (they may hold tokens or cookies).
    #[serde(skip)]
    pub response: Option<KeptResponse>,
}

/// The final response's headers and body, kept for the caller.
///
/// Its `Debug` shows header names and the body's length only, so a kept
/// response that reaches a log or a panic message carries no secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeptResponse {
    /// The URL that answered (after redirects): whose cookies these are.
    pub url: String,
    /// Names lower case, in the order received (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// At most the probe's `max_body_bytes`.
    pub body: Vec<u8>,
}

impl KeptResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lower case).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for KeptResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KeptResponse").field("headers", &names).field("body_bytes", &self.body.len()).finish()
    }
}

impl Attempt {
    pub fn success(&self) -> bool {
        self.failure.is_none() && self.failed_assertions.is_empty()
    }

    /// Every reason this attempt failed, in words.
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self.failure.iter().map(|f| f.to_string()).collect();
        out.extend(self.failed_assertions.iter().map(|a| a.to_string()));
        out
    }

    /// `probe_failed_due_to_regex`: a body or header regex failed.
    pub fn failed_due_to_regex(&self) -> bool {
        self.failed_assertions.iter().any(AssertionFailure::is_regex)
    }
}

/// The result of a probe: every attempt, the last one being the one that counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub probe: String,
    pub hop: String,
    pub region: String,
    pub url: String,
    pub success: bool,
    /// At least one; more when earlier ones failed and were retried.
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// The attempt whose result counts (the last one).
    pub fn last(&self) -> &Attempt {
        self.attempts.last().expect("an outcome holds at least one attempt (run makes one before returning)")
    }

    /// Attempts that failed and were retried.
    pub fn retries(&self) -> usize {
        self.attempts.len() - 1
    }
}

/// Runs the probe: one attempt, and up to `spec.retries` more while they fail.
pub async fn run(spec: &ProbeSpec) -> Outcome {
    // Reading the trust roots is file I/O: off the async workers, and
    // before the first attempt so that it is not timed as part of `tls`.
    let (options, eager) = (spec.tls.clone(), spec.url.scheme() == "https");
    let trust = match tokio::task::spawn_blocking(move || tls::Trust::load(&options, eager)).await {
        Ok(t) => t,
        Err(_) => tls::Trust::load(&spec.tls, false),
    };
    let resolver = dns::Resolver::system();
    let mut attempts = Vec::new();
    loop {
        let attempt = client::attempt(spec, &resolver, &trust).await;
        let ok = attempt.success();
        attempts.push(attempt);
        if ok || attempts.len() > spec.retries as usize {
            break;
        }
    }
    let success = attempts.last().is_some_and(Attempt::success);
    Outcome {
        probe: spec.name.clone(),
        hop: spec.hop.clone(),
        region: spec.region.clone(),
        url: spec.url.to_string(),
        success,
        attempts,
    }
}
