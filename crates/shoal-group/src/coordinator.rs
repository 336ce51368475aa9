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
//! every group's deadlines (sessions, rebalance and sync timeouts, the initial delay).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::coordinator_key::partition_for;
use crate::error::{GroupError, StorageError};
use crate::group::{
    ClassicGroup, GroupSettings, GroupState, JoinAction, JoinRequest, JoinResponse,
    MemberDescription, SyncAction, SyncRequest, SyncResponse,
};
use crate::records::{OffsetValue, RecordKey, encode_group_value, encode_key, encode_offset_value};
use crate::replay::{Offsets, OffsetsReplay};
use crate::retention::expired_offsets;

/// Writes to `__consumer_offsets` (implemented by the broker over its partitions).
pub trait OffsetsStorage: Send + Sync + 'static {
    /// Appends `records` (key, value; `None` = tombstone) to `partition` as its leader and
    /// resolves once they are replicated to the ISR (the high watermark passed them).
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<(), StorageError>>;
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
        }
    }
}

/// How often group deadlines are checked.
const TICK_MS: u64 = 100;
/// Slack on top of the rebalance timeout before a parked JoinGroup gives up.
const JOIN_WAIT_SLACK_MS: u64 = 10_000;
/// Longest a follower's SyncGroup stays parked (its group's sync deadline comes first).
const MAX_SYNC_WAIT_MS: u64 = 1_800_000;

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

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub error: GroupError,
    pub state: GroupState,
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
    pub state: GroupState,
}

#[derive(Default)]
struct ShardState {
    loading: bool,
    groups: HashMap<String, ClassicGroup>,
    offsets: HashMap<String, Offsets>,
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
        })
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
    /// and offsets, and its requests are served from now on.
    pub async fn finish_load(&self, partition: i32, epoch: i32, replay: OffsetsReplay) {
        let Some(shard) = self.lock_shards().get(&partition).cloned() else {
            return;
        };
        if shard.epoch != epoch {
            return;
        }
        let OffsetsReplay {
            groups,
            offsets,
            records: count,
            skipped,
        } = replay;
        let now = self.monotonic_ms();
        let mut state = shard.state.lock().await;
        for (id, value) in groups {
            if let Some(value) = value {
                state
                    .groups
                    .insert(id.clone(), ClassicGroup::from_stored(&id, value, now));
            }
        }
        for id in offsets.keys() {
            state
                .groups
                .entry(id.clone())
                .or_insert_with(|| ClassicGroup::new(id, wall_ms()));
        }
        state.offsets = offsets;
        state.loading = false;
        if count > 0 || skipped > 0 {
            tracing::info!(
                partition,
                epoch,
                records = count,
                skipped,
                groups = state.groups.len(),
                "loaded a consumer offsets partition"
            );
        } else {
            tracing::debug!(
                partition,
                epoch,
                "loaded an empty consumer offsets partition"
            );
        }
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

    fn shard_of(&self, group_id: &str) -> Result<Arc<Shard>, GroupError> {
        let partition = self.partition_for(group_id);
        self.lock_shards()
            .get(&partition)
            .cloned()
            .ok_or(GroupError::NotCoordinator)
    }

    async fn write(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), StorageError> {
        let timeout = Duration::from_millis(self.config.commit_timeout_ms);
        match tokio::time::timeout(timeout, self.storage.append(partition, records)).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::TimedOut),
        }
    }

    /// Writes the group record `group` left, if any, and tells it the outcome.
    async fn flush_group(
        &self,
        partition: i32,
        group: &mut ClassicGroup,
    ) -> Result<(), GroupError> {
        let Some(value) = group.take_persist() else {
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
        if error.is_ok() { Ok(()) } else { Err(error) }
    }

    // ─── Group membership ────────────────────────────────────────────────────────────────

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResponse {
        let member_id = req.member_id.clone();
        let fail = |e| JoinResponse::error(e, &member_id);
        if group_id.is_empty() {
            return fail(GroupError::InvalidGroupId);
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
        if group_id.is_empty() {
            return SyncResponse::error(GroupError::InvalidGroupId);
        }
        let action = {
            let (partition, mut state) = match self.active_shard(group_id).await {
                Ok(active) => active,
                Err(e) => return SyncResponse::error(e),
            };
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
        if group_id.is_empty() {
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
        match state.groups.get_mut(group_id) {
            Some(group) => {
                group.heartbeat(generation_id, member_id, instance_id, self.monotonic_ms())
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
        if group_id.is_empty() {
            return (GroupError::InvalidGroupId, Vec::new());
        }
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return (e, Vec::new()),
        };
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
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return all(e),
        };
        let check = match state.groups.get_mut(group_id) {
            Some(group) => {
                group.validate_commit(generation_id, member_id, instance_id, self.monotonic_ms())
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
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.encode_utf16().count() > self.config.metadata_max_bytes {
                results.push(GroupError::OffsetMetadataTooLarge);
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
            records.push((encode_key(&key), Some(encode_offset_value(&value))));
            accepted.push((results.len(), (o.topic, o.partition), value));
            results.push(GroupError::None);
        }
        if records.is_empty() {
            return results;
        }
        match self.write(partition, records).await {
            Ok(()) => {
                let stored = state.offsets.entry(group_id.to_string()).or_default();
                for (_, key, value) in accepted {
                    stored.insert(key, value);
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

    /// OffsetFetch: the committed offset of each partition asked (every one, for `None`);
    /// partitions without a commit get `None` (offset -1).
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<((String, i32), Option<OffsetValue>)>, GroupError> {
        let (_, state) = self.active_shard(group_id).await?;
        let stored = state.offsets.get(group_id);
        Ok(match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|key| {
                    let value = stored.and_then(|s| s.get(&key)).cloned();
                    (key, value)
                })
                .collect(),
            None => stored
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub async fn describe(&self, group_id: &str) -> GroupDescription {
        let dead = |error| GroupDescription {
            error,
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        let (_, state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return dead(e),
        };
        match state.groups.get(group_id) {
            None => dead(GroupError::None),
            Some(group) => GroupDescription {
                error: GroupError::None,
                state: group.state(),
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
                    state: group.state(),
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
        let check = state
            .groups
            .get(group_id)
            .map_or(GroupError::GroupIdNotFound, ClassicGroup::can_delete);
        if !check.is_ok() {
            return check;
        }
        let mut records: Vec<(Bytes, Option<Bytes>)> = state
            .offsets
            .get(group_id)
            .map(|o| {
                o.keys()
                    .map(|(topic, partition)| {
                        let key = RecordKey::Offset {
                            group: group_id.to_string(),
                            topic: topic.clone(),
                            partition: *partition,
                        };
                        (encode_key(&key), None)
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push((
            encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            }),
            None,
        ));
        match self.write(partition, records).await {
            Ok(()) => {
                state.groups.remove(group_id);
                state.offsets.remove(group_id);
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
        let Some(group) = state.groups.get(group_id) else {
            return (GroupError::GroupIdNotFound, Vec::new());
        };
        let subscribed = if group.is_empty() {
            Some(Default::default())
        } else if group.protocol_type() == Some("consumer") {
            group.subscribed_topics()
        } else {
            return (GroupError::NonEmptyGroup, Vec::new());
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
            if state
                .offsets
                .get(group_id)
                .is_some_and(|o| o.contains_key(&key))
            {
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
            if let Some(o) = state.offsets.get_mut(group_id) {
                for key in deleted {
                    o.remove(&key);
                }
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
            let mut records = Vec::new();
            let mut keys = Vec::new();
            for (group, offsets) in &state.offsets {
                for (topic, partition) in offsets.keys() {
                    if topics.contains(topic) {
                        let key = RecordKey::Offset {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        };
                        records.push((encode_key(&key), None));
                        keys.push((group.clone(), (topic.clone(), *partition)));
                    }
                }
            }
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
            }
        }
        removed
    }

    // ─── Time ────────────────────────────────────────────────────────────────────────────

    /// Drives every group's deadlines every `TICK_MS`, and offset expiry every
    /// `offsets.retention.check.interval.ms`, until the coordinator is dropped.
    pub async fn run_timers(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let retention_every = Duration::from_millis(self.config.retention_check_interval_ms.max(1));
        drop(self);
        let mut ticks = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_retention = tokio::time::Instant::now() + retention_every;
        loop {
            ticks.tick().await;
            let Some(coordinator) = weak.upgrade() else {
                return;
            };
            coordinator.tick().await;
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
                let gone = offsets
                    .map(|o| expired_offsets(group, o, now, self.config.offsets_retention_ms))
                    .unwrap_or_default();
                let left = offsets.map_or(0, |o| o.len()) - gone.len();
                for (topic, partition) in &gone {
                    let key = RecordKey::Offset {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    };
                    records.push((encode_key(&key), None));
                }
                if left == 0 && group.can_delete().is_ok() && group.state() == GroupState::Empty {
                    let key = RecordKey::Group { group: id.clone() };
                    records.push((encode_key(&key), None));
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
                state.offsets.remove(&id);
            }
        }
        removed
    }

    async fn tick(&self) {
        let shards: Vec<Arc<Shard>> = self.lock_shards().values().cloned().collect();
        for shard in shards {
            let mut state = shard.state.lock().await;
            if state.loading {
                continue;
            }
            let now = self.monotonic_ms();
            let ids: Vec<String> = state.groups.keys().cloned().collect();
            for id in ids {
                if let Some(group) = state.groups.get_mut(&id) {
                    group.tick(now, wall_ms(), &self.config.group);
                    let _ = self.flush_group(shard.partition, group).await;
                }
            }
        }
    }
}

async fn unload_shard(shard: &Shard) {
    let mut state = shard.state.lock().await;
    for group in state.groups.values_mut() {
        group.unload();
    }
    state.groups.clear();
    state.offsets.clear();
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
