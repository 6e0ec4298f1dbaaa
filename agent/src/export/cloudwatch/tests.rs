use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::spec::model::ALERT_WINDOWS;

fn cfg(windows: &[u32], dimensions: &[(&str, &str)]) -> CloudWatchExportConfig {
    CloudWatchExportConfig {
        mode: CloudWatchMode::Emf { file: None },
        namespace: "SloAgent".into(),
        interval: Duration::from_secs(60),
        windows: windows.iter().map(|&m| Minutes(m)).collect(),
        dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn slo(name: &str, sli: Option<f64>, good: u64, total: u64, burn: &[(u32, Option<f64>)]) -> SloFigures {
    SloFigures {
        slo: name.into(),
        service: "shop".into(),
        sli,
        budget_remaining: 0.25,
        burn_rates: burn.iter().map(|&(m, b)| (Minutes(m), b)).collect(),
        counted: Counts { good, total },
    }
}

/// 2023-11-14T22:13:20Z.
const AT: i64 = 1_700_000_000_000;

fn figures() -> Figures {
    Figures {
        at_ms: AT,
        slos: vec![
            slo("checkout-availability", Some(0.995), 995, 1000, &[(5, Some(14.5)), (60, Some(2.0)), (360, None)]),
            // No events in the window yet: no SLI, no burn rate.
            slo("search-latency", None, 0, 0, &[(5, None), (60, None)]),
        ],
    }
}

/// Checks one document against the Embedded Metric Format specification:
/// the `_aws` metadata (a millisecond `Timestamp`, directives of a
/// `Namespace`, `Dimensions` as arrays of at most 30 names each naming a
/// string member of the root, at most 100 `Metrics` each naming a numeric
/// member of the root, with a CloudWatch unit), and nothing a target
/// member would collide with.
fn check_emf(doc: &Value) {
    let root = doc.as_object().expect("a document is a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let ts = aws["Timestamp"].as_i64().expect("Timestamp is an integer");
    assert!(ts > 1_000_000_000_000, "Timestamp is in milliseconds: {ts}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace is a string");
        assert!(!ns.is_empty() && ns.len() <= 255);
        let sets = d["Dimensions"].as_array().expect("Dimensions is an array of dimension sets");
        for set in sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "at most 30 dimensions in a set");
            for name in set {
                let name = name.as_str().expect("a dimension is named by a string");
                let v = root.get(name).unwrap_or_else(|| panic!("dimension {name} is a member of the root"));
                assert!(v.as_str().is_some_and(|v| !v.is_empty()), "dimension {name}'s value is a non-empty string");
            }
        }
        let metrics = d["Metrics"].as_array().expect("Metrics is an array");
        assert!(!metrics.is_empty() && metrics.len() <= 100, "1 to 100 metric definitions");
        for m in metrics {
            let name = m["Name"].as_str().expect("a metric definition has a Name");
            assert!(root.get(name).is_some_and(|v| v.as_f64().is_some_and(f64::is_finite)), "{name} is a number");
            let unit = m["Unit"].as_str().expect("a Unit");
            assert!(["Count", "None", "Percent", "Seconds", "Milliseconds"].contains(&unit), "{unit}");
        }
    }
}

#[test]
fn emf_documents_follow_the_specification_and_carry_every_figure() {
    let c = cfg(&[5, 60, 360], &[("Cluster", "prod")]);
    let e = export(&figures(), &c, &Sent::default());
    let docs = emf::documents(&e, &c);
    for d in &docs {
        check_emf(d);
    }
    crate::testing::golden::check_json("src/export/cloudwatch/golden/emf.json", &Value::Array(docs.clone()));
    // One line per document, each parsing back to it.
    let text = emf::lines(&e, &c);
    let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed, docs);
    assert!(text.ends_with('\n'));
    // The figures: SLI, budget, counts; one document per window with a burn rate.
    let first = &docs[0];
    assert_eq!(first["_aws"]["Timestamp"], AT);
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Service", "SLO", "Cluster"]]));
    assert_eq!((first["SLI"].as_f64(), first["ErrorBudgetRemaining"].as_f64()), (Some(0.995), Some(0.25)));
    assert_eq!(
        (first["Events"].as_f64(), first["GoodEvents"].as_f64(), first["BadEvents"].as_f64()),
        (Some(1000.0), Some(995.0), Some(5.0))
    );
    let burns: Vec<(&str, f64)> = docs
        .iter()
        .filter(|d| d.get("BurnRate").is_some())
        .map(|d| (d["Window"].as_str().unwrap(), d["BurnRate"].as_f64().unwrap()))
        .collect();
    assert_eq!(burns, [("5m", 14.5), ("1h", 2.0)], "6h has no events: no data point");
    assert_eq!(
        docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Service", "SLO", "Window", "Cluster"]])
    );
    // The SLO without data: its budget and zero counts, no SLI, no burn rate.
    let quiet: Vec<&Value> = docs.iter().filter(|d| d["SLO"] == "search-latency").collect();
    assert_eq!(quiet.len(), 1);
    assert!(quiet[0].get("SLI").is_none());
    assert_eq!(quiet[0]["Events"].as_f64(), Some(0.0));
}

#[test]
fn event_counts_are_what_was_counted_since_the_last_delivered_export() {
    let c = cfg(&[], &[]);
    let mut sent = Sent::default();
    let events =
        |e: &Export| -> Vec<f64> { e.slos[0].data.iter().filter(|d| d.unit == Unit::Count).map(|d| d.value).collect() };
    let mut f = Figures { at_ms: AT, slos: vec![slo("a", Some(0.99), 99, 100, &[])] };
    let e = export(&f, &c, &sent);
    assert_eq!(events(&e), [100.0, 99.0, 1.0]);
    // Not delivered: the next export carries these counts too.
    f.slos[0].counted = Counts { good: 140, total: 150 };
    let e = export(&f, &c, &sent);
    assert_eq!(events(&e), [150.0, 140.0, 10.0]);
    sent.commit("a", e.slos[0].counted);
    let e = export(&f, &c, &sent);
    assert_eq!(events(&e), [0.0, 0.0, 0.0], "nothing new: zeros, so alarms see data");
    f.slos[0].counted = Counts { good: 141, total: 152 };
    assert_eq!(events(&export(&f, &c, &sent)), [2.0, 1.0, 1.0]);
    // An SLO reset by a spec change counts from zero again.
    f.slos[0].counted = Counts { good: 3, total: 4 };
    assert_eq!(events(&export(&f, &c, &sent)), [4.0, 3.0, 1.0]);
    // A removed SLO is forgotten: what is kept is bounded by the SLOs loaded.
    sent.retain(&Figures { at_ms: AT, slos: vec![] });
    assert_eq!(sent, Sent::default());
}

#[test]
fn batches_hold_whole_slos_within_the_call_limit() {
    let c = cfg(&ALERT_WINDOWS.map(|m| m.0), &[]);
    let burns: Vec<(u32, Option<f64>)> = ALERT_WINDOWS.iter().map(|m| (m.0, Some(1.0))).collect();
    let slos: Vec<SloFigures> = (0..250).map(|i| slo(&format!("slo-{i}"), Some(0.9), 9, 10, &burns)).collect();
    let e = export(&Figures { at_ms: AT, slos }, &c, &Sent::default());
    assert_eq!(e.slos[0].data.len(), 12, "SLI, budget, three counts, seven burn rates");
    let batches = e.batches(MAX_DATA_PER_CALL, MAX_BYTES_PER_CALL, 0);
    assert_eq!(batches.len(), 4, "3000 points in calls of 83 whole SLOs (996 points), and one");
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [83, 83, 83, 1]);
    let mut seen = Vec::new();
    for b in &batches {
        let points: usize = b.iter().map(|&i| e.slos[i].data.len()).sum();
        assert!(points <= MAX_DATA_PER_CALL, "{points}");
        seen.extend(b.iter().copied());
    }
    assert_eq!(seen, (0..250).collect::<Vec<_>>(), "every SLO once, in order");
    assert_eq!(
        e.batches(5, MAX_BYTES_PER_CALL, 0),
        (0..250).map(|i| vec![i]).collect::<Vec<_>>(),
        "an SLO larger than the limit goes alone"
    );
    assert!(Export { at_ms: AT, slos: vec![] }.batches(10, 10, 0).is_empty());
    // Long names: the request's size limits a call before the point count does.
    let long = "x".repeat(1024);
    let slos: Vec<SloFigures> = (0..100)
        .map(|i| SloFigures { service: long.clone(), ..slo(&format!("{i}{long}"), Some(0.9), 9, 10, &burns) })
        .collect();
    let e = export(&Figures { at_ms: AT, slos }, &c, &Sent::default());
    let batches = e.batches(MAX_DATA_PER_CALL, MAX_BYTES_PER_CALL, 0);
    assert!(batches.len() > 2, "{} batches", batches.len());
    for b in &batches {
        let bytes: usize = b.iter().map(|&i| e.slos[i].size_estimate(0)).sum();
        assert!(bytes <= MAX_BYTES_PER_CALL, "{bytes}");
    }
}

#[test]
fn values_cloudwatch_refuses_are_left_out_and_dimension_values_are_made_acceptable() {
    let mut s = slo("a", Some(f64::NAN), 1, 1, &[(5, Some(f64::INFINITY))]);
    s.budget_remaining = f64::NEG_INFINITY;
    let e = export(&Figures { at_ms: AT, slos: vec![s] }, &cfg(&[5], &[]), &Sent::default());
    let names: Vec<&str> = e.slos[0].data.iter().map(|d| d.metric).collect();
    assert_eq!(names, [EVENTS, GOOD_EVENTS, BAD_EVENTS]);
    assert_eq!(dimension_value("checkout"), "checkout");
    assert_eq!(dimension_value("café\nbar"), "caf__bar");
    assert_eq!(dimension_value(""), "_");
    assert_eq!(dimension_value(&"x".repeat(2000)).len(), 1024);
}

#[test]
fn a_failing_exporter_logs_once_per_interval_and_says_when_it_recovers() {
    let t0 = tokio::time::Instant::now();
    let mut log = FailureLog::default();
    assert_eq!(log.failed(t0), Some(0), "the first failure is logged");
    assert_eq!(log.failed(t0 + Duration::from_secs(60)), None);
    assert_eq!(log.failed(t0 + Duration::from_secs(120)), None);
    assert_eq!(log.failed(t0 + LOG_EVERY), Some(2), "then once per LOG_EVERY, with what was not logged");
    assert_eq!(log.succeeded(), 4);
    assert_eq!(log.succeeded(), 0, "a success after a success is nothing to say");
    assert_eq!(log.failed(t0 + LOG_EVERY + Duration::from_secs(1)), Some(0), "a new outage is logged at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_emf_file_gets_whole_lines_and_an_unwritable_one_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emf.log");
    let sink = emf::EmfSink::new(Some(path.clone()));
    sink.write("{\"a\":1}\n".into(), Duration::from_secs(5)).await.unwrap();
    // Rotated away: the next write makes a new file.
    std::fs::rename(&path, dir.path().join("emf.log.1")).unwrap();
    sink.write("{\"b\":2}\n".into(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"b\":2}\n");
    let bad = emf::EmfSink::new(Some(dir.path().join("no-such-dir/emf.log")));
    let e = bad.write("x\n".into(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.kind, "io", "{e:?}");
    // The failure did not leave the sink stuck.
    let e = bad.write("x\n".into(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.kind, "io", "{e:?}");
}

/// A reader that does not read (a stuck stdout pipe): the write times out,
/// the next exports fail at once as busy instead of queueing writes, and
/// once the reader reads, writing works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[allow(unsafe_code)] // the `unsafe` inside carries its SAFETY comment
async fn a_stuck_output_times_out_and_never_queues_writes() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sink = emf::EmfSink::new(Some(fifo.clone()));
    let e = sink.write("{\"a\":1}\n".into(), Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(e.kind, "timeout", "{e:?}");
    let e = sink.write("{\"b\":2}\n".into(), Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(e.kind, "busy", "{e:?}");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::fs::File::open(&fifo).unwrap().read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(reader.join().unwrap(), "{\"a\":1}\n", "the stuck write ended; the busy one was never queued");
    for _ in 0..100 {
        if !sink.is_busy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!sink.is_busy());
}
