//! Test support: a tiny protobuf encoder, and the translation of an OTLP/JSON
//! traces request into the protobuf bytes of the same request, so tests and
//! benchmarks can feed both decoders one request.
//!
//! Self-contained on purpose (only `serde_json`): the decode benchmark
//! includes this file too (`benches/common/mod.rs`).

use serde_json::Value;

/// A protobuf message being written, fields in the order they are added.
#[derive(Debug, Default, Clone)]
pub struct Message(pub Vec<u8>);

impl Message {
    pub fn varint_raw(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u8) {
        self.varint_raw((u64::from(field) << 3) | u64::from(wire_type));
    }

    pub fn varint(&mut self, field: u32, v: u64) -> &mut Self {
        self.tag(field, 0);
        self.varint_raw(v);
        self
    }

    pub fn fixed64(&mut self, field: u32, v: u64) -> &mut Self {
        self.tag(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn fixed32(&mut self, field: u32, v: u32) -> &mut Self {
        self.tag(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.tag(field, 2);
        self.varint_raw(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

fn uint64(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("a decimal uint64"),
        v => v.as_u64().expect("a uint64"),
    }
}

fn int64(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().expect("a decimal int64"),
        v => v.as_i64().expect("an int64"),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex id")).collect()
}

fn each<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// `AnyValue` (common/v1): string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7.
fn any_value(v: &Value) -> Message {
    let mut m = Message::default();
    if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        m.bytes(1, s.as_bytes());
    } else if let Some(b) = v.get("boolValue").and_then(Value::as_bool) {
        m.varint(2, u64::from(b));
    } else if let Some(i) = v.get("intValue") {
        m.varint(3, int64(i) as u64);
    } else if let Some(d) = v.get("doubleValue").and_then(Value::as_f64) {
        m.fixed64(4, d.to_bits());
    } else if let Some(a) = v.get("arrayValue") {
        let mut array = Message::default();
        for item in each(a, "values") {
            array.message(1, &any_value(item));
        }
        m.message(5, &array);
    } else if let Some(kv) = v.get("kvlistValue") {
        let mut list = Message::default();
        for item in each(kv, "values") {
            list.message(1, &key_value(item));
        }
        m.message(6, &list);
    } else if let Some(b) = v.get("bytesValue").and_then(Value::as_str) {
        m.bytes(7, b.as_bytes());
    }
    m
}

/// `KeyValue`: key 1, value 2.
fn key_value(kv: &Value) -> Message {
    let mut m = Message::default();
    m.bytes(1, kv["key"].as_str().expect("a key").as_bytes());
    if let Some(v) = kv.get("value") {
        m.message(2, &any_value(v));
    }
    m
}

/// `Span` (trace/v1): trace_id 1, span_id 2, parent_span_id 4, flags 16
/// (fixed32), name 5, kind 6, start 7 and end 8 (fixed64), attributes 9,
/// status 15 (message 2, code 3).
fn span(s: &Value) -> Message {
    let mut m = Message::default();
    if let Some(id) = s.get("traceId").and_then(Value::as_str) {
        m.bytes(1, &unhex(id));
    }
    if let Some(id) = s.get("spanId").and_then(Value::as_str) {
        m.bytes(2, &unhex(id));
    }
    if let Some(id) = s.get("parentSpanId").and_then(Value::as_str) {
        m.bytes(4, &unhex(id));
    }
    if let Some(f) = s.get("flags").and_then(Value::as_u64) {
        m.fixed32(16, f as u32);
    }
    if let Some(name) = s.get("name").and_then(Value::as_str) {
        m.bytes(5, name.as_bytes());
    }
    if let Some(kind) = s.get("kind").and_then(Value::as_i64) {
        m.varint(6, kind as u64);
    }
    if let Some(t) = s.get("startTimeUnixNano") {
        m.fixed64(7, uint64(t));
    }
    if let Some(t) = s.get("endTimeUnixNano") {
        m.fixed64(8, uint64(t));
    }
    for kv in each(s, "attributes") {
        m.message(9, &key_value(kv));
    }
    if let Some(st) = s.get("status") {
        let mut status = Message::default();
        if let Some(msg) = st.get("message").and_then(Value::as_str) {
            status.bytes(2, msg.as_bytes());
        }
        if let Some(code) = st.get("code").and_then(Value::as_i64) {
            status.varint(3, code as u64);
        }
        m.message(15, &status);
    }
    m
}

/// The protobuf `ExportTraceServiceRequest` of an OTLP/JSON one:
/// request.resource_spans 1; ResourceSpans resource 1, scope_spans 2,
/// schema_url 3; Resource attributes 1; ScopeSpans scope 1 (name 1,
/// version 2), spans 2.
pub fn otlp_json_to_protobuf(request: &Value) -> Vec<u8> {
    let mut req = Message::default();
    for rs in each(request, "resourceSpans") {
        let mut resource_spans = Message::default();
        if let Some(r) = rs.get("resource") {
            let mut resource = Message::default();
            for kv in each(r, "attributes") {
                resource.message(1, &key_value(kv));
            }
            resource_spans.message(1, &resource);
        }
        for ss in each(rs, "scopeSpans") {
            let mut scope_spans = Message::default();
            if let Some(scope) = ss.get("scope") {
                let mut sc = Message::default();
                if let Some(n) = scope.get("name").and_then(Value::as_str) {
                    sc.bytes(1, n.as_bytes());
                }
                if let Some(v) = scope.get("version").and_then(Value::as_str) {
                    sc.bytes(2, v.as_bytes());
                }
                scope_spans.message(1, &sc);
            }
            for s in each(ss, "spans") {
                scope_spans.message(2, &span(s));
            }
            resource_spans.message(2, &scope_spans);
        }
        if let Some(url) = rs.get("schemaUrl").and_then(Value::as_str) {
            resource_spans.bytes(3, url.as_bytes());
        }
        req.message(1, &resource_spans);
    }
    req.0
}
