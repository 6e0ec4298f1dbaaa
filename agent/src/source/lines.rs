//! Reading files line by line, fast: plain or gzip (detected by its magic
//! bytes, multi-member streams included), big reads, `memchr` splitting, no
//! allocation per line.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::decode::MAX_LINE;

const READ_SIZE: usize = 1 << 20;

/// Open a file for reading its (decompressed) bytes.
pub fn open_stream(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = read_full(&mut f, &mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let rest = head.chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(rest)))
    } else {
        Ok(Box::new(rest))
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file's bytes: mapped into memory when it is a plain regular file (no
/// copy through a read buffer), or `None` when it must be streamed (gzip,
/// pipes, empty files, or a map that failed).
///
/// A mapped file must not be truncated while it is read (the process would
/// get SIGBUS); `replay` reads finished log files, and the daemon's file tail
/// never maps.
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
pub fn map_plain_file(path: &Path) -> io::Result<Option<memmap2::Mmap>> {
    let f = File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() || meta.len() < 2 {
        return Ok(None);
    }
    // SAFETY: read-only private mapping of a file we only read; see above for
    // the one hazard (concurrent truncation), which replay documents.
    let map = match unsafe { memmap2::MmapOptions::new().map(&f) } {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if map.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Some(map))
}

/// Every line of a mapped file, in chunks; each chunk's pages are dropped
/// from the mapping once its lines are handed over, so resident memory stays
/// a few MiB whatever the file's size (the page cache keeps them).
pub fn split_mapped(map: &memmap2::Mmap, f: impl FnMut(Line<'_>)) -> u64 {
    split_mapped_range(map, 0..map.len(), f)
}

/// [`split_mapped`] for the bytes `range` of a mapped file, which must start
/// at the beginning of a line (replay's workers each read a part of a file).
/// Line numbers count from 1 at the range's start. Only pages wholly inside
/// the range are dropped, so neighbouring ranges can be read at once.
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
pub fn split_mapped_range(map: &memmap2::Mmap, range: std::ops::Range<usize>, mut f: impl FnMut(Line<'_>)) -> u64 {
    const CHUNK: usize = 8 << 20;
    const PAGE: usize = 4096;
    let data: &[u8] = &map[..range.end.min(map.len())];
    let mut done = range.start.min(data.len()); // bytes handed over
    let mut released = done.div_ceil(PAGE) * PAGE; // bytes given back to the kernel (page aligned)
    let mut lines = 0u64;
    while done < data.len() {
        let want = (done + CHUNK).min(data.len());
        // End the chunk after a newline (or at the end of the range).
        let end = if want == data.len() {
            want
        } else {
            match memchr::memrchr(b'\n', &data[done..want]) {
                Some(i) => done + i + 1,
                None => memchr::memchr(b'\n', &data[want..]).map_or(data.len(), |i| want + i + 1),
            }
        };
        let base = lines;
        lines += split_slice(&data[done..end], |l| f(Line { number: base + l.number, ..l }));
        done = end;
        let upto = done / PAGE * PAGE;
        if upto > released {
            // SAFETY: the range lies inside the read-only mapping and none of
            // it is read again by this call; dropping pages of a file mapping
            // that was never written only means they would be faulted in from
            // the file again (by anyone else still reading them).
            let _ =
                unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, released, upto - released) };
            released = upto;
        }
    }
    lines
}

/// Every line of an in-memory buffer (the last one even without a newline),
/// cut to [`MAX_LINE`] with `overlong = true` when longer.
pub fn split_slice(data: &[u8], mut f: impl FnMut(Line<'_>)) -> u64 {
    let mut n = 0u64;
    let mut start = 0usize;
    for nl in memchr::memchr_iter(b'\n', data) {
        n += 1;
        let bytes = &data[start..nl];
        f(Line { number: n, bytes: &bytes[..bytes.len().min(MAX_LINE)], overlong: bytes.len() > MAX_LINE });
        start = nl + 1;
    }
    if start < data.len() {
        n += 1;
        let bytes = &data[start..];
        f(Line { number: n, bytes: &bytes[..bytes.len().min(MAX_LINE)], overlong: bytes.len() > MAX_LINE });
    }
    n
}

/// Splits a byte stream into lines. Lines longer than [`MAX_LINE`] are handed
/// over cut to that length with `overlong = true`, never buffered whole.
///
/// The buffer is allocated once; reads go into its free tail and the
/// unconsumed remainder is moved to the front, so no byte is zeroed or
/// copied more than once per read.
pub struct LineSplitter {
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// True while skipping the rest of an overlong line.
    skipping: bool,
    pub line_no: u64,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter {
            buf: vec![0u8; READ_SIZE + 2 * MAX_LINE].into_boxed_slice(),
            start: 0,
            end: 0,
            skipping: false,
            line_no: 0,
        }
    }
}

/// A line, or the first [`MAX_LINE`] bytes of an overlong one.
pub struct Line<'a> {
    pub number: u64,
    pub bytes: &'a [u8],
    pub overlong: bool,
}

impl LineSplitter {
    /// Read all of `r`, calling `f` for every line (the last one even without
    /// a trailing newline). Returns the bytes read.
    pub fn run(&mut self, r: &mut dyn Read, mut f: impl FnMut(Line<'_>)) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let n = self.fill(r)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            self.drain_complete(&mut f);
        }
        self.finish(&mut f);
        Ok(total)
    }

    /// Append up to one read's worth of bytes; returns how many were read
    /// (0 at the end of the stream, or when the buffer holds an unfinished
    /// line as long as the buffer, which `drain_complete` then cuts).
    pub fn fill(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = &mut self.buf[self.end..];
        if room.is_empty() {
            return Ok(0);
        }
        let n = loop {
            match r.read(room) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        Ok(n)
    }

    /// Hand over every complete line in the buffer.
    pub fn drain_complete(&mut self, f: &mut impl FnMut(Line<'_>)) {
        let buf = &self.buf[..self.end];
        let base = self.start;
        let mut start = base;
        for nl in memchr::memchr_iter(b'\n', &buf[base..]) {
            let end = base + nl;
            if self.skipping {
                self.skipping = false;
            } else {
                self.line_no += 1;
                let bytes = &buf[start..end];
                let overlong = bytes.len() > MAX_LINE;
                f(Line { number: self.line_no, bytes: &bytes[..bytes.len().min(MAX_LINE)], overlong });
            }
            start = end + 1;
        }
        // An incomplete line that is already too long: report it now and
        // skip the rest of it, so memory stays bounded.
        if buf.len() - start > MAX_LINE && !self.skipping {
            self.line_no += 1;
            f(Line { number: self.line_no, bytes: &buf[start..start + MAX_LINE], overlong: true });
            self.skipping = true;
        }
        if self.skipping {
            start = buf.len();
        }
        self.start = start;
    }

    /// The bytes read but not yet handed over (for format detection).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Bytes of a trailing incomplete line still buffered.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Hand over a final line that had no newline.
    pub fn finish(&mut self, f: &mut impl FnMut(Line<'_>)) {
        if self.pending() > 0 && !self.skipping {
            self.line_no += 1;
            let bytes = &self.buf[self.start..self.end];
            f(Line {
                number: self.line_no,
                bytes: &bytes[..bytes.len().min(MAX_LINE)],
                overlong: bytes.len() > MAX_LINE,
            });
        }
        self.start = 0;
        self.end = 0;
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut out = Vec::new();
        LineSplitter::default()
            .run(&mut io::Cursor::new(input.to_vec()), |l| out.push((l.number, l.bytes.to_vec(), l.overlong)))
            .unwrap();
        out
    }

    #[test]
    fn splits_with_and_without_trailing_newline() {
        assert_eq!(lines(b"a\nb\n").len(), 2);
        let l = lines(b"a\n\nc");
        assert_eq!(l.iter().map(|x| x.1.clone()).collect::<Vec<_>>(), vec![b"a".to_vec(), b"".to_vec(), b"c".to_vec()]);
        assert_eq!(l[2].0, 3);
    }

    #[test]
    fn overlong_lines_are_cut_and_flagged() {
        let mut input = vec![b'x'; MAX_LINE * 3 + 10];
        input.extend_from_slice(b"\nok\n");
        let l = lines(&input);
        assert_eq!(l.len(), 2);
        assert!(l[0].2 && l[0].1.len() == MAX_LINE);
        assert_eq!(l[1], (2, b"ok".to_vec(), false));
    }
}
