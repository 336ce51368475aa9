//! `ClassicGroup`: one consumer group under Kafka's classic rebalance protocol, as a state
//! machine over time (Kafka's `ClassicGroup` + the classic half of `GroupMetadataManager`).
//!
//! **Pure, with the clock and the disk outside.** Every method takes `now_ms` (a monotonic
//! millisecond clock); deadlines are fields, checked by [`ClassicGroup::tick`]. Requests that
//! must wait (a JoinGroup until the rebalance completes, a follower's SyncGroup until the
//! leader's assignment is stored) get a `oneshot` receiver; the group completes it when the
//! moment comes. Records to write are left in `pending_persist` for the coordinator to append
//! and report back ([`ClassicGroup::persisted`]), so the rules are unit-testable without a log.
//!
//! States: Empty → PreparingRebalance (a member joins) → CompletingRebalance (every member
//! rejoined, or the rebalance timeout passed; the generation grows, the leader gets the member
//! list) → Stable (the leader's assignment is stored) → PreparingRebalance (a member joins,
//! leaves, times out, or the leader rejoins) …; Dead once unloaded. Rules and error codes
//! follow the classic coordinator of Kafka 3.x/4.x (see docs/groups.md).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use crate::consumer::group::{ClassicMember, ClassicSnapshot};
use crate::error::GroupError;
use crate::records::{GroupValue, StoredMember};

/// How long a brand-new member has to complete its first rebalance (Kafka hardcodes 5 min).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 300_000;

/// Most member ids handed out with MEMBER_ID_REQUIRED and not yet used, per group: each lives
/// for a session timeout, so without a bound a client looping on empty joins grows the group
/// without limit (Kafka has no bound; Shoal answers GROUP_MAX_SIZE_REACHED past it).
pub const MAX_PENDING_MEMBERS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's names, as DescribeGroups and ListGroups show them.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Group settings from the broker configs.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `group.max.size`
    pub max_size: usize,
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets an id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error: GroupError,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only in the leader's response.
    pub members: Vec<JoinMember>,
    /// JoinGroup v9 (KIP-814): a static leader that replaced itself in a Stable group gets the
    /// members but must not assign again; its SyncGroup gets the stored assignment.
    pub skip_assignment: bool,
}

impl JoinResponse {
    pub fn error(error: GroupError, member_id: &str) -> Self {
        JoinResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// What a JoinGroup gets now.
#[derive(Debug)]
pub enum JoinAction {
    Reply(JoinResponse),
    /// Parked until the rebalance completes.
    Wait(oneshot::Receiver<JoinResponse>),
    /// Answer once `pending_persist` is written (a static member replaced in a Stable group).
    ReplyAfterPersist(JoinResponse),
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error: GroupError,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: GroupError) -> Self {
        SyncResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Debug)]
pub enum SyncAction {
    Reply(SyncResponse),
    /// Parked until the leader's assignment is stored; the coordinator writes
    /// `pending_persist` first if there is one.
    Wait(oneshot::Receiver<SyncResponse>),
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinResponse>>,
    awaiting_sync: Option<oneshot::Sender<SyncResponse>>,
    is_new: bool,
    heartbeat_deadline_ms: i64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, other: &[(String, Bytes)]) -> bool {
        self.protocols == other
    }
}

#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    state: GroupState,
    previous_state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: IndexMap<String, Member>,
    static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin by.
    pending_members: HashMap<String, i64>,
    pending_sync: HashSet<String>,
    new_member_added: bool,
    join_deadline_ms: Option<i64>,
    /// While a rebalance from Empty waits out `group.initial.rebalance.delay.ms`: the last
    /// delay and the time left of the rebalance timeout.
    initial_delay: Option<(i64, i64)>,
    sync_deadline_ms: Option<i64>,
    /// The leader's assignment, applied once stored.
    proposed_assignment: Option<HashMap<String, Bytes>>,
    /// A group record to write (taken by the coordinator).
    pending_persist: Option<GroupValue>,
    /// Wall-clock ms of the last state change (stored with the group).
    state_timestamp_ms: i64,
}

pub(crate) fn generate_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl ClassicGroup {
    pub fn new(id: &str, wall_ms: i64) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_deadline_ms: None,
            initial_delay: None,
            sync_deadline_ms: None,
            proposed_assignment: None,
            pending_persist: None,
            state_timestamp_ms: wall_ms,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Wall-clock ms of the last state change (when an Empty group became Empty).
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    #[cfg(test)]
    pub(crate) fn set_protocol_type_for_test(&mut self, protocol_type: &str) {
        self.protocol_type = Some(protocol_type.to_string());
    }

    pub fn member_ids(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// The group record the coordinator must write next, if any.
    pub fn take_persist(&mut self) -> Option<GroupValue> {
        self.pending_persist.take()
    }

    fn transition(&mut self, to: GroupState, wall_ms: i64) {
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp_ms = wall_ms;
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Each member votes for its first protocol that every member supports; most votes wins
    /// (ties go to the first in the leader's order, for determinism).
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        let leader_order: Vec<&String> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .map(|m| m.protocols.iter().map(|(n, _)| n).collect())
            .unwrap_or_else(|| candidates.clone());
        candidates
            .iter()
            .max_by_key(|name| {
                let rank = leader_order
                    .iter()
                    .position(|n| n == *name)
                    .unwrap_or(usize::MAX);
                (
                    votes.get(name.as_str()).copied().unwrap_or(0),
                    usize::MAX - rank,
                )
            })
            .map(|s| (*s).clone())
    }

    /// Checks a member id (and instance id) against the group.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> GroupError {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return GroupError::UnknownMemberId,
                Some(id) if id != member_id => return GroupError::FencedInstanceId,
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            GroupError::None
        } else {
            GroupError::UnknownMemberId
        }
    }

    // ─── JoinGroup ───────────────────────────────────────────────────────────────────────

    pub fn join(
        &mut self,
        req: JoinRequest,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> JoinAction {
        if self.state == GroupState::Dead {
            return JoinAction::Reply(JoinResponse::error(
                GroupError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        let is_new = req.member_id.is_empty() || self.pending_members.contains_key(&req.member_id);
        let known_static = req
            .group_instance_id
            .as_ref()
            .is_some_and(|i| self.static_members.contains_key(i));
        if (is_new && !known_static) && !self.accepts_new_member(settings) {
            return JoinAction::Reply(JoinResponse::error(
                GroupError::GroupMaxSizeReached,
                &req.member_id,
            ));
        }
        if !self.supports_or_own(&req) {
            return JoinAction::Reply(JoinResponse::error(
                GroupError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.group_instance_id.clone() {
                if known_static {
                    return self.replace_static_member(&instance, req, now_ms, wall_ms, settings);
                }
                let id = generate_member_id(&instance);
                return self.add_member(id, req, now_ms, wall_ms, settings);
            }
            let id = generate_member_id(&req.client_id);
            if req.require_known_member_id {
                if self.pending_members.len() >= MAX_PENDING_MEMBERS.min(settings.max_size) {
                    return JoinAction::Reply(JoinResponse::error(
                        GroupError::GroupMaxSizeReached,
                        "",
                    ));
                }
                self.pending_members
                    .insert(id.clone(), now_ms + i64::from(req.session_timeout_ms));
                return JoinAction::Reply(JoinResponse::error(GroupError::MemberIdRequired, &id));
            }
            return self.add_member(id, req, now_ms, wall_ms, settings);
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member(id, req, now_ms, wall_ms, settings);
        }
        let check = self.validate_member(&req.member_id, req.group_instance_id.as_deref());
        if !check.is_ok() {
            return JoinAction::Reply(JoinResponse::error(check, &req.member_id));
        }
        self.join_existing(req, now_ms, wall_ms, settings)
    }

    /// A rejoining member is checked against the others, not against its own old protocols.
    fn supports_or_own(&self, req: &JoinRequest) -> bool {
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.member_id != req.member_id)
            .collect();
        if others.is_empty() {
            return !req.protocol_type.is_empty() && !req.protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        req.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn accepts_new_member(&self, settings: &GroupSettings) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .values()
                    .filter(|m| m.awaiting_join.is_some())
                    .count()
                    < settings.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.len() < settings.max_size
            }
        }
    }

    fn add_member(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> JoinAction {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: Some(tx),
                awaiting_sync: None,
                is_new: true,
                heartbeat_deadline_ms: now_ms + NEW_MEMBER_JOIN_TIMEOUT_MS,
            },
        );
        self.rebalance_or_complete(now_ms, wall_ms, settings);
        JoinAction::Wait(rx)
    }

    fn rebalance_or_complete(&mut self, now_ms: i64, wall_ms: i64, settings: &GroupSettings) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now_ms, wall_ms, settings)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, wall_ms),
            GroupState::Dead => {}
        }
    }

    fn join_existing(
        &mut self,
        req: JoinRequest,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> JoinAction {
        let member_id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let Some(member) = self.members.get_mut(&member_id) else {
            return JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, &member_id));
        };
        let unchanged = member.same_protocols(&req.protocols);
        let update = |m: &mut Member, req: JoinRequest| {
            m.protocols = req.protocols;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.client_id = req.client_id;
            m.client_host = req.client_host;
        };
        match self.state {
            GroupState::PreparingRebalance => {
                update(member, req);
                let rx = park_join(member);
                self.maybe_complete_join(now_ms, wall_ms);
                JoinAction::Wait(rx)
            }
            GroupState::CompletingRebalance if unchanged => {
                JoinAction::Reply(self.join_response_for(&member_id, GroupError::None))
            }
            GroupState::Stable if unchanged && !is_leader => {
                let mut response = self.join_response_for(&member_id, GroupError::None);
                response.members.clear();
                JoinAction::Reply(response)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                update(member, req);
                let rx = park_join(member);
                self.prepare_rebalance(now_ms, wall_ms, settings);
                JoinAction::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, &member_id))
            }
        }
    }

    fn replace_static_member(
        &mut self,
        instance: &str,
        req: JoinRequest,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> JoinAction {
        let Some(old_id) = self.static_members.get(instance).cloned() else {
            return JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, ""));
        };
        let Some(mut member) = self.members.shift_remove(&old_id) else {
            return JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, ""));
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResponse::error(GroupError::FencedInstanceId, &old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(SyncResponse::error(GroupError::FencedInstanceId));
        }
        let new_id = generate_member_id(instance);
        let old_protocol = self.protocol_name.clone();
        member.member_id = new_id.clone();
        member.protocols = req.protocols;
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        self.members.insert(new_id.clone(), member);
        self.static_members
            .insert(instance.to_string(), new_id.clone());
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            GroupState::Stable if self.select_protocol() == old_protocol => {
                // As Kafka: a static leader gets the member list (older clients assign again,
                // and SyncGroup in Stable answers with the stored assignment regardless).
                self.pending_persist = Some(self.to_stored());
                let mut response = self.join_response_for(&new_id, GroupError::None);
                response.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
                JoinAction::ReplyAfterPersist(response)
            }
            GroupState::PreparingRebalance => {
                let rx = self.members.get_mut(&new_id).map(park_join);
                self.maybe_complete_join(now_ms, wall_ms);
                rx.map_or_else(
                    || JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, "")),
                    JoinAction::Wait,
                )
            }
            _ => {
                let rx = self.members.get_mut(&new_id).map(park_join);
                self.prepare_rebalance(now_ms, wall_ms, settings);
                rx.map_or_else(
                    || JoinAction::Reply(JoinResponse::error(GroupError::UnknownMemberId, "")),
                    JoinAction::Wait,
                )
            }
        }
    }

    /// The join response for `member_id` in the current generation (members to the leader).
    fn join_response_for(&self, member_id: &str, error: GroupError) -> JoinResponse {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResponse {
            error,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| JoinMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, wall_ms: i64, settings: &GroupSettings) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResponse::error(GroupError::RebalanceInProgress));
                }
                member.assignment = Bytes::new();
            }
        }
        self.sync_deadline_ms = None;
        self.pending_sync.clear();
        self.proposed_assignment = None;
        let from_empty = self.state == GroupState::Empty;
        self.transition(GroupState::PreparingRebalance, wall_ms);
        if from_empty {
            let delay = settings.initial_rebalance_delay_ms.max(0);
            let remaining = (self.rebalance_timeout_ms() - delay).max(0);
            self.initial_delay = Some((delay, remaining));
            self.new_member_added = false;
            self.join_deadline_ms = Some(now_ms + delay);
        } else if self.all_joined() {
            self.complete_join(now_ms, wall_ms);
        } else {
            self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
        }
    }

    fn maybe_complete_join(&mut self, now_ms: i64, wall_ms: i64) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_joined()
        {
            self.complete_join(now_ms, wall_ms);
        }
    }

    fn complete_join(&mut self, now_ms: i64, wall_ms: i64) {
        self.join_deadline_ms = None;
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        if !self.members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_none()) {
            // Only static members that did not rejoin: nobody can lead; wait again.
            self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.transition(GroupState::Empty, wall_ms);
            self.pending_persist = Some(self.to_stored());
            return;
        }
        self.protocol_name = self.select_protocol();
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.awaiting_join.is_some());
        if !leader_joined {
            self.leader = self
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .map(|m| m.member_id.clone());
        }
        self.transition(GroupState::CompletingRebalance, wall_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response_for(&id, GroupError::None);
            if let Some(member) = self.members.get_mut(&id) {
                if let Some(tx) = member.awaiting_join.take() {
                    let _ = tx.send(response);
                }
                member.is_new = false;
                member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut member) = self.members.shift_remove(member_id) {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResponse::error(GroupError::UnknownMemberId, ""));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResponse::error(GroupError::UnknownMemberId));
            }
            if let Some(instance) = &member.group_instance_id
                && self.static_members.get(instance).map(String::as_str) == Some(member_id)
            {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    // ─── SyncGroup, Heartbeat, LeaveGroup ────────────────────────────────────────────────

    pub fn sync(&mut self, req: SyncRequest, now_ms: i64) -> SyncAction {
        let reply = |e| SyncAction::Reply(SyncResponse::error(e));
        match self.state {
            GroupState::Empty => return reply(GroupError::UnknownMemberId),
            GroupState::Dead => return reply(GroupError::CoordinatorNotAvailable),
            _ => {}
        }
        let check = self.validate_member(&req.member_id, req.group_instance_id.as_deref());
        if !check.is_ok() {
            return reply(check);
        }
        if req.generation_id != self.generation {
            return reply(GroupError::IllegalGeneration);
        }
        let mismatch = |given: &Option<String>, ours: &Option<String>| {
            given.as_ref().is_some_and(|g| Some(g) != ours.as_ref())
        };
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol_name, &self.protocol_name)
        {
            return reply(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::PreparingRebalance => reply(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                self.pending_sync.remove(&req.member_id);
                let assignment = self
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                SyncAction::Reply(self.sync_response(assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(&req.member_id) {
                    member.awaiting_sync = Some(tx);
                    member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                }
                self.pending_sync.remove(&req.member_id);
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    let given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    let assignment: HashMap<String, Bytes> = self
                        .members
                        .keys()
                        .map(|id| (id.clone(), given.get(id).cloned().unwrap_or_default()))
                        .collect();
                    let mut stored = self.to_stored();
                    for member in &mut stored.members {
                        member.assignment = assignment
                            .get(&member.member_id)
                            .cloned()
                            .unwrap_or_default();
                    }
                    self.proposed_assignment = Some(assignment);
                    self.pending_persist = Some(stored);
                }
                SyncAction::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => reply(GroupError::UnknownMemberId),
        }
    }

    fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: GroupError::None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The coordinator wrote (`ok`) or failed to write the record `take_persist` returned. For
    /// the leader's assignment: applied and sent to every waiting member, the group Stable; or,
    /// on failure, every waiting member told and a new rebalance started.
    pub fn persisted(
        &mut self,
        ok: bool,
        error: GroupError,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) {
        let Some(assignment) = self.proposed_assignment.take() else {
            return;
        };
        if self.state != GroupState::CompletingRebalance {
            return;
        }
        if ok {
            for member in self.members.values_mut() {
                member.assignment = assignment
                    .get(&member.member_id)
                    .cloned()
                    .unwrap_or_default();
            }
            self.transition(GroupState::Stable, wall_ms);
            self.sync_deadline_ms = None;
            let response = |m: &Member, g: &ClassicGroup| g.sync_response(m.assignment.clone());
            let ids: Vec<String> = self.members.keys().cloned().collect();
            for id in ids {
                let reply = self.members.get(&id).map(|m| response(m, self));
                if let (Some(member), Some(reply)) = (self.members.get_mut(&id), reply)
                    && let Some(tx) = member.awaiting_sync.take()
                {
                    member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                    let _ = tx.send(reply);
                }
            }
        } else {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResponse::error(error));
                }
            }
            self.prepare_rebalance(now_ms, wall_ms, settings);
        }
    }

    pub fn heartbeat(
        &mut self,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> GroupError {
        match self.state {
            GroupState::Dead => return GroupError::CoordinatorNotAvailable,
            GroupState::Empty => return GroupError::UnknownMemberId,
            _ => {}
        }
        let check = self.validate_member(member_id, instance_id);
        if !check.is_ok() {
            return check;
        }
        if generation_id != self.generation {
            return GroupError::IllegalGeneration;
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        }
        if self.state == GroupState::PreparingRebalance {
            GroupError::RebalanceInProgress
        } else {
            GroupError::None
        }
    }

    /// LeaveGroup for each (member id, instance id); one error per member.
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>)],
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> Vec<GroupError> {
        if self.state == GroupState::Dead {
            return vec![GroupError::CoordinatorNotAvailable; members.len()];
        }
        let mut left = false;
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let target = if member_id.is_empty() {
                match instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i))
                {
                    Some(id) => Ok(id.clone()),
                    None => Err(GroupError::UnknownMemberId),
                }
            } else if self.pending_members.remove(member_id).is_some() {
                results.push(GroupError::None);
                continue;
            } else {
                match self.validate_member(member_id, instance_id.as_deref()) {
                    GroupError::None => Ok(member_id.clone()),
                    e => Err(e),
                }
            };
            match target {
                Ok(id) => {
                    self.remove_member(&id);
                    left = true;
                    results.push(GroupError::None);
                }
                Err(e) => results.push(e),
            }
        }
        if left {
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.prepare_rebalance(now_ms, wall_ms, settings)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, wall_ms),
                _ => {}
            }
        }
        results
    }

    // ─── Time ────────────────────────────────────────────────────────────────────────────

    /// Acts on every deadline that passed by `now_ms`: expired members and pending ids, the
    /// join deadline (with the initial delay), the sync deadline.
    pub fn tick(&mut self, now_ms: i64, wall_ms: i64, settings: &GroupSettings) {
        if self.state == GroupState::Dead {
            return;
        }
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline_ms <= now_ms)
            .filter(|m| m.is_new || (m.awaiting_join.is_none() && m.awaiting_sync.is_none()))
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(group = %self.id, member = %id, "member session expired");
                self.remove_member(id);
            }
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.prepare_rebalance(now_ms, wall_ms, settings)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, wall_ms),
                _ => {}
            }
        } else if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now_ms, wall_ms);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| d <= now_ms)
        {
            match self.initial_delay {
                Some((delay, remaining)) if self.new_member_added && remaining > 0 => {
                    self.new_member_added = false;
                    let next = delay.min(remaining);
                    self.initial_delay = Some((next, (remaining - delay).max(0)));
                    self.join_deadline_ms = Some(now_ms + next);
                }
                _ => self.complete_join(now_ms, wall_ms),
            }
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline_ms.is_some_and(|d| d <= now_ms)
            && self.proposed_assignment.is_none()
        {
            let laggards: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in laggards {
                self.remove_member(&id);
            }
            self.prepare_rebalance(now_ms, wall_ms, settings);
        }
    }

    /// The earliest deadline [`ClassicGroup::tick`] acts on (monotonic ms): when the
    /// coordinator's timer must run next for this group; `None` if none is set.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        if self.state == GroupState::Dead {
            return None;
        }
        let join = self
            .join_deadline_ms
            .filter(|_| self.state == GroupState::PreparingRebalance);
        let sync = self
            .sync_deadline_ms
            .filter(|_| self.state == GroupState::CompletingRebalance);
        self.pending_members
            .values()
            .copied()
            .chain(self.members.values().map(|m| m.heartbeat_deadline_ms))
            .chain(join)
            .chain(sync)
            .min()
    }

    // ─── Offsets, description, storage ───────────────────────────────────────────────────

    /// OffsetCommit's checks; on success a member's session is refreshed.
    pub fn validate_commit(
        &mut self,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> GroupError {
        if self.state == GroupState::Dead {
            return GroupError::CoordinatorNotAvailable;
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return GroupError::None;
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            let check = self.validate_member(member_id, instance_id);
            if !check.is_ok() {
                return check;
            }
            if generation_id != self.generation {
                return GroupError::IllegalGeneration;
            }
        } else {
            return GroupError::UnknownMemberId;
        }
        if self.state == GroupState::CompletingRebalance {
            return GroupError::RebalanceInProgress;
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        }
        GroupError::None
    }

    /// TxnOffsetCommit's checks (Kafka's `validateOffsetCommit` with `isTransactional`): as
    /// OffsetCommit's when the request names a member or a generation (KIP-447), but a request
    /// without either is accepted whatever the group's state (older producers send neither),
    /// a rebalance does not refuse it, and it refreshes no session.
    pub fn validate_txn_commit(
        &self,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> GroupError {
        if self.state == GroupState::Dead {
            return GroupError::CoordinatorNotAvailable;
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return GroupError::None;
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            let check = self.validate_member(member_id, instance_id);
            if !check.is_ok() {
                return check;
            }
            if generation_id != self.generation {
                return GroupError::IllegalGeneration;
            }
        }
        GroupError::None
    }

    /// Topics the members subscribe to (from ConsumerProtocol subscriptions); `None` if a
    /// subscription does not parse (then the group counts as subscribed to everything).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut topics = HashSet::new();
        for member in self.members.values() {
            topics.extend(parse_subscription_topics(&member.metadata_for(&protocol))?);
        }
        Some(topics)
    }

    pub fn describe_members(&self) -> Vec<MemberDescription> {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// The group as a `__consumer_offsets` record.
    pub fn to_stored(&self) -> GroupValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group rebuilt from its stored record after this broker became coordinator: Stable
    /// with its members (Empty without), every member given a full session to heartbeat.
    pub fn from_stored(id: &str, value: GroupValue, now_ms: i64) -> Self {
        let mut group = ClassicGroup::new(id, value.current_state_timestamp_ms.max(0));
        group.generation = value.generation;
        group.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
        group.protocol_name = value.protocol;
        group.leader = value.leader;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        for m in value.members {
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let rebalance = if m.rebalance_timeout_ms < 0 {
                m.session_timeout_ms
            } else {
                m.rebalance_timeout_ms
            };
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: rebalance,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    awaiting_join: None,
                    awaiting_sync: None,
                    is_new: false,
                    heartbeat_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
                },
            );
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group
    }

    /// The group as the move to the consumer protocol reads it.
    pub fn snapshot(&self) -> ClassicSnapshot {
        ClassicSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            members: self
                .members
                .values()
                .map(|m| ClassicMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The group's record without its members (what the move to the consumer protocol
    /// writes over it, keeping its offsets, which a tombstone would delete).
    pub fn emptied(&self, wall_ms: i64) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: wall_ms,
            members: Vec::new(),
        }
    }

    /// The group became a consumer group: every parked JoinGroup and SyncGroup is told to
    /// rejoin (REBALANCE_IN_PROGRESS), as Kafka's `convertToConsumerGroup` does.
    pub fn release_waiting(&mut self) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResponse::error(
                    GroupError::RebalanceInProgress,
                    &member.member_id,
                ));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResponse::error(GroupError::RebalanceInProgress));
            }
        }
        self.state = GroupState::Dead;
    }

    /// A consumer group turned back into a classic group (its record, `value`): Stable at its
    /// epoch, then rebalancing at once, so each member rejoins and a leader assigns.
    pub fn from_downgrade(
        id: &str,
        value: GroupValue,
        now_ms: i64,
        wall_ms: i64,
        settings: &GroupSettings,
    ) -> Self {
        let mut group = ClassicGroup::from_stored(id, value, now_ms);
        if group.state == GroupState::Stable {
            group.prepare_rebalance(now_ms, wall_ms, settings);
        }
        group
    }

    /// This broker no longer coordinates the group: every parked request is told so.
    pub fn unload(&mut self) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResponse::error(
                    GroupError::NotCoordinator,
                    &member.member_id,
                ));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResponse::error(GroupError::NotCoordinator));
            }
        }
        self.state = GroupState::Dead;
    }

    /// Empty groups may be deleted (DeleteGroups); others answer NON_EMPTY_GROUP.
    pub fn can_delete(&self) -> GroupError {
        match self.state {
            GroupState::Empty => GroupError::None,
            GroupState::Dead => GroupError::GroupIdNotFound,
            _ => GroupError::NonEmptyGroup,
        }
    }
}

fn park_join(member: &mut Member) -> oneshot::Receiver<JoinResponse> {
    let (tx, rx) = oneshot::channel();
    if let Some(old) = member.awaiting_join.replace(tx) {
        let _ = old.send(JoinResponse::error(
            GroupError::RebalanceInProgress,
            &member.member_id,
        ));
    }
    rx
}

/// The topics of a ConsumerProtocol subscription (`version int16, topics [string], …`).
fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = metadata.get(*at..*at + n)?;
        *at += n;
        Some(bytes)
    };
    let mut at = 0usize;
    let _version = take(&mut at, 2)?;
    let count = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    let mut topics = Vec::with_capacity(count.min(metadata.len() / 2));
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let bytes = take(&mut at, usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(bytes.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
