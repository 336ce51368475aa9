//! The partitions this broker hosts, kept in step with the metadata image.
//!
//! Brokers never decide on their own which partitions they host or lead: they apply what the
//! committed metadata says (KRaft brokers do the same with metadata deltas). Every new image is
//! compared with what is open — partitions to open, leader/ISR/epoch changes to pass down,
//! config changes, partitions whose topic was deleted — and `applied_offset` tells waiters (e.g.
//! CreateTopics) when a given metadata offset is in effect locally.
//!
//! Opening a log may scan it (recovery), so image application runs on a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_meta::{MetadataImage, TopicImage};
use shoal_replica::{MaintenanceDue, Partition, PartitionState, TxnMarker};
use tokio::sync::watch;
use uuid::Uuid;

use crate::disk_space::DiskSpace;
use crate::log_config::partition_config;
use crate::log_dirs;
use crate::replication::quota::{ReplicationQuotas, Throttles};
use crate::time::wall_ms;

/// Key of a hosted partition: the topic id, so a recreated topic never meets an old log.
pub type PartitionKey = (Uuid, i32);

/// Told of every transaction marker written and replicated on a partition this broker leads
/// (the group coordinator decides the transactional offsets of `__consumer_offsets` by them).
pub trait MarkerListener: Send + Sync {
    /// `marker` was written at log offset `offset` of `topic`-`partition` and is replicated.
    /// The marker's writer waits for the returned future before reporting it written.
    fn marker_written(
        &self,
        topic: &str,
        partition: i32,
        marker: &TxnMarker,
        offset: i64,
    ) -> BoxFuture<'static, ()>;
}

struct Hosted {
    partition: Arc<Partition>,
    configs: BTreeMap<String, String>,
    /// Whether this replica's replication is throttled (its topic's throttled-replica lists).
    throttles: Throttles,
}

pub struct ReplicaManager {
    /// Free space of the log directory: appends stop below `log.dir.min.free.bytes`.
    pub disk_space: Arc<DiskSpace>,
    /// The leader and follower replication throttles (`*.replication.throttled.rate`).
    pub quotas: ReplicationQuotas,
    local_id: i32,
    data_dir: PathBuf,
    broker_settings: BTreeMap<String, String>,
    /// `transaction.partition.verification.enable`, applied to every partition opened.
    txn_verification_enabled: bool,
    hosted: RwLock<HashMap<PartitionKey, Hosted>>,
    /// Partitions assigned here whose log could not be opened, with the reason: reported offline
    /// (Metadata, Produce/Fetch KAFKA_STORAGE_ERROR, metrics) rather than silently absent.
    offline: RwLock<HashMap<PartitionKey, String>>,
    /// The image last applied here; requests are served from it.
    applied: watch::Sender<Arc<MetadataImage>>,
    strays_checked: std::sync::atomic::AtomicBool,
    /// Set by `close_all` (shutdown): an image application still running on a blocking thread
    /// must not reopen the logs that were just closed.
    closed: std::sync::atomic::AtomicBool,
    /// Set once at start-up (see [`MarkerListener`]).
    marker_listener: std::sync::OnceLock<Arc<dyn MarkerListener>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ReplicaManager {
    pub fn new(
        local_id: i32,
        data_dir: PathBuf,
        broker_settings: BTreeMap<String, String>,
        initial: Arc<MetadataImage>,
        disk_space: Arc<DiskSpace>,
    ) -> Self {
        let (applied, _) = watch::channel(initial);
        Self {
            disk_space,
            quotas: ReplicationQuotas::from_settings(&broker_settings),
            local_id,
            data_dir,
            txn_verification_enabled: shoal_config::effective(
                &broker_settings,
                "transaction.partition.verification.enable",
            )
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false")),
            broker_settings,
            hosted: RwLock::new(HashMap::new()),
            offline: RwLock::new(HashMap::new()),
            applied,
            strays_checked: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            marker_listener: std::sync::OnceLock::new(),
        }
    }

    /// Who is told of transaction markers written here; the first call wins.
    pub fn set_marker_listener(&self, listener: Arc<dyn MarkerListener>) {
        if self.marker_listener.set(listener).is_err() {
            tracing::warn!("a transaction marker listener was already set");
        }
    }

    /// `marker` was written at `offset` on `topic`-`partition` and replicated: the listener,
    /// if any, is told (and waited for).
    pub async fn marker_written(
        &self,
        topic: &str,
        partition: i32,
        marker: &TxnMarker,
        offset: i64,
    ) {
        if let Some(listener) = self.marker_listener.get() {
            listener
                .marker_written(topic, partition, marker, offset)
                .await;
        }
    }

    /// Partitions assigned here that could not be opened, with the reason.
    pub fn offline_partitions(&self) -> Vec<(PartitionKey, String)> {
        read(&self.offline)
            .iter()
            .map(|(k, reason)| (*k, reason.clone()))
            .collect()
    }

    /// Whether `key` is assigned here but its log could not be opened.
    pub fn is_offline(&self, topic_id: Uuid, partition: i32) -> bool {
        read(&self.offline).contains_key(&(topic_id, partition))
    }

    /// The error for a request to a partition this broker does not serve: KAFKA_STORAGE_ERROR
    /// when it is assigned here but offline, else NOT_LEADER_OR_FOLLOWER.
    pub fn not_served_code(&self, topic_id: Uuid, partition: i32) -> i16 {
        if self.is_offline(topic_id, partition) {
            kafka_protocol::ResponseError::KafkaStorageError.code()
        } else {
            kafka_protocol::ResponseError::NotLeaderOrFollower.code()
        }
    }

    fn mark_offline(&self, key: PartitionKey, topic: &str, reason: String) {
        tracing::error!(topic, partition = key.1, %reason, "partition offline: its log cannot be opened here");
        write(&self.offline).insert(key, reason);
    }

    pub fn local_id(&self) -> i32 {
        self.local_id
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<Arc<Partition>> {
        read(&self.hosted)
            .get(&(topic_id, partition))
            .map(|h| Arc::clone(&h.partition))
    }

    /// A hosted partition with this broker's replication throttles for it.
    pub fn partition_with_throttles(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<(Arc<Partition>, Throttles)> {
        read(&self.hosted)
            .get(&(topic_id, partition))
            .map(|h| (Arc::clone(&h.partition), h.throttles))
    }

    /// The partitions this broker leads, with their keys.
    pub fn led_partitions(&self) -> Vec<(PartitionKey, Arc<Partition>)> {
        read(&self.hosted)
            .iter()
            .filter(|(_, h)| h.partition.is_leader())
            .map(|(k, h)| (*k, Arc::clone(&h.partition)))
            .collect()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        read(&self.hosted)
            .values()
            .map(|h| Arc::clone(&h.partition))
            .collect()
    }

    pub fn hosted_count(&self) -> usize {
        read(&self.hosted).len()
    }

    /// Waits until an image at or past `offset` has been applied here.
    pub async fn wait_for_applied(&self, offset: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(
            timeout,
            rx.wait_for(|image| image.last_applied_index >= offset),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// A receiver of every image applied here.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.applied.subscribe()
    }

    /// The image last applied here.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().clone()
    }

    /// Brings the hosted partitions in line with `image`. Blocking (may open and recover logs).
    pub fn apply_image(&self, image: Arc<MetadataImage>) {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut wanted: HashMap<PartitionKey, (&TopicImage, PartitionState)> = HashMap::new();
        for topic in image.topics.values() {
            for p in &topic.partitions {
                if p.replicas.contains(&self.local_id) {
                    let state = PartitionState {
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                    };
                    wanted.insert((topic.id, p.partition), (topic, state));
                }
            }
        }

        write(&self.offline).retain(|k, _| wanted.contains_key(k));
        // Gone from the metadata (topic deleted, or reassigned away): close and delete.
        let removed: Vec<(PartitionKey, Hosted)> = {
            let mut hosted = write(&self.hosted);
            let gone: Vec<PartitionKey> = hosted
                .keys()
                .filter(|k| !wanted.contains_key(k))
                .copied()
                .collect();
            gone.into_iter()
                .filter_map(|k| hosted.remove(&k).map(|h| (k, h)))
                .collect()
        };
        for ((topic_id, index), hosted) in removed {
            let dir = log_dirs::partition_dir(&self.data_dir, hosted.partition.topic(), index);
            if let Err(error) = hosted.partition.close() {
                tracing::warn!(topic = hosted.partition.topic(), partition = index, %error, "closing a deleted partition failed");
            }
            match log_dirs::rename_for_delete(&dir, topic_id) {
                Ok(moved) => {
                    if let Err(error) = std::fs::remove_dir_all(&moved) {
                        tracing::warn!(dir = %moved.display(), %error, "removing a deleted partition failed");
                    }
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "renaming a deleted partition failed")
                }
            }
            tracing::info!(
                topic = hosted.partition.topic(),
                partition = index,
                "partition deleted"
            );
        }

        self.quotas.apply(&image.broker_configs, self.local_id);

        if !self
            .strays_checked
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            self.set_aside_strays(&image);
        }

        for (key, (topic, state)) in wanted {
            let existing = read(&self.hosted)
                .get(&key)
                .map(|h| (Arc::clone(&h.partition), h.configs != topic.configs));
            match existing {
                Some((partition, configs_changed)) => {
                    partition.update_state(state, wall_ms());
                    if configs_changed {
                        match partition_config(&topic.configs, &self.broker_settings) {
                            Ok(config) => {
                                if let Err(error) =
                                    partition.update_config(config.log, config.min_insync_replicas)
                                {
                                    tracing::warn!(topic = %topic.name, partition = key.1, %error, "new topic config rejected by the log; keeping the old one");
                                }
                            }
                            Err(error) => {
                                tracing::warn!(topic = %topic.name, partition = key.1, %error, "new topic config rejected; keeping the old one");
                            }
                        }
                        if let Some(h) = write(&self.hosted).get_mut(&key) {
                            h.configs = topic.configs.clone();
                            h.throttles =
                                Throttles::for_replica(&topic.configs, key.1, self.local_id);
                        }
                    }
                }
                None => self.open_partition(key, topic, state),
            }
        }
        self.applied.send_replace(image);
    }

    fn open_partition(&self, key: PartitionKey, topic: &TopicImage, state: PartitionState) {
        let (topic_id, index) = key;
        let dir = log_dirs::partition_dir(&self.data_dir, &topic.name, index);
        if let Some(existing_id) = log_dirs::read_partition_metadata(&dir)
            && existing_id != topic_id
        {
            // A leftover of a deleted topic with the same name: never mix the two logs.
            match log_dirs::rename_stray(&dir) {
                Ok(moved) => {
                    tracing::warn!(dir = %moved.display(), "set aside a log of an older topic with the same name")
                }
                Err(error) => {
                    self.mark_offline(
                        key,
                        &topic.name,
                        format!(
                            "cannot set aside an older log in {}: {error}",
                            dir.display()
                        ),
                    );
                    return;
                }
            }
        }
        if let Err(error) = log_dirs::write_partition_metadata(&dir, topic_id) {
            self.mark_offline(
                key,
                &topic.name,
                format!(
                    "cannot write partition.metadata in {}: {error}",
                    dir.display()
                ),
            );
            return;
        }
        let config = match partition_config(&topic.configs, &self.broker_settings) {
            Ok(config) => config,
            Err(error) => {
                self.mark_offline(key, &topic.name, error);
                return;
            }
        };
        match Partition::open(
            &dir,
            &topic.name,
            index,
            self.local_id,
            config.log,
            config.min_insync_replicas,
            state,
            wall_ms(),
        ) {
            Ok(partition) => {
                // KIP-890 part 1 is the broker's choice (`transaction.partition.verification.enable`).
                partition.set_txn_verification_enabled(self.txn_verification_enabled);
                let mut hosted = write(&self.hosted);
                // Checked under the lock close_all drains: a log opened while shutting down is
                // closed again, never left open and unflushed.
                if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                    drop(hosted);
                    if let Err(error) = partition.close() {
                        tracing::warn!(topic = %topic.name, partition = index, %error, "closing a log opened during shutdown failed");
                    }
                    return;
                }
                tracing::debug!(topic = %topic.name, partition = index, "partition opened");
                write(&self.offline).remove(&key);
                hosted.insert(
                    key,
                    Hosted {
                        partition: Arc::new(partition),
                        configs: topic.configs.clone(),
                        throttles: Throttles::for_replica(&topic.configs, index, self.local_id),
                    },
                );
            }
            Err(error) => {
                self.mark_offline(key, &topic.name, format!("cannot open the log: {error}"));
            }
        }
    }

    /// Directories of topics the metadata does not know (deleted while this node was down).
    fn set_aside_strays(&self, image: &MetadataImage) {
        let dirs = match log_dirs::scan(&self.data_dir) {
            Ok(dirs) => dirs,
            Err(error) => {
                tracing::warn!(%error, "cannot scan the data directory for stray logs");
                return;
            }
        };
        for dir in dirs {
            let known = dir
                .topic_id
                .and_then(|id| image.topic(&id))
                .is_some_and(|t| {
                    t.name == dir.topic
                        && t.partition(dir.partition)
                            .is_some_and(|p| p.replicas.contains(&self.local_id))
                });
            if !known {
                match log_dirs::rename_stray(&dir.path) {
                    Ok(moved) => {
                        tracing::warn!(dir = %moved.display(), "set aside a stray partition log")
                    }
                    Err(error) => {
                        tracing::warn!(dir = %dir.path.display(), %error, "cannot set aside a stray log")
                    }
                }
            }
        }
    }

    /// Periodic flush, and whichever of retention, HW checkpoints and producer snapshots are
    /// `due`, for every hosted partition. Blocking.
    pub fn run_maintenance(&self, due: MaintenanceDue) {
        let now = wall_ms();
        for partition in self.all_partitions() {
            if let Err(error) = partition.run_maintenance(now, due) {
                tracing::warn!(topic = partition.topic(), partition = partition.index(), %error, "log maintenance failed");
            }
        }
    }

    /// Clean shutdown: flush and close every log.
    pub fn close_all(&self) {
        let hosted: Vec<Hosted> = {
            let mut hosted = write(&self.hosted);
            self.closed
                .store(true, std::sync::atomic::Ordering::Release);
            hosted.drain().map(|(_, h)| h).collect()
        };
        for h in hosted {
            if let Err(error) = h.partition.close() {
                tracing::warn!(topic = h.partition.topic(), partition = h.partition.index(), %error, "closing a log failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shoal_meta::records::MetadataRecord;
    use uuid::Uuid;

    use super::*;

    /// An image where broker 1 hosts partition 0 of topic "t".
    fn image_hosting_one_partition() -> Arc<MetadataImage> {
        let mut image = MetadataImage::empty("c");
        let topic_id = Uuid::from_u128(7);
        for record in [
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
        ] {
            assert_eq!(
                image.apply(&record),
                shoal_meta::image::ApplyOutcome::Applied
            );
        }
        Arc::new(image)
    }

    #[test]
    fn an_image_applied_after_close_all_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let image = image_hosting_one_partition();
        let manager = ReplicaManager::new(
            1,
            dir.path().to_path_buf(),
            BTreeMap::new(),
            image.clone(),
            DiskSpace::open(dir.path(), 0),
        );
        manager.apply_image(image.clone());
        assert_eq!(manager.hosted_count(), 1);
        manager.close_all();
        assert_eq!(manager.hosted_count(), 0);
        // An application still in flight at shutdown (it runs on a blocking thread) must not
        // reopen the log that was just closed.
        manager.apply_image(image);
        assert_eq!(manager.hosted_count(), 0);
        assert!(manager.offline_partitions().is_empty());
    }
}
