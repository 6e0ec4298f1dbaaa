//! Deploy events and what they cost: a pipeline records a deploy (service,
//! version, commit, actor, start, finish, outcome); at every evaluation the
//! agent measures, for each SLO of the service, the error budget spent from
//! the deploy's start to `window` after it finished (the policy's
//! `deploys.window`, default 1 h) against the `window` before it started,
//! and flags a deploy whose "after" spent more than the policy's
//! `deploys.flag_budget_consumed` of the SLO window's error budget.
//!
//! Budget spent is the after-window's bad units (events, or slices for
//! timeslice SLOs) over the error budget of the SLO's whole window at that
//! evaluation, so the shares of disjoint periods add up to the budget
//! consumed. Once an after-window has ended (and [`LATE_GRACE_MS`] more
//! for late events), its figures are final and kept, not measured again.
//!
//! **Architecture invariant:** no I/O; the counts come from the caller (the
//! state thread reads them from the engine on the evaluation tick), so
//! answers are served from the snapshot.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::sli::SloStatus;
use crate::sli::series::WindowStats;
use crate::spec::model::MINUTE_MS;
use crate::spec::policy::FreezePolicy;

/// How long deploys are kept (and listed) after they finished.
pub const DEPLOY_RETENTION_MS: i64 = 90 * 24 * 3_600_000;
/// Deploys kept at most; beyond it the oldest are forgotten.
pub const MAX_DEPLOYS: usize = 20_000;
/// Events may arrive late: an after-window's figures become final this long
/// after it ended.
pub const LATE_GRACE_MS: i64 = 3_600_000;
/// Longest rollout measured: a deploy that took longer is measured over its
/// first week.
pub const MAX_MEASURED_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    RolledBack,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::RolledBack];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::RolledBack => "rolled_back",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// One recorded deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub id: String,
    pub service: String,
    pub version: String,
    #[serde(default)]
    pub commit: Option<String>,
    /// Who deployed (as the pipeline says), else the recording token's name.
    pub actor: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub outcome: Outcome,
    /// The token that recorded it.
    pub recorded_by: String,
    pub recorded_at_ms: i64,
}

impl super::ledger::Entry for Deploy {
    fn id(&self) -> &str {
        &self.id
    }
    fn service(&self) -> &str {
        &self.service
    }
    fn created_at_ms(&self) -> i64 {
        self.started_at_ms
    }
    fn ends_at_ms(&self) -> i64 {
        self.finished_at_ms
    }
}

/// Every deploy kept, newest start first.
pub type Deploys = super::ledger::Ledger<Deploy>;

/// What one SLO counted in a period around a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Period {
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    pub events: u64,
    pub bad: u64,
    /// `null` when the period had no events.
    pub burn_rate: Option<f64>,
}

/// A deploy's cost to one SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloCost {
    pub slo: String,
    /// The SLO's window, as its spec says (`28d`).
    pub window: String,
    pub before: Period,
    pub after: Period,
    /// Share of the SLO window's error budget the after-period spent.
    pub budget_consumed: f64,
    pub flagged: bool,
}

/// What a deploy cost, as of `assessed_at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    pub id: String,
    pub service: String,
    pub version: String,
    pub started_at_ms: i64,
    pub assessed_at_ms: i64,
    /// The after-period (and its grace for late events) has ended: the
    /// figures no longer change.
    pub final_figures: bool,
    /// Any SLO's share over the policy's threshold.
    pub flagged: bool,
    /// The policy's threshold and window, as applied.
    pub flag_budget_consumed: f64,
    pub window_minutes: u32,
    pub slos: Vec<SloCost>,
}

impl Impact {
    /// The costliest SLO, for one-line messages: the SLO the deploy cost most; on a tie, one with data around the
    /// deploy over one without, then the first.
    pub fn worst(&self) -> Option<&SloCost> {
        let has_data = |c: &SloCost| c.before.burn_rate.is_some() || c.after.burn_rate.is_some();
        self.slos
            .iter()
            .rev()
            .max_by(|a, b| a.budget_consumed.total_cmp(&b.budget_consumed).then(has_data(a).cmp(&has_data(b))))
    }

    /// "checkout 1.4.2 consumed 31 % of the 28d error budget of checkout-availability".
    pub fn message(&self) -> String {
        match self.worst() {
            Some(w) => format!(
                "{} {} consumed {:.0} % of the {} error budget of {}",
                self.service,
                self.version,
                w.budget_consumed * 100.0,
                w.window,
                w.slo
            ),
            None => format!("{} {}: no SLO data to measure it against", self.service, self.version),
        }
    }
}

/// Measures deploys at each evaluation; keeps the final figures.
#[derive(Debug, Default)]
pub struct Assessor {
    settled: HashMap<String, Impact>,
}

impl Assessor {
    pub fn new() -> Assessor {
        Assessor::default()
    }

    /// The impact of every deploy (newest first, as given) as of `at_ms`.
    /// `policy_of` names each service's policy; `stats` reads one SLO's
    /// counts in a range of minutes. A deploy whose "before" began before
    /// an SLO's current window is measured only against the SLOs whose data
    /// still covers it (none: its figures are empty).
    pub fn assess<'p>(
        &mut self,
        deploys: &[Deploy],
        policy_of: impl Fn(&str) -> &'p FreezePolicy,
        statuses: &[SloStatus],
        mut stats: impl FnMut(&str, i64, i64) -> Option<WindowStats>,
        at_ms: i64,
    ) -> Vec<Impact> {
        self.settled.retain(|id, _| deploys.iter().any(|d| d.id == *id));
        let mut out = Vec::with_capacity(deploys.len());
        for d in deploys {
            if let Some(done) = self.settled.get(&d.id) {
                out.push(done.clone());
                continue;
            }
            let judging = policy_of(&d.service).deploys;
            let w = i64::from(judging.window.0) * MINUTE_MS;
            let after_to = d.finished_at_ms.min(d.started_at_ms + MAX_MEASURED_MS) + w;
            let mut slos = Vec::new();
            for s in statuses.iter().filter(|s| s.slo.service == d.service) {
                // Data older than the SLO's window may be gone: not measured.
                if d.started_at_ms - w < s.window_start_ms {
                    continue;
                }
                let period = |stats: &mut dyn FnMut(&str, i64, i64) -> Option<WindowStats>, from: i64, to: i64| {
                    let to = to.min(at_ms + 1).max(from);
                    let st = stats(&s.slo.name, from.div_euclid(MINUTE_MS), (to - 1).div_euclid(MINUTE_MS))
                        .unwrap_or_default();
                    let bad_units = (st.units_total - st.units_good).max(0.0);
                    let p = Period {
                        from_ms: from,
                        to_ms: to,
                        events: st.events.total,
                        bad: st.events.bad(),
                        burn_rate: st.burn_rate(s.slo.error_budget_ratio()),
                    };
                    (p, bad_units)
                };
                let (before, _) = period(&mut stats, d.started_at_ms - w, d.started_at_ms);
                let (after, bad_units) = period(&mut stats, d.started_at_ms, after_to);
                let allowed = s.slo.error_budget_ratio() * s.window.units_total;
                let budget_consumed = if allowed > 0.0 { bad_units / allowed } else { 0.0 };
                slos.push(SloCost {
                    slo: s.slo.name.clone(),
                    window: s.slo.window.to_string(),
                    before,
                    after,
                    budget_consumed,
                    flagged: budget_consumed > judging.flag_budget_consumed,
                });
            }
            let impact = Impact {
                id: d.id.clone(),
                service: d.service.clone(),
                version: d.version.clone(),
                started_at_ms: d.started_at_ms,
                assessed_at_ms: at_ms,
                final_figures: at_ms >= after_to + LATE_GRACE_MS,
                flagged: slos.iter().any(|c| c.flagged),
                flag_budget_consumed: judging.flag_budget_consumed,
                window_minutes: judging.window.0,
                slos,
            };
            if impact.final_figures {
                self.settled.insert(d.id.clone(), impact.clone());
            }
            out.push(impact);
        }
        out
    }
}

#[cfg(test)]
mod worst_tests {
    use super::*;

    /// A tie (nothing consumed) names an SLO with data around the deploy,
    /// not one that has none (a synthetic SLO that saw no run yet).
    #[test]
    fn the_worst_slo_of_a_tie_is_one_with_data() {
        let period = |burn: Option<f64>| Period { from_ms: 0, to_ms: 1, events: 0, bad: 0, burn_rate: burn };
        let cost = |slo: &str, consumed: f64, burn: Option<f64>| SloCost {
            slo: slo.into(),
            window: "28d".into(),
            before: period(burn),
            after: period(burn),
            budget_consumed: consumed,
            flagged: false,
        };
        let impact = |slos: Vec<SloCost>| Impact {
            id: "d".into(),
            service: "checkout".into(),
            version: "1".into(),
            started_at_ms: 0,
            assessed_at_ms: 0,
            final_figures: true,
            flagged: false,
            flag_budget_consumed: 0.1,
            window_minutes: 60,
            slos,
        };
        let tie = impact(vec![cost("availability", 0.0, Some(0.0)), cost("journey", 0.0, None)]);
        assert_eq!(tie.worst().unwrap().slo, "availability");
        let tie = impact(vec![cost("a", 0.0, Some(0.1)), cost("b", 0.0, Some(0.2))]);
        assert_eq!(tie.worst().unwrap().slo, "a");
        let costlier = impact(vec![cost("a", 0.1, Some(1.0)), cost("b", 0.3, None)]);
        assert_eq!(costlier.worst().unwrap().slo, "b");
    }
}
