//! `slo-agent run`: sources → decoders → engine → store, an evaluator on a
//! tick, spec reloads, and the HTTP server.
//!
//! Threads: one ingest thread owns the sources and the store's write path; the
//! tokio runtime runs the evaluator, the spec watcher and the HTTP server. The
//! engine sits behind a mutex that the ingest thread holds per batch and the
//! evaluator per tick; HTTP handlers never take it: they read the latest
//! evaluation snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::alert::{AlertRecord, Alerts, Phase};
use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::decode::Rejects;
use crate::event::{EventSink, RequestEvent};
use crate::export::prometheus::{AgentFigures, SourceFigures};
use crate::sli::report::{Report, SloReport};
use crate::sli::ring::Counts;
use crate::sli::{Engine, SloStatus};
use crate::source::Source;
use crate::source::SourceConfig;
use crate::source::file::FileTail;
use crate::source::push::{Ack, Delivery, Nack, PushDecoders, PushQueue, PushSourceConfig};
use crate::spec;
use crate::store::{RejectDeltas, Store};
use crate::timefmt::rfc3339;

/// The latest evaluation, as HTTP handlers and exporters see it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at_ms: i64,
    pub statuses: Vec<SloStatus>,
    pub reports: Vec<SloReport>,
    pub counted: Vec<(String, Counts)>,
    pub rejected_lines: u64,
    /// Every alert's state after this evaluation.
    pub alerts: Vec<AlertRecord>,
}

impl Snapshot {
    pub fn report(&self) -> Report {
        Report { at: rfc3339(self.at_ms), rejected_lines: self.rejected_lines, slos: self.reports.clone() }
    }
}

/// State shared between the ingest thread, the evaluator and the server.
pub struct Shared {
    pub engine: Mutex<Engine>,
    pub snapshot: RwLock<Arc<Snapshot>>,
    pub sources: Mutex<BTreeMap<String, SourceFigures>>,
    pub agent: Mutex<AgentFigures>,
    pub ready: AtomicBool,
    pub shutdown: AtomicBool,
    pub clock: Arc<dyn Clock>,
    /// Silences: the API adds and expires them, the dispatcher asks
    /// `Silences::matching` before it notifies.
    pub silences: Mutex<crate::notify::silence::Silences>,
    /// API tokens, roles and the audit limiter (`api:` in agent.yaml).
    pub api: crate::auth::ApiAuth,
    pub store: Arc<Store>,
    /// The push sources the HTTP server accepts deliveries for.
    pub push: PushEndpoints,
    pub alerts: Mutex<Alerts>,
    /// Notification routes, receivers and their delivery figures.
    pub notify: NotifyState,
}

/// What the evaluator needs to fill the outbox and wake the receivers.
pub struct NotifyState {
    pub config: Arc<crate::notify::routing::NotifyConfig>,
    /// One per receiver, notified when entries for it are committed.
    pub wakers: BTreeMap<String, Arc<tokio::sync::Notify>>,
    pub figures: crate::notify::dispatch::Figures,
}

impl NotifyState {
    pub fn new(config: crate::notify::routing::NotifyConfig) -> NotifyState {
        let wakers = config.receivers.iter().map(|r| (r.name.clone(), Arc::new(tokio::sync::Notify::new()))).collect();
        let figures: BTreeMap<String, crate::notify::dispatch::ReceiverFigures> = config
            .receivers
            .iter()
            .map(|r| {
                let f = crate::notify::dispatch::ReceiverFigures {
                    name: r.name.clone(),
                    kind: r.kind.as_str(),
                    ..Default::default()
                };
                (r.name.clone(), f)
            })
            .collect();
        NotifyState { config: Arc::new(config), wakers, figures: Arc::new(Mutex::new(figures)) }
    }
}

/// What the HTTP handlers need to accept pushed telemetry.
#[derive(Clone)]
pub struct PushEndpoints {
    pub queue: PushQueue,
    pub sources: BTreeMap<String, PushSourceConfig>,
    /// How long a handler waits for its delivery to be committed.
    pub timeout: Duration,
}

impl Shared {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        // A panic while holding the lock is a bug elsewhere; the counts are
        // still consistent (every mutation is a single add), so go on.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evaluate every SLO now and publish the snapshot.
    pub fn evaluate(&self) {
        let started = Instant::now();
        let at = self.clock.now_ms();
        let (statuses, counted, stats) = {
            let mut e = self.engine();
            let statuses = e.evaluate(at);
            let counted = e.slos().map(|s| (s.slo.name.clone(), s.counted)).collect::<Vec<_>>();
            (statuses, counted, e.stats)
        };
        let (transitions, alerts) = {
            let mut a = lock(&self.alerts);
            let t = a.observe(&statuses, at);
            (t, a.records().cloned().collect::<Vec<_>>())
        };
        if !transitions.is_empty() {
            for t in &transitions {
                let r = &t.record;
                let trigger = r.trigger.as_ref();
                match t.to {
                    Some(Phase::Firing) => tracing::warn!(
                        slo = %t.slo, kind = t.kind.as_str(), episode = r.episode,
                        windows = trigger.map_or("", |t| t.windows.as_str()),
                        long_burn_rate = ?trigger.and_then(|t| t.long_burn_rate),
                        budget_remaining = r.budget_remaining,
                        "alert firing"
                    ),
                    Some(Phase::Resolved) => {
                        tracing::info!(slo = %t.slo, kind = t.kind.as_str(), episode = r.episode, "alert resolved")
                    }
                    _ => {
                        tracing::debug!(slo = %t.slo, kind = t.kind.as_str(), from = ?t.from, to = ?t.to, "alert changed")
                    }
                }
            }
            let entries = {
                let e = self.engine();
                crate::notify::notice::outbox_entries(
                    &self.notify.config,
                    &transitions,
                    &statuses,
                    &mut |slo, at, m| e.evidence(slo, at, m, crate::notify::notice::EVIDENCE_TOP).unwrap_or_default(),
                )
            };
            let receivers: std::collections::BTreeSet<String> = entries.iter().map(|e| e.receiver.clone()).collect();
            match crate::notify::outbox::Outbox::record(
                &*self.store,
                &transitions,
                entries,
                self.notify.config.max_outbox,
                at,
            ) {
                Ok(dropped) => {
                    for d in &dropped {
                        tracing::error!(receiver = %d.receiver, slo = %d.notice.slo, "notification outbox full: the oldest change moved to the failed table");
                    }
                    if !dropped.is_empty() {
                        let mut f = lock(&self.notify.figures);
                        for d in &dropped {
                            if let Some(r) = f.get_mut(&d.receiver) {
                                r.failed += 1;
                            }
                        }
                    }
                    for r in receivers {
                        if let Some(w) = self.notify.wakers.get(&r) {
                            w.notify_one();
                        }
                    }
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "could not record alert changes and their notifications; they hold in memory until the next restart"
                ),
            }
        }
        let reports = statuses.iter().map(SloReport::from_status).collect();
        let rejected_lines = lock(&self.sources).values().map(|s| s.rejects.iter().map(|r| r.1).sum::<u64>()).sum();
        {
            let mut a = lock(&self.agent);
            a.events = stats.events;
            a.unmatched_events = stats.unmatched;
            a.too_old_events = stats.too_old;
            a.excluded_events = stats.excluded;
            a.slos = statuses.len() as u64;
            a.evaluation_seconds = started.elapsed().as_secs_f64();
        }
        let snap = Snapshot { at_ms: at, statuses, reports, counted, rejected_lines, alerts };
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        self.ready.store(true, Ordering::SeqCst);
    }

    /// The Prometheus exposition of the latest snapshot.
    pub fn metrics(&self) -> String {
        let snap = self.snapshot();
        let now = self.clock.now_ms();
        let sources: Vec<SourceFigures> = lock(&self.sources).values().cloned().collect();
        let mut agent = lock(&self.agent).clone();
        agent.receivers = lock(&self.notify.figures).values().cloned().collect();
        agent.silences = lock(&self.silences).counts(now).map(|(state, n)| (state.as_str(), n));
        crate::export::prometheus::render(&snap.statuses, &snap.counted, &snap.alerts, &sources, &agent, now)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops events too far in the future (a skewed clock or a bad record) and
/// tracks the newest event time.
struct LiveSink<'a> {
    engine: &'a mut Engine,
    max_ts: i64,
    newest: Option<i64>,
    future: u64,
    /// Events handed to the engine.
    counted: u64,
}

impl EventSink for LiveSink<'_> {
    #[inline]
    fn event(&mut self, ev: &RequestEvent<'_>) {
        if ev.ts_ms > self.max_ts {
            self.future += 1;
            return;
        }
        if self.newest.is_none_or(|n| ev.ts_ms > n) {
            self.newest = Some(ev.ts_ms);
        }
        self.counted += 1;
        self.engine.observe(ev);
    }

    fn events(&mut self, ev: &RequestEvent<'_>, n: u64) {
        if ev.ts_ms > self.max_ts {
            self.future += n;
            return;
        }
        if self.newest.is_none_or(|t| ev.ts_ms > t) {
            self.newest = Some(ev.ts_ms);
        }
        self.counted += n;
        self.engine.observe_n(ev, n);
    }
}

/// A running agent. Built by [`Agent::start`]; stopped by [`Agent::stop`].
pub struct Agent {
    pub shared: Arc<Shared>,
    pub config: AgentConfig,
    ingest: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// Load specs, open the store, restore state and start the ingest thread.
    pub fn start(config: AgentConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Agent> {
        let slos = spec::load_paths(&config.specs).map_err(|diags| {
            let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            anyhow::anyhow!("the SLO specs do not validate:\n{}", list.join("\n"))
        })?;
        let store = Arc::new(Store::open(&config.state)?);
        let mut engine = Engine::new(&slos, true);
        engine.set_route_templater(config.routes.templater());
        let loaded = store.load_into(&mut engine)?;
        tracing::info!(
            slos = engine.len(),
            buckets = loaded.buckets,
            latency_days = loaded.latency_days,
            state = %config.state.display(),
            "state restored"
        );
        for name in &loaded.reset {
            tracing::warn!(slo = %name, "the SLO's indicator or budgeting changed; its stored counts were discarded");
        }
        let mut silences = crate::notify::silence::Silences::default();
        silences.restore(store.silences()?);
        if !silences.is_empty() {
            tracing::info!(silences = silences.len(), "silences restored");
        }
        if config.api.tokens.is_empty() {
            tracing::info!("no API tokens configured: silences cannot be created or expired (see docs/api.md)");
        }
        let mut tails: Vec<Box<dyn Source>> = Vec::new();
        let mut figures = BTreeMap::new();
        let mut push_sources = BTreeMap::new();
        for src in &config.sources {
            let source: Box<dyn Source> = match src {
                SourceConfig::File { file, .. } => {
                    let cp = store.checkpoint(src.name())?;
                    Box::new(FileTail::new(file.clone(), cp.as_deref())?)
                }
                SourceConfig::Aws(aws) => {
                    let cp = store.checkpoint(src.name())?;
                    crate::source::aws::build(aws, cp.as_deref(), clock.clone())?
                }
                SourceConfig::Push { push } => {
                    if push.token.is_none() {
                        tracing::warn!(
                            source = %push.name,
                            kind = push.kind.as_str(),
                            "push source accepts deliveries without a token; set token_file or token_env unless the listener is private"
                        );
                    }
                    figures.insert(
                        push.name.clone(),
                        SourceFigures { name: push.name.clone(), kind: push.kind.as_str(), ..Default::default() },
                    );
                    push_sources.insert(push.name.clone(), push.clone());
                    continue;
                }
            };
            figures.insert(
                source.name().to_string(),
                SourceFigures { name: source.name().to_string(), kind: source.kind(), ..Default::default() },
            );
            tails.push(source);
        }
        let mut alerts = Alerts::new(config.alerts);
        alerts.restore(store.alerts()?);
        let decoders = PushDecoders::new(&push_sources.values().cloned().collect::<Vec<_>>())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (queue, deliveries) = PushQueue::new();
        let committed_rejects = store.rejects()?;
        for ((source, reason), n) in committed_rejects {
            if let Some(f) = figures.get_mut(&source) {
                let reason: &'static str = crate::decode::RejectReason::ALL
                    .iter()
                    .find(|r| r.as_str() == reason)
                    .map(|r| r.as_str())
                    .unwrap_or("other");
                f.rejects.push((reason, n));
            }
        }
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            sources: Mutex::new(figures),
            agent: Mutex::new(AgentFigures::default()),
            ready: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            clock,
            silences: Mutex::new(silences),
            api: crate::auth::ApiAuth::new(config.api.clone()),
            store,
            push: PushEndpoints { queue, sources: push_sources, timeout: config.push_timeout },
            alerts: Mutex::new(alerts),
            notify: NotifyState::new(config.notify.clone()),
        });
        crate::api::silences::prune(&shared);
        let poll = config.poll_interval;
        let max_future = config.max_future;
        let s2 = shared.clone();
        let ingest = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || ingest_loop(s2, tails, (deliveries, decoders), poll, max_future))
            .context("starting the ingest thread")?;
        shared.evaluate();
        Ok(Agent { shared, config, ingest: Some(ingest) })
    }

    /// Re-read the specs; keep the old ones if the new ones do not validate.
    pub fn reload(&self) -> Result<Vec<String>, Vec<spec::Diagnostic>> {
        let set = spec::load_paths(&self.config.specs)?;
        let reset = {
            let mut e = self.shared.engine();
            let reset = e.reload(&set);
            if let Err(err) = self.shared.store.sync_definitions(&e) {
                tracing::error!(error = %err, "could not record the new SLO definitions");
            }
            reset
        };
        lock(&self.shared.agent).spec_reloads += 1;
        self.shared.evaluate();
        Ok(reset)
    }

    /// Stop ingest (committing what it read), and evaluate one last time.
    pub fn stop(mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(h) = self.ingest.take() {
            let _ = h.join();
        }
        self.shared.evaluate();
    }
}

fn ingest_loop(
    shared: Arc<Shared>,
    mut tails: Vec<Box<dyn Source>>,
    (deliveries, mut decoders): (Receiver<Delivery>, PushDecoders),
    poll: Duration,
    max_future: Duration,
) {
    let mut last_prune = Instant::now();
    // File batches are committed lazily (no fsync) and made durable at most
    // every DURABLE_EVERY, and on shutdown; see `Store::commit_lazily`.
    let mut last_durable = Instant::now();
    let mut lazy_pending = false;
    loop {
        let stopping = shared.shutdown.load(Ordering::SeqCst);
        let mut more = false;
        for tail in &mut tails {
            let max_ts = shared.clock.now_ms() + max_future.as_millis() as i64;
            let (outcome, changes, newest, future) = {
                let mut engine = shared.engine();
                tail.set_wanted(engine.wanted());
                let mut sink = LiveSink { engine: &mut engine, max_ts, newest: None, future: 0, counted: 0 };
                let outcome = tail.poll(&mut sink);
                let (newest, future) = (sink.newest, sink.future);
                (outcome, engine.drain_changes(), newest, future)
            };
            more |= outcome.more;
            let nothing_read = outcome.bytes == 0 && outcome.rejects.total() == 0 && !outcome.advanced;
            if !nothing_read || !changes.is_empty() {
                let deltas = reject_deltas(tail.name(), &outcome.rejects);
                let cp = vec![(tail.name().to_string(), tail.checkpoint())];
                let durable = stopping || last_durable.elapsed() >= DURABLE_EVERY;
                if commit_with_retry(&shared, &changes, &cp, &deltas, None, durable) {
                    if durable {
                        last_durable = Instant::now();
                        lazy_pending = false;
                    } else {
                        lazy_pending = true;
                    }
                }
            }
            for (reason, s) in &outcome.rejects.by_reason {
                for (place, sample) in &s.samples {
                    tracing::warn!(source = tail.name(), reason = %reason, at = %place, line = %sample, "rejected line");
                }
            }
            let mut figs = lock(&shared.sources);
            if let Some(f) = figs.get_mut(tail.name()) {
                f.lines += outcome.lines;
                f.bytes += outcome.bytes;
                f.backlog_bytes = outcome.backlog_bytes;
                f.files = outcome.files as u64;
                if let Some(n) = newest {
                    f.newest_event_ms = Some(f.newest_event_ms.map_or(n, |p| p.max(n)));
                }
                for (reason, s) in &outcome.rejects.by_reason {
                    match f.rejects.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                        Some(e) => e.1 += s.count,
                        None => f.rejects.push((reason.as_str(), s.count)),
                    }
                }
                for &(kind, n) in &outcome.errors {
                    match f.errors.iter_mut().find(|(k, _)| *k == kind) {
                        Some(e) => e.1 += n,
                        None => f.errors.push((kind, n)),
                    }
                }
            }
            drop(figs);
            if future > 0 {
                lock(&shared.agent).future_events += future;
            }
        }
        // Deliveries that arrived meanwhile (their senders are waiting).
        while let Ok(d) = deliveries.try_recv() {
            count_delivery(&shared, &mut decoders, d, max_future);
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = Instant::now();
            crate::api::silences::prune(&shared);
            let pruned = {
                let e = shared.engine();
                shared.store.prune(&e)
            };
            match pruned {
                Ok(n) => tracing::info!(rows = n, "pruned expired buckets from the store"),
                Err(e) => tracing::warn!(error = %e, "pruning the store failed"),
            }
            let before = shared.clock.now_ms() - crate::store::DELIVERY_MEMORY_MS;
            if let Err(e) = shared.store.prune_deliveries(before) {
                tracing::warn!(error = %e, "pruning remembered delivery ids failed");
            }
            let before = shared.clock.now_ms() - crate::store::ALERT_HISTORY_MS;
            if let Err(e) = shared.store.prune_alert_history(before) {
                tracing::warn!(error = %e, "pruning the alert history failed");
            }
            let before = shared.clock.now_ms() - crate::store::outbox::FAILED_KEEP_MS;
            if let Err(e) = shared.store.prune_failed_notifications(before) {
                tracing::warn!(error = %e, "pruning failed notifications failed");
            }
        }
        if lazy_pending && (stopping || last_durable.elapsed() >= DURABLE_EVERY) {
            // Nothing new to commit, but earlier lazy commits must reach the disk.
            if commit_with_retry(&shared, &[], &[], &RejectDeltas::new(), None, true) {
                last_durable = Instant::now();
                lazy_pending = false;
            }
        }
        if stopping {
            return;
        }
        if !more {
            // Wait for the next poll in small steps, so shutdown is prompt,
            // counting deliveries as soon as they arrive.
            let until = Instant::now() + poll;
            while !shared.shutdown.load(Ordering::SeqCst) {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match deliveries.recv_timeout(left.min(Duration::from_millis(20))) {
                    Ok(d) => count_delivery(&shared, &mut decoders, d, max_future),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(left.min(Duration::from_millis(20))),
                }
            }
        }
    }
}

/// How long file batches may stay committed without an fsync. A crash loses
/// at most this much reading, which is then done again (and counted once).
const DURABLE_EVERY: Duration = Duration::from_secs(2);

/// Count one pushed delivery and commit its counts (with its request id, so
/// a redelivery is recognised) before answering its sender.
fn count_delivery(shared: &Shared, decoders: &mut PushDecoders, d: Delivery, max_future: Duration) {
    if let Some(id) = &d.request_id {
        match shared.store.delivery(&d.source, id) {
            Ok(Some(_)) => {
                if let Some(f) = lock(&shared.sources).get_mut(&d.source) {
                    f.duplicate_deliveries += 1;
                }
                let _ = d.reply.send(Ok(Ack { duplicate: true, ..Ack::default() }));
                return;
            }
            Ok(None) => {}
            Err(e) => {
                // Cannot tell whether it was counted: let the sender retry.
                tracing::error!(source = %d.source, error = %e, "cannot read remembered delivery ids");
                let _ = d.reply.send(Err(Nack::Unavailable(format!("the state store cannot be read: {e}"))));
                return;
            }
        }
    }
    let mut rejects = Rejects::default();
    let max_ts = shared.clock.now_ms() + max_future.as_millis() as i64;
    let (result, changes, newest, future, counted) = {
        let mut engine = shared.engine();
        decoders.set_wanted(engine.wanted());
        let mut sink = LiveSink { engine: &mut engine, max_ts, newest: None, future: 0, counted: 0 };
        let result = decoders.decode(&d, &mut sink, &mut rejects);
        let (newest, future, counted) = (sink.newest, sink.future, sink.counted);
        (result, engine.drain_changes(), newest, future, counted)
    };
    let looked_at = match result {
        Ok(n) => n,
        Err(nack) => {
            // Nothing was counted (decoders check a payload before emitting).
            if let Some(f) = lock(&shared.sources).get_mut(&d.source) {
                crate::export::prometheus::bump(&mut f.refused, "invalid");
            }
            let _ = d.reply.send(Err(nack));
            return;
        }
    };
    let deltas = reject_deltas(&d.source, &rejects);
    let now = shared.clock.now_ms();
    let delivery = d.request_id.as_deref().map(|id| (d.source.as_str(), id, now));
    // Durable: the sender is told it was accepted only once it is on disk.
    if !commit_with_retry(shared, &changes, &[], &deltas, delivery, true) {
        let _ = d.reply.send(Err(Nack::ShuttingDown));
        return;
    }
    for (reason, s) in &rejects.by_reason {
        for (place, sample) in &s.samples {
            tracing::warn!(source = %d.source, reason = %reason, at = %place, line = %sample, "rejected record");
        }
    }
    if let Some(f) = lock(&shared.sources).get_mut(&d.source) {
        f.deliveries += 1;
        f.lines += looked_at;
        f.bytes += d.payload.bytes();
        if let Some(n) = newest {
            f.newest_event_ms = Some(f.newest_event_ms.map_or(n, |p| p.max(n)));
        }
        for (reason, s) in &rejects.by_reason {
            match f.rejects.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                Some(e) => e.1 += s.count,
                None => f.rejects.push((reason.as_str(), s.count)),
            }
        }
    }
    if future > 0 {
        lock(&shared.agent).future_events += future;
    }
    let _ = d.reply.send(Ok(Ack { duplicate: false, events: counted, rejected: rejects.total() }));
}

fn reject_deltas(source: &str, r: &Rejects) -> RejectDeltas {
    r.by_reason.iter().map(|(reason, s)| ((source.to_string(), *reason), s.count)).collect()
}

/// A batch's counts and checkpoint must land together; if the disk refuses,
/// keep trying the same batch rather than read further. On shutdown, give up
/// after a few tries: nothing of the batch was committed, so the next start
/// reads it again from the last checkpoint and counts it once.
fn commit_with_retry(
    shared: &Shared,
    changes: &[crate::sli::Change],
    cps: &[(String, Vec<u8>)],
    rejects: &RejectDeltas,
    delivery: Option<(&str, &str, i64)>,
    durable: bool,
) -> bool {
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = if durable {
            shared.store.commit_delivery(changes, cps, rejects, delivery)
        } else {
            shared.store.commit_lazily(changes, cps, rejects)
        };
        match result {
            Ok(()) => {
                lock(&shared.agent).commits += 1;
                return true;
            }
            Err(e) => {
                lock(&shared.agent).commit_failures += 1;
                if shared.shutdown.load(Ordering::SeqCst) && attempts >= 3 {
                    tracing::error!(error = %e, "store commit failed while shutting down; the batch will be read again on the next start");
                    return false;
                }
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "store commit failed; retrying the same batch");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// A fingerprint of the spec files (paths, sizes, mtimes) to notice edits.
pub fn specs_signature(paths: &[PathBuf]) -> Vec<(PathBuf, u64, i128)> {
    let mut out = Vec::new();
    fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, i128)>) {
        let Ok(meta) = std::fs::metadata(p) else { return };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
                entries.sort();
                for e in entries {
                    walk(&e, out);
                }
            }
        } else {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            out.push((p.to_path_buf(), meta.len(), mtime));
        }
    }
    for p in paths {
        walk(p, &mut out);
    }
    out
}

/// `slo-agent run --config FILE`.
pub fn run_from_file(path: &Path) -> anyhow::Result<()> {
    crate::telemetry::init_logging();
    let config = crate::config::load(path).map_err(|diags| {
        let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("{} problem(s) in {}:\n{}", list.len(), path.display(), list.join("\n"))
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(config, Arc::new(SystemClock), shutdown_signal()))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Run the agent until `shutdown` resolves: ingest, evaluate on every tick,
/// reload specs on SIGHUP or file change, serve HTTP.
pub async fn serve(
    config: AgentConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let tick = config.tick;
    let agent = Arc::new(Mutex::new(Some(tokio::task::block_in_place(|| Agent::start(config, clock))?)));
    let shared = lock(&agent).as_ref().map(|a| a.shared.clone()).expect("agent started");
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz, /api/v1/slos");

    let evaluator = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                let s = shared.clone();
                let _ = tokio::task::spawn_blocking(move || s.evaluate()).await;
            }
        })
    };
    let watcher = {
        let agent = agent.clone();
        tokio::spawn(async move { watch_specs(agent).await })
    };
    let dispatch_stop = Arc::new(AtomicBool::new(false));
    let dispatchers = spawn_dispatchers(&shared, dispatch_stop.clone());
    let app = crate::api::router(shared.clone());
    // With the peer's address, for the audit log.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("HTTP server")?;
    evaluator.abort();
    watcher.abort();
    dispatch_stop.store(true, Ordering::SeqCst);
    for d in dispatchers {
        // A send in progress is abandoned: its entries stay in the outbox.
        d.abort();
    }
    let a = lock(&agent).take();
    if let Some(a) = a {
        tokio::task::spawn_blocking(move || a.stop()).await.context("stopping ingest")?;
    }
    tracing::info!("state committed; bye");
    Ok(())
}

/// One delivery task per receiver.
fn spawn_dispatchers(shared: &Arc<Shared>, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let config = shared.notify.config.clone();
    if config.receivers.is_empty() {
        return Vec::new();
    }
    let d = crate::notify::dispatch::Dispatcher {
        store: shared.store.clone(),
        config: config.clone(),
        clock: shared.clock.clone(),
        silenced: {
            let shared = shared.clone();
            Arc::new(move |labels: &BTreeMap<String, String>, now: i64| {
                lock(&shared.silences).matching(labels, now).is_some()
            })
        },
        figures: shared.notify.figures.clone(),
        client: crate::notify::http::client(),
    };
    config
        .receivers
        .iter()
        .map(|r| {
            let wake = shared.notify.wakers.get(&r.name).cloned().unwrap_or_default();
            tracing::info!(receiver = %r.name, kind = r.kind.as_str(), "notifications enabled");
            tokio::spawn(d.clone().run_receiver(r.clone(), wake, stop.clone()))
        })
        .collect()
}

async fn watch_specs(agent: Arc<Mutex<Option<Agent>>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    let paths = match lock(&agent).as_ref() {
        Some(a) => a.config.specs.clone(),
        None => return,
    };
    let mut sig = specs_signature(&paths);
    let mut iv = tokio::time::interval(Duration::from_secs(2));
    loop {
        let by_signal = tokio::select! {
            _ = hup.recv() => true,
            _ = iv.tick() => false,
        };
        let now = specs_signature(&paths);
        if !by_signal && now == sig {
            continue;
        }
        sig = now;
        let agent = agent.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let guard = lock(&agent);
            let Some(a) = guard.as_ref() else { return };
            match a.reload() {
                Ok(reset) => {
                    tracing::info!(reset = ?reset, "specs reloaded");
                }
                Err(diags) => {
                    lock(&a.shared.agent).spec_reload_failures += 1;
                    for d in diags {
                        tracing::error!(problem = %d, "spec reload refused; keeping the previous specs");
                    }
                }
            }
        })
        .await;
    }
}
