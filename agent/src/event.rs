//! `RequestEvent`: the one type that crosses from ingest to the SLI engine.
//!
//! Decoders build events that borrow from the line they decode (and from the
//! decoder's own scratch space), hand them to an [`EventSink`], and forget them:
//! nothing on the hot path allocates per event or per field.

use std::fmt;

/// Where an event came from. Also the `indicator.source` of an SLO spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    CloudFront,
    CloudFrontRealtime,
    ApiGateway,
    Lambda,
    Synthetic,
    Otlp,
    CloudWatch,
    Ndjson,
    /// A request decomposed from its X-Ray trace (`source::aws::xray`).
    XRay,
}

impl Origin {
    pub const ALL: [Origin; 9] = [
        Origin::CloudFront,
        Origin::CloudFrontRealtime,
        Origin::ApiGateway,
        Origin::Lambda,
        Origin::Synthetic,
        Origin::Otlp,
        Origin::CloudWatch,
        Origin::Ndjson,
        Origin::XRay,
    ];

    /// The name used in specs, config, metrics labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::CloudFront => "cloudfront",
            Origin::CloudFrontRealtime => "cloudfront-realtime",
            Origin::ApiGateway => "apigateway",
            Origin::Lambda => "lambda",
            Origin::Synthetic => "synthetic",
            Origin::Otlp => "otlp",
            Origin::CloudWatch => "cloudwatch",
            Origin::Ndjson => "ndjson",
            Origin::XRay => "xray",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a cache answered (CloudFront `x-edge-result-type` folded to three values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheResult {
    #[default]
    Unknown,
    Hit,
    Miss,
    Error,
}

impl CacheResult {
    pub const ALL: [CacheResult; 4] = [CacheResult::Unknown, CacheResult::Hit, CacheResult::Miss, CacheResult::Error];

    /// The name in specs: `hit` (CloudFront `Hit`, `RefreshHit`, `OriginShieldHit`), `miss`,
    /// `error`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Unknown => "unknown",
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Error => "error",
        }
    }
}

/// The protocol of the viewer's request (CloudFront `cs-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Not logged: a source without the field, a log whose field list
    /// leaves it out, or a value CloudFront does not document.
    #[default]
    Unknown,
    Http,
    Https,
    /// WebSocket over HTTP.
    Ws,
    /// WebSocket over HTTPS.
    Wss,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [Protocol::Unknown, Protocol::Http, Protocol::Https, Protocol::Ws, Protocol::Wss];

    /// The name in specs, as CloudFront writes it: `http`, `https`, `ws`, `wss`, and `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Unknown => "unknown",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Ws => "ws",
            Protocol::Wss => "wss",
        }
    }

    /// A spec's name, ASCII case ignored.
    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// A log's `cs-protocol` value; anything undocumented is `Unknown`.
    #[inline]
    pub fn from_log(v: &[u8]) -> Protocol {
        match v {
            b"https" => Protocol::Https,
            b"http" => Protocol::Http,
            b"wss" => Protocol::Wss,
            b"ws" => Protocol::Ws,
            _ if v.len() <= 5 => std::str::from_utf8(v).ok().and_then(Protocol::parse).unwrap_or_default(),
            _ => Protocol::Unknown,
        }
    }
}

/// The SSL/TLS version the viewer negotiated (CloudFront `ssl-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// Not logged: a source without the field, a log whose field list
    /// leaves it out, or a value CloudFront does not document.
    #[default]
    Unknown,
    /// No TLS: the request came over plain HTTP (`-` in the log).
    None,
    Ssl3,
    Tls1_0,
    Tls1_1,
    Tls1_2,
    Tls1_3,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 7] = [
        TlsVersion::Unknown,
        TlsVersion::None,
        TlsVersion::Ssl3,
        TlsVersion::Tls1_0,
        TlsVersion::Tls1_1,
        TlsVersion::Tls1_2,
        TlsVersion::Tls1_3,
    ];

    /// The name in specs, as CloudFront writes it (`SSLv3`, `TLSv1` for
    /// TLS 1.0, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`), and `none`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Unknown => "unknown",
            TlsVersion::None => "none",
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }

    /// A spec's name, ASCII case ignored; `TLSv1.0` is accepted for `TLSv1`.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        if s.eq_ignore_ascii_case("TLSv1.0") {
            return Some(TlsVersion::Tls1_0);
        }
        TlsVersion::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// A log's `ssl-protocol` value: `-` (or nothing) is `None`, anything
    /// undocumented `Unknown`.
    #[inline]
    pub fn from_log(v: &[u8]) -> TlsVersion {
        match v {
            b"TLSv1.3" => TlsVersion::Tls1_3,
            b"TLSv1.2" => TlsVersion::Tls1_2,
            b"-" | b"" => TlsVersion::None,
            b"TLSv1.1" => TlsVersion::Tls1_1,
            b"TLSv1" => TlsVersion::Tls1_0,
            b"SSLv3" => TlsVersion::Ssl3,
            _ => TlsVersion::Unknown,
        }
    }
}

/// Who sent the request, folded to a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ClientClass {
    #[default]
    Unknown,
    Browser,
    Crawler,
    Other,
}

impl ClientClass {
    pub const ALL: [ClientClass; 4] =
        [ClientClass::Unknown, ClientClass::Browser, ClientClass::Crawler, ClientClass::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientClass::Unknown => "unknown",
            ClientClass::Browser => "browser",
            ClientClass::Crawler => "crawler",
            ClientClass::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<ClientClass> {
        ClientClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How a request ended, beyond its HTTP status: what lets an SLO tell a
/// throttle from a function error from a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Unknown,
    Success,
    /// Refused for rate or quota (API Gateway 429 `THROTTLED`, Lambda throttles).
    Throttled,
    /// The hop behind failed (API Gateway integration errors).
    IntegrationError,
    /// The code failed (Lambda function errors, unhandled exceptions).
    Error,
    /// Ran out of time (Lambda `Status: timeout`, API Gateway integration timeouts).
    Timeout,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Unknown,
        Outcome::Success,
        Outcome::Throttled,
        Outcome::IntegrationError,
        Outcome::Error,
        Outcome::Timeout,
    ];

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unknown => "unknown",
            Outcome::Success => "success",
            Outcome::Throttled => "throttled",
            Outcome::IntegrationError => "integration_error",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

/// One request, as seen by one hop. Borrowed strings are empty when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestEvent<'a> {
    /// Event time: milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
    pub origin: Option<Origin>,
    /// The logical service (from the record, or from the source's config).
    pub service: &'a str,
    pub host: &'a str,
    /// URL path, decoded, without the query string.
    pub path: &'a str,
    pub method: &'a str,
    /// HTTP status; 0 when the client went away before a status was sent
    /// (CloudFront's `000`) or the record has none.
    pub status: u16,
    /// The source's own latency in milliseconds (CloudFront `time-taken`,
    /// API Gateway `responseLatency`, Lambda `Duration`), when known.
    pub latency_ms: Option<f64>,
    /// Time spent behind this hop (origin / integration), when known.
    pub upstream_latency_ms: Option<f64>,
    pub edge_location: &'a str,
    pub client: ClientClass,
    pub cache: CacheResult,
    /// The viewer's protocol (filled when [`Wanted::protocol`] is asked for).
    pub protocol: Protocol,
    /// The viewer's TLS version (filled when [`Wanted::tls_version`] is asked for).
    pub tls_version: TlsVersion,
    pub bytes: u64,
    pub request_id: &'a str,
    pub trace_id: &'a str,
    /// The request id the hop behind gave this request (API Gateway
    /// `integration.requestId` / `awsEndpointRequestId`: for a Lambda
    /// integration, the invocation's `RequestId`). Filled with the request id.
    pub upstream_request_id: &'a str,
    /// The route template when the hop knows it (API Gateway `routeKey` or
    /// `resourcePath`, e.g. `/cart/{id}`).
    pub route: &'a str,
    pub outcome: Outcome,
    /// Status the hop behind answered with (API Gateway `integrationStatus`); 0 when unknown.
    pub upstream_status: u16,
    /// The hop's own error class when it names one (API Gateway
    /// `error.responseType`, e.g. `THROTTLED`, `INTEGRATION_TIMEOUT`).
    pub error_type: &'a str,
    /// Lambda: cold-start initialisation, and billed duration, in milliseconds.
    pub init_ms: Option<f64>,
    pub billed_ms: Option<f64>,
    /// Lambda: configured and used memory, in MB.
    pub memory_size_mb: Option<u32>,
    pub max_memory_used_mb: Option<u32>,
    /// Synthetic events: the hop of the probe (`edge`, `gateway`, …) or the
    /// step of the journey that measured the request; empty otherwise.
    pub hop: &'a str,
    /// X-Ray: the Lambda service's own time around the function
    /// (`AWS::Lambda` segment − `AWS::Lambda::Function` segment).
    pub lambda_overhead_ms: Option<f64>,
    /// X-Ray: the handler's time (the function segment's `Invocation`).
    pub invocation_ms: Option<f64>,
    /// Who asked (filled when [`Wanted::requester`] is asked for, and the
    /// record has it): the client's address (CloudFront `c-ip`, API Gateway
    /// `identity.sourceIp`).
    pub client_addr: &'a str,
    /// The user agent as the record wrote it (CloudFront W3C: URL-encoded).
    pub user_agent: &'a str,
    /// The client's autonomous system number (CloudFront `asn`), when known.
    pub asn: Option<u32>,
}

/// The optional event fields a consumer reads. Decoders may leave the
/// others at their defaults, which saves work on the hot path (classifying
/// a user agent costs as much as splitting the rest of a CloudFront line).
/// Time, origin, service, host, path, method, status, latency and edge
/// location are always filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub client: bool,
    pub cache: bool,
    /// The viewer's protocol (CloudFront `cs-protocol`).
    pub protocol: bool,
    /// The viewer's TLS version (CloudFront `ssl-protocol`).
    pub tls_version: bool,
    pub bytes: bool,
    /// Request and trace ids.
    pub request_id: bool,
    /// The client's address, user agent and ASN (for "are we under attack?").
    pub requester: bool,
}

impl Wanted {
    /// Every field either asks for.
    pub const fn with(self, o: Wanted) -> Wanted {
        Wanted {
            client: self.client || o.client,
            cache: self.cache || o.cache,
            protocol: self.protocol || o.protocol,
            tls_version: self.tls_version || o.tls_version,
            bytes: self.bytes || o.bytes,
            request_id: self.request_id || o.request_id,
            requester: self.requester || o.requester,
        }
    }

    pub const ALL: Wanted = Wanted {
        client: true,
        cache: true,
        protocol: true,
        tls_version: true,
        bytes: true,
        request_id: true,
        requester: true,
    };
    pub const NONE: Wanted = Wanted {
        client: false,
        cache: false,
        protocol: false,
        tls_version: false,
        bytes: false,
        request_id: false,
        requester: false,
    };
}

impl Default for Wanted {
    fn default() -> Self {
        Wanted::ALL
    }
}

/// Receives decoded events. Implemented by the SLI router, by tests, by benches.
pub trait EventSink {
    fn event(&mut self, event: &RequestEvent<'_>);

    /// `n` identical requests (an aggregate source's count for a minute).
    /// Sinks that can add counts override this; the default repeats `event`.
    fn events(&mut self, event: &RequestEvent<'_>, n: u64) {
        for _ in 0..n {
            self.event(event);
        }
    }
}

impl<F: FnMut(&RequestEvent<'_>)> EventSink for F {
    fn event(&mut self, event: &RequestEvent<'_>) {
        self(event)
    }
}

/// Parse an HTTP status code from ASCII digits; `None` for anything else.
#[inline]
pub fn parse_status(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 3 {
        return None;
    }
    let mut v: u16 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u16;
    }
    Some(v)
}

/// Events decoded away from the engine and counted later, in one go: the
/// live agent decodes a batch (file read, gzip, decode) without holding
/// anything the evaluator needs, and hands the engine only the counting.
///
/// The events' strings are copied into one buffer (a field equal to the same
/// field of the event before is stored once), so a batch costs two
/// allocations that grow with it, not one per event or per field. Bounded by
/// what produced it: a source's batch limit, a push request's size limit.
#[derive(Debug, Default, Clone)]
pub struct EventBatch {
    text: String,
    events: Vec<Stored>,
    /// The spans of the previous event's strings, to reuse equal ones.
    last: [Span; STRINGS],
}

const STRINGS: usize = 13;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Debug, Clone)]
struct Stored {
    n: u64,
    ts_ms: i64,
    origin: Option<Origin>,
    status: u16,
    upstream_status: u16,
    latency_ms: Option<f64>,
    upstream_latency_ms: Option<f64>,
    client: ClientClass,
    cache: CacheResult,
    protocol: Protocol,
    tls_version: TlsVersion,
    outcome: Outcome,
    bytes: u64,
    init_ms: Option<f64>,
    billed_ms: Option<f64>,
    memory_size_mb: Option<u32>,
    max_memory_used_mb: Option<u32>,
    lambda_overhead_ms: Option<f64>,
    invocation_ms: Option<f64>,
    /// service, host, path, method, edge_location, request_id, trace_id, route, error_type, upstream_request_id, hop.
    asn: Option<u32>,
    strings: [Span; STRINGS],
}

impl EventBatch {
    /// Give back the room the batch grew into but does not use: a batch
    /// that waits in a queue holds only what it needs.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.events.shrink_to_fit();
    }

    pub fn new() -> EventBatch {
        EventBatch::default()
    }

    /// Events held (an aggregate's `n` identical requests count once here).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Requests held, aggregates counted with their multiplicity.
    pub fn requests(&self) -> u64 {
        self.events.iter().map(|e| e.n).sum()
    }

    /// Bytes the batch holds, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.events.capacity() * std::mem::size_of::<Stored>()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.events.clear();
        self.last = Default::default();
    }

    fn intern(&mut self, slot: usize, s: &str) -> Span {
        let prev = self.last[slot];
        if !s.is_empty() && self.text.get(prev.start as usize..(prev.start + prev.len) as usize) == Some(s) {
            return prev;
        }
        // A batch is bounded far below 4 GiB by what produced it; past that
        // the string is dropped rather than a span wrapping around.
        let (Ok(start), Ok(len)) = (u32::try_from(self.text.len()), u32::try_from(s.len())) else {
            return Span::default();
        };
        if start.checked_add(len).is_none() {
            return Span::default();
        }
        self.text.push_str(s);
        let span = Span { start, len };
        self.last[slot] = span;
        span
    }

    fn push(&mut self, e: &RequestEvent<'_>, n: u64) {
        let fields = [
            e.service,
            e.host,
            e.path,
            e.method,
            e.edge_location,
            e.request_id,
            e.trace_id,
            e.route,
            e.error_type,
            e.upstream_request_id,
            e.hop,
            e.client_addr,
            e.user_agent,
        ];
        let mut strings = [Span::default(); STRINGS];
        for (i, s) in fields.iter().enumerate() {
            strings[i] = self.intern(i, s);
        }
        self.events.push(Stored {
            n,
            ts_ms: e.ts_ms,
            origin: e.origin,
            status: e.status,
            upstream_status: e.upstream_status,
            latency_ms: e.latency_ms,
            upstream_latency_ms: e.upstream_latency_ms,
            client: e.client,
            cache: e.cache,
            protocol: e.protocol,
            tls_version: e.tls_version,
            outcome: e.outcome,
            bytes: e.bytes,
            init_ms: e.init_ms,
            billed_ms: e.billed_ms,
            memory_size_mb: e.memory_size_mb,
            max_memory_used_mb: e.max_memory_used_mb,
            lambda_overhead_ms: e.lambda_overhead_ms,
            invocation_ms: e.invocation_ms,
            asn: e.asn,
            strings,
        });
    }

    /// Hand every event to `sink`, in the order they were decoded.
    pub fn replay(&self, sink: &mut dyn EventSink) {
        let s = |sp: Span| self.text.get(sp.start as usize..(sp.start + sp.len) as usize).unwrap_or("");
        for e in &self.events {
            let [
                service,
                host,
                path,
                method,
                edge_location,
                request_id,
                trace_id,
                route,
                error_type,
                upstream_request_id,
                hop,
                client_addr,
                user_agent,
            ] = e.strings.map(s);
            let ev = RequestEvent {
                ts_ms: e.ts_ms,
                origin: e.origin,
                service,
                host,
                path,
                method,
                status: e.status,
                latency_ms: e.latency_ms,
                upstream_latency_ms: e.upstream_latency_ms,
                edge_location,
                client: e.client,
                cache: e.cache,
                protocol: e.protocol,
                tls_version: e.tls_version,
                bytes: e.bytes,
                request_id,
                trace_id,
                upstream_request_id,
                route,
                outcome: e.outcome,
                upstream_status: e.upstream_status,
                error_type,
                init_ms: e.init_ms,
                billed_ms: e.billed_ms,
                memory_size_mb: e.memory_size_mb,
                max_memory_used_mb: e.max_memory_used_mb,
                hop,
                lambda_overhead_ms: e.lambda_overhead_ms,
                invocation_ms: e.invocation_ms,
                client_addr,
                user_agent,
                asn: e.asn,
            };
            if e.n == 1 { sink.event(&ev) } else { sink.events(&ev, e.n) }
        }
    }
}

impl EventSink for EventBatch {
    fn event(&mut self, event: &RequestEvent<'_>) {
        self.push(event, 1);
    }

    fn events(&mut self, event: &RequestEvent<'_>, n: u64) {
        if n > 0 {
            self.push(event, n);
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn ev(i: i64) -> RequestEvent<'static> {
        RequestEvent {
            ts_ms: 1_000 + i,
            origin: Some(Origin::ApiGateway),
            service: "shop",
            host: "api.example.com",
            path: if i % 2 == 0 { "/cart" } else { "/checkout/é" },
            method: "POST",
            status: 200 + i as u16,
            latency_ms: Some(i as f64),
            edge_location: "",
            client: ClientClass::Crawler,
            route: "/cart/{id}",
            upstream_request_id: if i % 3 == 0 { "" } else { "L-1" },
            outcome: Outcome::Timeout,
            protocol: if i % 2 == 0 { Protocol::Https } else { Protocol::Wss },
            tls_version: TlsVersion::Tls1_2,
            memory_size_mb: Some(128),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_gives_back_every_event_as_decoded() {
        let mut batch = EventBatch::new();
        let want: Vec<RequestEvent<'static>> = (0..50).map(ev).collect();
        for e in &want {
            batch.event(e);
        }
        batch.events(&ev(7), 30);
        batch.events(&ev(8), 0);
        assert_eq!((batch.len(), batch.requests()), (51, 80));
        let mut got: Vec<(String, u64)> = Vec::new();
        struct Collect<'a>(&'a mut Vec<(String, u64)>);
        impl EventSink for Collect<'_> {
            fn event(&mut self, e: &RequestEvent<'_>) {
                self.0.push((format!("{e:?}"), 1));
            }
            fn events(&mut self, e: &RequestEvent<'_>, n: u64) {
                self.0.push((format!("{e:?}"), n));
            }
        }
        batch.replay(&mut Collect(&mut got));
        let mut expected: Vec<(String, u64)> = want.iter().map(|e| (format!("{e:?}"), 1)).collect();
        expected.push((format!("{:?}", ev(7)), 30));
        assert_eq!(got, expected);
        // Repeated fields are stored once.
        assert!(batch.text.len() < 50 * 20, "{}", batch.text.len());
        batch.clear();
        assert!(batch.is_empty());
    }
}
