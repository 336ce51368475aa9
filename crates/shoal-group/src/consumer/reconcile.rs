//! Moving one member from what it owns towards its target assignment, without ever letting
//! two members own a partition at once (Kafka's `CurrentAssignmentBuilder`).
//!
//! **Why in steps.** A partition moves from A to B in two heartbeats: A is first told to give
//! it up (A stays at its epoch, UNREVOKED_PARTITIONS, until a heartbeat no longer lists it),
//! and only then can B have it (until then B is UNRELEASED_PARTITIONS at the new epoch). Every
//! partition that does not move is never paused: that is what replaces the classic protocol's
//! stop-the-world rebalance.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::consumer::assignor::Assignment;
use crate::consumer::member::{ConsumerMember, MemberState, intersects};
use crate::error::GroupError;

/// What the member's next state is computed from.
pub struct Reconcile<'a> {
    pub target_epoch: i32,
    pub target: &'a Assignment,
    /// The partitions the member says it owns (`None`: it did not say).
    pub owned: Option<&'a Assignment>,
    /// Whether another member (or this one, pending revocation) still owns a partition.
    pub is_owned: &'a dyn Fn(Uuid, i32) -> bool,
}

/// The member's next state. FENCED_MEMBER_EPOCH for a member in a state this version does not
/// know that still claims partitions: it must give them up and rejoin.
pub fn reconcile(member: &ConsumerMember, r: &Reconcile<'_>) -> Result<ConsumerMember, GroupError> {
    match member.state {
        MemberState::Stable if member.member_epoch == r.target_epoch => Ok(member.clone()),
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            Ok(next(member, member.member_epoch, r))
        }
        MemberState::UnrevokedPartitions => {
            if still_owns(r.owned, &member.pending_revocation) {
                Ok(member.clone())
            } else {
                // Revoked: it leaves its epoch even if the target moved on meanwhile and it
                // must give up more, so a late commit at the old epoch (for a partition it no
                // longer owns) is stale (Kafka's `memberEpoch + 1`; never past the target).
                let epoch = member.member_epoch.saturating_add(1).min(r.target_epoch);
                Ok(next(member, epoch, r))
            }
        }
        MemberState::Unknown => {
            if r.owned.is_none_or(|o| !o.is_empty()) {
                return Err(GroupError::FencedMemberEpoch);
            }
            Ok(next(member, r.target_epoch, r))
        }
    }
}

/// A member that did not report what it owns is assumed to still own all of it.
fn still_owns(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    owned.is_none_or(|o| intersects(o, revoking))
}

fn next(member: &ConsumerMember, epoch_if_revoking: i32, r: &Reconcile<'_>) -> ConsumerMember {
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut newly = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = r
        .target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let target = r.target.get(&topic).unwrap_or(&empty);
        let current = member.assigned.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = current.intersection(target).copied().collect();
        let give_up: BTreeSet<i32> = current.difference(&keep).copied().collect();
        let mut take = BTreeSet::new();
        for &p in target.difference(&keep) {
            if (r.is_owned)(topic, p) {
                unreleased = true;
            } else {
                take.insert(p);
            }
        }
        if !keep.is_empty() {
            assigned.insert(topic, keep);
        }
        if !give_up.is_empty() {
            revoking.insert(topic, give_up);
        }
        if !take.is_empty() {
            newly.insert(topic, take);
        }
    }
    let mut out = member.clone();
    if !revoking.is_empty() && still_owns(r.owned, &revoking) {
        out.state = MemberState::UnrevokedPartitions;
        out.set_epoch(epoch_if_revoking);
        out.assigned = assigned;
        out.pending_revocation = revoking;
        return out;
    }
    for (topic, parts) in newly {
        assigned.entry(topic).or_default().extend(parts);
    }
    out.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    out.set_epoch(r.target_epoch);
    out.assigned = assigned;
    out.pending_revocation = Assignment::new();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Uuid = Uuid::from_u128(1);

    fn a(parts: &[i32]) -> Assignment {
        let mut out = Assignment::new();
        if !parts.is_empty() {
            out.insert(T, parts.iter().copied().collect());
        }
        out
    }

    fn member(
        epoch: i32,
        state: MemberState,
        assigned: &[i32],
        revoking: &[i32],
    ) -> ConsumerMember {
        ConsumerMember {
            member_id: "m".into(),
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            state,
            assigned: a(assigned),
            pending_revocation: a(revoking),
            ..ConsumerMember::default()
        }
    }

    struct Case {
        why: &'static str,
        member: ConsumerMember,
        target_epoch: i32,
        target: Vec<i32>,
        owned: Option<Vec<i32>>,
        /// Partitions someone else still owns.
        taken: Vec<i32>,
        /// (epoch, state, assigned, revoking), or None for FENCED_MEMBER_EPOCH.
        expect: Option<(i32, MemberState, Vec<i32>, Vec<i32>)>,
    }

    #[test]
    fn a_member_steps_towards_its_target() {
        use MemberState::*;
        let cases = vec![
            Case {
                why: "reconciled: nothing changes",
                member: member(3, Stable, &[0, 1], &[]),
                target_epoch: 3,
                target: vec![0, 1],
                owned: Some(vec![0, 1]),
                taken: vec![],
                expect: Some((3, Stable, vec![0, 1], vec![])),
            },
            Case {
                why: "new free partitions: taken at once, epoch bumped",
                member: member(3, Stable, &[0], &[]),
                target_epoch: 4,
                target: vec![0, 1],
                owned: Some(vec![0]),
                taken: vec![],
                expect: Some((4, Stable, vec![0, 1], vec![])),
            },
            Case {
                why: "a partition to give up: stays at its epoch until it reports it gone",
                member: member(3, Stable, &[0, 1], &[]),
                target_epoch: 4,
                target: vec![0],
                owned: Some(vec![0, 1]),
                taken: vec![],
                expect: Some((3, UnrevokedPartitions, vec![0], vec![1])),
            },
            Case {
                why: "revoking, still reports it: waits",
                member: member(3, UnrevokedPartitions, &[0], &[1]),
                target_epoch: 4,
                target: vec![0],
                owned: Some(vec![0, 1]),
                taken: vec![],
                expect: Some((3, UnrevokedPartitions, vec![0], vec![1])),
            },
            Case {
                why: "revoking, did not report what it owns: assumed to still own it",
                member: member(3, UnrevokedPartitions, &[0], &[1]),
                target_epoch: 4,
                target: vec![0],
                owned: None,
                taken: vec![],
                expect: Some((3, UnrevokedPartitions, vec![0], vec![1])),
            },
            Case {
                why: "revoked: moves to the target epoch",
                member: member(3, UnrevokedPartitions, &[0], &[1]),
                target_epoch: 4,
                target: vec![0],
                owned: Some(vec![0]),
                taken: vec![],
                expect: Some((4, Stable, vec![0], vec![])),
            },
            Case {
                why: "revoked, but the target moved on and takes more: a new round, one epoch on",
                member: member(3, UnrevokedPartitions, &[0, 2], &[1]),
                target_epoch: 5,
                target: vec![0],
                owned: Some(vec![0, 2]),
                taken: vec![],
                expect: Some((4, UnrevokedPartitions, vec![0], vec![2])),
            },
            Case {
                why: "a partition another member still owns: unreleased, at the new epoch",
                member: member(3, Stable, &[0], &[]),
                target_epoch: 4,
                target: vec![0, 1, 2],
                owned: Some(vec![0]),
                taken: vec![2],
                expect: Some((4, UnreleasedPartitions, vec![0, 1], vec![])),
            },
            Case {
                why: "the owner let go: the unreleased partition is handed over",
                member: member(4, UnreleasedPartitions, &[0, 1], &[]),
                target_epoch: 4,
                target: vec![0, 1, 2],
                owned: Some(vec![0, 1]),
                taken: vec![],
                expect: Some((4, Stable, vec![0, 1, 2], vec![])),
            },
            Case {
                why: "give up and wait for another at once: revocation first",
                member: member(3, Stable, &[0, 1], &[]),
                target_epoch: 4,
                target: vec![0, 2],
                owned: Some(vec![0, 1]),
                taken: vec![2],
                expect: Some((3, UnrevokedPartitions, vec![0], vec![1])),
            },
            Case {
                why: "it already dropped what it must give up: no revocation round",
                member: member(3, Stable, &[0, 1], &[]),
                target_epoch: 4,
                target: vec![0],
                owned: Some(vec![0]),
                taken: vec![],
                expect: Some((4, Stable, vec![0], vec![])),
            },
            Case {
                why: "an unknown state with partitions claimed: fenced",
                member: member(3, Unknown, &[0], &[]),
                target_epoch: 4,
                target: vec![0],
                owned: Some(vec![0]),
                taken: vec![],
                expect: None,
            },
            Case {
                why: "an unknown state, owning nothing: reconciled from scratch",
                member: member(3, Unknown, &[0], &[]),
                target_epoch: 4,
                target: vec![0, 1],
                owned: Some(vec![]),
                taken: vec![],
                expect: Some((4, Stable, vec![0, 1], vec![])),
            },
        ];
        for c in cases {
            let target = a(&c.target);
            let owned = c.owned.as_deref().map(a);
            let taken = c.taken.clone();
            let is_owned = move |_: Uuid, p: i32| taken.contains(&p);
            let r = Reconcile {
                target_epoch: c.target_epoch,
                target: &target,
                owned: owned.as_ref(),
                is_owned: &is_owned,
            };
            let got = reconcile(&c.member, &r);
            match c.expect {
                None => assert_eq!(got, Err(GroupError::FencedMemberEpoch), "{}", c.why),
                Some((epoch, state, assigned, revoking)) => {
                    let got = got.unwrap_or_else(|e| panic!("{}: {e:?}", c.why));
                    assert_eq!(
                        (
                            got.member_epoch,
                            got.state,
                            got.assigned,
                            got.pending_revocation
                        ),
                        (epoch, state, a(&assigned), a(&revoking)),
                        "{}",
                        c.why
                    );
                    if epoch != c.member.member_epoch {
                        assert_eq!(
                            got.previous_member_epoch, c.member.member_epoch,
                            "{}",
                            c.why
                        );
                    }
                }
            }
        }
    }
}
