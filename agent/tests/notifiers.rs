//! Every notifier's requests, sent over real HTTP (reqwest) to a loopback
//! server that records what arrived: the path and query, the headers, and
//! the body, which must be the golden payload the unit tests check
//! (`tests/golden/notify/`). The webhook's signature is checked the way a
//! receiver would, with the secret.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use slo_agent::notify::{self, HttpRequest, Notification, ReceiverConfig, ReceiverKind, Status};
use slo_agent::secret::Secret;
use tokio::sync::mpsc;

/// What the server saw of one request.
#[derive(Debug)]
struct Received {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A loopback server that records every request and answers 202.
async fn recorder() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let tx = tx.clone();
        async move {
            let path_and_query = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            let _ = tx.send(Received { method, path_and_query, headers, body });
            (axum::http::StatusCode::ACCEPTED, "{}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

fn fixture(status: Status) -> Notification {
    let name = match status {
        Status::Firing => "notification-firing.json",
        Status::Resolved => "notification-resolved.json",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notify").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[path = "../src/testing/golden.rs"]
mod golden_files;

fn golden(name: &str) -> Value {
    golden_files::load_json(&format!("tests/golden/notify/{name}.json"))
}

fn receiver(kind: ReceiverKind) -> ReceiverConfig {
    ReceiverConfig { name: "oncall".into(), kind, timeout: Duration::from_secs(10) }
}

/// Send the one request `receiver` makes for `n`, and what arrived.
async fn deliver(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    receiver: &ReceiverConfig,
    n: &Notification,
) -> (HttpRequest, Received) {
    let mut requests = notify::requests(receiver, n);
    assert_eq!(requests.len(), 1, "{} sends one request", receiver.kind.as_str());
    let r = requests.remove(0);
    let client = reqwest::Client::builder().no_proxy().timeout(receiver.timeout).build().unwrap();
    let mut send = client.request(reqwest::Method::from_bytes(r.method.as_bytes()).unwrap(), &r.url);
    for (k, v) in &r.headers {
        send = send.header(k, v);
    }
    let answer = send.body(r.body.clone()).send().await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a request arrives").unwrap();
    assert_eq!(got.method.as_str(), r.method);
    // Every header the notifier set arrived once, as set.
    for (k, v) in &r.headers {
        let values: Vec<&str> = got.headers.get_all(k).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(values, [v.as_str()], "header {k}");
    }
    assert_eq!(&got.body[..], &r.body[..], "the body arrives byte for byte");
    (r, got)
}

fn json_body(got: &Received) -> Value {
    assert_eq!(got.headers["content-type"], "application/json");
    serde_json::from_slice(&got.body).unwrap()
}

#[tokio::test]
async fn pagerduty() {
    let (base, mut rx) = recorder().await;
    let rx = &mut rx;
    let pd = receiver(ReceiverKind::PagerDuty {
        url: format!("{base}/v2/enqueue"),
        routing_key: Secret::new("R0UT1NG".into()),
    });

    let (_, got) = deliver(rx, &pd, &fixture(Status::Firing)).await;
    assert_eq!(got.path_and_query, "/v2/enqueue");
    assert_eq!(json_body(&got), golden("pagerduty-trigger"));

    let (_, got) = deliver(rx, &pd, &fixture(Status::Resolved)).await;
    assert_eq!(got.path_and_query, "/v2/enqueue");
    assert_eq!(
        json_body(&got),
        json!({ "routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": "slo-agent/oncall/service=checkout/3" })
    );
}

#[tokio::test]
async fn opsgenie() {
    let (base, mut rx) = recorder().await;
    let rx = &mut rx;
    let og = receiver(ReceiverKind::Opsgenie { url: format!("{base}/"), api_key: Secret::new("k3y".into()) });

    let (_, got) = deliver(rx, &og, &fixture(Status::Firing)).await;
    assert_eq!(got.path_and_query, "/v2/alerts");
    assert_eq!(got.headers["authorization"], "GenieKey k3y");
    assert_eq!(json_body(&got), golden("opsgenie-create"));

    let (_, got) = deliver(rx, &og, &fixture(Status::Resolved)).await;
    // The alias stays one path segment on the wire.
    assert_eq!(got.path_and_query, "/v2/alerts/slo-agent%2Foncall%2Fservice%3Dcheckout%2F3/close?identifierType=alias");
    assert_eq!(got.headers["authorization"], "GenieKey k3y");
    assert_eq!(json_body(&got), golden("opsgenie-close"));
}

#[tokio::test]
async fn slack() {
    let (base, mut rx) = recorder().await;
    let rx = &mut rx;
    let hook = receiver(ReceiverKind::Slack { webhook_url: Secret::new(format!("{base}/services/T000/B000/XXXX")) });

    let (_, got) = deliver(rx, &hook, &fixture(Status::Firing)).await;
    assert_eq!(got.path_and_query, "/services/T000/B000/XXXX");
    assert_eq!(json_body(&got), golden("slack-firing"));

    let (_, got) = deliver(rx, &hook, &fixture(Status::Resolved)).await;
    assert_eq!(json_body(&got), golden("slack-resolved"));
}

#[tokio::test]
async fn webhook_signed_and_unsigned() {
    let (base, mut rx) = recorder().await;
    let rx = &mut rx;
    let secret = "s3cret";
    let signed = receiver(ReceiverKind::Webhook {
        url: format!("{base}/hooks/slo?team=payments"),
        secret: Some(Secret::new(secret.into())),
    });

    let n = fixture(Status::Firing);
    let (_, got) = deliver(rx, &signed, &n).await;
    assert_eq!(got.path_and_query, "/hooks/slo?team=payments");
    assert_eq!(got.headers["x-slo-agent-notification-id"], "oncall/42");
    assert_eq!(got.headers["x-slo-agent-timestamp"], "1714564860");
    // Verify as a receiver does: HMAC-SHA256 over "<timestamp>.<raw body>".
    let timestamp = got.headers["x-slo-agent-timestamp"].to_str().unwrap();
    let sig = got.headers["x-slo-agent-signature"].to_str().unwrap();
    let hex = sig.strip_prefix("sha256=").expect("sha256= prefix");
    let sig_bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&got.body);
    mac.verify_slice(&sig_bytes).expect("the signature verifies with the secret");
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"not the secret").unwrap();
    wrong.update(format!("{timestamp}.").as_bytes());
    wrong.update(&got.body);
    assert!(wrong.verify_slice(&sig_bytes).is_err());

    let body = json_body(&got);
    assert_eq!(body, golden("webhook-firing"));
    assert_eq!(body["version"], "1");
    let mut back = body.clone();
    back.as_object_mut().unwrap().shift_remove("version");
    assert_eq!(serde_json::from_value::<Notification>(back).unwrap(), n);

    let unsigned = receiver(ReceiverKind::Webhook { url: format!("{base}/hooks/slo"), secret: None });
    let (_, got) = deliver(rx, &unsigned, &fixture(Status::Resolved)).await;
    assert!(got.headers.get("x-slo-agent-signature").is_none());
    assert_eq!(got.headers["x-slo-agent-notification-id"], "oncall/43");
    assert_eq!(got.headers["x-slo-agent-timestamp"], "1714566660");
    assert_eq!(json_body(&got), golden("webhook-resolved"));
}

#[tokio::test]
async fn alertmanager() {
    let (base, mut rx) = recorder().await;
    let rx = &mut rx;
    let am = receiver(ReceiverKind::Alertmanager { url: base.clone(), bearer_token: Some(Secret::new("t0k".into())) });

    let (_, got) = deliver(rx, &am, &fixture(Status::Firing)).await;
    assert_eq!(got.path_and_query, "/api/v2/alerts");
    assert_eq!(got.headers["authorization"], "Bearer t0k");
    assert_eq!(json_body(&got), golden("alertmanager-firing"));

    let (_, got) = deliver(rx, &am, &fixture(Status::Resolved)).await;
    assert_eq!(json_body(&got), golden("alertmanager-resolved"));
}
