//! Shoal's transaction coordinator state: Kafka's transaction state machine and the records of
//! the internal topic `__transaction_state`, as pure functions.
//!
//! **What this is.** A transactional producer names itself with a `transactional.id`; the
//! coordinator of that id (the leader of the `__transaction_state` partition it hashes to) keeps
//! one [`TransactionMetadata`] per id: its producer id and epoch, the transaction's state
//! ([`TransactionState`]) and the partitions it has written to. Every request that changes it
//! (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) and every timer (an open
//! transaction past its timeout, an idle transactional id past `transactional.id.expiration.ms`)
//! is a function here of (metadata, request, `now_ms`, settings) that answers either a Kafka
//! error ([`TxnError`]) or the [`TxnTransit`] to write.
//!
//! **Why write first, apply after.** The state must survive the coordinator's death, so it lives
//! in a replicated, compacted topic, and the coordinator must never act on (or answer with) a
//! state that is not there yet. So, as Kafka does with its `TxnTransitMetadata`, a decision does
//! not change the metadata: it returns a [`Transition`], the metadata to hold while the write is
//! in flight (with a pending state, which makes every other request on that id answer
//! CONCURRENT_TRANSACTIONS) and the target to write. Only once the record is replicated does
//! [`Transition::complete`] make it the current state; a failed write [`Transition::abandon`]s it.
//!
//! **Why pure.** The decisions are where exactly-once is won or lost (a zombie producer that is
//! not fenced, a retried EndTxn that commits twice, an epoch that overflows), and they are
//! easiest to get right and to keep right as a table of cases: no clock (time is `now_ms`), no
//! locks, no log, no network. The producer id allocator is the one outside input, passed in as a
//! closure that is called at most once per decision and only when Kafka would allocate.
//!
//! Layout: `state` (the eight states, their ids, names and legal predecessors), `metadata` (one
//! transactional id's state and every transition the coordinator makes), `records` (the bytes
//! of `__transaction_state`: key v0, value v0 and v1, tombstones), `replay` (a partition read
//! back into its transactional ids when this broker starts coordinating it), `error` (Kafka's codes).
//!
//! **Who calls it.** The broker's transaction coordinator (`shoal-broker/src/transactions/`)
//! holds the metadata, does the I/O around each decision (the write, the markers, the timers) and
//! applies a transit only once it is replicated; see docs/transactions.md.

pub mod error;
pub mod metadata;
pub mod records;
pub mod replay;
pub mod state;

pub use error::TxnError;
pub use metadata::{TransactionMetadata, TransactionVersion, Transition, TxnSettings, TxnTransit};
pub use replay::{LoadedTransactions, TxnReplay};
pub use state::TransactionState;

/// The internal topic's name.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
