//! EndTxn: commit or abort the producer's open transaction.
//!
//! The coordinator writes PrepareCommit or PrepareAbort and answers; the markers and the
//! complete state follow in the background (see `transactions::coordinator`), and until they
//! are written the next request on the transactional id answers CONCURRENT_TRANSACTIONS, which
//! clients retry. v5+ (KIP-890 part 2) clients get the producer id and epoch to use next: every
//! transaction ends with an epoch bump, which fences any write of the old one.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_txn::TransactionVersion;
use shoal_txn::error::TxnApi;
use shoal_txn::metadata::TxnResult;

use crate::Broker;
use crate::transactions::CoordError;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: EndTxnRequest) -> Reply {
    let transactional_id = request.transactional_id.0.as_str();
    let mut response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if !broker.authorization.allowed(
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return Reply::Ready(ResponseKind::EndTxn(response));
    }
    let result = if request.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    let client_version = TransactionVersion::for_end_txn(ctx.api_version);
    match broker
        .transactions
        .coordinator
        .end_txn(
            transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            result,
            client_version,
        )
        .await
    {
        Ok((producer_id, producer_epoch)) => {
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = producer_epoch;
        }
        Err(error) => {
            let error = match error {
                CoordError::Txn(e) => {
                    CoordError::Txn(e.for_client(TxnApi::EndTxn, ctx.api_version))
                }
                other => other,
            };
            tracing::debug!(
                transactional_id,
                ?error,
                committed = request.committed,
                "EndTxn refused"
            );
            response.error_code = error.code();
        }
    }
    Reply::Ready(ResponseKind::EndTxn(response))
}
