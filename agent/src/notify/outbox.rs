//! What the outbox holds: alert changes waiting for a receiver, and each
//! group's delivery state; and [`Outbox`], what notify needs of the place
//! they are kept. The store keeps them as opaque JSON records
//! (`store/outbox.rs`); the typed view is here, so the store knows no
//! notification types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AlertNotice;
use crate::store::outbox::{GroupWrite, Queued};
use crate::store::{Store, StoreError};

/// One alert change a receiver must hear about, written in the same
/// transaction as the alert transition that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Assigned by the store; increases across receivers and restarts.
    pub seq: u64,
    pub receiver: String,
    /// The index of the route that sent it here (for its grouping timers).
    pub route: usize,
    pub group_labels: BTreeMap<String, String>,
    pub notice: AlertNotice,
}

impl OutboxEntry {
    pub fn group_id(&self) -> String {
        super::routing::group_id(self.route, &self.group_labels)
    }

    /// When the alert changed.
    pub fn at_ms(&self) -> i64 {
        self.notice.resolved_at_ms.unwrap_or(self.notice.firing_since_ms)
    }
}

/// A group's delivery state: what its receiver was told.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupState {
    pub receiver: String,
    pub route: usize,
    pub group_labels: BTreeMap<String, String>,
    /// Firing episodes of the group (its `group_key` ends with it).
    pub episode: u64,
    /// When the receiver last accepted a notification of the group.
    pub last_sent_ms: Option<i64>,
    /// Alerts the receiver was told fire, by dedup key.
    pub firing: BTreeMap<String, AlertNotice>,
    /// Firing alerts held back by a silence, by dedup key: told when the
    /// silence ends while they still fire.
    pub suppressed: BTreeMap<String, AlertNotice>,
}

impl GroupState {
    pub fn id(&self) -> String {
        super::routing::group_id(self.route, &self.group_labels)
    }
}

/// A notification the receiver refused for good (or that the outbox had to
/// drop), kept for a human to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedEntry {
    pub at_ms: i64,
    pub reason: String,
    pub entry: OutboxEntry,
}

/// What to do with a group after a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupUpdate {
    Put(GroupState),
    /// The group is over (nothing fires): forget it.
    Delete {
        receiver: String,
        id: String,
    },
}

/// Where alert changes wait for their receivers. Every method is one
/// transaction. Blocking: call it off the async runtime.
pub trait Outbox: Send + Sync {
    /// Record alert transitions and the entries they cause, together. A
    /// receiver holding more than `max_outbox` entries has its oldest moved
    /// to the failed table; they are returned.
    fn record(
        &self,
        transitions: &[crate::alert::Transition],
        entries: Vec<OutboxEntry>,
        max_outbox: usize,
        now_ms: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// A receiver's waiting entries, oldest first, and its groups.
    fn waiting(&self, receiver: &str) -> Result<(Vec<OutboxEntry>, Vec<GroupState>), StoreError>;

    /// The receiver accepted a notification: its entries go, the group's new state stays.
    fn delivered(&self, receiver: &str, seqs: &[u64], group: &GroupUpdate) -> Result<(), StoreError>;

    /// The receiver refused these entries for good: keep them as failed.
    fn refused(&self, entries: &[OutboxEntry], reason: &str, now_ms: i64) -> Result<(), StoreError>;

    /// The newest failed notifications, newest first.
    fn failed(&self, limit: usize) -> Result<Vec<FailedEntry>, StoreError>;
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("outbox records serialize")
}

fn entry_of(seq: u64, json: &[u8]) -> Option<OutboxEntry> {
    match serde_json::from_slice::<OutboxEntry>(json) {
        Ok(mut e) => {
            e.seq = seq;
            Some(e)
        }
        Err(e) => {
            tracing::warn!(seq, error = %e, "skipping an unreadable outbox entry");
            None
        }
    }
}

impl Outbox for Store {
    fn record(
        &self,
        transitions: &[crate::alert::Transition],
        entries: Vec<OutboxEntry>,
        max_outbox: usize,
        now_ms: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let records = entries.iter().map(|e| Queued { receiver: e.receiver.clone(), seq: 0, json: json(e) }).collect();
        let dropped = self.commit_alerts_with_outbox(transitions, records, max_outbox, now_ms)?;
        Ok(dropped.iter().filter_map(|f| entry_of(f.seq, &f.json)).collect())
    }

    fn waiting(&self, receiver: &str) -> Result<(Vec<OutboxEntry>, Vec<GroupState>), StoreError> {
        let entries = self.outbox(receiver)?.iter().filter_map(|q| entry_of(q.seq, &q.json)).collect();
        let groups = self.notify_groups(receiver)?.iter().filter_map(|g| serde_json::from_slice(g).ok()).collect();
        Ok((entries, groups))
    }

    fn delivered(&self, receiver: &str, seqs: &[u64], group: &GroupUpdate) -> Result<(), StoreError> {
        let write = match group {
            GroupUpdate::Put(g) => GroupWrite::Put { receiver: g.receiver.clone(), id: g.id(), json: json(g) },
            GroupUpdate::Delete { receiver, id } => GroupWrite::Delete { receiver: receiver.clone(), id: id.clone() },
        };
        self.commit_delivered(receiver, seqs, &write)
    }

    fn refused(&self, entries: &[OutboxEntry], reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let records: Vec<Queued> =
            entries.iter().map(|e| Queued { receiver: e.receiver.clone(), seq: e.seq, json: json(e) }).collect();
        self.commit_failed(&records, reason, now_ms)
    }

    fn failed(&self, limit: usize) -> Result<Vec<FailedEntry>, StoreError> {
        Ok(self
            .failed_notifications(limit)?
            .into_iter()
            .filter_map(|f| Some(FailedEntry { at_ms: f.at_ms, reason: f.reason, entry: entry_of(f.seq, &f.json)? }))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Status;
    use crate::store::Store;

    fn entry(receiver: &str, slo: &str) -> OutboxEntry {
        let mut notice = crate::notify::fixtures::sample_notification(Status::Firing).alerts[0].clone();
        notice.slo = slo.to_string();
        OutboxEntry {
            seq: 0,
            receiver: receiver.into(),
            route: 0,
            group_labels: BTreeMap::from([("service".to_string(), "checkout".to_string())]),
            notice,
        }
    }

    #[test]
    fn entries_get_sequences_leave_on_delivery_and_overflow_to_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let dropped = store.record(&[], vec![entry("a", "x"), entry("b", "y"), entry("a", "z")], 10, 1000).unwrap();
        assert!(dropped.is_empty());
        let a = store.waiting("a").unwrap().0;
        assert_eq!(a.iter().map(|e| (e.seq, e.notice.slo.as_str())).collect::<Vec<_>>(), [(1, "x"), (3, "z")]);
        assert_eq!(store.outbox_depths().unwrap(), BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));

        // Delivered: the entry goes and the group state is recorded, together.
        let g = GroupState { receiver: "a".into(), episode: 1, ..Default::default() };
        store.delivered("a", &[1], &GroupUpdate::Put(g.clone())).unwrap();
        assert_eq!(store.waiting("a").unwrap().0.len(), 1);
        assert_eq!(store.waiting("a").unwrap().1, std::slice::from_ref(&g));
        assert!(store.waiting("b").unwrap().1.is_empty());
        store.delivered("a", &[], &GroupUpdate::Delete { receiver: "a".into(), id: g.id() }).unwrap();
        assert!(store.waiting("a").unwrap().1.is_empty());

        // Past `max_outbox`, the oldest entries of that receiver move to the failed table.
        let many: Vec<OutboxEntry> = (0..12).map(|i| entry("b", &format!("s{i}"))).collect();
        let dropped = store.record(&[], many, 10, 2000).unwrap();
        assert_eq!(dropped.iter().map(|e| e.notice.slo.as_str()).collect::<Vec<_>>(), ["y", "s0", "s1"]);
        assert_eq!(store.waiting("b").unwrap().0.len(), 10);
        let failed = store.failed(10).unwrap();
        assert_eq!(failed.len(), 3);
        assert!(failed[0].reason.contains("outbox of `b` was full"));
        // Refused entries move there too; old failures are pruned.
        let refused = store.waiting("a").unwrap().0;
        store.refused(&refused, "HTTP 400", 3000).unwrap();
        assert!(store.waiting("a").unwrap().0.is_empty());
        assert_eq!(store.failed(1).unwrap()[0].reason, "HTTP 400");
        assert_eq!(store.prune_failed_notifications(2500).unwrap(), 3);
        assert_eq!(store.failed(10).unwrap().len(), 1);
    }

    #[test]
    fn sequences_keep_rising_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = Store::open(&path).unwrap();
            store.record(&[], vec![entry("a", "x")], 10, 0).unwrap();
            store.delivered("a", &[1], &GroupUpdate::Delete { receiver: "a".into(), id: "0|".into() }).unwrap();
        }
        let store = Store::open(&path).unwrap();
        store.record(&[], vec![entry("a", "y")], 10, 0).unwrap();
        assert_eq!(store.waiting("a").unwrap().0[0].seq, 2, "a new entry never reuses a delivered one's number");
    }
}
