//! One partition on one broker: the leader's view of replication.
//!
//! The decisions that keep acknowledged data safe — when the high watermark may move, when an
//! acks=all request may be answered, whether a request's leader epoch is current — are pure
//! functions in their own modules (`high_watermark`, `acks`, `leader_epoch`), in the style of
//! etcd's raft: easy to test exhaustively, with the log and the clock passed in. `Partition` is
//! the thin stateful shell that applies them to a real `shoal_log::Log`.
//!
//! Today a partition is led by the broker the metadata names and followers are not yet fetched
//! from; the follower fetcher and ISR change proposals build on the same state.

pub mod acks;
pub mod error;
pub mod high_watermark;
pub mod leader_epoch;
pub mod partition;
pub mod producer_snapshot;
pub mod producer_state;
pub mod state;

pub use acks::RequiredAcks;
pub use error::PartitionError;
pub use partition::{AppendResult, FetchedRecords, MaintenanceDue, Partition};
pub use state::PartitionState;
