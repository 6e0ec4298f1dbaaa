//! `export:` read as part of `agent.yaml` (`export::read_config`,
//! `export::cloudwatch::config`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::parse;
use crate::export::cloudwatch::{CloudWatchExportConfig, CloudWatchMode};
use crate::spec::model::{ALERT_WINDOWS, Minutes};

fn cloudwatch(export: &str) -> Result<CloudWatchExportConfig, Vec<String>> {
    let text = format!("specs: [s]\nstate: st\nsources: []\nexport:\n{export}");
    match parse("agent.yaml", &text, Path::new("/etc/slo-agent")) {
        Ok(c) => Ok(c.export.cloudwatch.expect("export.cloudwatch is set")),
        Err(d) => Err(d.iter().map(|d| d.to_string()).collect()),
    }
}

#[test]
fn emf_is_the_default_with_every_alert_window() {
    let c = cloudwatch("  cloudwatch: {}\n").unwrap();
    assert_eq!(c.mode, CloudWatchMode::Emf { file: None });
    assert_eq!((c.namespace.as_str(), c.interval), ("SloAgent", Duration::from_secs(60)));
    assert_eq!(c.windows, ALERT_WINDOWS.to_vec());
    assert!(c.dimensions.is_empty());
    let c = cloudwatch(
        "  cloudwatch:\n    mode: emf\n    emf_file: emf/slo.log\n    namespace: Shop/SLO\n    interval: 30s\n    windows: [5m, 1h, 6h]\n    dimensions: {Cluster: prod, Team: checkout}\n",
    )
    .unwrap();
    assert_eq!(c.mode, CloudWatchMode::Emf { file: Some(PathBuf::from("/etc/slo-agent/emf/slo.log")) });
    assert_eq!((c.namespace.as_str(), c.interval), ("Shop/SLO", Duration::from_secs(30)));
    assert_eq!(c.windows, [Minutes(5), Minutes(60), Minutes(360)]);
    assert_eq!(
        c.dimensions,
        [("Cluster".to_string(), "prod".to_string()), ("Team".to_string(), "checkout".to_string())]
    );
    // No `export:` at all: nothing is exported.
    let none = parse("a.yaml", "specs: [s]\nstate: st\nsources: []\n", Path::new("/")).unwrap();
    assert_eq!(none.export, crate::export::ExportConfig::default());
}

#[test]
fn every_mistake_is_reported_at_its_position() {
    let e = cloudwatch(
        "  cloudwatch:\n    mode: kinesis\n    namespace: AWS/Lambda\n    interval: 2h\n    windows: [5m, 7m, 5m]\n    dimensions: {SLO: x, Cluster: \"\"}\n    sample: 1\n",
    )
    .unwrap_err();
    let want = [
        "agent.yaml:6:11: `export.cloudwatch.mode` must be `emf` or `put_metric_data`, found `kinesis`",
        "agent.yaml:7:16: `namespace` must not start with `AWS/`",
        "agent.yaml:8:15: `interval` must be from 1s to 1h",
        "agent.yaml:9:19: `7m` is not an alert window; the agent computes burn rates over 5m, 30m, 1h, 2h, 6h, 1d, 3d",
        "agent.yaml:9:23: window `5m` is listed twice",
        "agent.yaml:10:18: dimension `SLO` is the exporter's own",
        "agent.yaml:10:35: the value of dimension `Cluster` must have 1 to 1024 printable ASCII characters",
        "agent.yaml:11:5: unknown field `sample` in `export.cloudwatch`",
    ];
    for w in want {
        assert!(e.iter().any(|m| m.starts_with(w)), "missing {w:?} in {e:#?}");
    }
    let e = cloudwatch("  cloudwatch: {mode: emf, region: eu-west-1}\n").unwrap_err();
    assert!(
        e.iter().any(|m| m.contains("`export.cloudwatch.region` is only read with `mode: put_metric_data`")),
        "{e:?}"
    );
    let e = cloudwatch("  kinesis: {}\n").unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:5:3: unknown field `kinesis` in `export`")), "{e:?}");
    let many: String = (0..28).map(|i| format!("D{i}: v, ")).collect();
    let e = cloudwatch(&format!("  cloudwatch: {{dimensions: {{{many}}}}}\n")).unwrap_err();
    assert!(e.iter().any(|m| m.contains("28 dimensions; a metric has at most 30")), "{e:?}");
}

#[cfg(feature = "aws")]
#[test]
fn put_metric_data_reads_the_aws_connection_and_refuses_emf_keys() {
    let c = cloudwatch(
        "  cloudwatch:\n    mode: put_metric_data\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:5000\n    credentials: {access_key_id: testing, secret_access_key: testing}\n    timeout: 3s\n",
    )
    .unwrap();
    let CloudWatchMode::PutMetricData(conn) = &c.mode else { panic!("{c:?}") };
    assert_eq!(
        (conn.region.as_deref(), conn.endpoint_url.as_deref()),
        (Some("eu-west-1"), Some("http://127.0.0.1:5000"))
    );
    assert_eq!(conn.timeout, Duration::from_secs(3));
    assert!(!format!("{c:?}").contains("secret_access_key: \"testing\""), "the secret is not in Debug output");
    let e =
        cloudwatch("  cloudwatch: {mode: put_metric_data, emf_file: x.log, endpoint_url: localhost}\n").unwrap_err();
    assert!(e.iter().any(|m| m.contains("`emf_file` is only read with `mode: emf`")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("`endpoint_url` must start with http")), "{e:?}");
}

#[cfg(not(feature = "aws"))]
#[test]
fn put_metric_data_needs_an_aws_build_and_says_so() {
    let e = cloudwatch("  cloudwatch:\n    mode: put_metric_data\n").unwrap_err();
    assert_eq!(
        e,
        [
            "agent.yaml:6:11: `mode: put_metric_data` needs an AWS build (--features aws); `mode: emf` needs none (its lines reach CloudWatch through CloudWatch Logs)"
        ]
    );
}
