//! Deciding a change of the controller voter set (KIP-853's AddRaftVoter / RemoveRaftVoter):
//! whether it may start, and what it is, as a pure function of the quorum as the leader sees it.
//!
//! **Why a separate decision.** Changing who votes is the one metadata operation that can lose
//! committed records if done wrong: two changes at once can produce two disjoint majorities, a
//! voter promoted before it caught up counts towards majorities it cannot serve, and removing
//! the last voter leaves no quorum. Kafka answers each case with its own error; so does Shoal,
//! before anything is proposed. The leader then carries out the plan with openraft (a learner
//! first, promoted once caught up; removal by `change_membership`, joint consensus inside).
//!
//! The order of the checks is Kafka's (`AddVoterHandler`, `RemoveVoterHandler`): the feature
//! level, then a change in progress, then whether the voter exists, then what is specific to
//! the change. So a refusal names the first reason an operator must act on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, RaftError};
use uuid::Uuid;

use crate::controller::Controller;
use crate::error::ControllerError;
use crate::features::DYNAMIC_QUORUM_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::meta_properties::format_directory_id;
use crate::raft::membership_check::MembershipView;
use crate::raft::types::{NodeId, to_kafka_node_id, to_raft_node_id};
use crate::records::MetadataRecord;

/// The quorum as the leader sees it when a change is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumView {
    /// Voters of the committed membership (of both halves while joint).
    pub voters: BTreeSet<i32>,
    /// Members that replicate but do not vote (a new controller catching up).
    pub learners: BTreeSet<i32>,
    /// Controller address (host:port) of every member.
    pub addresses: BTreeMap<i32, String>,
    /// A membership change is not committed yet, or the committed membership is joint.
    pub change_pending: bool,
    /// The leader's own id (the node deciding).
    pub leader: i32,
    /// Whether every voter runs a version that follows membership changes (the feature gate).
    pub changes_supported: bool,
    /// Each voter's recorded metadata directory (`VoterDirectory` records).
    pub recorded_directories: BTreeMap<i32, Uuid>,
}

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterChange {
    /// A controller to add: its id, controller address and the directory id it reports.
    Add {
        id: i32,
        address: String,
        directory_id: Uuid,
    },
    /// A voter to remove; with its directory id, the voter must have that one (Kafka's voter
    /// key), so a stale command cannot remove a replacement.
    Remove { id: i32, directory_id: Option<Uuid> },
}

/// What the leader then does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoterPlan {
    /// Add `id` as a learner (or go on with the learner an earlier attempt left), wait until it
    /// has caught up, record its directory, then make it a voter.
    Add {
        id: i32,
        address: String,
        directory_id: Uuid,
        already_learner: bool,
    },
    /// Remove `id`; the voters left. The leader steps down once the change commits if it
    /// removed itself.
    Remove {
        id: i32,
        remaining: BTreeSet<i32>,
        leader_steps_down: bool,
    },
    /// `id` is a learner an AddVoter left behind (the node never caught up): it stops being
    /// replicated to. The voters stay as they are.
    RemoveLearner { id: i32 },
}

/// Why a change may not start; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoterChangeError {
    #[error(
        "the controller quorum cannot change its voters until every controller runs a version \
         that follows membership changes (raise metadata.version)"
    )]
    UnsupportedVersion,
    #[error("another change of the voter set is in progress; retry once it has committed")]
    InProgress,
    #[error("node {0} is already a voter")]
    DuplicateVoter(i32),
    #[error("node {0} is not a voter")]
    VoterNotFound(i32),
    #[error("node {0} is the last voter; removing it would leave no quorum")]
    LastVoter(i32),
    #[error(
        "node {id} is a voter with directory {recorded}, not {given}: it was replaced since \
         (describe the quorum again)"
    )]
    DirectoryMismatch {
        id: i32,
        recorded: Uuid,
        given: Uuid,
    },
    #[error("{0}")]
    InvalidRequest(String),
}

impl VoterChangeError {
    /// The Kafka error code AddRaftVoter / RemoveRaftVoter answer with.
    pub fn kafka_code(&self) -> i16 {
        match self {
            VoterChangeError::UnsupportedVersion => 35, // UNSUPPORTED_VERSION
            VoterChangeError::InProgress => 7,          // REQUEST_TIMED_OUT, as Kafka
            VoterChangeError::DuplicateVoter(_) => 126, // DUPLICATE_VOTER
            VoterChangeError::VoterNotFound(_)
            | VoterChangeError::LastVoter(_)
            | VoterChangeError::DirectoryMismatch { .. } => 127, // VOTER_NOT_FOUND
            VoterChangeError::InvalidRequest(_) => 42,  // INVALID_REQUEST
        }
    }
}

/// Decides `change` against `view` (see the module docs).
pub fn plan_voter_change(
    view: &QuorumView,
    change: &VoterChange,
) -> Result<VoterPlan, VoterChangeError> {
    if !view.changes_supported {
        return Err(VoterChangeError::UnsupportedVersion);
    }
    if view.change_pending {
        return Err(VoterChangeError::InProgress);
    }
    match change {
        VoterChange::Add {
            id,
            address,
            directory_id,
        } => {
            if view.voters.contains(id) {
                return Err(VoterChangeError::DuplicateVoter(*id));
            }
            if *id < 0 {
                return Err(VoterChangeError::InvalidRequest(format!(
                    "node id {id} is negative"
                )));
            }
            if directory_id.is_nil() {
                return Err(VoterChangeError::InvalidRequest(format!(
                    "node {id} reported no metadata directory id"
                )));
            }
            check_address(address)?;
            if let Some((other, _)) = view
                .addresses
                .iter()
                .find(|(other, a)| *other != id && a.as_str() == address)
            {
                return Err(VoterChangeError::InvalidRequest(format!(
                    "{address} is already the address of node {other}; two members at one \
                     address could elect two leaders"
                )));
            }
            Ok(VoterPlan::Add {
                id: *id,
                address: address.clone(),
                directory_id: *directory_id,
                already_learner: view.learners.contains(id),
            })
        }
        VoterChange::Remove { id, directory_id } => {
            if !view.voters.contains(id) {
                if view.learners.contains(id) {
                    return Ok(VoterPlan::RemoveLearner { id: *id });
                }
                return Err(VoterChangeError::VoterNotFound(*id));
            }
            if let (Some(given), Some(recorded)) = (directory_id, view.recorded_directories.get(id))
                && given != recorded
            {
                return Err(VoterChangeError::DirectoryMismatch {
                    id: *id,
                    recorded: *recorded,
                    given: *given,
                });
            }
            let remaining: BTreeSet<i32> =
                view.voters.iter().copied().filter(|v| v != id).collect();
            if remaining.is_empty() {
                return Err(VoterChangeError::LastVoter(*id));
            }
            Ok(VoterPlan::Remove {
                id: *id,
                remaining,
                leader_steps_down: *id == view.leader,
            })
        }
    }
}

/// `host:port` with a non-empty host and a port in 1..=65535.
fn check_address(address: &str) -> Result<(), VoterChangeError> {
    let bad = || {
        VoterChangeError::InvalidRequest(format!("controller address {address:?} is not host:port"))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(())
}

/// A voter change carried out: the voters after it, and the log index that made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterChangeOutcome {
    pub voters: Vec<i32>,
    /// The directory of the voter added, or of the voter removed (when recorded).
    pub directory_id: Option<Uuid>,
    pub log_index: u64,
}

/// Why a voter change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoterChangeFailure {
    /// Refused before anything changed.
    #[error(transparent)]
    Refused(#[from] VoterChangeError),
    /// Not the leader, a timeout, a stopped quorum. A timeout after the change started leaves
    /// it to finish (or a new controller node left as a learner; add it again).
    #[error(transparent)]
    Controller(#[from] ControllerError),
}

/// How often the wait for a new controller to catch up looks at the replication progress.
const CATCH_UP_POLL_MS: u64 = 50;

impl Controller {
    /// The quorum as this leader sees it, for [`plan_voter_change`].
    async fn quorum_view(&self, image: &MetadataImage) -> Result<QuorumView, ControllerError> {
        let (voters, learners, addresses, change_pending) = self
            .raft
            .with_raft_state(|st| {
                let committed = st.membership_state.committed();
                let effective = st.membership_state.effective();
                let membership = effective.membership();
                (
                    membership
                        .voter_ids()
                        .filter_map(to_kafka_node_id)
                        .collect(),
                    membership
                        .learner_ids()
                        .filter_map(to_kafka_node_id)
                        .collect(),
                    membership
                        .nodes()
                        .filter_map(|(id, node)| Some((to_kafka_node_id(*id)?, node.addr.clone())))
                        .collect(),
                    committed.log_id() != effective.log_id()
                        || membership.get_joint_config().len() > 1,
                )
            })
            .await
            .map_err(|e| ControllerError::Internal(format!("metadata quorum: {e}")))?;
        let view = QuorumView {
            voters,
            learners,
            addresses,
            change_pending,
            leader: self.node_id,
            changes_supported: image.metadata_version() >= DYNAMIC_QUORUM_METADATA_VERSION,
            recorded_directories: image.voter_directories.clone(),
        };
        let leader = self.raft.metrics().borrow().current_leader;
        if self.leading_term().is_none() {
            return Err(ControllerError::NotController {
                leader_hint: leader.and_then(to_kafka_node_id),
            });
        }
        Ok(view)
    }

    /// AddRaftVoter for a node id that is not a voter, or RemoveRaftVoter (KIP-853), one at a
    /// time; the leader only. An added controller becomes a learner, must catch up within
    /// `timeout`, gets its directory recorded, then becomes a voter (joint consensus inside
    /// openraft). A removed voter leaves the membership; a removed leader steps down once the
    /// change commits.
    pub(crate) async fn change_voters(
        &self,
        change: VoterChange,
        timeout: Duration,
    ) -> Result<VoterChangeOutcome, VoterChangeFailure> {
        if let Some(e) = self.not_running() {
            return Err(e.into());
        }
        let deadline = Instant::now() + timeout;
        // One change at a time (Kafka answers a second with REQUEST_TIMED_OUT).
        let Ok(_changing) = self.voter_change_lock.try_lock() else {
            return Err(VoterChangeError::InProgress.into());
        };
        let image = self.caught_up_image(deadline).await?;
        let view = self.quorum_view(&image).await?;
        let reported = match &change {
            VoterChange::Add { id, .. } => self.observed_directories.get(*id),
            VoterChange::Remove { .. } => None,
        };
        match plan_voter_change(&view, &change)? {
            VoterPlan::Add {
                id,
                address,
                directory_id,
                already_learner,
            } => {
                let learnt_address = view.addresses.get(&id).cloned();
                self.add_controller(
                    id,
                    address,
                    directory_id,
                    already_learner.then_some(learnt_address).flatten(),
                    reported,
                    deadline,
                )
                .await
            }
            VoterPlan::RemoveLearner { id } => {
                let raft_id = raft_id_of(id)?;
                let log_index = self
                    .change_membership(ChangeMembers::RemoveNodes([raft_id].into()), deadline)
                    .await?;
                tracing::info!(node_id = id, log_index, "removed a controller learner");
                Ok(VoterChangeOutcome {
                    voters: view.voters.into_iter().collect(),
                    directory_id: None,
                    log_index,
                })
            }
            VoterPlan::Remove {
                id,
                remaining,
                leader_steps_down,
            } => {
                let raft_id = raft_id_of(id)?;
                let log_index = self
                    .change_membership(ChangeMembers::RemoveVoters([raft_id].into()), deadline)
                    .await?;
                tracing::info!(
                    voter_id = id,
                    remaining = ?remaining,
                    log_index,
                    leader_steps_down,
                    "removed a controller voter"
                );
                Ok(VoterChangeOutcome {
                    voters: remaining.into_iter().collect(),
                    directory_id: view.recorded_directories.get(&id).copied(),
                    log_index,
                })
            }
        }
    }

    async fn add_controller(
        &self,
        id: i32,
        address: String,
        directory_id: Uuid,
        learner_at: Option<String>,
        reported: Option<Uuid>,
        deadline: Instant,
    ) -> Result<VoterChangeOutcome, VoterChangeFailure> {
        let raft_id = raft_id_of(id)?;
        if let Some(learnt) = learner_at.as_deref()
            && learnt != address
        {
            // A learner an earlier attempt left at another address: reach it where it is now.
            self.change_membership(
                ChangeMembers::SetNodes([(raft_id, openraft::BasicNode::new(&address))].into()),
                deadline,
            )
            .await?;
            tracing::info!(voter_id = id, from = %learnt, to = %address, "controller learner's address changed");
        }
        if learner_at.is_none() {
            let added = tokio::time::timeout_at(
                deadline.into(),
                self.raft
                    .add_learner(raft_id, openraft::BasicNode::new(&address), false),
            )
            .await
            .map_err(|_| ControllerError::RequestTimedOut)?;
            added.map_err(write_error)?;
            tracing::info!(voter_id = id, %address, "new controller added as a learner; catching up");
        }
        self.wait_for_catch_up(raft_id, deadline).await?;
        // The node answers the leader's AppendEntries with its directory id: it must be the one
        // the operator named, or a replacement raced the command.
        let reported = reported.or_else(|| self.observed_directories.get(id));
        if let Some(reported) = reported
            && reported != directory_id
        {
            return Err(VoterChangeError::InvalidRequest(format!(
                "node {id} runs with metadata directory {}, not {}",
                format_directory_id(reported),
                format_directory_id(directory_id)
            ))
            .into());
        }
        {
            let _writer = self.write_lock.lock().await;
            self.propose(
                vec![MetadataRecord::VoterDirectory {
                    voter_id: id,
                    directory_id,
                }],
                deadline,
            )
            .await?;
        }
        let log_index = self
            .change_membership(ChangeMembers::AddVoterIds([raft_id].into()), deadline)
            .await?;
        let voters = MembershipView::from_metrics(&self.raft.metrics().borrow()).voter_ids;
        tracing::info!(
            voter_id = id,
            directory_id = %format_directory_id(directory_id),
            voters = ?voters,
            log_index,
            "added a controller voter"
        );
        Ok(VoterChangeOutcome {
            voters,
            directory_id: Some(directory_id),
            log_index,
        })
    }

    /// Waits until the learner `raft_id` has every entry this leader had when the wait began.
    async fn wait_for_catch_up(
        &self,
        raft_id: NodeId,
        deadline: Instant,
    ) -> Result<(), ControllerError> {
        let target = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        loop {
            let matched = {
                let metrics = self.raft.metrics();
                let m = metrics.borrow();
                if self.leading_term().is_none() {
                    return Err(not_controller(m.current_leader));
                }
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&raft_id).copied().flatten())
                    .map(|log_id| log_id.index)
            };
            if matched.is_some_and(|m| m >= target) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ControllerError::InvalidRequest(format!(
                    "node {} has not caught up with the metadata log (at {} of {target}) in \
                     time; it stays a learner: check that it runs and that this leader reaches \
                     it, then add it again",
                    to_kafka_node_id(raft_id).unwrap_or(-1),
                    matched.map_or_else(|| "nothing".to_string(), |m| m.to_string())
                )));
            }
            tokio::time::sleep(Duration::from_millis(CATCH_UP_POLL_MS)).await;
        }
    }

    /// Runs one openraft membership change (joint, then uniform) to its end, or until
    /// `deadline`; returns the log index of the final membership.
    async fn change_membership(
        &self,
        change: ChangeMembers<NodeId, openraft::BasicNode>,
        deadline: Instant,
    ) -> Result<u64, ControllerError> {
        let changed =
            tokio::time::timeout_at(deadline.into(), self.raft.change_membership(change, false))
                .await
                .map_err(|_| ControllerError::RequestTimedOut)?;
        changed.map(|r| r.log_id.index).map_err(write_error)
    }

    /// Finishes a membership change a previous leader left joint (it died between the two
    /// steps): the second half of the joint config becomes the membership. Run by the session
    /// check on the leader; cheap when nothing is joint.
    pub(crate) async fn finish_joint_membership(&self) {
        let last = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let joint = m.membership_config.membership().get_joint_config();
            if joint.len() < 2 {
                return;
            }
            joint.last().cloned()
        };
        let Some(last) = last else { return };
        let Ok(_changing) = self.voter_change_lock.try_lock() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_millis(self.request_timeout_ms);
        match self
            .change_membership(ChangeMembers::ReplaceAllVoters(last.clone()), deadline)
            .await
        {
            Ok(log_index) => tracing::info!(
                voters = ?last,
                log_index,
                "finished the controller voter change a previous leader left joint"
            ),
            Err(e) => tracing::debug!(error = %e, "could not finish a joint membership yet"),
        }
    }
}

/// An openraft write error as the controller reports it.
fn write_error(
    e: RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>,
) -> ControllerError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_controller(f.leader_id),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ControllerError::InvalidRequest(format!("the voter change was refused: {e}"))
        }
        RaftError::Fatal(e) => {
            ControllerError::Internal(format!("metadata quorum is not running: {e}"))
        }
    }
}

/// The Raft node id of Kafka node `id` (the planner already refused negative ids).
fn raft_id_of(id: i32) -> Result<NodeId, VoterChangeError> {
    to_raft_node_id(id)
        .ok_or_else(|| VoterChangeError::InvalidRequest(format!("node id {id} is negative")))
}

fn not_controller(leader: Option<NodeId>) -> ControllerError {
    ControllerError::NotController {
        leader_hint: leader.and_then(to_kafka_node_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR_3: Uuid = Uuid::from_u128(3);
    const DIR_4: Uuid = Uuid::from_u128(4);

    /// Voters 1-3 (1 leads) at 127.0.0.1:900N, directories recorded, nothing pending.
    fn three() -> QuorumView {
        QuorumView {
            voters: BTreeSet::from([1, 2, 3]),
            learners: BTreeSet::new(),
            addresses: (1..=3).map(|i| (i, format!("127.0.0.1:900{i}"))).collect(),
            change_pending: false,
            leader: 1,
            changes_supported: true,
            recorded_directories: (1..=3).map(|i| (i, Uuid::from_u128(i as u128))).collect(),
        }
    }

    fn add(id: i32, address: &str, directory_id: Uuid) -> VoterChange {
        VoterChange::Add {
            id,
            address: address.into(),
            directory_id,
        }
    }

    fn remove(id: i32, directory_id: Option<Uuid>) -> VoterChange {
        VoterChange::Remove { id, directory_id }
    }

    #[test]
    fn adding_a_controller() {
        let added = |already_learner| VoterPlan::Add {
            id: 4,
            address: "127.0.0.1:9004".into(),
            directory_id: DIR_4,
            already_learner,
        };
        let mut learning = three();
        learning.learners.insert(4);
        learning.addresses.insert(4, "127.0.0.1:9004".into());
        let cases: Vec<(&str, QuorumView, VoterChange, Result<VoterPlan, VoterChangeError>)> = vec![
            ("a new id", three(), add(4, "127.0.0.1:9004", DIR_4), Ok(added(false))),
            ("a learner an earlier attempt left", learning, add(4, "127.0.0.1:9004", DIR_4), Ok(added(true))),
            ("already a voter", three(), add(2, "127.0.0.1:9002", DIR_4), Err(VoterChangeError::DuplicateVoter(2))),
            ("a negative id", three(), add(-1, "127.0.0.1:9004", DIR_4),
                Err(VoterChangeError::InvalidRequest("node id -1 is negative".into()))),
            ("no directory id", three(), add(4, "127.0.0.1:9004", Uuid::nil()),
                Err(VoterChangeError::InvalidRequest("node 4 reported no metadata directory id".into()))),
            ("another member's address", three(), add(4, "127.0.0.1:9002", DIR_4),
                Err(VoterChangeError::InvalidRequest("127.0.0.1:9002 is already the address of node 2; two members at one address could elect two leaders".into()))),
        ];
        for (what, view, change, expected) in cases {
            assert_eq!(plan_voter_change(&view, &change), expected, "{what}");
        }
        for address in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            ":9004",
            "a b:1",
        ] {
            assert!(
                matches!(
                    plan_voter_change(&three(), &add(4, address, DIR_4)),
                    Err(VoterChangeError::InvalidRequest(_))
                ),
                "{address}"
            );
        }
    }

    #[test]
    fn removing_a_voter() {
        let cases: Vec<(
            &str,
            QuorumView,
            VoterChange,
            Result<VoterPlan, VoterChangeError>,
        )> = vec![
            (
                "a follower",
                three(),
                remove(3, None),
                Ok(VoterPlan::Remove {
                    id: 3,
                    remaining: BTreeSet::from([1, 2]),
                    leader_steps_down: false,
                }),
            ),
            (
                "with its directory",
                three(),
                remove(3, Some(DIR_3)),
                Ok(VoterPlan::Remove {
                    id: 3,
                    remaining: BTreeSet::from([1, 2]),
                    leader_steps_down: false,
                }),
            ),
            (
                "the leader itself",
                three(),
                remove(1, None),
                Ok(VoterPlan::Remove {
                    id: 1,
                    remaining: BTreeSet::from([2, 3]),
                    leader_steps_down: true,
                }),
            ),
            (
                "a learner an add left behind",
                {
                    let mut view = three();
                    view.learners.insert(4);
                    view
                },
                remove(4, None),
                Ok(VoterPlan::RemoveLearner { id: 4 }),
            ),
            (
                "not a voter",
                three(),
                remove(9, None),
                Err(VoterChangeError::VoterNotFound(9)),
            ),
            (
                "a replaced voter (its directory changed)",
                three(),
                remove(3, Some(DIR_4)),
                Err(VoterChangeError::DirectoryMismatch {
                    id: 3,
                    recorded: DIR_3,
                    given: DIR_4,
                }),
            ),
        ];
        for (what, view, change, expected) in cases {
            assert_eq!(plan_voter_change(&view, &change), expected, "{what}");
        }
        // Down to one voter is allowed; from one to none is not.
        let mut two = three();
        two.voters.remove(&3);
        assert!(matches!(
            plan_voter_change(&two, &remove(2, None)),
            Ok(VoterPlan::Remove { .. })
        ));
        let mut one = three();
        one.voters = BTreeSet::from([1]);
        assert_eq!(
            plan_voter_change(&one, &remove(1, None)),
            Err(VoterChangeError::LastVoter(1))
        );
    }

    #[test]
    fn the_gate_and_a_pending_change_come_first() {
        let mut pending = three();
        pending.change_pending = true;
        let mut old = three();
        old.changes_supported = false;
        for change in [
            add(4, "127.0.0.1:9004", DIR_4),
            add(2, "127.0.0.1:9002", DIR_4),
            remove(3, None),
            remove(9, None),
        ] {
            assert_eq!(
                plan_voter_change(&pending, &change),
                Err(VoterChangeError::InProgress),
                "{change:?}"
            );
            assert_eq!(
                plan_voter_change(&old, &change),
                Err(VoterChangeError::UnsupportedVersion),
                "{change:?}"
            );
        }
        // Pending is checked before the last-voter rule, as in Kafka.
        let mut one = three();
        one.voters = BTreeSet::from([1]);
        one.change_pending = true;
        assert_eq!(
            plan_voter_change(&one, &remove(1, None)),
            Err(VoterChangeError::InProgress)
        );
    }

    #[test]
    fn errors_map_to_kafkas_codes() {
        assert_eq!(VoterChangeError::UnsupportedVersion.kafka_code(), 35);
        assert_eq!(VoterChangeError::InProgress.kafka_code(), 7);
        assert_eq!(VoterChangeError::DuplicateVoter(1).kafka_code(), 126);
        assert_eq!(VoterChangeError::VoterNotFound(1).kafka_code(), 127);
        assert_eq!(VoterChangeError::LastVoter(1).kafka_code(), 127);
        assert_eq!(
            VoterChangeError::InvalidRequest(String::new()).kafka_code(),
            42
        );
    }
}
