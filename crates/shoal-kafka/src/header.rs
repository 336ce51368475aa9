//! Request header parsing (`RequestHeader.json` v1/v2).
//!
//! The header version follows from the API key and version (`request_header_version`): v2 for
//! flexible request versions adds a tagged-field section, but `client_id` stays a nullable
//! `int16`-length string in both, so any broker can read any ApiVersions header. Header v0
//! (ControlledShutdown v0 only) is not supported by `kafka-protocol` and is refused.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::error::RequestError;

/// Reads the header from the front of `frame`, leaving `frame` at the start of the body.
pub(crate) fn parse_request_header(
    frame: &mut Bytes,
) -> Result<(ApiKey, RequestHeader), RequestError> {
    // kafka-protocol's own helper slices bytes 0..4 unchecked, so check first.
    if frame.len() < 4 {
        return Err(RequestError::ShortHeader {
            size_bytes: frame.len(),
        });
    }
    let raw_api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_api_key).map_err(|()| RequestError::UnknownApiKey {
        api_key: raw_api_key,
    })?;
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(frame, header_version).map_err(|e| {
        RequestError::MalformedHeader {
            api_key: raw_api_key,
            api_version,
            header_version,
            reason: format!("{e:#}"),
        }
    })?;
    debug_assert_eq!(header.request_api_key, raw_api_key);
    Ok((api_key, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn header_v1_with_null_client_id() {
        // Metadata v1: key 3, version 1, correlation 7, client_id null.
        let mut f = frame(&[&[0, 3, 0, 1], &[0, 0, 0, 7], &[0xff, 0xff], &[0xaa]]);
        let (key, header) = parse_request_header(&mut f).unwrap();
        assert_eq!(key, ApiKey::Metadata);
        assert_eq!(header.correlation_id, 7);
        assert!(header.client_id.is_none());
        assert_eq!(f.as_ref(), &[0xaa]);
    }

    #[test]
    fn header_v2_keeps_int16_client_id_and_reads_tags() {
        // Metadata v12 uses header v2: client "ab" as int16 string, one tagged field (tag 3, 2 bytes).
        let mut f = frame(&[
            &[0, 3, 0, 12],
            &[0, 0, 0, 9],
            &[0, 2, b'a', b'b'],
            &[1, 3, 2, 0xde, 0xad],
            &[0x55],
        ]);
        let (_, header) = parse_request_header(&mut f).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("ab"));
        assert_eq!(
            header.unknown_tagged_fields.get(&3).map(|b| b.as_ref()),
            Some(&[0xde, 0xad][..])
        );
        assert_eq!(f.as_ref(), &[0x55]);
    }

    #[test]
    fn unknown_key_and_short_frames_are_errors() {
        let mut f = frame(&[&[0x7f, 0x00, 0, 0], &[0, 0, 0, 1], &[0, 0]]);
        assert!(matches!(
            parse_request_header(&mut f),
            Err(RequestError::UnknownApiKey { api_key: 0x7f00 })
        ));
        let mut f = frame(&[&[0, 3]]);
        assert!(matches!(
            parse_request_header(&mut f),
            Err(RequestError::ShortHeader { size_bytes: 2 })
        ));
        let mut f = frame(&[&[0, 3, 0, 1], &[0, 0]]);
        assert!(matches!(
            parse_request_header(&mut f),
            Err(RequestError::MalformedHeader { .. })
        ));
    }
}
