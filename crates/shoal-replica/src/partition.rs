//! One partition replica on this broker: its log plus the replication state that guards it,
//! as leader or as follower.
//!
//! The decisions live in pure modules (`high_watermark`, `acks`, `leader_epoch`, `isr`,
//! `divergence`, `follower_progress`); this type applies them to a real `shoal_log::Log`. It
//! does no network I/O: the broker's replication code calls [`Partition::fetch_for_follower`]
//! when a follower fetches from this leader, and the follower-side methods
//! ([`Partition::append_as_follower`], [`Partition::truncate_for_divergence`], ...) with what
//! the leader answered.
//!
//! **Epochs guard every step.** A follower-side call names the leader epoch it acts for and is
//! refused if the replica no longer follows at that epoch, so a response from a deposed leader
//! can never be written. The leader serves a follower only at its own current epoch
//! (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH otherwise) and counts a follower's position
//! only from a fetch that is consistent with its log (see `divergence`), so the high
//! watermark never counts data a follower does not really hold.
//!
//! Locks: `state` is taken before `log` and held across a leader append, so an append always
//! carries the leader epoch that was current when it was checked (a replica demoted mid-request
//! cannot write under its old epoch). Readers take only the log (a `SharedLog`, whose reads
//! `pread` outside its locks) and read the HW from a watch channel, so fetches never wait
//! behind the leader state nor behind an append's write. Role, epochs, ISR and
//! `min.insync.replicas` are also published in a copy (`published`) for async callers (acks=all
//! waiters, metadata), so they never wait for the state lock an append holds. Every other
//! method here may block on the disk: async callers run them on blocking threads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use shoal_log::batch::batches;
use shoal_log::{AppendInfo, Log, LogConfig, LogError, SharedLog};
use tokio::sync::watch;

use crate::acks::{AckDecision, AppendPrecheck, RequiredAcks, decide_ack, precheck_append};
use crate::delete_records::{DeleteRefusal, deletion_target, low_watermark};
use crate::divergence::{EpochEndOffset, diverging_epoch, truncation_offset};
use crate::error::PartitionError;
use crate::follower_progress::FollowerProgress;
use crate::high_watermark::{
    ReplicaLogEndOffsets, advance_high_watermark, high_watermark_candidate, offsets_available,
};
use crate::isr::{LeaderView, PendingIsrChange, maximal_isr, may_join_isr, next_isr_change};
use crate::leader_epoch::{EpochCheck, check_leader_epoch};
use crate::producer_replay::{apply_stored, rebuild_producer_state};
use crate::producer_snapshot::{self, ProducerSnapshot};
use crate::producer_state::{BatchMetadata, ProducerStateTable, SequenceCheck};
use crate::state::PartitionState;
pub use crate::transaction::{
    AppendOrigin, ControlType, IsolationLevel, OngoingTxn, ProducerEntryInfo, TxnMarker,
    VerificationGuard,
};
pub use shoal_log::AbortedTxn;

#[path = "partition_txn.rs"]
mod txn;

/// Records read for a fetch, with the offsets a fetch response reports.
#[derive(Debug, Clone)]
pub struct FetchedRecords {
    pub records: Bytes,
    pub high_watermark: i64,
    /// Reported whatever the isolation level (Kafka's `lastStableOffset`).
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// READ_COMMITTED: the aborted transactions overlapping the records returned, for the
    /// consumer to drop; empty for READ_UNCOMMITTED.
    pub aborted_transactions: Vec<AbortedTxn>,
}

/// Offsets a produce response reports.
#[derive(Debug, Clone, Copy)]
pub struct AppendResult {
    pub info: AppendInfo,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; `info` holds the original offsets.
    pub duplicate: bool,
    /// The leader epoch the append was made in: acknowledge it with
    /// [`Partition::wait_for_acks_in_epoch`], so a write truncated by a later leader is never
    /// taken as replicated because this replica leads again.
    pub leader_epoch: i32,
}

/// Which of the periodic tasks are due in one maintenance pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceDue {
    pub retention: bool,
    pub high_watermark_checkpoint: bool,
    pub producer_snapshot: bool,
    /// Compaction of `cleanup.policy=compact` logs (`log.cleaner.backoff.ms`), within these
    /// limits.
    pub compaction: Option<shoal_log::CleanerLimits>,
}

/// A follower's fetch, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerFetch {
    pub replica_id: i32,
    /// The follower's registration epoch (carried into ISR expansions, KIP-903).
    pub broker_epoch: i64,
    /// The leader epoch the follower believes is current.
    pub current_leader_epoch: i32,
    /// The follower's log end offset: it holds everything below.
    pub fetch_offset: i64,
    /// The epoch of the follower's last batch; -1 for an empty log.
    pub last_fetched_epoch: i32,
    pub max_bytes: usize,
    /// The follower's log start offset (`None` from a release that does not send it).
    pub log_start_offset: Option<i64>,
}

/// The leader's answer to one partition of a follower fetch.
#[derive(Debug, Clone)]
pub struct FollowerFetchResult {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// Set when the follower's log diverges: truncate (see `divergence`), send no records.
    pub diverging: Option<EpochEndOffset>,
    /// Batches from the fetch offset, whole, as stored.
    pub records: Bytes,
    /// The follower is outside the ISR and now qualifies to join it.
    pub may_join_isr: bool,
}

/// Where a follower fetches from next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// One member of a proposed ISR, with the broker epoch the leader saw it fetch with (only for
/// members being added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposedMember {
    pub broker_id: i32,
    pub broker_epoch: Option<i64>,
}

/// An ISR change the leader wants the controller to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<ProposedMember>,
}

/// How the controller answered an [`IsrProposal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrOutcome {
    /// Committed (or already so): the partition's new state.
    Committed {
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// Refused or unanswered; the next check proposes again from the metadata then current.
    NotCommitted,
}

struct ReplicaState {
    state: PartitionState,
    high_watermark: i64,
    /// The local log's end offset, kept here so HW decisions need not lock the log.
    log_end_offset: i64,
    min_insync_replicas: usize,
    producers: ProducerStateTable,
    /// Log end offset covered by the last producer snapshot written.
    producer_snapshot_offset: i64,
    /// `min(first unstable offset, high watermark)`; see `partition_txn`.
    last_stable_offset: i64,
    /// The leader epoch `last_stable_offset` was last computed under as leader (it may not
    /// move back within one), `None` if as a follower.
    lso_leader_epoch: Option<i32>,
    /// The latest broker time a call passed in, for calls that take none (a truncation's
    /// producer-state rebuild).
    latest_now_ms: i64,
    /// Kafka's `transaction.partition.verification.enable` (KIP-890 part 1), on by default.
    txn_verification_enabled: bool,
    /// Leader only: each follower's progress under the current leadership.
    followers: BTreeMap<i32, FollowerProgress>,
    /// Leader only: where the current leader epoch started in this log.
    leader_epoch_start_offset: i64,
    /// Leader only: the ISR change sent to the controller and not yet answered.
    pending_isr: Option<PendingIsrChange>,
}

/// The replica state async callers read (role, epochs, ISR, `min.insync.replicas`): a copy
/// republished on every change, because a leader append holds the state lock across its disk
/// write and an async thread must not wait for that.
#[derive(Clone, Debug)]
struct Published {
    state: PartitionState,
    min_insync_replicas: usize,
}

pub struct Partition {
    dir: std::path::PathBuf,
    topic: String,
    index: i32,
    local_broker_id: i32,
    state: Mutex<ReplicaState>,
    /// Held only to copy in or out; see [`Published`].
    published: Mutex<Published>,
    /// `None` once closed or deleted; written only then, so readers never wait on it.
    log: RwLock<Option<SharedLog>>,
    high_watermark: watch::Sender<i64>,
    /// The local log end; replication waits on it (a leader's parked follower fetches).
    log_end_offset: watch::Sender<i64>,
    /// The last stable offset; `read_committed` fetches wait on it.
    last_stable_offset: watch::Sender<i64>,
    /// Leader only: the smallest log start offset over the ISR; DeleteRecords waits on it.
    low_watermark: watch::Sender<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug already reported; the data is still consistent
    // because every critical section updates in-memory state only after its I/O succeeded.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`RwLock::read`] if no writer holds the lock; `None` otherwise.
fn try_read<T>(rwlock: &RwLock<T>) -> Option<std::sync::RwLockReadGuard<'_, T>> {
    match rwlock.try_read() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Whether an append may wait for locks and disk work beyond a page-cache write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppendWait {
    /// The caller is on a blocking thread: wait for locks, roll, fsync as needed.
    Block,
    /// The caller is on an async thread: do it only if none of that is needed.
    Light,
}

/// Largest append done on an async thread ([`AppendWait::Light`]): a page-cache copy of this
/// size takes a few microseconds; larger ones go to a blocking thread.
pub const LIGHT_APPEND_MAX_BYTES: usize = 16 * 1024;

/// [`lock`] if the mutex is free at once; `None` if another thread holds it.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
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
        let mut log = Log::open(dir, log_config, now_ms)?;
        let high_watermark = log.high_watermark_checkpoint();
        let log_end_offset = log.log_end_offset();
        let (producers, producer_snapshot_offset) = rebuild_producer_state(dir, &mut log, now_ms)?;
        let (hw_tx, _) = watch::channel(high_watermark);
        let (leo_tx, _) = watch::channel(log_end_offset);
        let (lso_tx, _) = watch::channel(high_watermark);
        let mut replica = ReplicaState {
            state: state.clone(),
            high_watermark,
            log_end_offset,
            min_insync_replicas: min_insync_replicas.max(1),
            producers,
            producer_snapshot_offset,
            last_stable_offset: high_watermark,
            lso_leader_epoch: None,
            latest_now_ms: now_ms,
            txn_verification_enabled: true,
            followers: BTreeMap::new(),
            leader_epoch_start_offset: log_end_offset,
            pending_isr: None,
        };
        if state.is_leader(local_broker_id) {
            replica.followers = fresh_followers(&state, local_broker_id, now_ms);
        }
        let partition = Self {
            dir: dir.to_path_buf(),
            topic: topic.to_string(),
            index,
            local_broker_id,
            published: Mutex::new(Published {
                state: replica.state.clone(),
                min_insync_replicas: replica.min_insync_replicas,
            }),
            state: Mutex::new(replica),
            log: RwLock::new(Some(SharedLog::new(log))),
            high_watermark: hw_tx,
            log_end_offset: leo_tx,
            last_stable_offset: lso_tx,
            low_watermark: watch::channel(-1).0,
        };
        {
            let mut st = lock(&partition.state);
            partition.maybe_advance_high_watermark(&mut st);
        }
        Ok(partition)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn state(&self) -> PartitionState {
        lock(&self.published).state.clone()
    }

    pub fn leader_epoch(&self) -> i32 {
        lock(&self.published).state.leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        lock(&self.published).state.is_leader(self.local_broker_id)
    }

    /// Whether `broker_id` is in the ISR this replica knows (the leader's own, or the one the
    /// controller last sent a follower): replication throttles hold back only the others.
    pub fn isr_contains(&self, broker_id: i32) -> bool {
        lock(&self.published).state.isr.contains(&broker_id)
    }

    /// Copies what async callers read out of `st`; call after every change to it.
    fn publish(&self, st: &ReplicaState) {
        *lock(&self.published) = Published {
            state: st.state.clone(),
            min_insync_replicas: st.min_insync_replicas,
        };
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// The local log end, changing on every append and truncation.
    pub fn subscribe_log_end_offset(&self) -> watch::Receiver<i64> {
        self.log_end_offset.subscribe()
    }

    /// Runs `f` on the open shared log; a closed partition (deleted topic) reports `Closed`.
    fn on_log<R>(
        &self,
        f: impl FnOnce(&SharedLog) -> Result<R, PartitionError>,
    ) -> Result<R, PartitionError> {
        let guard = self.log.read().unwrap_or_else(|p| p.into_inner());
        f(guard.as_ref().ok_or(PartitionError::Closed)?)
    }

    /// Runs `f` with the open log to itself (it waits for an append in flight and holds off
    /// reads); a closed partition (deleted topic) reports `Closed`.
    pub fn with_log<R>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<R, LogError>,
    ) -> Result<R, PartitionError> {
        self.on_log(|log| Ok(log.with_mut(f)?))
    }

    /// Runs `f` on the open log's state, beside other readers and an append's write.
    pub fn read_log<R>(
        &self,
        f: impl FnOnce(&Log) -> Result<R, LogError>,
    ) -> Result<R, PartitionError> {
        self.on_log(|log| Ok(log.with(f)?))
    }

    /// [`Log::read`] without holding the log's locks during the `pread`.
    pub fn read_records(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<shoal_log::ReadInfo, PartitionError> {
        self.on_log(|log| Ok(log.read(start_offset, max_bytes, max_offset, min_one_batch)?))
    }

    /// Applies what the metadata now says (leader, epochs, replicas, ISR). A state with an older
    /// partition epoch than the one applied is stale (the leader may already have applied its
    /// own AlterPartition's answer) and is ignored. Becoming leader at a new epoch starts every
    /// follower's progress afresh: positions learned under another leadership prove nothing.
    pub fn update_state(&self, state: PartitionState, now_ms: i64) {
        let mut st = lock(&self.state);
        if state == st.state || state.partition_epoch < st.state.partition_epoch {
            return;
        }
        let local = self.local_broker_id;
        let was_leader = st.state.is_leader(local);
        let now_leader = state.is_leader(local);
        let epoch_changed = state.leader_epoch != st.state.leader_epoch;
        if now_leader && (!was_leader || state.leader_epoch != st.state.leader_epoch) {
            st.leader_epoch_start_offset = st.log_end_offset;
            st.followers = fresh_followers(&state, local, now_ms);
            st.pending_isr = None;
            tracing::info!(
                topic = %self.topic,
                partition = self.index,
                leader_epoch = state.leader_epoch,
                isr = ?state.isr,
                log_end_offset = st.log_end_offset,
                high_watermark = st.high_watermark,
                "became leader"
            );
        } else if !now_leader {
            if was_leader {
                tracing::info!(
                    topic = %self.topic,
                    partition = self.index,
                    leader = state.leader,
                    leader_epoch = state.leader_epoch,
                    "no longer leader"
                );
            }
            st.followers.clear();
            st.pending_isr = None;
        } else {
            // Same leadership; the ISR or the replicas changed (ours or the controller's).
            if st
                .pending_isr
                .as_ref()
                .is_some_and(|p| state.partition_epoch > p.partition_epoch)
            {
                st.pending_isr = None;
            }
            for id in &state.replicas {
                if *id != local && !st.followers.contains_key(id) {
                    st.followers
                        .insert(*id, FollowerProgress::at_leadership_start(false, now_ms));
                }
            }
            st.followers.retain(|id, _| state.replicas.contains(id));
        }
        st.state = state;
        self.publish(&st);
        self.refresh_low_watermark_from_log(&st);
        if was_leader && (!now_leader || epoch_changed) {
            // acks=all waiters re-check leadership (and their epoch) and answer
            // NOT_LEADER_OR_FOLLOWER.
            self.high_watermark.send_modify(|_| {});
        }
        self.maybe_advance_high_watermark(&mut st);
    }

    pub fn update_config(
        &self,
        log_config: LogConfig,
        min_insync_replicas: usize,
    ) -> Result<(), PartitionError> {
        {
            let mut st = lock(&self.state);
            st.min_insync_replicas = min_insync_replicas.max(1);
            self.publish(&st);
        }
        self.with_log(|log| log.set_config(log_config))
    }

    /// Appends a producer's batches as leader (`AppendOrigin::Client` without a verification
    /// guard; see [`Self::append_as_leader_from`]). Order-sensitive: callers run it in request
    /// order.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        acks: RequiredAcks,
        now_ms: i64,
    ) -> Result<AppendResult, PartitionError> {
        self.append_as_leader_from(
            records,
            acks,
            now_ms,
            AppendOrigin::Client { verification: None },
        )
    }

    /// Waits until the HW passes `required_offset` (acks=all), bounded by `timeout`.
    pub async fn wait_for_acks(
        &self,
        required_offset: i64,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        self.wait_for_acks_until(required_offset, None, timeout)
            .await
    }

    /// As [`Self::wait_for_acks`], for an append made in `leader_epoch`
    /// ([`AppendResult::leader_epoch`]): fails with NOT_LEADER_OR_FOLLOWER once this replica
    /// leads in another epoch, as the offset may then hold another leader's record.
    pub async fn wait_for_acks_in_epoch(
        &self,
        required_offset: i64,
        leader_epoch: i32,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        self.wait_for_acks_until(required_offset, Some(leader_epoch), timeout)
            .await
    }

    async fn wait_for_acks_until(
        &self,
        required_offset: i64,
        leader_epoch: Option<i32>,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        let mut rx = self.high_watermark.subscribe();
        let wait = async {
            loop {
                let decision = {
                    let hw = *rx.borrow_and_update();
                    let (is_leader, isr_size, min_insync_replicas) = {
                        let p = lock(&self.published);
                        let is_leader = p.state.is_leader(self.local_broker_id)
                            && leader_epoch.is_none_or(|e| e == p.state.leader_epoch);
                        (is_leader, p.state.isr.len(), p.min_insync_replicas)
                    };
                    if !is_leader {
                        return Err(PartitionError::NotLeaderOrFollower);
                    }
                    // Closed (its log moved to another directory, or the broker stops): the
                    // client retries against the replica that replaced this one.
                    if self.is_closed() {
                        return Err(PartitionError::Closed);
                    }
                    decide_ack(hw, required_offset, isr_size, min_insync_replicas)
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

    /// The HW for an offset query (ListOffsets), once this leader's HW has caught up with the
    /// start of its epoch (see [`offsets_available`]); call after [`Self::check_fetch_epoch`].
    pub fn high_watermark_for_offset_query(&self) -> Result<i64, PartitionError> {
        let st = lock(&self.state);
        if st.state.is_leader(self.local_broker_id)
            && !offsets_available(st.high_watermark, st.leader_epoch_start_offset)
        {
            return Err(PartitionError::OffsetNotAvailable {
                high_watermark: st.high_watermark,
                epoch_start_offset: st.leader_epoch_start_offset,
            });
        }
        Ok(st.high_watermark)
    }

    /// OffsetForLeaderEpoch (KIP-320, for consumers and tools): the largest epoch at or below
    /// `leader_epoch` and where it ends, answered by the leader at `current_leader_epoch`.
    pub fn end_offset_for_leader_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<EpochEndOffset, PartitionError> {
        self.check_fetch_epoch(current_leader_epoch)?;
        let end = self.read_log(|log| Ok(log.end_offset_for_epoch(leader_epoch)))?;
        Ok(match end {
            Some((epoch, end_offset)) => EpochEndOffset { epoch, end_offset },
            None => crate::divergence::UNDEFINED_EPOCH_END_OFFSET,
        })
    }

    /// Reads records for a consumer fetch: below the HW (READ_UNCOMMITTED) or below the last
    /// stable offset with the aborted transactions that overlap what is returned
    /// (READ_COMMITTED). A fetch at the bound returns nothing (it is not out of range).
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: IsolationLevel,
    ) -> Result<FetchedRecords, PartitionError> {
        let high_watermark = self.high_watermark();
        // Published apart from the HW: a reader may see a new HW with the LSO before it.
        let last_stable_offset = self.last_stable_offset().min(high_watermark);
        let max_offset = match isolation {
            IsolationLevel::ReadUncommitted => high_watermark,
            IsolationLevel::ReadCommitted => last_stable_offset,
        };
        self.on_log(|log| {
            let (log_start_offset, log_end_offset) =
                log.with(|l| (l.log_start_offset(), l.log_end_offset()));
            let caught_up = fetch_offset == high_watermark
                || (isolation == IsolationLevel::ReadCommitted
                    && (max_offset..=high_watermark).contains(&fetch_offset));
            let records = if caught_up && fetch_offset <= log_end_offset {
                // Nothing to read yet, and not an out-of-range offset.
                Bytes::new()
            } else {
                log.read(fetch_offset, max_bytes, max_offset, min_one_batch)?
                    .records
            };
            let aborted_transactions = match isolation {
                IsolationLevel::ReadCommitted if !records.is_empty() => {
                    let upper_bound_offset = batches(&records)
                        .map_while(Result::ok)
                        .last()
                        .map_or(fetch_offset, |b| b.header.next_offset());
                    log.with(|l| l.collect_aborted_txns(fetch_offset, upper_bound_offset))?
                }
                _ => Vec::new(),
            };
            Ok(FetchedRecords {
                records,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                log_end_offset,
                aborted_transactions,
            })
        })
    }

    // ─── Leader side of replication ────────────────────────────────────────────────────────

    /// Serves one partition of a follower's fetch (see the module docs): checks role, epoch
    /// and consistency, records the follower's position (when `record`: once per request, as
    /// Kafka does; a parked request that is served again after new appends is not a new
    /// fetch), advances the HW, and reads batches from the fetch offset up to the log end.
    pub fn fetch_for_follower(
        &self,
        fetch: &FollowerFetch,
        now_ms: i64,
        record: bool,
    ) -> Result<FollowerFetchResult, PartitionError> {
        let mut st = lock(&self.state);
        if !st.state.is_leader(self.local_broker_id) {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        match check_leader_epoch(fetch.current_leader_epoch, st.state.leader_epoch) {
            EpochCheck::Fenced => return Err(PartitionError::FencedLeaderEpoch),
            EpochCheck::Unknown => return Err(PartitionError::UnknownLeaderEpoch),
            EpochCheck::Current => {}
        }
        if fetch.replica_id == self.local_broker_id
            || !st.state.replicas.contains(&fetch.replica_id)
        {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        let (log_start_offset, end_for_epoch) = self.read_log(|log| {
            Ok((
                log.log_start_offset(),
                log.end_offset_for_epoch(fetch.last_fetched_epoch),
            ))
        })?;
        let log_end_offset = st.log_end_offset;
        if let Some(diverging) =
            diverging_epoch(fetch.last_fetched_epoch, fetch.fetch_offset, end_for_epoch)
        {
            return Ok(FollowerFetchResult {
                high_watermark: st.high_watermark,
                log_start_offset,
                log_end_offset,
                diverging: Some(diverging),
                records: Bytes::new(),
                may_join_isr: false,
            });
        }
        if fetch.fetch_offset < log_start_offset || fetch.fetch_offset > log_end_offset {
            return Err(PartitionError::Log(LogError::OffsetOutOfRange {
                offset: fetch.fetch_offset,
                log_start_offset,
                log_end_offset,
            }));
        }
        let mut may_join = false;
        if record {
            let progress = st
                .followers
                .entry(fetch.replica_id)
                .or_insert_with(|| FollowerProgress::at_leadership_start(false, now_ms));
            progress.record_fetch(
                fetch.fetch_offset,
                log_end_offset,
                fetch.broker_epoch,
                now_ms,
            );
            let log_start_moved = fetch.log_start_offset.is_some()
                && progress.log_start_offset != fetch.log_start_offset;
            progress.log_start_offset = fetch.log_start_offset;
            let progress = *progress;
            if log_start_moved {
                self.refresh_low_watermark(&st, log_start_offset);
            }
            self.maybe_advance_high_watermark(&mut st);
            let in_maximal_isr =
                maximal_isr(&st.state.isr, st.pending_isr.as_ref()).contains(&fetch.replica_id);
            may_join = !in_maximal_isr
                && may_join_isr(&progress, st.high_watermark, st.leader_epoch_start_offset);
        }
        let high_watermark = st.high_watermark;
        drop(st);

        // Read outside the state lock, so appends do not wait behind a follower's read. The
        // read ends at the log end it finds (no bound beyond the log's own).
        self.on_log(|log| {
            let records = log
                .read(fetch.fetch_offset, fetch.max_bytes, i64::MAX, true)?
                .records;
            let (log_start_offset, log_end_offset) =
                log.with(|l| (l.log_start_offset(), l.log_end_offset()));
            Ok(FollowerFetchResult {
                high_watermark,
                log_start_offset,
                log_end_offset,
                diverging: None,
                records,
                may_join_isr: may_join,
            })
        })
    }

    /// The ISR change to propose now, if any (lagging members out first, then caught-up
    /// followers in); at most one is in flight. `lag_max_ms` is `replica.lag.time.max.ms`.
    pub fn propose_isr_change(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrProposal> {
        let mut st = lock(&self.state);
        if !st.state.is_leader(self.local_broker_id) || st.pending_isr.is_some() {
            return None;
        }
        let view = LeaderView {
            leader: self.local_broker_id,
            replicas: &st.state.replicas,
            isr: &st.state.isr,
            followers: &st.followers,
            high_watermark: st.high_watermark,
            leader_epoch_start_offset: st.leader_epoch_start_offset,
        };
        let new_isr = next_isr_change(&view, now_ms, lag_max_ms)?;
        let members = new_isr
            .iter()
            .map(|id| ProposedMember {
                broker_id: *id,
                broker_epoch: (!st.state.isr.contains(id))
                    .then(|| st.followers.get(id).map(|p| p.broker_epoch))
                    .flatten(),
            })
            .collect();
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            isr = ?st.state.isr,
            proposed = ?new_isr,
            "proposing an ISR change"
        );
        st.pending_isr = Some(PendingIsrChange {
            new_isr,
            partition_epoch: st.state.partition_epoch,
        });
        Some(IsrProposal {
            leader_epoch: st.state.leader_epoch,
            partition_epoch: st.state.partition_epoch,
            new_isr: members,
        })
    }

    /// Applies the controller's answer to the proposal in flight.
    pub fn complete_isr_change(&self, outcome: IsrOutcome) {
        let mut st = lock(&self.state);
        st.pending_isr = None;
        if let IsrOutcome::Committed {
            leader_epoch,
            partition_epoch,
            isr,
        } = outcome
            && st.state.is_leader(self.local_broker_id)
            && st.state.leader_epoch == leader_epoch
            && partition_epoch > st.state.partition_epoch
        {
            st.state.isr = isr;
            st.state.partition_epoch = partition_epoch;
            self.publish(&st);
            self.refresh_low_watermark_from_log(&st);
        }
        self.maybe_advance_high_watermark(&mut st);
    }

    // ─── DeleteRecords ─────────────────────────────────────────────────────────────────────

    /// DeleteRecords on the leader: moves the log start offset to `requested` (-1: the high
    /// watermark), deleting the segments wholly below it; returns the offset. The caller
    /// answers once [`Partition::subscribe_low_watermark`] reaches it (see `delete_records`).
    pub fn delete_records(&self, requested: i64) -> Result<i64, PartitionError> {
        let st = lock(&self.state);
        if !st.state.is_leader(self.local_broker_id) {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        let delete_policy = self.read_log(|log| Ok(log.config().cleanup_policy.delete))?;
        let target =
            deletion_target(requested, st.high_watermark, delete_policy).map_err(|refusal| {
                match refusal {
                    DeleteRefusal::Policy => PartitionError::PolicyViolation,
                    DeleteRefusal::OutOfRange => PartitionError::Log(LogError::OffsetOutOfRange {
                        offset: requested,
                        log_start_offset: -1,
                        log_end_offset: st.high_watermark,
                    }),
                }
            })?;
        let log_start_offset = self.with_log(|log| {
            log.advance_log_start_offset(target)?;
            Ok(log.log_start_offset())
        })?;
        tracing::info!(topic = %self.topic, partition = self.index, log_start_offset, "records deleted (DeleteRecords)");
        self.refresh_low_watermark(&st, log_start_offset);
        Ok(target)
    }

    /// The low watermark (leader only; -1 while unknown), changing as followers report.
    pub fn subscribe_low_watermark(&self) -> watch::Receiver<i64> {
        self.low_watermark.subscribe()
    }

    /// [`Partition::refresh_low_watermark`] after the ISR or the role changed.
    fn refresh_low_watermark_from_log(&self, st: &ReplicaState) {
        if let Ok(log_start_offset) = self.read_log(|log| Ok(log.log_start_offset())) {
            self.refresh_low_watermark(st, log_start_offset);
        }
    }

    fn refresh_low_watermark(&self, st: &ReplicaState, local_log_start_offset: i64) {
        let low = if st.state.is_leader(self.local_broker_id) {
            low_watermark(
                self.local_broker_id,
                local_log_start_offset,
                &st.state.isr,
                &st.followers,
            )
        } else {
            -1
        };
        self.low_watermark.send_if_modified(|current| {
            let changed = *current != low;
            *current = low;
            changed
        });
    }

    // ─── Follower side of replication ──────────────────────────────────────────────────────

    /// Where to fetch from next, if this replica follows `leader_epoch`'s leader.
    pub fn fetch_position(&self, leader_epoch: i32) -> Result<FetchPosition, PartitionError> {
        let st = lock(&self.state);
        self.check_follower(&st, leader_epoch)?;
        self.read_log(|log| {
            Ok(FetchPosition {
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
                log_start_offset: log.log_start_offset(),
            })
        })
    }

    /// Appends batches copied from the leader of `leader_epoch` (they keep their offsets and
    /// epochs) and records their producers, so this replica can lead with the same
    /// idempotence state. Refused unless this replica still follows at that epoch.
    pub fn append_as_follower(
        &self,
        leader_epoch: i32,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let mut st = lock(&self.state);
        self.check_follower(&st, leader_epoch)?;
        st.latest_now_ms = st.latest_now_ms.max(now_ms);
        let shoal_log::Appended {
            info,
            log_end_offset,
            ..
        } = self.on_log(|log| Ok(log.append_as_follower(records, now_ms)?))?;
        // The same state and index entries the leader recorded for these bytes.
        let aborted = apply_stored(&mut st.producers, records, now_ms);
        self.set_log_end_offset(&mut st, log_end_offset);
        let indexed = self.append_aborted_txns(&aborted);
        self.refresh_last_stable_offset(&mut st);
        indexed?;
        Ok(info)
    }

    /// Takes the leader's high watermark and log start (a follower's HW is the leader's, capped
    /// by what this log holds).
    pub fn update_follower_offsets(
        &self,
        leader_epoch: i32,
        leader_high_watermark: i64,
        leader_log_start_offset: i64,
    ) -> Result<(), PartitionError> {
        let mut st = lock(&self.state);
        self.check_follower(&st, leader_epoch)?;
        let high_watermark = leader_high_watermark.min(st.log_end_offset);
        let changed = high_watermark != st.high_watermark;
        st.high_watermark = high_watermark;
        self.refresh_last_stable_offset(&mut st);
        if changed {
            self.high_watermark.send_replace(high_watermark);
        }
        self.with_log(|log| {
            if leader_log_start_offset > log.log_start_offset()
                && leader_log_start_offset <= high_watermark
            {
                log.advance_log_start_offset(leader_log_start_offset)?;
            }
            Ok(())
        })
    }

    /// Truncates where the leader of `leader_epoch` reported the logs diverge; returns the new
    /// log end.
    pub fn truncate_for_divergence(
        &self,
        leader_epoch: i32,
        diverging: EpochEndOffset,
    ) -> Result<i64, PartitionError> {
        let mut st = lock(&self.state);
        self.check_follower(&st, leader_epoch)?;
        let high_watermark = st.high_watermark;
        let now_ms = st.latest_now_ms;
        let (new_end, rebuilt) = self.with_log(|log| {
            let offset = truncation_offset(
                diverging,
                log.end_offset_for_epoch(diverging.epoch),
                log.log_end_offset(),
                high_watermark,
            );
            let before = log.log_end_offset();
            log.truncate_to(offset)?;
            tracing::info!(
                topic = %self.topic,
                partition = self.index,
                leader_epoch,
                diverging_epoch = diverging.epoch,
                diverging_end_offset = diverging.end_offset,
                from = before,
                to = log.log_end_offset(),
                "truncated a diverging log tail"
            );
            if log.log_end_offset() == before {
                return Ok((before, None));
            }
            let rebuilt = rebuild_producer_state(&self.dir, log, now_ms)?;
            Ok((log.log_end_offset(), Some(rebuilt)))
        })?;
        if let Some(rebuilt) = rebuilt {
            self.after_truncation(&mut st, new_end, rebuilt);
        }
        Ok(new_end)
    }

    /// The leader's log no longer holds this replica's position: below its log start, restart
    /// empty there; above its log end (an unclean election), truncate to it.
    pub fn reset_to_leader_range(
        &self,
        leader_epoch: i32,
        leader_log_start_offset: i64,
        leader_log_end_offset: i64,
    ) -> Result<i64, PartitionError> {
        let mut st = lock(&self.state);
        self.check_follower(&st, leader_epoch)?;
        let now_ms = st.latest_now_ms;
        let (new_end, rebuilt) = self.with_log(|log| {
            if log.log_end_offset() < leader_log_start_offset {
                log.truncate_fully_and_start_at(leader_log_start_offset)?;
            } else if log.log_end_offset() > leader_log_end_offset {
                log.truncate_to(leader_log_end_offset)?;
            } else {
                return Ok((log.log_end_offset(), None));
            }
            let rebuilt = rebuild_producer_state(&self.dir, log, now_ms)?;
            Ok((log.log_end_offset(), Some(rebuilt)))
        })?;
        if let Some(rebuilt) = rebuilt {
            self.after_truncation(&mut st, new_end, rebuilt);
        }
        Ok(new_end)
    }

    /// Takes the producer state rebuilt for the truncated log (a transaction whose marker was
    /// cut is open again; one whose first batch was cut is gone) and the new log end.
    fn after_truncation(
        &self,
        st: &mut ReplicaState,
        new_end: i64,
        (producers, snapshot_offset): (ProducerStateTable, i64),
    ) {
        st.producers = producers;
        // What the snapshot file now covers (one beyond the new end was removed).
        st.producer_snapshot_offset = snapshot_offset;
        if st.high_watermark > new_end {
            st.high_watermark = new_end;
            self.high_watermark.send_replace(new_end);
        }
        self.set_log_end_offset(st, new_end);
        self.refresh_last_stable_offset(st);
    }

    fn check_follower(&self, st: &ReplicaState, leader_epoch: i32) -> Result<(), PartitionError> {
        if st.state.is_leader(self.local_broker_id)
            || !st.state.replicas.contains(&self.local_broker_id)
        {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        match check_leader_epoch(leader_epoch, st.state.leader_epoch) {
            EpochCheck::Current if leader_epoch >= 0 => Ok(()),
            EpochCheck::Unknown => Err(PartitionError::UnknownLeaderEpoch),
            _ => Err(PartitionError::FencedLeaderEpoch),
        }
    }

    // ─── Maintenance ───────────────────────────────────────────────────────────────────────

    /// Periodic work: the flush policy every call; retention, the HW checkpoint and the producer
    /// snapshot when `due` says so. The checkpoints fsync, and on ext4 an fsync commits the
    /// journal and with it the writeback of dirty segment data, so they run on their own,
    /// longer intervals (as Kafka's) and only when something changed.
    pub fn run_maintenance(&self, now_ms: i64, due: MaintenanceDue) -> Result<(), PartitionError> {
        let high_watermark = self.high_watermark();
        self.with_log(|log| {
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
            Ok(())
        })?;
        if due.producer_snapshot {
            self.snapshot_producers(false)?;
        }
        if let Some(limits) = due.compaction {
            self.compact(now_ms, &limits)?;
        }
        Ok(())
    }

    /// One compaction pass (see `shoal_log::cleaner`): planned and finished under the log
    /// lock, run without it, so produce and fetch wait only for the plan and the swap.
    ///
    /// Nothing at or above Kafka's first uncleanable offset is cleaned: the high watermark and
    /// the last stable offset, which every replica keeps (a follower's from the bytes it
    /// copied and the leader's high watermark), so the cleaner sees decided transactions only.
    /// The producer state says which markers must stay: those of tracked producers that may
    /// be their last entry, and those at or above the producer snapshot a restart replays from.
    fn compact(
        &self,
        now_ms: i64,
        limits: &shoal_log::CleanerLimits,
    ) -> Result<(), PartitionError> {
        let (first_uncleanable_offset, producers) = {
            let st = lock(&self.state);
            let mut producers = shoal_log::ActiveProducers::new(Some(st.producer_snapshot_offset));
            for (producer_id, epoch, last_data_offset) in st.producers.last_records() {
                producers.insert(producer_id, epoch, last_data_offset);
            }
            (st.high_watermark.min(st.last_stable_offset), producers)
        };
        let Some(mut plan) =
            self.read_log(|log| log.plan_clean(now_ms, first_uncleanable_offset))?
        else {
            return Ok(());
        };
        plan.keep_for_producers(producers);
        let outcome = shoal_log::cleaner::run(&plan, limits)?;
        let stats = self.with_log(|log| log.finish_clean(outcome))?;
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            segments_cleaned = stats.segments_cleaned,
            segments_deleted = stats.segments_deleted,
            bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after,
            records_removed = stats.records_removed,
            tombstones_removed = stats.tombstones_removed,
            aborted_records_removed = stats.aborted_records_removed,
            markers_removed = stats.markers_removed,
            first_dirty_offset = stats.first_dirty_offset,
            "compacted"
        );
        Ok(())
    }

    /// Writes the producer table if the log grew since the last snapshot (or always, `force`).
    fn snapshot_producers(&self, force: bool) -> Result<(), PartitionError> {
        let mut st = lock(&self.state);
        let log_end_offset = st.log_end_offset;
        if !force && log_end_offset == st.producer_snapshot_offset {
            return Ok(());
        }
        // The snapshot vouches for the index entries below its offset: they go to disk first.
        self.with_log(Log::flush_txn_indexes)?;
        let snapshot = ProducerSnapshot::new(log_end_offset, st.producers.clone());
        producer_snapshot::write(&self.dir, &snapshot).map_err(|e| {
            PartitionError::Log(shoal_log::LogError::Io {
                path: self.dir.clone(),
                source: e,
            })
        })?;
        st.producer_snapshot_offset = log_end_offset;
        Ok(())
    }

    /// Flushes and closes the log (clean shutdown, or its directory changes). Waiters on this
    /// replica (acks=all, long polls) are woken and find it closed.
    pub fn close(&self) -> Result<(), PartitionError> {
        if let Err(error) = self.snapshot_producers(true) {
            tracing::warn!(topic = %self.topic, partition = self.index, %error, "writing the producer snapshot failed");
        }
        let log = self.take_log();
        // Read once nothing can move it any more (appends and follower fetches need the log).
        let high_watermark = self.high_watermark();
        self.wake_waiters();
        if let Some(mut log) = log {
            log.checkpoint_high_watermark(high_watermark)?;
            log.close()?;
        }
        Ok(())
    }

    /// Removes the log from disk (topic deleted).
    pub fn delete(&self) -> Result<(), PartitionError> {
        let log = self.take_log();
        self.wake_waiters();
        if let Some(log) = log {
            log.delete()?;
        }
        Ok(())
    }

    /// Whether the log was closed or deleted (false while a close is taking it).
    pub fn is_closed(&self) -> bool {
        try_read(&self.log).is_some_and(|log| log.is_none())
    }

    /// Wakes everyone watching the offsets, so they look again and find the log closed.
    fn wake_waiters(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_end_offset.send_modify(|_| {});
        self.last_stable_offset.send_modify(|_| {});
    }

    /// Seals the active segment if it holds anything (see [`Log::roll_now`]).
    pub fn roll_log(&self, now_ms: i64) -> Result<bool, PartitionError> {
        self.with_log(|log| log.roll_now(now_ms))
    }

    /// The log, taken out: later calls report `Closed`. Waits for calls in flight.
    fn take_log(&self) -> Option<Log> {
        let mut guard = self.log.write().unwrap_or_else(|p| p.into_inner());
        guard.take().map(SharedLog::into_inner)
    }

    fn set_log_end_offset(&self, st: &mut ReplicaState, log_end_offset: i64) {
        st.log_end_offset = log_end_offset;
        self.log_end_offset.send_replace(log_end_offset);
    }

    /// Moves the leader's HW to the smallest log end over the maximal ISR, never backwards;
    /// then the LSO (on any replica).
    fn maybe_advance_high_watermark(&self, st: &mut ReplicaState) {
        let advanced =
            st.state.is_leader(self.local_broker_id) && self.advance_leader_high_watermark(st);
        // The LSO first: a fetch woken by the HW then finds both moved.
        self.refresh_last_stable_offset(st);
        if advanced {
            self.high_watermark.send_replace(st.high_watermark);
        }
    }

    /// Moves `st.high_watermark` (not yet published); true if it moved.
    fn advance_leader_high_watermark(&self, st: &mut ReplicaState) -> bool {
        let isr = maximal_isr(&st.state.isr, st.pending_isr.as_ref());
        let mut log_end_offsets = ReplicaLogEndOffsets::new();
        log_end_offsets.insert(self.local_broker_id, st.log_end_offset);
        for (id, progress) in &st.followers {
            if progress.log_end_offset >= 0 {
                log_end_offsets.insert(*id, progress.log_end_offset);
            }
        }
        let candidate = high_watermark_candidate(st.high_watermark, &isr, &log_end_offsets)
            .min(st.log_end_offset);
        match advance_high_watermark(st.high_watermark, candidate) {
            Some(new_hw) => {
                st.high_watermark = new_hw;
                true
            }
            None => false,
        }
    }
}

/// Every follower's progress at the start of a leadership.
fn fresh_followers(
    state: &PartitionState,
    local_broker_id: i32,
    now_ms: i64,
) -> BTreeMap<i32, FollowerProgress> {
    state
        .replicas
        .iter()
        .filter(|id| **id != local_broker_id)
        .map(|id| {
            (
                *id,
                FollowerProgress::at_leadership_start(state.isr.contains(id), now_ms),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic in a test is a failed test

    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    /// Partition t-0 on broker 1, its only replica and leader at epoch 0.
    fn single_replica_leader(dir: &Path) -> Partition {
        let state = PartitionState {
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![1],
            isr: vec![1],
        };
        Partition::open(dir, "t", 0, 1, LogConfig::default(), 1, state, 0).unwrap()
    }

    #[tokio::test]
    async fn acks_waiters_do_not_wait_for_the_state_lock() {
        let dir = tempfile::tempdir().unwrap();
        let partition = Arc::new(single_replica_leader(dir.path()));
        let batch = shoal_log::testing::build_batch(0, 0, &[b"a"]);
        partition
            .append_as_leader(&batch, RequiredAcks::AllInSync, 0)
            .unwrap();
        // Another thread holds the state lock for a while, as a leader append does across its
        // disk write.
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = {
            let partition = Arc::clone(&partition);
            std::thread::spawn(move || {
                let _st = lock(&partition.state);
                locked_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_secs(2));
            })
        };
        locked_rx.recv().unwrap();
        let started = Instant::now();
        let acked = partition.wait_for_acks(1, Duration::from_secs(10)).await;
        let waited = started.elapsed();
        let leader = partition.is_leader();
        holder.join().unwrap();
        assert!(acked.is_ok());
        assert!(leader);
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    }

    /// Partition t-0 on broker 1, leader at epoch 0 of replicas 1 and 2, both in the ISR.
    fn leader_of_two(dir: &Path) -> Partition {
        let state = PartitionState {
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![1, 2],
            isr: vec![1, 2],
        };
        Partition::open(dir, "t", 0, 1, LogConfig::default(), 2, state, 0).unwrap()
    }

    #[tokio::test]
    async fn closing_wakes_acks_waiters_and_long_polls_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let partition = Arc::new(leader_of_two(dir.path()));
        let batch = shoal_log::testing::build_batch(0, 0, &[b"a"]);
        partition
            .append_as_leader(&batch, RequiredAcks::AllInSync, 0)
            .unwrap();
        let mut log_end = partition.subscribe_log_end_offset();
        log_end.borrow_and_update();
        // The follower never fetches: the waiter would wait out its whole timeout.
        let waiter = {
            let partition = Arc::clone(&partition);
            tokio::spawn(async move { partition.wait_for_acks(1, Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert!(!partition.is_closed());
        let started = Instant::now();
        partition.close().unwrap();
        assert!(partition.is_closed());
        let acked = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(acked, Err(PartitionError::Closed)), "{acked:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(log_end.has_changed().unwrap(), "long polls are woken too");
    }

    #[test]
    fn a_light_append_is_done_only_when_nothing_would_block() {
        let dir = tempfile::tempdir().unwrap();
        let partition = single_replica_leader(dir.path());
        let small = shoal_log::testing::build_batch(0, 0, &[b"a"]);
        let light = |records: &[u8], epoch: i32| {
            partition.try_append_as_leader_in_epoch_light(
                records,
                RequiredAcks::AllInSync,
                0,
                AppendOrigin::COORDINATOR,
                epoch,
            )
        };
        // Epoch 0 is not recorded in the log yet (its first append writes the checkpoint).
        assert!(light(&small, 0).is_none());
        partition
            .append_as_leader(&small, RequiredAcks::AllInSync, 0)
            .unwrap();
        let appended = light(&small, 0).unwrap().unwrap();
        assert_eq!(
            (
                appended.info.first_offset,
                partition.read_log(|log| Ok(log.log_end_offset())).unwrap()
            ),
            (1, 2)
        );
        // Another leader epoch: refused as the blocking append refuses it.
        assert!(matches!(
            light(&small, 7),
            Some(Err(PartitionError::NotLeaderOrFollower))
        ));
        // Too big for an async thread.
        let value = vec![1u8; LIGHT_APPEND_MAX_BYTES];
        let big = shoal_log::testing::build_batch(0, 0, &[&value]);
        assert!(light(&big, 0).is_none());
        // The state lock is held (an append in progress): not waited for.
        {
            let _st = lock(&partition.state);
            assert!(light(&small, 0).is_none());
        }
        // Markers: a commit is light, an abort (which writes the aborted-transaction index)
        // is not.
        let marker = |control| TxnMarker {
            producer_id: 5,
            producer_epoch: 0,
            coordinator_epoch: 0,
            control,
        };
        assert!(
            partition
                .try_write_txn_marker_light(&marker(shoal_log::control::ControlType::Abort), 0)
                .is_none()
        );
        let commit = partition
            .try_write_txn_marker_light(&marker(shoal_log::control::ControlType::Commit), 0)
            .unwrap()
            .unwrap();
        assert_eq!(commit.info.first_offset, 2);
        assert_eq!(
            partition.read_log(|log| Ok(log.log_end_offset())).unwrap(),
            3,
            "nothing else was appended"
        );
    }
}
