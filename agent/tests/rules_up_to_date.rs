//! `alerts/` holds the rules `slo-agent rules` generates for `slo-specs/`;
//! this fails when a spec or the generator changed and they were not
//! regenerated (`slo-agent rules --specs slo-specs --out alerts`).

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn alerts_dir_holds_the_rules_generated_for_slo_specs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let set = slo_agent::spec::load_paths(&[root.join("slo-specs")]).unwrap_or_else(|d| panic!("{d:?}"));
    let generated = slo_agent::rules::generate_for_set(&set);

    let mut on_disk = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("alerts")).expect("alerts/ exists") {
        let path = entry.expect("readable alerts/ entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".rules.yaml") {
            on_disk.insert(name, std::fs::read_to_string(&path).expect("readable rule file"));
        }
    }

    let hint = "regenerate with: slo-agent rules --specs slo-specs --out alerts (and delete stale *.rules.yaml)";
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        generated.files.keys().collect::<Vec<_>>(),
        "rule files in alerts/ differ; {hint}"
    );
    for (name, text) in &generated.files {
        assert!(on_disk[name] == *text, "alerts/{name} is out of date; {hint}");
    }
}

/// The rules written for a Sloth spec pass `promtool check rules`. promtool is
/// a peer `tests/run` installs; without it (outside CI) this checks nothing.
#[test]
fn rules_for_a_sloth_spec_pass_promtool_check() {
    let promtool_present = std::process::Command::new("promtool").arg("--version").output().is_ok();
    if !promtool_present {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "promtool missing in CI");
        eprintln!("promtool missing: skipped");
        return;
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sloth/shop-api.yaml");
    let text = std::fs::read_to_string(&fixture).expect("fixture");
    let slos = slo_agent::rules::sloth::read("shop-api.yaml", &text, slo_agent::rules::sloth::DEFAULT_PERIOD)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (name, text) in slo_agent::rules::generate(&slos) {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write rules");
        paths.push(p);
    }
    let out = std::process::Command::new("promtool").arg("check").arg("rules").args(&paths).output().expect("promtool");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
