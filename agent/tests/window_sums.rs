//! Property: bucketed window sums equal a brute-force count over the events,
//! for random events (in random order), windows and evaluation times.

use proptest::prelude::*;
use slo_agent::sli::series::{COARSE_WIDTH, FINE_SPAN, Series};
use slo_agent::spec::model::{Budgeting, Minutes, SloWindow};

/// The documented window semantics, computed the slow way: the minutes
/// `[first, last]`, except that a window reaching past the 1-minute ring starts
/// at the next 15-minute boundary.
fn brute(events: &[(i64, bool)], head: i64, first: i64, last: i64) -> (u64, u64) {
    let fine_oldest = head - FINE_SPAN as i64 + 1;
    let first = if first >= fine_oldest {
        first
    } else {
        let w = COARSE_WIDTH as i64;
        first.div_euclid(w) * w + if first.rem_euclid(w) != 0 { w } else { 0 }
    };
    let mut good = 0;
    let mut total = 0;
    for &(m, g) in events {
        if m >= first && m <= last {
            total += 1;
            good += g as u64;
        }
    }
    (good, total)
}

fn window_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(5u32),
        Just(60),
        Just(360),
        Just(1440),
        Just(4320),
        Just(7 * 1440),
        Just(28 * 1440),
        1u32..(28 * 1440),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn window_sums_match_brute_force(
        base in 0i64..10_000_000,
        span in 1i64..(27 * 1440),
        raw in prop::collection::vec((0.0f64..1.0, any::<bool>()), 1..400),
        queries in prop::collection::vec((window_strategy(), -2880i64..2880), 1..12),
    ) {
        let events: Vec<(i64, bool)> = raw.iter().map(|&(f, g)| (base + (f * span as f64) as i64, g)).collect();
        let mut s = Series::new(&SloWindow::Rolling(Minutes(28 * 1440)), &Budgeting::Occurrences);
        for &(m, g) in &events {
            prop_assert!(s.record(m, g, None));
        }
        let head = events.iter().map(|e| e.0).max().unwrap();
        for (w, offset) in queries {
            let last = head + offset;
            let first = last - w as i64 + 1;
            let got = s.window(first, last);
            let (good, total) = brute(&events, head, first, last);
            prop_assert_eq!((got.events.good, got.events.total), (good, total),
                "window {}m ending at minute {} (head {})", w, last, head);
        }
    }

    #[test]
    fn slice_sums_match_brute_force(
        slice in prop_oneof![Just(1u32), Just(5), Just(60)],
        raw in prop::collection::vec((0i64..3000, any::<bool>()), 1..300),
        queries in prop::collection::vec((1i64..3000, 0i64..3000), 1..8),
    ) {
        let target = 0.75;
        let b = Budgeting::Timeslices { slice: Minutes(slice), good_ratio_at_least: target };
        let mut s = Series::new(&SloWindow::Rolling(Minutes(3 * 1440)), &b);
        for &(m, g) in &raw {
            prop_assert!(s.record(m, g, None));
        }
        for (len, last) in queries {
            let first = last - len + 1;
            let (fs, ls) = (first.div_euclid(slice as i64), last.div_euclid(slice as i64));
            let mut slices = std::collections::BTreeMap::<i64, (u64, u64)>::new();
            for &(m, g) in &raw {
                let k = m.div_euclid(slice as i64);
                if k >= fs && k <= ls {
                    let e = slices.entry(k).or_default();
                    e.0 += g as u64;
                    e.1 += 1;
                }
            }
            let good_slices = slices.values().filter(|(g, t)| *g as f64 / *t as f64 >= target).count();
            let got = s.window(first, last);
            prop_assert_eq!(got.units_total as usize, slices.len());
            prop_assert_eq!(got.units_good as usize, good_slices);
        }
    }
}
