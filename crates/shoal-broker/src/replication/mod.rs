//! Replication between brokers: the leader side (`service`, the `Replication` gRPC service of
//! `proto/replication.proto`), the follower side (`fetcher`: one stream per leader broker,
//! `fetcher_manager`: which partitions each stream carries, from the metadata image), and the
//! leader's ISR proposals to the controller (`isr_manager`, Kafka's AlterPartition), and the
//! replication throttles both sides obey (`quota`).
//!
//! **Why the broker owns this and `shoal-replica` does not.** Every decision that keeps data
//! safe (what a fetch may count for, where to truncate, which ISR change to propose) is made
//! by `shoal_replica::Partition` from its inputs; this module only moves bytes between
//! processes and calls those decisions, so sockets stay at the edge and the decisions stay
//! unit-testable.

pub mod fetcher;
pub mod fetcher_manager;
pub mod isr_manager;
pub mod quota;
pub mod server;
pub mod service;

/// Generated from `proto/replication.proto` (package `shoal.replication.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("shoal.replication.v1");
}

use uuid::Uuid;

/// The listener name a broker registers its replication endpoint under. Kafka clients never
/// see it: Metadata answers each client with the endpoints of the listener it connected to.
pub const REPLICATION_LISTENER_NAME: &str = "REPLICATION";

/// Kafka's `replica.fetch.wait.max.ms`: longest a leader holds a fetch with nothing new.
pub const FETCH_MAX_WAIT_MS: u32 = 500;
/// Kafka's `replica.fetch.max.bytes`: most record bytes per partition in one response.
pub const FETCH_PARTITION_MAX_BYTES: u32 = 1 << 20;
/// Kafka's `replica.fetch.response.max.bytes`: most record bytes in one response.
pub const FETCH_RESPONSE_MAX_BYTES: u32 = 10 << 20;
/// Largest gRPC message either side accepts: a full response plus its framing.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Most partitions one fetch request may name (a request naming more is refused whole).
pub const MAX_PARTITIONS_PER_FETCH: usize = 100_000;

pub(crate) fn topic_id_bytes(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

pub(crate) fn topic_id_from(bytes: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(bytes).ok()
}
