//! NDJSON (placeholder until the decoder lands).
use crate::decode::{Decoder, Reject};
use crate::event::EventSink;
pub struct NdjsonDecoder;
impl NdjsonDecoder { pub fn new(_s: &str) -> Self { NdjsonDecoder } }
impl Decoder for NdjsonDecoder {
    fn decode_line(&mut self, _line: &[u8], _sink: &mut dyn EventSink) -> Result<(), Reject> { Ok(()) }
}
