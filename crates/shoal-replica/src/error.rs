use shoal_log::LogError;

/// Why a partition refused a request; the broker maps each to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("this broker is not the leader of the partition")]
    NotLeaderOrFollower,
    #[error("the in-sync replica set has {isr} members, fewer than min.insync.replicas={min}")]
    NotEnoughReplicas { isr: usize, min: usize },
    #[error("the in-sync replica set shrank below min.insync.replicas after the append")]
    NotEnoughReplicasAfterAppend,
    #[error("the request's leader epoch is older than the partition's")]
    FencedLeaderEpoch,
    #[error("the request's leader epoch is newer than the partition's")]
    UnknownLeaderEpoch,
    #[error(
        "the new leader's high watermark {high_watermark} is behind the start of its epoch at {epoch_start_offset}"
    )]
    OffsetNotAvailable {
        high_watermark: i64,
        epoch_start_offset: i64,
    },
    #[error("timed out waiting for replication")]
    RequestTimedOut,
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { current: i16, got: i16 },
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    /// INVALID_TXN_STATE: a non-transactional write while the producer's transaction is open
    /// here, or a transactional one that opens a transaction without a current verification.
    #[error("the write does not fit the producer's transaction state")]
    InvalidTxnState,
    /// TRANSACTION_COORDINATOR_FENCED: a marker from an older coordinator than one that wrote.
    #[error("coordinator epoch {got} is older than the current coordinator epoch {current}")]
    TransactionCoordinatorFenced { current: i32, got: i32 },
    #[error("the partition is closed")]
    Closed,
    /// POLICY_VIOLATION: DeleteRecords on a topic whose cleanup.policy lacks delete.
    #[error("records of this partition cannot be deleted: its cleanup.policy is not delete")]
    PolicyViolation,
    #[error(transparent)]
    Log(#[from] LogError),
}
