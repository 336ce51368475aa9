//! `TxnStateStorage`: the coordinator's writes, appended to `__transaction_state` partitions.
//!
//! A write is one uncompressed batch appended as leader and counted only once the high
//! watermark passed it (acks=all with the topic's `min.insync.replicas`), so a transaction
//! state the coordinator acts on is on every in-sync replica and survives the coordinator's
//! broker. The write is refused unless this broker still leads the partition at the epoch the
//! coordinator loaded it at: a deposed coordinator must never write.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_replica::{AppendOrigin, PartitionError, RequiredAcks};
use shoal_txn::TRANSACTION_STATE_TOPIC;

use crate::blocking::run_blocking;
use crate::groups::storage::encode_batch;
use crate::replica_manager::ReplicaManager;
use crate::time::wall_ms;

/// Longest a write waits for replication (Kafka's `transaction.state.log` writes wait for the
/// request timeout; a client retries EndTxn and friends after CONCURRENT_TRANSACTIONS).
const MAX_REPLICATION_WAIT: Duration = Duration::from_secs(30);

/// Why a write did not happen, as the coordinator answers it (Kafka's
/// `TransactionStateManager.appendTransactionToLog` mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Leadership moved (NOT_COORDINATOR).
    NotCoordinator,
    /// Too few replicas or timed out (COORDINATOR_NOT_AVAILABLE, retriable).
    NotAvailable,
    /// Anything else (UNKNOWN_SERVER_ERROR).
    Other(String),
}

pub struct TxnStateStorage {
    replicas: Arc<ReplicaManager>,
}

impl TxnStateStorage {
    pub fn new(replicas: Arc<ReplicaManager>) -> Self {
        Self { replicas }
    }

    /// Appends one record to `partition`, led here at `coordinator_epoch`, and waits until it is
    /// replicated.
    pub async fn append(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> Result<(), WriteError> {
        let image = self.replicas.image();
        let topic = image
            .topic_by_name(TRANSACTION_STATE_TOPIC)
            .ok_or(WriteError::NotCoordinator)?;
        let log = self
            .replicas
            .partition(topic.id, partition)
            .ok_or(WriteError::NotCoordinator)?;
        if !log.is_leader() || log.leader_epoch() != coordinator_epoch {
            return Err(WriteError::NotCoordinator);
        }
        let now = wall_ms();
        let batch = encode_batch(&[(Bytes::from(key), value.map(Bytes::from))], now)
            .map_err(WriteError::Other)?;
        // A state record is small: written on this thread when that is only a page-cache
        // write, else on a blocking thread.
        let light = log.try_append_as_leader_in_epoch_light(
            &batch,
            RequiredAcks::AllInSync,
            now,
            AppendOrigin::COORDINATOR,
            coordinator_epoch,
        );
        let appended = match light {
            Some(appended) => appended.map_err(write_error)?,
            None => {
                let log = Arc::clone(&log);
                run_blocking(move || {
                    log.append_as_leader_in_epoch(
                        &batch,
                        RequiredAcks::AllInSync,
                        now,
                        AppendOrigin::COORDINATOR,
                        coordinator_epoch,
                    )
                })
                .await
                .ok_or_else(|| WriteError::Other("the append task failed".to_string()))?
                .map_err(write_error)?
            }
        };
        log.wait_for_acks_in_epoch(
            appended.info.last_offset + 1,
            appended.leader_epoch,
            MAX_REPLICATION_WAIT,
        )
        .await
        .map_err(write_error)
    }
}

fn write_error(error: PartitionError) -> WriteError {
    match error {
        PartitionError::NotLeaderOrFollower
        | PartitionError::Closed
        | PartitionError::FencedLeaderEpoch => WriteError::NotCoordinator,
        PartitionError::NotEnoughReplicas { .. }
        | PartitionError::NotEnoughReplicasAfterAppend
        | PartitionError::RequestTimedOut => WriteError::NotAvailable,
        other => WriteError::Other(other.to_string()),
    }
}
