//! Generic webhook: the notification itself as JSON, signed when a secret
//! is set, for receivers we do not speak natively.
//!
//! The body is the [`Notification`] with a `"version": "1"` field first
//! (`docs/notifications.md` gives the schema). When a secret is set the
//! request carries `x-slo-agent-signature: sha256=<hex>`, the HMAC-SHA256
//! with the secret as key of `<x-slo-agent-timestamp>.<body>`: the signed
//! timestamp lets a receiver refuse old requests, the notification id
//! (also a header) lets it drop a redelivery.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{HttpRequest, Notification, text};
use crate::secret::Secret;

/// The body's schema version; bumped only when a field changes meaning or
/// goes away (new fields may appear in any version).
pub const VERSION: &str = "1";

#[derive(Serialize)]
struct Envelope<'a> {
    version: &'static str,
    #[serde(flatten)]
    notification: &'a Notification,
}

/// `POST url` with the notification as JSON.
pub fn request(url: &str, secret: Option<&Secret>, n: &Notification) -> HttpRequest {
    // A Notification has string keys and no maps keyed by non-strings: it
    // always serializes (non-finite floats become null).
    let body = serde_json::to_vec(&Envelope { version: VERSION, notification: n }).expect("a notification serializes");
    let timestamp = n.created_ms.div_euclid(1000).to_string();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-slo-agent-notification-id".to_string(), n.id.clone()),
        ("x-slo-agent-timestamp".to_string(), timestamp.clone()),
    ];
    if let Some(secret) = secret {
        headers.push(("x-slo-agent-signature".to_string(), signature(secret, &timestamp, &body)));
    }
    HttpRequest { method: "POST", url: url.to_string(), headers, body }
}

/// `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` keyed with
/// the secret.
pub fn signature(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", text::hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Status;
    use crate::notify::fixtures::{assert_golden, sample_notification};

    #[test]
    fn signature_matches_a_known_answer() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"s3cret", b"1714564860.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(&Secret::new("s3cret".into()), "1714564860", b"{}"),
            "sha256=29eec257c5241b7018c2925b6adf9dc39faeab1a10d922a609f30609c7257935"
        );
    }

    #[test]
    fn signed_request() {
        let n = sample_notification(Status::Firing);
        let secret = Secret::new("s3cret".into());
        let r = request("https://hooks.example.com/slo", Some(&secret), &n);
        assert_eq!((r.method, r.url.as_str()), ("POST", "https://hooks.example.com/slo"));
        let sig = signature(&secret, "1714564860", &r.body);
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("x-slo-agent-notification-id".to_string(), "oncall/42".to_string()),
                ("x-slo-agent-timestamp".to_string(), "1714564860".to_string()),
                ("x-slo-agent-signature".to_string(), sig),
            ]
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_golden("webhook-firing", &v);
        // The body is the notification plus its version, nothing lost.
        let mut back = v.clone();
        assert_eq!(back.as_object_mut().unwrap().shift_remove("version"), Some("1".into()));
        assert_eq!(serde_json::from_value::<Notification>(back).unwrap(), n);
    }

    #[test]
    fn unsigned_without_a_secret() {
        let n = sample_notification(Status::Resolved);
        let r = request("http://127.0.0.1:9000/", None, &n);
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["content-type", "x-slo-agent-notification-id", "x-slo-agent-timestamp"]);
        assert_golden("webhook-resolved", &serde_json::from_slice(&r.body).unwrap());
    }
}
