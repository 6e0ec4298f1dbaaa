//! The `outage:` section of `agent.yaml` (`docs/operations.md`, "Is it
//! partial or total?").
//!
//! ```yaml
//! outage:
//!   window: 10m                  # the last minutes judged
//!   baseline: 1h                 # routes: the minutes before the window they are compared with
//!   min_requests: 20             # a slice with fewer requests in the window is not judged
//!   failing_success_ratio: 0.9   # a slice below this success ratio fails…
//!   drop_from_baseline: 0.05     # …and so does one this far below its own baseline
//!   total_share: 0.9             # failing slices carrying this share of the traffic: total
//! ```

use std::time::Duration;

use crate::yaml::Node;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::values::parse_duration;

/// The thresholds of the outage verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageConfig {
    /// The last minutes judged.
    pub window_minutes: i64,
    /// Routes only (the live signals carry their own baseline): the minutes
    /// before the window a route's success ratio is compared with.
    pub baseline_minutes: i64,
    /// Slices with fewer requests in the window are not judged.
    pub min_requests: u64,
    /// A slice whose success ratio is below this fails.
    pub failing_success_ratio: f64,
    /// A slice this far (absolute) below its baseline's success ratio fails.
    pub drop_from_baseline: f64,
    /// Failing slices carrying at least this share of the service's requests: `total`.
    pub total_share: f64,
}

impl Default for OutageConfig {
    fn default() -> Self {
        OutageConfig {
            window_minutes: 10,
            baseline_minutes: 60,
            min_requests: 20,
            failing_success_ratio: 0.9,
            drop_from_baseline: 0.05,
            total_share: 0.9,
        }
    }
}

/// The window and baseline together stay within the hop minutes kept.
pub const MAX_MINUTES: i64 = crate::hops::KEEP_MINUTES;

fn minutes(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: i64) -> Option<i64> {
    let Some(n) = f.get(key) else { return Some(default) };
    let t = cx.text(n, &f.path(key))?;
    match parse_duration(t) {
        Some(d) if d.as_secs() % 60 == 0 && d >= Duration::from_secs(60) && d.as_secs() / 60 < MAX_MINUTES as u64 => {
            Some((d.as_secs() / 60) as i64)
        }
        _ => {
            cx.err(
                n.pos,
                format!("`{}` must be whole minutes below {MAX_MINUTES}m, like 10m or 1h, found `{t}`", f.path(key)),
            );
            None
        }
    }
}

fn fraction(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, default: f64) -> Option<f64> {
    let Some(n) = f.get(key) else { return Some(default) };
    let v = cx.number(n, &f.path(key))?;
    if v > 0.0 && v <= 1.0 {
        Some(v)
    } else {
        cx.err(n.pos, format!("`{}` must be above 0 and at most 1, found {v}", f.path(key)));
        None
    }
}

pub fn read_outage(cx: &mut Ctx<'_>, node: &Node) -> Option<OutageConfig> {
    let keys = ["window", "baseline", "min_requests", "failing_success_ratio", "drop_from_baseline", "total_share"];
    let f = cx.map(node, "outage", &keys)?;
    let d = OutageConfig::default();
    let window = minutes(cx, &f, "window", d.window_minutes);
    let baseline = minutes(cx, &f, "baseline", d.baseline_minutes);
    let min_requests = match f.get("min_requests") {
        None => Some(d.min_requests),
        Some(n) => match cx.number(n, &f.path("min_requests")) {
            Some(v) if (1.0..=1e9).contains(&v) && v.fract() == 0.0 => Some(v as u64),
            Some(v) => {
                cx.err(n.pos, format!("`outage.min_requests` must be a whole number from 1 to 1e9, found {v}"));
                None
            }
            None => None,
        },
    };
    let failing = fraction(cx, &f, "failing_success_ratio", d.failing_success_ratio);
    let drop = fraction(cx, &f, "drop_from_baseline", d.drop_from_baseline);
    let total = fraction(cx, &f, "total_share", d.total_share);
    if let (Some(w), Some(b), Some(n)) = (window, baseline, f.get("baseline").or_else(|| f.get("window")))
        && w + b > MAX_MINUTES
    {
        cx.err(n.pos, format!("`outage.window` and `outage.baseline` together reach back at most {MAX_MINUTES}m"));
        return None;
    }
    Some(OutageConfig {
        window_minutes: window?,
        baseline_minutes: baseline?,
        min_requests: min_requests?,
        failing_success_ratio: failing?,
        drop_from_baseline: drop?,
        total_share: total?,
    })
}
