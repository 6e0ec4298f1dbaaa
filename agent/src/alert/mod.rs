//! Alert lifecycle: per SLO and kind (page, ticket, budget exhausted),
//! pending → firing → resolved, with the time of every change.
//!
//! Alerts are about what users experience, measured by the SLIs: the burn
//! rate conditions of an SLO's alerting rules, and its error budget. Nothing
//! here looks at causes.
//!
//! - A kind is **active** when one of its conditions holds and the long
//!   window holds at least `min_events` events (the low-traffic guard: one
//!   failure out of ten requests does not page). Budget exhaustion is active
//!   when the remaining budget is ≤ 0 and the SLO window holds at least
//!   `min_events` events.
//! - Active → **pending**; pending for `pending_for` → **firing** (a new
//!   episode, whose number makes a stable dedup key); no longer active while
//!   pending → forgotten without a notification.
//! - Firing and no longer active for `resolve_after` → **resolved**. The
//!   delay stops an alert whose burn hovers at the threshold from flapping
//!   (the 3d/6h ticket does at the end of an incident).
//!
//! [`Alerts::observe`] returns the transitions of one evaluation; the daemon
//! commits them (and the alert records) to the store in one transaction, so
//! a restart resumes every alert where it was and never fires an episode
//! twice.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sli::SloStatus;
use crate::spec::model::Severity;

pub mod certs;
pub mod signals;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The SLO's page conditions (fast burn).
    Page,
    /// The SLO's ticket conditions (slow burn).
    Ticket,
    /// The error budget of the SLO window is spent.
    BudgetExhausted,
    /// At the current 6h burn rate the budget is gone within the SLO's
    /// `alerting.exhaustion_within` (only for SLOs that set it).
    TimeToExhaustion,
    /// A probed TLS endpoint's certificates expire within `ticket_below`
    /// (default 21 days), or its chain has a problem ([`certs`]).
    CertificateTicket,
    /// A probed TLS endpoint's certificates expire within `page_below`
    /// (default 3 days), or one has expired ([`certs`]).
    CertificatePage,
    /// A live signal's anomaly, by a `signals.alerts` rule of severity page ([`signals`]).
    AnomalyPage,
    /// The same, severity ticket.
    AnomalyTicket,
    /// A quota is reached within `signals.quotas.alert_within` at the forecast growth ([`signals`]).
    QuotaTicket,
}

impl AlertKind {
    /// The kinds every SLO has (certificate alerts are per endpoint: [`AlertKind::CERTIFICATE`]).
    pub const ALL: [AlertKind; 4] =
        [AlertKind::Page, AlertKind::Ticket, AlertKind::BudgetExhausted, AlertKind::TimeToExhaustion];
    /// The kinds every probed TLS endpoint has.
    pub const CERTIFICATE: [AlertKind; 2] = [AlertKind::CertificateTicket, AlertKind::CertificatePage];

    /// The kinds of a live signal or a quota.
    pub const SIGNAL: [AlertKind; 3] = [AlertKind::AnomalyPage, AlertKind::AnomalyTicket, AlertKind::QuotaTicket];

    /// Whether the alert is about a live signal or a quota, not an SLO.
    pub fn is_signal(self) -> bool {
        matches!(self, AlertKind::AnomalyPage | AlertKind::AnomalyTicket | AlertKind::QuotaTicket)
    }

    /// Whether the alert is about an endpoint's certificates, not an SLO.
    pub fn is_certificate(self) -> bool {
        matches!(self, AlertKind::CertificateTicket | AlertKind::CertificatePage)
    }

    /// The slot of the kind among its subject's kinds (an SLO's or an endpoint's).
    fn index(self) -> usize {
        match self {
            AlertKind::CertificateTicket => 0,
            AlertKind::CertificatePage => 1,
            AlertKind::AnomalyPage => 0,
            AlertKind::AnomalyTicket => 1,
            AlertKind::QuotaTicket => 2,
            k => k as usize,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Page => "page",
            AlertKind::Ticket => "ticket",
            AlertKind::BudgetExhausted => "budget_exhausted",
            AlertKind::TimeToExhaustion => "time_to_exhaustion",
            AlertKind::CertificateTicket => "certificate_ticket",
            AlertKind::CertificatePage => "certificate_page",
            AlertKind::AnomalyPage => "anomaly_page",
            AlertKind::AnomalyTicket => "anomaly_ticket",
            AlertKind::QuotaTicket => "quota_ticket",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().chain(AlertKind::CERTIFICATE).chain(AlertKind::SIGNAL).find(|k| k.as_str() == s)
    }

    /// How urgent a notification is: budget exhaustion is a ticket.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::Page | AlertKind::CertificatePage | AlertKind::AnomalyPage => Severity::Page,
            AlertKind::Ticket
            | AlertKind::BudgetExhausted
            | AlertKind::TimeToExhaustion
            | AlertKind::CertificateTicket
            | AlertKind::AnomalyTicket
            | AlertKind::QuotaTicket => Severity::Ticket,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Firing,
    Resolved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        }
    }
}

/// The window pair (or budget) that made an alert active, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// `1h/5m`, or `window` for budget exhaustion.
    pub windows: String,
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    pub threshold: Option<f64>,
    pub long_window_events: u64,
    /// Time-to-exhaustion alerts: hours until the budget is gone at the 6h burn rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_to_exhaustion: Option<f64>,
}

/// The state of one alert (an SLO and a kind, or a probed endpoint and a
/// certificate kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The SLO's name; for certificate alerts the endpoint, `<probe>/<hop>`.
    pub slo: String,
    pub service: String,
    pub kind: AlertKind,
    pub phase: Phase,
    /// Firing episodes so far; the current one's number is part of its dedup key.
    pub episode: u64,
    /// When the current phase began.
    pub since_ms: i64,
    /// When the current (or last) episode started firing.
    pub firing_since_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    /// Since when the conditions no longer hold while still firing.
    pub clear_since_ms: Option<i64>,
    /// What made it active most recently.
    pub trigger: Option<Trigger>,
    /// The SLO's budget left; 1 for certificate alerts (no budget).
    pub budget_remaining: f64,
    /// Certificate alerts: the endpoint, the certificate that expires
    /// first, its not-after, the days left and the chain's problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<certs::CertificateTrigger>,
    /// Signal and quota alerts: what the signal or the quota forecast shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<signals::SignalTrigger>,
}

impl AlertRecord {
    /// A new alert of `subject` (an SLO, an endpoint, a signal), pending
    /// since `at_ms`, before its first episode.
    pub fn pending(subject: &str, service: &str, kind: AlertKind, at_ms: i64) -> AlertRecord {
        AlertRecord {
            slo: subject.to_string(),
            service: service.to_string(),
            kind,
            phase: Phase::Pending,
            episode: 0,
            since_ms: at_ms,
            firing_since_ms: None,
            resolved_at_ms: None,
            clear_since_ms: None,
            trigger: None,
            budget_remaining: 1.0,
            certificate: None,
            signal: None,
        }
    }

    /// Stable per firing episode: the same for its trigger and its resolve.
    pub fn dedup_key(&self) -> String {
        format!("slo-agent/{}/{}/{}", self.slo, self.kind.as_str(), self.episode)
    }
}

/// One change of phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub slo: String,
    pub kind: AlertKind,
    /// `None` when the alert was not known before.
    pub from: Option<Phase>,
    /// `None` when a pending alert was dropped (it never fired).
    pub to: Option<Phase>,
    pub at_ms: i64,
    /// The record after the change.
    pub record: AlertRecord,
}

impl Transition {
    /// Transitions a human is told about: firing, and resolved.
    pub fn notifies(&self) -> bool {
        matches!(self.to, Some(Phase::Firing) | Some(Phase::Resolved))
    }
}

/// The lifecycle's settings (`agent.yaml` `alerts:`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertPolicy {
    /// Events the long window must hold before a burn-rate condition counts.
    pub min_events: u64,
    /// How long a condition must hold before the alert fires.
    pub pending_for: Duration,
    /// How long the conditions must stay clear before a firing alert resolves.
    pub resolve_after: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy { min_events: 100, pending_for: Duration::ZERO, resolve_after: Duration::from_secs(300) }
    }
}

/// Every alert's state.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    policy: AlertPolicy,
    /// Per SLO name, one slot per kind (indexed like [`AlertKind::ALL`]).
    records: BTreeMap<String, [Option<AlertRecord>; 4]>,
    /// Per endpoint (`<probe>/<hop>`), one slot per certificate kind
    /// (indexed like [`AlertKind::CERTIFICATE`]).
    certificates: BTreeMap<String, [Option<AlertRecord>; 2]>,
    /// Per signal or quota subject, one slot per kind (indexed like [`AlertKind::SIGNAL`]).
    signals: BTreeMap<String, [Option<AlertRecord>; 3]>,
}

impl Alerts {
    pub fn new(policy: AlertPolicy) -> Alerts {
        Alerts { policy, records: BTreeMap::new(), certificates: BTreeMap::new(), signals: BTreeMap::new() }
    }

    /// Records restored from the store.
    pub fn restore(&mut self, records: impl IntoIterator<Item = AlertRecord>) {
        for r in records {
            let i = r.kind.index();
            let key = r.slo.clone();
            if r.kind.is_certificate() {
                self.certificates.entry(key).or_default()[i] = Some(r);
            } else if r.kind.is_signal() {
                self.signals.entry(key).or_default()[i] = Some(r);
            } else {
                self.records.entry(key).or_default()[i] = Some(r);
            }
        }
    }

    /// SLO alerts by SLO, then certificate alerts by endpoint, then signal
    /// and quota alerts by subject.
    pub fn records(&self) -> impl Iterator<Item = &AlertRecord> {
        let slos = self.records.values().flat_map(|slots| slots.iter().flatten());
        slos.chain(self.certificates.values().flat_map(|slots| slots.iter().flatten()))
            .chain(self.signals.values().flat_map(|slots| slots.iter().flatten()))
    }

    /// Advance every alert with one evaluation; returns what changed.
    pub fn observe(&mut self, statuses: &[SloStatus], at_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for s in statuses {
            for kind in AlertKind::ALL {
                let trigger = self.active(s, kind);
                self.step(s, kind, trigger, at_ms, &mut out);
            }
        }
        // SLOs that are gone: their firing alerts resolve, the rest are forgotten.
        if !self.records.is_empty() {
            let live: std::collections::HashSet<&str> = statuses.iter().map(|s| s.slo.name.as_str()).collect();
            let gone: Vec<String> = self.records.keys().filter(|k| !live.contains(k.as_str())).cloned().collect();
            for name in gone {
                let Some(slots) = self.records.remove(&name) else { continue };
                for r in slots.into_iter().flatten() {
                    resolve_gone(r, at_ms, &mut out);
                }
            }
        }
        self.records.retain(|_, slots| slots.iter().any(Option::is_some));
        out
    }
}

/// Hours until the SLO window's remaining budget is spent at the current 6h
/// burn rate: remaining × window hours ÷ burn rate. `None` when nothing is
/// left to spend or nothing is burning.
pub fn hours_to_exhaustion(s: &SloStatus) -> Option<f64> {
    let burn = s.burn_rates.iter().find(|(w, _)| w.0 == 360).and_then(|(_, b)| *b)?;
    let remaining = s.budget_remaining();
    (burn > 0.0 && remaining > 0.0).then(|| remaining * s.slo.window.nominal().hours() / burn)
}

/// An alert of an SLO that no longer exists: resolved if it was firing.
fn resolve_gone(mut r: AlertRecord, at_ms: i64, out: &mut Vec<Transition>) {
    if r.phase == Phase::Firing {
        let from = Some(r.phase);
        r.phase = Phase::Resolved;
        r.since_ms = at_ms;
        r.resolved_at_ms = Some(at_ms);
        out.push(Transition { slo: r.slo.clone(), kind: r.kind, from, to: Some(Phase::Resolved), at_ms, record: r });
    }
}

impl Alerts {
    /// The trigger that makes `kind` active for this status, if any.
    fn active(&self, s: &SloStatus, kind: AlertKind) -> Option<Trigger> {
        let min_events = s.slo.alerting.min_events.unwrap_or(self.policy.min_events);
        match kind {
            AlertKind::Page | AlertKind::Ticket => {
                let sev = kind.severity();
                s.conditions
                    .iter()
                    .filter(|c| c.rule.severity == sev && c.firing && c.long_events >= min_events)
                    // The most urgent pair: the highest threshold that holds.
                    .max_by(|a, b| a.rule.burn_rate_threshold.total_cmp(&b.rule.burn_rate_threshold))
                    .map(|c| Trigger {
                        windows: format!("{}/{}", c.rule.long_window, c.rule.short_window),
                        long_burn_rate: c.long_burn_rate,
                        short_burn_rate: c.short_burn_rate,
                        threshold: Some(c.rule.burn_rate_threshold),
                        long_window_events: c.long_events,
                        hours_to_exhaustion: None,
                    })
            }
            AlertKind::BudgetExhausted => {
                (s.window.events.total >= min_events && s.budget_remaining() <= 0.0).then(|| Trigger {
                    windows: "window".into(),
                    long_burn_rate: None,
                    short_burn_rate: None,
                    threshold: None,
                    long_window_events: s.window.events.total,
                    hours_to_exhaustion: None,
                })
            }
            AlertKind::TimeToExhaustion => {
                let within = s.slo.alerting.exhaustion_within?;
                let hours = hours_to_exhaustion(s)?;
                (s.window.events.total >= min_events && hours <= within.hours()).then(|| Trigger {
                    windows: "6h".into(),
                    long_burn_rate: s.burn_rates.iter().find(|(w, _)| w.0 == 360).and_then(|(_, b)| *b),
                    short_burn_rate: None,
                    threshold: None,
                    long_window_events: s.window.events.total,
                    hours_to_exhaustion: Some(hours),
                })
            }
            // Not an SLO's: `certs`.
            AlertKind::CertificateTicket | AlertKind::CertificatePage => None,
            AlertKind::AnomalyPage | AlertKind::AnomalyTicket | AlertKind::QuotaTicket => None,
        }
    }

    fn step(&mut self, s: &SloStatus, kind: AlertKind, trigger: Option<Trigger>, at: i64, out: &mut Vec<Transition>) {
        let policy = self.policy;
        let slot = match self.records.get_mut(s.slo.name.as_str()) {
            Some(slots) => &mut slots[kind.index()],
            None if trigger.is_none() => return,
            None => &mut self.records.entry(s.slo.name.clone()).or_default()[kind.index()],
        };
        let budget_remaining = s.budget_remaining();
        let active = trigger.is_some();
        let fresh = || AlertRecord { budget_remaining, ..AlertRecord::pending(&s.slo.name, &s.slo.service, kind, at) };
        let refresh = |r: &mut AlertRecord| {
            r.budget_remaining = budget_remaining;
            if let Some(t) = trigger {
                r.trigger = Some(t);
            }
        };
        advance(policy, slot, active, fresh, refresh, at, out);
    }
}

/// One alert's lifecycle at one evaluation, whatever it is about. `slot`
/// holds its record (`None`: not known); `fresh` makes the record of an
/// alert that becomes active; `refresh` lays this evaluation's figures (and
/// trigger, when active) over the record. Pushes the changes to `out`.
fn advance(
    policy: AlertPolicy,
    slot: &mut Option<AlertRecord>,
    active: bool,
    fresh: impl FnOnce() -> AlertRecord,
    refresh: impl FnOnce(&mut AlertRecord),
    at: i64,
    out: &mut Vec<Transition>,
) {
    let push = |out: &mut Vec<Transition>, from: Option<Phase>, r: &AlertRecord| {
        out.push(Transition {
            slo: r.slo.clone(),
            kind: r.kind,
            from,
            to: Some(r.phase),
            at_ms: at,
            record: r.clone(),
        });
    };
    let Some(r) = slot.as_mut() else {
        if active {
            let mut r = fresh();
            refresh(&mut r);
            push(out, None, &r);
            if policy.pending_for.is_zero() {
                fire(&mut r, at);
                push(out, Some(Phase::Pending), &r);
            }
            *slot = Some(r);
        }
        return;
    };
    refresh(r);
    match (r.phase, active) {
        (Phase::Resolved, true) => {
            r.phase = Phase::Pending;
            r.since_ms = at;
            r.clear_since_ms = None;
            push(out, Some(Phase::Resolved), r);
            if policy.pending_for.is_zero() {
                fire(r, at);
                push(out, Some(Phase::Pending), r);
            }
        }
        (Phase::Pending, true) => {
            if at - r.since_ms >= policy.pending_for.as_millis() as i64 {
                fire(r, at);
                push(out, Some(Phase::Pending), r);
            }
        }
        (Phase::Pending, false) => {
            if let Some(mut gone) = slot.take() {
                gone.since_ms = at;
                out.push(Transition {
                    slo: gone.slo.clone(),
                    kind: gone.kind,
                    from: Some(Phase::Pending),
                    to: None,
                    at_ms: at,
                    record: gone,
                });
            }
        }
        (Phase::Firing, true) => r.clear_since_ms = None,
        (Phase::Firing, false) => {
            let clear = *r.clear_since_ms.get_or_insert(at);
            if at - clear >= policy.resolve_after.as_millis() as i64 {
                r.phase = Phase::Resolved;
                r.since_ms = at;
                r.resolved_at_ms = Some(at);
                r.clear_since_ms = None;
                push(out, Some(Phase::Firing), r);
            }
        }
        (Phase::Resolved, false) => {}
    }
}

fn fire(r: &mut AlertRecord, at: i64) {
    r.phase = Phase::Firing;
    r.episode += 1;
    r.since_ms = at;
    r.firing_since_ms = Some(at);
    r.resolved_at_ms = None;
    r.clear_since_ms = None;
}

#[cfg(test)]
mod tests;
