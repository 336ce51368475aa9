//! Issue #16: the controller links over mutual TLS. Three voters with node certificates of one
//! CA elect a leader, forward requests and fail over; a process that is not a node — no
//! certificate, another CA's, a certificate of the CA that names another node or none — cannot
//! vote, append entries, register a broker or follow the metadata log.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_internode::test_certs::TestCa;
use shoal_internode::{ClientTls, NodeConnector};
use shoal_meta::proto::controller_service_client::ControllerServiceClient;
use shoal_meta::proto::metadata_log_client::MetadataLogClient;
use shoal_meta::proto::raft_service_client::RaftServiceClient;
use shoal_meta::proto::{FetchMetadataRequest, ForwardedRequest, RaftRequest};
use shoal_meta::{MetaConfig, MetaNode};
use tokio::net::TcpListener;
use tonic::transport::Channel;

const CLUSTER_ID: &str = "mtlsTestCluster";

struct Cluster {
    _dir: tempfile::TempDir,
    ca: TestCa,
    voters: BTreeMap<i32, String>,
    nodes: BTreeMap<i32, Arc<MetaNode>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "cluster");
        let mut listeners = BTreeMap::new();
        for id in 1..=3 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let voters: BTreeMap<i32, String> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let starts: Vec<_> = listeners
            .into_iter()
            .map(|(id, listener)| {
                let config = MetaConfig {
                    cluster_id: Some(CLUSTER_ID.to_string()),
                    voters: voters.clone(),
                    request_timeout_ms: 5_000,
                    tls: Some(ca.node_tls("CONTROLLER", &format!("node-{id}"))),
                    ..MetaConfig::new(id, dir.path().join(format!("meta-{id}")))
                };
                tokio::spawn(async move { MetaNode::start_with_listener(config, listener).await })
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for start in starts {
            let node = start.await.unwrap().expect("node starts");
            nodes.insert(node.node_id(), node);
        }
        Cluster {
            _dir: dir,
            ca,
            voters,
            nodes,
        }
    }

    /// The leader all running nodes agree on.
    async fn leader(&self) -> i32 {
        common::agreed_leader(&self.nodes, Duration::from_secs(10)).await
    }

    /// A vote for `source` sent to node 1 by a process presenting `tls`: whether it got
    /// through (connection and RPC).
    async fn vote_as(&self, tls: Option<ClientTls>, source: i32) -> Result<(), String> {
        let channel = self.channel(1, tls).await?;
        RaftServiceClient::new(channel)
            .vote(vote(source))
            .await
            .map(|_| ())
            .map_err(|status| status.to_string())
    }

    /// A channel to node `target` as a process presenting `tls`.
    async fn channel(&self, target: i32, tls: Option<ClientTls>) -> Result<Channel, String> {
        NodeConnector::new(tls, None)
            .connect(&self.voters[&target], Duration::from_secs(3))
            .await
            .map_err(|e| shoal_internode::error_chain(&e))
    }
}

/// A Vote from `source` for itself at term 100.
fn vote(source: i32) -> RaftRequest {
    let vote = openraft::raft::VoteRequest::<u64>::new(
        openraft::Vote::new(100, u64::try_from(source).unwrap()),
        None,
    );
    RaftRequest {
        cluster_id: CLUSTER_ID.to_string(),
        target_node_id: 1,
        source_node_id: source,
        voter_ids: vec![1, 2, 3],
        payload: serde_json::to_vec(&vote).unwrap(),
        snapshot_chunk: Vec::new(),
        payload_version: 1,
        ..RaftRequest::default()
    }
}

/// A broker registration for `broker_id`, forwarded as from node `broker_id`.
fn registration(broker_id: i32) -> ForwardedRequest {
    ForwardedRequest {
        cluster_id: CLUSTER_ID.to_string(),
        source_node_id: broker_id,
        target_node_id: 1,
        timeout_ms: 3_000,
        payload: serde_json::to_vec(&common::broker(broker_id)).unwrap(),
        payload_version: 1,
    }
}

fn metadata_fetch(node_id: i32) -> FetchMetadataRequest {
    FetchMetadataRequest {
        cluster_id: CLUSTER_ID.to_string(),
        node_id,
        applied_offset: 0,
        max_wait_ms: 0,
        max_payload_version: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_with_their_own_certificates_take_part_and_the_quorum_fails_over() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    // Forwarding from a follower to the leader runs over the mutual TLS links: a broker
    // registers and heartbeats through it, and a topic is created.
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let _broker = common::live_broker(&cluster.nodes[&follower], 1, 250).await;
    let created = cluster.nodes[&follower]
        .client()
        .create_topics(vec![common::topic("over-mtls", 1, 1)], false)
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results);
    let term_before = cluster.nodes[&1].raft_metrics().await.current_term;

    // No certificate: no connection (the listener speaks only TLS).
    let plaintext = cluster.vote_as(None, 2).await;
    assert!(plaintext.is_err(), "a plaintext vote must not get through");

    // Another CA's certificate, even one named like a voter: the handshake fails.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new(other_dir.path(), "other");
    let foreign = ClientTls::Config(other.client_config("node-2"));
    let outcome = cluster.vote_as(Some(foreign), 2).await;
    assert!(outcome.is_err(), "another CA's certificate must be refused");

    // The cluster CA's certificate of node 9 (no voter, no broker) posing as voter 2 ...
    let node9 = ClientTls::Config(cluster.ca.client_config("node-9"));
    let channel = cluster.channel(1, Some(node9.clone())).await.unwrap();
    let status = RaftServiceClient::new(channel.clone())
        .vote(vote(2))
        .await
        .expect_err("node 9 may not vote as node 2");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("node 9's"),
        "{}",
        status.message()
    );
    let status = RaftServiceClient::new(channel.clone())
        .append_entries(RaftRequest {
            payload: Vec::new(),
            ..vote(3)
        })
        .await
        .expect_err("node 9 may not append entries as node 3");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // ... registering a broker under another id ...
    let status = ControllerServiceClient::new(channel.clone())
        .register_broker(registration(5))
        .await
        .expect_err("node 9 may not register broker 5");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // ... or following the metadata log as another node.
    let status = MetadataLogClient::new(channel)
        .fetch_metadata(metadata_fetch(4))
        .await
        .expect_err("node 9 may not fetch the metadata log as node 4");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // A certificate of the CA that names no node (an operator's) speaks for none.
    let operator = ClientTls::Config(cluster.ca.client_config("admin"));
    let channel = cluster.channel(1, Some(operator)).await.unwrap();
    let status = ControllerServiceClient::new(channel)
        .register_broker(registration(5))
        .await
        .expect_err("a certificate without a node id may not register a broker");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("names no node"),
        "{}",
        status.message()
    );

    // Control: node 9's certificate speaking for node 9 gets through to the metadata log (a
    // fetch is what a broker-only node does), so the refusals above were about the claims.
    let channel = cluster.channel(1, Some(node9)).await.unwrap();
    let reply = MetadataLogClient::new(channel)
        .fetch_metadata(metadata_fetch(9))
        .await
        .expect("node 9 may follow the log as itself");
    assert!(reply.into_inner().leader_id >= 1);

    // Nothing above moved the quorum.
    assert_eq!(
        cluster.nodes[&1].raft_metrics().await.current_term,
        term_before
    );
    assert!(
        !cluster.nodes[&cluster.leader().await]
            .image()
            .brokers
            .contains_key(&5)
    );

    // The leader stops (the follower the broker heartbeats through stays): the other two elect a new one over mutual TLS and serve requests.
    let old = cluster.leader().await;
    assert_ne!(old, follower, "the leader did not change above");
    cluster
        .nodes
        .remove(&old)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let stopped_at = Instant::now();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old);
    let created = cluster.nodes[&new_leader]
        .client()
        .create_topics(vec![common::topic("after-failover", 1, 1)], false)
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results);
    eprintln!(
        "new leader {new_leader} serving {:?} after node {old} stopped",
        stopped_at.elapsed()
    );
    for node in cluster.nodes.values() {
        node.shutdown().await.unwrap();
    }
}
