//! KIP-890 part 1, the leader's side: before a producer's first transactional write to a
//! partition (no transaction of it open there yet), the leader asks the transactional id's
//! coordinator whether the partition is in the producer's open transaction. Without the check a
//! produce delayed in the network could arrive after its transaction ended and open a new,
//! never-ending one on the partition (a "hanging transaction" that holds the last stable offset
//! forever).
//!
//! With transaction version 2 (KIP-890 part 2) the client sends no AddPartitionsToTxn: its
//! Produce v12+ (or TxnOffsetCommit v5+) asks the leader to *add* the partition instead, the
//! same question with [`TxnPartitionCheck::Add`], retried briefly while the coordinator is still
//! completing the producer's previous transaction (Kafka's `add.partitions.to.txn.retry.*`).
//!
//! The coordinator is asked directly when it is this broker, else over its replication listener
//! (gRPC). The partition keeps a verification guard from before the question until the write,
//! so a marker written in between (the transaction ended) voids the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use shoal_txn::metadata::TopicPartition;
use shoal_txn::{TRANSACTION_STATE_TOPIC, TransactionVersion, TxnError};

use crate::internal_topic::{CoordinatorLocation, coordinator_of};
use crate::replica_manager::ReplicaManager;
use crate::replication::fetcher::replication_address;
use crate::replication::proto::replication_client::ReplicationClient;
use crate::replication::proto::{TopicPartitionName, VerifyTxnPartitionsRequest};
use crate::transactions::coordinator::{CoordError, TxnCoordinator};
use crate::transactions::peer_channels::{PeerChannels, PeerLinks};

/// Longest a verification may take, connection included.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's `add.partitions.to.txn.retry.backoff.ms`: pause between adds refused with
/// CONCURRENT_TRANSACTIONS (the previous transaction's markers are still being written).
const ADD_PARTITIONS_RETRY_BACKOFF_MS: u64 = 20;
/// Kafka's `add.partitions.to.txn.retry.backoff.max.ms`: how long such adds are retried before
/// the client gets CONCURRENT_TRANSACTIONS (and retries itself).
const ADD_PARTITIONS_RETRY_MAX_MS: u64 = 100;

/// What a partition leader asks of the coordinator before a producer's first transactional
/// write to the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnPartitionCheck {
    /// KIP-890 part 1: is the partition in the open transaction?
    Verify,
    /// Transaction version 2: add the partition, opening a transaction if none is open.
    Add,
}

impl TxnPartitionCheck {
    /// `supports_epoch_bump`: the request speaks transaction version 2 (Produce v12+,
    /// TxnOffsetCommit v5+), as Kafka decides it, from the request version alone.
    pub fn for_request(supports_epoch_bump: bool) -> Self {
        if supports_epoch_bump {
            TxnPartitionCheck::Add
        } else {
            TxnPartitionCheck::Verify
        }
    }
}

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

/// A failed verification as the asking request's client understands it (Kafka's
/// `AddPartitionsToTxnManager` and its callers): the coordinator being away or busy becomes
/// `retriable`, the code that request's clients retry (NOT_ENOUGH_REPLICAS on Produce,
/// COORDINATOR_NOT_AVAILABLE on TxnOffsetCommit); a fenced producer is told
/// INVALID_PRODUCER_EPOCH; the rest (INVALID_PRODUCER_ID_MAPPING included, which clients
/// recover from with InitProducerId) passes through. A version-2 client ([`TxnPartitionCheck::Add`])
/// gets CONCURRENT_TRANSACTIONS as it is and retries it (KAFKA-18654); older ones do not know it
/// there.
pub fn client_code_for_verification_error(
    code: i16,
    check: TxnPartitionCheck,
    retriable: ResponseError,
) -> i16 {
    let busy = code == ResponseError::ConcurrentTransactions.code();
    if busy && check == TxnPartitionCheck::Add {
        code
    } else if busy
        || code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::CoordinatorLoadInProgress.code()
    {
        retriable.code()
    } else if code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

/// The codes of an implicit add (transaction version 2): every partition joined, or one
/// request-level error.
pub fn addition_codes(
    answer: Result<(), CoordError>,
    partitions: &BTreeSet<TopicPartition>,
) -> Verification {
    match answer {
        Ok(()) => Ok(partitions.iter().map(|tp| (tp.clone(), Ok(()))).collect()),
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
    /// of (`producer_id`, `producer_epoch`), or ([`TxnPartitionCheck::Add`]) to add them.
    pub async fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        check: TxnPartitionCheck,
    ) -> Verification {
        let give_up =
            tokio::time::Instant::now() + Duration::from_millis(ADD_PARTITIONS_RETRY_MAX_MS);
        loop {
            let answer = self
                .ask(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partitions,
                    check,
                )
                .await;
            let busy = answer == Err(ResponseError::ConcurrentTransactions.code());
            let retry_at = tokio::time::Instant::now()
                + Duration::from_millis(ADD_PARTITIONS_RETRY_BACKOFF_MS);
            if !(busy && check == TxnPartitionCheck::Add && retry_at <= give_up) {
                return answer;
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }

    async fn ask(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        check: TxnPartitionCheck,
    ) -> Verification {
        let image = self.replicas.image();
        let coordinator = match coordinator_of(TRANSACTION_STATE_TOPIC, transactional_id, &image) {
            CoordinatorLocation::Broker(id) => id,
            CoordinatorLocation::NotAvailable => {
                return Err(ResponseError::CoordinatorNotAvailable.code());
            }
        };
        if coordinator == self.replicas.local_id() {
            return match check {
                TxnPartitionCheck::Verify => {
                    verification_codes(self.coordinator.verify_partitions(
                        transactional_id,
                        producer_id,
                        producer_epoch,
                        partitions,
                    ))
                }
                TxnPartitionCheck::Add => addition_codes(
                    self.coordinator
                        .add_partitions(
                            transactional_id,
                            producer_id,
                            producer_epoch,
                            partitions,
                            TransactionVersion::Tv2,
                        )
                        .await,
                    partitions,
                ),
            };
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
            add: check == TxnPartitionCheck::Add,
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
