//! Every API the broker advertises, at every version it advertises, answered by a real broker
//! (metadata quorum, logs on disk) and encoded at that version.
//!
//! The codec refuses to encode a field the requested version lacks, and a refused encode closes
//! the client's connection; real clients exercise only a few versions each, so this matrix is
//! what keeps old and new clients both working. Error codes of the main items are checked too.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{Harness, batch, encoded_batch, s};
use kafka_protocol::messages::*;
use shoal_broker::supported_apis;
use uuid::Uuid;

/// A KIP-848 member joining `group`, subscribed to `t` (v0: the coordinator names it).
fn consumer_join(group: &str, version: i16) -> RequestKind {
    let member_id = if version >= 1 { "member-1" } else { "" };
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
        .with_topic_partitions(Some(Vec::new()))
        .into()
}

fn produce_request(version: i16, topic: &str, topic_id: Uuid) -> RequestKind {
    let mut topic_data = produce_request::TopicProduceData::default().with_partition_data(vec![
        produce_request::PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(batch(3))),
    ]);
    if version >= 13 {
        topic_data.topic_id = topic_id;
    } else {
        topic_data.name = TopicName(s(topic));
    }
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![topic_data])
        .into()
}

fn fetch_request(version: i16, topic: &str, topic_id: Uuid) -> RequestKind {
    let mut fetch_topic = fetch_request::FetchTopic::default().with_partitions(vec![
        fetch_request::FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20),
    ]);
    if version >= 13 {
        fetch_topic.topic_id = topic_id;
    } else {
        fetch_topic.topic = TopicName(s(topic));
    }
    let mut request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_topic]);
    if version < 15 {
        request.replica_id = BrokerId(-1);
    }
    request.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_is_answered_and_encodes() {
    // With the authorizer on and the test's principal a super user: every API passes through
    // its checks, and the ACL APIs answer.
    let h = Harness::start_with(&[
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:ANONYMOUS"),
    ])
    .await;
    let created = h
        .call(
            ApiKey::CreateTopics,
            7,
            CreateTopicsRequest::default()
                .with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(5000)
                .into(),
        )
        .await;
    let Some(ResponseKind::CreateTopics(created)) = created else {
        panic!("no CreateTopics response")
    };
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    let tid = h.topic_id("t");
    h.wait_for_coordinator().await;
    let (stable_member, stable_generation) = h.stable_group("stable").await;
    assert_eq!(h.commit(8, "simple", -1, "", &[("t", 0, 5)]).await, vec![0]);

    let mut checked = 0;
    for (api_key, range) in supported_apis().iter() {
        for version in range.min_version..=range.max_version {
            let request: RequestKind = match api_key {
                ApiKey::ApiVersions => continue, // answered by the protocol front, tested there
                ApiKey::Produce if version < 3 => continue, // advertised from v0 (KAFKA-18659), served from v3
                ApiKey::Produce => produce_request(version, "t", tid),
                ApiKey::Fetch => fetch_request(version, "t", tid),
                ApiKey::ListOffsets => ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_partition_index(0)
                                    .with_timestamp(if version % 2 == 0 { -1 } else { 0 }),
                            ]),
                    ])
                    .into(),
                ApiKey::Metadata => MetadataRequest::default()
                    .with_topics(if version == 0 {
                        Some(vec![])
                    } else {
                        Some(vec![
                            metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(TopicName(s("t")))),
                        ])
                    })
                    .into(),
                ApiKey::CreateTopics => CreateTopicsRequest::default()
                    .with_topics(vec![
                        create_topics_request::CreatableTopic::default()
                            .with_name(TopicName(s(&format!("created-v{version}"))))
                            .with_num_partitions(1)
                            .with_replication_factor(1),
                    ])
                    .with_timeout_ms(5000)
                    .into(),
                ApiKey::DeleteTopics => {
                    let name = format!("deleted-v{version}");
                    h.meta
                        .client()
                        .create_topics(
                            vec![shoal_meta::CreateTopic {
                                name: name.clone(),
                                num_partitions: Some(1),
                                replication_factor: Some(1),
                                assignments: None,
                                configs: BTreeMap::new(),
                            }],
                            false,
                        )
                        .await;
                    let mut r = DeleteTopicsRequest::default().with_timeout_ms(5000);
                    if version >= 6 {
                        r.topics = vec![
                            delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(TopicName(s(&name)))),
                        ];
                    } else {
                        r.topic_names = vec![TopicName(s(&name))];
                    }
                    r.into()
                }
                ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
                    .with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s("t"))
                            .with_configuration_keys(None),
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(4)
                            .with_resource_name(s("1"))
                            .with_configuration_keys(None),
                    ])
                    .with_include_synonyms(version >= 1)
                    .with_include_documentation(version >= 3)
                    .into(),
                ApiKey::CreatePartitions => CreatePartitionsRequest::default()
                    .with_topics(vec![
                        create_partitions_request::CreatePartitionsTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_count(
                                h.broker
                                    .image()
                                    .topic_by_name("t")
                                    .unwrap()
                                    .partitions
                                    .len() as i32
                                    + 1,
                            )
                            .with_assignments(None),
                    ])
                    .with_timeout_ms(5000)
                    .into(),
                ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s("t"))
                            .with_configs(vec![
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(s("retention.ms"))
                                    .with_config_operation(0)
                                    .with_value(Some(s(&format!(
                                        "{}",
                                        100_000 + i32::from(version)
                                    )))),
                            ]),
                    ])
                    .into(),
                ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::default()
                    .with_topics(vec![
                        describe_topic_partitions_request::TopicRequest::default()
                            .with_name(TopicName(s("t"))),
                    ])
                    .with_response_partition_limit(2000)
                    .into(),
                ApiKey::AlterConfigs => AlterConfigsRequest::default()
                    .with_resources(vec![
                        alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s("t"))
                            .with_configs(vec![
                                alter_configs_request::AlterableConfig::default()
                                    .with_name(s("retention.ms"))
                                    .with_value(Some(s(&format!(
                                        "{}",
                                        200_000 + i32::from(version)
                                    )))),
                            ]),
                    ])
                    .into(),
                ApiKey::DescribeCluster => DescribeClusterRequest::default()
                    .with_endpoint_type(1)
                    .into(),
                ApiKey::DescribeLogDirs => {
                    DescribeLogDirsRequest::default().with_topics(None).into()
                }
                // The level it is at: a no-op that succeeds at every version.
                ApiKey::UpdateFeatures => UpdateFeaturesRequest::default()
                    .with_timeout_ms(10_000)
                    .with_feature_updates(vec![
                        update_features_request::FeatureUpdateKey::default()
                            .with_feature(s("transaction.version"))
                            .with_max_version_level(2)
                            .with_upgrade_type(1),
                    ])
                    .into(),
                ApiKey::InitProducerId => InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .into(),
                ApiKey::AddPartitionsToTxn => {
                    let id = format!("apt-v{version}");
                    let (producer_id, producer_epoch) = h.init_txn(&id).await;
                    if version >= 4 {
                        AddPartitionsToTxnRequest::default()
                            .with_transactions(vec![
                                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                                    .with_transactional_id(TransactionalId(s(&id)))
                                    .with_producer_id(ProducerId(producer_id))
                                    .with_producer_epoch(producer_epoch)
                                    .with_topics(common::txn_topics(&[("t", 0), ("t", 1)])),
                            ])
                            .into()
                    } else {
                        AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(TransactionalId(s(&id)))
                            .with_v3_and_below_producer_id(ProducerId(producer_id))
                            .with_v3_and_below_producer_epoch(producer_epoch)
                            .with_v3_and_below_topics(common::txn_topics(&[("t", 0), ("t", 1)]))
                            .into()
                    }
                }
                ApiKey::AddOffsetsToTxn => {
                    let id = format!("aot-v{version}");
                    let (producer_id, producer_epoch) = h.init_txn(&id).await;
                    AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(producer_id))
                        .with_producer_epoch(producer_epoch)
                        .with_group_id(GroupId(s("simple")))
                        .into()
                }
                ApiKey::EndTxn => {
                    let id = format!("end-v{version}");
                    let producer = h.init_txn(&id).await;
                    assert_eq!(
                        h.add_txn_partitions(&id, producer, &[("t", 1)]).await,
                        vec![0]
                    );
                    EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(producer.0))
                        .with_producer_epoch(producer.1)
                        .with_committed(version % 2 == 0)
                        .into()
                }
                ApiKey::TxnOffsetCommit => {
                    // v3+ (KIP-447) as the stable group's member, older versions for a group of
                    // their own (created empty); its offsets partition joins the transaction first.
                    let id = format!("toc-v{version}");
                    let group = if version >= 3 {
                        "stable".to_string()
                    } else {
                        format!("txn-v{version}")
                    };
                    let (producer_id, producer_epoch) = h.init_txn(&id).await;
                    let added = h
                        .call(
                            ApiKey::AddOffsetsToTxn,
                            3,
                            AddOffsetsToTxnRequest::default()
                                .with_transactional_id(TransactionalId(s(&id)))
                                .with_producer_id(ProducerId(producer_id))
                                .with_producer_epoch(producer_epoch)
                                .with_group_id(GroupId(s(&group)))
                                .into(),
                        )
                        .await;
                    let Some(ResponseKind::AddOffsetsToTxn(added)) = added else {
                        panic!("AddOffsetsToTxn: {added:?}")
                    };
                    assert_eq!(added.error_code, 0, "{added:?}");
                    use txn_offset_commit_request as toc;
                    let partitions = (0..2)
                        .map(|p| {
                            toc::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(20)
                                .with_committed_leader_epoch(if version >= 2 { 0 } else { -1 })
                                .with_committed_metadata(Some(s("m")))
                        })
                        .collect();
                    let mut r = TxnOffsetCommitRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_group_id(GroupId(s(&group)))
                        .with_producer_id(ProducerId(producer_id))
                        .with_producer_epoch(producer_epoch)
                        .with_topics(vec![
                            toc::TxnOffsetCommitRequestTopic::default()
                                .with_name(TopicName(s("t")))
                                .with_partitions(partitions),
                        ]);
                    if version >= 3 {
                        r.generation_id = stable_generation;
                        r.member_id = s(&stable_member);
                    }
                    r.into()
                }
                ApiKey::WriteTxnMarkers => {
                    let (producer_id, producer_epoch) = h.init_txn("marked").await;
                    WriteTxnMarkersRequest::default()
                        .with_markers(vec![
                            write_txn_markers_request::WritableTxnMarker::default()
                                .with_producer_id(ProducerId(producer_id))
                                .with_producer_epoch(producer_epoch)
                                .with_transaction_result(false)
                                .with_coordinator_epoch(0)
                                .with_topics(vec![
                                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                                        .with_name(TopicName(s("t")))
                                        .with_partition_indexes(vec![1]),
                                ]),
                        ])
                        .into()
                }
                ApiKey::DescribeProducers => DescribeProducersRequest::default()
                    .with_topics(vec![
                        describe_producers_request::TopicRequest::default()
                            .with_name(TopicName(s("t")))
                            .with_partition_indexes(vec![0]),
                    ])
                    .into(),
                ApiKey::DescribeTransactions => {
                    h.init_txn("described").await;
                    DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(s("described"))])
                        .into()
                }
                ApiKey::ListTransactions => {
                    h.init_txn("listed").await;
                    let mut request = ListTransactionsRequest::default()
                        .with_state_filters(vec![s("Empty")])
                        .with_duration_filter(-1);
                    if version >= 2 {
                        request.transactional_id_pattern = Some(s("^list.*"));
                    }
                    request.into()
                }
                ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(TopicName(s("t")))
                            .with_partitions(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(
                                )
                                .with_partition(0)
                                .with_current_leader_epoch(if version >= 2 { 0 } else { -1 })
                                .with_leader_epoch(0),
                            ]),
                    ])
                    .into(),
                ApiKey::FindCoordinator if version >= 4 => FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![s("g1"), s("g2")])
                    .into(),
                ApiKey::FindCoordinator => {
                    FindCoordinatorRequest::default().with_key(s("g1")).into()
                }
                ApiKey::JoinGroup => {
                    let group = format!("join-v{version}");
                    let first = h.join(version, &group, "", "consumer").await;
                    if first.error_code == 79 {
                        common::join_request(version, &group, first.member_id.as_str(), "consumer")
                    } else {
                        // v0–3 join at once: the matrix checks that first answer, rejoined.
                        assert_eq!(first.error_code, 0, "JoinGroup v{version}: {first:?}");
                        common::join_request(version, &group, first.member_id.as_str(), "consumer")
                    }
                }
                ApiKey::SyncGroup => {
                    let group = format!("sync-v{version}");
                    let joined = h.join_new(5, &group).await;
                    let member = joined.member_id.to_string();
                    common::sync_request(
                        version,
                        &group,
                        joined.generation_id,
                        &member,
                        &[(&member, b"asg")],
                    )
                }
                ApiKey::Heartbeat => HeartbeatRequest::default()
                    .with_group_id(GroupId(s("stable")))
                    .with_generation_id(stable_generation)
                    .with_member_id(s(&stable_member))
                    .into(),
                ApiKey::LeaveGroup => {
                    let group = format!("leave-v{version}");
                    let (member, _) = h.stable_group(&group).await;
                    let mut r = LeaveGroupRequest::default().with_group_id(GroupId(s(&group)));
                    if version >= 3 {
                        r.members = vec![
                            leave_group_request::MemberIdentity::default()
                                .with_member_id(s(&member)),
                        ];
                    } else {
                        r.member_id = s(&member);
                    }
                    r.into()
                }
                ApiKey::OffsetCommit => OffsetCommitRequest::default()
                    .with_group_id(GroupId(s("simple")))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(10 + i64::from(version))
                                    .with_committed_metadata(Some(s("m"))),
                            ]),
                    ])
                    .into(),
                ApiKey::OffsetFetch if version >= 8 => OffsetFetchRequest::default()
                    .with_groups(vec![
                        offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(s("simple")))
                            .with_topics(Some(vec![
                                offset_fetch_request::OffsetFetchRequestTopics::default()
                                    .with_name(TopicName(s("t")))
                                    .with_partition_indexes(vec![0]),
                            ])),
                    ])
                    .into(),
                ApiKey::OffsetFetch => OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("simple")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partition_indexes(vec![0]),
                    ]))
                    .into(),
                ApiKey::DescribeGroups => DescribeGroupsRequest::default()
                    .with_groups(vec![GroupId(s("stable"))])
                    .into(),
                ApiKey::ListGroups => {
                    let mut r = ListGroupsRequest::default();
                    if version >= 4 {
                        r.states_filter = vec![s("stable")];
                    }
                    if version >= 5 {
                        r.types_filter = vec![s("classic")];
                    }
                    r.into()
                }
                ApiKey::DeleteGroups => {
                    let group = format!("delete-v{version}");
                    assert_eq!(h.commit(8, &group, -1, "", &[("t", 1, 3)]).await, vec![0]);
                    DeleteGroupsRequest::default()
                        .with_groups_names(vec![GroupId(s(&group))])
                        .into()
                }
                ApiKey::ConsumerGroupHeartbeat => {
                    consumer_join(&format!("cgh-v{version}"), version)
                }
                ApiKey::ConsumerGroupDescribe => {
                    let group = format!("cgd-v{version}");
                    let joined = h
                        .call(ApiKey::ConsumerGroupHeartbeat, 1, consumer_join(&group, 1))
                        .await;
                    assert!(
                        matches!(&joined, Some(ResponseKind::ConsumerGroupHeartbeat(r)) if r.error_code == 0),
                        "{joined:?}"
                    );
                    ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![GroupId(s(&group))])
                        .into()
                }
                ApiKey::OffsetDelete => OffsetDeleteRequest::default()
                    .with_group_id(GroupId(s("simple")))
                    .with_topics(vec![
                        offset_delete_request::OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                offset_delete_request::OffsetDeleteRequestPartition::default()
                                    .with_partition_index(0),
                            ]),
                    ])
                    .into(),
                // Its current replicas: a move that completes at once, changing nothing.
                ApiKey::AlterPartitionReassignments => {
                    AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(5000)
                        .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(TopicName(s("t")))
                                .with_partitions(vec![
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(Some(vec![BrokerId(1)])),
                        ]),
                        ])
                        .into()
                }
                // A broker id nobody registered: refused, nothing changes.
                ApiKey::UnregisterBroker => UnregisterBrokerRequest::default()
                    .with_broker_id(BrokerId(77))
                    .into(),
                ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(None)
                    .into(),
                // One node: partition 0's leader is its preferred replica already.
                ApiKey::ElectLeaders => ElectLeadersRequest::default()
                    .with_election_type(0)
                    .with_topic_partitions(Some(vec![
                        elect_leaders_request::TopicPartitions::default()
                            .with_topic(TopicName(s("t")))
                            .with_partitions(vec![0]),
                    ]))
                    .with_timeout_ms(5000)
                    .into(),
                ApiKey::DescribeAcls => DescribeAclsRequest::default()
                    .with_resource_name_filter(None)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1)
                    .into(),
                ApiKey::CreateAcls => CreateAclsRequest::default()
                    .with_creations(vec![
                        create_acls_request::AclCreation::default()
                            .with_resource_type(2)
                            .with_resource_name(s(&format!("acl-v{version}")))
                            .with_resource_pattern_type(3)
                            .with_principal(s("User:alice"))
                            .with_host(s("*"))
                            .with_operation(3)
                            .with_permission_type(3),
                    ])
                    .into(),
                ApiKey::DeleteAcls => DeleteAclsRequest::default()
                    .with_filters(vec![
                        delete_acls_request::DeleteAclsFilter::default()
                            .with_resource_type_filter(2)
                            .with_resource_name_filter(Some(s(&format!("acl-v{version}"))))
                            .with_principal_filter(None)
                            .with_host_filter(None)
                            .with_pattern_type_filter(3)
                            .with_operation(1)
                            .with_permission_type(1),
                    ])
                    .into(),
                ApiKey::AlterClientQuotas => AlterClientQuotasRequest::default()
                    .with_entries(vec![
                        alter_client_quotas_request::EntryData::default()
                            .with_entity(vec![
                                alter_client_quotas_request::EntityData::default()
                                    .with_entity_type(s("user"))
                                    .with_entity_name(Some(s(&format!("matrix-v{version}")))),
                            ])
                            .with_ops(vec![
                                alter_client_quotas_request::OpData::default()
                                    .with_key(s("producer_byte_rate"))
                                    .with_value(1048576.0),
                            ]),
                    ])
                    .into(),
                ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::default()
                    .with_components(vec![
                        describe_client_quotas_request::ComponentData::default()
                            .with_entity_type(s("user"))
                            .with_match_type(2)
                            .with_match(None),
                    ])
                    .into(),
                ApiKey::DescribeUserScramCredentials => {
                    DescribeUserScramCredentialsRequest::default()
                        .with_users(None)
                        .into()
                }
                ApiKey::AlterUserScramCredentials => {
                    let salt = b"matrix-salt".to_vec();
                    let salted = shoal_sasl::salted_password(
                        shoal_sasl::ScramMechanism::Sha256,
                        b"pw",
                        &salt,
                        4096,
                    )
                    .unwrap();
                    AlterUserScramCredentialsRequest::default()
                        .with_upsertions(vec![
                            alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                                .with_name(s("matrix"))
                                .with_mechanism(1)
                                .with_iterations(4096)
                                .with_salt(salt.into())
                                .with_salted_password(salted.into()),
                        ])
                        .into()
                }
                // Up to the high watermark (the records produced so far).
                ApiKey::DeleteRecords => DeleteRecordsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![
                        delete_records_request::DeleteRecordsTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(-1),
                            ]),
                    ])
                    .into(),
                // To the directory "t" is already in: nothing to move, NONE.
                ApiKey::AlterReplicaLogDirs => AlterReplicaLogDirsRequest::default()
                    .with_dirs(vec![
                        alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                            .with_path(s(&h.broker.replicas.log_dirs.dirs()[0]
                                .path
                                .to_string_lossy()))
                            .with_topics(vec![
                                alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                                    .with_name(TopicName(s("t")))
                                    .with_partitions(vec![0]),
                            ]),
                    ])
                    .into(),
                ApiKey::SaslHandshake => SaslHandshakeRequest::default()
                    .with_mechanism(s("SCRAM-SHA-256"))
                    .into(),
                ApiKey::SaslAuthenticate => SaslAuthenticateRequest::default().into(),
                other => panic!("matrix has no request for advertised API {other:?}"),
            };
            let response = h.call(api_key, version, request).await;
            check_errors(api_key, version, response);
            checked += 1;
        }
    }
    assert!(checked > 120, "only {checked} (api, version) pairs checked");
    h.broker.shutdown().await;
    h.meta.shutdown().await.unwrap();
}

fn check_errors(api_key: ApiKey, version: i16, response: Option<ResponseKind>) {
    let ctx = format!("{api_key:?} v{version}");
    match response.unwrap_or_else(|| panic!("{ctx}: no response")) {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "{ctx}: {:?}", p.error_message);
            assert!(p.base_offset >= 0, "{ctx}");
        }
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0, "{ctx}");
            assert!(
                p.records.as_ref().is_some_and(|b| !b.is_empty()),
                "{ctx}: no records"
            );
            assert!(p.high_watermark > 0, "{ctx}");
        }
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "{ctx}");
            assert!(p.offset >= 0, "{ctx}: offset {}", p.offset);
        }
        ResponseKind::Metadata(r) => {
            assert!(!r.brokers.is_empty(), "{ctx}: no brokers");
            let t = r
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "t"));
            let t = t.unwrap_or_else(|| panic!("{ctx}: topic t missing"));
            assert_eq!(t.error_code, 0, "{ctx}");
            assert!(
                t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id.0 == 1),
                "{ctx}"
            );
        }
        ResponseKind::CreateTopics(r) => assert_eq!(
            r.topics[0].error_code, 0,
            "{ctx}: {:?}",
            r.topics[0].error_message
        ),
        ResponseKind::DeleteTopics(r) => {
            assert_eq!(
                r.responses[0].error_code, 0,
                "{ctx}: {:?}",
                r.responses[0].error_message
            )
        }
        ResponseKind::DescribeConfigs(r) => {
            for result in &r.results {
                assert_eq!(result.error_code, 0, "{ctx}: {:?}", result.error_message);
                assert!(!result.configs.is_empty(), "{ctx}");
            }
        }
        ResponseKind::OffsetForLeaderEpoch(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "{ctx}");
            assert_eq!(p.leader_epoch, 0, "{ctx}");
            assert!(p.end_offset > 0, "{ctx}: end offset {}", p.end_offset);
        }
        ResponseKind::CreatePartitions(r) => {
            assert_eq!(
                r.results[0].error_code, 0,
                "{ctx}: {:?}",
                r.results[0].error_message
            )
        }
        ResponseKind::DescribeTopicPartitions(r) => {
            let t = &r.topics[0];
            assert_eq!(t.error_code, 0, "{ctx}");
            assert_eq!(t.name.as_ref().map(|n| n.0.as_str()), Some("t"), "{ctx}");
            assert!(!t.partitions.is_empty(), "{ctx}");
            assert!(r.next_cursor.is_none(), "{ctx}");
        }
        ResponseKind::AlterConfigs(r) => {
            assert_eq!(
                r.responses[0].error_code, 0,
                "{ctx}: {:?}",
                r.responses[0].error_message
            )
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            assert_eq!(
                r.responses[0].error_code, 0,
                "{ctx}: {:?}",
                r.responses[0].error_message
            )
        }
        ResponseKind::DescribeCluster(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert_eq!(r.brokers.len(), 1, "{ctx}");
        }
        ResponseKind::UpdateFeatures(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {:?}", r.error_message);
            let per_feature: Vec<i16> = r.results.iter().map(|f| f.error_code).collect();
            let expected: &[i16] = if version < 2 { &[0] } else { &[] };
            assert_eq!(per_feature, expected, "{ctx}");
        }
        ResponseKind::DeleteRecords(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.partition_index, p.error_code), (0, 0), "{ctx}");
            assert!(p.low_watermark >= 0, "{ctx}: {}", p.low_watermark);
        }
        ResponseKind::AlterReplicaLogDirs(r) => {
            let codes: Vec<(String, i32, i16)> = r
                .results
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.topic_name.0.to_string(), p.partition_index, p.error_code))
                })
                .collect();
            assert_eq!(codes, vec![("t".to_string(), 0, 0)], "{ctx}");
        }
        ResponseKind::DescribeLogDirs(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert_eq!(r.results.len(), 1, "{ctx}");
            let dir = &r.results[0];
            assert_eq!(dir.error_code, 0, "{ctx}");
            assert!(!dir.log_dir.is_empty(), "{ctx}");
            assert!(
                dir.topics.iter().any(|t| t.name.0.as_str() == "t"),
                "{ctx}: {:?}",
                dir.topics
            );
            if version >= 4 {
                assert!(
                    dir.total_bytes > 0 && dir.usable_bytes <= dir.total_bytes,
                    "{ctx}"
                );
            }
        }
        ResponseKind::InitProducerId(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert!(
                r.producer_id.0 >= 0 && r.producer_epoch == 0,
                "{ctx}: {r:?}"
            );
        }
        ResponseKind::AddPartitionsToTxn(r) => {
            let topics = if version >= 4 {
                assert_eq!(r.error_code, 0, "{ctx}");
                assert_eq!(r.results_by_transaction.len(), 1, "{ctx}");
                &r.results_by_transaction[0].topic_results
            } else {
                &r.results_by_topic_v3_and_below
            };
            let codes: Vec<i16> = topics
                .iter()
                .flat_map(|t| {
                    t.results_by_partition
                        .iter()
                        .map(|p| p.partition_error_code)
                })
                .collect();
            assert_eq!(codes, vec![0, 0], "{ctx}: {r:?}");
        }
        ResponseKind::AddOffsetsToTxn(r) => assert_eq!(r.error_code, 0, "{ctx}"),
        ResponseKind::WriteTxnMarkers(r) => {
            let p = &r.markers[0].topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "{ctx}: {r:?}");
        }
        ResponseKind::DescribeProducers(r) => {
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{ctx}: {r:?}");
        }
        ResponseKind::DescribeTransactions(r) => {
            let t = &r.transaction_states[0];
            assert_eq!(t.error_code, 0, "{ctx}: {r:?}");
            assert_eq!(t.transaction_state.as_str(), "Empty", "{ctx}");
            assert!(t.producer_id.0 >= 0, "{ctx}");
        }
        ResponseKind::ListTransactions(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            assert!(
                r.transaction_states
                    .iter()
                    .any(|t| t.transactional_id.0.as_str() == "listed"),
                "{ctx}: {r:?}"
            );
            assert!(
                r.transaction_states
                    .iter()
                    .all(|t| t.transaction_state.as_str() == "Empty"),
                "{ctx}: the state filter holds"
            );
        }
        ResponseKind::EndTxn(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            if version >= 5 {
                // KIP-890 part 2: the transaction ends with an epoch bump.
                assert!(
                    r.producer_id.0 >= 0 && r.producer_epoch >= 1,
                    "{ctx}: {r:?}"
                );
            }
        }
        ResponseKind::TxnOffsetCommit(r) => {
            let codes: Vec<i16> = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect();
            assert_eq!(codes, vec![0, 0], "{ctx}: {r:?}");
        }
        ResponseKind::FindCoordinator(r) => {
            if version >= 4 {
                assert_eq!(r.coordinators.len(), 2, "{ctx}");
                for c in &r.coordinators {
                    assert_eq!(
                        (c.error_code, c.node_id.0, c.port),
                        (0, 1, 9092),
                        "{ctx}: {c:?}"
                    );
                }
            } else {
                assert_eq!(
                    (r.error_code, r.node_id.0, r.port),
                    (0, 1, 9092),
                    "{ctx}: {r:?}"
                );
            }
        }
        ResponseKind::JoinGroup(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            assert!(r.generation_id >= 1, "{ctx}: {r:?}");
            assert_eq!(r.leader, r.member_id, "{ctx}");
            assert_eq!(r.members.len(), 1, "{ctx}: the leader gets the member list");
            assert_eq!(
                r.protocol_name.as_ref().map(|p| p.as_str()),
                Some("range"),
                "{ctx}"
            );
        }
        ResponseKind::SyncGroup(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            assert_eq!(&r.assignment[..], b"asg", "{ctx}");
        }
        ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, 0, "{ctx}"),
        ResponseKind::LeaveGroup(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert!(r.members.iter().all(|m| m.error_code == 0), "{ctx}: {r:?}");
            assert_eq!(r.members.len(), usize::from(version >= 3), "{ctx}");
        }
        ResponseKind::OffsetCommit(r) => {
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{ctx}: {r:?}");
        }
        ResponseKind::OffsetFetch(r) => {
            let (error, p) = if version >= 8 {
                let g = &r.groups[0];
                let p = &g.topics[0].partitions[0];
                (g.error_code, (p.committed_offset, p.error_code))
            } else {
                let p = &r.topics[0].partitions[0];
                (r.error_code, (p.committed_offset, p.error_code))
            };
            assert_eq!(error, 0, "{ctx}: {r:?}");
            assert_eq!(p.1, 0, "{ctx}");
            assert!(p.0 >= 10, "{ctx}: committed {}", p.0);
        }
        ResponseKind::DescribeGroups(r) => {
            let g = &r.groups[0];
            assert_eq!(g.error_code, 0, "{ctx}");
            assert_eq!(g.group_state.as_str(), "Stable", "{ctx}");
            assert_eq!(g.protocol_type.as_str(), "consumer", "{ctx}");
            assert_eq!(g.members.len(), 1, "{ctx}");
            assert_eq!(&g.members[0].member_assignment[..], b"asg", "{ctx}");
        }
        ResponseKind::ListGroups(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert!(
                r.groups.iter().any(|g| g.group_id.0.as_str() == "stable"),
                "{ctx}: {r:?}"
            );
            if version >= 4 {
                assert!(
                    r.groups.iter().all(|g| g.group_state.as_str() == "Stable"),
                    "{ctx}"
                );
            }
        }
        ResponseKind::DeleteGroups(r) => assert_eq!(r.results[0].error_code, 0, "{ctx}: {r:?}"),
        ResponseKind::ConsumerGroupHeartbeat(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            assert!(r.member_epoch >= 1, "{ctx}: {r:?}");
            assert!(
                r.member_id.as_ref().is_some_and(|m| !m.is_empty()),
                "{ctx}: {r:?}"
            );
            let assigned: usize = r.assignment.as_ref().map_or(0, |a| {
                a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
            });
            assert!(
                assigned >= 1,
                "{ctx}: the only member gets t's partitions: {r:?}"
            );
        }
        ResponseKind::ConsumerGroupDescribe(r) => {
            let g = &r.groups[0];
            assert_eq!(g.error_code, 0, "{ctx}: {r:?}");
            assert_eq!(g.members.len(), 1, "{ctx}: {r:?}");
            assert!(g.group_epoch >= 1, "{ctx}: {r:?}");
            assert_eq!(
                g.members[0].subscribed_topic_names[0].0.as_str(),
                "t",
                "{ctx}"
            );
        }
        ResponseKind::OffsetDelete(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{ctx}: {r:?}");
        }
        ResponseKind::AlterPartitionReassignments(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            let p = &r.responses[0].partitions[0];
            assert_eq!((p.partition_index, p.error_code), (0, 0), "{ctx}: {r:?}");
        }
        ResponseKind::UnregisterBroker(r) => {
            // BROKER_ID_NOT_REGISTERED
            assert_eq!(r.error_code, 102, "{ctx}: {r:?}");
        }
        ResponseKind::ListPartitionReassignments(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            assert!(r.topics.is_empty(), "{ctx}: nothing is moving: {r:?}");
        }
        ResponseKind::ElectLeaders(r) => {
            assert_eq!(r.error_code, 0, "{ctx}");
            let p = &r.replica_election_results[0].partition_result[0];
            // ELECTION_NOT_NEEDED: the preferred replica leads.
            assert_eq!((p.partition_id, p.error_code), (0, 84), "{ctx}: {r:?}");
        }
        ResponseKind::DescribeAcls(r) => assert_eq!(r.error_code, 0, "{ctx}: {r:?}"),
        ResponseKind::CreateAcls(r) => assert_eq!(r.results[0].error_code, 0, "{ctx}: {r:?}"),
        ResponseKind::DeleteAcls(r) => {
            let f = &r.filter_results[0];
            assert_eq!(f.error_code, 0, "{ctx}: {r:?}");
            assert_eq!(
                f.matching_acls.len(),
                1,
                "{ctx}: the ACL CreateAcls made: {r:?}"
            );
        }
        ResponseKind::DescribeUserScramCredentials(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}")
        }
        ResponseKind::AlterClientQuotas(r) => {
            assert_eq!(r.entries[0].error_code, 0, "{ctx}: {r:?}");
            assert_eq!(r.entries[0].entity[0].entity_type.as_str(), "user", "{ctx}");
        }
        ResponseKind::DescribeClientQuotas(r) => {
            assert_eq!(r.error_code, 0, "{ctx}: {r:?}");
            assert!(r.entries.is_some(), "{ctx}: {r:?}");
        }
        ResponseKind::AlterUserScramCredentials(r) => {
            assert_eq!(r.results[0].error_code, 0, "{ctx}: {r:?}")
        }
        // A PLAINTEXT listener: SASL is illegal there (the front handles SASL listeners).
        ResponseKind::SaslHandshake(r) => assert_eq!(r.error_code, 34, "{ctx}"),
        ResponseKind::SaslAuthenticate(r) => assert_eq!(r.error_code, 34, "{ctx}"),
        other => panic!("{ctx}: unexpected response {other:?}"),
    }
}

fn idempotent_batch(producer_id: i64, epoch: i16, first_seq: i32, count: usize) -> Bytes {
    encoded_batch(count, Some((producer_id, epoch, first_seq)))
}

async fn produce_one(h: &Harness, records: Bytes) -> produce_response::PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(s("idem")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let Some(ResponseKind::Produce(r)) = h.call(ApiKey::Produce, 9, request.into()).await else {
        panic!("no response")
    };
    r.responses[0].partition_responses[0].clone()
}

/// Retried batches are answered with their original offsets and written once; gaps and stale
/// epochs are refused; the table survives a restart of the partition (snapshot + log replay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_sequences_are_enforced() {
    let h = Harness::start().await;
    let created = h
        .meta
        .client()
        .create_topics(
            vec![shoal_meta::CreateTopic {
                name: "idem".into(),
                num_partitions: Some(1),
                replication_factor: Some(1),
                assignments: None,
                configs: BTreeMap::new(),
            }],
            false,
        )
        .await;
    h.broker
        .wait_for_metadata(
            created.log_index.unwrap(),
            std::time::Duration::from_secs(5),
        )
        .await;
    let Some(ResponseKind::InitProducerId(init)) = h
        .call(
            ApiKey::InitProducerId,
            4,
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_producer_id(ProducerId(-1))
                .into(),
        )
        .await
    else {
        panic!("no InitProducerId response")
    };
    assert_eq!(init.error_code, 0, "{init:?}");
    let pid = init.producer_id.0;

    let first = produce_one(&h, idempotent_batch(pid, 0, 0, 3)).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    let second = produce_one(&h, idempotent_batch(pid, 0, 3, 2)).await;
    assert_eq!((second.error_code, second.base_offset), (0, 3));
    // A retry of the first batch: success, original offset, nothing written.
    let retry = produce_one(&h, idempotent_batch(pid, 0, 0, 3)).await;
    assert_eq!((retry.error_code, retry.base_offset), (0, 0));
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    let gap = produce_one(&h, idempotent_batch(pid, 0, 9, 1)).await;
    assert_eq!(gap.error_code, 45);
    // A newer epoch must start at sequence 0; then the old epoch is fenced (47).
    let bumped = produce_one(&h, idempotent_batch(pid, 1, 0, 1)).await;
    assert_eq!((bumped.error_code, bumped.base_offset), (0, 5));
    let stale = produce_one(&h, idempotent_batch(pid, 0, 5, 1)).await;
    assert_eq!(stale.error_code, 47);

    let tid = h.topic_id("idem");
    let partition = h.broker.replicas.partition(tid, 0).unwrap();
    assert_eq!(
        partition.high_watermark(),
        6,
        "the retry must not have been written"
    );
    h.broker.shutdown().await;
    h.meta.shutdown().await.unwrap();
}
