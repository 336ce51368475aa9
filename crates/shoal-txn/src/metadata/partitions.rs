//! AddPartitionsToTxn and AddOffsetsToTxn: partitions join the open transaction; and the
//! verify-only check partition leaders make before a transactional write (KIP-890 part 1).

use super::*;

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
