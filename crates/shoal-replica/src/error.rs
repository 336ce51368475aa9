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
    #[error("the partition is closed")]
    Closed,
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<crate::producer_state::SequenceError> for PartitionError {
    fn from(error: crate::producer_state::SequenceError) -> Self {
        use crate::producer_state::SequenceError;
        match error {
            SequenceError::InvalidProducerEpoch { current, got } => {
                Self::InvalidProducerEpoch { current, got }
            }
            SequenceError::OutOfOrderSequence { expected, got } => {
                Self::OutOfOrderSequence { expected, got }
            }
        }
    }
}
