//! The layering of `docs/architecture.md`, enforced: a top-level module may
//! use only modules of lower layers. Two modules of one layer may not use
//! each other either, so there is no import cycle between top-level modules.
//!
//! Every `crate::<module>` path in the code counts (`use` lines, paths in
//! expressions and types, `use crate::{a, b}` groups), test modules
//! included; comments do not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top. Keep in step with "Layers" in `docs/architecture.md`.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaf types", &["clock", "dims", "event", "fsutil", "secret", "testing", "timefmt", "untrusted"]),
    ("positioned YAML, the agent's own telemetry", &["telemetry", "yaml"]),
    ("forecasts and anomaly scores", &["forecast"]),
    ("specs", &["spec"]),
    ("decoders", &["decode"]),
    ("the SLI engine", &["sli"]),
    ("hop decomposition", &["hops"]),
    ("live signals, crawlers", &["signals", "crawlers"]),
    ("the outage verdict", &["outage"]),
    ("alerts, auth, rules", &["alert", "auth", "rules"]),
    ("the deploy freeze, incidents", &["freeze", "incident"]),
    ("the store", &["store"]),
    ("sources, notifications, deploy gates, the fleet reader, probes", &["source", "notify", "gate", "fleet", "probe"]),
    ("synthetic checks", &["synthetic"]),
    ("exporters, replay, the status page", &["export", "replay", "status"]),
    ("incident timelines and postmortems", &["timeline"]),
    ("config", &["config"]),
    ("the HTTP API", &["api"]),
    ("the runtime", &["runtime"]),
    ("modes", &["demo", "lambda_extension"]),
    ("the command line", &["cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line of code names through `crate::`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // Not `slo_agent_crate::` or similar: the path must start here.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, d}`: the first segment of each item.
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(layer) = layer_of(&module) else {
            problems.push(format!(
                "src/{}: module `{module}` has no layer in LAYERS (and docs/architecture.md)",
                rel.display()
            ));
            continue;
        };
        *seen.entry(module.clone()).or_default() += 1;
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for used in crate_paths(code) {
                if used == module {
                    continue;
                }
                match layer_of(&used) {
                    Some(l) if l < layer => {}
                    Some(l) => problems.push(format!(
                        "src/{}:{}: `{module}` ({}) uses `{used}` ({}), which is not below it",
                        rel.display(),
                        n + 1,
                        LAYERS[layer].0,
                        LAYERS[l].0
                    )),
                    None => problems.push(format!(
                        "src/{}:{}: `{module}` uses `crate::{used}`, which has no layer",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} layering problem(s):\n{}", problems.len(), problems.join("\n"));
    // Every layer names modules that exist (a renamed module must move here too).
    for (_, mods) in LAYERS {
        for m in *mods {
            let exists = src.join(format!("{m}.rs")).is_file() || src.join(m).join("mod.rs").is_file();
            assert!(exists, "LAYERS names `{m}`, which is not a module in src/");
        }
    }
}

#[test]
fn crate_paths_are_found_in_every_form() {
    assert_eq!(crate_paths("use crate::store::Store;"), ["store"]);
    assert_eq!(crate_paths("use crate::{alert::Alerts, sli};"), ["alert", "sli"]);
    assert_eq!(crate_paths("let x = crate::api::auth::check(a, crate::clock::now());"), ["api", "clock"]);
    assert!(crate_paths("use slo_agent_crate::x;").is_empty());
}
