use super::*;
use crate::alert::{AlertPolicy, Alerts};
use crate::event::{Origin, RequestEvent};
use crate::sli::Engine;
use crate::spec::load_str;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z, a Friday
const MIN: i64 = 60_000;

fn slo(name: &str, service: &str) -> String {
    format!(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: {service}\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    filter: {{service: {service}}}\n    good: {{status: \"< 500\"}}\n---\n"
    )
}

fn set(extra: &str) -> SloSet {
    load_str("specs.yaml", &format!("{}{}{extra}", slo("checkout-avail", "checkout"), slo("search-avail", "search")))
        .unwrap_or_else(|d| panic!("{d:?}"))
}

/// `n` requests of `service` in minute `m`, `bad` of them 503.
fn traffic(e: &mut Engine, service: &str, m: i64, n: u64, bad: u64) {
    use crate::event::EventSink;
    let ev = |status| RequestEvent {
        ts_ms: T0 + m * MIN,
        origin: Some(Origin::Ndjson),
        service,
        status,
        ..Default::default()
    };
    e.events(&ev(200), n - bad);
    e.events(&ev(503), bad);
}

struct World {
    set: SloSet,
    engine: Engine,
    alerts: Alerts,
    freezer: Freezer,
}

impl World {
    fn new(extra: &str) -> World {
        let set = set(extra);
        let engine = Engine::new(&set, false);
        World { set, engine, alerts: Alerts::new(AlertPolicy::default()), freezer: Freezer::new() }
    }

    fn decide(&mut self, at: i64) -> Board {
        let statuses = self.engine.evaluate(at);
        self.alerts.observe(&statuses, at);
        let records: Vec<AlertRecord> = self.alerts.records().cloned().collect();
        self.freezer.decide(&self.set, &statuses, &records, &[], 100, at)
    }
}

fn kinds(s: &ServiceFreeze) -> Vec<&'static str> {
    s.reasons.iter().map(|r| r.kind).collect()
}

#[test]
fn the_builtin_policy_freezes_a_spent_budget_but_lets_hotfixes_and_rollbacks_through() {
    let mut w = World::new("");
    for m in 0..60 {
        traffic(&mut w.engine, "checkout", m, 100, 0);
        traffic(&mut w.engine, "search", m, 100, 0);
    }
    let b = w.decide(T0 + 60 * MIN);
    let c = b.get("checkout").unwrap();
    assert_eq!((c.status, c.frozen, c.policy.as_str()), (Status::Ok, false, "default"));
    assert!(c.allows(ChangeType::Feature));
    assert_eq!(c.approvers, 2);

    // 2 % of checkout's requests fail: twice the 1 % budget of the window.
    traffic(&mut w.engine, "checkout", 60, 6_000, 6_000 / 50 * 2 + 6_000 / 100 * 2);
    let b = w.decide(T0 + 61 * MIN + 1);
    let c = b.get("checkout").unwrap();
    assert_eq!(c.status, Status::Frozen);
    assert!(kinds(c).contains(&"budget"), "{:?}", c.reasons);
    let budget = c.reasons.iter().find(|r| r.kind == "budget").unwrap();
    assert_eq!(budget.slo.as_deref(), Some("checkout-avail"));
    assert!(budget.measured.unwrap() <= 0.0);
    assert_eq!(budget.threshold, Some(0.0));
    assert!(budget.message.contains("error budget spent"), "{}", budget.message);
    assert!(!c.allows(ChangeType::Feature));
    assert!(c.allows(ChangeType::Hotfix) && c.allows(ChangeType::Rollback));
    // The other service is not touched.
    assert_eq!(b.get("search").unwrap().status, Status::Ok);
    assert_eq!(b.get("nope"), None);
}

#[test]
fn a_firing_page_freezes_even_with_budget_left() {
    let mut w = World::new("");
    for m in 0..3_000 {
        traffic(&mut w.engine, "checkout", m, 1_000, 0);
    }
    // Ten minutes of nothing but errors: a fast burn that pages (16.7 over
    // the hour), while two thirds of the 30-day budget are left.
    for m in 3_000..3_010 {
        traffic(&mut w.engine, "checkout", m, 1_000, 1_000);
    }
    let b = w.decide(T0 + 3_010 * MIN);
    let c = b.get("checkout").unwrap();
    assert_eq!(c.status, Status::Frozen, "{c:?}");
    let alert = c.reasons.iter().find(|r| r.kind == "alert").expect("an alert reason");
    assert!(alert.message.contains("page alert firing"), "{}", alert.message);
    assert!(c.slos[0].budget_remaining > 0.6, "{c:?}");
    assert_eq!(kinds(c), ["alert"]);
}

#[test]
fn too_few_events_is_insufficient_data_which_freezes_only_when_the_policy_says_so() {
    let mut w = World::new("");
    traffic(&mut w.engine, "search", 0, 50, 50);
    let b = w.decide(T0 + MIN + 1);
    let s = b.get("search").unwrap();
    assert_eq!((s.status, s.frozen), (Status::InsufficientData, false));
    assert_eq!(kinds(s), ["insufficient_data"]);
    assert!(!s.slos[0].judged);

    let policy = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: strict}\nspec:\n  services: [search]\n  insufficient_data: freeze\n";
    let mut w = World::new(policy);
    traffic(&mut w.engine, "search", 0, 50, 50);
    let s = w.decide(T0 + MIN + 1).get("search").unwrap().clone();
    assert_eq!((s.status, s.frozen, s.policy.as_str()), (Status::InsufficientData, true, "strict"));
    assert!(!s.allows(ChangeType::Feature));
}

/// Frozen at half the budget left; thawed only once more than 60 % is left
/// again (margin 0.1), so a budget hovering at the threshold does not flap.
#[test]
fn a_frozen_service_thaws_only_when_the_condition_clears_by_the_margin() {
    let policy = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: half}\nspec:\n  services: [checkout]\n  freeze_when: {budget_remaining_at_most: 0.5}\n  thaw: {budget_margin: 0.1}\n  warning: {budget_margin: 0.2}\n";
    let mut w = World::new(policy);
    // 10,000 requests, 55 failed: 0.55 % of the 1 % budget spent, 45 % left.
    traffic(&mut w.engine, "checkout", 0, 10_000, 55);
    let first = w.decide(T0 + MIN + 1);
    let c = first.get("checkout").unwrap();
    assert_eq!(c.status, Status::Frozen);
    let since = c.reasons[0].since_ms;
    assert_eq!(since, T0 + MIN + 1);

    // 54 % left: above the threshold, within the margin: still frozen, same since.
    traffic(&mut w.engine, "checkout", 1, 2_000, 0);
    let c = w.decide(T0 + 2 * MIN + 1).get("checkout").unwrap().clone();
    assert!((c.slos[0].budget_remaining - 0.5417).abs() < 1e-3, "{}", c.slos[0].budget_remaining);
    assert_eq!(c.status, Status::Frozen);
    assert_eq!(c.reasons[0].since_ms, since);

    // 63 % left: cleared by the margin; within the warning margin (≤ 70 %).
    traffic(&mut w.engine, "checkout", 2, 3_000, 0);
    let c = w.decide(T0 + 3 * MIN + 1).get("checkout").unwrap().clone();
    assert_eq!(c.status, Status::Warning, "{c:?}");
    assert!(c.allows(ChangeType::Feature));
    assert_eq!(kinds(&c), ["budget"]);

    // Back to 54 %: not frozen again until the threshold itself is crossed.
    traffic(&mut w.engine, "checkout", 3, 100, 14);
    let c = w.decide(T0 + 4 * MIN + 1).get("checkout").unwrap().clone();
    assert!(c.slos[0].budget_remaining > 0.5 && c.slos[0].budget_remaining < 0.6, "{}", c.slos[0].budget_remaining);
    assert_eq!(c.status, Status::Warning);
}

#[test]
fn burn_rate_conditions_freeze_and_warn_per_window() {
    let policy = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: burn}\nspec:\n  services: [checkout]\n  freeze_when:\n    burn_rate: [{window: 5m, above: 1}]\n";
    let mut w = World::new(policy);
    for m in 0..5 {
        traffic(&mut w.engine, "checkout", m, 1_000, 9); // burn 0.9: within 80 % of 1
    }
    let c = w.decide(T0 + 5 * MIN).get("checkout").unwrap().clone();
    assert_eq!(c.status, Status::Warning, "{c:?}");
    assert_eq!(c.reasons[0].kind, "burn_rate");
    assert!((c.reasons[0].measured.unwrap() - 0.9).abs() < 1e-9);
    for m in 5..10 {
        traffic(&mut w.engine, "checkout", m, 1_000, 20); // burn 2
    }
    let c = w.decide(T0 + 10 * MIN).get("checkout").unwrap().clone();
    assert_eq!(c.status, Status::Frozen);
    assert_eq!(c.reasons[0].threshold, Some(1.0));
    assert!(c.reasons[0].message.contains("burn rate over 5m is 2.00"), "{}", c.reasons[0].message);
}

/// "No deploys Friday 16:00 to Monday 08:00 Europe/Berlin", over the
/// weekend the clocks go back (2026-10-25): the window follows the local
/// clock at both ends.
#[test]
fn a_weekly_calendar_freeze_follows_local_time_across_a_dst_change() {
    let policy = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: weekend}\nspec:\n  services: [\"*\"]\n  calendar:\n    - {weekly: {day: friday, start: \"16:00\", duration: 64h, timezone: Europe/Berlin}, reason: no deploys over the weekend}\n";
    let mut w = World::new(policy);
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let frozen = |w: &mut World, t: i64| {
        let b = w.decide(t);
        let c = b.get("checkout").unwrap().clone();
        (c.frozen, c.reasons.iter().find(|r| r.kind == "calendar").map(|r| (r.since_ms, r.message.clone())))
    };
    // Friday 15:59 CEST (13:59 UTC): open. 16:00 CEST: frozen.
    assert!(!frozen(&mut w, at("2026-10-23T13:59:00Z")).0);
    let (is, why) = frozen(&mut w, at("2026-10-23T14:00:30Z"));
    assert!(is);
    let (since, message) = why.unwrap();
    assert_eq!(since, at("2026-10-23T14:00:00Z"));
    assert_eq!(message, "calendar freeze: no deploys over the weekend");
    // Monday 07:59 CET is 06:59 UTC (an hour later in UTC than before the
    // change): still frozen; 08:00 CET (07:00 UTC): open.
    assert!(frozen(&mut w, at("2026-10-26T06:59:00Z")).0);
    assert!(!frozen(&mut w, at("2026-10-26T07:00:00Z")).0);
    // Every service is covered, and hotfixes still go.
    let b = w.decide(at("2026-10-24T12:00:00Z"));
    assert!(b.services.iter().all(|s| s.frozen && s.allows(ChangeType::Hotfix) && !s.allows(ChangeType::Feature)));
}

#[test]
fn the_most_specific_policy_governs_a_service() {
    let policies = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: all}\nspec:\n  services: [\"*\"]\n  approvers: 3\n---\napiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: check-glob}\nspec:\n  services: [\"check*\"]\n  approvers: 4\n---\napiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: checkout-exact}\nspec:\n  services: [checkout]\n  approvers: 5\n";
    let mut w = World::new(policies);
    let b = w.decide(T0);
    assert_eq!(b.get("checkout").map(|s| (s.policy.as_str(), s.approvers)), Some(("checkout-exact", 5)));
    assert_eq!(b.get("search").map(|s| (s.policy.as_str(), s.approvers)), Some(("all", 3)));
    let set = w.set.clone();
    let builtin = FreezePolicy::builtin();
    assert_eq!(policy_for(&set.policies, &builtin, "checkers").name, "check-glob");
    assert_eq!(policy_for(&[], &builtin, "checkers").name, "default");
}

#[test]
fn policy_documents_report_every_problem_with_its_position() {
    let text = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: bad}\nspec:\n  services: []\n  freeze_when:\n    burn_rate: [{window: 10m, above: 0}]\n    alerts: [sev1]\n  never_block: [hotfix, deploy]\n  approvers: 0\n  insufficient_data: maybe\n  thaw: {burn_factor: 2}\n  colour: red\n";
    let errs: Vec<String> = load_str("p.yaml", text).unwrap_err().iter().map(|d| d.to_string()).collect();
    let want = [
        "p.yaml:5:13: `spec.services` must name at least one service",
        "p.yaml:7:26: `spec.freeze_when.burn_rate[0].window` must be one of 5m, 30m, 1h, 2h, 6h, 1d, 3d, found 10m",
        "p.yaml:7:38: `spec.freeze_when.burn_rate[0].above` must be a burn rate above 0, found 0",
        "p.yaml:8:14: `spec.freeze_when.alerts` takes `page` and `ticket`, found `sev1`",
        "p.yaml:9:25: `spec.never_block` takes `feature`, `hotfix` and `rollback`, found `deploy`",
        "p.yaml:10:14: `spec.approvers` must be a whole number from 1 to 20, found 0",
        "p.yaml:11:22: `spec.insufficient_data` must be `allow` or `freeze`, found `maybe`",
        "p.yaml:12:23: `spec.thaw.burn_factor` must be above 0 and at most 1, found 2",
        "p.yaml:13:3:",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (e, w) in errs.iter().zip(want) {
        assert!(e.starts_with(w), "{e}\n  wanted {w}");
    }

    let dup = "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: a}\nspec: {services: [x]}\n---\napiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: a}\nspec: {services: [y]}\n";
    let errs: Vec<String> = load_str("d.yaml", dup).unwrap_err().iter().map(|d| d.to_string()).collect();
    assert_eq!(errs, ["d.yaml:8:18: duplicate FreezePolicy name `a`; first defined at d.yaml:3"]);
    let empty =
        "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: a}\nspec: {services: [x], freeze_when: {}}\n";
    let errs: Vec<String> = load_str("e.yaml", empty).unwrap_err().iter().map(|d| d.to_string()).collect();
    assert!(errs[0].contains("names no condition"), "{errs:?}");
}

fn deploy(id: &str, service: &str, version: &str, start_min: i64, end_min: i64) -> deploys::Deploy {
    deploys::Deploy {
        id: id.into(),
        service: service.into(),
        version: version.into(),
        commit: None,
        actor: "ci".into(),
        started_at_ms: T0 + start_min * MIN,
        finished_at_ms: T0 + end_min * MIN,
        outcome: deploys::Outcome::Success,
        recorded_by: "ci".into(),
        recorded_at_ms: T0 + end_min * MIN,
    }
}

impl World {
    /// Assess `deploys` and decide, as the state thread does at a tick.
    fn assess(
        &mut self,
        assessor: &mut deploys::Assessor,
        d: &[deploys::Deploy],
        at: i64,
    ) -> (Vec<deploys::Impact>, Board) {
        let statuses = self.engine.evaluate(at);
        self.alerts.observe(&statuses, at);
        let records: Vec<AlertRecord> = self.alerts.records().cloned().collect();
        let (set, freezer, engine) = (&self.set, &self.freezer, &mut self.engine);
        let impacts =
            assessor.assess(d, |sv| freezer.policy(set, sv), &statuses, |slo, a, b| engine.window_stats(slo, a, b), at);
        let board = self.freezer.decide(&self.set, &statuses, &records, &impacts, 100, at);
        (impacts, board)
    }
}

/// A deploy after which checkout fails: its cost is the after-hour's bad
/// events over the 30-day window's budget, the burn before and after are
/// compared, it is flagged over the policy's share, named among the reasons
/// of the freeze it caused; a quiet deploy of search costs nothing.
#[test]
fn a_costly_deploy_is_measured_flagged_and_named_in_the_freeze() {
    let mut w = World::new("");
    // Two hours of clean traffic, a deploy at minute 120 to 125, then 10 % failures for 30 minutes.
    for m in 0..120 {
        traffic(&mut w.engine, "checkout", m, 100, 0);
        traffic(&mut w.engine, "search", m, 100, 0);
    }
    for m in 120..150 {
        traffic(&mut w.engine, "checkout", m, 100, 10);
        traffic(&mut w.engine, "search", m, 100, 0);
    }
    let ds = vec![deploy("d2", "search", "7.0.0", 126, 127), deploy("d1", "checkout", "1.4.2", 120, 125)];
    let mut assessor = deploys::Assessor::new();
    let at = T0 + 150 * MIN;
    let (impacts, board) = w.assess(&mut assessor, &ds, at);
    let costly = impacts.iter().find(|i| i.id == "d1").unwrap();
    let c = &costly.slos[0];
    assert_eq!(c.slo, "checkout-avail");
    assert_eq!((c.before.events, c.before.bad, c.before.burn_rate), (6_000, 0, Some(0.0)));
    assert_eq!((c.after.events, c.after.bad), (3_000, 300));
    assert!((c.after.burn_rate.unwrap() - 10.0).abs() < 1e-9, "{:?}", c.after);
    assert_eq!(c.after.from_ms, T0 + 120 * MIN);
    assert_eq!(c.after.to_ms, at + 1, "the after-hour is measured up to now while it lasts");
    // 300 bad of a budget of 1 % of 15,000 events: twice the budget.
    assert!((c.budget_consumed - 2.0).abs() < 1e-9, "{}", c.budget_consumed);
    assert!(c.flagged && costly.flagged && !costly.final_figures);
    assert_eq!(costly.message(), "checkout 1.4.2 consumed 200 % of the 30d error budget of checkout-avail");

    let quiet = impacts.iter().find(|i| i.id == "d2").unwrap();
    assert_eq!(quiet.slos[0].budget_consumed, 0.0);
    assert!(!quiet.flagged);

    let checkout = board.get("checkout").unwrap();
    assert_eq!(checkout.status, Status::Frozen);
    let r = checkout.reasons.iter().find(|r| r.kind == "deploy").unwrap();
    assert_eq!((r.slo.as_deref(), r.threshold, r.since_ms), (Some("checkout-avail"), Some(0.2), T0 + 120 * MIN));
    assert!(r.message.starts_with("checkout 1.4.2 consumed 200 %"), "{}", r.message);
    assert!(board.get("search").unwrap().reasons.is_empty());

    // Two hours after its after-hour ended, the figures are final and kept.
    let later = T0 + (125 + 60 + 61) * MIN;
    let (impacts, _) = w.assess(&mut assessor, &ds, later);
    let settled = impacts.iter().find(|i| i.id == "d1").unwrap();
    assert!(settled.final_figures);
    assert_eq!(settled.slos[0].after.to_ms, T0 + 185 * MIN);
    let (again, _) = w.assess(&mut assessor, &ds, later + 10 * MIN);
    assert_eq!(again.iter().find(|i| i.id == "d1").unwrap().assessed_at_ms, later, "not measured again");
}

/// A policy's `deploys` block sets the window and the share that flags.
#[test]
fn a_policy_sets_the_deploy_window_and_threshold() {
    let mut w = World::new(
        "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: strict}\nspec:\n  services: [checkout]\n  deploys: {window: 30m, flag_budget_consumed: 0.01}\n",
    );
    for m in 0..60 {
        traffic(&mut w.engine, "checkout", m, 100, if m >= 40 { 1 } else { 0 });
        traffic(&mut w.engine, "search", m, 100, 0);
    }
    let ds = vec![deploy("d1", "checkout", "2.0.0", 40, 41)];
    let (impacts, board) = w.assess(&mut deploys::Assessor::new(), &ds, T0 + 60 * MIN);
    let i = &impacts[0];
    assert_eq!((i.window_minutes, i.flag_budget_consumed), (30, 0.01));
    assert_eq!(i.slos[0].before.from_ms, T0 + 10 * MIN);
    // 20 bad of a budget of 60 events: a third.
    assert!((i.slos[0].budget_consumed - 20.0 / 60.0).abs() < 1e-9);
    assert!(i.flagged);
    // Checkout is fine overall (0.33 % bad of a 1 % budget): not frozen, so no deploy reason.
    assert_eq!(board.get("checkout").unwrap().status, Status::Ok);
    assert!(board.get("checkout").unwrap().reasons.is_empty());

    let bad = crate::spec::load_str(
        "p.yaml",
        "apiVersion: slo-agent/v1\nkind: FreezePolicy\nmetadata: {name: p}\nspec:\n  services: [x]\n  deploys: {window: 2d, flag_budget_consumed: 0, extra: 1}\n",
    )
    .unwrap_err();
    let text: Vec<String> = bad.iter().map(|d| d.to_string()).collect();
    assert!(text.iter().any(|t| t.contains("spec.deploys.window")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("spec.deploys.flag_budget_consumed")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("extra")), "{text:?}");
}
