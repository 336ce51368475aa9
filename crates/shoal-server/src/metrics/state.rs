//! Gauges read from the node's state at scrape time: what this broker leads and hosts, the
//! health of the partitions it leads, their transactions (`txn`), lag of the groups it
//! coordinates, and (on the active controller, as in Kafka, so a `sum` over nodes counts each
//! once) cluster-wide counts.

use std::sync::Arc;

use shoal_broker::Broker;
use shoal_meta::{MetaNode, MetadataImage};
use shoal_metrics::names;
use tokio::sync::watch;

/// Bound on per-partition series per metric (log size, offsets); beyond it they are left out.
pub const MAX_PARTITION_SERIES: usize = 10_000;

pub struct StateSources {
    pub broker: Option<Arc<Broker>>,
    pub meta: Option<Arc<MetaNode>>,
    pub images: watch::Receiver<Arc<MetadataImage>>,
    pub node_id: i32,
}

pub async fn refresh(sources: &StateSources) {
    let image = sources.images.borrow().clone();
    metrics::gauge!(names::METADATA_APPLIED_OFFSET).set(image.last_applied_index as f64);
    if let Some(broker) = &sources.broker {
        broker_gauges(broker, &image, sources.node_id);
        super::txn::refresh(broker).await;
        group_gauges(broker).await;
    }
    let active = match &sources.meta {
        Some(meta) => controller_gauges(meta).await,
        None => false,
    };
    cluster_gauges(&image, active);
}

/// Kafka's broker-side partition health, for partitions this broker leads.
fn broker_gauges(broker: &Broker, image: &MetadataImage, node_id: i32) {
    metrics::gauge!(names::BROKER_UNFENCED).set(if broker.is_unfenced() { 1.0 } else { 0.0 });
    let (mut leaders, mut under_replicated, mut under_min_isr) = (0u64, 0u64, 0u64);
    for topic in image.topics.values() {
        let min_isr =
            shoal_broker::log_config::partition_config(&topic.configs, &broker.config.settings)
                .map(|c| c.min_insync_replicas)
                .unwrap_or(1);
        for p in topic.partitions.iter().filter(|p| p.leader == node_id) {
            leaders += 1;
            if p.isr.len() < p.replicas.len() {
                under_replicated += 1;
            }
            if p.isr.len() < min_isr {
                under_min_isr += 1;
            }
        }
    }
    metrics::gauge!(names::LEADER_PARTITIONS).set(leaders as f64);
    metrics::gauge!(names::UNDER_REPLICATED_PARTITIONS).set(under_replicated as f64);
    metrics::gauge!(names::UNDER_MIN_ISR_PARTITIONS).set(under_min_isr as f64);

    metrics::gauge!(names::OFFLINE_REPLICAS).set(broker.replicas.offline_partitions().len() as f64);
    let hosted = broker.replicas.all_partitions();
    metrics::gauge!(names::PARTITIONS).set(hosted.len() as f64);
    for partition in hosted.iter().take(MAX_PARTITION_SERIES) {
        let labels = [
            ("topic", partition.topic().to_string()),
            ("partition", partition.index().to_string()),
        ];
        let Ok((size, end, skipped)) = partition.read_log(|log| {
            Ok((
                log.size_bytes(),
                log.log_end_offset(),
                log.cleaner_skipped_batches(),
            ))
        }) else {
            continue;
        };
        // Only partitions that have one: a series per healthy partition would be all zeros.
        if skipped > 0 {
            metrics::counter!(names::LOG_CLEANER_SKIPPED_BATCHES_TOTAL, &labels).absolute(skipped);
        }
        metrics::gauge!(names::LOG_SIZE_BYTES, &labels).set(size as f64);
        metrics::gauge!(names::LOG_END_OFFSET, &labels).set(end as f64);
        metrics::gauge!(names::HIGH_WATERMARK, &labels).set(partition.high_watermark() as f64);
    }
}

async fn group_gauges(broker: &Broker) {
    metrics::gauge!(names::GROUPS).set(broker.groups.group_count().await as f64);
    for row in broker.groups.lag_report().await {
        let labels = [
            ("group", row.group),
            ("topic", row.topic),
            ("partition", row.partition.to_string()),
        ];
        metrics::gauge!(names::GROUP_COMMITTED_OFFSET, &labels).set(row.committed_offset as f64);
        if let Some(lag) = row.lag {
            metrics::gauge!(names::GROUP_LAG, &labels).set(lag as f64);
        }
    }
}

/// Raft state of this voter; returns whether it is the active controller.
async fn controller_gauges(meta: &MetaNode) -> bool {
    let status = meta.describe_quorum().await;
    let active = status.leader_id == Some(meta.node_id());
    metrics::gauge!(names::ACTIVE_CONTROLLER).set(if active { 1.0 } else { 0.0 });
    metrics::gauge!(names::RAFT_TERM).set(status.current_term as f64);
    metrics::gauge!(names::RAFT_COMMIT_INDEX).set(status.commit_index.unwrap_or(0) as f64);
    metrics::gauge!(names::RAFT_APPLIED_INDEX).set(status.applied_index.unwrap_or(0) as f64);
    active
}

/// Cluster-wide counts, non-zero only on the active controller (Kafka's convention).
fn cluster_gauges(image: &MetadataImage, active: bool) {
    let (mut offline, mut brokers, mut fenced) = (0u64, 0u64, 0u64);
    if active {
        offline = image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader < 0)
            .count() as u64;
        brokers = image.brokers.len() as u64;
        fenced = image.brokers.values().filter(|b| b.fenced).count() as u64;
    }
    metrics::gauge!(names::OFFLINE_PARTITIONS).set(offline as f64);
    metrics::gauge!(names::BROKERS).set(brokers as f64);
    metrics::gauge!(names::FENCED_BROKERS).set(fenced as f64);
}
