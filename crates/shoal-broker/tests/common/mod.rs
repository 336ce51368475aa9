//! The test harness: one real node (metadata quorum and broker, logs in a temp dir) whose
//! Kafka handler is called directly, every response encoded at the requested version.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use shoal_broker::{AdvertisedListener, Broker, BrokerConfig, BrokerHandler, MetadataSource};
use shoal_kafka::{Handler, Reply, RequestContext};
use shoal_meta::{MetaConfig, MetaNode};
use uuid::Uuid;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

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
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
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

    /// A node whose broker settings are the harness defaults plus `extra`.
    pub async fn start_with(extra: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), extra).await
    }

    /// Shuts the node down cleanly and starts it again on the same data.
    pub async fn restart(self, extra: &[(&str, &str)]) -> Self {
        self.broker.shutdown().await;
        self.meta.shutdown().await.unwrap();
        let Harness { _dir: dir, .. } = self;
        Self::start_in(dir, extra).await
    }

    pub async fn stop(&self) {
        self.broker.shutdown().await;
        self.meta.shutdown().await.unwrap();
    }

    async fn start_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Self {
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
            replication_bind: "127.0.0.1:0".parse().unwrap(),
            replication_advertised: None,
            replica_lag_time_max_ms: 30_000,
            log_cleaner_backoff_ms: 15_000,
            log_dir_min_free_bytes: 0,
            settings,
        };
        let source = MetadataSource {
            images: meta.subscribe(),
            controller: meta.client(),
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
        self.call_as("User:ANONYMOUS", api_key, version, request)
            .await
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
        let created = self
            .meta
            .client()
            .create_topics(
                vec![shoal_meta::CreateTopic {
                    name: name.into(),
                    num_partitions: Some(partitions),
                    replication_factor: Some(1),
                    assignments: None,
                    configs: BTreeMap::new(),
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

    /// FindCoordinator until `__consumer_offsets` exists, then OffsetFetch until its
    /// partitions are loaded.
    pub async fn wait_for_coordinator(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no coordinator within 20 s"
            );
            let Some(ResponseKind::FindCoordinator(found)) = self
                .call(
                    ApiKey::FindCoordinator,
                    3,
                    FindCoordinatorRequest::default()
                        .with_key(s("probe"))
                        .into(),
                )
                .await
            else {
                panic!("no FindCoordinator response")
            };
            if found.error_code == 0 && self.every_offsets_partition_loaded().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// OffsetFetch answers for a group on every `__consumer_offsets` partition: every shard
    /// has loaded (a test's group may hash to any of them).
    async fn every_offsets_partition_loaded(&self) -> bool {
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
            if self.offset_fetch(7, group).await.error_code != 0 {
                return false;
            }
        }
        true
    }

    pub async fn offset_fetch(&self, version: i16, group: &str) -> OffsetFetchResponse {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1]),
            ]));
        match self
            .call(ApiKey::OffsetFetch, version, request.into())
            .await
        {
            Some(ResponseKind::OffsetFetch(r)) => r,
            other => panic!("OffsetFetch: {other:?}"),
        }
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
        let mut topics: Vec<offset_commit_request::OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(s(&format!("meta-{offset}"))));
            match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member_id))
            .with_topics(topics);
        match self
            .call(ApiKey::OffsetCommit, version, request.into())
            .await
        {
            Some(ResponseKind::OffsetCommit(r)) => r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
            other => panic!("OffsetCommit: {other:?}"),
        }
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
