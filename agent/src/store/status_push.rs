//! The status push outbox as the store keeps it: what an external status
//! page must be told, as opaque JSON records in order, and a small table of
//! remembered values (the remote incident ids, the last state queued per
//! component) — written and read by `api::status_push`, so the store knows
//! no status page types.
//!
//! A record carries an optional coalescing key: when the queue is full,
//! a record whose key a newer record shares is superseded and goes first
//! (only a component's latest state matters); a record without a key (an
//! incident change) goes only when nothing else can.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{META, Store, StoreError, begin_write};

/// sequence → (coalescing key, `""` for none; record JSON).
pub(super) const PUSH_OUTBOX: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("status_push_outbox");
/// key → value: remote ids and last queued states, as the writer names them.
pub(super) const PUSH_VALUES: TableDefinition<&str, &str> = TableDefinition::new("status_push_values");

pub(super) fn init(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PUSH_OUTBOX)?;
    tx.open_table(PUSH_VALUES)?;
    Ok(())
}

/// A record of the status push outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRecord {
    /// Assigned by the store when the record is added; increases across restarts.
    pub seq: u64,
    /// Records with the same key supersede each other when the queue is full.
    pub key: Option<String>,
    pub json: Vec<u8>,
}

/// What to write with a queued record, in the same transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushQueue {
    pub records: Vec<PushRecord>,
    /// Values to remember (`key → value`).
    pub values: Vec<(String, String)>,
    /// The queue's bound.
    pub max: usize,
}

/// What queueing did to make room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queued {
    /// Older records of the same key, superseded.
    pub coalesced: u64,
    /// Records without a newer one of their key, dropped for room (oldest first).
    pub dropped: Vec<PushRecord>,
}

/// Add `q` to the outbox within `tx`, making room as [`PushRecord::key`] says.
pub(super) fn queue_in(tx: &redb::WriteTransaction, q: &PushQueue) -> Result<Queued, StoreError> {
    let mut out = Queued::default();
    if q.records.is_empty() && q.values.is_empty() {
        return Ok(out);
    }
    let mut meta = tx.open_table(META)?;
    let mut seq: u64 = meta.get("status_push_seq")?.and_then(|v| v.value().parse().ok()).unwrap_or(0);
    let mut t = tx.open_table(PUSH_OUTBOX)?;
    for r in &q.records {
        seq += 1;
        t.insert(seq, (r.key.as_deref().unwrap_or(""), r.json.as_slice()))?;
    }
    meta.insert("status_push_seq", seq.to_string().as_str())?;
    let max = q.max.max(1);
    if t.len()? as usize > max {
        // Oldest first: (seq, key).
        let rows: Vec<(u64, String)> =
            t.iter()?.map(|row| row.map(|(k, v)| (k.value(), v.value().0.to_string()))).collect::<Result<_, _>>()?;
        let mut excess = rows.len() - max;
        // Superseded records first: a keyed record with a newer one of its key.
        let mut newest: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for (s, k) in &rows {
            if !k.is_empty() {
                newest.insert(k.as_str(), *s);
            }
        }
        for (s, k) in &rows {
            if excess == 0 {
                break;
            }
            if !k.is_empty() && newest.get(k.as_str()) != Some(s) {
                t.remove(*s)?;
                out.coalesced += 1;
                excess -= 1;
            }
        }
        // Still full: the oldest records go, whatever they are.
        for (s, _) in &rows {
            if excess == 0 {
                break;
            }
            if let Some(v) = t.remove(*s)? {
                let (k, json) = v.value();
                out.dropped.push(PushRecord {
                    seq: *s,
                    key: (!k.is_empty()).then(|| k.to_string()),
                    json: json.to_vec(),
                });
                excess -= 1;
            }
        }
    }
    let mut values = tx.open_table(PUSH_VALUES)?;
    for (k, v) in &q.values {
        values.insert(k.as_str(), v.as_str())?;
    }
    Ok(out)
}

impl Store {
    /// Queue status push records (and remember values), in one transaction.
    pub fn queue_status_push(&self, q: &PushQueue) -> Result<Queued, StoreError> {
        if q.records.is_empty() && q.values.is_empty() {
            return Ok(Queued::default());
        }
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let out = queue_in(&tx, q)?;
        tx.commit()?;
        Ok(out)
    }

    /// The waiting records, oldest first.
    pub fn status_push_waiting(&self) -> Result<Vec<PushRecord>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(PUSH_OUTBOX)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (key, json) = v.value();
            out.push(PushRecord {
                seq: k.value(),
                key: (!key.is_empty()).then(|| key.to_string()),
                json: json.to_vec(),
            });
        }
        Ok(out)
    }

    /// The oldest waiting record, and how many wait.
    pub fn status_push_first(&self) -> Result<(Option<PushRecord>, u64), StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(PUSH_OUTBOX)?;
        let first = match t.first()? {
            Some((k, v)) => {
                let (key, json) = v.value();
                Some(PushRecord {
                    seq: k.value(),
                    key: (!key.is_empty()).then(|| key.to_string()),
                    json: json.to_vec(),
                })
            }
            None => None,
        };
        Ok((first, t.len()?))
    }

    /// A remembered value.
    pub fn status_push_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(PUSH_VALUES)?;
        Ok(t.get(key)?.map(|v| v.value().to_string()))
    }

    /// Every remembered value whose key starts with `prefix`.
    pub fn status_push_values(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(PUSH_VALUES)?;
        let mut out = Vec::new();
        for row in t.range(prefix..)? {
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    /// The status page accepted (or refused for good) record `seq`: it
    /// leaves the outbox, and `values` (a remote id it answered with) are
    /// remembered, in one transaction.
    pub fn status_push_done(&self, seq: u64, values: &[(String, String)]) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            tx.open_table(PUSH_OUTBOX)?.remove(seq)?;
            let mut t = tx.open_table(PUSH_VALUES)?;
            for (k, v) in values {
                t.insert(k.as_str(), v.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forget the remembered values under `prefix` whose rest `keep` refuses.
    pub fn prune_status_push_values(&self, prefix: &str, keep: &dyn Fn(&str) -> bool) -> Result<u64, StoreError> {
        let gone: Vec<String> = self
            .status_push_values(prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !keep(&k[prefix.len()..]))
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut t = tx.open_table(PUSH_VALUES)?;
            for k in &gone {
                t.remove(k.as_str())?;
            }
        }
        tx.commit()?;
        Ok(gone.len() as u64)
    }

    /// Records waiting.
    pub fn status_push_depth(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        Ok(tx.open_table(PUSH_OUTBOX)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: Option<&str>, body: &str) -> PushRecord {
        PushRecord { seq: 0, key: key.map(str::to_string), json: body.as_bytes().to_vec() }
    }

    fn bodies(s: &Store) -> Vec<String> {
        s.status_push_waiting().unwrap().iter().map(|r| String::from_utf8(r.json.clone()).unwrap()).collect()
    }

    #[test]
    fn records_queue_in_order_coalesce_when_full_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            let q = |records, max| PushQueue { records, values: Vec::new(), max };
            let out = s
                .queue_status_push(&q(vec![rec(Some("c/A"), "A1"), rec(None, "i1"), rec(Some("c/B"), "B1")], 4))
                .unwrap();
            assert_eq!(out, Queued::default());
            // Not full: a second state of A waits behind the first.
            s.queue_status_push(&q(vec![rec(Some("c/A"), "A2")], 4)).unwrap();
            assert_eq!(bodies(&s), ["A1", "i1", "B1", "A2"]);
            // Full: A's superseded states go before anything else.
            let out = s.queue_status_push(&q(vec![rec(Some("c/A"), "A3")], 4)).unwrap();
            assert_eq!((out.coalesced, out.dropped.len()), (1, 0));
            assert_eq!(bodies(&s), ["i1", "B1", "A2", "A3"]);
            let out = s.queue_status_push(&q(vec![rec(None, "i2")], 4)).unwrap();
            assert_eq!((out.coalesced, out.dropped.len()), (1, 0));
            assert_eq!(bodies(&s), ["i1", "B1", "A3", "i2"]);
            // Nothing superseded: the oldest goes, and is returned.
            let out = s.queue_status_push(&q(vec![rec(None, "i3")], 4)).unwrap();
            assert_eq!(out.dropped.iter().map(|r| r.json.as_slice()).collect::<Vec<_>>(), [b"i1"]);
            assert_eq!(bodies(&s), ["B1", "A3", "i2", "i3"]);
            let first = s.status_push_waiting().unwrap()[0].seq;
            s.status_push_done(first, &[("incident/inc-1".into(), "sp-9".into())]).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(bodies(&s), ["A3", "i2", "i3"]);
        assert_eq!(s.status_push_depth().unwrap(), 3);
        let (first, depth) = s.status_push_first().unwrap();
        assert_eq!((first.map(|r| r.json), depth), (Some(b"A3".to_vec()), 3));
        assert_eq!(s.status_push_value("incident/inc-1").unwrap().as_deref(), Some("sp-9"));
        assert_eq!(s.status_push_values("incident/").unwrap(), [("incident/inc-1".to_string(), "sp-9".to_string())]);
        assert!(s.status_push_values("component/").unwrap().is_empty());
        assert_eq!(s.prune_status_push_values("incident/", &|id| id == "inc-1").unwrap(), 0);
        assert_eq!(s.prune_status_push_values("incident/", &|_| false).unwrap(), 1);
        assert_eq!(s.status_push_value("incident/inc-1").unwrap(), None);
        s.queue_status_push(&PushQueue { records: vec![rec(None, "i4")], values: Vec::new(), max: 10 }).unwrap();
        let seqs: Vec<u64> = s.status_push_waiting().unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8], "sequences keep rising across a reopen");
    }
}
