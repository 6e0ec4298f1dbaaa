//! OTLP/JSON: the walk over an `ExportTraceServiceRequest` in JSON, with
//! serde visitors that read each span into [`SpanFields`] as they go (no
//! tree of values is built) and borrow strings from the body.
//!
//! Keys are the lowerCamelCase names the OTLP spec requires; any other key
//! is skipped. Object keys may come in any order: a span's attributes are
//! matched when its object ends, and a `resource` that follows its
//! `scopeSpans` still names their service (see [`Request`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};

use super::{Attributes, OtlpError, Request, ResourceAttributes, SpanFields, Value};

/// Walk a whole request into `out`.
pub(super) fn read_request<'a>(body: &'a [u8], out: &mut Request<'a>) -> Result<(), OtlpError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    RequestSeed { out }.deserialize(&mut de).and_then(|()| de.end()).map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> OtlpError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    OtlpError::Json { line, column, message }
}

/// The object keys read anywhere in a request. One enum for all messages: each
/// message's visitor uses its own and skips the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    ResourceSpans,
    Resource,
    ScopeSpans,
    Spans,
    Attributes,
    KeyField,
    Value,
    TraceId,
    SpanId,
    Kind,
    StartTime,
    EndTime,
    Status,
    Code,
    StringValue,
    BoolValue,
    IntValue,
    DoubleValue,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Name;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Name, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Name;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
        Ok(match v {
            "resourceSpans" => Name::ResourceSpans,
            "resource" => Name::Resource,
            "scopeSpans" => Name::ScopeSpans,
            "spans" => Name::Spans,
            "attributes" => Name::Attributes,
            "key" => Name::KeyField,
            "value" => Name::Value,
            "traceId" => Name::TraceId,
            "spanId" => Name::SpanId,
            "kind" => Name::Kind,
            "startTimeUnixNano" => Name::StartTime,
            "endTimeUnixNano" => Name::EndTime,
            "status" => Name::Status,
            "code" => Name::Code,
            "stringValue" => Name::StringValue,
            "boolValue" => Name::BoolValue,
            "intValue" => Name::IntValue,
            "doubleValue" => Name::DoubleValue,
            _ => Name::Other,
        })
    }
}

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// The top-level object.
struct RequestSeed<'o, 'a> {
    out: &'o mut Request<'a>,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ExportTraceServiceRequest object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::ResourceSpans => map.next_value_seed(ResourceSpansList { out: &mut *self.out })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

struct ResourceSpansList<'o, 'a> {
    out: &'o mut Request<'a>,
}
impl<'de> DeserializeSeed<'de> for ResourceSpansList<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpansList<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of ResourceSpans")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ResourceSpans { out: &mut *self.out })?.is_some() {}
        Ok(())
    }
}

struct ResourceSpans<'o, 'a> {
    out: &'o mut Request<'a>,
}
impl<'de> DeserializeSeed<'de> for ResourceSpans<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpans<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ResourceSpans object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let resource = self.out.begin_resource();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::Resource => {
                    let service = map.next_value_seed(Resource)?;
                    self.out.set_service(resource, service);
                }
                Name::ScopeSpans => map.next_value_seed(ScopeSpansList { out: &mut *self.out, resource })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// A `Resource`: its `service.name`, if it has one.
struct Resource;

impl<'de> DeserializeSeed<'de> for Resource {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Resource {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Resource object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attributes = ResourceAttributes::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::Attributes => map.next_value_seed(AttributeList { into: &mut attributes })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(attributes.service())
    }
}

struct ScopeSpansList<'o, 'a> {
    out: &'o mut Request<'a>,
    resource: usize,
}
impl<'de> DeserializeSeed<'de> for ScopeSpansList<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScopeSpansList<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of ScopeSpans")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ScopeSpans { out: &mut *self.out, resource: self.resource })?.is_some() {}
        Ok(())
    }
}

struct ScopeSpans<'o, 'a> {
    out: &'o mut Request<'a>,
    resource: usize,
}
impl<'de> DeserializeSeed<'de> for ScopeSpans<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScopeSpans<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ScopeSpans object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::Spans => map.next_value_seed(SpanList { out: &mut *self.out, resource: self.resource })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

struct SpanList<'o, 'a> {
    out: &'o mut Request<'a>,
    resource: usize,
}
impl<'de> DeserializeSeed<'de> for SpanList<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SpanList<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Span")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(span) = seq.next_element_seed(Span)? {
            if let Some(span) = span {
                self.out.span(self.resource, span);
            }
        }
        Ok(())
    }
}

/// A `Span` object (`None` for `null`).
struct Span;

impl<'de> DeserializeSeed<'de> for Span {
    type Value = Option<SpanFields<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Span {
    type Value = Option<SpanFields<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Span object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut s = SpanFields::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::TraceId => s.trace_id = map.next_value_seed(Text)?.and_then(|t| super::id_from_hex(&t)),
                Name::SpanId => s.span_id = map.next_value_seed(Text)?.and_then(|t| super::id_from_hex(&t)),
                Name::Kind => s.kind = map.next_value_seed(Enumeration)?,
                Name::StartTime => s.start_ns = map.next_value_seed(Uint64)?,
                Name::EndTime => s.end_ns = map.next_value_seed(Uint64)?,
                Name::Attributes => map.next_value_seed(AttributeList { into: &mut s.attributes })?,
                Name::Status => s.status_code = map.next_value_seed(Status)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(Some(s))
    }
}

/// A `Status` object: its code.
struct Status;

impl<'de> DeserializeSeed<'de> for Status {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Status {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Status object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<i64, A::Error> {
        let mut code = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Name::Code => code = map.next_value_seed(Enumeration)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(code)
    }
}

/// An array of `KeyValue`, each value stored in `into`'s slot for its key.
struct AttributeList<'o, T> {
    into: &'o mut T,
}

impl<'de, T: Attributes<'de>> DeserializeSeed<'de> for AttributeList<'_, T> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Attributes<'de>> Visitor<'de> for AttributeList<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of KeyValue")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(kv) = seq.next_element_seed(KeyValue)? {
            if let (Some(key), Some(value)) = kv
                && let Some(slot) = self.into.slot(key.as_bytes())
            {
                *slot = Some(value);
            }
        }
        Ok(())
    }
}

/// A `KeyValue` object. Its value is read before its key is known (JSON
/// keys come in any order), but reading it costs no allocation.
struct KeyValue;

impl<'de> DeserializeSeed<'de> for KeyValue {
    type Value = (Option<Cow<'de, str>>, Option<Value<'de>>);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyValue {
    type Value = (Option<Cow<'de, str>>, Option<Value<'de>>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a KeyValue object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((None, None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut key, mut value) = (None, None);
        while let Some(k) = map.next_key_seed(KeySeed)? {
            match k {
                Name::KeyField => key = map.next_value_seed(Text)?,
                Name::Value => value = Some(map.next_value_seed(AnyValue)?),
                _ => skip(&mut map)?,
            }
        }
        Ok((key, value))
    }
}

/// An `AnyValue` object: `{"stringValue": …}`, `{"intValue": …}`, ….
struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Value<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue {
    type Value = Value<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AnyValue object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
        Ok(Value::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut v = Value::Other;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            v = match key {
                Name::StringValue => map.next_value_seed(Text)?.map_or(Value::Other, Value::Str),
                Name::BoolValue => map.next_value::<Option<bool>>()?.map_or(Value::Other, Value::Bool),
                Name::IntValue => Value::Int(map.next_value_seed(Int64)?),
                Name::DoubleValue => map.next_value_seed(Double)?,
                _ => {
                    skip(&mut map)?;
                    continue;
                }
            };
        }
        Ok(v)
    }
}

/// A string, borrowed from the body unless it has escapes (`None` for `null`).
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
}

/// A `fixed64` time: a number, or a decimal string (`null` is 0, unset).
struct Uint64;

impl<'de> DeserializeSeed<'de> for Uint64 {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Uint64 {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned 64-bit integer, as a number or a decimal string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // proto3 JSON allows exponent notation for integers, e.g. 1.7e18.
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
            Ok(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// An `int64` attribute value: a number, or a decimal string.
struct Int64;

impl<'de> DeserializeSeed<'de> for Int64 {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Int64 {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit integer, as a number or a decimal string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18 {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// An enum value. OTLP/JSON writes enums as integers only; an enum name is
/// an error (`null` is 0, unset).
struct Enumeration;

impl<'de> DeserializeSeed<'de> for Enumeration {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Enumeration {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an enum as an integer (OTLP/JSON does not allow enum names)")
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i32::try_from(v).map(i64::from).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        i32::try_from(v).map(i64::from).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

/// A `double` attribute value: a number, or one of the strings proto3 JSON
/// allows (`"NaN"`, `"Infinity"`, `"-Infinity"`, or a number in a string).
/// Nothing here reads doubles, so an unreadable one is just `Other`.
struct Double;

impl<'de> DeserializeSeed<'de> for Double {
    type Value = Value<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Double {
    type Value = Value<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a double, as a number or a string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
        Ok(Value::Other)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::Double(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Double(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::Double(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(v.parse().map_or(Value::Other, Value::Double))
    }
}
