//! CloudFront standard logs: the legacy W3C format, one request per line,
//! fields separated by tabs.
//!
//! A file starts with `#Version:` and `#Fields:` lines; the `#Fields:` line
//! names the columns (any subset, any order) and a later `#Fields:` line
//! replaces the map. Data lines that arrive before any `#Fields:` line are
//! read in the canonical 33-field order AWS documents, but only when they have
//! exactly 33 fields; anything else is rejected as `NoHeader`.
//!
//! Values follow the log's own conventions: `-` means empty, text values are
//! URL-encoded (sometimes twice), `cs-uri-stem` holds no query string,
//! `sc-status` `000` means the viewer went away before a status was sent,
//! `date` and `time` are UTC, and `time-taken` is seconds with millisecond
//! precision. The host is `x-host-header` (the `Host` header the viewer
//! sent), else `cs(Host)` (the distribution's domain name). Fields and their
//! order: "Log file fields" in
//! <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html>
//! (which now lists a 34th, `distribution-tenant-id`, after the 33 that
//! its example header and [`CANONICAL_FIELDS`] hold).
//!
//! Text that is not UTF-8 (possible only where a client controls the bytes,
//! e.g. a path like `%FF`) is decoded lossily into the decoder's scratch
//! space, with U+FFFD for each invalid sequence: the request still counts,
//! because it still happened. `BadEncoding` is never returned by this decoder.
//!
//! The hot path finds tabs 64 bytes at a time as a bit mask (SSE2 on x86-64,
//! plain integer arithmetic elsewhere) and stops after the last column the
//! event needs, validates UTF-8 once over the part it split, and allocates
//! nothing once its scratch buffers have grown to fit.

use memchr::memchr;

use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason, parse_date, parse_time_of_day};
use crate::event::{
    CacheResult, ClientClass, EventSink, Origin, Protocol, RequestEvent, TlsVersion, Wanted, parse_status,
};

/// The 33 fields of a standard log in the order AWS documents them; used for
/// lines that arrive before any `#Fields:` header.
pub const CANONICAL_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// What a column means to the event. Columns without a role are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Role {
    Date,
    Time,
    EdgeLocation,
    Bytes,
    Method,
    /// The distribution's domain name: the host when the viewer's is not logged.
    Host,
    /// `cs-uri-stem`: the path (standard logs), or the path and query string
    /// (real-time logs, see [`RecordReader::stem_has_query`]).
    UriStem,
    Status,
    UserAgent,
    ResultType,
    RequestId,
    /// The `Host` header the viewer sent.
    HostHeader,
    TimeTaken,
    /// Origin first-byte latency, seconds (`origin-fbl`).
    OriginFirstByte,
    /// Epoch seconds with milliseconds, `1732104000.123` (real-time `timestamp`;
    /// also accepted in standard logs, though v2 documents only `timestamp(ms)`).
    Timestamp,
    /// Epoch milliseconds (v2 `timestamp(ms)`).
    TimestampMs,
    /// The viewer's address (`c-ip`): read only when the requester is wanted.
    ClientIp,
    /// The viewer's autonomous system number (`asn`, v2 and real-time
    /// logs): read only when the requester is wanted.
    Asn,
    /// `cs-protocol`: `http`, `https`, `ws`, `wss`; read only when wanted.
    Protocol,
    /// `ssl-protocol`: `TLSv1.2`, …, `-` for none; read only when wanted.
    SslProtocol,
}

const ROLES: usize = Role::SslProtocol as usize + 1;
/// The role of a column the event does not need. It has a slot of its own in
/// the split's output (written, never read) so that storing a field needs no
/// branch.
const NO_ROLE: u8 = ROLES as u8;
const SLOTS: usize = ROLES + 1;

impl Role {
    /// The role of a standard log field name (legacy, and the names v2
    /// adds), compared without regard to ASCII case.
    ///
    /// In a standard log `cs(Host)` is the distribution's domain name and
    /// `x-host-header` the `Host` header the viewer sent, which is the
    /// preferred host ([`Role::HostHeader`]).
    fn of(name: &[u8]) -> Option<Role> {
        const NAMES: [(&str, Role); ROLES] = [
            ("date", Role::Date),
            ("time", Role::Time),
            ("x-edge-location", Role::EdgeLocation),
            ("sc-bytes", Role::Bytes),
            ("cs-method", Role::Method),
            ("cs(host)", Role::Host),
            ("cs-uri-stem", Role::UriStem),
            ("sc-status", Role::Status),
            ("cs(user-agent)", Role::UserAgent),
            ("x-edge-result-type", Role::ResultType),
            ("x-edge-request-id", Role::RequestId),
            ("x-host-header", Role::HostHeader),
            ("time-taken", Role::TimeTaken),
            ("origin-fbl", Role::OriginFirstByte),
            ("timestamp", Role::Timestamp),
            ("timestamp(ms)", Role::TimestampMs),
            ("c-ip", Role::ClientIp),
            ("asn", Role::Asn),
            ("cs-protocol", Role::Protocol),
            ("ssl-protocol", Role::SslProtocol),
        ];
        NAMES.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|&(_, r)| r)
    }

    /// The role of a real-time log field name, compared without regard to
    /// ASCII case. Real-time logs give two names the opposite meaning to the
    /// standard log's: `cs-host` is the `Host` header the viewer sent (the
    /// preferred host, [`Role::HostHeader`]) and `x-host-header` is the
    /// distribution's domain name; and they spell the user agent
    /// `cs-user-agent`.
    fn of_realtime(name: &[u8]) -> Option<Role> {
        const NAMES: [(&str, Role); 17] = [
            ("timestamp", Role::Timestamp),
            ("sc-status", Role::Status),
            ("sc-bytes", Role::Bytes),
            ("cs-method", Role::Method),
            ("cs-host", Role::HostHeader),
            ("cs-uri-stem", Role::UriStem),
            ("x-edge-location", Role::EdgeLocation),
            ("x-edge-request-id", Role::RequestId),
            ("x-host-header", Role::Host),
            ("time-taken", Role::TimeTaken),
            ("cs-user-agent", Role::UserAgent),
            ("x-edge-result-type", Role::ResultType),
            ("origin-fbl", Role::OriginFirstByte),
            ("c-ip", Role::ClientIp),
            ("asn", Role::Asn),
            ("cs-protocol", Role::Protocol),
            ("ssl-protocol", Role::SslProtocol),
        ];
        NAMES.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|&(_, r)| r)
    }

    /// The optional fields ([`Wanted`]) whose columns are split only when
    /// wanted, as bits of a [`ColumnMap::cut`] index; 0 for a role always read.
    fn gate(self) -> usize {
        match self {
            Role::ClientIp | Role::Asn => GATE_REQUESTER,
            Role::Protocol => GATE_PROTOCOL,
            Role::SslProtocol => GATE_TLS,
            _ => 0,
        }
    }
}

const GATE_REQUESTER: usize = 1;
const GATE_PROTOCOL: usize = 2;
const GATE_TLS: usize = 4;
/// Every combination of the gates.
const CUTS: usize = 8;

/// Column index → role, cut after the last column with a role so splitting
/// can stop there.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnMap {
    roles: Vec<u8>,
    /// How many of `roles` to split for each combination of the gated
    /// optional fields wanted ([`Role::gate`] bits): up to the last column
    /// whose role is always read or wanted, so that a gated column late in
    /// a line (`ssl-protocol`, `asn`) costs nothing unless it is read.
    cuts: [usize; CUTS],
}

impl ColumnMap {
    /// From the names of a `#Fields:` line (standard log names). When a
    /// name repeats, its first column wins.
    pub(crate) fn from_names<'n>(names: impl Iterator<Item = &'n [u8]>) -> ColumnMap {
        ColumnMap::with_roles(names, Role::of)
    }

    /// From real-time log field names, in the order of the record's columns.
    pub(crate) fn from_realtime_names<'n>(names: impl Iterator<Item = &'n [u8]>) -> ColumnMap {
        ColumnMap::with_roles(names, Role::of_realtime)
    }

    fn with_roles<'n>(names: impl Iterator<Item = &'n [u8]>, role_of: fn(&[u8]) -> Option<Role>) -> ColumnMap {
        let mut roles = Vec::new();
        // Each column's gate bits, `None` for a column without a role.
        let mut gates = Vec::new();
        let mut seen = [false; ROLES];
        for name in names {
            let role = match role_of(name) {
                Some(r) if !seen[r as usize] => {
                    seen[r as usize] = true;
                    Some(r)
                }
                _ => None,
            };
            roles.push(role.map_or(NO_ROLE, |r| r as u8));
            gates.push(role.map(Role::gate));
        }
        let used = roles.iter().rposition(|&r| r != NO_ROLE).map_or(0, |i| i + 1);
        roles.truncate(used);
        let mut cuts = [0; CUTS];
        for (wanted, cut) in cuts.iter_mut().enumerate() {
            *cut = gates.iter().rposition(|g| g.is_some_and(|g| g & !wanted == 0)).map_or(0, |i| i + 1);
        }
        ColumnMap { roles, cuts }
    }

    /// How many columns to split for the optional fields `wanted`.
    #[inline]
    fn cut(&self, wanted: Wanted) -> usize {
        let bit = |on: bool, gate: usize| if on { gate } else { 0 };
        let gates = bit(wanted.requester, GATE_REQUESTER)
            | bit(wanted.protocol, GATE_PROTOCOL)
            | bit(wanted.tls_version, GATE_TLS);
        self.cuts[gates]
    }

    fn canonical() -> ColumnMap {
        ColumnMap::from_names(CANONICAL_FIELDS.iter().map(|n| n.as_bytes()))
    }

    /// Writes where the fields of `line` that have a role are into `out`
    /// (leaving [`Span::ABSENT`] for a column the header does not name or
    /// the line does not reach) and returns where splitting stopped.
    /// Splitting stops after the last column that is always read or that
    /// `wanted` asks for (gated columns before it are still written, and
    /// not read).
    ///
    /// Tabs are found 64 bytes at a time as a bit mask, which measured about
    /// 40% faster than one `memchr` call per field for fields this short.
    /// `line` is at most [`MAX_LINE`] bytes, so offsets fit in `u32`.
    #[inline]
    fn split(&self, line: &[u8], out: &mut [Span; SLOTS], wanted: Wanted) -> usize {
        let roles = &self.roles[..self.cut(wanted)];
        if roles.is_empty() {
            return 0;
        }
        let mut start = 0;
        let mut col = 0;
        for (block, chunk) in line.chunks(64).enumerate() {
            let mut tabs = byte_bits(chunk, Needles::Tab);
            while tabs != 0 {
                let tab = block * 64 + tabs.trailing_zeros() as usize;
                tabs &= tabs - 1;
                // `col < roles.len()` holds: the loop returns when it reaches the end.
                out[usize::from(roles[col])] = Span::new(start, tab);
                col += 1;
                if col == roles.len() {
                    return tab;
                }
                start = tab + 1;
            }
        }
        // The line ended before the map did: `col` is its last field.
        let end = (line.len() - usize::from(line.ends_with(b"\r"))).max(start);
        out[usize::from(roles[col])] = Span::new(start, end);
        end
    }
}

/// How many tabs `line` holds.
fn tab_count(line: &[u8]) -> usize {
    line.chunks(64).map(|chunk| byte_bits(chunk, Needles::Tab).count_ones() as usize).sum()
}

/// A field's place in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// No field: `line.get(..)` of it is `None`.
    const ABSENT: Span = Span { start: 1, end: 0 };

    /// `start..end` of a line, which is at most [`MAX_LINE`] (64 KiB) long,
    /// so both fit in `u32` (checked by a const assertion below).
    #[inline]
    fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    #[inline]
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

const _: () = assert!(MAX_LINE < u32::MAX as usize);

/// Which bytes [`byte_bits`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needles {
    /// `\t`.
    Tab,
    /// `b`, `d`, `w` and `u` in either ASCII case: where crawler tokens can
    /// be recognised (see [`is_crawler`]).
    AgentLetters,
}

/// Bit `i` set where `chunk[i]` is one of `needles`; `chunk` is at most 64
/// bytes (more are ignored).
#[inline]
fn byte_bits(chunk: &[u8], needles: Needles) -> u64 {
    match chunk.try_into() {
        Ok(block) => block_bits(block, needles),
        Err(_) => {
            let mut padded = [0u8; 64];
            let n = chunk.len().min(64);
            padded[..n].copy_from_slice(&chunk[..n]);
            block_bits(&padded, needles)
        }
    }
}

#[inline]
fn block_bits(block: &[u8; 64], needles: Needles) -> u64 {
    let (words, _) = block.as_chunks::<8>();
    let mut bits = 0u64;
    for (k, pair) in words.chunks_exact(2).enumerate() {
        let lo = u64::from_le_bytes(pair[0]);
        let hi = u64::from_le_bytes(pair[1]);
        bits |= u64::from(byte_bits_16(lo, hi, needles)) << (16 * k);
    }
    bits
}

/// SSE2: sixteen compares per instruction.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
fn byte_bits_16(lo: u64, hi: u64, needles: Needles) -> u16 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8};
    // SAFETY: these intrinsics only need the `sse2` target feature, which
    // the `cfg` above guarantees is enabled for this build; they take
    // values, not pointers, so there is no memory to get wrong.
    let mask = unsafe {
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        let eq = |b: u8, v| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        match needles {
            Needles::Tab => _mm_movemask_epi8(eq(b'\t', v)),
            Needles::AgentLetters => {
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                let m = _mm_or_si128(
                    _mm_or_si128(eq(b'b', folded), eq(b'd', folded)),
                    _mm_or_si128(eq(b'w', folded), eq(b'u', folded)),
                );
                _mm_movemask_epi8(m)
            }
        }
    };
    mask as u16
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn byte_bits_16(lo: u64, hi: u64, needles: Needles) -> u16 {
    (byte_bits_8(lo, needles) | byte_bits_8(hi, needles) << 8) as u16
}

/// Bit `i` set where byte `i` of `word` (little-endian) is one of
/// `needles`, in plain integer arithmetic.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn byte_bits_8(word: u64, needles: Needles) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    match needles {
        Needles::Tab => zero_byte_bits(word ^ (ONES * u64::from(b'\t'))),
        Needles::AgentLetters => {
            let folded = word | (ONES * 0x20);
            [b'b', b'd', b'w', b'u'].iter().fold(0, |bits, &b| bits | zero_byte_bits(folded ^ (ONES * u64::from(b))))
        }
    }
}

/// Bit `i` set where byte `i` of `x` (little-endian) is zero.
#[inline]
fn zero_byte_bits(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // High bit of a byte set iff the byte is zero: adding 0x7f to its low
    // seven bits sets the high bit unless they are all zero, and the byte's
    // own high bit is ORed in. No carry crosses a byte.
    let zero = !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
    // Gather the eight flags (one per byte, at bits 7, 15, …) into the top
    // byte: byte i's flag moves by 56 - 7i, and no two products collide there.
    (zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Decodes CloudFront standard (legacy W3C) access logs, and the `w3c`
/// output of standard logging v2 (the same layout, with more field names).
#[derive(Debug, Clone)]
pub struct CloudFrontStandardDecoder {
    /// From the last `#Fields:` line; `None` until one is seen.
    header: Option<ColumnMap>,
    canonical: ColumnMap,
    reader: RecordReader,
}

impl CloudFrontStandardDecoder {
    /// `default_service` names the service of every event: the log itself
    /// does not say.
    pub fn new(default_service: &str) -> Self {
        CloudFrontStandardDecoder {
            header: None,
            canonical: ColumnMap::canonical(),
            reader: RecordReader::new(default_service, Origin::CloudFront),
        }
    }

    fn read_header(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(names) = line.strip_prefix(b"#Fields:") {
            let names = names.split(|&b| b == b' ' || b == b'\t').filter(|n| !n.is_empty());
            self.header = Some(ColumnMap::from_names(names));
        }
    }
}

impl Decoder for CloudFrontStandardDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        if line.len() > MAX_LINE {
            return Err(RejectReason::TooLong.into());
        }
        // A trailing `\r` is dropped where it matters (the header, and the
        // last field if the split gets that far) so the end of the line is
        // not touched otherwise.
        match line.first() {
            Some(b'#') => {
                self.read_header(line);
                return Ok(());
            }
            None => return Ok(()),
            Some(_) if line.iter().all(u8::is_ascii_whitespace) => return Ok(()),
            Some(_) => {}
        }
        let map = match &self.header {
            Some(map) => map,
            None if tab_count(line) == CANONICAL_FIELDS.len() - 1 => &self.canonical,
            None => return Err(RejectReason::NoHeader.into()),
        };
        self.reader.read(map, line, sink)
    }

    fn reset(&mut self) {
        self.header = None;
    }

    fn want(&mut self, fields: Wanted) {
        self.reader.wanted = fields;
    }
}

/// Turns one tab-separated record into an event, given what its columns
/// mean. Shared by every CloudFront format that is tab-separated text: the
/// standard log (columns from `#Fields:`), standard logging v2 `plain`
/// output and real-time logs (columns from configuration).
#[derive(Debug, Clone)]
pub(crate) struct RecordReader {
    default_service: String,
    origin: Origin,
    /// The last date string seen and its day number: a log file holds only a
    /// handful of dates, so this nearly always hits.
    last_date: Option<([u8; 10], i64)>,
    /// Scratch space: the URL-decoded path, and lossy copies of text fields
    /// that are not valid UTF-8 (host, path, method, edge, request id,
    /// client address, user agent).
    path_buf: Vec<u8>,
    lossy: [String; 7],
    /// Optional fields the consumer reads; the others are not parsed.
    pub(crate) wanted: Wanted,
    /// Whether `cs-uri-stem` holds the query string after a `?`, as in
    /// real-time logs (standard logs leave it out); the path ends there.
    pub(crate) stem_has_query: bool,
}

impl RecordReader {
    pub(crate) fn new(default_service: &str, origin: Origin) -> Self {
        RecordReader {
            default_service: default_service.to_owned(),
            origin,
            last_date: None,
            path_buf: Vec::new(),
            lossy: Default::default(),
            wanted: Wanted::ALL,
            stem_has_query: false,
        }
    }

    #[inline]
    fn day_number(&mut self, date: &[u8]) -> Option<i64> {
        if let Some((d, n)) = &self.last_date
            && d[..] == *date
        {
            return Some(*n);
        }
        let n = parse_date(date)?;
        let mut key = [0u8; 10];
        key.copy_from_slice(date);
        self.last_date = Some((key, n));
        Some(n)
    }

    /// Decode one data line (not a header, not blank, at most [`MAX_LINE`]
    /// bytes) whose columns `map` describes. The line's lifetime is named so
    /// that text can come from the line or the scratch space.
    #[inline]
    #[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
    pub(crate) fn read<'l>(
        &'l mut self,
        map: &ColumnMap,
        line: &'l [u8],
        sink: &mut dyn EventSink,
    ) -> Result<(), Reject> {
        let mut spans = [Span::ABSENT; SLOTS];
        let wanted = self.wanted;
        let split_end = map.split(line, &mut spans, wanted);
        if self.stem_has_query {
            // A `?` that belongs to the path travels percent-encoded (RFC
            // 3986), so the first literal one starts the query string.
            let stem = &mut spans[Role::UriStem as usize];
            if let Some(i) = line.get(stem.range()).and_then(|s| memchr(b'?', s)) {
                stem.end = stem.start + i as u32;
            }
        }
        let field = |r: Role| line.get(spans[r as usize].range());
        let value = |r: Role| field(r).filter(|v| !v.is_empty() && *v != b"-");
        // Validating the split part of the line once is cheaper than
        // validating the handed-out fields one by one. CloudFront URL-encodes
        // its fields, so the split part is nearly always ASCII, and then any
        // field of it is text as it stands.
        let ascii = line[..split_end].is_ascii();
        let valid = if ascii { None } else { std::str::from_utf8(&line[..split_end]).ok() };
        let text_of = |r: Role, spare: &'l mut String| -> &'l str {
            let Some(raw) = value(r) else {
                return "";
            };
            if ascii {
                // SAFETY: `raw` is part of `line[..split_end]`, checked ASCII
                // above, and every ASCII byte sequence is valid UTF-8.
                return unsafe { std::str::from_utf8_unchecked(raw) };
            }
            match valid.and_then(|v| v.get(spans[r as usize].range())) {
                Some(t) => t,
                None => text(raw, spare),
            }
        };

        // The epoch timestamps of v2 and real-time logs when there (the
        // most precise first), else `date` + `time` (the legacy layout).
        let ts_ms = match (value(Role::TimestampMs), value(Role::Timestamp), value(Role::Date), value(Role::Time)) {
            (Some(ms), ..) => parse_epoch_ms(ms).ok_or(RejectReason::BadTimestamp)?,
            (None, Some(secs), ..) => parse_epoch_seconds_as_ms(secs).ok_or(RejectReason::BadTimestamp)?,
            (None, None, Some(date), Some(time)) => {
                let day = self.day_number(date).ok_or(RejectReason::BadTimestamp)?;
                let secs = parse_time_of_day(time).ok_or(RejectReason::BadTimestamp)?;
                (day * 86_400 + secs) * 1000
            }
            _ => return Err(RejectReason::MissingField.into()),
        };
        let status = field(Role::Status).ok_or(RejectReason::MissingField)?;
        let status = parse_status(status).ok_or(RejectReason::BadStatus)?;

        let latency_ms = match value(Role::TimeTaken) {
            Some(v) => Some(parse_seconds_as_ms(v).ok_or(RejectReason::BadNumber)?),
            None => None,
        };
        let upstream_latency_ms = match value(Role::OriginFirstByte) {
            Some(v) => Some(parse_seconds_as_ms(v).ok_or(RejectReason::BadNumber)?),
            None => None,
        };
        let bytes = match value(Role::Bytes) {
            Some(v) if wanted.bytes => parse_u64(v).ok_or(RejectReason::BadNumber)?,
            _ => 0,
        };
        let cache = match value(Role::ResultType) {
            Some(v) if wanted.cache => cache_result(v),
            _ => CacheResult::Unknown,
        };
        // `-` is a value here (no TLS), so the field is read as written.
        let protocol = match field(Role::Protocol) {
            Some(v) if wanted.protocol => Protocol::from_log(v),
            _ => Protocol::Unknown,
        };
        let tls_version = match field(Role::SslProtocol) {
            Some(v) if wanted.tls_version => TlsVersion::from_log(v),
            _ => TlsVersion::Unknown,
        };

        // Disjoint borrows of the scratch buffers, so that the event can
        // borrow from several of them at once.
        let Self { default_service, path_buf, lossy, origin, .. } = self;
        let client = match value(Role::UserAgent) {
            Some(ua) if wanted.client => classify_user_agent(ua),
            _ => ClientClass::Unknown,
        };
        let [lossy_host, lossy_path, lossy_method, lossy_edge, lossy_id, lossy_ip, lossy_agent] = lossy;
        // The requester, kept as written (the user agent URL-encoded). An
        // `asn` that is not a number is left out rather than rejecting a
        // request that still happened.
        let (client_addr, user_agent, asn) = if wanted.requester {
            (
                text_of(Role::ClientIp, lossy_ip),
                text_of(Role::UserAgent, lossy_agent),
                value(Role::Asn).and_then(parse_u64).and_then(|n| u32::try_from(n).ok()),
            )
        } else {
            ("", "", None)
        };

        let path = match value(Role::UriStem) {
            Some(stem) if has_percent(stem) => decode_path(stem, path_buf, lossy_path),
            Some(_) => text_of(Role::UriStem, lossy_path),
            None => "",
        };
        let host_role = if value(Role::HostHeader).is_some() { Role::HostHeader } else { Role::Host };

        let event = RequestEvent {
            ts_ms,
            origin: Some(*origin),
            service: default_service,
            host: text_of(host_role, lossy_host),
            path,
            method: text_of(Role::Method, lossy_method),
            status,
            latency_ms,
            upstream_latency_ms,
            edge_location: text_of(Role::EdgeLocation, lossy_edge),
            client,
            cache,
            protocol,
            tls_version,
            bytes,
            request_id: if wanted.request_id { text_of(Role::RequestId, lossy_id) } else { "" },
            client_addr,
            user_agent,
            asn,
            ..RequestEvent::default()
        };
        sink.event(&event);
        Ok(())
    }
}

/// A URL-encoded `cs-uri-stem` as the path a server sees, decoded into
/// `buf` (and into `spare` if the result is not UTF-8).
#[inline]
pub(crate) fn decode_path<'a>(stem: &[u8], buf: &'a mut Vec<u8>, spare: &'a mut String) -> &'a str {
    buf.clear();
    buf.extend_from_slice(stem);
    percent_decode(buf);
    text(buf, spare)
}

/// Epoch seconds with up to three fraction digits (`1732104000.123`,
/// `1732104000`) to epoch milliseconds, without a float parser.
#[inline]
pub(crate) fn parse_epoch_seconds_as_ms(s: &[u8]) -> Option<i64> {
    let (whole, frac) = match memchr(b'.', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    // 12 digits of seconds reach the year 33658; more is not a timestamp.
    if whole.is_empty() || whole.len() > 12 || frac.len() > 3 || (frac.is_empty() && s.len() != whole.len()) {
        return None;
    }
    let secs = i64::try_from(parse_u64(whole)?).ok()?;
    let mut ms = 0;
    for i in 0..3 {
        let d = match frac.get(i) {
            Some(&b) => b.wrapping_sub(b'0'),
            None => 0,
        };
        if d > 9 {
            return None;
        }
        ms = ms * 10 + i64::from(d);
    }
    Some(secs * 1000 + ms)
}

/// Epoch milliseconds (`1732104000123`).
#[inline]
pub(crate) fn parse_epoch_ms(s: &[u8]) -> Option<i64> {
    if s.len() > 15 {
        return None;
    }
    i64::try_from(parse_u64(s)?).ok()
}

/// Whether `s` holds a `%`, eight bytes at a time: paths are short, and the
/// general `memchr` costs more in set-up than this whole loop.
#[inline]
pub(crate) fn has_percent(s: &[u8]) -> bool {
    const PCT: u64 = 0x2525_2525_2525_2525;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        if zero_byte_bits(u64::from_le_bytes(c.try_into().expect("8 bytes")) ^ PCT) != 0 {
            return true;
        }
    }
    chunks.remainder().contains(&b'%')
}

/// `bytes` as text if they are UTF-8. CloudFront URL-encodes its fields, so
/// they are nearly always ASCII, which is checked much faster than UTF-8.
#[inline]
#[allow(unsafe_code)] // each `unsafe` inside carries its SAFETY comment
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// `raw` as text: borrowed when it is UTF-8 (nearly always), otherwise a
/// lossy copy in `spare`.
#[inline]
pub(crate) fn text<'a>(raw: &'a [u8], spare: &'a mut String) -> &'a str {
    match as_text(raw) {
        Some(s) => s,
        None => lossy_text(raw, spare),
    }
}

/// `raw` with each invalid UTF-8 sequence replaced by U+FFFD, in `spare`.
#[cold]
#[inline(never)]
fn lossy_text<'a>(raw: &[u8], spare: &'a mut String) -> &'a str {
    spare.clear();
    for chunk in raw.utf8_chunks() {
        spare.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            spare.push(char::REPLACEMENT_CHARACTER);
        }
    }
    spare
}

/// How many times a value is URL-decoded at most. CloudFront logs the URI as
/// the viewer sent it (already percent-encoded) and encodes `%` again, so two
/// rounds give the path a server sees; a third would turn a literal `%20` in
/// a path into a space.
const MAX_DECODE_ROUNDS: usize = 2;

/// URL-decodes `buf` in place, round after round while a round still finds a
/// `%XX` escape. A `%` not followed by two hex digits stays as it is; `+`
/// stays `+` (this is a path, not a form).
fn percent_decode(buf: &mut Vec<u8>) {
    for _ in 0..MAX_DECODE_ROUNDS {
        if !percent_decode_round(buf) {
            break;
        }
    }
}

/// One round of decoding; whether anything was decoded.
fn percent_decode_round(buf: &mut Vec<u8>) -> bool {
    let Some(first) = memchr(b'%', buf) else {
        return false;
    };
    let n = buf.len();
    let (mut r, mut w) = (first, first);
    let mut decoded = false;
    // Invariant: `w <= r`, and `buf[r]` is a `%` at the top of each turn.
    while r < n {
        let escape = match (buf.get(r + 1), buf.get(r + 2)) {
            (Some(&hi), Some(&lo)) => hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escape {
            Some(byte) => {
                buf[w] = byte;
                r += 3;
                decoded = true;
            }
            None => {
                buf[w] = b'%';
                r += 1;
            }
        }
        w += 1;
        let next = memchr(b'%', &buf[r..]).map_or(n, |i| r + i);
        buf.copy_within(r..next, w);
        w += next - r;
        r = next;
    }
    buf.truncate(w);
    decoded
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decimal seconds (`0.123`, `12`, `1.5`) to milliseconds without going
/// through a float parser: the digits make an integer, the position of the
/// point a power of ten. Exact for up to three fraction digits.
#[inline]
pub(crate) fn parse_seconds_as_ms(s: &[u8]) -> Option<f64> {
    // Nearly every value is `S.mmm`: read it without a loop.
    if let &[a, b'.', b, c, d] = s {
        let digits = [a, b, c, d].map(|x| x.wrapping_sub(b'0'));
        if digits.iter().all(|&x| x <= 9) {
            let [a, b, c, d] = digits.map(u32::from);
            return Some(f64::from(a * 1000 + b * 100 + c * 10 + d));
        }
    }
    const MAX_DIGITS: u32 = 18; // keeps the mantissa far from u64 overflow
    let mut mantissa: u64 = 0;
    let mut digit_count: u32 = 0;
    let mut fraction_digits: Option<i32> = None;
    for &b in s {
        if b == b'.' {
            if fraction_digits.is_some() {
                return None;
            }
            fraction_digits = Some(0);
            continue;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 || digit_count == MAX_DIGITS {
            return None;
        }
        mantissa = mantissa * 10 + u64::from(d);
        digit_count += 1;
        if let Some(f) = &mut fraction_digits {
            *f += 1;
        }
    }
    if digit_count == 0 {
        return None;
    }
    match fraction_digits.unwrap_or(0) {
        f @ 0..=3 => Some(mantissa.checked_mul(10u64.pow(3 - f as u32))? as f64),
        f => Some(mantissa as f64 / 10f64.powi(f - 3)),
    }
}

#[inline]
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `x-edge-result-type` folded to a hit, a miss or an error.
#[inline]
pub(crate) fn cache_result(v: &[u8]) -> CacheResult {
    match v {
        b"Hit" | b"RefreshHit" | b"OriginShieldHit" => CacheResult::Hit,
        b"Miss" => CacheResult::Miss,
        b"Error" | b"LimitExceeded" | b"CapacityExceeded" => CacheResult::Error,
        _ => CacheResult::Unknown,
    }
}

/// The user agent is looked at only up to this many bytes; crawlers name
/// themselves early.
const AGENT_PREFIX: usize = 512;

/// Crawler, browser or other, from the URL-encoded `cs(User-Agent)` value
/// without decoding it (the tokens looked for contain no escaped bytes).
///
/// Crawler tokens, ASCII case ignored: `bot` (Googlebot, bingbot, DuckDuckBot,
/// Applebot, YandexBot, AhrefsBot, …, except the phone maker "Cubot"),
/// `crawl`, `spider` (Baiduspider), `yandex`, `slurp` (Yahoo) and
/// `facebookexternalhit`. A browser is anything else starting `Mozilla/`.
pub(crate) fn classify_user_agent(ua: &[u8]) -> ClientClass {
    let ua = &ua[..ua.len().min(AGENT_PREFIX)];
    let starts = |prefix: &[u8]| ua.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
    if is_crawler(ua) {
        ClientClass::Crawler
    } else if starts(b"mozilla/") || starts(b"mozilla%2f") {
        ClientClass::Browser
    } else {
        ClientClass::Other
    }
}

/// Rather than one substring search per token, visit the few places where a
/// token's rarest letter occurs (`b`, `d`, `w`, `u` in either case, found 64
/// bytes at a time) and compare around them.
#[inline]
fn is_crawler(s: &[u8]) -> bool {
    // Compare up to eight bytes at once: fold the window to lowercase with
    // `| 0x20` (which maps only `A`-`Z` onto `a`-`z`, and every token is
    // letters only) and mask it to the token's length.
    let at = |start: Option<usize>, token: &Token| {
        start.is_some_and(|i| (window_at(s, i) | ASCII_CASE) & token.mask == token.word)
    };
    for (block, chunk) in s.chunks(64).enumerate() {
        let mut candidates = byte_bits(chunk, Needles::AgentLetters);
        while candidates != 0 {
            let i = block * 64 + candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let hit = match s[i] | 0x20 {
                b'b' => {
                    (at(Some(i), &BOT) && !at(i.checked_sub(2), &CUBOT))
                        || (at(i.checked_sub(4), &FACEBOOK)
                            && s.get(i + 4..i + 15).is_some_and(|w| w.eq_ignore_ascii_case(b"externalhit")))
                }
                b'd' => at(i.checked_sub(3), &SPIDER) || at(i.checked_sub(3), &YANDEX),
                b'w' => at(i.checked_sub(3), &CRAWL),
                _ => at(i.checked_sub(2), &SLURP),
            };
            if hit {
                return true;
            }
        }
    }
    false
}

const ASCII_CASE: u64 = 0x2020_2020_2020_2020;

/// A lowercase token of at most eight letters, as a little-endian word.
struct Token {
    word: u64,
    mask: u64,
}

impl Token {
    const fn new(token: &[u8]) -> Token {
        assert!(token.len() <= 8);
        let mut bytes = [0u8; 8];
        let mut i = 0;
        while i < token.len() {
            bytes[i] = token[i];
            i += 1;
        }
        let mask = if token.len() == 8 { u64::MAX } else { (1 << (8 * token.len())) - 1 };
        Token { word: u64::from_le_bytes(bytes) & mask, mask }
    }
}

const BOT: Token = Token::new(b"bot");
const CUBOT: Token = Token::new(b"cubot");
const FACEBOOK: Token = Token::new(b"facebook");
const SPIDER: Token = Token::new(b"spider");
const YANDEX: Token = Token::new(b"yandex");
const CRAWL: Token = Token::new(b"crawl");
const SLURP: Token = Token::new(b"slurp");

/// The eight bytes of `s` from `i`, zero past its end.
#[inline]
fn window_at(s: &[u8], i: usize) -> u64 {
    let mut bytes = [0u8; 8];
    match s.get(i..i + 8) {
        Some(w) => bytes.copy_from_slice(w),
        None => {
            let tail = s.get(i..).unwrap_or_default();
            bytes[..tail.len()].copy_from_slice(tail);
        }
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests;
