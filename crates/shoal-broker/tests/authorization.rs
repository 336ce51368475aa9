//! ACL authorization end to end on a real node: the ACL APIs (CreateAcls, DescribeAcls,
//! DeleteAcls) and the data path (Produce, Fetch, ListOffsets, Metadata, OffsetForLeaderEpoch,
//! InitProducerId) checking exactly what Kafka checks, with Kafka's error codes. Each check
//! here fails if the handler stops asking the authorizer.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use common::{
    CLUSTER_AUTHORIZATION_FAILED, Harness, INVALID_REQUEST, SECURED, SECURITY_DISABLED,
    TOPIC_AUTHORIZATION_FAILED, allow, allow_prefixed, batch, deny, on_topic, s,
};
use kafka_protocol::messages::*;
use shoal_acl::{Operation, ResourceType};

/// A node with the authorizer on, `User:admin` a super user, topics `orders-eu` and
/// `payments` holding 3 records each, and alice allowed READ on `orders-*` and the group
/// `billing` (the scenario).
async fn secured() -> Harness {
    let h = Harness::start_secured(&[]).await;
    for topic in ["orders-eu", "payments"] {
        h.create_topic(topic, 1).await;
        assert_eq!(produce(&h, "User:admin", topic).await, 0);
    }
    h.create_acls(vec![
        allow_prefixed("User:alice", "orders-", Operation::Read),
        allow(
            "User:alice",
            ResourceType::Group,
            "billing",
            Operation::Read,
        ),
    ])
    .await;
    h
}

async fn produce(h: &Harness, principal: &str, topic: &str) -> i16 {
    h.produce_as(principal, topic, batch(3)).await.error_code
}

/// Fetch of partition 0 (v12, by name): the error code and whether records came back.
async fn fetch(h: &Harness, principal: &str, topic: &str) -> (i16, bool) {
    let p = h.fetch_as(principal, topic).await;
    (
        p.error_code,
        p.records.as_ref().is_some_and(|b| !b.is_empty()),
    )
}

async fn list_offsets(h: &Harness, principal: &str, topic: &str) -> i16 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let r = h.ask(principal, 7, request).await;
    r.topics[0].partitions[0].error_code
}

async fn epoch_end(h: &Harness, principal: &str, topic: &str) -> i16 {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                ]),
        ]);
    let r = h.ask(principal, 4, request).await;
    r.topics[0].partitions[0].error_code
}

/// Metadata v12: `None` = all topics. Returns (name or "", error code, authorized ops).
async fn metadata(
    h: &Harness,
    principal: &str,
    topics: Option<&[&str]>,
) -> Vec<(String, i16, i32)> {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName(s(n))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(true)
        .with_include_topic_authorized_operations(true);
    let r = h.ask(principal, 12, request).await;
    let mut topics: Vec<_> = r
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.map(|n| n.0.as_str().to_owned()).unwrap_or_default(),
                t.error_code,
                t.topic_authorized_operations,
            )
        })
        .collect();
    topics.sort();
    topics
}

async fn init_producer_id(h: &Harness, principal: &str) -> i16 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    h.ask(principal, 4, request).await.error_code
}

fn bit(op: Operation) -> i32 {
    1 << op.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_orders_reads_orders_and_nothing_else() {
    let h = secured().await;
    // Read on orders-* : fetch and list offsets; no produce anywhere.
    assert_eq!(fetch(&h, "User:alice", "orders-eu").await, (0, true));
    assert_eq!(list_offsets(&h, "User:alice", "orders-eu").await, 0);
    assert_eq!(epoch_end(&h, "User:alice", "orders-eu").await, 0);
    assert_eq!(
        produce(&h, "User:alice", "orders-eu").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    for (case, code) in [
        ("fetch payments", fetch(&h, "User:alice", "payments").await),
        (
            "produce payments",
            (produce(&h, "User:alice", "payments").await, false),
        ),
        (
            "list offsets payments",
            (list_offsets(&h, "User:alice", "payments").await, false),
        ),
        (
            "epoch payments",
            (epoch_end(&h, "User:alice", "payments").await, false),
        ),
        (
            "fetch a missing topic",
            fetch(&h, "User:alice", "nope").await,
        ),
    ] {
        assert_eq!(code, (TOPIC_AUTHORIZATION_FAILED, false), "{case}");
    }
    // Metadata: all topics shows only what alice may describe; a named one she may not is
    // refused, existing or not, and is not auto-created without CREATE.
    let read_ops = bit(Operation::Read) | bit(Operation::Describe);
    assert_eq!(
        metadata(&h, "User:alice", None).await,
        vec![("orders-eu".to_owned(), 0, read_ops)]
    );
    assert_eq!(
        metadata(
            &h,
            "User:alice",
            Some(&["payments", "orders-new", "orders-eu"])
        )
        .await,
        vec![
            ("orders-eu".to_owned(), 0, read_ops),
            (
                "orders-new".to_owned(),
                TOPIC_AUTHORIZATION_FAILED,
                i32::MIN
            ),
            ("payments".to_owned(), TOPIC_AUTHORIZATION_FAILED, i32::MIN),
        ]
    );
    assert!(h.broker.image().topic_by_name("orders-new").is_none());
    // Idempotent producers need WRITE somewhere (or IDEMPOTENT_WRITE on the cluster).
    assert_eq!(
        init_producer_id(&h, "User:alice").await,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // Anyone else sees nothing: no ACL names them and allow.everyone.if.no.acl.found=false.
    assert_eq!(metadata(&h, "User:mallory", None).await, vec![]);
    assert_eq!(
        fetch(&h, "User:mallory", "orders-eu").await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    // The super user does everything.
    assert_eq!(produce(&h, "User:admin", "payments").await, 0);
    assert_eq!(fetch(&h, "User:admin", "payments").await, (0, true));
    assert_eq!(init_producer_id(&h, "User:admin").await, 0);
    assert_eq!(metadata(&h, "User:admin", None).await.len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_denials_take_effect_when_create_acls_returns() {
    let h = secured().await;
    // WRITE on a literal topic: produce there, and an idempotent producer id.
    h.create_acls(vec![on_topic("User:bob", "payments", Operation::Write)])
        .await;
    assert_eq!(produce(&h, "User:bob", "payments").await, 0);
    assert_eq!(
        produce(&h, "User:bob", "orders-eu").await,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(init_producer_id(&h, "User:bob").await, 0);
    // WRITE implies DESCRIBE: bob sees payments in Metadata.
    assert_eq!(
        metadata(&h, "User:bob", None).await,
        vec![(
            "payments".to_owned(),
            0,
            bit(Operation::Write) | bit(Operation::Describe)
        )]
    );
    // A DENY beats the prefixed ALLOW.
    h.create_acls(vec![deny(
        "User:alice",
        ResourceType::Topic,
        "orders-eu",
        Operation::Read,
    )])
    .await;
    assert_eq!(
        fetch(&h, "User:alice", "orders-eu").await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    // User:* grants everyone.
    h.create_acls(vec![on_topic("User:*", "payments", Operation::Describe)])
        .await;
    assert_eq!(list_offsets(&h, "User:mallory", "payments").await, 0);
    h.stop().await;
}

async fn create_acls(
    h: &Harness,
    principal: &str,
    creations: Vec<create_acls_request::AclCreation>,
) -> Vec<i16> {
    let request = CreateAclsRequest::default().with_creations(creations);
    let r = h.ask(principal, 3, request).await;
    r.results.iter().map(|r| r.error_code).collect()
}

fn creation(name: &str, pattern_type: i8, operation: i8) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern_type)
        .with_principal(s("User:carol"))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(3)
}

async fn describe_acls(
    h: &Harness,
    principal: &str,
    name: Option<&str>,
    pattern: i8,
) -> (i16, Vec<String>) {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let r = h.ask(principal, 3, request).await;
    let mut acls: Vec<String> = r
        .resources
        .iter()
        .flat_map(|res| {
            res.acls.iter().map(move |a| {
                format!(
                    "{}:{}:{} {} {} {}",
                    res.resource_type,
                    res.resource_name.as_str(),
                    res.pattern_type,
                    a.principal.as_str(),
                    a.operation,
                    a.permission_type
                )
            })
        })
        .collect();
    acls.sort();
    (r.error_code, acls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_apis_follow_kafka() {
    // Without an authorizer they answer SECURITY_DISABLED, as Kafka does.
    let open = Harness::start().await;
    assert_eq!(
        create_acls(&open, "User:ANONYMOUS", vec![creation("t", 3, 3)]).await,
        vec![SECURITY_DISABLED]
    );
    assert_eq!(
        describe_acls(&open, "User:ANONYMOUS", None, 1).await.0,
        SECURITY_DISABLED
    );
    open.stop().await;

    let h = secured().await;
    // Only a principal with ALTER (create, delete) or DESCRIBE (describe) on the cluster.
    assert_eq!(
        create_acls(&h, "User:alice", vec![creation("t", 3, 3)]).await,
        vec![CLUSTER_AUTHORIZATION_FAILED]
    );
    assert_eq!(
        describe_acls(&h, "User:alice", None, 1).await.0,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // Invalid creations are refused one by one; the valid one lands.
    assert_eq!(
        create_acls(
            &h,
            "User:admin",
            vec![
                creation("shared-", 4, 3),
                creation("*", 4, 3),  // a PREFIXED wildcard
                creation("t", 1, 3),  // pattern ANY is a filter, not an ACL
                creation("t", 3, 99), // no such operation
            ]
        )
        .await,
        vec![0, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST]
    );
    // MATCH: every ACL that applies to shared-x (the prefix), not those of other names.
    let (code, matching) = describe_acls(&h, "User:admin", Some("shared-x"), 2).await;
    assert_eq!(code, 0);
    assert_eq!(matching, vec!["2:shared-:4 User:carol 3 3".to_owned()]);
    let (_, all) = describe_acls(&h, "User:admin", None, 1).await;
    assert_eq!(all.len(), 3, "{all:?}");
    // Delete by filter: reports what it removed; alice is no longer allowed.
    let request = DeleteAclsRequest::default().with_filters(vec![
        delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(1)
            .with_principal_filter(Some(s("User:alice")))
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    ]);
    let r = h.ask("User:admin", 3, request).await;
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 2);
    assert_eq!(
        fetch(&h, "User:alice", "orders-eu").await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    let (_, left) = describe_acls(&h, "User:admin", None, 1).await;
    assert_eq!(left, vec!["2:shared-:4 User:carol 3 3".to_owned()]);
    // The ACLs survive a restart (they are metadata records).
    let h = h.restart(SECURED).await;
    let (_, after) = describe_acls(&h, "User:admin", None, 1).await;
    assert_eq!(after, left);
    h.stop().await;
}

/// A Produce v9 naming `transactional_id`, with a transactional batch for partition 0 of
/// `transactional_topic` and a plain one for partition 0 of `plain_topic`: every partition's
/// error code, in request order.
async fn transactional_produce(
    h: &Harness,
    principal: &str,
    transactional_id: &str,
    transactional_topic: &str,
    plain_topic: &str,
) -> Vec<i16> {
    let txn_record = kafka_protocol::records::Record {
        transactional: true,
        control: false,
        partition_leader_epoch: 0,
        producer_id: 4_000,
        producer_epoch: 0,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(bytes::Bytes::from_static(b"in a transaction")),
        headers: Default::default(),
        delete_horizon: false,
    };
    let data = |topic: &str, records| {
        produce_request::TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])
    };
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s(transactional_id))))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            data(
                transactional_topic,
                common::encode(&[txn_record], kafka_protocol::records::Compression::None),
            ),
            data(plain_topic, batch(1)),
        ]);
    let response = h.ask(principal, 9, request).await;
    response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_records_without_write_on_the_transactional_id_fail_the_whole_produce() {
    const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    let h = secured().await;
    h.create_acls(vec![on_topic("User:bob", "payments", Operation::Write)])
        .await;
    // Kafka's first check: every partition answers 53, even the one bob may not write to and
    // the one whose batch is not transactional.
    assert_eq!(
        transactional_produce(&h, "User:bob", "tx-bob", "payments", "orders-eu").await,
        vec![
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        ]
    );
    // With WRITE on the id, the topics are checked one by one again.
    h.create_acls(vec![allow(
        "User:bob",
        ResourceType::TransactionalId,
        "tx-bob",
        Operation::Write,
    )])
    .await;
    let codes = transactional_produce(&h, "User:bob", "tx-bob", "payments", "orders-eu").await;
    assert_ne!(codes[0], TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(codes[1], TOPIC_AUTHORIZATION_FAILED);
    h.stop().await;
}
