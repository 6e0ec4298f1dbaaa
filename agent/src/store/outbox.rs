//! The notification outbox as the store keeps it: records per receiver, the
//! group delivery state, and what could not be delivered — all as opaque
//! JSON the notify layer writes and reads (`notify::outbox`), so the store
//! knows no notification types. Records are written in the same transaction
//! as the alert transitions that caused them
//! ([`Store::commit_alerts_with_outbox`]) and deleted in the same
//! transaction that records the group's new state after the receiver
//! accepted them ([`Store::commit_delivered`]).

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{META, Store, StoreError, begin_write};

/// (receiver, sequence) → record (JSON).
pub(super) const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("notify_outbox");
/// (receiver, group id) → group state (JSON).
pub(super) const GROUPS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("notify_groups");
/// (time ms, sequence) → `{"at_ms", "reason", "entry": <record>}` (JSON).
pub(super) const FAILED: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("notify_failed");

/// How long failed notifications are kept.
pub const FAILED_KEEP_MS: i64 = 30 * 24 * 3_600_000;

pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(OUTBOX)?;
    tx.open_table(GROUPS)?;
    tx.open_table(FAILED)?;
    Ok(())
}

/// A record for a receiver's outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub receiver: String,
    /// Assigned by the store when the record is added; increases across
    /// receivers and restarts.
    pub seq: u64,
    pub json: Vec<u8>,
}

/// A record that could not be delivered, kept for a human to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub at_ms: i64,
    pub seq: u64,
    pub reason: String,
    pub json: Vec<u8>,
}

/// What to do with a group after a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupWrite {
    Put {
        receiver: String,
        id: String,
        json: Vec<u8>,
    },
    /// The group is over: forget it.
    Delete {
        receiver: String,
        id: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FailedRow {
    at_ms: i64,
    reason: String,
    entry: serde_json::Value,
}

fn failed_row(at_ms: i64, reason: &str, json: &[u8]) -> Vec<u8> {
    // Kept readable as one JSON document; a record that is not JSON is kept as text.
    let entry = serde_json::from_slice(json)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(json).into_owned()));
    serde_json::to_vec(&FailedRow { at_ms, reason: reason.to_string(), entry }).expect("JSON values serialize")
}

impl Store {
    /// Record alert transitions and the outbox records they cause, in one
    /// transaction. Records get their sequence numbers here (the `seq` given
    /// is ignored). A receiver holding more than `max_outbox` records has its
    /// oldest moved to the failed table; they are returned.
    pub fn commit_alerts_with_outbox(
        &self,
        transitions: &[crate::alert::Transition],
        records: Vec<Queued>,
        max_outbox: usize,
        now_ms: i64,
    ) -> Result<Vec<Failed>, StoreError> {
        if transitions.is_empty() && records.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        self.write_alerts(&tx, transitions)?;
        let mut dropped = Vec::new();
        if !records.is_empty() {
            let mut meta = tx.open_table(META)?;
            let mut seq: u64 = meta.get("outbox_seq")?.and_then(|v| v.value().parse().ok()).unwrap_or(0);
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut receivers: Vec<String> = Vec::new();
            for r in records {
                seq += 1;
                outbox.insert((r.receiver.as_str(), seq), r.json.as_slice())?;
                if !receivers.contains(&r.receiver) {
                    receivers.push(r.receiver);
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
                let reason = format!("the outbox of `{r}` was full");
                for s in &keys[..keys.len() - max_outbox] {
                    let Some(v) = outbox.remove((r.as_str(), *s))? else { continue };
                    let json = v.value().to_vec();
                    failed.insert((now_ms, *s), failed_row(now_ms, &reason, &json).as_slice())?;
                    dropped.push(Failed { at_ms: now_ms, seq: *s, reason: reason.clone(), json });
                }
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// A receiver's waiting records, oldest first.
    pub fn outbox(&self, receiver: &str) -> Result<Vec<Queued>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for row in t.range((receiver, 0)..=(receiver, u64::MAX))? {
            let (k, v) = row?;
            out.push(Queued { receiver: receiver.to_string(), seq: k.value().1, json: v.value().to_vec() });
        }
        Ok(out)
    }

    /// Records waiting, per receiver.
    pub fn outbox_depths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(OUTBOX)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, _) = row?;
            *out.entry(k.value().0.to_string()).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// A receiver's group states.
    pub fn notify_groups(&self, receiver: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(GROUPS)?;
        let mut out = Vec::new();
        for row in t.range((receiver, "")..)? {
            let (k, v) = row?;
            if k.value().0 != receiver {
                break;
            }
            out.push(v.value().to_vec());
        }
        Ok(out)
    }

    /// The receiver accepted a notification: delete the records it carried
    /// and record the group's new state, in one transaction.
    pub fn commit_delivered(&self, receiver: &str, seqs: &[u64], group: &GroupWrite) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            for s in seqs {
                outbox.remove((receiver, *s))?;
            }
            let mut groups = tx.open_table(GROUPS)?;
            match group {
                GroupWrite::Put { receiver, id, json } => {
                    groups.insert((receiver.as_str(), id.as_str()), json.as_slice())?;
                }
                GroupWrite::Delete { receiver, id } => {
                    groups.remove((receiver.as_str(), id.as_str()))?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The receiver refused these records for good: move them to the failed table.
    pub fn commit_failed(&self, records: &[Queued], reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut failed = tx.open_table(FAILED)?;
            for r in records {
                outbox.remove((r.receiver.as_str(), r.seq))?;
                failed.insert((now_ms, r.seq), failed_row(now_ms, reason, &r.json).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest failed records, newest first.
    pub fn failed_notifications(&self, limit: usize) -> Result<Vec<Failed>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(FAILED)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev().take(limit) {
            let (k, v) = row?;
            if let Ok(f) = serde_json::from_slice::<FailedRow>(v.value()) {
                let json = serde_json::to_vec(&f.entry).expect("JSON values serialize");
                out.push(Failed { at_ms: f.at_ms, seq: k.value().1, reason: f.reason, json });
            }
        }
        Ok(out)
    }

    /// Forget failed notifications older than `before_ms`.
    pub fn prune_failed_notifications(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.prune_older(FAILED, before_ms)
    }
}
