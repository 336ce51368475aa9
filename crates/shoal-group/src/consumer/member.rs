//! `ConsumerMember`: one member of a KIP-848 consumer group — its subscription (as its
//! member record stores it), the epoch it is at, and the partitions it owns or must give up.

use crate::consumer::assignor::Assignment;
use crate::consumer::records::{CurrentAssignmentValue, MemberMetadataValue};

/// Member epoch of a member that is joining (or rejoining after it was fenced).
pub const JOIN_EPOCH: i32 = 0;
/// Member epoch with which a member leaves.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch with which a static member leaves for a while, keeping its partitions.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reaching its target assignment (Kafka's `MemberState`, as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// At its target epoch with every partition of its target it can have.
    #[default]
    Stable,
    /// Must give up partitions first; stays at its epoch until it reports them gone.
    UnrevokedPartitions,
    /// At its target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
    /// A state a newer coordinator wrote: the member is made to rejoin.
    Unknown,
}

impl MemberState {
    pub fn to_byte(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub fn from_byte(b: i8) -> MemberState {
        match b {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
            MemberState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerMember {
    pub member_id: String,
    /// What its member record holds: client, subscription, rebalance timeout, assignor.
    pub metadata: MemberMetadataValue,
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost may come back with it.
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// Partitions it owns and keeps.
    pub assigned: Assignment,
    /// Partitions it owns but must give up.
    pub pending_revocation: Assignment,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> Self {
        ConsumerMember {
            member_id: member_id.to_string(),
            metadata: MemberMetadataValue {
                rebalance_timeout_ms: -1,
                ..MemberMetadataValue::default()
            },
            ..ConsumerMember::default()
        }
    }

    pub fn instance_id(&self) -> Option<&str> {
        self.metadata.instance_id.as_deref()
    }

    /// At `target_epoch` with nothing left to do.
    pub fn is_reconciled_to(&self, target_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == target_epoch
    }

    /// Its current assignment as its record stores it.
    pub fn current_value(&self) -> CurrentAssignmentValue {
        CurrentAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.to_byte(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    pub fn apply_current(&mut self, value: &CurrentAssignmentValue) {
        self.member_epoch = value.member_epoch;
        self.previous_member_epoch = value.previous_member_epoch;
        self.state = MemberState::from_byte(value.state);
        self.assigned = value.assigned.clone();
        self.pending_revocation = value.pending_revocation.clone();
    }

    /// Moves to `epoch`, remembering the one it leaves.
    pub fn set_epoch(&mut self, epoch: i32) {
        if epoch != self.member_epoch {
            self.previous_member_epoch = self.member_epoch;
            self.member_epoch = epoch;
        }
    }
}

/// Partitions in `a`, as (topic id, partition) pairs.
pub fn partitions_of(a: &Assignment) -> impl Iterator<Item = (uuid::Uuid, i32)> + '_ {
    a.iter()
        .flat_map(|(topic, parts)| parts.iter().map(move |p| (*topic, *p)))
}

/// Whether every partition of `owned` is in `of`.
pub fn is_subset(owned: &Assignment, of: &Assignment) -> bool {
    owned
        .iter()
        .all(|(topic, parts)| of.get(topic).is_some_and(|have| parts.is_subset(have)))
}

/// Whether `a` and `b` share a partition.
pub fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(topic, parts)| b.get(topic).is_some_and(|other| !parts.is_disjoint(other)))
}
