use super::*;
use crate::alert::AlertPolicy;
use crate::alert::Phase;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const DAY: i64 = 86_400_000;

/// The edge hop of `shop`, whose leaf expires at `not_after_ms` (its intermediate a year later).
fn endpoint(not_after_ms: i64) -> EndpointCertificates {
    EndpointCertificates {
        probe: "shop".into(),
        hop: "edge".into(),
        region: "eu-west-1".into(),
        service: "storefront".into(),
        url: "https://shop.example/health".into(),
        policy: CertificatePolicy::default(),
        chain: vec![
            SeenCertificate { subject: "CN=shop.example".into(), not_after_ms: Some(not_after_ms) },
            SeenCertificate { subject: "CN=Shop CA R1".into(), not_after_ms: Some(not_after_ms + 365 * DAY) },
        ],
        problems: Vec::new(),
    }
}

fn configured() -> BTreeSet<String> {
    ["shop/edge".to_string()].into()
}

/// (kind, to) of each transition.
fn changes(ts: &[Transition]) -> Vec<(AlertKind, Option<Phase>)> {
    ts.iter().map(|t| (t.kind, t.to)).collect()
}

fn firing(a: &Alerts) -> Vec<AlertKind> {
    a.records().filter(|r| r.phase == Phase::Firing).map(|r| r.kind).collect()
}

#[test]
fn a_ticket_at_21_days_and_a_page_at_3_days_on_a_paused_clock() {
    let expiry = T0 + 30 * DAY;
    let e = [endpoint(expiry)];
    let mut a = Alerts::new(AlertPolicy::default());
    // Exactly 21 days left is not below 21 days.
    assert!(a.observe_certificates(&e, &configured(), expiry - 21 * DAY).is_empty());
    let ts = a.observe_certificates(&e, &configured(), expiry - 21 * DAY + 1);
    use AlertKind::{CertificatePage as Page, CertificateTicket as Ticket};
    assert_eq!(changes(&ts), [(Ticket, Some(Phase::Pending)), (Ticket, Some(Phase::Firing))]);
    let r = &ts[1].record;
    assert_eq!((r.slo.as_str(), r.service.as_str(), r.episode), ("shop/edge", "storefront", 1));
    assert_eq!(r.dedup_key(), "slo-agent/shop/edge/certificate_ticket/1");
    let c = r.certificate.as_ref().expect("a certificate alert says what made it fire");
    assert_eq!((c.subject.as_str(), c.not_after_ms, c.below_days), ("CN=shop.example", Some(expiry), 21.0));
    assert!(
        c.describe().starts_with("CN=shop.example expires 2026-12-20T00:00:00Z (21.0 days left, threshold 21 days)")
    );
    // Days pass: nothing new until 3 days are left, then the page too.
    assert!(a.observe_certificates(&e, &configured(), expiry - 3 * DAY).is_empty());
    let ts = a.observe_certificates(&e, &configured(), expiry - 3 * DAY + 1);
    assert_eq!(changes(&ts), [(Page, Some(Phase::Pending)), (Page, Some(Phase::Firing))]);
    assert_eq!(ts[1].record.certificate.as_ref().unwrap().below_days, 3.0);
    assert_eq!(firing(&a), [Ticket, Page]);
    // The days left follow the clock on the firing record.
    a.observe_certificates(&e, &configured(), expiry - DAY);
    let days: Vec<f64> = a.records().filter_map(|r| r.certificate.as_ref()?.days_left).collect();
    assert_eq!(days, [1.0, 1.0]);
}

#[test]
fn a_renewed_certificate_resolves_both_after_resolve_after() {
    let expiry = T0 + 2 * DAY;
    let mut a = Alerts::new(AlertPolicy::default());
    assert_eq!(a.observe_certificates(&[endpoint(expiry)], &configured(), T0).len(), 4);
    let renewed = [endpoint(T0 + 90 * DAY)];
    // Clear now; resolved once clear for `resolve_after` (5 minutes).
    assert!(a.observe_certificates(&renewed, &configured(), T0 + 60_000).is_empty());
    assert!(a.observe_certificates(&renewed, &configured(), T0 + 60_000 + 299_999).is_empty());
    let ts = a.observe_certificates(&renewed, &configured(), T0 + 360_000);
    assert_eq!(changes(&ts).iter().filter(|(_, to)| *to == Some(Phase::Resolved)).count(), 2);
    // The resolved record shows the renewed certificate.
    let c = ts[0].record.certificate.as_ref().unwrap();
    assert_eq!(c.not_after_ms, Some(T0 + 90 * DAY));
    assert_eq!(ts[0].record.dedup_key(), "slo-agent/shop/edge/certificate_ticket/1");
    assert!(firing(&a).is_empty());
}

#[test]
fn a_restart_keeps_the_episode_and_does_not_fire_again() {
    let e = [endpoint(T0 + 10 * DAY)];
    let mut a = Alerts::new(AlertPolicy::default());
    a.observe_certificates(&e, &configured(), T0);
    let mut restarted = Alerts::new(AlertPolicy::default());
    restarted.restore(a.records().cloned());
    assert!(restarted.observe_certificates(&e, &configured(), T0 + DAY).is_empty());
    assert_eq!(restarted.records().map(|r| r.episode).collect::<Vec<_>>(), [1]);
}

#[test]
fn chain_problems_ticket_and_an_expired_certificate_pages() {
    use AlertKind::{CertificatePage as Page, CertificateTicket as Ticket};
    let mut e = endpoint(T0 + 300 * DAY);
    e.problems = vec![Problem { kind: "name_mismatch".into(), text: "not valid for `shop.example`".into() }];
    let [ticket, page] = triggers(&e, T0);
    assert!(ticket.is_some_and(|t| t.problems.len() == 1) && page.is_none());
    e.problems = vec![Problem { kind: "expired".into(), text: "the intermediate certificate expired".into() }];
    let mut a = Alerts::new(AlertPolicy::default());
    a.observe_certificates(&[e], &configured(), T0);
    assert_eq!(firing(&a), [Ticket, Page]);
}

#[test]
fn an_expected_self_signed_leaf_is_no_problem() {
    let mut e = endpoint(T0 + 300 * DAY);
    e.problems = vec![Problem { kind: "self_signed".into(), text: "the leaf certificate is self-signed".into() }];
    assert!(triggers(&e, T0)[0].is_some());
    e.policy.self_signed = true;
    assert_eq!(triggers(&e, T0), [None, None]);
}

#[test]
fn thresholds_are_configurable() {
    let mut e = endpoint(T0 + 10 * DAY);
    e.policy = CertificatePolicy {
        ticket_below: Duration::from_secs(7 * 86_400),
        page_below: Duration::from_secs(86_400),
        ..CertificatePolicy::default()
    };
    assert_eq!(triggers(&e, T0), [None, None]);
    assert!(triggers(&e, T0 + 3 * DAY + 1)[0].is_some());
    assert!(triggers(&e, T0 + 9 * DAY + 1)[1].is_some());
}

#[test]
fn an_endpoint_without_a_result_keeps_its_alerts_and_a_removed_one_resolves() {
    let mut a = Alerts::new(AlertPolicy::default());
    a.observe_certificates(&[endpoint(T0 + DAY)], &configured(), T0);
    // Not probed yet after a restart, or the connection failed: no change.
    assert!(a.observe_certificates(&[], &configured(), T0 + DAY).is_empty());
    assert_eq!(firing(&a).len(), 2);
    // The probe is no longer configured: resolved and forgotten.
    let ts = a.observe_certificates(&[], &BTreeSet::new(), T0 + 2 * DAY);
    assert_eq!(changes(&ts).iter().filter(|(_, to)| *to == Some(Phase::Resolved)).count(), 2);
    assert_eq!(a.records().count(), 0);
}

#[test]
fn slo_evaluations_leave_certificate_alerts_alone() {
    let mut a = Alerts::new(AlertPolicy::default());
    a.observe_certificates(&[endpoint(T0 + DAY)], &configured(), T0);
    assert!(a.observe(&[], T0 + 1000).is_empty());
    assert_eq!(firing(&a).len(), 2);
}
