//! CloudFront standard logs (placeholder until the decoder lands).
use crate::decode::{Decoder, Reject};
use crate::event::EventSink;
pub struct CloudFrontStandardDecoder;
impl CloudFrontStandardDecoder { pub fn new(_s: &str) -> Self { CloudFrontStandardDecoder } }
impl Decoder for CloudFrontStandardDecoder {
    fn decode_line(&mut self, _line: &[u8], _sink: &mut dyn EventSink) -> Result<(), Reject> { Ok(()) }
}
