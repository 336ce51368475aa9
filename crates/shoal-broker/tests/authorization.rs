//! ACL authorization end to end on a real node: the ACL APIs (CreateAcls, DescribeAcls,
//! DeleteAcls) and the data path (Produce, Fetch, ListOffsets, Metadata, OffsetForLeaderEpoch,
//! InitProducerId) checking exactly what Kafka checks, with Kafka's error codes. Each check
//! here fails if the handler stops asking the authorizer.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod common;

use common::{Harness, batch, s};
use kafka_protocol::messages::*;
use shoal_acl::{
    AclBinding, AclEntry, Operation, PatternType, Permission, Principal, ResourcePattern,
    ResourceType,
};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;
const SECURITY_DISABLED: i16 = 54;
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        },
        entry: AclEntry {
            principal: Principal::parse(principal).unwrap(),
            host: "*".into(),
            operation,
            permission,
        },
    }
}

/// A node with the authorizer on, `User:admin` a super user, topics `orders-eu` and
/// `payments` holding 3 records each, and alice allowed READ on `orders-*` and the group
/// `billing` (the scenario).
async fn secured() -> Harness {
    let h = Harness::start_with(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin"),
    ])
    .await;
    for topic in ["orders-eu", "payments"] {
        h.create_topic(topic, 1).await;
        assert_eq!(produce(&h, "User:admin", topic).await, 0);
    }
    h.create_acls(vec![
        acl(
            ResourceType::Topic,
            "orders-",
            PatternType::Prefixed,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        ),
        acl(
            ResourceType::Group,
            "billing",
            PatternType::Literal,
            "User:alice",
            Operation::Read,
            Permission::Allow,
        ),
    ])
    .await;
    h
}

async fn produce(h: &Harness, principal: &str, topic: &str) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s(topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(3))),
                ]),
        ]);
    let Some(ResponseKind::Produce(r)) = h
        .call_as(principal, ApiKey::Produce, 9, request.into())
        .await
    else {
        panic!("no produce response")
    };
    r.responses[0].partition_responses[0].error_code
}

/// Fetch of partition 0 (v12, by name): the error code and whether records came back.
async fn fetch(h: &Harness, principal: &str, topic: &str) -> (i16, bool) {
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
    let Some(ResponseKind::Fetch(r)) = h
        .call_as(principal, ApiKey::Fetch, 12, request.into())
        .await
    else {
        panic!("no fetch response")
    };
    let p = &r.responses[0].partitions[0];
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
    let Some(ResponseKind::ListOffsets(r)) = h
        .call_as(principal, ApiKey::ListOffsets, 7, request.into())
        .await
    else {
        panic!("no list offsets response")
    };
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
    let Some(ResponseKind::OffsetForLeaderEpoch(r)) = h
        .call_as(principal, ApiKey::OffsetForLeaderEpoch, 4, request.into())
        .await
    else {
        panic!("no response")
    };
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
    let Some(ResponseKind::Metadata(r)) = h
        .call_as(principal, ApiKey::Metadata, 12, request.into())
        .await
    else {
        panic!("no metadata response")
    };
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
    let Some(ResponseKind::InitProducerId(r)) = h
        .call_as(principal, ApiKey::InitProducerId, 4, request.into())
        .await
    else {
        panic!("no response")
    };
    r.error_code
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
    h.create_acls(vec![acl(
        ResourceType::Topic,
        "payments",
        PatternType::Literal,
        "User:bob",
        Operation::Write,
        Permission::Allow,
    )])
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
    h.create_acls(vec![acl(
        ResourceType::Topic,
        "orders-eu",
        PatternType::Literal,
        "User:alice",
        Operation::Read,
        Permission::Deny,
    )])
    .await;
    assert_eq!(
        fetch(&h, "User:alice", "orders-eu").await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    // User:* grants everyone.
    h.create_acls(vec![acl(
        ResourceType::Topic,
        "payments",
        PatternType::Literal,
        "User:*",
        Operation::Describe,
        Permission::Allow,
    )])
    .await;
    assert_eq!(list_offsets(&h, "User:mallory", "payments").await, 0);
    h.stop().await;
}

async fn create_acls(
    h: &Harness,
    principal: &str,
    creations: Vec<create_acls_request::AclCreation>,
) -> Vec<i16> {
    let Some(ResponseKind::CreateAcls(r)) = h
        .call_as(
            principal,
            ApiKey::CreateAcls,
            3,
            CreateAclsRequest::default()
                .with_creations(creations)
                .into(),
        )
        .await
    else {
        panic!("no response")
    };
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
    let Some(ResponseKind::DescribeAcls(r)) = h
        .call_as(principal, ApiKey::DescribeAcls, 3, request.into())
        .await
    else {
        panic!("no response")
    };
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
    let Some(ResponseKind::DeleteAcls(r)) = h
        .call_as("User:admin", ApiKey::DeleteAcls, 3, request.into())
        .await
    else {
        panic!("no response")
    };
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 2);
    assert_eq!(
        fetch(&h, "User:alice", "orders-eu").await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    let (_, left) = describe_acls(&h, "User:admin", None, 1).await;
    assert_eq!(left, vec!["2:shared-:4 User:carol 3 3".to_owned()]);
    // The ACLs survive a restart (they are metadata records).
    let h = h
        .restart(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin"),
        ])
        .await;
    let (_, after) = describe_acls(&h, "User:admin", None, 1).await;
    assert_eq!(after, left);
    h.stop().await;
}
