//! Hop chains measured by probes: one logical endpoint probed at each of
//! its hops at the same moment (the CloudFront URL, the API Gateway
//! `execute-api` URL, the Lambda function URL of one route), and what each
//! hop adds (`GET /api/v1/hops?probe=NAME`).
//!
//! The hops are in request order, outermost first, as the config lists
//! them. A run measures every hop at once, so what a hop adds is measured
//! per run: its latency minus the next hop's latency *of the same run*
//! (clamped at 0: the two requests are separate and noise can make the
//! outer one faster), and the last hop adds all of its own latency. Over a
//! window `adds_ms` is the median of those per-run differences, which is
//! sound where subtracting two hops' medians is not. A hop that failed in a
//! run gives no latency for that run (and no difference with its
//! neighbours) and is counted in `failures`.
//!
//! **Bounds.** Per probe and minute, two [`Sketch`]es per hop; at most
//! [`KEEP_MINUTES`] minutes, so one probe of `h` hops holds at most
//! `KEEP_MINUTES × 2h` sketches of [`super::sketch::MAX_SLOTS`] slots
//! (about 180 KiB for three hops at most; a probe every 30 s fills a few
//! slots per minute). Memory only: after a restart the chain covers what
//! was probed since.
//!
//! **Architecture invariant:** pure: the caller gives the time of each run
//! and of each question.

use std::collections::VecDeque;

use super::answer::{HopFigures, HopsAnswer, blame, minutes_text, round};
use super::sketch::Sketch;
use super::{KEEP_MINUTES, MINUTE_MS};

/// One minute of a chain.
#[derive(Debug, Clone, Default, PartialEq)]
struct ChainMinute {
    minute: i64,
    /// Per hop: its latency.
    latency: Vec<Sketch>,
    /// Per hop: what it added in each run (its latency minus the next hop's).
    adds: Vec<Sketch>,
    /// Per hop: runs in which it failed.
    failures: Vec<u64>,
}

impl ChainMinute {
    fn new(minute: i64, hops: usize) -> ChainMinute {
        ChainMinute {
            minute,
            latency: vec![Sketch::default(); hops],
            adds: vec![Sketch::default(); hops],
            failures: vec![0; hops],
        }
    }

    fn merge(&mut self, o: &ChainMinute) {
        for (a, b) in self.latency.iter_mut().zip(&o.latency) {
            a.merge(b);
        }
        for (a, b) in self.adds.iter_mut().zip(&o.adds) {
            a.merge(b);
        }
        for (a, b) in self.failures.iter_mut().zip(&o.failures) {
            *a += b;
        }
    }
}

/// The recent runs of one probe's hop chain, by minute.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeChain {
    hops: Vec<String>,
    /// Ascending by minute.
    minutes: VecDeque<ChainMinute>,
}

impl ProbeChain {
    /// A chain of these hops, outermost first.
    pub fn new(hops: Vec<String>) -> ProbeChain {
        ProbeChain { hops, minutes: VecDeque::new() }
    }

    pub fn hops(&self) -> &[String] {
        &self.hops
    }

    /// One run at `ts_ms`: per hop (in chain order) its latency, `None`
    /// when it failed. Runs older than the minutes kept are ignored.
    pub fn record(&mut self, ts_ms: i64, latencies: &[Option<f64>]) {
        let n = self.hops.len();
        let minute = ts_ms.div_euclid(MINUTE_MS);
        let newest = self.minutes.back().map_or(minute, |m| m.minute.max(minute));
        if minute <= newest - KEEP_MINUTES {
            return;
        }
        let at = match self.minutes.iter().rposition(|m| m.minute <= minute) {
            Some(i) if self.minutes[i].minute == minute => i,
            Some(i) => {
                self.minutes.insert(i + 1, ChainMinute::new(minute, n));
                i + 1
            }
            None => {
                self.minutes.push_front(ChainMinute::new(minute, n));
                0
            }
        };
        let m = &mut self.minutes[at];
        for i in 0..n {
            match latencies.get(i).copied().flatten() {
                None => m.failures[i] += 1,
                Some(ms) => {
                    m.latency[i].record(ms);
                    let inner = if i + 1 < n { latencies.get(i + 1).copied().flatten() } else { Some(0.0) };
                    if let Some(inner) = inner {
                        m.adds[i].record((ms - inner).max(0.0));
                    }
                }
            }
        }
        while self.minutes.front().is_some_and(|m| m.minute <= newest - KEEP_MINUTES) {
            self.minutes.pop_front();
        }
    }

    /// The minutes `first..=last` merged.
    fn merged(&self, first: i64, last: i64) -> ChainMinute {
        let mut out = ChainMinute::new(first, self.hops.len());
        for m in self.minutes.iter().filter(|m| (first..=last).contains(&m.minute)) {
            out.merge(m);
        }
        out
    }

    /// Bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.minutes
            .iter()
            .map(|m| {
                m.latency.iter().chain(&m.adds).map(Sketch::heap_bytes).sum::<usize>()
                    + std::mem::size_of::<ChainMinute>()
                    + m.failures.len() * 8
            })
            .sum()
    }

    /// The decomposition over the `window` minutes ending with the minute of
    /// `at_ms`, against the `baseline` minutes before it.
    pub fn answer(&self, probe: &str, at_ms: i64, window_minutes: i64, baseline_minutes: i64) -> HopsAnswer {
        let last = at_ms.div_euclid(MINUTE_MS);
        let window = self.merged(last - window_minutes + 1, last);
        let before = self.merged(last - window_minutes - baseline_minutes + 1, last - window_minutes);
        let mut hops = Vec::new();
        for (i, name) in self.hops.iter().enumerate() {
            let l = &window.latency[i];
            let (Some(p50), Some(p90), Some(p99)) = (l.quantile(0.5), l.quantile(0.9), l.quantile(0.99)) else {
                if window.failures[i] > 0 {
                    hops.push(HopFigures {
                        name: name.clone(),
                        p50_ms: 0.0,
                        p90_ms: 0.0,
                        p99_ms: 0.0,
                        adds_ms: 0.0,
                        baseline_adds_ms: before.adds[i].quantile(0.5).map(round),
                        count: 0,
                        basis: "measured",
                        share: None,
                        failures: Some(window.failures[i]),
                    });
                }
                continue;
            };
            hops.push(HopFigures {
                name: name.clone(),
                p50_ms: round(p50),
                p90_ms: round(p90),
                p99_ms: round(p99),
                adds_ms: round(window.adds[i].quantile(0.5).unwrap_or(0.0)),
                baseline_adds_ms: before.adds[i].quantile(0.5).map(round),
                count: l.len(),
                basis: "measured",
                share: None,
                failures: Some(window.failures[i]),
            });
        }
        // A hop that answers nothing is the one to look at, however fast the
        // others are; when several do (an outer hop calls the inner ones),
        // the innermost.
        let failing: Vec<&HopFigures> = hops.iter().filter(|h| h.count == 0).collect();
        let (blame, blame_reason) = match failing.as_slice() {
            [] => blame(&hops),
            [h] => (Some(h.name.clone()), format!("`{}` failed every probe of the window", h.name)),
            [.., inner] => (
                Some(inner.name.clone()),
                format!("{} hops failed every probe of the window; `{}` is the innermost", failing.len(), inner.name),
            ),
        };
        HopsAnswer {
            source: "probe",
            service: None,
            route: None,
            probe: Some(probe.to_string()),
            at: crate::timefmt::rfc3339(at_ms),
            window: minutes_text(window_minutes),
            baseline: minutes_text(baseline_minutes),
            hops,
            blame,
            blame_reason,
            joins: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000 / MINUTE_MS * MINUTE_MS;

    fn chain() -> ProbeChain {
        ProbeChain::new(vec!["edge".into(), "gateway".into(), "function".into()])
    }

    fn fig<'a>(a: &'a HopsAnswer, name: &str) -> &'a HopFigures {
        a.hops.iter().find(|h| h.name == name).unwrap()
    }

    #[test]
    fn each_hop_adds_its_latency_minus_the_next_ones() {
        let mut c = chain();
        // Baseline: 40 minutes ago, edge 60, gateway 50, function 20.
        for k in 0..20 {
            c.record(T0 - 40 * MINUTE_MS + k * 1000, &[Some(60.0), Some(50.0), Some(20.0)]);
        }
        // Now the gateway adds 200 ms more (and so does the edge, which calls it).
        for k in 0..20 {
            c.record(T0 - 5 * MINUTE_MS + k * 1000, &[Some(260.0), Some(250.0), Some(20.0)]);
        }
        let a = c.answer("storefront", T0, 15, 180);
        assert_eq!(a.source, "probe");
        assert_eq!(a.hops.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["edge", "gateway", "function"]);
        let (e, g, f) = (fig(&a, "edge"), fig(&a, "gateway"), fig(&a, "function"));
        assert!((e.adds_ms - 10.0).abs() <= 1.0, "{e:?}");
        assert!((g.adds_ms - 230.0).abs() <= 230.0 * 0.05, "{g:?}");
        assert!((f.adds_ms - 20.0).abs() <= 1.0, "{f:?}");
        assert!((g.baseline_adds_ms.unwrap() - 30.0).abs() <= 1.5, "{g:?}");
        assert_eq!(a.blame.as_deref(), Some("gateway"), "{}", a.blame_reason);
        assert_eq!(g.count, 20);
    }

    #[test]
    fn a_hop_that_always_fails_is_blamed() {
        let mut c = chain();
        for k in 0..10 {
            c.record(T0 - 2 * MINUTE_MS + k * 1000, &[Some(60.0), Some(50.0), None]);
        }
        let a = c.answer("storefront", T0, 15, 180);
        let f = fig(&a, "function");
        assert_eq!((f.count, f.failures), (0, Some(10)));
        assert_eq!(a.blame.as_deref(), Some("function"), "{}", a.blame_reason);
        // The gateway's difference with a failed hop is unknown, not its whole latency.
        assert_eq!(fig(&a, "gateway").adds_ms, 0.0);
    }

    #[test]
    fn no_jump_no_blame_and_old_minutes_are_dropped() {
        let mut c = chain();
        for m in 0..400 {
            c.record(T0 - (400 - m) * MINUTE_MS, &[Some(60.0), Some(50.0), Some(20.0)]);
        }
        assert!(c.minutes.len() as i64 <= KEEP_MINUTES);
        let a = c.answer("storefront", T0, 15, 180);
        assert_eq!(a.blame, None, "{}", a.blame_reason);
        // Out-of-order and too-old runs: the first lands in its minute, the second is ignored.
        let before = c.clone();
        c.record(T0 - 10 * MINUTE_MS + 5, &[Some(60.0), Some(50.0), Some(20.0)]);
        assert_ne!(c, before);
        let before = c.clone();
        c.record(T0 - 1000 * MINUTE_MS, &[Some(1.0), Some(1.0), Some(1.0)]);
        assert_eq!(c, before);
        assert!(c.heap_bytes() > 0);
    }
}
