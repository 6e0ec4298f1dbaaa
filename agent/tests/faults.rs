//! Faults an operator or an attacker on loopback can cause, reproduced
//! against the built binary:
//!
//! - a full disk (a file-size limit on the process: writes fail with EFBIG)
//!   makes the agent not ready with the reason, and it recovers by itself
//!   once there is room again, having lost nothing it acknowledged;
//! - connections that trickle their headers are closed; connections beyond
//!   the cap are refused; SIGTERM ends the process in time, a half-sent
//!   request or not;
//! - push requests are limited before any work: too many at once (503),
//!   a request that inflates past its budget (413, nothing counted), an
//!   over-long request id (400);
//! - untrusted text cannot forge log lines or drive a terminal;
//! - an SLO whose spec file goes away for a moment keeps its history;
//! - an empty state file is refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, free_port};

const KEY: &str = "faults-test-key-0123456789";

const SPEC: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata: {name: shop-api}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator: {source: ndjson, good: {status: "< 500"}}
"#;

struct Agent {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Start the binary on a config made of `extra` (YAML lines after the
    /// common part). SIGXFSZ is ignored, so a file-size limit makes writes
    /// fail (as a full disk does) instead of killing the process.
    fn start(extra: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(dir.path().join("specs/shop.yaml"), SPEC).unwrap();
        let other = SPEC.replace("shop-api", "other-api").replace("service: shop", "service: other");
        std::fs::write(dir.path().join("specs/other.yaml"), other).unwrap();
        std::fs::write(dir.path().join("fh.key"), format!("{KEY}\n")).unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let port = free_port();
        let cfg = format!(
            "specs: [specs]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 100ms\n{extra}"
        );
        std::fs::write(dir.path().join("agent.yaml"), cfg).unwrap();
        let child = Agent::spawn(dir.path());
        let agent = Agent { child, port, dir };
        agent.wait(Duration::from_secs(20), "ready", || agent.status("/readyz") == Some(200));
        agent
    }

    #[allow(unsafe_code)] // pre_exec: only async-signal-safe calls; SAFETY below
    fn spawn(dir: &Path) -> Child {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config"])
            .arg(dir.join("agent.yaml"))
            .env("SLO_AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn restart(&mut self) {
        self.terminate(Duration::from_secs(15));
        self.child = Agent::spawn(self.dir.path());
        self.wait(Duration::from_secs(20), "ready after a restart", || self.status("/readyz") == Some(200));
    }

    fn wait(&self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("not {what} within {limit:?}; log:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Limit the size of files the process may write (`None`: no limit).
    #[allow(unsafe_code)] // prlimit on our own child; SAFETY below
    fn file_size_limit(&self, bytes: Option<u64>) {
        let v = bytes.unwrap_or(libc::RLIM_INFINITY);
        let lim = libc::rlimit { rlim_cur: v, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: prlimit on a child we own, with a valid struct.
        let rc = unsafe { libc::prlimit(self.pid(), libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// SIGTERM, and the time the process took to end (and its status).
    #[allow(unsafe_code)] // kill on our own child; SAFETY below
    fn terminate(&mut self, limit: Duration) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the agent did not end within {limit:?} of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn status(&self, path: &str) -> Option<u16> {
        request(self.port, "GET", path, &[], b"").map(|r| r.0)
    }

    fn total(&self) -> u64 {
        let (_, _, body) = request(self.port, "GET", "/api/v1/slos/shop-api", &[], b"").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["events"]["total"].as_u64().unwrap()
    }

    fn metrics(&self) -> String {
        String::from_utf8(request(self.port, "GET", "/metrics", &[], b"").unwrap().2).unwrap()
    }

    /// A Firehose delivery of NDJSON lines.
    fn push(&self, id: &str, lines: &[String]) -> (u16, String) {
        let data = base64(lines.join("\n").as_bytes());
        let body = format!(r#"{{"requestId":"{id}","timestamp":1,"records":[{{"data":"{data}"}}]}}"#);
        let (status, _, body) = request(
            self.port,
            "POST",
            "/ingest/firehose/edge",
            &[("X-Amz-Firehose-Access-Key", KEY), ("X-Amz-Firehose-Request-Id", id)],
            body.as_bytes(),
        )
        .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

fn ndjson(n: usize, status: u16) -> Vec<String> {
    let t = now_ms() - 60_000;
    (0..n).map(|i| format!(r#"{{"ts":{},"service":"shop","path":"/x","status":{status}}}"#, t + i as i64)).collect()
}

/// One HTTP/1.1 request on a fresh connection: (status, headers, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head, out[split + 4..].to_vec()))
}

fn firehose_source(extra: &str) -> String {
    format!(
        "sources:\n  - name: edge\n    type: firehose\n    token_file: fh.key\n    records: ndjson\n{extra}  - name: logs\n    type: file\n    paths: [\"logs/*.log\"]\n    format: ndjson\n"
    )
}

/// Fault 1: a full disk. Writes fail; the agent says so on /readyz (503,
/// with the reason), refuses pushes (503, nothing acknowledged), and once
/// writes work again it reopens the state file by itself and goes on —
/// having lost nothing it acknowledged, before or after a restart.
#[test]
fn a_full_disk_makes_the_agent_unready_and_it_recovers_when_there_is_room() {
    let mut a = Agent::start(&firehose_source(""));
    assert_eq!(a.push("before", &ndjson(10, 200)).0, 200);

    a.file_size_limit(Some(0));
    let (status, body) = a.push("during", &ndjson(7, 200));
    assert_eq!(status, 503, "{body}");
    a.wait(Duration::from_secs(10), "unready", || a.status("/readyz") == Some(503));
    let (_, _, why) = request(a.port, "GET", "/readyz", &[], b"").unwrap();
    let why = String::from_utf8_lossy(&why).into_owned();
    assert!(why.contains("store: "), "{why}");
    // Lines written meanwhile are not lost: counted once there is room.
    std::fs::write(a.dir.path().join("logs/a.log"), ndjson(5, 500).join("\n") + "\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(a.status("/readyz"), Some(503), "still no room: still not ready");

    a.file_size_limit(None);
    a.wait(Duration::from_secs(15), "ready again", || a.status("/readyz") == Some(200));
    assert_eq!(a.push("during", &ndjson(7, 200)).0, 200, "the sender's retry is accepted now");
    a.wait(Duration::from_secs(10), "counting everything once", || a.total() == 22);
    assert!(a.log().contains("state file reopened"), "{}", a.log());
    let m = a.metrics();
    assert!(common::metric(&m, "slo_agent_store_commit_failures_total").unwrap_or(0.0) >= 1.0, "{m}");
    assert!(common::metric(&m, "slo_agent_store_reopens_total").unwrap_or(0.0) >= 1.0, "{m}");

    let (took, status) = a.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(a.log().contains("state committed; bye"));
    a.child = Agent::spawn(a.dir.path());
    a.wait(Duration::from_secs(20), "ready after a restart", || a.status("/readyz") == Some(200));
    a.wait(Duration::from_secs(10), "the same totals", || a.total() == 22);
    assert_eq!(a.push("during", &ndjson(7, 200)).0, 200, "a redelivery is recognised");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.total(), 22);
}

/// Fault 3: connections that trickle their headers are closed after the
/// header-read timeout; those beyond the connection cap are refused at
/// once; probes get through meanwhile; and SIGTERM ends the process within
/// the shutdown timeout while a request is half sent.
#[test]
fn slow_connections_are_cut_off_and_sigterm_ends_the_process_in_time() {
    let mut a = Agent::start(&format!(
        "http: {{header_read_timeout: 1s, max_connections: 8, shutdown_timeout: 3s}}\n{}",
        firehose_source("")
    ));
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").unwrap();
            s
        })
        .collect();
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        // Closed by the server: end of stream (or a reset), with no answer to a request never finished.
        let n = s.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || !text.contains("200 OK"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(a.status("/healthz"), Some(200));
    let m = a.metrics();
    assert!(m.contains(r#"slo_agent_http_refused_total{class="connection",reason="too_many_connections"}"#), "{m}");

    // A push whose body never finishes, then SIGTERM.
    let mut half = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    let head = format!(
        "POST /ingest/firehose/edge HTTP/1.1\r\nHost: x\r\nX-Amz-Firehose-Access-Key: {KEY}\r\nContent-Length: 100000\r\n\r\n{{\"records\":["
    );
    half.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (took, status) = a.terminate(Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    assert!(status.success(), "{status:?}\n{}", a.log());
}

/// Fault 4: a push request costs bounded work. Over the decoding budget of
/// the whole request (however it is spread over records): 413, nothing
/// counted. An over-long request id: 400. More requests than the permits:
/// 503 with Retry-After, before their bodies are read.
#[test]
fn push_requests_are_limited_before_any_work() {
    let a = Agent::start(&format!(
        "http: {{max_push_in_flight: 1}}\n{}",
        "sources:\n  - name: edge\n    type: firehose\n    token_file: fh.key\n    max_body_bytes: 1048576\n    max_decoded_bytes: 262144\n    log_groups: [{log_group: \"/app/*\", format: ndjson, service: shop}]\n"
    ));
    // 40 records of 27 KB each inflate to 1 MB: each is under the limit, together over it.
    let line = ndjson(1, 200).remove(0);
    let message = serde_json::json!({
        "messageType": "DATA_MESSAGE", "logGroup": "/app/x", "logStream": "s", "owner": "1",
        "subscriptionFilters": ["f"],
        "logEvents": (0..100).map(|i| serde_json::json!({"id": format!("{i}"), "timestamp": now_ms(), "message": format!("{line}{}", " ".repeat(160))})).collect::<Vec<_>>(),
    })
    .to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(message.as_bytes()).unwrap();
    let record = base64(&gz.finish().unwrap());
    let records: Vec<String> = (0..40).map(|_| format!(r#"{{"data":"{record}"}}"#)).collect();
    let body = format!(r#"{{"requestId":"big","records":[{}]}}"#, records.join(","));
    assert!(body.len() < 1 << 20, "{}", body.len());
    let auth = [("X-Amz-Firehose-Access-Key", KEY)];
    let (status, _, answer) = request(a.port, "POST", "/ingest/firehose/edge", &auth, body.as_bytes()).unwrap();
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("nothing of it was counted"));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(a.total(), 0);

    // One budget for the body and its records together: 5 records inflate
    // to about 135 KB; the gzip body they come in is accepted as such, but
    // not when it also inflates to 150 KB of its own (JSON whitespace).
    let five = records[..5].join(",");
    let gzipped = |text: String| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    let padded = gzipped(format!(r#"{{"requestId":"padded",{}"records":[{five}]}}"#, " ".repeat(150_000)));
    let gzip_auth = [("X-Amz-Firehose-Access-Key", KEY), ("Content-Encoding", "gzip")];
    let (status, _, answer) = request(a.port, "POST", "/ingest/firehose/edge", &gzip_auth, &padded).unwrap();
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));
    let plain = gzipped(format!(r#"{{"requestId":"plain","records":[{five}]}}"#));
    let (status, _, answer) = request(a.port, "POST", "/ingest/firehose/edge", &gzip_auth, &plain).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    a.wait(Duration::from_secs(10), "the 500 events of the plain request", || a.total() == 500);

    // Request ids: at most 128 bytes, in the header or in the body.
    let long = "r".repeat(300);
    let small = r#"{"records":[]}"#;
    let (status, _, _) = request(
        a.port,
        "POST",
        "/ingest/firehose/edge",
        &[("X-Amz-Firehose-Access-Key", KEY), ("X-Amz-Firehose-Request-Id", &long)],
        small.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 400);
    let body = format!(r#"{{"requestId":"{long}","records":[]}}"#);
    assert_eq!(request(a.port, "POST", "/ingest/firehose/edge", &auth, body.as_bytes()).unwrap().0, 400);

    // One permit: a request whose body dribbles in holds it; the next is refused.
    let mut slow = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    let head = format!(
        "POST /ingest/firehose/edge HTTP/1.1\r\nHost: x\r\nX-Amz-Firehose-Access-Key: {KEY}\r\nContent-Length: 1000\r\n\r\n{{\"rec"
    );
    slow.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (status, head, _) = request(a.port, "POST", "/ingest/firehose/edge", &auth, small.as_bytes()).unwrap();
    assert_eq!(status, 503);
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    drop(slow);
    let m = a.metrics();
    for result in ["too_large", "bad_request_id", "busy"] {
        assert!(m.contains(&format!(r#"result="{result}"}}"#)), "{result}\n{m}");
    }
}

/// Fault 7: text from outside cannot forge a log line or reach the
/// terminal raw: control characters are escaped, long samples cut.
#[test]
fn untrusted_text_is_escaped_in_the_logs() {
    let a = Agent::start(&firehose_source(""));
    let forged = "not json\r2026-12-04T00:00:00.000000Z  INFO audit: api call actor=admin action=silence.create outcome=ok\u{1b}[2J";
    let long = format!("{{{}", "x".repeat(5000));
    assert_eq!(a.push("forge", &[forged.to_string(), long]).0, 200);
    a.wait(Duration::from_secs(5), "the rejects logged", || a.log().contains("rejected lines"));
    let log = a.log();
    assert!(!log.contains('\u{1b}'), "an escape sequence reached the log");
    assert!(!log.contains('\r'), "a carriage return reached the log");
    assert!(log.lines().all(|l| !l.starts_with("2026-12-04T00:00:00.000000Z")), "a forged line:\n{log}");
    assert!(log.contains("\\r2026-12-04T00:00:00") && log.contains("\\u{1b}[2J"), "{log}");
    let line = log.lines().find(|l| l.contains("rejected lines")).unwrap();
    assert!(line.len() < 2000, "samples are cut: {} bytes", line.len());
}

/// Fault 6: an SLO whose spec file is removed for a moment and put back
/// keeps its history (and keeps it across a restart).
#[test]
fn an_slo_whose_spec_goes_away_for_a_moment_keeps_its_history() {
    let mut a = Agent::start(&firehose_source(""));
    assert_eq!(a.push("one", &ndjson(306, 200)).0, 200);
    a.wait(Duration::from_secs(5), "counting", || a.total() == 306);
    let spec = a.dir.path().join("specs/shop.yaml");
    std::fs::remove_file(&spec).unwrap();
    a.wait(Duration::from_secs(10), "the SLO gone", || a.status("/api/v1/slos/shop-api") == Some(404));
    std::fs::write(&spec, SPEC).unwrap();
    a.wait(Duration::from_secs(10), "the SLO back", || a.status("/api/v1/slos/shop-api") == Some(200));
    assert_eq!(a.total(), 306, "its history came back");
    assert_eq!(a.push("two", &ndjson(4, 200)).0, 200);
    a.wait(Duration::from_secs(5), "counting on", || a.total() == 310);
    a.restart();
    a.wait(Duration::from_secs(5), "the same after a restart", || a.total() == 310);
}

/// Fault 8: an existing empty state file is not taken for a first start.
#[test]
fn an_empty_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), SPEC).unwrap();
    std::fs::write(dir.path().join("state.redb"), b"").unwrap();
    let port = free_port();
    let cfg = format!("specs: [shop.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\nsources: []\n");
    std::fs::write(dir.path().join("agent.yaml"), cfg).unwrap();
    let out = Command::new(bin()).args(["run", "--config"]).arg(dir.path().join("agent.yaml")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    assert_eq!(std::fs::metadata(dir.path().join("state.redb")).unwrap().len(), 0);
}
