//! Reading an internal topic's partition back when this broker starts coordinating it: every
//! key/value record from the log start to the log end, in order, handed to a sink (the group or
//! transaction coordinator's replay).
//!
//! Each data batch is announced before its records ([`RecordSink::begin_batch`]: its producer
//! and whether it is transactional), and each record comes with its log offset; a transaction
//! marker (a control batch) is handed over as its producer and outcome
//! ([`RecordSink::control`]), so a sink can hold a transaction's records until the marker
//! decides them (TxnOffsetCommit's offsets). Other control batches are skipped. A batch whose
//! records cannot be read, or a marker that does not parse, is skipped and counted: one junk
//! batch must not keep every coordinator of the partition from loading (NOT_COORDINATOR
//! forever). Reading stops with NOT_LEADER_OR_FOLLOWER as soon as this broker no longer leads
//! the partition.

use shoal_log::batch::{RecordBatchHeader, batches};
use shoal_log::control::{ControlType, parse_marker};
use shoal_log::record_view::{decompressed_section, records};
use shoal_replica::{Partition, PartitionError};

/// Bytes read from the log per step of a load (Kafka's `offsets.load.buffer.size`).
const LOAD_CHUNK_BYTES: usize = 5 << 20;

/// Where a partition's records go.
pub trait RecordSink {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>);

    /// A batch whose records could not be read.
    fn skip_batch(&mut self, base_offset: i64, record_count: i32, why: &str);

    /// A data batch begins: its records follow.
    fn begin_batch(&mut self, _header: &RecordBatchHeader) {}

    /// One record of the current batch, at log offset `offset`.
    fn apply_at(&mut self, _offset: i64, key: &[u8], value: Option<&[u8]>) {
        self.apply(key, value);
    }

    /// A transaction marker of `producer_id`: its transaction committed or aborted here.
    fn control(&mut self, _producer_id: i64, _control: ControlType) {}
}

/// Replays `partition` from its log start to its current log end into `sink`.
pub fn replay_partition(
    partition: &Partition,
    sink: &mut impl RecordSink,
) -> Result<(), PartitionError> {
    let (mut offset, end) =
        partition.read_log(|log| Ok((log.log_start_offset(), log.log_end_offset())))?;
    while offset < end {
        if !partition.is_leader() {
            return Err(PartitionError::NotLeaderOrFollower);
        }
        let chunk = partition.read_records(offset, LOAD_CHUNK_BYTES, end, true)?;
        if chunk.records.is_empty() {
            break;
        }
        for batch in batches(&chunk.records) {
            let batch = batch?;
            let header = batch.header;
            offset = offset.max(header.next_offset());
            if header.is_control() {
                match parse_marker(batch.bytes) {
                    Ok(Some((control, _coordinator_epoch))) => {
                        sink.control(header.producer_id, control);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        sink.skip_batch(header.base_offset, header.record_count, &error.to_string())
                    }
                }
                continue;
            }
            sink.begin_batch(&header);
            let count = usize::try_from(header.record_count.max(0)).unwrap_or(0);
            let section = match decompressed_section(batch.bytes) {
                Ok(section) => section,
                Err(error) => {
                    sink.skip_batch(header.base_offset, header.record_count, &error.to_string());
                    continue;
                }
            };
            match records(&section, count) {
                Ok(views) => {
                    for record in views {
                        if let Some(key) = record.key {
                            let at = header
                                .base_offset
                                .saturating_add(i64::from(record.offset_delta));
                            sink.apply_at(at, key, record.value);
                        }
                    }
                }
                Err(error) => {
                    sink.skip_batch(header.base_offset, header.record_count, &error.to_string())
                }
            }
        }
    }
    Ok(())
}
