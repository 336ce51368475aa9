//! Writing transaction markers to partition leaders (Kafka's WriteTxnMarkers).
//!
//! The coordinator asks for one marker at a time per partition; this module finds the
//! partition's leader in the current metadata and writes the marker there: directly when this
//! broker leads the partition, else over the leader's replication listener (gRPC, with the same
//! mutual TLS and node identity as replication). A marker counts as written once the leader's
//! high watermark passed it, as an acks=all produce. Every failure is classified for the
//! coordinator, which retries until each partition has its marker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use shoal_replica::{AppendResult, ControlType, Partition, PartitionError, TxnMarker};
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
    write_local_all(replicas, vec![(topic_id, partition, marker)])
        .await
        .pop()
        .unwrap_or_else(|| MarkerOutcome::retry("no outcome".to_string()))
}

/// [`write_local`] for several markers, one outcome each, in order. The appends run in one
/// trip to the blocking pool (a marker is one small batch; a trip each would cost more than
/// the writes) and the replication waits run concurrently.
pub async fn write_local_all(
    replicas: &Arc<ReplicaManager>,
    markers: Vec<(Uuid, i32, TxnMarker)>,
) -> Vec<MarkerOutcome> {
    let image = replicas.image();
    let mut outcomes: Vec<Option<MarkerOutcome>> = Vec::with_capacity(markers.len());
    // (slot, topic name, log, marker) of each marker that has somewhere to go.
    let mut writes = Vec::with_capacity(markers.len());
    for (slot, (topic_id, partition, marker)) in markers.into_iter().enumerate() {
        let Some(topic_name) = image.topic(&topic_id).map(|t| t.name.clone()) else {
            outcomes.push(Some(MarkerOutcome::PartitionGone));
            continue;
        };
        let Some(log) = replicas.partition(topic_id, partition) else {
            outcomes.push(Some(MarkerOutcome::retry(
                "this broker does not host the partition".to_string(),
            )));
            continue;
        };
        outcomes.push(None);
        writes.push((slot, topic_name, partition, log, marker));
    }
    // Each marker is written on this thread when that is only a page-cache write; the rest
    // together on one blocking thread.
    let mut appended: Vec<Option<Result<AppendResult, PartitionError>>> = writes
        .iter()
        .map(|(_, _, _, log, marker)| log.try_write_txn_marker_light(marker, wall_ms()))
        .collect();
    let heavy: Vec<(usize, Arc<Partition>, TxnMarker)> = writes
        .iter()
        .zip(&appended)
        .enumerate()
        .filter(|(_, (_, done))| done.is_none())
        .map(|(i, ((_, _, _, log, marker), _))| (i, Arc::clone(log), *marker))
        .collect();
    if !heavy.is_empty() {
        let written = run_blocking(move || {
            let now_ms = wall_ms();
            heavy
                .into_iter()
                .map(|(i, log, marker)| (i, log.write_txn_marker(&marker, now_ms)))
                .collect::<Vec<_>>()
        })
        .await;
        let Some(written) = written else {
            return outcomes
                .into_iter()
                .map(|o| o.unwrap_or_else(|| MarkerOutcome::retry("shutting down".to_string())))
                .collect();
        };
        for (i, result) in written {
            appended[i] = Some(result);
        }
    }
    let appended = appended
        .into_iter()
        .map(|a| a.unwrap_or(Err(PartitionError::Closed)));
    let waits = writes.into_iter().zip(appended).map(
        |((slot, topic_name, partition, log, marker), appended)| async move {
            let appended = match appended {
                Ok(appended) => appended,
                Err(error) => return (slot, outcome_of(error)),
            };
            let acked = log
                .wait_for_acks_in_epoch(
                    appended.info.last_offset + 1,
                    appended.leader_epoch,
                    MARKER_REPLICATION_WAIT,
                )
                .await;
            let outcome = match acked {
                Ok(()) => {
                    replicas
                        .marker_written(&topic_name, partition, &marker, appended.info.first_offset)
                        .await;
                    MarkerOutcome::Written
                }
                Err(error) => outcome_of(error),
            };
            (slot, outcome)
        },
    );
    for (slot, outcome) in futures::future::join_all(waits).await {
        outcomes[slot] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| MarkerOutcome::retry("no outcome".to_string())))
        .collect()
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

    /// Writes `marker` on the current leader of each partition of `tps`; one outcome each, in
    /// order. The partitions are grouped by leader, as Kafka's coordinator does: this broker's
    /// own in one local write ([`write_local_all`]), each other leader's in one request; the
    /// groups run concurrently.
    pub async fn write_all(
        &self,
        tps: &[TopicPartition],
        marker: &TxnMarker,
    ) -> Vec<MarkerOutcome> {
        let image = self.replicas.image();
        let mut outcomes: Vec<Option<MarkerOutcome>> = Vec::with_capacity(tps.len());
        // leader -> (slot, topic id, partition)
        let mut by_leader: BTreeMap<i32, Vec<(usize, Uuid, i32)>> = BTreeMap::new();
        for (slot, tp) in tps.iter().enumerate() {
            let found = image
                .topic_by_name(&tp.0)
                .and_then(|topic| topic.partition(tp.1).map(|p| (topic.id, p.leader)));
            match found {
                None => outcomes.push(Some(MarkerOutcome::PartitionGone)),
                Some((_, leader)) if leader < 0 => outcomes.push(Some(MarkerOutcome::retry(
                    "the partition has no leader".to_string(),
                ))),
                Some((topic_id, leader)) => {
                    outcomes.push(None);
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((slot, topic_id, tp.1));
                }
            }
        }
        let local_id = self.replicas.local_id();
        let groups =
            by_leader.into_iter().map(|(leader, group)| {
                let image = &image;
                async move {
                    let slots: Vec<usize> = group.iter().map(|(slot, _, _)| *slot).collect();
                    let targets: Vec<(Uuid, i32)> =
                        group.iter().map(|(_, t, p)| (*t, *p)).collect();
                    let written = if leader == local_id {
                        let markers = targets.iter().map(|(t, p)| (*t, *p, *marker)).collect();
                        write_local_all(&self.replicas, markers).await
                    } else if let Some(address) = replication_address(image, leader) {
                        match tokio::time::timeout(
                            REMOTE_TIMEOUT,
                            self.write_remote(leader, &address, &targets, marker),
                        )
                        .await
                        {
                            Ok(outcomes) => outcomes,
                            Err(_) => vec![
                                MarkerOutcome::retry(format!(
                                    "broker {leader} did not answer in time"
                                ));
                                targets.len()
                            ],
                        }
                    } else {
                        vec![
                            MarkerOutcome::retry(format!(
                                "broker {leader} has no replication endpoint"
                            ));
                            targets.len()
                        ]
                    };
                    slots.into_iter().zip(written).collect::<Vec<_>>()
                }
            });
        for (slot, outcome) in futures::future::join_all(groups)
            .await
            .into_iter()
            .flatten()
        {
            outcomes[slot] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| MarkerOutcome::retry("no answer for the partition".to_string()))
            })
            .collect()
    }

    /// One WriteTxnMarkers request to `leader` for the partitions of `targets`; one outcome
    /// each, in order (a partition the answer leaves out is retried).
    async fn write_remote(
        &self,
        leader: i32,
        address: &str,
        targets: &[(Uuid, i32)],
        marker: &TxnMarker,
    ) -> Vec<MarkerOutcome> {
        let all = |outcome: MarkerOutcome| vec![outcome; targets.len()];
        let channel = match self.channels.get(leader, address).await {
            Ok(channel) => channel,
            Err(why) => {
                return all(MarkerOutcome::retry(format!(
                    "cannot connect to {address}: {why}"
                )));
            }
        };
        let request = WriteTxnMarkersRequest {
            cluster_id: self.channels.cluster_id().to_string(),
            coordinator_id: self.replicas.local_id(),
            markers: targets
                .iter()
                .map(|(topic_id, partition)| proto::TxnMarker {
                    topic_id: topic_id_bytes(*topic_id),
                    partition: *partition,
                    producer_id: marker.producer_id,
                    producer_epoch: i32::from(marker.producer_epoch),
                    coordinator_epoch: marker.coordinator_epoch,
                    commit: marker.control == ControlType::Commit,
                })
                .collect(),
        };
        match ReplicationClient::new(channel)
            .write_txn_markers(request)
            .await
        {
            Ok(response) => {
                let mut results = response.into_inner().results.into_iter();
                (0..targets.len())
                    .map(|_| match results.next() {
                        Some(result) => MarkerOutcome::from_code(
                            i16::try_from(result.error_code).unwrap_or(-1),
                            result.error_message,
                        ),
                        None => MarkerOutcome::retry("a short answer".to_string()),
                    })
                    .collect()
            }
            Err(status) => {
                self.channels.forget(leader);
                all(MarkerOutcome::retry(format!("{address}: {status}")))
            }
        }
    }
}

/// The leader side of a remote WriteTxnMarkers: the markers written here together
/// ([`write_local_all`]); one result each, in order.
pub async fn serve_write_markers(
    replicas: &Arc<ReplicaManager>,
    markers: Vec<proto::TxnMarker>,
) -> Vec<proto::MarkerResult> {
    let mut outcomes: Vec<Option<MarkerOutcome>> = Vec::with_capacity(markers.len());
    let mut valid = Vec::with_capacity(markers.len());
    let mut slots = Vec::with_capacity(markers.len());
    for (slot, m) in markers.into_iter().enumerate() {
        match (topic_id_from(&m.topic_id), i16::try_from(m.producer_epoch)) {
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
                outcomes.push(None);
                slots.push(slot);
                valid.push((topic_id, m.partition, marker));
            }
            _ => outcomes.push(Some(MarkerOutcome::retry("a malformed marker".to_string()))),
        }
    }
    for (slot, outcome) in slots
        .into_iter()
        .zip(write_local_all(replicas, valid).await)
    {
        outcomes[slot] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| {
            let outcome = o.unwrap_or_else(|| MarkerOutcome::retry("no outcome".to_string()));
            proto::MarkerResult {
                error_code: i32::from(outcome.code()),
                error_message: outcome.message(),
            }
        })
        .collect()
}
