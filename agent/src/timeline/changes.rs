//! State changes the agent records for its timelines: a service's freeze
//! status, its outage verdict, a journey passing or failing, a probe's hop
//! working or failing. The latest evaluation shows only what holds now; these
//! say when it began and ended, so a timeline of last night shows the freeze
//! that lifted at 03:12 and the partial outage that came before it.
//!
//! [`Tracker::observe`] compares an evaluation with the last state of each
//! subject and returns what changed; the runtime stores the changes (the
//! store's `state_changes` table, [`MAX_PER_SERVICE`] per service, the newest
//! kept, none older than [`KEEP_MS`]) and the timeline reads them back. A
//! subject seen for the first time is recorded only in a state worth noting
//! (frozen or warning, an outage, a failure): the quiet default is not news.
//!
//! **Architecture invariant:** pure, like the rest of the timeline: the
//! runtime passes the evaluation and its time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::freeze::{Board, Status};
use crate::outage::{Assessment, JourneyCheck, ProbeCheck, Verdict};
use crate::status::{ComponentAt, ComponentState};

/// How long recorded changes are kept: the longest range of one timeline.
pub const KEEP_MS: i64 = super::MAX_RANGE_MS;
/// Changes kept per service at most (the newest): a verdict that flips every
/// minute for the whole of [`KEEP_MS`] would need 44,640.
pub const MAX_PER_SERVICE: usize = 5_000;
/// Subjects tracked at most (services × freeze, outage, journeys, probe
/// hops); a subject beyond it is not tracked.
pub const MAX_SUBJECTS: usize = 10_000;

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub at_ms: i64,
    pub service: String,
    /// `freeze`, `outage`, `journey:NAME`, `probe:NAME/HOP` or
    /// `status:COMPONENT` (the public status page's component).
    pub subject: String,
    /// The state before; `None` the first time the subject is seen.
    pub from: Option<String>,
    /// `OK`, `WARNING`, `FROZEN`, `INSUFFICIENT_DATA` (freeze); `none`,
    /// `partial`, `total` (outage); `passed`, `failed` (journeys, probes);
    /// `operational`, `degraded_performance`, … (status page components).
    pub to: String,
    /// One line a person reads.
    pub summary: String,
    /// The figures behind it.
    pub details: Value,
}

impl Change {
    /// `freeze`, `outage`, `journey`, `probe` or `status`.
    pub fn what(&self) -> &str {
        self.subject.split(':').next().unwrap_or(&self.subject)
    }
}

/// The last state of each subject, by (service, subject).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    last: BTreeMap<(String, String), String>,
}

/// Whether a state is worth a change when seen first (a quiet one is not, and
/// a change between two quiet states is not recorded).
fn notable(subject: &str, state: &str) -> bool {
    match subject.split(':').next() {
        Some("freeze") => state == Status::Frozen.as_str() || state == Status::Warning.as_str(),
        Some("outage") => state != "none",
        Some("status") => state != ComponentState::Operational.as_str(),
        _ => state == "failed",
    }
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

impl Tracker {
    /// From the latest stored change of each subject.
    pub fn restore(latest: impl IntoIterator<Item = Change>) -> Tracker {
        let mut t = Tracker::default();
        for c in latest {
            if t.last.len() < MAX_SUBJECTS {
                t.last.insert((c.service, c.subject), c.to);
            }
        }
        t
    }

    /// Subjects tracked.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    fn see(&mut self, out: &mut Vec<Change>, mut c: Change) {
        let key = (c.service.clone(), c.subject.clone());
        let full = self.last.len() >= MAX_SUBJECTS;
        match self.last.get_mut(&key) {
            Some(last) if *last == c.to => {}
            // Between two quiet states (a freeze's `OK` and
            // `INSUFFICIENT_DATA`): nothing a timeline reader needs.
            Some(last) if !notable(&c.subject, last) && !notable(&c.subject, &c.to) => {
                last.clone_from(&c.to);
            }
            Some(last) => {
                let from = std::mem::replace(last, c.to.clone());
                if c.subject == "freeze" && c.to == Status::Ok.as_str() {
                    let was = if from == Status::Frozen.as_str() { "frozen" } else { "close to a freeze" };
                    c.summary = format!("{} no longer {was}: deploys may go ahead", c.service);
                }
                c.from = Some(from);
                out.push(c);
            }
            None if full => {}
            None => {
                self.last.insert(key, c.to.clone());
                if notable(&c.subject, &c.to) {
                    out.push(c);
                }
            }
        }
    }

    /// What changed at the evaluation of `at_ms`: freeze statuses, outage
    /// verdicts, journeys, probes, then the status page's components. A
    /// freeze board that cannot answer
    /// (`unavailable`) changes nothing.
    pub fn observe(
        &mut self,
        at_ms: i64,
        board: &Board,
        outage: &[Assessment],
        journeys: &[JourneyCheck],
        probes: &[ProbeCheck],
        components: &[ComponentAt],
    ) -> Vec<Change> {
        let mut out = Vec::new();
        if board.unavailable.is_none() {
            for f in &board.services {
                let why: Vec<&str> = f.reasons.iter().map(|r| r.message.as_str()).collect();
                let why = if why.is_empty() { String::new() } else { format!(": {}", why.join("; ")) };
                let summary = match f.status {
                    Status::Frozen => format!("{} frozen{why}", f.service),
                    Status::Warning => format!("{} close to a freeze{why}", f.service),
                    // Said after a freeze or a warning only (`see`).
                    Status::Ok => format!("{}: deploys may go ahead", f.service),
                    Status::InsufficientData => format!("{}: too little data to judge a freeze", f.service),
                };
                let reasons: Vec<Value> = f
                    .reasons
                    .iter()
                    .map(|r| json!({"reason": r.kind, "slo": r.slo, "measured": r.measured, "threshold": r.threshold}))
                    .collect();
                let details = json!({"frozen": f.frozen, "policy": f.policy, "reasons": reasons});
                self.see(&mut out, change(at_ms, &f.service, "freeze".into(), f.status.as_str(), summary, details));
            }
        }
        for a in outage {
            let to = match a.verdict {
                Verdict::None => "none",
                Verdict::Partial => "partial",
                Verdict::Total => "total",
            };
            let summary = match a.verdict {
                Verdict::None => format!("{}: the outage is over", a.service),
                _ => {
                    let mut named: Vec<String> = Vec::new();
                    let s = &a.scope;
                    for (kind, items) in [
                        ("edge locations", &s.edge_locations),
                        ("regions", &s.regions),
                        ("client classes", &s.client_classes),
                        ("routes", &s.routes),
                        ("journey steps", &s.journey_steps),
                        ("probe regions", &s.probe_regions),
                    ] {
                        if !items.is_empty() {
                            let names: Vec<&str> = items.iter().take(3).map(|i| i.name.as_str()).collect();
                            let more = items.len().saturating_sub(3);
                            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                            named.push(format!("{kind} {}{more}", names.join(", ")));
                        }
                    }
                    let blame = a.blame.map(|b| format!(", blame {b}")).unwrap_or_default();
                    let named =
                        if named.is_empty() { "no single slice stands out".to_string() } else { named.join("; ") };
                    // Synthetic checks alone carry no share of the traffic.
                    if a.failing_share > 0.0 {
                        format!(
                            "{}: {to} outage, {} of the traffic failing ({named}){blame}",
                            a.service,
                            pct(a.failing_share)
                        )
                    } else {
                        format!("{}: {to} outage: {named}{blame}", a.service)
                    }
                }
            };
            let details = json!({"verdict": to, "failing_share": a.failing_share, "blame": a.blame,
                "window_minutes": a.window_minutes, "scope": a.scope});
            self.see(&mut out, change(at_ms, &a.service, "outage".into(), to, summary, details));
        }
        for j in journeys {
            let (to, summary) = match &j.failed_step {
                Some(step) => {
                    let status = j.http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                    ("failed", format!("journey {} failed at {step} in {}{status}", j.journey, j.region))
                }
                None => ("passed", format!("journey {} passes again in {}", j.journey, j.region)),
            };
            let details = json!({"journey": j.journey, "region": j.region, "step": j.failed_step,
                "http_status": j.http_status});
            // Run time, not evaluation time: when the failure was seen.
            let at = if j.started_ms > 0 { j.started_ms } else { at_ms };
            self.see(&mut out, change(at, &j.service, format!("journey:{}", j.journey), to, summary, details));
        }
        for p in probes {
            for (hop, ok, status) in &p.hops {
                let (to, summary) = if *ok {
                    ("passed", format!("probe {} reaches {hop} again from {}", p.probe, p.region))
                } else {
                    let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
                    ("failed", format!("probe {} fails at {hop} from {}{status}", p.probe, p.region))
                };
                let details = json!({"probe": p.probe, "hop": hop, "region": p.region, "http_status": status});
                let subject = format!("probe:{}/{hop}", p.probe);
                self.see(&mut out, change(at_ms, &p.service, subject, to, summary, details));
            }
        }
        for ComponentAt { service, name, state, .. } in components {
            let summary = match state {
                ComponentState::Operational => format!("status page: {name} operational"),
                _ => format!("status page: {name} {}", state.label().to_lowercase()),
            };
            let details = json!({"component": name, "status": state.as_str()});
            self.see(&mut out, change(at_ms, service, format!("status:{name}"), state.as_str(), summary, details));
        }
        out
    }
}

fn change(at_ms: i64, service: &str, subject: String, to: &str, summary: String, details: Value) -> Change {
    Change { at_ms, service: service.to_string(), subject, from: None, to: to.to_string(), summary, details }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeze::{Reason, ServiceFreeze, Source};
    use crate::outage::Scope;

    fn board(status: Status) -> Board {
        let reasons = match status {
            Status::Frozen => vec![Reason {
                kind: "budget",
                slo: Some("shop-availability".into()),
                measured: Some(0.0),
                threshold: Some(0.1),
                since_ms: 0,
                message: "shop-availability has 0 % of its budget left".into(),
            }],
            _ => Vec::new(),
        };
        Board {
            at_ms: 0,
            services: vec![ServiceFreeze {
                service: "shop".into(),
                source: Source::default(),
                policy: "default".into(),
                status,
                frozen: status == Status::Frozen,
                reasons,
                never_block: Vec::new(),
                approvers: 0,
                slos: Vec::new(),
            }],
            source: Source::default(),
            unavailable: None,
        }
    }

    fn verdict(v: Verdict, share: f64) -> Assessment {
        let mut scope = Scope::default();
        if v != Verdict::None {
            scope.edge_locations.push(crate::outage::Item {
                name: "FRA56-P1".into(),
                success_ratio: Some(0.1),
                baseline: Some(0.99),
                requests: 500,
                share: Some(share),
            });
        }
        Assessment {
            service: "shop".into(),
            at: String::new(),
            window_minutes: 10,
            verdict: v,
            failing_share: share,
            scope,
            blame: Some("edge"),
            evidence: Vec::new(),
            judged: Vec::new(),
        }
    }

    fn journey(failed: Option<&str>, at: i64) -> JourneyCheck {
        JourneyCheck {
            journey: "checkout".into(),
            service: "shop".into(),
            region: "eu-west-1".into(),
            started_ms: at,
            failed_step: failed.map(str::to_string),
            http_status: failed.map(|_| 502),
        }
    }

    #[test]
    fn quiet_first_states_are_not_news_and_each_change_is_recorded_once() {
        let mut t = Tracker::default();
        let c = t.observe(1_000, &board(Status::Ok), &[verdict(Verdict::None, 0.0)], &[journey(None, 900)], &[], &[]);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(t.len(), 3);
        // The same again: nothing.
        assert!(t.observe(2_000, &board(Status::Ok), &[verdict(Verdict::None, 0.0)], &[], &[], &[]).is_empty());

        let c = t.observe(
            3_000,
            &board(Status::Frozen),
            &[verdict(Verdict::Partial, 0.12)],
            &[journey(Some("pay"), 2_500)],
            &[],
            &[],
        );
        let got: Vec<(&str, Option<&str>, &str, i64)> =
            c.iter().map(|c| (c.subject.as_str(), c.from.as_deref(), c.to.as_str(), c.at_ms)).collect();
        assert_eq!(
            got,
            [
                ("freeze", Some("OK"), "FROZEN", 3_000),
                ("outage", Some("none"), "partial", 3_000),
                ("journey:checkout", Some("passed"), "failed", 2_500),
            ]
        );
        assert_eq!(c[0].summary, "shop frozen: shop-availability has 0 % of its budget left");
        assert_eq!(
            c[1].summary,
            "shop: partial outage, 12.0 % of the traffic failing (edge locations FRA56-P1), blame edge"
        );
        assert_eq!(c[2].summary, "journey checkout failed at pay in eu-west-1 (HTTP 502)");
        assert_eq!(c[1].what(), "outage");
        assert_eq!(c[2].what(), "journey");

        let c = t.observe(4_000, &board(Status::Ok), &[verdict(Verdict::None, 0.0)], &[journey(None, 3_900)], &[], &[]);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].summary, "shop no longer frozen: deploys may go ahead");
        assert_eq!(c[1].summary, "shop: the outage is over");
        // Between the quiet freeze states: nothing.
        assert!(t.observe(5_000, &board(Status::InsufficientData), &[], &[], &[], &[]).is_empty());
        assert!(t.observe(6_000, &board(Status::Ok), &[], &[], &[], &[]).is_empty());
        let c = t.observe(7_000, &board(Status::Warning), &[], &[], &[], &[]);
        assert_eq!(c[0].summary, "shop close to a freeze");
        let c = t.observe(8_000, &board(Status::Ok), &[], &[], &[], &[]);
        assert_eq!(c[0].summary, "shop no longer close to a freeze: deploys may go ahead");
    }

    #[test]
    fn a_noteworthy_first_state_is_recorded_and_restoring_continues_from_the_stored_states() {
        let mut t = Tracker::default();
        let probe = ProbeCheck {
            probe: "edge".into(),
            service: "shop".into(),
            region: "local".into(),
            hops: vec![("edge".into(), true, Some(200)), ("gateway".into(), false, Some(503))],
        };
        let c = t.observe(1_000, &board(Status::Frozen), &[], &[], std::slice::from_ref(&probe), &[]);
        let got: Vec<(&str, Option<&str>, &str)> =
            c.iter().map(|c| (c.subject.as_str(), c.from.as_deref(), c.to.as_str())).collect();
        assert_eq!(got, [("freeze", None, "FROZEN"), ("probe:edge/gateway", None, "failed")]);
        assert_eq!(c[1].summary, "probe edge fails at gateway from local (HTTP 503)");

        // After a restart the stored changes say where things stood.
        let mut again = Tracker::restore(c);
        assert!(again.observe(2_000, &board(Status::Frozen), &[], &[], &[], &[]).is_empty());
        let c = again.observe(3_000, &board(Status::Ok), &[], &[], &[], &[]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].from.as_deref(), Some("FROZEN"));

        // A board that cannot answer changes nothing.
        let mut down = board(Status::Frozen);
        down.unavailable = Some("prometheus unreachable".into());
        assert!(again.observe(4_000, &down, &[], &[], &[], &[]).is_empty());
    }

    #[test]
    fn the_status_page_components_are_recorded_as_customers_saw_them() {
        let mut t = Tracker::default();
        let at = |state| {
            vec![crate::status::ComponentAt { service: "shop".into(), name: "Storefront".into(), state, counted: true }]
        };
        let b = Board::default();
        assert!(t.observe(1_000, &b, &[], &[], &[], &at(ComponentState::Operational)).is_empty());
        let c = t.observe(2_000, &b, &[], &[], &[], &at(ComponentState::PartialOutage));
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].subject.as_str(), c[0].to.as_str()), ("status:Storefront", "partial_outage"));
        assert_eq!(c[0].summary, "status page: Storefront partial outage");
        assert_eq!(c[0].what(), "status");
        let c = t.observe(3_000, &b, &[], &[], &[], &at(ComponentState::Operational));
        assert_eq!(c[0].summary, "status page: Storefront operational");
        assert_eq!(c[0].from.as_deref(), Some("partial_outage"));
    }

    #[test]
    fn subjects_beyond_the_bound_are_not_tracked() {
        let mut t = Tracker::default();
        let many: Vec<JourneyCheck> = (0..MAX_SUBJECTS + 10)
            .map(|i| JourneyCheck { journey: format!("j{i}"), ..journey(Some("pay"), 1) })
            .collect();
        let c = t.observe(1_000, &Board::default(), &[], &many, &[], &[]);
        assert_eq!(t.len(), MAX_SUBJECTS);
        assert_eq!(c.len(), MAX_SUBJECTS);
    }
}
