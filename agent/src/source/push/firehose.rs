//! The Amazon Data Firehose HTTP endpoint delivery protocol.
//!
//! Firehose POSTs a JSON body (optionally gzip-compressed, announced by
//! `Content-Encoding: gzip`) with the headers `X-Amz-Firehose-Request-Id`
//! and, when the delivery stream is configured with one,
//! `X-Amz-Firehose-Access-Key`:
//!
//! ```json
//! {"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
//!  "timestamp": 1578090901599,
//!  "records": [{"data": "aGVsbG8="}, {"data": "aGVsbG8gd29ybGQ="}]}
//! ```
//!
//! The endpoint answers with the same request id and its own timestamp, plus
//! `errorMessage` when the status is not 200:
//!
//! ```json
//! {"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1578090903599}
//! ```
//!
//! Firehose retries a delivery that was not answered with 200, with the same
//! request id, for up to its configured retry duration (at most two hours).

use base64::Engine as _;
use serde::Deserialize;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "requestId", borrow, default)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    records: Vec<Record<'a>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
}

/// A parsed delivery request: its id and its records with base64 undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub request_id: Option<String>,
    pub records: Vec<Vec<u8>>,
}

/// Parse a (decompressed) request body. At most `max_decoded` bytes of
/// record data are accepted in total. Errors say what is wrong, and where.
pub fn parse_request(body: &[u8], max_decoded: usize) -> Result<Request, String> {
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not a Firehose delivery request ({{\"requestId\", \"timestamp\", \"records\": [{{\"data\"}}]}}): {e}"
        )
    })?;
    let mut records = Vec::with_capacity(env.records.len());
    let mut total = 0usize;
    for (i, r) in env.records.iter().enumerate() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(r.data.as_bytes())
            .map_err(|e| format!("record {} (of {}): `data` is not base64: {e}", i + 1, env.records.len()))?;
        total += data.len();
        if total > max_decoded {
            return Err(format!("the records decode to more than {max_decoded} bytes"));
        }
        records.push(data);
    }
    Ok(Request { request_id: env.request_id.map(|c| c.into_owned()), records })
}

/// The response body Firehose expects.
pub fn response(request_id: &str, timestamp_ms: i64, error: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({ "requestId": request_id, "timestamp": timestamp_ms });
    if let Some(e) = error {
        v["errorMessage"] = serde_json::Value::String(e.to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_request_parses() {
        let r = parse_request(
            br#"{"requestId":"ed4acda5-034f-9f42-bba1-f29aea6d7d8f","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":"aGVsbG8gd29ybGQ="}]}"#,
            1 << 20,
        )
        .unwrap();
        assert_eq!(r.request_id.as_deref(), Some("ed4acda5-034f-9f42-bba1-f29aea6d7d8f"));
        assert_eq!(r.records, vec![b"hello".to_vec(), b"hello world".to_vec()]);
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let e = parse_request(b"{\"records\": 5}", 100).unwrap_err();
        assert!(e.contains("not a Firehose delivery request"), "{e}");
        assert!(e.contains("line 1 column"), "{e}");
        let e = parse_request(br#"{"records":[{"data":"aGVsbG8="},{"data":"!!"}]}"#, 100).unwrap_err();
        assert!(e.starts_with("record 2 (of 2): `data` is not base64"), "{e}");
        let e = parse_request(br#"{"records":[{"data":"aGVsbG8="},{"data":"aGVsbG8="}]}"#, 8).unwrap_err();
        assert!(e.contains("more than 8 bytes"), "{e}");
    }

    #[test]
    fn responses_carry_the_request_id() {
        assert_eq!(response("r1", 5, None).to_string(), r#"{"requestId":"r1","timestamp":5}"#);
        assert_eq!(
            response("r1", 5, Some("bad")).to_string(),
            r#"{"requestId":"r1","timestamp":5,"errorMessage":"bad"}"#
        );
    }
}
