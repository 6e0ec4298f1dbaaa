//! The native spec format, `apiVersion: slo-agent/v1`, `kind: SLO`.
//! See `docs/spec.md` for the reference. The indicator readers here are
//! shared with the OpenSLO reader, whose `metricSource.spec` uses the same
//! fields.

use std::collections::BTreeMap;

use crate::dims::Region;
use crate::event::{CacheResult, ClientClass, Origin, Outcome, Protocol, TlsVersion};
use crate::spec::glob::Glob;
use crate::spec::grammar::{self, HTTP_METHODS};
use crate::spec::model::{
    AlertTarget, Alerting, Budgeting, BurnRateRule, CalendarUnit, Exclusion, ExclusionTime, Filter, GoodCriteria,
    Indicator, Minutes, Severity, Slo, SloWindow, SpecOrigin, default_rules,
};
use crate::spec::status::StatusSet;
use crate::yaml::closest;
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::{Node, Pos, Value};

pub const API_VERSION: &str = "slo-agent/v1";

/// Rolling windows are at least this long…
pub const MIN_WINDOW: Minutes = Minutes(5);
/// …and at most this long (what the store keeps).
pub const MAX_WINDOW: Minutes = Minutes(90 * 1440);
/// At most this many slices per window, so per-slice state stays bounded.
pub const MAX_SLICES: u32 = 200_000;
/// User burn-rate rules look back at most this far.
pub const MAX_ALERT_WINDOW: Minutes = Minutes(3 * 1440);

const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA: &[&str] = &["name", "displayName", "labels"];
const SPEC: &[&str] =
    &["service", "description", "objective", "window", "budgeting", "indicator", "alerting", "exclusions"];
const INDICATOR: &[&str] = &["source", "filter", "good"];
pub const FILTER: &[&str] = &[
    "service",
    "host",
    "path",
    "method",
    "edge_location",
    "status",
    "region",
    "client",
    "outcome",
    "route",
    "hop",
    "cache",
    "protocol",
    "tls_version",
];
pub const GOOD: &[&str] = &["status", "latency", "cache", "protocol", "tls_version"];

/// A read SLO with the position of its name, for duplicate-name messages.
pub struct ReadSlo {
    pub slo: Slo,
    pub name_pos: Pos,
}

/// Reads one native document (already known to be `slo-agent/v1`).
pub fn read(cx: &mut Ctx<'_>, root: &Node) -> Option<ReadSlo> {
    let top = cx.map(root, "document", TOP)?;
    if let Some(kind) = top.require(cx, "kind") {
        match cx.text(kind, "kind") {
            Some("SLO") => {}
            Some(other) => {
                cx.err(
                    kind.pos,
                    format!(
                        "unknown kind `{other}` for apiVersion {API_VERSION}; the kinds are `SLO` and `FreezePolicy`"
                    ),
                );
                return None;
            }
            None => return None,
        }
    }
    let meta = top.require(cx, "metadata").and_then(|m| metadata(cx, m, "metadata"));
    let spec = top.require(cx, "spec").and_then(|s| cx.map(s, "spec", SPEC));
    let spec = spec?;

    let service = spec.require(cx, "service").and_then(|n| service_name(cx, n, "spec.service"));
    let description = spec.get("description").and_then(|n| cx.text(n, "spec.description")).map(str::to_string);
    let objective = spec.require(cx, "objective").and_then(|n| objective_percent(cx, n, "spec.objective"));
    let window = spec.require(cx, "window").and_then(|n| window(cx, n, "spec.window"));
    let budgeting = match spec.get("budgeting") {
        Some(n) => window.as_ref().and_then(|w| budgeting(cx, n, "spec.budgeting", w)),
        None => Some(Budgeting::Occurrences),
    };
    let indicator = spec.require(cx, "indicator").and_then(|n| indicator(cx, n, "spec.indicator"));
    let exclusions = match spec.get("exclusions") {
        None => Some(Vec::new()),
        Some(n) => exclusions(cx, n, &spec.path("exclusions")),
    };
    let alerting = match (&window, spec.get("alerting")) {
        (Some(w), Some(n)) => alerting(cx, n, "spec.alerting", w),
        (Some(w), None) => Some(Alerting {
            page: None,
            ticket: None,
            rules: default_rules(w),
            min_events: None,
            exhaustion_within: None,
        }),
        (None, _) => None,
    };

    let meta = meta?;
    Some(ReadSlo {
        slo: Slo {
            name: meta.name?,
            display_name: meta.display_name,
            labels: meta.labels,
            service: service?,
            description,
            objective: objective?,
            window: window?,
            budgeting: budgeting?,
            indicator: indicator?,
            alerting: alerting?,
            exclusions: exclusions?,
            origin: SpecOrigin { file: cx.file.to_string(), line: root.pos.line, api_version: API_VERSION },
        },
        name_pos: meta.name_pos,
    })
}

pub struct Metadata {
    pub name: Option<String>,
    pub name_pos: Pos,
    pub display_name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

pub fn metadata(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Metadata> {
    let m = cx.map(node, what, METADATA)?;
    Some(read_metadata(cx, &m))
}

/// `name`, `displayName` and `labels` of a metadata map (the caller decides
/// which other keys are allowed).
pub fn read_metadata(cx: &mut Ctx<'_>, m: &Fields<'_>) -> Metadata {
    let name_node = m.require(cx, "name");
    let name_pos = name_node.map_or(m.node.pos, |n| n.pos);
    let name = name_node.and_then(|n| checked_name(cx, n, &m.path("name")));
    let display_name = m.get("displayName").and_then(|n| cx.text(n, &m.path("displayName"))).map(str::to_string);
    let labels = m.get("labels").map(|n| labels(cx, n, &m.path("labels"))).unwrap_or_default();
    Metadata { name, name_pos, display_name, labels }
}

pub fn checked_name(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<String> {
    let text = cx.text(node, what)?;
    match grammar::name(text) {
        Ok(()) => Some(text.to_string()),
        Err(e) => {
            cx.value_err(node, e);
            None
        }
    }
}

/// Service names are free text but not empty and on one line.
pub fn service_name(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<String> {
    let text = cx.text(node, what)?;
    if text.trim().is_empty() || text.contains(['\n', '\r']) {
        cx.err(node.pos, format!("`{what}` must be a non-empty name on one line"));
        return None;
    }
    Some(text.to_string())
}

fn labels(cx: &mut Ctx<'_>, node: &Node, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`{what}` must be a map of strings, found {}", node.kind_name()));
        return out;
    };
    for (key, value) in entries {
        if let Err(e) = grammar::label_key(&key.text) {
            cx.err(Pos { line: key.pos.line, col: key.pos.col + e.offset }, e.message);
            continue;
        }
        let text = match &value.value {
            Value::Scalar(s) => s.text.clone(),
            Value::Seq(items) => {
                // OpenSLO allows a list of values; keep them comma-joined.
                let mut parts = Vec::new();
                for item in items {
                    if let Some(t) = cx.text(item, &format!("{what}.{}", key.text)) {
                        parts.push(t.to_string());
                    }
                }
                parts.join(",")
            }
            _ => {
                cx.err(value.pos, format!("label `{}` must be a string, found {}", key.text, value.kind_name()));
                continue;
            }
        };
        out.insert(key.text.clone(), text);
    }
    out
}

/// A percent in (0, 100), returned as a ratio.
fn objective_percent(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<f64> {
    let v = cx.number(node, what)?;
    if !(v > 0.0 && v < 100.0) {
        cx.err(node.pos, format!("`{what}` is a percent strictly between 0 and 100 (99.9 means 99.9 %), found {v}"));
        return None;
    }
    Some(to_ratio(v / 100.0))
}

/// Rounds to 12 decimals so 99.9 % is exactly the double nearest 0.999.
pub fn to_ratio(v: f64) -> f64 {
    (v * 1e12).round() / 1e12
}

/// A positive whole-minute duration in `[min, max]`.
pub fn duration_in(cx: &mut Ctx<'_>, node: &Node, what: &str, min: Minutes, max: Minutes) -> Option<Minutes> {
    let text = cx.text(node, what)?;
    match grammar::duration(text) {
        Ok(m) if m < min || m > max => {
            cx.err(node.pos, format!("`{what}` must be between {min} and {max}, found {text}"));
            None
        }
        Ok(m) => Some(m),
        Err(e) => {
            cx.value_err(node, e);
            None
        }
    }
}

fn window(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<SloWindow> {
    if let Value::Map(_) = node.value {
        let m = cx.map(node, what, &["calendar", "timezone", "start"])?;
        let unit = m.require(cx, "calendar").and_then(|n| {
            let t = cx.text(n, &m.path("calendar"))?;
            match t {
                "month" => Some(CalendarUnit::Month),
                "week" => Some(CalendarUnit::Week),
                _ => {
                    cx.err(n.pos, format!("calendar window `{t}` is not supported; use `month` or `week`"));
                    None
                }
            }
        });
        let tz = match m.get("timezone") {
            Some(n) => timezone(cx, n, &m.path("timezone")),
            None => Some(("UTC".to_string(), jiff::tz::TimeZone::UTC)),
        };
        let anchor = match m.get("start") {
            Some(n) => Some(calendar_start(cx, n, &m.path("start"), unit)?),
            None => None,
        };
        let (timezone_name, timezone) = tz?;
        return Some(SloWindow::Calendar { unit: unit?, timezone, timezone_name, anchor: anchor.flatten() });
    }
    duration_in(cx, node, what, MIN_WINDOW, MAX_WINDOW).map(SloWindow::Rolling)
}

/// Where calendar windows start, a local date and time (`2024-01-06 12:00:00`):
/// `Some(None)` when that is the default start (midnight on the 1st for
/// months, on a Monday for weeks), `Some(Some(anchor))` otherwise, `None`
/// when it is not a date and time.
pub fn calendar_start(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    unit: Option<CalendarUnit>,
) -> Option<Option<jiff::civil::DateTime>> {
    let t = cx.text(node, what)?;
    let Ok(dt) = t.trim().parse::<jiff::civil::DateTime>() else {
        cx.err(node.pos, format!("`{what}` must be a date and time like `2024-01-01 00:00:00`, found `{t}`"));
        return None;
    };
    let midnight = dt.time() == jiff::civil::Time::midnight();
    let default = match unit? {
        CalendarUnit::Month => midnight && dt.day() == 1,
        CalendarUnit::Week => midnight && dt.weekday() == jiff::civil::Weekday::Monday,
    };
    Some(if default { None } else { Some(dt) })
}

pub fn timezone(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<(String, jiff::tz::TimeZone)> {
    let name = cx.text(node, what)?;
    match jiff::tz::TimeZone::get(name) {
        Ok(tz) => Some((name.to_string(), tz)),
        Err(_) => {
            cx.err(node.pos, format!("unknown time zone `{name}`; use an IANA name such as `UTC` or `Europe/Paris`"));
            None
        }
    }
}

fn budgeting(cx: &mut Ctx<'_>, node: &Node, what: &str, window: &SloWindow) -> Option<Budgeting> {
    const FORMS: &str = "use `occurrences`, `{timeslices: {slice: 1m, good_ratio_at_least: 0.95}}` or `{ratio_timeslices: {slice: 5m}}`";
    match &node.value {
        Value::Scalar(s) if s.text == "occurrences" => Some(Budgeting::Occurrences),
        Value::Map(entries) if entries.len() == 1 => {
            let m = cx.map(node, what, &["timeslices", "ratio_timeslices"])?;
            if let Some(ts) = m.get("timeslices") {
                let p = m.path("timeslices");
                let f = cx.map(ts, &p, &["slice", "good_ratio_at_least"])?;
                let slice = f.require(cx, "slice").and_then(|n| slice(cx, n, &f.path("slice"), window));
                let ratio = f.require(cx, "good_ratio_at_least").and_then(|n| {
                    let v = cx.number(n, &f.path("good_ratio_at_least"))?;
                    if !(v > 0.0 && v <= 1.0) {
                        cx.err(n.pos, format!("`{}` is a ratio in (0, 1], found {v}", f.path("good_ratio_at_least")));
                        return None;
                    }
                    Some(v)
                });
                return Some(Budgeting::Timeslices { slice: slice?, good_ratio_at_least: ratio? });
            }
            if let Some(rt) = m.get("ratio_timeslices") {
                let p = m.path("ratio_timeslices");
                let f = cx.map(rt, &p, &["slice"])?;
                let slice = f.require(cx, "slice").and_then(|n| slice(cx, n, &f.path("slice"), window));
                return Some(Budgeting::RatioTimeslices { slice: slice? });
            }
            cx.err(node.pos, format!("`{what}` has no budgeting method; {FORMS}"));
            None
        }
        _ => {
            cx.err(node.pos, format!("`{what}` is not a budgeting method; {FORMS}"));
            None
        }
    }
}

/// A time slice: whole minutes, dividing the window (a day, for calendar
/// windows, so slices line up with midnight), at most `MAX_SLICES` per window.
pub fn slice(cx: &mut Ctx<'_>, node: &Node, what: &str, window: &SloWindow) -> Option<Minutes> {
    let s = duration_in(cx, node, what, Minutes(1), MAX_WINDOW)?;
    check_slice(cx, node, what, s, window)
}

pub fn check_slice(cx: &mut Ctx<'_>, node: &Node, what: &str, s: Minutes, window: &SloWindow) -> Option<Minutes> {
    let (span, span_name) = match window {
        SloWindow::Rolling(w) => (*w, format!("the window ({w})")),
        SloWindow::Calendar { .. } => (Minutes(1440), "a day (calendar windows)".to_string()),
    };
    if s.0 == 0 || span.0 % s.0 != 0 {
        cx.err(node.pos, format!("`{what}` ({s}) must divide {span_name} evenly"));
        return None;
    }
    if window.longest().0 / s.0 > MAX_SLICES {
        cx.err(
            node.pos,
            format!("`{what}` ({s}) cuts the window into more than {MAX_SLICES} slices; use a longer slice"),
        );
        return None;
    }
    Some(s)
}

pub fn indicator(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Indicator> {
    let m = cx.map(node, what, INDICATOR)?;
    let source = m.require(cx, "source").and_then(|n| source(cx, n, &m.path("source")));
    let filter = match m.get("filter") {
        Some(n) => filter(cx, n, &m.path("filter")),
        None => Some(Filter::default()),
    };
    let good = m.require(cx, "good").and_then(|n| good(cx, n, &m.path("good")));
    Some(Indicator { source: source?, filter: filter?, good: good?, criteria_are_bad: false })
}

pub fn source(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Origin> {
    let t = cx.text(node, what)?;
    if let Some(o) = Origin::parse(t) {
        return Some(o);
    }
    let names: Vec<&str> = Origin::ALL.iter().map(|o| o.as_str()).collect();
    let hint = closest(t, &names).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
    cx.err(node.pos, format!("unknown source `{t}`; {hint}sources: {}", names.join(", ")));
    None
}

pub fn filter(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Filter> {
    let m = cx.map(node, what, FILTER)?;
    let mut ok = true;
    let mut globs = |cx: &mut Ctx<'_>, key: &str| -> Option<Vec<Glob>> {
        let n = m.get(key)?;
        let mut out = Vec::new();
        for item in cx.one_or_many(n, &m.path(key)) {
            let Some(t) = cx.text(item, &m.path(key)) else {
                ok = false;
                continue;
            };
            match Glob::new(t) {
                Ok(g) => out.push(g),
                Err(e) => {
                    ok = false;
                    cx.err(item.pos_at(e.offset), format!("bad glob `{t}`: {}", e.message));
                }
            }
        }
        Some(out)
    };
    let service = globs(cx, "service");
    let host = globs(cx, "host");
    let path = globs(cx, "path");
    let edge_location = globs(cx, "edge_location");
    let route = globs(cx, "route");
    let hop = globs(cx, "hop");
    let method = m.get("method").map(|n| {
        let mut out = Vec::new();
        for item in cx.one_or_many(n, &m.path("method")) {
            let Some(t) = cx.text(item, &m.path("method")) else {
                ok = false;
                continue;
            };
            let upper = t.to_ascii_uppercase();
            if HTTP_METHODS.contains(&upper.as_str()) {
                out.push(upper);
            } else {
                ok = false;
                let hint = closest(&upper, &HTTP_METHODS).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
                cx.err(item.pos, format!("unknown HTTP method `{t}`; {hint}methods: {}", HTTP_METHODS.join(", ")));
            }
        }
        out
    });
    let status = match m.get("status") {
        Some(n) => {
            let s = status(cx, n, &m.path("status"));
            ok &= s.is_some();
            s
        }
        None => None,
    };
    // Names from a fixed set: regions, client classes, outcomes.
    let mut names = |cx: &mut Ctx<'_>, key: &str, allowed: &[&str]| -> Option<Vec<usize>> {
        let n = m.get(key)?;
        let mut out = Vec::new();
        for item in cx.one_or_many(n, &m.path(key)) {
            let Some(t) = cx.text(item, &m.path(key)) else {
                ok = false;
                continue;
            };
            match allowed.iter().position(|a| *a == t) {
                Some(i) => out.push(i),
                None => {
                    ok = false;
                    let hint = closest(t, allowed).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
                    cx.err(item.pos, format!("unknown {key} `{t}`; {hint}{key} is one of: {}", allowed.join(", ")));
                }
            }
        }
        Some(out)
    };
    let region_names: Vec<&str> = Region::ALL.iter().map(|r| r.as_str()).collect();
    let client_names: Vec<&str> = ClientClass::ALL.iter().map(|c| c.as_str()).collect();
    let outcome_names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let region = names(cx, "region", &region_names).map(|v| v.into_iter().map(|i| Region::ALL[i]).collect());
    let client = names(cx, "client", &client_names).map(|v| v.into_iter().map(|i| ClientClass::ALL[i]).collect());
    let outcome = names(cx, "outcome", &outcome_names).map(|v| v.into_iter().map(|i| Outcome::ALL[i]).collect());
    let cache = optional(cx, &m, "cache", &mut ok, cache_results);
    let protocol = optional(cx, &m, "protocol", &mut ok, protocols);
    let tls_version = optional(cx, &m, "tls_version", &mut ok, tls_versions);
    ok.then_some(Filter {
        service,
        host,
        path,
        method,
        edge_location,
        status,
        region,
        client,
        outcome,
        route,
        hop,
        cache,
        protocol,
        tls_version,
    })
}

/// `key` of `m` read by `read` when present; a bad value clears `ok`.
fn optional<T>(
    cx: &mut Ctx<'_>,
    m: &Fields<'_>,
    key: &str,
    ok: &mut bool,
    read: fn(&mut Ctx<'_>, &Node, &str) -> Option<T>,
) -> Option<T> {
    let v = read(cx, m.get(key)?, &m.path(key));
    *ok &= v.is_some();
    v
}

/// Cache results by name: `hit`, `miss`, `error`, `unknown` (one or a list).
fn cache_results(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<CacheResult>> {
    let parse = |t: &str| CacheResult::ALL.into_iter().find(|c| c.as_str() == t);
    one_of(cx, node, what, "cache result", "cache", &CacheResult::ALL.map(CacheResult::as_str), parse)
}

/// Viewer protocols by name, any ASCII case: `http`, `https`, `ws`, `wss`, `unknown`.
fn protocols(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<Protocol>> {
    one_of(cx, node, what, "protocol", "protocol", &Protocol::ALL.map(Protocol::as_str), Protocol::parse)
}

/// TLS versions by name, any ASCII case: `SSLv3`, `TLSv1` (or `TLSv1.0`),
/// `TLSv1.1`, `TLSv1.2`, `TLSv1.3`, `none`, `unknown`.
fn tls_versions(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<TlsVersion>> {
    one_of(cx, node, what, "TLS version", "tls_version", &TlsVersion::ALL.map(TlsVersion::as_str), TlsVersion::parse)
}

/// One name or a list of them, each read by `parse`; an unknown name is an
/// error at its position naming the `allowed` ones.
fn one_of<T>(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    noun: &str,
    key: &str,
    allowed: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = Vec::new();
    let mut ok = true;
    for item in cx.one_or_many(node, what) {
        let Some(t) = cx.text(item, what) else {
            ok = false;
            continue;
        };
        match parse(t) {
            Some(v) => out.push(v),
            None => {
                ok = false;
                let hint = closest(t, allowed).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
                cx.err(item.pos, format!("unknown {noun} `{t}`; {hint}{key} is one of: {}", allowed.join(", ")));
            }
        }
    }
    (ok && !out.is_empty()).then_some(out)
}

pub fn good(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<GoodCriteria> {
    let m = cx.map(node, what, GOOD)?;
    good_fields(cx, &m, true)
}

/// The criteria of a good (or bad) criteria map: `status`, `latency`, `cache`,
/// `protocol`, `tls_version`.
pub fn good_fields(cx: &mut Ctx<'_>, m: &Fields<'_>, need_one: bool) -> Option<GoodCriteria> {
    if need_one && !GOOD.iter().any(|k| m.has(k)) {
        cx.err(
            m.node.pos,
            format!(
                "`{}` needs at least one criterion: `status`, `latency`, `cache`, `protocol` or `tls_version`",
                m.what
            ),
        );
        return None;
    }
    let status = m.get("status").map(|n| status(cx, n, &m.path("status")));
    let latency = m.get("latency").map(|n| latency(cx, n, &m.path("latency")));
    let cache = m.get("cache").map(|n| cache_results(cx, n, &m.path("cache")));
    let protocol = m.get("protocol").map(|n| protocols(cx, n, &m.path("protocol")));
    let tls_version = m.get("tls_version").map(|n| tls_versions(cx, n, &m.path("tls_version")));
    Some(GoodCriteria {
        cache: match cache {
            Some(c) => Some(c?),
            None => None,
        },
        protocol: match protocol {
            Some(p) => Some(p?),
            None => None,
        },
        tls_version: match tls_version {
            Some(t) => Some(t?),
            None => None,
        },
        status: match status {
            Some(s) => Some(s?),
            None => None,
        },
        latency: match latency {
            Some(l) => Some(l?),
            None => None,
        },
    })
}

/// A status expression, or a YAML list of them (`[2xx, 3xx]` unquoted).
pub fn status(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<StatusSet> {
    if let Value::Seq(items) = &node.value {
        // Join into one `[a, b]` expression, remembering where each item
        // starts so an error still points into the right item.
        let mut text = String::from("[");
        let mut starts = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let t = cx.text(item, what)?;
            if i > 0 {
                text.push_str(", ");
            }
            starts.push(text.len());
            text.push_str(t);
        }
        text.push(']');
        return match StatusSet::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                let i = starts.iter().rposition(|&s| s <= e.offset).unwrap_or(0);
                match items.get(i) {
                    Some(item) if !items.is_empty() => {
                        cx.err(item.pos_at(e.offset.saturating_sub(starts[i])), format!("bad status: {}", e.message));
                    }
                    _ => cx.err(node.pos, format!("bad status: {}", e.message)),
                }
                None
            }
        };
    }
    let t = cx.text(node, what)?;
    match StatusSet::parse(t) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.err(node.pos_at(e.offset), format!("bad status `{t}`: {}", e.message));
            None
        }
    }
}

pub fn latency(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<crate::spec::model::LatencyBound> {
    let t = cx.text(node, what)?;
    match grammar::latency(t) {
        Ok(l) => Some(l),
        Err(e) => {
            cx.err(node.pos_at(e.offset), format!("bad latency `{t}`: {}", e.message));
            None
        }
    }
}

fn alerting(cx: &mut Ctx<'_>, node: &Node, what: &str, window: &SloWindow) -> Option<Alerting> {
    let m = cx.map(node, what, &["page", "ticket", "rules", "min_events", "exhaustion_within"])?;
    let min_events = match m.get("min_events") {
        None => Some(None),
        Some(n) => cx.number(n, &m.path("min_events")).and_then(|v| {
            if (0.0..=1e12).contains(&v) && v.fract() == 0.0 {
                Some(Some(v as u64))
            } else {
                cx.err(n.pos, format!("`{}` must be a whole number of events, 0 or more", m.path("min_events")));
                None
            }
        }),
    };
    let exhaustion_within = match m.get("exhaustion_within") {
        None => Some(None),
        Some(n) => duration_in(cx, n, &m.path("exhaustion_within"), Minutes(60), window.nominal()).map(Some),
    };
    let page = m.get("page").map(|n| target(cx, n, &m.path("page")));
    let ticket = m.get("ticket").map(|n| target(cx, n, &m.path("ticket")));
    let rules = match m.get("rules") {
        Some(n) => rules(cx, n, &m.path("rules")),
        None => Some(default_rules(window)),
    };
    Some(Alerting {
        page: match page {
            Some(p) => Some(p?),
            None => None,
        },
        ticket: match ticket {
            Some(t) => Some(t?),
            None => None,
        },
        rules: rules?,
        min_events: min_events?,
        exhaustion_within: exhaustion_within?,
    })
}

fn target(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<AlertTarget> {
    let m = cx.map(node, what, &["runbook"])?;
    let runbook = match m.get("runbook") {
        Some(n) => {
            let t = cx.text(n, &m.path("runbook"))?;
            if !(t.starts_with("https://") || t.starts_with("http://")) || t.contains(char::is_whitespace) {
                cx.err(n.pos, format!("`{}` must be an http:// or https:// URL, found `{t}`", m.path("runbook")));
                return None;
            }
            Some(t.to_string())
        }
        None => None,
    };
    Some(AlertTarget { runbook })
}

fn rules(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<BurnRateRule>> {
    let items = cx.list(node, what)?;
    if items.is_empty() {
        cx.err(node.pos, format!("`{what}` is empty, so nothing would ever alert; leave it out for the default rules"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{what}[{i}]");
        match rule(cx, item, &p) {
            Some(r) => out.push(r),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn rule(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<BurnRateRule> {
    let m = cx.map(node, what, &["severity", "long_window", "short_window", "burn_rate"])?;
    let severity = m.require(cx, "severity").and_then(|n| match cx.text(n, &m.path("severity"))? {
        "page" => Some(Severity::Page),
        "ticket" => Some(Severity::Ticket),
        other => {
            cx.err(n.pos, format!("unknown severity `{other}`; use `page` or `ticket`"));
            None
        }
    });
    let long_node = m.require(cx, "long_window");
    let long = long_node.and_then(|n| duration_in(cx, n, &m.path("long_window"), Minutes(1), MAX_ALERT_WINDOW));
    let short = m
        .require(cx, "short_window")
        .and_then(|n| duration_in(cx, n, &m.path("short_window"), Minutes(1), MAX_ALERT_WINDOW));
    let burn = m.require(cx, "burn_rate").and_then(|n| {
        let v = cx.number(n, &m.path("burn_rate"))?;
        if v <= 0.0 {
            cx.err(n.pos, format!("`{}` must be positive, found {v}", m.path("burn_rate")));
            return None;
        }
        Some(v)
    });
    let (long, short) = (long?, short?);
    if short >= long {
        if let Some(n) = m.get("short_window") {
            cx.err(n.pos, format!("`{}` ({short}) must be shorter than long_window ({long})", m.path("short_window")));
        }
        return None;
    }
    Some(BurnRateRule { severity: severity?, long_window: long, short_window: short, burn_rate_threshold: burn? })
}

/// `exclusions:` — one-off `{start, end, reason}` windows (RFC 3339) and
/// weekly `{weekly: {day, start: "HH:MM", duration, timezone}, reason}` slots.
fn exclusions(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Vec<Exclusion>> {
    let items = cx.list(node, what)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let what = format!("{what}[{i}]");
        match exclusion(cx, item, &what) {
            Some(e) => out.push(e),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

pub fn exclusion(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Exclusion> {
    let m = cx.map(node, what, &["start", "end", "weekly", "reason"])?;
    let reason = m.require(cx, "reason").and_then(|n| cx.text(n, &m.path("reason"))).map(str::to_string);
    let instant = |cx: &mut Ctx<'_>, key: &str| -> Option<i64> {
        let n = m.require(cx, key)?;
        let t = cx.text(n, &m.path(key))?;
        match t.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(ts.as_millisecond()),
            Err(_) => {
                cx.err(
                    n.pos,
                    format!("`{}` must be an RFC 3339 time such as 2026-11-29T02:00:00Z, found `{t}`", m.path(key)),
                );
                None
            }
        }
    };
    let when = match m.get("weekly") {
        Some(w) => {
            for key in ["start", "end"] {
                if let Some(n) = m.get(key) {
                    cx.err(
                        n.pos,
                        format!("`{}` is for one-off exclusions; a weekly one has `weekly.start`", m.path(key)),
                    );
                }
            }
            weekly(cx, w, &m.path("weekly"))
        }
        None => {
            let (start, end) = (instant(cx, "start"), instant(cx, "end"));
            match (start, end) {
                (Some(s), Some(e)) if e > s => Some(ExclusionTime::Once { start_ms: s, end_ms: e }),
                (Some(_), Some(_)) => {
                    let pos = m.get("end").map_or(node.pos, |n| n.pos);
                    cx.err(pos, format!("`{}` must be after `{}`", m.path("end"), m.path("start")));
                    None
                }
                _ => None,
            }
        }
    };
    Some(Exclusion { when: when?, reason: reason? })
}

fn weekly(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<ExclusionTime> {
    const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let m = cx.map(node, what, &["day", "start", "duration", "timezone"])?;
    let weekday = m.require(cx, "day").and_then(|n| {
        let t = cx.text(n, &m.path("day"))?;
        match DAYS.iter().position(|d| d.eq_ignore_ascii_case(t)) {
            Some(i) => Some(i as u8),
            None => {
                cx.err(n.pos, format!("`{}` must be a day of the week (monday … sunday), found `{t}`", m.path("day")));
                None
            }
        }
    });
    let start_minute = m.require(cx, "start").and_then(|n| {
        let t = cx.text(n, &m.path("start"))?;
        let parsed = t.split_once(':').and_then(|(h, mi)| {
            let (h, mi) = (h.parse::<u32>().ok()?, mi.parse::<u32>().ok()?);
            (h < 24 && mi < 60 && t.len() == 5).then_some(h * 60 + mi)
        });
        if parsed.is_none() {
            cx.err(n.pos, format!("`{}` must be a local time HH:MM such as 02:30, found `{t}`", m.path("start")));
        }
        parsed
    });
    let duration = m
        .require(cx, "duration")
        .and_then(|n| duration_in(cx, n, &m.path("duration"), Minutes(1), Minutes(7 * 1440 - 1)));
    let tz = match m.get("timezone") {
        Some(n) => timezone(cx, n, &m.path("timezone")),
        None => Some(("UTC".to_string(), jiff::tz::TimeZone::UTC)),
    };
    let (timezone_name, timezone) = tz?;
    Some(ExclusionTime::Weekly {
        weekday: weekday?,
        start_minute: start_minute?,
        duration: duration?,
        timezone,
        timezone_name,
    })
}
