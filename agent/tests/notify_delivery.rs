//! Notification delivery in the running agent, against a real HTTP receiver
//! on loopback: alert → notification latency, grouping, and delivery that
//! loses nothing while the receiver is down and the agent restarts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slo_agent::clock::{Clock, SystemClock};

mod common;
use common::free_port;

fn spec(name: &str, path: &str) -> String {
    format!(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}, labels: {{team: payments}}}}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    filter: {{path: \"{path}\"}}\n    good: {{status: \"< 500\"}}\n  alerting:\n    page: {{runbook: \"https://runbooks.example/{name}\"}}\n"
    )
}

/// A notification as the receiver got it, and when.
#[derive(Debug, Clone)]
struct Received {
    at_ms: i64,
    id: String,
    body: serde_json::Value,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on `addr` that keeps what it gets. Aborting its task
/// closes the port (the agent's sends then fail to connect).
fn receiver(rt: &tokio::runtime::Runtime, addr: SocketAddr, inbox: Inbox) -> tokio::task::JoinHandle<()> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let inbox = inbox.clone();
            async move {
                let id =
                    headers.get("x-slo-agent-notification-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                inbox.lock().unwrap().push(Received { at_ms: SystemClock.now_ms(), id, body });
                "ok"
            }
        }),
    );
    let listener = rt.block_on(async {
        for _ in 0..100 {
            if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot bind the receiver to {addr}");
    });
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every alert change in the inbox: (dedup key, status) in arrival order,
/// counting an alert only where it changed (notifications also list what
/// still fires).
fn changes(inbox: &Inbox) -> Vec<(String, String)> {
    let mut told: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for r in inbox.lock().unwrap().iter() {
        for a in r.body["alerts"].as_array().cloned().unwrap_or_default() {
            let key = a["dedup_key"].as_str().unwrap().to_string();
            let status = a["status"].as_str().unwrap().to_string();
            if told.get(&key) != Some(&status) {
                told.insert(key.clone(), status.clone());
                out.push((key, status));
            }
        }
    }
    out
}

#[test]
fn notifications_arrive_once_in_order_through_an_outage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs.yaml");
    std::fs::write(&specs, format!("{}---\n{}", spec("shop-cart", "/cart"), spec("shop-pay", "/pay"))).unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let port = free_port();
    let hook_port = free_port();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nalerts: {{min_events: 100, resolve_after: 5m}}\nnotify:\n  receivers:\n    - {{name: hook, type: webhook, url: \"http://127.0.0.1:{hook_port}/hook\"}}\n  routes:\n    - {{receiver: hook, group_by: [service], group_interval: 1s}}\nsources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n"
        ),
    )
    .unwrap();
    // An hour of traffic on both paths; the last three minutes all 503.
    common::write_outage_log(&dir.path().join("logs/app.ndjson"), &["/cart", "/pay"], SystemClock.now_ms());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let inbox: Inbox = Arc::default();
    let hook_addr: SocketAddr = format!("127.0.0.1:{hook_port}").parse().unwrap();
    let server = receiver(&rt, hook_addr, inbox.clone());
    let (stop, task) = common::serve(&rt, &cfg);

    // Both SLOs page (and more): one grouped notification for the service.
    let first = wait_for("the first notification", Duration::from_secs(30), || inbox.lock().unwrap().first().cloned());
    let n = &first.body;
    assert_eq!(n["status"], "firing", "{n}");
    assert_eq!(n["group_labels"]["service"], "shop");
    let alerts = n["alerts"].as_array().unwrap();
    let slos: std::collections::BTreeSet<&str> = alerts.iter().map(|a| a["slo"].as_str().unwrap()).collect();
    assert_eq!(slos.into_iter().collect::<Vec<_>>(), ["shop-cart", "shop-pay"], "grouped: {n}");
    let page = alerts.iter().find(|a| a["slo"] == "shop-cart" && a["kind"] == "page").expect("a page");
    assert_eq!(page["runbook"], "https://runbooks.example/shop-cart");
    assert_eq!(page["labels"]["team"], "payments");
    assert_eq!(page["api_url"], format!("http://127.0.0.1:{port}/api/v1/slos/shop-cart"));
    assert_eq!(page["trigger"]["windows"], "1h/5m");
    let ev = &page["evidence"];
    assert_eq!(ev["top_routes"][0][0], "/cart", "{ev}");
    assert_eq!(ev["top_edge_locations"][0][0], "IAD89-C1", "{ev}");
    assert_eq!(ev["top_status_codes"][0][0], "503", "{ev}");
    assert!(!ev["samples"].as_array().unwrap().is_empty(), "{ev}");
    // Alert raised → notification accepted by the receiver.
    let fired_at = alerts.iter().map(|a| a["firing_since_ms"].as_i64().unwrap()).max().unwrap();
    let latency_ms = first.at_ms - fired_at;
    println!("alert → notification latency: {latency_ms} ms");
    assert!(latency_ms < 2000, "latency {latency_ms} ms");
    // The dispatcher counts a send once the receiver's answer is back: shortly after the receiver saw it.
    let sent = r#"slo_agent_notifications_total{receiver="hook",kind="webhook",result="sent"} 1"#;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let metrics = loop {
        let m = common::http_get(port, "/metrics").unwrap();
        if m.contains(sent) || std::time::Instant::now() > until {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(metrics.contains(sent), "{metrics}");
    assert!(metrics.contains("slo_agent_slo_top_failures{"), "{metrics}");
    let firing_keys: Vec<String> = changes(&inbox).into_iter().map(|(k, _)| k).collect();
    assert!(firing_keys.len() >= 4, "{firing_keys:?}");

    // The receiver goes away. shop-pay is removed: its alerts resolve, and
    // cannot be delivered.
    server.abort();
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    std::fs::write(&specs, spec("shop-cart", "/cart")).unwrap();
    wait_for("the resolves to be retried", Duration::from_secs(30), || {
        let m = common::http_get(port, "/metrics")?;
        let retried =
            common::metric(&m, r#"slo_agent_notifications_total{receiver="hook",kind="webhook",result="retried"}"#)?;
        (retried >= 2.0).then_some(())
    });
    // The agent restarts while the receiver is still down.
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
    let (stop, task) = common::serve(&rt, &cfg);
    wait_for("the agent to serve again", Duration::from_secs(10), || common::http_get(port, "/readyz"));
    let m = common::http_get(port, "/metrics").unwrap();
    // The gauge may read 0 until the restarted dispatcher's first pass (a
    // loaded machine): wait for the resolves to show, within the timeout.
    let depth = wait_for("the resolves to wait in the outbox", Duration::from_secs(10), || {
        common::metric(
            &common::http_get(port, "/metrics")?,
            r#"slo_agent_notify_outbox_depth{receiver="hook",kind="webhook"}"#,
        )
        .filter(|d| *d >= 1.0)
    });
    assert!(depth >= 1.0, "the resolves wait in the outbox: {m}");
    // shop-cart goes too, still during the outage.
    std::fs::write(&specs, spec("shop-search", "/search")).unwrap();
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });

    // The receiver returns: everything arrives, once, in order.
    let _server = receiver(&rt, hook_addr, inbox.clone());
    let all = wait_for("every resolve", Duration::from_secs(60), || {
        let c = changes(&inbox);
        let resolved = c.iter().filter(|(_, s)| s == "resolved").count();
        (resolved == firing_keys.len()).then_some(c)
    });
    for key in &firing_keys {
        let seen: Vec<&str> = all.iter().filter(|(k, _)| k == key).map(|(_, s)| s.as_str()).collect();
        assert_eq!(seen, ["firing", "resolved"], "{key}");
    }
    let ids: Vec<String> = inbox.lock().unwrap().iter().map(|r| r.id.clone()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no notification twice");
    let last = inbox.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.body["status"], "resolved", "{}", last.body);
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    let m = common::http_get(port, "/metrics").unwrap();
    assert_eq!(
        common::metric(&m, r#"slo_agent_notify_outbox_depth{receiver="hook",kind="webhook"}"#),
        Some(0.0),
        "{m}"
    );
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
}

/// A receiver that refuses the message itself (400) is not retried: the
/// notification moves to the failed table, visible in the API and metrics.
#[test]
fn a_refused_notification_is_kept_as_failed_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("specs.yaml"), spec("shop-cart", "/cart")).unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let (port, hook_port) = (free_port(), free_port());
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nnotify:\n  external_url: https://slo.example.com/\n  receivers:\n    - {{name: picky, type: webhook, url: \"http://127.0.0.1:{hook_port}/hook\"}}\n  routes:\n    - {{receiver: picky, match: {{kind: page}}}}\nsources:\n  - {{name: logs, type: file, paths: [\"logs/*.ndjson\"], format: ndjson}}\n"
        ),
    )
    .unwrap();
    common::write_outage_log(&dir.path().join("logs/app.ndjson"), &["/cart"], SystemClock.now_ms());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hits = Arc::new(Mutex::new(0u32));
    let h2 = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let hits = h2.clone();
            async move {
                *hits.lock().unwrap() += 1;
                (axum::http::StatusCode::BAD_REQUEST, "{\"error\":\"unknown schema\"}")
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", hook_port))).unwrap();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (stop, task) = common::serve(&rt, &cfg);
    let failed = wait_for("the failed notification", Duration::from_secs(30), || {
        let v: serde_json::Value = serde_json::from_str(&common::http_get(port, "/api/v1/notifications")?).ok()?;
        let f = v["failed"].as_array()?.first()?.clone();
        Some((v, f))
    });
    let (v, f) = failed;
    assert_eq!(f["entry"]["receiver"], "picky");
    assert_eq!(f["entry"]["notice"]["kind"], "page");
    assert_eq!(f["entry"]["notice"]["api_url"], "https://slo.example.com/api/v1/slos/shop-cart");
    assert!(f["reason"].as_str().unwrap().contains("HTTP 400: {\"error\":\"unknown schema\"}"), "{f}");
    assert_eq!(v["receivers"][0]["failed"], 1, "{v}");
    assert_eq!(v["receivers"][0]["retried"], 0, "{v}");
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    assert_eq!(*hits.lock().unwrap(), 1, "a refusal is not retried");
    let bad = rt.block_on(async {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/notifications?failed=x")).await.unwrap();
        assert_eq!(r.status(), 400);
        r.text().await.unwrap()
    });
    assert!(bad.contains("`failed` must be a whole number"), "{bad}");
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
}

/// A silence made through the API holds back its alerts' notifications;
/// expiring it while they still fire tells the receiver then.
#[test]
fn a_silence_holds_notifications_back_until_it_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("specs.yaml"),
        format!("{}---\n{}", spec("shop-cart", "/cart"), spec("shop-pay", "/pay")),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("token"), "silencer-token-0123456789\n").unwrap();
    let (port, hook_port) = (free_port(), free_port());
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\napi:\n  tokens:\n    - {{name: oncall, role: silence, token_file: token}}\nnotify:\n  receivers:\n    - {{name: hook, type: webhook, url: \"http://127.0.0.1:{hook_port}/hook\"}}\n  routes:\n    - {{receiver: hook, group_by: [slo], group_interval: 1s}}\nsources:\n  - {{name: logs, type: file, paths: [\"logs/*.ndjson\"], format: ndjson}}\n"
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let inbox: Inbox = Arc::default();
    let _server = receiver(&rt, format!("127.0.0.1:{hook_port}").parse().unwrap(), inbox.clone());
    let (stop, task) = common::serve(&rt, &cfg);
    wait_for("the agent", Duration::from_secs(10), || common::http_get(port, "/readyz"));
    let client = reqwest::Client::new();
    let silence: serde_json::Value = rt.block_on(async {
        let r = client
            .post(format!("http://127.0.0.1:{port}/api/v1/silences"))
            .bearer_auth("silencer-token-0123456789")
            .json(&serde_json::json!({"matchers": ["slo=shop-cart"], "duration": "1h", "comment": "deploying a fix"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    });
    // Now the outage arrives.
    common::write_outage_log(&dir.path().join("logs/app.ndjson"), &["/cart", "/pay"], SystemClock.now_ms());
    wait_for("shop-pay's notification", Duration::from_secs(30), || {
        inbox.lock().unwrap().iter().any(|r| r.body["group_labels"]["slo"] == "shop-pay").then_some(())
    });
    let silenced = wait_for("silenced changes counted", Duration::from_secs(10), || {
        let m = common::http_get(port, "/metrics")?;
        common::metric(&m, r#"slo_agent_notifications_total{receiver="hook",kind="webhook",result="silenced"}"#)
            .filter(|n| *n >= 1.0)
    });
    assert!(silenced >= 1.0);
    assert!(!inbox.lock().unwrap().iter().any(|r| r.body["group_labels"]["slo"] == "shop-cart"), "silenced");
    // The alerts still fire in the API: only the notification is held back.
    let alerts = common::http_get(port, "/api/v1/alerts").unwrap();
    assert!(alerts.contains(r#""slo":"shop-cart""#), "{alerts}");

    rt.block_on(async {
        let r = client
            .delete(format!("http://127.0.0.1:{port}/api/v1/silences/{}", silence["id"].as_str().unwrap()))
            .bearer_auth("silencer-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    let n = wait_for("shop-cart's notification after the silence", Duration::from_secs(20), || {
        inbox.lock().unwrap().iter().find(|r| r.body["group_labels"]["slo"] == "shop-cart").cloned()
    });
    assert_eq!(n.body["status"], "firing");
    assert!(n.body["alerts"].as_array().unwrap().iter().all(|a| a["status"] == "firing"));
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
}
