//! The least-privilege IAM policy (`slo-agent iam-policy`) against moto
//! with IAM enforcement on: the agent, with CloudWatch Logs, CloudWatch
//! metrics, S3 and X-Ray sources and the CloudWatch exporter, runs as an IAM
//! user whose only policy is what `iam-policy` printed for its config, and
//! every source and the exporter work; with any one action taken out, the
//! source (or exporter) that needs it fails with access denied while the
//! others go on. So each action is needed, and together they are enough.
//!
//! How moto enforces (moto 5, server mode): once told to
//! ([`enforce_iam`]), every request must carry a valid SigV4 signature of a
//! key that IAM knows, and is allowed only when one of the user's policies
//! allows `SERVICE:ACTION` on the resource moto names. moto differs from
//! AWS in ways this test mends openly, each in [`for_moto`], and each
//! difference is checked to still hold (so the mend goes when moto changes):
//!
//! - moto names an action by the request's signing name and, for REST
//!   APIs, by the URL: CloudWatch's are `monitoring:*` (IAM says
//!   `cloudwatch:*`), X-Ray's `xray:TraceSummaries` and `xray:Traces` (IAM
//!   says `xray:GetTraceSummaries`, `xray:BatchGetTraces`); the policy
//!   moto gets names them moto's way, one for one;
//! - moto authorises CloudWatch Logs calls against resource `*`, not the
//!   log group's ARN, so the log-group resources become `*` for moto
//!   (the actions stay exact; the resources are AWS's to check);
//! - moto checks S3 resources (the bucket, the object's key) as AWS does,
//!   but no condition (`s3:prefix`, `cloudwatch:namespace`) for users'
//!   policies; and its S3 signature check fails when a query value needs
//!   percent-encoding (a `/` in `prefix=`), so the S3 prefix here is `cf-`.
//!
//! CloudWatch and X-Ray calls go through the test's proxies (moto speaks no
//! RPC-v2 CBOR; moto's X-Ray answers need mending), which sign what they
//! forward again as the same access key (`common/moto.rs`).

#![cfg(feature = "aws")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use slo_agent::clock::{Clock, SystemClock};

mod common;
use common::moto::{
    CborProxy, Keys, Moto, XRayProxy, enforce_iam, iam_user, put_segments, request_trace, seeder, seeder_as,
};
use common::{free_port, http_get};

const ACCOUNT: &str = "123456789012";

const SPECS: &str = r#"
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: lambda-logs}
spec:
  service: checkout
  objective: 99
  window: 1d
  indicator: {source: lambda, filter: {service: checkout}, good: {status: "< 500"}}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: lambda-metrics}
spec:
  service: checkout
  objective: 99
  window: 1d
  indicator: {source: cloudwatch, filter: {service: checkout-fn}, good: {status: "< 500"}}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: edge}
spec:
  service: shop
  objective: 99
  window: 1d
  indicator: {source: cloudfront, filter: {service: shop-edge}, good: {status: "< 500"}}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: traced}
spec:
  service: shop-api
  objective: 99
  window: 1d
  indicator: {source: xray, filter: {service: shop-api}, good: {status: "< 500"}}
"#;

/// (SLO, total, good) once every source has read what was seeded.
fn want() -> Vec<(String, u64, u64)> {
    [("edge", 10, 10), ("lambda-logs", 10, 10), ("lambda-metrics", 50, 50), ("traced", 3, 3)]
        .iter()
        .map(|(n, t, g)| (n.to_string(), *t, *g))
        .collect()
}

/// Which source (or the exporter) each action is for: (action, source name).
const ACTIONS: [(&str, &str); 7] = [
    ("cloudwatch:GetMetricData", "fn-metrics"),
    ("cloudwatch:PutMetricData", "export"),
    ("logs:FilterLogEvents", "lambda-logs"),
    ("s3:GetObject", "cf-s3"),
    ("s3:ListBucket", "cf-s3"),
    ("xray:BatchGetTraces", "traces"),
    ("xray:GetTraceSummaries", "traces"),
];

/// The SLO each source's events count for.
fn slo_of(source: &str) -> &'static str {
    match source {
        "lambda-logs" => "lambda-logs",
        "fn-metrics" => "lambda-metrics",
        "cf-s3" => "edge",
        _ => "traced",
    }
}

/// The action as moto names it (see the module docs).
fn moto_action(a: &str) -> String {
    match a {
        "xray:GetTraceSummaries" => "xray:TraceSummaries".into(),
        "xray:BatchGetTraces" => "xray:Traces".into(),
        a => a.strip_prefix("cloudwatch:").map_or_else(|| a.to_string(), |op| format!("monitoring:{op}")),
    }
}

/// The policy in moto's terms: actions renamed one for one, log-group
/// resources as `*` (see the module docs). Nothing is added.
fn for_moto(policy: &Value) -> Value {
    let mut p = policy.clone();
    for s in p["Statement"].as_array_mut().unwrap() {
        let actions: Vec<String> =
            s["Action"].as_array().unwrap().iter().map(|a| moto_action(a.as_str().unwrap())).collect();
        if actions.iter().any(|a| a.starts_with("logs:")) {
            s["Resource"] = json!(["*"]);
        }
        s["Action"] = json!(actions);
    }
    p
}

/// The policy without `action` (a statement left with no action goes).
fn without(policy: &Value, action: &str) -> Value {
    let mut p = policy.clone();
    let statements = p["Statement"].as_array_mut().unwrap();
    for s in statements.iter_mut() {
        s["Action"].as_array_mut().unwrap().retain(|a| a != action);
    }
    statements.retain(|s| !s["Action"].as_array().unwrap().is_empty());
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A CloudFront standard log file of `n` requests (all 200) from `base_ms` on.
fn cloudfront_file(base_ms: i64, n: usize) -> Vec<u8> {
    let mut s = String::from(
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n",
    );
    for i in 0..n {
        let t = jiff::Timestamp::from_millisecond(base_ms + i as i64 * 1000).unwrap().to_zoned(jiff::tz::TimeZone::UTC);
        let (date, time) = (t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"));
        s.push_str(&format!(
            "{date}\t{time}\tFRA56-P3\t1536\t203.0.113.34\tGET\td3k9x2example.cloudfront.net\t/p/{i}\t200\t-\tMozilla/5.0\t-\t-\tMiss\tid{i}==\tshop.example.com\thttps\t512\t0.187\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t50412\t0.187\tMiss\ttext/html\t1536\t-\t-\n"
        ));
    }
    s.into_bytes()
}

/// What every source reads: 10 Lambda invocations in CloudWatch Logs, 5
/// minutes of 10 invocations in CloudWatch metrics, 10 CloudFront requests
/// in two S3 objects, 3 traced requests in X-Ray.
fn seed(moto: &Moto, cw: &CborProxy, now: i64) {
    let (rt, conf) = seeder(&moto.url);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    rt.block_on(async {
        let (group, stream) = ("/aws/lambda/checkout", "2026/11/22/[$LATEST]a");
        logs.create_log_group().log_group_name(group).send().await.unwrap();
        logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.unwrap();
        let events = (0..10)
            .map(|i| {
                let m = format!("REPORT RequestId: req-{i}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t\n");
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now - 5 * 60_000 + i * 1000)
                    .message(m)
                    .build()
                    .unwrap()
            })
            .collect();
        logs.put_log_events().log_group_name(group).log_stream_name(stream).set_log_events(Some(events)).send().await.unwrap();
    });
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    rt.block_on(s3.create_bucket().bucket("cf-logs").send()).unwrap();
    for (key, at) in [
        ("cf-E2EXAMPLE.2026-11-22-10.aaa.gz", now - 3 * 3_600_000),
        ("cf-E2EXAMPLE.2026-11-22-11.bbb.gz", now - 2 * 3_600_000),
    ] {
        rt.block_on(s3.put_object().bucket("cf-logs").key(key).body(gzip(&cloudfront_file(at, 5)).into()).send())
            .unwrap();
    }
    {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        let (crt, cconf) = seeder(&cw.url);
        let client = aws_sdk_cloudwatch::Client::new(&cconf);
        let first = now.div_euclid(60_000) * 60_000 - 20 * 60_000;
        let data = (0..5)
            .map(|k| {
                MetricDatum::builder()
                    .metric_name("Invocations")
                    .dimensions(Dimension::builder().name("FunctionName").value("checkout").build())
                    .timestamp(DateTime::from_millis(first + k * 60_000 + 10_000))
                    .value(10.0)
                    .unit(StandardUnit::Count)
                    .build()
            })
            .collect();
        crt.block_on(client.put_metric_data().namespace("AWS/Lambda").set_metric_data(Some(data)).send()).unwrap();
    }
    let docs: Vec<String> =
        (0..3).flat_map(|i| request_trace(i, now / 1000 * 1000 - 5 * 60_000 + i as i64 * 1000, None).1).collect();
    put_segments(&moto.url, docs);
}

/// agent.yaml for every source and the exporter, as the key `id` (with
/// `secret`), or with no credentials at all (for `iam-policy`).
fn config(port: u16, moto: &str, cw: &str, xray: &str, key: Option<(&str, &str)>) -> String {
    let creds = match key {
        Some((id, secret)) => format!("\n    credentials: {{access_key_id: {id}, secret_access_key: {secret}}}"),
        None => String::new(),
    };
    format!(
        r#"specs: [specs.yaml]
state: state.redb
listen: 127.0.0.1:{port}
tick: 200ms
poll_interval: 50ms
sources:
  - name: lambda-logs
    type: cloudwatch-logs
    region: us-east-1
    endpoint_url: {moto}{creds}
    log_groups: [{{name: /aws/lambda/checkout, service: checkout}}]
    delay: 0s
    poll_interval: 200ms
  - name: fn-metrics
    type: cloudwatch-metrics
    region: us-east-1
    endpoint_url: {cw}{creds}
    settle: 0s
    start: 1h
    poll_interval: 200ms
    queries:
      - {{namespace: AWS/Lambda, dimensions: {{FunctionName: checkout}}, service: checkout-fn, total: Invocations}}
  - name: cf-s3
    type: s3
    region: us-east-1
    endpoint_url: {moto}{creds}
    bucket: cf-logs
    prefix: cf-
    service: shop-edge
    force_path_style: true
    poll_interval: 200ms
  - name: traces
    type: xray
    region: us-east-1
    endpoint_url: {xray}{creds}
    start: 15m
    delay: 0s
    poll_interval: 200ms
export:
  cloudwatch:
    mode: put_metric_data
    region: us-east-1
    endpoint_url: {cw}{creds}
    namespace: SloAgent
    interval: 1s
"#
    )
}

fn slo_totals(port: u16) -> Option<Vec<(String, u64, u64)>> {
    let report: Value = serde_json::from_str(&http_get(port, "/api/v1/slos")?).ok()?;
    let mut out: Vec<(String, u64, u64)> = report["slos"]
        .as_array()?
        .iter()
        .map(|s| Some((s["name"].as_str()?.to_string(), s["events"]["total"].as_u64()?, s["events"]["good"].as_u64()?)))
        .collect::<Option<_>>()?;
    out.sort();
    Some(out)
}

/// The sum of a counter's series whose labels include all of `labels`.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Run the agent from `dir` (fresh state) until `done` holds for its totals
/// and `/metrics`, or 60 s; then stop it. Returns the last totals and metrics.
fn run_until(
    dir: &Path,
    config: &str,
    port: u16,
    done: impl Fn(&[(String, u64, u64)], &str) -> bool,
) -> (Vec<(String, u64, u64)>, String, bool) {
    let _ = std::fs::remove_file(dir.join("state.redb"));
    std::fs::write(dir.join("specs.yaml"), SPECS).unwrap();
    let path = dir.join("agent.yaml");
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["run", "--config"])
        .arg(&path)
        .env("SLO_AGENT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut totals, mut metrics, mut ok) = (Vec::new(), String::new(), false);
    while Instant::now() < deadline && !ok {
        std::thread::sleep(Duration::from_millis(300));
        if let (Some(t), Some(m)) = (slo_totals(port), http_get(port, "/metrics")) {
            (totals, metrics) = (t, m);
            ok = done(&totals, &metrics);
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    (totals, metrics, ok)
}

fn access_denied(metrics: &str, source: &str) -> f64 {
    if source == "export" {
        counter(metrics, "slo_agent_export_failures_total", &[("exporter", "cloudwatch"), ("error", "access_denied")])
    } else {
        counter(metrics, "slo_agent_source_errors_total", &[("source", source), ("error", "access_denied")])
    }
}

#[test]
fn the_agent_works_with_exactly_the_actions_iam_policy_prints() {
    let Some(moto) = Moto::start() else { return };
    let keys = Keys::default();
    let cw = CborProxy::signing(&moto.url, Some(keys.clone()));
    let xray = XRayProxy::signing(&moto.url, true, 100, Some(keys.clone()));
    let now = SystemClock.now_ms();
    seed(&moto, &cw, now);

    // The policy, from the command, for the agent's config.
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let unsigned = root.path().join("agent.yaml");
    std::fs::write(root.path().join("specs.yaml"), SPECS).unwrap();
    std::fs::write(&unsigned, config(port, &moto.url, &cw.url, &xray.url, None)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-agent"))
        .args(["iam-policy", "--account", ACCOUNT, "--config"])
        .arg(&unsigned)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Each configured source and the exporter: exactly their actions.
    assert_eq!(slo_agent::source::aws::iam::actions_in(&policy), ACTIONS.map(|(a, _)| a.to_string()));

    // The users, made while moto does not check yet; then it does.
    let admin = iam_user(
        &moto,
        "admin",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    );
    let agent = iam_user(&moto, "agent", &for_moto(&policy));
    let exact = iam_user(&moto, "exact", &policy);
    let minus: Vec<(&str, &str, (String, String))> = ACTIONS
        .iter()
        .enumerate()
        .map(|(i, (action, source))| {
            (*action, *source, iam_user(&moto, &format!("without-{i}"), &for_moto(&without(&policy, action))))
        })
        .collect();
    for (id, secret) in [&admin, &agent, &exact].into_iter().chain(minus.iter().map(|m| &m.2)) {
        keys.add(id, secret);
    }
    enforce_iam(&moto);

    // Enforcement is on: a key IAM does not know is refused …
    let (rt, conf) = seeder(&moto.url);
    let e = rt.block_on(
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
            .list_buckets()
            .send(),
    );
    assert!(e.is_err(), "moto checks keys now");
    // … and the differences `for_moto` mends are still moto's (module docs).
    check_moto_still_differs(&moto, &cw, &xray, &exact);

    // The agent as `agent`: every source reads everything, the exporter delivers, nothing is denied.
    let dir = root.path().join("full");
    std::fs::create_dir(&dir).unwrap();
    let cfg = config(port, &moto.url, &cw.url, &xray.url, Some((&agent.0, &agent.1)));
    let (totals, metrics, ok) = run_until(&dir, &cfg, port, |t, m| {
        t == want().as_slice() && counter(m, "slo_agent_export_data_points_total", &[("exporter", "cloudwatch")]) > 0.0
    });
    assert!(ok, "with the whole policy: {totals:?}\n{metrics}\n{}", agent_log(&dir));
    for (_, source) in ACTIONS {
        assert_eq!(access_denied(&metrics, source), 0.0, "{source}: {metrics}");
    }
    assert_eq!(counter(&metrics, "slo_agent_export_failures_total", &[]), 0.0, "{metrics}");
    // What the exporter put is there, read back as `admin`.
    let (crt, cconf) = seeder_as(&cw.url, &admin.0, &admin.1);
    let listed =
        crt.block_on(aws_sdk_cloudwatch::Client::new(&cconf).list_metrics().namespace("SloAgent").send()).unwrap();
    assert!(listed.metrics().iter().any(|m| m.metric_name() == Some("BurnRate")), "{listed:?}");

    // One action fewer: the source (or exporter) that needs it is denied; the others work.
    for (action, source, key) in &minus {
        let dir = root.path().join(format!("without-{}", action.replace(':', "-")));
        std::fs::create_dir(&dir).unwrap();
        let cfg = config(port, &moto.url, &cw.url, &xray.url, Some((&key.0, &key.1)));
        let others: Vec<(String, u64, u64)> = want()
            .into_iter()
            .map(|(slo, t, g)| if source != &"export" && slo == slo_of(source) { (slo, 0, 0) } else { (slo, t, g) })
            .collect();
        let (totals, metrics, ok) =
            run_until(&dir, &cfg, port, |t, m| access_denied(m, source) > 0.0 && t == others.as_slice());
        assert!(
            ok,
            "without {action}, {source} must be denied and the rest must work: {totals:?}\n{metrics}\n{}",
            agent_log(&dir)
        );
        eprintln!("without {action}: {source} denied {} times; {totals:?}", access_denied(&metrics, source));
        if *source == "export" {
            assert_eq!(counter(&metrics, "slo_agent_export_data_points_total", &[]), 0.0);
        }
        for (_, other) in ACTIONS.iter().filter(|(_, s)| s != source) {
            assert_eq!(access_denied(&metrics, other), 0.0, "without {action}, {other} is not denied: {metrics}");
        }
    }
}

/// What `for_moto` mends, asked of moto as `exact` (whose policy is the
/// command's, unmended): when one of these fails, moto has changed and the
/// mend can go.
fn check_moto_still_differs(moto: &Moto, cw: &CborProxy, xray: &XRayProxy, exact: &(String, String)) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    let now = SystemClock.now_ms();
    let (rt, conf) = seeder_as(&moto.url, &exact.0, &exact.1);
    let e = rt
        .block_on(
            aws_sdk_cloudwatchlogs::Client::new(&conf)
                .filter_log_events()
                .log_group_name("/aws/lambda/checkout")
                .send(),
        )
        .unwrap_err();
    let body = e.raw_response().map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string());
    assert!(
        body.as_deref().is_some_and(|b| b.contains("not authorized to perform: logs:FilterLogEvents")),
        "moto authorises FilterLogEvents on the log group's ARN now: {body:?}"
    );
    let (rt, conf) = seeder_as(&cw.url, &exact.0, &exact.1);
    let query = aws_sdk_cloudwatch::types::MetricDataQuery::builder()
        .id("q")
        .expression("SELECT SUM(Invocations) FROM \"AWS/Lambda\"")
        .period(60)
        .build();
    let e = rt
        .block_on(
            aws_sdk_cloudwatch::Client::new(&conf)
                .get_metric_data()
                .metric_data_queries(query)
                .start_time(DateTime::from_millis(now - 600_000))
                .end_time(DateTime::from_millis(now))
                .send(),
        )
        .unwrap_err();
    let text = aws_sdk_cloudwatch::error::DisplayErrorContext(&e).to_string();
    assert!(text.contains("monitoring:GetMetricData"), "moto names CloudWatch actions `cloudwatch:` now: {text}");
    let (rt, conf) = seeder_as(&xray.url, &exact.0, &exact.1);
    let e = rt
        .block_on(
            aws_sdk_xray::Client::new(&conf)
                .get_trace_summaries()
                .start_time(DateTime::from_millis(now - 60_000))
                .end_time(DateTime::from_millis(now))
                .send(),
        )
        .unwrap_err();
    let text = aws_sdk_xray::error::DisplayErrorContext(&e).to_string();
    assert!(text.contains("xray:TraceSummaries"), "moto names X-Ray actions as IAM does now: {text}");
}

fn agent_log(dir: &Path) -> String {
    let p: PathBuf = dir.join("agent.log");
    std::fs::read_to_string(p).unwrap_or_default()
}
