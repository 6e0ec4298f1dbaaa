//! The state thread's rules, on a real store (redb) with writes made to
//! fail the way a full disk makes them fail (`Store::failing`).

use std::sync::Arc;

use super::*;
use crate::api::state::{Health, SilenceBook, SnapshotCell};
use crate::auth::ApiAuth;
use crate::clock::ManualClock;
use crate::event::Origin;
use crate::source::push::{Claim, PushGate, PushKind};

const T0: i64 = 1_800_000_000_000;

const SPEC: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: api}\nspec:\n  service: shop\n  objective: 99\n  window: 7d\n  indicator: {source: ndjson, good: {status: \"< 500\"}}\n";

struct Fixture {
    core: Core,
    api: Arc<ApiState>,
    store: Arc<Store>,
    clock: ManualClock,
    ingest: std::sync::mpsc::Receiver<IngestControl>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(None)
}

fn fixture_with(fleet: Option<FleetLink>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join("specs/api.yaml"), SPEC).unwrap();
    let text = "specs: [specs]\nstate: state.redb\nsources: []\nalerts: {min_events: 0}\nnotify:\n  receivers:\n    - {name: hook, type: webhook, url: \"http://127.0.0.1:9/hook\"}\n  routes:\n    - {receiver: hook}\n";
    let config = crate::config::parse("agent.yaml", text, dir.path()).unwrap();
    let clock = ManualClock::new(T0);
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
    let slos = Arc::new(crate::spec::load_paths(&config.specs).unwrap());
    let store = Arc::new(Store::open(&config.state).unwrap());
    let loaded = load(&config, &slos, &store, &clock_dyn).unwrap();
    let (queue, _deliveries) = tokio::sync::mpsc::channel(4);
    let api = Arc::new(ApiState {
        clock: clock_dyn.clone(),
        health: Arc::new(Health::default()),
        snapshot: Arc::new(SnapshotCell::default()),
        store: store.clone(),
        auth: ApiAuth::default(),
        silences: Arc::new(SilenceBook::default()),
        overrides: Default::default(),
        bypasses: Default::default(),
        deploys: Default::default(),
        incidents: Default::default(),
        status: Default::default(),
        rendered: Default::default(),
        probes: Default::default(),
        journeys: Default::default(),
        outage: Default::default(),
        probe_chains: Vec::new(),
        push: PushGate::new(Vec::new(), queue, std::time::Duration::from_secs(1), 1).unwrap(),
        telemetry: Arc::new(Telemetry::default()),
        receivers: vec![("hook".into(), "webhook")],
        github: None,
    });
    let (ingest_tx, ingest) = std::sync::mpsc::channel();
    let links = Links {
        api: api.clone(),
        wanted: Arc::new(std::sync::Mutex::new(crate::event::Wanted::ALL)),
        ingest: ingest_tx,
        wakers: Default::default(),
        fleet,
    };
    let core = Core::new(config, clock_dyn, store.clone(), slos, loaded.engine, loaded.alerts, links);
    Fixture { core, api, store, clock, ingest, _dir: dir }
}

/// `n` requests of the last `minutes` minutes, `bad` of every 10 failing.
fn batch(now: i64, n: i64, bad: i64) -> EventBatch {
    let mut b = EventBatch::new();
    for i in 0..n {
        let status = if i % 10 < bad { 503 } else { 200 };
        let ev = RequestEvent {
            ts_ms: now - 1 - (i % 50) * 60_000 / 50,
            origin: Some(Origin::Ndjson),
            service: "shop",
            path: "/x",
            status,
            ..Default::default()
        };
        b.event(&ev);
    }
    b
}

fn polled(generation: u64, events: EventBatch, checkpoint: &[u8]) -> Polled {
    let outcome = PollOutcome { bytes: 1, lines: events.len() as u64, ..Default::default() };
    Polled { generation, source: "logs".into(), kind: "file", events, checkpoint: checkpoint.to_vec(), outcome }
}

fn total(api: &ApiState) -> u64 {
    api.snapshot().statuses[0].window.events.total
}

fn delivery(events: EventBatch) -> (Delivery, Arc<Claim>, tokio::sync::oneshot::Receiver<Result<Ack, Nack>>) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let claim = Arc::new(Claim::default());
    let d = Delivery {
        source: "otel".into(),
        kind: PushKind::Otlp,
        request_id: None,
        lines: events.len() as u64,
        bytes: 10,
        events,
        rejects: Default::default(),
        unrouted: Default::default(),
        claim: claim.clone(),
        reply,
    };
    (d, claim, answer)
}

/// A failed commit makes the agent not ready, drops what was being
/// counted, and after the reopen the state is what the file holds; later
/// batches count again.
#[test]
fn a_failed_commit_is_not_ready_until_the_file_is_reopened_and_read_back() {
    let mut f = fixture();
    f.core.count_polled(polled(0, batch(T0, 100, 0), b"cp-1"));
    f.core.evaluate();
    assert!(f.api.health.is_ready(), "{:?}", f.api.health.reasons());
    assert_eq!(total(&f.api), 100);

    f.store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    f.core.count_polled(polled(0, batch(T0, 50, 0), b"cp-2"));
    assert!(!f.api.health.is_ready());
    let why = f.api.health.reasons().join("; ");
    assert!(why.starts_with("store: a state file commit failed"), "{why}");
    // While broken, batches are not counted (they are read again later) …
    f.core.count_polled(polled(0, batch(T0, 7, 0), b"cp-3"));
    // … and deliveries are refused, not counted.
    let (d, _, mut answer) = delivery(batch(T0, 5, 0));
    f.core.count_delivery(d);
    assert!(matches!(answer.try_recv(), Ok(Err(Nack::Unavailable(_)))));

    // The disk is still full: reopening does not make it ready.
    f.core.recover();
    assert!(!f.api.health.is_ready());

    f.store.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(f.core.recover().is_none(), "recovered");
    assert!(f.api.health.is_ready(), "{:?}", f.api.health.reasons());
    // The sources are rebuilt from the committed checkpoint, as a new generation.
    match f.ingest.try_recv() {
        Ok(IngestControl::Replace { generation, .. }) => assert_eq!(generation, 1),
        _ => panic!("the ingest thread was not told to rebuild its sources"),
    }
    assert_eq!(total(&f.api), 100, "what the file holds");
    assert_eq!(f.store.checkpoint("logs").unwrap().as_deref(), Some(&b"cp-1"[..]));
    // A batch of the old sources is dropped; the new ones count.
    f.core.count_polled(polled(0, batch(T0, 9, 0), b"cp-old"));
    f.core.count_polled(polled(1, batch(T0, 50, 0), b"cp-2"));
    f.core.evaluate();
    assert_eq!(total(&f.api), 150);
    assert_eq!(f.store.checkpoint("logs").unwrap().as_deref(), Some(&b"cp-2"[..]));
}

/// An alert that fires while its commit fails is not lost: in memory the
/// alert does not change until the commit succeeds, so the next evaluation
/// after the reopen finds (and commits, with its notification) the change.
#[test]
fn an_alert_change_whose_commit_failed_is_made_again_after_the_reopen() {
    let mut f = fixture();
    f.core.count_polled(polled(0, batch(T0, 1000, 0), b"cp-1"));
    f.core.evaluate();
    f.core.make_durable();
    f.clock.set(T0 + 120_000);
    f.core.count_polled(polled(0, batch(T0 + 120_000, 1000, 10), b"cp-2"));
    f.core.make_durable();

    f.store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let snap = f.core.evaluate();
    assert!(snap.statuses[0].conditions.iter().any(|c| c.firing), "the page condition holds");
    assert!(snap.alerts.is_empty(), "no alert changed in memory: {:?}", snap.alerts);
    assert!(!f.api.health.is_ready());
    let (waiting, _) = crate::notify::outbox::Outbox::waiting(&*f.store, "hook").unwrap();
    assert!(waiting.is_empty());

    f.store.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(f.core.recover().is_none());
    let snap = f.api.snapshot();
    assert!(
        snap.alerts.iter().any(|a| a.phase == crate::alert::Phase::Firing),
        "the alert fires after the reopen: {:?}",
        snap.alerts
    );
    let (waiting, _) = crate::notify::outbox::Outbox::waiting(&*f.store, "hook").unwrap();
    assert!(waiting.iter().any(|e| e.notice.slo == "api"), "its notification waits in the outbox: {waiting:?}");
}

/// A delivery whose handler gave up (and told the sender to retry) is
/// never counted: the sender's retry must not count twice.
#[test]
fn a_delivery_the_handler_gave_up_on_is_not_counted() {
    let mut f = fixture();
    let (d, claim, mut answer) = delivery(batch(T0, 40, 0));
    assert!(claim.abandon(), "the handler timed out first");
    f.core.count_delivery(d);
    f.core.evaluate();
    assert_eq!(total(&f.api), 0);
    assert!(answer.try_recv().is_err(), "no answer: nobody waits for it");

    let (d, claim, mut answer) = delivery(batch(T0, 40, 0));
    f.core.count_delivery(d);
    assert!(!claim.abandon(), "taken: the handler must wait for the answer");
    assert!(matches!(answer.try_recv(), Ok(Ok(Ack { events: 40, .. }))));
    f.core.evaluate();
    assert_eq!(total(&f.api), 40);
}

/// An SLO whose spec file goes away for a moment keeps its history when it
/// comes back (and after a restart), and later counts add to it.
#[test]
fn an_slo_removed_and_put_back_keeps_its_history() {
    let mut f = fixture();
    f.core.count_polled(polled(0, batch(T0, 306, 0), b"cp-1"));
    f.core.make_durable();
    let with = f.core.slos.clone();
    f.core.reload(Arc::new(crate::spec::model::SloSet::default()));
    assert!(f.api.snapshot().statuses.is_empty());
    f.core.reload(with.clone());
    assert_eq!(total(&f.api), 306);
    f.core.count_polled(polled(0, batch(T0, 4, 0), b"cp-2"));
    f.core.evaluate();
    assert_eq!(total(&f.api), 310);

    // After a restart: the same.
    f.core.make_durable();
    let config = f.core.config.clone();
    let clock: Arc<dyn Clock> = Arc::new(f.clock.clone());
    let mut loaded = load(&config, &with, &f.store, &clock).unwrap();
    assert_eq!(loaded.engine.evaluate(T0)[0].window.events.total, 310);
}

/// A source whose poll is stuck in I/O (a hung disk or network file
/// system) until it is released.
struct Stuck {
    entered: std::sync::mpsc::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
}

impl crate::source::Source for Stuck {
    fn name(&self) -> &str {
        "logs"
    }
    fn kind(&self) -> &'static str {
        "file"
    }
    fn poll(&mut self, _sink: &mut dyn crate::event::EventSink) -> PollOutcome {
        let _ = self.entered.send(());
        let _ = self.release.recv();
        PollOutcome::default()
    }
    fn checkpoint(&self) -> Vec<u8> {
        Vec::new()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Fault 10: reading a source (glob, open, read, gunzip, decode) happens
/// on the ingest thread, which shares nothing with the state thread but a
/// queue. A poll stuck in I/O holds up that source only: the state thread
/// goes on evaluating on its tick and counting and committing pushes.
#[test]
fn a_source_stuck_in_io_holds_up_neither_evaluation_nor_pushes() {
    let Fixture { core, api, clock, _dir, .. } = fixture();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let (batches_tx, batches_rx) = tokio::sync::mpsc::channel(4);
    let (ingest_control, ingest_rx) = std::sync::mpsc::channel();
    let ingest = super::super::ingest::Ingest {
        sources: vec![Box::new(Stuck { entered: entered_tx, release: release_rx })],
        generation: 0,
        poll: std::time::Duration::from_millis(10),
        batches: batches_tx,
        control: ingest_rx,
        wanted: Arc::new(std::sync::Mutex::new(crate::event::Wanted::ALL)),
        telemetry: Arc::new(Telemetry::default()),
    };
    let ingest_thread = std::thread::spawn(move || ingest.run());
    entered.recv_timeout(std::time::Duration::from_secs(10)).expect("the poll started");

    let (control, control_rx) = tokio::sync::mpsc::channel(4);
    let (deliveries, deliveries_rx) = tokio::sync::mpsc::channel(4);
    let (_synthetic, synthetic_rx) = tokio::sync::mpsc::channel(4);
    let state_thread = std::thread::spawn(move || {
        super::super::run_state_thread(
            core,
            control_rx,
            deliveries_rx,
            batches_rx,
            synthetic_rx,
            std::time::Duration::from_millis(20),
        )
    });

    // Ticks evaluate while the poll is stuck.
    wait_for("the first evaluation", || api.snapshot().at_ms == T0);
    clock.advance(60_000);
    wait_for("an evaluation at the new time", || api.snapshot().at_ms == T0 + 60_000);

    // A push is counted and committed, and the next tick shows it.
    let (d, _claim, mut answer) = delivery(batch(T0 + 60_000, 40, 1));
    deliveries.try_send(d).map_err(|_| "queue").unwrap();
    let mut acked = None;
    wait_for("the delivery's answer", || {
        acked = answer.try_recv().ok();
        acked.is_some()
    });
    assert!(acked.unwrap().is_ok());
    clock.advance(1_000);
    wait_for("the delivery in the snapshot", || total(&api) == 40);

    // Released, the ingest thread stops; the state thread shuts down.
    release.send(()).unwrap();
    ingest_control.send(IngestControl::Stop).unwrap();
    ingest_thread.join().unwrap();
    let (reply, done) = tokio::sync::oneshot::channel();
    control
        .blocking_send(Control::Shutdown(std::time::Instant::now() + std::time::Duration::from_secs(5), reply))
        .map_err(|_| "control")
        .unwrap();
    assert!(done.blocking_recv().unwrap(), "the final commit reached the file");
    state_thread.join().unwrap();
}

/// `freeze.source: prometheus`: the board comes from the fleet's figures
/// while they are recent — never from the local counts, which here would
/// freeze — and says why there is no answer (the agent unready, part
/// `freeze`) once they are older than the bound; the services stay named.
#[test]
fn the_fleet_board_comes_from_recent_readings_only() {
    use crate::fleet::Reading;
    use crate::freeze::fleet::{Figures, SloFigures};
    use crate::freeze::{Source, Status};
    let (targets, targets_rx) = tokio::sync::watch::channel(Arc::new(Vec::new()));
    let (readings_tx, readings) = tokio::sync::watch::channel(Reading::default());
    let mut f = fixture_with(Some(FleetLink { targets, readings, stale_after_ms: 10_000 }));
    assert_eq!(targets_rx.borrow()[0].id, "shop-api", "the SLOs to read are handed over");

    let snap = f.core.evaluate();
    let prefix = "the fleet freeze cannot be read from Prometheus: ";
    assert_eq!(snap.freeze.unavailable.as_deref(), Some(&*format!("{prefix}not read yet (the agent is starting)")));
    assert_eq!(f.api.health.reasons(), [format!("freeze: {prefix}not read yet (the agent is starting)")]);

    // Half of the local requests fail: alone, this agent would freeze.
    f.core.count_polled(polled(0, batch(T0, 1000, 5), b"x"));
    let fleet = SloFigures {
        budget_remaining: Some(0.5),
        error_ratios: [("7d".to_string(), 0.005)].into(),
        events: 20_000.0,
        ..Default::default()
    };
    let figures = Figures { read_at_ms: T0, slos: [("api".to_string(), fleet)].into() };
    readings_tx.send_replace(Reading { figures: Some(Arc::new(figures)), error: None });
    let snap = f.core.evaluate();
    assert!(snap.statuses[0].budget_remaining() < 0.0, "the local figures are spent");
    let sv = snap.freeze.get("shop").unwrap();
    assert_eq!((sv.status, sv.frozen, sv.source, sv.slos[0].events), (Status::Ok, false, Source::Prometheus, 20_000));
    assert!(f.api.health.is_ready(), "{:?}", f.api.health.reasons());

    // Readings fail: the last figures count up to the bound, then no answer.
    readings_tx.send_modify(|r| r.error = Some("cannot reach http://prometheus:9090/api/v1/query: refused".into()));
    f.clock.advance(10_000);
    assert_eq!(f.core.evaluate().freeze.unavailable, None);
    f.clock.advance(1);
    let snap = f.core.evaluate();
    assert_eq!(
        snap.freeze.unavailable.as_deref(),
        Some(&*format!(
            "{prefix}cannot reach http://prometheus:9090/api/v1/query: refused (the last figures are 10 s old; they are answered from for 10 s)"
        ))
    );
    assert_eq!(snap.freeze.services.len(), 1, "the last board's services stay named");
    assert!(!f.api.health.is_ready());
}

/// A catch-up's large batch is fed to the engine on one thread and to the
/// hop decomposition and the live signals on another: what each of them
/// holds afterwards is what the same events in small batches give.
#[test]
fn a_large_batch_split_across_two_threads_counts_what_small_batches_count() {
    let (mut split, mut small) = (fixture(), fixture());
    let events = batch(T0, 5 * 1000, 2);
    assert!(events.len() >= SPLIT_BATCH_EVENTS);
    split.core.count_polled(polled(0, events, b"cp"));
    for k in 0..5 {
        small.core.count_polled(polled(0, batch(T0, 1000, 2), format!("cp-{k}").as_bytes()));
    }
    let (a, b) = (split.core.engine.evaluate(T0), small.core.engine.evaluate(T0));
    assert_eq!(a[0].window, b[0].window);
    assert_eq!(a[0].window.events.total, 5000);
    // Let the live signals close the batch's minutes.
    for f in [&mut split, &mut small] {
        f.clock.advance(30 * 60_000);
        f.core.evaluate();
    }
    assert!(!split.core.signals.is_empty());
    assert_eq!(split.core.signals.stats, small.core.signals.stats);
    assert_eq!(split.core.signals.len(), small.core.signals.len());
    let values = |f: &Fixture| {
        format!("{:?}", f.core.signals_view.series.iter().map(|s| (&s.key, &s.recent)).collect::<Vec<_>>())
    };
    assert_eq!(values(&split), values(&small));
    assert_eq!(split.core.hops.stats, small.core.hops.stats);
    assert_eq!(split.core.hops.memory_bytes(), small.core.hops.memory_bytes());
}
