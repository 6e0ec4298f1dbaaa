//! Exactly once through log rotation: a writer appends CloudFront lines to
//! `logs/app.log` and rotates it the way logrotate does (older files shifted
//! up one number, `app.log` → `app.log.1` by rename or by copytruncate,
//! `app.log.2` compressed, every rotated file kept), while the agent is
//! killed with SIGKILL at random points and restarted. When the writer is
//! done and the agent has caught up, its totals must equal a replay of the
//! lines written, in one file, in one uninterrupted pass.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{bin, free_port, http_get, metric, specs, start, totals};

const LINES: usize = 200_000;
const KILLS: usize = 12;

fn replay(at: &str, files: &[PathBuf]) -> serde_json::Value {
    let out = Command::new(bin())
        .args(["replay", "--output", "json", "--specs"])
        .arg(specs())
        .args(["--at", at])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seeded and printed, so a failure can be rerun.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The rotated files, `app.log.1` first, as logrotate with `delaycompress`
/// names them: `.1` plain, older ones `.N.gz`.
fn rotated(logs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in 1.. {
        let plain = logs.join(format!("app.log.{n}"));
        let gz = logs.join(format!("app.log.{n}.gz"));
        if plain.exists() {
            out.push(plain);
        } else if gz.exists() {
            out.push(gz);
        } else {
            return out;
        }
    }
    unreachable!()
}

fn with_suffix(p: &Path, n: usize, gz: bool) -> PathBuf {
    p.with_file_name(format!("app.log.{n}{}", if gz { ".gz" } else { "" }))
}

/// Shift `app.log.N[.gz]` to `N+1`, highest first, as logrotate does.
fn shift(logs: &Path) {
    let old = rotated(logs);
    for (i, p) in old.iter().enumerate().rev() {
        let gz = p.extension().is_some_and(|e| e == "gz");
        fs::rename(p, with_suffix(p, i + 2, gz)).unwrap();
    }
}

/// Compress `app.log.2` into `app.log.2.gz` and remove it, as logrotate's
/// `compress` with `delaycompress` does (with the system's gzip, which
/// writes the `.gz` and then removes the plain file).
fn compress_second(logs: &Path) {
    let plain = logs.join("app.log.2");
    if plain.exists() {
        let st = Command::new("gzip").arg("-1").arg(&plain).status().unwrap();
        assert!(st.success(), "gzip failed");
    }
}

fn open_append(p: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(p).unwrap()
}

#[test]
fn sigkill_during_rotating_ingest_counts_every_line_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    // One day of traffic, yesterday: inside every SLO's window, never in the future.
    let yesterday = {
        let out = Command::new("date").args(["-u", "-d", "yesterday", "+%F"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let source = dir.path().join("source.log");
    let st = Command::new(bin())
        .args(["generate", "--lines", &LINES.to_string(), "--date", &yesterday, "--out"])
        .arg(&source)
        .status()
        .unwrap();
    assert!(st.success());
    let text = fs::read(&source).unwrap();
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let header_len = lines.iter().take_while(|l| l.starts_with(b"#")).count();
    assert!(header_len > 0, "generate wrote no header");
    let header: Vec<u8> = lines[..header_len].concat();
    let data = &lines[header_len..];
    assert_eq!(data.len(), LINES);

    let port = free_port();
    let config = dir.path().join("agent.yaml");
    fs::write(
        &config,
        format!(
            "specs: [{}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 10ms\nsources:\n  - name: cf\n    type: file\n    paths: [\"logs/app.log*\"]\n    format: cloudfront\n    max_batch_bytes: 262144\n",
            specs().display()
        ),
    )
    .unwrap();

    let seed: u64 = std::env::var("ROTATE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xC0FF_EE11);
    eprintln!("ROTATE_SEED={seed}");
    let mut rng = Rng(seed);

    // The writer's steps, and the steps after which the agent is killed.
    const STEPS: usize = 400;
    let mut kill_at: Vec<usize> =
        (0..KILLS).map(|i| i * STEPS / KILLS + rng.below((STEPS / KILLS) as u64) as usize).collect();
    kill_at.dedup();
    let per_step = LINES / STEPS;

    let app = logs.join("app.log");
    let mut writer = open_append(&app);
    writer.write_all(&header).unwrap();
    let mut child = start(&config);
    let mut next = 0usize;
    let (mut renames, mut copytruncates, mut kills) = (0, 0, 0);
    for step in 0..STEPS {
        let end = if step == STEPS - 1 {
            LINES
        } else {
            (next + per_step / 2 + rng.below(per_step as u64) as usize).min(LINES)
        };
        writer.write_all(&data[next..end].concat()).unwrap();
        next = end;
        if step % 25 == 24 && next < LINES {
            shift(&logs);
            if rng.below(2) == 0 {
                // Rename; the writer appends to the renamed file before it reopens.
                fs::rename(&app, logs.join("app.log.1")).unwrap();
                let late = (next + 1 + rng.below(20) as usize).min(LINES);
                writer.write_all(&data[next..late].concat()).unwrap();
                next = late;
                writer = open_append(&app);
                renames += 1;
            } else {
                // Copytruncate; nothing is written between the copy and the truncation.
                fs::copy(&app, logs.join("app.log.1")).unwrap();
                writer.set_len(0).unwrap();
                copytruncates += 1;
            }
            writer.write_all(&header).unwrap();
            compress_second(&logs);
        }
        if kill_at.contains(&step) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            child = start(&config);
        }
        std::thread::sleep(Duration::from_millis(2 + rng.below(20)));
    }
    assert_eq!(next, LINES);
    drop(writer);
    // Every kill landed while lines were still being written, so before
    // ingest could have finished.
    assert!(kills >= 10, "only {kills} kills");
    assert!(renames >= 3 && copytruncates >= 3, "{renames} renames, {copytruncates} copytruncates");
    eprintln!(
        "wrote {LINES} lines in {:.1}s: {renames} renames, {copytruncates} copytruncates, {kills} kills",
        started.elapsed().as_secs_f64()
    );

    // Now let it finish.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_lines = -1.0;
    loop {
        assert!(Instant::now() < deadline, "the agent did not finish ingesting in time");
        std::thread::sleep(Duration::from_millis(300));
        let Some(m) = http_get(port, "/metrics") else { continue };
        let backlog = metric(&m, "slo_agent_ingest_backlog_bytes").unwrap_or(1.0);
        let lines = metric(&m, "slo_agent_ingest_lines_total").unwrap_or(0.0);
        if backlog == 0.0 && lines == last_lines {
            break;
        }
        last_lines = lines;
    }
    // The last start still had lines to read: the last kill was not after the end.
    assert!(last_lines > 0.0, "ingest had finished before the last restart; the kills proved nothing");
    std::thread::sleep(Duration::from_millis(300)); // one more evaluation tick
    let got: serde_json::Value = serde_json::from_str(&http_get(port, "/api/v1/slos").unwrap()).unwrap();
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success(), "graceful shutdown failed");
    eprintln!("agent caught up after {:.1}s", started.elapsed().as_secs_f64());

    let at = got["at"].as_str().unwrap();
    let want = replay(at, &[source]);
    let (got, want) = (totals(&got), totals(&want));
    assert!(want.iter().map(|t| t.1).sum::<u64>() > 100_000, "the reference counted too little: {want:?}");
    if got != want {
        // Tell a lost or doubled line in the files apart from one in the agent.
        let mut files = rotated(&logs);
        files.push(app);
        let in_files = totals(&replay(at, &files));
        panic!(
            "totals after {kills} SIGKILLs differ from one clean pass:\n agent: {got:?}\n clean: {want:?}\n files: {in_files:?}"
        );
    }
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
}
