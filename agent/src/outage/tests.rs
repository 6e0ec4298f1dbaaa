//! The verdict on generated traffic: CloudFront, API Gateway and Lambda
//! records of five edge locations and three routes, fed to the live signals
//! and the hop decomposition as the state thread feeds them, with faults in
//! the last minutes.

use super::*;
use crate::event::{ClientClass, Origin, RequestEvent};
use crate::hops::Hops;
use crate::signals::Signals;
use crate::signals::config::SignalsConfig;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const M: i64 = MINUTE_MS;
/// Minutes of normal traffic before the fault (past the detector's warm-up).
const CALM: i64 = 75;
/// Minutes of the fault (the window is 10).
const FAULT: i64 = 12;

const POPS: [&str; 5] = ["IAD89-C1", "JFK50-P1", "FRA56-P1", "LHR61-P2", "GRU3-C1"];
/// Route, path, requests per edge location and minute.
const ROUTES: [(&str, &str, u64); 3] = [("/", "/", 20), ("/cart/{id}", "/cart/1", 10), ("/api/pay", "/api/pay", 10)];

/// Which hop answers 5xx for a request of `pop` and `route` during the fault.
#[derive(Clone, Copy, PartialEq)]
enum Fails {
    No,
    Edge,
    Gateway,
    Function,
}

struct World {
    signals: Signals,
    hops: Hops,
    now: i64,
}

fn run(fault: impl Fn(&str, &str) -> Fails) -> World {
    let cfg = SignalsConfig::default();
    let idle = cfg.idle_close_ms;
    let mut w =
        World { signals: Signals::new(cfg), hops: Hops::new(crate::dims::RouteTemplater::default(), 100), now: T0 };
    for minute in 0..CALM + FAULT {
        let ts = T0 + minute * M + 1_000;
        for pop in POPS {
            for (route, path, n) in ROUTES {
                let fails = if minute >= CALM { fault(pop, route) } else { Fails::No };
                let function = if fails == Fails::Function { 500 } else { 200 };
                let gateway = match fails {
                    Fails::Function => 502,
                    Fails::Gateway => 503,
                    _ => 200,
                };
                let edge = if fails == Fails::Edge { 502 } else { gateway };
                for (client, k) in [(ClientClass::Browser, n * 3 / 4), (ClientClass::Crawler, n - n * 3 / 4)] {
                    let cf = RequestEvent {
                        ts_ms: ts,
                        origin: Some(Origin::CloudFront),
                        service: "shop",
                        path,
                        status: edge,
                        edge_location: pop,
                        client,
                        latency_ms: Some(40.0),
                        upstream_latency_ms: Some(30.0),
                        ..Default::default()
                    };
                    w.signals.observe(&cf, k);
                    w.hops.observe(&cf, k);
                    if fails == Fails::Edge {
                        continue;
                    }
                    let gw = RequestEvent {
                        ts_ms: ts,
                        origin: Some(Origin::ApiGateway),
                        service: "shop",
                        route,
                        path,
                        status: gateway,
                        latency_ms: Some(25.0),
                        upstream_latency_ms: Some(20.0),
                        ..Default::default()
                    };
                    w.hops.observe(&gw, k);
                    if fails == Fails::Gateway {
                        continue;
                    }
                    let fun = RequestEvent {
                        ts_ms: ts,
                        origin: Some(Origin::Lambda),
                        service: "shop",
                        status: function,
                        latency_ms: Some(15.0),
                        ..Default::default()
                    };
                    w.hops.observe(&fun, k);
                }
            }
        }
        w.now = T0 + (minute + 1) * M;
        w.signals.advance(w.now + idle);
    }
    w
}

fn assess_at(w: &World, journeys: &[JourneyCheck]) -> Assessment {
    let view = w.signals.view();
    let hops = w.hops.view(w.now);
    assess(&OutageConfig::default(), "shop", w.now, &view, &hops, journeys, &[])
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.name.as_str()).collect()
}

#[test]
fn calm_traffic_is_no_outage() {
    let w = run(|_, _| Fails::No);
    let a = assess_at(&w, &[]);
    assert_eq!(a.verdict, Verdict::None, "{a:#?}");
    assert_eq!(a.failing_share, 0.0);
    assert_eq!(a.scope, Scope::default());
    assert_eq!(a.blame, None);
    assert_eq!(a.window_minutes, 10);
}

#[test]
fn one_edge_location_down_is_partial_and_blames_the_edge() {
    let w = run(|pop, _| if pop == "FRA56-P1" { Fails::Edge } else { Fails::No });
    let a = assess_at(&w, &[]);
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.edge_locations), ["FRA56-P1"]);
    let pop = &a.scope.edge_locations[0];
    assert_eq!((pop.success_ratio, pop.requests, pop.share), (Some(0.0), 400, Some(0.2)));
    assert_eq!(pop.baseline, Some(0.9667), "the hour before the window holds the fault's first two minutes");
    assert_eq!(names(&a.scope.regions), ["europe"]);
    assert!(a.scope.routes.is_empty() && a.scope.client_classes.is_empty(), "{a:#?}");
    assert_eq!(a.failing_share, 0.2);
    assert_eq!(a.blame, Some("edge"));
}

#[test]
fn one_region_down_is_partial() {
    let w = run(|pop, _| if ["FRA56-P1", "LHR61-P2"].contains(&pop) { Fails::Edge } else { Fails::No });
    let a = assess_at(&w, &[]);
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.regions), ["europe"]);
    assert_eq!(a.scope.regions[0].share, Some(0.4));
    assert_eq!(names(&a.scope.edge_locations).len(), 2);
    assert_eq!(a.failing_share, 0.4);
    assert_eq!(a.blame, Some("edge"));
}

#[test]
fn everything_5xx_is_total_and_blames_the_function() {
    let w = run(|_, _| Fails::Function);
    let a = assess_at(&w, &[]);
    assert_eq!(a.verdict, Verdict::Total, "{a:#?}");
    assert_eq!(a.failing_share, 1.0);
    assert_eq!(a.scope.edge_locations.len(), 5);
    assert_eq!(a.scope.routes.len(), 3);
    assert_eq!(a.blame, Some("function"));
}

#[test]
fn one_route_down_is_partial_and_names_the_route() {
    let w = run(|_, route| if route == "/api/pay" { Fails::Gateway } else { Fails::No });
    let a = assess_at(&w, &[]);
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.routes), ["/api/pay"]);
    let r = &a.scope.routes[0];
    assert_eq!((r.success_ratio, r.share), (Some(0.0), Some(0.25)));
    // The hour before the window holds the fault's first two minutes.
    assert_eq!(r.baseline, Some(0.9667));
    // Every edge location is worse alike: not one of them is named.
    assert!(a.scope.edge_locations.is_empty() && a.scope.regions.is_empty(), "{a:#?}");
    assert_eq!(a.failing_share, 0.25);
    assert_eq!(a.blame, Some("gateway"));
}

#[test]
fn checkout_failing_at_payment_while_pages_work_is_partial() {
    let w = run(|_, _| Fails::No);
    let run = |region: &str| JourneyCheck {
        journey: "checkout".into(),
        service: "shop".into(),
        region: region.into(),
        started_ms: w.now - 2 * M,
        failed_step: Some("payment".into()),
        http_status: Some(502),
    };
    let passed = JourneyCheck { journey: "browse".into(), failed_step: None, ..run("eu-west-1") };
    let stale = JourneyCheck { started_ms: w.now - 3 * 60 * M, journey: "old".into(), ..run("eu-west-1") };
    let a = assess_at(&w, &[run("eu-west-1"), passed, stale]);
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.journey_steps), ["checkout/payment"]);
    assert!(a.evidence.iter().any(|e| e.contains("step payment failed (HTTP 502)")), "{:?}", a.evidence);
    assert_eq!(a.failing_share, 0.0);
}

#[test]
fn the_probe_region_the_synthetic_checks_fail_from_is_named() {
    let w = run(|_, _| Fails::No);
    let check = |journey: &str, region: &str, failed: bool| JourneyCheck {
        journey: journey.into(),
        service: "shop".into(),
        region: region.into(),
        started_ms: w.now - 2 * M,
        failed_step: failed.then(|| "payment".to_string()),
        http_status: failed.then_some(502),
    };
    // From Ireland the checkout fails and browsing works; from Virginia both work.
    let runs = [
        check("checkout", "eu-west-1", true),
        check("browse", "eu-west-1", false),
        check("checkout-us", "us-east-1", false),
        check("browse-us", "us-east-1", false),
    ];
    let probe = ProbeCheck {
        probe: "edge".into(),
        service: "shop".into(),
        region: "us-east-1".into(),
        hops: vec![("edge".into(), true, Some(200))],
    };
    let (view, hops) = (w.signals.view(), w.hops.view(w.now));
    let a = assess(&OutageConfig::default(), "shop", w.now, &view, &hops, &runs, std::slice::from_ref(&probe));
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.probe_regions), ["eu-west-1"]);
    assert_eq!(a.scope.probe_regions[0].success_ratio, Some(0.5));
    assert_eq!(a.scope.probe_regions[0].requests, 2);
    assert!(a.evidence.iter().any(|e| e == "synthetic checks from eu-west-1: 1 of 2 passed"), "{:?}", a.evidence);
    // Both regions are judged slices for the gauges.
    let judged: Vec<(&str, f64, u64)> = a
        .judged
        .iter()
        .filter(|j| j.dimension == "probe_region")
        .map(|j| (j.name.as_str(), j.success_ratio, j.requests))
        .collect();
    assert_eq!(judged, [("eu-west-1", 0.5, 2), ("us-east-1", 1.0, 3)]);
}

#[test]
fn unknown_services_are_unknown() {
    let w = run(|_, _| Fails::No);
    let (view, hops) = (w.signals.view(), w.hops.view(w.now));
    assert!(knows("shop", &view, &hops, &[], &[]));
    for s in ["", "nope", "shop\n", "../shop", "%00", &"x".repeat(10_000)] {
        assert!(!knows(s, &view, &hops, &[], &[]), "{s:?}");
    }
    // Asked anyway, nothing is known: none.
    assert_eq!(assess(&OutageConfig::default(), "nope", w.now, &view, &hops, &[], &[]).verdict, Verdict::None);
    assert_eq!(services(&view, &[], &[]), ["shop"]);
}

#[test]
fn empty_views_answer_none() {
    let a = assess(&OutageConfig::default(), "shop", 0, &SignalsView::default(), &HopsView::default(), &[], &[]);
    assert_eq!((a.verdict, a.failing_share), (Verdict::None, 0.0));
}

#[test]
fn a_probe_failing_past_the_gateway_blames_the_gateway() {
    let w = run(|_, _| Fails::No);
    let probe = |hops: &[(&str, bool)]| ProbeCheck {
        probe: "api".into(),
        service: "shop".into(),
        region: "eu-west-1".into(),
        hops: hops.iter().map(|(h, ok)| (h.to_string(), *ok, Some(if *ok { 200 } else { 503 }))).collect(),
    };
    let (view, hops) = (w.signals.view(), w.hops.view(w.now));
    let cfg = OutageConfig::default();
    let p = probe(&[("edge", false), ("gateway", false), ("function", true)]);
    let a = assess(&cfg, "shop", w.now, &view, &hops, &[], std::slice::from_ref(&p));
    assert_eq!(a.verdict, Verdict::Partial, "{a:#?}");
    assert_eq!(names(&a.scope.journey_steps), ["probe:api/edge", "probe:api/gateway"]);
    assert_eq!(a.blame, Some("gateway"));
    let all = probe(&[("edge", false), ("gateway", false), ("function", false)]);
    assert_eq!(assess(&cfg, "shop", w.now, &view, &hops, &[], &[all]).blame, Some("function"));
    let fine = probe(&[("edge", true), ("gateway", true)]);
    assert_eq!(assess(&cfg, "shop", w.now, &view, &hops, &[], &[fine]).verdict, Verdict::None);
    assert!(knows("api-only", &view, &hops, &[], &[ProbeCheck { service: "api-only".into(), ..p }]));
}

/// The series of one family of [`families`], as `name{labels} value` lines.
fn series(assessments: &[Assessment], name: &str) -> Vec<String> {
    let fams = families(assessments);
    let fam = fams.iter().find(|f| f.metric.name == name).unwrap_or_else(|| panic!("no family {name}"));
    fam.series
        .iter()
        .map(|(labels, v)| {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{}{{{}}} {v}", name, l.join(","))
        })
        .collect()
}

#[test]
fn every_judged_slice_has_its_success_ratio_and_baseline_gauges() {
    let w = run(|pop, _| if pop == "FRA56-P1" { Fails::Edge } else { Fails::No });
    let a = assess_at(&w, &[]);
    let success = series(std::slice::from_ref(&a), "slo_agent_outage_slice_success_ratio");
    assert_eq!(
        success,
        [
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="client_class",slice="browser"} 0.8"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="client_class",slice="crawler"} 0.8"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="edge_location",slice="FRA56-P1"} 0"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="edge_location",slice="GRU3-C1"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="edge_location",slice="IAD89-C1"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="edge_location",slice="JFK50-P1"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="edge_location",slice="LHR61-P2"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="region",slice="europe"} 0.5"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="region",slice="north-america"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="region",slice="south-america"} 1"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="route",slice="/"} 0.8"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="route",slice="/api/pay"} 0.8"#,
            r#"slo_agent_outage_slice_success_ratio{service="shop",dimension="route",slice="/cart/{id}"} 0.8"#,
        ],
        "{success:#?}"
    );
    let baseline = series(std::slice::from_ref(&a), "slo_agent_outage_slice_baseline_ratio");
    assert!(
        baseline.contains(
            &r#"slo_agent_outage_slice_baseline_ratio{service="shop",dimension="edge_location",slice="FRA56-P1"} 0.9667"#
                .to_string()
        ),
        "{baseline:#?}"
    );
    assert_eq!(baseline.len(), success.len(), "every slice here has minutes before the window: {baseline:#?}");
    // The verdict's own gauges are still there.
    assert_eq!(
        series(std::slice::from_ref(&a), "slo_agent_outage_verdict"),
        [r#"slo_agent_outage_verdict{service="shop"} 1"#]
    );
}

#[test]
fn slice_gauges_keep_the_busiest_slices_of_each_dimension() {
    let mut kinds: BTreeMap<&'static str, SliceKind> = BTreeMap::new();
    let pops = kinds.entry("edge_location").or_default();
    for i in 0..(MAX_SLICE_SERIES + 15) {
        pops.figures.push((format!("POP{i:02}"), 0.5, None, 100.0 + i as f64));
    }
    kinds.entry("all").or_default().figures.push((String::new(), 1.0, None, 1e6));
    let judged = judged_slices(&mut kinds);
    assert_eq!(judged.len(), MAX_SLICE_SERIES, "the whole service is not a slice");
    assert!(judged.iter().all(|j| j.dimension == "edge_location"));
    assert_eq!(judged[0].name, "POP15", "the 15 quietest are left out");
    assert_eq!(judged.last().map(|j| j.name.as_str()), Some("POP34"));
}
