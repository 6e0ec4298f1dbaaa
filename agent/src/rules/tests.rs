use super::*;
use crate::spec::load_str;

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
    assert!(text.contains("severity: \"page\""));
    assert!(text.contains("severity: \"ticket\""));
    assert!(text.contains("runbook_url: \"https://runbooks.example.com/web\""));
    assert!(text.contains("team: \"web\""));
    assert!(!text.contains("severity: \"low\""), "the generator owns `severity`");
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
    assert!(text.contains("sum(rate(queue_job_duration_seconds_count[30d]))"));
    // 30 days: the Workbook's own thresholds.
    assert!(text.contains("ratio_rate1h{sloth_id=\"shop-api-requests-availability\"} > (14.4 * 0.001)"));
    assert!(text.contains("ratio_rate1h{sloth_id=\"shop-api-queue-latency\"} > (14.4 * 0.01)"));
    assert_eq!(text.matches("alert: \"ShopApiHighErrorRate\"").count(), 2, "page and ticket");
    assert!(text.contains("routing_key: \"shop-oncall\""));
    assert!(text.contains("runbook: \"https://runbooks.example.com/shop-api/errors\""));
    assert!(text.contains("owner: \"platform\""));
    // queue-latency: its ticket alert is disabled.
    assert_eq!(text.matches("alert: \"SloErrorBudgetBurnTicket\"").count(), 0);
    assert_eq!(text.matches("alert: \"SloErrorBudgetBurnPage\"").count(), 1);
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
}
