//! WriteTxnMarkers on the Kafka listener: commit or abort markers written on partitions this
//! broker leads, for Kafka's tools (`kafka-transactions.sh abort` ends a hanging transaction
//! this way) and `shoalctl txn abort`. Shoal's own coordinators reach leaders over the
//! replication listener instead (`transactions::markers`); both end in the same local write.
//!
//! It needs CLUSTER_ACTION on the cluster, as in Kafka (CLUSTER_AUTHORIZATION_FAILED for every
//! partition otherwise). Per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
//! INVALID_PRODUCER_EPOCH (a newer epoch wrote there), TRANSACTION_COORDINATOR_FENCED (a newer
//! coordinator did), or NONE once the marker is replicated.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_replica::{ControlType, TxnMarker};

use crate::Broker;
use crate::apis::MAX_BATCH_ITEMS;
use crate::authorization::CLUSTER_NAME;
use crate::transactions::markers::{MarkerOutcome, write_local};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> Reply {
    let authorized = broker.authorization.allowed(
        ctx,
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let mut budget = MAX_BATCH_ITEMS;
    let mut markers = Vec::with_capacity(request.markers.len().min(MAX_BATCH_ITEMS));
    for marker in request.markers {
        let control = if marker.transaction_result {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let txn_marker = TxnMarker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            control,
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let code = if budget == 0 {
                    ResponseError::InvalidRequest.code()
                } else if !authorized {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    budget -= 1;
                    write_one(broker, topic.name.0.as_str(), index, txn_marker).await
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    Reply::Ready(ResponseKind::WriteTxnMarkers(
        WriteTxnMarkersResponse::default().with_markers(markers),
    ))
}

async fn write_one(broker: &Arc<Broker>, topic: &str, index: i32, marker: TxnMarker) -> i16 {
    let image = broker.image();
    let Some(t) = image
        .topic_by_name(topic)
        .filter(|t| t.partition(index).is_some())
    else {
        return ResponseError::UnknownTopicOrPartition.code();
    };
    if !broker
        .replicas
        .partition(t.id, index)
        .is_some_and(|p| p.is_leader())
    {
        return ResponseError::NotLeaderOrFollower.code();
    }
    let outcome = write_local(&broker.replicas, t.id, index, marker).await;
    match &outcome {
        MarkerOutcome::Written => {
            tracing::info!(topic, partition = index, producer_id = marker.producer_id, control = ?marker.control, "WriteTxnMarkers: marker written at a client's request")
        }
        other => {
            tracing::info!(topic, partition = index, producer_id = marker.producer_id, outcome = ?other, "WriteTxnMarkers: marker not written")
        }
    }
    outcome.code()
}
