//! TxnOffsetCommit against a real node (metadata quorum, logs on disk, the transaction
//! coordinator and its markers): offsets sent to a transaction are invisible until it commits
//! (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT meanwhile), vanish if it
//! aborts, and read back the same after a restart; and every refusal Kafka makes before the
//! coordinator (authorization, unknown topics, no coordinator here, a commit outside the
//! producer's transaction) is made here too, leaving nothing behind.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::time::{Duration, Instant};

use common::{
    ADMIN, GROUP_AUTHORIZATION_FAILED, Harness, NONE, TOPIC_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION, allow, s,
};
use kafka_protocol::messages::*;
use shoal_acl::{Operation, ResourceType};

const ANONYMOUS: &str = common::ANONYMOUS;
const ILLEGAL_GENERATION: i16 = 22;
const NOT_COORDINATOR: i16 = 16;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// TxnOffsetCommit of `(topic, partition, offset)`s for `group` by `producer`, from
/// `principal`: (topic, partition, error code) per partition, in request order.
#[allow(clippy::too_many_arguments)]
async fn txn_commit_as(
    h: &Harness,
    principal: &str,
    version: i16,
    transactional_id: &str,
    producer: (i64, i16),
    group: &str,
    member: (i32, &str),
    offsets: &[(&str, i32, i64)],
) -> Vec<(String, i32, i16)> {
    let mut topics: Vec<txn_offset_commit_request::TxnOffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(if version >= 2 { 1 } else { -1 })
            .with_committed_metadata(Some(s(&format!("txn-{offset}"))));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let mut request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(transactional_id)))
        .with_group_id(GroupId(s(group)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_topics(topics);
    if version >= 3 {
        request.generation_id = member.0;
        request.member_id = s(member.1);
    }
    let response = h
        .call_as(principal, ApiKey::TxnOffsetCommit, version, request.into())
        .await;
    let Some(ResponseKind::TxnOffsetCommit(response)) = response else {
        panic!("TxnOffsetCommit v{version}: {response:?}")
    };
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

async fn txn_commit(
    h: &Harness,
    version: i16,
    transactional_id: &str,
    producer: (i64, i16),
    group: &str,
    offsets: &[(&str, i32, i64)],
) -> Vec<(String, i32, i16)> {
    txn_commit_as(
        h,
        ANONYMOUS,
        version,
        transactional_id,
        producer,
        group,
        (-1, ""),
        offsets,
    )
    .await
}

/// Every (topic, partition) of `offsets` with `code`.
fn all(offsets: &[(&str, i32, i64)], code: i16) -> Vec<(String, i32, i16)> {
    offsets
        .iter()
        .map(|(t, p, _)| (t.to_string(), *p, code))
        .collect()
}

/// OffsetFetch v7 of `t`-0 in `group`: (offset, metadata, error code).
async fn fetch(h: &Harness, group: &str, require_stable: bool) -> (i64, String, i16) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0]),
        ]));
    let response = h.ask(ANONYMOUS, 7, request).await;
    assert_eq!(response.error_code, NONE, "{response:?}");
    let p = &response.topics[0].partitions[0];
    let metadata = p
        .metadata
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    (p.committed_offset, metadata, p.error_code)
}

/// OffsetFetch with `require_stable` until it answers without UNSTABLE_OFFSET_COMMIT (the
/// markers are written after EndTxn answers).
async fn fetch_stable(h: &Harness, group: &str) -> (i64, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (offset, metadata, code) = fetch(h, group, true).await;
        if code != UNSTABLE_OFFSET_COMMIT {
            assert_eq!(code, NONE);
            return (offset, metadata);
        }
        assert!(Instant::now() < deadline, "the transaction never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_offsets(h: &Harness, transactional_id: &str, producer: (i64, i16), group: &str) {
    let response = h
        .ask(
            ANONYMOUS,
            3,
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_group_id(GroupId(s(group))),
        )
        .await;
    assert_eq!(response.error_code, NONE, "AddOffsetsToTxn: {response:?}");
}

/// EndTxn v3 (classic transactions: the epoch stays); retried while the previous one completes.
async fn end_txn(h: &Harness, transactional_id: &str, producer: (i64, i16), commit: bool) {
    let response = h
        .ask(
            ANONYMOUS,
            3,
            EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(commit),
        )
        .await;
    assert_eq!(response.error_code, NONE, "EndTxn: {response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_appear_when_it_commits_and_survive_a_restart() {
    let h = Harness::start().await;
    h.create_topic("t", 2).await;
    h.wait_for_coordinator().await;
    assert_eq!(h.commit(8, "g", -1, "", &[("t", 0, 5)]).await, vec![NONE]);
    let producer = h.init_txn("tx").await;
    add_offsets(&h, "tx", producer, "g").await;
    let offsets = [("t", 0, 10), ("t", 1, 11)];
    assert_eq!(
        txn_commit(&h, 3, "tx", producer, "g", &offsets).await,
        all(&offsets, NONE)
    );
    // Pending: the old offset without `require_stable`, UNSTABLE_OFFSET_COMMIT with it.
    assert_eq!(fetch(&h, "g", false).await, (5, "meta-5".into(), NONE));
    assert_eq!(
        fetch(&h, "g", true).await,
        (-1, String::new(), UNSTABLE_OFFSET_COMMIT)
    );
    end_txn(&h, "tx", producer, true).await;
    assert_eq!(fetch_stable(&h, "g").await, (10, "txn-10".into()));

    // The next transaction aborts: its offset vanishes.
    let producer = h.init_txn("tx").await;
    add_offsets(&h, "tx", producer, "g").await;
    assert_eq!(
        txn_commit(&h, 5, "tx", producer, "g", &[("t", 0, 20)]).await,
        all(&[("t", 0, 20)], NONE)
    );
    end_txn(&h, "tx", producer, false).await;
    assert_eq!(fetch_stable(&h, "g").await, (10, "txn-10".into()));

    // A transaction left open across a restart stays pending; the restarted coordinator reads
    // the committed and aborted batches and their markers back to the same offsets.
    let producer = h.init_txn("open").await;
    add_offsets(&h, "open", producer, "g").await;
    assert_eq!(
        txn_commit(&h, 0, "open", producer, "g", &[("t", 0, 30)]).await,
        all(&[("t", 0, 30)], NONE)
    );
    let h = h.restart(&[]).await;
    h.wait_for_coordinator().await;
    assert_eq!(fetch(&h, "g", false).await, (10, "txn-10".into(), NONE));
    assert_eq!(
        fetch(&h, "g", true).await,
        (-1, String::new(), UNSTABLE_OFFSET_COMMIT),
        "the open transaction's offset is still pending"
    );
    // The reloaded transaction coordinator ends it (a new producer epoch aborts it).
    h.init_txn("open").await;
    assert_eq!(fetch_stable(&h, "g").await, (10, "txn-10".into()));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactional_commits_are_refused_and_leave_nothing() {
    let h = Harness::start().await;
    h.create_topic("t", 2).await;
    let producer = h.init_txn("tx").await;
    let one = [("t", 0, 1)];
    // No offsets topic yet, so no coordinator here.
    assert_eq!(
        txn_commit(&h, 3, "tx", producer, "g", &one).await,
        all(&one, NOT_COORDINATOR)
    );
    h.wait_for_coordinator().await;
    // Unknown topics and partitions are refused one by one; the rest is not committed because
    // the offsets partition is not in the transaction (KIP-890 verification).
    let mixed = [("t", 0, 1), ("t", 7, 1), ("nope", 0, 1)];
    assert_eq!(
        txn_commit(&h, 3, "tx", producer, "g", &mixed).await,
        vec![
            ("t".into(), 0, INVALID_TXN_STATE),
            ("t".into(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("nope".into(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(
        txn_commit(&h, 3, "tx", (-1, -1), "g", &one).await,
        all(&one, INVALID_PRODUCER_ID_MAPPING)
    );
    add_offsets(&h, "tx", producer, "g").await;
    // An unknown group named with a generation (KIP-447).
    assert_eq!(
        txn_commit_as(&h, ANONYMOUS, 3, "tx", producer, "g", (4, "m"), &one).await,
        all(&one, ILLEGAL_GENERATION)
    );
    end_txn(&h, "tx", producer, true).await;
    assert_eq!(fetch_stable(&h, "g").await.0, -1, "nothing was committed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_commits_need_write_on_the_id_and_read_on_group_and_topics() {
    const BOB: &str = "User:bob";
    let h = Harness::start_secured(&[]).await;
    h.create_topic("t", 2).await;
    h.create_topic("secret", 1).await;
    h.wait_for_coordinator_as(ADMIN).await;
    let offsets = [("t", 0, 1), ("secret", 0, 1)];
    let as_bob = |txn: &'static str, group: &'static str| {
        let h = &h;
        async move { txn_commit_as(h, BOB, 3, txn, (1, 0), group, (-1, ""), &offsets).await }
    };
    assert_eq!(
        as_bob("tx", "g").await,
        all(&offsets, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    );
    h.create_acls(vec![allow(
        BOB,
        ResourceType::TransactionalId,
        "tx",
        Operation::Write,
    )])
    .await;
    assert_eq!(
        as_bob("tx", "g").await,
        all(&offsets, GROUP_AUTHORIZATION_FAILED)
    );
    h.create_acls(vec![
        allow(BOB, ResourceType::Group, "g", Operation::Read),
        allow(BOB, ResourceType::Topic, "t", Operation::Read),
    ])
    .await;
    // Authorized on `t` only: `secret` is refused before the coordinator sees the request; `t`
    // reaches it (and fails verification: producer 1 has no transaction).
    let answered = as_bob("tx", "g").await;
    assert_eq!(
        answered[1],
        ("secret".into(), 0, TOPIC_AUTHORIZATION_FAILED)
    );
    assert_ne!(answered[0].2, TOPIC_AUTHORIZATION_FAILED);
    assert_ne!(answered[0].2, NONE);
    h.stop().await;
}
