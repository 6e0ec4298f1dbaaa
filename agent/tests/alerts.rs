//! The alert lifecycle in the running agent: an outage read from a log
//! fires the page alert (API, metrics), the state survives a restart without
//! a second episode, and the history keeps every change.

use std::time::Duration;

use slo_agent::clock::{Clock, SystemClock};

mod common;
use common::free_port;

const SPECS: &str = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n";

fn get(rt: &tokio::runtime::Runtime, url: String) -> String {
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

fn run_until<T>(rt: &tokio::runtime::Runtime, port: u16, mut f: impl FnMut(&serde_json::Value) -> Option<T>) -> T {
    for _ in 0..200 {
        let text = rt.block_on(async {
            match reqwest::get(format!("http://127.0.0.1:{port}/api/v1/alerts")).await {
                Ok(r) => r.text().await.ok(),
                Err(_) => None,
            }
        });
        if let Some(v) = text.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            && let Some(x) = f(&v)
        {
            return x;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting on /api/v1/alerts");
}

#[test]
fn an_outage_fires_the_page_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("specs.yaml"), SPECS).unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let port = free_port();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nalerts: {{min_events: 200, resolve_after: 5m}}\nsources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n"
        ),
    )
    .unwrap();
    // An hour of healthy traffic, then the last three minutes all 503.
    common::write_outage_log(&dir.path().join("logs/app.ndjson"), &["/"], SystemClock.now_ms());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop, task) = common::serve(&rt, &cfg);
    let page = run_until(&rt, port, |v| {
        v["alerts"].as_array()?.iter().find(|a| a["kind"] == "page" && a["phase"] == "firing").cloned()
    });
    assert_eq!(page["slo"], "shop");
    assert_eq!(page["episode"], 1);
    assert_eq!(page["trigger"]["windows"], "1h/5m");
    assert!(page["trigger"]["long_burn_rate"].as_f64().unwrap() > 14.4, "{page}");
    let metrics = get(&rt, format!("http://127.0.0.1:{port}/metrics"));
    assert!(metrics.contains(r#"slo_agent_alert_firing{slo="shop",service="shop",kind="page"} 1"#), "{metrics}");
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();

    // Restarted: the page is still firing, as episode 1; nothing new in the history.
    let (stop, task) = common::serve(&rt, &cfg);
    std::thread::sleep(Duration::from_millis(400));
    let v: serde_json::Value =
        serde_json::from_str(&get(&rt, format!("http://127.0.0.1:{port}/api/v1/alerts"))).unwrap();
    let page = v["alerts"].as_array().unwrap().iter().find(|a| a["kind"] == "page").unwrap();
    assert_eq!((page["phase"].as_str(), page["episode"].as_u64()), (Some("firing"), Some(1)));
    let fired: Vec<&serde_json::Value> =
        v["history"].as_array().unwrap().iter().filter(|t| t["kind"] == "page" && t["to"] == "firing").collect();
    assert_eq!(fired.len(), 1, "{v}");
    let bad = get(&rt, format!("http://127.0.0.1:{port}/api/v1/alerts?history=x"));
    assert!(bad.contains("`history` must be a whole number"), "{bad}");
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
}
