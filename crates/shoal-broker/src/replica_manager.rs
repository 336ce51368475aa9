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
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use shoal_meta::{MetadataImage, TopicImage};
use shoal_replica::{MaintenanceDue, Partition, PartitionError, PartitionState, TxnMarker};
use tokio::sync::watch;
use uuid::Uuid;

use crate::disk_space::DiskSpace;
use crate::log_config::partition_config;
use crate::log_dir_set::{LogDirSet, is_directory_failure, place_new_replica};
use crate::log_dirs;
use crate::replica_moves::{self, MoveRegistry};
use crate::replication::quota::{ReplicationQuotas, Throttles};
use crate::time::wall_ms;

#[path = "replica_manager_moves.rs"]
mod moves;

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
    /// Position of its log directory in `log_dirs`.
    dir: usize,
    configs: BTreeMap<String, String>,
    /// Whether this replica's replication is throttled (its topic's throttled-replica lists).
    throttles: Throttles,
}

pub struct ReplicaManager {
    /// The log directories (`log.dirs`), each with its free space: appends to a partition stop
    /// while its directory is below `log.dir.min.free.bytes`.
    pub log_dirs: Arc<LogDirSet>,
    /// The leader and follower replication throttles (`*.replication.throttled.rate`).
    pub quotas: ReplicationQuotas,
    local_id: i32,
    broker_settings: BTreeMap<String, String>,
    /// `transaction.partition.verification.enable`, applied to every partition opened.
    txn_verification_enabled: bool,
    hosted: RwLock<HashMap<PartitionKey, Hosted>>,
    /// Partitions assigned here whose log could not be opened, with the reason: reported offline
    /// (Metadata, Produce/Fetch KAFKA_STORAGE_ERROR, metrics) rather than silently absent.
    offline: RwLock<HashMap<PartitionKey, String>>,
    /// Log directories that failed while running (position → why): they take no partition, and
    /// the partitions they held stay offline until the broker restarts.
    failed_dirs: RwLock<BTreeMap<usize, String>>,
    /// Partitions that were in a failed directory: never recreated elsewhere while assigned
    /// here (an empty copy could be taken for the lost one), and reported offline meanwhile.
    in_failed_dirs: RwLock<HashMap<PartitionKey, usize>>,
    /// Partitions whose move between log directories failed after its commit point (the
    /// complete copy is the replica; the next start finishes the move): never opened or
    /// recreated here meanwhile, which could serve a stale or empty log.
    stuck_moves: RwLock<HashMap<PartitionKey, std::path::PathBuf>>,
    /// The image last applied here; requests are served from it.
    applied: watch::Sender<Arc<MetadataImage>>,
    strays_checked: std::sync::atomic::AtomicBool,
    /// Set by `close_all` (shutdown): an image application still running on a blocking thread
    /// must not reopen the logs that were just closed.
    closed: std::sync::atomic::AtomicBool,
    /// Set once at start-up (see [`MarkerListener`]).
    marker_listener: std::sync::OnceLock<Arc<dyn MarkerListener>>,
    /// Held while an image is applied and while a moved replica is swapped in, so neither
    /// sees the other half done.
    apply_lock: std::sync::Mutex<()>,
    /// Replicas being moved between log directories (AlterReplicaLogDirs).
    pub moves: MoveRegistry,
    /// One per copy allowed to run at once (`num.replica.alter.log.dirs.threads`).
    move_permits: Arc<tokio::sync::Semaphore>,
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
        log_dirs: Arc<LogDirSet>,
        broker_settings: BTreeMap<String, String>,
        initial: Arc<MetadataImage>,
    ) -> Self {
        let (applied, _) = watch::channel(initial);
        // Kafka's default: one per log directory.
        let move_threads = shoal_config::effective(&broker_settings, replica_moves::THREADS)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(log_dirs.dirs().len())
            .clamp(1, crate::log_dir_set::MAX_LOG_DIRS);
        Self {
            log_dirs,
            quotas: ReplicationQuotas::from_settings(&broker_settings),
            local_id,
            txn_verification_enabled: shoal_config::effective(
                &broker_settings,
                "transaction.partition.verification.enable",
            )
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false")),
            broker_settings,
            hosted: RwLock::new(HashMap::new()),
            offline: RwLock::new(HashMap::new()),
            failed_dirs: RwLock::new(BTreeMap::new()),
            in_failed_dirs: RwLock::new(HashMap::new()),
            stuck_moves: RwLock::new(HashMap::new()),
            applied,
            strays_checked: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            marker_listener: std::sync::OnceLock::new(),
            apply_lock: std::sync::Mutex::new(()),
            moves: MoveRegistry::default(),
            move_permits: Arc::new(tokio::sync::Semaphore::new(move_threads)),
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
        tracing::error!(topic, partition = key.1, %reason, "partition offline here");
        write(&self.offline).insert(key, reason);
    }

    pub fn local_id(&self) -> i32 {
        self.local_id
    }

    /// The free space of the directory holding a hosted partition (`None`: not hosted).
    fn disk_space_of(&self, topic_id: Uuid, partition: i32) -> Option<Arc<DiskSpace>> {
        let dir = read(&self.hosted).get(&(topic_id, partition))?.dir;
        self.log_dirs.get(dir).map(|d| Arc::clone(&d.disk_space))
    }

    /// Whether the directory holding the partition has room for appends (a partition not
    /// hosted has none).
    pub fn appends_allowed(&self, topic_id: Uuid, partition: i32) -> bool {
        self.disk_space_of(topic_id, partition)
            .is_some_and(|d| d.appends_allowed())
    }

    /// Counts `bytes` just appended to the partition against its directory's free space.
    pub fn note_written(&self, topic_id: Uuid, partition: i32, bytes: u64) {
        if let Some(space) = self.disk_space_of(topic_id, partition) {
            space.note_written(bytes);
        }
    }

    /// A partition operation failed with `error`: when it is an I/O failure of the log
    /// directory (Kafka's log-dir failure), the whole directory is taken offline: its partitions
    /// are closed and reported offline, so the controller moves their leadership and ISR
    /// membership elsewhere, while the partitions in the other directories go on.
    pub fn storage_error(&self, topic_id: Uuid, partition: i32, error: &PartitionError) {
        let PartitionError::Log(log_error) = error else {
            return;
        };
        if !is_directory_failure(log_error) {
            return;
        }
        let Some(dir) = read(&self.hosted)
            .get(&(topic_id, partition))
            .map(|h| h.dir)
        else {
            return;
        };
        // An error of a replica since moved to another directory is not this one's.
        let failed_path = match log_error {
            shoal_log::LogError::Io { path, .. } => Some(path),
            shoal_log::LogError::Offline { dir, .. } => Some(dir),
            _ => None,
        };
        if let (Some(failed_path), Some(log_dir)) = (failed_path, self.log_dirs.get(dir))
            && !failed_path.starts_with(&log_dir.path)
        {
            tracing::warn!(path = %failed_path.display(), %log_error, "a storage error of a replica no longer in that directory");
            return;
        }
        self.fail_dir(dir, format!("{log_error}"));
    }

    /// Takes log directory `dir` offline (see [`ReplicaManager::storage_error`]). Blocking
    /// (closes logs); idempotent.
    fn fail_dir(&self, dir: usize, reason: String) {
        let path = self
            .log_dirs
            .get(dir)
            .map(|d| d.path.display().to_string())
            .unwrap_or_default();
        {
            let mut failed = write(&self.failed_dirs);
            if failed.contains_key(&dir) {
                return;
            }
            failed.insert(dir, reason.clone());
        }
        let taken: Vec<(PartitionKey, Hosted)> = {
            let mut hosted = write(&self.hosted);
            let keys: Vec<PartitionKey> = hosted
                .iter()
                .filter(|(_, h)| h.dir == dir)
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| hosted.remove(&k).map(|h| (k, h)))
                .collect()
        };
        tracing::error!(
            dir = %path,
            partitions = taken.len(),
            %reason,
            "log directory failed: its partitions are offline here (their leadership and ISR \
             membership move to other replicas); the other log directories go on. Replace the \
             disk and restart the broker"
        );
        for (key, hosted) in taken {
            // Best effort: the directory is failing.
            let _ = hosted.partition.close();
            write(&self.in_failed_dirs).insert(key, dir);
            self.mark_offline(
                key,
                hosted.partition.topic(),
                format!("its log directory {path} failed: {reason}"),
            );
        }
    }

    /// Log directories that failed while running, with the reason.
    pub fn failed_dirs(&self) -> BTreeMap<usize, String> {
        read(&self.failed_dirs).clone()
    }

    /// Every hosted partition with the position of its log directory.
    pub fn partitions_by_dir(&self) -> Vec<(usize, Arc<Partition>)> {
        read(&self.hosted)
            .values()
            .map(|h| (h.dir, Arc::clone(&h.partition)))
            .collect()
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
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
        write(&self.in_failed_dirs).retain(|k, _| wanted.contains_key(k));
        write(&self.stuck_moves).retain(|k, _| wanted.contains_key(k));
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
            let Some(log_dir) = self.log_dirs.get(hosted.dir) else {
                continue;
            };
            let dir = log_dirs::partition_dir(&log_dir.path, hosted.partition.topic(), index);
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
        let index = key.1;
        if let Some(copy) = read(&self.stuck_moves).get(&key).cloned() {
            write(&self.offline).insert(
                key,
                format!(
                    "its move to another log directory could not finish; restart the broker to \
                     complete it from {}",
                    copy.display()
                ),
            );
            return;
        }
        if let Some(dir) = read(&self.in_failed_dirs).get(&key).copied() {
            let reason = read(&self.failed_dirs)
                .get(&dir)
                .cloned()
                .unwrap_or_default();
            write(&self.offline).insert(key, format!("its log directory failed: {reason}"));
            return;
        }
        let failed = self.failed_dirs();
        let position = match self.log_dirs.locate(&topic.name, index) {
            Ok(Some(found)) if failed.contains_key(&found) => {
                self.mark_offline(key, &topic.name, "its log directory failed".to_string());
                return;
            }
            Ok(Some(found)) => found,
            Ok(None) => {
                // A directory AlterReplicaLogDirs named before the replica existed (Kafka's
                // preferred log dir).
                if let Some(preferred) = self.moves.take_preferred(&topic.name, index)
                    && preferred < self.log_dirs.dirs().len()
                    && !failed.contains_key(&preferred)
                {
                    return self.open_in(key, topic, state, preferred);
                }
                let mut hosted: Vec<Option<usize>> = (0..self.log_dirs.dirs().len())
                    .map(|i| (!failed.contains_key(&i)).then_some(0))
                    .collect();
                for h in read(&self.hosted).values() {
                    if let Some(Some(count)) = hosted.get_mut(h.dir) {
                        *count += 1;
                    }
                }
                let Some(position) = place_new_replica(&hosted) else {
                    self.mark_offline(key, &topic.name, "every log directory failed".to_string());
                    return;
                };
                position
            }
            Err(reason) => {
                self.mark_offline(key, &topic.name, reason);
                return;
            }
        };
        self.open_in(key, topic, state, position);
    }

    /// Opens the replica in log directory `position` (creating it there if new).
    fn open_in(
        &self,
        key: PartitionKey,
        topic: &TopicImage,
        state: PartitionState,
        position: usize,
    ) {
        let (topic_id, index) = key;
        let Some(log_dir) = self.log_dirs.get(position) else {
            self.mark_offline(key, &topic.name, format!("no log directory {position}"));
            return;
        };
        let dir = log_dirs::partition_dir(&log_dir.path, &topic.name, index);
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
        match self.open_log(&dir, &topic.name, index, &topic.configs, state) {
            Ok(partition) => {
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
                        dir: position,
                        configs: topic.configs.clone(),
                        throttles: Throttles::for_replica(&topic.configs, index, self.local_id),
                    },
                );
            }
            Err(error) => {
                self.mark_offline(key, &topic.name, error);
            }
        }
    }

    /// Opens (and recovers) the log of `topic`-`index` in `dir` as a replica in `state`.
    fn open_log(
        &self,
        dir: &std::path::Path,
        topic: &str,
        index: i32,
        configs: &BTreeMap<String, String>,
        state: PartitionState,
    ) -> Result<Partition, String> {
        let config = partition_config(configs, &self.broker_settings)?;
        let partition = Partition::open(
            dir,
            topic,
            index,
            self.local_id,
            config.log,
            config.min_insync_replicas,
            state,
            wall_ms(),
        )
        .map_err(|error| format!("cannot open the log: {error}"))?;
        // KIP-890 part 1 is the broker's choice (`transaction.partition.verification.enable`).
        partition.set_txn_verification_enabled(self.txn_verification_enabled);
        Ok(partition)
    }

    /// Directories of topics the metadata does not know (deleted while this node was down).
    fn set_aside_strays(&self, image: &MetadataImage) {
        let mut dirs = Vec::new();
        for log_dir in self.log_dirs.dirs() {
            match log_dirs::scan(&log_dir.path) {
                Ok(found) => dirs.extend(found),
                Err(error) => {
                    tracing::warn!(dir = %log_dir.path.display(), %error, "cannot scan a log directory for stray logs");
                }
            }
        }
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
        let hosted: Vec<(PartitionKey, Arc<Partition>)> = read(&self.hosted)
            .iter()
            .map(|(k, h)| (*k, Arc::clone(&h.partition)))
            .collect();
        for ((topic_id, index), partition) in hosted {
            if let Err(error) = partition.run_maintenance(now, due) {
                tracing::warn!(topic = partition.topic(), partition = index, %error, "log maintenance failed");
                self.storage_error(topic_id, index, &error);
            }
        }
    }

    /// Clean shutdown: flush and close every log.
    pub fn close_all(&self) {
        // A copy in progress stops at its next chunk: the runtime waits for blocking work.
        for (_, running) in self.moves.all() {
            running
                .cancel
                .store(true, std::sync::atomic::Ordering::Release);
        }
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

    /// Broker 1 hosts partitions 0..4 of topic "t".
    fn image_hosting_four_partitions() -> Arc<MetadataImage> {
        image_hosting("t", Uuid::from_u128(7), 4, &[])
    }

    /// Broker 1 hosts partitions 0..`partitions` of `topic` (RF 1), with `configs`.
    pub(super) fn image_hosting(
        topic: &str,
        topic_id: Uuid,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Arc<MetadataImage> {
        let mut image = MetadataImage::empty("c");
        let mut records = vec![MetadataRecord::Topic {
            name: topic.into(),
            topic_id,
        }];
        records.extend(
            configs
                .iter()
                .map(|(name, value)| MetadataRecord::TopicConfig {
                    topic_id,
                    name: (*name).into(),
                    value: Some((*value).into()),
                }),
        );
        records.extend((0..partitions).map(|partition| MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        }));
        for record in records {
            assert_eq!(
                image.apply(&record),
                shoal_meta::image::ApplyOutcome::Applied
            );
        }
        Arc::new(image)
    }

    /// Log directories `first` (the data directory) and `second`, of node 1 of cluster "c".
    fn two_log_dirs(first: &std::path::Path, second: &std::path::Path) -> LogDirSet {
        std::fs::create_dir_all(first).unwrap();
        LogDirSet::open(
            first,
            Uuid::from_u128(1),
            &[second.to_path_buf()],
            "c",
            1,
            0,
        )
        .unwrap()
    }

    #[test]
    fn partitions_spread_over_log_dirs_and_stay_where_they_are() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        let open = || {
            let dirs = two_log_dirs(&first, &second);
            let image = image_hosting_four_partitions();
            let manager = ReplicaManager::new(1, Arc::new(dirs), BTreeMap::new(), image.clone());
            manager.apply_image(image);
            manager
        };
        let where_they_are = |manager: &ReplicaManager| {
            let mut found: Vec<(i32, usize)> = manager
                .partitions_by_dir()
                .into_iter()
                .map(|(dir, p)| (p.index(), dir))
                .collect();
            found.sort();
            found
        };
        let manager = open();
        let placed = where_they_are(&manager);
        assert_eq!(placed.len(), 4);
        assert_eq!(
            placed.iter().filter(|(_, dir)| *dir == 1).count(),
            2,
            "{placed:?}"
        );
        for (partition, dir) in &placed {
            let path = if *dir == 0 { &first } else { &second };
            assert!(path.join(format!("t-{partition}")).is_dir());
        }
        manager.close_all();
        // After a restart each partition is opened where its log is.
        let manager = open();
        assert_eq!(where_they_are(&manager), placed);
        manager.close_all();
        // A partition in both directories is not opened: the operator decides.
        let (partition, dir) = placed[0];
        let other = if dir == 0 { &second } else { &first };
        log_dirs::write_partition_metadata(
            &other.join(format!("t-{partition}")),
            Uuid::from_u128(7),
        )
        .unwrap();
        let manager = open();
        assert_eq!(where_they_are(&manager).len(), 3);
        let offline = manager.offline_partitions();
        assert_eq!(offline.len(), 1);
        assert!(
            offline[0].1.contains("several log directories"),
            "{offline:?}"
        );
    }

    #[test]
    fn a_failed_log_dir_takes_only_its_partitions_offline_and_they_are_not_recreated() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        let dirs = two_log_dirs(&first, &second);
        let image = image_hosting_four_partitions();
        let manager = ReplicaManager::new(1, Arc::new(dirs), BTreeMap::new(), image.clone());
        manager.apply_image(image.clone());
        let in_second: Vec<i32> = manager
            .partitions_by_dir()
            .into_iter()
            .filter(|(dir, _)| *dir == 1)
            .map(|(_, p)| p.index())
            .collect();
        assert_eq!(in_second.len(), 2);
        let topic_id = Uuid::from_u128(7);
        // A full disk is not a failure; an I/O error is.
        let io = |code: rustix::io::Errno| {
            PartitionError::Log(shoal_log::LogError::Io {
                path: second.join("t-0"),
                source: std::io::Error::from_raw_os_error(code.raw_os_error()),
            })
        };
        manager.storage_error(topic_id, in_second[0], &io(rustix::io::Errno::NOSPC));
        assert!(manager.failed_dirs().is_empty());
        manager.storage_error(topic_id, in_second[0], &io(rustix::io::Errno::IO));
        assert_eq!(
            manager.failed_dirs().keys().copied().collect::<Vec<_>>(),
            vec![1]
        );
        let mut offline: Vec<i32> = manager
            .offline_partitions()
            .into_iter()
            .map(|((_, p), _)| p)
            .collect();
        offline.sort();
        let mut expected = in_second.clone();
        expected.sort();
        assert_eq!(offline, expected);
        assert_eq!(manager.hosted_count(), 2);
        // The next image does not recreate them in the healthy directory, even with the failed
        // directory's files gone.
        std::fs::remove_dir_all(&second).unwrap();
        manager.apply_image(image);
        assert_eq!(manager.hosted_count(), 2);
        assert_eq!(manager.offline_partitions().len(), 2);
        assert!(
            manager
                .partitions_by_dir()
                .iter()
                .all(|(dir, p)| *dir == 0 && !in_second.contains(&p.index()))
        );
        manager.close_all();
    }

    #[test]
    fn an_image_applied_after_close_all_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let image = image_hosting_one_partition();
        let manager = ReplicaManager::new(
            1,
            Arc::new(LogDirSet::single(
                dir.path(),
                Uuid::from_u128(1),
                DiskSpace::open(dir.path(), 0),
            )),
            BTreeMap::new(),
            image.clone(),
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
