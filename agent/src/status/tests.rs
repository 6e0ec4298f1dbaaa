use std::sync::Arc;

use super::*;
use crate::incident::{Draft, Impact, Incidents, Status};
use crate::sli::SloStatus;
use crate::sli::ring::Counts;
use crate::sli::series::WindowStats;

const NOW: i64 = 1_796_428_800_000 + 12 * 3_600_000; // 2026-12-05T12:00:00Z

fn slo(name: &str, service: &str, extra: &str) -> String {
    format!(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n  service: {service}\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    filter: {{service: {service}}}\n    good: {{status: \"< 500\"}}\n{extra}---\n"
    )
}

fn statuses(text: &str, consumed: f64) -> Vec<SloStatus> {
    let set = crate::spec::load_str("specs.yaml", text).unwrap_or_else(|d| panic!("{d:?}"));
    set.slos
        .iter()
        .map(|s| SloStatus {
            slo: s.clone(),
            at_ms: NOW,
            window_start_ms: NOW - 30 * 86_400_000,
            window: WindowStats { events: Counts { good: 1, total: 1 }, units_good: 1.0, units_total: 1.0 },
            sli: Some(1.0),
            budget_consumed: consumed,
            burn_rates: Vec::new(),
            latency: None,
            conditions: Vec::new(),
            top_failures: Arc::default(),
        })
        .collect()
}

fn firing(slo: &str, service: &str, kind: AlertKind) -> AlertRecord {
    let mut a = AlertRecord::pending(slo, service, kind, NOW - 600_000);
    a.phase = Phase::Firing;
    a
}

fn checkout() -> ComponentConfig {
    ComponentConfig { name: "Checkout".into(), service: "checkout".into(), slos: Vec::new(), journey: None }
}

#[test]
fn component_states_follow_the_rule() {
    let specs = format!("{}{}", slo("co-avail", "checkout", ""), slo("co-latency", "checkout", ""));
    let st = statuses(&specs, 0.5);
    let c = checkout();
    let state =
        |alerts: &[AlertRecord], st: &[SloStatus]| component_state(&c, st, alerts, &JourneyRuns::new(), &[], NOW);
    assert_eq!(state(&[], &st), ComponentState::Operational);
    assert_eq!(state(&[firing("co-avail", "checkout", AlertKind::Ticket)], &st), ComponentState::DegradedPerformance);
    assert_eq!(state(&[firing("co-avail", "checkout", AlertKind::Page)], &st), ComponentState::PartialOutage);
    let both = [firing("co-avail", "checkout", AlertKind::Page), firing("co-latency", "checkout", AlertKind::Page)];
    assert_eq!(state(&both, &st), ComponentState::MajorOutage, "every SLO pages");
    let spent = statuses(&specs, 1.2);
    assert_eq!(state(&[firing("co-avail", "checkout", AlertKind::Page)], &spent), ComponentState::MajorOutage);
    // Only the listed SLOs decide.
    let only = ComponentConfig { slos: vec!["co-latency".into()], ..checkout() };
    assert_eq!(
        component_state(&only, &st, &[firing("co-avail", "checkout", AlertKind::Page)], &JourneyRuns::new(), &[], NOW),
        ComponentState::Operational
    );
    // An exclusion window covering now: under maintenance; one ahead is scheduled.
    let excl = "  exclusions:\n    - {start: \"2026-12-05T11:00:00Z\", end: \"2026-12-05T13:00:00Z\", reason: db upgrade}\n    - {start: \"2026-12-07T01:00:00Z\", end: \"2026-12-07T02:00:00Z\", reason: internal-host-7}\n";
    let st = statuses(&slo("co-avail", "checkout", excl), 0.0);
    assert_eq!(component_state(&c, &st, &[], &JourneyRuns::new(), &[], NOW), ComponentState::UnderMaintenance);
    let cfg = StatusConfig { title: "S".into(), components: vec![checkout()] };
    let p = page(
        &cfg,
        &Now { statuses: &st, alerts: &[], journeys: &JourneyRuns::new(), outage: &[], now_ms: NOW },
        &[],
        &Uptime::default(),
    );
    assert_eq!(p.scheduled_maintenance.len(), 2, "the one in progress and the one ahead");
    assert!(p.scheduled_maintenance[0].in_progress);
    assert_eq!(p.scheduled_maintenance[1].starts_at, "2026-12-07T01:00:00Z");
    assert_eq!(p.scheduled_maintenance[1].recurrence, "once");
    assert!(!html(&p).contains("internal-host-7"), "exclusion reasons are not shown");
}

#[test]
fn uptime_counts_each_minute_once_and_bars_show_the_worst_state() {
    let mut u = Uptime::default();
    let rows = u.count(&[("Checkout", ComponentState::Operational)], NOW);
    assert_eq!(rows, vec![("Checkout".to_string(), NOW / 86_400_000, [1, 0, 0, 0, 0])]);
    assert!(u.count(&[("Checkout", ComponentState::MajorOutage)], NOW + 30_000).is_empty(), "same minute");
    u.count(&[("Checkout", ComponentState::PartialOutage)], NOW + 60_000);
    let cfg = StatusConfig { title: "S".into(), components: vec![checkout()] };
    let p = page(
        &cfg,
        &Now { statuses: &[], alerts: &[], journeys: &JourneyRuns::new(), outage: &[], now_ms: NOW + 60_000 },
        &[],
        &u,
    );
    let c = &p.components[0];
    assert_eq!(c.days.len(), 90);
    assert_eq!(c.days[89].date, "2026-12-05");
    assert_eq!(c.days[89].worst, Some(ComponentState::PartialOutage));
    assert_eq!(c.days[0].worst, None);
    assert_eq!(c.uptime_percent, Some(50.0));
    assert_eq!(u.prune(NOW / 86_400_000 + 1), 1);
}

#[test]
fn the_page_escapes_text_and_hides_internals() {
    let mut set = Incidents::default();
    let i = set
        .open(
            Draft {
                title: "<script>alert(1)</script> checkout errors".into(),
                services: vec!["checkout".into(), "internal-billing".into()],
                impact: Impact::Major,
                status: Status::Identified,
                message: "A bad deploy & a \"rollback\"".into(),
                started_at_ms: None,
                opened_by: "user:secret-token-name".into(),
            },
            NOW,
        )
        .unwrap();
    set.put(i);
    let other = set
        .open(
            Draft {
                title: "unlisted".into(),
                services: vec!["internal-billing".into()],
                impact: Impact::Minor,
                status: Status::Investigating,
                message: "m".into(),
                started_at_ms: None,
                opened_by: "alert:slo-agent/billing/page/1".into(),
            },
            NOW,
        )
        .unwrap();
    set.put(other);
    let cfg = StatusConfig { title: "Acme <status>".into(), components: vec![checkout()] };
    let list = set.list(NOW - 86_400_000);
    let p = page(
        &cfg,
        &Now { statuses: &[], alerts: &[], journeys: &JourneyRuns::new(), outage: &[], now_ms: NOW },
        &list,
        &Uptime::default(),
    );
    assert_eq!(p.incidents.len(), 1, "incidents naming no listed component are left out");
    assert_eq!(p.incidents[0].components, ["Checkout"]);
    let h = html(&p);
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(h.contains("A bad deploy &amp; a &quot;rollback&quot;"));
    assert!(h.contains("<title>Acme &lt;status&gt;</title>"));
    assert!(!h.contains("<script"), "no script at all");
    for secret in ["secret-token-name", "internal-billing", "slo-agent/", "unlisted"] {
        assert!(!h.contains(secret), "{secret} leaked into the HTML");
        assert!(!json(&p).contains(secret), "{secret} leaked into the JSON");
    }
    assert!(h.contains("Active incidents") && h.contains("Identified"));
}

#[test]
fn fifty_components_with_full_days_render() {
    let components: Vec<ComponentConfig> = (0..50)
        .map(|i| ComponentConfig {
            name: format!("Component {i}"),
            service: format!("svc-{i}"),
            slos: Vec::new(),
            journey: None,
        })
        .collect();
    let mut u = Uptime::default();
    for m in 0..(90 * 24) {
        let at = NOW - 89 * 86_400_000 + m * 3_600_000;
        let states: Vec<(&str, ComponentState)> =
            components.iter().map(|c| (c.name.as_str(), ComponentState::ALL[(m as usize) % 5])).collect();
        u.count(&states, at);
    }
    let cfg = StatusConfig { title: "S".into(), components };
    let started = std::time::Instant::now();
    let p = page(
        &cfg,
        &Now { statuses: &[], alerts: &[], journeys: &JourneyRuns::new(), outage: &[], now_ms: NOW },
        &[],
        &u,
    );
    let built = started.elapsed();
    let h = html(&p);
    let j = json(&p);
    let took = started.elapsed();
    eprintln!("page built in {built:?}; JSON {} bytes", j.len());
    eprintln!("50 components, 90 days: page + HTML ({} bytes) + JSON in {took:?}", h.len());
    // The time is printed, never asserted (docs/benchmarks.md: tests assert behaviour).
    assert!(h.len() > 50 * 90 * 40 && !j.is_empty());
    assert_eq!(h.matches("<article class=\"component\"").count(), 50);
}

#[test]
fn journey_components_follow_their_runs() {
    use crate::synthetic::journey::Status::{Degraded, Failed, Ok};
    // Newest first; only the last JOURNEY_RUNS (3) count.
    let cases: [(&[crate::synthetic::journey::Status], Option<ComponentState>); 9] = [
        (&[], None),
        (&[Ok], Some(ComponentState::Operational)),
        (&[Ok, Ok, Ok, Failed], Some(ComponentState::Operational)),
        (&[Degraded, Ok], Some(ComponentState::DegradedPerformance)),
        (&[Ok, Ok, Degraded], Some(ComponentState::DegradedPerformance)),
        (&[Failed], Some(ComponentState::PartialOutage)),
        (&[Failed, Failed], Some(ComponentState::PartialOutage)),
        (&[Ok, Failed, Degraded], Some(ComponentState::PartialOutage)),
        (&[Failed, Failed, Failed, Ok], Some(ComponentState::MajorOutage)),
    ];
    for (runs, want) in cases {
        assert_eq!(journey_state(runs), want, "{runs:?}");
    }
    let journey = ComponentConfig {
        name: "Buying".into(),
        service: "checkout".into(),
        slos: Vec::new(),
        journey: Some("buy".into()),
    };
    let mut runs = JourneyRuns::new();
    // Before its first run: operational, and no minute is counted.
    let st = statuses(&slo("co-avail", "checkout", ""), 0.0);
    let paged = [firing("co-avail", "checkout", AlertKind::Page)];
    let state = component_state(&journey, &st, &paged, &runs, &[], NOW);
    assert_eq!(state, ComponentState::Operational, "the service's alerts do not decide a journey component");
    assert!(!counts(&journey, &runs, state));
    runs.insert("buy".into(), vec![Failed, Failed, Failed]);
    let state = component_state(&journey, &st, &paged, &runs, &[], NOW);
    assert_eq!(state, ComponentState::MajorOutage);
    assert!(counts(&journey, &runs, state));
    // Its service's exclusion windows put it under maintenance.
    let excl = "  exclusions:\n    - {start: \"2026-12-05T11:00:00Z\", end: \"2026-12-05T13:00:00Z\", reason: r}\n";
    let st = statuses(&slo("co-avail", "checkout", excl), 0.0);
    assert_eq!(component_state(&journey, &st, &[], &runs, &[], NOW), ComponentState::UnderMaintenance);
    let cfg = StatusConfig { title: "S".into(), components: vec![journey] };
    let p = page(
        &cfg,
        &Now { statuses: &st, alerts: &[], journeys: &runs, outage: &[], now_ms: NOW },
        &[],
        &Uptime::default(),
    );
    assert_eq!(p.components[0].name, "Buying");
    assert!(!json(&p).contains("buy\""), "the journey's own name is not shown");
}

#[test]
fn weekly_maintenance_is_listed_by_its_next_occurrences_in_utc() {
    // NOW is Saturday 2026-12-05T12:00Z. Sundays 02:00–04:00 Berlin (UTC+1 in December);
    // Saturdays 11:00 UTC for 2h (in progress now); a one-off tomorrow; one next year (too far).
    let excl = concat!(
        "  exclusions:\n",
        "    - {weekly: {day: sunday, start: \"02:00\", duration: 2h, timezone: Europe/Berlin}, reason: internal-db-7}\n",
        "    - {weekly: {day: saturday, start: \"11:00\", duration: 2h}, reason: r}\n",
        "    - {start: \"2026-12-06T01:00:00Z\", end: \"2026-12-06T03:00:00Z\", reason: r}\n",
        "    - {start: \"2027-02-01T00:00:00Z\", end: \"2027-02-01T01:00:00Z\", reason: r}\n",
    );
    let specs = format!("{}{}", slo("co-avail", "checkout", excl), slo("co-latency", "checkout", excl));
    let st = statuses(&specs, 0.0);
    let search = ComponentConfig { name: "Search".into(), service: "search".into(), slos: Vec::new(), journey: None };
    let cfg = StatusConfig { title: "S".into(), components: vec![checkout(), search] };
    let p = page(
        &cfg,
        &Now { statuses: &st, alerts: &[], journeys: &JourneyRuns::new(), outage: &[], now_ms: NOW },
        &[],
        &Uptime::default(),
    );
    let got: Vec<(&str, &str, bool, &str, Vec<String>)> = p
        .scheduled_maintenance
        .iter()
        .map(|m| (m.starts_at.as_str(), m.ends_at.as_str(), m.in_progress, m.recurrence, m.components.clone()))
        .collect();
    let c = || vec!["Checkout".to_string()];
    assert_eq!(
        got,
        [
            ("2026-12-05T11:00:00Z", "2026-12-05T13:00:00Z", true, "weekly", c()),
            ("2026-12-06T01:00:00Z", "2026-12-06T03:00:00Z", false, "weekly", c()),
            ("2026-12-12T11:00:00Z", "2026-12-12T13:00:00Z", false, "weekly", c()),
        ],
        "the one-off window at the same time as the weekly one is one entry; next year is too far"
    );
    let h = html(&p);
    assert!(h.contains("In progress") && h.contains("(every week)"));
    assert!(!h.contains("internal-db-7") && !json(&p).contains("internal-db-7"));
    // Summer time: the same Sunday slot is 00:00–02:00 UTC in July.
    let july = 1_783_339_200_000; // 2026-07-06T12:00:00Z, a Monday
    let e = &st[0].slo.exclusions[0].when;
    let next: Vec<(i64, i64, bool)> = occurrences(e, july);
    assert_eq!(next.len(), 1);
    assert_eq!(crate::timefmt::rfc3339(next[0].0), "2026-07-12T00:00:00Z");
    assert_eq!(next[0].1 - next[0].0, 2 * 3_600_000);

    // Across the change to summer time (2027-03-28, 02:00 → 03:00 in Berlin), a
    // slot of 01:00 for 3 h ends at 04:00 local = 02:00 UTC: two hours long,
    // and exactly where the exclusion stops covering.
    let dst = "  exclusions:\n    - {weekly: {day: sunday, start: \"01:00\", duration: 3h, timezone: Europe/Berlin}, reason: r}\n";
    let st = statuses(&slo("co-avail", "checkout", dst), 0.0);
    let x = &st[0].slo.exclusions[0];
    let thursday = 1_805_976_000_000; // 2027-03-25T12:00:00Z
    let next = occurrences(&x.when, thursday);
    assert_eq!(next.len(), 1, "{next:?}");
    let (start, end, _) = next[0];
    assert_eq!(
        (crate::timefmt::rfc3339(start).as_str(), crate::timefmt::rfc3339(end).as_str()),
        ("2027-03-28T00:00:00Z", "2027-03-28T02:00:00Z")
    );
    assert!(x.covers(start) && x.covers(end - 60_000) && !x.covers(end) && !x.covers(start - 60_000));
}

#[test]
fn the_outage_verdict_of_the_service_makes_the_state_worse_never_better() {
    use crate::outage::{Assessment, Verdict};
    let specs = format!("{}{}", slo("co-avail", "checkout", ""), slo("co-latency", "checkout", ""));
    let st = statuses(&specs, 0.5);
    let verdict = |service: &str, v: Verdict| Assessment {
        service: service.into(),
        at: String::new(),
        window_minutes: 10,
        verdict: v,
        failing_share: 0.2,
        scope: Default::default(),
        blame: None,
        evidence: Vec::new(),
        judged: Vec::new(),
    };
    let c = checkout();
    let state = |alerts: &[AlertRecord], outage: &[Assessment]| {
        component_state(&c, &st, alerts, &JourneyRuns::new(), outage, NOW)
    };
    assert_eq!(state(&[], &[verdict("checkout", Verdict::Partial)]), ComponentState::PartialOutage);
    assert_eq!(state(&[], &[verdict("checkout", Verdict::Total)]), ComponentState::MajorOutage);
    assert_eq!(state(&[], &[verdict("checkout", Verdict::None)]), ComponentState::Operational);
    // Another service's verdict is not this component's.
    assert_eq!(state(&[], &[verdict("search", Verdict::Total)]), ComponentState::Operational);
    // The worse of the two: a ticket with a partial verdict is a partial outage;
    // pages on every SLO stay a major outage whatever the verdict.
    let ticket = [firing("co-avail", "checkout", AlertKind::Ticket)];
    assert_eq!(state(&ticket, &[verdict("checkout", Verdict::Partial)]), ComponentState::PartialOutage);
    let both = [firing("co-avail", "checkout", AlertKind::Page), firing("co-latency", "checkout", AlertKind::Page)];
    assert_eq!(state(&both, &[verdict("checkout", Verdict::Partial)]), ComponentState::MajorOutage);
    // Maintenance wins: an outage in a maintenance window is expected.
    let excl =
        "  exclusions:\n    - {start: \"2026-12-05T11:00:00Z\", end: \"2026-12-05T13:00:00Z\", reason: db upgrade}\n";
    let st = statuses(&slo("co-avail", "checkout", excl), 0.0);
    assert_eq!(
        component_state(&c, &st, &[], &JourneyRuns::new(), &[verdict("checkout", Verdict::Total)], NOW),
        ComponentState::UnderMaintenance
    );
}
