use proptest::prelude::*;

use super::*;
use crate::decode::cloudfront_v2::CloudFrontV2PlainDecoder;
use crate::decode::{Format, render_run};

const SVC: &str = "shop";
const FULL_HEADER: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

/// Decode `input` (lines written with `|` for tabs) with a fresh decoder and
/// compare the rendered run with `expected` (one line per outcome).
#[track_caller]
fn check(input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let mut decoder = CloudFrontStandardDecoder::new(SVC);
    let got = render_run(&mut decoder, input.as_bytes());
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

/// A 33-field record with the given values and plausible filler elsewhere.
fn record(date: &str, time: &str, stem: &str, status: &str, ua: &str, result: &str, taken: &str) -> String {
    let fields = [
        date,
        time,
        "FRA56-P3",
        "1234",
        "192.0.2.10",
        "GET",
        "d1.cloudfront.net",
        stem,
        status,
        "-",
        ua,
        "-",
        "-",
        result,
        "req-1",
        "shop.example.com",
        "https",
        "300",
        taken,
        "-",
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
        result,
        "HTTP/2.0",
        "-",
        "-",
        "443",
        "0.001",
        result,
        "text/html",
        "1234",
        "-",
        "-",
    ];
    fields.join("|")
}

#[test]
fn fixture_with_full_header_matches_golden_output() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cloudfront/");
    let input = std::fs::read(format!("{dir}standard-33.log")).expect("fixture");
    let got = render_run(&mut CloudFrontStandardDecoder::new(SVC), &input);
    crate::testing::golden::check_text(&format!("{dir}standard-33.expected"), &got);
}

#[test]
fn header_columns_in_any_order_and_any_subset() {
    check(
        "#Version: 1.0
#Fields: sc-status time-taken cs-uri-stem time x-edge-location date
200|0.250|/a|10:00:00|HKG62-C1|2023-07-04
#Fields: date time sc-status
2023-07-04|10:00:01|404
#Fields: cs-method   date\ttime  cs-uri-stem sc-status
PUT|2023-07-04|10:00:02|/b|201",
        r#"
2023-07-04T10:00:00Z cloudfront shop   "/a" 200 latency=250 edge=HKG62-C1
2023-07-04T10:00:01Z cloudfront shop   "" 404
2023-07-04T10:00:02Z cloudfront shop  PUT "/b" 201
"#,
    );
}

#[test]
fn header_names_ignore_case_and_first_duplicate_wins() {
    check(
        "#Fields: DATE Time sc-status sc-status CS(HOST)
2023-07-04|10:00:00|200|500|Example.org",
        r#"2023-07-04T10:00:00Z cloudfront shop Example.org  "" 200"#,
    );
}

#[test]
fn older_24_and_18_field_headers() {
    // 24 fields: up to cs-protocol-version (2016 layout); 18: up to cs-bytes,
    // without time-taken, so no latency.
    let f24 = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version";
    let f18 = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes";
    check(
        &format!(
            "{f24}
2016-11-02|21:18:01|SEA4|2390|192.0.2.1|GET|d2.cloudfront.net|/x.png|200|-|Mozilla/5.0%20(Macintosh)|-|-|Hit|id24|www.example.com|https|180|0.016|-|TLSv1.2|ECDHE-RSA-AES128-GCM-SHA256|Hit|HTTP/1.1
{f18}
2014-05-23|01:13:11|DUB2|511|192.0.2.2|GET|d2.cloudfront.net|/y.css|304|-|Opera/9.80|-|-|RefreshHit|id18|-|http|203"
        ),
        r#"
2016-11-02T21:18:01Z cloudfront shop www.example.com GET "/x.png" 200 latency=16 edge=SEA4 id=id24 client=Browser cache=Hit bytes=2390
2014-05-23T01:13:11Z cloudfront shop d2.cloudfront.net GET "/y.css" 304 edge=DUB2 id=id18 client=Other cache=Hit bytes=511
"#,
    );
}

#[test]
fn without_header_only_canonical_33_field_lines_are_read() {
    let good = record("2021-01-01", "00:00:00", "/", "200", "-", "Hit", "0.010");
    check(
        &format!(
            "{good}
2021-01-01|00:00:00|FRA56-P3|1|192.0.2.1|GET|d1.cloudfront.net|/|200
{good}|extra"
        ),
        r#"
2021-01-01T00:00:00Z cloudfront shop shop.example.com GET "/" 200 latency=10 edge=FRA56-P3 id=req-1 cache=Hit bytes=1234
reject no_header
reject no_header
"#,
    );
}

#[test]
fn reset_forgets_the_header() {
    let mut d = CloudFrontStandardDecoder::new(SVC);
    let run = |d: &mut CloudFrontStandardDecoder, s: &str| render_run(d, s.replace('|', "\t").as_bytes());
    assert_eq!(
        run(&mut d, "#Fields: date time sc-status\n2020-01-01|00:00:00|200"),
        "2020-01-01T00:00:00Z cloudfront shop   \"\" 200\n"
    );
    d.reset();
    assert_eq!(run(&mut d, "2020-01-01|00:00:00|200"), "reject no_header\n");
}

#[test]
fn url_decoding_once_twice_and_invalid_escapes() {
    check(
        &format!(
            "{FULL_HEADER}
{}
{}
{}
{}
{}
{}",
            record("2022-05-05", "05:05:05", "/caf%C3%A9", "200", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/caf%25C3%25A9", "200", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/a%252520b", "200", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/100%/%zz/%4/%2", "200", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/%FF%C3", "200", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/a+b%2Bc", "200", "-", "-", "-"),
        ),
        r#"
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/café" 200 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/café" 200 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/a%20b" 200 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/100%/%zz/%4/%2" 200 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/��" 200 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/a+b+c" 200 edge=FRA56-P3 id=req-1 bytes=1234
"#,
    );
}

#[test]
fn status_000_dash_and_garbage() {
    check(
        &format!(
            "{FULL_HEADER}
{}
{}
{}
{}
{}",
            record("2022-05-05", "05:05:05", "/", "000", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/", "-", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/", "2O0", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/", "2000", "-", "-", "-"),
            record("2022-05-05", "05:05:05", "/", "", "-", "-", "-"),
        ),
        r#"
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/" 0 edge=FRA56-P3 id=req-1 bytes=1234
reject bad_status
reject bad_status
reject bad_status
reject bad_status
"#,
    );
}

#[test]
fn dashes_are_empty_and_host_falls_back_to_cs_host() {
    check(
        "#Fields: date time x-edge-location sc-bytes cs-method cs(Host) x-host-header cs-uri-stem sc-status x-edge-request-id time-taken
2022-05-05|05:05:05|-|-|-|d9.cloudfront.net|-|-|200|-|-
2022-05-05|05:05:05|-|-|-|-|-|-|200|-|-",
        r#"
2022-05-05T05:05:05Z cloudfront shop d9.cloudfront.net  "" 200
2022-05-05T05:05:05Z cloudfront shop   "" 200
"#,
    );
}

#[test]
fn short_lines_miss_fields_and_required_ones_reject() {
    check(
        &format!(
            "{FULL_HEADER}
2022-05-05|05:05:05|FRA56-P3|10|192.0.2.1|GET|d1.cloudfront.net|/p|200
2022-05-05|05:05:05|FRA56-P3|10|192.0.2.1|GET|d1.cloudfront.net|/p
2022-05-05
-|05:05:05|FRA56-P3|10|192.0.2.1|GET|d1.cloudfront.net|/p|200"
        ),
        r#"
2022-05-05T05:05:05Z cloudfront shop d1.cloudfront.net GET "/p" 200 edge=FRA56-P3 bytes=10
reject missing_field
reject missing_field
reject missing_field
"#,
    );
}

#[test]
fn header_without_status_column_rejects_every_line() {
    check("#Fields: date time cs-uri-stem\n2022-05-05|05:05:05|/p", "reject missing_field");
    check("#Fields:\n2022-05-05|05:05:05|/p", "reject missing_field");
}

#[test]
fn carriage_returns_blank_lines_and_comments() {
    check(
        &format!(
            "{FULL_HEADER}\r\n{}\r\n\r\n   \n#Version: 1.0\r\n# anything\n{}",
            record("2022-05-05", "05:05:05", "/", "200", "-", "-", "0.5"),
            record("2022-05-05", "05:05:06", "/", "200", "-", "-", "7"),
        ),
        r#"
2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/" 200 latency=500 edge=FRA56-P3 id=req-1 bytes=1234
2022-05-05T05:05:06Z cloudfront shop shop.example.com GET "/" 200 latency=7000 edge=FRA56-P3 id=req-1 bytes=1234
"#,
    );
}

#[test]
fn bad_timestamps_and_numbers() {
    let h = "#Fields: date time sc-status time-taken sc-bytes\n";
    check(
        &format!(
            "{h}2023-02-29|00:00:00|200|-|-
2023-13-01|00:00:00|200|-|-
2023-1-01|00:00:00|200|-|-
2023-01-01|24:00:00|200|-|-
2023-01-01|12:60:00|200|-|-
2023-01-01|12:00|200|-|-
2023-01-01|12:00:00|200|1.2.3|-
2023-01-01|12:00:00|200|-1|-
2023-01-01|12:00:00|200|.|-
2023-01-01|12:00:00|200|-|12k
2023-01-01|12:00:00|200|-|99999999999999999999999"
        ),
        "
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_timestamp
reject bad_number
reject bad_number
reject bad_number
reject bad_number
reject bad_number
",
    );
}

#[test]
fn too_long_lines_are_rejected() {
    let mut line = record("2022-05-05", "05:05:05", "/", "200", "-", "-", "-").replace('|', "\t").into_bytes();
    line.resize(MAX_LINE + 1, b'a');
    let mut d = CloudFrontStandardDecoder::new(SVC);
    let r = d.decode_line(&line, &mut |_: &RequestEvent<'_>| panic!("no event"));
    assert_eq!(r, Err(RejectReason::TooLong.into()));
}

#[test]
fn percent_signs_are_found_anywhere() {
    for (s, want) in [
        ("", false),
        ("/a", false),
        ("/abcdefghijk", false),
        ("%", true),
        ("/abcdefg%", true),
        ("/abcdefgh%x", true),
        ("/%", true),
        ("/abcdefghijklmno%", true),
    ] {
        assert_eq!(has_percent(s.as_bytes()), want, "{s:?}");
    }
}

#[test]
fn seconds_to_milliseconds() {
    for (input, want) in [
        ("0.123", Some(123.0)),
        ("9.999", Some(9_999.0)),
        ("1.2x4", None),
        ("1.2345", Some(1_234.5)),
        ("0.000", Some(0.0)),
        ("12", Some(12_000.0)),
        ("1.5", Some(1_500.0)),
        ("0.12", Some(120.0)),
        ("30.000", Some(30_000.0)),
        ("0.0005", Some(0.5)),
        ("2.123456", Some(2_123.456)),
        (".5", Some(500.0)),
        ("5.", Some(5_000.0)),
        ("", None),
        (".", None),
        ("1,5", None),
        ("-1", None),
        ("1e3", None),
        ("1234567890123456789", None),
    ] {
        assert_eq!(parse_seconds_as_ms(input.as_bytes()), want, "{input:?}");
    }
}

#[test]
fn cache_results_fold_to_three_values() {
    for (v, want) in [
        ("Hit", CacheResult::Hit),
        ("RefreshHit", CacheResult::Hit),
        ("OriginShieldHit", CacheResult::Hit),
        ("Miss", CacheResult::Miss),
        ("Error", CacheResult::Error),
        ("LimitExceeded", CacheResult::Error),
        ("CapacityExceeded", CacheResult::Error),
        ("Redirect", CacheResult::Unknown),
        ("FunctionGeneratedResponse", CacheResult::Unknown),
        ("hit", CacheResult::Unknown),
    ] {
        assert_eq!(cache_result(v.as_bytes()), want, "{v}");
    }
}

#[test]
fn user_agents_classified_without_decoding() {
    use ClientClass::*;
    for (ua, want) in [
        ("Mozilla/5.0%20(compatible;%20Googlebot/2.1;%20+http://www.google.com/bot.html)", Crawler),
        ("Mozilla/5.0%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko;%20compatible;%20bingbot/2.0)", Crawler),
        ("Mozilla/5.0%20(compatible;%20YandexImages/3.0;%20+http://yandex.com/bots)", Crawler),
        ("Mozilla/5.0%20(compatible;%20YandexMetrika/2.0)", Crawler),
        ("Mozilla/5.0%20(compatible;%20Baiduspider/2.0)", Crawler),
        ("DuckDuckBot/1.1;%20(+http://duckduckgo.com/duckduckbot.html)", Crawler),
        (
            "Mozilla/5.0%20(Macintosh)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.0%20Safari/605.1.15%20(Applebot/0.1)",
            Crawler,
        ),
        ("Mozilla/5.0%20(compatible;%20Yahoo!%20Slurp;%20http://help.yahoo.com/help/us/ysearch/slurp)", Crawler),
        ("facebookexternalhit/1.1%20(+http://www.facebook.com/externalhit_uatext.php)", Crawler),
        ("Mozilla/5.0%20(compatible;%20AhrefsBot/7.0)", Crawler),
        ("SomeCrawler/1.0", Crawler),
        ("my-SPIDER", Crawler),
        (
            "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/124.0.0.0%20Safari/537.36",
            Browser,
        ),
        (
            "Mozilla/5.0%20(Linux;%20Android%209;%20CUBOT%20X19)%20AppleWebKit/537.36%20Chrome/120.0%20Mobile%20Safari/537.36",
            Browser,
        ),
        ("mozilla%2F5.0%20(X11;%20Linux%20x86_64;%20rv:125.0)%20Gecko/20100101%20Firefox/125.0", Browser),
        ("curl/8.5.0", Other),
        ("okhttp/4.12.0", Other),
        ("Amazon%20CloudFront", Other),
        ("b", Other),
        ("d", Other),
        ("w", Other),
    ] {
        assert_eq!(classify_user_agent(ua.as_bytes()), want, "{ua}");
    }
    // A missing agent is unknown, not "other".
    check(
        &format!("{FULL_HEADER}\n{}", record("2022-05-05", "05:05:05", "/", "200", "-", "-", "-")),
        r#"2022-05-05T05:05:05Z cloudfront shop shop.example.com GET "/" 200 edge=FRA56-P3 id=req-1 bytes=1234"#,
    );
}

#[test]
fn non_utf8_text_is_decoded_lossily() {
    let mut line = b"2022-05-05\t05:05:05\t200\tex\xFFample.org\t/p\xC3".to_vec();
    let mut d = CloudFrontStandardDecoder::new(SVC);
    assert_eq!(render_run(&mut d, b"#Fields: date time sc-status x-host-header cs-uri-stem"), "");
    let mut got = String::new();
    d.decode_line(&line, &mut |e: &RequestEvent<'_>| got = format!("{} {}", e.host, e.path)).unwrap();
    assert_eq!(got, "ex\u{FFFD}ample.org /p\u{FFFD}");
    // Raw UTF-8 (not what CloudFront writes, but valid text) is kept as is.
    let utf8 = "2022-05-05\t05:05:05\t200\tbücher.example\t/straße".as_bytes();
    d.decode_line(utf8, &mut |e: &RequestEvent<'_>| got = format!("{} {}", e.host, e.path)).unwrap();
    assert_eq!(got, "bücher.example /straße");
    line[0] = 0xFF;
    assert_eq!(d.decode_line(&line, &mut |_: &RequestEvent<'_>| {}), Err(RejectReason::BadTimestamp.into()));
}

#[test]
fn detect_recognises_headerless_records() {
    let good = record("2021-01-01", "00:00:00", "/", "200", "-", "Hit", "0.010").replace('|', "\t");
    assert_eq!(Format::detect(format!("{good}\n").as_bytes()), Some(Format::CloudFront));
    assert_eq!(Format::detect(format!("{good}\r\n{good}").as_bytes()), Some(Format::CloudFront));
    assert_eq!(Format::detect(format!("{good}\textra").as_bytes()), None);
    assert_eq!(Format::detect(good.replacen("2021-01-01", "2021-13-01", 1).as_bytes()), None);
    assert_eq!(Format::detect(b"#Version: 1.0\n"), Some(Format::CloudFront));
    assert_eq!(Format::detect(b"hello\tworld"), None);
}

/// Every day from 1900 to 2200 against jiff, and the instant within it.
#[test]
fn timestamps_agree_with_jiff_for_every_day_1900_to_2200() {
    let mut d = jiff::civil::date(1900, 1, 1);
    let end = jiff::civil::date(2200, 12, 31);
    let mut decoder = CloudFrontStandardDecoder::new(SVC);
    decoder.decode_line(b"#Fields: date time sc-status", &mut |_: &RequestEvent<'_>| {}).unwrap();
    let mut seen = 0;
    while d <= end {
        let date = d.to_string();
        let want = d.at(13, 14, 15, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond();
        let line = format!("{date}\t13:14:15\t200");
        let mut got = None;
        decoder.decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| got = Some(e.ts_ms)).unwrap();
        assert_eq!(got, Some(want), "{date}");
        d = d.tomorrow().unwrap();
        seen += 1;
    }
    assert_eq!(seen, 109_938);
}

#[test]
fn leap_days() {
    for (date, valid) in [
        ("2000-02-29", true),
        ("2024-02-29", true),
        ("1900-02-29", false),
        ("2100-02-29", false),
        ("2023-02-29", false),
        ("2023-04-31", false),
        ("2023-12-31", true),
        ("0000-02-29", true),
        ("2023-00-10", false),
        ("2023-01-00", false),
    ] {
        assert_eq!(crate::decode::parse_date(date.as_bytes()).is_some(), valid, "{date}");
    }
}

proptest! {
    #[test]
    fn byte_bits_match_a_byte_loop(chunk in proptest::collection::vec(prop_oneof![Just(b'\t'), Just(0x89u8), Just(b'B'), Just(b'u'), Just(b'W' ^ 0x80), any::<u8>()], 0..=70)) {
        for (needles, wanted) in [(Needles::Tab, &b"\t"[..]), (Needles::AgentLetters, b"bBdDwWuU")] {
            let want = chunk.iter().take(64).enumerate().fold(0u64, |m, (i, b)| m | u64::from(wanted.contains(b)) << i);
            prop_assert_eq!(byte_bits(&chunk, needles), want);
            let mut block = [0u8; 64];
            let n = chunk.len().min(64);
            block[..n].copy_from_slice(&chunk[..n]);
            let (words, _) = block.as_chunks::<8>();
            let swar = words.iter().enumerate().fold(0u64, |m, (k, w)| m | byte_bits_8(u64::from_le_bytes(*w), needles) << (8 * k));
            prop_assert_eq!(swar, want);
        }
    }

    #[test]
    fn timestamps_agree_with_jiff(y in 0i16..=9999, m in 1i8..=12, d in 1i8..=31, h in 0i8..24, mi in 0i8..60, s in 0i8..60) {
        let date = format!("{y:04}-{m:02}-{d:02}");
        let want = jiff::civil::Date::new(y, m, d).ok().map(|date| {
            date.at(h, mi, s, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond()
        });
        let got = crate::decode::parse_date(date.as_bytes()).map(|days| (days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1000);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..8)) {
        let mut d = CloudFrontStandardDecoder::new(SVC);
        for line in &lines {
            let _ = d.decode_line(line, &mut |_: &RequestEvent<'_>| {});
        }
        let mut d = CloudFrontStandardDecoder::new(SVC);
        let _ = d.decode_line(FULL_HEADER.as_bytes(), &mut |_: &RequestEvent<'_>| {});
        for line in &lines {
            let _ = d.decode_line(line, &mut |_: &RequestEvent<'_>| {});
        }
    }

    /// Lines made of plausible pieces reach much deeper than random bytes.
    #[test]
    fn never_panics_on_plausible_records(
        fields in proptest::collection::vec(
            prop_oneof![
                Just("2024-02-29".to_owned()), Just("23:59:59".to_owned()), Just("-".to_owned()), Just("000".to_owned()),
                Just("0.123".to_owned()), Just("%".to_owned()), Just("%2".to_owned()), Just("%25%32%35".to_owned()),
                Just("Hit".to_owned()), Just("Mozilla/5.0%20bot".to_owned()), "[ -~]{0,12}", "\\PC{0,6}",
            ],
            0..40,
        ),
        header in proptest::collection::vec(proptest::sample::select(&CANONICAL_FIELDS[..]), 0..40),
    ) {
        let line = fields.join("\t");
        let mut d = CloudFrontStandardDecoder::new(SVC);
        let _ = d.decode_line(line.as_bytes(), &mut |_: &RequestEvent<'_>| {});
        let _ = d.decode_line(format!("#Fields: {}", header.join(" ")).as_bytes(), &mut |_: &RequestEvent<'_>| {});
        let _ = d.decode_line(line.as_bytes(), &mut |_: &RequestEvent<'_>| {});
    }

    #[test]
    fn decoding_a_path_never_grows_it(path in "[%0-9a-fA-FzZ/]{0,40}") {
        let mut buf = path.clone().into_bytes();
        percent_decode(&mut buf);
        prop_assert!(buf.len() <= path.len());
        if !path.contains('%') {
            prop_assert_eq!(buf, path.into_bytes());
        }
    }
}

/// Decode `input` (tabs written as `|`) with `wanted` and compare the
/// requesters of its events with `expected`.
#[track_caller]
fn check_requesters(wanted: Wanted, input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let got = crate::decode::render_requesters(&mut CloudFrontStandardDecoder::new(SVC), wanted, input.as_bytes());
    assert_eq!(got, crate::decode::expected_lines(expected), "\ninput:\n{input}");
}

#[test]
fn requester_from_the_canonical_columns() {
    let ua = "Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Gecko/20100101%20Firefox/128.0";
    let line = record("2026-11-20", "12:00:00", "/", "200", ua, "Hit", "0.010");
    let input = format!("{FULL_HEADER}\n{line}\n{line}");
    check_requesters(
        Wanted::ALL,
        &input,
        r#"
addr="192.0.2.10" ua="Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Gecko/20100101%20Firefox/128.0" asn=None
addr="192.0.2.10" ua="Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Gecko/20100101%20Firefox/128.0" asn=None
"#,
    );
    // Without a header too (the canonical 33 fields).
    check_requesters(
        Wanted { requester: true, ..Wanted::NONE },
        &line,
        r#"addr="192.0.2.10" ua="Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Gecko/20100101%20Firefox/128.0" asn=None"#,
    );
}

#[test]
fn requester_not_wanted_leaves_every_field_empty() {
    let line = record("2026-11-20", "12:00:00", "/", "200", "curl/8.5.0", "Miss", "0.010");
    check_requesters(
        Wanted { requester: false, ..Wanted::ALL },
        &format!("{line}\n{line}"),
        r#"
addr="" ua="" asn=None
addr="" ua="" asn=None
"#,
    );
}

#[test]
fn requester_from_v2_w3c_columns_with_asn() {
    let input = "#Fields: timestamp(ms) c-ip sc-status cs(User-Agent) x-edge-location asn
1795176000123|198.51.100.23|200|Mozilla/5.0%20(Windows%20NT%2010.0)|AMS58-P1|64496
1795176000124|2001:db8::17|503|-|AMS58-P1|-
1795176000125|-|200|okhttp/4.12.0|AMS58-P1|AS64496
1795176000126|203.0.113.9|200|bot|AMS58-P1|4294967296
1795176000127|203.0.113.9|200|bot|AMS58-P1|4294967295
1795176000128|203.0.113.9|200";
    check_requesters(
        Wanted { requester: true, ..Wanted::NONE },
        input,
        r#"
addr="198.51.100.23" ua="Mozilla/5.0%20(Windows%20NT%2010.0)" asn=Some(64496)
addr="2001:db8::17" ua="" asn=None
addr="" ua="okhttp/4.12.0" asn=None
addr="203.0.113.9" ua="bot" asn=None
addr="203.0.113.9" ua="bot" asn=Some(4294967295)
addr="203.0.113.9" ua="" asn=None
"#,
    );
    check_requesters(
        Wanted::NONE,
        input,
        r#"
addr="" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
addr="" ua="" asn=None
"#,
    );
}

#[test]
fn requester_text_that_is_not_utf8_is_decoded_lossily() {
    let mut input =
        b"#Fields: date time sc-status c-ip cs(User-Agent)\n2026-11-20\t12:00:00\t200\t192.0.2.1\tagent\xff/1".to_vec();
    input.extend_from_slice(b"\n2026-11-20\t12:00:01\t200\t192.0.2.\xfe\t-");
    let got = crate::decode::render_requesters(&mut CloudFrontStandardDecoder::new(SVC), Wanted::ALL, &input);
    assert_eq!(got, "addr=\"192.0.2.1\" ua=\"agent\u{fffd}/1\" asn=None\naddr=\"192.0.2.\u{fffd}\" ua=\"\" asn=None\n");
}

/// The canonical record with its `cs-protocol` and `ssl-protocol` values.
fn record_over(protocol: &str, tls: &str) -> String {
    let line = record("2026-11-20", "12:00:00", "/", "200", "curl/8.5.0", "Hit", "0.010");
    let mut fields: Vec<&str> = line.split('|').collect();
    fields[16] = protocol;
    fields[20] = tls;
    fields.join("|")
}

#[track_caller]
fn check_connections(wanted: Wanted, input: &str, expected: &str) {
    let input = input.replace('|', "\t");
    let got = crate::decode::render_connections(&mut CloudFrontStandardDecoder::new(SVC), wanted, input.as_bytes());
    assert_eq!(got, crate::decode::expected_lines(expected), "\ninput:\n{input}");
}

#[test]
fn protocol_and_tls_version_from_the_canonical_columns() {
    let lines = [
        ("https", "TLSv1.3"),
        ("https", "TLSv1.2"),
        ("https", "TLSv1.1"),
        ("https", "TLSv1"),
        ("https", "SSLv3"),
        ("http", "-"),
        ("wss", "TLSv1.2"),
        ("ws", "-"),
        ("HTTPS", "TLSv1.4"),
        ("-", "-"),
        ("gopher", "tlsv1.2"),
    ]
    .map(|(p, t)| record_over(p, t));
    let input = format!("{FULL_HEADER}\n{}", lines.join("\n"));
    check_connections(
        Wanted { protocol: true, tls_version: true, ..Wanted::NONE },
        &input,
        "
        proto=https tls=TLSv1.3
        proto=https tls=TLSv1.2
        proto=https tls=TLSv1.1
        proto=https tls=TLSv1
        proto=https tls=SSLv3
        proto=http tls=none
        proto=wss tls=TLSv1.2
        proto=ws tls=none
        proto=https tls=unknown
        proto=unknown tls=none
        proto=unknown tls=unknown
        ",
    );
    // Without a header too (the canonical 33 fields).
    check_connections(Wanted::ALL, &lines[6], "proto=wss tls=TLSv1.2");
    // Not wanted: not read.
    check_connections(Wanted { protocol: true, ..Wanted::NONE }, &lines[6], "proto=wss tls=unknown");
    check_connections(Wanted { tls_version: true, ..Wanted::NONE }, &lines[6], "proto=unknown tls=TLSv1.2");
    check_connections(
        Wanted { protocol: false, tls_version: false, ..Wanted::ALL },
        &lines[6],
        "proto=unknown tls=unknown",
    );
}

#[test]
fn protocol_and_tls_version_unknown_when_the_log_has_no_such_column() {
    // An 18-field legacy header: no ssl-protocol; and a line that ends early.
    check_connections(
        Wanted::ALL,
        "#Fields: date time sc-status cs-protocol\n2026-11-20|12:00:00|200|https\n2026-11-20|12:00:00|200",
        "
        proto=https tls=unknown
        proto=unknown tls=unknown
        ",
    );
}

#[test]
fn gated_columns_are_split_only_when_wanted() {
    let split_end = |header: &str, line: &str, wanted: Wanted| {
        let map = ColumnMap::from_names(header.split(' ').map(str::as_bytes));
        let mut spans = [Span::ABSENT; SLOTS];
        map.split(line.as_bytes(), &mut spans, wanted)
    };
    // Where column `n` (from 0) ends.
    let end_of = |line: &str, n: usize| line.match_indices('\t').nth(n).map_or(line.len(), |(i, _)| i);
    let canonical = FULL_HEADER.trim_start_matches("#Fields: ");
    let line = record_over("https", "TLSv1.2").replace('|', "\t");
    let only = |w: fn(&mut Wanted)| {
        let mut wanted = Wanted::NONE;
        w(&mut wanted);
        wanted
    };
    // Standard log: time-taken (18) is the last column always read;
    // cs-protocol (16) and c-ip (4) come before it, ssl-protocol (20) after.
    assert_eq!(split_end(canonical, &line, Wanted::NONE), end_of(&line, 18));
    assert_eq!(split_end(canonical, &line, only(|w| w.protocol = true)), end_of(&line, 18));
    assert_eq!(split_end(canonical, &line, only(|w| w.requester = true)), end_of(&line, 18));
    assert_eq!(split_end(canonical, &line, only(|w| w.tls_version = true)), end_of(&line, 20));
    // Each gated column at the end of a v2 line costs nothing unless wanted.
    let v2 = "timestamp(ms) sc-status asn cs-protocol ssl-protocol";
    let line = "1795176000123\t200\t64496\thttps\tTLSv1.2";
    assert_eq!(split_end(v2, line, Wanted::NONE), end_of(line, 1));
    assert_eq!(split_end(v2, line, only(|w| w.requester = true)), end_of(line, 2));
    assert_eq!(split_end(v2, line, only(|w| w.protocol = true)), end_of(line, 3));
    assert_eq!(split_end(v2, line, only(|w| w.tls_version = true)), line.len());
    assert_eq!(split_end(v2, line, Wanted::ALL), line.len());
    let mut d = CloudFrontV2PlainDecoder::with_fields(SVC, &v2.split(' ').collect::<Vec<_>>()).expect("fields");
    let got = crate::decode::render_connections(&mut d, only(|w| w.protocol = true), line.as_bytes());
    assert_eq!(got, "proto=https tls=unknown\n");
    let got = crate::decode::render_connections(&mut d, Wanted::ALL, line.as_bytes());
    assert_eq!(got, "proto=https tls=TLSv1.2\n");
}
