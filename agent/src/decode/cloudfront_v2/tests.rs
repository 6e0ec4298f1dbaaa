use proptest::prelude::*;

use super::*;
use crate::decode::cloudfront::CloudFrontStandardDecoder;
use crate::decode::{Format, render_run};

const SVC: &str = "shop";
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloudfront/");

#[track_caller]
fn check(decoder: &mut dyn Decoder, input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let got = render_run(decoder, input.as_bytes());
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

#[test]
fn fixture_matches_golden_output() {
    let input = std::fs::read(format!("{DIR}v2.jsonl")).expect("fixture");
    let got = render_run(&mut CloudFrontV2JsonDecoder::new(SVC), &input);
    crate::testing::golden::check_text(&format!("{DIR}v2.expected"), &got);
}

/// The shape of the JSON records in the examples of
/// <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html>
/// (every value a string; `timestamp(ms)` and `origin-fbl` from the real-time
/// fields), with `sc-status` and `cs-uri-stem` selected as well.
#[test]
fn the_documented_json_shape() {
    check(
        &mut CloudFrontV2JsonDecoder::new(SVC),
        r#"{"date":"2024-11-14","time":"21:34:06","x-edge-location":"SOF50-P2","asn":"16509","timestamp(ms)":"1731620046814","origin-fbl":"0.251","origin-lbl":"0.251","x-host-header":"d111111abcdef8.cloudfront.net","cs(Cookie)":"examplecookie=value","sc-status":"200","cs-uri-stem":"/index.html"}"#,
        r#"2024-11-14T21:34:06.814Z cloudfront shop d111111abcdef8.cloudfront.net  "/index.html" 200 upstream=251 edge=SOF50-P2"#,
    );
}

#[test]
fn timestamp_precedence_and_shapes() {
    check(
        &mut CloudFrontV2JsonDecoder::new(SVC),
        r#"{"timestamp(ms)":"1732104000999","timestamp":"1.000","date":"2000-01-01","time":"00:00:00","sc-status":"200"}
{"timestamp":"1732104000.5","date":"2000-01-01","time":"00:00:00","sc-status":"200"}
{"timestamp":"-","date":"2024-11-20","time":"12:00:07","sc-status":"200"}
{"timestamp":1732104000.25,"sc-status":"200"}
{"timestamp(ms)":1732104000001,"sc-status":"200"}
{"date":"2024-11-20","sc-status":"200"}
{"date":"2024-11-20","time":"25:00:00","sc-status":"200"}
{"timestamp(ms)":"-5","sc-status":"200"}
{"timestamp":true,"sc-status":"200"}"#,
        r#"
2024-11-20T12:00:00.999Z cloudfront shop   "" 200
2024-11-20T12:00:00.5Z cloudfront shop   "" 200
2024-11-20T12:00:07Z cloudfront shop   "" 200
2024-11-20T12:00:00.25Z cloudfront shop   "" 200
2024-11-20T12:00:00.001Z cloudfront shop   "" 200
reject missing_field
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
"#,
    );
}

#[test]
fn wrong_types_and_bad_json() {
    check(
        &mut CloudFrontV2JsonDecoder::new(SVC),
        r#"{"timestamp":"1732104000","sc-status":"200","cs-method":7}
{"timestamp":"1732104000","sc-status":"2000"}
{"timestamp":"1732104000","sc-status":"-"}
{"timestamp":"1732104000","sc-status":"200","sc-bytes":"-1"}
{"timestamp":"1732104000","sc-status":"200","origin-fbl":"x"}
{"timestamp":"1732104000","sc-status":"200","sc-status":"500"}
["1732104000","200"]
not json

   "#,
        r#"
reject bad_field
reject bad_status
reject bad_status
reject bad_number
reject bad_number
reject bad_json
reject bad_json
reject bad_json
"#,
    );
}

#[test]
fn wanted_fields_only() {
    let line = std::fs::read_to_string(format!("{DIR}v2.jsonl")).expect("fixture");
    let line = line.lines().next().expect("a line");
    let mut d = CloudFrontV2JsonDecoder::new(SVC);
    d.want(Wanted { client: true, ..Wanted::NONE });
    check(
        &mut d,
        line,
        r#"2024-11-20T12:00:00.123Z cloudfront shop shop.example.com GET "/" 200 latency=4 edge=IAD89-C1 client=Browser"#,
    );
}

#[test]
fn w3c_output_reads_the_v2_field_names() {
    check(
        &mut CloudFrontStandardDecoder::new(SVC),
        "#Version: 1.0
#Fields: timestamp(ms) DistributionId x-edge-location sc-status cs-uri-stem time-taken origin-fbl origin-lbl asn c-country
1732104000123|E1EXAMPLE|IAD89-C1|200|/a|0.050|0.040|0.045|64496|US
1732104000124|E1EXAMPLE|IAD89-C1|000|/b|-|-|-|-|-
#Fields: timestamp sc-status cs-uri-stem
1732104000.5|502|/c
#Fields: date time timestamp sc-status
2000-01-01|00:00:00|1732104001|200
2000-01-01|00:00:00|-|200",
        r#"
2024-11-20T12:00:00.123Z cloudfront shop   "/a" 200 latency=50 upstream=40 edge=IAD89-C1
2024-11-20T12:00:00.124Z cloudfront shop   "/b" 0 edge=IAD89-C1
2024-11-20T12:00:00.5Z cloudfront shop   "/c" 502
2024-11-20T12:00:01Z cloudfront shop   "" 200
2000-01-01T00:00:00Z cloudfront shop   "" 200
"#,
    );
}

#[test]
fn plain_output_needs_a_field_list() {
    let err = |fields: &[&str]| CloudFrontV2PlainDecoder::with_fields(SVC, fields).err().unwrap_or_default();
    assert!(err(&["timestamp", "cs-uri-stem"]).contains("`sc-status`"));
    assert!(err(&["date", "sc-status"]).contains("`timestamp(ms)`"));
    let mut d = CloudFrontV2PlainDecoder::with_fields(
        SVC,
        &["timestamp(ms)", "DistributionId", "sc-status", "cs(Host)", "cs-uri-stem", "origin-fbl"],
    )
    .expect("fields");
    check(
        &mut d,
        "1732104000123|E1EXAMPLE|200|d1.cloudfront.net|/x%20y|0.5
1732104000123|E1EXAMPLE|200",
        r#"
2024-11-20T12:00:00.123Z cloudfront shop d1.cloudfront.net  "/x y" 200 upstream=500
2024-11-20T12:00:00.123Z cloudfront shop   "" 200
"#,
    );
}

#[test]
fn detect_tells_v2_json_from_ndjson() {
    let v2 = std::fs::read(format!("{DIR}v2.jsonl")).expect("fixture");
    assert_eq!(Format::detect(&v2), Some(Format::CloudFrontV2Json));
    assert_eq!(Format::detect(br#"{"x-edge-location":"IAD89-C1"}"#), Some(Format::CloudFrontV2Json));
    assert_eq!(Format::detect(br#"{"ts":"2024-05-01T12:00:00Z","status":200}"#), Some(Format::Ndjson));
    assert_eq!(Format::parse("cloudfront-v2"), Some(Format::CloudFrontV2Json));
    assert!(Format::CloudFrontV2Json.decoder(SVC).is_some());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = CloudFrontV2JsonDecoder::new(SVC).decode_line(&line, &mut |_: &RequestEvent<'_>| {});
    }

    #[test]
    fn never_panics_on_plausible_records(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(&["timestamp", "timestamp(ms)", "date", "time", "sc-status", "cs-uri-stem", "time-taken", "origin-fbl", "sc-bytes", "cs(User-Agent)", "x"][..]),
                prop_oneof![Just("\"-\"".to_owned()), Just("\"000\"".to_owned()), Just("1.5".to_owned()), "\"[0-9.%:a-fA-F/-]{0,14}\""],
            ),
            0..8,
        ),
    ) {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!("{{{}}}", body.join(","));
        let _ = CloudFrontV2JsonDecoder::new(SVC).decode_line(line.as_bytes(), &mut |_: &RequestEvent<'_>| {});
        let fields: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        if let Ok(mut d) = CloudFrontV2PlainDecoder::with_fields(SVC, &fields) {
            let values: Vec<&str> = pairs.iter().map(|(_, v)| v.trim_matches('"')).collect();
            let _ = d.decode_line(values.join("\t").as_bytes(), &mut |_: &RequestEvent<'_>| {});
        }
    }
}

#[test]
fn requester_from_json_fields() {
    let input = r#"{"timestamp(ms)":"1795176000123","sc-status":"200","c-ip":"198.51.100.23","cs(User-Agent)":"Mozilla/5.0%20(Macintosh)","asn":"64496"}
{"timestamp(ms)":"1795176000124","sc-status":"200","c-ip":"2001:db8::5","cs(User-Agent)":"-","asn":64497}
{"timestamp(ms)":"1795176000125","sc-status":"200","c-ip":"-","asn":"unknown"}
{"timestamp(ms)":"1795176000126","sc-status":"200","asn":"99999999999"}"#;
    let got = crate::decode::render_requesters(
        &mut CloudFrontV2JsonDecoder::new(SVC),
        Wanted { requester: true, ..Wanted::NONE },
        input.as_bytes(),
    );
    assert_eq!(
        got,
        crate::decode::expected_lines(
            r#"
addr="198.51.100.23" ua="Mozilla/5.0%20(Macintosh)" asn=Some(64496)
addr="2001:db8::5" ua="" asn=Some(64497)
addr="" ua="" asn=None
addr="" ua="" asn=None
"#
        )
    );
    let got = crate::decode::render_requesters(
        &mut CloudFrontV2JsonDecoder::new(SVC),
        Wanted { requester: false, ..Wanted::ALL },
        input.as_bytes(),
    );
    assert_eq!(got, "addr=\"\" ua=\"\" asn=None\n".repeat(4));
}

#[test]
fn requester_of_the_wrong_type_is_left_out_and_the_line_kept() {
    let input = br#"{"timestamp(ms)":"1795176000123","sc-status":"200","c-ip":19851,"cs(User-Agent)":"curl/8.5.0"}"#;
    let mut d = CloudFrontV2JsonDecoder::new(SVC);
    assert_eq!(crate::decode::render_requesters(&mut d, Wanted::ALL, input), "addr=\"\" ua=\"curl/8.5.0\" asn=None\n");
    assert_eq!(crate::decode::render_requesters(&mut d, Wanted::NONE, input), "addr=\"\" ua=\"\" asn=None\n");
}

#[test]
fn requester_from_plain_output() {
    let fields = ["timestamp(ms)", "c-ip", "sc-status", "cs(User-Agent)", "time-taken", "asn"];
    let input = "1795176000123\t203.0.113.7\t200\tMozilla/5.0%20(iPhone)\t0.004\t64500\n1795176000124\t203.0.113.8\t404\t-\t0.001\t-";
    let mut d = CloudFrontV2PlainDecoder::with_fields(SVC, &fields).expect("fields");
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted::ALL, input.as_bytes()),
        crate::decode::expected_lines(
            r#"
addr="203.0.113.7" ua="Mozilla/5.0%20(iPhone)" asn=Some(64500)
addr="203.0.113.8" ua="" asn=None
"#
        )
    );
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted::NONE, input.as_bytes()),
        "addr=\"\" ua=\"\" asn=None\n".repeat(2)
    );
}

#[test]
fn protocol_and_tls_version_from_json_fields() {
    let input = r#"{"timestamp(ms)":"1795176000123","sc-status":"200","cs-protocol":"https","ssl-protocol":"TLSv1.3"}
{"timestamp(ms)":"1795176000124","sc-status":"200","cs-protocol":"http","ssl-protocol":"-"}
{"timestamp(ms)":"1795176000125","sc-status":"200","cs-protocol":"wss","ssl-protocol":"TLSv1"}
{"timestamp(ms)":"1795176000126","sc-status":"200"}
{"timestamp(ms)":"1795176000127","sc-status":"200","cs-protocol":443,"ssl-protocol":null}"#;
    let wanted = Wanted { protocol: true, tls_version: true, ..Wanted::NONE };
    let got = crate::decode::render_connections(&mut CloudFrontV2JsonDecoder::new(SVC), wanted, input.as_bytes());
    assert_eq!(
        got,
        crate::decode::expected_lines(
            "
            proto=https tls=TLSv1.3
            proto=http tls=none
            proto=wss tls=TLSv1
            proto=unknown tls=unknown
            proto=unknown tls=unknown
            "
        )
    );
    let not_wanted = Wanted { protocol: false, tls_version: false, ..Wanted::ALL };
    let got = crate::decode::render_connections(&mut CloudFrontV2JsonDecoder::new(SVC), not_wanted, input.as_bytes());
    assert_eq!(got, "proto=unknown tls=unknown\n".repeat(5));
}

#[test]
fn protocol_and_tls_version_from_plain_output() {
    let fields = ["timestamp(ms)", "cs-protocol", "sc-status", "ssl-protocol", "time-taken"];
    let input = "1795176000123\thttps\t200\tTLSv1.2\t0.004\n1795176000124\thttp\t200\t-\t0.001";
    let mut d = CloudFrontV2PlainDecoder::with_fields(SVC, &fields).expect("fields");
    assert_eq!(
        crate::decode::render_connections(&mut d, Wanted::ALL, input.as_bytes()),
        "proto=https tls=TLSv1.2\nproto=http tls=none\n"
    );
    assert_eq!(
        crate::decode::render_connections(&mut d, Wanted::NONE, input.as_bytes()),
        "proto=unknown tls=unknown\n".repeat(2)
    );
}

/// A v2 JSON record delivered to CloudWatch Logs and saved with `aws logs
/// tail` or `awslogs get`: the record behind the tools' prefix, its own
/// time kept.
#[test]
fn records_behind_saved_line_prefixes() {
    let record = r#"{"timestamp(ms)":"1732104000123","sc-status":"503","cs(Host)":"d1.cloudfront.net","cs-uri-stem":"/a","x-edge-location":"IAD89-C1","time-taken":"0.250"}"#;
    let input = format!(
        "2024-11-20T12:00:09.000000+00:00 CloudFront_E1EXAMPLE {record}\n\
         2024-11-20T12:00:09 {record}\n\
         /aws/cloudfront/shop\tCloudFront_E1EXAMPLE\t2024-11-20T12:00:09.000Z\t{record}\n\
         2024-11-20 12:00:09 UTC {record}\n\
         2024-11-20T12:00:09Z no-json-here\n"
    );
    let got = render_run(&mut CloudFrontV2JsonDecoder::new(SVC), input.as_bytes());
    let event = "2024-11-20T12:00:00.123Z cloudfront shop d1.cloudfront.net  \"/a\" 503 latency=250 edge=IAD89-C1";
    assert_eq!(got, format!("{event}\n{event}\n{event}\nreject bad_json\nreject bad_json\n"));
    assert_eq!(Format::detect(input.as_bytes()), Some(Format::CloudFrontV2Json));
}
