//! Versioned metadata formats: the boundary between the domain types the code uses
//! ([`MetadataRecord`](crate::records::MetadataRecord), [`MetadataImage`](crate::image::MetadataImage),
//! openraft entries) and the bytes written to sled or sent to another node.
//!
//! **Why.** Before this module every persisted or replicated value was the `serde_json` of a
//! Rust type: renaming a field compiled, passed every test, and left a node unable to read its
//! own metadata log after an upgrade. Now the bytes have an explicit schema
//! (`proto/metadata.proto`) with versions, the conversion is checked both ways, and golden
//! fixtures (`tests/fixtures/`) pin what older binaries wrote.
//!
//! **Layout.** Every value starts with [`MAGIC`] and a frame/format version byte, then a
//! protobuf message. Records inside are framed like Kafka's `__cluster_metadata` records
//! (`RecordFrame {record_type, record_version, payload}`), so the decoder dispatches on the
//! record type and refuses a version newer than it knows ([`FormatError::UnsupportedVersion`]
//! names what was found and what is supported).
//!
//! **Legacy.** A value whose first byte is not [`MAGIC`] is the unversioned JSON of releases
//! before versioning (JSON text never starts with 0xA5) and is decoded with the serde derives
//! that wrote it; those derives are therefore frozen (the legacy fixtures fail if they change).
//! Legacy values are only read, never written.
//!
//! **Rules** (docs/upgrading.md): never renumber or reuse a field or record type id; a change
//! to a record's fields bumps its version, and the decoder keeps every older version with a
//! documented default; an unknown newer version is an error, never skipped or guessed.

mod delta;
mod entry;
mod records;
mod snapshot;
mod state;

pub use delta::{
    DELTA_PAYLOAD_VERSION, LEGACY_JSON_DELTA_PAYLOAD_VERSION, decode_delta, encode_delta,
};
pub use entry::{
    ENTRY_FRAME_VERSION, decode_entry, decode_log_id, encode_entry, encode_entry_message,
    encode_log_id,
};
pub use records::{
    RecordVersions, decode_batch, decode_record, encode_batch, encode_record, record_versions,
};
pub use snapshot::{
    LEGACY_JSON_SNAPSHOT_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION, decode_snapshot, encode_snapshot,
};
pub use state::{STATE_FRAME_VERSION, decode_state, encode_state};

/// Generated from `proto/metadata.proto` (package `shoal.metadata.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("shoal.metadata.v1");
}

use uuid::Uuid;

/// First byte of every versioned value. No JSON text starts with it, so it also tells the
/// legacy JSON values apart.
pub const MAGIC: u8 = 0xA5;

/// Why bytes could not be turned into a metadata value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A frame, record or snapshot version this binary does not read.
    #[error(
        "{what} version {found} is not supported: this binary reads versions {min} to {max}{hint}",
        hint = if *found > *max { " (it was written by a newer Shoal; upgrade this node)" } else { "" }
    )]
    UnsupportedVersion {
        what: String,
        found: u32,
        min: u32,
        max: u32,
    },
    /// A record type id this binary does not know (written by a newer Shoal).
    #[error(
        "metadata record type {found} is unknown: this binary knows types 1 to {max} (it was \
         written by a newer Shoal; upgrade this node)"
    )]
    UnknownRecordType { found: u32, max: u32 },
    /// The bytes do not follow the schema (truncated, missing field, out of range).
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
}

impl FormatError {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        FormatError::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn check_version(
        what: impl Into<String>,
        found: u32,
        min: u32,
        max: u32,
    ) -> Result<(), FormatError> {
        if (min..=max).contains(&found) {
            Ok(())
        } else {
            Err(FormatError::UnsupportedVersion {
                what: what.into(),
                found,
                min,
                max,
            })
        }
    }
}

/// What a stored or received value turned out to be.
pub(crate) enum Framed<'a> {
    /// [`MAGIC`], then the version byte, then `body`.
    Versioned { version: u8, body: &'a [u8] },
    /// No magic: the unversioned JSON of releases before versioning.
    LegacyJson(&'a [u8]),
}

pub(crate) fn split_header<'a>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<Framed<'a>, FormatError> {
    match bytes {
        [MAGIC, version, body @ ..] => Ok(Framed::Versioned {
            version: *version,
            body,
        }),
        [MAGIC] => Err(FormatError::malformed(what, "truncated header")),
        [] => Err(FormatError::malformed(what, "empty value")),
        legacy => Ok(Framed::LegacyJson(legacy)),
    }
}

pub(crate) fn with_header(version: u8, message: &impl prost::Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + message.encoded_len());
    bytes.push(MAGIC);
    bytes.push(version);
    message.encode_raw(&mut bytes);
    bytes
}

pub(crate) fn decode_message<M: prost::Message + Default>(
    what: &'static str,
    body: &[u8],
) -> Result<M, FormatError> {
    M::decode(body).map_err(|e| FormatError::malformed(what, e.to_string()))
}

/// A field the schema marks `optional` but the value cannot do without.
pub(crate) fn required<T>(
    what: &'static str,
    field: &'static str,
    value: Option<T>,
) -> Result<T, FormatError> {
    value.ok_or_else(|| FormatError::malformed(what, format!("missing field `{field}`")))
}

pub(crate) fn uuid_from(
    what: &'static str,
    field: &'static str,
    bytes: &[u8],
) -> Result<Uuid, FormatError> {
    Uuid::from_slice(bytes).map_err(|_| {
        FormatError::malformed(
            what,
            format!(
                "field `{field}` must be a 16-byte UUID, got {} bytes",
                bytes.len()
            ),
        )
    })
}

pub(crate) fn uuid_bytes(id: &Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}
