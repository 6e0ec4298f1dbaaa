//! `slo-agent replay`: compute every SLO from log files, in event time.
//!
//! Replay runs the same decoders and the same engine as the daemon, in memory,
//! with no store: replaying last month's logs gives last month's budget.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::decode::{Decoder, Format, Rejects, feed_line};
use crate::event::RequestEvent;
use crate::sli::Engine;
use crate::sli::report::{Report, SloReport};
use crate::source::lines::LineSplitter;
use crate::spec::model::SloSet;
use crate::timefmt::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot tell the log format from the first lines; pass --format ({})", Format::NAMES)]
    UnknownFormat { path: PathBuf },
    #[error("{path}: format {format:?} needs the log's field list, which replay does not take")]
    NeedsFields { path: PathBuf, format: String },
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Evaluate as of this event time (ms); default: the newest event seen.
    pub at_ms: Option<i64>,
    pub format: Format,
    /// Service name for events whose records carry none (CloudFront logs).
    pub service: String,
    /// Print progress to stderr (only when it is a terminal).
    pub progress: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { at_ms: None, format: Format::Auto, service: String::new(), progress: false }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    pub report: Report,
    pub rejects: Rejects,
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub events: u64,
    /// Events newer than `--at`, left out.
    pub after_at: u64,
    /// (event, SLO) pairs older than the SLO keeps, left out.
    pub too_old: u64,
}

/// Replay files through decoders and engine, and report as of `at`.
pub fn replay(slos: &SloSet, files: &[PathBuf], opts: &ReplayOptions) -> Result<ReplayOutcome, ReplayError> {
    let mut engine = Engine::new(slos, false);
    let mut rejects = Rejects::default();
    let mut newest: Option<i64> = None;
    let mut after_at = 0u64;
    let mut lines = 0u64;
    let mut bytes = 0u64;
    let show_progress = opts.progress && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_progress = Instant::now();

    for path in files {
        let (l, b) = replay_file(path, opts, &mut engine, &mut rejects, &mut newest, &mut after_at, |lines_in_file| {
            if show_progress && lines_in_file % (1 << 20) == 0 && last_progress.elapsed().as_secs_f64() >= 1.0 {
                last_progress = Instant::now();
                eprint!("\rreplaying {}: {} lines …", path.display(), lines_in_file);
            }
        })?;
        lines += l;
        bytes += b;
    }
    if show_progress {
        eprintln!(
            "\rreplayed {} files, {} lines in {:.2}s                    ",
            files.len(),
            lines,
            started.elapsed().as_secs_f64()
        );
    }
    let at = opts.at_ms.or(newest).unwrap_or(0);
    let statuses = engine.evaluate(at);
    let report = Report {
        at: rfc3339(at),
        rejected_lines: rejects.total(),
        slos: statuses.iter().map(SloReport::from_status).collect(),
    };
    Ok(ReplayOutcome {
        report,
        rejects,
        files: files.len(),
        lines,
        bytes,
        events: engine.stats.events,
        after_at,
        too_old: engine.stats.too_old,
    })
}

#[allow(clippy::too_many_arguments)]
fn replay_file(
    path: &Path,
    opts: &ReplayOptions,
    engine: &mut Engine,
    rejects: &mut Rejects,
    newest: &mut Option<i64>,
    after_at: &mut u64,
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let mapped = crate::source::lines::map_plain_file(path).map_err(read_err)?;
    let mut stream = None;
    let mut splitter = LineSplitter::default();
    let mut bytes = 0u64;
    let head: &[u8] = match &mapped {
        Some(m) => &m[..m.len().min(64 * 1024)],
        None => {
            let s = stream.insert(crate::source::lines::open_stream(path).map_err(read_err)?);
            // Enough of the start of the file to tell its format.
            while splitter.buffered().len() < 64 * 1024 {
                let n = splitter.fill(s).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
            splitter.buffered()
        }
    };
    let format = match opts.format {
        Format::Auto => match Format::detect(head) {
            Some(f) => f,
            None if head.iter().all(|b| b.is_ascii_whitespace()) => return Ok((0, bytes)),
            None => return Err(ReplayError::UnknownFormat { path: path.to_path_buf() }),
        },
        f => f,
    };
    let mut decoder: Box<dyn Decoder> = format
        .decoder(&opts.service)
        .ok_or_else(|| ReplayError::NeedsFields { path: path.to_path_buf(), format: format!("{format:?}") })?;
    decoder.want(engine.wanted());
    let at = opts.at_ms;
    let mut sink = |ev: &RequestEvent<'_>| {
        if at.is_some_and(|at| ev.ts_ms > at) {
            *after_at += 1;
            return;
        }
        if newest.is_none_or(|n| ev.ts_ms > n) {
            *newest = Some(ev.ts_ms);
        }
        engine.observe(ev);
    };
    let mut on_line = |line: crate::source::lines::Line<'_>| {
        let place = || format!("{}:{}", path.display(), line.number);
        feed_line(decoder.as_mut(), line.bytes, line.overlong, &mut sink, rejects, place);
        progress(line.number);
    };
    let Some(stream) = stream.as_mut() else {
        let map = mapped.as_ref().expect("either mapped or streamed");
        let lines = crate::source::lines::split_mapped(map, on_line);
        return Ok((lines, map.len() as u64));
    };
    loop {
        splitter.drain_complete(&mut on_line);
        let n = splitter.fill(stream).map_err(read_err)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    splitter.finish(&mut on_line);
    Ok((splitter.line_no, bytes))
}
