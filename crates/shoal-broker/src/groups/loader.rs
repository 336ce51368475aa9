//! `OffsetsLoader`: coordination follows leadership of the `__consumer_offsets` partitions.
//!
//! After every metadata image the broker applies, the partitions this broker now leads (at
//! their leader epoch) are compared with the shards the coordinator holds: a partition newly
//! led, or led at a new epoch, is loaded — read from its log start to its log end and
//! replayed — and a partition no longer led is unloaded, so its clients go and find the new
//! coordinator. Reading runs on a blocking thread, in bounded chunks. Topics that disappear
//! from the metadata take their committed offsets with them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use shoal_group::{GroupCoordinator, OFFSETS_TOPIC, OffsetsReplay};
use shoal_log::batch::batches;
use shoal_log::record_view::{decompressed_section, records};
use shoal_meta::MetadataImage;
use shoal_replica::{Partition, PartitionError};
use uuid::Uuid;

use crate::replica_manager::ReplicaManager;

/// Bytes read from the log per step of a load (Kafka's `offsets.load.buffer.size`).
const LOAD_CHUNK_BYTES: usize = 5 << 20;

/// The offsets partitions led here: partition → (leader epoch, partition).
type Led = BTreeMap<i32, (i32, Arc<Partition>)>;

pub struct OffsetsLoader {
    coordinator: Arc<GroupCoordinator>,
    replicas: Arc<ReplicaManager>,
    /// The offsets topic the shards were loaded from: a recreated topic reloads everything.
    topic_id: std::sync::Mutex<Option<Uuid>>,
    /// Every topic of the last image (name → id), to notice deletions.
    topics: std::sync::Mutex<Option<HashMap<String, Uuid>>>,
    /// A failed load asks for another pass over the current image.
    retry: tokio::sync::Notify,
}

/// Wait before retrying a failed load (a log read error, or leadership moving meanwhile).
const LOAD_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

impl OffsetsLoader {
    pub fn new(coordinator: Arc<GroupCoordinator>, replicas: Arc<ReplicaManager>) -> Arc<Self> {
        Arc::new(Self {
            coordinator,
            replicas,
            topic_id: std::sync::Mutex::new(None),
            topics: std::sync::Mutex::new(None),
            retry: tokio::sync::Notify::new(),
        })
    }

    /// Runs until the replica manager goes away, reacting to every applied image.
    pub async fn run(self: Arc<Self>) {
        let mut images = self.replicas.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            self.reconcile(&image).await;
            tokio::select! {
                changed = images.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = self.retry.notified() => {}
            }
        }
    }

    /// The partitions this broker leads now, by partition, with their epochs.
    fn led(&self, image: &MetadataImage) -> (Option<Uuid>, Led) {
        let Some(topic) = image.topic_by_name(OFFSETS_TOPIC) else {
            return (None, BTreeMap::new());
        };
        let local = self.replicas.local_id();
        let led = topic
            .partitions
            .iter()
            .filter(|p| p.leader == local)
            .filter_map(|p| {
                let partition = self.replicas.partition(topic.id, p.partition)?;
                partition
                    .is_leader()
                    .then(|| (p.partition, (partition.leader_epoch(), partition)))
            })
            .collect();
        (Some(topic.id), led)
    }

    /// Names of topics in the previous image that are gone (or were recreated) in `image`.
    fn deleted_topics(&self, image: &MetadataImage) -> HashSet<String> {
        let now: HashMap<String, Uuid> = image
            .topics
            .values()
            .map(|t| (t.name.clone(), t.id))
            .collect();
        let mut last = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let deleted = match last.as_ref() {
            Some(before) => before
                .iter()
                .filter(|(name, id)| now.get(*name) != Some(*id))
                .map(|(name, _)| name.clone())
                .collect(),
            None => HashSet::new(),
        };
        *last = Some(now);
        deleted
    }

    async fn reconcile(self: &Arc<Self>, image: &MetadataImage) {
        let deleted = self.deleted_topics(image);
        if !deleted.is_empty() {
            let removed = self.coordinator.delete_topic_offsets(&deleted).await;
            if removed > 0 {
                tracing::info!(topics = ?deleted, offsets = removed, "removed committed offsets of deleted topics");
            }
        }
        let (topic_id, led) = self.led(image);
        if let Some(topic) = image.topic_by_name(OFFSETS_TOPIC) {
            self.coordinator
                .set_partition_count(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX));
        }
        let topic_changed = {
            let mut current = self.topic_id.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *current != topic_id;
            *current = topic_id;
            changed
        };
        for (partition, epoch) in self.coordinator.loaded_partitions() {
            let keep = !topic_changed && led.get(&partition).is_some_and(|(e, _)| *e == epoch);
            if !keep {
                self.coordinator.unload(partition).await;
            }
        }
        let loaded = self.coordinator.loaded_partitions();
        for (partition, (epoch, log)) in led {
            if loaded.contains(&(partition, epoch)) {
                continue;
            }
            self.coordinator.begin_load(partition, epoch).await;
            let coordinator = Arc::clone(&self.coordinator);
            let loader = Arc::clone(self);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let read = tokio::task::spawn_blocking(move || read_partition(&log)).await;
                match read {
                    Ok(Ok(replay)) => {
                        shoal_metrics::record_internal_records_skipped(
                            OFFSETS_TOPIC,
                            replay.skipped() as u64,
                        );
                        coordinator.finish_load(partition, epoch, replay).await;
                        tracing::debug!(
                            partition,
                            epoch,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "offsets partition load finished"
                        );
                    }
                    Ok(Err(error)) => {
                        // Leadership moved while reading, or the log failed: no shard (clients
                        // are told NOT_COORDINATOR and look again), and another pass later.
                        tracing::warn!(partition, epoch, %error, "loading an offsets partition failed");
                        coordinator.abandon_load(partition, epoch).await;
                        tokio::time::sleep(LOAD_RETRY_DELAY).await;
                        loader.retry.notify_one();
                    }
                    Err(error) => {
                        tracing::error!(partition, epoch, %error, "offsets load task failed");
                        coordinator.abandon_load(partition, epoch).await;
                        tokio::time::sleep(LOAD_RETRY_DELAY).await;
                        loader.retry.notify_one();
                    }
                }
            });
        }
    }
}

/// Replays `partition` from its log start to its current log end.
fn read_partition(partition: &Partition) -> Result<OffsetsReplay, PartitionError> {
    let mut replay = OffsetsReplay::new();
    let (mut offset, end) =
        partition.read_log(|log| Ok((log.log_start_offset(), log.log_end_offset())))?;
    while offset < end {
        if !partition.is_leader() {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        let chunk = partition.read_records(offset, LOAD_CHUNK_BYTES, end, true)?;
        if chunk.records.is_empty() {
            break;
        }
        for batch in batches(&chunk.records) {
            let batch = batch?;
            let header = batch.header;
            offset = offset.max(header.next_offset());
            if header.is_control() {
                continue;
            }
            // A batch whose records cannot be read is skipped and counted: one junk batch must
            // not keep every group of the partition from loading (NOT_COORDINATOR forever).
            let count = usize::try_from(header.record_count.max(0)).unwrap_or(0);
            let section = match decompressed_section(batch.bytes) {
                Ok(section) => section,
                Err(error) => {
                    replay.skip_batch(header.base_offset, header.record_count, &error.to_string());
                    continue;
                }
            };
            match records(&section, count) {
                Ok(views) => {
                    for record in views {
                        if let Some(key) = record.key {
                            replay.apply(key, record.value);
                        }
                    }
                }
                Err(error) => {
                    replay.skip_batch(header.base_offset, header.record_count, &error.to_string())
                }
            }
        }
    }
    Ok(replay)
}
