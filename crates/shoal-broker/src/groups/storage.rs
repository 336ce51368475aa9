//! `LogOffsetsStorage`: the coordinator's writes, appended to `__consumer_offsets` partitions.
//!
//! A write is one uncompressed v2 batch appended as leader with acks=all semantics: it counts
//! only once the high watermark passed it, so a commit acknowledged to a client is on every
//! in-sync replica and survives the coordinator's broker (the same rule as a producer's
//! acks=all). The batch is stamped with the partition's current leader epoch by the log.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use shoal_group::{OFFSETS_TOPIC, OffsetsStorage, StorageError};
use shoal_replica::{PartitionError, RequiredAcks};

use crate::replica_manager::ReplicaManager;
use crate::time::wall_ms;

/// Longest a write waits for replication; the coordinator's own `offsets.commit.timeout.ms`
/// normally ends the wait first.
const MAX_REPLICATION_WAIT: Duration = Duration::from_secs(60);

pub struct LogOffsetsStorage {
    replicas: Arc<ReplicaManager>,
}

impl LogOffsetsStorage {
    pub fn new(replicas: Arc<ReplicaManager>) -> Self {
        Self { replicas }
    }
}

/// One batch holding `records` (no producer id: coordinator writes are not idempotent, the
/// shard lock orders them).
pub fn encode_batch(records: &[(Bytes, Option<Bytes>)], now_ms: i64) -> Result<Bytes, String> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(i64::MAX),
            // The encoder starts a new batch wherever `offset - sequence` changes and writes
            // the first record's sequence as the base: this keeps one batch, base sequence -1.
            sequence: i32::try_from(i).unwrap_or(i32::MAX) - 1,
            timestamp: now_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| format!("encoding an offsets batch: {e}"))?;
    Ok(buf.freeze())
}

fn storage_error(error: PartitionError) -> StorageError {
    match error {
        PartitionError::NotLeaderOrFollower
        | PartitionError::Closed
        | PartitionError::FencedLeaderEpoch => StorageError::NotLeader,
        PartitionError::NotEnoughReplicas { .. } | PartitionError::NotEnoughReplicasAfterAppend => {
            StorageError::NotEnoughReplicas
        }
        PartitionError::RequestTimedOut => StorageError::TimedOut,
        other => StorageError::Other(other.to_string()),
    }
}

impl OffsetsStorage for LogOffsetsStorage {
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<(), StorageError>> {
        let replicas = Arc::clone(&self.replicas);
        Box::pin(async move {
            let image = replicas.image();
            let topic = image
                .topic_by_name(OFFSETS_TOPIC)
                .ok_or(StorageError::NotLeader)?;
            let log = replicas
                .partition(topic.id, partition)
                .ok_or(StorageError::NotLeader)?;
            let now = wall_ms();
            let batch = encode_batch(&records, now).map_err(StorageError::Other)?;
            let appended = log
                .append_as_leader(&batch, RequiredAcks::AllInSync, now)
                .map_err(storage_error)?;
            log.wait_for_acks(appended.info.last_offset + 1, MAX_REPLICATION_WAIT)
                .await
                .map_err(storage_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_carry_keys_values_and_tombstones() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let batch = encode_batch(&records, 1_700_000_000_000).unwrap();
        let header = shoal_log::batch::RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(header.record_count, 2);
        assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
        shoal_log::batch::verify_crc(&batch).unwrap();
        let section = shoal_log::record_view::decompressed_section(&batch).unwrap();
        let views = shoal_log::record_view::records(&section, 2).unwrap();
        assert_eq!(views[0].key, Some(&b"k1"[..]));
        assert_eq!(views[0].value, Some(&b"v1"[..]));
        assert_eq!(views[1].value, None);
    }
}
