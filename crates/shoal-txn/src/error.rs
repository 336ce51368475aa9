//! The Kafka error codes the transaction coordinator answers with.

use std::fmt;

/// A transaction API outcome other than success, by Kafka's name; [`TxnError::code`] is the
/// wire value (Kafka's `Errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnError {
    /// The coordinator's own state is inconsistent (Kafka throws `IllegalStateException` here,
    /// which reaches the client as UNKNOWN_SERVER_ERROR). Never the client's fault.
    UnknownServerError,
    UnknownTopicOrPartition,
    InvalidRequest,
    /// Answered to clients too old to know PRODUCER_FENCED; see [`TxnError::for_client`].
    InvalidProducerEpoch,
    InvalidTxnState,
    InvalidProducerIdMapping,
    InvalidTransactionTimeout,
    ConcurrentTransactions,
    OperationNotAttempted,
    ProducerFenced,
    TransactionalIdNotFound,
    TransactionAbortable,
}

impl TxnError {
    pub fn code(self) -> i16 {
        match self {
            TxnError::UnknownServerError => -1,
            TxnError::UnknownTopicOrPartition => 3,
            TxnError::InvalidRequest => 42,
            TxnError::InvalidProducerEpoch => 47,
            TxnError::InvalidTxnState => 48,
            TxnError::InvalidProducerIdMapping => 49,
            TxnError::InvalidTransactionTimeout => 50,
            TxnError::ConcurrentTransactions => 51,
            TxnError::OperationNotAttempted => 55,
            TxnError::ProducerFenced => 90,
            TxnError::TransactionalIdNotFound => 105,
            TxnError::TransactionAbortable => 120,
        }
    }

    /// Kafka's name, as its tools and logs print it.
    pub fn name(self) -> &'static str {
        match self {
            TxnError::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            TxnError::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            TxnError::InvalidRequest => "INVALID_REQUEST",
            TxnError::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            TxnError::InvalidTxnState => "INVALID_TXN_STATE",
            TxnError::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            TxnError::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            TxnError::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            TxnError::OperationNotAttempted => "OPERATION_NOT_ATTEMPTED",
            TxnError::ProducerFenced => "PRODUCER_FENCED",
            TxnError::TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND",
            TxnError::TransactionAbortable => "TRANSACTION_ABORTABLE",
        }
    }

    /// PRODUCER_FENCED (KIP-588) is only understood by clients sending InitProducerId v4+,
    /// AddPartitionsToTxn v2+, AddOffsetsToTxn v2+ and EndTxn v2+; older ones get
    /// INVALID_PRODUCER_EPOCH, which they handle the same way (Kafka's `KafkaApis`).
    pub fn for_client(self, api: TxnApi, request_version: i16) -> TxnError {
        let first_version_with_fenced = match api {
            TxnApi::InitProducerId => 4,
            TxnApi::AddPartitionsToTxn | TxnApi::AddOffsetsToTxn | TxnApi::EndTxn => 2,
        };
        if self == TxnError::ProducerFenced && request_version < first_version_with_fenced {
            TxnError::InvalidProducerEpoch
        } else {
            self
        }
    }
}

/// The coordinator APIs whose errors depend on the request version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnApi {
    InitProducerId,
    AddPartitionsToTxn,
    AddOffsetsToTxn,
    EndTxn,
}

impl fmt::Display for TxnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for TxnError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        // Kafka's org.apache.kafka.common.protocol.Errors (also kafka-protocol's ResponseError).
        let table = [
            (TxnError::UnknownServerError, -1),
            (TxnError::UnknownTopicOrPartition, 3),
            (TxnError::InvalidRequest, 42),
            (TxnError::InvalidProducerEpoch, 47),
            (TxnError::InvalidTxnState, 48),
            (TxnError::InvalidProducerIdMapping, 49),
            (TxnError::InvalidTransactionTimeout, 50),
            (TxnError::ConcurrentTransactions, 51),
            (TxnError::OperationNotAttempted, 55),
            (TxnError::ProducerFenced, 90),
            (TxnError::TransactionalIdNotFound, 105),
            (TxnError::TransactionAbortable, 120),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn old_clients_get_invalid_producer_epoch_instead_of_fenced() {
        use TxnApi::*;
        let table = [
            (InitProducerId, 3, TxnError::InvalidProducerEpoch),
            (InitProducerId, 4, TxnError::ProducerFenced),
            (AddPartitionsToTxn, 1, TxnError::InvalidProducerEpoch),
            (AddPartitionsToTxn, 2, TxnError::ProducerFenced),
            (AddOffsetsToTxn, 1, TxnError::InvalidProducerEpoch),
            (AddOffsetsToTxn, 2, TxnError::ProducerFenced),
            (EndTxn, 1, TxnError::InvalidProducerEpoch),
            (EndTxn, 5, TxnError::ProducerFenced),
        ];
        for (api, version, expected) in table {
            assert_eq!(
                TxnError::ProducerFenced.for_client(api, version),
                expected,
                "{api:?} v{version}"
            );
        }
        assert_eq!(
            TxnError::ConcurrentTransactions.for_client(EndTxn, 0),
            TxnError::ConcurrentTransactions
        );
    }
}
