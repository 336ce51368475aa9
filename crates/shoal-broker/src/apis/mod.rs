//! One module per Kafka API the broker answers; each turns a decoded request into a response.
//!
//! Handlers validate everything that came off the wire (names, counts, ids) before acting, and
//! answer per-item errors with Kafka codes rather than failing the whole request, as Kafka does.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub(crate) mod commit_plan;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod internal_topics;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod update_features;
pub mod write_txn_markers;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// Most protocols one JoinGroup member may offer (real consumers offer one to three).
pub(crate) const MAX_GROUP_PROTOCOLS: usize = 64;

/// Most groups or members one batched group request may name.
pub(crate) const MAX_BATCH_ITEMS: usize = 10_000;

/// The member's host as Kafka shows it ("/" + address).
pub(crate) fn client_host(ctx: &shoal_kafka::RequestContext) -> String {
    format!("/{}", ctx.peer.ip())
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Kafka's checks before a batched cluster-wide change (CreateAcls, DeleteAcls,
/// AlterUserScramCredentials): the ACL APIs need an authorizer (SECURITY_DISABLED), every one
/// needs `operation` on the cluster, and a request carries at most [`MAX_BATCH_ITEMS`] items.
/// The error answers every item of the request.
pub(crate) fn cluster_change_allowed(
    broker: &crate::Broker,
    ctx: &shoal_kafka::RequestContext,
    operation: shoal_acl::Operation,
    items: usize,
    needs_authorizer: bool,
) -> Result<(), (kafka_protocol::error::ResponseError, String)> {
    use kafka_protocol::error::ResponseError;
    if needs_authorizer && !broker.authorization.is_enabled() {
        return Err((
            ResponseError::SecurityDisabled,
            "No Authorizer is configured.".to_owned(),
        ));
    }
    if !broker.authorization.allowed_on_cluster(ctx, operation) {
        return Err((ResponseError::ClusterAuthorizationFailed, String::new()));
    }
    if items > MAX_BATCH_ITEMS {
        return Err((
            ResponseError::InvalidRequest,
            format!("A request may carry at most {MAX_BATCH_ITEMS} items."),
        ));
    }
    Ok(())
}

/// How long a batched cluster-wide change waits for its records to apply on this broker (the
/// requests carry no timeout).
const APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One item of a batched request whose valid items went to the controller in one call.
pub(crate) enum ItemOutcome<P, T, E> {
    /// It did not parse; the controller never saw it.
    Invalid(E),
    /// Committed (and applied here): the item and the controller's result.
    Done(P, T),
    /// The controller refused it.
    Refused(shoal_meta::ControllerError),
}

/// Sends the items that parsed to the controller in one call (`forward`), waits until its
/// records apply here, and pairs every item with its outcome, in request order.
pub(crate) async fn forward_valid<P: Clone, T, E>(
    broker: &crate::Broker,
    parsed: Vec<Result<P, E>>,
    forward: impl AsyncFnOnce(Vec<P>) -> shoal_meta::ControllerResults<T>,
) -> Vec<ItemOutcome<P, T, E>> {
    let valid: Vec<P> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let outcome = forward(valid).await;
    if let Some(index) = outcome.log_index {
        broker.wait_for_metadata(index, APPLY_TIMEOUT).await;
    }
    let mut committed = outcome.results.into_iter();
    parsed
        .into_iter()
        .map(|p| match p {
            Err(e) => ItemOutcome::Invalid(e),
            Ok(item) => match committed.next() {
                Some(Ok(value)) => ItemOutcome::Done(item, value),
                Some(Err(error)) => ItemOutcome::Refused(error),
                None => ItemOutcome::Refused(shoal_meta::ControllerError::Internal(
                    "no result for the item".to_owned(),
                )),
            },
        })
        .collect()
}

/// Kafka caps a request's wait so a client cannot park work forever.
pub(crate) fn bounded_timeout_ms(requested_ms: i32, max_ms: u64) -> u64 {
    u64::try_from(requested_ms.max(0)).unwrap_or(0).min(max_ms)
}
