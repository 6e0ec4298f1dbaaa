//! Silences through the API of the running binary: tokens and roles, hostile
//! bodies, create/list/expire, automatic expiry, the audit log, and the
//! silences surviving a restart (SIGTERM, then a new process on the same
//! state file). Token values must never reach the log or the audit log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{bin, free_port, http_get, metric};

const SPECS: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability, labels: {team: payments}}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n";

const SILENCE_TOKEN: &str = "silence-3f9a7c1e5b2d4068a1c3e5f7";
const READ_TOKEN: &str = "read-8d2b6f0a4c1e3957b7d9f1a3";
const ADMIN_TOKEN: &str = "admin-5e7c9a1b3d2f4068c2e4a6b8";

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("specs.yaml"), SPECS).unwrap();
    std::fs::write(dir.join("oncall.token"), format!("{SILENCE_TOKEN}\n")).unwrap();
    std::fs::write(dir.join("viewer.token"), READ_TOKEN).unwrap();
    std::fs::write(dir.join("ops.token"), ADMIN_TOKEN).unwrap();
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\napi:\n  tokens:\n    - {{name: oncall-bot, role: silence, token_file: oncall.token}}\n    - {{name: viewer, role: read, token_file: viewer.token}}\n    - {{name: ops, role: admin, token_file: ops.token}}\nsources: []\n"
        ),
    )
    .unwrap();
    cfg
}

/// The running agent; killed if a test fails before it is stopped.
struct Agent(Option<Child>);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start the agent, logging at info to `log`, and wait until it is ready.
fn start(cfg: &Path, log: &Path, port: u16) -> Agent {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let agent = Agent(Some(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(cfg)
            .env("SLO_AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    for _ in 0..200 {
        if http_get(port, "/readyz").is_some() {
            return agent;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the agent did not become ready");
}

/// SIGTERM, and a clean exit.
fn stop(mut agent: Agent) {
    let mut child = agent.0.take().unwrap();
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown failed: {status:?}");
}

struct Api {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(port: u16) -> Api {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // No kept-alive connections: the agent restarts on the same port.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Api { rt, client, base: format!("http://127.0.0.1:{port}") }
    }

    /// (status, www-authenticate, body as JSON or as a string).
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> (u16, String, Value) {
        self.rt.block_on(async {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = self.client.request(method, format!("{}{path}", self.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let challenge =
                resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let text = resp.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, challenge, body)
        })
    }

    fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let (status, _, v) = self.call("POST", "/api/v1/silences", token, Some(body.to_string().into_bytes()));
        (status, v)
    }

    fn list(&self, all: bool) -> Vec<Value> {
        let path = if all { "/api/v1/silences?all=true" } else { "/api/v1/silences" };
        let (status, _, v) = self.call("GET", path, None, None);
        assert_eq!(status, 200, "{v}");
        v["silences"].as_array().unwrap().clone()
    }
}

fn ids_states(list: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["state"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn silences_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port);
    let log = dir.path().join("agent.log");
    let child = start(&cfg, &log, port);
    let api = Api::new(port);
    let good = json!({"matchers": ["service=checkout", {"name": "severity", "value": "page"}], "duration": "1h", "comment": "CHG-42 checkout deploy"});

    // Reads are open; writes need a token with the role.
    assert_eq!(api.list(false), Vec::<Value>::new());
    let (status, challenge, body) = api.call("POST", "/api/v1/silences", None, Some(good.to_string().into_bytes()));
    assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"slo-agent\""), "{body}");
    assert_eq!(api.post(Some("not-a-token-0123456789"), &good).0, 401);
    let (status, body) = api.post(Some(READ_TOKEN), &good);
    assert_eq!(status, 403);
    assert_eq!(body["error"], "the token `viewer` has the role read; this needs the role silence");

    // Bad and hostile bodies: refused with a reason, and the agent lives on.
    let hostile: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, "the body is not a valid silence"),
        (
            b"{\"matchers\": [\"service=checkout\"], \"duration\": \"1h\", \"comment\": \"x\", \"admin\": true}"
                .to_vec(),
            400,
            "unknown field `admin`",
        ),
        (
            b"{\"matchers\": [\"service~checkout\"], \"duration\": \"1h\", \"comment\": \"x\"}".to_vec(),
            400,
            "is not a matcher",
        ),
        (b"{\"matchers\": [\"slo=~(\"], \"duration\": \"1h\", \"comment\": \"x\"}".to_vec(), 400, "does not compile"),
        (
            b"{\"matchers\": [\"team=~.*\"], \"duration\": \"1h\", \"comment\": \"x\"}".to_vec(),
            400,
            "would mute every alert",
        ),
        (b"{\"matchers\": [\"service=checkout\"], \"duration\": \"1h\"}".to_vec(), 400, "needs a comment"),
        (
            b"{\"matchers\": [\"service=checkout\"], \"duration\": \"91d\", \"comment\": \"x\"}".to_vec(),
            400,
            "at most 90 days",
        ),
        (format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)).into_bytes(), 400, "the body is not a valid silence"),
        (
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
            400,
            "the body is not a valid silence",
        ),
        (vec![b' '; 100 * 1024], 413, "larger than 65536 bytes"),
        (vec![0xff, 0xfe, 0x00], 400, "the body is not a valid silence"),
    ];
    for (body, want_status, want) in hostile {
        let (status, _, answer) = api.call("POST", "/api/v1/silences", Some(SILENCE_TOKEN), Some(body));
        assert_eq!(status, want_status, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(want), "{answer} should say {want}");
    }

    // Create.
    let (status, created) = api.post(Some(SILENCE_TOKEN), &good);
    assert_eq!(status, 201, "{created}");
    let long_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(long_id.len(), 32);
    assert_eq!(created["created_by"], "oncall-bot");
    assert_eq!(created["state"], "active");
    assert_eq!(created["matchers"][1], json!({"name": "severity", "value": "page", "op": "="}));
    assert!(created.get("warnings").is_none(), "{created}");
    let ends = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let (status, short) = api.post(
        Some(SILENCE_TOKEN),
        &json!({"matchers": ["slo=~checkout-.*", "tema=payments"], "ends_at": ends.to_string(), "comment": "two seconds"}),
    );
    assert_eq!(status, 201, "{short}");
    let short_id = short["id"].as_str().unwrap().to_string();
    assert_eq!(short["warnings"][0].as_str().unwrap().split(':').next(), Some("no SLO has the label `tema`"));
    let starts = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let (status, pending) = api.post(
        Some(SILENCE_TOKEN),
        &json!({"matchers": ["team=payments"], "starts_at": starts.to_string(), "duration": "2h", "comment": "maintenance"}),
    );
    assert_eq!(status, 201, "{pending}");
    assert_eq!(pending["state"], "pending");
    let pending_id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(api.list(false).len(), 3);
    let (status, _, one) = api.call("GET", &format!("/api/v1/silences/{short_id}"), None, None);
    assert_eq!((status, one["comment"].as_str()), (200, Some("two seconds")));
    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(metric(&metrics, "slo_agent_silences{state=\"active\"}"), Some(2.0), "{metrics}");
    assert_eq!(metric(&metrics, "slo_agent_silences{state=\"pending\"}"), Some(1.0));

    // Expire.
    let (status, _, _) = api.call("DELETE", &format!("/api/v1/silences/{long_id}"), Some(READ_TOKEN), None);
    assert_eq!(status, 403);
    let (status, _, _) =
        api.call("DELETE", "/api/v1/silences/0123456789abcdef0123456789abcdef", Some(SILENCE_TOKEN), None);
    assert_eq!(status, 404);
    let (status, _, expired) = api.call("DELETE", &format!("/api/v1/silences/{long_id}"), Some(SILENCE_TOKEN), None);
    assert_eq!((status, expired["state"].as_str()), (200, Some("expired")), "{expired}");

    // The short one expires by itself.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ids_states(&api.list(false)), vec![(pending_id.clone(), "pending".to_string())]);
    let mut want = vec![
        (long_id.clone(), "expired".to_string()),
        (short_id.clone(), "expired".to_string()),
        (pending_id.clone(), "pending".to_string()),
    ];
    want.sort();
    assert_eq!(ids_states(&api.list(true)), want);

    // The audit log: admin only; names, never token values.
    assert_eq!(api.call("GET", "/api/v1/audit", Some(SILENCE_TOKEN), None).0, 403);
    let (status, _, audit) = api.call("GET", "/api/v1/audit?limit=100", Some(ADMIN_TOKEN), None);
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            let outcome = e["outcome"].as_str().unwrap();
            let outcome = outcome.split(':').next().unwrap();
            (e["actor"].as_str().unwrap().into(), e["action"].as_str().unwrap().into(), outcome.into())
        })
        .collect();
    let count = |actor: &str, action: &str, outcome: &str| {
        seen.iter().filter(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()) == (actor, action, outcome)).count()
    };
    assert_eq!(count("anonymous", "silence.create", "unauthorized"), 2, "{seen:#?}");
    assert_eq!(count("viewer", "silence.create", "forbidden"), 1);
    assert_eq!(count("oncall-bot", "silence.create", "invalid"), 11);
    assert_eq!(count("oncall-bot", "silence.create", "ok"), 3);
    assert_eq!(count("viewer", "silence.expire", "forbidden"), 1);
    assert_eq!(count("oncall-bot", "silence.expire", "not_found"), 1);
    assert_eq!(count("oncall-bot", "silence.expire", "ok"), 1);
    let ok = entries.iter().find(|e| e["action"] == "silence.expire" && e["outcome"] == "ok").unwrap();
    assert_eq!((ok["role"].as_str(), ok["target"].as_str()), (Some("silence"), Some(long_id.as_str())));
    assert!(ok["remote"].as_str().unwrap().starts_with("127.0.0.1:"), "{ok}");
    let text = audit.to_string();
    for secret in [SILENCE_TOKEN, READ_TOKEN, ADMIN_TOKEN, "not-a-token"] {
        assert!(!text.contains(secret), "the audit log shows a token value");
    }

    // Persistence: the same silences, states and ids after a restart.
    let before = ids_states(&api.list(true));
    stop(child);
    let child = start(&cfg, &log, port);
    assert_eq!(ids_states(&api.list(true)), before);
    let (status, _, audit) = api.call("GET", "/api/v1/audit?limit=1", Some(ADMIN_TOKEN), None);
    assert_eq!((status, audit["entries"].as_array().map(Vec::len)), (200, Some(1)));
    stop(child);

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("audit") && log.contains("oncall-bot"), "{log}");
    assert!(log.contains("silences restored"), "{log}");
    for secret in [SILENCE_TOKEN, READ_TOKEN, ADMIN_TOKEN, "not-a-token"] {
        assert!(!log.contains(secret), "the log shows a token value");
    }
}

#[test]
fn without_tokens_mutating_endpoints_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("specs.yaml"), SPECS).unwrap();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(&cfg, format!("specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\nsources: []\n"))
        .unwrap();
    let child = start(&cfg, &dir.path().join("agent.log"), port);
    let api = Api::new(port);
    let (status, body) = api.post(
        Some("anything-0123456789"),
        &json!({"matchers": ["service=checkout"], "duration": "1h", "comment": "x"}),
    );
    assert_eq!(status, 403);
    assert_eq!(body["error"], "no API tokens are configured; mutating endpoints are disabled (see docs/api.md)");
    assert_eq!(api.call("GET", "/api/v1/audit", None, None).0, 403);
    assert_eq!(api.list(false), Vec::<Value>::new());
    stop(child);
}

#[test]
fn reads_can_require_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port);
    let cfg = dir.path().join("agent.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("api:\n", "api:\n  read_requires_token: true\n");
    std::fs::write(&cfg, text).unwrap();
    let agent = start(&cfg, &dir.path().join("agent.log"), port);
    let api = Api::new(port);
    for path in ["/metrics", "/api/v1/slos", "/api/v1/alerts", "/api/v1/silences", "/api/v1/nothing"] {
        let (status, challenge, _) = api.call("GET", path, None, None);
        assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"slo-agent\""), "{path}");
        assert_eq!(api.call("GET", path, Some("wrong-0123456789abcdef"), None).0, 401, "{path}");
    }
    for path in ["/metrics", "/api/v1/slos", "/api/v1/alerts", "/api/v1/silences"] {
        assert_eq!(api.call("GET", path, Some(READ_TOKEN), None).0, 200, "{path}");
    }
    assert_eq!(api.call("GET", "/api/v1/nothing", Some(READ_TOKEN), None).0, 404);
    assert_eq!(api.call("GET", "/api/v1/audit", Some(READ_TOKEN), None).0, 403);
    assert!(http_get(port, "/healthz").is_some() && http_get(port, "/readyz").is_some());
    stop(agent);
}
