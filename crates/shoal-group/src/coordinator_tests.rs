//! The coordinator shell over an in-memory stand-in for the offsets partition: what it
//! writes is what a new coordinator rebuilds from, and failed writes are never reported as
//! stored. (The real log, replication and clients are exercised by tests/python.)

use std::sync::atomic::AtomicBool;

use super::*;

#[derive(Default)]
struct MemoryLog {
    records: Mutex<Vec<(Bytes, Option<Bytes>)>>,
    fail: AtomicBool,
}

impl OffsetsStorage for MemoryLog {
    fn append(
        &self,
        _partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<(), StorageError>> {
        let outcome = if self.fail.load(Ordering::SeqCst) {
            Err(StorageError::NotEnoughReplicas)
        } else {
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(records);
            Ok(())
        };
        Box::pin(async move { outcome })
    }
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        offsets_partitions: 1,
        group: GroupSettings {
            initial_rebalance_delay_ms: 50,
            max_size: 10,
        },
        ..CoordinatorConfig::default()
    }
}

async fn coordinator(log: &Arc<MemoryLog>) -> Arc<GroupCoordinator> {
    let c = GroupCoordinator::new(config(), Arc::clone(log) as Arc<dyn OffsetsStorage>);
    c.begin_load(0, 1).await;
    let mut replay = OffsetsReplay::new();
    for (key, value) in log.records.lock().unwrap().iter() {
        replay.apply(key, value.as_deref());
    }
    c.finish_load(0, 1, replay).await;
    c
}

fn offset(topic: &str, partition: i32, offset: i64) -> CommitOffset {
    CommitOffset {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 3,
        metadata: Some("m".into()),
        retention_ms: None,
    }
}

#[tokio::test]
async fn committed_offsets_survive_a_move_of_the_coordinator() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    let results = c
        .commit(
            "g",
            -1,
            "",
            None,
            vec![offset("t", 0, 10), offset("t", 1, 20)],
            true,
        )
        .await;
    assert_eq!(results, vec![GroupError::None; 2]);
    c.commit("g", -1, "", None, vec![offset("t", 0, 15)], true)
        .await;
    let long = "x".repeat(5_000);
    let too_large = CommitOffset {
        metadata: Some(long),
        ..offset("t", 2, 1)
    };
    assert_eq!(
        c.commit("g", -1, "", None, vec![too_large], true).await,
        vec![GroupError::OffsetMetadataTooLarge]
    );
    // Another broker becomes coordinator and reads the partition back.
    let moved = coordinator(&log).await;
    let fetched = moved.fetch_offsets("g", None).await.unwrap();
    let found: Vec<(i32, i64)> = fetched
        .iter()
        .map(|((_, p), v)| (*p, v.as_ref().unwrap().offset))
        .collect();
    assert_eq!(found, vec![(0, 15), (1, 20)]);
    let one = moved
        .fetch_offsets("g", Some(vec![("t".into(), 1), ("t".into(), 9)]))
        .await
        .unwrap();
    assert_eq!(one[0].1.as_ref().unwrap().leader_epoch, 3);
    assert!(one[1].1.is_none(), "no commit, no error");
    // Deleting the (empty) group tombstones everything; a reload finds nothing.
    assert_eq!(moved.delete_group("g").await, GroupError::None);
    assert_eq!(moved.delete_group("g").await, GroupError::GroupIdNotFound);
    let again = coordinator(&log).await;
    assert!(again.fetch_offsets("g", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_write_is_not_reported_as_stored() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    log.fail.store(true, Ordering::SeqCst);
    let results = c
        .commit("g", -1, "", None, vec![offset("t", 0, 10)], true)
        .await;
    assert_eq!(results, vec![GroupError::CoordinatorNotAvailable]);
    log.fail.store(false, Ordering::SeqCst);
    let fetched = c
        .fetch_offsets("g", Some(vec![("t".into(), 0)]))
        .await
        .unwrap();
    assert!(fetched[0].1.is_none());
}

#[tokio::test]
async fn a_group_rebalances_through_the_coordinator_and_reloads_stable() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    tokio::spawn(Arc::clone(&c).run_timers());
    let req = |member_id: &str| JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        require_known_member_id: true,
    };
    let first = c.join("g", req("")).await;
    assert_eq!(first.error, GroupError::MemberIdRequired);
    let joined = c.join("g", req(&first.member_id)).await;
    assert_eq!((joined.error, joined.generation_id), (GroupError::None, 1));
    assert_eq!(joined.leader, first.member_id);
    let synced = c
        .sync(
            "g",
            SyncRequest {
                generation_id: 1,
                member_id: first.member_id.clone(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: vec![(first.member_id.clone(), Bytes::from_static(b"asg"))],
            },
        )
        .await;
    assert_eq!(synced.error, GroupError::None);
    assert_eq!(synced.assignment, Bytes::from_static(b"asg"));
    assert_eq!(
        c.heartbeat("g", 1, &first.member_id, None).await,
        GroupError::None
    );
    assert_eq!(
        c.commit(
            "g",
            1,
            &first.member_id,
            None,
            vec![offset("t", 0, 5)],
            true
        )
        .await,
        vec![GroupError::None]
    );
    assert_eq!(c.delete_group("g").await, GroupError::NonEmptyGroup);
    let listed = c.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, GroupState::Stable);
    // The new coordinator sees the stored generation and assignment.
    let moved = coordinator(&log).await;
    let described = moved.describe("g").await;
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(described.members[0].assignment, Bytes::from_static(b"asg"));
    assert_eq!(
        moved.heartbeat("g", 1, &first.member_id, None).await,
        GroupError::None
    );
}

#[tokio::test]
async fn requests_for_partitions_not_here_or_loading_say_so() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    assert_eq!(
        c.heartbeat("g", 1, "m", None).await,
        GroupError::NotCoordinator
    );
    c.begin_load(0, 1).await;
    assert_eq!(
        c.heartbeat("g", 1, "m", None).await,
        GroupError::None,
        "heartbeats pass while loading"
    );
    assert_eq!(
        c.fetch_offsets("g", None).await,
        Err(GroupError::CoordinatorLoadInProgress)
    );
    c.finish_load(0, 1, OffsetsReplay::new()).await;
    assert_eq!(
        c.heartbeat("g", 1, "m", None).await,
        GroupError::UnknownMemberId
    );
    c.unload(0).await;
    assert_eq!(c.describe("g").await.error, GroupError::NotCoordinator);
    assert_eq!(
        c.join(
            "",
            JoinRequest {
                member_id: String::new(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![],
                require_known_member_id: false,
            }
        )
        .await
        .error,
        GroupError::InvalidGroupId
    );
}

#[tokio::test]
async fn offsets_of_deleted_topics_are_tombstoned() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.commit(
        "g",
        -1,
        "",
        None,
        vec![
            offset("gone", 0, 10),
            offset("gone", 1, 11),
            offset("kept", 0, 5),
        ],
        true,
    )
    .await;
    let deleted: std::collections::HashSet<String> = ["gone".to_string()].into();
    assert_eq!(c.delete_topic_offsets(&deleted).await, 2);
    let all = c.fetch_offsets("g", None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, ("kept".to_string(), 0));
    // The tombstones are in the log: a reload agrees.
    let reloaded = coordinator(&log).await;
    assert_eq!(reloaded.fetch_offsets("g", None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_load_does_not_drop_a_newer_one() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    c.begin_load(0, 1).await;
    c.begin_load(0, 2).await;
    c.abandon_load(0, 1).await;
    assert_eq!(c.loaded_partitions(), vec![(0, 2)]);
    c.abandon_load(0, 2).await;
    assert!(c.loaded_partitions().is_empty());
}

#[tokio::test]
async fn expired_offsets_and_then_their_empty_group_go() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(
        CoordinatorConfig {
            offsets_retention_ms: 0,
            ..config()
        },
        Arc::clone(&log) as Arc<dyn OffsetsStorage>,
    );
    c.begin_load(0, 1).await;
    c.finish_load(0, 1, OffsetsReplay::new()).await;
    c.commit("simple", -1, "", None, vec![offset("t", 0, 10)], true)
        .await;
    assert_eq!(c.expire_offsets().await, 1);
    assert!(c.fetch_offsets("simple", None).await.unwrap().is_empty());
    assert_eq!(
        c.delete_group("simple").await,
        GroupError::GroupIdNotFound,
        "the emptied group went too"
    );
    // Both tombstones are in the log: a reload has nothing.
    let reloaded = coordinator(&log).await;
    assert!(
        reloaded
            .fetch_offsets("simple", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(reloaded.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn offsets_within_retention_stay() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.commit("simple", -1, "", None, vec![offset("t", 0, 10)], true)
        .await;
    assert_eq!(c.expire_offsets().await, 0);
    assert_eq!(c.fetch_offsets("simple", None).await.unwrap().len(), 1);
}

/// OffsetCommit v2-v4's retention: that offset goes when its own time is up, the group's other
/// offsets stay under `offsets.retention.minutes`, and the expire time survives a reload.
#[tokio::test]
async fn an_offset_committed_with_a_retention_expires_on_its_own() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    let short = CommitOffset {
        retention_ms: Some(0),
        ..offset("t", 0, 10)
    };
    let long = CommitOffset {
        retention_ms: Some(3_600_000),
        ..offset("t", 1, 20)
    };
    c.commit(
        "simple",
        -1,
        "",
        None,
        vec![short, long, offset("t", 2, 30)],
        true,
    )
    .await;
    let moved = coordinator(&log).await;
    let stored = moved.fetch_offsets("simple", None).await.unwrap();
    let expiry: Vec<bool> = stored
        .iter()
        .map(|(_, v)| v.as_ref().unwrap().expire_timestamp_ms.is_some())
        .collect();
    assert_eq!(expiry, vec![true, true, false], "read back from the log");
    assert_eq!(moved.expire_offsets().await, 1);
    let left: Vec<i32> = moved
        .fetch_offsets("simple", None)
        .await
        .unwrap()
        .iter()
        .map(|((_, p), _)| *p)
        .collect();
    assert_eq!(left, vec![1, 2]);
}
