//! From batches in the log to the producer state: what every replica does after its log took
//! batches (the leader after its append, a follower after copying the leader's bytes) and what
//! opening a partition does to rebuild the state from the snapshot and the log after it.
//!
//! The same bytes give the same state and the same aborted-transaction entries everywhere, so a
//! follower that becomes leader has the leader's last stable offset and index, and a restart —
//! clean, crashed, or without a snapshot — has what it had before.

use std::path::Path;

use shoal_log::batch::{RecordBatchHeader, batches};
use shoal_log::control::parse_marker;
use shoal_log::{AbortedTxn, Log, LogError};

use crate::producer_snapshot;
use crate::producer_state::{BatchKind, ProducerStateTable, StoredBatch};

/// How much of the log one rebuild read asks for.
const REBUILD_READ_BYTES: usize = 1 << 20;

/// What the producer state records of one batch in the log (`header` as stored: offsets and
/// timestamps assigned; `bytes` the whole batch); `None` for a batch without a producer and
/// for a control batch that is not a transaction marker.
pub(crate) fn stored_batch(header: &RecordBatchHeader, bytes: &[u8]) -> Option<StoredBatch> {
    if header.producer_id < 0 {
        return None;
    }
    let kind = if header.is_control() {
        match parse_marker(bytes) {
            Ok(Some((control, coordinator_epoch))) => BatchKind::Marker {
                control,
                coordinator_epoch,
            },
            Ok(None) => return None,
            Err(error) => {
                // The leader checked it before writing; a replica keeps the log's bytes.
                tracing::warn!(
                    offset = header.base_offset,
                    %error,
                    "a control batch in the log is not a readable transaction marker"
                );
                return None;
            }
        }
    } else {
        BatchKind::Data {
            base_sequence: header.base_sequence,
            is_transactional: header.is_transactional(),
        }
    };
    Some(StoredBatch {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        first_offset: header.base_offset,
        last_offset: header.last_offset(),
        max_timestamp_ms: header.max_timestamp,
        kind,
    })
}

/// Records every batch of `records` (as stored) in `table`; returns the aborted-transaction
/// entries their ABORT markers produce, in order.
pub(crate) fn apply_stored(
    table: &mut ProducerStateTable,
    records: &[u8],
    now_ms: i64,
) -> Vec<AbortedTxn> {
    let mut aborted = Vec::new();
    for batch in batches(records) {
        // The log validated every batch before storing it.
        let Ok(batch) = batch else { break };
        if let Some(stored) = stored_batch(&batch.header, batch.bytes) {
            aborted.extend(table.apply(&stored, now_ms).aborted);
        }
    }
    aborted
}

/// Loads the producer snapshot and replays the batches written after it, markers included,
/// rewriting the aborted-transaction entries from there on (so an index torn by a crash is
/// whole again). Returns the table and the offset the snapshot covered (where replay began).
/// A snapshot beyond the log end describes a tail that is gone: it is removed, so it cannot
/// pass for a valid one once the log grows past it again.
pub(crate) fn rebuild_producer_state(
    dir: &Path,
    log: &mut Log,
    now_ms: i64,
) -> Result<(ProducerStateTable, i64), LogError> {
    let log_end_offset = log.log_end_offset();
    let log_start_offset = log.log_start_offset();
    let (mut table, snapshot_offset) = match producer_snapshot::read(dir) {
        Some(s) if s.log_end_offset <= log_end_offset && s.log_end_offset >= log_start_offset => {
            (s.table, s.log_end_offset)
        }
        Some(s) => {
            tracing::warn!(
                dir = %dir.display(),
                snapshot_offset = s.log_end_offset,
                log_start_offset,
                log_end_offset,
                "producer snapshot does not match the log; rebuilding"
            );
            if let Err(error) = producer_snapshot::remove(dir) {
                tracing::warn!(dir = %dir.display(), %error, "cannot remove a stale producer snapshot");
            }
            (ProducerStateTable::default(), log_start_offset)
        }
        None => (ProducerStateTable::default(), log_start_offset),
    };
    log.truncate_aborted_txns_from(snapshot_offset)?;
    let mut offset = snapshot_offset;
    while offset < log_end_offset {
        let read = log.read(offset, REBUILD_READ_BYTES, log_end_offset, true)?;
        if read.records.is_empty() {
            break;
        }
        for batch in batches(&read.records) {
            let batch = batch?;
            let header = batch.header;
            if header.base_offset >= offset
                && let Some(stored) = stored_batch(&header, batch.bytes)
                && let Some(aborted) = table.apply(&stored, now_ms).aborted
            {
                log.append_aborted_txn(aborted)?;
            }
            offset = offset.max(header.next_offset());
        }
    }
    Ok((table, snapshot_offset))
}
