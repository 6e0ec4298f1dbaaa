//! Log events exported from CloudWatch Logs to a file, in the shapes people
//! save a log group in, and the decoders their messages go to.
//!
//! | saved with | file |
//! | --- | --- |
//! | the console's log events view, "Download" (CSV); Logs Insights, "Export results" → "Download table (CSV)" | a header row naming the columns (`timestamp,message`, `@timestamp,@message,@logStream,@log`, …), then one row per log event; RFC 4180 quoting, so a message with commas, quotes or newlines is quoted and may span lines |
//! | `aws logs get-log-events`, `aws logs filter-log-events` (`--output json`, the default) | one JSON object `{"events": [{"timestamp", "message", "ingestionTime", "logStreamName"?, "eventId"?}, …], "nextForwardToken"…}`; several such objects one after another (pages saved with `>>`) |
//! | the same with `--query events` | a JSON array of those events |
//! | Logs Insights JSON | a JSON array of objects `{"@timestamp", "@message", "@logStream"?, "@log"?}`, or those objects one after another (one per line) |
//! | `aws logs get-query-results` | `{"results": [[{"field": "@timestamp", "value": …}, {"field": "@message", "value": …}], …], "status"…}` |
//!
//! Column and key names are matched without case and with or without a
//! leading `@`: `timestamp`, `message`, `log` / `logGroup` / `logGroupName`
//! (Logs Insights' `@log` is `account-id:log-group`), `logStream` /
//! `logStreamName`; other columns and keys are ignored. A timestamp is
//! epoch milliseconds (a number, or a string of digits), RFC 3339, or
//! `YYYY-MM-DD HH:MM:SS.mmm` without an offset (what Logs Insights writes),
//! which is taken as UTC.
//!
//! **Which decoder.** Each log event's message goes to a decoder with the
//! event's timestamp as its time hint (Lambda `REPORT` lines carry no time).
//! [`LogEventRouter`] picks the decoder per log group (one lane per group;
//! one lane for files that name no group): the first `--log-group` route
//! that matches the group (default `/aws/lambda/*` → `lambda`), else the
//! format the caller names, else a Lambda log stream name
//! (`2026/11/21/[$LATEST]…`) means `lambda`, else the format is told from
//! the messages ([`Format::detect`]) — messages that cannot tell it (a
//! function's own output before its first `START`) wait, bounded, for one
//! that can. Messages of a lane whose format is never told are counted as
//! unrouted, never dropped silently.
//!
//! Nothing here reads files: the caller splits CSV records
//! (a record ends at a newline outside quotes: after an even number of `"`) and streams JSON through [`EventsSeed`].

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::decode::cloudwatch_logs::{LogGroupRoute, SubscriptionDecoder};
use crate::decode::{Decoder, Format, MAX_LINE, RejectReason, Rejects, feed_line, saved};
use crate::event::{EventSink, Wanted};

/// Longest CSV record (a quoted message may span lines, and quoting can
/// double its size); CloudWatch Logs keeps events well under this, so a
/// longer record is damage (an unclosed quote) and rejected as `too_long`.
pub const MAX_RECORD: usize = 2 << 20;
/// Log events kept while their lane's format is not known yet, and their
/// bytes; past either, the oldest is counted as unrouted.
const MAX_PENDING_EVENTS: usize = 10_000;
const MAX_PENDING_BYTES: usize = 8 << 20;
/// Lanes (log groups) with a decoder; past this the oldest is forgotten.
const MAX_LANES: usize = 256;
/// Unrouted lanes named in [`RouterStats::unrouted_groups`].
const MAX_NAMED: usize = 32;

/// The shape of an export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A header row, then one row per log event.
    Csv,
    /// JSON: `{"events": […]}`, `{"results": […]}`, or an array of events.
    Json,
}

/// Whether a file's first bytes are an export, and of which shape.
pub fn detect(head: &[u8]) -> Option<Container> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let head = head.trim_ascii_start();
    let has = |key: &[u8]| memchr::memmem::find(head, key).is_some();
    match head.first()? {
        b'{' => {
            let rest = head[1..].trim_ascii_start();
            // Logs Insights events, one object per line.
            let insights = [&b"\"@timestamp\""[..], b"\"@message\"", b"\"@log\"", b"\"@logStream\"", b"\"@ptr\""];
            if insights.iter().any(|key| rest.starts_with(key)) && (has(b"\"@message\"")) {
                return Some(Container::Json);
            }
            let rest = rest.strip_prefix(b"\"events\"").or_else(|| rest.strip_prefix(b"\"results\""))?;
            let rest = rest.trim_ascii_start().strip_prefix(b":")?;
            (rest.trim_ascii_start().first() == Some(&b'[')).then_some(Container::Json)
        }
        b'[' => {
            let element = head[1..].trim_ascii_start();
            let event = element.first() == Some(&b'{')
                && (has(b"\"message\"") || has(b"\"@message\""))
                && (has(b"\"timestamp\"") || has(b"\"@timestamp\""))
                && !(has(b"\"type\"") && has(b"\"record\""));
            let row = element.first() == Some(&b'[') && has(b"\"field\"") && has(b"\"value\"");
            (event || row).then_some(Container::Json)
        }
        _ => {
            let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
            CsvColumns::from_header(line).map(|_| Container::Csv)
        }
    }
}

/// What a column or key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Timestamp,
    Message,
    Group,
    Stream,
    Other,
}

fn column(name: &str) -> Column {
    let name = name.trim();
    let name = name.strip_prefix('@').unwrap_or(name);
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("timestamp") {
        Column::Timestamp
    } else if is("message") {
        Column::Message
    } else if is("log") || is("logGroup") || is("logGroupName") || is("log group") {
        Column::Group
    } else if is("logStream") || is("logStreamName") || is("log stream") {
        Column::Stream
    } else {
        Column::Other
    }
}

/// Where the columns of a CSV export are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    count: usize,
    timestamp: Option<usize>,
    message: usize,
    group: Option<usize>,
    stream: Option<usize>,
}

impl CsvColumns {
    /// The columns a header row names; `None` unless it names a message
    /// column and every name is a plain field name (so a data row of
    /// another format is never taken for a header).
    pub fn from_header(line: &[u8]) -> Option<CsvColumns> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut fields = Vec::new();
        csv_fields(line, &mut fields).ok()?;
        let (mut timestamp, mut message, mut group, mut stream) = (None, None, None, None);
        let mut text = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            f.unquote(line, &mut text);
            let name = std::str::from_utf8(&text).ok()?;
            let plain = |c: char| c.is_ascii_alphanumeric() || "@_.-()/* ".contains(c);
            if name.trim().is_empty() || name.len() > 64 || !name.chars().all(plain) {
                return None;
            }
            let slot = match column(name) {
                Column::Timestamp => &mut timestamp,
                Column::Message => &mut message,
                Column::Group => &mut group,
                Column::Stream => &mut stream,
                Column::Other => continue,
            };
            slot.get_or_insert(i);
        }
        Some(CsvColumns { count: fields.len(), timestamp, message: message?, group, stream })
    }

    /// One data row: the log event it holds, its parts unquoted into
    /// `scratch`. `MissingField` when the row has no message column,
    /// `BadTimestamp` for a time that cannot be read, `BadField` for
    /// broken quoting.
    pub fn row<'s>(&self, record: &[u8], scratch: &'s mut CsvScratch) -> Result<LogEvent<'s>, RejectReason> {
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        csv_fields(record, &mut scratch.fields)?;
        let field = |i: Option<usize>, out: &mut Vec<u8>| {
            out.clear();
            if let Some(f) = i.and_then(|i| scratch.fields.get(i)) {
                f.unquote(record, out);
            }
        };
        if scratch.fields.len() <= self.message {
            return Err(RejectReason::MissingField);
        }
        field(Some(self.message), &mut scratch.message);
        // A last message column written without quotes (by hand, or by a
        // tool that does not quote) is the rest of the row, commas and all.
        let last = self.message + 1 == self.count && scratch.fields.len() > self.count;
        if let Some(f) = scratch.fields.get(self.message).filter(|f| last && !f.quoted) {
            scratch.message.clear();
            scratch.message.extend_from_slice(&record[f.start..]);
        }
        field(self.group, &mut scratch.group);
        field(self.stream, &mut scratch.stream);
        field(self.timestamp, &mut scratch.time);
        let ts_ms = match std::str::from_utf8(&scratch.time).map(str::trim) {
            Ok("") => None,
            Ok(t) => Some(export_time(t).ok_or(RejectReason::BadTimestamp)?),
            Err(_) => return Err(RejectReason::BadTimestamp),
        };
        Ok(LogEvent {
            ts_ms,
            message: &scratch.message,
            group: log_group(std::str::from_utf8(&scratch.group).map_err(|_| RejectReason::BadEncoding)?),
            stream: std::str::from_utf8(&scratch.stream).unwrap_or(""),
        })
    }
}

/// Buffers a CSV row is unquoted into, kept from row to row.
#[derive(Debug, Default)]
pub struct CsvScratch {
    fields: Vec<CsvField>,
    message: Vec<u8>,
    group: Vec<u8>,
    stream: Vec<u8>,
    time: Vec<u8>,
}

/// One field of a CSV record: its bytes, quotes included.
#[derive(Debug, Clone, Copy)]
struct CsvField {
    start: usize,
    end: usize,
    quoted: bool,
}

impl CsvField {
    fn unquote(&self, record: &[u8], out: &mut Vec<u8>) {
        out.clear();
        if !self.quoted {
            out.extend_from_slice(&record[self.start..self.end]);
            return;
        }
        let inner = &record[self.start + 1..self.end - 1];
        let mut rest = inner;
        while let Some(q) = memchr::memchr(b'"', rest) {
            // Inside quotes a quote is always doubled (checked by `csv_fields`).
            out.extend_from_slice(&rest[..=q]);
            rest = rest.get(q + 2..).unwrap_or(b"");
        }
        out.extend_from_slice(rest);
    }
}

/// Split one CSV record (RFC 4180: `,` between fields, a field in `"` may
/// hold commas, newlines and `""` for a quote) into `out`.
fn csv_fields(record: &[u8], out: &mut Vec<CsvField>) -> Result<(), RejectReason> {
    out.clear();
    let mut i = 0;
    loop {
        let start = i;
        if record.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let q = memchr::memchr(b'"', &record[i..]).ok_or(RejectReason::BadField)?;
                i += q + 1;
                if record.get(i) == Some(&b'"') {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(CsvField { start, end: i, quoted: true });
            match record.get(i) {
                None => return Ok(()),
                Some(b',') => i += 1,
                Some(_) => return Err(RejectReason::BadField),
            }
        } else {
            let end = memchr::memchr(b',', &record[i..]).map_or(record.len(), |c| i + c);
            if memchr::memchr(b'"', &record[i..end]).is_some() {
                return Err(RejectReason::BadField);
            }
            out.push(CsvField { start, end, quoted: false });
            if end == record.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// A log group as exports spell it: Logs Insights' `@log` is
/// `123456789012:/aws/lambda/checkout`.
fn log_group(text: &str) -> &str {
    let text = text.trim();
    match text.split_once(':') {
        Some((account, group)) if !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()) => group,
        _ => text,
    }
}

/// An export's timestamp: epoch milliseconds, RFC 3339, or a date and time
/// without an offset (UTC), `T` or a space between them.
pub fn export_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if text.len() < 19 || text.len() > 40 {
        return None;
    }
    if let saved::Time::At(ms) = saved::time_word(text.as_bytes()) {
        return Some(ms);
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

/// One exported log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEvent<'a> {
    /// The event's timestamp; `None` when the export holds none.
    pub ts_ms: Option<i64>,
    pub message: &'a [u8],
    /// Empty when the export names no log group.
    pub group: &'a str,
    pub stream: &'a str,
}

/// One log event of a JSON export, as read (owned: a reader-fed parser
/// cannot lend its strings).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JsonLogEvent {
    pub ts_ms: Option<i64>,
    pub message: Option<String>,
    pub group: String,
    pub stream: String,
    /// Why the event cannot be used, when it cannot.
    pub problem: Option<RejectReason>,
}

impl JsonLogEvent {
    /// The event, or why it cannot be used.
    pub fn as_event(&self) -> Result<LogEvent<'_>, RejectReason> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        let message = self.message.as_deref().ok_or(RejectReason::MissingField)?;
        Ok(LogEvent {
            ts_ms: self.ts_ms,
            message: message.as_bytes(),
            group: log_group(&self.group),
            stream: &self.stream,
        })
    }

    fn set(&mut self, column: Column, value: Scalar) {
        match (column, value) {
            (Column::Timestamp, Scalar::Null) | (Column::Other, _) => {}
            (Column::Timestamp, Scalar::Number(n)) => match n {
                Some(ms) => self.ts_ms = Some(ms),
                None => self.fail(RejectReason::BadTimestamp),
            },
            (Column::Timestamp, Scalar::Text(t)) => match export_time(&t) {
                Some(ms) => self.ts_ms = Some(ms),
                None => self.fail(RejectReason::BadTimestamp),
            },
            (Column::Timestamp, Scalar::Other) => self.fail(RejectReason::BadTimestamp),
            (Column::Message, Scalar::Text(t)) => self.message = Some(t),
            (Column::Message, Scalar::Null) => {}
            (Column::Group, Scalar::Text(t)) => self.group = t,
            (Column::Stream, Scalar::Text(t)) => self.stream = t,
            (_, Scalar::Null) => {}
            _ => self.fail(RejectReason::BadField),
        }
    }

    fn fail(&mut self, reason: RejectReason) {
        self.problem.get_or_insert(reason);
    }
}

/// A JSON value as an export field holds it.
enum Scalar {
    Null,
    Text(String),
    /// An integer that fits; `None` for other numbers.
    Number(Option<i64>),
    Other,
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(i64::try_from(n).ok()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(Some(n)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(None))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A key of an event object, or the `field` of a query result's pair.
struct Key(Column);

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(Key(column(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One element of an events array: an event object, or a Logs Insights
/// result row (an array of `{"field", "value"}`). Anything else is an
/// event that cannot be used (`BadField`), not the end of the file.
struct Element;

impl Element {
    fn unusable<E>() -> Result<JsonLogEvent, E> {
        Ok(JsonLogEvent { problem: Some(RejectReason::BadField), ..JsonLogEvent::default() })
    }
}

impl<'de> Visitor<'de> for Element {
    type Value = JsonLogEvent;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a log event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonLogEvent, A::Error> {
        let mut ev = JsonLogEvent::default();
        while let Some(Key(col)) = map.next_key::<Key>()? {
            if col == Column::Other {
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value::<Scalar>()?;
                ev.set(col, value);
            }
        }
        Ok(ev)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonLogEvent, A::Error> {
        let mut ev = JsonLogEvent::default();
        while let Some(pair) = seq.next_element::<Pair>()? {
            match pair {
                Pair { field: Some(name), value } => ev.set(column(&name), value),
                Pair { field: None, .. } => ev.fail(RejectReason::BadField),
            }
        }
        Ok(ev)
    }
    fn visit_unit<E>(self) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
    fn visit_bool<E>(self, _: bool) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
    fn visit_u64<E>(self, _: u64) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
    fn visit_i64<E>(self, _: i64) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
    fn visit_f64<E>(self, _: f64) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
    fn visit_str<E>(self, _: &str) -> Result<JsonLogEvent, E> {
        Self::unusable()
    }
}

/// `{"field": "@message", "value": "…"}` of a Logs Insights result row.
struct Pair {
    field: Option<String>,
    value: Scalar,
}

impl<'de> de::Deserialize<'de> for Pair {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a {\"field\", \"value\"} object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pair, A::Error> {
                let mut pair = Pair { field: None, value: Scalar::Null };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "field" => {
                            pair.field = match map.next_value::<Scalar>()? {
                                Scalar::Text(t) => Some(t),
                                _ => None,
                            }
                        }
                        "value" => pair.value = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(pair)
            }
        }
        d.deserialize_map(V)
    }
}

/// Streams the log events of a JSON export to `on_event`, one at a time:
/// `{"events": […], …}`, `{"results": […], …}` (other keys skipped), or an
/// array of events. Memory is one event's, whatever the file's size.
pub struct EventsSeed<'f, F: FnMut(JsonLogEvent)> {
    pub on_event: &'f mut F,
}

impl<'de, F: FnMut(JsonLogEvent)> DeserializeSeed<'de> for EventsSeed<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(JsonLogEvent)> Visitor<'de> for EventsSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an \"events\" or \"results\" array, or an array of log events")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Either a container of events, or one event (Logs Insights events
        // one per line): an object with event keys is an event.
        let mut event: Option<JsonLogEvent> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "events" || key == "results" {
                map.next_value_seed(EventsSeed { on_event: &mut *self.on_event })?;
                continue;
            }
            match column(&key) {
                Column::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                col => {
                    let value = map.next_value::<Scalar>()?;
                    event.get_or_insert_with(JsonLogEvent::default).set(col, value);
                }
            }
        }
        if let Some(ev) = event {
            (self.on_event)(ev);
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(ev) = seq.next_element_seed(ElementSeed)? {
            (self.on_event)(ev);
        }
        Ok(())
    }
}

/// The log events of a JSON export held in memory (values one after
/// another), for tests and fuzzing; files are streamed through
/// [`EventsSeed`] by the caller. `Err` where the JSON breaks.
pub fn json_events_in(json: &[u8], mut on_event: impl FnMut(JsonLogEvent)) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    loop {
        DeserializeSeed::deserialize(EventsSeed { on_event: &mut on_event }, &mut de)?;
        if de.end().is_ok() {
            return Ok(());
        }
    }
}

struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = JsonLogEvent;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<JsonLogEvent, D::Error> {
        d.deserialize_any(Element)
    }
}

/// What [`LogEventRouter`] did besides decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    pub log_events: u64,
    /// Log events no decoder could be picked for.
    pub unrouted_log_events: u64,
    /// Their log groups (`(no log group)` for files that name none), at
    /// most a few, as the file spelled them: untrusted text.
    pub unrouted_groups: Vec<String>,
    /// Whether any lane got a decoder.
    pub told: bool,
}

enum Lane {
    /// The format is not told yet: the lane's events wait in `pending`.
    Waiting,
    Decoding(Box<dyn Decoder>),
    /// No decoder can read it: its events are counted as unrouted.
    Unrouted,
}

struct Pending {
    lane: String,
    ts_ms: Option<i64>,
    message: Vec<u8>,
    place: String,
}

/// Sends each exported log event's message to the decoder of its lane (its
/// log group), with the event's time as the time hint.
pub struct LogEventRouter {
    default_service: String,
    routes: Vec<LogGroupRoute>,
    fixed: Option<Format>,
    wanted: Wanted,
    lanes: HashMap<String, Lane>,
    order: VecDeque<String>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    stats: RouterStats,
}

impl LogEventRouter {
    /// `routes` pick the format of named log groups (empty: `/aws/lambda/*`
    /// → `lambda`); `format` is the format of the messages of other groups
    /// (`Auto`: told from the messages).
    pub fn new(default_service: &str, routes: Vec<LogGroupRoute>, format: Format) -> LogEventRouter {
        LogEventRouter {
            default_service: default_service.to_owned(),
            routes: if routes.is_empty() { SubscriptionDecoder::default_routes() } else { routes },
            fixed: (format != Format::Auto).then_some(format),
            wanted: Wanted::ALL,
            lanes: HashMap::new(),
            order: VecDeque::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            stats: RouterStats::default(),
        }
    }

    pub fn want(&mut self, wanted: Wanted) {
        self.wanted = wanted;
    }

    /// Decode one log event's message; its rejects are sampled with `place`.
    pub fn log_event(
        &mut self,
        ev: LogEvent<'_>,
        place: impl FnOnce() -> String,
        sink: &mut dyn EventSink,
        rejects: &mut Rejects,
    ) {
        self.stats.log_events += 1;
        if !self.lanes.contains_key(ev.group) {
            let lane = self.new_lane(ev.group, ev.stream);
            if self.order.len() >= MAX_LANES
                && let Some(oldest) = self.order.pop_front()
            {
                self.lanes.remove(&oldest);
                self.give_up_waiting(&oldest);
            }
            self.order.push_back(ev.group.to_owned());
            self.lanes.insert(ev.group.to_owned(), lane);
        }
        let lane = self.lanes.get_mut(ev.group).expect("inserted above");
        match lane {
            Lane::Decoding(d) => decode(d.as_mut(), ev.ts_ms, ev.message, &place(), sink, rejects),
            Lane::Unrouted => self.unrouted(ev.group, 1),
            Lane::Waiting => match tell(ev.message).and_then(|f| f.decoder(&self.default_service)) {
                Some(mut d) => {
                    d.want(self.wanted);
                    self.stats.told = true;
                    let mut kept = VecDeque::new();
                    for p in std::mem::take(&mut self.pending) {
                        if p.lane == ev.group {
                            self.pending_bytes -= p.message.len();
                            decode(d.as_mut(), p.ts_ms, &p.message, &p.place, sink, rejects);
                        } else {
                            kept.push_back(p);
                        }
                    }
                    self.pending = kept;
                    decode(d.as_mut(), ev.ts_ms, ev.message, &place(), sink, rejects);
                    *lane = Lane::Decoding(d);
                }
                None => {
                    self.pending_bytes += ev.message.len();
                    self.pending.push_back(Pending {
                        lane: ev.group.to_owned(),
                        ts_ms: ev.ts_ms,
                        message: ev.message.to_vec(),
                        place: place(),
                    });
                    while self.pending.len() > MAX_PENDING_EVENTS || self.pending_bytes > MAX_PENDING_BYTES {
                        let Some(p) = self.pending.pop_front() else { break };
                        self.pending_bytes -= p.message.len();
                        self.unrouted(&p.lane, 1);
                    }
                }
            },
        }
    }

    /// The end of the file: events still waiting for their format are
    /// counted as unrouted.
    pub fn finish(mut self) -> RouterStats {
        for p in std::mem::take(&mut self.pending) {
            self.unrouted(&p.lane, 1);
        }
        self.stats
    }

    fn new_lane(&mut self, group: &str, stream: &str) -> Lane {
        let format = match self.routes.iter().find(|r| !group.is_empty() && r.log_group.matches(group)) {
            Some(route) => {
                let service = route.service.as_deref().unwrap_or(&self.default_service);
                return self.lane_of(route.format.decoder(service));
            }
            None => self.fixed.or_else(|| saved::is_lambda_stream(stream.as_bytes()).then_some(Format::Lambda)),
        };
        match format {
            Some(f) => self.lane_of(f.decoder(&self.default_service)),
            None => Lane::Waiting,
        }
    }

    fn lane_of(&mut self, decoder: Option<Box<dyn Decoder>>) -> Lane {
        match decoder {
            Some(mut d) => {
                d.want(self.wanted);
                self.stats.told = true;
                Lane::Decoding(d)
            }
            // A format that needs more configuration (a field list).
            None => Lane::Unrouted,
        }
    }

    fn give_up_waiting(&mut self, lane: &str) {
        let before = self.pending.len();
        self.pending.retain(|p| p.lane != lane);
        self.pending_bytes = self.pending.iter().map(|p| p.message.len()).sum();
        self.unrouted(lane, (before - self.pending.len()) as u64);
    }

    fn unrouted(&mut self, group: &str, events: u64) {
        if events == 0 {
            return;
        }
        self.stats.unrouted_log_events += events;
        let name = if group.is_empty() { "(no log group)" } else { group };
        let name: String = name.chars().take(crate::decode::SAMPLE_BYTES).collect();
        if self.stats.unrouted_groups.len() < MAX_NAMED && !self.stats.unrouted_groups.contains(&name) {
            self.stats.unrouted_groups.push(name);
        }
    }
}

/// The format a message tells, if it tells one. A JSON object is taken for
/// NDJSON only when it has the two keys the format requires: a function's
/// own JSON output does not make its log group NDJSON.
fn tell(message: &[u8]) -> Option<Format> {
    match Format::detect(message)? {
        Format::Ndjson => {
            let has = |key: &[u8]| memchr::memmem::find(message, key).is_some();
            (has(b"\"ts\"") && has(b"\"status\"")).then_some(Format::Ndjson)
        }
        f => Some(f),
    }
}

/// One message, line by line, with its time as the hint.
fn decode(
    decoder: &mut dyn Decoder,
    ts_ms: Option<i64>,
    message: &[u8],
    place: &str,
    sink: &mut dyn EventSink,
    rejects: &mut Rejects,
) {
    decoder.set_time_hint(ts_ms);
    for line in message.split(|&b| b == b'\n') {
        feed_line(decoder, line, line.len() > MAX_LINE, sink, rejects, || place.to_owned());
    }
    decoder.set_time_hint(None);
}

#[cfg(test)]
mod tests;
