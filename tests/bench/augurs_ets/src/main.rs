//! `augurs-ets-bench HORIZON < values`: fits augurs' non-seasonal AutoETS to the
//! whitespace-separated values on stdin (a regular grid, oldest first) and prints
//! HORIZON lines `point,lower,upper` (95 % interval). Exit status 1 with a
//! message on stderr when the input or the fit fails.

use augurs_core::{Fit, Predict};
use std::io::Read;
use std::process::ExitCode;

fn run() -> Result<String, String> {
    let horizon: usize = std::env::args()
        .nth(1)
        .ok_or("usage: augurs-ets-bench HORIZON < values")?
        .parse()
        .map_err(|e| format!("horizon: {e}"))?;
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| format!("stdin: {e}"))?;
    let y = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let fitted = augurs_ets::AutoETS::non_seasonal().fit(&y).map_err(|e| format!("fit: {e}"))?;
    let forecast = fitted.predict(horizon, 0.95).map_err(|e| format!("predict: {e}"))?;
    let intervals = forecast.intervals.ok_or("no intervals")?;
    let mut out = String::new();
    for i in 0..horizon {
        out.push_str(&format!("{},{},{}\n", forecast.point[i], intervals.lower[i], intervals.upper[i]));
    }
    Ok(out)
}

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("augurs-ets-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
