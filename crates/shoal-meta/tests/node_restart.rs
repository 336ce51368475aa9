//! MetaNode lifecycle: start-up time, restart from disk, snapshots, identity checks.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::time::Instant;

use common::*;
use openraft::StorageHelper;
use shoal_meta::node::SLED_DIR;
use shoal_meta::raft::log_store::SledLogStore;
use shoal_meta::raft::state_machine::MetaStateMachine;
use shoal_meta::{
    AlterConfigOp, AlterConfigOpType, AlterTopicConfigs, CreatePartitions, MetaError, MetaNode,
};

#[tokio::test]
async fn starts_fast_as_leader_of_a_fresh_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let node = start(dir.path()).await;
    let elapsed_ms = started.elapsed().as_millis();
    assert!(elapsed_ms < 1000, "start took {elapsed_ms} ms");
    assert_eq!(node.leader_id(), Some(1));
    assert_eq!(node.cluster_id().len(), 22);
    assert_eq!(node.image().cluster_id, node.cluster_id());
    let status = node.raft_metrics().await;
    assert_eq!(status.state, "Leader");
    assert_eq!(status.voters, vec![1]);
    assert!(status.committed_index.is_some());
    node.shutdown().await.unwrap();

    // The restart is fast too.
    let started = Instant::now();
    let node = start(dir.path()).await;
    let elapsed_ms = started.elapsed().as_millis();
    assert!(elapsed_ms < 1000, "restart took {elapsed_ms} ms");
    assert_eq!(node.leader_id(), Some(1));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_rebuilds_the_identical_image() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let cluster_id = node.cluster_id().to_string();
    let _brokers = register_brokers(&node, 3).await;
    let controller = node.client();

    let mut orders = topic("orders", 6, 3);
    orders.configs = configs(&[("retention.ms", "3600000"), ("cleanup.policy", "compact")]);
    let created = controller
        .create_topics(
            vec![orders, topic("payments", 2, 2), topic("gone", 1, 1)],
            false,
        )
        .await;
    assert!(
        created.results.iter().all(Result::is_ok),
        "{:?}",
        created.results
    );

    let grown = controller
        .create_partitions(
            vec![CreatePartitions {
                topic: "payments".into(),
                new_total_count: 5,
                assignments: None,
            }],
            false,
        )
        .await;
    assert!(grown.results[0].is_ok(), "{:?}", grown.results);
    let altered = controller
        .incremental_alter_configs(
            vec![AlterTopicConfigs {
                topic: "orders".into(),
                ops: vec![
                    AlterConfigOp {
                        name: "cleanup.policy".into(),
                        op: AlterConfigOpType::Append,
                        value: Some("delete".into()),
                    },
                    AlterConfigOp {
                        name: "retention.ms".into(),
                        op: AlterConfigOpType::Delete,
                        value: None,
                    },
                ],
            }],
            false,
        )
        .await;
    assert!(altered.results[0].is_ok(), "{:?}", altered.results);
    let deleted = controller
        .delete_topics(vec![shoal_meta::TopicRef::Name("gone".into())])
        .await;
    assert!(deleted.results[0].is_ok());

    let before = node.image();
    assert_eq!(before.topics.len(), 2);
    assert_eq!(
        before.topic_by_name("payments").unwrap().partitions.len(),
        5
    );
    let orders = before.topic_by_name("orders").unwrap();
    assert_eq!(
        orders.configs,
        configs(&[("cleanup.policy", "compact,delete")])
    );
    assert_eq!(before.unfenced_broker_ids(), vec![1, 2, 3]);
    node.shutdown().await.unwrap();
    drop(node);
    drop(controller);

    // Storage alone (no election, no re-commit by a new leader) restores the image: the last
    // snapshot plus the entries up to the saved committed index.
    {
        let db = open_released_sled(&dir.path().join("meta").join(SLED_DIR));
        let mut log = SledLogStore::open(&db).unwrap();
        let (mut sm, images) = MetaStateMachine::open(&db, &cluster_id).unwrap();
        StorageHelper::new(&mut log, &mut sm)
            .get_initial_state()
            .await
            .unwrap();
        assert_eq!(
            *images.borrow(),
            before,
            "committed entries were not re-applied"
        );
    }

    let node = start(dir.path()).await;
    assert_eq!(node.cluster_id(), cluster_id);
    let after = node.image();
    assert!(after.last_applied_index >= before.last_applied_index);
    assert_eq!(content(&after), content(&before));

    // And it keeps working: names are still taken, new topics still go through Raft.
    let again = node
        .client()
        .create_topics(vec![topic("orders", 1, 1)], false)
        .await;
    assert!(matches!(
        again.results[0],
        Err(shoal_meta::ControllerError::TopicAlreadyExists(_))
    ));
    let more = node
        .client()
        .create_topics(vec![topic("more", 1, 1)], false)
        .await;
    assert!(more.results[0].is_ok());
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_after_snapshot_and_purge_rebuilds_the_identical_image() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 3).await;
    let controller = node.client();
    let created = controller
        .create_topics(vec![topic("t", 3, 2)], false)
        .await;
    assert!(created.results[0].is_ok());

    // One committed entry per call: 2100 config changes.
    let started = Instant::now();
    for i in 0..2100 {
        let r = controller
            .incremental_alter_configs(
                vec![AlterTopicConfigs {
                    topic: "t".into(),
                    ops: vec![AlterConfigOp {
                        name: "retention.ms".into(),
                        op: AlterConfigOpType::Set,
                        value: Some((1000 + i).to_string()),
                    }],
                }],
                false,
            )
            .await;
        assert!(r.results[0].is_ok(), "{:?}", r.results);
        if i % 10 == 0 {
            // Topics too, so the snapshot holds more than one kind of state.
            let name = format!("topic-{i}");
            let r = controller
                .create_topics(vec![topic(&name, 1, 1)], false)
                .await;
            assert!(r.results[0].is_ok(), "{:?}", r.results);
        }
    }
    eprintln!("2310 proposals took {} ms", started.elapsed().as_millis());

    let status = node.raft_metrics().await;
    assert!(status.last_log_index.unwrap() > 2000, "{status:?}");
    let snapshot_index = status.snapshot_index.expect("a snapshot was built");
    assert!(snapshot_index >= 1000, "{status:?}");
    let purged = status.purged_index.expect("logs were purged");
    assert!(purged > 0 && purged <= snapshot_index, "{status:?}");

    let before = node.image();
    assert_eq!(
        before.topic_by_name("t").unwrap().configs["retention.ms"],
        "3099"
    );
    assert_eq!(before.topics.len(), 211);
    node.shutdown().await.unwrap();
    drop(node);
    drop(controller);

    let started = Instant::now();
    let node = start(dir.path()).await;
    let elapsed_ms = started.elapsed().as_millis();
    assert!(elapsed_ms < 1000, "restart took {elapsed_ms} ms");
    let status = node.raft_metrics().await;
    assert!(status.purged_index.is_some(), "{status:?}");
    assert_eq!(content(&node.image()), content(&before));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_a_different_cluster_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let cluster_id = node.cluster_id().to_string();
    node.shutdown().await.unwrap();
    drop(node);

    let mut other = config(dir.path());
    other.cluster_id = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
    let err = MetaNode::start(other).await.err().expect("must refuse");
    assert!(matches!(err, MetaError::ClusterIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&cluster_id), "{err}");

    let mut same = config(dir.path());
    same.cluster_id = Some(cluster_id.clone());
    let node = MetaNode::start(same).await.unwrap();
    assert_eq!(node.cluster_id(), cluster_id);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn configured_cluster_id_is_used_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster_id = Some("MkU3OEVBNTcwNTJENDM2Qk".into());
    let node = MetaNode::start(cfg).await.unwrap();
    assert_eq!(node.cluster_id(), "MkU3OEVBNTcwNTJENDM2Qk");
    assert_eq!(node.image().cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_for_applied_and_subscribe_see_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 1).await;
    let mut images = node.subscribe();
    images.borrow_and_update();
    let r = node
        .client()
        .create_topics(vec![topic("x", 2, 1)], false)
        .await;
    let index = r.log_index.expect("committed");
    let image = node.wait_for_applied(index, 1000).await.unwrap();
    assert!(image.topic_by_name("x").is_some());
    assert!(images.has_changed().unwrap());
    assert!(images.borrow_and_update().topic_by_name("x").is_some());

    let err = node.wait_for_applied(index + 1000, 50).await.unwrap_err();
    assert!(matches!(err, MetaError::Timeout { .. }), "{err}");
    node.shutdown().await.unwrap();
}

/// Issue #15: 20 random bytes in sled's data file made the node start a NEW, EMPTY quorum and
/// serve it. Whatever the damage, a node that was initialized once either starts with its
/// metadata or refuses to start naming the store; it never bootstraps over it.
#[tokio::test]
async fn a_damaged_raft_store_is_refused_never_rebootstrapped() {
    // sled's data sits at the front of a mostly empty segment: dense offsets there, sparse after.
    let mut damages: Vec<String> = [
        0u64, 100, 300, 700, 1500, 3000, 6000, 12_000, 50_000, 262_000,
    ]
    .iter()
    .map(|offset| format!("garbage at byte {offset}"))
    .collect();
    damages.extend(
        [
            "db emptied",
            "store removed",
            "store replaced by an empty one",
        ]
        .map(String::from),
    );
    for damage in &damages {
        let dir = tempfile::tempdir().unwrap();
        let node = start(dir.path()).await;
        let _brokers = register_brokers(&node, 1).await;
        // Enough entries that the garbage lands in Raft log data.
        let topics: Vec<String> = (0..40).map(|i| format!("orders-{i}")).collect();
        for name in &topics {
            let created = node
                .client()
                .create_topics(vec![topic(name, 1, 1)], false)
                .await;
            assert!(created.results[0].is_ok(), "{:?}", created.results);
        }
        node.shutdown().await.unwrap();
        drop(node);
        let store = config(dir.path()).data_dir.join(SLED_DIR);
        // Wait until sled's flusher let go, then close it again.
        drop(common::open_released_sled(&store));

        let db = store.join("db");
        let len = std::fs::metadata(&db).unwrap().len();
        let must_refuse = match damage.as_str() {
            garbage if garbage.starts_with("garbage at ") => {
                use std::io::{Seek, Write};
                let offset: u64 = garbage["garbage at byte ".len()..].parse().unwrap();
                let offset = offset.min(len.saturating_sub(20));
                let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
                f.seek(std::io::SeekFrom::Start(offset)).unwrap();
                // Not all one byte: sled may read a run of one value as padding.
                let junk: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
                f.write_all(&junk).unwrap();
                false
            }
            "db emptied" => {
                std::fs::write(&db, b"").unwrap();
                true
            }
            "store removed" => {
                std::fs::remove_dir_all(&store).unwrap();
                true
            }
            _ => {
                // What sled made of the damaged file: a store that opens empty.
                std::fs::remove_dir_all(&store).unwrap();
                drop(common::open_released_sled(&store));
                true
            }
        };
        for attempt in 0..2 {
            match MetaNode::start(config(dir.path())).await {
                Ok(node) => {
                    let mut found: Vec<String> = node
                        .image()
                        .topics
                        .values()
                        .map(|t| t.name.clone())
                        .collect();
                    found.sort();
                    node.shutdown().await.unwrap();
                    assert!(!must_refuse, "{damage}: start {attempt} must be refused");
                    let mut expected = topics.clone();
                    expected.sort();
                    assert_eq!(
                        found, expected,
                        "{damage}: start {attempt} came up without its metadata"
                    );
                }
                Err(err) => {
                    let message = err.to_string();
                    assert!(
                        message.contains(&store.display().to_string()),
                        "{damage}: the error must name the store: {message}"
                    );
                }
            }
        }
    }
}
