use proptest::prelude::*;

use super::*;
use crate::decode::render_run;

const SVC: &str = "shop";

#[track_caller]
fn check(input: &str, expected: &str) {
    let got = render_run(&mut NdjsonDecoder::new(SVC), input.as_bytes());
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

fn ts_of(input: &str) -> Result<i64, RejectReason> {
    let line = format!(r#"{{"ts":{input},"status":200}}"#);
    let mut got = None;
    NdjsonDecoder::new(SVC)
        .decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| got = Some(e.ts_ms))
        .map_err(|r| r.reason)?;
    Ok(got.expect("an event"))
}

#[test]
fn fixture_matches_golden_output() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ndjson/");
    let input = std::fs::read(format!("{dir}events.ndjson")).expect("fixture");
    let got = render_run(&mut NdjsonDecoder::new(SVC), &input);
    crate::testing::golden::check_text(&format!("{dir}events.expected"), &got);
}

#[test]
fn every_field_and_its_type() {
    check(
        r#"{"ts":"2024-05-01T12:00:00Z","service":"checkout","host":"h","path":"/p?q=1?r","method":"GET","status":200,"latency_ms":1,"upstream_latency_ms":0.25,"edge_location":"IAD89-C1","bytes":18446744073709551615,"request_id":"r","trace_id":"t","client":"Browser","cache":"HIT"}
{"ts":0,"status":"000"}
{"ts":1,"status":599,"client":"crawler","cache":"miss"}
{"ts":2,"status":300,"client":"other","cache":"error"}
{"ts":3,"status":300,"client":"","cache":"stale"}"#,
        r#"
2024-05-01T12:00:00Z ndjson checkout h GET "/p" 200 latency=1 upstream=0.25 edge=IAD89-C1 id=r trace=t client=Browser cache=Hit bytes=18446744073709551615
1970-01-01T00:00:00Z ndjson shop   "" 0
1970-01-01T00:00:00.001Z ndjson shop   "" 599 client=Crawler cache=Miss
1970-01-01T00:00:00.002Z ndjson shop   "" 300 client=Other cache=Error
1970-01-01T00:00:00.003Z ndjson shop   "" 300
"#,
    );
}

#[test]
fn escaped_strings_are_unescaped() {
    check(
        r#"{"ts":5,"status":200,"path":"/a\/b\u00e9\"q\"?x","host":"\u0068ost","service":"s\tv"}"#,
        "1970-01-01T00:00:00.005Z ndjson s\tv host  \"/a/bé\\\"q\\\"\" 200",
    );
}

#[test]
fn wrong_types_reject_with_the_field_reason() {
    let cases = [
        (r#"{"status":200}"#, "missing_field"),
        (r#"{"ts":null,"status":200}"#, "missing_field"),
        (r#"{"ts":1}"#, "missing_field"),
        (r#"{"ts":1,"status":null}"#, "missing_field"),
        (r#"{"ts":"2024-02-30T00:00:00Z","status":200}"#, "bad_timestamp"),
        (r#"{"ts":"2024-05-01","status":200}"#, "bad_timestamp"),
        (r#"{"ts":"2024-05-01T12:00:00","status":200}"#, "bad_timestamp"),
        (r#"{"ts":[1],"status":200}"#, "bad_timestamp"),
        (r#"{"ts":{},"status":200}"#, "bad_timestamp"),
        (r#"{"ts":18446744073709551615,"status":200}"#, "bad_timestamp"),
        (r#"{"ts":1,"status":-1}"#, "bad_status"),
        (r#"{"ts":1,"status":200.5}"#, "bad_status"),
        (r#"{"ts":1,"status":"OK"}"#, "bad_status"),
        (r#"{"ts":1,"status":true}"#, "bad_status"),
        (r#"{"ts":1,"status":65736}"#, "bad_status"),
        (r#"{"ts":1,"status":200,"latency_ms":"5"}"#, "bad_number"),
        (r#"{"ts":1,"status":200,"upstream_latency_ms":-0.5}"#, "bad_number"),
        (r#"{"ts":1,"status":200,"bytes":-1}"#, "bad_number"),
        (r#"{"ts":1,"status":200,"bytes":"1"}"#, "bad_number"),
        (r#"{"ts":1,"status":200,"path":["/"]}"#, "bad_field"),
        (r#"{"ts":1,"status":200,"service":1}"#, "bad_field"),
        (r#"{"ts":1,"status":200,"client":false}"#, "bad_field"),
        (r#"{"ts":1,"status":200"#, "bad_json"),
        (r#"{"ts":1,"status":200}{}"#, "bad_json"),
        (r#"{"ts":1,"ts":2,"status":200}"#, "bad_json"),
        (r#"[1,200]"#, "bad_json"),
        ("\"text\"", "bad_json"),
        ("{\"ts\":1,\"status\":200,\"host\":\"\u{0}\"}", "bad_json"),
    ];
    for (line, reason) in cases {
        check(line, &format!("reject {reason}"));
    }
    let mut bad_utf8 = br#"{"ts":1,"status":200,"host":"x"}"#.to_vec();
    bad_utf8[29] = 0xFF;
    assert_eq!(
        NdjsonDecoder::new(SVC).decode_line(&bad_utf8, &mut |_: &RequestEvent<'_>| {}),
        Err(RejectReason::BadJson.into())
    );
}

#[test]
fn blank_lines_and_crlf_are_fine_and_long_lines_are_not() {
    check("\n   \r\n{\"ts\":1,\"status\":204}\r", r#"1970-01-01T00:00:00.001Z ndjson shop   "" 204"#);
    let mut long = br#"{"ts":1,"status":200,"pad":""#.to_vec();
    long.resize(crate::decode::MAX_LINE, b'a');
    long.extend_from_slice(b"\"}");
    assert_eq!(
        NdjsonDecoder::new(SVC).decode_line(&long, &mut |_: &RequestEvent<'_>| {}),
        Err(RejectReason::TooLong.into())
    );
}

#[test]
fn timestamps_numbers_and_strings() {
    for (input, want) in [
        ("1714564800250", Ok(1_714_564_800_250)),
        ("-1000", Ok(-1000)),
        ("1714564800250.9", Ok(1_714_564_800_250)),
        ("1.7145648e12", Ok(1_714_564_800_000)),
        (r#""2024-05-01T12:00:00Z""#, Ok(1_714_564_800_000)),
        (r#""2024-05-01t12:00:00z""#, Ok(1_714_564_800_000)),
        (r#""2024-05-01T12:00:00.1Z""#, Ok(1_714_564_800_100)),
        (r#""2024-05-01T12:00:00.123456789Z""#, Ok(1_714_564_800_123)),
        (r#""2024-05-01T14:30:00+02:30""#, Ok(1_714_564_800_000)),
        (r#""2024-05-01T09:00:00-03:00""#, Ok(1_714_564_800_000)),
        (r#""2024-05-01 12:00:00Z""#, Ok(1_714_564_800_000)),
        (r#""1969-12-31T23:59:59.5Z""#, Ok(-500)),
        (r#""2016-12-31T23:59:60Z""#, Ok(1_483_228_799_000)),
        (r#""2024-05-01T12:00:00.Z""#, Err(RejectReason::BadTimestamp)),
        (r#""2024-05-01T25:00:00Z""#, Err(RejectReason::BadTimestamp)),
        (r#""""#, Err(RejectReason::BadTimestamp)),
    ] {
        assert_eq!(ts_of(input), want, "{input}");
    }
}

proptest! {
    /// The fast path and jiff agree wherever jiff accepts the string.
    #[test]
    fn string_timestamps_agree_with_jiff(
        secs in -62_135_596_800i64..253_402_300_799,
        nanos in 0u32..1_000_000_000,
        digits in 0usize..=9,
        offset_min in -1439i32..=1439,
        zulu in any::<bool>(),
    ) {
        let ts = jiff::Timestamp::new(secs, nanos as i32).unwrap();
        let offset = if zulu { jiff::tz::Offset::UTC } else { jiff::tz::Offset::from_seconds(offset_min * 60).unwrap() };
        let civil = offset.to_datetime(ts);
        let frac = format!("{:09}", civil.subsec_nanosecond());
        let frac = if digits == 0 { String::new() } else { format!(".{}", &frac[..digits]) };
        let suffix = if zulu { "Z".to_owned() } else { offset.to_string() };
        let text = format!("{}{frac}{suffix}", civil.strftime("%Y-%m-%dT%H:%M:%S"));
        let want: Option<jiff::Timestamp> = text.parse().ok();
        if let Some(want) = want {
            prop_assert_eq!(ts_of(&format!("\"{text}\"")), Ok(want.as_millisecond()), "{}", text);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = NdjsonDecoder::new(SVC).decode_line(&line, &mut |_: &RequestEvent<'_>| {});
    }

    #[test]
    fn never_panics_on_plausible_records(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(&["ts", "status", "path", "bytes", "latency_ms", "client", "service", "x"][..]),
                prop_oneof![
                    Just("null".to_owned()), Just("-1".to_owned()), Just("1e400".to_owned()), Just("200".to_owned()),
                    Just("\"2024-05-01T12:00:00Z\"".to_owned()), Just("[{}]".to_owned()), Just("\"\\ud800\"".to_owned()),
                    "-?[0-9]{1,22}(\\.[0-9]{0,5})?", "\"[ -~]{0,12}\"",
                ],
            ),
            0..8,
        ),
    ) {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!("{{{}}}", body.join(","));
        let _ = NdjsonDecoder::new(SVC).decode_line(line.as_bytes(), &mut |_: &RequestEvent<'_>| {});
    }
}

#[test]
fn requester_keys_only_when_wanted() {
    let input = r#"{"ts":1795176000000,"status":200,"client_addr":"198.51.100.1","user_agent":"curl/8.5.0","asn":64496}
{"ts":1795176000000,"status":200,"client_ip":"2001:db8::2","asn":"64497"}
{"ts":1795176000000,"status":200,"client_addr":"198.51.100.3","client_ip":"198.51.100.4","asn":null}
{"ts":1795176000000,"status":200,"client_addr":"","client_ip":"198.51.100.5"}
{"ts":1795176000000,"status":200,"asn":4294967296}
{"ts":1795176000000,"status":200,"asn":"AS64496"}
{"ts":1795176000000,"status":200,"client_addr":7}"#;
    let mut d = NdjsonDecoder::new("svc");
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted { requester: true, ..Wanted::NONE }, input.as_bytes()),
        crate::decode::expected_lines(
            r#"
addr="198.51.100.1" ua="curl/8.5.0" asn=Some(64496)
addr="2001:db8::2" ua="" asn=Some(64497)
addr="198.51.100.3" ua="" asn=None
addr="198.51.100.5" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
"#
        )
    );
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted { requester: false, ..Wanted::ALL }, input.as_bytes()),
        "addr=\"\" ua=\"\" asn=None\n".repeat(7)
    );
}

/// NDJSON written to CloudWatch Logs and saved with `aws logs tail` or
/// `awslogs get`: the record behind the prefix, with its own time.
#[test]
fn records_behind_saved_line_prefixes() {
    let record = r#"{"ts":"2024-05-01T12:00:00.250Z","service":"checkout","status":201,"latency_ms":42.5}"#;
    check(
        &format!(
            "2024-05-01T12:00:01.000000+00:00 i-0abc123 {record}\n\
             2024-05-01T12:00:01\t{record}\n\
             /app/checkout i-0abc123 {record}\n\
             2024-05-01 12:00:01 {record}\n"
        ),
        "
        2024-05-01T12:00:00.25Z ndjson checkout   \"\" 201 latency=42.5
        2024-05-01T12:00:00.25Z ndjson checkout   \"\" 201 latency=42.5
        2024-05-01T12:00:00.25Z ndjson checkout   \"\" 201 latency=42.5
        reject bad_json
        ",
    );
    assert_eq!(
        crate::decode::Format::detect(format!("/app/checkout i-0abc123 {record}\n").as_bytes()),
        Some(crate::decode::Format::Ndjson)
    );
    // The function's own JSON output, saved from a Lambda log group, is Lambda's.
    let app = "2024-05-01T12:00:01.000000+00:00 2024/05/01/[$LATEST]0a1b2c3d {\"level\":\"INFO\",\"msg\":\"hi\"}\n";
    assert_eq!(crate::decode::Format::detect(app.as_bytes()), Some(crate::decode::Format::Lambda));
}
