//! InitProducerId with a transactional id: a new producer id, an epoch bump that fences older
//! producers (KIP-360 recovery included), or a new producer id when the epoch is exhausted.

use super::*;

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
pub(super) fn increment_producer_epoch(
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
pub(super) fn rotate_producer_id(
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
