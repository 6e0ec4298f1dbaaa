//! `slo-agent forecast`: read a `timestamp,value` CSV, write
//! `timestamp,forecast,lo,hi` for the next H steps. The forecaster is
//! [`crate::forecast::model`], the code the agent's live forecasts are to run.
//!
//! Exit codes: 0 written, 2 bad input or flags (`error: FILE:LINE: message`
//! for a bad row). Notes (a season dropped for too few rows) go to stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::forecast::{csv, model};

#[derive(clap::Args, Debug)]
pub struct ForecastArgs {
    /// The series: `timestamp,value` rows (RFC 3339 or YYYY-MM-DD HH:MM:SS), a header line allowed.
    #[arg(long)]
    pub input: PathBuf,
    /// How many steps to forecast after the last row (1..=100000).
    #[arg(long)]
    pub horizon: usize,
    /// A seasonal period in steps (repeatable); default: detect daily and weekly cycles.
    #[arg(long)]
    pub season: Vec<usize>,
    /// The prediction interval's coverage in percent (between 0 and 100).
    #[arg(long, default_value_t = 95.0)]
    pub level: f64,
    /// Where to write the forecast CSV; default stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: ForecastArgs) -> ExitCode {
    match forecast(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn forecast(args: &ForecastArgs) -> Result<(), String> {
    let name = args.input.display();
    let file = std::fs::File::open(&args.input).map_err(|e| format!("{name}: {e}"))?;
    let mut reader = csv::Reader::new(std::io::BufReader::new(file));
    let mut rows: Vec<(i64, f64)> = Vec::new();
    while let Some(row) = reader.next_row() {
        let r = row.map_err(|e| format!("{name}:{}: {}", e.line, e.message))?;
        rows.push((r.ts_ms, r.value));
    }
    let opts = model::Options { horizon: args.horizon, seasons: args.season.clone(), level: args.level / 100.0 };
    let f = model::forecast(&rows, &opts).map_err(|e| match e {
        model::ForecastError::Horizon(_) => format!("--horizon: {e}"),
        model::ForecastError::Season(_) => format!("--season: {e}"),
        model::ForecastError::Level(_) => {
            format!("--level {}: out of range: between 0 and 100 (exclusive)", args.level)
        }
        _ => format!("{name}: {e}"),
    })?;
    for note in &f.notes {
        eprintln!("note: {note}");
    }
    let text = render(&f);
    match &args.output {
        // Whole or not at all, like `anomalies --output`.
        Some(path) => {
            crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| format!("stdout: {e}")),
    }
}

/// The output CSV: timestamps in RFC 3339 UTC, numbers in Rust's shortest
/// round-trip form.
pub fn render(f: &model::Forecast) -> String {
    let mut out = String::from("timestamp,forecast,lo,hi\n");
    for p in &f.points {
        out.push_str(&format!("{},{},{},{}\n", crate::timefmt::rfc3339(p.ts_ms), p.forecast, p.lo, p.hi));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A week of hourly rows (a daily cycle, a slow rise, a missing row now
    /// and then, one outlier) forecast a day ahead: the golden output.
    #[test]
    fn a_small_series_forecasts_to_its_golden_output() {
        let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/forecast/hourly.csv")).unwrap();
        let rows: Vec<(i64, f64)> = csv::read_all(&text[..]).unwrap().iter().map(|r| (r.ts_ms, r.value)).collect();
        let f = model::forecast(&rows, &model::Options { horizon: 24, ..model::Options::default() }).unwrap();
        assert_eq!(f.seasons, vec![24]);
        crate::testing::golden::check_text("tests/fixtures/forecast/hourly.expected", &render(&f));
    }
}
