//! Routes each decoded Kafka request to its API module.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, RequestKind};
use shoal_kafka::{Handler, Reply, RequestContext, SupportedApis};

use crate::Broker;
use crate::apis;
use crate::quotas::request_time;

/// The APIs this broker answers, over Kafka 4.x's version ranges (clamped by the codec).
/// ApiVersions is answered by the protocol front itself.
/// The APIs `broker` serves: all of [`supported_apis`], but KIP-848's when
/// `group.coordinator.rebalance.protocols` leaves out `consumer` (clients then keep to the
/// classic protocol, as with Kafka).
pub fn served_apis(broker: &Broker) -> SupportedApis {
    let apis = supported_apis().with_features(broker.features.clone());
    if broker.groups.config.coordinator.consumer_protocol {
        apis
    } else {
        apis.without(ApiKey::ConsumerGroupHeartbeat)
            .without(ApiKey::ConsumerGroupDescribe)
    }
}

pub fn supported_apis() -> SupportedApis {
    SupportedApis::new(&[
        (ApiKey::Produce, 3, 13),
        (ApiKey::Fetch, 4, 18),
        (ApiKey::ListOffsets, 1, 10),
        (ApiKey::Metadata, 0, 13),
        (ApiKey::DescribeTopicPartitions, 0, 0),
        (ApiKey::CreateTopics, 2, 7),
        (ApiKey::DeleteTopics, 1, 6),
        (ApiKey::DeleteRecords, 0, 2),
        (ApiKey::DescribeConfigs, 1, 4),
        (ApiKey::CreatePartitions, 0, 3),
        (ApiKey::IncrementalAlterConfigs, 0, 1),
        (ApiKey::AlterConfigs, 0, 2),
        (ApiKey::DescribeCluster, 0, 2),
        // v0 as Kafka 4 (KIP-896): removed.
        (ApiKey::DescribeLogDirs, 1, 4),
        // v0 as Kafka 4 (KIP-896): removed.
        (ApiKey::AlterReplicaLogDirs, 1, 2),
        (ApiKey::InitProducerId, 0, 5),
        (ApiKey::AddPartitionsToTxn, 0, 5),
        (ApiKey::AddOffsetsToTxn, 0, 4),
        (ApiKey::EndTxn, 0, 5),
        (ApiKey::DescribeProducers, 0, 0),
        (ApiKey::DescribeTransactions, 0, 0),
        (ApiKey::ListTransactions, 0, 2),
        (ApiKey::WriteTxnMarkers, 1, 1),
        (ApiKey::TxnOffsetCommit, 0, 5),
        (ApiKey::OffsetForLeaderEpoch, 2, 4),
        (ApiKey::FindCoordinator, 0, 6),
        (ApiKey::JoinGroup, 0, 9),
        (ApiKey::SyncGroup, 0, 5),
        (ApiKey::Heartbeat, 0, 4),
        (ApiKey::LeaveGroup, 0, 5),
        (ApiKey::OffsetCommit, 2, 9),
        (ApiKey::OffsetFetch, 1, 9),
        (ApiKey::DescribeGroups, 0, 6),
        (ApiKey::ListGroups, 0, 5),
        (ApiKey::DeleteGroups, 0, 2),
        (ApiKey::OffsetDelete, 0, 0),
        (ApiKey::ConsumerGroupHeartbeat, 0, 1),
        (ApiKey::ConsumerGroupDescribe, 0, 1),
        (ApiKey::ElectLeaders, 0, 2),
        (ApiKey::UpdateFeatures, 0, 2),
        (ApiKey::AlterPartitionReassignments, 0, 1),
        (ApiKey::ListPartitionReassignments, 0, 0),
        (ApiKey::UnregisterBroker, 0, 0),
        (ApiKey::DescribeAcls, 1, 3),
        (ApiKey::CreateAcls, 1, 3),
        (ApiKey::DeleteAcls, 1, 3),
        (ApiKey::DescribeUserScramCredentials, 0, 0),
        (ApiKey::AlterUserScramCredentials, 0, 0),
        (ApiKey::DescribeClientQuotas, 0, 1),
        (ApiKey::AlterClientQuotas, 0, 1),
        // Advertised from v0 as Kafka 4 does (librdkafka enables SASL only then); a v0
        // handshake, which would carry raw tokens outside Kafka framing, closes the connection:
        // clients that know SaslAuthenticate send v1 (KIP-152).
        (ApiKey::SaslHandshake, 0, 1),
        (ApiKey::SaslAuthenticate, 0, 2),
    ])
}

#[derive(Clone)]
pub struct BrokerHandler {
    broker: Arc<Broker>,
}

impl BrokerHandler {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }
}

impl Handler for BrokerHandler {
    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Reply {
        let quotas = Some(self.broker.image()).filter(|image| {
            !image.client_quotas.is_empty() && !request_time::is_exempt(ctx.api_key)
        });
        let Some(image) = quotas else {
            return self.dispatch(&ctx, request).await;
        };
        // A request quota counts the time spent up to the reply (quotas/request_time.rs).
        let started = Instant::now();
        let reply = self.dispatch(&ctx, request).await;
        let throttle_ms = self.broker.client_quotas.request.record(
            &image.client_quotas,
            &ctx.principal.name,
            ctx.client_id.as_deref().unwrap_or(""),
            request_time::units(started.elapsed()),
        );
        if throttle_ms == 0 {
            return reply;
        }
        ctx.mute.mute_for(Duration::from_millis(throttle_ms));
        request_time::throttled(reply, i32::try_from(throttle_ms).unwrap_or(i32::MAX))
    }
}

impl BrokerHandler {
    async fn dispatch(&self, ctx: &RequestContext, request: RequestKind) -> Reply {
        let b = &self.broker;
        match request {
            RequestKind::Produce(r) => apis::produce::handle(b, ctx, r).await,
            RequestKind::Fetch(r) => apis::fetch::handle(b, ctx, r).await,
            RequestKind::ListOffsets(r) => apis::list_offsets::handle(b, ctx, r).await,
            RequestKind::Metadata(r) => apis::metadata::handle(b, ctx, r).await,
            RequestKind::DescribeTopicPartitions(r) => {
                apis::describe_topic_partitions::handle(b, ctx, r)
            }
            RequestKind::CreateTopics(r) => apis::create_topics::handle(b, ctx, r).await,
            RequestKind::DeleteTopics(r) => apis::delete_topics::handle(b, ctx, r).await,
            RequestKind::DeleteRecords(r) => apis::delete_records::handle(b, ctx, r).await,
            RequestKind::CreatePartitions(r) => apis::create_partitions::handle(b, ctx, r).await,
            RequestKind::DescribeConfigs(r) => apis::describe_configs::handle(b, ctx, r),
            RequestKind::AlterConfigs(r) => apis::alter_configs::handle(b, ctx, r).await,
            RequestKind::IncrementalAlterConfigs(r) => {
                apis::incremental_alter_configs::handle(b, ctx, r).await
            }
            RequestKind::DescribeCluster(r) => apis::describe_cluster::handle(b, ctx, r),
            RequestKind::DescribeLogDirs(r) => apis::describe_log_dirs::handle(b, ctx, r).await,
            RequestKind::AlterReplicaLogDirs(r) => apis::alter_replica_log_dirs::handle(b, ctx, r),
            RequestKind::InitProducerId(r) => apis::init_producer_id::handle(b, ctx, r).await,
            RequestKind::AddPartitionsToTxn(r) => {
                apis::add_partitions_to_txn::handle(b, ctx, r).await
            }
            RequestKind::AddOffsetsToTxn(r) => apis::add_offsets_to_txn::handle(b, ctx, r).await,
            RequestKind::EndTxn(r) => apis::end_txn::handle(b, ctx, r).await,
            RequestKind::DescribeProducers(r) => apis::describe_producers::handle(b, ctx, r).await,
            RequestKind::DescribeTransactions(r) => apis::describe_transactions::handle(b, ctx, r),
            RequestKind::ListTransactions(r) => apis::list_transactions::handle(b, ctx, r),
            RequestKind::WriteTxnMarkers(r) => apis::write_txn_markers::handle(b, ctx, r).await,
            RequestKind::TxnOffsetCommit(r) => apis::txn_offset_commit::handle(b, ctx, r).await,
            RequestKind::OffsetForLeaderEpoch(r) => {
                apis::offset_for_leader_epoch::handle(b, ctx, r)
            }
            RequestKind::FindCoordinator(r) => apis::find_coordinator::handle(b, ctx, r).await,
            RequestKind::JoinGroup(r) => apis::join_group::handle(b, ctx, r).await,
            RequestKind::SyncGroup(r) => apis::sync_group::handle(b, ctx, r).await,
            RequestKind::Heartbeat(r) => apis::heartbeat::handle(b, ctx, r).await,
            RequestKind::LeaveGroup(r) => apis::leave_group::handle(b, ctx, r).await,
            RequestKind::OffsetCommit(r) => apis::offset_commit::handle(b, ctx, r).await,
            RequestKind::OffsetFetch(r) => apis::offset_fetch::handle(b, ctx, r).await,
            RequestKind::DescribeGroups(r) => apis::describe_groups::handle(b, ctx, r).await,
            RequestKind::ListGroups(r) => apis::list_groups::handle(b, ctx, r).await,
            RequestKind::DeleteGroups(r) => apis::delete_groups::handle(b, ctx, r).await,
            RequestKind::OffsetDelete(r) => apis::offset_delete::handle(b, ctx, r).await,
            RequestKind::ConsumerGroupHeartbeat(r) => {
                apis::consumer_group_heartbeat::handle(b, ctx, r).await
            }
            RequestKind::ConsumerGroupDescribe(r) => {
                apis::consumer_group_describe::handle(b, ctx, r).await
            }
            RequestKind::ElectLeaders(r) => apis::elect_leaders::handle(b, ctx, r).await,
            RequestKind::UpdateFeatures(r) => apis::update_features::handle(b, ctx, r).await,
            RequestKind::AlterPartitionReassignments(r) => {
                apis::alter_partition_reassignments::handle(b, ctx, r).await
            }
            RequestKind::ListPartitionReassignments(r) => {
                apis::list_partition_reassignments::handle(b, ctx, r)
            }
            RequestKind::UnregisterBroker(r) => apis::unregister_broker::handle(b, ctx, r).await,
            RequestKind::DescribeAcls(r) => apis::describe_acls::handle(b, ctx, r),
            RequestKind::CreateAcls(r) => apis::create_acls::handle(b, ctx, r).await,
            RequestKind::DeleteAcls(r) => apis::delete_acls::handle(b, ctx, r).await,
            RequestKind::SaslHandshake(_) => apis::sasl::handshake(ctx),
            RequestKind::SaslAuthenticate(_) => apis::sasl::authenticate(ctx),
            RequestKind::DescribeUserScramCredentials(r) => {
                apis::describe_user_scram_credentials::handle(b, ctx, r)
            }
            RequestKind::DescribeClientQuotas(r) => apis::describe_client_quotas::handle(b, ctx, r),
            RequestKind::AlterClientQuotas(r) => apis::alter_client_quotas::handle(b, ctx, r).await,
            RequestKind::AlterUserScramCredentials(r) => {
                apis::alter_user_scram_credentials::handle(b, ctx, r).await
            }
            _ => {
                // The front passes only APIs from `supported_apis`, all matched above; reaching
                // here is a bug in that table. No response beats a wrongly typed one.
                debug_assert!(false, "unhandled API {:?}", ctx.api_key);
                tracing::error!(api = ?ctx.api_key, "request for an API the broker does not implement");
                Reply::NoResponse
            }
        }
    }
}
