//! The AWS pull sources read as part of `agent.yaml` (`source::aws::config`).

use std::path::Path;

#[cfg(feature = "aws")]
use std::time::Duration;

#[cfg(feature = "aws")]
use crate::decode::Format;
use crate::source::aws::config::AwsSourceConfig;

use crate::config::parse;
use crate::source::SourceConfig;

fn one(source: &str) -> Result<AwsSourceConfig, Vec<String>> {
    let text = format!("specs: [s]\nstate: st\nsources:\n{source}");
    match parse("agent.yaml", &text, Path::new("/etc")) {
        Ok(c) => match c.sources.into_iter().next() {
            Some(SourceConfig::Aws(a)) => Ok(*a),
            other => panic!("not an AWS source: {other:?}"),
        },
        Err(d) => Err(d.iter().map(|d| d.to_string()).collect()),
    }
}

#[cfg(feature = "aws")]
#[test]
fn logs_metrics_and_s3_sources_read() {
    let logs = one(
        "  - name: lg\n    type: cloudwatch-logs\n    region: us-east-1\n    endpoint_url: http://127.0.0.1:5000\n    credentials: {access_key_id: testing, secret_access_key: testing}\n    log_groups:\n      - /aws/lambda/checkout\n      - {name: /aws/apigateway/shop, format: apigateway, service: shop}\n    start: now\n",
    )
    .unwrap();
    let AwsSourceConfig::CloudWatchLogs(l) = logs else { panic!() };
    assert_eq!(l.aws.region.as_deref(), Some("us-east-1"));
    assert_eq!(l.log_groups[0].format, Format::Lambda);
    assert_eq!(l.log_groups[1].service, "shop");
    assert_eq!(l.start, Duration::ZERO);
    assert_eq!(l.delay, Duration::from_secs(30));
    assert!(format!("{:?}", l.aws.credentials).contains("redacted"));
    assert!(!format!("{:?}", l.aws.credentials).contains("secret_access_key: \"testing\""));

    let m = one(
        "  - name: m\n    type: cloudwatch-metrics\n    service: shop\n    queries:\n      - namespace: AWS/Lambda\n        dimensions: {FunctionName: checkout}\n        total: Invocations\n        errors: Errors\n        throttles: Throttles\n",
    )
    .unwrap();
    let AwsSourceConfig::CloudWatchMetrics(m) = m else { panic!() };
    assert_eq!(m.queries[0].dimensions, vec![("FunctionName".to_string(), "checkout".to_string())]);
    assert_eq!(m.queries[0].metrics().count(), 3);
    assert_eq!(m.settle, Duration::from_secs(300));

    let s = one("  - name: s\n    type: s3\n    bucket: logs-bucket\n    prefix: cf/\n    force_path_style: true\n")
        .unwrap();
    let AwsSourceConfig::S3(s) = s else { panic!() };
    assert_eq!((s.format, s.force_path_style, s.prefix.as_str()), (Format::CloudFront, true, "cf/"));
}

#[cfg(feature = "aws")]
#[test]
fn mistakes_are_reported_with_positions() {
    let e = one(
        "  - name: lg\n    type: cloudwatch-logs\n    endpoint_url: localhost:5000\n    log_groups: [/custom/app]\n    pages: 3\n",
    )
    .unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:6:19: `endpoint_url` must start with http")), "{e:?}");
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:7:18: log group `/custom/app` needs a `format`")), "{e:?}");
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:8:5: unknown field `pages`")), "{e:?}");
    let e = one("  - name: m\n    type: cloudwatch-metrics\n    queries:\n      - namespace: AWS/CloudFront\n        error_rate_percent: 5xxErrorRate\n").unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:7:9: a query needs `total`")), "{e:?}");
}

/// The commented AWS examples in deploy/agent.yaml, uncommented, are a valid config.
#[cfg(feature = "aws")]
#[test]
fn the_deploy_example_is_valid() {
    let example = include_str!("../../../deploy/agent.yaml");
    let aws_block = example.find("# AWS pull sources").expect("the AWS block of deploy/agent.yaml");
    let uncommented: String = example[aws_block..]
        .lines()
        .map(|l| match l.strip_prefix("  # ") {
            Some(rest) if rest.starts_with("- ") || rest.starts_with("  ") => format!("  {rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let text = format!("{}{uncommented}", &example[..aws_block]);
    let c = parse("agent.yaml", &text, Path::new("/etc/slo-agent")).unwrap();
    let kinds: Vec<&str> = c
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceConfig::Aws(a) => Some(a.kind()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["cloudwatch-logs", "cloudwatch-metrics", "s3", "xray"]);
}

#[cfg(feature = "aws")]
#[test]
fn xray_sources_read_with_defaults_and_positioned_mistakes() {
    let x = one("  - name: traces\n    type: xray\n    filter: 'service(\"shop-api/prod\")'\n    delay: 2m\n").unwrap();
    let AwsSourceConfig::XRay(x) = x else { panic!() };
    assert_eq!(x.filter.as_deref(), Some("service(\"shop-api/prod\")"));
    assert_eq!(
        (x.delay, x.start, x.max_range_per_poll),
        (Duration::from_secs(120), Duration::from_secs(3600), Duration::from_secs(300))
    );
    assert_eq!((x.max_traces_per_poll, x.service.as_str()), (500, ""));
    let e = one(
        "  - name: traces\n    type: xray\n    max_range_per_poll: 7h\n    max_traces_per_poll: 0\n    filter: ''\n    sample: 1\n",
    )
    .unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:6:25: `max_range_per_poll` must be at most 6h")), "{e:?}");
    assert!(
        e.iter()
            .any(|m| m.starts_with("agent.yaml:7:26: `max_traces_per_poll` must be a whole number from 1 to 10000")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:8:13: `filter` must not be empty")), "{e:?}");
    assert!(e.iter().any(|m| m.starts_with("agent.yaml:9:5: unknown field `sample`")), "{e:?}");
}

#[cfg(not(feature = "aws"))]
#[test]
fn a_build_without_aws_says_so() {
    let e = one("  - name: x\n    type: xray\n").unwrap_err();
    assert!(
        e.iter()
            .any(|m| m
                == "agent.yaml:5:11: source type `xray`: this build has no AWS support; build with --features aws"),
        "{e:?}"
    );
    let e = one("  - name: s\n    type: s3\n    bucket: logs-bucket\n").unwrap_err();
    assert!(
        e.iter()
            .any(|m| m
                == "agent.yaml:5:11: source type `s3`: this build has no AWS support; build with --features aws"),
        "{e:?}"
    );
}

/// `slo-agent iam-policy`: each configured source gets exactly its actions,
/// on its own resources where the action takes one.
#[cfg(feature = "aws")]
#[test]
fn the_iam_policy_allows_exactly_what_each_source_calls() {
    let text = "specs: [s]\nstate: st\nsources:\n  - {name: app, type: file, paths: [x.log]}\n  - name: lambda-logs\n    type: cloudwatch-logs\n    region: eu-west-1\n    log_groups: [/aws/lambda/checkout, /aws/lambda/cart]\n  - name: m\n    type: cloudwatch-metrics\n    queries:\n      - {namespace: AWS/Lambda, total: Invocations, errors: Errors}\n  - {name: cf-logs, type: s3, bucket: shop-logs, prefix: cf/}\n  - {name: traces, type: xray}\n";
    let c = parse("agent.yaml", text, Path::new("/etc")).unwrap_or_else(|d| panic!("{d:?}"));
    let p = crate::source::aws::iam::policy(&c.sources, Some("123456789012"));
    let statements = p["Statement"].as_array().unwrap();
    let by_sid = |sid: &str| statements.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("{sid} in {p:#}"));
    assert_eq!(p["Version"], "2012-10-17");
    assert_eq!(statements.len(), 5, "the file source needs nothing: {p:#}");
    let logs = by_sid("Logslambdalogs");
    assert_eq!(logs["Action"], serde_json::json!(["logs:FilterLogEvents"]));
    assert_eq!(
        logs["Resource"],
        serde_json::json!([
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/checkout:*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/cart:*"
        ])
    );
    assert_eq!(by_sid("Metricsm")["Resource"], serde_json::json!(["*"]));
    let list = by_sid("Listcflogs");
    assert_eq!(list["Resource"], serde_json::json!(["arn:aws:s3:::shop-logs"]));
    assert_eq!(list["Condition"]["StringLike"]["s3:prefix"], serde_json::json!(["cf/*"]));
    assert_eq!(by_sid("Readcflogs")["Resource"], serde_json::json!(["arn:aws:s3:::shop-logs/cf/*"]));
    assert_eq!(by_sid("XRaytraces")["Action"], serde_json::json!(["xray:GetTraceSummaries", "xray:BatchGetTraces"]));
    assert_eq!(
        crate::source::aws::iam::actions(&c.sources),
        [
            "cloudwatch:GetMetricData",
            "logs:FilterLogEvents",
            "s3:GetObject",
            "s3:ListBucket",
            "xray:BatchGetTraces",
            "xray:GetTraceSummaries"
        ]
    );
    // Without an account or a region, the ARNs say `*` there.
    let p = crate::source::aws::iam::policy(&c.sources[..2], None);
    assert_eq!(p["Statement"][0]["Resource"][0], "arn:aws:logs:eu-west-1:*:log-group:/aws/lambda/checkout:*");
}

/// `export.cloudwatch` in PutMetricData mode needs `cloudwatch:PutMetricData`
/// (it takes no resource) held to its namespace by a condition; EMF needs
/// nothing, and neither does an agent without AWS sources or exporters.
#[cfg(feature = "aws")]
#[test]
fn the_iam_policy_adds_put_metric_data_in_the_export_namespace_only() {
    let with = |export: &str| {
        let text = format!("specs: [s]\nstate: st\nsources:\n  - {{name: traces, type: xray}}\nexport:\n{export}");
        let c = parse("agent.yaml", &text, Path::new("/etc")).unwrap_or_else(|d| panic!("{d:?}"));
        crate::export::iam_policy(&c.sources, &c.export, None)
    };
    let p = with("  cloudwatch: {mode: put_metric_data, namespace: Shop/SLO}\n");
    let statements = p["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{p:#}");
    assert_eq!(
        statements[1],
        serde_json::json!({
            "Sid": "Exportcloudwatch",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Shop/SLO"}}
        })
    );
    assert_eq!(
        crate::source::aws::iam::actions_in(&p),
        ["cloudwatch:PutMetricData", "xray:BatchGetTraces", "xray:GetTraceSummaries"]
    );
    let p = with("  cloudwatch: {mode: emf}\n");
    assert_eq!(crate::source::aws::iam::actions_in(&p), ["xray:BatchGetTraces", "xray:GetTraceSummaries"]);
    let c =
        parse("agent.yaml", "specs: [s]\nstate: st\nsources: []\nexport: {cloudwatch: {}}\n", Path::new("/")).unwrap();
    assert_eq!(crate::export::iam_policy(&c.sources, &c.export, None)["Statement"], serde_json::json!([]));
}

/// deploy/aws/policy.json, which the role templates attach, is what
/// `slo-agent iam-policy --config deploy/aws/agent.yaml` prints
/// (`UPDATE_GOLDEN=1` rewrites it).
#[cfg(feature = "aws")]
#[test]
fn the_deploy_aws_policy_is_what_iam_policy_prints_for_its_config() {
    let text = include_str!("../../../deploy/aws/agent.yaml");
    let c = parse("deploy/aws/agent.yaml", text, Path::new("/etc/slo-agent")).unwrap_or_else(|d| panic!("{d:?}"));
    let p = crate::export::iam_policy(&c.sources, &c.export, None);
    crate::testing::golden::check_json("../deploy/aws/policy.json", &p);
}
