//! Exactly once: kill the agent with SIGKILL at random points while it
//! ingests, restart it each time, and the final totals must equal a replay
//! of the same files (which counts every line once).

use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{bin, free_port, http_get, metric, specs, start, totals};

#[test]
fn sigkill_at_random_points_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Three files on the three days before today, so every event is inside
    // the SLOs' 28-day window whatever the wall clock says.
    let today_ms = {
        let out = Command::new("date").arg("+%s").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().parse::<i64>().unwrap() * 1000
    };
    for back in 1..=3 {
        let day = (today_ms / 86_400_000 - back) * 86_400;
        let date = String::from_utf8(
            Command::new("date").args(["-u", "-d", &format!("@{day}"), "+%F"]).output().unwrap().stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let st = Command::new(bin())
            .args(["generate", "--lines", "30000", "--date", &date, "--out"])
            .arg(logs.join(format!("cf-{date}.log")))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let port = free_port();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "specs: [{}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 10ms\nsources:\n  - name: cf\n    type: file\n    paths: [\"logs/*.log\"]\n    format: cloudfront\n    max_batch_bytes: 65536\n",
            specs().display()
        ),
    )
    .unwrap();

    // Deterministic "random" kill points; the seed is printed for reruns.
    let mut seed: u64 = std::env::var("KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_2026);
    eprintln!("KILL_SEED={seed}");
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut kills = 0;
    for _ in 0..12 {
        let mut child = start(&config);
        std::thread::sleep(Duration::from_millis(30 + next() % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert_eq!(kills, 12);

    // Now let it finish.
    let mut child = start(&config);
    let deadline = Instant::now() + Duration::from_secs(240);
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
    // The kills landed mid-ingest: the last run still had lines to read.
    assert!(last_lines > 0.0, "ingest had finished before the last restart; the kills proved nothing");
    std::thread::sleep(Duration::from_millis(300)); // one more evaluation tick
    let got: serde_json::Value = serde_json::from_str(&http_get(port, "/api/v1/slos").unwrap()).unwrap();
    // SIGTERM: graceful shutdown commits and exits 0.
    unsafe_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown failed: {status:?}");

    let out = Command::new(bin())
        .args(["replay", "--output", "json", "--specs"])
        .arg(specs())
        .args(["--at", got["at"].as_str().unwrap()])
        .args(std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (got, want) = (totals(&got), totals(&want));
    assert!(want.iter().map(|t| t.1).sum::<u64>() > 50_000, "the reference counted too little: {want:?}");
    assert_eq!(got, want, "totals after {kills} SIGKILLs differ from one clean pass");
}

fn unsafe_sigterm(pid: u32) {
    let st = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(st.success());
}
