//! Issue #16: the replication listener over mutual TLS. Only a certificate of the cluster CA
//! that names the fetching broker opens a replica fetch; no certificate, another CA's, or the
//! CA's certificate of another node gets no partition data.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::Harness;
use shoal_broker::replication::proto::replication_client::ReplicationClient;
use shoal_broker::replication::proto::{FetchRequest, FetchResponse, PartitionFetch};
use shoal_internode::test_certs::TestCa;
use shoal_internode::{ClientTls, NodeConnector};

/// Opens a fetch stream as `tls` for `replica_id` and returns the first answer.
async fn fetch_as(
    harness: &Harness,
    tls: Option<ClientTls>,
    replica_id: i32,
) -> Result<FetchResponse, String> {
    let address = harness.broker.replication_address().unwrap().to_string();
    let channel = NodeConnector::new(tls, None)
        .connect(&address, Duration::from_secs(3))
        .await
        .map_err(|e| shoal_internode::error_chain(&e))?;
    let topic_id = harness.topic_id("replicated");
    let request = FetchRequest {
        cluster_id: harness.meta.cluster_id().to_string(),
        replica_id,
        broker_epoch: 0,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        partitions: vec![PartitionFetch {
            topic_id: topic_id.as_bytes().to_vec(),
            partition: 0,
            current_leader_epoch: 0,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            max_bytes: 1 << 20,
            log_start_offset: Some(0),
        }],
    };
    let mut inbound = ReplicationClient::new(channel)
        .fetch(tokio_stream::iter(vec![request]))
        .await
        .map_err(|status| format!("{}: {}", status.code(), status.message()))?
        .into_inner();
    match inbound.message().await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err("stream ended without an answer".into()),
        Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_brokers_own_certificate_opens_a_replica_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster");
    let harness = Harness::start_with_replication_tls(ca.node_tls("REPLICATION", "node-1")).await;
    harness.create_topic("replicated", 1).await;

    // Control: node 2's own certificate fetching as replica 2 gets an answer for the
    // partition (an error code for a non-replica, not a refused stream).
    let own = fetch_as(
        &harness,
        Some(ClientTls::Config(ca.client_config("node-2"))),
        2,
    )
    .await;
    let response = own.expect("a node's own certificate opens the stream");
    assert_eq!(response.partitions.len(), 1);

    // Node 7's certificate fetching as replica 2: refused.
    let posing = fetch_as(
        &harness,
        Some(ClientTls::Config(ca.client_config("node-7"))),
        2,
    )
    .await;
    let refused = posing.expect_err("node 7 may not fetch as replica 2");
    assert!(
        refused.contains("PermissionDenied") && refused.contains("node 7's"),
        "{refused}"
    );

    // No certificate, or another CA's: no connection at all.
    assert!(fetch_as(&harness, None, 2).await.is_err());
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestCa::new(other_dir.path(), "other");
    let foreign = fetch_as(
        &harness,
        Some(ClientTls::Config(other.client_config("node-2"))),
        2,
    )
    .await;
    assert!(foreign.is_err(), "another CA's certificate must be refused");
    harness.stop().await;
}
