//! The test harness: one real node (metadata quorum and broker, logs in a temp dir) whose
//! Kafka handler is called directly, every response encoded at the requested version.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use shoal_acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use shoal_broker::{AdvertisedListener, Broker, BrokerConfig, BrokerHandler, MetadataSource};
use shoal_kafka::{Handler, Reply, RequestContext};
use shoal_meta::{MetaConfig, MetaNode};
use uuid::Uuid;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

// ─── Kafka's error codes ─────────────────────────────────────────────────────────────────

pub const NONE: i16 = 0;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const INVALID_REQUEST: i16 = 42;
pub const INVALID_CONFIG: i16 = 40;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub const SECURITY_DISABLED: i16 = 54;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const UNKNOWN_TOPIC_ID: i16 = 100;

// ─── Authorization ───────────────────────────────────────────────────────────────────────

/// The principal of [`Harness::call`].
pub const ANONYMOUS: &str = "User:ANONYMOUS";
/// The super user of a [`SECURED`] node.
pub const ADMIN: &str = "User:admin";
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// The settings of a secured node: the StandardAuthorizer on, [`ADMIN`] a super user.
pub const SECURED: &[(&str, &str)] = &[
    ("authorizer.class.name", STANDARD_AUTHORIZER),
    ("super.users", ADMIN),
];

/// An ACL for any host, built as a CreateAcls creation is (so it must be valid).
pub fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding::from_wire(
        resource_type.code(),
        name,
        pattern_type.code(),
        principal,
        "*",
        operation.code(),
        permission.code(),
    )
    .unwrap_or_else(|e| panic!("{principal} {operation:?} {resource_type:?} {name}: {e}"))
}

/// ALLOW `op` on the LITERAL resource.
pub fn allow(
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    op: Operation,
) -> AclBinding {
    literal(Permission::Allow, principal, resource_type, name, op)
}

/// DENY `op` on the LITERAL resource.
pub fn deny(principal: &str, resource_type: ResourceType, name: &str, op: Operation) -> AclBinding {
    literal(Permission::Deny, principal, resource_type, name, op)
}

fn literal(
    permission: Permission,
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    op: Operation,
) -> AclBinding {
    acl(
        resource_type,
        name,
        PatternType::Literal,
        principal,
        op,
        permission,
    )
}

/// ALLOW `op` on the topics PREFIXED `prefix`.
pub fn allow_prefixed(principal: &str, prefix: &str, op: Operation) -> AclBinding {
    acl(
        ResourceType::Topic,
        prefix,
        PatternType::Prefixed,
        principal,
        op,
        Permission::Allow,
    )
}

/// ALLOW `op` on the cluster.
pub fn on_cluster(principal: &str, op: Operation) -> AclBinding {
    allow(principal, ResourceType::Cluster, "kafka-cluster", op)
}

/// ALLOW `op` on the LITERAL topic.
pub fn on_topic(principal: &str, topic: &str, op: Operation) -> AclBinding {
    allow(principal, ResourceType::Topic, topic, op)
}

// ─── Typed requests ──────────────────────────────────────────────────────────────────────

/// A response [`Harness::ask`] picks out of the handler's [`ResponseKind`].
pub trait Picked: Sized {
    fn pick(kind: ResponseKind) -> Result<Self, Box<ResponseKind>>;
}

macro_rules! picked {
    ($($kind:ident($response:ty)),* $(,)?) => {$(
        impl Picked for $response {
            fn pick(kind: ResponseKind) -> Result<Self, Box<ResponseKind>> {
                match kind {
                    ResponseKind::$kind(r) => Ok(r),
                    other => Err(Box::new(other)),
                }
            }
        }
    )*};
}

picked!(
    Produce(ProduceResponse),
    AlterClientQuotas(AlterClientQuotasResponse),
    DescribeClientQuotas(DescribeClientQuotasResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    SyncGroup(SyncGroupResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    InitProducerId(InitProducerIdResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    DescribeAcls(DescribeAclsResponse),
    CreateAcls(CreateAclsResponse),
    DeleteAcls(DeleteAclsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    CreatePartitions(CreatePartitionsResponse),
    DeleteGroups(DeleteGroupsResponse),
    ElectLeaders(ElectLeadersResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    OffsetDelete(OffsetDeleteResponse),
    DescribeCluster(DescribeClusterResponse),
    DescribeUserScramCredentials(DescribeUserScramCredentialsResponse),
    AlterUserScramCredentials(AlterUserScramCredentialsResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
);

/// A v2 batch of `count` records; `producer` = Some((id, epoch, first sequence)) makes it
/// idempotent.
pub fn encoded_batch(count: usize, producer: Option<(i64, i16, i32)>) -> Bytes {
    let (producer_id, producer_epoch, first_seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Without a producer: one batch with base sequence -1 (the encoder splits batches
            // where `offset - sequence` changes).
            sequence: if producer.is_some() {
                first_seq + i as i32
            } else {
                i as i32 - 1
            },
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: IndexMap::new(),
            delete_horizon: false,
        })
        .collect();
    encode(&records, Compression::None)
}

/// `records` as v2 record batches compressed with `compression`.
pub fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

pub fn batch(count: usize) -> Bytes {
    encoded_batch(count, None)
}

pub struct Harness {
    pub handler: BrokerHandler,
    pub broker: Arc<Broker>,
    pub meta: Arc<MetaNode>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A node with the [`SECURED`] settings plus `extra`.
    pub async fn start_secured(extra: &[(&str, &str)]) -> Self {
        let settings: Vec<(&str, &str)> = SECURED.iter().chain(extra).copied().collect();
        Self::start_with(&settings).await
    }

    /// A node whose broker settings are the harness defaults plus `extra`.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), extra, None).await
    }

    /// A node whose replication listener serves mutual TLS with `tls`.
    pub async fn start_with_replication_tls(tls: Arc<shoal_internode::NodeTls>) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), &[], Some(tls)).await
    }

    /// Shuts the node down cleanly and starts it again on the same data.
    pub async fn restart(self, extra: &[(&str, &str)]) -> Self {
        self.broker.shutdown().await;
        self.meta.shutdown().await.unwrap();
        let Harness { _dir: dir, .. } = self;
        Self::start_in(dir, extra, None).await
    }

    pub async fn stop(&self) {
        self.broker.shutdown().await;
        self.meta.shutdown().await.unwrap();
    }

    async fn start_in(
        dir: tempfile::TempDir,
        extra: &[(&str, &str)],
        replication_tls: Option<Arc<shoal_internode::NodeTls>>,
    ) -> Self {
        let settings: BTreeMap<String, String> = [
            ("num.partitions", "2"),
            ("default.replication.factor", "1"),
            ("offsets.topic.num.partitions", "3"),
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let meta = MetaNode::start(MetaConfig {
            broker_defaults: settings.clone(),
            ..MetaConfig::new(1, dir.path().join("meta"))
        })
        .await
        .unwrap();
        let config = BrokerConfig {
            node_id: 1,
            quorum_voters: 1,
            data_dir: dir.path().to_path_buf(),
            other_log_dirs: Vec::new(),
            advertised_listeners: vec![AdvertisedListener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            rack: None,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            fetch_max_bytes: 55 << 20,
            fetch_response_pool_bytes: 256 << 20,
            maintenance_interval_ms: 1000,
            retention_check_interval_ms: 300_000,
            high_watermark_checkpoint_interval_ms: 5000,
            heartbeat_interval_ms: 250,
            session_timeout_ms: 1500,
            replication_bind: "127.0.0.1:0".parse().unwrap(),
            replication_advertised: None,
            replication_tls,
            replica_lag_time_max_ms: 30_000,
            log_cleaner_backoff_ms: 15_000,
            log_dir_min_free_bytes: 0,
            settings,
        };
        let source = MetadataSource {
            images: meta.subscribe(),
            controller: meta.client(),
            directory_id: meta.directory_id(),
        };
        let broker = Broker::start(config, source).await.unwrap();
        Harness {
            handler: BrokerHandler::new(Arc::clone(&broker)),
            broker,
            meta,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        api_key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Option<ResponseKind> {
        self.call_as(ANONYMOUS, api_key, version, request).await
    }

    /// As [`Self::call`], from a connection authenticated as `principal` (`Type:name`).
    pub async fn call_as(
        &self,
        principal: &str,
        api_key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Option<ResponseKind> {
        let ctx = RequestContext {
            api_key,
            api_version: version,
            correlation_id: 7,
            client_id: Some("matrix".into()),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "PLAINTEXT".into(),
            connection_id: 1,
            principal: std::sync::Arc::new(shoal_acl::Principal::parse(principal).unwrap()),
            mute: shoal_kafka::ConnectionMute::default(),
        };
        let response = match self.handler.handle(ctx, request).await {
            Reply::Ready(r) => r,
            Reply::Deferred(f) => f.await,
            Reply::Held(f) => f.await.response,
            Reply::NoResponse => return None,
        };
        let mut buf = BytesMut::new();
        response
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("{api_key:?} v{version} response does not encode: {e:#}"));
        Some(response)
    }

    /// `request` at `version` from `principal`: its response (the API key is the request's).
    pub async fn ask<R>(&self, principal: &str, version: i16, request: R) -> R::Response
    where
        R: Request + Into<RequestKind>,
        R::Response: Picked,
    {
        let api_key = ApiKey::try_from(R::KEY).unwrap();
        self.call_for(principal, api_key, version, request.into())
            .await
    }

    /// [`Self::call_as`], expecting a `T` in answer.
    pub async fn call_for<T: Picked>(
        &self,
        principal: &str,
        api_key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> T {
        let kind = self
            .call_as(principal, api_key, version, request)
            .await
            .unwrap_or_else(|| panic!("{api_key:?} v{version}: no response"));
        T::pick(kind).unwrap_or_else(|other| panic!("{api_key:?} v{version}: answered {other:?}"))
    }

    /// Produce v9 (acks -1) of `records` to partition 0 of `topic`, from `principal`: the
    /// partition's answer.
    pub async fn produce_as(
        &self,
        principal: &str,
        topic: &str,
        records: Bytes,
    ) -> produce_response::PartitionProduceResponse {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]);
        let response = self.ask(principal, 9, request).await;
        response.responses[0].partition_responses[0].clone()
    }

    /// Fetch v12 (by name) of partition 0 of `topic` from offset 0, from `principal`: the
    /// partition's answer.
    pub async fn fetch_as(&self, principal: &str, topic: &str) -> fetch_response::PartitionData {
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
        let response = self.ask(principal, 12, request).await;
        response.responses[0].partitions[0].clone()
    }

    /// Puts `acls` in force (through the controller) and waits until this broker applies them.
    pub async fn create_acls(&self, acls: Vec<shoal_acl::AclBinding>) {
        let outcome = self.broker.controller.create_acls(acls).await;
        for result in &outcome.results {
            result.as_ref().unwrap();
        }
        if let Some(index) = outcome.log_index {
            assert!(
                self.broker
                    .wait_for_metadata(index, std::time::Duration::from_secs(10))
                    .await
            );
        }
    }

    pub fn topic_id(&self, name: &str) -> Uuid {
        self.broker.image().topic_by_name(name).unwrap().id
    }
}

// ─── Consumer groups ─────────────────────────────────────────────────────────────────────

/// ConsumerProtocol subscription v0 for topic "t" (version, topics ["t"], null user data).
pub const SUBSCRIBE_T: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b't', 255, 255, 255, 255];

impl Harness {
    /// Creates `name` with `partitions` partitions and waits until it is in effect.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, &[]).await
    }

    /// [`Self::create_topic`] with the topic configs `configs`.
    pub async fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let configs: BTreeMap<String, String> = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let created = self
            .meta
            .client()
            .create_topics(
                vec![shoal_meta::CreateTopic {
                    name: name.into(),
                    num_partitions: Some(partitions),
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
            self.broker
                .wait_for_metadata(index, std::time::Duration::from_secs(5))
                .await
        );
    }

    /// InitProducerId for `transactional_id` (60 s transaction timeout), retried while the
    /// coordinator is being created or loads; returns the producer id and epoch.
    pub async fn init_txn(&self, transactional_id: &str) -> (i64, i16) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let found = self
                .ask(
                    ANONYMOUS,
                    3,
                    FindCoordinatorRequest::default()
                        .with_key_type(1)
                        .with_key(s(transactional_id)),
                )
                .await;
            if found.error_code == 0 {
                let init = self
                    .ask(
                        ANONYMOUS,
                        4,
                        InitProducerIdRequest::default()
                            .with_transactional_id(Some(TransactionalId(s(transactional_id))))
                            .with_transaction_timeout_ms(60_000)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1),
                    )
                    .await;
                if init.error_code == 0 {
                    return (init.producer_id.0, init.producer_epoch);
                }
                // Retriable while the coordinator loads or completes an earlier transaction.
                assert!(
                    [14, 15, 16, 51].contains(&init.error_code),
                    "InitProducerId for {transactional_id}: {init:?}"
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no transaction coordinator for {transactional_id} within 20 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// AddPartitionsToTxn v3 of `partitions` (topic, partition); the codes per partition in
    /// request order.
    pub async fn add_txn_partitions(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(&str, i32)],
    ) -> Vec<i16> {
        let response = self
            .ask(
                ANONYMOUS,
                3,
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(transactional_id)))
                    .with_v3_and_below_producer_id(ProducerId(producer.0))
                    .with_v3_and_below_producer_epoch(producer.1)
                    .with_v3_and_below_topics(txn_topics(partitions)),
            )
            .await;
        partitions
            .iter()
            .map(|(topic, partition)| {
                response
                    .results_by_topic_v3_and_below
                    .iter()
                    .find(|t| t.name.0.as_str() == *topic)
                    .and_then(|t| {
                        t.results_by_partition
                            .iter()
                            .find(|p| p.partition_index == *partition)
                    })
                    .map_or(-100, |p| p.partition_error_code)
            })
            .collect()
    }

    /// FindCoordinator until `__consumer_offsets` exists, then OffsetFetch until its
    /// partitions are loaded.
    pub async fn wait_for_coordinator(&self) {
        self.wait_for_coordinator_as(ANONYMOUS).await
    }

    /// [`Self::wait_for_coordinator`], asking as `principal`, polling up to 20 s.
    pub async fn wait_for_coordinator_as(&self, principal: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no coordinator within 20 s"
            );
            let found = self
                .ask(
                    principal,
                    3,
                    FindCoordinatorRequest::default().with_key(s("probe")),
                )
                .await;
            if found.error_code == 0 && self.every_offsets_partition_loaded(principal).await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// OffsetFetch answers for a group on every `__consumer_offsets` partition: every shard
    /// has loaded (a test's group may hash to any of them).
    async fn every_offsets_partition_loaded(&self, principal: &str) -> bool {
        let Some(partitions) = self
            .broker
            .image()
            .topic_by_name(shoal_group::OFFSETS_TOPIC)
            .map(|t| t.partitions.len() as i32)
        else {
            return false;
        };
        let coordinator = &self.broker.groups.coordinator;
        let mut probes: BTreeMap<i32, String> = BTreeMap::new();
        for i in 0..100_000 {
            if probes.len() as i32 == partitions {
                break;
            }
            let group = format!("probe-{i}");
            probes
                .entry(coordinator.partition_for(&group))
                .or_insert(group);
        }
        for group in probes.values() {
            if self.offset_fetch_as(principal, 7, group).await.error_code != 0 {
                return false;
            }
        }
        true
    }

    pub async fn offset_fetch(&self, version: i16, group: &str) -> OffsetFetchResponse {
        self.offset_fetch_as(ANONYMOUS, version, group).await
    }

    /// OffsetFetch of partitions 0 and 1 of topic `t` in `group`, from `principal`.
    pub async fn offset_fetch_as(
        &self,
        principal: &str,
        version: i16,
        group: &str,
    ) -> OffsetFetchResponse {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1]),
            ]));
        self.ask(principal, version, request).await
    }

    pub async fn join(
        &self,
        version: i16,
        group: &str,
        member_id: &str,
        protocol_type: &str,
    ) -> JoinGroupResponse {
        let request = join_request(version, group, member_id, protocol_type);
        match self.call(ApiKey::JoinGroup, version, request).await {
            Some(ResponseKind::JoinGroup(r)) => r,
            other => panic!("JoinGroup v{version}: {other:?}"),
        }
    }

    /// A new member's join, through MEMBER_ID_REQUIRED (79) where the version has it.
    pub async fn join_new(&self, version: i16, group: &str) -> JoinGroupResponse {
        let first = self.join(version, group, "", "consumer").await;
        if first.error_code != 79 {
            return first;
        }
        assert!(version >= 4, "MEMBER_ID_REQUIRED at v{version}");
        let member_id = first.member_id.to_string();
        self.join(version, group, &member_id, "consumer").await
    }

    pub async fn sync(
        &self,
        version: i16,
        group: &str,
        generation: i32,
        member_id: &str,
        assignments: &[(&str, &[u8])],
    ) -> SyncGroupResponse {
        let request = sync_request(version, group, generation, member_id, assignments);
        match self.call(ApiKey::SyncGroup, version, request).await {
            Some(ResponseKind::SyncGroup(r)) => r,
            other => panic!("SyncGroup v{version}: {other:?}"),
        }
    }

    /// A one-member Stable group: (member id, generation).
    pub async fn stable_group(&self, group: &str) -> (String, i32) {
        let joined = self.join_new(5, group).await;
        assert_eq!(joined.error_code, 0, "{joined:?}");
        let member = joined.member_id.to_string();
        let synced = self
            .sync(
                3,
                group,
                joined.generation_id,
                &member,
                &[(&member, b"asg")],
            )
            .await;
        assert_eq!(synced.error_code, 0, "{synced:?}");
        (member, joined.generation_id)
    }

    pub async fn heartbeat(
        &self,
        version: i16,
        group: &str,
        generation: i32,
        member_id: &str,
    ) -> i16 {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member_id));
        match self.call(ApiKey::Heartbeat, version, request.into()).await {
            Some(ResponseKind::Heartbeat(r)) => r.error_code,
            other => panic!("Heartbeat: {other:?}"),
        }
    }

    /// OffsetCommit of `(topic, partition, offset)`s; the per-partition error codes.
    pub async fn commit(
        &self,
        version: i16,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Vec<i16> {
        let request = commit_request(group, generation, member_id, offsets, true);
        let response = self.ask(ANONYMOUS, version, request).await;
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }
}

pub fn join_request(
    version: i16,
    group: &str,
    member_id: &str,
    protocol_type: &str,
) -> RequestKind {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
        .with_member_id(s(member_id))
        .with_protocol_type(s(protocol_type))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(SUBSCRIBE_T)),
        ])
        .into()
}

pub fn sync_request(
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &[u8])],
) -> RequestKind {
    let mut request = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    if version >= 5 {
        request.protocol_type = Some(s("consumer"));
        request.protocol_name = Some(s("range"));
    }
    request.into()
}

/// OffsetCommit of `(topic, partition, offset)`s, the partitions of a topic together; each
/// with the metadata `meta-{offset}` if `with_metadata`.
pub fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
    with_metadata: bool,
) -> OffsetCommitRequest {
    let mut topics: Vec<offset_commit_request::OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset);
        if with_metadata {
            p.committed_metadata = Some(s(&format!("meta-{offset}")));
        }
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(topics)
}

/// AddPartitionsToTxn's topics for (topic, partition) pairs, in order.
pub fn txn_topics(
    partitions: &[(&str, i32)],
) -> Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> {
    let mut topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(*partition),
            None => topics.push(
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    topics
}
