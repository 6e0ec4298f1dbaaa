//! Running the configured checks. Hop probes: each probe on its schedule
//! ([`super::schedule`]), its hops probed at the same moment (one task per
//! hop, so a slow hop does not delay the others' measurement), and the last
//! outcome of every hop kept for `/metrics` in blackbox_exporter's names
//! ([`crate::probe::metrics`]).
//!
//! Journeys ([`run_journeys`]): each on its schedule, one run walking its
//! steps ([`super::journey::run`]); the last run of every journey is kept
//! for `GET /api/v1/journeys` and `/metrics`, and every run is handed to an
//! [`OnRun`] hook (where the runtime turns runs into events). Journeys have
//! their own [`MAX_CONCURRENT_JOURNEYS`] slots beside the probes'
//! [`MAX_CONCURRENT_RUNS`], so long journeys (think time, slow steps) never
//! hold back the probes, and at most the sum of both is in flight.
//!
//! Values read from files or the environment (headers such as an API key)
//! are read at each run and never logged: a hop whose value cannot be read
//! fails with that reason, without the value.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::journey::JourneyRun;
use super::schedule::{self, Job, Stats};
use super::{
    Connection, Expect, HttpVersion, IpFamily, JsonPath, PathStep, ProbeConfig, StatusMatch, SyntheticConfig, Target,
};
use crate::clock::Clock;
use crate::probe::assert::{Assertions, HeaderMatch, JsonValueCheck, Pattern, TlsExpectation};
use crate::probe::{Outcome, ProbeSpec};

/// Probe runs in flight at once, at most.
pub const MAX_CONCURRENT_RUNS: usize = 32;
/// Journey runs in flight at once, at most (apart from the probes' slots).
pub const MAX_CONCURRENT_JOURNEYS: usize = 8;

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
    connect_as(&mut s, &p.connection);
    s.assertions = assertions(&hop.expect)?;
    s.retries = p.retries;
    Ok(s)
}

/// How the probe client connects for a probe or a journey's step.
pub fn connect_as(s: &mut ProbeSpec, c: &Connection) {
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

/// What is told of every finished journey run (the runtime turns runs into
/// events). Called on the run's task: it must not block.
pub type OnRun = Arc<dyn Fn(&JourneyRun) + Send + Sync>;

/// The last run of every journey.
#[derive(Debug, Default)]
pub struct JourneyResults {
    last: RwLock<BTreeMap<String, Arc<JourneyRun>>>,
    pub stats: Arc<Stats>,
}

impl JourneyResults {
    /// Every journey's last run, in name order; a journey appears after its first run.
    pub fn runs(&self) -> Vec<Arc<JourneyRun>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub fn put(&self, run: JourneyRun) {
        self.last.write().unwrap_or_else(|e| e.into_inner()).insert(run.name.clone(), Arc::new(run));
    }
}

/// Run every configured journey until `stop` turns true, keeping each
/// one's last run in `results` and handing every run to `on_run`.
pub async fn run_journeys(
    config: Arc<SyntheticConfig>,
    results: Arc<JourneyResults>,
    clock: Arc<dyn Clock>,
    on_run: OnRun,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    if config.journeys.is_empty() {
        return;
    }
    let jobs: Vec<Job> = config.journeys.iter().map(|j| Job { name: j.name.clone(), interval: j.interval }).collect();
    let stats = results.stats.clone();
    let run_one = move |i: usize| {
        let (c, r, clock, on_run) = (config.clone(), results.clone(), clock.clone(), on_run.clone());
        async move {
            let run = super::journey::run(&c.journeys[i], &c.region, clock.as_ref()).await;
            if let Some(step) = &run.failed_step {
                tracing::debug!(journey = %run.name, step = %step, "journey failed");
            }
            on_run(&run);
            r.put(run);
        }
    };
    schedule::run(jobs, MAX_CONCURRENT_JOURNEYS, run_one, stats, stop).await;
}
