//! Helpers shared by the transaction tests: producers' batches, transactions begun and ended
//! the way the broker does it, and replicas whose fetch loop is driven by hand.

#![allow(clippy::unwrap_used, dead_code)] // a panic in a test is a failed test

use shoal_log::testing::{BatchSpec, build_batch_with};
use shoal_log::{AbortedTxn, LogConfig};
use shoal_replica::{
    AppendOrigin, AppendResult, ControlType, FollowerFetch, IsolationLevel, Partition,
    PartitionError, PartitionState, RequiredAcks, TxnMarker,
};

pub const MAX_BYTES: usize = 1 << 20;
pub const NOW_MS: i64 = 1_700_000_000_000;

pub fn state(leader: i32, leader_epoch: i32, replicas: &[i32]) -> PartitionState {
    PartitionState {
        leader,
        leader_epoch,
        partition_epoch: leader_epoch,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
    }
}

pub fn open(dir: &std::path::Path, id: i32, state: &PartitionState) -> Partition {
    Partition::open(
        dir,
        "t",
        0,
        id,
        LogConfig::default(),
        1,
        state.clone(),
        NOW_MS,
    )
    .unwrap()
}

/// A non-idempotent batch (no producer).
pub fn plain(values: &[&[u8]]) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        ..BatchSpec::new(values)
    })
}

/// A batch of producer `producer_id` at `epoch` from sequence `seq`.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    seq: i32,
    transactional: bool,
    values: &[&[u8]],
) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        producer_id,
        producer_epoch: epoch,
        base_sequence: seq,
        attributes: if transactional { 0x10 } else { 0 },
        base_timestamp_ms: NOW_MS,
        ..BatchSpec::new(values)
    })
}

/// A transactional write as the broker makes it: verified first if the partition asks.
pub fn txn_write(
    p: &Partition,
    producer_id: i64,
    epoch: i16,
    seq: i32,
    values: &[&[u8]],
) -> Result<AppendResult, PartitionError> {
    let verification = p.txn_verification_needed(producer_id, epoch, false, seq);
    p.append_as_leader_from(
        &producer_batch(producer_id, epoch, seq, true, values),
        RequiredAcks::Leader,
        NOW_MS,
        AppendOrigin::Client { verification },
    )
}

/// WriteTxnMarkers for `producer_id` at `epoch`, from a coordinator at `coordinator_epoch`.
pub fn end_txn(
    p: &Partition,
    producer_id: i64,
    epoch: i16,
    coordinator_epoch: i32,
    control: ControlType,
) -> Result<AppendResult, PartitionError> {
    p.write_txn_marker(
        &TxnMarker {
            producer_id,
            producer_epoch: epoch,
            coordinator_epoch,
            control,
        },
        NOW_MS,
    )
}

/// The whole aborted-transaction index, through the log.
pub fn index(p: &Partition) -> Vec<AbortedTxn> {
    p.read_log(|log| log.collect_aborted_txns(0, i64::MAX))
        .unwrap()
}

/// A READ_COMMITTED fetch of everything from `offset`.
pub fn read_committed(p: &Partition, offset: i64) -> shoal_replica::FetchedRecords {
    p.read_committed(offset, MAX_BYTES, true, IsolationLevel::ReadCommitted)
        .unwrap()
}

/// Base offsets of the batches in `records`.
pub fn batch_offsets(records: &[u8]) -> Vec<i64> {
    shoal_log::batch::batches(records)
        .map(|b| b.unwrap().header.base_offset)
        .collect()
}

/// Replicas `1..=n` of one partition, with the fetch loop driven by hand.
pub struct Replicas {
    _dirs: Vec<tempfile::TempDir>,
    parts: Vec<Partition>,
}

impl Replicas {
    pub fn new(initial: &PartitionState) -> Self {
        let dirs: Vec<_> = initial
            .replicas
            .iter()
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        let parts = initial
            .replicas
            .iter()
            .zip(&dirs)
            .map(|(id, dir)| open(dir.path(), *id, initial))
            .collect();
        Self { _dirs: dirs, parts }
    }

    pub fn broker(&self, id: i32) -> &Partition {
        &self.parts[(id - 1) as usize]
    }

    pub fn update_all(&self, state: &PartitionState) {
        for p in &self.parts {
            p.update_state(state.clone(), NOW_MS);
        }
    }

    /// One fetch round of `follower` from `leader`; returns the bytes copied.
    pub fn fetch_once(&self, follower: i32, leader: i32, leader_epoch: i32) -> usize {
        let f = self.broker(follower);
        let position = f.fetch_position(leader_epoch).unwrap();
        let fetch = FollowerFetch {
            replica_id: follower,
            broker_epoch: 100 + i64::from(follower),
            current_leader_epoch: leader_epoch,
            fetch_offset: position.fetch_offset,
            last_fetched_epoch: position.last_fetched_epoch,
            max_bytes: MAX_BYTES,
            log_start_offset: Some(position.log_start_offset),
        };
        let result = self
            .broker(leader)
            .fetch_for_follower(&fetch, NOW_MS, true)
            .unwrap();
        if let Some(diverging) = result.diverging {
            f.truncate_for_divergence(leader_epoch, diverging).unwrap();
            return 0;
        }
        if !result.records.is_empty() {
            f.append_as_follower(leader_epoch, &result.records, NOW_MS)
                .unwrap();
        }
        f.update_follower_offsets(leader_epoch, result.high_watermark, result.log_start_offset)
            .unwrap();
        result.records.len()
    }

    /// Fetch rounds until nothing is copied, plus one so the leader learns the positions.
    pub fn sync(&self, followers: &[i32], leader: i32, leader_epoch: i32) {
        for _ in 0..10 {
            let copied: usize = followers
                .iter()
                .map(|f| self.fetch_once(*f, leader, leader_epoch))
                .sum();
            if copied == 0 {
                for f in followers {
                    self.fetch_once(*f, leader, leader_epoch);
                }
                return;
            }
        }
        panic!("did not converge");
    }
}
