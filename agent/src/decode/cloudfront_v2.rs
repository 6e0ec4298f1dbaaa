//! CloudFront standard logging (v2): the log fields the delivery selected,
//! in one of the output formats v2 offers.
//!
//! The fields are those of the legacy standard log plus a few real-time
//! log fields: `timestamp(ms)` (epoch milliseconds), `origin-fbl` and
//! `origin-lbl` (seconds), `asn`, `c-country` and
//! `cache-behavior-path-pattern` ("Access log fields" in
//! <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html>).
//! The output format is fixed when the delivery destination is created:
//!
//! - `json`: one JSON object per line, field name to value, every value a
//!   string (`{"timestamp(ms)":"1731620046814","origin-fbl":"0.251",…}`,
//!   as in the page's CloudWatch Logs and Firehose examples).
//!   [`CloudFrontV2JsonDecoder`] reads it with one borrowed parse per line.
//! - `w3c`: a `#Fields:` header naming the fields (the page's Amazon S3
//!   example has no `#Version:` line), then one line per request;
//!   [`CloudFrontStandardDecoder`](crate::decode::cloudfront::CloudFrontStandardDecoder)
//!   reads it.
//! - `plain`: the values without a header, so the field list comes from
//!   configuration: [`CloudFrontV2PlainDecoder::with_fields`]. (The page
//!   does not show this layout.)
//! - `raw`, and `parquet` (Amazon S3 only), are not read here.
//!
//! In `plain`, `w3c` and `raw` output the values are separated by the
//! delivery's field delimiter (CloudWatch Logs' `fieldDelimiter`, a string
//! of up to five characters:
//! <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_ConfigurationTemplateDeliveryConfigValues.html>).
//! Only a tab is supported here: a delivery read by these decoders must
//! use `\t`.
//!
//! Values follow the legacy log's conventions: `-` is empty, `cs-uri-stem`
//! is URL-encoded (sometimes twice) and holds no query string, `sc-status`
//! `000` means the viewer went away before a status was sent, `time-taken`
//! and `origin-fbl` are seconds, `x-host-header` is the viewer's `Host`
//! header and `cs(Host)` the distribution's domain name
//! (<https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html>).
//! The time of a request is `timestamp(ms)`, else `timestamp` (epoch seconds
//! with milliseconds: a real-time log name, which v2 does not document but
//! is accepted), else `date` + `time`. Numbers written as JSON numbers are
//! accepted too.

use serde::Deserialize;

use crate::decode::cloudfront::{
    ColumnMap, RecordReader, cache_result, classify_user_agent, decode_path, has_percent, parse_epoch_ms,
    parse_epoch_seconds_as_ms, parse_seconds_as_ms, parse_u64,
};
use crate::decode::scalar::Scalar;
use crate::decode::{Decoder, MAX_LINE, Reject, RejectReason, parse_date, parse_time_of_day};
use crate::event::{
    CacheResult, ClientClass, EventSink, Origin, Protocol, RequestEvent, TlsVersion, Wanted, parse_status,
};

/// Decodes the `json` output of CloudFront standard logging v2.
#[derive(Debug, Clone)]
pub struct CloudFrontV2JsonDecoder {
    default_service: String,
    /// Scratch space for a URL-decoded path, and its lossy copy when the
    /// decoded bytes are not UTF-8.
    path_buf: Vec<u8>,
    lossy_path: String,
    wanted: Wanted,
}

impl CloudFrontV2JsonDecoder {
    /// `default_service` names the service of every event: the log does not say.
    pub fn new(default_service: &str) -> Self {
        CloudFrontV2JsonDecoder {
            default_service: default_service.to_owned(),
            path_buf: Vec::new(),
            lossy_path: String::new(),
            wanted: Wanted::ALL,
        }
    }
}

/// The fields this decoder reads; the others are skipped by the parser.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, rename = "timestamp(ms)")]
    timestamp_ms: Option<Scalar<'a>>,
    #[serde(borrow)]
    timestamp: Option<Scalar<'a>>,
    #[serde(borrow)]
    date: Option<Scalar<'a>>,
    #[serde(borrow)]
    time: Option<Scalar<'a>>,
    #[serde(borrow, rename = "sc-status")]
    status: Option<Scalar<'a>>,
    #[serde(borrow, rename = "x-host-header")]
    host_header: Option<Scalar<'a>>,
    #[serde(borrow, rename = "cs(Host)")]
    host: Option<Scalar<'a>>,
    #[serde(borrow, rename = "cs-uri-stem")]
    uri_stem: Option<Scalar<'a>>,
    #[serde(borrow, rename = "cs-method")]
    method: Option<Scalar<'a>>,
    #[serde(borrow, rename = "time-taken")]
    time_taken: Option<Scalar<'a>>,
    #[serde(borrow, rename = "origin-fbl")]
    origin_fbl: Option<Scalar<'a>>,
    #[serde(borrow, rename = "x-edge-location")]
    edge_location: Option<Scalar<'a>>,
    #[serde(borrow, rename = "cs(User-Agent)")]
    user_agent: Option<Scalar<'a>>,
    #[serde(borrow, rename = "x-edge-result-type")]
    result_type: Option<Scalar<'a>>,
    #[serde(borrow, rename = "sc-bytes")]
    bytes: Option<Scalar<'a>>,
    #[serde(borrow, rename = "x-edge-request-id")]
    request_id: Option<Scalar<'a>>,
    #[serde(borrow, rename = "c-ip")]
    client_ip: Option<Scalar<'a>>,
    #[serde(borrow)]
    asn: Option<Scalar<'a>>,
    #[serde(borrow, rename = "cs-protocol")]
    protocol: Option<Scalar<'a>>,
    #[serde(borrow, rename = "ssl-protocol")]
    ssl_protocol: Option<Scalar<'a>>,
}

/// What a field holds once `-` and `""` count as absent.
enum Value<'r> {
    Absent,
    Text(&'r str),
    Unsigned(u64),
    Float(f64),
    Other,
}

fn value<'r>(v: &'r Option<Scalar<'_>>) -> Value<'r> {
    match v {
        None => Value::Absent,
        Some(Scalar::Text(s)) if s.is_empty() || s == "-" => Value::Absent,
        Some(Scalar::Text(s)) => Value::Text(s),
        Some(Scalar::Unsigned(n)) => Value::Unsigned(*n),
        Some(Scalar::Float(x)) => Value::Float(*x),
        Some(_) => Value::Other,
    }
}

/// A text field: absent is `""`, a non-string is `BadField`.
fn text<'r>(v: &'r Option<Scalar<'_>>) -> Result<&'r str, RejectReason> {
    match value(v) {
        Value::Absent => Ok(""),
        Value::Text(s) => Ok(s),
        _ => Err(RejectReason::BadField),
    }
}

/// Seconds (text or number) as milliseconds.
fn seconds_as_ms(v: &Option<Scalar<'_>>) -> Result<Option<f64>, RejectReason> {
    match value(v) {
        Value::Absent => Ok(None),
        Value::Text(s) => parse_seconds_as_ms(s.as_bytes()).map(Some).ok_or(RejectReason::BadNumber),
        Value::Unsigned(n) => Ok(Some(n as f64 * 1000.0)),
        Value::Float(x) if x.is_finite() && x >= 0.0 => Ok(Some(x * 1000.0)),
        _ => Err(RejectReason::BadNumber),
    }
}

/// Epoch milliseconds from `timestamp(ms)`, `timestamp` or `date` + `time`.
fn timestamp_ms(r: &Record<'_>) -> Result<i64, RejectReason> {
    const MAX_MS: u64 = 1 << 53;
    match value(&r.timestamp_ms) {
        Value::Absent => {}
        Value::Text(s) => return parse_epoch_ms(s.as_bytes()).ok_or(RejectReason::BadTimestamp),
        Value::Unsigned(n) if n < MAX_MS => return Ok(n as i64),
        _ => return Err(RejectReason::BadTimestamp),
    }
    match value(&r.timestamp) {
        Value::Absent => {}
        Value::Text(s) => return parse_epoch_seconds_as_ms(s.as_bytes()).ok_or(RejectReason::BadTimestamp),
        Value::Unsigned(n) if n < MAX_MS / 1000 => return Ok(n as i64 * 1000),
        Value::Float(x) if x.is_finite() && x >= 0.0 && x < (MAX_MS / 1000) as f64 => {
            return Ok((x * 1000.0).round() as i64);
        }
        _ => return Err(RejectReason::BadTimestamp),
    }
    match (value(&r.date), value(&r.time)) {
        (Value::Text(d), Value::Text(t)) => {
            let day = parse_date(d.as_bytes()).ok_or(RejectReason::BadTimestamp)?;
            let secs = parse_time_of_day(t.as_bytes()).ok_or(RejectReason::BadTimestamp)?;
            Ok((day * 86_400 + secs) * 1000)
        }
        (Value::Absent, _) | (_, Value::Absent) => Err(RejectReason::MissingField),
        _ => Err(RejectReason::BadTimestamp),
    }
}

impl Decoder for CloudFrontV2JsonDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let Some(line) = crate::decode::json_object_line(line)? else {
            return Ok(());
        };
        let record: Record<'_> = serde_json::from_slice(line).map_err(|_| RejectReason::BadJson)?;

        let ts_ms = timestamp_ms(&record)?;
        let status = match value(&record.status) {
            Value::Absent if record.status.is_none() => return Err(RejectReason::MissingField.into()),
            Value::Text(s) => parse_status(s.as_bytes()),
            Value::Unsigned(n) => u16::try_from(n).ok().filter(|&n| n <= 999),
            _ => None,
        }
        .ok_or(RejectReason::BadStatus)?;

        let wanted = self.wanted;
        let bytes = match value(&record.bytes) {
            _ if !wanted.bytes => 0,
            Value::Absent => 0,
            Value::Text(s) => parse_u64(s.as_bytes()).ok_or(RejectReason::BadNumber)?,
            Value::Unsigned(n) => n,
            _ => return Err(RejectReason::BadNumber.into()),
        };
        let cache = match text(&record.result_type)? {
            v if wanted.cache && !v.is_empty() => cache_result(v.as_bytes()),
            _ => CacheResult::Unknown,
        };
        // An odd type is unknown rather than a reject: the request happened.
        let protocol = match &record.protocol {
            Some(Scalar::Text(v)) if wanted.protocol => Protocol::from_log(v.as_bytes()),
            _ => Protocol::Unknown,
        };
        // `-` is a value here (no TLS), so the field is read as written.
        let tls_version = match &record.ssl_protocol {
            Some(Scalar::Text(v)) if wanted.tls_version => TlsVersion::from_log(v.as_bytes()),
            _ => TlsVersion::Unknown,
        };
        let client = match text(&record.user_agent)? {
            ua if wanted.client && !ua.is_empty() => classify_user_agent(ua.as_bytes()),
            _ => ClientClass::Unknown,
        };
        // The requester, kept as written (the user agent URL-encoded). An
        // `asn` that is not a number is left out rather than rejecting a
        // request that still happened.
        let (client_addr, user_agent, asn) = if wanted.requester {
            let asn = match value(&record.asn) {
                Value::Text(s) => parse_u64(s.as_bytes()),
                Value::Unsigned(n) => Some(n),
                _ => None,
            };
            // An address of the wrong type is left out too.
            (text(&record.client_ip).unwrap_or(""), text(&record.user_agent)?, asn.and_then(|n| u32::try_from(n).ok()))
        } else {
            ("", "", None)
        };
        let host = match text(&record.host_header)? {
            "" => text(&record.host)?,
            h => h,
        };
        let stem = text(&record.uri_stem)?;
        let path = if has_percent(stem.as_bytes()) {
            decode_path(stem.as_bytes(), &mut self.path_buf, &mut self.lossy_path)
        } else {
            stem
        };

        let event = RequestEvent {
            ts_ms,
            origin: Some(Origin::CloudFront),
            service: &self.default_service,
            host,
            path,
            method: text(&record.method)?,
            status,
            latency_ms: seconds_as_ms(&record.time_taken)?,
            upstream_latency_ms: seconds_as_ms(&record.origin_fbl)?,
            edge_location: text(&record.edge_location)?,
            client,
            cache,
            protocol,
            tls_version,
            bytes,
            request_id: if wanted.request_id { text(&record.request_id)? } else { "" },
            client_addr,
            user_agent,
            asn,
            ..RequestEvent::default()
        };
        sink.event(&event);
        Ok(())
    }

    fn want(&mut self, fields: Wanted) {
        self.wanted = fields;
    }
}

/// Decodes the `plain` output of CloudFront standard logging v2: the
/// selected fields' values separated by tabs, no header.
#[derive(Debug, Clone)]
pub struct CloudFrontV2PlainDecoder {
    columns: ColumnMap,
    reader: RecordReader,
}

impl CloudFrontV2PlainDecoder {
    /// `fields` are the delivery's field names in order (standard-log names
    /// such as `cs(Host)`, and the v2 additions). Names the decoder has no use
    /// for are skipped. The list must include `sc-status` and a time:
    /// `timestamp(ms)`, `timestamp`, or `date` and `time`.
    pub fn with_fields(default_service: &str, fields: &[&str]) -> Result<Self, String> {
        let has = |name: &str| fields.iter().any(|f| f.eq_ignore_ascii_case(name));
        if !has("sc-status") {
            return Err("CloudFront v2 plain log fields must include `sc-status`".to_owned());
        }
        if !(has("timestamp(ms)") || has("timestamp") || (has("date") && has("time"))) {
            return Err(
                "CloudFront v2 plain log fields must include `timestamp(ms)`, `timestamp`, or `date` and `time`"
                    .to_owned(),
            );
        }
        Ok(CloudFrontV2PlainDecoder {
            columns: ColumnMap::from_names(fields.iter().map(|f| f.as_bytes())),
            reader: RecordReader::new(default_service, Origin::CloudFront),
        })
    }
}

impl Decoder for CloudFrontV2PlainDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        if line.len() > MAX_LINE {
            return Err(RejectReason::TooLong.into());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.reader.read(&self.columns, line, sink)
    }

    fn want(&mut self, fields: Wanted) {
        self.reader.wanted = fields;
    }
}

#[cfg(test)]
mod tests;
