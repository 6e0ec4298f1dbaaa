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

/// One SLO of the engine: its spec, and the counter that counts for it.
#[derive(Debug, Clone)]
pub struct SloState {
    pub slo: Arc<Slo>,
    counter: usize,
}

/// An SLO as the engine's users see it: the spec and what its counter
/// counted since it was created (monotonic: `/metrics` counters).
#[derive(Debug, Clone, Copy)]
pub struct SloRef<'a> {
    pub slo: &'a Arc<Slo>,
    pub counted: Counts,
}

/// SLOs that select the same events: the same source, filter and
/// exclusions. The filter is evaluated once per event for all of them, and
/// the latency histogram (which does not depend on any threshold) is kept
/// once.
#[derive(Debug, Clone)]
struct FilterGroup {
    /// The first member: the group's source, filter and exclusions.
    slo: Arc<Slo>,
    latency: LatencyDays,
    /// The group's counters: one per distinct way of judging its events.
    counters: Vec<usize>,
    /// How many SLOs the group serves (statistics count (event, SLO) pairs).
    members: u64,
    /// The last minute whose weekly exclusions were looked up, and the answer.
    weekly_cache: (i64, bool),
}

impl FilterGroup {
    fn new(slo: Arc<Slo>) -> FilterGroup {
        FilterGroup {
            latency: LatencyDays::new(keep_days(&slo)),
            slo,
            counters: Vec::new(),
            members: 0,
            weekly_cache: (i64::MIN, false),
        }
    }

    fn selects_like(&self, slo: &Slo) -> bool {
        let (a, b) = (&self.slo.indicator, &slo.indicator);
        a.source == b.source
            && a.filter == b.filter
            && self.slo.exclusions.len() == slo.exclusions.len()
            && self.slo.exclusions.iter().zip(&slo.exclusions).all(|(x, y)| x.when == y.when)
    }

    /// Whether an event at `ts_ms` falls in one of the group's exclusions.
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
}

/// SLOs that also judge those events the same way (the same
/// [`definition_key`]): they differ only in objective, window length,
/// alerting or names, so their good and total counts are the same and are
/// kept once.
#[derive(Debug, Clone)]
struct Counter {
    /// [`definition_key`] of the members.
    key: String,
    filter: usize,
    /// The first member: the counter's good criteria and budgeting.
    slo: Arc<Slo>,
    /// The longest window of the members, which the buckets cover.
    longest: Minutes,
    series: Series,
    dirty: DirtyBuckets,
    counted: Counts,
    /// Events of one minute not yet added to the buckets: in-order streams
    /// add here (two increments) and touch the rings once per minute.
    pending: Option<(i64, Counts)>,
    /// What failed recently: evidence for notifications (bounded).
    failures: failures::Failures,
    /// The SLOs counted here (indexes into the engine's SLOs).
    members: Vec<usize>,
}

impl Counter {
    fn new(key: String, filter: usize, slo: Arc<Slo>) -> Counter {
        Counter {
            key,
            filter,
            longest: slo.window.longest(),
            series: Series::new(&slo.window, &slo.budgeting),
            dirty: DirtyBuckets::default(),
            counted: Counts::default(),
            pending: None,
            failures: failures::Failures::default(),
            members: Vec::new(),
            slo,
        }
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

    /// (event, SLO) pairs of `events` events counted here.
    fn pairs(&self, events: u64) -> u64 {
        events.saturating_mul(self.members.len() as u64)
    }
}

/// Days of latency histograms an SLO's window needs.
fn keep_days(slo: &Slo) -> u32 {
    slo.window.longest().0.div_ceil(1440) + 1
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
///
/// SLOs that share a counter (or a filter's latency histograms) are
/// persisted once, under the name of the counter's first SLO, its *owner*;
/// the others load the owner's rows at start. When the owner changes (it
/// was removed, renamed or redefined), everything the counter holds is
/// written again under the new owner's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Bucket { slo: String, ring: RingId, bucket: i64, counts: Counts },
    LatencyDay { slo: String, day: i64, histogram: Arc<latency::LatencyHistogram> },
}

/// How much memory the engine's counting state takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineMemory {
    pub slos: usize,
    /// Distinct filters (source, filter, exclusions).
    pub filters: usize,
    /// Distinct counters (filter and good criteria).
    pub counters: usize,
    /// Bytes of buckets held by the counters.
    pub bucket_bytes: usize,
    /// Bytes of latency histograms held by the filters.
    pub latency_bytes: usize,
}

pub struct Engine {
    slos: Vec<SloState>,
    /// SLO name → index into `slos`.
    names: HashMap<String, usize>,
    filters: Vec<FilterGroup>,
    counters: Vec<Counter>,
    /// Routes events to filter groups.
    router: router::Router,
    track_changes: bool,
    /// Whether bad events are broken down for notifications' evidence
    /// (`replay` reports none, and skips the work).
    failure_evidence: bool,
    pub stats: IngestStats,
    /// Derives the route of events whose hop does not name one (CloudFront:
    /// `/cart/12345` → `/cart/{id}`), for SLOs that filter on the route.
    templater: crate::dims::RouteTemplater,
}

/// The SLOs of a set, grouped: (SLOs, filter groups, counters).
fn assemble(set: &SloSet) -> (Vec<SloState>, Vec<FilterGroup>, Vec<Counter>) {
    let mut slos = Vec::with_capacity(set.slos.len());
    let mut filters: Vec<FilterGroup> = Vec::new();
    let mut counters: Vec<Counter> = Vec::new();
    let mut by_key: HashMap<(usize, String), usize> = HashMap::new();
    for (i, slo) in set.slos.iter().enumerate() {
        let f = match filters.iter().position(|g| g.selects_like(slo)) {
            Some(f) => f,
            None => {
                filters.push(FilterGroup::new(slo.clone()));
                filters.len() - 1
            }
        };
        let group = &mut filters[f];
        group.members += 1;
        group.latency.set_keep_days(group.latency.keep_days().max(keep_days(slo)));
        let key = definition_key(slo);
        let c = *by_key.entry((f, key.clone())).or_insert_with(|| {
            counters.push(Counter::new(key, f, slo.clone()));
            group.counters.push(counters.len() - 1);
            counters.len() - 1
        });
        let counter = &mut counters[c];
        if slo.window.longest() > counter.longest {
            counter.longest = slo.window.longest();
            counter.series = Series::new(&slo.window, &slo.budgeting);
        }
        counter.members.push(i);
        slos.push(SloState { slo: slo.clone(), counter: c });
    }
    (slos, filters, counters)
}

impl Engine {
    /// An engine for a set of SLOs. With `track_changes`, every bucket an
    /// event touches is remembered until [`Engine::drain_changes`].
    pub fn new(set: &SloSet, track_changes: bool) -> Engine {
        let (slos, filters, counters) = assemble(set);
        let mut e = Engine {
            slos,
            names: HashMap::new(),
            filters,
            counters,
            router: router::Router::default(),
            track_changes,
            failure_evidence: true,
            stats: IngestStats::default(),
            templater: crate::dims::RouteTemplater::default(),
        };
        e.index();
        e
    }

    /// Keep (the default) or skip the breakdown of bad events that
    /// notifications quote ([`Engine::evidence`], `top_failures`).
    pub fn set_failure_evidence(&mut self, on: bool) {
        self.failure_evidence = on;
    }

    /// Use these route templates (patterns and cap) for events without a route.
    pub fn set_route_templater(&mut self, templater: crate::dims::RouteTemplater) {
        self.templater = templater;
    }

    fn index(&mut self) {
        self.router = router::Router::new(self.filters.iter().map(|g| g.slo.as_ref()));
        self.names = self.slos.iter().enumerate().map(|(i, s)| (s.slo.name.clone(), i)).collect();
    }

    pub fn slos(&self) -> impl Iterator<Item = SloRef<'_>> {
        self.slos.iter().map(|s| SloRef { slo: &s.slo, counted: self.counters[s.counter].counted })
    }

    /// The SLOs in groups counted together (the same events, judged the
    /// same way: their counts are the same), each group's first member first.
    pub fn counted_together(&self) -> Vec<Vec<&Arc<Slo>>> {
        self.counters.iter().map(|c| c.members.iter().map(|&i| &self.slos[i].slo).collect()).collect()
    }

    pub fn len(&self) -> usize {
        self.slos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slos.is_empty()
    }

    /// The counting memory: distinct filters and counters, and their bytes.
    pub fn memory(&self) -> EngineMemory {
        EngineMemory {
            slos: self.slos.len(),
            filters: self.filters.len(),
            counters: self.counters.len(),
            bucket_bytes: self.counters.iter().map(|c| c.series.memory_bytes()).sum(),
            latency_bytes: self.filters.iter().map(|g| g.latency.memory_bytes()).sum(),
        }
    }

    fn counter_of(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|&i| self.slos[i].counter)
    }

    /// Swap in a new set of SLOs. Counts are kept for what is counted the
    /// same way ([`definition_key`]) as before: an SLO keeps its counts when
    /// what it counts is unchanged (a changed window carries its buckets
    /// over), and an SLO that counts exactly what another one already counts
    /// starts with that one's history. Returns the names of SLOs whose
    /// definition changed (their old counts no longer apply).
    pub fn reload(&mut self, set: &SloSet) -> Vec<String> {
        self.flush();
        let old_defs: HashMap<String, String> =
            self.slos.iter().map(|s| (s.slo.name.clone(), self.counters[s.counter].key.clone())).collect();
        let old_owners: Vec<String> = self.counters.iter().map(|c| self.slos[c.members[0]].slo.name.clone()).collect();
        let old_counters = std::mem::take(&mut self.counters);
        let old_filters = std::mem::take(&mut self.filters);
        let (slos, mut filters, mut counters) = assemble(set);
        let reset = set
            .slos
            .iter()
            .filter(|s| old_defs.get(&s.name).is_some_and(|k| *k != definition_key(s)))
            .map(|s| s.name.clone())
            .collect();
        for c in &mut counters {
            let Some(p) = old_counters.iter().position(|o| o.key == c.key) else { continue };
            let prev = &old_counters[p];
            if prev.longest == c.longest {
                c.series = prev.series.clone();
            } else {
                carry_over(&prev.series, &mut c.series);
            }
            c.dirty = prev.dirty.clone();
            c.counted = prev.counted;
            c.failures = prev.failures.clone();
            if old_owners[p] != slos[c.members[0]].slo.name {
                for (ring, bucket, _) in retained_buckets(&c.series) {
                    c.dirty.push(ring, bucket);
                }
            }
        }
        for g in &mut filters {
            let same = old_filters.iter().find(|o| o.selects_like(&g.slo));
            let similar = || {
                old_filters.iter().find(|o| {
                    o.slo.indicator.source == g.slo.indicator.source && o.slo.indicator.filter == g.slo.indicator.filter
                })
            };
            if let Some(prev) = same.or_else(similar) {
                let keep = g.latency.keep_days();
                g.latency = prev.latency.clone();
                g.latency.set_keep_days(keep);
                if prev.slo.name != g.slo.name {
                    g.latency.mark_all_dirty();
                }
            }
        }
        self.slos = slos;
        self.filters = filters;
        self.counters = counters;
        self.index();
        reset
    }

    /// The optional event fields the SLOs read, so decoders can skip the
    /// rest: the client class when a filter names one, the cache result,
    /// the viewer's protocol and TLS version when a filter or a good
    /// criterion does. No SLO reads bytes or request ids.
    pub fn wanted(&self) -> Wanted {
        let good =
            |read: fn(&crate::spec::model::GoodCriteria) -> bool| self.slos.iter().any(|s| read(&s.slo.indicator.good));
        Wanted {
            client: self.router.reads_client(),
            cache: self.router.reads_cache() || good(|g| g.cache.is_some()),
            protocol: self.router.reads_protocol() || good(|g| g.protocol.is_some()),
            tls_version: self.router.reads_tls_version() || good(|g| g.tls_version.is_some()),
            ..Wanted::NONE
        }
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
        let evidence = self.failure_evidence;
        let filters = &mut self.filters;
        let counters = &mut self.counters;
        let stats = &mut self.stats;
        let templater = &mut self.templater;
        // The failing event's route template, worked out once for all SLOs.
        let mut failed_route: Option<String> = None;
        // A synthetic check that failed (no answer, a wrong body, a failed
        // journey step) is bad whatever the SLO counts as good: its status
        // may well be 200.
        let failed_check = origin == Origin::Synthetic
            && !matches!(ev.outcome, crate::event::Outcome::Success | crate::event::Outcome::Unknown);
        self.router.route(origin, ev, |g| {
            matched = true;
            let group = &mut filters[g];
            if group.excluded(ev.ts_ms) {
                stats.excluded += n.saturating_mul(group.members);
                return;
            }
            if let Some((day, slot)) = latency {
                group.latency.record_slot_n(day, slot, n, track);
            }
            for &c in &group.counters {
                let counter = &mut counters[c];
                let ind = &counter.slo.indicator;
                let mut good = ind.good.status.as_ref().is_none_or(|s| s.contains(ev.status))
                    && ind.good.latency.as_ref().is_none_or(|l| l.holds(ev.latency_ms))
                    && ind.good.cache.as_ref().is_none_or(|c| c.contains(&ev.cache))
                    && ind.good.protocol.as_ref().is_none_or(|p| p.contains(&ev.protocol))
                    && ind.good.tls_version.as_ref().is_none_or(|t| t.contains(&ev.tls_version));
                if ind.criteria_are_bad {
                    good = !good;
                }
                good &= !failed_check;
                let g = if good { n } else { 0 };
                if !good && evidence {
                    let route = failed_route.get_or_insert_with(|| failure_route(templater, ev));
                    counter.failures.record(ev, route, n);
                }
                match &mut counter.pending {
                    Some((m, c)) if *m == minute => {
                        c.total += n;
                        c.good += g;
                    }
                    _ => {
                        let dropped = counter.flush(track);
                        stats.too_old += counter.pairs(dropped);
                        counter.pending = Some((minute, Counts { good: g, total: n }));
                    }
                }
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
        assert!(
            self.slos.len() == other.slos.len()
                && self.slos.iter().zip(&other.slos).all(|(a, b)| a.slo.name == b.slo.name),
            "engines merged must count the same SLOs"
        );
        for (mine, theirs) in self.counters.iter_mut().zip(&other.counters) {
            let same_shape = mine.series.merge_from(&theirs.series);
            debug_assert!(same_shape, "engines of the same SLOs have series of the same shape");
            mine.counted = mine.counted + theirs.counted;
        }
        for (mine, theirs) in self.filters.iter_mut().zip(&other.filters) {
            mine.latency.merge_from(&theirs.latency);
        }
        let (s, o) = (&mut self.stats, other.stats);
        s.events += o.events;
        s.unmatched += o.unmatched;
        s.too_old += o.too_old;
        s.excluded += o.excluded;
    }

    /// Move every counter's pending minute into its buckets.
    fn flush(&mut self) {
        for c in &mut self.counters {
            let dropped = c.flush(self.track_changes);
            self.stats.too_old += c.pairs(dropped);
        }
    }

    /// Every bucket and latency day changed since the last call, with its
    /// current value, under its owner's name ([`Change`]), ready to be
    /// written to the store.
    pub fn drain_changes(&mut self) -> Vec<Change> {
        self.flush();
        let mut out = Vec::new();
        let slos = &self.slos;
        for c in &mut self.counters {
            let owner = &slos[c.members[0]].slo.name;
            for (ring, bucket) in c.dirty.drain() {
                if let Some(counts) = c.series.bucket(ring, bucket) {
                    out.push(Change::Bucket { slo: owner.clone(), ring, bucket, counts });
                }
            }
        }
        for g in &mut self.filters {
            for day in g.latency.drain_dirty() {
                if let Some(h) = g.latency.day(day) {
                    let histogram = Arc::new(h.clone());
                    out.push(Change::LatencyDay { slo: g.slo.name.clone(), day, histogram });
                }
            }
        }
        out
    }

    /// Load a persisted bucket. Unknown SLOs and buckets the SLO no longer
    /// keeps are ignored (false). SLOs sharing a counter each stored a copy:
    /// of copies that differ (one SLO was added later, or the state file
    /// predates the sharing), the one that counted more is kept.
    pub fn restore_bucket(&mut self, slo: &str, ring: RingId, bucket: i64, counts: Counts) -> bool {
        let Some(c) = self.counter_of(slo) else { return false };
        let counter = &mut self.counters[c];
        let dropped = counter.flush(self.track_changes);
        self.stats.too_old += counter.pairs(dropped);
        if counter.members.len() > 1
            && let Some(have) = counter.series.bucket(ring, bucket)
            && have.total > counts.total
        {
            return true;
        }
        counter.series.restore(ring, bucket, counts)
    }

    /// Load a persisted latency day; like [`Engine::restore_bucket`], the
    /// fuller of the copies of SLOs that share a filter is kept.
    pub fn restore_latency_day(&mut self, slo: &str, day: i64, h: latency::LatencyHistogram) {
        let Some(c) = self.counter_of(slo) else { return };
        let group = &mut self.filters[self.counters[c].filter];
        if group.members > 1 && group.latency.day(day).is_some_and(|have| have.len() > h.len()) {
            return;
        }
        group.latency.restore(day, h);
    }

    /// Where each SLO's retained data begins, for pruning the store.
    pub fn retention(&self) -> Vec<Retention> {
        self.slos
            .iter()
            .map(|s| {
                let c = &self.counters[s.counter];
                Retention {
                    slo: s.slo.name.clone(),
                    rings: c.series.retained_from(),
                    oldest_latency_day: self.filters[c.filter].latency.oldest_day(),
                }
            })
            .collect()
    }

    /// Evaluate every SLO as of `at_ms` (event time).
    pub fn evaluate(&mut self, at_ms: i64) -> Vec<SloStatus> {
        self.flush();
        // SLOs sharing a filter and a window read the same percentiles.
        let mut percentiles: HashMap<(usize, i64, i64), Option<Percentiles>> = HashMap::new();
        let mut out = Vec::with_capacity(self.slos.len());
        for s in &self.slos {
            let counter = &mut self.counters[s.counter];
            let group = &mut self.filters[counter.filter];
            let first = window_first_minute(&s.slo.window, at_ms);
            let last = at_ms.div_euclid(MINUTE_MS);
            let latency = *percentiles
                .entry((counter.filter, first.div_euclid(1440), last.div_euclid(1440)))
                .or_insert_with(|| group.latency.percentiles(first * MINUTE_MS, last * MINUTE_MS + MINUTE_MS - 1));
            out.push(evaluate_one(&s.slo, counter, latency, first, at_ms));
        }
        out
    }

    /// What failed for one SLO in the `minutes` before `at_ms` (at most
    /// six hours), with the top `top` values per dimension.
    pub fn evidence(&self, name: &str, at_ms: i64, minutes: i64, top: usize) -> Option<failures::Evidence> {
        let c = self.counter_of(name)?;
        Some(self.counters[c].failures.evidence(at_ms, minutes, top))
    }

    /// What one SLO counted in the minutes `[first_minute, last_minute]`
    /// (after the last [`Engine::evaluate`], which adds pending counts).
    pub fn window_stats(&mut self, name: &str, first_minute: i64, last_minute: i64) -> Option<WindowStats> {
        let c = self.counter_of(name)?;
        Some(self.counters[c].series.window(first_minute, last_minute))
    }

    /// Evaluate one SLO by name.
    pub fn evaluate_slo(&mut self, name: &str, at_ms: i64) -> Option<SloStatus> {
        self.flush();
        let s = &self.slos[*self.names.get(name)?];
        let counter = &mut self.counters[s.counter];
        let first = window_first_minute(&s.slo.window, at_ms);
        let last = at_ms.div_euclid(MINUTE_MS);
        let latency =
            self.filters[counter.filter].latency.percentiles(first * MINUTE_MS, last * MINUTE_MS + MINUTE_MS - 1);
        Some(evaluate_one(&s.slo, counter, latency, first, at_ms))
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
    if let Some(p) = &f.protocol {
        key += &format!(";fproto={}", names(&mut p.iter().map(|p| p.as_str())));
    }
    if let Some(t) = &f.tls_version {
        key += &format!(";ftls={}", names(&mut t.iter().map(|t| t.as_str())));
    }
    if let Some(p) = &i.good.protocol {
        key += &format!(";proto={}", names(&mut p.iter().map(|p| p.as_str())));
    }
    if let Some(t) = &i.good.tls_version {
        key += &format!(";tls={}", names(&mut t.iter().map(|t| t.as_str())));
    }
    key
}

/// Every non-empty bucket a series retains, with its counts.
fn retained_buckets(series: &Series) -> Vec<(RingId, i64, Counts)> {
    let mut out = Vec::new();
    for (ring, from) in series.retained_from() {
        let mut b = from;
        while let Some(c) = series.bucket(ring, b) {
            if c.total > 0 {
                out.push((ring, b, c));
            }
            b += 1;
        }
    }
    out
}

/// Copy the buckets of one series into another of a different length. A
/// series that gains 15-minute buckets (its window grew past what the
/// 1-minute buckets cover) gets them summed from the 1-minute ones.
fn carry_over(prev: &Series, fresh: &mut Series) {
    let had_coarse = prev.retained_from().iter().any(|(r, _)| *r == RingId::Coarse);
    let mut coarse: Vec<(i64, Counts)> = Vec::new();
    for (ring, b, c) in retained_buckets(prev) {
        fresh.restore(ring, b, c);
        if ring == RingId::Fine && !had_coarse {
            let q = b.div_euclid(series::COARSE_WIDTH as i64);
            match coarse.last_mut() {
                Some((at, sum)) if *at == q => *sum = *sum + c,
                _ => coarse.push((q, c)),
            }
        }
    }
    for (q, c) in coarse {
        fresh.restore(RingId::Coarse, q, c);
    }
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

/// One SLO's status as of `at_ms`, its window starting at minute `first`
/// ([`window_first_minute`]).
fn evaluate_one(
    slo: &Arc<Slo>,
    state: &mut Counter,
    latency: Option<Percentiles>,
    first: i64,
    at_ms: i64,
) -> SloStatus {
    let slo = slo.clone();
    let last = at_ms.div_euclid(MINUTE_MS);
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

    /// SLOs with the same filter share one filter evaluation and one
    /// latency histogram, and those that also judge events the same way
    /// share their buckets; every SLO still reads exactly what it would
    /// read alone.
    #[test]
    fn slos_sharing_a_filter_share_state_and_answer_as_if_alone() {
        let slo = |name: &str, objective: &str, window: &str, path: &str, good: &str, extra: &str| {
            format!(
                "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: s\n  objective: {objective}\n  window: {window}\n{extra}  indicator:\n    source: ndjson\n    filter: {{path: \"{path}\"}}\n    good: {good}\n"
            )
        };
        let mut text = String::new();
        for (i, objective) in ["99", "99.5", "99.9", "95"].iter().enumerate() {
            let window = ["28d", "7d", "1d", "28d"][i];
            text += &slo(&format!("api-avail-{i}"), objective, window, "/api/*", "{status: \"< 500\"}", "");
            text += &slo(&format!("api-fast-{i}"), objective, window, "/api/*", "{latency: \"<= 40ms\"}", "");
            text += &slo(&format!("static-avail-{i}"), objective, window, "/static/*", "{status: \"< 500\"}", "");
        }
        text += &slo("api-faster", "99", "28d", "/api/*", "{latency: \"<= 10ms\"}", "");
        let excl =
            "  exclusions:\n    - {start: \"2026-11-20T01:00:00Z\", end: \"2026-11-20T02:00:00Z\", reason: deploy}\n";
        text += &slo("api-excluding", "99", "28d", "/api/*", "{status: \"< 500\"}", excl);
        let set = load_str("a.yaml", &text).unwrap_or_else(|d| panic!("{d:?}"));
        let mut shared = Engine::new(&set, true);
        let m = shared.memory();
        assert_eq!((m.slos, m.filters, m.counters), (14, 3, 5), "{m:?}");
        let mut alone: Vec<Engine> = set
            .slos
            .iter()
            .map(|s| Engine::new(&SloSet { slos: vec![s.clone()], ..Default::default() }, true))
            .collect();
        let mut x = 11u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Two days of traffic, some of it late, on both paths and others.
        for k in 0..20_000i64 {
            let late = if rnd() % 50 == 0 { (rnd() % 600) as i64 * MINUTE_MS } else { 0 };
            let ts = T0 + k * 9_000 - late;
            let path = ["/api/cart", "/static/a.css", "/other"][(rnd() % 3) as usize];
            let status = if rnd() % 20 == 0 { 503 } else { 200 };
            let e = RequestEvent { latency_ms: Some((rnd() % 60) as f64 + 0.5), ..ev(ts, path, status) };
            shared.observe(&e);
            for a in &mut alone {
                a.observe(&e);
            }
        }
        let at = T0 + 20_000 * 9_000;
        let all = shared.evaluate(at);
        for (i, a) in alone.iter_mut().enumerate() {
            let mine = a.evaluate(at).remove(0);
            assert_eq!(all[i], mine, "{}", set.slos[i].name);
            assert_eq!(shared.slos().nth(i).unwrap().counted, a.slos().next().unwrap().counted);
        }
        // Shared state is persisted once, under its first SLO's name.
        let changes = shared.drain_changes();
        let named = |name: &str, latency: bool| {
            changes.iter().any(|c| match c {
                Change::Bucket { slo, .. } => !latency && slo == name,
                Change::LatencyDay { slo, .. } => latency && slo == name,
            })
        };
        for owner in ["api-avail-0", "api-fast-0", "static-avail-0", "api-faster", "api-excluding"] {
            assert!(named(owner, false), "{owner}");
        }
        for owner in ["api-avail-0", "static-avail-0", "api-excluding"] {
            assert!(named(owner, true), "{owner}");
        }
        for other in ["api-avail-1", "api-fast-2", "static-avail-3"] {
            assert!(!named(other, false) && !named(other, true), "{other}");
        }
        assert_eq!(shared.stats.too_old, alone.iter().map(|a| a.stats.too_old).sum::<u64>());
        assert_eq!(shared.stats.excluded, alone.iter().map(|a| a.stats.excluded).sum::<u64>());
        assert!(shared.stats.excluded > 0);
    }

    /// An SLO added with the same filter and criteria as an existing one
    /// starts with its history; restoring copies that differ keeps the
    /// fuller one.
    #[test]
    fn an_slo_counting_what_another_counts_shares_its_history() {
        let one = load_str("a.yaml", &spec("a", "1d", "/api/*")).unwrap();
        let mut e = Engine::new(&one, true);
        for m in 0..30 {
            e.observe(&ev(T0 + m * MINUTE_MS, "/api/x", 200));
        }
        let mut two = spec("a", "1d", "/api/*");
        two += &spec("b", "7d", "/api/*");
        let two = load_str("a.yaml", &two).unwrap();
        assert!(e.reload(&two).is_empty());
        let at = T0 + 30 * MINUTE_MS;
        let st = e.evaluate(at);
        assert_eq!((st[0].window.events.total, st[1].window.events.total), (30, 30));
        let mut fresh = Engine::new(&two, false);
        let full = Counts { good: 9, total: 9 };
        let partial = Counts { good: 4, total: 4 };
        let bucket = minute_of(T0);
        assert!(fresh.restore_bucket("a", RingId::Fine, bucket, full));
        assert!(fresh.restore_bucket("b", RingId::Fine, bucket, partial));
        assert_eq!(fresh.window_stats("b", bucket, bucket).unwrap().events, full);
    }

    /// When a shared counter's owner leaves, the next SLO writes all of it
    /// again under its own name, so a restart from the store loses nothing.
    #[test]
    fn a_new_owner_writes_the_shared_history_again() {
        let two = load_str("a.yaml", &(spec("a", "1d", "/api/*") + &spec("b", "1d", "/api/*"))).unwrap();
        let mut e = Engine::new(&two, true);
        for m in 0..30 {
            e.observe(&ev(T0 + m * MINUTE_MS, "/api/x", 200));
        }
        let first = e.drain_changes();
        assert!(
            first
                .iter()
                .all(|c| matches!(c, Change::Bucket { slo, .. } | Change::LatencyDay { slo, .. } if slo == "a"))
        );
        let only_b = load_str("a.yaml", &spec("b", "1d", "/api/*")).unwrap();
        e.reload(&only_b);
        let again = e.drain_changes();
        let buckets = again.iter().filter(|c| matches!(c, Change::Bucket { slo, .. } if slo == "b")).count();
        assert_eq!(buckets, 30);
        assert!(again.iter().any(|c| matches!(c, Change::LatencyDay { slo, .. } if slo == "b")));
        // A restart from b's rows alone sees everything.
        let mut fresh = Engine::new(&only_b, false);
        for c in again {
            match c {
                Change::Bucket { slo, ring, bucket, counts } => {
                    assert!(fresh.restore_bucket(&slo, ring, bucket, counts))
                }
                Change::LatencyDay { slo, day, histogram } => {
                    fresh.restore_latency_day(&slo, day, (*histogram).clone())
                }
            }
        }
        let at = T0 + 30 * MINUTE_MS;
        assert_eq!(fresh.evaluate(at)[0].window.events.total, 30);
        assert_eq!(fresh.evaluate(at)[0].latency, e.evaluate(at)[0].latency);
    }
}
