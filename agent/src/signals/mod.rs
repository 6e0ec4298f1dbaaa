//! Live signals: minute series the agent derives from the events it already
//! reads, scored online by the same anomaly detector `slo-agent anomalies`
//! runs ([`crate::forecast::anomaly::Detector`]), with the detector's
//! expected value and band, and the hourly history the forecasts read.
//!
//! | signal | per minute | dimensions |
//! | --- | --- | --- |
//! | `requests` | requests | all, edge location, region, client class |
//! | `error_ratio` | 5xx / requests | the same |
//! | `client_error_share` | 4xx / requests | the same |
//! | `forbidden_share` | 403 / requests | the same |
//! | `latency_p95` | 95th percentile latency, ms | the same |
//! | `top_client_share` | share of the 10 busiest client addresses | all |
//! | `business:<name>` | matching requests (`signals.business`) | all, region, client class |
//! | `concurrency` | Lambda: peak concurrency of a second (Little's law) | all (per function) |
//! | `peak_rps` | API Gateway, CloudFront: requests in the busiest second | all |
//! | `peak_bandwidth` | CloudFront: bits per second in the busiest second | all |
//! | `bad_ratio`, `events` | per SLO: bad / events, events | `slo` |
//!
//! A series is a service (the record's, else its host), an origin (`cloudfront`, `apigateway`, `lambda`,
//! …, or `slo`), a signal and a dimension value. Ratios and percentiles are
//! scored only for minutes with `signals.min_events` requests; counts are
//! scored every minute, zero when nothing came.
//!
//! **Event time.** Events land in their own minute. A minute closes (its
//! values are scored) once the newest event is `signals.lateness` past its
//! end — or, when nothing arrives at all, once the clock is
//! `signals.idle_close` past it, so a silent service scores its zeros (the
//! state thread tells no clock while its sources catch up a backlog).
//! Events of closed minutes are counted as late and left out (the SLI
//! engine still counts them).
//!
//! **"Are we under attack?"** Per service and origin, each minute keeps the
//! heavy hitters ([`topk`]: client addresses, user agents, paths, ASNs) of
//! its requests; the last [`TOP_MINUTES`] closed minutes are kept, and the
//! answer names the top ones of the anomaly's minutes.
//!
//! **Bounds.** At most `signals.max_series` series (more are counted in
//! [`SignalStats::series_dropped`] and not created), [`MAX_SERVICES`]
//! services, `signals.max_edge_locations` edge locations per service (the
//! rest fold into `other`), [`OPEN_MINUTES`] minutes open at once. A series
//! holds at most [`SERIES_MAX_BYTES`] bytes: the detector, [`RECENT`]
//! minutes and [`HOURS`] hours of history. A minute of one service and
//! origin holds four heavy-hitter tables of [`topk::CAPACITY`] keys (for
//! the first [`MAX_HITTER_SERVICES`] services), cut to the 50 largest when
//! the minute closes. It is
//! memory only: after a restart the detectors learn again (the warm-up is
//! [`crate::forecast::anomaly::WARMUP`] minutes); the hourly history is
//! kept in the state file ([`Signals::history_records`], rewritten at every
//! hour) and read back at the start ([`Signals::restore_history`]), so the
//! quota trends and the comparisons with past days survive restarts. The
//! hour a restart falls in is kept as far as it was read after it.
//!
//! **Architecture invariant:** pure given its events and the times it is
//! told: no clock, no I/O. The state thread feeds it beside the engine and
//! publishes a [`SignalsView`] each time a minute closes.

pub mod answer;
pub mod config;
pub mod forecasts;
pub mod metrics;
pub mod topk;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::dims::Region;
use crate::event::{ClientClass, Origin, RequestEvent};
use crate::forecast::anomaly::Detector;
use crate::forecast::quota::PeakSecond;
use crate::hops::sketch::Sketch;
use config::SignalsConfig;
use topk::TopK;

/// The maps of the signals: every event looks up its service, edge location
/// and four cells, and every closed minute each of its series. With SipHash
/// those lookups were 9 % of a catch-up's CPU time (`perf`, 1,000 SLOs,
/// `docs/benchmarks.md`, "Scale"); foldhash is seeded per process too, and
/// every map here is bounded ([`MAX_SERVICES`], `signals.max_series`, …).
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A mean absolute deviation to a standard deviation (normal noise).
const MAD_TO_SD: f64 = 1.2533;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
/// The most minutes without events walked (scored as zeros) at once.
const MAX_IDLE_WALK: i64 = 1440 * MINUTE_MS;
/// Times past 9999-12-31 (and before 1970) are not scored.
const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Minutes of values and scores kept per series (for the answer's evidence).
pub const RECENT: usize = 120;
/// Hours of history kept per series: 28 days.
pub const HOURS: usize = 672;
/// Closed minutes of heavy hitters kept per service and origin.
pub const TOP_MINUTES: usize = 60;
/// Services watched; events of further services are counted and left out.
pub const MAX_SERVICES: usize = 256;
/// Services (the first seen) whose minutes keep heavy hitters.
pub const MAX_HITTER_SERVICES: usize = 32;
/// Minutes open at once: an event older than the oldest is late.
pub const OPEN_MINUTES: usize = 30;
/// Requests of a minute's busiest ten addresses, to [`Signal::TopClientShare`].
const TOP_SHARE_OF: usize = 10;
/// An upper bound of one series' memory.
pub const SERIES_MAX_BYTES: usize = std::mem::size_of::<Series>()
    + Detector::BYTES
    + RECENT * std::mem::size_of::<Minute>()
    + HOURS * std::mem::size_of::<(i64, f32)>()
    + 64;
// What docs/forecasts.md says one series costs at most.
const _: () = assert!(SERIES_MAX_BYTES <= 19 * 1024);

/// What a series measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Requests,
    ErrorRatio,
    ClientErrorShare,
    ForbiddenShare,
    LatencyP95,
    TopClientShare,
    /// A business event of `signals.business`, by its index.
    Business(u16),
    Concurrency,
    PeakRps,
    PeakBandwidth,
    BadRatio,
    Events,
}

/// How minutes add up to an hour of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Sum,
    Mean,
    Max,
}

impl Signal {
    pub fn name<'a>(&self, cfg: &'a SignalsConfig) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow::Borrowed;
        match self {
            Signal::Requests => Borrowed("requests"),
            Signal::ErrorRatio => Borrowed("error_ratio"),
            Signal::ClientErrorShare => Borrowed("client_error_share"),
            Signal::ForbiddenShare => Borrowed("forbidden_share"),
            Signal::LatencyP95 => Borrowed("latency_p95"),
            Signal::TopClientShare => Borrowed("top_client_share"),
            Signal::Business(i) => std::borrow::Cow::Owned(format!(
                "business:{}",
                cfg.business.get(*i as usize).map_or("?", |b| b.name.as_str())
            )),
            Signal::Concurrency => Borrowed("concurrency"),
            Signal::PeakRps => Borrowed("peak_rps"),
            Signal::PeakBandwidth => Borrowed("peak_bandwidth"),
            Signal::BadRatio => Borrowed("bad_ratio"),
            Signal::Events => Borrowed("events"),
        }
    }

    pub fn agg(&self) -> Agg {
        match self {
            Signal::Requests | Signal::Business(_) | Signal::Events => Agg::Sum,
            Signal::Concurrency | Signal::PeakRps | Signal::PeakBandwidth => Agg::Max,
            _ => Agg::Mean,
        }
    }

    /// Counts are zero in a minute without events; the others are unknown.
    fn zero_when_idle(&self) -> bool {
        matches!(self, Signal::Requests | Signal::Business(_) | Signal::Events)
    }

    /// A signal of abuse: its anomalies carry the heavy hitters.
    pub fn is_attack(&self) -> bool {
        matches!(self, Signal::Requests | Signal::ClientErrorShare | Signal::ForbiddenShare | Signal::TopClientShare)
    }

    pub fn unit(&self) -> &'static str {
        match self {
            Signal::Requests | Signal::Business(_) | Signal::Events => "per_minute",
            Signal::LatencyP95 => "milliseconds",
            Signal::Concurrency => "concurrent_executions",
            Signal::PeakRps => "requests_per_second",
            Signal::PeakBandwidth => "bits_per_second",
            _ => "ratio",
        }
    }
}

/// Which slice of a service's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    All,
    Edge(Arc<str>),
    Region(Region),
    Client(ClientClass),
    Slo(Arc<str>),
}

impl Dim {
    pub fn dimension(&self) -> &'static str {
        match self {
            Dim::All => "all",
            Dim::Edge(_) => "edge_location",
            Dim::Region(_) => "region",
            Dim::Client(_) => "client_class",
            Dim::Slo(_) => "slo",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Dim::All => "",
            Dim::Edge(e) => e,
            Dim::Region(r) => r.as_str(),
            Dim::Client(c) => c.as_str(),
            Dim::Slo(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub service: Arc<str>,
    /// `cloudfront`, `apigateway`, … or `slo`.
    pub origin: &'static str,
    pub signal: Signal,
    pub dim: Dim,
}

/// One closed minute of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Minute {
    pub minute_ms: i64,
    pub value: f32,
    pub score: f32,
    /// The detector's expectation before it saw the minute (NaN while it had none).
    pub expected: f32,
    pub lo: f32,
    pub hi: f32,
}

/// A run of minutes whose score reached the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    pub start_ms: i64,
    /// The last minute at or above the threshold.
    pub last_ms: i64,
    pub peak_score: f64,
    pub peak_ms: i64,
    /// +1 above the expected value, −1 below.
    pub direction: i8,
    pub value_at_start: f64,
    pub expected_at_start: f64,
}

/// Minutes below the threshold that end an episode.
pub const EPISODE_QUIET: i64 = 15;

#[derive(Debug, Clone)]
pub struct Series {
    detector: Detector,
    pub recent: Arc<VecDeque<Minute>>,
    /// Closed hours, oldest first: (hour start, value).
    pub hours: Arc<VecDeque<(i64, f32)>>,
    hour: i64,
    hour_sum: f64,
    hour_n: u32,
    hour_max: f64,
    pub episode: Option<Episode>,
    pub last_episode: Option<Episode>,
    /// Counts: the smoothed absolute relative deviation of a
    /// [`SHIFT_WINDOW`]-minute sum from its expectation (the shift score's scale).
    shift_scale: f64,
    shift_n: u32,
}

/// Minutes summed by the shift score of counts.
pub const SHIFT_WINDOW: usize = 15;

impl Series {
    fn new() -> Series {
        Series {
            detector: Detector::new(),
            recent: Arc::new(VecDeque::new()),
            hours: Arc::new(VecDeque::new()),
            hour: i64::MIN,
            hour_sum: 0.0,
            hour_n: 0,
            hour_max: f64::NEG_INFINITY,
            episode: None,
            last_episode: None,
            shift_scale: 0.0,
            shift_n: 0,
        }
    }

    /// Scores the minute's value and learns from it.
    fn push(&mut self, minute_ms: i64, value: f64, agg: Agg, threshold: f64) -> Minute {
        let band = self.detector.expected(minute_ms);
        let mut score = self.detector.score(minute_ms, value);
        let (expected, lo, hi) = match band {
            Some((p, sd)) => (p, p - 3.0 * sd, p + 3.0 * sd),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        let m = Minute {
            minute_ms,
            value: value as f32,
            score: score as f32,
            expected: expected as f32,
            lo: lo as f32,
            hi: hi as f32,
        };
        let recent = Arc::make_mut(&mut self.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(m);
        if agg == Agg::Sum {
            let shift = self.shift_score();
            if shift > score {
                score = shift;
                if let Some(last) = Arc::make_mut(&mut self.recent).back_mut() {
                    last.score = score as f32;
                }
            }
        }
        let m = *self.recent.back().unwrap_or(&m);
        self.episode_step(&m, threshold);
        self.hour_step(minute_ms, value, agg);
        m
    }

    /// Counts (requests, conversions) drift or drop in ways a minute's noise
    /// hides: the sum of the last [`SHIFT_WINDOW`] minutes against what the
    /// same minutes held on the previous days (the median of up to 7, from
    /// the hourly history), or — with less than a day of history — against
    /// the hour before. The deviation is measured in its own smoothed scale
    /// (at least the Poisson noise of the sum).
    fn shift_score(&mut self) -> f64 {
        let n = self.recent.len();
        if n < SHIFT_WINDOW {
            return 0.0;
        }
        let window = self.recent.range(n - SHIFT_WINDOW..);
        let mut observed = 0.0;
        let mut expected = 0.0;
        let mut seasonal = true;
        // The expectation is per hour: the window's minutes span two hours
        // at most, so it is looked up once per hour, not once per minute.
        let mut last_hour: Option<(i64, Option<f64>)> = None;
        for m in window.clone() {
            observed += f64::from(m.value);
            let hour = m.minute_ms.div_euclid(HOUR_MS);
            let e = match last_hour {
                Some((h, e)) if h == hour => e,
                _ => {
                    let e = self.seasonal_minute(m.minute_ms);
                    last_hour = Some((hour, e));
                    e
                }
            };
            match e {
                Some(e) => expected += e,
                None => {
                    seasonal = false;
                    break;
                }
            }
        }
        if !seasonal {
            // The level of the hour before the window.
            if n < SHIFT_WINDOW + 60 {
                return 0.0;
            }
            let before = self.recent.range(n - SHIFT_WINDOW - 60..n - SHIFT_WINDOW);
            expected = before.map(|m| f64::from(m.value)).sum::<f64>() / 60.0 * SHIFT_WINDOW as f64;
        }
        if !(observed.is_finite() && expected.is_finite()) {
            return 0.0;
        }
        let d = (observed - expected) / expected.max(1.0);
        let floor = 1.0 / expected.max(1.0).sqrt();
        let sd = (MAD_TO_SD * self.shift_scale).max(floor);
        let z = d.abs() / sd;
        self.shift_n = self.shift_n.saturating_add(1);
        let a = (1.0 / f64::from(self.shift_n)).max(0.01);
        self.shift_scale += a * (d.abs().min(3.0 * sd) - self.shift_scale);
        let ramp = (f64::from(self.shift_n) / 60.0).min(1.0);
        let s = crate::forecast::anomaly::to_score(z) * ramp;
        if s.is_finite() { s.clamp(0.0, 1.0) } else { 0.0 }
    }

    /// The median of the same minute's hour on up to 7 previous days, per minute.
    fn seasonal_minute(&self, minute_ms: i64) -> Option<f64> {
        let hour = minute_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let mut v: Vec<f64> = Vec::with_capacity(7);
        for d in 1..=7i64 {
            let h = hour - d * 86_400_000;
            if let Ok(i) = self.hours.binary_search_by_key(&h, |(t, _)| *t) {
                v.push(f64::from(self.hours[i].1) / 60.0);
            }
        }
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }

    fn episode_step(&mut self, m: &Minute, threshold: f64) {
        let score = f64::from(m.score);
        if score >= threshold {
            let direction = if m.value >= m.expected || m.expected.is_nan() { 1 } else { -1 };
            match &mut self.episode {
                Some(e) => {
                    e.last_ms = m.minute_ms;
                    if score > e.peak_score {
                        e.peak_score = score;
                        e.peak_ms = m.minute_ms;
                    }
                }
                None => {
                    self.episode = Some(Episode {
                        start_ms: m.minute_ms,
                        last_ms: m.minute_ms,
                        peak_score: score,
                        peak_ms: m.minute_ms,
                        direction,
                        value_at_start: f64::from(m.value),
                        expected_at_start: f64::from(m.expected),
                    })
                }
            }
        } else if let Some(e) = self.episode
            && m.minute_ms - e.last_ms >= EPISODE_QUIET * MINUTE_MS
        {
            self.last_episode = self.episode.take();
        }
    }

    fn hour_step(&mut self, minute_ms: i64, value: f64, agg: Agg) {
        let hour = minute_ms.div_euclid(HOUR_MS) * HOUR_MS;
        if hour != self.hour {
            if self.hour_n > 0 {
                let v = match agg {
                    Agg::Sum => self.hour_sum,
                    Agg::Mean => self.hour_sum / f64::from(self.hour_n),
                    Agg::Max => self.hour_max,
                };
                // An hour already kept (a restart read part of it again) is not added twice.
                if self.hours.back().is_none_or(|&(t, _)| t < self.hour) {
                    let hours = Arc::make_mut(&mut self.hours);
                    if hours.len() == HOURS {
                        hours.pop_front();
                    }
                    hours.push_back((self.hour, v as f32));
                }
            }
            self.hour = hour;
            self.hour_sum = 0.0;
            self.hour_n = 0;
            self.hour_max = f64::NEG_INFINITY;
        }
        self.hour_sum += value;
        self.hour_n += 1;
        self.hour_max = self.hour_max.max(value);
    }

    /// The last closed minute.
    pub fn last(&self) -> Option<&Minute> {
        self.recent.back()
    }

    /// The hour in progress, as far as it went: (hour start, value, minutes).
    pub fn current_hour(&self, agg: Agg) -> Option<(i64, f64, u32)> {
        (self.hour_n > 0).then(|| {
            let v = match agg {
                Agg::Sum => self.hour_sum,
                Agg::Mean => self.hour_sum / f64::from(self.hour_n),
                Agg::Max => self.hour_max,
            };
            (self.hour, v, self.hour_n)
        })
    }
}

/// Per second of a minute: requests, bytes, and Lambda's busy time
/// ([`PeakSecond`]: the busy milliseconds of a second / 1000 are its mean
/// concurrency, Little's law at a one-second grain).
#[derive(Debug, Clone)]
struct Seconds {
    requests: [u32; 60],
    bytes: [u64; 60],
    busy: Option<PeakSecond>,
}

impl Default for Seconds {
    fn default() -> Self {
        Seconds { requests: [0; 60], bytes: [0; 60], busy: None }
    }
}

/// Invocations of one record counted into the busy time at most (Lambda
/// records are one invocation each; aggregates from elsewhere are capped).
const MAX_BUSY_REPEAT: u64 = 64;

fn per_second(cell: &mut Cell, origin: Origin, e: &RequestEvent<'_>, n: u64) {
    let s = cell.seconds.get_or_insert_default();
    let sec = (e.ts_ms.rem_euclid(MINUTE_MS) / 1000) as usize;
    s.requests[sec] = s.requests[sec].saturating_add(n.min(u32::MAX as u64) as u32);
    s.bytes[sec] = s.bytes[sec].saturating_add(e.bytes.saturating_mul(n));
    if origin == Origin::Lambda
        && let Some(d) = e.latency_ms.filter(|d| d.is_finite() && *d > 0.0)
    {
        // A REPORT is written when the invocation ends: it started `d` before.
        let d = d.min(900_000.0);
        let busy = s.busy.get_or_insert_with(|| PeakSecond::new(e.ts_ms));
        let start = e.ts_ms - d as i64;
        for _ in 0..n.min(MAX_BUSY_REPEAT) {
            busy.observe(start, d);
        }
    }
}

/// What one minute of one service, origin and dimension counted.
#[derive(Debug, Clone, Default)]
struct Cell {
    total: u64,
    e5xx: u64,
    e4xx: u64,
    e403: u64,
    latency: Sketch,
    business: Vec<u64>,
    seconds: Option<Box<Seconds>>,
}

/// The heavy hitters of one minute of one service and origin.
#[derive(Debug, Clone, Default)]
pub struct Hitters {
    pub addresses: TopK,
    pub user_agents: TopK,
    pub paths: TopK,
    pub asns: TopK,
}

impl Hitters {
    fn merge(&mut self, o: &Hitters) {
        self.addresses.merge(&o.addresses);
        self.user_agents.merge(&o.user_agents);
        self.paths.merge(&o.paths);
        self.asns.merge(&o.asns);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CellDim {
    All,
    Edge(u16),
    Region(Region),
    Client(ClientClass),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CellKey {
    service: u16,
    origin: Origin,
    dim: CellDim,
}

#[derive(Debug, Default)]
struct OpenMinute {
    cells: HashMap<CellKey, Cell>,
    hitters: HashMap<(u16, Origin), Hitters>,
}

#[derive(Debug, Default)]
struct ServiceNames {
    name: Arc<str>,
    edges: HashMap<Box<str>, u16>,
    /// An account's aggregate (`account/<id>`), not a service.
    is_account: bool,
    /// The aggregate of the service's account, once looked up.
    account: Option<u16>,
}

/// Tallies for the agent's own telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Events of minutes already closed.
    pub late: u64,
    /// Series not created for `signals.max_series`.
    pub series_dropped: u64,
    /// Events of services beyond [`MAX_SERVICES`].
    pub services_dropped: u64,
    /// Minutes closed.
    pub minutes_closed: u64,
}

/// The heavy hitters of one closed minute.
#[derive(Debug, Clone)]
pub struct MinuteHitters {
    pub minute_ms: i64,
    pub service: Arc<str>,
    pub origin: &'static str,
    pub requests: u64,
    pub hitters: Arc<Hitters>,
}

/// What handlers and exporters read: every series as of the last closed
/// minute, and the recent heavy hitters.
#[derive(Debug, Clone, Default)]
pub struct SignalsView {
    /// The last closed minute (exclusive end), 0 before any.
    pub closed_until_ms: i64,
    pub threshold: f64,
    pub top: usize,
    pub series: Vec<SeriesView>,
    pub hitters: Vec<MinuteHitters>,
    pub stats: SignalStats,
    pub business: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SeriesView {
    pub key: SeriesKey,
    /// The signal's name (`business:<name>` for business signals).
    pub signal: String,
    pub agg: Agg,
    pub recent: Arc<VecDeque<Minute>>,
    pub hours: Arc<VecDeque<(i64, f32)>>,
    /// The hour in progress: (start, value so far, minutes).
    pub current_hour: Option<(i64, f64, u32)>,
    pub episode: Option<Episode>,
    pub last_episode: Option<Episode>,
}

impl SeriesView {
    pub fn last(&self) -> Option<&Minute> {
        self.recent.back()
    }
}

/// The live signals of every service.
#[derive(Debug)]
pub struct Signals {
    cfg: Arc<SignalsConfig>,
    services: Vec<ServiceNames>,
    service_index: HashMap<Box<str>, u16>,
    open: BTreeMap<i64, OpenMinute>,
    /// Minutes before this (ms) are closed.
    closed_until: i64,
    newest_ts: i64,
    series: HashMap<SeriesKey, Series>,
    hitters: VecDeque<MinuteHitters>,
    pub stats: SignalStats,
    /// Minutes closed since the last `advance` returned them (the state
    /// thread adds each SLO's events of them).
    slo_minutes: Vec<i64>,
    /// SLOs counted together (the same events and bad events, see
    /// [`Signals::set_slo_groups`]), by the first member's name: their
    /// series are kept once, under the first, and shown under each.
    slo_groups: HashMap<Arc<str>, Arc<[SloName]>>,
}

/// An SLO's name and service.
pub type SloName = (Arc<str>, Arc<str>);

impl Signals {
    /// The optional fields the signals read: client classes (a dimension),
    /// bytes (bandwidth) and who asked (the heavy hitters).
    pub const WANTED: crate::event::Wanted =
        crate::event::Wanted { client: true, bytes: true, requester: true, ..crate::event::Wanted::NONE };

    pub fn new(cfg: SignalsConfig) -> Signals {
        Signals {
            cfg: Arc::new(cfg),
            services: Vec::new(),
            service_index: HashMap::default(),
            open: BTreeMap::new(),
            closed_until: i64::MIN,
            newest_ts: i64::MIN,
            series: HashMap::default(),
            hitters: VecDeque::new(),
            stats: SignalStats::default(),
            slo_minutes: Vec::new(),
            slo_groups: HashMap::default(),
        }
    }

    pub fn config(&self) -> &Arc<SignalsConfig> {
        &self.cfg
    }

    /// Swap the configuration (a reload); series of signals that no longer
    /// exist go.
    pub fn set_config(&mut self, cfg: SignalsConfig) {
        let business = cfg.business.len();
        self.series.retain(|k, _| !matches!(k.signal, Signal::Business(i) if i as usize >= business));
        self.cfg = Arc::new(cfg);
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn service(&mut self, name: &str, n: u64) -> Option<u16> {
        if let Some(&i) = self.service_index.get(name) {
            return Some(i);
        }
        if self.services.len() >= MAX_SERVICES {
            self.stats.services_dropped = self.stats.services_dropped.saturating_add(n);
            return None;
        }
        let i = self.services.len() as u16;
        let is_account = name.starts_with("account/");
        self.services.push(ServiceNames {
            name: Arc::from(name),
            edges: HashMap::default(),
            is_account,
            account: None,
        });
        self.service_index.insert(name.into(), i);
        Some(i)
    }

    /// The aggregate series of the account that runs service `svc`.
    fn account(&mut self, svc: u16, n: u64) -> Option<u16> {
        if let Some(a) = self.services[svc as usize].account {
            return Some(a);
        }
        let name = forecasts::account_service(self.cfg.quotas.account_of(&self.services[svc as usize].name));
        let a = self.service(&name, n)?;
        self.services[svc as usize].account = Some(a);
        Some(a)
    }

    fn edge(&mut self, service: u16, edge: &str) -> u16 {
        let max = self.cfg.max_edge_locations;
        let s = &mut self.services[service as usize];
        if let Some(&i) = s.edges.get(edge) {
            return i;
        }
        if s.edges.len() >= max {
            return u16::MAX;
        }
        let i = s.edges.len() as u16;
        s.edges.insert(edge.into(), i);
        i
    }

    fn edge_name(&self, service: u16, edge: u16) -> Arc<str> {
        if edge == u16::MAX {
            return Arc::from(crate::dims::OTHER_ROUTE);
        }
        let s = &self.services[service as usize];
        s.edges.iter().find(|(_, i)| **i == edge).map_or_else(|| Arc::from("?"), |(k, _)| Arc::from(&**k))
    }

    /// Take `n` requests like `e`.
    pub fn observe(&mut self, e: &RequestEvent<'_>, n: u64) {
        let Some(origin) = e.origin else { return };
        // More than 2^40 requests in one record is nonsense; sums stay far from overflowing.
        let n = n.min(1 << 40);
        // A record that names no service (a CloudFront source without
        // `service:`) is watched under its host: the distribution's domain.
        let service = if e.service.is_empty() { e.host } else { e.service };
        if n == 0 || service.is_empty() || matches!(origin, Origin::Synthetic | Origin::XRay) {
            return;
        }
        if !(0..=MAX_TIME_MS).contains(&e.ts_ms) {
            self.stats.late = self.stats.late.saturating_add(n);
            return;
        }
        let minute = e.ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        if e.ts_ms > self.newest_ts {
            self.newest_ts = e.ts_ms;
        }
        if minute < self.closed_until {
            self.stats.late = self.stats.late.saturating_add(n);
            return;
        }
        let Some(svc) = self.service(service, n) else { return };
        let edge = (!e.edge_location.is_empty()).then(|| self.edge(svc, e.edge_location));
        let region = (!e.edge_location.is_empty()).then(|| crate::dims::edge_region(e.edge_location));
        // At most 64 business signals (`config::MAX_BUSINESS`): a bit each, no allocation.
        let mut business: u64 = 0;
        for (i, b) in self.cfg.business.iter().enumerate().take(64) {
            if b.matches(service, e.method, e.path, e.status) {
                business |= 1 << i;
            }
        }
        let nb = self.cfg.business.len();
        let account =
            if matches!(origin, Origin::Lambda | Origin::ApiGateway) && !self.services[svc as usize].is_account {
                self.account(svc, n)
            } else {
                None
            };
        let open = self.open.entry(minute).or_default();
        if let Some(acct) = account {
            let cell = open.cells.entry(CellKey { service: acct, origin, dim: CellDim::All }).or_default();
            cell.total += n;
            per_second(cell, origin, e, n);
        }
        let mut dims: [Option<CellDim>; 4] = [Some(CellDim::All), None, None, None];
        if e.client != ClientClass::Unknown {
            dims[1] = Some(CellDim::Client(e.client));
        }
        if let Some(r) = region {
            dims[2] = Some(CellDim::Region(r));
        }
        if let Some(x) = edge {
            dims[3] = Some(CellDim::Edge(x));
        }
        for dim in dims.into_iter().flatten() {
            let cell = open.cells.entry(CellKey { service: svc, origin, dim }).or_default();
            cell.total += n;
            match e.status {
                500..=599 => cell.e5xx += n,
                403 => {
                    cell.e4xx += n;
                    cell.e403 += n;
                }
                400..=499 => cell.e4xx += n,
                _ => {}
            }
            if let Some(ms) = e.latency_ms {
                cell.latency.record_n(ms, n);
            }
            if business != 0 && !matches!(dim, CellDim::Edge(_)) {
                cell.business.resize(nb, 0);
                for (i, c) in cell.business.iter_mut().enumerate().take(64) {
                    if business & (1 << i) != 0 {
                        *c += n;
                    }
                }
            }
            if dim == CellDim::All {
                per_second(cell, origin, e, n);
            }
        }
        if (!e.client_addr.is_empty() || !e.user_agent.is_empty()) && (svc as usize) < MAX_HITTER_SERVICES {
            let h = open.hitters.entry((svc, origin)).or_default();
            h.addresses.add(e.client_addr, n);
            h.user_agents.add(e.user_agent, n);
            h.paths.add(e.path, n);
            if let Some(a) = e.asn {
                // The number's text on the stack: no allocation per event.
                let mut buf = [0u8; 10];
                let mut w = &mut buf[..];
                if std::io::Write::write_fmt(&mut w, format_args!("{a}")).is_ok() {
                    let len = 10 - w.len();
                    h.asns.add(std::str::from_utf8(&buf[..len]).unwrap_or(""), n);
                }
            }
        }
        // Bounded: the oldest open minutes close early.
        while self.open.len() > OPEN_MINUTES {
            let Some((&first, _)) = self.open.first_key_value() else { break };
            self.close_until(first + MINUTE_MS);
        }
    }

    /// Closes the minutes that are due at `now_ms` (the injected clock).
    /// Returns the minutes closed, oldest first: the state thread adds each
    /// SLO's figures of them with [`Signals::observe_slo_minute`].
    pub fn advance(&mut self, now_ms: i64) -> Vec<i64> {
        let now_ms = now_ms.clamp(0, MAX_TIME_MS);
        let by_events =
            if self.newest_ts == i64::MIN { i64::MIN } else { self.newest_ts.saturating_sub(self.cfg.lateness_ms) };
        let by_clock = now_ms.saturating_sub(self.cfg.idle_close_ms);
        let due = by_events.max(by_clock).div_euclid(MINUTE_MS) * MINUTE_MS;
        self.close_until(due);
        std::mem::take(&mut self.slo_minutes)
    }

    fn close_until(&mut self, until: i64) {
        if self.closed_until == i64::MIN {
            // The first minute with events starts the series.
            match self.open.first_key_value() {
                Some((&first, _)) if first < until => self.closed_until = first,
                _ => return,
            }
        }
        while self.closed_until < until {
            // More than a day without any event (a pause, a clock jump): only
            // the last day before the next data is walked, minute by minute.
            let next = self.open.first_key_value().map_or(until, |(&m, _)| m.min(until));
            if next - self.closed_until > MAX_IDLE_WALK {
                self.closed_until = next - MAX_IDLE_WALK;
            }
            let minute = self.closed_until;
            let open = self.open.remove(&minute).unwrap_or_default();
            self.close_minute(minute, open);
            self.closed_until = minute + MINUTE_MS;
        }
    }

    fn close_minute(&mut self, minute: i64, open: OpenMinute) {
        self.stats.minutes_closed += 1;
        self.slo_minutes.push(minute);
        let cfg = self.cfg.clone();
        let mut seen: Vec<SeriesKey> = Vec::new();
        let mut hitters: Vec<(CellKey, u64)> = Vec::new();
        let mut cells: Vec<(CellKey, Cell)> = open.cells.into_iter().collect();
        cells.sort_by_key(|(k, _)| (k.service, k.origin.index(), dim_order(&k.dim)));
        let mut tops: HashMap<(u16, Origin), f64> = HashMap::default();
        for ((svc, origin), h) in &open.hitters {
            let total = h.addresses.seen();
            if total >= cfg.min_events {
                let top: u64 = h.addresses.top(TOP_SHARE_OF).iter().map(|(_, c)| c).sum();
                tops.insert((*svc, *origin), top as f64 / total as f64);
            }
        }
        for (key, cell) in &cells {
            let service = self.services[key.service as usize].name.clone();
            let dim = match key.dim {
                CellDim::All => Dim::All,
                CellDim::Edge(x) => Dim::Edge(self.edge_name(key.service, x)),
                CellDim::Region(r) => Dim::Region(r),
                CellDim::Client(c) => Dim::Client(c),
            };
            let origin = key.origin.as_str();
            let is_account = self.services[key.service as usize].is_account;
            let mut values: Vec<(Signal, f64)> = vec![(Signal::Requests, cell.total as f64)];
            if cell.total >= cfg.min_events && !is_account {
                let t = cell.total as f64;
                values.push((Signal::ErrorRatio, cell.e5xx as f64 / t));
                values.push((Signal::ClientErrorShare, cell.e4xx as f64 / t));
                values.push((Signal::ForbiddenShare, cell.e403 as f64 / t));
                if let Some(p) = cell.latency.quantile(0.95) {
                    values.push((Signal::LatencyP95, p));
                }
            }
            if !matches!(dim, Dim::Edge(_)) {
                for (i, _) in cfg.business.iter().enumerate() {
                    if let Some(&c) = cell.business.get(i) {
                        values.push((Signal::Business(i as u16), c as f64));
                    }
                }
            }
            if dim == Dim::All {
                if let Some(&share) = tops.get(&(key.service, key.origin)) {
                    values.push((Signal::TopClientShare, share));
                }
                if let Some(s) = &cell.seconds {
                    match key.origin {
                        Origin::Lambda => {
                            let peak = s.busy.as_ref().map_or(0.0, PeakSecond::peak_concurrency);
                            values.push((Signal::Concurrency, peak));
                        }
                        Origin::ApiGateway => {
                            values.push((Signal::PeakRps, f64::from(*s.requests.iter().max().unwrap_or(&0))));
                        }
                        Origin::CloudFront | Origin::CloudFrontRealtime => {
                            values.push((Signal::PeakRps, f64::from(*s.requests.iter().max().unwrap_or(&0))));
                            let peak = s.bytes.iter().max().copied().unwrap_or(0);
                            values.push((Signal::PeakBandwidth, peak as f64 * 8.0));
                        }
                        _ => {}
                    }
                }
                hitters.push((*key, cell.total));
            }
            for (signal, v) in values {
                let k = SeriesKey { service: service.clone(), origin, signal, dim: dim.clone() };
                self.push_value(minute, k.clone(), v);
                seen.push(k);
            }
        }
        // Counts of series that saw nothing this minute are zero.
        seen.sort_unstable();
        let idle: Vec<SeriesKey> = self
            .series
            .keys()
            .filter(|k| k.signal.zero_when_idle() && k.origin != "slo" && seen.binary_search(k).is_err())
            .cloned()
            .collect();
        for k in idle {
            self.push_value(minute, k, 0.0);
        }
        for ((svc, origin), mut h) in open.hitters {
            // Only what an answer can show is kept of a closed minute.
            for t in [&mut h.addresses, &mut h.user_agents, &mut h.paths, &mut h.asns] {
                t.truncate(config::MAX_TOP);
            }
            let requests = hitters.iter().find(|(k, _)| k.service == svc && k.origin == origin).map_or(0, |(_, n)| *n);
            if self.hitters.len() >= TOP_MINUTES * 4 {
                self.hitters.pop_front();
            }
            self.hitters.push_back(MinuteHitters {
                minute_ms: minute,
                service: self.services[svc as usize].name.clone(),
                origin: origin.as_str(),
                requests,
                hitters: Arc::new(h),
            });
        }
        let oldest = minute - (TOP_MINUTES as i64 - 1) * MINUTE_MS;
        while self.hitters.front().is_some_and(|h| h.minute_ms < oldest) {
            self.hitters.pop_front();
        }
    }

    fn push_value(&mut self, minute: i64, key: SeriesKey, value: f64) {
        let threshold = self.cfg.threshold;
        let agg = key.signal.agg();
        if let Some(s) = self.series.get_mut(&key) {
            s.push(minute, value, agg, threshold);
            return;
        }
        if self.series.len() >= self.cfg.max_series {
            self.stats.series_dropped += 1;
            return;
        }
        let mut s = Series::new();
        s.push(minute, value, agg, threshold);
        self.series.insert(key, s);
    }

    /// One SLO's events and bad events of a closed minute (from the engine).
    /// For SLOs counted together ([`Signals::set_slo_groups`]) the first
    /// member's figures stand for all of them.
    pub fn observe_slo_minute(&mut self, slo: &str, service: &str, minute_ms: i64, events: u64, bad: u64) {
        if !(0..=MAX_TIME_MS).contains(&minute_ms) {
            return;
        }
        // The group's names are shared: no allocation per SLO and minute.
        let (slo, service): SloName = match self.slo_groups.get(slo) {
            Some(g) if &*g[0].1 == service => g[0].clone(),
            _ => (Arc::from(slo), Arc::from(service)),
        };
        let dim = Dim::Slo(slo);
        let k = SeriesKey { service: service.clone(), origin: "slo", signal: Signal::Events, dim: dim.clone() };
        self.push_value(minute_ms, k, events as f64);
        if events >= self.cfg.min_events {
            let k = SeriesKey { service, origin: "slo", signal: Signal::BadRatio, dim };
            self.push_value(minute_ms, k, bad as f64 / events as f64);
        }
    }

    /// The SLOs, in groups counted together (the engine's counters: the
    /// same events, the same judgement), the first member first. A group's
    /// series are kept once, under its first member, and the view shows
    /// them under every member: a thousand SLOs that share a hundred
    /// counters cost a hundred pairs of series, not a thousand. Series of
    /// SLOs no longer defined go; a group whose first member changed takes
    /// over the series (and history) a member kept.
    pub fn set_slo_groups(&mut self, groups: &[Vec<(&str, &str)>]) {
        let mut map: HashMap<Arc<str>, Arc<[SloName]>> =
            HashMap::with_capacity_and_hasher(groups.len(), Default::default());
        for g in groups.iter().filter(|g| !g.is_empty()) {
            let members: Arc<[SloName]> = g.iter().map(|(n, s)| (Arc::from(*n), Arc::from(*s))).collect();
            map.insert(members[0].0.clone(), members);
        }
        // A group without series of its own takes those its first member
        // was shown with, or a member's (the first member was another
        // before a reload or a restart).
        let key = |(name, service): &SloName, signal: &Signal| SeriesKey {
            service: service.clone(),
            origin: "slo",
            signal: signal.clone(),
            dim: Dim::Slo(name.clone()),
        };
        for members in map.values() {
            let before = self
                .slo_groups
                .values()
                .find(|g| g.iter().any(|m| m.0 == members[0].0))
                .filter(|g| !map.contains_key(&g[0].0))
                .map(|g| g[0].clone());
            for signal in [Signal::Events, Signal::BadRatio] {
                let owner = key(&members[0], &signal);
                if self.series.contains_key(&owner) {
                    continue;
                }
                let found = before.iter().chain(&members[1..]).find_map(|m| self.series.remove(&key(m, &signal)));
                if let Some(series) = found {
                    self.series.insert(owner, series);
                }
            }
        }
        self.series.retain(|k, _| match &k.dim {
            Dim::Slo(s) => map.get(s).is_some_and(|g| g[0].1 == k.service),
            _ => true,
        });
        self.slo_groups = map;
    }

    /// The view handlers read. Series of SLOs counted together are shown
    /// under each member (sharing the same minutes and hours).
    pub fn view(&self) -> SignalsView {
        let mut series: Vec<SeriesView> = Vec::with_capacity(self.series.len());
        for (k, s) in &self.series {
            let signal = k.signal.name(&self.cfg).into_owned();
            let agg = k.signal.agg();
            let one = |key: SeriesKey| SeriesView {
                key,
                signal: signal.clone(),
                agg,
                recent: s.recent.clone(),
                hours: s.hours.clone(),
                current_hour: s.current_hour(agg),
                episode: s.episode,
                last_episode: s.last_episode,
            };
            match &k.dim {
                Dim::Slo(owner) if let Some(members) = self.slo_groups.get(owner) => {
                    for (name, service) in members.iter() {
                        series.push(one(SeriesKey {
                            service: service.clone(),
                            origin: k.origin,
                            signal: k.signal.clone(),
                            dim: Dim::Slo(name.clone()),
                        }));
                    }
                }
                _ => series.push(one(k.clone())),
            }
        }
        series.sort_by(|a, b| a.key.cmp(&b.key));
        SignalsView {
            closed_until_ms: if self.closed_until == i64::MIN { 0 } else { self.closed_until },
            threshold: self.cfg.threshold,
            top: self.cfg.top,
            series,
            hitters: self.hitters.iter().cloned().collect(),
            stats: self.stats,
            business: self.cfg.business.iter().map(|b| b.name.clone()).collect(),
        }
    }

    /// Every series' hourly history, to keep across restarts: (key, bytes).
    /// The key is the series' labels joined by U+001F; the bytes are
    /// (hour start as i64, value as f32) little-endian pairs.
    pub fn history_records(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .series
            .iter()
            .filter(|(_, s)| !s.hours.is_empty())
            .map(|(k, s)| {
                let key =
                    [&*k.service, k.origin, &k.signal.name(&self.cfg), k.dim.dimension(), k.dim.value()].join("\u{1f}");
                let mut bytes = Vec::with_capacity(s.hours.len() * 12);
                for &(t, v) in s.hours.iter() {
                    bytes.extend_from_slice(&t.to_le_bytes());
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                (key, bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// Series' hourly history kept before a restart: each becomes a series
    /// with that history and a detector that learns again. Records of
    /// signals no longer configured, or that do not read, are skipped.
    /// Returns how many were restored.
    pub fn restore_history(&mut self, records: &[(String, Vec<u8>)]) -> usize {
        let mut restored = 0;
        for (key, bytes) in records {
            if self.series.len() >= self.cfg.max_series {
                break;
            }
            let Some(k) = self.parse_key(key) else { continue };
            if bytes.len() % 12 != 0 || self.series.contains_key(&k) {
                continue;
            }
            let mut hours: VecDeque<(i64, f32)> = bytes
                .chunks_exact(12)
                .filter_map(|c| {
                    let t = i64::from_le_bytes(c[..8].try_into().ok()?);
                    let v = f32::from_le_bytes(c[8..].try_into().ok()?);
                    (v.is_finite() && (0..=MAX_TIME_MS).contains(&t)).then_some((t, v))
                })
                .collect();
            hours.make_contiguous().sort_by_key(|h| h.0);
            while hours.len() > HOURS {
                hours.pop_front();
            }
            let mut series = Series::new();
            series.hours = Arc::new(hours);
            self.series.insert(k, series);
            restored += 1;
        }
        restored
    }

    fn parse_key(&mut self, key: &str) -> Option<SeriesKey> {
        let mut parts = key.split('\u{1f}');
        let (service, origin, signal, dimension, value) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || service.is_empty() {
            return None;
        }
        let origin = if origin == "slo" { "slo" } else { Origin::parse(origin)?.as_str() };
        let signal = match signal {
            "requests" => Signal::Requests,
            "error_ratio" => Signal::ErrorRatio,
            "client_error_share" => Signal::ClientErrorShare,
            "forbidden_share" => Signal::ForbiddenShare,
            "latency_p95" => Signal::LatencyP95,
            "top_client_share" => Signal::TopClientShare,
            "concurrency" => Signal::Concurrency,
            "peak_rps" => Signal::PeakRps,
            "peak_bandwidth" => Signal::PeakBandwidth,
            "bad_ratio" => Signal::BadRatio,
            "events" => Signal::Events,
            other => {
                let name = other.strip_prefix("business:")?;
                Signal::Business(self.cfg.business.iter().position(|b| b.name == name)? as u16)
            }
        };
        let dim = match dimension {
            "all" => Dim::All,
            "edge_location" => Dim::Edge(Arc::from(value)),
            "region" => Dim::Region(Region::parse(value)?),
            "client_class" => Dim::Client(ClientClass::parse(value)?),
            "slo" => Dim::Slo(Arc::from(value)),
            _ => return None,
        };
        // Known services keep their index (so new events find the series).
        let svc = self.service(service, 0)?;
        Some(SeriesKey { service: self.services[svc as usize].name.clone(), origin, signal, dim })
    }

    /// Bytes held, for the documentation's bound and the agent's telemetry.
    pub fn memory_bytes(&self) -> usize {
        let series = self.series.len() * SERIES_MAX_BYTES;
        let hitters: usize = self
            .hitters
            .iter()
            .map(|h| {
                h.hitters.addresses.heap_bytes()
                    + h.hitters.user_agents.heap_bytes()
                    + h.hitters.paths.heap_bytes()
                    + h.hitters.asns.heap_bytes()
            })
            .sum();
        series + hitters
    }
}

impl SignalsView {
    /// The heavy hitters of `service` (all origins) over `[from, to)`, merged.
    pub fn hitters_between(&self, service: &str, from_ms: i64, to_ms: i64) -> (u64, Hitters) {
        let mut out = Hitters::default();
        let mut requests = 0;
        for h in &self.hitters {
            if &*h.service == service && h.minute_ms >= from_ms && h.minute_ms < to_ms {
                out.merge(&h.hitters);
                requests += h.requests;
            }
        }
        (requests, out)
    }
}

fn dim_order(d: &CellDim) -> (u8, u16) {
    match d {
        CellDim::All => (0, 0),
        CellDim::Edge(x) => (1, *x),
        CellDim::Region(r) => (2, *r as u16),
        CellDim::Client(c) => (3, *c as u16),
    }
}

#[cfg(test)]
mod tests;
