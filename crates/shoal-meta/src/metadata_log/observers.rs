//! `Observers`: the nodes that fetch the metadata log without voting, and how far they are.
//!
//! What `kafka-metadata-quorum.sh describe --replication` lists as observers. Kept in memory on
//! the voter that serves the fetches (brokers fetch from the leader), bounded in count.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most observers remembered; the longest silent is dropped first.
const MAX_OBSERVERS: usize = 10_000;

/// One observer as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserverStatus {
    pub node_id: i32,
    /// The offset it reported having applied.
    pub applied_offset: u64,
    /// Time since its last fetch.
    pub since_last_fetch: Duration,
}

#[derive(Debug, Default)]
pub struct Observers {
    seen: Mutex<BTreeMap<i32, (u64, Instant)>>,
}

impl Observers {
    pub fn record(&self, node_id: i32, applied_offset: u64, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(node_id, (applied_offset, now));
        if seen.len() > MAX_OBSERVERS
            && let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id)
        {
            seen.remove(&oldest);
        }
    }

    pub fn list(&self, now: Instant) -> Vec<ObserverStatus> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .map(|(node_id, (applied_offset, at))| ObserverStatus {
                node_id: *node_id,
                applied_offset: *applied_offset,
                since_last_fetch: now.saturating_duration_since(*at),
            })
            .collect()
    }
}
