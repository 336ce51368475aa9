//! openraft type configuration for the metadata quorum.
//!
//! A Raft entry's application payload (`D`) is one [`MetadataBatch`], applied atomically; the
//! response (`R`) tells the proposer at which log index it was applied, so a broker can wait for
//! its own image to include the change. Node ids are `u64` in openraft and `i32` in Kafka; the
//! conversion is checked at the edges ([`to_raft_node_id`], [`to_kafka_node_id`]).

// `declare_raft_types!` names the default `SnapshotData = Cursor<Vec<u8>>` unqualified.
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::records::MetadataBatch;

/// Raft node id (a Kafka node id that is known to be non-negative).
pub type NodeId = u64;

/// What applying one entry returns to the proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedEntry {
    /// Raft log index the entry was applied at.
    pub log_index: u64,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of the metadata quorum.
    pub TypeConfig:
        D = MetadataBatch,
        R = AppliedEntry,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running metadata Raft node.
pub type MetaRaft = openraft::Raft<TypeConfig>;
/// One Raft log entry.
pub type MetaEntry = openraft::Entry<TypeConfig>;
/// A Raft log id (term, leader, index).
pub type MetaLogId = openraft::LogId<NodeId>;
/// The membership as stored with the state machine.
pub type MetaStoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// Snapshot metadata.
pub type MetaSnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;

/// Kafka node id → Raft node id; `None` for negative ids.
pub fn to_raft_node_id(node_id: i32) -> Option<NodeId> {
    u64::try_from(node_id).ok()
}

/// Raft node id → Kafka node id; `None` if it does not fit.
pub fn to_kafka_node_id(node_id: NodeId) -> Option<i32> {
    i32::try_from(node_id).ok()
}
