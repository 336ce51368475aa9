//! [`MetadataDelta`] ⇄ the payload of a `FetchMetadataReply` (the metadata log stream to
//! broker-only nodes).
//!
//! Payload versions: 0 = the legacy JSON of `MetadataDelta` (what brokers of the unversioned
//! era ask for and send: they leave `max_payload_version` at 0); 1 = the `MetadataDelta`
//! protobuf whose batches are versioned records and whose image is a whole snapshot (with its
//! own format version).

use prost::Message;

use crate::format::proto::{self, metadata_delta};
use crate::format::records::{decode_batch, encode_batch};
use crate::format::snapshot::{decode_snapshot, encode_snapshot};
use crate::format::{FormatError, decode_message, required};
use crate::metadata_log::MetadataDelta;

/// The payload version this binary writes when the reader accepts it.
pub const DELTA_PAYLOAD_VERSION: u32 = 1;
/// The unversioned JSON payload.
pub const LEGACY_JSON_DELTA_PAYLOAD_VERSION: u32 = 0;

const WHAT: &str = "metadata delta";

/// Encodes `delta` at `version` (0 or 1).
pub fn encode_delta(delta: &MetadataDelta, version: u32) -> Result<Vec<u8>, FormatError> {
    FormatError::check_version(
        "metadata delta payload",
        version,
        LEGACY_JSON_DELTA_PAYLOAD_VERSION,
        DELTA_PAYLOAD_VERSION,
    )?;
    if version == LEGACY_JSON_DELTA_PAYLOAD_VERSION {
        return serde_json::to_vec(delta).map_err(|e| FormatError::malformed(WHAT, e.to_string()));
    }
    let delta = match delta {
        MetadataDelta::Batches {
            batches,
            last_offset,
        } => metadata_delta::Delta::Batches(metadata_delta::Batches {
            batches: batches
                .iter()
                .map(|(log_index, batch)| proto::IndexedBatch {
                    log_index: *log_index,
                    batch: Some(encode_batch(batch)),
                })
                .collect(),
            last_offset: *last_offset,
        }),
        MetadataDelta::Image(image) => metadata_delta::Delta::Snapshot(encode_snapshot(image)),
    };
    Ok(proto::MetadataDelta { delta: Some(delta) }.encode_to_vec())
}

/// Decodes a payload the sender labelled `version`.
pub fn decode_delta(version: u32, bytes: &[u8]) -> Result<MetadataDelta, FormatError> {
    FormatError::check_version(
        "metadata delta payload",
        version,
        LEGACY_JSON_DELTA_PAYLOAD_VERSION,
        DELTA_PAYLOAD_VERSION,
    )?;
    if version == LEGACY_JSON_DELTA_PAYLOAD_VERSION {
        return serde_json::from_slice(bytes)
            .map_err(|e| FormatError::malformed("legacy JSON metadata delta", e.to_string()));
    }
    let m: proto::MetadataDelta = decode_message(WHAT, bytes)?;
    match required(WHAT, "delta", m.delta)? {
        metadata_delta::Delta::Batches(b) => Ok(MetadataDelta::Batches {
            batches: b
                .batches
                .into_iter()
                .map(|indexed| {
                    let batch = required(WHAT, "batches.batch", indexed.batch)?;
                    Ok((indexed.log_index, decode_batch(&batch)?))
                })
                .collect::<Result<_, FormatError>>()?,
            last_offset: b.last_offset,
        }),
        metadata_delta::Delta::Snapshot(bytes) => {
            Ok(MetadataDelta::Image(Box::new(decode_snapshot(&bytes)?)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MetadataImage;
    use crate::records::MetadataRecord;

    fn deltas() -> Vec<MetadataDelta> {
        let batch = vec![MetadataRecord::Topic {
            name: "t".into(),
            topic_id: uuid::Uuid::from_u128(7),
        }];
        let mut image = MetadataImage::empty("c");
        image.apply_batch(3, &batch);
        vec![
            MetadataDelta::Batches {
                batches: vec![(3, batch), (5, vec![])],
                last_offset: 6,
            },
            MetadataDelta::Image(Box::new(image)),
        ]
    }

    #[test]
    fn both_payload_versions_round_trip() {
        for delta in deltas() {
            for version in [LEGACY_JSON_DELTA_PAYLOAD_VERSION, DELTA_PAYLOAD_VERSION] {
                let bytes = encode_delta(&delta, version).unwrap();
                assert_eq!(decode_delta(version, &bytes).unwrap(), delta, "v{version}");
            }
            // The legacy JSON is what brokers before versioning send and expect.
            assert_eq!(
                encode_delta(&delta, 0).unwrap(),
                serde_json::to_vec(&delta).unwrap()
            );
        }
    }

    #[test]
    fn a_newer_payload_version_is_refused_by_name() {
        let bytes = encode_delta(&deltas()[0], DELTA_PAYLOAD_VERSION).unwrap();
        let err = decode_delta(2, &bytes).unwrap_err().to_string();
        assert!(
            err.contains("metadata delta payload version 2") && err.contains("versions 0 to 1"),
            "{err}"
        );
        assert!(encode_delta(&deltas()[0], 2).is_err());
        assert!(decode_delta(1, b"\x0a\xff").is_err());
    }
}
