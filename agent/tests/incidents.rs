//! Incidents and the public status page through the running binary: roles,
//! refusals (400/404/409), open → update → resolve, the audit log, the
//! `incident` CLI, `/status` and `/status.json` served without a token while
//! reads need one, showing nothing internal, and incidents surviving a restart.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Agent, bin, call, free_port};

const SPECS: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n";
const INCIDENT_TOKEN: &str = "incident-7d1f3a5c9e2b4068a0c2e4f6";
const READ_TOKEN: &str = "read-2b4d6f8a0c1e3957b7d9f1a3";
const ADMIN_TOKEN: &str = "admin-9c7e5a3b1d2f4068c2e4a6b8";

fn start(dir: &std::path::Path, port: u16) -> Agent {
    common::start_ready(&dir.join("agent.yaml"), port)
}

fn get_text(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
}

#[test]
fn incidents_are_opened_updated_resolved_audited_and_shown_on_the_public_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("specs.yaml"), SPECS).unwrap();
    std::fs::write(d.join("inc.token"), INCIDENT_TOKEN).unwrap();
    std::fs::write(d.join("read.token"), READ_TOKEN).unwrap();
    std::fs::write(d.join("admin.token"), ADMIN_TOKEN).unwrap();
    let port = free_port();
    std::fs::write(
        d.join("agent.yaml"),
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\napi:\n  read_requires_token: true\n  tokens:\n    - {{name: oncall-bot, role: incident, token_file: inc.token}}\n    - {{name: viewer, role: read, token_file: read.token}}\n    - {{name: ops, role: admin, token_file: admin.token}}\nstatus:\n  title: Acme status\n  components:\n    - {{name: Checkout, service: checkout}}\nsources: []\n"
        ),
    )
    .unwrap();
    let agent = start(d, port);
    let open = r#"{"title": "Checkout <b>errors</b>", "services": ["checkout"], "impact": "major", "message": "We are investigating."}"#;

    // Roles.
    assert_eq!(call(port, "POST", "/api/v1/incidents", None, open).0, 401);
    assert_eq!(call(port, "POST", "/api/v1/incidents", Some(READ_TOKEN), open).0, 403);
    // Refusals.
    let (s, b) = call(port, "POST", "/api/v1/incidents", Some(INCIDENT_TOKEN), r#"{"title": "x", "services": []}"#);
    assert_eq!(s, 400, "{b}");
    let (s, b) = call(
        port,
        "POST",
        "/api/v1/incidents",
        Some(INCIDENT_TOKEN),
        r#"{"title": "", "services": ["checkout"], "message": "m"}"#,
    );
    assert_eq!((s, b["error"].as_str().unwrap().contains("`title`")), (400, true), "{b}");
    let big = format!(r#"{{"title": "t", "services": ["checkout"], "message": "{}"}}"#, "m".repeat(40_000));
    assert_eq!(call(port, "POST", "/api/v1/incidents", Some(INCIDENT_TOKEN), &big).0, 413);

    // Open, update, resolve.
    let (s, i) = call(port, "POST", "/api/v1/incidents", Some(INCIDENT_TOKEN), open);
    assert_eq!(s, 201, "{i}");
    let id = i["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("inc-") && id.ends_with("-001"), "{id}");
    assert_eq!((i["opened_by"].as_str(), i["status"].as_str()), (Some("user:oncall-bot"), Some("investigating")));
    let (s, _) = call(port, "GET", &format!("/api/v1/incidents/{id}"), None, "");
    assert_eq!(s, 401, "reads need a token here");
    let (s, got) = call(port, "GET", &format!("/api/v1/incidents/{id}"), Some(READ_TOKEN), "");
    assert_eq!((s, got["title"].clone()), (200, i["title"].clone()));
    let upd = |body: &str, id: &str| {
        call(port, "POST", &format!("/api/v1/incidents/{id}/updates"), Some(INCIDENT_TOKEN), body)
    };
    assert_eq!(upd(r#"{"status": "identified", "message": "A bad deploy."}"#, "inc-19990101-001").0, 404);
    assert_eq!(upd(r#"{"status": "fixed", "message": "x"}"#, &id).0, 400);
    let (s, i) = upd(r#"{"status": "identified", "message": "A bad deploy; rolling back."}"#, &id);
    assert_eq!((s, i["status"].as_str()), (201, Some("identified")));

    // The public page: no token, nothing internal.
    let (s, html) = get_text(port, "/status");
    assert_eq!(s, 200);
    assert!(html.contains("<h1>Acme status</h1>") && html.contains("Checkout &lt;b&gt;errors&lt;/b&gt;"), "{html}");
    assert!(html.contains("A bad deploy; rolling back.") && html.contains("Active incidents"));
    for secret in ["oncall-bot", "checkout-availability", INCIDENT_TOKEN, "127.0.0.1"] {
        assert!(!html.contains(secret), "{secret} is on the public page");
    }
    let (s, json) = get_text(port, "/status.json");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((s, json["components"][0]["name"].as_str()), (200, Some("Checkout")));
    assert_eq!(json["components"][0]["days"].as_array().unwrap().len(), 90);
    assert_eq!(json["incidents"][0]["components"][0], "Checkout");

    let (s, i) = upd(r#"{"status": "resolved", "message": "Fixed."}"#, &id);
    assert_eq!((s, i["resolved_at"].is_string()), (201, true));
    let (s, b) = upd(r#"{"status": "monitoring", "message": "again"}"#, &id);
    assert_eq!(s, 409, "{b}");

    // The CLI.
    let out = Command::new(bin())
        .args(["incident", "list", "--url", &format!("http://127.0.0.1:{port}"), "--token-file"])
        .arg(d.join("read.token"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(&id) && text.contains("resolved"), "{text}");
    let out = Command::new(bin())
        .args(["incident", "update", &id, "--status", "monitoring", "--message", "x"])
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--token-file"])
        .arg(d.join("inc.token"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a resolved incident: refused");

    // The audit log.
    let (_, audit) = call(port, "GET", "/api/v1/audit?limit=50", Some(ADMIN_TOKEN), "");
    let actions: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or("").to_string(), e["outcome"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(actions.iter().any(|(a, o)| a == "incident.open" && o.starts_with("ok")), "{actions:?}");
    assert!(actions.iter().any(|(a, o)| a == "incident.update" && o == "ok: resolved"), "{actions:?}");
    assert!(actions.iter().any(|(a, o)| a == "incident.update" && o == "not_found"), "{actions:?}");
    assert!(actions.iter().any(|(a, o)| a == "incident.open" && o.starts_with("invalid")), "{actions:?}");

    // Kept across a restart.
    drop(agent);
    let _agent = start(d, port);
    let (s, i) = call(port, "GET", &format!("/api/v1/incidents/{id}"), Some(READ_TOKEN), "");
    assert_eq!((s, i["updates"].as_array().map(Vec::len)), (200, Some(3)));
}

/// `GET path` as JSON, or `None` while the agent is not answering.
fn get_json(port: u16, path: &str) -> Option<Value> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let (s, body) = get_text(port, path);
    (s == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_page_alert_opens_one_incident_and_the_component_shows_the_outage() {
    use slo_agent::clock::{Clock, SystemClock};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("logs")).unwrap();
    let port = free_port();
    std::fs::write(
        d.join("agent.yaml"),
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nalerts: {{min_events: 200, resolve_after: 5m}}\nstatus:\n  components:\n    - {{name: Shop, service: shop}}\nsources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n"
        ),
    )
    .unwrap();
    // An hour of healthy traffic, then the last three minutes all 503.
    common::write_outage_log(&d.join("logs/app.ndjson"), &["/"], SystemClock.now_ms());
    let agent = start(d, port);
    let incident = wait_for("an incident opened by the page", || {
        let v = get_json(port, "/api/v1/incidents")?;
        v["incidents"].as_array()?.first().cloned()
    });
    assert_eq!(incident["services"][0], "shop");
    assert_eq!((incident["status"].as_str(), incident["impact"].as_str()), (Some("investigating"), Some("major")));
    assert!(incident["opened_by"].as_str().unwrap().starts_with("alert:slo-agent/shop/page/"), "{incident}");
    let component = wait_for("the component in an outage", || {
        let v = get_json(port, "/status.json")?;
        let c = v["components"][0].clone();
        (c["status"] != "operational").then_some(c)
    });
    assert_eq!(component["status"], "major_outage", "its only SLO pages: {component}");
    let (_, html) = get_text(port, "/status");
    assert!(html.contains("Major outage") && html.contains("shop: degraded service"), "{html}");
    assert!(!html.contains("slo-agent/shop/page"), "no alert key on the public page");

    // Restarted: the alert is still the same episode; no second incident.
    drop(agent);
    let _agent = start(d, port);
    std::thread::sleep(Duration::from_millis(500));
    let v = get_json(port, "/api/v1/incidents").unwrap();
    assert_eq!(v["incidents"].as_array().unwrap().len(), 1, "{v}");
}
