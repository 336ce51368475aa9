//! Topic configs that change what a Produce stores, through the real Produce and Fetch APIs:
//! `compression.type` recompresses on the leader (records decoded back with the
//! `kafka-protocol` crate's own decoder, an independent reader), `producer` keeps what was
//! sent, KIP-937's timestamp bounds refuse records with INVALID_TIMESTAMP, and a compacted
//! topic refuses records without a key, naming them in `record_errors`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::{ANONYMOUS, Harness, encode, encoded_batch};
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

/// Produces `records` to partition 0 (retrying while the new partition opens); the error code.
async fn produce(harness: &Harness, topic: &str, records: Bytes) -> i16 {
    produce_response(harness, topic, records).await.error_code
}

/// Produce v9 of `records` to partition 0 (retrying while the new partition opens).
async fn produce_response(
    harness: &Harness,
    topic: &str,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    for _ in 0..100 {
        let partition = harness.produce_as(ANONYMOUS, topic, records.clone()).await;
        if partition.error_code != 6 {
            return partition;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("partition of {topic} never got a leader");
}

/// The stored batches of partition 0 from offset 0, as Fetch returns them.
async fn fetch(harness: &Harness, topic: &str) -> Bytes {
    let partition = harness.fetch_as(ANONYMOUS, topic).await;
    assert_eq!(partition.error_code, 0);
    partition.records.unwrap()
}

/// Codec ids of each stored batch (attributes & 7), read from the raw bytes.
fn codecs(mut stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while stored.len() >= 61 {
        let size = 12 + i32::from_be_bytes(stored[8..12].try_into().unwrap()) as usize;
        out.push(stored[22] & 0x07);
        stored = &stored[size..];
    }
    out
}

/// (key, value) of every record, decoded by kafka-protocol (which decompresses each codec).
fn key_values(stored: &Bytes) -> Vec<(Option<Bytes>, Option<Bytes>)> {
    let mut buf = stored.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.key, r.value))
        .collect()
}

fn recompressed(batch: &Bytes, compression: Compression) -> Bytes {
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    encode(&set.records, compression)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_topic_stores_uncompressed_produces_as_zstd() {
    let harness = Harness::start().await;
    harness
        .create_topic_with("zstd-topic", 1, &[("compression.type", "zstd")])
        .await;
    let sent = encoded_batch(20, Some((1000, 0, 0)));
    assert_eq!(codecs(&sent), vec![0]);
    assert_eq!(produce(&harness, "zstd-topic", sent.clone()).await, 0);
    let stored = fetch(&harness, "zstd-topic").await;
    assert_eq!(codecs(&stored), vec![4], "stored as zstd");
    assert_eq!(key_values(&stored), key_values(&sent));
    // Idempotence still works on the rewritten batch: the same batch again is a duplicate.
    assert_eq!(produce(&harness, "zstd-topic", sent).await, 0);
    assert_eq!(key_values(&fetch(&harness, "zstd-topic").await).len(), 20);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_keeps_what_was_sent_and_uncompressed_decompresses() {
    let harness = Harness::start().await;
    harness.create_topic("as-sent", 1).await;
    harness
        .create_topic_with("plain", 1, &[("compression.type", "uncompressed")])
        .await;
    let gzip = recompressed(&encoded_batch(10, None), Compression::Gzip);
    assert_eq!(codecs(&gzip), vec![1]);

    assert_eq!(produce(&harness, "as-sent", gzip.clone()).await, 0);
    let stored = fetch(&harness, "as-sent").await;
    assert_eq!(codecs(&stored), vec![1]);
    // Byte for byte past the base offset and leader epoch (outside the CRC).
    assert_eq!(stored[16..], gzip[16..]);

    assert_eq!(produce(&harness, "plain", gzip.clone()).await, 0);
    let stored = fetch(&harness, "plain").await;
    assert_eq!(codecs(&stored), vec![0]);
    assert_eq!(key_values(&stored), key_values(&gzip));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_outside_the_topic_bounds_are_invalid_timestamp() {
    let harness = Harness::start().await;
    // encoded_batch stamps records in November 2023: more than an hour ago.
    harness
        .create_topic_with(
            "fresh-only",
            1,
            &[("message.timestamp.before.max.ms", "3600000")],
        )
        .await;
    let code = produce(&harness, "fresh-only", encoded_batch(3, None)).await;
    assert_eq!(code, 32, "INVALID_TIMESTAMP");
    harness.create_topic("any-age", 1).await;
    assert_eq!(
        produce(&harness, "any-age", encoded_batch(3, None)).await,
        0
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_refuses_records_without_a_key_naming_them() {
    let harness = Harness::start().await;
    harness
        .create_topic_with("by-key", 1, &[("cleanup.policy", "compact")])
        .await;
    let mut buf = encoded_batch(3, None);
    let mut records = RecordBatchDecoder::decode(&mut buf).unwrap().records;
    records[1].key = None;
    let keyless = encode(&records, Compression::None);
    let refused = produce_response(&harness, "by-key", keyless).await;
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    assert_eq!(refused.record_errors.len(), 1, "{refused:?}");
    assert_eq!(refused.record_errors[0].batch_index, 1);
    let message = refused.record_errors[0].batch_index_error_message.as_ref();
    assert!(
        message.is_some_and(|m| m.contains("Compacted topic cannot accept message without key")),
        "{refused:?}"
    );
    assert!(refused.error_message.is_some());
    // Keyed records are stored.
    assert_eq!(produce(&harness, "by-key", encoded_batch(3, None)).await, 0);
    assert_eq!(key_values(&fetch(&harness, "by-key").await).len(), 3);
    harness.stop().await;
}
