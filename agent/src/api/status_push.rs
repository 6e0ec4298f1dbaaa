//! Queueing what the external status page must hear (`status.push`): a
//! component's state when an evaluation changes it, an incident when it is
//! opened or updated. Entries go into the store's status push outbox
//! (`store::status_push`); `runtime::status_push` delivers them in order.
//!
//! An incident change is queued in the transaction that stores the
//! incident ([`StatusPusher::incident_queue`] with
//! `Store::put_kept_with_push`), so none is lost between the two. A
//! component's state is queued with the state it was queued at, so a
//! restart neither repeats nor misses a change.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::incident::Incident;
use crate::status::push::{PushEntry, StatusPushConfig, component_key};
use crate::status::{ComponentConfig, ComponentState};
use crate::store::status_push::{PushQueue, PushRecord, Queued};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use crate::telemetry::events::{StatusPushDepth, StatusPushOutcome};

/// The configured push, the page's components, and each component's last
/// queued state.
#[derive(Debug)]
pub struct StatusPusher {
    pub config: StatusPushConfig,
    pub components: Vec<ComponentConfig>,
    /// Notified when entries were queued.
    pub wake: tokio::sync::Notify,
    queued_states: Mutex<BTreeMap<String, String>>,
}

impl StatusPusher {
    /// The pusher, with the states queued before a restart.
    pub fn new(
        config: StatusPushConfig,
        components: Vec<ComponentConfig>,
        store: &Store,
    ) -> Result<StatusPusher, StoreError> {
        let prefix = component_key("");
        let queued =
            store.status_push_values(&prefix)?.into_iter().map(|(k, v)| (k[prefix.len()..].to_string(), v)).collect();
        Ok(StatusPusher { config, components, wake: tokio::sync::Notify::new(), queued_states: Mutex::new(queued) })
    }

    pub fn kind(&self) -> &'static str {
        self.config.target.kind()
    }

    /// Queue the components whose state differs from the one queued last.
    /// Blocking; the state thread calls it after each evaluation.
    pub fn on_evaluation(&self, store: &Store, telemetry: &Telemetry, states: &[(&str, ComponentState)], at_ms: i64) {
        let mut q = PushQueue { max: self.config.max_queue, ..Default::default() };
        {
            let last = self.queued_states.lock().unwrap_or_else(|e| e.into_inner());
            for (name, state) in states {
                if last.get(*name).map(String::as_str) == Some(state.as_str()) {
                    continue;
                }
                let e = PushEntry::component(name, *state, at_ms);
                q.records.push(PushRecord { seq: 0, key: e.coalescing_key(), json: e.to_json() });
                q.values.push((component_key(name), state.as_str().to_string()));
            }
        }
        if q.records.is_empty() {
            return;
        }
        match store.queue_status_push(&q) {
            Ok(done) => {
                let mut last = self.queued_states.lock().unwrap_or_else(|e| e.into_inner());
                for (k, v) in &q.values {
                    last.insert(k[component_key("").len()..].to_string(), v.clone());
                }
                drop(last);
                tracing::info!(components = q.records.len(), "component states queued for the external status page");
                self.queued(store, telemetry, &done);
            }
            // Not remembered as queued: the next evaluation tries again.
            Err(e) => tracing::warn!(error = %e, "component states could not be queued for the external status page"),
        }
    }

    /// What to write with a changed incident: nothing when it names no
    /// component of the page (the public page does not show it either).
    pub fn incident_queue(&self, i: &Incident) -> PushQueue {
        let e = PushEntry::incident(i, &self.components);
        if matches!(&e, PushEntry::Incident(c) if c.components.is_empty()) {
            return PushQueue::default();
        }
        PushQueue {
            records: vec![PushRecord { seq: 0, key: e.coalescing_key(), json: e.to_json() }],
            values: Vec::new(),
            max: self.config.max_queue,
        }
    }

    /// After entries were queued: count what made room, wake the sender.
    pub fn queued(&self, store: &Store, telemetry: &Telemetry, done: &Queued) {
        let kind = self.kind();
        if done.coalesced > 0 {
            tracing::info!(
                coalesced = done.coalesced,
                "the status push queue is full: older component states superseded"
            );
            StatusPushOutcome { kind, outcome: "coalesced", count: done.coalesced }.emit(telemetry);
        }
        for r in &done.dropped {
            let what = serde_json::from_slice::<PushEntry>(&r.json).map_or("unreadable", |e| e.kind());
            tracing::error!(seq = r.seq, entry = what, "the status push queue is full: the oldest entry was dropped");
        }
        if !done.dropped.is_empty() {
            StatusPushOutcome { kind, outcome: "dropped", count: done.dropped.len() as u64 }.emit(telemetry);
        }
        if let Ok(depth) = store.status_push_depth() {
            StatusPushDepth { kind, depth }.emit(telemetry);
        }
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::push::PushTarget;

    fn pusher(store: &Store) -> StatusPusher {
        let config = StatusPushConfig {
            target: PushTarget::Webhook { url: "http://127.0.0.1:9/".into(), secret: None },
            timeout: std::time::Duration::from_secs(1),
            max_queue: 10,
        };
        let components =
            vec![ComponentConfig { name: "Checkout".into(), service: "checkout".into(), slos: vec![], journey: None }];
        StatusPusher::new(config, components, store).unwrap()
    }

    fn waiting(store: &Store) -> Vec<PushEntry> {
        store.status_push_waiting().unwrap().iter().map(|r| serde_json::from_slice(&r.json).unwrap()).collect()
    }

    #[test]
    fn only_changed_states_are_queued_and_a_restart_remembers_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let t = Telemetry::default();
        let p = pusher(&store);
        p.on_evaluation(&store, &t, &[("Checkout", ComponentState::Operational)], 1000);
        p.on_evaluation(&store, &t, &[("Checkout", ComponentState::Operational)], 2000);
        assert_eq!(waiting(&store), [PushEntry::component("Checkout", ComponentState::Operational, 1000)]);
        // A new pusher (a restart) knows what was queued.
        let p = pusher(&store);
        p.on_evaluation(&store, &t, &[("Checkout", ComponentState::Operational)], 3000);
        p.on_evaluation(&store, &t, &[("Checkout", ComponentState::MajorOutage)], 4000);
        assert_eq!(waiting(&store).len(), 2);
        assert_eq!(waiting(&store)[1], PushEntry::component("Checkout", ComponentState::MajorOutage, 4000));
        // An incident change is queued with the incident's components.
        let q = p.incident_queue(&crate::incident::Incident {
            id: "inc-1".into(),
            title: "t".into(),
            services: vec!["checkout".into()],
            status: crate::incident::Status::Investigating,
            impact: crate::incident::Impact::Minor,
            started_at_ms: 5000,
            resolved_at_ms: None,
            opened_by: "user:a".into(),
            updates: Vec::new(),
        });
        let Ok(PushEntry::Incident(c)) = serde_json::from_slice::<PushEntry>(&q.records[0].json) else {
            panic!("an incident entry")
        };
        assert_eq!(
            (c.components, c.at_ms, q.records[0].key.clone(), q.max),
            (vec!["Checkout".to_string()], 5000, None, 10)
        );
        // An incident of services the page does not list is not pushed.
        let mut other: crate::incident::Incident = serde_json::from_value(serde_json::json!({
            "id": "inc-2", "title": "t", "services": ["billing"], "status": "investigating", "impact": "minor",
            "started_at_ms": 1, "resolved_at_ms": null, "opened_by": "user:a", "updates": []
        }))
        .unwrap();
        assert!(p.incident_queue(&other).records.is_empty());
        other.services.push("checkout".into());
        assert_eq!(p.incident_queue(&other).records.len(), 1);
    }
}
