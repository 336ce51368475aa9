//! `FetcherManager`: which leader each followed partition is fetched from, kept in step with
//! the metadata image (Kafka's `ReplicaFetcherManager`).
//!
//! After every applied image the manager computes, for each leader broker, the partitions this
//! broker follows from it and the leader epoch of each, and hands each fetcher its set; a
//! fetcher whose set changed starts a new request at once, a leader with nothing left to fetch
//! loses its fetcher. Partitions without a leader are fetched from nobody until they get one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use shoal_meta::MetadataImage;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::replication::fetcher::{Assignment, FetcherContext, run_fetcher};

struct FetcherHandle {
    assignment: watch::Sender<Arc<Assignment>>,
    task: JoinHandle<()>,
}

pub struct FetcherManager {
    ctx: Arc<FetcherContext>,
    fetchers: Mutex<HashMap<i32, FetcherHandle>>,
}

impl FetcherManager {
    pub fn new(ctx: FetcherContext) -> Self {
        FetcherManager {
            ctx: Arc::new(ctx),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Re-points fetchers after `image` was applied to the hosted partitions.
    pub fn update(&self, image: &MetadataImage) {
        let local = self.ctx.broker_id;
        let mut wanted: BTreeMap<i32, Assignment> = BTreeMap::new();
        for topic in image.topics.values() {
            for p in &topic.partitions {
                if p.leader < 0 || p.leader == local || !p.replicas.contains(&local) {
                    continue;
                }
                if self.ctx.replicas.partition(topic.id, p.partition).is_none() {
                    continue;
                }
                wanted
                    .entry(p.leader)
                    .or_default()
                    .insert((topic.id, p.partition), p.leader_epoch);
            }
        }
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        fetchers.retain(|leader, handle| {
            if wanted.contains_key(leader) {
                return true;
            }
            handle.task.abort();
            tracing::debug!(leader, "stopped fetching from a broker");
            false
        });
        for (leader, assignment) in wanted {
            match fetchers.get(&leader) {
                Some(handle) => {
                    handle.assignment.send_if_modified(|current| {
                        if **current == assignment {
                            return false;
                        }
                        *current = Arc::new(assignment.clone());
                        true
                    });
                }
                None => {
                    let count = assignment.len();
                    let (tx, rx) = watch::channel(Arc::new(assignment));
                    let task = tokio::spawn(run_fetcher(Arc::clone(&self.ctx), leader, rx));
                    tracing::info!(leader, partitions = count, "fetching from a leader");
                    fetchers.insert(
                        leader,
                        FetcherHandle {
                            assignment: tx,
                            task,
                        },
                    );
                }
            }
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop(&self) {
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, handle) in fetchers.drain() {
            handle.task.abort();
        }
    }
}

impl Drop for FetcherManager {
    fn drop(&mut self) {
        self.stop();
    }
}
