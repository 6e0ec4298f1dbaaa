//! The Alertmanager notifier against a real Alertmanager: a firing
//! notification shows up as active alerts with our labels and annotations,
//! and the resolved notification of the same group ends them.
//!
//! Needs `prometheus-alertmanager` (Debian) or `alertmanager` on PATH
//! (tests/run installs it). Without it the test fails when `CI=true` and
//! prints a loud skip message otherwise.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use slo_agent::clock::{Clock, SystemClock};
use slo_agent::notify::{self, Notification, ReceiverConfig, ReceiverKind, Status};

mod common;
use common::free_port;

/// An Alertmanager of this test's own (no clustering, a route to a receiver
/// that sends nothing), stopped on drop.
struct Alertmanager {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// `None` (after a loud message) when no Alertmanager is installed, outside CI.
    fn start() -> Option<Alertmanager> {
        let Some(bin) = ["prometheus-alertmanager", "alertmanager"].into_iter().find(|b| on_path(b)) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and no Alertmanager on PATH: tests/run installs prometheus-alertmanager"
            );
            eprintln!(
                "\n{0}\nSKIPPED: no `prometheus-alertmanager` or `alertmanager` on PATH.\nInstall it (Debian: apt-get install prometheus-alertmanager; tests/run does); in CI this is a failure.\n{0}\n",
                "*".repeat(72)
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("am.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} is on PATH but does not start: {e}"));
        let mut am = Alertmanager { child, url: format!("http://127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::http_get(port, "/-/ready").is_none() {
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!("{bin} exited at start ({status}):\n{}", am.log());
            }
            assert!(Instant::now() < deadline, "{bin} not ready within 30 s:\n{}", am.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(am)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The fixture notification, moved to now: fired ten minutes ago and, when
/// resolved, resolved a second ago.
fn notification(status: Status, now_ms: i64) -> Notification {
    let name = match status {
        Status::Firing => "notification-firing.json",
        Status::Resolved => "notification-resolved.json",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify").join(name);
    let mut n: Notification = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    n.created_ms = now_ms;
    for a in &mut n.alerts {
        a.firing_since_ms = now_ms - 600_000;
        if a.status == Status::Resolved {
            a.resolved_at_ms = Some(now_ms - 1_000);
        }
    }
    n
}

/// POST what the notifier makes for `n`.
async fn post(client: &reqwest::Client, receiver: &ReceiverConfig, n: &Notification) {
    for r in notify::requests(receiver, n) {
        let mut send = client.request(reqwest::Method::from_bytes(r.method.as_bytes()).unwrap(), &r.url);
        for (k, v) in &r.headers {
            send = send.header(k, v);
        }
        let answer = send.body(r.body).send().await.unwrap();
        let status = answer.status();
        assert!(
            status.is_success(),
            "Alertmanager refused the alerts: {status} {}",
            answer.text().await.unwrap_or_default()
        );
    }
}

/// Our alerts (label `team=payments`) as Alertmanager lists them.
async fn ours(client: &reqwest::Client, am: &Alertmanager) -> Vec<Value> {
    let url = format!("{}/api/v2/alerts?filter=team%3D%22payments%22", am.url);
    let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    v.as_array().unwrap().clone()
}

fn by_slo<'a>(alerts: &'a [Value], slo: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["labels"]["slo"] == slo)
}

#[tokio::test]
async fn alerts_fire_and_resolve_in_a_real_alertmanager() {
    let Some(am) = Alertmanager::start() else { return };
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let receiver = ReceiverConfig {
        name: "oncall".into(),
        kind: ReceiverKind::Alertmanager { url: format!("{}/", am.url), bearer_token: None },
        timeout: Duration::from_secs(10),
    };
    let now = SystemClock.now_ms();

    post(&client, &receiver, &notification(Status::Firing, now)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let alerts = ours(&client, &am).await;
        let active = alerts.iter().filter(|a| a["status"]["state"] == "active").count();
        if active == 2 {
            break alerts;
        }
        assert!(Instant::now() < deadline, "two active alerts expected, got {alerts:#?}\n{}", am.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let page = by_slo(&alerts, "checkout-availability").expect("the page alert is listed");
    assert_eq!(
        page["labels"],
        serde_json::json!({
            "alertname": "SLOBurnRate",
            "kind": "page",
            "service": "checkout",
            "severity": "page",
            "slo": "checkout-availability",
            "team": "payments",
        })
    );
    let ann = &page["annotations"];
    assert_eq!(
        ann["summary"],
        "checkout-availability (checkout): page, 1h/5m burn 15.2× (threshold 14.4), 62% budget left"
    );
    assert_eq!(ann["runbook_url"], "https://runbooks.example.com/checkout#availability");
    assert_eq!(ann["slo_api"], "https://slo.example.com/api/v1/slos/checkout-availability");
    assert!(ann["description"].as_str().unwrap().contains("Top routes: /cart/{id} (1203)"), "{ann:#?}");
    assert_eq!(page["generatorURL"], "https://slo.example.com/api/v1/slos/checkout-availability");
    let ticket = by_slo(&alerts, "checkout-latency").expect("the ticket alert is listed");
    assert_eq!(ticket["labels"]["alertname"], "SLOBurnRate");
    assert_eq!(ticket["labels"]["severity"], "ticket");
    assert!(ticket["annotations"].get("runbook_url").is_none());

    post(&client, &receiver, &notification(Status::Resolved, now + 1_000)).await;
    // Alertmanager lists only alerts that have not ended: both are gone, and
    // whatever is still listed (nothing, on 0.25) is not active.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = ours(&client, &am).await;
        if alerts.iter().all(|a| a["status"]["state"] != "active") {
            break;
        }
        assert!(Instant::now() < deadline, "alerts still active after the resolve: {alerts:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let active: Value = client
        .get(format!("{}/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false", am.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active, serde_json::json!([]));
}

/// The whole path: the running agent reads an outage from a log, fires, and
/// its dispatcher posts the alerts to the real Alertmanager, which lists
/// them as active within two seconds of the alert firing.
#[test]
fn the_agent_pages_through_a_real_alertmanager() {
    let Some(am) = Alertmanager::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("specs.yaml"),
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop, labels: {team: payments}}\nspec:\n  service: shop\n  objective: 99.9\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let port = free_port();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\nnotify:\n  receivers:\n    - {{name: am, type: alertmanager, url: \"{}\"}}\n  routes:\n    - {{receiver: am, match: {{severity: page}}}}\nsources:\n  - {{name: logs, type: file, paths: [\"logs/*.ndjson\"], format: ndjson}}\n",
            am.url
        ),
    )
    .unwrap();
    common::write_outage_log(&dir.path().join("logs/app.ndjson"), &["/cart"], SystemClock.now_ms());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop, task) = common::serve(&rt, &cfg);
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (page, seen_at) = loop {
        let alerts = rt.block_on(ours(&client, &am));
        if let Some(a) = alerts.iter().find(|a| a["labels"]["kind"] == "page" && a["status"]["state"] == "active") {
            break (a.clone(), SystemClock.now_ms());
        }
        assert!(Instant::now() < deadline, "no active page in Alertmanager: {alerts:#?}\n{}", am.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(page["labels"]["slo"], "shop");
    assert_eq!(page["labels"]["alertname"], "SLOBurnRate");
    assert_eq!(page["generatorURL"], format!("http://127.0.0.1:{port}/api/v1/slos/shop"));
    // When the agent's alert fired, from its API.
    let alerts: Value = serde_json::from_str(&common::http_get(port, "/api/v1/alerts").unwrap()).unwrap();
    let fired = alerts["alerts"].as_array().unwrap().iter().find(|a| a["kind"] == "page").unwrap()["firing_since_ms"]
        .as_i64()
        .unwrap();
    let latency = seen_at - fired;
    println!("alert fired → active in Alertmanager: {latency} ms (polled every 20 ms)");
    assert!(latency < 2000, "{latency} ms");
    // Tickets are not routed to it.
    let all = rt.block_on(ours(&client, &am));
    assert!(all.iter().all(|a| a["labels"]["severity"] == "page"), "{all:#?}");
    let _ = stop.send(());
    rt.block_on(task).unwrap().unwrap();
}
