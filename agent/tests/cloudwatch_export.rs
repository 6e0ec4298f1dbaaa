//! `export.cloudwatch` with `mode: put_metric_data` against a real moto
//! server: the agent counts a file, puts its SLO figures into CloudWatch,
//! and what CloudWatch holds (read back with the SDK's GetMetricData and
//! ListMetrics) equals the agent's own figures on `/metrics`, event counts
//! included, across failed exports. Then a burn-rate alarm, as
//! deploy/aws/ sets one up, over the exported metric.
//!
//! What moto does with alarms: it stores them (PutMetricAlarm,
//! DescribeAlarms, DescribeAlarmsForMetric) and lets SetAlarmState change
//! their state, but it never evaluates them: a new alarm is `OK` with the
//! reason "Unchecked: Initial alarm creation" whatever its metric holds
//! (AWS would start at INSUFFICIENT_DATA and evaluate). So the test
//! evaluates the alarm's rule itself on the data points moto holds, and
//! asserts that moto did not (if moto starts evaluating, that assertion
//! says so).
//!
//! The agent runs in-process on a fixed clock, so every evaluation, and so
//! every export, carries the same figures at the same time.

#![cfg(feature = "aws")]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StateValue, Statistic,
};
use slo_agent::clock::{Clock, ManualClock, SystemClock};

mod common;
use common::moto::{CborProxy, Moto, seeder};
use common::{free_port, http_get, write_agent_config, write_outage_log};

/// The value of one series in an exposition: `name{labels…} value`, the labels
/// given as `key="value"` pairs that must all be there.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return None;
        }
        let (series, value) = l.rsplit_once(' ')?;
        labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\""))).then(|| value.parse().ok())?
    })
}

fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs.iter().map(|(k, v)| Dimension::builder().name(*k).value(*v).build()).collect()
}

const SLO: [(&str, &str); 3] = [("Service", "shop"), ("SLO", "shop-availability"), ("Cluster", "test")];

#[test]
fn the_agent_puts_its_figures_into_cloudwatch_and_an_alarm_watches_the_burn_rate() {
    let Some(moto) = Moto::start() else { return };
    let proxy = CborProxy::start(&moto.url);
    let now = SystemClock.now_ms();
    let dir = tempfile::tempdir().unwrap();
    // An hour of 20 requests a minute, the last three minutes all 503.
    write_outage_log(&dir.path().join("app.log"), &["/cart", "/pay"], now);
    let port = free_port();
    let cfg = write_agent_config(
        dir.path(),
        port,
        &format!(
            "sources:\n  - {{name: app, type: file, paths: [app.log], format: ndjson}}\nexport:\n  cloudwatch:\n    mode: put_metric_data\n    region: us-east-1\n    endpoint_url: {}\n    credentials: {{access_key_id: testing, secret_access_key: testing}}\n    interval: 1s\n    windows: [5m, 1h]\n    dimensions: {{Cluster: test}}\n",
            proxy.url
        ),
    );
    // The first three exports are refused: their counts must reach CloudWatch later.
    proxy.throttle.store(3, Ordering::SeqCst);
    let config = slo_agent::config::load(&cfg).unwrap_or_else(|d| panic!("{d:?}"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = rt.spawn(slo_agent::runtime::run(config, Arc::new(ManualClock::new(now)), async move {
        let _ = stopped.await;
    }));

    // The test reads through a proxy of its own: the agent's refuses its first calls.
    let reader = CborProxy::start(&moto.url);
    let (crt, conf) = seeder(&reader.url);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let minute = now.div_euclid(60_000) * 60_000;
    // (Sum, Minimum, Maximum) of a metric's data points in the minute of `now`.
    let stats = |metric: &str, d: &[(&str, &str)]| -> Vec<f64> {
        let query = |id: &str, stat: &str| {
            let m = Metric::builder().namespace("SloAgent").metric_name(metric).set_dimensions(Some(dims(d))).build();
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(MetricStat::builder().metric(m).period(60).stat(stat).build())
                .build()
        };
        let out = crt
            .block_on(
                cw.get_metric_data()
                    .metric_data_queries(query("s", "Sum"))
                    .metric_data_queries(query("lo", "Minimum"))
                    .metric_data_queries(query("hi", "Maximum"))
                    .start_time(DateTime::from_millis(minute))
                    .end_time(DateTime::from_millis(minute + 60_000))
                    .send(),
            )
            .unwrap();
        ["s", "lo", "hi"]
            .iter()
            .map(|id| {
                let r = out.metric_data_results().iter().find(|r| r.id() == Some(id)).unwrap();
                r.values().first().copied().unwrap_or(f64::NAN)
            })
            .collect()
    };

    // Until CloudWatch holds every counted event (1200) and the agent has exported since.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = String::new();
    loop {
        assert!(Instant::now() < deadline, "CloudWatch never held the agent's counts:\n{metrics}");
        std::thread::sleep(Duration::from_millis(500));
        metrics = http_get(port, "/metrics").unwrap_or_default();
        let counted = sample(&metrics, "slo_agent_slo_events_total", &[("slo", "shop-availability")]);
        if counted == Some(1200.0) && stats("Events", &SLO)[0] == 1200.0 {
            break;
        }
    }
    // Exports went on while the figures did not change; then stop the agent.
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = http_get(port, "/metrics").unwrap();
    let _ = stop.send(());
    rt.block_on(agent).unwrap().unwrap();

    // Every failed export is counted, by kind; the events they carried were sent later.
    let failures =
        sample(&metrics, "slo_agent_export_failures_total", &[("exporter", "cloudwatch"), ("error", "throttled")]);
    assert_eq!(failures, Some(3.0), "{metrics}");
    assert!(sample(&metrics, "slo_agent_export_data_points_total", &[("exporter", "cloudwatch")]).unwrap() > 0.0);
    let fig = |name: &str, extra: &[(&str, &str)]| {
        let mut l = vec![("slo", "shop-availability")];
        l.extend_from_slice(extra);
        sample(&metrics, name, &l).unwrap_or_else(|| panic!("{name} {extra:?} in\n{metrics}"))
    };
    let good = fig("slo_agent_slo_good_events_total", &[]);
    assert_eq!(good, 1140.0);
    assert_eq!(stats("Events", &SLO)[0], 1200.0, "the counted events, each once, across failed exports");
    assert_eq!(stats("GoodEvents", &SLO)[0], good);
    assert_eq!(stats("BadEvents", &SLO)[0], 1200.0 - good);
    // Gauges: every export sent the agent's own figure (the clock is fixed).
    for (metric, d, agent_figure) in [
        ("SLI", SLO.to_vec(), fig("slo_agent_slo_sli_ratio", &[])),
        ("ErrorBudgetRemaining", SLO.to_vec(), fig("slo_agent_slo_error_budget_remaining_ratio", &[])),
        (
            "BurnRate",
            [&SLO[..2], &[("Window", "5m")], &SLO[2..]].concat(),
            fig("slo_agent_slo_burn_rate_ratio", &[("window", "5m")]),
        ),
        (
            "BurnRate",
            [&SLO[..2], &[("Window", "1h")], &SLO[2..]].concat(),
            fig("slo_agent_slo_burn_rate_ratio", &[("window", "1h")]),
        ),
    ] {
        let s = stats(metric, &d);
        assert_eq!((s[1], s[2]), (agent_figure, agent_figure), "{metric} {d:?}: min and max {s:?}");
    }
    // The metrics and their dimensions, as documented: nothing else.
    let listed = crt.block_on(cw.list_metrics().namespace("SloAgent").send()).unwrap();
    let mut seen: Vec<(String, Vec<String>)> = listed
        .metrics()
        .iter()
        .map(|m| {
            let mut names: Vec<String> = m.dimensions().iter().map(|d| d.name().unwrap().to_string()).collect();
            names.sort();
            (m.metric_name().unwrap().to_string(), names)
        })
        .collect();
    seen.sort();
    seen.dedup();
    let d3 = |w: bool| {
        let mut v = vec!["Cluster".to_string(), "SLO".into(), "Service".into()];
        if w {
            v.push("Window".into());
            v.sort();
        }
        v
    };
    assert_eq!(
        seen,
        [
            ("BadEvents".to_string(), d3(false)),
            ("BurnRate".into(), d3(true)),
            ("ErrorBudgetRemaining".into(), d3(false)),
            ("Events".into(), d3(false)),
            ("GoodEvents".into(), d3(false)),
            ("SLI".into(), d3(false)),
        ]
    );

    // The fast-burn alarm of deploy/aws/: BurnRate over 5m above 14.4.
    let alarm = "shop-availability-fast-burn";
    let burn_dims = dims(&[("Service", "shop"), ("SLO", "shop-availability"), ("Window", "5m"), ("Cluster", "test")]);
    crt.block_on(
        cw.put_metric_alarm()
            .alarm_name(alarm)
            .namespace("SloAgent")
            .metric_name("BurnRate")
            .set_dimensions(Some(burn_dims.clone()))
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(14.4)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data("notBreaching")
            .send(),
    )
    .unwrap();
    let found = crt
        .block_on(
            cw.describe_alarms_for_metric()
                .namespace("SloAgent")
                .metric_name("BurnRate")
                .set_dimensions(Some(burn_dims))
                .send(),
        )
        .unwrap();
    let names: Vec<&str> = found.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(names, [alarm], "the alarm watches the exported metric with its documented dimensions");
    let a = &found.metric_alarms()[0];
    assert_eq!((a.threshold(), a.statistic()), (Some(14.4), Some(&Statistic::Maximum)));
    // moto never evaluates an alarm: a new one is OK, "unchecked", whatever its metric holds …
    assert_eq!(a.state_value(), Some(&StateValue::Ok), "moto evaluates alarms now: use it");
    assert_eq!(a.state_reason(), Some("Unchecked: Initial alarm creation"), "moto evaluates alarms now: use it");
    // … so the test does: the largest 5m burn rate in the period, against the threshold.
    let burn =
        stats("BurnRate", &[("Service", "shop"), ("SLO", "shop-availability"), ("Window", "5m"), ("Cluster", "test")])
            [2];
    assert!(burn > 14.4, "an outage of three minutes burns the budget fast: {burn}");
    // What a deployment's rollback reads: the alarm's state (set by hand in moto).
    crt.block_on(
        cw.set_alarm_state()
            .alarm_name(alarm)
            .state_value(StateValue::Alarm)
            .state_reason(format!("BurnRate 5m {burn:.1} > 14.4 (evaluated by the test)"))
            .send(),
    )
    .unwrap();
    let in_alarm = crt.block_on(cw.describe_alarms().state_value(StateValue::Alarm).send()).unwrap();
    assert_eq!(in_alarm.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect::<Vec<_>>(), [alarm]);
}
