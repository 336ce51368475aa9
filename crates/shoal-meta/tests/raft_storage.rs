//! The sled Raft storage and the state machine: openraft's storage conformance suite, and
//! snapshot + replay equivalence on a long pseudo-random record sequence.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::collections::BTreeSet;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StorageError,
};
use shoal_meta::metadata_log::journal::JournalRead;
use shoal_meta::raft::log_store::SledLogStore;
use shoal_meta::raft::state_machine::MetaStateMachine;
use shoal_meta::raft::types::{MetaEntry, NodeId, TypeConfig};
use shoal_meta::{Endpoint, MetadataDelta, MetadataImage, MetadataRecord};
use uuid::Uuid;

struct SledBuilder;

impl StoreBuilder<TypeConfig, SledLogStore, MetaStateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, SledLogStore, MetaStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled opens");
        let log = SledLogStore::open(&db).expect("log store opens");
        let (sm, _images) = MetaStateMachine::open(&db, "suite").expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(SledBuilder).unwrap();
}

/// xorshift64*: deterministic "random" records without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[self.below(items.len() as u64) as usize].clone())
        }
    }
}

/// A long sequence of record batches touching every record type, including records that refer
/// to missing things or stale epochs (those must be skipped identically on every replay).
fn random_batches(seed: u64, count: usize) -> Vec<Vec<MetadataRecord>> {
    let mut rng = Rng(seed);
    let mut topic_ids: Vec<Uuid> = Vec::new();
    let mut next_id = 1u128;
    let mut batches = Vec::with_capacity(count);
    for _ in 0..count {
        let len = 1 + rng.below(4) as usize;
        let mut batch = Vec::with_capacity(len);
        for _ in 0..len {
            let broker_id = rng.below(5) as i32;
            let epoch = rng.below(8) as i64;
            let record = match rng.below(10) {
                0 => MetadataRecord::RegisterBroker {
                    log_dirs: Vec::new(),
                    broker_id,
                    incarnation_id: Uuid::from_u128(rng.next() as u128),
                    broker_epoch: epoch,
                    listeners: vec![Endpoint {
                        name: "PLAINTEXT".into(),
                        host: format!("h{broker_id}"),
                        port: 9092,
                    }],
                    rack: (rng.below(2) == 0).then(|| "r1".to_string()),
                    supported_features: (rng.below(2) == 0)
                        .then(shoal_meta::features::supported_features),
                },
                1 => MetadataRecord::FenceBroker {
                    broker_id,
                    broker_epoch: epoch,
                },
                2 => MetadataRecord::UnfenceBroker {
                    broker_id,
                    broker_epoch: epoch,
                },
                3 | 4 => {
                    let id = Uuid::from_u128(next_id);
                    next_id += 1;
                    topic_ids.push(id);
                    MetadataRecord::Topic {
                        name: format!("t{}", rng.below(30)),
                        topic_id: id,
                    }
                }
                5 => {
                    let replicas: Vec<i32> = (0..1 + rng.below(3) as i32).collect();
                    MetadataRecord::Partition {
                        topic_id: rng.pick(&topic_ids).unwrap_or_else(Uuid::nil),
                        partition: rng.below(4) as i32,
                        isr: replicas.clone(),
                        leader: replicas[0],
                        replicas,
                        leader_epoch: rng.below(3) as i32,
                        partition_epoch: rng.below(3) as i32,
                    }
                }
                6 => MetadataRecord::PartitionChange {
                    topic_id: rng.pick(&topic_ids).unwrap_or_else(Uuid::nil),
                    partition: rng.below(3) as i32,
                    leader: (rng.below(2) == 0).then(|| rng.below(3) as i32),
                    isr: (rng.below(2) == 0).then(|| vec![rng.below(3) as i32]),
                    replicas: None,
                    adding_replicas: None,
                    removing_replicas: None,
                },
                7 => MetadataRecord::RemoveTopic {
                    topic_id: rng.pick(&topic_ids).unwrap_or_else(Uuid::nil),
                },
                8 => MetadataRecord::TopicConfig {
                    topic_id: rng.pick(&topic_ids).unwrap_or_else(Uuid::nil),
                    name: ["retention.ms", "cleanup.policy", "segment.bytes"]
                        [rng.below(3) as usize]
                        .to_string(),
                    value: (rng.below(3) != 0).then(|| rng.below(1000).to_string()),
                },
                _ => MetadataRecord::ProducerIds {
                    next_producer_id_block_start: rng.below(100_000) as i64,
                },
            };
            batch.push(record);
        }
        batches.push(batch);
    }
    batches
}

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// Entry 1 is the membership; record batches follow from index 2.
fn entries(batches: &[Vec<MetadataRecord>]) -> Vec<MetaEntry> {
    let mut entries = vec![Entry {
        log_id: log_id(1),
        payload: EntryPayload::Membership(Membership::new(
            vec![BTreeSet::from([1u64])],
            None::<BTreeSet<NodeId>>,
        )),
    }];
    for (i, batch) in batches.iter().enumerate() {
        entries.push(Entry {
            log_id: log_id(i as u64 + 2),
            payload: EntryPayload::Normal(batch.clone()),
        });
        if i % 7 == 0 {
            entries.push(Entry {
                log_id: log_id(i as u64 + 2),
                payload: EntryPayload::Blank,
            });
        }
    }
    // Blank entries above share an index with their batch; renumber consecutively.
    for (i, e) in entries.iter_mut().enumerate() {
        e.log_id = log_id(i as u64 + 1);
    }
    entries
}

/// Opens sled at `dir`, waiting (bounded) for a handle dropped just before to release its file
/// lock: sled's flusher thread lets go a moment after the last `Db` is dropped.
fn open_db(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("sled does not open: {e}"),
        }
    }
}

fn open_sm(
    dir: &std::path::Path,
) -> (
    MetaStateMachine,
    tokio::sync::watch::Receiver<std::sync::Arc<MetadataImage>>,
) {
    let db = open_db(dir);
    MetaStateMachine::open(&db, "c1").expect("state machine opens")
}

#[tokio::test]
async fn snapshot_plus_replay_equals_straight_replay() {
    let batches = random_batches(0x5eed_1234_abcd_0001, 1500);
    let all = entries(&batches);
    let total = all.len();

    // Straight replay, in uneven chunks.
    let dir_a = tempfile::tempdir().unwrap();
    let (mut a, images_a) = open_sm(dir_a.path());
    let mut rest = all.clone();
    let mut rng = Rng(7);
    while !rest.is_empty() {
        let n = (1 + rng.below(50) as usize).min(rest.len());
        let chunk: Vec<_> = rest.drain(..n).collect();
        let responses = a.apply(chunk.clone()).await.unwrap();
        assert_eq!(responses.len(), chunk.len());
    }
    let straight = images_a.borrow().clone();
    assert_eq!(straight.last_applied_index, total as u64);
    assert!(
        !straight.topics.is_empty() && !straight.brokers.is_empty(),
        "sequence too trivial"
    );
    assert!(
        straight
            .topics
            .values()
            .any(|t| !t.partitions.is_empty() && !t.configs.is_empty())
    );

    for split in [1, total / 3, total - 1] {
        // Apply a prefix, snapshot it.
        let dir_b = tempfile::tempdir().unwrap();
        let (mut b, _images_b) = open_sm(dir_b.path());
        b.apply(all[..split].to_vec()).await.unwrap();
        let snapshot = b
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(split as u64)));
        let data = snapshot.snapshot.into_inner();

        // A fresh state machine installs it and replays the rest.
        let dir_c = tempfile::tempdir().unwrap();
        let (mut c, images_c) = open_sm(dir_c.path());
        let mut receiving = c.begin_receiving_snapshot().await.unwrap();
        receiving.get_mut().extend_from_slice(&data);
        c.install_snapshot(&snapshot.meta, receiving).await.unwrap();
        let (applied, membership) = c.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(split as u64)));
        assert_eq!(membership.log_id(), &Some(log_id(1)));
        c.apply(all[split..].to_vec()).await.unwrap();
        assert_eq!(**images_c.borrow(), *straight, "split at {split}");

        // The installed snapshot is now the current one (served to lagging followers).
        let current = c.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(log_id(split as u64)));
        drop(b);
    }
}

/// What a broker-only node rebuilds by following the journal (in fetch-sized steps, some
/// retried, from several points) is the voter's image, exactly.
#[tokio::test]
async fn following_the_journal_rebuilds_the_voters_image() {
    let batches = random_batches(0x0b5e_57e7, 800);
    let all = entries(&batches);
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, images) = open_sm(dir.path());
    let journal = sm.journal();
    let mut follower = MetadataImage::empty("c1");
    let mut rng = Rng(11);
    let mut rest = all.clone();
    while !rest.is_empty() {
        let n = (1 + rng.below(40) as usize).min(rest.len());
        sm.apply(rest.drain(..n).collect::<Vec<_>>()).await.unwrap();
        // Fetch until caught up; sometimes the same fetch twice (a retried RPC).
        while follower.last_applied_index < images.borrow().last_applied_index {
            let read = journal
                .lock()
                .unwrap()
                .read_after(follower.last_applied_index);
            let delta = match read {
                JournalRead::Batches {
                    batches,
                    last_offset,
                } => MetadataDelta::Batches {
                    batches: batches
                        .into_iter()
                        .map(|(i, b)| (i, (*b).clone()))
                        .collect(),
                    last_offset,
                },
                JournalRead::TooOld => MetadataDelta::Image(Box::new((**images.borrow()).clone())),
            };
            if rng.below(4) == 0 {
                delta.clone().apply_to(&mut follower);
            }
            delta.apply_to(&mut follower);
        }
        assert_eq!(follower, **images.borrow());
    }
    assert_eq!(follower.last_applied_index, all.len() as u64);
}

#[tokio::test]
async fn state_machine_reopens_from_its_snapshot() {
    let batches = random_batches(99, 300);
    let all = entries(&batches);
    let dir = tempfile::tempdir().unwrap();
    let at_snapshot = {
        let db = open_db(dir.path());
        let (mut sm, images) = MetaStateMachine::open(&db, "c1").unwrap();
        sm.apply(all[..200].to_vec()).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let image = images.borrow().clone();
        // Applied after the snapshot but not snapshotted: gone from the state machine after a
        // restart (openraft re-applies it from the log).
        sm.apply(all[200..].to_vec()).await.unwrap();
        image
    };
    let db = open_db(dir.path());
    let (mut sm, images) = MetaStateMachine::open(&db, "c1").unwrap();
    assert_eq!(*images.borrow(), at_snapshot);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(200)));

    // A snapshot of another cluster is refused.
    drop(sm);
    drop(images);
    assert!(MetaStateMachine::open(&db, "other").is_err());
}

#[tokio::test]
async fn log_store_purge_and_committed_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(dir.path());
        let mut log = SledLogStore::open(&db).unwrap();
        log.save_committed(Some(log_id(40))).await.unwrap();
        log.purge(log_id(10)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(10)));
        // No entries left: the last log id is the purge point, as openraft requires.
        assert_eq!(state.last_log_id, Some(log_id(10)));
    }
    let db = open_db(dir.path());
    let mut log = SledLogStore::open(&db).unwrap();
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(40)));
    assert_eq!(
        log.get_log_state().await.unwrap().last_purged_log_id,
        Some(log_id(10))
    );
}
