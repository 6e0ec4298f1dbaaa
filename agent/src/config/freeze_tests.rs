//! The `freeze:` section read as part of `agent.yaml`.

use std::path::Path;
use std::time::Duration;

use crate::fleet::{FreezeConfig, FreezeSource, PrometheusConfig};

const HEAD: &str = "specs: [a]\nstate: s\nsources: []\n";

fn parse(dir: &Path, freeze: &str) -> Result<FreezeConfig, Vec<String>> {
    crate::config::parse("agent.yaml", &format!("{HEAD}{freeze}"), dir)
        .map(|c| c.freeze)
        .map_err(|d| d.iter().map(|d| d.to_string()).collect())
}

#[test]
fn local_by_default_and_prometheus_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(parse(dir.path(), "").unwrap().source, FreezeSource::Local);
    assert_eq!(parse(dir.path(), "freeze: {source: local}\n").unwrap().source, FreezeSource::Local);
    std::fs::write(dir.path().join("prom-token"), "t0k3n\n").unwrap();
    let c = parse(
        dir.path(),
        "freeze:\n  source: prometheus\n  prometheus:\n    url: https://mimir.example.com/prometheus/\n    bearer_token_file: prom-token\n    headers: {X-Scope-OrgID: tenant-1}\n    timeout: 2s\n    interval: 1m\n",
    )
    .unwrap();
    assert_eq!(
        c.source,
        FreezeSource::Prometheus(PrometheusConfig {
            url: "https://mimir.example.com/prometheus".into(),
            bearer_token_file: Some(dir.path().join("prom-token")),
            headers: vec![("X-Scope-OrgID".into(), "tenant-1".into())],
            timeout: Duration::from_secs(2),
            interval: Duration::from_secs(60),
        })
    );
    let FreezeSource::Prometheus(p) =
        parse(dir.path(), "freeze: {source: prometheus, prometheus: {url: \"http://prometheus:9090\"}}\n")
            .unwrap()
            .source
    else {
        panic!("prometheus")
    };
    assert_eq!((p.timeout, p.interval, p.headers.len()), (Duration::from_secs(5), Duration::from_secs(30), 0));
    // Never more often than the tick; 503 after three intervals and a timeout without figures.
    assert_eq!(p.every(Duration::from_secs(60)), Duration::from_secs(60));
    assert_eq!(p.stale_after(Duration::from_secs(5)), Duration::from_secs(95));
}

#[test]
fn every_problem_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let e = parse(
        dir.path(),
        "freeze:\n  source: prometheus\n  prometheus:\n    url: \"prometheus:9090?x=1\"\n    bearer_token_file: empty\n    headers: {\"bad header\": x, Authorization: y}\n    timeout: 0s\n    intervall: 1m\n",
    )
    .unwrap_err();
    let dir_s = dir.path().display();
    assert_eq!(
        e,
        [
            "agent.yaml:11:5: unknown field `intervall` in `freeze.prometheus`; did you mean `interval`? allowed: url, bearer_token_file, headers, timeout, interval".to_string(),
            "agent.yaml:7:10: `freeze.prometheus.url` must be an http(s) URL without user, query or fragment, the base of the query API (such as http://prometheus:9090 or https://mimir.example.com/prometheus), found `prometheus:9090?x=1`".into(),
            format!("agent.yaml:8:24: `{dir_s}/empty` (the Prometheus bearer token) is empty"),
            "agent.yaml:9:15: `bad header` is not an HTTP header name".into(),
            "agent.yaml:10:14: `freeze.prometheus.timeout` must be a duration from 100ms to 1h, such as 5s or 30s, found `0s`".into(),
        ]
    );
    let one = |text: &str| parse(dir.path(), text).unwrap_err();
    assert_eq!(
        one("freeze: {source: fleet}\n"),
        ["agent.yaml:4:18: `freeze.source` must be `local` or `prometheus`, found `fleet`"]
    );
    assert_eq!(
        one("freeze: {source: prometheus}\n"),
        ["agent.yaml:4:9: `freeze.source: prometheus` needs `freeze.prometheus` with at least `url`"]
    );
    assert_eq!(
        one("freeze: {prometheus: {url: \"http://p:9090\"}}\n"),
        ["agent.yaml:4:22: `freeze.prometheus` is only read with `freeze.source: prometheus`"]
    );
    std::fs::write(dir.path().join("tok"), "t").unwrap();
    assert_eq!(
        one(
            "freeze: {source: prometheus, prometheus: {url: \"http://p:9090\", bearer_token_file: tok, headers: {authorization: x}}}\n"
        ),
        ["agent.yaml:4:99: `Authorization` is set from `bearer_token_file`; give one or the other"]
    );
    assert_eq!(
        one("freeze: {source: prometheus, prometheus: {url: \"http://p:9090\", bearer_token_file: missing}}\n")[0]
            .split(" (the")
            .next()
            .unwrap(),
        format!("agent.yaml:4:84: cannot read `{dir_s}/missing`")
    );
}
