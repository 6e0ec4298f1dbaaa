//! The SLI engine: routes each event to the SLOs that count it, counts it in
//! the bucket of its own timestamp, and reads windows, budgets, burn rates and
//! alert conditions off those buckets.
//!
//! **Architecture invariant:** the engine is pure given its events and the
//! evaluation time it is handed. It never reads a clock, never does I/O, and
//! nothing else writes SLI state. Persistence reads the changed buckets out of
//! it ([`Engine::drain_changes`]) and loads them back ([`Engine::restore_bucket`]).

pub mod failures;
pub mod hdr;
pub mod latency;
pub mod report;
pub mod ring;
pub mod router;
pub mod series;

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{EventSink, Origin, RequestEvent, Wanted};
use crate::spec::model::{ALERT_WINDOWS, BurnRateRule, CalendarUnit, MINUTE_MS, Minutes, Slo, SloSet, SloWindow};
use latency::{LatencyDays, Percentiles};
use ring::Counts;
use series::{DirtyBuckets, RingId, Series, WindowStats};

/// One SLO's counting state.
#[derive(Debug, Clone)]
pub struct SloState {
    pub slo: Arc<Slo>,
    series: Series,
    latency: LatencyDays,
    dirty: DirtyBuckets,
    /// Events counted since this state was created (monotonic: `/metrics` counters).
    pub counted: Counts,
    /// Events of one minute not yet added to the buckets: in-order streams
    /// add here (two increments) and touch the rings once per minute.
    pending: Option<(i64, Counts)>,
    /// The last minute whose weekly exclusions were looked up, and the answer.
    weekly_cache: (i64, bool),
    /// What failed recently: evidence for notifications (bounded).
    pub failures: failures::Failures,
}

impl SloState {
    fn new(slo: Arc<Slo>) -> SloState {
        let series = Series::new(&slo.window, &slo.budgeting);
        let keep_days = slo.window.longest().0.div_ceil(1440) + 1;
        SloState {
            series,
            latency: LatencyDays::new(keep_days),
            dirty: DirtyBuckets::default(),
            counted: Counts::default(),
            pending: None,
            weekly_cache: (i64::MIN, false),
            failures: failures::Failures::default(),
            slo,
        }
    }

    /// Whether an event at `ts_ms` falls in one of the SLO's exclusions.
    /// Weekly slots start and end on whole minutes, so their answer is kept
    /// per minute (a time-zone conversion per event would cost more than
    /// counting it).
    #[inline]
    fn excluded(&mut self, ts_ms: i64) -> bool {
        if self.slo.exclusions.is_empty() {
            return false;
        }
        self.excluded_slow(ts_ms)
    }

    #[inline(never)]
    fn excluded_slow(&mut self, ts_ms: i64) -> bool {
        use crate::spec::model::ExclusionTime;
        let once = self.slo.exclusions.iter().any(|e| matches!(e.when, ExclusionTime::Once { .. }) && e.covers(ts_ms));
        if once {
            return true;
        }
        let minute = ts_ms.div_euclid(MINUTE_MS);
        if self.weekly_cache.0 != minute {
            let weekly = self
                .slo
                .exclusions
                .iter()
                .any(|e| matches!(e.when, ExclusionTime::Weekly { .. }) && e.covers(minute * MINUTE_MS));
            self.weekly_cache = (minute, weekly);
        }
        self.weekly_cache.1
    }

    /// Move the pending minute into the buckets. Returns the events that
    /// were too old for the series to keep.
    fn flush(&mut self, track: bool) -> u64 {
        let Some((minute, c)) = self.pending.take() else { return 0 };
        let dirty = track.then_some(&mut self.dirty);
        if self.series.record_counts(minute, c, dirty) {
            self.counted = self.counted + c;
            0
        } else {
            c.total
        }
    }

    /// Bytes of counting memory held for this SLO (buckets; histograms extra).
    pub fn memory_bytes(&self) -> usize {
        self.series.memory_bytes()
    }
}

/// What the engine saw, for the agent's own telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Events handed to the engine.
    pub events: u64,
    /// Events no SLO counted.
    pub unmatched: u64,
    /// (event, SLO) pairs dropped because the event was older than the SLO keeps.
    pub too_old: u64,
    /// (event, SLO) pairs not counted because the event fell in one of the
    /// SLO's exclusion windows.
    pub excluded: u64,
}

/// Where one SLO's retained data begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub slo: String,
    /// Oldest retained bucket of each ring.
    pub rings: Vec<(RingId, i64)>,
    pub oldest_latency_day: Option<i64>,
}

/// A change to persist: the new value of one bucket of one SLO.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Bucket { slo: String, ring: RingId, bucket: i64, counts: Counts },
    LatencyDay { slo: String, day: i64, histogram: Box<latency::LatencyHistogram> },
}

pub struct Engine {
    slos: Vec<SloState>,
    router: router::Router,
    track_changes: bool,
    pub stats: IngestStats,
    /// Derives the route of events whose hop does not name one (CloudFront:
    /// `/cart/12345` → `/cart/{id}`), for SLOs that filter on the route.
    templater: crate::dims::RouteTemplater,
}

impl Engine {
    /// An engine for a set of SLOs. With `track_changes`, every bucket an
    /// event touches is remembered until [`Engine::drain_changes`].
    pub fn new(set: &SloSet, track_changes: bool) -> Engine {
        let slos = set.slos.iter().cloned().map(SloState::new).collect();
        let mut e = Engine {
            slos,
            router: router::Router::default(),
            track_changes,
            stats: IngestStats::default(),
            templater: crate::dims::RouteTemplater::default(),
        };
        e.index();
        e
    }

    /// Use these route templates (patterns and cap) for events without a route.
    pub fn set_route_templater(&mut self, templater: crate::dims::RouteTemplater) {
        self.templater = templater;
    }

    fn index(&mut self) {
        self.router = router::Router::new(self.slos.iter().map(|s| s.slo.as_ref()));
    }

    pub fn slos(&self) -> impl Iterator<Item = &SloState> {
        self.slos.iter()
    }

    pub fn len(&self) -> usize {
        self.slos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slos.is_empty()
    }

    /// Swap in a new set of SLOs. An SLO keeps its counts when its name and
    /// what it counts ([`definition_key`]) are unchanged; a changed window
    /// carries its buckets over. Returns the names whose counts were reset.
    pub fn reload(&mut self, set: &SloSet) -> Vec<String> {
        self.flush();
        let mut old: HashMap<String, SloState> = self.slos.drain(..).map(|s| (s.slo.name.clone(), s)).collect();
        let mut reset = Vec::new();
        for slo in &set.slos {
            let state = match old.remove(&slo.name) {
                Some(prev) if definition_key(&prev.slo) == definition_key(slo) => {
                    if prev.slo.window.longest() == slo.window.longest() {
                        SloState { slo: slo.clone(), ..prev }
                    } else {
                        let mut fresh = SloState::new(slo.clone());
                        carry_over(&prev, &mut fresh);
                        fresh
                    }
                }
                Some(_) => {
                    reset.push(slo.name.clone());
                    SloState::new(slo.clone())
                }
                None => SloState::new(slo.clone()),
            };
            self.slos.push(state);
        }
        self.index();
        reset
    }

    /// The optional event fields the SLOs read, so decoders can skip the
    /// rest: the client class when a filter names one, the cache result
    /// when a filter or a good criterion does. No SLO reads bytes or
    /// request ids.
    pub fn wanted(&self) -> Wanted {
        let cache = self.router.reads_cache() || self.slos.iter().any(|s| s.slo.indicator.good.cache.is_some());
        Wanted { client: self.router.reads_client(), cache, ..Wanted::NONE }
    }

    /// Count one event for every SLO whose indicator selects it.
    #[inline]
    pub fn observe(&mut self, ev: &RequestEvent<'_>) {
        self.observe_n(ev, 1);
    }

    /// Count `n` identical requests at once: what aggregate sources (CloudWatch
    /// metrics: "1,234 requests, 5 of them 5xx, in this minute") produce.
    #[inline]
    pub fn observe_n(&mut self, ev: &RequestEvent<'_>, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(origin) = ev.origin
            && ev.route.is_empty()
            && !ev.path.is_empty()
            && self.router.reads_route(origin)
        {
            let route = self.templater.route(ev.path);
            return self.observe_routed(&RequestEvent { route: &route, ..*ev }, n);
        }
        self.observe_routed(ev, n);
    }

    #[inline]
    fn observe_routed(&mut self, ev: &RequestEvent<'_>, n: u64) {
        self.stats.events += n;
        let Some(origin) = ev.origin else {
            self.stats.unmatched += n;
            return;
        };
        let minute = minute_of(ev.ts_ms);
        // The latency's histogram slot and day, once for all SLOs.
        let latency = ev.latency_ms.map(|l| (day_of_minute(minute), hdr::slot_of_ms(l)));
        let mut matched = false;
        let track = self.track_changes;
        let slos = &mut self.slos;
        let stats = &mut self.stats;
        let templater = &mut self.templater;
        // The failing event's route template, worked out once for all SLOs.
        let mut failed_route: Option<String> = None;
        // A synthetic check that failed (no answer, a wrong body, a failed
        // journey step) is bad whatever the SLO counts as good: its status
        // may well be 200.
        let failed_check = origin == Origin::Synthetic
            && !matches!(ev.outcome, crate::event::Outcome::Success | crate::event::Outcome::Unknown);
        self.router.route(origin, ev, |i| {
            matched = true;
            let state = &mut slos[i];
            if state.excluded(ev.ts_ms) {
                stats.excluded += n;
                return;
            }
            let ind = &state.slo.indicator;
            let mut good = ind.good.status.as_ref().is_none_or(|s| s.contains(ev.status))
                && ind.good.latency.as_ref().is_none_or(|l| l.holds(ev.latency_ms))
                && ind.good.cache.as_ref().is_none_or(|c| c.contains(&ev.cache));
            if ind.criteria_are_bad {
                good = !good;
            }
            good &= !failed_check;
            let g = if good { n } else { 0 };
            if !good {
                let route = failed_route.get_or_insert_with(|| failure_route(templater, ev));
                state.failures.record(ev, route, n);
            }
            match &mut state.pending {
                Some((m, c)) if *m == minute => {
                    c.total += n;
                    c.good += g;
                }
                _ => {
                    stats.too_old += state.flush(track);
                    state.pending = Some((minute, Counts { good: g, total: n }));
                }
            }
            if let Some((day, slot)) = latency {
                state.latency.record_slot_n(day, slot, n, track);
            }
        });
        if !matched {
            self.stats.unmatched += n;
        }
    }

    /// Add what another engine of the same SLOs counted (a replay worker's):
    /// buckets, latency days, `counted` and the stats, so that evaluating
    /// the merged engine gives what one engine fed both event streams would
    /// give. The failure evidence is not merged (replay does not report it),
    /// nor are changes tracked.
    pub fn merge_from(&mut self, mut other: Engine) {
        self.flush();
        other.flush();
        for (mine, theirs) in self.slos.iter_mut().zip(&other.slos) {
            assert_eq!(mine.slo.name, theirs.slo.name, "engines merged must count the same SLOs");
            mine.series.merge_from(&theirs.series);
            mine.latency.merge_from(&theirs.latency);
            mine.counted = mine.counted + theirs.counted;
        }
        let (s, o) = (&mut self.stats, other.stats);
        s.events += o.events;
        s.unmatched += o.unmatched;
        s.too_old += o.too_old;
        s.excluded += o.excluded;
    }

    /// Move every SLO's pending minute into its buckets.
    fn flush(&mut self) {
        for s in &mut self.slos {
            self.stats.too_old += s.flush(self.track_changes);
        }
    }

    /// Every bucket and latency day changed since the last call, with its
    /// current value, ready to be written to the store.
    pub fn drain_changes(&mut self) -> Vec<Change> {
        self.flush();
        let mut out = Vec::new();
        for s in &mut self.slos {
            for (ring, bucket) in s.dirty.drain() {
                if let Some(counts) = s.series.bucket(ring, bucket) {
                    out.push(Change::Bucket { slo: s.slo.name.clone(), ring, bucket, counts });
                }
            }
            for day in s.latency.drain_dirty() {
                if let Some(h) = s.latency.day(day) {
                    out.push(Change::LatencyDay { slo: s.slo.name.clone(), day, histogram: Box::new(h.clone()) });
                }
            }
        }
        out
    }

    /// Load a persisted bucket. Unknown SLOs and buckets the SLO no longer
    /// keeps are ignored (false).
    pub fn restore_bucket(&mut self, slo: &str, ring: RingId, bucket: i64, counts: Counts) -> bool {
        self.flush();
        match self.slos.iter_mut().find(|s| s.slo.name == slo) {
            Some(s) => s.series.restore(ring, bucket, counts),
            None => false,
        }
    }

    pub fn restore_latency_day(&mut self, slo: &str, day: i64, h: latency::LatencyHistogram) {
        if let Some(s) = self.slos.iter_mut().find(|s| s.slo.name == slo) {
            s.latency.restore(day, h);
        }
    }

    /// Where each SLO's retained data begins, for pruning the store.
    pub fn retention(&self) -> Vec<Retention> {
        self.slos
            .iter()
            .map(|s| Retention {
                slo: s.slo.name.clone(),
                rings: s.series.retained_from(),
                oldest_latency_day: s.latency.oldest_day(),
            })
            .collect()
    }

    /// Evaluate every SLO as of `at_ms` (event time).
    pub fn evaluate(&mut self, at_ms: i64) -> Vec<SloStatus> {
        self.flush();
        self.slos.iter_mut().map(|s| evaluate_one(s, at_ms)).collect()
    }

    /// What failed for one SLO in the `minutes` before `at_ms` (at most
    /// six hours), with the top `top` values per dimension.
    pub fn evidence(&self, name: &str, at_ms: i64, minutes: i64, top: usize) -> Option<failures::Evidence> {
        self.slos.iter().find(|s| s.slo.name == name).map(|s| s.failures.evidence(at_ms, minutes, top))
    }

    /// What one SLO counted in the minutes `[first_minute, last_minute]`
    /// (after the last [`Engine::evaluate`], which adds pending counts).
    pub fn window_stats(&mut self, name: &str, first_minute: i64, last_minute: i64) -> Option<WindowStats> {
        let s = self.slos.iter_mut().find(|s| s.slo.name == name)?;
        Some(s.series.window(first_minute, last_minute))
    }

    /// Evaluate one SLO by name.
    pub fn evaluate_slo(&mut self, name: &str, at_ms: i64) -> Option<SloStatus> {
        self.flush();
        self.slos.iter_mut().find(|s| s.slo.name == name).map(|s| evaluate_one(s, at_ms))
    }
}

impl EventSink for Engine {
    #[inline]
    fn event(&mut self, event: &RequestEvent<'_>) {
        self.observe(event)
    }

    fn events(&mut self, event: &RequestEvent<'_>, n: u64) {
        self.observe_n(event, n)
    }
}

/// The route a failing event is reported under: the hop's own, else the
/// path's template.
#[inline(never)]
fn failure_route(templater: &mut crate::dims::RouteTemplater, ev: &RequestEvent<'_>) -> String {
    if !ev.route.is_empty() {
        ev.route.to_string()
    } else if !ev.hop.is_empty() {
        // Synthetic events: the hop or journey step that failed.
        ev.hop.to_string()
    } else if ev.path.is_empty() {
        String::new()
    } else {
        templater.route(ev.path)
    }
}

/// The minute of a timestamp. Unsigned division by a constant is a
/// multiply and a shift; the signed, Euclidean one is kept for times before
/// 1970.
#[inline]
fn minute_of(ts_ms: i64) -> i64 {
    if ts_ms >= 0 { (ts_ms as u64 / MINUTE_MS as u64) as i64 } else { ts_ms.div_euclid(MINUTE_MS) }
}

#[inline]
fn day_of_minute(minute: i64) -> i64 {
    if minute >= 0 { (minute as u64 / 1440) as i64 } else { minute.div_euclid(1440) }
}

/// What decides which events an SLO counts and how: if this changes, old
/// counts mean something else and are not kept.
pub fn definition_key(slo: &Slo) -> String {
    let i = &slo.indicator;
    let globs = |g: &Option<Vec<crate::spec::glob::Glob>>| {
        g.as_ref().map(|v| v.iter().map(|g| g.as_str()).collect::<Vec<_>>().join("|")).unwrap_or_default()
    };
    let f = &i.filter;
    let mut key = format!(
        "v1;src={};svc={};host={};path={};method={};edge={};fstatus={};status={};latency={};bad={};budget={:?}",
        i.source,
        globs(&f.service),
        globs(&f.host),
        globs(&f.path),
        f.method.as_ref().map(|m| m.join("|")).unwrap_or_default(),
        globs(&f.edge_location),
        f.status.as_ref().map(|s| s.as_str()).unwrap_or(""),
        i.good.status.as_ref().map(|s| s.as_str()).unwrap_or(""),
        i.good.latency.map(|l| format!("{}{}", l.op.as_str(), l.threshold_ms)).unwrap_or_default(),
        i.criteria_are_bad,
        slo.budgeting,
    );
    // Filters added later are appended only when used, so the keys of
    // SLOs that do not use them (and their stored counts) stay as they were.
    let names = |v: &mut dyn Iterator<Item = &'static str>| v.collect::<Vec<_>>().join("|");
    if let Some(r) = &f.region {
        key += &format!(";region={}", names(&mut r.iter().map(|r| r.as_str())));
    }
    if let Some(c) = &f.client {
        key += &format!(";client={}", names(&mut c.iter().map(|c| c.as_str())));
    }
    if let Some(o) = &f.outcome {
        key += &format!(";outcome={}", names(&mut o.iter().map(|o| o.as_str())));
    }
    if f.route.is_some() {
        key += &format!(";route={}", globs(&f.route));
    }
    if let Some(c) = &f.cache {
        key += &format!(";fcache={}", names(&mut c.iter().map(|c| c.as_str())));
    }
    if let Some(c) = &i.good.cache {
        key += &format!(";cache={}", names(&mut c.iter().map(|c| c.as_str())));
    }
    key
}

fn carry_over(prev: &SloState, fresh: &mut SloState) {
    for (ring, from) in prev.series.retained_from() {
        let mut b = from;
        while let Some(c) = prev.series.bucket(ring, b) {
            if c.total > 0 {
                fresh.series.restore(ring, b, c);
            }
            b += 1;
        }
    }
    let keep = fresh.slo.window.longest().0.div_ceil(1440) + 1;
    fresh.counted = prev.counted;
    fresh.latency = prev.latency.clone();
    fresh.latency.set_keep_days(keep);
}

/// The first minute of the SLO window that ends with the minute of `at_ms`.
pub fn window_first_minute(window: &SloWindow, at_ms: i64) -> i64 {
    let last = at_ms.div_euclid(MINUTE_MS);
    match window {
        SloWindow::Rolling(m) => last - m.0 as i64 + 1,
        SloWindow::Calendar { unit, timezone, anchor: Some(anchor), .. } => {
            let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else { return last };
            match anchored_window_start(*unit, timezone, *anchor, ts) {
                Some(start) => start.as_millisecond().div_euclid(MINUTE_MS),
                None => last,
            }
        }
        SloWindow::Calendar { unit, timezone, anchor: None, .. } => {
            let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else { return last };
            let zdt = ts.to_zoned(timezone.clone());
            let start = match unit {
                CalendarUnit::Month => zdt.first_of_month().and_then(|z| z.start_of_day()),
                CalendarUnit::Week => {
                    let back = zdt.weekday().to_monday_zero_offset() as i64;
                    zdt.start_of_day().and_then(|z| z.checked_sub(jiff::Span::new().days(back)))
                }
            };
            match start {
                Ok(z) => z.timestamp().as_millisecond().div_euclid(MINUTE_MS),
                Err(_) => last,
            }
        }
    }
}

/// The start of the anchored calendar window holding `at`: the latest of
/// `anchor + k weeks` (or months), in local time, that is not after `at`.
/// `None` when the dates leave what jiff represents.
fn anchored_window_start(
    unit: CalendarUnit,
    tz: &jiff::tz::TimeZone,
    anchor: jiff::civil::DateTime,
    at: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let start_of = |k: i64| -> Option<jiff::Timestamp> {
        let span = match unit {
            CalendarUnit::Week => jiff::Span::new().try_weeks(k).ok()?,
            CalendarUnit::Month => jiff::Span::new().try_months(k).ok()?,
        };
        Some(anchor.checked_add(span).ok()?.to_zoned(tz.clone()).ok()?.timestamp())
    };
    let local = at.to_zoned(tz.clone()).datetime();
    // A first guess from the calendar, then at most a step or two either way
    // (time-of-day and daylight saving move the boundary by less than a unit).
    let mut k = match unit {
        CalendarUnit::Week => i64::from(anchor.date().until(local.date()).ok()?.get_days()).div_euclid(7),
        CalendarUnit::Month => {
            (i64::from(local.year()) - i64::from(anchor.year())) * 12 + i64::from(local.month() - anchor.month())
        }
    };
    for _ in 0..4 {
        if start_of(k)? > at {
            k -= 1;
        } else if start_of(k + 1)? <= at {
            k += 1;
        } else {
            return start_of(k);
        }
    }
    None
}

/// One burn-rate condition as evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConditionStatus {
    pub rule: BurnRateRule,
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    /// Events in the long window (for the low-traffic guard).
    pub long_events: u64,
    pub firing: bool,
}

/// Everything known about one SLO at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct SloStatus {
    pub slo: Arc<Slo>,
    pub at_ms: i64,
    pub window_start_ms: i64,
    pub window: WindowStats,
    pub sli: Option<f64>,
    /// Fraction of the error budget spent (may exceed 1).
    pub budget_consumed: f64,
    pub burn_rates: Vec<(Minutes, Option<f64>)>,
    pub latency: Option<Percentiles>,
    pub conditions: Vec<ConditionStatus>,
    /// Bad events of the last hour by route, edge location and status code
    /// (top [`TOP_FAILURES`] each; no samples).
    pub top_failures: Arc<failures::Evidence>,
}

/// Values per dimension in [`SloStatus::top_failures`].
pub const TOP_FAILURES: usize = 5;

impl SloStatus {
    pub fn budget_remaining(&self) -> f64 {
        series::clean(1.0 - self.budget_consumed)
    }

    pub fn firing(&self) -> impl Iterator<Item = &ConditionStatus> {
        self.conditions.iter().filter(|c| c.firing)
    }
}

fn evaluate_one(state: &mut SloState, at_ms: i64) -> SloStatus {
    let slo = state.slo.clone();
    let last = at_ms.div_euclid(MINUTE_MS);
    let first = window_first_minute(&slo.window, at_ms);
    let window = state.series.window(first, last);
    let budget = slo.error_budget_ratio();
    let sli = window.sli();
    let budget_consumed = sli.map(|s| series::clean((1.0 - s) / budget)).unwrap_or(0.0);
    let mut burn_cache: Vec<(Minutes, Option<f64>)> = Vec::with_capacity(ALERT_WINDOWS.len());
    let mut burn = |w: Minutes, series: &mut Series| -> Option<f64> {
        if let Some((_, b)) = burn_cache.iter().find(|(m, _)| *m == w) {
            return *b;
        }
        let b = series.window(last - w.0 as i64 + 1, last).burn_rate(budget);
        burn_cache.push((w, b));
        b
    };
    let burn_rates: Vec<(Minutes, Option<f64>)> =
        ALERT_WINDOWS.iter().map(|&w| (w, burn(w, &mut state.series))).collect();
    let conditions = slo
        .alerting
        .rules
        .iter()
        .map(|&rule| {
            let long_burn_rate = burn(rule.long_window, &mut state.series);
            let short_burn_rate = burn(rule.short_window, &mut state.series);
            let over = |b: Option<f64>| b.is_some_and(|b| b > rule.burn_rate_threshold);
            let long_events = state.series.window(last - rule.long_window.0 as i64 + 1, last).events.total;
            ConditionStatus {
                rule,
                long_burn_rate,
                short_burn_rate,
                long_events,
                firing: over(long_burn_rate) && over(short_burn_rate),
            }
        })
        .collect();
    let latency = state.latency.percentiles(first * MINUTE_MS, last * MINUTE_MS + MINUTE_MS - 1);
    SloStatus {
        slo,
        at_ms,
        window_start_ms: first * MINUTE_MS,
        window,
        sli,
        budget_consumed,
        burn_rates,
        latency,
        conditions,
        top_failures: state.failures.last_hour(at_ms, TOP_FAILURES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;

    const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z, a Friday

    fn spec(name: &str, window: &str, path: &str) -> String {
        format!(
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: s\n  objective: 99\n  window: {window}\n  indicator:\n    source: ndjson\n    filter: {{path: \"{path}\"}}\n    good: {{status: \"< 500\"}}\n"
        )
    }

    fn ev(ts_ms: i64, path: &str, status: u16) -> RequestEvent<'_> {
        RequestEvent { ts_ms, origin: Some(Origin::Ndjson), path, status, latency_ms: Some(5.0), ..Default::default() }
    }

    fn minute_of_rfc3339(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond().div_euclid(MINUTE_MS)
    }

    use crate::event::Origin;

    /// OpenSLO `startTime` (native `start`): windows repeat every week or
    /// month from a local date and time.
    #[test]
    fn anchored_calendar_windows_repeat_from_their_start() {
        let spec = |window: &str| {
            format!(
                "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: a}}\nspec:\n  service: s\n  objective: 99\n  window: {window}\n  indicator: {{source: ndjson, good: {{status: \"< 500\"}}}}\n"
            )
        };
        let first = |window: &str, at: &str| {
            let set = load_str("a.yaml", &spec(window)).unwrap_or_else(|d| panic!("{d:?}"));
            window_first_minute(&set.slos[0].window, minute_of_rfc3339(at) * MINUTE_MS)
        };
        // Every Saturday at noon in New York (2022-01-01 was a Saturday).
        let weekly = "{calendar: week, timezone: America/New_York, start: \"2022-01-01 12:00:00\"}";
        // Friday 2026-11-20 12:00Z: the window began Saturday 2026-11-14 12:00 EST (17:00Z).
        assert_eq!(first(weekly, "2026-11-20T12:00:00Z"), minute_of_rfc3339("2026-11-14T17:00:00Z"));
        // Exactly at a start, and a minute before it.
        assert_eq!(first(weekly, "2026-11-21T17:00:00Z"), minute_of_rfc3339("2026-11-21T17:00:00Z"));
        assert_eq!(first(weekly, "2026-11-21T16:59:00Z"), minute_of_rfc3339("2026-11-14T17:00:00Z"));
        // Across daylight saving: noon EDT is 16:00Z (week of Saturday 2026-10-31).
        assert_eq!(first(weekly, "2026-11-01T12:00:00Z"), minute_of_rfc3339("2026-10-31T16:00:00Z"));
        // Before the start date, the windows run backwards from it.
        assert_eq!(first(weekly, "2021-12-30T00:00:00Z"), minute_of_rfc3339("2021-12-25T17:00:00Z"));

        // Monthly on the 31st at 09:30 UTC: the last day of shorter months.
        let monthly = "{calendar: month, start: \"2024-01-31 09:30:00\"}";
        assert_eq!(first(monthly, "2026-03-10T00:00:00Z"), minute_of_rfc3339("2026-02-28T09:30:00Z"));
        assert_eq!(first(monthly, "2026-03-31T09:29:00Z"), minute_of_rfc3339("2026-02-28T09:30:00Z"));
        assert_eq!(first(monthly, "2026-03-31T09:30:00Z"), minute_of_rfc3339("2026-03-31T09:30:00Z"));
        // A start at the default (midnight on the 1st) is the plain calendar month.
        let set = load_str("a.yaml", &spec("{calendar: month, start: \"2024-01-01 00:00:00\"}")).unwrap();
        assert!(matches!(set.slos[0].window, SloWindow::Calendar { anchor: None, .. }));
    }

    #[test]
    fn calendar_windows_start_at_midnight_of_the_month_or_monday_in_their_zone() {
        let set = load_str(
            "c.yaml",
            "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: m}\nspec:\n  service: s\n  objective: 99\n  window: {calendar: month, timezone: Europe/Berlin}\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: w}\nspec:\n  service: s\n  objective: 99\n  window: {calendar: week, timezone: Asia/Kolkata}\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
        )
        .unwrap();
        let at = T0 + 12 * 3_600_000; // Friday 2026-11-20 12:00Z
        // November 1st, 00:00 in Berlin is 2026-10-31T23:00Z.
        assert_eq!(window_first_minute(&set.slos[0].window, at), minute_of_rfc3339("2026-10-31T23:00:00Z"));
        // Monday 2026-11-16 00:00 in Kolkata (+05:30) is 2026-11-15T18:30Z.
        assert_eq!(window_first_minute(&set.slos[1].window, at), minute_of_rfc3339("2026-11-15T18:30:00Z"));
        // Events before the month's start do not count; events after do.
        let mut e = Engine::new(&set, false);
        e.observe(&ev(minute_of_rfc3339("2026-10-31T22:59:00Z") * MINUTE_MS, "/", 500));
        e.observe(&ev(minute_of_rfc3339("2026-10-31T23:00:00Z") * MINUTE_MS, "/", 200));
        let s = e.evaluate(at);
        assert_eq!(s[0].window.events.total, 1);
        assert_eq!(s[0].window.events.good, 1);
    }

    /// "Cache hit ratio ≥ 90 % on /static/*" is an SLO like any other, and
    /// the cache result is a filter too.
    #[test]
    fn the_cache_result_is_a_good_criterion_and_a_filter() {
        use crate::event::CacheResult;
        let text = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: static-hits}\nspec:\n  service: s\n  objective: 90\n  window: 7d\n  indicator:\n    source: cloudfront\n    filter: {path: \"/static/*\"}\n    good: {cache: hit}\n---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: misses-fast}\nspec:\n  service: s\n  objective: 99\n  window: 7d\n  indicator:\n    source: cloudfront\n    filter: {cache: [miss, error]}\n    good: {status: \"< 500\", latency: \"<= 500ms\"}\n";
        let set = load_str("c.yaml", text).unwrap_or_else(|d| panic!("{d:?}"));
        let mut e = Engine::new(&set, false);
        assert!(e.wanted().cache, "decoders must fill the cache result");
        let cf = |path, cache, latency| RequestEvent {
            ts_ms: T0,
            origin: Some(Origin::CloudFront),
            path,
            status: 200,
            latency_ms: Some(latency),
            cache,
            ..Default::default()
        };
        for _ in 0..9 {
            e.observe(&cf("/static/app.js", CacheResult::Hit, 5.0));
        }
        e.observe(&cf("/static/app.css", CacheResult::Miss, 900.0));
        e.observe(&cf("/api/cart", CacheResult::Miss, 100.0));
        e.observe(&cf("/", CacheResult::Hit, 1.0));
        let s = e.evaluate(T0 + MINUTE_MS);
        assert_eq!((s[0].window.events.good, s[0].window.events.total), (9, 10));
        assert_eq!((s[1].window.events.good, s[1].window.events.total), (1, 2));
        // A changed cache criterion is another indicator: its counts start afresh.
        let other = text.replace("good: {cache: hit}", "good: {cache: [hit, miss]}");
        let set2 = load_str("c.yaml", &other).unwrap();
        assert_ne!(definition_key(&set.slos[0]), definition_key(&set2.slos[0]));
        // Unknown names are positioned errors.
        let bad = text.replace("good: {cache: hit}", "good: {cache: hits}");
        let d = load_str("c.yaml", &bad).unwrap_err();
        assert!(
            d.iter().any(|d| d.line == 11 && d.message.contains("unknown cache result `hits`; did you mean `hit`?")),
            "{d:?}"
        );
    }

    #[test]
    fn counting_n_requests_at_once_equals_counting_them_one_by_one() {
        let set = load_str("a.yaml", &spec("a", "30d", "/*")).unwrap();
        let mut one = Engine::new(&set, true);
        let mut many = Engine::new(&set, true);
        for (m, status, n) in [(0, 200, 1000u64), (0, 503, 7), (1, 200, 3), (90, 429, 2), (90, 200, 0)] {
            let e = ev(T0 + m * MINUTE_MS, "/x", status);
            for _ in 0..n {
                one.observe(&e);
            }
            many.events(&e, n);
        }
        let at = T0 + 100 * MINUTE_MS;
        assert_eq!(one.evaluate(at), many.evaluate(at));
        assert_eq!(one.stats.events, 1012);
        assert_eq!(many.stats.events, 1012);
        assert_eq!(one.drain_changes().len(), many.drain_changes().len());
    }

    /// Engines fed parts of a stream, merged, evaluate like one engine fed
    /// all of it: how replay's workers are combined.
    #[test]
    fn merged_engines_evaluate_like_one_engine_fed_everything() {
        let set = load_str("a.yaml", &format!("{}---\n{}", spec("a", "30d", "/*"), spec("b", "1d", "/api/*"))).unwrap();
        let mut all = Engine::new(&set, false);
        let mut parts = [Engine::new(&set, false), Engine::new(&set, false), Engine::new(&set, false)];
        // 40 days, so the 1d SLO drops what the merged head leaves behind.
        for m in (0..40 * 1440).step_by(7) {
            let e =
                ev(T0 + m * MINUTE_MS, if m % 3 == 0 { "/api/x" } else { "/x" }, if m % 11 == 0 { 503 } else { 200 });
            all.observe(&e);
            parts[(m as usize / 1000) % 3].observe(&e);
        }
        let [mut merged, b, c] = parts;
        merged.merge_from(b);
        merged.merge_from(c);
        let at = T0 + 40 * 1440 * MINUTE_MS - 1;
        // What a report shows (the failure evidence is not merged).
        let report = |e: &mut Engine| e.evaluate(at).iter().map(report::SloReport::from_status).collect::<Vec<_>>();
        assert_eq!(report(&mut merged), report(&mut all));
        assert_eq!(merged.stats.events, all.stats.events);
    }

    #[test]
    fn events_without_a_route_get_their_path_templated_for_route_filters() {
        let text = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: cart}\nspec:\n  service: s\n  objective: 99\n  window: 7d\n  indicator:\n    source: ndjson\n    filter: {route: \"/cart/{id}\"}\n    good: {status: \"< 500\"}\n";
        let set = load_str("r.yaml", text).unwrap();
        let mut e = Engine::new(&set, false);
        e.set_route_templater(crate::dims::RouteTemplater::new(crate::dims::RouteTemplater::default_patterns(), 2));
        e.observe(&ev(T0, "/cart/12345", 200));
        e.observe(&ev(T0, "/cart/777", 503));
        // A route the hop named is used as it is.
        e.observe(&RequestEvent { route: "/cart/{id}", ..ev(T0, "/elsewhere", 200) });
        e.observe(&ev(T0, "/shop/1", 200)); // the second template: /shop/{id}
        // Beyond the cap of 2 templates, new ones fold into `other`; known ones still count.
        e.observe(&ev(T0, "/a/b", 200));
        e.observe(&ev(T0, "/cart/9", 200));
        let s = &e.evaluate(T0 + 60_000)[0];
        assert_eq!((s.window.events.total, s.window.events.good), (4, 3));
        assert_eq!(e.templater.len(), 2);
    }

    #[test]
    fn a_full_outage_pages_and_a_quiet_window_does_not() {
        let set = load_str("a.yaml", &spec("a", "30d", "/*")).unwrap();
        let mut e = Engine::new(&set, false);
        // A healthy day, then ten minutes of nothing but errors.
        for m in 0..1440 {
            e.observe(&ev(T0 + m * MINUTE_MS, "/x", 200));
        }
        for m in 1440..1450 {
            e.observe(&ev(T0 + m * MINUTE_MS, "/x", 503));
        }
        let s = &e.evaluate(T0 + 1450 * MINUTE_MS - 1)[0];
        let page_1h = s.conditions.iter().find(|c| c.rule.long_window == Minutes(60)).unwrap();
        assert_eq!(page_1h.rule.burn_rate_threshold, 14.4);
        assert!(page_1h.firing, "{page_1h:?}");
        // 5m window: all bad → burn = 1 / 0.01 = 100.
        assert!((page_1h.short_burn_rate.unwrap() - 100.0).abs() < 1e-9, "{page_1h:?}");
        // An hour later with no traffic at all: the short window is empty, nothing fires.
        let s = &e.evaluate(T0 + 1510 * MINUTE_MS - 1)[0];
        assert!(s.conditions.iter().all(|c| !c.firing));
        assert_eq!(s.burn_rates[0], (Minutes(5), None));
    }

    #[test]
    fn reload_keeps_counts_unless_what_is_counted_changes() {
        let mut e = Engine::new(&load_str("a.yaml", &spec("a", "28d", "/api/*")).unwrap(), true);
        for m in 0..100 {
            e.observe(&ev(T0 + m * MINUTE_MS, "/api/x", if m % 10 == 0 { 500 } else { 200 }));
        }
        let at = T0 + 100 * MINUTE_MS - 1;
        let before = e.evaluate(at)[0].window;
        // A new window (and so a new ring shape): counts carried over.
        assert!(e.reload(&load_str("a.yaml", &spec("a", "7d", "/api/*")).unwrap()).is_empty());
        assert_eq!(e.evaluate(at)[0].window, before);
        assert_eq!(e.evaluate(at)[0].latency.map(|p| p.p50), Some(5.0));
        // A new filter: counted afresh.
        assert_eq!(e.reload(&load_str("a.yaml", &spec("a", "7d", "/other/*")).unwrap()), vec!["a".to_string()]);
        assert_eq!(e.evaluate(at)[0].window.events.total, 0);
    }

    #[test]
    fn pending_minutes_reach_the_buckets_before_every_read() {
        let mut e = Engine::new(&load_str("a.yaml", &spec("a", "1d", "/*")).unwrap(), true);
        e.observe(&ev(T0, "/a", 200));
        e.observe(&ev(T0 + 1000, "/a", 500));
        // Both events are still pending in the same minute: draining must see them.
        let changes = e.drain_changes();
        assert!(
            changes.iter().any(|c| matches!(c, Change::Bucket { counts, .. } if counts.total == 2 && counts.good == 1))
        );
        assert_eq!(e.slos().next().unwrap().counted, Counts { good: 1, total: 2 });
        // An event too old for the series is counted as such.
        e.observe(&ev(T0 - 10 * 86_400_000, "/a", 200));
        e.evaluate(T0);
        assert_eq!(e.stats.too_old, 1);
    }
}
