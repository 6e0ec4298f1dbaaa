//! `slo-agent anomalies` as a user runs it: a file in, a scored file out; a
//! bad row is named by file and line, exit 2, and no output file is left.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slo-agent"))
}

#[test]
fn scores_a_file_and_refuses_a_bad_row_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..300 {
        let v = if i == 250 { 80.0 } else { 10.0 + (i % 7) as f64 * 0.5 };
        text.push_str(&format!("2026-01-05T{:02}:{:02}:00Z,{v}\n", i / 60, i % 60));
    }
    std::fs::write(&input, &text).unwrap();
    let run = bin().args(["anomalies", "--input"]).arg(&input).arg("--output").arg(&output).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score");
    assert_eq!(lines.len(), 301);
    assert!(lines[251].starts_with("2026-01-05T04:10:00Z,80,"), "{}", lines[251]);
    let score = |l: &str| l.rsplit(',').next().unwrap().parse::<f64>().unwrap();
    let top = (1..lines.len()).max_by(|&a, &b| score(lines[a]).total_cmp(&score(lines[b]))).unwrap();
    assert_eq!(top, 251, "the spike should score highest");

    // Stdin to stdout gives the same rows.
    let mut child = bin()
        .args(["anomalies", "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), out);

    // A bad row: its line, exit 2, the old output untouched and no temp file.
    std::fs::write(&input, format!("{text}2026-01-05T09:00:00Z,oops\n")).unwrap();
    let run = bin().args(["anomalies", "--input"]).arg(&input).arg("--output").arg(&output).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("in.csv:302: the value oops is not a finite number"), "{err}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), out);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "a temporary file was left");
}
