//! Forwarding and broker liveness on a three-voter quorum in one process (127.0.0.1, ephemeral
//! ports): controller calls through followers, heartbeats, session-timeout fencing, unfencing,
//! stale epochs, duplicate registrations, and failover without fencing live brokers.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_meta::format::DELTA_PAYLOAD_VERSION;
use shoal_meta::proto::FetchMetadataRequest;
use shoal_meta::proto::metadata_log_client::MetadataLogClient;
use shoal_meta::{
    BrokerError, BrokerHeartbeat, BrokerLifecycle, BrokerLifecycleConfig,
    BrokerRegistrationRequest, ControllerClient, ControllerError, KnownLeader, MetaConfig,
    MetaNode, MetadataFollower, MetadataFollowerConfig, MetadataImage, NO_LEADER, VoterBook,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

const CLUSTER_ID: &str = "livenessTestCluster";
const REQUEST_TIMEOUT_MS: u64 = 3_000;

struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    nodes: BTreeMap<i32, Arc<MetaNode>>,
}

impl Cluster {
    async fn start(heartbeat_ms: u64, session_ms: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=3 {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let voters: BTreeMap<i32, String> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let starts: Vec<_> = listeners
            .into_iter()
            .map(|(id, listener)| {
                let config = MetaConfig {
                    cluster_id: Some(CLUSTER_ID.to_string()),
                    voters: voters.clone(),
                    request_timeout_ms: REQUEST_TIMEOUT_MS,
                    broker_heartbeat_interval_ms: heartbeat_ms,
                    broker_session_timeout_ms: session_ms,
                    ..MetaConfig::new(id, dirs[(id - 1) as usize].path().join("meta"))
                };
                tokio::spawn(async move { MetaNode::start_with_listener(config, listener).await })
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for start in starts {
            let node = start.await.unwrap().expect("node starts");
            nodes.insert(node.node_id(), node);
        }
        Cluster { _dirs: dirs, nodes }
    }

    async fn leader(&self) -> i32 {
        common::agreed_leader(&self.nodes, Duration::from_secs(5)).await
    }

    async fn followers(&self) -> Vec<i32> {
        let leader = self.leader().await;
        self.nodes
            .keys()
            .copied()
            .filter(|id| *id != leader)
            .collect()
    }

    async fn stop(&mut self, id: i32) {
        self.nodes.remove(&id).unwrap().shutdown().await.unwrap();
    }

    async fn shutdown(self) {
        for node in self.nodes.values() {
            node.shutdown().await.unwrap();
        }
    }
}

fn incarnation(broker_id: i32, n: u128) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        incarnation_id: Uuid::from_u128(n),
        ..common::broker(broker_id)
    }
}

/// A broker's heartbeat loop, through `node`'s controller, reporting `node`'s applied index.
fn heartbeat_loop(
    node: Arc<MetaNode>,
    broker_id: i32,
    epoch: i64,
    every_ms: u64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let caught_up = node.image().last_applied_index;
            let _ = common::heartbeat(&node.client(), broker_id, epoch, caught_up).await;
            tokio::time::sleep(Duration::from_millis(every_ms)).await;
        }
    })
}

/// Registers brokers 1..=3 through `via` and starts their heartbeat loops; returns once all
/// are unfenced.
async fn live_brokers(via: &Arc<MetaNode>, every_ms: u64) -> BTreeMap<i32, (i64, JoinHandle<()>)> {
    let mut brokers = BTreeMap::new();
    for id in 1..=3 {
        let registered = via.client().register(common::broker(id)).await.unwrap();
        // Registration alone leaves the broker fenced.
        let image = via
            .wait_for_applied(registered.log_index, 5_000)
            .await
            .unwrap();
        assert!(image.brokers[&id].fenced);
        let task = heartbeat_loop(via.clone(), id, registered.broker_epoch, every_ms);
        brokers.insert(id, (registered.broker_epoch, task));
    }
    wait_image(via, "brokers unfenced", |i| {
        i.unfenced_broker_ids() == vec![1, 2, 3]
    })
    .await;
    brokers
}

async fn wait_image(
    node: &MetaNode,
    what: &str,
    done: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    let mut images = node.subscribe();
    let waited = tokio::time::timeout(Duration::from_secs(10), images.wait_for(|i| done(i))).await;
    match waited {
        Ok(Ok(image)) => image.clone(),
        _ => panic!("timed out waiting for {what}: {:#?}", node.image()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_through_a_follower_are_forwarded_and_survive_a_leader_change() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start(100, 5_000).await;
    let followers = cluster.followers().await;
    let via = cluster.nodes[&followers[0]].clone();
    let controller: Arc<ControllerClient> = via.client();
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(common::live_broker(&via, id, 100).await);
    }
    let outcome = controller
        .create_topics(vec![common::topic("forwarded", 3, 3)], false)
        .await;
    assert!(outcome.results[0].is_ok(), "{:?}", outcome.results);
    // The log index is a Raft index: valid on the caller's node and on every other.
    let index = outcome.log_index.unwrap();
    for node in cluster.nodes.values() {
        let image = node.wait_for_applied(index, 5_000).await.unwrap();
        assert_eq!(
            image.topic_by_name("forwarded").unwrap().partitions.len(),
            3
        );
    }
    // Errors come back as the leader decided them.
    let again = controller
        .create_topics(vec![common::topic("forwarded", 3, 3)], false)
        .await;
    assert!(matches!(
        again.results[0],
        Err(ControllerError::TopicAlreadyExists(_))
    ));
    assert!(controller.allocate_producer_ids().await.is_ok());

    // A stream of creates through the follower while the leader is stopped.
    let leader = cluster.leader().await;
    let mut stopped = false;
    for i in 0..8 {
        if i == 3 {
            cluster.stop(leader).await;
            stopped = true;
        }
        let started = Instant::now();
        let name = format!("stream-{i}");
        let outcome = controller
            .create_topics(vec![common::topic(&name, 1, 1)], false)
            .await;
        assert!(
            outcome.results[0].is_ok(),
            "{name} (leader stopped: {stopped}) after {:?}: {:?}",
            started.elapsed(),
            outcome.results
        );
        via.wait_for_applied(outcome.log_index.unwrap(), 5_000)
            .await
            .unwrap();
    }
    assert_ne!(cluster.leader().await, leader);
    let image = via.image();
    assert!((0..8).all(|i| image.topic_by_name(&format!("stream-{i}")).is_some()));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_down_fails_within_the_request_timeout_through_a_follower() {
    let _serial = common::SERIAL.lock().await;
    let mut cluster = Cluster::start(100, 5_000).await;
    let leader = cluster.leader().await;
    let followers = cluster.followers().await;
    cluster.stop(leader).await;
    cluster.stop(followers[1]).await;
    let survivor = cluster.nodes[&followers[0]].clone();
    let started = Instant::now();
    let outcome = survivor
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
        outcome.results
    );
    assert!(
        elapsed < Duration::from_millis(REQUEST_TIMEOUT_MS + 1_000),
        "took {elapsed:?}"
    );
    let heartbeat = common::heartbeat(&survivor.client(), 1, 1, 0).await;
    assert!(
        matches!(heartbeat, Err(BrokerError::Controller(_))),
        "{heartbeat:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_is_fenced_its_partitions_move_and_it_comes_back() {
    let _serial = common::SERIAL.lock().await;
    const HEARTBEAT_MS: u64 = 50;
    const SESSION_MS: u64 = 600;
    let cluster = Cluster::start(HEARTBEAT_MS, SESSION_MS).await;
    let followers = cluster.followers().await;
    let via = cluster.nodes[&followers[0]].clone();
    let mut brokers = live_brokers(&via, HEARTBEAT_MS).await;
    let outcome = via
        .client()
        .create_topics(vec![common::topic("moving", 6, 3)], false)
        .await;
    assert!(outcome.results[0].is_ok(), "{:?}", outcome.results);
    let before = via
        .wait_for_applied(outcome.log_index.unwrap(), 5_000)
        .await
        .unwrap();
    let before_parts = before.topic_by_name("moving").unwrap().partitions.clone();
    assert!(before_parts.iter().any(|p| p.leader == 1));

    // Broker 1 goes silent.
    let mut observed = via.subscribe();
    observed.borrow_and_update();
    let (epoch, task) = brokers.remove(&1).unwrap();
    task.abort();
    let silent_at = Instant::now();
    // Look at every image published until broker 1 is fenced: the first one that shows it
    // fenced must already show every partition moved (one entry).
    let fenced = loop {
        tokio::time::timeout(Duration::from_secs(5), observed.changed())
            .await
            .expect("broker 1 was never fenced")
            .unwrap();
        let image = observed.borrow_and_update().clone();
        if image.brokers[&1].fenced {
            break image;
        }
    };
    let took = silent_at.elapsed();
    let check_interval = Duration::from_millis(HEARTBEAT_MS / 2);
    assert!(
        took <= Duration::from_millis(SESSION_MS) + check_interval + Duration::from_millis(300),
        "fenced after {took:?}"
    );
    // The session runs from the last heartbeat the controller got, which on a loaded machine
    // can be a scheduling delay older than one interval before the abort: allow 200 ms of it.
    assert!(
        took >= Duration::from_millis(SESSION_MS - HEARTBEAT_MS - 200),
        "fenced early: {took:?}"
    );
    let after = fenced.topic_by_name("moving").unwrap().partitions.clone();
    for (b, a) in before_parts.iter().zip(&after) {
        assert!(!a.isr.contains(&1), "{a:?}");
        assert_ne!(a.leader, 1, "{a:?}");
        if b.leader == 1 {
            let expected = b.replicas.iter().copied().find(|r| *r != 1).unwrap();
            assert_eq!(a.leader, expected, "replica order: {b:?} -> {a:?}");
            assert_eq!(a.leader_epoch, b.leader_epoch + 1);
        } else {
            assert_eq!((a.leader, a.leader_epoch), (b.leader, b.leader_epoch));
        }
        assert_eq!(a.partition_epoch, b.partition_epoch + 1);
    }
    assert_eq!(fenced.unfenced_broker_ids(), vec![2, 3]);

    // It heartbeats again with its epoch, as a paused broker resuming does: its image still
    // from before the fence. Unfenced, but the lease the answer grants counts only once the
    // broker has acted on the fence (and on its partitions moving away).
    let stale = before.last_applied_index;
    let reply = common::heartbeat(&via.client(), 1, epoch, stale)
        .await
        .unwrap();
    assert!(!reply.fenced);
    let lease = reply.lease.expect("an unfenced answer grants a lease");
    assert_eq!(lease.session_timeout_ms, SESSION_MS);
    assert!(
        lease.metadata_offset >= fenced.last_applied_index
            && lease.metadata_offset >= reply.log_index.unwrap(),
        "{lease:?} must cover the fence at {} and the unfence {:?}",
        fenced.last_applied_index,
        reply.log_index
    );
    let image = via
        .wait_for_applied(reply.log_index.unwrap(), 5_000)
        .await
        .unwrap();
    assert!(!image.brokers[&1].fenced);
    for (_, (_, task)) in brokers {
        task.abort();
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_epochs_and_duplicate_registrations_are_refused() {
    let _serial = common::SERIAL.lock().await;
    const HEARTBEAT_MS: u64 = 50;
    const SESSION_MS: u64 = 500;
    let cluster = Cluster::start(HEARTBEAT_MS, SESSION_MS).await;
    let followers = cluster.followers().await;
    let via = cluster.nodes[&followers[0]].clone();
    let c = via.client();

    let first = c.register(incarnation(7, 1)).await.unwrap();
    // Same incarnation again: a retry, same epoch.
    assert_eq!(
        c.register(incarnation(7, 1)).await.unwrap().broker_epoch,
        first.broker_epoch
    );
    // Behind on metadata: stays fenced.
    let reply = common::heartbeat(&c, 7, first.broker_epoch, 0)
        .await
        .unwrap();
    assert!(reply.fenced && reply.log_index.is_none());
    let task = heartbeat_loop(via.clone(), 7, first.broker_epoch, HEARTBEAT_MS);
    wait_image(&via, "broker 7 unfenced", |i| {
        i.brokers.get(&7).is_some_and(|b| !b.fenced)
    })
    .await;

    // A second live incarnation is refused, also when retried for a while.
    for _ in 0..3 {
        let err = c.register(incarnation(7, 2)).await.unwrap_err();
        assert_eq!(
            err,
            BrokerError::DuplicateBrokerRegistration { broker_id: 7 }
        );
        tokio::time::sleep(Duration::from_millis(SESSION_MS / 3)).await;
    }
    // Wrong epochs and unknown brokers.
    let err = common::heartbeat(&c, 7, first.broker_epoch - 1, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::StaleBrokerEpoch { broker_id: 7, .. }),
        "{err:?}"
    );
    let err = common::heartbeat(&c, 99, 1, 0).await.unwrap_err();
    assert_eq!(err, BrokerError::BrokerIdNotRegistered { broker_id: 99 });

    // The old incarnation goes silent; once its session expired, the new one is accepted.
    task.abort();
    tokio::time::sleep(Duration::from_millis(SESSION_MS + 200)).await;
    let second = c.register(incarnation(7, 2)).await.unwrap();
    assert!(second.broker_epoch > first.broker_epoch);
    let image = via.wait_for_applied(second.log_index, 5_000).await.unwrap();
    assert!(image.brokers[&7].fenced);
    assert_eq!(image.brokers[&7].incarnation_id, Uuid::from_u128(2));
    // The old incarnation's heartbeats are now stale.
    let err = common::heartbeat(&c, 7, first.broker_epoch, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::StaleBrokerEpoch { current_epoch, .. } if current_epoch == second.broker_epoch),
        "{err:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover_does_not_fence_live_brokers() {
    let _serial = common::SERIAL.lock().await;
    const HEARTBEAT_MS: u64 = 100;
    const SESSION_MS: u64 = 1_000;
    let mut cluster = Cluster::start(HEARTBEAT_MS, SESSION_MS).await;
    let leader = cluster.leader().await;
    let followers = cluster.followers().await;
    let via = cluster.nodes[&followers[0]].clone();
    let brokers = live_brokers(&via, HEARTBEAT_MS).await;
    let outcome = via
        .client()
        .create_topics(vec![common::topic("steady", 3, 3)], false)
        .await;
    let before = via
        .wait_for_applied(outcome.log_index.unwrap(), 5_000)
        .await
        .unwrap();

    cluster.stop(leader).await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    // Three sessions under the new controller: nobody is fenced, no partition moves.
    tokio::time::sleep(Duration::from_millis(3 * SESSION_MS)).await;
    for node in cluster.nodes.values() {
        let image = node.image();
        assert_eq!(
            image.unfenced_broker_ids(),
            vec![1, 2, 3],
            "node {}",
            node.node_id()
        );
        assert_eq!(
            image.topic_by_name("steady").unwrap().partitions,
            before.topic_by_name("steady").unwrap().partitions
        );
    }
    // The new controller does fence a broker that then goes silent.
    brokers[&2].1.abort();
    wait_image(&via, "broker 2 fenced", |i| i.brokers[&2].fenced).await;
    let image = via.image();
    assert!(
        image
            .topic_by_name("steady")
            .unwrap()
            .partitions
            .iter()
            .all(|p| p.leader != 2 && p.leader != NO_LEADER)
    );
    for (_, (_, task)) in brokers {
        task.abort();
    }
    cluster.shutdown().await;
}

/// A broker-only node: follows the committed log from the voters, sends its requests through
/// a remote client, registers and heartbeats, and keeps doing all of it across a leader change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_only_node_follows_the_log_and_reaches_the_controller_from_outside() {
    let _serial = common::SERIAL.lock().await;
    const HEARTBEAT_MS: u64 = 100;
    const SESSION_MS: u64 = 1_000;
    const BROKER_ID: i32 = 10;
    let mut cluster = Cluster::start(HEARTBEAT_MS, SESSION_MS).await;
    let voters: BTreeMap<i32, String> = cluster.nodes[&1].voters();
    let known = Arc::new(KnownLeader::default());
    let follower = MetadataFollower::start(
        MetadataFollowerConfig {
            cluster_id: CLUSTER_ID.to_string(),
            node_id: BROKER_ID,
            voters: Arc::new(VoterBook::new(voters.clone())),
            connect_timeout: Duration::from_millis(300),
            tls: None,
        },
        Arc::clone(&known),
    );
    let client = ControllerClient::remote(
        CLUSTER_ID,
        BROKER_ID,
        Arc::new(VoterBook::new(voters.clone())),
        REQUEST_TIMEOUT_MS,
        Duration::from_millis(300),
        Arc::clone(&known),
        None,
    );
    let lifecycle = BrokerLifecycle::start(
        Arc::clone(&client),
        follower.subscribe(),
        BrokerLifecycleConfig {
            broker_id: BROKER_ID,
            listeners: common::broker(BROKER_ID).listeners,
            rack: None,
            heartbeat_interval_ms: HEARTBEAT_MS,
            session_timeout_ms: SESSION_MS,
            registration_timeout_ms: 10_000,
            log_dirs: Vec::new(),
        },
        shoal_meta::client::ReplicaReports::none(),
    )
    .await
    .unwrap();
    assert!(lifecycle.wait_until_unfenced(Duration::from_secs(5)).await);
    let leader = cluster.leader().await;
    assert_eq!(known.get(), Some(leader), "the follower learned the leader");

    // Admin requests from outside the quorum; the follower's image equals the voters'.
    let created = client
        .create_topics(vec![common::topic("outside", 2, 1)], false)
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results);
    let index = created.log_index.unwrap();
    let mut images = follower.subscribe();
    let image = tokio::time::timeout(
        Duration::from_secs(5),
        images.wait_for(|i| i.last_applied_index >= index),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    let topic = image.topic_by_name("outside").unwrap();
    assert!(topic.partitions.iter().all(|p| p.leader == BROKER_ID));
    let voter = cluster.nodes[&leader]
        .wait_for_applied(image.last_applied_index, 5_000)
        .await
        .unwrap();
    if voter.last_applied_index == image.last_applied_index {
        assert_eq!(voter, image);
    }
    let quorum = cluster.nodes[&leader].describe_quorum().await;
    assert!(
        quorum.observers.iter().any(|o| o.node_id == BROKER_ID),
        "{quorum:?}"
    );

    // The leader goes away: requests and heartbeats find the new one; nobody is fenced.
    cluster.stop(leader).await;
    let created = client
        .create_topics(vec![common::topic("after-failover", 1, 1)], false)
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results);
    let index = created.log_index.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        images.wait_for(|i| i.last_applied_index >= index),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2 * SESSION_MS)).await;
    assert!(
        lifecycle.is_unfenced(),
        "{:?}",
        follower.subscribe().borrow().brokers
    );
    assert_ne!(known.get(), Some(leader));

    // Stopping the heartbeats gets the broker fenced, in the follower's image too.
    lifecycle.stop();
    let fenced = tokio::time::timeout(
        Duration::from_secs(5),
        images.wait_for(|i| i.brokers[&BROKER_ID].fenced),
    )
    .await;
    assert!(fenced.is_ok(), "broker-only node was not fenced");
    cluster.shutdown().await;
}

/// A controller that shuts down stops judging broker liveness before it stops serving. Its
/// server refuses new heartbeats at once but drains in-flight RPCs (here a metadata long poll,
/// as a broker-only node always has one open) for up to a second, while its Raft still leads.
/// A session check in that window fenced every live broker that could not get through; after a
/// failover the new controller then saw none unfenced and refused CreateTopics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_controller_fences_nobody_while_its_server_drains() {
    let _serial = common::SERIAL.lock().await;
    const HEARTBEAT_MS: u64 = 100;
    const SESSION_MS: u64 = 600;
    const BROKER_ID: i32 = 10;
    const LONG_POLLER: i32 = 99;
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let config = MetaConfig {
        cluster_id: Some(CLUSTER_ID.to_string()),
        voters: BTreeMap::from([(1, address.clone())]),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        broker_heartbeat_interval_ms: HEARTBEAT_MS,
        broker_session_timeout_ms: SESSION_MS,
        ..MetaConfig::new(1, dir.path().join("meta"))
    };
    let node = MetaNode::start_with_listener(config.clone(), listener)
        .await
        .unwrap();
    // The broker reaches the controller over gRPC only, as a broker-only node does.
    let client = ControllerClient::remote(
        CLUSTER_ID,
        BROKER_ID,
        Arc::new(VoterBook::new(config.voters.clone())),
        REQUEST_TIMEOUT_MS,
        Duration::from_millis(300),
        Arc::new(KnownLeader::default()),
        None,
    );
    let lifecycle = BrokerLifecycle::start(
        client,
        node.subscribe(),
        BrokerLifecycleConfig {
            broker_id: BROKER_ID,
            listeners: common::broker(BROKER_ID).listeners,
            rack: None,
            heartbeat_interval_ms: HEARTBEAT_MS,
            session_timeout_ms: SESSION_MS,
            registration_timeout_ms: 10_000,
            log_dirs: Vec::new(),
        },
        shoal_meta::client::ReplicaReports::none(),
    )
    .await
    .unwrap();
    assert!(lifecycle.wait_until_unfenced(Duration::from_secs(5)).await);

    // An RPC in flight for longer than a session: a long poll with nothing new to return.
    let applied = node.image().last_applied_index;
    let mut poller = MetadataLogClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let poll = tokio::spawn(async move {
        poller
            .fetch_metadata(FetchMetadataRequest {
                cluster_id: CLUSTER_ID.to_string(),
                node_id: LONG_POLLER,
                applied_offset: applied,
                max_wait_ms: 5_000,
                max_payload_version: DELTA_PAYLOAD_VERSION,
            })
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node
        .describe_quorum()
        .await
        .observers
        .iter()
        .any(|o| o.node_id == LONG_POLLER)
    {
        assert!(Instant::now() < deadline, "the long poll did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!node.image().brokers[&BROKER_ID].fenced);

    let started = Instant::now();
    node.shutdown().await.unwrap();
    let drained = started.elapsed();
    lifecycle.stop();
    let _ = poll.await;

    // What the stopping controller committed, read back by a restart whose sessions are too
    // long to fence anyone itself.
    let restarted = MetaNode::start(MetaConfig {
        broker_session_timeout_ms: 60_000,
        ..config
    })
    .await
    .unwrap();
    let image = restarted.image();
    assert!(
        !image.brokers[&BROKER_ID].fenced,
        "the controller fenced a live broker while shutting down (took {drained:?})"
    );
    // Otherwise the test proves nothing: the drain outlasted the broker's session.
    assert!(drained > Duration::from_millis(SESSION_MS), "{drained:?}");
    restarted.shutdown().await.unwrap();
}

/// A node of another cluster learns nothing and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_of_another_cluster_is_refused() {
    let _serial = common::SERIAL.lock().await;
    let cluster = Cluster::start(100, 1_000).await;
    let voters: BTreeMap<i32, String> = cluster.nodes[&1].voters();
    let known = Arc::new(KnownLeader::default());
    let follower = MetadataFollower::start(
        MetadataFollowerConfig {
            cluster_id: "someOtherCluster".to_string(),
            node_id: 20,
            voters: Arc::new(VoterBook::new(voters.clone())),
            connect_timeout: Duration::from_millis(300),
            tls: None,
        },
        Arc::clone(&known),
    );
    let client = ControllerClient::remote(
        "someOtherCluster",
        20,
        Arc::new(VoterBook::new(voters)),
        REQUEST_TIMEOUT_MS,
        Duration::from_millis(300),
        known,
        None,
    );
    let outcome = client
        .create_topics(vec![common::topic("intruder", 1, 1)], false)
        .await;
    assert!(
        matches!(&outcome.results[0], Err(ControllerError::Internal(m)) if m.contains("cluster id mismatch")),
        "{:?}",
        outcome.results
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(follower.subscribe().borrow().last_applied_index, 0);
    let leader = cluster.leader().await;
    assert!(
        cluster.nodes[&leader]
            .image()
            .topic_by_name("intruder")
            .is_none()
    );
    cluster.shutdown().await;
}

/// Issue #15: the cluster id is no secret (clients see it in Metadata). A process that knows it
/// used to create topics through the ControllerService, register a fake broker, send shutdown
/// heartbeats for a real broker, and allocate producer-id blocks in a loop (a Raft entry each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_of_the_cluster_speak_to_the_controller_each_for_itself() {
    let _serial = common::SERIAL.lock().await;
    let cluster = Cluster::start(100, 1_000).await;
    let leader = cluster.leader().await;
    let real = cluster.nodes[&leader]
        .client()
        .register(common::broker(1))
        .await
        .unwrap();
    let voters: BTreeMap<i32, String> = cluster.nodes[&1].voters();
    let cluster_id = cluster.nodes[&1].cluster_id().to_string();
    let as_node = |node_id: i32| {
        ControllerClient::remote(
            &cluster_id,
            node_id,
            Arc::new(VoterBook::new(voters.clone())),
            REQUEST_TIMEOUT_MS,
            Duration::from_millis(300),
            Arc::new(KnownLeader::default()),
            None,
        )
    };
    let refused = |what: &str, message: &str, expected: &str| {
        assert!(message.contains(expected), "{what}: {message}");
    };

    // A stranger (node 20: no voter, no broker) may not create topics ...
    let stranger = as_node(20);
    let outcome = stranger
        .create_topics(vec![common::topic("intruder", 1, 1)], false)
        .await;
    match &outcome.results[0] {
        Err(ControllerError::Internal(m)) => {
            refused("create", m, "neither a voter nor a registered broker")
        }
        other => panic!("a stranger's CreateTopics must be refused: {other:?}"),
    }
    // ... nor speak for a real broker (a shutdown heartbeat would fence it), nor register one
    // under another id.
    let heartbeat = BrokerHeartbeat {
        broker_id: 1,
        broker_epoch: real.broker_epoch,
        caught_up_metadata_offset: 0,
        want_shutdown: true,
        offline_replicas: Vec::new(),
        replica_sizes: Vec::new(),
    };
    match stranger
        .broker_heartbeat(heartbeat, Duration::from_secs(3))
        .await
    {
        Err(BrokerError::Controller(ControllerError::Internal(m))) => {
            refused("heartbeat", &m, "on behalf of broker 1")
        }
        other => panic!("a heartbeat for another broker must be refused: {other:?}"),
    }
    match stranger.register(common::broker(5)).await {
        Err(BrokerError::Controller(ControllerError::Internal(m))) => {
            refused("register", &m, "on behalf of broker 5")
        }
        other => panic!("registering another broker id must be refused: {other:?}"),
    }
    assert!(
        cluster.nodes[&leader]
            .image()
            .topic_by_name("intruder")
            .is_none()
    );
    assert!(!cluster.nodes[&leader].image().brokers.contains_key(&5));

    // A node of the cluster may allocate producer-id blocks, at a bounded rate.
    let broker = as_node(1);
    let mut granted = 0u32;
    let mut limited = None;
    let started = Instant::now();
    for _ in 0..200 {
        match broker.allocate_producer_ids().await {
            Ok(_) => granted += 1,
            Err(ControllerError::Internal(m)) if m.contains("faster than") => {
                limited = Some(m);
                break;
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    assert!(
        limited.is_some(),
        "{granted} blocks without a limit in {elapsed_s:.1} s"
    );
    let allowed = f64::from(shoal_meta::PRODUCER_ID_BLOCKS_BURST)
        + f64::from(shoal_meta::PRODUCER_ID_BLOCKS_PER_SECOND) * (elapsed_s + 1.0);
    assert!(
        f64::from(granted) <= allowed,
        "{granted} blocks in {elapsed_s:.1} s"
    );
    assert!(granted >= 1);
    cluster.shutdown().await;
}
