//! A [`Log`] shared by the threads that append to it and the ones that read it.
//!
//! Why two locks (as Kafka's `UnifiedLog`, whose reads take no lock): `writer` serialises
//! every change of the log and is held across an append's data write; `log`, a read/write
//! lock, guards the in-memory state, and a writer holds it exclusively only for the in-memory
//! steps before and after that write. A reader holds `log` shared just long enough to pick a
//! segment and a start position, then `pread`s with no lock. So reads wait neither for each
//! other nor for an append's `write`, and a slow disk stalls appends, not fetches.
//!
//! Why unlocked reads are safe:
//! - a reader reads only below the segment end it saw under the lock and keeps only whole
//!   batches below its `max_offset` (the high watermark for consumers); an append writes only
//!   above that end, and makes its bytes visible only after they are written;
//! - retention, DeleteRecords and compaction unlink or replace files; the reader's open handle
//!   still reads the old bytes, which were valid for those offsets;
//! - a truncation can cut bytes a reader is reading (and a later append rewrite them): every
//!   truncation bumps the log's truncation count, and a read that overlapped one is thrown
//!   away and done again.
//!
//! Everything here blocks on disk I/O: async callers run it on a blocking thread.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::Result;
use crate::log::{AppendInfo, Log, PreparedAppend, ReadInfo, ReadStep};
use crate::validator::AppendOrigin;

/// Unlocked read attempts before a read gives up racing truncations and holds the lock.
const UNLOCKED_READ_ATTEMPTS: usize = 3;

/// What an append did, with the log's offsets right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub info: AppendInfo,
    pub log_end_offset: i64,
    pub log_start_offset: i64,
}

/// See the module docs.
pub struct SharedLog {
    writer: Mutex<()>,
    log: RwLock<Log>,
}

// A panic under a lock is a bug already reported; the log stays consistent because every
// step updates memory only after its I/O succeeded, so the poison is ignored.
fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl SharedLog {
    pub fn new(log: Log) -> Self {
        Self {
            writer: Mutex::new(()),
            log: RwLock::new(log),
        }
    }

    /// The log back, for `close` or `delete`.
    pub fn into_inner(self) -> Log {
        self.log.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the log's state; waits only for a writer's in-memory steps.
    pub fn with<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        f(&self.read_guard())
    }

    /// Runs `f` with the log to itself (truncation, retention, config, checkpoints): waits for
    /// an append in flight and holds off readers until it returns.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut Log) -> R) -> R {
        let _writer = lock(&self.writer);
        f(&mut self.write_guard())
    }

    /// [`Log::append_as_leader`], writing without blocking readers.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Appended> {
        self.append_as_leader_from(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`Log::append_as_leader_from`], writing without blocking readers.
    pub fn append_as_leader_from(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<Appended> {
        self.append_with(
            records,
            now_ms,
            |log| log.prepare_leader_append(records, leader_epoch, now_ms, origin),
            || {},
        )
    }

    /// [`Self::append_as_leader_from`] only if it waits for nothing but readers' brief holds
    /// and does nothing but a page-cache write ([`Log::append_is_light`]): no other append,
    /// truncation or checkpoint in progress, no roll, no fsync. `None`, with nothing done,
    /// otherwise. For small appends from async threads, which then skip a trip to a blocking
    /// thread.
    pub fn try_append_as_leader_light(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Option<Result<Appended>> {
        let _writer = match self.writer.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let prepared = {
            let mut log = match self.log.try_write() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return None,
            };
            if !log.append_is_light(records.len(), leader_epoch, now_ms) {
                return None;
            }
            match log.prepare_leader_append(records, leader_epoch, now_ms, origin) {
                Ok(prepared) => prepared,
                Err(e) => return Some(Err(e)),
            }
        };
        let result = prepared.write(records);
        let mut log = self.write_guard();
        Some(
            log.commit_append(prepared, result, now_ms)
                .map(|info| Appended {
                    info,
                    log_end_offset: log.log_end_offset(),
                    log_start_offset: log.log_start_offset(),
                }),
        )
    }

    /// [`Log::append_as_follower`], writing without blocking readers.
    pub fn append_as_follower(&self, records: &[u8], now_ms: i64) -> Result<Appended> {
        if records.is_empty() {
            return self.with(|log| {
                log.check_online()?;
                Ok(Appended {
                    info: log.empty_append(),
                    log_end_offset: log.log_end_offset(),
                    log_start_offset: log.log_start_offset(),
                })
            });
        }
        self.append_with(
            records,
            now_ms,
            |log| log.prepare_follower_append(records, now_ms),
            || {},
        )
    }

    /// Prepare under both locks, write under `writer` only, commit under both again.
    /// `written` runs between the write and the commit (tests hold the append there).
    fn append_with(
        &self,
        records: &[u8],
        now_ms: i64,
        prepare: impl FnOnce(&mut Log) -> Result<PreparedAppend>,
        written: impl FnOnce(),
    ) -> Result<Appended> {
        let _writer = lock(&self.writer);
        let prepared = prepare(&mut self.write_guard())?;
        let result = prepared.write(records);
        written();
        let mut log = self.write_guard();
        let info = log.commit_append(prepared, result, now_ms)?;
        Ok(Appended {
            info,
            log_end_offset: log.log_end_offset(),
            log_start_offset: log.log_start_offset(),
        })
    }

    /// [`Log::read`], holding the lock only to find where to read.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        self.read_with(start_offset, max_bytes, max_offset, min_one_batch, || {})
    }

    /// `planned` runs after each step's lock is released, before its `pread` (tests change
    /// the log there).
    fn read_with(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
        mut planned: impl FnMut(),
    ) -> Result<ReadInfo> {
        for _ in 0..UNLOCKED_READ_ATTEMPTS {
            let mut truncations = None;
            let mut after_base = None;
            let result = loop {
                let step = self.with(|log| {
                    truncations.get_or_insert(log.truncations());
                    log.plan_read(start_offset, max_offset, after_base)
                });
                planned();
                match step {
                    Err(e) => break Err(e),
                    Ok(ReadStep::Done(info)) => break Ok(info),
                    Ok(ReadStep::Segment(slice)) => {
                        match slice.read(start_offset, max_bytes, max_offset, min_one_batch) {
                            Err(e) => break Err(e),
                            Ok(Some(info)) => break Ok(info),
                            Ok(None) => after_base = Some(slice.base_offset()),
                        }
                    }
                }
            };
            if truncations == Some(self.with(Log::truncations)) {
                return result;
            }
        }
        // Truncated during every attempt: read under the lock, which a truncation cannot pass.
        self.with(|log| log.read(start_offset, max_bytes, max_offset, min_one_batch))
    }
}

#[cfg(test)]
#[path = "shared_log_tests.rs"]
mod tests;
