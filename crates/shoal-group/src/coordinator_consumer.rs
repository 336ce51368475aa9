//! The coordinator's side of KIP-848 consumer groups: a ConsumerGroupHeartbeat decided by its
//! group (`consumer::group`), written to the group's offsets partition, and replayed onto the
//! group once replicated; members whose session or rebalance deadline passed are fenced the
//! same way. A group id names one group: an empty classic group becomes a consumer group at the
//! first consumer join, keeping its committed offsets; one with members moves with its members
//! (the online upgrade, `consumer::classic`), and back when its last consumer-protocol member
//! leaves (`coordinator_migration`).

use bytes::Bytes;

use super::{GroupCoordinator, GroupDescription, ShardState};
use crate::consumer::assignor::Assignment;
use crate::consumer::embedded::{encode_assignment, encode_subscription};
use crate::consumer::group::{
    ConsumerGroup, ConsumerGroupSettings, ConsumerRecord, Decision, HeartbeatRequest, Refusal,
    TopicResolver, is_leave,
};
use crate::consumer::member::{ConsumerMember, JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH};
use crate::error::GroupError;
use crate::group::MemberDescription;
use crate::records::{RecordKey, encode_group_value, encode_key};

/// A ConsumerGroupHeartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerHeartbeatAnswer {
    pub error: GroupError,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's partitions, when the answer carries them.
    pub assignment: Option<Assignment>,
}

impl ConsumerHeartbeatAnswer {
    fn refused(error: GroupError, message: impl Into<String>) -> Self {
        ConsumerHeartbeatAnswer {
            error,
            message: Some(message.into()),
            member_id: String::new(),
            member_epoch: -1,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<(ConsumerMember, Assignment)>,
}

/// Kafka's checks of a heartbeat's shape (`throwIfConsumerGroupHeartbeatRequestIsInvalid`),
/// before any group is looked at: INVALID_REQUEST or UNSUPPORTED_ASSIGNOR with its reason.
pub fn validate_heartbeat(
    group_id: &str,
    req: &HeartbeatRequest,
    api_version: i16,
    known_assignor: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    let invalid = |message: &str| {
        Err(Refusal {
            error: GroupError::InvalidRequest,
            message: message.to_string(),
        })
    };
    if group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    let ids = [
        Some(group_id),
        Some(req.member_id.as_str()),
        req.instance_id.as_deref(),
        req.rack_id.as_deref(),
    ];
    if ids.into_iter().flatten().any(|id| id.len() > MAX_ID_BYTES) {
        return invalid("an id is longer than 32767 bytes.");
    }
    if req.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if req.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    let needs_member_id = req.member_epoch != JOIN_EPOCH || api_version >= 1;
    if needs_member_id && req.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if req.member_epoch == JOIN_EPOCH {
        if req.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
    } else if req.member_epoch == STATIC_LEAVE_EPOCH {
        if req.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        }
    } else if req.member_epoch < STATIC_LEAVE_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if let Some(regex) = req
        .subscribed_topic_regex
        .as_deref()
        .filter(|r| !r.is_empty())
        && let Err(e) = compile_subscription(regex)
    {
        return Err(Refusal {
            error: GroupError::InvalidRegularExpression,
            message: e,
        });
    }
    if let Some(name) = &req.server_assignor
        && !known_assignor(name)
    {
        return Err(Refusal {
            error: GroupError::UnsupportedAssignor,
            message: format!("ServerAssignor {name} is not supported."),
        });
    }
    Ok(())
}

/// Longest `SubscribedTopicRegex`, and the most memory its compiled program and its lazy DFA
/// may take: a hostile pattern is refused, not built.
pub const MAX_REGEX_LEN: usize = 4_096;
const MAX_REGEX_SIZE_BYTES: usize = 256 << 10;
const MAX_REGEX_DFA_BYTES: usize = 256 << 10;
/// How long a member's expiry waits before it is written again after a failed write.
const FENCE_RETRY_MS: i64 = 1_000;
/// Longest group, member, instance or rack id: what a record key's `int16` length holds.
pub const MAX_ID_BYTES: usize = i16::MAX as usize;

/// A subscription's regular expression compiled to match whole topic names (as Kafka's
/// `Pattern.matcher(topic).matches()`), within the bounds above.
pub fn compile_subscription(regex: &str) -> Result<regex::Regex, String> {
    if regex.len() > MAX_REGEX_LEN {
        return Err(format!(
            "SubscribedTopicRegex is longer than {MAX_REGEX_LEN} bytes."
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(MAX_REGEX_SIZE_BYTES)
        .dfa_size_limit(MAX_REGEX_DFA_BYTES)
        .build()
        .map_err(|e| format!("SubscribedTopicRegex {regex} is not a valid regular expression: {e}"))
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat (validated): join, stay, reconcile, or leave.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        mut req: HeartbeatRequest,
    ) -> ConsumerHeartbeatAnswer {
        let Some(topics) = self.topics.get().cloned() else {
            return ConsumerHeartbeatAnswer::refused(
                GroupError::CoordinatorNotAvailable,
                "the coordinator has no metadata yet",
            );
        };
        let settings = self.consumer_settings(group_id);
        let (partition, mut state) = match self.active_shard(group_id).await {
            Ok(active) => active,
            Err(e) => return ConsumerHeartbeatAnswer::refused(e, "not the coordinator"),
        };
        // v0: the coordinator names a joining member.
        if req.member_id.is_empty() {
            req.member_id = uuid::Uuid::new_v4().simple().to_string();
        }
        let joining = req.member_epoch == JOIN_EPOCH;
        let now_ms = self.monotonic_ms();
        // A classic group by that id: an empty one becomes a consumer group; one with members
        // is converted at a consumer member's join (the online upgrade), its members kept.
        let (converts, upgraded) = match state.groups.get(group_id) {
            Some(classic) if !classic.is_empty() => {
                let refused = |message: String| ConsumerHeartbeatAnswer {
                    member_id: req.member_id.clone(),
                    ..ConsumerHeartbeatAnswer::refused(GroupError::GroupIdNotFound, message)
                };
                if !joining {
                    return refused(format!("group {group_id} is a classic group"));
                }
                match ConsumerGroup::upgrade_records(
                    &classic.snapshot(),
                    topics.as_ref(),
                    &settings,
                ) {
                    Ok(records) => {
                        let mut group = ConsumerGroup::new(group_id);
                        for r in &records {
                            group.replay(r);
                        }
                        group.restart_timers(&settings, now_ms);
                        (true, Some((group, records)))
                    }
                    Err(refusal) => {
                        tracing::info!(group = group_id, reason = %refusal.message, "a classic group with members was not moved to the consumer protocol");
                        return refused(refusal.message);
                    }
                }
            }
            Some(_) => (true, None),
            None => (false, None),
        };
        let decided = {
            let fresh;
            let group = match (state.consumer_groups.get(group_id), &upgraded) {
                (_, Some((converted, _))) => converted,
                (Some(group), None) => group,
                (None, None) if joining => {
                    fresh = ConsumerGroup::new(group_id);
                    &fresh
                }
                (None, None) => {
                    return ConsumerHeartbeatAnswer::refused(
                        GroupError::GroupIdNotFound,
                        format!("consumer group {group_id} not found"),
                    );
                }
            };
            if is_leave(req.member_epoch) {
                group.leave(&req, topics.as_ref())
            } else {
                group.heartbeat(&req, topics.as_ref(), &settings, now_ms)
            }
        };
        let decision = match decided {
            Ok(decision) => decision,
            Err(refusal) => {
                tracing::debug!(group = group_id, member = %req.member_id, error = ?refusal.error, message = %refusal.message, "consumer group heartbeat refused");
                return ConsumerHeartbeatAnswer {
                    member_id: req.member_id,
                    ..ConsumerHeartbeatAnswer::refused(refusal.error, refusal.message)
                };
            }
        };
        // The last consumer-protocol member leaving a group of classic members turns it back
        // (the leave checked first).
        if req.member_epoch == LEAVE_EPOCH
            && let Some(done) = self
                .maybe_downgrade(
                    partition,
                    &mut state,
                    group_id,
                    &req.member_id,
                    topics.as_ref(),
                )
                .await
        {
            return match done {
                Ok(()) => ConsumerHeartbeatAnswer {
                    error: GroupError::None,
                    message: None,
                    member_id: req.member_id,
                    member_epoch: LEAVE_EPOCH,
                    heartbeat_interval_ms: settings.heartbeat_interval_ms,
                    assignment: None,
                },
                Err(error) => {
                    ConsumerHeartbeatAnswer::refused(error, "the group's records were not stored")
                }
            };
        }
        if let Some((converted, conversion)) = upgraded.filter(|(_, records)| !records.is_empty()) {
            // The classic group's members and the newcomer, in one batch. If it fails, the
            // classic group stays (should the batch be in the log after all, a later classic
            // record supersedes it, or a new coordinator loads the converted group, which
            // serves the classic members as well).
            // The classic record is first rewritten without members (a tombstone would take
            // the offsets): once the consumer group is deleted and compacted away, what is
            // left of the classic group loads empty, not with these members.
            let emptied = state
                .groups
                .get(group_id)
                .map(|classic| classic.emptied(super::wall_ms()));
            let encoded: Vec<(Bytes, Option<Bytes>)> = emptied
                .iter()
                .map(|value| {
                    let key = RecordKey::Group {
                        group: group_id.to_string(),
                    };
                    (encode_key(&key), Some(encode_group_value(value)))
                })
                .chain(
                    conversion
                        .iter()
                        .chain(&decision.records)
                        .map(|r| r.encode(group_id)),
                )
                .collect();
            if let Err(e) = self.write(partition, encoded).await {
                tracing::warn!(group = group_id, error = %e, "writing a classic group's move to the consumer protocol failed");
                return ConsumerHeartbeatAnswer::refused(
                    e.to_group_error(),
                    "the group's records were not stored",
                );
            }
            if let Some(mut classic) = state.groups.remove(group_id) {
                classic.release_waiting();
            }
            let group = state
                .consumer_groups
                .entry(group_id.to_string())
                .insert_entry(converted)
                .into_mut();
            group.apply(&decision, &settings, self.monotonic_ms());
            self.deadline_set(group.next_deadline_ms());
            tracing::info!(
                group = group_id,
                members = group.members().count(),
                epoch = group.group_epoch(),
                "a classic group with members moved to the consumer protocol"
            );
            log_decision(group_id, &req, &decision);
            return ConsumerHeartbeatAnswer {
                error: GroupError::None,
                message: None,
                member_id: decision.member_id,
                member_epoch: decision.member_epoch,
                heartbeat_interval_ms: settings.heartbeat_interval_ms,
                assignment: decision.assignment,
            };
        }
        // A group whose last write failed is restated first (see `ConsumerGroup::restate`).
        let restate = state
            .consumer_groups
            .get(group_id)
            .filter(|g| g.is_unsure())
            .map(ConsumerGroup::restate)
            .unwrap_or_default();
        let restating = !restate.is_empty();
        let records: Vec<ConsumerRecord> = restate
            .into_iter()
            .chain(decision.records.iter().cloned())
            .collect();
        let written = self.write_consumer(partition, group_id, &records).await;
        if converts {
            state.groups.remove(group_id);
        }
        let group = state
            .consumer_groups
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id));
        if let Err(error) = written {
            // The batch may still be in the log: the group stays as it was, and says so.
            group.write_failed(&records);
            return ConsumerHeartbeatAnswer::refused(error, "the group's records were not stored");
        }
        if converts {
            tracing::info!(
                group = group_id,
                "an empty classic group became a consumer group"
            );
        }
        if restating {
            group.restated();
        }
        group.apply(&decision, &settings, self.monotonic_ms());
        self.deadline_set(group.next_deadline_ms());
        log_decision(group_id, &req, &decision);
        ConsumerHeartbeatAnswer {
            error: GroupError::None,
            message: None,
            member_id: decision.member_id,
            member_epoch: decision.member_epoch,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            assignment: decision.assignment,
        }
    }

    /// Writes a consumer group's records (nothing for none), as one batch.
    pub(super) async fn write_consumer(
        &self,
        partition: i32,
        group_id: &str,
        records: &[ConsumerRecord],
    ) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded: Vec<(Bytes, Option<Bytes>)> =
            records.iter().map(|r| r.encode(group_id)).collect();
        self.write(partition, encoded).await.map(|_| ()).map_err(|e| {
            tracing::warn!(group = group_id, error = %e, "writing consumer group records failed");
            e.to_group_error()
        })
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND when there is no consumer group
    /// by that id.
    pub async fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, GroupError> {
        let (_, state) = self.active_shard(group_id).await?;
        let group = state
            .consumer_groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        Ok(describe(group, &self.consumer_settings(group_id)))
    }

    /// Fences the consumer group members of one shard whose deadline passed.
    pub(super) async fn tick_consumer_groups(
        &self,
        partition: i32,
        state: &mut ShardState,
        now_ms: i64,
    ) -> Option<i64> {
        let topics = self.topics.get().cloned()?;
        let mut next: Option<i64> = None;
        let ids: Vec<String> = state.consumer_groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = state.consumer_groups.get(&id) else {
                continue;
            };
            for (member_id, why) in group.expired(now_ms) {
                // The last consumer-protocol member gone: the classic members carry on as a
                // classic group.
                match self
                    .maybe_downgrade(partition, state, &id, &member_id, topics.as_ref())
                    .await
                {
                    Some(Ok(())) => {
                        tracing::info!(group = %id, member = %member_id, "removed a consumer group member: {why}");
                        break;
                    }
                    Some(Err(_)) => {
                        if let Some(group) = state.consumer_groups.get_mut(&id) {
                            group.retry_later(&member_id, now_ms.saturating_add(FENCE_RETRY_MS));
                        }
                        continue;
                    }
                    None => {}
                }
                let Some(group) = state.consumer_groups.get(&id) else {
                    break;
                };
                let mut records = if group.is_unsure() {
                    group.restate()
                } else {
                    Vec::new()
                };
                let restating = !records.is_empty();
                records.extend(group.fence(&member_id, topics.as_ref()));
                let written = self.write_consumer(partition, &id, &records).await;
                let Some(group) = state.consumer_groups.get_mut(&id) else {
                    break;
                };
                if written.is_err() {
                    // Tried again a little later, not in a tight loop.
                    group.write_failed(&records);
                    group.retry_later(&member_id, now_ms.saturating_add(FENCE_RETRY_MS));
                    continue;
                }
                tracing::info!(group = %id, member = %member_id, "removed a consumer group member: {why}");
                if restating {
                    group.restated();
                }
                let decision = Decision {
                    records,
                    ..Decision::default()
                };
                group.apply(&decision, &self.consumer_settings(&id), now_ms);
            }
            if let Some(group) = state.consumer_groups.get(&id) {
                next = next.into_iter().chain(group.next_deadline_ms()).min();
            }
        }
        next
    }

    /// An empty consumer group is deleted (DeleteGroups): its records tombstoned.
    pub(super) fn consumer_delete_records(
        group: &ConsumerGroup,
        group_id: &str,
    ) -> Vec<(Bytes, Option<Bytes>)> {
        group
            .delete_records()
            .iter()
            .map(|r| r.encode(group_id))
            .collect()
    }
}

fn describe(group: &ConsumerGroup, settings: &ConsumerGroupSettings) -> ConsumerGroupDescription {
    let members = group
        .members()
        .map(|m| {
            let target = group.target(&m.member_id).cloned().unwrap_or_default();
            (m.clone(), target)
        })
        .collect();
    let assignor = group.chosen_assignor(settings).as_str().to_string();
    ConsumerGroupDescription {
        state: group.state().name(),
        group_epoch: group.group_epoch(),
        assignment_epoch: group.assignment_epoch(),
        assignor,
        members,
    }
}

fn log_decision(group_id: &str, req: &HeartbeatRequest, decision: &Decision) {
    if req.member_epoch == JOIN_EPOCH {
        tracing::info!(group = group_id, member = %decision.member_id, epoch = decision.member_epoch, "a member joined a consumer group");
    } else if is_leave(req.member_epoch) {
        tracing::info!(group = group_id, member = %decision.member_id, "a member left a consumer group");
    }
}

/// A consumer group as DescribeGroups shows it to tools that only know the classic protocol
/// (as Kafka's `ConsumerGroup.asDescribedGroup`): protocol type `consumer`, the assignor as
/// the protocol, and each member's subscription and partitions in the classic consumer
/// protocol's layout (`ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` v0).
pub(super) fn describe_as_classic(
    group: &ConsumerGroup,
    topics: Option<&dyn TopicResolver>,
    settings: &ConsumerGroupSettings,
) -> GroupDescription {
    let described = describe(group, settings);
    let members = described
        .members
        .iter()
        .map(|(m, _)| MemberDescription {
            member_id: m.member_id.clone(),
            group_instance_id: m.metadata.instance_id.clone(),
            client_id: m.metadata.client_id.clone(),
            client_host: m.metadata.client_host.clone(),
            metadata: encode_subscription(&m.metadata.subscribed_topic_names),
            assignment: classic_assignment(&m.assigned, topics),
        })
        .collect();
    GroupDescription {
        error: GroupError::None,
        state: described.state,
        protocol_type: "consumer".to_string(),
        protocol_data: described.assignor,
        members,
    }
}

fn classic_assignment(assigned: &Assignment, topics: Option<&dyn TopicResolver>) -> Bytes {
    let named: Vec<(String, Vec<i32>)> = assigned
        .iter()
        .filter_map(|(id, parts)| {
            let name = topics.and_then(|t| t.topic_name(*id))?;
            Some((name, parts.iter().copied().collect()))
        })
        .collect();
    encode_assignment(0, &named)
}
