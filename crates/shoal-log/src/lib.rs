//! `shoal-log`: one Kafka partition's log on disk.
//!
//! This is Shoal's equivalent of Kafka's `UnifiedLog`/`LocalLog`, `LogSegment`, `LogLoader`,
//! `OffsetIndex`, `TimeIndex` and `LeaderEpochFileCache`. It is synchronous `std::fs` code that
//! knows nothing of the network or the Kafka protocol beyond the v2 record batch format; the
//! broker keeps each [`Log`] in a [`SharedLog`] (appends and reads do their file I/O outside
//! its locks) and serves Produce/Fetch/ListOffsets from it on blocking threads.
//!
//! # Layout of a partition directory
//! - `<base offset, 20 digits>.log`: v2 record batches, byte for byte as appended (offsets and
//!   leader epoch assigned); `.index` (offset → position, 8-byte entries) and `.timeindex`
//!   (max timestamp → offset, 12-byte entries) beside each, big-endian, as in Kafka; and,
//!   once a segment holds an ABORT marker, its `.txnindex` of aborted transactions (34-byte
//!   entries, Kafka's layout; see `txn_index`).
//! - `leader-epoch-checkpoint`: Kafka's text format (`0`, count, `epoch start_offset` lines).
//! - `partition-checkpoint`: log start offset, recovery point, high watermark.
//! - `clean-shutdown`: present only between a `close()` and the next open.
//!
//! Checkpoints are replaced atomically (temp file, fsync, rename, fsync directory).
//!
//! # Durability: what an acknowledged append survives
//! An append is one `write(2)` into the OS page cache. By default (`flush.messages` and
//! `flush.ms` at `i64::MAX`, as in Kafka) nothing is fsynced on the produce path:
//! - **Process crash** (panic, OOM kill, SIGKILL): the page cache belongs to the kernel and
//!   survives, so every append that returned is on disk once the process is gone. Restart
//!   rescans the tail from the recovery point and keeps it all.
//! - **Power loss or kernel crash**: data not yet fsynced may be lost or torn. Recovery cuts
//!   the log at the first bad batch; replication is what keeps acks=all writes safe, because
//!   every ISR member holds the batch and losing all of them at once is the failure model
//!   this default does not cover. Set `flush.messages=1` to fsync before each append returns
//!   (the broker must then ack only after `append_*` returns) at a large throughput cost.
//!
//! Sealed segments are fsynced in the background when the log rolls, which advances the
//! recovery point so an unclean restart rescans only the newest segment or so.
//!
//! # Memory
//! Only the active segment's index entries are held in memory (bounded by
//! `segment.index.bytes`); sealed segments are searched on disk with `pread`. Appends reuse one
//! scratch buffer (released when a request was unusually large). RSS does not grow with the
//! amount of data stored.

mod append_origin;
mod batch_scanner;
mod checkpoint;
mod clean_shutdown;
pub mod cleaner;
pub mod cleaner_throttle;
mod cleaner_txn;
pub mod compression;
mod config;
pub mod control;
mod epoch_cache;
mod error;
mod index_file;
mod loader;
mod log;
mod offset_index;
mod partition_checkpoint;
mod recompress;
pub mod record_view;
mod retention;
mod segment;
mod segment_flusher;
mod shared_log;
mod time_index;
pub mod txn_index;
mod validator;

pub mod batch;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use cleaner::{ActiveProducers, CleanOutcome, CleanPlan, CleanStats, CleanerLimits};
pub use config::{CleanupPolicy, CompressionType, LogConfig, TimestampType};
pub use epoch_cache::EpochEntry;
pub use error::{LogError, RecordError, Result};
pub use log::{AppendInfo, FoundBatch, Log, ReadInfo, RetentionResult};
pub use recompress::needs_recompression;
pub use shared_log::{Appended, SharedLog};
pub use txn_index::AbortedTxn;
pub use validator::{AppendOrigin, validate_produce};
