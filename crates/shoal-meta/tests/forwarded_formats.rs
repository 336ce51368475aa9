//! The JSON of forwarded controller calls (`ControllerService`, payload versions 0 and 1) is a
//! wire format between nodes of different releases: golden fixtures pin it. A failure here
//! means a change to a request or result type changed what goes on the wire; that needs a new
//! forward payload version (see docs/upgrading.md), not a new fixture.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_acl::{
    AclBinding, AclEntry, AclFilter, Operation, PatternFilter, PatternType, Permission, Principal,
    ResourcePattern, ResourceType,
};
use shoal_meta::client::forward::{
    AllocateProducerIdsCall, AlterClientQuotasCall, AlterConfigsCall,
    AlterPartitionReassignmentsCall, AlterUserScramCredentialsCall, CreateAclsCall,
    CreatePartitionsCall, CreateTopicsCall, DeleteAclsCall, DeleteTopicsCall, ElectLeadersCall,
    UnregisterBrokerCall, UpdateFeaturesCall,
};
use shoal_meta::{
    AlterBrokerConfigs, AlterConfigOp, AlterConfigOpType, AlterGroupConfigs, AlterPartitionRequest,
    AlterTopicConfigs, AlteredPartition, BrokerError, BrokerHeartbeat, BrokerRegistrationRequest,
    ClientQuotaAlteration, ClientQuotaOp, ControllerError, ControllerResults, CreatePartitions,
    CreateTopic, CreatedTopic, ElectionType, Endpoint, FeatureUpdate, HeartbeatReply, IsrMember,
    LeaseTerms, PartitionReassignment, ProducerIdBlock, RegisteredBroker, ReplicaRef, ReplicaSize,
    SupportedFeature, TopicRef, UserScramAlteration,
};
use uuid::Uuid;

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/forwarded")
        .join(format!("{name}.json"))
}

/// The fixture `name` is exactly the JSON of `value`, and decodes to a value with the same
/// JSON. With `SHOAL_WRITE_FIXTURES=1`, writes a missing fixture (never overwrites one).
fn pinned<T: Serialize + DeserializeOwned>(name: &str, value: &T) -> T {
    let expected = serde_json::to_string(value).unwrap();
    let path = path(name);
    if !path.exists() && std::env::var_os("SHOAL_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expected).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(stored, expected, "{name}: the JSON shape changed");
    let decoded: T = serde_json::from_str(&stored).unwrap();
    assert_eq!(serde_json::to_string(&decoded).unwrap(), stored, "{name}");
    decoded
}

const TOPIC_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

fn registration() -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: 3,
        incarnation_id: Uuid::from_u128(0xfeed_beef),
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "broker3".into(),
            port: 9092,
        }],
        rack: Some("rack-b".into()),
        supported_features: Some(vec![SupportedFeature {
            name: "metadata.version".into(),
            min_level: 1,
            max_level: 2,
        }]),
        log_dirs: Vec::new(),
    }
}

fn orders_read_acl() -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::Topic,
            name: "orders-".into(),
            pattern_type: PatternType::Prefixed,
        },
        entry: AclEntry {
            principal: Principal::user("ann"),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        },
    }
}

#[test]
fn forwarded_requests_keep_their_json_shape() {
    let create = pinned(
        "CreateTopics_request",
        &CreateTopicsCall {
            topics: vec![
                CreateTopic {
                    name: "orders".into(),
                    num_partitions: Some(6),
                    replication_factor: Some(3),
                    assignments: None,
                    configs: BTreeMap::from([("retention.ms".into(), "3600000".into())]),
                },
                CreateTopic {
                    name: "manual".into(),
                    num_partitions: None,
                    replication_factor: None,
                    assignments: Some(BTreeMap::from([(0, vec![1, 2]), (1, vec![2, 3])])),
                    configs: BTreeMap::new(),
                },
            ],
            validate_only: true,
        },
    );
    assert!(create.validate_only);
    assert_eq!(create.topics[0].num_partitions, Some(6));
    assert_eq!(
        create.topics[1].assignments.as_ref().unwrap()[&1],
        vec![2, 3]
    );
    pinned(
        "DeleteTopics_request",
        &DeleteTopicsCall {
            topics: vec![TopicRef::Name("orders".into()), TopicRef::Id(TOPIC_ID)],
        },
    );
    pinned(
        "CreatePartitions_request",
        &CreatePartitionsCall {
            topics: vec![CreatePartitions {
                topic: "orders".into(),
                new_total_count: 8,
                assignments: Some(vec![vec![1, 2], vec![2, 3]]),
            }],
            validate_only: false,
        },
    );
    pinned(
        "ElectLeaders_request",
        &ElectLeadersCall {
            election: ElectionType::Unclean,
            partitions: vec![("orders".into(), 2)],
        },
    );
    pinned(
        "IncrementalAlterConfigs_request",
        &AlterConfigsCall {
            resources: vec![AlterTopicConfigs {
                topic: "orders".into(),
                ops: vec![
                    AlterConfigOp {
                        name: "cleanup.policy".into(),
                        op: AlterConfigOpType::Append,
                        value: Some("compact".into()),
                    },
                    AlterConfigOp {
                        name: "retention.ms".into(),
                        op: AlterConfigOpType::Delete,
                        value: None,
                    },
                ],
            }],
            // None: the payload is the one of releases before broker resources.
            brokers: Vec::new(),
            groups: Vec::new(),
            validate_only: false,
        },
    );
    // Broker resources (metadata.version 6), one broker's and the cluster default's.
    pinned(
        "IncrementalAlterConfigs_brokers_request",
        &AlterConfigsCall {
            resources: Vec::new(),
            brokers: vec![
                AlterBrokerConfigs {
                    broker_id: Some(2),
                    ops: vec![AlterConfigOp {
                        name: "leader.replication.throttled.rate".into(),
                        op: AlterConfigOpType::Set,
                        value: Some("1000000".into()),
                    }],
                },
                AlterBrokerConfigs {
                    broker_id: None,
                    ops: vec![AlterConfigOp {
                        name: "follower.replication.throttled.rate".into(),
                        op: AlterConfigOpType::Delete,
                        value: None,
                    }],
                },
            ],
            groups: Vec::new(),
            validate_only: true,
        },
    );
    // Group resources (metadata.version 9).
    pinned(
        "IncrementalAlterConfigs_groups_request",
        &AlterConfigsCall {
            resources: Vec::new(),
            brokers: Vec::new(),
            groups: vec![AlterGroupConfigs {
                group: "payments".into(),
                ops: vec![
                    AlterConfigOp {
                        name: "consumer.session.timeout.ms".into(),
                        op: AlterConfigOpType::Set,
                        value: Some("50000".into()),
                    },
                    AlterConfigOp {
                        name: "consumer.heartbeat.interval.ms".into(),
                        op: AlterConfigOpType::Delete,
                        value: None,
                    },
                ],
            }],
            validate_only: false,
        },
    );
    pinned("AllocateProducerIds_request", &AllocateProducerIdsCall {});
    let create_acls = pinned(
        "CreateAcls_request",
        &CreateAclsCall {
            acls: vec![orders_read_acl()],
        },
    );
    assert_eq!(create_acls.acls, vec![orders_read_acl()]);
    let delete_acls = pinned(
        "DeleteAcls_request",
        &DeleteAclsCall {
            filters: vec![
                AclFilter::default(),
                AclFilter {
                    resource_type: Some(ResourceType::Topic),
                    name: Some("orders-eu".into()),
                    pattern: PatternFilter::Match,
                    principal: Some(Principal::user("ann")),
                    host: Some("*".into()),
                    operation: Some(Operation::Read),
                    permission: Some(Permission::Allow),
                },
            ],
        },
    );
    assert_eq!(delete_acls.filters[1].pattern, PatternFilter::Match);
    // A fixed credential (a fresh one has a random salt).
    let credential = shoal_sasl::ScramCredential {
        mechanism: shoal_sasl::ScramMechanism::Sha512,
        salt: vec![1, 2, 3],
        stored_key: vec![4; 64],
        server_key: vec![5; 64],
        iterations: 8192,
    };
    let scram = pinned(
        "AlterUserScramCredentials_request",
        &AlterUserScramCredentialsCall {
            alterations: vec![UserScramAlteration {
                user: "ann".into(),
                deletions: vec![shoal_sasl::ScramMechanism::Sha256],
                upsertions: vec![credential.clone()],
            }],
        },
    );
    assert_eq!(scram.alterations[0].upsertions, vec![credential]);
    let features = pinned(
        "UpdateFeatures_request",
        &UpdateFeaturesCall {
            updates: vec![FeatureUpdate {
                name: "transaction.version".into(),
                level: 2,
                downgrade: false,
            }],
            validate_only: true,
        },
    );
    assert_eq!(features.updates[0].level, 2);
    assert!(features.validate_only);
    let moves = pinned(
        "AlterPartitionReassignments_request",
        &AlterPartitionReassignmentsCall {
            partitions: vec![
                PartitionReassignment {
                    topic: "orders".into(),
                    partition: 3,
                    replicas: Some(vec![4, 5, 6]),
                },
                PartitionReassignment {
                    topic: "orders".into(),
                    partition: 4,
                    replicas: None,
                },
            ],
            allow_replication_factor_change: true,
        },
    );
    assert_eq!(moves.partitions[0].replicas, Some(vec![4, 5, 6]));
    assert_eq!(moves.partitions[1].replicas, None);
    let unregister = pinned(
        "UnregisterBroker_request",
        &UnregisterBrokerCall { broker_id: 4 },
    );
    assert_eq!(unregister.broker_id, 4);
    let quotas = pinned(
        "AlterClientQuotas_request",
        &AlterClientQuotasCall {
            alterations: vec![ClientQuotaAlteration {
                entity: vec![
                    ("user".into(), Some("alice".into())),
                    ("client-id".into(), None),
                ],
                ops: vec![
                    ClientQuotaOp {
                        key: "producer_byte_rate".into(),
                        value: 1048576.0,
                        remove: false,
                    },
                    ClientQuotaOp {
                        key: "consumer_byte_rate".into(),
                        value: 0.0,
                        remove: true,
                    },
                ],
            }],
            validate_only: false,
        },
    );
    assert_eq!(quotas.alterations[0].entity[1].1, None);
    assert_eq!(
        pinned("RegisterBroker_request", &registration()),
        registration()
    );
    // With directory ids (metadata.version 4); the shape above is unchanged without them.
    let with_dirs = BrokerRegistrationRequest {
        log_dirs: vec![Uuid::from_u128(0xd1_0001)],
        ..registration()
    };
    assert_eq!(
        pinned("RegisterBroker_log_dirs_request", &with_dirs),
        with_dirs
    );
    let heartbeat = BrokerHeartbeat {
        broker_id: 3,
        broker_epoch: 17,
        caught_up_metadata_offset: 42,
        want_shutdown: true,
        offline_replicas: Vec::new(),
        replica_sizes: Vec::new(),
    };
    assert_eq!(pinned("BrokerHeartbeat_request", &heartbeat), heartbeat);
    let reporting = BrokerHeartbeat {
        want_shutdown: false,
        offline_replicas: vec![ReplicaRef {
            topic_id: TOPIC_ID,
            partition: 7,
        }],
        ..heartbeat
    };
    assert_eq!(
        pinned("BrokerHeartbeat_offline_replicas_request", &reporting),
        reporting
    );
    let sizing = BrokerHeartbeat {
        broker_id: 3,
        broker_epoch: 17,
        caught_up_metadata_offset: 42,
        want_shutdown: false,
        offline_replicas: Vec::new(),
        replica_sizes: vec![ReplicaSize {
            topic_id: TOPIC_ID,
            partition: 3,
            size_bytes: 1_048_576,
        }],
    };
    assert_eq!(
        pinned("BrokerHeartbeat_replica_sizes_request", &sizing),
        sizing
    );
    let alter = AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: 5,
        topic_id: TOPIC_ID,
        partition: 2,
        leader_epoch: 4,
        partition_epoch: 9,
        new_isr: vec![
            IsrMember {
                broker_id: 1,
                broker_epoch: None,
            },
            IsrMember {
                broker_id: 2,
                broker_epoch: Some(8),
            },
        ],
    };
    assert_eq!(pinned("AlterPartition_request", &alter), alter);
}

/// What a broker of a release before feature levels sends: no `supported_features`.
#[test]
fn a_registration_from_before_feature_levels_decodes() {
    let legacy = r#"{"broker_id":3,"incarnation_id":"00000000-0000-0000-0000-0000feedbeef","listeners":[{"name":"PLAINTEXT","host":"broker3","port":9092}],"rack":"rack-b"}"#;
    let decoded: BrokerRegistrationRequest = serde_json::from_str(legacy).unwrap();
    assert_eq!(
        decoded,
        BrokerRegistrationRequest {
            supported_features: None,
            ..registration()
        }
    );
}

#[test]
fn forwarded_results_keep_their_json_shape() {
    pinned(
        "CreateTopics_result",
        &ControllerResults::<CreatedTopic> {
            results: vec![
                Ok(CreatedTopic {
                    topic_id: TOPIC_ID,
                    num_partitions: 6,
                    replication_factor: 3,
                }),
                Err(ControllerError::TopicAlreadyExists("manual".into())),
                Err(ControllerError::NotController {
                    leader_hint: Some(2),
                }),
            ],
            log_index: Some(42),
        },
    );
    let block = pinned(
        "AllocateProducerIds_result",
        &Ok::<_, ControllerError>(ProducerIdBlock {
            first_producer_id: 1000,
            size: 1000,
        }),
    );
    assert_eq!(block.unwrap().first_producer_id, 1000);
    let registered = pinned(
        "RegisterBroker_result",
        &Ok::<_, BrokerError>(RegisteredBroker {
            broker_epoch: 17,
            log_index: 17,
        }),
    );
    assert_eq!(registered.unwrap().broker_epoch, 17);
    let stale: Result<HeartbeatReply, BrokerError> = Err(BrokerError::StaleBrokerEpoch {
        broker_id: 3,
        broker_epoch: 16,
        current_epoch: 17,
    });
    assert_eq!(pinned("BrokerHeartbeat_result_error", &stale), stale);
    let ok: Result<HeartbeatReply, BrokerError> = Ok(HeartbeatReply {
        fenced: false,
        log_index: Some(18),
        lease: None,
    });
    assert_eq!(pinned("BrokerHeartbeat_result", &ok), ok);
    let leased: Result<HeartbeatReply, BrokerError> = Ok(HeartbeatReply {
        fenced: false,
        log_index: None,
        lease: Some(LeaseTerms {
            metadata_offset: 19,
            session_timeout_ms: 1500,
        }),
    });
    assert_eq!(pinned("BrokerHeartbeat_lease_result", &leased), leased);
    let altered: Result<AlteredPartition, BrokerError> = Ok(AlteredPartition {
        leader: 1,
        leader_epoch: 4,
        partition_epoch: 10,
        isr: vec![1, 2],
        log_index: Some(19),
    });
    assert_eq!(pinned("AlterPartition_result", &altered), altered);
    let deleted = ControllerResults::<Vec<AclBinding>> {
        results: vec![
            Ok(vec![orders_read_acl()]),
            Err(ControllerError::UnsupportedVersion(
                "ACLs need metadata.version 3".into(),
            )),
        ],
        log_index: Some(12),
    };
    let decoded = pinned("DeleteAcls_result", &deleted);
    assert_eq!(
        decoded.results[0].as_ref().unwrap(),
        &vec![orders_read_acl()]
    );
}
