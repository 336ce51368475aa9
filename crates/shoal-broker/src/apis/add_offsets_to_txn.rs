//! AddOffsetsToTxn: a consumer group's offsets partition joins the producer's transaction, so
//! the offsets it commits with TxnOffsetCommit become visible exactly when the transaction
//! commits (Kafka's `sendOffsetsToTransaction`). Needs WRITE on the transactional id and READ on
//! the group.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_group::OFFSETS_TOPIC;
use shoal_kafka::{Reply, RequestContext};
use shoal_txn::TransactionVersion;
use shoal_txn::error::TxnApi;

use crate::Broker;
use crate::transactions::CoordError;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> Reply {
    let transactional_id = request.transactional_id.0.as_str();
    let group_id = request.group_id.0.as_str();
    let code = if !broker.authorization.allowed(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        ResponseError::TransactionalIdAuthorizationFailed.code()
    } else if !broker
        .authorization
        .allowed(ctx, Operation::Read, ResourceType::Group, group_id)
    {
        ResponseError::GroupAuthorizationFailed.code()
    } else {
        let offsets_partitions = broker
            .image()
            .topic_by_name(OFFSETS_TOPIC)
            .map_or(broker.groups.config.offsets_topic.num_partitions, |t| {
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
            });
        let partition = shoal_group::coordinator_key::partition_for(group_id, offsets_partitions);
        let partitions = BTreeSet::from([(OFFSETS_TOPIC.to_string(), partition)]);
        // AddOffsetsToTxn has no KIP-890 form: its transactions are the classic protocol's.
        match broker
            .transactions
            .coordinator
            .add_partitions(
                transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                &partitions,
                TransactionVersion::Tv0,
            )
            .await
        {
            Ok(()) => 0,
            Err(CoordError::Txn(e)) => e
                .for_client(TxnApi::AddOffsetsToTxn, ctx.api_version)
                .code(),
            Err(other) => other.code(),
        }
    };
    Reply::Ready(ResponseKind::AddOffsetsToTxn(
        AddOffsetsToTxnResponse::default().with_error_code(code),
    ))
}
