//! The public status page (`GET /status`, `GET /status.json`;
//! `docs/status-page.md`): the components `status:` lists — services, whose
//! state their SLOs' alerts and exclusion windows decide, and journeys, whose
//! recent runs decide — the incidents that name them, scheduled maintenance
//! (one-off and weekly exclusion windows ahead), and 90 days of minutes per
//! state.
//!
//! **Architecture invariant:** pure (times are passed in, no I/O), and it
//! shows only what `status:` lists: component names, their states, and the
//! incidents' titles and messages — never SLO names, journey or step names,
//! URLs, routes, request ids, client addresses, token names or alert keys.

pub mod config;
pub mod push;
pub mod push_config;
mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alert::{AlertKind, AlertRecord, Phase};
use crate::incident::Incident;
use crate::outage::{Assessment, Verdict};
use crate::sli::SloStatus;
use crate::spec::model::ExclusionTime;
use crate::synthetic::journey::Status as RunStatus;

pub use render::{html, json};

/// Components one page shows at most.
pub const MAX_COMPONENTS: usize = 200;
/// Days of uptime bars.
pub const DAYS: i64 = 90;
const DAY_MS: i64 = 86_400_000;
/// How far ahead one-off maintenance (exclusion windows) is shown.
pub const MAINTENANCE_AHEAD_MS: i64 = 30 * DAY_MS;
/// How far ahead the occurrences of weekly maintenance are shown.
pub const WEEKLY_AHEAD_MS: i64 = 7 * DAY_MS;
/// Scheduled maintenance entries shown at most (the earliest).
pub const MAX_MAINTENANCE: usize = 50;
/// The recent runs of a journey that decide its component's state.
pub const JOURNEY_RUNS: usize = 3;

/// `status:` in agent.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusConfig {
    pub title: String,
    pub components: Vec<ComponentConfig>,
}

/// One component: a display name, the service, and the SLOs that decide
/// its state (empty: every SLO of the service); or a journey, whose runs
/// decide its state.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentConfig {
    pub name: String,
    /// `service:`; for a journey component its journey's `service`
    /// (whose SLOs' exclusion windows put it under maintenance, and whose
    /// incidents it shows).
    pub service: String,
    /// Always empty for a journey component.
    pub slos: Vec<String>,
    /// `journey:`: the journey whose recent runs decide the state.
    pub journey: Option<String>,
}

impl ComponentConfig {
    /// Whether `slo` is one of the component's SLOs.
    pub fn decides(&self, slo: &crate::spec::model::Slo) -> bool {
        if self.slos.is_empty() { slo.service == self.service } else { self.slos.contains(&slo.name) }
    }
}

/// A component's state (Statuspage's vocabulary), best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentState {
    pub const ALL: [ComponentState; 5] = [
        ComponentState::Operational,
        ComponentState::UnderMaintenance,
        ComponentState::DegradedPerformance,
        ComponentState::PartialOutage,
        ComponentState::MajorOutage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Operational => "operational",
            ComponentState::UnderMaintenance => "under_maintenance",
            ComponentState::DegradedPerformance => "degraded_performance",
            ComponentState::PartialOutage => "partial_outage",
            ComponentState::MajorOutage => "major_outage",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ComponentState::Operational => "Operational",
            ComponentState::UnderMaintenance => "Under maintenance",
            ComponentState::DegradedPerformance => "Degraded performance",
            ComponentState::PartialOutage => "Partial outage",
            ComponentState::MajorOutage => "Major outage",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per journey, the outcomes of its recent runs, newest first.
pub type JourneyRuns = BTreeMap<String, Vec<RunStatus>>;

/// The state of one component now (`docs/status-page.md`, "The rule"):
///
/// 1. an exclusion window of one of its SLOs covers now: under maintenance;
/// 2. a journey component: [`journey_state`] of its runs (operational
///    before its first run);
/// 3. the worse of what its SLOs' alerts and its service's outage verdict
///    say: a page alert of one of its SLOs firing is a major outage when
///    every one of its SLOs has a page firing or a firing SLO's budget is
///    spent, a partial outage otherwise; a ticket alert firing is degraded
///    performance; the outage verdict (`outage`, "Is it partial or total?")
///    `total` is a major outage, `partial` a partial outage;
/// 4. otherwise operational (also when none of its SLOs exists).
pub fn component_state(
    c: &ComponentConfig,
    statuses: &[SloStatus],
    alerts: &[AlertRecord],
    journeys: &JourneyRuns,
    outage: &[Assessment],
    now_ms: i64,
) -> ComponentState {
    let by_alerts = alert_state(c, statuses, alerts, journeys, now_ms);
    if c.journey.is_some() || by_alerts == ComponentState::UnderMaintenance {
        return by_alerts;
    }
    let by_verdict = match outage.iter().find(|a| a.service == c.service).map(|a| a.verdict) {
        Some(Verdict::Total) => ComponentState::MajorOutage,
        Some(Verdict::Partial) => ComponentState::PartialOutage,
        _ => ComponentState::Operational,
    };
    by_alerts.max(by_verdict)
}

/// Rules 1 to 3 without the outage verdict.
fn alert_state(
    c: &ComponentConfig,
    statuses: &[SloStatus],
    alerts: &[AlertRecord],
    journeys: &JourneyRuns,
    now_ms: i64,
) -> ComponentState {
    let mine: Vec<&SloStatus> = statuses.iter().filter(|s| c.decides(&s.slo)).collect();
    if mine.iter().any(|s| s.slo.exclusions.iter().any(|e| e.covers(now_ms))) {
        return ComponentState::UnderMaintenance;
    }
    if let Some(j) = &c.journey {
        let runs = journeys.get(j).map_or(&[][..], Vec::as_slice);
        return journey_state(runs).unwrap_or(ComponentState::Operational);
    }
    let firing = |s: &SloStatus, kind: AlertKind| {
        alerts.iter().any(|a| a.kind == kind && a.phase == Phase::Firing && a.slo == s.slo.name)
    };
    let paged: Vec<&&SloStatus> = mine.iter().filter(|s| firing(s, AlertKind::Page)).collect();
    if !paged.is_empty() {
        let every = paged.len() == mine.len();
        let spent = paged.iter().any(|s| s.budget_remaining() <= 0.0);
        return if every || spent { ComponentState::MajorOutage } else { ComponentState::PartialOutage };
    }
    if mine.iter().any(|s| firing(s, AlertKind::Ticket)) {
        return ComponentState::DegradedPerformance;
    }
    ComponentState::Operational
}

/// A journey component's state from its runs' outcomes (newest first), of
/// the last [`JOURNEY_RUNS`] at most: all of them failed (and there are
/// [`JOURNEY_RUNS`]) → major outage; some failed → partial outage; some
/// over a step's latency budget → degraded performance; else operational.
/// `None` before the first run.
pub fn journey_state(runs: &[RunStatus]) -> Option<ComponentState> {
    let last = &runs[..runs.len().min(JOURNEY_RUNS)];
    let failed = last.iter().filter(|s| **s == RunStatus::Failed).count();
    Some(match failed {
        _ if last.is_empty() => return None,
        n if n == JOURNEY_RUNS => ComponentState::MajorOutage,
        0 if last.contains(&RunStatus::Degraded) => ComponentState::DegradedPerformance,
        0 => ComponentState::Operational,
        _ => ComponentState::PartialOutage,
    })
}

/// Whether a component has a state worth counting in its uptime bars: a
/// journey component only once it has run (or while under maintenance).
pub fn counts(c: &ComponentConfig, journeys: &JourneyRuns, state: ComponentState) -> bool {
    match &c.journey {
        Some(j) => state == ComponentState::UnderMaintenance || journeys.get(j).is_some_and(|r| !r.is_empty()),
        None => true,
    }
}

/// One component's state at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentAt {
    /// Its service (a journey component's: the journey's).
    pub service: String,
    pub name: String,
    pub state: ComponentState,
    /// Whether its minute counts in the uptime bars ([`counts`]).
    pub counted: bool,
}

/// Every component's state at `now`, in the configured order.
pub fn component_states(cfg: &StatusConfig, now: &Now) -> Vec<ComponentAt> {
    cfg.components
        .iter()
        .map(|c| {
            let state = component_state(c, now.statuses, now.alerts, now.journeys, now.outage, now.now_ms);
            ComponentAt {
                service: c.service.clone(),
                name: c.name.clone(),
                state,
                counted: counts(c, now.journeys, state),
            }
        })
        .collect()
}

/// Minutes per state of one UTC day, in [`ComponentState::ALL`] order.
pub type DayMinutes = [u32; 5];

/// Per component and UTC day (days since the epoch), the minutes spent in
/// each state: 90 days at most.
#[derive(Debug, Clone, Default)]
pub struct Uptime {
    days: BTreeMap<(String, i64), DayMinutes>,
    /// The last minute counted (ms / 60,000); a minute is counted once.
    last_minute: Option<i64>,
}

impl Uptime {
    /// From stored rows `(component, day, minutes)`.
    pub fn restore(rows: Vec<(String, i64, DayMinutes)>) -> Uptime {
        let mut u = Uptime::default();
        for (c, d, m) in rows {
            u.days.insert((c, d), m);
        }
        u
    }

    /// Count the minute of `now_ms` for each component's state, unless that
    /// minute was counted already; the rows changed, to store.
    pub fn count(&mut self, states: &[(&str, ComponentState)], now_ms: i64) -> Vec<(String, i64, DayMinutes)> {
        let minute = now_ms.div_euclid(60_000);
        if self.last_minute.is_some_and(|m| m >= minute) {
            return Vec::new();
        }
        self.last_minute = Some(minute);
        let day = now_ms.div_euclid(DAY_MS);
        let mut out = Vec::new();
        for (name, state) in states {
            let m = self.days.entry((name.to_string(), day)).or_default();
            m[state.index()] = m[state.index()].saturating_add(1).min(1440);
            out.push((name.to_string(), day, *m));
        }
        out
    }

    /// Forget days before `before_day`; how many.
    pub fn prune(&mut self, before_day: i64) -> usize {
        let n = self.days.len();
        self.days.retain(|(_, d), _| *d >= before_day);
        n - self.days.len()
    }

    /// The component's days from `first` to `last`, in order.
    fn days_of(&self, component: &str, first: i64, last: i64) -> impl Iterator<Item = (i64, &DayMinutes)> {
        self.days.range((component.to_string(), first)..=(component.to_string(), last)).map(|((_, d), m)| (*d, m))
    }
}

/// Everything one rendering of the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub title: String,
    pub updated_at: String,
    /// The worst component state.
    pub overall: ComponentState,
    pub components: Vec<ComponentView>,
    pub incidents: Vec<IncidentView>,
    pub scheduled_maintenance: Vec<MaintenanceView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentView {
    pub name: String,
    pub status: ComponentState,
    /// Of the recorded minutes of the 90 days, those not in a partial or
    /// major outage, in percent; `null` with no minute recorded.
    pub uptime_percent: Option<f64>,
    /// Oldest first: the 90 UTC days ending today.
    pub days: Vec<DayView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayView {
    pub date: String,
    /// The worst state with a minute that day; `null`: no data.
    pub worst: Option<ComponentState>,
    pub minutes: BTreeMap<&'static str, u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub status: crate::incident::Status,
    pub impact: crate::incident::Impact,
    pub components: Vec<String>,
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub updates: Vec<UpdateView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateView {
    pub at: String,
    pub status: crate::incident::Status,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceView {
    /// Display names of the components it applies to.
    pub components: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    /// Started, not ended.
    pub in_progress: bool,
    /// `once` or `weekly`.
    pub recurrence: &'static str,
}

/// The occurrences `(start_ms, end_ms, weekly)` of an exclusion window that
/// end after `now_ms` and start within [`MAINTENANCE_AHEAD_MS`] (one-off)
/// or [`WEEKLY_AHEAD_MS`] (weekly) of it. A weekly slot starts at its local
/// time on its local day and ends its duration later in local clock time
/// (what `Exclusion::covers` counts; an hour more or less across a
/// daylight-saving change).
pub fn occurrences(e: &ExclusionTime, now_ms: i64) -> Vec<(i64, i64, bool)> {
    match e {
        ExclusionTime::Once { start_ms, end_ms } => {
            if *end_ms > now_ms && *start_ms <= now_ms + MAINTENANCE_AHEAD_MS {
                vec![(*start_ms, *end_ms, false)]
            } else {
                Vec::new()
            }
        }
        ExclusionTime::Weekly { weekday, start_minute, duration, timezone, .. } => {
            let Ok(now) = jiff::Timestamp::from_millisecond(now_ms) else { return Vec::new() };
            let today = now.to_zoned(timezone.clone()).date();
            let length_ms = i64::from(duration.0) * 60_000;
            let mut out = Vec::new();
            // A slot may have started up to its (≤ 7-day) length ago: look a week back.
            for k in -8i64..=8 {
                let Ok(d) = today.checked_add(jiff::Span::new().days(k)) else { continue };
                if d.weekday().to_monday_zero_offset() != *weekday as i8 {
                    continue;
                }
                let (h, m) = ((*start_minute / 60) as i8, (*start_minute % 60) as i8);
                let local = d.at(h, m, 0, 0);
                let Ok(start) = local.to_zoned(timezone.clone()) else { continue };
                let start_ms = start.timestamp().as_millisecond();
                // The end in local clock time, as `Exclusion::covers` counts
                // it: across a daylight-saving change the slot lasts an hour
                // more or less than its duration.
                let end_ms = local
                    .checked_add(jiff::Span::new().minutes(i64::from(duration.0)))
                    .ok()
                    .and_then(|end| end.to_zoned(timezone.clone()).ok())
                    .map_or(start_ms + length_ms, |end| end.timestamp().as_millisecond());
                if end_ms > now_ms && start_ms <= now_ms + WEEKLY_AHEAD_MS {
                    out.push((start_ms, end_ms, true));
                }
            }
            out
        }
    }
}

fn date(day: i64) -> String {
    match jiff::Timestamp::from_millisecond(day * DAY_MS) {
        Ok(t) => t.strftime("%Y-%m-%d").to_string(),
        Err(_) => day.to_string(),
    }
}

/// What decides the components' states now ([`component_state`]).
#[derive(Debug, Clone, Copy)]
pub struct Now<'a> {
    pub statuses: &'a [SloStatus],
    pub alerts: &'a [AlertRecord],
    pub journeys: &'a JourneyRuns,
    /// The services' outage verdicts.
    pub outage: &'a [Assessment],
    pub now_ms: i64,
}

/// The page at `now.now_ms`. `incidents`: open and recent, as
/// [`crate::incident::Incidents::list`] gives them; those naming no listed
/// component are left out.
pub fn page(cfg: &StatusConfig, now: &Now, incidents: &[&Incident], uptime: &Uptime) -> Page {
    use crate::timefmt::rfc3339;
    let Now { statuses, alerts, journeys, outage, now_ms } = *now;
    let today = now_ms.div_euclid(DAY_MS);
    let first = today - DAYS + 1;
    let dates: Vec<String> = (first..=today).map(date).collect();
    let components: Vec<ComponentView> = cfg
        .components
        .iter()
        .map(|c| {
            let (mut up, mut total) = (0u64, 0u64);
            let mut stored = uptime.days_of(&c.name, first, today).peekable();
            let days = (first..=today)
                .map(|d| {
                    let m = stored.next_if(|(day, _)| *day == d).map(|(_, m)| m);
                    let mut minutes = BTreeMap::new();
                    let mut worst = None;
                    if let Some(m) = m {
                        for s in ComponentState::ALL {
                            let n = m[s.index()];
                            if n > 0 {
                                minutes.insert(s.as_str(), n);
                                worst = Some(worst.map_or(s, |w: ComponentState| w.max(s)));
                            }
                            total += u64::from(n);
                            if s < ComponentState::PartialOutage {
                                up += u64::from(n);
                            }
                        }
                    }
                    DayView { date: dates[(d - first) as usize].clone(), worst, minutes }
                })
                .collect();
            ComponentView {
                name: c.name.clone(),
                status: component_state(c, statuses, alerts, journeys, outage, now_ms),
                uptime_percent: (total > 0).then(|| (up as f64 * 100_000.0 / total as f64).floor() / 1000.0),
                days,
            }
        })
        .collect();
    let names_of = |services: &[String]| -> Vec<String> {
        cfg.components.iter().filter(|c| services.contains(&c.service)).map(|c| c.name.clone()).collect()
    };
    let incidents = incidents
        .iter()
        .filter_map(|i| {
            let components = names_of(&i.services);
            (!components.is_empty()).then(|| IncidentView {
                id: i.id.clone(),
                title: i.title.clone(),
                status: i.status,
                impact: i.impact,
                components,
                started_at: rfc3339(i.started_at_ms),
                resolved_at: i.resolved_at_ms.map(rfc3339),
                updates: i
                    .updates
                    .iter()
                    .rev()
                    .map(|u| UpdateView { at: rfc3339(u.at_ms), status: u.status, message: u.message.clone() })
                    .collect(),
            })
        })
        .collect();
    // Exclusion windows in progress or ahead, one entry per time span.
    let mut ahead: BTreeMap<(i64, i64), (bool, Vec<String>)> = BTreeMap::new();
    for c in &cfg.components {
        for s in statuses.iter().filter(|s| c.decides(&s.slo)) {
            for e in &s.slo.exclusions {
                for (start, end, weekly) in occurrences(&e.when, now_ms) {
                    let (w, names) = ahead.entry((start, end)).or_default();
                    *w |= weekly;
                    if !names.contains(&c.name) {
                        names.push(c.name.clone());
                    }
                }
            }
        }
    }
    let scheduled_maintenance = ahead
        .into_iter()
        .take(MAX_MAINTENANCE)
        .map(|((s, e), (weekly, components))| MaintenanceView {
            components,
            starts_at: rfc3339(s),
            ends_at: rfc3339(e),
            in_progress: s <= now_ms,
            recurrence: if weekly { "weekly" } else { "once" },
        })
        .collect();
    let overall = components.iter().map(|c| c.status).max().unwrap_or(ComponentState::Operational);
    Page {
        title: cfg.title.clone(),
        updated_at: rfc3339(now_ms),
        overall,
        components,
        incidents,
        scheduled_maintenance,
    }
}

#[cfg(test)]
mod tests;
