//! The one golden-file harness: compare what a test produced with a file
//! under the crate (`agent/`), and rewrite the file with `UPDATE_GOLDEN=1`
//! (then review the diff). Used by unit tests (`crate::testing::golden`) and
//! by integration tests (`#[path = "../src/testing/golden.rs"] mod golden;`).
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

fn path_of(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the golden file's folder");
    }
    std::fs::write(path, text).expect("write the golden file");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()))
}

/// `got` must equal the text of `relative` (a path under `agent/`).
pub fn check_text(relative: &str, got: &str) {
    let path = path_of(relative);
    if updating() {
        write(&path, got);
    }
    let want = read(&path);
    assert!(got == want, "{} differs (UPDATE_GOLDEN=1 rewrites it):\n--- want\n{want}\n--- got\n{got}", path.display());
}

/// `got` must equal the JSON in `relative` (compared as values; written pretty).
pub fn check_json(relative: &str, got: &serde_json::Value) {
    let path = path_of(relative);
    if updating() {
        let mut text = serde_json::to_string_pretty(got).expect("a JSON value serializes");
        text.push('\n');
        write(&path, &text);
    }
    let want: serde_json::Value = serde_json::from_str(&read(&path)).expect("the golden file is JSON");
    assert_eq!(
        got,
        &want,
        "{} differs (UPDATE_GOLDEN=1 rewrites it):\n{}",
        path.display(),
        serde_json::to_string_pretty(got).unwrap_or_default()
    );
}

/// The JSON in `relative`, for tests that compare it with something else.
pub fn load_json(relative: &str) -> serde_json::Value {
    serde_json::from_str(&read(&path_of(relative))).expect("the golden file is JSON")
}
