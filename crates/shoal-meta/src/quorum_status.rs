//! Quorum status: who leads, at which term, and how far behind each voter is.
//!
//! This is what `kafka-metadata-quorum.sh describe --status --replication` shows, computed
//! from openraft's metrics. Match indexes are only known on the leader (it tracks every
//! voter's progress); a follower reports the leader id and its own indexes, so a tool asks the
//! node named in `leader_id` for the replication table, as Kafka's DescribeQuorum does.

use std::collections::BTreeMap;
use std::time::Instant;

use uuid::Uuid;

use crate::meta_properties::format_directory_id;
use crate::metadata_log::Observers;
use crate::proto;
use crate::raft::types::{MetaRaft, to_kafka_node_id, to_raft_node_id};

/// One voter's replication progress, as seen by the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    pub node_id: i32,
    /// `host:port` from the voter list (or the stored membership).
    pub address: String,
    /// Highest log index known to be on this voter; `None` if unknown.
    pub match_index: Option<u64>,
    /// Leader's last log index minus `match_index`; `None` if unknown.
    pub lag: Option<u64>,
    /// The metadata directory committed for this voter (`crate::voter_directory`).
    pub directory_id: Option<Uuid>,
    /// The directory this voter last reported to the answering node (the leader hears from
    /// every voter). Differs from `directory_id` when the voter's disk was wiped.
    pub reported_directory_id: Option<Uuid>,
}

/// The quorum as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub cluster_id: String,
    /// The node that computed this status.
    pub node_id: i32,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    pub leader_id: Option<i32>,
    pub current_term: u64,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// True if this node is the leader, so match indexes and lags are filled in.
    pub replication_known: bool,
    pub voters: Vec<VoterStatus>,
    /// Nodes following the metadata log from this node without voting (brokers).
    pub observers: Vec<ObserverStatus>,
    /// Controllers in the membership that do not vote yet (being added).
    pub learners: Vec<i32>,
    /// The answering node's own metadata directory id.
    pub directory_id: Option<Uuid>,
}

/// A node that fetches the metadata log from the answering node without voting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserverStatus {
    pub node_id: i32,
    /// The metadata offset it reported in its last fetch.
    pub applied_offset: u64,
    /// The answering node's applied offset minus `applied_offset`.
    pub lag: u64,
    pub last_fetch_ms_ago: u64,
}

/// Voter directory ids: committed (the image) and reported (Raft replies, this node's own).
pub(crate) struct Directories<'a> {
    pub recorded: &'a BTreeMap<i32, Uuid>,
    pub reported: BTreeMap<i32, Uuid>,
}

/// Computes the status from `raft`; `voters` supplies addresses (node id → host:port).
pub(crate) async fn quorum_status(
    raft: &MetaRaft,
    cluster_id: &str,
    node_id: i32,
    voters: &BTreeMap<i32, String>,
    observers: &Observers,
    directories: Directories<'_>,
) -> QuorumStatus {
    let commit_index = raft
        .with_raft_state(|st| st.committed.map(|c| c.index))
        .await
        .ok()
        .flatten();
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    let replication = m.replication.as_ref();
    let voter_statuses = membership
        .voter_ids()
        .filter_map(|raft_id| {
            let id = to_kafka_node_id(raft_id)?;
            let address = voters
                .get(&id)
                .cloned()
                .or_else(|| membership.get_node(&raft_id).map(|n| n.addr.clone()))
                .unwrap_or_default();
            let match_index = replication.and_then(|r| {
                r.get(&raft_id)
                    .map(|matched| matched.map_or(0, |log_id| log_id.index))
            });
            let lag = match (match_index, m.last_log_index) {
                (Some(matched), Some(last)) => Some(last.saturating_sub(matched)),
                (Some(_), None) => Some(0),
                _ => None,
            };
            Some(VoterStatus {
                node_id: id,
                address,
                match_index,
                lag,
                directory_id: directories.recorded.get(&id).copied(),
                reported_directory_id: directories.reported.get(&id).copied(),
            })
        })
        .collect();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let observer_statuses = observers
        .list(Instant::now())
        .into_iter()
        .map(|o| ObserverStatus {
            node_id: o.node_id,
            applied_offset: o.applied_offset,
            lag: applied.saturating_sub(o.applied_offset),
            last_fetch_ms_ago: u64::try_from(o.since_last_fetch.as_millis()).unwrap_or(u64::MAX),
        })
        .collect();
    QuorumStatus {
        cluster_id: cluster_id.to_string(),
        node_id,
        state: format!("{:?}", m.state),
        leader_id: m.current_leader.and_then(to_kafka_node_id),
        current_term: m.current_term,
        last_log_index: m.last_log_index,
        commit_index,
        applied_index: m.last_applied.map(|l| l.index),
        replication_known: replication.is_some() && m.current_leader == to_raft_node_id(node_id),
        voters: voter_statuses,
        observers: observer_statuses,
        learners: membership
            .learner_ids()
            .filter_map(to_kafka_node_id)
            .collect(),
        directory_id: directories.reported.get(&node_id).copied(),
    }
}

fn index_or_minus_one(index: Option<u64>) -> i64 {
    index.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1)
}

impl From<QuorumStatus> for proto::DescribeQuorumResponse {
    fn from(status: QuorumStatus) -> Self {
        proto::DescribeQuorumResponse {
            cluster_id: status.cluster_id,
            node_id: status.node_id,
            state: status.state,
            leader_id: status.leader_id.unwrap_or(-1),
            current_term: status.current_term,
            last_log_index: index_or_minus_one(status.last_log_index),
            commit_index: index_or_minus_one(status.commit_index),
            applied_index: index_or_minus_one(status.applied_index),
            replication_known: status.replication_known,
            directory_id: status
                .directory_id
                .map(format_directory_id)
                .unwrap_or_default(),
            learners: status.learners,
            voters: status
                .voters
                .into_iter()
                .map(|v| proto::VoterStatus {
                    node_id: v.node_id,
                    address: v.address,
                    match_index: index_or_minus_one(v.match_index),
                    lag: index_or_minus_one(v.lag),
                    directory_id: v.directory_id.map(format_directory_id).unwrap_or_default(),
                    reported_directory_id: v
                        .reported_directory_id
                        .map(format_directory_id)
                        .unwrap_or_default(),
                })
                .collect(),
            observers: status
                .observers
                .into_iter()
                .map(|o| proto::ObserverStatus {
                    node_id: o.node_id,
                    applied_offset: i64::try_from(o.applied_offset).unwrap_or(i64::MAX),
                    lag: i64::try_from(o.lag).unwrap_or(i64::MAX),
                    last_fetch_ms_ago: o.last_fetch_ms_ago,
                })
                .collect(),
        }
    }
}
