//! The coordinator's own aborts: fencing an open transaction (a newer producer, its timeout)
//! and the prepare step both EndTxn and the fence share.

use super::*;

/// The coordinator aborts an open transaction itself (a newer producer, or the timeout):
/// Kafka's `prepareFenceProducerEpoch` followed by `endTransaction(ABORT, isFromClient = false)`
/// with the cluster's transaction version.
///
/// Classic (version 0/1): the epoch is bumped in memory before the write, so the old producer
/// is fenced whether or not the write succeeds (once only if an earlier fence failed to write;
/// never past `i16::MAX`), and the abort and its markers carry that epoch.
///
/// Version 2: one bump in all, the abort's own (e → e+1, as Kafka 4.1 after KAFKA-19367; 4.0.0
/// bumped twice). The stored epoch moves with the write; a failed write leaves it, and the next
/// attempt bumps from it again. A version-2 producer still at e that then aborts is answered
/// as a retry (NONE, e+1) instead of being fenced.
pub(super) fn fence_and_abort(
    meta: &TransactionMetadata,
    server_version: TransactionVersion,
    now_ms: i64,
) -> Result<Transition, TxnError> {
    if meta.state != Ongoing || meta.pending_state.is_some() {
        return Err(TxnError::UnknownServerError);
    }
    if server_version.supports_epoch_bump() {
        let transit = abort_or_commit(
            meta,
            PrepareAbort,
            server_version,
            NO_PRODUCER_ID,
            now_ms,
            false,
        )?;
        return prepare(meta.clone(), transit);
    }
    let fenced_epoch = if meta.has_failed_epoch_fence || meta.producer_epoch == i16::MAX {
        meta.producer_epoch
    } else {
        meta.producer_epoch + 1
    };
    let mut base = meta.clone();
    base.producer_epoch = fenced_epoch;
    base.last_producer_epoch = NO_PRODUCER_EPOCH;
    let transit = abort_or_commit(
        &base,
        PrepareAbort,
        TransactionVersion::Tv0,
        NO_PRODUCER_ID,
        now_ms,
        false,
    )?;
    prepare(base, transit)
}

/// Kafka's `prepareAbortOrCommit`.
pub(super) fn abort_or_commit(
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
