use super::*;
use crate::auth::{AuditEntry, Role};

const NOW: i64 = 1_800_000_000_000;

fn entry(at_ms: i64, outcome: &str) -> AuditEntry {
    AuditEntry::new(at_ms, "oncall-bot", Some(Role::Silence), "silence.create", None, outcome, None)
}

fn anonymous(at_ms: i64) -> AuditEntry {
    AuditEntry::new(at_ms, crate::auth::ANONYMOUS, None, "silence.create", None, "unauthorized", None)
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("state.redb")).unwrap()
}

/// Overwrite the stored bytes of the `index`-th chained entry.
fn rewrite(store: &Store, index: usize, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let db = store.db_for_write().unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(AUDIT_LOG).unwrap();
        let (key, value) = {
            let row = t.iter().unwrap().nth(index).unwrap().unwrap();
            (row.0.value(), row.1.value().to_vec())
        };
        t.insert(key, f(value).as_slice()).unwrap();
    }
    tx.commit().unwrap();
}

fn remove(store: &Store, index: usize) {
    let db = store.db_for_write().unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(AUDIT_LOG).unwrap();
        let key = t.iter().unwrap().nth(index).unwrap().unwrap().0.value();
        t.remove(key).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn silences_and_audit_entries_survive_a_reopen_and_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let silence = format!("{{\"id\":\"s-1\",\"ends_at_ms\":{}}}", NOW + 3_600_000).into_bytes();
    {
        let store = open(&dir);
        store.put_silence("s-1", &silence, &entry(NOW, "ok")).unwrap();
        store.append_audit(&entry(NOW + 1, "unauthorized")).unwrap();
        store.append_audit(&entry(NOW + 1, "forbidden")).unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.silences().unwrap(), vec![("s-1".to_string(), silence.clone())]);
    let outcomes: Vec<String> = store.audit(10).unwrap().into_iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, ["forbidden", "unauthorized", "ok"]);
    assert_eq!(store.audit(1).unwrap().len(), 1);

    assert_eq!(store.prune_silences(NOW + 3_600_000).unwrap(), 0);
    assert_eq!(store.prune_silences(NOW + 3_600_001).unwrap(), 1);
    assert!(store.silences().unwrap().is_empty());
    assert_eq!(store.prune_audit(NOW + 1).unwrap(), 1);
    assert_eq!(store.audit(10).unwrap().len(), 2);
    // The kept entries still verify against the anchor the prune left.
    let v = store.verify_audit().unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!((v.entries, v.pruned), (2, 1));
    // And new entries go on linking.
    store.append_audit(&entry(NOW + 2, "ok")).unwrap();
    assert!(store.verify_audit().unwrap().intact);
}

/// Refused calls without a valid token are kept only up to a bound, apart
/// from the chain; the entries of known callers are all kept.
#[test]
fn refused_anonymous_calls_are_bounded_and_outside_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..25 {
        store.append_audit(&anonymous(i)).unwrap();
    }
    for i in 0..5 {
        let e = AuditEntry::new(100 + i, "ops", Some(Role::Admin), "silence.create", None, "ok", None);
        store.append_audit(&e).unwrap();
    }
    assert_eq!(store.prune_anonymous_audit(10).unwrap(), 15);
    let left = store.audit(100).unwrap();
    assert_eq!(left.iter().filter(|e| e.role.is_none()).count(), 10);
    assert_eq!(left.iter().filter(|e| e.role.is_some()).count(), 5);
    // The newest anonymous entries are the ones kept.
    assert!(left.iter().filter(|e| e.role.is_none()).all(|e| e.at_ms >= 15));
    assert_eq!(store.prune_anonymous_audit(10).unwrap(), 0);
    let v = store.verify_audit().unwrap();
    assert!(v.intact);
    assert_eq!(v.entries, 5);
}

#[test]
fn an_intact_chain_verifies_and_names_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict { intact: true, entries: 0, unchained: 0, pruned: 0, first_broken: None, head: None }
    );
    for i in 0..4 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    let v = store.verify_audit().unwrap();
    assert!(v.intact && v.first_broken.is_none());
    assert_eq!(v.entries, 4);
    let head = v.head.unwrap();
    assert_eq!(head.seq, 3);
    assert_eq!(head.hash.len(), 64);
}

#[test]
fn an_entry_written_with_an_earlier_clock_still_extends_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_audit(&entry(NOW + 10, "first")).unwrap();
    store.append_audit(&entry(NOW, "second, clock behind")).unwrap();
    assert!(store.verify_audit().unwrap().intact);
    let listed: Vec<i64> = store.audit(10).unwrap().iter().map(|e| e.at_ms).collect();
    assert_eq!(listed, [NOW + 10, NOW], "entries keep their own times");
}

#[test]
fn a_changed_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..5 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    rewrite(&store, 2, |bytes| String::from_utf8(bytes).unwrap().replace("\"ok\"", "\"forbidden\"").into_bytes());
    let v = store.verify_audit().unwrap();
    assert!(!v.intact);
    let b = v.first_broken.unwrap();
    assert_eq!((b.index, b.seq), (2, Some(2)));
    assert_eq!(b.action.as_deref(), Some("silence.create"));
    assert!(b.reason.contains("hash does not match"), "{}", b.reason);
}

#[test]
fn a_rehashed_entry_breaks_the_link_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..3 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    // Rewrite entry 1 with a valid hash of its new content: entry 2 no longer links to it.
    rewrite(&store, 1, |bytes| {
        let text = String::from_utf8(bytes).unwrap();
        let body = &text[..text.len() - HASH_SUFFIX_LEN];
        let forged: serde_json::Value = serde_json::from_str(&format!("{body}}}")).unwrap();
        let mut e: AuditEntry = serde_json::from_value(forged.clone()).unwrap();
        e.outcome = "forged".into();
        seal(&e, forged["seq"].as_u64().unwrap(), forged["prev"].as_str().unwrap()).0
    });
    let b = store.verify_audit().unwrap().first_broken.unwrap();
    assert_eq!(b.index, 2);
    assert!(b.reason.contains("does not link"), "{}", b.reason);
}

#[test]
fn a_removed_entry_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..4 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    remove(&store, 1);
    let v = store.verify_audit().unwrap();
    assert!(!v.intact);
    assert_eq!(v.first_broken.unwrap().seq, Some(2));
    // Removing the oldest entry is caught too: it is not a prune (no anchor).
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..3 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    remove(&store, 0);
    assert_eq!(store.verify_audit().unwrap().first_broken.unwrap().index, 0);
}

#[test]
fn garbage_and_stripped_hashes_are_broken_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..3 {
        store.append_audit(&entry(NOW + i, "ok")).unwrap();
    }
    rewrite(&store, 1, |b| b[..b.len() - HASH_SUFFIX_LEN].to_vec());
    let b = store.verify_audit().unwrap().first_broken.unwrap();
    assert_eq!(b.index, 1);
    rewrite(&store, 1, |_| b"\xff\x00 not json".to_vec());
    let b = store.verify_audit().unwrap().first_broken.unwrap();
    assert_eq!((b.index, b.action), (1, None));
    assert!(b.reason.contains("not readable"));
}

#[test]
fn entries_from_before_the_chain_are_counted_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    {
        // As an older version wrote them: plain JSON, no hash.
        let db = store.db_for_write().unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(AUDIT_LOG).unwrap();
            for i in 0..2u64 {
                let json = serde_json::to_vec(&entry(NOW + i as i64, "ok")).unwrap();
                t.insert((NOW + i as i64, i), json.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    store.append_audit(&entry(NOW + 5, "chained")).unwrap();
    let v = store.verify_audit().unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!((v.entries, v.unchained), (3, 2));
    assert_eq!(v.head.unwrap().seq, 2);
    // Pruning the old ones leaves the chain starting at genesis.
    assert_eq!(store.prune_audit(NOW + 5).unwrap(), 2);
    let v = store.verify_audit().unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!((v.entries, v.unchained), (1, 0));
}

#[test]
fn a_copy_of_a_stopped_state_file_verifies_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = Store::open(&path).unwrap();
        for i in 0..3 {
            store.append_audit(&entry(NOW + i, "ok")).unwrap();
        }
    }
    let v = verify_file(&path).unwrap();
    assert!(v.intact);
    assert_eq!(v.entries, 3);
    // While an agent holds it, the file cannot be read: a clear error, not a wrong answer.
    let _held = Store::open(&path).unwrap();
    assert!(verify_file(&path).is_err());
}
