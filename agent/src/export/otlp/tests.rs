use super::*;
use crate::export::slo;

fn config() -> OtlpConfig {
    OtlpConfig {
        endpoint: "http://127.0.0.1:4318/v1/metrics".into(),
        protocol: Protocol::Http,
        temporality: Temporality::Cumulative,
        interval: Duration::from_secs(60),
        gzip: false,
        timeout: Duration::from_secs(1),
        headers: Vec::new(),
        resource: Vec::new(),
    }
}

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
}

fn get<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn the_resource_names_the_agent_where_it_runs() {
    let vars = env(&[
        ("K8S_POD_NAME", "slo-agent-7d9f"),
        ("K8S_NAMESPACE_NAME", "shop"),
        ("K8S_NODE_NAME", "ip-10-0-1-2"),
        ("K8S_CLUSTER_NAME", " "),
        ("HOSTNAME", "ignored-when-the-pod-is-named"),
    ]);
    let a = resource_attributes(&config(), Some("eu-west-1"), &vars);
    assert_eq!(get(&a, "service.name"), Some("slo-agent"));
    assert_eq!(get(&a, "service.version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(get(&a, "service.instance.id"), Some("slo-agent-7d9f"));
    assert_eq!(get(&a, "cloud.provider"), Some("aws"));
    assert_eq!(get(&a, "cloud.region"), Some("eu-west-1"));
    assert_eq!(get(&a, "k8s.pod.name"), Some("slo-agent-7d9f"));
    assert_eq!(get(&a, "k8s.namespace.name"), Some("shop"));
    assert_eq!(get(&a, "k8s.node.name"), Some("ip-10-0-1-2"));
    // Blank variables are no attribute.
    assert_eq!(get(&a, "k8s.cluster.name"), None);

    let a = resource_attributes(&config(), None, &env(&[("HOSTNAME", "box-1")]));
    assert_eq!(get(&a, "service.instance.id"), Some("box-1"));
    assert_eq!(get(&a, "cloud.region"), None);
    assert_eq!(get(&a, "k8s.pod.name"), None);
}

#[test]
fn the_environment_overrides_the_agent_and_the_config_overrides_both() {
    let vars = env(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "team=sre, cloud.region=us-east-1,deployment.environment.name=pre%20prod,=x,junk"),
        ("OTEL_SERVICE_NAME", "edge-slos"),
    ]);
    let a = resource_attributes(&config(), Some("eu-west-1"), &vars);
    assert_eq!(get(&a, "team"), Some("sre"));
    assert_eq!(get(&a, "cloud.region"), Some("us-east-1"));
    assert_eq!(get(&a, "deployment.environment.name"), Some("pre prod"));
    assert_eq!(get(&a, "service.name"), Some("edge-slos"));
    assert_eq!(get(&a, ""), None);
    let mut c = config();
    c.resource = vec![("service.name".into(), "from-config".into()), ("team".into(), "payments".into())];
    let a = resource_attributes(&c, Some("eu-west-1"), &vars);
    assert_eq!(get(&a, "service.name"), Some("from-config"));
    assert_eq!(get(&a, "team"), Some("payments"));
}

fn events(series: &[(&str, f64)]) -> Vec<FamilyView> {
    vec![FamilyView {
        metric: &slo::EVENTS,
        series: series.iter().map(|(name, v)| (vec![("slo", name.to_string())], *v)).collect(),
    }]
}

fn values(f: &[FamilyView]) -> Vec<f64> {
    f[0].series.iter().map(|(_, v)| *v).collect()
}

#[test]
fn exported_counters_never_go_down() {
    let mut m = Monotonic::default();
    let mut f = events(&[("a", 10.0), ("b", 5.0)]);
    m.apply(&mut f);
    assert_eq!(values(&f), [10.0, 5.0]);
    let mut f = events(&[("a", 25.0), ("b", 5.0)]);
    m.apply(&mut f);
    assert_eq!(values(&f), [25.0, 5.0]);
    // `a` starts again from zero (its indicator changed) and has counted 3 since.
    let mut f = events(&[("a", 3.0), ("b", 7.0)]);
    m.apply(&mut f);
    assert_eq!(values(&f), [28.0, 7.0]);
    let mut f = events(&[("a", 4.0)]);
    m.apply(&mut f);
    assert_eq!(values(&f), [29.0]);
    // `b` left the specs and came back: a new series.
    let mut f = events(&[("a", 4.0), ("b", 2.0)]);
    m.apply(&mut f);
    assert_eq!(values(&f), [29.0, 2.0]);
    // Gauges are left alone.
    let mut g = vec![FamilyView { metric: &slo::BURN_RATE, series: vec![(vec![], 3.0)] }];
    m.apply(&mut g);
    let mut g = vec![FamilyView { metric: &slo::BURN_RATE, series: vec![(vec![], 1.0)] }];
    m.apply(&mut g);
    assert_eq!(values(&g), [1.0]);
}

#[test]
#[allow(unsafe_code)] // the `unsafe` inside carries its SAFETY comment
fn header_values_are_read_at_each_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "Basic one\n").unwrap();
    let headers = vec![
        ("authorization".to_string(), Text::File(file.clone())),
        ("x-scope-orgid".to_string(), Text::Plain("tenant-1".into())),
    ];
    let h = read_headers(&headers).unwrap();
    assert_eq!(h["authorization"], "Basic one");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["x-scope-orgid"], "tenant-1");
    std::fs::write(&file, "Basic two").unwrap();
    assert_eq!(read_headers(&headers).unwrap()["authorization"], "Basic two");
    std::fs::write(&file, "bad\u{7}value").unwrap();
    let e = read_headers(&headers).unwrap_err();
    assert_eq!(e, "header authorization: the value is not a valid header value");
    assert!(!e.contains("bad"), "the value is never in the error: {e}");
    std::fs::remove_file(&file).unwrap();
    assert!(read_headers(&headers).unwrap_err().starts_with("header authorization: cannot read"));
    let e = read_headers(&[("dd-api-key".into(), Text::Env("SLO_AGENT_TEST_OTLP_NEVER_SET".into()))]).unwrap_err();
    assert_eq!(e, "header dd-api-key: environment variable SLO_AGENT_TEST_OTLP_NEVER_SET is not set");
}

/// A receiver that refuses the connection: the export fails within its
/// timeout, is counted, and is logged only once within `WARN_EVERY`.
#[tokio::test(flavor = "current_thread")]
async fn a_receiver_that_is_down_is_counted_and_warned_about_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = config();
    c.endpoint = format!("http://127.0.0.1:{port}/v1/metrics");
    let telemetry = Arc::new(Telemetry::default());
    let figures: Figures = Arc::new(|| slo::families(&[], &[], &[]));
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let mut e = OtlpExporter::build(&c, None, figures, telemetry.clone(), clock).unwrap();
    for _ in 0..3 {
        let r = e.export_once().await;
        assert!(r.is_err(), "{r:?}");
        e.report(r);
    }
    assert_eq!(telemetry.value(&ev::EXPORT_FAILURES, &[("exporter", "otlp"), ("error", "unavailable")]), 3.0);
    assert_eq!(e.failing, 3);
    assert!(e.warned_at.is_some());
    assert_eq!(telemetry.value(&ev::EXPORT_LAST_SUCCESS, &[("exporter", "otlp")]), 0.0);
}
