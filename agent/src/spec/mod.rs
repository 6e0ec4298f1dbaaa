//! SLO specs: the model, and the readers that build it from YAML.
//!
//! [`load_paths`] and [`load_str`] are the only entry points: they read every
//! document of every file (native `slo-agent/v1` and `openslo/v1`), validate
//! all of it, and return either a complete [`SloSet`] or every problem found,
//! each as `file:line:col: message`.
//!
//! **Architecture invariant:** readers never panic on any input and never
//! stop at the first problem; a `Slo` only exists once all of it validated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod glob;
pub mod grammar;
pub mod model;
pub mod native;
pub mod openslo;
pub mod policy;
pub mod status;

#[cfg(test)]
mod tests;

pub use crate::yaml::Diagnostic;
use crate::yaml::fields::Ctx;
use crate::yaml::{self, Node, Value};
use model::SloSet;

/// Loads files and directories (recursively: `*.yaml` and `*.yml`, sorted,
/// skipping entries whose name starts with `.` such as the `..data` links of
/// a Kubernetes ConfigMap mount). Files named explicitly are read whatever
/// their extension.
pub fn load_paths(paths: &[PathBuf]) -> Result<SloSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Err(e) = collect_dir(p, &mut files) {
                diags.push(at_start(p, format!("cannot read directory: {e}")));
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    if files.is_empty() && diags.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(vec![Diagnostic {
            file: shown.first().cloned().unwrap_or_else(|| "<no paths>".into()),
            line: 1,
            col: 1,
            message: format!("no SLO spec files (*.yaml, *.yml) found in {}", shown.join(", ")),
        }]);
    }
    let mut loader = Loader::default();
    for f in &files {
        let name = f.display().to_string();
        match std::fs::read(f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => loader.add(&name, &text),
                Err(e) => {
                    let (line, col) = line_col_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
                    loader.diags.push(Diagnostic { file: name, line, col, message: "file is not valid UTF-8".into() });
                }
            },
            Err(e) => loader.diags.push(at_start(f, format!("cannot read file: {e}"))),
        }
        loader.files.push(f.display().to_string());
    }
    diags.append(&mut loader.diags);
    loader.diags = diags;
    loader.finish()
}

/// Loads the documents of one text, named `file_name` in messages.
pub fn load_str(file_name: &str, text: &str) -> Result<SloSet, Vec<Diagnostic>> {
    let mut loader = Loader::default();
    loader.add(file_name, text);
    loader.files.push(file_name.to_string());
    loader.finish()
}

fn at_start(p: &Path, message: String) -> Diagnostic {
    Diagnostic { file: p.display().to_string(), line: 1, col: 1, message }
}

fn line_col_of_byte(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// The spec files under `dir`, as [`load_paths`] finds them (recursively,
/// `*.yaml` and `*.yml`, sorted, skipping names that start with `.`).
pub fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_dir(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

#[derive(Default)]
struct Loader {
    files: Vec<String>,
    diags: Vec<Diagnostic>,
    slos: Vec<native::ReadSlo>,
    policies: Vec<policy::ReadPolicy>,
    openslo: openslo::Collected,
}

impl Loader {
    fn add(&mut self, file: &str, text: &str) {
        let parsed = yaml::parse(text);
        let mut cx = Ctx { file, diags: &mut self.diags };
        for e in &parsed.errors {
            cx.err(e.pos, e.message.clone());
        }
        if parsed.syntax_error {
            // Later problems would be guesses about a broken file.
            return;
        }
        for doc in &parsed.documents {
            let Some(root) = doc.root.as_ref().filter(|r| r.value != Value::Null) else {
                continue;
            };
            self.document(file, root);
        }
    }

    fn document(&mut self, file: &str, root: &Node) {
        let mut cx = Ctx { file, diags: &mut self.diags };
        let Value::Map(entries) = &root.value else {
            cx.err(root.pos, format!("a spec document must be a map, found {}", root.kind_name()));
            return;
        };
        let api = entries.iter().find(|(k, _)| k.text == "apiVersion").map(|(_, v)| v);
        let Some(api) = api else {
            cx.err(
                root.pos,
                format!(
                    "document is missing `apiVersion`; use `{}` or `{}`",
                    native::API_VERSION,
                    openslo::API_VERSION
                ),
            );
            return;
        };
        match cx.text(api, "apiVersion") {
            Some(native::API_VERSION) => {
                let kind = entries.iter().find(|(k, _)| k.text == "kind").map(|(_, v)| &v.value);
                if matches!(kind, Some(Value::Scalar(k)) if k.text == "FreezePolicy") {
                    if let Some(p) = policy::read(&mut cx, root) {
                        self.policies.push(p);
                    }
                } else if let Some(s) = native::read(&mut cx, root) {
                    self.slos.push(s);
                }
            }
            Some(openslo::API_VERSION) => self.openslo.collect(&mut cx, root),
            Some(other) => {
                let known = [native::API_VERSION, openslo::API_VERSION, "openslo/v1alpha"];
                let hint = match crate::yaml::closest(other, &known) {
                    Some("openslo/v1alpha") | None => String::new(),
                    Some(c) => format!("did you mean `{c}`? "),
                };
                cx.err(
                    api.pos,
                    format!(
                        "unsupported apiVersion `{other}`; {hint}supported: {}, {}",
                        native::API_VERSION,
                        openslo::API_VERSION
                    ),
                );
            }
            None => {}
        }
    }

    fn finish(mut self) -> Result<SloSet, Vec<Diagnostic>> {
        let from_openslo = std::mem::take(&mut self.openslo).resolve(&mut self.diags);
        self.slos.extend(from_openslo);

        // Names are unique across all files: they key SLI state and alerts.
        let mut first: HashMap<String, (String, usize)> = HashMap::new();
        for s in &self.slos {
            let here = (s.slo.origin.file.clone(), s.name_pos.line);
            match first.get(&s.slo.name) {
                Some((file, line)) => self.diags.push(Diagnostic {
                    file: here.0,
                    line: s.name_pos.line,
                    col: s.name_pos.col,
                    message: format!("duplicate SLO name `{}`; first defined at {file}:{line}", s.slo.name),
                }),
                None => {
                    first.insert(s.slo.name.clone(), here);
                }
            }
        }

        let mut first_policy: HashMap<String, (String, usize)> = HashMap::new();
        for p in &self.policies {
            let here = (p.policy.origin.file.clone(), p.name_pos.line);
            match first_policy.get(&p.policy.name) {
                Some((file, line)) => self.diags.push(Diagnostic {
                    file: here.0,
                    line: p.name_pos.line,
                    col: p.name_pos.col,
                    message: format!("duplicate FreezePolicy name `{}`; first defined at {file}:{line}", p.policy.name),
                }),
                None => {
                    first_policy.insert(p.policy.name.clone(), here);
                }
            }
        }

        if self.diags.is_empty() {
            return Ok(SloSet {
                slos: self.slos.into_iter().map(|s| Arc::new(s.slo)).collect(),
                policies: self.policies.into_iter().map(|p| Arc::new(p.policy)).collect(),
            });
        }
        let order: HashMap<&str, usize> = self.files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
        let mut diags = self.diags;
        diags.sort_by_key(|d| (order.get(d.file.as_str()).copied().unwrap_or(usize::MAX), d.line, d.col));
        diags.dedup();
        Err(diags)
    }
}
