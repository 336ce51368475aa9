//! DescribeTransactions (KIP-664): the state of transactional ids this broker coordinates, as
//! `kafka-transactions.sh describe` and the admin clients show it.
//!
//! Per id, as Kafka answers: TRANSACTIONAL_ID_AUTHORIZATION_FAILED without DESCRIBE on it;
//! NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS when this broker does not (yet) coordinate
//! it; TRANSACTIONAL_ID_NOT_FOUND for an id it does not know. The partitions of the transaction
//! are listed only for topics the caller may DESCRIBE.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes, topic_name};

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> Reply {
    let mut response = DescribeTransactionsResponse::default();
    if request.transactional_ids.len() > MAX_BATCH_ITEMS {
        tracing::warn!(ids = request.transactional_ids.len(), client = ?ctx.client_id, "DescribeTransactions with too many ids refused");
    }
    for (i, id) in request.transactional_ids.into_iter().enumerate() {
        let mut state = TransactionState::default()
            .with_transactional_id(id.clone())
            .with_transaction_state(str_bytes(""))
            .with_transaction_timeout_ms(0)
            .with_transaction_start_time_ms(-1)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let name = id.0.as_str();
        if i >= MAX_BATCH_ITEMS {
            state.error_code = ResponseError::InvalidRequest.code();
        } else if !broker.authorization.allowed(
            ctx,
            Operation::Describe,
            ResourceType::TransactionalId,
            name,
        ) {
            state.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        } else {
            match broker.transactions.coordinator.describe(name) {
                Err(error) => state.error_code = error.code(),
                Ok(meta) => {
                    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                    for (topic, partition) in &meta.partitions {
                        if broker.authorization.allowed_quietly(
                            ctx,
                            Operation::Describe,
                            ResourceType::Topic,
                            topic,
                        ) {
                            topics.entry(topic.as_str()).or_default().push(*partition);
                        }
                    }
                    state = state
                        .with_transaction_state(str_bytes(meta.state.name()))
                        .with_transaction_timeout_ms(meta.txn_timeout_ms)
                        .with_transaction_start_time_ms(meta.txn_start_timestamp_ms)
                        .with_producer_id(ProducerId(meta.producer_id))
                        .with_producer_epoch(meta.producer_epoch)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(topic, partitions)| {
                                    TopicData::default()
                                        .with_topic(topic_name(topic))
                                        .with_partitions(partitions)
                                })
                                .collect(),
                        );
                }
            }
        }
        response.transaction_states.push(state);
    }
    Reply::Ready(ResponseKind::DescribeTransactions(response))
}
