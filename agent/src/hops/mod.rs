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
pub mod sketch;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::dims::RouteTemplater;
use crate::event::{Origin, RequestEvent, Wanted};
use sketch::Sketch;

pub const MINUTE_MS: i64 = 60_000;
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
/// Upper bound of one cell's bytes: six full sketches and the counts.
pub const CELL_MAX_BYTES: usize =
    std::mem::size_of::<Cell>() + 6 * sketch::MAX_SLOTS * std::mem::size_of::<(u16, u32)>();

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
}

impl Cell {
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
    }

    pub fn heap_bytes(&self) -> usize {
        [&self.edge, &self.gateway, &self.integration, &self.lambda_overhead, &self.function, &self.init]
            .iter()
            .map(|s| s.heap_bytes())
            .sum()
    }
}

/// One minute: service → route → cell.
pub type Minute = HashMap<Box<str>, HashMap<Box<str>, Cell>>;

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
}

/// One side of a join, waiting for the other.
#[derive(Debug, Clone)]
enum Side {
    Gateway { service: Box<str>, route: Box<str>, minute: i64, integration_ms: f64 },
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
    /// Index into [`Pending::newest`].
    service: u8,
    side: usize,
    id: Box<str>,
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
    by_id: HashMap<Box<str>, Waiting>,
    /// In arrival order; entries already joined are skipped.
    order: VecDeque<Queued>,
    seq: u64,
    services: HashMap<Box<str>, u8>,
    /// Per service: the newest event time of its gateway and Lambda records.
    newest: Vec<[i64; 2]>,
}

/// The hop decomposition's state: fed with every event, read through [`Hops::view`].
#[derive(Debug, Clone)]
pub struct Hops {
    /// `(minute, its cells)`, oldest first, only minutes with data.
    minutes: VecDeque<(i64, Arc<Minute>)>,
    /// Routes seen per service (bounded by `max_routes`).
    routes: HashMap<Box<str>, HashSet<Box<str>>>,
    max_routes: usize,
    templater: RouteTemplater,
    pending: Pending,
    /// Services whose gateway records carry integration request ids.
    joining: HashSet<Box<str>>,
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
            routes: HashMap::new(),
            max_routes: max_routes.clamp(1, MAX_ROUTES_PER_SERVICE),
            templater,
            pending: Pending::default(),
            joining: HashSet::new(),
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
            Some(Origin::CloudFront | Origin::CloudFrontRealtime) => {
                if let (Some(total), Some(origin)) = (ev.latency_ms, ev.upstream_latency_ms)
                    && !ev.path.is_empty()
                {
                    self.cloudfront(ev, total - origin, n);
                }
            }
            Some(Origin::ApiGateway) => {
                if let (Some(response), Some(integration)) = (ev.latency_ms, ev.upstream_latency_ms) {
                    self.gateway(ev, response, integration, n);
                }
            }
            Some(Origin::Lambda) => {
                if let Some(duration) = ev.latency_ms {
                    self.lambda(ev, duration, n);
                }
            }
            _ => {}
        }
    }

    #[inline(never)]
    fn cloudfront(&mut self, ev: &RequestEvent<'_>, edge_ms: f64, n: u64) {
        let route = if ev.route.is_empty() { self.templater.route(ev.path) } else { ev.route.to_string() };
        if let Some(cell) = self.cell(ev.service, &route, ev.ts_ms, n) {
            cell.edge.record_n(edge_ms.max(0.0), n);
        }
    }

    #[inline(never)]
    fn gateway(&mut self, ev: &RequestEvent<'_>, response_ms: f64, integration_ms: f64, n: u64) {
        let Some((route, cell)) = self.cell_named(ev.service, ev.route, ev.ts_ms, n) else { return };
        cell.gateway.record_n((response_ms - integration_ms).max(0.0), n);
        cell.integration.record_n(integration_ms, n);
        let id = ev.upstream_request_id;
        if id.is_empty() || n != 1 {
            return;
        }
        if !self.joining.contains(ev.service) && self.joining.len() < MAX_SERVICES {
            self.joining.insert(ev.service.into());
        }
        let Some(svc) = self.tick(ev.service, GATEWAY, ev.ts_ms) else { return };
        match self.pending.take(id) {
            Some(Side::Lambda { duration_ms, init_ms }) => {
                self.stats.joined += 1;
                if let Some(cell) = self.cell(ev.service, &route, ev.ts_ms, 1) {
                    cell.lambda_overhead.record((integration_ms - duration_ms).max(0.0));
                    cell.lambda(duration_ms, init_ms, 1);
                }
            }
            // The same id twice from the gateway: the older one gives up.
            Some(older @ Side::Gateway { .. }) => {
                self.count_unjoined(&older);
                self.wait(
                    id,
                    ev.ts_ms,
                    svc,
                    Side::Gateway {
                        service: ev.service.into(),
                        route: route.into(),
                        minute: minute_of(ev.ts_ms),
                        integration_ms,
                    },
                );
            }
            None => self.wait(
                id,
                ev.ts_ms,
                svc,
                Side::Gateway {
                    service: ev.service.into(),
                    route: route.into(),
                    minute: minute_of(ev.ts_ms),
                    integration_ms,
                },
            ),
        }
    }

    #[inline(never)]
    fn lambda(&mut self, ev: &RequestEvent<'_>, duration_ms: f64, n: u64) {
        let Some(cell) = self.cell(ev.service, FUNCTION, ev.ts_ms, n) else { return };
        cell.lambda(duration_ms, ev.init_ms, n);
        let id = ev.request_id;
        if id.is_empty() || n != 1 || !self.joining.contains(ev.service) {
            return;
        }
        let Some(svc) = self.tick(ev.service, LAMBDA, ev.ts_ms) else { return };
        match self.pending.take(id) {
            Some(Side::Gateway { service, route, minute, integration_ms }) => {
                self.stats.joined += 1;
                if let Some(cell) = self.cell(&service, &route, minute * MINUTE_MS, 1) {
                    cell.lambda_overhead.record((integration_ms - duration_ms).max(0.0));
                    cell.lambda(duration_ms, ev.init_ms, 1);
                }
            }
            Some(Side::Lambda { .. }) => {
                self.stats.unjoined_lambda += 1;
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
    /// stream has passed give up. `None` when the service cannot be tracked
    /// (beyond [`MAX_SERVICES`]): it is not joined.
    fn tick(&mut self, service: &str, side: usize, ts_ms: i64) -> Option<u8> {
        let svc = self.pending.mark(service, side, ts_ms)?;
        while let Some(side) = self.pending.pop_expired() {
            self.count_unjoined(&side);
        }
        Some(svc)
    }

    /// Ids waiting now (for tests and telemetry).
    pub fn pending_len(&self) -> usize {
        self.pending.by_id.len()
    }

    /// The cell of a hop-named route (folded: `{…}` → `{id}`), and the route used.
    fn cell_named(&mut self, service: &str, route: &str, ts_ms: i64, n: u64) -> Option<(String, &mut Cell)> {
        let key = route_key(route).into_owned();
        let bounded = self.bounded_route(service, key, n)?;
        let cell = self.cell_at(service, &bounded, ts_ms, n)?;
        Some((bounded, cell))
    }

    /// The cell of a route that may still need folding.
    fn cell(&mut self, service: &str, route: &str, ts_ms: i64, n: u64) -> Option<&mut Cell> {
        let route = if route == FUNCTION {
            String::new()
        } else {
            self.bounded_route(service, route_key(route).into_owned(), n)?
        };
        self.cell_at(service, &route, ts_ms, n)
    }

    /// The route as kept: itself while the service has room, else `other`;
    /// `None` when the service itself is beyond [`MAX_SERVICES`].
    fn bounded_route(&mut self, service: &str, route: String, n: u64) -> Option<String> {
        if route.is_empty() || route == OTHER_ROUTE {
            return Some(route);
        }
        let max = self.max_routes;
        let known = match self.routes.get_mut(service) {
            Some(k) => k,
            None => {
                if self.routes.len() >= MAX_SERVICES {
                    self.stats.services_dropped += n;
                    return None;
                }
                self.routes.entry(service.into()).or_default()
            }
        };
        if known.contains(route.as_str()) {
            return Some(route);
        }
        if known.len() >= max {
            self.stats.routes_folded += n;
            return Some(OTHER_ROUTE.to_string());
        }
        known.insert(route.as_str().into());
        Some(route)
    }

    fn cell_at(&mut self, service: &str, route: &str, ts_ms: i64, n: u64) -> Option<&mut Cell> {
        if !self.routes.contains_key(service) {
            if self.routes.len() >= MAX_SERVICES {
                self.stats.services_dropped += n;
                return None;
            }
            self.routes.insert(service.into(), HashSet::new());
        }
        let minute = minute_of(ts_ms);
        let i = match self.minutes.iter().rposition(|(m, _)| *m <= minute) {
            Some(i) if self.minutes[i].0 == minute => i,
            found => {
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
                self.minutes.iter().rposition(|(m, _)| *m == minute)?
            }
        };
        let cells = Arc::make_mut(&mut self.minutes[i].1);
        if !cells.contains_key(service) {
            cells.insert(service.into(), HashMap::new());
        }
        let routes = cells.get_mut(service)?;
        if !routes.contains_key(route) {
            routes.insert(route.into(), Cell::default());
        }
        routes.get_mut(route)
    }

    /// What handlers read: the minutes (shared, not copied) as of `at_ms`.
    pub fn view(&self, at_ms: i64) -> HopsView {
        HopsView { at_ms, minutes: self.minutes.iter().cloned().collect(), stats: self.stats }
    }

    /// Minutes held.
    pub fn minutes(&self) -> usize {
        self.minutes.len()
    }

    /// Routes held for a service (its own invocations not counted).
    pub fn routes_of(&self, service: &str) -> usize {
        self.routes.get(service).map_or(0, |r| r.len())
    }

    /// Bytes held by the cells (sketch slots and cell structs; map overhead not counted).
    pub fn memory_bytes(&self) -> usize {
        self.minutes
            .iter()
            .flat_map(|(_, m)| m.values())
            .flat_map(|r| r.values())
            .map(|c| std::mem::size_of::<Cell>() + c.heap_bytes())
            .sum()
    }
}

impl Pending {
    fn take(&mut self, id: &str) -> Option<Side> {
        self.by_id.remove(id).map(|w| w.side)
    }

    /// The service's index, after moving its `side`'s newest time to `ts_ms`.
    fn mark(&mut self, service: &str, side: usize, ts_ms: i64) -> Option<u8> {
        let i = match self.services.get(service) {
            Some(&i) => i,
            None => {
                if self.newest.len() >= MAX_SERVICES {
                    return None;
                }
                let i = u8::try_from(self.newest.len()).ok()?;
                self.services.insert(service.into(), i);
                self.newest.push([i64::MIN; 2]);
                i
            }
        };
        let newest = &mut self.newest[i as usize][side];
        *newest = (*newest).max(ts_ms);
        Some(i)
    }

    fn put(&mut self, id: &str, ts_ms: i64, service: u8, side: Side) {
        self.seq += 1;
        let seq = self.seq;
        let kind = if matches!(side, Side::Gateway { .. }) { GATEWAY } else { LAMBDA };
        self.by_id.insert(id.into(), Waiting { seq, side });
        self.order.push_back(Queued { seq, ts_ms, service, side: kind, id: id.into() });
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
        self.minutes.iter().any(|(_, m)| m.contains_key(service))
    }

    /// The cells of `service` in minutes `[first, last]`, for one route
    /// (folded like the events' routes) or every route.
    pub fn merged(&self, service: &str, route: Option<&str>, first: i64, last: i64) -> Merged {
        let key = route.map(route_key);
        let mut out = Merged::default();
        for (_, minute) in self.minutes.iter().filter(|(m, _)| (first..=last).contains(m)) {
            let Some(routes) = minute.get(service) else { continue };
            for (r, cell) in routes {
                if r.is_empty() {
                    out.function.merge(cell);
                } else if key.as_deref().is_none_or(|k| k == &**r) {
                    out.route.merge(cell);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
