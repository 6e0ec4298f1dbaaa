//! Time formatting shared by reports, the API, notifications and logs.
//!
//! **Architecture invariant:** a leaf: this module imports nothing of the crate.

/// RFC 3339 in UTC with second precision (milliseconds when not whole).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) if ms % 1000 == 0 => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// A UTC time for file names: `20261204T201530Z` (seconds; no `:`).
pub fn compact(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y%m%dT%H%M%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time; the error says what a
/// valid one looks like.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-20T12:00:00Z: {e}"))
}
