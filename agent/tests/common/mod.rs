//! Helpers shared by the integration tests that run the built binary.
#![allow(dead_code)] // each test crate uses its own subset

pub mod certs;
#[cfg(feature = "aws")]
pub mod moto;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slo-agent")
}

/// The 10 SLOs of the whole-process benchmarks.
pub fn specs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/specs-10.yaml")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of a 200 answer to `GET path` on the loopback port; `None` for
/// anything else (not listening yet, another status, a timeout).
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// `slo-agent run --config config`, quiet.
pub fn start(config: &Path) -> Child {
    Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        .env("SLO_AGENT_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A running agent, killed (SIGKILL: nothing flushed at the end) when dropped.
pub struct Agent(pub Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// [`start`] and wait (20 s at most) until the agent on `port` is ready.
pub fn start_ready(config: &Path, port: u16) -> Agent {
    let agent = Agent(start(config));
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || call(port, "GET", "/readyz", None, "").0 != 200
    {
        assert!(std::time::Instant::now() < until, "the agent did not get ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

/// The first sample of a metric in an exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// (name, total, good) of every SLO of a report.
pub fn totals(report: &serde_json::Value) -> Vec<(String, u64, u64)> {
    report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["events"]["total"].as_u64().unwrap(),
                s["events"]["good"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Run the agent in-process (`runtime::run`) on `rt` with the config at
/// `cfg`; send on the returned sender to stop it, then await the handle.
pub fn serve(
    rt: &tokio::runtime::Runtime,
    cfg: &Path,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    use slo_agent::clock::SystemClock;
    let config = slo_agent::config::load(cfg).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(slo_agent::runtime::run(config, std::sync::Arc::new(SystemClock), async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// An NDJSON log of the hour before `now_ms` for service `shop`: 20 requests
/// a minute, spread over `paths` in turn, all 503 in the last three minutes
/// (an outage that pages), 200 before.
pub fn write_outage_log(path: &Path, paths: &[&str], now_ms: i64) {
    let mut log = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for m in (0..60).rev() {
        let status = if m < 3 { 503 } else { 200 };
        for i in 0..20 {
            let ts = now_ms - m * 60_000 - 1_000 - i;
            let p = paths[i as usize % paths.len()];
            writeln!(
                log,
                r#"{{"ts":{ts},"service":"shop","path":"{p}","status":{status},"edge_location":"IAD89-C1"}}"#
            )
            .unwrap();
        }
    }
    log.flush().unwrap();
}

/// `method path` with a JSON body and an optional bearer token: (status, JSON body, `Null` when not JSON).
pub fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// `app` served on a loopback port by a runtime of its own (one worker);
/// it serves until the runtime is dropped.
pub fn serve_app(app: axum::Router) -> (u16, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, rt)
}

/// Writes `slos.yaml` (one availability SLO of service `shop`) and
/// `agent.yaml` into `dir`: listening on `port`, a 1 s tick, region
/// `eu-test-1`, then `rest` (sources, probes, journeys…). Returns the config's path.
pub fn write_agent_config(dir: &Path, port: u16, rest: &str) -> PathBuf {
    std::fs::write(
        dir.join("slos.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop-availability}\nspec:\n  service: shop\n  objective: 99\n  window: 28d\n  indicator: {source: ndjson, good: {status: \"< 500\"}}\n",
    )
    .unwrap();
    let head =
        format!("specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 1s\nregion: eu-test-1\n");
    let path = dir.join("agent.yaml");
    std::fs::write(&path, format!("{head}{rest}")).unwrap();
    path
}

/// An agent started in-process on `clock` (a `ManualClock`, usually), its
/// router served on a loopback port by a runtime of its own.
pub struct InProcess {
    pub agent: slo_agent::runtime::Runtime,
    pub port: u16,
    _rt: tokio::runtime::Runtime,
}

pub fn in_process(
    config: slo_agent::config::AgentConfig,
    clock: std::sync::Arc<dyn slo_agent::clock::Clock>,
) -> InProcess {
    let agent = slo_agent::runtime::Runtime::start(config, clock).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = slo_agent::api::router(agent.api.clone());
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    InProcess { agent, port, _rt: rt }
}

impl InProcess {
    /// Evaluate by hand (the tests' ticks are long) until `done` holds for
    /// the published snapshot, for at most a minute; returns that snapshot.
    pub fn evaluate_until(
        &self,
        what: &str,
        mut done: impl FnMut(&slo_agent::api::state::Snapshot) -> bool,
    ) -> std::sync::Arc<slo_agent::api::state::Snapshot> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let snap = self.agent.evaluate();
            if done(&snap) {
                return snap;
            }
            assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
