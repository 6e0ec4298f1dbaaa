//! The audit log: a hash chain of every change made through the API (and
//! of spec reloads), and a separate, bounded table of refused calls without
//! a valid token.
//!
//! `audit_log`: (time ms, sequence) → one entry, as stored bytes
//! `{…entry…,"seq":N,"prev":"<hex>","hash":"<hex>"}` where `hash` is the
//! SHA-256 of the same bytes without the `,"hash":…` member and `prev` is the
//! `hash` of the entry before it (64 zeros for the first). Hashing the
//! stored bytes (not a re-serialisation) means any change to a stored entry
//! — a field, a space — breaks its hash; removing or reordering entries
//! breaks the `prev`/`seq` links. Keys only grow: an entry whose clock reads
//! earlier than the newest key is filed at the newest key's time (its own
//! `at_ms` is kept in the entry), so key order is the order of writing.
//!
//! Pruning (entries older than [`AUDIT_LOG_MS`]) removes a prefix of the
//! chain and writes, in the same transaction, the anchor the first kept
//! entry must link to (`audit_chain` table), so the rest still verifies.
//! Entries written before the chain existed (no `hash`) are counted as
//! `unchained` and accepted only before the first chained entry.
//!
//! What the chain proves: the log was not edited by something that did not
//! also rewrite every later entry. Someone able to rewrite the whole file can
//! rebuild the chain; [`Verdict::head`] (the newest hash) is what to record
//! elsewhere (a ticket, a backup's name) to detect that too.
//!
//! `audit_refused`: (time ms, sequence) → a refused call of a caller without
//! a valid token (JSON). Not chained: these are not changes, and a flood of
//! them is bounded to the newest [`MAX_ANONYMOUS_AUDIT_ENTRIES`].

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, TimedTable, begin_write};
use crate::auth::AuditEntry;

pub(super) const AUDIT_LOG: TimedTable = TableDefinition::new("audit_log");
pub(super) const AUDIT_REFUSED: TimedTable = TableDefinition::new("audit_refused");
/// `anchor` → JSON [`Anchor`]: where the kept chain starts after a prune.
pub(super) const AUDIT_CHAIN: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_chain");

/// How long audit entries are kept.
pub const AUDIT_LOG_MS: i64 = 365 * 24 * 3_600_000;

/// Refused calls of callers without a valid token kept at most (the newest);
/// with the per-minute limit of `auth`, this bounds what a flood of
/// anonymous calls can make the audit log hold (about 4 MB).
pub const MAX_ANONYMOUS_AUDIT_ENTRIES: usize = 10_000;

/// The `prev` of the first entry of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

#[derive(Serialize)]
struct Linked<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    seq: u64,
    prev: &'a str,
}

/// What the first kept entry links to after older ones were pruned.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Anchor {
    /// The hash of the newest pruned entry.
    prev: String,
    /// The sequence number of the first kept entry.
    seq: u64,
    /// Entries pruned so far.
    pruned: u64,
}

/// The stored bytes of an entry linked to `prev`, and its hash.
fn seal(entry: &AuditEntry, seq: u64, prev: &str) -> (Vec<u8>, String) {
    let mut bytes = serde_json::to_vec(&Linked { entry, seq, prev }).expect("audit entries serialize");
    let hash = crate::secret::hex(&Sha256::digest(&bytes));
    bytes.pop(); // the closing brace
    bytes.extend_from_slice(b",\"hash\":\"");
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(b"\"}");
    (bytes, hash)
}

/// Append an entry: a refused anonymous call to its bounded table, anything
/// else to the chain.
pub(super) fn insert(tx: &redb::WriteTransaction, entry: &AuditEntry) -> Result<(), StoreError> {
    if entry.anonymous() {
        let mut t = tx.open_table(AUDIT_REFUSED)?;
        let seq = t.last()?.map(|(k, _)| k.value().1 + 1).unwrap_or(0);
        let json = serde_json::to_vec(entry).expect("audit entries serialize");
        t.insert((entry.at_ms, seq), json.as_slice())?;
        return Ok(());
    }
    let mut t = tx.open_table(AUDIT_LOG)?;
    let last = t.last()?.map(|(k, v)| (k.value(), stored_hash(v.value()).map(str::to_string)));
    let (at_key, seq, prev) = match last {
        Some(((at, seq), Some(hash))) => (entry.at_ms.max(at), seq + 1, hash),
        // The newest entry predates the chain: this one starts it.
        Some(((at, seq), None)) => (entry.at_ms.max(at), seq + 1, GENESIS.to_string()),
        None => {
            let anchor = read_anchor(&tx.open_table(AUDIT_CHAIN)?)?;
            match anchor {
                Some(a) => (entry.at_ms, a.seq, a.prev),
                None => (entry.at_ms, 0, GENESIS.to_string()),
            }
        }
    };
    let (bytes, _) = seal(entry, seq, &prev);
    t.insert((at_key, seq), bytes.as_slice())?;
    Ok(())
}

/// The `hash` member of stored entry bytes, when it has one where [`seal`]
/// puts it.
fn stored_hash(bytes: &[u8]) -> Option<&str> {
    let start = bytes.len().checked_sub(HASH_SUFFIX_LEN)?;
    let suffix = &bytes[start..];
    if !suffix.starts_with(b",\"hash\":\"") || !suffix.ends_with(b"\"}") {
        return None;
    }
    let hex = std::str::from_utf8(&suffix[9..9 + 64]).ok()?;
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hex)
}

fn read_anchor<T: ReadableTable<&'static str, &'static [u8]>>(t: &T) -> Result<Option<Anchor>, StoreError> {
    Ok(t.get("anchor")?.and_then(|v| serde_json::from_slice(v.value()).ok()))
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub intact: bool,
    /// Entries in the chain (unchained ones included).
    pub entries: u64,
    /// Entries written before the chain existed.
    pub unchained: u64,
    /// Entries pruned (older than a year) before the first kept one.
    pub pruned: u64,
    pub first_broken: Option<Broken>,
    /// The newest entry's hash: record it elsewhere to detect a rebuilt chain.
    pub head: Option<Head>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Head {
    pub seq: u64,
    pub at: String,
    pub hash: String,
}

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    /// Its position in the table (0 = the oldest kept entry).
    pub index: u64,
    /// Its sequence number, when it can be read.
    pub seq: Option<u64>,
    /// Its time as stored (RFC 3339), when it can be read.
    pub at: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub reason: String,
}

/// Check the chain in one read transaction.
pub fn verify(tx: &redb::ReadTransaction) -> Result<Verdict, StoreError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        seq: Option<u64>,
        prev: Option<String>,
        at: Option<String>,
        action: Option<String>,
        actor: Option<String>,
    }
    let anchor = match tx.open_table(AUDIT_CHAIN) {
        Ok(t) => read_anchor(&t)?,
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut verdict = Verdict {
        intact: true,
        entries: 0,
        unchained: 0,
        pruned: anchor.as_ref().map_or(0, |a| a.pruned),
        first_broken: None,
        head: None,
    };
    let t = match tx.open_table(AUDIT_LOG) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(verdict),
        Err(e) => return Err(e.into()),
    };
    // (hash, seq) the next entry must link to; None before the chain starts.
    let mut expect: Option<(String, u64)> = anchor.map(|a| (a.prev, a.seq));
    let mut chained = expect.is_some();
    for (index, row) in t.iter()?.enumerate() {
        let (key, value) = row?;
        let (key_at, key_seq) = key.value();
        let bytes = value.value();
        verdict.entries += 1;
        let parsed: Option<Stored> = serde_json::from_slice(bytes).ok();
        let broken = |reason: String| Broken {
            index: index as u64,
            seq: parsed.as_ref().and_then(|p| p.seq).or(Some(key_seq)),
            at: parsed.as_ref().and_then(|p| p.at.clone()).or_else(|| Some(crate::timefmt::rfc3339(key_at))),
            action: parsed.as_ref().and_then(|p| p.action.clone()),
            actor: parsed.as_ref().and_then(|p| p.actor.clone()),
            reason,
        };
        let problem = match (&parsed, stored_hash(bytes)) {
            (None, _) => Some("the entry is not readable JSON".to_string()),
            (Some(_), None) if chained => Some("the entry has no hash inside the chain".to_string()),
            (Some(_), None) => {
                verdict.unchained += 1;
                None
            }
            (Some(p), Some(hash)) => {
                let body_len = bytes.len() - HASH_SUFFIX_LEN;
                let mut body = bytes[..body_len].to_vec();
                body.push(b'}');
                let (want_prev, want_seq) = match &expect {
                    Some((h, s)) => (h.as_str(), Some(*s)),
                    None => (GENESIS, None),
                };
                if crate::secret::hex(&Sha256::digest(&body)) != hash {
                    Some("its hash does not match its content (the entry was changed)".to_string())
                } else if p.prev.as_deref() != Some(want_prev) {
                    Some(format!(
                        "it does not link to the entry before it (prev {}, expected {want_prev}): an entry was removed, \
                         inserted or reordered",
                        p.prev.as_deref().unwrap_or("missing")
                    ))
                } else if p.seq != Some(key_seq) || want_seq.is_some_and(|s| s != key_seq) {
                    Some(format!(
                        "its sequence number {} is not the expected {}",
                        p.seq.map_or("missing".to_string(), |s| s.to_string()),
                        want_seq.unwrap_or(key_seq)
                    ))
                } else {
                    chained = true;
                    expect = Some((hash.to_string(), key_seq + 1));
                    verdict.head =
                        Some(Head { seq: key_seq, at: p.at.clone().unwrap_or_default(), hash: hash.to_string() });
                    None
                }
            }
        };
        if let Some(reason) = problem {
            verdict.intact = false;
            verdict.first_broken = Some(broken(reason));
            return Ok(verdict);
        }
    }
    Ok(verdict)
}

/// Check the chain of a state file no agent has open (a stopped agent's, or
/// a backup copy), without changing it.
pub fn verify_file(path: &std::path::Path) -> Result<Verdict, StoreError> {
    let db =
        redb::ReadOnlyDatabase::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    let tx = db.begin_read()?;
    verify(&tx)
}

impl Store {
    /// Record one API call (refused ones too), or a spec reload.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        insert(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` audit entries (chained and refused), newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut all: Vec<AuditEntry> = self.newest(AUDIT_LOG, limit)?;
        all.extend(self.newest::<AuditEntry>(AUDIT_REFUSED, limit)?);
        all.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        all.truncate(limit);
        Ok(all)
    }

    /// Check the live chain.
    pub fn verify_audit(&self) -> Result<Verdict, StoreError> {
        let db = self.db()?;
        let tx = db.begin_read()?;
        verify(&tx)
    }

    /// Keep only the newest `keep` refused calls of callers without a valid
    /// token (and the summaries of suppressed ones). Returns how many were
    /// deleted.
    pub fn prune_anonymous_audit(&self, keep: usize) -> Result<u64, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let mut deleted = 0u64;
        {
            let mut t = tx.open_table(AUDIT_REFUSED)?;
            let excess = (t.len()? as usize).saturating_sub(keep);
            if excess > 0 {
                let mut seen = 0usize;
                t.retain(|_, _| {
                    seen += 1;
                    seen > excess
                })?;
                deleted = excess as u64;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Forget audit entries older than `before_ms` (a prefix of the chain,
    /// whose end is kept as the anchor the rest links to). Returns how many.
    pub fn prune_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        let db = self.db_for_write()?;
        let tx = begin_write(&db)?;
        let mut deleted = 0u64;
        {
            let mut t = tx.open_table(AUDIT_LOG)?;
            let mut last: Option<(u64, Option<String>)> = None;
            let mut doomed = Vec::new();
            for row in t.range(..(before_ms, 0))? {
                let (k, v) = row?;
                last = Some((k.value().1, stored_hash(v.value()).map(str::to_string)));
                doomed.push(k.value());
            }
            for k in &doomed {
                t.remove(*k)?;
            }
            deleted += doomed.len() as u64;
            if let Some((seq, hash)) = last {
                let mut chain = tx.open_table(AUDIT_CHAIN)?;
                let pruned = read_anchor(&chain)?.map_or(0, |a| a.pruned) + doomed.len() as u64;
                // Pruning only entries older than the chain leaves it starting at genesis.
                if let Some(prev) = hash {
                    let json = serde_json::to_vec(&Anchor { prev, seq: seq + 1, pruned }).expect("anchors serialize");
                    chain.insert("anchor", json.as_slice())?;
                }
            }
            let mut refused = tx.open_table(AUDIT_REFUSED)?;
            let before = refused.len()?;
            refused.retain(|(at, _), _| at >= before_ms)?;
            deleted += before - refused.len()?;
        }
        tx.commit()?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests;
