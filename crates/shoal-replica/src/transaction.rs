//! The words of transactions at the partition: what the transaction coordinator asks a
//! partition leader to do (write a marker, verify a producer) and what the partition reports
//! back (its open transactions, its producers). Kafka's names throughout.

use std::sync::atomic::{AtomicU64, Ordering};

pub use shoal_log::control::ControlType;

/// WriteTxnMarkers for one partition: end `producer_id`'s transaction here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    /// The producer's epoch as the coordinator knows it (a bumped one under KIP-890 part 2).
    pub producer_epoch: i16,
    /// The coordinator's epoch for the `__transaction_state` partition: a marker from an
    /// older coordinator than one that already wrote here is TRANSACTION_COORDINATOR_FENCED.
    pub coordinator_epoch: i32,
    pub control: ControlType,
}

/// A consumer's `isolation.level` (Fetch, ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value: 0 is READ_UNCOMMITTED, 1 READ_COMMITTED. Any other value is read as
    /// READ_COMMITTED, the one that never shows an undecided record.
    pub fn from_wire(isolation_level: i8) -> Self {
        match isolation_level {
            0 => Self::ReadUncommitted,
            _ => Self::ReadCommitted,
        }
    }
}

/// KIP-890 part 1: proof that the coordinator was asked, after this token was issued, whether
/// the producer's transaction includes this partition. Opaque; unique within the process, so a
/// stale verification (one issued before an ABORT marker) never matches a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

/// Source of guards: one counter for every partition of the process.
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

impl VerificationGuard {
    /// A guard no other verification in this process has.
    pub(crate) fn fresh() -> Self {
        Self(NEXT_GUARD.fetch_add(1, Ordering::Relaxed))
    }

    #[cfg(test)]
    pub(crate) fn for_test(value: u64) -> Self {
        Self(value)
    }

    /// The guard as a number, to carry it through a layer that does not know this type (the
    /// group coordinator's TxnOffsetCommit). A forged number only matches by chance of equality
    /// with the partition's current guard, which is never reused.
    pub fn to_raw(self) -> u64 {
        self.0
    }

    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// Who a leader append comes from (Kafka's `AppendOrigin`, with KIP-890's guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's Produce request; a transactional batch that starts a transaction here must
    /// carry the guard from [`crate::Partition::txn_verification_needed`].
    Client {
        verification: Option<VerificationGuard>,
    },
    /// The broker's own coordinators: transaction markers, and TxnOffsetCommit records (producer
    /// id and epoch, no sequence). No sequence checks. A transactional batch that starts a
    /// transaction here (TxnOffsetCommit) must carry a guard as a client's does; markers carry
    /// none.
    Coordinator {
        verification: Option<VerificationGuard>,
    },
}

impl AppendOrigin {
    /// A coordinator write that opens no transaction (markers, non-transactional records).
    pub const COORDINATOR: Self = Self::Coordinator { verification: None };

    pub fn is_coordinator(self) -> bool {
        matches!(self, Self::Coordinator { .. })
    }

    /// The KIP-890 guard the write carries, whoever it comes from.
    pub fn verification(self) -> Option<VerificationGuard> {
        match self {
            Self::Client { verification } | Self::Coordinator { verification } => verification,
        }
    }

    /// The log's view of the origin (which validation rules apply).
    pub fn log_origin(self) -> shoal_log::AppendOrigin {
        match self {
            Self::Client { .. } => shoal_log::AppendOrigin::Client,
            Self::Coordinator { .. } => shoal_log::AppendOrigin::Coordinator,
        }
    }
}

/// One transaction open in this partition (DescribeTransactions, ListTransactions, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OngoingTxn {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Offset of the transaction's first batch here: the last stable offset cannot pass it.
    pub first_offset: i64,
    /// Max timestamp of that first batch (the broker's clock if it carried none); the oldest
    /// open transaction's age is measured from it.
    pub started_ms: i64,
}

/// One producer known to this partition (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntryInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of its last record written here, -1 if none is known.
    pub last_sequence: i32,
    /// Max timestamp of its last batch or marker, -1 if none carried one.
    pub last_timestamp_ms: i64,
    /// Epoch of the coordinator that last wrote a marker for it, -1 if none did.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction here, -1 if none.
    pub current_txn_start_offset: i64,
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub is_aborted: bool,
}
