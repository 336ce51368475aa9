//! Leader and follower `Partition`s over real logs, with the fetch loop driven by hand (no
//! network): acks=all waits for the ISR, followers copy batches byte for byte, a deposed
//! leader's uncommitted tail is cut by epoch, stale epochs are refused both ways, and ISR
//! changes go through proposals.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::time::Duration;

use shoal_log::LogConfig;
use shoal_log::testing::{BatchSpec, build_batch_with};
use shoal_replica::{
    EpochEndOffset, FollowerFetch, IsrOutcome, Partition, PartitionError, PartitionState,
    RequiredAcks,
};

const MAX_BYTES: usize = 1 << 20;

fn state(leader: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> PartitionState {
    PartitionState {
        leader,
        leader_epoch,
        partition_epoch,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

struct Replicas {
    _dirs: Vec<tempfile::TempDir>,
    /// Index i is broker i + 1.
    parts: Vec<Partition>,
}

fn replicas(initial: &PartitionState, min_isr: usize) -> Replicas {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts = (1..=3)
        .map(|id| {
            Partition::open(
                dirs[(id - 1) as usize].path(),
                "t",
                0,
                id,
                LogConfig::default(),
                min_isr,
                initial.clone(),
                0,
            )
            .unwrap()
        })
        .collect();
    Replicas { _dirs: dirs, parts }
}

impl Replicas {
    fn broker(&self, id: i32) -> &Partition {
        &self.parts[(id - 1) as usize]
    }

    fn update_all(&self, state: &PartitionState, now_ms: i64) {
        for p in &self.parts {
            p.update_state(state.clone(), now_ms);
        }
    }

    /// One fetch round of `follower` from `leader` at `leader_epoch`: divergence handling, the
    /// append, and the HW. Returns how many bytes were copied.
    fn fetch_once(&self, follower: i32, leader: i32, leader_epoch: i32, now_ms: i64) -> usize {
        let f = self.broker(follower);
        let position = f.fetch_position(leader_epoch).unwrap();
        let fetch = FollowerFetch {
            replica_id: follower,
            broker_epoch: 100 + i64::from(follower),
            current_leader_epoch: leader_epoch,
            fetch_offset: position.fetch_offset,
            last_fetched_epoch: position.last_fetched_epoch,
            max_bytes: MAX_BYTES,
            log_start_offset: Some(position.log_start_offset),
        };
        let result = self
            .broker(leader)
            .fetch_for_follower(&fetch, now_ms, true)
            .unwrap();
        if let Some(diverging) = result.diverging {
            f.truncate_for_divergence(leader_epoch, diverging).unwrap();
            return 0;
        }
        if !result.records.is_empty() {
            f.append_as_follower(leader_epoch, &result.records, now_ms)
                .unwrap();
        }
        f.update_follower_offsets(leader_epoch, result.high_watermark, result.log_start_offset)
            .unwrap();
        result.records.len()
    }

    /// Fetch rounds until nobody copies anything and positions are reported.
    fn sync(&self, followers: &[i32], leader: i32, leader_epoch: i32, now_ms: i64) {
        for _ in 0..10 {
            let mut copied = 0;
            for f in followers {
                copied += self.fetch_once(*f, leader, leader_epoch, now_ms);
            }
            if copied == 0 {
                // One more round so the leader learns the final positions.
                for f in followers {
                    self.fetch_once(*f, leader, leader_epoch, now_ms);
                }
                return;
            }
        }
        panic!("did not converge");
    }

    fn log_bytes(&self, id: i32) -> Vec<u8> {
        self.broker(id)
            .with_log(|log| {
                let end = log.log_end_offset();
                log.read(0, usize::MAX >> 1, end, true)
                    .map(|r| r.records.to_vec())
            })
            .unwrap()
    }
}

fn batch(values: &[&[u8]]) -> Vec<u8> {
    build_batch_with(&BatchSpec::new(values))
}

#[tokio::test]
async fn acks_all_waits_for_every_isr_member_and_followers_copy_the_log() {
    let r = replicas(&state(1, 0, 0, &[1, 2, 3]), 2);
    let leader = r.broker(1);
    let appended = leader
        .append_as_leader(&batch(&[b"a", b"b"]), RequiredAcks::AllInSync, 10)
        .unwrap();
    assert_eq!(leader.high_watermark(), 0, "no follower has it yet");
    // One follower is not enough for an ISR of three.
    r.fetch_once(2, 1, 0, 10);
    r.fetch_once(2, 1, 0, 10);
    assert_eq!(leader.high_watermark(), 0);
    let waiting = leader.wait_for_acks(appended.info.last_offset + 1, Duration::from_millis(50));
    assert!(matches!(
        waiting.await,
        Err(PartitionError::RequestTimedOut)
    ));
    r.sync(&[2, 3], 1, 0, 10);
    assert_eq!(leader.high_watermark(), 2);
    leader
        .wait_for_acks(2, Duration::from_millis(50))
        .await
        .unwrap();
    // Followers hold the same bytes and learned the HW.
    assert_eq!(r.log_bytes(2), r.log_bytes(1));
    assert_eq!(r.log_bytes(3), r.log_bytes(1));
    assert_eq!(r.broker(2).high_watermark(), 2);
    // A follower cannot take producer writes.
    assert!(matches!(
        r.broker(2)
            .append_as_leader(&batch(&[b"x"]), RequiredAcks::Leader, 10),
        Err(PartitionError::NotLeaderOrFollower)
    ));
}

#[tokio::test]
async fn a_deposed_leaders_uncommitted_tail_is_cut_by_epoch() {
    let r = replicas(&state(1, 0, 0, &[1, 2, 3]), 1);
    r.broker(1)
        .append_as_leader(&batch(&[b"committed"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    r.sync(&[2, 3], 1, 0, 0);
    assert_eq!(r.broker(1).high_watermark(), 1);
    // Broker 1 writes a tail nobody copies (it is paused, say), then loses leadership.
    r.broker(1)
        .append_as_leader(&batch(&[b"lost-1", b"lost-2"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    let epoch1 = state(2, 1, 1, &[2, 3]);
    r.update_all(&epoch1, 100);
    r.broker(2)
        .append_as_leader(&batch(&[b"new"]), RequiredAcks::AllInSync, 100)
        .unwrap();
    r.sync(&[3], 2, 1, 100);
    // The old leader follows now: its first fetch diverges and it truncates to offset 1.
    let position = r.broker(1).fetch_position(1).unwrap();
    assert_eq!((position.fetch_offset, position.last_fetched_epoch), (3, 0));
    r.sync(&[1, 3], 2, 1, 100);
    assert_eq!(r.log_bytes(1), r.log_bytes(2));
    let end = r.broker(1).fetch_position(1).unwrap();
    assert_eq!((end.fetch_offset, end.last_fetched_epoch), (2, 1));
    // What the deposed leader wrote under epoch 0 after the HW is gone, the rest kept.
    let kept = r.log_bytes(1);
    assert!(!kept.windows(6).any(|w| w == b"lost-1"));
    assert!(kept.windows(9).any(|w| w == b"committed"));
}

#[tokio::test]
async fn stale_epochs_are_refused_in_both_directions() {
    let r = replicas(&state(1, 3, 3, &[1, 2, 3]), 1);
    let fetch = |epoch: i32| FollowerFetch {
        replica_id: 2,
        broker_epoch: 102,
        current_leader_epoch: epoch,
        fetch_offset: 0,
        last_fetched_epoch: -1,
        max_bytes: MAX_BYTES,
        log_start_offset: Some(0),
    };
    assert!(matches!(
        r.broker(1).fetch_for_follower(&fetch(2), 0, true),
        Err(PartitionError::FencedLeaderEpoch)
    ));
    assert!(matches!(
        r.broker(1).fetch_for_follower(&fetch(4), 0, true),
        Err(PartitionError::UnknownLeaderEpoch)
    ));
    assert!(r.broker(1).fetch_for_follower(&fetch(3), 0, true).is_ok());
    // A follower refuses data for an epoch it no longer follows, and a leader refuses to act
    // as a follower.
    assert!(matches!(
        r.broker(2).append_as_follower(2, &batch(&[b"old"]), 0),
        Err(PartitionError::FencedLeaderEpoch)
    ));
    assert!(matches!(
        r.broker(2).append_as_follower(4, &batch(&[b"new"]), 0),
        Err(PartitionError::UnknownLeaderEpoch)
    ));
    assert!(matches!(
        r.broker(1).append_as_follower(3, &batch(&[b"x"]), 0),
        Err(PartitionError::NotLeaderOrFollower)
    ));
    // A stale metadata state (older partition epoch) changes nothing.
    r.broker(2).update_state(state(3, 2, 2, &[3]), 0);
    assert_eq!(r.broker(2).state(), state(1, 3, 3, &[1, 2, 3]));
    // A follower not in the replica set is refused.
    let mut stranger = fetch(3);
    stranger.replica_id = 9;
    assert!(matches!(
        r.broker(1).fetch_for_follower(&stranger, 0, true),
        Err(PartitionError::NotLeaderOrFollower)
    ));
}

#[tokio::test]
async fn losing_leadership_wakes_acks_all_waiters() {
    let r = replicas(&state(1, 0, 0, &[1, 2, 3]), 1);
    r.broker(1)
        .append_as_leader(&batch(&[b"a"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    let waiter = r.broker(1).wait_for_acks(1, Duration::from_secs(10));
    let demote = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        r.broker(1).update_state(state(2, 1, 1, &[2, 3]), 0);
    };
    let (outcome, ()) = tokio::join!(waiter, demote);
    assert!(matches!(outcome, Err(PartitionError::NotLeaderOrFollower)));
}

#[tokio::test]
async fn isr_changes_are_proposed_and_the_hw_uses_the_maximal_isr() {
    const LAG_MS: i64 = 1_000;
    let r = replicas(&state(1, 0, 0, &[1, 2]), 1);
    let leader = r.broker(1);
    leader
        .append_as_leader(&batch(&[b"a"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    // Broker 3 (outside the ISR) catches up: the leader proposes adding it, with its epoch.
    r.sync(&[2, 3], 1, 0, 10);
    let proposal = leader.propose_isr_change(10, LAG_MS).unwrap();
    let members: Vec<(i32, Option<i64>)> = proposal
        .new_isr
        .iter()
        .map(|m| (m.broker_id, m.broker_epoch))
        .collect();
    assert_eq!(members, vec![(1, None), (2, None), (3, Some(103))]);
    assert_eq!(proposal.partition_epoch, 0);
    // One proposal at a time.
    assert!(leader.propose_isr_change(10, LAG_MS).is_none());
    // While it is pending, broker 3 already counts for the HW: 3 stops fetching, 1 appends.
    leader
        .append_as_leader(&batch(&[b"b"]), RequiredAcks::AllInSync, 20)
        .unwrap();
    r.sync(&[2], 1, 0, 20);
    assert_eq!(
        leader.high_watermark(),
        1,
        "held back by the member being added"
    );
    leader.complete_isr_change(IsrOutcome::Committed {
        leader_epoch: 0,
        partition_epoch: 1,
        isr: vec![1, 2, 3],
    });
    assert_eq!(leader.state().isr, vec![1, 2, 3]);
    assert_eq!(leader.state().partition_epoch, 1);
    // Broker 3 stays silent past the lag while 2 keeps up: 3 is proposed out; the HW waits
    // for the removal.
    r.sync(&[2], 1, 0, 20 + LAG_MS);
    let proposal = leader.propose_isr_change(20 + LAG_MS + 1, LAG_MS).unwrap();
    let ids: Vec<i32> = proposal.new_isr.iter().map(|m| m.broker_id).collect();
    assert_eq!(ids, vec![1, 2]);
    r.sync(&[2], 1, 0, 20 + LAG_MS + 1);
    assert_eq!(leader.high_watermark(), 1, "a pending removal still counts");
    leader.complete_isr_change(IsrOutcome::Committed {
        leader_epoch: 0,
        partition_epoch: 2,
        isr: vec![1, 2],
    });
    assert_eq!(leader.high_watermark(), 2);
    // A refused proposal leaves the committed ISR alone and may be proposed again.
    r.sync(&[3], 1, 0, 3_000);
    let again = leader.propose_isr_change(3_000, LAG_MS).unwrap();
    leader.complete_isr_change(IsrOutcome::NotCommitted);
    assert_eq!(leader.state().isr, vec![1, 2]);
    assert_eq!(leader.propose_isr_change(3_000, LAG_MS), Some(again));
}

#[tokio::test]
async fn a_follower_below_the_leaders_log_start_restarts_there() {
    let r = replicas(&state(1, 0, 0, &[1]), 1);
    for _ in 0..3 {
        r.broker(1)
            .append_as_leader(&batch(&[b"v"]), RequiredAcks::Leader, 0)
            .unwrap();
    }
    r.broker(1)
        .with_log(|log| log.advance_log_start_offset(2))
        .unwrap();
    let fetch = FollowerFetch {
        replica_id: 3,
        broker_epoch: 103,
        current_leader_epoch: 0,
        fetch_offset: 0,
        last_fetched_epoch: -1,
        max_bytes: MAX_BYTES,
        log_start_offset: Some(0),
    };
    let outcome = r.broker(1).fetch_for_follower(&fetch, 0, true);
    assert!(matches!(
        outcome,
        Err(PartitionError::Log(shoal_log::LogError::OffsetOutOfRange {
            log_start_offset: 2,
            ..
        }))
    ));
    assert_eq!(r.broker(3).reset_to_leader_range(0, 2, 3).unwrap(), 2);
    r.sync(&[3], 1, 0, 0);
    assert_eq!(r.broker(3).fetch_position(0).unwrap().fetch_offset, 3);
    // Divergence results carry the leader's epoch and end.
    let diverging = EpochEndOffset {
        epoch: 0,
        end_offset: 3,
    };
    assert_eq!(
        r.broker(3).truncate_for_divergence(0, diverging).unwrap(),
        3
    );
}

#[tokio::test]
async fn a_new_leader_answers_offset_queries_only_once_its_hw_reaches_its_epoch_start() {
    let r = replicas(&state(1, 0, 0, &[1, 2, 3]), 2);
    r.broker(1)
        .append_as_leader(&batch(&[b"a", b"b", b"c"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    // Both followers copy the batch; 3 reports its position first, so the HW of 3 the leader
    // moves to on 2's report (acknowledged) is one 3 has not learned.
    for f in [2, 3, 3, 2] {
        r.fetch_once(f, 1, 0, 0);
    }
    assert_eq!(r.broker(1).high_watermark(), 3);
    assert_eq!(r.broker(1).high_watermark_for_offset_query().unwrap(), 3);
    assert_eq!(r.broker(3).high_watermark(), 0);
    // Broker 3 takes over (a preferred-leader election, say) with its lagging HW.
    let epoch1 = state(3, 1, 1, &[1, 2, 3]);
    r.update_all(&epoch1, 10);
    assert_eq!(r.broker(3).high_watermark(), 0);
    assert!(matches!(
        r.broker(3).high_watermark_for_offset_query(),
        Err(PartitionError::OffsetNotAvailable {
            high_watermark: 0,
            epoch_start_offset: 3
        })
    ));
    // The followers' fetches from the new leader bring its HW to the epoch start.
    r.sync(&[1, 2], 3, 1, 10);
    assert_eq!(r.broker(3).high_watermark_for_offset_query().unwrap(), 3);
}

#[tokio::test]
async fn an_ack_wait_is_bound_to_the_epoch_its_append_was_made_in() {
    let r = replicas(&state(1, 0, 0, &[1, 2, 3]), 1);
    r.broker(1)
        .append_as_leader(&batch(&[b"committed"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    r.sync(&[2, 3], 1, 0, 0);
    // Broker 1 writes at offset 1 in epoch 0; nobody copies it before it loses leadership.
    let lost = r
        .broker(1)
        .append_as_leader(&batch(&[b"lost"]), RequiredAcks::AllInSync, 0)
        .unwrap();
    assert_eq!((lost.info.first_offset, lost.leader_epoch), (1, 0));
    r.update_all(&state(2, 1, 1, &[2, 3]), 100);
    r.broker(2)
        .append_as_leader(&batch(&[b"new-1", b"new-2"]), RequiredAcks::AllInSync, 100)
        .unwrap();
    r.sync(&[3, 1], 2, 1, 100);
    // Broker 1 leads again, in epoch 2, and its HW passes offset 1: another leader's record.
    r.update_all(&state(1, 2, 2, &[1, 2, 3]), 200);
    r.sync(&[2, 3], 1, 2, 200);
    assert!(r.broker(1).high_watermark() > lost.info.last_offset);
    assert!(!r.log_bytes(1).windows(4).any(|w| w == b"lost"));
    // Unbound, the wait would acknowledge the lost write (the HW passed its offset)...
    r.broker(1)
        .wait_for_acks(lost.info.last_offset + 1, Duration::from_millis(50))
        .await
        .unwrap();
    // ...bound to its epoch, it fails instead.
    let bound = r.broker(1).wait_for_acks_in_epoch(
        lost.info.last_offset + 1,
        lost.leader_epoch,
        Duration::from_millis(50),
    );
    assert!(matches!(
        bound.await,
        Err(PartitionError::NotLeaderOrFollower)
    ));
}

#[tokio::test]
async fn delete_records_is_acknowledged_once_every_in_sync_replica_moved_its_log_start() {
    let s = state(1, 0, 0, &[1, 2, 3]);
    let r = replicas(&s, 1);
    for i in 0..10u8 {
        r.broker(1)
            .append_as_leader(&batch(&[&[i]]), RequiredAcks::AllInSync, 0)
            .unwrap();
    }
    r.sync(&[2, 3], 1, 0, 0);
    assert_eq!(r.broker(1).high_watermark(), 10);
    let low = r.broker(1).subscribe_low_watermark();
    assert_eq!(*low.borrow(), 0, "every replica reported log start 0");

    // Beyond the high watermark, on a follower, or on a compact-only topic: refused.
    assert!(matches!(
        r.broker(1).delete_records(11),
        Err(PartitionError::Log(
            shoal_log::LogError::OffsetOutOfRange { .. }
        ))
    ));
    assert!(matches!(
        r.broker(2).delete_records(5),
        Err(PartitionError::NotLeaderOrFollower)
    ));

    assert_eq!(r.broker(1).delete_records(6).unwrap(), 6);
    let log_start = |id: i32| {
        r.broker(id)
            .read_log(|log| Ok(log.log_start_offset()))
            .unwrap()
    };
    assert_eq!(log_start(1), 6);
    // The followers have not heard yet: not acknowledged.
    assert_eq!(*low.borrow(), 0);
    // Node 2 trims on its next fetch and reports it on the one after; node 3 still holds
    // the low watermark back.
    r.fetch_once(2, 1, 0, 0);
    r.fetch_once(2, 1, 0, 0);
    assert_eq!(log_start(2), 6);
    assert_eq!(*low.borrow(), 0);
    r.fetch_once(3, 1, 0, 0);
    r.fetch_once(3, 1, 0, 0);
    assert_eq!(log_start(3), 6);
    assert_eq!(*low.borrow(), 6);
    // -1 is the high watermark.
    assert_eq!(r.broker(1).delete_records(-1).unwrap(), 10);
    // A follower out of the ISR does not hold it back.
    let shrunk = state(1, 0, 1, &[1, 2]);
    r.update_all(&shrunk, 0);
    r.sync(&[2], 1, 0, 0);
    assert_eq!(*low.borrow(), 10);
}
