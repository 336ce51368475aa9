//! One module per Kafka API the broker answers; each turns a decoded request into a response.
//!
//! Handlers validate everything that came off the wire (names, counts, ids) before acting, and
//! answer per-item errors with Kafka codes rather than failing the whole request, as Kafka does.

pub mod alter_user_scram_credentials;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
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
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl;
pub mod sync_group;

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

/// Kafka caps a request's wait so a client cannot park work forever.
pub(crate) fn bounded_timeout_ms(requested_ms: i32, max_ms: u64) -> u64 {
    u64::try_from(requested_ms.max(0)).unwrap_or(0).min(max_ms)
}
