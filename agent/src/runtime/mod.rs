//! `slo-agent run`: the runtime that owns the agent's state and runs every
//! part of the pipeline around it.
//!
//! | file | what it does |
//! | --- | --- |
//! | [`state`] | the state thread: the one owner of the engine and the alerts; counts batches and deliveries, commits, recovers from a failed state file |
//! | [`ingest`] | the ingest thread: polls file tails and AWS pulls, decodes into batches |
//! | [`evaluation`] | what every tick does with the counts: statuses, alerts, snapshot |
//! | [`maintenance`] | pruning the store, reloading specs |
//! | [`serving`] | the HTTP server: timeouts, caps, bounded graceful shutdown |
//! | [`tls`] | TLS on the API: the rustls configuration from the PEM files, reloaded when they change |
//! | `mod.rs` | wiring, supervision, start and stop |
//!
//! Threads and tasks: the state thread and the ingest thread are OS
//! threads, and so is the pruning; the HTTP server, the spec watcher,
//! the notification dispatchers and the exporters (OTLP, CloudWatch) are
//! tasks on the async runtime. The state
//! thread is the only one that changes the SLI state; the others send it
//! messages over bounded channels and read the snapshot it publishes. Every
//! essential thread and task is supervised: if one stops (a panic is a bug),
//! the agent is not ready any more and the process ends with an error, so
//! the orchestrator restarts it instead of it serving stale numbers.
//!
//! Lock order: there is no engine lock. The few locks left are leaves (held
//! for a copy or a lookup) except `SilenceBook::writes` → `SilenceBook::set`
//! (see `api::state`).

pub mod evaluation;
pub mod ingest;
pub mod maintenance;
pub mod serving;
pub mod state;
pub mod status_push;
pub mod tls;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use self::state::{Control, Core, Links};
use crate::api::state::{ApiState, Health, SilenceBook, Snapshot, SnapshotCell};
use crate::auth::ApiAuth;
use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::notify::silence::Silences;
use crate::source::BuiltSource;
use crate::source::push::{Delivery, PushGate, QUEUE_DEPTH};
use crate::spec;
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::telemetry::events::{AgentStarted, ReceiverStarted, RejectsRestored, SourceStarted};

/// Batches waiting between the ingest thread and the state thread.
const BATCH_QUEUE: usize = 2;
/// Synthetic runs waiting to be counted (one small batch per run); a run
/// that finds the queue full is counted as dropped
/// (`slo_agent_synthetic_events_dropped_total`), never waited for.
const SYNTHETIC_QUEUE: usize = 1024;

/// A running agent: its threads, and the state the API reads.
pub struct Runtime {
    pub api: Arc<ApiState>,
    pub config: AgentConfig,
    control: tokio::sync::mpsc::Sender<Control>,
    threads: Vec<(&'static str, std::thread::JoinHandle<()>)>,
    prune_stop: std::sync::mpsc::Sender<()>,
    stopping: Arc<AtomicBool>,
    fatal: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    fatal_tx: tokio::sync::mpsc::UnboundedSender<String>,
    wakers: std::collections::BTreeMap<String, Arc<tokio::sync::Notify>>,
    /// The fleet reader's ends, until `run` spawns it.
    fleet: Option<FleetTask>,
    /// Where synthetic runs send their events (to the state thread).
    synthetic_events: tokio::sync::mpsc::Sender<crate::event::EventBatch>,
}

/// The fleet reader (`crate::fleet::run`), built at the start and spawned
/// on the async runtime by [`run`].
struct FleetTask {
    reader: crate::fleet::PrometheusReader,
    every: Duration,
    targets: tokio::sync::watch::Receiver<Arc<Vec<crate::freeze::fleet::Target>>>,
    readings: tokio::sync::watch::Sender<crate::fleet::Reading>,
}

/// Run `f` on its own thread; if it panics, or returns while the runtime is
/// not stopping, the agent is not ready and the process is told to end.
fn essential(
    name: &'static str,
    health: Arc<Health>,
    stopping: Arc<AtomicBool>,
    fatal: tokio::sync::mpsc::UnboundedSender<String>,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let why = match result {
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Some(format!("panicked: {msg}"))
            }
            Ok(()) if !stopping.load(Ordering::SeqCst) => Some("stopped unexpectedly".into()),
            Ok(()) => None,
        };
        if let Some(why) = why {
            let reason = format!("the {name} thread {why}");
            // Readiness and the exit first: logging can fail (a full disk).
            health.not_ready(name, reason.clone());
            let _ = fatal.send(reason.clone());
            tracing::error!(thread = name, "{reason}; the agent cannot count any more and stops");
        }
    })
}

impl Runtime {
    /// Load the specs, open the store, read the state back, and start the
    /// state, ingest and pruning threads. The first evaluation follows at
    /// once; the agent is ready after it.
    pub fn start(config: AgentConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Runtime> {
        let slos = Arc::new(spec::load_paths(&config.specs).map_err(|diags| {
            let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            anyhow::anyhow!("the SLO specs do not validate:\n{}", list.join("\n"))
        })?);
        let store = Arc::new(Store::open(&config.state)?);
        let loaded = state::load(&config, &slos, &store, &clock)?;
        let telemetry = Arc::new(Telemetry::default());
        AgentStarted.emit(&telemetry);

        let mut silences = Silences::default();
        silences.restore(store.silences()?);
        if !silences.is_empty() {
            tracing::info!(silences = silences.len(), "silences restored");
        }
        let (overrides, unreadable) =
            crate::freeze::overrides::Overrides::restore(store.kept(crate::store::Kept::FreezeOverrides)?);
        let (bypasses, unreadable_bypasses) =
            crate::freeze::bypass::Bypasses::restore(store.kept(crate::store::Kept::FreezeBypasses)?);
        let (deploys, unreadable_deploys) =
            crate::freeze::deploys::Deploys::restore(store.kept(crate::store::Kept::Deploys)?);
        let (incidents, unreadable_incidents) =
            crate::incident::Incidents::restore(store.kept(crate::store::Kept::Incidents)?);
        for id in unreadable.iter().chain(&unreadable_bypasses).chain(&unreadable_deploys).chain(&unreadable_incidents)
        {
            tracing::warn!(id = %crate::untrusted::Escaped(id), "a stored freeze override, bypass or deploy cannot be read; ignored");
        }
        if config.api.tokens.is_empty() {
            tracing::info!("no API tokens configured: silences cannot be created or expired (see docs/api.md)");
        }

        let mut polled = Vec::new();
        let mut pushed = Vec::new();
        for s in loaded.sources {
            let subscriptions = matches!(
                &s,
                BuiltSource::Push(p) if matches!(p.records, crate::source::push::RecordFormat::CloudWatchLogs(_))
                    && p.kind == crate::source::push::PushKind::Firehose
            );
            SourceStarted { source: s.name(), kind: s.kind(), push: matches!(s, BuiltSource::Push(_)), subscriptions }
                .emit(&telemetry);
            match s {
                BuiltSource::Polled(p) => polled.push(p),
                BuiltSource::Push(p) => pushed.push(p),
            }
        }
        let kinds: std::collections::BTreeMap<String, &'static str> =
            config.sources.iter().map(|s| (s.name().to_string(), s.kind())).collect();
        for ((source, reason), count) in store.rejects()? {
            if let Some(kind) = kinds.get(&source) {
                RejectsRestored { source: &source, kind, reason: &reason, count }.emit(&telemetry);
            }
        }
        // The outbox's depth as stored: after a restart, changes that wait
        // show at once, not only after the dispatcher's first pass.
        let depths = store.outbox_depths().unwrap_or_default();
        for r in &config.notify.receivers {
            ReceiverStarted { receiver: &r.name, kind: r.kind.as_str() }.emit(&telemetry);
            if let Some(&depth) = depths.get(&r.name) {
                crate::telemetry::events::OutboxDepth { receiver: &r.name, kind: r.kind.as_str(), depth }
                    .emit(&telemetry);
            }
        }

        let pusher = match (&config.status_push, &config.status) {
            (Some(p), Some(page)) => {
                let pusher = crate::api::status_push::StatusPusher::new(p.clone(), page.components.clone(), &store)?;
                let depth = store.status_push_depth()?;
                crate::telemetry::events::StatusPushStarted { kind: pusher.kind(), depth }.emit(&telemetry);
                Some(Arc::new(pusher))
            }
            _ => None,
        };

        let (deliveries_tx, deliveries_rx) = tokio::sync::mpsc::channel::<Delivery>(QUEUE_DEPTH);
        let push = PushGate::new(pushed, deliveries_tx, config.push_timeout, config.http.max_push_in_flight)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let health = Arc::new(Health::default());
        let api = Arc::new(ApiState {
            clock: clock.clone(),
            health: health.clone(),
            snapshot: Arc::new(SnapshotCell::default()),
            store: store.clone(),
            auth: ApiAuth::new(config.api.clone()),
            silences: Arc::new(SilenceBook::new(silences)),
            overrides: Arc::new(crate::api::state::OverrideBook::new(overrides)),
            bypasses: Arc::new(crate::api::state::BypassBook::new(bypasses)),
            deploys: Arc::new(crate::api::state::DeployBook::new(deploys)),
            incidents: Arc::new(crate::api::incidents::IncidentBook::new(incidents)),
            status: Arc::new(
                crate::api::status::StatusBoard::new(
                    config.status.clone(),
                    crate::status::Uptime::restore(store.status_days()?),
                )
                .with_push(pusher),
            ),
            rendered: Default::default(),
            probes: Default::default(),
            journeys: Default::default(),
            outage: config.outage.clone(),
            probe_chains: config
                .synthetic
                .probes
                .iter()
                .map(|p| (p.name.clone(), p.service.clone(), p.hops.iter().map(|h| h.name.clone()).collect()))
                .collect(),
            push,
            telemetry: telemetry.clone(),
            receivers: config.notify.receivers.iter().map(|r| (r.name.clone(), r.kind.as_str())).collect(),
            github: config.github.as_ref().map(|g| {
                crate::telemetry::events::GithubReviewsStarted.emit(&telemetry);
                Arc::new(crate::gate::github::GithubApp::new(g.clone(), clock.clone()))
            }),
        });

        let stopping = Arc::new(AtomicBool::new(false));
        let (fatal_tx, fatal_rx) = tokio::sync::mpsc::unbounded_channel();
        let (control_tx, control_rx) = tokio::sync::mpsc::channel::<Control>(16);
        let (batches_tx, batches_rx) = tokio::sync::mpsc::channel(BATCH_QUEUE);
        let (synthetic_tx, synthetic_rx) = tokio::sync::mpsc::channel(SYNTHETIC_QUEUE);
        let (ingest_tx, ingest_rx) = std::sync::mpsc::channel();
        let wanted = Arc::new(Mutex::new(loaded.engine.wanted()));
        let wakers: std::collections::BTreeMap<String, Arc<tokio::sync::Notify>> =
            config.notify.receivers.iter().map(|r| (r.name.clone(), Arc::new(tokio::sync::Notify::new()))).collect();
        let (fleet_link, fleet) = match &config.freeze.source {
            crate::fleet::FreezeSource::Local => (None, None),
            crate::fleet::FreezeSource::Prometheus(p) => {
                let reader = crate::fleet::PrometheusReader::new(p.clone()).map_err(|e| anyhow::anyhow!(e))?;
                let (targets_tx, targets) = tokio::sync::watch::channel(Arc::new(Vec::new()));
                let (readings, readings_rx) = tokio::sync::watch::channel(crate::fleet::Reading::default());
                let link = state::FleetLink {
                    targets: targets_tx,
                    readings: readings_rx,
                    stale_after_ms: p.stale_after(config.tick).as_millis() as i64,
                };
                (Some(link), Some(FleetTask { reader, every: p.every(config.tick), targets, readings }))
            }
        };
        let links = Links {
            api: api.clone(),
            wanted: wanted.clone(),
            ingest: ingest_tx,
            wakers: wakers.clone(),
            fleet: fleet_link,
        };
        let core = Core::new(config.clone(), clock.clone(), store, slos, loaded.engine, loaded.alerts, links);

        let mut threads = Vec::new();
        let tick = config.tick;
        let h = essential("state", health.clone(), stopping.clone(), fatal_tx.clone(), move || {
            run_state_thread(core, control_rx, deliveries_rx, batches_rx, synthetic_rx, tick)
        })
        .context("starting the state thread")?;
        threads.push(("state", h));
        let ingest = ingest::Ingest {
            sources: polled,
            generation: 0,
            poll: config.poll_interval,
            batches: batches_tx,
            control: ingest_rx,
            wanted,
            telemetry: telemetry.clone(),
        };
        let h = essential("ingest", health.clone(), stopping.clone(), fatal_tx.clone(), move || ingest.run())
            .context("starting the ingest thread")?;
        threads.push(("ingest", h));
        let (prune_stop, prune_rx) = std::sync::mpsc::channel();
        let api2 = api.clone();
        let h = essential("maintenance", health, stopping.clone(), fatal_tx.clone(), move || {
            maintenance::run_pruning(api2, prune_rx)
        })
        .context("starting the maintenance thread")?;
        threads.push(("maintenance", h));
        Ok(Runtime {
            api,
            config,
            control: control_tx,
            threads,
            prune_stop,
            stopping,
            fatal: Some(fatal_rx),
            fatal_tx,
            wakers,
            fleet,
            synthetic_events: synthetic_tx,
        })
    }

    /// Evaluate now and return the snapshot (blocking; the demo moves its
    /// own clock and asks for evaluations).
    pub fn evaluate(&self) -> Arc<Snapshot> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.control.blocking_send(Control::Evaluate(reply)).is_err() {
            return self.api.snapshot();
        }
        answer.blocking_recv().unwrap_or_else(|_| self.api.snapshot())
    }

    /// Run every configured probe and journey once now, in turn, their
    /// events going to the state thread (counted before the next
    /// [`Runtime::evaluate`]); no traces. The demo runs its checks this way
    /// once per step of its simulated day, so how many runs a day holds does
    /// not depend on the machine's speed.
    pub async fn check_once(&self) {
        let checks = &self.config.synthetic;
        let telemetry = self.api.telemetry.clone();
        let sink = crate::synthetic::run::Sink { events: self.synthetic_events.clone(), tracer: None, telemetry };
        let clock = self.api.clock.clone();
        for i in 0..checks.probes.len() {
            crate::synthetic::run::probe_once(checks, i, &self.api.probes, &sink, clock.as_ref()).await;
        }
        for i in 0..checks.journeys.len() {
            crate::synthetic::run::journey_once(checks, i, &self.api.journeys, &sink, clock.as_ref()).await;
        }
    }

    /// Start the configured probes and journeys on the current tokio
    /// runtime, their events going to the state thread and their traces to
    /// `traces:`; they run until `stop` turns true (or the handles are aborted).
    pub fn spawn_checks(&self, stop: tokio::sync::watch::Receiver<bool>) -> [tokio::task::JoinHandle<()>; 2] {
        let checks = Arc::new(self.config.synthetic.clone());
        let telemetry = self.api.telemetry.clone();
        let tracer = match checks.traces.as_ref().map(|t| crate::synthetic::trace::start(t, telemetry.clone())) {
            None => None,
            Some(Ok((t, _exporter))) => Some(t),
            Some(Err(e)) => {
                // Checked at load; a header file that went away since is not a reason to stop probing.
                tracing::error!(error = %e, "the checks' traces cannot be sent; running them without");
                None
            }
        };
        let sink = crate::synthetic::run::Sink { events: self.synthetic_events.clone(), tracer, telemetry };
        let probes = tokio::spawn(crate::synthetic::run::run(
            checks.clone(),
            self.api.probes.clone(),
            sink.clone(),
            self.api.clock.clone(),
            stop.clone(),
        ));
        let journeys = tokio::spawn(crate::synthetic::run::run_journeys(
            checks,
            self.api.journeys.clone(),
            sink,
            self.api.clock.clone(),
            stop,
        ));
        [probes, journeys]
    }

    /// Spawn a task on the current tokio runtime whose panic (a bug) stops
    /// the agent, naming `what`; the handle aborts it at shutdown.
    fn supervised(
        &self,
        what: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        let h = tokio::spawn(task);
        let abort = h.abort_handle();
        let fatal = self.fatal_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = h.await
                && e.is_panic()
            {
                let _ = fatal.send(format!("{what} panicked: {e}"));
            }
        });
        abort
    }

    /// The pushing exporters (`export:`), on the current tokio runtime,
    /// reading the published snapshot (never the engine) until `stop` turns
    /// true (OTLP) or they are aborted. An exporter that cannot be built or
    /// that panics stops the agent (a bug: the config was checked at load).
    fn spawn_exporters(&self, stop: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::AbortHandle> {
        let mut out = Vec::new();
        if let Some(c) = &self.config.export.otlp {
            let api = self.api.clone();
            let figures: crate::export::otlp::Figures = Arc::new(move || {
                let s = api.snapshot();
                let mut families = crate::export::slo::families(&s.statuses, &s.counted, &s.alerts);
                // The SLOs' budget outlooks are SLO figures too.
                families.extend(crate::signals::metrics::budget_families(&s.forecasts));
                families
            });
            // `local` is the region of an agent that was told none.
            let region = Some(self.config.synthetic.region.as_str()).filter(|r| *r != "local");
            let built = crate::export::otlp::OtlpExporter::build(
                c,
                region,
                figures,
                self.api.telemetry.clone(),
                self.api.clock.clone(),
            );
            match built {
                Ok(e) => out.push(self.supervised("the OTLP exporter", e.run(stop))),
                Err(e) => {
                    let _ = self.fatal_tx.send(e);
                }
            }
        }
        if let Some(cfg) = self.config.export.cloudwatch.clone() {
            let cell = self.api.snapshot.clone();
            let read = move || {
                let s = cell.get();
                (s.at_ms > 0).then(|| crate::export::cloudwatch::Figures::of(s.at_ms, &s.statuses, &s.counted))
            };
            let task = crate::export::cloudwatch::run(cfg, read, self.api.telemetry.clone());
            out.push(self.supervised("the CloudWatch exporter", task));
        }
        out
    }

    /// One delivery task per notification receiver.
    fn spawn_dispatchers(&self, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
        let config = Arc::new(self.config.notify.clone());
        if config.receivers.is_empty() {
            return Vec::new();
        }
        let silences = self.api.silences.clone();
        let d = crate::notify::dispatch::Dispatcher {
            store: self.api.store.clone(),
            config: config.clone(),
            clock: self.api.clock.clone(),
            silenced: Arc::new(move |labels: &std::collections::BTreeMap<String, String>, now: i64| {
                silences.read().matching(labels, now).is_some()
            }),
            telemetry: self.api.telemetry.clone(),
            client: crate::notify::http::client(),
        };
        config
            .receivers
            .iter()
            .map(|r| {
                let wake = self.wakers.get(&r.name).cloned().unwrap_or_default();
                tokio::spawn(d.clone().run_receiver(r.clone(), wake, stop.clone()))
            })
            .collect()
    }

    /// Stop: count what is queued, commit, evaluate once more, stop the
    /// threads — or give up at `deadline`. `true` when the last commit
    /// reached the disk. Blocking.
    pub fn stop(mut self, deadline: Instant) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.prune_stop.send(());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let committed = if self.control.blocking_send(Control::Shutdown(deadline, reply)).is_ok() {
            wait_until(deadline, answer).unwrap_or(false)
        } else {
            false
        };
        for (name, h) in self.threads.drain(..) {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::warn!(thread = name, "did not stop in time; leaving it");
            }
        }
        committed
    }
}

/// Wait for a oneshot answer until `deadline` (blocking).
fn wait_until<T>(deadline: Instant, mut answer: tokio::sync::oneshot::Receiver<T>) -> Option<T> {
    loop {
        match answer.try_recv() {
            Ok(v) => return Some(v),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return None,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The state thread: takes messages in turn, evaluates on every tick.
fn run_state_thread(
    mut core: Core,
    mut control: tokio::sync::mpsc::Receiver<Control>,
    mut deliveries: tokio::sync::mpsc::Receiver<Delivery>,
    mut batches: tokio::sync::mpsc::Receiver<state::Polled>,
    mut synthetic: tokio::sync::mpsc::Receiver<crate::event::EventBatch>,
    tick: Duration,
) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread runtime");
    rt.block_on(async move {
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_at = tokio::time::Instant::now();
        loop {
            let durable_at = core.durable_due().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(Control::Evaluate(reply)) => {
                        // Synthetic runs sent before the call are counted first:
                        // the caller (the demo) ran them and expects to see them.
                        while let Ok(e) = synthetic.try_recv() {
                            core.count_synthetic(e);
                        }
                        let _ = reply.send(core.evaluate());
                    }
                    Some(Control::Reload(set, reply)) => {
                        let reset = core.reload(set);
                        crate::telemetry::events::SpecsReloaded { slos: core.slo_count(), reset: &reset }
                            .emit(&core.telemetry());
                        let _ = reply.send(reset);
                    }
                    Some(Control::Shutdown(deadline, reply)) => {
                        while let Ok(e) = synthetic.try_recv() {
                            core.count_synthetic(e);
                        }
                        let ok = shut_down(&mut core, &mut deliveries, &mut batches, deadline).await;
                        let _ = reply.send(ok);
                        return;
                    }
                    None => {
                        shut_down(&mut core, &mut deliveries, &mut batches, Instant::now() + Duration::from_secs(5)).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(retry_at), if core.is_broken() => {
                    retry_at = core.recover().map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
                }
                Some(d) = deliveries.recv() => core.count_delivery(d),
                _ = ticks.tick() => { core.evaluate(); }
                Some(p) = batches.recv() => core.count_polled(p),
                Some(e) = synthetic.recv() => core.count_synthetic(e),
                _ = tokio::time::sleep_until(durable_at.unwrap_or_else(tokio::time::Instant::now)), if durable_at.is_some() => {
                    core.make_durable();
                }
            }
        }
    });
}

/// Count what is queued and what the ingest thread still hands over, then
/// commit durably. Gives up waiting for the ingest thread shortly before
/// `deadline` (what it did not hand over is read again at the next start).
async fn shut_down(
    core: &mut Core,
    deliveries: &mut tokio::sync::mpsc::Receiver<Delivery>,
    batches: &mut tokio::sync::mpsc::Receiver<state::Polled>,
    deadline: Instant,
) -> bool {
    core.stop_ingest();
    deliveries.close();
    while let Some(d) = deliveries.recv().await {
        core.count_delivery(d);
    }
    let drain_until = tokio::time::Instant::from_std(deadline) - Duration::from_millis(500);
    loop {
        match tokio::time::timeout_at(drain_until, batches.recv()).await {
            Ok(Some(p)) => core.count_polled(p),
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    "the ingest thread did not stop in time; its last batch is read again at the next start"
                );
                break;
            }
        }
    }
    core.finish()
}

/// Run the agent until `shutdown` resolves (or an essential part fails):
/// ingest, evaluate on every tick, reload specs on SIGHUP or file change,
/// notify, serve HTTP. Ends within `http.shutdown_timeout` of `shutdown`.
pub async fn run(
    config: AgentConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let limits = config.http;
    // Before anything listens: without a usable certificate the agent does
    // not start (it never falls back to plaintext).
    let tls_files = match &config.api.tls {
        Some(t) => Some((t.clone(), tls::load(t).await.context("api.tls")?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let mut runtime = tokio::task::block_in_place(|| Runtime::start(config, clock))?;
    let api = runtime.api.clone();
    let telemetry = api.telemetry.clone();
    let (tls, reloader) = match tls_files {
        Some((cfg, loaded)) => {
            let (server, reloader) = tls::start(&cfg, loaded, telemetry.clone());
            (Some(server), Some(tokio::spawn(reloader.run())))
        }
        None => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %listener.local_addr()?, scheme, "serving /metrics, /healthz, /readyz, /api/v1/slos");
    let class_limits = serving::ClassLimits::new(&limits, telemetry.clone());
    let app = crate::api::router(api.clone())
        .layer(axum::middleware::from_fn_with_state(class_limits, serving::limit_in_flight));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let [synthetic, journeys] = runtime.spawn_checks(stop_rx.clone());
    let exporters = runtime.spawn_exporters(stop_rx.clone());
    let mut server = tokio::spawn(serving::serve(listener, app, limits, stop_rx, telemetry, tls));
    let watcher = tokio::spawn(maintenance::watch_specs(runtime.config.specs.clone(), runtime.control.clone(), api));
    let dispatch_stop = Arc::new(AtomicBool::new(false));
    let mut dispatchers = Vec::new();
    // A dispatcher runs until told to stop; one that panics is a bug: supervised too.
    for h in runtime.spawn_dispatchers(dispatch_stop.clone()) {
        dispatchers.push(h.abort_handle());
        let fatal = runtime.fatal_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = h.await
                && e.is_panic()
            {
                let _ = fatal.send(format!("a notification dispatcher panicked: {e}"));
            }
        });
    }
    // The fleet reader: one that panics is a bug; supervised too.
    let fleet = runtime.fleet.take().map(|t| {
        let task = crate::fleet::run(
            t.reader,
            t.every,
            t.targets,
            t.readings,
            runtime.api.clock.clone(),
            runtime.api.telemetry.clone(),
        );
        runtime.supervised("the fleet reader", task)
    });
    // The status push: one that panics is a bug; supervised too.
    let status_push = runtime.api.status.push.clone().map(|p| {
        let task = status_push::run(p, runtime.api.store.clone(), runtime.api.telemetry.clone(), dispatch_stop.clone());
        runtime.supervised("the status push", task)
    });
    let mut fatal = runtime.fatal.take().expect("taken once");

    let failure = tokio::select! {
        _ = shutdown => None,
        r = fatal.recv() => Some(r.unwrap_or_else(|| "an essential part stopped".into())),
        r = &mut server => Some(format!("the HTTP server stopped: {r:?}")),
    };
    let deadline = Instant::now() + limits.shutdown_timeout;
    let _ = stop_tx.send(true);
    synthetic.abort();
    journeys.abort();
    for e in &exporters {
        // An export in progress is abandoned; the figures are sent whole or not at all.
        e.abort();
    }
    watcher.abort();
    if let Some(r) = &reloader {
        r.abort();
    }
    if let Some(f) = &fleet {
        f.abort();
    }
    if let Some(p) = &status_push {
        // A send in progress is abandoned: its entry stays in the outbox.
        p.abort();
    }
    dispatch_stop.store(true, Ordering::SeqCst);
    for d in &dispatchers {
        // A send in progress is abandoned: its entries stay in the outbox.
        d.abort();
    }
    let committed = tokio::task::spawn_blocking(move || runtime.stop(deadline));
    let committed = match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), committed).await {
        Ok(Ok(c)) => c,
        _ => false,
    };
    if tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), &mut server).await.is_err() {
        tracing::warn!("closing connections that did not finish in time");
        server.abort();
    }
    if committed {
        tracing::info!("state committed; bye");
    } else {
        tracing::error!(
            "the last commit did not reach the state file; what was read since the last durable commit is read again at the next start"
        );
    }
    match failure {
        Some(why) => Err(anyhow::anyhow!("{why}")),
        None if !committed => Err(anyhow::anyhow!("stopped without committing the last batch")),
        None => Ok(()),
    }
}

/// `agent.yaml`, every problem in it at once.
pub fn load_config(path: &Path) -> anyhow::Result<AgentConfig> {
    crate::config::load(path).map_err(|diags| {
        let list: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("{} problem(s) in {}:\n{}", list.len(), path.display(), list.join("\n"))
    })
}

/// Run `f` on a fresh async runtime. Blocking tasks still running when it
/// ends (a client that never finished its request) do not keep the process
/// alive: the shutdown is bounded.
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let out = rt.block_on(f);
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(out)
}

/// `slo-agent run --config FILE`.
pub fn run_from_file(path: &Path) -> anyhow::Result<()> {
    tune_malloc();
    crate::telemetry::init_logging();
    let config = load_config(path)?;
    block_on(run(config, Arc::new(SystemClock), shutdown_signal()))?
}

/// Two glibc defaults cost a catch-up most of its memory (1,000 SLOs over
/// 30 days of logs, `docs/benchmarks.md`, "Scale"):
/// - every thread that allocates gets its own arena (up to 8 per core),
///   which keeps what is freed there: 223 MiB held after the catch-up with
///   the default, 160 MiB with two arenas;
/// - a freed large block raises the size from which blocks are mapped on
///   their own (up to 32 MiB), so the decoded batches (megabytes each) soon
///   come from the arenas and their freed room stays resident: the peak
///   while catching up was 150–160 MiB with the moving threshold and
///   105–120 MiB with a fixed one of 256 KiB (such blocks are mapped and
///   given back when freed).
///
/// `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the environment still
/// win. Called before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; it is called
        // before the process starts other threads.
        #[allow(unsafe_code)]
        unsafe {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// Blocks from this size on are mapped on their own ([`tune_malloc`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Hand memory that was freed back to the system. A catch-up of weeks of
/// logs decodes and frees much more than the agent then keeps: with 1,000
/// SLOs, 163 MiB stayed resident after it, against 50 MiB after a restart on
/// the same state (`docs/benchmarks.md`, "Scale"). glibc's `malloc_trim`
/// returns the free pages of every arena; it takes about a millisecond, and
/// is called at most every few seconds, after an evaluation.
pub(crate) fn trim_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own
    // arenas; it is thread-safe and touches no memory in use.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventSink;
    use crate::source::{PollOutcome, Source};

    /// A source with a bug: its poll panics.
    struct Panicking;

    impl Source for Panicking {
        fn name(&self) -> &str {
            "buggy"
        }
        fn kind(&self) -> &'static str {
            "file"
        }
        fn poll(&mut self, _sink: &mut dyn EventSink) -> PollOutcome {
            panic!("a bug in a source");
        }
        fn checkpoint(&self) -> Vec<u8> {
            Vec::new()
        }
    }

    /// Fault 9: the ingest thread dies (a panic in a source): the agent is
    /// not ready any more, with the reason, and the runtime is told to end
    /// the process with an error — it does not go on evaluating stale counts.
    #[test]
    fn a_dead_ingest_thread_makes_the_agent_unready_and_stops_it() {
        let health = Arc::new(Health::default());
        health.ready("state");
        let stopping = Arc::new(AtomicBool::new(false));
        let (fatal_tx, mut fatal) = tokio::sync::mpsc::unbounded_channel();
        let (batches, _keep) = tokio::sync::mpsc::channel(1);
        let (_control_tx, control) = std::sync::mpsc::channel();
        let ingest = ingest::Ingest {
            sources: vec![Box::new(Panicking)],
            generation: 0,
            poll: Duration::from_millis(10),
            batches,
            control,
            wanted: Arc::new(Mutex::new(crate::event::Wanted::ALL)),
            telemetry: Arc::new(Telemetry::default()),
        };
        let h = essential("ingest", health.clone(), stopping, fatal_tx, move || ingest.run()).unwrap();
        h.join().unwrap();
        assert!(!health.is_ready());
        assert_eq!(health.reasons(), ["ingest: the ingest thread panicked: a bug in a source"]);
        assert_eq!(fatal.try_recv().unwrap(), "the ingest thread panicked: a bug in a source");
    }

    /// An essential thread that returns while the runtime is not stopping
    /// is as bad as one that panicked; while stopping it is expected.
    #[test]
    fn an_essential_thread_that_ends_early_is_fatal_but_not_when_stopping() {
        let health = Arc::new(Health::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let (fatal_tx, mut fatal) = tokio::sync::mpsc::unbounded_channel();
        essential("state", health.clone(), stopping.clone(), fatal_tx.clone(), || {}).unwrap().join().unwrap();
        assert_eq!(fatal.try_recv().unwrap(), "the state thread stopped unexpectedly");
        stopping.store(true, Ordering::SeqCst);
        essential("state", health, stopping, fatal_tx, || {}).unwrap().join().unwrap();
        assert!(fatal.try_recv().is_err());
    }
}
