//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets inside its
//! transaction (Kafka's `sendOffsetsToTransaction`, after AddOffsetsToTxn put the group's
//! offsets partition in the transaction). The offsets are written to `__consumer_offsets` as
//! the producer's transactional batch and stay invisible until the transaction's commit marker
//! lands there; an abort drops them (see `shoal_group::txn_offsets`).
//!
//! Checks, in Kafka's order (`handleTxnOffsetCommitRequest`): WRITE on the transactional id,
//! else every partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED; READ on the group, else
//! GROUP_AUTHORIZATION_FAILED; then READ on each topic (TOPIC_AUTHORIZATION_FAILED for its
//! partitions, before the existence check so a denied client learns nothing), and a topic or
//! partition the metadata does not know answers UNKNOWN_TOPIC_OR_PARTITION while the others are
//! committed. The coordinator checks the group (KIP-447: a named member or generation as
//! OffsetCommit does; an unknown group is created empty when no generation is given) and
//! answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS per partition.
//!
//! With `transaction.partition.verification.enable` (KIP-890) the transaction coordinator is
//! asked first whether the offsets partition is in the producer's open transaction: a commit
//! arriving after its transaction ended would otherwise leave offsets no marker ever decides.
//! Not in it: INVALID_TXN_STATE; coordinator away: COORDINATOR_NOT_AVAILABLE (retried). The
//! append carries the partition's verification guard, as a transactional Produce does. v5+
//! is transaction version 2 (KIP-890 part 2): the client sent no AddOffsetsToTxn, and the same
//! question adds the offsets partition to its transaction.
//!
//! Bounds: a request names at most [`MAX_PENDING_TXN_OFFSETS`] partitions (more could never be
//! pending for one producer), else every partition answers INVALID_COMMIT_OFFSET_SIZE.

use std::collections::BTreeSet;

/// The first TxnOffsetCommit version of transaction-version-2 clients (KIP-890 part 2).
const TXN_OFFSET_COMMIT_TRANSACTION_V2_MIN_VERSION: i16 = 5;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ResponseKind, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use shoal_acl::{Operation, ResourceType};
use shoal_group::txn_offsets::MAX_PENDING_TXN_OFFSETS;
use shoal_group::{OFFSETS_TOPIC, TxnCommit, TxnProducer};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::commit_plan::{self, AskedPartition};
use crate::blocking::run_blocking;
use crate::transactions::TxnPartitionCheck;
use crate::transactions::verifier::client_code_for_verification_error;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> Reply {
    let code = request_error(broker, ctx, &request);
    if code != 0 {
        return ready(every_partition(request, code));
    }
    let version = ctx.api_version;
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let asked = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|p| {
            let epoch = (version >= 2).then_some(p.committed_leader_epoch);
            let metadata = p.committed_metadata.as_ref().map(|m| m.as_str());
            AskedPartition::new(p.partition_index, p.committed_offset, epoch, metadata)
        });
        (topic.name.0.to_string(), partitions.collect())
    });
    let mut plan = commit_plan::plan(broker, ctx, asked, None);
    if !plan.offsets.is_empty() {
        let offsets = std::mem::take(&mut plan.offsets);
        let group_id = request.group_id.0.as_str();
        let producer = TxnProducer {
            producer_id: request.producer_id.0,
            producer_epoch: request.producer_epoch,
        };
        let verified = verify(
            broker,
            request.transactional_id.0.as_str(),
            group_id,
            producer,
            version >= TXN_OFFSET_COMMIT_TRANSACTION_V2_MIN_VERSION,
        )
        .await;
        let results = match verified {
            Err(code) => vec![code; offsets.len()],
            Ok(verification) => {
                // Members and generations are v3+ (KIP-447); older producers send neither.
                let txn = if version >= 3 {
                    TxnCommit {
                        producer,
                        verification,
                        generation_id: request.generation_id,
                        member_id: request.member_id.to_string(),
                        instance_id: request.group_instance_id.map(|s| s.to_string()),
                    }
                } else {
                    TxnCommit {
                        producer,
                        verification,
                        generation_id: -1,
                        member_id: String::new(),
                        instance_id: None,
                    }
                };
                broker
                    .groups
                    .coordinator
                    .txn_commit(group_id, txn, offsets)
                    .await
                    .into_iter()
                    .map(|e| e.code())
                    .collect()
            }
        };
        plan.answered(results);
    }
    let topics = plan.respond(
        names,
        |name, partitions| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
        |index, code| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        },
    );
    ready(TxnOffsetCommitResponse::default().with_topics(topics))
}

fn ready(response: TxnOffsetCommitResponse) -> Reply {
    Reply::Ready(ResponseKind::TxnOffsetCommit(response))
}

/// The error every partition of the request answers, if any (0 = none).
fn request_error(broker: &Broker, ctx: &RequestContext, request: &TxnOffsetCommitRequest) -> i16 {
    if !broker.authorization.allowed(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.0.as_str(),
    ) {
        return ResponseError::TransactionalIdAuthorizationFailed.code();
    }
    if !broker.authorization.allowed(
        ctx,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return ResponseError::GroupAuthorizationFailed.code();
    }
    let partitions: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
    if partitions > MAX_PENDING_TXN_OFFSETS {
        tracing::warn!(
            partitions,
            limit = MAX_PENDING_TXN_OFFSETS,
            group = request.group_id.0.as_str(),
            "TxnOffsetCommit with too many partitions refused"
        );
        return ResponseError::InvalidCommitOffsetSize.code();
    }
    // No producer: there is no transaction for a marker to end.
    if request.producer_id.0 < 0 || request.producer_epoch < 0 {
        return ResponseError::InvalidProducerIdMapping.code();
    }
    0
}

/// KIP-890: whether the group's offsets partition is in the producer's open transaction, asked
/// of the transactional id's coordinator when verification is on, the group's partition is led
/// here and the producer has no transaction open on it yet (else the group coordinator's own
/// answer comes first). The guard is taken from the partition *before* the question, so an
/// abort marker written meanwhile spends it and the write is refused (Kafka's ABA rule).
/// `Ok(guard)`: the guard the write must carry (`None`: no check needed). `Err`: the code every
/// partition gets. `supports_epoch_bump` (v5+, transaction version 2): the client sent no
/// AddOffsetsToTxn, and the question adds the partition to its transaction, verification on or
/// off.
async fn verify(
    broker: &Broker,
    transactional_id: &str,
    group_id: &str,
    producer: TxnProducer,
    supports_epoch_bump: bool,
) -> Result<Option<u64>, i16> {
    let groups = &broker.groups.coordinator;
    let check = TxnPartitionCheck::for_request(supports_epoch_bump);
    let asks = supports_epoch_bump
        || broker
            .transactions
            .coordinator
            .config()
            .verification_enabled;
    if !asks || !groups.coordinates(group_id) {
        return Ok(None);
    }
    let partition_index = groups.partition_for(group_id);
    let Some(partition) = broker
        .image()
        .topic_by_name(OFFSETS_TOPIC)
        .and_then(|t| broker.replicas.partition(t.id, partition_index))
    else {
        return Ok(None);
    };
    // The guard locks the partition's state, which an append holds across its disk write.
    let guard = run_blocking(move || {
        // The group coordinator writes the offsets: no sequence (Kafka's NO_SEQUENCE).
        partition.txn_verification_needed(
            producer.producer_id,
            producer.producer_epoch,
            supports_epoch_bump,
            shoal_log::control::NO_SEQUENCE,
        )
    })
    .await
    .flatten();
    let Some(guard) = guard else {
        return Ok(None);
    };
    let offsets_partition = (OFFSETS_TOPIC.to_string(), partition_index);
    let partitions = BTreeSet::from([offsets_partition.clone()]);
    let answer = broker
        .transactions
        .verifier
        .verify(
            transactional_id,
            producer.producer_id,
            producer.producer_epoch,
            &partitions,
            check,
        )
        .await;
    let outcome = match answer {
        Ok(per_partition) => match per_partition.get(&offsets_partition) {
            Some(Ok(())) => Ok(Some(guard.to_raw())),
            // Not in the transaction: the offsets would wait for a marker that never comes.
            Some(Err(_)) | None => Err(ResponseError::InvalidTxnState.code()),
        },
        Err(code) => Err(client_code_for_verification_error(
            code,
            check,
            ResponseError::CoordinatorNotAvailable,
        )),
    };
    if let Err(code) = outcome {
        tracing::debug!(
            transactional_id,
            group = group_id,
            code,
            "transactional offset commit not verified"
        );
    }
    outcome
}

/// Kafka's `TxnOffsetCommitRequest.getErrorResponse`: `error` for every partition asked about.
fn every_partition(request: TxnOffsetCommitRequest, error: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(
        request
            .topics
            .into_iter()
            .map(|topic| failed_topic(topic, error))
            .collect(),
    )
}

/// `error` for each of `topic`'s partitions.
fn failed_topic(topic: TxnOffsetCommitRequestTopic, error: i16) -> TxnOffsetCommitResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(error)
        })
        .collect();
    TxnOffsetCommitResponseTopic::default()
        .with_name(topic.name)
        .with_partitions(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_errors_become_what_txn_offset_commit_clients_handle() {
        let cases = [
            (
                ResponseError::NotCoordinator,
                ResponseError::CoordinatorNotAvailable,
            ),
            (
                ResponseError::CoordinatorLoadInProgress,
                ResponseError::CoordinatorNotAvailable,
            ),
            (
                ResponseError::ConcurrentTransactions,
                ResponseError::CoordinatorNotAvailable,
            ),
            (
                ResponseError::ProducerFenced,
                ResponseError::InvalidProducerEpoch,
            ),
            (
                ResponseError::InvalidProducerIdMapping,
                ResponseError::InvalidProducerIdMapping,
            ),
            (
                ResponseError::InvalidTxnState,
                ResponseError::InvalidTxnState,
            ),
        ];
        for (from, to) in cases {
            assert_eq!(
                client_code_for_verification_error(
                    from.code(),
                    TxnPartitionCheck::Verify,
                    ResponseError::CoordinatorNotAvailable,
                ),
                to.code(),
                "{from:?}"
            );
            // A version-2 client retries CONCURRENT_TRANSACTIONS itself; the rest is the same.
            let v2 = if from == ResponseError::ConcurrentTransactions {
                from
            } else {
                to
            };
            assert_eq!(
                client_code_for_verification_error(
                    from.code(),
                    TxnPartitionCheck::Add,
                    ResponseError::CoordinatorNotAvailable,
                ),
                v2.code(),
                "{from:?}"
            );
        }
    }
}
