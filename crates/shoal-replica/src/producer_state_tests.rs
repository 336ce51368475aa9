#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use super::*;

const CLIENT: AppendOrigin = AppendOrigin::Client { verification: None };

fn meta(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchMetadata {
    BatchMetadata {
        first_seq,
        last_seq,
        first_offset,
        last_offset: first_offset + i64::from(last_seq - first_seq),
    }
}

/// A stored batch of `records` records from sequence `seq` at `first_offset`.
fn data(producer_id: i64, epoch: i16, seq: i32, records: i64, first_offset: i64) -> StoredBatch {
    StoredBatch {
        producer_id,
        producer_epoch: epoch,
        first_offset,
        last_offset: first_offset + records - 1,
        max_timestamp_ms: 1_000 + first_offset,
        kind: BatchKind::Data {
            base_sequence: seq,
            is_transactional: false,
        },
    }
}

fn txn_data(
    producer_id: i64,
    epoch: i16,
    seq: i32,
    records: i64,
    first_offset: i64,
) -> StoredBatch {
    StoredBatch {
        kind: BatchKind::Data {
            base_sequence: seq,
            is_transactional: true,
        },
        ..data(producer_id, epoch, seq, records, first_offset)
    }
}

fn marker(
    producer_id: i64,
    epoch: i16,
    coordinator_epoch: i32,
    control: ControlType,
    offset: i64,
) -> StoredBatch {
    StoredBatch {
        producer_id,
        producer_epoch: epoch,
        first_offset: offset,
        last_offset: offset,
        max_timestamp_ms: 5_000 + offset,
        kind: BatchKind::Marker {
            control,
            coordinator_epoch,
        },
    }
}

fn batch(producer_id: i64, epoch: i16, first_seq: i32, last_seq: i32, txn: bool) -> DataBatch {
    DataBatch {
        producer_id,
        producer_epoch: epoch,
        first_seq,
        last_seq,
        is_transactional: txn,
    }
}

fn guarded(value: u64) -> AppendOrigin {
    AppendOrigin::Client {
        verification: Some(VerificationGuard::for_test(value)),
    }
}

// ─── Idempotence (unchanged rules) ─────────────────────────────────────────────────────────

#[test]
fn unknown_producer_is_accepted_at_any_sequence() {
    let t = ProducerStateTable::default();
    assert_eq!(t.check(7, 0, 42, 44), Ok(SequenceCheck::Append));
}

#[test]
fn in_order_batches_append_and_gaps_are_refused() {
    let mut t = ProducerStateTable::default();
    t.apply(&data(7, 0, 0, 10, 100), 1);
    assert_eq!(t.check(7, 0, 10, 19), Ok(SequenceCheck::Append));
    assert_eq!(
        t.check(7, 0, 11, 19),
        Err(ProducerStateError::OutOfOrderSequence {
            expected: 10,
            got: 11
        })
    );
    assert_eq!(
        t.check(7, 0, 5, 9),
        Err(ProducerStateError::OutOfOrderSequence {
            expected: 10,
            got: 5
        })
    );
}

#[test]
fn retries_of_the_last_five_batches_are_duplicates() {
    let mut t = ProducerStateTable::default();
    for i in 0..6 {
        t.apply(&data(7, 0, i * 10, 10, 1000 + i64::from(i) * 10), 1);
    }
    assert_eq!(
        t.check(7, 0, 50, 59),
        Ok(SequenceCheck::Duplicate(meta(50, 59, 1050)))
    );
    assert_eq!(
        t.check(7, 0, 10, 19),
        Ok(SequenceCheck::Duplicate(meta(10, 19, 1010)))
    );
    // The sixth-newest batch has been forgotten: it is no longer recognised.
    assert!(matches!(
        t.check(7, 0, 0, 9),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn epochs_fence_and_reset() {
    let mut t = ProducerStateTable::default();
    t.apply(&data(7, 3, 0, 5, 0), 1);
    assert_eq!(
        t.check(7, 2, 5, 5),
        Err(ProducerStateError::InvalidProducerEpoch { current: 3, got: 2 })
    );
    assert_eq!(t.check(7, 4, 0, 3), Ok(SequenceCheck::Append));
    assert_eq!(
        t.check(7, 4, 5, 6),
        Err(ProducerStateError::OutOfOrderSequence {
            expected: 0,
            got: 5
        })
    );
    t.apply(&data(7, 4, 0, 4, 10), 2);
    assert_eq!(t.check(7, 4, 4, 4), Ok(SequenceCheck::Append));
}

#[test]
fn sequence_wraps_at_i32_max() {
    let mut t = ProducerStateTable::default();
    t.apply(&data(7, 0, i32::MAX - 1, 2, 0), 1);
    assert_eq!(t.check(7, 0, 0, 3), Ok(SequenceCheck::Append));
}

#[test]
fn table_is_bounded_and_evicts_the_idlest_without_an_open_transaction() {
    let mut t = ProducerStateTable::default();
    // Producer 0 is the idlest but has an open transaction; producer 1 is next.
    t.apply(&txn_data(0, 0, 0, 1, 0), 1);
    for id in 1..MAX_PRODUCERS as i64 {
        t.apply(&data(id, 0, 0, 1, id), 10 + id);
    }
    t.apply(&data(-5, 0, 0, 1, 0), 1_000_000);
    assert_eq!(t.len(), MAX_PRODUCERS);
    assert!(
        t.has_ongoing_txn(0, 0),
        "an open transaction is never evicted"
    );
    // Producer 1 is gone, so it is unknown again; producer 2 is still known.
    assert_eq!(t.check(1, 0, 17, 17), Ok(SequenceCheck::Append));
    assert!(matches!(
        t.check(2, 0, 17, 17),
        Err(ProducerStateError::OutOfOrderSequence { .. })
    ));
    assert_eq!(t.first_unstable_offset(), Some(0));
}

// ─── The leader's checks with transactions ─────────────────────────────────────────────────

#[test]
fn data_batch_checks() {
    // A table where producer 1 has an open transaction from offset 0 (epoch 2, last seq 0),
    // producer 2 wrote non-transactionally (epoch 0, last seq 4), and producer 3 holds a
    // verification guard (value 9) but has written nothing.
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(1, 2, 0, 1, 0), 1);
    t.apply(&data(2, 0, 0, 5, 1), 1);
    t.start_verification(3, 0, false, VerificationGuard::for_test(9), 0);
    let coordinator = AppendOrigin::COORDINATOR;
    use ProducerStateError::*;
    let cases: [(
        &str,
        DataBatch,
        AppendOrigin,
        Result<SequenceCheck, ProducerStateError>,
    ); 16] = [
        (
            "txn continues",
            batch(1, 2, 1, 1, true),
            CLIENT,
            Ok(SequenceCheck::Append),
        ),
        (
            "non-txn during txn",
            batch(1, 2, 1, 1, false),
            CLIENT,
            Err(InvalidTxnState),
        ),
        (
            "txn retry is a duplicate",
            batch(1, 2, 0, 0, true),
            CLIENT,
            Ok(SequenceCheck::Duplicate(meta(0, 0, 0))),
        ),
        (
            "older epoch",
            batch(1, 1, 1, 1, true),
            CLIENT,
            Err(InvalidProducerEpoch { current: 2, got: 1 }),
        ),
        (
            "txn gap",
            batch(1, 2, 3, 3, true),
            CLIENT,
            Err(OutOfOrderSequence {
                expected: 1,
                got: 3,
            }),
        ),
        (
            "first txn write without a guard",
            batch(2, 0, 5, 5, true),
            CLIENT,
            Err(InvalidTxnState),
        ),
        (
            "unknown producer, txn, no guard",
            batch(4, 0, 0, 0, true),
            CLIENT,
            Err(InvalidTxnState),
        ),
        (
            "wrong guard",
            batch(3, 0, 0, 0, true),
            guarded(8),
            Err(InvalidTxnState),
        ),
        (
            "current guard",
            batch(3, 0, 0, 0, true),
            guarded(9),
            Ok(SequenceCheck::Append),
        ),
        // A newer epoch than the open transaction's is not that transaction: verify again.
        (
            "txn at a newer epoch",
            batch(1, 3, 0, 0, true),
            CLIENT,
            Err(InvalidTxnState),
        ),
        (
            "non-txn at a newer epoch",
            batch(1, 3, 0, 0, false),
            CLIENT,
            Err(InvalidTxnState),
        ),
        // The coordinator's batches: no sequence; epochs, guards and the txn rule hold.
        (
            "coordinator, txn start without a guard",
            batch(2, 0, -1, -1, true),
            coordinator,
            Err(InvalidTxnState),
        ),
        (
            "coordinator, txn start with the current guard",
            batch(3, 0, -1, -1, true),
            AppendOrigin::Coordinator {
                verification: Some(VerificationGuard::for_test(9)),
            },
            Ok(SequenceCheck::Append),
        ),
        (
            "coordinator, unsequenced in an open txn",
            batch(1, 2, -1, -1, true),
            coordinator,
            Ok(SequenceCheck::Append),
        ),
        (
            "coordinator, old epoch",
            batch(1, 0, -1, -1, true),
            coordinator,
            Err(InvalidProducerEpoch { current: 2, got: 0 }),
        ),
        (
            "coordinator, non-txn in txn",
            batch(1, 2, -1, -1, false),
            coordinator,
            Err(InvalidTxnState),
        ),
    ];
    for (name, b, origin, expected) in cases {
        assert_eq!(t.check_data(&b, origin, true), expected, "{name}");
    }
}

#[test]
fn marker_checks() {
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(1, 2, 0, 1, 0), 1);
    t.apply(&marker(1, 2, 5, ControlType::Commit, 1), 1);
    t.apply(&txn_data(1, 2, 1, 1, 2), 1);
    use ProducerStateError::*;
    // (producer, epoch, coordinator epoch, expected)
    let cases = [
        (1, 2, 5, Ok(())),
        (1, 3, 6, Ok(())),
        (1, 1, 5, Err(InvalidProducerEpoch { current: 2, got: 1 })),
        (
            1,
            2,
            4,
            Err(TransactionCoordinatorFenced { current: 5, got: 4 }),
        ),
        (1, 1, 4, Err(InvalidProducerEpoch { current: 2, got: 1 })),
        (9, 0, 0, Ok(())),
    ];
    for (producer_id, epoch, coordinator_epoch, expected) in cases {
        assert_eq!(
            t.check_marker(producer_id, epoch, coordinator_epoch),
            expected,
            "producer {producer_id} epoch {epoch} coordinator epoch {coordinator_epoch}"
        );
    }
}

// ─── Recording transactions ────────────────────────────────────────────────────────────────

#[test]
fn a_transaction_opens_at_its_first_batch_and_a_marker_completes_it() {
    let mut t = ProducerStateTable::default();
    assert_eq!(t.apply(&txn_data(1, 0, 0, 2, 10), 1), Applied::default());
    assert_eq!(t.apply(&txn_data(1, 0, 2, 2, 12), 1), Applied::default());
    assert_eq!(
        t.first_unstable_offset(),
        Some(10),
        "the first batch's offset"
    );
    let applied = t.apply(&marker(1, 0, 0, ControlType::Commit, 14), 1);
    assert_eq!(
        applied,
        Applied {
            completed: Some(CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14,
                is_aborted: false
            }),
            aborted: None,
        }
    );
    assert!(!t.has_ongoing_txn(1, 0));
    // Decided, but unstable until the high watermark passes the marker.
    assert_eq!(t.first_unstable_offset(), Some(10));
    t.on_high_watermark(14);
    assert_eq!(t.first_unstable_offset(), Some(10));
    t.on_high_watermark(15);
    assert_eq!(t.first_unstable_offset(), None);
    // Sequences go on after a COMMIT at the same epoch (Kafka's transaction version 1).
    assert_eq!(
        t.check_data(&batch(1, 0, 4, 4, false), CLIENT, true),
        Ok(SequenceCheck::Append)
    );
}

#[test]
fn an_abort_yields_its_index_entry_with_the_lso_of_the_others() {
    // (other open transactions (producer, first offset), expected last stable offset)
    let cases: [(&[(i64, i64)], i64); 3] = [(&[], 21), (&[(2, 15)], 15), (&[(2, 15), (3, 5)], 5)];
    for (others, expected_lso) in cases {
        let mut t = ProducerStateTable::default();
        t.apply(&txn_data(1, 0, 0, 1, 10), 1);
        for (producer_id, first) in others {
            t.apply(&txn_data(*producer_id, 0, 0, 1, *first), 1);
        }
        let applied = t.apply(&marker(1, 0, 0, ControlType::Abort, 20), 1);
        assert_eq!(
            applied.aborted,
            Some(AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 20,
                last_stable_offset: expected_lso
            }),
            "{others:?}"
        );
        assert!(applied.completed.is_some_and(|c| c.is_aborted));
    }
}

#[test]
fn a_marker_without_an_open_transaction_completes_nothing_but_records_epochs() {
    let mut t = ProducerStateTable::default();
    let applied = t.apply(&marker(1, 4, 7, ControlType::Abort, 3), 1);
    assert_eq!(applied, Applied::default());
    assert_eq!(t.first_unstable_offset(), None);
    let entry = t.producer_entries()[0];
    assert_eq!(
        (
            entry.producer_epoch,
            entry.coordinator_epoch,
            entry.current_txn_start_offset
        ),
        (4, 7, -1)
    );
    assert_eq!(
        t.check_marker(1, 4, 6),
        Err(ProducerStateError::TransactionCoordinatorFenced { current: 7, got: 6 })
    );
}

#[test]
fn a_marker_with_a_bumped_epoch_resets_sequences_and_spends_the_guard() {
    let mut t = ProducerStateTable::default();
    t.start_verification(1, 0, false, VerificationGuard::for_test(1), 0);
    t.apply(&txn_data(1, 0, 0, 3, 0), 1);
    // KIP-890 part 2: the coordinator ends the transaction with the epoch bumped.
    t.apply(&marker(1, 1, 0, ControlType::Commit, 3), 1);
    assert_eq!(
        t.check_data(&batch(1, 0, 3, 3, false), CLIENT, true),
        Err(ProducerStateError::InvalidProducerEpoch { current: 1, got: 0 })
    );
    assert_eq!(
        t.check_data(&batch(1, 1, 3, 3, false), CLIENT, true),
        Err(ProducerStateError::OutOfOrderSequence {
            expected: 0,
            got: 3
        })
    );
    assert_eq!(
        t.check_data(&batch(1, 1, 0, 0, false), CLIENT, true),
        Ok(SequenceCheck::Append)
    );
    // The guard of the ended transaction no longer opens one.
    assert_eq!(
        t.check_data(&batch(1, 1, 0, 0, true), guarded(1), true),
        Err(ProducerStateError::InvalidTxnState)
    );
}

#[test]
fn a_version_2_write_verified_before_the_previous_marker_keeps_its_guard() {
    // Transaction 1 writes at epoch 0; EndTxn v5 answers epoch 1 at once, and the producer's
    // next transaction is added here (guard at epoch 1) before transaction 1's marker, which
    // carries epoch 1, arrives.
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(1, 0, 0, 3, 0), 1);
    let guard = t.start_verification(1, 1, true, VerificationGuard::for_test(7), 0);
    t.apply(&marker(1, 1, 0, ControlType::Commit, 3), 1);
    assert_eq!(
        t.check_data(&batch(1, 1, 0, 0, true), guarded(7), true),
        Ok(SequenceCheck::Append),
        "the marker ended the transaction before, not the one verified"
    );
    assert_eq!(guard, VerificationGuard::for_test(7));
    // Transaction 2 is then aborted (its markers carry epoch 2) before the verified write
    // lands: the guard is spent.
    t.apply(&marker(1, 2, 0, ControlType::Abort, 4), 1);
    assert_eq!(
        t.check_data(&batch(1, 2, 0, 0, true), guarded(7), true),
        Err(ProducerStateError::InvalidTxnState)
    );
    // The same order with a classic (version 0/1) guard spends it at the first marker.
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(1, 0, 0, 3, 0), 1);
    t.start_verification(1, 1, false, VerificationGuard::for_test(8), 0);
    t.apply(&marker(1, 1, 0, ControlType::Commit, 3), 1);
    assert_eq!(
        t.check_data(&batch(1, 1, 0, 0, true), guarded(8), true),
        Err(ProducerStateError::InvalidTxnState)
    );
}

#[test]
fn a_verified_write_that_an_abort_overtook_is_refused() {
    let mut t = ProducerStateTable::default();
    let guard = t.start_verification(1, 0, false, VerificationGuard::for_test(40), 0);
    assert_eq!(guard, VerificationGuard::for_test(40));
    assert_eq!(
        t.start_verification(1, 0, false, VerificationGuard::for_test(41), 0),
        guard,
        "created only if absent"
    );
    let origin = AppendOrigin::Client {
        verification: Some(guard),
    };
    // The coordinator aborts (the producer timed out) before the verified write arrives.
    t.apply(&marker(1, 0, 0, ControlType::Abort, 0), 1);
    assert_eq!(
        t.check_data(&batch(1, 0, 0, 0, true), origin, true),
        Err(ProducerStateError::InvalidTxnState)
    );
    // Verified again, the write opens a transaction; later batches need no guard.
    let fresh = t.start_verification(1, 0, false, VerificationGuard::for_test(42), 0);
    let origin = AppendOrigin::Client {
        verification: Some(fresh),
    };
    assert_eq!(
        t.check_data(&batch(1, 0, 0, 0, true), origin, true),
        Ok(SequenceCheck::Append)
    );
    t.apply(&txn_data(1, 0, 0, 1, 1), 1);
    assert_eq!(
        t.check_data(&batch(1, 0, 1, 1, true), CLIENT, true),
        Ok(SequenceCheck::Append)
    );
}

#[test]
fn without_verification_a_first_transactional_write_needs_no_guard() {
    let mut t = ProducerStateTable::default();
    t.apply(&data(1, 0, 0, 1, 0), 1);
    // (batch, verification enabled, expected)
    let cases = [
        (
            batch(1, 0, 1, 1, true),
            true,
            Err(ProducerStateError::InvalidTxnState),
        ),
        (batch(1, 0, 1, 1, true), false, Ok(SequenceCheck::Append)),
        (batch(2, 0, 0, 0, true), false, Ok(SequenceCheck::Append)),
        // The other rules still hold.
        (
            batch(1, 0, 5, 5, true),
            false,
            Err(ProducerStateError::OutOfOrderSequence {
                expected: 1,
                got: 5,
            }),
        ),
    ];
    for (b, enabled, expected) in cases {
        assert_eq!(
            t.check_data(&b, CLIENT, enabled),
            expected,
            "{b:?} {enabled}"
        );
    }
}

#[test]
fn coordinator_batches_open_transactions_without_sequences() {
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(5, 1, -1, 1, 40), 1);
    assert!(t.has_ongoing_txn(5, 1));
    let entry = t.producer_entries()[0];
    assert_eq!(
        (entry.last_sequence, entry.current_txn_start_offset),
        (-1, 40)
    );
    let applied = t.apply(&marker(5, 1, 0, ControlType::Commit, 41), 1);
    assert_eq!(applied.completed.map(|c| c.first_offset), Some(40));
}

#[test]
fn reports_open_transactions_and_producers() {
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(2, 1, 0, 2, 20), 1);
    t.apply(&txn_data(1, 3, 0, 1, 30), 1);
    t.apply(&data(3, 0, 0, 4, 40), 1);
    t.apply(&marker(3, 0, 2, ControlType::Commit, 44), 1);
    assert_eq!(
        t.ongoing_transactions(),
        vec![
            OngoingTxn {
                producer_id: 2,
                producer_epoch: 1,
                first_offset: 20,
                started_ms: 1_020
            },
            OngoingTxn {
                producer_id: 1,
                producer_epoch: 3,
                first_offset: 30,
                started_ms: 1_030
            },
        ]
    );
    assert_eq!(
        t.producer_entries(),
        vec![
            ProducerEntryInfo {
                producer_id: 1,
                producer_epoch: 3,
                last_sequence: 0,
                last_timestamp_ms: 1_030,
                coordinator_epoch: -1,
                current_txn_start_offset: 30
            },
            ProducerEntryInfo {
                producer_id: 2,
                producer_epoch: 1,
                last_sequence: 1,
                last_timestamp_ms: 1_020,
                coordinator_epoch: -1,
                current_txn_start_offset: 20
            },
            ProducerEntryInfo {
                producer_id: 3,
                producer_epoch: 0,
                last_sequence: 3,
                last_timestamp_ms: 5_044,
                coordinator_epoch: 2,
                current_txn_start_offset: -1
            },
        ]
    );
}

// ─── Snapshots ─────────────────────────────────────────────────────────────────────────────

#[test]
fn a_snapshot_keeps_open_and_unreplicated_transactions_but_no_guards() {
    let mut t = ProducerStateTable::default();
    t.apply(&txn_data(1, 0, 0, 1, 10), 1);
    t.apply(&txn_data(2, 0, 0, 1, 11), 1);
    t.apply(&marker(2, 0, 4, ControlType::Abort, 12), 1);
    t.start_verification(3, 0, false, VerificationGuard::for_test(1), 0);
    let json = serde_json::to_string(&t).unwrap();
    let back: ProducerStateTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back.ongoing_transactions(), t.ongoing_transactions());
    assert_eq!(back.producer_entries(), t.producer_entries());
    assert_eq!(back.first_unstable_offset(), Some(10));
    let mut back = back;
    t.on_high_watermark(13);
    back.on_high_watermark(13);
    assert_eq!(back.first_unstable_offset(), Some(10));
    t.verifications = Verifications::default();
    assert_eq!(back, t);
}

#[test]
fn a_snapshot_of_the_earlier_format_loads_without_transactions() {
    let old = r#"{"producers":{"42":{"epoch":3,"batches":[{"first_seq":0,"last_seq":1,"first_offset":0,"last_offset":1}],"last_write_ms":5}}}"#;
    let t: ProducerStateTable = serde_json::from_str(old).unwrap();
    assert!(matches!(
        t.check(42, 3, 0, 1),
        Ok(SequenceCheck::Duplicate(_))
    ));
    assert_eq!(t.check(42, 3, 2, 2), Ok(SequenceCheck::Append));
    assert_eq!(
        t.producer_entries(),
        vec![ProducerEntryInfo {
            producer_id: 42,
            producer_epoch: 3,
            last_sequence: 1,
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            current_txn_start_offset: -1
        }]
    );
    assert_eq!(t.first_unstable_offset(), None);
}

#[test]
fn a_verified_batch_above_the_lowest_verified_sequence_waits_for_the_lower_one() {
    // Two batches of a producer with no state here (seqs 0..=4 and 5..=9) are verified in
    // either order; the later one must not open the transaction first (Kafka 4's
    // lowestSequence), or the earlier one would then be out of order for good.
    let mut t = ProducerStateTable::default();
    let guard = t.start_verification(1, 0, false, VerificationGuard::for_test(1), 5);
    assert_eq!(
        t.start_verification(1, 0, false, VerificationGuard::for_test(2), 0),
        guard
    );
    // (batch, origin, expected)
    let cases = [
        (
            batch(1, 0, 5, 9, true),
            guarded(1),
            Err(ProducerStateError::OutOfOrderSequence {
                expected: 0,
                got: 5,
            }),
        ),
        (
            batch(1, 0, 0, 4, true),
            guarded(1),
            Ok(SequenceCheck::Append),
        ),
    ];
    for (b, origin, expected) in cases {
        assert_eq!(t.check_data(&b, origin, true), expected, "{b:?}");
    }
    // Once the lower batch opened the transaction, the later one follows in order.
    t.apply(&txn_data(1, 0, 0, 5, 0), 1);
    assert_eq!(
        t.check_data(&batch(1, 0, 5, 9, true), guarded(1), true),
        Ok(SequenceCheck::Append)
    );
}
