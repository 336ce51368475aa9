//! The metadata formats: golden fixtures of every format a Shoal binary wrote decode to the
//! expected values, field by field; the current format round-trips; unknown newer versions
//! are refused by name; a node whose store holds one refuses to start and changes nothing.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use shoal_acl::{
    AclBinding, AclEntry, Operation, PatternType, Permission, Principal, ResourcePattern,
    ResourceType,
};
use shoal_meta::client_quotas::{ClientQuotaEntity, QuotaEntityName, QuotaValue};
use shoal_meta::format::{
    self, ENTRY_FRAME_VERSION, FormatError, MAGIC, SNAPSHOT_FORMAT_VERSION, STATE_FRAME_VERSION,
    decode_entry, decode_snapshot, decode_state, encode_entry, encode_snapshot, encode_state,
    record_versions,
};
use shoal_meta::raft::types::{MetaEntry, MetaLogId, MetaSnapshotMeta, MetaStoredMembership};
use shoal_meta::{Endpoint, MetadataImage, MetadataRecord, SupportedFeature};
use shoal_sasl::{ScramCredential, ScramMechanism};
use uuid::Uuid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn log_id(term: u64, node_id: u64, index: u64) -> MetaLogId {
    LogId::new(CommittedLeaderId::new(term, node_id), index)
}

const TOPIC_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
/// The id of topic "orders" in [`records`].
const ORDERS_ID: Uuid = Uuid::from_u128(0x1111);

/// One record of each type, as written into the fixtures.
fn records() -> Vec<MetadataRecord> {
    vec![
        MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id: 3,
            incarnation_id: Uuid::from_u128(0xfeed_beef),
            broker_epoch: 17,
            listeners: vec![
                Endpoint {
                    name: "INTERNAL".into(),
                    host: "10.0.0.3".into(),
                    port: 19092,
                },
                Endpoint {
                    name: "EXTERNAL".into(),
                    host: "broker3.example.com".into(),
                    port: 9092,
                },
            ],
            rack: Some("rack-b".into()),
            supported_features: None,
        },
        MetadataRecord::FenceBroker {
            broker_id: 3,
            broker_epoch: 17,
        },
        MetadataRecord::UnfenceBroker {
            broker_id: 3,
            broker_epoch: 17,
        },
        MetadataRecord::Topic {
            name: "orders".into(),
            topic_id: TOPIC_ID,
        },
        MetadataRecord::Partition {
            topic_id: TOPIC_ID,
            partition: 2,
            replicas: vec![3, 1, 2],
            isr: vec![3, 1],
            leader: 3,
            leader_epoch: 5,
            partition_epoch: 9,
        },
        MetadataRecord::PartitionChange {
            topic_id: TOPIC_ID,
            partition: 2,
            leader: Some(1),
            isr: Some(vec![1, 2]),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        },
        MetadataRecord::RemoveTopic { topic_id: TOPIC_ID },
        MetadataRecord::TopicConfig {
            topic_id: TOPIC_ID,
            name: "retention.ms".into(),
            value: Some("3600000".into()),
        },
        MetadataRecord::ProducerIds {
            next_producer_id_block_start: 5000,
        },
    ]
}

fn membership() -> Membership<u64, BasicNode> {
    Membership::new(
        vec![BTreeSet::from([1, 2, 3])],
        BTreeMap::from([
            (1, BasicNode::new("127.0.0.1:9093")),
            (2, BasicNode::new("127.0.0.1:9193")),
            (3, BasicNode::new("127.0.0.1:9293")),
        ]),
    )
}

fn snapshot_meta() -> MetaSnapshotMeta {
    MetaSnapshotMeta {
        last_log_id: Some(log_id(4, 2, 42)),
        last_membership: MetaStoredMembership::new(Some(log_id(1, 1, 1)), membership()),
        snapshot_id: "4-2-42".into(),
    }
}

/// The image of the snapshot fixtures, built by applying records.
fn image() -> MetadataImage {
    let mut image = MetadataImage::empty("MkU3OEVBNTcwNTJENDM2Qk");
    let t1 = Uuid::from_u128(0x1111);
    let t2 = Uuid::from_u128(0x2222);
    let mut batch = vec![];
    for b in 1..=3 {
        batch.push(MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id: b,
            incarnation_id: Uuid::from_u128(0xb0b0_0000 + b as u128),
            broker_epoch: 10 + b as i64,
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: format!("broker{b}"),
                port: 9092,
            }],
            rack: if b == 2 {
                None
            } else {
                Some(format!("rack-{b}"))
            },
            supported_features: None,
        });
    }
    batch.extend([
        MetadataRecord::UnfenceBroker {
            broker_id: 1,
            broker_epoch: 11,
        },
        MetadataRecord::UnfenceBroker {
            broker_id: 2,
            broker_epoch: 12,
        },
        MetadataRecord::Topic {
            name: "orders".into(),
            topic_id: t1,
        },
        MetadataRecord::Partition {
            topic_id: t1,
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 7,
        },
        MetadataRecord::Partition {
            topic_id: t1,
            partition: 1,
            replicas: vec![2, 3, 1],
            isr: vec![2],
            leader: 2,
            leader_epoch: 0,
            partition_epoch: 1,
        },
        MetadataRecord::TopicConfig {
            topic_id: t1,
            name: "cleanup.policy".into(),
            value: Some("compact".into()),
        },
        MetadataRecord::TopicConfig {
            topic_id: t1,
            name: "retention.ms".into(),
            value: Some("3600000".into()),
        },
        MetadataRecord::Topic {
            name: "payments".into(),
            topic_id: t2,
        },
        MetadataRecord::Partition {
            topic_id: t2,
            partition: 0,
            replicas: vec![3],
            isr: vec![],
            leader: -1,
            leader_epoch: 4,
            partition_epoch: 4,
        },
        MetadataRecord::ProducerIds {
            next_producer_id_block_start: 3000,
        },
    ]);
    image.apply_batch(42, &batch);
    image
}

/// Field-by-field checks of the snapshot image, beyond equality with [`image`] (so a bug in
/// `apply` cannot make both sides wrong the same way).
fn check_image(decoded: &MetadataImage) {
    assert_eq!(decoded, &image());
    assert_eq!(decoded.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
    assert_eq!(decoded.last_applied_index, 42);
    assert_eq!(decoded.next_producer_id, 3000);
    assert_eq!(decoded.brokers.len(), 3);
    let b1 = &decoded.brokers[&1];
    assert_eq!(b1.incarnation_id, Uuid::from_u128(0xb0b0_0001));
    assert_eq!(b1.broker_epoch, 11);
    assert_eq!(b1.rack.as_deref(), Some("rack-1"));
    assert!(!b1.fenced);
    assert_eq!(
        b1.listeners,
        vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "broker1".into(),
            port: 9092
        }]
    );
    assert_eq!(decoded.brokers[&2].rack, None);
    assert!(decoded.brokers[&3].fenced);
    let orders = decoded.topic_by_name("orders").unwrap();
    assert_eq!(orders.id, Uuid::from_u128(0x1111));
    assert_eq!(orders.partitions.len(), 2);
    let p0 = &orders.partitions[0];
    assert_eq!(
        (
            p0.partition,
            &p0.replicas,
            &p0.isr,
            p0.leader,
            p0.leader_epoch,
            p0.partition_epoch
        ),
        (0, &vec![1, 2, 3], &vec![1, 2], 1, 3, 7)
    );
    assert_eq!(orders.configs["cleanup.policy"], "compact");
    assert_eq!(orders.configs["retention.ms"], "3600000");
    let payments = decoded.topic_by_name("payments").unwrap();
    assert_eq!(payments.partitions[0].leader, -1);
    assert!(payments.partitions[0].isr.is_empty());
    assert!(payments.configs.is_empty());
}

/// Records of versions added after the first versioned release.
fn records_of_newer_versions() -> Vec<MetadataRecord> {
    let MetadataRecord::RegisterBroker {
        broker_id,
        incarnation_id,
        broker_epoch,
        listeners,
        rack,
        ..
    } = records()[0].clone()
    else {
        unreachable!()
    };
    vec![
        // RegisterBroker v1: + supported features.
        MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id,
            incarnation_id,
            broker_epoch,
            listeners,
            rack,
            supported_features: Some(vec![
                SupportedFeature {
                    name: "metadata.version".into(),
                    min_level: 1,
                    max_level: 2,
                },
                SupportedFeature {
                    name: "group.version".into(),
                    min_level: 0,
                    max_level: 1,
                },
            ]),
        },
        // FeatureLevel v0 (new in metadata.version 2).
        MetadataRecord::FeatureLevel {
            name: "metadata.version".into(),
            level: 2,
        },
        // AccessControlEntry v0 and RemoveAccessControlEntry v0 (new in metadata.version 3).
        MetadataRecord::AccessControlEntry {
            id: Uuid::from_u128(0xac1_0001),
            acl: read_orders_acl(),
        },
        MetadataRecord::RemoveAccessControlEntry {
            id: Uuid::from_u128(0xac1_0001),
        },
        // UserScramCredential v0 and RemoveUserScramCredential v0 (metadata.version 3).
        MetadataRecord::UserScramCredential {
            name: "ann".into(),
            credential: ann_credential(),
        },
        MetadataRecord::RemoveUserScramCredential {
            name: "ann".into(),
            mechanism: ScramMechanism::Sha256,
        },
        // PartitionChange v1 (metadata.version 4): a reassignment starts.
        MetadataRecord::PartitionChange {
            topic_id: TOPIC_ID,
            partition: 1,
            leader: None,
            isr: None,
            replicas: Some(vec![4, 3, 1, 2]),
            adding_replicas: Some(vec![4]),
            removing_replicas: Some(vec![2]),
        },
        // UnregisterBroker v0 (new in metadata.version 4).
        MetadataRecord::UnregisterBroker {
            broker_id: 4,
            broker_epoch: 14,
        },
        // RegisterBroker v2 (metadata.version 4): + log directory ids.
        MetadataRecord::RegisterBroker {
            broker_id: 5,
            incarnation_id: Uuid::from_u128(0x5555),
            broker_epoch: 21,
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "broker5".into(),
                port: 9092,
            }],
            rack: None,
            supported_features: Some(vec![SupportedFeature {
                name: "metadata.version".into(),
                min_level: 1,
                max_level: 4,
            }]),
            log_dirs: vec![Uuid::from_u128(0xd1_0005), Uuid::from_u128(0xd2_0005)],
        },
        // VoterDirectory v0 (new in metadata.version 5).
        MetadataRecord::VoterDirectory {
            voter_id: 2,
            directory_id: Uuid::from_u128(0xd1_0002),
        },
        // BrokerConfig v0 (new in metadata.version 6): one broker's, and a cluster default's
        // removal.
        MetadataRecord::BrokerConfig {
            broker_id: Some(5),
            name: "leader.replication.throttled.rate".into(),
            value: Some("1000000".into()),
        },
        MetadataRecord::BrokerConfig {
            broker_id: None,
            name: "follower.replication.throttled.rate".into(),
            value: None,
        },
        // ClientQuota v0 (new in metadata.version 8): a user's quota, and the removal of the
        // default user and client id's.
        MetadataRecord::ClientQuota {
            entity: ClientQuotaEntity::user(QuotaEntityName::Name("alice".into())),
            key: "producer_byte_rate".into(),
            value: Some(QuotaValue(1048576.0)),
        },
        MetadataRecord::ClientQuota {
            entity: ClientQuotaEntity::user_and_client_id(
                QuotaEntityName::Default,
                QuotaEntityName::Default,
            ),
            key: "consumer_byte_rate".into(),
            value: None,
        },
        // GroupConfig v0 (new in metadata.version 9): a group's override, and the removal of
        // another.
        MetadataRecord::GroupConfig {
            group: "payments".into(),
            name: "consumer.session.timeout.ms".into(),
            value: Some("50000".into()),
        },
        MetadataRecord::GroupConfig {
            group: "payments".into(),
            name: "consumer.heartbeat.interval.ms".into(),
            value: None,
        },
    ]
}

/// ann's SCRAM-SHA-256 credential for the password "pencil" (fixed salt: reproducible).
fn ann_credential() -> ScramCredential {
    let salt = b"fixture-salt".to_vec();
    let salted =
        shoal_sasl::salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096).unwrap();
    ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, &salted, 4096).unwrap()
}

/// `User:ann` may READ topics prefixed `orders-` from 10.0.0.7.
fn read_orders_acl() -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::Topic,
            name: "orders-".into(),
            pattern_type: PatternType::Prefixed,
        },
        entry: AclEntry {
            principal: Principal::user("ann"),
            host: "10.0.0.7".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        },
    }
}

/// [`image_with_features`] at metadata.version 3 with two ACLs (a DENY on the cluster too).
fn image_with_acls() -> MetadataImage {
    let mut image = image_with_features();
    let deny = AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::Cluster,
            name: "kafka-cluster".into(),
            pattern_type: PatternType::Literal,
        },
        entry: AclEntry {
            principal: Principal::user("*"),
            host: "*".into(),
            operation: Operation::Alter,
            permission: Permission::Deny,
        },
    };
    image.apply_batch(
        44,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 3,
            },
            MetadataRecord::AccessControlEntry {
                id: Uuid::from_u128(0xac1_0001),
                acl: read_orders_acl(),
            },
            MetadataRecord::AccessControlEntry {
                id: Uuid::from_u128(0xac1_0002),
                acl: deny,
            },
            MetadataRecord::UserScramCredential {
                name: "ann".into(),
                credential: ann_credential(),
            },
        ],
    );
    image
}

/// [`image_with_acls`] at metadata.version 4 with partition orders-1 moving from [2, 3, 1] to
/// [4, 3, 1] (broker 4 being added, 2 removed), and broker 5 registered with a directory id.
fn image_with_reassignment() -> MetadataImage {
    let mut image = image_with_acls();
    image.apply_batch(
        45,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 4,
            },
            MetadataRecord::PartitionChange {
                topic_id: ORDERS_ID,
                partition: 1,
                leader: None,
                isr: None,
                replicas: Some(vec![4, 3, 1, 2]),
                adding_replicas: Some(vec![4]),
                removing_replicas: Some(vec![2]),
            },
            MetadataRecord::RegisterBroker {
                broker_id: 5,
                incarnation_id: Uuid::from_u128(0x5555),
                broker_epoch: 46,
                listeners: vec![],
                rack: Some("rack-c".into()),
                supported_features: Some(vec![]),
                log_dirs: vec![Uuid::from_u128(0xd1_0005)],
            },
        ],
    );
    image
}

/// [`image_with_reassignment`] at metadata.version 5 with voters 1 and 2's directories
/// recorded.
fn image_with_voter_directories() -> MetadataImage {
    let mut image = image_with_reassignment();
    image.apply_batch(
        47,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 5,
            },
            MetadataRecord::VoterDirectory {
                voter_id: 1,
                directory_id: Uuid::from_u128(0xd1_0001),
            },
            MetadataRecord::VoterDirectory {
                voter_id: 2,
                directory_id: Uuid::from_u128(0xd1_0002),
            },
        ],
    );
    image
}

/// [`image_with_voter_directories`] at metadata.version 6 with a broker's and a cluster-wide
/// dynamic config.
fn image_with_broker_configs() -> MetadataImage {
    let mut image = image_with_voter_directories();
    image.apply_batch(
        48,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 6,
            },
            MetadataRecord::BrokerConfig {
                broker_id: Some(5),
                name: "leader.replication.throttled.rate".into(),
                value: Some("1000000".into()),
            },
            MetadataRecord::BrokerConfig {
                broker_id: None,
                name: "follower.replication.throttled.rate".into(),
                value: Some("2000000".into()),
            },
        ],
    );
    image
}

/// [`image_with_broker_configs`] at metadata.version 8 with client quotas.
fn image_with_client_quotas() -> MetadataImage {
    let mut image = image_with_broker_configs();
    image.apply_batch(
        49,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 8,
            },
            MetadataRecord::ClientQuota {
                entity: ClientQuotaEntity::user(QuotaEntityName::Name("alice".into())),
                key: "producer_byte_rate".into(),
                value: Some(QuotaValue(1048576.0)),
            },
            MetadataRecord::ClientQuota {
                entity: ClientQuotaEntity::client_id(QuotaEntityName::Default),
                key: "consumer_byte_rate".into(),
                value: Some(QuotaValue(2097152.0)),
            },
        ],
    );
    image
}

/// [`image_with_client_quotas`] at metadata.version 9 with group configs.
fn image_with_group_configs() -> MetadataImage {
    let mut image = image_with_client_quotas();
    image.apply_batch(
        50,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 9,
            },
            MetadataRecord::GroupConfig {
                group: "payments".into(),
                name: "consumer.session.timeout.ms".into(),
                value: Some("50000".into()),
            },
            MetadataRecord::GroupConfig {
                group: "payments".into(),
                name: "consumer.heartbeat.interval.ms".into(),
                value: Some("6000".into()),
            },
        ],
    );
    image
}

/// Every record fixture: (record version, record); entry `i` is at log index `100 + i`.
fn fixture_records() -> Vec<(u32, MetadataRecord)> {
    let newer = records_of_newer_versions();
    let versions = [1, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0];
    records()
        .into_iter()
        .map(|r| (0, r))
        .chain(versions.into_iter().zip(newer))
        .collect()
}

fn kind_entry(kind: &str, version: u32) -> (MetaLogId, MetadataRecord) {
    let (i, (_, record)) = fixture_records()
        .into_iter()
        .enumerate()
        .find(|(_, (v, r))| r.kind() == kind && *v == version)
        .unwrap_or_else(|| panic!("no fixture record {kind} v{version}"));
    (log_id(4, 2, 100 + i as u64), record)
}

fn check_record_entry(entry: &MetaEntry, kind: &str, version: u32) {
    let (expected_id, expected) = kind_entry(kind, version);
    assert_eq!(entry.log_id, expected_id, "{kind}");
    assert_eq!(entry.log_id.leader_id.term, 4);
    assert_eq!(entry.log_id.leader_id.node_id, 2);
    match &entry.payload {
        EntryPayload::Normal(batch) => assert_eq!(batch, &vec![expected], "{kind} v{version}"),
        other => panic!("{kind}: expected records, got {other:?}"),
    }
}

/// [`image`] at metadata.version 2: a finalized level and a broker with reported features.
fn image_with_features() -> MetadataImage {
    let mut image = image();
    image.apply_batch(
        43,
        &[
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 2,
            },
            MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: 4,
                incarnation_id: Uuid::from_u128(0xb0b0_0004),
                broker_epoch: 43,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "broker4".into(),
                    port: 9092,
                }],
                rack: None,
                // What the binary that wrote the fixture supported.
                supported_features: Some(vec![SupportedFeature {
                    name: "metadata.version".into(),
                    min_level: 1,
                    max_level: 2,
                }]),
            },
        ],
    );
    image
}

// ─── Legacy JSON (releases before versioning) ────────────────────────────────────────────────

#[test]
fn legacy_json_entries_decode_to_the_expected_records() {
    for record in records() {
        let bytes = read(&format!("legacy_json/entry_{}.json", record.kind()));
        assert_eq!(bytes[0], b'{');
        check_record_entry(&decode_entry(&bytes).unwrap(), record.kind(), 0);
    }
    // Spot checks of the one with the most fields, beyond equality.
    let entry = decode_entry(&read("legacy_json/entry_RegisterBroker.json")).unwrap();
    let EntryPayload::Normal(batch) = entry.payload else {
        panic!()
    };
    let MetadataRecord::RegisterBroker {
        log_dirs,
        broker_id,
        incarnation_id,
        broker_epoch,
        listeners,
        rack,
        supported_features,
    } = &batch[0]
    else {
        panic!()
    };
    // The fields added later (RegisterBroker v1, v2) take their documented defaults.
    assert_eq!(supported_features, &None);
    assert!(log_dirs.is_empty());
    assert_eq!((*broker_id, *broker_epoch), (3, 17));
    assert_eq!(incarnation_id.as_u128(), 0xfeed_beef);
    assert_eq!(listeners[1].host, "broker3.example.com");
    assert_eq!(listeners[0].port, 19092);
    assert_eq!(rack.as_deref(), Some("rack-b"));

    let all = decode_entry(&read("legacy_json/entry_all_records.json")).unwrap();
    assert_eq!(all.log_id, log_id(4, 2, 200));
    assert_eq!(all.payload, EntryPayload::Normal(records()));
    let blank = decode_entry(&read("legacy_json/entry_blank.json")).unwrap();
    assert_eq!(blank.log_id, log_id(4, 2, 201));
    assert_eq!(blank.payload, EntryPayload::Blank);
    let m = decode_entry(&read("legacy_json/entry_membership.json")).unwrap();
    assert_eq!(m.log_id, log_id(1, 1, 1));
    assert_eq!(m.payload, EntryPayload::Membership(membership()));
}

#[test]
fn legacy_json_state_values_decode() {
    let vote: Vote<u64> = decode_state("vote", &read("legacy_json/state_vote.json")).unwrap();
    assert_eq!(vote, Vote::new_committed(4, 2));
    let committed: Option<MetaLogId> =
        decode_state("committed", &read("legacy_json/state_committed.json")).unwrap();
    assert_eq!(committed, Some(log_id(4, 2, 201)));
    let purged: MetaLogId =
        decode_state("last_purged", &read("legacy_json/state_last_purged.json")).unwrap();
    assert_eq!(purged, log_id(3, 1, 90));
    let meta: MetaSnapshotMeta =
        decode_state("snapshot meta", &read("legacy_json/snapshot_meta.json")).unwrap();
    assert_eq!(meta, snapshot_meta());
}

#[test]
fn legacy_json_snapshot_decodes_to_the_expected_image() {
    check_image(&decode_snapshot(&read("legacy_json/snapshot_v1.json")).unwrap());
}

// ─── Current format ──────────────────────────────────────────────────────────────────────────

/// The file a fixture of the current version of `what` is written to.
fn record_fixture_name(name: &str, record_version: u32) -> String {
    format!("versioned/entry_frame{ENTRY_FRAME_VERSION}_{name}_v{record_version}.bin")
}

/// Writes fixtures of the *current* versions that do not exist yet; never overwrites one.
/// Run after adding a version: `cargo test -p shoal-meta --test integration metadata_formats -- --ignored`.
#[test]
#[ignore = "writes fixtures; run by hand after a version bump"]
fn write_missing_fixtures() {
    let write = |path: String, bytes: Vec<u8>| {
        let path = fixtures().join(path);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            eprintln!("wrote {}", path.display());
        }
    };
    for (version, record) in fixture_records() {
        let (log_id, record) = kind_entry(record.kind(), version);
        let entry = Entry {
            log_id,
            payload: EntryPayload::Normal(vec![record.clone()]),
        };
        write(
            record_fixture_name(record.kind(), version),
            encode_entry(&entry).unwrap(),
        );
    }
    let f = ENTRY_FRAME_VERSION;
    let blank: MetaEntry = Entry {
        log_id: log_id(4, 2, 201),
        payload: EntryPayload::Blank,
    };
    write(
        format!("versioned/entry_frame{f}_blank.bin"),
        encode_entry(&blank).unwrap(),
    );
    let m: MetaEntry = Entry {
        log_id: log_id(1, 1, 1),
        payload: EntryPayload::Membership(membership()),
    };
    write(
        format!("versioned/entry_frame{f}_membership.bin"),
        encode_entry(&m).unwrap(),
    );
    let s = STATE_FRAME_VERSION;
    write(
        format!("versioned/state_frame{s}_vote.bin"),
        encode_state(&Vote::<u64>::new_committed(4, 2)).unwrap(),
    );
    write(
        format!("versioned/state_frame{s}_snapshot_meta.bin"),
        encode_state(&snapshot_meta()).unwrap(),
    );
    for image in [
        image(),
        image_with_features(),
        image_with_acls(),
        image_with_reassignment(),
        image_with_voter_directories(),
        image_with_broker_configs(),
        image_with_client_quotas(),
        image_with_group_configs(),
    ] {
        let bytes = encode_snapshot(&image);
        write(format!("versioned/snapshot_format{}.bin", bytes[1]), bytes);
    }
}

#[test]
fn versioned_fixtures_decode_to_the_expected_values() {
    // Every record type at every version.
    let mut covered = BTreeSet::new();
    for (version, record) in fixture_records() {
        let bytes = read(&record_fixture_name(record.kind(), version));
        assert_eq!(&bytes[..2], &[MAGIC, 1]);
        check_record_entry(&decode_entry(&bytes).unwrap(), record.kind(), version);
        covered.insert((record.kind(), version));
    }
    for versions in record_versions() {
        for version in 0..=versions.max_version {
            assert!(
                covered.contains(&(versions.name, version)),
                "no fixture of {} version {version}",
                versions.name
            );
        }
    }
    let blank = decode_entry(&read("versioned/entry_frame1_blank.bin")).unwrap();
    assert_eq!(blank.log_id, log_id(4, 2, 201));
    assert_eq!(blank.payload, EntryPayload::Blank);
    let m = decode_entry(&read("versioned/entry_frame1_membership.bin")).unwrap();
    assert_eq!(m.log_id, log_id(1, 1, 1));
    assert_eq!(m.payload, EntryPayload::Membership(membership()));
    let vote: Vote<u64> = decode_state("vote", &read("versioned/state_frame1_vote.bin")).unwrap();
    assert_eq!(vote, Vote::new_committed(4, 2));
    let meta: MetaSnapshotMeta = decode_state(
        "snapshot meta",
        &read("versioned/state_frame1_snapshot_meta.bin"),
    )
    .unwrap();
    assert_eq!(meta, snapshot_meta());
    let snapshot = read("versioned/snapshot_format2.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 2]);
    check_image(&decode_snapshot(&snapshot).unwrap());
    let snapshot = read("versioned/snapshot_format3.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 3]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_features());
    assert_eq!(decoded.metadata_version(), 2);
    assert_eq!(decoded.finalized_features["metadata.version"], 2);
    assert_eq!(
        decoded.brokers[&4].supported_features,
        Some(vec![SupportedFeature {
            name: "metadata.version".into(),
            min_level: 1,
            max_level: 2
        }])
    );
    assert_eq!(decoded.brokers[&1].supported_features, None);
    assert!(decoded.acls.is_empty(), "format 3 has no ACLs");
    let snapshot = read("versioned/snapshot_format4.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 4]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_acls());
    assert_eq!(decoded.metadata_version(), 3);
    assert_eq!(
        decoded.acls[&Uuid::from_u128(0xac1_0001)],
        read_orders_acl()
    );
    let deny = &decoded.acls[&Uuid::from_u128(0xac1_0002)];
    assert_eq!(deny.pattern.resource_type, ResourceType::Cluster);
    assert_eq!(deny.entry.principal.to_string(), "User:*");
    assert_eq!(
        (deny.entry.operation, deny.entry.permission),
        (Operation::Alter, Permission::Deny)
    );
    let ann = &decoded.scram_credentials["ann"][&ScramMechanism::Sha256];
    assert_eq!(ann.iterations, 4096);
    assert!(ann.verifies(b"pencil") && !ann.verifies(b"pencils"));
    assert!(
        decoded
            .topics
            .values()
            .all(|t| t.partitions.iter().all(|p| !p.is_reassigning()))
    );
    let snapshot = read("versioned/snapshot_format5.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 5]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_reassignment());
    assert_eq!(decoded.metadata_version(), 4);
    let moving = &decoded.topic(&ORDERS_ID).unwrap().partitions[1];
    assert_eq!(
        (
            moving.replicas.clone(),
            moving.adding_replicas.clone(),
            moving.removing_replicas.clone()
        ),
        (vec![4, 3, 1, 2], vec![4], vec![2])
    );
    assert_eq!(moving.target_replicas(), vec![4, 3, 1]);
    assert_eq!(
        decoded.brokers[&5].log_dirs,
        vec![Uuid::from_u128(0xd1_0005)]
    );
    assert!(decoded.voter_directories.is_empty(), "format 5 has none");
    let snapshot = read("versioned/snapshot_format6.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 6]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_voter_directories());
    assert_eq!(decoded.metadata_version(), 5);
    assert_eq!(
        decoded.voter_directories,
        BTreeMap::from([
            (1, Uuid::from_u128(0xd1_0001)),
            (2, Uuid::from_u128(0xd1_0002)),
        ])
    );
    assert!(decoded.broker_configs.is_empty(), "format 6 has none");
    let snapshot = read("versioned/snapshot_format7.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 7]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_broker_configs());
    assert_eq!(decoded.metadata_version(), 6);
    assert_eq!(
        decoded
            .broker_configs
            .value(5, "leader.replication.throttled.rate"),
        Some(("1000000", true))
    );
    assert_eq!(
        decoded
            .broker_configs
            .value(5, "follower.replication.throttled.rate"),
        Some(("2000000", false))
    );
    assert!(decoded.client_quotas.is_empty(), "format 7 has none");
    let snapshot = read("versioned/snapshot_format8.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 8]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_client_quotas());
    assert_eq!(decoded.metadata_version(), 8);
    assert_eq!(
        decoded.client_quotas.get(
            &ClientQuotaEntity::client_id(QuotaEntityName::Default),
            "consumer_byte_rate"
        ),
        Some(2097152.0)
    );
    assert!(decoded.group_configs.is_empty(), "format 8 has none");
    let snapshot = read("versioned/snapshot_format9.bin");
    assert_eq!(&snapshot[..2], &[MAGIC, 9]);
    let decoded = decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded, image_with_group_configs());
    assert_eq!(decoded.metadata_version(), 9);
    assert_eq!(
        decoded
            .group_configs
            .get("payments", "consumer.heartbeat.interval.ms"),
        Some("6000")
    );
}

/// The schema change of metadata.version 2: RegisterBroker v1 added `supported_features`.
/// The previous version, written by the binary before the change (the checked-in fixture),
/// still decodes, with the documented default; so do the format-2 snapshot and legacy JSON.
#[test]
fn the_previous_register_broker_version_decodes_with_the_documented_default() {
    let v0 = decode_entry(&read(&record_fixture_name("RegisterBroker", 0))).unwrap();
    let EntryPayload::Normal(batch) = &v0.payload else {
        panic!()
    };
    let MetadataRecord::RegisterBroker {
        broker_id,
        listeners,
        supported_features,
        ..
    } = &batch[0]
    else {
        panic!()
    };
    assert_eq!(*broker_id, 3);
    assert_eq!(listeners.len(), 2);
    assert_eq!(supported_features, &None, "v0 means: not reported");
    assert_eq!(
        shoal_meta::features::supported_range(supported_features.as_deref(), "metadata.version"),
        Some((1, 1)),
        "a broker that did not report supports metadata.version 1 only"
    );
    let v1 = decode_entry(&read(&record_fixture_name("RegisterBroker", 1))).unwrap();
    let EntryPayload::Normal(batch) = &v1.payload else {
        panic!()
    };
    let MetadataRecord::RegisterBroker {
        supported_features, ..
    } = &batch[0]
    else {
        panic!()
    };
    assert_eq!(supported_features.as_ref().map(Vec::len), Some(2));
    // The v2 snapshot has no features: every broker "not reported", no level finalized.
    let image = decode_snapshot(&read("versioned/snapshot_format2.bin")).unwrap();
    assert!(
        image
            .brokers
            .values()
            .all(|b| b.supported_features.is_none())
    );
    assert_eq!(image.metadata_version(), 1);
}

#[test]
fn each_value_is_written_at_the_lowest_version_that_represents_it() {
    // Without features: readable by binaries that only know the first versioned formats.
    assert_eq!(encode_snapshot(&image())[1], 2);
    assert_eq!(encode_snapshot(&image_with_features())[1], 3);
    assert_eq!(encode_snapshot(&image_with_acls())[1], 4);
    let frame = |record: &MetadataRecord| format::encode_record(record).record_version;
    assert_eq!(frame(&records()[0]), 0);
    assert_eq!(frame(&records_of_newer_versions()[0]), 1);
}

#[test]
fn every_record_type_round_trips_in_the_current_format() {
    let mut seen = BTreeSet::new();
    let all = records().into_iter().chain(records_of_newer_versions());
    for (i, record) in all.enumerate() {
        seen.insert(record.kind());
        let entry: MetaEntry = Entry {
            log_id: log_id(7, 3, i as u64 + 1),
            payload: EntryPayload::Normal(vec![record]),
        };
        let bytes = encode_entry(&entry).unwrap();
        assert_eq!(&bytes[..2], &[MAGIC, ENTRY_FRAME_VERSION]);
        assert_eq!(decode_entry(&bytes).unwrap(), entry);
    }
    // The table covers every record type the codec knows.
    let known: BTreeSet<_> = record_versions().iter().map(|v| v.name).collect();
    assert_eq!(seen, known);
    // Edge values: empty lists, absent options, extremes.
    let edge = vec![
        MetadataRecord::PartitionChange {
            topic_id: Uuid::nil(),
            partition: i32::MAX,
            leader: None,
            isr: Some(vec![]),
            replicas: Some(vec![]),
            adding_replicas: None,
            removing_replicas: None,
        },
        MetadataRecord::TopicConfig {
            topic_id: Uuid::max(),
            name: String::new(),
            value: None,
        },
        MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id: 0,
            incarnation_id: Uuid::nil(),
            broker_epoch: i64::MIN,
            listeners: vec![],
            rack: Some(String::new()),
            supported_features: Some(vec![]),
        },
        MetadataRecord::FeatureLevel {
            name: String::new(),
            level: i16::MIN,
        },
    ];
    let entry: MetaEntry = Entry {
        log_id: log_id(u64::MAX, u64::MAX, u64::MAX),
        payload: EntryPayload::Normal(edge),
    };
    assert_eq!(decode_entry(&encode_entry(&entry).unwrap()).unwrap(), entry);
    // And the images.
    for image in [image(), image_with_features(), image_with_acls()] {
        assert_eq!(decode_snapshot(&encode_snapshot(&image)).unwrap(), image);
    }
}

// ─── Refusals ────────────────────────────────────────────────────────────────────────────────

fn unsupported(err: FormatError, what: &str, found: u32) -> String {
    let message = err.to_string();
    match err {
        FormatError::UnsupportedVersion {
            what: w, found: f, ..
        } => {
            assert!(w.contains(what), "{message}");
            assert_eq!(f, found, "{message}");
        }
        other => panic!("expected an unsupported version, got {other:?}"),
    }
    assert!(message.contains(&format!("version {found}")), "{message}");
    assert!(message.contains("newer Shoal"), "{message}");
    message
}

fn one_record_entry() -> Vec<u8> {
    let entry: MetaEntry = Entry {
        log_id: log_id(1, 1, 1),
        payload: EntryPayload::Normal(vec![records()[0].clone()]),
    };
    encode_entry(&entry).unwrap()
}

#[test]
fn newer_versions_are_refused_naming_found_and_supported() {
    // Entry frame version.
    let mut bytes = one_record_entry();
    bytes[1] = 9;
    let message = unsupported(decode_entry(&bytes).unwrap_err(), "Raft log entry frame", 9);
    assert!(message.contains("versions 1 to 1"), "{message}");

    // Record version: re-frame the RegisterBroker record with version 7.
    use prost::Message;
    let mut m = format::proto::RaftEntry::decode(&one_record_entry()[2..]).unwrap();
    let Some(format::proto::raft_entry::Payload::Records(batch)) = &mut m.payload else {
        panic!()
    };
    batch.records[0].record_version = 7;
    let mut bytes = vec![MAGIC, 1];
    bytes.extend(m.encode_to_vec());
    unsupported(
        decode_entry(&bytes).unwrap_err(),
        "RegisterBroker record",
        7,
    );

    // Unknown record type.
    let Some(format::proto::raft_entry::Payload::Records(batch)) = &mut m.payload else {
        panic!()
    };
    batch.records[0].record_type = 99;
    let mut bytes = vec![MAGIC, 1];
    bytes.extend(m.encode_to_vec());
    let err = decode_entry(&bytes).unwrap_err();
    assert!(
        matches!(err, FormatError::UnknownRecordType { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("type 99"), "{err}");

    // Snapshot format version, versioned and legacy JSON.
    let newer = SNAPSHOT_FORMAT_VERSION + 1;
    let mut snapshot = encode_snapshot(&image());
    snapshot[1] = newer;
    let message = unsupported(
        decode_snapshot(&snapshot).unwrap_err(),
        "snapshot format",
        u32::from(newer),
    );
    assert!(message.contains(&format!("versions 1 to {SNAPSHOT_FORMAT_VERSION}")));
    let legacy = format!(r#"{{"format_version":{newer},"image":{{}}}}"#);
    unsupported(
        decode_snapshot(legacy.as_bytes()).unwrap_err(),
        "snapshot format",
        u32::from(newer),
    );

    // State frame version.
    let mut vote = encode_state(&Vote::<u64>::new_committed(1, 1)).unwrap();
    vote[1] = 4;
    unsupported(
        decode_state::<Vote<u64>>("vote", &vote).unwrap_err(),
        "vote frame",
        4,
    );
}

#[test]
fn malformed_values_are_errors_not_panics() {
    use prost::Message;
    // A required field missing.
    let topic = format::proto::TopicRecord {
        name: None,
        topic_id: TOPIC_ID.as_bytes().to_vec(),
    };
    let frame = format::proto::RecordFrame {
        record_type: 4,
        record_version: 0,
        payload: topic.encode_to_vec(),
    };
    let err = format::decode_record(&frame).unwrap_err();
    assert!(err.to_string().contains("missing field `name`"), "{err}");
    // A UUID of the wrong length.
    let remove = format::proto::RemoveTopicRecord {
        topic_id: vec![1, 2, 3],
    };
    let frame = format::proto::RecordFrame {
        record_type: 7,
        record_version: 0,
        payload: remove.encode_to_vec(),
    };
    let err = format::decode_record(&frame).unwrap_err();
    assert!(err.to_string().contains("16-byte UUID, got 3"), "{err}");
    // A port out of range.
    let register = format::proto::RegisterBrokerRecord {
        log_dirs: Vec::new(),
        broker_id: Some(1),
        incarnation_id: Uuid::nil().as_bytes().to_vec(),
        broker_epoch: Some(1),
        listeners: vec![format::proto::Endpoint {
            name: Some("A".into()),
            host: Some("h".into()),
            port: Some(70_000),
        }],
        rack: None,
        supported_features: vec![],
    };
    let frame = format::proto::RecordFrame {
        record_type: 1,
        record_version: 0,
        payload: register.encode_to_vec(),
    };
    let err = format::decode_record(&frame).unwrap_err();
    assert!(err.to_string().contains("port 70000"), "{err}");
    // An ACL with an operation code Kafka does not assign, or a principal without a type.
    let acl = |operation: i32, principal: &str| format::proto::AccessControlEntryRecord {
        id: Uuid::nil().as_bytes().to_vec(),
        resource_type: Some(2),
        resource_name: Some("t".into()),
        pattern_type: Some(3),
        principal: Some(principal.into()),
        host: Some("*".into()),
        operation: Some(operation),
        permission_type: Some(3),
    };
    let short_key = format::proto::UserScramCredentialRecord {
        name: Some("ann".into()),
        mechanism: Some(1),
        salt: b"s".to_vec(),
        stored_key: vec![0; 31],
        server_key: vec![0; 32],
        iterations: Some(4096),
    };
    let frame = format::proto::RecordFrame {
        record_type: 13,
        record_version: 0,
        payload: short_key.encode_to_vec(),
    };
    let err = format::decode_record(&frame).unwrap_err();
    assert!(err.to_string().contains("keys are 32 bytes"), "{err}");
    for (m, expected) in [
        (acl(99, "User:a"), "unknown operation code 99"),
        (acl(3, "alice"), "not Type:name"),
        (acl(300, "User:a"), "is not a code"),
    ] {
        let frame = format::proto::RecordFrame {
            record_type: 11,
            record_version: 0,
            payload: m.encode_to_vec(),
        };
        let err = format::decode_record(&frame).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    // Truncations and garbage of every length: an error each time, never a panic.
    let entry = one_record_entry();
    let snapshot = encode_snapshot(&image());
    for len in 0..entry.len() {
        assert!(decode_entry(&entry[..len]).is_err(), "entry cut at {len}");
    }
    for len in 0..snapshot.len() {
        assert!(
            decode_snapshot(&snapshot[..len]).is_err(),
            "snapshot cut at {len}"
        );
    }
    let mut noise = 0x9e37_79b9_u32;
    for len in 0..300 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect();
        let _ = decode_entry(&bytes);
        let _ = decode_snapshot(&bytes);
        let mut framed = vec![MAGIC, 1];
        framed.extend(&bytes);
        let _ = decode_entry(&framed);
    }
}

// ─── Nodes ───────────────────────────────────────────────────────────────────────────────────

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn sled_path(dir: &Path) -> PathBuf {
    dir.join("meta").join(shoal_meta::node::SLED_DIR)
}

type Dump = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every key and value of every sled tree.
fn dump(dir: &Path) -> Dump {
    let db = common::open_released_sled(&sled_path(dir));
    db.tree_names()
        .into_iter()
        .map(|name| {
            let tree = db.open_tree(&name).unwrap();
            let items = tree
                .iter()
                .map(|kv| {
                    let (k, v) = kv.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (name.to_vec(), items)
        })
        .collect()
}

/// A cluster from before feature levels (metadata.version 1: its registrations record no
/// features) is raised with UpdateFeatures once its brokers have re-registered on this release,
/// which reports its features to the controller; before that the level is refused, naming the
/// broker. Nothing is written by the refused attempt.
#[tokio::test]
async fn a_cluster_from_before_feature_levels_is_raised_once_its_brokers_re_register() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("legacy_json/data_dir/meta"),
        &dir.path().join("meta"),
    );
    let node = common::start(dir.path()).await;
    assert_eq!(node.image().metadata_version(), 1);
    let raise = || {
        vec![
            shoal_meta::FeatureUpdate {
                name: "metadata.version".into(),
                level: shoal_meta::features::MAX_METADATA_VERSION,
                downgrade: false,
            },
            shoal_meta::FeatureUpdate {
                name: "transaction.version".into(),
                level: 2,
                downgrade: false,
            },
        ]
    };
    let refused = node.client().update_features(raise(), false).await;
    match &refused.results[..] {
        [Err(shoal_meta::ControllerError::InvalidUpdateVersion(m))] => {
            assert!(m.contains("Broker 1 supports"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(refused.log_index, None);
    // Each broker restarts on this release: a new incarnation that reports its features.
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(common::live_broker(&node, id, 250).await);
    }
    let raised = node.client().update_features(raise(), false).await;
    assert!(raised.results[0].is_ok(), "{:?}", raised.results);
    let image = node
        .wait_for_applied(raised.log_index.unwrap(), 5000)
        .await
        .unwrap();
    assert_eq!(
        image.metadata_version(),
        shoal_meta::features::MAX_METADATA_VERSION
    );
    assert_eq!(image.transaction_version(), 2);
    drop(brokers);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_data_dir_written_before_versioning_opens_with_its_image() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("legacy_json/data_dir/meta"),
        &dir.path().join("meta"),
    );
    let legacy = dump(dir.path());
    let node = common::start(dir.path()).await;
    assert_eq!(node.cluster_id(), "MkU3OEVBNTcwNTJENDM2Qk");
    // Its meta.properties had no directory id: it has one now, written once.
    let props = std::fs::read_to_string(dir.path().join("meta/meta.properties")).unwrap();
    let written = format!(
        "directory.id={}",
        shoal_meta::meta_properties::format_directory_id(node.directory_id())
    );
    assert!(props.contains(&written), "{props}");
    let image = node.image();
    // From the snapshot (index 9) and the log entries after it (10, 11).
    assert!(
        image.last_applied_index >= 11,
        "{}",
        image.last_applied_index
    );
    assert_eq!(image.next_producer_id, 2000);
    assert_eq!(image.brokers.len(), 3);
    for (id, epoch, port) in [(1, 2, 9093), (2, 4, 9094), (3, 6, 9095)] {
        let b = &image.brokers[&id];
        assert_eq!(b.broker_epoch, epoch);
        assert_eq!(b.listeners[0].port, port);
        assert_eq!(b.listeners[0].name, "PLAINTEXT");
        assert_eq!(b.rack, None);
    }
    assert_eq!(
        image.brokers[&1].incarnation_id,
        "79f3ca25-7781-433a-b517-8a184c14de29"
            .parse::<Uuid>()
            .unwrap()
    );
    let orders = image.topic_by_name("orders").unwrap();
    assert_eq!(
        orders.id,
        "40e888da-80ae-4716-ad60-77c2a3e75cb3"
            .parse::<Uuid>()
            .unwrap()
    );
    let replicas: Vec<_> = orders
        .partitions
        .iter()
        .map(|p| p.replicas.clone())
        .collect();
    assert_eq!(replicas, vec![vec![2, 1, 3], vec![3, 2, 1], vec![1, 3, 2]]);
    let leaders: Vec<_> = orders.partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders, vec![2, 3, 1]);
    assert_eq!(orders.configs["cleanup.policy"], "compact");
    assert_eq!(orders.configs["retention.ms"], "3600000");
    assert_eq!(image.topic_by_name("payments").unwrap().partitions.len(), 2);
    let after = image.topic_by_name("after-snapshot").unwrap();
    assert_eq!(after.partitions[0].replicas, vec![2]);

    // A cluster from before feature levels stays at metadata.version 1: a broker registering
    // now is written as RegisterBroker v0 (no features), which every versioned release reads.
    assert_eq!(image.metadata_version(), 1);
    node.client().register(common::broker(9)).await.unwrap();
    assert_eq!(node.image().brokers[&9].supported_features, None);

    // It keeps working, and a restart reads the mix of legacy and new entries.
    let created = node
        .client()
        .create_topics(vec![common::topic("new", 1, 1)], false)
        .await;
    assert!(created.results[0].is_ok(), "{:?}", created.results);
    let before = node.image();
    node.shutdown().await.unwrap();
    drop(node);
    let now = dump(dir.path());
    let log = |d: &Dump| d[b"raft_log".as_slice()].clone();
    // The legacy entries are kept as they were (never rewritten); new ones are versioned.
    for (key, value) in log(&now) {
        match log(&legacy).iter().find(|(k, _)| *k == key) {
            Some((_, old)) => assert_eq!(&value, old),
            None => assert_eq!(value[0], MAGIC, "new entry {key:?}"),
        }
    }
    let node = common::start(dir.path()).await;
    assert_eq!(
        common::content(&node.image()).topics,
        common::content(&before).topics
    );
    assert_eq!(node.image().next_producer_id, 2000);
    node.shutdown().await.unwrap();
}

/// Every RecordFrame (type, version) in the sled log of the node in `dir`.
fn record_frames(dir: &Path) -> Vec<(u32, u32)> {
    use prost::Message;
    let d = dump(dir);
    let mut frames = Vec::new();
    for (_, value) in &d[b"raft_log".as_slice()] {
        assert_eq!(value[0], MAGIC);
        let m = format::proto::RaftEntry::decode(&value[2..]).unwrap();
        if let Some(format::proto::raft_entry::Payload::Records(batch)) = m.payload {
            frames.extend(
                batch
                    .records
                    .iter()
                    .map(|r| (r.record_type, r.record_version)),
            );
        }
    }
    frames
}

#[tokio::test]
async fn a_new_cluster_finalizes_the_newest_metadata_version_and_records_broker_features() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::start(dir.path()).await;
    assert_eq!(
        node.image().metadata_version(),
        shoal_meta::features::MAX_METADATA_VERSION
    );
    assert_eq!(
        node.image().transaction_version(),
        shoal_meta::features::MAX_TRANSACTION_VERSION,
        "a new cluster speaks transaction version 2, as Kafka 4 does"
    );
    let brokers = common::register_brokers(&node, 1).await;
    assert_eq!(
        node.image().brokers[&1].supported_features,
        Some(shoal_meta::features::supported_features())
    );
    // A broker that cannot read the finalized level is refused, naming both.
    let old = shoal_meta::BrokerRegistrationRequest {
        supported_features: None,
        ..common::broker(2)
    };
    let err = node.client().register(old).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "supports metadata.version 1 to 1, but the cluster's finalized metadata.version is {}",
            shoal_meta::features::MAX_METADATA_VERSION
        )),
        "{err}"
    );
    // One that serves metadata.version 3 but not transaction.version 2 is refused too.
    let without_txn_v2 = shoal_meta::BrokerRegistrationRequest {
        supported_features: Some(
            shoal_meta::features::supported_features()
                .into_iter()
                .filter(|f| f.name != shoal_meta::features::TRANSACTION_VERSION)
                .collect(),
        ),
        ..common::broker(2)
    };
    let err = node.client().register(without_txn_v2).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "supports transaction.version none, but the cluster's finalized transaction.version is 2"
        ),
        "{err}"
    );
    drop(brokers);
    node.shutdown().await.unwrap();
    drop(node);
    // On disk: two FeatureLevels (type 10) and RegisterBroker v1 (type 1).
    let frames = record_frames(dir.path());
    assert_eq!(
        frames.iter().filter(|f| **f == (10, 0)).count(),
        2,
        "{frames:?}"
    );
    assert!(frames.contains(&(1, 1)), "{frames:?}");
    assert!(!frames.contains(&(1, 0)), "{frames:?}");
    // A restart keeps the level and does not finalize again.
    let node = common::start(dir.path()).await;
    assert_eq!(
        node.image().metadata_version(),
        shoal_meta::features::MAX_METADATA_VERSION
    );
    node.shutdown().await.unwrap();
    drop(node);
    assert_eq!(
        record_frames(dir.path())
            .iter()
            .filter(|f| **f == (10, 0))
            .count(),
        2
    );
}

/// Starts a node that fails; returns the error text, and checks the store did not change.
async fn refused(dir: &Path) -> String {
    let before = dump(dir);
    let err = shoal_meta::MetaNode::start(common::config(dir))
        .await
        .err()
        .expect("the node must refuse to start");
    assert!(
        matches!(err, shoal_meta::MetaError::UnreadableStore { .. }),
        "{err}"
    );
    assert_eq!(dump(dir), before, "the store was changed");
    err.to_string()
}

fn edit(dir: &Path, tree: &str, key: &[u8], change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let db = common::open_released_sled(&sled_path(dir));
    let tree = db.open_tree(tree).unwrap();
    let original = tree.get(key).unwrap().unwrap().to_vec();
    let mut value = original.clone();
    change(&mut value);
    tree.insert(key, value).unwrap();
    db.flush().unwrap();
    original
}

fn restore(dir: &Path, tree: &str, key: &[u8], value: Vec<u8>) {
    let db = common::open_released_sled(&sled_path(dir));
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

#[tokio::test]
async fn a_store_holding_a_newer_version_refuses_to_start_and_is_left_unchanged() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let node = common::start(dir.path()).await;
    let brokers = common::register_brokers(&node, 1).await;
    let created = node
        .client()
        .create_topics(vec![common::topic("t", 1, 1)], false)
        .await;
    assert!(created.results[0].is_ok());
    node.raft().trigger().snapshot().await.unwrap();
    let index = node
        .client()
        .create_topics(vec![common::topic("u", 1, 1)], false)
        .await
        .log_index
        .unwrap();
    while node.raft_metrics().await.snapshot_index.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(brokers);
    node.shutdown().await.unwrap();
    drop(node);
    let key = index.to_be_bytes();

    // An entry of a newer frame version.
    let original = edit(dir.path(), "raft_log", &key, |v| v[1] = 9);
    let message = refused(dir.path()).await;
    assert!(
        message.contains(&format!("raft_log entry {index}"))
            && message.contains("Raft log entry frame version 9")
            && message.contains("versions 1 to 1"),
        "{message}"
    );
    restore(dir.path(), "raft_log", &key, original);

    // A record of a newer version inside a current entry.
    let original = edit(dir.path(), "raft_log", &key, |v| {
        let mut m = format::proto::RaftEntry::decode(&v[2..]).unwrap();
        let Some(format::proto::raft_entry::Payload::Records(batch)) = &mut m.payload else {
            panic!("entry {index} has no records")
        };
        batch.records[0].record_version = 5;
        v.truncate(2);
        v.extend(m.encode_to_vec());
    });
    let message = refused(dir.path()).await;
    assert!(
        message.contains("Topic record version 5") && message.contains("versions 0 to 0"),
        "{message}"
    );
    restore(dir.path(), "raft_log", &key, original);

    // A snapshot of a newer format.
    let newer = SNAPSHOT_FORMAT_VERSION + 1;
    let original = edit(dir.path(), "snapshot", b"data", |v| v[1] = newer);
    let message = refused(dir.path()).await;
    assert!(
        message.contains("snapshot `data`")
            && message.contains(&format!("snapshot format version {newer}"))
            && message.contains(&format!("versions 1 to {SNAPSHOT_FORMAT_VERSION}")),
        "{message}"
    );
    restore(dir.path(), "snapshot", b"data", original);

    // A vote of a newer frame.
    let original = edit(dir.path(), "raft_state", b"vote", |v| v[1] = 3);
    let message = refused(dir.path()).await;
    assert!(message.contains("vote frame version 3"), "{message}");
    restore(dir.path(), "raft_state", b"vote", original);

    // Control: restored, it starts with its topics.
    let node = common::start(dir.path()).await;
    assert!(node.image().topic_by_name("u").is_some());
    node.shutdown().await.unwrap();
}
