//! EndTxn in both transaction versions, and completion once every marker is written.

use super::*;

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
