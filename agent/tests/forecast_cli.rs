//! `slo-agent forecast`, the built binary, on small CSV files: a daily cycle
//! forecast into a file (header, the next H timestamps at the step, bounds
//! around the forecast), a bad row named by its line (exit 2), out-of-range
//! flags, and a season too long for the data dropped with a note.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slo-agent"))
}

/// Hourly rows for `days` days of a daily cycle, from 2026-11-01.
fn daily_csv(days: usize) -> String {
    let mut s = String::from("timestamp,value\n");
    for i in 0..24 * days {
        let v = 100.0 + 20.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin() + (i % 3) as f64;
        s.push_str(&format!("2026-11-{:02} {:02}:00:00,{v:.3}\n", 1 + i / 24, i % 24));
    }
    s
}

#[test]
fn a_daily_series_is_forecast_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    std::fs::write(&input, daily_csv(14)).unwrap();
    let out = bin()
        .args(["forecast", "--input"])
        .arg(&input)
        .args(["--horizon", "24", "--output"])
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,forecast,lo,hi");
    assert_eq!(lines.len(), 25);
    assert!(lines[1].starts_with("2026-11-15T00:00:00Z,"), "{}", lines[1]);
    assert!(lines[24].starts_with("2026-11-15T23:00:00Z,"), "{}", lines[24]);
    for (h, line) in lines[1..].iter().enumerate() {
        let f: Vec<f64> = line.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
        let want = 101.0 + 20.0 * (h as f64 / 24.0 * std::f64::consts::TAU).sin();
        assert!((f[0] - want).abs() < 3.0, "{line}: want about {want}");
        assert!(f[1] <= f[0] && f[0] <= f[2], "{line}");
    }
    // Without --output: the same text on stdout.
    let out = bin().args(["forecast", "--input"]).arg(&input).args(["--horizon", "24"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);
}

#[test]
fn a_bad_row_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "timestamp,value\n2026-11-01 00:00:00,1\n2026-11-01 01:00:00,oops\n").unwrap();
    let out = bin().args(["forecast", "--input"]).arg(&input).args(["--horizon", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("error: {}:3: ", input.display())), "{err}");
    assert!(err.contains("not a finite number"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn flags_out_of_range_are_refused_and_a_long_season_is_dropped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, daily_csv(3)).unwrap();
    for (args, says) in [
        (vec!["--horizon", "0"], "--horizon: the horizon 0 is out of range"),
        (vec!["--horizon", "100001"], "out of range: 1..=100000"),
        (vec!["--horizon", "5", "--season", "1"], "--season: the season 1 is out of range"),
        (vec!["--horizon", "5", "--level", "100"], "--level 100: out of range"),
    ] {
        let out = bin().args(["forecast", "--input"]).arg(&input).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = bin()
        .args(["forecast", "--input"])
        .arg(&input)
        .args(["--horizon", "5", "--season", "24", "--season", "168"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: season 168 left out"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}
