//! `GroupCoordinator`: the groups of the `__consumer_offsets` partitions this broker leads.
//!
//! Each such partition is a *shard* (Kafka's coordinator shards): its groups and their
//! committed offsets, in memory, rebuilt from the partition when this broker becomes its
//! leader ([`GroupCoordinator::begin_load`] / [`GroupCoordinator::finish_load`]) and dropped
//! when it stops leading it ([`GroupCoordinator::unload`]). Requests for a group whose shard is
//! not here get NOT_COORDINATOR (the client finds the coordinator again); while it loads,
//! COORDINATOR_LOAD_IN_PROGRESS (heartbeats get NONE, as in Kafka).
//!
//! **One writer per shard.** Every operation on a shard holds its lock from validation until
//! its records are replicated (the [`OffsetsStorage`] append resolves at the high watermark),
//! so what a client is told was stored is stored, and two operations never interleave their
//! writes. Requests that must wait for other members (JoinGroup, a follower's SyncGroup) park
//! on a channel and release the lock. A timer task ([`GroupCoordinator::run_timers`]) drives
//! every group's deadlines (sessions, rebalance and sync timeouts, the initial delay): it
//! sleeps until the earliest one ([`ClassicGroup::next_deadline_ms`]) and is woken when a
//! request sets an earlier one, so a member expires at its deadline, not at the next poll.
//!
//! **Transactional offsets** (TxnOffsetCommit, see `txn_offsets`): written as one
//! transactional batch of the producer, then pending — invisible to OffsetFetch, which answers
//! UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets — until the broker reports
//! the producer's marker on the partition ([`GroupCoordinator::complete_txn`]). A marker that
//! arrives while the shard loads is kept and applied when the load finishes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::authority::Authority;
use crate::consumer::group::{ConsumerGroup, ConsumerGroupSettings, TopicResolver};
use crate::consumer::group_config::GroupConfigSource;
use crate::coordinator_key::partition_for;
use crate::error::{GroupError, StorageError};
use crate::group::{
    ClassicGroup, GroupSettings, GroupState, JoinAction, JoinRequest, JoinResponse,
    MemberDescription, SyncAction, SyncRequest, SyncResponse,
};
use crate::records::{OffsetValue, RecordKey, encode_group_value, encode_key, encode_offset_value};
use crate::replay::{Offsets, OffsetsReplay, StoredOffset};
use crate::retention::{expired_consumer_offsets, expired_offsets};
use crate::txn_offsets::{MAX_PENDING_TXN_OFFSETS, PendingTxnOffsets};

/// The producer a transactional write belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// A commit's offsets as records (see `GroupCoordinator::encode_commits`).
struct EncodedCommits {
    results: Vec<GroupError>,
    records: Vec<(Bytes, Option<Bytes>)>,
    accepted: Vec<(usize, (String, i32), OffsetValue)>,
}

/// Writes to `__consumer_offsets` (implemented by the broker over its partitions).
pub trait OffsetsStorage: Send + Sync + 'static {
    /// Appends `records` (key, value; `None` = tombstone) to `partition` as its leader, as one
    /// batch, and resolves once they are replicated to the ISR (the high watermark passed
    /// them), to the log offset of the first record (record `i` is at that offset + `i`).
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>>;

    /// The same, as one transactional batch of `producer` (its id and epoch, no sequence): the
    /// records count only once the producer's commit marker follows them.
    fn append_transactional(
        &self,
        partition: i32,
        producer: TxnProducer,
        verification: Option<u64>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>>;
}

#[derive(Debug, Clone, Copy)]
pub struct CoordinatorConfig {
    /// `offsets.topic.num.partitions` (used until the topic exists, then its real count).
    pub offsets_partitions: i32,
    pub group: GroupSettings,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `offset.metadata.max.bytes`
    pub metadata_max_bytes: usize,
    /// `offsets.commit.timeout.ms`
    pub commit_timeout_ms: u64,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `group.consumer.*`
    pub consumer: ConsumerGroupSettings,
    /// `group.coordinator.rebalance.protocols` lists `consumer`.
    pub consumer_protocol: bool,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_partitions: 50,
            group: GroupSettings {
                initial_rebalance_delay_ms: 3_000,
                max_size: usize::MAX,
            },
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            metadata_max_bytes: 4_096,
            commit_timeout_ms: 5_000,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            retention_check_interval_ms: 600_000,
            consumer: ConsumerGroupSettings::default(),
            consumer_protocol: true,
        }
    }
}

/// Longest the timer task sleeps with no deadline due (it then notices a dropped coordinator).
const MAX_TIMER_SLEEP_MS: u64 = 1_000;
/// Slack on top of the rebalance timeout before a parked JoinGroup gives up.
const JOIN_WAIT_SLACK_MS: u64 = 10_000;
/// Longest a follower's SyncGroup stays parked (its group's sync deadline comes first).
const MAX_SYNC_WAIT_MS: u64 = 1_800_000;
/// Most transaction markers one loading shard keeps for after its load; past it the load is
/// repeated (it then reads those markers from the log).
const MAX_DEFERRED_MARKERS: usize = 100_000;

/// One partition to commit an offset for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// OffsetCommit v2-v4's `retention_time_ms`, when not -1: the offset expires this long
    /// after the commit. `None` = `offsets.retention.minutes`, applied as the group allows.
    pub retention_ms: Option<i64>,
}

/// A TxnOffsetCommit's producer and member (KIP-447: a named member or generation is checked
/// like OffsetCommit's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnCommit {
    pub producer: TxnProducer,
    /// KIP-890: the guard the storage layer issued before the transaction coordinator was
    /// asked (opaque here, checked by the log); `None` when no check was needed.
    pub verification: Option<u64>,
    pub generation_id: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// One partition of an OffsetFetch answer: its committed offset (`None`: no commit), or a
/// partition error (UNSTABLE_OFFSET_COMMIT).
pub type FetchedOffset = ((String, i32), Result<Option<OffsetValue>, GroupError>);

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub error: GroupError,
    /// Kafka's state name: a classic group's (`GroupState::name`) or a consumer group's.
    pub state: &'static str,
    pub protocol_type: String,
    /// The protocol name when Stable, else "".
    pub protocol_data: String,
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: &'static str,
    /// `classic` or `consumer` (ListGroups v5's group type).
    pub group_type: &'static str,
}

#[derive(Default)]
struct ShardState {
    loading: bool,
    groups: HashMap<String, ClassicGroup>,
    /// KIP-848 consumer groups; an id is never in both maps.
    consumer_groups: HashMap<String, ConsumerGroup>,
    offsets: HashMap<String, Offsets>,
    pending: PendingTxnOffsets,
    /// Markers reported while loading, as (producer id, commit, log offset): applied in log
    /// order once the load is in (one the load read already decides nothing more).
    deferred_markers: Vec<(i64, bool, i64)>,
    /// More markers arrived while loading than are kept: the load must be repeated.
    deferred_overflow: bool,
}

struct Shard {
    partition: i32,
    epoch: i32,
    state: Arc<tokio::sync::Mutex<ShardState>>,
}

type ShardGuard = tokio::sync::OwnedMutexGuard<ShardState>;

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    storage: Arc<dyn OffsetsStorage>,
    partitions: AtomicI32,
    shards: Mutex<HashMap<i32, Arc<Shard>>>,
    origin: Instant,
    authority: std::sync::OnceLock<Arc<dyn Authority>>,
    /// The topics consumer groups subscribe to (the broker's metadata).
    topics: std::sync::OnceLock<Arc<dyn TopicResolver>>,
    /// Consumer groups' own settings (KIP-848 group configs, the broker's metadata).
    group_configs: std::sync::OnceLock<Arc<dyn GroupConfigSource>>,
    /// When the timer task runs next (monotonic ms; `i64::MAX`: no deadline known).
    next_wake_ms: AtomicI64,
    /// Wakes the timer task for a deadline earlier than `next_wake_ms`.
    timer_wake: Arc<tokio::sync::Notify>,
}

/// A group id a request may name: not empty, and short enough for a record key's `int16`
/// length (a longer one would be stored cut short, under another group's key).
fn valid_group_id(group_id: &str) -> bool {
    !group_id.is_empty() && group_id.len() <= MAX_ID_BYTES
}

/// Wall-clock ms since the Unix epoch: only for what is stored or shown (commit and expiry
/// timestamps), never for deadlines.
fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig, storage: Arc<dyn OffsetsStorage>) -> Arc<Self> {
        Arc::new(GroupCoordinator {
            partitions: AtomicI32::new(config.offsets_partitions.max(1)),
            config,
            storage,
            shards: Mutex::new(HashMap::new()),
            origin: Instant::now(),
            authority: std::sync::OnceLock::new(),
            topics: std::sync::OnceLock::new(),
            group_configs: std::sync::OnceLock::new(),
            next_wake_ms: AtomicI64::new(i64::MAX),
            timer_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// A group's deadlines may have moved: the timer task wakes for the earliest one.
    fn deadline_set(&self, deadline_ms: Option<i64>) {
        if let Some(deadline_ms) = deadline_ms
            && self.next_wake_ms.fetch_min(deadline_ms, Ordering::AcqRel) > deadline_ms
        {
            self.timer_wake.notify_one();
        }
    }

    /// Sets what decides whether this broker may still answer as coordinator (see
    /// [`Authority`]); the first call wins.
    pub fn set_authority(&self, authority: Arc<dyn Authority>) {
        let _ = self.authority.set(authority);
    }

    /// Sets where consumer groups look topics up; the first call wins. Until then
    /// ConsumerGroupHeartbeat answers COORDINATOR_NOT_AVAILABLE.
    pub fn set_topic_resolver(&self, topics: Arc<dyn TopicResolver>) {
        let _ = self.topics.set(topics);
    }

    /// Sets where consumer groups' own settings are found; the first call wins. Until then
    /// every group has the broker's.
    pub fn set_group_configs(&self, configs: Arc<dyn GroupConfigSource>) {
        let _ = self.group_configs.set(configs);
    }

    /// The `group.consumer.*` settings of consumer group `group_id`: the broker's, with the
    /// group's overrides in force.
    fn consumer_settings(&self, group_id: &str) -> ConsumerGroupSettings {
        let overrides = self
            .group_configs
            .get()
            .map(|c| c.overrides(group_id))
            .unwrap_or_default();
        self.config.consumer.with_overrides(overrides)
    }

    /// Where consumer groups look topics up (one that knows none until the broker set it).
    fn topic_resolver(&self) -> Arc<dyn TopicResolver> {
        self.topics
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(crate::consumer::group::NoTopics))
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Monotonic ms since this coordinator started: the clock of session and rebalance deadlines.
    fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// The real partition count of `__consumer_offsets`, once it exists.
    pub fn set_partition_count(&self, partitions: i32) {
        self.partitions.store(partitions.max(1), Ordering::Release);
    }

    /// The offsets partition that coordinates `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partitions.load(Ordering::Acquire))
    }

    fn lock_shards(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Arc<Shard>>> {
        self.shards.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Partitions with a shard here, with the leader epoch each was loaded at.
    pub fn loaded_partitions(&self) -> Vec<(i32, i32)> {
        self.lock_shards()
            .values()
            .map(|s| (s.partition, s.epoch))
            .collect()
    }

    // ─── Loading ─────────────────────────────────────────────────────────────────────────

    /// This broker leads `partition` at `epoch`: requests for its groups wait for the load.
    pub async fn begin_load(&self, partition: i32, epoch: i32) {
        let shard = Arc::new(Shard {
            partition,
            epoch,
            state: Arc::new(tokio::sync::Mutex::new(ShardState {
                loading: true,
                ..ShardState::default()
            })),
        });
        let old = self.lock_shards().insert(partition, shard);
        if let Some(old) = old {
            unload_shard(&old).await;
        }
    }

    /// The partition read back from its start ([`OffsetsReplay`]) becomes the shard's groups
    /// and offsets (transactional ones still undecided stay pending), markers reported during
    /// the load are applied, and its requests are served from now on. `false`: the load must
    /// be repeated (too many markers arrived meanwhile) — the caller abandons and retries it.
    pub async fn finish_load(&self, partition: i32, epoch: i32, replay: OffsetsReplay) -> bool {
        let Some(shard) = self.lock_shards().get(&partition).cloned() else {
            return true;
        };
        if shard.epoch != epoch {
            return true;
        }
        let OffsetsReplay {
            groups,
            consumer_groups,
            offsets,
            pending,
            records: count,
            skipped,
            ..
        } = replay;
        let now = self.monotonic_ms();
        let mut state = shard.state.lock().await;
        if state.deferred_overflow {
            tracing::warn!(
                partition,
                epoch,
                "too many transaction markers arrived while loading; loading again"
            );
            return false;
        }
        for (id, value) in groups {
            if let Some(value) = value
                && !consumer_groups.contains_key(&id)
            {
                let group = ClassicGroup::from_stored(&id, value, now);
                self.deadline_set(group.next_deadline_ms());
                state.groups.insert(id.clone(), group);
            }
        }
        for (id, mut group) in consumer_groups {
            if group.group_epoch() == 0 {
                // Records of a group whose first write never completed: no group.
                continue;
            }
            let dropped = group.drop_incomplete_members();
            if dropped > 0 {
                tracing::warn!(group = %id, members = dropped, "dropped consumer group members without a member record");
            }
            group.restart_timers(&self.consumer_settings(&id), now);
            self.deadline_set(group.next_deadline_ms());
            state.consumer_groups.insert(id, group);
        }
        for id in offsets.keys().chain(pending.groups()) {
            if !state.consumer_groups.contains_key(id) {
                state
                    .groups
                    .entry(id.clone())
                    .or_insert_with(|| ClassicGroup::new(id, wall_ms()));
            }
        }
        state.offsets = offsets;
        state.pending = pending;
        let mut deferred = std::mem::take(&mut state.deferred_markers);
        deferred.sort_by_key(|(_, _, marker_offset)| *marker_offset);
        let ShardState {
            offsets, pending, ..
        } = &mut *state;
        for (producer_id, commit, marker_offset) in deferred {
            pending.complete(producer_id, commit, marker_offset, offsets);
        }
        state.loading = false;
        if count > 0 || skipped > 0 {
            tracing::info!(
                partition,
                epoch,
                records = count,
                skipped,
                groups = state.groups.len(),
                consumer_groups = state.consumer_groups.len(),
                pending_transactions = state.pending.producers(),
                "loaded a consumer offsets partition"
            );
        } else {
            tracing::debug!(
                partition,
                epoch,
                "loaded an empty consumer offsets partition"
            );
        }
        true
    }

    /// A load at `epoch` failed: drop that shard, unless a newer load replaced it meanwhile.
    pub async fn abandon_load(&self, partition: i32, epoch: i32) {
        let shard = {
            let mut shards = self.lock_shards();
            match shards.get(&partition) {
                Some(s) if s.epoch == epoch => shards.remove(&partition),
                _ => None,
            }
        };
        if let Some(shard) = shard {
            unload_shard(&shard).await;
        }
    }

    /// This broker no longer leads `partition`: its groups' parked requests are told
    /// NOT_COORDINATOR and later requests go elsewhere.
    pub async fn unload(&self, partition: i32) {
        let shard = self.lock_shards().remove(&partition);
        if let Some(shard) = shard {
            unload_shard(&shard).await;
            tracing::info!(partition, "unloaded a consumer offsets partition");
        }
    }

    /// The shard coordinating `group_id`, locked, once loaded (COORDINATOR_LOAD_IN_PROGRESS
    /// before): its offsets partition and state.
    async fn active_shard(&self, group_id: &str) -> Result<(i32, ShardGuard), GroupError> {
        let shard = self.shard_of(group_id)?;
        let state = Arc::clone(&shard.state).lock_owned().await;
        if state.loading {
            return Err(GroupError::CoordinatorLoadInProgress);
        }
        Ok((shard.partition, state))
    }

    /// Whether the shard of `group_id` is here (loaded or loading).
    pub fn coordinates(&self, group_id: &str) -> bool {
        self.shard_of(group_id).is_ok()
    }

    fn shard_of(&self, group_id: &str) -> Result<Arc<Shard>, GroupError> {
        if self.authority.get().is_some_and(|a| !a.holds()) {
            return Err(GroupError::NotCoordinator);
        }
        let partition = self.partition_for(group_id);
        self.lock_shards()
            .get(&partition)
            .cloned()
            .ok_or(GroupError::NotCoordinator)
    }

    /// Appends `records` (as `producer`'s transactional batch when given), bounded by
    /// `offsets.commit.timeout.ms`: the log offset of the first record.
    async fn write_as(
        &self,
        partition: i32,
        producer: Option<(TxnProducer, Option<u64>)>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<i64, StorageError> {
        let timeout = Duration::from_millis(self.config.commit_timeout_ms);
        let append = match producer {
            None => self.storage.append(partition, records),
            Some((producer, verification)) => {
                self.storage
                    .append_transactional(partition, producer, verification, records)
            }
        };
        match tokio::time::timeout(timeout, append).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::TimedOut),
        }
    }

    async fn write(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<i64, StorageError> {
        self.write_as(partition, None, records).await
    }

    /// Writes the group record `group` left, if any, and tells it the outcome.
    async fn flush_group(
        &self,
        partition: i32,
        group: &mut ClassicGroup,
    ) -> Result<(), GroupError> {
        let Some(value) = group.take_persist() else {
            self.deadline_set(group.next_deadline_ms());
            return Ok(());
        };
        let key = encode_key(&RecordKey::Group {
            group: group.id.clone(),
        });
        let result = self
            .write(partition, vec![(key, Some(encode_group_value(&value)))])
            .await;
        let error = result
            .as_ref()
            .err()
            .map_or(GroupError::None, StorageError::to_group_error);
        if let Err(e) = &result {
            tracing::warn!(group = %group.id, error = %e, "writing group metadata failed");
        }
        group.persisted(
            result.is_ok(),
            error,
            self.monotonic_ms(),
            wall_ms(),
            &self.config.group,
        );
        self.deadline_set(group.next_deadline_ms());
        if error.is_ok() { Ok(()) } else { Err(error) }
    }

    // ─── Group membership ────────────────────────────────────────────────────────────────

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResponse {
        let member_id = req.member_id.clone();
        let fail = |e| JoinResponse::error(e, &member_id);
        if !valid_group_id(group_id) {
            return fail(GroupError::InvalidGroupId);
        }
        // Every string a group record keeps must fit its int16 length, or it would be stored
        // cut short (the client id and host come from the request header, already bounded).
        let too_long = |s: &str| s.len() > MAX_ID_BYTES;
        if too_long(&req.member_id)
            || req.group_instance_id.as_deref().is_some_and(too_long)
            || too_long(&req.protocol_type)
            || req.protocols.iter().any(|(name, _)| too_long(name))
        {
            return fail(GroupError::InvalidRequest);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return fail(GroupError::InvalidSessionTimeout);
        }
        let wait_ms = u64::try_from(req.rebalance_timeout_ms.max(0)).unwrap_or(0)
            + u64::try_from(self.config.group.initial_rebalance_delay_ms).unwrap_or(0)
            + JOIN_WAIT_SLACK_MS;
        let action = {
            let (partition, mut state) = match self.active_shard(group_id).await {
                Ok(active) => active,
                Err(e) => return fail(e),
            };
            if let Some(consumer) = state.consumer_groups.get(group_id) {
                // A consumer group with members takes classic members as its own; an empty
                // one becomes a classic group.
                if !consumer.is_empty() {
                    return self
                        .classic_join_consumer(partition, &mut state, group_id, req)
                        .await;
                }
                let records = Self::consumer_delete_records(consumer, group_id);
                if let Err(e) = self.write(partition, records).await {
                    return fail(e.to_group_error());
                }
                state.consumer_groups.remove(group_id);
                tracing::info!(
                    group = group_id,
                    "an empty consumer group became a classic group"
                );
            }
            if !state.groups.contains_key(group_id) {
                if !req.member_id.is_empty() {
                    return fail(GroupError::UnknownMemberId);
                }
                state
                    .groups
                    .insert(group_id.to_string(), ClassicGroup::new(group_id, wall_ms()));
            }
            let Some(group) = state.groups.get_mut(group_id) else {
                return fail(GroupError::CoordinatorNotAvailable);
            };
            let action = group.join(req, self.monotonic_ms(), wall_ms(), &self.config.group);
            let flushed = self.flush_group(partition, group).await;
            match (action, flushed) {
                (JoinAction::ReplyAfterPersist(_), Err(e)) => return fail(e),
                (JoinAction::ReplyAfterPersist(response), Ok(())) => return response,
                (action, _) => action,
            }
        };
        match action {
            JoinAction::Reply(response) | JoinAction::ReplyAfterPersist(response) => response,
            JoinAction::Wait(rx) => {
                match tokio::time::timeout(Duration::from_millis(wait_ms), rx).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(_)) => fail(GroupError::NotCoordinator),
                    Err(_) => fail(GroupError::RebalanceInProgress),
                }
            }
        }
    }

    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResponse {
        if !valid_group_id(group_id) {
            return SyncResponse::error(GroupError::InvalidGroupId);
        }
        let action = {
            let (partition, mut state) = match self.active_shard(group_id).await {
                Ok(active) => active,
                Err(e) => return SyncResponse::error(e),
            };
            if let Some(consumer) = state.consumer_groups.get_mut(group_id) {
                return self.classic_sync_consumer(consumer, &req);
            }
            let Some(group) = state.groups.get_mut(group_id) else {
                return SyncResponse::error(GroupError::UnknownMemberId);
            };
            let action = group.sync(req, self.monotonic_ms());
            // The leader's assignment: stored before anyone is answered.
            let _ = self.flush_group(partition, group).await;
            action
        };
        match action {
            SyncAction::Reply(response) => response,
            // The group's sync deadline answers a waiting follower; this bound only guards
            // against a bug leaving the request parked forever.
            SyncAction::Wait(rx) => {
                match tokio::time::timeout(Duration::from_millis(MAX_SYNC_WAIT_MS), rx).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(_)) => SyncResponse::error(GroupError::NotCoordinator),
                    Err(_) => SyncResponse::error(GroupError::RebalanceInProgress),
                }
            }
        }
    }

    pub async fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> GroupError {
        if !valid_group_id(group_id) {
            return GroupError::InvalidGroupId;
        }
        let shard = match self.shard_of(group_id) {
            Ok(shard) => shard,
            Err(e) => return e,
        };
        let mut state = shard.state.lock().await;
        if state.loading {
            return GroupError::None;
        }
        if let Some(consumer) = state.consumer_groups.get_mut(group_id) {
            return self.classic_heartbeat_consumer(
                consumer,
                generation_id,
                member_id,
                instance_id,
            );
        }
        match state.groups.get_mut(group_id) {
            Some(group) => {
                let result =
                    group.heartbeat(generation_id, member_id, instance_id, self.monotonic_ms());
                self.deadline_set(group.next_deadline_ms());
                result
            }
            None => GroupError::UnknownMemberId,
        }
    }

    /// LeaveGroup: the group-level error, and one error per member.
    pub async fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (GroupError, Vec<GroupError>) {
        if !valid_group_id(group_id) {
            return (GroupError::InvalidGroupId, Vec::new());
        }
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return (e, Vec::new()),
        };
        if state.consumer_groups.contains_key(group_id) {
            return self
                .classic_leave_consumer(partition, &mut state, group_id, members)
                .await;
        }
        let Some(group) = state.groups.get_mut(group_id) else {
            return (
                GroupError::None,
                vec![GroupError::UnknownMemberId; members.len()],
            );
        };
        let results = group.leave(members, self.monotonic_ms(), wall_ms(), &self.config.group);
        let _ = self.flush_group(partition, group).await;
        (GroupError::None, results)
    }

    // ─── Offsets ─────────────────────────────────────────────────────────────────────────

    /// OffsetCommit: one error per offset, in order. `unknown_group_is_not_found` is v9+'s rule
    /// for an unknown group committed to with a generation (GROUP_ID_NOT_FOUND, else
    /// ILLEGAL_GENERATION).
    pub async fn commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<CommitOffset>,
        unknown_group_is_not_found: bool,
    ) -> Vec<GroupError> {
        let all = |e: GroupError| vec![e; offsets.len()];
        if group_id.len() > MAX_ID_BYTES {
            return all(GroupError::InvalidGroupId);
        }
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return all(e),
        };
        let consumer_check = state.consumer_groups.get(group_id).map(|g| {
            g.validate_offset_commit(member_id, generation_id, false, unknown_group_is_not_found)
        });
        let check = match state.groups.get_mut(group_id) {
            _ if consumer_check.is_some() => consumer_check.unwrap_or(GroupError::None),
            Some(group) => {
                let check = group.validate_commit(
                    generation_id,
                    member_id,
                    instance_id,
                    self.monotonic_ms(),
                );
                self.deadline_set(group.next_deadline_ms());
                check
            }
            None if generation_id < 0 => {
                state
                    .groups
                    .insert(group_id.to_string(), ClassicGroup::new(group_id, wall_ms()));
                GroupError::None
            }
            None if unknown_group_is_not_found => GroupError::GroupIdNotFound,
            None => GroupError::IllegalGeneration,
        };
        if !check.is_ok() {
            return all(check);
        }
        let commit_ms = wall_ms();
        let EncodedCommits {
            mut results,
            records,
            accepted,
        } = self.encode_commits(group_id, offsets, commit_ms);
        if records.is_empty() {
            return results;
        }
        match self.write(partition, records).await {
            Ok(base_offset) => {
                let stored = state.offsets.entry(group_id.to_string()).or_default();
                for (i, (_, key, value)) in accepted.into_iter().enumerate() {
                    let record_offset = base_offset.saturating_add(i as i64);
                    stored.insert(
                        key,
                        StoredOffset {
                            value,
                            record_offset,
                        },
                    );
                }
            }
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "offset commit not stored");
                let error = e.to_group_error();
                for (i, _, _) in accepted {
                    results[i] = error;
                }
            }
        }
        results
    }

    /// The committed offset of each partition asked (every one, for `None`); partitions
    /// without a commit get `None`. Pending transactional offsets are not shown.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<((String, i32), Option<OffsetValue>)>, GroupError> {
        let fetched = self.offset_fetch(group_id, partitions, false, None).await?;
        Ok(fetched
            .into_iter()
            .map(|(key, value)| (key, value.unwrap_or_default()))
            .collect())
    }

    /// OffsetFetch: the committed offset of each partition asked (every committed one, for
    /// `None`); partitions without a commit get `Ok(None)` (offset -1). With `require_stable`
    /// (v7+), a partition with a transactional offset pending answers UNSTABLE_OFFSET_COMMIT
    /// (the client retries until the transaction ends), as Kafka's `fetchOffsets`.
    pub async fn offset_fetch(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
        require_stable: bool,
        member: Option<(&str, i32)>,
    ) -> Result<Vec<FetchedOffset>, GroupError> {
        let (_, state) = self.active_shard(group_id).await?;
        // OffsetFetch v9 from a consumer group member: it must be one, at its epoch.
        if let (Some((member_id, member_epoch)), Some(group)) =
            (member, state.consumer_groups.get(group_id))
        {
            let check = group.validate_offset_fetch(member_id, member_epoch);
            if !check.is_ok() {
                return Err(check);
            }
        }
        let stored = state.offsets.get(group_id);
        let answer = |key: (String, i32), value: Option<&StoredOffset>| {
            if require_stable && state.pending.is_pending(group_id, &key) {
                (key, Err(GroupError::UnstableOffsetCommit))
            } else {
                (key, Ok(value.map(|s| s.value.clone())))
            }
        };
        Ok(match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|key| {
                    let value = stored.and_then(|s| s.get(&key));
                    answer(key, value)
                })
                .collect(),
            None => stored
                .map(|s| s.iter().map(|(k, v)| answer(k.clone(), Some(v))).collect())
                .unwrap_or_default(),
        })
    }

    // ─── Transactional offsets ───────────────────────────────────────────────────────────

    /// TxnOffsetCommit: one error per offset, in order. The group's checks (an unknown group
    /// is created empty for generation < 0, else ILLEGAL_GENERATION), then the offsets are
    /// written as one transactional batch of the producer and held pending until its marker
    /// ([`GroupCoordinator::complete_txn`]).
    /// The offset records of a commit, in request order: each partition's answer so far
    /// (OFFSET_METADATA_TOO_LARGE, or None for one to write), the records to write and, for
    /// each, (its answer's index, the partition, the value).
    fn encode_commits(
        &self,
        group_id: &str,
        offsets: Vec<CommitOffset>,
        commit_ms: i64,
    ) -> EncodedCommits {
        let mut encoded = EncodedCommits {
            results: Vec::with_capacity(offsets.len()),
            records: Vec::new(),
            accepted: Vec::new(),
        };
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.encode_utf16().count() > self.config.metadata_max_bytes {
                encoded.results.push(GroupError::OffsetMetadataTooLarge);
                continue;
            }
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp_ms: commit_ms,
                expire_timestamp_ms: o.retention_ms.map(|r| commit_ms.saturating_add(r)),
            };
            let key = RecordKey::Offset {
                group: group_id.to_string(),
                topic: o.topic.clone(),
                partition: o.partition,
            };
            encoded
                .records
                .push((encode_key(&key), Some(encode_offset_value(&value))));
            encoded
                .accepted
                .push((encoded.results.len(), (o.topic, o.partition), value));
            encoded.results.push(GroupError::None);
        }
        encoded
    }

    pub async fn txn_commit(
        &self,
        group_id: &str,
        txn: TxnCommit,
        offsets: Vec<CommitOffset>,
    ) -> Vec<GroupError> {
        let all = |e: GroupError| vec![e; offsets.len()];
        if !valid_group_id(group_id) {
            return all(GroupError::InvalidGroupId);
        }
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return all(e),
        };
        let consumer_check = state
            .consumer_groups
            .get(group_id)
            .map(|g| g.validate_offset_commit(&txn.member_id, txn.generation_id, true, true));
        let check = match state.groups.get(group_id) {
            _ if consumer_check.is_some() => consumer_check.unwrap_or(GroupError::None),
            Some(group) => group.validate_txn_commit(
                txn.generation_id,
                &txn.member_id,
                txn.instance_id.as_deref(),
            ),
            None if txn.generation_id < 0 => GroupError::None,
            None => GroupError::IllegalGeneration,
        };
        if !check.is_ok() {
            return all(check);
        }
        let producer_id = txn.producer.producer_id;
        let keys: Vec<(String, i32)> = offsets
            .iter()
            .map(|o| (o.topic.clone(), o.partition))
            .collect();
        if !state
            .pending
            .fits(producer_id, group_id, &keys, MAX_PENDING_TXN_OFFSETS)
        {
            tracing::warn!(
                group = group_id,
                producer_id,
                limit = MAX_PENDING_TXN_OFFSETS,
                "refused a transactional offset commit: too many partitions pending"
            );
            return all(GroupError::InvalidCommitOffsetSize);
        }
        let commit_ms = wall_ms();
        let EncodedCommits {
            mut results,
            records,
            accepted,
        } = self.encode_commits(group_id, offsets, commit_ms);
        if records.is_empty() {
            return results;
        }
        match self
            .write_as(partition, Some((txn.producer, txn.verification)), records)
            .await
        {
            Ok(base_offset) => {
                // Kafka creates the group a transactional commit names, empty.
                if !state.consumer_groups.contains_key(group_id) {
                    state
                        .groups
                        .entry(group_id.to_string())
                        .or_insert_with(|| ClassicGroup::new(group_id, wall_ms()));
                }
                for (i, (_, key, value)) in accepted.into_iter().enumerate() {
                    let record_offset = base_offset.saturating_add(i as i64);
                    let stored = StoredOffset {
                        value,
                        record_offset,
                    };
                    state.pending.add(producer_id, group_id, key, stored);
                }
            }
            Err(e) => {
                tracing::warn!(group = group_id, producer_id, error = %e, "transactional offset commit not stored");
                let error = e.to_group_error();
                for (i, _, _) in accepted {
                    results[i] = error;
                }
            }
        }
        results
    }

    /// A commit (`commit`) or abort marker of `producer_id` was written at `marker_offset` on
    /// offsets `partition` and replicated: the producer's offsets pending there from before the
    /// marker become the groups' offsets (unless a later commit holds the partition) or are
    /// dropped. While the shard loads, the marker is kept for the end of the load.
    pub async fn complete_txn(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
    ) {
        let Some(shard) = self.lock_shards().get(&partition).cloned() else {
            return;
        };
        let mut state = shard.state.lock().await;
        if state.loading {
            if state.deferred_markers.len() < MAX_DEFERRED_MARKERS {
                state
                    .deferred_markers
                    .push((producer_id, commit, marker_offset));
            } else {
                state.deferred_overflow = true;
            }
            return;
        }
        let ShardState {
            offsets, pending, ..
        } = &mut *state;
        let done = pending.complete(producer_id, commit, marker_offset, offsets);
        if done != Default::default() {
            tracing::debug!(
                partition,
                producer_id,
                commit,
                materialized = done.materialized,
                superseded = done.superseded,
                dropped = done.dropped,
                "transactional offsets decided"
            );
        }
    }

    pub async fn describe(&self, group_id: &str) -> GroupDescription {
        let dead = |error| GroupDescription {
            error,
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        let (_, state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return dead(e),
        };
        if let Some(group) = state.consumer_groups.get(group_id) {
            let topics = self.topics.get().cloned();
            return consumer_ops::describe_as_classic(
                group,
                topics.as_deref(),
                &self.consumer_settings(group_id),
            );
        }
        match state.groups.get(group_id) {
            None => dead(GroupError::None),
            Some(group) => GroupDescription {
                error: GroupError::None,
                state: group.state().name(),
                protocol_type: group.protocol_type().unwrap_or_default().to_string(),
                protocol_data: if group.state() == GroupState::Stable {
                    group.protocol_name().unwrap_or_default().to_string()
                } else {
                    String::new()
                },
                members: group.describe_members(),
            },
        }
    }

    /// ListGroups over every shard here; a loading shard fails the whole answer.
    pub async fn list(&self) -> Result<Vec<ListedGroup>, GroupError> {
        let shards: Vec<Arc<Shard>> = self.lock_shards().values().cloned().collect();
        let mut out = Vec::new();
        for shard in shards {
            let state = shard.state.lock().await;
            if state.loading {
                return Err(GroupError::CoordinatorLoadInProgress);
            }
            for group in state.groups.values() {
                out.push(ListedGroup {
                    group_id: group.id.clone(),
                    protocol_type: group.protocol_type().unwrap_or_default().to_string(),
                    state: group.state().name(),
                    group_type: "classic",
                });
            }
            for group in state.consumer_groups.values() {
                out.push(ListedGroup {
                    group_id: group.id.clone(),
                    protocol_type: "consumer".to_string(),
                    state: group.state().name(),
                    group_type: "consumer",
                });
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// DeleteGroups for one group: only an Empty group goes (its offsets and itself
    /// tombstoned).
    pub async fn delete_group(&self, group_id: &str) -> GroupError {
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return e,
        };
        let consumer = state.consumer_groups.get(group_id);
        let check = match consumer {
            Some(g) if g.is_empty() => GroupError::None,
            Some(_) => GroupError::NonEmptyGroup,
            None => state
                .groups
                .get(group_id)
                .map_or(GroupError::GroupIdNotFound, ClassicGroup::can_delete),
        };
        if !check.is_ok() {
            return check;
        }
        let consumer_records = consumer.map(|g| Self::consumer_delete_records(g, group_id));
        // Committed offsets and, as Kafka 4 does, partitions with only a pending transactional
        // offset: the tombstone keeps a later commit marker from bringing it back.
        let mut partitions: Vec<(String, i32)> = state
            .offsets
            .get(group_id)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for key in state.pending.partitions(group_id) {
            if !state
                .offsets
                .get(group_id)
                .is_some_and(|o| o.contains_key(&key))
            {
                partitions.push(key);
            }
        }
        let mut records: Vec<(Bytes, Option<Bytes>)> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                let key = RecordKey::Offset {
                    group: group_id.to_string(),
                    topic,
                    partition,
                };
                (encode_key(&key), None)
            })
            .collect();
        match consumer_records {
            Some(consumer_records) => records.extend(consumer_records),
            None => records.push((
                encode_key(&RecordKey::Group {
                    group: group_id.to_string(),
                }),
                None,
            )),
        }
        match self.write(partition, records).await {
            Ok(_) => {
                state.groups.remove(group_id);
                state.consumer_groups.remove(group_id);
                state.offsets.remove(group_id);
                state.pending.remove_group(group_id);
                GroupError::None
            }
            Err(e) => e.to_group_error(),
        }
    }

    /// OffsetDelete: the group error, and one error per partition.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> (GroupError, Vec<GroupError>) {
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return (e, Vec::new()),
        };
        let topics = self.topic_resolver();
        let consumer_subscribed = state.consumer_groups.get(group_id).map(|g| {
            g.subscribed_topics(topics.as_ref())
                .into_iter()
                .collect::<std::collections::HashSet<_>>()
        });
        let group = state.groups.get(group_id);
        if group.is_none() && consumer_subscribed.is_none() {
            return (GroupError::GroupIdNotFound, Vec::new());
        }
        let subscribed = match group {
            _ if consumer_subscribed.is_some() => consumer_subscribed,
            Some(g) if g.is_empty() => Some(Default::default()),
            Some(g) if g.protocol_type() == Some("consumer") => g.subscribed_topics(),
            _ => {
                return (GroupError::NonEmptyGroup, Vec::new());
            }
        };
        let mut results = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        for (topic, partition) in partitions {
            let is_subscribed = subscribed.as_ref().is_none_or(|s| s.contains(&topic));
            if is_subscribed {
                results.push(GroupError::GroupSubscribedToTopic);
                continue;
            }
            let key = (topic, partition);
            let committed = state
                .offsets
                .get(group_id)
                .is_some_and(|o| o.contains_key(&key));
            if committed || state.pending.is_pending(group_id, &key) {
                let record_key = RecordKey::Offset {
                    group: group_id.to_string(),
                    topic: key.0.clone(),
                    partition: key.1,
                };
                records.push((encode_key(&record_key), None));
                deleted.push(key);
            }
            results.push(GroupError::None);
        }
        if !records.is_empty() {
            if let Err(e) = self.write(partition, records).await {
                return (e.to_group_error(), Vec::new());
            }
            for key in deleted {
                if let Some(o) = state.offsets.get_mut(group_id) {
                    o.remove(&key);
                }
                state.pending.remove_partition(group_id, &key);
            }
        }
        (GroupError::None, results)
    }

    /// Topics were deleted: their committed offsets go from every group here, tombstoned so a
    /// topic created again under the same name starts from `auto.offset.reset`, not from
    /// offsets of the old one (Kafka's `onPartitionsDeleted`). Returns how many were removed.
    pub async fn delete_topic_offsets(&self, topics: &std::collections::HashSet<String>) -> usize {
        if topics.is_empty() {
            return 0;
        }
        let shards: Vec<Arc<Shard>> = self.lock_shards().values().cloned().collect();
        let mut removed = 0;
        for shard in shards {
            let mut state = shard.state.lock().await;
            if state.loading {
                continue;
            }
            // Committed and pending offsets of the topics (Kafka's `onTopicsDeleted`).
            let mut keys: std::collections::BTreeSet<(String, (String, i32))> = state
                .offsets
                .iter()
                .flat_map(|(group, offsets)| {
                    offsets
                        .keys()
                        .filter(|(topic, _)| topics.contains(topic))
                        .map(move |key| (group.clone(), key.clone()))
                })
                .collect();
            for group in state.pending.groups() {
                for key in state.pending.partitions(group) {
                    if topics.contains(&key.0) {
                        keys.insert((group.clone(), key));
                    }
                }
            }
            let records: Vec<(Bytes, Option<Bytes>)> = keys
                .iter()
                .map(|(group, (topic, partition))| {
                    let key = RecordKey::Offset {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    };
                    (encode_key(&key), None)
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            if let Err(e) = self.write(shard.partition, records).await {
                tracing::warn!(partition = shard.partition, error = %e, "tombstoning offsets of deleted topics failed");
                continue;
            }
            removed += keys.len();
            for (group, key) in keys {
                if let Some(o) = state.offsets.get_mut(&group) {
                    o.remove(&key);
                }
                state.pending.remove_partition(&group, &key);
            }
        }
        removed
    }

    // ─── Time ────────────────────────────────────────────────────────────────────────────

    /// Acts on every group deadline when it falls due (the timer sleeps until the earliest
    /// one, and is woken when a request sets an earlier one), and on offset expiry every
    /// `offsets.retention.check.interval.ms`, until the coordinator is dropped.
    pub async fn run_timers(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let retention_every = Duration::from_millis(self.config.retention_check_interval_ms.max(1));
        let wake = Arc::clone(&self.timer_wake);
        let origin = tokio::time::Instant::from_std(self.origin);
        drop(self);
        let mut next_retention = tokio::time::Instant::now() + retention_every;
        loop {
            let Some(coordinator) = weak.upgrade() else {
                return;
            };
            if coordinator.monotonic_ms() >= coordinator.next_wake_ms.load(Ordering::Acquire) {
                // Reset first: a deadline set while the groups are ticked lowers it again.
                coordinator.next_wake_ms.store(i64::MAX, Ordering::Release);
                let next = coordinator.tick().await;
                coordinator.deadline_set(next);
            }
            let due_ms = coordinator.next_wake_ms.load(Ordering::Acquire);
            drop(coordinator);
            let mut at = tokio::time::Instant::now() + Duration::from_millis(MAX_TIMER_SLEEP_MS);
            if let Ok(due_ms) = u64::try_from(due_ms) {
                at = at.min(origin + Duration::from_millis(due_ms));
            }
            at = at.min(next_retention);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = wake.notified() => {}
            }
            let Some(coordinator) = weak.upgrade() else {
                return;
            };
            if tokio::time::Instant::now() >= next_retention {
                next_retention = tokio::time::Instant::now() + retention_every;
                let expired = coordinator.expire_offsets().await;
                if expired > 0 {
                    tracing::info!(offsets = expired, "expired committed offsets");
                }
            }
        }
    }

    /// One expiry pass (see `retention`): expired offsets are tombstoned, and an Empty group
    /// left with none goes too. Returns the number of offsets removed.
    pub async fn expire_offsets(&self) -> usize {
        let shards: Vec<Arc<Shard>> = self.lock_shards().values().cloned().collect();
        let now = wall_ms();
        let mut removed = 0;
        for shard in shards {
            let mut state = shard.state.lock().await;
            if state.loading {
                continue;
            }
            let mut records = Vec::new();
            let mut expired: Vec<(String, Vec<(String, i32)>)> = Vec::new();
            let mut dead_groups = Vec::new();
            for (id, group) in &state.groups {
                let offsets = state.offsets.get(id);
                // A group with a transactional offset pending stays
                // (Kafka's `cleanupExpiredOffsets`).
                let expiring = offsets
                    .map(|o| expired_offsets(group, o, now, self.config.offsets_retention_ms))
                    .unwrap_or_default();
                let (gone, left) =
                    tombstone_expired(id, offsets, expiring, &state.pending, &mut records);
                if left == 0
                    && !state.pending.group_has_pending(id)
                    && group.can_delete().is_ok()
                    && group.state() == GroupState::Empty
                {
                    let key = RecordKey::Group { group: id.clone() };
                    records.push((encode_key(&key), None));
                    dead_groups.push(id.clone());
                }
                if !gone.is_empty() {
                    expired.push((id.clone(), gone));
                }
            }
            for (id, group) in &state.consumer_groups {
                let offsets = state.offsets.get(id);
                let subscribed = group.subscribed_topics(self.topic_resolver().as_ref());
                let expiring = offsets
                    .map(|o| {
                        expired_consumer_offsets(
                            &subscribed,
                            o,
                            now,
                            self.config.offsets_retention_ms,
                        )
                    })
                    .unwrap_or_default();
                let (gone, left) =
                    tombstone_expired(id, offsets, expiring, &state.pending, &mut records);
                if left == 0 && !state.pending.group_has_pending(id) && group.is_empty() {
                    records.extend(Self::consumer_delete_records(group, id));
                    dead_groups.push(id.clone());
                }
                if !gone.is_empty() {
                    expired.push((id.clone(), gone));
                }
            }
            if records.is_empty() {
                continue;
            }
            if let Err(e) = self.write(shard.partition, records).await {
                tracing::warn!(partition = shard.partition, error = %e, "expiring offsets failed");
                continue;
            }
            for (id, gone) in expired {
                if let Some(o) = state.offsets.get_mut(&id) {
                    removed += gone.len();
                    for key in gone {
                        o.remove(&key);
                    }
                }
            }
            for id in dead_groups {
                state.groups.remove(&id);
                state.consumer_groups.remove(&id);
                state.offsets.remove(&id);
            }
        }
        removed
    }

    /// Acts on the deadlines that passed; returns the earliest one left.
    async fn tick(&self) -> Option<i64> {
        let shards: Vec<Arc<Shard>> = self.lock_shards().values().cloned().collect();
        let mut next: Option<i64> = None;
        for shard in shards {
            let mut state = shard.state.lock().await;
            if state.loading {
                continue;
            }
            let now = self.monotonic_ms();
            let consumer_next = self
                .tick_consumer_groups(shard.partition, &mut state, now)
                .await;
            next = next.into_iter().chain(consumer_next).min();
            let ids: Vec<String> = state.groups.keys().cloned().collect();
            for id in ids {
                if let Some(group) = state.groups.get_mut(&id) {
                    group.tick(now, wall_ms(), &self.config.group);
                    let _ = self.flush_group(shard.partition, group).await;
                    next = next.into_iter().chain(group.next_deadline_ms()).min();
                }
            }
        }
        next
    }
}

/// Of `group`'s expired offsets, those that go (an offset with a transactional one pending
/// does not expire yet: Kafka's `cleanupExpiredOffsets`), their tombstones appended to
/// `records`; and how many offsets the group keeps.
fn tombstone_expired(
    group: &str,
    offsets: Option<&Offsets>,
    expiring: Vec<(String, i32)>,
    pending: &PendingTxnOffsets,
    records: &mut Vec<(Bytes, Option<Bytes>)>,
) -> (Vec<(String, i32)>, usize) {
    let gone: Vec<(String, i32)> = expiring
        .into_iter()
        .filter(|key| !pending.is_pending(group, key))
        .collect();
    for (topic, partition) in &gone {
        let key = RecordKey::Offset {
            group: group.to_string(),
            topic: topic.clone(),
            partition: *partition,
        };
        records.push((encode_key(&key), None));
    }
    let left = offsets.map_or(0, |o| o.len()).saturating_sub(gone.len());
    (gone, left)
}

async fn unload_shard(shard: &Shard) {
    let mut state = shard.state.lock().await;
    for group in state.groups.values_mut() {
        group.unload();
    }
    state.groups.clear();
    state.consumer_groups.clear();
    state.offsets.clear();
    state.pending = PendingTxnOffsets::new();
    state.deferred_markers.clear();
}

#[path = "coordinator_consumer.rs"]
mod consumer_ops;
#[path = "coordinator_migration.rs"]
mod migration_ops;
pub use consumer_ops::{
    ConsumerGroupDescription, ConsumerHeartbeatAnswer, MAX_ID_BYTES, MAX_REGEX_LEN,
    compile_subscription, validate_heartbeat,
};

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
