//! A deterministic generator of the shop API's traffic as its two hops log
//! it: the API Gateway HTTP API's JSON access log records, and the `REPORT`
//! lines of the Lambda function behind it, in the form a CloudWatch Logs
//! export writes them (a leading RFC 3339 timestamp, tab-separated fields).
//! The same diurnal curve and incidents as the CloudFront traffic
//! ([`Scenario`]): checkout errors show up as 502/503/504 answers and as
//! failed or timed-out invocations, an API slowdown as longer durations.
//!
//! Used by `slo-agent generate --format apigateway|lambda` and by the
//! decoder benchmarks. Same seed, same bytes.

use std::io::Write;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::traffic::{MinuteLines, Scenario, civil_parts, client_ip, latency_seconds, pick};

/// Which hop's log to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiLog {
    /// API Gateway (HTTP API) access log records in JSON, one a line.
    ApiGateway,
    /// The function's `REPORT` lines, one per invocation, with the export's timestamp.
    Lambda,
}

pub const API_DOMAIN: &str = "api.shop.example.com";
/// The API's id, as API Gateway names it.
const API_ID: &str = "k7x2m9q4re";
/// The function's configured memory and timeout.
const MEMORY_MB: u32 = 1024;
const FUNCTION_TIMEOUT_MS: f64 = 29_000.0;

/// The API's routes (one Lambda function serves them all).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Endpoint {
    Product,
    ProductList,
    Cart,
    CartAdd,
    CartRemove,
    Token,
    Order,
    OrderStatus,
    Authorize,
    Health,
    /// A path no route matches: API Gateway answers 404 itself.
    NoRoute,
}

const MIX: [(Endpoint, u32); 11] = [
    (Endpoint::Product, 30),
    (Endpoint::ProductList, 12),
    (Endpoint::Cart, 14),
    (Endpoint::CartAdd, 8),
    (Endpoint::CartRemove, 2),
    (Endpoint::Token, 6),
    (Endpoint::Order, 4),
    (Endpoint::OrderStatus, 3),
    (Endpoint::Authorize, 3),
    (Endpoint::Health, 4),
    (Endpoint::NoRoute, 1),
];

impl Endpoint {
    /// The route key, the method and the median function duration in ms.
    fn route(self) -> (&'static str, &'static str, f64) {
        match self {
            Endpoint::Product => ("GET /api/products/{id}", "GET", 45.0),
            Endpoint::ProductList => ("GET /api/products", "GET", 120.0),
            Endpoint::Cart => ("GET /api/cart/{cartId}", "GET", 60.0),
            Endpoint::CartAdd => ("POST /api/cart/{cartId}/items", "POST", 90.0),
            Endpoint::CartRemove => ("DELETE /api/cart/{cartId}/items/{sku}", "DELETE", 70.0),
            Endpoint::Token => ("POST /api/auth/token", "POST", 150.0),
            Endpoint::Order => ("POST /api/checkout/orders", "POST", 380.0),
            Endpoint::OrderStatus => ("GET /api/checkout/orders/{orderId}", "GET", 70.0),
            Endpoint::Authorize => ("POST /api/payments/authorize", "POST", 450.0),
            Endpoint::Health => ("GET /api/health", "GET", 3.0),
            Endpoint::NoRoute => ("-", "GET", 0.0),
        }
    }

    fn is_checkout(self) -> bool {
        matches!(self, Endpoint::Order | Endpoint::Authorize | Endpoint::CartAdd)
    }
}

/// How an invocation of the function ended, as its `REPORT` line says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Invocation {
    /// The request never reached the function (throttled, no route, Lambda refused it).
    None,
    Success,
    Error(&'static str),
    Timeout,
}

/// One request as both hops see it.
struct Call {
    method: &'static str,
    route_key: &'static str,
    path: String,
    status: u16,
    response_type: &'static str,
    integration_status: Option<u16>,
    /// Time spent in the function, ms (0 when it was not invoked).
    function_ms: f64,
    response_ms: f64,
    response_bytes: u32,
    invocation: Invocation,
    init_ms: Option<f64>,
}

pub struct ApiTrafficGenerator {
    scenario: Scenario,
    log: ApiLog,
    rng: SmallRng,
    /// Epoch ms of minute 0.
    day_start_ms: i64,
    minute: u32,
    lines: MinuteLines,
}

impl ApiTrafficGenerator {
    /// `day_start_ms` should be a UTC midnight for the diurnal curve to make sense.
    pub fn new(scenario: Scenario, log: ApiLog, day_start_ms: i64) -> ApiTrafficGenerator {
        let rng = SmallRng::seed_from_u64(scenario.seed ^ 0xA91);
        ApiTrafficGenerator { scenario, log, rng, day_start_ms, minute: 0, lines: MinuteLines::default() }
    }

    /// Append one minute of log lines (sorted by time) to `out`; returns how many.
    pub fn next_minute(&mut self, out: &mut Vec<u8>) -> usize {
        let plan = self.scenario.plan(&mut self.rng, self.day_start_ms, self.minute);
        self.minute += 1;
        let minute_ms = plan.start_ms;
        let mut lines = std::mem::take(&mut self.lines);
        let mut written = 0;
        for _ in 0..plan.requests {
            let off = self.rng.random_range(0..60_000u32);
            let call = self.call(plan.checkout_failure, plan.api_slowdown);
            let mut line = Vec::new();
            let at = match self.log {
                ApiLog::ApiGateway => {
                    self.write_access_record(&mut line, minute_ms + off as i64, &call);
                    off
                }
                // The report is written when the invocation ends.
                ApiLog::Lambda if call.invocation != Invocation::None => {
                    let end = off + call.function_ms.ceil() as u32;
                    self.write_report(&mut line, minute_ms + end as i64, &call);
                    end
                }
                ApiLog::Lambda => continue,
            };
            lines.push(at, line);
            written += 1;
        }
        lines.append_sorted(out);
        self.lines = lines;
        written
    }

    fn call(&mut self, checkout_fail: Option<f64>, slow: f64) -> Call {
        let endpoint = pick(&mut self.rng, &MIX);
        let (route_key, method, median) = endpoint.route();
        let id = self.rng.random_range(1000..99999u32);
        let path = match endpoint {
            Endpoint::Product => format!("/api/products/{id}"),
            Endpoint::ProductList => "/api/products".to_string(),
            Endpoint::Cart | Endpoint::CartAdd => {
                format!("/api/cart/{}{}", id % 5000, if endpoint == Endpoint::CartAdd { "/items" } else { "" })
            }
            Endpoint::CartRemove => format!("/api/cart/{}/items/sku-{}", id % 5000, id % 700),
            Endpoint::Token => "/api/auth/token".to_string(),
            Endpoint::Order => "/api/checkout/orders".to_string(),
            Endpoint::OrderStatus => format!("/api/checkout/orders/ord-{id}"),
            Endpoint::Authorize => "/api/payments/authorize".to_string(),
            Endpoint::Health => "/api/health".to_string(),
            Endpoint::NoRoute => format!("/api/v1/legacy/{id}"),
        };
        let cold = self.rng.random::<f64>() < 0.008;
        let init_ms = cold.then(|| self.rng.random_range(180.0..900.0));
        let slow = if endpoint == Endpoint::Health { 1.0 } else { slow };
        let mut function_ms = latency_seconds(&mut self.rng, median, 0.45) * 1000.0 * slow;
        let mut call = Call {
            method,
            route_key,
            path,
            status: match (method, endpoint) {
                ("DELETE", _) => 204,
                ("POST", Endpoint::CartAdd | Endpoint::Order) => 201,
                _ => 200,
            },
            response_type: "-",
            integration_status: Some(200),
            function_ms: 0.0,
            response_ms: 0.0,
            response_bytes: 0,
            invocation: Invocation::Success,
            init_ms,
        };
        let roll = self.rng.random::<f64>();
        if endpoint == Endpoint::NoRoute {
            call.status = 404;
            call.invocation = Invocation::None;
        } else if roll < 0.0015 {
            call.status = 429;
            call.response_type = "THROTTLED";
            call.invocation = Invocation::None;
        } else if endpoint.is_checkout() && checkout_fail.is_some_and(|f| roll < 0.0015 + f) {
            match self.rng.random_range(0..3) {
                0 => {
                    call.status = 502;
                    call.response_type = "INTEGRATION_FAILURE";
                    call.invocation = Invocation::Error("Runtime.ExitError");
                }
                1 => {
                    // Lambda refused the invocation: concurrency exhausted.
                    call.status = 503;
                    call.response_type = "INTEGRATION_FAILURE";
                    call.integration_status = Some(429);
                    call.invocation = Invocation::None;
                }
                _ => {
                    call.status = 504;
                    call.response_type = "INTEGRATION_TIMEOUT";
                    call.invocation = Invocation::Timeout;
                }
            }
        } else if roll < 0.0018 {
            call.status = 500; // the handler answered 500: Lambda itself succeeded
        } else if roll < 0.0020 {
            call.status = 502;
            call.response_type = "INTEGRATION_FAILURE";
            call.invocation = Invocation::Error(if roll < 0.0019 { "Runtime.ExitError" } else { "Runtime.Unknown" });
        } else if roll < 0.00205 {
            call.status = 504;
            call.response_type = "INTEGRATION_TIMEOUT";
            call.invocation = Invocation::Timeout;
        } else if roll < 0.008 && method == "POST" {
            call.status = 400;
        } else if endpoint == Endpoint::Token && roll < 0.05 {
            call.status = 401;
        } else if endpoint == Endpoint::Product && roll < 0.012 {
            call.status = 404;
        } else if endpoint == Endpoint::CartAdd && roll < 0.014 {
            call.status = 409;
        }
        match call.invocation {
            Invocation::None => {
                call.integration_status = call.integration_status.filter(|_| call.status == 503);
                call.response_ms = self.rng.random_range(1.0..4.0);
                call.response_bytes = if call.status == 404 { 23 } else { 35 };
                call.init_ms = None;
                return call;
            }
            Invocation::Timeout => function_ms = FUNCTION_TIMEOUT_MS,
            Invocation::Error(_) => function_ms = function_ms.min(FUNCTION_TIMEOUT_MS),
            Invocation::Success => {}
        }
        call.function_ms = (function_ms + init_ms.unwrap_or(0.0)).min(FUNCTION_TIMEOUT_MS);
        // API Gateway's own overhead around the integration.
        let integration_ms = call.function_ms + self.rng.random_range(1.0..6.0);
        call.response_ms = integration_ms + self.rng.random_range(1.0..4.0);
        call.response_bytes = match (call.status, endpoint) {
            (204, _) => 0,
            (s, _) if s >= 400 => self.rng.random_range(30..140),
            (_, Endpoint::ProductList) => self.rng.random_range(4_000..48_000),
            (_, Endpoint::Product) => self.rng.random_range(900..6_000),
            (_, Endpoint::Health) => 15,
            _ => self.rng.random_range(120..2_400),
        };
        call
    }

    fn write_access_record(&mut self, out: &mut Vec<u8>, ts_ms: i64, call: &Call) {
        let secs = ts_ms.div_euclid(1000);
        let (y, mo, d, h, mi, s) = civil_parts(secs);
        let month = MONTHS[mo as usize - 1];
        let ip = client_ip(&mut self.rng);
        let integration_latency = match call.invocation {
            Invocation::None => "-".to_string(),
            _ => format!("{}", (call.response_ms - 2.0).max(1.0) as u32),
        };
        let integration_status = call.integration_status.map_or("-".to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            r#"{{"requestId":"{rid}","ip":"{ip}","requestTime":"{d:02}/{month}/{y}:{h:02}:{mi:02}:{s:02} +0000","requestTimeEpoch":"{secs}","httpMethod":"{method}","routeKey":"{route}","path":"{path}","status":"{status}","protocol":"HTTP/1.1","responseLength":"{len}","responseLatency":"{latency}","integrationLatency":"{integration_latency}","integrationStatus":"{integration_status}","error.responseType":"{error}","domainName":"{API_DOMAIN}","stage":"$default","apiId":"{API_ID}"}}"#,
            rid = self.http_api_request_id(),
            method = call.method,
            route = call.route_key,
            path = call.path,
            status = call.status,
            len = call.response_bytes,
            latency = call.response_ms as u32,
            error = call.response_type,
        );
    }

    fn write_report(&mut self, out: &mut Vec<u8>, ts_ms: i64, call: &Call) {
        let secs = ts_ms.div_euclid(1000);
        let (y, mo, d, h, mi, s) = civil_parts(secs);
        let millis = ts_ms.rem_euclid(1000);
        let id = self.uuid_v4();
        let used = self.rng.random_range(if call.init_ms.is_some() { 78..96 } else { 92..188u32 });
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z REPORT RequestId: {id}\tDuration: {dur:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {MEMORY_MB} MB\tMax Memory Used: {used} MB\t",
            dur = call.function_ms,
            billed = call.function_ms.ceil() as u64,
        );
        if let Some(init) = call.init_ms {
            let _ = write!(out, "Init Duration: {init:.2} ms\t");
        }
        match call.invocation {
            Invocation::Error(kind) => {
                let _ = write!(out, "Status: error\tError Type: {kind}\t");
            }
            Invocation::Timeout => out.extend_from_slice(b"Status: timeout\t"),
            Invocation::Success | Invocation::None => {}
        }
        // Active tracing: most invocations carry their X-Ray trace, whose
        // first part is the request's epoch seconds in hex.
        if self.rng.random::<f64>() < 0.9 {
            let trace = self.rng.random::<u128>() >> 32;
            let segment = self.rng.random::<u64>();
            let _ = write!(out, "XRAY TraceId: 1-{secs:08x}-{trace:024x}\tSegmentId: {segment:016x}\tSampled: true\t");
        }
        out.push(b'\n');
    }

    /// An HTTP API request id: 15 characters of base64 and a `=`.
    fn http_api_request_id(&mut self) -> String {
        const ALPHA: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let x = self.rng.random::<u128>();
        let mut s: String = (0..15).map(|i| ALPHA[((x >> (i * 6)) & 63) as usize] as char).collect();
        s.push('=');
        s
    }

    /// A Lambda request id: a version 4 UUID.
    fn uuid_v4(&mut self) -> String {
        let x = self.rng.random::<u128>();
        let x = (x & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let h = format!("{x:032x}");
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use crate::decode::apigateway::ApiGatewayDecoder;
    use crate::decode::lambda::LambdaDecoder;
    use crate::event::{Outcome, RequestEvent};

    const START: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z

    /// The demo's day at a sixth of its traffic, to keep debug builds quick.
    fn day(log: ApiLog) -> Vec<u8> {
        let scenario = Scenario { peak_per_minute: 40, ..Scenario::demo_day() };
        let mut g = ApiTrafficGenerator::new(scenario, log, START);
        let mut out = Vec::new();
        for _ in 0..1440 {
            g.next_minute(&mut out);
        }
        out
    }

    /// Every line decodes; the statuses and outcomes a day of traffic holds.
    fn decode_all(d: &mut dyn Decoder, text: &[u8]) -> (usize, Vec<u16>, Vec<Outcome>, (i64, i64)) {
        let (mut statuses, mut outcomes, mut span) = (Vec::new(), Vec::new(), (i64::MAX, i64::MIN));
        let mut lines = 0;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            let mut sink = |e: &RequestEvent<'_>| {
                statuses.push(e.status);
                outcomes.push(e.outcome);
                span = (span.0.min(e.ts_ms), span.1.max(e.ts_ms));
            };
            d.decode_line(line, &mut sink).unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(line)));
        }
        (lines, statuses, outcomes, span)
    }

    #[test]
    fn a_day_of_api_gateway_records_decodes_with_errors_and_throttles() {
        let text = day(ApiLog::ApiGateway);
        let (lines, statuses, outcomes, span) = decode_all(&mut ApiGatewayDecoder::new("shop-api"), &text);
        assert_eq!(statuses.len(), lines);
        assert!(lines > 30_000, "{lines}");
        for s in [200, 201, 204, 400, 401, 404, 429, 500, 502, 503, 504] {
            assert!(statuses.contains(&s), "no {s}");
        }
        assert!(outcomes.contains(&Outcome::Throttled) && outcomes.contains(&Outcome::Timeout));
        assert!(span.0 >= START && span.1 > START + 23 * 3_600_000 && span.1 < START + 86_400_000);
    }

    #[test]
    fn same_seed_same_bytes() {
        for log in [ApiLog::ApiGateway, ApiLog::Lambda] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut ga = ApiTrafficGenerator::new(Scenario::demo_day(), log, START);
            let mut gb = ApiTrafficGenerator::new(Scenario::demo_day(), log, START);
            for _ in 0..10 {
                ga.next_minute(&mut a);
                gb.next_minute(&mut b);
            }
            assert!(!a.is_empty());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_day_of_lambda_reports_decodes_with_errors_and_timeouts() {
        let text = day(ApiLog::Lambda);
        let (lines, statuses, outcomes, span) = decode_all(&mut LambdaDecoder::new("shop-api"), &text);
        assert_eq!(statuses.len(), lines, "one event per REPORT line");
        assert!(outcomes.contains(&Outcome::Error) && outcomes.contains(&Outcome::Timeout));
        assert!(outcomes.iter().filter(|o| **o == Outcome::Success).count() > lines * 99 / 100);
        assert!(span.1 > START + 23 * 3_600_000);
        let first = std::str::from_utf8(&text[..text.iter().position(|&b| b == b'\n').unwrap_or(0)]).unwrap_or("");
        assert!(first.starts_with("2026-11-20T00:0") && first.contains(" REPORT RequestId: "), "{first}");
    }
}
