//! Incidents: what people (and page alerts) declare is wrong, with a
//! timeline of updates, until a human resolves it (`docs/status-page.md`).
//!
//! This module owns the model, its checks and bounds, the ids
//! (`inc-YYYYMMDD-NNN`, by the UTC day it started), the in-memory set the
//! API and the status page read, and the rule that opens incidents from
//! alert transitions ([`Incidents::from_transitions`]).
//!
//! **Architecture invariant:** pure: no clock (times are passed in), no I/O;
//! the API stores what it changed (as JSON the store does not interpret)
//! before it puts it here. Memory is bounded: [`MAX_INCIDENTS`] incidents of
//! at most [`MAX_UPDATES`] updates of at most [`MAX_MESSAGE_CHARS`] characters.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::alert::{AlertKind, Phase, Transition};
use crate::spec::model::Severity;
use crate::timefmt::rfc3339;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest update message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Services one incident names at most.
pub const MAX_SERVICES: usize = 50;
/// Longest service name.
pub const MAX_SERVICE_CHARS: usize = 200;
/// Updates one incident holds at most (the first included).
pub const MAX_UPDATES: usize = 500;
/// Incidents kept at most; opening another beyond it is refused (409)
/// until pruning forgets old resolved ones.
pub const MAX_INCIDENTS: usize = 5000;
/// How long a resolved incident is kept (and listed as recent).
pub const RESOLVED_RETENTION_MS: i64 = 90 * 86_400_000;
/// How long a resolved incident stays on the status page.
pub const RECENT_MS: i64 = 7 * 86_400_000;
/// Incidents the same UTC day may open (`-001` … `-999`).
const MAX_PER_DAY: u32 = 999;

/// Where an incident stands (Statuspage's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Investigating, Status::Identified, Status::Monitoring, Status::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Monitoring => "monitoring",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How bad it is for users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

impl Impact {
    pub const ALL: [Impact; 4] = [Impact::None, Impact::Minor, Impact::Major, Impact::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Impact> {
        Impact::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub at_ms: i64,
    pub status: Status,
    pub message: String,
    /// `alert:<alert key>` or `user:<token name>`.
    pub by: String,
}

/// An incident as stored (times in ms; [`Incident::to_json`] is what the API shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub services: Vec<String>,
    pub status: Status,
    pub impact: Impact,
    pub started_at_ms: i64,
    /// Pruning reads this member (`store::Kept::Incidents`).
    pub resolved_at_ms: Option<i64>,
    pub opened_by: String,
    pub updates: Vec<Update>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.resolved_at_ms.is_none()
    }

    /// The API's JSON: `id`, `title`, `services`, `status`, `impact`,
    /// `started_at`, `resolved_at` (RFC 3339 or null), `opened_by`,
    /// `updates` [{`at`, `status`, `message`, `by`}] oldest first.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "services": self.services,
            "status": self.status,
            "impact": self.impact,
            "started_at": rfc3339(self.started_at_ms),
            "resolved_at": self.resolved_at_ms.map(rfc3339),
            "opened_by": self.opened_by,
            "updates": self.updates.iter().map(|u| serde_json::json!({
                "at": rfc3339(u.at_ms), "status": u.status, "message": u.message, "by": u.by,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn to_record(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an incident serializes")
    }
}

/// Why a change was refused; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncidentError {
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 404.
    #[error("no incident {0:?}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
}

/// What `POST /api/v1/incidents` asks for (checked by [`Incidents::open`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub title: String,
    pub services: Vec<String>,
    pub impact: Impact,
    pub status: Status,
    pub message: String,
    pub started_at_ms: Option<i64>,
    pub opened_by: String,
}

/// Text on one line (titles, names): trimmed, non-empty, no control characters.
fn one_line(what: &str, v: &str, max: usize) -> Result<String, IncidentError> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(IncidentError::Invalid(format!(
            "`{what}` must be non-empty, on one line, at most {max} characters"
        )));
    }
    Ok(t.to_string())
}

/// A message: trimmed, non-empty, at most [`MAX_MESSAGE_CHARS`]; line
/// breaks and tabs allowed, other control characters not.
pub fn message(v: &str) -> Result<String, IncidentError> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > MAX_MESSAGE_CHARS {
        return Err(IncidentError::Invalid(format!(
            "`message` must be non-empty and at most {MAX_MESSAGE_CHARS} characters"
        )));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(IncidentError::Invalid("`message` must not hold control characters other than line breaks".into()));
    }
    Ok(t.replace("\r\n", "\n"))
}

/// The UTC day of `ms` as `YYYYMMDD`.
fn day(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y%m%d").to_string(),
        Err(_) => "00000000".into(),
    }
}

/// Every incident kept, by id.
#[derive(Debug, Clone, Default)]
pub struct Incidents {
    by_id: BTreeMap<String, Incident>,
    /// Bumped by every change (readers that cache what they show compare it).
    generation: u64,
}

/// What the alerts did to the incidents: new or changed, to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    pub changed: Vec<Incident>,
    /// Services whose alert could not open an incident (the set is full).
    pub refused: Vec<String>,
}

impl Incidents {
    /// The set from the stored records; ids of records that do not parse.
    pub fn restore(records: Vec<(String, Vec<u8>)>) -> (Incidents, Vec<String>) {
        let mut set = Incidents::default();
        let mut bad = Vec::new();
        for (id, json) in records {
            match serde_json::from_slice::<Incident>(&json) {
                Ok(i) if i.id == id => {
                    set.by_id.insert(id, i);
                }
                _ => bad.push(id),
            }
        }
        (set, bad)
    }

    /// Changes so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.by_id.get(id)
    }

    /// Open incidents, newest first, then those resolved since `since_ms`, newest first.
    pub fn list(&self, since_ms: i64) -> Vec<&Incident> {
        let mut open: Vec<&Incident> = self.by_id.values().filter(|i| i.is_open()).collect();
        let mut recent: Vec<&Incident> =
            self.by_id.values().filter(|i| i.resolved_at_ms.is_some_and(|r| r >= since_ms)).collect();
        open.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then(b.id.cmp(&a.id)));
        recent.sort_by(|a, b| b.resolved_at_ms.cmp(&a.resolved_at_ms).then(b.id.cmp(&a.id)));
        open.extend(recent);
        open
    }

    /// The open incident that names `service`, if any (the newest).
    pub fn open_for(&self, service: &str) -> Option<&Incident> {
        self.by_id
            .values()
            .filter(|i| i.is_open() && i.services.iter().any(|s| s == service))
            .max_by_key(|i| (i.started_at_ms, i.id.clone()))
    }

    /// A fresh id for an incident starting at `at_ms`.
    fn next_id(&self, at_ms: i64) -> Result<String, IncidentError> {
        let prefix = format!("inc-{}-", day(at_ms));
        let last = self
            .by_id
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| k[prefix.len()..].parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        if last >= MAX_PER_DAY {
            return Err(IncidentError::Conflict(format!("{MAX_PER_DAY} incidents were opened that day already")));
        }
        Ok(format!("{prefix}{:03}", last + 1))
    }

    /// The incident `draft` opens at `now_ms` (not kept yet: [`Incidents::put`] it once stored).
    pub fn open(&self, draft: Draft, now_ms: i64) -> Result<Incident, IncidentError> {
        if self.by_id.len() >= MAX_INCIDENTS {
            return Err(IncidentError::Conflict(format!(
                "{MAX_INCIDENTS} incidents are kept already; resolved ones are forgotten after 90 days"
            )));
        }
        let title = one_line("title", &draft.title, MAX_TITLE_CHARS)?;
        if draft.services.is_empty() || draft.services.len() > MAX_SERVICES {
            return Err(IncidentError::Invalid(format!("`services` must name 1 to {MAX_SERVICES} services")));
        }
        let mut services = Vec::new();
        for s in &draft.services {
            let s = one_line("services", s, MAX_SERVICE_CHARS)?;
            if !services.contains(&s) {
                services.push(s);
            }
        }
        if draft.status == Status::Resolved {
            return Err(IncidentError::Invalid("an incident cannot be opened resolved".into()));
        }
        let message = message(&draft.message)?;
        let started_at_ms = draft.started_at_ms.unwrap_or(now_ms);
        if started_at_ms > now_ms + 5 * 60_000 {
            return Err(IncidentError::Invalid("`started_at` is in the future".into()));
        }
        if started_at_ms < now_ms - RESOLVED_RETENTION_MS {
            return Err(IncidentError::Invalid("`started_at` is older than the 90 days incidents are kept".into()));
        }
        Ok(Incident {
            id: self.next_id(started_at_ms)?,
            title,
            services,
            status: draft.status,
            impact: draft.impact,
            started_at_ms,
            resolved_at_ms: None,
            opened_by: draft.opened_by.clone(),
            updates: vec![Update { at_ms: now_ms, status: draft.status, message, by: draft.opened_by }],
        })
    }

    /// The incident after an update (not kept yet). `resolved` closes it;
    /// an update of a resolved incident is refused (409).
    pub fn updated(
        &self,
        id: &str,
        status: Status,
        message_text: &str,
        impact: Option<Impact>,
        by: &str,
        now_ms: i64,
    ) -> Result<Incident, IncidentError> {
        let Some(old) = self.by_id.get(id) else {
            return Err(IncidentError::NotFound(id.to_string()));
        };
        if !old.is_open() {
            return Err(IncidentError::Conflict(format!("incident {id} is resolved; open a new one")));
        }
        if old.updates.len() >= MAX_UPDATES {
            return Err(IncidentError::Conflict(format!("incident {id} has {MAX_UPDATES} updates, the most it may")));
        }
        let message = message(message_text)?;
        let mut next = old.clone();
        // Never before the last update, whatever the clock did.
        let at_ms = now_ms.max(old.updates.last().map_or(old.started_at_ms, |u| u.at_ms));
        next.status = status;
        if let Some(i) = impact {
            next.impact = i;
        }
        if status == Status::Resolved {
            next.resolved_at_ms = Some(at_ms);
        }
        next.updates.push(Update { at_ms, status, message, by: by.to_string() });
        Ok(next)
    }

    /// Keep an incident (new or changed), after it was stored.
    pub fn put(&mut self, i: Incident) {
        self.generation += 1;
        self.by_id.insert(i.id.clone(), i);
    }

    /// Forget incidents resolved before `before_ms`; their ids.
    pub fn prune(&mut self, before_ms: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .by_id
            .values()
            .filter(|i| i.resolved_at_ms.is_some_and(|r| r < before_ms))
            .map(|i| i.id.clone())
            .collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        self.generation += gone.len() as u64;
        gone
    }

    /// What alert transitions do to incidents (`docs/status-page.md`):
    ///
    /// - an SLO alert of a severity in `open_on` that starts firing opens an
    ///   incident for its service (status `investigating`, impact `major`
    ///   for a page, `minor` otherwise) with a first update, unless one is
    ///   open for that service already: then that one gets an update
    ///   (another alert started firing);
    /// - such an alert resolving adds an update to the service's open
    ///   incident but never resolves it: a human does (`resolved` update),
    ///   once users are fine — an alert clears on budget burn, not on what
    ///   users saw.
    ///
    /// Certificate, anomaly and quota alerts never open incidents. Messages
    /// are written for the public status page: they name the service only,
    /// never an SLO, route or alert key (the key is in `by`).
    pub fn from_transitions(&self, transitions: &[Transition], open_on: &BTreeSet<Severity>) -> AlertChanges {
        let mut out = AlertChanges::default();
        let mut work = self.clone();
        for t in transitions {
            if !matches!(t.kind, AlertKind::Page | AlertKind::Ticket) || !open_on.contains(&t.kind.severity()) {
                continue;
            }
            let service = &t.record.service;
            let by = format!("alert:{}", t.record.dedup_key());
            let open = work.open_for(service).cloned();
            let change = match (t.to, open) {
                (Some(Phase::Firing), None) => {
                    let (impact, words) = match t.kind.severity() {
                        Severity::Page => (Impact::Major, "errors or slow responses"),
                        Severity::Ticket => (Impact::Minor, "a slightly raised rate of errors or slow responses"),
                    };
                    let draft = Draft {
                        title: format!("{service}: degraded service"),
                        services: vec![service.clone()],
                        impact,
                        status: Status::Investigating,
                        message: format!(
                            "We are investigating {words} affecting {service}. This incident was opened automatically by our monitoring."
                        ),
                        started_at_ms: Some(t.record.firing_since_ms.unwrap_or(t.at_ms).min(t.at_ms)),
                        opened_by: by,
                    };
                    match work.open(draft, t.at_ms) {
                        Ok(i) => Some(i),
                        Err(_) => {
                            out.refused.push(service.clone());
                            None
                        }
                    }
                }
                (Some(Phase::Firing), Some(i)) => {
                    let m = format!("Our monitoring sees another problem with {service}; we are investigating.");
                    work.updated(&i.id, i.status, &m, None, &by, t.at_ms).ok()
                }
                (Some(Phase::Resolved), Some(i)) => {
                    let m = format!(
                        "Our monitoring shows {service} recovering (alert resolved). We keep watching before we close this incident."
                    );
                    work.updated(&i.id, i.status, &m, None, &by, t.at_ms).ok()
                }
                _ => None,
            };
            if let Some(i) = change {
                out.changed.retain(|c: &Incident| c.id != i.id);
                out.changed.push(i.clone());
                work.put(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
