use super::postmortem::{Draft, duration, figures, render};
use super::*;
use crate::alert::{AlertKind, AlertRecord, Trigger};
use crate::auth::Role;
use crate::freeze::deploys::{Outcome, Period, SloCost};
use crate::freeze::overrides::Action;
use crate::notify::silence::{MatchOp, Matcher};

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;

fn transition(at: i64, kind: AlertKind, from: Option<Phase>, to: Phase, left: f64, burn: Option<f64>) -> Transition {
    let mut record = AlertRecord::pending("checkout-availability", "checkout", kind, at);
    record.phase = to;
    record.episode = 1;
    record.budget_remaining = left;
    record.trigger = burn.map(|b| Trigger {
        windows: "1h/5m".into(),
        long_burn_rate: Some(b),
        short_burn_rate: Some(b),
        threshold: Some(14.4),
        long_window_events: 1000,
        hours_to_exhaustion: None,
    });
    Transition { slo: record.slo.clone(), kind, from, to: Some(to), at_ms: at, record }
}

fn deploy(id: &str, at: i64, version: &str, outcome: Outcome) -> Deploy {
    Deploy {
        id: id.into(),
        service: "checkout".into(),
        version: version.into(),
        commit: None,
        actor: "ci".into(),
        started_at_ms: at,
        finished_at_ms: at + MIN,
        outcome,
        recorded_by: "ci".into(),
        recorded_at_ms: at + MIN,
    }
}

fn impact(id: &str, at: i64, consumed: f64, flagged: bool) -> Impact {
    let period = |from, bad, burn| Period { from_ms: from, to_ms: from + 30 * MIN, events: 1000, bad, burn_rate: burn };
    Impact {
        id: id.into(),
        service: "checkout".into(),
        version: "1.4.2".into(),
        started_at_ms: at,
        assessed_at_ms: at + 30 * MIN,
        final_figures: true,
        flagged,
        flag_budget_consumed: 0.05,
        window_minutes: 30,
        slos: vec![SloCost {
            slo: "checkout-availability".into(),
            window: "28d".into(),
            before: period(at - 30 * MIN, 0, Some(0.0)),
            after: period(at, 200, Some(200.0)),
            budget_consumed: consumed,
            flagged,
        }],
    }
}

/// A bad deploy at T0, a page 5 minutes later, a manual freeze, a silence,
/// a rollback at +20 min, recovery at +40 min.
fn incident() -> Timeline {
    let alerts = vec![
        transition(T0 + 5 * MIN, AlertKind::Page, None, Phase::Firing, 0.9, Some(180.0)),
        transition(T0 + 40 * MIN, AlertKind::Page, Some(Phase::Firing), Phase::Resolved, 0.75, Some(2.0)),
        // Another service's alert: not in this timeline.
        Transition {
            record: AlertRecord::pending("search-availability", "search", AlertKind::Page, T0),
            ..transition(T0 + 6 * MIN, AlertKind::Page, None, Phase::Firing, 0.5, None)
        },
    ];
    let deploys = vec![
        deploy("d2", T0 + 20 * MIN, "1.4.1", Outcome::RolledBack),
        deploy("d1", T0, "1.4.2", Outcome::Success),
        // Before the range.
        deploy("d0", T0 - 2 * 3_600_000, "1.4.1", Outcome::Success),
    ];
    let impacts = vec![impact("d1", T0, 0.15, true)];
    let overrides = vec![Override {
        id: "o1".into(),
        service: "checkout".into(),
        action: Action::Freeze,
        reason: "INC-7".into(),
        created_by: "lead".into(),
        created_at_ms: T0 + 8 * MIN,
        ends_at_ms: T0 + 45 * MIN,
        ended_by: Some("lead".into()),
    }];
    let silences = vec![Silence {
        id: "s1".into(),
        matchers: vec![Matcher::new("service", "checkout", MatchOp::Eq).unwrap()],
        starts_at_ms: T0 + 7 * MIN,
        ends_at_ms: T0 + 67 * MIN,
        created_by: "oncall".into(),
        comment: "working on it".into(),
        created_at_ms: T0 + 7 * MIN,
        updated_at_ms: T0 + 7 * MIN,
    }];
    let failures = vec![Failure {
        at_ms: T0 + 3 * MIN,
        source: "journeys",
        service: "checkout".into(),
        name: "buy".into(),
        part: Some("cart".into()),
        region: "eu-west-1".into(),
        http_status: Some(503),
        error: Some("status 503, expected 200".into()),
    }];
    let audit = vec![
        AuditEntry::new(T0 + 8 * MIN, "lead", Some(Role::Approve), "freeze.override", Some("o1"), "ok", None),
        // Not about this service.
        AuditEntry::new(T0 + 9 * MIN, "sre", Some(Role::Admin), "silence.create", Some("other"), "ok", None),
    ];
    let q = Query::new(vec!["checkout".into()], T0 - 30 * MIN, T0 + 60 * MIN, T0 + 60 * MIN).unwrap();
    build(
        &q,
        &Inputs {
            alerts: &alerts,
            deploys: &deploys,
            impacts: &impacts,
            overrides: &overrides,
            silences: &silences,
            failures: &failures,
            audit: &audit,
            ..Inputs::default()
        },
    )
}

#[test]
fn entries_are_merged_in_time_order_for_the_asked_service_and_range() {
    let t = incident();
    let got: Vec<(i64, &str, &str)> =
        t.entries.iter().map(|e| ((e.at_ms - T0) / MIN, e.kind.as_str(), e.source.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (0, "deploy", "deploys"),
            (3, "journey_failure", "journeys"),
            (5, "alert", "alert_history"),
            (7, "silence", "silences"),
            (8, "override", "overrides"),
            (8, "audit", "audit"),
            (20, "deploy", "deploys"),
            (40, "alert", "alert_history"),
            (45, "override", "overrides"),
        ]
    );
    assert_eq!(
        t.entries[0].summary,
        "ci deployed checkout 1.4.2 (success); consumed 15.0 % of the 28d budget of checkout-availability (flagged)"
    );
    assert_eq!(
        t.entries[2].summary,
        "checkout-availability page alert firing, burn rate 180.0 (1h/5m, threshold 14.4), 90.0 % of the budget left"
    );
    assert_eq!(t.entries[7].summary, "checkout-availability page alert resolved, 75.0 % of the budget left");
    assert_eq!(t.entries[8].summary, "manual freeze of checkout ended by lead");
    assert!(!t.truncated);
}

#[test]
fn the_order_does_not_depend_on_the_order_of_the_inputs() {
    let a = Transition { at_ms: T0, ..transition(T0, AlertKind::Page, None, Phase::Firing, 1.0, None) };
    let d = deploy("d", T0, "1", Outcome::Success);
    let q = Query::new(vec!["checkout".into()], T0 - MIN, T0 + MIN, T0).unwrap();
    let one =
        build(&q, &Inputs { alerts: std::slice::from_ref(&a), deploys: std::slice::from_ref(&d), ..Inputs::default() });
    // At the same millisecond the deploy (the cause) comes first.
    assert_eq!(one.entries.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![Kind::Deploy, Kind::Alert]);
    // An alert that went pending and firing at one evaluation: pending first, whatever
    // order the history (newest first) gave.
    let pending = transition(T0, AlertKind::Page, None, Phase::Pending, 1.0, Some(20.0));
    let firing = transition(T0, AlertKind::Page, Some(Phase::Pending), Phase::Firing, 1.0, Some(20.0));
    let both = build(&q, &Inputs { alerts: &[firing, pending], ..Inputs::default() });
    let phases: Vec<&str> = both.entries.iter().filter_map(|e| e.details["to"].as_str()).collect();
    assert_eq!(phases, vec!["pending", "firing"]);
}

#[test]
fn bad_queries_are_refused() {
    let s = || vec!["checkout".to_string()];
    assert_eq!(Query::new(s(), T0, T0, T0), Err(QueryError::Reversed));
    assert_eq!(Query::new(s(), T0 + 1, T0, T0), Err(QueryError::Reversed));
    assert_eq!(Query::new(s(), T0, T0 + MAX_RANGE_MS + 1, T0), Err(QueryError::TooLong));
    assert_eq!(Query::new(vec![], T0, T0 + 1, T0), Err(QueryError::NoService));
    assert!(Query::new(s(), i64::MIN, i64::MAX, T0).is_err());
}

#[test]
fn an_incident_covers_an_hour_before_its_start_to_its_resolution_or_now() {
    let q = Query::incident(vec!["checkout".into()], T0, Some(T0 + 3_600_000), T0 + 7_200_000).unwrap();
    assert_eq!((q.from_ms, q.to_ms), (T0 - INCIDENT_LEAD_MS, T0 + 3_600_000));
    let open = Query::incident(vec!["checkout".into()], T0, None, T0 + 7_200_000).unwrap();
    assert_eq!(open.to_ms, T0 + 7_200_000);
    // A very long incident keeps its latest 31 days.
    let long = Query::incident(vec!["checkout".into()], T0 - 60 * 86_400_000, None, T0).unwrap();
    assert_eq!(long.to_ms - long.from_ms, MAX_RANGE_MS);
}

#[test]
fn status_updates_are_entries_of_their_own_kind() {
    let q = Query::incident(vec!["checkout".into()], T0, None, T0 + MIN).unwrap();
    let updates = vec![StatusUpdate {
        at_ms: T0 + 1,
        status: "investigating".into(),
        message: "5xx on checkout".into(),
        by: "oncall".into(),
    }];
    let t = build(&q, &Inputs { updates: &updates, ..Inputs::default() });
    assert_eq!(t.entries.len(), 1);
    assert_eq!(
        (t.entries[0].kind, t.entries[0].summary.as_str()),
        (Kind::StatusUpdate, "investigating (oncall): 5xx on checkout")
    );
}

#[test]
fn a_timeline_keeps_at_most_its_bound_of_entries() {
    let updates: Vec<StatusUpdate> = (0..MAX_ENTRIES as i64 + 10)
        .map(|i| StatusUpdate { at_ms: T0 + i, status: "s".into(), message: "m".into(), by: "b".into() })
        .collect();
    let q = Query::new(vec!["x".into()], T0, T0 + MIN, T0).unwrap();
    let t = build(&q, &Inputs { updates: &updates, ..Inputs::default() });
    assert_eq!(t.entries.len(), MAX_ENTRIES);
    assert!(t.truncated);
    assert_eq!(t.entries[0].at_ms, T0);
}

#[test]
fn the_figures_are_computed_from_the_timeline() {
    let f = figures(&incident());
    // The journey failed at +3 min; the flagged deploy ended at +1 min.
    assert_eq!(f.first_sign, Some(T0 + MIN));
    assert_eq!(f.first_page, Some((T0 + 5 * MIN, "checkout-availability page".into())));
    assert_eq!(f.recovered, Some(T0 + 40 * MIN));
    assert_eq!(f.budget.get("checkout-availability"), Some(&(0.9, 0.75)));
    assert_eq!(f.failed_after_deploys, vec![("checkout 1.4.2".into(), "checkout-availability".into(), 200, 1000, 30)]);
    assert_eq!(f.regions, vec!["eu-west-1".to_string()]);
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(duration(40_000), "40 s");
    assert_eq!(duration(12 * MIN), "12 min");
    assert_eq!(duration(65 * MIN), "1 h 05 min");
    assert_eq!(duration(-5), "0 s");
}

#[test]
fn the_postmortem_draft_has_every_section_with_the_figures_filled_in() {
    let t = incident();
    let d = Draft { written_ms: T0 + 2 * 3_600_000, ..Draft::default() };
    crate::testing::golden::check_text("tests/golden/timeline/unit-postmortem.md", &render(&d, &t));
}

#[test]
fn table_cells_cannot_break_the_markdown() {
    let q = Query::new(vec!["checkout".into()], T0, T0 + MIN, T0).unwrap();
    let updates = vec![StatusUpdate { at_ms: T0, status: "a|b".into(), message: "line\nbreak".into(), by: "x".into() }];
    let md = render(&Draft::default(), &build(&q, &Inputs { updates: &updates, ..Inputs::default() }));
    assert!(md.contains("| a\\|b (x): line break |"), "{md}");
}

#[test]
fn recorded_changes_show_when_a_freeze_an_outage_and_a_failing_journey_began_and_ended() {
    use super::changes::{Change, Tracker};
    use crate::freeze::{Board, Reason, ServiceFreeze, Source, Status};
    use crate::outage::{Assessment, Item, JourneyCheck, Scope, Verdict};

    let board = |status: Status| Board {
        services: vec![ServiceFreeze {
            service: "checkout".into(),
            source: Source::Local,
            policy: "default".into(),
            status,
            frozen: status == Status::Frozen,
            reasons: (status == Status::Frozen)
                .then(|| Reason {
                    kind: "alert",
                    slo: Some("checkout-availability".into()),
                    measured: None,
                    threshold: None,
                    since_ms: T0 + 5 * MIN,
                    message: "a page alert of checkout-availability fires".into(),
                })
                .into_iter()
                .collect(),
            never_block: Vec::new(),
            approvers: 0,
            slos: Vec::new(),
        }],
        ..Board::default()
    };
    let outage = |v: Verdict| Assessment {
        service: "checkout".into(),
        at: String::new(),
        window_minutes: 10,
        verdict: v,
        failing_share: if v == Verdict::None { 0.0 } else { 0.3 },
        scope: Scope {
            regions: if v == Verdict::None {
                Vec::new()
            } else {
                vec![Item {
                    name: "eu-west-1".into(),
                    success_ratio: Some(0.2),
                    baseline: Some(0.99),
                    requests: 900,
                    share: Some(0.3),
                }]
            },
            ..Scope::default()
        },
        blame: None,
        evidence: Vec::new(),
        judged: Vec::new(),
    };
    let journey = |at: i64, failed: bool| JourneyCheck {
        journey: "buy".into(),
        service: "checkout".into(),
        region: "eu-west-1".into(),
        started_ms: at,
        failed_step: failed.then(|| "cart".to_string()),
        http_status: failed.then_some(503),
    };
    let mut t = Tracker::default();
    let mut changes: Vec<Change> = Vec::new();
    changes.extend(t.observe(T0, &board(Status::Ok), &[outage(Verdict::None)], &[journey(T0, false)], &[], &[]));
    changes.extend(t.observe(
        T0 + 3 * MIN,
        &board(Status::Ok),
        &[outage(Verdict::Partial)],
        &[journey(T0 + 3 * MIN, true)],
        &[],
        &[],
    ));
    changes.extend(t.observe(T0 + 5 * MIN, &board(Status::Frozen), &[outage(Verdict::Partial)], &[], &[], &[]));
    changes.extend(t.observe(
        T0 + 30 * MIN,
        &board(Status::Ok),
        &[outage(Verdict::None)],
        &[journey(T0 + 29 * MIN, false)],
        &[],
        &[],
    ));
    // The journey's last run is still the failed one for the API: it shows once.
    let failures = vec![Failure {
        at_ms: T0 + 3 * MIN,
        source: "journeys",
        service: "checkout".into(),
        name: "buy".into(),
        part: Some("cart".into()),
        region: "eu-west-1".into(),
        http_status: Some(503),
        error: None,
    }];
    let frozen_now = board(Status::Frozen);
    let q = Query::new(vec!["checkout".into()], T0 - 30 * MIN, T0 + 60 * MIN, T0 + 60 * MIN).unwrap();
    let tl = build(
        &q,
        &Inputs { changes: &changes, failures: &failures, freeze: &frozen_now.services, ..Inputs::default() },
    );
    let got: Vec<(i64, &str, &str)> =
        tl.entries.iter().map(|e| ((e.at_ms - T0) / MIN, e.kind.as_str(), e.source.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, "journey_failure", "state_changes"),
            (3, "outage", "state_changes"),
            (5, "freeze", "state_changes"),
            (29, "journey_recovered", "state_changes"),
            (30, "outage", "state_changes"),
            (30, "freeze", "state_changes"),
        ],
        "{:#?}",
        tl.entries
    );
    assert_eq!(tl.entries[1].summary, "checkout: partial outage, 30.0 % of the traffic failing (regions eu-west-1)");
    assert_eq!(tl.entries[2].summary, "checkout frozen: a page alert of checkout-availability fires");
    assert_eq!(tl.entries[5].details["from"], "FROZEN");
    assert_eq!(tl.entries[0].details["name"], "buy");
    assert_eq!(tl.entries[0].details["part"], "cart");

    // The draft tells the outage's reach, and the first sign is the failure at +3 min.
    let f = figures(&tl);
    assert_eq!(f.first_sign, Some(T0 + 3 * MIN));
    assert_eq!(f.outage, Some(("partial".to_string(), 0.3)));
    assert_eq!(f.outage_scope.get("regions").map(Vec::as_slice), Some(["eu-west-1".to_string()].as_slice()));
    let md = render(&Draft { written_ms: T0 + 60 * MIN, ..Draft::default() }, &tl);
    assert!(
        md.contains("- Outage: partial at worst, up to 30.0 % of the traffic failing; failing: regions eu-west-1"),
        "{md}"
    );

    // The status page's components: what customers saw, and for how long.
    use crate::status::ComponentState as C;
    let mut page = Tracker::default();
    let comp = |state| {
        vec![crate::status::ComponentAt { service: "checkout".into(), name: "Checkout".into(), state, counted: true }]
    };
    let mut seen: Vec<Change> = Vec::new();
    for (m, state) in [(0, C::Operational), (4, C::PartialOutage), (6, C::MajorOutage), (30, C::Operational)] {
        seen.extend(page.observe(T0 + m * MIN, &Board::default(), &[], &[], &[], &comp(state)));
    }
    let tl = build(&q, &Inputs { changes: &seen, ..Inputs::default() });
    let kinds: Vec<&str> = tl.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["status_page", "status_page", "status_page"]);
    let f = figures(&tl);
    assert_eq!(f.status_page.get("Checkout"), Some(&("major_outage".to_string(), T0 + 4 * MIN, Some(T0 + 30 * MIN))));
    let md = render(&Draft { written_ms: T0 + 60 * MIN, ..Draft::default() }, &tl);
    let want = "- Status page: Checkout showed major outage at worst, from 2026-11-20T00:04:00Z to 2026-11-20T00:30:00Z (26 min)";
    assert!(md.contains(want), "{md}");
}
