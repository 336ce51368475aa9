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
}

struct LeaderState {
    state: PartitionState,
    high_watermark: i64,
    log_end_offsets: ReplicaLogEndOffsets,
    min_insync_replicas: usize,
}

pub struct Partition {
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
        let (tx, _) = watch::channel(high_watermark);
        let partition = Self {
            topic: topic.to_string(),
            index,
            local_broker_id,
            state: Mutex::new(LeaderState {
                state,
                high_watermark,
                log_end_offsets: ReplicaLogEndOffsets::new(),
                min_insync_replicas: min_insync_replicas.max(1),
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
        let (info, log_end_offset, log_start_offset) = {
            let mut guard = lock(&self.log);
            let log = guard.as_mut().ok_or(PartitionError::Closed)?;
            let info = log.append_as_leader(records, leader_epoch, now_ms)?;
            log.maybe_flush(now_ms)?;
            (info, log.log_end_offset(), log.log_start_offset())
        };
        leader
            .log_end_offsets
            .insert(self.local_broker_id, log_end_offset);
        self.maybe_advance_high_watermark(&mut leader);
        Ok(AppendResult {
            info,
            log_start_offset,
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

    /// Periodic work: retention, flush policy and the HW checkpoint.
    pub fn run_maintenance(&self, now_ms: i64) -> Result<(), PartitionError> {
        let high_watermark = self.high_watermark();
        let mut guard = lock(&self.log);
        let log = guard.as_mut().ok_or(PartitionError::Closed)?;
        log.enforce_retention(now_ms, high_watermark)?;
        log.maybe_flush(now_ms)?;
        log.checkpoint_high_watermark(high_watermark)?;
        Ok(())
    }

    /// Flushes and closes the log (clean shutdown).
    pub fn close(&self) -> Result<(), PartitionError> {
        let high_watermark = self.high_watermark();
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
