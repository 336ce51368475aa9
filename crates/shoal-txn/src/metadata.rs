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
fn prepare(base: TransactionMetadata, transit: TxnTransit) -> Result<Transition, TxnError> {
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
fn valid_producer_epoch(base: &TransactionMetadata, transit: &TxnTransit) -> bool {
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

fn valid_epoch_bump(base: &TransactionMetadata, transit: &TxnTransit) -> bool {
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

/// InitProducerId with a transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    pub transactional_id: String,
    pub transaction_timeout_ms: i32,
    /// KIP-360: the id and epoch the producer last had, when it is recovering from an error.
    pub expected: Option<ProducerIdAndEpoch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitProducerIdOutcome {
    /// Write; once written, answer with the transit's producer id and epoch.
    Bump(Transition),
    /// A transaction is open: it is aborted with a bumped epoch (fencing the producer that
    /// opened it). Write the PrepareAbort, send the abort markers, and answer
    /// CONCURRENT_TRANSACTIONS (or the write's error), so the client retries and gets its
    /// epoch once the abort completes. On a failed write: `abandon(true)`.
    FenceAndAbort(Transition),
}

/// InitProducerId with a transactional id: a new producer id, or the next epoch of the
/// current one (fencing any older producer), or a new producer id when the epoch is exhausted.
/// `existing` is the id's current metadata, `None` if unknown (then one is created with a
/// producer id from `allocate_producer_id`).
pub fn init_producer_id<F>(
    existing: Option<&TransactionMetadata>,
    request: &InitProducerIdRequest,
    settings: &TxnSettings,
    now_ms: i64,
    allocate_producer_id: F,
) -> Result<InitProducerIdOutcome, TxnError>
where
    F: FnOnce() -> Result<i64, TxnError>,
{
    validate_transactional_id(&request.transactional_id)?;
    validate_transaction_timeout_ms(request.transaction_timeout_ms, settings)?;
    let mut allocate = Some(allocate_producer_id);
    let mut next_id = || match allocate.take() {
        Some(f) => f(),
        None => Err(TxnError::UnknownServerError),
    };
    let meta = match existing {
        Some(meta) => meta.clone(),
        None => TransactionMetadata::new(
            &request.transactional_id,
            next_id()?,
            request.transaction_timeout_ms,
            now_ms,
        ),
    };
    if meta.pending_state.is_some() {
        return Err(TxnError::ConcurrentTransactions);
    }
    if let Some(expected) = request.expected {
        // Not fenced: a just-created id (recovering from UNKNOWN_PRODUCER_ID), the current
        // producer id (the epoch is checked below), or the previous one with an exhausted epoch
        // (a retry of a bump to a new producer id whose answer was lost).
        let valid = meta.producer_epoch == NO_PRODUCER_EPOCH
            || expected.producer_id == meta.producer_id
            || (expected.producer_id == meta.previous_producer_id
                && is_epoch_exhausted(expected.producer_epoch));
        if !valid {
            return Err(TxnError::ProducerFenced);
        }
    }
    match meta.state {
        PrepareCommit | PrepareAbort => Err(TxnError::ConcurrentTransactions),
        Empty | CompleteCommit | CompleteAbort => {
            let rotate = meta.is_producer_epoch_exhausted()
                && request
                    .expected
                    .is_none_or(|e| e.producer_epoch == meta.producer_epoch);
            let transition = if rotate {
                let new_producer_id = next_id()?;
                rotate_producer_id(
                    &meta,
                    new_producer_id,
                    request.transaction_timeout_ms,
                    now_ms,
                    request.expected.is_some(),
                )?
            } else {
                increment_producer_epoch(
                    &meta,
                    request.transaction_timeout_ms,
                    request.expected.map(|e| e.producer_epoch),
                    now_ms,
                )?
            };
            Ok(InitProducerIdOutcome::Bump(transition))
        }
        Ongoing => Ok(InitProducerIdOutcome::FenceAndAbort(fence_and_abort(
            &meta,
            settings.server_transaction_version,
            now_ms,
        )?)),
        Dead | PrepareEpochFence => Err(TxnError::UnknownServerError),
    }
}

/// Kafka's `prepareIncrementProducerEpoch`.
fn increment_producer_epoch(
    meta: &TransactionMetadata,
    new_txn_timeout_ms: i32,
    expected_epoch: Option<i16>,
    now_ms: i64,
) -> Result<Transition, TxnError> {
    if meta.is_producer_epoch_exhausted() {
        // Kafka throws here (IllegalStateException): reached only when the epoch is exhausted
        // and the producer expected another one.
        return Err(TxnError::UnknownServerError);
    }
    let bumped = meta.producer_epoch + 1;
    let (producer_epoch, last_producer_epoch) = match expected_epoch {
        // A new producer: whoever had the id before is fenced.
        None => (bumped, NO_PRODUCER_EPOCH),
        // The same producer recovering after an error (or a brand-new id).
        Some(e) if meta.producer_epoch == NO_PRODUCER_EPOCH || e == meta.producer_epoch => {
            (bumped, meta.producer_epoch)
        }
        // A retry of a bump that succeeded: the same answer again.
        Some(e) if e == meta.last_producer_epoch => (meta.producer_epoch, meta.last_producer_epoch),
        Some(_) => return Err(TxnError::ProducerFenced),
    };
    let mut transit = meta.transit_to(Empty);
    transit.producer_epoch = producer_epoch;
    transit.last_producer_epoch = last_producer_epoch;
    transit.txn_timeout_ms = new_txn_timeout_ms;
    transit.partitions.clear();
    transit.txn_start_timestamp_ms = NO_TIMESTAMP_MS;
    transit.txn_last_update_timestamp_ms = now_ms;
    prepare(meta.clone(), transit)
}

/// Kafka's `prepareProducerIdRotation`: an exhausted epoch is replaced by a new producer id.
fn rotate_producer_id(
    meta: &TransactionMetadata,
    new_producer_id: i64,
    new_txn_timeout_ms: i32,
    now_ms: i64,
    record_last_epoch: bool,
) -> Result<Transition, TxnError> {
    if meta.has_open_transaction() {
        return Err(TxnError::UnknownServerError);
    }
    let mut transit = meta.transit_to(Empty);
    transit.producer_id = new_producer_id;
    transit.producer_epoch = 0;
    transit.last_producer_epoch = if record_last_epoch {
        meta.producer_epoch
    } else {
        NO_PRODUCER_EPOCH
    };
    transit.txn_timeout_ms = new_txn_timeout_ms;
    transit.partitions.clear();
    transit.txn_start_timestamp_ms = NO_TIMESTAMP_MS;
    transit.txn_last_update_timestamp_ms = now_ms;
    prepare(meta.clone(), transit)
}

/// The coordinator aborts an open transaction itself (a newer producer, or the timeout):
/// Kafka's `prepareFenceProducerEpoch` followed by `endTransaction(ABORT, isFromClient = false)`
/// with the cluster's transaction version. The epoch is bumped (once only, if an earlier fence
/// failed to write; never past `i16::MAX`), and with transaction version 2 bumped once more by
/// the abort itself.
fn fence_and_abort(
    meta: &TransactionMetadata,
    server_version: TransactionVersion,
    now_ms: i64,
) -> Result<Transition, TxnError> {
    if meta.state != Ongoing || meta.pending_state.is_some() {
        return Err(TxnError::UnknownServerError);
    }
    let fenced_epoch = if meta.has_failed_epoch_fence || meta.producer_epoch == i16::MAX {
        meta.producer_epoch
    } else {
        meta.producer_epoch + 1
    };
    // Kafka bumps the in-memory epoch before the write: from here on the old producer is
    // fenced, whether or not the write succeeds.
    let mut base = meta.clone();
    base.producer_epoch = fenced_epoch;
    base.last_producer_epoch = NO_PRODUCER_EPOCH;
    let version = if server_version.supports_epoch_bump() {
        server_version
    } else {
        TransactionVersion::Tv0
    };
    let transit = abort_or_commit(&base, PrepareAbort, version, NO_PRODUCER_ID, now_ms, false)?;
    prepare(base, transit)
}

/// Kafka's `prepareAbortOrCommit`.
fn abort_or_commit(
    meta: &TransactionMetadata,
    new_state: TransactionState,
    client_version: TransactionVersion,
    next_producer_id: i64,
    now_ms: i64,
    no_partition_added: bool,
) -> Result<TxnTransit, TxnError> {
    let mut transit = meta.transit_to(new_state);
    if client_version.supports_epoch_bump() {
        transit.producer_epoch = if meta.producer_epoch == i16::MAX && new_state == PrepareAbort {
            // Already at the fencing epoch: let the abort through without overflowing.
            i16::MAX
        } else {
            meta.producer_epoch
                .checked_add(1)
                .ok_or(TxnError::UnknownServerError)?
        };
        transit.last_producer_epoch = meta.producer_epoch;
    }
    // With version 2 a client may abort with no partition added; the start is then now.
    if no_partition_added {
        transit.txn_start_timestamp_ms = now_ms;
    }
    transit.next_producer_id = next_producer_id;
    transit.txn_last_update_timestamp_ms = now_ms;
    transit.client_transaction_version = client_version;
    Ok(transit)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddPartitionsOutcome {
    /// Every partition is already in the open transaction: answer NONE, write nothing.
    AlreadyAdded,
    /// Write; once written, answer NONE.
    Write(Transition),
}

/// AddPartitionsToTxn: the partitions join the transaction (opening it if none is open).
/// `meta` is the id's metadata, `None` if the coordinator does not know it.
pub fn add_partitions(
    meta: Option<&TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TopicPartition>,
    client_version: TransactionVersion,
    now_ms: i64,
) -> Result<AddPartitionsOutcome, TxnError> {
    let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if meta.pending_state.is_some() || matches!(meta.state, PrepareCommit | PrepareAbort) {
        return Err(TxnError::ConcurrentTransactions);
    }
    if meta.state == Ongoing && partitions.is_subset(&meta.partitions) {
        return Ok(AddPartitionsOutcome::AlreadyAdded);
    }
    let mut transit = meta.transit_to(Ongoing);
    if matches!(meta.state, Empty | CompleteCommit | CompleteAbort) {
        transit.txn_start_timestamp_ms = now_ms;
    }
    transit.partitions.extend(partitions.iter().cloned());
    transit.txn_last_update_timestamp_ms = now_ms;
    transit.client_transaction_version = client_version;
    prepare(meta.clone(), transit).map(AddPartitionsOutcome::Write)
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition (`offsets_partition`, the one
/// the group id hashes to) joins the transaction, exactly as AddPartitionsToTxn would add it.
pub fn add_offsets(
    meta: Option<&TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    offsets_partition: i32,
    client_version: TransactionVersion,
    now_ms: i64,
) -> Result<AddPartitionsOutcome, TxnError> {
    let partitions = BTreeSet::from([(CONSUMER_OFFSETS_TOPIC.to_string(), offsets_partition)]);
    add_partitions(
        meta,
        producer_id,
        producer_epoch,
        &partitions,
        client_version,
        now_ms,
    )
}

/// AddPartitionsToTxn's per-partition answer when some partitions name unknown topics (or
/// partitions): those get UNKNOWN_TOPIC_OR_PARTITION, every other one OPERATION_NOT_ATTEMPTED,
/// and nothing is added. `None` when all are known.
pub fn reject_unknown_partitions(
    partitions: &BTreeSet<TopicPartition>,
    is_known: impl Fn(&TopicPartition) -> bool,
) -> Option<BTreeMap<TopicPartition, TxnError>> {
    if partitions.iter().all(&is_known) {
        return None;
    }
    Some(
        partitions
            .iter()
            .map(|tp| {
                let error = if is_known(tp) {
                    TxnError::OperationNotAttempted
                } else {
                    TxnError::UnknownTopicOrPartition
                };
                (tp.clone(), error)
            })
            .collect(),
    )
}

/// AddPartitionsToTxn's verify-only batches (KIP-890 part 1, sent by partition leaders before
/// a transactional write): is each partition in this producer's open transaction? A partition
/// that is not gets TRANSACTION_ABORTABLE, so a late write never joins a finished transaction.
/// A write in flight is not checked (the append itself is checked again).
pub fn verify_partitions(
    meta: Option<&TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TopicPartition>,
) -> Result<BTreeMap<TopicPartition, Result<(), TxnError>>, TxnError> {
    let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
    if meta.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if matches!(meta.state, PrepareCommit | PrepareAbort) {
        return Err(TxnError::ConcurrentTransactions);
    }
    Ok(partitions
        .iter()
        .map(|tp| {
            let answer = if meta.partitions.contains(tp) {
                Ok(())
            } else {
                Err(TxnError::TransactionAbortable)
            };
            (tp.clone(), answer)
        })
        .collect())
}

/// EndTxn's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnResult {
    Commit,
    Abort,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub result: TxnResult,
    /// [`TransactionVersion::for_end_txn`] of the request.
    pub client_version: TransactionVersion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndTxnOutcome {
    /// A retry of an EndTxn that already completed: answer NONE with this producer id and
    /// epoch (version 2; -1/-1 for the classic protocol). Nothing to write.
    AlreadyDone {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// Write the PrepareCommit/PrepareAbort; once written, [`prepare_complete`], answer NONE
    /// ([`end_txn_response`]) and send the markers.
    Prepare(Transition),
}

/// EndTxn from a client: commit or abort the open transaction. `meta` is the id's metadata,
/// `None` if unknown. With transaction version 2 the epoch is bumped, and an exhausted epoch
/// takes a new producer id from `allocate_producer_id` for when the transaction completes.
pub fn end_txn<F>(
    meta: Option<&TransactionMetadata>,
    request: &EndTxnRequest,
    now_ms: i64,
    allocate_producer_id: F,
) -> Result<EndTxnOutcome, TxnError>
where
    F: FnOnce() -> Result<i64, TxnError>,
{
    let meta = meta.ok_or(TxnError::InvalidProducerIdMapping)?;
    if request.client_version.supports_epoch_bump() {
        end_txn_v2(meta, request, now_ms, allocate_producer_id)
    } else {
        end_txn_v1(meta, request, now_ms)
    }
}

fn end_txn_v1(
    meta: &TransactionMetadata,
    request: &EndTxnRequest,
    now_ms: i64,
) -> Result<EndTxnOutcome, TxnError> {
    if meta.producer_id != request.producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != request.producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if meta.pending_state.is_some() {
        return Err(TxnError::ConcurrentTransactions);
    }
    let done = EndTxnOutcome::AlreadyDone {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
    };
    match (meta.state, request.result) {
        (Ongoing, result) => {
            let next = prepare_state(result);
            let transit = abort_or_commit(
                meta,
                next,
                TransactionVersion::Tv0,
                NO_PRODUCER_ID,
                now_ms,
                false,
            )?;
            prepare(meta.clone(), transit).map(EndTxnOutcome::Prepare)
        }
        (CompleteCommit, TxnResult::Commit) | (CompleteAbort, TxnResult::Abort) => Ok(done),
        (PrepareCommit, TxnResult::Commit) | (PrepareAbort, TxnResult::Abort) => {
            Err(TxnError::ConcurrentTransactions)
        }
        (Empty | CompleteCommit | CompleteAbort | PrepareCommit | PrepareAbort, _) => {
            Err(TxnError::InvalidTxnState)
        }
        (Dead | PrepareEpochFence, _) => Err(TxnError::UnknownServerError),
    }
}

/// Transaction version 2: every EndTxn bumps the epoch, so "same epoch" means the next
/// EndTxn and a retry carries the epoch before the bump. Kafka's table (PF = PRODUCER_FENCED,
/// ITS = INVALID_TXN_STATE, retry = the request's epoch is one below the current one):
///
/// | state          | abort, retry | abort, current | commit, retry | commit, current |
/// |----------------|--------------|----------------|---------------|-----------------|
/// | Empty          | PF           | bump           | PF            | ITS             |
/// | CompleteAbort  | NONE         | bump           | ITS           | ITS             |
/// | CompleteCommit | ITS          | bump           | NONE          | ITS             |
fn end_txn_v2<F>(
    meta: &TransactionMetadata,
    request: &EndTxnRequest,
    now_ms: i64,
    allocate_producer_id: F,
) -> Result<EndTxnOutcome, TxnError>
where
    F: FnOnce() -> Result<i64, TxnError>,
{
    let epoch = i32::from(request.producer_epoch);
    let current = i32::from(meta.producer_epoch);
    // A retry of an EndTxn that overflowed the epoch: the new producer id is current at 0.
    let retry_on_overflow = meta.previous_producer_id == request.producer_id
        && request.producer_epoch == i16::MAX - 1
        && meta.producer_epoch == 0;
    let retry_on_epoch_bump = current == epoch + 1;
    let valid_epoch = match meta.state {
        Ongoing | Empty | Dead | PrepareEpochFence => epoch == current,
        PrepareCommit | PrepareAbort => retry_on_epoch_bump,
        CompleteCommit | CompleteAbort => {
            retry_on_epoch_bump || retry_on_overflow || epoch == current
        }
    };
    let is_retry = retry_on_epoch_bump || retry_on_overflow;
    if meta.producer_id != request.producer_id && !retry_on_overflow {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if meta.pending_state.is_some() {
        return Err(TxnError::ConcurrentTransactions);
    }
    let complete = |next: TransactionState, no_partition_added: bool| {
        let next_producer_id = if meta.is_producer_epoch_exhausted() {
            allocate_producer_id()?
        } else {
            NO_PRODUCER_ID
        };
        let transit = abort_or_commit(
            meta,
            next,
            request.client_version,
            next_producer_id,
            now_ms,
            no_partition_added,
        )?;
        prepare(meta.clone(), transit).map(EndTxnOutcome::Prepare)
    };
    let done = EndTxnOutcome::AlreadyDone {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
    };
    match (meta.state, request.result) {
        (Ongoing, result) => complete(prepare_state(result), false),
        (CompleteCommit, TxnResult::Commit) | (CompleteAbort, TxnResult::Abort) if is_retry => {
            Ok(done)
        }
        (CompleteCommit, TxnResult::Abort) if is_retry => Err(TxnError::InvalidTxnState),
        (Empty | CompleteCommit | CompleteAbort, TxnResult::Abort) => complete(PrepareAbort, true),
        (PrepareCommit, TxnResult::Commit) | (PrepareAbort, TxnResult::Abort) => {
            Err(TxnError::ConcurrentTransactions)
        }
        (Empty | CompleteCommit | CompleteAbort | PrepareCommit | PrepareAbort, _) => {
            Err(TxnError::InvalidTxnState)
        }
        (Dead | PrepareEpochFence, _) => Err(TxnError::UnknownServerError),
    }
}

fn prepare_state(result: TxnResult) -> TransactionState {
    match result {
        TxnResult::Commit => PrepareCommit,
        TxnResult::Abort => PrepareAbort,
    }
}

/// The PrepareCommit/PrepareAbort is written: the markers go out, and once every partition
/// has its marker the returned CompleteCommit/CompleteAbort is written (Kafka's
/// `prepareComplete`; also what a new coordinator does with a Prepare state it loads). The
/// partitions are cleared; with version 2 an overflowed epoch moves to `next_producer_id` at 0.
pub fn prepare_complete(meta: &TransactionMetadata, now_ms: i64) -> Result<Transition, TxnError> {
    let target = match meta.state {
        PrepareCommit => CompleteCommit,
        PrepareAbort => CompleteAbort,
        _ => return Err(TxnError::UnknownServerError),
    };
    let mut base = meta.clone();
    // The Prepare state is written, so an earlier failed fence is behind us.
    base.has_failed_epoch_fence = false;
    let mut transit = meta.transit_to(target);
    if meta.client_transaction_version.supports_epoch_bump()
        && meta.next_producer_id != NO_PRODUCER_ID
    {
        transit.producer_id = meta.next_producer_id;
        transit.producer_epoch = 0;
    }
    transit.partitions.clear();
    transit.txn_last_update_timestamp_ms = now_ms;
    prepare(base, transit)
}

/// EndTxn's answer once its Prepare state is written: the producer id and epoch the client
/// continues with (version 2: the bumped epoch, or the new producer id at 0 after an
/// overflow), -1/-1 for the classic protocol. `complete` is [`prepare_complete`]'s transit.
pub fn end_txn_response(client_version: TransactionVersion, complete: &TxnTransit) -> (i64, i16) {
    if client_version.supports_epoch_bump() {
        (complete.producer_id, complete.producer_epoch)
    } else {
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
    }
}

/// Has this open transaction outlived its `transaction.timeout.ms` at `now_ms`? (Kafka's
/// `timedOutTransactions`: strictly past start + timeout, and no write in flight.)
pub fn is_timed_out(meta: &TransactionMetadata, now_ms: i64) -> bool {
    meta.pending_state.is_none()
        && meta.state == Ongoing
        && meta
            .txn_start_timestamp_ms
            .saturating_add(i64::from(meta.txn_timeout_ms))
            < now_ms
}

/// The coordinator aborts a timed-out transaction, fencing its producer (the epoch is bumped,
/// so the producer's next request is refused and it must re-initialise). `seen_producer_id`
/// is the producer id seen when the transaction was found timed out; `None` when the id has
/// moved on since (another producer id, a write in flight, no longer Ongoing): skip it.
pub fn abort_timed_out(
    meta: &TransactionMetadata,
    seen_producer_id: i64,
    settings: &TxnSettings,
    now_ms: i64,
) -> Result<Option<Transition>, TxnError> {
    if meta.producer_id != seen_producer_id || meta.pending_state.is_some() || meta.state != Ongoing
    {
        return Ok(None);
    }
    fence_and_abort(meta, settings.server_transaction_version, now_ms).map(Some)
}

/// May this transactional id be forgotten at `now_ms`? No transaction open, no write in
/// flight, and no update for `transactional.id.expiration.ms`.
pub fn should_expire(meta: &TransactionMetadata, now_ms: i64, settings: &TxnSettings) -> bool {
    meta.pending_state.is_none()
        && meta.state.is_expiration_allowed()
        && meta.txn_last_update_timestamp_ms
            <= now_ms.saturating_sub(settings.transactional_id_expiration_ms)
}

/// The expiration: write the id's tombstone, then drop it (Kafka's `prepareDead`).
pub fn prepare_dead(meta: &TransactionMetadata) -> Result<Transition, TxnError> {
    let mut transit = meta.transit_to(Dead);
    transit.partitions.clear();
    prepare(meta.clone(), transit)
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
