//! Backups of the state file, and restoring one.
//!
//! A backup is a consistent snapshot: every table of the state file as one
//! read transaction saw it (redb's MVCC: the ingest thread keeps writing
//! meanwhile, and none of its commits is half in the copy). The rows are
//! copied into a new redb file — a raw copy of a file under writes could
//! mix two commits — which then travels inside a checked envelope:
//!
//! ```text
//! slo-agent-backup 1\n
//! {"format":1,"schema_version":"1","payload_bytes":N,"payload_sha256":"…",…}\n
//! <N bytes: the redb file>
//! ```
//!
//! The header names the state it was taken of (`state_id`), how new it was
//! (`write_seq`, `last_write_ms`: [`super::begin_write`] counts every write
//! transaction), and the rows per table. A restore checks the length and the
//! SHA-256 of the payload before anything is replaced, so a truncated or
//! corrupted backup is refused with a message that says which; it refuses to
//! replace state newer than the backup unless forced, and keeps what it
//! replaced beside the state file (`<state>.pre-restore`).
//!
//! Source checkpoints travel with the counts (they were committed together),
//! so a restored agent goes on reading its logs where the snapshot's counts
//! end: nothing is counted twice or lost between snapshot and checkpoint.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    ALERT_HISTORY, ALERTS, BUCKETS, CHECKPOINTS, DEFINITIONS, DELIVERIES, DEPLOYS, FREEZE_BYPASSES, FREEZE_OVERRIDES,
    INCIDENTS, LAST_WRITE_MS, LATENCY, META, REJECTS, SCHEMA_VERSION, SILENCES, STATE_ID, Store, StoreError, VANISHED,
    WRITE_SEQ, audit, outbox,
};

/// The first line of every backup file.
pub const MAGIC: &str = "slo-agent-backup";
/// The envelope's version (the second word of the first line).
pub const FORMAT: u32 = 1;
/// Longest header line read: a header is a few hundred bytes; anything
/// longer is not a backup.
const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// File name suffix of backups the CLI names itself.
pub const EXTENSION: &str = "backup";

/// What a backup says about itself (its second line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The state file's schema version.
    pub schema_version: String,
    /// The version of the agent that took it.
    pub agent_version: String,
    /// When it was taken (wall clock, ms since the epoch).
    pub created_ms: i64,
    /// The same, RFC 3339.
    pub created: String,
    /// The state it is a snapshot of (made with the state file).
    pub state_id: String,
    /// Write transactions the state had committed when it was taken.
    pub write_seq: u64,
    /// When the newest of them began (ms since the epoch; 0 if unknown).
    pub last_write_ms: i64,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    pub payload_bytes: u64,
    pub payload_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + use<> {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

/// Copy one table's rows; a table the source does not have is empty.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
    counts: &mut BTreeMap<String, u64>,
) -> Result<(), StoreError> {
    let mut dst = to.open_table(def)?;
    let mut n = 0u64;
    match from.open_table(def) {
        Ok(src) => {
            for row in src.iter()? {
                let (k, v) = row?;
                dst.insert(k.value(), v.value())?;
                n += 1;
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    counts.insert(def.name().to_string(), n);
    Ok(())
}

/// Every table of the state file, copied. [`copy_all`] refuses a source
/// holding a table not named here, and a test checks that a new store's
/// tables are all named, so a table added later cannot be left out of
/// backups silently.
fn copy_all(from: &ReadTransaction, to: &WriteTransaction) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    let c = &mut counts;
    copy(from, to, META, c)?;
    copy(from, to, DEFINITIONS, c)?;
    copy(from, to, BUCKETS, c)?;
    copy(from, to, LATENCY, c)?;
    copy(from, to, CHECKPOINTS, c)?;
    copy(from, to, REJECTS, c)?;
    copy(from, to, DELIVERIES, c)?;
    copy(from, to, VANISHED, c)?;
    copy(from, to, ALERTS, c)?;
    copy(from, to, ALERT_HISTORY, c)?;
    copy(from, to, SILENCES, c)?;
    copy(from, to, FREEZE_OVERRIDES, c)?;
    copy(from, to, FREEZE_BYPASSES, c)?;
    copy(from, to, DEPLOYS, c)?;
    copy(from, to, INCIDENTS, c)?;
    copy(from, to, super::STATUS_DAYS, c)?;
    copy(from, to, super::STATE_CHANGES, c)?;
    copy(from, to, super::SIGNAL_HISTORY, c)?;
    copy(from, to, audit::AUDIT_LOG, c)?;
    copy(from, to, audit::AUDIT_REFUSED, c)?;
    copy(from, to, audit::AUDIT_CHAIN, c)?;
    copy(from, to, outbox::OUTBOX, c)?;
    copy(from, to, outbox::GROUPS, c)?;
    copy(from, to, outbox::FAILED, c)?;
    copy(from, to, super::status_push::PUSH_OUTBOX, c)?;
    copy(from, to, super::status_push::PUSH_VALUES, c)?;
    for t in from.list_tables()? {
        if !counts.contains_key(t.name()) {
            return Err(StoreError::Foreign(format!(
                "the state file holds a table this version cannot back up ({:?}); use the agent version that wrote it",
                t.name()
            )));
        }
    }
    if from.list_multimap_tables()?.next().is_some() {
        return Err(StoreError::Foreign("the state file holds a multimap table this version cannot back up".into()));
    }
    Ok(counts)
}

/// Identity and newness of a state, from its [`META`] table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateMark {
    pub schema_version: Option<String>,
    pub state_id: String,
    pub write_seq: u64,
    pub last_write_ms: i64,
}

fn mark(tx: &ReadTransaction) -> Result<StateMark, StoreError> {
    let meta = match tx.open_table(META) {
        Ok(m) => m,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(StateMark::default()),
        Err(e) => return Err(e.into()),
    };
    let get = |k: &str| -> Result<Option<String>, StoreError> { Ok(meta.get(k)?.map(|v| v.value().to_string())) };
    Ok(StateMark {
        schema_version: get("schema_version")?,
        state_id: get(STATE_ID)?.unwrap_or_default(),
        write_seq: get(WRITE_SEQ)?.and_then(|v| v.parse().ok()).unwrap_or(0),
        last_write_ms: get(LAST_WRITE_MS)?.and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

/// A snapshot written to a redb file, before it is wrapped.
struct Snapshot {
    mark: StateMark,
    tables: BTreeMap<String, u64>,
}

/// Copy what `from` sees into a new redb file at `to` (replaced if there).
fn snapshot(from: &ReadTransaction, to: &Path) -> Result<Snapshot, BackupError> {
    match std::fs::remove_file(to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot replace the temporary file", to)(e)),
    }
    let mark = mark(from)?;
    let out = Database::create(to).map_err(|source| StoreError::Open { path: to.to_path_buf(), source })?;
    let tx = out.begin_write().map_err(StoreError::from)?;
    let tables = copy_all(from, &tx)?;
    tx.commit().map_err(StoreError::from)?;
    drop(out);
    Ok(Snapshot { mark, tables })
}

/// A snapshot ready to send or write: its header line(s) and the redb file
/// holding the payload. The payload file is deleted when this is dropped.
pub struct Taken {
    pub header: Header,
    /// The two header lines, as written before the payload.
    pub envelope: Vec<u8>,
    payload: PathBuf,
}

impl Taken {
    /// The payload file, opened for reading.
    pub fn open_payload(&self) -> Result<std::fs::File, BackupError> {
        std::fs::File::open(&self.payload).map_err(io("cannot read the snapshot", &self.payload))
    }

    /// The whole backup's size in bytes.
    pub fn bytes(&self) -> u64 {
        self.envelope.len() as u64 + self.header.payload_bytes
    }

    /// Write the whole backup to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), std::io::Error> {
        out.write_all(&self.envelope)?;
        let mut f = std::fs::File::open(&self.payload)?;
        std::io::copy(&mut f, out)?;
        Ok(())
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.payload);
    }
}

fn wrap(snap: Snapshot, payload: PathBuf) -> Result<Taken, BackupError> {
    use crate::clock::Clock as _;
    let mut f = std::fs::File::open(&payload).map_err(io("cannot read the snapshot", &payload))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io("cannot read the snapshot", &payload))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let created_ms = crate::clock::SystemClock.now_ms();
    let header = Header {
        format: FORMAT,
        schema_version: snap.mark.schema_version.unwrap_or_else(|| SCHEMA_VERSION.to_string()),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        created_ms,
        created: crate::timefmt::rfc3339(created_ms),
        state_id: snap.mark.state_id,
        write_seq: snap.mark.write_seq,
        last_write_ms: snap.mark.last_write_ms,
        tables: snap.tables,
        payload_bytes: bytes,
        payload_sha256: crate::secret::hex(&hasher.finalize()),
    };
    let mut envelope = format!("{MAGIC} {FORMAT}\n").into_bytes();
    serde_json::to_writer(&mut envelope, &header).expect("headers serialize");
    envelope.push(b'\n');
    Ok(Taken { header, envelope, payload })
}

/// A temporary file beside `path` (same directory, so the same volume: a
/// read-only root file system leaves only the state volume writable).
fn beside(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    path.with_file_name(format!("{name}.{what}-{}", &crate::secret::random_id()[..12]))
}

impl Store {
    /// Take a consistent snapshot of the live state (one read transaction),
    /// staged in a temporary file beside the state file.
    pub fn backup(&self) -> Result<Taken, BackupError> {
        let tmp = beside(&self.path, "backup");
        let snap = {
            let db = self.db()?;
            let tx = db.begin_read().map_err(StoreError::from)?;
            snapshot(&tx, &tmp)
        };
        match snap {
            Ok(s) => wrap(s, tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// A stopped agent's state file, open for reading.
enum Stopped {
    Clean(redb::ReadOnlyDatabase),
    /// The file was not closed cleanly (the agent was killed): redb must
    /// repair it before reading, and repairing writes. The repair runs on a
    /// copy (deleted when this is dropped); the file itself is not changed.
    Repaired(Database, PathBuf),
}

impl Stopped {
    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match self {
            Stopped::Clean(db) => db.begin_read()?,
            Stopped::Repaired(db, _) => db.begin_read()?,
        })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Stopped::Repaired(_, copy) = self {
            let _ = std::fs::remove_file(copy);
        }
    }
}

/// Open a state file no agent has open, read-only; one an agent holds is
/// refused with a message that says so. `scratch` is where a copy is
/// repaired when the file needs it.
fn open_stopped(path: &Path, scratch: &Path) -> Result<Stopped, BackupError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(BackupError::Invalid(format!("{} is not a file", path.display()))),
        Err(e) => return Err(io("cannot read the state file", path)(e)),
    }
    let running = || {
        BackupError::Refused(format!(
            "the state file {} is open in a running agent: back it up through the agent's API (`slo-agent backup \
             --url …` with an admin token), or stop the agent first",
            path.display()
        ))
    };
    match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => Ok(Stopped::Clean(db)),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(running()),
        Err(redb::DatabaseError::RepairAborted) => {
            let copy = beside(&scratch.join("state"), "repairing");
            // A copy: repairing writes, and the file itself stays as it is.
            std::fs::copy(path, &copy).map_err(io("cannot copy the state file to repair it", path))?;
            match Database::create(&copy) {
                Ok(db) => Ok(Stopped::Repaired(db, copy)),
                Err(source) => {
                    let _ = std::fs::remove_file(&copy);
                    Err(BackupError::Store(StoreError::Open { path: path.to_path_buf(), source }))
                }
            }
        }
        Err(source) => Err(BackupError::Store(StoreError::Open { path: path.to_path_buf(), source })),
    }
}

/// Snapshot a stopped agent's state file (it is not changed).
pub fn backup_file(state: &Path, staging_dir: &Path) -> Result<Taken, BackupError> {
    let db = open_stopped(state, staging_dir)?;
    let tx = db.begin_read()?;
    let m = mark(&tx)?;
    if m.schema_version.is_none() {
        return Err(BackupError::Invalid(format!(
            "{} is not a slo-agent state file (no schema version)",
            state.display()
        )));
    }
    let tmp = beside(&staging_dir.join("state"), "backup");
    match snapshot(&tx, &tmp) {
        Ok(s) => wrap(s, tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Read and check a backup's first two lines.
pub fn read_header(r: &mut dyn BufRead, name: &str) -> Result<Header, BackupError> {
    let line = |r: &mut dyn BufRead, what: &str| -> Result<String, BackupError> {
        let mut buf = Vec::new();
        r.take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| BackupError::Invalid(format!("{name}: cannot read its {what}: {e}")))?;
        if buf.last() != Some(&b'\n') {
            return Err(BackupError::Invalid(if buf.len() as u64 >= MAX_HEADER_BYTES {
                format!("{name} is not a slo-agent backup (its {what} is too long)")
            } else {
                format!("{name} is truncated: it ends inside its {what}")
            }));
        }
        buf.pop();
        String::from_utf8(buf).map_err(|_| BackupError::Invalid(format!("{name} is not a slo-agent backup")))
    };
    let first = line(r, "first line")?;
    let Some(version) = first.strip_prefix(MAGIC).and_then(|v| v.strip_prefix(' ')) else {
        return Err(BackupError::Invalid(format!(
            "{name} is not a slo-agent backup (it does not begin with {MAGIC:?})"
        )));
    };
    if version != FORMAT.to_string() {
        return Err(BackupError::Invalid(format!(
            "{name} is a backup in format {version:?}; this version reads format {FORMAT} (use a newer slo-agent)"
        )));
    }
    let second = line(r, "header")?;
    let header: Header = serde_json::from_str(&second)
        .map_err(|e| BackupError::Invalid(format!("{name}: its header is damaged ({e})")))?;
    if header.format != FORMAT {
        return Err(BackupError::Invalid(format!("{name}: its header says format {}, not {FORMAT}", header.format)));
    }
    Ok(header)
}

/// Copy a backup's payload from `r` to `out`, checking its length and
/// checksum; `out` holds exactly the payload when this returns `Ok`.
fn unwrap_payload(r: &mut dyn Read, header: &Header, name: &str, out: &mut dyn Write) -> Result<(), BackupError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = header.payload_bytes;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = r.read(&mut buf[..want]).map_err(|e| BackupError::Invalid(format!("{name}: cannot read it: {e}")))?;
        if n == 0 {
            return Err(BackupError::Invalid(format!(
                "{name} is truncated: its header promises {} bytes of state, the file holds {}",
                header.payload_bytes,
                header.payload_bytes - left
            )));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| BackupError::Invalid(format!("writing the restored state: {e}")))?;
        left -= n as u64;
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| BackupError::Invalid(format!("{name}: cannot read it: {e}")))? != 0 {
        return Err(BackupError::Invalid(format!(
            "{name} is damaged: it holds more than the {} bytes of state its header promises",
            header.payload_bytes
        )));
    }
    let sum = crate::secret::hex(&hasher.finalize());
    if sum != header.payload_sha256 {
        return Err(BackupError::Invalid(format!(
            "{name} is corrupted: its state's SHA-256 is {sum}, its header says {}",
            header.payload_sha256
        )));
    }
    Ok(())
}

/// Check a whole backup from a reader (its envelope, length and checksum)
/// without keeping it; the header when it is whole.
pub fn verify(r: &mut dyn Read, name: &str) -> Result<Header, BackupError> {
    let mut r = BufReader::new(r);
    let header = read_header(&mut r, name)?;
    unwrap_payload(&mut r, &header, name, &mut std::io::sink())?;
    Ok(header)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub header: Header,
    /// Where the state it replaced was kept, if there was one.
    pub kept: Option<PathBuf>,
    /// Entries in the restored audit log, and whether its chain is intact.
    pub audit_entries: u64,
    pub audit_intact: bool,
}

/// Restore the backup at `from` into the state file `state` (the agent
/// must be stopped). Refuses to replace a state that is newer than the
/// backup — the same state written since, or another state written after
/// the backup was taken — unless `force`.
pub fn restore(from: &Path, state: &Path, force: bool) -> Result<Restored, BackupError> {
    let name = from.display().to_string();
    let f = std::fs::File::open(from).map_err(io("cannot read the backup", from))?;
    let mut r = BufReader::new(f);
    let header = read_header(&mut r, &name)?;
    if header.schema_version != SCHEMA_VERSION {
        return Err(BackupError::Refused(format!(
            "{name} holds state of schema {}; this version reads schema {SCHEMA_VERSION}: restore it with the agent \
             version that took it ({})",
            header.schema_version, header.agent_version
        )));
    }
    if let Some(dir) = state.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io("cannot create the state directory", dir))?;
    }
    let tmp = beside(state, "restoring");
    let written = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(io("cannot write the restored state", &tmp))?;
        unwrap_payload(&mut r, &header, &name, &mut out)?;
        out.sync_all().map_err(io("cannot write the restored state", &tmp))?;
        drop(out);
        let db = redb::ReadOnlyDatabase::open(&tmp)
            .map_err(|e| BackupError::Invalid(format!("{name}: its state does not open as a state file ({e})")))?;
        let tx = db.begin_read().map_err(StoreError::from)?;
        let m = mark(&tx)?;
        if m.schema_version.as_deref() != Some(SCHEMA_VERSION) || m.state_id != header.state_id {
            return Err(BackupError::Invalid(format!("{name}: its state does not match its header")));
        }
        let verdict = audit::verify(&tx)?;
        Ok((verdict.entries, verdict.intact))
    })();
    let (audit_entries, audit_intact) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let kept = match replace_check(state, &header, force) {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = crate::fsutil::durable_rename(&tmp, state) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("cannot put the restored state in place", state)(e));
    }
    Ok(Restored { header, kept, audit_entries, audit_intact })
}

/// May `state` be replaced by the backup? Moves it aside when it may
/// (`<state>.pre-restore`, replacing an older one) and says where.
fn replace_check(state: &Path, header: &Header, force: bool) -> Result<Option<PathBuf>, BackupError> {
    match std::fs::symlink_metadata(state) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read the state file", state)(e)),
        Ok(m) if !m.is_file() => {
            return Err(BackupError::Refused(format!("{} is not a file; not replacing it", state.display())));
        }
        Ok(_) => {}
    }
    let scratch = state.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let existing = open_stopped(state, scratch).and_then(|db| {
        let tx = db.begin_read()?;
        Ok(mark(&tx)?)
    });
    match existing {
        // A running agent's state is never replaced, forced or not.
        Err(BackupError::Refused(_)) => {
            return Err(BackupError::Refused(format!(
                "the state file {} is open in a running agent: stop the agent, then restore",
                state.display()
            )));
        }
        Err(e) if !force => {
            return Err(BackupError::Refused(format!(
                "cannot tell whether {} is newer than the backup ({e}); --force replaces it (it is kept as \
                 {}.pre-restore)",
                state.display(),
                state.display()
            )));
        }
        Err(_) => {}
        Ok(m) => {
            let newer = if m.state_id == header.state_id && !m.state_id.is_empty() {
                (m.write_seq > header.write_seq).then(|| {
                    format!(
                        "{} is newer than the backup: the same state, written {} more time(s) since (last at {})",
                        state.display(),
                        m.write_seq - header.write_seq,
                        crate::timefmt::rfc3339(m.last_write_ms)
                    )
                })
            } else {
                (m.last_write_ms > header.last_write_ms).then(|| {
                    format!(
                        "{} holds another state, last written at {}, after the backup's ({})",
                        state.display(),
                        crate::timefmt::rfc3339(m.last_write_ms),
                        crate::timefmt::rfc3339(header.last_write_ms)
                    )
                })
            };
            if let Some(why) = newer
                && !force
            {
                return Err(BackupError::Refused(format!(
                    "{why}; not replacing it without --force (it would then be kept as {}.pre-restore)",
                    state.display()
                )));
            }
        }
    }
    let name = state.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let kept = state.with_file_name(format!("{name}.pre-restore"));
    crate::fsutil::durable_rename(state, &kept).map_err(io("cannot move the replaced state aside", state))?;
    Ok(Some(kept))
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
