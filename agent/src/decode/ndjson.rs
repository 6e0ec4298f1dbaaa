//! NDJSON: one JSON object per line, one request per object.
//!
//! ```json
//! {"ts":"2024-05-01T12:00:00.250Z","service":"checkout","host":"shop.example.com",
//!  "path":"/api/cart?id=7","method":"POST","status":201,"latency_ms":42.5}
//! ```
//!
//! | key | type | |
//! | --- | --- | --- |
//! | `ts` | RFC 3339 string, or epoch milliseconds | required |
//! | `status` | integer 0–999, or a string of digits | required |
//! | `service` | string | the source's default service when missing, null or empty |
//! | `host`, `method`, `edge_location`, `request_id`, `trace_id` | string | |
//! | `path` | string | the query string (from `?`) is dropped |
//! | `latency_ms`, `upstream_latency_ms` | non-negative number | |
//! | `bytes` | non-negative integer | |
//! | `client` | `"browser"`, `"crawler"` or `"other"` | other strings: unknown |
//! | `cache` | `"hit"`, `"miss"` or `"error"` | other strings: unknown |
//! | `client_addr` (or `client_ip`), `user_agent` | string | read only when the requester is wanted; `client_addr` first |
//! | `asn` | integer 0–4294967295, or a string of digits | read only when the requester is wanted; another value (like a wrong-typed address or user agent) is left out, the line kept |
//!
//! Other keys are ignored; `null` is the same as a missing key. A value of the
//! wrong type rejects the line: `BadTimestamp` for `ts`, `BadStatus` for
//! `status`, `BadNumber` for the numbers, `BadField` for the strings. A line
//! that is not one JSON object (including an object with a repeated key) is
//! `BadJson`.
//!
//! Each line is parsed once, into a struct that borrows its strings from the
//! line; only strings with JSON escapes in them are copied.

use serde::Deserialize;

use crate::decode::scalar::Scalar;
use crate::decode::{Decoder, Reject, RejectReason, parse_date, parse_time_of_day};
use crate::event::{CacheResult, ClientClass, EventSink, Origin, RequestEvent, Wanted, parse_status};

/// Decodes newline-delimited JSON request records.
#[derive(Debug, Clone)]
pub struct NdjsonDecoder {
    default_service: String,
    /// Only `requester` is looked at: every other field costs nothing more
    /// to fill than to skip.
    wanted: Wanted,
}

impl NdjsonDecoder {
    /// `default_service` names the service of records that carry none.
    pub fn new(default_service: &str) -> Self {
        NdjsonDecoder { default_service: default_service.to_owned(), wanted: Wanted::ALL }
    }
}

/// The keys this decoder reads. Every value is taken as whatever JSON type it
/// has, so that a wrong type can be reported against its key instead of
/// failing the whole parse.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    ts: Option<Scalar<'a>>,
    #[serde(borrow)]
    service: Option<Scalar<'a>>,
    #[serde(borrow)]
    host: Option<Scalar<'a>>,
    #[serde(borrow)]
    path: Option<Scalar<'a>>,
    #[serde(borrow)]
    method: Option<Scalar<'a>>,
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
    #[serde(borrow)]
    latency_ms: Option<Scalar<'a>>,
    #[serde(borrow)]
    upstream_latency_ms: Option<Scalar<'a>>,
    #[serde(borrow)]
    edge_location: Option<Scalar<'a>>,
    #[serde(borrow)]
    bytes: Option<Scalar<'a>>,
    #[serde(borrow)]
    request_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    trace_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    client: Option<Scalar<'a>>,
    #[serde(borrow)]
    cache: Option<Scalar<'a>>,
    #[serde(borrow)]
    client_addr: Option<Scalar<'a>>,
    #[serde(borrow)]
    client_ip: Option<Scalar<'a>>,
    #[serde(borrow)]
    user_agent: Option<Scalar<'a>>,
    #[serde(borrow)]
    asn: Option<Scalar<'a>>,
}

impl Decoder for NdjsonDecoder {
    fn decode_line(&mut self, line: &[u8], sink: &mut dyn EventSink) -> Result<(), Reject> {
        let Some(line) = crate::decode::json_object_line(line)? else {
            return Ok(());
        };
        let record: Record<'_> = serde_json::from_slice(line).map_err(|_| RejectReason::BadJson)?;

        let ts_ms = match &record.ts {
            Some(ts) => timestamp_ms(ts).ok_or(RejectReason::BadTimestamp)?,
            None => return Err(RejectReason::MissingField.into()),
        };
        let status = match &record.status {
            Some(Scalar::Unsigned(n)) => u16::try_from(*n).ok().filter(|&n| n <= 999),
            Some(Scalar::Text(s)) => parse_status(s.as_bytes()),
            Some(_) => None,
            None => return Err(RejectReason::MissingField.into()),
        }
        .ok_or(RejectReason::BadStatus)?;

        let service = text(&record.service)?.filter(|s| !s.is_empty()).unwrap_or(&self.default_service);
        let path = text(&record.path)?.unwrap_or("");
        let path = path.split_once('?').map_or(path, |(p, _query)| p);
        let (client_addr, user_agent, asn) = if self.wanted.requester {
            // Who asked is evidence, not the request: a value of the wrong
            // type is left out rather than rejecting the line.
            let addr = match text(&record.client_addr) {
                Ok(Some(a)) if !a.is_empty() => a,
                _ => text(&record.client_ip).ok().flatten().unwrap_or(""),
            };
            let ua = text(&record.user_agent).ok().flatten().unwrap_or("");
            (addr, ua, asn(&record.asn).ok().flatten())
        } else {
            ("", "", None)
        };

        let event = RequestEvent {
            ts_ms,
            origin: Some(Origin::Ndjson),
            service,
            host: text(&record.host)?.unwrap_or(""),
            path,
            method: text(&record.method)?.unwrap_or(""),
            status,
            latency_ms: millis(&record.latency_ms)?,
            upstream_latency_ms: millis(&record.upstream_latency_ms)?,
            edge_location: text(&record.edge_location)?.unwrap_or(""),
            client: match text(&record.client)? {
                Some(c) if c.eq_ignore_ascii_case("browser") => ClientClass::Browser,
                Some(c) if c.eq_ignore_ascii_case("crawler") => ClientClass::Crawler,
                Some(c) if c.eq_ignore_ascii_case("other") => ClientClass::Other,
                _ => ClientClass::Unknown,
            },
            cache: match text(&record.cache)? {
                Some(c) if c.eq_ignore_ascii_case("hit") => CacheResult::Hit,
                Some(c) if c.eq_ignore_ascii_case("miss") => CacheResult::Miss,
                Some(c) if c.eq_ignore_ascii_case("error") => CacheResult::Error,
                _ => CacheResult::Unknown,
            },
            bytes: byte_count(&record.bytes)?,
            request_id: text(&record.request_id)?.unwrap_or(""),
            trace_id: text(&record.trace_id)?.unwrap_or(""),
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

/// An autonomous system number: a JSON number or a string of digits that
/// fits in 32 bits.
fn asn(v: &Option<Scalar<'_>>) -> Result<Option<u32>, RejectReason> {
    let n = match v {
        None => return Ok(None),
        Some(Scalar::Unsigned(n)) => Some(*n),
        Some(Scalar::Text(s)) => crate::decode::cloudfront::parse_u64(s.as_bytes()),
        Some(_) => None,
    };
    n.and_then(|n| u32::try_from(n).ok()).map(Some).ok_or(RejectReason::BadNumber)
}

fn text<'r>(v: &'r Option<Scalar<'_>>) -> Result<Option<&'r str>, RejectReason> {
    match v {
        None => Ok(None),
        Some(Scalar::Text(s)) => Ok(Some(s)),
        Some(_) => Err(RejectReason::BadField),
    }
}

/// A non-negative, finite number of milliseconds.
fn millis(v: &Option<Scalar<'_>>) -> Result<Option<f64>, RejectReason> {
    let ms = match v {
        None => return Ok(None),
        Some(Scalar::Unsigned(n)) => *n as f64,
        Some(Scalar::Float(x)) if x.is_finite() && *x >= 0.0 => *x,
        Some(_) => return Err(RejectReason::BadNumber),
    };
    Ok(Some(ms))
}

fn byte_count(v: &Option<Scalar<'_>>) -> Result<u64, RejectReason> {
    match v {
        None => Ok(0),
        Some(Scalar::Unsigned(n)) => Ok(*n),
        // Some producers write every number as a float.
        Some(Scalar::Float(x)) if *x >= 0.0 && x.fract() == 0.0 && *x < u64::MAX as f64 => Ok(*x as u64),
        Some(_) => Err(RejectReason::BadNumber),
    }
}

/// Epoch milliseconds from a `ts` value: a number is taken as milliseconds
/// (a fractional part is dropped toward the past), a string as RFC 3339.
fn timestamp_ms(v: &Scalar<'_>) -> Option<i64> {
    match v {
        Scalar::Unsigned(n) => i64::try_from(*n).ok(),
        Scalar::Signed(n) => Some(*n),
        Scalar::Float(x) if x.is_finite() && x.abs() < 9.0e18 => Some(x.floor() as i64),
        Scalar::Text(s) => rfc3339_ms(s.as_bytes()).or_else(|| {
            let ts: jiff::Timestamp = std::str::from_utf8(s.as_bytes()).ok()?.parse().ok()?;
            Some(ts.as_millisecond())
        }),
        _ => None,
    }
}

/// The common shapes of RFC 3339, `2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.123456Z`, `2024-05-01T14:00:00+02:00`, without the
/// general parser. `None` for anything else (including instants before 1970,
/// where truncating the fraction would need care), which then goes to jiff.
#[inline]
pub(crate) fn rfc3339_ms(s: &[u8]) -> Option<i64> {
    let date = parse_date(s.get(..10)?)?;
    if !matches!(s.get(10)?, b'T' | b't') {
        return None;
    }
    let secs = parse_time_of_day(s.get(11..19)?)?;
    let mut rest = &s[19..];
    let mut frac_ms = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        for i in 0..3 {
            frac_ms = frac_ms * 10 + frac.get(i).filter(|_| i < n).map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h0, h1, b':', m0, m1] => {
            let hm = parse_time_of_day(&[*h0, *h1, b':', *m0, *m1, b':', b'0', b'0'])?;
            if *sign == b'+' { hm } else { -hm }
        }
        _ => return None,
    };
    let instant = (date * 86_400 + secs - offset_secs) * 1000 + frac_ms;
    (instant >= 0).then_some(instant)
}

#[cfg(test)]
mod tests;
