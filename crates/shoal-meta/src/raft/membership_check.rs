//! Who may send this node Raft RPCs, now that the voter set changes (KIP-853).
//!
//! **Why.** Raft's safety assumes every message comes from a member of *this* quorum. With a
//! static voter list the rule was simple: the sender's list must equal ours. Once voters are
//! added and removed, two members legitimately disagree for a while (one has applied the
//! change, the other not yet), so the rule becomes:
//!
//! - While neither side's membership has changed since the quorum was created (membership log
//!   index 0, which every voter writes with the same `initialize`), the voter lists must be
//!   equal, as before: nodes bootstrapped with different `controller.quorum.voters` never form
//!   a quorum together.
//! - Otherwise the sender must be a member (voter or learner) of our membership, or know a
//!   newer membership than ours: a lagging follower still hears the leader that added it, a new
//!   controller (no membership yet) hears the leader that is adding it, while a removed node,
//!   whose membership is never newer than the one that removed it, is refused; so is a stray
//!   node of another quorum, which cannot change who votes here.
//!
//! A node never sends itself an RPC. The decision is a pure function with table tests; the
//! service (`raft::grpc_service`) reads our membership from openraft's metrics.

use std::collections::BTreeSet;

use openraft::RaftMetrics;

use crate::raft::types::{NodeId, to_kafka_node_id};

/// A Raft membership as one side of an RPC knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipView {
    /// Log index of the membership; `None` on a node that has none yet (a controller waiting
    /// to be added).
    pub index: Option<u64>,
    /// Voter ids (of both halves while joint), ascending.
    pub voter_ids: Vec<i32>,
    /// Voters and learners.
    pub members: BTreeSet<i32>,
}

impl MembershipView {
    /// The effective membership in openraft's metrics (committed or not: what this node acts on).
    pub fn from_metrics(metrics: &RaftMetrics<NodeId, openraft::BasicNode>) -> Self {
        let config = &metrics.membership_config;
        let membership = config.membership();
        MembershipView {
            index: config.log_id().map(|l| l.index),
            voter_ids: membership
                .voter_ids()
                .filter_map(to_kafka_node_id)
                .collect(),
            members: membership
                .nodes()
                .filter_map(|(id, _)| to_kafka_node_id(*id))
                .collect(),
        }
    }
}

/// Why an RPC's sender was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipRefusal {
    /// Both sides still run the membership they were created with, and the lists differ.
    VoterSetMismatch,
    /// The sender is not a member here and knows no newer membership (or is this node).
    NotAMember,
}

/// Decides whether `from`, whose membership is at `their_index` (0 for releases that do not
/// say) with `their_voters`, may send this node (`node_id`, membership `ours`) a Raft RPC.
pub fn membership_refusal(
    node_id: i32,
    ours: &MembershipView,
    from: i32,
    their_index: u64,
    their_voters: &[i32],
) -> Option<MembershipRefusal> {
    if from == node_id {
        return Some(MembershipRefusal::NotAMember);
    }
    if ours.index == Some(0) && their_index == 0 && their_voters != ours.voter_ids.as_slice() {
        return Some(MembershipRefusal::VoterSetMismatch);
    }
    let knows_newer = ours.index.is_none_or(|ours| their_index > ours);
    if ours.members.contains(&from) || knows_newer {
        None
    } else {
        Some(MembershipRefusal::NotAMember)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(index: Option<u64>, voters: &[i32], learners: &[i32]) -> MembershipView {
        MembershipView {
            index,
            voter_ids: voters.to_vec(),
            members: voters.iter().chain(learners).copied().collect(),
        }
    }

    #[test]
    fn who_may_send_raft_rpcs() {
        use MembershipRefusal::*;
        let created = view(Some(0), &[1, 2, 3], &[]);
        let grown = view(Some(40), &[1, 2, 3, 7], &[]);
        let joining = view(None, &[], &[]);
        // (what, our membership, sender, its membership index, its voters, verdict)
        type Case<'a> = (
            &'a str,
            &'a MembershipView,
            i32,
            u64,
            &'a [i32],
            Option<MembershipRefusal>,
        );
        let cases: &[Case] = &[
            (
                "a voter of the same quorum",
                &created,
                2,
                0,
                &[1, 2, 3],
                None,
            ),
            (
                "another voter list at creation",
                &created,
                2,
                0,
                &[1, 2, 4],
                Some(VoterSetMismatch),
            ),
            (
                "an old release (no index) with the same list",
                &created,
                3,
                0,
                &[1, 2, 3],
                None,
            ),
            (
                "this node itself",
                &created,
                1,
                0,
                &[1, 2, 3],
                Some(NotAMember),
            ),
            (
                "a stranger with the same list",
                &created,
                9,
                0,
                &[1, 2, 3],
                Some(NotAMember),
            ),
            (
                "the leader after adding 7, to a lagging voter",
                &created,
                2,
                40,
                &[1, 2, 3, 7],
                None,
            ),
            (
                "the new voter 7 campaigning, to a lagging voter",
                &created,
                7,
                40,
                &[1, 2, 3, 7],
                None,
            ),
            (
                "a lagging voter, to one that applied the change",
                &grown,
                3,
                0,
                &[1, 2, 3],
                None,
            ),
            (
                "the new voter, once a member",
                &grown,
                7,
                40,
                &[1, 2, 3, 7],
                None,
            ),
            (
                "a node removed before, with an older membership",
                &view(Some(60), &[1, 2, 7], &[]),
                3,
                40,
                &[1, 2, 3, 7],
                Some(NotAMember),
            ),
            (
                "a node removed, with the membership that removed it",
                &view(Some(60), &[1, 2, 7], &[]),
                3,
                60,
                &[1, 2, 7],
                Some(NotAMember),
            ),
            (
                "a learner being caught up",
                &view(Some(40), &[1, 2, 3], &[7]),
                7,
                40,
                &[1, 2, 3],
                None,
            ),
            (
                "the leader, to a controller waiting to be added",
                &joining,
                2,
                40,
                &[1, 2, 3],
                None,
            ),
            (
                "an old-release leader, to a controller waiting to be added",
                &joining,
                2,
                0,
                &[1, 2, 3],
                None,
            ),
        ];
        for (what, ours, from, their_index, their_voters, expected) in cases {
            assert_eq!(
                membership_refusal(1, ours, *from, *their_index, their_voters),
                *expected,
                "{what}"
            );
        }
        // A joining node is node 7 itself: the leader's RPCs reach it.
        assert_eq!(membership_refusal(7, &joining, 1, 40, &[1, 2, 3]), None);
    }
}
