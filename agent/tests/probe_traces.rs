//! The traces of the agent's own probes, through the running binary: each
//! run is one trace sent over OTLP/HTTP (protobuf) to a collector written
//! here, decoded with the OpenTelemetry protobuf types (not the agent's own
//! decoder), and each probed request carries an `X-Amzn-Trace-Id` of that
//! trace whose `Parent` is the hop's client span.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Seen = Arc<Mutex<Vec<String>>>;

struct Servers {
    target: u16,
    /// Every `X-Amzn-Trace-Id` the target was sent.
    headers: Seen,
    collector: u16,
    spans: Arc<Mutex<Vec<Span>>>,
    content_types: Seen,
}

/// The target (`/ok` 200, `/down` 503), keeping every `X-Amzn-Trace-Id`, and
/// the collector, keeping every span it is sent.
fn servers(rt: &tokio::runtime::Runtime) -> Servers {
    let headers: Seen = Arc::default();
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let content_types: Seen = Arc::default();
    let h = headers.clone();
    let target = axum::Router::new()
        .route(
            "/ok",
            axum::routing::get(move |m: axum::http::HeaderMap| {
                let h = h.clone();
                async move {
                    if let Some(v) = m.get("x-amzn-trace-id") {
                        h.lock().unwrap().push(v.to_str().unwrap().to_string());
                    }
                    "ok"
                }
            }),
        )
        .route("/down", axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }));
    let (s, c) = (spans.clone(), content_types.clone());
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |m: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (s, c) = (s.clone(), c.clone());
            async move {
                c.lock()
                    .unwrap()
                    .push(m.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default());
                let req = ExportTraceServiceRequest::decode(body).expect("a protobuf ExportTraceServiceRequest");
                for rs in req.resource_spans {
                    let resource = rs.resource.expect("a resource");
                    assert!(resource.attributes.iter().any(|a| a.key == "service.name"));
                    for ss in rs.scope_spans {
                        s.lock().unwrap().extend(ss.spans);
                    }
                }
                ""
            }
        }),
    );
    let serve = |app: axum::Router| {
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        port
    };
    Servers { target: serve(target), headers, collector: serve(collector), spans, content_types }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn each_probe_run_is_a_trace_and_its_requests_carry_it() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let Servers { target: tport, headers, collector: cport, spans, content_types } = servers(&rt);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("slos.yaml"), "").unwrap();
    let port = common::free_port();
    let config = format!(
        "specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 1s\nregion: eu-west-1\ntraces: {{endpoint: \"http://127.0.0.1:{cport}/v1/traces\", timeout: 5s}}\nprobes:\n  - name: storefront\n    interval: 1s\n    retries: 0\n    hops:\n      - {{name: edge, url: \"http://127.0.0.1:{tport}/ok\"}}\n      - {{name: origin, url: \"http://127.0.0.1:{tport}/down\"}}\njourneys:\n  - name: shop\n    interval: 10s\n    steps:\n      - {{name: home, request: {{url: \"http://127.0.0.1:{tport}/ok\"}}}}\n      - {{name: again, request: {{url: \"http://127.0.0.1:{tport}/ok\"}}}}\n"
    );
    std::fs::write(d.join("agent.yaml"), config).unwrap();
    let mut child = common::start(&d.join("agent.yaml"));
    let until = Instant::now() + Duration::from_secs(30);
    // Wait for one whole run: a root span and both hops' client spans of one trace.
    let (root, trace) = loop {
        let got = spans.lock().unwrap().clone();
        let whole = got.iter().filter(|s| s.name == "probe storefront").find(|root| {
            ["GET edge", "GET origin"].iter().all(|n| {
                got.iter().any(|s| s.name == *n && s.trace_id == root.trace_id && s.parent_span_id == root.span_id)
            })
        });
        if let Some(root) = whole {
            let trace: Vec<Span> = got.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect();
            break (root.clone(), trace);
        }
        assert!(Instant::now() < until, "no whole probe trace reached the collector: {got:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // And one whole journey run: its root and a client span per step.
    let journey = loop {
        let got = spans.lock().unwrap().clone();
        let whole = got.iter().filter(|s| s.name == "journey shop").find(|root| {
            ["GET home", "GET again"].iter().all(|n| {
                got.iter().any(|s| s.name == *n && s.trace_id == root.trace_id && s.parent_span_id == root.span_id)
            })
        });
        if let Some(root) = whole {
            break got.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect::<Vec<_>>();
        }
        assert!(Instant::now() < until, "no whole journey trace reached the collector: {got:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let metrics = common::http_get(port, "/metrics").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();

    assert!(content_types.lock().unwrap().iter().all(|c| c == "application/x-protobuf"));
    assert!(root.parent_span_id.is_empty());
    let client = |name: &str| trace.iter().find(|s| s.name == name).unwrap().clone();
    let (edge, origin) = (client("GET edge"), client("GET origin"));
    // SPAN_KIND_CLIENT is 3; status code 1 is OK and 2 is ERROR.
    assert_eq!((edge.kind, origin.kind), (3, 3));
    assert_eq!(edge.status.as_ref().unwrap().code, 1);
    let origin_status = origin.status.as_ref().unwrap();
    assert_eq!(origin_status.code, 2);
    assert!(origin_status.message.contains("503"), "{origin_status:?}");
    let attr = |s: &Span, k: &str| {
        s.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value)
            .map(|v| format!("{v:?}"))
    };
    assert!(attr(&origin, "http.response.status_code").unwrap().contains("503"));
    assert!(attr(&edge, "url.full").unwrap().contains(&format!("127.0.0.1:{tport}/ok")));
    // The phases are children of the hop's span, inside it, end to end.
    let phases: Vec<&Span> = trace.iter().filter(|s| s.parent_span_id == edge.span_id).collect();
    let names: Vec<&str> = phases.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"connect") && names.contains(&"processing"), "{names:?}");
    for p in &phases {
        assert!(
            p.start_time_unix_nano >= edge.start_time_unix_nano
                && p.end_time_unix_nano <= edge.end_time_unix_nano + 1_000_000,
            "{p:?} outside {edge:?}"
        );
    }
    assert!(
        root.start_time_unix_nano <= edge.start_time_unix_nano && root.end_time_unix_nano >= edge.end_time_unix_nano
    );
    // The request to the edge carried this trace, with the edge's client span as parent.
    let t = hex(&root.trace_id);
    let want = format!("Root=1-{}-{};Parent={};Sampled=1", &t[..8], &t[8..], hex(&edge.span_id));
    assert!(headers.lock().unwrap().contains(&want), "{want} not among {:?}", headers.lock().unwrap());
    assert!(metrics.contains("slo_agent_trace_spans_exported_total"), "{metrics}");
    // The journey's steps ran one after the other, each request carrying its own span.
    let (home, again) = (
        journey.iter().find(|s| s.name == "GET home").unwrap(),
        journey.iter().find(|s| s.name == "GET again").unwrap(),
    );
    assert!(home.end_time_unix_nano <= again.start_time_unix_nano + 1_000_000, "{home:?} {again:?}");
    let t = hex(&home.trace_id);
    let want = format!("Root=1-{}-{};Parent={};Sampled=1", &t[..8], &t[8..], hex(&again.span_id));
    assert!(headers.lock().unwrap().contains(&want), "{want} not among {:?}", headers.lock().unwrap());
}
