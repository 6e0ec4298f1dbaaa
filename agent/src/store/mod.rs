//! The embedded store (redb): SLI buckets, latency days, source checkpoints
//! and reject counters.
//!
//! **Architecture invariant:** only this module touches the state file. The
//! counts a batch produced and the checkpoints of the sources that produced
//! them are written in one transaction ([`Store::commit`]), so after a crash
//! the store holds either both or neither: nothing is lost and nothing is
//! counted twice.
//!
//! Why redb: a pure-Rust, ACID, copy-on-write B-tree with a stable file
//! format and crash safety by default. sled (named in early plans) has had no
//! stable release since 2021 and has open corruption reports.

pub mod audit;
pub mod backup;
pub mod outbox;
pub mod status_push;

pub use audit::{AUDIT_LOG_MS, MAX_ANONYMOUS_AUDIT_ENTRIES};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::decode::RejectReason;
use crate::sli::ring::Counts;
use crate::sli::series::RingId;
use crate::sli::{Change, Engine, definition_key};
#[cfg(test)]
use crate::spec::model::SloSet;

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// SLO name → the definition its stored counts were made under.
const DEFINITIONS: TableDefinition<&str, &str> = TableDefinition::new("slo_definitions");
/// (SLO name, ring, bucket index) → (good, total).
const BUCKETS: TableDefinition<(&str, u8, i64), (u64, u64)> = TableDefinition::new("buckets");
/// (SLO name, UTC day) → HDR histogram, sparse encoding (`sli::hdr`).
const LATENCY: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("latency_days");
/// Source id → its checkpoint (opaque to the store).
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// (source id, reason) → lines rejected.
const REJECTS: TableDefinition<(&str, &str), u64> = TableDefinition::new("rejects");
/// (push source, delivery request id) → when it was committed (ms), so a
/// redelivered request (Firehose retries with the same id) is counted once.
const DELIVERIES: TableDefinition<(&str, &str), i64> = TableDefinition::new("push_deliveries");

/// SLO name → when it left the specs (ms). Its rows are kept for
/// [`VANISHED_SLO_GRACE_MS`], so an SLO that comes back gets its history back.
const VANISHED: TableDefinition<&str, i64> = TableDefinition::new("slo_vanished");

/// (SLO name, alert kind) → the alert's record (JSON, `alert::AlertRecord`).
const ALERTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("alerts");
/// (time ms, sequence) → one alert transition (JSON, `alert::Transition`).
const ALERT_HISTORY: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("alert_history");

/// How long alert transitions are kept.
pub const ALERT_HISTORY_MS: i64 = 90 * 24 * 3_600_000;

/// How long a delivery id is remembered. Firehose retries for at most two
/// hours (its longest retry duration); a day leaves room for agent restarts.
pub const DELIVERY_MEMORY_MS: i64 = 24 * 3_600_000;

const SCHEMA_VERSION: &str = "1";

/// Keys of [`META`] that say which state this is and how new it is, so a
/// restore can tell whether it would replace newer state
/// ([`backup`]): a random id made with the file, the number of write
/// transactions committed, and when the last one began (wall clock, ms).
const STATE_ID: &str = "state_id";
const WRITE_SEQ: &str = "write_seq";
const LAST_WRITE_MS: &str = "last_write_ms";

/// Begin a write transaction on the state file, counting it in [`META`]
/// (`write_seq`, `last_write_ms`). Every write of the store goes through
/// here.
fn begin_write(db: &Database) -> Result<redb::WriteTransaction, StoreError> {
    use crate::clock::Clock as _;
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        let seq = meta.get(WRITE_SEQ)?.and_then(|v| v.value().parse::<u64>().ok()).unwrap_or(0);
        meta.insert(WRITE_SEQ, (seq + 1).to_string().as_str())?;
        meta.insert(LAST_WRITE_MS, crate::clock::SystemClock.now_ms().to_string().as_str())?;
        if meta.get(STATE_ID)?.is_none() {
            meta.insert(STATE_ID, crate::secret::random_id().as_str())?;
        }
    }
    Ok(tx)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state file {path}: {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("the state file {path} was written by an incompatible version (schema {found}, expected {SCHEMA_VERSION})")]
    Schema { path: PathBuf, found: String },
    #[error("state file transaction failed: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("state file table error: {0}")]
    Table(#[from] redb::TableError),
    #[error("state file storage error: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("state file commit failed: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("state file durability setting refused: {0}")]
    Durability(#[from] redb::SetDurabilityError),
    #[error("corrupt latency histogram for SLO {slo} day {day}: {message}")]
    Histogram { slo: String, day: i64, message: String },
    #[error("{0}")]
    Foreign(String),
    #[error("the state file is closed after a failed write; it is being reopened")]
    Closed,
}

/// What loading the store into an engine found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub buckets: u64,
    pub latency_days: u64,
    /// SLOs whose definition changed since their counts were stored; their
    /// old counts were discarded.
    pub reset: Vec<String>,
}

/// Rejected lines per source and reason, as deltas to add in a commit.
pub type RejectDeltas = BTreeMap<(String, RejectReason), u64>;

/// The state file. Shared by every thread that reads or writes state; a
/// write that fails leaves redb refusing further writes, so the runtime
/// [`Store::reopen`]s it (every handle sees the reopened file).
pub struct Store {
    /// `None` only while being reopened (or after a reopen failed).
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// Tests: while set, every write fails, as writes do on a full disk.
    #[cfg(test)]
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

/// A read handle on the open database, held for a transaction's duration so
/// a reopen waits for it.
struct Db<'a>(RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for Db<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.0.as_ref().expect("checked when the handle was made")
    }
}

/// How long the rows of an SLO that left the specs are kept, in case it
/// comes back (a spec file moved, or removed for a moment).
pub const VANISHED_SLO_GRACE_MS: i64 = 7 * 24 * 3_600_000;

impl Store {
    /// Open (or create) the state file. A missing file is created; an
    /// existing file that is empty, or a redb file some other program wrote,
    /// is refused: starting afresh over it would re-read every log from the
    /// start and count it again.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let existed = match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() == 0 => {
                return Err(StoreError::Foreign(format!(
                    "the state file {} is empty (0 bytes): it is not a slo-agent state file. Restore it from a backup, \
                     or move it away to start afresh (every log is then read again from its start)",
                    path.display()
                )));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if !existed {
            Self::create_whole(path)?;
        }
        let mut db = open_db(path)?;
        if existed {
            compact_if_sparse(&mut db, path);
        }
        let store = Store {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            #[cfg(test)]
            failing: std::sync::atomic::AtomicBool::new(false),
        };
        store.init(true)?;
        Ok(store)
    }

    /// Make a new state file, schema and tables included, under a
    /// temporary name, and rename it into place once whole. redb writes a
    /// new file's header in two steps, its magic number last; a process
    /// killed between them (an agent OOM-killed on its first start) would
    /// leave a file redb refuses for good. Killed here, the next start finds
    /// no state file and only the temporary one, which it replaces.
    fn create_whole(path: &Path) -> Result<(), StoreError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
        let tmp = path.with_file_name(format!("{name}.creating"));
        let io =
            |e: std::io::Error| StoreError::Foreign(format!("cannot create the state file {}: {e}", path.display()));
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        {
            let db = Database::create(&tmp).map_err(|source| StoreError::Open { path: tmp.clone(), source })?;
            let store = Store {
                db: RwLock::new(Some(db)),
                path: tmp.clone(),
                #[cfg(test)]
                failing: std::sync::atomic::AtomicBool::new(false),
            };
            store.init(false)?;
        }
        crate::fsutil::durable_rename(&tmp, path).map_err(io)
    }

    fn db(&self) -> Result<Db<'_>, StoreError> {
        let guard = self.db.read().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(Db(guard))
    }

    /// Whether a durable write goes through now (after a reopen, before the
    /// agent says it is ready again): writes the time into the meta table.
    pub fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        tx.open_table(META)?.insert("last_write_probe_ms", now_ms.to_string().as_str())?;
        tx.commit()?;
        Ok(())
    }

    /// The database, to begin a write transaction on.
    fn db_for_write(&self) -> Result<Db<'_>, StoreError> {
        #[cfg(test)]
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Foreign("injected write failure (tests)".into()));
        }
        self.db()
    }

    /// Close and open the state file again, after a failed write left redb
    /// refusing writes. Waits for open transactions to end. What was not
    /// committed durably before the failure is gone from the file; the
    /// runtime reads its state back from it.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write().unwrap_or_else(|e| e.into_inner());
        // The file lock must be released before the file is opened again.
        drop(guard.take());
        let db = open_db(&self.path)?;
        *guard = Some(db);
        drop(guard);
        self.init(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init(&self, existed: bool) -> Result<(), StoreError> {
        if existed {
            // A redb file without our schema marker belongs to someone else.
            let db = self.db()?;
            let tx = db.begin_read()?;
            let marked = match tx.open_table(META) {
                Ok(meta) => meta.get("schema_version")?.is_some(),
                Err(redb::TableError::TableDoesNotExist(_)) => false,
                Err(e) => return Err(e.into()),
            };
            if !marked {
                return Err(StoreError::Foreign(format!(
                    "{} is a redb file that slo-agent did not write (no schema version): refusing to use it as the \
                     state file. Point `state:` at another path",
                    self.path.display()
                )));
            }
        }
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value().to_string());
            match found {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(found) => return Err(StoreError::Schema { path: self.path.clone(), found }),
            }
            open_api_tables(&tx)?;
            tx.open_table(DEFINITIONS)?;
            tx.open_table(BUCKETS)?;
            tx.open_table(LATENCY)?;
            tx.open_table(CHECKPOINTS)?;
            tx.open_table(REJECTS)?;
            tx.open_table(DELIVERIES)?;
            tx.open_table(ALERTS)?;
            tx.open_table(ALERT_HISTORY)?;
            tx.open_table(VANISHED)?;
            outbox::init(&tx)?;
            status_push::init(&tx)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Record alert transitions: each one's record replaces the stored one
    /// (or removes it when a pending alert was dropped), and the transition
    /// joins the history, all in one transaction.
    pub fn commit_alerts(&self, transitions: &[crate::alert::Transition]) -> Result<(), StoreError> {
        if transitions.is_empty() {
            return Ok(());
        }
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        self.write_alerts(&tx, transitions)?;
        tx.commit()?;
        Ok(())
    }

    fn write_alerts(
        &self,
        tx: &redb::WriteTransaction,
        transitions: &[crate::alert::Transition],
    ) -> Result<(), StoreError> {
        let mut alerts = tx.open_table(ALERTS)?;
        let mut history = tx.open_table(ALERT_HISTORY)?;
        let first = history.last()?.map(|(k, _)| k.value().1 + 1).unwrap_or(0);
        for (seq, t) in (first..).zip(transitions) {
            let key = (t.slo.as_str(), t.kind.as_str());
            match t.to {
                None => {
                    alerts.remove(key)?;
                }
                Some(_) => {
                    let json = serde_json::to_vec(&t.record).expect("alert records serialize");
                    alerts.insert(key, json.as_slice())?;
                }
            }
            let json = serde_json::to_vec(t).expect("transitions serialize");
            history.insert((t.at_ms, seq), json.as_slice())?;
        }
        Ok(())
    }

    /// Every stored alert record. Records that do not parse (written by a
    /// future version) are skipped with a warning.
    pub fn alerts(&self) -> Result<Vec<crate::alert::AlertRecord>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(ALERTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            match serde_json::from_slice(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(alert = ?k.value(), error = %e, "skipping an unreadable stored alert"),
            }
        }
        Ok(out)
    }

    /// The newest `limit` alert transitions, newest first.
    pub fn alert_history(&self, limit: usize) -> Result<Vec<crate::alert::Transition>, StoreError> {
        self.newest(ALERT_HISTORY, limit)
    }

    /// Forget alert transitions older than `before_ms`.
    pub fn prune_alert_history(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.prune_older(ALERT_HISTORY, before_ms)
    }

    /// Load every stored bucket and latency day of the engine's SLOs (at
    /// start, and after a reopen). SLOs whose definition changed lose their
    /// stored counts (and say so); definitions of new SLOs are recorded;
    /// SLOs with rows that are not in the engine start their grace period
    /// ([`VANISHED_SLO_GRACE_MS`]).
    pub fn load_into(&self, engine: &mut Engine, now_ms: i64) -> Result<LoadSummary, StoreError> {
        let names: Vec<String> = engine.slos().map(|s| s.slo.name.clone()).collect();
        self.sync_slos(engine, &names, &[], now_ms)
    }

    /// After a spec reload: record the definitions of the engine's SLOs;
    /// load the stored history of SLOs new to the engine whose definition
    /// matches what was stored (an SLO removed for a moment and put back
    /// gets its history back); drop the stored counts of SLOs the engine
    /// reset (`reset`, their indicator or budgeting changed); start the
    /// grace period of SLOs that left.
    pub fn sync_after_reload(
        &self,
        engine: &mut Engine,
        previous: &[String],
        reset: &[String],
        now_ms: i64,
    ) -> Result<LoadSummary, StoreError> {
        let new: Vec<String> = engine.slos().map(|s| s.slo.name.clone()).filter(|n| !previous.contains(n)).collect();
        self.sync_slos(engine, &new, reset, now_ms)
    }

    /// Bring the stored definitions up to date with the engine, then load
    /// the rows of `load` (whose stored definition matches) into it.
    fn sync_slos(
        &self,
        engine: &mut Engine,
        load: &[String],
        reset: &[String],
        now_ms: i64,
    ) -> Result<LoadSummary, StoreError> {
        let mut summary = LoadSummary::default();
        let defs: BTreeMap<String, String> =
            engine.slos().map(|s| (s.slo.name.clone(), definition_key(s.slo))).collect();
        let mut to_load: Vec<&str> = Vec::new();
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut table = tx.open_table(DEFINITIONS)?;
            let mut buckets = tx.open_table(BUCKETS)?;
            let mut latency = tx.open_table(LATENCY)?;
            let mut vanished = tx.open_table(VANISHED)?;
            for (name, def) in &defs {
                let name = name.as_str();
                let stored = table.get(name)?.map(|v| v.value().to_string());
                let matches = stored.as_deref() == Some(def.as_str()) && !reset.iter().any(|r| r == name);
                if !matches {
                    if stored.is_some() {
                        summary.reset.push(name.to_string());
                        buckets.retain_in((name, 0u8, i64::MIN)..=(name, u8::MAX, i64::MAX), |_, _| false)?;
                        latency.retain_in((name, i64::MIN)..=(name, i64::MAX), |_, _| false)?;
                    }
                    table.insert(name, def.as_str())?;
                } else if load.iter().any(|l| l == name) {
                    to_load.push(name);
                }
                vanished.remove(name)?;
            }
            let gone: Vec<String> = table
                .iter()?
                .filter_map(|r| r.ok().map(|(k, _)| k.value().to_string()))
                .filter(|n| !defs.contains_key(n))
                .collect();
            for name in gone {
                if vanished.get(name.as_str())?.is_none() {
                    vanished.insert(name.as_str(), now_ms)?;
                }
            }
        }
        tx.commit()?;

        let tx = db.begin_read()?;
        let buckets = tx.open_table(BUCKETS)?;
        let latency = tx.open_table(LATENCY)?;
        for name in to_load {
            for row in buckets.range((name, 0u8, i64::MIN)..=(name, u8::MAX, i64::MAX))? {
                let (k, v) = row?;
                let (_, ring, bucket) = k.value();
                let (good, total) = v.value();
                if let Some(ring) = RingId::from_u8(ring)
                    && engine.restore_bucket(name, ring, bucket, Counts { good, total })
                {
                    summary.buckets += 1;
                }
            }
            for row in latency.range((name, i64::MIN)..=(name, i64::MAX))? {
                let (k, v) = row?;
                let (_, day) = k.value();
                let h = crate::sli::hdr::Histogram::decode(v.value()).map_err(|message| StoreError::Histogram {
                    slo: name.to_string(),
                    day,
                    message,
                })?;
                engine.restore_latency_day(name, day, h);
                summary.latency_days += 1;
            }
        }
        Ok(summary)
    }

    /// Write a batch: the engine's changed buckets, the checkpoints of the
    /// sources that produced them, and the reject counts — atomically.
    pub fn commit(
        &self,
        changes: &[Change],
        checkpoints: &[(String, Vec<u8>)],
        rejects: &RejectDeltas,
    ) -> Result<(), StoreError> {
        self.commit_with(changes, checkpoints, rejects, None, true)
    }

    /// [`Store::commit`] that need not reach the disk yet: it becomes durable
    /// with the next durable commit, and a crash before that rolls it back
    /// whole (counts and checkpoints together), so the source reads the same
    /// bytes again and counts them once. Saves an fsync per batch.
    pub fn commit_lazily(
        &self,
        changes: &[Change],
        checkpoints: &[(String, Vec<u8>)],
        rejects: &RejectDeltas,
    ) -> Result<(), StoreError> {
        self.commit_with(changes, checkpoints, rejects, None, false)
    }

    /// [`Store::commit`], also recording a push delivery `(source, request
    /// id, at_ms)` in the same transaction: the delivery's counts and the
    /// fact that it was counted land together.
    pub fn commit_delivery(
        &self,
        changes: &[Change],
        checkpoints: &[(String, Vec<u8>)],
        rejects: &RejectDeltas,
        delivery: Option<(&str, &str, i64)>,
    ) -> Result<(), StoreError> {
        self.commit_with(changes, checkpoints, rejects, delivery, true)
    }

    fn commit_with(
        &self,
        changes: &[Change],
        checkpoints: &[(String, Vec<u8>)],
        rejects: &RejectDeltas,
        delivery: Option<(&str, &str, i64)>,
        durable: bool,
    ) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let mut tx = begin_write(&db)?;
        if !durable {
            tx.set_durability(redb::Durability::None)?;
        }
        if let Some((source, id, at)) = delivery {
            tx.open_table(DELIVERIES)?.insert((source, id), at)?;
        }
        {
            let mut buckets = tx.open_table(BUCKETS)?;
            let mut latency = tx.open_table(LATENCY)?;
            let mut buf = Vec::new();
            for c in changes {
                match c {
                    Change::Bucket { slo, ring, bucket, counts } => {
                        buckets.insert((slo.as_str(), *ring as u8, *bucket), (counts.good, counts.total))?;
                    }
                    Change::LatencyDay { slo, day, histogram } => {
                        buf.clear();
                        histogram.encode(&mut buf);
                        latency.insert((slo.as_str(), *day), buf.as_slice())?;
                    }
                }
            }
            let mut cps = tx.open_table(CHECKPOINTS)?;
            for (source, cp) in checkpoints {
                cps.insert(source.as_str(), cp.as_slice())?;
            }
            let mut rj = tx.open_table(REJECTS)?;
            for ((source, reason), n) in rejects {
                let key = (source.as_str(), reason.as_str());
                let old = rj.get(key)?.map(|v| v.value()).unwrap_or(0);
                rj.insert(key, old + n)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A source's last committed checkpoint.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        Ok(t.get(source)?.map(|v| v.value().to_vec()))
    }

    /// When a push delivery with this request id was committed, if it was.
    pub fn delivery(&self, source: &str, id: &str) -> Result<Option<i64>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(DELIVERIES)?;
        Ok(t.get((source, id))?.map(|v| v.value()))
    }

    /// Forget delivery ids committed before `before_ms`. Returns how many.
    pub fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let mut deleted = 0u64;
        {
            let mut t = tx.open_table(DELIVERIES)?;
            t.retain(|_, at| {
                let keep = at >= before_ms;
                deleted += u64::from(!keep);
                keep
            })?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Rejected lines per (source, reason), as committed.
    pub fn rejects(&self) -> Result<BTreeMap<(String, String), u64>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(REJECTS)?;
        let mut out = BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (s, r) = k.value();
            out.insert((s.to_string(), r.to_string()), v.value());
        }
        Ok(out)
    }

    /// Delete buckets and latency days older than the engine keeps
    /// (`retention`, one entry per SLO in the engine), and the rows of SLOs
    /// that left the specs more than [`VANISHED_SLO_GRACE_MS`] ago. Works in
    /// short transactions of a few SLOs each, so counting commits are never
    /// kept waiting long. Returns rows deleted.
    pub fn prune(&self, retention: &[crate::sli::Retention], now_ms: i64) -> Result<u64, StoreError> {
        const SLOS_PER_TRANSACTION: usize = 32;
        let mut deleted = 0u64;
        for chunk in retention.chunks(SLOS_PER_TRANSACTION) {
            let db = self.db_for_write()?;
            let mut tx = begin_write(&db)?;
            // Made durable by the next durable commit; losing a prune only means pruning again.
            tx.set_durability(redb::Durability::None)?;
            {
                let mut buckets = tx.open_table(BUCKETS)?;
                let mut latency = tx.open_table(LATENCY)?;
                for r in chunk {
                    let slo = r.slo.as_str();
                    for (ring, oldest) in &r.rings {
                        let ring = *ring as u8;
                        buckets.retain_in((slo, ring, i64::MIN)..(slo, ring, *oldest), |_, _| {
                            deleted += 1;
                            false
                        })?;
                    }
                    if let Some(oldest) = r.oldest_latency_day {
                        latency.retain_in((slo, i64::MIN)..(slo, oldest), |_, _| {
                            deleted += 1;
                            false
                        })?;
                    }
                }
            }
            tx.commit()?;
        }
        // SLOs gone longer than the grace period lose their rows.
        let keep: std::collections::BTreeSet<&str> = retention.iter().map(|r| r.slo.as_str()).collect();
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut vanished = tx.open_table(VANISHED)?;
            let mut defs = tx.open_table(DEFINITIONS)?;
            let mut buckets = tx.open_table(BUCKETS)?;
            let mut latency = tx.open_table(LATENCY)?;
            // Rows of SLOs nobody marked (a state file from before marks were
            // kept) start their grace period now.
            let mut with_rows: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
            for row in defs.iter()? {
                with_rows.insert(row?.0.value().to_string());
            }
            for name in with_rows.iter().filter(|n| !keep.contains(n.as_str())) {
                if vanished.get(name.as_str())?.is_none() {
                    vanished.insert(name.as_str(), now_ms)?;
                }
            }
            let expired: Vec<String> = vanished
                .iter()?
                .filter_map(|r| r.ok())
                .filter(|(_, since)| since.value() <= now_ms - VANISHED_SLO_GRACE_MS)
                .map(|(k, _)| k.value().to_string())
                .filter(|n| !keep.contains(n.as_str()))
                .collect();
            for name in &expired {
                let n = name.as_str();
                buckets.retain_in((n, 0u8, i64::MIN)..=(n, u8::MAX, i64::MAX), |_, _| {
                    deleted += 1;
                    false
                })?;
                latency.retain_in((n, i64::MIN)..=(n, i64::MAX), |_, _| {
                    deleted += 1;
                    false
                })?;
                defs.remove(n)?;
                vanished.remove(n)?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }
}

// ---- Silences and the API audit log ---------------------------------------
//
// `silences`: silence id → the silence (JSON, written and read by `notify::silence`).
// The audit log: see [`audit`]. A silence and the audit entry of the call that
// made or changed it are written in one transaction.

const SILENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("silences");
// `freeze_overrides`: override id → a manual freeze or unfreeze (JSON,
// written and read by `freeze::overrides`), like silences.
const FREEZE_OVERRIDES: TableDefinition<&str, &[u8]> = TableDefinition::new("freeze_overrides");
// `freeze_bypasses`: bypass id → a bypass with its approvals (JSON, `freeze::bypass`).
const FREEZE_BYPASSES: TableDefinition<&str, &[u8]> = TableDefinition::new("freeze_bypasses");
// `deploys`: deploy id → a recorded deploy (JSON, `freeze::deploys`), pruned by `finished_at_ms`.
const DEPLOYS: TableDefinition<&str, &[u8]> = TableDefinition::new("deploys");
// `incidents`: incident id → the incident with its updates (JSON, `incident`), pruned by `resolved_at_ms`.
const INCIDENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("incidents");
// `status_days`: (status page component, UTC day since the epoch) → minutes in
// each component state that day (5 × u32 little-endian), pruned after 90 days.
pub(crate) const STATUS_DAYS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("status_days");
// `state_changes`: (service, ms, subject) → a recorded state change (JSON,
// `timeline::changes`): freeze status, outage verdict, journey and probe
// outcomes; pruned by age and count per service as they are written.
pub(crate) const STATE_CHANGES: TableDefinition<(&str, i64, &str), &[u8]> = TableDefinition::new("state_changes");
// `signal_history`: a live signal series' key (as `signals` writes it) → its
// hourly history (bytes `signals` encodes), rewritten every hour.
pub(crate) const SIGNAL_HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("signal_history");

/// Records the API changes by id, each written with its audit entry and
/// pruned some time after its `ends_at_ms`: silences and freeze overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Silences,
    FreezeOverrides,
    FreezeBypasses,
    Deploys,
    Incidents,
}

impl Kept {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Kept::Silences => SILENCES,
            Kept::FreezeOverrides => FREEZE_OVERRIDES,
            Kept::FreezeBypasses => FREEZE_BYPASSES,
            Kept::Deploys => DEPLOYS,
            Kept::Incidents => INCIDENTS,
        }
    }

    /// The JSON member holding when a record ended (ms), which pruning reads.
    fn end_field(self) -> &'static str {
        match self {
            Kept::Deploys => "finished_at_ms",
            // Open incidents (null) are kept.
            Kept::Incidents => "resolved_at_ms",
            _ => "ends_at_ms",
        }
    }
}
fn open_api_tables(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(SIGNAL_HISTORY)?;
    tx.open_table(SILENCES)?;
    tx.open_table(FREEZE_OVERRIDES)?;
    tx.open_table(FREEZE_BYPASSES)?;
    tx.open_table(DEPLOYS)?;
    tx.open_table(INCIDENTS)?;
    tx.open_table(STATUS_DAYS)?;
    tx.open_table(STATE_CHANGES)?;
    tx.open_table(audit::AUDIT_LOG)?;
    tx.open_table(audit::AUDIT_REFUSED)?;
    tx.open_table(audit::AUDIT_CHAIN)?;
    Ok(())
}

impl Store {
    /// Replace the live signals' hourly history with `records` (key, bytes
    /// as the signals encode them). Not durable by itself: it reaches the
    /// disk with the next durable commit (a crash loses at most that hour's
    /// rewrite, never older hours).
    pub fn put_signal_history(&self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let mut tx = begin_write(&db)?;
        tx.set_durability(redb::Durability::None)?;
        {
            let mut t = tx.open_table(SIGNAL_HISTORY)?;
            t.retain(|_, _| false)?;
            for (k, v) in records {
                t.insert(k.as_str(), v.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The live signals' hourly history, as written by [`Store::put_signal_history`].
    pub fn signal_history(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(SIGNAL_HISTORY)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Write the status page's changed days and delete those before
    /// `before_day`. Not durable by itself (a crash loses at most the
    /// minutes since the last durable commit).
    pub fn put_status_days(&self, rows: &[(String, i64, [u32; 5])], before_day: i64) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let mut tx = begin_write(&db)?;
        tx.set_durability(redb::Durability::None)?;
        {
            let mut t = tx.open_table(STATUS_DAYS)?;
            for (c, d, m) in rows {
                let mut bytes = [0u8; 20];
                for (i, v) in m.iter().enumerate() {
                    bytes[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                t.insert((c.as_str(), *d), bytes.as_slice())?;
            }
            t.retain(|(_, d), _| d >= before_day)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored status page day, as `(component, day, minutes)`.
    pub fn status_days(&self) -> Result<Vec<(String, i64, [u32; 5])>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(STATUS_DAYS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (c, d) = k.value();
            let b = v.value();
            if b.len() != 20 {
                continue;
            }
            let mut m = [0u32; 5];
            for (i, x) in m.iter_mut().enumerate() {
                *x = u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
            }
            out.push((c.to_string(), d, m));
        }
        Ok(out)
    }

    /// Add state changes `(service, ms, subject, json)`, delete those before
    /// `before_ms`, and keep at most `max_per_service` of each service that
    /// got one (the newest). Not durable by itself, like the status days.
    pub fn put_state_changes(
        &self,
        rows: &[(String, i64, String, Vec<u8>)],
        before_ms: i64,
        max_per_service: usize,
    ) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let mut tx = begin_write(&db)?;
        tx.set_durability(redb::Durability::None)?;
        {
            let mut t = tx.open_table(STATE_CHANGES)?;
            for (service, at, subject, json) in rows {
                t.insert((service.as_str(), *at, subject.as_str()), json.as_slice())?;
            }
            let services: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            for service in services {
                // Oldest first: those before the cut and those beyond the count.
                let mut kept: Vec<(i64, String)> = Vec::new();
                for row in t.range((service, i64::MIN, "")..(service, i64::MAX, ""))? {
                    let (k, _) = row?;
                    let (_, at, subject) = k.value();
                    kept.push((at, subject.to_string()));
                }
                let excess = kept.len().saturating_sub(max_per_service);
                for (i, (at, subject)) in kept.iter().enumerate() {
                    if i >= excess && *at >= before_ms {
                        break;
                    }
                    t.remove((service, *at, subject.as_str()))?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored state changes of `services` between `from_ms` and `to_ms`
    /// (inclusive), as JSON, oldest first per service.
    pub fn state_changes(&self, services: &[String], from_ms: i64, to_ms: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(STATE_CHANGES)?;
        let mut out = Vec::new();
        for service in services {
            for row in t.range((service.as_str(), from_ms, "")..=(service.as_str(), to_ms, "\u{10FFFF}"))? {
                out.push(row?.1.value().to_vec());
            }
        }
        Ok(out)
    }

    /// The newest stored state change of every (service, subject), as JSON.
    pub fn latest_state_changes(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(STATE_CHANGES)?;
        let mut latest: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (service, _, subject) = k.value();
            latest.insert((service.to_string(), subject.to_string()), v.value().to_vec());
        }
        Ok(latest.into_values().collect())
    }

    /// Store a silence (new, or changed; `json` as the notify layer writes
    /// it) together with the audit entry of the call that did it.
    pub fn put_silence(&self, id: &str, json: &[u8], audit: &crate::auth::AuditEntry) -> Result<(), StoreError> {
        self.put_kept(Kept::Silences, id, json, audit)
    }

    /// Every stored silence, as `(id, json)`.
    pub fn silences(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.kept(Kept::Silences)
    }

    /// Forget silences that ended before `before_ms`. Returns how many.
    pub fn prune_silences(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.prune_kept(Kept::Silences, before_ms)
    }

    /// Store a record (new or changed) with the audit entry of the call
    /// that made it, in one transaction.
    pub fn put_kept(
        &self,
        kind: Kept,
        id: &str,
        json: &[u8],
        entry: &crate::auth::AuditEntry,
    ) -> Result<(), StoreError> {
        self.put_kept_with_push(kind, id, json, entry, &status_push::PushQueue::default()).map(|_| ())
    }

    /// [`Store::put_kept`], and the status push records the change causes,
    /// in one transaction.
    pub fn put_kept_with_push(
        &self,
        kind: Kept,
        id: &str,
        json: &[u8],
        entry: &crate::auth::AuditEntry,
        push: &status_push::PushQueue,
    ) -> Result<status_push::Queued, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let queued = {
            tx.open_table(kind.table())?.insert(id, json)?;
            audit::insert(&tx, entry)?;
            status_push::queue_in(&tx, push)?
        };
        tx.commit()?;
        Ok(queued)
    }

    /// Every stored record of a kind, as `(id, json)`.
    pub fn kept(&self, kind: Kept) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(kind.table())?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Delete one record with the audit entry of the call that deleted it
    /// (or of the one that made room for another).
    pub fn delete_kept(&self, kind: Kept, ids: &[String], entry: &crate::auth::AuditEntry) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        {
            let mut t = tx.open_table(kind.table())?;
            for id in ids {
                t.remove(id.as_str())?;
            }
            audit::insert(&tx, entry)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forget records that ended (`ends_at_ms`; deploys: `finished_at_ms`) before `before_ms`.
    /// Returns how many.
    pub fn prune_kept(&self, kind: Kept, before_ms: i64) -> Result<u64, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let mut deleted = 0u64;
        {
            let mut t = tx.open_table(kind.table())?;
            let field = kind.end_field();
            t.retain(|_, v| {
                let ends = serde_json::from_slice::<serde_json::Value>(v).ok().and_then(|r| r.get(field)?.as_i64());
                let keep = ends.is_none_or(|e| e >= before_ms);
                deleted += u64::from(!keep);
                keep
            })?;
        }
        tx.commit()?;
        Ok(deleted)
    }
}

/// Tables keyed by (time ms, sequence) holding JSON records: the alert
/// history, the audit log, failed notifications.
/// redb's page cache. Its default (1 GiB) is a ceiling, not a reservation,
/// but a start reads the whole state (every SLO's buckets) once and kept
/// all of it resident: with 1,000 SLOs the pod held the state file a second
/// time. The counting state lives in the engine, so the cache only speeds
/// up the B-tree's inner pages for commits; 16 MiB holds them for state
/// files of several GiB.
const CACHE_BYTES: usize = 16 << 20;

/// Open (or create) a state file with the agent's cache size.
fn open_db(path: &Path) -> Result<Database, StoreError> {
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })
}

/// Free room in a state file from which it is compacted when opened (and
/// only when at least half the file is free).
const COMPACT_FREE_BYTES: u64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// redb reuses freed pages but never gives them back. A catch-up of weeks
/// of logs writes minute buckets that pruning deletes soon after: 1,000
/// SLOs after a 30-day catch-up left a 428 MiB file of which 42 MiB were
/// in use; compacting it took 0.22 s. So a file mostly free is compacted
/// at the start, before anything reads it; a failure only leaves it as it
/// was.
fn compact_if_sparse(db: &mut Database, path: &Path) {
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else { return };
    let used = (|| -> Result<u64, redb::Error> {
        let tx = db.begin_write()?;
        let stats = tx.stats()?;
        tx.abort()?;
        Ok(stats.allocated_pages().saturating_mul(stats.page_size() as u64))
    })();
    let Ok(used) = used else { return };
    let free = len.saturating_sub(used);
    if free < COMPACT_FREE_BYTES || free < len / 2 {
        return;
    }
    let started = std::time::Instant::now();
    match db.compact() {
        Ok(_) => {
            let after = std::fs::metadata(path).map_or(0, |m| m.len());
            tracing::info!(
                before_bytes = len,
                after_bytes = after,
                seconds = started.elapsed().as_secs_f64(),
                "compacted the state file (most of it was free)"
            );
        }
        Err(e) => tracing::warn!(error = %e, "compacting the state file failed; it is used as it is"),
    }
}

pub(crate) type TimedTable = TableDefinition<'static, (i64, u64), &'static [u8]>;

impl Store {
    /// The newest `limit` records of a time-keyed table, newest first;
    /// records that do not parse (written by another version) are skipped.
    pub(crate) fn newest<T: serde::de::DeserializeOwned>(
        &self,
        table: TimedTable,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev().take(limit) {
            let (_, v) = row?;
            if let Ok(r) = serde_json::from_slice(v.value()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Delete the records of a time-keyed table older than `before_ms`;
    /// returns how many.
    pub(crate) fn prune_older(&self, table: TimedTable, before_ms: i64) -> Result<u64, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let mut deleted = 0u64;
        {
            let mut t = tx.open_table(table)?;
            t.retain(|(at, _), _| {
                let keep = at >= before_ms;
                deleted += u64::from(!keep);
                keep
            })?;
        }
        tx.commit()?;
        Ok(deleted)
    }
}

// ---- end of silences and the API audit log ----------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_recorded_with_its_counts_and_forgotten_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.delivery("fh", "req-1").unwrap(), None);
            store.commit_delivery(&[], &[], &RejectDeltas::new(), Some(("fh", "req-1", 1_000))).unwrap();
            store.commit_delivery(&[], &[], &RejectDeltas::new(), Some(("fh", "req-2", 5_000))).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.delivery("fh", "req-1").unwrap(), Some(1_000));
        assert_eq!(store.delivery("other", "req-1").unwrap(), None);
        assert_eq!(store.prune_deliveries(2_000).unwrap(), 1);
        assert_eq!(store.delivery("fh", "req-1").unwrap(), None);
        assert_eq!(store.delivery("fh", "req-2").unwrap(), Some(5_000));
    }

    #[test]
    fn state_changes_are_read_by_service_and_range_and_pruned_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let row = |svc: &str, at: i64, subject: &str| {
            (svc.to_string(), at, subject.to_string(), format!("{svc}/{at}/{subject}").into_bytes())
        };
        let text = |rows: Vec<Vec<u8>>| rows.into_iter().map(|b| String::from_utf8(b).unwrap()).collect::<Vec<_>>();
        {
            let store = Store::open(&path).unwrap();
            store
                .put_state_changes(
                    &[row("shop", 100, "freeze"), row("shop", 100, "outage"), row("shop", 200, "freeze")],
                    0,
                    10,
                )
                .unwrap();
            store.put_state_changes(&[row("search", 150, "outage")], 0, 10).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            text(store.state_changes(&["shop".into()], 100, 150).unwrap()),
            ["shop/100/freeze", "shop/100/outage"]
        );
        assert_eq!(
            text(store.state_changes(&["shop".into(), "search".into()], 0, 1_000).unwrap()),
            ["shop/100/freeze", "shop/100/outage", "shop/200/freeze", "search/150/outage"]
        );
        assert_eq!(
            text(store.latest_state_changes().unwrap()),
            ["search/150/outage", "shop/200/freeze", "shop/100/outage"]
        );
        // Older than the cut: gone; beyond the count of a service: its oldest gone.
        store.put_state_changes(&[row("shop", 300, "outage")], 150, 10).unwrap();
        assert_eq!(
            text(store.state_changes(&["shop".into()], 0, 1_000).unwrap()),
            ["shop/200/freeze", "shop/300/outage"]
        );
        store.put_state_changes(&[row("shop", 400, "freeze")], 0, 2).unwrap();
        assert_eq!(
            text(store.state_changes(&["shop".into()], 0, 1_000).unwrap()),
            ["shop/300/outage", "shop/400/freeze"]
        );
        // Another service's rows are pruned only when it gets one.
        assert_eq!(text(store.state_changes(&["search".into()], 0, 1_000).unwrap()), ["search/150/outage"]);
    }

    /// A state file is made whole under a temporary name and then renamed:
    /// what a start killed while creating it leaves behind (the temporary
    /// file, half written) is replaced at the next start, and a file at the
    /// state path is never one without redb's header.
    #[test]
    fn a_new_state_file_appears_whole_and_a_killed_creation_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        // What a killed creation leaves: a header-less file under the temporary name.
        std::fs::write(dir.path().join("state.redb.creating"), vec![0u8; 1 << 20]).unwrap();
        {
            let store = Store::open(&path).unwrap();
            store.commit_delivery(&[], &[], &RejectDeltas::new(), Some(("fh", "req-1", 1_000))).unwrap();
        }
        assert!(!dir.path().join("state.redb.creating").exists());
        let store = Store::open(&path).unwrap();
        assert_eq!(store.delivery("fh", "req-1").unwrap(), Some(1_000));
        // A file at the state path that is not ours is still refused, never replaced.
        let other = dir.path().join("other.redb");
        std::fs::write(&other, vec![0u8; 4096]).unwrap();
        assert!(Store::open(&other).is_err());
        assert_eq!(std::fs::read(&other).unwrap(), vec![0u8; 4096]);
    }

    use crate::event::{Origin, RequestEvent};
    use crate::spec::load_str;

    const SPEC: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n  objective: 99\n  window: 28d\n  indicator:\n    source: ndjson\n    filter: {path: \"/api/*\"}\n    good: {status: \"< 500\"}\n";

    fn events(engine: &mut Engine, n: i64) {
        for i in 0..n {
            let ev = RequestEvent {
                ts_ms: 1_795_000_000_000 + i * 7_000,
                origin: Some(Origin::Ndjson),
                path: "/api/x",
                status: if i % 10 == 0 { 503 } else { 200 },
                latency_ms: Some(10.0 + i as f64),
                ..Default::default()
            };
            engine.observe(&ev);
        }
    }

    #[test]
    fn committed_state_comes_back_and_a_changed_definition_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let set = load_str("a.yaml", SPEC).unwrap();
        let at = 1_795_000_000_000 + 1000 * 7_000;
        let want = {
            let store = Store::open(&path).unwrap();
            let mut engine = Engine::new(&set, true);
            store.load_into(&mut engine, NOW).unwrap();
            events(&mut engine, 1000);
            let changes = engine.drain_changes();
            store.commit(&changes, &[("src".into(), b"cp-1".to_vec())], &RejectDeltas::new()).unwrap();
            engine.evaluate(at)
        };
        let store = Store::open(&path).unwrap();
        assert_eq!(store.checkpoint("src").unwrap().as_deref(), Some(&b"cp-1"[..]));
        let mut engine = Engine::new(&set, true);
        let loaded = store.load_into(&mut engine, NOW).unwrap();
        assert!(loaded.buckets > 0 && loaded.latency_days == 1 && loaded.reset.is_empty(), "{loaded:?}");
        let got = engine.evaluate(at);
        assert_eq!(got[0].window, want[0].window);
        assert_eq!(got[0].latency, want[0].latency);
        assert_eq!(got[0].window.events.total, 1000);

        // Same name, different filter: the old counts are discarded.
        let changed = load_str("a.yaml", &SPEC.replace("/api/*", "/other/*")).unwrap();
        let mut engine = Engine::new(&changed, true);
        let loaded = store.load_into(&mut engine, NOW).unwrap();
        assert_eq!(loaded.reset, vec!["a".to_string()]);
        assert_eq!(engine.evaluate(at)[0].window.events.total, 0);
    }

    const NOW: i64 = 1_795_100_000_000;

    /// An SLO removed from the specs keeps its rows for the grace period, and
    /// gets them back when it returns (with the same definition).
    #[test]
    fn a_vanished_slo_keeps_its_rows_for_a_while_and_gets_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let set = load_str("a.yaml", SPEC).unwrap();
        let mut engine = Engine::new(&set, true);
        store.load_into(&mut engine, NOW).unwrap();
        events(&mut engine, 100);
        store.commit(&engine.drain_changes(), &[], &RejectDeltas::new()).unwrap();
        assert_eq!(store.prune(&engine.retention(), NOW).unwrap(), 0);

        // The spec file goes away for a moment: a reload without the SLO.
        let previous: Vec<String> = engine.slos().map(|s| s.slo.name.clone()).collect();
        let mut engine = Engine::new(&SloSet::default(), true);
        store.sync_after_reload(&mut engine, &previous, &[], NOW).unwrap();
        assert_eq!(store.prune(&engine.retention(), NOW + 3_600_000).unwrap(), 0, "kept during the grace period");

        // It comes back: its 100 events are there, and later counts add to them.
        let mut back = Engine::new(&SloSet::default(), true);
        back.reload(&set);
        let loaded = store.sync_after_reload(&mut back, &[], &[], NOW + 7_200_000).unwrap();
        assert!(loaded.buckets > 0, "{loaded:?}");
        let at = 1_795_000_000_000 + 100 * 7_000;
        assert_eq!(back.evaluate(at)[0].window.events.total, 100);

        // Gone for longer than the grace period: the rows go.
        let mut engine = Engine::new(&SloSet::default(), true);
        store.sync_after_reload(&mut engine, &["a".to_string()], &[], NOW).unwrap();
        assert_eq!(store.prune(&engine.retention(), NOW + VANISHED_SLO_GRACE_MS - 1).unwrap(), 0);
        assert!(store.prune(&engine.retention(), NOW + VANISHED_SLO_GRACE_MS).unwrap() > 0);
        let mut again = Engine::new(&set, true);
        assert_eq!(store.load_into(&mut again, NOW).unwrap().buckets, 0);
    }

    /// A state file mostly free (a catch-up's minute buckets pruned) is
    /// compacted when opened; what it holds stays.
    #[test]
    fn a_state_file_mostly_free_is_compacted_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let write = |store: &Store, keep: bool| {
            let db = store.db_for_write().unwrap();
            let tx = begin_write(&db).unwrap();
            {
                let mut buckets = tx.open_table(BUCKETS).unwrap();
                if keep {
                    for i in 0..100_000i64 {
                        buckets.insert(("checkout", 0u8, i), (i as u64, i as u64 + 1)).unwrap();
                    }
                } else {
                    buckets.retain(|(_, _, i), _| i % 1000 == 0).unwrap();
                }
            }
            tx.commit().unwrap();
        };
        {
            let store = Store::open(&path).unwrap();
            write(&store, true);
        }
        let full = std::fs::metadata(&path).unwrap().len();
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), full, "nothing free: left as it is");
            write(&store, false);
        }
        let sparse = std::fs::metadata(&path).unwrap().len();
        assert!(sparse * 10 > full * 9, "redb gives little back by itself: {sparse} of {full}");
        let store = Store::open(&path).unwrap();
        let small = std::fs::metadata(&path).unwrap().len();
        assert!(small * 2 < sparse, "{small} of {sparse}");
        let db = store.db().unwrap();
        let tx = db.begin_read().unwrap();
        let buckets = tx.open_table(BUCKETS).unwrap();
        assert_eq!(redb::ReadableTableMetadata::len(&buckets).unwrap(), 100);
        assert_eq!(buckets.get(("checkout", 0u8, 5_000)).unwrap().unwrap().value(), (5_000, 5_001));
    }

    /// An existing state file that is empty, or a redb file of another
    /// program, is refused: starting afresh over it would count every log again.
    #[test]
    fn empty_and_foreign_state_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.redb");
        std::fs::write(&empty, b"").unwrap();
        let e = Store::open(&empty).err().expect("refused").to_string();
        assert!(e.contains("is empty (0 bytes)") && e.contains("not a slo-agent state file"), "{e}");
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "left as it was");

        let foreign = dir.path().join("foreign.redb");
        {
            let db = Database::create(&foreign).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(TableDefinition::<&str, &str>::new("theirs")).unwrap().insert("k", "v").unwrap();
            tx.commit().unwrap();
        }
        let e = Store::open(&foreign).err().expect("refused").to_string();
        assert!(e.contains("slo-agent did not write"), "{e}");

        let garbage = dir.path().join("garbage.redb");
        std::fs::write(&garbage, b"not a database at all, just some bytes").unwrap();
        assert!(Store::open(&garbage).is_err());

        // A missing file is a first start: created.
        let fresh = dir.path().join("sub/dir/state.redb");
        Store::open(&fresh).unwrap();
        Store::open(&fresh).unwrap();
    }

    #[test]
    fn a_reopened_store_holds_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store.commit(&[], &[("src".into(), b"cp-1".to_vec())], &RejectDeltas::new()).unwrap();
        store.reopen().unwrap();
        assert_eq!(store.checkpoint("src").unwrap().as_deref(), Some(&b"cp-1"[..]));
        store.commit(&[], &[("src".into(), b"cp-2".to_vec())], &RejectDeltas::new()).unwrap();
        assert_eq!(store.checkpoint("src").unwrap().as_deref(), Some(&b"cp-2"[..]));
    }
}
