//! ApiVersions (key 18), answered by this crate rather than the handler, because every
//! client sends it first on every connection and its rules are about framing, not data.
//!
//! - v0–v4 are answered with the advertised table. v3+ bodies are flexible and carry the
//!   feature levels as tagged fields (SupportedFeatures, FinalizedFeaturesEpoch,
//!   FinalizedFeatures; see [`crate::features`]). As Kafka does, v3 leaves out supported ranges
//!   that start at level 0 (clients before KIP-1022 reject them) and every answer leaves out
//!   features finalized at 0. The request body (client software name and version, v3+) is not
//!   needed for the answer and is not decoded.
//! - A higher version is not parsed (`isUnsupportedApiVersionsRequest` in Kafka's
//!   `RequestContext`): the reply is UNSUPPORTED_VERSION serialized as a **v0** body holding
//!   the ApiVersions entry (KIP-511), so the client can retry with a version it finds there.
//! - ApiVersions responses always use response header v0, even v3/v4.

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::supported_apis::{API_VERSIONS_MAX_VERSION, SupportedApis};

/// Kafka's `UNSUPPORTED_VERSION` error code.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// Header version of every ApiVersions response.
pub(crate) const API_VERSIONS_RESPONSE_HEADER_VERSION: i16 = 0;

/// The successful ApiVersions response for a request at `version` (0..=4).
pub(crate) fn api_versions_response(supported: &SupportedApis, version: i16) -> ResponseKind {
    debug_assert!((0..=API_VERSIONS_MAX_VERSION).contains(&version));
    let api_keys = supported
        .advertised()
        .map(|(api_key, range)| {
            ApiVersion::default()
                .with_api_key(api_key as i16)
                .with_min_version(range.min_version)
                .with_max_version(range.max_version)
        })
        .collect();
    let mut response = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys);
    if version >= FEATURES_MIN_VERSION {
        let levels = supported.features().current();
        response.supported_features = levels
            .supported
            .iter()
            .filter(|(_, min, _)| version > FEATURES_MIN_VERSION || *min > 0)
            .map(|(name, min, max)| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect();
        response.finalized_features = levels
            .finalized
            .iter()
            .filter(|(_, level)| *level > 0)
            .map(|(name, level)| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_min_version_level(*level)
                    .with_max_version_level(*level)
            })
            .collect();
        response.finalized_features_epoch = levels.epoch;
    }
    ResponseKind::ApiVersions(response)
}

/// The first ApiVersions version with feature levels (KIP-584).
const FEATURES_MIN_VERSION: i16 = 3;

/// The UNSUPPORTED_VERSION reply to an ApiVersions request above v4; encode it at version 0.
pub(crate) fn unsupported_api_versions_response() -> ResponseKind {
    let entry = ApiVersion::default()
        .with_api_key(ApiKey::ApiVersions as i16)
        .with_min_version(0)
        .with_max_version(API_VERSIONS_MAX_VERSION);
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(vec![entry]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn unsupported_reply_is_the_v0_layout() {
        let mut buf = BytesMut::new();
        unsupported_api_versions_response()
            .encode(&mut buf, 0)
            .unwrap();
        // error 35, int32 count 1, [18, 0, 4]; no throttle, no tags.
        assert_eq!(buf.as_ref(), &[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]);
    }

    #[test]
    fn table_lists_advertised_ranges() {
        let supported = SupportedApis::new(&[(ApiKey::Metadata, 0, 8)]);
        let ResponseKind::ApiVersions(response) = api_versions_response(&supported, 3) else {
            panic!("not ApiVersions");
        };
        let entries: Vec<_> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(entries, vec![(3, 0, 8), (18, 0, 4)]);
    }

    #[test]
    fn feature_levels_from_v3_on() {
        let shared = crate::SharedFeatures::default();
        shared.publish(crate::FeatureLevels {
            supported: vec![
                ("shoal.metadata.version".into(), 1, 3),
                ("transaction.version".into(), 0, 2),
            ],
            finalized: vec![
                ("shoal.metadata.version".into(), 3),
                ("transaction.version".into(), 2),
                ("group.version".into(), 0),
            ],
            epoch: 42,
        });
        let supported = SupportedApis::new(&[(ApiKey::Metadata, 0, 8)]).with_features(shared);
        // (version, supported names, finalized (name, level), epoch)
        type Case<'a> = (i16, Vec<&'a str>, Vec<(&'a str, i16)>, i64);
        let cases: [Case; 3] = [
            (2, vec![], vec![], -1),
            (
                3,
                vec!["shoal.metadata.version"],
                vec![("shoal.metadata.version", 3), ("transaction.version", 2)],
                42,
            ),
            (
                4,
                vec!["shoal.metadata.version", "transaction.version"],
                vec![("shoal.metadata.version", 3), ("transaction.version", 2)],
                42,
            ),
        ];
        for (version, names, finalized, epoch) in cases {
            let ResponseKind::ApiVersions(r) = api_versions_response(&supported, version) else {
                panic!("not ApiVersions");
            };
            let got: Vec<&str> = r
                .supported_features
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            assert_eq!(got, names, "v{version}");
            let got: Vec<(&str, i16)> = r
                .finalized_features
                .iter()
                .map(|f| {
                    assert_eq!(f.min_version_level, f.max_version_level);
                    (f.name.as_str(), f.max_version_level)
                })
                .collect();
            assert_eq!(got, finalized, "v{version}");
            assert_eq!(r.finalized_features_epoch, epoch, "v{version}");
            let mut buf = BytesMut::new();
            ResponseKind::ApiVersions(r)
                .encode(&mut buf, version)
                .unwrap();
        }
    }
}
