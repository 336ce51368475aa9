//! Classic-protocol members inside a consumer group, and a live group's move between the two
//! protocols (Kafka 4.x's online migration, `group.consumer.migration.policy`).
//!
//! **Why.** A team moves its consumers to `group.protocol=consumer` one process at a time, so
//! for a while one group holds members of both protocols. Kafka's answer, followed here:
//!
//! - **Upgrade.** The first consumer-protocol member to join a classic group (one whose
//!   members speak the consumer embedded protocol) turns it into a consumer group: each classic
//!   member becomes a member at the classic generation, owning what the classic assignment gave
//!   it, so nothing pauses until the newcomer bumps the epoch.
//! - **Classic members stay classic.** The coordinator assigns them too: a JoinGroup answers at
//!   once with the member's epoch, a SyncGroup returns its partitions, and a Heartbeat answers
//!   REBALANCE_IN_PROGRESS while it must give partitions up or collect new ones, which makes
//!   the client rejoin. They keep their own session timeout (stored in their member record).
//! - **Downgrade.** When the last consumer-protocol member leaves a group whose others are
//!   classic, the group becomes a classic group again at its epoch as generation, and
//!   rebalances.
//!
//! Unlike Kafka, the upgrade writes no classic group tombstone (in Shoal's log a classic
//! tombstone deletes the group's offsets): the classic record is rewritten without members,
//! and the consumer records that follow supersede it (the loader keeps whichever kind came
//! last).

use bytes::Bytes;

use super::{
    ConsumerGroup, ConsumerGroupSettings, ConsumerRecord, Decision, Refusal, Step, TopicResolver,
    metadata_hash, refuse, remove_member_records,
};
use crate::consumer::assignor::Assignment;
use crate::consumer::embedded::{
    EmbeddedSubscription, decode_assignment, decode_subscription, encode_assignment, version_of,
};
use crate::consumer::member::{ConsumerMember, MemberState};
use crate::consumer::records::{
    ClassicMemberMetadata, CurrentAssignmentValue, GroupEpochValue, MemberMetadataValue,
};
use crate::error::GroupError;
use crate::records::{GroupValue, StoredMember};

/// The protocol type of classic consumers (the only one that can migrate).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// `group.consumer.migration.policy`: which way a group with members may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// Kafka's values, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Some(MigrationPolicy::Disabled),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            _ => None,
        }
    }

    pub fn upgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Upgrade | MigrationPolicy::Bidirectional
        )
    }

    pub fn downgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Downgrade | MigrationPolicy::Bidirectional
        )
    }
}

/// A classic group as the upgrade reads it.
#[derive(Debug, Clone, Default)]
pub struct ClassicSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub members: Vec<ClassicMember>,
}

/// One classic member: what it joined with and what it was assigned.
#[derive(Debug, Clone, Default)]
pub struct ClassicMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Its ConsumerProtocol assignment (empty before its first SyncGroup).
    pub assignment: Bytes,
}

/// A JoinGroup to a consumer group (checked for shape by the coordinator first; a dynamic
/// member that needed an id has it).
#[derive(Debug, Clone, Default)]
pub struct ClassicJoin {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// The member came without an id (a static member then takes its instance's place).
    pub unknown_member: bool,
}

/// A consumer group turned back into a classic one: the records that delete it, then the
/// classic group's record.
#[derive(Debug, Clone)]
pub struct Downgrade {
    pub records: Vec<ConsumerRecord>,
    pub classic: GroupValue,
}

fn malformed(what: &str, e: impl std::fmt::Display) -> Refusal {
    Refusal {
        error: GroupError::GroupIdNotFound,
        message: format!("the group cannot move to the consumer protocol: {what}: {e}"),
    }
}

/// Topic names and partitions as partition ids, dropping topics that do not exist.
fn by_id(named: &[(String, Vec<i32>)], topics: &dyn TopicResolver) -> Assignment {
    let mut out = Assignment::new();
    for (name, partitions) in named {
        if let Some((id, count)) = topics.topic(name) {
            let valid = partitions
                .iter()
                .copied()
                .filter(|p| (0..count).contains(p));
            out.entry(id).or_default().extend(valid);
        }
    }
    out.retain(|_, p| !p.is_empty());
    out
}

/// Partition ids as topic names, dropping topics no longer known.
fn by_name(assignment: &Assignment, topics: &dyn TopicResolver) -> Vec<(String, Vec<i32>)> {
    assignment
        .iter()
        .filter_map(|(id, parts)| {
            topics
                .topic_name(*id)
                .map(|n| (n, parts.iter().copied().collect()))
        })
        .collect()
}

fn sorted_topics(sub: &EmbeddedSubscription) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = sub.topics.iter().cloned().collect();
    set.into_iter().collect()
}

impl ConsumerGroup {
    // ─── Upgrade ─────────────────────────────────────────────────────────────────────────

    /// The records that turn a classic group with members into this consumer group (Kafka's
    /// `validateOnlineUpgrade` and `ConsumerGroup.fromClassicGroup`), or why it cannot move
    /// (GROUP_ID_NOT_FOUND, as Kafka answers the consumer heartbeat).
    pub fn upgrade_records(
        snapshot: &ClassicSnapshot,
        topics: &dyn TopicResolver,
        settings: &ConsumerGroupSettings,
    ) -> Result<Vec<ConsumerRecord>, Refusal> {
        if !settings.migration_policy.upgrades() {
            return refuse(
                GroupError::GroupIdNotFound,
                "the group is a classic group with members and group.consumer.migration.policy does not allow upgrades",
            );
        }
        if snapshot.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return refuse(
                GroupError::GroupIdNotFound,
                "the classic group does not use the consumer embedded protocol",
            );
        }
        if snapshot.members.len() > settings.max_size {
            return refuse(
                GroupError::GroupIdNotFound,
                "the classic group has more members than group.consumer.max.size",
            );
        }
        let protocol = snapshot.protocol_name.as_deref().unwrap_or_default();
        let epoch = snapshot.generation;
        let mut members = Vec::with_capacity(snapshot.members.len());
        for m in &snapshot.members {
            let metadata = m
                .protocols
                .iter()
                .find(|(name, _)| name == protocol)
                .or(m.protocols.first())
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let sub = decode_subscription(&metadata).map_err(|e| malformed("a subscription", e))?;
            let assigned = if m.assignment.is_empty() {
                Assignment::new()
            } else {
                let named =
                    decode_assignment(&m.assignment).map_err(|e| malformed("an assignment", e))?;
                by_id(&named, topics)
            };
            let mut member = ConsumerMember::new(&m.member_id);
            member.metadata = MemberMetadataValue {
                instance_id: m.instance_id.clone(),
                rack_id: sub.rack_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: sorted_topics(&sub),
                subscribed_topic_regex: None,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                server_assignor: None,
                classic: Some(ClassicMemberMetadata {
                    session_timeout_ms: m.session_timeout_ms,
                    supported_protocols: m.protocols.clone(),
                }),
            };
            member.member_epoch = epoch;
            member.previous_member_epoch = epoch;
            member.state = MemberState::Stable;
            member.assigned = assigned;
            members.push(member);
        }
        // The hash of what they subscribe to, as a heartbeat would compute it.
        let mut probe = ConsumerGroup::new("");
        for m in &members {
            probe.replay(&ConsumerRecord::Member(
                m.member_id.clone(),
                Some(m.metadata.clone()),
            ));
        }
        let hash = metadata_hash(&probe.resolve_subscriptions(None, &[], topics));

        let mut records: Vec<ConsumerRecord> = members
            .iter()
            .map(|m| ConsumerRecord::Member(m.member_id.clone(), Some(m.metadata.clone())))
            .collect();
        records.push(ConsumerRecord::GroupEpoch(Some(GroupEpochValue {
            epoch,
            metadata_hash: hash,
        })));
        records.extend(
            members.iter().map(|m| {
                ConsumerRecord::TargetMember(m.member_id.clone(), Some(m.assigned.clone()))
            }),
        );
        records.push(ConsumerRecord::TargetEpoch(Some(epoch)));
        records.extend(members.iter().map(|m| {
            ConsumerRecord::Current(
                m.member_id.clone(),
                Some(CurrentAssignmentValue {
                    member_epoch: epoch,
                    previous_member_epoch: epoch,
                    state: MemberState::Stable.to_byte(),
                    assigned: m.assigned.clone(),
                    pending_revocation: Assignment::new(),
                }),
            )
        }));
        Ok(records)
    }

    // ─── Classic members ─────────────────────────────────────────────────────────────────

    /// A JoinGroup from a classic member (Kafka's `classicGroupJoinToConsumerGroup`): it is
    /// assigned like any member and answered at once, its epoch as the generation.
    pub fn classic_join(
        &self,
        req: &ClassicJoin,
        topics: &dyn TopicResolver,
        settings: &ConsumerGroupSettings,
        now_ms: i64,
    ) -> Result<Decision, Refusal> {
        self.check_classic_join(req, settings)?;
        let metadata = req
            .protocols
            .first()
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        let sub = decode_subscription(&metadata).map_err(|e| Refusal {
            error: GroupError::InconsistentGroupProtocol,
            message: format!("the member's consumer protocol subscription does not parse: {e}"),
        })?;
        let mut records = Vec::new();
        let (member, replaced) = self.classic_member_for(req, &mut records)?;
        let is_new = !self.members.contains_key(&member.member_id);

        let mut updated = member.clone();
        let md = &mut updated.metadata;
        if req.instance_id.is_some() {
            md.instance_id.clone_from(&req.instance_id);
        }
        if sub.rack_id.is_some() {
            md.rack_id.clone_from(&sub.rack_id);
        }
        if req.rebalance_timeout_ms != -1 {
            md.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        md.subscribed_topic_names = sorted_topics(&sub);
        md.client_id.clone_from(&req.client_id);
        md.client_host.clone_from(&req.client_host);
        md.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: req.session_timeout_ms,
            supported_protocols: req.protocols.clone(),
        });
        let owned = by_id(&sub.owned, topics);
        let step = Step {
            member: &member,
            replaced: replaced.as_deref(),
            is_new,
            owned: Some(&owned),
        };
        let (reconciled, rebalance_deadline) =
            self.advance(&step, updated, topics, settings, now_ms, &mut records)?;
        let sync_by = now_ms.saturating_add(i64::from(req.rebalance_timeout_ms.max(0)));
        Ok(Decision {
            records,
            member_id: reconciled.member_id.clone(),
            member_epoch: reconciled.member_epoch,
            assignment: None,
            alive: Some(reconciled.member_id),
            rebalance_deadline,
            classic_deadline_ms: Some(sync_by),
        })
    }

    /// What Kafka checks of a classic JoinGroup before anything else (even before it hands
    /// out a member id): room in the group, and a protocol it can take.
    pub fn check_classic_join(
        &self,
        req: &ClassicJoin,
        settings: &ConsumerGroupSettings,
    ) -> Result<(), Refusal> {
        if self.members.len() >= settings.max_size && !self.members.contains_key(&req.member_id) {
            return refuse(
                GroupError::GroupMaxSizeReached,
                format!(
                    "the consumer group has reached its maximum of {} members",
                    settings.max_size
                ),
            );
        }
        self.check_classic_protocols(req)
    }

    /// Kafka's `throwIfClassicProtocolIsNotSupported`: the consumer embedded protocol, and a
    /// protocol every other classic member supports.
    fn check_classic_protocols(&self, req: &ClassicJoin) -> Result<(), Refusal> {
        if req.protocol_type != CONSUMER_PROTOCOL_TYPE || req.protocols.is_empty() {
            return refuse(
                GroupError::InconsistentGroupProtocol,
                "a consumer group takes classic members of the consumer protocol type only",
            );
        }
        let others: Vec<&ClassicMemberMetadata> = self
            .members
            .values()
            .filter(|m| m.member_id != req.member_id)
            .filter_map(|m| m.metadata.classic.as_ref())
            .collect();
        let supported = |name: &str| {
            others
                .iter()
                .all(|c| c.supported_protocols.iter().any(|(n, _)| n == name))
        };
        if req.protocols.iter().any(|(name, _)| supported(name)) {
            Ok(())
        } else {
            refuse(
                GroupError::InconsistentGroupProtocol,
                "none of the member's protocols is supported by every classic member",
            )
        }
    }

    /// The member a classic JoinGroup is from, or the one it starts as; and the static member
    /// whose place it takes.
    fn classic_member_for(
        &self,
        req: &ClassicJoin,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<(ConsumerMember, Option<String>), Refusal> {
        let Some(instance_id) = &req.instance_id else {
            let member = self
                .members
                .get(&req.member_id)
                .cloned()
                .unwrap_or_else(|| ConsumerMember::new(&req.member_id));
            return Ok((member, None));
        };
        let existing = self
            .static_members
            .get(instance_id)
            .and_then(|id| self.members.get(id));
        match existing {
            None if req.unknown_member => Ok((ConsumerMember::new(&req.member_id), None)),
            // A member id the group gave, with an instance id it does not know.
            None => refuse(
                GroupError::UnknownMemberId,
                format!("instance id {instance_id} is not a member of the group"),
            ),
            Some(old) if old.member_id == req.member_id => Ok((old.clone(), None)),
            Some(old) if req.unknown_member => {
                // The instance restarted: it takes the old member's place and partitions.
                Ok(self.take_place_of(old, &req.member_id, records))
            }
            Some(_) => refuse(
                GroupError::FencedInstanceId,
                format!("instance id {instance_id} belongs to another member"),
            ),
        }
    }

    /// The classic member a SyncGroup, Heartbeat or LeaveGroup names (Kafka's
    /// `validateConsumerGroupMember` + `throwIfMemberDoesNotUseClassicProtocol`).
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, Refusal> {
        let member = match instance_id {
            None => self.members.get(member_id),
            Some(instance) => {
                let m = self
                    .static_members
                    .get(instance)
                    .and_then(|id| self.members.get(id));
                if let Some(m) = m
                    && m.member_id != member_id
                {
                    return refuse(
                        GroupError::FencedInstanceId,
                        format!("instance id {instance} belongs to another member"),
                    );
                }
                m
            }
        };
        match member {
            Some(m) if m.metadata.classic.is_some() => Ok(m),
            Some(_) => refuse(
                GroupError::UnknownMemberId,
                format!("member {member_id} does not use the classic protocol"),
            ),
            None => refuse(
                GroupError::UnknownMemberId,
                format!("member {member_id} is not in the group"),
            ),
        }
    }

    fn check_generation(member: &ConsumerMember, generation: i32) -> Result<(), Refusal> {
        if generation == member.member_epoch {
            return Ok(());
        }
        refuse(
            GroupError::IllegalGeneration,
            format!(
                "generation {generation} is not member {}'s epoch {}",
                member.member_id, member.member_epoch
            ),
        )
    }

    /// A classic member's SyncGroup (Kafka's `classicGroupSyncToConsumerGroup`): its
    /// partitions as ConsumerProtocol bytes, at the version its subscription was written at.
    /// No record is written; its session is renewed and its sync deadline cleared.
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        topics: &dyn TopicResolver,
        now_ms: i64,
    ) -> Result<Bytes, Refusal> {
        let member = self.classic_member(member_id, instance_id)?;
        Self::check_generation(member, generation)?;
        let classic = member.metadata.classic.as_ref();
        let first = classic.and_then(|c| c.supported_protocols.first());
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
            || protocol_name.is_some_and(|n| Some(n) != first.map(|(name, _)| name.as_str()))
        {
            return refuse(
                GroupError::InconsistentGroupProtocol,
                "the protocol is not the one the JoinGroup answer named",
            );
        }
        let version = first.and_then(|(_, m)| version_of(m)).unwrap_or(0);
        let id = member.member_id.clone();
        let assigned = member.assigned.clone();
        let rejoin = self.group_epoch > member.member_epoch
            && member.state != MemberState::UnrevokedPartitions;
        let timeouts = Self::classic_timeouts_ms(member);
        if rejoin {
            self.rejoin_by(&id, now_ms.saturating_add(timeouts.1));
            return refuse(
                GroupError::RebalanceInProgress,
                "the group moved on: the member must rejoin",
            );
        }
        self.classic_deadlines_ms.remove(&id);
        self.session_deadlines_ms
            .insert(id, now_ms.saturating_add(timeouts.0));
        Ok(encode_assignment(version, &by_name(&assigned, topics)))
    }

    /// A classic member's Heartbeat (Kafka's `classicGroupHeartbeatToConsumerGroup`):
    /// REBALANCE_IN_PROGRESS while it must rejoin — the group epoch moved past it, it must give
    /// partitions up, or partitions it waited for are free now.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<GroupError, Refusal> {
        let member = self.classic_member(member_id, instance_id)?;
        Self::check_generation(member, generation)?;
        let rejoin = member.member_epoch < self.group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions
                && !self.waiting_on_unreleased(member));
        let id = member.member_id.clone();
        let (session_ms, rebalance_ms) = Self::classic_timeouts_ms(member);
        self.session_deadlines_ms
            .insert(id.clone(), now_ms.saturating_add(session_ms));
        if rejoin {
            self.rejoin_by(&id, now_ms.saturating_add(rebalance_ms));
            return Ok(GroupError::RebalanceInProgress);
        }
        Ok(GroupError::None)
    }

    /// (session, rebalance) timeouts of a classic member.
    fn classic_timeouts_ms(member: &ConsumerMember) -> (i64, i64) {
        let session = member
            .metadata
            .classic
            .as_ref()
            .map_or(0, |c| c.session_timeout_ms);
        (
            i64::from(session.max(0)),
            i64::from(member.metadata.rebalance_timeout_ms.max(0)),
        )
    }

    /// The member must rejoin by `at_ms` unless it already has a deadline.
    fn rejoin_by(&mut self, member_id: &str, at_ms: i64) {
        self.classic_deadlines_ms
            .entry(member_id.to_string())
            .or_insert(at_ms);
    }

    /// Whether some partition of the member's target is still owned by another member.
    fn waiting_on_unreleased(&self, member: &ConsumerMember) -> bool {
        let Some(target) = self.targets.get(&member.member_id) else {
            return false;
        };
        target.iter().any(|(topic, parts)| {
            parts.iter().any(|p| {
                let mine = member.assigned.get(topic).is_some_and(|a| a.contains(p));
                !mine && self.owners.contains_key(&(*topic, *p))
            })
        })
    }

    /// A LeaveGroup of classic members (Kafka's `classicGroupLeaveToConsumerGroup`): their
    /// records tombstoned and one epoch bump; an error per member named.
    pub fn classic_leave(
        &self,
        leaving: &[(String, Option<String>)],
        topics: &dyn TopicResolver,
    ) -> (Vec<ConsumerRecord>, Vec<GroupError>) {
        let mut gone: Vec<String> = Vec::new();
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            // An admin tool removes a static member by instance id alone.
            let named = match instance_id {
                Some(instance) if member_id.is_empty() => self
                    .static_members
                    .get(instance)
                    .map_or(member_id.as_str(), String::as_str),
                _ => member_id.as_str(),
            };
            match self.classic_member(named, instance_id.as_deref()) {
                Ok(m) => {
                    if !gone.contains(&m.member_id) {
                        gone.push(m.member_id.clone());
                    }
                    results.push(GroupError::None);
                }
                Err(refusal) => results.push(refusal.error),
            }
        }
        if gone.is_empty() {
            return (Vec::new(), results);
        }
        let mut records: Vec<ConsumerRecord> = gone
            .iter()
            .flat_map(|id| remove_member_records(id))
            .collect();
        let without: Vec<&str> = gone.iter().map(String::as_str).collect();
        let subscribed = self.resolve_subscriptions(None, &without, topics);
        records.push(ConsumerRecord::GroupEpoch(Some(GroupEpochValue {
            epoch: self.group_epoch.saturating_add(1),
            metadata_hash: metadata_hash(&subscribed),
        })));
        (records, results)
    }

    // ─── Downgrade ───────────────────────────────────────────────────────────────────────

    /// When `leaving` (leaving, or fenced) is the last consumer-protocol member and the others
    /// are classic: the records that make the group a classic group again (Kafka's
    /// `validateOnlineDowngradeWithFencedMember` + `ClassicGroup.fromConsumerGroup`), each
    /// remaining member given its target assignment at the group epoch as generation.
    pub fn downgrade(
        &self,
        leaving: &str,
        settings: &ConsumerGroupSettings,
        classic_max_size: usize,
        topics: &dyn TopicResolver,
        wall_ms: i64,
    ) -> Option<Downgrade> {
        let leaver = self.members.get(leaving)?;
        let rest: Vec<&ConsumerMember> = self
            .members
            .values()
            .filter(|m| m.member_id != leaving)
            .collect();
        let all_classic = rest.iter().all(|m| m.metadata.classic.is_some());
        if leaver.metadata.classic.is_some()
            || rest.is_empty()
            || !all_classic
            || !settings.migration_policy.downgrades()
            || rest.len() > classic_max_size
        {
            return None;
        }
        let members: Vec<(&ConsumerMember, &str)> =
            rest.iter().map(|m| (*m, m.member_id.as_str())).collect();
        self.to_classic(&members, topics, wall_ms)
    }

    /// A classic static member taking the place of the last consumer-protocol member (its
    /// instance restarted with the classic protocol): the group becomes a classic group at
    /// once, the newcomer holding the replaced member's target, without a rebalance (Kafka's
    /// `validateOnlineDowngradeWithReplacedMemberId`). `None`: it stays a consumer group. A
    /// group of that member alone stays one too (its newcomer would lead a classic group with
    /// nobody to assign), until it leaves.
    pub fn downgrade_replacing(
        &self,
        req: &ClassicJoin,
        settings: &ConsumerGroupSettings,
        classic_max_size: usize,
        topics: &dyn TopicResolver,
        wall_ms: i64,
    ) -> Option<Downgrade> {
        let instance = req.instance_id.as_deref()?;
        let old = self
            .static_members
            .get(instance)
            .and_then(|id| self.members.get(id))?;
        let rest: Vec<&ConsumerMember> = self
            .members
            .values()
            .filter(|m| m.member_id != old.member_id)
            .collect();
        if !req.unknown_member
            || old.metadata.classic.is_some()
            || rest.is_empty()
            || !rest.iter().all(|m| m.metadata.classic.is_some())
            || !settings.migration_policy.downgrades()
            || rest.len() + 1 > classic_max_size
        {
            return None;
        }
        let mut joining = old.clone();
        joining.member_id.clone_from(&req.member_id);
        joining.metadata.client_id.clone_from(&req.client_id);
        joining.metadata.client_host.clone_from(&req.client_host);
        if req.rebalance_timeout_ms != -1 {
            joining.metadata.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        joining.metadata.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: req.session_timeout_ms,
            supported_protocols: req.protocols.clone(),
        });
        let mut members: Vec<(&ConsumerMember, &str)> =
            rest.iter().map(|m| (*m, m.member_id.as_str())).collect();
        // Last, so a member already there leads.
        members.push((&joining, old.member_id.as_str()));
        self.to_classic(&members, topics, wall_ms)
    }

    /// The records that delete this group, then a classic group of `members` (each with the
    /// target of the member id paired with it) at the group epoch as generation.
    fn to_classic(
        &self,
        members: &[(&ConsumerMember, &str)],
        topics: &dyn TopicResolver,
        wall_ms: i64,
    ) -> Option<Downgrade> {
        let list: Vec<&ConsumerMember> = members.iter().map(|(m, _)| *m).collect();
        let protocol = select_protocol(&list)?;
        let mut stored = Vec::with_capacity(members.len());
        for (m, target_of) in members {
            let classic = m.metadata.classic.as_ref()?;
            let subscription = classic
                .supported_protocols
                .iter()
                .find(|(n, _)| *n == protocol)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let version = version_of(&subscription).unwrap_or(0);
            let target = self.targets.get(*target_of).cloned().unwrap_or_default();
            stored.push(StoredMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.metadata.instance_id.clone(),
                client_id: m.metadata.client_id.clone(),
                client_host: m.metadata.client_host.clone(),
                rebalance_timeout_ms: m.metadata.rebalance_timeout_ms,
                session_timeout_ms: classic.session_timeout_ms,
                subscription,
                assignment: encode_assignment(version, &by_name(&target, topics)),
            });
        }
        let mut records: Vec<ConsumerRecord> = self
            .members
            .keys()
            .flat_map(|id| remove_member_records(id))
            .collect();
        records.extend(self.delete_records());
        Some(Downgrade {
            records,
            classic: GroupValue {
                protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                generation: self.group_epoch,
                protocol: Some(protocol),
                leader: stored.first().map(|m| m.member_id.clone()),
                current_state_timestamp_ms: wall_ms,
                members: stored,
            },
        })
    }
}

/// The protocol every member supports that most members prefer (Kafka's
/// `ClassicGroup.selectProtocol`; a tie goes to the name first in order).
fn select_protocol(members: &[&ConsumerMember]) -> Option<String> {
    let lists: Vec<&Vec<(String, Bytes)>> = members
        .iter()
        .map(|m| m.metadata.classic.as_ref().map(|c| &c.supported_protocols))
        .collect::<Option<_>>()?;
    let first = lists.first()?;
    let candidates: Vec<&str> = first
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| lists.iter().all(|l| l.iter().any(|(o, _)| o == n)))
        .collect();
    let mut votes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for list in &lists {
        if let Some((name, _)) = list.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
            *votes.entry(name.as_str()).or_default() += 1;
        }
    }
    votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(n, _)| (*n).to_string())
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
