//! The reader against a local query API: what it sends (POSTed forms, the
//! token, the tenant header) and what each kind of failure becomes.

use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};

use super::*;
use crate::freeze::fleet::Target;
use crate::spec::model::Minutes;

/// What the fake query API answers, and the requests it saw (headers, query).
#[derive(Default)]
struct Fake {
    answer: Mutex<(u16, String)>,
    delay: Mutex<Duration>,
    seen: Mutex<Vec<(HeaderMap, String)>>,
}

async fn serve(fake: Arc<Fake>) -> String {
    let app = axum::Router::new().route(
        "/prefix/api/v1/query",
        axum::routing::post(|axum::extract::State(f): axum::extract::State<Arc<Fake>>, headers: HeaderMap, body: String| async move {
            let query = reqwest::Url::parse(&format!("form:?{body}"))
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            f.seen.lock().unwrap().push((headers, query));
            let delay = *f.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let (status, body) = f.answer.lock().unwrap().clone();
            (StatusCode::from_u16(status).unwrap(), body)
        }),
    )
    .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/prefix")
}

fn config(url: String, token: Option<PathBuf>) -> PrometheusConfig {
    PrometheusConfig {
        url,
        bearer_token_file: token,
        headers: vec![("X-Scope-OrgID".into(), "tenant-1".into())],
        timeout: Duration::from_millis(500),
        interval: Duration::from_secs(1),
    }
}

fn targets() -> Vec<Target> {
    vec![Target { slo: "a".into(), service: "s".into(), id: "s-a".into(), period: Minutes(40320) }]
}

const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

#[tokio::test]
async fn every_query_is_posted_with_the_token_and_headers() {
    let fake = Arc::new(Fake::default());
    *fake.answer.lock().unwrap() = (200, EMPTY.into());
    let url = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let reader = PrometheusReader::new(config(url, Some(token.clone()))).unwrap();
    let f = reader.read(&targets(), 7).await.unwrap();
    assert_eq!(f.read_at_ms, 7);
    assert_eq!(f.slos["a"], Default::default(), "no series: no events, not an error");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "one query per figure");
    for (headers, _) in &seen {
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(headers["x-scope-orgid"], "tenant-1");
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    }
    assert_eq!(seen[0].1, r#"slo:period_error_budget_remaining:ratio{sloth_id=~"s-a"}"#);
    // A rotated token is read at the next reading.
    std::fs::write(&token, "rotated").unwrap();
    reader.read(&targets(), 8).await.unwrap();
    assert_eq!(fake.seen.lock().unwrap().last().unwrap().0["authorization"], "Bearer rotated");
    std::fs::write(&token, "").unwrap();
    assert_eq!(reader.read(&targets(), 9).await.unwrap_err().kind(), "token");
}

#[tokio::test]
async fn failures_are_errors_of_their_kind() {
    let fake = Arc::new(Fake::default());
    let url = serve(fake.clone()).await;
    let reader = PrometheusReader::new(config(url.clone(), None)).unwrap();
    let fail = |status: u16, body: &str| {
        *fake.answer.lock().unwrap() = (status, body.to_string());
    };

    fail(503, "overloaded");
    let e = reader.read(&targets(), 1).await.unwrap_err();
    assert_eq!(e.kind(), "http_status");
    assert!(e.to_string().starts_with("HTTP 503 from http://127.0.0.1:"), "{e}");
    assert!(e.to_string().ends_with("/prefix/api/v1/query: overloaded"), "{e}");

    fail(400, r#"{"status":"error","errorType":"bad_data","error":"unknown function"}"#);
    let e = reader.read(&targets(), 1).await.unwrap_err();
    assert_eq!(e.kind(), "bad_answer");
    assert!(e.to_string().ends_with("the query failed (bad_data): unknown function"), "{e}");

    fail(200, "{\"status\":");
    assert_eq!(reader.read(&targets(), 1).await.unwrap_err().kind(), "bad_answer");

    // 32 MiB through a debug build on a busy machine can take longer than
    // the 500 ms the timeout check below needs: this reader waits longer.
    fail(200, &" ".repeat(MAX_ANSWER_BYTES + 1));
    let patient =
        PrometheusReader::new(PrometheusConfig { timeout: Duration::from_secs(30), ..config(url, None) }).unwrap();
    let e = patient.read(&targets(), 1).await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");

    fail(200, EMPTY);
    *fake.delay.lock().unwrap() = Duration::from_secs(2);
    let e = reader.read(&targets(), 1).await.unwrap_err();
    assert_eq!(e, ReadError::Timeout(Duration::from_millis(500)));

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", nobody.local_addr().unwrap());
    drop(nobody);
    let e = PrometheusReader::new(config(url, None)).unwrap().read(&targets(), 1).await.unwrap_err();
    assert_eq!(e.kind(), "unreachable");
}

/// The task publishes good figures, then keeps them while readings fail,
/// with the error beside them, and counts each failure.
#[tokio::test]
async fn the_task_keeps_the_last_figures_and_counts_failures() {
    let fake = Arc::new(Fake::default());
    *fake.answer.lock().unwrap() = (200, EMPTY.into());
    let url = serve(fake.clone()).await;
    let reader = PrometheusReader::new(config(url, None)).unwrap();
    let (_targets_tx, targets_rx) = tokio::sync::watch::channel(Arc::new(targets()));
    let (tx, mut rx) = tokio::sync::watch::channel(Reading::default());
    let telemetry = Arc::new(Telemetry::default());
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(1_000));
    let task = tokio::spawn(run(reader, Duration::from_millis(100), targets_rx, tx, clock, telemetry.clone()));
    rx.changed().await.unwrap();
    let first = rx.borrow_and_update().clone();
    assert!(first.error.is_none());
    assert_eq!(first.figures.as_ref().unwrap().read_at_ms, 1_000);
    *fake.answer.lock().unwrap() = (500, "boom".into());
    rx.changed().await.unwrap();
    let failed = rx.borrow_and_update().clone();
    assert!(failed.error.as_deref().unwrap().starts_with("HTTP 500"), "{failed:?}");
    assert!(failed.figures.is_some(), "the last good figures are kept");
    assert!(telemetry.sum(&ev::FREEZE_SOURCE_ERRORS, &[("kind", "http_status")]) >= 1.0);
    *fake.answer.lock().unwrap() = (200, EMPTY.into());
    loop {
        rx.changed().await.unwrap();
        if rx.borrow_and_update().error.is_none() {
            break;
        }
    }
    task.abort();
}
