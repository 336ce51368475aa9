//! One partition on one broker: the leader's view of replication.
//!
//! The decisions that keep acknowledged data safe — when the high watermark may move, when an
//! acks=all request may be answered, whether a request's leader epoch is current — are pure
//! functions in their own modules (`high_watermark`, `acks`, `leader_epoch`), in the style of
//! etcd's raft: easy to test exhaustively, with the log and the clock passed in. `Partition` is
//! the thin stateful shell that applies them to a real `shoal_log::Log`.
//!
//! Replication decisions are pure too: `follower_progress` (when a follower counts as caught
//! up), `isr` (which ISR change to propose; the maximal ISR the HW is computed over) and
//! `divergence` (where a follower's log parts from its leader's, by epoch). Transactions too:
//! `producer_state` (idempotence, transaction state, fencing of markers), `txn_tracker` (what
//! holds the last stable offset back), `verification` (KIP-890 guards); `producer_replay`
//! applies them to the log's bytes the same way on leaders, followers and restarts, and
//! `partition_txn` is the leader's side (markers, the LSO). The network side —
//! follower fetch streams, the fetchers, AlterPartition calls — lives in the broker.

pub mod acks;
pub mod delete_records;
pub mod divergence;
pub mod error;
pub mod follower_progress;
pub mod high_watermark;
pub mod isr;
pub mod leader_epoch;
pub mod partition;
mod producer_replay;
pub mod producer_snapshot;
pub mod producer_state;
pub mod state;
pub mod transaction;
pub mod txn_tracker;
pub mod verification;

pub use acks::RequiredAcks;
pub use divergence::EpochEndOffset;
pub use error::PartitionError;
pub use partition::{
    AppendResult, FetchPosition, FetchedRecords, FollowerFetch, FollowerFetchResult, IsrOutcome,
    IsrProposal, MaintenanceDue, Partition, ProposedMember,
};
pub use shoal_log::AbortedTxn;
pub use state::PartitionState;
pub use transaction::{
    AppendOrigin, CompletedTxn, ControlType, IsolationLevel, OngoingTxn, ProducerEntryInfo,
    TxnMarker, VerificationGuard,
};
