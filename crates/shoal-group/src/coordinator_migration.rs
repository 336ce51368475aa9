//! The coordinator's side of groups that mix the two protocols (see `consumer::classic`): a
//! classic member's JoinGroup, SyncGroup, Heartbeat and LeaveGroup sent to a consumer group,
//! and a consumer group turned back into a classic one when its last consumer-protocol member
//! goes. Same shard lock and write-then-replay discipline as `coordinator_consumer`.

use bytes::Bytes;

use super::{GroupCoordinator, ShardState, wall_ms};
use crate::consumer::group::{
    CONSUMER_PROTOCOL_TYPE, ClassicJoin, ConsumerGroup, Decision, Downgrade, TopicResolver,
};
use crate::error::GroupError;
use crate::group::{
    ClassicGroup, JoinRequest, JoinResponse, SyncRequest, SyncResponse, generate_member_id,
};
use crate::records::{RecordKey, encode_group_value, encode_key};

impl GroupCoordinator {
    /// A JoinGroup to a consumer group with members (Kafka's
    /// `classicGroupJoinToConsumerGroup`): answered at once, the member's epoch as the
    /// generation and no leader, so the client asks for its partitions with SyncGroup.
    pub(super) async fn classic_join_consumer(
        &self,
        partition: i32,
        state: &mut ShardState,
        group_id: &str,
        req: JoinRequest,
    ) -> JoinResponse {
        let Some(topics) = self.topics.get().cloned() else {
            return JoinResponse::error(GroupError::CoordinatorNotAvailable, &req.member_id);
        };
        let unknown_member = req.member_id.is_empty();
        let member_id = if unknown_member {
            generate_member_id(&req.client_id)
        } else {
            req.member_id.clone()
        };
        let protocol_name = req.protocols.first().map(|(name, _)| name.clone());
        let needs_id =
            unknown_member && req.require_known_member_id && req.group_instance_id.is_none();
        let join = ClassicJoin {
            member_id: member_id.clone(),
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            unknown_member,
        };
        let settings = self.consumer_settings(group_id);
        let Some(group) = state.consumer_groups.get(group_id) else {
            return JoinResponse::error(GroupError::CoordinatorNotAvailable, &member_id);
        };
        if let Err(refusal) = group.check_classic_join(&join, &settings) {
            return JoinResponse::error(refusal.error, &member_id);
        }
        if needs_id {
            // Nothing is kept for it: a consumer group takes any member id at its next join.
            return JoinResponse::error(GroupError::MemberIdRequired, &member_id);
        }
        // A static member of the classic protocol replacing the last consumer-protocol one.
        if let Some(downgrade) = group.downgrade_replacing(
            &join,
            &settings,
            self.config.group.max_size,
            topics.as_ref(),
            wall_ms(),
        ) {
            let answer = JoinResponse {
                error: GroupError::None,
                generation_id: downgrade.classic.generation,
                protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
                protocol_name: downgrade.classic.protocol.clone(),
                leader: downgrade.classic.leader.clone().unwrap_or_default(),
                member_id: member_id.clone(),
                members: Vec::new(),
                skip_assignment: false,
            };
            return match self
                .write_downgrade(partition, state, group_id, downgrade, false)
                .await
            {
                Ok(()) => {
                    tracing::info!(group = group_id, member = %member_id, "a classic static member replaced the last consumer-protocol member: the group is a classic group again");
                    answer
                }
                Err(error) => JoinResponse::error(error, &member_id),
            };
        }
        let decided = group.classic_join(&join, topics.as_ref(), &settings, self.monotonic_ms());
        let decision = match decided {
            Ok(decision) => decision,
            Err(refusal) => {
                tracing::debug!(group = group_id, member = %member_id, error = ?refusal.error, message = %refusal.message, "classic join to a consumer group refused");
                return JoinResponse::error(refusal.error, &member_id);
            }
        };
        if let Err(error) = self
            .commit_decision(partition, state, group_id, &decision)
            .await
        {
            return JoinResponse::error(error, &member_id);
        }
        tracing::info!(group = group_id, member = %decision.member_id, epoch = decision.member_epoch, "a classic member joined a consumer group");
        JoinResponse {
            error: GroupError::None,
            generation_id: decision.member_epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name,
            leader: String::new(),
            member_id: decision.member_id,
            members: Vec::new(),
            skip_assignment: false,
        }
    }

    /// A classic member's SyncGroup to a consumer group: its partitions.
    pub(super) fn classic_sync_consumer(
        &self,
        group: &mut ConsumerGroup,
        req: &SyncRequest,
    ) -> SyncResponse {
        let topics = self.topic_resolver();
        let synced = group.classic_sync(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            (req.protocol_type.as_deref(), req.protocol_name.as_deref()),
            topics.as_ref(),
            self.monotonic_ms(),
        );
        self.deadline_set(group.next_deadline_ms());
        match synced {
            Ok(assignment) => SyncResponse {
                error: GroupError::None,
                protocol_type: req.protocol_type.clone(),
                protocol_name: req.protocol_name.clone(),
                assignment,
            },
            Err(refusal) => {
                tracing::debug!(group = %group.id, member = %req.member_id, error = ?refusal.error, message = %refusal.message, "classic sync to a consumer group refused");
                SyncResponse::error(refusal.error)
            }
        }
    }

    /// A classic member's Heartbeat to a consumer group.
    pub(super) fn classic_heartbeat_consumer(
        &self,
        group: &mut ConsumerGroup,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> GroupError {
        let result =
            group.classic_heartbeat(member_id, instance_id, generation_id, self.monotonic_ms());
        self.deadline_set(group.next_deadline_ms());
        result.unwrap_or_else(|refusal| refusal.error)
    }

    /// A LeaveGroup to a consumer group: the classic members named leave.
    pub(super) async fn classic_leave_consumer(
        &self,
        partition: i32,
        state: &mut ShardState,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (GroupError, Vec<GroupError>) {
        let topics = self.topic_resolver();
        let Some(group) = state.consumer_groups.get(group_id) else {
            return (
                GroupError::None,
                vec![GroupError::UnknownMemberId; members.len()],
            );
        };
        let (records, mut results) = group.classic_leave(members, topics.as_ref());
        let decision = Decision {
            records,
            ..Decision::default()
        };
        if let Err(error) = self
            .commit_decision(partition, state, group_id, &decision)
            .await
        {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = error;
            }
        }
        (GroupError::None, results)
    }

    /// Writes a decision's records (the group restated first if its last write failed) and
    /// replays them onto the group.
    pub(super) async fn commit_decision(
        &self,
        partition: i32,
        state: &mut ShardState,
        group_id: &str,
        decision: &Decision,
    ) -> Result<(), GroupError> {
        let Some(group) = state.consumer_groups.get(group_id) else {
            return Err(GroupError::CoordinatorNotAvailable);
        };
        let mut records = if group.is_unsure() {
            group.restate()
        } else {
            Vec::new()
        };
        let restating = !records.is_empty();
        records.extend(decision.records.iter().cloned());
        let written = self.write_consumer(partition, group_id, &records).await;
        let Some(group) = state.consumer_groups.get_mut(group_id) else {
            return Err(GroupError::CoordinatorNotAvailable);
        };
        if let Err(error) = written {
            group.write_failed(&records);
            return Err(error);
        }
        if restating {
            group.restated();
        }
        group.apply(
            decision,
            &self.consumer_settings(group_id),
            self.monotonic_ms(),
        );
        self.deadline_set(group.next_deadline_ms());
        Ok(())
    }

    /// If `member_id` leaving (or fenced) leaves only classic members, the group becomes a
    /// classic group again: written, then swapped in. `None`: the group stays a consumer group.
    pub(super) async fn maybe_downgrade(
        &self,
        partition: i32,
        state: &mut ShardState,
        group_id: &str,
        member_id: &str,
        topics: &dyn TopicResolver,
    ) -> Option<Result<(), GroupError>> {
        let group = state.consumer_groups.get(group_id)?;
        let downgrade = group.downgrade(
            member_id,
            &self.consumer_settings(group_id),
            self.config.group.max_size,
            topics,
            wall_ms(),
        )?;
        let written = self
            .write_downgrade(partition, state, group_id, downgrade, true)
            .await;
        if written.is_ok() {
            tracing::info!(
                group = group_id,
                member = member_id,
                "the last consumer-protocol member left: the group is a classic group again"
            );
        }
        Some(written)
    }

    /// Writes a downgrade (the consumer group's tombstones, then the classic group's record)
    /// and swaps the classic group in; `rebalance`: it rebalances at once (a member left).
    async fn write_downgrade(
        &self,
        partition: i32,
        state: &mut ShardState,
        group_id: &str,
        downgrade: Downgrade,
        rebalance: bool,
    ) -> Result<(), GroupError> {
        let Downgrade { records, classic } = downgrade;
        let Some(group) = state.consumer_groups.get(group_id) else {
            return Err(GroupError::CoordinatorNotAvailable);
        };
        let mut encoded: Vec<(Bytes, Option<Bytes>)> = Vec::new();
        if group.is_unsure() {
            encoded.extend(group.restate().iter().map(|r| r.encode(group_id)));
        }
        encoded.extend(records.iter().map(|r| r.encode(group_id)));
        encoded.push((
            encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            }),
            Some(encode_group_value(&classic)),
        ));
        if let Err(e) = self.write(partition, encoded).await {
            let error = e.to_group_error();
            tracing::warn!(group = group_id, error = %e, "writing a consumer group's move back to the classic protocol failed");
            if let Some(group) = state.consumer_groups.get_mut(group_id) {
                group.write_failed(&records);
            }
            return Err(error);
        }
        state.consumer_groups.remove(group_id);
        let now_ms = self.monotonic_ms();
        let classic = if rebalance {
            ClassicGroup::from_downgrade(group_id, classic, now_ms, wall_ms(), &self.config.group)
        } else {
            ClassicGroup::from_stored(group_id, classic, now_ms)
        };
        self.deadline_set(classic.next_deadline_ms());
        state.groups.insert(group_id.to_string(), classic);
        Ok(())
    }
}
