use super::*;
use crate::auth::{AuditEntry, Role};
use crate::event::{Origin, RequestEvent};
use crate::sli::Engine;
use crate::spec::load_str;
use crate::store::{Kept, RejectDeltas};

const SPEC: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n  objective: 99\n  window: 28d\n  indicator:\n    source: ndjson\n    filter: {path: \"/api/*\"}\n    good: {status: \"< 500\"}\n";
const NOW: i64 = 1_795_100_000_000;

/// A state with rows in most tables: counts and latency, a checkpoint,
/// rejects, a push delivery, a silence, a freeze override, audit entries.
fn populated(path: &Path) -> Store {
    let store = Store::open(path).unwrap();
    let set = load_str("a.yaml", SPEC).unwrap();
    let mut engine = Engine::new(&set, true);
    store.load_into(&mut engine, NOW).unwrap();
    for i in 0..500 {
        engine.observe(&RequestEvent {
            ts_ms: 1_795_000_000_000 + i * 7_000,
            origin: Some(Origin::Ndjson),
            path: "/api/x",
            status: if i % 10 == 0 { 503 } else { 200 },
            latency_ms: Some(10.0 + i as f64),
            ..Default::default()
        });
    }
    let mut rejects = RejectDeltas::new();
    rejects.insert(("src".into(), crate::decode::RejectReason::BadJson), 3);
    store
        .commit_delivery(
            &engine.drain_changes(),
            &[("src".into(), b"cp-1".to_vec())],
            &rejects,
            Some(("fh", "r1", NOW)),
        )
        .unwrap();
    let entry = |action: &str| AuditEntry::new(NOW, "ops", Some(Role::Admin), action, Some("x"), "ok", None);
    store.put_silence("sil-1", br#"{"id":"sil-1","ends_at_ms":1}"#, &entry("silence.create")).unwrap();
    store.put_kept(Kept::FreezeOverrides, "ov-1", br#"{"id":"ov-1"}"#, &entry("freeze.override.create")).unwrap();
    store.append_audit(&entry("spec.reload")).unwrap();
    store
}

/// Every row of every table, as text, table by table.
fn dump_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
    out: &mut BTreeMap<String, Vec<String>>,
) where
    for<'a> K::SelfType<'a>: std::fmt::Debug,
    for<'a> V::SelfType<'a>: std::fmt::Debug,
{
    let rows = match tx.open_table(def) {
        Ok(t) => {
            t.iter().unwrap().map(|r| r.unwrap()).map(|(k, v)| format!("{:?} => {:?}", k.value(), v.value())).collect()
        }
        Err(redb::TableError::TableDoesNotExist(_)) => Vec::new(),
        Err(e) => panic!("{e}"),
    };
    out.insert(def.name().to_string(), rows);
}

fn dump(path: &Path) -> BTreeMap<String, Vec<String>> {
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let mut out = BTreeMap::new();
    let o = &mut out;
    dump_table(&tx, META, o);
    dump_table(&tx, DEFINITIONS, o);
    dump_table(&tx, BUCKETS, o);
    dump_table(&tx, LATENCY, o);
    dump_table(&tx, CHECKPOINTS, o);
    dump_table(&tx, REJECTS, o);
    dump_table(&tx, DELIVERIES, o);
    dump_table(&tx, VANISHED, o);
    dump_table(&tx, ALERTS, o);
    dump_table(&tx, ALERT_HISTORY, o);
    dump_table(&tx, SILENCES, o);
    dump_table(&tx, FREEZE_OVERRIDES, o);
    dump_table(&tx, FREEZE_BYPASSES, o);
    dump_table(&tx, DEPLOYS, o);
    dump_table(&tx, INCIDENTS, o);
    dump_table(&tx, audit::AUDIT_LOG, o);
    dump_table(&tx, audit::AUDIT_REFUSED, o);
    dump_table(&tx, audit::AUDIT_CHAIN, o);
    dump_table(&tx, outbox::OUTBOX, o);
    dump_table(&tx, outbox::GROUPS, o);
    dump_table(&tx, outbox::FAILED, o);
    out
}

fn write_backup(taken: &Taken, path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    taken.write_to(&mut f).unwrap();
}

#[test]
fn a_backup_restores_every_row_and_names_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let store = populated(&state);
    let taken = store.backup().unwrap();
    write_backup(&taken, &dir.path().join("b.backup"));
    drop(taken);
    // The staging file is gone once the backup is written.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    drop(store);

    // Every table the store has is in the backup (and so copied by it).
    let header = verify(&mut std::fs::File::open(dir.path().join("b.backup")).unwrap(), "b").unwrap();
    let db = redb::ReadOnlyDatabase::open(&state).unwrap();
    let names: Vec<String> = db.begin_read().unwrap().list_tables().unwrap().map(|t| t.name().to_string()).collect();
    drop(db);
    for n in &names {
        assert!(header.tables.contains_key(n), "table {n} is not backed up");
    }
    assert_eq!(header.tables["silences"], 1);
    assert_eq!(header.tables["audit_log"], 3);
    assert!(header.tables["buckets"] > 0);

    let restored = dir.path().join("new/state.redb");
    let r = restore(&dir.path().join("b.backup"), &restored, false).unwrap();
    assert_eq!(r.kept, None);
    assert!(r.audit_intact);
    assert_eq!(r.audit_entries, 3);
    assert_eq!(dump(&restored), dump(&state));
    // The restored file is a state file the agent opens.
    let again = Store::open(&restored).unwrap();
    assert_eq!(again.checkpoint("src").unwrap().as_deref(), Some(&b"cp-1"[..]));
    assert!(again.verify_audit().unwrap().intact);
}

#[test]
fn truncated_corrupted_and_foreign_backups_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(&dir.path().join("state.redb"));
    let mut whole = Vec::new();
    store.backup().unwrap().write_to(&mut whole).unwrap();
    let state = dir.path().join("target.redb");
    let try_restore = |bytes: &[u8]| {
        let p = dir.path().join("x.backup");
        std::fs::write(&p, bytes).unwrap();
        let e = restore(&p, &state, true).unwrap_err().to_string();
        assert!(!state.exists(), "nothing is put in place: {e}");
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("restoring"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
        e
    };
    let e = try_restore(&whole[..whole.len() - 1000]);
    assert!(e.contains("is truncated") && e.contains("promises"), "{e}");
    let e = try_restore(&whole[..20]);
    assert!(e.contains("is truncated: it ends inside its header"), "{e}");
    let mut bad = whole.clone();
    let i = bad.len() - 5000;
    bad[i] ^= 0x40;
    let e = try_restore(&bad);
    assert!(e.contains("is corrupted") && e.contains("SHA-256"), "{e}");
    let mut longer = whole.clone();
    longer.extend_from_slice(b"junk");
    let e = try_restore(&longer);
    assert!(e.contains("more than"), "{e}");
    let e = try_restore(b"PK\x03\x04 a zip file\n");
    assert!(e.contains("is not a slo-agent backup"), "{e}");
    let e = try_restore(&[]);
    assert!(e.contains("truncated"), "{e}");
    let e = try_restore(format!("{MAGIC} 9\n{{}}\n").as_bytes());
    assert!(e.contains("format \"9\""), "{e}");
    let header_end = whole.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(1).unwrap().0;
    let mut damaged = whole.clone();
    damaged[header_end - 1] = b'!';
    let e = try_restore(&damaged);
    assert!(e.contains("header is damaged"), "{e}");
    // The whole one restores.
    let p = dir.path().join("ok.backup");
    std::fs::write(&p, &whole).unwrap();
    restore(&p, &state, false).unwrap();
}

#[test]
fn newer_state_is_not_replaced_without_force_and_a_running_agents_never() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let store = populated(&state);
    let b = dir.path().join("b.backup");
    write_backup(&store.backup().unwrap(), &b);

    // The agent is running: refused, forced or not.
    for force in [false, true] {
        let e = restore(&b, &state, force).unwrap_err().to_string();
        assert!(e.contains("open in a running agent"), "{e}");
    }
    // The same state, written since: newer.
    store.append_audit(&AuditEntry::new(NOW, "ops", None, "later", None, "ok", None)).unwrap();
    drop(store);
    let e = restore(&b, &state, false).unwrap_err().to_string();
    assert!(e.contains("is newer than the backup") && e.contains("--force"), "{e}");
    let r = restore(&b, &state, true).unwrap();
    let kept = r.kept.unwrap();
    assert!(kept.ends_with("state.redb.pre-restore"));
    assert_eq!(Store::open(&kept).unwrap().audit(10).unwrap().len(), 4, "the replaced state is kept whole");
    assert_eq!(Store::open(&state).unwrap().audit(10).unwrap().len(), 3);

    // The state as it was at the backup (unchanged since): replaced without --force.
    let fresh = dir.path().join("fresh.redb");
    restore(&b, &fresh, false).unwrap();
    let r = restore(&b, &fresh, false).unwrap();
    assert!(r.kept.is_some());

    // Another state written after the backup was taken: refused.
    let other = dir.path().join("other.redb");
    std::thread::sleep(std::time::Duration::from_millis(5));
    Store::open(&other).unwrap().append_audit(&AuditEntry::new(NOW, "x", None, "y", None, "ok", None)).unwrap();
    let e = restore(&b, &other, false).unwrap_err().to_string();
    assert!(e.contains("holds another state"), "{e}");

    // Something that is not a state file: cannot tell, so only with --force.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"not redb").unwrap();
    let e = restore(&b, &junk, false).unwrap_err().to_string();
    assert!(e.contains("cannot tell whether"), "{e}");
    restore(&b, &junk, true).unwrap();
    assert_eq!(std::fs::read(dir.path().join("junk.redb.pre-restore")).unwrap(), b"not redb");
}

#[test]
fn a_stopped_agents_state_file_is_backed_up_without_changing_it_and_a_running_ones_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let store = populated(&state);
    let e = backup_file(&state, dir.path()).err().unwrap().to_string();
    assert!(e.contains("open in a running agent") && e.contains("--url"), "{e}");
    drop(store);
    let before = std::fs::read(&state).unwrap();
    let taken = backup_file(&state, dir.path()).unwrap();
    assert_eq!(std::fs::read(&state).unwrap(), before);
    let b = dir.path().join("b.backup");
    write_backup(&taken, &b);
    let restored = dir.path().join("r.redb");
    restore(&b, &restored, false).unwrap();
    assert_eq!(dump(&restored), dump(&state));
    let e = backup_file(&dir.path().join("missing.redb"), dir.path()).err().unwrap().to_string();
    assert!(e.contains("missing.redb"), "{e}");
}

#[test]
fn every_write_counts_in_the_state_mark() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let store = Store::open(&state).unwrap();
    let first = store.backup().unwrap().header.clone();
    assert_eq!(first.state_id.len(), 32);
    store.append_audit(&AuditEntry::new(NOW, "ops", None, "x", None, "ok", None)).unwrap();
    let second = store.backup().unwrap().header.clone();
    assert_eq!(second.state_id, first.state_id);
    assert_eq!(second.write_seq, first.write_seq + 1);
    assert!(second.last_write_ms >= first.last_write_ms && second.last_write_ms > 0);
}
