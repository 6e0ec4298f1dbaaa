//! `slo-agent replay`: compute every SLO from log files, in event time.
//!
//! Replay runs the same decoders and the same engine as the daemon, in memory,
//! with no store: replaying last month's logs gives last month's budget.
//!
//! Besides the line formats ([`Format`]), replay reads what push sources
//! receive, saved to files ([`ReplayFormat`]): CloudWatch Logs subscription
//! payloads (JSON messages, or one base64 record per line) and Lambda
//! Telemetry API batches (JSON arrays). A file that cannot be read, or whose
//! format cannot be told, is reported in [`ReplayOutcome::failed`] and the
//! other files are replayed.
//!
//! Replay uses every core ([`ReplayOptions::threads`]): the files are cut
//! into units of work (plain files of a line format into parts of about
//! equal size at line boundaries; compressed files, saved payloads and
//! Lambda logs whole), each worker counts the units it takes into its own
//! engine, and the engines are merged. Counts add up and histograms merge,
//! and a bucket retained at the end holds every event of it whatever the
//! order they came in, so the report is the one a single thread gives;
//! rejects, their samples (`file:line`, absolute) and the other findings are
//! merged in file order.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::decode::cloudwatch_export::{self, Container, CsvColumns, CsvScratch, LogEventRouter};
use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::decode::lambda::LambdaDecoder;
use crate::decode::{Decoder, Format, MAX_LINE, RejectReason, Rejects, feed_line};
use crate::event::RequestEvent;
use crate::sli::Engine;
use crate::sli::report::{Report, SloReport};
use crate::source::lines::LineSplitter;
use crate::spec::model::SloSet;
use crate::timefmt::rfc3339;

/// Longest base64 record line of a saved subscription file (a delivery is at
/// most a few MiB); longer lines are rejected as `too_long`.
const MAX_RECORD_LINE: u64 = 16 << 20;
/// Distinct unrouted log groups named in the outcome; more are only counted.
const MAX_UNROUTED_GROUPS: usize = 32;
/// The least size of a part of a file cut for the workers: smaller parts
/// would cost more in per-part set-up and merging than they gain.
pub const MIN_PART_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot tell the log format from the first lines; pass --format ({})", ReplayFormat::NAMES)]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {message}")]
    BadFormat { path: PathBuf, message: String },
}

impl ReplayError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReplayError::Read { path, .. }
            | ReplayError::UnknownFormat { path }
            | ReplayError::BadFormat { path, .. } => path,
        }
    }
}

/// What the files hold: log lines of one format (or `auto`), or saved push
/// payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFormat {
    Lines(Format),
    /// CloudWatch Logs subscription payloads: JSON `DATA_MESSAGE`s (one
    /// after another, pretty-printed or not, plain or gzip), or one record
    /// per line (base64 of gzip, as Firehose delivers them).
    CloudWatchLogs,
    /// Lambda Telemetry API batches: JSON arrays of `{time, type, record}`.
    LambdaTelemetry,
}

impl ReplayFormat {
    pub const NAMES: &'static str = "auto, cloudfront, cloudfront-v2, cloudfront-realtime, ndjson, apigateway, lambda, otlp-json, cloudwatch-logs, lambda-telemetry";

    pub fn parse(s: &str) -> Option<ReplayFormat> {
        match s {
            "cloudwatch-logs" => Some(ReplayFormat::CloudWatchLogs),
            "lambda-telemetry" => Some(ReplayFormat::LambdaTelemetry),
            s => Format::parse(s).map(ReplayFormat::Lines),
        }
    }

    /// Saved push payloads recognised from a file's first bytes; `None`
    /// leaves the file to [`Format::detect`].
    fn detect_payload(head: &[u8]) -> Option<ReplayFormat> {
        let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
        let head = &head[start..];
        let has = |key: &[u8]| memchr::memmem::find(head, key).is_some();
        match head[0] {
            b'{' if has(b"\"messageType\"") && (has(b"\"logGroup\"") || has(b"\"logEvents\"")) => {
                Some(ReplayFormat::CloudWatchLogs)
            }
            b'[' if has(b"\"type\"") && has(b"\"record\"") => Some(ReplayFormat::LambdaTelemetry),
            // base64 of gzip's magic bytes: a Firehose record as delivered.
            _ if head.starts_with(b"H4sI") => Some(ReplayFormat::CloudWatchLogs),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Evaluate as of this event time (ms); default: the newest event seen.
    pub at_ms: Option<i64>,
    pub format: ReplayFormat,
    /// Service name for events whose records carry none (CloudFront logs).
    pub service: String,
    /// The field list of CloudFront real-time logs (`--fields`).
    pub fields: Vec<String>,
    /// Which decoder reads the log events of which log groups
    /// (`cloudwatch-logs`); empty: `/aws/lambda/*` → `lambda`.
    pub routes: Vec<LogGroupRoute>,
    /// Print progress to stderr (only when it is a terminal).
    pub progress: bool,
    /// Worker threads (`--threads`); 0: one per core.
    pub threads: usize,
    /// The least size of a part of a file cut for the workers (tests make
    /// it small to cut small files).
    pub min_part_bytes: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            at_ms: None,
            format: ReplayFormat::Lines(Format::Auto),
            service: String::new(),
            fields: Vec::new(),
            routes: Vec::new(),
            progress: false,
            threads: 0,
            min_part_bytes: MIN_PART_BYTES,
        }
    }
}

#[derive(Debug)]
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
    /// CloudWatch Logs events of log groups no route covers.
    pub unrouted_log_events: u64,
    /// The first few of those log groups (at most 32), as the payloads spelled them.
    pub unrouted_groups: Vec<String>,
    /// Files that could not be read or whose format could not be told;
    /// the others were replayed. What a file held before a read error
    /// is counted.
    pub failed: Vec<ReplayError>,
}

/// Where events go: the engine, unless newer than `--at`.
struct Counting {
    engine: Engine,
    at: Option<i64>,
    newest: Option<i64>,
    after_at: u64,
}

impl Counting {
    fn observe(&mut self, ev: &RequestEvent<'_>) {
        if self.at.is_some_and(|at| ev.ts_ms > at) {
            self.after_at += 1;
            return;
        }
        if self.newest.is_none_or(|n| ev.ts_ms > n) {
            self.newest = Some(ev.ts_ms);
        }
        self.engine.observe(ev);
    }
}

/// What replaying the files so far found besides events.
#[derive(Default)]
struct Tally {
    rejects: Rejects,
    unrouted_log_events: u64,
    unrouted_groups: Vec<String>,
}

impl Tally {
    fn add_unrouted_groups(&mut self, groups: impl IntoIterator<Item = String>) {
        for g in groups {
            if self.unrouted_groups.len() < MAX_UNROUTED_GROUPS && !self.unrouted_groups.contains(&g) {
                self.unrouted_groups.push(g);
            }
        }
    }

    /// Add what a later unit found (rejects' samples stay the first ones).
    fn merge(&mut self, later: Tally) {
        self.rejects.merge(&later.rejects);
        self.unrouted_log_events += later.unrouted_log_events;
        self.add_unrouted_groups(later.unrouted_groups);
    }
}

/// One worker's share of the files.
enum Unit<'m> {
    /// A whole file: compressed files, saved payloads, Lambda logs (whose
    /// decoder remembers failures from line to line), files that could not
    /// be mapped or whose format is not known yet.
    File(usize),
    /// The lines of `range` (from the beginning of a line) of a mapped plain
    /// file of a line format.
    Part { file: usize, map: &'m memmap2::Mmap, format: Format, range: Range<usize> },
}

/// What replaying one unit found. The reject samples of a [`Unit::Part`]
/// are placed by line number within the part (`"17"`), made `file:line`
/// when the parts before it have been counted.
#[derive(Default)]
struct UnitOutcome {
    lines: u64,
    bytes: u64,
    tally: Tally,
    failed: Option<ReplayError>,
    /// CloudFront standard logs: the last `#Fields` line of the part (bytes
    /// of the file), which the next part starts with.
    last_header: Option<Range<usize>>,
    /// A CloudFront part after a file's first: read with a guess of the
    /// header in force at its start, its counts kept apart until the guess
    /// is checked.
    guessed: Option<Guessed>,
}

struct Guessed {
    header: Option<Range<usize>>,
    count: Counting,
}

/// Progress on stderr, shared by the workers: a line every second at most.
struct Progress {
    show: bool,
    lines: AtomicU64,
    last: Mutex<Instant>,
}

impl Progress {
    /// Every 2^20 lines of a unit.
    fn tick(&self, path: &Path) {
        let total = self.lines.fetch_add(1 << 20, Ordering::Relaxed) + (1 << 20);
        if let Ok(mut last) = self.last.try_lock()
            && last.elapsed() >= Duration::from_secs(1)
        {
            *last = Instant::now();
            eprint!("\rreplaying {}: {} lines …", path.display(), total);
        }
    }
}

/// The thread count `--threads 0` stands for: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a replay needs besides the unit at hand.
struct Job<'a> {
    slos: &'a SloSet,
    files: &'a [PathBuf],
    opts: &'a ReplayOptions,
    progress: Progress,
}

/// Replay files through decoders and engine, and report as of `at`.
pub fn replay(slos: &SloSet, files: &[PathBuf], opts: &ReplayOptions) -> ReplayOutcome {
    let threads = if opts.threads == 0 { default_threads() } else { opts.threads };
    let started = Instant::now();
    let progress = Progress {
        show: opts.progress && std::io::stderr().is_terminal(),
        lines: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
    };
    let job = Job { slos, files, opts, progress };
    // With one thread every file is read whole, as it always was.
    let maps: Vec<Option<(memmap2::Mmap, Format)>> =
        files.iter().map(|path| if threads > 1 { splittable(path, opts) } else { None }).collect();
    let units = plan(&maps, threads, opts.min_part_bytes.max(1));
    // Whole files first (gzip costs more per byte than anything else), so
    // the parts fill in around them.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| matches!(units[i], Unit::Part { .. }));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut count = job.counting();
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((i, job.replay_unit(&units[i], &mut count, None)));
        }
        (count, done)
    };
    let workers = threads.min(units.len()).max(1);
    let mut results = if workers == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
            let joined = handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            joined.collect::<Vec<_>>()
        })
    };
    let mut outcomes: Vec<(usize, UnitOutcome)> = results.iter_mut().flat_map(|(_, done)| done.drain(..)).collect();
    outcomes.sort_unstable_by_key(|(i, _)| *i);
    let mut counts: Vec<Counting> = results.into_iter().map(|(count, _)| count).collect();

    job.check_guesses(&units, &mut outcomes, &mut counts);

    // Merge: the engines in any order, the rest in file order.
    let mut counts = counts.into_iter();
    let mut count = counts.next().expect("at least one worker ran");
    for other in counts {
        count.engine.merge_from(other.engine);
        count.after_at += other.after_at;
        count.newest = count.newest.max(other.newest);
    }
    let (mut tally, mut failed, mut lines, mut bytes) = (Tally::default(), Vec::new(), 0u64, 0u64);
    // Lines of the file before the part at hand.
    let mut lines_before = (usize::MAX, 0u64);
    for (i, mut o) in outcomes {
        if let Unit::Part { file, .. } = units[i] {
            if lines_before.0 != file {
                lines_before = (file, 0);
            }
            number_places(&mut o.tally.rejects, &files[file], lines_before.1);
            lines_before.1 += o.lines;
        }
        lines += o.lines;
        bytes += o.bytes;
        tally.merge(o.tally);
        failed.extend(o.failed);
    }
    if job.progress.show {
        eprintln!(
            "\rreplayed {} files, {} lines in {:.2}s                    ",
            files.len(),
            lines,
            started.elapsed().as_secs_f64()
        );
    }
    let Counting { mut engine, newest, after_at, .. } = count;
    let at = opts.at_ms.or(newest).unwrap_or(0);
    let statuses = engine.evaluate(at);
    let report = Report {
        at: rfc3339(at),
        rejected_lines: tally.rejects.total(),
        slos: statuses.iter().map(SloReport::from_status).collect(),
    };
    ReplayOutcome {
        report,
        rejects: tally.rejects,
        files: files.len(),
        lines,
        bytes,
        events: engine.stats.events,
        after_at,
        too_old: engine.stats.too_old,
        unrouted_log_events: tally.unrouted_log_events,
        unrouted_groups: tally.unrouted_groups,
        failed,
    }
}

/// Make the places of a part's reject samples (line numbers in the part)
/// `file:line`, given the lines of the file before the part.
fn number_places(rejects: &mut Rejects, path: &Path, lines_before: u64) {
    for stats in rejects.by_reason.values_mut() {
        for (place, _) in &mut stats.samples {
            let n = place.parse::<u64>().unwrap_or(0);
            *place = format!("{}:{}", path.display(), lines_before + n);
        }
    }
}

/// A plain file of a line format whose lines can be decoded apart (every
/// format but Lambda's, whose decoder remembers failures from line to
/// line), mapped, with its format; `None` for every other file, which is
/// read whole.
fn splittable(path: &Path, opts: &ReplayOptions) -> Option<(memmap2::Mmap, Format)> {
    let map = crate::source::lines::map_plain_file(path).ok()??;
    // What `head_of` would read of a plain file. Payloads and exports (CSV
    // records span lines) are read whole.
    let head = || Ok(std::borrow::Cow::Borrowed(&map[..map.len().min(HEAD_BYTES)]));
    let Ok(Contents::Lines(format)) = Contents::of(opts.format, head) else { return None };
    let fields: Vec<&str> = opts.fields.iter().map(String::as_str).collect();
    let decodes = !(format == Format::CloudFrontRealtime && fields.is_empty())
        && format.decoder_with_fields(&opts.service, &fields).is_ok();
    (format != Format::Lambda && decodes).then_some((map, format))
}

/// The units of work: files in order, the mapped ones cut into about two
/// parts per thread over all of them (none smaller than `min_part`).
fn plan(maps: &[Option<(memmap2::Mmap, Format)>], threads: usize, min_part: usize) -> Vec<Unit<'_>> {
    let total: usize = maps.iter().flatten().map(|(m, _)| m.len()).sum();
    let part = total.div_ceil(threads * 2).max(min_part);
    let mut units = Vec::new();
    for (file, m) in maps.iter().enumerate() {
        let Some((map, format)) = m else {
            units.push(Unit::File(file));
            continue;
        };
        let pieces = map.len().div_ceil(part).max(1);
        let mut start = 0;
        for k in 1..=pieces {
            let end = if k == pieces { map.len() } else { line_start_at_or_after(map, map.len() / pieces * k) };
            if end > start {
                units.push(Unit::Part { file, map, format: *format, range: start..end });
                start = end;
            }
        }
    }
    units
}

/// The first line start at or after `at` (the end of `data` if none).
fn line_start_at_or_after(data: &[u8], at: usize) -> usize {
    if at == 0 {
        return 0;
    }
    memchr::memchr(b'\n', &data[at - 1..]).map_or(data.len(), |i| at + i)
}

/// Whether a line sets the fields of a CloudFront standard log.
fn is_fields_header(line: &[u8]) -> bool {
    line.starts_with(b"#Fields:") && line.len() <= MAX_LINE
}

/// The last `#Fields:` line in `data` (a CloudFront standard log; `data`
/// ends at the beginning of a line). Overlong lines are rejected, never
/// read as headers.
fn last_fields_header(data: &[u8]) -> Option<Range<usize>> {
    let mut end = data.len();
    while let Some(p) = memchr::memrchr(b'#', &data[..end]) {
        end = p;
        if p > 0 && data[p - 1] != b'\n' {
            continue;
        }
        let len = memchr::memchr(b'\n', &data[p..]).unwrap_or(data.len() - p);
        if is_fields_header(&data[p..p + len]) {
            return Some(p..p + len);
        }
    }
    None
}

impl Job<'_> {
    fn counting(&self) -> Counting {
        let mut engine = Engine::new(self.slos, false);
        // The report quotes no failure breakdown.
        engine.set_failure_evidence(false);
        Counting { engine, at: self.opts.at_ms, newest: None, after_at: 0 }
    }

    /// Check the guessed CloudFront headers against the last header of the
    /// parts before: the counts of a part read with the right one join
    /// `counts`; a part read with a wrong one (a file of logs with other
    /// fields concatenated) is read again with the right one.
    fn check_guesses(&self, units: &[Unit<'_>], outcomes: &mut [(usize, UnitOutcome)], counts: &mut Vec<Counting>) {
        let mut header: (usize, Option<Range<usize>>) = (usize::MAX, None);
        for (i, o) in outcomes {
            let Unit::Part { file, map, format: Format::CloudFront, .. } = &units[*i] else { continue };
            if header.0 != *file {
                header = (*file, None);
            }
            if let Some(g) = o.guessed.take() {
                if g.header.clone().map(|r| &map[r]) == header.1.clone().map(|r| &map[r]) {
                    counts.push(g.count);
                } else {
                    let mut count = self.counting();
                    *o = self.replay_unit(&units[*i], &mut count, Some(header.1.clone()));
                    counts.push(count);
                }
            }
            if o.last_header.is_some() {
                header.1 = o.last_header.clone();
            }
        }
    }

    /// Replay one unit into `count`. A CloudFront part is read with
    /// `header` when given; else, after a file's first part, with the
    /// header of the file's head as a guess, into counts of its own.
    fn replay_unit(&self, unit: &Unit<'_>, count: &mut Counting, header: Option<Option<Range<usize>>>) -> UnitOutcome {
        let (files, opts, progress) = (self.files, self.opts, &self.progress);
        let mut out = UnitOutcome::default();
        match unit {
            Unit::File(file) => {
                let path = &files[*file];
                let tick = |n: u64| {
                    if progress.show && n.is_multiple_of(1 << 20) {
                        progress.tick(path);
                    }
                };
                match replay_file(path, opts, count, &mut out.tally, tick) {
                    Ok((lines, bytes)) => (out.lines, out.bytes) = (lines, bytes),
                    Err(e) => out.failed = Some(e),
                }
            }
            Unit::Part { file, map, format, range } => {
                let path = &files[*file];
                let mut decoder = match line_decoder(path, *format, opts) {
                    Ok(d) => d,
                    Err(e) => {
                        out.failed = Some(e);
                        return out;
                    }
                };
                let cloudfront = *format == Format::CloudFront;
                // Finding the header in force at the start would mean reading
                // the file up to there: the head's is nearly always it.
                let guess = cloudfront && range.start > 0 && header.is_none();
                let mut own = guess.then(|| self.counting());
                let count = own.as_mut().unwrap_or(count);
                let header = header.unwrap_or_else(|| {
                    let head = &map[..range.start.min(HEAD_BYTES)];
                    let head = &head[..memchr::memrchr(b'\n', head).map_or(0, |i| i + 1)];
                    last_fields_header(head)
                });
                if cloudfront && let Some(h) = header.clone() {
                    let _ = decoder.decode_line(&map[h], &mut |_: &RequestEvent<'_>| {});
                }
                decoder.want(count.engine.wanted());
                let rejects = &mut out.tally.rejects;
                let last_header = &mut out.last_header;
                let mut sink = |ev: &RequestEvent<'_>| count.observe(ev);
                let base = map.as_ptr() as usize;
                out.lines = crate::source::lines::split_mapped_range(map, range.clone(), |line| {
                    if cloudfront && line.bytes.first() == Some(&b'#') && !line.overlong && is_fields_header(line.bytes)
                    {
                        let at = line.bytes.as_ptr() as usize - base;
                        *last_header = Some(at..at + line.bytes.len());
                    }
                    feed_line(decoder.as_mut(), line.bytes, line.overlong, &mut sink, rejects, || {
                        line.number.to_string()
                    });
                    if progress.show && line.number.is_multiple_of(1 << 20) {
                        progress.tick(path);
                    }
                });
                out.bytes = range.len() as u64;
                if let Some(count) = own {
                    out.guessed = Some(Guessed { header, count });
                }
            }
        }
        out
    }
}

/// How many bytes of a file tell its format.
const HEAD_BYTES: usize = 64 * 1024;

/// The first bytes of a file (decompressed), enough to tell its format.
fn head_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; HEAD_BYTES];
    let n = crate::source::lines::read_full(&mut crate::source::lines::open_stream(path)?, &mut head)?;
    head.truncate(n);
    Ok(head)
}

/// What a file holds, told from its first bytes and `--format`.
enum Contents {
    /// Log lines of one format.
    Lines(Format),
    /// Saved push payloads (`cloudwatch-logs`, `lambda-telemetry`).
    Payloads(ReplayFormat),
    /// A CloudWatch Logs export whose messages are of this format (`auto`:
    /// told from the messages).
    Export(Container, Format),
    /// Nothing but blanks.
    Blank,
    /// No format could be told.
    Unknown,
}

impl Contents {
    /// `head` is read only when the answer depends on it.
    fn of<'h>(
        format: ReplayFormat,
        head: impl FnOnce() -> std::io::Result<std::borrow::Cow<'h, [u8]>>,
    ) -> std::io::Result<Contents> {
        Ok(match format {
            ReplayFormat::Lines(Format::Auto) => {
                let head = head()?;
                if let Some(f) = ReplayFormat::detect_payload(&head) {
                    Contents::Payloads(f)
                } else if let Some(container) = cloudwatch_export::detect(&head) {
                    Contents::Export(container, Format::Auto)
                } else if let Some(f) = Format::detect(&head) {
                    Contents::Lines(f)
                } else if head.iter().all(|b| b.is_ascii_whitespace()) {
                    Contents::Blank
                } else {
                    Contents::Unknown
                }
            }
            // A named line format is what an export's messages are.
            ReplayFormat::Lines(f) if f != Format::CloudFrontRealtime => match cloudwatch_export::detect(&head()?) {
                Some(container) => Contents::Export(container, f),
                None => Contents::Lines(f),
            },
            ReplayFormat::Lines(f) => Contents::Lines(f),
            f => Contents::Payloads(f),
        })
    }
}

fn replay_file(
    path: &Path,
    opts: &ReplayOptions,
    count: &mut Counting,
    tally: &mut Tally,
    progress: impl FnMut(u64),
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    match Contents::of(opts.format, || head_of(path).map(std::borrow::Cow::Owned)).map_err(read_err)? {
        Contents::Lines(f) => replay_lines(path, f, opts, count, tally, progress),
        Contents::Payloads(f) => replay_payloads(path, f, opts, count, tally),
        Contents::Export(container, f) => replay_export(path, container, f, opts, count, tally),
        Contents::Blank => Ok((0, 0)),
        Contents::Unknown => Err(ReplayError::UnknownFormat { path: path.to_path_buf() }),
    }
}

fn replay_lines(
    path: &Path,
    format: Format,
    opts: &ReplayOptions,
    count: &mut Counting,
    tally: &mut Tally,
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let mut decoder = line_decoder(path, format, opts)?;
    decoder.want(count.engine.wanted());
    let mapped = crate::source::lines::map_plain_file(path).map_err(read_err)?;
    let rejects = &mut tally.rejects;
    let mut sink = |ev: &RequestEvent<'_>| count.observe(ev);
    let mut on_line = |line: crate::source::lines::Line<'_>| {
        let place = || format!("{}:{}", path.display(), line.number);
        feed_line(decoder.as_mut(), line.bytes, line.overlong, &mut sink, rejects, place);
        progress(line.number);
    };
    if let Some(map) = mapped.as_ref() {
        let lines = crate::source::lines::split_mapped(map, on_line);
        return Ok((lines, map.len() as u64));
    }
    let mut stream = crate::source::lines::open_stream(path).map_err(read_err)?;
    let mut splitter = LineSplitter::default();
    let mut bytes = 0u64;
    loop {
        splitter.drain_complete(&mut on_line);
        let n = splitter.fill(&mut stream).map_err(read_err)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    splitter.finish(&mut on_line);
    Ok((splitter.line_no, bytes))
}

/// The decoder of a line format, with the options' service and fields.
fn line_decoder(path: &Path, format: Format, opts: &ReplayOptions) -> Result<Box<dyn Decoder>, ReplayError> {
    let fields: Vec<&str> = opts.fields.iter().map(String::as_str).collect();
    match (format, fields.is_empty()) {
        (Format::CloudFrontRealtime, true) => Err(ReplayError::BadFormat {
            path: path.to_path_buf(),
            message: "format cloudfront-realtime needs the distribution's field list: pass --fields".into(),
        }),
        _ => format
            .decoder_with_fields(&opts.service, &fields)
            .map_err(|message| ReplayError::BadFormat { path: path.to_path_buf(), message }),
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A file (plain or gzip) buffered, counting the bytes read.
fn open_counted(path: &Path) -> std::io::Result<BufReader<Counted<Box<dyn Read + Send>>>> {
    let stream = crate::source::lines::open_stream(path)?;
    Ok(BufReader::with_capacity(1 << 20, Counted { inner: stream, bytes: 0 }))
}

/// Saved push payloads: a stream of JSON values (each a subscription
/// message, or a Telemetry API batch), or, for subscriptions, one record
/// per line. Returns (log events or batch elements, bytes).
fn replay_payloads(
    path: &Path,
    format: ReplayFormat,
    opts: &ReplayOptions,
    count: &mut Counting,
    tally: &mut Tally,
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let mut reader = open_counted(path).map_err(read_err)?;
    let first = loop {
        let buf = reader.fill_buf().map_err(read_err)?;
        if buf.is_empty() {
            return Ok((0, reader.get_ref().bytes));
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                break b;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    let routes = if opts.routes.is_empty() { SubscriptionDecoder::default_routes() } else { opts.routes.clone() };
    let mut sub = SubscriptionDecoder::new(&opts.service, routes);
    sub.want(count.engine.wanted());
    let mut telemetry = LambdaDecoder::new(&opts.service);
    telemetry.want(count.engine.wanted());
    let mut sink = |ev: &RequestEvent<'_>| count.observe(ev);
    let mut looked_at = 0u64;
    let mut one = |payload: &[u8], place: String, tally: &mut Tally| match format {
        ReplayFormat::LambdaTelemetry => {
            let result = telemetry.decode_telemetry_batch(payload, &mut sink);
            for (reason, n) in telemetry.take_batch_rejects() {
                for _ in 0..n {
                    tally.rejects.record(reason, || place.clone(), b"");
                }
            }
            match result {
                Ok(n) => looked_at += n as u64,
                Err(r) => tally.rejects.record(r.reason, || place, payload),
            }
        }
        _ => match sub.decode_payload(payload, &mut sink, &mut tally.rejects, &place) {
            Ok(stats) => {
                looked_at += stats.log_events;
                tally.unrouted_log_events += stats.unrouted_log_events;
                tally.add_unrouted_groups(stats.new_unrouted_groups);
            }
            Err(r) => tally.rejects.record(r.reason, || place, payload),
        },
    };
    if first == b'{' || first == b'[' {
        let values = serde_json::Deserializer::from_reader(&mut reader).into_iter::<Box<serde_json::value::RawValue>>();
        for (i, value) in values.enumerate() {
            let place = format!("{}:value {}", path.display(), i + 1);
            match value {
                Ok(v) => one(v.get().as_bytes(), place, tally),
                Err(e) if e.is_io() => return Err(read_err(std::io::Error::other(e))),
                Err(_) => {
                    // The rest of the file cannot be split into values.
                    tally.rejects.record(RejectReason::BadJson, || place, b"");
                    break;
                }
            }
        }
    } else {
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = (&mut reader).take(MAX_RECORD_LINE + 1).read_until(b'\n', &mut line).map_err(read_err)?;
            if n == 0 {
                break;
            }
            number += 1;
            let place = format!("{}:{}", path.display(), number);
            if line.last() != Some(&b'\n') && n as u64 > MAX_RECORD_LINE {
                tally.rejects.record(RejectReason::TooLong, || place, &line);
                // Skip to the end of the overlong line.
                loop {
                    line.clear();
                    let n = (&mut reader).take(1 << 20).read_until(b'\n', &mut line).map_err(read_err)?;
                    if n == 0 || line.last() == Some(&b'\n') {
                        break;
                    }
                }
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            one(&line, place, tally);
        }
    }
    Ok((looked_at, reader.get_ref().bytes))
}

/// Bytes a JSON export may hold between two log events (one event and the
/// JSON around it); more is rejected as `too_long` and ends the file.
const MAX_EXPORT_EVENT: u64 = 4 << 20;

/// Hands a JSON parser at most `limit` bytes until `reset` is called again.
struct Limited<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "log event over the limit"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// Log events exported from CloudWatch Logs (`decode/cloudwatch_export.rs`):
/// a CSV download or the JSON the CLI prints, streamed; each message goes
/// to the decoder of its log group (routes, else `format`, else told from
/// the messages). Returns (log events, bytes).
fn replay_export(
    path: &Path,
    container: Container,
    format: Format,
    opts: &ReplayOptions,
    count: &mut Counting,
    tally: &mut Tally,
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let mut reader = open_counted(path).map_err(read_err)?;
    let mut router = LogEventRouter::new(&opts.service, opts.routes.clone(), format);
    router.want(count.engine.wanted());
    let mut sink = |ev: &RequestEvent<'_>| count.observe(ev);
    // Log events read, the unusable ones included.
    let mut read = 0u64;
    match container {
        Container::Csv => {
            let mut columns: Option<CsvColumns> = None;
            let mut scratch = CsvScratch::default();
            let mut record = Vec::new();
            let mut line_no = 0u64;
            loop {
                let first_line = line_no + 1;
                let Some(overlong) = read_csv_record(&mut reader, &mut record, &mut line_no).map_err(read_err)? else {
                    break;
                };
                let place = || format!("{}:{}", path.display(), first_line);
                if record.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if overlong {
                    read += 1;
                    tally.rejects.record(RejectReason::TooLong, place, &record);
                    continue;
                }
                let Some(cols) = columns.as_ref() else {
                    columns = CsvColumns::from_header(&record);
                    if columns.is_none() {
                        return Err(ReplayError::BadFormat {
                            path: path.to_path_buf(),
                            message: "the first row does not name a message column".into(),
                        });
                    }
                    continue;
                };
                read += 1;
                match cols.row(&record, &mut scratch) {
                    Ok(ev) => router.log_event(ev, place, &mut sink, &mut tally.rejects),
                    Err(reason) => tally.rejects.record(reason, place, &record),
                }
            }
        }
        Container::Json => {
            let left = std::rc::Rc::new(std::cell::Cell::new(MAX_EXPORT_EVENT));
            let mut de = serde_json::Deserializer::from_reader(Limited { inner: &mut reader, left: left.clone() });
            let mut n = 0u64;
            let ending = {
                let rejects = &mut tally.rejects;
                let mut on_event = |ev: cloudwatch_export::JsonLogEvent| {
                    n += 1;
                    left.set(MAX_EXPORT_EVENT);
                    let place = || format!("{}:event {}", path.display(), n);
                    match ev.as_event() {
                        Ok(e) => router.log_event(e, place, &mut sink, rejects),
                        Err(reason) => rejects.record(reason, place, ev.message.as_deref().unwrap_or("").as_bytes()),
                    }
                };
                loop {
                    let seed = cloudwatch_export::EventsSeed { on_event: &mut on_event };
                    match serde::de::DeserializeSeed::deserialize(seed, &mut de) {
                        Ok(()) => {}
                        Err(e) if e.io_error_kind() == Some(std::io::ErrorKind::FileTooLarge) => {
                            break Some(RejectReason::TooLong);
                        }
                        Err(e) if e.is_io() => return Err(read_err(std::io::Error::other(e))),
                        // The rest of the file cannot be split into events.
                        Err(_) => break Some(RejectReason::BadJson),
                    }
                    if de.end().is_ok() {
                        break None;
                    }
                }
            };
            if let Some(reason) = ending {
                tally.rejects.record(reason, || format!("{}:event {}", path.display(), n + 1), b"");
            }
            read = n;
        }
    }
    let stats = router.finish();
    if !stats.told && stats.log_events > 0 {
        return Err(ReplayError::UnknownFormat { path: path.to_path_buf() });
    }
    tally.unrouted_log_events += stats.unrouted_log_events;
    for g in stats.unrouted_groups {
        if tally.unrouted_groups.len() < MAX_UNROUTED_GROUPS && !tally.unrouted_groups.contains(&g) {
            tally.unrouted_groups.push(g);
        }
    }
    Ok((read, reader.get_ref().bytes))
}

/// The next CSV record (lines up to a newline outside quotes) into `record`,
/// and whether it was over [`cloudwatch_export::MAX_RECORD`] (then only its
/// start is kept). `None` at the end of the file.
fn read_csv_record(
    reader: &mut impl BufRead,
    record: &mut Vec<u8>,
    line_no: &mut u64,
) -> std::io::Result<Option<bool>> {
    record.clear();
    let mut quotes = 0usize;
    let mut overlong = false;
    loop {
        let start = record.len();
        let n = reader.take(1 << 20).read_until(b'\n', record)?;
        if n == 0 {
            return Ok((start > 0 || overlong).then_some(overlong));
        }
        quotes += memchr::memchr_iter(b'"', &record[start..]).count();
        let ended = record.last() == Some(&b'\n');
        if ended {
            *line_no += 1;
        }
        if record.len() > cloudwatch_export::MAX_RECORD {
            overlong = true;
            record.truncate(crate::decode::SAMPLE_BYTES);
        }
        if ended && quotes.is_multiple_of(2) {
            return Ok(Some(overlong));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_payloads_are_told_from_line_formats() {
        let detect = |s: &str| ReplayFormat::detect_payload(s.as_bytes());
        let sub = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/f","logEvents":[]}"#;
        assert_eq!(detect(sub), Some(ReplayFormat::CloudWatchLogs));
        assert_eq!(
            detect("{\n  \"messageType\": \"DATA_MESSAGE\",\n  \"logGroup\": \"/x\"\n}"),
            Some(ReplayFormat::CloudWatchLogs)
        );
        assert_eq!(detect("H4sIAAAAAAAA/6tWKkktLlGyUlAqS8wpTlWqBQA=\n"), Some(ReplayFormat::CloudWatchLogs));
        let batch = r#"[{"time":"2026-11-20T11:00:00Z","type":"platform.report","record":{"requestId":"a"}}]"#;
        assert_eq!(detect(batch), Some(ReplayFormat::LambdaTelemetry));
        // Line formats are left to Format::detect.
        assert_eq!(detect(r#"{"ts": 1, "status": 200}"#), None);
        assert_eq!(detect(r#"{"time":"2026-11-20T11:00:00Z","type":"platform.report","record":{}}"#), None);
        assert_eq!(detect("#Version: 1.0\n"), None);
        assert_eq!(detect("   \n"), None);
        assert_eq!(detect(""), None);
    }

    #[test]
    fn format_names_parse() {
        for name in ReplayFormat::NAMES.split(", ") {
            assert!(ReplayFormat::parse(name).is_some(), "{name}");
        }
        assert_eq!(ReplayFormat::parse("lambda-telemetry"), Some(ReplayFormat::LambdaTelemetry));
        assert_eq!(ReplayFormat::parse("lambda"), Some(ReplayFormat::Lines(Format::Lambda)));
        assert_eq!(ReplayFormat::parse("cloudwatch"), None);
    }
}
