//! OTLP metrics export (`export.otlp`), through the running binary, to real
//! receivers on loopback: an OTLP/HTTP one (`POST /v1/metrics`, protobuf)
//! and the official OTLP/gRPC `MetricsService` served by tonic, both
//! decoding with the OpenTelemetry protobuf types, not the agent's code.
//!
//! The log's events are 3 h 10 min to 4 h 10 min old, so every figure the
//! agent computes (counts, budget, the burn rates of the 6 h, 1 d and 3 d
//! windows) stays the same while a test runs, and what a receiver got can
//! be compared with `/metrics` exactly.

mod common;
use common::Agent;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, metric, number_data_point};
use prost::Message;

const SLO: &str = "shop-availability";
/// `AGGREGATION_TEMPORALITY_DELTA` and `_CUMULATIVE` of the OTLP protocol.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// One export as a receiver got it: its headers (gRPC metadata) and body.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    request: ExportMetricsServiceRequest,
}

type Got = Arc<Mutex<Vec<Received>>>;

fn now_ms() -> i64 {
    use slo_agent::clock::Clock;
    slo_agent::clock::SystemClock.now_ms()
}

/// NDJSON lines of service `shop`, `per_minute` a minute from 250 to 190
/// minutes ago, every tenth one a 503 when `with_bad`.
fn write_log(path: &Path, per_minute: i64, with_bad: bool, append: bool) {
    let f = std::fs::OpenOptions::new().create(true).append(append).write(true).truncate(!append).open(path).unwrap();
    let mut log = std::io::BufWriter::new(f);
    let now = now_ms();
    for m in 190..250 {
        for i in 0..per_minute {
            let status = if with_bad && i % 10 == 0 { 503 } else { 200 };
            let ts = now - m * 60_000 - i * 100 - if append { 50 } else { 0 };
            writeln!(log, r#"{{"ts":{ts},"service":"shop","path":"/cart","status":{status}}}"#).unwrap();
        }
    }
    log.flush().unwrap();
}

/// The agent's config: the log as a file source, then `export`.
fn agent_config(dir: &Path, port: u16, export: &str) -> std::path::PathBuf {
    let sources = format!(
        "sources:\n  - {{name: app, type: file, paths: [\"{}\"], format: ndjson}}\nexport:\n  otlp:\n{export}",
        dir.join("app.log").display()
    );
    common::write_agent_config(dir, port, &sources)
}

/// `slo-agent run` with only the environment given (and quiet logs).
fn start(config: &Path, env: &[(&str, String)]) -> Child {
    let mut c = Command::new(common::bin());
    c.args(["run", "--config"]).arg(config).env_clear().env("SLO_AGENT_LOG", "error");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The value of the sample of `/metrics` named `name` with all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn text(v: &Option<AnyValue>) -> Option<String> {
    match v.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attributes(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter().filter_map(|kv| Some((kv.key.clone(), text(&kv.value)?))).collect()
}

fn metrics(r: &ExportMetricsServiceRequest) -> Vec<Metric> {
    r.resource_metrics.iter().flat_map(|rm| rm.scope_metrics.iter().flat_map(|s| s.metrics.clone())).collect()
}

/// The data point of `name` whose attributes include `labels`, in one request.
fn point(r: &ExportMetricsServiceRequest, name: &str, labels: &[(&str, &str)]) -> Option<(NumberDataPoint, Metric)> {
    let m = metrics(r).into_iter().find(|m| m.name == name)?;
    let points = match m.data.as_ref()? {
        metric::Data::Sum(s) => &s.data_points,
        metric::Data::Gauge(g) => &g.data_points,
        _ => return None,
    };
    let p = points
        .iter()
        .find(|p| {
            let a = attributes(&p.attributes);
            labels.iter().all(|(k, v)| a.iter().any(|(ak, av)| ak == k && av == v))
        })?
        .clone();
    Some((p, m))
}

fn value(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        Some(number_data_point::Value::AsDouble(d)) => d,
        None => f64::NAN,
    }
}

/// The events counted for the SLO in one request, if it carries them.
fn events(r: &ExportMetricsServiceRequest, name: &str) -> Option<f64> {
    point(r, name, &[("slo", SLO)]).map(|(p, _)| value(&p))
}

/// An OTLP/HTTP receiver on loopback, keeping every export.
fn http_receiver(rt: &tokio::runtime::Runtime) -> (u16, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/v1/metrics",
        axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let body = if h.get("content-encoding").is_some_and(|v| v == "gzip") {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out).unwrap();
                    out
                } else {
                    body.to_vec()
                };
                let request =
                    ExportMetricsServiceRequest::decode(&body[..]).expect("a protobuf ExportMetricsServiceRequest");
                let headers =
                    h.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
                g.lock().unwrap().push(Received { headers, request });
                let answer = ExportMetricsServiceResponse::default().encode_to_vec();
                ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], answer)
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, got)
}

struct GrpcReceiver(Got);

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        self.0.lock().unwrap().push(Received { headers, request: request.into_inner() });
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The official OTLP/gRPC metrics service on loopback, keeping every
/// export; over TLS with `tls` (certificate chain and key, PEM).
fn grpc_receiver(rt: &tokio::runtime::Runtime, tls: Option<(&str, &str)>) -> (u16, Got) {
    let got: Got = Arc::default();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = MetricsServiceServer::new(GrpcReceiver(got.clone()));
    let mut server = tonic::transport::Server::builder();
    if let Some((chain, key)) = tls {
        // Builds with the `aws` feature link both of rustls's providers
        // (the AWS SDK brings aws-lc-rs): tonic's server then needs a default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let identity = tonic::transport::Identity::from_pem(chain, key);
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).unwrap();
    }
    rt.spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = server.add_service(service).serve_with_incoming(incoming).await;
    });
    (port, got)
}

/// Wait (at most 60 s) until `ready` holds; `what` says what did not happen.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// Cumulative OTLP/HTTP (gzip): the same names and values as `/metrics`,
/// the resource says where the agent runs, the headers arrive.
#[test]
fn http_export_carries_the_figures_of_metrics_with_the_resource_and_headers() {
    let rt = runtime();
    let (rport, got) = http_receiver(&rt);
    let dir = tempfile::tempdir().unwrap();
    write_log(&dir.path().join("app.log"), 10, true, false);
    let port = common::free_port();
    let config = agent_config(
        dir.path(),
        port,
        &format!(
            "    endpoint: http://127.0.0.1:{rport}\n    interval: 1s\n    timeout: 5s\n    compression: gzip\n    headers: {{authorization_env: OTLP_TEST_AUTH, X-Scope-OrgID: tenant-1}}\n    resource: {{deployment.environment.name: test}}\n"
        ),
    );
    let _agent = Agent(start(
        &config,
        &[
            ("OTLP_TEST_AUTH", "Bearer otlp-test-token-1234".into()),
            ("K8S_POD_NAME", "slo-agent-0".into()),
            ("K8S_NAMESPACE_NAME", "shop".into()),
            ("K8S_NODE_NAME", "node-a".into()),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=sre,deployment.environment.name=overridden".into()),
        ],
    ));
    wait_for("600 events in /metrics", || {
        common::http_get(port, "/metrics")
            .and_then(|m| sample(&m, "slo_agent_slo_events_total", &[("slo", SLO)]))
            .is_some_and(|v| v == 600.0)
    });
    let mark = got.lock().unwrap().len();
    // Three exports after every event was counted (the first may have been on its way).
    wait_for("three exports after the counting", || got.lock().unwrap().len() >= mark + 3);
    let text = common::http_get(port, "/metrics").unwrap();
    let all = got.lock().unwrap().clone();
    let (a, b) = (&all[all.len() - 2].request, &all[all.len() - 1].request);

    // Headers and the resource.
    let last = &all[all.len() - 1];
    assert_eq!(header(last, "content-type"), Some("application/x-protobuf"));
    assert_eq!(header(last, "content-encoding"), Some("gzip"));
    assert_eq!(header(last, "authorization"), Some("Bearer otlp-test-token-1234"));
    assert_eq!(header(last, "x-scope-orgid"), Some("tenant-1"));
    let resource = attributes(&b.resource_metrics[0].resource.as_ref().unwrap().attributes);
    let attr = |k: &str| resource.iter().find(|(rk, _)| rk == k).map(|(_, v)| v.as_str());
    assert_eq!(attr("service.name"), Some("slo-agent"));
    assert_eq!(attr("service.version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(attr("service.instance.id"), Some("slo-agent-0"));
    assert_eq!(attr("cloud.provider"), Some("aws"));
    assert_eq!(attr("cloud.region"), Some("eu-test-1"));
    assert_eq!(attr("k8s.pod.name"), Some("slo-agent-0"));
    assert_eq!(attr("k8s.namespace.name"), Some("shop"));
    assert_eq!(attr("k8s.node.name"), Some("node-a"));
    assert_eq!(attr("team"), Some("sre"));
    // The config's own attribute wins over OTEL_RESOURCE_ATTRIBUTES.
    assert_eq!(attr("deployment.environment.name"), Some("test"));

    // Counters: monotonic cumulative sums, the same total in both exports, as in /metrics.
    for (name, prom, want) in [
        ("slo_agent_slo_events", "slo_agent_slo_events_total", 600.0),
        ("slo_agent_slo_good_events", "slo_agent_slo_good_events_total", 540.0),
    ] {
        for r in [a, b] {
            let (p, m) = point(r, name, &[("slo", SLO), ("service", "shop")]).unwrap_or_else(|| panic!("no {name}"));
            let Some(metric::Data::Sum(sum)) = &m.data else { panic!("{name} is not a sum: {m:?}") };
            assert!(sum.is_monotonic, "{name}");
            assert_eq!(sum.aggregation_temporality, CUMULATIVE, "{name}");
            assert_eq!(value(&p), want, "{name}");
            assert!(p.start_time_unix_nano > 0 && p.start_time_unix_nano <= p.time_unix_nano, "{p:?}");
            assert_eq!(m.unit, "", "no unit, so the Collector's Prometheus exporters keep the name");
        }
        assert_eq!(sample(&text, prom, &[("slo", SLO), ("service", "shop")]), Some(want), "{prom}");
    }
    let start = |r| point(r, "slo_agent_slo_events", &[("slo", SLO)]).unwrap().0.start_time_unix_nano;
    assert_eq!(start(a), start(b), "cumulative points keep their start");

    // Gauges: every one /metrics has for the SLO, with the same value.
    let gauges: [(&str, &[(&str, &str)]); 7] = [
        ("slo_agent_slo_objective_ratio", &[]),
        ("slo_agent_slo_error_budget_remaining_ratio", &[]),
        ("slo_agent_slo_sli_ratio", &[]),
        ("slo_agent_slo_window_events", &[("kind", "good")]),
        ("slo_agent_slo_burn_rate_ratio", &[("window", "6h")]),
        ("slo_agent_slo_burn_rate_ratio", &[("window", "3d")]),
        ("slo_agent_alert_firing", &[("kind", "page")]),
    ];
    for (name, extra) in gauges {
        let mut labels = vec![("slo", SLO), ("service", "shop")];
        labels.extend_from_slice(extra);
        let (p, m) = point(b, name, &labels).unwrap_or_else(|| panic!("no {name} {extra:?}"));
        assert!(matches!(m.data, Some(metric::Data::Gauge(_))), "{name} is a gauge");
        let want = sample(&text, name, &labels).unwrap_or_else(|| panic!("{name} {extra:?} not in /metrics"));
        assert_eq!(value(&p), want, "{name} {extra:?}");
    }
    // The figures themselves: 10% bad against a 99% objective.
    let close = |v: f64, want: f64| assert!((v - want).abs() < 1e-9, "{v} is not {want}");
    close(value(&point(b, "slo_agent_slo_burn_rate_ratio", &[("window", "6h")]).unwrap().0), 10.0);
    close(value(&point(b, "slo_agent_slo_error_budget_remaining_ratio", &[]).unwrap().0), -9.0);
    // A window without events has no burn rate, there as here.
    assert!(point(b, "slo_agent_slo_burn_rate_ratio", &[("window", "5m")]).is_none());
    assert!(sample(&text, "slo_agent_slo_burn_rate_ratio", &[("slo", SLO), ("window", "5m")]).is_none());
    // Every SLO family with samples in /metrics went out, and nothing else.
    let mut sent: Vec<String> = metrics(b).into_iter().map(|m| m.name).collect();
    sent.sort();
    let mut scraped: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("slo_agent_slo_") || l.starts_with("slo_agent_alert_firing"))
        .map(|l| l.split(['{', ' ']).next().unwrap().trim_end_matches("_total").to_string())
        .collect();
    scraped.dedup();
    scraped.sort();
    scraped.dedup();
    assert_eq!(sent, scraped);
    assert!(sent.contains(&"slo_agent_slo_alert_condition".to_string()), "{sent:?}");

    // The agent's own view of the exporter.
    assert_eq!(sample(&text, "slo_agent_export_failures_total", &[("exporter", "otlp")]), Some(0.0));
    let success = sample(&text, "slo_agent_export_last_success_timestamp_seconds", &[("exporter", "otlp")]).unwrap();
    assert!((success * 1000.0 - now_ms() as f64).abs() < 60_000.0, "{success}");
}

/// Delta OTLP/gRPC: each export carries the increase since the one before,
/// so the exports add up to the count, and what is appended later arrives
/// alone. The key comes from a file, as gRPC metadata.
#[test]
fn grpc_delta_export_carries_only_the_increase() {
    let rt = runtime();
    let (rport, got) = grpc_receiver(&rt, None);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log, 10, true, false);
    std::fs::write(dir.path().join("otlp-key"), "grpc-test-key-5678\n").unwrap();
    let port = common::free_port();
    let config = agent_config(
        dir.path(),
        port,
        &format!(
            "    endpoint: http://127.0.0.1:{rport}\n    protocol: grpc\n    temporality: delta\n    interval: 1s\n    timeout: 5s\n    headers: {{x-api-key_file: otlp-key}}\n"
        ),
    );
    let _agent = Agent(start(&config, &[("K8S_POD_NAME", "slo-agent-1".into())]));
    let sum = |got: &[Received], name: &str| got.iter().filter_map(|r| events(&r.request, name)).sum::<f64>();
    wait_for("exports adding up to 600 events", || sum(&got.lock().unwrap(), "slo_agent_slo_events") == 600.0);
    let mark = got.lock().unwrap().len();
    // An export with nothing new carries an increase of 0.
    wait_for("an export after the counting", || got.lock().unwrap().len() > mark);
    write_log(&log, 1, false, true);
    wait_for("exports adding up to 660 events", || sum(&got.lock().unwrap(), "slo_agent_slo_events") == 660.0);
    let text = common::http_get(port, "/metrics").unwrap();
    let all = got.lock().unwrap().clone();

    assert_eq!(sample(&text, "slo_agent_slo_events_total", &[("slo", SLO)]), Some(660.0));
    assert_eq!(sum(&all, "slo_agent_slo_good_events"), 600.0);
    assert_eq!(events(&all[mark].request, "slo_agent_slo_events"), Some(0.0), "nothing new, nothing sent");
    let after: Vec<f64> = all[mark..].iter().filter_map(|r| events(&r.request, "slo_agent_slo_events")).collect();
    assert_eq!(after.iter().sum::<f64>(), 60.0, "{after:?}");
    assert!(after.iter().all(|v| (0.0..=60.0).contains(v)), "only the increase: {after:?}");
    let good: f64 = all[mark..].iter().filter_map(|r| events(&r.request, "slo_agent_slo_good_events")).sum();
    assert_eq!(good, 60.0);
    for r in &all {
        let (_, m) = point(&r.request, "slo_agent_slo_events", &[("slo", SLO)]).unwrap();
        let Some(metric::Data::Sum(s)) = &m.data else { panic!("not a sum: {m:?}") };
        assert_eq!((s.aggregation_temporality, s.is_monotonic), (DELTA, true));
        // Gauges are the same whatever the temporality.
        let (p, _) = point(&r.request, "slo_agent_slo_objective_ratio", &[("slo", SLO)]).unwrap();
        assert_eq!(value(&p), 0.99);
        assert_eq!(header(r, "x-api-key"), Some("grpc-test-key-5678"));
        let resource = attributes(&r.request.resource_metrics[0].resource.as_ref().unwrap().attributes);
        assert!(resource.contains(&("service.instance.id".into(), "slo-agent-1".into())), "{resource:?}");
        assert!(resource.contains(&("cloud.region".into(), "eu-test-1".into())), "{resource:?}");
    }
}

/// A receiver that accepts connections and never answers: the agent goes
/// on counting and serving, counts each failed export, and keeps at most
/// one export in flight.
#[test]
fn a_receiver_that_never_answers_blocks_nothing() {
    for protocol in ["http", "grpc"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let rport = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let a = accepted.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                // Held open, never read from or answered.
                a.lock().unwrap().push(s);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        write_log(&dir.path().join("app.log"), 10, true, false);
        let port = common::free_port();
        let config = agent_config(
            dir.path(),
            port,
            &format!(
                "    endpoint: http://127.0.0.1:{rport}\n    protocol: {protocol}\n    interval: 1s\n    timeout: 1s\n"
            ),
        );
        let started = Instant::now();
        let _agent = Agent(start(&config, &[]));
        let mut failures = 0.0;
        wait_for("three failed exports, with every event counted", || {
            let t0 = Instant::now();
            let Some(m) = common::http_get(port, "/metrics") else { return false };
            assert!(t0.elapsed() < Duration::from_secs(2), "/metrics took {:?}", t0.elapsed());
            failures = sample(&m, "slo_agent_export_failures_total", &[("exporter", "otlp")]).unwrap_or(0.0);
            let counted = sample(&m, "slo_agent_slo_events_total", &[("slo", SLO)]) == Some(600.0);
            assert!(sample(&m, "slo_agent_export_last_success_timestamp_seconds", &[]).is_none(), "{m}");
            counted && failures >= 3.0
        });
        let ready = common::http_get(port, "/readyz");
        assert!(ready.is_some(), "{protocol}: the agent is ready while its receiver is down");
        let report: serde_json::Value = serde_json::from_str(&common::http_get(port, "/api/v1/slos").unwrap()).unwrap();
        assert_eq!(common::totals(&report), [(SLO.to_string(), 600, 540)]);
        // One export at a time, each within its timeout: connections grow
        // with the exports (a few per export at most), never beyond.
        let secs = started.elapsed().as_secs_f64();
        let n = accepted.lock().unwrap().len() as f64;
        assert!(n >= 1.0, "{protocol}: the exporter never connected");
        assert!(n <= 4.0 * (secs + 2.0), "{protocol}: {n} connections in {secs:.1} s");
        assert!(failures <= secs + 1.0, "{protocol}: {failures} failures in {secs:.1} s");
    }
}

/// OTLP/gRPC over TLS to a collector whose certificate a private CA signed:
/// refused while the agent does not trust the CA (the system's roots),
/// accepted once `SSL_CERT_FILE` adds it.
#[test]
fn grpc_over_tls_checks_the_receivers_certificate() {
    let rt = runtime();
    let (ca, leaf, key) = common::certs::ca_and_leaf(&["localhost", "127.0.0.1"], 2040);
    let (rport, got) = grpc_receiver(&rt, Some((&leaf, &key)));
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), &ca).unwrap();
    let agent = |env: &[(&str, String)]| {
        let dir = tempfile::tempdir().unwrap();
        write_log(&dir.path().join("app.log"), 10, true, false);
        let port = common::free_port();
        let export =
            format!("    endpoint: https://127.0.0.1:{rport}\n    protocol: grpc\n    interval: 1s\n    timeout: 2s\n");
        let config = agent_config(dir.path(), port, &export);
        (Agent(start(&config, env)), port, dir)
    };
    {
        let (_untrusting, port, _dir) = agent(&[]);
        wait_for("two refused exports", || {
            common::http_get(port, "/metrics")
                .and_then(|m| sample(&m, "slo_agent_export_failures_total", &[("exporter", "otlp")]))
                .is_some_and(|v| v >= 2.0)
        });
        assert!(got.lock().unwrap().is_empty(), "an export went through without trusting the CA");
    }
    let (_trusting, _, _dir) = agent(&[("SSL_CERT_FILE", ca_file.path().display().to_string())]);
    wait_for("an export over TLS with all 600 events", || {
        got.lock().unwrap().iter().any(|r| events(&r.request, "slo_agent_slo_events") == Some(600.0))
    });
}
