//! One transactional id's state and every transition Kafka's transaction coordinator makes on
//! it, as functions of (metadata, request, `now_ms`, settings) that answer a Kafka error or a
//! [`Transition`] to write (Kafka's `TransactionMetadata.prepare*`, the checks of
//! `TransactionCoordinator`, and `completeTransitionTo`).
//!
//! **The write-then-apply rule.** A decision never changes the current metadata. It returns a
//! [`Transition`]: `base`, the metadata to keep while the record is being written (its pending
//! state makes every other request on the id answer CONCURRENT_TRANSACTIONS, and the timers
//! skip it), and `transit`, the target state to write to `__transaction_state`. The coordinator
//! answers the client from `transit` only after the write is replicated, and only then calls
//! [`Transition::complete`], which checks the target against the base the way Kafka does (a
//! failed check is a coordinator bug, answered as UNKNOWN_SERVER_ERROR, never a new state). A
//! failed write calls [`Transition::abandon`].
//!
//! **Epochs.** A producer epoch fences zombies: each InitProducerId bumps it, and an old epoch
//! is refused with PRODUCER_FENCED. An epoch at `i16::MAX - 1` or above is exhausted: the next
//! bump takes a new producer id instead (epoch 0), so the coordinator always keeps one epoch
//! (`i16::MAX`) with which to fence. With transaction version 2 (KIP-890 part 2) every EndTxn
//! bumps the epoch too, so a late write of a finished transaction can never be accepted; the
//! new producer id an exhausted epoch needs is then chosen at EndTxn (`next_producer_id`) and
//! taken when the transaction completes.
//!
//! **Producer ids** come from the cluster's allocator, which is I/O: decisions that may need one
//! take a closure, called at most once and only where Kafka allocates.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::TxnError;
use crate::records::{RecordError, TransactionLogValue};
use crate::state::TransactionState::{self, *};

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// A transaction start time when no transaction is open.
pub const NO_TIMESTAMP_MS: i64 = -1;
/// AddOffsetsToTxn adds the group's `__consumer_offsets` partition to the transaction.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's `transaction.max.timeout.ms` default: 15 minutes.
pub const DEFAULT_TRANSACTION_MAX_TIMEOUT_MS: i32 = 15 * 60 * 1000;
/// Kafka's `transactional.id.expiration.ms` default: 7 days.
pub const DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// (topic, partition).
pub type TopicPartition = (String, i32);

/// Kafka's `transaction.version` feature level (KIP-890), also stored per transactional id as
/// the version the client used (`ClientTransactionVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionVersion {
    /// The original protocol.
    Tv0,
    /// Flexible `__transaction_state` values (value version 1).
    Tv1,
    /// Also an epoch bump on every EndTxn (KIP-890 part 2).
    Tv2,
}

impl TransactionVersion {
    pub fn level(self) -> i16 {
        match self {
            TransactionVersion::Tv0 => 0,
            TransactionVersion::Tv1 => 1,
            TransactionVersion::Tv2 => 2,
        }
    }

    pub fn from_level(level: i16) -> Option<TransactionVersion> {
        match level {
            0 => Some(TransactionVersion::Tv0),
            1 => Some(TransactionVersion::Tv1),
            2 => Some(TransactionVersion::Tv2),
            _ => None,
        }
    }

    pub fn supports_epoch_bump(self) -> bool {
        self >= TransactionVersion::Tv2
    }

    /// The `__transaction_state` value version a coordinator at this level writes.
    pub fn log_value_version(self) -> i16 {
        if self >= TransactionVersion::Tv1 {
            1
        } else {
            0
        }
    }

    /// The version a client speaks, from its EndTxn version: v5+ is transaction version 2.
    pub fn for_end_txn(request_version: i16) -> TransactionVersion {
        if request_version > 4 {
            TransactionVersion::Tv2
        } else {
            TransactionVersion::Tv0
        }
    }

    /// The version a client speaks, from its AddPartitionsToTxn version: v4+ is version 2.
    pub fn for_add_partitions(request_version: i16) -> TransactionVersion {
        if request_version > 3 {
            TransactionVersion::Tv2
        } else {
            TransactionVersion::Tv0
        }
    }
}

/// The coordinator's settings, by Kafka's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`: a larger `transaction.timeout.ms` is refused.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an id idle this long with no open transaction goes.
    pub transactional_id_expiration_ms: i64,
    /// The cluster's finalized `transaction.version`: which value version is written, and how
    /// the coordinator's own aborts (timeouts, fencing) bump the epoch.
    pub server_transaction_version: TransactionVersion,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            transaction_max_timeout_ms: DEFAULT_TRANSACTION_MAX_TIMEOUT_MS,
            transactional_id_expiration_ms: DEFAULT_TRANSACTIONAL_ID_EXPIRATION_MS,
            server_transaction_version: TransactionVersion::Tv2,
        }
    }
}

/// An epoch the coordinator no longer hands out: the last one is kept for fencing.
pub fn is_epoch_exhausted(producer_epoch: i16) -> bool {
    producer_epoch >= i16::MAX - 1
}

/// A transactional id must be non-empty (a null one is an idempotent producer, not the
/// coordinator's business).
pub fn validate_transactional_id(transactional_id: &str) -> Result<(), TxnError> {
    if transactional_id.is_empty() {
        Err(TxnError::InvalidRequest)
    } else {
        Ok(())
    }
}

/// `transaction.timeout.ms` must be positive and at most `transaction.max.timeout.ms`.
pub fn validate_transaction_timeout_ms(
    txn_timeout_ms: i32,
    settings: &TxnSettings,
) -> Result<(), TxnError> {
    if txn_timeout_ms > 0 && txn_timeout_ms <= settings.transaction_max_timeout_ms {
        Ok(())
    } else {
        Err(TxnError::InvalidTransactionTimeout)
    }
}

/// One transactional id's state, as the coordinator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last transition (KIP-360: a producer retrying with it after
    /// an epoch overflow is recognised, not fenced).
    pub previous_producer_id: i64,
    /// The producer id chosen at EndTxn for when the epoch overflows (transaction version 2);
    /// [`NO_PRODUCER_ID`] otherwise.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId gets the same answer. Not
    /// stored in `__transaction_state`: [`NO_PRODUCER_EPOCH`] after a load.
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction began (its first partition); [`NO_TIMESTAMP_MS`] when none.
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    pub client_transaction_version: TransactionVersion,
    /// In memory only: the state being written, if a write is in flight.
    pub pending_state: Option<TransactionState>,
    /// In memory only: a fencing abort's write failed, so the epoch was already bumped once
    /// (never returned to a client) and the next fence must not bump it again.
    pub has_failed_epoch_fence: bool,
}

impl TransactionMetadata {
    /// A transactional id seen for the first time (InitProducerId then bumps epoch -1 to 0).
    pub fn new(transactional_id: &str, producer_id: i64, txn_timeout_ms: i32, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: Empty,
            partitions: BTreeSet::new(),
            txn_start_timestamp_ms: NO_TIMESTAMP_MS,
            txn_last_update_timestamp_ms: now_ms,
            client_transaction_version: TransactionVersion::Tv0,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    fn has_open_transaction(&self) -> bool {
        matches!(self.state, Ongoing | PrepareCommit | PrepareAbort)
    }

    /// The state as written, with every field copied; each transition changes some of them.
    fn transit_to(&self, state: TransactionState) -> TxnTransit {
        TxnTransit {
            producer_id: self.producer_id,
            previous_producer_id: self.producer_id,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            txn_timeout_ms: self.txn_timeout_ms,
            state,
            partitions: self.partitions.clone(),
            txn_start_timestamp_ms: self.txn_start_timestamp_ms,
            txn_last_update_timestamp_ms: self.txn_last_update_timestamp_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

/// The state to write (Kafka's `TxnTransitMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTransit {
    pub producer_id: i64,
    /// Always the producer id the transition started from.
    pub previous_producer_id: i64,
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    pub client_transaction_version: TransactionVersion,
}

impl TxnTransit {
    /// The `__transaction_state` value to write (the last producer epoch is not stored).
    pub fn to_log_value(&self) -> TransactionLogValue {
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.txn_timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            last_update_timestamp_ms: self.txn_last_update_timestamp_ms,
            start_timestamp_ms: self.txn_start_timestamp_ms,
            client_transaction_version: self.client_transaction_version.level(),
        }
    }
}

impl TransactionMetadata {
    /// A transactional id as a loader reads it back: no last epoch, nothing pending.
    pub fn from_log_value(
        transactional_id: &str,
        value: &TransactionLogValue,
    ) -> Result<TransactionMetadata, RecordError> {
        let version =
            TransactionVersion::from_level(value.client_transaction_version).ok_or_else(|| {
                RecordError::Malformed(format!(
                    "client transaction version {}",
                    value.client_transaction_version
                ))
            })?;
        Ok(TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            next_producer_id: value.next_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms: value.transaction_timeout_ms,
            state: value.state,
            partitions: value.partitions.clone(),
            txn_start_timestamp_ms: value.start_timestamp_ms,
            txn_last_update_timestamp_ms: value.last_update_timestamp_ms,
            client_transaction_version: version,
            pending_state: None,
            has_failed_epoch_fence: false,
        })
    }
}

/// A decided transition: keep `base` while `transit` is written, then [`Transition::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub base: TransactionMetadata,
    pub transit: TxnTransit,
}

/// The checks of every `prepare*`: nothing in flight, a valid producer id and epoch, a legal
/// state change. Failing one is a coordinator bug, not a client error.
pub(super) fn prepare(
    base: TransactionMetadata,
    transit: TxnTransit,
) -> Result<Transition, TxnError> {
    if base.pending_state.is_some()
        || transit.producer_id < 0
        || (transit.state != Dead && transit.producer_epoch < 0)
        || !transit.state.can_follow(base.state)
    {
        return Err(TxnError::UnknownServerError);
    }
    let mut base = base;
    base.pending_state = Some(transit.state);
    Ok(Transition { base, transit })
}

impl Transition {
    /// The write succeeded: the new current metadata (Kafka's `completeTransitionTo`, with its
    /// checks). A `Dead` result means the tombstone is written: drop the id.
    pub fn complete(self) -> Result<TransactionMetadata, TxnError> {
        let Transition { base, transit } = self;
        if base.pending_state != Some(transit.state) {
            return Err(TxnError::UnknownServerError);
        }
        let valid = match transit.state {
            Empty => {
                (base.producer_epoch == transit.producer_epoch || valid_epoch_bump(&base, &transit))
                    && transit.partitions.is_empty()
                    && transit.txn_start_timestamp_ms == NO_TIMESTAMP_MS
            }
            Ongoing => {
                valid_producer_epoch(&base, &transit)
                    && transit.partitions.is_superset(&base.partitions)
                    && base.txn_timeout_ms == transit.txn_timeout_ms
            }
            PrepareCommit | PrepareAbort => {
                let empty_abort = transit.state == PrepareAbort
                    && transit.client_transaction_version.supports_epoch_bump()
                    && matches!(base.state, Empty | CompleteCommit | CompleteAbort);
                valid_producer_epoch(&base, &transit)
                    && base.partitions == transit.partitions
                    && base.txn_timeout_ms == transit.txn_timeout_ms
                    && (base.txn_start_timestamp_ms == transit.txn_start_timestamp_ms
                        || empty_abort)
            }
            CompleteCommit | CompleteAbort => {
                valid_producer_epoch(&base, &transit)
                    && base.txn_timeout_ms == transit.txn_timeout_ms
                    && transit.txn_start_timestamp_ms != NO_TIMESTAMP_MS
            }
            // Never written: the coordinator turns it into PrepareAbort at once.
            PrepareEpochFence => false,
            Dead => true,
        };
        if !valid {
            return Err(TxnError::UnknownServerError);
        }
        Ok(TransactionMetadata {
            transactional_id: base.transactional_id,
            producer_id: transit.producer_id,
            previous_producer_id: transit.previous_producer_id,
            next_producer_id: transit.next_producer_id,
            producer_epoch: transit.producer_epoch,
            last_producer_epoch: transit.last_producer_epoch,
            txn_timeout_ms: transit.txn_timeout_ms,
            state: transit.state,
            partitions: transit.partitions,
            txn_start_timestamp_ms: transit.txn_start_timestamp_ms,
            txn_last_update_timestamp_ms: transit.txn_last_update_timestamp_ms,
            client_transaction_version: transit.client_transaction_version,
            pending_state: None,
            has_failed_epoch_fence: base.has_failed_epoch_fence,
        })
    }

    /// The write failed: the base without its pending state. After a fencing abort the bumped
    /// epoch stays (older producers remain fenced) and the next fence will not bump it again.
    pub fn abandon(self, was_epoch_fence: bool) -> TransactionMetadata {
        let mut base = self.base;
        base.pending_state = None;
        if was_epoch_fence {
            base.has_failed_epoch_fence = true;
        }
        base
    }
}

/// Kafka's `validProducerEpoch`: the producer id and epoch a transition may carry.
pub(super) fn valid_producer_epoch(base: &TransactionMetadata, transit: &TxnTransit) -> bool {
    let v2 = transit.client_transaction_version.supports_epoch_bump();
    match transit.state {
        // The overflow completion: a new producer id at epoch 0.
        CompleteCommit | CompleteAbort if v2 && transit.producer_epoch == 0 => {
            transit.last_producer_epoch == base.last_producer_epoch
                && transit.previous_producer_id == base.producer_id
        }
        PrepareCommit | PrepareAbort if v2 => {
            transit.last_producer_epoch == base.producer_epoch
                && transit.producer_id == base.producer_id
        }
        _ => {
            transit.producer_epoch == base.producer_epoch && transit.producer_id == base.producer_id
        }
    }
}

pub(super) fn valid_epoch_bump(base: &TransactionMetadata, transit: &TxnTransit) -> bool {
    i32::from(transit.producer_epoch) == i32::from(base.producer_epoch) + 1
        || (transit.producer_epoch == 0 && transit.producer_id != base.producer_id)
}

/// A producer id and epoch a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl ProducerIdAndEpoch {
    /// InitProducerId's optional pair (KIP-360): both -1 is none, one of them -1 is
    /// INVALID_REQUEST.
    pub fn from_init_request(
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<Option<ProducerIdAndEpoch>, TxnError> {
        match (
            producer_id == NO_PRODUCER_ID,
            producer_epoch == NO_PRODUCER_EPOCH,
        ) {
            (true, true) => Ok(None),
            (false, false) => Ok(Some(ProducerIdAndEpoch {
                producer_id,
                producer_epoch,
            })),
            _ => Err(TxnError::InvalidRequest),
        }
    }
}

// One file per decision; the types above are what they share.
mod end_txn;
mod fence;
mod init_producer_id;
mod partitions;
mod timers;

pub use end_txn::*;
use fence::*;
pub use init_producer_id::*;
pub use partitions::*;
pub use timers::*;

#[cfg(test)]
mod tests;
