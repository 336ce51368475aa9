//! The Raft state machine: applies committed entries to the [`MetadataImage`] and publishes it.
//!
//! The image lives in memory; durability comes from the Raft log plus snapshots. A snapshot is
//! the versioned encoding of the image ([`crate::format::encode_snapshot`]) and is persisted in sled together with its openraft metadata in
//! one atomic batch. On start the state machine loads the last snapshot and openraft re-applies
//! the committed entries after it (`save_committed` in the log store makes that possible), so the
//! rebuilt image is exactly the one before the restart.
//!
//! After every `apply` (and snapshot install) the new image is published on a
//! `tokio::sync::watch` channel; observers get an immutable `Arc<MetadataImage>`. The image is
//! copied on write (`Arc::make_mut`) at most once per `apply` call, which is cheap for metadata.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageError, StorageIOError,
};
use tokio::sync::watch;

use crate::error::MetaError;
use crate::format::{self, FormatError};
use crate::image::MetadataImage;
use crate::metadata_log::MetadataJournal;
use crate::raft::storage_error;
use crate::raft::types::{
    AppliedEntry, MetaEntry, MetaLogId, MetaSnapshotMeta, MetaStoredMembership, NodeId, TypeConfig,
};

const SNAPSHOT_TREE: &str = "snapshot";
const KEY_META: &str = "meta";
const KEY_DATA: &str = "data";
/// Largest snapshot accepted from disk or from a leader. Metadata of even a large cluster is a
/// few MiB; anything near this limit is corruption or abuse.
pub const MAX_SNAPSHOT_SIZE_BYTES: usize = 256 * 1024 * 1024;

fn encode_payload(image: &MetadataImage) -> Vec<u8> {
    format::encode_snapshot(image)
}

fn decode_payload(data: &[u8]) -> Result<MetadataImage, FormatError> {
    if data.len() > MAX_SNAPSHOT_SIZE_BYTES {
        return Err(FormatError::Malformed {
            what: "metadata snapshot",
            reason: format!(
                "{} bytes, more than the limit of {MAX_SNAPSHOT_SIZE_BYTES}",
                data.len()
            ),
        });
    }
    format::decode_snapshot(data)
}

#[derive(Debug)]
struct SnapshotDecodeError(String);

impl std::fmt::Display for SnapshotDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SnapshotDecodeError {}

/// The persisted snapshot store (one current snapshot).
#[derive(Clone)]
struct SnapshotStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl SnapshotStore {
    fn read(&self) -> Result<Option<(MetaSnapshotMeta, Vec<u8>)>, MetaError> {
        let meta = self.tree.get(KEY_META)?;
        let data = self.tree.get(KEY_DATA)?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta: MetaSnapshotMeta =
                    format::decode_state("snapshot meta", &meta).map_err(|source| {
                        MetaError::UnreadableStore {
                            location: "snapshot `meta`".to_string(),
                            source,
                        }
                    })?;
                Ok(Some((meta, data.to_vec())))
            }
            (None, None) => Ok(None),
            _ => Err(MetaError::CorruptStore(
                "snapshot meta and data are not both present".to_string(),
            )),
        }
    }

    /// Stores `meta` + `data` atomically and flushes. With `only_if_newer`, keeps an existing
    /// snapshot that already covers at least as much of the log (a snapshot built concurrently
    /// with an install must not replace the installed one).
    async fn write(
        &self,
        meta: &MetaSnapshotMeta,
        data: &[u8],
        only_if_newer: bool,
    ) -> Result<(), StorageError<NodeId>> {
        let make = |e: String| storage_error(write_snapshot_io, SnapshotDecodeError(e));
        if only_if_newer
            && let Some((current, _)) = self.read().map_err(|e| make(e.to_string()))?
            && current.last_log_id >= meta.last_log_id
        {
            return Ok(());
        }
        let meta_bytes = format::encode_state(meta).map_err(|e| make(e.to_string()))?;
        let mut batch = sled::Batch::default();
        batch.insert(KEY_META, meta_bytes);
        batch.insert(KEY_DATA, data);
        self.tree
            .apply_batch(batch)
            .map_err(|e| make(e.to_string()))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| make(e.to_string()))?;
        Ok(())
    }
}

fn write_snapshot_io(e: openraft::AnyError) -> StorageIOError<NodeId> {
    StorageIOError::write_snapshot(None, e)
}

/// Applies committed metadata entries; owned by openraft.
pub struct MetaStateMachine {
    image: Arc<MetadataImage>,
    last_applied: Option<MetaLogId>,
    last_membership: MetaStoredMembership,
    snapshots: SnapshotStore,
    publisher: watch::Sender<Arc<MetadataImage>>,
    /// Recently applied batches, for brokers that follow the log (`metadata_log`).
    journal: Arc<Mutex<MetadataJournal>>,
}

impl MetaStateMachine {
    /// Opens the state machine from the last persisted snapshot (or empty), returning it and a
    /// receiver of published images.
    pub fn open(
        db: &sled::Db,
        cluster_id: &str,
    ) -> Result<(Self, watch::Receiver<Arc<MetadataImage>>), MetaError> {
        let snapshots = SnapshotStore {
            db: db.clone(),
            tree: db.open_tree(SNAPSHOT_TREE)?,
        };
        let (image, last_applied, last_membership) = match snapshots.read()? {
            Some((meta, data)) => {
                let image = decode_payload(&data).map_err(|source| MetaError::UnreadableStore {
                    location: "snapshot `data`".to_string(),
                    source,
                })?;
                if image.cluster_id != cluster_id {
                    return Err(MetaError::CorruptStore(format!(
                        "snapshot belongs to cluster '{}', this node to '{cluster_id}'",
                        image.cluster_id
                    )));
                }
                (image, meta.last_log_id, meta.last_membership)
            }
            None => (
                MetadataImage::empty(cluster_id),
                None,
                MetaStoredMembership::default(),
            ),
        };
        let journal = Arc::new(Mutex::new(MetadataJournal::new(image.last_applied_index)));
        let image = Arc::new(image);
        let (publisher, receiver) = watch::channel(image.clone());
        Ok((
            MetaStateMachine {
                image,
                last_applied,
                last_membership,
                snapshots,
                publisher,
                journal,
            },
            receiver,
        ))
    }

    /// The journal of applied batches; updated before each image is published, so a reader
    /// that saw an image finds at least its batches in the journal.
    pub fn journal(&self) -> Arc<Mutex<MetadataJournal>> {
        Arc::clone(&self.journal)
    }

    fn lock_journal(&self) -> std::sync::MutexGuard<'_, MetadataJournal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self) {
        self.publisher.send_replace(self.image.clone());
    }
}

impl RaftStateMachine<TypeConfig> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<MetaLogId>, MetaStoredMembership), StorageError<NodeId>> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<AppliedEntry>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = MetaEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let image = Arc::make_mut(&mut self.image);
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        for entry in entries {
            debug_assert!(
                self.last_applied
                    .is_none_or(|last| last.index < entry.log_id.index),
                "entries applied out of order"
            );
            let mut journaled = None;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    for record in &batch {
                        // Skipped records are logged by `apply`; they change nothing.
                        let _ = image.apply(record);
                    }
                    journaled = Some(Arc::new(batch));
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership =
                        MetaStoredMembership::new(Some(entry.log_id), membership);
                }
            }
            image.mark_applied(entry.log_id.index);
            journal.applied(entry.log_id.index, journaled);
            self.last_applied = Some(entry.log_id);
            responses.push(AppliedEntry {
                log_index: entry.log_id.index,
            });
        }
        drop(journal);
        self.publish();
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetaSnapshotBuilder {
            image: self.image.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &MetaSnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let image = decode_payload(&data).map_err(|e| {
            storage_error(
                |any| StorageIOError::read_snapshot(Some(meta.signature()), any),
                SnapshotDecodeError(e.to_string()),
            )
        })?;
        if image.cluster_id != self.image.cluster_id {
            return Err(storage_error(
                |any| StorageIOError::read_snapshot(Some(meta.signature()), any),
                SnapshotDecodeError(format!(
                    "snapshot belongs to cluster '{}', this node to '{}'",
                    image.cluster_id, self.image.cluster_id
                )),
            ));
        }
        self.snapshots.write(meta, &data, false).await?;
        tracing::info!(snapshot = %meta, "installed metadata snapshot");
        self.lock_journal().reset(image.last_applied_index);
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let stored = self.snapshots.read().map_err(|e| {
            storage_error(
                |any| StorageIOError::read_snapshot(None, any),
                SnapshotDecodeError(e.to_string()),
            )
        })?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds a snapshot from a point-in-time copy of the image (the `Arc` is immutable).
pub struct MetaSnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<MetaLogId>,
    last_membership: MetaStoredMembership,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let data = encode_payload(&self.image);
        // Same log id ⇒ same image ⇒ same bytes (serialization is deterministic), so the log id
        // identifies the snapshot.
        let snapshot_id = match self.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = MetaSnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        self.snapshots.write(&meta, &data, true).await?;
        tracing::info!(snapshot = %meta, size_bytes = data.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
