//! The ingest thread: polls the polled sources (file tails, AWS pulls) in
//! turn. A poll reads and decodes into an [`EventBatch`] — file I/O, gzip,
//! decoding and network calls all happen here, away from the state — and
//! the batch goes to the state thread with the position after it, over a
//! bounded channel (a busy state thread slows reading down; nothing piles
//! up).
//!
//! Push sources have no thread of their own: their HTTP handlers decode
//! (`source::push`) and hand deliveries to the state thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::state::{IngestControl, Polled};
use crate::event::EventBatch;
use crate::source::Source;
use crate::telemetry::Telemetry;
use crate::telemetry::events::SourceCallsFailed;

/// What the ingest thread needs.
pub struct Ingest {
    pub sources: Vec<Box<dyn Source>>,
    pub generation: u64,
    pub poll: Duration,
    pub batches: tokio::sync::mpsc::Sender<Polled>,
    pub control: Receiver<IngestControl>,
    /// Which optional fields the SLOs read (the state thread updates it).
    pub wanted: Arc<std::sync::Mutex<crate::event::Wanted>>,
    pub telemetry: Arc<Telemetry>,
}

impl Ingest {
    /// Poll until told to stop (or until the state thread is gone).
    pub fn run(mut self) {
        loop {
            match self.control.try_recv() {
                Ok(IngestControl::Stop) | Err(TryRecvError::Disconnected) => return,
                Ok(IngestControl::Replace { generation, sources }) => {
                    self.sources = sources;
                    self.generation = generation;
                }
                Err(TryRecvError::Empty) => {}
            }
            let mut more = false;
            let wanted = *self.wanted.lock().unwrap_or_else(|e| e.into_inner());
            for source in &mut self.sources {
                source.set_wanted(wanted);
                let mut events = EventBatch::new();
                let outcome = source.poll(&mut events);
                more |= outcome.more;
                for &(error, count) in &outcome.errors {
                    SourceCallsFailed { source: source.name(), kind: source.kind(), error, count }
                        .emit(&self.telemetry);
                }
                let nothing =
                    outcome.bytes == 0 && outcome.rejects.total() == 0 && !outcome.advanced && events.is_empty();
                let backlog_changed = outcome.backlog_bytes > 0 || outcome.files > 0;
                if nothing && !backlog_changed {
                    continue;
                }
                let p = Polled {
                    generation: self.generation,
                    source: source.name().to_string(),
                    kind: source.kind(),
                    events,
                    checkpoint: source.checkpoint(),
                    outcome,
                };
                if self.batches.blocking_send(p).is_err() {
                    return;
                }
            }
            if !more {
                // Wait for the next poll in small steps, so a stop is prompt.
                let until = Instant::now() + self.poll;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.control.recv_timeout(left.min(Duration::from_millis(50))) {
                        Ok(IngestControl::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        Ok(IngestControl::Replace { generation, sources }) => {
                            self.sources = sources;
                            self.generation = generation;
                            break;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    }
                }
            }
        }
    }
}
