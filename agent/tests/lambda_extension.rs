//! `lambda-extension` against a local HTTP server playing the Lambda Runtime
//! API (Extensions API + Telemetry API), the way the Lambda platform drives an
//! external extension: register, subscribe, telemetry batches pushed to the
//! subscribed destination, INVOKE, SHUTDOWN.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use slo_agent::lambda_extension::{ExtensionOptions, TELEMETRY_SCHEMA};

mod common;
use common::free_port;

#[derive(Default)]
struct Platform {
    calls: Vec<String>,
    destination: Option<String>,
    /// Events event/next hands out, in order.
    events: Vec<serde_json::Value>,
}

type Shared = Arc<(Mutex<Platform>, tokio::sync::Notify)>;

async fn register(State(p): State<Shared>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let name = headers.get("Lambda-Extension-Name").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    p.0.lock().unwrap().calls.push(format!("register {name} {}", v["events"]));
    (
        StatusCode::OK,
        [("Lambda-Extension-Identifier", "ext-1234")],
        r#"{"functionName":"pay","functionVersion":"$LATEST","handler":"index.handler"}"#,
    )
}

async fn subscribe(State(p): State<Shared>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let id = headers.get("Lambda-Extension-Identifier").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut g = p.0.lock().unwrap();
    g.calls.push(format!("subscribe {id} {} {}", v["schemaVersion"], v["types"]));
    g.destination = v["destination"]["URI"].as_str().map(str::to_string);
    drop(g);
    p.1.notify_waiters();
    (StatusCode::OK, "OK")
}

async fn next(State(p): State<Shared>, headers: HeaderMap) -> impl IntoResponse {
    let id = headers.get("Lambda-Extension-Identifier").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    loop {
        let notified = p.1.notified();
        {
            let mut g = p.0.lock().unwrap();
            if !g.events.is_empty() {
                let e = g.events.remove(0);
                g.calls.push(format!("next {id} {}", e["eventType"]));
                return (StatusCode::OK, e.to_string());
            }
        }
        notified.await;
    }
}

async fn init_error(State(p): State<Shared>, body: String) -> impl IntoResponse {
    p.0.lock().unwrap().calls.push(format!("init_error {body}"));
    (StatusCode::ACCEPTED, "")
}

#[test]
fn registers_subscribes_counts_telemetry_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: fn}\nspec:\n  service: pay\n  objective: 99\n  window: 7d\n  indicator:\n    source: lambda\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    let agent_port = free_port();
    std::fs::write(
        dir.path().join("agent.yaml"),
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{agent_port}\ntick: 100ms\nsources:\n  - name: telemetry\n    type: lambda-telemetry\n    service: pay\n"
        ),
    )
    .unwrap();
    let config = slo_agent::config::load(&dir.path().join("agent.yaml")).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let platform: Shared = Arc::new((Mutex::new(Platform::default()), tokio::sync::Notify::new()));
    let app = Router::new()
        .route("/2020-01-01/extension/register", post(register))
        .route("/2022-07-01/telemetry", put(subscribe))
        .route("/2020-01-01/extension/event/next", get(next))
        .route("/2020-01-01/extension/init/error", post(init_error))
        .with_state(platform.clone());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let api = listener.local_addr().unwrap().to_string();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let opts = ExtensionOptions { runtime_api: api, name: "slo-agent".into(), destination_host: "127.0.0.1".into() };
    let ext = rt.spawn(slo_agent::lambda_extension::run(config, opts));

    // The platform waits for the subscription, then pushes a batch.
    let destination = rt.block_on(async {
        for _ in 0..400 {
            if let Some(d) = platform.0.lock().unwrap().destination.clone() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no subscription: {:?}", platform.0.lock().unwrap().calls);
    });
    assert_eq!(destination, format!("http://127.0.0.1:{agent_port}/ingest/lambda-telemetry/telemetry"));
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5);
    let batch = serde_json::json!([
        {"time": t.to_string(), "type": "platform.report", "record": {"requestId": "a", "status": "success",
            "metrics": {"durationMs": 10.0, "billedDurationMs": 10, "memorySizeMB": 128, "maxMemoryUsedMB": 50}}},
        {"time": t.to_string(), "type": "platform.report", "record": {"requestId": "b", "status": "error",
            "metrics": {"durationMs": 12.0, "billedDurationMs": 12, "memorySizeMB": 128, "maxMemoryUsedMB": 50}}},
    ]);
    let client = reqwest::Client::new();
    let status = rt.block_on(async { client.post(&destination).json(&batch).send().await.unwrap().status() });
    assert_eq!(status, 200);
    {
        let mut g = platform.0.lock().unwrap();
        g.events.push(serde_json::json!({"eventType": "INVOKE", "deadlineMs": 0, "requestId": "a"}));
    }
    platform.1.notify_waiters();
    std::thread::sleep(Duration::from_millis(300));
    let totals = rt.block_on(async {
        let v: serde_json::Value = client
            .get(format!("http://127.0.0.1:{agent_port}/api/v1/slos/fn"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["events"]["total"].as_u64().unwrap(), v["events"]["good"].as_u64().unwrap())
    });
    assert_eq!(totals, (2, 1));

    // SHUTDOWN: the extension stops, the agent with it, state committed.
    platform.0.lock().unwrap().events.push(serde_json::json!({"eventType": "SHUTDOWN", "shutdownReason": "spindown"}));
    platform.1.notify_waiters();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), ext).await })
        .expect("the extension stops on SHUTDOWN")
        .unwrap()
        .unwrap();
    let calls = platform.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls,
        vec![
            r#"register slo-agent ["INVOKE","SHUTDOWN"]"#.to_string(),
            format!(r#"subscribe ext-1234 "{TELEMETRY_SCHEMA}" ["platform"]"#),
            r#"next ext-1234 "INVOKE""#.to_string(),
            r#"next ext-1234 "SHUTDOWN""#.to_string(),
        ]
    );
    // The counts were committed: a new agent on the same state sees them.
    let store = slo_agent::store::Store::open(&dir.path().join("state.redb")).unwrap();
    let set = slo_agent::spec::load_paths(&[dir.path().join("specs.yaml")]).unwrap();
    let mut engine = slo_agent::sli::Engine::new(&set, false);
    store.load_into(&mut engine, 0).unwrap();
    let s = engine.evaluate(t.as_millisecond() + 60_000);
    assert_eq!((s[0].window.events.total, s[0].window.events.good), (2, 1));
}

#[test]
fn a_config_without_a_telemetry_source_is_an_init_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: fn}\nspec:\n  service: pay\n  objective: 99\n  window: 7d\n  indicator:\n    source: lambda\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("agent.yaml"),
        format!("specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{}\nsources: []\n", free_port()),
    )
    .unwrap();
    let config = slo_agent::config::load(&dir.path().join("agent.yaml")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let platform: Shared = Arc::new((Mutex::new(Platform::default()), tokio::sync::Notify::new()));
    let app = Router::new()
        .route("/2020-01-01/extension/register", post(register))
        .route("/2020-01-01/extension/init/error", post(init_error))
        .with_state(platform.clone());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let api = listener.local_addr().unwrap().to_string();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let opts = ExtensionOptions { runtime_api: api, name: "slo-agent".into(), destination_host: "127.0.0.1".into() };
    let err = rt.block_on(slo_agent::lambda_extension::run(config, opts)).unwrap_err();
    assert!(format!("{err:#}").contains("exactly one source of type lambda-telemetry"), "{err:#}");
    let calls = platform.0.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].starts_with("init_error ") && calls[1].contains("Extension.Init"), "{calls:?}");
}
