//! Controller validation through a real single-voter MetaNode.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::common;

use std::collections::BTreeMap;

use common::*;
use shoal_meta::{
    AlterConfigOp, AlterConfigOpType, AlterPartitionRequest, AlterTopicConfigs, BrokerError,
    ControllerError, CreatePartitions, CreateTopic, IsrMember, MetaConfig, MetaNode, TopicRef,
};
use uuid::Uuid;

fn set(name: &str, value: &str) -> AlterConfigOp {
    AlterConfigOp {
        name: name.into(),
        op: AlterConfigOpType::Set,
        value: Some(value.into()),
    }
}

fn alter(topic: &str, ops: Vec<AlterConfigOp>) -> Vec<AlterTopicConfigs> {
    vec![AlterTopicConfigs {
        topic: topic.into(),
        ops,
    }]
}

#[tokio::test]
async fn create_topics_happy_path_uses_defaults_and_places_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = MetaConfig::new(1, dir.path().join("meta"));
    cfg.broker_defaults = configs(&[("num.partitions", "4"), ("default.replication.factor", "2")]);
    let node = MetaNode::start(cfg).await.unwrap();
    let _brokers = register_brokers(&node, 3).await;

    let plain = CreateTopic {
        name: "defaults".into(),
        ..Default::default()
    };
    let wire_defaults = CreateTopic {
        name: "minus-one".into(),
        num_partitions: Some(-1),
        replication_factor: Some(-1),
        ..Default::default()
    };
    let r = node
        .client()
        .create_topics(vec![plain, wire_defaults], false)
        .await;
    let created = r.results[0].as_ref().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (4, 2));
    assert!(r.results[1].is_ok());
    let image = node
        .wait_for_applied(r.log_index.unwrap(), 1000)
        .await
        .unwrap();
    let topic = image.topic(&created.topic_id).unwrap();
    assert_eq!(topic.name, "defaults");
    for (i, p) in topic.partitions.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert_eq!(p.replicas.len(), 2);
        assert_ne!(p.replicas[0], p.replicas[1]);
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
    }
    // Both topics in one entry: the log index is the same for the whole call.
    assert_eq!(image.topics.len(), 2);
    node.shutdown().await.unwrap();
}

/// `broker.rack` reaches placement: with two racks, every partition of a new topic (and every
/// added partition) has a replica in each, where rack-unaware placement puts some partitions on
/// two brokers of one rack.
#[tokio::test]
async fn new_replicas_span_the_racks_of_the_registered_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetaNode::start(MetaConfig::new(1, dir.path().join("meta")))
        .await
        .unwrap();
    let racks = [(1, "east"), (2, "east"), (3, "west"), (4, "west")];
    let mut brokers = Vec::new();
    for (id, rack) in racks {
        brokers.push(live_broker_in_rack(&node, id, Some(rack), 250).await);
    }
    let rack_of: BTreeMap<i32, &str> = racks.into_iter().collect();

    let r = node
        .client()
        .create_topics(vec![topic("racked", 8, 2)], false)
        .await;
    let created = r.results[0].as_ref().unwrap();
    let grown = node
        .client()
        .create_partitions(
            vec![CreatePartitions {
                topic: "racked".into(),
                new_total_count: 12,
                assignments: None,
            }],
            false,
        )
        .await;
    assert!(grown.results[0].is_ok(), "{:?}", grown.results[0]);
    let image = node
        .wait_for_applied(grown.log_index.unwrap(), 1000)
        .await
        .unwrap();
    let partitions = &image.topic(&created.topic_id).unwrap().partitions;
    assert_eq!(partitions.len(), 12);
    for p in partitions {
        let mut spanned: Vec<&str> = p.replicas.iter().map(|b| rack_of[b]).collect();
        spanned.sort_unstable();
        assert_eq!(
            spanned,
            ["east", "west"],
            "partition {}: {:?}",
            p.partition,
            p.replicas
        );
    }
    drop(brokers);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn topic_already_exists_and_concurrent_creates() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 1).await;
    let c = node.client();

    let first = c.create_topics(vec![topic("a", 1, 1)], false).await;
    assert!(first.results[0].is_ok());
    let second = c.create_topics(vec![topic("a", 2, 1)], false).await;
    assert_eq!(
        second.results[0],
        Err(ControllerError::TopicAlreadyExists("a".into()))
    );
    assert_eq!(second.log_index, None);

    // Many concurrent creates of one name: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = node.client();
        tasks.push(tokio::spawn(async move {
            c.create_topics(vec![topic("race", 1, 1)], false).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match &t.await.unwrap().results[0] {
            Ok(_) => ok += 1,
            Err(ControllerError::TopicAlreadyExists(name)) => assert_eq!(name, "race"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);

    // Duplicates inside one request are an invalid request, for every copy.
    let dup = c
        .create_topics(
            vec![topic("d", 1, 1), topic("d", 1, 1), topic("e", 1, 1)],
            false,
        )
        .await;
    assert!(matches!(
        dup.results[0],
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(matches!(
        dup.results[1],
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(dup.results[2].is_ok());

    // Names that differ only in '.' vs '_' collide.
    let collide = c
        .create_topics(vec![topic("x.y", 1, 1), topic("x_y", 1, 1)], false)
        .await;
    assert!(collide.results[0].is_ok());
    match &collide.results[1] {
        Err(ControllerError::InvalidTopic(msg)) => assert!(msg.contains("collides"), "{msg}"),
        other => panic!("{other:?}"),
    }
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_names_configs_partitions_and_replication() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 2).await;
    let c = node.client();
    let before = node.image();

    let mut bad_config = topic("cfg", 1, 1);
    bad_config.configs = configs(&[("retention.ms", "-5")]);
    let mut unknown_config = topic("cfg2", 1, 1);
    unknown_config.configs = configs(&[("retention.hours", "5")]);
    let mut both = topic("both", 1, 1);
    both.assignments = Some(BTreeMap::from([(0, vec![1])]));
    let r = c
        .create_topics(
            vec![
                topic("", 1, 1),
                topic("..", 1, 1),
                topic("bad name", 1, 1),
                topic(&"x".repeat(250), 1, 1),
                bad_config,
                unknown_config,
                topic("zero", 0, 1),
                topic("neg-rf", 1, 0),
                topic("big-rf", 1, 3),
                topic("huge", 1_000_000, 1),
                both,
            ],
            false,
        )
        .await;
    let errs: Vec<_> = r
        .results
        .iter()
        .map(|r| r.as_ref().unwrap_err().clone())
        .collect();
    for e in &errs[0..4] {
        assert!(matches!(e, ControllerError::InvalidTopic(_)), "{e:?}");
    }
    match &errs[4] {
        ControllerError::InvalidConfig(m) => assert!(m.contains("retention.ms"), "{m}"),
        e => panic!("{e:?}"),
    }
    match &errs[5] {
        ControllerError::InvalidConfig(m) => assert!(m.contains("retention.hours"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert!(
        matches!(errs[6], ControllerError::InvalidPartitions(_)),
        "{:?}",
        errs[6]
    );
    assert!(
        matches!(errs[7], ControllerError::InvalidReplicationFactor(_)),
        "{:?}",
        errs[7]
    );
    match &errs[8] {
        ControllerError::InvalidReplicationFactor(m) => assert!(m.contains("only 2"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert!(
        matches!(errs[9], ControllerError::InvalidPartitions(_)),
        "{:?}",
        errs[9]
    );
    assert!(
        matches!(errs[10], ControllerError::InvalidRequest(_)),
        "{:?}",
        errs[10]
    );
    assert_eq!(r.log_index, None);
    assert_eq!(*node.image(), *before, "failed creates changed the image");
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn manual_assignments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 3).await;
    let c = node.client();
    let manual = |name: &str, a: Vec<(i32, Vec<i32>)>| CreateTopic {
        name: name.into(),
        assignments: Some(a.into_iter().collect()),
        ..Default::default()
    };
    let r = c
        .create_topics(
            vec![
                manual("ok", vec![(0, vec![3, 1]), (1, vec![2, 3])]),
                manual("gap", vec![(0, vec![1]), (2, vec![2])]),
                manual("unknown-broker", vec![(0, vec![1, 9])]),
                manual("dup-broker", vec![(0, vec![1, 1])]),
                manual("uneven", vec![(0, vec![1, 2]), (1, vec![1])]),
            ],
            false,
        )
        .await;
    let ok = r.results[0].as_ref().unwrap();
    assert_eq!((ok.num_partitions, ok.replication_factor), (2, 2));
    for e in &r.results[1..] {
        assert!(
            matches!(e, Err(ControllerError::InvalidReplicaAssignment(_))),
            "{e:?}"
        );
    }
    let image = node.image();
    let t = image.topic_by_name("ok").unwrap();
    assert_eq!(t.partitions[0].replicas, vec![3, 1]);
    assert_eq!(t.partitions[0].leader, 3);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 2).await;
    let c = node.client();
    assert!(
        c.create_topics(vec![topic("base", 1, 2)], false)
            .await
            .results[0]
            .is_ok()
    );
    let before = node.image();

    let r = c
        .create_topics(vec![topic("v", 3, 2), topic("base", 1, 1)], true)
        .await;
    assert_eq!(r.results[0].as_ref().unwrap().num_partitions, 3);
    assert!(matches!(
        r.results[1],
        Err(ControllerError::TopicAlreadyExists(_))
    ));
    assert_eq!(r.log_index, None);

    let p = c
        .create_partitions(
            vec![CreatePartitions {
                topic: "base".into(),
                new_total_count: 4,
                assignments: None,
            }],
            true,
        )
        .await;
    assert_eq!(p.results[0], Ok(4));
    let a = c
        .incremental_alter_configs(alter("base", vec![set("retention.ms", "1")]), true)
        .await;
    assert_eq!(a.results[0], Ok(()));
    let bad = c
        .incremental_alter_configs(alter("base", vec![set("retention.ms", "x")]), true)
        .await;
    assert!(matches!(
        bad.results[0],
        Err(ControllerError::InvalidConfig(_))
    ));

    assert_eq!(*node.image(), *before);
    assert_eq!(
        node.raft_metrics().await.last_log_index,
        Some(before.last_applied_index)
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_partitions_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 3).await;
    let c = node.client();
    assert!(c.create_topics(vec![topic("p", 3, 2)], false).await.results[0].is_ok());
    let cp = |n: i32, a: Option<Vec<Vec<i32>>>| CreatePartitions {
        topic: "p".into(),
        new_total_count: n,
        assignments: a,
    };
    let r = c.create_partitions(vec![cp(2, None)], false).await;
    match &r.results[0] {
        Err(ControllerError::InvalidPartitions(m)) => assert!(m.contains("higher"), "{m}"),
        e => panic!("{e:?}"),
    }
    let r = c.create_partitions(vec![cp(3, None)], false).await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidPartitions(_))
    ));
    let r = c
        .create_partitions(vec![cp(5, Some(vec![vec![1, 2]]))], false)
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    let r = c
        .create_partitions(vec![cp(4, Some(vec![vec![1]]))], false)
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    let missing = CreatePartitions {
        topic: "nope".into(),
        new_total_count: 2,
        assignments: None,
    };
    let r = c.create_partitions(vec![missing], false).await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));

    let r = c
        .create_partitions(vec![cp(5, Some(vec![vec![3, 1], vec![2, 3]]))], false)
        .await;
    assert_eq!(r.results[0], Ok(5));
    let r = c.create_partitions(vec![cp(7, None)], false).await;
    assert_eq!(r.results[0], Ok(7));
    let image = node.image();
    let t = image.topic_by_name("p").unwrap();
    assert_eq!(t.partitions.len(), 7);
    assert_eq!(t.partitions[3].replicas, vec![3, 1]);
    assert!(t.partitions.iter().all(|p| p.replicas.len() == 2));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn delete_topics_by_name_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 1).await;
    let c = node.client();
    let r = c
        .create_topics(vec![topic("a", 1, 1), topic("b", 1, 1)], false)
        .await;
    let b_id = r.results[1].as_ref().unwrap().topic_id;

    let r = c
        .delete_topics(vec![
            TopicRef::Name("a".into()),
            TopicRef::Id(b_id),
            TopicRef::Name("missing".into()),
            TopicRef::Id(Uuid::from_u128(42)),
        ])
        .await;
    assert!(r.results[0].is_ok());
    assert_eq!(r.results[1], Ok(b_id));
    assert!(matches!(
        r.results[2],
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    assert_eq!(
        r.results[3],
        Err(ControllerError::UnknownTopicId(Uuid::from_u128(42)))
    );
    assert!(node.image().topics.is_empty());

    // A deleted name can be created again, with a new id.
    let again = c.create_topics(vec![topic("b", 1, 1)], false).await;
    assert_ne!(again.results[0].as_ref().unwrap().topic_id, b_id);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn incremental_alter_configs_ops() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let _brokers = register_brokers(&node, 1).await;
    let c = node.client();
    assert!(c.create_topics(vec![topic("t", 1, 1)], false).await.results[0].is_ok());
    let op = |name: &str, op, value: Option<&str>| AlterConfigOp {
        name: name.into(),
        op,
        value: value.map(str::to_string),
    };
    let cfg = || node.image().topic_by_name("t").unwrap().configs.clone();

    let r = c
        .incremental_alter_configs(
            alter(
                "t",
                vec![
                    set("retention.ms", "100"),
                    op("cleanup.policy", AlterConfigOpType::Append, Some("compact")),
                ],
            ),
            false,
        )
        .await;
    assert_eq!(r.results[0], Ok(()));
    assert_eq!(
        cfg(),
        configs(&[
            ("cleanup.policy", "delete,compact"),
            ("retention.ms", "100")
        ])
    );

    let r = c
        .incremental_alter_configs(
            alter(
                "t",
                vec![
                    op(
                        "cleanup.policy",
                        AlterConfigOpType::Subtract,
                        Some("delete"),
                    ),
                    op("retention.ms", AlterConfigOpType::Delete, None),
                ],
            ),
            false,
        )
        .await;
    assert_eq!(r.results[0], Ok(()));
    assert_eq!(cfg(), configs(&[("cleanup.policy", "compact")]));

    // All or nothing per topic: one bad op rejects the others.
    let r = c
        .incremental_alter_configs(
            alter("t", vec![set("segment.ms", "5"), set("segment.bytes", "1")]),
            false,
        )
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidConfig(_))
    ));
    let r = c
        .incremental_alter_configs(
            alter(
                "t",
                vec![op("retention.ms", AlterConfigOpType::Append, Some("1"))],
            ),
            false,
        )
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidConfig(_))
    ));
    let r = c
        .incremental_alter_configs(
            alter(
                "t",
                vec![set("retention.ms", "1"), set("retention.ms", "2")],
            ),
            false,
        )
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidRequest(_))
    ));
    let r = c
        .incremental_alter_configs(
            alter("t", vec![op("retention.ms", AlterConfigOpType::Set, None)]),
            false,
        )
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::InvalidRequest(_))
    ));
    let r = c
        .incremental_alter_configs(alter("nope", vec![set("retention.ms", "1")]), false)
        .await;
    assert!(matches!(
        r.results[0],
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    assert_eq!(cfg(), configs(&[("cleanup.policy", "compact")]));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn registration_is_idempotent_per_incarnation() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let c = node.client();
    let first = c.register(broker(1)).await.unwrap();
    let retry = c.register(broker(1)).await.unwrap();
    assert_eq!(first.broker_epoch, retry.broker_epoch);
    let reg = node.image().brokers[&1].clone();
    assert!(reg.fenced, "a registration starts fenced");
    assert_eq!(reg.broker_epoch, first.broker_epoch);
    let caught_up = node.image().last_applied_index;
    let reply = common::heartbeat(&c, 1, first.broker_epoch, caught_up)
        .await
        .unwrap();
    assert!(!reply.fenced);
    node.wait_for_applied(reply.log_index.unwrap(), 5_000)
        .await
        .unwrap();
    assert!(!node.image().brokers[&1].fenced);

    // A new incarnation (a restarted process) waits out the old one's session, then replaces it.
    let restarted = common::live_broker(&node, 1, 100).await;
    assert!(restarted.broker_epoch() > first.broker_epoch);
    let reg = node.image().brokers[&1].clone();
    assert_eq!(reg.incarnation_id, restarted.incarnation_id());
    assert!(!reg.fenced);

    let mut bad = broker(2);
    bad.listeners.clear();
    assert!(matches!(
        c.register(bad).await,
        Err(BrokerError::Controller(ControllerError::InvalidRequest(_)))
    ));
    let mut neg = broker(3);
    neg.broker_id = -1;
    assert!(matches!(
        c.register(neg).await,
        Err(BrokerError::Controller(ControllerError::InvalidRequest(_)))
    ));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_after_shutdown_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let c = node.client();
    node.shutdown().await.unwrap();
    let r = c.create_topics(vec![topic("late", 1, 1)], false).await;
    assert!(
        matches!(r.results[0], Err(ControllerError::Internal(_))),
        "{:?}",
        r.results
    );
}

#[tokio::test]
async fn alter_partition_changes_the_isr_only_at_the_current_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let brokers = register_brokers(&node, 3).await;
    let c = node.client();
    let created = c.create_topics(vec![topic("isr", 1, 3)], false).await;
    let topic_id = created.results[0].as_ref().unwrap().topic_id;
    node.wait_for_applied(created.log_index.unwrap(), 5_000)
        .await
        .unwrap();
    let p = node.image().topic(&topic_id).unwrap().partitions[0].clone();
    let leader = p.leader;
    let epoch_of = |id: i32| brokers[(id - 1) as usize].broker_epoch();
    let member = |id: i32| IsrMember {
        broker_id: id,
        broker_epoch: Some(epoch_of(id)),
    };
    let follower = *p.replicas.iter().find(|r| **r != leader).unwrap();
    let request = |isr: Vec<IsrMember>, partition_epoch: i32| AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: epoch_of(leader),
        topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch,
        new_isr: isr,
    };
    let timeout = std::time::Duration::from_secs(5);

    // Shrink: the follower leaves; committed, epochs as Kafka's.
    let shrunk: Vec<IsrMember> = p
        .isr
        .iter()
        .filter(|id| **id != follower)
        .map(|id| member(*id))
        .collect();
    let altered = c
        .alter_partition(request(shrunk, p.partition_epoch), timeout)
        .await
        .unwrap();
    assert!(!altered.isr.contains(&follower));
    assert_eq!(altered.partition_epoch, p.partition_epoch + 1);
    assert_eq!(altered.leader_epoch, p.leader_epoch);
    let image = node
        .wait_for_applied(altered.log_index.unwrap(), 5_000)
        .await
        .unwrap();
    assert_eq!(
        image.topic(&topic_id).unwrap().partitions[0].isr,
        altered.isr
    );

    // The same proposal again is based on an old partition epoch: refused, nothing changes.
    let stale = c
        .alter_partition(request(vec![member(leader)], p.partition_epoch), timeout)
        .await;
    assert!(
        matches!(stale, Err(BrokerError::InvalidUpdateVersion { .. })),
        "{stale:?}"
    );
    // Expand back at the current epoch.
    let all: Vec<IsrMember> = p.replicas.iter().map(|id| member(*id)).collect();
    let altered = c
        .alter_partition(request(all, altered.partition_epoch), timeout)
        .await
        .unwrap();
    assert_eq!(altered.isr, p.replicas);
    node.shutdown().await.unwrap();
}
