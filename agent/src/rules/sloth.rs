//! Sloth `prometheus/v1` spec files, read into [`RuleSlo`]s so their SLIs get
//! the same rules as the agent's own SLOs.
//!
//! Supported: `service`, `labels`, `slos[].name`, `objective`, `description`,
//! `labels`, `sli.events.error_query` / `total_query`,
//! `sli.raw.error_ratio_query`, and `alerting.name`, `labels`, `annotations`,
//! `page_alert` / `ticket_alert` (`disable`, `labels`, `annotations`).
//! `sli.plugin`, `slo_plugins` and `plugins` are refused with a message saying
//! what to do instead: plugins are Go code inside Sloth. The period is 30 days
//! (Sloth's default) unless the caller passes another.
//!
//! **Architecture invariant:** like the spec readers, this never panics on
//! input and reports every problem as `file:line:col`.

use std::collections::BTreeMap;

use crate::rules::{AlertExtras, ErrorRatio, RuleSlo};
use crate::spec::Diagnostic;
use crate::spec::model::{BurnRateRule, Minutes, Severity, WORKBOOK_RULES};
use crate::yaml::fields::{Ctx, Fields};
use crate::yaml::{self, Node, Value};

pub const VERSION: &str = "prometheus/v1";

/// Sloth's default SLO period.
pub const DEFAULT_PERIOD: Minutes = Minutes(30 * 1440);

/// Reads every document of a Sloth spec file.
pub fn read(file: &str, text: &str, period: Minutes) -> Result<Vec<RuleSlo>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut out = Vec::new();
    let parsed = yaml::parse(text);
    {
        let mut cx = Ctx { file, diags: &mut diags };
        for e in &parsed.errors {
            cx.err(e.pos, e.message.clone());
        }
        if !parsed.syntax_error {
            for doc in &parsed.documents {
                let Some(root) = doc.root.as_ref().filter(|r| r.value != Value::Null) else { continue };
                document(&mut cx, root, period, &mut out);
            }
        }
    }
    if diags.is_empty() { Ok(out) } else { Err(diags) }
}

fn document(cx: &mut Ctx<'_>, root: &Node, period: Minutes, out: &mut Vec<RuleSlo>) {
    if let Value::Map(entries) = &root.value
        && let Some((key, kind)) = entries.iter().find(|(k, _)| k.text == "kind")
    {
        let kind = match &kind.value {
            Value::Scalar(s) => s.text.as_str(),
            _ => "",
        };
        cx.err(
            key.pos,
            format!(
                "a Kubernetes `{kind}` object is not a Sloth spec file; copy its `spec:` into a file with \
                 `version: {VERSION}` (the same fields)"
            ),
        );
        return;
    }
    let Some(top) = cx.map(root, "document", &["version", "service", "labels", "slo_plugins", "slos"]) else { return };
    if let Some(n) = top.get("slo_plugins") {
        slo_plugins(cx, n, "slo_plugins");
    }
    let version = top.require(cx, "version").and_then(|n| cx.text(n, "version"));
    if let (Some(v), Some(n)) = (version, top.get("version"))
        && v != VERSION
    {
        cx.err(n.pos, format!("unsupported Sloth spec version `{v}`; supported: {VERSION}"));
        return;
    }
    let service = top.require(cx, "service").and_then(|n| cx.text(n, "service")).map(str::to_string);
    let labels = top.get("labels").map(|n| string_map(cx, n, "labels")).unwrap_or_default();
    let Some(slos) = top.require(cx, "slos").and_then(|n| cx.list(n, "slos")) else { return };
    let Some(service) = service else { return };
    for (i, n) in slos.iter().enumerate() {
        if let Some(s) = slo(cx, n, &format!("slos[{i}]"), &service, &labels, period) {
            out.push(s);
        }
    }
}

fn slo(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    service: &str,
    service_labels: &BTreeMap<String, String>,
    period: Minutes,
) -> Option<RuleSlo> {
    let m = cx.map(node, what, &["name", "objective", "description", "labels", "plugins", "sli", "alerting"])?;
    if let Some(n) = m.get("plugins") {
        slo_plugins(cx, n, &m.path("plugins"));
    }
    let name = m.require(cx, "name").and_then(|n| cx.text(n, &m.path("name"))).map(str::to_string);
    let objective = m.require(cx, "objective").and_then(|n| {
        let v = cx.number(n, &m.path("objective"))?;
        if !(v > 0.0 && v < 100.0) {
            cx.err(n.pos, format!("`{}` is a percent strictly between 0 and 100, found {v}", m.path("objective")));
            return None;
        }
        Some(v)
    });
    let description = m.get("description").and_then(|n| cx.text(n, &m.path("description"))).map(str::to_string);
    let mut labels = service_labels.clone();
    if let Some(n) = m.get("labels") {
        labels.extend(string_map(cx, n, &m.path("labels")));
    }
    let error_ratio = m.require(cx, "sli").and_then(|n| sli(cx, n, &m.path("sli")));
    let mut rules = burn_rate_rules(period);
    let (page, ticket) = match m.get("alerting") {
        Some(n) => alerting(cx, n, &m.path("alerting"), &mut rules)?,
        None => Default::default(),
    };
    Some(RuleSlo {
        service: service.to_string(),
        name: name?,
        objective: objective? / 100.0,
        objective_percent: objective?,
        period,
        error_ratio: error_ratio?,
        rules,
        page,
        ticket,
        labels,
        description,
        file: cx.file.to_string(),
        spec: VERSION,
        per_region: false,
    })
}

/// The Workbook's four rules for `period`, with the burn factors computed as
/// Sloth computes them (`budget % × period hours / 100 / long-window hours`,
/// unrounded), so thresholds match Sloth's to the last bit.
pub fn burn_rate_rules(period: Minutes) -> Vec<BurnRateRule> {
    WORKBOOK_RULES
        .iter()
        .filter(|(_, long, _, _)| *long <= period)
        .map(|&(severity, long, short, fraction)| {
            let percent = (fraction * 100.0).round();
            BurnRateRule {
                severity,
                long_window: long,
                short_window: short,
                burn_rate_threshold: percent * period.hours() / 100.0 / long.hours(),
            }
        })
        .collect()
}

/// Sloth SLO plugins (`slo_plugins` on the document, `plugins` on an SLO) are
/// Go code that Sloth runs on its rules; refused, with what to do instead.
fn slo_plugins(cx: &mut Ctx<'_>, node: &Node, what: &str) {
    cx.err(
        node.pos,
        format!(
            "`{what}`: Sloth SLO plugins are not supported (they are Go code run inside Sloth); remove it. \
             slo-agent always writes what Sloth's default chain does (SLI, metadata and alert rules); \
             put extra labels in `labels`, and change anything else in the written rule files"
        ),
    );
}

fn sli(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<ErrorRatio> {
    let m = cx.map(node, what, &["events", "raw", "plugin"])?;
    if let Some(n) = m.get("plugin") {
        cx.err(n.pos, format!("`{}`: Sloth SLI plugins are not supported; use `events` or `raw`", m.path("plugin")));
        return None;
    }
    match (m.get("events"), m.get("raw")) {
        (Some(e), None) => {
            let em = cx.map(e, &m.path("events"), &["error_query", "total_query"])?;
            let q = |cx: &mut Ctx<'_>, em: &Fields<'_>, key: &str| {
                em.require(cx, key).and_then(|n| query(cx, n, &em.path(key)))
            };
            let error_query = q(cx, &em, "error_query");
            let total_query = q(cx, &em, "total_query");
            Some(ErrorRatio::Events { error_query: error_query?, total_query: total_query? })
        }
        (None, Some(r)) => {
            let rm = cx.map(r, &m.path("raw"), &["error_ratio_query"])?;
            let q = rm.require(cx, "error_ratio_query").and_then(|n| query(cx, n, &rm.path("error_ratio_query")))?;
            Some(ErrorRatio::Raw { error_ratio_query: q })
        }
        _ => {
            cx.err(node.pos, format!("`{what}` needs exactly one of `events` and `raw`"));
            None
        }
    }
}

/// A query must take the window: without `{{.window}}` every window would give the same ratio.
fn query(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<String> {
    let q = cx.text(node, what)?;
    if !(q.contains("{{.window}}") || q.contains("{{ .window }}")) {
        cx.err(node.pos, format!("`{what}` must use `{{{{.window}}}}` as its range, as Sloth queries do"));
        return None;
    }
    Some(q.to_string())
}

fn alerting(
    cx: &mut Ctx<'_>,
    node: &Node,
    what: &str,
    rules: &mut Vec<BurnRateRule>,
) -> Option<(AlertExtras, AlertExtras)> {
    let m = cx.map(node, what, &["name", "labels", "annotations", "page_alert", "ticket_alert"])?;
    // Prometheus takes any label value as an alert name (`alertname` is a
    // label), and so does Sloth: `slo_foo-bar_latency_fail` is fine.
    let name = match m.get("name") {
        Some(n) => {
            let t = cx.text(n, &m.path("name"))?;
            if t.trim().is_empty() {
                cx.err(n.pos, format!("`{}` is empty; give an alert name or leave the field out", m.path("name")));
                return None;
            }
            Some(t.to_string())
        }
        None => None,
    };
    let labels = m.get("labels").map(|n| string_map(cx, n, &m.path("labels"))).unwrap_or_default();
    let annotations = m.get("annotations").map(|n| string_map(cx, n, &m.path("annotations"))).unwrap_or_default();
    let mut per = |key: &str, severity: Severity| -> Option<AlertExtras> {
        let mut extras = AlertExtras { name: name.clone(), labels: labels.clone(), annotations: annotations.clone() };
        let Some(n) = m.get(key) else { return Some(extras) };
        let am = cx.map(n, &m.path(key), &["disable", "labels", "annotations"])?;
        if let Some(d) = am.get("disable")
            && cx.boolean(d, &am.path("disable"))?
        {
            rules.retain(|r| r.severity != severity);
        }
        if let Some(l) = am.get("labels") {
            extras.labels.extend(string_map(cx, l, &am.path("labels")));
        }
        if let Some(a) = am.get("annotations") {
            extras.annotations.extend(string_map(cx, a, &am.path("annotations")));
        }
        Some(extras)
    };
    let page = per("page_alert", Severity::Page);
    let ticket = per("ticket_alert", Severity::Ticket);
    Some((page?, ticket?))
}

fn string_map(cx: &mut Ctx<'_>, node: &Node, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Value::Map(entries) = &node.value else {
        cx.err(node.pos, format!("`{what}` must be a map, found {}", node.kind_name()));
        return out;
    };
    for (k, v) in entries {
        if let Some(t) = cx.text(v, &format!("{what}.{}", k.text)) {
            out.insert(k.text.clone(), t.to_string());
        }
    }
    out
}
