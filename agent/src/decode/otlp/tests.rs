use proptest::prelude::*;

use super::test_encoder::{Message, otlp_json_to_protobuf};
use super::*;
use crate::decode::{Format, render_event};

const SVC: &str = "shop";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/otlp/");

/// `render_event` plus the fields this decoder fills that it leaves out.
fn render(e: &RequestEvent<'_>) -> String {
    let mut s = render_event(e);
    if !e.route.is_empty() {
        s.push_str(&format!(" route={}", e.route));
    }
    s.push_str(&format!(" outcome={}", e.outcome.as_str()));
    s
}

fn render_stats(s: &OtlpStats) -> String {
    let r = &s.rejected;
    format!(
        "stats spans={} server_spans={} events={} rejected: missing_time={} end_before_start={} bad_status={}\n",
        s.spans, s.server_spans, s.events, r.missing_time, r.end_before_start, r.bad_status
    )
}

type DecodeFn = fn(&[u8], &str, &mut dyn EventSink) -> Result<OtlpStats, OtlpError>;

/// The events of one request, one line each, then its stats; or the error.
fn run(decode: DecodeFn, body: &[u8]) -> Result<String, OtlpError> {
    let mut out = String::new();
    let stats = decode(body, SVC, &mut |e: &RequestEvent<'_>| {
        out.push_str(&render(e));
        out.push('\n');
    })?;
    assert_eq!(stats.events + stats.rejected_spans(), stats.server_spans, "every server span is counted once");
    out.push_str(&render_stats(&stats));
    Ok(out)
}

fn json(body: &str) -> Result<String, OtlpError> {
    run(decode_traces_json, body.as_bytes())
}

fn protobuf(body: &[u8]) -> Result<String, OtlpError> {
    run(decode_traces_protobuf, body)
}

/// Both encodings of one JSON request must give `expected` (leading
/// whitespace and blank lines in it are ignored).
#[track_caller]
fn check(request: &str, expected: &str) {
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    let got = json(request).unwrap_or_else(|e| panic!("{e}\n{request}"));
    assert_eq!(got, want, "JSON\n{request}");
    let value: serde_json::Value = serde_json::from_str(request).expect("test JSON");
    let got = protobuf(&otlp_json_to_protobuf(&value)).unwrap_or_else(|e| panic!("{e}\n{request}"));
    assert_eq!(got, want, "protobuf\n{request}");
}

/// A request with one server span ending at 2026-11-20T12:00:00.01Z after
/// 10 ms, with `attributes` (a JSON array's contents) and `status`.
fn one_span(attributes: &str, status: &str) -> String {
    format!(
        concat!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"kind":2,"startTimeUnixNano":"1795176000000000000","#,
            r#""endTimeUnixNano":"1795176000010000000","attributes":[{attributes}],"status":{status}}}]}}]}}]}}"#
        ),
        attributes = attributes,
        status = status
    )
}

fn string_attr(key: &str, value: &str) -> String {
    format!(r#"{{"key":"{key}","value":{{"stringValue":"{value}"}}}}"#)
}

fn int_attr(key: &str, value: i64) -> String {
    format!(r#"{{"key":"{key}","value":{{"intValue":"{value}"}}}}"#)
}

fn fixture() -> (Vec<u8>, serde_json::Value) {
    let body = std::fs::read(format!("{FIXTURES}request.json")).expect("fixture");
    let value = serde_json::from_slice(&body).expect("fixture is JSON");
    (body, value)
}

#[test]
fn fixture_matches_golden_output() {
    let (body, _) = fixture();
    let got = run(decode_traces_json, &body).expect("the fixture decodes");
    crate::testing::golden::check_text(&format!("{FIXTURES}request.expected"), &got);
}

#[test]
fn protobuf_and_json_of_one_request_give_the_same_events() {
    let (body, value) = fixture();
    let from_json = run(decode_traces_json, &body).expect("JSON decodes");
    let pb = otlp_json_to_protobuf(&value);
    assert_eq!(protobuf(&pb).expect("protobuf decodes"), from_json);
}

#[test]
fn collector_file_lines() {
    let (_, value) = fixture();
    let line = serde_json::to_string(&value).expect("one line");
    assert_eq!(Format::detect(line.as_bytes()), Some(Format::OtlpJson));
    let input = format!("{line}\n\n{line}\r\n{{\"resourceSpans\":[}}\n{}", one_span("", "{}"));
    let mut decoder = Format::OtlpJson.decoder(SVC).expect("a line decoder");
    let mut out = String::new();
    for line in input.as_bytes().split(|&b| b == b'\n') {
        let mut events = Vec::new();
        let result = decoder.decode_line(line, &mut |e: &RequestEvent<'_>| events.push(render(e)));
        for e in events {
            out.push_str(&e);
            out.push('\n');
        }
        if let Err(r) = result {
            out.push_str(&format!("reject {}\n", r.reason));
        }
    }
    let (body, _) = fixture();
    let events: String = run(decode_traces_json, &body).unwrap().lines().filter(|l| !l.starts_with("stats")).fold(
        String::new(),
        |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        },
    );
    // The fixture has spans with bad times: its good spans count, and the
    // line is one reject.
    let want = format!(
        "{events}reject bad_timestamp\n{events}reject bad_timestamp\nreject bad_json\n\
         2026-11-20T12:00:00.01Z otlp shop   \"\" 0 latency=10 outcome=unknown\n"
    );
    assert_eq!(out, want);
}

#[test]
fn status_and_outcome() {
    let status = |attrs: &str, span_status: &str| -> String {
        let got = json(&one_span(attrs, span_status)).expect("decodes");
        let event = got.lines().next().expect("a line").to_owned();
        let status = event.split(' ').nth(6).expect("status").to_owned();
        let outcome = event.rsplit_once("outcome=").expect("outcome").1.to_owned();
        format!("{status} {outcome}")
    };
    let new = |code| int_attr("http.response.status_code", code);
    let old = |code| int_attr("http.status_code", code);
    assert_eq!(status(&new(200), "{}"), "200 success");
    assert_eq!(status(&new(404), "{}"), "404 success");
    assert_eq!(status(&new(404), r#"{"code":2}"#), "404 error");
    assert_eq!(status(&new(429), "{}"), "429 throttled");
    assert_eq!(status(&new(429), r#"{"code":2}"#), "429 throttled");
    assert_eq!(status(&new(500), "{}"), "500 error");
    assert_eq!(status(&new(503), r#"{"code":1}"#), "503 error");
    assert_eq!(status(&old(502), "{}"), "502 error");
    assert_eq!(status(&string_attr("http.status_code", "301"), "{}"), "301 success");
    assert_eq!(status(&format!("{},{}", new(200), old(500)), "{}"), "200 success");
    // No HTTP status: none, unless the span failed.
    assert_eq!(status("", "{}"), "0 unknown");
    assert_eq!(status("", "null"), "0 unknown");
    assert_eq!(status("", r#"{"code":1}"#), "0 success");
    assert_eq!(status("", r#"{"code":2,"message":"boom"}"#), "500 error");
    assert_eq!(status(&new(0), "{}"), "0 success");
}

#[test]
fn bad_status_attributes_reject_the_span() {
    for attr in [
        int_attr("http.response.status_code", 1000),
        int_attr("http.response.status_code", -1),
        string_attr("http.status_code", "OK"),
        string_attr("http.status_code", "2000"),
        r#"{"key":"http.status_code","value":{"doubleValue":200.0}}"#.to_owned(),
        r#"{"key":"http.status_code","value":{"boolValue":true}}"#.to_owned(),
        // The current convention wins even when it is the bad one.
        format!("{},{}", string_attr("http.response.status_code", "x"), int_attr("http.status_code", 200)),
    ] {
        let got = json(&one_span(&attr, "{}")).expect("decodes");
        assert_eq!(
            got, "stats spans=1 server_spans=1 events=0 rejected: missing_time=0 end_before_start=0 bad_status=1\n",
            "{attr}"
        );
    }
}

#[test]
fn times_and_rejected_spans() {
    let span = |start: &str, end: &str| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"kind":2{start}{end}}}]}}]}}]}}"#,
            start = if start.is_empty() { String::new() } else { format!(r#","startTimeUnixNano":{start}"#) },
            end = if end.is_empty() { String::new() } else { format!(r#","endTimeUnixNano":{end}"#) },
        )
    };
    let first = |s: &str| json(s).expect("decodes").lines().next().unwrap().to_owned();
    // Numbers and strings; the time is the end, rounded down to the millisecond.
    assert_eq!(
        first(&span("1", r#""1000001""#)),
        r#"1970-01-01T00:00:00.001Z otlp shop   "" 0 latency=1 outcome=unknown"#
    );
    assert_eq!(
        first(&span("1795176000000000000", "1.7951760001e18")),
        r#"2026-11-20T12:00:00.1Z otlp shop   "" 0 latency=100 outcome=unknown"#
    );
    assert_eq!(
        first(&span(r#""18446744073709551614""#, r#""18446744073709551615""#)),
        r#"2554-07-21T23:34:33.709Z otlp shop   "" 0 latency=0.000001 outcome=unknown"#
    );
    let rejected = |start: &str, end: &str| {
        let s = json(&span(start, end)).expect("decodes");
        s.strip_prefix("stats spans=1 server_spans=1 events=0 rejected: ").expect(&s).trim_end().to_owned()
    };
    assert_eq!(rejected("", "5"), "missing_time=1 end_before_start=0 bad_status=0");
    assert_eq!(rejected("5", ""), "missing_time=1 end_before_start=0 bad_status=0");
    assert_eq!(rejected(r#""0""#, "5"), "missing_time=1 end_before_start=0 bad_status=0");
    assert_eq!(rejected("null", "5"), "missing_time=1 end_before_start=0 bad_status=0");
    assert_eq!(rejected("6", "5"), "missing_time=0 end_before_start=1 bad_status=0");
    let stats = OtlpStats {
        server_spans: 4,
        events: 1,
        rejected: SpanRejects { missing_time: 2, end_before_start: 0, bad_status: 1 },
        ..OtlpStats::default()
    };
    assert_eq!(stats.rejected_spans(), 3);
    assert_eq!(
        stats.rejection_message().as_deref(),
        Some(
            "rejected 2 server span(s) without a start or end time; \
             1 server span(s) whose HTTP status attribute is not a status code"
        )
    );
    assert_eq!(OtlpStats::default().rejection_message(), None);
}

#[test]
fn ids_are_lowercase_hex_and_invalid_ones_are_left_out() {
    let with_ids = |trace: &str, span: &str| {
        json(&format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2",
            "traceId":{trace},"spanId":{span}}}]}}]}}]}}"#
        ))
        .expect("decodes")
        .lines()
        .next()
        .unwrap()
        .split_once("\"\" 0 ")
        .unwrap()
        .1
        .to_owned()
    };
    assert_eq!(
        with_ids(r#""5B8EFFF798038103D269B633813FC60C""#, r#""EEE19B7EC3C1B174""#),
        "latency=0.000001 id=eee19b7ec3c1b174 trace=5b8efff798038103d269b633813fc60c outcome=unknown"
    );
    for (trace, span) in [
        (r#""5b8efff798038103d269b633813fc60""#, r#""eee19b7ec3c1b17""#),
        (r#""5b8efff798038103d269b633813fc60g""#, r#""eee19b7ec3c1b17g""#),
        (r#""00000000000000000000000000000000""#, r#""0000000000000000""#),
        (r#""""#, "null"),
        ("null", r#""""#),
    ] {
        assert_eq!(with_ids(trace, span), "latency=0.000001 outcome=unknown", "{trace} {span}");
    }
}

#[test]
fn strings_with_escapes_are_unescaped() {
    check(
        &one_span(
            &[
                string_attr("url.path", r#"/caf\u00e9\/x\"q\"?y=1"#),
                string_attr("http.request.method", r"G\u0045T"),
                string_attr("http.route", r"/caf\u00e9/{id}"),
            ]
            .join(","),
            "{}",
        ),
        r#"2026-11-20T12:00:00.01Z otlp shop  GET "/café/x\"q\"" 0 latency=10 route=/café/{id} outcome=unknown
        stats spans=1 server_spans=1 events=1 rejected: missing_time=0 end_before_start=0 bad_status=0"#,
    );
}

#[test]
fn only_server_spans_count_and_unknown_fields_are_skipped() {
    let kinds = (0..=6)
        .map(|k| format!(r#"{{"kind":{k},"startTimeUnixNano":"1","endTimeUnixNano":"2","name":"k{k}"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":null,"scopeSpans":[{{"scope":{{"name":"x"}},"spans":[{kinds},null]}}],
        "unknownList":[1,{{"a":[]}}]}},null],"resource_spans":[{{"scopeSpans":[{{"spans":[{{"kind":2}}]}}]}}],
        "futureTopLevel":{{"resourceSpans":[1]}}}}"#
    );
    let got = json(&body).expect("decodes");
    assert_eq!(
        got,
        "1970-01-01T00:00:00Z otlp shop   \"\" 0 latency=0.000001 outcome=unknown\n\
         stats spans=7 server_spans=1 events=1 rejected: missing_time=0 end_before_start=0 bad_status=0\n"
    );
}

#[test]
fn empty_requests_are_fine() {
    let empty = "stats spans=0 server_spans=0 events=0 rejected: missing_time=0 end_before_start=0 bad_status=0\n";
    for body in ["{}", " { } ", r#"{"resourceSpans":[]}"#, r#"{"resourceSpans":null}"#, r#"{"resourceSpans":[{}]}"#] {
        assert_eq!(json(body).as_deref(), Ok(empty), "{body}");
    }
    assert_eq!(protobuf(b"").as_deref(), Ok(empty));
    // One empty ResourceSpans, then one with an empty ScopeSpans.
    assert_eq!(protobuf(&[0x0a, 0x00, 0x0a, 0x02, 0x12, 0x00]).as_deref(), Ok(empty));
}

#[track_caller]
fn json_error(body: &str) -> (usize, usize, String) {
    match json(body) {
        Err(OtlpError::Json { line, column, message }) => (line, column, message),
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn json_that_is_not_a_request_says_where() {
    let (line, column, message) =
        json_error(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#);
    assert_eq!((line, column), (1, 69));
    assert!(message.contains("enum as an integer"), "{message}");

    let (line, column, message) = json_error(
        "{\n  \"resourceSpans\": [\n    {\"scopeSpans\": [{\"spans\": [{\"startTimeUnixNano\": \"soon\"}]}]}\n  ]\n}",
    );
    assert_eq!((line, column), (3, 59), "{message}");
    assert!(message.contains("\"soon\""), "{message}");

    for (body, what) in [
        ("", "EOF"),
        ("[]", "ExportTraceServiceRequest"),
        ("null", "ExportTraceServiceRequest"),
        (r#"{"resourceSpans":{}}"#, "array of ResourceSpans"),
        (r#"{"resourceSpans":[1]}"#, "ResourceSpans object"),
        (r#"{"resourceSpans":[{"resource":{"attributes":{}}}]}"#, "array of KeyValue"),
        (r#"{"resourceSpans":[{"resource":{"attributes":[{"key":5}]}}]}"#, "a string"),
        (r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"stringValue":5}}]}}]}"#, "a string"),
        (r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"intValue":"5x"}}]}}]}"#, "64-bit"),
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":2.5}]}]}]}"#, "enum"),
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":4294967298}]}]}]}"#, "enum"),
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"endTimeUnixNano":-1}]}]}]}"#, "unsigned"),
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#, "enum"),
        (r#"{"resourceSpans":[]} {}"#, "trailing"),
        (r#"{"resourceSpans":[]"#, "EOF"),
        ("{\"resourceSpans\":[],\"x\":\"\u{1}\"}", "control character"),
    ] {
        let (_, _, message) = json_error(body);
        assert!(message.contains(what), "{body}: {message}");
    }
    let err = json(r#"{"resourceSpans":[1]}"#).unwrap_err().to_string();
    assert_eq!(
        err,
        "not an OTLP/JSON ExportTraceServiceRequest: invalid type: integer `1`, expected a ResourceSpans object \
         at line 1, column 19"
    );
}

#[test]
fn attribute_values_of_other_types_are_tolerated() {
    // Doubles as proto3 JSON strings, nested values and empty values anywhere.
    let attrs = [
        r#"{"key":"a","value":{"doubleValue":"NaN"}}"#,
        r#"{"key":"b","value":{"doubleValue":"-Infinity"}}"#,
        r#"{"key":"c","value":{"kvlistValue":{"values":[{"key":"d","value":{}}]}}}"#,
        r#"{"key":"e","value":{"bytesValue":"AAE="}}"#,
        r#"{"key":"f","value":null}"#,
        r#"{"key":"url.path","value":{"boolValue":true}}"#,
        r#"{"key":"server.address"}"#,
        r#"{"value":{"stringValue":"no key"}}"#,
        r#"null"#,
    ]
    .join(",");
    let got = json(&one_span(&attrs, "{}")).expect("decodes");
    assert_eq!(got.lines().next(), Some(r#"2026-11-20T12:00:00.01Z otlp shop   "" 0 latency=10 outcome=unknown"#));
}

#[test]
fn a_refused_request_emits_nothing() {
    let (body, value) = fixture();
    let mut bad = body.clone();
    bad.extend_from_slice(b"\n,");
    let mut n = 0;
    assert!(decode_traces_json(&bad, SVC, &mut |_: &RequestEvent<'_>| n += 1).is_err());
    let mut pb = otlp_json_to_protobuf(&value);
    pb.extend_from_slice(&[0x0a, 0x05, 0x00]);
    assert!(decode_traces_protobuf(&pb, SVC, &mut |_: &RequestEvent<'_>| n += 1).is_err());
    assert_eq!(n, 0);
}

#[track_caller]
fn wire_error(body: &[u8]) -> (usize, WireProblem) {
    match protobuf(body) {
        Err(OtlpError::Protobuf { offset, problem }) => (offset, problem),
        other => panic!("{body:?}: {other:?}"),
    }
}

/// A request whose one span is `span`.
fn request_with_span(span: &Message) -> Vec<u8> {
    let mut scope_spans = Message::default();
    scope_spans.message(2, span);
    let mut resource_spans = Message::default();
    resource_spans.message(2, &scope_spans);
    let mut req = Message::default();
    req.message(1, &resource_spans);
    req.0
}

fn timed_server_span() -> Message {
    let mut span = Message::default();
    span.varint(6, 2).fixed64(7, 1_000_000).fixed64(8, 3_000_000);
    span
}

#[test]
fn protobuf_unknown_fields_of_every_wire_type_are_skipped() {
    let mut span = timed_server_span();
    span.varint(100, u64::MAX).fixed64(101, 7).fixed32(102, 7).bytes(103, b"\xff\xfe").bytes(3, b"\xff");
    let mut attr = Message::default();
    attr.bytes(1, b"http.route").bytes(3, b"ignored");
    let mut value = Message::default();
    value.bytes(1, b"/a").varint(9, 1);
    attr.message(2, &value);
    span.message(9, &attr);
    // An attribute read nowhere may hold anything, even bytes that are not UTF-8.
    let mut other = Message::default();
    let mut junk = Message::default();
    junk.bytes(1, b"\xff\xff");
    other.bytes(1, b"x.y").message(2, &junk);
    span.message(9, &other);
    let got = protobuf(&request_with_span(&span)).expect("decodes");
    assert_eq!(
        got,
        "1970-01-01T00:00:00.003Z otlp shop   \"\" 0 latency=2 route=/a outcome=unknown\n\
         stats spans=1 server_spans=1 events=1 rejected: missing_time=0 end_before_start=0 bad_status=0\n"
    );
}

#[test]
fn protobuf_last_value_wins_and_negative_enums_are_not_server_spans() {
    let mut span = timed_server_span();
    span.varint(6, u64::MAX - 1); // kind = -2, sign-extended
    let got = protobuf(&request_with_span(&span)).expect("decodes");
    assert!(got.starts_with("stats spans=1 server_spans=0 events=0"), "{got}");
    span.varint(6, 2);
    let mut status = Message::default();
    status.varint(3, 2).varint(3, 1);
    span.message(15, &status);
    let got = protobuf(&request_with_span(&span)).expect("decodes");
    assert!(got.starts_with("1970-01-01T00:00:00.003Z otlp shop   \"\" 0 latency=2 outcome=success\n"), "{got}");
}

#[test]
fn protobuf_that_is_not_a_request_says_where() {
    // Truncated: a length past the end of the body.
    assert_eq!(wire_error(&[0x0a, 0x05, 0x00]), (0, WireProblem::Truncated));
    // A varint cut off, and one that is too long.
    // (Field 2 of the request is unknown: any wire type goes.)
    assert_eq!(wire_error(&[0x10, 0x80]), (0, WireProblem::Truncated));
    assert_eq!(
        wire_error(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
        (1, WireProblem::VarintTooLong)
    );
    assert_eq!(
        wire_error(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).1,
        WireProblem::VarintTooLong
    );
    assert!(protobuf(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_ok());
    assert_eq!(wire_error(&[0x80]), (0, WireProblem::Truncated));
    // Field number 0, groups, and wire types that do not exist.
    assert_eq!(wire_error(&[0x02, 0x00]), (0, WireProblem::BadFieldNumber));
    assert_eq!(wire_error(&[0x0b]), (0, WireProblem::UnsupportedWireType(3)));
    assert_eq!(wire_error(&[0x0c]), (0, WireProblem::UnsupportedWireType(4)));
    assert_eq!(wire_error(&[0x0e]), (0, WireProblem::UnsupportedWireType(6)));
    assert_eq!(wire_error(&[0x10, 0x00, 0x17]), (2, WireProblem::UnsupportedWireType(7)));
    // A fixed64 cut off.
    assert_eq!(wire_error(&[0x09, 1, 2, 3]), (0, WireProblem::Truncated));
    // A field read here, with the wrong wire type: the request's resource_spans as a varint.
    assert_eq!(
        wire_error(&[0x08, 0x01]),
        (0, WireProblem::WrongWireType { field: "ExportTraceServiceRequest.resource_spans", wire_type: 0 })
    );
    // Span.kind as bytes, deep inside: the offset is the tag's, in the whole body.
    let mut span = Message::default();
    span.bytes(6, b"2");
    let body = request_with_span(&span);
    assert_eq!(wire_error(&body), (6, WireProblem::WrongWireType { field: "Span.kind", wire_type: 2 }));
    // Times as varints.
    let mut span = Message::default();
    span.varint(7, 5);
    assert_eq!(
        wire_error(&request_with_span(&span)).1,
        WireProblem::WrongWireType { field: "Span.start_time_unix_nano", wire_type: 0 }
    );
    // A string read here that is not UTF-8: the offset is the bad byte's.
    let mut span = timed_server_span();
    let mut attr = Message::default();
    let mut value = Message::default();
    value.bytes(1, b"/ok\xffno");
    attr.bytes(1, b"url.path").message(2, &value);
    span.message(9, &attr);
    let body = request_with_span(&span);
    let at = body.windows(3).position(|w| w == b"/ok").unwrap() + 3;
    assert_eq!(wire_error(&body), (at, WireProblem::InvalidUtf8 { field: "AnyValue.string_value" }));
    assert_eq!(
        protobuf(&body).unwrap_err().to_string(),
        format!("not a protobuf ExportTraceServiceRequest: AnyValue.string_value is not UTF-8 at byte {at}")
    );
    // A message whose length runs past its parent's end.
    assert_eq!(wire_error(&[0x0a, 0x02, 0x12, 0x05]), (2, WireProblem::Truncated));
}

#[test]
fn every_truncation_of_a_protobuf_request_is_an_error_or_a_smaller_request() {
    let (_, value) = fixture();
    let pb = otlp_json_to_protobuf(&value);
    let mut errors = 0;
    for n in 0..pb.len() {
        match decode_traces_protobuf(&pb[..n], SVC, &mut |_: &RequestEvent<'_>| {}) {
            Ok(_) => {}
            Err(OtlpError::Protobuf { offset, .. }) => {
                assert!(offset < n, "offset {offset} inside the {n} bytes");
                errors += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Only cuts at the boundary of a top-level field leave a valid request.
    assert!(errors >= pb.len() - 4, "{errors} of {}", pb.len());
}

#[test]
fn oversized_bodies_are_refused() {
    let big = vec![b' '; MAX_BODY + 1];
    assert_eq!(json(std::str::from_utf8(&big).unwrap()), Err(OtlpError::TooLarge { len: MAX_BODY + 1, max: MAX_BODY }));
    assert_eq!(protobuf(&big), Err(OtlpError::TooLarge { len: MAX_BODY + 1, max: MAX_BODY }));
}

#[test]
fn format_wiring() {
    assert_eq!(Format::parse("otlp-json"), Some(Format::OtlpJson));
    assert!(Format::NAMES.contains("otlp-json"));
    assert!(Format::OtlpJson.decoder(SVC).is_some());
    let detect = |s: &str| Format::detect(s.as_bytes());
    assert_eq!(detect(r#"{"resourceSpans":[]}"#), Some(Format::OtlpJson));
    assert_eq!(detect("\n{ \"resourceSpans\" : []}"), Some(Format::OtlpJson));
    assert_eq!(detect(r#"{"resourceLogs":[]}"#), Some(Format::Ndjson));
    assert_eq!(detect(r#"{"ts":1,"status":200,"resourceSpans":[]}"#), Some(Format::Ndjson));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_traces_protobuf(&bytes, SVC, &mut |_: &RequestEvent<'_>| {});
        let _ = decode_traces_json(&bytes, SVC, &mut |_: &RequestEvent<'_>| {});
        let _ = OtlpJsonDecoder::new(SVC).decode_line(&bytes, &mut |_: &RequestEvent<'_>| {});
    }

    #[test]
    fn damaged_requests_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (body, value) = fixture();
        let mut pb = otlp_json_to_protobuf(&value);
        let mut js = body;
        for (at, byte) in &edits {
            let i = at.index(pb.len());
            pb[i] = *byte;
            let j = at.index(js.len());
            js[j] = *byte;
        }
        for body in [&pb, &js] {
            let mut events = 0u64;
            let mut sink = |e: &RequestEvent<'_>| {
                events += 1;
                std::hint::black_box((e.ts_ms, e.path.len(), e.trace_id.len()));
            };
            if let Ok(stats) = decode_traces_protobuf(body, SVC, &mut sink) {
                prop_assert_eq!(stats.events, events);
            }
            events = 0;
            let mut sink = |_: &RequestEvent<'_>| events += 1;
            if let Ok(stats) = decode_traces_json(body, SVC, &mut sink) {
                prop_assert_eq!(stats.events, events);
            }
        }
    }
}

/// The requester of each event of one request, in both encodings (which
/// must agree), as `render_requesters` writes it.
fn requesters_of(request: &str) -> String {
    let collect = |decode: DecodeFn, body: &[u8]| {
        let mut out = String::new();
        decode(body, SVC, &mut |e: &RequestEvent<'_>| {
            out.push_str(&format!("addr={:?} ua={:?} asn={:?}\n", e.client_addr, e.user_agent, e.asn));
        })
        .expect("the request decodes");
        out
    };
    let from_json = collect(decode_traces_json, request.as_bytes());
    let value: serde_json::Value = serde_json::from_str(request).expect("test JSON");
    assert_eq!(collect(decode_traces_protobuf, &otlp_json_to_protobuf(&value)), from_json, "{request}");
    from_json
}

#[test]
fn requester_from_current_and_old_attributes() {
    let current = one_span(
        &[
            string_attr("client.address", "198.51.100.1"),
            string_attr("net.peer.ip", "10.0.0.1"),
            string_attr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
            string_attr("http.user_agent", "old"),
        ]
        .join(","),
        "{}",
    );
    assert_eq!(requesters_of(&current), "addr=\"198.51.100.1\" ua=\"Mozilla/5.0 (X11; Linux x86_64)\" asn=None\n");
    let old = one_span(
        &[
            string_attr("net.peer.ip", "10.0.0.2"),
            string_attr("http.client_ip", "2001:db8::7"),
            string_attr("http.user_agent", "curl/8.5.0"),
        ]
        .join(","),
        "{}",
    );
    assert_eq!(requesters_of(&old), "addr=\"2001:db8::7\" ua=\"curl/8.5.0\" asn=None\n");
    let peer_only = one_span(&[string_attr("net.peer.ip", "10.0.0.3"), int_attr("client.address", 7)].join(","), "{}");
    assert_eq!(requesters_of(&peer_only), "addr=\"10.0.0.3\" ua=\"\" asn=None\n");
    assert_eq!(requesters_of(&one_span("", "{}")), "addr=\"\" ua=\"\" asn=None\n");
}

#[test]
fn collector_file_decoder_fills_the_requester_only_when_wanted() {
    let line = one_span(
        &[string_attr("client.address", "198.51.100.1"), string_attr("user_agent.original", "curl/8.5.0")].join(","),
        "{}",
    );
    let mut d = OtlpJsonDecoder::new(SVC);
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted::ALL, line.as_bytes()),
        "addr=\"198.51.100.1\" ua=\"curl/8.5.0\" asn=None\n"
    );
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted { requester: false, ..Wanted::ALL }, line.as_bytes()),
        "addr=\"\" ua=\"\" asn=None\n"
    );
}
