//! ListTransactions (KIP-664): the transactional ids this broker coordinates, filtered by
//! state, producer id, how long the transaction has run (v1, KIP-994) and a regular expression
//! over the id (v2, KIP-1152). Admin clients ask every broker and merge the answers.
//!
//! Only ids the caller may DESCRIBE are listed, as in Kafka. A state name Kafka does not know
//! is echoed in `unknown_state_filters` and matches nothing. While any of this broker's
//! `__transaction_state` partitions is loading the answer is COORDINATOR_LOAD_IN_PROGRESS.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, ResponseKind, TransactionalId,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes};
use crate::time::wall_ms;

/// Longest id pattern accepted (bounds the regex compiler's work).
const MAX_PATTERN_BYTES: usize = 1_024;
/// Most ids one answer lists.
const MAX_LISTED: usize = 100_000;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> Reply {
    let mut response = ListTransactionsResponse::default();
    if request.state_filters.len() > MAX_BATCH_ITEMS
        || request.producer_id_filters.len() > MAX_BATCH_ITEMS
    {
        response.error_code = ResponseError::InvalidRequest.code();
        return Reply::Ready(ResponseKind::ListTransactions(response));
    }
    let mut states = Vec::new();
    for name in &request.state_filters {
        match shoal_txn::TransactionState::from_name(name.as_str()) {
            Some(state) => states.push(state),
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    let pattern = match request
        .transactional_id_pattern
        .as_ref()
        .map(|p| p.as_str())
    {
        None | Some("") => None,
        Some(p) if p.len() > MAX_PATTERN_BYTES => {
            response.error_code = ResponseError::InvalidRegularExpression.code();
            return Reply::Ready(ResponseKind::ListTransactions(response));
        }
        Some(p) => match regex::Regex::new(p) {
            Ok(re) => Some(re),
            Err(error) => {
                tracing::debug!(pattern = p, %error, "ListTransactions with an invalid pattern");
                response.error_code = ResponseError::InvalidRegularExpression.code();
                return Reply::Ready(ResponseKind::ListTransactions(response));
            }
        },
    };
    let coordinator = &broker.transactions.coordinator;
    if coordinator.is_loading() {
        response.error_code = ResponseError::CoordinatorLoadInProgress.code();
        return Reply::Ready(ResponseKind::ListTransactions(response));
    }
    let now = wall_ms();
    let some_state_filter_given = !request.state_filters.is_empty();
    for listing in coordinator.list() {
        let meta = &listing.metadata;
        if some_state_filter_given && !states.contains(&meta.state) {
            continue;
        }
        if !request.producer_id_filters.is_empty()
            && !request
                .producer_id_filters
                .iter()
                .any(|p| p.0 == meta.producer_id)
        {
            continue;
        }
        // v1: only transactions running for longer than the filter (-1: any).
        if request.duration_filter >= 0
            && (meta.txn_start_timestamp_ms < 0
                || now.saturating_sub(meta.txn_start_timestamp_ms) < request.duration_filter)
        {
            continue;
        }
        if pattern
            .as_ref()
            .is_some_and(|re| !re.is_match(&listing.transactional_id))
        {
            continue;
        }
        if !broker.authorization.allowed_quietly(
            ctx,
            Operation::Describe,
            ResourceType::TransactionalId,
            &listing.transactional_id,
        ) {
            continue;
        }
        if response.transaction_states.len() >= MAX_LISTED {
            tracing::warn!(limit = MAX_LISTED, "ListTransactions answer truncated");
            break;
        }
        response.transaction_states.push(
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&listing.transactional_id)))
                .with_producer_id(ProducerId(meta.producer_id))
                .with_transaction_state(str_bytes(meta.state.name())),
        );
    }
    Reply::Ready(ResponseKind::ListTransactions(response))
}
