//! AddPartitionsToTxn: partitions join a producer's open transaction before it writes to them.
//!
//! v0–3 are the client's request (one transactional id). v4+ (KIP-890) are Kafka's
//! broker-to-coordinator form: a batch of transactional ids, each either adding partitions or
//! only verifying that they are in the transaction (`verify_only`), and it needs CLUSTER_ACTION.
//! Shoal's own leaders verify over the replication listener (`transactions::verifier`); the v4+
//! form is answered for Kafka's tools and brokers all the same.
//!
//! Per partition, as Kafka answers: TRANSACTIONAL_ID_AUTHORIZATION_FAILED without WRITE on the
//! transactional id; TOPIC_AUTHORIZATION_FAILED for internal topics and topics without WRITE,
//! and OPERATION_NOT_ATTEMPTED for the rest; then UNKNOWN_TOPIC_OR_PARTITION for partitions that do
//! not exist and OPERATION_NOT_ATTEMPTED for the rest; else the coordinator's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::topic_name::is_internal;
use shoal_txn::error::TxnApi;
use shoal_txn::metadata::{TopicPartition, reject_unknown_partitions};
use shoal_txn::{TransactionVersion, TxnError};

use crate::Broker;
use crate::apis::topic_name;
use crate::authorization::CLUSTER_NAME;
use crate::transactions::CoordError;

/// Most partitions one transaction of one request may name.
pub(crate) const MAX_PARTITIONS_PER_REQUEST: usize = 100_000;
/// Most transactions one v4+ request may carry.
const MAX_TRANSACTIONS_PER_REQUEST: usize = 10_000;

/// One transaction of a request, as decoded.
struct TxnPartitions<'a> {
    transactional_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &'a [AddPartitionsToTxnTopic],
    verify_only: bool,
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> Reply {
    let version = ctx.api_version;
    let client_version = TransactionVersion::for_add_partitions(version);
    let mut response = AddPartitionsToTxnResponse::default();
    if version < 4 {
        let txn = TxnPartitions {
            transactional_id: request.v3_and_below_transactional_id.0.as_str(),
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            topics: &request.v3_and_below_topics,
            verify_only: false,
        };
        let results = one_transaction(broker, ctx, &txn, client_version, true).await;
        response.results_by_topic_v3_and_below = results;
        return Reply::Ready(ResponseKind::AddPartitionsToTxn(response));
    }
    if !broker.authorization.allowed(
        ctx,
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::Ready(ResponseKind::AddPartitionsToTxn(response));
    }
    if request.transactions.len() > MAX_TRANSACTIONS_PER_REQUEST {
        tracing::warn!(transactions = request.transactions.len(), client = ?ctx.client_id, "AddPartitionsToTxn with too many transactions refused");
        response.error_code = ResponseError::InvalidRequest.code();
        return Reply::Ready(ResponseKind::AddPartitionsToTxn(response));
    }
    for t in &request.transactions {
        let txn = TxnPartitions {
            transactional_id: t.transactional_id.0.as_str(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            topics: &t.topics,
            verify_only: t.verify_only,
        };
        let topic_results = one_transaction(broker, ctx, &txn, client_version, false).await;
        response.results_by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topic_results),
        );
    }
    Reply::Ready(ResponseKind::AddPartitionsToTxn(response))
}

async fn one_transaction(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    txn: &TxnPartitions<'_>,
    client_version: TransactionVersion,
    check_transactional_id: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let count: usize = txn.topics.iter().map(|t| t.partitions.len()).sum();
    let partitions: BTreeSet<TopicPartition> = txn
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.as_str().to_string(), *p))
        })
        .take(MAX_PARTITIONS_PER_REQUEST + 1)
        .collect();
    let all = |code: i16| -> BTreeMap<TopicPartition, i16> {
        partitions.iter().map(|tp| (tp.clone(), code)).collect()
    };
    if count > MAX_PARTITIONS_PER_REQUEST {
        tracing::warn!(partitions = count, client = ?ctx.client_id, "AddPartitionsToTxn with too many partitions refused");
        return topic_results(&all(ResponseError::InvalidRequest.code()));
    }
    if check_transactional_id
        && !broker.authorization.allowed(
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            txn.transactional_id,
        )
    {
        return topic_results(&all(
            ResponseError::TransactionalIdAuthorizationFailed.code()
        ));
    }
    if check_transactional_id {
        let unauthorized: BTreeSet<&str> = partitions
            .iter()
            .map(|(topic, _)| topic.as_str())
            // Internal topics are never a client's to write in a transaction (Kafka filters
            // them out before authorizing).
            .filter(|topic| {
                is_internal(topic)
                    || !broker.authorization.allowed(
                        ctx,
                        Operation::Write,
                        ResourceType::Topic,
                        topic,
                    )
            })
            .collect();
        if !unauthorized.is_empty() {
            let codes = partitions
                .iter()
                .map(|tp| {
                    let code = if unauthorized.contains(tp.0.as_str()) {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else {
                        ResponseError::OperationNotAttempted.code()
                    };
                    (tp.clone(), code)
                })
                .collect();
            return topic_results(&codes);
        }
    }
    let image = broker.image();
    let is_known = |(topic, partition): &TopicPartition| {
        image
            .topic_by_name(topic)
            .is_some_and(|t| t.partition(*partition).is_some())
    };
    if let Some(errors) = reject_unknown_partitions(&partitions, is_known) {
        let codes = errors.into_iter().map(|(tp, e)| (tp, e.code())).collect();
        return topic_results(&codes);
    }
    let coordinator = &broker.transactions.coordinator;
    let codes = if txn.verify_only {
        match coordinator.verify_partitions(
            txn.transactional_id,
            txn.producer_id,
            txn.producer_epoch,
            &partitions,
        ) {
            Ok(answers) => answers
                .into_iter()
                .map(|(tp, r)| (tp, r.map_or_else(TxnError::code, |()| 0)))
                .collect(),
            Err(error) => all(error.code()),
        }
    } else {
        match coordinator
            .add_partitions(
                txn.transactional_id,
                txn.producer_id,
                txn.producer_epoch,
                &partitions,
                client_version,
            )
            .await
        {
            Ok(()) => all(0),
            Err(error) => {
                let error = match error {
                    CoordError::Txn(e) => {
                        CoordError::Txn(e.for_client(TxnApi::AddPartitionsToTxn, ctx.api_version))
                    }
                    other => other,
                };
                tracing::debug!(
                    transactional_id = txn.transactional_id,
                    ?error,
                    "AddPartitionsToTxn refused"
                );
                all(error.code())
            }
        }
    };
    topic_results(&codes)
}

/// Per-partition codes grouped by topic, as the response carries them.
fn topic_results(codes: &BTreeMap<TopicPartition, i16>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut by_topic: BTreeMap<&str, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((topic, partition), code) in codes {
        by_topic.entry(topic.as_str()).or_default().push(
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(*partition)
                .with_partition_error_code(*code),
        );
    }
    by_topic
        .into_iter()
        .map(|(topic, results)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name(topic))
                .with_results_by_partition(results)
        })
        .collect()
}
