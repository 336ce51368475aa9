//! Topic configs that change what a Produce stores, through the real Produce and Fetch APIs:
//! `compression.type` recompresses on the leader (records decoded back with the
//! `kafka-protocol` crate's own decoder, an independent reader), `producer` keeps what was
//! sent, KIP-937's timestamp bounds refuse records with INVALID_TIMESTAMP, and a compacted
//! topic refuses records without a key, naming them in `record_errors`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Harness, encoded_batch, s};
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

async fn create_topic_with(harness: &Harness, name: &str, configs: &[(&str, &str)]) {
    let configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let created = harness
        .meta
        .client()
        .create_topics(
            vec![shoal_meta::CreateTopic {
                name: name.into(),
                num_partitions: Some(1),
                replication_factor: Some(1),
                assignments: None,
                configs,
            }],
            false,
        )
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results[0]);
    let index = created.log_index.unwrap();
    assert!(
        harness
            .broker
            .wait_for_metadata(index, Duration::from_secs(5))
            .await
    );
}

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
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records.clone())),
                    ]),
            ]);
        let Some(ResponseKind::Produce(response)) =
            harness.call(ApiKey::Produce, 9, request.into()).await
        else {
            panic!("no produce response");
        };
        let partition = response.responses[0].partition_responses[0].clone();
        if partition.error_code != 6 {
            return partition;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("partition of {topic} never got a leader");
}

/// The stored batches of partition 0 from offset 0, as Fetch returns them.
async fn fetch(harness: &Harness, topic: &str) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let Some(ResponseKind::Fetch(response)) = harness.call(ApiKey::Fetch, 12, request.into()).await
    else {
        panic!("no fetch response");
    };
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.records.clone().unwrap()
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
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        set.records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    out.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_topic_stores_uncompressed_produces_as_zstd() {
    let harness = Harness::start().await;
    create_topic_with(&harness, "zstd-topic", &[("compression.type", "zstd")]).await;
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
    create_topic_with(&harness, "as-sent", &[]).await;
    create_topic_with(&harness, "plain", &[("compression.type", "uncompressed")]).await;
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
    create_topic_with(
        &harness,
        "fresh-only",
        &[("message.timestamp.before.max.ms", "3600000")],
    )
    .await;
    let code = produce(&harness, "fresh-only", encoded_batch(3, None)).await;
    assert_eq!(code, 32, "INVALID_TIMESTAMP");
    create_topic_with(&harness, "any-age", &[]).await;
    assert_eq!(
        produce(&harness, "any-age", encoded_batch(3, None)).await,
        0
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_refuses_records_without_a_key_naming_them() {
    let harness = Harness::start().await;
    create_topic_with(&harness, "by-key", &[("cleanup.policy", "compact")]).await;
    let mut buf = encoded_batch(3, None);
    let mut records = RecordBatchDecoder::decode(&mut buf).unwrap().records;
    records[1].key = None;
    let mut keyless = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut keyless,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let refused = produce_response(&harness, "by-key", keyless.freeze()).await;
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
