//! Drop-in for Sloth and OpenSLO users, through the binary and a real
//! `promtool`: the rules `slo-agent rules` writes for spec files in the peers'
//! own shapes (`fixtures/sloth/`, `fixtures/openslo/`) pass `promtool check
//! rules` and the `promtool test rules` unit tests in `fixtures/promtool/`,
//! which pin the minute every alert fires, its labels and its annotations
//! (each test file says how its minutes follow from the thresholds).
//!
//! promtool is a peer `tests/run` installs; without it this test fails when
//! `CI=true` and is skipped loudly otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn promtool_present() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and no promtool on PATH: tests/run installs the Debian package prometheus"
    );
    eprintln!("\nSKIPPED: no `promtool` on PATH (Debian: apt-get install prometheus; tests/run does)\n");
    false
}

fn slo_agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slo-agent")).args(args).output().expect("run slo-agent")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes the rules for every fixture spec into `dir`.
fn generate(dir: &Path) {
    let f = fixtures();
    let out = slo_agent(&[
        "rules",
        "--sloth",
        f.join("sloth/payments.yaml").to_str().expect("utf-8 path"),
        "--sloth",
        f.join("sloth/edge-gauges.yaml").to_str().expect("utf-8 path"),
        "--specs",
        f.join("openslo").to_str().expect("utf-8 path"),
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for file in ["payments", "edge-health", "edge-cache", "checkout", "search"] {
        assert!(dir.join(format!("{file}.rules.yaml")).is_file(), "{file}.rules.yaml not written:\n{said}");
    }
    // The timeslice SLO of the OpenSLO fixture cannot be a Prometheus rule.
    assert!(said.contains("warning: home-page-minutes"), "{said}");
}

#[test]
fn rules_for_peer_shaped_specs_fire_on_the_pinned_minutes_with_the_teams_labels() {
    if !promtool_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path());

    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("read out dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yaml"))
        .collect();
    rule_files.sort();
    let check = Command::new("promtool").arg("check").arg("rules").args(&rule_files).output().expect("promtool");
    assert!(check.status.success(), "promtool check rules:\n{}", text(&check));

    let mut tests = Vec::new();
    for entry in std::fs::read_dir(fixtures().join("promtool")).expect("fixtures/promtool") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !name.ends_with(".test.yaml") {
            continue;
        }
        // `sloth_version` names the generator's version, which the fixtures do not pin.
        let body = std::fs::read_to_string(&path)
            .expect("read promtool test")
            .replace("SLOTH_VERSION", slo_agent::rules::GENERATOR_VERSION);
        let to = dir.path().join(&name);
        std::fs::write(&to, body).expect("write promtool test");
        tests.push(to);
    }
    tests.sort();
    assert_eq!(tests.len(), 3, "{tests:?}");
    let run = Command::new("promtool").arg("test").arg("rules").args(&tests).output().expect("promtool");
    assert!(run.status.success(), "promtool test rules:\n{}", text(&run));
}

/// What the peers' specs say that slo-agent cannot do is refused with a
/// message that says what to do instead, at the field's position.
#[test]
fn sloth_plugins_are_refused_with_what_to_do_instead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("plugins.yaml");
    std::fs::write(
        &spec,
        "version: prometheus/v1\nservice: shop\nslo_plugins:\n  chain:\n    - id: sloth.dev/core/debug/v1\nslos:\n  \
         - name: a\n    objective: 99\n    plugins:\n      chain: [{id: sloth.dev/contrib/info_labels/v1}]\n    \
         sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}\n",
    )
    .expect("write spec");
    let out =
        slo_agent(&["rules", "--sloth", spec.to_str().expect("utf-8"), "--out", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    let lines: Vec<&str> = said.lines().filter(|l| l.contains("plugins")).collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(lines[0].contains("plugins.yaml:4:3: `slo_plugins`: Sloth SLO plugins are not supported"), "{said}");
    assert!(lines[1].contains("plugins.yaml:10:7: `slos[0].plugins`: Sloth SLO plugins are not supported"), "{said}");
    assert!(lines.iter().all(|l| l.contains("remove it")), "{said}");
    assert!(!dir.path().join("shop.rules.yaml").exists(), "nothing is written when a spec is refused");
}

/// `--extra-labels` (Sloth's flag) adds a label to every series; the spec's
/// own label of the same name wins; a label name Prometheus refuses is an error.
#[test]
fn extra_labels_reach_every_series_and_the_spec_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = fixtures().join("sloth/payments.yaml");
    let out = slo_agent(&[
        "rules",
        "--sloth",
        spec.to_str().expect("utf-8"),
        "-l",
        "env=prod",
        "--extra-labels",
        "owner=someone-else",
        "--out",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let rules = std::fs::read_to_string(dir.path().join("payments.rules.yaml")).expect("rules written");
    let records = rules.matches("- record:").count();
    assert_eq!(rules.matches("env: \"prod\"").count(), records + rules.matches("- alert:").count());
    assert!(!rules.contains("someone-else"), "the spec's `owner` wins");

    let bad = slo_agent(&["rules", "--sloth", spec.to_str().expect("utf-8"), "-l", "1x=y", "--out", "/nonexistent"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("`1x` is not a label name"), "{}", text(&bad));
}
