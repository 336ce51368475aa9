//! The coordinator shell over an in-memory stand-in for the offsets partition: what it
//! writes is what a new coordinator rebuilds from, and failed writes are never reported as
//! stored. (The real log, replication and clients are exercised by tests/python.)

use std::sync::atomic::AtomicBool;

use super::*;

/// One batch (of a transactional producer, or not) or one transaction marker.
enum Entry {
    Batch {
        producer: Option<TxnProducer>,
        records: Vec<(Bytes, Option<Bytes>)>,
    },
    Marker {
        producer_id: i64,
        commit: bool,
    },
}

impl Entry {
    fn len(&self) -> i64 {
        match self {
            Entry::Batch { records, .. } => records.len() as i64,
            Entry::Marker { .. } => 1,
        }
    }
}

/// The offsets partition: batches and markers at consecutive log offsets.
#[derive(Default)]
struct MemoryLog {
    entries: Mutex<Vec<Entry>>,
    fail: AtomicBool,
}

impl MemoryLog {
    fn push(&self, entry: Entry) -> i64 {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let base = entries.iter().map(Entry::len).sum();
        entries.push(entry);
        base
    }

    fn append_as(
        &self,
        producer: Option<TxnProducer>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
        let outcome = if self.fail.load(Ordering::SeqCst) {
            Err(StorageError::NotEnoughReplicas)
        } else {
            Ok(self.push(Entry::Batch { producer, records }))
        };
        Box::pin(async move { outcome })
    }

    /// A marker of `producer_id`, as the transaction coordinator writes it: its log offset.
    fn marker(&self, producer_id: i64, commit: bool) -> i64 {
        self.push(Entry::Marker {
            producer_id,
            commit,
        })
    }

    /// The partition read back, as the broker's loader feeds it.
    fn replay(&self) -> OffsetsReplay {
        let mut replay = OffsetsReplay::new();
        let mut at = 0;
        for entry in self.entries.lock().unwrap().iter() {
            match entry {
                Entry::Batch { producer, records } => {
                    match producer {
                        Some(p) => replay.begin_batch(p.producer_id, true),
                        None => replay.begin_batch(-1, false),
                    }
                    for (i, (key, value)) in records.iter().enumerate() {
                        replay.apply_at(at + i as i64, key, value.as_deref());
                    }
                }
                Entry::Marker {
                    producer_id,
                    commit,
                } => replay.end_txn(*producer_id, *commit),
            }
            at += entry.len();
        }
        replay
    }
}

impl OffsetsStorage for MemoryLog {
    fn append(
        &self,
        _partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
        self.append_as(None, records)
    }

    fn append_transactional(
        &self,
        _partition: i32,
        producer: TxnProducer,
        _verification: Option<u64>,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'static, Result<i64, StorageError>> {
        self.append_as(Some(producer), records)
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
    assert!(c.finish_load(0, 1, log.replay()).await);
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
    assert_eq!(listed[0].state, GroupState::Stable.name());
    // The new coordinator sees the stored generation and assignment.
    let moved = coordinator(&log).await;
    let described = moved.describe("g").await;
    assert_eq!(described.state, GroupState::Stable.name());
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

/// An authority the test flips.
struct Switch(std::sync::atomic::AtomicBool);

impl crate::Authority for Switch {
    fn holds(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn without_authority_the_coordinator_answers_nothing_from_memory() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    let switch = Arc::new(Switch(std::sync::atomic::AtomicBool::new(true)));
    c.set_authority(Arc::clone(&switch) as Arc<dyn crate::Authority>);
    let committed = c
        .commit("g", -1, "", None, vec![offset("t", 0, 10)], true)
        .await;
    assert_eq!(committed, vec![GroupError::None]);
    switch.0.store(false, std::sync::atomic::Ordering::SeqCst);
    // The shard is still loaded, yet nothing is answered or written from it.
    assert_eq!(
        c.fetch_offsets("g", None).await,
        Err(GroupError::NotCoordinator)
    );
    assert_eq!(
        c.commit("g", -1, "", None, vec![offset("t", 0, 11)], true)
            .await,
        vec![GroupError::NotCoordinator]
    );
    assert_eq!(c.describe("g").await.error, GroupError::NotCoordinator);
    assert_eq!(
        c.heartbeat("g", 1, "m", None).await,
        GroupError::NotCoordinator
    );
    switch.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let fetched = c.fetch_offsets("g", None).await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].1.as_ref().map(|v| v.offset), Some(10));
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

// ─── Transactional offsets ───────────────────────────────────────────────────────────────

const PRODUCER: TxnProducer = TxnProducer {
    producer_id: 7,
    producer_epoch: 0,
};

/// A TxnOffsetCommit of a producer that names no member (a plain `sendOffsetsToTransaction`).
fn txn(producer: TxnProducer) -> TxnCommit {
    TxnCommit {
        producer,
        verification: None,
        generation_id: -1,
        member_id: String::new(),
        instance_id: None,
    }
}

/// The committed offset of `t`-`partition`, and whether OffsetFetch with `require_stable`
/// answers UNSTABLE_OFFSET_COMMIT for it.
async fn seen(c: &GroupCoordinator, group: &str, partition: i32) -> (Option<i64>, bool) {
    let key = vec![("t".to_string(), partition)];
    let plain = c
        .offset_fetch(group, Some(key.clone()), false, None)
        .await
        .unwrap();
    let committed = plain[0].1.clone().unwrap().map(|v| v.offset);
    let stable = c.offset_fetch(group, Some(key), true, None).await.unwrap();
    let unstable = match &stable[0].1 {
        Err(e) => {
            assert_eq!(*e, GroupError::UnstableOffsetCommit);
            true
        }
        Ok(v) => {
            assert_eq!(v.as_ref().map(|v| v.offset), committed);
            false
        }
    };
    (committed, unstable)
}

#[tokio::test]
async fn transactional_offsets_are_invisible_until_the_commit_marker() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    assert_eq!(
        c.commit("g", -1, "", None, vec![offset("t", 0, 5)], true)
            .await,
        vec![GroupError::None]
    );
    let results = c
        .txn_commit(
            "g",
            txn(PRODUCER),
            vec![offset("t", 0, 10), offset("t", 1, 20)],
        )
        .await;
    assert_eq!(results, vec![GroupError::None; 2]);
    assert_eq!(
        seen(&c, "g", 0).await,
        (Some(5), true),
        "pending: not visible"
    );
    assert_eq!(seen(&c, "g", 1).await, (None, true));
    // Every committed offset: the pending-only partition is not listed, the other unstable.
    let all = c.offset_fetch("g", None, true, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1, Err(GroupError::UnstableOffsetCommit));
    // The transaction commits: its marker is written and reported.
    let marker = log.marker(PRODUCER.producer_id, true);
    c.complete_txn(0, PRODUCER.producer_id, true, marker).await;
    assert_eq!(seen(&c, "g", 0).await, (Some(10), false));
    assert_eq!(seen(&c, "g", 1).await, (Some(20), false));
    // A new coordinator reads the batch and its marker back to the same answer.
    let moved = coordinator(&log).await;
    assert_eq!(seen(&moved, "g", 0).await, (Some(10), false));
    assert_eq!(seen(&moved, "g", 1).await, (Some(20), false));
}

#[tokio::test]
async fn an_aborted_transaction_leaves_the_committed_offset() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.commit("g", -1, "", None, vec![offset("t", 0, 5)], true)
        .await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    let marker = log.marker(PRODUCER.producer_id, false);
    c.complete_txn(0, PRODUCER.producer_id, false, marker).await;
    assert_eq!(seen(&c, "g", 0).await, (Some(5), false));
    let moved = coordinator(&log).await;
    assert_eq!(seen(&moved, "g", 0).await, (Some(5), false));
}

#[tokio::test]
async fn a_plain_commit_written_after_the_transactional_one_wins() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    c.commit("g", -1, "", None, vec![offset("t", 0, 20)], true)
        .await;
    assert_eq!(seen(&c, "g", 0).await, (Some(20), true));
    let marker = log.marker(PRODUCER.producer_id, true);
    c.complete_txn(0, PRODUCER.producer_id, true, marker).await;
    assert_eq!(seen(&c, "g", 0).await, (Some(20), false));
    let moved = coordinator(&log).await;
    assert_eq!(seen(&moved, "g", 0).await, (Some(20), false));
}

#[tokio::test]
async fn undecided_offsets_stay_pending_across_a_reload() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    let moved = coordinator(&log).await;
    assert_eq!(seen(&moved, "g", 0).await, (None, true));
    assert!(
        moved
            .list()
            .await
            .unwrap()
            .iter()
            .any(|g| g.group_id == "g"),
        "the group exists"
    );
    // Another producer's marker decides nothing; this producer's does.
    let other = log.marker(99, true);
    moved.complete_txn(0, 99, true, other).await;
    assert_eq!(seen(&moved, "g", 0).await, (None, true));
    let marker = log.marker(PRODUCER.producer_id, true);
    moved
        .complete_txn(0, PRODUCER.producer_id, true, marker)
        .await;
    assert_eq!(seen(&moved, "g", 0).await, (Some(10), false));
}

#[tokio::test]
async fn a_marker_reported_during_the_load_is_applied_after_it() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    // The partition moves; the new leader reads it while the marker lands.
    let moved = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    moved.begin_load(0, 2).await;
    let replay = log.replay();
    let marker = log.marker(PRODUCER.producer_id, true);
    moved
        .complete_txn(0, PRODUCER.producer_id, true, marker)
        .await;
    assert!(moved.finish_load(0, 2, replay).await);
    assert_eq!(seen(&moved, "g", 0).await, (Some(10), false));
}

#[tokio::test]
async fn a_marker_only_decides_records_written_before_it() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    let first = log.marker(PRODUCER.producer_id, true);
    // The producer's next transaction commits offsets before the first marker is reported.
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 1, 30)])
        .await;
    c.complete_txn(0, PRODUCER.producer_id, true, first).await;
    assert_eq!(
        seen(&c, "g", 1).await,
        (None, true),
        "the next transaction's"
    );
    let second = log.marker(PRODUCER.producer_id, false);
    c.complete_txn(0, PRODUCER.producer_id, false, second).await;
    assert_eq!(seen(&c, "g", 1).await, (None, false));
}

#[tokio::test]
async fn txn_commit_checks_the_coordinator_and_the_group() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    let one = || vec![offset("t", 0, 1)];
    assert_eq!(
        c.txn_commit("g", txn(PRODUCER), one()).await,
        vec![GroupError::NotCoordinator]
    );
    c.begin_load(0, 1).await;
    assert_eq!(
        c.txn_commit("g", txn(PRODUCER), one()).await,
        vec![GroupError::CoordinatorLoadInProgress]
    );
    c.finish_load(0, 1, OffsetsReplay::new()).await;
    assert_eq!(
        c.txn_commit("", txn(PRODUCER), one()).await,
        vec![GroupError::InvalidGroupId]
    );
    // An unknown group named with a generation: ILLEGAL_GENERATION, nothing written.
    let with_generation = TxnCommit {
        generation_id: 3,
        member_id: "m".into(),
        ..txn(PRODUCER)
    };
    assert_eq!(
        c.txn_commit("g", with_generation, one()).await,
        vec![GroupError::IllegalGeneration]
    );
    assert!(log.entries.lock().unwrap().is_empty());
    // Too much metadata fails its partition only; the rest goes in one batch.
    let too_large = CommitOffset {
        metadata: Some("x".repeat(5_000)),
        ..offset("t", 1, 1)
    };
    assert_eq!(
        c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 1), too_large])
            .await,
        vec![GroupError::None, GroupError::OffsetMetadataTooLarge]
    );
    let entries = log.entries.lock().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(matches!(
        &entries[0],
        Entry::Batch { producer: Some(p), records } if *p == PRODUCER && records.len() == 1
    ));
}

#[tokio::test]
async fn a_failed_transactional_write_is_not_pending() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    log.fail.store(true, Ordering::SeqCst);
    assert_eq!(
        c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
            .await,
        vec![GroupError::CoordinatorNotAvailable]
    );
    log.fail.store(false, Ordering::SeqCst);
    assert_eq!(seen(&c, "g", 0).await, (None, false));
}

#[tokio::test]
async fn pending_partitions_per_group_and_producer_are_bounded() {
    use crate::txn_offsets::MAX_PENDING_TXN_OFFSETS;
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    let many =
        |n: usize| -> Vec<CommitOffset> { (0..n).map(|p| offset("t", p as i32, 1)).collect() };
    let refused = c
        .txn_commit("g", txn(PRODUCER), many(MAX_PENDING_TXN_OFFSETS + 1))
        .await;
    assert!(
        refused
            .iter()
            .all(|e| *e == GroupError::InvalidCommitOffsetSize)
    );
    assert!(log.entries.lock().unwrap().is_empty(), "nothing written");
    let taken = c
        .txn_commit("g", txn(PRODUCER), many(MAX_PENDING_TXN_OFFSETS))
        .await;
    assert!(taken.iter().all(|e| e.is_ok()));
    // The same partitions again fit; one more does not; another producer has its own room.
    assert!(
        c.txn_commit("g", txn(PRODUCER), many(2))
            .await
            .iter()
            .all(|e| e.is_ok())
    );
    let beyond = vec![offset("u", 0, 1)];
    assert_eq!(
        c.txn_commit("g", txn(PRODUCER), beyond.clone()).await,
        vec![GroupError::InvalidCommitOffsetSize]
    );
    let other = TxnProducer {
        producer_id: 8,
        producer_epoch: 0,
    };
    assert_eq!(
        c.txn_commit("g", txn(other), beyond).await,
        vec![GroupError::None]
    );
}

#[tokio::test]
async fn pending_offsets_keep_their_offset_and_group_from_expiring() {
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
    c.commit("simple", -1, "", None, vec![offset("t", 0, 5)], true)
        .await;
    c.txn_commit("simple", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    c.txn_commit("only-pending", txn(PRODUCER), vec![offset("t", 0, 1)])
        .await;
    assert_eq!(c.expire_offsets().await, 0, "t-0 has a transaction pending");
    let listed: Vec<String> = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(listed, vec!["only-pending", "simple"]);
    let marker = log.marker(PRODUCER.producer_id, false);
    c.complete_txn(0, PRODUCER.producer_id, false, marker).await;
    assert_eq!(c.expire_offsets().await, 1);
    assert!(c.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_a_group_or_an_offset_drops_its_pending_offsets() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit(
        "g",
        txn(PRODUCER),
        vec![offset("t", 0, 10), offset("t", 1, 11)],
    )
    .await;
    c.txn_commit("h", txn(PRODUCER), vec![offset("t", 0, 12)])
        .await;
    assert_eq!(c.delete_group("g").await, GroupError::None);
    let (error, results) = c.delete_offsets("h", vec![("t".into(), 0)]).await;
    assert_eq!((error, results), (GroupError::None, vec![GroupError::None]));
    // The commit marker that follows brings nothing back, here or after a reload.
    let marker = log.marker(PRODUCER.producer_id, true);
    c.complete_txn(0, PRODUCER.producer_id, true, marker).await;
    for coordinator in [c, coordinator(&log).await] {
        assert_eq!(seen(&coordinator, "g", 0).await, (None, false));
        assert_eq!(seen(&coordinator, "g", 1).await, (None, false));
        assert_eq!(seen(&coordinator, "h", 0).await, (None, false));
    }
}

#[tokio::test]
async fn a_deleted_topic_takes_its_pending_offsets() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    let deleted: std::collections::HashSet<String> = ["t".to_string()].into();
    assert_eq!(c.delete_topic_offsets(&deleted).await, 1);
    let marker = log.marker(PRODUCER.producer_id, true);
    c.complete_txn(0, PRODUCER.producer_id, true, marker).await;
    assert_eq!(seen(&c, "g", 0).await, (None, false));
    let reloaded = coordinator(&log).await;
    assert_eq!(seen(&reloaded, "g", 0).await, (None, false));
}

#[tokio::test]
async fn too_many_markers_during_a_load_make_it_load_again() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    c.begin_load(0, 1).await;
    for producer_id in 0..=MAX_DEFERRED_MARKERS as i64 {
        c.complete_txn(0, producer_id, true, producer_id).await;
    }
    assert!(!c.finish_load(0, 1, OffsetsReplay::new()).await);
    // The caller abandons this load and starts another, which keeps markers afresh.
    c.abandon_load(0, 1).await;
    c.begin_load(0, 2).await;
    c.complete_txn(0, 1, true, 1).await;
    assert!(c.finish_load(0, 2, OffsetsReplay::new()).await);
}

#[tokio::test]
async fn every_marker_reported_during_the_load_is_applied_in_log_order() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 10)])
        .await;
    let first = log.marker(PRODUCER.producer_id, true);
    c.txn_commit("g", txn(PRODUCER), vec![offset("t", 0, 20)])
        .await;
    // A new load reads all of that; the first marker's report comes late, during the load,
    // and the second transaction's abort lands during it too.
    let moved = GroupCoordinator::new(config(), Arc::clone(&log) as Arc<dyn OffsetsStorage>);
    moved.begin_load(0, 2).await;
    let replay = log.replay();
    moved
        .complete_txn(0, PRODUCER.producer_id, true, first)
        .await;
    let second = log.marker(PRODUCER.producer_id, false);
    moved
        .complete_txn(0, PRODUCER.producer_id, false, second)
        .await;
    assert!(moved.finish_load(0, 2, replay).await);
    assert_eq!(seen(&moved, "g", 0).await, (Some(10), false));
}

/// A static member's session ends at its deadline: the timer is scheduled for exactly that
/// moment (no polling interval in between) and removes the member once it passes, not before.
#[tokio::test]
async fn a_static_member_expires_at_its_session_deadline() {
    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(
        CoordinatorConfig {
            min_session_timeout_ms: 100,
            ..config()
        },
        Arc::clone(&log) as Arc<dyn OffsetsStorage>,
    );
    c.begin_load(0, 1).await;
    assert!(c.finish_load(0, 1, log.replay()).await);
    tokio::spawn(Arc::clone(&c).run_timers());
    // Long enough that the timer task gets to run before the deadline on a loaded machine
    // (it failed once at 400 ms with CI building beside it).
    let session_timeout_ms = 3_000;
    let joined = c
        .join(
            "g",
            JoinRequest {
                member_id: String::new(),
                group_instance_id: Some("static-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms,
                rebalance_timeout_ms: 1_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
                require_known_member_id: true,
            },
        )
        .await;
    assert_eq!(joined.error, GroupError::None);
    let synced = c
        .sync(
            "g",
            SyncRequest {
                generation_id: joined.generation_id,
                member_id: joined.member_id.clone(),
                group_instance_id: Some("static-1".into()),
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: vec![(joined.member_id.clone(), Bytes::from_static(b"asg"))],
            },
        )
        .await;
    assert_eq!(synced.error, GroupError::None);
    assert_eq!(
        c.heartbeat(
            "g",
            joined.generation_id,
            &joined.member_id,
            Some("static-1")
        )
        .await,
        GroupError::None
    );
    let heartbeat_ms = c.monotonic_ms();
    let deadline_ms = {
        let shard = c.shard_of("g").unwrap();
        let state = shard.state.lock().await;
        state.groups["g"].next_deadline_ms().unwrap()
    };
    assert!(
        (heartbeat_ms..=heartbeat_ms + i64::from(session_timeout_ms))
            .contains(&(deadline_ms - i64::from(session_timeout_ms))),
        "the deadline is the heartbeat plus the session timeout"
    );
    // The timer is due no later than that deadline, and once it has handled any earlier one
    // (the session deadline the heartbeat replaced), exactly at it: no polling interval.
    assert!(c.next_wake_ms.load(Ordering::Acquire) <= deadline_ms);
    while c.next_wake_ms.load(Ordering::Acquire) != deadline_ms {
        assert!(
            c.monotonic_ms() < deadline_ms,
            "the timer was never scheduled for the deadline"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let members = c.describe("g").await.members.len();
        if members == 0 {
            break;
        }
        assert!(
            c.monotonic_ms() < deadline_ms + 5_000,
            "the member outlived its session"
        );
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        c.monotonic_ms() >= deadline_ms,
        "the member was removed before its session ended"
    );
}

/// A classic member and a consumer-protocol member in one group, through the coordinator:
/// the upgrade at the consumer member's join, the classic member served by the consumer
/// group, a reload from the log, and the group classic again once the consumer member's
/// session ends — its commits kept throughout.
#[tokio::test]
async fn a_group_moves_to_the_consumer_protocol_and_back_with_a_classic_member_in_it() {
    use crate::consumer::embedded::{decode_assignment, encode_assignment, encode_subscription};
    use crate::consumer::group::tests::topics;
    use crate::consumer::group::{ConsumerGroupSettings, HeartbeatRequest};

    let cfg = || CoordinatorConfig {
        min_session_timeout_ms: 100,
        consumer: ConsumerGroupSettings {
            session_timeout_ms: 300,
            ..ConsumerGroupSettings::default()
        },
        ..config()
    };
    let resolver =
        || -> Arc<dyn TopicResolver> { Arc::new(topics(&[("t", uuid::Uuid::from_u128(7), 4)])) };
    let start = |log: &Arc<MemoryLog>| {
        let log = Arc::clone(log);
        async move {
            let c = GroupCoordinator::new(cfg(), log.clone() as Arc<dyn OffsetsStorage>);
            c.set_topic_resolver(resolver());
            c.begin_load(0, 1).await;
            assert!(c.finish_load(0, 1, log.replay()).await);
            c
        }
    };
    let join = |member_id: &str| JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), encode_subscription(&["t".into()]))],
        require_known_member_id: false,
    };
    let sync = |member_id: &str, generation_id: i32, assignments| SyncRequest {
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    };
    let partitions = |bytes: &Bytes| -> Vec<i32> {
        let named = decode_assignment(bytes).expect("an assignment");
        named.into_iter().flat_map(|(_, p)| p).collect()
    };

    let log = Arc::new(MemoryLog::default());
    let c = start(&log).await;
    // (Timers for the first rebalance's delay; the second coordinator's are ticked by hand.)
    tokio::spawn(Arc::clone(&c).run_timers());
    // A classic group of one, owning all four partitions at generation 1.
    let a = c.join("g", join("")).await;
    assert_eq!((a.error, a.generation_id), (GroupError::None, 1));
    let all = encode_assignment(0, &[("t".into(), vec![0, 1, 2, 3])]);
    let synced = c
        .sync("g", sync(&a.member_id, 1, vec![(a.member_id.clone(), all)]))
        .await;
    assert_eq!(partitions(&synced.assignment), vec![0, 1, 2, 3]);

    // A consumer-protocol member joins: the group moves, "a" at epoch 1 keeps its partitions.
    let hb = |member_id: &str, member_epoch: i32| HeartbeatRequest {
        member_id: member_id.into(),
        member_epoch,
        rebalance_timeout_ms: 5_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        ..HeartbeatRequest::default()
    };
    let joined = c.consumer_heartbeat("g", hb("c", 0)).await;
    assert_eq!((joined.error, joined.member_epoch), (GroupError::None, 2));
    let described = c
        .describe_consumer_group("g")
        .await
        .expect("a consumer group");
    assert_eq!(described.members.len(), 2);
    // "a" is told to rejoin, is answered at once, and syncs its share.
    assert_eq!(
        c.heartbeat("g", 1, &a.member_id, None).await,
        GroupError::RebalanceInProgress
    );
    let rejoined = c.join("g", join(&a.member_id)).await;
    assert_eq!(
        (rejoined.error, rejoined.generation_id),
        (GroupError::None, 2)
    );
    assert_eq!(rejoined.leader, "", "no leader: the coordinator assigns");
    let synced = c.sync("g", sync(&a.member_id, 2, vec![])).await;
    assert_eq!(synced.error, GroupError::None);
    assert_eq!(partitions(&synced.assignment).len(), 2);
    // It commits with its generation over an OffsetCommit older than v9.
    let committed = c
        .commit("g", 2, &a.member_id, None, vec![offset("t", 0, 5)], false)
        .await;
    assert_eq!(committed, vec![GroupError::None]);
    assert_eq!(
        c.commit("g", 1, &a.member_id, None, vec![offset("t", 0, 6)], false)
            .await,
        vec![GroupError::IllegalGeneration]
    );

    // A new coordinator reads the mixed group back, "a" still classic at epoch 2 (the old one
    // lets go first, so its timers write nothing more).
    c.unload(0).await;
    let moved = start(&log).await;
    assert_eq!(
        moved.heartbeat("g", 2, &a.member_id, None).await,
        GroupError::None
    );
    // "c" goes silent: once its session ends, "a" carries on in a classic group.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        moved.heartbeat("g", 2, &a.member_id, None).await,
        GroupError::None
    );
    moved.tick().await;
    assert_eq!(
        moved.describe_consumer_group("g").await.map(|_| ()),
        Err(GroupError::GroupIdNotFound)
    );
    let classic = moved.describe("g").await;
    assert_eq!(classic.protocol_type, "consumer");
    assert_eq!(classic.state, GroupState::PreparingRebalance.name());
    assert_eq!(
        moved.heartbeat("g", 2, &a.member_id, None).await,
        GroupError::RebalanceInProgress
    );
    let again = moved.join("g", join(&a.member_id)).await;
    assert_eq!((again.error, again.generation_id), (GroupError::None, 3));
    assert_eq!(again.leader, a.member_id);
    // And its commit is still there, read back by yet another coordinator.
    let last = start(&log).await;
    let fetched = last.fetch_offsets("g", None).await.expect("offsets");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].1.as_ref().map(|o| o.offset), Some(5));
    assert_eq!(last.describe("g").await.protocol_type, "consumer");
}

/// A classic static member restarting in the place of the last consumer-protocol member (same
/// group.instance.id) turns the group classic in its JoinGroup, holding that member's share.
#[tokio::test]
async fn a_static_member_rolling_back_to_classic_turns_the_group_classic() {
    use crate::consumer::embedded::{decode_assignment, encode_assignment, encode_subscription};
    use crate::consumer::group::HeartbeatRequest;
    use crate::consumer::group::tests::topics;

    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(
        CoordinatorConfig {
            min_session_timeout_ms: 100,
            ..config()
        },
        Arc::clone(&log) as Arc<dyn OffsetsStorage>,
    );
    c.set_topic_resolver(Arc::new(topics(&[("t", uuid::Uuid::from_u128(7), 4)])));
    c.begin_load(0, 1).await;
    assert!(c.finish_load(0, 1, log.replay()).await);
    tokio::spawn(Arc::clone(&c).run_timers());
    let join = |member_id: &str, instance: Option<&str>| JoinRequest {
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), encode_subscription(&["t".into()]))],
        require_known_member_id: true,
    };
    let sync =
        |member_id: &str, instance: Option<&str>, generation_id: i32, assignments| SyncRequest {
            generation_id,
            member_id: member_id.into(),
            group_instance_id: instance.map(str::to_string),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
        };
    let a = c.join("g", join("", Some("i-a"))).await;
    assert_eq!((a.error, a.generation_id), (GroupError::None, 1));
    let all = encode_assignment(0, &[("t".into(), vec![0, 1, 2, 3])]);
    let synced = c
        .sync(
            "g",
            sync(
                &a.member_id,
                Some("i-a"),
                1,
                vec![(a.member_id.clone(), all)],
            ),
        )
        .await;
    assert_eq!(synced.error, GroupError::None);
    // A consumer-protocol static member joins (the group moves), then its process restarts
    // with the classic protocol under the same instance id.
    let joined = c
        .consumer_heartbeat(
            "g",
            HeartbeatRequest {
                member_id: "c".into(),
                member_epoch: 0,
                instance_id: Some("i-c".into()),
                rebalance_timeout_ms: 5_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                owned: Some(Default::default()),
                ..HeartbeatRequest::default()
            },
        )
        .await;
    assert_eq!((joined.error, joined.member_epoch), (GroupError::None, 2));
    let share = {
        let described = c
            .describe_consumer_group("g")
            .await
            .expect("a consumer group");
        let (_, target) = described
            .members
            .iter()
            .find(|(m, _)| m.member_id == "c")
            .cloned()
            .expect("c");
        target.values().map(|p| p.len()).sum::<usize>()
    };
    assert_eq!(share, 2);
    let back = c.join("g", join("", Some("i-c"))).await;
    assert_eq!(back.error, GroupError::None);
    assert_eq!(back.generation_id, 2, "the group epoch as the generation");
    assert_eq!(back.leader, a.member_id, "the member already there leads");
    assert_eq!(
        c.describe_consumer_group("g").await.map(|_| ()),
        Err(GroupError::GroupIdNotFound)
    );
    let classic = c.describe("g").await;
    assert_eq!(classic.state, GroupState::Stable.name());
    assert_eq!(classic.members.len(), 2);
    // It syncs into the classic group and gets what "c" was to have.
    let mine = c
        .sync("g", sync(&back.member_id, Some("i-c"), 2, vec![]))
        .await;
    assert_eq!(mine.error, GroupError::None);
    let named = decode_assignment(&mine.assignment).expect("an assignment");
    assert_eq!(named.iter().map(|(_, p)| p.len()).sum::<usize>(), 2);
}

/// Ids longer than a record key's int16 length are refused, never stored cut short (where a
/// commit would land under another group's key).
#[tokio::test]
async fn ids_too_long_for_a_record_are_refused_not_cut() {
    let log = Arc::new(MemoryLog::default());
    let c = coordinator(&log).await;
    let long = "g".repeat(MAX_ID_BYTES + 1);
    let committed = c
        .commit(&long, -1, "", None, vec![offset("t", 0, 5)], false)
        .await;
    assert_eq!(committed, vec![GroupError::InvalidGroupId]);
    let txn = c
        .txn_commit(
            &long,
            txn(TxnProducer {
                producer_id: 1,
                producer_epoch: 0,
            }),
            vec![offset("t", 0, 5)],
        )
        .await;
    assert_eq!(txn, vec![GroupError::InvalidGroupId]);
    assert_eq!(log.entries.lock().unwrap().len(), 0, "nothing written");
    // The longest id that fits is taken.
    let fits = "g".repeat(MAX_ID_BYTES);
    let committed = c
        .commit(&fits, -1, "", None, vec![offset("t", 0, 5)], false)
        .await;
    assert_eq!(committed, vec![GroupError::None]);
    let join = |member_id: &str, instance: Option<String>, protocol: &str| JoinRequest {
        member_id: member_id.into(),
        group_instance_id: instance,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: vec![(protocol.into(), Bytes::from_static(b"sub"))],
        require_known_member_id: true,
    };
    let long_member = "m".repeat(MAX_ID_BYTES + 1);
    for (what, req) in [
        ("a member id", join(&long_member, None, "range")),
        (
            "an instance id",
            join("", Some(long_member.clone()), "range"),
        ),
        ("a protocol name", join("", None, &long_member)),
    ] {
        assert_eq!(
            c.join("g", req).await.error,
            GroupError::InvalidRequest,
            "{what}"
        );
    }
    assert_eq!(
        c.join(&long, join("", None, "range")).await.error,
        GroupError::InvalidGroupId
    );
}

/// KIP-848 group configs: a group's own session timeout and heartbeat interval are the ones
/// its members are held to, read at each heartbeat (a change applies from the next one);
/// another group keeps the broker's.
#[tokio::test]
async fn a_group_is_held_to_its_own_session_timeout_and_heartbeat_interval() {
    use std::sync::Mutex as StdMutex;

    use crate::consumer::group::tests::topics;
    use crate::consumer::group::{ConsumerGroupSettings, HeartbeatRequest};
    use crate::consumer::group_config::{GroupConfigSource, GroupOverrides};

    #[derive(Default)]
    struct Overrides(StdMutex<std::collections::HashMap<String, GroupOverrides>>);
    impl GroupConfigSource for Overrides {
        fn overrides(&self, group_id: &str) -> GroupOverrides {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.get(group_id).copied().unwrap_or_default()
        }
    }

    let log = Arc::new(MemoryLog::default());
    let c = GroupCoordinator::new(
        CoordinatorConfig {
            consumer: ConsumerGroupSettings {
                session_timeout_ms: 10_000,
                heartbeat_interval_ms: 5_000,
                ..ConsumerGroupSettings::default()
            },
            ..config()
        },
        Arc::clone(&log) as Arc<dyn OffsetsStorage>,
    );
    c.set_topic_resolver(Arc::new(topics(&[("t", uuid::Uuid::from_u128(7), 2)])));
    let overrides = Arc::new(Overrides::default());
    c.set_group_configs(Arc::clone(&overrides) as Arc<dyn GroupConfigSource>);
    c.begin_load(0, 1).await;
    assert!(c.finish_load(0, 1, log.replay()).await);
    overrides
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            "own".into(),
            GroupOverrides {
                session_timeout_ms: Some(300),
                heartbeat_interval_ms: Some(100),
            },
        );
    let hb = |member_id: &str, member_epoch: i32| HeartbeatRequest {
        member_id: member_id.into(),
        member_epoch,
        rebalance_timeout_ms: 5_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        ..HeartbeatRequest::default()
    };
    let own = c.consumer_heartbeat("own", hb("m", 0)).await;
    let plain = c.consumer_heartbeat("plain", hb("m", 0)).await;
    assert_eq!(
        (own.error, own.heartbeat_interval_ms),
        (GroupError::None, 100)
    );
    assert_eq!(
        (plain.error, plain.heartbeat_interval_ms),
        (GroupError::None, 5_000)
    );
    // Both go silent past "own"'s 300 ms session, well within the broker's 10 s.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.tick().await;
    let own = c.consumer_heartbeat("own", hb("m", own.member_epoch)).await;
    assert_eq!(own.error, GroupError::UnknownMemberId, "its session ended");
    let plain = c
        .consumer_heartbeat("plain", hb("m", plain.member_epoch))
        .await;
    assert_eq!(plain.error, GroupError::None, "the broker's session holds");
    // The override removed: the next heartbeat gets the broker's interval.
    overrides
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove("own");
    let rejoined = c.consumer_heartbeat("own", hb("m2", 0)).await;
    assert_eq!(
        (rejoined.error, rejoined.heartbeat_interval_ms),
        (GroupError::None, 5_000)
    );
}
