use super::*;
use crate::spec::load_str;
use crate::yaml::{self, Node, Value};

/// One rule of a generated file, read back with the spec YAML reader.
#[derive(Debug, Clone, Default)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn parse(text: &str) -> Vec<Rule> {
    fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
        match &n.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn scalar(n: Option<&Node>) -> Option<String> {
        match &n?.value {
            Value::Scalar(s) => Some(s.text.clone()),
            _ => None,
        }
    }
    fn map(n: Option<&Node>) -> BTreeMap<String, String> {
        match n.map(|n| &n.value) {
            Some(Value::Map(entries)) => {
                entries.iter().filter_map(|(k, v)| Some((k.text.clone(), scalar(Some(v))?))).collect()
            }
            _ => BTreeMap::new(),
        }
    }
    let parsed = yaml::parse(text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let root = parsed.documents[0].root.as_ref().expect("a document");
    let mut out = Vec::new();
    let Some(Value::Seq(groups)) = get(root, "groups").map(|g| &g.value) else { panic!("no groups") };
    for g in groups {
        let Some(Value::Seq(rules)) = get(g, "rules").map(|r| &r.value) else { panic!("no rules") };
        for r in rules {
            out.push(Rule {
                record: scalar(get(r, "record")),
                alert: scalar(get(r, "alert")),
                expr: scalar(get(r, "expr")).unwrap_or_default(),
                labels: map(get(r, "labels")),
                annotations: map(get(r, "annotations")),
            });
        }
    }
    out
}

fn rules_for(spec: &str) -> Generated {
    let set = load_str("t.yaml", spec).unwrap_or_else(|d| panic!("{d:?}"));
    generate_for_set(&set)
}

const AVAILABILITY: &str = r#"
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: web-availability, labels: {team: web, severity: low}}
spec:
  service: web
  objective: 99.9
  window: 30d
  indicator: {source: cloudfront, good: {status: "< 500"}}
  alerting:
    page: {runbook: "https://runbooks.example.com/web"}
"#;

#[test]
fn occurrences_slo_gets_sloth_recordings_and_both_severities() {
    let g = rules_for(AVAILABILITY);
    assert!(g.skipped.is_empty());
    let text = &g.files["web.rules.yaml"];
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        assert!(text.contains(&format!("record: slo:sli_error:ratio_rate{w}\n")), "{w}\n{text}");
    }
    assert!(
        text.contains("sum(increase(slo_agent_slo_good_events_total{slo=\"web-availability\",service=\"web\"}[30d]))")
    );
    // The Workbook's page thresholds for a 30-day window.
    assert!(text.contains("slo:sli_error:ratio_rate1h{sloth_id=\"web-web-availability\"} > (14.4 * 0.001)"));
    assert!(text.contains("slo:sli_error:ratio_rate6h{sloth_id=\"web-web-availability\"} > (6 * 0.001)"));
    assert!(text.contains("slo:sli_error:ratio_rate3d{sloth_id=\"web-web-availability\"} > (1 * 0.001)"));
    assert!(text.contains("runbook_url: \"https://runbooks.example.com/web\""));
    // The SRE's `severity` label wins over page / ticket; `sloth_severity` tells them apart.
    let rules = parse(text);
    let alerts: Vec<&Rule> = rules.iter().filter(|r| r.alert.is_some()).collect();
    assert_eq!(alerts.len(), 2);
    for (a, sev) in alerts.iter().zip(["page", "ticket"]) {
        assert_eq!(a.labels["severity"], "low", "{a:?}");
        assert_eq!(a.labels["sloth_severity"], sev, "{a:?}");
        assert_eq!(a.labels["team"], "web", "{a:?}");
    }
}

/// Sloth's label sets: every recorded series carries the spec's labels and the
/// ids; the ratios and burn rates their `sloth_window`; `sloth_slo_info` the
/// spec format, mode, objective and version.
#[test]
fn every_recorded_series_carries_sloths_label_set() {
    let text = &rules_for(AVAILABILITY).files["web.rules.yaml"];
    let rules = parse(text);
    let records: Vec<&Rule> = rules.iter().filter(|r| r.record.is_some()).collect();
    assert_eq!(records.len(), 8 + 6 + 1);
    for r in &records {
        let name = r.record.as_deref().unwrap_or_default();
        assert_eq!(r.labels["team"], "web", "{name}");
        assert_eq!(r.labels["severity"], "low", "{name}");
        assert_eq!(r.labels["sloth_id"], "web-web-availability", "{name}");
        assert_eq!(r.labels["sloth_service"], "web", "{name}");
        assert_eq!(r.labels["sloth_slo"], "web-availability", "{name}");
        let window = r.labels.get("sloth_window").map(String::as_str);
        if let Some(w) = name.strip_prefix("slo:sli_error:ratio_rate") {
            assert_eq!(window, Some(w));
        } else {
            // Burn rates keep the window of the ratio they divide (from the
            // expression, as Sloth's do); the static labels never set it.
            assert_eq!(window, None, "{name}");
        }
    }
    let burn = records.iter().find(|r| r.record.as_deref() == Some("slo:current_burn_rate:ratio")).unwrap();
    assert_eq!(burn.expr, "slo:sli_error:ratio_rate5m{sloth_id=\"web-web-availability\"} / 0.001");
    let info = records.iter().find(|r| r.record.as_deref() == Some("sloth_slo_info")).unwrap();
    assert_eq!(info.labels["sloth_spec"], "slo-agent/v1");
    assert_eq!(info.labels["sloth_mode"], "cli-gen-prom");
    assert_eq!(info.labels["sloth_objective"], "99.9");
    assert_eq!(info.labels["sloth_version"], GENERATOR_VERSION);
}

#[test]
fn custom_rules_add_their_windows_and_keep_their_thresholds() {
    let spec = AVAILABILITY.replace(
        "    page: {runbook: \"https://runbooks.example.com/web\"}\n",
        "    rules:\n      - {severity: page, long_window: 4h, short_window: 20m, burn_rate: 10}\n",
    );
    let g = rules_for(&spec);
    let text = &g.files["web.rules.yaml"];
    assert!(text.contains("record: slo:sli_error:ratio_rate4h\n"));
    assert!(text.contains("record: slo:sli_error:ratio_rate20m\n"));
    assert!(text.contains("ratio_rate4h{sloth_id=\"web-web-availability\"} > (10 * 0.001)"));
    assert!(!text.contains("severity: \"ticket\""), "no ticket rule, no ticket alert");
    assert!(!text.contains("runbook_url"));
}

#[test]
fn timeslice_slos_are_skipped_with_a_reason() {
    let spec = AVAILABILITY.replace(
        "  window: 30d\n",
        "  window: 30d\n  budgeting: {timeslices: {slice: 1m, good_ratio_at_least: 0.95}}\n",
    );
    let g = rules_for(&spec);
    assert!(g.files.is_empty());
    assert_eq!(g.skipped.len(), 1);
    assert!(g.skipped[0].reason.contains("timeslice"), "{:?}", g.skipped);
}

#[test]
fn output_is_deterministic_and_grouped_per_service() {
    let two = format!(
        "{AVAILABILITY}---{}",
        AVAILABILITY.replace("web-availability", "api-availability").replace("service: web", "service: api")
    );
    let a = rules_for(&two);
    let b = rules_for(&two);
    assert_eq!(a, b);
    assert_eq!(a.files.keys().collect::<Vec<_>>(), ["api.rules.yaml", "web.rules.yaml"]);
}

const SLOTH: &str = include_str!("../../tests/fixtures/sloth/shop-api.yaml");
const PAYMENTS: &str = include_str!("../../tests/fixtures/sloth/payments.yaml");

/// The recording rule `name` of SLO `slo`.
fn record<'a>(rules: &'a [Rule], name: &str, slo: &str) -> &'a Rule {
    rules
        .iter()
        .find(|r| r.record.as_deref() == Some(name) && r.labels["sloth_slo"] == slo)
        .unwrap_or_else(|| panic!("no {name} for {slo}"))
}

fn sloth_rules(name: &str, spec: &str) -> Vec<Rule> {
    let slos = sloth::read(name, spec, sloth::DEFAULT_PERIOD).unwrap_or_else(|d| panic!("{d:?}"));
    generate(&slos).values().flat_map(|text| parse(text)).collect()
}

#[test]
fn sloth_specs_give_rules_over_their_own_queries() {
    let slos = sloth::read("shop-api.yaml", SLOTH, sloth::DEFAULT_PERIOD).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(
        slos.iter().map(|s| s.id()).collect::<Vec<_>>(),
        ["shop-api-requests-availability", "shop-api-queue-latency"]
    );
    let files = generate(&slos);
    let text = &files["shop-api.rules.yaml"];
    // The events SLI: error / total, the window put into both queries.
    assert!(text.contains("sum(rate(http_requests_total{job=\"shop-api\",code=~\"5..\"}[1h]))"), "{text}");
    // 30 days: the Workbook's own thresholds, times Sloth's error budget.
    assert!(
        text.contains("ratio_rate1h{sloth_id=\"shop-api-requests-availability\"} > (14.4 * 0.0009999999999999432)")
    );
    assert!(text.contains("ratio_rate1h{sloth_id=\"shop-api-queue-latency\"} > (14.4 * 0.01)"));
    assert_eq!(text.matches("alert: \"ShopApiHighErrorRate\"").count(), 2, "page and ticket");
    assert!(text.contains("routing_key: \"shop-oncall\""));
    assert!(text.contains("runbook: \"https://runbooks.example.com/shop-api/errors\""));
    assert!(text.contains("owner: \"platform\""));
    // queue-latency: its ticket alert is disabled.
    assert_eq!(text.matches("alert: \"SloErrorBudgetBurnTicket\"").count(), 0);
    assert_eq!(text.matches("alert: \"SloErrorBudgetBurnPage\"").count(), 1);
}

/// Sloth's semantics: `sloth_severity` always; the spec's labels as given,
/// `severity` included; `severity: page|ticket` only when the spec sets none.
#[test]
fn sloth_alerts_keep_the_teams_severity() {
    let rules = sloth_rules("payments.yaml", PAYMENTS);
    let alert = |name: &str, sev: &str| {
        rules
            .iter()
            .find(|r| r.alert.as_deref() == Some(name) && r.labels["sloth_severity"] == sev)
            .unwrap_or_else(|| panic!("no {sev} alert {name}"))
    };
    let page = alert("slo_payments-authorizations_fail", "page");
    assert_eq!(page.labels["severity"], "pageteam");
    assert_eq!(page.labels["routing_key"], "payments-oncall");
    assert_eq!(page.labels["category"], "availability");
    assert_eq!(page.labels["tier"], "1", "a number as a label value");
    assert_eq!(page.labels["pci"], "true", "a boolean as a label value");
    assert_eq!(page.annotations["summary"], "Card authorizations are failing");
    assert_eq!(page.annotations["runbook"], "https://runbooks.example.com/payments/authorizations");
    let ticket = alert("slo_payments-authorizations_fail", "ticket");
    assert_eq!(ticket.labels["severity"], "slack");
    assert_eq!(ticket.labels["slack_channel"], "#payments-alerts");
    assert!(!ticket.labels.contains_key("routing_key"));
    assert_eq!(alert("slo_payments-card-check_slow", "page").labels["severity"], "critical");
    assert_eq!(alert("slo_payments-card-check_slow", "ticket").labels["severity"], "warning");

    // No `severity` anywhere in the spec: the generator's.
    let rules = sloth_rules("shop-api.yaml", SLOTH);
    let page = rules.iter().find(|r| r.alert.as_deref() == Some("SloErrorBudgetBurnPage")).unwrap();
    assert_eq!((page.labels["severity"].as_str(), page.labels["sloth_severity"].as_str()), ("page", "page"));
    assert_eq!(
        page.annotations["summary"],
        "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected."
    );
    assert_eq!(
        page.annotations["title"],
        "(page) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast."
    );
}

/// Sloth's floating-point figures, digit for digit: objective 99.9 is
/// 0.9990000000000001, the error budget series 1 − that, the alert budget
/// (100 − 99.9) / 100; the burn factors unrounded.
#[test]
fn sloth_specs_get_sloths_arithmetic() {
    let rules = sloth_rules("payments.yaml", PAYMENTS);
    let record = |name: &str, slo: &str| record(&rules, name, slo);
    let slo = "authorizations-availability";
    assert_eq!(record("slo:objective:ratio", slo).expr, "vector(0.9990000000000001)");
    assert_eq!(record("slo:error_budget:ratio", slo).expr, "vector(0.0009999999999998899)");
    assert_eq!(record("sloth_slo_info", slo).labels["sloth_objective"], "99.9");
    assert_eq!(record("sloth_slo_info", slo).labels["sloth_spec"], "prometheus/v1");
    let page = rules.iter().find(|r| r.alert.is_some() && r.labels["sloth_slo"] == slo).unwrap();
    assert!(page.expr.contains("> (14.4 * 0.0009999999999999432)"), "{}", page.expr);
    assert!(page.expr.contains("> (6 * 0.0009999999999999432)"), "{}", page.expr);

    let f =
        |p: u32| sloth::burn_rate_rules(Minutes(p * 1440)).iter().map(|r| r.burn_rate_threshold).collect::<Vec<_>>();
    assert_eq!(f(30), [14.4, 6.0, 3.0, 1.0]);
    // Sloth's 28-day factors: 2 × 672 / 100, 5 × 672 / 100 / 6, …, unrounded.
    assert_eq!(
        f(28),
        [2.0 * 672.0 / 100.0, 5.0 * 672.0 / 100.0 / 6.0, 10.0 * 672.0 / 100.0 / 24.0, 10.0 * 672.0 / 100.0 / 72.0]
    );
}

/// The period ratio: exact from the queries for counters (events SLIs); the
/// average of the recorded 5m ratios for raw ratios and for subqueries,
/// whose queries over 30 days would cost tens of thousands of inner steps.
#[test]
fn period_ratio_is_exact_for_counters_and_averaged_otherwise() {
    let rules = sloth_rules("payments.yaml", PAYMENTS);
    let period = |slo: &str| record(&rules, "slo:sli_error:ratio_rate30d", slo).expr.clone();
    assert!(period("authorizations-availability").contains("[30d]))"), "{}", period("authorizations-availability"));
    let raw = period("card-check-latency");
    assert_eq!(
        raw,
        "sum_over_time(slo:sli_error:ratio_rate5m{sloth_id=\"payments-card-check-latency\"}[30d])\n/\n\
         count_over_time(slo:sli_error:ratio_rate5m{sloth_id=\"payments-card-check-latency\"}[30d])"
    );

    let gauges = include_str!("../../tests/fixtures/sloth/edge-gauges.yaml");
    let rules = sloth_rules("edge-gauges.yaml", gauges);
    let sub = rules
        .iter()
        .find(|r| {
            r.record.as_deref() == Some("slo:sli_error:ratio_rate30d") && r.labels["sloth_slo"] == "origin-health"
        })
        .unwrap();
    assert!(sub.expr.starts_with("sum_over_time(slo:sli_error:ratio_rate5m{"), "{}", sub.expr);
    assert!(!rules.iter().any(|r| r.expr.contains("[30d:]")), "no 30-day subquery");
    // Still a subquery over the alert windows: that is the SLI.
    assert!(rules.iter().any(|r| r.expr.contains("[3d:]")));
}

#[test]
fn sloth_alert_names_are_any_label_value() {
    let spec = PAYMENTS.replace("slo_payments-authorizations_fail", "\"Payments: authorizations fail (5xx)\"");
    let rules = sloth_rules("payments.yaml", &spec);
    assert!(rules.iter().any(|r| r.alert.as_deref() == Some("Payments: authorizations fail (5xx)")));
    let empty = PAYMENTS.replace("name: slo_payments-authorizations_fail", "name: \"  \"");
    let d = sloth::read("payments.yaml", &empty, sloth::DEFAULT_PERIOD).unwrap_err();
    assert!(d[0].to_string().contains("`slos[0].alerting.name` is empty"), "{d:?}");
}

#[test]
fn sloth_problems_are_reported_with_positions() {
    let bad = "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: sum(rate(x[5m]))\n        total_query: sum(rate(y[{{.window}}]))\n      plugin: {id: x}\n";
    let d = sloth::read("bad.yaml", bad, sloth::DEFAULT_PERIOD).unwrap_err();
    let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert!(msgs.iter().any(|m| m.starts_with("bad.yaml:10:") && m.contains("plugins are not supported")), "{msgs:?}");
    let other = "version: prometheus/v2\nservice: s\nslos: []\n";
    let d = sloth::read("v2.yaml", other, sloth::DEFAULT_PERIOD).unwrap_err();
    assert!(d[0].to_string().contains("unsupported Sloth spec version"), "{d:?}");
    let plugins = "version: prometheus/v1\nservice: s\nslo_plugins: {chain: []}\nslos:\n  - name: a\n    objective: 99\n    plugins: {chain: []}\n    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n";
    let d = sloth::read("p.yaml", plugins, sloth::DEFAULT_PERIOD).unwrap_err();
    let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].starts_with("p.yaml:3:14: `slo_plugins`: Sloth SLO plugins are not supported"), "{msgs:?}");
    assert!(msgs[1].starts_with("p.yaml:7:14: `slos[0].plugins`: Sloth SLO plugins are not supported"), "{msgs:?}");
    let crd = "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nspec: {service: s, slos: []}\n";
    let d = sloth::read("k8s.yaml", crd, sloth::DEFAULT_PERIOD).unwrap_err();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].to_string().starts_with("k8s.yaml:2:1: a Kubernetes `PrometheusServiceLevel` object"), "{d:?}");
}

#[test]
fn openslo_specs_are_named_in_the_info_series() {
    let spec = r#"
apiVersion: openslo/v1
kind: SLO
metadata: {name: search-errors, labels: {severity: critical}}
spec:
  service: search
  indicator:
    metadata: {name: s}
    spec:
      ratioMetric:
        good: {metricSource: {type: slo-agent, spec: {good: {status: "< 500"}}}}
        total: {metricSource: {type: slo-agent, spec: {source: apigateway}}}
  budgetingMethod: Occurrences
  objectives: [{op: gt, target: 0.995}]
"#;
    let rules = parse(&rules_for(spec).files["search.rules.yaml"]);
    let info = rules.iter().find(|r| r.record.as_deref() == Some("sloth_slo_info")).unwrap();
    assert_eq!(info.labels["sloth_spec"], "openslo/v1");
    assert_eq!(info.labels["sloth_mode"], "cli-gen-openslo");
    let days = rules.iter().find(|r| r.record.as_deref() == Some("slo:time_period:days")).unwrap();
    assert_eq!(days.expr, "vector(28)", "no timeWindow: a rolling 28 days");
    for a in rules.iter().filter(|r| r.alert.is_some()) {
        assert_eq!(a.labels["severity"], "critical");
    }
}

/// A synthetic SLO (measured by agents in several regions) also records its
/// error ratio per region and the share of regions failing; others do not.
#[test]
fn synthetic_slos_record_per_region_and_the_share_of_regions_failing() {
    let g = rules_for(
        r#"
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: storefront-edge}
spec:
  service: storefront
  objective: 99.9
  window: 28d
  indicator: {source: synthetic, filter: {service: storefront, hop: edge}, good: {status: 2xx}}
"#,
    );
    let rules = parse(&g.files["storefront.rules.yaml"]);
    let by_region = record(&rules, "slo:sli_error_by_region:ratio_rate5m", "storefront-edge");
    assert!(
        by_region.expr.contains(
            "sum by (region) (increase(slo_agent_slo_good_events_total{slo=\"storefront-edge\",service=\"storefront\"}[5m]))"
        ),
        "{by_region:?}"
    );
    assert_eq!(by_region.labels["sloth_window"], "5m");
    let failing = record(&rules, "slo:regions_failing:ratio", "storefront-edge");
    assert_eq!(
        failing.expr,
        "(count(slo:sli_error_by_region:ratio_rate5m{sloth_id=\"storefront-storefront-edge\"} > 0.5) or vector(0))\n/\ncount(slo:sli_error_by_region:ratio_rate5m{sloth_id=\"storefront-storefront-edge\"})"
    );
    assert_eq!(failing.labels["sloth_id"], "storefront-storefront-edge");
    let other = rules_for(AVAILABILITY);
    assert!(!other.files["web.rules.yaml"].contains("by_region"));
}
