//! ListOffsets MAX_TIMESTAMP (-3, v7+) answers the offset of the record carrying the largest
//! timestamp, not the last offset of its batch (KAFKA-16310), for plain and compressed batches.

#![allow(clippy::unwrap_used)]

use crate::common;

use bytes::Bytes;
use common::{ANONYMOUS, Harness, encode, s};
use indexmap::IndexMap;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, Record, TimestampType};

const T: i64 = 1_700_000_000_000;

fn records(timestamps: &[i64], compression: Compression) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: T + ts,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: IndexMap::new(),
            delete_horizon: false,
        })
        .collect();
    encode(&records, compression)
}

async fn max_timestamp(h: &Harness, topic: &str) -> (i64, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-3),
                ]),
        ]);
    let response: ListOffsetsResponse = h.ask(ANONYMOUS, 7, request).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.timestamp, p.offset)
}

#[tokio::test]
async fn max_timestamp_is_the_offset_of_the_record_that_carries_it() {
    let h = Harness::start().await;
    for (topic, compression) in [("plain", Compression::None), ("gzipped", Compression::Gzip)] {
        h.create_topic(topic, 1).await;
        // Offsets 0-2, the largest timestamp on the middle record; then 3-4, smaller.
        let first = h
            .produce_as(ANONYMOUS, topic, records(&[5, 9, 1], compression))
            .await;
        assert_eq!((first.error_code, first.base_offset), (0, 0), "{topic}");
        let second = h
            .produce_as(ANONYMOUS, topic, records(&[2, 3], compression))
            .await;
        assert_eq!((second.error_code, second.base_offset), (0, 3), "{topic}");
        assert_eq!(max_timestamp(&h, topic).await, (T + 9, 1), "{topic}");
        // A later batch with a larger one wins, at its own record.
        h.produce_as(ANONYMOUS, topic, records(&[1, 30, 30, 4], compression))
            .await;
        assert_eq!(max_timestamp(&h, topic).await, (T + 30, 6), "{topic}");
    }
    h.broker.shutdown().await;
    h.meta.shutdown().await.unwrap();
}
