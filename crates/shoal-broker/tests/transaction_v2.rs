//! Transaction version 2 (KIP-890 part 2) against a real node: a client that sends Produce
//! v12+ and TxnOffsetCommit v5+ sends no AddPartitionsToTxn or AddOffsetsToTxn (the partition
//! leaders add the partitions to its transaction), and each EndTxn v5 answers the next epoch,
//! which the markers carry. A read_committed fetch then sees exactly the committed transaction,
//! the group's offsets follow it, and the epoch before the bump is fenced. Older request
//! versions keep the classic rules (a partition not added is refused).
//!
//! No client here speaks version 2 (librdkafka and kafka-python stop at Produce v10 and
//! EndTxn v3), so the requests are built with `kafka-protocol`, as a Kafka 4 Java client
//! sends them.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ANONYMOUS, Harness, NONE, encode, s};
use indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// A transactional batch of `values` by (producer id, epoch), first sequence `seq`.
fn txn_batch(producer: (i64, i16), seq: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            control: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: IndexMap::new(),
            delete_horizon: false,
        })
        .collect();
    encode(&records, Compression::None)
}

/// Produce at `version` (acks -1) of `records` to `topic`-0 for `transactional_id`: the code.
async fn produce(h: &Harness, version: i16, id: &str, topic: &str, records: Bytes) -> i16 {
    let data = produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let mut topic_data =
        produce_request::TopicProduceData::default().with_partition_data(vec![data]);
    if version >= 13 {
        topic_data.topic_id = h.topic_id(topic);
    } else {
        topic_data.name = TopicName(s(topic));
    }
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![topic_data]);
    let response = h.ask(ANONYMOUS, version, request).await;
    response.responses[0].partition_responses[0].error_code
}

/// [`produce`], retried while the coordinator still completes the previous transaction (a
/// version-2 client retries CONCURRENT_TRANSACTIONS).
async fn produce_retrying(h: &Harness, version: i16, id: &str, topic: &str, records: Bytes) -> i16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let code = produce(h, version, id, topic, records.clone()).await;
        if code != CONCURRENT_TRANSACTIONS {
            return code;
        }
        assert!(
            Instant::now() < deadline,
            "the previous transaction never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// TxnOffsetCommit v5 of `t`-0 at `offset` for `group`: the partition's code.
async fn commit_offset(
    h: &Harness,
    id: &str,
    producer: (i64, i16),
    group: &str,
    offset: i64,
) -> i16 {
    let partition = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1);
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_group_id(GroupId(s(group)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_generation_id(-1)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![partition]),
        ]);
    let response = h.ask(ANONYMOUS, 5, request).await;
    response.topics[0].partitions[0].error_code
}

/// EndTxn v5: (code, producer id, epoch) of the answer, retried while the coordinator still
/// completes a transaction (a retry of an EndTxn whose markers are on their way is
/// CONCURRENT_TRANSACTIONS until they land).
async fn end_txn(h: &Harness, id: &str, producer: (i64, i16), commit: bool) -> (i16, i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit);
        let r = h.ask(ANONYMOUS, 5, request).await;
        if r.error_code != CONCURRENT_TRANSACTIONS {
            return (r.error_code, r.producer_id.0, r.producer_epoch);
        }
        assert!(Instant::now() < deadline, "the transaction never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `t`-0 as a read_committed consumer sees it once its last stable offset has reached the high
/// watermark (every transaction decided): the values outside aborted transactions.
async fn read_committed(h: &Harness) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_isolation_level(1)
            .with_session_epoch(-1)
            .with_topics(vec![
                fetch_request::FetchTopic::default()
                    .with_topic(TopicName(s("t")))
                    .with_partitions(vec![
                        fetch_request::FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]);
        let response = h.ask(ANONYMOUS, 12, request).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, NONE, "{p:?}");
        if p.last_stable_offset == p.high_watermark {
            let aborted: Vec<(i64, i64)> = p
                .aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect();
            let mut buf = p.records.clone().unwrap_or_default();
            let mut values = Vec::new();
            for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
                for r in set.records {
                    let in_aborted = aborted
                        .iter()
                        .any(|(pid, first)| *pid == r.producer_id && r.offset >= *first);
                    if !r.control && !in_aborted {
                        values.push(String::from_utf8_lossy(&r.value.unwrap()).to_string());
                    }
                }
            }
            return values;
        }
        assert!(
            Instant::now() < deadline,
            "the LSO never reached the high watermark"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// OffsetFetch v7 (require_stable) of `t`-0 in `group`: (offset, code).
async fn stable_offset(h: &Harness, group: &str) -> (i64, i16) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_require_stable(true)
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0]),
        ]));
    let response = h.ask(ANONYMOUS, 7, request).await;
    let p = &response.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

/// [`stable_offset`] once no transaction holds it (the markers land after EndTxn answers, each
/// partition's on its own).
async fn settled_offset(h: &Harness, group: &str) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = stable_offset(h, group).await;
        if answer.1 != UNSTABLE_OFFSET_COMMIT {
            return answer;
        }
        assert!(Instant::now() < deadline, "the offsets never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_client_commits_and_aborts_without_adding_partitions() {
    let h = Harness::start().await;
    h.create_topic("t", 1).await;
    h.create_topic("u", 1).await;
    h.wait_for_coordinator().await;
    let (pid, epoch) = h.init_txn("tv2").await;

    // The classic protocol still refuses a partition the client never added.
    assert_eq!(
        produce(&h, 11, "tv2", "u", txn_batch((pid, epoch), 0, &["u0"])).await,
        INVALID_TXN_STATE
    );
    // Version 2: the leader adds the partition; a second batch needs no question.
    let first = txn_batch((pid, epoch), 0, &["a0", "a1"]);
    assert_eq!(produce(&h, 12, "tv2", "t", first).await, NONE);
    let second = txn_batch((pid, epoch), 2, &["a2"]);
    assert_eq!(produce(&h, 13, "tv2", "t", second).await, NONE);
    assert_eq!(commit_offset(&h, "tv2", (pid, epoch), "g", 3).await, NONE);
    assert_eq!(stable_offset(&h, "g").await.1, UNSTABLE_OFFSET_COMMIT);
    let (code, next_pid, next_epoch) = end_txn(&h, "tv2", (pid, epoch), true).await;
    assert_eq!(
        (code, next_pid, next_epoch),
        (NONE, pid, epoch + 1),
        "EndTxn v5 bumps the epoch"
    );

    // The next transaction starts at once with the new epoch (its partition is added while the
    // previous markers may still be on their way) and is aborted.
    let next = (next_pid, next_epoch);
    let aborted = txn_batch(next, 0, &["b0", "b1"]);
    assert_eq!(produce_retrying(&h, 12, "tv2", "t", aborted).await, NONE);
    assert_eq!(commit_offset(&h, "tv2", next, "g", 5).await, NONE);
    let (code, _, after_abort) = end_txn(&h, "tv2", next, false).await;
    assert_eq!((code, after_abort), (NONE, next_epoch + 1));

    assert_eq!(read_committed(&h).await, vec!["a0", "a1", "a2"]);
    assert_eq!(
        settled_offset(&h, "g").await,
        (3, NONE),
        "the aborted offset vanished"
    );
    // The epochs before the bumps are fenced on the partition.
    assert_eq!(
        produce(&h, 12, "tv2", "t", txn_batch(next, 2, &["late"])).await,
        INVALID_PRODUCER_EPOCH
    );
    // A retried EndTxn of the aborted transaction answers the same epoch again.
    assert_eq!(
        end_txn(&h, "tv2", next, false).await,
        (NONE, pid, after_abort)
    );
    h.stop().await;
}

/// The leaders' question over the replication listener (a coordinator on another node):
/// VerifyTxnPartitions for `t`-0, only verifying or (`add`) adding: the partition's code, or
/// the request-level one.
async fn ask_coordinator(h: &Harness, producer: (i64, i16), add: bool) -> i32 {
    use shoal_broker::replication::proto::replication_client::ReplicationClient;
    use shoal_broker::replication::proto::{TopicPartitionName, VerifyTxnPartitionsRequest};
    let address = h.broker.replication_address().unwrap().to_string();
    let channel = shoal_internode::NodeConnector::new(None, None)
        .connect(&address, Duration::from_secs(3))
        .await
        .unwrap();
    let request = VerifyTxnPartitionsRequest {
        cluster_id: h.meta.cluster_id().to_string(),
        transactional_id: "remote".into(),
        producer_id: producer.0,
        producer_epoch: i32::from(producer.1),
        partitions: vec![TopicPartitionName {
            topic: "t".into(),
            partition: 0,
        }],
        add,
    };
    let response = ReplicationClient::new(channel)
        .verify_txn_partitions(request)
        .await
        .unwrap()
        .into_inner();
    if response.error_code != 0 {
        return response.error_code;
    }
    assert_eq!(response.partition_error_codes.len(), 1);
    response.partition_error_codes[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_leader_adds_a_partition_through_the_replication_listener() {
    const TRANSACTION_ABORTABLE: i32 = 120;
    const PRODUCER_FENCED: i32 = 90;
    let h = Harness::start().await;
    h.create_topic("t", 1).await;
    let producer = h.init_txn("remote").await;
    // (add, producer, expected): only verifying never opens a transaction; adding does, once.
    let cases = [
        (false, producer, TRANSACTION_ABORTABLE),
        (true, (producer.0, producer.1 + 1), PRODUCER_FENCED),
        (true, producer, 0),
        (false, producer, 0),
        (true, producer, 0),
    ];
    for (add, asker, expected) in cases {
        assert_eq!(
            ask_coordinator(&h, asker, add).await,
            expected,
            "{add} {asker:?}"
        );
    }
    h.stop().await;
}

/// Kafka writes `__transaction_state` values in the version the cluster's finalized
/// `transaction.version` calls for (v1 from level 1), whichever protocol the client speaks; the
/// client's own version goes in the value's tag. A new cluster finalizes level 2.
#[tokio::test]
async fn a_classic_clients_transaction_is_logged_in_the_clusters_value_version() {
    let h = Harness::start_with(&[("transaction.state.log.num.partitions", "1")]).await;
    h.create_topic("t", 1).await;
    h.wait_for_coordinator().await;
    let producer = h.init_txn("classic").await;
    assert_eq!(
        h.add_txn_partitions("classic", producer, &[("t", 0)]).await,
        vec![NONE]
    );
    let batch = txn_batch(producer, 0, &["c0"]);
    assert_eq!(produce_retrying(&h, 11, "classic", "t", batch).await, NONE);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("classic")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(true);
        let r = h.ask(ANONYMOUS, 3, request).await;
        if r.error_code != CONCURRENT_TRANSACTIONS {
            assert_eq!(r.error_code, NONE);
            break;
        }
        assert!(Instant::now() < deadline, "EndTxn never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read_committed(&h).await, vec!["c0".to_string()]);

    // Every state the coordinator wrote: Empty, Ongoing, PrepareCommit, CompleteCommit.
    let log = h.fetch_as(ANONYMOUS, "__transaction_state").await;
    let mut buf = log.records.clone().unwrap_or_default();
    let mut written = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
        for r in set.records {
            let value = r.value.unwrap();
            let version = i16::from_be_bytes([value[0], value[1]]);
            let decoded = shoal_txn::records::decode_value(&value).unwrap();
            written.push((version, decoded.client_transaction_version));
        }
    }
    assert!(written.len() >= 4, "{written:?}");
    assert!(
        written
            .iter()
            .all(|(version, client)| *version == 1 && *client < 2),
        "values in v1, the client's classic version in the tag: {written:?}"
    );
}
