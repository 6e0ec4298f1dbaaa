//! The incident timeline: one ordered list of what the agent knows about
//! some services between two times — alert transitions (with the burn rates
//! and budget left at that moment), deploys and what they cost, freeze
//! conditions, manual overrides, bypasses and their approvals, silences,
//! failed synthetic runs, the audit log (who did what) and an incident's
//! status updates. [`postmortem`] renders a postmortem draft from it.
//!
//! **Architecture invariant:** pure. The API layer gathers the inputs (the
//! store, the books, the snapshot) and passes the time it calls "now"; this
//! module filters, merges and orders them, and never reads a clock or a file.

pub mod changes;
pub mod postmortem;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alert::{Phase, Transition};
use crate::auth::AuditEntry;
use crate::freeze::ServiceFreeze;
use crate::freeze::bypass::Bypass;
use crate::freeze::deploys::{Deploy, Impact};
use crate::freeze::overrides::Override;
use crate::notify::silence::Silence;
use crate::sli::report::SloReport;
use crate::timefmt::rfc3339;

/// Longest range one timeline covers.
pub const MAX_RANGE_MS: i64 = 31 * 24 * 3_600_000;
/// Entries one timeline holds at most (the earliest are kept).
pub const MAX_ENTRIES: usize = 5_000;
/// How long before an incident's start its timeline begins: long enough to
/// show the deploy that set it off.
pub const INCIDENT_LEAD_MS: i64 = 3_600_000;

/// What an entry is about. Entries at the same millisecond are ordered by
/// this (cause before effect: a deploy before the alert it sets off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    ProbeFailure,
    JourneyFailure,
    Outage,
    Alert,
    Freeze,
    Override,
    Bypass,
    Approval,
    Silence,
    Audit,
    SloStatus,
    StatusUpdate,
    StatusPage,
    ProbeRecovered,
    JourneyRecovered,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::ProbeFailure => "probe_failure",
            Kind::JourneyFailure => "journey_failure",
            Kind::Outage => "outage",
            Kind::Alert => "alert",
            Kind::Freeze => "freeze",
            Kind::Override => "override",
            Kind::Bypass => "bypass",
            Kind::Approval => "approval",
            Kind::Silence => "silence",
            Kind::Audit => "audit",
            Kind::SloStatus => "slo_status",
            Kind::StatusUpdate => "status_update",
            Kind::StatusPage => "status_page",
            Kind::ProbeRecovered => "probe_recovered",
            Kind::JourneyRecovered => "journey_recovered",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339.
    pub at: String,
    pub at_ms: i64,
    pub kind: Kind,
    /// Where the agent knows it from: `alert_history`, `deploys`,
    /// `freeze`, `overrides`, `bypasses`, `silences`, `probes`,
    /// `journeys`, `audit`, `slo_report`, `incident`, `state_changes`.
    pub source: String,
    /// The service it concerns; empty for the audit log and incidents.
    #[serde(default)]
    pub service: String,
    /// One line a person reads.
    pub summary: String,
    /// The figures behind it (an object; its members depend on `kind`).
    pub details: Value,
}

/// The timeline of some services over a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub services: Vec<String>,
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// Entries were left out beyond [`MAX_ENTRIES`] (the latest ones).
    pub truncated: bool,
}

/// What a timeline covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub services: Vec<String>,
    pub from_ms: i64,
    /// Inclusive.
    pub to_ms: i64,
    /// What the caller calls now (for silences and overrides that ended).
    pub now_ms: i64,
}

/// Why a query is refused; the messages are shown to API callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("`from` must be before `to`")]
    Reversed,
    #[error("a timeline covers at most 31 days")]
    TooLong,
    #[error("name at least one service")]
    NoService,
}

impl Query {
    pub fn new(services: Vec<String>, from_ms: i64, to_ms: i64, now_ms: i64) -> Result<Query, QueryError> {
        if services.is_empty() || services.iter().any(|s| s.is_empty()) {
            return Err(QueryError::NoService);
        }
        if from_ms >= to_ms {
            return Err(QueryError::Reversed);
        }
        if to_ms.saturating_sub(from_ms) > MAX_RANGE_MS {
            return Err(QueryError::TooLong);
        }
        Ok(Query { services, from_ms, to_ms, now_ms })
    }

    /// The range of an incident's timeline: from [`INCIDENT_LEAD_MS`]
    /// before its start to its resolution (or now while it is open).
    pub fn incident(
        services: Vec<String>,
        started_ms: i64,
        resolved_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Query, QueryError> {
        let to = resolved_ms.unwrap_or(now_ms).max(started_ms.saturating_add(1));
        let from = started_ms.saturating_sub(INCIDENT_LEAD_MS).max(to.saturating_sub(MAX_RANGE_MS));
        Query::new(services, from, to, now_ms)
    }

    fn covers(&self, at_ms: i64) -> bool {
        self.from_ms <= at_ms && at_ms <= self.to_ms
    }

    fn concerns(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// A failed synthetic run (a probe's hop or a journey's step), as the API
/// gathered it from what the runners keep in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub at_ms: i64,
    /// `probes` or `journeys`.
    pub source: &'static str,
    pub service: String,
    /// The probe or journey.
    pub name: String,
    /// The hop or step that failed.
    pub part: Option<String>,
    pub region: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

/// An incident's status update (`incidents[].updates[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub at_ms: i64,
    pub status: String,
    pub message: String,
    pub by: String,
}

/// Everything the API gathered; any part may be empty.
#[derive(Debug, Default, Clone, Copy)]
pub struct Inputs<'a> {
    pub alerts: &'a [Transition],
    pub deploys: &'a [Deploy],
    pub impacts: &'a [Impact],
    /// The freeze decision of the latest evaluation, per service.
    pub freeze: &'a [ServiceFreeze],
    pub overrides: &'a [Override],
    pub bypasses: &'a [Bypass],
    pub silences: &'a [Silence],
    pub failures: &'a [Failure],
    pub audit: &'a [AuditEntry],
    /// The latest SLO reports and when they were made.
    pub reports: &'a [SloReport],
    pub reports_at_ms: Option<i64>,
    pub updates: &'a [StatusUpdate],
    /// Recorded changes of freeze statuses, outage verdicts, journeys and
    /// probes ([`changes`]).
    pub changes: &'a [changes::Change],
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn rate(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into())
}

/// Collects entries in range; [`Builder::finish`] orders them.
struct Builder<'q> {
    q: &'q Query,
    entries: Vec<Entry>,
}

impl Builder<'_> {
    fn push(&mut self, at_ms: i64, kind: Kind, source: &str, service: &str, summary: String, details: Value) {
        if self.q.covers(at_ms) {
            self.entries.push(Entry {
                at: rfc3339(at_ms),
                at_ms,
                kind,
                source: source.to_string(),
                service: service.to_string(),
                summary,
                details,
            });
        }
    }
}

/// The timeline of `q` from `inputs`.
pub fn build(q: &Query, inputs: &Inputs) -> Timeline {
    let mut b = Builder { q, entries: Vec::new() };
    // Ids of the records shown, to pick the audit entries about them.
    let mut ids: BTreeSet<&str> = BTreeSet::new();

    for t in inputs.alerts.iter().filter(|t| q.concerns(&t.record.service)) {
        alert(&mut b, t);
    }
    for d in inputs.deploys.iter().filter(|d| q.concerns(&d.service)) {
        let impact = inputs.impacts.iter().find(|i| i.id == d.id);
        if q.covers(d.started_at_ms) || q.covers(d.finished_at_ms) {
            ids.insert(&d.id);
        }
        deploy(&mut b, d, impact);
    }
    // The recorded freeze changes say when a freeze began and ended; the
    // latest decision's reasons stand in for a service without any.
    let recorded_freeze: BTreeSet<&str> =
        inputs.changes.iter().filter(|c| c.what() == "freeze").map(|c| c.service.as_str()).collect();
    for c in inputs.changes.iter().filter(|c| q.concerns(&c.service)) {
        state_change(&mut b, c);
    }
    for f in inputs.freeze.iter().filter(|f| q.concerns(&f.service) && !recorded_freeze.contains(f.service.as_str())) {
        for r in &f.reasons {
            let details = json!({
                "status": f.status.as_str(), "frozen": f.frozen, "reason": r.kind, "slo": r.slo,
                "measured": r.measured, "threshold": r.threshold, "policy": f.policy,
            });
            let what = if f.frozen { "frozen" } else { "close to a freeze" };
            b.push(
                r.since_ms,
                Kind::Freeze,
                "freeze",
                &f.service,
                format!("{} {what}: {}", f.service, r.message),
                details,
            );
        }
    }
    for o in inputs.overrides.iter().filter(|o| q.concerns(&o.service)) {
        ids.insert(&o.id);
        let details = json!({"id": o.id, "action": o.action.as_str(), "reason": o.reason, "by": o.created_by,
            "ends_at": rfc3339(o.ends_at_ms)});
        let verb = o.action.as_str();
        b.push(
            o.created_at_ms,
            Kind::Override,
            "overrides",
            &o.service,
            format!("{} put a manual {verb} on {}: {}", o.created_by, o.service, o.reason),
            details.clone(),
        );
        if o.ends_at_ms <= q.now_ms {
            let how = match &o.ended_by {
                Some(by) => format!("ended by {by}"),
                None => "expired".to_string(),
            };
            b.push(
                o.ends_at_ms,
                Kind::Override,
                "overrides",
                &o.service,
                format!("manual {verb} of {} {how}", o.service),
                details,
            );
        }
    }
    for x in inputs.bypasses.iter().filter(|x| q.concerns(&x.service)) {
        ids.insert(&x.id);
        let details = json!({"id": x.id, "change": x.change, "reason": x.reason, "requested_by": x.requested_by,
            "needs": x.needs, "approvals": x.approvals.len(), "ends_at": rfc3339(x.ends_at_ms)});
        b.push(
            x.created_at_ms,
            Kind::Bypass,
            "bypasses",
            &x.service,
            format!("{} asked to bypass the freeze of {} for a {}: {}", x.requested_by, x.service, x.change, x.reason),
            details,
        );
        for (n, a) in x.approvals.iter().enumerate() {
            let details =
                json!({"bypass": x.id, "by": a.by, "comment": a.comment, "approval": n + 1, "needs": x.needs});
            b.push(
                a.at_ms,
                Kind::Approval,
                "bypasses",
                &x.service,
                format!("{} approved the {} bypass of {} ({} of {})", a.by, x.change, x.service, n + 1, x.needs),
                details,
            );
        }
        if let Some(by) = &x.revoked_by {
            b.push(
                x.ends_at_ms,
                Kind::Bypass,
                "bypasses",
                &x.service,
                format!("{by} revoked the {} bypass of {}", x.change, x.service),
                json!({"id": x.id, "by": by}),
            );
        }
    }
    for s in inputs.silences {
        // A silence concerns a service when a `service` matcher takes its name.
        let Some(service) =
            q.services.iter().find(|svc| s.matchers.iter().any(|m| m.name() == "service" && m.matches_value(svc)))
        else {
            continue;
        };
        ids.insert(&s.id);
        let matchers: Vec<String> =
            s.matchers.iter().map(|m| format!("{}{}{}", m.name(), m.op().as_str(), m.value())).collect();
        let details = json!({"id": s.id, "matchers": matchers, "by": s.created_by, "comment": s.comment,
            "starts_at": rfc3339(s.starts_at_ms), "ends_at": rfc3339(s.ends_at_ms)});
        b.push(
            s.created_at_ms,
            Kind::Silence,
            "silences",
            service,
            format!("{} silenced {} until {}: {}", s.created_by, matchers.join(","), rfc3339(s.ends_at_ms), s.comment),
            details.clone(),
        );
        if s.ends_at_ms <= q.now_ms {
            b.push(
                s.ends_at_ms,
                Kind::Silence,
                "silences",
                service,
                format!("silence of {} ended", matchers.join(",")),
                details,
            );
        }
    }
    // A journey's last run shows once: as its recorded change when there is one.
    let recorded_run = |f: &Failure| {
        inputs.changes.iter().any(|c| {
            c.at_ms == f.at_ms && c.service == f.service && c.subject.strip_prefix("journey:") == Some(f.name.as_str())
        })
    };
    for f in inputs.failures.iter().filter(|f| q.concerns(&f.service) && !recorded_run(f)) {
        let kind = if f.source == "journeys" { Kind::JourneyFailure } else { Kind::ProbeFailure };
        let part = f.part.as_deref().map(|p| format!(" at {p}")).unwrap_or_default();
        let status = f.http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        let why = f.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        let details = json!({"name": f.name, "part": f.part, "region": f.region, "http_status": f.http_status,
            "error": f.error});
        b.push(
            f.at_ms,
            kind,
            f.source,
            &f.service,
            format!("{} failed{part} in {}{status}{why}", f.name, f.region),
            details,
        );
    }
    if let Some(at) = inputs.reports_at_ms {
        for r in inputs.reports.iter().filter(|r| q.concerns(&r.service)) {
            let details = json!({"slo": r.name, "objective": r.objective, "window": r.window, "sli": r.sli,
                "budget_consumed": r.error_budget.consumed, "budget_remaining": r.error_budget.remaining,
                "burn_rates": r.burn_rates, "events": r.events});
            b.push(
                at,
                Kind::SloStatus,
                "slo_report",
                &r.service,
                format!(
                    "{}: {} of the {} budget left, burn rate {} (1h)",
                    r.name,
                    pct(r.error_budget.remaining),
                    r.window,
                    rate(r.burn_rates.get("1h").copied().flatten())
                ),
                details,
            );
        }
    }
    for u in inputs.updates {
        b.push(
            u.at_ms,
            Kind::StatusUpdate,
            "incident",
            "",
            format!("{} ({}): {}", u.status, u.by, u.message),
            json!({"status": u.status, "message": u.message, "by": u.by}),
        );
    }
    for a in inputs.audit {
        let about = a.target.as_deref().is_some_and(|t| ids.contains(t) || q.concerns(t));
        if !about {
            continue;
        }
        let target = a.target.as_deref().unwrap_or("");
        let details = json!({"actor": a.actor, "role": a.role.map(|r| r.as_str()), "action": a.action,
            "target": a.target, "outcome": a.outcome});
        b.push(a.at_ms, Kind::Audit, "audit", "", format!("{} {} {target}: {}", a.actor, a.action, a.outcome), details);
    }
    finish(q, b.entries)
}

/// A recorded change: a freeze status, an outage verdict, a journey or a
/// probe hop that failed or passes again, a status page component's state. Failures carry the members the
/// postmortem reads of every failure (`name`, `part`, `region`).
fn state_change(b: &mut Builder, c: &changes::Change) {
    let failed = c.to == "failed";
    let (kind, details) = match c.what() {
        "freeze" => (Kind::Freeze, json!({"from": c.from, "to": c.to, "status": c.to, "change": c.details})),
        "status" => {
            let mut d = c.details.clone();
            if let Some(m) = d.as_object_mut() {
                m.insert("from".into(), json!(c.from));
            }
            (Kind::StatusPage, d)
        }
        "outage" => {
            let mut d = c.details.clone();
            if let Some(m) = d.as_object_mut() {
                m.insert("from".into(), json!(c.from));
            }
            (Kind::Outage, d)
        }
        what @ ("journey" | "probe") => {
            let d = &c.details;
            let name = d.get(what).cloned().unwrap_or(Value::Null);
            let part = if what == "journey" { d.get("step") } else { d.get("hop") }.cloned().unwrap_or(Value::Null);
            let details = json!({"name": name, "part": part, "region": d.get("region"),
                "http_status": d.get("http_status"), "from": c.from, "to": c.to});
            let kind = match (what, failed) {
                ("journey", true) => Kind::JourneyFailure,
                ("journey", false) => Kind::JourneyRecovered,
                (_, true) => Kind::ProbeFailure,
                (_, false) => Kind::ProbeRecovered,
            };
            (kind, details)
        }
        _ => return,
    };
    b.push(c.at_ms, kind, "state_changes", &c.service, c.summary.clone(), details);
}

fn alert(b: &mut Builder, t: &Transition) {
    let r = &t.record;
    let to = t.to.map(Phase::as_str).unwrap_or("dropped");
    let from = t.from.map(Phase::as_str).unwrap_or("new");
    let figures = match &r.trigger {
        // The trigger of a resolved alert is the last one that held, not the state now.
        Some(_) if t.to == Some(Phase::Resolved) => format!(", {} of the budget left", pct(r.budget_remaining)),
        Some(tr) => format!(
            ", burn rate {} ({}, threshold {}), {} of the budget left",
            rate(tr.long_burn_rate),
            tr.windows,
            rate(tr.threshold),
            pct(r.budget_remaining)
        ),
        None => format!(", {} of the budget left", pct(r.budget_remaining)),
    };
    let details = json!({
        "slo": r.slo, "alert": r.kind.as_str(), "severity": r.kind.severity().as_str(), "from": from, "to": to,
        "episode": r.episode, "budget_remaining": r.budget_remaining,
        "windows": r.trigger.as_ref().map(|t| t.windows.clone()),
        "long_burn_rate": r.trigger.as_ref().and_then(|t| t.long_burn_rate),
        "short_burn_rate": r.trigger.as_ref().and_then(|t| t.short_burn_rate),
        "threshold": r.trigger.as_ref().and_then(|t| t.threshold),
    });
    b.push(
        t.at_ms,
        Kind::Alert,
        "alert_history",
        &r.service,
        format!("{} {} alert {to}{figures}", r.slo, r.kind.as_str()),
        details,
    );
}

fn deploy(b: &mut Builder, d: &Deploy, impact: Option<&Impact>) {
    let worst = impact.and_then(|i| i.worst());
    let cost = match (impact, worst) {
        (Some(i), Some(w)) => format!(
            "; consumed {} of the {} budget of {}{}",
            pct(w.budget_consumed),
            w.window,
            w.slo,
            if i.flagged { " (flagged)" } else { "" }
        ),
        _ => String::new(),
    };
    let details = json!({
        "id": d.id, "version": d.version, "commit": d.commit, "actor": d.actor,
        "started_at": rfc3339(d.started_at_ms), "finished_at": rfc3339(d.finished_at_ms),
        "outcome": d.outcome.as_str(),
        "flagged": impact.map(|i| i.flagged),
        "final_figures": impact.map(|i| i.final_figures),
        "budget_consumed": worst.map(|w| w.budget_consumed),
        "slo": worst.map(|w| w.slo.clone()),
        "window_minutes": impact.map(|i| i.window_minutes),
        "bad_after": worst.map(|w| w.after.bad),
        "events_after": worst.map(|w| w.after.events),
        "burn_rate_before": worst.and_then(|w| w.before.burn_rate),
        "burn_rate_after": worst.and_then(|w| w.after.burn_rate),
    });
    b.push(
        d.started_at_ms,
        Kind::Deploy,
        "deploys",
        &d.service,
        format!("{} deployed {} {} ({}){cost}", d.actor, d.service, d.version, d.outcome.as_str()),
        details,
    );
}

/// An alert's phases in the order they follow each other (pending before
/// firing when both happen at one evaluation); 0 for other entries.
fn phase_rank(e: &Entry) -> u8 {
    match e.details.get("to").and_then(Value::as_str) {
        Some("pending") => 1,
        Some("firing") => 2,
        Some("resolved") => 3,
        Some("dropped") => 4,
        _ => 0,
    }
}

/// Oldest first; ties by kind, then service, source, an alert's phase and
/// the summary, so the order never depends on the order of the inputs.
fn finish(q: &Query, mut entries: Vec<Entry>) -> Timeline {
    entries.sort_by(|a, b| {
        (a.at_ms, a.kind, &a.service, &a.source, phase_rank(a), &a.summary).cmp(&(
            b.at_ms,
            b.kind,
            &b.service,
            &b.source,
            phase_rank(b),
            &b.summary,
        ))
    });
    entries.dedup();
    let truncated = entries.len() > MAX_ENTRIES;
    entries.truncate(MAX_ENTRIES);
    Timeline {
        services: q.services.clone(),
        from: rfc3339(q.from_ms),
        to: rfc3339(q.to_ms),
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        entries,
        truncated,
    }
}
