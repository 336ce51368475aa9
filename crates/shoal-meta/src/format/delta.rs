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
            Ok(MetadataDelta::Image(decode_snapshot(&bytes)?))
        }
    }
}
