//! Moving a replica between this broker's log directories (AlterReplicaLogDirs, KIP-113):
//! a disk filling up, a new disk to spread onto, an old one to empty before it is pulled.
//!
//! Kafka copies through a "future" log that a local fetcher fills from the current one. Here
//! the copy is of the files themselves, which are the log's exact state: while the replica
//! keeps serving, the log is rolled and its sealed segments (and whatever changed since the
//! last pass) are copied into `<target>/<topic>-<p>.<id>-future` (`file_sync`), in passes
//! until the active segment is small. Then, briefly, the replica is closed (its waiters are
//! told NOT_LEADER_OR_FOLLOWER and retry), the last segment and the small files are copied,
//! everything is fsynced, and the copy is marked complete (`interrupted::COMPLETE_FILE`):
//! the commit point. The source is set aside and deleted, the copy renamed into place and the
//! replica reopened from it, at the same leader epoch; nothing in the metadata changes, as in
//! Kafka. A crash at any point is finished or undone at the next start (`interrupted`).
//!
//! Bounds: at most `num.replica.alter.log.dirs.threads` copies run at once (Kafka's default,
//! one per log directory); copies are throttled by
//! `replica.alter.log.dirs.io.max.bytes.per.second`; a replica moves at most
//! [`MAX_PASSES_WHILE_SERVING`] passes before its last one, and that last one copies at most
//! about [`FINAL_PASS_TARGET_BYTES`] of active segment under load (it rolls whenever more).

pub mod decide;
pub mod file_sync;
pub mod interrupted;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::replica_manager::PartitionKey;

/// Copy passes while the replica serves, before the final one with it closed; a copy that
/// has not caught up by then (throttled below the write rate) is given up.
pub const MAX_PASSES_WHILE_SERVING: usize = 16;

/// The active segment is rolled before a pass when larger, so the final pass (during which
/// the replica does not serve) copies about this much at most.
pub const FINAL_PASS_TARGET_BYTES: u64 = 4 * 1024 * 1024;

/// Most remembered directories for replicas not created yet (Kafka's preferred log dirs).
pub const MAX_PREFERRED_LOG_DIRS: usize = 10_000;

/// Kafka's name for the copy throttle (dynamic, per broker or cluster-wide).
pub const IO_MAX_BYTES_PER_SECOND: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// Kafka's name for how many copies run at once.
pub const THREADS: &str = "num.replica.alter.log.dirs.threads";

/// A move in progress.
#[derive(Debug)]
pub struct Move {
    /// Position of the target directory in `log.dirs`.
    pub target: usize,
    /// Where the copy is made.
    pub future_dir: PathBuf,
    pub cancel: AtomicBool,
    pub progress: file_sync::Progress,
}

impl Move {
    pub fn new(target: usize, future_dir: PathBuf, log_start_offset: i64) -> Move {
        Move {
            target,
            future_dir,
            cancel: AtomicBool::new(false),
            progress: file_sync::Progress {
                bytes: AtomicU64::new(0),
                offset: AtomicI64::new(log_start_offset),
            },
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

/// The moves in progress and the remembered directories of replicas not yet created.
#[derive(Debug, Default)]
pub struct MoveRegistry {
    moves: Mutex<HashMap<PartitionKey, Arc<Move>>>,
    preferred: Mutex<HashMap<(String, i32), usize>>,
}

impl MoveRegistry {
    pub fn get(&self, key: PartitionKey) -> Option<Arc<Move>> {
        lock(&self.moves).get(&key).cloned()
    }

    pub fn all(&self) -> Vec<(PartitionKey, Arc<Move>)> {
        lock(&self.moves)
            .iter()
            .map(|(k, m)| (*k, Arc::clone(m)))
            .collect()
    }

    /// Registers a new move, cancelling the one it replaces.
    pub fn insert(&self, key: PartitionKey, new: Arc<Move>) {
        if let Some(old) = lock(&self.moves).insert(key, new) {
            old.cancel.store(true, Ordering::Release);
        }
    }

    /// Cancels and forgets the move of `key`.
    pub fn cancel(&self, key: PartitionKey) {
        if let Some(old) = lock(&self.moves).remove(&key) {
            old.cancel.store(true, Ordering::Release);
        }
    }

    /// Forgets `this` move of `key` (it ended), unless another replaced it.
    pub fn finished(&self, key: PartitionKey, this: &Arc<Move>) {
        let mut moves = lock(&self.moves);
        if moves.get(&key).is_some_and(|m| Arc::ptr_eq(m, this)) {
            moves.remove(&key);
        }
    }

    /// Remembers where `topic`-`partition` goes when it is created here; false when the
    /// bound is reached.
    pub fn prefer(&self, topic: &str, partition: i32, dir: usize) -> bool {
        let mut preferred = lock(&self.preferred);
        let key = (topic.to_string(), partition);
        if preferred.len() >= MAX_PREFERRED_LOG_DIRS && !preferred.contains_key(&key) {
            return false;
        }
        preferred.insert(key, dir);
        true
    }

    /// The remembered directory of `topic`-`partition`, forgotten as it is taken.
    pub fn take_preferred(&self, topic: &str, partition: i32) -> Option<usize> {
        lock(&self.preferred).remove(&(topic.to_string(), partition))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The copy throttle from a setting's value (Kafka's default, `Long.MAX_VALUE`, is none).
pub fn io_rate(value: Option<&str>) -> Option<u64> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|rate| *rate > 0 && *rate < i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_move_cancels_the_one_it_replaces() {
        let registry = MoveRegistry::default();
        let key = (uuid::Uuid::from_u128(1), 0);
        let first = Arc::new(Move::new(1, PathBuf::from("/b/x"), 0));
        registry.insert(key, Arc::clone(&first));
        let second = Arc::new(Move::new(2, PathBuf::from("/c/x"), 0));
        registry.insert(key, Arc::clone(&second));
        assert!(first.is_cancelled());
        assert!(!second.is_cancelled());
        // The first one ending does not forget the second.
        registry.finished(key, &first);
        assert!(registry.get(key).is_some_and(|m| Arc::ptr_eq(&m, &second)));
        registry.finished(key, &second);
        assert!(registry.get(key).is_none());
    }

    #[test]
    fn preferred_directories_are_bounded_and_taken_once() {
        let registry = MoveRegistry::default();
        assert!(registry.prefer("t", 0, 1));
        assert_eq!(registry.take_preferred("t", 0), Some(1));
        assert_eq!(registry.take_preferred("t", 0), None);
        for p in 0..MAX_PREFERRED_LOG_DIRS {
            assert!(registry.prefer("t", p as i32, 1));
        }
        assert!(!registry.prefer("u", 0, 1));
        // An entry already there may change.
        assert!(registry.prefer("t", 0, 2));
    }

    #[test]
    fn the_io_rate_defaults_to_none() {
        assert_eq!(io_rate(None), None);
        assert_eq!(io_rate(Some("9223372036854775807")), None);
        assert_eq!(io_rate(Some("1048576")), Some(1_048_576));
        assert_eq!(io_rate(Some("0")), None);
        assert_eq!(io_rate(Some("x")), None);
    }
}
