use super::answer::{HopFigures, HopsAnswer, blame, from_logs};
use super::*;

const T0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
const M: i64 = MINUTE_MS;

fn cloudfront(ts_ms: i64, path: &'static str, total: f64, origin: Option<f64>) -> RequestEvent<'static> {
    RequestEvent {
        ts_ms,
        origin: Some(Origin::CloudFront),
        service: "shop",
        path,
        status: 200,
        latency_ms: Some(total),
        upstream_latency_ms: origin,
        ..Default::default()
    }
}

fn gateway(
    ts_ms: i64,
    route: &'static str,
    response: f64,
    integration: f64,
    id: &'static str,
) -> RequestEvent<'static> {
    RequestEvent {
        ts_ms,
        origin: Some(Origin::ApiGateway),
        service: "shop",
        route,
        path: "/x",
        status: 200,
        latency_ms: Some(response),
        upstream_latency_ms: Some(integration),
        upstream_request_id: id,
        ..Default::default()
    }
}

fn lambda(ts_ms: i64, duration: f64, init: Option<f64>, id: &'static str) -> RequestEvent<'static> {
    RequestEvent {
        ts_ms,
        origin: Some(Origin::Lambda),
        service: "shop",
        status: 200,
        latency_ms: Some(duration),
        init_ms: init,
        request_id: id,
        ..Default::default()
    }
}

fn answer(h: &Hops, at_ms: i64, route: Option<&str>, window: i64, baseline: i64) -> HopsAnswer {
    from_logs(&h.view(at_ms), "shop", route, window, baseline)
}

fn hop<'a>(a: &'a HopsAnswer, name: &str) -> &'a HopFigures {
    a.hops.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no hop {name} in {a:#?}"))
}

/// Within the sketches' resolution (about 3 %).
#[track_caller]
fn near(got: f64, want: f64) {
    assert!((got - want).abs() <= want.abs() * 0.04 + 0.01, "{got} vs {want}");
}

#[test]
fn edge_and_gateway_are_differences_within_one_record() {
    let mut h = Hops::default();
    for i in 0..10 {
        h.observe(&cloudfront(T0 + i * 1000, "/cart/7", 130.0, Some(100.0)), 1);
        h.observe(&gateway(T0 + i * 1000, "/cart/{cartId}", 95.0, 80.0, ""), 1);
    }
    // A cache hit (no origin-fbl) and a record whose origin time exceeds the total.
    h.observe(&cloudfront(T0, "/cart/7", 2.0, None), 1);
    h.observe(&cloudfront(T0, "/cart/8", 10.0, Some(12.0)), 1);
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    let edge = hop(&a, "edge");
    assert_eq!(edge.count, 11);
    near(edge.p50_ms, 30.0);
    assert!(edge.p50_ms >= 0.0);
    let gw = hop(&a, "gateway");
    near(gw.adds_ms, 15.0);
    assert_eq!((gw.count, gw.basis), (10, "measured"));
    // `{cartId}` and the templater's `{id}` meet; any spelling asks for it.
    assert_eq!(answer(&h, T0 + 30_000, Some("/cart/{x}"), 15, 180).hops.len(), a.hops.len());
    // Nothing of another route.
    assert!(answer(&h, T0 + 30_000, Some("/other"), 15, 180).hops.is_empty());
}

#[test]
fn lambda_overhead_joined_by_request_id_in_either_order() {
    let mut h = Hops::default();
    // Gateway first.
    h.observe(&gateway(T0, "/cart/{id}", 100.0, 90.0, "L-1"), 1);
    assert_eq!(h.pending_len(), 1);
    h.observe(&lambda(T0 + 50, 60.0, Some(200.0), "L-1"), 1);
    // Lambda first (the service is known to carry ids by now).
    h.observe(&lambda(T0 + 100, 60.0, None, "L-2"), 1);
    h.observe(&gateway(T0 + 200, "/cart/{id}", 100.0, 90.0, "L-2"), 1);
    assert_eq!(h.pending_len(), 0);
    // An invocation of another route, never joined: only in the function's own figures.
    h.observe(&lambda(T0 + 300, 500.0, None, "L-3"), 1);
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    let lo = hop(&a, "lambda_overhead");
    assert_eq!((lo.basis, lo.count), ("joined", 2));
    near(lo.adds_ms, 30.0);
    let f = hop(&a, "function");
    assert_eq!((f.basis, f.count), ("joined", 2));
    near(f.p99_ms, 60.0);
    let cold = hop(&a, "cold_start");
    assert_eq!(cold.share, Some(0.5));
    near(cold.p50_ms, 200.0); // the median of the cold ones' init
    near(cold.adds_ms, 100.0);
    assert_eq!(a.joins.unwrap().joined, 2);
    // Once the gateway's records are further on than the bound, L-3 gives up.
    h.observe(&gateway(T0 + 300 + PENDING_MAX_AGE_MS + 1, "/b", 100.0, 90.0, "G-9"), 1);
    let a = answer(&h, T0 + 30_000, None, 15, 180);
    assert_eq!(h.pending_len(), 1, "G-9 waits");
    assert_eq!(a.joins.unwrap().unjoined_lambda, 1);
    // All routes: still the joined invocations (those behind the gateway),
    // not the function's other work.
    assert_eq!(hop(&a, "function").count, 2);
}

#[test]
fn lambda_overhead_statistically_without_ids() {
    let mut h = Hops::default();
    for i in 0..100 {
        let t = T0 + i * 100;
        let jitter = (i % 5) as f64;
        h.observe(&gateway(t, "/cart/{id}", 100.0 + jitter, 90.0 + jitter, ""), 1);
        h.observe(&lambda(t, 60.0 + jitter, if i % 10 == 0 { Some(300.0) } else { None }, ""), 1);
    }
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    let lo = hop(&a, "lambda_overhead");
    assert_eq!(lo.basis, "statistical");
    // p50 integration 92, p50 duration 62 (each within the sketch's 3 %).
    assert!((lo.adds_ms - 30.0).abs() < 4.0, "{lo:?}");
    assert!(lo.p50_ms >= 0.0 && lo.p99_ms >= 0.0);
    let f = hop(&a, "function");
    assert_eq!((f.basis, f.count), ("statistical", 100));
    assert_eq!(hop(&a, "cold_start").share, Some(0.1));
    assert_eq!(h.pending_len(), 0, "nothing waits without ids");
    // A function slower than the integration (clock skew, another route): never negative.
    let mut h = Hops::default();
    h.observe(&gateway(T0, "/a", 10.0, 5.0, ""), 1);
    h.observe(&lambda(T0, 50.0, None, ""), 1);
    assert_eq!(hop(&answer(&h, T0, None, 15, 180), "lambda_overhead").adds_ms, 0.0);
}

/// Three hours of a steady site, then a slow gateway for the last minutes.
fn steady_then(gateway_ms: f64, function_ms: f64, edge_ms: f64) -> HopsAnswer {
    let mut h = Hops::default();
    let end = T0 + 200 * M;
    for m in 0..200 {
        let slow = m >= 190;
        for s in 0..5 {
            let t = T0 + m * M + s * 1000;
            let (gw, f, e) = if slow { (gateway_ms, function_ms, edge_ms) } else { (10.0, 50.0, 5.0) };
            h.observe(&cloudfront(t, "/cart/1", e + gw + f + 5.0, Some(gw + f + 5.0)), 1);
            h.observe(&gateway(t, "/cart/{id}", gw + f + 5.0, f + 5.0, ""), 1);
            h.observe(&lambda(t, f, None, ""), 1);
        }
    }
    answer(&h, end - 1, Some("/cart/{id}"), 15, 180)
}

#[test]
fn a_gateway_slowdown_is_blamed_on_the_gateway() {
    let a = steady_then(120.0, 50.0, 5.0);
    assert_eq!(a.blame.as_deref(), Some("gateway"), "{a:#?}");
    let gw = hop(&a, "gateway");
    near(gw.baseline_adds_ms.unwrap(), 10.0);
    // 10 slow minutes of 15: the window's median is the slow value.
    near(gw.adds_ms, 120.0);
    near(hop(&a, "function").adds_ms, 50.0);
}

#[test]
fn no_blame_when_nothing_jumped_or_everything_rose_together() {
    let a = steady_then(10.0, 50.0, 5.0);
    assert_eq!(a.blame, None);
    assert!(a.blame_reason.starts_with("no hop"), "{}", a.blame_reason);
    // Twice as slow but under 20 ms more: no blame.
    let a = steady_then(25.0, 50.0, 5.0);
    assert_eq!(a.blame, None, "{a:#?}");
    // Every hop ×4.
    let a = steady_then(40.0, 200.0, 20.0);
    assert_eq!(a.blame, None, "{a:#?}");
    assert!(a.blame_reason.contains("rose together"), "{}", a.blame_reason);
}

#[test]
fn blame_rule_on_figures() {
    let f = |name: &str, adds: f64, base: Option<f64>| HopFigures {
        name: name.into(),
        p50_ms: adds,
        p90_ms: adds,
        p99_ms: adds,
        adds_ms: adds,
        baseline_adds_ms: base,
        count: 1,
        basis: "measured",
        share: None,
        failures: None,
    };
    // No baseline: never blamed.
    assert_eq!(blame(&[f("edge", 500.0, None)]).0, None);
    // Two jumped; the one that added the most ms, as the others did not rise with it.
    let hops = [f("edge", 5.0, Some(5.0)), f("gateway", 60.0, Some(10.0)), f("function", 400.0, Some(50.0))];
    assert_eq!(blame(&hops).0, None, "gateway ×6 and function ×8: both rose");
    let hops = [f("edge", 5.0, Some(5.0)), f("gateway", 12.0, Some(10.0)), f("function", 400.0, Some(50.0))];
    assert_eq!(blame(&hops).0.as_deref(), Some("function"));
    // Cold starts out of nothing.
    let hops = [f("gateway", 10.0, Some(10.0)), f("cold_start", 80.0, Some(0.0))];
    assert_eq!(blame(&hops).0.as_deref(), Some("cold_start"));
}

#[test]
fn routes_per_service_are_capped_into_other() {
    let mut h = Hops::new(RouteTemplater::default(), 2);
    for route in ["/a", "/b", "/c", "/d"] {
        h.observe(&RequestEvent { route, ..gateway(T0, "", 20.0, 10.0, "") }, 1);
    }
    assert_eq!(h.routes_of("shop"), 2);
    assert_eq!(h.stats.routes_folded, 2);
    let a = answer(&h, T0, Some(OTHER_ROUTE), 15, 180);
    assert_eq!(hop(&a, "gateway").count, 2);
    // The cap is at most MAX_ROUTES_PER_SERVICE whatever routes.max_routes says.
    let mut h = Hops::new(RouteTemplater::default(), 100_000);
    for i in 0..MAX_ROUTES_PER_SERVICE + 10 {
        let route: &'static str = Box::leak(format!("/r{i}").into_boxed_str());
        h.observe(&RequestEvent { route, ..gateway(T0, "", 20.0, 10.0, "") }, 1);
    }
    assert_eq!(h.routes_of("shop"), MAX_ROUTES_PER_SERVICE);
}

#[test]
fn services_are_capped() {
    let mut h = Hops::default();
    for i in 0..MAX_SERVICES + 3 {
        let service: &'static str = Box::leak(format!("s{i}").into_boxed_str());
        h.observe(&RequestEvent { service, ..gateway(T0, "/a", 20.0, 10.0, "") }, 1);
    }
    assert_eq!(h.stats.services_dropped, 3);
}

#[test]
fn minutes_are_kept_for_six_hours_only() {
    let mut h = Hops::default();
    for m in 0..KEEP_MINUTES + 40 {
        h.observe(&gateway(T0 + m * M, "/a", 20.0, 10.0, ""), 1);
    }
    assert_eq!(h.minutes(), KEEP_MINUTES as usize);
    // A late event older than that is counted, not kept.
    h.observe(&gateway(T0, "/a", 20.0, 10.0, ""), 1);
    assert_eq!(h.stats.too_old, 1);
    assert_eq!(h.minutes(), KEEP_MINUTES as usize);
    // A late event within the kept minutes lands in its own minute.
    h.observe(&gateway(T0 + 100 * M, "/a", 20.0, 10.0, ""), 1);
    assert_eq!(h.minutes(), KEEP_MINUTES as usize);
    // Memory: bounded per cell (the figure docs/architecture.md gives).
    assert_eq!(CELL_MAX_BYTES, 3048);
    assert!(h.memory_bytes() <= KEEP_MINUTES as usize * 2 * CELL_MAX_BYTES, "{}", h.memory_bytes());
}

#[test]
fn the_pending_map_is_bounded_in_size_and_age() {
    let mut h = Hops::default();
    let ids: Vec<&'static str> =
        (0..PENDING_MAX + 5).map(|i| &*Box::leak(format!("id-{i}").into_boxed_str())).collect();
    for id in &ids {
        h.observe(&gateway(T0, "/a", 20.0, 10.0, id), 1);
    }
    assert_eq!(h.pending_len(), PENDING_MAX);
    assert_eq!(h.stats.unjoined_gateway, 5);
    // The oldest were pushed out: their Lambda records find nothing (and wait in turn).
    h.observe(&lambda(T0, 5.0, None, ids[0]), 1);
    assert_eq!(h.stats.joined, 0);
    h.observe(&lambda(T0, 5.0, None, ids[PENDING_MAX + 4]), 1);
    assert_eq!(h.stats.joined, 1);
    // The gateway's records moving on alone do not end the gateway's waits…
    h.observe(&gateway(T0 + PENDING_MAX_AGE_MS + 1, "/a", 20.0, 10.0, "late-g"), 1);
    assert_eq!(h.pending_len(), PENDING_MAX);
    // …the Lambda records moving on does: every gateway record before it gives up.
    h.observe(&lambda(T0 + PENDING_MAX_AGE_MS + 1, 5.0, None, "late-l"), 1);
    // (and ids[0]'s Lambda record, which the gateway's records have passed).
    assert_eq!(h.pending_len(), 2, "late-g and late-l are young");
    assert_eq!(h.stats.unjoined_gateway + h.stats.unjoined_lambda, 5 + PENDING_MAX as u64);
}

#[test]
fn odd_records_never_panic() {
    let mut h = Hops::default();
    for v in [f64::NAN, -1.0, f64::INFINITY, 0.0, 1e15] {
        h.observe(&cloudfront(T0, "/", v, Some(-v)), 1);
        h.observe(&gateway(T0, "", v, v, "x"), 1);
        h.observe(&lambda(T0, v, Some(v), "x"), 1);
        h.observe(&lambda(i64::MIN, v, None, "y"), 1);
        h.observe(&gateway(i64::MAX, "", v, v, "y"), 3);
    }
    let a = answer(&h, T0, None, 15, 180);
    assert!(a.hops.iter().all(|h| h.p50_ms >= 0.0 && h.adds_ms.is_finite()));
    // Service-less events are ignored; unknown services answer nothing.
    h.observe(&RequestEvent { service: "", ..gateway(T0, "/a", 1.0, 1.0, "") }, 1);
    assert!(from_logs(&h.view(T0), "nope", None, 15, 180).hops.is_empty());
}

#[test]
fn a_published_view_does_not_change_with_later_events() {
    let mut h = Hops::default();
    h.observe(&gateway(T0, "/a", 20.0, 10.0, ""), 1);
    let view = h.view(T0);
    for i in 0..10 {
        h.observe(&gateway(T0 + i, "/a", 500.0, 10.0, ""), 1);
        h.observe(&gateway(T0 + i, "/b", 500.0, 10.0, ""), 1);
    }
    let before = from_logs(&view, "shop", None, 15, 180);
    assert_eq!(hop(&before, "gateway").count, 1);
    near(hop(&before, "gateway").adds_ms, 10.0);
    assert_eq!(hop(&answer(&h, T0, None, 15, 180), "gateway").count, 21);
}

/// A request decomposed from its X-Ray trace, as `source::aws::xray` emits it.
fn traced(
    ts_ms: i64,
    path: &'static str,
    gw: f64,
    overhead: f64,
    invocation: f64,
    init: Option<f64>,
) -> RequestEvent<'static> {
    let integration = overhead + invocation + init.unwrap_or(0.0) + 2.0;
    RequestEvent {
        ts_ms,
        origin: Some(Origin::XRay),
        service: "shop",
        path,
        status: 200,
        latency_ms: Some(integration + gw),
        upstream_latency_ms: Some(integration),
        lambda_overhead_ms: Some(overhead),
        invocation_ms: Some(invocation),
        init_ms: init,
        ..Default::default()
    }
}

#[test]
fn traced_requests_fill_the_hops_the_logs_leave_open() {
    let mut h = Hops::default();
    for i in 0..10 {
        let init = if i % 5 == 0 { Some(300.0) } else { None };
        h.observe(&traced(T0 + i * 1000, "/cart/7", 12.0, 8.0, 60.0, init), 1);
    }
    // Only traces: every Lambda hop and the gateway from them, per route.
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    let names: Vec<(&str, &str)> = a.hops.iter().map(|h| (h.name.as_str(), h.basis)).collect();
    assert_eq!(
        names,
        [("gateway", "traced"), ("lambda_overhead", "traced"), ("function", "traced"), ("cold_start", "traced")]
    );
    near(hop(&a, "gateway").adds_ms, 12.0);
    near(hop(&a, "lambda_overhead").adds_ms, 8.0);
    near(hop(&a, "function").p50_ms, 60.0);
    let cold = hop(&a, "cold_start");
    assert_eq!((cold.share, cold.count), (Some(0.2), 10));
    near(cold.p50_ms, 300.0);
    assert_eq!(a.joins.unwrap().traced, 10);

    // With gateway logs (no ids) and Lambda logs: the gateway is measured
    // from the logs; the Lambda hops come from the traces, not the
    // statistical estimate.
    for i in 0..10 {
        h.observe(&gateway(T0 + i * 1000, "/cart/{id}", 100.0, 90.0, ""), 1);
        h.observe(&lambda(T0 + i * 1000, 500.0, None, ""), 1);
    }
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    assert_eq!(hop(&a, "gateway").basis, "measured");
    near(hop(&a, "gateway").adds_ms, 10.0);
    assert_eq!(hop(&a, "lambda_overhead").basis, "traced");
    assert_eq!(hop(&a, "function").basis, "traced");
    near(hop(&a, "function").p50_ms, 60.0);

    // Joined records win over traces: they cover every request.
    h.observe(&gateway(T0 + 20_000, "/cart/{id}", 100.0, 90.0, "L-1"), 1);
    h.observe(&lambda(T0 + 20_000, 70.0, None, "L-1"), 1);
    let a = answer(&h, T0 + 30_000, Some("/cart/{id}"), 15, 180);
    assert_eq!(hop(&a, "lambda_overhead").basis, "joined");
    assert_eq!(hop(&a, "function").basis, "joined");
}

#[test]
fn a_traced_request_without_a_path_or_a_function_segment() {
    let mut h = Hops::default();
    let ev =
        RequestEvent { path: "", invocation_ms: None, lambda_overhead_ms: None, ..traced(T0, "", 5.0, 0.0, 0.0, None) };
    h.observe(&ev, 3);
    let a = answer(&h, T0, Some(NO_ROUTE), 15, 180);
    let names: Vec<&str> = a.hops.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["gateway"]);
    assert_eq!(hop(&a, "gateway").count, 3);
}
