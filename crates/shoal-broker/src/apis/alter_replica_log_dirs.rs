//! AlterReplicaLogDirs (KIP-113): move replicas of this broker to other log directories, as
//! `kafka-reassign-partitions --reassignment-json-file` with `log_dirs` and
//! `shoalctl partition move-dir` ask.
//!
//! As Kafka (`KafkaApis.handleAlterReplicaLogDirsRequest`): ALTER on the cluster, else
//! CLUSTER_AUTHORIZATION_FAILED for every partition; a partition named twice goes to the last
//! directory named; the answer comes at once and the move runs in the background, shown by
//! DescribeLogDirs as a future replica until it is done. Per-partition errors are decided by
//! `replica_moves::decide`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, ResponseKind,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterReplicaLogDirsRequest,
) -> Reply {
    // (topic, partition) → directory; the last one named wins.
    let mut wanted: BTreeMap<(String, i32), String> = BTreeMap::new();
    for dir in &request.dirs {
        for topic in &dir.topics {
            for partition in &topic.partitions {
                wanted.insert((topic.name.0.to_string(), *partition), dir.path.to_string());
            }
        }
    }
    let allowed = broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Alter);
    let mut by_topic: BTreeMap<String, Vec<AlterReplicaLogDirPartitionResult>> = BTreeMap::new();
    for ((topic, partition), dir) in wanted {
        let code = if allowed {
            broker
                .replicas
                .alter_replica_log_dir(&topic, partition, &dir)
        } else {
            ResponseError::ClusterAuthorizationFailed.code()
        };
        if code != 0 {
            tracing::info!(
                topic,
                partition,
                dir,
                error_code = code,
                "AlterReplicaLogDirs refused for a partition"
            );
        }
        by_topic.entry(topic).or_default().push(
            AlterReplicaLogDirPartitionResult::default()
                .with_partition_index(partition)
                .with_error_code(code),
        );
    }
    let response = AlterReplicaLogDirsResponse::default().with_results(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(str_bytes(&topic).into())
                    .with_partitions(partitions)
            })
            .collect(),
    );
    Reply::Ready(ResponseKind::AlterReplicaLogDirs(response))
}
