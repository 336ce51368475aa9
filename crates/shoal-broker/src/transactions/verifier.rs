//! KIP-890 part 1, the leader's side: before a producer's first transactional write to a
//! partition (no transaction of it open there yet), the leader asks the transactional id's
//! coordinator whether the partition is in the producer's open transaction. Without the check a
//! produce delayed in the network could arrive after its transaction ended and open a new,
//! never-ending one on the partition (a "hanging transaction" that holds the last stable offset
//! forever).
//!
//! The coordinator is asked directly when it is this broker, else over its replication listener
//! (gRPC). The partition keeps a verification guard from before the question until the write,
//! so a marker written in between (the transaction ended) voids the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use shoal_txn::metadata::TopicPartition;
use shoal_txn::{TRANSACTION_STATE_TOPIC, TxnError};

use crate::internal_topic::{CoordinatorLocation, coordinator_of};
use crate::replica_manager::ReplicaManager;
use crate::replication::fetcher::replication_address;
use crate::replication::proto::replication_client::ReplicationClient;
use crate::replication::proto::{TopicPartitionName, VerifyTxnPartitionsRequest};
use crate::transactions::coordinator::{CoordError, TxnCoordinator};
use crate::transactions::peer_channels::{PeerChannels, PeerLinks};

/// Longest a verification may take, connection included.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// The coordinator's answer: per partition, or for the whole request (a Kafka error code).
pub type Verification = Result<BTreeMap<TopicPartition, Result<(), i16>>, i16>;

pub struct TxnVerifier {
    coordinator: Arc<TxnCoordinator>,
    replicas: Arc<ReplicaManager>,
    channels: PeerChannels,
}

/// The codes of the coordinator's answer.
pub fn verification_codes(
    answer: Result<BTreeMap<TopicPartition, Result<(), TxnError>>, CoordError>,
) -> Verification {
    match answer {
        Ok(partitions) => Ok(partitions
            .into_iter()
            .map(|(tp, r)| (tp, r.map_err(TxnError::code)))
            .collect()),
        Err(error) => Err(error.code()),
    }
}

impl TxnVerifier {
    pub fn new(
        coordinator: Arc<TxnCoordinator>,
        replicas: Arc<ReplicaManager>,
        links: PeerLinks,
    ) -> Self {
        Self {
            coordinator,
            replicas,
            channels: PeerChannels::new(links),
        }
    }

    /// Asks `transactional_id`'s coordinator whether `partitions` are in the open transaction
    /// of (`producer_id`, `producer_epoch`).
    pub async fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Verification {
        let image = self.replicas.image();
        let coordinator = match coordinator_of(TRANSACTION_STATE_TOPIC, transactional_id, &image) {
            CoordinatorLocation::Broker(id) => id,
            CoordinatorLocation::NotAvailable => {
                return Err(ResponseError::CoordinatorNotAvailable.code());
            }
        };
        if coordinator == self.replicas.local_id() {
            return verification_codes(self.coordinator.verify_partitions(
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
            ));
        }
        let Some(address) = replication_address(&image, coordinator) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        let request = VerifyTxnPartitionsRequest {
            cluster_id: self.channels.cluster_id().to_string(),
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: i32::from(producer_epoch),
            partitions: partitions
                .iter()
                .map(|(topic, partition)| TopicPartitionName {
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect(),
        };
        let asked = tokio::time::timeout(
            VERIFY_TIMEOUT,
            self.ask_remote(coordinator, &address, request),
        )
        .await;
        let response = match asked {
            Ok(Ok(response)) => response,
            Ok(Err(why)) => {
                tracing::debug!(coordinator, %why, "transaction verification failed");
                return Err(ResponseError::CoordinatorNotAvailable.code());
            }
            Err(_) => return Err(ResponseError::CoordinatorNotAvailable.code()),
        };
        if response.error_code != 0 {
            return Err(i16::try_from(response.error_code).unwrap_or(-1));
        }
        if response.partition_error_codes.len() != partitions.len() {
            return Err(ResponseError::UnknownServerError.code());
        }
        Ok(partitions
            .iter()
            .cloned()
            .zip(response.partition_error_codes)
            .map(|(tp, code)| {
                let answer = match i16::try_from(code) {
                    Ok(0) => Ok(()),
                    Ok(code) => Err(code),
                    Err(_) => Err(-1),
                };
                (tp, answer)
            })
            .collect())
    }

    async fn ask_remote(
        &self,
        coordinator: i32,
        address: &str,
        request: VerifyTxnPartitionsRequest,
    ) -> Result<crate::replication::proto::VerifyTxnPartitionsResponse, String> {
        let channel = self.channels.get(coordinator, address).await?;
        match ReplicationClient::new(channel)
            .verify_txn_partitions(request)
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => {
                self.channels.forget(coordinator);
                Err(status.to_string())
            }
        }
    }
}
