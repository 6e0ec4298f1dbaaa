use super::*;

const NOW: i64 = 1_796_428_800_000; // 2026-12-05T00:00:00Z

fn draft(title: &str, services: &[&str]) -> Draft {
    Draft {
        title: title.into(),
        services: services.iter().map(|s| s.to_string()).collect(),
        impact: Impact::Minor,
        status: Status::Investigating,
        message: "looking".into(),
        started_at_ms: None,
        opened_by: "user:oncall".into(),
    }
}

fn transition(service: &str, kind: AlertKind, to: Phase, at: i64) -> Transition {
    let mut record = crate::alert::AlertRecord::pending("checkout-availability", service, kind, at);
    record.phase = to;
    record.episode = 1;
    record.firing_since_ms = Some(at);
    Transition { slo: record.slo.clone(), kind, from: Some(Phase::Pending), to: Some(to), at_ms: at, record }
}

#[test]
fn ids_count_per_utc_day_and_updates_close_incidents() {
    let mut set = Incidents::default();
    let a = set.open(draft("Checkout slow", &["checkout", "checkout"]), NOW + 1000).unwrap();
    assert_eq!(a.id, "inc-20261205-001");
    assert_eq!(a.services, ["checkout"]);
    set.put(a);
    let b = set.open(draft("Search down", &["search"]), NOW + 2000).unwrap();
    assert_eq!(b.id, "inc-20261205-002");
    set.put(b);
    let c = set.open(draft("late", &["search"]), NOW + 86_400_000).unwrap();
    assert_eq!(c.id, "inc-20261206-001");

    let u = set.updated("inc-20261205-001", Status::Identified, "bad deploy", None, "user:x", NOW + 5000).unwrap();
    assert_eq!((u.status, u.resolved_at_ms, u.updates.len()), (Status::Identified, None, 2));
    set.put(u);
    let r = set.updated("inc-20261205-001", Status::Resolved, "fixed", Some(Impact::Major), "user:x", NOW + 9000);
    let r = r.unwrap();
    assert_eq!((r.resolved_at_ms, r.impact), (Some(NOW + 9000), Impact::Major));
    set.put(r);
    assert!(matches!(
        set.updated("inc-20261205-001", Status::Monitoring, "again", None, "u", NOW + 10_000),
        Err(IncidentError::Conflict(_))
    ));
    assert!(matches!(set.updated("nope", Status::Monitoring, "m", None, "u", NOW), Err(IncidentError::NotFound(_))));
    // Open first (newest first), then resolved.
    let ids: Vec<&str> = set.list(NOW).iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["inc-20261205-002", "inc-20261205-001"]);
    assert!(set.list(NOW + 10_000).iter().all(|i| i.is_open()));

    let json = set.get("inc-20261205-001").unwrap().to_json();
    assert_eq!(json["resolved_at"], "2026-12-05T00:00:09Z");
    assert_eq!(json["updates"][2]["status"], "resolved");
    assert_eq!(json["updates"][0]["by"], "user:oncall");

    let (back, bad) = Incidents::restore(vec![
        ("inc-20261205-001".into(), set.get("inc-20261205-001").unwrap().to_record()),
        ("junk".into(), b"{".to_vec()),
    ]);
    assert_eq!((back.len(), bad), (1, vec!["junk".to_string()]));
    assert_eq!(set.prune(NOW + 9001), ["inc-20261205-001"]);
}

#[test]
fn bad_drafts_are_refused_with_reasons() {
    let set = Incidents::default();
    let cases: Vec<(Draft, &str)> = vec![
        (draft("", &["a"]), "`title` must be non-empty"),
        (draft(&"x".repeat(201), &["a"]), "at most 200"),
        (draft("a\nb", &["a"]), "on one line"),
        (draft("t", &[]), "`services` must name 1 to 50"),
        (Draft { message: " ".into(), ..draft("t", &["a"]) }, "`message` must be non-empty"),
        (Draft { message: "a\u{1b}[31m".into(), ..draft("t", &["a"]) }, "control characters"),
        (Draft { message: "m".repeat(4001), ..draft("t", &["a"]) }, "at most 4000"),
        (Draft { status: Status::Resolved, ..draft("t", &["a"]) }, "cannot be opened resolved"),
        (Draft { started_at_ms: Some(NOW + 3_600_000), ..draft("t", &["a"]) }, "in the future"),
    ];
    for (d, want) in cases {
        let got = set.open(d.clone(), NOW).unwrap_err().to_string();
        assert!(got.contains(want), "{d:?}: {got}");
    }
    assert!(set.open(Draft { message: "line 1\nline 2".into(), ..draft("t", &["a"]) }, NOW).is_ok());
}

#[test]
fn page_alerts_open_one_incident_per_service_and_never_close_it() {
    let page: BTreeSet<Severity> = [Severity::Page].into();
    let mut set = Incidents::default();
    let firing = [
        transition("checkout", AlertKind::Page, Phase::Firing, NOW),
        transition("checkout", AlertKind::Page, Phase::Firing, NOW + 1),
        transition("search", AlertKind::Ticket, Phase::Firing, NOW + 2),
        transition("cdn", AlertKind::CertificatePage, Phase::Firing, NOW + 3),
    ];
    let c = set.from_transitions(&firing, &page);
    assert_eq!(c.changed.len(), 1, "one incident for checkout; tickets and certificates open none");
    let i = &c.changed[0];
    assert_eq!((i.id.as_str(), i.status, i.impact), ("inc-20261205-001", Status::Investigating, Impact::Major));
    assert_eq!(i.opened_by, "alert:slo-agent/checkout-availability/page/1");
    assert_eq!(i.updates.len(), 2, "opened, then the second alert's update");
    assert!(!i.updates[0].message.contains("checkout-availability"), "no SLO names in public text");
    for c in &c.changed {
        set.put(c.clone());
    }
    let resolved =
        set.from_transitions(&[transition("checkout", AlertKind::Page, Phase::Resolved, NOW + 60_000)], &page);
    let i = &resolved.changed[0];
    assert!(i.is_open());
    assert!(i.updates.last().unwrap().message.contains("alert resolved"));
    // Tickets too when configured so.
    let both: BTreeSet<Severity> = [Severity::Page, Severity::Ticket].into();
    let c = set.from_transitions(&[transition("search", AlertKind::Ticket, Phase::Firing, NOW)], &both);
    assert_eq!(c.changed[0].impact, Impact::Minor);
    // A resolve with no open incident changes nothing.
    assert!(
        Incidents::default()
            .from_transitions(&[transition("x", AlertKind::Page, Phase::Resolved, NOW)], &page)
            .changed
            .is_empty()
    );
}
