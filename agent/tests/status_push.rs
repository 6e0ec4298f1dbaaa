//! `status.push` through the running binary, against a local HTTP server
//! that records what it gets: a page outage reaches a fake Statuspage as a
//! component PATCH and a created incident, an update PATCHes that same
//! incident, a 500 is retried; the webhook kind gets signed JSON with a
//! stable id, and what was queued before a kill is delivered after the
//! restart, once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Agent, call, free_port};

const INCIDENT_TOKEN: &str = "incident-5e3a1c7b9d2f4068a0c2e4f6";
const API_KEY: &str = "sp-key-8f2c4a6e0b1d3957";

fn start(dir: &std::path::Path, port: u16) -> Agent {
    common::start_ready(&dir.join("agent.yaml"), port)
}

/// One request the fake page got, and what it answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
    /// When it arrived (ms since the epoch).
    at_ms: i64,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A status page on loopback: records every request; answers 500 while
/// `down` or for the next `fail` requests, else 201 with an incident id to
/// a POST and 200 to the rest.
#[derive(Clone, Default)]
struct FakePage {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl FakePage {
    fn serve(&self) -> (u16, tokio::runtime::Runtime) {
        let page = self.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let page = page.clone();
                async move {
                    let failing = page.down.load(Ordering::SeqCst)
                        || page.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                    let (status, answer) = if failing {
                        (500, "{}".to_string())
                    } else if method == axum::http::Method::POST && uri.path().ends_with("/incidents") {
                        (201, r#"{"id": "p31zjtct2jer", "name": "created"}"#.to_string())
                    } else {
                        (200, "{}".to_string())
                    };
                    page.seen.lock().unwrap().push(Seen {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body: body.to_vec(),
                        answered: status,
                        at_ms: slo_agent::clock::Clock::now_ms(&slo_agent::clock::SystemClock),
                    });
                    (axum::http::StatusCode::from_u16(status).unwrap(), answer)
                }
            },
        );
        common::serve_app(app)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, f: impl Fn(&Seen) -> bool) -> Seen {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.seen().into_iter().find(|s| f(s)) {
                return s;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}; seen: {:#?}", self.seen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
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
fn a_page_outage_reaches_statuspage_as_a_component_state_and_one_incident_updated_in_place() {
    use slo_agent::clock::{Clock, SystemClock};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("sp.key"), API_KEY).unwrap();
    std::fs::write(d.join("inc.token"), INCIDENT_TOKEN).unwrap();
    std::fs::create_dir(d.join("logs")).unwrap();
    let page = FakePage::default();
    // The first request fails: it is sent again.
    page.fail.store(1, Ordering::SeqCst);
    let (page_port, _page_rt) = page.serve();
    let port = free_port();
    std::fs::write(
        d.join("agent.yaml"),
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nalerts: {{min_events: 200, resolve_after: 5m}}\napi:\n  tokens:\n    - {{name: oncall, role: incident, token_file: inc.token}}\nstatus:\n  components:\n    - {{name: Shop, service: shop}}\n    - {{name: Search, service: search}}\n  push:\n    kind: statuspage\n    url: http://127.0.0.1:{page_port}\n    page_id: kctbh9vrtdwd\n    api_key_file: sp.key\n    components: {{Shop: 8kbf7d35c070}}\nsources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n"
        ),
    )
    .unwrap();
    // An hour of healthy traffic, then the last three minutes all 503: a page.
    common::write_outage_log(&d.join("logs/app.ndjson"), &["/"], SystemClock.now_ms());
    let _agent = start(d, port);

    let component_path = "/v1/pages/kctbh9vrtdwd/components/8kbf7d35c070";
    let outage = page.wait_for("the component's major outage", |s| {
        s.answered == 200 && s.path == component_path && s.json()["component"]["status"] == "major_outage"
    });
    assert_eq!(outage.method, "PATCH");
    assert_eq!(outage.header("content-type"), Some("application/json"));
    let created = page.wait_for("the incident created", |s| s.answered == 201);
    assert_eq!((created.method.as_str(), created.path.as_str()), ("POST", "/v1/pages/kctbh9vrtdwd/incidents"));
    let i = &created.json()["incident"];
    assert_eq!((i["status"].as_str(), i["impact_override"].as_str()), (Some("investigating"), Some("major")), "{i}");
    assert_eq!(i["component_ids"], serde_json::json!(["8kbf7d35c070"]), "Search has no Statuspage id: {i}");

    // The failed first request was sent again, unchanged.
    let seen = page.seen();
    assert_eq!(seen[0].answered, 500);
    assert_eq!((&seen[1].method, &seen[1].path, &seen[1].body), (&seen[0].method, &seen[0].path, &seen[0].body));
    assert_eq!(seen[1].answered, 200);
    println!("500 → the same request again: {} ms", seen[1].at_ms - seen[0].at_ms);

    // An update of the incident PATCHes the one Statuspage created.
    let v = wait_for("the incident in the API", || {
        let (_, v) = call(port, "GET", "/api/v1/incidents", None, "");
        v["incidents"].as_array()?.first().cloned()
    });
    let id = v["id"].as_str().unwrap();
    // The incident opened when the page alert fired (the evaluation that fired it).
    let fired = slo_agent::timefmt::parse_rfc3339(v["started_at"].as_str().unwrap());
    if let Ok(fired) = fired {
        println!(
            "page alert fired → Statuspage got the component's outage: {} ms, the incident: {} ms (after the first request's 500 and its retry)",
            outage.at_ms - fired,
            created.at_ms - fired
        );
    }
    let posted_at = slo_agent::clock::Clock::now_ms(&slo_agent::clock::SystemClock);
    let (s, b) = call(
        port,
        "POST",
        &format!("/api/v1/incidents/{id}/updates"),
        Some(INCIDENT_TOKEN),
        r#"{"status": "identified", "message": "A bad deploy; rolling back."}"#,
    );
    assert_eq!(s, 201, "{b}");
    let patched = page.wait_for("the incident updated", |s| s.method == "PATCH" && s.path.contains("/incidents/"));
    assert_eq!(patched.path, "/v1/pages/kctbh9vrtdwd/incidents/p31zjtct2jer");
    println!("incident update posted → Statuspage got the PATCH: {} ms", patched.at_ms - posted_at);
    let i = &patched.json()["incident"];
    assert_eq!((i["status"].as_str(), i["body"].as_str()), (Some("identified"), Some("A bad deploy; rolling back.")));

    let seen = page.seen();
    assert!(seen.iter().all(|s| s.header("authorization") == Some(&format!("OAuth {API_KEY}"))), "{seen:#?}");
    assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 1, "one incident created: {seen:#?}");
    assert!(seen.iter().all(|s| s.path.starts_with("/v1/pages/kctbh9vrtdwd/")), "{seen:#?}");

    let metrics = common::http_get(port, "/metrics").unwrap();
    let retried =
        common::metric(&metrics, "slo_agent_status_push_requests_total{kind=\"statuspage\",outcome=\"retried\"}");
    assert!(retried.is_some_and(|n| n >= 1.0), "{metrics}");
    let sent = common::metric(&metrics, "slo_agent_status_push_requests_total{kind=\"statuspage\",outcome=\"sent\"}");
    assert!(sent.is_some_and(|n| n >= 3.0), "{metrics}");
    assert!(metrics.contains("slo_agent_status_push_queue_depth{kind=\"statuspage\"}"), "{metrics}");
    assert!(!metrics.contains(API_KEY), "the key is never shown");
}

#[test]
fn the_webhook_gets_what_was_queued_before_a_kill_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout}\nspec:\n  service: checkout\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("hook.secret"), "s3cret").unwrap();
    std::fs::write(d.join("inc.token"), INCIDENT_TOKEN).unwrap();
    let page = FakePage::default();
    page.down.store(true, Ordering::SeqCst);
    let (hook_port, _hook_rt) = page.serve();
    let port = free_port();
    std::fs::write(
        d.join("agent.yaml"),
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\napi:\n  tokens:\n    - {{name: oncall, role: incident, token_file: inc.token}}\nstatus:\n  components:\n    - {{name: Checkout, service: checkout}}\n  push: {{kind: webhook, url: \"http://127.0.0.1:{hook_port}/status\", secret_file: hook.secret}}\nsources: []\n"
        ),
    )
    .unwrap();
    let agent = start(d, port);
    // The component's first state is tried (and refused with a 500)…
    let first = page.wait_for("the component's first state", |s| s.json()["type"] == "component");
    assert_eq!(first.answered, 500);
    let first_id = first.header("x-slo-agent-push-id").unwrap().to_string();
    // …and an incident opened meanwhile waits behind it.
    let (s, opened) = call(
        port,
        "POST",
        "/api/v1/incidents",
        Some(INCIDENT_TOKEN),
        r#"{"title": "Checkout errors", "services": ["checkout"], "impact": "minor", "message": "We are investigating."}"#,
    );
    assert_eq!(s, 201, "{opened}");
    drop(agent);

    page.down.store(false, Ordering::SeqCst);
    let _agent = start(d, port);
    let component = page.wait_for("the component delivered", |s| s.answered == 200 && s.json()["type"] == "component");
    assert_eq!(component.header("x-slo-agent-push-id"), Some(first_id.as_str()), "the same id after the restart");
    assert_eq!(component.body, first.body, "the same body after the restart");
    let b = component.json();
    assert_eq!(
        (b["version"].as_str(), b["component"].as_str(), b["status"].as_str()),
        (Some("1"), Some("Checkout"), Some("operational"))
    );
    let ts = component.header("x-slo-agent-timestamp").unwrap();
    let want =
        slo_agent::notify::webhook::signature(&slo_agent::secret::Secret::new("s3cret".into()), ts, &component.body);
    assert_eq!(component.header("x-slo-agent-signature"), Some(want.as_str()));

    let incident = page.wait_for("the incident delivered", |s| s.answered == 200 && s.json()["type"] == "incident");
    let b = incident.json();
    assert_eq!(b["incident"]["id"], opened["id"]);
    assert_eq!((b["incident"]["status"].as_str(), b["incident"]["updates"].as_u64()), (Some("investigating"), Some(1)));
    assert_eq!(b["incident"]["components"], serde_json::json!(["Checkout"]));
    assert_eq!(b["id"].as_str(), incident.header("x-slo-agent-push-id"));
    assert_ne!(b["id"].as_str(), Some(first_id.as_str()));

    // Nothing more: the component's state did not change, and what was delivered is not sent again.
    std::thread::sleep(Duration::from_millis(1500));
    let delivered: Vec<String> = page
        .seen()
        .iter()
        .filter(|s| s.answered == 200)
        .map(|s| s.header("x-slo-agent-push-id").unwrap().to_string())
        .collect();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
}
