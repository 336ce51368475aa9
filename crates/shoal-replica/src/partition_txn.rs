//! The leader's side of transactions at a [`Partition`]: appends checked against the producer
//! state (epochs, sequences, transaction state, KIP-890 verification), transaction markers from
//! the coordinator, the last stable offset, and what DescribeProducers / DescribeTransactions
//! report. Followers and restarts reach the same state from the log (`producer_replay`).
//!
//! **Order of a leader append.** Check every batch against the producer state (nothing is
//! written if one fails) → append to the log → record each batch at its assigned offset →
//! append the entries of ABORT markers to the aborted-transaction index → move the log end,
//! the high watermark and the last stable offset. All under the state lock, so no other write
//! comes between. If the index cannot be written the log goes offline (see
//! `Log::append_aborted_txn`) rather than let the LSO pass an abort it does not list.
//!
//! **The last stable offset** is `min(first unstable offset, high watermark)` (Kafka's
//! `UnifiedLog.lastStableOffset`), recomputed after every append, marker, high watermark
//! change and truncation, on leaders and followers alike, and published in a watch channel.
//! On a leader it never moves back: a new transaction starts at the log end, above it.

use shoal_log::batch::{RecordBatchHeader, batches};
use shoal_log::control::{build_marker_batch, parse_marker};

use super::*;
use crate::producer_replay::stored_batch;
use crate::producer_state::{DataBatch, ProducerStateError};
use crate::transaction::{
    AppendOrigin, OngoingTxn, ProducerEntryInfo, TxnMarker, VerificationGuard,
};

impl From<ProducerStateError> for PartitionError {
    fn from(error: ProducerStateError) -> Self {
        match error {
            ProducerStateError::InvalidProducerEpoch { current, got } => {
                Self::InvalidProducerEpoch { current, got }
            }
            ProducerStateError::OutOfOrderSequence { expected, got } => {
                Self::OutOfOrderSequence { expected, got }
            }
            ProducerStateError::InvalidTxnState => Self::InvalidTxnState,
            ProducerStateError::TransactionCoordinatorFenced { current, got } => {
                Self::TransactionCoordinatorFenced { current, got }
            }
        }
    }
}

/// A request's batches as checked: each header and where the batch starts in the request,
/// and whether the request retries an already written batch.
pub(super) struct CheckedAppend {
    batches: Vec<(RecordBatchHeader, usize)>,
    duplicate: Option<BatchMetadata>,
}

impl Partition {
    /// Appends batches as leader on behalf of `origin` (see the module docs); a client's
    /// Produce is `AppendOrigin::Client`, the coordinators' writes `AppendOrigin::Coordinator`.
    /// Order-sensitive: callers run it in request order.
    pub fn append_as_leader_from(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendResult, PartitionError> {
        self.append_as_leader_checked(records, acks, now_ms, origin, None)
    }

    /// As [`Self::append_as_leader_from`], only while this replica leads in `leader_epoch`
    /// (checked under the lock the append holds): a coordinator that loaded its state at that
    /// epoch never writes into a later leadership it did not read. Else NOT_LEADER_OR_FOLLOWER.
    pub fn append_as_leader_in_epoch(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
        origin: AppendOrigin,
        leader_epoch: i32,
    ) -> Result<AppendResult, PartitionError> {
        self.append_as_leader_checked(records, acks, now_ms, origin, Some(leader_epoch))
    }

    fn append_as_leader_checked(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
        origin: AppendOrigin,
        expected_leader_epoch: Option<i32>,
    ) -> Result<AppendResult, PartitionError> {
        let mut st = lock(&self.state);
        self.append_locked(
            &mut st,
            records,
            acks,
            now_ms,
            origin,
            expected_leader_epoch,
            AppendWait::Block,
        )?
        .ok_or(PartitionError::Closed)
    }

    /// [`Self::append_as_leader_in_epoch`] for a small append on an async thread: done only if
    /// it waits for no lock and only writes into the page cache (no roll, no fsync, no epoch
    /// checkpoint; see `SharedLog::try_append_as_leader_light`) and is at most
    /// [`LIGHT_APPEND_MAX_BYTES`]. `None`, with nothing done, when it would block: the caller
    /// then runs the blocking call on a blocking thread.
    pub fn try_append_as_leader_in_epoch_light(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
        origin: AppendOrigin,
        leader_epoch: i32,
    ) -> Option<Result<AppendResult, PartitionError>> {
        if records.len() > LIGHT_APPEND_MAX_BYTES {
            return None;
        }
        let mut st = try_lock(&self.state)?;
        self.append_locked(
            &mut st,
            records,
            acks,
            now_ms,
            origin,
            Some(leader_epoch),
            AppendWait::Light,
        )
        .transpose()
    }

    /// The append under the state lock. With [`AppendWait::Light`], `Ok(None)` (nothing
    /// changed) when the log append would block; with [`AppendWait::Block`], never.
    #[allow(clippy::too_many_arguments)]
    fn append_locked(
        &self,
        st: &mut ReplicaState,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
        origin: AppendOrigin,
        expected_leader_epoch: Option<i32>,
        wait: AppendWait,
    ) -> Result<Option<AppendResult>, PartitionError> {
        if !st.state.is_leader(self.local_broker_id)
            || expected_leader_epoch.is_some_and(|e| e != st.state.leader_epoch)
        {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        st.latest_now_ms = st.latest_now_ms.max(now_ms);
        let isr_size = st.state.isr.len();
        if precheck_append(acks, isr_size, st.min_insync_replicas)
            == AppendPrecheck::NotEnoughReplicas
        {
            return Err(PartitionError::NotEnoughReplicas {
                isr: isr_size,
                min: st.min_insync_replicas,
            });
        }
        let leader_epoch = st.state.leader_epoch;
        let checked =
            check_leader_batches(&st.producers, records, origin, st.txn_verification_enabled)?;
        if let Some(duplicate) = checked.duplicate {
            let log_start_offset = self.read_log(|log| Ok(log.log_start_offset()))?;
            let info = AppendInfo {
                first_offset: duplicate.first_offset,
                last_offset: duplicate.last_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                log_append_time_ms: -1,
                record_count: 0,
                size_bytes: 0,
            };
            return Ok(Some(AppendResult {
                info,
                log_start_offset,
                duplicate: true,
                leader_epoch,
            }));
        }
        let appended = match wait {
            AppendWait::Block => self.on_log(|log| {
                Ok(log.append_as_leader_from(records, leader_epoch, now_ms, origin.log_origin())?)
            })?,
            AppendWait::Light => {
                let Some(open) = try_read(&self.log) else {
                    return Ok(None);
                };
                let log = open.as_ref().ok_or(PartitionError::Closed)?;
                match log.try_append_as_leader_light(
                    records,
                    leader_epoch,
                    now_ms,
                    origin.log_origin(),
                ) {
                    None => return Ok(None),
                    Some(appended) => appended?,
                }
            }
        };
        let shoal_log::Appended {
            info,
            log_end_offset,
            log_start_offset,
        } = appended;
        let mut aborted = Vec::new();
        let mut next_offset = info.first_offset;
        for (mut header, position) in checked.batches {
            // The batch as stored: its offsets, and the broker's time under LogAppendTime.
            header.base_offset = next_offset;
            next_offset = header.next_offset();
            if info.log_append_time_ms >= 0 {
                header.max_timestamp = info.log_append_time_ms;
            }
            let bytes = records
                .get(position..position + header.size_bytes())
                .unwrap_or_default();
            if let Some(stored) = stored_batch(&header, bytes) {
                aborted.extend(st.producers.apply(&stored, now_ms).aborted);
            }
        }
        self.set_log_end_offset(st, log_end_offset);
        let indexed = self.append_aborted_txns(&aborted);
        self.maybe_advance_high_watermark(st);
        indexed?;
        Ok(Some(AppendResult {
            info,
            log_start_offset,
            duplicate: false,
            leader_epoch,
        }))
    }

    /// WriteTxnMarkers for this partition, on its leader: writes the COMMIT or ABORT control
    /// batch, ends the producer's transaction (moving the LSO once the high watermark passes
    /// the marker) and, for an ABORT, records it in the aborted-transaction index. Refused with
    /// `InvalidProducerEpoch` for an older producer epoch and `TransactionCoordinatorFenced`
    /// for an older coordinator epoch. The caller waits with
    /// `wait_for_acks(info.last_offset + 1)`.
    pub fn write_txn_marker(
        &self,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Result<AppendResult, PartitionError> {
        let batch = build_marker_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.control,
            now_ms,
        );
        // Kafka writes markers with acks=all.
        self.append_as_leader_from(
            &batch,
            RequiredAcks::AllInSync,
            now_ms,
            AppendOrigin::COORDINATOR,
        )
    }

    /// [`Self::write_txn_marker`] as [`Self::try_append_as_leader_in_epoch_light`]: `None`,
    /// with nothing done, when it would block.
    pub fn try_write_txn_marker_light(
        &self,
        marker: &TxnMarker,
        now_ms: i64,
    ) -> Option<Result<AppendResult, PartitionError>> {
        // An abort writes the aborted-transaction index too, which waits for the log's
        // writer: aborts take the blocking path.
        if marker.control == ControlType::Abort {
            return None;
        }
        let batch = build_marker_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.control,
            now_ms,
        );
        let mut st = try_lock(&self.state)?;
        self.append_locked(
            &mut st,
            &batch,
            RequiredAcks::AllInSync,
            now_ms,
            AppendOrigin::COORDINATOR,
            None,
            AppendWait::Light,
        )
        .transpose()
    }

    /// KIP-890 part 1: `Some(guard)` if a transactional write by this producer here must first
    /// be verified with the coordinator (it has no open transaction here at `producer_epoch`);
    /// `first_sequence` is the write's first sequence (`-1` for the coordinator's own writes),
    /// kept as the lowest one verified (see `Verifications::lowest_sequence`);
    /// the write then carries the guard in `AppendOrigin::Client`. `None`: no check needed
    /// (its transaction is open here, or verification is off). Takes the state lock, which a
    /// leader append holds across its disk write: async callers run it on a blocking thread,
    /// or try [`Self::try_txn_verification_needed`] first.
    pub fn txn_verification_needed(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        supports_epoch_bump: bool,
        first_sequence: i32,
    ) -> Option<VerificationGuard> {
        let mut st = lock(&self.state);
        verification_needed(
            &mut st,
            producer_id,
            producer_epoch,
            supports_epoch_bump,
            first_sequence,
        )
    }

    /// [`Self::txn_verification_needed`] if the state lock is free at once; `None` when an
    /// append (or anything else) holds it. Lets async callers skip a trip to the blocking pool
    /// in the common case: the lock is held only across appends and short updates.
    pub fn try_txn_verification_needed(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        supports_epoch_bump: bool,
        first_sequence: i32,
    ) -> Option<Option<VerificationGuard>> {
        let mut st = try_lock(&self.state)?;
        Some(verification_needed(
            &mut st,
            producer_id,
            producer_epoch,
            supports_epoch_bump,
            first_sequence,
        ))
    }

    /// Kafka's `transaction.partition.verification.enable` (default on). Off, a client's
    /// transactional write opens a transaction here without a verification guard.
    pub fn set_txn_verification_enabled(&self, enabled: bool) {
        lock(&self.state).txn_verification_enabled = enabled;
    }

    /// The last stable offset: `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        *self.last_stable_offset.borrow()
    }

    pub fn subscribe_last_stable_offset(&self) -> watch::Receiver<i64> {
        self.last_stable_offset.subscribe()
    }

    /// The LSO for an offset query (ListOffsets LATEST with READ_COMMITTED), under the same
    /// condition as [`Self::high_watermark_for_offset_query`].
    pub fn last_stable_offset_for_offset_query(&self) -> Result<i64, PartitionError> {
        let st = lock(&self.state);
        if st.state.is_leader(self.local_broker_id)
            && !offsets_available(st.high_watermark, st.leader_epoch_start_offset)
        {
            return Err(PartitionError::OffsetNotAvailable {
                high_watermark: st.high_watermark,
                epoch_start_offset: st.leader_epoch_start_offset,
            });
        }
        Ok(st.last_stable_offset)
    }

    /// Transactions open in this partition, oldest first.
    pub fn ongoing_transactions(&self) -> Vec<OngoingTxn> {
        lock(&self.state).producers.ongoing_transactions()
    }

    /// Producers known to this partition (DescribeProducers), by producer id.
    pub fn producer_entries(&self) -> Vec<ProducerEntryInfo> {
        lock(&self.state).producers.producer_entries()
    }

    /// Writes aborted-transaction entries to the log's index.
    pub(super) fn append_aborted_txns(&self, entries: &[AbortedTxn]) -> Result<(), PartitionError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.with_log(|log| {
            for entry in entries {
                log.append_aborted_txn(*entry)?;
            }
            Ok(())
        })
    }

    /// Recomputes the LSO from the producer state and the high watermark, and publishes it.
    pub(super) fn refresh_last_stable_offset(&self, st: &mut ReplicaState) {
        st.producers.on_high_watermark(st.high_watermark);
        let lso = st
            .producers
            .first_unstable_offset()
            .map_or(st.high_watermark, |first| first.min(st.high_watermark));
        let leader_epoch = st
            .state
            .is_leader(self.local_broker_id)
            .then_some(st.state.leader_epoch);
        if leader_epoch.is_some()
            && st.lso_leader_epoch == leader_epoch
            && lso < st.last_stable_offset
        {
            tracing::error!(
                topic = %self.topic,
                partition = self.index,
                from = st.last_stable_offset,
                to = lso,
                "the last stable offset moved back on a leader"
            );
            debug_assert!(
                false,
                "the LSO moved back on a leader: {} → {lso}",
                st.last_stable_offset
            );
        }
        st.lso_leader_epoch = leader_epoch;
        st.last_stable_offset = lso;
        self.last_stable_offset.send_if_modified(|current| {
            let changed = *current != lso;
            *current = lso;
            changed
        });
    }
}

/// Checks every batch of a leader append against the producer state: markers (coordinator
/// only; their epochs), and producers' batches — the first of each producer against the
/// table, a following one of the same producer against the one before it in the request.
fn check_leader_batches(
    producers: &ProducerStateTable,
    records: &[u8],
    origin: AppendOrigin,
    verification_enabled: bool,
) -> Result<CheckedAppend, PartitionError> {
    let mut checked = Vec::new();
    let mut duplicate = None;
    let mut previous: Option<RecordBatchHeader> = None;
    for (i, batch) in batches(records).enumerate() {
        // A malformed batch is reported by the log's own validation, with the right error.
        let Ok(batch) = batch else { break };
        let h = batch.header;
        checked.push((h, batch.position));
        if h.is_control() {
            // A client's control batch is refused by the log; the coordinator's is checked.
            if !origin.is_coordinator() || h.producer_id < 0 {
                continue;
            }
            if let Some((_, coordinator_epoch)) = parse_marker(batch.bytes)? {
                producers.check_marker(h.producer_id, h.producer_epoch, coordinator_epoch)?;
            }
            continue;
        }
        let chained = previous.filter(|p| p.producer_id == h.producer_id);
        previous = Some(h);
        if h.producer_id < 0 {
            continue;
        }
        match chained {
            Some(p) => check_chained(&p, &h, origin)?,
            None => {
                let data = DataBatch {
                    producer_id: h.producer_id,
                    producer_epoch: h.producer_epoch,
                    first_seq: h.base_sequence,
                    last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
                    is_transactional: h.is_transactional(),
                };
                match producers.check_data(&data, origin, verification_enabled)? {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate(meta) if i == 0 => duplicate = Some(meta),
                    SequenceCheck::Duplicate(_) => {
                        return Err(PartitionError::OutOfOrderSequence {
                            expected: -1,
                            got: h.base_sequence,
                        });
                    }
                }
            }
        }
    }
    Ok(CheckedAppend {
        batches: checked,
        duplicate,
    })
}

/// A producer's batch after another of its own in the same request: same epoch, same
/// transactional flag (one request does not open or leave a transaction half-way), and for a
/// client the next sequence.
fn check_chained(
    previous: &RecordBatchHeader,
    h: &RecordBatchHeader,
    origin: AppendOrigin,
) -> Result<(), PartitionError> {
    if h.producer_epoch != previous.producer_epoch {
        return Err(PartitionError::InvalidProducerEpoch {
            current: previous.producer_epoch,
            got: h.producer_epoch,
        });
    }
    if h.is_transactional() != previous.is_transactional() {
        return Err(PartitionError::InvalidTxnState);
    }
    if origin.is_coordinator() {
        return Ok(());
    }
    let expected = previous
        .base_sequence
        .wrapping_add(previous.last_offset_delta)
        .wrapping_add(1)
        .max(0);
    if h.base_sequence != expected {
        return Err(PartitionError::OutOfOrderSequence {
            expected,
            got: h.base_sequence,
        });
    }
    Ok(())
}

fn verification_needed(
    st: &mut ReplicaState,
    producer_id: i64,
    producer_epoch: i16,
    supports_epoch_bump: bool,
    first_sequence: i32,
) -> Option<VerificationGuard> {
    // A version-2 request adds the partition to its transaction through the same question, so
    // it asks whether or not verification is on (as Kafka does).
    if !(st.txn_verification_enabled || supports_epoch_bump)
        || st.producers.has_ongoing_txn(producer_id, producer_epoch)
    {
        return None;
    }
    Some(st.producers.start_verification(
        producer_id,
        producer_epoch,
        supports_epoch_bump,
        VerificationGuard::fresh(),
        first_sequence,
    ))
}
