//! ACL authorization of the admin APIs on a real node: CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, IncrementalAlterConfigs, ElectLeaders and
//! DescribeCluster check what Kafka's KafkaApis / ControllerApis check, answer Kafka's codes
//! per item, and leave an unauthorized item untouched. Every table here fails if a handler
//! stops asking the authorizer.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use common::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, Harness, INVALID_CONFIG,
    INVALID_REQUEST, NONE, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION, allow, allow_prefixed, deny, on_cluster, on_topic, s,
};
use kafka_protocol::messages::*;
use shoal_acl::{Operation, ResourceType};
use uuid::Uuid;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_GROUP: i8 = 32;

/// Kafka's bit field of every cluster operation (`AclEntry.supportedOperations(CLUSTER)`):
/// CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
/// IDEMPOTENT_WRITE 12.
const ALL_CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// A node with the authorizer on and `User:admin` a super user.
async fn secured() -> Harness {
    Harness::start_secured(&[]).await
}

/// [`secured`] with `topics` of `partitions` partitions each.
async fn secured_with_topics(partitions: i32, topics: &[&str]) -> Harness {
    let h = secured().await;
    for topic in topics {
        h.create_topic(topic, partitions).await;
    }
    h
}

fn exists(h: &Harness, topic: &str) -> bool {
    h.broker.image().topic_by_name(topic).is_some()
}

fn partition_count(h: &Harness, topic: &str) -> usize {
    h.broker
        .image()
        .topic_by_name(topic)
        .unwrap()
        .partitions
        .len()
}

// ─── Requests ────────────────────────────────────────────────────────────────────────────

async fn create_topics(h: &Harness, who: &str, names: &[&str]) -> CreateTopicsResponse {
    let request = CreateTopicsRequest::default()
        .with_topics(
            names
                .iter()
                .map(|n| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(s(n)))
                        .with_num_partitions(2)
                        .with_replication_factor(1)
                })
                .collect(),
        )
        .with_timeout_ms(10_000);
    h.ask(who, 7, request).await
}

/// CreateTopics' error code per topic, in request order.
async fn create_codes(h: &Harness, who: &str, names: &[&str]) -> Vec<i16> {
    let response = create_topics(h, who, names).await;
    names
        .iter()
        .map(|n| {
            response
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == *n)
                .unwrap_or_else(|| panic!("no result for {n}: {response:?}"))
                .error_code
        })
        .collect()
}

/// DeleteTopics v6 of topics given by name (`Ok`) or id (`Err`); the results in order.
async fn delete_topics(
    h: &Harness,
    who: &str,
    topics: &[Result<&str, Uuid>],
) -> Vec<delete_topics_response::DeletableTopicResult> {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(
            topics
                .iter()
                .map(|t| match t {
                    Ok(name) => delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(TopicName(s(name)))),
                    Err(id) => delete_topics_request::DeleteTopicState::default()
                        .with_name(None)
                        .with_topic_id(*id),
                })
                .collect(),
        );
    h.ask(who, 6, request).await.responses
}

/// (error code, name) of each DeleteTopics result.
fn named_codes(
    results: &[delete_topics_response::DeletableTopicResult],
) -> Vec<(i16, Option<&str>)> {
    results
        .iter()
        .map(|r| (r.error_code, r.name.as_ref().map(|n| n.0.as_str())))
        .collect()
}

/// DeleteTopics v4 (names only); the error codes in order.
async fn delete_by_name_v4(h: &Harness, who: &str, names: &[&str]) -> Vec<i16> {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect());
    let r = h.ask(who, 4, request).await;
    r.responses.iter().map(|t| t.error_code).collect()
}

/// CreatePartitions v3 growing each topic to `count`; the error codes in order.
async fn create_partitions(h: &Harness, who: &str, topics: &[(&str, i32)]) -> Vec<i16> {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(
            topics
                .iter()
                .map(|(name, count)| {
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(TopicName(s(name)))
                        .with_count(*count)
                        .with_assignments(None)
                })
                .collect(),
        );
    let r = h.ask(who, 3, request).await;
    r.results.iter().map(|t| t.error_code).collect()
}

/// DescribeConfigs v4 of `(resource type, name)`s; the results in order.
async fn describe_configs(
    h: &Harness,
    who: &str,
    resources: &[(i8, &str)],
) -> Vec<describe_configs_response::DescribeConfigsResult> {
    let request = DescribeConfigsRequest::default().with_resources(
        resources
            .iter()
            .map(|(kind, name)| {
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(*kind)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    h.ask(who, 4, request).await.results
}

fn codes(results: &[describe_configs_response::DescribeConfigsResult]) -> Vec<i16> {
    results.iter().map(|r| r.error_code).collect()
}

/// IncrementalAlterConfigs v1 setting `retention.ms` on each `(resource type, name)`; the
/// error codes in order.
async fn alter_configs(
    h: &Harness,
    who: &str,
    resources: &[(i8, &str)],
    retention_ms: &str,
) -> Vec<i16> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(
        resources
            .iter()
            .map(|(kind, name)| {
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(*kind)
                    .with_resource_name(s(name))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s(retention_ms))),
                    ])
            })
            .collect(),
    );
    let r = h.ask(who, 1, request).await;
    r.responses.iter().map(|r| r.error_code).collect()
}

fn retention_override(h: &Harness, topic: &str) -> Option<String> {
    h.broker
        .image()
        .topic_by_name(topic)
        .unwrap()
        .configs
        .get("retention.ms")
        .cloned()
}

/// A preferred ElectLeaders of `topic`'s partitions 0 and 1 at `version`.
async fn elect_leaders(h: &Harness, who: &str, version: i16, topic: &str) -> ElectLeadersResponse {
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![
            elect_leaders_request::TopicPartitions::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![0, 1]),
        ]));
    h.ask(who, version, request).await
}

fn partition_codes(response: &ElectLeadersResponse) -> Vec<i16> {
    response
        .replica_election_results
        .iter()
        .flat_map(|t| t.partition_result.iter().map(|p| p.error_code))
        .collect()
}

/// DescribeCluster v1's `cluster_authorized_operations`.
async fn cluster_operations(h: &Harness, who: &str, include: bool) -> i32 {
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(1)
        .with_include_cluster_authorized_operations(include);
    let r = h.ask(who, 1, request).await;
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert!(!r.brokers.is_empty(), "anyone may describe the cluster");
    r.cluster_authorized_operations
}

// ─── Tests ───────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_needs_create_on_the_topic_or_the_cluster() {
    let h = secured().await;
    h.create_acls(vec![
        allow_prefixed("User:alice", "team-", Operation::Create),
        on_cluster("User:bob", Operation::Create),
    ])
    .await;

    // (principal, topic, expected code)
    let table = [
        ("User:alice", "team-a", NONE),
        ("User:alice", "other", TOPIC_AUTHORIZATION_FAILED),
        ("User:bob", "anything-at-all", NONE),
        ("User:carol", "team-c", TOPIC_AUTHORIZATION_FAILED),
        ("User:admin", "admins-choice", NONE),
    ];
    for (who, topic, expected) in table {
        assert_eq!(
            create_codes(&h, who, &[topic]).await,
            vec![expected],
            "{who} creating {topic}"
        );
        assert_eq!(
            exists(&h, topic),
            expected == NONE,
            "{who} creating {topic}"
        );
    }

    // One request, two verdicts: the authorized topic is created, the other is not.
    let response = create_topics(&h, "User:alice", &["team-b", "elsewhere"]).await;
    let by_name = |n: &str| {
        response
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("team-b").error_code, NONE);
    let refused = by_name("elsewhere");
    assert_eq!(refused.error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Authorization failed.")
    );
    assert!(exists(&h, "team-b"));
    assert!(!exists(&h, "elsewhere"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_topic_configs_need_describe_configs() {
    let h = secured().await;
    h.create_acls(vec![
        allow_prefixed("User:alice", "team-", Operation::Create),
        allow_prefixed("User:alice", "team-open-", Operation::DescribeConfigs),
    ])
    .await;

    // No DESCRIBE_CONFIGS: created, but configs, partition count and replication factor are
    // withheld behind topic_config_error_code, as Kafka's ReplicationControlManager does.
    let hidden = create_topics(&h, "User:alice", &["team-hidden"])
        .await
        .topics[0]
        .clone();
    assert_eq!(hidden.error_code, NONE);
    assert_ne!(hidden.topic_id, Uuid::nil());
    assert_eq!(hidden.topic_config_error_code, TOPIC_AUTHORIZATION_FAILED);
    assert!(hidden.configs.unwrap_or_default().is_empty());
    assert_eq!(hidden.num_partitions, -1);
    assert!(exists(&h, "team-hidden"));

    let shown = create_topics(&h, "User:alice", &["team-open-1"])
        .await
        .topics[0]
        .clone();
    assert_eq!(shown.error_code, NONE);
    assert_eq!(shown.topic_config_error_code, NONE);
    assert_eq!(shown.num_partitions, 2);
    assert_eq!(shown.replication_factor, 1);
    assert!(
        shown
            .configs
            .unwrap()
            .iter()
            .any(|c| c.name.as_str() == "retention.ms")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_needs_delete_by_name_and_by_id() {
    let h = secured_with_topics(1, &["team-x", "team-y", "team-z", "secret", "shown"]).await;
    h.create_acls(vec![
        allow_prefixed("User:alice", "team-", Operation::Delete),
        // carol may see every topic but delete none.
        on_topic("User:carol", "*", Operation::Describe),
    ])
    .await;
    let secret_id = h.topic_id("secret");
    let shown_id = h.topic_id("shown");
    let team_y_id = h.topic_id("team-y");

    // By name: DELETE needed; no DESCRIBE means TOPIC_AUTHORIZATION_FAILED even for a topic
    // that does not exist (existence is not revealed).
    let by_name = delete_topics(&h, "User:alice", &[Ok("team-x"), Ok("secret"), Ok("ghost")]).await;
    assert_eq!(
        named_codes(&by_name),
        vec![
            (NONE, Some("team-x")),
            (TOPIC_AUTHORIZATION_FAILED, Some("secret")),
            (TOPIC_AUTHORIZATION_FAILED, Some("ghost")),
        ]
    );
    assert!(!exists(&h, "team-x"));
    assert!(exists(&h, "secret"));

    // By id: resolved in the image; an unknown id stays UNKNOWN_TOPIC_ID; a refusal does not
    // name a topic the principal may not describe.
    let by_id = delete_topics(
        &h,
        "User:alice",
        &[Err(secret_id), Err(team_y_id), Err(Uuid::new_v4())],
    )
    .await;
    assert_eq!(
        named_codes(&by_id),
        vec![
            (TOPIC_AUTHORIZATION_FAILED, None),
            (NONE, Some("team-y")),
            (UNKNOWN_TOPIC_ID, None),
        ]
    );
    assert_eq!(by_id[0].topic_id, secret_id);
    assert!(exists(&h, "secret"));
    assert!(!exists(&h, "team-y"));

    // carol describes but may not delete: refused, and the name is shown to her; an unknown
    // name she may describe is UNKNOWN_TOPIC_OR_PARTITION.
    let carol = delete_topics(&h, "User:carol", &[Err(shown_id), Ok("shown"), Ok("ghost")]).await;
    assert_eq!(
        named_codes(&carol),
        vec![
            (TOPIC_AUTHORIZATION_FAILED, Some("shown")),
            (TOPIC_AUTHORIZATION_FAILED, Some("shown")),
            (UNKNOWN_TOPIC_OR_PARTITION, Some("ghost")),
        ]
    );
    assert!(exists(&h, "shown"));

    // The name-only versions check the same.
    assert_eq!(
        delete_by_name_v4(&h, "User:alice", &["team-z", "shown"]).await,
        vec![NONE, TOPIC_AUTHORIZATION_FAILED]
    );
    assert!(!exists(&h, "team-z"));
    assert!(exists(&h, "shown"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_needs_alter_on_the_topic() {
    let h = secured_with_topics(2, &["grow", "fixed"]).await;
    h.create_acls(vec![
        on_topic("User:alice", "grow", Operation::Alter),
        // CREATE is not ALTER.
        on_topic("User:alice", "fixed", Operation::Create),
    ])
    .await;
    assert_eq!(
        create_partitions(&h, "User:alice", &[("grow", 3), ("fixed", 3)]).await,
        vec![NONE, TOPIC_AUTHORIZATION_FAILED]
    );
    assert_eq!(partition_count(&h, "grow"), 3);
    assert_eq!(partition_count(&h, "fixed"), 2);
    assert_eq!(
        create_partitions(&h, "User:bob", &[("grow", 4)]).await,
        vec![TOPIC_AUTHORIZATION_FAILED]
    );
    assert_eq!(partition_count(&h, "grow"), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_needs_the_topic_or_group_acl_or_the_cluster_acl_for_brokers() {
    let h = secured_with_topics(1, &["t", "u"]).await;
    h.create_acls(vec![
        on_topic("User:alice", "t", Operation::DescribeConfigs),
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS.
        on_topic("User:bob", "u", Operation::AlterConfigs),
        on_cluster("User:bob", Operation::DescribeConfigs),
        allow(
            "User:alice",
            ResourceType::Group,
            "g",
            Operation::DescribeConfigs,
        ),
    ])
    .await;
    let resources = [
        (RESOURCE_TOPIC, "t"),
        (RESOURCE_TOPIC, "u"),
        (RESOURCE_TOPIC, "missing"),
        (RESOURCE_BROKER, "1"),
        (RESOURCE_BROKER_LOGGER, "1"),
        (RESOURCE_GROUP, "g"),
        (RESOURCE_GROUP, "h"),
    ];
    let alice = describe_configs(&h, "User:alice", &resources).await;
    assert_eq!(
        codes(&alice),
        vec![
            NONE,
            TOPIC_AUTHORIZATION_FAILED,
            TOPIC_AUTHORIZATION_FAILED,
            CLUSTER_AUTHORIZATION_FAILED,
            CLUSTER_AUTHORIZATION_FAILED,
            NONE,
            GROUP_AUTHORIZATION_FAILED,
        ]
    );
    assert!(!alice[0].configs.is_empty());
    assert!(alice[1..5].iter().all(|r| r.configs.is_empty()));
    assert_eq!(alice[5].configs.len(), 2, "a group's two configs");
    assert!(alice[6].configs.is_empty());
    assert_eq!(
        alice[1].error_message.as_deref(),
        Some("Topic authorization failed.")
    );
    assert_eq!(
        alice[3].error_message.as_deref(),
        Some("Cluster authorization failed.")
    );

    // bob: the cluster ACL opens the broker (the logger is then refused as unsupported, no
    // longer as unauthorized).
    let bob = describe_configs(&h, "User:bob", &resources).await;
    assert_eq!(
        codes(&bob),
        vec![
            TOPIC_AUTHORIZATION_FAILED,
            NONE,
            TOPIC_AUTHORIZATION_FAILED,
            NONE,
            INVALID_REQUEST,
            GROUP_AUTHORIZATION_FAILED,
            GROUP_AUTHORIZATION_FAILED,
        ]
    );
    assert!(!bob[1].configs.is_empty());
    assert!(!bob[3].configs.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_needs_the_topic_or_group_acl_or_the_cluster_acl_for_brokers() {
    let h = secured_with_topics(1, &["t", "u"]).await;
    h.create_acls(vec![
        on_topic("User:alice", "t", Operation::AlterConfigs),
        // DESCRIBE_CONFIGS does not allow altering.
        on_topic("User:alice", "u", Operation::DescribeConfigs),
        on_cluster("User:bob", Operation::AlterConfigs),
        // A group's configs are authorized on the group (Kafka 4.0's GROUP resources).
        allow(
            "User:alice",
            ResourceType::Group,
            "g",
            Operation::AlterConfigs,
        ),
    ])
    .await;
    let resources = [
        (RESOURCE_TOPIC, "t"),
        (RESOURCE_TOPIC, "u"),
        (RESOURCE_BROKER, "1"),
        (RESOURCE_BROKER_LOGGER, "1"),
        (RESOURCE_GROUP, "g"),
        (RESOURCE_GROUP, "h"),
    ];
    // retention.ms is no group config: alice's group "g" gets past authorization to the
    // controller's INVALID_CONFIG.
    assert_eq!(
        alter_configs(&h, "User:alice", &resources, "123456").await,
        vec![
            NONE,
            TOPIC_AUTHORIZATION_FAILED,
            CLUSTER_AUTHORIZATION_FAILED,
            CLUSTER_AUTHORIZATION_FAILED,
            INVALID_CONFIG,
            GROUP_AUTHORIZATION_FAILED,
        ]
    );
    assert_eq!(retention_override(&h, "t").as_deref(), Some("123456"));
    assert_eq!(retention_override(&h, "u"), None);

    // bob: the cluster ACL gets past authorization to the controller's own answer (retention.ms
    // is no broker config: INVALID_CONFIG; loggers are unsupported); his topic alterations are
    // still refused.
    assert_eq!(
        alter_configs(&h, "User:bob", &resources, "654321").await,
        vec![
            TOPIC_AUTHORIZATION_FAILED,
            TOPIC_AUTHORIZATION_FAILED,
            INVALID_CONFIG,
            INVALID_REQUEST,
            GROUP_AUTHORIZATION_FAILED,
            GROUP_AUTHORIZATION_FAILED,
        ]
    );
    assert_eq!(retention_override(&h, "t").as_deref(), Some("123456"));
    assert_eq!(retention_override(&h, "u"), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_needs_alter_on_the_cluster() {
    let h = secured_with_topics(2, &["t"]).await;
    // ALTER on the topic is not enough.
    h.create_acls(vec![
        on_topic("User:alice", "t", Operation::Alter),
        on_cluster("User:bob", Operation::Alter),
    ])
    .await;

    let alice = elect_leaders(&h, "User:alice", 2, "t").await;
    assert_eq!(alice.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(
        partition_codes(&alice),
        vec![CLUSTER_AUTHORIZATION_FAILED; 2]
    );
    // v0 has no top-level error: every partition carries it.
    let alice_v0 = elect_leaders(&h, "User:alice", 0, "t").await;
    assert_eq!(
        partition_codes(&alice_v0),
        vec![CLUSTER_AUTHORIZATION_FAILED; 2]
    );

    for who in ["User:bob", "User:admin"] {
        let allowed = elect_leaders(&h, who, 2, "t").await;
        assert_eq!(allowed.error_code, NONE, "{who}");
        let codes = partition_codes(&allowed);
        assert_eq!(codes.len(), 2, "{who}");
        assert!(
            !codes.contains(&CLUSTER_AUTHORIZATION_FAILED),
            "{who}: {codes:?}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_reports_the_principals_cluster_operations() {
    let h = secured().await;
    h.create_acls(vec![
        // ALTER implies DESCRIBE.
        on_cluster("User:alice", Operation::Alter),
        on_cluster("User:bob", Operation::IdempotentWrite),
    ])
    .await;
    // (principal, include, expected bit field)
    let table = [
        ("User:alice", false, i32::MIN),
        ("User:alice", true, (1 << 7) | (1 << 8)),
        // bob may not DESCRIBE the cluster: Kafka reports no operations at all.
        ("User:bob", true, 0),
        ("User:carol", true, 0),
        ("User:admin", true, ALL_CLUSTER_OPERATIONS),
    ];
    for (who, include, expected) in table {
        assert_eq!(
            cluster_operations(&h, who, include).await,
            expected,
            "{who} include={include}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_super_user_is_allowed_every_admin_api() {
    let h = secured_with_topics(2, &["t"]).await;
    let admin = "User:admin";
    assert_eq!(create_codes(&h, admin, &["made"]).await, vec![NONE]);
    let made = create_topics(&h, admin, &["made-2"]).await.topics[0].clone();
    assert_eq!(made.topic_config_error_code, NONE);
    assert_eq!(made.num_partitions, 2);
    assert_eq!(
        create_partitions(&h, admin, &[("made", 3)]).await,
        vec![NONE]
    );
    assert_eq!(
        codes(&describe_configs(&h, admin, &[(RESOURCE_TOPIC, "t"), (RESOURCE_BROKER, "1")]).await),
        vec![NONE, NONE]
    );
    assert_eq!(
        alter_configs(&h, admin, &[(RESOURCE_TOPIC, "t")], "42000").await,
        vec![NONE]
    );
    assert_eq!(elect_leaders(&h, admin, 2, "t").await.error_code, NONE);
    let made_id = h.topic_id("made");
    let deleted = delete_topics(&h, admin, &[Err(made_id), Ok("made-2")]).await;
    assert_eq!(
        deleted.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![NONE, NONE]
    );
    assert!(!exists(&h, "made") && !exists(&h, "made-2"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_beats_an_allow() {
    let h = secured_with_topics(1, &["team-keep"]).await;
    let alice = "User:alice";
    h.create_acls(vec![
        allow_prefixed(alice, "team-", Operation::All),
        deny(alice, ResourceType::Topic, "team-b", Operation::Create),
        deny(alice, ResourceType::Topic, "team-keep", Operation::Delete),
        deny(alice, ResourceType::Topic, "team-keep", Operation::Alter),
        deny(
            alice,
            ResourceType::Topic,
            "team-keep",
            Operation::AlterConfigs,
        ),
        on_cluster(alice, Operation::Describe),
        on_cluster(alice, Operation::Alter),
        deny(
            alice,
            ResourceType::Cluster,
            "kafka-cluster",
            Operation::Alter,
        ),
    ])
    .await;
    assert_eq!(
        create_codes(&h, alice, &["team-a", "team-b"]).await,
        vec![NONE, TOPIC_AUTHORIZATION_FAILED]
    );
    assert!(exists(&h, "team-a"));
    assert!(!exists(&h, "team-b"));
    assert_eq!(
        delete_topics(&h, alice, &[Ok("team-keep")]).await[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert!(exists(&h, "team-keep"));
    assert_eq!(
        create_partitions(&h, alice, &[("team-keep", 2)]).await,
        vec![TOPIC_AUTHORIZATION_FAILED]
    );
    assert_eq!(partition_count(&h, "team-keep"), 1);
    assert_eq!(
        alter_configs(&h, alice, &[(RESOURCE_TOPIC, "team-keep")], "7").await,
        vec![TOPIC_AUTHORIZATION_FAILED]
    );
    assert_eq!(retention_override(&h, "team-keep"), None);
    assert_eq!(
        elect_leaders(&h, alice, 2, "team-keep").await.error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // DESCRIBE stays; the DENY takes ALTER out of the reported operations.
    assert_eq!(cluster_operations(&h, alice, true).await, 1 << 8);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_every_admin_api_is_allowed() {
    let h = Harness::start().await;
    h.create_topic("t", 2).await;
    let alice = "User:alice";
    let created = create_topics(&h, alice, &["made", "made-2"]).await;
    for t in &created.topics {
        assert_eq!(t.error_code, NONE, "{t:?}");
        assert_eq!(t.topic_config_error_code, NONE, "{t:?}");
        assert_eq!(t.num_partitions, 2, "{t:?}");
        assert!(!t.configs.clone().unwrap_or_default().is_empty(), "{t:?}");
    }
    assert_eq!(
        create_partitions(&h, alice, &[("made", 3)]).await,
        vec![NONE]
    );
    assert_eq!(partition_count(&h, "made"), 3);
    assert_eq!(
        codes(&describe_configs(&h, alice, &[(RESOURCE_TOPIC, "t"), (RESOURCE_BROKER, "1")]).await),
        vec![NONE, NONE]
    );
    assert_eq!(
        alter_configs(
            &h,
            alice,
            &[(RESOURCE_TOPIC, "t"), (RESOURCE_BROKER, "1")],
            "42000"
        )
        .await,
        vec![NONE, INVALID_CONFIG]
    );
    assert_eq!(retention_override(&h, "t").as_deref(), Some("42000"));
    assert_eq!(elect_leaders(&h, alice, 2, "t").await.error_code, NONE);
    assert_eq!(cluster_operations(&h, alice, false).await, i32::MIN);
    assert_eq!(
        cluster_operations(&h, alice, true).await,
        ALL_CLUSTER_OPERATIONS
    );
    let made_id = h.topic_id("made");
    let deleted = delete_topics(&h, alice, &[Err(made_id), Ok("made-2"), Ok("ghost")]).await;
    assert_eq!(
        named_codes(&deleted),
        vec![
            (NONE, Some("made")),
            (NONE, Some("made-2")),
            (UNKNOWN_TOPIC_OR_PARTITION, Some("ghost")),
        ]
    );
    assert!(!exists(&h, "made") && !exists(&h, "made-2"));
    h.stop().await;
}

fn quota_alteration(user: &str) -> AlterClientQuotasRequest {
    AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![
                alter_client_quotas_request::EntityData::default()
                    .with_entity_type(s("user"))
                    .with_entity_name(Some(s(user))),
            ])
            .with_ops(vec![
                alter_client_quotas_request::OpData::default()
                    .with_key(s("producer_byte_rate"))
                    .with_value(1024.0),
            ]),
    ])
}

fn every_quota() -> DescribeClientQuotasRequest {
    DescribeClientQuotasRequest::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quotas_need_the_cluster_config_acls() {
    let h = secured().await;
    // ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALTER on the cluster is neither.
    h.create_acls(vec![
        on_cluster("User:alice", Operation::Alter),
        on_cluster("User:bob", Operation::AlterConfigs),
        on_cluster("User:carol", Operation::DescribeConfigs),
    ])
    .await;
    for who in ["User:alice", "User:carol"] {
        let refused = h.ask(who, 1, quota_alteration("dave")).await;
        assert_eq!(
            refused.entries[0].error_code, CLUSTER_AUTHORIZATION_FAILED,
            "{who}"
        );
    }
    assert!(h.broker.image().client_quotas.is_empty());
    for who in ["User:bob", "User:admin"] {
        let allowed = h.ask(who, 1, quota_alteration(who)).await;
        assert_eq!(allowed.entries[0].error_code, NONE, "{who}: {allowed:?}");
    }
    let denied = h.ask("User:alice", 1, every_quota()).await;
    assert_eq!(denied.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(denied.entries, None);
    for who in ["User:bob", "User:carol", "User:admin"] {
        let described = h.ask(who, 0, every_quota()).await;
        assert_eq!(described.error_code, NONE, "{who}");
        assert_eq!(described.entries.map(|e| e.len()), Some(2), "{who}");
    }
    h.stop().await;
}
