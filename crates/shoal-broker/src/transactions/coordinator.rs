//! `TxnCoordinator`: the transaction coordinator of the `__transaction_state` partitions this
//! broker leads.
//!
//! Every decision is a pure function of `shoal-txn` (the state machine, with table tests); this
//! type holds the metadata per transactional id, one shard per coordinated partition, and does
//! the I/O around the decisions in Kafka's order:
//!
//! 1. decide under the shard lock; the decision's [`Transition`] puts the id in a pending state,
//!    so every other request on it answers CONCURRENT_TRANSACTIONS;
//! 2. write the target state to `__transaction_state` and wait until it is replicated, with no
//!    lock held;
//! 3. apply it ([`Transition::complete`]) only if the shard is still loaded at the same
//!    coordinator epoch (the partition's leader epoch), else answer NOT_COORDINATOR: a deposed
//!    coordinator never acts on a write the new one may not have read.
//!
//! Ending a transaction is two writes with markers between: EndTxn writes PrepareCommit or
//! PrepareAbort and answers the client; a completion task then writes the commit or abort
//! marker to the leader of every partition of the transaction (retrying until each is written)
//! and finally writes CompleteCommit or CompleteAbort. A coordinator that loads a partition
//! (after a failover) finishes every transaction it finds prepared there, so a transaction whose
//! commit was acknowledged always completes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI16, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kafka_protocol::ResponseError;
use shoal_replica::{ControlType, TxnMarker};
use shoal_txn::metadata::{
    AddPartitionsOutcome, EndTxnOutcome, EndTxnRequest, InitProducerIdOutcome,
    InitProducerIdRequest, ProducerIdAndEpoch, TopicPartition, TxnResult,
};
use shoal_txn::{
    LoadedTransactions, TransactionMetadata, TransactionState, TransactionVersion, TxnSettings,
};
use shoal_txn::{Transition, TxnError, records};

use crate::internal_topic::authority::CoordinatorAuthority;
use crate::producer_ids::ProducerIdManager;
use crate::time::wall_ms;
use crate::transactions::config::TxnConfig;
use crate::transactions::markers::{MarkerOutcome, MarkerWriter};
use crate::transactions::storage::{TxnStateStorage, WriteError};
use crate::transactions::txn_ids::{TxnIds, is_open};

/// Markers written at once by one completing transaction.
const MARKER_CONCURRENCY: usize = 64;
/// Markers in flight at once across every completing transaction of this coordinator, so a
/// burst of completions (a failover that loads thousands of prepared transactions) cannot open
/// unbounded writes and RPCs.
const MAX_MARKERS_IN_FLIGHT: usize = 1024;
/// Timed-out aborts and id expirations written at once by one timer sweep.
const SWEEP_CONCURRENCY: usize = 32;
/// Backoff between rounds of marker writes that must be retried.
const MARKER_RETRY_MIN: Duration = Duration::from_millis(50);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(2);

/// Why a coordinator request failed, as Kafka answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordError {
    Txn(TxnError),
    NotCoordinator,
    LoadInProgress,
    NotAvailable,
}

impl CoordError {
    pub fn code(self) -> i16 {
        match self {
            CoordError::Txn(e) => e.code(),
            CoordError::NotCoordinator => ResponseError::NotCoordinator.code(),
            CoordError::LoadInProgress => ResponseError::CoordinatorLoadInProgress.code(),
            CoordError::NotAvailable => ResponseError::CoordinatorNotAvailable.code(),
        }
    }
}

impl From<TxnError> for CoordError {
    fn from(error: TxnError) -> Self {
        CoordError::Txn(error)
    }
}

impl From<WriteError> for CoordError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::NotCoordinator => CoordError::NotCoordinator,
            WriteError::NotAvailable => CoordError::NotAvailable,
            WriteError::Other(why) => {
                tracing::warn!(%why, "writing to __transaction_state failed");
                CoordError::Txn(TxnError::UnknownServerError)
            }
        }
    }
}

/// One coordinated `__transaction_state` partition.
struct Shard {
    /// The partition's leader epoch when this broker started coordinating it.
    epoch: i32,
    /// Which load of the partition this is (unique in the process): a completion task started
    /// by one load stops when the partition is unloaded, even if it is loaded again at the same
    /// epoch.
    load: u64,
    /// `None` while loading.
    ids: Option<TxnIds>,
}

/// A transaction as DescribeTransactions and ListTransactions show it.
#[derive(Debug, Clone)]
pub struct TxnListing {
    pub transactional_id: String,
    pub coordinator_partition: i32,
    pub metadata: TransactionMetadata,
}

pub struct TxnCoordinator {
    config: TxnConfig,
    partition_count: AtomicI32,
    shards: Mutex<HashMap<i32, Shard>>,
    storage: TxnStateStorage,
    markers: MarkerWriter,
    producer_ids: Arc<ProducerIdManager>,
    next_load: AtomicU64,
    markers_in_flight: tokio::sync::Semaphore,
    /// Whether requests may be answered from the loaded shards (see `CoordinatorAuthority`).
    authority: Arc<CoordinatorAuthority>,
    /// The cluster's finalized `transaction.version` (from the metadata image): how the
    /// coordinator's own aborts (timeouts, fencing) bump the epoch.
    transaction_version: AtomicI16,
}

impl TxnCoordinator {
    pub fn new(
        config: TxnConfig,
        storage: TxnStateStorage,
        markers: MarkerWriter,
        producer_ids: Arc<ProducerIdManager>,
        authority: Arc<CoordinatorAuthority>,
    ) -> Arc<Self> {
        let transaction_version = config.settings.server_transaction_version.level();
        Arc::new(Self {
            partition_count: AtomicI32::new(config.state_topic.num_partitions),
            config,
            shards: Mutex::new(HashMap::new()),
            storage,
            markers,
            producer_ids,
            next_load: AtomicU64::new(1),
            markers_in_flight: tokio::sync::Semaphore::new(MAX_MARKERS_IN_FLIGHT),
            authority,
            transaction_version: AtomicI16::new(transaction_version),
        })
    }

    /// The cluster finalized `transaction.version` at `level` (a level this binary does not
    /// know keeps the previous one; registration refuses such a binary anyway).
    pub fn set_transaction_version(&self, level: i16) {
        if TransactionVersion::from_level(level).is_some() {
            self.transaction_version.store(level, Ordering::Relaxed);
        }
    }

    /// The coordinator's settings, at the cluster's current `transaction.version`.
    fn settings(&self) -> TxnSettings {
        let level = self.transaction_version.load(Ordering::Relaxed);
        TxnSettings {
            server_transaction_version: TransactionVersion::from_level(level)
                .unwrap_or(self.config.settings.server_transaction_version),
            ..self.config.settings.clone()
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    fn shards(&self) -> MutexGuard<'_, HashMap<i32, Shard>> {
        self.shards.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's
    /// `partitionFor`: the Java string hash, as for groups).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        shoal_group::coordinator_key::partition_for(
            transactional_id,
            self.partition_count.load(Ordering::Relaxed),
        )
    }

    pub fn set_partition_count(&self, count: i32) {
        self.partition_count.store(count.max(1), Ordering::Relaxed);
    }

    // ─── Loading ───────────────────────────────────────────────────────────────────────────

    /// Coordinated partitions and their epochs, loading or loaded.
    pub fn loaded_partitions(&self) -> Vec<(i32, i32)> {
        self.shards().iter().map(|(p, s)| (*p, s.epoch)).collect()
    }

    /// Starts coordinating `partition` at `epoch`: requests answer
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Self::finish_load`].
    pub fn begin_load(&self, partition: i32, epoch: i32) {
        let load = self.next_load.fetch_add(1, Ordering::Relaxed);
        self.shards().insert(
            partition,
            Shard {
                epoch,
                load,
                ids: None,
            },
        );
    }

    /// The partition was read: its transactions are served from now on, and every prepared
    /// one is completed (its markers written again: a marker written twice is harmless).
    pub fn finish_load(self: &Arc<Self>, partition: i32, epoch: i32, loaded: LoadedTransactions) {
        let transactional_ids = loaded.metadata.len();
        {
            let mut shards = self.shards();
            match shards.get_mut(&partition) {
                Some(shard) if shard.epoch == epoch && shard.ids.is_none() => {
                    shard.ids = Some(loaded.metadata.into_iter().collect());
                }
                _ => return,
            }
        }
        tracing::info!(
            partition,
            epoch,
            transactional_ids,
            records = loaded.records,
            to_complete = loaded.to_complete.len(),
            skipped = loaded.skipped,
            "loaded a __transaction_state partition"
        );
        for transactional_id in loaded.to_complete {
            self.spawn_completion(partition, epoch, transactional_id);
        }
    }

    pub fn abandon_load(&self, partition: i32, epoch: i32) {
        let mut shards = self.shards();
        if shards
            .get(&partition)
            .is_some_and(|s| s.epoch == epoch && s.ids.is_none())
        {
            shards.remove(&partition);
        }
    }

    /// This broker no longer leads `partition`: its clients must find the new coordinator.
    pub fn unload(&self, partition: i32) {
        if self.shards().remove(&partition).is_some() {
            tracing::info!(
                partition,
                "stopped coordinating a __transaction_state partition"
            );
        }
    }

    // ─── Shard access ──────────────────────────────────────────────────────────────────────

    /// Runs `f` on the loaded metadata of `partition` at `epoch` (any epoch if `None`).
    fn with_partition<R>(
        &self,
        partition: i32,
        epoch: Option<i32>,
        f: impl FnOnce(&mut TxnIds, i32) -> Result<R, CoordError>,
    ) -> Result<R, CoordError> {
        let mut shards = self.shards();
        let shard = shards
            .get_mut(&partition)
            .ok_or(CoordError::NotCoordinator)?;
        if epoch.is_some_and(|e| e != shard.epoch) {
            return Err(CoordError::NotCoordinator);
        }
        let epoch = shard.epoch;
        let ids = shard.ids.as_mut().ok_or(CoordError::LoadInProgress)?;
        f(ids, epoch)
    }

    /// Runs `f` on the shard of `transactional_id`; returns (partition, epoch, result). The
    /// entry of every client request: NOT_COORDINATOR while this broker cannot be sure it was
    /// not deposed (completions already under way go on; their writes are epoch-bound).
    fn with_shard<R>(
        &self,
        transactional_id: &str,
        f: impl FnOnce(&mut TxnIds) -> Result<R, CoordError>,
    ) -> Result<(i32, i32, R), CoordError> {
        if !self.authority.holds() {
            return Err(CoordError::NotCoordinator);
        }
        let partition = self.partition_for(transactional_id);
        self.with_partition(partition, None, |ids, epoch| {
            f(ids).map(|r| (partition, epoch, r))
        })
    }

    fn open_transactions(&self) -> usize {
        self.shards()
            .values()
            .filter_map(|s| s.ids.as_ref())
            .map(TxnIds::open)
            .sum()
    }

    /// Writes `transition` (whose base is already stored, pending) and applies it.
    async fn write_transition(
        &self,
        partition: i32,
        epoch: i32,
        transition: Transition,
        was_epoch_fence: bool,
    ) -> Result<TransactionMetadata, CoordError> {
        let transactional_id = transition.base.transactional_id.clone();
        let transit = transition.transit.clone();
        let written = self
            .append(partition, epoch, &transactional_id, &transit)
            .await;
        self.with_partition(partition, Some(epoch), |ids, _| {
            let Some(current) = ids.get(&transactional_id) else {
                return Err(CoordError::NotCoordinator);
            };
            if current.pending_state != Some(transit.state) {
                // Reloaded meanwhile: what is in memory came from the log, not from us.
                return Err(CoordError::NotCoordinator);
            }
            let transition = Transition {
                base: current.clone(),
                transit,
            };
            match written {
                Ok(()) => {
                    let done = match transition.complete() {
                        Ok(done) => done,
                        Err(error) => {
                            // A transition the state machine itself chose cannot be completed:
                            // a bug. Leave the id usable (not pending forever); the log has the
                            // record, so a reload reads the written state.
                            tracing::error!(
                                transactional_id,
                                ?error,
                                "completing a written transaction state failed"
                            );
                            ids.clear_pending(&transactional_id);
                            return Err(error.into());
                        }
                    };
                    if done.state == TransactionState::Dead {
                        ids.remove(&transactional_id);
                    } else {
                        ids.insert(transactional_id.clone(), done.clone());
                    }
                    Ok(done)
                }
                Err(error) => {
                    ids.insert(
                        transactional_id.clone(),
                        transition.abandon(was_epoch_fence),
                    );
                    Err(error)
                }
            }
        })
    }

    async fn append(
        &self,
        partition: i32,
        epoch: i32,
        transactional_id: &str,
        transit: &shoal_txn::TxnTransit,
    ) -> Result<(), CoordError> {
        let key = records::encode_key(transactional_id).map_err(|e| {
            tracing::warn!(%e, "cannot encode a transaction log key");
            TxnError::UnknownServerError
        })?;
        let value = if transit.state == TransactionState::Dead {
            None
        } else {
            // As Kafka: the value version follows the cluster's finalized transaction.version
            // (v1 from level 1, which records the client's own version in a tag), so a
            // cluster still at level 0 keeps writing what its oldest broker reads.
            let version = self
                .settings()
                .server_transaction_version
                .log_value_version();
            Some(
                records::encode_value(&transit.to_log_value(), version).map_err(|e| {
                    tracing::warn!(%e, "cannot encode a transaction log value");
                    TxnError::UnknownServerError
                })?,
            )
        };
        Ok(self.storage.append(partition, epoch, key, value).await?)
    }

    /// A producer id if the decision may need one: allocated before the shard lock is taken
    /// (the allocator may ask the controller), at most once per request; unused ones are
    /// skipped, as Kafka skips the rest of a block.
    async fn spare_producer_id(&self, needed: bool) -> Result<Option<i64>, CoordError> {
        if !needed {
            return Ok(None);
        }
        match self.producer_ids.next_producer_id().await {
            Ok(id) => Ok(Some(id)),
            Err(error) => {
                tracing::warn!(%error, "cannot allocate a producer id for a transactional id");
                Err(CoordError::NotAvailable)
            }
        }
    }

    fn peek<R>(
        &self,
        transactional_id: &str,
        f: impl FnOnce(Option<&TransactionMetadata>) -> R,
    ) -> Result<R, CoordError> {
        self.with_shard(transactional_id, |ids| Ok(f(ids.get(transactional_id))))
            .map(|(_, _, r)| r)
    }

    // ─── Requests ──────────────────────────────────────────────────────────────────────────

    /// InitProducerId with a transactional id: the id's producer id and a bumped epoch.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        transaction_timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<(i64, i16), CoordError> {
        let needs_id = self.peek(transactional_id, |m| {
            m.is_none_or(TransactionMetadata::is_producer_epoch_exhausted)
        })?;
        let spare = self.spare_producer_id(needs_id).await?;
        let request = InitProducerIdRequest {
            transactional_id: transactional_id.to_string(),
            transaction_timeout_ms,
            expected,
        };
        let now = wall_ms();
        let (partition, epoch, outcome) = self.with_shard(transactional_id, |ids| {
            let outcome = shoal_txn::metadata::init_producer_id(
                ids.get(transactional_id),
                &request,
                &self.settings(),
                now,
                // Needed after all (the id changed since the peek): the client retries.
                || spare.ok_or(TxnError::ConcurrentTransactions),
            )?;
            let (InitProducerIdOutcome::Bump(t) | InitProducerIdOutcome::FenceAndAbort(t)) =
                &outcome;
            ids.insert(transactional_id.to_string(), t.base.clone());
            Ok(outcome)
        })?;
        match outcome {
            InitProducerIdOutcome::Bump(transition) => {
                let done = self
                    .write_transition(partition, epoch, transition, false)
                    .await?;
                Ok((done.producer_id, done.producer_epoch))
            }
            InitProducerIdOutcome::FenceAndAbort(transition) => {
                // The open transaction of the previous producer is aborted first; the client
                // retries and then gets its bumped epoch.
                tracing::info!(
                    transactional_id,
                    "InitProducerId fences the open transaction of the previous producer"
                );
                self.write_transition(partition, epoch, transition, true)
                    .await?;
                self.spawn_completion(partition, epoch, transactional_id.to_string());
                Err(TxnError::ConcurrentTransactions.into())
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the partitions join the transaction.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        client_version: TransactionVersion,
    ) -> Result<(), CoordError> {
        let now = wall_ms();
        let opens_new = self.peek(transactional_id, |m| m.is_some_and(|m| !is_open(m.state)))?;
        if opens_new && self.open_transactions() >= self.config.max_open_transactions {
            tracing::warn!(
                transactional_id,
                limit = self.config.max_open_transactions,
                "transaction.coordinator.max.open.transactions reached; refusing a new transaction"
            );
            return Err(CoordError::NotAvailable);
        }
        let (partition, epoch, outcome) = self.with_shard(transactional_id, |ids| {
            let outcome = shoal_txn::metadata::add_partitions(
                ids.get(transactional_id),
                producer_id,
                producer_epoch,
                partitions,
                client_version,
                now,
            )?;
            if let AddPartitionsOutcome::Write(t) = &outcome {
                if t.transit.partitions.len() > self.config.max_partitions_per_transaction {
                    tracing::warn!(
                        transactional_id,
                        limit = self.config.max_partitions_per_transaction,
                        "transaction.max.partitions reached; refusing AddPartitionsToTxn"
                    );
                    return Err(TxnError::InvalidRequest.into());
                }
                ids.insert(transactional_id.to_string(), t.base.clone());
            }
            Ok(outcome)
        })?;
        match outcome {
            AddPartitionsOutcome::AlreadyAdded => Ok(()),
            AddPartitionsOutcome::Write(transition) => self
                .write_transition(partition, epoch, transition, false)
                .await
                .map(|_| ()),
        }
    }

    /// KIP-890 part 1: whether each partition is in the producer's open transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), TxnError>>, CoordError> {
        self.with_shard(transactional_id, |ids| {
            Ok(shoal_txn::metadata::verify_partitions(
                ids.get(transactional_id),
                producer_id,
                producer_epoch,
                partitions,
            )?)
        })
        .map(|(_, _, r)| r)
    }

    /// EndTxn: writes the prepared state, answers, and completes the transaction in the
    /// background. Returns the producer id and epoch the response carries.
    pub async fn end_txn(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TxnResult,
        client_version: TransactionVersion,
    ) -> Result<(i64, i16), CoordError> {
        let needs_id = client_version.supports_epoch_bump()
            && self.peek(transactional_id, |m| {
                m.is_some_and(TransactionMetadata::is_producer_epoch_exhausted)
            })?;
        let spare = self.spare_producer_id(needs_id).await?;
        let request = EndTxnRequest {
            producer_id,
            producer_epoch,
            result,
            client_version,
        };
        let now = wall_ms();
        let (partition, epoch, outcome) = self.with_shard(transactional_id, |ids| {
            let outcome =
                shoal_txn::metadata::end_txn(ids.get(transactional_id), &request, now, || {
                    spare.ok_or(TxnError::ConcurrentTransactions)
                })?;
            if let EndTxnOutcome::Prepare(t) = &outcome {
                ids.insert(transactional_id.to_string(), t.base.clone());
            }
            Ok(outcome)
        })?;
        match outcome {
            EndTxnOutcome::AlreadyDone {
                producer_id,
                producer_epoch,
            } => Ok((producer_id, producer_epoch)),
            EndTxnOutcome::Prepare(transition) => {
                let prepared = self
                    .write_transition(partition, epoch, transition, false)
                    .await?;
                // Prepared is a promise: complete it whatever the answer below turns out to be.
                self.spawn_completion(partition, epoch, transactional_id.to_string());
                let complete = shoal_txn::metadata::prepare_complete(&prepared, now)?;
                Ok(shoal_txn::metadata::end_txn_response(
                    client_version,
                    &complete.transit,
                ))
            }
        }
    }

    /// Every transaction this broker coordinates (loaded shards only).
    pub fn list(&self) -> Vec<TxnListing> {
        let shards = self.shards();
        let mut out: Vec<TxnListing> = shards
            .iter()
            .filter_map(|(p, s)| s.ids.as_ref().map(|ids| (p, ids)))
            .flat_map(|(p, ids)| {
                ids.iter().map(|(id, m)| TxnListing {
                    transactional_id: id.clone(),
                    coordinator_partition: *p,
                    metadata: m.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Whether any coordinated partition is still being read.
    pub fn is_loading(&self) -> bool {
        self.shards().values().any(|s| s.ids.is_none())
    }

    /// How many transactional ids on the loaded shards have a transaction open (Ongoing,
    /// PrepareCommit, PrepareAbort, PrepareEpochFence): the scrape-time gauge
    /// `shoal_txn_coordinator_open_transactions`. Kept as a count, no scan.
    pub fn open_transaction_count(&self) -> usize {
        self.open_transactions()
    }

    /// One transactional id's metadata, or why it cannot be answered here.
    pub fn describe(&self, transactional_id: &str) -> Result<TransactionMetadata, CoordError> {
        self.peek(transactional_id, |m| m.cloned())?
            .ok_or(CoordError::Txn(TxnError::TransactionalIdNotFound))
    }

    // ─── Completion: markers, then the complete state ──────────────────────────────────────

    fn spawn_completion(self: &Arc<Self>, partition: i32, epoch: i32, transactional_id: String) {
        let coordinator = Arc::clone(self);
        tokio::spawn(async move {
            coordinator
                .complete(partition, epoch, &transactional_id)
                .await;
        });
    }

    /// Writes the markers of a prepared transaction, then its complete state. Stops quietly
    /// when this broker stops coordinating the partition at `epoch` (the next coordinator
    /// finishes the job when it loads the partition).
    async fn complete(&self, partition: i32, epoch: i32, transactional_id: &str) {
        let Some(load) = self.load_of(partition, epoch) else {
            return;
        };
        let prepared = self.with_partition(partition, Some(epoch), |ids, _| {
            Ok(ids.get(transactional_id).cloned())
        });
        let Ok(Some(prepared)) = prepared else { return };
        let control = match (prepared.state, prepared.pending_state) {
            (TransactionState::PrepareCommit, None) => ControlType::Commit,
            (TransactionState::PrepareAbort, None) => ControlType::Abort,
            _ => return,
        };
        let marker = TxnMarker {
            producer_id: prepared.producer_id,
            producer_epoch: prepared.producer_epoch,
            coordinator_epoch: epoch,
            control,
        };
        let started = std::time::Instant::now();
        let mut remaining: Vec<TopicPartition> = prepared.partitions.iter().cloned().collect();
        let mut backoff = MARKER_RETRY_MIN;
        while !remaining.is_empty() {
            if !self.is_coordinating(partition, epoch, load) {
                return;
            }
            // Up to MARKER_CONCURRENCY partitions at a time, grouped by leader inside.
            let mut outcomes: Vec<(TopicPartition, MarkerOutcome)> =
                Vec::with_capacity(remaining.len());
            for chunk in remaining.chunks(MARKER_CONCURRENCY) {
                let permits = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                let written = match self.markers_in_flight.acquire_many(permits).await {
                    Ok(_permits) => self.markers.write_all(chunk, &marker).await,
                    Err(_) => {
                        vec![MarkerOutcome::retry("the marker limiter is closed"); chunk.len()]
                    }
                };
                outcomes.extend(chunk.iter().cloned().zip(written));
            }
            remaining.clear();
            for (tp, outcome) in outcomes {
                match outcome {
                    MarkerOutcome::Written => {}
                    MarkerOutcome::PartitionGone => {
                        tracing::info!(
                            transactional_id,
                            topic = tp.0,
                            partition = tp.1,
                            "no marker for a partition that no longer exists"
                        );
                    }
                    MarkerOutcome::ProducerFenced(why) => {
                        // A newer epoch of the producer already wrote there (after an abort by
                        // InitProducerId): this transaction's end is no longer its to mark.
                        tracing::warn!(transactional_id, topic = tp.0, partition = tp.1, %why, "transaction marker refused: producer fenced");
                    }
                    MarkerOutcome::CoordinatorFenced(why) => {
                        tracing::warn!(transactional_id, topic = tp.0, partition = tp.1, %why, "transaction marker refused: a newer coordinator wrote there; stopping");
                        return;
                    }
                    MarkerOutcome::Retry { why, .. } => {
                        tracing::debug!(transactional_id, topic = tp.0, partition = tp.1, %why, "transaction marker to retry");
                        remaining.push(tp);
                    }
                }
            }
            if !remaining.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MARKER_RETRY_MAX);
            }
        }
        shoal_metrics::record_txn_markers_written(
            control == ControlType::Commit,
            started.elapsed(),
        );
        // The complete state: retried while this broker coordinates the partition.
        let mut backoff = MARKER_RETRY_MIN;
        loop {
            if !self.is_coordinating(partition, epoch, load) {
                return;
            }
            let now = wall_ms();
            let transition = self.with_partition(partition, Some(epoch), |ids, _| {
                let Some(meta) = ids.get(transactional_id) else {
                    return Err(CoordError::NotCoordinator);
                };
                let transition = shoal_txn::metadata::prepare_complete(meta, now)?;
                ids.insert(transactional_id.to_string(), transition.base.clone());
                Ok(transition)
            });
            let Ok(transition) = transition else { return };
            match self
                .write_transition(partition, epoch, transition, false)
                .await
            {
                Ok(done) => {
                    tracing::debug!(
                        transactional_id,
                        state = done.state.name(),
                        "transaction completed"
                    );
                    return;
                }
                Err(CoordError::NotCoordinator) => return,
                Err(error) => {
                    tracing::warn!(
                        transactional_id,
                        ?error,
                        "writing a transaction's complete state failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MARKER_RETRY_MAX);
                }
            }
        }
    }

    /// The load of `partition` if it is loaded here at `epoch`.
    fn load_of(&self, partition: i32, epoch: i32) -> Option<u64> {
        self.shards()
            .get(&partition)
            .filter(|s| s.epoch == epoch && s.ids.is_some())
            .map(|s| s.load)
    }

    fn is_coordinating(&self, partition: i32, epoch: i32, load: u64) -> bool {
        self.load_of(partition, epoch) == Some(load)
    }

    // ─── Timers ────────────────────────────────────────────────────────────────────────────

    /// Aborts transactions open longer than their timeout and forgets expired transactional
    /// ids, on Kafka's two intervals, until the task is dropped.
    pub async fn run_timers(self: Arc<Self>) {
        let mut abort = tokio::time::interval(Duration::from_millis(
            self.config.abort_timed_out_interval_ms,
        ));
        let mut expire = tokio::time::interval(Duration::from_millis(
            self.config.remove_expired_interval_ms,
        ));
        abort.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = abort.tick() => self.abort_timed_out().await,
                _ = expire.tick() => self.remove_expired().await,
            }
        }
    }

    /// Ids matching `select`, with where they are coordinated and the producer id seen.
    fn select_ids(
        &self,
        select: impl Fn(&TransactionMetadata) -> bool,
    ) -> Vec<(i32, i32, String, i64)> {
        self.shards()
            .iter()
            .filter_map(|(p, s)| s.ids.as_ref().map(|ids| (*p, s.epoch, ids)))
            .flat_map(|(p, epoch, ids)| {
                ids.values()
                    .filter(|m| select(m))
                    .map(move |m| (p, epoch, m.transactional_id.clone(), m.producer_id))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Aborts every transaction past its timeout: each abort is a replicated write and then a
    /// completion, so they run [`SWEEP_CONCURRENCY`] at a time, not one after another (one
    /// unavailable partition must not hold up the others' aborts).
    async fn abort_timed_out(self: &Arc<Self>) {
        let now = wall_ms();
        let due = self.select_ids(|m| shoal_txn::metadata::is_timed_out(m, now));
        futures::stream::iter(due)
            .for_each_concurrent(SWEEP_CONCURRENCY, |due| self.abort_one_timed_out(due, now))
            .await;
    }

    async fn abort_one_timed_out(
        self: &Arc<Self>,
        (partition, epoch, transactional_id, seen_producer_id): (i32, i32, String, i64),
        now: i64,
    ) {
        let transition = self.with_partition(partition, Some(epoch), |ids, _| {
            let Some(meta) = ids.get(&transactional_id) else {
                return Ok(None);
            };
            let transition = shoal_txn::metadata::abort_timed_out(
                meta,
                seen_producer_id,
                &self.settings(),
                now,
            )?;
            if let Some(t) = &transition {
                ids.insert(transactional_id.clone(), t.base.clone());
            }
            Ok(transition)
        });
        let Ok(Some(transition)) = transition else {
            return;
        };
        tracing::info!(
            transactional_id,
            producer_id = transition.transit.producer_id,
            timeout_ms = transition.transit.txn_timeout_ms,
            "aborting a transaction open longer than its timeout"
        );
        shoal_metrics::record_txn_timed_out();
        if self
            .write_transition(partition, epoch, transition, true)
            .await
            .is_ok()
        {
            self.spawn_completion(partition, epoch, transactional_id);
        }
    }

    /// Forgets transactional ids idle past `transactional.id.expiration.ms`, as
    /// [`Self::abort_timed_out`] runs its writes.
    async fn remove_expired(&self) {
        let now = wall_ms();
        let settings = &self.settings();
        let due = self.select_ids(|m| shoal_txn::metadata::should_expire(m, now, settings));
        futures::stream::iter(due)
            .for_each_concurrent(
                SWEEP_CONCURRENCY,
                |(partition, epoch, transactional_id, _)| {
                    self.expire_one(partition, epoch, transactional_id, now)
                },
            )
            .await;
    }

    async fn expire_one(&self, partition: i32, epoch: i32, transactional_id: String, now: i64) {
        let settings = &self.settings();
        let transition = self.with_partition(partition, Some(epoch), |ids, _| {
            let Some(meta) = ids.get(&transactional_id) else {
                return Ok(None);
            };
            if !shoal_txn::metadata::should_expire(meta, now, settings) {
                return Ok(None);
            }
            let transition = shoal_txn::metadata::prepare_dead(meta)?;
            ids.insert(transactional_id.clone(), transition.base.clone());
            Ok(Some(transition))
        });
        let Ok(Some(transition)) = transition else {
            return;
        };
        if self
            .write_transition(partition, epoch, transition, false)
            .await
            .is_ok()
        {
            tracing::info!(
                transactional_id,
                "expired a transactional id (transactional.id.expiration.ms)"
            );
        }
    }
}
