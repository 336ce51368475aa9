//! Internal errors → Kafka error codes.
//!
//! Clients decide whether to retry, refresh metadata or give up from the code alone, so the
//! mapping is part of the protocol contract: it lives in one place and is tested.

use kafka_protocol::ResponseError;
use shoal_log::LogError;
use shoal_meta::ControllerError;
use shoal_replica::PartitionError;

pub const NONE: i16 = 0;

pub fn code(error: ResponseError) -> i16 {
    error.code()
}

pub fn log_error_code(error: &LogError) -> i16 {
    match error {
        LogError::CorruptRecord(_) => ResponseError::CorruptMessage.code(),
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord.code(),
        LogError::RecordTooLarge { .. } | LogError::DecompressedTooLarge { .. } => {
            ResponseError::MessageTooLarge.code()
        }
        LogError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp.code(),
        LogError::UnsupportedCompressionType(_) => ResponseError::UnsupportedCompressionType.code(),
        LogError::RecordErrors { error, .. } => log_error_code(error),
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        _ => ResponseError::KafkaStorageError.code(),
    }
}

pub fn partition_error_code(error: &PartitionError) -> i16 {
    match error {
        PartitionError::NotLeaderOrFollower | PartitionError::Closed => {
            ResponseError::NotLeaderOrFollower.code()
        }
        PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
        PartitionError::NotEnoughReplicasAfterAppend => {
            ResponseError::NotEnoughReplicasAfterAppend.code()
        }
        PartitionError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch.code(),
        PartitionError::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch.code(),
        PartitionError::RequestTimedOut => ResponseError::RequestTimedOut.code(),
        PartitionError::OffsetNotAvailable { .. } => ResponseError::OffsetNotAvailable.code(),
        PartitionError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
        PartitionError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
        PartitionError::InvalidTxnState => ResponseError::InvalidTxnState.code(),
        PartitionError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced.code()
        }
        PartitionError::PolicyViolation => ResponseError::PolicyViolation.code(),
        PartitionError::Log(log) => log_error_code(log),
    }
}

pub fn controller_error_code(error: &ControllerError) -> i16 {
    match error {
        ControllerError::TopicAlreadyExists(..) => ResponseError::TopicAlreadyExists.code(),
        ControllerError::UnknownTopicOrPartition(..) => {
            ResponseError::UnknownTopicOrPartition.code()
        }
        ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException.code(),
        ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
        ControllerError::InvalidReplicationFactor(_) => {
            ResponseError::InvalidReplicationFactor.code()
        }
        ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
        ControllerError::InvalidRequest(_) => ResponseError::InvalidRequest.code(),
        ControllerError::PolicyViolation(_) => ResponseError::PolicyViolation.code(),
        ControllerError::InvalidReplicaAssignment(_) => {
            ResponseError::InvalidReplicaAssignment.code()
        }
        ControllerError::UnknownTopicId(_) => ResponseError::UnknownTopicId.code(),
        ControllerError::NotController { .. } => ResponseError::NotController.code(),
        ControllerError::RequestTimedOut => ResponseError::RequestTimedOut.code(),
        ControllerError::ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded.code(),
        ControllerError::PreferredLeaderNotAvailable(_) => {
            ResponseError::PreferredLeaderNotAvailable.code()
        }
        ControllerError::EligibleLeadersNotAvailable(_) => {
            ResponseError::EligibleLeadersNotAvailable.code()
        }
        ControllerError::UnsupportedVersion(_) => ResponseError::UnsupportedVersion.code(),
        ControllerError::ResourceNotFound(_) => ResponseError::ResourceNotFound.code(),
        ControllerError::UnacceptableCredential(_) => ResponseError::UnacceptableCredential.code(),
        ControllerError::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion.code(),
        ControllerError::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered.code(),
        ControllerError::NoReassignmentInProgress(_) => {
            ResponseError::NoReassignmentInProgress.code()
        }
        ControllerError::Internal(_) => ResponseError::UnknownServerError.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_partition_errors_keep_their_kafka_codes() {
        assert_eq!(
            partition_error_code(&PartitionError::NotLeaderOrFollower),
            6
        );
        assert_eq!(
            partition_error_code(&PartitionError::NotEnoughReplicas { isr: 1, min: 2 }),
            19
        );
        assert_eq!(
            partition_error_code(&PartitionError::NotEnoughReplicasAfterAppend),
            20
        );
        assert_eq!(partition_error_code(&PartitionError::FencedLeaderEpoch), 74);
        assert_eq!(
            partition_error_code(&PartitionError::UnknownLeaderEpoch),
            75
        );
        assert_eq!(partition_error_code(&PartitionError::RequestTimedOut), 7);
        assert_eq!(
            partition_error_code(&PartitionError::OffsetNotAvailable {
                high_watermark: 1,
                epoch_start_offset: 2
            }),
            78
        );
    }

    #[test]
    fn transaction_errors_keep_their_kafka_codes() {
        assert_eq!(partition_error_code(&PartitionError::InvalidTxnState), 48);
        assert_eq!(
            partition_error_code(&PartitionError::TransactionCoordinatorFenced {
                current: 2,
                got: 1
            }),
            52
        );
    }

    #[test]
    fn append_validation_errors_keep_their_kafka_codes() {
        let cases = [
            (LogError::InvalidTimestamp("late".into()), 32),
            (
                LogError::DecompressedTooLarge {
                    codec: 4,
                    limit_bytes: 10,
                },
                10,
            ),
            (
                LogError::RecordTooLarge {
                    size_bytes: 11,
                    max_message_bytes: 10,
                },
                10,
            ),
            (LogError::CorruptRecord("crc".into()), 2),
            (LogError::InvalidRecord("count".into()), 87),
            (LogError::UnsupportedCompressionType("id 6".into()), 76),
            (
                LogError::RecordErrors {
                    error: Box::new(LogError::InvalidRecord("no key".into())),
                    record_errors: Vec::new(),
                },
                87,
            ),
            (
                LogError::RecordErrors {
                    error: Box::new(LogError::InvalidTimestamp("late".into())),
                    record_errors: Vec::new(),
                },
                32,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(log_error_code(&error), code, "{error}");
        }
    }
}
