//! Synthetic but realistic input lines for the decoder benchmarks.

use slo_agent::demo::GeneratedLog;

pub const LINES: usize = 10_000;

/// A small deterministic generator (64-bit LCG), so every run decodes the
/// same lines.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() as usize % xs.len()]
    }
}

const AGENTS: [&str; 6] = [
    "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/124.0.0.0%20Safari/537.36",
    "Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2017_4%20like%20Mac%20OS%20X)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.4%20Mobile/15E148%20Safari/604.1",
    "Mozilla/5.0%20(Macintosh;%20Intel%20Mac%20OS%20X%2014_4)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.4%20Safari/605.1.15",
    "Mozilla/5.0%20(compatible;%20Googlebot/2.1;%20+http://www.google.com/bot.html)",
    "Mozilla/5.0%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko;%20compatible;%20bingbot/2.0;%20+http://www.bing.com/bingbot.htm)%20Chrome/116.0.1938.76%20Safari/537.36",
    "python-requests/2.31.0",
];
const PATHS: [&str; 8] = [
    "/",
    "/products/espresso-cup",
    "/api/cart",
    "/api/checkout/confirm",
    "/static/js/app.8f3a2c.js",
    "/images/hero-1920.webp",
    "/search/caf%25C3%25A9",
    "/p/%E6%97%A5%E6%9C%AC",
];
const EDGES: [&str; 5] = ["FRA56-P3", "IAD89-C1", "NRT57-P2", "LHR61-P4", "SIN2-C1"];
const RESULTS: [&str; 5] = ["Hit", "Hit", "Miss", "RefreshHit", "Error"];
const STATUSES: [&str; 6] = ["200", "200", "200", "304", "404", "503"];
const METHODS: [&str; 3] = ["GET", "GET", "POST"];

fn request_id(rng: &mut Lcg) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut id: String = (0..54).map(|_| ALPHABET[rng.next() as usize % 64] as char).collect();
    id.push_str("==");
    id
}

pub fn cloudfront_lines() -> Vec<Vec<u8>> {
    let mut rng = Lcg(7);
    (0..LINES)
        .map(|i| {
            let secs = 43_200 + i / 10;
            let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
            let bytes = (rng.next() % 200_000).to_string();
            let taken = format!("{}.{:03}", rng.next() % 2, rng.next() % 1000);
            let ip = format!("198.51.100.{}", rng.next() % 250);
            let port = (1024 + rng.next() % 60_000).to_string();
            let result = rng.pick(&RESULTS);
            let id = request_id(&mut rng);
            let fields: [&str; 33] = [
                "2024-05-01",
                &time,
                rng.pick(&EDGES),
                &bytes,
                &ip,
                rng.pick(&METHODS),
                "d3k9x2example.cloudfront.net",
                rng.pick(&PATHS),
                rng.pick(&STATUSES),
                "https://shop.example.com/",
                rng.pick(&AGENTS),
                "-",
                "-",
                result,
                &id,
                "shop.example.com",
                "https",
                "412",
                &taken,
                "-",
                "TLSv1.3",
                "TLS_AES_128_GCM_SHA256",
                result,
                "HTTP/2.0",
                "-",
                "-",
                &port,
                &taken,
                result,
                "text/html",
                &bytes,
                "-",
                "-",
            ];
            fields.join("\t").into_bytes()
        })
        .collect()
}

pub fn ndjson_lines() -> Vec<Vec<u8>> {
    let mut rng = Lcg(11);
    (0..LINES)
        .map(|i| {
            format!(
                r#"{{"ts":"2024-05-01T12:{:02}:{:02}.{:03}Z","service":"checkout","host":"shop.example.com","path":"{}?ref=home","method":"{}","status":{},"latency_ms":{}.{},"upstream_latency_ms":{},"edge_location":"{}","bytes":{},"request_id":"{}","client":"browser","cache":"miss"}}"#,
                i / 600 % 60,
                i / 10 % 60,
                rng.next() % 1000,
                rng.pick(&PATHS[..6]),
                rng.pick(&METHODS),
                rng.pick(&STATUSES),
                rng.next() % 900,
                rng.next() % 10,
                rng.next() % 800,
                rng.pick(&EDGES),
                rng.next() % 200_000,
                request_id(&mut rng),
            )
            .into_bytes()
        })
        .collect()
}

/// The fields of the real-time benchmark records, in order.
pub const REALTIME_FIELDS: [&str; 24] = [
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-edge-result-type",
    "origin-fbl",
    "origin-lbl",
    "asn",
];

/// CloudFront real-time log records with [`REALTIME_FIELDS`].
pub fn cloudfront_realtime_lines() -> Vec<Vec<u8>> {
    let mut rng = Lcg(13);
    (0..LINES)
        .map(|i| {
            let ts = format!("{}.{:03}", 1_732_104_000 + i / 10, rng.next() % 1000);
            let ip = format!("198.51.100.{}", rng.next() % 250);
            let ttfb = format!("0.{:03}", rng.next() % 1000);
            let bytes = (rng.next() % 200_000).to_string();
            let taken = format!("{}.{:03}", rng.next() % 2, rng.next() % 1000);
            let fbl = format!("0.{:03}", rng.next() % 1000);
            let result = rng.pick(&RESULTS);
            let id = request_id(&mut rng);
            let fields: [&str; 24] = [
                &ts,
                &ip,
                &ttfb,
                rng.pick(&STATUSES),
                &bytes,
                rng.pick(&METHODS),
                "https",
                "d3k9x2example.cloudfront.net",
                rng.pick(&PATHS),
                "412",
                rng.pick(&EDGES),
                &id,
                "shop.example.com",
                &taken,
                "HTTP/2.0",
                "IPv4",
                rng.pick(&AGENTS),
                "https://shop.example.com/",
                "-",
                result,
                result,
                &fbl,
                &fbl,
                "64496",
            ];
            fields.join("\t").into_bytes()
        })
        .collect()
}

/// CloudFront standard logging v2 `json` records: every value a string.
pub fn cloudfront_v2_json_lines() -> Vec<Vec<u8>> {
    let mut rng = Lcg(17);
    (0..LINES)
        .map(|i| {
            let secs = 43_200 + i / 10;
            format!(
                r#"{{"timestamp":"{}.{:03}","DistributionId":"E1EXAMPLE","date":"2024-05-01","time":"{:02}:{:02}:{:02}","x-edge-location":"{}","sc-bytes":"{}","c-ip":"198.51.100.{}","cs-method":"{}","cs(Host)":"d3k9x2example.cloudfront.net","cs-uri-stem":"{}","sc-status":"{}","cs(User-Agent)":"{}","x-edge-result-type":"{}","x-edge-request-id":"{}","x-host-header":"shop.example.com","time-taken":"{}.{:03}","x-forwarded-for":"-","origin-fbl":"0.{:03}","origin-lbl":"0.{:03}","asn":"64496","c-country":"DE","sc-content-type":"text/html"}}"#,
                1_714_564_800 + i / 10,
                rng.next() % 1000,
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rng.pick(&EDGES),
                rng.next() % 200_000,
                rng.next() % 250,
                rng.pick(&METHODS),
                rng.pick(&PATHS),
                rng.pick(&STATUSES),
                rng.pick(&AGENTS),
                rng.pick(&RESULTS),
                request_id(&mut rng),
                rng.next() % 2,
                rng.next() % 1000,
                rng.next() % 1000,
                rng.next() % 1000,
            )
            .into_bytes()
        })
        .collect()
}

/// The first `LINES` lines `slo-agent generate --format …` writes, without
/// their line ends.
fn generated_lines(log: GeneratedLog) -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    // 2026-11-20T00:00:00Z
    slo_agent::demo::generate(&mut text, log, 1_795_132_800_000, LINES as u64).expect("writing to memory");
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// API Gateway (HTTP API) JSON access log records of the shop's API, with
/// the keys users usually configure, every value a string (as API Gateway's
/// own examples quote them).
pub fn apigateway_json_lines() -> Vec<Vec<u8>> {
    generated_lines(GeneratedLog::Apigateway)
}

/// Lambda `REPORT` lines as a log export writes them: a leading timestamp,
/// tab-separated fields, a cold start now and then, an X-Ray trace id on
/// most, and a few timeouts and errors.
pub fn lambda_report_lines() -> Vec<Vec<u8>> {
    generated_lines(GeneratedLog::Lambda)
}

#[path = "../../src/decode/otlp/test_encoder.rs"]
mod otlp_encoder;

/// Routes of the OTLP benchmark spans: the route template and the path prefix.
const ROUTES: [(&str, &str); 5] = [
    ("GET /cart/{id}", "/cart/"),
    ("POST /checkout", "/checkout"),
    ("GET /products/{slug}", "/products/"),
    ("ANY /{proxy+}", "/static/"),
    ("GET /health", "/health"),
];

/// Spans in one OTLP benchmark request; [`LINES`] spans in all.
pub const OTLP_SPANS_PER_REQUEST: usize = 100;

/// OTLP traces requests, as OTLP/JSON bodies and as the protobuf bodies of
/// the same requests: [`LINES`] spans in requests of
/// [`OTLP_SPANS_PER_REQUEST`], from two services. Like a batching SDK sends
/// them: four in five spans are server spans with the attributes the HTTP
/// instrumentations set (three in four with the current semantic
/// conventions, the rest with the old ones), the others client spans.
pub fn otlp_requests() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use serde_json::{Value, json};
    let mut rng = Lcg(17);
    let hex = |rng: &mut Lcg, n: usize| -> String {
        (0..n).map(|_| b"0123456789abcdef"[rng.next() as usize % 16] as char).collect()
    };
    let string = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let int = |k: &str, v: u64| json!({"key": k, "value": {"intValue": v.to_string()}});
    let mut t = 1_714_564_800_000_000_000u64;
    let mut span = |rng: &mut Lcg| -> Value {
        t += rng.next() % 5_000_000;
        let start = t;
        let end = start + 1_000_000 + rng.next() % 400_000_000;
        let (route, path) = ROUTES[rng.next() as usize % ROUTES.len()];
        let route = route.split_once(' ').map_or(route, |(_, r)| r);
        let status: u64 = rng.pick(&STATUSES).parse().expect("status");
        let method = rng.pick(&METHODS);
        let kind = if rng.next().is_multiple_of(5) { 3 } else { 2 };
        let attributes = if kind == 3 {
            vec![
                string("http.request.method", "POST"),
                string("url.full", "https://payments.internal/v1/charges"),
                string("server.address", "payments.internal"),
                int("server.port", 443),
                int("http.response.status_code", 200),
            ]
        } else if !rng.next().is_multiple_of(4) {
            vec![
                string("http.request.method", method),
                string("url.scheme", "https"),
                string("url.path", &format!("{path}{}", rng.next() % 1000)),
                string("http.route", route),
                string("server.address", "shop.example.com"),
                int("server.port", 443),
                string("network.protocol.version", "1.1"),
                string("client.address", &format!("198.51.100.{}", rng.next() % 250)),
                string("user_agent.original", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"),
                int("http.response.status_code", status),
            ]
        } else {
            vec![
                string("http.method", method),
                string("http.scheme", "https"),
                string("http.target", &format!("{path}{}?ref=home", rng.next() % 1000)),
                string("http.host", "shop.example.com"),
                string("http.route", route),
                string("http.flavor", "1.1"),
                string("net.peer.ip", "198.51.100.7"),
                string("http.user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
                int("http.status_code", status),
            ]
        };
        let mut s = json!({
            "traceId": hex(rng, 32),
            "spanId": hex(rng, 16),
            "parentSpanId": hex(rng, 16),
            "flags": 257,
            "name": format!("{method} {route}"),
            "kind": kind,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": attributes,
            "status": {},
        });
        if status >= 500 {
            s["status"] = json!({"code": 2});
        }
        s
    };
    let mut json_bodies = Vec::new();
    let mut protobuf_bodies = Vec::new();
    for _ in 0..LINES / OTLP_SPANS_PER_REQUEST {
        let resource_spans: Vec<Value> = ["checkout", "search"]
            .into_iter()
            .map(|service| {
                let spans: Vec<Value> = (0..OTLP_SPANS_PER_REQUEST / 2).map(|_| span(&mut rng)).collect();
                json!({
                    "resource": {"attributes": [
                        string("service.name", service),
                        string("service.version", "2.4.1"),
                        string("telemetry.sdk.language", "python"),
                        string("cloud.region", "eu-central-1"),
                    ]},
                    "scopeSpans": [{
                        "scope": {"name": "opentelemetry.instrumentation.flask", "version": "0.48b0"},
                        "spans": spans,
                    }],
                })
            })
            .collect();
        let request = json!({ "resourceSpans": resource_spans });
        protobuf_bodies.push(otlp_encoder::otlp_json_to_protobuf(&request));
        json_bodies.push(serde_json::to_vec(&request).expect("JSON"));
    }
    (json_bodies, protobuf_bodies)
}
