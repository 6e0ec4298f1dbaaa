//! Import of OpenSLO v1 (`apiVersion: openslo/v1`): `SLO` and `SLI`
//! documents, plus `Service` documents (accepted, checked, not needed).
//!
//! Metrics must come from slo-agent itself: every `metricSource` is
//! `{type: slo-agent, spec: {...}}` with the native indicator fields. What
//! OpenSLO can say and slo-agent cannot count is refused with a message,
//! never ignored. See the mapping table in `docs/spec.md`.

use std::collections::HashMap;

use crate::spec::Diagnostic;
use crate::spec::model::{
    Alerting, Budgeting, CalendarUnit, CompareOp, Filter, GoodCriteria, Indicator, LatencyBound, Minutes, Slo,
    SloWindow, SpecOrigin, default_rules,
};
use crate::spec::native::{self, MAX_WINDOW, MIN_WINDOW, ReadSlo};
use crate::yaml::closest;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::{Node, Pos, Value};

pub const API_VERSION: &str = "openslo/v1";

/// The window of an SLO without `timeWindow`: a rolling 28 days.
pub const DEFAULT_TIME_WINDOW: Minutes = Minutes(28 * 1440);

const KINDS: &[&str] = &["SLO", "SLI", "Service"];
const UNSUPPORTED_KINDS: &[&str] = &["AlertPolicy", "AlertCondition", "AlertNotificationTarget", "DataSource"];
const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA: &[&str] = &["name", "displayName", "labels", "annotations"];
const SLO_SPEC: &[&str] = &[
    "description",
    "service",
    "indicator",
    "indicatorRef",
    "timeWindow",
    "budgetingMethod",
    "objectives",
    "alertPolicies",
];
const SLI_SPEC: &[&str] = &["description", "thresholdMetric", "ratioMetric"];
const OBJECTIVE: &[&str] = &[
    "displayName",
    "op",
    "value",
    "target",
    "targetPercent",
    "timeSliceTarget",
    "timeSliceWindow",
    "indicator",
    "indicatorRef",
    "compositeWeight",
];

/// OpenSLO documents gathered from all files; SLOs are built once every
/// SLI is known, since `indicatorRef` may point into another file.
#[derive(Default)]
pub struct Collected {
    slos: Vec<(String, Node)>,
    slis: Vec<(String, Node)>,
}

impl Collected {
    pub fn collect(&mut self, cx: &mut Ctx<'_>, root: &Node) {
        let Value::Map(entries) = &root.value else {
            return;
        };
        let Some(kind) = entries.iter().find(|(k, _)| k.text == "kind").map(|(_, v)| v) else {
            cx.err(root.pos, format!("document is missing `kind`; {API_VERSION} kinds: SLO, SLI, Service"));
            return;
        };
        match cx.text(kind, "kind") {
            Some("SLO") => self.slos.push((cx.file.to_string(), root.clone())),
            Some("SLI") => self.slis.push((cx.file.to_string(), root.clone())),
            Some("Service") => service(cx, root),
            Some(k) if UNSUPPORTED_KINDS.contains(&k) => cx.err(
                kind.pos,
                format!(
                    "OpenSLO kind `{k}` is not supported: slo-agent alerts with multiwindow burn-rate rules \
                     (defaults, or `alerting.rules` in a native spec) and reads only its own events"
                ),
            ),
            Some(k) => {
                let hint = closest(k, KINDS).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
                cx.err(kind.pos, format!("unknown OpenSLO kind `{k}`; {hint}supported: SLO, SLI, Service"));
            }
            None => {}
        }
    }

    pub fn resolve(self, diags: &mut Vec<Diagnostic>) -> Vec<ReadSlo> {
        // SLI name → (file, its `spec` node).
        let mut slis: HashMap<String, (String, usize, Node)> = HashMap::new();
        for (file, root) in &self.slis {
            let mut cx = Ctx { file, diags };
            let Some(top) = cx.map(root, "document", TOP) else {
                continue;
            };
            let meta = top.require(&mut cx, "metadata").and_then(|m| cx.map(m, "metadata", METADATA));
            let spec = top.require(&mut cx, "spec");
            let (Some(meta), Some(spec)) = (meta, spec) else {
                continue;
            };
            let Some(name_node) = meta.require(&mut cx, "name") else {
                continue;
            };
            let Some(name) = native::checked_name(&mut cx, name_node, "metadata.name") else {
                continue;
            };
            native::read_metadata(&mut cx, &meta);
            // Check it once on its own, so an SLI no SLO uses is still validated.
            sli_spec(&mut cx, spec, "spec");
            if let Some((f, line, _)) = slis.get(&name) {
                cx.err(name_node.pos, format!("duplicate SLI name `{name}`; first defined at {f}:{line}"));
                continue;
            }
            slis.insert(name, (file.clone(), name_node.pos.line, spec.clone()));
        }
        let mut out = Vec::new();
        for (file, root) in &self.slos {
            let mut cx = Ctx { file, diags };
            if let Some(s) = slo(&mut cx, root, &slis) {
                out.push(s);
            }
        }
        out
    }
}

fn service(cx: &mut Ctx<'_>, root: &Node) {
    let Some(top) = cx.map(root, "document", TOP) else {
        return;
    };
    if let Some(m) = top.require(cx, "metadata").and_then(|m| cx.map(m, "metadata", METADATA)) {
        native::read_metadata(cx, &m);
    }
    if let Some(s) = top.get("spec") {
        cx.map(s, "spec", &["description"]);
    }
}

fn slo(cx: &mut Ctx<'_>, root: &Node, slis: &HashMap<String, (String, usize, Node)>) -> Option<ReadSlo> {
    let top = cx.map(root, "document", TOP)?;
    let meta = top.require(cx, "metadata").and_then(|m| cx.map(m, "metadata", METADATA));
    let meta = meta.map(|m| native::read_metadata(cx, &m));
    let spec = top.require(cx, "spec").and_then(|s| cx.map(s, "spec", SLO_SPEC))?;

    if let Some(n) = spec.get("alertPolicies") {
        cx.err(
            n.pos,
            "`spec.alertPolicies` is not supported: slo-agent pages and tickets with its multiwindow burn-rate \
             rules; remove it, or write a native spec with `alerting.rules`",
        );
    }
    let service = spec.require(cx, "service").and_then(|n| native::service_name(cx, n, "spec.service"));
    let description = spec.get("description").and_then(|n| cx.text(n, "spec.description")).map(str::to_string);
    // OpenSLO makes `timeWindow` optional and names no default; ours is 28
    // days, rolling (four whole weeks: every window holds each weekday alike).
    let window = match spec.get("timeWindow") {
        Some(n) => time_window(cx, n, "spec.timeWindow"),
        None => Some(SloWindow::Rolling(DEFAULT_TIME_WINDOW)),
    };
    let method = spec.require(cx, "budgetingMethod").and_then(|n| {
        let t = cx.text(n, "spec.budgetingMethod")?;
        const METHODS: &[&str] = &["Occurrences", "Timeslices", "RatioTimeslices"];
        if METHODS.contains(&t) {
            return Some((t.to_string(), n));
        }
        let hint = closest(t, METHODS).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
        cx.err(n.pos, format!("unknown budgetingMethod `{t}`; {hint}use Occurrences, Timeslices or RatioTimeslices"));
        None
    });
    let objective = spec.require(cx, "objectives").and_then(|n| objective(cx, n, "spec.objectives"));

    let threshold = objective.as_ref().map(|o| o.threshold.clone());
    let indicator = match (spec.get("indicator"), spec.get("indicatorRef")) {
        (Some(n), None) => inline_indicator(cx, n, "spec.indicator", threshold),
        (None, Some(n)) => {
            let name = cx.text(n, "spec.indicatorRef")?;
            match slis.get(name) {
                Some((file, _, sli)) => {
                    // Problems inside the SLI are reported in the SLI's file.
                    let mut sub = Ctx { file, diags: cx.diags };
                    // …and a missing `op`/`value` at the objective, in the SLO's.
                    let ind = sli_spec(&mut sub, sli, "spec")?;
                    with_objective(cx, ind, threshold)
                }
                None => {
                    let names: Vec<&str> = slis.keys().map(String::as_str).collect();
                    let hint = closest(name, &names).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
                    cx.err(n.pos, format!("no OpenSLO SLI named `{name}` in the loaded files{hint}"));
                    None
                }
            }
        }
        (Some(_), Some(n)) => {
            cx.err(n.pos, "give either `spec.indicator` or `spec.indicatorRef`, not both");
            None
        }
        (None, None) => {
            cx.err(spec.node.pos, "`spec` is missing required field `indicator` or `indicatorRef`");
            None
        }
    };

    let (window, objective, (method, method_node)) = (window?, objective?, method?);
    let budgeting = match method.as_str() {
        "Occurrences" => {
            for (field, n) in
                [("timeSliceTarget", objective.slice_target_node), ("timeSliceWindow", objective.slice_node)]
            {
                if let Some(n) = n {
                    cx.err(n.pos, format!("`{field}` only applies to Timeslices and RatioTimeslices budgeting"));
                }
            }
            Budgeting::Occurrences
        }
        m => {
            let Some(slice_node) = objective.slice_node else {
                cx.err(method_node.pos, format!("budgetingMethod {m} needs `timeSliceWindow` in the objective"));
                return None;
            };
            let slice = time_slice(cx, slice_node, "timeSliceWindow", &window)?;
            if m == "Timeslices" {
                let Some(t) = objective.slice_target else {
                    cx.err(method_node.pos, "budgetingMethod Timeslices needs `timeSliceTarget` in the objective");
                    return None;
                };
                Budgeting::Timeslices { slice, good_ratio_at_least: t }
            } else {
                if let Some(n) = objective.slice_target_node {
                    cx.err(n.pos, "`timeSliceTarget` only applies to Timeslices budgeting");
                }
                Budgeting::RatioTimeslices { slice }
            }
        }
    };
    let meta = meta?;
    Some(ReadSlo {
        slo: Slo {
            name: meta.name?,
            display_name: meta.display_name,
            labels: meta.labels,
            service: service?,
            description,
            objective: objective.target,
            alerting: Alerting {
                page: None,
                ticket: None,
                rules: default_rules(&window),
                min_events: None,
                exhaustion_within: None,
            },
            window,
            budgeting,
            indicator: indicator?,
            exclusions: Vec::new(),
            origin: SpecOrigin { file: cx.file.to_string(), line: root.pos.line, api_version: API_VERSION },
        },
        name_pos: meta.name_pos,
    })
}

fn time_window(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<SloWindow> {
    let items = cx.list(node, what)?;
    if items.len() != 1 {
        cx.err(node.pos, format!("`{what}` must have exactly one item, found {}", items.len()));
        return None;
    }
    let p = format!("{what}[0]");
    let m = cx.map(&items[0], &p, &["duration", "isRolling", "calendar"])?;
    let duration_node = m.require(cx, "duration")?;
    let duration = cx.text(duration_node, &m.path("duration"))?;
    let rolling = match m.get("isRolling") {
        Some(n) => cx.boolean(n, &m.path("isRolling"))?,
        None => !m.has("calendar"),
    };
    if rolling {
        if let Some(n) = m.get("calendar") {
            cx.err(n.pos, "`calendar` only applies when `isRolling` is false");
            return None;
        }
        if duration.ends_with(['M', 'Q', 'Y']) {
            cx.err(
                duration_node.pos_at(duration.len() - 1),
                format!("rolling windows are given in m, h, d or w (at most {MAX_WINDOW}), found `{duration}`"),
            );
            return None;
        }
        return native::duration_in(cx, duration_node, &m.path("duration"), MIN_WINDOW, MAX_WINDOW)
            .map(SloWindow::Rolling);
    }
    let unit = match duration {
        "1M" => CalendarUnit::Month,
        "1w" => CalendarUnit::Week,
        _ => {
            cx.err(
                duration_node.pos,
                if duration == "1m" {
                    "calendar windows of `1m` (one minute) are not supported; did you mean `1M` (a month)? \
                     Use `1M` or `1w` (a week)"
                        .to_string()
                } else {
                    format!("calendar windows of `{duration}` are not supported; use `1M` (a month) or `1w` (a week)")
                },
            );
            return None;
        }
    };
    let Some(cal_node) = m.get("calendar") else {
        cx.err(m.node.pos, format!("`{p}` has isRolling false but no `calendar: {{startTime, timeZone}}`"));
        return None;
    };
    let cal = cx.map(cal_node, &m.path("calendar"), &["startTime", "timeZone"])?;
    let tz = match cal.get("timeZone") {
        Some(n) => native::timezone(cx, n, &cal.path("timeZone")),
        None => Some(("UTC".to_string(), jiff::tz::TimeZone::UTC)),
    };
    // Windows repeat every week or month from `startTime`, in `timeZone`.
    let anchor = match cal.get("startTime") {
        Some(n) => native::calendar_start(cx, n, &cal.path("startTime"), Some(unit)),
        None => Some(None),
    };
    let (timezone_name, timezone) = tz?;
    Some(SloWindow::Calendar { unit, timezone, timezone_name, anchor: anchor? })
}

/// `timeSliceWindow`: a duration (`1m`, `5m`) or a number of seconds.
fn time_slice(cx: &mut Ctx<'_>, node: &Node, what: &str, window: &SloWindow) -> Option<Minutes> {
    let text = cx.text(node, what)?;
    let minutes = if let Ok(secs) = text.trim().parse::<u64>() {
        if secs == 0 || secs % 60 != 0 || secs / 60 > MAX_WINDOW.0 as u64 {
            cx.err(node.pos, format!("`{what}` of {secs} seconds is not a whole number of minutes"));
            return None;
        }
        Minutes((secs / 60) as u32)
    } else {
        native::duration_in(cx, node, what, Minutes(1), MAX_WINDOW)?
    };
    native::check_slice(cx, node, what, minutes, window)
}

struct Objective<'n> {
    target: f64,
    threshold: OpValue,
    slice_target: Option<f64>,
    slice_target_node: Option<&'n Node>,
    slice_node: Option<&'n Node>,
}

/// An objective's `op` and `value`: the latency bound of a thresholdMetric;
/// accepted and ignored beside a ratioMetric (OpenSLO needs them only for a
/// threshold, and its own examples put `op: gt` on ratio objectives).
#[derive(Debug, Clone)]
struct OpValue {
    op: Option<CompareOp>,
    /// The value and where it is.
    value: Option<(f64, Pos)>,
    /// `spec.objectives[0]`, for messages.
    objective: String,
    pos: Pos,
}

impl OpValue {
    /// The latency bound of a thresholdMetric: both `op` and a positive `value`.
    fn latency_bound(&self, cx: &mut Ctx<'_>) -> Option<LatencyBound> {
        let o = &self.objective;
        match (self.op, self.value) {
            (Some(op), Some((v, _))) if v > 0.0 => Some(LatencyBound { op, threshold_ms: v }),
            (Some(_), Some((_, at))) => {
                cx.err(at, format!("`{o}.value` is a latency in milliseconds and must be positive"));
                None
            }
            (Some(_), None) => {
                cx.err(self.pos, format!("`{o}` has `op` but no `value`: a thresholdMetric needs both"));
                None
            }
            (None, Some(_)) => {
                cx.err(self.pos, format!("`{o}` has `value` but no `op`: a thresholdMetric needs both"));
                None
            }
            (None, None) => {
                cx.err(
                    self.pos,
                    format!("a thresholdMetric needs `op` and `value` (milliseconds) in the SLO's objective `{o}`"),
                );
                None
            }
        }
    }
}

fn objective<'n>(cx: &mut Ctx<'_>, node: &'n Node, what: &str) -> Option<Objective<'n>> {
    let items = cx.list(node, what)?;
    match items.len() {
        1 => {}
        0 => {
            cx.err(node.pos, format!("`{what}` is empty; give one objective"));
            return None;
        }
        n => {
            cx.err(
                items[1].pos,
                format!("{n} objectives given; slo-agent supports one objective per SLO: write one SLO per objective"),
            );
            return None;
        }
    }
    let p = format!("{what}[0]");
    let m = cx.map(&items[0], &p, OBJECTIVE)?;
    for key in ["indicator", "indicatorRef", "compositeWeight"] {
        if let Some(n) = m.get(key) {
            cx.err(n.pos, format!("`{key}` in an objective (composite SLOs) is not supported; use spec.{key}"));
        }
    }
    let target = match (m.get("target"), m.get("targetPercent")) {
        (Some(n), None) => ratio_in(cx, n, &m.path("target"), 1.0, false),
        (None, Some(n)) => ratio_in(cx, n, &m.path("targetPercent"), 100.0, false).map(|v| native::to_ratio(v / 100.0)),
        (Some(_), Some(n)) => {
            cx.err(n.pos, "give either `target` or `targetPercent`, not both");
            None
        }
        (None, None) => {
            cx.err(m.node.pos, format!("`{p}` is missing required field `target` (or `targetPercent`)"));
            None
        }
    };
    // Each checked on its own, when present (as OpenSLO's own validator
    // does); whether the pair is needed depends on the SLI's metric.
    let op = match m.get("op") {
        None => Some(None),
        Some(n) => match cx.text(n, &m.path("op")) {
            Some("lte") => Some(Some(CompareOp::Le)),
            Some("lt") => Some(Some(CompareOp::Lt)),
            Some("gte") => Some(Some(CompareOp::Ge)),
            Some("gt") => Some(Some(CompareOp::Gt)),
            Some(other) => {
                cx.err(n.pos, format!("unknown op `{other}`; use lte, lt, gte or gt"));
                None
            }
            None => None,
        },
    };
    let value = match m.get("value") {
        None => Some(None),
        Some(n) => cx.number(n, &m.path("value")).map(|v| Some((v, n.pos))),
    };
    let threshold = match (op, value) {
        (Some(op), Some(value)) => Some(OpValue { op, value, objective: p.clone(), pos: m.node.pos }),
        _ => None,
    };
    let slice_target_node = m.get("timeSliceTarget");
    let slice_target = match slice_target_node {
        Some(n) => Some(ratio_in(cx, n, &m.path("timeSliceTarget"), 1.0, true)?),
        None => None,
    };
    Some(Objective {
        target: target?,
        threshold: threshold?,
        slice_target,
        slice_target_node,
        slice_node: m.get("timeSliceWindow"),
    })
}

/// A number in (0, max), or (0, max] when `inclusive`.
fn ratio_in(cx: &mut Ctx<'_>, node: &Node, what: &str, max: f64, inclusive: bool) -> Option<f64> {
    let v = cx.number(node, what)?;
    let ok = v > 0.0 && (v < max || (inclusive && v == max));
    if !ok {
        let close = if inclusive { "]" } else { ")" };
        cx.err(node.pos, format!("`{what}` must be in (0, {max}{close}, found {v}"));
        return None;
    }
    Some(v)
}

fn inline_indicator(cx: &mut Ctx<'_>, node: &Node, what: &str, threshold: Option<OpValue>) -> Option<Indicator> {
    let m = cx.map(node, what, &["metadata", "spec"])?;
    if let Some(meta) = m.get("metadata").and_then(|n| cx.map(n, &m.path("metadata"), METADATA))
        && let Some(n) = meta.get("name")
    {
        native::checked_name(cx, n, &meta.path("name"));
    }
    let spec = m.require(cx, "spec")?;
    let ind = sli_spec(cx, spec, &m.path("spec"))?;
    with_objective(cx, ind, threshold)
}

/// An indicator as an SLI document gives it, before the SLO's objective.
struct SliMetric {
    indicator: Indicator,
    /// A thresholdMetric, which takes its latency bound from the objective.
    threshold: bool,
}

/// An SLI `spec`; a thresholdMetric used by an SLO takes its latency bound
/// from the objective.
fn sli_spec(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<SliMetric> {
    let m = cx.map(node, what, SLI_SPEC)?;
    match (m.get("thresholdMetric"), m.get("ratioMetric")) {
        (Some(t), None) => threshold_metric(cx, t, &m.path("thresholdMetric"))
            .map(|indicator| SliMetric { indicator, threshold: true }),
        (None, Some(r)) => {
            ratio_metric(cx, r, &m.path("ratioMetric")).map(|indicator| SliMetric { indicator, threshold: false })
        }
        (Some(_), Some(r)) => {
            cx.err(r.pos, "give either `thresholdMetric` or `ratioMetric`, not both");
            None
        }
        (None, None) => {
            cx.err(m.node.pos, format!("`{what}` is missing `ratioMetric` or `thresholdMetric`"));
            None
        }
    }
}

/// The indicator an SLO counts: a thresholdMetric gets the objective's latency
/// bound; a ratioMetric ignores `op` and `value`.
fn with_objective(cx: &mut Ctx<'_>, metric: SliMetric, threshold: Option<OpValue>) -> Option<Indicator> {
    let mut ind = metric.indicator;
    if metric.threshold {
        ind.good.latency = Some(threshold?.latency_bound(cx)?);
    }
    Some(ind)
}

/// The `spec` of a `metricSource`, which must be of type `slo-agent`.
fn metric_spec<'n>(cx: &mut Ctx<'_>, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
    let metric = cx.map(node, what, &["metricSource"])?;
    let src = metric.require(cx, "metricSource")?;
    let sp = metric.path("metricSource");
    let src = cx.map(src, &sp, &["metricSourceRef", "type", "spec"])?;
    if let Some(n) = src.get("metricSourceRef") {
        cx.err(n.pos, "`metricSourceRef` (DataSource objects) is not supported; use `type: slo-agent` with a `spec`");
    }
    let ty = src.require(cx, "type")?;
    match cx.text(ty, &src.path("type"))? {
        "slo-agent" => {}
        other => {
            cx.err(
                ty.pos,
                format!(
                    "metric source type `{other}` is not supported: slo-agent computes SLIs from the events it \
                     reads; use `type: slo-agent`"
                ),
            );
            return None;
        }
    }
    let spec = src.require(cx, "spec")?;
    cx.map(spec, &src.path("spec"), allowed)
}

fn threshold_metric(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Indicator> {
    let s = metric_spec(cx, node, what, &["source", "filter", "good"])?;
    let source = s.require(cx, "source").and_then(|n| native::source(cx, n, &s.path("source")));
    let filter = opt_filter(cx, &s);
    let good = match s.get("good") {
        Some(n) => {
            let g = cx.map(n, &s.path("good"), &["status"]);
            g.and_then(|g| native::good_fields(cx, &g, false))
        }
        None => Some(GoodCriteria::default()),
    };
    Some(Indicator { source: source?, filter: filter?, good: good?, criteria_are_bad: false })
}

fn opt_filter(cx: &mut Ctx<'_>, s: &Fields<'_>) -> Option<Filter> {
    match s.get("filter") {
        Some(n) => native::filter(cx, n, &s.path("filter")),
        None => Some(Filter::default()),
    }
}

fn ratio_metric(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Indicator> {
    let m = cx.map(node, what, &["counter", "good", "bad", "total", "rawType", "raw"])?;
    for key in ["raw", "rawType"] {
        if let Some(n) = m.get(key) {
            cx.err(n.pos, format!("`{key}` (precomputed ratios) is not supported; give `good` or `bad`, and `total`"));
        }
    }
    if let Some(n) = m.get("counter") {
        cx.boolean(n, &m.path("counter"));
    }
    let total = m.require(cx, "total").and_then(|n| {
        let s = metric_spec(cx, n, &m.path("total"), &["source", "filter"])?;
        let source = s.require(cx, "source").and_then(|n| native::source(cx, n, &s.path("source")));
        let filter = opt_filter(cx, &s);
        Some((source?, filter?))
    });
    let (key, bad) = match (m.get("good"), m.get("bad")) {
        (Some(_), None) => ("good", false),
        (None, Some(_)) => ("bad", true),
        (Some(_), Some(n)) => {
            cx.err(n.pos, "give either `good` or `bad`, not both");
            return None;
        }
        (None, None) => {
            cx.err(m.node.pos, format!("`{what}` needs `good` or `bad` next to `total`"));
            return None;
        }
    };
    let node = m.get(key)?;
    let s = metric_spec(cx, node, &m.path(key), &["source", "filter", key])?;
    let criteria = s.require(cx, key).and_then(|n| {
        let g = cx.map(n, &s.path(key), native::GOOD)?;
        native::good_fields(cx, &g, true)
    });
    // The numerator counts the same events as the denominator: if it
    // repeats `source` or `filter`, they must say the same thing.
    let source = s.get("source").and_then(|n| Some((n, native::source(cx, n, &s.path("source"))?)));
    let filter = s.get("filter").and_then(|n| Some((n, native::filter(cx, n, &s.path("filter"))?)));
    let (total_source, total_filter) = total?;
    if let Some((n, src)) = source
        && src != total_source
    {
        cx.err(n.pos, format!("`{}` must be the same as total's (`{}`)", s.path("source"), total_source.as_str()));
        return None;
    }
    if let Some((n, f)) = filter
        && f != total_filter
    {
        cx.err(n.pos, format!("`{}` must be the same as total's filter (or left out)", s.path("filter")));
        return None;
    }
    Some(Indicator { source: total_source, filter: total_filter, good: criteria?, criteria_are_bad: bad })
}
