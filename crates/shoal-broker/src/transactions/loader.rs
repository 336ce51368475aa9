//! `TxnLoader`: transaction coordination follows leadership of the `__transaction_state`
//! partitions.
//!
//! After every metadata image the broker applies, the partitions this broker now leads (at
//! their leader epoch) are compared with the shards the coordinator holds: a partition newly
//! led, or led at a new epoch, is loaded — read from its log start to its log end and replayed
//! with `shoal_txn::TxnReplay` — and a partition no longer led is unloaded, so its clients go
//! and find the new coordinator. Until a load finishes, the partition's transactional ids are
//! answered COORDINATOR_LOAD_IN_PROGRESS.

use std::sync::Arc;

use shoal_meta::MetadataImage;
use shoal_replica::{Partition, PartitionError};
use shoal_txn::{TRANSACTION_STATE_TOPIC, TxnReplay};
use uuid::Uuid;

use crate::internal_topic::authority::CoordinatorAuthority;
use crate::internal_topic::leadership::led_partitions;
use crate::internal_topic::reader::{RecordSink, replay_partition};
use crate::replica_manager::ReplicaManager;
use crate::transactions::coordinator::TxnCoordinator;

/// Wait before retrying a failed load (a log read error, or leadership moving meanwhile).
const LOAD_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct TxnLoader {
    coordinator: Arc<TxnCoordinator>,
    replicas: Arc<ReplicaManager>,
    /// Told which image the shards now follow (see `CoordinatorAuthority`).
    authority: Arc<CoordinatorAuthority>,
    /// The state topic the shards were loaded from: a recreated topic reloads everything.
    topic_id: std::sync::Mutex<Option<Uuid>>,
    retry: tokio::sync::Notify,
}

/// `TxnReplay` with undecodable batches counted.
struct Sink {
    replay: TxnReplay,
    skipped_batches: u64,
}

impl RecordSink for Sink {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.replay.apply(key, value);
    }

    fn skip_batch(&mut self, base_offset: i64, record_count: i32, why: &str) {
        tracing::warn!(base_offset, record_count, %why, "skipping an unreadable __transaction_state batch");
        self.skipped_batches += 1;
    }
}

impl TxnLoader {
    pub fn new(
        coordinator: Arc<TxnCoordinator>,
        replicas: Arc<ReplicaManager>,
        authority: Arc<CoordinatorAuthority>,
    ) -> Arc<Self> {
        Arc::new(Self {
            coordinator,
            replicas,
            authority,
            topic_id: std::sync::Mutex::new(None),
            retry: tokio::sync::Notify::new(),
        })
    }

    /// Runs until the replica manager goes away, reacting to every applied image.
    pub async fn run(self: Arc<Self>) {
        let mut images = self.replicas.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            self.reconcile(&image);
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

    fn reconcile(self: &Arc<Self>, image: &MetadataImage) {
        let (topic_id, led) = led_partitions(&self.replicas, image, TRANSACTION_STATE_TOPIC);
        self.coordinator
            .set_transaction_version(image.transaction_version());
        if let Some(topic) = image.topic_by_name(TRANSACTION_STATE_TOPIC) {
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
                self.coordinator.unload(partition);
            }
        }
        self.authority.acted_on(image.last_applied_index);
        let loaded = self.coordinator.loaded_partitions();
        for (partition, (epoch, log)) in led {
            if loaded.contains(&(partition, epoch)) {
                continue;
            }
            self.coordinator.begin_load(partition, epoch);
            let coordinator = Arc::clone(&self.coordinator);
            let loader = Arc::clone(self);
            tokio::spawn(async move {
                let read = tokio::task::spawn_blocking(move || read_partition(&log)).await;
                match read {
                    Ok(Ok(sink)) => {
                        let (_, skipped) = sink.replay.counts();
                        shoal_metrics::record_internal_records_skipped(
                            TRANSACTION_STATE_TOPIC,
                            skipped as u64 + sink.skipped_batches,
                        );
                        if let Some(why) = sink.replay.last_skip() {
                            tracing::warn!(
                                partition,
                                skipped,
                                last = why,
                                "skipped undecodable __transaction_state records"
                            );
                        }
                        coordinator.finish_load(partition, epoch, sink.replay.finish());
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(partition, epoch, %error, "loading a __transaction_state partition failed");
                        coordinator.abandon_load(partition, epoch);
                        tokio::time::sleep(LOAD_RETRY_DELAY).await;
                        loader.retry.notify_one();
                    }
                    Err(error) => {
                        tracing::error!(partition, epoch, %error, "__transaction_state load task failed");
                        coordinator.abandon_load(partition, epoch);
                        tokio::time::sleep(LOAD_RETRY_DELAY).await;
                        loader.retry.notify_one();
                    }
                }
            });
        }
    }
}

fn read_partition(partition: &Partition) -> Result<Sink, PartitionError> {
    let mut sink = Sink {
        replay: TxnReplay::new(),
        skipped_batches: 0,
    };
    replay_partition(partition, &mut sink)?;
    Ok(sink)
}
