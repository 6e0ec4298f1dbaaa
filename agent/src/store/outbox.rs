//! The notification outbox: alert changes per receiver, group delivery
//! state, and what could not be delivered. Entries are written in the same
//! transaction as the alert transitions that caused them
//! ([`Store::commit_alerts_with_outbox`]) and deleted in the same
//! transaction that records the group's new state after the receiver
//! accepted them ([`Store::commit_delivered`]).

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{META, Store, StoreError};
use crate::notify::outbox::{FailedEntry, GroupState, OutboxEntry};

/// (receiver, sequence) → entry (JSON).
pub(super) const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("notify_outbox");
/// (receiver, group id) → group state (JSON).
pub(super) const GROUPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("notify_groups");
/// (time ms, sequence) → failed entry (JSON).
pub(super) const FAILED: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("notify_failed");

/// How long failed notifications are kept.
pub const FAILED_KEEP_MS: i64 = 30 * 24 * 3_600_000;

pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(OUTBOX)?;
    tx.open_table(GROUPS)?;
    tx.open_table(FAILED)?;
    Ok(())
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

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("outbox records serialize")
}

impl Store {
    /// Record alert transitions and the outbox entries they cause, in one
    /// transaction. Entries get their sequence numbers here. A receiver
    /// holding more than `max_outbox` entries has its oldest moved to the
    /// failed table (they are kept there, and counted).
    pub fn commit_alerts_with_outbox(
        &self,
        transitions: &[crate::alert::Transition],
        entries: Vec<OutboxEntry>,
        max_outbox: usize,
        now_ms: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if transitions.is_empty() && entries.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_write()?;
        self.write_alerts(&tx, transitions)?;
        let mut dropped = Vec::new();
        if !entries.is_empty() {
            let mut meta = tx.open_table(META)?;
            let mut seq: u64 = meta.get("outbox_seq")?.and_then(|v| v.value().parse().ok()).unwrap_or(0);
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut receivers: Vec<String> = Vec::new();
            for mut e in entries {
                seq += 1;
                e.seq = seq;
                outbox.insert((e.receiver.as_str(), seq), json(&e).as_slice())?;
                if !receivers.contains(&e.receiver) {
                    receivers.push(e.receiver.clone());
                }
            }
            meta.insert("outbox_seq", seq.to_string().as_str())?;
            let mut failed = tx.open_table(FAILED)?;
            for r in receivers {
                let keys: Vec<u64> = outbox
                    .range((r.as_str(), 0)..=(r.as_str(), u64::MAX))?
                    .map(|row| row.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                if keys.len() <= max_outbox {
                    continue;
                }
                for s in &keys[..keys.len() - max_outbox] {
                    let Some(v) = outbox.remove((r.as_str(), *s))? else { continue };
                    let Ok(entry) = serde_json::from_slice::<OutboxEntry>(v.value()) else { continue };
                    let f = FailedEntry { at_ms: now_ms, reason: format!("the outbox of `{r}` was full"), entry };
                    failed.insert((now_ms, *s), json(&f).as_slice())?;
                    dropped.push(f.entry);
                }
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// A receiver's waiting entries, oldest first.
    pub fn outbox(&self, receiver: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for row in t.range((receiver, 0)..=(receiver, u64::MAX))? {
            let (k, v) = row?;
            match serde_json::from_slice(v.value()) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!(seq = k.value().1, error = %e, "skipping an unreadable outbox entry"),
            }
        }
        Ok(out)
    }

    /// Entries waiting, per receiver.
    pub fn outbox_depths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(OUTBOX)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, _) = row?;
            *out.entry(k.value().0.to_string()).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// A receiver's groups.
    pub fn notify_groups(&self, receiver: &str) -> Result<Vec<GroupState>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(GROUPS)?;
        let mut out = Vec::new();
        for row in t.range((receiver, "")..)? {
            let (k, v) = row?;
            if k.value().0 != receiver {
                break;
            }
            if let Ok(g) = serde_json::from_slice(v.value()) {
                out.push(g);
            }
        }
        Ok(out)
    }

    /// The receiver accepted a notification: delete the entries it carried
    /// and record the group's new state, in one transaction.
    pub fn commit_delivered(&self, receiver: &str, seqs: &[u64], group: &GroupUpdate) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            for s in seqs {
                outbox.remove((receiver, *s))?;
            }
            let mut groups = tx.open_table(GROUPS)?;
            match group {
                GroupUpdate::Put(g) => {
                    groups.insert((g.receiver.as_str(), g.id().as_str()), json(g).as_slice())?;
                }
                GroupUpdate::Delete { receiver, id } => {
                    groups.remove((receiver.as_str(), id.as_str()))?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The receiver refused these entries for good: move them to the failed table.
    pub fn commit_failed(&self, entries: &[OutboxEntry], reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut failed = tx.open_table(FAILED)?;
            for e in entries {
                outbox.remove((e.receiver.as_str(), e.seq))?;
                let f = FailedEntry { at_ms: now_ms, reason: reason.to_string(), entry: e.clone() };
                failed.insert((now_ms, e.seq), json(&f).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest failed notifications, newest first.
    pub fn failed_notifications(&self, limit: usize) -> Result<Vec<FailedEntry>, StoreError> {
        self.newest(FAILED, limit)
    }

    /// Forget failed notifications older than `before_ms`.
    pub fn prune_failed_notifications(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.prune_older(FAILED, before_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Status;

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
        let dropped = store
            .commit_alerts_with_outbox(&[], vec![entry("a", "x"), entry("b", "y"), entry("a", "z")], 10, 1000)
            .unwrap();
        assert!(dropped.is_empty());
        let a = store.outbox("a").unwrap();
        assert_eq!(a.iter().map(|e| (e.seq, e.notice.slo.as_str())).collect::<Vec<_>>(), [(1, "x"), (3, "z")]);
        assert_eq!(store.outbox_depths().unwrap(), BTreeMap::from([("a".into(), 2), ("b".into(), 1)]));

        // Delivered: the entry goes and the group state is recorded, together.
        let g = GroupState { receiver: "a".into(), episode: 1, ..Default::default() };
        store.commit_delivered("a", &[1], &GroupUpdate::Put(g.clone())).unwrap();
        assert_eq!(store.outbox("a").unwrap().len(), 1);
        assert_eq!(store.notify_groups("a").unwrap(), std::slice::from_ref(&g));
        assert!(store.notify_groups("b").unwrap().is_empty());
        store.commit_delivered("a", &[], &GroupUpdate::Delete { receiver: "a".into(), id: g.id() }).unwrap();
        assert!(store.notify_groups("a").unwrap().is_empty());

        // Past `max_outbox`, the oldest entries of that receiver move to the failed table.
        let many: Vec<OutboxEntry> = (0..12).map(|i| entry("b", &format!("s{i}"))).collect();
        let dropped = store.commit_alerts_with_outbox(&[], many, 10, 2000).unwrap();
        assert_eq!(dropped.iter().map(|e| e.notice.slo.as_str()).collect::<Vec<_>>(), ["y", "s0", "s1"]);
        assert_eq!(store.outbox("b").unwrap().len(), 10);
        let failed = store.failed_notifications(10).unwrap();
        assert_eq!(failed.len(), 3);
        assert!(failed[0].reason.contains("outbox of `b` was full"));
        // Refused entries move there too; old failures are pruned.
        let refused = store.outbox("a").unwrap();
        store.commit_failed(&refused, "HTTP 400", 3000).unwrap();
        assert!(store.outbox("a").unwrap().is_empty());
        assert_eq!(store.failed_notifications(1).unwrap()[0].reason, "HTTP 400");
        assert_eq!(store.prune_failed_notifications(2500).unwrap(), 3);
        assert_eq!(store.failed_notifications(10).unwrap().len(), 1);
    }

    #[test]
    fn sequences_keep_rising_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = Store::open(&path).unwrap();
            store.commit_alerts_with_outbox(&[], vec![entry("a", "x")], 10, 0).unwrap();
            store.commit_delivered("a", &[1], &GroupUpdate::Delete { receiver: "a".into(), id: "0|".into() }).unwrap();
        }
        let store = Store::open(&path).unwrap();
        store.commit_alerts_with_outbox(&[], vec![entry("a", "y")], 10, 0).unwrap();
        assert_eq!(store.outbox("a").unwrap()[0].seq, 2, "a new entry never reuses a delivered one's number");
    }
}
