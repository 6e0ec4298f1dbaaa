//! The file tail against real files in a temporary directory: every case of
//! the module docs, each checked by request id (every line written is
//! counted exactly once).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;

const CF_HEADER: &str = "#Version: 1.0\n#Fields: date time sc-status x-edge-request-id\n";

/// Writes lines with request ids `r0`, `r1`, … in one format.
struct Lines {
    next: u64,
    cloudfront: bool,
}

impl Lines {
    fn ndjson() -> Lines {
        Lines { next: 0, cloudfront: false }
    }

    fn cloudfront() -> Lines {
        Lines { next: 0, cloudfront: true }
    }

    fn take(&mut self, n: u64) -> String {
        let mut out = String::new();
        for _ in 0..n {
            let id = self.next;
            self.next += 1;
            if self.cloudfront {
                out.push_str(&format!("2024-05-01\t12:00:00\t200\tr{id}\n"));
            } else {
                out.push_str(&format!("{{\"ts\":1714564800000,\"status\":200,\"request_id\":\"r{id}\"}}\n"));
            }
        }
        out
    }

    /// A new file's first bytes: the header (CloudFront) and `n` lines.
    fn new_file(&mut self, n: u64) -> String {
        let header = if self.cloudfront { CF_HEADER } else { "" };
        format!("{header}{}", self.take(n))
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    cfg: FileSourceConfig,
    tail: FileTail,
    /// Request ids of every event handed over.
    seen: Vec<String>,
    rejected: u64,
}

impl Fixture {
    fn new(format: Format) -> Fixture {
        Fixture::with(format, |_| {})
    }

    fn with(format: Format, tweak: impl FnOnce(&mut FileSourceConfig)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = FileSourceConfig {
            name: "t".into(),
            paths: vec![dir.path().join("*.log*").display().to_string()],
            format,
            service: "shop".into(),
            max_batch_bytes: 1 << 20,
            fields: Vec::new(),
            fingerprint_bytes: DEFAULT_FINGERPRINT_BYTES,
        };
        tweak(&mut cfg);
        let tail = FileTail::new(cfg.clone(), None).unwrap();
        Fixture { dir, cfg, tail, seen: Vec::new(), rejected: 0 }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One poll; returns the request ids it handed over.
    fn poll_once(&mut self) -> (Vec<String>, PollOutcome) {
        let mut ids = Vec::new();
        let mut sink = |e: &RequestEvent<'_>| ids.push(e.request_id.to_string());
        let out = self.tail.poll(&mut sink);
        self.rejected += out.rejects.total();
        self.seen.extend(ids.iter().cloned());
        (ids, out)
    }

    /// Poll until there is nothing more to read right away.
    fn poll(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let (ids, out) = self.poll_once();
            all.extend(ids);
            if !out.more {
                return all;
            }
        }
        panic!("the tail never stopped having more to read");
    }

    /// A crash right after a commit: a new tail from the last checkpoint.
    fn restart(&mut self) {
        let cp = self.tail.checkpoint();
        self.tail = FileTail::new(self.cfg.clone(), Some(&cp)).unwrap();
    }

    /// Every id from `r0` to `r{n-1}` was handed over exactly once, and no line was rejected.
    fn assert_each_once(&self, n: u64) {
        let mut got = self.seen.clone();
        got.sort_by_key(|id| id[1..].parse::<u64>().unwrap());
        let want: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
        if got != want {
            let mut counts = BTreeMap::new();
            for id in &self.seen {
                *counts.entry(id.clone()).or_insert(0) += 1;
            }
            let twice: Vec<_> = counts.iter().filter(|c| *c.1 > 1).map(|c| c.0).collect();
            let missing: Vec<_> = want.iter().filter(|w| !counts.contains_key(*w)).collect();
            panic!("{} events for {n} lines; counted twice: {twice:?}; missing: {missing:?}", got.len());
        }
        assert_eq!(self.rejected, 0, "lines were rejected");
    }

    fn keys(&self) -> Vec<String> {
        self.tail.state().files.keys().cloned().collect()
    }
}

fn append(path: &Path, text: &str) {
    OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

fn copytruncate(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
    OpenOptions::new().write(true).open(from).unwrap().set_len(0).unwrap();
}

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    enc.finish().unwrap()
}

#[test]
fn only_complete_lines_are_read_and_a_restart_resumes_after_them() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(3));
    append(&log, "{\"ts\":1714564800000,\"sta");
    assert_eq!(fx.poll(), ["r0", "r1", "r2"]);
    fx.restart();
    append(&log, "tus\":200,\"request_id\":\"r3\"}\n");
    w.next = 4;
    append(&log, &w.take(1));
    assert_eq!(fx.poll(), ["r3", "r4"]);
    fx.restart();
    assert!(fx.poll().is_empty());
    fx.assert_each_once(5);
    assert_eq!(fx.keys().len(), 1);
    assert!(fx.keys()[0].starts_with("fp1024:"), "{:?}", fx.keys());
}

#[test]
fn a_file_too_short_to_fingerprint_is_neither_read_nor_recorded() {
    let mut fx = Fixture::new(Format::CloudFront);
    let log = fx.path("cf.log");
    append(&log, CF_HEADER);
    assert!(fx.poll().is_empty());
    assert!(fx.keys().is_empty(), "a header alone got an entry: {:?}", fx.keys());
    append(&log, "2024-05-01\t12:00:00\t200\tr");
    assert!(fx.poll().is_empty());
    assert!(fx.keys().is_empty());
    append(&log, "0\n");
    assert_eq!(fx.poll(), ["r0"]);
    fx.assert_each_once(1);
}

#[test]
fn files_that_share_only_their_header_are_different_files() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    fs::write(fx.path("a.log"), w.new_file(2)).unwrap();
    fs::write(fx.path("b.log"), w.new_file(2)).unwrap();
    assert_eq!(fx.poll().len(), 4);
    assert_eq!(fx.keys().len(), 2);
    fx.assert_each_once(4);
}

#[test]
fn a_restart_inside_a_w3c_file_reads_its_header_again() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("cf.log");
    append(&log, &w.new_file(2));
    fx.poll();
    fx.restart();
    append(&log, &w.take(2));
    assert_eq!(fx.poll(), ["r2", "r3"]);
    fx.assert_each_once(4);
}

#[test]
fn rename_rotation_finishes_the_renamed_file_and_starts_the_new_one() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    let mut writer = OpenOptions::new().create(true).append(true).open(&log).unwrap();
    writer.write_all(w.new_file(5).as_bytes()).unwrap();
    assert_eq!(fx.poll().len(), 5);
    writer.write_all(w.take(2).as_bytes()).unwrap(); // not read before the rename
    fs::rename(&log, fx.path("app.log.1")).unwrap();
    writer.write_all(w.take(3).as_bytes()).unwrap(); // the writer has not reopened yet
    fx.restart();
    let mut writer = OpenOptions::new().create(true).append(true).open(&log).unwrap();
    writer.write_all(w.new_file(4).as_bytes()).unwrap();
    assert_eq!(fx.poll().len(), 9);
    // Rotate again, with a crash in between.
    fs::rename(fx.path("app.log.1"), fx.path("app.log.2")).unwrap();
    fs::rename(&log, fx.path("app.log.1")).unwrap();
    fx.restart();
    writer.write_all(w.take(1).as_bytes()).unwrap();
    append(&log, &w.new_file(1));
    assert_eq!(fx.poll().len(), 2);
    fx.assert_each_once(16);
    assert_eq!(fx.keys().len(), 3);
}

#[test]
fn copytruncate_continues_the_copy_and_restarts_the_original() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    append(&log, &w.new_file(5));
    assert_eq!(fx.poll().len(), 5);
    // Written after the last poll and before the copy: only in the copy.
    append(&log, &w.take(3));
    copytruncate(&log, &fx.path("app.log.1"));
    append(&log, &w.new_file(2));
    assert_eq!(fx.poll(), ["r8", "r9", "r5", "r6", "r7"], "the new app.log, then the copy from its offset");
    fx.restart();
    append(&log, &w.take(1));
    assert_eq!(fx.poll(), ["r10"]);
    fx.assert_each_once(11);
}

#[test]
fn copytruncate_with_a_poll_between_the_copy_and_the_truncation() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(4));
    fx.poll();
    append(&log, &w.take(2));
    fs::copy(&log, fx.path("app.log.1")).unwrap();
    // A line the writer slips in after the copy: the poll reads it from the
    // original, which is the longer copy of the content.
    append(&log, &w.take(1));
    assert_eq!(fx.poll(), ["r4", "r5", "r6"]);
    OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    assert!(fx.poll().is_empty(), "the copy is shorter than the offset: nothing to read");
    append(&log, &w.take(2));
    fx.restart();
    assert_eq!(fx.poll(), ["r7", "r8"]);
    fx.assert_each_once(9);
}

#[test]
fn a_path_reused_by_other_content_is_read_from_the_start() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    append(&log, &w.new_file(6));
    fx.poll();
    fs::remove_file(&log).unwrap();
    // Shorter than the old offset, then longer: both must be read whole.
    append(&log, &w.new_file(2));
    assert_eq!(fx.poll(), ["r6", "r7"]);
    fs::remove_file(&log).unwrap();
    append(&log, &w.new_file(20));
    assert_eq!(fx.poll().len(), 20);
    fx.assert_each_once(28);
}

#[test]
fn a_reused_inode_is_not_taken_for_the_old_file() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    let mut reused = false;
    for _ in 0..5 {
        append(&log, &w.new_file(3));
        let ino = fs::metadata(&log).unwrap().ino();
        fx.poll();
        fs::remove_file(&log).unwrap();
        // Same header, other records, most likely the same inode.
        append(&log, &w.new_file(3));
        reused |= fs::metadata(&log).unwrap().ino() == ino;
        fx.poll();
        fs::remove_file(&log).unwrap();
    }
    fx.assert_each_once(30);
    eprintln!("an inode was reused: {reused}");
}

#[test]
fn a_file_that_shrinks_below_its_offset_and_grows_again() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(10));
    fx.poll();
    // Truncated in place and written again past the old offset before the
    // next poll: another first line, so another content, read whole.
    OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    append(&log, &w.take(30));
    assert_eq!(fx.poll().len(), 30);
    // Truncated and written again to less than the old offset.
    OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    fx.restart();
    assert!(fx.poll().is_empty());
    append(&log, &w.take(2));
    assert_eq!(fx.poll().len(), 2);
    fx.assert_each_once(42);
}

#[test]
fn gzip_files_are_read_once_and_known_by_content() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    fs::write(fx.path("a.log.gz"), gzip(w.new_file(50).as_bytes())).unwrap();
    assert_eq!(fx.poll().len(), 50);
    fx.restart();
    assert!(fx.poll().is_empty());
    // Renamed (another inode's worth of path): still known.
    fs::rename(fx.path("a.log.gz"), fx.path("b.log.gz")).unwrap();
    fs::copy(fx.path("b.log.gz"), fx.path("c.log.gz")).unwrap();
    assert!(fx.poll().is_empty());
    fx.restart();
    assert!(fx.poll().is_empty());
    let st = &fx.tail.state().files;
    assert_eq!(st.len(), 1);
    assert!(st.values().all(|s| s.done));
    fx.assert_each_once(50);
}

#[test]
fn gzip_files_are_read_in_batches_across_restarts() {
    let mut fx = Fixture::with(Format::Ndjson, |c| c.max_batch_bytes = 4096);
    let mut w = Lines::ndjson();
    fs::write(fx.path("a.log.gz"), gzip(w.take(2000).as_bytes())).unwrap();
    let mut polls = 0;
    loop {
        let (_, out) = fx.poll_once();
        polls += 1;
        if polls % 7 == 0 {
            fx.restart();
        }
        if !out.more {
            break;
        }
    }
    assert!(polls > 10, "{polls} polls");
    assert!(fx.poll().is_empty());
    fx.assert_each_once(2000);
}

#[test]
fn a_rotated_file_compressed_after_it_was_read_is_not_read_again() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    let text = w.new_file(20);
    append(&log, &text);
    fx.poll();
    fs::rename(&log, fx.path("app.log.1")).unwrap();
    fx.poll();
    // logrotate's compress: the .gz appears, then the plain file goes.
    fs::write(fx.path("app.log.1.gz"), gzip(text.as_bytes())).unwrap();
    assert!(fx.poll().is_empty());
    fs::remove_file(fx.path("app.log.1")).unwrap();
    fx.restart();
    assert!(fx.poll().is_empty());
    fx.assert_each_once(20);
}

#[test]
fn a_rotated_file_compressed_before_it_was_finished_is_finished_from_the_gzip() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let log = fx.path("app.log");
    append(&log, &w.new_file(10));
    fx.poll();
    append(&log, &w.take(10));
    let text = fs::read(&log).unwrap();
    fs::remove_file(&log).unwrap();
    fs::write(fx.path("app.log.1.gz"), gzip(&text)).unwrap();
    fx.restart();
    assert_eq!(fx.poll().len(), 10);
    fx.assert_each_once(20);
}

#[test]
fn a_gzip_file_still_being_written_is_read_up_to_its_last_complete_line() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let text = w.take(4000);
    let gz = gzip(text.as_bytes());
    let path = fx.path("a.log.gz");
    fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let first = fx.poll().len();
    assert!(first > 0 && first < 4000, "{first}");
    assert!(!fx.tail.state().files.values().next().unwrap().done);
    fx.restart();
    append_bytes(&path, &gz[gz.len() / 2..]);
    fx.poll();
    assert!(fx.tail.state().files.values().next().unwrap().done);
    fx.assert_each_once(4000);
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn a_line_too_long_to_keep_is_skipped_whole_across_polls() {
    let mut fx = Fixture::with(Format::Ndjson, |c| c.max_batch_bytes = 1000);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(1));
    append(&log, &format!("{{\"pad\":\"{}\"}}\n", "x".repeat(3 * MAX_LINE)));
    append(&log, &w.take(50));
    let mut polls = 0;
    while fx.poll_once().1.more {
        polls += 1;
        fx.restart();
    }
    assert!(polls > 3);
    assert_eq!(fx.rejected, 1, "the long line is one reject");
    fx.rejected = 0;
    fx.assert_each_once(51);
}

/// A legacy checkpoint entry for `path`: keyed `device:inode`, with the hash
/// of the first 256 bytes, as the tail wrote them before fingerprints.
fn legacy_entry(path: &Path, offset: u64, done: bool) -> (String, serde_json::Value) {
    let meta = fs::metadata(path).unwrap();
    let bytes = fs::read(path).unwrap();
    let head = &bytes[..bytes.len().min(256)];
    let value = serde_json::json!({
        "path": path.display().to_string(),
        "offset": offset,
        "head_hash": fnv(head),
        "head_len": head.len(),
        "done": done,
        "lines": 3,
    });
    (format!("{}:{}", meta.dev(), meta.ino()), value)
}

fn legacy_checkpoint(entries: Vec<(String, serde_json::Value)>) -> Vec<u8> {
    let files: serde_json::Map<String, serde_json::Value> = entries.into_iter().collect();
    serde_json::to_vec(&serde_json::json!({ "files": files })).unwrap()
}

#[test]
fn a_checkpoint_keyed_by_device_and_inode_is_migrated() {
    let mut fx = Fixture::new(Format::CloudFront);
    let mut w = Lines::cloudfront();
    let plain = fx.path("app.log");
    append(&plain, &w.new_file(3));
    let offset = fs::metadata(&plain).unwrap().len();
    append(&plain, &w.take(2));
    let gz = fx.path("old.log.gz");
    let gz_text = w.new_file(4);
    fs::write(&gz, gzip(gz_text.as_bytes())).unwrap();
    let gz_len = fs::metadata(&gz).unwrap().len();
    let cp = legacy_checkpoint(vec![legacy_entry(&plain, offset, false), legacy_entry(&gz, gz_len, true)]);
    fx.tail = FileTail::new(fx.cfg.clone(), Some(&cp)).unwrap();
    assert_eq!(fx.poll(), ["r3", "r4"], "only what the old tail had not read");
    let keys = fx.keys();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.starts_with("fp1024:")), "{keys:?}");
    // The migrated checkpoint goes on working, renames included.
    fs::rename(&plain, fx.path("app.log.1")).unwrap();
    fx.restart();
    append(&fx.path("app.log.1"), &w.take(1));
    assert_eq!(fx.poll(), ["r9"]);
    // The old agent counted the rest.
    fx.seen.extend((0..3).chain(5..9).map(|i| format!("r{i}")));
    fx.assert_each_once(10);
}

#[test]
fn a_legacy_entry_whose_inode_was_reused_is_not_migrated() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(5));
    let (key, mut entry) = legacy_entry(&log, 200, false);
    // The old file had other first bytes.
    entry["head_hash"] = serde_json::json!(12345u64);
    fx.tail = FileTail::new(fx.cfg.clone(), Some(&legacy_checkpoint(vec![(key.clone(), entry)]))).unwrap();
    assert_eq!(fx.poll().len(), 5);
    fx.assert_each_once(5);
    // The stale entry is forgotten like any vanished one.
    fx.tail.forget_after = Duration::ZERO;
    for _ in 0..FORGET_AFTER_POLLS {
        fx.poll();
    }
    assert!(!fx.keys().contains(&key), "{:?}", fx.keys());
}

#[test]
fn changing_fingerprint_bytes_keeps_the_offsets() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    let log = fx.path("app.log");
    append(&log, &w.take(5));
    fx.poll();
    fx.cfg.fingerprint_bytes = 64;
    fx.restart();
    append(&log, &w.take(2));
    assert_eq!(fx.poll(), ["r5", "r6"]);
    assert!(fx.keys().iter().all(|k| k.starts_with("fp64:")), "{:?}", fx.keys());
    fx.assert_each_once(7);
}

#[test]
fn vanished_files_are_forgotten_after_a_while_and_capped() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    for i in 0..6 {
        append(&fx.path(&format!("f{i}.log")), &w.take(1));
    }
    fx.poll();
    for i in 0..3 {
        fs::remove_file(fx.path(&format!("f{i}.log"))).unwrap();
    }
    // Within the grace: kept, and a file that comes back is not read again.
    fx.poll();
    assert_eq!(fx.keys().len(), 6);
    fs::write(fx.path("back.log"), "{\"ts\":1714564800000,\"status\":200,\"request_id\":\"r0\"}\n").unwrap();
    assert!(fx.poll().is_empty());
    assert_eq!(fx.keys().len(), 6);
    // Over the cap: the longest gone first.
    // (back.log is f0 again: two are gone.)
    fx.tail.max_vanished = 1;
    fx.poll();
    assert_eq!(fx.keys().len(), 5);
    // After the grace: forgotten.
    fx.tail.forget_after = Duration::ZERO;
    for _ in 0..FORGET_AFTER_POLLS {
        fx.poll();
    }
    assert_eq!(fx.keys().len(), 4);
    fx.assert_each_once(6);
}

/// A deterministic mix of appends, both kinds of rotation, compression of
/// old files and polls with a small batch, with a crash (a new tail from the
/// checkpoint) after random polls: every line is counted exactly once.
#[test]
fn crashes_between_polls_through_rotations_count_every_line_once() {
    for seed in 1..=8u64 {
        let mut fx = Fixture::with(Format::CloudFront, |c| c.max_batch_bytes = 700);
        let mut w = Lines::cloudfront();
        let log = fx.path("app.log");
        let mut rnd = seed;
        let mut next = move |n: u64| {
            rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rnd >> 33) % n
        };
        let mut writer = OpenOptions::new().create(true).append(true).open(&log).unwrap();
        writer.write_all(w.new_file(1).as_bytes()).unwrap();
        let mut rotations = 0;
        for _ in 0..300 {
            match next(20) {
                0 => {
                    rotations += 1;
                    let old = fx.path(&format!("app.log.{rotations}"));
                    fs::rename(&log, &old).unwrap();
                    writer.write_all(w.take(next(3)).as_bytes()).unwrap();
                    writer = OpenOptions::new().create(true).append(true).open(&log).unwrap();
                    writer.write_all(w.new_file(1).as_bytes()).unwrap();
                }
                1 => {
                    rotations += 1;
                    copytruncate(&log, &fx.path(&format!("app.log.{rotations}")));
                    writer.write_all(w.new_file(1).as_bytes()).unwrap();
                }
                2 if rotations > 0 => {
                    // Compress a rotated file, whatever was read of it.
                    let old = fx.path(&format!("app.log.{}", 1 + next(rotations)));
                    if old.exists() {
                        let text = fs::read(&old).unwrap();
                        let mut gz = old.clone().into_os_string();
                        gz.push(".gz");
                        fs::write(&gz, gzip(&text)).unwrap();
                        fs::remove_file(&old).unwrap();
                    }
                }
                3..=9 => writer.write_all(w.take(1 + next(4)).as_bytes()).unwrap(),
                _ => {
                    fx.poll_once();
                    if next(3) == 0 {
                        fx.restart();
                    }
                }
            }
        }
        fx.poll();
        fx.restart();
        assert!(fx.poll().is_empty());
        assert!(rotations > 5, "seed {seed}: {rotations} rotations");
        fx.assert_each_once(w.next);
    }
}

#[test]
fn a_hard_link_is_one_file() {
    let mut fx = Fixture::new(Format::Ndjson);
    let mut w = Lines::ndjson();
    append(&fx.path("a.log"), &w.take(3));
    fs::hard_link(fx.path("a.log"), fx.path("b.log")).unwrap();
    fx.poll();
    append(&fx.path("b.log"), &w.take(1));
    fx.poll();
    fx.assert_each_once(4);
}

#[test]
fn an_unknown_checkpoint_is_refused_and_bad_settings_too() {
    let cfg = FileSourceConfig {
        name: "t".into(),
        paths: vec!["/nonexistent/*.log".into()],
        format: Format::Ndjson,
        service: String::new(),
        max_batch_bytes: 4096,
        fields: Vec::new(),
        fingerprint_bytes: DEFAULT_FINGERPRINT_BYTES,
    };
    assert!(matches!(FileTail::new(cfg.clone(), Some(b"nope")), Err(FileSourceError::Checkpoint { .. })));
    let small = FileSourceConfig { fingerprint_bytes: 8, ..cfg };
    assert!(matches!(FileTail::new(small, None), Err(FileSourceError::FingerprintBytes { .. })));
}

#[test]
fn real_time_log_files_are_read_with_the_configured_field_list() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudfront");
    let fields: Vec<String> = std::fs::read_to_string(fixtures.join("realtime.fields"))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let data = std::fs::read(fixtures.join("realtime.tsv")).unwrap();
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    let mut fx = Fixture::with(Format::CloudFrontRealtime, |c| c.fields = fields);
    std::fs::write(fx.path("rt.log"), &data).unwrap();
    let ids = fx.poll();
    assert!(!ids.is_empty());
    assert_eq!(ids.len() as u64 + fx.rejected, lines as u64);
    assert_eq!(ids[0], "rt-1");
}
