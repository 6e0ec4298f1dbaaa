//! CloudWatch Logs subscription payloads, as a subscription filter delivers
//! them through Firehose or Kinesis: gzip-compressed JSON (possibly several
//! gzip members, one after another), usually base64-encoded.
//!
//! ```json
//! {"messageType": "DATA_MESSAGE", "owner": "123456789012",
//!  "logGroup": "/aws/lambda/checkout", "logStream": "2026/11/20/[$LATEST]abc",
//!  "subscriptionFilters": ["slo-agent"],
//!  "logEvents": [{"id": "…", "timestamp": 1795176000123, "message": "REPORT RequestId: …"}]}
//! ```
//!
//! A `DATA_MESSAGE`'s log group picks the decoder for its log events (the
//! first matching route, e.g. `/aws/lambda/*` → `lambda`); each event's
//! message goes to that decoder with the event's timestamp as its time hint
//! (Lambda `REPORT` lines carry no time of their own). `CONTROL_MESSAGE`s
//! (the subscription's own health checks) are counted and dropped. Log
//! events of groups no route matches are counted as unrouted, never lost
//! silently; each such group is named once ([`PayloadStats::new_unrouted_groups`])
//! so the caller can say which groups a route is missing for.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::decode::{Decoder, Format, GunzipError, Reject, RejectReason, Rejects, feed_line, gunzip_bounded};
use crate::event::{EventSink, Wanted};
use crate::spec::glob::Glob;

/// Decompressed size above which a payload is refused: subscription
/// deliveries are at most a few MiB, so more is corruption or a zip bomb.
pub const MAX_DECOMPRESSED: u64 = 64 << 20;
/// Decoders kept per log group (each holds per-stream state); beyond this
/// the least recently created one is dropped.
const MAX_GROUPS: usize = 256;
/// Unrouted log groups remembered as already named; when full, the memory
/// is cleared and groups are named again (a rate limit, not a leak).
const MAX_NAMED_UNROUTED: usize = 1024;
/// Unrouted log groups named per payload; more are only counted.
const MAX_NEW_UNROUTED_PER_PAYLOAD: usize = 8;

/// Which decoder reads the log events of which log groups.
#[derive(Debug, Clone)]
pub struct LogGroupRoute {
    pub log_group: Glob,
    pub format: Format,
    /// Service for the events; default: the decoder's default service.
    pub service: Option<String>,
}

/// What one payload held, besides the events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadStats {
    pub messages: u64,
    pub control_messages: u64,
    pub log_events: u64,
    /// Log events of groups no route matches.
    pub unrouted_log_events: u64,
    /// Unrouted log groups this decoder had not named before (at most a
    /// few per payload), as the payload spelled them: untrusted text.
    pub new_unrouted_groups: Vec<String>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "messageType", borrow)]
    message_type: std::borrow::Cow<'a, str>,
    #[serde(rename = "logGroup", default, borrow)]
    log_group: std::borrow::Cow<'a, str>,
    #[serde(rename = "logEvents", default, borrow)]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    timestamp: i64,
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

pub struct SubscriptionDecoder {
    default_service: String,
    routes: Vec<LogGroupRoute>,
    decoders: HashMap<String, Box<dyn Decoder>>,
    order: Vec<String>,
    /// Unrouted groups already named in a [`PayloadStats`].
    named_unrouted: std::collections::HashSet<String>,
    wanted: Wanted,
    scratch: Vec<u8>,
    max_decompressed: u64,
}

impl SubscriptionDecoder {
    pub fn new(default_service: &str, routes: Vec<LogGroupRoute>) -> SubscriptionDecoder {
        SubscriptionDecoder {
            default_service: default_service.to_string(),
            routes,
            decoders: HashMap::new(),
            order: Vec::new(),
            named_unrouted: std::collections::HashSet::new(),
            wanted: Wanted::ALL,
            scratch: Vec::new(),
            max_decompressed: MAX_DECOMPRESSED,
        }
    }

    /// Refuse payloads that decompress to more than `bytes`.
    pub fn with_limit(mut self, bytes: u64) -> SubscriptionDecoder {
        self.max_decompressed = bytes;
        self
    }

    /// The routes most stacks need: Lambda log groups are Lambda logs.
    pub fn default_routes() -> Vec<LogGroupRoute> {
        vec![LogGroupRoute {
            log_group: Glob::new("/aws/lambda/*").expect("static glob"),
            format: Format::Lambda,
            service: None,
        }]
    }

    pub fn want(&mut self, wanted: Wanted) {
        self.wanted = wanted;
        for d in self.decoders.values_mut() {
            d.want(wanted);
        }
    }

    /// Decode one delivered record: base64 text, raw gzip, or plain JSON.
    /// Undecodable log lines are counted in `rejects` (sampled with
    /// `place`); a payload that cannot be read at all is an `Err`.
    pub fn decode_payload(
        &mut self,
        payload: &[u8],
        sink: &mut dyn EventSink,
        rejects: &mut Rejects,
        place: &str,
    ) -> Result<PayloadStats, Reject> {
        let json = self.unwrap(payload)?;
        let mut stats = PayloadStats::default();
        let mut stream = serde_json::Deserializer::from_slice(&json).into_iter::<Message<'_>>();
        for msg in &mut stream {
            let msg = msg.map_err(|_| Reject::from(RejectReason::BadJson))?;
            stats.messages += 1;
            match msg.message_type.as_ref() {
                "CONTROL_MESSAGE" => stats.control_messages += 1,
                "DATA_MESSAGE" => self.data_message(&msg, sink, rejects, place, &mut stats),
                _ => return Err(RejectReason::BadField.into()),
            }
        }
        Ok(stats)
    }

    fn data_message(
        &mut self,
        msg: &Message<'_>,
        sink: &mut dyn EventSink,
        rejects: &mut Rejects,
        place: &str,
        stats: &mut PayloadStats,
    ) {
        stats.log_events += msg.log_events.len() as u64;
        let group = msg.log_group.as_ref();
        let Some(route) = self.routes.iter().find(|r| r.log_group.matches(group)) else {
            self.unrouted(group, msg.log_events.len() as u64, stats);
            return;
        };
        let (format, service) = (route.format, route.service.clone().unwrap_or_else(|| self.default_service.clone()));
        if !self.decoders.contains_key(group) {
            let Some(mut d) = format.decoder(&service) else {
                // A format that needs more configuration (a field list)
                // cannot be routed here; its events count as unrouted.
                self.unrouted(group, msg.log_events.len() as u64, stats);
                return;
            };
            d.want(self.wanted);
            if self.order.len() >= MAX_GROUPS {
                let oldest = self.order.remove(0);
                self.decoders.remove(&oldest);
            }
            self.order.push(group.to_string());
            self.decoders.insert(group.to_string(), d);
        }
        let decoder = self.decoders.get_mut(group).expect("inserted above");
        for ev in &msg.log_events {
            decoder.set_time_hint(Some(ev.timestamp));
            for line in ev.message.as_bytes().split(|&b| b == b'\n') {
                let overlong = line.len() > crate::decode::MAX_LINE;
                let place = || format!("{place} {group}");
                feed_line(decoder.as_mut(), line, overlong, sink, rejects, place);
            }
        }
        decoder.set_time_hint(None);
    }

    /// Count `events` of `group` as unrouted, and name the group if it is new.
    fn unrouted(&mut self, group: &str, events: u64, stats: &mut PayloadStats) {
        stats.unrouted_log_events += events;
        if events == 0
            || stats.new_unrouted_groups.len() >= MAX_NEW_UNROUTED_PER_PAYLOAD
            || self.named_unrouted.contains(group)
        {
            return;
        }
        if self.named_unrouted.len() >= MAX_NAMED_UNROUTED {
            self.named_unrouted.clear();
        }
        let name: String = group.chars().take(crate::decode::SAMPLE_BYTES).collect();
        self.named_unrouted.insert(group.to_string());
        stats.new_unrouted_groups.push(name);
    }

    /// base64 → gzip → JSON, bounded.
    fn unwrap(&mut self, payload: &[u8]) -> Result<Vec<u8>, Reject> {
        let trimmed = payload.trim_ascii();
        if trimmed.first() == Some(&b'{') {
            return Ok(trimmed.to_vec());
        }
        let compressed: &[u8] = if trimmed.starts_with(&[0x1f, 0x8b]) {
            trimmed
        } else {
            self.scratch.clear();
            base64::engine::general_purpose::STANDARD
                .decode_vec(trimmed, &mut self.scratch)
                .map_err(|_| Reject::from(RejectReason::BadEncoding))?;
            if !self.scratch.starts_with(&[0x1f, 0x8b]) {
                return Err(RejectReason::BadEncoding.into());
            }
            &self.scratch
        };
        gunzip_bounded(compressed, self.max_decompressed).map_err(|e| match e {
            GunzipError::Corrupt(_) => Reject::from(RejectReason::BadEncoding),
            GunzipError::TooLarge => Reject::from(RejectReason::TooLong),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::event::{Origin, Outcome, RequestEvent};

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn b64(bytes: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.encode(bytes).into_bytes()
    }

    const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/checkout","logStream":"2026/11/20/[$LATEST]abc","subscriptionFilters":["slo"],"logEvents":[
        {"id":"1","timestamp":1795176000123,"message":"START RequestId: a1 Version: $LATEST\n"},
        {"id":"2","timestamp":1795176000456,"message":"REPORT RequestId: a1\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\t\n"},
        {"id":"3","timestamp":1795176001000,"message":"REPORT RequestId: a2\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tStatus: timeout\n"},
        {"id":"4","timestamp":1795176001001,"message":"REPORT RequestId: broken\tDuration: x ms\n"}]}"#;
    const CONTROL: &str = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1795176000000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
    const OTHER: &str = r#"{"messageType":"DATA_MESSAGE","logGroup":"/custom/app","logEvents":[{"id":"9","timestamp":1795176000000,"message":"hello"}]}"#;

    type Seen = Vec<(i64, f64, Outcome, Origin)>;

    fn run(payload: &[u8]) -> (Result<PayloadStats, Reject>, Seen, Rejects) {
        let mut d = SubscriptionDecoder::new("fallback", SubscriptionDecoder::default_routes()).with_limit(1 << 20);
        let mut events = Vec::new();
        let mut rejects = Rejects::default();
        let mut sink = |e: &RequestEvent<'_>| {
            events.push((e.ts_ms, e.latency_ms.unwrap_or(-1.0), e.outcome, e.origin.unwrap()));
        };
        let r = d.decode_payload(payload, &mut sink, &mut rejects, "firehose:req-1");
        (r, events, rejects)
    }

    #[test]
    fn data_messages_become_events_with_the_log_event_time() {
        // Two gzip members back to back (Firehose concatenates records).
        let mut payload = gzip(DATA.as_bytes());
        payload.extend(gzip(format!("{CONTROL}\n{OTHER}").as_bytes()));
        let (r, events, rejects) = run(&b64(&payload));
        let stats = r.unwrap();
        assert_eq!(
            stats,
            PayloadStats {
                messages: 3,
                control_messages: 1,
                log_events: 5,
                unrouted_log_events: 1,
                new_unrouted_groups: vec!["/custom/app".into()],
            }
        );
        assert_eq!(
            events,
            vec![
                (1795176000456, 12.5, Outcome::Success, Origin::Lambda),
                (1795176001000, 3000.0, Outcome::Timeout, Origin::Lambda),
            ]
        );
        assert_eq!(rejects.total(), 1, "the broken REPORT line is counted");
        let sample = &rejects.by_reason.values().next().unwrap().samples[0];
        assert_eq!(sample.0, "firehose:req-1 /aws/lambda/checkout");
    }

    #[test]
    fn an_unrouted_group_is_named_once_and_counted_every_time() {
        let mut d = SubscriptionDecoder::new("fallback", SubscriptionDecoder::default_routes());
        let mut rejects = Rejects::default();
        let mut sink = |_: &RequestEvent<'_>| {};
        let two = format!("{OTHER}\n{OTHER}");
        let first = d.decode_payload(two.as_bytes(), &mut sink, &mut rejects, "p1").unwrap();
        assert_eq!((first.unrouted_log_events, first.new_unrouted_groups), (2, vec!["/custom/app".to_string()]));
        let again = d.decode_payload(OTHER.as_bytes(), &mut sink, &mut rejects, "p2").unwrap();
        assert_eq!((again.unrouted_log_events, again.new_unrouted_groups), (1, vec![]));
    }

    #[test]
    fn raw_gzip_and_plain_json_are_accepted_too() {
        let (r, events, _) = run(&gzip(DATA.as_bytes()));
        assert_eq!(r.unwrap().messages, 1);
        assert_eq!(events.len(), 2);
        let (r, events, _) = run(DATA.as_bytes());
        assert_eq!(r.unwrap().messages, 1);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn bad_payloads_are_rejected_with_a_reason() {
        assert_eq!(run(b"!!!not base64!!!").0.unwrap_err().reason, RejectReason::BadEncoding);
        assert_eq!(run(&b64(b"not gzip")).0.unwrap_err().reason, RejectReason::BadEncoding);
        assert_eq!(run(&b64(&gzip(b"{\"messageType\": 3}"))).0.unwrap_err().reason, RejectReason::BadJson);
        assert_eq!(run(&b64(&gzip(b"{\"messageType\":\"NEW\"}"))).0.unwrap_err().reason, RejectReason::BadField);
        // A gzip bomb stops at the bound instead of filling memory.
        let zeros = vec![b' '; (1 << 20) + 1024];
        assert_eq!(run(&gzip(&zeros)).0.unwrap_err().reason, RejectReason::TooLong);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = run(&bytes);
            let _ = run(&b64(&bytes));
            let _ = run(&gzip(&bytes));
        }
    }
}
