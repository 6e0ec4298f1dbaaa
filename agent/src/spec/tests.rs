//! Spec readers at their boundary: YAML text in, `SloSet` or
//! `file:line:col: message` lines out.

use super::*;
use crate::event::Origin;
use crate::spec::model::*;

const CHECKOUT: &str = r#"apiVersion: slo-agent/v1
kind: SLO
metadata:
  name: checkout-availability
  labels: {team: payments, tier: "1"}
spec:
  service: checkout
  description: Checkout answers without server errors
  objective: 99.9            # percent
  window: 28d                # rolling; also calendar windows: {calendar: month, timezone: UTC}
  budgeting: occurrences     # or {timeslices: {slice: 1m, good_ratio_at_least: 0.95}}
  indicator:
    source: cloudfront       # cloudfront | cloudfront-realtime | apigateway | lambda | synthetic | otlp | cloudwatch | ndjson
    filter:                  # all must match; a list means any of
      host: shop.example.com
      path: ["/checkout*", "/api/cart/*"]   # globs
      method: [GET, POST]
    good:                    # an event is good when all hold
      status: "< 500"        # also ">= 200", "2xx", "[2xx, 3xx]", "[200, 204]"
      latency: "<= 800ms"    # the source's own latency
  alerting:
    page:   {runbook: "https://runbooks.example.com/checkout"}
    ticket: {runbook: "https://runbooks.example.com/checkout"}
"#;

fn errors(file: &str, text: &str) -> Vec<String> {
    match load_str(file, text) {
        Ok(set) => panic!("expected errors, loaded {} SLOs", set.slos.len()),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_reference_document_means_what_it_says() {
    let set = load_str("checkout.yaml", CHECKOUT).unwrap();
    assert_eq!(set.slos.len(), 1);
    let s = &set.slos[0];
    assert_eq!(s.name, "checkout-availability");
    assert_eq!(s.display_name, None);
    assert_eq!(s.labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(s.labels.get("tier").map(String::as_str), Some("1"));
    assert_eq!(s.service, "checkout");
    assert_eq!(s.description.as_deref(), Some("Checkout answers without server errors"));
    assert_eq!(s.objective, 0.999);
    assert!((s.error_budget_ratio() - 0.001).abs() < 1e-12);
    assert_eq!(s.window, SloWindow::Rolling(Minutes(28 * 1440)));
    assert_eq!(s.budgeting, Budgeting::Occurrences);
    let ind = &s.indicator;
    assert_eq!(ind.source, Origin::CloudFront);
    assert!(!ind.criteria_are_bad);
    let f = &ind.filter;
    let globs = |g: &Option<Vec<crate::spec::glob::Glob>>| -> Vec<String> {
        g.iter().flatten().map(|g| g.as_str().to_string()).collect()
    };
    assert_eq!(globs(&f.host), ["shop.example.com"]);
    assert_eq!(globs(&f.path), ["/checkout*", "/api/cart/*"]);
    assert_eq!(f.method, Some(vec!["GET".to_string(), "POST".to_string()]));
    assert_eq!((f.service.clone(), f.edge_location.clone(), f.status.clone()), (None, None, None));
    let status = ind.good.status.as_ref().unwrap();
    assert!(status.contains(499) && !status.contains(500));
    assert_eq!(ind.good.latency, Some(LatencyBound { op: CompareOp::Le, threshold_ms: 800.0 }));
    let runbook = Some(AlertTarget { runbook: Some("https://runbooks.example.com/checkout".into()) });
    assert_eq!(s.alerting.page, runbook);
    assert_eq!(s.alerting.ticket, runbook);
    assert_eq!(s.alerting.rules, default_rules(&s.window));
    // 28 days: 2 % of the budget in 1 h is a burn rate of 0.02 × 672 / 1.
    assert_eq!(s.alerting.rules[0].burn_rate_threshold, 13.44);
    assert_eq!(s.origin, SpecOrigin { file: "checkout.yaml".into(), line: 1, api_version: "slo-agent/v1" });
}

fn native(spec_lines: &str) -> String {
    format!(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata:\n  name: a\nspec:\n  service: s\n  objective: 99\n{spec_lines}"
    )
}

const IND: &str = "  indicator: {source: apigateway, good: {status: \"< 500\"}}\n";

#[test]
fn calendar_timeslices_and_rules() {
    let text = native(&format!(
        "  window: {{calendar: month, timezone: Europe/Paris}}\n  budgeting: {{timeslices: {{slice: 5m, good_ratio_at_least: 0.95}}}}\n{IND}  alerting:\n    rules:\n      - {{severity: page, long_window: 1h, short_window: 5m, burn_rate: 14.4}}\n"
    ));
    let set = load_str("t.yaml", &text).unwrap();
    let s = &set.slos[0];
    let SloWindow::Calendar { unit, timezone_name, .. } = &s.window else { panic!("{:?}", s.window) };
    assert_eq!((*unit, timezone_name.as_str()), (CalendarUnit::Month, "Europe/Paris"));
    assert_eq!(s.budgeting, Budgeting::Timeslices { slice: Minutes(5), good_ratio_at_least: 0.95 });
    assert_eq!(
        s.alerting.rules,
        [BurnRateRule {
            severity: Severity::Page,
            long_window: Minutes(60),
            short_window: Minutes(5),
            burn_rate_threshold: 14.4
        }]
    );
    let text = native(&format!("  window: 7d\n  budgeting: {{ratio_timeslices: {{slice: 1h}}}}\n{IND}"));
    let s = &load_str("t.yaml", &text).unwrap().slos[0];
    assert_eq!(s.budgeting, Budgeting::RatioTimeslices { slice: Minutes(60) });
    let text = native(&format!("  window: {{calendar: week}}\n{IND}"));
    let s = &load_str("t.yaml", &text).unwrap().slos[0];
    assert_eq!(s.window.nominal(), Minutes(7 * 1440));
    // A calendar month counts as 30 days: the Workbook's 14.4 exactly.
    let m = native(&format!("  window: {{calendar: month}}\n{IND}"));
    assert_eq!(load_str("t.yaml", &m).unwrap().slos[0].alerting.rules[0].burn_rate_threshold, 14.4);
}

#[test]
fn status_forms_and_quoting() {
    for (status, yes, no) in [
        ("\">= 200\"", 200, 199),
        ("2xx", 204, 300),
        ("[2xx, 3xx]", 302, 404),
        ("\"[200, 204]\"", 204, 201),
        ("[200, 204]", 200, 201),
    ] {
        let text = native(&format!("  window: 28d\n  indicator: {{source: lambda, good: {{status: {status}}}}}\n"));
        let set = load_str("t.yaml", &text).unwrap_or_else(|d| panic!("{status}: {d:?}"));
        let st = set.slos[0].indicator.good.status.clone().unwrap();
        assert!(st.contains(yes) && !st.contains(no), "{status}");
    }
}

/// Bad documents and exactly what is said about them.
#[test]
fn diagnostics_table() {
    let w = "  window: 28d\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            native(&format!("{w}{IND}  colour: blue\n")),
            vec![
                "t.yaml:10:3: unknown field `colour` in `spec`; allowed: service, description, objective, window, budgeting, indicator, alerting, exclusions",
            ],
        ),
        (
            native(&format!("  windw: 28d\n{IND}")),
            vec![
                "t.yaml:8:3: unknown field `windw` in `spec`; did you mean `window`? allowed: service, description, objective, window, budgeting, indicator, alerting, exclusions",
            ],
        ),
        (
            native(&format!("{w}{IND}")).replace("objective: 99", "objective: 100"),
            vec![
                "t.yaml:7:14: `spec.objective` is a percent strictly between 0 and 100 (99.9 means 99.9 %), found 100",
            ],
        ),
        (
            native(&format!("{w}{IND}")).replace("objective: 99", "objective: 0"),
            vec!["t.yaml:7:14: `spec.objective` is a percent strictly between 0 and 100 (99.9 means 99.9 %), found 0"],
        ),
        (
            native(&format!("{w}{IND}")).replace("objective: 99", "objective: abc"),
            vec!["t.yaml:7:14: `spec.objective` must be a number, found `abc`"],
        ),
        (native(&format!("  window: 28x\n{IND}")), vec!["t.yaml:8:13: unknown unit `x` in `28x`; use m, h, d or w"]),
        (
            native(&format!("  window: 91d\n{IND}")),
            vec!["t.yaml:8:11: `spec.window` must be between 5m and 90d, found 91d"],
        ),
        (
            native(&format!(
                "{w}  indicator: {{source: cloudfront, filter: {{path: \"/a/[bc]\"}}, good: {{status: 2xx}}}}\n"
            )),
            vec![
                "t.yaml:9:54: bad glob `/a/[bc]`: `[` is not supported in globs (only `*`, `?` and route placeholders such as `{id}`); use a list of patterns instead",
            ],
        ),
        (
            native(&format!("{w}  indicator:\n    source: cloudfront\n    good: {{status: \"[200, abc]\"}}\n")),
            vec![
                "t.yaml:11:27: bad status `[200, abc]`: `abc` is not a status code; expected e.g. `< 500`, `2xx`, `[2xx, 3xx]`, `[200, 204]`",
            ],
        ),
        (
            native(&format!("{w}  indicator:\n    source: cloudfront\n    good: {{latency: '<= 800 mins'}}\n")),
            vec!["t.yaml:11:29: bad latency `<= 800 mins`: unknown latency unit `mins`; use us, ms or s"],
        ),
        (native(w), vec!["t.yaml:6:3: `spec` is missing required field `indicator`"]),
        (
            native(&format!("{w}  indicator: [cloudfront]\n")),
            vec!["t.yaml:9:14: `spec.indicator` must be a map, found a list"],
        ),
        (
            native(&format!("{w}{IND}  window: 7d\n")),
            vec!["t.yaml:10:3: duplicate key `window` (first at line 8, column 3)"],
        ),
        (
            native("  window: [28d\n"),
            vec!["t.yaml:9:1: YAML syntax error: while parsing a flow sequence, expected ',' or ']'"],
        ),
        (
            native(&format!("  window: {{calendar: month, timezone: Mars/Olympus}}\n{IND}")),
            vec!["t.yaml:8:39: unknown time zone `Mars/Olympus`; use an IANA name such as `UTC` or `Europe/Paris`"],
        ),
        (
            native(&format!("{w}  budgeting: {{timeslices: {{slice: 7m, good_ratio_at_least: 0.9}}}}\n{IND}"))
                .replace("28d", "1h"),
            vec!["t.yaml:9:35: `spec.budgeting.timeslices.slice` (7m) must divide the window (1h) evenly"],
        ),
        (
            native(&format!("{w}  indicator: {{source: cloudfont, good: {{status: 2xx}}}}\n")),
            vec![
                "t.yaml:9:23: unknown source `cloudfont`; did you mean `cloudfront`? sources: cloudfront, cloudfront-realtime, apigateway, lambda, synthetic, otlp, cloudwatch, ndjson, xray",
            ],
        ),
        (
            native(&format!(
                "{w}  indicator: {{source: lambda, filter: {{method: [GET, PSOT]}}, good: {{status: 2xx}}}}\n"
            )),
            vec![
                "t.yaml:9:54: unknown HTTP method `PSOT`; did you mean `POST`? methods: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE",
            ],
        ),
        (
            native(&format!("{w}  indicator: {{source: lambda, good: {{}}}}\n")),
            vec![
                "t.yaml:9:37: `spec.indicator.good` needs at least one criterion: `status`, `latency`, `cache`, `protocol` or `tls_version`",
            ],
        ),
        (
            native(&format!("{w}{IND}")).replace("name: a", "name: Checkout_1"),
            vec![
                "t.yaml:4:9: `C` is not allowed in a name; names are lower-case letters, digits and `-`, start and end with a letter or digit, at most 63 characters",
            ],
        ),
        (
            native(&format!(
                "{w}{IND}  alerting:\n    rules:\n      - {{severity: page, long_window: 5m, short_window: 1h, burn_rate: 2}}\n"
            )),
            vec!["t.yaml:12:57: `spec.alerting.rules[0].short_window` (1h) must be shorter than long_window (5m)"],
        ),
        (
            native(&format!("{w}{IND}  alerting: {{page: {{runbook: wiki/checkout}}}}\n")),
            vec![
                "t.yaml:10:30: `spec.alerting.page.runbook` must be an http:// or https:// URL, found `wiki/checkout`",
            ],
        ),
        (
            native(&format!("{w}{IND}")).replace("kind: SLO", "kind: Slo"),
            vec!["t.yaml:2:7: unknown kind `Slo` for apiVersion slo-agent/v1; the kinds are `SLO` and `FreezePolicy`"],
        ),
        (
            native(&format!("{w}{IND}")).replace("slo-agent/v1", "slo-agent/v2"),
            vec![
                "t.yaml:1:13: unsupported apiVersion `slo-agent/v2`; did you mean `slo-agent/v1`? supported: slo-agent/v1, openslo/v1",
            ],
        ),
        (
            "a: &x 1\nb: *x\n".to_string(),
            vec![
                "t.yaml:1:1: document is missing `apiVersion`; use `slo-agent/v1` or `openslo/v1`",
                "t.yaml:1:4: YAML anchors (`&name`) are not supported; write the value out",
                "t.yaml:2:4: YAML aliases (`*name`) are not supported; write the value out",
            ],
        ),
        (
            format!("{}{}", native(&format!("{w}{IND}")), "  labels: {team: x}\n")
                .replace("  labels: {team: x}\n", "")
                .replace("  name: a\n", "  name: a\n  labels: {team-name: x, tier: [1]}\n"),
            vec!["t.yaml:5:16: `-` is not allowed in label key `team-name`; label keys match [a-zA-Z_][a-zA-Z0-9_]*"],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        let got = errors("t.yaml", text);
        if got != *want {
            failures.push(format!("case {i}:\n{text}\n  got:  {got:#?}\n  want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text =
        native("  window: 28x\n  indicator: {source: cloudfont, good: {status: \"< 5oo\", latency: \"<= fast\"}}\n")
            .replace("objective: 99", "objective: 100");
    let got = errors("t.yaml", &text);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(
        got[3],
        "t.yaml:9:52: bad status `< 5oo`: `5oo` is not a status code; expected e.g. `< 500`, `2xx`, `[2xx, 3xx]`, `[200, 204]`"
    );
    assert_eq!(got[4], "t.yaml:9:71: bad latency `<= fast`: expected a number after `<=` in `<= fast`");
}

#[test]
fn duplicate_names_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let doc = native(&format!("  window: 28d\n{IND}"));
    std::fs::write(dir.path().join("a.yaml"), &doc).unwrap();
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(dir.path().join("more/b.yml"), format!("# the same name again\n{doc}")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    std::fs::write(dir.path().join("..data/a.yaml"), &doc).unwrap();
    let got: Vec<String> =
        load_paths(&[dir.path().to_path_buf()]).unwrap_err().iter().map(ToString::to_string).collect();
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("more/b.yml").display().to_string();
    assert_eq!(got, [format!("{b}:5:9: duplicate SLO name `a`; first defined at {a}:4")]);
}

#[test]
fn paths_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = load_paths(&[dir.path().to_path_buf()]).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(d[0].message.starts_with("no SLO spec files (*.yaml, *.yml) found in"), "{}", d[0]);
    let missing = dir.path().join("missing.yaml");
    let d = load_paths(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!((d[0].line, d[0].col), (1, 1));
    assert!(d[0].to_string().starts_with(&format!("{}:1:1: cannot read file:", missing.display())));
    let d = load_paths(&[]).unwrap_err();
    assert_eq!(d[0].to_string(), "<no paths>:1:1: no SLO spec files (*.yaml, *.yml) found in ");
}

#[test]
fn multiple_documents_and_empty_ones() {
    let one = native(&format!("  window: 28d\n{IND}"));
    let two = one.replace("name: a", "name: b");
    let set = load_str("t.yaml", &format!("---\n{one}---\n# nothing\n---\n{two}")).unwrap();
    let names: Vec<&str> = set.slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(set.slos[1].origin.line, 14);
}

#[test]
fn example_specs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../slo-specs");
    let set = load_paths(&[dir])
        .unwrap_or_else(|d| panic!("{}", d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
    assert_eq!(set.slos.len(), 13);
}

proptest::proptest! {
    #[test]
    fn load_str_never_panics(text in "\\PC{0,300}") {
        let _ = load_str("p.yaml", &text);
    }

    /// Mutations of a valid document: the readers must stay total.
    #[test]
    fn mutated_documents_never_panic(cut in 0usize..1200, insert in "[ -~\\n]{0,12}") {
        let mut text = CHECKOUT.to_string();
        let at = cut.min(text.len());
        text.insert_str(at, &insert);
        let _ = load_str("p.yaml", &text);
    }
}

fn openslo(method: &str, objective: &str, sli: &str) -> String {
    format!(
        r#"apiVersion: openslo/v1
kind: SLI
metadata: {{name: the-sli, displayName: The SLI}}
spec:
{sli}
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: o, displayName: Open SLO}}
spec:
  description: imported
  service: shop
  indicatorRef: the-sli
  timeWindow: [{{duration: 7d, isRolling: true}}]
  budgetingMethod: {method}
  objectives:
    - {objective}
"#
    )
}

const RATIO_GOOD: &str = "  ratioMetric:
    counter: true
    good: {metricSource: {type: slo-agent, spec: {source: apigateway, good: {status: \"< 500\"}}}}
    total: {metricSource: {type: slo-agent, spec: {source: apigateway, filter: {path: /api/*}}}}";

const THRESHOLD: &str = "  thresholdMetric:
    metricSource: {type: slo-agent, spec: {source: cloudfront, filter: {host: shop.example.com}}}";

#[test]
fn openslo_budgeting_methods() {
    let s = &load_str("o.yaml", &openslo("Occurrences", "{target: 0.999}", RATIO_GOOD)).unwrap().slos[0];
    assert_eq!((s.name.as_str(), s.display_name.as_deref()), ("o", Some("Open SLO")));
    assert_eq!((s.service.as_str(), s.description.as_deref()), ("shop", Some("imported")));
    assert_eq!(s.objective, 0.999);
    assert_eq!(s.window, SloWindow::Rolling(Minutes(7 * 1440)));
    assert_eq!(s.budgeting, Budgeting::Occurrences);
    assert_eq!(s.indicator.source, Origin::ApiGateway);
    assert!(!s.indicator.criteria_are_bad);
    assert!(s.indicator.good.status.as_ref().unwrap().contains(404));
    assert_eq!(s.indicator.filter.path.as_ref().unwrap()[0].as_str(), "/api/*");
    assert_eq!(s.alerting.rules, default_rules(&s.window));

    let obj = "{targetPercent: 99.5, timeSliceTarget: 0.9, timeSliceWindow: 1m}";
    let s = &load_str("o.yaml", &openslo("Timeslices", obj, RATIO_GOOD)).unwrap().slos[0];
    assert_eq!(s.objective, 0.995);
    assert_eq!(s.budgeting, Budgeting::Timeslices { slice: Minutes(1), good_ratio_at_least: 0.9 });

    let obj = "{target: 0.99, timeSliceWindow: 300}";
    let s = &load_str("o.yaml", &openslo("RatioTimeslices", obj, RATIO_GOOD)).unwrap().slos[0];
    assert_eq!(s.budgeting, Budgeting::RatioTimeslices { slice: Minutes(5) });
}

#[test]
fn openslo_bad_total_and_threshold() {
    let bad = RATIO_GOOD
        .replace(
            "good: {metricSource: {type: slo-agent, spec: {source: apigateway, good:",
            "bad: {metricSource: {type: slo-agent, spec: {bad:",
        )
        .replace("\"< 500\"", "5xx");
    let s = &load_str("o.yaml", &openslo("Occurrences", "{target: 0.999}", &bad)).unwrap().slos[0];
    assert!(s.indicator.criteria_are_bad);
    assert!(s.indicator.good.status.as_ref().unwrap().contains(503));

    let s =
        &load_str("o.yaml", &openslo("Occurrences", "{op: lt, value: 250, target: 0.95}", THRESHOLD)).unwrap().slos[0];
    assert_eq!(s.indicator.source, Origin::CloudFront);
    assert_eq!(s.indicator.good.latency, Some(LatencyBound { op: CompareOp::Lt, threshold_ms: 250.0 }));
    assert_eq!(s.indicator.good.status, None);
}

/// OpenSLO needs `op` only for a threshold metric, and its own examples put
/// `op: gt` (with or without a `value`) on ratio objectives: accepted and
/// ignored there.
#[test]
fn openslo_op_on_a_ratio_objective_is_ignored() {
    for obj in ["{op: gt, target: 0.99}", "{op: gt, value: 0.99, target: 0.99}", "{value: 1, target: 0.99}"] {
        let set =
            load_str("o.yaml", &openslo("Occurrences", obj, RATIO_GOOD)).unwrap_or_else(|d| panic!("{obj}: {d:?}"));
        let s = &set.slos[0];
        assert_eq!(s.objective, 0.99, "{obj}");
        assert_eq!(s.indicator.good.latency, None, "{obj}");
        assert!(s.indicator.good.status.as_ref().unwrap().contains(404), "{obj}");
    }
    let obj = "{op: gt, target: 0.99, timeSliceWindow: 1m}";
    let s = &load_str("o.yaml", &openslo("RatioTimeslices", obj, RATIO_GOOD)).unwrap().slos[0];
    assert_eq!(s.budgeting, Budgeting::RatioTimeslices { slice: Minutes(1) });
}

/// OpenSLO's `timeWindow` is optional; without one an SLO is over a rolling 28 days.
#[test]
fn openslo_without_a_time_window_is_over_a_rolling_28_days() {
    let text = openslo("Occurrences", "{target: 0.98}", RATIO_GOOD)
        .replace("  timeWindow: [{duration: 7d, isRolling: true}]\n", "");
    let s = &load_str("o.yaml", &text).unwrap().slos[0];
    assert_eq!(s.window, SloWindow::Rolling(Minutes(28 * 1440)));
    assert_eq!(s.alerting.rules, default_rules(&s.window));
}

#[test]
fn openslo_calendar_and_inline_indicator() {
    let text = r#"apiVersion: openslo/v1
kind: SLO
metadata: {name: weekly}
spec:
  service: shop
  indicator:
    metadata: {name: inline}
    spec: {thresholdMetric: {metricSource: {type: slo-agent, spec: {source: lambda}}}}
  timeWindow:
    - {duration: 1w, isRolling: false, calendar: {startTime: "2024-01-01 00:00:00", timeZone: America/New_York}}
  budgetingMethod: Occurrences
  objectives: [{op: lte, value: 1500, target: 0.99}]
"#;
    let s = &load_str("o.yaml", text).unwrap().slos[0];
    let SloWindow::Calendar { unit, timezone_name, .. } = &s.window else { panic!() };
    assert_eq!((*unit, timezone_name.as_str()), (CalendarUnit::Week, "America/New_York"));
    assert_eq!(s.indicator.good.latency, Some(LatencyBound { op: CompareOp::Le, threshold_ms: 1500.0 }));
}

/// OpenSLO's own examples start calendar windows at any `startTime` (a
/// Saturday noon in New York); the windows repeat from it.
#[test]
fn openslo_calendar_start_time_anchors_the_windows() {
    let text = openslo("Timeslices", "{op: gt, target: 0.9995, timeSliceTarget: 0.95, timeSliceWindow: 1m}", RATIO_GOOD)
        .replace(
            "timeWindow: [{duration: 7d, isRolling: true}]",
            "timeWindow:\n    - duration: 1w\n      isRolling: false\n      calendar:\n        startTime: 2022-01-01 12:00:00\n        timeZone: America/New_York",
        );
    let s = &load_str("o.yaml", &text).unwrap_or_else(|d| panic!("{d:?}")).slos[0];
    let SloWindow::Calendar { unit, timezone_name, anchor, .. } = &s.window else { panic!("{:?}", s.window) };
    assert_eq!((*unit, timezone_name.as_str()), (CalendarUnit::Week, "America/New_York"));
    assert_eq!(*anchor, Some(jiff::civil::date(2022, 1, 1).at(12, 0, 0, 0)));
    assert_eq!(s.window.to_string(), "calendar week from 2022-01-01 12:00 (America/New_York)");

    // `1m` is a minute in OpenSLO: say so.
    let minute = text.replace("duration: 1w", "duration: 1m");
    let d = errors("o.yaml", &minute);
    assert!(d.iter().any(|m| m.contains("`1m` (one minute) are not supported; did you mean `1M` (a month)?")), "{d:?}");
}

#[test]
fn openslo_diagnostics() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            openslo("Timeslices", "{target: 0.99}", RATIO_GOOD),
            vec!["o.yaml:18:20: budgetingMethod Timeslices needs `timeSliceWindow` in the objective"],
        ),
        (
            openslo("Occurrences", "{target: 1.2}", RATIO_GOOD),
            vec!["o.yaml:20:16: `spec.objectives[0].target` must be in (0, 1), found 1.2"],
        ),
        (
            openslo("Occurrences", "{target: 0.99}", THRESHOLD),
            vec![
                "o.yaml:18:7: a thresholdMetric needs `op` and `value` (milliseconds) in the SLO's objective `spec.objectives[0]`",
            ],
        ),
        (
            openslo("Occurrences", "{op: lt, target: 0.99}", THRESHOLD),
            vec!["o.yaml:18:7: `spec.objectives[0]` has `op` but no `value`: a thresholdMetric needs both"],
        ),
        (
            openslo("Occurrences", "{op: lt, value: -5, target: 0.99}", THRESHOLD),
            vec!["o.yaml:18:23: `spec.objectives[0].value` is a latency in milliseconds and must be positive"],
        ),
        (
            // `op` is checked whenever it is given, even where it is ignored.
            openslo("Occurrences", "{op: above, target: 0.99}", RATIO_GOOD),
            vec!["o.yaml:20:12: unknown op `above`; use lte, lt, gte or gt"],
        ),
        (
            openslo("Occurrences", "{op: gt, value: fast, target: 0.99}", RATIO_GOOD),
            vec!["o.yaml:20:23: `spec.objectives[0].value` must be a number, found `fast`"],
        ),
        (
            openslo(
                "Occurrences",
                "{target: 0.99}",
                &RATIO_GOOD.replace(
                    "type: slo-agent, spec: {source: apigateway, good",
                    "type: Prometheus, spec: {source: apigateway, good",
                ),
            ),
            vec![
                "o.yaml:7:33: metric source type `Prometheus` is not supported: slo-agent computes SLIs from the events it reads; use `type: slo-agent`",
            ],
        ),
        (
            openslo("Occurrences", "{target: 0.99}", RATIO_GOOD)
                .replace("duration: 7d, isRolling: true", "duration: 1M, isRolling: true"),
            vec!["o.yaml:17:28: rolling windows are given in m, h, d or w (at most 90d), found `1M`"],
        ),
        (
            openslo("Occurrences", "{target: 0.99}", RATIO_GOOD)
                .replace("indicatorRef: the-sli", "indicatorRef: the-sly"),
            vec!["o.yaml:16:17: no OpenSLO SLI named `the-sly` in the loaded files; did you mean `the-sli`?"],
        ),
        (
            openslo("Occurrences", "{target: 0.99}", RATIO_GOOD)
                + "---\napiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: p}\n",
            vec![
                "o.yaml:23:7: OpenSLO kind `AlertPolicy` is not supported: slo-agent alerts with multiwindow burn-rate rules (defaults, or `alerting.rules` in a native spec) and reads only its own events",
            ],
        ),
        (
            openslo("Occurrences", "{target: 0.99}\n    - {target: 0.9}", RATIO_GOOD),
            vec![
                "o.yaml:21:7: 2 objectives given; slo-agent supports one objective per SLO: write one SLO per objective",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        let got = errors("o.yaml", text);
        if got != *want {
            failures.push(format!("case {i}:\n{text}\n  got:  {got:#?}\n  want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn protocol_and_tls_version_filters_and_criteria() {
    use crate::event::{Protocol, TlsVersion};
    let text = "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n  objective: 99.9\n  window: 7d\n  indicator:\n    source: cloudfront\n    filter: {protocol: [HTTPS, wss], tls_version: [tlsv1, TLSv1.0, TLSv1.1]}\n    good: {tls_version: [TLSv1.2, tlsv1.3], protocol: https}\n";
    let set = load_str("t.yaml", text).unwrap_or_else(|d| panic!("{d:?}"));
    let ind = &set.slos[0].indicator;
    assert_eq!(ind.filter.protocol, Some(vec![Protocol::Https, Protocol::Wss]));
    assert_eq!(ind.filter.tls_version, Some(vec![TlsVersion::Tls1_0, TlsVersion::Tls1_0, TlsVersion::Tls1_1]));
    assert_eq!(ind.good.tls_version, Some(vec![TlsVersion::Tls1_2, TlsVersion::Tls1_3]));
    assert_eq!(ind.good.protocol, Some(vec![Protocol::Https]));
    assert_eq!(ind.good.status, None);

    // Every unknown name is reported, each at its position.
    let bad = text.replace("[HTTPS, wss]", "[htps, wss]").replace("TLSv1.2, tlsv1.3", "TLSv1.2, TLS1.3");
    assert_eq!(
        errors("t.yaml", &bad),
        vec![
            "t.yaml:10:25: unknown protocol `htps`; did you mean `https`? protocol is one of: unknown, http, https, ws, wss",
            "t.yaml:11:35: unknown TLS version `TLS1.3`; did you mean `TLSv1.3`? tls_version is one of: unknown, none, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
        ]
    );
    // A protocol or TLS version alone is a criterion.
    let only = text.replace("good: {tls_version: [TLSv1.2, tlsv1.3], protocol: https}", "good: {protocol: wss}");
    assert!(load_str("t.yaml", &only).is_ok());
}
