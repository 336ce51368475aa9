//! The Raft log and vote, stored in sled.
//!
//! Contract (openraft `RaftLogStorage`): logs are consecutive with no holes; all writes are
//! serialized (openraft calls them one at a time on `&mut self`); a vote or appended entry is on
//! disk before openraft is told so. Every acknowledged write is followed by
//! `flush_async().await`, so a committed entry survives SIGKILL and power loss (sled fsyncs on
//! flush). `committed` is saved without a flush: losing the latest value only means re-applying
//! fewer entries at start-up; the entries themselves are durable and the leader re-commits them.

// openraft's `StorageError` is large, and the trait fixes it as the error type.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::MetaError;
use crate::format::{self, FormatError};
use crate::raft::storage_error;
use crate::raft::types::{MetaEntry, MetaLogId, NodeId, TypeConfig};

const LOG_TREE: &str = "raft_log";
const STATE_TREE: &str = "raft_state";
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// sled-backed Raft log. Cheap to clone (sled trees are shared handles); clones are the log
/// readers openraft hands to replication tasks.
#[derive(Clone)]
pub struct SledLogStore {
    db: sled::Db,
    logs: sled::Tree,
    state: sled::Tree,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode_entry(value: &[u8]) -> Result<MetaEntry, StorageError<NodeId>> {
    format::decode_entry(value).map_err(|e| storage_error(StorageIOError::read_logs, e))
}

impl SledLogStore {
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(SledLogStore {
            db: db.clone(),
            logs: db.open_tree(LOG_TREE)?,
            state: db.open_tree(STATE_TREE)?,
        })
    }

    /// Decodes every stored entry and state value, so a store this binary cannot read (a
    /// version written by a newer Shoal, or damage) refuses start-up with the reason before
    /// openraft touches it, and nothing is rewritten. Metadata logs are short (snapshots purge
    /// them), so reading them once at start is cheap.
    pub fn check_readable(&self) -> Result<(), MetaError> {
        let unreadable =
            |location: String, source: FormatError| MetaError::UnreadableStore { location, source };
        let state = |key: &'static str, check: fn(&[u8]) -> Result<(), FormatError>| match self
            .state
            .get(key)?
        {
            Some(bytes) => check(&bytes).map_err(|e| unreadable(format!("raft_state `{key}`"), e)),
            None => Ok(()),
        };
        state(KEY_VOTE, |b| {
            format::decode_state::<Vote<NodeId>>(KEY_VOTE, b).map(drop)
        })?;
        state(KEY_COMMITTED, |b| {
            format::decode_state::<Option<MetaLogId>>(KEY_COMMITTED, b).map(drop)
        })?;
        state(KEY_LAST_PURGED, |b| {
            format::decode_state::<MetaLogId>(KEY_LAST_PURGED, b).map(drop)
        })?;
        for item in self.logs.iter() {
            let (key, value) = item?;
            let index = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    MetaError::CorruptStore(format!("raft_log key of {} bytes", key.len()))
                })?;
            let entry = format::decode_entry(&value)
                .map_err(|e| unreadable(format!("raft_log entry {index}"), e))?;
            if entry.log_id.index != index {
                return Err(MetaError::CorruptStore(format!(
                    "raft_log entry stored at index {index} says it is entry {}",
                    entry.log_id.index
                )));
            }
        }
        Ok(())
    }

    fn read_state<T: DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let Some(bytes) = self
            .state
            .get(key)
            .map_err(|e| storage_error(StorageIOError::read, e))?
        else {
            return Ok(None);
        };
        format::decode_state(key, &bytes)
            .map(Some)
            .map_err(|e| storage_error(StorageIOError::read, e))
    }

    fn write_state<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        make: fn(openraft::AnyError) -> StorageIOError<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = format::encode_state(value).map_err(|e| storage_error(make, e))?;
        self.state
            .insert(key, bytes)
            .map_err(|e| storage_error(make, e))?;
        Ok(())
    }

    async fn flush(
        &self,
        make: fn(openraft::AnyError) -> StorageIOError<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.db
            .flush_async()
            .await
            .map_err(|e| storage_error(make, e))?;
        Ok(())
    }

    fn last_purged(&self) -> Result<Option<MetaLogId>, StorageError<NodeId>> {
        self.read_state(KEY_LAST_PURGED)
    }

    /// Removes every entry with index in `range`.
    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError<NodeId>> {
        let mut batch = sled::Batch::default();
        for item in self.logs.range(range) {
            let (key, _) = item.map_err(|e| storage_error(StorageIOError::write_logs, e))?;
            batch.remove(key);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| storage_error(StorageIOError::write_logs, e))
    }
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<MetaEntry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in self.logs.range(index_key(start)..) {
            let (key, value) = item.map_err(|e| storage_error(StorageIOError::read_logs, e))?;
            let entry = decode_entry(&value)?;
            if !range.contains(&entry.log_id.index) {
                break;
            }
            debug_assert_eq!(key.as_ref(), index_key(entry.log_id.index).as_slice());
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = SledLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id = self.last_purged()?;
        let last = self
            .logs
            .last()
            .map_err(|e| storage_error(StorageIOError::read_logs, e))?;
        let last_log_id = match last {
            Some((_, value)) => Some(decode_entry(&value)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_state(KEY_VOTE, vote, StorageIOError::write_vote)?;
        self.flush(StorageIOError::write_vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_state(KEY_VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<MetaLogId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write_state(KEY_COMMITTED, &committed, StorageIOError::write)
    }

    async fn read_committed(&mut self) -> Result<Option<MetaLogId>, StorageError<NodeId>> {
        Ok(self
            .read_state::<Option<MetaLogId>>(KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = MetaEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = format::encode_entry(&entry)
                .map_err(|e| storage_error(StorageIOError::write_logs, e))?;
            batch.insert(&index_key(entry.log_id.index), bytes);
        }
        let written = self
            .logs
            .apply_batch(batch)
            .map_err(|e| storage_error(StorageIOError::write_logs, e));
        let result = match written {
            Ok(()) => self.flush(StorageIOError::write_logs).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: MetaLogId) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(%log_id, "truncating raft log");
        self.remove_range(index_key(log_id.index)..)?;
        self.flush(StorageIOError::write_logs).await
    }

    async fn purge(&mut self, log_id: MetaLogId) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(%log_id, "purging raft log");
        // Record the purge point first: a crash in between leaves extra entries (harmless), never
        // a hole that `get_log_state` would not know about.
        self.write_state(KEY_LAST_PURGED, &log_id, StorageIOError::write_logs)?;
        self.remove_range(..=index_key(log_id.index))?;
        self.flush(StorageIOError::write_logs).await
    }
}
