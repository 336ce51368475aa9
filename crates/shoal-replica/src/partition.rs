//! One partition replica on this broker: its log plus the leader state that guards it.
//!
//! Locks: `state` is taken before `log` and held across a leader append, so an append always
//! carries the leader epoch that was current when it was checked (a replica demoted mid-request
//! cannot write under its old epoch). Readers take only the log lock and read the HW from a watch
//! channel, so fetches never wait behind the leader state.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use shoal_log::{AppendInfo, Log, LogConfig, LogError};
use tokio::sync::watch;

use crate::acks::{AckDecision, AppendPrecheck, RequiredAcks, decide_ack, precheck_append};
use crate::error::PartitionError;
use crate::high_watermark::{
    ReplicaLogEndOffsets, advance_high_watermark, high_watermark_candidate,
};
use crate::leader_epoch::{EpochCheck, check_leader_epoch};
use crate::producer_snapshot::{self, ProducerSnapshot};
use crate::producer_state::{BatchMetadata, ProducerStateTable, SequenceCheck};
use crate::state::PartitionState;

/// Records read for a fetch, with the offsets a fetch response reports.
#[derive(Debug, Clone)]
pub struct FetchedRecords {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Offsets a produce response reports.
#[derive(Debug, Clone, Copy)]
pub struct AppendResult {
    pub info: AppendInfo,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; `info` holds the original offsets.
    pub duplicate: bool,
}

/// Which of the periodic tasks are due in one maintenance pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceDue {
    pub retention: bool,
    pub high_watermark_checkpoint: bool,
    pub producer_snapshot: bool,
}

/// How much of the log one rebuild read asks for.
const REBUILD_READ_BYTES: usize = 1 << 20;

struct LeaderState {
    state: PartitionState,
    high_watermark: i64,
    log_end_offsets: ReplicaLogEndOffsets,
    min_insync_replicas: usize,
    producers: ProducerStateTable,
    /// Log end offset covered by the last producer snapshot written.
    producer_snapshot_offset: i64,
}

pub struct Partition {
    dir: std::path::PathBuf,
    topic: String,
    index: i32,
    local_broker_id: i32,
    state: Mutex<LeaderState>,
    log: Mutex<Option<Log>>,
    high_watermark: watch::Sender<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug already reported; the data is still consistent
    // because every critical section updates in-memory state only after its I/O succeeded.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Partition {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        local_broker_id: i32,
        log_config: LogConfig,
        min_insync_replicas: usize,
        state: PartitionState,
        now_ms: i64,
    ) -> Result<Self, PartitionError> {
        let log = Log::open(dir, log_config, now_ms)?;
        let high_watermark = log.high_watermark_checkpoint();
        let (producers, producer_snapshot_offset) = rebuild_producer_state(dir, &log, now_ms)?;
        let (tx, _) = watch::channel(high_watermark);
        let partition = Self {
            dir: dir.to_path_buf(),
            topic: topic.to_string(),
            index,
            local_broker_id,
            state: Mutex::new(LeaderState {
                state,
                high_watermark,
                log_end_offsets: ReplicaLogEndOffsets::new(),
                min_insync_replicas: min_insync_replicas.max(1),
                producers,
                producer_snapshot_offset,
            }),
            log: Mutex::new(Some(log)),
            high_watermark: tx,
        };
        partition.refresh_local_log_end_offset();
        Ok(partition)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn state(&self) -> PartitionState {
        lock(&self.state).state.clone()
    }

    pub fn leader_epoch(&self) -> i32 {
        lock(&self.state).state.leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        lock(&self.state).state.is_leader(self.local_broker_id)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Runs `f` on the open log; a closed partition (deleted topic) reports `Closed`.
    pub fn with_log<R>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<R, LogError>,
    ) -> Result<R, PartitionError> {
        let mut guard = lock(&self.log);
        let log = guard.as_mut().ok_or(PartitionError::Closed)?;
        Ok(f(log)?)
    }

    /// Applies what the metadata now says (leader, epochs, ISR) and re-evaluates the HW.
    pub fn update_state(&self, state: PartitionState) {
        let mut leader = lock(&self.state);
        if leader.state == state {
            return;
        }
        let became_leader = state.is_leader(self.local_broker_id)
            && (!leader.state.is_leader(self.local_broker_id)
                || state.leader_epoch != leader.state.leader_epoch);
        if became_leader {
            // Follower positions learned under an older epoch prove nothing now.
            leader.log_end_offsets.clear();
        }
        leader.state = state;
        drop(leader);
        self.refresh_local_log_end_offset();
    }

    pub fn update_config(
        &self,
        log_config: LogConfig,
        min_insync_replicas: usize,
    ) -> Result<(), PartitionError> {
        lock(&self.state).min_insync_replicas = min_insync_replicas.max(1);
        self.with_log(|log| log.set_config(log_config))
    }

    /// Appends a producer's batches as leader. Order-sensitive: callers run it in request order.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
    ) -> Result<AppendResult, PartitionError> {
        let mut leader = lock(&self.state);
        if !leader.state.is_leader(self.local_broker_id) {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        let isr_size = leader.state.isr.len();
        if precheck_append(acks, isr_size, leader.min_insync_replicas)
            == AppendPrecheck::NotEnoughReplicas
        {
            return Err(PartitionError::NotEnoughReplicas {
                isr: isr_size,
                min: leader.min_insync_replicas,
            });
        }
        let leader_epoch = leader.state.leader_epoch;
        let idempotent = check_producer_sequences(&leader.producers, records)?;
        if let Some(duplicate) = idempotent.duplicate {
            let log_start_offset = self.with_log(|log| Ok(log.log_start_offset()))?;
            let info = AppendInfo {
                first_offset: duplicate.first_offset,
                last_offset: duplicate.last_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                log_append_time_ms: -1,
                record_count: 0,
                size_bytes: 0,
            };
            return Ok(AppendResult {
                info,
                log_start_offset,
                duplicate: true,
            });
        }
        let (info, log_end_offset, log_start_offset) = {
            let mut guard = lock(&self.log);
            let log = guard.as_mut().ok_or(PartitionError::Closed)?;
            let info = log.append_as_leader(records, leader_epoch, now_ms)?;
            (info, log.log_end_offset(), log.log_start_offset())
        };
        let mut next_offset = info.first_offset;
        for b in idempotent.batches {
            let first_offset = next_offset;
            let last_offset = first_offset + i64::from(b.last_offset_delta);
            next_offset = last_offset + 1;
            if b.producer_id >= 0 {
                let last_seq = b.base_sequence.wrapping_add(b.last_offset_delta).max(0);
                let meta = BatchMetadata {
                    first_seq: b.base_sequence,
                    last_seq,
                    first_offset,
                    last_offset,
                };
                leader
                    .producers
                    .record(b.producer_id, b.producer_epoch, meta, now_ms);
            }
        }
        leader
            .log_end_offsets
            .insert(self.local_broker_id, log_end_offset);
        self.maybe_advance_high_watermark(&mut leader);
        Ok(AppendResult {
            info,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Waits until the HW passes `required_offset` (acks=all), bounded by `timeout`.
    pub async fn wait_for_acks(
        &self,
        required_offset: i64,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        let mut rx = self.high_watermark.subscribe();
        let wait = async {
            loop {
                let decision = {
                    let hw = *rx.borrow_and_update();
                    let leader = lock(&self.state);
                    decide_ack(
                        hw,
                        required_offset,
                        leader.state.isr.len(),
                        leader.min_insync_replicas,
                    )
                };
                match decision {
                    AckDecision::Acknowledge => return Ok(()),
                    AckDecision::NotEnoughReplicasAfterAppend => {
                        return Err(PartitionError::NotEnoughReplicasAfterAppend);
                    }
                    AckDecision::Wait => {
                        if rx.changed().await.is_err() {
                            return Err(PartitionError::Closed);
                        }
                        if !self.is_leader() {
                            return Err(PartitionError::NotLeaderOrFollower);
                        }
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(PartitionError::RequestTimedOut))
    }

    /// Checks a fetch's `current_leader_epoch` and that this replica may serve it.
    pub fn check_fetch_epoch(&self, current_leader_epoch: i32) -> Result<(), PartitionError> {
        let leader = lock(&self.state);
        match check_leader_epoch(current_leader_epoch, leader.state.leader_epoch) {
            EpochCheck::Fenced => Err(PartitionError::FencedLeaderEpoch),
            EpochCheck::Unknown => Err(PartitionError::UnknownLeaderEpoch),
            EpochCheck::Current if !leader.state.is_leader(self.local_broker_id) => {
                Err(PartitionError::NotLeaderOrFollower)
            }
            EpochCheck::Current => Ok(()),
        }
    }

    /// Reads committed records (below the HW) for a consumer fetch.
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FetchedRecords, PartitionError> {
        let high_watermark = self.high_watermark();
        let guard = lock(&self.log);
        let log = guard.as_ref().ok_or(PartitionError::Closed)?;
        let log_start_offset = log.log_start_offset();
        let log_end_offset = log.log_end_offset();
        let records = if fetch_offset == high_watermark && fetch_offset <= log_end_offset {
            // Caught up: nothing to read, and not an out-of-range offset.
            Bytes::new()
        } else {
            log.read(fetch_offset, max_bytes, high_watermark, min_one_batch)?
                .records
        };
        Ok(FetchedRecords {
            records,
            high_watermark,
            log_start_offset,
            log_end_offset,
        })
    }

    /// Periodic work: the flush policy every call; retention, the HW checkpoint and the producer
    /// snapshot when `due` says so. The checkpoints fsync, and on ext4 an fsync commits the
    /// journal and with it the writeback of dirty segment data, so they run on their own,
    /// longer intervals (as Kafka's) and only when something changed.
    pub fn run_maintenance(&self, now_ms: i64, due: MaintenanceDue) -> Result<(), PartitionError> {
        let high_watermark = self.high_watermark();
        {
            let mut guard = lock(&self.log);
            let log = guard.as_mut().ok_or(PartitionError::Closed)?;
            if due.retention {
                let result = log.enforce_retention(now_ms, high_watermark)?;
                if result.deleted_segments > 0 {
                    tracing::info!(
                        topic = %self.topic,
                        partition = self.index,
                        deleted_segments = result.deleted_segments,
                        deleted_bytes = result.deleted_bytes,
                        log_start_offset = result.log_start_offset,
                        "retention deleted segments"
                    );
                }
            }
            log.maybe_flush(now_ms)?;
            if due.high_watermark_checkpoint && log.high_watermark_checkpoint() != high_watermark {
                log.checkpoint_high_watermark(high_watermark)?;
            }
        }
        if due.producer_snapshot {
            self.snapshot_producers(false)?;
        }
        Ok(())
    }

    /// Writes the producer table if the log grew since the last snapshot (or always, `force`).
    fn snapshot_producers(&self, force: bool) -> Result<(), PartitionError> {
        let mut leader = lock(&self.state);
        let log_end_offset = self.with_log(|log| Ok(log.log_end_offset()))?;
        if !force && log_end_offset == leader.producer_snapshot_offset {
            return Ok(());
        }
        let snapshot = ProducerSnapshot {
            log_end_offset,
            table: leader.producers.clone(),
        };
        producer_snapshot::write(&self.dir, &snapshot).map_err(|e| {
            PartitionError::Log(shoal_log::LogError::Io {
                path: self.dir.clone(),
                source: e,
            })
        })?;
        leader.producer_snapshot_offset = log_end_offset;
        Ok(())
    }

    /// Flushes and closes the log (clean shutdown).
    pub fn close(&self) -> Result<(), PartitionError> {
        let high_watermark = self.high_watermark();
        if let Err(error) = self.snapshot_producers(true) {
            tracing::warn!(topic = %self.topic, partition = self.index, %error, "writing the producer snapshot failed");
        }
        let log = lock(&self.log).take();
        if let Some(mut log) = log {
            log.checkpoint_high_watermark(high_watermark)?;
            log.close()?;
        }
        Ok(())
    }

    /// Removes the log from disk (topic deleted).
    pub fn delete(&self) -> Result<(), PartitionError> {
        let log = lock(&self.log).take();
        if let Some(log) = log {
            log.delete()?;
        }
        Ok(())
    }

    fn refresh_local_log_end_offset(&self) {
        let log_end_offset = match lock(&self.log).as_ref() {
            Some(log) => log.log_end_offset(),
            None => return,
        };
        let mut leader = lock(&self.state);
        leader
            .log_end_offsets
            .insert(self.local_broker_id, log_end_offset);
        self.maybe_advance_high_watermark(&mut leader);
    }

    fn maybe_advance_high_watermark(&self, leader: &mut LeaderState) {
        if !leader.state.is_leader(self.local_broker_id) {
            return;
        }
        let candidate = high_watermark_candidate(
            leader.high_watermark,
            &leader.state.isr,
            &leader.log_end_offsets,
        );
        if let Some(new_hw) = advance_high_watermark(leader.high_watermark, candidate) {
            leader.high_watermark = new_hw;
            self.high_watermark.send_replace(new_hw);
        }
    }
}

/// Headers of a produce request's batches, and whether it retries an already written batch.
struct IdempotenceCheck {
    batches: Vec<shoal_log::batch::RecordBatchHeader>,
    duplicate: Option<BatchMetadata>,
}

/// Checks every idempotent batch of a request against the producer table. Batches after the
/// first are checked against the batch before them in the same request.
fn check_producer_sequences(
    producers: &ProducerStateTable,
    records: &[u8],
) -> Result<IdempotenceCheck, PartitionError> {
    let mut batches = Vec::new();
    let mut duplicate = None;
    for (i, batch) in shoal_log::batch::batches(records).enumerate() {
        // A malformed batch is reported by the log's own validation, with the right error.
        let Ok(batch) = batch else { break };
        let h = batch.header;
        if h.producer_id >= 0 {
            let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
            let previous: Option<&shoal_log::batch::RecordBatchHeader> = batches.last();
            match previous.filter(|p| p.producer_id == h.producer_id) {
                Some(p) => {
                    let expected = p
                        .base_sequence
                        .wrapping_add(p.last_offset_delta)
                        .wrapping_add(1)
                        .max(0);
                    if h.base_sequence != expected {
                        return Err(PartitionError::OutOfOrderSequence {
                            expected,
                            got: h.base_sequence,
                        });
                    }
                }
                None => match producers.check(
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    last_seq,
                )? {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate(meta) if i == 0 => duplicate = Some(meta),
                    SequenceCheck::Duplicate(_) => {
                        return Err(PartitionError::OutOfOrderSequence {
                            expected: -1,
                            got: h.base_sequence,
                        });
                    }
                },
            }
        }
        batches.push(h);
    }
    Ok(IdempotenceCheck { batches, duplicate })
}

/// Loads the producer snapshot and replays the batches written after it.
fn rebuild_producer_state(
    dir: &Path,
    log: &Log,
    now_ms: i64,
) -> Result<(ProducerStateTable, i64), PartitionError> {
    let log_end_offset = log.log_end_offset();
    let (mut table, mut offset) = match producer_snapshot::read(dir) {
        Some(s)
            if s.log_end_offset <= log_end_offset && s.log_end_offset >= log.log_start_offset() =>
        {
            (s.table, s.log_end_offset)
        }
        Some(s) => {
            tracing::warn!(dir = %dir.display(), snapshot_offset = s.log_end_offset, log_end_offset, "producer snapshot does not match the log; rebuilding");
            (ProducerStateTable::default(), log.log_start_offset())
        }
        None => (ProducerStateTable::default(), log.log_start_offset()),
    };
    let snapshot_offset = offset;
    while offset < log_end_offset {
        let read = log.read(offset, REBUILD_READ_BYTES, log_end_offset, true)?;
        if read.records.is_empty() {
            break;
        }
        for batch in shoal_log::batch::batches(&read.records) {
            let h = batch?.header;
            if h.base_offset >= offset && h.producer_id >= 0 {
                let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta).max(0);
                let meta = BatchMetadata {
                    first_seq: h.base_sequence,
                    last_seq,
                    first_offset: h.base_offset,
                    last_offset: h.last_offset(),
                };
                table.record(h.producer_id, h.producer_epoch, meta, now_ms);
            }
            offset = offset.max(h.next_offset());
        }
    }
    Ok((table, snapshot_offset))
}
