//! The (API, min version, max version) table a broker accepts and advertises in ApiVersions.
//!
//! Each range the broker asks for is clamped to what `kafka-protocol` 0.18 can decode and
//! encode ([`crate::codec`], Kafka 4.1's ranges) and to the layouts this crate can length-check
//! ([`crate::schema`]); an API outside either is dropped with a warning, so the table never
//! promises a version this front would refuse. ApiVersions itself is always 0..=4, answered here.

use kafka_protocol::messages::ApiKey;
use tracing::warn;

use crate::codec::codec_versions;
use crate::features::SharedFeatures;
use crate::schema::request_schema;

/// ApiVersions versions answered by this crate (Kafka 4.x: 0–4).
pub const API_VERSIONS_MAX_VERSION: i16 = 4;
/// Table size: every `i16` API key `kafka-protocol` knows is below this.
const API_KEY_SLOTS: usize = 128;
/// Lowest Produce version advertised whenever Produce v3 is accepted: Kafka 4 keeps 0–2 in the
/// ApiVersions answer (but rejects them on use) because librdkafka disables compression
/// otherwise (KAFKA-18659, ProduceRequest.json).
const PRODUCE_ADVERTISED_MIN_VERSION: i16 = 0;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub min_version: i16,
    pub max_version: i16,
}

impl ApiRange {
    pub fn contains(self, version: i16) -> bool {
        self.min_version <= version && version <= self.max_version
    }
}

#[derive(Debug, Clone)]
pub struct SupportedApis {
    /// Indexed by API key.
    ranges: Vec<Option<ApiRange>>,
    /// The feature levels ApiVersions v3+ reports (none unless [`Self::with_features`]).
    features: SharedFeatures,
}

impl SupportedApis {
    /// Builds the table from `(api_key, min_version, max_version)` entries, clamping each as
    /// described in the module docs. Later duplicates replace earlier ones.
    pub fn new(apis: &[(ApiKey, i16, i16)]) -> SupportedApis {
        let mut ranges = vec![None; API_KEY_SLOTS];
        for &(api_key, min_version, max_version) in apis {
            if api_key == ApiKey::ApiVersions {
                continue;
            }
            let Some(schema) = request_schema(api_key as i16) else {
                warn!(
                    ?api_key,
                    "no request layout to length-check this API; not advertising it"
                );
                continue;
            };
            let Some(codec) = codec_versions(api_key) else {
                warn!(
                    ?api_key,
                    "kafka-protocol cannot decode and encode this API; not advertising it"
                );
                continue;
            };
            let clamped = ApiRange {
                min_version: min_version.max(codec.min).max(schema.valid_versions.min),
                max_version: max_version.min(codec.max).min(schema.valid_versions.max),
            };
            if clamped.min_version > clamped.max_version {
                warn!(
                    ?api_key,
                    min_version,
                    max_version,
                    "no version of this range can be served; not advertising it"
                );
                continue;
            }
            if (clamped.min_version, clamped.max_version) != (min_version, max_version) {
                warn!(
                    ?api_key,
                    min_version,
                    max_version,
                    clamped_min = clamped.min_version,
                    clamped_max = clamped.max_version,
                    "clamped API version range"
                );
            }
            ranges[slot(api_key)] = Some(clamped);
        }
        let api_versions = ApiKey::ApiVersions.valid_versions();
        assert!(api_versions.min == 0 && api_versions.max >= API_VERSIONS_MAX_VERSION);
        ranges[slot(ApiKey::ApiVersions)] = Some(ApiRange {
            min_version: 0,
            max_version: API_VERSIONS_MAX_VERSION,
        });
        SupportedApis {
            ranges,
            features: SharedFeatures::default(),
        }
    }

    /// The table without `api_key` (a protocol switched off by configuration).
    pub fn without(mut self, api_key: ApiKey) -> Self {
        if api_key != ApiKey::ApiVersions
            && let Some(range) = self.ranges.get_mut(slot(api_key))
        {
            *range = None;
        }
        self
    }

    /// Reports the levels `features` holds (kept up to date by its publisher) in ApiVersions.
    pub fn with_features(self, features: SharedFeatures) -> Self {
        SupportedApis { features, ..self }
    }

    pub fn features(&self) -> &SharedFeatures {
        &self.features
    }

    /// The accepted range of `api_key`, if it is served at all.
    pub fn range(&self, api_key: ApiKey) -> Option<ApiRange> {
        self.ranges.get(slot(api_key)).copied().flatten()
    }

    /// Whether a request of `api_key` at `version` is decoded and passed to the handler
    /// (ApiVersions: answered by this crate).
    pub fn accepts(&self, api_key: ApiKey, version: i16) -> bool {
        self.range(api_key).is_some_and(|r| r.contains(version))
    }

    /// Accepted ranges, by API key.
    pub fn iter(&self) -> impl Iterator<Item = (ApiKey, ApiRange)> + '_ {
        self.ranges.iter().enumerate().filter_map(|(key, range)| {
            let api_key = ApiKey::try_from(i16::try_from(key).ok()?).ok()?;
            Some((api_key, (*range)?))
        })
    }

    /// Ranges as advertised in ApiVersions responses (differs from [`Self::iter`] only for the
    /// Produce quirk described at `PRODUCE_ADVERTISED_MIN_VERSION`).
    pub fn advertised(&self) -> impl Iterator<Item = (ApiKey, ApiRange)> + '_ {
        self.iter().map(|(api_key, range)| {
            if api_key == ApiKey::Produce && range.min_version == 3 {
                let advertised = ApiRange {
                    min_version: PRODUCE_ADVERTISED_MIN_VERSION,
                    ..range
                };
                (api_key, advertised)
            } else {
                (api_key, range)
            }
        })
    }
}

fn slot(api_key: ApiKey) -> usize {
    let key = api_key as i16;
    debug_assert!(key >= 0);
    usize::try_from(key).unwrap_or(0) % API_KEY_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_clamped_to_codec_and_schema() {
        let apis = SupportedApis::new(&[
            (ApiKey::Produce, 0, 20),
            (ApiKey::Metadata, 0, 8),
            (ApiKey::ListOffsets, 1, 11),
        ]);
        assert_eq!(
            apis.range(ApiKey::Produce),
            Some(ApiRange {
                min_version: 3,
                max_version: 13
            })
        );
        assert_eq!(
            apis.range(ApiKey::Metadata),
            Some(ApiRange {
                min_version: 0,
                max_version: 8
            })
        );
        // Kafka 4.x defines ListOffsets v11 but kafka-protocol implements only up to v10.
        assert_eq!(
            apis.range(ApiKey::ListOffsets),
            Some(ApiRange {
                min_version: 1,
                max_version: 10
            })
        );
        assert!(apis.accepts(ApiKey::Metadata, 8));
        assert!(!apis.accepts(ApiKey::Metadata, 9));
        assert!(!apis.accepts(ApiKey::Fetch, 4));
    }

    #[test]
    fn api_versions_is_always_zero_to_four() {
        let apis = SupportedApis::new(&[(ApiKey::ApiVersions, 2, 2)]);
        assert_eq!(
            apis.range(ApiKey::ApiVersions),
            Some(ApiRange {
                min_version: 0,
                max_version: 4
            })
        );
        assert_eq!(apis.iter().count(), 1);
    }

    #[test]
    fn apis_without_a_layout_or_empty_ranges_are_dropped() {
        // ShareGroupHeartbeat has no embedded layout; Produce 0..2 is not decodable.
        let apis =
            SupportedApis::new(&[(ApiKey::ShareGroupHeartbeat, 0, 1), (ApiKey::Produce, 0, 2)]);
        assert_eq!(apis.range(ApiKey::ShareGroupHeartbeat), None);
        assert_eq!(apis.range(ApiKey::Produce), None);
    }

    #[test]
    fn an_api_switched_off_is_not_served() {
        let apis = SupportedApis::new(&[
            (ApiKey::ConsumerGroupHeartbeat, 0, 1),
            (ApiKey::Heartbeat, 0, 4),
        ]);
        assert!(apis.range(ApiKey::ConsumerGroupHeartbeat).is_some());
        let apis = apis.without(ApiKey::ConsumerGroupHeartbeat);
        assert_eq!(apis.range(ApiKey::ConsumerGroupHeartbeat), None);
        assert!(apis.range(ApiKey::Heartbeat).is_some());
        let apis = apis.without(ApiKey::ApiVersions);
        assert!(
            apis.range(ApiKey::ApiVersions).is_some(),
            "never without ApiVersions"
        );
    }

    #[test]
    fn produce_is_advertised_from_zero_but_accepted_from_three() {
        let apis = SupportedApis::new(&[(ApiKey::Produce, 3, 9)]);
        let advertised: Vec<_> = apis
            .advertised()
            .filter(|(k, _)| *k == ApiKey::Produce)
            .collect();
        assert_eq!(
            advertised,
            vec![(
                ApiKey::Produce,
                ApiRange {
                    min_version: 0,
                    max_version: 9
                }
            )]
        );
        assert!(!apis.accepts(ApiKey::Produce, 2));
    }
}
