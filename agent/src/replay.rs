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

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::decode::cloudwatch_export::{self, Container, CsvColumns, CsvScratch, LogEventRouter};
use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::decode::lambda::LambdaDecoder;
use crate::decode::{Decoder, Format, RejectReason, Rejects, feed_line};
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
struct Counting<'a> {
    engine: &'a mut Engine,
    at: Option<i64>,
    newest: Option<i64>,
    after_at: u64,
}

impl Counting<'_> {
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

/// Replay files through decoders and engine, and report as of `at`.
pub fn replay(slos: &SloSet, files: &[PathBuf], opts: &ReplayOptions) -> ReplayOutcome {
    let mut engine = Engine::new(slos, false);
    // The report quotes no failure breakdown.
    engine.set_failure_evidence(false);
    let mut tally = Tally::default();
    let mut failed = Vec::new();
    let mut lines = 0u64;
    let mut bytes = 0u64;
    let show_progress = opts.progress && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut count = Counting { engine: &mut engine, at: opts.at_ms, newest: None, after_at: 0 };

    for path in files {
        let result = replay_file(path, opts, &mut count, &mut tally, |lines_in_file| {
            if show_progress && lines_in_file % (1 << 20) == 0 && last_progress.elapsed().as_secs_f64() >= 1.0 {
                last_progress = Instant::now();
                eprint!("\rreplaying {}: {} lines …", path.display(), lines_in_file);
            }
        });
        match result {
            Ok((l, b)) => {
                lines += l;
                bytes += b;
            }
            Err(e) => failed.push(e),
        }
    }
    let (newest, after_at) = (count.newest, count.after_at);
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

/// The first bytes of a file (decompressed), enough to tell its format.
fn head_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; 64 * 1024];
    let n = crate::source::lines::read_full(&mut crate::source::lines::open_stream(path)?, &mut head)?;
    head.truncate(n);
    Ok(head)
}

fn replay_file(
    path: &Path,
    opts: &ReplayOptions,
    count: &mut Counting<'_>,
    tally: &mut Tally,
    progress: impl FnMut(u64),
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let format = match opts.format {
        ReplayFormat::Lines(Format::Auto) => {
            let head = head_of(path).map_err(read_err)?;
            match ReplayFormat::detect_payload(&head) {
                Some(f) => f,
                None if let Some(container) = cloudwatch_export::detect(&head) => {
                    return replay_export(path, container, Format::Auto, opts, count, tally);
                }
                None => match Format::detect(&head) {
                    Some(f) => ReplayFormat::Lines(f),
                    None if head.iter().all(|b| b.is_ascii_whitespace()) => return Ok((0, 0)),
                    None => return Err(ReplayError::UnknownFormat { path: path.to_path_buf() }),
                },
            }
        }
        // A named line format is what an export's messages are.
        ReplayFormat::Lines(f) if f != Format::CloudFrontRealtime => {
            if let Some(container) = cloudwatch_export::detect(&head_of(path).map_err(read_err)?) {
                return replay_export(path, container, f, opts, count, tally);
            }
            ReplayFormat::Lines(f)
        }
        f => f,
    };
    match format {
        ReplayFormat::Lines(f) => replay_lines(path, f, opts, count, tally, progress),
        ReplayFormat::CloudWatchLogs | ReplayFormat::LambdaTelemetry => {
            replay_payloads(path, format, opts, count, tally)
        }
    }
}

fn replay_lines(
    path: &Path,
    format: Format,
    opts: &ReplayOptions,
    count: &mut Counting<'_>,
    tally: &mut Tally,
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let fields: Vec<&str> = opts.fields.iter().map(String::as_str).collect();
    let mut decoder: Box<dyn Decoder> = match (format, fields.is_empty()) {
        (Format::CloudFrontRealtime, true) => {
            return Err(ReplayError::BadFormat {
                path: path.to_path_buf(),
                message: "format cloudfront-realtime needs the distribution's field list: pass --fields".into(),
            });
        }
        _ => format
            .decoder_with_fields(&opts.service, &fields)
            .map_err(|message| ReplayError::BadFormat { path: path.to_path_buf(), message })?,
    };
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

/// Saved push payloads: a stream of JSON values (each a subscription
/// message, or a Telemetry API batch), or, for subscriptions, one record
/// per line. Returns (log events or batch elements, bytes).
fn replay_payloads(
    path: &Path,
    format: ReplayFormat,
    opts: &ReplayOptions,
    count: &mut Counting<'_>,
    tally: &mut Tally,
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let stream = crate::source::lines::open_stream(path).map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, Counted { inner: stream, bytes: 0 });
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
                for g in stats.new_unrouted_groups {
                    if tally.unrouted_groups.len() < MAX_UNROUTED_GROUPS && !tally.unrouted_groups.contains(&g) {
                        tally.unrouted_groups.push(g);
                    }
                }
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
    count: &mut Counting<'_>,
    tally: &mut Tally,
) -> Result<(u64, u64), ReplayError> {
    let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
    let stream = crate::source::lines::open_stream(path).map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, Counted { inner: stream, bytes: 0 });
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
