//! Turning one frame into either a local answer or a request for the handler.
//!
//! A pure function of the frame and the supported table (no I/O), so every routing rule —
//! ApiVersions answered here, unsupported versions, length guard before decode — is decided
//! in one place and unit-testable.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::api_versions::{
    API_VERSIONS_RESPONSE_HEADER_VERSION, api_versions_response, unsupported_api_versions_response,
};
use crate::error::RequestError;
use crate::header::parse_request_header;
use crate::length_guard::check_request_lengths;
use crate::schema::request_schema;
use crate::supported_apis::{API_VERSIONS_MAX_VERSION, SupportedApis};
use crate::unsupported::unsupported_version_response;

/// How a response must be framed: correlation id, header version and body version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseSlot {
    pub api_key: ApiKey,
    pub correlation_id: i32,
    pub header_version: i16,
    pub body_version: i16,
}

/// The outcome of reading one request frame.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Answered by this crate (ApiVersions, unsupported versions).
    Local {
        slot: ResponseSlot,
        response: ResponseKind,
    },
    /// A decoded request for the handler.
    Dispatch {
        slot: ResponseSlot,
        client_id: Option<StrBytes>,
        request: RequestKind,
    },
}

/// Parses the header, applies the version rules and decodes the body of `frame`.
pub(crate) fn route_request(
    supported: &SupportedApis,
    mut frame: Bytes,
) -> Result<Routed, RequestError> {
    let (api_key, header) = parse_request_header(&mut frame)?;
    let RequestHeader {
        request_api_version: api_version,
        correlation_id,
        client_id,
        ..
    } = header;
    if api_key == ApiKey::ApiVersions {
        // Above v4 the body is not parsed; the v0-layout error lets the client retry.
        let (response, body_version) = if (0..=API_VERSIONS_MAX_VERSION).contains(&api_version) {
            (api_versions_response(supported, api_version), api_version)
        } else {
            (unsupported_api_versions_response(), 0)
        };
        let slot = ResponseSlot {
            api_key,
            correlation_id,
            header_version: API_VERSIONS_RESPONSE_HEADER_VERSION,
            body_version,
        };
        return Ok(Routed::Local { slot, response });
    }
    let slot = ResponseSlot {
        api_key,
        correlation_id,
        header_version: api_key.response_header_version(api_version),
        body_version: api_version,
    };
    if !supported.accepts(api_key, api_version) {
        return match unsupported_version_response(api_key, api_version) {
            Some(response) => Ok(Routed::Local { slot, response }),
            None => Err(RequestError::UnsupportedWithoutErrorCode {
                api_key,
                api_version,
            }),
        };
    }
    // SupportedApis only accepts APIs that have a layout, so this is always Some.
    let schema =
        request_schema(api_key as i16).ok_or(RequestError::UnsupportedWithoutErrorCode {
            api_key,
            api_version,
        })?;
    check_request_lengths(schema, api_version, &frame).map_err(|source| {
        RequestError::BodyLength {
            api_key,
            api_version,
            source,
        }
    })?;
    let request = RequestKind::decode(api_key, &mut frame, api_version).map_err(|e| {
        RequestError::MalformedBody {
            api_key,
            api_version,
            reason: format!("{e:#}"),
        }
    })?;
    Ok(Routed::Dispatch {
        slot,
        client_id,
        request,
    })
}

/// Routes one frame as a connection does, against every API and version the codec decodes;
/// `Ok` when it decodes or is answered here, else the error a connection closes on. The entry
/// point of the request-decoder fuzz target (`make fuzz`).
pub fn route_any_frame(frame: Bytes) -> Result<(), RequestError> {
    static EVERY_API: std::sync::OnceLock<SupportedApis> = std::sync::OnceLock::new();
    let supported = EVERY_API.get_or_init(|| {
        let every: Vec<(ApiKey, i16, i16)> = (0..=i16::from(u8::MAX))
            .filter_map(|key| ApiKey::try_from(key).ok())
            .map(|key| (key, 0, i16::MAX))
            .collect();
        SupportedApis::new(&every)
    });
    route_request(supported, frame).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> SupportedApis {
        SupportedApis::new(&[(ApiKey::Metadata, 0, 8), (ApiKey::Heartbeat, 0, 3)])
    }

    fn frame(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn api_versions_v3_is_local_with_header_v0() {
        // ApiVersions v3, header v2 (empty tags), body: compact strings + tags.
        let f = frame(&[
            &[0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0],
            &[2, b'x', 2, b'1', 0],
        ]);
        let Routed::Local { slot, .. } = route_request(&supported(), f).unwrap() else {
            panic!("ApiVersions must be answered locally");
        };
        assert_eq!((slot.header_version, slot.body_version), (0, 3));
    }

    #[test]
    fn api_versions_above_four_answers_v0_without_parsing() {
        let f = frame(&[&[0, 18, 0, 5, 0, 0, 0, 1, 0xff, 0xff, 0], &[0xde, 0xad]]);
        let Routed::Local { slot, .. } = route_request(&supported(), f).unwrap() else {
            panic!("expected local");
        };
        assert_eq!((slot.header_version, slot.body_version), (0, 0));
    }

    #[test]
    fn unsupported_versions_get_error_or_close() {
        // Heartbeat v4 (flexible, header v2) is outside 0..3 but has an error_code.
        let f = frame(&[&[0, 12, 0, 4, 0, 0, 0, 1, 0xff, 0xff, 0]]);
        assert!(matches!(
            route_request(&supported(), f),
            Ok(Routed::Local { .. })
        ));
        // Metadata v9 outside 0..8 and without a top-level error_code: close.
        let f = frame(&[&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0]]);
        assert!(matches!(
            route_request(&supported(), f),
            Err(RequestError::UnsupportedWithoutErrorCode { .. })
        ));
    }

    #[test]
    fn body_is_length_checked_then_decoded() {
        let header: &[u8] = &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
        let f = frame(&[header, &[0x7f, 0xff, 0xff, 0xff]]);
        assert!(matches!(
            route_request(&supported(), f),
            Err(RequestError::BodyLength { .. })
        ));
        let f = frame(&[header, &[0, 0, 0, 0]]);
        let Routed::Dispatch {
            request: RequestKind::Metadata(m),
            client_id,
            ..
        } = route_request(&supported(), f).unwrap()
        else {
            panic!("expected Metadata");
        };
        assert_eq!(m.topics, Some(vec![]));
        assert!(client_id.is_none());
    }
}
