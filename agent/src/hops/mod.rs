//! Hop decomposition from the logs the agent already reads: per service,
//! route and minute, where a request's time goes between CloudFront, API
//! Gateway and Lambda ("the site seems slow": which hop adds the time?).
//!
//! | hop | from | |
//! | --- | --- | --- |
//! | `edge` | CloudFront `time-taken` − `origin-fbl` | cache misses only (hits have no `origin-fbl`) |
//! | `gateway` | API Gateway `responseLatency` − `integrationLatency` | |
//! | `lambda_overhead` | API Gateway `integrationLatency` − Lambda `Duration` | joined by request id, else statistically |
//! | `function` | Lambda `Duration` | |
//! | `cold_start` | Lambda `Init Duration` | and the share of invocations that had one |
//!
//! **Traced.** Requests decomposed from their X-Ray traces (origin `xray`,
//! [`xray`]: `source::aws::xray` pulls them) fill sketches of their own in
//! the same cells: `gateway` (stage segment − its Lambda call),
//! `lambda_overhead` (Lambda service segment − function segment), `function`
//! (the `Invocation` subsegment) and `cold_start` (`Initialization`). They
//! are exact per request but sampled; the answer uses them, with `"basis":
//! "traced"`, for a hop the logs do not measure for the route: the gateway
//! without API Gateway logs, the function's time and cold starts without a
//! join by request id (instead of the function's figures over all routes),
//! `lambda_overhead` instead of the statistical estimate. Their route is the
//! stage segment's URL path without the stage, templated like CloudFront's.
//!
//! **Joining.** An API Gateway record that names its integration's request
//! id (`integration.requestId`: for a Lambda integration, the invocation's
//! `RequestId`) is joined with the Lambda `REPORT` of that id: the pair gives
//! the request's `lambda_overhead`, and the function time and cold start are
//! counted for the gateway's route. The two sides come from different
//! sources and arrive at different times, so each waits in a bounded map
//! ([`PENDING_MAX`] ids); a side gives up when the other side's records (of
//! the same service) are [`PENDING_MAX_AGE_MS`] of event time past it, so a
//! lagging source keeps its joins. What gives up or is pushed out unjoined is
//! counted ([`HopStats`]). Lambda records wait only for services whose
//! gateway records carried ids (a function's other work, queues and
//! schedules, never waits for a gateway record).
//!
//! **Statistically.** Without ids, `lambda_overhead` over a window is the
//! gateway's integration latency at each quantile minus the function's
//! duration at that quantile (all invocations of the service's function),
//! clamped at 0. The quantile of a difference is not the difference of the
//! quantiles: this is an estimate, exact only when the two move together,
//! and the answer says `"basis": "statistical"`.
//!
//! **Tying hops together.** Events meet under the same service and route.
//! The service is the source's `service:` (configure the same one on the
//! CloudFront, API Gateway and Lambda sources of one site); the route is the
//! gateway's route key or resource path, and for CloudFront the path's
//! template (the `routes:` templater: `/cart/123` → `/cart/{id}`). Every
//! `{…}` segment is folded to `{id}` so that `/cart/{cartId}` and
//! `/cart/{id}` meet.
//!
//! **Bounds.** At most [`KEEP_MINUTES`] minutes, [`MAX_SERVICES`] services,
//! and per service the route cap (`routes.max_routes`, at most
//! [`MAX_ROUTES_PER_SERVICE`]): further routes fold into `other`. A cell
//! (service, route, minute) holds six [`sketch::Sketch`]es of at most
//! [`sketch::MAX_SLOTS`] slots: at most [`CELL_MAX_BYTES`] bytes. It is memory
//! only; after a restart the decomposition covers what was read since.
//!
//! **Architecture invariant:** like the engine, pure given its events: no
//! clock, no I/O. The state thread feeds it and publishes a [`HopsView`] (the
//! minutes are shared, copied on the next write) that handlers read.

pub mod answer;
pub mod chain;
pub mod sketch;
pub mod xray;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::dims::RouteTemplater;
use crate::event::{Origin, RequestEvent, Wanted};
use sketch::Sketch;

pub const MINUTE_MS: i64 = 60_000;
/// Indices of [`Cell::requests`] and [`Cell::errors`].
pub const HOP_EDGE: usize = 0;
pub const HOP_GATEWAY: usize = 1;
pub const HOP_FUNCTION: usize = 2;
/// Minutes kept: 6 hours (a 15-minute window and up to 5¾ hours of baseline).
pub const KEEP_MINUTES: i64 = 360;
/// Services kept; events of further services are counted and dropped.
pub const MAX_SERVICES: usize = 64;
/// Routes per service, whatever `routes.max_routes` allows.
pub const MAX_ROUTES_PER_SERVICE: usize = 100;
/// Request ids waiting for their other side.
pub const PENDING_MAX: usize = 20_000;
/// How long (event time) one side waits for the other.
pub const PENDING_MAX_AGE_MS: i64 = 120_000;
/// The route a service's routes beyond the cap fold into.
pub const OTHER_ROUTE: &str = crate::dims::OTHER_ROUTE;
/// The route key of a function's own invocations (all routes, joined or not).
const FUNCTION: &str = "";
/// The route of gateway records that name none.
pub const NO_ROUTE: &str = "-";
/// Upper bound of one cell's bytes: ten full sketches (six from logs, four
/// from traces) and the counts.
pub const CELL_MAX_BYTES: usize = std::mem::size_of::<Cell>()
    + std::mem::size_of::<Traced>()
    + 10 * sketch::MAX_SLOTS * std::mem::size_of::<(u16, u32)>();

/// One service, route and minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub edge: Sketch,
    pub gateway: Sketch,
    /// API Gateway `integrationLatency` (for the statistical `lambda_overhead`).
    pub integration: Sketch,
    /// Joined by request id.
    pub lambda_overhead: Sketch,
    /// Lambda `Duration`: joined to this route, or (route `""`) every invocation.
    pub function: Sketch,
    /// `Init Duration` of cold invocations.
    pub init: Sketch,
    pub invocations: u64,
    pub cold: u64,
    /// Requests each hop's records told of, by [`HOP_EDGE`], [`HOP_GATEWAY`],
    /// [`HOP_FUNCTION`] (every record, with or without timings: cache hits
    /// too), and those of them answered with a 5xx (`outage` reads them).
    pub requests: [u64; 3],
    pub errors: [u64; 3],
    /// From X-Ray traces (origin `xray`): see the module docs. Boxed: most
    /// cells have none.
    pub traced: Option<Box<Traced>>,
}

/// A cell's figures from X-Ray traces: each request exact, the requests sampled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traced {
    pub gateway: Sketch,
    pub lambda_overhead: Sketch,
    /// The `Invocation` subsegment.
    pub function: Sketch,
    /// The `Initialization` subsegment of cold requests.
    pub init: Sketch,
    /// Requests with a function segment, and those of them that were cold.
    pub invocations: u64,
    pub cold: u64,
}

impl Traced {
    fn merge(&mut self, o: &Traced) {
        self.gateway.merge(&o.gateway);
        self.lambda_overhead.merge(&o.lambda_overhead);
        self.function.merge(&o.function);
        self.init.merge(&o.init);
        self.invocations += o.invocations;
        self.cold += o.cold;
    }

    fn sketches(&self) -> [&Sketch; 4] {
        [&self.gateway, &self.lambda_overhead, &self.function, &self.init]
    }
}

impl Cell {
    fn count(&mut self, hop: usize, status: u16, n: u64) {
        self.requests[hop] += n;
        if (500..=599).contains(&status) {
            self.errors[hop] += n;
        }
    }

    fn lambda(&mut self, duration_ms: f64, init_ms: Option<f64>, n: u64) {
        self.function.record_n(duration_ms, n);
        self.invocations += n;
        if let Some(init) = init_ms {
            self.init.record_n(init, n);
            self.cold += n;
        }
    }

    /// Add another cell's figures.
    pub fn merge(&mut self, o: &Cell) {
        self.edge.merge(&o.edge);
        self.gateway.merge(&o.gateway);
        self.integration.merge(&o.integration);
        self.lambda_overhead.merge(&o.lambda_overhead);
        self.function.merge(&o.function);
        self.init.merge(&o.init);
        self.invocations += o.invocations;
        self.cold += o.cold;
        for i in 0..3 {
            self.requests[i] += o.requests[i];
            self.errors[i] += o.errors[i];
        }
        if let Some(t) = &o.traced {
            self.traced.get_or_insert_default().merge(t);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        [&self.edge, &self.gateway, &self.integration, &self.lambda_overhead, &self.function, &self.init]
            .into_iter()
            .chain(self.traced.iter().flat_map(|t| t.sketches()))
            .map(|s| s.heap_bytes())
            .sum::<usize>()
            + self.traced.as_ref().map_or(0, |_| std::mem::size_of::<Traced>())
    }
}

/// One minute: the cells of the (service, route) keys with data, by key
/// (an index into the names, [`HopsView::merged`]).
pub type Minute = HashMap<u32, Cell>;

/// What could not be used, for the agent's own telemetry and the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HopStats {
    /// Gateway/Lambda pairs joined by request id.
    pub joined: u64,
    /// Gateway records with an integration id whose Lambda record never came (in time).
    pub unjoined_gateway: u64,
    /// Lambda records that waited for a gateway record in vain.
    pub unjoined_lambda: u64,
    /// Events older than the minutes kept.
    pub too_old: u64,
    /// Events of services beyond [`MAX_SERVICES`].
    pub services_dropped: u64,
    /// Events whose route was folded into `other`.
    pub routes_folded: u64,
    /// Requests decomposed from X-Ray traces.
    pub traced: u64,
}

/// One side of a join, waiting for the other.
#[derive(Debug, Clone)]
enum Side {
    Gateway { key: u32, minute: i64, integration_ms: f64 },
    Lambda { duration_ms: f64, init_ms: Option<f64> },
}

#[derive(Debug, Clone)]
struct Waiting {
    seq: u64,
    side: Side,
}

/// Which side of a join.
const GATEWAY: usize = 0;
const LAMBDA: usize = 1;

#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    ts_ms: i64,
    /// The service's index ([`Service::index`]).
    service: u8,
    side: usize,
    id: Arc<str>,
}

/// Ids waiting for their other side, oldest first in `order`.
///
/// A side gives up once the other side's stream (of the same service) has
/// moved [`PENDING_MAX_AGE_MS`] of event time past it: its partner would
/// have come by then. So a source that lags (a backlog read after a
/// restart) does not lose its joins, and a side whose other stream never
/// comes waits until the size bound pushes it out.
#[derive(Debug, Default, Clone)]
struct Pending {
    by_id: HashMap<Arc<str>, Waiting>,
    /// In arrival order; entries already joined are skipped.
    order: VecDeque<Queued>,
    seq: u64,
    /// Per service index: the newest event time of its gateway and Lambda records.
    newest: Vec<[i64; 2]>,
}

/// What is known of one service: its keys, by kept route and by the route
/// as the hops name it (so a known route costs two lookups, no allocation).
#[derive(Debug, Clone)]
struct Service {
    index: u8,
    /// Kept route (folded) → key; `""` is the function's own invocations.
    routes: HashMap<Box<str>, u32>,
    /// Route as an event names it → (key, folded into `other`).
    raw: HashMap<Box<str>, (u32, bool)>,
    /// Its gateway records carry integration request ids: Lambda records wait for them.
    joining: bool,
}

/// Raw route spellings remembered per service (beyond: worked out per event).
const MAX_RAW_ROUTES: usize = 4 * MAX_ROUTES_PER_SERVICE;

/// The hop decomposition's state: fed with every event, read through [`Hops::view`].
#[derive(Debug, Clone)]
pub struct Hops {
    /// `(minute, its cells)`, oldest first, only minutes with data.
    minutes: VecDeque<(i64, Arc<Minute>)>,
    /// Key → (service, route): shared with the views, copied when a key is added.
    names: Arc<Vec<(Box<str>, Box<str>)>>,
    services: HashMap<Box<str>, Service>,
    max_routes: usize,
    templater: RouteTemplater,
    pending: Pending,
    pub stats: HopStats,
}

impl Default for Hops {
    fn default() -> Self {
        Hops::new(RouteTemplater::default(), MAX_ROUTES_PER_SERVICE)
    }
}

/// `/cart/{cartId}` → `/cart/{id}`: every placeholder segment the same.
pub fn route_key(route: &str) -> Cow<'_, str> {
    if !route.contains('{') {
        return Cow::Borrowed(route);
    }
    let mut out = String::with_capacity(route.len());
    for (i, seg) in route.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.len() >= 2 && seg.starts_with('{') && seg.ends_with('}') {
            out.push_str("{id}");
        } else {
            out.push_str(seg);
        }
    }
    Cow::Owned(out)
}

impl Hops {
    /// The optional event fields the decomposition reads: request ids, to join.
    pub const WANTED: Wanted = Wanted { request_id: true, ..Wanted::NONE };

    /// `templater` turns CloudFront paths into routes; `max_routes` routes
    /// per service (at most [`MAX_ROUTES_PER_SERVICE`]).
    pub fn new(templater: RouteTemplater, max_routes: usize) -> Hops {
        Hops {
            minutes: VecDeque::new(),
            names: Arc::new(Vec::new()),
            services: HashMap::new(),
            max_routes: max_routes.clamp(1, MAX_ROUTES_PER_SERVICE),
            templater,
            pending: Pending::default(),
            stats: HopStats::default(),
        }
    }

    /// Take `n` requests like `ev`. Events without the fields a hop needs
    /// cost a match and a few comparisons.
    #[inline]
    pub fn observe(&mut self, ev: &RequestEvent<'_>, n: u64) {
        if n == 0 || ev.service.is_empty() {
            return;
        }
        match ev.origin {
            Some(Origin::CloudFront | Origin::CloudFrontRealtime) if !ev.path.is_empty() || !ev.route.is_empty() => {
                let edge_ms = match (ev.latency_ms, ev.upstream_latency_ms) {
                    (Some(total), Some(origin)) if !ev.path.is_empty() => Some(total - origin),
                    _ => None,
                };
                self.cloudfront(ev, edge_ms, n);
            }
            Some(Origin::ApiGateway) => {
                if let (Some(response), Some(integration)) = (ev.latency_ms, ev.upstream_latency_ms) {
                    self.gateway(ev, response, integration, n);
                } else {
                    let route = if ev.route.is_empty() { NO_ROUTE } else { ev.route };
                    if let Some(key) = self.key(ev.service, route, n) {
                        self.count(key, ev, HOP_GATEWAY, n);
                    }
                }
            }
            Some(Origin::Lambda) => {
                if let Some(duration) = ev.latency_ms {
                    self.lambda(ev, duration, n);
                } else if let Some(key) = self.key(ev.service, FUNCTION, n) {
                    self.count(key, ev, HOP_FUNCTION, n);
                }
            }
            Some(Origin::XRay) => self.traced(ev, n),
            _ => {}
        }
    }

    #[inline(never)]
    fn cloudfront(&mut self, ev: &RequestEvent<'_>, edge_ms: Option<f64>, n: u64) {
        let key = if ev.route.is_empty() {
            let route = self.templater.route(ev.path);
            self.key(ev.service, &route, n)
        } else {
            self.key(ev.service, ev.route, n)
        };
        if let Some(cell) = key.and_then(|k| self.cell(k, ev.ts_ms, n)) {
            cell.count(HOP_EDGE, ev.status, n);
            if let Some(ms) = edge_ms {
                cell.edge.record_n(ms.max(0.0), n);
            }
        }
    }

    /// A record without the timings the decomposition needs still counts
    /// towards its hop's requests and 5xx.
    fn count(&mut self, key: u32, ev: &RequestEvent<'_>, hop: usize, n: u64) {
        if let Some(cell) = self.cell(key, ev.ts_ms, n) {
            cell.count(hop, ev.status, n);
        }
    }

    #[inline(never)]
    fn traced(&mut self, ev: &RequestEvent<'_>, n: u64) {
        let key = if !ev.route.is_empty() {
            self.key(ev.service, ev.route, n)
        } else if !ev.path.is_empty() {
            let route = self.templater.route(ev.path);
            self.key(ev.service, &route, n)
        } else {
            self.key(ev.service, NO_ROUTE, n)
        };
        let Some(cell) = key.and_then(|k| self.cell(k, ev.ts_ms, n)) else { return };
        let t = cell.traced.get_or_insert_default();
        if let (Some(response), Some(integration)) = (ev.latency_ms, ev.upstream_latency_ms) {
            t.gateway.record_n((response - integration).max(0.0), n);
        }
        if let Some(ms) = ev.lambda_overhead_ms {
            t.lambda_overhead.record_n(ms.max(0.0), n);
        }
        if let Some(ms) = ev.invocation_ms {
            t.function.record_n(ms, n);
            t.invocations += n;
            if let Some(init) = ev.init_ms {
                t.init.record_n(init, n);
                t.cold += n;
            }
        }
        self.stats.traced += n;
    }

    #[inline(never)]
    fn gateway(&mut self, ev: &RequestEvent<'_>, response_ms: f64, integration_ms: f64, n: u64) {
        // A record without a route key or resource path: the route `-` (not the function's own).
        let route = if ev.route.is_empty() { NO_ROUTE } else { ev.route };
        let Some(key) = self.key(ev.service, route, n) else { return };
        let Some(cell) = self.cell(key, ev.ts_ms, n) else { return };
        cell.count(HOP_GATEWAY, ev.status, n);
        cell.gateway.record_n((response_ms - integration_ms).max(0.0), n);
        cell.integration.record_n(integration_ms, n);
        let id = ev.upstream_request_id;
        if id.is_empty() || n != 1 {
            return;
        }
        let Some(service) = self.services.get_mut(ev.service) else { return };
        service.joining = true;
        let svc = service.index;
        self.tick(svc, GATEWAY, ev.ts_ms);
        let side = Side::Gateway { key, minute: minute_of(ev.ts_ms), integration_ms };
        match self.pending.take(id) {
            Some(Side::Lambda { duration_ms, init_ms }) => {
                self.stats.joined += 1;
                if let Some(cell) = self.cell(key, ev.ts_ms, 1) {
                    cell.lambda_overhead.record((integration_ms - duration_ms).max(0.0));
                    cell.lambda(duration_ms, init_ms, 1);
                }
            }
            // The same id twice from the gateway: the older one gives up.
            Some(older @ Side::Gateway { .. }) => {
                self.count_unjoined(&older);
                self.wait(id, ev.ts_ms, svc, side);
            }
            None => self.wait(id, ev.ts_ms, svc, side),
        }
    }

    #[inline(never)]
    fn lambda(&mut self, ev: &RequestEvent<'_>, duration_ms: f64, n: u64) {
        let Some(key) = self.key(ev.service, FUNCTION, n) else { return };
        let Some(cell) = self.cell(key, ev.ts_ms, n) else { return };
        cell.count(HOP_FUNCTION, ev.status, n);
        cell.lambda(duration_ms, ev.init_ms, n);
        let id = ev.request_id;
        if id.is_empty() || n != 1 {
            return;
        }
        let Some(svc) = self.services.get(ev.service).filter(|s| s.joining).map(|s| s.index) else { return };
        self.tick(svc, LAMBDA, ev.ts_ms);
        match self.pending.take(id) {
            Some(Side::Gateway { key, minute, integration_ms }) => {
                self.stats.joined += 1;
                if let Some(cell) = self.cell(key, minute * MINUTE_MS, 1) {
                    cell.lambda_overhead.record((integration_ms - duration_ms).max(0.0));
                    cell.lambda(duration_ms, ev.init_ms, 1);
                }
            }
            Some(older @ Side::Lambda { .. }) => {
                self.count_unjoined(&older);
                self.wait(id, ev.ts_ms, svc, Side::Lambda { duration_ms, init_ms: ev.init_ms });
            }
            None => self.wait(id, ev.ts_ms, svc, Side::Lambda { duration_ms, init_ms: ev.init_ms }),
        }
    }

    fn wait(&mut self, id: &str, ts_ms: i64, service: u8, side: Side) {
        while self.pending.by_id.len() >= PENDING_MAX {
            match self.pending.pop_oldest() {
                Some(side) => self.count_unjoined(&side),
                None => break,
            }
        }
        self.pending.put(id, ts_ms, service, side);
    }

    fn count_unjoined(&mut self, side: &Side) {
        match side {
            Side::Gateway { .. } => self.stats.unjoined_gateway += 1,
            Side::Lambda { .. } => self.stats.unjoined_lambda += 1,
        }
    }

    /// Move one side's event time forward; the other side's ids that its
    /// stream has passed give up.
    fn tick(&mut self, service: u8, side: usize, ts_ms: i64) {
        let i = service as usize;
        if self.pending.newest.len() <= i {
            self.pending.newest.resize(i + 1, [i64::MIN; 2]);
        }
        let newest = &mut self.pending.newest[i][side];
        if ts_ms <= *newest {
            return;
        }
        *newest = ts_ms;
        while let Some(side) = self.pending.pop_expired() {
            self.count_unjoined(&side);
        }
    }

    /// Ids waiting now (for tests and telemetry).
    pub fn pending_len(&self) -> usize {
        self.pending.by_id.len()
    }

    /// The key of a service's route as an event names it: two lookups once
    /// known. `None` when the service is beyond [`MAX_SERVICES`].
    #[inline]
    fn key(&mut self, service: &str, route: &str, n: u64) -> Option<u32> {
        if let Some(&(key, folded)) = self.services.get(service).and_then(|s| s.raw.get(route)) {
            if folded {
                self.stats.routes_folded += n;
            }
            return Some(key);
        }
        self.key_slow(service, route, n)
    }

    #[inline(never)]
    fn key_slow(&mut self, service: &str, route: &str, n: u64) -> Option<u32> {
        if !self.services.contains_key(service) {
            if self.services.len() >= MAX_SERVICES {
                self.stats.services_dropped += n;
                return None;
            }
            let s = Service {
                index: self.services.len() as u8,
                routes: HashMap::new(),
                raw: HashMap::new(),
                joining: false,
            };
            self.services.insert(service.into(), s);
        }
        let kept = route_key(route);
        let s = self.services.get_mut(service)?;
        // The function's own key and `other` do not count against the cap.
        let room = s.routes.keys().filter(|r| !r.is_empty() && &***r != OTHER_ROUTE).count() < self.max_routes;
        let (kept, folded): (&str, bool) =
            if s.routes.contains_key(&*kept) || kept.is_empty() || room { (&kept, false) } else { (OTHER_ROUTE, true) };
        let key = match s.routes.get(kept) {
            Some(&k) => k,
            None => {
                let k = u32::try_from(self.names.len()).ok()?;
                Arc::make_mut(&mut self.names).push((service.into(), kept.into()));
                s.routes.insert(kept.into(), k);
                k
            }
        };
        if s.raw.len() < MAX_RAW_ROUTES {
            s.raw.insert(route.into(), (key, folded));
        }
        if folded {
            self.stats.routes_folded += n;
        }
        Some(key)
    }

    /// The cell of a key in the minute of `ts_ms`; `None` when the minute
    /// is older than those kept.
    fn cell(&mut self, key: u32, ts_ms: i64, n: u64) -> Option<&mut Cell> {
        let minute = minute_of(ts_ms);
        let i = match self.minutes.back() {
            Some((m, _)) if *m == minute => self.minutes.len() - 1,
            _ => self.minute_slow(minute, n)?,
        };
        Some(Arc::make_mut(&mut self.minutes[i].1).entry(key).or_default())
    }

    #[inline(never)]
    fn minute_slow(&mut self, minute: i64, n: u64) -> Option<usize> {
        let found = self.minutes.iter().rposition(|(m, _)| *m <= minute);
        if let Some(i) = found
            && self.minutes[i].0 == minute
        {
            return Some(i);
        }
        let newest = self.minutes.back().map_or(minute, |(m, _)| *m);
        if minute <= newest - KEEP_MINUTES {
            self.stats.too_old += n;
            return None;
        }
        let at = found.map_or(0, |i| i + 1);
        self.minutes.insert(at, (minute, Arc::new(Minute::new())));
        let newest = self.minutes.back().map_or(minute, |(m, _)| *m);
        while self.minutes.front().is_some_and(|(m, _)| *m <= newest - KEEP_MINUTES) {
            self.minutes.pop_front();
        }
        self.minutes.iter().rposition(|(m, _)| *m == minute)
    }

    /// What handlers read: the minutes and names (shared, not copied) as of `at_ms`.
    pub fn view(&self, at_ms: i64) -> HopsView {
        HopsView {
            at_ms,
            minutes: self.minutes.iter().cloned().collect(),
            names: self.names.clone(),
            stats: self.stats,
        }
    }

    /// Minutes held.
    pub fn minutes(&self) -> usize {
        self.minutes.len()
    }

    /// Routes held for a service (its function's own invocations and `other` not counted).
    pub fn routes_of(&self, service: &str) -> usize {
        self.services
            .get(service)
            .map_or(0, |s| s.routes.keys().filter(|r| !r.is_empty() && &***r != OTHER_ROUTE).count())
    }

    /// Bytes held by the cells (sketch slots and cell structs; map overhead not counted).
    pub fn memory_bytes(&self) -> usize {
        self.minutes.iter().flat_map(|(_, m)| m.values()).map(|c| std::mem::size_of::<Cell>() + c.heap_bytes()).sum()
    }
}

impl Pending {
    fn take(&mut self, id: &str) -> Option<Side> {
        self.by_id.remove(id).map(|w| w.side)
    }

    fn put(&mut self, id: &str, ts_ms: i64, service: u8, side: Side) {
        self.seq += 1;
        let seq = self.seq;
        let kind = if matches!(side, Side::Gateway { .. }) { GATEWAY } else { LAMBDA };
        let id: Arc<str> = id.into();
        self.by_id.insert(id.clone(), Waiting { seq, side });
        self.order.push_back(Queued { seq, ts_ms, service, side: kind, id });
        // Joined ids leave stale entries behind: drop them once they dominate.
        if self.order.len() > 2 * PENDING_MAX.max(self.by_id.len()) {
            let by_id = &self.by_id;
            self.order.retain(|q| by_id.get(&q.id).is_some_and(|w| w.seq == q.seq));
        }
    }

    fn live(&self, q: &Queued) -> bool {
        self.by_id.get(&q.id).is_some_and(|w| w.seq == q.seq)
    }

    /// The oldest waiting side, removed.
    fn pop_oldest(&mut self) -> Option<Side> {
        while let Some(q) = self.order.pop_front() {
            if self.live(&q) {
                return self.by_id.remove(&q.id).map(|w| w.side);
            }
        }
        None
    }

    /// The oldest side whose other stream has moved on past it, removed;
    /// `None` as soon as the oldest live side may still be joined.
    fn pop_expired(&mut self) -> Option<Side> {
        while let Some(q) = self.order.front() {
            if self.live(q) {
                let other = self.newest.get(q.service as usize).map_or(i64::MIN, |n| n[1 - q.side]);
                if other <= q.ts_ms.saturating_add(PENDING_MAX_AGE_MS) {
                    return None;
                }
            }
            let q = self.order.pop_front().expect("a front entry was just seen");
            if self.live(&q) {
                return self.by_id.remove(&q.id).map(|w| w.side);
            }
        }
        None
    }
}

fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MINUTE_MS)
}

/// The minutes of the decomposition as of one evaluation: what handlers read.
#[derive(Debug, Clone, Default)]
pub struct HopsView {
    pub at_ms: i64,
    minutes: Vec<(i64, Arc<Minute>)>,
    names: Arc<Vec<(Box<str>, Box<str>)>>,
    pub stats: HopStats,
}

/// A window's cells for one service: per route, and the function's own.
#[derive(Debug, Default)]
pub struct Merged {
    /// The route's cells (or every route's, merged).
    pub route: Cell,
    /// The function's own invocations (all routes, joined or not).
    pub function: Cell,
}

impl HopsView {
    /// Whether any minute holds data of `service`.
    pub fn has_service(&self, service: &str) -> bool {
        let keys: Vec<u32> = self.keys_of(service).map(|(k, _)| k).collect();
        !keys.is_empty() && self.minutes.iter().any(|(_, m)| keys.iter().any(|k| m.contains_key(k)))
    }

    fn keys_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = (u32, &'a str)> + 'a {
        self.names.iter().enumerate().filter(move |(_, (s, _))| &**s == service).map(|(k, (_, r))| (k as u32, &**r))
    }

    /// The routes of `service` (folded names, `other` included; not the
    /// function's own cells), sorted.
    pub fn routes<'a>(&'a self, service: &'a str) -> Vec<&'a str> {
        let mut r: Vec<&str> = self.keys_of(service).map(|(_, r)| r).filter(|r| !r.is_empty()).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// The cells of `service` in minutes `[first, last]`, for one route
    /// (folded like the events' routes) or every route.
    pub fn merged(&self, service: &str, route: Option<&str>, first: i64, last: i64) -> Merged {
        let wanted = route.map(route_key);
        let keys: Vec<(u32, bool)> = self
            .keys_of(service)
            .filter(|(_, r)| r.is_empty() || wanted.as_deref().is_none_or(|w| w == *r))
            .map(|(k, r)| (k, r.is_empty()))
            .collect();
        let mut out = Merged::default();
        for (_, minute) in self.minutes.iter().filter(|(m, _)| (first..=last).contains(m)) {
            for &(key, function) in &keys {
                if let Some(cell) = minute.get(&key) {
                    if function { out.function.merge(cell) } else { out.route.merge(cell) }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
