//! InitProducerId: a producer id for an idempotent or transactional producer.
//!
//! Without a transactional id Kafka always answers with a new id at epoch 0 (also when a
//! producer asks to bump the epoch of its old id, KIP-360), and so does Shoal. With one, the
//! transactional id's coordinator answers: the id's producer id with its epoch bumped, which
//! fences every older instance of the producer ("zombies"); an open transaction of the previous
//! instance is aborted first (the client is told CONCURRENT_TRANSACTIONS and retries). v3+
//! clients name the producer id and epoch they had, so a producer fenced or forgotten can
//! recover its id (KIP-360).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};
use shoal_kafka::{Reply, RequestContext};
use shoal_txn::error::TxnApi;
use shoal_txn::metadata::ProducerIdAndEpoch;

use crate::Broker;
use crate::authorization::CLUSTER_NAME;
use crate::error_codes::controller_error_code;
use crate::transactions::CoordError;
use shoal_acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> Reply {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.as_str());
    if transactional_id == Some("") {
        // Kafka's coordinator: an empty (not null) transactional id is an invalid request,
        // after the WRITE check on it.
        let code = if broker.authorization.allowed(
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            "",
        ) {
            ResponseError::InvalidRequest.code()
        } else {
            ResponseError::TransactionalIdAuthorizationFailed.code()
        };
        return Reply::Ready(ResponseKind::InitProducerId(response.with_error_code(code)));
    }
    if let Some(transactional_id) = transactional_id {
        return Reply::Ready(ResponseKind::InitProducerId(
            transactional(broker, ctx, &request, transactional_id, response).await,
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

async fn transactional(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: &InitProducerIdRequest,
    transactional_id: &str,
    response: InitProducerIdResponse,
) -> InitProducerIdResponse {
    if !broker.authorization.allowed(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let expected = if ctx.api_version >= 3 {
        match ProducerIdAndEpoch::from_init_request(request.producer_id.0, request.producer_epoch) {
            Ok(expected) => expected,
            Err(error) => return response.with_error_code(error.code()),
        }
    } else {
        None
    };
    let answer = broker
        .transactions
        .coordinator
        .init_producer_id(transactional_id, request.transaction_timeout_ms, expected)
        .await;
    match answer {
        Ok((producer_id, producer_epoch)) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        Err(error) => {
            let error = match error {
                CoordError::Txn(e) => {
                    CoordError::Txn(e.for_client(TxnApi::InitProducerId, ctx.api_version))
                }
                other => other,
            };
            tracing::debug!(transactional_id, ?error, "InitProducerId refused");
            response.with_error_code(error.code())
        }
    }
}
