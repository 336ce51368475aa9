//! Transactions at a partition, leader and followers: the last stable offset, READ_COMMITTED
//! fetches and their aborted lists, the producer-state rules (INVALID_TXN_STATE, fenced
//! markers, KIP-890 verification), a follower that takes over, and a truncated marker.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::txn_common;

use shoal_log::AbortedTxn;
use shoal_replica::{
    AppendOrigin, ControlType, IsolationLevel, OngoingTxn, PartitionError, RequiredAcks,
};
use txn_common::*;

const P7: i64 = 7;
const P8: i64 = 8;

#[test]
fn the_lso_waits_for_the_open_transaction_and_then_for_the_hw_to_pass_its_marker() {
    let r = Replicas::new(&state(1, 0, &[1, 2]));
    let leader = r.broker(1);
    let mut lso = leader.subscribe_last_stable_offset();
    leader
        .append_as_leader(&plain(&[b"a"]), RequiredAcks::AllInSync, NOW_MS)
        .unwrap();
    txn_write(leader, P7, 0, 0, &[b"t1"]).unwrap(); // offset 1
    leader
        .append_as_leader(&plain(&[b"b"]), RequiredAcks::AllInSync, NOW_MS)
        .unwrap();
    r.sync(&[2], 1, 0);
    assert_eq!(leader.high_watermark(), 3);
    assert_eq!(
        leader.last_stable_offset(),
        1,
        "held at the open transaction"
    );
    assert!(lso.has_changed().unwrap());
    assert_eq!(*lso.borrow_and_update(), 1);
    assert_eq!(r.broker(2).last_stable_offset(), 1, "the follower agrees");

    // READ_COMMITTED stops at the LSO; a fetch at the LSO is empty, not out of range.
    let fetched = read_committed(leader, 0);
    assert_eq!(batch_offsets(&fetched.records), vec![0]);
    assert_eq!(fetched.last_stable_offset, 1);
    assert!(read_committed(leader, 1).records.is_empty());
    assert!(read_committed(leader, 2).records.is_empty());
    let uncommitted = leader
        .read_committed(0, MAX_BYTES, true, IsolationLevel::ReadUncommitted)
        .unwrap();
    assert_eq!(batch_offsets(&uncommitted.records), vec![0, 1, 2]);
    assert_eq!(uncommitted.last_stable_offset, 1);

    // COMMIT at 3: decided, but not stable until the HW passes the marker.
    let marker = end_txn(leader, P7, 0, 0, ControlType::Commit).unwrap();
    assert_eq!(marker.info.first_offset, 3);
    assert_eq!(leader.last_stable_offset(), 1);
    r.fetch_once(2, 1, 0); // the follower copies the marker; the leader does not know yet
    assert_eq!(leader.high_watermark(), 3);
    assert_eq!(leader.last_stable_offset(), 1);
    r.fetch_once(2, 1, 0);
    assert_eq!(leader.high_watermark(), 4);
    assert_eq!(leader.last_stable_offset(), 4);
    assert_eq!(*lso.borrow_and_update(), 4);
    assert_eq!(r.broker(2).last_stable_offset(), 4);
    assert_eq!(
        batch_offsets(&read_committed(leader, 0).records),
        vec![0, 1, 2, 3]
    );
    assert_eq!(leader.last_stable_offset_for_offset_query().unwrap(), 4);
}

#[test]
fn read_committed_lists_the_aborted_transactions_of_what_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    p.append_as_leader(&plain(&[b"a"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 0
    txn_write(&p, P7, 0, 0, &[b"x", b"y"]).unwrap(); // 1..=2
    p.append_as_leader(&plain(&[b"b"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 3
    end_txn(&p, P7, 0, 0, ControlType::Abort).unwrap(); // 4
    p.append_as_leader(&plain(&[b"c"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 5
    txn_write(&p, P8, 0, 0, &[b"open"]).unwrap(); // 6, still open
    p.append_as_leader(&plain(&[b"d"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 7
    assert_eq!(p.high_watermark(), 8);
    assert_eq!(p.last_stable_offset(), 6);

    let aborted = AbortedTxn {
        producer_id: P7,
        first_offset: 1,
        last_offset: 4,
        last_stable_offset: 5,
    };
    let fetched = read_committed(&p, 0);
    assert_eq!(batch_offsets(&fetched.records), vec![0, 1, 3, 4, 5]);
    assert_eq!(fetched.aborted_transactions, vec![aborted]);
    assert_eq!(fetched.last_stable_offset, 6);
    // A fetch that starts after the abort's marker, or ends before its data, needs no entry.
    assert!(read_committed(&p, 5).aborted_transactions.is_empty());
    let first_only = p
        .read_committed(0, 1, true, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(batch_offsets(&first_only.records), vec![0]);
    assert!(first_only.aborted_transactions.is_empty());
    // From inside the aborted transaction.
    assert_eq!(read_committed(&p, 2).aborted_transactions, vec![aborted]);
    assert!(read_committed(&p, 6).records.is_empty());
    // READ_UNCOMMITTED reads to the HW and lists nothing.
    let uncommitted = p
        .read_committed(0, MAX_BYTES, true, IsolationLevel::ReadUncommitted)
        .unwrap();
    assert_eq!(
        batch_offsets(&uncommitted.records),
        vec![0, 1, 3, 4, 5, 6, 7]
    );
    assert!(uncommitted.aborted_transactions.is_empty());
    assert_eq!(
        p.ongoing_transactions(),
        vec![OngoingTxn {
            producer_id: P8,
            producer_epoch: 0,
            first_offset: 6,
            started_ms: NOW_MS
        }]
    );
}

#[test]
fn a_non_transactional_write_during_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    txn_write(&p, P7, 0, 0, &[b"in txn"]).unwrap();
    let end = p.read_log(|l| Ok(l.log_end_offset())).unwrap();
    assert!(matches!(
        p.append_as_leader(
            &producer_batch(P7, 0, 1, false, &[b"outside"]),
            RequiredAcks::Leader,
            NOW_MS
        ),
        Err(PartitionError::InvalidTxnState)
    ));
    assert_eq!(p.read_log(|l| Ok(l.log_end_offset())).unwrap(), end);
    // Within the transaction the producer goes on, with no verification needed.
    assert_eq!(p.txn_verification_needed(P7, 0, false, 0), None);
    p.append_as_leader(
        &producer_batch(P7, 0, 1, true, &[b"more"]),
        RequiredAcks::Leader,
        NOW_MS,
    )
    .unwrap();
}

#[test]
fn markers_from_fenced_producers_and_coordinators_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    txn_write(&p, P7, 0, 0, &[b"a"]).unwrap();
    end_txn(&p, P7, 0, 5, ControlType::Commit).unwrap();
    // The producer re-initialised (epoch 1) and opened a new transaction.
    txn_write(&p, P7, 1, 0, &[b"b"]).unwrap();
    let end = p.read_log(|l| Ok(l.log_end_offset())).unwrap();
    assert!(matches!(
        end_txn(&p, P7, 0, 5, ControlType::Abort),
        Err(PartitionError::InvalidProducerEpoch { current: 1, got: 0 })
    ));
    assert!(matches!(
        end_txn(&p, P7, 1, 4, ControlType::Abort),
        Err(PartitionError::TransactionCoordinatorFenced { current: 5, got: 4 })
    ));
    assert_eq!(
        p.read_log(|l| Ok(l.log_end_offset())).unwrap(),
        end,
        "nothing written"
    );
    assert_eq!(p.ongoing_transactions().len(), 1);
    // A newer coordinator, and a bumped epoch (KIP-890 part 2), are accepted.
    end_txn(&p, P7, 2, 6, ControlType::Abort).unwrap();
    assert!(p.ongoing_transactions().is_empty());
    let entry = p.producer_entries()[0];
    assert_eq!(
        (
            entry.producer_epoch,
            entry.coordinator_epoch,
            entry.current_txn_start_offset
        ),
        (2, 6, -1)
    );
    // A marker for a producer this partition never saw is written all the same.
    end_txn(&p, 99, 0, 0, ControlType::Abort).unwrap();
}

#[test]
fn a_verification_overtaken_by_a_marker_does_not_open_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    let guard = p
        .txn_verification_needed(P7, 0, false, 0)
        .expect("a first write is verified");
    assert_eq!(
        p.txn_verification_needed(P7, 0, false, 0),
        Some(guard),
        "the same guard"
    );
    // The coordinator aborts the transaction (it timed out) before the verified write lands.
    end_txn(&p, P7, 0, 0, ControlType::Abort).unwrap();
    let late = p.append_as_leader_from(
        &producer_batch(P7, 0, 0, true, &[b"late"]),
        RequiredAcks::Leader,
        NOW_MS,
        AppendOrigin::Client {
            verification: Some(guard),
        },
    );
    assert!(matches!(late, Err(PartitionError::InvalidTxnState)));
    // Without a guard at all, too.
    assert!(matches!(
        p.append_as_leader(
            &producer_batch(P7, 0, 0, true, &[b"x"]),
            RequiredAcks::Leader,
            NOW_MS
        ),
        Err(PartitionError::InvalidTxnState)
    ));
    assert!(p.ongoing_transactions().is_empty());
    // Verified afresh, the write opens the transaction.
    txn_write(&p, P7, 0, 0, &[b"fresh"]).unwrap();
    assert_eq!(p.ongoing_transactions().len(), 1);
}

#[test]
fn with_verification_off_a_first_transactional_write_needs_no_guard() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    p.set_txn_verification_enabled(false);
    assert_eq!(p.txn_verification_needed(P7, 0, false, 0), None);
    p.append_as_leader(
        &producer_batch(P7, 0, 0, true, &[b"unverified"]),
        RequiredAcks::Leader,
        NOW_MS,
    )
    .unwrap();
    assert_eq!(p.ongoing_transactions().len(), 1);
    p.set_txn_verification_enabled(true);
    assert!(p.txn_verification_needed(P8, 0, false, 0).is_some());
}

#[test]
fn the_coordinator_writes_unsequenced_transactional_records() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    let offsets = producer_batch(P7, 0, -1, true, &[b"txn offset commit"]);
    assert!(
        p.append_as_leader(&offsets, RequiredAcks::Leader, NOW_MS)
            .is_err()
    );
    // KIP-890 holds for the coordinator too: no guard, no new transaction.
    assert!(matches!(
        p.append_as_leader_from(
            &offsets,
            RequiredAcks::Leader,
            NOW_MS,
            AppendOrigin::COORDINATOR,
        ),
        Err(PartitionError::InvalidTxnState)
    ));
    let verification = p.txn_verification_needed(P7, 0, false, 0);
    assert!(verification.is_some());
    p.append_as_leader_from(
        &offsets,
        RequiredAcks::Leader,
        NOW_MS,
        AppendOrigin::Coordinator { verification },
    )
    .unwrap();
    assert_eq!(p.last_stable_offset(), 0);
    // Inside the open transaction the next write needs no guard.
    assert_eq!(p.txn_verification_needed(P7, 0, false, 0), None);
    p.append_as_leader_from(
        &offsets,
        RequiredAcks::Leader,
        NOW_MS,
        AppendOrigin::COORDINATOR,
    )
    .unwrap();
    end_txn(&p, P7, 0, 0, ControlType::Commit).unwrap();
    assert_eq!(p.last_stable_offset(), 3);
}

#[test]
fn a_follower_that_takes_over_has_the_leaders_lso_and_aborted_list() {
    let r = Replicas::new(&state(1, 0, &[1, 2]));
    let leader = r.broker(1);
    txn_write(leader, P7, 0, 0, &[b"aborted"]).unwrap();
    txn_write(leader, P8, 0, 0, &[b"open"]).unwrap();
    end_txn(leader, P7, 0, 0, ControlType::Abort).unwrap();
    leader
        .append_as_leader(&plain(&[b"after"]), RequiredAcks::Leader, NOW_MS)
        .unwrap();
    r.sync(&[2], 1, 0);
    let follower = r.broker(2);
    assert_eq!(index(leader).len(), 1);
    assert_eq!(index(follower), index(leader));
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
    assert_eq!(follower.last_stable_offset(), 1, "held by producer 8");
    assert_eq!(
        follower.ongoing_transactions(),
        leader.ongoing_transactions()
    );
    assert_eq!(follower.producer_entries(), leader.producer_entries());

    // Broker 2 leads now: it answers READ_COMMITTED as broker 1 did, and takes the marker.
    let epoch1 = state(2, 1, &[1, 2]);
    r.update_all(&epoch1);
    let before = read_committed(leader, 0);
    let after = read_committed(follower, 0);
    assert_eq!(after.records, before.records);
    assert_eq!(after.aborted_transactions, before.aborted_transactions);
    assert_eq!(follower.last_stable_offset(), 1);
    end_txn(follower, P8, 0, 1, ControlType::Commit).unwrap();
    r.sync(&[1], 2, 1);
    assert_eq!(follower.last_stable_offset(), 5);
    assert_eq!(leader.last_stable_offset(), 5);
    assert!(leader.ongoing_transactions().is_empty());
}

#[test]
fn a_truncated_marker_reopens_its_transaction() {
    let r = Replicas::new(&state(1, 0, &[1, 2]));
    let old = r.broker(1);
    txn_write(old, P7, 0, 0, &[b"a"]).unwrap();
    r.sync(&[2], 1, 0);
    // Broker 1 writes the ABORT, nobody copies it, and broker 2 takes over.
    end_txn(old, P7, 0, 0, ControlType::Abort).unwrap();
    assert_eq!(index(old).len(), 1);
    assert!(old.ongoing_transactions().is_empty());
    let epoch1 = state(2, 1, &[1, 2]);
    r.update_all(&epoch1);
    let new = r.broker(2);
    new.append_as_leader(&plain(&[b"new"]), RequiredAcks::Leader, NOW_MS)
        .unwrap();
    // Broker 1 follows: its marker diverges and is cut; the transaction is open again.
    r.sync(&[1], 2, 1);
    assert!(index(old).is_empty());
    assert_eq!(old.ongoing_transactions(), new.ongoing_transactions());
    assert_eq!(
        old.ongoing_transactions()
            .iter()
            .map(|t| t.first_offset)
            .collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(old.last_stable_offset(), 0);
    // The producer can go on with it on the new leader, no verification needed.
    assert_eq!(new.txn_verification_needed(P7, 0, false, 0), None);
}
