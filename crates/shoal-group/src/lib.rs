//! Shoal's consumer group coordinator: Kafka's classic group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and committed offsets, kept in the internal topic
//! `__consumer_offsets`.
//!
//! **Why the offsets live in a topic.** A group's coordinator is the leader of the
//! `__consumer_offsets` partition the group id hashes to; that partition is replicated like any
//! other, so when its leader fails, the new leader reads the partition back and coordinates
//! the group with every committed offset intact. Coordination moves with leadership.
//!
//! Layout: `coordinator_key` (group → partition), `records` (the topic's record formats,
//! Kafka's bytes), `group` (one group's state machine, pure, time passed in), `replay` (a
//! partition read back), `retention` (which offsets expired), `txn_offsets` (offsets committed
//! inside a transaction, pending until its marker), `coordinator` (the shards of the
//! partitions this broker leads: loading, routing, writing, timers),
//! `authority` (whether this broker may still answer), `error` (Kafka's codes). The broker wires the Kafka APIs and the log to it.

pub mod authority;
pub mod consumer;
pub mod coordinator;
pub mod coordinator_key;
pub mod error;
pub mod group;
pub mod records;
pub mod replay;
pub mod retention;
pub mod txn_offsets;

pub use authority::Authority;
pub use coordinator::{
    CoordinatorConfig, FetchedOffset, GroupCoordinator, OffsetsStorage, TxnCommit, TxnProducer,
};
pub use error::{GroupError, StorageError};
pub use group::{GroupSettings, GroupState, JoinRequest, JoinResponse, SyncRequest, SyncResponse};
pub use replay::OffsetsReplay;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
