//! Typed errors of the partition log.
//!
//! The variants follow the Kafka errors a broker reports for them, so the broker can map each
//! one to a wire error code without looking at messages: `CorruptRecord` → CORRUPT_MESSAGE (2),
//! `InvalidRecord` → INVALID_RECORD (87), `RecordTooLarge` and `DecompressedTooLarge` →
//! MESSAGE_TOO_LARGE (10), `InvalidTimestamp` → INVALID_TIMESTAMP (32),
//! `UnsupportedCompressionType` → UNSUPPORTED_COMPRESSION_TYPE (76), `RecordErrors` → the code
//! of the error it carries (with Kafka's per-record `record_errors`),
//! `OffsetOutOfRange` → OFFSET_OUT_OF_RANGE (1), `Io`/`Corrupt*`/`TooManyAbortedTxns` →
//! KAFKA_STORAGE_ERROR (56).

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in `shoal-log`.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed a structural check (magic, length, CRC).
    #[error("corrupt record batch: {0}")]
    CorruptRecord(String),
    /// A well-formed batch breaks a rule of the append path (e.g. record count).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes={max_message_bytes}")]
    RecordTooLarge {
        size_bytes: usize,
        max_message_bytes: usize,
    },
    /// A compressed batch whose records expand beyond what the broker will decompress.
    #[error("records compressed with codec {codec} expand beyond the {limit_bytes}-byte limit")]
    DecompressedTooLarge { codec: u8, limit_bytes: usize },
    /// A CreateTime record outside `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` of the broker's clock.
    #[error("{0}")]
    InvalidTimestamp(String),
    /// A batch whose codec id is none of Kafka's (0-4).
    #[error("{0}")]
    UnsupportedCompressionType(String),
    /// Records of a batch that break a rule of the append path (Kafka's
    /// `RecordValidationException`): `error` is `InvalidTimestamp` when any record's timestamp
    /// is out of bounds, else `InvalidRecord`; `record_errors` says which records and why.
    #[error("{error}")]
    RecordErrors {
        error: Box<LogError>,
        record_errors: Vec<RecordError>,
    },
    /// A read or start-offset move outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A follower append that does not continue the log exactly where it ends.
    #[error("append expected offset {expected} but the batch starts at {actual}")]
    UnexpectedAppendOffset { expected: i64, actual: i64 },
    /// A `LogConfig` value outside its allowed range.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
    /// A checkpoint file that cannot be parsed; it is written atomically, so this is real
    /// damage. Readers set such a file aside and rebuild from the log (checkpoints are hints).
    #[error("corrupt checkpoint {path}: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    /// A segment holding bytes that are not a batch where the loader accepted it.
    #[error("corrupt segment {path} at byte {position}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// An index file that cannot be used as it is (callers rebuild it from the log).
    #[error("corrupt index {path}: {reason}")]
    CorruptIndex { path: PathBuf, reason: String },
    /// The log stopped serving after a failure it cannot undo in memory (a compaction swap
    /// that failed after its commit point); a restart loads it whole from disk.
    #[error("log {dir} is offline until the broker restarts: {reason}")]
    Offline { dir: PathBuf, reason: String },
    /// More aborted transactions overlap one fetch than a response may list
    /// (`txn_index::MAX_ABORTED_TXNS_COLLECTED`); pathological, reported rather than cut short
    /// (a shortened list would show a `read_committed` consumer aborted records).
    #[error(
        "more than {limit} aborted transactions overlap offsets [{start_offset}, {upper_bound_offset})"
    )]
    TooManyAbortedTxns {
        start_offset: i64,
        upper_bound_offset: i64,
        limit: usize,
    },
    /// An operating-system error, with the file it happened on.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One record a batch was refused for (Kafka's `ProduceResponse.RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index in its batch (Kafka's `batch_index`).
    pub batch_index: i32,
    pub message: String,
}

/// `Result` with [`LogError`].
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Attaches the path an I/O error happened on.
pub(crate) trait IoResultExt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
