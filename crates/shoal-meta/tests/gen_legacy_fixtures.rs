//! ONE-OFF generator of the legacy JSON fixtures (run once with the pre-versioning code).
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use shoal_meta::raft::types::{MetaSnapshotMeta, MetaStoredMembership, TypeConfig};
use shoal_meta::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use uuid::Uuid;

fn records() -> Vec<MetadataRecord> {
    let t = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    vec![
        MetadataRecord::RegisterBroker {
            broker_id: 3,
            incarnation_id: Uuid::from_u128(0xfeed_beef),
            broker_epoch: 17,
            listeners: vec![
                Endpoint { name: "INTERNAL".into(), host: "10.0.0.3".into(), port: 19092 },
                Endpoint { name: "EXTERNAL".into(), host: "broker3.example.com".into(), port: 9092 },
            ],
            rack: Some("rack-b".into()),
        },
        MetadataRecord::FenceBroker { broker_id: 3, broker_epoch: 17 },
        MetadataRecord::UnfenceBroker { broker_id: 3, broker_epoch: 17 },
        MetadataRecord::Topic { name: "orders".into(), topic_id: t },
        MetadataRecord::Partition { topic_id: t, partition: 2, replicas: vec![3, 1, 2], isr: vec![3, 1], leader: 3, leader_epoch: 5, partition_epoch: 9 },
        MetadataRecord::PartitionChange { topic_id: t, partition: 2, leader: Some(1), isr: Some(vec![1, 2]), replicas: None },
        MetadataRecord::RemoveTopic { topic_id: t },
        MetadataRecord::TopicConfig { topic_id: t, name: "retention.ms".into(), value: Some("3600000".into()) },
        MetadataRecord::ProducerIds { next_producer_id_block_start: 5000 },
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[tokio::test]
async fn generate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_json");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, record) in records().into_iter().enumerate() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(4, 2), 100 + i as u64),
            payload: EntryPayload::Normal(vec![record.clone()]),
        };
        write(&dir, &format!("entry_{}.json", record.kind()), &serde_json::to_vec(&entry).unwrap());
    }
    let multi = Entry::<TypeConfig> { log_id: LogId::new(CommittedLeaderId::new(4, 2), 200), payload: EntryPayload::Normal(records()) };
    write(&dir, "entry_all_records.json", &serde_json::to_vec(&multi).unwrap());
    let blank = Entry::<TypeConfig> { log_id: LogId::new(CommittedLeaderId::new(4, 2), 201), payload: EntryPayload::Blank };
    write(&dir, "entry_blank.json", &serde_json::to_vec(&blank).unwrap());
    let membership: Membership<u64, openraft::BasicNode> = Membership::new(
        vec![BTreeSet::from([1, 2, 3])],
        BTreeMap::from([(1, openraft::BasicNode::new("127.0.0.1:9093")), (2, openraft::BasicNode::new("127.0.0.1:9193")), (3, openraft::BasicNode::new("127.0.0.1:9293"))]),
    );
    let m = Entry::<TypeConfig> { log_id: LogId::new(CommittedLeaderId::new(1, 1), 1), payload: EntryPayload::Membership(membership.clone()) };
    write(&dir, "entry_membership.json", &serde_json::to_vec(&m).unwrap());
    write(&dir, "state_vote.json", &serde_json::to_vec(&Vote::<u64>::new_committed(4, 2)).unwrap());
    write(&dir, "state_committed.json", &serde_json::to_vec(&Some(LogId::new(CommittedLeaderId::new(4, 2), 201u64))).unwrap());
    write(&dir, "state_last_purged.json", &serde_json::to_vec(&LogId::new(CommittedLeaderId::new(3, 1), 90u64)).unwrap());

    // A non-trivial image.
    let mut image = MetadataImage::empty("MkU3OEVBNTcwNTJENDM2Qk");
    let t1 = Uuid::from_u128(0x1111);
    let t2 = Uuid::from_u128(0x2222);
    let mut batch = vec![];
    for b in 1..=3 {
        batch.push(MetadataRecord::RegisterBroker {
            broker_id: b,
            incarnation_id: Uuid::from_u128(0xb0b0_0000 + b as u128),
            broker_epoch: 10 + b as i64,
            listeners: vec![Endpoint { name: "PLAINTEXT".into(), host: format!("broker{b}"), port: 9092 }],
            rack: if b == 2 { None } else { Some(format!("rack-{b}")) },
        });
    }
    batch.push(MetadataRecord::UnfenceBroker { broker_id: 1, broker_epoch: 11 });
    batch.push(MetadataRecord::UnfenceBroker { broker_id: 2, broker_epoch: 12 });
    batch.push(MetadataRecord::Topic { name: "orders".into(), topic_id: t1 });
    batch.push(MetadataRecord::Partition { topic_id: t1, partition: 0, replicas: vec![1, 2, 3], isr: vec![1, 2], leader: 1, leader_epoch: 3, partition_epoch: 7 });
    batch.push(MetadataRecord::Partition { topic_id: t1, partition: 1, replicas: vec![2, 3, 1], isr: vec![2], leader: 2, leader_epoch: 0, partition_epoch: 1 });
    batch.push(MetadataRecord::TopicConfig { topic_id: t1, name: "cleanup.policy".into(), value: Some("compact".into()) });
    batch.push(MetadataRecord::TopicConfig { topic_id: t1, name: "retention.ms".into(), value: Some("3600000".into()) });
    batch.push(MetadataRecord::Topic { name: "payments".into(), topic_id: t2 });
    batch.push(MetadataRecord::Partition { topic_id: t2, partition: 0, replicas: vec![3], isr: vec![], leader: -1, leader_epoch: 4, partition_epoch: 4 });
    batch.push(MetadataRecord::ProducerIds { next_producer_id_block_start: 3000 });
    image.apply_batch(42, &batch);
    #[derive(serde::Serialize)]
    struct Borrowed<'a> { format_version: u32, image: &'a MetadataImage }
    write(&dir, "snapshot_v1.json", &serde_json::to_vec(&Borrowed { format_version: 1, image: &image }).unwrap());
    let meta = MetaSnapshotMeta {
        last_log_id: Some(LogId::new(CommittedLeaderId::new(4, 2), 42)),
        last_membership: MetaStoredMembership::new(Some(LogId::new(CommittedLeaderId::new(1, 1), 1)), membership),
        snapshot_id: "4-2-42".into(),
    };
    write(&dir, "snapshot_meta.json", &serde_json::to_vec(&meta).unwrap());
    write(&dir, "image.debug.txt", format!("{image:#?}").as_bytes());
}

#[tokio::test]
async fn generate_data_dir() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy_json/data_dir");
    let _ = std::fs::remove_dir_all(&out);
    let mut cfg = config(&out);
    cfg.cluster_id = Some("MkU3OEVBNTcwNTJENDM2Qk".into());
    let node = MetaNode::start(cfg).await.unwrap();
    let _brokers = register_brokers(&node, 3).await;
    let c = node.client();
    let mut orders = topic("orders", 3, 3);
    orders.configs = configs(&[("retention.ms", "3600000"), ("cleanup.policy", "compact")]);
    assert!(c.create_topics(vec![orders, topic("payments", 2, 2)], false).await.results.iter().all(Result::is_ok));
    c.allocate_producer_ids().await.unwrap();
    node.raft().trigger().snapshot().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // After the snapshot: more entries in the log.
    assert!(c.create_topics(vec![topic("after-snapshot", 1, 1)], false).await.results[0].is_ok());
    c.allocate_producer_ids().await.unwrap();
    let image = node.image();
    drop(_brokers);
    node.shutdown().await.unwrap();
    std::fs::write(out.join("image.debug.txt"), format!("{image:#?}")).unwrap();
    std::fs::write(out.join("status.txt"), format!("{:?}", node.raft_metrics().await)).unwrap();
}
