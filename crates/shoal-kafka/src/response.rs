//! Response framing: `int32 size`, response header (v0 = correlation id, v1 adds tags), body.
//!
//! Responses are encoded straight into the connection's reusable write buffer; the size is
//! patched in afterwards, so no per-response buffer is allocated. A body that fails to encode
//! leaves the buffer exactly as it was.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::error::EncodeError;
use crate::request::ResponseSlot;

/// Room for the size prefix and a response header (correlation id + tagged fields).
const FRAME_HEADER_RESERVE_BYTES: usize = 64;

/// Appends one complete response frame to `out`.
pub(crate) fn encode_response_frame(
    out: &mut BytesMut,
    slot: &ResponseSlot,
    response: &ResponseKind,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_after_size(out, start, slot, response);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_after_size(
    out: &mut BytesMut,
    start: usize,
    slot: &ResponseSlot,
    response: &ResponseKind,
) -> Result<(), EncodeError> {
    let body_error = |reason: String| EncodeError::Body {
        api_key: slot.api_key,
        api_version: slot.body_version,
        reason,
    };
    // Fetch responses carry megabytes of record bytes; growing the buffer while encoding them
    // reallocates and copies repeatedly (it was the largest broker cost under a consume load).
    if let ResponseKind::Fetch(fetch) = response
        && let Ok(body_size_bytes) = fetch.compute_size(slot.body_version)
    {
        out.reserve(body_size_bytes + FRAME_HEADER_RESERVE_BYTES);
    }
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(slot.correlation_id)
        .encode(out, slot.header_version)
        .map_err(|e| body_error(format!("header v{}: {e:#}", slot.header_version)))?;
    response
        .encode(out, slot.body_version)
        .map_err(|e| body_error(format!("{e:#}")))?;
    let size_bytes = out.len() - start - 4;
    let size = i32::try_from(size_bytes).map_err(|_| EncodeError::TooLarge { size_bytes })?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiKey, HeartbeatResponse, MetadataResponse};

    #[test]
    fn frames_header_v0_and_v1() {
        let mut out = BytesMut::new();
        let slot = ResponseSlot {
            api_key: ApiKey::Heartbeat,
            correlation_id: 7,
            header_version: 0,
            body_version: 0,
        };
        encode_response_frame(
            &mut out,
            &slot,
            &ResponseKind::Heartbeat(HeartbeatResponse::default()),
        )
        .unwrap();
        assert_eq!(out.as_ref(), &[0, 0, 0, 6, 0, 0, 0, 7, 0, 0]);
        out.clear();
        let slot = ResponseSlot {
            header_version: 1,
            body_version: 4,
            ..slot
        };
        encode_response_frame(
            &mut out,
            &slot,
            &ResponseKind::Heartbeat(HeartbeatResponse::default()),
        )
        .unwrap();
        // header: corr + empty tags; body v4: throttle, error, tags.
        assert_eq!(
            out.as_ref(),
            &[0, 0, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn failed_encode_leaves_buffer_unchanged() {
        let mut out = BytesMut::from(&b"keep"[..]);
        let slot = ResponseSlot {
            api_key: ApiKey::Metadata,
            correlation_id: 1,
            header_version: 0,
            body_version: 99,
        };
        let err = encode_response_frame(
            &mut out,
            &slot,
            &ResponseKind::Metadata(MetadataResponse::default()),
        );
        assert!(err.is_err());
        assert_eq!(out.as_ref(), b"keep");
    }
}
