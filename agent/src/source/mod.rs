//! Sources: they only move bytes and remember where they are (a checkpoint).
//!
//! Polled sources (file tails, AWS pulls) implement [`Source`]; the daemon's
//! ingest thread polls each in turn, and commits the counts of a poll together
//! with the source's [`Source::checkpoint`] in one store transaction. Push
//! sources (HTTP endpoints) hand whole payloads to the same thread through a
//! bounded queue instead; see [`push`].

pub mod aws;
pub mod config;
pub mod file;
pub mod lines;
pub mod push;

pub use config::{BuiltSource, SourceConfig};

use crate::decode::Rejects;
use crate::event::{EventSink, Wanted};

/// What one poll did.
#[derive(Debug, Clone, Default)]
pub struct PollOutcome {
    pub bytes: u64,
    pub lines: u64,
    pub rejects: Rejects,
    /// True when there is more to read right away (a batch limit was hit).
    pub more: bool,
    /// Files (or log streams, objects, …) currently followed.
    pub files: usize,
    /// Bytes known to exist but not yet read.
    pub backlog_bytes: u64,
    /// The position moved although nothing was read (an aggregate source
    /// passed minutes without data): the checkpoint is worth committing.
    pub advanced: bool,
    /// Failed calls to what the source reads from, per kind from a bounded
    /// set (`throttled`, `not_found`, `access_denied`, …).
    pub errors: Vec<(&'static str, u64)>,
}

impl PollOutcome {
    /// Count one failed call of `kind`.
    pub fn error(&mut self, kind: &'static str) {
        match self.errors.iter_mut().find(|(k, _)| *k == kind) {
            Some(e) => e.1 += 1,
            None => self.errors.push((kind, 1)),
        }
    }
}

/// A source the ingest thread polls.
///
/// **Invariant:** `poll` hands every event it decodes to the sink and moves
/// its in-memory position past them; `checkpoint` then describes exactly that
/// position. The daemon commits both together, so after a crash the source
/// restarts from the last committed checkpoint and nothing is counted twice.
/// `poll` must return within about a second (bound its batch) and must not
/// panic on anything it reads.
pub trait Source: Send {
    /// Checkpoint key and metric label.
    fn name(&self) -> &str;

    /// The source type as configured (`file`, `cloudwatch-logs`, …), a metric label.
    fn kind(&self) -> &'static str;

    /// Which optional fields the SLOs read (after a spec reload too).
    fn set_wanted(&mut self, _wanted: Wanted) {}

    /// Read what is new and hand the decoded events to `sink`.
    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome;

    /// The position to commit with the counts of the polls so far.
    fn checkpoint(&self) -> Vec<u8>;
}
