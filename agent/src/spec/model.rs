//! The SLO model every reader (native, OpenSLO, later Sloth) produces and the
//! engine consumes. Values here are already validated: a `Slo` that exists is
//! one the engine can count.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::event::Origin;
use crate::spec::glob::Glob;
use crate::spec::status::StatusSet;

/// Minutes per unit, used by windows and durations.
pub const MINUTE_MS: i64 = 60_000;

/// A whole number of minutes; every window, slice and alert window is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minutes(pub u32);

impl Minutes {
    pub fn hours(self) -> f64 {
        self.0 as f64 / 60.0
    }
}

impl fmt::Display for Minutes {
    /// The shortest exact form: `5m`, `1h`, `6h`, `1d`, `28d`, `90m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        if m != 0 && m.is_multiple_of(1440) {
            write!(f, "{}d", m / 1440)
        } else if m != 0 && m.is_multiple_of(60) {
            write!(f, "{}h", m / 60)
        } else {
            write!(f, "{}m", m)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarUnit {
    Week,
    Month,
}

/// The SLO window: the period the objective and the error budget are about.
#[derive(Debug, Clone, PartialEq)]
pub enum SloWindow {
    /// The last N minutes, moving with time.
    Rolling(Minutes),
    /// The current calendar week or month, in a time zone.
    Calendar {
        unit: CalendarUnit,
        timezone: jiff::tz::TimeZone,
        /// The zone's name as written in the spec, for reports.
        timezone_name: String,
        /// Where the windows start, in local time: `None` at midnight on
        /// Monday (week) or on the 1st (month); else every week or month
        /// from this date and time (OpenSLO `startTime`, native `start`). A
        /// month anchored on the 31st starts on the last day of shorter months.
        anchor: Option<jiff::civil::DateTime>,
    },
}

impl SloWindow {
    /// The nominal length used to scale burn-rate thresholds: a calendar
    /// month counts as 30 days, a week as 7.
    pub fn nominal(&self) -> Minutes {
        match self {
            SloWindow::Rolling(m) => *m,
            SloWindow::Calendar { unit: CalendarUnit::Week, .. } => Minutes(7 * 1440),
            SloWindow::Calendar { unit: CalendarUnit::Month, .. } => Minutes(30 * 1440),
        }
    }

    /// The longest the window can be, which bounds what must be kept.
    pub fn longest(&self) -> Minutes {
        match self {
            SloWindow::Rolling(m) => *m,
            SloWindow::Calendar { unit: CalendarUnit::Week, .. } => Minutes(7 * 1440),
            SloWindow::Calendar { unit: CalendarUnit::Month, .. } => Minutes(31 * 1440),
        }
    }
}

impl fmt::Display for SloWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SloWindow::Rolling(m) => write!(f, "{m}"),
            SloWindow::Calendar { unit, timezone_name, anchor, .. } => {
                let u = match unit {
                    CalendarUnit::Week => "week",
                    CalendarUnit::Month => "month",
                };
                match anchor {
                    None => write!(f, "calendar {u} ({timezone_name})"),
                    Some(a) => write!(f, "calendar {u} from {} ({timezone_name})", a.strftime("%Y-%m-%d %H:%M")),
                }
            }
        }
    }
}

/// How good and bad are turned into a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budgeting {
    /// Every event counts: SLI = good events / all events.
    Occurrences,
    /// Time is cut into slices; a slice is good when its good/total ratio is
    /// at least `good_ratio_at_least`. SLI = good slices / slices with events.
    Timeslices { slice: Minutes, good_ratio_at_least: f64 },
    /// SLI = the mean of the per-slice good/total ratios (OpenSLO RatioTimeslices).
    RatioTimeslices { slice: Minutes },
}

impl Budgeting {
    pub fn slice(&self) -> Option<Minutes> {
        match self {
            Budgeting::Occurrences => None,
            Budgeting::Timeslices { slice, .. } | Budgeting::RatioTimeslices { slice } => Some(*slice),
        }
    }
}

/// Comparison of a latency against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    #[inline]
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            CompareOp::Lt => lhs < rhs,
            CompareOp::Le => lhs <= rhs,
            CompareOp::Gt => lhs > rhs,
            CompareOp::Ge => lhs >= rhs,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// `latency: "<= 800ms"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBound {
    pub op: CompareOp,
    pub threshold_ms: f64,
}

impl LatencyBound {
    /// An event without a latency never meets a latency bound.
    #[inline]
    pub fn holds(&self, latency_ms: Option<f64>) -> bool {
        match latency_ms {
            Some(v) => self.op.holds(v, self.threshold_ms),
            None => false,
        }
    }
}

/// Which events an SLO counts. Every present field must match; a field with a
/// list matches when any element matches. Absent fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub service: Option<Vec<Glob>>,
    pub host: Option<Vec<Glob>>,
    pub path: Option<Vec<Glob>>,
    /// Upper-case method names.
    pub method: Option<Vec<String>>,
    pub edge_location: Option<Vec<Glob>>,
    pub status: Option<StatusSet>,
    /// World regions of the edge location (`dims::edge_region`).
    pub region: Option<Vec<crate::dims::Region>>,
    /// Browsers, crawlers, other clients.
    pub client: Option<Vec<crate::event::ClientClass>>,
    /// How the request ended (throttled, integration error, …).
    pub outcome: Option<Vec<crate::event::Outcome>>,
    /// Globs over the hop's route template (API Gateway `routeKey` / `resourcePath`).
    pub route: Option<Vec<Glob>>,
    /// Synthetic events: globs over the probe's hop or the journey's step.
    pub hop: Option<Vec<Glob>>,
    /// How the CloudFront cache answered (hit, miss, error, unknown).
    pub cache: Option<Vec<crate::event::CacheResult>>,
    /// The viewer's protocol (CloudFront `cs-protocol`; `unknown` elsewhere).
    pub protocol: Option<Vec<crate::event::Protocol>>,
    /// The viewer's TLS version (CloudFront `ssl-protocol`; `unknown` elsewhere).
    pub tls_version: Option<Vec<crate::event::TlsVersion>>,
}

/// When an event counted by the SLO is good: all present criteria hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoodCriteria {
    pub status: Option<StatusSet>,
    pub latency: Option<LatencyBound>,
    /// Good only when the cache answered so ("cache hit ratio" SLOs).
    pub cache: Option<Vec<crate::event::CacheResult>>,
    /// Good only on these protocols ("share of requests over HTTPS").
    pub protocol: Option<Vec<crate::event::Protocol>>,
    /// Good only on these TLS versions ("share of requests on TLS 1.2 or later").
    pub tls_version: Option<Vec<crate::event::TlsVersion>>,
}

/// The indicator: which events, and which of those are good.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    pub source: Origin,
    pub filter: Filter,
    pub good: GoodCriteria,
    /// True when the criteria above describe *bad* events (an OpenSLO
    /// `ratioMetric` given as bad/total): good = counted and not bad.
    pub criteria_are_bad: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One multiwindow burn-rate condition: fires when the burn rate is above
/// `burn_rate_threshold` over both the long and the short window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRateRule {
    pub severity: Severity,
    pub long_window: Minutes,
    pub short_window: Minutes,
    pub burn_rate_threshold: f64,
}

/// The Google SRE Workbook's four window pairs, as (severity, long, short,
/// fraction of the budget spent in the long window when the rule trips).
pub const WORKBOOK_RULES: [(Severity, Minutes, Minutes, f64); 4] = [
    (Severity::Page, Minutes(60), Minutes(5), 0.02),
    (Severity::Page, Minutes(360), Minutes(30), 0.05),
    (Severity::Ticket, Minutes(1440), Minutes(120), 0.10),
    (Severity::Ticket, Minutes(4320), Minutes(360), 0.10),
];

/// The alert windows every SLO reports burn rates for.
pub const ALERT_WINDOWS: [Minutes; 7] =
    [Minutes(5), Minutes(30), Minutes(60), Minutes(120), Minutes(360), Minutes(1440), Minutes(4320)];

/// The default rules for an SLO window: the Workbook's budget fractions,
/// scaled so a 30-day window gets exactly 14.4 / 6 / 3 / 1. A rule whose long
/// window is longer than the SLO window is left out: it would look at more
/// than the budget is about.
pub fn default_rules(window: &SloWindow) -> Vec<BurnRateRule> {
    let window_hours = window.nominal().hours();
    WORKBOOK_RULES
        .iter()
        .filter(|(_, long, _, _)| *long <= window.nominal())
        .map(|&(severity, long, short, fraction)| BurnRateRule {
            severity,
            long_window: long,
            short_window: short,
            burn_rate_threshold: round_threshold(fraction * window_hours / long.hours()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_scale_with_the_window_and_skip_longer_long_windows() {
        let t = |w: u32| {
            default_rules(&SloWindow::Rolling(Minutes(w))).iter().map(|r| r.burn_rate_threshold).collect::<Vec<_>>()
        };
        assert_eq!(t(30 * 1440), vec![14.4, 6.0, 3.0, 1.0]);
        assert_eq!(t(28 * 1440), vec![13.44, 5.6, 2.8, 0.933333]);
        // A 1-day window: the 3-day rule is left out.
        assert_eq!(t(1440), vec![0.48, 0.2, 0.1]);
        assert_eq!(t(60), vec![0.02]);
    }
}

/// Keep thresholds readable (14.4, not 14.400000000000002).
fn round_threshold(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Where alerts of one severity point the human.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertTarget {
    pub runbook: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    pub page: Option<AlertTarget>,
    pub ticket: Option<AlertTarget>,
    /// The conditions evaluated at every tick (defaults, or the spec's own).
    pub rules: Vec<BurnRateRule>,
    /// Low-traffic guard for this SLO (events in a condition's long window);
    /// `None`: the agent's `alerts.min_events`.
    pub min_events: Option<u64>,
    /// Raise a time-to-exhaustion alert when, at the current 6h burn rate,
    /// the remaining budget is gone within this long.
    pub exhaustion_within: Option<Minutes>,
}

/// Where a spec came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecOrigin {
    pub file: String,
    pub line: usize,
    /// The document's `apiVersion` (`slo-agent/v1`, `openslo/v1`).
    pub api_version: &'static str,
}

/// One service level objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    /// A human title for reports (`metadata.displayName`), when given.
    pub display_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub service: String,
    pub description: Option<String>,
    /// The objective as a ratio in (0, 1): 99.9 % is 0.999.
    pub objective: f64,
    pub window: SloWindow,
    pub budgeting: Budgeting,
    pub indicator: Indicator,
    pub alerting: Alerting,
    /// Times whose events do not count (maintenance slots, planned work).
    pub exclusions: Vec<Exclusion>,
    pub origin: SpecOrigin,
}

/// A stretch of time whose events do not count against the budget (and so
/// cannot fire an alert): a one-off window, or a weekly slot in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Exclusion {
    pub when: ExclusionTime,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExclusionTime {
    /// `[start_ms, end_ms)`.
    Once { start_ms: i64, end_ms: i64 },
    /// Every week from `weekday` (0 = Monday) at `start_minute` past local
    /// midnight, for `duration` minutes (it may run into the next day).
    Weekly { weekday: u8, start_minute: u32, duration: Minutes, timezone: jiff::tz::TimeZone, timezone_name: String },
}

impl Exclusion {
    /// Whether an event at `ts_ms` falls inside.
    pub fn covers(&self, ts_ms: i64) -> bool {
        match &self.when {
            ExclusionTime::Once { start_ms, end_ms } => (*start_ms..*end_ms).contains(&ts_ms),
            ExclusionTime::Weekly { weekday, start_minute, duration, timezone, .. } => {
                let Ok(t) = jiff::Timestamp::from_millisecond(ts_ms) else { return false };
                let z = t.to_zoned(timezone.clone());
                let day = i64::from(z.weekday().to_monday_zero_offset());
                let minute_of_week = day * 1440 + i64::from(z.hour()) * 60 + i64::from(z.minute());
                let start = i64::from(*weekday) * 1440 + i64::from(*start_minute);
                (minute_of_week - start).rem_euclid(7 * 1440) < duration.0 as i64
            }
        }
    }
}

impl Slo {
    /// The allowed bad fraction, 1 − objective.
    pub fn error_budget_ratio(&self) -> f64 {
        1.0 - self.objective
    }
}

/// A validated, loaded set of SLOs. Names are unique.
#[derive(Debug, Clone, Default)]
pub struct SloSet {
    pub slos: Vec<Arc<Slo>>,
    /// Error-budget policies (`kind: FreezePolicy`), in file order.
    pub policies: Vec<Arc<crate::spec::policy::FreezePolicy>>,
}
