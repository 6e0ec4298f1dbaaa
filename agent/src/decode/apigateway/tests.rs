use proptest::prelude::*;

use super::*;
use crate::decode::{Format, render_event};

const SVC: &str = "shop";

/// `render_event` plus the fields only the AWS decoders fill.
fn render(e: &RequestEvent<'_>) -> String {
    let mut s = render_event(e);
    if !e.route.is_empty() {
        s.push_str(&format!(" route={}", e.route));
    }
    if e.upstream_status != 0 {
        s.push_str(&format!(" upstream_status={}", e.upstream_status));
    }
    if !e.error_type.is_empty() {
        s.push_str(&format!(" error={}", e.error_type));
    }
    s.push_str(&format!(" outcome={}", e.outcome.as_str()));
    s
}

fn run(decoder: &mut ApiGatewayDecoder, input: &[u8]) -> String {
    let mut out = String::new();
    for line in input.split(|&b| b == b'\n') {
        let mut rendered = Vec::new();
        match decoder.decode_line(line, &mut |e: &RequestEvent<'_>| rendered.push(render(e))) {
            Ok(()) => rendered.iter().for_each(|r| {
                out.push_str(r);
                out.push('\n');
            }),
            Err(reject) => {
                out.push_str("reject ");
                out.push_str(reject.reason.as_str());
                out.push('\n');
            }
        }
    }
    out
}

/// Decode `input` with a fresh decoder; compare with `expected`, one line per
/// outcome (leading whitespace and blank lines in `expected` are ignored).
#[track_caller]
fn check(input: &str, expected: &str) {
    let got = run(&mut ApiGatewayDecoder::new(SVC), input.as_bytes());
    let want: String = expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\ninput:\n{input}");
}

/// The one event (or reject) a JSON line with a fixed time and `fields` gives.
fn one(fields: &str) -> Result<String, RejectReason> {
    let line = format!(r#"{{"requestTimeEpoch":1795176000000,{fields}}}"#);
    let mut got = None;
    ApiGatewayDecoder::new(SVC)
        .decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| got = Some(render(e)))
        .map_err(|r| r.reason)?;
    Ok(got.expect("an event"))
}

fn outcome_of(fields: &str) -> String {
    let rendered = one(fields).unwrap_or_else(|r| panic!("{fields}: rejected {r}"));
    rendered.rsplit_once("outcome=").expect("outcome rendered").1.to_owned()
}

#[test]
fn fixtures_match_golden_output() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apigateway/");
    for name in ["rest.json.log", "http.json.log", "clf.log", "csv.log", "saved.log"] {
        let input = std::fs::read(format!("{dir}{name}")).expect("fixture");
        let got = run(&mut ApiGatewayDecoder::new(SVC), &input);
        crate::testing::golden::check_text(&format!("{dir}{name}.expected"), &got);
    }
}

#[test]
fn every_json_key() {
    check(
        r#"{"requestId":"r-1","ip":"198.51.100.7","requestTime":"20/Nov/2026:12:00:00 +0000","requestTimeEpoch":1795176000123,"httpMethod":"POST","resourcePath":"/cart/{id}","path":"/prod/cart/7?x=1","status":201,"responseLatency":42,"integrationLatency":38.5,"integrationStatus":"200","error.message":"-","error.responseType":"-","xrayTraceId":"Root=1-5e1b4151-5ac6c58f5b0dfa6d1e2a3b4c","domainName":"api.example.com","stage":"prod","apiId":"a1b2c3","protocol":"HTTP/1.1","responseLength":"512"}"#,
        "2026-11-20T12:00:00.123Z apigateway shop api.example.com POST \"/prod/cart/7\" 201 latency=42 upstream=38.5 \
         id=r-1 trace=Root=1-5e1b4151-5ac6c58f5b0dfa6d1e2a3b4c bytes=512 route=/cart/{id} upstream_status=200 outcome=success",
    );
}

#[test]
fn both_spellings_of_dotted_keys() {
    let flat = one(r#""status":200,"integration.latency":"12","integration.status":503"#);
    let nested = one(r#""status":200,"integration":{"latency":12,"status":"503","error":"x"}"#);
    let camel = one(r#""status":200,"integrationLatency":12,"integrationStatus":503"#);
    assert_eq!(flat, camel);
    assert_eq!(nested, camel);
    assert!(camel.as_ref().unwrap().contains("upstream=12 upstream_status=503"), "{camel:?}");

    // A missing camel-case value falls back to the dotted one.
    assert_eq!(
        one(r#""status":200,"integrationLatency":"-","integration.latency":7"#),
        one(r#""status":200,"integrationLatency":7"#)
    );
    // The error type, flat or nested.
    assert_eq!(
        outcome_of(r#""status":429,"error":{"message":"Too Many Requests","responseType":"THROTTLED"}"#),
        "throttled"
    );
    assert!(
        one(r#""status":504,"error":{"responseType":"INTEGRATION_TIMEOUT"}"#)
            .unwrap()
            .contains("error=INTEGRATION_TIMEOUT")
    );
    // `integration`/`error` holding something else than an object are ignored.
    assert_eq!(outcome_of(r#""status":200,"integration":"-","error":null"#), "success");
}

#[test]
fn epoch_seconds_and_milliseconds() {
    let at = |epoch: &str| {
        let line = format!(r#"{{"requestTimeEpoch":{epoch},"status":200}}"#);
        let mut got = None;
        ApiGatewayDecoder::new(SVC)
            .decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| got = Some(e.ts_ms))
            .map_err(|r| r.reason)
            .map(|()| got.expect("event"))
    };
    assert_eq!(at("1795176000"), Ok(1_795_176_000_000)); // HTTP API: seconds
    assert_eq!(at("\"1795176000\""), Ok(1_795_176_000_000));
    assert_eq!(at("1795176000123"), Ok(1_795_176_000_123)); // REST: milliseconds
    assert_eq!(at("\"1795176000123\""), Ok(1_795_176_000_123));
    assert_eq!(at("1795176000.5"), Ok(1_795_176_000_500));
    assert_eq!(at("99999999999"), Ok(99_999_999_999_000)); // just below 1e11: seconds
    assert_eq!(at("100000000000"), Ok(100_000_000_000)); // 1e11: milliseconds
    for bad in ["-1", "\"abc\"", "\"1e9\"", "true", "{}", "[1]", "1e300", "\"\u{661}\""] {
        assert_eq!(at(bad), Err(RejectReason::BadTimestamp), "{bad}");
    }
    // `-` means missing: the CLF time is used instead, or the line is rejected.
    let line = r#"{"requestTimeEpoch":"-","requestTime":"20/Nov/2026:12:00:00 +0000","status":200}"#;
    check(line, "2026-11-20T12:00:00Z apigateway shop   \"\" 200 outcome=success");
    check(r#"{"requestTimeEpoch":"-","status":200}"#, "reject missing_field");
}

#[test]
fn clf_times_with_offsets() {
    let cases = [
        ("20/Nov/2026:12:00:00 +0000", Some("2026-11-20T12:00:00Z")),
        ("20/Nov/2026:17:30:00 +0530", Some("2026-11-20T12:00:00Z")),
        ("20/Nov/2026:02:00:00 -1000", Some("2026-11-20T12:00:00Z")),
        ("01/Jan/2027:00:15:00 +0100", Some("2026-12-31T23:15:00Z")),
        ("29/Feb/2028:23:59:59 +0000", Some("2028-02-29T23:59:59Z")),
        ("29/Feb/2027:00:00:00 +0000", None),
        ("31/Apr/2026:00:00:00 +0000", None),
        ("20/nov/2026:12:00:00 +0000", None),
        ("20/Nov/2026:24:00:00 +0000", None),
        ("20/Nov/2026:12:00:00 +2400", None),
        ("20/Nov/2026:12:00:00 0000", None),
        ("20/Nov/2026:12:00:00", None),
        ("2026-11-20T12:00:00Z", None),
        ("01/Jan/1970:00:00:00 +0100", None),
    ];
    for (time, want) in cases {
        let got = clf_time_ms(time.as_bytes()).map(|ms| jiff::Timestamp::from_millisecond(ms).unwrap().to_string());
        assert_eq!(got.as_deref(), want, "{time}");
    }
    check(r#"{"requestTime":"20/Nov/2026:12:00:00 +0000 ","status":200}"#, "reject bad_timestamp");
    check(r#"{"requestTime":1795176000,"status":200}"#, "reject bad_timestamp");
}

#[test]
fn route_keys() {
    check(
        r#"{"requestTimeEpoch":1795176000,"status":200,"routeKey":"GET /cart/{id}","path":"/cart/7"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"GET /cart/{id}","httpMethod":"HEAD"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"$default","httpMethod":"PUT","path":"/anything"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"$default"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"ANY /{proxy+}","path":"/a/b"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"ANY /{proxy+}","httpMethod":"DELETE"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"-","resourcePath":"/orders/{id}","httpMethod":"GET"}
{"requestTimeEpoch":1795176000,"status":200,"routeKey":"GET /a","resourcePath":"/b"}"#,
        r#"
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/7" 200 route=/cart/{id} outcome=success
        2026-11-20T12:00:00Z apigateway shop  HEAD "/cart/{id}" 200 route=/cart/{id} outcome=success
        2026-11-20T12:00:00Z apigateway shop  PUT "/anything" 200 route=$default outcome=success
        2026-11-20T12:00:00Z apigateway shop   "" 200 route=$default outcome=success
        2026-11-20T12:00:00Z apigateway shop   "/a/b" 200 route=/{proxy+} outcome=success
        2026-11-20T12:00:00Z apigateway shop  DELETE "/{proxy+}" 200 route=/{proxy+} outcome=success
        2026-11-20T12:00:00Z apigateway shop  GET "/orders/{id}" 200 route=/orders/{id} outcome=success
        2026-11-20T12:00:00Z apigateway shop  GET "/a" 200 route=/a outcome=success
        "#,
    );
}

#[test]
fn outcomes() {
    let cases = [
        (r#""status":429"#, "throttled"),
        (r#""status":"429","error.responseType":"-""#, "throttled"),
        (r#""status":429,"error.responseType":"THROTTLED""#, "throttled"),
        (r#""status":429,"error.responseType":"QUOTA_EXCEEDED""#, "throttled"),
        // The response type wins over the status, whatever the gateway response maps it to.
        (r#""status":400,"error.responseType":"THROTTLED""#, "throttled"),
        (r#""status":502,"integrationStatus":429"#, "throttled"),
        (r#""status":504,"error.responseType":"INTEGRATION_TIMEOUT""#, "timeout"),
        (r#""status":504,"integrationLatency":29001"#, "timeout"),
        (r#""status":504,"integration.latency":"30000""#, "timeout"),
        (r#""status":504,"integrationLatency":1200"#, "unknown"),
        (r#""status":504"#, "unknown"),
        (r#""status":502,"error.responseType":"INTEGRATION_FAILURE""#, "integration_error"),
        (r#""status":500,"error.responseType":"INTEGRATION_ERROR""#, "integration_error"),
        (r#""status":502"#, "integration_error"),
        (r#""status":500,"integrationStatus":500"#, "integration_error"),
        (r#""status":200,"integrationStatus":503"#, "integration_error"),
        (r#""status":500,"integrationStatus":200"#, "unknown"),
        (r#""status":500"#, "unknown"),
        (r#""status":403,"error.responseType":"ACCESS_DENIED""#, "unknown"),
        (r#""status":404"#, "unknown"),
        (r#""status":0"#, "unknown"),
        (r#""status":200"#, "success"),
        (r#""status":304"#, "success"),
        (r#""status":101"#, "success"),
        (r#""status":200,"error.responseType":"throttled""#, "throttled"),
    ];
    for (fields, want) in cases {
        assert_eq!(outcome_of(fields), want, "{fields}");
    }
}

#[test]
fn dashes_and_empty_strings_are_missing() {
    check(
        r#"{"requestId":"-","requestTimeEpoch":1795176000,"httpMethod":"-","routeKey":"-","resourcePath":"","path":"-","status":"200","responseLatency":"-","integrationLatency":"-","integrationStatus":"-","error.responseType":"-","xrayTraceId":"-","domainName":"-","responseLength":"-"}
{"requestTimeEpoch":1795176000,"status":"-"}
{"requestTimeEpoch":1795176000,"status":null}
{"requestTimeEpoch":null,"status":200}"#,
        r#"
        2026-11-20T12:00:00Z apigateway shop   "" 200 outcome=success
        reject missing_field
        reject missing_field
        reject missing_field
        "#,
    );
}

#[test]
fn bad_values_reject_with_the_field_reason() {
    let cases = [
        (r#""status":"OK""#, RejectReason::BadStatus),
        (r#""status":1000"#, RejectReason::BadStatus),
        (r#""status":-1"#, RejectReason::BadStatus),
        (r#""status":200.0"#, RejectReason::BadStatus),
        (r#""status":[200]"#, RejectReason::BadStatus),
        (r#""status":200,"integrationStatus":"x""#, RejectReason::BadStatus),
        (r#""status":200,"responseLatency":-3"#, RejectReason::BadNumber),
        (r#""status":200,"responseLatency":"3ms""#, RejectReason::BadNumber),
        (r#""status":200,"responseLatency":"NaN""#, RejectReason::BadNumber),
        (r#""status":200,"integrationLatency":true"#, RejectReason::BadNumber),
        (r#""status":200,"integration":{"latency":"x"}"#, RejectReason::BadNumber),
        (r#""status":200,"responseLength":"big""#, RejectReason::BadNumber),
        (r#""status":200,"path":7"#, RejectReason::BadField),
        (r#""status":200,"httpMethod":{}"#, RejectReason::BadField),
        (r#""status":200,"routeKey":["GET /"]"#, RejectReason::BadField),
        (r#""status":200,"error":{"responseType":1}"#, RejectReason::BadField),
        (r#""status":200,"status":201"#, RejectReason::BadJson),
        (r#""status":200,"integration":{"latency":1,"latency":2}"#, RejectReason::BadJson),
    ];
    for (fields, want) in cases {
        assert_eq!(one(fields), Err(want), "{fields}");
    }
    check(
        "{\"status\":200\n[1]\n{\"requestTimeEpoch\":1,\"status\":200,}\n\"x\"\n{\"status\":200,\"requestTimeEpoch\":1795176000,\"path\":\"\\ud800\"}",
        "reject bad_json\nreject missing_field\nreject bad_json\nreject missing_field\nreject bad_json",
    );
}

#[test]
fn escaped_strings_are_unescaped() {
    check(
        r#"{"requestTimeEpoch":1795176000,"status":200,"path":"/caf\u00e9\/x","routeKey":"GET \/caf\u00e9"}"#,
        "2026-11-20T12:00:00Z apigateway shop  GET \"/café/x\" 200 route=/café outcome=success",
    );
}

/// The id the integration gave the request (for Lambda, the invocation's
/// `RequestId`), in every spelling, flat (fast path) or nested (serde).
#[test]
fn integration_request_ids() {
    let upstream = |fields: &str, wanted: Wanted| {
        let line = format!(r#"{{"requestTimeEpoch":1795176000000,"status":200,{fields}}}"#);
        let mut d = ApiGatewayDecoder::new(SVC);
        d.want(wanted);
        let mut got = None;
        d.decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| got = Some(e.upstream_request_id.to_string()))
            .unwrap_or_else(|r| panic!("{fields}: {r:?}"));
        got.expect("an event")
    };
    assert_eq!(upstream(r#""integration.requestId":"L-1""#, Wanted::ALL), "L-1");
    assert_eq!(upstream(r#""integrationRequestId":"L-2""#, Wanted::ALL), "L-2");
    assert_eq!(upstream(r#""integration":{"requestId":"L-3","latency":5}"#, Wanted::ALL), "L-3");
    assert_eq!(upstream(r#""awsEndpointRequestId":"L-4""#, Wanted::ALL), "L-4");
    // The integration's own id comes before the endpoint's.
    assert_eq!(upstream(r#""awsEndpointRequestId":"E","integration.requestId":"L-5""#, Wanted::ALL), "L-5");
    assert_eq!(upstream(r#""integration.requestId":"-""#, Wanted::ALL), "");
    assert_eq!(upstream(r#""integration.requestId":"L-1""#, Wanted::NONE), "");
}

#[test]
fn optional_fields_only_when_wanted() {
    let line = r#"{"requestTimeEpoch":1795176000,"status":200,"requestId":"r","xrayTraceId":"t","responseLength":9}
9.9.9.9 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 9 r
9.9.9.9,-,-,20/Nov/2026:12:00:00 +0000,GET,/a,HTTP/1.1,200,9,r"#;
    let mut d = ApiGatewayDecoder::new(SVC);
    d.want(Wanted::NONE);
    assert_eq!(
        run(&mut d, line.as_bytes()),
        "2026-11-20T12:00:00Z apigateway shop   \"\" 200 outcome=success\n\
         2026-11-20T12:00:00Z apigateway shop  GET \"/a\" 200 route=/a outcome=success\n\
         2026-11-20T12:00:00Z apigateway shop  GET \"/a\" 200 route=/a outcome=success\n"
    );
    d.want(Wanted::ALL);
    assert_eq!(
        run(&mut d, line.as_bytes()),
        "2026-11-20T12:00:00Z apigateway shop   \"\" 200 id=r trace=t bytes=9 outcome=success\n\
         2026-11-20T12:00:00Z apigateway shop  GET \"/a\" 200 id=r bytes=9 route=/a outcome=success\n\
         2026-11-20T12:00:00Z apigateway shop  GET \"/a\" 200 id=r bytes=9 route=/a outcome=success\n"
    );
}

#[test]
fn clf_preset() {
    check(
        r#"198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET /cart/{id} HTTP/1.1" 200 512 c6af9ac6-7b61-11e6-9a41-93e8deadbeef
198.51.100.7 arn:aws:iam::123456789012:user/alice AIDACKCEVSQ6C2EXAMPLE [20/Nov/2026:17:30:00 +0530] "POST /orders HTTP/1.1" 429 44 r-2
2001:db8::1 - - [20/Nov/2026:12:00:00 +0000] "GET GET /cart/{id} HTTP/1.1" 502 - Vb4lshC5oAMEM1g=
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET $default HTTP/2.0" 200 0 r-4
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "DELETE ANY /{proxy+} HTTP/1.1" 204 0 -
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 r x extra
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" - 0 r
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" abc 0 r
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 -5 r
198.51.100.7 - - [32/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 r
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000 "GET /a HTTP/1.1" 200 0 r
198.51.100.7 - - [20/Nov/2026:12:00:00 +0000] "GET" 200 0 r"#,
        r#"
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/{id}" 200 id=c6af9ac6-7b61-11e6-9a41-93e8deadbeef bytes=512 route=/cart/{id} outcome=success
        2026-11-20T12:00:00Z apigateway shop  POST "/orders" 429 id=r-2 bytes=44 route=/orders outcome=throttled
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/{id}" 502 id=Vb4lshC5oAMEM1g= route=/cart/{id} outcome=integration_error
        2026-11-20T12:00:00Z apigateway shop  GET "" 200 id=r-4 route=$default outcome=success
        2026-11-20T12:00:00Z apigateway shop  DELETE "/{proxy+}" 204 route=/{proxy+} outcome=success
        reject bad_field
        reject missing_field
        reject bad_status
        reject bad_number
        reject bad_timestamp
        reject missing_field
        reject missing_field
        "#,
    );
}

/// The console's presets as documented today: REST at
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>,
/// HTTP APIs at
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html>.
/// Both end with `$context.extendedRequestId`; the REST CLF preset has no
/// space between `]` and `"`.
#[test]
fn current_console_presets() {
    check(
        r#"198.51.100.7 - - [20/Nov/2026:12:00:00 +0000]"GET /cart/{id} HTTP/1.1" 200 512 c6af9ac6 SBdYxHjvoAMEbXg=
203.0.113.5 - - [20/Nov/2026:12:00:01 +0000] "GET GET /cart/{id} HTTP/1.1" 200 512 Vb4lshC5oAMEM1g= Vb4lshC5oAMEM1g=
198.51.100.7,-,-,20/Nov/2026:12:00:02 +0000,POST,/orders,HTTP/1.1,429,44,c6af9ac7,SBdYxHjvoAMEbXh=
203.0.113.5,20/Nov/2026:12:00:03 +0000,POST,POST /orders,HTTP/1.1,502,36,Vb4lshC5oAMEM2g=,Vb4lshC5oAMEM2g=
{ "requestId":"c6af9ac8", "extendedRequestId":"SBdYxHjvoAMEbXi=","ip": "198.51.100.7", "caller":"-", "user":"-", "requestTime":"20/Nov/2026:12:00:04 +0000", "httpMethod":"GET", "resourcePath":"/cart/{id}", "status":"200", "protocol":"HTTP/1.1", "responseLength":"512" }
{ "requestId":"Vb4lshC5oAMEM3g=", "ip": "203.0.113.5", "requestTime":"20/Nov/2026:12:00:05 +0000", "httpMethod":"GET","routeKey":"GET /cart/{id}", "status":"200","protocol":"HTTP/1.1", "responseLength":"512", "extendedRequestId": "Vb4lshC5oAMEM3g=" }"#,
        r#"
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/{id}" 200 id=c6af9ac6 bytes=512 route=/cart/{id} outcome=success
        2026-11-20T12:00:01Z apigateway shop  GET "/cart/{id}" 200 id=Vb4lshC5oAMEM1g= bytes=512 route=/cart/{id} outcome=success
        2026-11-20T12:00:02Z apigateway shop  POST "/orders" 429 id=c6af9ac7 bytes=44 route=/orders outcome=throttled
        2026-11-20T12:00:03Z apigateway shop  POST "/orders" 502 id=Vb4lshC5oAMEM2g= bytes=36 route=/orders outcome=integration_error
        2026-11-20T12:00:04Z apigateway shop  GET "/cart/{id}" 200 id=c6af9ac8 bytes=512 route=/cart/{id} outcome=success
        2026-11-20T12:00:05Z apigateway shop  GET "/cart/{id}" 200 id=Vb4lshC5oAMEM3g= bytes=512 route=/cart/{id} outcome=success
        "#,
    );
    // Each of them is recognised from a file's first line.
    for line in [
        r#"198.51.100.7 - - [20/Nov/2026:12:00:00 +0000]"GET /a HTTP/1.1" 200 0 r x"#,
        r#"203.0.113.5 - - [20/Nov/2026:12:00:00 +0000] "GET GET /a HTTP/1.1" 200 0 r x"#,
        "198.51.100.7,-,-,20/Nov/2026:12:00:00 +0000,GET,/a,HTTP/1.1,200,0,r,x",
        "203.0.113.5,20/Nov/2026:12:00:00 +0000,GET,GET /a,HTTP/1.1,200,0,r,x",
        r#"{ "requestId":"r", "ip": "198.51.100.7", "requestTime":"20/Nov/2026:12:00:00 +0000", "httpMethod":"GET", "resourcePath":"/a", "status":"200" }"#,
        r#"{ "requestId":"r", "requestTime":"20/Nov/2026:12:00:00 +0000", "routeKey":"GET /a", "status":"200" }"#,
    ] {
        assert_eq!(Format::detect(line.as_bytes()), Some(Format::ApiGateway), "{line}");
    }
}

#[test]
fn csv_preset() {
    check(
        r#"198.51.100.7,-,-,20/Nov/2026:12:00:00 +0000,GET,/cart/{id},HTTP/1.1,200,512,c6af9ac6
198.51.100.7,20/Nov/2026:13:00:00 +0100,GET,GET /cart/{id},HTTP/1.1,504,0,Vb4lshC5oAMEM1g=
198.51.100.7,20/Nov/2026:12:00:00 +0000,POST,$default,HTTP/1.1,429,0,r
198.51.100.7,-,-,20/Nov/2026:12:00:00 +0000,GET,/a,HTTP/1.1,200,512
198.51.100.7,-,-,20/Nov/2026:12:00:00 +0000,GET,/a,HTTP/1.1,200,512,r,x,y
198.51.100.7,-,-,-,GET,/a,HTTP/1.1,200,512,r
not a log line"#,
        r#"
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/{id}" 200 id=c6af9ac6 bytes=512 route=/cart/{id} outcome=success
        2026-11-20T12:00:00Z apigateway shop  GET "/cart/{id}" 504 id=Vb4lshC5oAMEM1g= route=/cart/{id} outcome=unknown
        2026-11-20T12:00:00Z apigateway shop  POST "" 429 id=r route=$default outcome=throttled
        reject missing_field
        reject bad_field
        reject missing_field
        reject missing_field
        "#,
    );
}

#[test]
fn carriage_returns_blank_lines_and_non_utf8() {
    check(
        "{\"requestTimeEpoch\":1795176000,\"status\":200}\r\n   \n9.9.9.9 - - [20/Nov/2026:12:00:00 +0000] \"GET /\u{e9} HTTP/1.1\" 200 0 r\r",
        "2026-11-20T12:00:00Z apigateway shop   \"\" 200 outcome=success\n\
         2026-11-20T12:00:00Z apigateway shop  GET \"/\u{e9}\" 200 id=r route=/\u{e9} outcome=success",
    );
    let mut d = ApiGatewayDecoder::new(SVC);
    let line = b"9.9.9.9 - - [20/Nov/2026:12:00:00 +0000] \"GET /\xff HTTP/1.1\" 200 0 r";
    assert_eq!(d.decode_line(line, &mut |_: &RequestEvent<'_>| {}), Err(RejectReason::BadEncoding.into()));
    let long = vec![b' '; MAX_LINE + 1];
    assert_eq!(d.decode_line(&long, &mut |_: &RequestEvent<'_>| {}), Err(RejectReason::TooLong.into()));
}

#[test]
fn detection() {
    let detect = |s: &str| Format::detect(s.as_bytes());
    let api = Some(Format::ApiGateway);
    assert_eq!(detect(r#"{"requestId":"r","requestTimeEpoch":1,"status":"200"}"#), api);
    assert_eq!(detect("\n{\"routeKey\":\"$default\",\"responseLatency\":3}\n"), api);
    assert_eq!(detect(r#"{"httpMethod":"GET","integrationLatency":3}"#), api);
    assert_eq!(detect(r#"{"resourcePath":"/","requestTimeEpoch":1}"#), api);
    // NDJSON stays NDJSON, even with request ids.
    assert_eq!(detect(r#"{"ts":1,"status":200,"request_id":"r"}"#), Some(Format::Ndjson));
    assert_eq!(detect(r#"{"ts":1,"requestId":"r","responseLatency":3}"#), Some(Format::Ndjson));
    assert_eq!(detect(r#"{"requestId":"r","status":200}"#), Some(Format::Ndjson));
    assert_eq!(detect(r#"9.9.9.9 - - [20/Nov/2026:12:00:00 +0000] "GET /a HTTP/1.1" 200 0 r"#), api);
    assert_eq!(detect("9.9.9.9,-,-,20/Nov/2026:12:00:00 +0000,GET,/a,HTTP/1.1,200,0,r\n"), api);
    assert_eq!(detect("9.9.9.9,20/Nov/2026:12:00:00 +0000,GET,GET /a,HTTP/1.1,200,0,r"), api);
    assert_eq!(detect(r#"9.9.9.9 - - [20/Nov/2026:12:00:00] "GET /a HTTP/1.1" 200 0 r"#), None);
    assert_eq!(detect("a,b,c"), None);
    assert_eq!(Format::parse("apigateway"), api);
    assert!(Format::NAMES.contains("apigateway"));
    assert!(Format::ApiGateway.decoder(SVC).is_some());
}

/// Where the flat scanner accepts a line, it reads what `serde_json` reads.
#[track_caller]
fn check_fast_path(line: &str) -> bool {
    let serde: Option<Record<'_>> = serde_json::from_str(line).ok();
    let mut fast = Record::default();
    if flat_record(line, &mut fast) {
        assert_eq!(Some(&fast), serde.as_ref(), "{line}");
        true
    } else {
        false
    }
}

#[test]
fn flat_scanner_agrees_with_serde() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apigateway/");
    for name in ["rest.json.log", "http.json.log"] {
        let input = std::fs::read_to_string(format!("{dir}{name}")).expect("fixture");
        let fast = input.lines().filter(|l| check_fast_path(l)).count();
        // Only the line with nested objects needs serde.
        assert!(fast + 1 >= input.lines().count(), "{name}: {fast} lines on the fast path");
    }
    let taken = [
        r#"{}"#,
        r#" { "status" : 200 , "path" : "/a" } "#,
        r#"{"status":5,"responseLatency":1.5e3,"integrationLatency":0,"path":null,"x":true,"y":false}"#,
        r#"{"integration":"-","error":null,"other":"x","other":"y"}"#,
        r#"{"status":"é€😀"}"#,
    ];
    for line in taken {
        assert!(check_fast_path(line), "{line}");
    }
    let left_to_serde = [
        r#"{"path":"/a\/b"}"#,
        r#"{"integration":{"latency":1}}"#,
        r#"{"x":[1]}"#,
        r#"{"status":1,"status":2}"#,
        r#"{"status":01}"#,
        r#"{"status":-5}"#,
        r#"{"status":1.}"#,
        r#"{"status":18446744073709551616}"#,
        r#"{"status":200,}"#,
        r#"{"status":200} x"#,
        "{\"path\":\"a\tb\"}",
        r#"{"status":nul}"#,
        r#"[1]"#,
    ];
    for line in left_to_serde {
        assert!(!check_fast_path(line), "{line}");
    }
}

proptest! {
    #[test]
    fn flat_scanner_agrees_with_serde_on_generated_objects(
        fields in proptest::collection::vec(
            (
                prop_oneof![
                    Just("status"), Just("path"), Just("requestTimeEpoch"), Just("integration.latency"),
                    Just("integration"), Just("error"), Just("other"), Just("ip"), Just("identity"),
                    Just("identity.userAgent"),
                ],
                prop_oneof![
                    "-?[0-9]{1,21}",
                    // Few enough digits that serde_json's float parsing is exact too
                    // (with more, it may differ from the correctly rounded result in the last bit).
                    "-?[0-9]{1,6}\\.[0-9]{1,3}([eE][+-]?[0-9])?",
                    // Out of f64's range: serde_json rejects these.
                    "[1-9][0-9]{0,2}[eE]\\+?[4-9][0-9]{2}",
                    "\"[a-z/{}\\- é\\\\\"]{0,8}\"",
                    Just("null".to_owned()), Just("true".to_owned()), Just("{}".to_owned()),
                ],
            ),
            0..6,
        ),
        ws in "[ \t]{0,2}",
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{v}{ws}")).collect();
        let _ = check_fast_path(&format!("{{{}}}", body.join(",")));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ApiGatewayDecoder::new(SVC).decode_line(&line, &mut |_: &RequestEvent<'_>| {});
        let _ = Format::detect(&line);
    }

    #[test]
    fn never_panics_on_plausible_lines(
        epoch in prop_oneof![Just("1795176000".to_owned()), "[0-9.\"-]{0,16}"],
        status in prop_oneof![Just("200".to_owned()), "[0-9\"-]{0,5}"],
        time in prop_oneof![Just("20/Nov/2026:12:00:00 +0000".to_owned()), "[0-9A-Za-z/: +-]{0,30}"],
        route in "[A-Z $/{}+a-z-]{0,20}",
        latency in "[0-9.\"e-]{0,10}",
    ) {
        let mut d = ApiGatewayDecoder::new(SVC);
        let mut sink = |_: &RequestEvent<'_>| {};
        let json = format!(r#"{{"requestTimeEpoch":{epoch},"requestTime":"{time}","status":{status},"routeKey":"{route}","integrationLatency":{latency}}}"#);
        let _ = d.decode_line(json.as_bytes(), &mut sink);
        let clf = format!(r#"1.2.3.4 - - [{time}] "GET {route} HTTP/1.1" {status} {latency} {epoch}"#);
        let _ = d.decode_line(clf.as_bytes(), &mut sink);
        let csv = format!("1.2.3.4,{time},GET,{route},HTTP/1.1,{status},{latency},{epoch}");
        let _ = d.decode_line(csv.as_bytes(), &mut sink);
    }
}

#[track_caller]
fn check_requesters(wanted: Wanted, input: &str, expected: &str) {
    let got = crate::decode::render_requesters(&mut ApiGatewayDecoder::new(SVC), wanted, input.as_bytes());
    assert_eq!(got, crate::decode::expected_lines(expected), "\ninput:\n{input}");
}

#[test]
fn requester_from_json_keys() {
    let input = r#"{"requestTimeEpoch":1795176000,"status":200,"ip":"198.51.100.1"}
{"requestTimeEpoch":1795176000,"status":200,"sourceIp":"198.51.100.2","userAgent":"curl/8.5.0","ip":"198.51.100.9"}
{"requestTimeEpoch":1795176000,"status":200,"identity.sourceIp":"2001:db8::3","identity.userAgent":"Mozilla/5.0 (X11; Linux x86_64)"}
{"requestTimeEpoch":1795176000,"status":200,"identitySourceIp":"198.51.100.4","identityUserAgent":"okhttp/4.12.0"}
{"requestTimeEpoch":1795176000,"status":200,"identity":{"sourceIp":"198.51.100.5","userAgent":"Go-http-client/2.0"}}
{"requestTimeEpoch":1795176000,"status":200,"sourceIp":"-","ip":"198.51.100.6","userAgent":"-"}
{"requestTimeEpoch":1795176000,"status":200,"userAgent":"agent \"quoted\""}
{"requestTimeEpoch":1795176000,"status":200}"#;
    check_requesters(
        Wanted { requester: true, ..Wanted::NONE },
        input,
        r#"
addr="198.51.100.1" ua="" asn=None
addr="198.51.100.2" ua="curl/8.5.0" asn=None
addr="2001:db8::3" ua="Mozilla/5.0 (X11; Linux x86_64)" asn=None
addr="198.51.100.4" ua="okhttp/4.12.0" asn=None
addr="198.51.100.5" ua="Go-http-client/2.0" asn=None
addr="198.51.100.6" ua="" asn=None
addr="" ua="agent \"quoted\"" asn=None
addr="" ua="" asn=None
"#,
    );
    check_requesters(Wanted { requester: false, ..Wanted::ALL }, input, &"addr=\"\" ua=\"\" asn=None\n".repeat(8));
}

#[test]
fn requester_of_the_wrong_type_is_left_out_and_the_line_kept() {
    let input = r#"{"requestTimeEpoch":1795176000,"status":200,"sourceIp":1}
{"requestTimeEpoch":1795176000,"status":200,"identity":{"userAgent":false}}"#;
    check_requesters(Wanted::ALL, input, &"addr=\"\" ua=\"\" asn=None\n".repeat(2));
    check_requesters(Wanted::NONE, input, &"addr=\"\" ua=\"\" asn=None\n".repeat(2));
}

#[test]
fn requester_from_clf_and_csv_presets() {
    let input = r#"198.51.100.7 - - [20/Nov/2026:12:00:00 +0000]"GET /cart/{id} HTTP/1.1" 200 512 c6af9ac6 SBdYxH=
2001:db8::1 - - [20/Nov/2026:12:00:00 +0000] "GET GET /cart/{id} HTTP/1.1" 502 - Vb4lshC5oAMEM1g= Vb4lshC5oAMEM1g=
198.51.100.8,-,-,20/Nov/2026:12:00:00 +0000,GET,/cart/{id},HTTP/1.1,200,512,c6af9ac6,SBdYxH=
198.51.100.9,20/Nov/2026:12:00:00 +0000,GET,GET /cart/{id},HTTP/1.1,200,512,Vb4lsh=,Vb4lsh=
-,20/Nov/2026:12:00:00 +0000,GET,GET /cart/{id},HTTP/1.1,200,512,Vb4lsh="#;
    check_requesters(
        Wanted { requester: true, ..Wanted::NONE },
        input,
        r#"
addr="198.51.100.7" ua="" asn=None
addr="2001:db8::1" ua="" asn=None
addr="198.51.100.8" ua="" asn=None
addr="198.51.100.9" ua="" asn=None
addr="" ua="" asn=None
"#,
    );
    check_requesters(Wanted::NONE, input, &"addr=\"\" ua=\"\" asn=None\n".repeat(5));
}

#[test]
fn flat_scanner_agrees_with_serde_on_requester_keys() {
    for line in [
        r#"{"ip":"a","sourceIp":"b","identitySourceIp":"c","identity.sourceIp":"d","userAgent":"e","identityUserAgent":"f","identity.userAgent":"g"}"#,
        r#"{"identity":"-","status":200}"#,
        r#"{"identity":null}"#,
    ] {
        assert!(check_fast_path(line), "{line}");
    }
    for line in [r#"{"identity":{"sourceIp":"a"}}"#, r#"{"ip":"a","ip":"b"}"#, r#"{"identity":1,"identity":2}"#] {
        assert!(!check_fast_path(line), "{line}");
    }
}

const TAIL_STREAM: &str = "c0ffee12d3a44b5f8e9a0b1c2d3e4f50";
const SAVED_JSON: &str = r#"{"requestId":"r-1","requestTimeEpoch":1795248000123,"httpMethod":"GET","resourcePath":"/orders/{id}","path":"/prod/orders/17","status":"200","responseLatency":"48"}"#;
const SAVED_EVENT: &str = r#"2026-11-21T08:00:00.123Z apigateway shop  GET "/prod/orders/17" 200 latency=48 id=r-1 route=/orders/{id} outcome=success"#;

#[test]
fn json_lines_saved_with_aws_logs_tail_or_awslogs() {
    let prefixes = [
        format!("2026-11-21T08:00:00.130000+00:00 {TAIL_STREAM} "),
        format!("2026-11-21T08:00:00.130000+00:00\t{TAIL_STREAM}\t"),
        format!("2026-11-21T08:00:00+00:00  \t{TAIL_STREAM} "),
        "2026-11-21T08:00:00 ".to_owned(),
        "2026-11-21T08:00:00\t".to_owned(),
        format!("/aws/apigateway/shop-prod {TAIL_STREAM} "),
        format!("API-Gateway-Access-Logs_a1b2c3d4e5/prod\t{TAIL_STREAM}\t"),
        format!("/aws/apigateway/shop-prod {TAIL_STREAM} 2026-11-21T08:00:00.130Z "),
        format!("{TAIL_STREAM}\t"),
        "   2026-11-21T08:00:00 ".to_owned(),
    ];
    let input: String = prefixes.iter().map(|p| format!("{p}{SAVED_JSON}\n")).collect();
    let expected: String = prefixes.iter().map(|_| format!("{SAVED_EVENT}\n")).collect();
    check(&input, &expected);
}

#[test]
fn clf_and_csv_lines_saved_with_aws_logs_tail_or_awslogs() {
    let rest_clf =
        r#"198.51.100.7 - - [21/Nov/2026:08:00:06 +0000]"GET /orders/{id} HTTP/1.1" 200 512 r-6 SBdYxHk3oAMEaBc="#;
    let http_clf =
        r#"2001:db8::7 - - [21/Nov/2026:08:00:07 +0000] "PUT PUT /orders/{id} HTTP/1.1" 204 0 Vb4lsh2 Vb4lsh2"#;
    let rest_csv = "198.51.100.7,-,-,21/Nov/2026:08:00:08 +0000,GET,/orders/{id},HTTP/1.1,404,23,r-8,SBdYxHk4";
    let http_csv = "203.0.113.9,21/Nov/2026:08:00:09 +0000,GET,GET /orders/{id},HTTP/1.1,200,61,Vb4lsh3,Vb4lsh3";
    let mut decoder = ApiGatewayDecoder::new(SVC);
    let mut seen = Vec::new();
    for prefix in [
        format!("2026-11-21T08:00:06.000000+00:00 {TAIL_STREAM} "),
        format!("2026-11-21T08:00:06.000000+00:00\t{TAIL_STREAM}\t"),
        "2026-11-21T08:00:06 ".to_owned(),
        format!("/aws/apigateway/shop-http {TAIL_STREAM} "),
        format!("/aws/apigateway/shop-http\t{TAIL_STREAM}\t2026-11-21T08:00:06.000Z\t"),
        String::new(),
    ] {
        for body in [rest_clf, http_clf, rest_csv, http_csv] {
            let line = format!("{prefix}{body}");
            decoder
                .decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| {
                    seen.push((e.ts_ms, e.status, e.client_addr.to_owned(), e.route.to_owned()));
                })
                .unwrap_or_else(|r| panic!("{line}: {}", r.reason));
        }
    }
    let want = [
        (1_795_248_006_000, 200, "198.51.100.7", "/orders/{id}"),
        (1_795_248_007_000, 204, "2001:db8::7", "/orders/{id}"),
        (1_795_248_008_000, 404, "198.51.100.7", "/orders/{id}"),
        (1_795_248_009_000, 200, "203.0.113.9", "/orders/{id}"),
    ];
    assert_eq!(seen.len(), 6 * want.len());
    for (got, want) in seen.iter().zip(want.iter().cycle()) {
        assert_eq!((got.0, got.1, got.2.as_str(), got.3.as_str()), *want);
    }
}

#[test]
fn prefixes_of_other_tools_are_still_rejected() {
    check(
        &format!(
            "2026-11-21 08:00:11 UTC {TAIL_STREAM} {SAVED_JSON}\nstream: {SAVED_JSON}\na b c d e {SAVED_JSON}\n{TAIL_STREAM} not a record"
        ),
        "reject missing_field\nreject missing_field\nreject missing_field\nreject missing_field",
    );
}

#[test]
fn saved_lines_are_detected_as_api_gateway() {
    for line in [
        format!("2026-11-21T08:00:00.130000+00:00 {TAIL_STREAM} {SAVED_JSON}"),
        format!("/aws/apigateway/shop-prod\t{TAIL_STREAM}\t{SAVED_JSON}"),
        format!(
            "/aws/apigateway/shop-http {TAIL_STREAM} 203.0.113.9 - - [21/Nov/2026:08:00:07 +0000] \"GET GET /orders/{{id}} HTTP/1.1\" 200 5 Vb4 Vb4"
        ),
        "2026-11-21T08:00:06 203.0.113.9,21/Nov/2026:08:00:09 +0000,GET,GET /orders/{id},HTTP/1.1,200,61,Vb4,Vb4"
            .to_owned(),
    ] {
        assert_eq!(Format::detect(line.as_bytes()), Some(Format::ApiGateway), "{line}");
    }
}

/// The outcome of one line with a fresh decoder, rendered with the requester.
fn outcome_with_requester(line: &str) -> String {
    let mut got = String::new();
    match ApiGatewayDecoder::new(SVC).decode_line(line.as_bytes(), &mut |e: &RequestEvent<'_>| {
        got = format!("{} client={}", render(e), e.client_addr)
    }) {
        Ok(()) => got,
        Err(r) => format!("reject {}", r.reason),
    }
}

proptest! {
    #[test]
    fn a_saved_prefix_changes_nothing_a_record_says(
        record in prop_oneof![
            Just(SAVED_JSON.to_owned()),
            "(198\\.51\\.100\\.[0-9]|-) - - \\[2[0-9]/Nov/2026:08:00:0[0-9] \\+0000\\] ?\"(GET|PUT) /[a-z{}]{0,6} HTTP/1\\.1\" [1-5][0-9]{2} [0-9]{1,4} [a-z0-9-]{1,8}( [A-Za-z0-9=]{1,8})?",
            "(203\\.0\\.113\\.[0-9]|-),2[0-9]/Nov/2026:08:00:0[0-9] \\+0000,(GET|POST),(GET|ANY) /[a-z{}]{0,6},HTTP/1\\.1,[1-5][0-9]{2},[0-9]{1,4},[a-zA-Z0-9=]{1,8}",
            // Not records: they must stay rejects.
            "[a-z ,\\[\\]{}\"]{0,40}",
        ],
        prefix in prop_oneof![
            "2026-11-21T08:00:0[0-9]\\.[0-9]{6}\\+00:00[ \t]{1,3}[0-9a-f]{32}[ \t]{1,3}",
            "2026-11-21T08:00:0[0-9][ \t]{1,2}",
            "/aws/apigateway/[a-z-]{1,10}[ \t]{1,2}[0-9a-f]{32}[ \t]{1,2}(2026-11-21T08:00:0[0-9]\\.[0-9]{3}Z[ \t])?",
        ],
    ) {
        // A blank message is no record (and CloudWatch Logs stores none).
        prop_assume!(!record.trim().is_empty());
        let plain = outcome_with_requester(&record);
        let saved = outcome_with_requester(&format!("{prefix}{record}"));
        if plain.starts_with("reject") {
            prop_assert!(saved.starts_with("reject"), "{prefix}{record}: {saved}");
        } else {
            prop_assert_eq!(saved, plain);
        }
    }
}
