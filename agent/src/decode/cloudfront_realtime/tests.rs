use proptest::prelude::*;

use super::*;
use crate::decode::{Format, render_run};
use crate::event::RequestEvent;

const SVC: &str = "shop";
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloudfront/");

/// The field list the fixture's real-time log configuration selected.
fn fixture_fields() -> Vec<String> {
    let list = std::fs::read_to_string(format!("{DIR}realtime.fields")).expect("field list");
    list.split_whitespace().map(str::to_owned).collect()
}

/// Decode `input` (tabs written as `|`) with `fields` and compare the
/// rendered run with `expected`.
#[track_caller]
fn check(fields: &[&str], input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let mut decoder = CloudFrontRealtimeDecoder::new(SVC, fields).expect("valid field list");
    let got = render_run(&mut decoder, input.as_bytes());
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

#[test]
fn fixture_matches_golden_output() {
    let fields = fixture_fields();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let input = std::fs::read(format!("{DIR}realtime.tsv")).expect("fixture");
    let got = render_run(&mut CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields"), &input);
    crate::testing::golden::check_text(&format!("{DIR}realtime.expected"), &got);
}

#[test]
fn the_field_list_is_checked() {
    let err = |fields: &[&str]| CloudFrontRealtimeDecoder::new(SVC, fields).err().unwrap_or_default();
    assert!(
        err(&["timestamp", "sc-status", "cs(Host)"])
            .starts_with("unknown CloudFront real-time log field `cs(Host)` (position 3)")
    );
    assert_eq!(
        err(&["timestamp", "sc-status", "c-ip", "c-ip"]),
        "CloudFront real-time log field `c-ip` is listed twice"
    );
    assert_eq!(err(&["sc-status", "cs-uri-stem"]), "CloudFront real-time log fields must include `timestamp`");
    assert_eq!(err(&["timestamp"]), "CloudFront real-time log fields must include `sc-status`");
    assert!(CloudFrontRealtimeDecoder::new(SVC, &REALTIME_FIELDS).is_ok());
    assert!(CloudFrontRealtimeDecoder::new(SVC, &["TIMESTAMP", "sc-status"]).is_ok());
}

#[test]
fn records_hold_the_fields_in_cloudfronts_order_whatever_the_configured_order() {
    // Configured out of order; CloudFront writes timestamp, sc-status,
    // cs-host, cs-uri-stem, time-taken, origin-fbl.
    check(
        &["sc-status", "cs-uri-stem", "timestamp", "origin-fbl", "cs-host", "time-taken"],
        "1732104000.5|404|d1.cloudfront.net|/gone|0.020|0.010
1732104000|200|-|/x|-|-",
        r#"
2024-11-20T12:00:00.5Z cloudfront-realtime shop d1.cloudfront.net  "/gone" 404 latency=20 upstream=10
2024-11-20T12:00:00Z cloudfront-realtime shop   "/x" 200
"#,
    );
}

/// The consumer example of
/// <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/real-time-logs.html>:
/// with `time-to-first-byte`, `sc-status` and `c-country` selected, adding
/// `sc-bytes` and `time-taken` gives records in the order
/// `time-to-first-byte`, `sc-status`, `sc-bytes`, `time-taken`, `c-country`.
#[test]
fn added_fields_take_their_documented_place() {
    let fields = ["timestamp", "time-to-first-byte", "sc-status", "c-country", "sc-bytes", "time-taken"];
    check(
        &fields,
        "1732104000|0.004|200|5120|0.020|DE",
        r#"2024-11-20T12:00:00Z cloudfront-realtime shop   "" 200 latency=20 bytes=5120"#,
    );
}

#[test]
fn every_documented_field_is_accepted_and_skipped() {
    // The "Fields" list of the real-time logs page, in its order.
    assert_eq!(REALTIME_FIELDS.len(), 69);
    assert_eq!(REALTIME_FIELDS[..4], ["timestamp", "c-ip", "s-ip", "time-to-first-byte"]);
    assert_eq!(
        REALTIME_FIELDS[41..47],
        [
            "primary-distribution-id",
            "primary-distribution-dns-name",
            "origin-fbl",
            "origin-lbl",
            "asn",
            "cmcd-encoded-bitrate"
        ]
    );
    assert_eq!(
        REALTIME_FIELDS[62..],
        [
            "cmcd-top-bitrate",
            "cmcd-version",
            "r-host",
            "sr-reason",
            "x-edge-mqcs",
            "distribution-tenant-id",
            "connection-id"
        ]
    );
    // Every field selected: the ones the decoder reads are found past all
    // the ones it skips.
    let record: Vec<String> = REALTIME_FIELDS
        .iter()
        .map(|&f| match f {
            "timestamp" => "1732104000.250".to_owned(),
            "sc-status" => "503".to_owned(),
            "cs-uri-stem" => "/v/seg-7.m4s?token=abc".to_owned(),
            "cs-host" => "video.example.com".to_owned(),
            "x-host-header" => "d111111abcdef8.cloudfront.net".to_owned(),
            "time-taken" => "0.120".to_owned(),
            "origin-fbl" => "0.100".to_owned(),
            "sc-bytes" => "2048".to_owned(),
            "cs-method" => "GET".to_owned(),
            "x-edge-location" => "FRA56-P3".to_owned(),
            "x-edge-request-id" => "rt-1".to_owned(),
            "x-edge-result-type" => "Miss".to_owned(),
            "sr-reason" => "Failover:503".to_owned(),
            "connection-id" => "conn-1".to_owned(),
            other => format!("<{other}>"),
        })
        .collect();
    check(
        &REALTIME_FIELDS,
        &record.join("|"),
        r#"2024-11-20T12:00:00.25Z cloudfront-realtime shop video.example.com GET "/v/seg-7.m4s" 503 latency=120 upstream=100 edge=FRA56-P3 id=rt-1 client=Other cache=Miss bytes=2048"#,
    );
}

#[test]
fn the_host_is_the_viewers_host_header() {
    // `cs-host` is what the viewer sent; `x-host-header` is the
    // distribution's domain name, the host only when `cs-host` is missing.
    check(
        &["timestamp", "sc-status", "cs-host", "x-host-header"],
        "1732104000|200|www.example.com|d111111abcdef8.cloudfront.net
1732104000|200|-|d111111abcdef8.cloudfront.net",
        r#"
2024-11-20T12:00:00Z cloudfront-realtime shop www.example.com  "" 200
2024-11-20T12:00:00Z cloudfront-realtime shop d111111abcdef8.cloudfront.net  "" 200
"#,
    );
    check(
        &["timestamp", "sc-status", "x-host-header"],
        "1732104000|200|d111111abcdef8.cloudfront.net",
        r#"2024-11-20T12:00:00Z cloudfront-realtime shop d111111abcdef8.cloudfront.net  "" 200"#,
    );
}

#[test]
fn the_query_string_is_not_part_of_the_path() {
    // `cs-uri-stem` holds the query string in real-time logs
    // (`/images/cat.jpg?mobile=true`); a `?` in the path itself is encoded.
    check(
        &["timestamp", "sc-status", "cs-uri-stem"],
        "1732104000|200|/images/cat.jpg?mobile=true
1732104000|200|/a%253Fb?c=d?e
1732104000|200|?only=query
1732104000|200|/plain",
        r#"
2024-11-20T12:00:00Z cloudfront-realtime shop   "/images/cat.jpg" 200
2024-11-20T12:00:00Z cloudfront-realtime shop   "/a?b" 200
2024-11-20T12:00:00Z cloudfront-realtime shop   "" 200
2024-11-20T12:00:00Z cloudfront-realtime shop   "/plain" 200
"#,
    );
}

#[test]
fn trailing_newlines_and_blank_records() {
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &["timestamp", "sc-status", "cs-uri-stem"]).expect("fields");
    let mut got = Vec::new();
    for record in [&b"1732104000.000\t200\t/a\n"[..], b"1732104000.001\t200\t/b\r\n", b"\n", b""] {
        d.decode_line(record, &mut |e: &RequestEvent<'_>| got.push((e.ts_ms, e.path.to_owned()))).expect("record");
    }
    assert_eq!(got, [(1_732_104_000_000, "/a".to_owned()), (1_732_104_000_001, "/b".to_owned())]);
}

#[test]
fn timestamps() {
    check(
        &["timestamp", "sc-status"],
        "1732104000.1|200
1732104000.12|200
0|200
1732104000.|200
1732104000.1234|200
-1732104000|200
1732104000,5|200
9999999999999|200",
        r#"
2024-11-20T12:00:00.1Z cloudfront-realtime shop   "" 200
2024-11-20T12:00:00.12Z cloudfront-realtime shop   "" 200
1970-01-01T00:00:00Z cloudfront-realtime shop   "" 200
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
"#,
    );
}

#[test]
fn wanted_fields_only() {
    let fields = fixture_fields();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let input = std::fs::read(format!("{DIR}realtime.tsv")).expect("fixture");
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
    d.want(Wanted::NONE);
    let mut n = 0;
    for line in input.split(|&b| b == b'\n') {
        let _ = d.decode_line(line, &mut |e: &RequestEvent<'_>| {
            n += 1;
            assert_eq!((e.bytes, e.request_id, e.client, e.cache), (0, "", Default::default(), Default::default()));
        });
    }
    assert!(n > 5);
}

#[test]
fn format_needs_the_field_list() {
    assert_eq!(Format::parse("cloudfront-realtime"), Some(Format::CloudFrontRealtime));
    assert!(Format::CloudFrontRealtime.decoder(SVC).is_none());
    assert!(Format::CloudFrontRealtime.decoder_with_fields(SVC, &["timestamp", "sc-status"]).is_ok());
    assert!(Format::CloudFrontRealtime.decoder_with_fields(SVC, &["nope"]).is_err());
    assert!(Format::Auto.decoder_with_fields(SVC, &[]).is_err());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..8)) {
        let mut d = CloudFrontRealtimeDecoder::new(SVC, &REALTIME_FIELDS).expect("fields");
        for line in &lines {
            let _ = d.decode_line(line, &mut |_: &RequestEvent<'_>| {});
        }
    }

    #[test]
    fn never_panics_on_plausible_records(
        fields in proptest::sample::subsequence(&REALTIME_FIELDS[..], 2..20),
        values in proptest::collection::vec(
            prop_oneof![Just("-".to_owned()), Just("000".to_owned()), Just("1732104000.123".to_owned()), "[0-9.%a-fA-F/]{0,12}"],
            0..24,
        ),
    ) {
        let mut fields = fields;
        fields.extend(["timestamp", "sc-status"].iter().filter(|f| !fields.contains(f)).copied().collect::<Vec<_>>());
        let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
        let _ = d.decode_line(values.join("\t").as_bytes(), &mut |_: &RequestEvent<'_>| {});
    }
}

#[test]
fn requester_from_the_fixture_fields() {
    let fields = fixture_fields();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let input = std::fs::read(format!("{DIR}realtime.tsv")).expect("fixture");
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
    let got = crate::decode::render_requesters(&mut d, Wanted { requester: true, ..Wanted::NONE }, &input);
    let first = got.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        r#"addr="192.0.2.10" ua="Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/124.0.0.0%20Safari/537.36" asn=Some(64496)"#
    );
    let got = crate::decode::render_requesters(&mut d, Wanted { requester: false, ..Wanted::ALL }, &input);
    assert!(got.lines().count() > 5);
    assert!(got.lines().all(|l| l == r#"addr="" ua="" asn=None"# || l.starts_with("reject")), "{got}");
}

#[test]
fn requester_fields_in_cloudfront_order_whatever_the_configured_order() {
    // Configured out of order: records hold c-ip second, cs-user-agent
    // after time-taken, asn late.
    let fields = ["asn", "cs-user-agent", "sc-status", "c-ip", "timestamp", "time-taken"];
    let input = "1795176000.250\t2001:db8::9\t503\t0.100\tcurl/8.5.0\t64511\n\
                 1795176000.500\t-\t200\t0.002\t-\t-";
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted::ALL, input.as_bytes()),
        crate::decode::expected_lines(
            r#"
addr="2001:db8::9" ua="curl/8.5.0" asn=Some(64511)
addr="" ua="" asn=None
"#
        )
    );
    assert_eq!(
        crate::decode::render_requesters(&mut d, Wanted::NONE, input.as_bytes()),
        "addr=\"\" ua=\"\" asn=None\n".repeat(2)
    );
}

#[test]
fn requester_absent_when_not_configured() {
    let input = "1795176000.250\t200";
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &["timestamp", "sc-status"]).expect("fields");
    assert_eq!(crate::decode::render_requesters(&mut d, Wanted::ALL, input.as_bytes()), "addr=\"\" ua=\"\" asn=None\n");
}

#[test]
fn protocol_and_tls_version_in_cloudfront_order() {
    // Configured out of order: records hold cs-protocol after sc-status and
    // ssl-protocol after time-taken.
    let fields = ["ssl-protocol", "sc-status", "timestamp", "cs-protocol", "time-taken"];
    let input = "1795176000.250\t200\thttps\t0.002\tTLSv1.3\n1795176000.500\t200\thttp\t0.001\t-";
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
    assert_eq!(
        crate::decode::render_connections(&mut d, Wanted::ALL, input.as_bytes()),
        "proto=https tls=TLSv1.3\nproto=http tls=none\n"
    );
    assert_eq!(
        crate::decode::render_connections(&mut d, Wanted::NONE, input.as_bytes()),
        "proto=unknown tls=unknown\n".repeat(2)
    );
    // The fixture selects cs-protocol but not ssl-protocol.
    let fields = fixture_fields();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let input = std::fs::read(format!("{DIR}realtime.tsv")).expect("fixture");
    let mut d = CloudFrontRealtimeDecoder::new(SVC, &fields).expect("fields");
    let got = crate::decode::render_connections(&mut d, Wanted::ALL, &input);
    assert_eq!(got.lines().next(), Some("proto=https tls=unknown"));
}
