//! Delivery: one task per receiver reads its outbox, groups the changes,
//! sends, retries, and deletes what the receiver accepted.
//!
//! - **Grouping.** Changes of one group (route + `group_by` values) go out
//!   together: the first change of a new group after `group_wait`, later
//!   ones at most once per `group_interval`. A group still firing is sent
//!   again every `repeat_interval` when the route sets one.
//! - **Order and exactly once.** A group's notifications go one at a time,
//!   in outbox order; a failed one is retried (the same message, the same
//!   id) before anything newer of the group. A trigger is sent once per
//!   firing episode: the group state records what the receiver was told, in
//!   the same transaction that deletes the delivered entries. A crash
//!   between the receiver's acceptance and that commit sends the message
//!   again; the dedup keys make that harmless for PagerDuty, Opsgenie and
//!   Alertmanager, and the notification id lets a webhook drop it.
//! - **Retries.** Exponential backoff from 1 s to 5 min with jitter (each
//!   wait is 50–100 % of the step), for as long as it takes. A refusal (4xx
//!   but 408/429) moves the entries to the failed table instead.
//! - **Silences.** A firing alert that a silence matches is not sent; the
//!   group remembers it, and tells the receiver if the silence ends while
//!   the alert still fires. Its resolve is not sent either.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::telemetry::events::{NotificationOutcome, OutboxDepth};

use super::outbox::{GroupState, GroupUpdate, Outbox, OutboxEntry};
use super::routing::{NotifyConfig, Route};
use super::{AlertNotice, Notification, ReceiverConfig, SendError, Status};

/// First retry wait, and the longest.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
pub const RETRY_CAP: Duration = Duration::from_secs(300);
/// How often a receiver looks again without being woken (silence ends, repeats).
const RECHECK: Duration = Duration::from_secs(5);

/// Whether a silence holds an alert with these labels at this time.
pub type SilenceCheck = Arc<dyn Fn(&BTreeMap<String, String>, i64) -> bool + Send + Sync>;

/// What to do with one group now.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing due before this time (ms).
    Wait(i64),
    /// Nothing to send (only silenced changes, or nothing at all): apply
    /// the update and delete the entries.
    Quiet { seqs: Vec<u64>, update: GroupUpdate, silenced: u64 },
    /// Send this, then apply the update and delete the entries.
    Send { notification: Box<Notification>, seqs: Vec<u64>, update: GroupUpdate, silenced: u64, changed_at_ms: i64 },
    /// Nothing to do and no timer.
    Idle,
}

/// Decide what one group needs now. `entries` are the group's waiting
/// changes, oldest first; `state` what its receiver was told so far.
pub fn plan_group(
    receiver: &str,
    route: &Route,
    external_url: &str,
    entries: &[OutboxEntry],
    state: Option<&GroupState>,
    now_ms: i64,
    silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> Plan {
    let last_sent = state.and_then(|g| g.last_sent_ms);
    let released = state.is_some_and(|g| g.suppressed.values().any(|a| !silenced(&a.labels)));
    if !entries.is_empty() || released {
        let due = match last_sent {
            None => entries.first().map_or(now_ms, |e| e.at_ms()) + route.group_wait.as_millis() as i64,
            Some(t) => t + route.group_interval.as_millis() as i64,
        };
        if now_ms < due {
            return Plan::Wait(due);
        }
        return plan_changes(receiver, external_url, entries, state, now_ms, silenced);
    }
    // A group that still fires: repeat it when the route asks for that.
    if let (Some(g), Some(every)) = (state, route.repeat_interval)
        && !g.firing.is_empty()
    {
        let due = last_sent.unwrap_or(now_ms) + every.as_millis() as i64;
        if now_ms < due {
            return Plan::Wait(due);
        }
        let mut next = g.clone();
        next.last_sent_ms = Some(now_ms);
        let n = notification(receiver, external_url, &next, g.firing.values().cloned().collect(), now_ms, None);
        return Plan::Send {
            notification: Box::new(n),
            seqs: Vec::new(),
            update: GroupUpdate::Put(next),
            silenced: 0,
            changed_at_ms: now_ms,
        };
    }
    Plan::Idle
}

fn plan_changes(
    receiver: &str,
    external_url: &str,
    entries: &[OutboxEntry],
    state: Option<&GroupState>,
    now_ms: i64,
    silenced: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> Plan {
    let mut g = state.cloned().unwrap_or_else(|| GroupState {
        receiver: receiver.to_string(),
        route: entries.first().map_or(0, |e| e.route),
        group_labels: entries.first().map(|e| e.group_labels.clone()).unwrap_or_default(),
        ..Default::default()
    });
    let was_firing = !g.firing.is_empty();
    let mut changes: Vec<AlertNotice> = Vec::new();
    let mut quiet = 0u64;
    // Silences that ended while their alerts still fire: tell now.
    let ended: Vec<String> =
        g.suppressed.iter().filter(|(_, a)| !silenced(&a.labels)).map(|(k, _)| k.clone()).collect();
    for k in ended {
        if let Some(a) = g.suppressed.remove(&k) {
            g.firing.insert(k, a.clone());
            changes.push(a);
        }
    }
    for e in entries {
        let a = &e.notice;
        match a.status {
            Status::Firing => {
                if g.firing.contains_key(&a.dedup_key) || g.suppressed.contains_key(&a.dedup_key) {
                    continue; // told already: never a second trigger for one firing
                }
                if silenced(&a.labels) {
                    g.suppressed.insert(a.dedup_key.clone(), a.clone());
                    quiet += 1;
                } else {
                    g.firing.insert(a.dedup_key.clone(), a.clone());
                    changes.push(a.clone());
                }
            }
            Status::Resolved => {
                if g.firing.remove(&a.dedup_key).is_some() {
                    changes.push(a.clone());
                } else if g.suppressed.remove(&a.dedup_key).is_some() {
                    quiet += 1;
                }
                // Otherwise the receiver never heard of it firing: nothing to resolve.
            }
        }
    }
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    let over = g.firing.is_empty() && g.suppressed.is_empty();
    let update = |g: GroupState| {
        if over { GroupUpdate::Delete { receiver: g.receiver.clone(), id: g.id() } } else { GroupUpdate::Put(g) }
    };
    if changes.is_empty() {
        return Plan::Quiet { seqs, update: update(g), silenced: quiet };
    }
    if !was_firing && !g.firing.is_empty() {
        g.episode += 1;
    }
    if g.episode == 0 {
        g.episode = 1;
    }
    g.last_sent_ms = Some(now_ms);
    // Every alert that fires now, after the changes (oldest first).
    let mut alerts = changes.clone();
    for a in g.firing.values() {
        if !alerts.iter().any(|c| c.dedup_key == a.dedup_key) {
            alerts.push(a.clone());
        }
    }
    let changed_at_ms = changes.iter().map(notice_at).max().unwrap_or(now_ms);
    let id = match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) => Some(format!("{receiver}/{a}-{b}")),
        _ => None,
    };
    let n = notification(receiver, external_url, &g, alerts, now_ms, id);
    Plan::Send { notification: Box::new(n), seqs, update: update(g), silenced: quiet, changed_at_ms }
}

fn notice_at(a: &AlertNotice) -> i64 {
    a.resolved_at_ms.unwrap_or(a.firing_since_ms)
}

fn notification(
    receiver: &str,
    external_url: &str,
    g: &GroupState,
    alerts: Vec<AlertNotice>,
    now_ms: i64,
    id: Option<String>,
) -> Notification {
    let status = if g.firing.is_empty() { Status::Resolved } else { Status::Firing };
    let mut group_key = format!("slo-agent/{receiver}/{}/{}", g.id(), g.episode);
    if group_key.len() > 250 {
        // PagerDuty dedup keys hold 255 characters.
        group_key = format!("slo-agent/{receiver}/{:016x}/{}", fnv(g.id().as_bytes()), g.episode);
    }
    Notification {
        id: id.unwrap_or_else(|| format!("{receiver}/repeat/{:016x}/{now_ms}", fnv(g.id().as_bytes()))),
        receiver: receiver.to_string(),
        group_labels: g.group_labels.clone(),
        group_key,
        status,
        alerts,
        created_ms: now_ms,
        external_url: external_url.to_string(),
    }
}

/// FNV-1a, for short stable ids of long group names.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The wait before retry number `attempt` (1-based): 1 s, 2 s, 4 s, … up to
/// five minutes, each time 50–100 % of that at random so that many agents
/// (or groups) do not retry in step.
pub fn backoff(attempt: u32, rng: &mut impl Rng) -> Duration {
    let step = RETRY_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(RETRY_CAP);
    step.mul_f64(rng.random_range(0.5..=1.0))
}

/// A message on its way: sent again unchanged until accepted or refused.
struct InFlight {
    notification: Box<Notification>,
    seqs: Vec<u64>,
    update: GroupUpdate,
    silenced: u64,
    changed_at_ms: i64,
    attempts: u32,
    next_at_ms: i64,
}

/// Everything a receiver task needs.
#[derive(Clone)]
pub struct Dispatcher {
    pub store: Arc<dyn Outbox>,
    pub config: Arc<NotifyConfig>,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub silenced: SilenceCheck,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    pub client: reqwest::Client,
}

impl Dispatcher {
    /// Run one receiver until `stop` is set; `wake` is notified when new
    /// entries are committed for it.
    pub async fn run_receiver(
        self,
        receiver: ReceiverConfig,
        wake: Arc<tokio::sync::Notify>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mut in_flight: HashMap<String, InFlight> = HashMap::new();
        let seed = (self.clock.now_ms() as u64) ^ fnv(receiver.name.as_bytes()) ^ u64::from(std::process::id());
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let next = self.pass(&receiver, &mut in_flight, &mut rng).await;
            let now = self.clock.now_ms();
            let wait = Duration::from_millis(next.saturating_sub(now).clamp(0, RECHECK.as_millis() as i64) as u64);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One look at the receiver's outbox and groups; returns when to look next (ms).
    async fn pass(
        &self,
        receiver: &ReceiverConfig,
        in_flight: &mut HashMap<String, InFlight>,
        rng: &mut rand::rngs::SmallRng,
    ) -> i64 {
        let name = receiver.name.as_str();
        let mut next = self.clock.now_ms() + RECHECK.as_millis() as i64;
        let store = self.store.clone();
        let n2 = name.to_string();
        let loaded = tokio::task::spawn_blocking(move || store.waiting(&n2)).await;
        let (entries, groups) = match loaded {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::error!(receiver = name, error = %e, "cannot read the notification outbox");
                return next;
            }
            Err(_) => return next,
        };
        let mut depth = entries.len() as u64;
        self.set_depth(receiver, depth);
        // Groups in the order of their oldest waiting change, then the rest.
        let mut order: Vec<String> = Vec::new();
        let mut by_group: HashMap<String, Vec<OutboxEntry>> = HashMap::new();
        for e in entries {
            let id = e.group_id();
            if !by_group.contains_key(&id) {
                order.push(id.clone());
            }
            by_group.entry(id).or_default().push(e);
        }
        let states: HashMap<String, GroupState> = groups.into_iter().map(|g| (g.id(), g)).collect();
        for id in states.keys() {
            if !by_group.contains_key(id) {
                order.push(id.clone());
            }
        }
        for id in order {
            let now = self.clock.now_ms();
            if let Some(f) = in_flight.get(&id) {
                if f.next_at_ms > now {
                    next = next.min(f.next_at_ms);
                    continue;
                }
            } else {
                let entries = by_group.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                let state = states.get(&id);
                let route_index = entries.first().map(|e| e.route).or(state.map(|g| g.route)).unwrap_or(0);
                // A route that is gone (the config changed) delivers with the defaults.
                let route = self
                    .config
                    .routes
                    .get(route_index)
                    .filter(|r| r.receiver == name)
                    .cloned()
                    .unwrap_or_else(|| Route::defaults(name));
                if !self.plan_into(receiver, &route, entries, state, now, in_flight, &id, &mut next, &mut depth).await {
                    continue;
                }
            }
            let Some(f) = in_flight.get_mut(&id) else { continue };
            match self.deliver(receiver, &f.notification).await {
                Ok(()) => {
                    let f = in_flight.remove(&id).expect("in flight");
                    let done_at = self.clock.now_ms();
                    let store = self.store.clone();
                    let (r, seqs, update) = (name.to_string(), f.seqs.clone(), f.update.clone());
                    match tokio::task::spawn_blocking(move || store.delivered(&r, &seqs, &update)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::error!(receiver = name, error = %e, "delivered, but cannot record it; it may be sent again")
                        }
                        Err(e) => {
                            tracing::error!(receiver = name, error = %e, "delivered, but cannot record it; it may be sent again")
                        }
                    }
                    tracing::info!(
                        receiver = name,
                        id = %f.notification.id,
                        status = f.notification.status.as_str(),
                        alerts = f.notification.alerts.len(),
                        attempts = f.attempts + 1,
                        "notification delivered"
                    );
                    depth = depth.saturating_sub(f.seqs.len() as u64);
                    self.set_depth(receiver, depth);
                    let latency = Some(((done_at - f.changed_at_ms).max(0)) as f64 / 1000.0);
                    self.outcome(receiver, "sent", 1, latency);
                    self.outcome(receiver, "silenced", f.silenced, None);
                }
                Err(SendError::Retryable(why)) => {
                    f.attempts += 1;
                    let wait = backoff(f.attempts, rng);
                    f.next_at_ms = self.clock.now_ms() + wait.as_millis() as i64;
                    next = next.min(f.next_at_ms);
                    tracing::warn!(receiver = name, id = %f.notification.id, attempt = f.attempts, retry_in = ?wait, error = %why, "notification not delivered");
                    self.outcome(receiver, "retried", 1, None);
                }
                Err(SendError::Permanent(why)) => {
                    let f = in_flight.remove(&id).expect("in flight");
                    tracing::error!(receiver = name, id = %f.notification.id, error = %why, "the receiver refused a notification; it is kept in the failed table");
                    let entries: Vec<OutboxEntry> = by_group.get(&id).cloned().unwrap_or_default();
                    let entries: Vec<OutboxEntry> = entries.into_iter().filter(|e| f.seqs.contains(&e.seq)).collect();
                    let store = self.store.clone();
                    let now = self.clock.now_ms();
                    let n = entries.len() as u64;
                    let _ = tokio::task::spawn_blocking(move || store.refused(&entries, &why, now)).await;
                    depth = depth.saturating_sub(n);
                    self.set_depth(receiver, depth);
                    self.outcome(receiver, "failed", 1, None);
                }
            }
        }
        next
    }

    /// Plan a group; `true` when a message is now in flight for it.
    #[allow(clippy::too_many_arguments)]
    async fn plan_into(
        &self,
        receiver: &ReceiverConfig,
        route: &Route,
        entries: &[OutboxEntry],
        state: Option<&GroupState>,
        now: i64,
        in_flight: &mut HashMap<String, InFlight>,
        id: &str,
        next: &mut i64,
        depth: &mut u64,
    ) -> bool {
        let silenced = |labels: &BTreeMap<String, String>| (self.silenced)(labels, now);
        match plan_group(&receiver.name, route, &self.config.external_url, entries, state, now, &silenced) {
            Plan::Idle => false,
            Plan::Wait(t) => {
                *next = (*next).min(t);
                false
            }
            Plan::Quiet { seqs, update, silenced } => {
                let store = self.store.clone();
                let r = receiver.name.clone();
                let n = seqs.len() as u64;
                let _ = tokio::task::spawn_blocking(move || store.delivered(&r, &seqs, &update)).await;
                *depth = depth.saturating_sub(n);
                self.set_depth(receiver, *depth);
                self.outcome(receiver, "silenced", silenced, None);
                false
            }
            Plan::Send { notification, seqs, update, silenced, changed_at_ms } => {
                in_flight.insert(
                    id.to_string(),
                    InFlight { notification, seqs, update, silenced, changed_at_ms, attempts: 0, next_at_ms: now },
                );
                true
            }
        }
    }

    async fn deliver(&self, receiver: &ReceiverConfig, n: &Notification) -> Result<(), SendError> {
        for req in super::requests(receiver, n) {
            super::http::send(&self.client, &req, receiver.timeout).await?;
        }
        Ok(())
    }

    fn set_depth(&self, receiver: &ReceiverConfig, depth: u64) {
        OutboxDepth { receiver: &receiver.name, kind: receiver.kind.as_str(), depth }.emit(&self.telemetry);
    }

    fn outcome(&self, receiver: &ReceiverConfig, result: &'static str, count: u64, latency_seconds: Option<f64>) {
        if count > 0 {
            NotificationOutcome {
                receiver: &receiver.name,
                kind: receiver.kind.as_str(),
                result,
                count,
                latency_seconds,
            }
            .emit(&self.telemetry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Evidence;

    fn notice(slo: &str, kind: AlertKind, status: Status, episode: u64, at: i64) -> AlertNotice {
        AlertNotice {
            slo: slo.into(),
            display_name: None,
            service: "checkout".into(),
            severity: kind.severity().as_str().into(),
            kind,
            status,
            episode,
            dedup_key: format!("slo-agent/{slo}/{}/{episode}", kind.as_str()),
            labels: crate::notify::notice::alert_labels(&BTreeMap::new(), slo, "checkout", kind),
            objective: 0.999,
            trigger: None,
            budget_remaining: 0.5,
            firing_since_ms: at,
            resolved_at_ms: (status == Status::Resolved).then_some(at),
            runbook: None,
            api_url: format!("http://agent/api/v1/slos/{slo}"),
            evidence: Evidence::default(),
            certificate: None,
            signal: None,
        }
    }

    use crate::alert::AlertKind;

    fn entry(seq: u64, n: AlertNotice) -> OutboxEntry {
        let route = route(0, 300, None);
        OutboxEntry { seq, receiver: "r".into(), route: 0, group_labels: route.group_labels(&n.labels), notice: n }
    }

    fn route(wait_s: u64, interval_s: u64, repeat_s: Option<u64>) -> Route {
        Route {
            receiver: "r".into(),
            matchers: Vec::new(),
            group_by: vec!["service".into()],
            group_wait: Duration::from_secs(wait_s),
            group_interval: Duration::from_secs(interval_s),
            repeat_interval: repeat_s.map(Duration::from_secs),
            continue_matching: false,
        }
    }

    fn none(_: &BTreeMap<String, String>) -> bool {
        false
    }

    fn sent(p: Plan) -> (Notification, Vec<u64>, GroupState) {
        match p {
            Plan::Send { notification, seqs, update: GroupUpdate::Put(g), .. } => (*notification, seqs, g),
            Plan::Send { notification, seqs, update: GroupUpdate::Delete { .. }, .. } => {
                (*notification, seqs, GroupState::default())
            }
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn five_slos_of_one_service_make_one_notification_per_group_interval() {
        let r = route(0, 300, None);
        let t0 = 1_000_000;
        let entries: Vec<OutboxEntry> =
            (0..5).map(|i| entry(i + 1, notice(&format!("slo-{i}"), AlertKind::Page, Status::Firing, 1, t0))).collect();
        let (n, seqs, g) = sent(plan_group("r", &r, "http://agent", &entries, None, t0, &none));
        assert_eq!(n.alerts.len(), 5);
        assert_eq!(n.status, Status::Firing);
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(n.id, "r/1-5");
        assert_eq!(n.group_key, "slo-agent/r/0|service=checkout/1");
        assert_eq!(n.title(), "[FIRING:5] checkout: slo-0, slo-1, slo-2, slo-3, slo-4");
        // A sixth SLO trips a minute later: it waits for the group interval.
        let more = [entry(6, notice("slo-5", AlertKind::Page, Status::Firing, 1, t0 + 60_000))];
        assert_eq!(plan_group("r", &r, "", &more, Some(&g), t0 + 60_000, &none), Plan::Wait(t0 + 300_000));
        let (n2, _, g2) = sent(plan_group("r", &r, "", &more, Some(&g), t0 + 300_000, &none));
        assert_eq!(n2.alerts.len(), 6, "the change, then everything that still fires");
        assert_eq!(n2.alerts[0].slo, "slo-5");
        assert_eq!(n2.group_key, n.group_key, "the same incident");
        assert_eq!(g2.episode, 1);
    }

    #[test]
    fn group_wait_holds_the_first_change() {
        let r = route(30, 300, None);
        let e = [entry(1, notice("a", AlertKind::Page, Status::Firing, 1, 1000))];
        assert_eq!(plan_group("r", &r, "", &e, None, 1000, &none), Plan::Wait(31_000));
        assert!(matches!(plan_group("r", &r, "", &e, None, 31_000, &none), Plan::Send { .. }));
    }

    #[test]
    fn a_trigger_is_never_sent_twice_and_a_resolve_ends_the_group() {
        let r = route(0, 0, None);
        let fire = notice("a", AlertKind::Page, Status::Firing, 1, 1000);
        let (_, _, g) = sent(plan_group("r", &r, "", &[entry(1, fire.clone())], None, 1000, &none));
        // The same firing again (a replay after a crash): nothing to send.
        match plan_group("r", &r, "", &[entry(2, fire)], Some(&g), 2000, &none) {
            Plan::Quiet { seqs, update: GroupUpdate::Put(_), silenced: 0 } => assert_eq!(seqs, [2]),
            other => panic!("{other:?}"),
        }
        let resolve = notice("a", AlertKind::Page, Status::Resolved, 1, 3000);
        match plan_group("r", &r, "", &[entry(3, resolve)], Some(&g), 3000, &none) {
            Plan::Send { notification, update: GroupUpdate::Delete { .. }, .. } => {
                assert_eq!(notification.status, Status::Resolved);
                assert_eq!(notification.group_key, "slo-agent/r/0|service=checkout/1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_next_incident_of_a_group_is_a_new_episode() {
        let r = route(0, 0, None);
        let mut g = GroupState { receiver: "r".into(), episode: 3, last_sent_ms: Some(0), ..Default::default() };
        g.group_labels = BTreeMap::from([("service".to_string(), "checkout".to_string())]);
        let (n, _, _) = sent(plan_group(
            "r",
            &r,
            "",
            &[entry(9, notice("a", AlertKind::Ticket, Status::Firing, 2, 10))],
            Some(&g),
            10,
            &none,
        ));
        assert!(n.group_key.ends_with("/4"));
    }

    #[test]
    fn silenced_alerts_wait_for_the_silence_to_end() {
        let r = route(0, 0, None);
        let silenced = |l: &BTreeMap<String, String>| l["slo"] == "a";
        let e = [entry(1, notice("a", AlertKind::Page, Status::Firing, 1, 1000))];
        let g = match plan_group("r", &r, "", &e, None, 1000, &silenced) {
            Plan::Quiet { update: GroupUpdate::Put(g), silenced: 1, .. } => g,
            other => panic!("{other:?}"),
        };
        assert!(g.suppressed.contains_key("slo-agent/a/page/1"));
        // Still silenced: nothing due.
        assert_eq!(plan_group("r", &r, "", &[], Some(&g), 2000, &silenced), Plan::Idle);
        // The silence ended while the alert still fires: it is told now.
        let (n, seqs, g2) = sent(plan_group("r", &r, "", &[], Some(&g), 3000, &none));
        assert!(seqs.is_empty());
        assert_eq!(n.alerts.len(), 1);
        assert!(g2.firing.contains_key("slo-agent/a/page/1") && g2.suppressed.is_empty());
        // A silenced alert that resolves before the silence ends is never told.
        let resolve = [entry(2, notice("a", AlertKind::Page, Status::Resolved, 1, 4000))];
        match plan_group("r", &r, "", &resolve, Some(&g), 4000, &silenced) {
            Plan::Quiet { update: GroupUpdate::Delete { .. }, silenced: 1, .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_group_that_still_fires_is_repeated_when_asked() {
        let r = route(0, 0, Some(60));
        let (_, _, g) = sent(plan_group(
            "r",
            &r,
            "",
            &[entry(1, notice("a", AlertKind::Page, Status::Firing, 1, 0))],
            None,
            0,
            &none,
        ));
        assert_eq!(plan_group("r", &r, "", &[], Some(&g), 30_000, &none), Plan::Wait(60_000));
        let (n, seqs, g2) = sent(plan_group("r", &r, "", &[], Some(&g), 60_000, &none));
        assert!(seqs.is_empty());
        assert_eq!((n.status, n.alerts.len()), (Status::Firing, 1));
        assert_eq!(g2.last_sent_ms, Some(60_000));
        assert_eq!(plan_group("r", &route(0, 0, None), "", &[], Some(&g2), 999_999, &none), Plan::Idle);
    }

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
        for (attempt, step) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            for _ in 0..50 {
                let d = backoff(attempt, &mut rng).as_secs_f64();
                assert!(d >= step as f64 * 0.5 && d <= step as f64, "attempt {attempt}: {d}");
            }
        }
    }
}
