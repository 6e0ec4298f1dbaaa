//! Decoders: bytes in, [`RequestEvent`]s out. One file per wire or file format.
//!
//! **Architecture invariant:** a decoder never blocks, never does I/O, never
//! panics on input, and never allocates per event or per field on the hot path
//! (it may keep scratch buffers of its own). A line it cannot use is a
//! [`Reject`] with a reason from a fixed set; the caller counts it and keeps a
//! sample. Adding a log format means adding one file here and one arm to
//! [`Format`].

use std::collections::BTreeMap;
use std::fmt;

use crate::event::EventSink;

pub mod cloudfront;
pub mod ndjson;

/// Why a line was not turned into an event. Reasons are a bounded set so they
/// can be metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reject {
    pub reason: RejectReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// A data line arrived before any header told what its columns are.
    NoHeader,
    /// Fewer fields than the header promised, or a required field missing.
    MissingField,
    BadTimestamp,
    BadStatus,
    BadNumber,
    /// Not valid JSON, or JSON that is not an object.
    BadJson,
    /// Not UTF-8 where text was required.
    BadEncoding,
    /// Longer than the decoder accepts.
    TooLong,
}

impl RejectReason {
    pub const ALL: [RejectReason; 8] = [
        RejectReason::NoHeader,
        RejectReason::MissingField,
        RejectReason::BadTimestamp,
        RejectReason::BadStatus,
        RejectReason::BadNumber,
        RejectReason::BadJson,
        RejectReason::BadEncoding,
        RejectReason::TooLong,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoHeader => "no_header",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadStatus => "bad_status",
            RejectReason::BadNumber => "bad_number",
            RejectReason::BadJson => "bad_json",
            RejectReason::BadEncoding => "bad_encoding",
            RejectReason::TooLong => "too_long",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RejectReason> for Reject {
    fn from(reason: RejectReason) -> Self {
        Reject { reason }
    }
}

/// Longest line any decoder accepts (bytes); longer lines are rejected as `TooLong`.
pub const MAX_LINE: usize = 64 * 1024;

/// A line-oriented decoder. Lines come without their trailing `\n` (a trailing
/// `\r` may still be there). Header and comment lines are consumed silently
/// (they update the decoder's state and emit nothing).
pub trait Decoder: Send {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject>;

    /// Forget per-file state (column maps); called when a new file starts.
    fn reset(&mut self) {}
}

/// The formats `--format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    CloudFront,
    Ndjson,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "auto" => Some(Format::Auto),
            "cloudfront" => Some(Format::CloudFront),
            "ndjson" => Some(Format::Ndjson),
            _ => None,
        }
    }

    pub const NAMES: &'static str = "auto, cloudfront, ndjson";

    /// Guess the format from the first bytes of a file or stream.
    pub fn detect(head: &[u8]) -> Option<Format> {
        let first = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .find(|l| !l.iter().all(|b| b.is_ascii_whitespace()))?;
        if first.starts_with(b"#Version:") || first.starts_with(b"#Fields:") {
            return Some(Format::CloudFront);
        }
        if first.first() == Some(&b'{') {
            return Some(Format::Ndjson);
        }
        None
    }

    /// A fresh decoder; `default_service` names the service for events whose
    /// record carries none (CloudFront logs never do).
    pub fn decoder(self, default_service: &str) -> Option<Box<dyn Decoder>> {
        match self {
            Format::Auto => None,
            Format::CloudFront => Some(Box::new(cloudfront::CloudFrontStandardDecoder::new(default_service))),
            Format::Ndjson => Some(Box::new(ndjson::NdjsonDecoder::new(default_service))),
        }
    }
}

/// How many samples of rejected lines are kept per source and reason.
pub const SAMPLES_PER_REASON: usize = 5;
/// How much of a rejected line a sample keeps.
pub const SAMPLE_BYTES: usize = 300;

/// Rejected lines, counted per reason, with the first few kept as samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejects {
    pub by_reason: BTreeMap<RejectReason, RejectStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectStats {
    pub count: u64,
    /// `(where, line prefix)`; `where` is `file:line` or a source's position.
    pub samples: Vec<(String, String)>,
}

impl Rejects {
    pub fn record(&mut self, reason: RejectReason, place: impl FnOnce() -> String, line: &[u8]) {
        let stats = self.by_reason.entry(reason).or_default();
        stats.count += 1;
        if stats.samples.len() < SAMPLES_PER_REASON {
            let cut = &line[..line.len().min(SAMPLE_BYTES)];
            stats.samples.push((place(), String::from_utf8_lossy(cut).into_owned()));
        }
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|s| s.count).sum()
    }

    pub fn merge(&mut self, other: &Rejects) {
        for (reason, s) in &other.by_reason {
            let mine = self.by_reason.entry(*reason).or_default();
            mine.count += s.count;
            for sample in &s.samples {
                if mine.samples.len() < SAMPLES_PER_REASON {
                    mine.samples.push(sample.clone());
                }
            }
        }
    }
}
