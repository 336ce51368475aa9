//! Three-voter metadata quorum over gRPC, in one process on 127.0.0.1 ephemeral ports.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_meta::meta_properties::format_directory_id;
use shoal_meta::proto::quorum_admin_client::QuorumAdminClient;
use shoal_meta::proto::raft_service_client::RaftServiceClient;
use shoal_meta::proto::{
    AddVoterRequest, DescribeQuorumRequest, RaftRequest, RemoveVoterRequest, raft_reply,
};
use shoal_meta::{BrokerLifecycle, ControllerError, MetaConfig, MetaError, MetaNode};
use tokio::net::TcpListener;

const CLUSTER_ID: &str = "quorumTestCluster";
const REQUEST_TIMEOUT_MS: u64 = 3_000;

struct Cluster {
    voters: BTreeMap<i32, String>,
    dirs: BTreeMap<i32, tempfile::TempDir>,
    nodes: BTreeMap<i32, Arc<MetaNode>>,
}

fn node_config(id: i32, dir: PathBuf, voters: &BTreeMap<i32, String>) -> MetaConfig {
    MetaConfig {
        cluster_id: Some(CLUSTER_ID.to_string()),
        voters: voters.clone(),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        ..MetaConfig::new(id, dir)
    }
}

impl Cluster {
    /// Binds three listeners first, then starts the three nodes concurrently.
    async fn start() -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=3 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let voters: BTreeMap<i32, String> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let dirs: BTreeMap<i32, tempfile::TempDir> = (1..=3)
            .map(|id| (id, tempfile::tempdir().unwrap()))
            .collect();
        let starts = listeners.into_iter().map(|(id, listener)| {
            let config = node_config(id, dirs[&id].path().join("meta"), &voters);
            tokio::spawn(async move { (id, MetaNode::start_with_listener(config, listener).await) })
        });
        let mut nodes = BTreeMap::new();
        for start in starts {
            let (id, node) = start.await.unwrap();
            nodes.insert(id, node.expect("node starts"));
        }
        Cluster {
            voters,
            dirs,
            nodes,
        }
    }

    fn config(&self, id: i32) -> MetaConfig {
        MetaConfig {
            listen_address: Some(self.voters[&id].clone()),
            ..node_config(id, self.dirs[&id].path().join("meta"), &self.voters)
        }
    }

    /// Restarts a stopped node from its data dir on its old port.
    async fn restart(&mut self, id: i32) {
        let node = MetaNode::start(self.config(id))
            .await
            .expect("node restarts");
        self.nodes.insert(id, node);
    }

    async fn stop(&mut self, id: i32) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await.unwrap();
    }

    /// Waits until every running node names the same leader (a running one) at the same term,
    /// and exactly one of them is in state Leader. Returns the leader id.
    async fn agreed_leader(&self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            let mut statuses = Vec::new();
            for node in self.nodes.values() {
                statuses.push(node.raft_metrics().await);
            }
            let leader = statuses[0].leader_id;
            let term = statuses[0].current_term;
            let leaders = statuses.iter().filter(|s| s.state == "Leader").count();
            if let Some(leader) = leader
                && self.nodes.contains_key(&leader)
                && leaders == 1
                && statuses
                    .iter()
                    .all(|s| s.leader_id == Some(leader) && s.current_term == term)
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {within:?}: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates a topic through the leader (following NotController hints) and returns the log
    /// index it committed at.
    async fn create_topic(&self, name: &str) -> u64 {
        let mut leader = self.agreed_leader(Duration::from_secs(5)).await;
        for _ in 0..5 {
            let outcome = self.nodes[&leader]
                .client()
                .create_topics(vec![common::topic(name, 2, 3)], false)
                .await;
            match &outcome.results[0] {
                Ok(_) => return outcome.log_index.unwrap(),
                Err(ControllerError::NotController {
                    leader_hint: Some(hint),
                }) => leader = *hint,
                // A timeout is an unknown outcome (a leader change under load): retry, and a
                // retry that finds the topic means the first attempt committed.
                Err(ControllerError::RequestTimedOut) => {
                    leader = self.agreed_leader(Duration::from_secs(5)).await;
                }
                Err(ControllerError::TopicAlreadyExists(_)) => {
                    return self.nodes[&leader].image().last_applied_index;
                }
                Err(e) => panic!("create {name} failed: {e:?}"),
            }
        }
        panic!("create {name}: leader kept moving");
    }

    /// Every running node has applied `log_index` and, at the same applied index, holds the same
    /// image. Nodes may be past `log_index` by different amounts (a leader appends records of its
    /// own, such as the `metadata.version` finalization, at any time), so images are compared
    /// once all have applied the newest index any of them reached.
    async fn assert_same_images(&self, log_index: u64) {
        let mut target = log_index;
        for _ in 0..10 {
            let mut images = Vec::new();
            for node in self.nodes.values() {
                images.push(node.wait_for_applied(target, 5_000).await.unwrap());
            }
            let newest = images
                .iter()
                .map(|i| i.last_applied_index)
                .max()
                .unwrap_or(target);
            if images.iter().any(|i| i.last_applied_index != newest) {
                target = newest;
                continue;
            }
            let first = common::content(&images[0]);
            for image in &images[1..] {
                assert_eq!(common::content(image), first);
            }
            return;
        }
        panic!("the nodes never stood at one applied index (they kept appending)");
    }

    async fn shutdown(self) {
        for node in self.nodes.values() {
            node.shutdown().await.unwrap();
        }
    }
}

async fn register_brokers_via_leader(cluster: &Cluster) -> Vec<Arc<BrokerLifecycle>> {
    let leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    common::register_brokers(&cluster.nodes[&leader], 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_form_one_quorum_and_replicate() {
    let _serial = common::SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let _brokers = register_brokers_via_leader(&cluster).await;
    // The first leader finalized the bootstrap levels before deciding anything: even these
    // registrations, sent the moment the quorum formed, were decided at the newest
    // metadata.version (below 2 they would record no features).
    let leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let image = cluster.nodes[&leader].image();
    assert_eq!(
        image.metadata_version(),
        shoal_meta::features::MAX_METADATA_VERSION
    );
    assert!(
        image
            .brokers
            .values()
            .all(|b| b.supported_features.is_some()),
        "{:?}",
        image.brokers
    );
    let index = cluster.create_topic("orders").await;
    cluster.assert_same_images(index).await;
    for node in cluster.nodes.values() {
        let image = node.image();
        assert!(
            image.topic_by_name("orders").is_some(),
            "node {}",
            node.node_id()
        );
        assert_eq!(node.raft_metrics().await.voters, vec![1, 2, 3]);
    }
    // Every voter applied it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cluster
        .nodes
        .values()
        .any(|n| n.image().metadata_version() != shoal_meta::features::MAX_METADATA_VERSION)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "metadata.version not finalized"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A follower's controller forwards to the leader; the result is applied everywhere.
    let leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let follower = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap();
    let outcome = cluster.nodes[&follower]
        .client()
        .create_topics(vec![common::topic("elsewhere", 1, 1)], false)
        .await;
    assert!(outcome.results[0].is_ok(), "{:?}", outcome.results);
    cluster.assert_same_images(outcome.log_index.unwrap()).await;
    assert!(
        cluster.nodes[&follower]
            .image()
            .topic_by_name("elsewhere")
            .is_some()
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_quorum_reports_leader_voters_and_lag() {
    let _serial = common::SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let _brokers = register_brokers_via_leader(&cluster).await;
    let index = cluster.create_topic("described").await;
    cluster.assert_same_images(index).await;

    let endpoint = |id: i32| format!("http://{}", cluster.voters[&id]);
    let mut admin = QuorumAdminClient::connect(endpoint(leader)).await.unwrap();
    // The leader learns follower progress with the next heartbeat; allow a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        let status = admin
            .describe_quorum(DescribeQuorumRequest {})
            .await
            .unwrap()
            .into_inner();
        if status.voters.iter().all(|v| v.lag == 0) || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.cluster_id, CLUSTER_ID);
    assert_eq!(status.node_id, leader);
    assert_eq!(status.state, "Leader");
    assert_eq!(status.leader_id, leader);
    assert!(status.current_term >= 1);
    assert!(status.replication_known);
    assert!(status.commit_index >= index as i64);
    assert!(status.applied_index >= index as i64);
    let ids: Vec<i32> = status.voters.iter().map(|v| v.node_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    for voter in &status.voters {
        assert_eq!(voter.address, cluster.voters[&voter.node_id]);
        assert_eq!(voter.match_index, status.last_log_index, "{voter:?}");
        assert_eq!(voter.lag, 0, "{voter:?}");
    }

    // A follower names the leader but has no replication table.
    let follower = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .unwrap();
    let mut admin = QuorumAdminClient::connect(endpoint(follower))
        .await
        .unwrap();
    let status = admin
        .describe_quorum(DescribeQuorumRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.leader_id, leader);
    assert_eq!(status.state, "Follower");
    assert!(!status.replication_known);
    assert_eq!(status.voters.len(), 3);
    assert!(
        status
            .voters
            .iter()
            .all(|v| v.match_index == -1 && v.lag == -1)
    );

    // With a voter down, the leader reports it lagging once more entries commit.
    let stopped = cluster
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader && *id != follower);
    let mut cluster = cluster;
    let stopped = stopped.unwrap();
    cluster.stop(stopped).await;
    cluster.create_topic("while-down").await;
    let status = cluster.nodes[&leader].describe_quorum().await;
    let down = status.voters.iter().find(|v| v.node_id == stopped).unwrap();
    assert!(down.lag.unwrap() >= 1, "{down:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_and_rejoin() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let old_leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let _brokers = register_brokers_via_leader(&cluster).await;
    cluster.create_topic("before").await;

    let stopped_at = Instant::now();
    cluster.stop(old_leader).await;
    eprintln!("stopping the leader took {:?}", stopped_at.elapsed());
    let new_leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let failover = stopped_at.elapsed();
    eprintln!("failover from node {old_leader} to node {new_leader} took {failover:?}");
    assert_ne!(new_leader, old_leader);
    assert!(
        failover < Duration::from_secs(2),
        "new leader after {failover:?}"
    );
    let index = cluster.create_topic("after").await;
    cluster.assert_same_images(index).await;

    // The old leader rejoins from its data dir and catches up.
    cluster.restart(old_leader).await;
    cluster.agreed_leader(Duration::from_secs(5)).await;
    cluster.assert_same_images(index).await;
    let image = cluster.nodes[&old_leader].image();
    assert!(image.topic_by_name("before").is_some());
    assert!(image.topic_by_name("after").is_some());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_loss_fails_cleanly_and_recovers() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let leader = cluster.agreed_leader(Duration::from_secs(5)).await;
    let _brokers = register_brokers_via_leader(&cluster).await;
    let committed = cluster.create_topic("kept").await;
    cluster.assert_same_images(committed).await;

    let others: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    for id in &others {
        cluster.stop(*id).await;
    }
    let started = Instant::now();
    let outcome = cluster.nodes[&leader]
        .client()
        .create_topics(vec![common::topic("lost", 1, 1)], false)
        .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(
            outcome.results[0],
            Err(ControllerError::RequestTimedOut | ControllerError::NotController { .. })
        ),
        "{:?}",
        outcome.results[0]
    );
    assert!(
        elapsed < Duration::from_millis(REQUEST_TIMEOUT_MS + 1_500),
        "failed only after {elapsed:?}"
    );

    // Both come back (concurrently, as after a power cut): writes work and nothing is lost.
    let restarts = others.iter().map(|id| {
        let config = cluster.config(*id);
        tokio::spawn(async move { MetaNode::start(config).await })
    });
    for restart in restarts.collect::<Vec<_>>() {
        let node = restart.await.unwrap().expect("node restarts");
        cluster.nodes.insert(node.node_id(), node);
    }
    // The brokers' heartbeats failed while the quorum was gone, so they may be fenced until
    // their next heartbeats reach the recovered controller: placing replicas needs them back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = cluster.agreed_leader(Duration::from_secs(10)).await;
        if cluster.nodes[&leader].image().unfenced_broker_ids() == vec![1, 2, 3] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "brokers not unfenced after the quorum came back: {:?}",
            cluster.nodes[&leader].image().unfenced_broker_ids()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let index = cluster.create_topic("after-recovery").await;
    cluster.assert_same_images(index).await;
    for node in cluster.nodes.values() {
        let image = node.image();
        assert!(image.topic_by_name("kept").is_some());
        assert!(image.topic_by_name("after-recovery").is_some());
    }
    cluster.shutdown().await;
}

/// Issue #18 / KIP-853: a voter whose directory was wiped must not help elect a leader that
/// lacks committed metadata. Every voter's directory is recorded; node 3 stops; "kept" commits
/// on {1, 2}; 1 and 2 stop; 2's directory is wiped; 2 and 3 start. Node 3 lacks "kept" and node
/// 2's log is empty: without the directory check 2 grants 3 its vote and 3 leads without
/// "kept" (or node 3 resumes the term it led and commits with node 2's acknowledgements).
/// Nothing may commit. Then 1 returns, a leader with "kept" is elected and commits without node
/// 2, AddVoter names node 2's new directory, node 2 catches up and votes again: with the leader
/// stopped, node 2 and the remaining node elect a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_cannot_elect_a_leader_that_lacks_committed_metadata() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let _brokers = register_brokers_via_leader(&cluster).await;
    // The stale voter is the leader: stopped first, it comes back with a committed vote of its
    // own and resumes its old term; the wiped voter, having forgotten every term, would
    // acknowledge its entries.
    let stale = cluster.agreed_leader(Duration::from_secs(5)).await;
    let others: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != stale).collect();
    let (wiped, keeper) = (others[0], others[1]);
    let old_directory = cluster.nodes[&wiped].directory_id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster
        .nodes
        .values()
        .any(|n| n.image().voter_directories.len() < 3)
    {
        assert!(
            Instant::now() < deadline,
            "voter directories never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (id, node) in &cluster.nodes {
        assert_eq!(node.image().voter_directories[id], node.directory_id());
    }

    cluster.stop(stale).await;
    let kept = cluster.create_topic("kept").await;
    cluster.assert_same_images(kept).await;
    cluster.stop(keeper).await;
    cluster.stop(wiped).await;
    std::fs::remove_dir_all(cluster.dirs[&wiped].path().join("meta")).unwrap();
    let restarts: Vec<_> = [wiped, stale]
        .into_iter()
        .map(|id| {
            let config = cluster.config(id);
            tokio::spawn(async move { MetaNode::start(config).await })
        })
        .collect();
    for restart in restarts {
        let node = restart.await.unwrap().expect("node starts");
        cluster.nodes.insert(node.node_id(), node);
    }
    let new_directory = cluster.nodes[&wiped].directory_id();
    assert_ne!(
        new_directory, old_directory,
        "a wiped directory gets a new id"
    );
    assert!(
        cluster.nodes[&stale]
            .image()
            .topic_by_name("kept")
            .is_none()
    );

    // Ten maximal election timeouts. Node 3 campaigns again and again, or resumes the term it
    // led before it stopped; either way nothing may commit: node 2's votes and acknowledgements
    // do not count, and node 3 alone is no majority.
    let watch_until = Instant::now() + Duration::from_secs(3);
    let limit = cluster.nodes[&stale].raft_metrics().await.committed_index;
    while Instant::now() < watch_until {
        for node in cluster.nodes.values() {
            let status = node.raft_metrics().await;
            assert!(
                status.committed_index <= limit,
                "node {} committed past {limit:?} with a wiped voter's help: {status:?}",
                status.node_id
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.restart(keeper).await;
    let leader = cluster.agreed_leader(Duration::from_secs(10)).await;
    assert_ne!(leader, wiped, "the wiped voter cannot be elected");
    // The leader hears node 2's new directory, and commits without it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = cluster.nodes[&leader].describe_quorum().await;
        let voter2 = status.voters.iter().find(|v| v.node_id == wiped).unwrap();
        assert_eq!(voter2.directory_id, Some(old_directory));
        if voter2.reported_directory_id == Some(new_directory) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leader never heard node 2: {voter2:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let index = cluster.create_topic("while-replaced").await;
    for id in [keeper, stale] {
        cluster.nodes[&id]
            .wait_for_applied(index, 5_000)
            .await
            .unwrap();
    }

    let mut admin = QuorumAdminClient::connect(format!("http://{}", cluster.voters[&leader]))
        .await
        .unwrap();
    // Garbage, an unknown voter and another directory than the one it runs with are refused.
    for (voter_id, directory_id, code) in [
        (
            wiped,
            "not-a-directory-id".to_string(),
            tonic::Code::InvalidArgument,
        ),
        (9, String::new(), tonic::Code::FailedPrecondition),
    ] {
        let status = admin
            .add_voter(AddVoterRequest {
                voter_id,
                directory_id,
                timeout_ms: 5_000,
                address: String::new(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
    }
    let refused = admin
        .add_voter(AddVoterRequest {
            voter_id: wiped,
            directory_id: format_directory_id(old_directory),
            timeout_ms: 5_000,
            address: String::new(),
        })
        .await
        .expect_err("the old directory is not the one node 2 runs with");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let added = admin
        .add_voter(AddVoterRequest {
            voter_id: wiped,
            directory_id: String::new(),
            timeout_ms: 10_000,
            address: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.directory_id, format_directory_id(new_directory));
    assert_eq!(
        added.previous_directory_id,
        format_directory_id(old_directory)
    );
    // Node 2 catches up as a voter now, and every voter applies the new directory before the
    // leader goes. (A voter that has the record in its log but has not learned that it
    // committed still addresses node 2 by the old directory and is refused; an election then
    // takes several rounds: the committed voter directories decide, where KRaft would use the
    // newest in the log.)
    for node in cluster.nodes.values() {
        node.wait_for_applied(added.log_index, 10_000)
            .await
            .unwrap();
    }
    assert!(
        cluster.nodes[&wiped]
            .image()
            .topic_by_name("kept")
            .is_some()
    );

    // Node 2 votes again: with the leader gone, it and the third node elect a leader.
    cluster.stop(leader).await;
    let new_leader = cluster.agreed_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    for node in cluster.nodes.values() {
        assert!(node.image().topic_by_name("kept").is_some());
    }
    cluster.shutdown().await;
}

/// A Vote from "another cluster" (or with another voter list, or for another node) with a
/// huge term must be refused before Raft sees it; the same RPC with the right envelope is
/// accepted, which proves the checks are what refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_from_another_cluster_or_voter_set_are_rejected() {
    let _serial = common::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let voters = BTreeMap::from([(1, address.to_string())]);
    let node =
        MetaNode::start_with_listener(node_config(1, dir.path().join("meta"), &voters), listener)
            .await
            .unwrap();
    assert_eq!(node.controller_address(), Some(address));
    let term_before = node.raft_metrics().await.current_term;

    let mut client = RaftServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    for (request, expected) in [
        (
            envelope(7, 7, "otherCluster", 1, vec![1]),
            "cluster id mismatch",
        ),
        (
            envelope(7, 7, CLUSTER_ID, 1, vec![1, 7]),
            "voter set mismatch",
        ),
        (envelope(7, 7, CLUSTER_ID, 2, vec![1]), "addressed node 2"),
    ] {
        let status = client.vote(request).await.expect_err("must be rejected");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains(expected), "{}", status.message());
    }
    // Issue #15: the cluster id is no secret. A non-voter with the right envelope, or one
    // posing as this node, used to make the only controller step down (a higher-term vote) or
    // get entries committed (a forged AppendEntries). Refused before Raft sees them.
    for (source, candidate) in [(7, 7), (1, 1)] {
        let status = client
            .vote(envelope(source, candidate, CLUSTER_ID, 1, vec![1]))
            .await
            .expect_err("a vote from a non-voter must be rejected");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("not another member"),
            "{}",
            status.message()
        );
        let status = client
            .append_entries(append_entries(source, candidate, vec![1]))
            .await
            .expect_err("entries from a non-voter must be rejected");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
    assert_eq!(node.raft_metrics().await.current_term, term_before);
    assert_eq!(node.leader_id(), Some(1));
    node.shutdown().await.unwrap();
}

/// A Vote from `source` for `candidate` at term 100, in an envelope of `cluster_id`.
fn envelope(
    source: i32,
    candidate: u64,
    cluster_id: &str,
    target: i32,
    voter_ids: Vec<i32>,
) -> RaftRequest {
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(100, candidate), None);
    RaftRequest {
        cluster_id: cluster_id.to_string(),
        target_node_id: target,
        source_node_id: source,
        voter_ids,
        payload: serde_json::to_vec(&vote).unwrap(),
        snapshot_chunk: Vec::new(),
        payload_version: 1,
        ..RaftRequest::default()
    }
}

/// An empty AppendEntries from `source` claiming `leader`'s committed vote at term 100.
fn append_entries(source: i32, leader: u64, voter_ids: Vec<i32>) -> RaftRequest {
    let rpc = openraft::raft::AppendEntriesRequest::<shoal_meta::raft::types::TypeConfig> {
        vote: openraft::Vote::new_committed(100, leader),
        prev_log_id: None,
        leader_commit: None,
        entries: Vec::new(),
    };
    RaftRequest {
        cluster_id: CLUSTER_ID.to_string(),
        target_node_id: 1,
        source_node_id: source,
        voter_ids,
        payload: shoal_meta::raft::payload::encode_append_entries(&rpc).unwrap(),
        snapshot_chunk: Vec::new(),
        payload_version: 1,
        ..RaftRequest::default()
    }
}

/// With other voters configured, an RPC from one of them reaches Raft, but only carrying its
/// own vote; and a payload version of a newer release is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_must_carry_the_senders_own_vote() {
    let _serial = common::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    // Voters 2 and 3 never start: node 1 stays a follower, which is all this test needs.
    let voters = BTreeMap::from([
        (1, address.to_string()),
        (2, "127.0.0.1:1".to_string()),
        (3, "127.0.0.1:1".to_string()),
    ]);
    let node =
        MetaNode::start_with_listener(node_config(1, dir.path().join("meta"), &voters), listener)
            .await
            .unwrap();
    let mut client = RaftServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let all = vec![1, 2, 3];

    let status = client
        .vote(envelope(2, 3, CLUSTER_ID, 1, all.clone()))
        .await
        .expect_err("a vote on behalf of another node must be rejected");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("on behalf of node 3"),
        "{}",
        status.message()
    );
    let status = client
        .append_entries(append_entries(2, 3, all.clone()))
        .await
        .expect_err("entries on behalf of another leader must be rejected");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // A vote from another voter naming a directory that is not 16 bytes, or not this node's
    // (it would be a wiped voter's vote), never reaches Raft: the term stays.
    let term_before = node.raft_metrics().await.current_term;
    for (directory, code) in [
        (vec![1, 2, 3], tonic::Code::InvalidArgument),
        (
            uuid::Uuid::from_u128(0xd1).as_bytes().to_vec(),
            tonic::Code::FailedPrecondition,
        ),
    ] {
        let forged = RaftRequest {
            target_directory_id: directory,
            ..envelope(2, 2, CLUSTER_ID, 1, all.clone())
        };
        let status = client.vote(forged).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
    }
    assert_eq!(node.raft_metrics().await.current_term, term_before);
    // Addressed to this node's own directory, the same vote reaches Raft, and the answer names
    // the directory.
    let addressed = RaftRequest {
        target_directory_id: node.directory_id().as_bytes().to_vec(),
        ..envelope(2, 2, CLUSTER_ID, 1, all.clone())
    };
    let reply = client.vote(addressed).await.expect("accepted").into_inner();
    assert!(reply.result.is_some());
    assert_eq!(reply.directory_id, node.directory_id().as_bytes().to_vec());

    let newer = RaftRequest {
        payload_version: 9,
        ..envelope(2, 2, CLUSTER_ID, 1, all.clone())
    };
    let status = client.vote(newer).await.expect_err("must be rejected");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("Raft RPC payload version 9")
            && status.message().contains("versions 0 to 1"),
        "{}",
        status.message()
    );
    // Control: another voter's own vote reaches Raft, which answers, from this release (1) and
    // from one before versioning (0) alike.
    for payload_version in [1, 0] {
        let request = RaftRequest {
            payload_version,
            ..envelope(2, 2, CLUSTER_ID, 1, all.clone())
        };
        let reply = client.vote(request).await.unwrap().into_inner();
        assert!(matches!(reply.result, Some(raft_reply::Result::Ok(_))));
        assert_eq!(reply.payload_version, 1);
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_another_voter_set() {
    let _serial = common::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("meta");
    let single = BTreeMap::from([(1, "127.0.0.1:1".to_string())]);
    let node = MetaNode::start(node_config(1, data.clone(), &single))
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    drop(node);

    let three: BTreeMap<i32, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{id}"))).collect();
    let config = MetaConfig {
        listen_address: Some("127.0.0.1:0".to_string()),
        ..node_config(1, data.clone(), &three)
    };
    let err = MetaNode::start(config).await.err().expect("must refuse");
    assert!(
        matches!(
            &err,
            MetaError::VoterSetMismatch { stored, configured }
                if stored == &vec![1] && configured == &vec![1, 2, 3]
        ),
        "{err}"
    );
    assert!(err.to_string().contains("voter set mismatch"), "{err}");

    // The refused start left the directory usable with the right voters.
    let node = MetaNode::start(node_config(1, data, &single))
        .await
        .unwrap();
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_voter_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let three: BTreeMap<i32, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{id}"))).collect();
    // Not a voter itself.
    let err = MetaNode::start(node_config(4, dir.path().join("a"), &three))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("not in controller.quorum.voters"),
        "{err}"
    );
    // Several voters but nowhere to listen.
    let err = MetaNode::start(node_config(1, dir.path().join("b"), &three))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("no controller listener"), "{err}");
    // Several voters, no cluster id on a fresh directory.
    let config = MetaConfig {
        cluster_id: None,
        listen_address: Some("127.0.0.1:0".to_string()),
        ..node_config(1, dir.path().join("c"), &three)
    };
    let err = MetaNode::start(config).await.err().unwrap();
    assert!(err.to_string().contains("no cluster.id"), "{err}");
}

/// KIP-853 on a running quorum: a controller started to join (no voter list of its own) is
/// added as a voter; then a follower, then the leader are removed; the last voter cannot be;
/// refusals change nothing; the added voter restarts from its own log. Metadata commits and
/// every remaining node applies it after each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_are_added_and_removed_one_at_a_time() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let leader = cluster.agreed_leader(Duration::from_secs(10)).await;
    // Broker-only nodes that know only the first three voters: they must follow the changes.
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(common::remote_broker(CLUSTER_ID, &cluster.voters, 100 + id).await);
    }
    let index = cluster.create_topic("before-the-change").await;
    cluster.assert_same_images(index).await;

    // Node 4 joins: it knows where the voters are, but never initializes a quorum.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let joining = MetaConfig {
        join_existing_quorum: true,
        ..node_config(4, dir.path().join("meta"), &cluster.voters)
    };
    let node4 = MetaNode::start_with_listener(joining.clone(), listener)
        .await
        .expect("a joining controller starts");
    assert!(node4.raft_metrics().await.voters.is_empty());

    let mut to_leader = admin(&cluster.voters[&leader]).await;
    // Refused, nothing changed: no address; a directory the node does not run with; an unknown
    // voter removed; the address of another member.
    let add = |directory_id: String, address: String| AddVoterRequest {
        voter_id: 4,
        directory_id,
        timeout_ms: 10_000,
        address,
    };
    let own = format_directory_id(node4.directory_id());
    let other = format_directory_id(uuid::Uuid::new_v4());
    for (request, code) in [
        (
            add(own.clone(), String::new()),
            tonic::Code::FailedPrecondition,
        ),
        (
            add(String::new(), address.clone()),
            tonic::Code::InvalidArgument,
        ),
        (
            add(own.clone(), cluster.voters[&2].clone()),
            tonic::Code::InvalidArgument,
        ),
    ] {
        let status = to_leader.add_voter(request).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
    }
    let status = to_leader
        .remove_voter(remove_voter(9, 5_000))
        .await
        .expect_err("not a voter");
    assert!(
        status.message().starts_with("VOTER_NOT_FOUND"),
        "{status:?}"
    );
    // A wrong directory is found out once the node answered as a learner.
    let status = to_leader
        .add_voter(add(other, address.clone()))
        .await
        .expect_err("not its directory");
    assert!(
        status.message().contains("runs with metadata directory"),
        "{status:?}"
    );
    // It stays a learner: it replicates, but does not vote; remove-voter forgets the learner.
    let status = node4.raft_metrics().await;
    assert_eq!(
        (status.voters, status.state.as_str()),
        (vec![1, 2, 3], "Learner")
    );
    let forgotten = to_leader
        .remove_voter(remove_voter(4, 5_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(forgotten.voters, vec![1, 2, 3]);
    let learners = cluster.nodes[&leader].describe_quorum().await.learners;
    assert!(learners.is_empty(), "{learners:?}");

    let added = to_leader
        .add_voter(add(own.clone(), address.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.voters, vec![1, 2, 3, 4]);
    assert_eq!(added.directory_id, own);
    cluster.voters.insert(4, address.clone());
    cluster.nodes.insert(4, node4);
    let index = cluster.create_topic("with-four-voters").await;
    cluster.assert_same_images(index).await;
    for node in cluster.nodes.values() {
        assert_eq!(node.raft_metrics().await.voters, vec![1, 2, 3, 4]);
    }
    let image = cluster.nodes[&4].image();
    assert_eq!(
        image.voter_directories.get(&4),
        Some(&cluster.nodes[&4].directory_id())
    );

    // Remove a follower, then the leader.
    let follower = *cluster
        .nodes
        .keys()
        .find(|id| **id != leader && **id != 4)
        .unwrap();
    let removed = to_leader
        .remove_voter(remove_voter(follower, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !removed.voters.contains(&follower) && removed.voters.len() == 3,
        "{removed:?}"
    );
    cluster.stop(follower).await;
    let index = cluster.create_topic("without-a-follower").await;
    cluster.assert_same_images(index).await;

    let removed = to_leader
        .remove_voter(remove_voter(leader, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.voters.len(), 2, "{removed:?}");
    cluster.stop(leader).await;
    let new_leader = cluster.agreed_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    let index = cluster.create_topic("without-the-old-leader").await;
    cluster.assert_same_images(index).await;

    // The added voter restarts from its own log (its config still names the first voters).
    cluster.stop(4).await;
    let node4 = MetaNode::start(MetaConfig {
        listen_address: Some(address.clone()),
        ..joining
    })
    .await
    .expect("the added voter restarts");
    cluster.nodes.insert(4, node4);
    cluster.agreed_leader(Duration::from_secs(10)).await;
    let index = cluster.create_topic("after-the-restart").await;
    cluster.assert_same_images(index).await;

    // Down to one voter; the last cannot be removed.
    let leader = cluster.agreed_leader(Duration::from_secs(10)).await;
    let other = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let mut to_leader = admin(&cluster.voters[&leader]).await;
    to_leader
        .remove_voter(remove_voter(other, 10_000))
        .await
        .unwrap();
    cluster.stop(other).await;
    let status = to_leader
        .remove_voter(remove_voter(leader, 5_000))
        .await
        .expect_err("the last voter stays");
    assert!(status.message().contains("last voter"), "{status:?}");
    let index = cluster.create_topic("one-voter-left").await;
    cluster.assert_same_images(index).await;
    // The brokers found the voters they were never told about, and stayed registered.
    for broker in &brokers {
        let mut images = broker.follower.subscribe();
        let caught_up = images.wait_for(|image| image.last_applied_index >= index);
        tokio::time::timeout(Duration::from_secs(10), caught_up)
            .await
            .expect("the broker follows the remaining voter")
            .unwrap();
        assert!(
            broker
                .lifecycle
                .wait_until_unfenced(Duration::from_secs(5))
                .await
        );
        assert_eq!(broker.voters.ids(), vec![leader], "the broker's voters");
    }
    cluster.shutdown().await;
}

async fn admin(address: &str) -> QuorumAdminClient<tonic::transport::Channel> {
    QuorumAdminClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// RemoveVoter for `voter_id`, whichever directory it runs with.
fn remove_voter(voter_id: i32, timeout_ms: u64) -> RemoveVoterRequest {
    RemoveVoterRequest {
        voter_id,
        directory_id: String::new(),
        timeout_ms,
    }
}
