//! The Raft plumbing: openraft type config, sled-backed log storage, the state machine that
//! turns committed entries into a [`crate::image::MetadataImage`], and the gRPC transport
//! between controllers (`grpc_network` = client side, `grpc_service` = server side).
//!
//! Layout of the sled database under `<data>/meta/raft/`:
//! - tree `raft_log`:   key = log index (u64 big-endian, so sled's order is log order),
//!   value = a versioned `RaftEntry` ([`crate::format::encode_entry`]).
//! - tree `raft_state`: `vote`, `committed`, `last_purged` (versioned envelope around the JSON
//!   of openraft's types, [`crate::format::encode_state`]).
//! - tree `snapshot`:   `meta` (the same envelope around `SnapshotMeta`) and `data` (a
//!   versioned snapshot, [`crate::format::encode_snapshot`]), written in one atomic batch.
//!
//! Values written by releases before versioning (plain JSON) are still read; see
//! [`crate::format`].
//!
//! The state machine itself is not persisted: on start it is loaded from the last snapshot and
//! openraft re-applies the entries up to the saved `committed` index (see
//! `RaftLogStorage::save_committed`), so a restart reproduces the image exactly.

pub mod grpc_network;
pub mod grpc_service;
pub mod log_store;
pub mod membership_check;
pub mod payload;
pub mod state_machine;
pub mod types;

use openraft::{StorageError, StorageIOError};

/// Largest gRPC message of the Raft transport, either direction. A metadata entry can hold up
/// to `MAX_RECORDS_PER_ENTRY` records (a few MiB of JSON); larger AppendEntries batches are
/// split on the sending side (`PayloadTooLarge`), snapshots travel in chunks.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Converts any error into openraft's storage error for the given operation.
pub(crate) fn storage_error(
    make: impl FnOnce(openraft::AnyError) -> StorageIOError<types::NodeId>,
    e: impl std::error::Error + 'static,
) -> StorageError<types::NodeId> {
    StorageError::IO {
        source: make(openraft::AnyError::new(&e)),
    }
}
