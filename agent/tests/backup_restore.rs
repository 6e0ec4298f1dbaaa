//! Backup and restore end to end, through the built binary: a live agent
//! is backed up through its API (`slo-agent backup --url`) while it
//! ingests; the backup is restored into a fresh state file
//! (`slo-agent restore`); an agent started on it reads the rest of the log
//! from the restored checkpoints and then answers exactly like the original:
//! the same SLO counts and budgets, alert states, silences, freeze
//! overrides, and the same audit chain. Damaged backups and newer state are
//! refused with what is wrong.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use slo_agent::clock::{Clock, SystemClock};

mod common;
use common::{bin, call, free_port, http_get};

const ADMIN: &str = "backup-test-admin-token-0123456789";
const READER: &str = "backup-test-reader-token-0123456789";
const SPECS: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n";

fn write_config(dir: &Path, name: &str, state: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "specs: [specs.yaml]\nstate: {state}\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 20ms\nalerts: {{min_events: 200, resolve_after: 1h}}\napi:\n  tokens:\n    - {{name: ops, role: admin, token_file: admin.token}}\n    - {{name: viewer, role: read, token_file: reader.token}}\nsources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n    max_batch_bytes: 4096\n"
        ),
    )
    .unwrap();
    path
}

fn json(port: u16, path: &str) -> Value {
    let (status, v) = call(port, "GET", path, Some(ADMIN), "");
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn total(port: u16) -> u64 {
    http_get(port, "/api/v1/slos")
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v["slos"][0]["events"]["total"].as_u64())
        .unwrap_or(0)
}

/// SIGTERM, and wait for the agent to finish.
fn stop(child: &mut std::process::Child) {
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).current_dir(dir).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What must survive a backup and restore, without what depends on the
/// moment it is asked (evaluation times, short windows).
fn answers(port: u16) -> Value {
    let slos = json(port, "/api/v1/slos");
    let slo = &slos["slos"][0];
    let alerts = json(port, "/api/v1/alerts")["alerts"].clone();
    let mut silences = json(port, "/api/v1/silences?all=true");
    silences.as_object_mut().unwrap().remove("at");
    serde_json::json!({
        "events": slo["events"],
        "budget": slo["error_budget"],
        "sli": slo["sli"],
        "alerts": alerts,
        "silences": silences,
        "overrides": json(port, "/api/v1/freeze/overrides?all=true"),
        "audit": json(port, "/api/v1/audit?limit=1000"),
        "audit_verify": json(port, "/api/v1/audit/verify"),
    })
}

/// A directory with the specs, the two tokens and an empty `logs/`.
fn agent_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("specs.yaml"), SPECS).unwrap();
    std::fs::write(d.join("admin.token"), ADMIN).unwrap();
    std::fs::write(d.join("reader.token"), READER).unwrap();
    std::fs::create_dir(d.join("logs")).unwrap();
    dir
}

#[test]
fn a_live_agent_backed_up_mid_ingest_restores_into_an_agent_that_answers_the_same() {
    let dir = agent_dir();
    let d = dir.path();
    let now = SystemClock.now_ms();
    // An hour of traffic ending in an outage: the page fires.
    common::write_outage_log(&d.join("logs/app.ndjson"), &["/"], now - 120_000);
    let port_a = free_port();
    let cfg_a = write_config(d, "a.yaml", "state-a.redb", port_a);
    let mut a = common::start(&cfg_a);
    wait_for("the page to fire", || {
        http_get(port_a, "/api/v1/alerts").is_some_and(|b| b.contains("\"phase\":\"firing\""))
    });
    let silence = r#"{"matchers": ["service=shop"], "duration": "2h", "comment": "INC-7 known outage"}"#;
    assert_eq!(call(port_a, "POST", "/api/v1/silences", Some(ADMIN), silence).0, 201);
    let freeze = r#"{"service":"shop","action":"freeze","reason":"INC-7","expires_in":"4h"}"#;
    assert_eq!(call(port_a, "POST", "/api/v1/freeze/overrides", Some(ADMIN), freeze).0, 201);

    // The outage goes on while the backup is taken: a writer appends in
    // small steps (bounded), the agent reads them in 4 KiB batches.
    let log = d.join("logs/app.ndjson");
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        for step in 0..60 {
            for i in 0..20 {
                let ts = now - 110_000 + step * 1_000 + i;
                writeln!(f, r#"{{"ts":{ts},"service":"shop","path":"/","status":503}}"#).unwrap();
            }
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = total(port_a);
    // A read-only token may not take a backup; an admin's may.
    let url = format!("http://127.0.0.1:{port_a}");
    let refused = cli(d, &["backup", "--url", &url, "--token-file", "reader.token", "--out", "no.backup"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("403") && stderr(&refused).contains("role admin"), "{}", stderr(&refused));
    assert!(!d.join("no.backup").exists());
    let taken = cli(d, &["backup", "--url", &url, "--token-file", "admin.token", "--out", "backups/"]);
    assert!(taken.status.success(), "{}", stderr(&taken));
    let during = total(port_a);
    writer.join().unwrap();
    let file = String::from_utf8(taken.stdout.clone()).unwrap().trim().to_string();
    assert!(file.starts_with("backups/slo-agent-") && file.ends_with(".backup"), "{file}");
    assert!(stderr(&taken).contains("backed up the agent"), "{}", stderr(&taken));
    assert!(before > 1_200 && during < 1_200 + 1_200, "the backup was taken mid-ingest ({before}, {during})");

    wait_for("the original to read everything", || total(port_a) == 2_400);
    let original = answers(port_a);
    // Stopped the way Kubernetes stops it, so all it read is durable.
    stop(&mut a);
    assert_eq!(original["audit_verify"]["intact"], true, "{original}");
    let audited: Vec<&str> =
        original["audit"]["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(audited.contains(&"state.backup"), "{audited:?}");

    // The backup checks whole; restored into a fresh state file.
    let check = cli(d, &["restore", "--from", &file, "--check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let header: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(header["tables"]["silences"], 1);
    let restored = cli(d, &["restore", "--from", &file, "--state", "state-b.redb"]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    // The original's state is newer than the backup: not replaced without --force.
    let newer = cli(d, &["restore", "--from", &file, "--config", "a.yaml"]);
    assert_eq!(newer.status.code(), Some(1));
    assert!(stderr(&newer).contains("is newer than the backup"), "{}", stderr(&newer));

    let port_b = free_port();
    let cfg_b = write_config(d, "b.yaml", "state-b.redb", port_b);
    let mut b = common::start(&cfg_b);
    wait_for("the restored agent to read the rest", || total(port_b) == 2_400);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(total(port_b), 2_400, "nothing counted twice after the restored checkpoint");
    let again = answers(port_b);
    let _ = b.kill();
    let _ = b.wait();
    assert_eq!(again, original);
}

#[test]
fn damaged_backups_are_refused_and_a_stopped_state_file_is_backed_up() {
    let dir = agent_dir();
    let d = dir.path();
    common::write_outage_log(&d.join("logs/app.ndjson"), &["/"], SystemClock.now_ms());
    let port = free_port();
    let cfg = write_config(d, "a.yaml", "state.redb", port);
    let mut a = common::start(&cfg);
    wait_for("the log to be read", || total(port) == 1_200);
    // A running agent's state file is not read behind its back.
    let busy = cli(d, &["backup", "--config", "a.yaml", "--out", "x.backup"]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(stderr(&busy).contains("open in a running agent"), "{}", stderr(&busy));
    let _ = a.kill();
    let _ = a.wait();

    let ok = cli(d, &["backup", "--state", "state.redb", "--out", "whole.backup"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let whole = std::fs::read(d.join("whole.backup")).unwrap();
    std::fs::write(d.join("short.backup"), &whole[..whole.len() / 2]).unwrap();
    let mut flipped = whole.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 1;
    std::fs::write(d.join("flipped.backup"), &flipped).unwrap();
    for (file, says) in [
        ("short.backup", "is truncated"),
        ("flipped.backup", "is corrupted"),
        ("specs.yaml", "is not a slo-agent backup"),
    ] {
        let o = cli(d, &["restore", "--from", file, "--state", "new.redb"]);
        assert_eq!(o.status.code(), Some(1), "{file}");
        assert!(stderr(&o).contains(says), "{file}: {}", stderr(&o));
        assert!(!d.join("new.redb").exists());
        let o = cli(d, &["restore", "--from", file, "--check"]);
        assert_eq!(o.status.code(), Some(1), "{file}");
    }
    let missing = cli(d, &["restore", "--from", "nope.backup", "--state", "new.redb"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    let o = cli(d, &["restore", "--from", "whole.backup", "--state", "new.redb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // No staging files are left behind.
    let names: Vec<String> =
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains("partial") || n.contains("restoring")), "{names:?}");
    // An agent that cannot be reached: exit 2, and no file.
    let port = free_port();
    let down =
        cli(d, &["backup", "--url", &format!("http://127.0.0.1:{port}"), "--out", "down.backup", "--timeout", "2"]);
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    assert!(!d.join("down.backup").exists());
}
