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
    let golden = format!("{DIR}realtime.expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(got, want);
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
fn fields_in_the_configured_order() {
    check(
        &["sc-status", "cs-uri-stem", "timestamp", "origin-fbl", "cs-host", "time-taken"],
        "404|/gone|1732104000.5|0.010|d1.cloudfront.net|0.020
200|/x|1732104000|-|-|-",
        r#"
2024-11-20T12:00:00.5Z cloudfront-realtime shop d1.cloudfront.net  "/gone" 404 latency=20 upstream=10
2024-11-20T12:00:00Z cloudfront-realtime shop   "/x" 200
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
