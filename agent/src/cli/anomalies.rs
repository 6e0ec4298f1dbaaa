//! `slo-agent anomalies --input FILE.csv [--output FILE.csv]`: scores every
//! `timestamp,value` row with the agent's streaming detector
//! (`forecast::anomaly::Detector`), one row at a time — each row is scored
//! and written before the next is read.
//!
//! Output: `timestamp,value,anomaly_score`, the timestamp echoed as the
//! input wrote it, the value as the shortest decimal that reads back to the
//! same number (`3.50` → `3.5`), the score with 6 decimals. A malformed row ends
//! the command with `error: FILE:LINE: message` and exit 2; with `--output`
//! nothing is left behind (rows go to a temporary file beside it, renamed
//! into place only when the whole input was read), on stdout the rows
//! before the bad one have been written.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::forecast::anomaly::Detector;
use crate::forecast::csv::{Reader, RowError};

#[derive(Args, Debug)]
pub struct AnomaliesArgs {
    /// The series: `timestamp,value` rows (RFC 3339 or `YYYY-MM-DD HH:MM:SS`), a header
    /// line optional; `-` for stdin.
    #[arg(long, value_name = "FILE.csv")]
    pub input: PathBuf,
    /// Where to write `timestamp,value,anomaly_score` (default: stdout).
    #[arg(long, value_name = "FILE.csv")]
    pub output: Option<PathBuf>,
}

/// Why scoring stopped.
#[derive(Debug)]
pub enum Failure {
    Row(RowError),
    Write(std::io::Error),
}

/// Scores every row of `input` into `out`; the number of rows.
pub fn score_csv(input: impl BufRead, out: &mut impl Write) -> Result<u64, Failure> {
    let mut reader = Reader::new(input);
    let mut detector = Detector::new();
    let mut n = 0;
    writeln!(out, "timestamp,value,anomaly_score").map_err(Failure::Write)?;
    while let Some(row) = reader.next_row() {
        let row = row.map_err(Failure::Row)?;
        let score = detector.score(row.ts_ms, row.value);
        writeln!(out, "{},{},{score:.6}", reader.timestamp_text(), row.value).map_err(Failure::Write)?;
        n += 1;
    }
    out.flush().map_err(Failure::Write)?;
    Ok(n)
}

pub fn run(args: AnomaliesArgs) -> ExitCode {
    let name = args.input.display().to_string();
    let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&args.input) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return fail(format!("{name}: {e}")),
        }
    };
    match &args.output {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            report(&name, "stdout", score_csv(input, &mut out))
        }
        Some(path) => to_file(&name, input, path),
    }
}

fn to_file(name: &str, input: Box<dyn BufRead>, path: &Path) -> ExitCode {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let file = match std::fs::File::create(&tmp) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: {e}", tmp.display())),
    };
    let mut out = std::io::BufWriter::new(file);
    let result = score_csv(input, &mut out);
    drop(out);
    let code = report(name, &path.display().to_string(), result);
    if code == ExitCode::SUCCESS {
        if let Err(e) = crate::fsutil::durable_rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return fail(format!("{}: {e}", path.display()));
        }
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
    code
}

fn report(name: &str, out: &str, result: Result<u64, Failure>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(Failure::Row(e)) => fail(format!("{name}:{}: {}", e.line, e.message)),
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(Failure::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Write(e)) => fail(format!("writing {out}: {e}")),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_echoed_with_a_score_and_a_bad_row_names_its_line() {
        let mut out = Vec::new();
        let n = score_csv(&b"ts,v\n2026-11-20 12:00:00,1.5\n2026-11-20T12:01:00Z,2\n"[..], &mut out).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "timestamp,value,anomaly_score\n2026-11-20 12:00:00,1.5,0.000000\n2026-11-20T12:01:00Z,2,0.001111\n"
        );
        let mut out = Vec::new();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/anomalies/");
        let input = std::fs::read(format!("{dir}small.csv")).unwrap();
        score_csv(&input[..], &mut out).unwrap();
        crate::testing::golden::check_text(
            "tests/fixtures/anomalies/small.expected.csv",
            &String::from_utf8(out).unwrap(),
        );
        let mut out = Vec::new();
        match score_csv(&b"2026-11-20 12:00:00,1\n2026-11-20 12:01:00,x\n"[..], &mut out) {
            Err(Failure::Row(e)) => assert_eq!(e.line, 2),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// Any bytes, or CSV-like text, through the command's loop: an error or rows, never a panic.
        #[test]
        fn any_input_is_scored_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            text in "(timestamp,value\n)?([0-9: TZ.+-]{0,25},[-0-9.e]{0,12}\n){0,60}",
        ) {
            for input in [&bytes[..], text.as_bytes()] {
                let mut out = Vec::new();
                if let Ok(n) = score_csv(input, &mut out) {
                    let out = String::from_utf8(out).unwrap();
                    proptest::prop_assert_eq!(out.lines().count() as u64, n + 1);
                    for line in out.lines().skip(1) {
                        let s: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
                        proptest::prop_assert!((0.0..=1.0).contains(&s));
                    }
                }
            }
        }
    }
}
