//! What the HTTP API needs: the latest evaluation, readiness, the store for
//! history and the audit log, silences, the push gate, and the agent's own
//! telemetry. The API defines it; the runtime builds it and keeps it up to
//! date. Handlers never see the runtime's own state.
//!
//! Lock order (take them in this order, never the other way):
//! `Book::writes` → `Book::set` (of the same book; no two books at once). Every other lock here is a
//! leaf, held for a copy or a lookup, never across I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::alert::AlertRecord;
use crate::auth::ApiAuth;
use crate::clock::Clock;
use crate::notify::silence::Silences;
use crate::sli::report::{Report, SloReport};
use crate::sli::ring::Counts;
use crate::sli::{Retention, SloStatus};
use crate::source::push::PushGate;
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::timefmt::rfc3339;

/// The latest evaluation, as HTTP handlers and exporters see it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at_ms: i64,
    pub statuses: Vec<SloStatus>,
    pub reports: Vec<SloReport>,
    /// Events counted per SLO since the agent started.
    pub counted: Vec<(String, Counts)>,
    pub rejected_lines: u64,
    /// Every alert's state after this evaluation.
    pub alerts: Vec<AlertRecord>,
    /// Where each SLO's retained data begins (what the store may prune).
    pub retention: Vec<Retention>,
    /// The deploy freeze of every service, decided at this evaluation.
    pub freeze: Arc<crate::freeze::Board>,
    /// What recent deploys cost (those within their SLOs' windows), newest first.
    pub deploys: Arc<Vec<crate::freeze::deploys::Impact>>,
    /// Every known service's outage verdict at this evaluation.
    pub outage: Arc<Vec<crate::outage::Assessment>>,
    /// Where requests' time went, hop by hop, per service, route and minute.
    pub hops: Arc<crate::hops::HopsView>,
    /// The live signals as of the last closed minute.
    pub signals: Arc<crate::signals::SignalsView>,
    /// Crawlers and browsers per service over the last day and week.
    pub crawlers: Arc<crate::crawlers::CrawlersView>,
    /// Quota and budget outlooks (renewed every few minutes).
    pub forecasts: Arc<crate::signals::forecasts::Forecasts>,
}

impl Snapshot {
    pub fn report(&self) -> Report {
        Report { at: rfc3339(self.at_ms), rejected_lines: self.rejected_lines, slos: self.reports.clone() }
    }
}

/// The latest snapshot: written once per evaluation, read by every request.
#[derive(Debug, Default)]
pub struct SnapshotCell(RwLock<Arc<Snapshot>>);

impl SnapshotCell {
    pub fn get(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, s: Snapshot) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }
}

/// Readiness: the agent is ready only while nothing says it cannot do its
/// job. Each part of the runtime sets or clears its own reason.
#[derive(Debug)]
pub struct Health {
    reasons: Mutex<BTreeMap<&'static str, String>>,
}

impl Default for Health {
    fn default() -> Self {
        Health { reasons: Mutex::new(BTreeMap::from([("state", "starting: state not restored yet".to_string())])) }
    }
}

impl Health {
    /// `part` cannot do its job, because of `reason`.
    pub fn not_ready(&self, part: &'static str, reason: impl Into<String>) {
        self.reasons.lock().unwrap_or_else(|e| e.into_inner()).insert(part, reason.into());
    }

    /// `part` is fine again.
    pub fn ready(&self, part: &'static str) {
        self.reasons.lock().unwrap_or_else(|e| e.into_inner()).remove(part);
    }

    pub fn is_ready(&self) -> bool {
        self.reasons.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Why not ready, one line per part.
    pub fn reasons(&self) -> Vec<String> {
        self.reasons.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(p, r)| format!("{p}: {r}")).collect()
    }
}

/// Records the API changes (silences, freeze overrides): a change is
/// committed to the store while `writes` is held (so changes do not race),
/// and only then put into `set`, which readers hold just for a lookup.
#[derive(Debug, Default)]
pub struct Book<T> {
    pub writes: Mutex<()>,
    pub set: RwLock<T>,
}

/// The silences the dispatcher asks and the API changes.
pub type SilenceBook = Book<Silences>;
/// Manual freezes and unfreezes.
pub type OverrideBook = Book<crate::freeze::overrides::Overrides>;
/// Bypasses and their approvals.
pub type BypassBook = Book<crate::freeze::bypass::Bypasses>;
/// Recorded deploys.
pub type DeployBook = Book<crate::freeze::deploys::Deploys>;

impl<T> Book<T> {
    pub fn new(set: T) -> Book<T> {
        Book { writes: Mutex::new(()), set: RwLock::new(set) }
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.set.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything the handlers use.
pub struct ApiState {
    pub clock: Arc<dyn Clock>,
    pub health: Arc<Health>,
    pub snapshot: Arc<SnapshotCell>,
    pub store: Arc<Store>,
    pub auth: ApiAuth,
    pub silences: Arc<SilenceBook>,
    pub overrides: Arc<OverrideBook>,
    pub bypasses: Arc<BypassBook>,
    pub deploys: Arc<DeployBook>,
    /// Incidents and their updates.
    pub incidents: Arc<super::incidents::IncidentBook>,
    /// The public status page's configuration and minutes.
    pub status: Arc<super::status::StatusBoard>,
    pub push: PushGate,
    pub telemetry: Arc<Telemetry>,
    /// Notification receivers (name, kind), for `/api/v1/notifications`.
    pub receivers: Vec<(String, &'static str)>,
    /// The GitHub App that answers deployment protection rules (`github:`).
    pub github: Option<Arc<crate::gate::github::GithubApp>>,
    /// Freeze answers rendered once per evaluation.
    pub rendered: super::freeze::RenderedAnswers,
    /// The last outcome of every configured probe's hops (`probes:`).
    pub probes: Arc<crate::synthetic::run::Results>,
    /// The last run of every configured journey (`journeys:`).
    pub journeys: Arc<crate::synthetic::run::JourneyResults>,
    /// The thresholds of `/api/v1/outage` and its gauges (`outage:`).
    pub outage: crate::outage::OutageConfig,
    /// Every configured probe: (name, service, hop names from the client inwards).
    pub probe_chains: Vec<(String, String, Vec<String>)>,
}

impl ApiState {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.get()
    }

    /// The journeys' last runs and the probes' last outcomes, as the outage
    /// verdict reads them.
    pub fn synthetic_checks(&self) -> (Vec<crate::outage::JourneyCheck>, Vec<crate::outage::ProbeCheck>) {
        let journeys = self.journeys.runs().iter().map(|r| super::outage::journey_check(r)).collect();
        (journeys, super::outage::probe_checks(self))
    }

    /// The Prometheus exposition of the latest snapshot and the agent's own telemetry.
    pub fn metrics(&self) -> String {
        let snap = self.snapshot();
        let now = self.clock.now_ms();
        let by_state = self.silences.read().counts(now).map(|(state, n)| (state.as_str(), n));
        crate::telemetry::events::SilencesCounted { by_state }.emit(&self.telemetry);
        let mut signals = crate::signals::metrics::families(&snap.signals, &snap.forecasts);
        signals.extend(crate::outage::families(&snap.outage));
        if snap.at_ms != 0 {
            let (overrides, deploys) = (self.overrides.read(), self.deploys.read());
            signals.extend(crate::freeze::metrics::families(&snap.freeze, &overrides, &deploys, now));
        }
        let mut out = crate::export::prometheus::render(
            &snap.statuses,
            &snap.counted,
            &snap.alerts,
            signals,
            &self.telemetry,
            now,
        );
        // The configured probes' last outcomes, in blackbox_exporter's names,
        // and the journeys' last runs, before `# EOF`.
        let outcomes = self.probes.outcomes();
        let mut checks = String::new();
        if !outcomes.is_empty() {
            checks.push_str(&crate::probe::metrics::render_all_at(&outcomes, now));
        }
        let runs = self.journeys.runs();
        if !runs.is_empty() {
            checks.push_str(&crate::synthetic::metrics::render(&runs));
        }
        checks.push_str(&crate::synthetic::metrics::render_schedule(&[
            ("probe", &self.probes.stats),
            ("journey", &self.journeys.stats),
        ]));
        match out.rfind("# EOF") {
            Some(i) => out.insert_str(i, &checks),
            None => out.push_str(&checks),
        }
        out
    }
}
