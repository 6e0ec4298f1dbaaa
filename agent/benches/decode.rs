//! Decoder throughput on synthetic but realistic lines: 33-field CloudFront
//! standard log records (~350 bytes, a mix of browsers, crawlers and tools,
//! some URL-encoded paths), NDJSON records, CloudFront standard logging v2
//! JSON records (23 fields), CloudFront real-time records (24 fields), Lambda
//! `REPORT` lines, API Gateway JSON access log records, and OTLP traces
//! requests (protobuf and JSON, 100 spans each).
//!
//! `cargo bench --bench decode -- --warm-up-time 1 --measurement-time 3`
//! reports lines per second (criterion's "elem/s"); for the `otlp_*` cases,
//! spans per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slo_agent::decode::Decoder;
use slo_agent::decode::apigateway::ApiGatewayDecoder;
use slo_agent::decode::cloudfront::{CANONICAL_FIELDS, CloudFrontStandardDecoder};
use slo_agent::decode::cloudfront_realtime::CloudFrontRealtimeDecoder;
use slo_agent::decode::cloudfront_v2::CloudFrontV2JsonDecoder;
use slo_agent::decode::lambda::LambdaDecoder;
use slo_agent::decode::ndjson::NdjsonDecoder;
use slo_agent::decode::otlp::{OtlpStats, decode_traces_json, decode_traces_protobuf};
use slo_agent::event::{RequestEvent, Wanted};

mod common;
use common::{
    LINES, OTLP_SPANS_PER_REQUEST, REALTIME_FIELDS, apigateway_json_lines, cloudfront_lines, cloudfront_realtime_lines,
    cloudfront_v2_json_lines, lambda_report_lines, ndjson_lines, otlp_requests,
};

fn run(decoder: &mut dyn Decoder, lines: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    let mut sink = |e: &RequestEvent<'_>| {
        sum += u64::from(e.status) + e.path.len() as u64 + e.client as u64;
    };
    for line in lines {
        let _ = decoder.decode_line(black_box(line), &mut sink);
    }
    sum
}

fn bench(c: &mut Criterion) {
    let cf = cloudfront_lines();
    let nd = ndjson_lines();
    let lr = lambda_report_lines();
    let api = apigateway_json_lines();
    let mut check = ApiGatewayDecoder::new("shop");
    let decoded = api.iter().filter(|l| check.decode_line(l, &mut |_: &RequestEvent<'_>| {}).is_ok()).count();
    assert_eq!(decoded, api.len(), "every generated API Gateway line decodes");
    let mean = |ls: &[Vec<u8>]| ls.iter().map(Vec::len).sum::<usize>() / ls.len();
    eprintln!(
        "cloudfront: {} lines, mean {} bytes; ndjson: {} lines, mean {} bytes; apigateway json: {} lines, mean {} bytes",
        cf.len(),
        mean(&cf),
        nd.len(),
        mean(&nd),
        api.len(),
        mean(&api)
    );
    eprintln!("lambda_report: {} lines, mean {} bytes", lr.len(), mean(&lr));

    let header = format!("#Fields: {}", CANONICAL_FIELDS.join(" "));
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("cloudfront_33_fields", |b| {
        let mut d = CloudFrontStandardDecoder::new("shop");
        d.decode_line(header.as_bytes(), &mut |_: &RequestEvent<'_>| {}).expect("header");
        b.iter(|| run(&mut d, &cf))
    });
    // Every other case wants every optional field; this one what the engine
    // wants when no SLO reads the requester, the protocol or the TLS version.
    g.bench_function("cloudfront_33_fields_without_requester", |b| {
        let mut d = CloudFrontStandardDecoder::new("shop");
        d.want(Wanted { requester: false, protocol: false, tls_version: false, ..Wanted::ALL });
        d.decode_line(header.as_bytes(), &mut |_: &RequestEvent<'_>| {}).expect("header");
        b.iter(|| run(&mut d, &cf))
    });
    g.bench_function("cloudfront_33_fields_no_header", |b| {
        let mut d = CloudFrontStandardDecoder::new("shop");
        b.iter(|| run(&mut d, &cf))
    });
    g.bench_function("ndjson", |b| {
        let mut d = NdjsonDecoder::new("shop");
        b.iter(|| run(&mut d, &nd))
    });
    let v2 = cloudfront_v2_json_lines();
    let rt = cloudfront_realtime_lines();
    eprintln!("cloudfront v2 json: mean {} bytes; cloudfront real-time: mean {} bytes", mean(&v2), mean(&rt));
    // A benchmark of rejects would measure nothing useful.
    let all_decode = |d: &mut dyn Decoder, lines: &[Vec<u8>]| {
        lines.iter().all(|l| d.decode_line(l, &mut |_: &RequestEvent<'_>| {}).is_ok())
    };
    assert!(all_decode(&mut CloudFrontV2JsonDecoder::new("shop"), &v2), "v2 bench lines decode");
    assert!(
        all_decode(&mut CloudFrontRealtimeDecoder::new("shop", &REALTIME_FIELDS).expect("fields"), &rt),
        "real-time bench lines decode"
    );
    g.bench_function("cloudfront_v2_json", |b| {
        let mut d = CloudFrontV2JsonDecoder::new("shop");
        b.iter(|| run(&mut d, &v2))
    });
    g.bench_function("cloudfront_realtime", |b| {
        let mut d = CloudFrontRealtimeDecoder::new("shop", &REALTIME_FIELDS).expect("real-time fields");
        b.iter(|| run(&mut d, &rt))
    });
    g.bench_function("lambda_report", |b| {
        let mut d = LambdaDecoder::new("checkout-fn");
        b.iter(|| run(&mut d, &lr))
    });
    g.bench_function("apigateway_json", |b| {
        let mut d = ApiGatewayDecoder::new("shop");
        b.iter(|| run(&mut d, &api))
    });
    let (otlp_json, otlp_protobuf) = otlp_requests();
    let spans = |decode: OtlpDecode, bodies: &[Vec<u8>]| -> u64 {
        bodies.iter().map(|b| decode(b, "shop", &mut |_: &RequestEvent<'_>| {}).expect("bench request").events).sum()
    };
    assert_eq!(spans(decode_traces_json, &otlp_json), spans(decode_traces_protobuf, &otlp_protobuf));
    eprintln!(
        "otlp: {} requests of {OTLP_SPANS_PER_REQUEST} spans ({} server spans in all); mean {} bytes in JSON, {} in protobuf",
        otlp_json.len(),
        spans(decode_traces_protobuf, &otlp_protobuf),
        mean(&otlp_json),
        mean(&otlp_protobuf)
    );
    // Throughput counts every span, server or not.
    g.bench_function("otlp_protobuf", |b| b.iter(|| run_otlp(decode_traces_protobuf, &otlp_protobuf)));
    g.bench_function("otlp_json", |b| b.iter(|| run_otlp(decode_traces_json, &otlp_json)));
    g.finish();
}

type OtlpDecode =
    fn(&[u8], &str, &mut dyn slo_agent::event::EventSink) -> Result<OtlpStats, slo_agent::decode::otlp::OtlpError>;

fn run_otlp(decode: OtlpDecode, bodies: &[Vec<u8>]) -> u64 {
    let mut sum = 0u64;
    let mut sink = |e: &RequestEvent<'_>| {
        sum += u64::from(e.status) + e.path.len() as u64 + e.trace_id.len() as u64;
    };
    for body in bodies {
        let _ = decode(black_box(body), "shop", &mut sink);
    }
    sum
}

criterion_group!(benches, bench);
criterion_main!(benches);
