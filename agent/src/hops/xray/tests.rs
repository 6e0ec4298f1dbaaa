use serde_json::json;

use super::*;

const TRACE: &str = "1-6751a0c0-a006649127e371903a2de979";
/// 2024-12-05T12:50:40Z in X-Ray's floating seconds.
const T: f64 = 1_733_403_040.0;

/// A REST API stage calling a function, as BatchGetTraces returns it: the
/// stage segment with its `Lambda` call subsegment, the Lambda service
/// segment (child of the call), the function segment (child of the service
/// segment) with Initialization / Invocation / Overhead. Times in ms after `T`.
fn trace(cold: bool) -> Vec<String> {
    let s = |ms: f64| T + ms / 1000.0;
    let stage = json!({
        "id": "a1b2c3d4a1b2c3d4", "name": "shop-api/prod", "trace_id": TRACE,
        "start_time": s(0.0), "end_time": s(250.0),
        "origin": "AWS::ApiGateway::Stage",
        "resource_arn": "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/prod",
        "http": {
            "request": {"url": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/cart/42%20x?sku=A1", "method": "POST", "client_ip": "192.0.2.7"},
            "response": {"status": 201, "content_length": 0}
        },
        "aws": {"api_gateway": {"account_id": "123456789012", "rest_api_id": "abc123", "stage": "prod", "request_id": "gw-req-1"}},
        "subsegments": [{
            "id": "c0ffee00c0ffee00", "name": "Lambda", "start_time": s(10.0), "end_time": s(240.0), "namespace": "aws",
            "http": {"response": {"status": 200}},
            "aws": {"function_name": "checkout", "region": "eu-west-1", "operation": "Invoke", "resource_names": ["checkout"]}
        }]
    });
    let lambda = json!({
        "id": "1a2b3c4d5e6f7a8b", "name": "checkout", "trace_id": TRACE, "parent_id": "c0ffee00c0ffee00",
        "start_time": s(15.0), "end_time": s(235.0), "origin": "AWS::Lambda",
        "http": {"response": {"status": 200}},
        "aws": {"request_id": "lambda-req-1"},
        "resource_arn": "arn:aws:lambda:eu-west-1:123456789012:function:checkout"
    });
    let mut subs = vec![
        json!({"id": "0000000000000002", "name": "Invocation", "start_time": s(if cold { 140.0 } else { 20.0 }), "end_time": s(220.0)}),
        json!({"id": "0000000000000003", "name": "Overhead", "start_time": s(220.0), "end_time": s(225.0)}),
    ];
    if cold {
        subs.insert(
            0,
            json!({"id": "0000000000000001", "name": "Initialization", "start_time": s(20.0), "end_time": s(140.0)}),
        );
    }
    let function = json!({
        "id": "9f8e7d6c5b4a3f2e", "name": "checkout", "trace_id": TRACE, "parent_id": "1a2b3c4d5e6f7a8b",
        "start_time": s(20.0), "end_time": s(225.0), "origin": "AWS::Lambda::Function",
        "aws": {"account_id": "123456789012", "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:checkout"},
        "subsegments": subs
    });
    // BatchGetTraces gives no order guarantee.
    vec![function.to_string(), stage.to_string(), lambda.to_string()]
}

fn run(docs: &[String]) -> Result<TracedRequest, TraceError> {
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    decompose(TRACE, &refs)
}

#[test]
fn a_cold_request_splits_into_gateway_lambda_service_and_function() {
    let t = run(&trace(true)).unwrap();
    let want = TracedRequest {
        trace_id: TRACE.into(),
        start_ms: 1_733_403_040_000,
        api: "shop-api/prod".into(),
        stage: "prod".into(),
        method: "POST".into(),
        host: "abc123.execute-api.eu-west-1.amazonaws.com".into(),
        path: "/cart/42 x".into(),
        status: 201,
        request_id: "gw-req-1".into(),
        lambda_request_id: "lambda-req-1".into(),
        function: "checkout".into(),
        response_ms: Some(250.0),
        integration_ms: Some(230.0),
        gateway_ms: Some(20.0),
        lambda_ms: Some(220.0),
        lambda_overhead_ms: Some(15.0),
        function_ms: Some(205.0),
        init_ms: Some(120.0),
        invocation_ms: Some(80.0),
        function_overhead_ms: Some(5.0),
        cold: true,
    };
    assert_eq!(t, want);
}

#[test]
fn a_warm_request_has_no_init() {
    let t = run(&trace(false)).unwrap();
    assert!(!t.cold);
    assert_eq!(t.init_ms, None);
    assert_eq!(t.invocation_ms, Some(200.0));
    assert_eq!(t.gateway_ms, Some(20.0));
}

#[test]
fn newer_subsegment_names_and_a_missing_service_segment() {
    let docs: Vec<String> = trace(true)
        .into_iter()
        .filter(|d| !d.contains("\"AWS::Lambda\""))
        .map(|d| d.replace("\"Initialization\"", "\"Init\"").replace("\"Invocation\"", "\"Invoke\""))
        .collect();
    let t = run(&docs).unwrap();
    assert_eq!((t.init_ms, t.invocation_ms, t.cold), (Some(120.0), Some(80.0), true));
    // Without the service segment: the gateway's call − the function segment.
    assert_eq!(t.lambda_ms, None);
    assert_eq!(t.lambda_overhead_ms, Some(25.0));
    assert_eq!(t.lambda_request_id, "");
}

#[test]
fn a_function_without_a_gateway() {
    let docs: Vec<String> = trace(false).into_iter().filter(|d| !d.contains("ApiGateway")).collect();
    let t = run(&docs).unwrap();
    assert_eq!(t.gateway_ms, None);
    assert_eq!(t.status, 200);
    assert_eq!(t.start_ms, 1_733_403_040_015);
    assert_eq!(t.lambda_overhead_ms, Some(15.0));
    assert_eq!(t.function, "checkout");
}

#[test]
fn a_probe_trace_roots_at_the_stage_whose_parent_is_outside() {
    // The probe's header named a parent of its own; a second stage segment
    // (the function calling another API) is a child within the trace.
    let mut docs = trace(false);
    docs[1] = docs[1].replace("\"origin\"", "\"parent_id\":\"53995c3f42cd8ad8\",\"origin\"");
    let inner = json!({
        "id": "eeeeeeeeeeeeeeee", "name": "other-api/prod", "trace_id": TRACE, "parent_id": "0000000000000002",
        "start_time": T - 1.0, "end_time": T + 0.01, "origin": "AWS::ApiGateway::Stage",
        "http": {"request": {"url": "https://x/prod/other", "method": "GET"}}
    });
    docs.push(inner.to_string());
    let t = run(&docs).unwrap();
    assert_eq!(t.api, "shop-api/prod");
    assert_eq!(t.gateway_ms, Some(20.0));
}

#[test]
fn in_progress_segments_give_no_durations_and_bad_documents_are_errors() {
    let docs: Vec<String> = trace(true)
        .into_iter()
        .map(|d| if d.contains("Stage") { d.replace("\"end_time\":1733403040.25", "\"in_progress\":true") } else { d })
        .collect();
    let t = run(&docs).unwrap();
    assert_eq!((t.response_ms, t.gateway_ms), (None, None));
    assert_eq!(t.integration_ms, Some(230.0));

    assert!(matches!(decompose(TRACE, &["{not json"]), Err(TraceError::NotASegment { .. })));
    assert!(matches!(decompose(TRACE, &["[1,2]"]), Err(TraceError::NotASegment { .. })));
    let other =
        json!({"id": "1", "name": "db", "start_time": T, "end_time": T + 1.0, "origin": "AWS::DynamoDB::Table"});
    assert_eq!(decompose(TRACE, &[&other.to_string()]), Err(TraceError::NothingToDecompose { trace_id: TRACE.into() }));
    let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    assert!(matches!(decompose(TRACE, &[&big]), Err(TraceError::TooLarge { .. })));
    // Odd values never panic.
    let odd = json!({"id": 5, "start_time": "x", "origin": "AWS::Lambda"});
    assert!(decompose(TRACE, &[&odd.to_string()]).is_err());
    let odd = json!({"id": "5", "start_time": 1e300, "end_time": -1e300, "origin": "AWS::Lambda",
        "http": {"response": {"status": 1e9}}});
    let t = decompose(TRACE, &[&odd.to_string()]).unwrap();
    assert_eq!((t.lambda_ms, t.status), (Some(0.0), 0));
}

#[test]
fn stage_prefixes_are_stripped_only_when_whole() {
    assert_eq!(strip_stage("/prod/cart", "prod"), "/cart");
    assert_eq!(strip_stage("/prod", "prod"), "/");
    assert_eq!(strip_stage("/production/cart", "prod"), "/production/cart");
    assert_eq!(strip_stage("/cart", ""), "/cart");
}

#[test]
fn trace_ids_from_headers() {
    let id = "1-5759e988-bd862e3fe1be46a994272793";
    assert_eq!(root_trace_id(&format!("Root={id};Parent=53995c3f42cd8ad8;Sampled=1")), Some(id));
    assert_eq!(root_trace_id(&format!("Self=1-67891234-12456789abcdef012345678;Root={id}")), Some(id));
    assert_eq!(root_trace_id(id), Some(id));
    assert_eq!(root_trace_id("Root=1-xyz"), None);
    assert_eq!(root_trace_id("Parent=53995c3f42cd8ad8"), None);
    assert_eq!(root_trace_id(""), None);
    assert_eq!(root_trace_id("1-5759e988-bd862e3fe1be46a99427279é"), None);
}

proptest::proptest! {
    /// Cut, spliced or garbled documents are decomposed or refused, never a panic.
    #[test]
    fn garbled_documents_never_panic(cut in 0usize..2000, byte in 0u8..128, at in 0usize..2000, which in 0usize..3) {
        let mut docs = trace(true);
        let d = &mut docs[which];
        let mut bytes = d.clone().into_bytes();
        let at = at.min(bytes.len().saturating_sub(1));
        bytes[at] = byte;
        *d = String::from_utf8_lossy(&bytes).into_owned();
        let cut = cut.min(d.len());
        d.truncate(d.floor_char_boundary(cut.max(at)));
        let _ = root_trace_id(d);
        let _ = run(&docs);
    }
}
