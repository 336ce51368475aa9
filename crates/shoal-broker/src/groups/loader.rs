//! `OffsetsLoader`: coordination follows leadership of the `__consumer_offsets` partitions.
//!
//! After every metadata image the broker applies, the partitions this broker now leads (at
//! their leader epoch) are compared with the shards the coordinator holds: a partition newly
//! led, or led at a new epoch, is loaded — read from its log start to its log end and
//! replayed — and a partition no longer led is unloaded, so its clients go and find the new
//! coordinator. Reading runs on a blocking thread, in bounded chunks. Topics that disappear
//! from the metadata take their committed offsets with them.
//!
//! Transactional offsets (TxnOffsetCommit) are replayed as their batches and markers say: the
//! records of a producer's transactional batch wait for its marker, and those whose marker has
//! not come by the end of the log stay pending in the shard (their marker is reported to the
//! coordinator when it is written, see `transactions::markers`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use shoal_group::{GroupCoordinator, OFFSETS_TOPIC, OffsetsReplay};
use shoal_log::batch::RecordBatchHeader;
use shoal_log::control::ControlType;
use shoal_meta::MetadataImage;
use shoal_replica::{Partition, PartitionError};
use uuid::Uuid;

use crate::internal_topic::authority::CoordinatorAuthority;
use crate::internal_topic::leadership::led_partitions;
use crate::internal_topic::reader::{RecordSink, replay_partition};
use crate::replica_manager::ReplicaManager;

pub struct OffsetsLoader {
    coordinator: Arc<GroupCoordinator>,
    replicas: Arc<ReplicaManager>,
    /// Told which image the shards now follow (see `CoordinatorAuthority`).
    authority: Arc<CoordinatorAuthority>,
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
    pub fn new(
        coordinator: Arc<GroupCoordinator>,
        replicas: Arc<ReplicaManager>,
        authority: Arc<CoordinatorAuthority>,
    ) -> Arc<Self> {
        Arc::new(Self {
            coordinator,
            replicas,
            authority,
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
        let (topic_id, led) = led_partitions(&self.replicas, image, OFFSETS_TOPIC);
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
        self.authority.acted_on(image.last_applied_index);
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
                        if coordinator.finish_load(partition, epoch, replay).await {
                            tracing::debug!(
                                partition,
                                epoch,
                                elapsed_ms = started.elapsed().as_millis() as u64,
                                "offsets partition load finished"
                            );
                        } else {
                            // Markers it could not keep arrived meanwhile: read it again.
                            coordinator.abandon_load(partition, epoch).await;
                            tokio::time::sleep(LOAD_RETRY_DELAY).await;
                            loader.retry.notify_one();
                        }
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

impl RecordSink for OffsetsReplay {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        OffsetsReplay::apply(self, key, value);
    }

    fn skip_batch(&mut self, base_offset: i64, record_count: i32, why: &str) {
        OffsetsReplay::skip_batch(self, base_offset, record_count, why);
    }

    fn begin_batch(&mut self, header: &RecordBatchHeader) {
        OffsetsReplay::begin_batch(self, header.producer_id, header.is_transactional());
    }

    fn apply_at(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        OffsetsReplay::apply_at(self, offset, key, value);
    }

    fn control(&mut self, producer_id: i64, control: ControlType) {
        OffsetsReplay::end_txn(self, producer_id, control == ControlType::Commit);
    }
}

/// Replays `partition` from its log start to its current log end.
fn read_partition(partition: &Partition) -> Result<OffsetsReplay, PartitionError> {
    let mut replay = OffsetsReplay::new();
    replay_partition(partition, &mut replay)?;
    Ok(replay)
}
