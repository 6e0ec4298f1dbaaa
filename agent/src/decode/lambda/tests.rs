use proptest::prelude::*;

use super::*;
use crate::decode::{Format, render_event};

const SVC: &str = "checkout-fn";

/// One outcome per line: the shared rendering plus the Lambda fields.
fn render(e: &RequestEvent<'_>) -> String {
    use std::fmt::Write;
    let mut s = render_event(e);
    let _ = write!(s, " outcome={}", e.outcome.as_str());
    for (name, v) in [("billed", e.billed_ms), ("init", e.init_ms)] {
        if let Some(v) = v {
            let _ = write!(s, " {name}={v}");
        }
    }
    for (name, v) in [("mem", e.memory_size_mb), ("used", e.max_memory_used_mb)] {
        if let Some(v) = v {
            let _ = write!(s, " {name}={v}");
        }
    }
    if !e.error_type.is_empty() {
        let _ = write!(s, " error_type={}", e.error_type);
    }
    s
}

fn run(decoder: &mut LambdaDecoder, input: &str) -> String {
    let mut out = String::new();
    for line in input.lines() {
        let mut rendered = Vec::new();
        match decoder.decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| rendered.push(render(e))) {
            Ok(()) => rendered.iter().for_each(|r| {
                out.push_str(r);
                out.push('\n');
            }),
            Err(r) => {
                out.push_str("reject ");
                out.push_str(r.reason.as_str());
                out.push('\n');
            }
        }
    }
    out
}

/// Decode `input` (tabs written as `|`) with a fresh decoder and compare.
#[track_caller]
fn check(input: &str, expected: &str) {
    check_with(&mut LambdaDecoder::new(SVC), input, expected);
}

#[track_caller]
fn check_with(decoder: &mut LambdaDecoder, input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let got = run(decoder, &input);
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

#[test]
fn fixture_matches_golden_output() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lambda/");
    for name in ["function", "saved"] {
        let input = std::fs::read_to_string(format!("{dir}{name}.log")).expect("fixture");
        let mut decoder = LambdaDecoder::new(SVC);
        let got = run(&mut decoder, &input);
        crate::testing::golden::check_text(&format!("{dir}{name}.expected"), &got);
    }
}

#[test]
fn report_fields_by_tab_or_by_space() {
    check(
        "2026-11-20T12:00:00.123Z REPORT RequestId: a1|Duration: 12.34 ms|Billed Duration: 13 ms|Memory Size: 128 MB|Max Memory Used: 70 MB|
2026-11-20T12:00:00.123Z REPORT RequestId: a2 Duration: 12.34 ms Billed Duration: 13 ms Memory Size: 128 MB Max Memory Used: 70 MB
2026-11-20T12:00:01Z   REPORT RequestId: a3 |  Duration: 0.5 ms\tBilled Duration: 1 ms
2026-11-20T12:00:02Z REPORT|RequestId: a4|Duration: 1 ms",
        r#"
2026-11-20T12:00:00.123Z lambda checkout-fn   "" 200 latency=12.34 id=a1 outcome=success billed=13 mem=128 used=70
2026-11-20T12:00:00.123Z lambda checkout-fn   "" 200 latency=12.34 id=a2 outcome=success billed=13 mem=128 used=70
2026-11-20T12:00:01Z lambda checkout-fn   "" 200 latency=0.5 id=a3 outcome=success billed=1
2026-11-20T12:00:02Z lambda checkout-fn   "" 200 latency=1 id=a4 outcome=success
"#,
    );
}

#[test]
fn cold_start_trace_and_unknown_fields() {
    check(
        "2026-11-20T12:00:00Z REPORT RequestId: c1|Duration: 3.00 ms|Billed Duration: 154 ms|Memory Size: 256 MB|Max Memory Used: 80 MB|Init Duration: 150.12 ms|Restore Duration: 1.5 ms|Billed Restore Duration: 2 ms|XRAY TraceId: 1-5e1b4151-5ac6c58f3a0c0fbd1e8f6b3e|SegmentId: 6e0a9c1f2b3d4e5f|Sampled: true",
        r#"2026-11-20T12:00:00Z lambda checkout-fn   "" 200 latency=3 id=c1 trace=1-5e1b4151-5ac6c58f3a0c0fbd1e8f6b3e outcome=success billed=154 init=150.12 mem=256 used=80"#,
    );
}

#[test]
fn status_maps_to_outcome_and_http_status() {
    check(
        "2026-11-20T12:00:00Z REPORT RequestId: s1|Duration: 3000.00 ms|Status: timeout
2026-11-20T12:00:00Z REPORT RequestId: s2 Duration: 10 ms Status: error Error Type: Runtime.ExitError
2026-11-20T12:00:00Z REPORT RequestId: s3|Duration: 10 ms|Status: success
2026-11-20T12:00:00Z REPORT RequestId: s4|Duration: 10 ms|Status: crashed",
        r#"
2026-11-20T12:00:00Z lambda checkout-fn   "" 504 latency=3000 id=s1 outcome=timeout
2026-11-20T12:00:00Z lambda checkout-fn   "" 500 latency=10 id=s2 outcome=error error_type=Runtime.ExitError
2026-11-20T12:00:00Z lambda checkout-fn   "" 200 latency=10 id=s3 outcome=success
2026-11-20T12:00:00Z lambda checkout-fn   "" 500 latency=10 id=s4 outcome=error
"#,
    );
}

#[test]
fn task_timed_out_marks_the_next_report_of_that_request() {
    check(
        "2026-11-20T12:00:00.000Z START RequestId: t1 Version: $LATEST
2026-11-20T12:00:03.010Z t1 Task timed out after 3.00 seconds
2026-11-20T12:00:03.020Z 2026-11-20T12:00:03.010Z t2 Task timed out after 3.00 seconds
2026-11-20T12:00:03.011Z END RequestId: t1
2026-11-20T12:00:03.011Z REPORT RequestId: other|Duration: 5 ms
2026-11-20T12:00:03.011Z REPORT RequestId: t1|Duration: 3000.00 ms
2026-11-20T12:00:03.011Z REPORT RequestId: t1|Duration: 7 ms
2026-11-20T12:00:03.030Z REPORT RequestId: t2|Duration: 3000.00 ms|Status: error",
        r#"
2026-11-20T12:00:03.011Z lambda checkout-fn   "" 200 latency=5 id=other outcome=success
2026-11-20T12:00:03.011Z lambda checkout-fn   "" 504 latency=3000 id=t1 outcome=timeout
2026-11-20T12:00:03.011Z lambda checkout-fn   "" 200 latency=7 id=t1 outcome=success
2026-11-20T12:00:03.03Z lambda checkout-fn   "" 500 latency=3000 id=t2 outcome=error
"#,
    );
}

#[test]
fn remembered_timeouts_are_bounded() {
    let mut d = LambdaDecoder::new(SVC);
    let mut input = String::new();
    for i in 0..REMEMBERED + 1 {
        input.push_str(&format!("2026-11-20T12:00:00Z id{i} Task timed out after 3.00 seconds\n"));
    }
    input.push_str("2026-11-20T12:00:01Z REPORT RequestId: id0|Duration: 1 ms\n");
    input.push_str(&format!("2026-11-20T12:00:01Z REPORT RequestId: id{REMEMBERED}|Duration: 1 ms\n"));
    check_with(
        &mut d,
        &input,
        &format!(
            r#"
2026-11-20T12:00:01Z lambda checkout-fn   "" 200 latency=1 id=id0 outcome=success
2026-11-20T12:00:01Z lambda checkout-fn   "" 504 latency=1 id=id{REMEMBERED} outcome=timeout
"#
        ),
    );
}

#[test]
fn time_comes_from_the_line_then_the_hint_else_rejects() {
    let mut d = LambdaDecoder::new(SVC);
    let input = "REPORT RequestId: h1|Duration: 1 ms
2026-11-20T12:00:00+02:00 REPORT RequestId: h2|Duration: 1 ms
2026-11-20T25:00:00Z REPORT RequestId: h3|Duration: 1 ms
2026-11-20T25:00:00Z some application output";
    check_with(
        &mut d,
        input,
        r#"
reject missing_field
2026-11-20T10:00:00Z lambda checkout-fn   "" 200 latency=1 id=h2 outcome=success
reject bad_timestamp
"#,
    );
    d.set_time_hint(1_700_000_000_000);
    check_with(
        &mut d,
        input,
        r#"
2023-11-14T22:13:20Z lambda checkout-fn   "" 200 latency=1 id=h1 outcome=success
2026-11-20T10:00:00Z lambda checkout-fn   "" 200 latency=1 id=h2 outcome=success
reject bad_timestamp
"#,
    );
    d.clear_time_hint();
    check_with(&mut d, "REPORT RequestId: h1|Duration: 1 ms", "reject missing_field");
}

#[test]
fn other_lines_are_neither_events_nor_rejects() {
    check(
        "INIT_START Runtime Version: nodejs:20.v13\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:abc
START RequestId: x Version: $LATEST
2026-11-20T12:00:00.000Z\tx\tINFO\thello world
END RequestId: x
2026-11-20 12:00:00 plain text
{\"level\":\"INFO\",\"message\":\"hi\",\"requestId\":\"x\"}
{\"type\":5,\"record\":[1]}
{not json at all
   ",
        "",
    );
}

#[test]
fn bad_reports_reject_with_a_reason() {
    check(
        "2026-11-20T12:00:00Z REPORT RequestId: b1|Billed Duration: 1 ms
2026-11-20T12:00:00Z REPORT Duration: 1 ms
2026-11-20T12:00:00Z REPORT RequestId: b3|Duration: 1,5 ms
2026-11-20T12:00:00Z REPORT RequestId: b4|Duration: -1 ms
2026-11-20T12:00:00Z REPORT RequestId: b5|Duration: 1 ms|Memory Size: lots MB
2026-11-20T12:00:00Z REPORT RequestId: b6|Duration: 1. ms
2026-11-20T12:00:00Z REPORT RequestId: b7|Duration: .5 ms",
        "
reject missing_field
reject missing_field
reject bad_number
reject bad_number
reject bad_number
reject bad_number
reject bad_number
",
    );
}

#[test]
fn unwanted_ids_are_left_out() {
    let mut d = LambdaDecoder::new(SVC);
    d.want(Wanted::NONE);
    check_with(
        &mut d,
        "2026-11-20T12:00:00Z w1 Task timed out after 1.00 seconds
2026-11-20T12:00:01Z REPORT RequestId: w1|Duration: 1000 ms|XRAY TraceId: 1-abc",
        r#"2026-11-20T12:00:01Z lambda checkout-fn   "" 504 latency=1000 outcome=timeout"#,
    );
}

const JSON_REPORT: &str = r#"{"time":"2026-11-20T12:00:00.500Z","type":"platform.report","record":{"requestId":"j1","metrics":{"durationMs":12.5,"billedDurationMs":13,"memorySizeMB":128,"maxMemoryUsedMB":70,"initDurationMs":150.25},"tracing":{"spanId":"54565fb41ac79632","type":"X-Amzn-Trace-Id","value":"Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"},"status":"success"}}"#;

#[test]
fn json_platform_events() {
    check(
        &format!(
            r#"{{"time":"2026-11-20T12:00:00.000Z","type":"platform.initStart","record":{{"initializationType":"on-demand","phase":"init"}}}}
{{"time":"2026-11-20T12:00:00.150Z","type":"platform.initReport","record":{{"initializationType":"on-demand","phase":"init","status":"success","metrics":{{"durationMs":150.25}}}}}}
{{"time":"2026-11-20T12:00:00.151Z","type":"platform.start","record":{{"requestId":"j1","version":"$LATEST"}}}}
{{"time":"2026-11-20T12:00:00.200Z","level":"INFO","requestId":"j1","message":"hello"}}
{{"time":"2026-11-20T12:00:00.490Z","type":"platform.runtimeDone","record":{{"requestId":"j1","status":"success","metrics":{{"durationMs":12.5,"producedBytes":10}}}}}}
{JSON_REPORT}
{{"time":"2026-11-20T12:01:00Z","type":"platform.runtimeDone","record":{{"requestId":"j2","status":"timeout","errorType":"Sandbox.Timedout"}}}}
{{"time":"2026-11-20T12:01:00Z","type":"platform.report","record":{{"requestId":"j2","metrics":{{"durationMs":3000,"billedDurationMs":3000,"memorySizeMB":128,"maxMemoryUsedMB":64}}}}}}
{{"time":"2026-11-20T12:02:00Z","type":"platform.report","record":{{"requestId":"j3","status":"failure","errorType":"Runtime.ExitError","metrics":{{"durationMs":1}}}}}}
{{"time":"2026-11-20T12:02:00Z","type":"platform.report","record":{{"requestId":"j4","metrics":{{}}}}}}
{{"time":"yesterday","type":"platform.report","record":{{"requestId":"j5","metrics":{{"durationMs":1}}}}}}
{{"time":"2026-11-20T12:02:00Z","type":"platform.report","record":{{"requestId":"j6","metrics":{{"durationMs":-1}}}}}}
{{"time":"2026-11-20T12:02:00Z","type":"platform.report","record":{{"requestId":"j7","metrics":{{"durationMs":"1"}}}}}}
{{"type":"platform.report","record":{{"requestId":"j8","metrics":{{"durationMs":1}}}}}}"#
        ),
        r#"
2026-11-20T12:00:00.5Z lambda checkout-fn   "" 200 latency=12.5 id=j1 trace=1-62e900b2-710d76f009d6e7785905449a outcome=success billed=13 init=150.25 mem=128 used=70
2026-11-20T12:01:00Z lambda checkout-fn   "" 504 latency=3000 id=j2 outcome=timeout billed=3000 mem=128 used=64
2026-11-20T12:02:00Z lambda checkout-fn   "" 500 latency=1 id=j3 outcome=error error_type=Runtime.ExitError
reject missing_field
reject bad_timestamp
reject bad_number
reject bad_json
reject missing_field
"#,
    );
}

#[test]
fn telemetry_batch_is_one_array() {
    let mut d = LambdaDecoder::new(SVC);
    let body = format!(
        r#"[{{"time":"2026-11-20T12:00:00.151Z","type":"platform.start","record":{{"requestId":"j1"}}}},
{{"time":"2026-11-20T12:00:00.200Z","type":"function","record":"2026-11-20T12:00:00.200Z\tj1\tINFO\thello"}},
{JSON_REPORT}, 7, "x", [1],
{{"time":"bad","type":"platform.report","record":{{"requestId":"j9","metrics":{{"durationMs":1}}}}}},
{{"time":"2026-11-20T12:00:01Z","type":"platform.report","record":{{"requestId":"j2","status":"error","metrics":{{"durationMs":2}}}}}}]"#
    );
    let mut got = Vec::new();
    let n = d.decode_telemetry_batch(body.as_bytes(), &mut |e: &RequestEvent<'_>| got.push(render(e))).expect("batch");
    assert_eq!(n, 2);
    assert_eq!(
        got,
        [
            r#"2026-11-20T12:00:00.5Z lambda checkout-fn   "" 200 latency=12.5 id=j1 trace=1-62e900b2-710d76f009d6e7785905449a outcome=success billed=13 init=150.25 mem=128 used=70"#,
            r#"2026-11-20T12:00:01Z lambda checkout-fn   "" 500 latency=2 id=j2 outcome=error"#,
        ]
    );
    assert_eq!(d.take_batch_rejects().collect::<Vec<_>>(), [(RejectReason::BadTimestamp, 1)]);
    assert_eq!(d.take_batch_rejects().count(), 0);

    let mut sink = |_: &RequestEvent<'_>| {};
    assert_eq!(d.decode_telemetry_batch(b" [ ] ", &mut sink), Ok(0));
    for bad in
        [&b""[..], b"{}", b"[", b"[{}", b"[] x", b"[{\"type\":\"platform.report\",\"record\":{\"metrics\":\"x\"}}]"]
    {
        assert_eq!(d.decode_telemetry_batch(bad, &mut sink), Err(RejectReason::BadJson.into()), "{bad:?}");
    }
}

#[test]
fn detects_lambda_logs() {
    for head in [
        "START RequestId: 1 Version: $LATEST\n",
        "2026-11-20T12:00:00.123Z REPORT RequestId: 1\tDuration: 1 ms\n",
        "\nEND RequestId: 1\r\n",
        "INIT_START Runtime Version: python:3.12.v30\n",
        r#"{"time":"2026-11-20T12:00:00Z","type":"platform.start","record":{}}"#,
        r#"{"time": "2026-11-20T12:00:00Z", "type": "platform.report"}"#,
    ] {
        assert_eq!(Format::detect(head.as_bytes()), Some(Format::Lambda), "{head:?}");
    }
    assert_eq!(Format::detect(br#"{"ts":1,"status":200}"#), Some(Format::Ndjson));
    assert_eq!(Format::detect(b"hello START RequestId: 1"), None);
    assert_eq!(Format::parse("lambda"), Some(Format::Lambda));
    assert!(Format::NAMES.contains("lambda"));
    assert!(Format::Lambda.decoder(SVC).is_some());
}

#[test]
fn millis_match_the_standard_parser() {
    for s in ["0", "1", "12.34", "3000.00", "0.001", "150.12", "999999999999.999999"] {
        assert_eq!(millis(s.as_bytes()), Ok(s.parse::<f64>().expect("number")), "{s}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut d = LambdaDecoder::new(SVC);
        for line in &lines {
            let _ = d.decode_line(line, &mut |_: &RequestEvent<'_>| {});
            let _ = d.decode_telemetry_batch(line, &mut |_: &RequestEvent<'_>| {});
        }
    }

    #[test]
    fn never_panics_on_mangled_reports(
        cut in 0usize..400,
        flip in 0usize..400,
        byte in any::<u8>(),
        sep in prop_oneof![Just(' '), Just('\t')],
    ) {
        let line = format!("2026-11-20T12:00:00.123Z REPORT RequestId: 8f5c0a1e-1b2c-4d3e-9f40-123456789abc{sep}Duration: 12.34 ms{sep}Billed Duration: 13 ms{sep}Memory Size: 128 MB{sep}Max Memory Used: 70 MB{sep}Init Duration: 150.12 ms{sep}Status: error{sep}Error Type: Runtime.ExitError{sep}XRAY TraceId: 1-5e1b4151-5ac6c58f3a0c0fbd1e8f6b3e");
        let mut bytes = line.into_bytes();
        if flip < bytes.len() {
            bytes[flip] = byte;
        }
        bytes.truncate(cut);
        let mut d = LambdaDecoder::new(SVC);
        let _ = d.decode_line(&bytes, &mut |_: &RequestEvent<'_>| {});
        let mut json = JSON_REPORT.as_bytes().to_vec();
        if flip < json.len() {
            json[flip] = byte;
        }
        json.truncate(cut);
        let _ = d.decode_line(&json, &mut |_: &RequestEvent<'_>| {});
    }

    #[test]
    fn millis_agree_with_the_standard_parser(int in 0u64..1_000_000_000_000, frac in 0u32..1_000_000, digits in 0usize..=6) {
        let s = if digits == 0 { int.to_string() } else { format!("{int}.{:0digits$}", frac % 10u32.pow(digits as u32)) };
        prop_assert_eq!(millis(s.as_bytes()), Ok(s.parse::<f64>().expect("number")));
    }
}

const TAIL_STREAM: &str = "2026/11/21/[$LATEST]7e0c41d9a2b84f6c9d3e5a7b1c2d3e4f";

/// A report of request `id` after `prefix` (tabs written as `|`).
fn saved_report(prefix: &str, id: &str) -> String {
    format!(
        "{prefix}REPORT RequestId: {id}|Duration: 5.00 ms|Billed Duration: 5 ms|Memory Size: 128 MB|Max Memory Used: 60 MB|"
    )
}

#[test]
fn aws_logs_tail_lines_with_spaces_or_tabs() {
    let spaces = saved_report(&format!("2026-11-21T08:00:00.392000+00:00 {TAIL_STREAM} "), "t1");
    let tabs = saved_report(&format!("2026-11-21T08:00:00.393000+00:00|{TAIL_STREAM}||"), "t2");
    let whole_second = saved_report(&format!("2026-11-21T08:00:01+00:00  {TAIL_STREAM}  "), "t3");
    let short = saved_report("2026-11-21T08:00:02 ", "t4");
    let short_tab = saved_report("2026-11-21T08:00:03|", "t5");
    check(
        &[spaces, tabs, whole_second, short, short_tab].join("\n"),
        r#"
        2026-11-21T08:00:00.392Z lambda checkout-fn   "" 200 latency=5 id=t1 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:00.393Z lambda checkout-fn   "" 200 latency=5 id=t2 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:01Z lambda checkout-fn   "" 200 latency=5 id=t3 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:02Z lambda checkout-fn   "" 200 latency=5 id=t4 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:03Z lambda checkout-fn   "" 200 latency=5 id=t5 outcome=success billed=5 mem=128 used=60
        "#,
    );
}

#[test]
fn awslogs_get_lines_with_spaces_or_tabs() {
    let group = "/aws/lambda/checkout-fn";
    let with_time = saved_report(&format!("{group} {TAIL_STREAM} 2026-11-21T08:00:04.250Z "), "a1");
    let tabs = saved_report(&format!("{group}|{TAIL_STREAM}|2026-11-21T08:00:04.260Z|"), "a2");
    let no_group = saved_report(&format!("{TAIL_STREAM} 2026-11-21T08:00:04.270Z "), "a3");
    let no_stream = saved_report(&format!("{group} 2026-11-21T08:00:04.280Z "), "a4");
    // Any group name goes before a Lambda stream name.
    let other_group = saved_report(&format!("shop-functions|{TAIL_STREAM} 2026-11-21T08:00:04.290Z "), "a5");
    // The default output has no time: the report needs a time hint.
    let no_time = saved_report(&format!("{group} {TAIL_STREAM} "), "a6");
    check(
        &[with_time, tabs, no_group, no_stream, other_group, no_time].join("\n"),
        r#"
        2026-11-21T08:00:04.25Z lambda checkout-fn   "" 200 latency=5 id=a1 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:04.26Z lambda checkout-fn   "" 200 latency=5 id=a2 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:04.27Z lambda checkout-fn   "" 200 latency=5 id=a3 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:04.28Z lambda checkout-fn   "" 200 latency=5 id=a4 outcome=success billed=5 mem=128 used=60
        2026-11-21T08:00:04.29Z lambda checkout-fn   "" 200 latency=5 id=a5 outcome=success billed=5 mem=128 used=60
        reject missing_field
        "#,
    );
    let mut hinted = LambdaDecoder::new(SVC);
    hinted.set_time_hint(1_795_248_000_000);
    check_with(
        &mut hinted,
        &saved_report(&format!("{group} {TAIL_STREAM} "), "a7"),
        r#"2026-11-21T08:00:00Z lambda checkout-fn   "" 200 latency=5 id=a7 outcome=success billed=5 mem=128 used=60"#,
    );
}

#[test]
fn saved_lines_keep_the_timeout_of_an_earlier_line_and_read_json() {
    let p = format!("2026-11-21T08:00:08.004000+00:00 {TAIL_STREAM} ");
    check(
        &format!(
            "{p}2026-11-21T08:00:08.004Z|s1|Task timed out after 3.00 seconds\n{}\n{p}{}",
            saved_report(&p, "s1"),
            r#"{"time":"2026-11-21T08:00:09.000Z","type":"platform.report","record":{"requestId":"s2","status":"error","metrics":{"durationMs":7}}}"#,
        ),
        r#"
        2026-11-21T08:00:08.004Z lambda checkout-fn   "" 504 latency=5 id=s1 outcome=timeout billed=5 mem=128 used=60
        2026-11-21T08:00:09Z lambda checkout-fn   "" 500 latency=7 id=s2 outcome=error
        "#,
    );
}

#[test]
fn lines_that_are_not_requests_are_ignored_and_unknown_reports_rejected() {
    let p = format!("2026-11-21T08:00:00.100000+00:00 {TAIL_STREAM} ");
    let ignored = [
        format!(
            "{p}INIT_START Runtime Version: python:3.12.v40|Runtime Version ARN: arn:aws:lambda:eu-west-1::runtime:6c1b"
        ),
        format!("{p}START RequestId: i1 Version: $LATEST"),
        format!("{p}END RequestId: i1"),
        format!("{p}[INFO]|2026-11-21T08:00:00.100Z|i1|basket priced"),
        format!("{p}{{\"level\":\"info\",\"msg\":\"basket priced\"}}"),
        "XRAY TraceId: 1-673eea10-5b6c7d8e9f0a1b2c3d4e5f60|SegmentId: 0a1b2c3d4e5f6071|Sampled: true".to_owned(),
        "# a comment".to_owned(),
    ];
    check(&ignored.join("\n"), "");
    let unknown = [
        // Other tools' prefixes.
        saved_report("2026-11-21 08:00:14 UTC 7e0c41d9 ", "u1"),
        saved_report("[2026-11-21 08:00:14] checkout: ", "u2"),
        format!(
            "checkout | {}",
            r#"{"time":"2026-11-21T08:00:09.000Z","type":"platform.report","record":{"requestId":"u3"}}"#
        ),
    ];
    check(&unknown.join("\n"), "reject unrecognized\nreject unrecognized\nreject unrecognized");
    // A line that looks like a timestamp before the stream but is not one.
    check(&saved_report(&format!("2026-11-21T25:00:00Z {TAIL_STREAM} "), "b1"), "reject bad_timestamp");
}

#[test]
fn saved_rejects_are_counted_by_reason() {
    use crate::decode::{Rejects, feed_line};
    let input = [
        saved_report(&format!("2026-11-21T08:00:00.100000+00:00 {TAIL_STREAM} "), "c1"),
        format!("2026-11-21T08:00:00.100000+00:00 {TAIL_STREAM} START RequestId: c2 Version: $LATEST"),
        saved_report("2026-11-21 08:00:14 UTC 7e0c41d9 ", "c2"),
        saved_report(&format!("/aws/lambda/checkout-fn {TAIL_STREAM} "), "c3"),
    ]
    .join("\n")
    .replace('|', "\t");
    let mut decoder = LambdaDecoder::new(SVC);
    let mut rejects = Rejects::default();
    let mut events = 0;
    for (n, line) in input.lines().enumerate() {
        feed_line(&mut decoder, line.as_bytes(), false, &mut |_: &RequestEvent<'_>| events += 1, &mut rejects, || {
            format!("saved.log:{}", n + 1)
        });
    }
    assert_eq!(events, 1);
    assert_eq!(rejects.total(), 2);
    let by_reason: Vec<_> =
        rejects.by_reason.iter().map(|(r, s)| (r.as_str(), s.count, s.samples[0].0.clone())).collect();
    assert_eq!(
        by_reason,
        [("missing_field", 1, "saved.log:4".to_owned()), ("unrecognized", 1, "saved.log:3".to_owned())]
    );
}

#[test]
fn saved_lines_are_detected_as_lambda() {
    for line in [
        saved_report(&format!("2026-11-21T08:00:00.100000+00:00 {TAIL_STREAM} "), "d1"),
        format!("2026-11-21T08:00:00.100000+00:00\t{TAIL_STREAM}\tINIT_START Runtime Version: python:3.12.v40"),
        format!("/aws/lambda/checkout-fn {TAIL_STREAM} START RequestId: d2 Version: $LATEST"),
        format!(
            "2026-11-21T08:00:00.100000+00:00 {TAIL_STREAM} {}",
            r#"{"time":"2026-11-21T08:00:00.100Z","type":"platform.start","record":{"requestId":"d3"}}"#
        ),
    ] {
        let line = line.replace('|', "\t");
        assert!(looks_like_lambda(line.as_bytes()), "{line}");
        assert_eq!(Format::detect(line.as_bytes()), Some(Format::Lambda), "{line}");
    }
}

proptest! {
    #[test]
    fn a_saved_prefix_gives_the_report_its_time(
        ms in 0u32..1000,
        sep in "[ \t]{1,3}",
        id in "[0-9a-f-]{1,36}",
        duration in "[0-9]{1,5}\\.[0-9]{2}",
        shape in 0usize..4,
    ) {
        let fields = format!("REPORT RequestId: {id}\tDuration: {duration} ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t");
        let plain = run(&mut LambdaDecoder::new(SVC), &format!("2026-11-21T08:00:00.{ms:03}Z {fields}"));
        let prefix = match shape {
            0 => format!("2026-11-21T08:00:00.{ms:03}000+00:00{sep}{TAIL_STREAM}{sep}"),
            1 => format!("/aws/lambda/checkout-fn{sep}{TAIL_STREAM}{sep}2026-11-21T08:00:00.{ms:03}Z{sep}"),
            2 => format!("{TAIL_STREAM}{sep}2026-11-21T08:00:00.{ms:03}Z{sep}"),
            _ => format!("2026-11-21T08:00:00.{ms:03}Z{sep}"),
        };
        let saved = run(&mut LambdaDecoder::new(SVC), &format!("{prefix}{fields}"));
        prop_assert!(plain.starts_with("2026-11-21T08:00:00"), "{plain}");
        prop_assert_eq!(saved, plain);
    }
}
