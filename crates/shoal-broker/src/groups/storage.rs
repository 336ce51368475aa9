//! `LogOffsetsStorage`: the coordinator's writes, appended to `__consumer_offsets` partitions.
//!
//! A write is one uncompressed v2 batch appended as leader with acks=all semantics: it counts
//! only once the high watermark passed it, so a commit acknowledged to a client is on every
//! in-sync replica and survives the coordinator's broker (the same rule as a producer's
//! acks=all). The batch is stamped with the partition's current leader epoch by the log.
//!
//! A TxnOffsetCommit's batch is the producer's: transactional, its producer id and epoch, base
//! sequence -1, appended with the coordinator's origin (no sequence checks; the log still
//! fences an older producer epoch, and the batch that opens the producer's transaction on the
//! partition must carry the KIP-890 guard taken before the transaction coordinator was asked), so the log's transaction state (last stable offset, the
//! marker that ends it) covers it like any transactional produce.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use shoal_group::{OFFSETS_TOPIC, OffsetsStorage, StorageError, TxnProducer};
use shoal_replica::{AppendOrigin, PartitionError, RequiredAcks, VerificationGuard};

use crate::blocking::run_blocking;
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
    encode_batch_of(records, None, now_ms)
}

/// One batch holding `records`: of `producer` (transactional, no sequence) when given, else
/// as [`encode_batch`].
pub fn encode_batch_of(
    records: &[(Bytes, Option<Bytes>)],
    producer: Option<TxnProducer>,
    now_ms: i64,
) -> Result<Bytes, String> {
    let (producer_id, producer_epoch) =
        producer.map_or((-1, -1), |p| (p.producer_id, p.producer_epoch));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
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
        PartitionError::InvalidProducerEpoch { .. } => StorageError::InvalidProducerEpoch,
        PartitionError::InvalidTxnState => StorageError::InvalidTxnState,
        other => StorageError::Other(other.to_string()),
    }
}

impl LogOffsetsStorage {
    /// Appends one batch of `records` (of `producer`, with its KIP-890 guard, when given) and
    /// waits until it is replicated: the log offset of its first record. The append takes the
    /// partition's lock across a disk write, so it runs on a blocking thread.
    fn append_batch(
        &self,
        partition: i32,
        producer: Option<(TxnProducer, Option<u64>)>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
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
            let batch = encode_batch_of(&records, producer.map(|(p, _)| p), now)
                .map_err(StorageError::Other)?;
            let appending = Arc::clone(&log);
            let appended = run_blocking(move || match producer {
                None => appending.append_as_leader(&batch, RequiredAcks::AllInSync, now),
                Some((_, verification)) => appending.append_as_leader_from(
                    &batch,
                    RequiredAcks::AllInSync,
                    now,
                    AppendOrigin::Coordinator {
                        verification: verification.map(VerificationGuard::from_raw),
                    },
                ),
            })
            .await
            // The runtime is stopping: this node leads nothing any more.
            .ok_or(StorageError::NotLeader)?
            .map_err(storage_error)?;
            log.wait_for_acks_in_epoch(
                appended.info.last_offset + 1,
                appended.leader_epoch,
                MAX_REPLICATION_WAIT,
            )
            .await
            .map_err(storage_error)?;
            Ok(appended.info.first_offset)
        })
    }
}

impl OffsetsStorage for LogOffsetsStorage {
    fn append(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
        self.append_batch(partition, None, records)
    }

    fn append_transactional(
        &self,
        partition: i32,
        producer: TxnProducer,
        verification: Option<u64>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
        self.append_batch(partition, Some((producer, verification)), records)
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
        assert!(!header.is_transactional());
        shoal_log::batch::verify_crc(&batch).unwrap();
        let section = shoal_log::record_view::decompressed_section(&batch).unwrap();
        let views = shoal_log::record_view::records(&section, 2).unwrap();
        assert_eq!(views[0].key, Some(&b"k1"[..]));
        assert_eq!(views[0].value, Some(&b"v1"[..]));
        assert_eq!(views[1].value, None);
    }

    #[test]
    fn a_transactional_batch_is_the_producers_with_no_sequence() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), Some(Bytes::from_static(b"v2"))),
            (Bytes::from_static(b"k3"), Some(Bytes::from_static(b"v3"))),
        ];
        let producer = TxnProducer {
            producer_id: 42,
            producer_epoch: 3,
        };
        let batch = encode_batch_of(&records, Some(producer), 1_700_000_000_000).unwrap();
        let header = shoal_log::batch::RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(header.size_bytes(), batch.len(), "one batch");
        assert_eq!(header.record_count, 3);
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 3, -1)
        );
        shoal_log::batch::verify_crc(&batch).unwrap();
    }
}
