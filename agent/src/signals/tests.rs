use super::config::{BusinessSignal, PathMatch, SignalsConfig};
use super::*;

const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z, a Monday

/// Deterministic noise in [-1, 1).
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn ev<'a>(ts_ms: i64, origin: Origin, status: u16) -> RequestEvent<'a> {
    RequestEvent {
        ts_ms,
        origin: Some(origin),
        service: "shop",
        path: "/products",
        method: "GET",
        status,
        latency_ms: Some(40.0),
        ..Default::default()
    }
}

fn series<'v>(v: &'v SignalsView, origin: &str, signal: &str, dim: &Dim) -> &'v SeriesView {
    v.series
        .iter()
        .find(|s| s.key.origin == origin && s.signal == signal && &s.key.dim == dim)
        .unwrap_or_else(|| panic!("no series {origin} {signal} {dim:?}"))
}

#[test]
fn minutes_close_by_event_time_and_count_zeros_for_silent_minutes() {
    let mut s = Signals::new(SignalsConfig { lateness_ms: 120_000, min_events: 5, ..Default::default() });
    for m in 0..5 {
        for i in 0..10 {
            let status = if i == 0 { 503 } else { 200 };
            s.observe(&ev(T0 + m * MINUTE_MS + i * 1000, Origin::ApiGateway, status), 1);
        }
    }
    // The newest event is in minute 4: minutes that ended 2 minutes before it close.
    let closed = s.advance(T0);
    assert_eq!(closed, vec![T0, T0 + MINUTE_MS]);
    let v = s.view();
    let r = series(&v, "apigateway", "requests", &Dim::All);
    assert_eq!(r.recent.iter().map(|m| m.value).collect::<Vec<_>>(), vec![10.0; 2]);
    let e = series(&v, "apigateway", "error_ratio", &Dim::All);
    assert!((e.last().unwrap().value - 0.1).abs() < 1e-6);
    // A late event of a closed minute is counted as late, not scored.
    s.observe(&ev(T0 + 30_000, Origin::ApiGateway, 200), 1);
    assert_eq!(s.stats.late, 1);
    // Nothing more arrives: the clock closes the rest after idle_close, with zeros.
    let now = T0 + 40 * MINUTE_MS;
    s.advance(now);
    let v = s.view();
    let r = series(&v, "apigateway", "requests", &Dim::All);
    let values: Vec<f32> = r.recent.iter().map(|m| m.value).collect();
    assert_eq!(&values[..5], &[10.0; 5]);
    assert!(values[5..].iter().all(|&x| x == 0.0), "{values:?}");
    assert_eq!(v.closed_until_ms, (now - SignalsConfig::default().idle_close_ms) / MINUTE_MS * MINUTE_MS);
    // Ratios are not scored in minutes without traffic.
    assert_eq!(series(&v, "apigateway", "error_ratio", &Dim::All).recent.len(), 5);
}

#[test]
fn dimensions_are_edge_location_region_and_client_class() {
    let mut s = Signals::new(SignalsConfig { max_edge_locations: 2, min_events: 1, ..Default::default() });
    for (i, edge) in ["FRA56-P2", "IAD89-C1", "NRT57-P3"].iter().enumerate() {
        let e = RequestEvent {
            edge_location: edge,
            client: ClientClass::Browser,
            ..ev(T0 + i as i64, Origin::CloudFront, 200)
        };
        s.observe(&e, 4);
    }
    s.advance(T0 + 60 * MINUTE_MS);
    let v = s.view();
    let value = |dim: Dim| series(&v, "cloudfront", "requests", &dim).recent[0].value;
    assert_eq!(value(Dim::All), 12.0);
    assert_eq!(value(Dim::Edge(Arc::from("FRA56-P2"))), 4.0);
    // The third edge location folds into `other`.
    assert_eq!(value(Dim::Edge(Arc::from("other"))), 4.0);
    assert_eq!(value(Dim::Region(Region::Europe)), 4.0);
    assert_eq!(value(Dim::Region(Region::AsiaPacific)), 4.0);
    assert_eq!(value(Dim::Client(ClientClass::Browser)), 12.0);
    // CloudFront: the busiest second and its bandwidth.
    assert_eq!(series(&v, "cloudfront", "peak_rps", &Dim::All).recent[0].value, 12.0);
}

#[test]
fn series_are_bounded_and_what_is_left_out_is_counted() {
    let mut s = Signals::new(SignalsConfig { max_series: 3, min_events: 1, ..Default::default() });
    s.observe(&ev(T0, Origin::ApiGateway, 200), 5);
    s.advance(T0 + 60 * MINUTE_MS);
    assert_eq!(s.len(), 3);
    assert!(s.stats.series_dropped > 0);
    assert!(s.memory_bytes() <= 3 * SERIES_MAX_BYTES + 1_000_000);
}

#[test]
fn lambda_concurrency_is_littles_law_per_second() {
    let mut s = Signals::new(SignalsConfig::default());
    // 20 invocations a second of 250 ms each, for two minutes: L = 20 × 0.25 = 5.
    for m in 0..2 {
        for i in 0..(60 * 20) {
            let ts = T0 + m * MINUTE_MS + i * 50 + 25;
            let e = RequestEvent { latency_ms: Some(250.0), ..ev(ts, Origin::Lambda, 200) };
            s.observe(&e, 1);
        }
    }
    s.advance(T0 + 60 * MINUTE_MS);
    let v = s.view();
    let c = series(&v, "lambda", "concurrency", &Dim::All);
    let peak = c.recent[1].value;
    assert!((4.5..=5.6).contains(&peak), "peak concurrency {peak}");
}

/// Ten days of a business funnel: daily seasonal conversions per minute in
/// two regions, and on the last day conversions in Europe halve at 14:00.
#[test]
fn a_conversion_drop_is_found_with_its_start_and_its_region() {
    let checkout = BusinessSignal {
        name: "checkout_confirmed".into(),
        service: None,
        method: Some("POST".into()),
        path: PathMatch::Exact("/checkout/confirm".into()),
        status: vec![(200, 299)],
    };
    let mut s = Signals::new(SignalsConfig { business: vec![checkout], ..Default::default() });
    let mut noise = Noise(42);
    let days = 10;
    let drop_at = T0 + (days - 1) * 86_400_000 + 14 * HOUR_MS;
    for minute in 0..days * 1440 {
        let t = T0 + minute * MINUTE_MS;
        let phase = (minute % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
        let base = 60.0 + 40.0 * (phase - 1.2).sin();
        for (edge, share) in [("FRA56-P2", 0.6), ("IAD89-C1", 0.4)] {
            let mut rate = base * share;
            if edge == "FRA56-P2" && t >= drop_at {
                rate *= 0.5;
            }
            let n = (rate + rate.sqrt() * noise.next()).round().max(0.0) as u64;
            // Page views around the funnel: not conversions.
            let view = RequestEvent { edge_location: edge, ..ev(t + 1000, Origin::CloudFront, 200) };
            s.observe(&view, n * 10);
            let confirm = RequestEvent {
                method: "POST",
                path: "/checkout/confirm",
                edge_location: edge,
                ..ev(t + 2000, Origin::CloudFront, 200)
            };
            s.observe(&confirm, n);
            // A failed confirmation does not convert.
            s.observe(&RequestEvent { status: 502, ..confirm }, 1);
        }
        if minute % 60 == 59 {
            s.advance(t);
        }
    }
    let v = s.view();
    let europe = series(&v, "cloudfront", "business:checkout_confirmed", &Dim::Region(Region::Europe));
    let e = europe.episode.or(europe.last_episode).expect("the drop in Europe is an anomaly");
    assert_eq!(e.direction, -1);
    assert!(
        (drop_at..=drop_at + 30 * MINUTE_MS).contains(&e.start_ms),
        "found from {} min after the drop",
        (e.start_ms - drop_at) / MINUTE_MS
    );
    // North America's conversions did not move: no episode since the drop.
    let na = series(&v, "cloudfront", "business:checkout_confirmed", &Dim::Region(Region::NorthAmerica));
    for ep in [na.episode, na.last_episode].into_iter().flatten() {
        assert!(ep.start_ms < drop_at - HOUR_MS, "an episode in North America at {}", ep.start_ms);
    }
    // The hourly history holds the days for the forecasts.
    assert!(europe.hours.len() >= 24 * (days as usize) - 2);
    // The answer: Europe's conversions halved since 14:00, against the days before.
    let a = answer::anomalies(
        &v,
        &answer::Query { signal: Some("business:checkout_confirmed".into()), ..Default::default() },
    );
    let eu = a.business.iter().find(|b| b.dimension == "region" && b.value == "europe").unwrap();
    assert_eq!(eu.since.as_deref(), Some(crate::timefmt::rfc3339(drop_at).as_str()));
    assert!((-0.6..=-0.4).contains(&eu.change.unwrap()), "{:?}", eu.change);
    let na = a.business.iter().find(|b| b.dimension == "region" && b.value == "north-america").unwrap();
    assert_eq!(na.since, None);
    assert!(na.change.unwrap().abs() < 0.2);
    let found = a.anomalies.iter().find(|x| x.dimension == "region" && x.value == "europe").unwrap();
    assert_eq!(found.direction, "down");
}

/// An hour of ordinary traffic from many addresses, then a burst from three.
#[test]
fn an_attack_from_a_few_addresses_scores_and_names_them() {
    let mut s = Signals::new(SignalsConfig::default());
    let mut noise = Noise(7);
    let addrs: Vec<String> = (0..5000).map(|i| format!("198.51.{}.{}", i / 250, i % 250)).collect();
    let attackers = ["203.0.113.7", "203.0.113.8", "203.0.113.9"];
    let burst_at = T0 + 180 * MINUTE_MS;
    let mut k = 0usize;
    for minute in 0..200 {
        let t = T0 + minute * MINUTE_MS;
        let n = (300.0 + 30.0 * noise.next()) as usize;
        for i in 0..n {
            k = (k * 31 + 17) % addrs.len();
            let status = if i % 50 == 0 { 404 } else { 200 };
            let e = RequestEvent {
                client_addr: &addrs[k],
                user_agent: "Mozilla/5.0",
                ..ev(t + (i as i64 * 60_000 / n as i64), Origin::CloudFront, status)
            };
            s.observe(&e, 1);
        }
        if t >= burst_at {
            for (j, a) in attackers.iter().enumerate() {
                let e = RequestEvent {
                    client_addr: a,
                    user_agent: "python-requests/2.31",
                    path: "/login",
                    asn: Some(64500),
                    ..ev(t + j as i64 * 100, Origin::CloudFront, 403)
                };
                s.observe(&e, 400);
            }
        }
        s.advance(t);
    }
    let v = s.view();
    for signal in ["requests", "forbidden_share", "top_client_share"] {
        let x = series(&v, "cloudfront", signal, &Dim::All);
        let e = x.episode.or(x.last_episode).unwrap_or_else(|| panic!("{signal}: no anomaly"));
        assert!((burst_at..burst_at + 5 * MINUTE_MS).contains(&e.start_ms), "{signal} from {}", e.start_ms);
        let before = x.recent.iter().filter(|m| m.minute_ms < burst_at && m.minute_ms > T0 + 90 * MINUTE_MS);
        assert!(before.map(|m| m.score).fold(0f32, f32::max) < 0.6, "{signal} alarmed before the burst");
    }
    let (requests, h) = v.hitters_between("shop", burst_at, burst_at + 5 * MINUTE_MS);
    assert!(requests > 5 * 1200);
    let top: Vec<String> = h.addresses.top(3).into_iter().map(|(a, _)| a).collect();
    let mut want: Vec<String> = attackers.iter().map(|a| a.to_string()).collect();
    want.sort();
    let mut got = top.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(h.user_agents.top(1)[0].0, "python-requests/2.31");
    assert_eq!(h.paths.top(1)[0].0, "/login");
    assert_eq!(h.asns.top(1)[0].0, "64500");
    // The answer: suspected, since the burst, naming the three addresses.
    let a = answer::anomalies(&v, &answer::Query::default());
    let attack = &a.attack[0];
    assert!(attack.suspected);
    assert_eq!(attack.since.as_deref(), Some(crate::timefmt::rfc3339(burst_at).as_str()));
    let top = attack.top.as_ref().unwrap();
    let named: Vec<&str> = top.client_addresses.iter().take(3).map(|h| h.value.as_str()).collect();
    for a in attackers {
        assert!(named.contains(&a), "{named:?}");
    }
    assert!(top.client_addresses[0].share > 0.2);
    let forbidden = a.anomalies.iter().find(|x| x.signal == "forbidden_share" && x.dimension == "all").unwrap();
    assert_eq!(forbidden.direction, "up");
    assert!(forbidden.evidence.top.is_some());
}

#[test]
fn slo_minutes_become_series_and_go_with_their_slo() {
    let mut s = Signals::new(SignalsConfig { min_events: 1, ..Default::default() });
    s.observe(&ev(T0, Origin::ApiGateway, 200), 1);
    let closed = s.advance(T0 + 60 * MINUTE_MS);
    assert!(!closed.is_empty());
    for m in &closed {
        s.observe_slo_minute("checkout-availability", "shop", *m, 100, 3);
    }
    let v = s.view();
    let dim = Dim::Slo(Arc::from("checkout-availability"));
    assert!((series(&v, "slo", "bad_ratio", &dim).recent[0].value - 0.03).abs() < 1e-6);
    s.set_slo_groups(&[]);
    assert!(s.view().series.iter().all(|x| x.key.origin != "slo"));
}

#[test]
fn slos_counted_together_share_their_series_and_each_is_shown() {
    let mut s = Signals::new(SignalsConfig { min_events: 1, ..Default::default() });
    s.set_slo_groups(&[vec![("a", "shop"), ("b", "shop"), ("c", "cart")], vec![("d", "shop")]]);
    s.observe(&ev(T0, Origin::ApiGateway, 200), 1);
    let closed = s.advance(T0 + 180 * MINUTE_MS);
    for m in &closed {
        s.observe_slo_minute("a", "shop", *m, 100, 3);
        s.observe_slo_minute("d", "shop", *m, 10, 5);
    }
    // Two pairs of series are kept, four SLOs are shown.
    assert_eq!(s.len() - s.view().series.iter().filter(|x| x.key.origin != "slo").count(), 4);
    let v = s.view();
    let slo = |name: &str| {
        v.series
            .iter()
            .filter(|x| x.key.dim == Dim::Slo(Arc::from(name)) && x.signal == "bad_ratio")
            .map(|x| (x.key.service.to_string(), x.recent.len(), x.last().map(|m| m.value)))
            .collect::<Vec<_>>()
    };
    let n = closed.len().min(crate::signals::RECENT);
    assert_eq!(slo("a"), [("shop".to_string(), n, Some(0.03))]);
    assert_eq!(slo("b"), [("shop".to_string(), n, Some(0.03))]);
    assert_eq!(slo("c"), [("cart".to_string(), n, Some(0.03))]);
    assert_eq!(slo("d"), [("shop".to_string(), n, Some(0.5))]);
    // The history is kept once per group.
    let owners: Vec<String> = s
        .history_records()
        .iter()
        .filter(|(k, _)| k.split('\u{1f}').nth(1) == Some("slo"))
        .map(|(k, _)| k.rsplit('\u{1f}').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(owners, ["a", "d", "a", "d"], "bad_ratio and events of the two groups");

    // A reload makes "b" the first member: it takes over the group's series.
    s.set_slo_groups(&[vec![("b", "shop"), ("c", "cart")], vec![("d", "shop")]]);
    let v = s.view();
    let bad = |name: &str| v.series.iter().filter(|x| x.key.dim == Dim::Slo(Arc::from(name))).count();
    assert_eq!((bad("a"), bad("b"), bad("c"), bad("d")), (0, 2, 2, 2));
    let b = v.series.iter().find(|x| x.key.dim == Dim::Slo(Arc::from("b")) && x.signal == "bad_ratio").unwrap();
    assert_eq!(b.recent.len(), n, "b keeps the minutes counted under a");
}

#[test]
fn hostile_times_and_values_do_not_panic() {
    let mut s = Signals::new(SignalsConfig::default());
    for ts in [i64::MIN, -1, 0, i64::MAX, T0] {
        let e = RequestEvent {
            latency_ms: Some(f64::NAN),
            bytes: u64::MAX,
            asn: Some(u32::MAX),
            ..ev(ts, Origin::Lambda, 999)
        };
        s.observe(&e, u64::MAX / 2);
        s.advance(ts);
    }
    s.advance(i64::MAX);
    s.advance(i64::MIN);
    let _ = s.view();
}

/// Ten days of a function whose peak concurrency grows by 4 a day (with a
/// daily cycle): with reserved concurrency 100, the forecast names the day
/// the daily peak crosses it.
#[test]
fn a_growing_function_reaches_its_reserved_concurrency_when_the_line_says() {
    let mut quotas = super::config::Quotas::default();
    quotas.functions.insert("checkout".into(), 100.0);
    let mut s = Signals::new(SignalsConfig { quotas: quotas.clone(), ..Default::default() });
    let days = 10i64;
    // Peak of day d: 40 + 4 d (at 12:00); 100 is reached on day 15 at 12:00.
    for minute in 0..days * 1440 {
        let t = T0 + minute * MINUTE_MS;
        let day = minute as f64 / 1440.0;
        let phase = (minute % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
        let level = (40.0 + 4.0 * day) * (0.75 + 0.25 * (phase - std::f64::consts::FRAC_PI_2).sin());
        // `level` invocations, each busy the whole minute: concurrency = level.
        let n = level.round() as u64;
        let e = RequestEvent { service: "checkout", latency_ms: Some(60_000.0), ..ev(t + 59_999, Origin::Lambda, 200) };
        for _ in 0..n {
            s.observe(&e, 1);
        }
        if minute % 60 == 59 {
            s.advance(t);
        }
    }
    let at = T0 + days * 86_400_000;
    s.advance(at);
    let v = s.view();
    let q = super::forecasts::quotas(&v, &quotas, at);
    let f = q.iter().find(|e| e.scope == "function" && e.name == "checkout").expect("the function's quota");
    assert_eq!((f.kind, f.limit_source, f.outlook.limit), ("lambda_concurrency", "configured", 100.0));
    let crossing = T0 + 15 * 86_400_000 + 12 * HOUR_MS;
    let reach = f.outlook.reach_at_ms.expect("reached within 7 days");
    assert!(
        (reach - crossing).abs() <= 12 * HOUR_MS,
        "reached {} h from the known crossing",
        (reach - crossing) / HOUR_MS
    );
    assert!((3.0..=5.0).contains(&f.outlook.growth_per_day), "{}", f.outlook.growth_per_day);
    // The account's own series adds the function's concurrency, against the AWS default.
    let a = q.iter().find(|e| e.scope == "account").expect("the account's quota");
    assert_eq!((a.name.as_str(), a.limit_source, a.outlook.limit), ("default", "aws_default", 1000.0));
    assert_eq!(a.outlook.reach_at_ms, None);
}

#[test]
fn a_record_without_a_service_is_watched_under_its_host() {
    let mut s = Signals::new(SignalsConfig { min_events: 1, ..Default::default() });
    let e = RequestEvent { service: "", host: "d111111abcdef8.cloudfront.net", ..ev(T0, Origin::CloudFront, 200) };
    s.observe(&e, 3);
    s.observe(&RequestEvent { host: "", ..e }, 5);
    s.advance(T0 + 60 * MINUTE_MS);
    let v = s.view();
    let r = v.series.iter().find(|x| x.signal == "requests" && x.key.dim == Dim::All).unwrap();
    assert_eq!(&*r.key.service, "d111111abcdef8.cloudfront.net");
    assert_eq!(r.recent[0].value, 3.0);
}

#[test]
fn the_hourly_history_comes_back_after_a_restart() {
    let cfg = SignalsConfig { min_events: 1, ..Default::default() };
    let mut s = Signals::new(cfg.clone());
    for minute in 0..3 * 60 {
        let e = RequestEvent {
            edge_location: "FRA56-P2",
            client: ClientClass::Browser,
            ..ev(T0 + minute * MINUTE_MS, Origin::CloudFront, 200)
        };
        s.observe(&e, 1 + (minute as u64 % 7));
    }
    s.advance(T0 + 4 * HOUR_MS);
    let records = s.history_records();
    assert!(!records.is_empty());
    let mut again = Signals::new(cfg);
    // Garbage is skipped, not a panic.
    let mut with_garbage = records.clone();
    with_garbage.push(("no separators".into(), vec![1, 2, 3]));
    with_garbage.push(("shop\u{1f}cloudfront\u{1f}requests\u{1f}region\u{1f}atlantis".into(), vec![0; 12]));
    assert_eq!(again.restore_history(&with_garbage), records.len());
    let (a, b) = (s.view(), again.view());
    for x in a.series.iter().filter(|x| !x.hours.is_empty()) {
        let y = b.series.iter().find(|y| y.key == x.key).unwrap_or_else(|| panic!("{:?} not restored", x.key));
        assert_eq!(x.hours, y.hours);
    }
    assert_eq!(again.history_records(), records);
}
