//! Running the configured checks. Hop probes: each probe on its schedule
//! ([`super::schedule`]), its hops probed at the same moment (one task per
//! hop, so a slow hop does not delay the others' measurement), and the last
//! outcome of every hop kept for `/metrics` in blackbox_exporter's names
//! ([`crate::probe::metrics`]).
//!
//! Journeys ([`run_journeys`]): each on its schedule, one run walking its
//! steps ([`super::journey::run`]); the last run of every journey is kept
//! for `GET /api/v1/journeys` and `/metrics`, and the outcomes of its last
//! [`RECENT_RUNS`] runs for the status page's journey components. Journeys have
//! their own [`MAX_CONCURRENT_JOURNEYS`] slots beside the probes'
//! [`MAX_CONCURRENT_RUNS`], so long journeys (think time, slow steps) never
//! hold back the probes, and at most the sum of both is in flight.
//!
//! Each run's results become events (origin `synthetic`, [`super::events`])
//! that the state thread counts for the SLOs, and a trace
//! ([`super::trace`]); both leave through a [`Sink`] that never waits. Each
//! probe's hop chain keeps its recent latencies ([`ProbeChain`]).
//!
//! Values read from files or the environment (headers such as an API key)
//! are read at each run and never logged: a hop whose value cannot be read
//! fails with that reason, without the value.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::journey::JourneyRun;
use super::schedule::{self, Job, Stats};
use super::trace::RunTrace;
use super::{
    Connection, Expect, HttpVersion, IpFamily, JsonPath, PathStep, ProbeConfig, StatusMatch, SyntheticConfig, Target,
};
use crate::clock::Clock;
use crate::event::EventBatch;
use crate::hops::answer::HopsAnswer;
use crate::hops::chain::ProbeChain;
use crate::probe::assert::{Assertions, HeaderMatch, JsonValueCheck, Pattern, TlsExpectation};
use crate::probe::{Outcome, ProbeSpec};
use crate::telemetry::Telemetry;
use crate::telemetry::events::SyntheticEventsDropped;

/// Probe runs in flight at once, at most.
pub const MAX_CONCURRENT_RUNS: usize = 32;
/// Journey runs in flight at once, at most (apart from the probes' slots).
pub const MAX_CONCURRENT_JOURNEYS: usize = 8;

/// The last outcome of every (probe, hop), and every probe's recent hop
/// chain ([`ProbeChain`], for `GET /api/v1/hops?probe=`).
#[derive(Debug, Default)]
pub struct Results {
    last: RwLock<BTreeMap<(String, String), Outcome>>,
    chains: RwLock<BTreeMap<String, ProbeChain>>,
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

    /// The decomposition of probe `name`'s hop chain over `window` minutes
    /// ending at `at_ms`, against `baseline` minutes before; `None` when
    /// no probe of that name has run.
    pub fn chain_answer(&self, name: &str, at_ms: i64, window: i64, baseline: i64) -> Option<HopsAnswer> {
        let chains = self.chains.read().unwrap_or_else(|e| e.into_inner());
        chains.get(name).map(|c| c.answer(name, at_ms, window, baseline))
    }

    /// The names of the probes with a chain, for error messages.
    pub fn chain_names(&self) -> Vec<String> {
        self.chains.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    fn record_chain(&self, p: &ProbeConfig, ts_ms: i64, latencies: &[Option<f64>]) {
        let mut chains = self.chains.write().unwrap_or_else(|e| e.into_inner());
        let names = || p.hops.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        let chain = chains.entry(p.name.clone()).or_insert_with(|| ProbeChain::new(names()));
        if chain.hops() != names().as_slice() {
            // The config changed the chain: its history no longer lines up.
            *chain = ProbeChain::new(names());
        }
        chain.record(ts_ms, latencies);
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

/// What one run gives: its events (one per hop, [`super::events`]) and
/// its trace ([`super::trace`]).
pub struct Run {
    pub events: EventBatch,
    pub spans: Vec<opentelemetry_sdk::trace::SpanData>,
}

/// One run of a probe, started at `ts_ms` (wall clock): every hop at once,
/// each request carrying the run's `X-Amzn-Trace-Id`. Keeps each hop's
/// outcome and the chain's latencies.
pub async fn run_probe(p: &ProbeConfig, region: &str, results: &Results, ts_ms: i64) -> Run {
    let trace = RunTrace::new(ts_ms);
    let mut tasks = Vec::new();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; p.hops.len()];
    let clients: Vec<[u8; 8]> = p.hops.iter().map(|_| trace.span()).collect();
    for (i, hop) in p.hops.iter().enumerate() {
        match spec(p, hop, region) {
            Ok(mut s) => {
                if !s.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(super::trace::HEADER)) {
                    s.headers.push((super::trace::HEADER.to_string(), trace.header(clients[i])));
                }
                tasks.push((i, tokio::spawn(async move { crate::probe::run(&s).await })))
            }
            Err(why) => outcomes[i] = Some(not_run(p, hop, region, why)),
        }
    }
    for (i, t) in tasks {
        match t.await {
            Ok(o) => outcomes[i] = Some(o),
            Err(e) => outcomes[i] = Some(not_run(p, &p.hops[i], region, format!("the probe task failed: {e}"))),
        }
    }
    let mut events = EventBatch::new();
    let mut spans = Vec::new();
    let mut end = std::time::SystemTime::UNIX_EPOCH;
    let mut latencies = Vec::with_capacity(outcomes.len());
    let mut all_ok = true;
    for ((hop, o), client) in p.hops.iter().zip(outcomes.into_iter().flatten()).zip(&clients) {
        if !o.success {
            tracing::debug!(probe = %o.probe, hop = %o.hop, reasons = ?o.last().reasons(), "probe failed");
        }
        all_ok &= o.success;
        // A hop answered when only its latency budget failed: its time counts in the chain.
        let answered = super::events::outcome_of(&o) == crate::event::Outcome::Success;
        latencies.push(answered.then(|| o.last().duration.as_secs_f64() * 1e3));
        super::events::push_outcome(&mut events, &o, &p.service, &hop.method, ts_ms);
        let (hop_spans, hop_end) = super::trace::hop_spans(&trace, trace.root, *client, &o, &hop.method, ts_ms);
        spans.extend(hop_spans);
        end = end.max(hop_end);
        results.put(o);
    }
    let attributes = vec![
        opentelemetry::KeyValue::new("probe.name", p.name.clone()),
        opentelemetry::KeyValue::new("probe.region", region.to_string()),
    ];
    spans.insert(0, super::trace::root_span(&trace, format!("probe {}", p.name), ts_ms, end, all_ok, attributes));
    results.record_chain(p, ts_ms, &latencies);
    Run { events, spans }
}

/// Where runs go: their events to the state thread, their traces to the
/// exporter. Never waits: a full queue drops and counts.
#[derive(Debug, Clone)]
pub struct Sink {
    pub events: tokio::sync::mpsc::Sender<EventBatch>,
    pub tracer: Option<super::trace::Tracer>,
    pub telemetry: Arc<Telemetry>,
}

impl Sink {
    /// Send one run's events and spans.
    pub fn send(&self, check: &str, events: EventBatch, spans: Vec<opentelemetry_sdk::trace::SpanData>) {
        if !events.is_empty() && self.events.try_send(events).is_err() {
            SyntheticEventsDropped { check }.emit(&self.telemetry);
        }
        if let Some(t) = &self.tracer {
            t.send(spans);
        }
    }
}

/// Run every configured probe until `stop` turns true, handing each run's
/// events and trace to `sink`.
pub async fn run(
    config: Arc<SyntheticConfig>,
    results: Arc<Results>,
    sink: Sink,
    clock: Arc<dyn Clock>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    if config.probes.is_empty() {
        return;
    }
    let jobs: Vec<Job> = config.probes.iter().map(|p| Job { name: p.name.clone(), interval: p.interval }).collect();
    let stats = results.stats.clone();
    let (c, r) = (config.clone(), results.clone());
    let run_one = move |i: usize| {
        let (c, r, sink, clock) = (c.clone(), r.clone(), sink.clone(), clock.clone());
        async move { probe_once(&c, i, &r, &sink, clock.as_ref()).await }
    };
    schedule::run(jobs, MAX_CONCURRENT_RUNS, run_one, stats, stop).await;
}

/// Run the `i`th configured probe once now, handing its events and trace to `sink`.
pub async fn probe_once(c: &SyntheticConfig, i: usize, results: &Results, sink: &Sink, clock: &dyn Clock) {
    let Some(p) = c.probes.get(i) else { return };
    let run = run_probe(p, &c.region, results, clock.now_ms()).await;
    sink.send(&p.name, run.events, run.spans);
}

/// Run the `i`th configured journey once now, keep it in `results`, and hand
/// its events (per step and for the whole run, [`super::events::push_journey`])
/// and trace to `sink`.
pub async fn journey_once(c: &SyntheticConfig, i: usize, results: &JourneyResults, sink: &Sink, clock: &dyn Clock) {
    let Some(j) = c.journeys.get(i) else { return };
    let run = super::journey::run(j, &c.region, clock).await;
    if let Some(step) = &run.failed_step {
        tracing::debug!(journey = %run.name, step = %step, "journey failed");
    }
    let mut events = EventBatch::new();
    super::events::push_journey(&mut events, &run);
    let (name, spans) = (run.name.clone(), super::trace::journey_spans(&run));
    // Kept before its events are counted: an evaluation that sees
    // them also sees the run in `GET /api/v1/journeys`.
    results.put(run);
    sink.send(&name, events, spans);
}

/// Outcomes of a journey's recent runs kept (for the status page's rule).
pub const RECENT_RUNS: usize = 10;

/// The last run of every journey, and the outcomes of its recent runs.
#[derive(Debug, Default)]
pub struct JourneyResults {
    last: RwLock<BTreeMap<String, Arc<JourneyRun>>>,
    /// Per journey, `(started_ms, status)` of its last [`RECENT_RUNS`] runs, oldest first.
    recent: RwLock<BTreeMap<String, std::collections::VecDeque<(i64, super::journey::Status)>>>,
    /// Runs kept so far: what is shown changes when it does.
    generation: std::sync::atomic::AtomicU64,
    pub stats: Arc<Stats>,
}

impl JourneyResults {
    /// Every journey's last run, in name order; a journey appears after its first run.
    pub fn runs(&self) -> Vec<Arc<JourneyRun>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// `(started_ms, status)` of the journey's last [`RECENT_RUNS`] runs, newest first.
    pub fn recent(&self, name: &str) -> Vec<(i64, super::journey::Status)> {
        let recent = self.recent.read().unwrap_or_else(|e| e.into_inner());
        recent.get(name).map(|r| r.iter().rev().copied().collect()).unwrap_or_default()
    }

    /// How many runs were kept so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn put(&self, run: JourneyRun) {
        {
            let mut recent = self.recent.write().unwrap_or_else(|e| e.into_inner());
            let r = recent.entry(run.name.clone()).or_default();
            if r.len() == RECENT_RUNS {
                r.pop_front();
            }
            r.push_back((run.started_ms, run.status));
        }
        self.last.write().unwrap_or_else(|e| e.into_inner()).insert(run.name.clone(), Arc::new(run));
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Run every configured journey until `stop` turns true, keeping each
/// one's last run in `results` and handing its events (per step and for the
/// whole run, [`super::events::push_journey`]) and trace to `sink`.
pub async fn run_journeys(
    config: Arc<SyntheticConfig>,
    results: Arc<JourneyResults>,
    sink: Sink,
    clock: Arc<dyn Clock>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    if config.journeys.is_empty() {
        return;
    }
    let jobs: Vec<Job> = config.journeys.iter().map(|j| Job { name: j.name.clone(), interval: j.interval }).collect();
    let stats = results.stats.clone();
    let run_one = move |i: usize| {
        let (c, r, clock, sink) = (config.clone(), results.clone(), clock.clone(), sink.clone());
        async move { journey_once(&c, i, &r, &sink, clock.as_ref()).await }
    };
    schedule::run(jobs, MAX_CONCURRENT_JOURNEYS, run_one, stats, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::journey::{Status, example_run};

    #[test]
    fn a_journeys_recent_outcomes_are_bounded_and_newest_first() {
        let results = JourneyResults::default();
        assert!(results.recent("checkout").is_empty());
        for i in 0..(RECENT_RUNS as i64 + 2) {
            let mut run = example_run();
            run.started_ms = i;
            run.status = if i % 2 == 0 { Status::Ok } else { Status::Failed };
            results.put(run);
        }
        let recent = results.recent(&example_run().name);
        assert_eq!(recent.len(), RECENT_RUNS);
        assert_eq!(recent[0], (RECENT_RUNS as i64 + 1, Status::Failed), "newest first");
        assert_eq!(recent[RECENT_RUNS - 1].0, 2, "the two oldest are gone");
        assert_eq!(results.generation(), RECENT_RUNS as u64 + 2);
        assert_eq!(results.runs().len(), 1, "one last run per journey");
    }
}
