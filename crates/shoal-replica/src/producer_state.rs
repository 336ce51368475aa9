//! Idempotent and transactional producers in one partition (Kafka's `ProducerStateManager`,
//! `ProducerStateEntry` and `ProducerAppendInfo`).
//!
//! **Idempotence.** A producer numbers its batches per partition; a retry of a batch whose
//! first attempt was written must not be written again, and a gap means a batch was lost in
//! between. Kafka's `checkSequence` and its duplicate check over the last five batches.
//!
//! **Transactions.** A producer's first transactional batch here opens its transaction; a
//! marker (COMMIT or ABORT, from the coordinator) closes it. While it is open, the producer may
//! write only transactional batches (INVALID_TXN_STATE otherwise), and the partition's last
//! stable offset cannot pass its first offset (`txn_tracker`). A marker from an older producer
//! epoch is INVALID_PRODUCER_EPOCH, from an older coordinator epoch
//! TRANSACTION_COORDINATOR_FENCED; a marker with a newer producer epoch (KIP-890 part 2 bumps
//! it at every transaction's end) makes it the producer's epoch, sequences starting over. An
//! ABORT yields the entry for the aborted-transaction index.
//!
//! **Two kinds of functions.** The `check_*` functions are the leader's decisions about a
//! request, made before anything is written; they only read. [`ProducerStateTable::apply`]
//! records a batch that is in the log — on the leader after its append, on a follower after
//! copying the leader's bytes, and when the state is rebuilt from the log — and never fails:
//! the log is the truth, so every replica that reads the same bytes reaches the same state.
//!
//! **Bounds.** Each producer keeps `BATCHES_PER_PRODUCER` batches (librdkafka and the Java
//! client keep at most five in flight); the table keeps `MAX_PRODUCERS` producers, evicting the
//! one idle longest — never one with an open transaction (Kafka never expires those; they are
//! bounded by the coordinator, which aborts a transaction past its timeout). An evicted or
//! never-seen producer is "unknown", and as in Kafka an unknown producer's first batch is
//! accepted at any sequence.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use shoal_log::AbortedTxn;

use crate::transaction::{
    AppendOrigin, CompletedTxn, ControlType, OngoingTxn, ProducerEntryInfo, VerificationGuard,
};
use crate::txn_tracker::TxnTracker;
use crate::verification::Verifications;

pub const BATCHES_PER_PRODUCER: usize = 5;
pub const MAX_PRODUCERS: usize = 50_000;
/// Kafka's "no coordinator epoch yet".
pub const NO_COORDINATOR_EPOCH: i32 = -1;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// Sequence numbers and offsets of one written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Where a producer's open transaction began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct TxnStart {
    first_offset: i64,
    started_ms: i64,
}

fn no_coordinator_epoch() -> i32 {
    NO_COORDINATOR_EPOCH
}

fn no_timestamp() -> i64 {
    NO_TIMESTAMP
}

/// One producer. The fields after `last_write_ms` came with transactions; their defaults let a
/// snapshot of the earlier format load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// The broker's clock at the last write (eviction picks the smallest).
    last_write_ms: i64,
    #[serde(default = "no_coordinator_epoch")]
    coordinator_epoch: i32,
    #[serde(default)]
    current_txn: Option<TxnStart>,
    /// Max timestamp of the last batch or marker (DescribeProducers).
    #[serde(default = "no_timestamp")]
    last_timestamp_ms: i64,
}

impl ProducerEntry {
    fn new(epoch: i16, now_ms: i64) -> Self {
        Self {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER),
            last_write_ms: now_ms,
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            current_txn: None,
            last_timestamp_ms: NO_TIMESTAMP,
        }
    }
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already written: answer success with the original offsets, write nothing.
    Duplicate(BatchMetadata),
}

/// Why the leader refuses a producer's batch or a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// INVALID_PRODUCER_EPOCH: a newer epoch of this producer id has written here.
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { current: i16, got: i16 },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER: a gap (or a new epoch not starting at 0).
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    /// INVALID_TXN_STATE: a non-transactional batch while the producer's transaction is open,
    /// or a transactional one that opens a transaction without a current verification.
    #[error("the batch does not fit the producer's transaction state")]
    InvalidTxnState,
    /// TRANSACTION_COORDINATOR_FENCED: a marker from an older coordinator than one that wrote.
    #[error("coordinator epoch {got} is older than the current coordinator epoch {current}")]
    TransactionCoordinatorFenced { current: i32, got: i32 },
}

/// The earlier name of [`ProducerStateError`].
pub type SequenceError = ProducerStateError;

/// A producer's batch as the leader checks it, before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    pub is_transactional: bool,
}

/// What a batch in the log is, for [`ProducerStateTable::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Records; `base_sequence` -1 means the coordinator wrote it (no sequence to track).
    Data {
        base_sequence: i32,
        is_transactional: bool,
    },
    /// A transaction marker.
    Marker {
        control: ControlType,
        coordinator_epoch: i32,
    },
}

/// A batch in the log, with its offsets, as the producer state records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp as stored, `NO_TIMESTAMP` (-1) if none.
    pub max_timestamp_ms: i64,
    pub kind: BatchKind,
}

/// What recording a batch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The transaction a marker ended (none for a producer with no open transaction here).
    pub completed: Option<CompletedTxn>,
    /// For an ABORT: the entry the aborted-transaction index gets.
    pub aborted: Option<AbortedTxn>,
}

/// Sequences wrap from i32::MAX to 0, as in Kafka.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// The producers of one partition (see the module docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    txns: TxnTracker,
    /// In memory only (see `verification`).
    verifications: Verifications,
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    // ─── The leader's checks ───────────────────────────────────────────────────────────────

    /// Sequence rules alone (Kafka's `checkSequence` and duplicate check), for a client batch
    /// of a producer with no transaction concerns.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, ProducerStateError> {
        self.check_data(
            &DataBatch {
                producer_id,
                producer_epoch: epoch,
                first_seq,
                last_seq,
                is_transactional: false,
            },
            AppendOrigin::Client { verification: None },
            true,
        )
    }

    /// Whether the leader may write a producer's batch from `origin`, or already has.
    /// `verification_enabled` is Kafka's `transaction.partition.verification.enable`: off, a
    /// client's transactional batch may open a transaction without a guard.
    pub fn check_data(
        &self,
        batch: &DataBatch,
        origin: AppendOrigin,
        verification_enabled: bool,
    ) -> Result<SequenceCheck, ProducerStateError> {
        let entry = self.producers.get(&batch.producer_id);
        if let Some(entry) = entry
            && batch.producer_epoch < entry.epoch
        {
            return Err(ProducerStateError::InvalidProducerEpoch {
                current: entry.epoch,
                got: batch.producer_epoch,
            });
        }
        let is_client = matches!(origin, AppendOrigin::Client { .. });
        if is_client
            && let Some(entry) = entry
            && batch.producer_epoch == entry.epoch
            && let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        // KIP-890, for clients and coordinators alike (Kafka's `batchMissingRequiredVerification`):
        // a transactional batch opens a transaction here only with the guard the coordinator's
        // answer was taken under.
        if verification_enabled
            && batch.is_transactional
            && !self.has_ongoing_txn(batch.producer_id, batch.producer_epoch)
            && !self
                .verifications
                .matches(batch.producer_id, origin.verification())
        {
            return Err(ProducerStateError::InvalidTxnState);
        }
        // Kafka 4's `lowestSequence`: a verified client batch that would open the transaction
        // here while a lower one verified at the same epoch has not landed is out of order
        // (the producer retries it after the lower one). Without this, a producer with no
        // state here would have its later batch accepted first, and the earlier one refused.
        if is_client
            && batch.is_transactional
            && !self.has_ongoing_txn(batch.producer_id, batch.producer_epoch)
            && let Some(lowest) = self
                .verifications
                .lowest_sequence(batch.producer_id, batch.producer_epoch)
            && batch.first_seq > lowest
        {
            return Err(ProducerStateError::OutOfOrderSequence {
                expected: lowest,
                got: batch.first_seq,
            });
        }
        if !is_client {
            // The coordinator's own batches carry no sequence; their epoch is checked above.
            return match entry {
                Some(e) if e.current_txn.is_some() && !batch.is_transactional => {
                    Err(ProducerStateError::InvalidTxnState)
                }
                _ => Ok(SequenceCheck::Append),
            };
        }
        let Some(entry) = entry else {
            return Ok(SequenceCheck::Append);
        };
        if entry.current_txn.is_some() && !batch.is_transactional {
            return Err(ProducerStateError::InvalidTxnState);
        }
        // A new epoch, or an epoch whose sequences a marker reset, starts at 0.
        let expected = match entry.batches.back() {
            Some(last) if batch.producer_epoch == entry.epoch => next_seq(last.last_seq),
            _ => 0,
        };
        if batch.first_seq != expected {
            return Err(ProducerStateError::OutOfOrderSequence {
                expected,
                got: batch.first_seq,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Whether the leader may write a marker for `producer_id` (Kafka's `checkProducerEpoch`
    /// and `checkCoordinatorEpoch`). One for a producer unknown here, or with no open
    /// transaction, is written all the same, as Kafka does.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerStateError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                current: entry.epoch,
                got: producer_epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ProducerStateError::TransactionCoordinatorFenced {
                current: entry.coordinator_epoch,
                got: coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Kafka's `hasOngoingTransaction`: the producer has an open transaction here, at `epoch`.
    pub fn has_ongoing_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.epoch == epoch && e.current_txn.is_some())
    }

    /// The producer's verification guard for a write at `producer_epoch`, created from
    /// `candidate` if it has none for that epoch (KIP-890; `supports_epoch_bump`: the request
    /// speaks transaction version 2, see [`crate::verification`]).
    pub fn start_verification(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        supports_epoch_bump: bool,
        candidate: VerificationGuard,
        first_sequence: i32,
    ) -> VerificationGuard {
        self.verifications.start(
            producer_id,
            producer_epoch,
            supports_epoch_bump,
            candidate,
            first_sequence,
        )
    }

    // ─── Recording what is in the log ──────────────────────────────────────────────────────

    /// Records a batch that is in the log (see the module docs); never fails. `now_ms` is the
    /// broker's clock, for eviction only.
    pub fn apply(&mut self, batch: &StoredBatch, now_ms: i64) -> Applied {
        let producer_id = batch.producer_id;
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= MAX_PRODUCERS {
            self.evict_idlest();
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(batch.producer_epoch, now_ms));
        if batch.producer_epoch > entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
            self.verifications
                .on_epoch_or_marker(producer_id, batch.producer_epoch);
        }
        entry.last_write_ms = now_ms;
        entry.last_timestamp_ms = batch.max_timestamp_ms;
        match batch.kind {
            BatchKind::Data {
                base_sequence,
                is_transactional,
            } => {
                if base_sequence >= 0 {
                    if entry.batches.len() == BATCHES_PER_PRODUCER {
                        entry.batches.pop_front();
                    }
                    let span = batch.last_offset.saturating_sub(batch.first_offset);
                    let span = i32::try_from(span).unwrap_or(i32::MAX);
                    entry.batches.push_back(BatchMetadata {
                        first_seq: base_sequence,
                        last_seq: base_sequence.wrapping_add(span).max(0),
                        first_offset: batch.first_offset,
                        last_offset: batch.last_offset,
                    });
                }
                if is_transactional && entry.current_txn.is_none() {
                    let started_ms = if batch.max_timestamp_ms >= 0 {
                        batch.max_timestamp_ms
                    } else {
                        now_ms
                    };
                    entry.current_txn = Some(TxnStart {
                        first_offset: batch.first_offset,
                        started_ms,
                    });
                    self.txns.start(producer_id, batch.first_offset);
                }
                Applied::default()
            }
            BatchKind::Marker {
                control,
                coordinator_epoch,
            } => {
                entry.coordinator_epoch = coordinator_epoch;
                let completed = entry.current_txn.take().map(|start| CompletedTxn {
                    producer_id,
                    first_offset: start.first_offset,
                    last_offset: batch.first_offset,
                    is_aborted: control == ControlType::Abort,
                });
                self.verifications
                    .on_epoch_or_marker(producer_id, batch.producer_epoch);
                let aborted = completed.filter(|t| t.is_aborted).map(|txn| AbortedTxn {
                    producer_id,
                    first_offset: txn.first_offset,
                    last_offset: txn.last_offset,
                    last_stable_offset: self.txns.last_stable_offset_after(&txn),
                });
                if let Some(txn) = completed {
                    self.txns.complete(txn);
                }
                Applied { completed, aborted }
            }
        }
    }

    /// The high watermark moved: decided transactions below it no longer hold the LSO back.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.txns.on_high_watermark(high_watermark);
    }

    /// See `TxnTracker::first_unstable_offset`.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.txns.first_unstable_offset()
    }

    // ─── Reporting ─────────────────────────────────────────────────────────────────────────

    /// Open transactions, oldest first.
    pub fn ongoing_transactions(&self) -> Vec<OngoingTxn> {
        self.txns
            .ongoing()
            .filter_map(|(first_offset, producer_id)| {
                let entry = self.producers.get(&producer_id)?;
                Some(OngoingTxn {
                    producer_id,
                    producer_epoch: entry.epoch,
                    first_offset,
                    started_ms: entry.current_txn.map_or(NO_TIMESTAMP, |t| t.started_ms),
                })
            })
            .collect()
    }

    /// Every producer known here, by producer id.
    pub fn producer_entries(&self) -> Vec<ProducerEntryInfo> {
        let mut out: Vec<ProducerEntryInfo> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerEntryInfo {
                producer_id: *id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp_ms: e.last_timestamp_ms,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn.map_or(-1, |t| t.first_offset),
            })
            .collect();
        out.sort_unstable_by_key(|p| p.producer_id);
        out
    }

    /// For the log cleaner (Kafka's `lastRecordsOfActiveProducers`): each producer's id,
    /// current epoch, and the last offset of its last data batch here if one is recorded.
    pub fn last_records(&self) -> impl Iterator<Item = (i64, i16, Option<i64>)> + '_ {
        self.producers
            .iter()
            .map(|(id, e)| (*id, e.epoch, e.batches.back().map(|b| b.last_offset)))
    }

    /// The idlest producer without an open transaction goes. If every one has an open
    /// transaction the table grows past its bound: those are bounded by the coordinators'
    /// transaction timeouts, and dropping one would let the LSO pass undecided data.
    fn evict_idlest(&mut self) {
        let idlest = self
            .producers
            .iter()
            .filter(|(_, e)| e.current_txn.is_none())
            .min_by_key(|(_, e)| e.last_write_ms)
            .map(|(id, _)| *id);
        match idlest {
            Some(id) => {
                self.producers.remove(&id);
            }
            None => tracing::warn!(
                producers = self.producers.len(),
                "every producer of the partition has an open transaction; none evicted"
            ),
        }
    }
}

/// The table as a snapshot stores it: the producers (open transactions included) and the
/// decided transactions the high watermark has not passed. The index of open transactions is
/// rebuilt from the producers; verifications are not kept.
#[derive(Serialize, Deserialize)]
struct StoredTable {
    producers: HashMap<i64, ProducerEntry>,
    #[serde(default)]
    unreplicated_txns: Vec<CompletedTxn>,
}

impl Serialize for ProducerStateTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let unreplicated: Vec<&CompletedTxn> = self.txns.unreplicated().collect();
        let mut s = serializer.serialize_struct("StoredTable", 2)?;
        s.serialize_field("producers", &self.producers)?;
        s.serialize_field("unreplicated_txns", &unreplicated)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for ProducerStateTable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredTable::deserialize(deserializer)?;
        let mut txns = TxnTracker::default();
        for (id, entry) in &stored.producers {
            if let Some(start) = entry.current_txn {
                txns.start(*id, start.first_offset);
            }
        }
        for txn in stored.unreplicated_txns {
            txns.complete(txn);
        }
        Ok(Self {
            producers: stored.producers,
            txns,
            verifications: Verifications::default(),
        })
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
