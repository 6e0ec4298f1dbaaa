//! The AWS pull sources against a real moto server: seeded with the AWS SDK,
//! read by the sources, counted exactly, resumed from checkpoints mid-way.
//! X-Ray calls go through [`XRayProxy`], which mends what moto answers
//! differently from the real API (see there).
//!
//! Each test starts its own `moto_server` on 127.0.0.1 (tests/run installs
//! it from PyPI). Without it the tests fail when `CI=true` and print a loud
//! skip message otherwise. The harness (moto, the CBOR and X-Ray proxies)
//! is in `common/moto.rs`.

#![cfg(feature = "aws")]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_xray::primitives::DateTime;
use slo_agent::clock::{Clock, ManualClock, SystemClock};
use slo_agent::decode::Format;
use slo_agent::event::{EventSink, RequestEvent};
use slo_agent::source::aws::cloudwatch_logs::CloudWatchLogsSource;
use slo_agent::source::aws::cloudwatch_metrics::CloudWatchMetricsSource;
use slo_agent::source::aws::config::{
    CloudWatchLogsConfig, CloudWatchMetricsConfig, LogGroupConfig, MetricQuery, S3Config, XRayConfig,
};
use slo_agent::source::aws::s3::S3Source;
use slo_agent::source::aws::xray::{XRayCheckpoint, XRaySource};
use slo_agent::source::{PollOutcome, Source};

mod common;
use common::moto::{CborProxy, Moto, XRayProxy, connection, put_segments, request_trace, seeder};
use common::{free_port, http_get};

// ---------------------------------------------------------------- harness

/// Events per (origin, service, status), as the engine would count them.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counts(BTreeMap<(String, String, u16), u64>);

impl Counts {
    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn get(&self, origin: &str, service: &str, status: u16) -> u64 {
        self.0.get(&(origin.to_string(), service.to_string(), status)).copied().unwrap_or(0)
    }

    fn add(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }
}

impl EventSink for Counts {
    fn event(&mut self, e: &RequestEvent<'_>) {
        self.events(e, 1)
    }

    fn events(&mut self, e: &RequestEvent<'_>, n: u64) {
        let origin = e.origin.map_or("-", |o| o.as_str()).to_string();
        *self.0.entry((origin, e.service.to_string(), e.status)).or_default() += n;
    }
}

/// Poll until the source says there is nothing more right now (bounded).
fn drain(src: &mut dyn Source, sink: &mut dyn EventSink) -> Vec<PollOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..200 {
        let o = src.poll(sink);
        let more = o.more;
        outcomes.push(o);
        if !more {
            return outcomes;
        }
    }
    panic!("the source still had more after 200 polls");
}

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

// ------------------------------------------------------- CloudWatch Logs

fn report_line(i: usize) -> String {
    let status = if i.is_multiple_of(10) { "\tStatus: timeout" } else { "" };
    format!(
        "REPORT RequestId: req-{i}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB{status}\t\n"
    )
}

fn apigw_line(i: usize, epoch_s: i64, status: u16) -> String {
    format!(
        r#"{{"requestId":"r{i}","ip":"203.0.113.5","requestTimeEpoch":"{epoch_s}","httpMethod":"GET","routeKey":"GET /cart/{{id}}","path":"/cart/{i}","status":"{status}","protocol":"HTTP/1.1","responseLength":"512","responseLatency":"25","integrationLatency":"21","domainName":"api.example.com","stage":"$default"}}"#
    )
}

fn cloudfront_line(ts_ms: i64, status: u16, i: usize) -> String {
    let t = jiff::Timestamp::from_millisecond(ts_ms).unwrap().to_zoned(jiff::tz::TimeZone::UTC);
    let (date, time) = (t.strftime("%Y-%m-%d").to_string(), t.strftime("%H:%M:%S").to_string());
    format!(
        "{date}\t{time}\tFRA56-P3\t1536\t203.0.113.34\tGET\td3k9x2example.cloudfront.net\t/p/{i}\t{status}\t-\tMozilla/5.0\t-\t-\tMiss\tid{i}==\tshop.example.com\thttps\t512\t0.187\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t50412\t0.187\tMiss\ttext/html\t1536\t-\t-"
    )
}

const APIGW_STATUSES: [u16; 5] = [200, 200, 404, 502, 429];

fn seed_logs(moto: &Moto, base_ms: i64) {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let (rt, conf) = seeder(&moto.url);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let put = |group: &str, stream: &str, events: Vec<(i64, String)>| {
        rt.block_on(async {
            let _ = logs.create_log_group().log_group_name(group).send().await;
            logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.unwrap();
            let events: Vec<InputLogEvent> = events
                .into_iter()
                .map(|(ts, m)| InputLogEvent::builder().timestamp(ts).message(m).build().unwrap())
                .collect();
            logs.put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .set_log_events(Some(events))
                .send()
                .await
                .unwrap();
        })
    };
    // Lambda: 40 invocations over two streams (START lines are no events),
    // several at the same millisecond.
    for (s, range) in [("2026/11/22/[$LATEST]a", 0..20), ("2026/11/22/[$LATEST]b", 20..40)] {
        let mut evs = Vec::new();
        for i in range {
            let ts = base_ms + (i as i64 % 20) * 1000;
            evs.push((ts, format!("START RequestId: req-{i} Version: $LATEST\n")));
            evs.push((ts, report_line(i)));
        }
        put("/aws/lambda/checkout", s, evs);
    }
    let api: Vec<(i64, String)> = (0..25)
        .map(|i| {
            let ts = base_ms + i as i64 * 500;
            (ts, apigw_line(i, ts / 1000, APIGW_STATUSES[i % 5]))
        })
        .collect();
    put("/aws/apigateway/shop", "access", api);
    let cf: Vec<(i64, String)> = (0..15)
        .map(|i| {
            let ts = base_ms + i as i64 * 700;
            (ts, cloudfront_line(ts, if i % 5 == 4 { 503 } else { 200 }, i))
        })
        .collect();
    put("/cloudfront/edge", "edge", cf);
}

fn logs_config(moto: &Moto, groups: &[&str], page_size: u32, max_pages: u32) -> CloudWatchLogsConfig {
    let group = |name: &str| {
        let (format, service) = match name {
            n if n.starts_with("/aws/lambda/") => (Format::Lambda, "checkout"),
            "/aws/apigateway/shop" => (Format::ApiGateway, "shop-api"),
            _ => (Format::CloudFront, "shop-edge"),
        };
        LogGroupConfig { name: name.to_string(), format, service: service.to_string() }
    };
    CloudWatchLogsConfig {
        name: "logs".into(),
        aws: connection(&moto.url),
        log_groups: groups.iter().map(|g| group(g)).collect(),
        start: Duration::from_secs(3600),
        delay: Duration::ZERO,
        poll_interval: Duration::from_millis(1),
        max_pages_per_poll: max_pages,
        page_size,
    }
}

const GROUPS: [&str; 3] = ["/aws/lambda/checkout", "/aws/apigateway/shop", "/cloudfront/edge"];

#[test]
fn cloudwatch_logs_every_event_once_across_pages_restarts_and_missing_groups() {
    let Some(moto) = Moto::start() else { return };
    let now = now_ms();
    seed_logs(&moto, now - 20 * 60_000);
    let clock = Arc::new(ManualClock::new(now));

    // One pass reads everything, with the Lambda REPORT lines timed by their log events.
    let mut one_pass = Counts::default();
    let mut src = CloudWatchLogsSource::new(logs_config(&moto, &GROUPS, 10_000, 100), None, clock.clone()).unwrap();
    let outcomes = drain(&mut src, &mut one_pass);
    assert!(outcomes.iter().all(|o| o.errors.is_empty() && o.rejects.total() == 0), "{outcomes:?}");
    assert_eq!(one_pass.get("lambda", "checkout", 200), 36, "{one_pass:?}");
    assert_eq!(one_pass.get("lambda", "checkout", 504), 4, "{one_pass:?}");
    for (status, n) in [(200, 10), (404, 5), (502, 5), (429, 5)] {
        assert_eq!(one_pass.get("apigateway", "shop-api", status), n, "{status}: {one_pass:?}");
    }
    assert_eq!(one_pass.get("cloudfront", "shop-edge", 200), 12, "{one_pass:?}");
    assert_eq!(one_pass.get("cloudfront", "shop-edge", 503), 3, "{one_pass:?}");
    assert_eq!(one_pass.total(), 80);

    // A second poll adds nothing; time moving on reads an empty window.
    std::thread::sleep(Duration::from_millis(5));
    clock.advance(60_000);
    let mut again = Counts::default();
    drain(&mut src, &mut again);
    assert_eq!(again.total(), 0, "{again:?}");

    // Pages of 7 events, one page per poll: stop after the first poll, drop
    // the source, resume from its checkpoint (without the page token).
    let clock = Arc::new(ManualClock::new(now));
    let mut parts = Counts::default();
    let mut first = CloudWatchLogsSource::new(logs_config(&moto, &GROUPS, 7, 1), None, clock.clone()).unwrap();
    let o = first.poll(&mut parts);
    assert!(o.more, "one page per poll leaves more to read");
    assert!(parts.total() > 0 && parts.total() < 80, "{parts:?}");
    let cp = first.checkpoint();
    drop(first);
    let cp_text = String::from_utf8(cp.clone()).unwrap();
    assert!(cp_text.contains("\"consumed\":7"), "mid-window checkpoint: {cp_text}");
    let mut rest = Counts::default();
    let mut second = CloudWatchLogsSource::new(logs_config(&moto, &GROUPS, 7, 1), Some(&cp), clock.clone()).unwrap();
    // Restart again after a few more pages, for good measure.
    for _ in 0..3 {
        second.poll(&mut rest);
    }
    let cp = second.checkpoint();
    drop(second);
    let mut third = CloudWatchLogsSource::new(logs_config(&moto, &GROUPS, 7, 1), Some(&cp), clock.clone()).unwrap();
    drain(&mut third, &mut rest);
    parts.add(&rest);
    assert_eq!(parts, one_pass, "poll, restart, poll gives the totals of one pass");

    // A missing log group is an error of its own; the others are read.
    let clock = Arc::new(ManualClock::new(now));
    let cfg = logs_config(&moto, &["/aws/lambda/does-not-exist", "/aws/lambda/checkout"], 10_000, 100);
    let mut src = CloudWatchLogsSource::new(cfg, None, clock).unwrap();
    let mut counts = Counts::default();
    let outcomes = drain(&mut src, &mut counts);
    assert_eq!(outcomes[0].errors, vec![("not_found", 1)]);
    assert_eq!(counts.get("lambda", "checkout", 200) + counts.get("lambda", "checkout", 504), 40);
    // Backing off: the next poll does not call for the missing group.
    let o = src.poll(&mut counts);
    assert!(o.errors.is_empty(), "{o:?}");
}

// ---------------------------------------------------- CloudWatch metrics

fn metric_queries() -> Vec<MetricQuery> {
    let q = |ns: &str, dims: &[(&str, &str)], service: &str| MetricQuery {
        namespace: ns.into(),
        dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        service: Some(service.into()),
        total: None,
        good: None,
        errors: None,
        error_rate_percent: None,
        throttles: None,
    };
    vec![
        MetricQuery {
            total: Some("Count".into()),
            errors: Some("5XXError".into()),
            ..q("AWS/ApiGateway", &[("ApiName", "shop")], "shop-api")
        },
        MetricQuery {
            total: Some("Invocations".into()),
            errors: Some("Errors".into()),
            throttles: Some("Throttles".into()),
            ..q("AWS/Lambda", &[("FunctionName", "checkout")], "checkout")
        },
        MetricQuery {
            total: Some("Requests".into()),
            error_rate_percent: Some("5xxErrorRate".into()),
            ..q("AWS/CloudFront", &[("DistributionId", "E2EXAMPLE"), ("Region", "Global")], "shop-edge")
        },
    ]
}

fn metrics_config(endpoint: &str, max_minutes: u32, settle: Duration) -> CloudWatchMetricsConfig {
    CloudWatchMetricsConfig {
        name: "metrics".into(),
        aws: connection(endpoint),
        service: "shop".into(),
        queries: metric_queries(),
        settle,
        start: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(1),
        max_minutes_per_poll: max_minutes,
    }
}

/// Ten minutes of datapoints, from `first_minute` on.
fn seed_metrics(endpoint: &str, first_minute: i64) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let (rt, conf) = seeder(endpoint);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let datum = |name: &str, dims: &[(&str, &str)], minute: i64, v: f64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(name)
            .set_dimensions(Some(dims.iter().map(|(k, v)| Dimension::builder().name(*k).value(*v).build()).collect()))
            .timestamp(DateTime::from_millis(minute + 10_000))
            .value(v)
            .unit(unit)
            .build()
    };
    let (api, fun, cf) = (
        [("ApiName", "shop")],
        [("FunctionName", "checkout")],
        [("DistributionId", "E2EXAMPLE"), ("Region", "Global")],
    );
    let mut per_ns: BTreeMap<&str, Vec<MetricDatum>> = BTreeMap::new();
    for k in 0..10i64 {
        let m = first_minute + k * 60_000;
        let count = StandardUnit::Count;
        per_ns.entry("AWS/ApiGateway").or_default().extend([
            datum("Count", &api, m, (100 + k) as f64, count.clone()),
            datum("5XXError", &api, m, (k % 3) as f64, count.clone()),
        ]);
        per_ns.entry("AWS/Lambda").or_default().extend([
            datum("Invocations", &fun, m, 50.0, count.clone()),
            datum("Errors", &fun, m, (k % 2) as f64, count.clone()),
            datum("Throttles", &fun, m, if k == 5 { 1.0 } else { 0.0 }, count.clone()),
        ]);
        per_ns.entry("AWS/CloudFront").or_default().extend([
            datum("Requests", &cf, m, 1000.0, count.clone()),
            datum("5xxErrorRate", &cf, m, 0.5, StandardUnit::Percent),
        ]);
    }
    for (ns, data) in per_ns {
        rt.block_on(cw.put_metric_data().namespace(ns).set_metric_data(Some(data)).send()).unwrap();
    }
}

fn expected_metrics() -> Counts {
    let mut c = Counts::default();
    let mut put = |o: &str, s: &str, st: u16, n: u64| {
        if n > 0 {
            *c.0.entry((o.to_string(), s.to_string(), st)).or_default() += n;
        }
    };
    for k in 0..10u64 {
        put("cloudwatch", "shop-api", 200, 100 + k - k % 3);
        put("cloudwatch", "shop-api", 500, k % 3);
        put("cloudwatch", "checkout", 200, 50 - k % 2);
        put("cloudwatch", "checkout", 500, k % 2);
        put("cloudwatch", "checkout", 429, u64::from(k == 5));
        put("cloudwatch", "shop-edge", 200, 995);
        put("cloudwatch", "shop-edge", 500, 5);
    }
    c
}

#[test]
fn cloudwatch_metrics_each_settled_minute_once_through_the_cbor_proxy() {
    let Some(moto) = Moto::start() else { return };
    let proxy = CborProxy::start(&moto.url);
    let now = now_ms();
    let this_minute = now.div_euclid(60_000) * 60_000;
    let first = this_minute - 30 * 60_000;
    seed_metrics(&proxy.url, first);
    let want = expected_metrics();

    // One pass.
    let clock = Arc::new(ManualClock::new(now));
    let mut one_pass = Counts::default();
    let mut src =
        CloudWatchMetricsSource::new(metrics_config(&proxy.url, 180, Duration::ZERO), None, clock.clone()).unwrap();
    let outcomes = drain(&mut src, &mut one_pass);
    assert!(outcomes.iter().all(|o| o.errors.is_empty()), "{outcomes:?}");
    assert_eq!(one_pass, want);
    assert_eq!(src.state().next_minute_ms, this_minute);
    std::thread::sleep(Duration::from_millis(5));
    let mut again = Counts::default();
    drain(&mut src, &mut again);
    assert_eq!(again.total(), 0, "a second poll adds nothing");

    // Throttled: counted as such, nothing read or moved, a backoff before the
    // next call, and then the same minutes, once.
    let mut t =
        CloudWatchMetricsSource::new(metrics_config(&proxy.url, 180, Duration::ZERO), None, clock.clone()).unwrap();
    let mut throttled = Counts::default();
    proxy.throttle.store(1, Ordering::SeqCst);
    let cp = t.checkpoint();
    let o = t.poll(&mut throttled);
    assert_eq!(o.errors, vec![("throttled", 1)], "{o:?}");
    assert_eq!((throttled.total(), o.advanced), (0, false));
    assert_eq!(t.checkpoint(), cp);
    proxy.throttle.store(1, Ordering::SeqCst);
    let o = t.poll(&mut throttled);
    assert!(o.errors.is_empty(), "no call while backing off: {o:?}");
    assert_eq!(proxy.throttle.load(Ordering::SeqCst), 1, "the proxy saw no request");
    proxy.throttle.store(0, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1100)); // the first backoff is 0.5-1 s
    drain(&mut t, &mut throttled);
    assert_eq!(throttled, want);

    // 35 minutes per poll: the first poll ends mid-data; resume from the checkpoint.
    let mut parts = Counts::default();
    let mut a =
        CloudWatchMetricsSource::new(metrics_config(&proxy.url, 35, Duration::ZERO), None, clock.clone()).unwrap();
    let o = a.poll(&mut parts);
    assert!(o.more);
    assert!(parts.total() > 0 && parts.total() < want.total(), "{parts:?}");
    let cp = a.checkpoint();
    drop(a);
    let mut b =
        CloudWatchMetricsSource::new(metrics_config(&proxy.url, 35, Duration::ZERO), Some(&cp), clock.clone()).unwrap();
    drain(&mut b, &mut parts);
    assert_eq!(parts, want, "poll, restart, poll gives the totals of one pass");

    // Settle: as the clock moves, each minute is read once it is 5 minutes old.
    let moving = Arc::new(ManualClock::new(first + 8 * 60_000 + 1));
    let cfg = metrics_config(&proxy.url, 180, Duration::from_secs(300));
    let mut s = CloudWatchMetricsSource::new(cfg, None, moving.clone()).unwrap();
    let mut settled = Counts::default();
    drain(&mut s, &mut settled);
    assert_eq!(settled.get("cloudwatch", "checkout", 200), (0..3).map(|k| 50 - k % 2).sum::<u64>(), "minutes 0-2");
    for _ in 0..20 {
        moving.advance(60_000);
        std::thread::sleep(Duration::from_millis(2));
        drain(&mut s, &mut settled);
    }
    assert_eq!(settled, want);

    // An endpoint that refuses connections: counted, backed off, no panic.
    let mut down = CloudWatchMetricsSource::new(
        metrics_config(&format!("http://127.0.0.1:{}", free_port()), 180, Duration::ZERO),
        None,
        clock.clone(),
    )
    .unwrap();
    let mut none = Counts::default();
    let o = down.poll(&mut none);
    assert_eq!(o.errors.len(), 1, "{o:?}");
    assert!(!o.advanced && none.total() == 0);
    let cp_before = down.checkpoint();
    let o = down.poll(&mut none);
    assert!(o.errors.is_empty(), "backing off: no call: {o:?}");
    assert_eq!(down.checkpoint(), cp_before);
}

// ------------------------------------------------------------------- S3

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A CloudFront standard log file: header and `n` records, every 4th a 502.
fn cloudfront_file(base_ms: i64, n: usize) -> Vec<u8> {
    let mut s = String::from(
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n",
    );
    for i in 0..n {
        s.push_str(&cloudfront_line(base_ms + i as i64 * 1000, if i % 4 == 3 { 502 } else { 200 }, i));
        s.push('\n');
    }
    s.into_bytes()
}

fn s3_config(moto: &Moto, bucket: &str, max_objects: u32, late_arrival: Duration) -> S3Config {
    S3Config {
        name: "cf-logs".into(),
        aws: connection(&moto.url),
        bucket: bucket.into(),
        prefix: "cf/".into(),
        format: Format::CloudFront,
        service: "shop-edge".into(),
        start_after: None,
        late_arrival,
        poll_interval: Duration::from_millis(1),
        max_objects_per_poll: max_objects,
        max_object_bytes: 1 << 20,
        force_path_style: true,
    }
}

#[test]
fn s3_objects_once_each_across_restarts_late_arrivals_and_a_missing_bucket() {
    let Some(moto) = Moto::start() else { return };
    let (rt, conf) = seeder(&moto.url);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    let put = |key: &str, body: Vec<u8>| {
        rt.block_on(s3.put_object().bucket("cf-logs").key(key).body(body.into()).send()).unwrap();
    };
    rt.block_on(s3.create_bucket().bucket("cf-logs").send()).unwrap();
    let base = now_ms() - 3 * 3_600_000;
    put("cf/E2EXAMPLE.2026-11-22-10.aaa.gz", gzip(&cloudfront_file(base, 10)));
    put("cf/E2EXAMPLE.2026-11-22-11.bbb.gz", gzip(&cloudfront_file(base + 3_600_000, 12)));
    put("cf/E2EXAMPLE.2026-11-22-12.ccc", cloudfront_file(base + 7_200_000, 5));
    put("other/E2EXAMPLE.2026-11-22-12.ddd.gz", gzip(&cloudfront_file(base, 7)));
    let clock = Arc::new(ManualClock::new(now_ms()));
    let day = Duration::from_secs(86_400);

    // One pass: 27 records in the three objects under the prefix.
    let mut one_pass = Counts::default();
    let mut src = S3Source::new(s3_config(&moto, "cf-logs", 100, day), None, clock.clone()).unwrap();
    let outcomes = drain(&mut src, &mut one_pass);
    assert!(outcomes.iter().all(|o| o.errors.is_empty() && o.rejects.total() == 0), "{outcomes:?}");
    assert_eq!(one_pass.get("cloudfront", "shop-edge", 200), 21, "{one_pass:?}");
    assert_eq!(one_pass.get("cloudfront", "shop-edge", 502), 6, "{one_pass:?}");
    assert_eq!(src.state().recent.len(), 3, "young keys are remembered one by one");
    std::thread::sleep(Duration::from_millis(5));
    let mut again = Counts::default();
    drain(&mut src, &mut again);
    assert_eq!(again.total(), 0, "a second sweep adds nothing");

    // One object per poll; restart after the first.
    let mut parts = Counts::default();
    let mut a = S3Source::new(s3_config(&moto, "cf-logs", 1, day), None, clock.clone()).unwrap();
    assert!(a.poll(&mut parts).more);
    assert_eq!(parts.total(), 10);
    let cp = a.checkpoint();
    drop(a);
    let mut b = S3Source::new(s3_config(&moto, "cf-logs", 1, day), Some(&cp), clock.clone()).unwrap();
    drain(&mut b, &mut parts);
    assert_eq!(parts, one_pass, "poll, restart, poll gives the totals of one pass");

    // A file delivered late, sorting before the others, is still read, once.
    put("cf/E2EXAMPLE.2026-11-22-09.zzz.gz", gzip(&cloudfront_file(base - 3_600_000, 4)));
    std::thread::sleep(Duration::from_millis(5));
    let mut late = Counts::default();
    drain(&mut src, &mut late);
    assert_eq!(late.total(), 4, "{late:?}");
    std::thread::sleep(Duration::from_millis(5));
    drain(&mut src, &mut late);
    assert_eq!(late.total(), 4, "{late:?}");

    // Once keys are older than late_arrival the watermark passes them and
    // they are forgotten one by one.
    let later = Arc::new(ManualClock::new(now_ms() + 2 * 86_400_000));
    let mut old = S3Source::new(s3_config(&moto, "cf-logs", 100, day), Some(&src.checkpoint()), later).unwrap();
    let mut none = Counts::default();
    drain(&mut old, &mut none);
    assert_eq!(none.total(), 0);
    assert!(old.state().recent.is_empty(), "{:?}", old.state());
    assert_eq!(old.state().watermark.as_deref(), Some("cf/E2EXAMPLE.2026-11-22-12.ccc"));

    // A missing bucket: an error in the outcome and the logs, no panic, nothing moves.
    let mut missing = S3Source::new(s3_config(&moto, "no-such-bucket", 100, day), None, clock).unwrap();
    let mut none = Counts::default();
    let o = missing.poll(&mut none);
    assert_eq!(o.errors, vec![("not_found", 1)], "{o:?}");
    assert_eq!(none.total(), 0);
}

// ------------------------------------------- the daemon, from agent.yaml

/// (name, total, good) of every SLO, as the running agent reports them.
fn slo_totals(port: u16) -> Option<Vec<(String, u64, u64)>> {
    let report: serde_json::Value = serde_json::from_str(&http_get(port, "/api/v1/slos")?).ok()?;
    report["slos"]
        .as_array()?
        .iter()
        .map(|s| Some((s["name"].as_str()?.to_string(), s["events"]["total"].as_u64()?, s["events"]["good"].as_u64()?)))
        .collect()
}

const DAEMON_SPECS: &str = r#"
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: checkout-lambda}
spec:
  service: checkout
  objective: 99
  window: 1d
  indicator: {source: lambda, filter: {service: checkout}, good: {status: "< 500"}}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: checkout-metrics}
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
"#;

#[test]
fn the_agent_runs_aws_sources_from_its_config_and_a_restart_counts_nothing_twice() {
    let Some(moto) = Moto::start() else { return };
    let proxy = CborProxy::start(&moto.url);
    let now = now_ms();
    seed_logs(&moto, now - 20 * 60_000);
    seed_metrics(&proxy.url, now.div_euclid(60_000) * 60_000 - 30 * 60_000);
    let (rt, conf) = seeder(&moto.url);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    rt.block_on(s3.create_bucket().bucket("cf-logs").send()).unwrap();
    for (key, body) in [
        ("cf/E2EXAMPLE.2026-11-22-10.aaa.gz", gzip(&cloudfront_file(now - 3 * 3_600_000, 10))),
        ("cf/E2EXAMPLE.2026-11-22-11.bbb.gz", gzip(&cloudfront_file(now - 2 * 3_600_000, 12))),
    ] {
        rt.block_on(s3.put_object().bucket("cf-logs").key(key).body(body.into()).send()).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("specs.yaml"), DAEMON_SPECS).unwrap();
    let port = free_port();
    let creds = "credentials: {access_key_id: testing, secret_access_key: testing}";
    let config = format!(
        r#"specs: [specs.yaml]
state: state.redb
listen: 127.0.0.1:{port}
tick: 200ms
poll_interval: 50ms
sources:
  - name: lambda-logs
    type: cloudwatch-logs
    region: us-east-1
    endpoint_url: {moto}
    {creds}
    log_groups: [{{name: /aws/lambda/checkout, service: checkout}}]
    delay: 0s
    poll_interval: 100ms
  - name: fn-metrics
    type: cloudwatch-metrics
    region: us-east-1
    endpoint_url: {proxy}
    {creds}
    settle: 0s
    start: 1h
    poll_interval: 100ms
    queries:
      - namespace: AWS/Lambda
        dimensions: {{FunctionName: checkout}}
        service: checkout-fn
        total: Invocations
        errors: Errors
        throttles: Throttles
  - name: cf-s3
    type: s3
    region: us-east-1
    endpoint_url: {moto}
    {creds}
    bucket: cf-logs
    prefix: cf/
    service: shop-edge
    force_path_style: true
    poll_interval: 100ms
"#,
        moto = moto.url,
        proxy = proxy.url,
    );
    let config_path = dir.path().join("agent.yaml");
    std::fs::write(&config_path, config).unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_slo-agent"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("SLO_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Lambda: 40 invocations, 4 timeouts. Metrics: 500 invocations (5
    // errors) and 1 throttle (429, good under "< 500"). S3: 22 records, 5 x 502.
    let want = vec![
        ("checkout-lambda".to_string(), 40, 36),
        ("checkout-metrics".to_string(), 501, 496),
        ("edge".to_string(), 22, 17),
    ];
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        got = slo_totals(port);
        if got.as_ref() == Some(&want) {
            break;
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert_eq!(got, Some(want.clone()), "the agent's counts");
    assert!(status.success(), "graceful shutdown: {status:?}");

    // A restart resumes from the committed checkpoints: nothing new, nothing twice.
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    while Instant::now() < deadline && seen < 5 {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(t) = slo_totals(port) {
            assert_eq!(t, want, "after a restart");
            seen += 1;
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert_eq!(seen, 5, "the restarted agent answered");
}

// ------------------------------------------------------------------ X-Ray

/// Per request: (service, path, status, [gateway, lambda overhead, invocation, init]).
type Wanted = BTreeMap<String, (String, String, u16, [f64; 4])>;

/// 13 requests, a second apart from 10 minutes before `now`, every fourth
/// cold: what the decomposition must find by trace id, and their documents.
fn thirteen_requests(now: i64) -> (Wanted, Vec<String>) {
    let mut want = BTreeMap::new();
    let mut docs = Vec::new();
    for i in 0..13u32 {
        let cold = (i % 4 == 0).then_some(150);
        let (id, d, figures) = request_trace(i, now - 10 * 60_000 + i as i64 * 1000, cold);
        want.insert(id, ("shop-api".to_string(), format!("/cart/{i}"), 200u16, figures));
        docs.extend(d);
    }
    (want, docs)
}

fn xray_config(endpoint: &str) -> XRayConfig {
    XRayConfig {
        name: "traces".into(),
        aws: connection(endpoint),
        service: String::new(),
        filter: Some("service(\"shop-api/prod\")".into()),
        start: Duration::from_secs(15 * 60),
        delay: Duration::from_secs(60),
        poll_interval: Duration::from_secs(1),
        max_range_per_poll: Duration::from_secs(30 * 60),
        max_traces_per_poll: 100,
    }
}

/// Each traced request's figures, by trace id: (service, path, status,
/// gateway, lambda overhead, invocation, init or 0), and a hop decomposition fed with them.
#[derive(Default)]
struct Traced {
    by_id: Wanted,
    hops: slo_agent::hops::Hops,
}

impl EventSink for Traced {
    fn event(&mut self, e: &RequestEvent<'_>) {
        assert_eq!(e.origin, Some(slo_agent::event::Origin::XRay));
        let gateway = e.latency_ms.unwrap() - e.upstream_latency_ms.unwrap();
        let figures = [gateway, e.lambda_overhead_ms.unwrap(), e.invocation_ms.unwrap(), e.init_ms.unwrap_or(0.0)];
        let row = (e.service.to_string(), e.path.to_string(), e.status, figures);
        assert!(self.by_id.insert(e.trace_id.to_string(), row).is_none(), "{} twice", e.trace_id);
        self.hops.observe(e, 1);
    }
}

#[test]
fn xray_traces_decomposed_once_each_through_pages_batches_and_restarts() {
    let Some(moto) = Moto::start() else { return };
    let proxy = XRayProxy::start(&moto.url, true, 4);
    let now = now_ms() / 1000 * 1000;
    // 13 requests 10 minutes ago, and a trace of a table alone, which has nothing to decompose.
    let (mut want, mut docs) = thirteen_requests(now);
    // One on the boundary of the next range (moto answers it for both; the source reads it once).
    let (id, d, figures) = request_trace(30, now - 60_000 - 500, None);
    want.insert(id, ("shop-api".to_string(), "/cart/30".to_string(), 200u16, figures));
    docs.extend(d);
    let table = serde_json::json!({"id": "00000000000000ff", "name": "orders", "trace_id": "1-00000000-000000000000000000000fff",
        "start_time": (now - 9 * 60_000) as f64 / 1000.0, "end_time": (now - 9 * 60_000 + 5) as f64 / 1000.0,
        "origin": "AWS::DynamoDB::Table"});
    docs.push(table.to_string());
    put_segments(&moto.url, docs);

    let clock = Arc::new(ManualClock::new(now));
    let mut src = XRaySource::new(xray_config(&proxy.url), None, clock.clone()).unwrap();
    let mut got = Traced::default();
    let outcomes = drain(&mut src, &mut got);
    assert!(outcomes.iter().all(|o| o.errors.is_empty()), "{outcomes:?}");
    assert_eq!(got.by_id.len(), 14);
    for (id, (service, path, status, figures)) in &got.by_id {
        let (ws, wp, wst, wf) = &want[id];
        assert_eq!((service, path, status), (ws, wp, wst));
        for (g, w) in figures.iter().zip(wf) {
            assert!((g - w).abs() < 0.01, "{id}: {figures:?} vs {wf:?}");
        }
    }
    let rejects: u64 = outcomes.iter().map(|o| o.rejects.total()).sum();
    assert_eq!(rejects, 1, "the table's trace: {outcomes:?}");
    assert_eq!(src.stats().undecomposed, 1);
    {
        let seen = proxy.seen.lock().unwrap();
        // 15 summaries in pages of 4; 15 ids in calls of at most 5.
        assert_eq!(seen.summary_calls, 4);
        assert_eq!(seen.filters, vec!["service(\"shop-api/prod\")"; 4]);
        assert_eq!(seen.batches, [5, 5, 5]);
    }
    let boundary = want.keys().find(|k| k.ends_with("abc01e")).unwrap().clone();
    let cp = XRayCheckpoint { next_ms: now - 60_000, range: None, recent: vec![boundary] };
    assert_eq!(src.state(), &cp);

    // The per-request figures reach the hop decomposition, per route.
    let a = slo_agent::hops::answer::from_logs(&got.hops.view(now), "shop-api", Some("/cart/{id}"), 15, 180);
    let hop = |n: &str| a.hops.iter().find(|h| h.name == n).unwrap_or_else(|| panic!("{n} in {a:#?}"));
    assert_eq!((hop("gateway").basis, hop("gateway").count), ("traced", 14));
    assert_eq!(hop("lambda_overhead").basis, "traced");
    assert!((hop("lambda_overhead").p50_ms - 6.0).abs() < 0.3, "{a:#?}");
    let cold = hop("cold_start");
    assert_eq!((cold.basis, cold.count, cold.share), ("traced", 14, Some(0.2857)));
    assert_eq!(a.joins.unwrap().traced, 14);

    // Nothing is read twice: not by the same source, not after a restart.
    let checkpoint = src.checkpoint();
    std::thread::sleep(Duration::from_millis(1100));
    let o = src.poll(&mut got);
    assert!(!o.advanced && o.lines == 0, "{o:?}");
    let mut restarted = XRaySource::new(xray_config(&proxy.url), Some(&checkpoint), clock.clone()).unwrap();
    // Two more requests after the checkpoint, then time moves on.
    let mut later = Vec::new();
    for i in 20..22u32 {
        let (id, d, figures) = request_trace(i, now - 30_000 + i as i64, None);
        want.insert(id, ("shop-api".to_string(), format!("/cart/{i}"), 200, figures));
        later.extend(d);
    }
    put_segments(&moto.url, later);
    clock.advance(3 * 60_000);
    let mut after = Traced::default();
    let outcomes = drain(&mut restarted, &mut after);
    assert!(outcomes.iter().all(|o| o.errors.is_empty()), "{outcomes:?}");
    assert_eq!(
        after.by_id.keys().collect::<Vec<_>>(),
        want.keys().filter(|k| k.ends_with("abc014") || k.ends_with("abc015")).collect::<Vec<_>>()
    );
    assert_eq!(restarted.state().next_ms, now + 2 * 60_000);

    // Trace ids from events (API Gateway's xrayTraceId, a probe's header): the same batching.
    let probe_header = format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", want.keys().next().unwrap());
    let root = slo_agent::hops::xray::root_trace_id(&probe_header).unwrap().to_string();
    let mut ids: Vec<String> = want.keys().take(7).cloned().collect();
    ids.push(root);
    ids.push("1-00000000-000000000000000000000000".into());
    let fetched = restarted.fetch_traces(&ids).unwrap();
    assert_eq!(fetched.requests.len(), 7);
    assert_eq!(fetched.unprocessed, ["1-00000000-000000000000000000000000"]);
    // The first poll's 5 + 5 + 5, the restart's 2, then these 8 ids.
    assert_eq!(proxy.seen.lock().unwrap().batches[4..], [5, 3]);

    // A batch refused in the middle of a range: the batches before it are
    // emitted and in the checkpoint; a restart fetches only the rest.
    // A fresh source reading from just before the 13 requests (moto's range start is exclusive).
    let start = 13 * 60_000 + 1000;
    let cfg = XRayConfig { start: Duration::from_millis(start as u64), ..xray_config(&proxy.url) };
    let mut first = XRaySource::new(cfg.clone(), None, clock.clone()).unwrap();
    let calls = proxy.seen.lock().unwrap().batches.len();
    proxy.seen.lock().unwrap().throttle_batch = calls + 2;
    let mut part = Traced::default();
    let o = first.poll(&mut part);
    assert_eq!(o.errors, vec![("throttled", 1)], "{o:?}");
    assert_eq!(part.by_id.len(), 5);
    let cp = first.state().clone();
    assert_eq!(cp.range.as_ref().map(|r| (r.ids.len(), r.fetched)), Some((17, 5)), "{cp:?}");
    let mut resumed = XRaySource::new(cfg, Some(&first.checkpoint()), clock.clone()).unwrap();
    let outcomes = drain(&mut resumed, &mut part);
    assert!(outcomes.iter().all(|o| o.errors.is_empty()), "{outcomes:?}");
    assert_eq!(part.by_id.len(), 16, "the 14 and the 2 later ones, each once");
    assert!(resumed.state().range.is_none());
}

#[test]
fn xray_without_the_harness_fix_moto_is_refused_and_nothing_moves() {
    let Some(moto) = Moto::start() else { return };
    let raw = XRayProxy::start(&moto.url, false, 100);
    let now = now_ms() / 1000 * 1000;
    let (_, docs, _) = request_trace(1, now - 5 * 60_000, None);
    put_segments(&moto.url, docs);
    let clock = Arc::new(ManualClock::new(now));
    let mut src = XRaySource::new(xray_config(&raw.url), None, clock).unwrap();
    let before = src.checkpoint();
    let mut got = Traced::default();
    let o = src.poll(&mut got);
    // moto's `"Users": {}` is not the API's list: the SDK refuses the answer.
    assert_eq!(o.errors.len(), 1, "{o:?}");
    assert!(got.by_id.is_empty() && !o.advanced);
    assert_eq!(src.checkpoint(), before);
    // Why: the SDK's own words. When moto answers a list, this fails and the harness fix can go.
    let (rt, conf) = seeder(&raw.url);
    let client = aws_sdk_xray::Client::new(&conf);
    let (from, to) = (DateTime::from_millis(now - 600_000), DateTime::from_millis(now));
    let e = rt.block_on(client.get_trace_summaries().start_time(from).end_time(to).send()).unwrap_err();
    let text = aws_sdk_xray::error::DisplayErrorContext(&e).to_string();
    assert!(text.contains("expected start array") && text.contains(r#"\"Users\":{}"#), "{text}");
}

#[test]
fn the_agent_reads_xray_traces_into_an_slo_and_the_hops_answer() {
    let Some(moto) = Moto::start() else { return };
    let proxy = XRayProxy::start(&moto.url, true, 100);
    let now = now_ms() / 1000 * 1000;
    put_segments(&moto.url, thirteen_requests(now).1);
    let dir = tempfile::tempdir().unwrap();
    let specs = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: traced}\nspec:\n  service: shop-api\n  objective: 99\n  window: 1d\n  indicator: {source: xray, filter: {service: shop-api}, good: {status: \"< 500\"}}\n";
    std::fs::write(dir.path().join("specs.yaml"), specs).unwrap();
    let port = free_port();
    let config = format!(
        "specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\nsources:\n  - name: traces\n    type: xray\n    region: us-east-1\n    endpoint_url: {}\n    credentials: {{access_key_id: testing, secret_access_key: testing}}\n    start: 15m\n    delay: 0s\n    poll_interval: 100ms\n",
        proxy.url
    );
    let config_path = dir.path().join("agent.yaml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = common::start(&config_path);
    let want = vec![("traced".to_string(), 13, 13)];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = None;
    while Instant::now() < deadline && got.as_ref() != Some(&want) {
        std::thread::sleep(Duration::from_millis(300));
        got = slo_totals(port);
    }
    let hops = http_get(port, "/api/v1/hops?service=shop-api&route=/cart/%7Bid%7D");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert_eq!(got, Some(want), "an SLO on `source: xray` counts the traced requests");
    let hops: serde_json::Value = serde_json::from_str(&hops.expect("/api/v1/hops answers")).unwrap();
    let hop = |name: &str| hops["hops"].as_array().unwrap().iter().find(|h| h["name"] == name).cloned().unwrap();
    for name in ["gateway", "lambda_overhead", "function", "cold_start"] {
        assert_eq!(hop(name)["basis"], "traced", "{hops:#}");
    }
    assert_eq!(hop("gateway")["count"], 13);
    assert_eq!(hop("cold_start")["share"], 0.3077);
    assert_eq!(hops["joins"]["traced"], 13);
}

// ---------------------------------------------------------------- backups to S3

/// `slo-agent backup --out s3://bucket/prefix/` uploads a checked backup
/// with the standard credential chain (here: env, and `AWS_ENDPOINT_URL`
/// pointing at moto); `restore --from s3://…` brings it back.
#[test]
fn backups_go_to_an_s3_prefix_and_restore_from_there() {
    let Some(moto) = Moto::start() else { return };
    let (rt, conf) = seeder(&moto.url);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    rt.block_on(s3.create_bucket().bucket("ops-backups").send()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    {
        let store = slo_agent::store::Store::open(&state).unwrap();
        let entry = slo_agent::auth::AuditEntry::new(now_ms(), "ops", None, "spec.reload", None, "ok", None);
        store.append_audit(&entry).unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(common::bin())
            .args(args)
            .current_dir(dir.path())
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("TMPDIR", dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["backup", "--state", "state.redb", "--out", "s3://ops-backups/slo-agent/"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let listed = rt.block_on(s3.list_objects_v2().bucket("ops-backups").prefix("slo-agent/").send()).unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(url, format!("s3://ops-backups/{}", keys[0]));
    assert!(keys[0].starts_with("slo-agent/slo-agent-") && keys[0].ends_with(".backup"), "{keys:?}");

    let out = run(&["restore", "--from", &url, "--state", "restored.redb"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = slo_agent::store::Store::open(&dir.path().join("restored.redb")).unwrap();
    assert_eq!(restored.audit(10).unwrap()[0].action, "spec.reload");
    // Nothing is left in the temporary directory.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");

    // A bucket that is not there: exit 2 with the service's reason.
    let out = run(&["backup", "--state", "state.redb", "--out", "s3://no-such-bucket/x.backup"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NoSuchBucket") || err.contains("does not exist"), "{err}");
}
