//! `ConsumerGroup`: one KIP-848 consumer group as a pure state machine.
//!
//! **Decide, write, then replay.** A heartbeat, a leave or an expired member is decided
//! against the group as it is ([`ConsumerGroup::heartbeat`], [`ConsumerGroup::leave`],
//! [`ConsumerGroup::fence`]): the decision is the records to write and the answer. The
//! coordinator writes the records and, once they are replicated, replays them onto the group
//! ([`ConsumerGroup::replay`]) — the same function that rebuilds the group when a broker loads
//! the partition, so what a client was told and what a new coordinator reads back cannot
//! differ. A write that fails changes nothing.
//!
//! **Epochs.** The *group epoch* grows whenever the members or what they subscribe to change;
//! a new *target assignment* is then computed by the server-side assignor at that epoch; each
//! member moves towards its part of it in steps (`reconcile`), its *member epoch* reaching
//! the target epoch once it owns nothing it must give up. Epochs only grow.
//!
//! Time is an input (`now_ms`, monotonic); the session and rebalance deadlines live here, not
//! in the records, and restart at load as Kafka's do.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use uuid::Uuid;

use crate::consumer::assignor::{Assignment, AssignorMember, AssignorName, assign};
use crate::consumer::member::{
    ConsumerMember, JOIN_EPOCH, LEAVE_EPOCH, MemberState, STATIC_LEAVE_EPOCH, is_subset,
    partitions_of,
};
use crate::consumer::reconcile::{Reconcile, reconcile};
use crate::consumer::records::{
    GroupEpochValue, MemberMetadataValue, TargetAssignmentEpochValue, encode_current_assignment,
    encode_group_epoch, encode_member_metadata, encode_target_assignment,
    encode_target_assignment_epoch,
};
use crate::error::GroupError;
use crate::records::{RecordKey, encode_key};

/// What the coordinator knows about topics (the broker's metadata image).
pub trait TopicResolver: Send + Sync {
    /// A topic's id and partition count, if it exists.
    fn topic(&self, name: &str) -> Option<(Uuid, i32)>;
    /// A topic's name by id, if it exists.
    fn topic_name(&self, id: Uuid) -> Option<String>;
    /// The topics (internal ones excepted) whose whole name `regex` matches; `None` for a
    /// regular expression that does not compile (the broker refuses those before).
    fn matching(&self, regex: &str) -> Option<std::sync::Arc<BTreeSet<String>>>;
}

/// Subscriber counts by topic name and by regular expression (kept by `replay`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Subscriptions {
    names: BTreeMap<String, usize>,
    regexes: BTreeMap<String, usize>,
}

impl Subscriptions {
    fn add(&mut self, m: &MemberMetadataValue) {
        for n in &m.subscribed_topic_names {
            *self.names.entry(n.clone()).or_default() += 1;
        }
        if let Some(r) = &m.subscribed_topic_regex {
            *self.regexes.entry(r.clone()).or_default() += 1;
        }
    }

    fn remove(&mut self, m: &MemberMetadataValue) {
        fn drop_one(counts: &mut BTreeMap<String, usize>, key: &str) {
            if let Some(c) = counts.get_mut(key) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    counts.remove(key);
                }
            }
        }
        for n in &m.subscribed_topic_names {
            drop_one(&mut self.names, n);
        }
        if let Some(r) = &m.subscribed_topic_regex {
            drop_one(&mut self.regexes, r);
        }
    }
}

/// A resolver that knows no topic (before the broker gave the coordinator its metadata).
pub struct NoTopics;

impl TopicResolver for NoTopics {
    fn topic(&self, _: &str) -> Option<(Uuid, i32)> {
        None
    }
    fn topic_name(&self, _: Uuid) -> Option<String> {
        None
    }
    fn matching(&self, _: &str) -> Option<std::sync::Arc<BTreeSet<String>>> {
        None
    }
}

/// The topic names `member` subscribes to: its names and what its regular expression matches.
fn topic_names_of(member: &ConsumerMember, topics: &dyn TopicResolver) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = member
        .metadata
        .subscribed_topic_names
        .iter()
        .cloned()
        .collect();
    if let Some(regex) = &member.metadata.subscribed_topic_regex
        && let Some(matched) = topics.matching(regex)
    {
        names.extend(matched.iter().cloned());
    }
    names
}

/// The `group.consumer.*` settings.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerGroupSettings {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: usize,
    /// `group.consumer.assignors`, in order: the first is the default.
    pub assignors: [Option<AssignorName>; 2],
    /// `group.consumer.migration.policy`
    pub migration_policy: MigrationPolicy,
}

impl ConsumerGroupSettings {
    pub fn assignors(&self) -> impl Iterator<Item = AssignorName> + '_ {
        self.assignors.iter().flatten().copied()
    }
}

impl Default for ConsumerGroupSettings {
    fn default() -> Self {
        ConsumerGroupSettings {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: usize::MAX,
            assignors: AssignorName::ALL.map(Some),
            migration_policy: MigrationPolicy::default(),
        }
    }
}

/// A consumer group's state as DescribeGroups, ListGroups and ConsumerGroupDescribe name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch moved past the target assignment's: one is computed at the next
    /// heartbeat.
    Assigning,
    /// Some member has not reached the target assignment yet.
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// One record of a consumer group (`None` values are tombstones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    GroupEpoch(Option<GroupEpochValue>),
    /// Only ever a tombstone (see `consumer::records`).
    PartitionMetadata,
    Member(String, Option<MemberMetadataValue>),
    TargetMember(String, Option<Assignment>),
    TargetEpoch(Option<i32>),
    Current(
        String,
        Option<crate::consumer::records::CurrentAssignmentValue>,
    ),
}

impl ConsumerRecord {
    /// The record's key and value bytes for `group`.
    pub fn encode(&self, group: &str) -> (Bytes, Option<Bytes>) {
        let group = group.to_string();
        match self {
            ConsumerRecord::GroupEpoch(v) => (
                encode_key(&RecordKey::ConsumerGroup { group }),
                v.as_ref().map(encode_group_epoch),
            ),
            ConsumerRecord::PartitionMetadata => (
                encode_key(&RecordKey::ConsumerPartitionMetadata { group }),
                None,
            ),
            ConsumerRecord::Member(member, v) => (
                encode_key(&RecordKey::ConsumerMember {
                    group,
                    member: member.clone(),
                }),
                v.as_ref().map(encode_member_metadata),
            ),
            ConsumerRecord::TargetMember(member, v) => (
                encode_key(&RecordKey::ConsumerTargetAssignmentMember {
                    group,
                    member: member.clone(),
                }),
                v.as_ref().map(encode_target_assignment),
            ),
            ConsumerRecord::TargetEpoch(v) => (
                encode_key(&RecordKey::ConsumerTargetAssignmentMetadata { group }),
                v.map(|assignment_epoch| {
                    encode_target_assignment_epoch(&TargetAssignmentEpochValue { assignment_epoch })
                }),
            ),
            ConsumerRecord::Current(member, v) => (
                encode_key(&RecordKey::ConsumerCurrentAssignment {
                    group,
                    member: member.clone(),
                }),
                v.as_ref().map(encode_current_assignment),
            ),
        }
    }
}

/// A ConsumerGroupHeartbeat as the group sees it (validated by the coordinator first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// `None`: not reported.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// A member's change as `advance` takes it: the member as it was (or starts), the static
/// member it replaces, whether it is new, and what it says it owns.
struct Step<'a> {
    member: &'a ConsumerMember,
    replaced: Option<&'a str>,
    is_new: bool,
    owned: Option<&'a Assignment>,
}

/// A member's new rebalance deadline: `None` unchanged, `Some(None)` cleared, else
/// (ms, the epoch it guards).
type RebalanceDeadline = Option<Option<(i64, i32)>>;

/// A refused heartbeat: Kafka's code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: GroupError,
    pub message: String,
}

fn refuse<T>(error: GroupError, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        error,
        message: message.into(),
    })
}

/// What a heartbeat, leave or fence decided: the records to write, then the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub records: Vec<ConsumerRecord>,
    pub member_id: String,
    pub member_epoch: i32,
    /// The member's partitions, when the answer carries them.
    pub assignment: Option<Assignment>,
    /// The member whose session the heartbeat renews.
    pub(crate) alive: Option<String>,
    /// The member's new rebalance deadline (`Some(None)`: cleared), as (ms, epoch it guards).
    pub(crate) rebalance_deadline: RebalanceDeadline,
    /// A classic member must send its SyncGroup by then (set by its JoinGroup).
    pub(crate) classic_deadline_ms: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub id: String,
    group_epoch: i32,
    metadata_hash: i64,
    assignment_epoch: i32,
    members: BTreeMap<String, ConsumerMember>,
    targets: BTreeMap<String, Assignment>,
    /// Instance id → member id.
    static_members: HashMap<String, String>,
    /// Partition → the member that owns it (assigned or pending revocation).
    owners: HashMap<(Uuid, i32), String>,
    session_deadlines_ms: HashMap<String, i64>,
    rebalance_deadlines_ms: HashMap<String, (i64, i32)>,
    /// Classic members that must send a JoinGroup (after REBALANCE_IN_PROGRESS) or a
    /// SyncGroup (after their JoinGroup) by then.
    classic_deadlines_ms: HashMap<String, i64>,
    /// Members seen in an assignment record but not (yet) in a member record.
    incomplete: BTreeSet<String>,
    /// How many members subscribe to each topic name and each regular expression: a
    /// heartbeat resolves the group's subscriptions from these, not by walking every member.
    subscriptions: Subscriptions,
    /// A write failed after it may have reached the log: what the log holds for this group is
    /// unknown, so the next write restates the whole group first (see [`Self::restate`]);
    /// the member ids that failed write touched, whose records may be there.
    unsure: Option<BTreeSet<String>>,
}

impl ConsumerGroup {
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            ..ConsumerGroup::default()
        }
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }

    pub fn member(&self, member_id: &str) -> Option<&ConsumerMember> {
        self.members.get(member_id)
    }

    pub fn target(&self, member_id: &str) -> Option<&Assignment> {
        self.targets.get(member_id)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Topic names some member subscribes to, by name or regular expression.
    pub fn subscribed_topics(&self, topics: &dyn TopicResolver) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| topic_names_of(m, topics))
            .collect()
    }

    /// The assignor the group runs now (what ConsumerGroupDescribe shows).
    pub fn chosen_assignor(&self, settings: &ConsumerGroupSettings) -> AssignorName {
        vote(self.members.values(), settings)
    }

    /// The assignor the group runs with `updated` in it: the one most members ask for, else
    /// the default.
    fn assignor(&self, updated: &ConsumerMember, settings: &ConsumerGroupSettings) -> AssignorName {
        let others = self
            .members
            .values()
            .filter(|m| m.member_id != updated.member_id);
        vote(others.chain(std::iter::once(updated)), settings)
    }
}

fn vote<'a>(
    members: impl Iterator<Item = &'a ConsumerMember>,
    settings: &ConsumerGroupSettings,
) -> AssignorName {
    let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
    for m in members {
        let wanted = m
            .metadata
            .server_assignor
            .as_deref()
            .and_then(AssignorName::parse);
        if let Some(i) = wanted.and_then(|w| settings.assignors().position(|a| a == w)) {
            *votes.entry(i).or_default() += 1;
        }
    }
    // Most votes; on a tie, the one listed first.
    let best = votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(i, _)| *i);
    best.and_then(|i| settings.assignors().nth(i))
        .or_else(|| settings.assignors().next())
        .unwrap_or(AssignorName::Uniform)
}

impl ConsumerGroup {
    // ─── Decisions ───────────────────────────────────────────────────────────────────────

    /// A heartbeat (member epoch >= 0): the member joins, stays, or moves towards its target.
    pub fn heartbeat(
        &self,
        req: &HeartbeatRequest,
        topics: &dyn TopicResolver,
        settings: &ConsumerGroupSettings,
        now_ms: i64,
    ) -> Result<Decision, Refusal> {
        let joining = req.member_epoch == JOIN_EPOCH;
        if self.members.len() >= settings.max_size && !self.members.contains_key(&req.member_id) {
            return refuse(
                GroupError::GroupMaxSizeReached,
                format!(
                    "the consumer group has reached its maximum of {} members",
                    settings.max_size
                ),
            );
        }
        let mut records = Vec::new();
        // The member as it is (or as it starts), and the static member it replaces.
        let (member, replaced) = self.member_for(req, joining, &mut records)?;
        let is_new = !self.members.contains_key(&member.member_id);

        let mut updated = member.clone();
        let md = &mut updated.metadata;
        if req.instance_id.is_some() {
            md.instance_id.clone_from(&req.instance_id);
        }
        if req.rack_id.is_some() {
            md.rack_id.clone_from(&req.rack_id);
        }
        if req.rebalance_timeout_ms != -1 {
            md.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.server_assignor.is_some() {
            md.server_assignor.clone_from(&req.server_assignor);
        }
        if let Some(names) = &req.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            md.subscribed_topic_names = names.into_iter().collect();
        }
        if let Some(regex) = &req.subscribed_topic_regex {
            md.subscribed_topic_regex = Some(regex.clone()).filter(|r| !r.is_empty());
        }
        md.client_id.clone_from(&req.client_id);
        md.client_host.clone_from(&req.client_host);
        // A member that spoke the classic protocol now speaks this one.
        md.classic = None;

        let step = Step {
            member: &member,
            replaced: replaced.as_deref(),
            is_new,
            owned: req.owned.as_ref(),
        };
        let (reconciled, rebalance_deadline) =
            self.advance(&step, updated, topics, settings, now_ms, &mut records)?;

        // A full request (a join, or one after an error) gets the whole assignment back.
        let full = joining
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.owned.is_some());
        let assignment =
            (full || reconciled.assigned != member.assigned).then(|| reconciled.assigned.clone());
        Ok(Decision {
            records,
            member_id: reconciled.member_id.clone(),
            member_epoch: reconciled.member_epoch,
            assignment,
            alive: Some(reconciled.member_id),
            rebalance_deadline,
            classic_deadline_ms: None,
        })
    }

    /// One member's change decided against the group (a heartbeat's or a classic JoinGroup's):
    /// its member record if it changed, the group epoch bumped when the subscriptions did, a
    /// new target assignment at a new epoch, and the member's next step towards its target.
    /// Returns the member after that step and its new rebalance deadline.
    fn advance(
        &self,
        step: &Step<'_>,
        updated: ConsumerMember,
        topics: &dyn TopicResolver,
        settings: &ConsumerGroupSettings,
        now_ms: i64,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<(ConsumerMember, RebalanceDeadline), Refusal> {
        let member = step.member;
        let subscription_changed = member.metadata.subscribed_topic_names
            != updated.metadata.subscribed_topic_names
            || member.metadata.subscribed_topic_regex != updated.metadata.subscribed_topic_regex;
        let mut bump = step.is_new && step.replaced.is_none();
        if step.is_new || updated.metadata != member.metadata {
            records.push(ConsumerRecord::Member(
                updated.member_id.clone(),
                Some(updated.metadata.clone()),
            ));
            bump |= subscription_changed;
        }

        // The topics the group subscribes to, with this member as it is now.
        let without = step.replaced;
        let subscribed = self.resolve_subscriptions(Some(&updated), without.as_slice(), topics);
        let hash = metadata_hash(&subscribed);
        bump |= hash != self.metadata_hash;
        let mut group_epoch = self.group_epoch;
        if bump {
            group_epoch = group_epoch.saturating_add(1);
            records.push(ConsumerRecord::GroupEpoch(Some(GroupEpochValue {
                epoch: group_epoch,
                metadata_hash: hash,
            })));
        }

        // The target assignment, computed again when the group epoch moved past it (only then
        // are all targets cloned and compared).
        let (target_epoch, target) = if group_epoch > self.assignment_epoch {
            let mut targets = self.targets.clone();
            if let Some(old) = step.replaced
                && let Some(t) = targets.remove(old)
            {
                targets.insert(updated.member_id.clone(), t);
            }
            let assignor = self.assignor(&updated, settings);
            let fresh =
                self.compute_targets(assignor, &updated, without, &targets, &subscribed, topics);
            for (id, assignment) in &fresh {
                if targets.get(id) != Some(assignment) {
                    records.push(ConsumerRecord::TargetMember(
                        id.clone(),
                        Some(assignment.clone()),
                    ));
                }
            }
            records.push(ConsumerRecord::TargetEpoch(Some(group_epoch)));
            let mine = fresh.get(&updated.member_id).cloned().unwrap_or_default();
            (group_epoch, mine)
        } else {
            let mine = self
                .targets
                .get(&updated.member_id)
                .or_else(|| step.replaced.and_then(|old| self.targets.get(old)))
                .cloned()
                .unwrap_or_default();
            (self.assignment_epoch, mine)
        };

        // The member's next step towards it.
        let mut rebalance_deadline = None;
        let reconciled = if updated.is_reconciled_to(target_epoch) {
            updated.clone()
        } else {
            let is_owned = |t: Uuid, p: i32| self.owners.contains_key(&(t, p));
            let next = reconcile(
                &updated,
                &Reconcile {
                    target_epoch,
                    target: &target,
                    owned: step.owned,
                    is_owned: &is_owned,
                },
            )
            .or_else(|e| refuse(e, "the member is in an unknown state and must rejoin"))?;
            if next.current_value() != updated.current_value() {
                rebalance_deadline =
                    Some((next.state == MemberState::UnrevokedPartitions).then(|| {
                        let timeout_ms = i64::from(next.metadata.rebalance_timeout_ms.max(0));
                        (now_ms.saturating_add(timeout_ms), next.member_epoch)
                    }));
            }
            next
        };
        if step.is_new || reconciled.current_value() != member.current_value() {
            records.push(ConsumerRecord::Current(
                reconciled.member_id.clone(),
                Some(reconciled.current_value()),
            ));
        }

        Ok((reconciled, rebalance_deadline))
    }

    /// The member a heartbeat is from, checked (its epoch, its instance id), or the one it
    /// starts as; and the id of a static member it replaces, whose records it adds.
    fn member_for(
        &self,
        req: &HeartbeatRequest,
        joining: bool,
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<(ConsumerMember, Option<String>), Refusal> {
        let Some(instance_id) = &req.instance_id else {
            return match self.members.get(&req.member_id) {
                Some(m) => {
                    check_epoch(m, req)?;
                    Ok((m.clone(), None))
                }
                None if joining => Ok((ConsumerMember::new(&req.member_id), None)),
                None => refuse(
                    GroupError::UnknownMemberId,
                    format!("member {} is not in the group", req.member_id),
                ),
            };
        };
        let existing = self
            .static_members
            .get(instance_id)
            .and_then(|id| self.members.get(id));
        match existing {
            Some(old) if old.member_id == req.member_id => {
                check_epoch(old, req)?;
                Ok((old.clone(), None))
            }
            Some(old) if joining => {
                // A static member comes back under a new member id: it takes the old one's
                // place and partitions, if the old one left (epoch -2).
                // (A classic member's place is taken at once: Kafka's migration rule.)
                if old.member_epoch != STATIC_LEAVE_EPOCH && old.metadata.classic.is_none() {
                    return refuse(
                        GroupError::UnreleasedInstanceId,
                        format!(
                            "instance id {instance_id} is still held by member {}",
                            old.member_id
                        ),
                    );
                }
                Ok(self.take_place_of(old, &req.member_id, records))
            }
            Some(_) => refuse(
                GroupError::FencedInstanceId,
                format!("instance id {instance_id} belongs to another member"),
            ),
            None if joining => match self.members.get(&req.member_id) {
                Some(m) => Ok((m.clone(), None)),
                None => Ok((ConsumerMember::new(&req.member_id), None)),
            },
            None => refuse(
                GroupError::UnknownMemberId,
                format!("instance id {instance_id} is unknown"),
            ),
        }
    }

    /// A static member back under `new_id` takes `old`'s place: `old`'s records removed, its
    /// metadata, target and partitions recorded under the new id at epoch 0. Returns the new
    /// member and the id it replaces.
    fn take_place_of(
        &self,
        old: &ConsumerMember,
        new_id: &str,
        records: &mut Vec<ConsumerRecord>,
    ) -> (ConsumerMember, Option<String>) {
        let mut new = old.clone();
        new_id.clone_into(&mut new.member_id);
        new.member_epoch = 0;
        new.previous_member_epoch = 0;
        records.extend(remove_member_records(&old.member_id));
        records.push(ConsumerRecord::Member(
            new.member_id.clone(),
            Some(new.metadata.clone()),
        ));
        if let Some(t) = self.targets.get(&old.member_id) {
            records.push(ConsumerRecord::TargetMember(
                new.member_id.clone(),
                Some(t.clone()),
            ));
        }
        records.push(ConsumerRecord::Current(
            new.member_id.clone(),
            Some(new.current_value()),
        ));
        (new, Some(old.member_id.clone()))
    }

    /// A member leaves (epoch -1), or a static member leaves for a while (epoch -2: it keeps
    /// its partitions until its session ends or it comes back).
    pub fn leave(
        &self,
        req: &HeartbeatRequest,
        topics: &dyn TopicResolver,
    ) -> Result<Decision, Refusal> {
        let member = match &req.instance_id {
            None => self.members.get(&req.member_id),
            Some(instance_id) => {
                let m = self
                    .static_members
                    .get(instance_id)
                    .and_then(|id| self.members.get(id));
                match m {
                    None => {
                        return refuse(
                            GroupError::UnknownMemberId,
                            format!("instance id {instance_id} is unknown"),
                        );
                    }
                    Some(m) if m.member_id != req.member_id => {
                        return refuse(
                            GroupError::FencedInstanceId,
                            format!("instance id {instance_id} belongs to another member"),
                        );
                    }
                    Some(m) => Some(m),
                }
            }
        };
        let Some(member) = member else {
            return refuse(
                GroupError::UnknownMemberId,
                format!("member {} is not in the group", req.member_id),
            );
        };
        let records = if req.member_epoch == STATIC_LEAVE_EPOCH && req.instance_id.is_some() {
            // It keeps what it owns for its session (Kafka's static leave), but nothing it
            // was giving up: those partitions go to their new owners at once.
            let mut left = member.clone();
            left.member_epoch = STATIC_LEAVE_EPOCH;
            left.pending_revocation = Assignment::new();
            vec![ConsumerRecord::Current(
                left.member_id.clone(),
                Some(left.current_value()),
            )]
        } else {
            self.fence(&member.member_id, topics)
        };
        Ok(Decision {
            records,
            member_id: req.member_id.clone(),
            member_epoch: req.member_epoch,
            assignment: None,
            alive: None,
            rebalance_deadline: None,
            classic_deadline_ms: None,
        })
    }

    /// The records that remove `member_id` (it left, or its session or rebalance timed out):
    /// its three records tombstoned and the group epoch bumped, so the others are assigned
    /// its partitions.
    pub fn fence(&self, member_id: &str, topics: &dyn TopicResolver) -> Vec<ConsumerRecord> {
        let mut records = remove_member_records(member_id);
        let subscribed = self.resolve_subscriptions(None, &[member_id], topics);
        records.push(ConsumerRecord::GroupEpoch(Some(GroupEpochValue {
            epoch: self.group_epoch.saturating_add(1),
            metadata_hash: metadata_hash(&subscribed),
        })));
        records
    }

    /// The records that delete the group (its members must be gone).
    pub fn delete_records(&self) -> Vec<ConsumerRecord> {
        vec![
            ConsumerRecord::TargetEpoch(None),
            ConsumerRecord::PartitionMetadata,
            ConsumerRecord::GroupEpoch(None),
        ]
    }

    /// Members whose session or rebalance deadline passed at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .session_deadlines_ms
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(id, _)| (id.clone(), "its session expired"))
            .collect();
        for (id, at) in &self.classic_deadlines_ms {
            if *at <= now_ms && !out.iter().any(|(o, _)| o == id) {
                out.push((
                    id.clone(),
                    "the classic member did not rejoin or sync within its rebalance timeout",
                ));
            }
        }
        for (id, (at, epoch)) in &self.rebalance_deadlines_ms {
            let still_revoking = self.is_revoking_at(id, *epoch);
            if *at <= now_ms && still_revoking && !out.iter().any(|(o, _)| o == id) {
                out.push((
                    id.clone(),
                    "it did not give up its partitions in its rebalance timeout",
                ));
            }
        }
        out.sort();
        out
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .session_deadlines_ms
            .values()
            .chain(self.classic_deadlines_ms.values())
            .copied();
        // Only deadlines that still guard something (see `replay`, which drops the others).
        let rebalances = self
            .rebalance_deadlines_ms
            .iter()
            .filter(|(id, (_, epoch))| self.is_revoking_at(id, *epoch))
            .map(|(_, (at, _))| *at);
        sessions.chain(rebalances).min()
    }

    fn is_revoking_at(&self, member_id: &str, epoch: i32) -> bool {
        self.members
            .get(member_id)
            .is_some_and(|m| m.member_epoch == epoch && m.state == MemberState::UnrevokedPartitions)
    }

    /// Whether an OffsetCommit (or TxnOffsetCommit) may commit for this group (Kafka's
    /// `ConsumerGroup.validateOffsetCommit`): anyone while it has no members (`epoch < 0`: an
    /// admin tool, or a consumer not in the group); else only a member at its current epoch,
    /// with OffsetCommit v9 or later outside a transaction.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        transactional: bool,
        v9_or_later: bool,
    ) -> GroupError {
        if member_epoch < 0 && self.members.is_empty() {
            return GroupError::None;
        }
        if transactional && member_epoch < 0 && member_id.is_empty() {
            return GroupError::None;
        }
        let Some(member) = self.members.get(member_id) else {
            return GroupError::UnknownMemberId;
        };
        // A classic member commits with its generation, at any version.
        let classic = member.metadata.classic.is_some();
        if !transactional && !classic && !v9_or_later {
            return GroupError::UnsupportedVersion;
        }
        if member_epoch != member.member_epoch {
            // A transactional producer knows no STALE_MEMBER_EPOCH: Kafka answers it
            // ILLEGAL_GENERATION, which aborts the transaction instead of failing the producer;
            // a classic member knows generations only.
            return if transactional || classic {
                GroupError::IllegalGeneration
            } else {
                GroupError::StaleMemberEpoch
            };
        }
        GroupError::None
    }

    /// Whether an OffsetFetch (v9+) naming `member_id` at `member_epoch` may read (Kafka's
    /// `ConsumerGroup.validateOffsetFetch`): anyone naming no member (an admin tool; Shoal also
    /// takes an empty id as none), else only a member at its epoch.
    pub fn validate_offset_fetch(&self, member_id: &str, member_epoch: i32) -> GroupError {
        if member_id.is_empty() && member_epoch < 0 {
            return GroupError::None;
        }
        let Some(member) = self.members.get(member_id) else {
            return GroupError::UnknownMemberId;
        };
        if member_epoch == member.member_epoch {
            GroupError::None
        } else if member.metadata.classic.is_some() {
            GroupError::IllegalGeneration
        } else {
            GroupError::StaleMemberEpoch
        }
    }

    // ─── Writes that failed ──────────────────────────────────────────────────────────────

    /// `records` were not confirmed written, but may be in the log (an append that timed out
    /// waiting for the replicas stays in it): the group stays as it is, and its next write
    /// starts with [`Self::restate`], so the log agrees with it again whatever happened.
    pub fn write_failed(&mut self, records: &[ConsumerRecord]) {
        let touched = self.unsure.get_or_insert_with(BTreeSet::new);
        for record in records {
            match record {
                ConsumerRecord::Member(id, _)
                | ConsumerRecord::TargetMember(id, _)
                | ConsumerRecord::Current(id, _) => {
                    touched.insert(id.clone());
                }
                _ => {}
            }
        }
    }

    /// Whether the next write must restate the group.
    pub fn is_unsure(&self) -> bool {
        self.unsure.is_some()
    }

    /// The whole group as records: its epochs, every member's three records, and tombstones
    /// for members a failed write touched that are not members. Written before the next
    /// decision's records, it overrides whatever part of a failed batch reached the log.
    pub fn restate(&self) -> Vec<ConsumerRecord> {
        let mut out = vec![ConsumerRecord::GroupEpoch(Some(GroupEpochValue {
            epoch: self.group_epoch,
            metadata_hash: self.metadata_hash,
        }))];
        for m in self.members.values() {
            out.push(ConsumerRecord::Member(
                m.member_id.clone(),
                Some(m.metadata.clone()),
            ));
            out.push(ConsumerRecord::Current(
                m.member_id.clone(),
                Some(m.current_value()),
            ));
        }
        for (id, target) in &self.targets {
            out.push(ConsumerRecord::TargetMember(
                id.clone(),
                Some(target.clone()),
            ));
        }
        for id in self.unsure.iter().flatten() {
            if !self.members.contains_key(id) {
                out.extend(remove_member_records(id));
            }
        }
        out.push(ConsumerRecord::TargetEpoch(Some(self.assignment_epoch)));
        out
    }

    /// The restated records were written: the log agrees with the group again.
    pub fn restated(&mut self) {
        self.unsure = None;
    }

    /// A member's expiry could not be written: tried again `retry_ms` later, not at once.
    pub fn retry_later(&mut self, member_id: &str, at_ms: i64) {
        if let Some(deadline) = self.session_deadlines_ms.get_mut(member_id) {
            *deadline = (*deadline).max(at_ms);
        }
        if let Some((deadline, _)) = self.rebalance_deadlines_ms.get_mut(member_id) {
            *deadline = (*deadline).max(at_ms);
        }
        if let Some(deadline) = self.classic_deadlines_ms.get_mut(member_id) {
            *deadline = (*deadline).max(at_ms);
        }
    }

    // ─── Applying what was written ───────────────────────────────────────────────────────

    /// `decision`'s records were written: they become the group, and the member's deadlines
    /// move.
    pub fn apply(&mut self, decision: &Decision, settings: &ConsumerGroupSettings, now_ms: i64) {
        let epoch_before = self.group_epoch;
        for record in &decision.records {
            self.replay(record);
        }
        assert!(self.group_epoch >= epoch_before, "a group epoch only grows");
        if let Some(id) = &decision.alive
            && let Some(member) = self.members.get(id)
        {
            let timeout_ms = session_timeout_ms(member, settings);
            self.session_deadlines_ms
                .insert(id.clone(), now_ms.saturating_add(timeout_ms));
            if let Some(at) = decision.classic_deadline_ms {
                self.classic_deadlines_ms.insert(id.clone(), at);
            }
        }
        if let (Some(id), Some(deadline)) = (&decision.alive, decision.rebalance_deadline) {
            match deadline {
                Some(d) => {
                    self.rebalance_deadlines_ms.insert(id.clone(), d);
                }
                None => {
                    self.rebalance_deadlines_ms.remove(id);
                }
            }
        }
    }

    /// After a load: every member gets a fresh session (and, when revoking, rebalance)
    /// deadline, as Kafka schedules them when it loads a group.
    pub fn restart_timers(&mut self, settings: &ConsumerGroupSettings, now_ms: i64) {
        for m in self.members.values() {
            let session_ms = session_timeout_ms(m, settings);
            self.session_deadlines_ms
                .insert(m.member_id.clone(), now_ms.saturating_add(session_ms));
            if m.state == MemberState::UnrevokedPartitions {
                let timeout_ms = i64::from(m.metadata.rebalance_timeout_ms.max(0));
                self.rebalance_deadlines_ms.insert(
                    m.member_id.clone(),
                    (now_ms.saturating_add(timeout_ms), m.member_epoch),
                );
            }
        }
    }

    /// One record, written now or read back at load. Records of different keys may come in
    /// any order after compaction, so a member is created by whichever of its records comes
    /// first; [`ConsumerGroup::drop_incomplete_members`] removes any left without a member
    /// record.
    pub fn replay(&mut self, record: &ConsumerRecord) {
        match record {
            ConsumerRecord::GroupEpoch(Some(v)) => {
                if v.epoch < self.group_epoch {
                    // Read back from a log someone else wrote: kept, but said.
                    tracing::warn!(group = %self.id, from = self.group_epoch, to = v.epoch, "a consumer group's epoch went back");
                }
                self.group_epoch = v.epoch;
                self.metadata_hash = v.metadata_hash;
            }
            ConsumerRecord::GroupEpoch(None) | ConsumerRecord::PartitionMetadata => {}
            ConsumerRecord::Member(id, Some(v)) => {
                self.incomplete.remove(id);
                let member = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| ConsumerMember::new(id));
                self.subscriptions.remove(&member.metadata);
                self.subscriptions.add(v);
                if let Some(old) = member.metadata.instance_id.take() {
                    self.static_members.remove(&old);
                }
                member.metadata = v.clone();
                if let Some(instance) = &v.instance_id {
                    self.static_members.insert(instance.clone(), id.clone());
                }
            }
            ConsumerRecord::Member(id, None) => {
                self.incomplete.remove(id);
                if let Some(m) = self.members.remove(id) {
                    self.subscriptions.remove(&m.metadata);
                    if let Some(instance) = m.instance_id()
                        && self.static_members.get(instance) == Some(id)
                    {
                        self.static_members.remove(instance);
                    }
                    self.release(&m);
                }
                self.session_deadlines_ms.remove(id);
                self.rebalance_deadlines_ms.remove(id);
                self.classic_deadlines_ms.remove(id);
            }
            ConsumerRecord::TargetMember(id, Some(a)) => {
                self.targets.insert(id.clone(), a.clone());
            }
            ConsumerRecord::TargetMember(id, None) => {
                self.targets.remove(id);
            }
            ConsumerRecord::TargetEpoch(v) => {
                self.assignment_epoch = v.unwrap_or(0);
            }
            ConsumerRecord::Current(id, value) => {
                if !self.members.contains_key(id) {
                    self.incomplete.insert(id.clone());
                }
                let member = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| ConsumerMember::new(id))
                    .clone();
                self.release(&member);
                let mut member = member;
                member.apply_current(&value.clone().unwrap_or_default());
                for p in
                    partitions_of(&member.assigned).chain(partitions_of(&member.pending_revocation))
                {
                    self.owners.insert(p, id.clone());
                }
                self.members.insert(id.clone(), member);
            }
        }
    }

    /// Whether the kept subscriber counts are what the members say (a test's invariant).
    #[cfg(test)]
    pub(crate) fn subscriptions_agree(&self) -> bool {
        let mut fresh = Subscriptions::default();
        for m in self.members.values() {
            fresh.add(&m.metadata);
        }
        fresh == self.subscriptions
    }

    /// `member`'s partitions are no longer owned by it.
    fn release(&mut self, member: &ConsumerMember) {
        for p in partitions_of(&member.assigned).chain(partitions_of(&member.pending_revocation)) {
            if self.owners.get(&p) == Some(&member.member_id) {
                self.owners.remove(&p);
            }
        }
    }

    /// After a load: members with an assignment record but no member record (a compacted
    /// history cut short) are dropped. Returns how many.
    pub fn drop_incomplete_members(&mut self) -> usize {
        let incomplete = std::mem::take(&mut self.incomplete);
        for id in &incomplete {
            self.replay(&ConsumerRecord::Member(id.clone(), None));
        }
        // Targets of members that are gone (a member record tombstoned, its target not).
        let members = &self.members;
        self.targets.retain(|id, _| members.contains_key(id));
        incomplete.len()
    }

    // ─── Subscriptions and assignment ────────────────────────────────────────────────────

    /// Every topic the members subscribe to that exists: name → (id, partitions). `with`
    /// replaces (or adds) a member; `without` leaves one out.
    fn resolve_subscriptions(
        &self,
        with: Option<&ConsumerMember>,
        without: &[&str],
        topics: &dyn TopicResolver,
    ) -> BTreeMap<String, (Uuid, i32)> {
        // The group's counts, less the members left out or replaced, plus `with`.
        let mut counts = self.subscriptions.clone();
        let replaced = with.and_then(|w| self.members.get(&w.member_id));
        for m in without
            .iter()
            .filter_map(|id| self.members.get(*id))
            .chain(replaced)
        {
            counts.remove(&m.metadata);
        }
        if let Some(w) = with {
            counts.add(&w.metadata);
        }
        let mut names: BTreeSet<String> = counts.names.into_keys().collect();
        for regex in counts.regexes.keys() {
            if let Some(matched) = topics.matching(regex) {
                names.extend(matched.iter().cloned());
            }
        }
        names
            .into_iter()
            .filter_map(|n| topics.topic(&n).map(|t| (n, t)))
            .collect()
    }

    /// Every member's new target (the assignor run over the members as they are now).
    fn compute_targets(
        &self,
        assignor: AssignorName,
        updated: &ConsumerMember,
        without: Option<&str>,
        current_targets: &BTreeMap<String, Assignment>,
        subscribed: &BTreeMap<String, (Uuid, i32)>,
        topics: &dyn TopicResolver,
    ) -> BTreeMap<String, Assignment> {
        let mut members: BTreeMap<&str, &ConsumerMember> = self
            .members
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != without)
            .map(|(id, m)| (id.as_str(), m))
            .collect();
        members.insert(updated.member_id.as_str(), updated);
        let subscriptions: Vec<(&str, BTreeSet<Uuid>)> = members
            .values()
            .map(|m| {
                let ids = topic_names_of(m, topics)
                    .iter()
                    .filter_map(|n| subscribed.get(n).map(|(id, _)| *id))
                    .collect();
                (m.member_id.as_str(), ids)
            })
            .collect();
        let empty = Assignment::new();
        let input: Vec<AssignorMember<'_>> = subscriptions
            .iter()
            .map(|(id, subscribed)| AssignorMember {
                member_id: id,
                subscribed,
                current: current_targets.get(*id).unwrap_or(&empty),
            })
            .collect();
        let partitions: BTreeMap<Uuid, i32> = subscribed.values().copied().collect();
        assign(assignor, &input, &partitions)
    }
}

/// A member's epoch check (Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`): a member may
/// rejoin with 0, or repeat its previous epoch if the answer that bumped it was lost (it then
/// owns no more than it was given); anything else is fenced.
fn check_epoch(member: &ConsumerMember, req: &HeartbeatRequest) -> Result<(), Refusal> {
    let received = req.member_epoch;
    if received == JOIN_EPOCH || received == member.member_epoch {
        return Ok(());
    }
    let lost_answer = received == member.previous_member_epoch
        && req
            .owned
            .as_ref()
            .is_some_and(|o| is_subset(o, &member.assigned));
    if received < member.member_epoch && lost_answer {
        return Ok(());
    }
    refuse(
        GroupError::FencedMemberEpoch,
        format!(
            "member epoch {received} is not the coordinator's {}; the member must give up its partitions and rejoin",
            member.member_epoch
        ),
    )
}

fn remove_member_records(member_id: &str) -> Vec<ConsumerRecord> {
    vec![
        ConsumerRecord::Current(member_id.to_string(), None),
        ConsumerRecord::TargetMember(member_id.to_string(), None),
        ConsumerRecord::Member(member_id.to_string(), None),
    ]
}

/// A hash of the subscribed topics (name, id, partition count), 0 for none: when a topic is
/// created, deleted or grows, it changes and the group is assigned again. FNV-1a over a
/// fixed layout, so it is the same on every broker and after a restart.
fn metadata_hash(topics: &BTreeMap<String, (Uuid, i32)>) -> i64 {
    if topics.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, (id, partitions)) in topics {
        feed(&(name.len() as u64).to_be_bytes());
        feed(name.as_bytes());
        feed(id.as_bytes());
        feed(&partitions.to_be_bytes());
    }
    // 0 means "none"; a real hash of 0 is moved off it.
    match h as i64 {
        0 => 1,
        v => v,
    }
}

/// A member's session: a classic member's own, else the group's setting.
fn session_timeout_ms(member: &ConsumerMember, settings: &ConsumerGroupSettings) -> i64 {
    let ms = member
        .metadata
        .classic
        .as_ref()
        .map_or(settings.session_timeout_ms, |c| c.session_timeout_ms);
    i64::from(ms.max(0))
}

/// Whether a heartbeat's member epoch says the member leaves.
pub fn is_leave(member_epoch: i32) -> bool {
    member_epoch == LEAVE_EPOCH || member_epoch == STATIC_LEAVE_EPOCH
}

#[path = "classic.rs"]
mod classic;
pub use classic::{
    CONSUMER_PROTOCOL_TYPE, ClassicJoin, ClassicMember, ClassicSnapshot, Downgrade, MigrationPolicy,
};

#[cfg(test)]
#[path = "group_tests.rs"]
pub(crate) mod tests;
