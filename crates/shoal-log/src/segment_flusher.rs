//! Background fsync of segments as they are sealed, so the recovery point keeps up with the
//! log without stalling appends.
//!
//! Kafka flushes a segment asynchronously when it rolls and then advances the recovery point
//! to the new segment's base offset; that is what keeps an unclean restart from rescanning the
//! whole log. An fsync of a just-sealed 1 GiB segment can take a second, far too long to hold
//! the partition's lock, so it runs on a short-lived thread holding `Arc<File>`s. Each job
//! syncs every sealed segment above the recovery point it saw, so jobs may finish in any order
//! and the flushed offset only moves up. Truncation invalidates running jobs: their offsets
//! may no longer describe what is on disk. At most `MAX_IN_FLIGHT` jobs run per log; a roll
//! that would start one more first waits for the oldest.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::checkpoint::sync_dir;

const MAX_IN_FLIGHT: usize = 2;

#[derive(Debug)]
struct Flushed {
    /// Bumped by `invalidate`; jobs from an older generation report nothing.
    generation: u64,
    /// Every offset below this is fsynced (only meaningful for the current generation).
    offset: Option<i64>,
}

pub(crate) struct SegmentFlusher {
    dir: PathBuf,
    flushed: Arc<Mutex<Flushed>>,
    in_flight: VecDeque<JoinHandle<()>>,
}

impl SegmentFlusher {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            flushed: Arc::new(Mutex::new(Flushed {
                generation: 0,
                offset: None,
            })),
            in_flight: VecDeque::new(),
        }
    }

    /// Starts an fsync of `files` (and the directory, for the new segment's entries); once it
    /// completes, offsets below `up_to_offset` count as flushed.
    pub(crate) fn flush_in_background(&mut self, files: Vec<Arc<File>>, up_to_offset: i64) {
        while self.in_flight.front().is_some_and(JoinHandle::is_finished) {
            self.join_oldest();
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.join_oldest();
        }
        let generation = lock(&self.flushed).generation;
        let job = FlushJob {
            dir: self.dir.clone(),
            files,
            up_to_offset,
            generation,
            flushed: Arc::clone(&self.flushed),
        };
        let spawned = std::thread::Builder::new()
            .name("shoal-log-flush".to_owned())
            .spawn({
                let job = job.clone();
                move || job.run()
            });
        match spawned {
            Ok(handle) => self.in_flight.push_back(handle),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot start a flush thread; flushing inline");
                job.run();
            }
        }
    }

    /// The offset below which background jobs have fsynced everything, if any finished.
    pub(crate) fn flushed_offset(&self) -> Option<i64> {
        lock(&self.flushed).offset
    }

    /// Forgets finished and running jobs' results (the log was truncated).
    pub(crate) fn invalidate(&mut self) {
        let mut flushed = lock(&self.flushed);
        flushed.generation += 1;
        flushed.offset = None;
    }

    /// Waits for every running job.
    pub(crate) fn wait(&mut self) {
        while !self.in_flight.is_empty() {
            self.join_oldest();
        }
    }

    fn join_oldest(&mut self) {
        if let Some(handle) = self.in_flight.pop_front()
            && handle.join().is_err()
        {
            tracing::error!(dir = %self.dir.display(), "a segment flush thread panicked");
        }
    }
}

#[derive(Clone)]
struct FlushJob {
    dir: PathBuf,
    files: Vec<Arc<File>>,
    up_to_offset: i64,
    generation: u64,
    flushed: Arc<Mutex<Flushed>>,
}

impl FlushJob {
    fn run(self) {
        for file in &self.files {
            if let Err(e) = file.sync_data() {
                // Kafka takes the log dir offline here; we keep the recovery point where it is,
                // so a restart rescans, and the next explicit flush reports the error.
                tracing::error!(dir = %self.dir.display(), error = %e, "background segment fsync failed");
                return;
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %e, "background directory fsync failed");
            return;
        }
        let mut flushed = lock(&self.flushed);
        if flushed.generation == self.generation {
            flushed.offset = Some(
                flushed
                    .offset
                    .map_or(self.up_to_offset, |o| o.max(self.up_to_offset)),
            );
        }
    }
}

fn lock(flushed: &Mutex<Flushed>) -> std::sync::MutexGuard<'_, Flushed> {
    // The guarded data is two integers updated atomically under the lock; a panic elsewhere
    // cannot leave them half-written.
    flushed.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_highest_completed_offset_and_forgets_on_invalidate() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(tempfile::tempfile_in(dir.path()).unwrap());
        let mut flusher = SegmentFlusher::new(dir.path());
        assert_eq!(flusher.flushed_offset(), None);
        flusher.flush_in_background(vec![Arc::clone(&file)], 100);
        flusher.flush_in_background(vec![Arc::clone(&file)], 50);
        flusher.flush_in_background(vec![Arc::clone(&file)], 200);
        flusher.wait();
        assert_eq!(flusher.flushed_offset(), Some(200));
        flusher.invalidate();
        assert_eq!(flusher.flushed_offset(), None);
        flusher.flush_in_background(vec![file], 300);
        flusher.wait();
        assert_eq!(flusher.flushed_offset(), Some(300));
    }
}
