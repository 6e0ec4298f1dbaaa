//! File tail: follow the files matching a set of globs, from a checkpoint.
//!
//! # Files are known by their content
//!
//! A file is identified by a *fingerprint* of its content, never by its path
//! or inode: the FNV-1a hash of its leading header lines (lines that start
//! with `#`, and blank lines) together with its first data line, that line
//! cut to `fingerprint_bytes` (1 KiB by default). For a gzip file the bytes
//! are the decompressed ones, so `app.log.1` and `app.log.1.gz` share one.
//!
//! - **Not the header alone.** Every CloudFront standard log begins with the
//!   same `#Version` and `#Fields` lines, longer than any fixed prefix worth
//!   hashing, so "the first K bytes" would make them all one file. The first
//!   record carries a timestamp and a request id in every format we read, so
//!   two files only collide when their first records are byte for byte equal.
//! - **Stable.** The region ends where its own bytes say (after the first data
//!   line, or `fingerprint_bytes` into it), so a fingerprint taken when the
//!   file held one line is still its fingerprint a gigabyte later.
//! - **Too short: wait.** A file without a complete first data line (empty,
//!   header only, a line half written) has no fingerprint; it is not read and
//!   nothing is recorded for it. Nothing is late because of it: only complete
//!   lines are ever consumed, so such a file has nothing to count yet. A
//!   device:inode fallback would be wrong exactly when it matters: a
//!   copytruncate copy has another inode.
//!
//! The checkpoint maps `fp<K>:<hash>` (K = `fingerprint_bytes`) to the offset
//! reached in that content. Files with one fingerprint are copies of one
//! content and share its offset:
//!
//! - **rename** (`app.log` → `app.log.1`): the renamed file continues from its
//!   offset, lines the writer appended after the rename included; the new
//!   `app.log` has another first line, so its own entry, from 0.
//! - **copytruncate** (`cp app.log app.log.1; truncate app.log`): the copy
//!   has the fingerprint of what was read, so it continues from the offset
//!   (lines written since the last poll and before the copy are in it). The
//!   truncated original has no fingerprint until its next first line.
//! - Of several plain copies the longest is read, and a copy shorter than the
//!   offset has nothing new (the rest was read from another copy). A gzip
//!   copy is read only when no plain copy is there.
//! - A path reused by other content, a reused inode, a file truncated and
//!   written again: another first line, another entry, read from 0.
//!
//! The fingerprint is checked again on the descriptor the bytes were read
//! from, after reading them, so a rotation between the scan and the read
//! never hands one file's bytes over at another's offset.
//!
//! **Gzip** files are read once: streamed in batches like plain files, their
//! offset in decompressed bytes, and marked `done` at the clean end of the
//! stream; a done entry's gzip copies are never opened again. A stream that
//! ends early (a file still being compressed) is read up to its last complete
//! line and tried again when the file changes. So `app.log.1` read in part,
//! then compressed to `app.log.1.gz` and removed, is finished from the `.gz`
//! at the same offset, with no line counted twice.
//!
//! **Bounded.** The checkpoint holds one entry per content present under the
//! globs, plus entries of contents that vanished, kept `FORGET_AFTER` (so a
//! file briefly unreadable, or between rename and compression, is not read
//! again) and at most `MAX_VANISHED` of them, the longest gone dropped first.
//!
//! **Older checkpoints** keyed `device:inode` (before fingerprints), or made
//! with another `fingerprint_bytes`, are migrated at the first poll that sees
//! their file: same device and inode with the same first bytes as recorded
//! (the check the old tail made), or the same fingerprint under the old K.
//!
//! **Limits.** Two files with the same header and first data line (up to K
//! bytes) are taken for one. Content rewritten in place behind the offset
//! while keeping its first line is not noticed. A plain file's last line is
//! counted once it ends with a newline.
//!
//! **Architecture invariant:** a source only moves bytes and remembers where
//! it is, and a checkpoint offset always sits just after a newline (or in
//! a line too long to keep, with `skipping` set). The daemon commits the
//! counts of a poll together with [`FileTail::checkpoint`] in one store
//! transaction.

pub mod config;
mod fingerprint;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::fingerprint::{fnv, read_head};
use crate::decode::{Decoder, Format, MAX_LINE, feed_line};
use crate::event::{EventSink, RequestEvent, Wanted};
use crate::source::{PollOutcome, Source};

/// Default `fingerprint_bytes`.
pub const DEFAULT_FINGERPRINT_BYTES: usize = 1024;
/// Smallest `fingerprint_bytes`: fewer bytes of a record than this are
/// mostly its timestamp.
pub const MIN_FINGERPRINT_BYTES: usize = 64;
/// Largest `fingerprint_bytes` (a decoder rejects longer lines anyway).
pub const MAX_FINGERPRINT_BYTES: usize = MAX_LINE;

/// How long the entry of a content no longer seen under the globs is kept.
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// ... and in at least this many polls (so a slow poll is not the whole wait).
const FORGET_AFTER_POLLS: u32 = 3;
/// Most entries of vanished contents kept.
const MAX_VANISHED: usize = 1024;
/// Decompressed bytes read at a time from a gzip file.
const GZIP_CHUNK: usize = 256 << 10;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    /// Source name: checkpoint key and metric label.
    pub name: String,
    /// Globs of files to follow.
    pub paths: Vec<String>,
    pub format: Format,
    /// The field list of formats that need one (CloudFront real-time logs).
    pub fields: Vec<String>,
    /// Service for records that carry none.
    pub service: String,
    /// At most this many bytes are read per poll, so a batch stays bounded.
    pub max_batch_bytes: usize,
    /// Most bytes of a file's first data line that go into its fingerprint,
    /// with the header lines before it.
    pub fingerprint_bytes: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileCheckpoint {
    /// Keyed by content fingerprint, `fp<K>:<16 hex digits>`. Entries of
    /// older checkpoints are keyed `device:inode` until migrated.
    pub files: BTreeMap<String, FileState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileState {
    /// Last path the content was read from (for humans).
    pub path: String,
    /// Bytes consumed (decompressed bytes for gzip): always just after a
    /// newline, unless `skipping`.
    pub offset: u64,
    /// A gzip copy was read to its end: gzip copies are not opened again.
    #[serde(default)]
    pub done: bool,
    /// Lines consumed, for `file:line` in reject samples.
    #[serde(default)]
    pub lines: u64,
    /// The offset is inside a line too long to keep, already counted as
    /// rejected: skip to its end before reading on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipping: bool,
    /// Entries keyed `device:inode` only: FNV-1a of the file's first
    /// `head_len` bytes, as the old tail recorded them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_len: Option<u32>,
}

/// A checkpoint key, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Content {
        k: usize,
    },
    /// The old scheme.
    Inode {
        dev: u64,
        ino: u64,
    },
}

impl Key {
    fn parse(s: &str) -> Option<Key> {
        if let Some(rest) = s.strip_prefix("fp") {
            let (k, hash) = rest.split_once(':')?;
            u64::from_str_radix(hash, 16).ok()?;
            return Some(Key::Content { k: k.parse().ok()? });
        }
        let (dev, ino) = s.split_once(':')?;
        Some(Key::Inode { dev: dev.parse().ok()?, ino: ino.parse().ok()? })
    }
}

fn content_key(k: usize, hash: u64) -> String {
    format!("fp{k}:{hash:016x}")
}

/// The key of content starting with `head`, once it has a fingerprint.
fn key_of(head: &[u8], k: usize) -> Option<String> {
    fingerprint::fingerprint(head, k).map(|h| content_key(k, h))
}

/// A file matched by the globs, as one poll found it.
#[derive(Debug)]
struct Scanned {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    gzip: bool,
    /// `None`: no fingerprint yet (not a complete data line).
    key: Option<String>,
}

/// A gzip file's key, valid while its size and mtime stay.
struct GzipHead {
    len: u64,
    mtime: (i64, i64),
    key: Option<String>,
}

/// An open decompressor, so the next poll goes on with a gzip file without
/// decompressing its start again.
struct GzipCursor {
    key: String,
    dev: u64,
    ino: u64,
    /// Content offset of `buf[0]`.
    pos: u64,
    stream: Box<dyn Read + Send>,
    /// Decompressed, not consumed.
    buf: Vec<u8>,
    ended: bool,
}

pub struct FileTail {
    cfg: FileSourceConfig,
    state: FileCheckpoint,
    /// Decoders per checkpoint key, so per-file header state survives between polls.
    decoders: BTreeMap<String, Box<dyn Decoder>>,
    /// Optional event fields the engine reads.
    wanted: Wanted,
    /// Entries whose content was not seen by the last polls: since when, in how many polls.
    unseen: HashMap<String, (Instant, u32)>,
    forget_after: Duration,
    max_vanished: usize,
    gzip_heads: HashMap<(u64, u64), GzipHead>,
    gzip_cursor: Option<GzipCursor>,
    /// Gzip files whose stream failed, with their size and mtime then: not
    /// tried again until one of them changes.
    gzip_failed: HashMap<(u64, u64), (u64, (i64, i64))>,
    /// Read buffer, kept between polls.
    scratch: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("source {source_name}: bad glob {glob:?}: {message}")]
    Glob { source_name: String, glob: String, message: String },
    #[error("source {source_name}: corrupt checkpoint: {message}")]
    Checkpoint { source_name: String, message: String },
    #[error("source {source_name}: fingerprint_bytes must be from {MIN_FINGERPRINT_BYTES} to {MAX_FINGERPRINT_BYTES}")]
    FingerprintBytes { source_name: String },
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
        if !(MIN_FINGERPRINT_BYTES..=MAX_FINGERPRINT_BYTES).contains(&cfg.fingerprint_bytes) {
            return Err(FileSourceError::FingerprintBytes { source_name: cfg.name.clone() });
        }
        let state = match checkpoint {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| FileSourceError::Checkpoint { source_name: cfg.name.clone(), message: e.to_string() })?,
            None => FileCheckpoint::default(),
        };
        Ok(FileTail {
            cfg,
            state,
            decoders: BTreeMap::new(),
            wanted: Wanted::ALL,
            unseen: HashMap::new(),
            forget_after: FORGET_AFTER,
            max_vanished: MAX_VANISHED,
            gzip_heads: HashMap::new(),
            gzip_cursor: None,
            gzip_failed: HashMap::new(),
            scratch: Vec::new(),
        })
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
        let paths = self.matching_paths();
        out.files = paths.len();
        let mut scanned = Vec::with_capacity(paths.len());
        let mut inodes = HashSet::new();
        for path in paths {
            match self.scan(&path) {
                // A hard link is the same file.
                Ok(Some(s)) if inodes.insert((s.dev, s.ino)) => scanned.push(s),
                Ok(_) => {}
                // Renamed or removed since the listing: rotation, not a problem.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Unreadable now (permissions): try again next poll.
                Err(e) => {
                    tracing::warn!(source = %self.cfg.name, path = %path.display(), error = %e, "cannot read file")
                }
            }
        }
        self.gzip_heads.retain(|i, _| inodes.contains(i));
        self.gzip_failed.retain(|i, _| inodes.contains(i));
        self.migrate(&scanned);

        // Copies of one content form a group, in path order.
        let mut groups: Vec<(&str, Vec<&Scanned>)> = Vec::new();
        let mut by_key: HashMap<&str, usize> = HashMap::new();
        for s in &scanned {
            let Some(key) = s.key.as_deref() else { continue };
            match by_key.get(key) {
                Some(&i) => groups[i].1.push(s),
                None => {
                    by_key.insert(key, groups.len());
                    groups.push((key, vec![s]));
                }
            }
        }
        let mut budget = self.cfg.max_batch_bytes as u64;
        for (key, members) in &groups {
            match self.read_group(key, members, &mut budget, sink, &mut out) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(source = %self.cfg.name, path = %members[0].path.display(), error = %e, "cannot read file")
                }
            }
        }
        let seen: HashSet<&str> = groups.iter().map(|g| g.0).collect();
        self.forget_vanished(&seen);
        out
    }

    /// Stat a matched file and take its fingerprint.
    fn scan(&mut self, path: &Path) -> io::Result<Option<Scanned>> {
        let f = File::open(path)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        let mtime = (meta.mtime(), meta.mtime_nsec());
        let k = self.cfg.fingerprint_bytes;
        let mut magic = [0u8; 2];
        let gzip = read_full_at(&f, 0, &mut magic)? == 2 && magic == GZIP_MAGIC;
        let key = if gzip {
            match self.gzip_heads.get(&(dev, ino)) {
                Some(h) if h.len == len && h.mtime == mtime => h.key.clone(),
                _ => {
                    let mut stream = flate2::read::MultiGzDecoder::new(ReadAt { f: &f, pos: 0 });
                    let (head, _) = read_head(&mut stream, k, true)?;
                    let key = key_of(&head, k);
                    self.gzip_heads.insert((dev, ino), GzipHead { len, mtime, key: key.clone() });
                    key
                }
            }
        } else {
            let (head, _) = read_head(&mut ReadAt { f: &f, pos: 0 }, k, false)?;
            key_of(&head, k)
        };
        Ok(Some(Scanned { path: path.to_path_buf(), dev, ino, len, mtime, gzip, key }))
    }

    /// Read what is new of one content, from the best of its copies.
    fn read_group(
        &mut self,
        key: &str,
        members: &[&Scanned],
        budget: &mut u64,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) -> io::Result<()> {
        // The longest plain copy (the first by path on a tie).
        let plain = members.iter().filter(|m| !m.gzip).fold(None::<&Scanned>, |best, m| match best {
            Some(b) if b.len >= m.len => Some(b),
            _ => Some(m),
        });
        let st = self.state.files.entry(key.to_string()).or_default();
        match plain {
            Some(m) => {
                st.path = m.path.display().to_string();
                if m.len <= st.offset {
                    return Ok(());
                }
                if *budget == 0 {
                    out.backlog_bytes += m.len - st.offset;
                    out.more = true;
                    return Ok(());
                }
                self.read_plain(key, m, budget, sink, out)
            }
            None => {
                let m = members[0];
                st.path = m.path.display().to_string();
                if st.done || self.gzip_failed.get(&(m.dev, m.ino)) == Some(&(m.len, m.mtime)) {
                    return Ok(());
                }
                if *budget == 0 {
                    // Compressed bytes: the decompressed size is not known before reading.
                    out.backlog_bytes += m.len;
                    out.more = true;
                    return Ok(());
                }
                self.read_gzip(key, m, budget, sink, out)
            }
        }
    }

    fn read_plain(
        &mut self,
        key: &str,
        m: &Scanned,
        budget: &mut u64,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) -> io::Result<()> {
        let k = self.cfg.fingerprint_bytes;
        let f = File::open(&m.path)?;
        let len = f.metadata()?.len();
        let offset = self.state.files.get(key).map_or(0, |s| s.offset);
        if len <= offset {
            return Ok(());
        }
        let want = (len - offset).min(*budget + MAX_LINE as u64);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        // Room for exactly what is read: `read_to_end` alone would double
        // its way up to twice the batch.
        buf.reserve_exact(usize::try_from(want).unwrap_or(usize::MAX));
        ReadAt { f: &f, pos: offset }.take(want).read_to_end(&mut buf)?;
        // Still the content of `key`? The path may have been rotated since
        // the scan. Checked after the read, on the same descriptor: if the
        // first bytes are still there, the bytes read are this content's.
        let (head, _) = read_head(&mut ReadAt { f: &f, pos: 0 }, k, false)?;
        let decoder =
            if key_of(&head, k).as_deref() == Some(key) { self.take_decoder(key, &head, offset)? } else { None };
        let Some(mut decoder) = decoder else {
            self.scratch = buf;
            return Ok(());
        };
        let st = self.state.files.get_mut(key).expect("read_group made the entry");
        let mut skipping = st.skipping;
        let mut line_no = st.lines;
        let path = &m.path;
        let rejects = &mut out.rejects;
        let mut on_line = |line: &[u8], overlong: bool| {
            line_no += 1;
            let n = line_no;
            feed_line(decoder.as_mut(), line, overlong, sink, rejects, || format!("{}:{n}", path.display()));
        };
        let (consumed, lines) = consume_lines(&buf, *budget, &mut skipping, &mut on_line);
        st.offset += consumed as u64;
        st.lines = line_no;
        st.skipping = skipping;
        // Read past where a gzip copy ended: a later gzip copy may hold more.
        st.done = false;
        out.bytes += consumed as u64;
        out.lines += lines;
        *budget = budget.saturating_sub(consumed as u64);
        let rest = len - st.offset;
        if rest > 0 {
            out.backlog_bytes += rest;
            // More than a partial last line left, or the budget cut the batch.
            if rest > (buf.len() - consumed) as u64 || *budget == 0 {
                out.more = true;
            }
        }
        self.decoders.insert(key.to_string(), decoder);
        self.scratch = buf;
        Ok(())
    }

    fn read_gzip(
        &mut self,
        key: &str,
        m: &Scanned,
        budget: &mut u64,
        sink: &mut dyn EventSink,
        out: &mut PollOutcome,
    ) -> io::Result<()> {
        let offset = self.state.files.get(key).map_or(0, |s| s.offset);
        let reuse = self.gzip_cursor.as_ref().is_some_and(|c| {
            c.key == key && (c.dev, c.ino) == (m.dev, m.ino) && c.pos == offset && self.decoders.contains_key(key)
        });
        let (mut cursor, mut decoder) = if reuse {
            let c = self.gzip_cursor.take().expect("checked above");
            let d = self.decoders.remove(key).expect("checked above");
            (c, d)
        } else {
            self.gzip_cursor = None;
            match self.open_gzip(key, m, offset) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.gzip_failed.insert((m.dev, m.ino), (m.len, m.mtime));
                    return Err(e);
                }
            }
        };
        let st = self.state.files.get_mut(key).expect("read_group made the entry");
        let mut skipping = st.skipping;
        let mut line_no = st.lines;
        let path = &m.path;
        let rejects = &mut out.rejects;
        let mut on_line = |line: &[u8], overlong: bool| {
            line_no += 1;
            let n = line_no;
            feed_line(decoder.as_mut(), line, overlong, sink, rejects, || format!("{}:{n}", path.display()));
        };
        let mut consumed = 0u64;
        let mut lines = 0u64;
        let mut failure = None;
        loop {
            let (c, l) = consume_lines(&cursor.buf, *budget - consumed, &mut skipping, &mut on_line);
            cursor.buf.drain(..c);
            consumed += c as u64;
            lines += l;
            if consumed >= *budget || cursor.ended || failure.is_some() {
                break;
            }
            // Bytes read before an error are kept in `buf`; only its
            // complete lines are consumed.
            match (&mut cursor.stream).take(GZIP_CHUNK as u64).read_to_end(&mut cursor.buf) {
                Ok(0) => cursor.ended = true,
                Ok(_) => {}
                Err(e) => failure = Some(e),
            }
        }
        let mut done = false;
        if cursor.ended && consumed < *budget {
            // The clean end of the stream: its last line needs no newline.
            if !cursor.buf.is_empty() {
                if !skipping {
                    let line = &cursor.buf[..cursor.buf.len().min(MAX_LINE)];
                    on_line(line, cursor.buf.len() > MAX_LINE);
                    lines += 1;
                }
                consumed += cursor.buf.len() as u64;
                cursor.buf.clear();
            }
            skipping = false;
            done = true;
        }
        st.offset += consumed;
        st.lines = line_no;
        st.skipping = skipping;
        st.done = done;
        out.bytes += consumed;
        out.lines += lines;
        *budget = budget.saturating_sub(consumed);
        if let Some(e) = failure {
            // A file still being compressed, or a damaged one: what was read
            // up to its last complete line stays read.
            self.gzip_failed.insert((m.dev, m.ino), (m.len, m.mtime));
            self.decoders.insert(key.to_string(), decoder);
            return Err(e);
        }
        if !done {
            cursor.pos = st.offset;
            self.gzip_cursor = Some(cursor);
            self.decoders.insert(key.to_string(), decoder);
            out.backlog_bytes += m.len;
            out.more = true;
        }
        Ok(())
    }

    /// Open a gzip copy of `key` at content offset `offset`: `None` when it
    /// turns out not to be one (it changed since the scan) or has nothing
    /// after the offset (it is marked done then).
    fn open_gzip(&mut self, key: &str, m: &Scanned, offset: u64) -> io::Result<Option<(GzipCursor, Box<dyn Decoder>)>> {
        let k = self.cfg.fingerprint_bytes;
        let f = File::open(&m.path)?;
        let meta = f.metadata()?;
        if (meta.dev(), meta.ino()) != (m.dev, m.ino) {
            return Ok(None);
        }
        let mut stream: Box<dyn Read + Send> = Box::new(flate2::read::MultiGzDecoder::new(f));
        let (head, _) = read_head(&mut stream, k, true)?;
        if key_of(&head, k).as_deref() != Some(key) {
            return Ok(None);
        }
        let Some(decoder) = self.take_decoder(key, &head, offset)? else { return Ok(None) };
        let buf = if offset <= head.len() as u64 {
            head[offset as usize..].to_vec()
        } else {
            let skip = offset - head.len() as u64;
            let skipped = io::copy(&mut (&mut stream).take(skip), &mut io::sink())?;
            if skipped < skip {
                // A shorter copy of what was read.
                if let Some(st) = self.state.files.get_mut(key) {
                    st.done = true;
                }
                return Ok(None);
            }
            Vec::new()
        };
        let cursor =
            GzipCursor { key: key.to_string(), dev: m.dev, ino: m.ino, pos: offset, stream, buf, ended: false };
        Ok(Some((cursor, decoder)))
    }

    /// The decoder of `key`, or a new one (`None` while `auto` cannot tell
    /// the format yet). A new decoder that starts inside the content is fed
    /// the header lines before the offset, so column maps are known again.
    fn take_decoder(&mut self, key: &str, head: &[u8], offset: u64) -> io::Result<Option<Box<dyn Decoder>>> {
        if let Some(d) = self.decoders.remove(key) {
            return Ok(Some(d));
        }
        let fmt = match self.cfg.format {
            Format::Auto => match Format::detect(head) {
                Some(f) => f,
                None => return Ok(None),
            },
            f => f,
        };
        let fields: Vec<&str> = self.cfg.fields.iter().map(String::as_str).collect();
        let mut d = fmt
            .decoder_with_fields(&self.cfg.service, &fields)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("format {fmt:?}: {e}")))?;
        d.want(self.wanted);
        let before = &head[..head.len().min(usize::try_from(offset).unwrap_or(usize::MAX))];
        for line in before.split(|&b| b == b'\n') {
            if line.first() == Some(&b'#') {
                let _ = d.decode_line(line, &mut |_: &RequestEvent<'_>| {});
            } else if !line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        Ok(Some(d))
    }

    /// Move entries of an older checkpoint (keyed `device:inode`, or made
    /// with another `fingerprint_bytes`) to the key their file has now.
    fn migrate(&mut self, scanned: &[Scanned]) {
        let k = self.cfg.fingerprint_bytes;
        let mut old_ks = BTreeSet::new();
        let mut inodes = HashSet::new();
        for key in self.state.files.keys() {
            match Key::parse(key) {
                Some(Key::Content { k: old }) if old != k => {
                    old_ks.insert(old);
                }
                Some(Key::Inode { dev, ino }) => {
                    inodes.insert((dev, ino));
                }
                _ => {}
            }
        }
        if old_ks.is_empty() && inodes.is_empty() {
            return;
        }
        for s in scanned {
            let Some(new_key) = s.key.as_deref() else { continue };
            let by_inode = inodes.contains(&(s.dev, s.ino));
            if !by_inode && old_ks.is_empty() {
                continue;
            }
            if let Err(e) = self.migrate_file(s, new_key, by_inode, &old_ks) {
                tracing::debug!(source = %self.cfg.name, path = %s.path.display(), error = %e, "cannot migrate the checkpoint entry yet");
            }
        }
    }

    fn migrate_file(&mut self, s: &Scanned, new_key: &str, by_inode: bool, old_ks: &BTreeSet<usize>) -> io::Result<()> {
        let f = File::open(&s.path)?;
        let meta = f.metadata()?;
        if (meta.dev(), meta.ino()) != (s.dev, s.ino) {
            return Ok(()); // Rotated since the scan: next poll.
        }
        let head_with = |k: usize| -> io::Result<Vec<u8>> {
            let at = ReadAt { f: &f, pos: 0 };
            let (head, _) = if s.gzip {
                read_head(&mut flate2::read::MultiGzDecoder::new(at), k, true)?
            } else {
                read_head(&mut { at }, k, false)?
            };
            Ok(head)
        };
        if key_of(&head_with(self.cfg.fingerprint_bytes)?, self.cfg.fingerprint_bytes).as_deref() != Some(new_key) {
            return Ok(());
        }
        let path = s.path.display().to_string();
        let old_key = format!("{}:{}", s.dev, s.ino);
        if let Some(old) = self.state.files.get(&old_key).filter(|_| by_inode) {
            // The check the old tail made before resuming: same first bytes,
            // not shorter than the offset. Otherwise the inode was reused.
            let mut raw = vec![0u8; old.head_len.unwrap_or(0) as usize];
            let same = read_full_at(&f, 0, &mut raw)? == raw.len()
                && old.head_hash.is_none_or(|h| h == fnv(&raw))
                && meta.len() >= old.offset;
            if same {
                let old = self.state.files.remove(&old_key).expect("looked up above");
                tracing::info!(source = %self.cfg.name, path = %path, from = %old_key, to = %new_key, "checkpoint entry now keyed by content fingerprint");
                // The old tail read gzip files whole; its offset was in compressed bytes.
                let offset = if old.done { u64::MAX } else { old.offset };
                self.merge(
                    new_key,
                    FileState { path: path.clone(), offset, done: old.done, lines: old.lines, ..Default::default() },
                );
            }
        }
        for &k in old_ks {
            let Some(old_key) = key_of(&head_with(k)?, k) else { continue };
            if let Some(old) = self.state.files.remove(&old_key) {
                tracing::info!(source = %self.cfg.name, path = %path, from = %old_key, to = %new_key, "checkpoint entry re-keyed for the new fingerprint_bytes");
                self.merge(new_key, old);
            }
        }
        Ok(())
    }

    /// Add a migrated entry; where the key has one already, the furthest offset wins.
    fn merge(&mut self, key: &str, st: FileState) {
        match self.state.files.get_mut(key) {
            Some(cur) => {
                if st.offset > cur.offset {
                    cur.offset = st.offset;
                    cur.lines = st.lines;
                    cur.skipping = st.skipping;
                }
                cur.done |= st.done;
            }
            None => {
                self.state.files.insert(key.to_string(), st);
            }
        }
    }

    /// Forget entries whose content has not been seen for a while, and keep
    /// at most `MAX_VANISHED` of those not seen.
    fn forget_vanished(&mut self, seen: &HashSet<&str>) {
        let now = Instant::now();
        let files = &self.state.files;
        self.unseen.retain(|k, _| files.contains_key(k) && !seen.contains(k.as_str()));
        for key in files.keys() {
            if !seen.contains(key.as_str()) {
                self.unseen.entry(key.clone()).or_insert((now, 0)).1 += 1;
            }
        }
        let mut gone: HashSet<String> = self
            .unseen
            .iter()
            .filter(|(_, (since, polls))| {
                *polls >= FORGET_AFTER_POLLS && now.duration_since(*since) >= self.forget_after
            })
            .map(|(k, _)| k.clone())
            .collect();
        let over = self.unseen.len() - gone.len();
        if over > self.max_vanished {
            let mut rest: Vec<(Instant, &String)> =
                self.unseen.iter().filter(|(k, _)| !gone.contains(*k)).map(|(k, (since, _))| (*since, k)).collect();
            rest.sort();
            let drop: Vec<String> = rest.iter().take(over - self.max_vanished).map(|(_, k)| (*k).clone()).collect();
            gone.extend(drop);
        }
        for key in &gone {
            self.state.files.remove(key);
            self.unseen.remove(key);
            self.decoders.remove(key);
            if self.gzip_cursor.as_ref().is_some_and(|c| &c.key == key) {
                self.gzip_cursor = None;
            }
        }
        self.decoders.retain(|k, _| self.state.files.contains_key(k));
    }
}

/// Hand the complete lines at the start of `buf` to `on_line` (cut to
/// [`MAX_LINE`], with `overlong` set when longer), stopping once `limit`
/// bytes are consumed. Returns the bytes consumed, which always end just
/// after a newline, except for a line longer than [`MAX_LINE`] whose end is
/// not in `buf` yet: its first bytes are handed over, all of `buf` is
/// consumed and `skipping` is set, so that the next call first skips to the
/// line's end. Returns the lines handed over too.
fn consume_lines(buf: &[u8], limit: u64, skipping: &mut bool, on_line: &mut impl FnMut(&[u8], bool)) -> (usize, u64) {
    let mut start = 0usize;
    let mut lines = 0u64;
    if *skipping {
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                start = i + 1;
                *skipping = false;
            }
            None => return (buf.len(), 0),
        }
    }
    while (start as u64) < limit {
        match memchr::memchr(b'\n', &buf[start..]) {
            Some(i) => {
                let line = &buf[start..start + i];
                on_line(&line[..line.len().min(MAX_LINE)], line.len() > MAX_LINE);
                lines += 1;
                start += i + 1;
            }
            None => {
                if buf.len() - start > MAX_LINE {
                    on_line(&buf[start..start + MAX_LINE], true);
                    lines += 1;
                    start = buf.len();
                    *skipping = true;
                }
                break;
            }
        }
    }
    (start, lines)
}

/// `Read` at an offset of a file, by `pread`, leaving the descriptor's own
/// position alone.
struct ReadAt<'a> {
    f: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(f: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
