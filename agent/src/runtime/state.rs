//! The runtime's mutable state and its one owner.
//!
//! [`Core`] holds the SLI engine, the alert states and the commit policy.
//! It lives on one thread (the state thread, [`run_state_thread`]) that
//! takes messages in turn: decoded batches from the ingest thread, push
//! deliveries from HTTP handlers, and control messages (evaluate, reload,
//! shut down); and evaluates every tick. Nothing else touches the engine, so
//! there is no engine lock: decoding, file and network I/O happen on the
//! threads that produce batches; only counting, committing and evaluating
//! happen here, in order.
//!
//! **Failure of the state file.** A commit that fails leaves redb refusing
//! writes. The state thread then marks the agent not ready
//! (`store: …`), answers pushes with 503, drops what it was counting, and
//! reopens the file every second; once it is open again, the engine, the
//! alerts and the sources are read back from it — as at a start — and the
//! agent is ready again. Everything that was acknowledged (pushes answered
//! 200, durable commits) is in the file; file batches that were not made
//! durable are read again from their committed checkpoints and counted once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alert::Alerts;
use crate::api::state::{ApiState, Snapshot};
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::decode::Rejects;
use crate::event::{EventBatch, EventSink, RequestEvent};
use crate::notify::outbox::Outbox;
use crate::notify::routing::NotifyConfig;
use crate::sli::report::SloReport;
use crate::sli::{Engine, IngestStats};
use crate::source::push::{Ack, Delivery, Nack};
use crate::source::{BuiltSource, PollOutcome, Source};
use crate::spec::model::SloSet;
use crate::store::{RejectDeltas, Store, StoreError};
use crate::telemetry::Telemetry;
use crate::telemetry::events as ev;

/// How long file batches may stay committed without an fsync. A crash loses
/// at most this much reading, which is then done again (and counted once).
pub const DURABLE_EVERY: Duration = Duration::from_secs(2);

/// One SLO's (hour start, events, bad events) over its window, and the window.
type HourlyHistory = (Vec<(i64, f64, f64)>, crate::forecast::outlook::Window);

/// How often (clock time) the quota and budget outlooks are renewed.
pub const FORECAST_EVERY_MS: i64 = 300_000;

/// How often a state file that failed is reopened.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// The source name of synthetic events in the agent's telemetry.
pub const SYNTHETIC_SOURCE: &str = "synthetic";

/// Batches of at least this many events (a catch-up's; live batches are
/// smaller) are counted by the engine and fed to the hop decomposition and
/// the live signals on two threads at once ([`Core::observe_split`]).
const SPLIT_BATCH_EVENTS: usize = 4096;

/// How often, at most, the crawlers' view is renewed for what was counted
/// (`crate::crawlers::Crawlers::view`; at most about 20 ms per service
/// with a full week of every crawler on every prefix, debug build).
const CRAWLERS_VIEW_EVERY: Duration = Duration::from_secs(2);

/// How often, at most, freed memory is handed back to the system
/// ([`super::trim_freed_memory`]), after an evaluation.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A batch a polled source read and decoded, with the position after it.
pub struct Polled {
    /// Sources are rebuilt after a reopen; batches of older ones are dropped.
    pub generation: u64,
    pub source: String,
    pub kind: &'static str,
    pub events: EventBatch,
    pub checkpoint: Vec<u8>,
    pub outcome: PollOutcome,
}

/// Messages for the state thread, besides batches and deliveries.
pub enum Control {
    /// Evaluate now and answer with the snapshot (the demo's clock, tests).
    Evaluate(tokio::sync::oneshot::Sender<Arc<Snapshot>>),
    /// New specs (already validated).
    Reload(Arc<SloSet>, tokio::sync::oneshot::Sender<Vec<String>>),
    /// Count what is queued and what the ingest thread still hands over
    /// (until shortly before the deadline), commit, evaluate once more, and
    /// stop. Answers whether the final commit reached the disk.
    Shutdown(Instant, tokio::sync::oneshot::Sender<bool>),
}

/// What the state thread tells the ingest thread.
pub enum IngestControl {
    /// Poll these sources from now on (after a reopen: rebuilt from the
    /// committed checkpoints), tagging batches with `generation`.
    Replace {
        generation: u64,
        sources: Vec<Box<dyn Source>>,
    },
    Stop,
}

/// The state thread's handles on the rest of the runtime.
pub struct Links {
    pub api: Arc<ApiState>,
    /// Which optional event fields the SLOs read, for the ingest thread.
    pub wanted: Arc<std::sync::Mutex<crate::event::Wanted>>,
    pub ingest: std::sync::mpsc::Sender<IngestControl>,
    /// Woken when outbox entries for the receiver are committed.
    pub wakers: BTreeMap<String, Arc<tokio::sync::Notify>>,
    /// The fleet's figures, with `freeze.source: prometheus`.
    pub fleet: Option<FleetLink>,
}

/// The state thread's ends of the fleet reader (`crate::fleet::run`): it
/// hands over the SLOs to read, and takes the newest reading at each tick.
pub struct FleetLink {
    pub targets: tokio::sync::watch::Sender<Arc<Vec<crate::freeze::fleet::Target>>>,
    pub readings: tokio::sync::watch::Receiver<crate::fleet::Reading>,
    /// How old the last figures may be before the freeze answer is 503.
    pub stale_after_ms: i64,
}

/// The state the runtime owns.
pub struct Core {
    config: AgentConfig,
    clock: Arc<dyn Clock>,
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
    notify: Arc<NotifyConfig>,
    slos: Arc<SloSet>,
    engine: Engine,
    /// Where requests' time goes, hop by hop (fed with what the engine is fed).
    hops: crate::hops::Hops,
    /// Live minute series and their anomaly scores (fed the same).
    signals: crate::signals::Signals,
    /// The view of the last minute closed, published with every snapshot.
    signals_view: Arc<crate::signals::SignalsView>,
    /// Crawlers' and browsers' hourly counts (fed the same; memory only).
    crawlers: crate::crawlers::Crawlers,
    /// Their view, renewed at evaluations after counting or a new hour.
    crawlers_view: Arc<crate::crawlers::CrawlersView>,
    /// When the crawlers' view was last renewed.
    crawlers_renewed: Option<Instant>,
    /// The last freeze status, outage verdict, journey and probe outcome of
    /// each service, to record their changes for the timelines.
    changes: crate::timeline::changes::Tracker,
    signals_reported: crate::signals::SignalStats,
    /// Quota and budget outlooks, renewed every [`FORECAST_EVERY_MS`] of the clock.
    forecasts: Arc<crate::signals::forecasts::Forecasts>,
    /// The signals' closed minutes at the last renewal.
    forecasts_closed_until: i64,
    /// When freed memory was last handed back to the system.
    trimmed: Instant,
    alerts: Alerts,
    /// Which freeze conditions hold, and since when (hysteresis).
    freezer: crate::freeze::Freezer,
    /// The services of the last fleet board, named while the fleet's
    /// figures cannot be read.
    fleet_services: Vec<crate::freeze::ServiceFreeze>,
    /// The freeze answer is 503 for want of the fleet's figures.
    fleet_unavailable: bool,
    /// What recorded deploys cost (final figures kept).
    assessor: crate::freeze::deploys::Assessor,
    /// The engine's tallies at the last report, to report differences.
    reported: IngestStats,
    /// The hop decomposition's tallies at the last report.
    hops_reported: crate::hops::HopStats,
    generation: u64,
    /// Bytes each polled source had left to read after its last batch: while
    /// any has, the sources are catching up, and the live signals close
    /// minutes by the events alone (a minute the clock passed may still
    /// have events in the backlog).
    backlogs: BTreeMap<String, u64>,
    /// Minutes closed since the signals' view was renewed.
    signals_stale: bool,
    /// An hour closed since the signals' history was last kept.
    signal_history_due: bool,
    lazy_pending: bool,
    last_durable: Instant,
    /// Why the state file cannot be written, while it cannot.
    broken: Option<String>,
    links: Links,
}

/// The pieces a start produces: the engine and alerts read back from the
/// store, and the sources built from their checkpoints.
pub struct Loaded {
    pub engine: Engine,
    pub alerts: Alerts,
    pub sources: Vec<BuiltSource>,
}

/// Read the engine, alerts and sources back from the store, as at a start.
pub fn load(config: &AgentConfig, slos: &SloSet, store: &Store, clock: &Arc<dyn Clock>) -> anyhow::Result<Loaded> {
    let mut engine = Engine::new(slos, true);
    engine.set_route_templater(config.routes.templater());
    let loaded = store.load_into(&mut engine, clock.now_ms())?;
    tracing::info!(
        slos = engine.len(),
        buckets = loaded.buckets,
        latency_days = loaded.latency_days,
        state = %crate::untrusted::Escaped(&config.state.display().to_string()),
        "state restored"
    );
    for name in &loaded.reset {
        tracing::warn!(slo = %name, "the SLO's indicator or budgeting changed; its stored counts were discarded");
    }
    let mut alerts = Alerts::new(config.alerts);
    alerts.restore(store.alerts()?);
    let mut sources = Vec::new();
    for s in &config.sources {
        let cp = if s.has_checkpoint() { store.checkpoint(s.name())? } else { None };
        sources.push(s.build(cp.as_deref(), clock.clone())?);
    }
    Ok(Loaded { engine, alerts, sources })
}

/// Drops events too far in the future (a skewed clock or a bad record) and
/// tracks the newest event time, on the way into the engine, the hop
/// decomposition and the live signals (or some of them: a large batch is
/// fed to the engine on one thread and to the others on a second,
/// [`SPLIT_BATCH_EVENTS`]).
struct LiveSink<'a> {
    engine: Option<&'a mut Engine>,
    hops: Option<&'a mut crate::hops::Hops>,
    signals: Option<&'a mut crate::signals::Signals>,
    crawlers: Option<&'a mut crate::crawlers::Crawlers>,
    max_ts: i64,
    newest: Option<i64>,
    future: u64,
    counted: u64,
}

impl EventSink for LiveSink<'_> {
    fn event(&mut self, e: &RequestEvent<'_>) {
        self.events(e, 1);
    }

    fn events(&mut self, e: &RequestEvent<'_>, n: u64) {
        if e.ts_ms > self.max_ts {
            self.future += n;
            return;
        }
        if self.newest.is_none_or(|t| e.ts_ms > t) {
            self.newest = Some(e.ts_ms);
        }
        self.counted += n;
        if let Some(engine) = self.engine.as_deref_mut() {
            engine.observe_n(e, n);
        }
        if let Some(hops) = self.hops.as_deref_mut() {
            hops.observe(e, n);
        }
        if let Some(signals) = self.signals.as_deref_mut() {
            signals.observe(e, n);
        }
        if let Some(crawlers) = self.crawlers.as_deref_mut() {
            crawlers.observe(e, n);
        }
    }
}

/// The optional event fields to decode: what the SLOs read, the request
/// ids the hop decomposition joins on, the client classes and addresses
/// the live signals slice by, and the user agents crawlers are named from.
fn wanted(engine: &Engine) -> crate::event::Wanted {
    let w = engine.wanted();
    crate::event::Wanted { request_id: w.request_id || crate::hops::Hops::WANTED.request_id, ..w }
        .with(crate::signals::Signals::WANTED)
        .with(crate::crawlers::Crawlers::WANTED)
}

fn reject_deltas(source: &str, r: &Rejects) -> RejectDeltas {
    r.by_reason.iter().map(|(reason, s)| ((source.to_string(), *reason), s.count)).collect()
}

/// Tell the live signals which SLOs the engine counts together.
fn set_slo_groups(signals: &mut crate::signals::Signals, engine: &Engine) {
    let groups: Vec<Vec<(&str, &str)>> = engine
        .counted_together()
        .iter()
        .map(|g| g.iter().map(|s| (s.name.as_str(), s.service.as_str())).collect())
        .collect();
    signals.set_slo_groups(&groups);
}

impl Core {
    pub fn new(
        config: AgentConfig,
        clock: Arc<dyn Clock>,
        store: Arc<Store>,
        slos: Arc<SloSet>,
        engine: Engine,
        alerts: Alerts,
        links: Links,
    ) -> Core {
        let telemetry = links.api.telemetry.clone();
        let notify = Arc::new(config.notify.clone());
        links.api.push.set_wanted(wanted(&engine));
        *links.wanted.lock().unwrap_or_else(|e| e.into_inner()) = wanted(&engine);
        let hops = crate::hops::Hops::new(config.routes.templater(), config.routes.max_routes);
        let mut signals = crate::signals::Signals::new(config.signals.clone());
        match store.signal_history() {
            Ok(records) if !records.is_empty() => {
                let n = signals.restore_history(&records);
                tracing::info!(series = n, "live signals' hourly history restored");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the live signals' hourly history could not be read; it starts empty"),
        }
        set_slo_groups(&mut signals, &engine);
        let changes = match store.latest_state_changes() {
            Ok(rows) => crate::timeline::changes::Tracker::restore(
                rows.iter().filter_map(|b| serde_json::from_slice::<crate::timeline::changes::Change>(b).ok()),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the recorded state changes could not be read; they start anew");
                crate::timeline::changes::Tracker::default()
            }
        };
        let source =
            if links.fleet.is_some() { crate::freeze::Source::Prometheus } else { crate::freeze::Source::Local };
        if let Some(f) = &links.fleet {
            f.targets.send_replace(Arc::new(crate::freeze::fleet::targets(&slos)));
        }
        Core {
            config,
            clock,
            store,
            telemetry,
            notify,
            slos,
            reported: engine.stats,
            hops_reported: crate::hops::HopStats::default(),
            engine,
            hops,
            signals,
            signals_view: Arc::default(),
            crawlers: crate::crawlers::Crawlers::new(),
            crawlers_view: Arc::default(),
            crawlers_renewed: None,
            changes,
            signals_reported: crate::signals::SignalStats::default(),
            forecasts: Arc::default(),
            forecasts_closed_until: 0,
            trimmed: Instant::now(),
            alerts,
            freezer: crate::freeze::Freezer::for_source(source),
            fleet_services: Vec::new(),
            fleet_unavailable: false,
            assessor: crate::freeze::deploys::Assessor::new(),
            generation: 0,
            backlogs: BTreeMap::new(),
            signals_stale: false,
            signal_history_due: false,
            lazy_pending: false,
            last_durable: Instant::now(),
            broken: None,
            links,
        }
    }

    pub fn slo_count(&self) -> usize {
        self.engine.len()
    }

    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.telemetry.clone()
    }

    /// Tell the ingest thread to stop after its current poll.
    pub fn stop_ingest(&self) {
        let _ = self.links.ingest.send(IngestControl::Stop);
    }

    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// When the next durable commit is due, if lazy commits wait for one.
    pub fn durable_due(&self) -> Option<Instant> {
        self.lazy_pending.then_some(self.last_durable + DURABLE_EVERY)
    }

    fn max_ts(&self) -> i64 {
        self.clock.now_ms() + self.config.max_future.as_millis() as i64
    }

    /// Where decoded events go: the engine, the hop decomposition and the
    /// live signals, past the future guard.
    fn sink(&mut self) -> LiveSink<'_> {
        let max_ts = self.max_ts();
        LiveSink {
            engine: Some(&mut self.engine),
            hops: Some(&mut self.hops),
            signals: Some(&mut self.signals),
            crawlers: Some(&mut self.crawlers),
            max_ts,
            newest: None,
            future: 0,
            counted: 0,
        }
    }

    /// Feed a large batch (a catch-up's) to the engine on this thread and,
    /// at the same time, to the hop decomposition and the live signals on a
    /// second one: they share nothing, and with many SLOs each side is about
    /// as much work as the decoding the ingest thread does meanwhile, so a
    /// catch-up keeps both cores busy. While the sources catch up, the
    /// second thread also closes the signals' minutes the batch completed
    /// (by its events), so the evaluations in between do not have to.
    /// Returns (newest event, events from the future, minutes closed).
    fn observe_split(&mut self, events: &EventBatch) -> (Option<i64>, u64, Vec<i64>) {
        let max_ts = self.max_ts();
        let catching_up = self.catching_up();
        let (engine, hops, signals, crawlers) =
            (&mut self.engine, &mut self.hops, &mut self.signals, &mut self.crawlers);
        std::thread::scope(|scope| {
            let side = scope.spawn(move || {
                let mut sink = LiveSink {
                    engine: None,
                    hops: Some(hops),
                    signals: Some(signals),
                    crawlers: Some(crawlers),
                    max_ts,
                    newest: None,
                    future: 0,
                    counted: 0,
                };
                events.replay(&mut sink);
                if catching_up { signals.advance(0) } else { Vec::new() }
            });
            let mut sink = LiveSink {
                engine: Some(engine),
                hops: None,
                signals: None,
                crawlers: None,
                max_ts,
                newest: None,
                future: 0,
                counted: 0,
            };
            events.replay(&mut sink);
            match side.join() {
                Ok(closed) => (sink.newest, sink.future, closed),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Whether a polled source still has a backlog to read.
    fn catching_up(&self) -> bool {
        self.backlogs.values().any(|&b| b > 0)
    }

    /// The state file refused a write: not ready until it is reopened.
    fn fail(&mut self, what: &str, e: &StoreError) {
        let error = e.to_string();
        ev::StoreCommitFailed { what, error: &error }.emit(&self.telemetry);
        self.links.api.health.not_ready("store", format!("a state file commit failed ({error}); reopening it"));
        self.broken = Some(error);
        self.lazy_pending = false;
    }

    /// Count a polled batch and commit its counts with its checkpoint.
    pub fn count_polled(&mut self, p: Polled) {
        if p.generation != self.generation || self.broken.is_some() {
            // Read by sources that were replaced (or counted into a state
            // that is about to be read back): the new sources read it again.
            return;
        }
        match self.backlogs.get_mut(&p.source) {
            Some(b) => *b = p.outcome.backlog_bytes,
            None => {
                self.backlogs.insert(p.source.clone(), p.outcome.backlog_bytes);
            }
        }
        let (newest, future) = if p.events.len() >= SPLIT_BATCH_EVENTS {
            let (newest, future, closed) = self.observe_split(&p.events);
            self.signal_minutes_closed(closed);
            (newest, future)
        } else {
            let mut sink = self.sink();
            p.events.replay(&mut sink);
            (sink.newest, sink.future)
        };
        let changes = self.engine.drain_changes();
        let o = &p.outcome;
        let nothing = o.bytes == 0 && o.rejects.total() == 0 && !o.advanced && changes.is_empty();
        if !nothing {
            let deltas = reject_deltas(&p.source, &o.rejects);
            let cps = [(p.source.clone(), p.checkpoint)];
            let durable = self.last_durable.elapsed() >= DURABLE_EVERY;
            let result = if durable {
                self.store.commit(&changes, &cps, &deltas)
            } else {
                self.store.commit_lazily(&changes, &cps, &deltas)
            };
            match result {
                Ok(()) => {
                    ev::StoreCommitted.emit(&self.telemetry);
                    if durable {
                        self.last_durable = Instant::now();
                        self.lazy_pending = false;
                    } else {
                        self.lazy_pending = true;
                    }
                }
                Err(e) => {
                    self.fail("a batch of a polled source", &e);
                    return;
                }
            }
        }
        let t = &self.telemetry;
        let (source, kind) = (p.source.as_str(), p.kind);
        ev::LinesRead { source, kind, lines: o.lines }.emit(t);
        ev::BytesRead { source, kind, bytes: o.bytes }.emit(t);
        for (reason, s) in &o.rejects.by_reason {
            ev::LinesRejected { source, kind, reason: reason.as_str(), count: s.count, samples: &s.samples }.emit(t);
        }
        ev::SourceBacklog { source, kind, backlog_bytes: o.backlog_bytes, files: o.files as u64 }.emit(t);
        if let Some(ts_ms) = newest {
            ev::NewestEvent { source, kind, ts_ms }.emit(t);
        }
        ev::FutureEventsDropped { source, count: future }.emit(t);
        self.report_engine();
    }

    /// Count the events of a synthetic run (probes, journeys). There is no
    /// position to commit with them: a run lost in a crash is a run that did
    /// not happen, and the next one measures again. Committed lazily, like
    /// polled batches.
    pub fn count_synthetic(&mut self, events: EventBatch) {
        if self.broken.is_some() {
            return;
        }
        let mut sink = self.sink();
        events.replay(&mut sink);
        let (newest, future) = (sink.newest, sink.future);
        let changes = self.engine.drain_changes();
        if !changes.is_empty() {
            if let Err(e) = self.store.commit_lazily(&changes, &[], &RejectDeltas::new()) {
                self.fail("the events of a synthetic run", &e);
                return;
            }
            ev::StoreCommitted.emit(&self.telemetry);
            self.lazy_pending = true;
        }
        let t = &self.telemetry;
        let (source, kind) = (SYNTHETIC_SOURCE, SYNTHETIC_SOURCE);
        ev::LinesRead { source, kind, lines: events.requests() }.emit(t);
        if let Some(ts_ms) = newest {
            ev::NewestEvent { source, kind, ts_ms }.emit(t);
        }
        ev::FutureEventsDropped { source, count: future }.emit(t);
        self.report_engine();
    }

    /// Count a push delivery and commit it durably (with its request id)
    /// before answering the handler.
    pub fn count_delivery(&mut self, d: Delivery) {
        if self.broken.is_some() {
            let _ = d
                .reply
                .send(Err(Nack::Unavailable("the state file cannot be written right now; retry shortly".into())));
            return;
        }
        if !d.claim.take() {
            // The handler gave up and told the sender to retry: counting it
            // now would count the retry twice.
            return;
        }
        if let Some(id) = &d.request_id {
            match self.store.delivery(&d.source, id) {
                Ok(Some(_)) => {
                    let _ = d.reply.send(Ok(Ack { duplicate: true, ..Ack::default() }));
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = d.reply.send(Err(Nack::Unavailable(format!("the state file cannot be read: {e}"))));
                    return;
                }
            }
        }
        let mut sink = self.sink();
        d.events.replay(&mut sink);
        let (newest, future, counted) = (sink.newest, sink.future, sink.counted);
        let changes = self.engine.drain_changes();
        let deltas = reject_deltas(&d.source, &d.rejects);
        let now = self.clock.now_ms();
        let delivery = d.request_id.as_deref().map(|id| (d.source.as_str(), id, now));
        // Durable: the sender is told it was accepted only once it is on disk.
        if let Err(e) = self.store.commit_delivery(&changes, &[], &deltas, delivery) {
            self.fail("a push delivery", &e);
            let _ = d
                .reply
                .send(Err(Nack::Unavailable("the state file cannot be written right now; retry shortly".into())));
            return;
        }
        self.last_durable = Instant::now();
        self.lazy_pending = false;
        ev::StoreCommitted.emit(&self.telemetry);
        let t = &self.telemetry;
        let (source, kind) = (d.source.as_str(), d.kind.as_str());
        ev::LinesRead { source, kind, lines: d.lines }.emit(t);
        ev::BytesRead { source, kind, bytes: d.bytes }.emit(t);
        for (reason, s) in &d.rejects.by_reason {
            ev::LinesRejected { source, kind, reason: reason.as_str(), count: s.count, samples: &s.samples }.emit(t);
        }
        ev::UnroutedLogEvents { source, count: d.unrouted.log_events, new_groups: &d.unrouted.new_groups }.emit(t);
        if let Some(ts_ms) = newest {
            ev::NewestEvent { source, kind, ts_ms }.emit(t);
        }
        ev::FutureEventsDropped { source, count: future }.emit(t);
        self.report_engine();
        let _ = d.reply.send(Ok(Ack { duplicate: false, events: counted, rejected: d.rejects.total() }));
    }

    /// Lazy commits must reach the disk: commit durably with nothing new.
    pub fn make_durable(&mut self) {
        if !self.lazy_pending || self.broken.is_some() {
            return;
        }
        match self.store.commit(&[], &[], &RejectDeltas::new()) {
            Ok(()) => {
                self.last_durable = Instant::now();
                self.lazy_pending = false;
            }
            Err(e) => self.fail("making earlier batches durable", &e),
        }
    }

    fn report_engine(&mut self) {
        let s = self.engine.stats;
        let r = self.reported;
        ev::EngineCounted {
            events: s.events.saturating_sub(r.events),
            unmatched: s.unmatched.saturating_sub(r.unmatched),
            too_old: s.too_old.saturating_sub(r.too_old),
            excluded: s.excluded.saturating_sub(r.excluded),
        }
        .emit(&self.telemetry);
        self.reported = s;
    }

    /// Evaluate every SLO at the clock's time, move the alerts (committing
    /// their changes and outbox entries first: in memory they change only
    /// once that commit succeeded), and publish the snapshot.
    pub fn evaluate(&mut self) -> Arc<Snapshot> {
        let started = Instant::now();
        let at = self.clock.now_ms();
        let statuses = self.engine.evaluate(at);
        self.advance_signals(at);
        self.renew_forecasts(&statuses, at);
        if self.broken.is_none() {
            let mut next = self.alerts.clone();
            let mut transitions = next.observe(&statuses, at);
            let (seen, configured) =
                crate::synthetic::run::certificates(&self.config.synthetic, &self.links.api.probes.outcomes());
            transitions.extend(next.observe_certificates(&seen, &configured, at));
            let (active, watched) =
                crate::alert::signals::conditions(&self.signals_view, &self.config.signals, &self.forecasts.quotas, at);
            transitions.extend(next.observe_signals(&active, &watched, at));
            if transitions.is_empty() {
                self.alerts = next;
            } else {
                let engine = &self.engine;
                let entries =
                    crate::notify::notice::outbox_entries(&self.notify, &transitions, &statuses, &mut |slo, at, m| {
                        engine.evidence(slo, at, m, crate::notify::notice::EVIDENCE_TOP).unwrap_or_default()
                    });
                let receivers: std::collections::BTreeSet<String> =
                    entries.iter().map(|e| e.receiver.clone()).collect();
                match Outbox::record(&*self.store, &transitions, entries, self.notify.max_outbox, at) {
                    Ok(dropped) => {
                        self.alerts = next;
                        super::evaluation::log_transitions(&transitions);
                        crate::api::incidents::on_transitions(
                            &self.links.api,
                            &transitions,
                            &self.config.incidents_open_on,
                        );
                        for d in &dropped {
                            tracing::error!(receiver = %d.receiver, slo = %d.notice.slo, "notification outbox full: the oldest change moved to the failed table");
                            if let Some(kind) = self.notify.receivers.iter().find(|r| r.name == d.receiver) {
                                ev::NotificationOutcome {
                                    receiver: &d.receiver,
                                    kind: kind.kind.as_str(),
                                    result: "failed",
                                    count: 1,
                                    latency_seconds: None,
                                }
                                .emit(&self.telemetry);
                            }
                        }
                        for r in receivers {
                            if let Some(w) = self.links.wakers.get(&r) {
                                w.notify_one();
                            }
                        }
                    }
                    // The alerts keep their states: the same changes are
                    // found again at the next evaluation after the reopen.
                    Err(e) => self.fail("alert changes and their notifications", &e),
                }
            }
        }
        let reports = statuses.iter().map(SloReport::from_status).collect();
        let counted = self.engine.slos().map(|s| (s.slo.name.clone(), s.counted)).collect();
        let rejected_lines = self.telemetry.sum(&ev::REJECTED_LINES, &[]) as u64;
        ev::Evaluated { slos: statuses.len(), seconds: started.elapsed().as_secs_f64() }.emit(&self.telemetry);
        let alerts: Vec<_> = self.alerts.records().cloned().collect();
        let deploys = self.assess_deploys(&statuses, at);
        let freeze = self.decide_freeze(&statuses, &alerts, &deploys, at);
        let hops = Arc::new(self.hops.view(at));
        let (h, r) = (hops.stats, std::mem::replace(&mut self.hops_reported, hops.stats));
        ev::HopRecords {
            joined: h.joined.saturating_sub(r.joined),
            unjoined_gateway: h.unjoined_gateway.saturating_sub(r.unjoined_gateway),
            unjoined_lambda: h.unjoined_lambda.saturating_sub(r.unjoined_lambda),
            too_old: h.too_old.saturating_sub(r.too_old),
            service_dropped: h.services_dropped.saturating_sub(r.services_dropped),
            route_folded: h.routes_folded.saturating_sub(r.routes_folded),
        }
        .emit(&self.telemetry);
        // Renewed when the hour changed (the windows move with the clock),
        // and after counting at most every CRAWLERS_VIEW_EVERY: a view of
        // a week of many services takes milliseconds.
        use crate::crawlers::hour_of;
        let due = self.crawlers_renewed.is_none_or(|t| t.elapsed() >= CRAWLERS_VIEW_EVERY);
        if (self.crawlers.changed() && due) || hour_of(at) != hour_of(self.crawlers_view.at_ms) {
            self.crawlers_view = Arc::new(self.crawlers.view(at));
            self.crawlers_renewed = Some(Instant::now());
        }
        // The synthetic checks' last outcomes, read once for the verdicts and the changes.
        let (journeys, probes) = self.links.api.synthetic_checks();
        let outage = Arc::new(self.assess_outages(&hops, &journeys, &probes, at));
        let snap = Snapshot {
            at_ms: at,
            outage,
            hops,
            crawlers: self.crawlers_view.clone(),
            signals: self.signals_view.clone(),
            forecasts: self.forecasts.clone(),
            freeze: Arc::new(freeze),
            deploys: Arc::new(deploys),
            statuses,
            reports,
            counted,
            rejected_lines,
            alerts,
            retention: self.engine.retention(),
        };
        self.links.api.snapshot.set(snap);
        let snap = self.links.api.snapshot.get();
        let components = crate::api::status::component_states(&self.links.api, &snap);
        self.record_changes(&snap, &journeys, &probes, &components);
        if self.broken.is_none() {
            crate::api::status::count(&self.links.api, &snap, &components);
            self.links.api.health.ready("state");
        }
        if self.trimmed.elapsed() >= TRIM_EVERY {
            self.trimmed = Instant::now();
            super::trim_freed_memory();
        }
        snap
    }

    /// Every known service's outage verdict ("Is it partial or total?") at
    /// this evaluation, for the gauges, the status page and the recorded
    /// changes. `GET /api/v1/outage` judges anew at the agent's clock.
    fn assess_outages(
        &self,
        hops: &crate::hops::HopsView,
        journeys: &[crate::outage::JourneyCheck],
        probes: &[crate::outage::ProbeCheck],
        at: i64,
    ) -> Vec<crate::outage::Assessment> {
        let cfg = &self.links.api.outage;
        crate::outage::services(&self.signals_view, journeys, probes)
            .iter()
            .map(|service| crate::outage::assess(cfg, service, at, &self.signals_view, hops, journeys, probes))
            .collect()
    }

    /// Record what changed since the last evaluation (freeze statuses,
    /// outage verdicts, journeys and probes passing or failing, the status
    /// page's components) in the
    /// store, for the timelines. A failed write is logged, not fatal: the
    /// timeline then lacks those entries, nothing else does.
    fn record_changes(
        &mut self,
        snap: &Snapshot,
        journeys: &[crate::outage::JourneyCheck],
        probes: &[crate::outage::ProbeCheck],
        components: &[crate::status::ComponentAt],
    ) {
        use crate::timeline::changes::{KEEP_MS, MAX_PER_SERVICE};
        let at = snap.at_ms;
        // As deploy tools are answered: with the manual overrides laid over.
        let board = crate::freeze::overrides::overlay_board(&snap.freeze, &self.links.api.overrides.read(), at);
        let changes = self.changes.observe(at, &board, &snap.outage, journeys, probes, components);
        if changes.is_empty() || self.broken.is_some() {
            return;
        }
        let rows: Vec<(String, i64, String, Vec<u8>)> = changes
            .iter()
            .filter_map(|c| Some((c.service.clone(), c.at_ms, c.subject.clone(), serde_json::to_vec(c).ok()?)))
            .collect();
        for c in &changes {
            tracing::info!(service = %crate::untrusted::Escaped(&c.service), subject = %crate::untrusted::Escaped(&c.subject),
                from = c.from.as_deref().unwrap_or("-"), to = %c.to, "state changed");
        }
        if let Err(e) = self.store.put_state_changes(&rows, at.saturating_sub(KEEP_MS), MAX_PER_SERVICE) {
            tracing::warn!(error = %e, changes = rows.len(), "state changes could not be recorded for the timelines");
        }
    }

    /// Close the live signals' minutes that are due, add each SLO's events
    /// of them, and renew the view when something closed (here or while
    /// counting a catch-up's batches).
    fn advance_signals(&mut self, at: i64) {
        // Catching up a backlog, the clock is far ahead of the events still
        // to come: minutes close by the events alone (no idle close).
        let closed = self.signals.advance(if self.catching_up() { 0 } else { at });
        self.signal_minutes_closed(closed);
        if self.signal_history_due && self.broken.is_none() {
            self.signal_history_due = false;
            match self.store.put_signal_history(&self.signals.history_records()) {
                Ok(()) => self.lazy_pending = true,
                Err(e) => self.fail("the live signals' hourly history", &e),
            }
        }
        if !self.signals_stale {
            return;
        }
        self.signals_stale = false;
        self.signals_view = Arc::new(self.signals.view());
        let (s, r) = (self.signals.stats, std::mem::replace(&mut self.signals_reported, self.signals.stats));
        ev::SignalsAdvanced {
            series: self.signals.len(),
            late: s.late.saturating_sub(r.late),
            series_dropped: s.series_dropped.saturating_sub(r.series_dropped),
            services_dropped: s.services_dropped.saturating_sub(r.services_dropped),
        }
        .emit(&self.telemetry);
    }

    /// Minutes the live signals closed: each SLO's events of them, and the
    /// hourly history kept when an hour closed.
    fn signal_minutes_closed(&mut self, closed: Vec<i64>) {
        if closed.is_empty() {
            return;
        }
        self.signals_stale = true;
        // An hour closed: its history is kept in the state file, at the
        // next evaluation (a catch-up closes hours batch after batch).
        self.signal_history_due |= closed.iter().any(|m| m.rem_euclid(crate::signals::HOUR_MS) == 0);
        // SLOs counted together have the same figures: one per group (the
        // signals show them under each member, `Signals::set_slo_groups`).
        let owners: Vec<(String, String)> = self
            .engine
            .counted_together()
            .iter()
            .filter_map(|g| g.first().map(|s| (s.name.clone(), s.service.clone())))
            .collect();
        for minute_ms in closed {
            let m = minute_ms / crate::signals::MINUTE_MS;
            for (name, service) in &owners {
                if let Some(w) = self.engine.window_stats(name, m, m) {
                    self.signals.observe_slo_minute(name, service, minute_ms, w.events.total, w.events.bad());
                }
            }
        }
    }

    /// Renew the quota outlooks (from the live signals) and each SLO's
    /// budget outlook (from the engine's hourly counts over its window),
    /// when [`FORECAST_EVERY_MS`] passed since the last.
    fn renew_forecasts(&mut self, statuses: &[crate::sli::SloStatus], at: i64) {
        // Renewed as the clock moves, and as event time does (a replayed
        // backlog, a paused clock).
        let closed = self.signals_view.closed_until_ms;
        let clock_due =
            self.forecasts.at_ms == 0 || at - self.forecasts.at_ms >= FORECAST_EVERY_MS || at < self.forecasts.at_ms;
        let events_due = closed - self.forecasts_closed_until >= FORECAST_EVERY_MS;
        if !clock_due && !events_due {
            return;
        }
        self.forecasts_closed_until = closed;
        let quotas = crate::signals::forecasts::quotas(&self.signals_view, &self.config.signals.quotas, at);
        let mut budgets = Vec::with_capacity(statuses.len());
        for s in statuses {
            let Some((history, window)) = self.hourly_history(s, at) else { continue };
            budgets.push(crate::signals::forecasts::BudgetEntry {
                slo: s.slo.name.clone(),
                service: s.slo.service.clone(),
                objective: s.slo.objective,
                outlook: crate::forecast::outlook::budget(&history, s.slo.objective, window, at),
            });
        }
        self.forecasts = Arc::new(crate::signals::forecasts::Forecasts { at_ms: at, quotas, budgets });
    }

    /// One SLO's events and bad events per hour over its window, and the
    /// window as the outlook reads it.
    fn hourly_history(&mut self, s: &crate::sli::SloStatus, at: i64) -> Option<HourlyHistory> {
        use crate::forecast::outlook::Window;
        use crate::spec::model::SloWindow;
        const MIN: i64 = 60_000;
        let first = crate::sli::window_first_minute(&s.slo.window, at);
        let window = match &s.slo.window {
            SloWindow::Rolling(m) => Window::Rolling { len_ms: m.0 as i64 * MIN },
            SloWindow::Calendar { unit, .. } => {
                // The next window is the one holding a time a little past
                // this one's longest length (a week, a month of at most 31 days).
                let start = first * MIN;
                let days = match unit {
                    crate::spec::model::CalendarUnit::Week => 8,
                    crate::spec::model::CalendarUnit::Month => 32,
                };
                let probe = start + days * 86_400_000;
                let next = crate::sli::window_first_minute(&s.slo.window, probe) * MIN;
                let end = if next > start { next } else { start + s.slo.window.nominal().0 as i64 * MIN };
                Window::Calendar { start_ms: start, end_ms: end }
            }
        };
        let hour = 60;
        let last = at.div_euclid(MIN);
        let mut out = Vec::new();
        let mut h = first.div_euclid(hour) * hour;
        while h <= last {
            let (a, b) = (h.max(first), (h + hour - 1).min(last));
            let w = self.engine.window_stats(&s.slo.name, a, b)?;
            if w.events.total > 0 {
                out.push((h * MIN, w.events.total as f64, w.events.bad() as f64));
            }
            h += hour;
        }
        Some((out, window))
    }

    /// The freeze board: from this tick's own statuses and alerts, or from
    /// the fleet's last figures while they are recent enough; else a board
    /// that says why there is no answer (and the agent is not ready).
    fn decide_freeze(
        &mut self,
        statuses: &[crate::sli::SloStatus],
        alerts: &[crate::alert::AlertRecord],
        deploys: &[crate::freeze::deploys::Impact],
        at: i64,
    ) -> crate::freeze::Board {
        use crate::freeze::fleet;
        let min_events = self.config.alerts.min_events;
        let Some(link) = &self.links.fleet else {
            return self.freezer.decide(&self.slos, statuses, alerts, deploys, min_events, at);
        };
        let reading = link.readings.borrow().clone();
        let stale_after = link.stale_after_ms;
        let health = &self.links.api.health;
        if let Some(f) = reading.figures.as_ref().filter(|f| at - f.read_at_ms <= stale_after) {
            let board = self.freezer.decide(
                &self.slos,
                &fleet::statuses(&self.slos, f, at),
                &fleet::alerts(&self.slos, f, at),
                deploys,
                min_events,
                at,
            );
            health.ready("freeze");
            if std::mem::take(&mut self.fleet_unavailable) {
                tracing::info!("the fleet freeze is answered again");
            }
            self.fleet_services.clone_from(&board.services);
            return board;
        }
        let prefix = "the fleet freeze cannot be read from Prometheus";
        let why = match (&reading.error, &reading.figures) {
            (Some(e), Some(f)) => format!(
                "{prefix}: {e} (the last figures are {} s old; they are answered from for {} s)",
                (at - f.read_at_ms) / 1000,
                stale_after / 1000
            ),
            (Some(e), None) => format!("{prefix}: {e}"),
            (None, Some(f)) => format!("{prefix}: no reading for {} s", (at - f.read_at_ms) / 1000),
            (None, None) => format!("{prefix}: not read yet (the agent is starting)"),
        };
        if !std::mem::replace(&mut self.fleet_unavailable, true) && reading.figures.is_some() {
            tracing::error!(reason = %why, "no freeze answer: freeze answers are 503 until Prometheus answers again");
        }
        health.not_ready("freeze", why.clone());
        crate::freeze::Board {
            at_ms: at,
            services: self.fleet_services.clone(),
            source: crate::freeze::Source::Prometheus,
            unavailable: Some(why),
        }
    }

    /// What the recorded deploys that started within their SLOs' longest
    /// window cost, measured from the engine's counts.
    fn assess_deploys(&mut self, statuses: &[crate::sli::SloStatus], at: i64) -> Vec<crate::freeze::deploys::Impact> {
        let oldest = statuses.iter().map(|s| s.window_start_ms).min().unwrap_or(at);
        let recent: Vec<crate::freeze::deploys::Deploy> = {
            let book = self.links.api.deploys.read();
            book.list(at, false).take_while(|d| d.started_at_ms >= oldest).cloned().collect()
        };
        let (slos, freezer, engine) = (&self.slos, &self.freezer, &mut self.engine);
        self.assessor.assess(
            &recent,
            |service| freezer.policy(slos, service),
            statuses,
            |slo, first, last| engine.window_stats(slo, first, last),
            at,
        )
    }

    /// Swap in new specs. An SLO that comes back gets its stored history
    /// back; SLOs whose indicator changed start afresh.
    pub fn reload(&mut self, slos: Arc<SloSet>) -> Vec<String> {
        let previous: Vec<String> = self.engine.slos().map(|s| s.slo.name.clone()).collect();
        let reset = self.engine.reload(&slos);
        set_slo_groups(&mut self.signals, &self.engine);
        if let Some(f) = &self.links.fleet {
            f.targets.send_replace(Arc::new(crate::freeze::fleet::targets(&slos)));
        }
        self.slos = slos;
        if self.broken.is_none()
            && let Err(e) = self.store.sync_after_reload(&mut self.engine, &previous, &reset, self.clock.now_ms())
        {
            self.fail("the SLO definitions of a reload", &e);
        }
        self.links.api.push.set_wanted(wanted(&self.engine));
        *self.links.wanted.lock().unwrap_or_else(|e| e.into_inner()) = wanted(&self.engine);
        self.evaluate();
        reset
    }

    /// While broken: try to reopen the state file and read the state back.
    /// Returns the time to try again.
    pub fn recover(&mut self) -> Option<Instant> {
        self.broken.as_ref()?;
        let again = Some(Instant::now() + REOPEN_EVERY);
        if let Err(e) = self.store.reopen() {
            self.links.api.health.not_ready("store", format!("the state file cannot be reopened: {e}"));
            return again;
        }
        // Open is not enough: a full disk still refuses writes.
        if let Err(e) = self.store.probe_write(self.clock.now_ms()) {
            self.links.api.health.not_ready("store", format!("the state file still refuses writes: {e}"));
            return again;
        }
        let loaded = match load(&self.config, &self.slos, &self.store, &self.clock) {
            Ok(l) => l,
            Err(e) => {
                self.links.api.health.not_ready("store", format!("reading the state back failed: {e:#}"));
                return again;
            }
        };
        self.generation += 1;
        self.backlogs.clear();
        let polled: Vec<Box<dyn Source>> = loaded
            .sources
            .into_iter()
            .filter_map(|s| match s {
                BuiltSource::Polled(p) => Some(p),
                BuiltSource::Push(_) => None,
            })
            .collect();
        let _ = self.links.ingest.send(IngestControl::Replace { generation: self.generation, sources: polled });
        self.engine = loaded.engine;
        self.reported = self.engine.stats;
        self.alerts = loaded.alerts;
        self.broken = None;
        self.last_durable = Instant::now();
        ev::StoreReopened { path: &self.config.state.display().to_string() }.emit(&self.telemetry);
        self.links.api.health.ready("store");
        self.evaluate();
        None
    }

    /// The last commit before stopping. `true` when it reached the disk.
    pub fn finish(&mut self) -> bool {
        if self.broken.is_some() {
            return false;
        }
        match self.store.commit(&[], &[], &RejectDeltas::new()) {
            Ok(()) => {
                self.lazy_pending = false;
                self.evaluate();
                true
            }
            Err(e) => {
                self.fail("the last commit before stopping", &e);
                false
            }
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
