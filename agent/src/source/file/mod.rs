//! File tail: follow the files matching a set of globs, from a checkpoint.
//!
//! Files are identified by device and inode (not by path), so a rename during
//! rotation keeps its place; a file whose first bytes changed, or that shrank
//! below its offset (copytruncate), is read again from the start. Gzip files
//! are read once, whole. Only complete lines are consumed: the offset in the
//! checkpoint always sits just after a newline.
//!
//! **Architecture invariant:** a source only moves bytes and remembers where
//! it is. The daemon commits the counts of a poll together with
//! [`FileTail::checkpoint`] in one store transaction.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::{Decoder, Format, MAX_LINE, Rejects, feed_line};
use crate::event::{EventSink, Wanted};
use crate::source::lines::{LineSplitter, read_full};
use crate::source::{PollOutcome, Source};

/// Bytes of a file's start that identify its content (checked on resume).
const HEAD_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    /// Source name: checkpoint key and metric label.
    pub name: String,
    /// Globs of files to follow.
    pub paths: Vec<String>,
    pub format: Format,
    /// Service for records that carry none.
    pub service: String,
    /// At most this many bytes are read per poll, so a batch stays bounded.
    pub max_batch_bytes: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileCheckpoint {
    /// Keyed by `device:inode`.
    pub files: BTreeMap<String, FileState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileState {
    /// Last path the file was seen at (for humans).
    pub path: String,
    /// Bytes consumed: always just after a newline.
    pub offset: u64,
    /// FNV-1a of the first `head_len` bytes, to notice truncation or reuse.
    pub head_hash: u64,
    pub head_len: u32,
    /// Gzip files are read once and then only remembered.
    pub done: bool,
    /// Lines consumed, for `file:line` in reject samples.
    pub lines: u64,
}

pub struct FileTail {
    cfg: FileSourceConfig,
    state: FileCheckpoint,
    /// Decoders per file key, so per-file header state survives between polls.
    decoders: BTreeMap<String, Box<dyn Decoder>>,
    /// Optional event fields the engine reads.
    wanted: Wanted,
}

#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("source {source_name}: bad glob {glob:?}: {message}")]
    Glob { source_name: String, glob: String, message: String },
    #[error("source {source_name}: corrupt checkpoint: {message}")]
    Checkpoint { source_name: String, message: String },
}

impl Source for FileTail {
    fn name(&self) -> &str {
        FileTail::name(self)
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn set_wanted(&mut self, wanted: Wanted) {
        FileTail::set_wanted(self, wanted)
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        FileTail::poll(self, sink)
    }

    fn checkpoint(&self) -> Vec<u8> {
        FileTail::checkpoint(self)
    }
}

impl FileTail {
    pub fn new(cfg: FileSourceConfig, checkpoint: Option<&[u8]>) -> Result<FileTail, FileSourceError> {
        for g in &cfg.paths {
            glob::Pattern::new(g).map_err(|e| FileSourceError::Glob {
                source_name: cfg.name.clone(),
                glob: g.clone(),
                message: e.to_string(),
            })?;
        }
        let state = match checkpoint {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| FileSourceError::Checkpoint { source_name: cfg.name.clone(), message: e.to_string() })?,
            None => FileCheckpoint::default(),
        };
        Ok(FileTail { cfg, state, decoders: BTreeMap::new(), wanted: Wanted::ALL })
    }

    /// Tell the decoders which optional fields are read (after a spec reload).
    pub fn set_wanted(&mut self, wanted: Wanted) {
        if wanted != self.wanted {
            self.wanted = wanted;
            for d in self.decoders.values_mut() {
                d.want(wanted);
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The checkpoint to commit with the counts of the polls so far.
    pub fn checkpoint(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).expect("checkpoint serializes")
    }

    pub fn state(&self) -> &FileCheckpoint {
        &self.state
    }

    fn matching_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for g in &self.cfg.paths {
            if let Ok(paths) = glob::glob(g) {
                out.extend(paths.flatten().filter(|p| p.is_file()));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Read what is new in every matched file (up to the batch limit) and
    /// hand the decoded events to `sink`.
    pub fn poll(&mut self, sink: &mut dyn EventSink) -> PollOutcome {
        let mut out = PollOutcome::default();
        let mut budget = self.cfg.max_batch_bytes as u64;
        let paths = self.matching_paths();
        out.files = paths.len();
        let mut seen = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let key = format!("{}:{}", meta.dev(), meta.ino());
            seen.push(key.clone());
            if budget == 0 {
                let st = self.state.files.get(&key);
                let off = st.map_or(0, |s| s.offset);
                if !st.is_some_and(|s| s.done) && meta.len() > off {
                    out.backlog_bytes += meta.len() - off;
                    out.more = true;
                }
                continue;
            }
            match self.read_file(&path, &key, meta.len(), &mut budget, sink, &mut out) {
                Ok(()) => {}
                Err(e) => {
                    // Unreadable now (permissions, vanished): try again next poll.
                    tracing::warn!(source = %self.cfg.name, path = %path.display(), error = %e, "cannot read file");
                }
            }
        }
        // Forget files that no longer exist under any glob.
        self.state.files.retain(|k, _| seen.contains(k));
        self.decoders.retain(|k, _| seen.contains(k));
        out
    }

    fn read_file(
        &mut self,
        path: &Path,
        key: &str,
        len: u64,
        budget: &mut u64,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) -> io::Result<()> {
        let mut f = File::open(path)?;
        let mut head = vec![0u8; HEAD_BYTES];
        let head_n = read_full(&mut f, &mut head)?;
        head.truncate(head_n);
        let is_gzip = head.starts_with(&[0x1f, 0x8b]);
        let st = self.state.files.entry(key.to_string()).or_default();
        st.path = path.display().to_string();
        // Same file? The first bytes we hashed must still be there.
        let known_len = (st.head_len as usize).min(head.len());
        let restarted = st.offset > 0
            && (len < st.offset || fnv(&head[..known_len]) != st.head_hash || known_len < st.head_len as usize);
        if restarted {
            tracing::info!(source = %self.cfg.name, path = %path.display(), "file was truncated or replaced; reading it from the start");
            *st = FileState { path: path.display().to_string(), ..FileState::default() };
            self.decoders.remove(key);
        }
        if st.head_len < head.len() as u32 && !is_gzip {
            st.head_len = head.len() as u32;
            st.head_hash = fnv(&head);
        }
        if st.done || (len <= st.offset && !is_gzip) {
            return Ok(());
        }
        if is_gzip {
            if st.done {
                return Ok(());
            }
            st.head_len = head.len() as u32;
            st.head_hash = fnv(&head);
        }
        let format = self.cfg.format;
        let service = self.cfg.service.clone();
        let wanted = self.wanted;
        let decoder = match self.decoders.entry(key.to_string()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let fmt = match format {
                    Format::Auto => {
                        let mut stream = crate::source::lines::open_stream(path)?;
                        let mut peek = vec![0u8; 64 * 1024];
                        let n = read_full(&mut stream, &mut peek)?;
                        match Format::detect(&peek[..n]) {
                            Some(f) => f,
                            // Not enough to tell yet (or not a known format): wait.
                            None => return Ok(()),
                        }
                    }
                    f => f,
                };
                let mut d = fmt.decoder(&service).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("format {fmt:?} needs a field list, which file sources do not take"),
                    )
                })?;
                d.want(wanted);
                // Resuming mid-file: replay the header lines so column maps are known.
                if st.offset > 0 && !is_gzip {
                    let mut g = File::open(path)?;
                    let mut first = vec![0u8; 64 * 1024];
                    let n = read_full(&mut g, &mut first)?;
                    for line in first[..n.min(st.offset as usize)].split(|&b| b == b'\n') {
                        if line.first() == Some(&b'#') {
                            let _ = d.decode_line(line, &mut |_: &crate::event::RequestEvent<'_>| {});
                        } else if !line.is_empty() {
                            break;
                        }
                    }
                }
                v.insert(d)
            }
        };
        let st = self.state.files.get_mut(key).expect("inserted above");
        let mut line_no = st.lines;
        let mut on_line = |line: crate::source::lines::Line<'_>, rejects: &mut Rejects| {
            line_no += 1;
            let place = || format!("{}:{}", path.display(), line_no);
            feed_line(decoder.as_mut(), line.bytes, line.overlong, sink, rejects, place);
        };
        if is_gzip {
            let mut stream = crate::source::lines::open_stream(path)?;
            let mut splitter = LineSplitter::default();
            let rejects = &mut out.rejects;
            let n = splitter.run(&mut stream, |l| on_line(l, rejects))?;
            out.bytes += n;
            out.lines += splitter.line_no;
            *budget = budget.saturating_sub(len);
            st.offset = len;
            st.done = true;
            st.lines = line_no;
            return Ok(());
        }
        // Plain file: read from the offset up to the budget, consume whole lines.
        f.seek(SeekFrom::Start(st.offset))?;
        let want = (len - st.offset).min(*budget + MAX_LINE as u64);
        let mut buf = vec![0u8; want as usize];
        let n = read_full(&mut f, &mut buf)?;
        buf.truncate(n);
        let mut consumed = 0usize;
        let mut lines = 0u64;
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', &buf) {
            let line = &buf[start..nl];
            let overlong = line.len() > MAX_LINE;
            on_line(
                crate::source::lines::Line { number: 0, bytes: &line[..line.len().min(MAX_LINE)], overlong },
                &mut out.rejects,
            );
            lines += 1;
            start = nl + 1;
            consumed = start;
            if consumed as u64 >= *budget {
                break;
            }
        }
        // A single line longer than everything we could read: count it as
        // overlong and skip past it, so a bad file cannot stall the source.
        if consumed == 0 && buf.len() > MAX_LINE {
            on_line(
                crate::source::lines::Line { number: 0, bytes: &buf[..MAX_LINE], overlong: true },
                &mut out.rejects,
            );
            lines += 1;
            let skip_to = memchr::memchr(b'\n', &buf[MAX_LINE..]).map(|p| MAX_LINE + p + 1).unwrap_or(buf.len());
            consumed = skip_to;
        }
        st.offset += consumed as u64;
        st.lines = line_no;
        out.bytes += consumed as u64;
        out.lines += lines;
        *budget = budget.saturating_sub(consumed as u64);
        if st.offset < len {
            out.backlog_bytes += len - st.offset;
            // Unread bytes beyond a partial last line mean there is more to do now.
            if len - st.offset > (buf.len() - consumed) as u64 {
                out.more = true;
            }
        }
        Ok(())
    }
}

/// FNV-1a: a stable hash for file heads (not for security).
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
