//! What the coordinator's timers decide: aborting transactions past their timeout, expiring
//! idle transactional ids.

use super::*;

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
