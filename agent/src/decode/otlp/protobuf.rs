//! A bounds-checked reader of the protobuf wire format, and the walk over
//! the few `ExportTraceServiceRequest` fields the mapping needs.
//!
//! Field numbers, from opentelemetry-proto (`collector/trace/v1`,
//! `trace/v1/trace.proto`, `resource/v1`, `common/v1`):
//!
//! | message | fields read |
//! | --- | --- |
//! | `ExportTraceServiceRequest` | `resource_spans = 1` |
//! | `ResourceSpans` | `resource = 1`, `scope_spans = 2` |
//! | `Resource` | `attributes = 1` |
//! | `ScopeSpans` | `spans = 2` |
//! | `Span` | `trace_id = 1` (bytes), `span_id = 2` (bytes), `kind = 6` (enum), `start_time_unix_nano = 7` (fixed64), `end_time_unix_nano = 8` (fixed64), `attributes = 9`, `status = 15` |
//! | `Status` | `code = 3` (enum) |
//! | `KeyValue` | `key = 1`, `value = 2` |
//! | `AnyValue` | `string_value = 1`, `bool_value = 2`, `int_value = 3`, `double_value = 4`; `array_value = 5`, `kvlist_value = 6`, `bytes_value = 7` are skipped |
//!
//! Every other field is skipped by its wire type, without being looked at.
//! A field read here with the wrong wire type is an error, as are truncated
//! fields, overlong varints, field number 0 and the group wire types.
//!
//! Nesting is bounded by construction: the walk goes at most six messages
//! deep (request → resource spans → scope spans → span → key-value → any
//! value) and never into arrays or key-value lists of attribute values, so a
//! hostile body cannot make it recurse. Lengths are checked against the
//! enclosing message before any slice is taken, so nothing reads past the
//! body; the body's own size is bounded by [`super::MAX_BODY`].
//!
//! When a field that is not repeated occurs more than once, the last one
//! wins, as in proto3; a `resource` that occurs twice keeps the last
//! `service.name` seen.

use std::borrow::Cow;

use super::{Attributes, OtlpError, Request, ResourceAttributes, SpanFields, Value, WireProblem};

/// A field's payload, by wire type.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    /// A length-delimited payload and the offset of its first byte in the body.
    Bytes(&'a [u8], usize),
    Fixed32,
}

impl Wire<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::Fixed64(_) => 1,
            Wire::Bytes(..) => 2,
            Wire::Fixed32 => 5,
        }
    }
}

/// One field: its number, payload, and the body offset of its tag.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    number: u32,
    wire: Wire<'a>,
    offset: usize,
}

fn error(offset: usize, problem: WireProblem) -> OtlpError {
    OtlpError::Protobuf { offset, problem }
}

impl<'a> Field<'a> {
    fn wrong_type(&self, field: &'static str) -> OtlpError {
        error(self.offset, WireProblem::WrongWireType { field, wire_type: self.wire.wire_type() })
    }

    fn message(&self, field: &'static str) -> Result<Reader<'a>, OtlpError> {
        match self.wire {
            Wire::Bytes(bytes, at) => Ok(Reader { buf: bytes, pos: 0, base: at }),
            _ => Err(self.wrong_type(field)),
        }
    }

    fn bytes(&self, field: &'static str) -> Result<&'a [u8], OtlpError> {
        match self.wire {
            Wire::Bytes(bytes, _) => Ok(bytes),
            _ => Err(self.wrong_type(field)),
        }
    }

    fn string(&self, field: &'static str) -> Result<&'a str, OtlpError> {
        match self.wire {
            Wire::Bytes(bytes, at) => {
                std::str::from_utf8(bytes).map_err(|e| error(at + e.valid_up_to(), WireProblem::InvalidUtf8 { field }))
            }
            _ => Err(self.wrong_type(field)),
        }
    }

    fn varint(&self, field: &'static str) -> Result<u64, OtlpError> {
        match self.wire {
            Wire::Varint(v) => Ok(v),
            _ => Err(self.wrong_type(field)),
        }
    }

    /// An enum (an `int32` on the wire: negative values are sign-extended
    /// to 64 bits, so truncating gives them back).
    fn enumeration(&self, field: &'static str) -> Result<i64, OtlpError> {
        Ok(i64::from(self.varint(field)? as i32))
    }

    fn fixed64(&self, field: &'static str) -> Result<u64, OtlpError> {
        match self.wire {
            Wire::Fixed64(v) => Ok(v),
            _ => Err(self.wrong_type(field)),
        }
    }
}

/// The fields of one message, in order.
#[derive(Debug, Clone)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the body, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    fn at(&self, pos: usize) -> usize {
        self.base + pos
    }

    fn varint(&mut self) -> Result<u64, OtlpError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(error(self.at(start), WireProblem::Truncated));
            };
            self.pos += 1;
            // The tenth byte holds only the 64th bit.
            if i == 9 && b > 1 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(error(self.at(start), WireProblem::VarintTooLong))
    }

    fn take(&mut self, n: usize, field_offset: usize) -> Result<(&'a [u8], usize), OtlpError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(error(field_offset, WireProblem::Truncated));
        };
        let at = self.at(self.pos);
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok((bytes, at))
    }

    /// The next field, or `None` at the end of the message.
    fn next(&mut self) -> Result<Option<Field<'a>>, OtlpError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let offset = self.at(self.pos);
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).ok().filter(|n| (1..=(1 << 29) - 1).contains(n));
        let Some(number) = number else {
            return Err(error(offset, WireProblem::BadFieldNumber));
        };
        // A field cut off is reported at its tag, the start of what is missing.
        let cut = |e: OtlpError| match e {
            OtlpError::Protobuf { problem: WireProblem::Truncated, .. } => error(offset, WireProblem::Truncated),
            e => e,
        };
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint().map_err(cut)?),
            1 => {
                let (b, _) = self.take(8, offset)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| error(offset, WireProblem::Truncated))?))
            }
            2 => {
                let len = self.varint().map_err(cut)?;
                let len = usize::try_from(len).map_err(|_| error(offset, WireProblem::Truncated))?;
                let (b, at) = self.take(len, offset)?;
                Wire::Bytes(b, at)
            }
            5 => {
                self.take(4, offset)?;
                Wire::Fixed32
            }
            t => return Err(error(offset, WireProblem::UnsupportedWireType(t as u8))),
        };
        Ok(Some(Field { number, wire, offset }))
    }
}

/// Walk a whole `ExportTraceServiceRequest` into `out`.
pub(super) fn read_request<'a>(body: &'a [u8], out: &mut Request<'a>) -> Result<(), OtlpError> {
    let mut r = Reader { buf: body, pos: 0, base: 0 };
    while let Some(f) = r.next()? {
        if f.number == 1 {
            resource_spans(f.message("ExportTraceServiceRequest.resource_spans")?, out)?;
        }
    }
    Ok(())
}

fn resource_spans<'a>(mut r: Reader<'a>, out: &mut Request<'a>) -> Result<(), OtlpError> {
    let resource = out.begin_resource();
    while let Some(f) = r.next()? {
        match f.number {
            1 => {
                let service = resource_service(f.message("ResourceSpans.resource")?)?;
                out.set_service(resource, service);
            }
            2 => scope_spans(f.message("ResourceSpans.scope_spans")?, resource, out)?,
            _ => {}
        }
    }
    Ok(())
}

fn resource_service(mut r: Reader<'_>) -> Result<Option<Cow<'_, str>>, OtlpError> {
    let mut attributes = ResourceAttributes::default();
    while let Some(f) = r.next()? {
        if f.number == 1 {
            key_value(f.message("Resource.attributes")?, &mut attributes)?;
        }
    }
    Ok(attributes.service())
}

fn scope_spans<'a>(mut r: Reader<'a>, resource: usize, out: &mut Request<'a>) -> Result<(), OtlpError> {
    while let Some(f) = r.next()? {
        if f.number == 2 {
            let span = span(f.message("ScopeSpans.spans")?)?;
            out.span(resource, span);
        }
    }
    Ok(())
}

fn span(mut r: Reader<'_>) -> Result<SpanFields<'_>, OtlpError> {
    let mut s = SpanFields::default();
    while let Some(f) = r.next()? {
        match f.number {
            1 => s.trace_id = super::id_from_bytes(f.bytes("Span.trace_id")?),
            2 => s.span_id = super::id_from_bytes(f.bytes("Span.span_id")?),
            6 => s.kind = f.enumeration("Span.kind")?,
            7 => s.start_ns = f.fixed64("Span.start_time_unix_nano")?,
            8 => s.end_ns = f.fixed64("Span.end_time_unix_nano")?,
            9 => key_value(f.message("Span.attributes")?, &mut s.attributes)?,
            15 => s.status_code = status_code(f.message("Span.status")?)?,
            _ => {}
        }
    }
    Ok(s)
}

fn status_code(mut r: Reader<'_>) -> Result<i64, OtlpError> {
    let mut code = 0;
    while let Some(f) = r.next()? {
        if f.number == 3 {
            code = f.enumeration("Status.code")?;
        }
    }
    Ok(code)
}

/// One `KeyValue`: its value is decoded only when `into` reads its key.
fn key_value<'a>(mut r: Reader<'a>, into: &mut impl Attributes<'a>) -> Result<(), OtlpError> {
    let (mut key, mut value) = (None, None);
    while let Some(f) = r.next()? {
        match f.number {
            1 => key = Some(f.bytes("KeyValue.key")?),
            2 => value = Some(f.message("KeyValue.value")?),
            _ => {}
        }
    }
    // A key that is not UTF-8 matches no key read here, so it needs no check.
    if let (Some(key), Some(value)) = (key, value)
        && let Some(slot) = into.slot(key)
    {
        *slot = Some(any_value(value)?);
    }
    Ok(())
}

fn any_value(mut r: Reader<'_>) -> Result<Value<'_>, OtlpError> {
    let mut v = Value::Other;
    while let Some(f) = r.next()? {
        v = match f.number {
            1 => Value::Str(Cow::Borrowed(f.string("AnyValue.string_value")?)),
            2 => Value::Bool(f.varint("AnyValue.bool_value")? != 0),
            3 => Value::Int(f.varint("AnyValue.int_value")? as i64),
            4 => Value::Double(f64::from_bits(f.fixed64("AnyValue.double_value")?)),
            5 => f.bytes("AnyValue.array_value").map(|_| Value::Other)?,
            6 => f.bytes("AnyValue.kvlist_value").map(|_| Value::Other)?,
            7 => f.bytes("AnyValue.bytes_value").map(|_| Value::Other)?,
            _ => continue,
        };
    }
    Ok(v)
}
