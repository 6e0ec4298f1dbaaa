//! Running the configured hop probes: each probe on its schedule
//! ([`super::schedule`]), its hops probed at the same moment (one task per
//! hop, so a slow hop does not delay the others' measurement), and the last
//! outcome of every hop kept for `/metrics` in blackbox_exporter's names
//! ([`crate::probe::metrics`]).
//!
//! Values read from files or the environment (headers such as an API key)
//! are read at each run and never logged: a hop whose value cannot be read
//! fails with that reason, without the value.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::schedule::{self, Job, Stats};
use super::{Expect, HttpVersion, IpFamily, JsonPath, PathStep, ProbeConfig, StatusMatch, SyntheticConfig, Target};
use crate::probe::assert::{Assertions, HeaderMatch, JsonValueCheck, Pattern, TlsExpectation};
use crate::probe::{Outcome, ProbeSpec};

/// Probe runs in flight at once, at most.
pub const MAX_CONCURRENT_RUNS: usize = 32;

/// The last outcome of every (probe, hop).
#[derive(Debug, Default)]
pub struct Results {
    last: RwLock<BTreeMap<(String, String), Outcome>>,
    pub stats: Arc<Stats>,
}

impl Results {
    /// Every hop's last outcome, in probe and hop order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    fn put(&self, o: Outcome) {
        self.last.write().unwrap_or_else(|e| e.into_inner()).insert((o.probe.clone(), o.hop.clone()), o);
    }
}

/// What certificate alerts read (`alert::certs`): every configured
/// endpoint (`<probe>/<hop>`), and for each whose last outcome received a
/// certificate, the chain, its problems and the probe's policy.
pub fn certificates(
    config: &SyntheticConfig,
    outcomes: &[Outcome],
) -> (Vec<crate::alert::certs::EndpointCertificates>, std::collections::BTreeSet<String>) {
    use crate::alert::certs::{EndpointCertificates, Problem, SeenCertificate, endpoint_key};
    let configured = config.probes.iter().flat_map(|p| p.hops.iter().map(|h| endpoint_key(&p.name, &h.name))).collect();
    let mut seen = Vec::new();
    for o in outcomes {
        let Some(p) = config.probes.iter().find(|p| p.name == o.probe) else { continue };
        let Some(tls) = o.last().tls.as_ref().filter(|t| !t.chain.is_empty()) else { continue };
        seen.push(EndpointCertificates {
            probe: o.probe.clone(),
            hop: o.hop.clone(),
            region: o.region.clone(),
            service: p.service.clone(),
            url: o.url.clone(),
            policy: p.certificates.clone(),
            chain: tls
                .chain
                .iter()
                .map(|c| SeenCertificate { subject: c.subject.clone(), not_after_ms: c.not_after.map(|t| t * 1000) })
                .collect(),
            problems: tls
                .problems
                .iter()
                .map(|p| Problem { kind: p.kind.as_str().to_string(), text: p.text.clone() })
                .collect(),
        });
    }
    (seen, configured)
}

/// A JSON path as the RFC 6901 pointer the probe client reads.
pub fn pointer(p: &JsonPath) -> String {
    p.steps
        .iter()
        .map(|s| match s {
            PathStep::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            PathStep::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// What the config expects, as the probe client checks it.
pub fn assertions(e: &Expect) -> Result<Assertions, String> {
    let patterns = |v: &[regex_lite::Regex]| v.iter().map(|r| Pattern::new(r.as_str())).collect::<Result<Vec<_>, _>>();
    Ok(Assertions {
        valid_status: match &e.status {
            StatusMatch::Success => Vec::new(),
            StatusMatch::Codes(c) => c.clone(),
        },
        body_must_match: patterns(&e.body_matches)?,
        body_must_not_match: patterns(&e.body_not_matches)?,
        headers: e
            .headers
            .iter()
            .map(|(name, r)| {
                Ok(HeaderMatch {
                    name: name.clone(),
                    pattern: Pattern::new(r.as_str())?,
                    must_match: true,
                    allow_missing: false,
                })
            })
            .collect::<Result<_, String>>()?,
        json: e.json.iter().map(|(p, v)| JsonValueCheck { pointer: pointer(p), expected: v.clone() }).collect(),
        http_versions: match e.http_version {
            None => Vec::new(),
            Some(HttpVersion::Http1) => vec!["HTTP/1.1".into()],
            Some(HttpVersion::Http2) => vec!["HTTP/2.0".into()],
        },
        tls: match e.tls {
            None => TlsExpectation::Any,
            Some(true) => TlsExpectation::Required,
            Some(false) => TlsExpectation::Forbidden,
        },
        latency_budget: e.latency,
    })
}

/// The probe client's spec for one hop of a probe; header values from files
/// or the environment are read now.
pub fn spec(p: &ProbeConfig, hop: &Target, region: &str) -> Result<ProbeSpec, String> {
    let url = url::Url::parse(&hop.url).map_err(|e| format!("URL {}: {e}", hop.url))?;
    let mut s = ProbeSpec::new(url);
    s.name = p.name.clone();
    s.hop = hop.name.clone();
    s.region = region.to_string();
    s.method = hop.method.clone();
    s.headers = hop
        .headers
        .iter()
        .map(|(k, t)| t.value().map(|v| (k.clone(), v)).map_err(|e| format!("header {k}: {e}")))
        .collect::<Result<_, _>>()?;
    let c = &p.connection;
    s.http_version = match c.http_version {
        None => crate::probe::HttpVersion::Auto,
        Some(HttpVersion::Http1) => crate::probe::HttpVersion::Http1,
        Some(HttpVersion::Http2) => crate::probe::HttpVersion::Http2,
    };
    s.preferred_ip = match c.ip_family {
        IpFamily::Ip4 => crate::probe::IpFamily::Ip4,
        IpFamily::Ip6 => crate::probe::IpFamily::Ip6,
    };
    s.ip_fallback = c.ip_fallback;
    s.timeout = c.timeout;
    s.follow_redirects = c.follow_redirects;
    s.tls.ca_file = c.ca_file.clone();
    s.tls.insecure_skip_verify = c.insecure_skip_verify;
    s.assertions = assertions(&hop.expect)?;
    s.retries = p.retries;
    Ok(s)
}

/// A failed outcome for a hop that could not even be set up.
fn not_run(p: &ProbeConfig, hop: &Target, region: &str, why: String) -> Outcome {
    Outcome {
        probe: p.name.clone(),
        hop: hop.name.clone(),
        region: region.to_string(),
        url: hop.url.clone(),
        success: false,
        attempts: vec![crate::probe::Attempt {
            failure: Some(crate::probe::RequestFailure::Url(why)),
            ..Default::default()
        }],
    }
}

/// One run of a probe: every hop at once.
pub async fn run_probe(p: &ProbeConfig, region: &str, results: &Results) {
    let mut tasks = Vec::new();
    for hop in &p.hops {
        match spec(p, hop, region) {
            Ok(s) => tasks.push(tokio::spawn(async move { crate::probe::run(&s).await })),
            Err(why) => results.put(not_run(p, hop, region, why)),
        }
    }
    for t in tasks {
        if let Ok(o) = t.await {
            if !o.success {
                tracing::debug!(probe = %o.probe, hop = %o.hop, reasons = ?o.last().reasons(), "probe failed");
            }
            results.put(o);
        }
    }
}

/// Run every configured probe until `stop` turns true.
pub async fn run(config: Arc<SyntheticConfig>, results: Arc<Results>, stop: tokio::sync::watch::Receiver<bool>) {
    if config.probes.is_empty() {
        return;
    }
    let jobs: Vec<Job> = config.probes.iter().map(|p| Job { name: p.name.clone(), interval: p.interval }).collect();
    let stats = results.stats.clone();
    let (c, r) = (config.clone(), results.clone());
    let run_one = move |i: usize| {
        let (c, r) = (c.clone(), r.clone());
        async move { run_probe(&c.probes[i], &c.region, &r).await }
    };
    schedule::run(jobs, MAX_CONCURRENT_RUNS, run_one, stats, stop).await;
}
