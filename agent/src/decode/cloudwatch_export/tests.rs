use super::*;
use crate::event::RequestEvent;

const REPORT: &str = "REPORT RequestId: 5b1f0d8e-1c2a-4f3b-9e8d-7c6b5a4f3e21\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t\n";

#[test]
fn containers_are_told_from_their_first_bytes() {
    assert_eq!(detect(b"timestamp,message\n1,x\n"), Some(Container::Csv));
    assert_eq!(detect(b"\xEF\xBB\xBF@timestamp,@message,@logStream,@log\r\n"), Some(Container::Csv));
    assert_eq!(detect(b"\"@timestamp\",\"@message\"\n"), Some(Container::Csv));
    assert_eq!(detect(b"{\n    \"events\": [\n        {\n            \"timestamp\": 1,"), Some(Container::Json));
    assert_eq!(detect(b"{\"results\":[[{\"field\":\"@message\",\"value\":\"x\"}]]}"), Some(Container::Json));
    assert_eq!(detect(b"[{\"@timestamp\":\"2026-11-21 08:00:00.000\",\"@message\":\"x\"}]"), Some(Container::Json));
    assert_eq!(detect(b"[\n  {\"timestamp\": 1, \"message\": \"x\", \"ingestionTime\": 2}\n]"), Some(Container::Json));
    assert_eq!(detect(b"[[{\"field\":\"@message\",\"value\":\"x\"}]]"), Some(Container::Json));
    assert_eq!(detect(b"{\"@timestamp\":\"2026-11-21 08:00:00.000\",\"@message\":\"x\"}\n{"), Some(Container::Json));
    assert_eq!(detect(b"{\"timestamp\":\"2026-11-21T08:00:00Z\",\"message\":\"app says hi\"}\n"), None);
    // Not exports: line formats, subscription payloads, Telemetry API batches.
    assert_eq!(detect(b"{\"ts\":\"2024-05-01T12:00:00Z\",\"status\":200,\"events\":[1]}"), None);
    assert_eq!(detect(b"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[]}"), None);
    assert_eq!(
        detect(b"[{\"time\":\"t\",\"type\":\"platform.report\",\"record\":{\"message\":\"m\",\"timestamp\":1}}]"),
        None
    );
    assert_eq!(detect(b"198.51.100.7,-,-,21/Nov/2026:08:00:08 +0000,GET,/a,HTTP/1.1,404,23,id,xid\n"), None);
    assert_eq!(detect(b"#Version: 1.0\n"), None);
    assert_eq!(detect(b"REPORT RequestId: a\tDuration: 1 ms\n"), None);
    assert_eq!(detect(b"timestamp,status\n"), None);
    assert_eq!(detect(b""), None);
}

#[test]
fn csv_rows_are_unquoted() {
    let cols = CsvColumns::from_header(b"@timestamp,@message,@logStream,@log\r\n").expect("header");
    let mut scratch = CsvScratch::default();
    let row = b"2026-11-21 08:00:00.392,\"say \"\"hi\"\", then, \nbye\",2026/11/21/[$LATEST]abc,123456789012:/aws/lambda/checkout\r\n";
    let ev = cols.row(row, &mut scratch).expect("row");
    assert_eq!(ev.ts_ms, Some(1_795_248_000_392));
    assert_eq!(ev.message, b"say \"hi\", then, \nbye");
    assert_eq!(ev.stream, "2026/11/21/[$LATEST]abc");
    assert_eq!(ev.group, "/aws/lambda/checkout");
    // Only the columns that are there.
    let cols = CsvColumns::from_header(b"message").expect("header");
    let ev = cols.row(b"hello", &mut scratch).expect("row");
    assert_eq!((ev.ts_ms, ev.message, ev.group), (None, &b"hello"[..], ""));
    // A last message column left unquoted keeps its commas.
    let cols = CsvColumns::from_header(b"timestamp,message").expect("header");
    let ev = cols.row(b"1795248000392,a, b,c\n", &mut scratch).expect("row");
    assert_eq!(ev.message, b"a, b,c");
}

#[test]
fn broken_csv_rows_are_rejected_with_a_reason() {
    let cols = CsvColumns::from_header(b"timestamp,message").expect("header");
    let mut scratch = CsvScratch::default();
    let mut reason = |row: &[u8]| cols.row(row, &mut scratch).err();
    assert_eq!(reason(b"1795248000000"), Some(RejectReason::MissingField));
    assert_eq!(reason(b"yesterday,x"), Some(RejectReason::BadTimestamp));
    assert_eq!(reason(b"2026-13-01 00:00:00.000,x"), Some(RejectReason::BadTimestamp));
    assert_eq!(reason(b"1795248000000,\"open"), Some(RejectReason::BadField));
    assert_eq!(reason(b"1795248000000,\"x\"y"), Some(RejectReason::BadField));
    assert_eq!(reason(b"1795248000000,a\"b"), Some(RejectReason::BadField));
    assert_eq!(reason(b"1795248000000,"), None, "an empty message is the decoder's business");
}

#[test]
fn export_times() {
    assert_eq!(export_time("1795248000392"), Some(1_795_248_000_392));
    assert_eq!(export_time("2026-11-21 08:00:00.392"), Some(1_795_248_000_392));
    assert_eq!(export_time("2026-11-21T08:00:00.392Z"), Some(1_795_248_000_392));
    assert_eq!(export_time("2026-11-21T09:00:00.392+01:00"), Some(1_795_248_000_392));
    assert_eq!(export_time("2026-11-21T08:00:00"), Some(1_795_248_000_000));
    assert_eq!(export_time("2026-11-21 08:00:00"), Some(1_795_248_000_000));
    assert_eq!(export_time("21/Nov/2026:08:00:00 +0000"), None);
    assert_eq!(export_time("-5"), None);
    assert_eq!(export_time(""), None);
}

fn json_events(json: &str) -> Vec<JsonLogEvent> {
    let mut seen = Vec::new();
    let mut on_event = |ev| seen.push(ev);
    let mut de = serde_json::Deserializer::from_reader(json.as_bytes());
    de::DeserializeSeed::deserialize(EventsSeed { on_event: &mut on_event }, &mut de).expect("json");
    seen
}

#[test]
fn json_shapes_stream_their_events() {
    let cli = r#"{"events": [{"timestamp": 1795248000123, "message": "a\n", "ingestionTime": 1795248000500},
        {"logStreamName": "s", "timestamp": 1795248000124, "message": "b", "ingestionTime": 1, "eventId": "1"}],
        "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}"#;
    let got = json_events(cli);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_event().unwrap().message, b"a\n");
    assert_eq!(
        got[1].as_event().unwrap(),
        LogEvent { ts_ms: Some(1_795_248_000_124), message: b"b", group: "", stream: "s" }
    );
    let insights = r#"[{"@timestamp": "2026-11-21 08:00:00.392", "@message": "m", "@log": "123456789012:/aws/x"}]"#;
    let got = json_events(insights);
    assert_eq!(
        got[0].as_event().unwrap(),
        LogEvent { ts_ms: Some(1_795_248_000_392), message: b"m", group: "/aws/x", stream: "" }
    );
    let results = r#"{"results": [[{"field": "@timestamp", "value": "2026-11-21 08:00:00.392"}, {"field": "@message", "value": "m"}, {"field": "@ptr", "value": "xyz"}]], "status": "Complete"}"#;
    assert_eq!(json_events(results)[0].as_event().unwrap().ts_ms, Some(1_795_248_000_392));
    // Logs Insights events one per line: each object is an event.
    let lines = "{\"@timestamp\": \"2026-11-21 08:00:00.392\", \"@message\": \"m1\"}\n{\"@message\": \"m2\"}\n";
    let mut seen = Vec::new();
    let mut on_event = |ev: JsonLogEvent| seen.push(ev.message);
    let mut de = serde_json::Deserializer::from_reader(lines.as_bytes());
    for _ in 0..2 {
        de::DeserializeSeed::deserialize(EventsSeed { on_event: &mut on_event }, &mut de).expect("json");
    }
    de.end().expect("the end");
    assert_eq!(seen, vec![Some("m1".to_string()), Some("m2".to_string())]);
    // Unusable events are told apart from the end of the file.
    let bad = r#"[{"timestamp": "noon", "message": "m"}, {"timestamp": 1}, {"timestamp": 1, "message": 7}, 3, [{"value": "x"}]]"#;
    let reasons: Vec<_> = json_events(bad).iter().map(|e| e.as_event().err()).collect();
    use RejectReason::*;
    assert_eq!(reasons, vec![Some(BadTimestamp), Some(MissingField), Some(BadField), Some(BadField), Some(BadField)]);
}

type Seen = Vec<(i64, u16)>;

fn route(
    events: &[(&str, Option<i64>, &str)],
    routes: Vec<LogGroupRoute>,
    format: Format,
) -> (Seen, RouterStats, Rejects) {
    let mut router = LogEventRouter::new("svc", routes, format);
    let mut seen = Vec::new();
    let mut rejects = Rejects::default();
    let mut sink = |e: &RequestEvent<'_>| seen.push((e.ts_ms, e.status));
    for (group, ts_ms, message) in events {
        let ev = LogEvent { ts_ms: *ts_ms, message: message.as_bytes(), group, stream: "" };
        router.log_event(ev, || "f:1".into(), &mut sink, &mut rejects);
    }
    (seen, router.finish(), rejects)
}

#[test]
fn lambda_reports_take_the_event_time_and_wait_for_their_format() {
    let events = [
        // The function's output first: nothing tells the format yet.
        ("", Some(1_795_248_000_100), "2026-11-21T08:00:00.100Z\tid\tINFO\tbasket priced\n"),
        ("", Some(1_795_248_000_200), "{\"level\":\"INFO\",\"msg\":\"json output\"}\n"),
        ("", Some(1_795_248_000_300), REPORT),
        ("", None, REPORT),
    ];
    let (seen, stats, rejects) = route(&events, Vec::new(), Format::Auto);
    assert_eq!(seen, vec![(1_795_248_000_300, 200)]);
    assert_eq!(rejects.by_reason[&RejectReason::MissingField].count, 1, "a report without any time");
    assert_eq!((stats.log_events, stats.unrouted_log_events, stats.told), (4, 0, true));
}

#[test]
fn groups_are_routed_and_the_untold_counted() {
    let apigw = r#"{"requestId":"r1","requestTimeEpoch":1795248001000,"httpMethod":"GET","resourcePath":"/a","status":"502","responseLatency":"9"}"#;
    let events = [
        ("/aws/lambda/checkout", Some(1_795_248_000_300), REPORT),
        ("/custom/gateway", Some(1), apigw),
        ("/custom/quiet", Some(1), "nothing to tell\n"),
        ("/custom/quiet", Some(2), "still nothing\n"),
    ];
    let (seen, stats, _) = route(&events, Vec::new(), Format::Auto);
    assert_eq!(seen, vec![(1_795_248_000_300, 200), (1_795_248_001_000, 502)]);
    assert_eq!(stats.unrouted_log_events, 2);
    assert_eq!(stats.unrouted_groups, vec!["/custom/quiet".to_string()]);
    // A named format reads every group no route covers.
    let (seen, stats, rejects) = route(&events[2..], Vec::new(), Format::Lambda);
    assert_eq!((seen.len(), stats.unrouted_log_events, rejects.total()), (0, 0, 0));
    // A route wins over the named format.
    let gw = LogGroupRoute {
        log_group: crate::spec::glob::Glob::new("/custom/*").unwrap(),
        format: Format::ApiGateway,
        service: None,
    };
    let (seen, _, rejects) = route(&events[..2], vec![gw], Format::Ndjson);
    assert_eq!(seen.len(), 1, "/aws/lambda/* is not routed once routes are given: ndjson rejects the report");
    assert_eq!(rejects.by_reason[&RejectReason::BadJson].count, 1);
}

#[test]
fn waiting_is_bounded() {
    let mut router = LogEventRouter::new("svc", Vec::new(), Format::Auto);
    let mut rejects = Rejects::default();
    let mut sink = |_: &RequestEvent<'_>| {};
    for _ in 0..MAX_PENDING_EVENTS + 5 {
        let ev = LogEvent { ts_ms: Some(1), message: b"chatter", group: "", stream: "" };
        router.log_event(ev, || "f".into(), &mut sink, &mut rejects);
    }
    assert_eq!(router.pending.len(), MAX_PENDING_EVENTS);
    let stats = router.finish();
    assert_eq!((stats.unrouted_log_events, stats.told), (MAX_PENDING_EVENTS as u64 + 5, false));
    assert_eq!(stats.unrouted_groups, vec!["(no log group)".to_string()]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]
    #[test]
    fn arbitrary_rows_and_json_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = detect(&bytes);
        let _ = CsvColumns::from_header(&bytes);
        let cols = CsvColumns::from_header(b"@timestamp,@message,@log").unwrap();
        let _ = cols.row(&bytes, &mut CsvScratch::default());
        let mut router = LogEventRouter::new("svc", Vec::new(), Format::Auto);
        let mut rejects = Rejects::default();
        let mut sink = |_: &RequestEvent<'_>| {};
        let _ = json_events_in(&bytes, |ev| {
            if let Ok(e) = ev.as_event() {
                router.log_event(e, || "p".into(), &mut sink, &mut rejects);
            }
        });
        let _ = router.finish();
    }
}
