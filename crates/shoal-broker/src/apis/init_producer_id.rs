//! InitProducerId: a fresh producer id for an idempotent producer.
//!
//! Without a transactional id Kafka always answers with a new id at epoch 0 (also when a
//! producer asks to bump the epoch of its old id, KIP-360), and so does Shoal. Transactions are
//! not supported in this version: a transactional id is refused with a fatal error so the
//! client stops rather than retrying.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::authorization::CLUSTER_NAME;
use crate::error_codes::controller_error_code;
use shoal_acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> Reply {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        return Reply::Ready(ResponseKind::InitProducerId(
            response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
        ));
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
    // (Kafka 3.0+, KIP-679).
    let authorization = &broker.authorization;
    if !authorization.allowed_quietly(
        ctx,
        Operation::IdempotentWrite,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) && !authorization.allowed_on_any(ctx, Operation::Write, ResourceType::Topic)
    {
        return Reply::Ready(ResponseKind::InitProducerId(
            response.with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        ));
    }
    let response = match broker.producer_ids.next_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::warn!(%error, "cannot allocate a producer id");
            response.with_error_code(controller_error_code(&error))
        }
    };
    Reply::Ready(ResponseKind::InitProducerId(response))
}
