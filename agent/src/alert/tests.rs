use super::*;
use crate::event::{Origin, RequestEvent};
use crate::sli::Engine;
use crate::spec::load_str;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const MIN: i64 = 60_000;

fn engine() -> Engine {
    let set = load_str(
        "a.yaml",
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: s\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n",
    )
    .unwrap();
    Engine::new(&set, false)
}

/// `n` requests in minute `m`, `bad` of them 503.
fn traffic(e: &mut Engine, m: i64, n: u64, bad: u64) {
    let ev = |status| RequestEvent { ts_ms: T0 + m * MIN, origin: Some(Origin::Ndjson), status, ..Default::default() };
    e.events(&ev(200), n - bad);
    e.events(&ev(503), bad);
}

fn phases(ts: &[Transition]) -> Vec<(AlertKind, Option<Phase>, Option<Phase>)> {
    ts.iter().map(|t| (t.kind, t.from, t.to)).collect()
}

/// The page alert's transitions only.
fn pages(ts: &[Transition]) -> Vec<Transition> {
    ts.iter().filter(|t| t.kind == AlertKind::Page).cloned().collect()
}

use crate::event::EventSink;

#[test]
fn an_outage_pages_once_and_resolves_after_the_conditions_stay_clear() {
    let mut e = engine();
    let mut a = Alerts::new(AlertPolicy::default());
    for m in 0..120 {
        traffic(&mut e, m, 100, 0);
    }
    assert!(a.observe(&e.evaluate(T0 + 120 * MIN), T0 + 120 * MIN).is_empty());
    // Ten minutes of nothing but errors.
    for m in 120..130 {
        traffic(&mut e, m, 100, 100);
    }
    let at = T0 + 130 * MIN;
    let all = a.observe(&e.evaluate(at), at);
    // With only two hours of history, ten bad minutes are 7.7 % of all
    // requests: the slow-burn ticket and the 1 % budget trip as well.
    let kinds: Vec<AlertKind> = all.iter().filter(|t| t.to == Some(Phase::Firing)).map(|t| t.kind).collect();
    assert_eq!(kinds, vec![AlertKind::Page, AlertKind::Ticket, AlertKind::BudgetExhausted]);
    let ts = pages(&all);
    assert_eq!(
        phases(&ts),
        vec![
            (AlertKind::Page, None, Some(Phase::Pending)),
            (AlertKind::Page, Some(Phase::Pending), Some(Phase::Firing))
        ]
    );
    let fired = &ts[1].record;
    assert_eq!(fired.episode, 1);
    assert_eq!(fired.dedup_key(), "slo-agent/shop/page/1");
    let t = fired.trigger.as_ref().unwrap();
    assert_eq!(t.windows, "1h/5m");
    assert_eq!(t.threshold, Some(14.4));
    // Still failing: nothing new.
    traffic(&mut e, 130, 100, 100);
    assert!(a.observe(&e.evaluate(at + MIN), at + MIN).is_empty());
    // Healthy again: the short window clears after 5 minutes; the alert
    // resolves only once the conditions have been clear for 5 more.
    let mut resolved_at = None;
    for m in 131..200 {
        traffic(&mut e, m, 100, 0);
        let now = T0 + (m + 1) * MIN;
        for t in a.observe(&e.evaluate(now), now) {
            if t.kind == AlertKind::Page {
                assert_eq!((t.from, t.to), (Some(Phase::Firing), Some(Phase::Resolved)));
                assert_eq!(t.record.dedup_key(), "slo-agent/shop/page/1");
                resolved_at = Some(m + 1);
            }
        }
    }
    // The 1h/5m pair clears once the 5-minute window holds no bad minute, but
    // the 6h/30m page pair holds on until the 30-minute window is clean too
    // (at minute 159: the window ending at the evaluation's minute reaches
    // back 29 minutes); the alert resolves 5 minutes after that.
    assert_eq!(resolved_at, Some(164));
}

#[test]
fn low_traffic_does_not_page() {
    let mut e = engine();
    let mut a = Alerts::new(AlertPolicy::default());
    // One failure out of ten requests: a burn rate of 10 over every window.
    traffic(&mut e, 0, 10, 1);
    let at = T0 + MIN;
    let s = e.evaluate(at);
    assert!(s[0].conditions.iter().any(|c| c.firing), "the condition itself holds");
    assert!(a.observe(&s, at).is_empty());
    // With enough events the same ratio pages.
    let mut a = Alerts::new(AlertPolicy { min_events: 10, ..AlertPolicy::default() });
    assert!(a.observe(&s, at).iter().any(|t| t.to == Some(Phase::Firing) && t.kind == AlertKind::Page));
}

#[test]
fn a_short_blip_stays_pending_and_is_dropped_silently() {
    let mut e = engine();
    let policy = AlertPolicy { pending_for: Duration::from_secs(120), ..AlertPolicy::default() };
    let mut a = Alerts::new(policy);
    for m in 0..60 {
        traffic(&mut e, m, 100, 0);
    }
    traffic(&mut e, 60, 400, 400);
    let ts = pages(&a.observe(&e.evaluate(T0 + 61 * MIN), T0 + 61 * MIN));
    assert_eq!(phases(&ts), vec![(AlertKind::Page, None, Some(Phase::Pending))]);
    assert!(!ts[0].notifies());
    // The bad minute stays inside the 5m window, so the condition holds on,
    // and after 2 minutes of pending the alert fires.
    traffic(&mut e, 61, 100, 0);
    assert!(pages(&a.observe(&e.evaluate(T0 + 62 * MIN), T0 + 62 * MIN)).is_empty());
    traffic(&mut e, 62, 100, 0);
    let ts = pages(&a.observe(&e.evaluate(T0 + 63 * MIN), T0 + 63 * MIN));
    assert_eq!(phases(&ts), vec![(AlertKind::Page, Some(Phase::Pending), Some(Phase::Firing))]);

    // A blip shorter than pending_for: pending, then dropped without a notification.
    let mut e = engine();
    let mut a = Alerts::new(AlertPolicy { pending_for: Duration::from_secs(600), ..AlertPolicy::default() });
    for m in 0..60 {
        traffic(&mut e, m, 100, 0);
    }
    traffic(&mut e, 60, 400, 400);
    assert_eq!(pages(&a.observe(&e.evaluate(T0 + 61 * MIN), T0 + 61 * MIN)).len(), 1);
    let mut dropped = Vec::new();
    for m in 61..80 {
        traffic(&mut e, m, 100, 0);
        dropped.extend(pages(&a.observe(&e.evaluate(T0 + (m + 1) * MIN), T0 + (m + 1) * MIN)));
    }
    assert_eq!(phases(&dropped), vec![(AlertKind::Page, Some(Phase::Pending), None)]);
    assert!(!dropped[0].notifies());
    assert!(a.records().all(|r| r.kind != AlertKind::Page));
}

#[test]
fn a_spent_budget_raises_its_own_alert_and_a_restart_keeps_the_episode() {
    let mut e = engine();
    let mut a = Alerts::new(AlertPolicy::default());
    // 2% errors for a day: twice the 1% budget of the whole window... over the data so far.
    for m in 0..1440 {
        traffic(&mut e, m, 100, 2);
    }
    let at = T0 + 1440 * MIN;
    let ts = a.observe(&e.evaluate(at), at);
    let budget: Vec<_> = ts.iter().filter(|t| t.kind == AlertKind::BudgetExhausted).collect();
    assert_eq!(budget.last().unwrap().to, Some(Phase::Firing));
    assert!(budget[0].record.budget_remaining <= 0.0);
    // Restored from the store, the alert goes on where it was: no new episode.
    let saved: Vec<AlertRecord> = a.records().cloned().collect();
    let mut b = Alerts::new(AlertPolicy::default());
    b.restore(saved);
    traffic(&mut e, 1440, 100, 2);
    let ts = b.observe(&e.evaluate(at + MIN), at + MIN);
    assert!(ts.iter().all(|t| t.kind != AlertKind::BudgetExhausted), "{ts:?}");
}

#[test]
fn a_removed_slo_resolves_its_firing_alerts() {
    let mut e = engine();
    let mut a = Alerts::new(AlertPolicy::default());
    for m in 0..10 {
        traffic(&mut e, m, 100, 100);
    }
    let at = T0 + 10 * MIN;
    assert!(a.observe(&e.evaluate(at), at).iter().any(|t| t.to == Some(Phase::Firing)));
    let ts = a.observe(&[], at + MIN);
    assert!(ts.iter().all(|t| t.to == Some(Phase::Resolved)));
    assert!(!ts.is_empty());
    assert_eq!(a.records().count(), 0);
}

fn engine_with(alerting: &str) -> Engine {
    let set = load_str(
        "x.yaml",
        &format!(
            "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: shop}}\nspec:\n  service: s\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {{status: \"< 500\"}}\n  alerting: {alerting}\n"
        ),
    )
    .unwrap();
    Engine::new(&set, false)
}

#[test]
fn a_steady_burn_raises_time_to_exhaustion_when_the_budget_would_be_gone_soon() {
    // Ten healthy days, then six hours at 3 % errors: a 6h burn rate of 3
    // with 92.7 % of the budget left is 0.927 × 720 h / 3 ≈ 222 h to go.
    let run = |within: &str| {
        let mut e = engine_with(&format!("{{exhaustion_within: {within}}}"));
        let mut a = Alerts::new(AlertPolicy::default());
        for m in 0..14_400 {
            traffic(&mut e, m, 100, 0);
        }
        for m in 14_400..14_760 {
            traffic(&mut e, m, 100, 3);
        }
        let at = T0 + 14_760 * MIN;
        let s = e.evaluate(at);
        let hours = hours_to_exhaustion(&s[0]).unwrap();
        assert!((hours - 222.5).abs() < 1.0, "{hours}");
        a.observe(&s, at)
    };
    let ts = run("240h");
    let fired: Vec<_> = ts.iter().filter(|t| t.kind == AlertKind::TimeToExhaustion).collect();
    assert_eq!(fired.last().unwrap().to, Some(Phase::Firing));
    let t = fired[0].record.trigger.as_ref().unwrap();
    assert_eq!(t.windows, "6h");
    assert!((t.long_burn_rate.unwrap() - 3.0).abs() < 1e-9);
    assert!(t.hours_to_exhaustion.unwrap() < 240.0);
    assert!(run("24h").iter().all(|t| t.kind != AlertKind::TimeToExhaustion));
    // Without `exhaustion_within` there is no such alert at all.
    let mut e = engine();
    for m in 0..360 {
        traffic(&mut e, m, 100, 3);
    }
    let mut a = Alerts::new(AlertPolicy::default());
    assert!(
        a.observe(&e.evaluate(T0 + 360 * MIN), T0 + 360 * MIN).iter().all(|t| t.kind != AlertKind::TimeToExhaustion)
    );
}

#[test]
fn an_slo_can_set_its_own_low_traffic_guard() {
    let mut e = engine_with("{min_events: 5}");
    let mut a = Alerts::new(AlertPolicy::default()); // agent-wide: 100
    traffic(&mut e, 0, 10, 5);
    let ts = a.observe(&e.evaluate(T0 + MIN), T0 + MIN);
    assert!(ts.iter().any(|t| t.kind == AlertKind::Page && t.to == Some(Phase::Firing)), "{ts:?}");
    let err = load_str(
        "x.yaml",
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: s\n  objective: 99\n  window: 7d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n  alerting: {min_events: -1, exhaustion_within: 30d}\n",
    )
    .unwrap_err();
    let msgs: Vec<String> = err.iter().map(|d| d.to_string()).collect();
    assert!(msgs.iter().any(|m| m.contains("min_events` must be a whole number")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("exhaustion_within` must be between")), "{msgs:?}");
}

#[test]
fn an_outage_inside_an_exclusion_window_neither_spends_budget_nor_pages() {
    // T0 is Friday 2026-11-20 00:00Z = 01:00 in Berlin. A weekly Friday
    // 00:30–02:30 Berlin slot covers 23:30Z Thursday to 01:30Z Friday; a
    // one-off window covers 03:00Z–03:10Z.
    let set = load_str(
        "x.yaml",
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: s\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n  exclusions:\n    - {weekly: {day: friday, start: \"00:30\", duration: 2h, timezone: Europe/Berlin}, reason: weekly maintenance}\n    - {start: \"2026-11-20T03:00:00Z\", end: \"2026-11-20T03:10:00Z\", reason: database migration}\n",
    )
    .unwrap();
    let covered = |m: i64| set.slos[0].exclusions.iter().map(|x| x.covers(T0 + m * MIN)).collect::<Vec<_>>();
    assert_eq!(covered(-31), [false, false]);
    assert_eq!(covered(-30), [true, false]);
    assert_eq!(covered(89), [true, false]);
    assert_eq!(covered(90), [false, false]);
    assert_eq!(covered(180), [false, true]);
    assert_eq!(covered(190), [false, false]);
    let mut e = Engine::new(&set, false);
    let mut a = Alerts::new(AlertPolicy::default());
    for m in -120..0 {
        traffic(&mut e, m, 100, 0);
    }
    // Minutes -30..90 are inside the weekly slot: an outage there is not counted.
    for m in -30..90 {
        traffic(&mut e, m, 100, 100);
    }
    // The minute after the slot counts again.
    traffic(&mut e, 90, 100, 0);
    // The one-off window: 03:00–03:10Z.
    for m in 180..190 {
        traffic(&mut e, m, 100, 100);
    }
    let at = T0 + 200 * MIN;
    let s = e.evaluate(at);
    assert_eq!(s[0].window.events.total, 90 * 100 + 100, "only the healthy minutes outside the windows count");
    assert_eq!(s[0].window.events.good, s[0].window.events.total);
    // The healthy and the failing requests of the weekly slot, and the one-off window's.
    assert_eq!(e.stats.excluded, (30 + 120 + 10) * 100);
    assert!(a.observe(&s, at).is_empty());
    // Right after the one-off window, errors count and page.
    for m in 190..200 {
        traffic(&mut e, m, 100, 100);
    }
    let s = e.evaluate(at);
    assert!(a.observe(&s, at).iter().any(|t| t.kind == AlertKind::Page && t.to == Some(Phase::Firing)));
}

#[test]
fn exclusion_mistakes_are_positioned() {
    let err = load_str(
        "x.yaml",
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: shop}\nspec:\n  service: s\n  objective: 99\n  window: 30d\n  indicator:\n    source: ndjson\n    good: {status: \"< 500\"}\n  exclusions:\n    - {weekly: {day: funday, start: \"25:00\", duration: 2h, timezone: Mars/Olympus}, reason: x}\n    - {start: \"2026-11-20T03:00:00Z\", end: \"2026-11-20T02:00:00Z\", reason: y}\n    - {start: yesterday, end: \"2026-11-20T02:00:00Z\"}\n",
    )
    .unwrap_err();
    let msgs: Vec<String> = err.iter().map(|d| d.to_string()).collect();
    for want in [
        "x.yaml:12:22: `spec.exclusions[0].weekly.day` must be a day of the week",
        "x.yaml:12:37: `spec.exclusions[0].weekly.start` must be a local time HH:MM",
        "x.yaml:12:70: unknown time zone `Mars/Olympus`",
        "x.yaml:13:44: `spec.exclusions[1].end` must be after `spec.exclusions[1].start`",
        "x.yaml:14:15: `spec.exclusions[2].start` must be an RFC 3339 time",
        "x.yaml:14:7: `spec.exclusions[2]` is missing required field `reason`",
    ] {
        assert!(msgs.iter().any(|m| m.starts_with(want)), "missing {want:?} in {msgs:#?}");
    }
}
