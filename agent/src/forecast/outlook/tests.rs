use super::*;
use proptest::prelude::*;

/// 2026-11-30T00:00:00Z, a UTC midnight.
const T0: i64 = 1_764_460_800_000;
const DAY: i64 = 86_400_000;
const WINDOW_28D: Window = Window::Rolling { len_ms: 28 * DAY };

/// Hourly traffic with a daily swing of ±30 %.
fn traffic(k: i64) -> f64 {
    1000.0 * (1.0 + 0.3 * (k as f64 / 24.0 * std::f64::consts::TAU).sin())
}

/// `hours` of history ending at `at`, hour `k` (0 = the oldest) with `bad_ratio(k)`.
fn hours(at: i64, n: i64, bad_ratio: impl Fn(i64) -> f64) -> Vec<(i64, f64, f64)> {
    (0..n)
        .map(|k| {
            let ts = at - (n - k) * HOUR_MS;
            let t = traffic(ts / HOUR_MS);
            (ts, t, t * bad_ratio(k))
        })
        .collect()
}

fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn a_steady_double_burn_exhausts_the_budget_at_the_computable_time() {
    // 28 days: clean for 25, then 2× the allowed ratio (0.002 at 99.9 %) for 3.
    let at = T0 + 28 * DAY;
    let h = hours(at, 672, |k| if k >= 600 { 0.002 } else { 0.0 });
    let o = budget(&h, 0.999, WINDOW_28D, at);
    // Window: 672 hours of whole days of traffic; bad: 72 hours at 2× → 1 − 144/672.
    assert!(near(o.remaining_now, 1.0 - 144.0 / 672.0, 1e-9), "{o:?}");
    assert!(near(o.forecast_burn_rate, 2.0, 1e-9), "{o:?}");
    // Each hour adds 2× and drops a clean hour: (672 − 144) / 2 = 264 hours to go.
    let want = at + 264 * HOUR_MS;
    let got = o.exhaustion_at_ms.expect("exhausted within the window");
    assert!((got - want).abs() <= HOUR_MS, "{} h off: {o:?}", (got - want) as f64 / HOUR_MS as f64);
    assert_eq!(o.end_ms, at + 28 * DAY);
    // One window from now every hour burns at 2×.
    assert!(near(o.expected_remaining_at_end, -1.0, 0.01), "{o:?}");
    assert!(o.basis.starts_with("hourly totals forecast"), "{o:?}");
}

#[test]
fn zero_errors_never_exhaust() {
    let at = T0 + 28 * DAY;
    let o = budget(&hours(at, 672, |_| 0.0), 0.999, WINDOW_28D, at);
    assert_eq!((o.remaining_now, o.forecast_burn_rate, o.exhaustion_at_ms), (1.0, 0.0, None));
    assert!(near(o.expected_remaining_at_end, 1.0, 1e-9), "{o:?}");
}

#[test]
fn a_calendar_month_at_exactly_the_budget_ends_with_none_left() {
    let month = Window::Calendar { start_ms: T0, end_ms: T0 + 30 * DAY };
    let at = T0 + 15 * DAY;
    // 1× burn all along: the window-relative budget is spent as it is earned.
    let o = budget(&hours(at, 360, |_| 0.001), 0.999, month, at);
    assert!(near(o.remaining_now, 0.0, 1e-9) && near(o.forecast_burn_rate, 1.0, 1e-9), "{o:?}");
    assert!(near(o.expected_remaining_at_end, 0.0, 0.01), "{o:?}");
    assert_eq!(o.end_ms, T0 + 30 * DAY);
    // Half the allowed ratio: half the budget is left now and at the end.
    let o = budget(&hours(at, 360, |_| 0.0005), 0.999, month, at);
    assert!(near(o.remaining_now, 0.5, 1e-9) && near(o.expected_remaining_at_end, 0.5, 0.01), "{o:?}");
    assert_eq!(o.exhaustion_at_ms, None);
    // Clean for 14 days, then 3× for the last day: the forecast burn is 3×;
    // the remaining budget (1 − 3·24/360 = 0.8 now) reaches 0 when
    // 3·(24 + x) = 360 + x, x = 144 hours from now.
    let o = budget(&hours(at, 360, |k| if k >= 336 { 0.003 } else { 0.0 }), 0.999, month, at);
    assert!(near(o.remaining_now, 0.8, 1e-9) && near(o.forecast_burn_rate, 3.0, 1e-9), "{o:?}");
    let got = o.exhaustion_at_ms.unwrap();
    assert!((got - (at + 144 * HOUR_MS)).abs() <= HOUR_MS, "{o:?}");
    // History from before the month does not count in it.
    let mut h = hours(at, 360, |_| 0.0);
    h.extend(hours(T0, 48, |_| 0.5));
    assert_eq!(budget(&h, 0.999, month, at).remaining_now, 1.0);
}

#[test]
fn a_past_incident_drops_out_of_a_rolling_window() {
    let at = T0 + 28 * DAY;
    // 24 hours at 20× the allowed ratio, 20 days ago; clean since.
    let h = hours(at, 672, |k| if (192..216).contains(&k) { 0.02 } else { 0.0 });
    let o = budget(&h, 0.999, WINDOW_28D, at);
    assert!(near(o.remaining_now, 1.0 - 480.0 / 672.0, 1e-9), "{o:?}");
    assert_eq!((o.forecast_burn_rate, o.exhaustion_at_ms), (0.0, None));
    assert!(near(o.expected_remaining_at_end, 1.0, 1e-9), "{o:?}");
}

#[test]
fn a_short_recent_incident_is_not_projected_but_a_sustained_burn_is() {
    let at = T0 + 28 * DAY;
    // Two hours at 50×, three hours ago: one 6-hour block of four.
    let h = hours(at, 672, |k| if (669..671).contains(&k) { 0.05 } else { 0.0 });
    let o = budget(&h, 0.999, WINDOW_28D, at);
    assert_eq!(o.forecast_burn_rate, 0.0, "{o:?}");
    assert!(o.remaining_now < 0.9);
    // A day at 2×: at 700–1,300 requests an hour, blocks of 6–8 hours; three of four at 2×.
    let h = hours(at, 672, |k| if k >= 648 { 0.002 } else { 0.0 });
    let o = budget(&h, 0.999, WINDOW_28D, at);
    assert!(near(o.forecast_burn_rate, 2.0, 1e-9), "{o:?}");
    assert!(o.basis.ends_with("the median of the latest four blocks"), "{o:?}");
    // Ten requests an hour: a block would need 500 hours; pooled over the window.
    let h: Vec<(i64, f64, f64)> = (0..672).map(|k| (at - (672 - k) * HOUR_MS, 10.0, 0.0)).collect();
    let mut h = h;
    h[100].2 = 3.0;
    let o = budget(&h, 0.999, WINDOW_28D, at);
    assert!(near(o.forecast_burn_rate, 3.0 / 6720.0 / 0.001, 1e-9), "{o:?}");
    assert!(o.basis.ends_with("pooled over the history (little traffic)"), "{o:?}");
}

#[test]
fn an_already_spent_budget_is_exhausted_now() {
    let at = T0 + 28 * DAY + 1_234;
    let o = budget(&hours(at, 672, |_| 0.01), 0.999, WINDOW_28D, at);
    assert!(o.remaining_now < 0.0);
    assert_eq!(o.exhaustion_at_ms, Some(at));
}

#[test]
fn little_or_no_history_gives_a_sane_answer() {
    let at = T0;
    let o = budget(&[], 0.999, WINDOW_28D, at);
    assert_eq!(
        o,
        BudgetOutlook {
            remaining_now: 1.0,
            forecast_burn_rate: 0.0,
            exhaustion_at_ms: None,
            end_ms: at + 28 * DAY,
            expected_remaining_at_end: 1.0,
            basis: "no traffic in the history",
        }
    );
    // One hour of traffic: a flat forecast.
    let o = budget(&[(at - HOUR_MS, 100.0, 0.0)], 0.999, WINDOW_28D, at);
    assert_eq!((o.remaining_now, o.exhaustion_at_ms), (1.0, None));
    assert!(o.basis.starts_with("hourly totals flat"), "{o:?}");
    // A window not started yet.
    let later = Window::Calendar { start_ms: at + DAY, end_ms: at + 31 * DAY };
    let o = budget(&hours(at, 48, |_| 0.002), 0.999, later, at);
    assert_eq!(o.remaining_now, 1.0);
    assert!(near(o.expected_remaining_at_end, -1.0, 0.01), "{o:?}");
    let got = o.exhaustion_at_ms.unwrap();
    assert!(got >= at + DAY && got <= at + DAY + HOUR_MS, "{o:?}");
}

#[test]
fn garbage_gives_a_sane_answer() {
    let at = T0 + 28 * DAY;
    let h = hours(at, 672, |_| 0.0005);
    for objective in [0.0, 1.0, -3.0, f64::NAN, f64::INFINITY] {
        let o = budget(&h, objective, WINDOW_28D, at);
        assert_eq!((o.remaining_now, o.exhaustion_at_ms), (1.0, None), "{objective}");
        assert!(o.basis.starts_with("objective out of range"));
    }
    for w in
        [Window::Rolling { len_ms: 0 }, Window::Rolling { len_ms: -5 }, Window::Calendar { start_ms: at, end_ms: at }]
    {
        assert_eq!(budget(&h, 0.999, w, at).basis, "window out of range");
    }
    let bad_rows = [(at - HOUR_MS, f64::NAN, 1.0), (at - HOUR_MS, -1.0, 0.0), (at - HOUR_MS, 10.0, f64::INFINITY)];
    assert_eq!(budget(&bad_rows, 0.999, WINDOW_28D, at).basis, "no traffic in the history");
    // More bad than total is capped at the total.
    let o = budget(&[(at - HOUR_MS, 10.0, 50.0)], 0.9, WINDOW_28D, at);
    assert!(near(o.remaining_now, -9.0, 1e-9), "{o:?}");
    for at in [i64::MIN, i64::MAX, 0] {
        let o = budget(&h, 0.999, Window::Rolling { len_ms: i64::MAX }, at);
        assert!(o.remaining_now.is_finite());
    }
}

proptest! {
    #[test]
    fn any_input_gives_a_finite_answer(
        near_rows in proptest::collection::vec((0i64..800, any::<f64>(), any::<f64>()), 0..300),
        far_rows in proptest::collection::vec((any::<i64>(), 0f64..1e6, 0f64..1e3), 0..20),
        objective in prop_oneof![Just(0.999), any::<f64>()],
        len_h in -2i64..800,
        start_h in -800i64..100,
        calendar in any::<bool>(),
    ) {
        let at = T0 + 28 * DAY + 17;
        let mut rows: Vec<(i64, f64, f64)> = near_rows.iter().map(|&(h, t, b)| (at - h * HOUR_MS, t, b)).collect();
        rows.extend(far_rows);
        let window = if calendar {
            Window::Calendar { start_ms: at + start_h * HOUR_MS, end_ms: at + (start_h + len_h) * HOUR_MS }
        } else {
            Window::Rolling { len_ms: len_h * HOUR_MS }
        };
        let o = budget(&rows, objective, window, at);
        prop_assert!(o.remaining_now.is_finite() && o.expected_remaining_at_end.is_finite());
        prop_assert!(o.forecast_burn_rate.is_finite() && o.forecast_burn_rate >= 0.0);
        if let Some(e) = o.exhaustion_at_ms {
            prop_assert!(e >= at && e <= o.end_ms.max(at) + HOUR_MS, "{o:?}");
        }
    }
}

/// The measurement behind the bad-ratio choice: the forecast burn rate of
/// this module (median of four 6-hour blocks) and of pooled ratios over the
/// latest 6 hours, 24 hours and the whole window, against the burn the
/// scenario continues with; mean absolute error over 20 seeds of Poisson
/// bad counts. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn measure() {
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Poisson by inversion (means up to a few hundred).
        fn poisson(&mut self, mean: f64) -> f64 {
            if mean > 200.0 {
                return (mean + mean.sqrt() * (self.uniform() + self.uniform() + self.uniform() - 1.5) * 2.0).round();
            }
            let (mut k, mut p, mut s) = (0.0, (-mean).exp(), (-mean).exp());
            let u = self.uniform();
            while u > s && k < 1000.0 {
                k += 1.0;
                p *= mean / k;
                s += p;
            }
            k
        }
    }
    type Burn = fn(i64) -> f64;
    // (name, traffic per hour, burn of hour k of 672 (oldest first), the burn that continues)
    let scenarios: [(&str, f64, Burn, f64); 5] = [
        ("steady 2× for 3 days", 1000.0, |k| if k >= 600 { 2.0 } else { 0.0 }, 2.0),
        ("0.5×, a 2-hour 50× incident 3 h ago", 1000.0, |k| if (669..671).contains(&k) { 50.0 } else { 0.5 }, 0.5),
        ("0.5×, 3× since 8 h ago", 1000.0, |k| if k >= 664 { 3.0 } else { 0.5 }, 3.0),
        ("1×, sparse (100 requests/h)", 100.0, |_| 1.0, 1.0),
        ("1×, very sparse (10 requests/h)", 10.0, |_| 1.0, 1.0),
    ];
    let at = T0 + 28 * DAY;
    println!("scenario | continues at | this module | latest 6 h | latest 24 h | whole window");
    println!("--- | --- | --- | --- | --- | ---");
    for (name, traffic, burn, future) in scenarios {
        let mut err = [0.0; 4];
        let seeds = 20;
        for seed in 0..seeds {
            let mut rng = Rng(seed);
            let h: Vec<(i64, f64, f64)> = (0..672)
                .map(|k| {
                    let t = traffic;
                    (at - (672 - k) * HOUR_MS, t, rng.poisson(t * 0.001 * burn(k)).min(t))
                })
                .collect();
            let pooled = |n: usize| {
                let (t, b) = h[672 - n..].iter().fold((0.0, 0.0), |(t, b), r| (t + r.1, b + r.2));
                b / t / 0.001
            };
            let o = budget(&h, 0.999, WINDOW_28D, at);
            for (e, got) in err.iter_mut().zip([o.forecast_burn_rate, pooled(6), pooled(24), pooled(672)]) {
                *e += (got - future).abs() / seeds as f64;
            }
        }
        println!("{name} | {future}× | {:.2} | {:.2} | {:.2} | {:.2}", err[0], err[1], err[2], err[3]);
    }
    // The cost of the longest window: a year of hours in, a year walked.
    let year = Window::Rolling { len_ms: 366 * DAY };
    let h = hours(at, 366 * 24, |_| 0.0005);
    let start = std::time::Instant::now();
    let o = budget(&h, 0.999, year, at);
    println!("366-day rolling window: {:?} ({o:?})", start.elapsed());
}
