//! Writing transaction markers to partition leaders (Kafka's WriteTxnMarkers).
//!
//! The coordinator asks for one marker at a time per partition; this module finds the
//! partition's leader in the current metadata and writes the marker there: directly when this
//! broker leads the partition, else over the leader's replication listener (gRPC, with the same
//! mutual TLS and node identity as replication). A marker counts as written once the leader's
//! high watermark passed it, as an acks=all produce. Every failure is classified for the
//! coordinator, which retries until each partition has its marker.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use shoal_replica::{ControlType, PartitionError, TxnMarker};
use shoal_txn::metadata::TopicPartition;
use uuid::Uuid;

use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;
use crate::replica_manager::ReplicaManager;
use crate::replication::fetcher::replication_address;
use crate::replication::proto::replication_client::ReplicationClient;
use crate::replication::proto::{self, WriteTxnMarkersRequest};
use crate::replication::{topic_id_bytes, topic_id_from};
use crate::time::wall_ms;
use crate::transactions::peer_channels::{PeerChannels, PeerLinks};

/// Longest a marker waits for replication on its leader.
const MARKER_REPLICATION_WAIT: Duration = Duration::from_secs(30);
/// Longest a remote marker write may take, connection included.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(35);

/// What became of one marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerOutcome {
    Written,
    /// The topic or partition no longer exists: nothing to mark.
    PartitionGone,
    /// The partition has a newer epoch of this producer.
    ProducerFenced(String),
    /// The partition has seen a newer coordinator epoch: this coordinator is stale.
    CoordinatorFenced(String),
    /// Leadership moving, replicas missing, timeouts: try again. `code` is the Kafka error a
    /// client asking for this marker is answered.
    Retry {
        code: i16,
        why: String,
    },
}

impl MarkerOutcome {
    /// A retriable failure clients are told as NOT_LEADER_OR_FOLLOWER.
    pub(crate) fn retry(why: impl Into<String>) -> Self {
        MarkerOutcome::Retry {
            code: ResponseError::NotLeaderOrFollower.code(),
            why: why.into(),
        }
    }

    /// The Kafka error code a remote leader answers for this outcome.
    pub fn code(&self) -> i16 {
        match self {
            MarkerOutcome::Written => 0,
            MarkerOutcome::PartitionGone => ResponseError::UnknownTopicOrPartition.code(),
            MarkerOutcome::ProducerFenced(_) => ResponseError::InvalidProducerEpoch.code(),
            MarkerOutcome::CoordinatorFenced(_) => {
                ResponseError::TransactionCoordinatorFenced.code()
            }
            MarkerOutcome::Retry { code, .. } => *code,
        }
    }

    fn message(&self) -> String {
        match self {
            MarkerOutcome::Written | MarkerOutcome::PartitionGone => String::new(),
            MarkerOutcome::ProducerFenced(m)
            | MarkerOutcome::CoordinatorFenced(m)
            | MarkerOutcome::Retry { why: m, .. } => m.clone(),
        }
    }

    /// The outcome a remote leader's answer stands for.
    fn from_code(code: i16, message: String) -> Self {
        if code == 0 {
            MarkerOutcome::Written
        } else if code == ResponseError::UnknownTopicOrPartition.code()
            || code == ResponseError::UnknownTopicId.code()
        {
            MarkerOutcome::PartitionGone
        } else if code == ResponseError::InvalidProducerEpoch.code()
            || code == ResponseError::ProducerFenced.code()
        {
            MarkerOutcome::ProducerFenced(message)
        } else if code == ResponseError::TransactionCoordinatorFenced.code() {
            MarkerOutcome::CoordinatorFenced(message)
        } else {
            MarkerOutcome::Retry {
                code,
                why: format!("error code {code}: {message}"),
            }
        }
    }
}

fn outcome_of(error: PartitionError) -> MarkerOutcome {
    match error {
        PartitionError::InvalidProducerEpoch { .. } => {
            MarkerOutcome::ProducerFenced(error.to_string())
        }
        PartitionError::TransactionCoordinatorFenced { .. } => {
            MarkerOutcome::CoordinatorFenced(error.to_string())
        }
        other => MarkerOutcome::Retry {
            code: partition_error_code(&other),
            why: other.to_string(),
        },
    }
}

/// Writes `marker` on this broker's replica of the partition, which must lead it, and waits
/// until it is replicated; then the replica manager's marker listener (the group coordinator,
/// for `__consumer_offsets`) is told, before the marker counts as written.
pub async fn write_local(
    replicas: &Arc<ReplicaManager>,
    topic_id: Uuid,
    partition: i32,
    marker: TxnMarker,
) -> MarkerOutcome {
    let image = replicas.image();
    let Some(topic_name) = image.topic(&topic_id).map(|t| t.name.clone()) else {
        return MarkerOutcome::PartitionGone;
    };
    let Some(log) = replicas.partition(topic_id, partition) else {
        return MarkerOutcome::retry("this broker does not host the partition".to_string());
    };
    let appended = {
        let log = Arc::clone(&log);
        run_blocking(move || log.write_txn_marker(&marker, wall_ms())).await
    };
    let appended = match appended {
        Some(Ok(appended)) => appended,
        Some(Err(error)) => return outcome_of(error),
        None => return MarkerOutcome::retry("shutting down".to_string()),
    };
    match log
        .wait_for_acks_in_epoch(
            appended.info.last_offset + 1,
            appended.leader_epoch,
            MARKER_REPLICATION_WAIT,
        )
        .await
    {
        Ok(()) => {
            replicas
                .marker_written(&topic_name, partition, &marker, appended.info.first_offset)
                .await;
            MarkerOutcome::Written
        }
        Err(error) => outcome_of(error),
    }
}

pub struct MarkerWriter {
    replicas: Arc<ReplicaManager>,
    channels: PeerChannels,
}

impl MarkerWriter {
    pub fn new(replicas: Arc<ReplicaManager>, links: PeerLinks) -> Self {
        Self {
            replicas,
            channels: PeerChannels::new(links),
        }
    }

    /// Writes the marker on the current leader of `tp`.
    pub async fn write(&self, tp: &TopicPartition, marker: &TxnMarker) -> MarkerOutcome {
        let image = self.replicas.image();
        let Some(topic) = image.topic_by_name(&tp.0) else {
            return MarkerOutcome::PartitionGone;
        };
        let Some(partition) = topic.partition(tp.1) else {
            return MarkerOutcome::PartitionGone;
        };
        let leader = partition.leader;
        if leader < 0 {
            return MarkerOutcome::retry("the partition has no leader".to_string());
        }
        if leader == self.replicas.local_id() {
            return write_local(&self.replicas, topic.id, tp.1, *marker).await;
        }
        let Some(address) = replication_address(&image, leader) else {
            return MarkerOutcome::retry(format!("broker {leader} has no replication endpoint"));
        };
        match tokio::time::timeout(
            REMOTE_TIMEOUT,
            self.write_remote(leader, &address, topic.id, tp.1, marker),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => MarkerOutcome::retry(format!("broker {leader} did not answer in time")),
        }
    }

    async fn write_remote(
        &self,
        leader: i32,
        address: &str,
        topic_id: Uuid,
        partition: i32,
        marker: &TxnMarker,
    ) -> MarkerOutcome {
        let channel = match self.channels.get(leader, address).await {
            Ok(channel) => channel,
            Err(why) => return MarkerOutcome::retry(format!("cannot connect to {address}: {why}")),
        };
        let request = WriteTxnMarkersRequest {
            cluster_id: self.channels.cluster_id().to_string(),
            coordinator_id: self.replicas.local_id(),
            markers: vec![proto::TxnMarker {
                topic_id: topic_id_bytes(topic_id),
                partition,
                producer_id: marker.producer_id,
                producer_epoch: i32::from(marker.producer_epoch),
                coordinator_epoch: marker.coordinator_epoch,
                commit: marker.control == ControlType::Commit,
            }],
        };
        match ReplicationClient::new(channel)
            .write_txn_markers(request)
            .await
        {
            Ok(response) => match response.into_inner().results.into_iter().next() {
                Some(result) => MarkerOutcome::from_code(
                    i16::try_from(result.error_code).unwrap_or(-1),
                    result.error_message,
                ),
                None => MarkerOutcome::retry("an empty answer".to_string()),
            },
            Err(status) => {
                self.channels.forget(leader);
                MarkerOutcome::retry(format!("{address}: {status}"))
            }
        }
    }
}

/// The leader side of a remote WriteTxnMarkers: each marker written here, in order.
pub async fn serve_write_markers(
    replicas: &Arc<ReplicaManager>,
    markers: Vec<proto::TxnMarker>,
) -> Vec<proto::MarkerResult> {
    let mut results = Vec::with_capacity(markers.len());
    for m in markers {
        let outcome = match (topic_id_from(&m.topic_id), i16::try_from(m.producer_epoch)) {
            (Some(topic_id), Ok(producer_epoch)) => {
                let marker = TxnMarker {
                    producer_id: m.producer_id,
                    producer_epoch,
                    coordinator_epoch: m.coordinator_epoch,
                    control: if m.commit {
                        ControlType::Commit
                    } else {
                        ControlType::Abort
                    },
                };
                write_local(replicas, topic_id, m.partition, marker).await
            }
            _ => MarkerOutcome::retry("a malformed marker".to_string()),
        };
        results.push(proto::MarkerResult {
            error_code: i32::from(outcome.code()),
            error_message: outcome.message(),
        });
    }
    results
}
