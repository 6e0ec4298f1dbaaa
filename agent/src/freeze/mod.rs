//! The deploy freeze: per service, whether a deploy may go ahead now, and
//! why not.
//!
//! Decided once per evaluation tick from the SLO statuses and the alerts of
//! that tick, under the error-budget policy that governs each service
//! ([`crate::spec::policy`]), and published with the snapshot; answers are
//! read from it, never recomputed per request.
//!
//! Hysteresis: a condition that froze a service keeps it frozen until it
//! has cleared by the policy's `thaw` margins (budget back above the
//! threshold plus a margin, burn below the threshold times a factor), so an
//! answer does not flap while a value hovers at its threshold. The
//! [`Freezer`] remembers which conditions hold and since when.
//!
//! With `freeze.source: prometheus` the statuses and alerts are the fleet's,
//! read from a Prometheus query API ([`fleet`] maps them); the decision is
//! the same code, and [`Source`] says which figures a board was made from.
//!
//! **Architecture invariant:** pure: no I/O, no clock of its own; the same
//! statuses, alerts, policies and time give the same answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::alert::{AlertKind, AlertRecord, Phase, hours_to_exhaustion};
use crate::sli::SloStatus;
use crate::spec::model::{Exclusion, ExclusionTime, SloSet};
use crate::spec::policy::{AlertSeverity, ChangeType, FreezePolicy, InsufficientData, policy_for};

pub mod bypass;
pub mod deploys;
pub mod fleet;
pub mod ledger;
pub mod metrics;
pub mod overrides;

#[cfg(test)]
mod tests;

/// A service's state, in the words the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Within a margin of a freeze.
    Warning,
    Frozen,
    /// No SLO of the service has enough events to be judged.
    InsufficientData,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Frozen => "FROZEN",
            Status::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Why a service is frozen (or close to it).
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// `budget`, `alert`, `burn_rate`, `time_to_exhaustion`, `calendar`,
    /// `insufficient_data`, `manual_freeze`; `deploy` names a costly deploy
    /// behind a freeze or warning (it does not freeze by itself).
    pub kind: &'static str,
    pub slo: Option<String>,
    pub measured: Option<f64>,
    pub threshold: Option<f64>,
    /// When the condition began to hold (as this agent saw it).
    pub since_ms: i64,
    pub message: String,
}

/// One SLO's figures, as a freeze answer shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFigures {
    pub name: String,
    pub budget_remaining: f64,
    pub sli: Option<f64>,
    pub events: u64,
    /// Whether the window holds enough events to be judged.
    pub judged: bool,
    /// Burn rate per window (`5m` … `3d`); absent windows had no events.
    pub burn_rates: BTreeMap<String, f64>,
}

/// Where the figures a board was decided from come from (`freeze.source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// This agent's own counts and alerts.
    #[default]
    Local,
    /// The fleet's, read from a Prometheus query API ([`fleet`]).
    Prometheus,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Prometheus => "prometheus",
        }
    }
}

/// The decision for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFreeze {
    pub service: String,
    /// Where the figures came from.
    pub source: Source,
    /// The policy that governs it (`default` for the built-in one).
    pub policy: String,
    pub status: Status,
    pub frozen: bool,
    /// What holds the service frozen (when `frozen`), else what brings it
    /// close (`WARNING`) or says there is too little data.
    pub reasons: Vec<Reason>,
    pub never_block: Vec<ChangeType>,
    pub approvers: u32,
    pub slos: Vec<SloFigures>,
}

impl ServiceFreeze {
    /// Whether a change of this type may go ahead.
    pub fn allows(&self, change: ChangeType) -> bool {
        !self.frozen || self.never_block.contains(&change)
    }
}

/// Every known service's decision at one evaluation, sorted by service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    pub at_ms: i64,
    pub services: Vec<ServiceFreeze>,
    pub source: Source,
    /// Why there is no answer now (the fleet's figures cannot be read);
    /// `services` then holds the last decision, for naming services only.
    pub unavailable: Option<String>,
}

impl Board {
    pub fn get(&self, service: &str) -> Option<&ServiceFreeze> {
        self.services.binary_search_by(|s| s.service.as_str().cmp(service)).ok().map(|i| &self.services[i])
    }
}

/// What the freezer remembers between ticks: the conditions that hold, by
/// service and condition, and since when.
#[derive(Debug)]
pub struct Freezer {
    holding: HashMap<(String, String), i64>,
    /// The policy of services no policy document covers.
    builtin: FreezePolicy,
    /// Stamped on every decision.
    source: Source,
}

impl Default for Freezer {
    fn default() -> Self {
        Freezer { holding: HashMap::new(), builtin: FreezePolicy::builtin(), source: Source::Local }
    }
}

/// A condition's reading at this tick.
struct Reading {
    key: String,
    /// The freeze condition holds now.
    trips: bool,
    /// It has cleared by the thaw margin (only asked while it holds).
    cleared: bool,
    /// Within the warning margin.
    near: bool,
    kind: &'static str,
    slo: Option<String>,
    measured: Option<f64>,
    threshold: Option<f64>,
    message: String,
    /// When it began, if the reading knows (calendar windows).
    began_ms: Option<i64>,
}

impl Freezer {
    pub fn new() -> Freezer {
        Freezer::default()
    }

    /// A freezer whose decisions say they were made from `source`'s figures.
    pub fn for_source(source: Source) -> Freezer {
        Freezer { source, ..Freezer::default() }
    }

    pub fn source(&self) -> Source {
        self.source
    }

    /// The policy that governs `service`.
    pub fn policy<'a>(&'a self, set: &'a SloSet, service: &str) -> &'a FreezePolicy {
        policy_for(&set.policies, &self.builtin, service)
    }

    /// Decide every service that has an SLO. `min_events` is the agent's
    /// default low-traffic guard; `deploys` (newest first) name the flagged
    /// deploys among the reasons of a service that is frozen or close to it.
    pub fn decide(
        &mut self,
        set: &SloSet,
        statuses: &[SloStatus],
        alerts: &[AlertRecord],
        deploys: &[deploys::Impact],
        min_events: u64,
        at_ms: i64,
    ) -> Board {
        let mut by_service: BTreeMap<&str, Vec<&SloStatus>> = BTreeMap::new();
        for s in statuses {
            by_service.entry(s.slo.service.as_str()).or_default().push(s);
        }
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        let mut services = Vec::with_capacity(by_service.len());
        for (service, slos) in by_service {
            let policy = policy_for(&set.policies, &self.builtin, service);
            let mut readings = read_conditions(policy, &slos, alerts, min_events, at_ms);
            readings.extend(signal_conditions(policy, service, alerts));
            let mut frozen_by = Vec::new();
            let mut near = Vec::new();
            for r in readings {
                let id = (service.to_string(), r.key.clone());
                let holding = self.holding.get(&id).copied();
                let holds = match holding {
                    Some(_) => !r.cleared,
                    None => r.trips,
                };
                if holds {
                    let since = *self.holding.entry(id.clone()).or_insert(r.began_ms.unwrap_or(at_ms));
                    seen.insert(id);
                    frozen_by.push(reason(r, since));
                } else {
                    self.holding.remove(&id);
                    if r.near || r.trips {
                        near.push(reason(r, at_ms));
                    }
                }
            }
            let judged = slos.iter().any(|s| s.window.events.total >= guard(policy, s, min_events));
            let (status, frozen, reasons) = if !frozen_by.is_empty() {
                (Status::Frozen, true, frozen_by)
            } else if !judged {
                let freezes = policy.insufficient_data == InsufficientData::Freeze;
                let r = Reason {
                    kind: "insufficient_data",
                    slo: None,
                    measured: None,
                    threshold: None,
                    since_ms: at_ms,
                    message: format!(
                        "no SLO of {service} has enough events in its window to be judged{}",
                        if freezes { "; the policy freezes until there are" } else { "" }
                    ),
                };
                (Status::InsufficientData, freezes, vec![r])
            } else if !near.is_empty() {
                (Status::Warning, false, near)
            } else {
                (Status::Ok, false, Vec::new())
            };
            let mut reasons = reasons;
            if matches!(status, Status::Frozen | Status::Warning) {
                reasons.extend(costly_deploys(service, &slos, deploys));
            }
            services.push(ServiceFreeze {
                service: service.to_string(),
                source: self.source,
                policy: policy.name.clone(),
                status,
                frozen,
                reasons,
                never_block: policy.never_block.clone(),
                approvers: policy.approvers,
                slos: slos.iter().map(|s| figures(policy, s, min_events)).collect(),
            });
        }
        self.holding.retain(|id, _| seen.contains(id));
        Board { at_ms, services, source: self.source, unavailable: None }
    }
}

/// Deploys shown among a service's reasons at most.
pub const MAX_DEPLOY_REASONS: usize = 3;

/// The newest flagged deploys of `service` whose cost still counts in the
/// window of the SLO they were costly to.
fn costly_deploys(service: &str, slos: &[&SloStatus], deploys: &[deploys::Impact]) -> Vec<Reason> {
    deploys
        .iter()
        .filter(|d| d.service == service && d.flagged)
        .filter_map(|d| {
            let worst = d.worst()?;
            let status = slos.iter().find(|s| s.slo.name == worst.slo)?;
            (d.started_at_ms >= status.window_start_ms).then(|| Reason {
                kind: "deploy",
                slo: Some(worst.slo.clone()),
                measured: Some(worst.budget_consumed),
                threshold: Some(d.flag_budget_consumed),
                since_ms: d.started_at_ms,
                message: format!("{} (deploy {})", d.message(), d.id),
            })
        })
        .take(MAX_DEPLOY_REASONS)
        .collect()
}

fn reason(r: Reading, since_ms: i64) -> Reason {
    Reason { kind: r.kind, slo: r.slo, measured: r.measured, threshold: r.threshold, since_ms, message: r.message }
}

/// Events an SLO's window must hold to be judged under `policy`.
fn guard(policy: &FreezePolicy, s: &SloStatus, min_events: u64) -> u64 {
    policy.min_events.or(s.slo.alerting.min_events).unwrap_or(min_events)
}

fn figures(policy: &FreezePolicy, s: &SloStatus, min_events: u64) -> SloFigures {
    SloFigures {
        name: s.slo.name.clone(),
        budget_remaining: s.budget_remaining(),
        sli: s.sli,
        events: s.window.events.total,
        judged: s.window.events.total >= guard(policy, s, min_events),
        burn_rates: s.burn_rates.iter().filter_map(|(w, b)| b.map(|b| (w.to_string(), b))).collect(),
    }
}

fn percent(f: f64) -> String {
    format!("{:.1} %", f * 100.0)
}

fn read_conditions(
    policy: &FreezePolicy,
    slos: &[&SloStatus],
    alerts: &[AlertRecord],
    min_events: u64,
    at_ms: i64,
) -> Vec<Reading> {
    let c = &policy.freeze_when;
    let (thaw, warn) = (policy.thaw, policy.warning);
    let mut out = Vec::new();
    for (i, e) in policy.calendar.iter().enumerate() {
        let began = calendar_start(e, at_ms);
        out.push(Reading {
            key: format!("calendar/{i}"),
            trips: began.is_some(),
            cleared: began.is_none(),
            near: false,
            kind: "calendar",
            slo: None,
            measured: None,
            threshold: None,
            message: format!("calendar freeze: {}", e.reason),
            began_ms: began,
        });
    }
    for s in slos {
        let name = &s.slo.name;
        let judged = s.window.events.total >= guard(policy, s, min_events);
        let remaining = s.budget_remaining();
        if let Some(at_most) = c.budget_remaining_at_most.filter(|_| judged) {
            out.push(Reading {
                key: format!("budget/{name}"),
                trips: remaining <= at_most,
                cleared: remaining > at_most + thaw.budget_margin,
                near: remaining <= at_most + warn.budget_margin,
                kind: "budget",
                slo: Some(name.clone()),
                measured: Some(remaining),
                threshold: Some(at_most),
                message: if remaining <= 0.0 {
                    format!("{name}: error budget spent ({} remaining of {})", percent(remaining), s.slo.window)
                } else {
                    format!(
                        "{name}: {} of the error budget remaining, freeze at {}",
                        percent(remaining),
                        percent(at_most)
                    )
                },
                began_ms: None,
            });
        }
        for b in c.burn_rates.iter().filter(|_| judged) {
            let Some(rate) = s.burn_rates.iter().find(|(w, _)| *w == b.window).and_then(|(_, r)| *r) else {
                continue;
            };
            out.push(Reading {
                key: format!("burn/{name}/{}", b.window),
                trips: rate > b.above,
                cleared: rate < b.above * thaw.burn_factor,
                near: rate >= b.above * warn.burn_factor,
                kind: "burn_rate",
                slo: Some(name.clone()),
                measured: Some(rate),
                threshold: Some(b.above),
                message: format!("{name}: burn rate over {} is {rate:.2}, freeze above {}", b.window, b.above),
                began_ms: None,
            });
        }
        if let Some(within) = c.exhaustion_within.filter(|_| judged)
            && let Some(hours) = hours_to_exhaustion(s)
        {
            let limit = within.hours();
            out.push(Reading {
                key: format!("exhaustion/{name}"),
                trips: hours < limit,
                cleared: hours >= limit / thaw.burn_factor,
                near: hours < limit / warn.burn_factor,
                kind: "time_to_exhaustion",
                slo: Some(name.clone()),
                measured: Some(hours),
                threshold: Some(limit),
                message: format!(
                    "{name}: at the 6h burn rate the budget is gone in {hours:.1} h, freeze within {within}"
                ),
                began_ms: None,
            });
        }
        for severity in &c.alerts {
            let kind = match severity {
                AlertSeverity::Page => AlertKind::Page,
                AlertSeverity::Ticket => AlertKind::Ticket,
            };
            let alert = alerts.iter().find(|a| a.slo == *name && a.kind == kind);
            let firing = alert.is_some_and(|a| a.phase == Phase::Firing);
            let pending = alert.is_some_and(|a| a.phase == Phase::Pending);
            out.push(Reading {
                key: format!("alert/{name}/{}", severity.as_str()),
                trips: firing,
                cleared: !firing,
                near: pending,
                kind: "alert",
                slo: Some(name.clone()),
                measured: None,
                threshold: None,
                message: if firing {
                    format!("{name}: {} alert firing", severity.as_str())
                } else {
                    format!("{name}: {} alert pending", severity.as_str())
                },
                began_ms: alert.and_then(|a| a.firing_since_ms).filter(|_| firing),
            });
        }
    }
    out
}

/// The service's signal and quota alerts that freeze under the policy.
fn signal_conditions(policy: &FreezePolicy, service: &str, alerts: &[AlertRecord]) -> Vec<Reading> {
    let c = &policy.freeze_when;
    let mut kinds: Vec<AlertKind> = c
        .anomalies
        .iter()
        .map(|s| match s {
            AlertSeverity::Page => AlertKind::AnomalyPage,
            AlertSeverity::Ticket => AlertKind::AnomalyTicket,
        })
        .collect();
    if c.quotas {
        kinds.push(AlertKind::QuotaTicket);
    }
    let mut out = Vec::new();
    for a in alerts.iter().filter(|a| a.service == service && kinds.contains(&a.kind)) {
        let firing = a.phase == Phase::Firing;
        let what = a.signal.as_ref().map_or_else(|| a.slo.clone(), |s| s.description.clone());
        out.push(Reading {
            key: format!("{}/{}", a.kind.as_str(), a.slo),
            trips: firing,
            cleared: !firing,
            near: a.phase == Phase::Pending,
            kind: if a.kind == AlertKind::QuotaTicket { "quota" } else { "anomaly" },
            slo: None,
            measured: a.signal.as_ref().and_then(|s| s.score),
            threshold: None,
            message: format!("{} alert {}: {what}", a.kind.as_str(), a.phase.as_str()),
            began_ms: a.firing_since_ms.filter(|_| firing),
        });
    }
    out
}

/// When the calendar window covering `at_ms` began, if one does.
fn calendar_start(e: &Exclusion, at_ms: i64) -> Option<i64> {
    if !e.covers(at_ms) {
        return None;
    }
    match &e.when {
        ExclusionTime::Once { start_ms, .. } => Some(*start_ms),
        ExclusionTime::Weekly { weekday, start_minute, timezone, .. } => {
            let z = jiff::Timestamp::from_millisecond(at_ms).ok()?.to_zoned(timezone.clone());
            let day = i64::from(z.weekday().to_monday_zero_offset());
            let minute_of_week = day * 1440 + i64::from(z.hour()) * 60 + i64::from(z.minute());
            let start = i64::from(*weekday) * 1440 + i64::from(*start_minute);
            let into = (minute_of_week - start).rem_euclid(7 * 1440);
            let within_minute = i64::from(z.second()) * 1000 + i64::from(z.millisecond());
            Some(at_ms - into * 60_000 - within_minute)
        }
    }
}
