//! Table tests of every coordinator decision, with the expectations of Kafka's
//! `TransactionCoordinator` and `TransactionMetadata`.

use super::*;
use TxnError::*;

const NOW: i64 = 1_000_000;
const PID: i64 = 1000;
const NEW_PID: i64 = 2000;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (topic.to_string(), partition)
}

fn set(partitions: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    partitions.iter().map(|(t, p)| tp(t, *p)).collect()
}

/// A metadata in `state` at `epoch`; an open state has partition a-0 and started at NOW - 100.
fn meta(state: TransactionState, epoch: i16) -> TransactionMetadata {
    let mut m = TransactionMetadata::new("txn", PID, 60_000, NOW - 100);
    m.state = state;
    m.producer_epoch = epoch;
    m.previous_producer_id = PID;
    if matches!(state, Ongoing | PrepareCommit | PrepareAbort) {
        m.partitions = set(&[("a", 0)]);
        m.txn_start_timestamp_ms = NOW - 100;
    }
    m
}

fn v2(m: TransactionMetadata) -> TransactionMetadata {
    TransactionMetadata {
        client_transaction_version: TransactionVersion::Tv2,
        ..m
    }
}

fn no_alloc() -> Result<i64, TxnError> {
    panic!("no producer id should be allocated")
}

fn alloc() -> Result<i64, TxnError> {
    Ok(NEW_PID)
}

fn init_req(expected: Option<(i64, i16)>) -> InitProducerIdRequest {
    InitProducerIdRequest {
        transactional_id: "txn".to_string(),
        transaction_timeout_ms: 30_000,
        expected: expected.map(|(producer_id, producer_epoch)| ProducerIdAndEpoch {
            producer_id,
            producer_epoch,
        }),
    }
}

fn bump(outcome: InitProducerIdOutcome) -> Transition {
    match outcome {
        InitProducerIdOutcome::Bump(t) => t,
        other => panic!("expected a bump, got {other:?}"),
    }
}

#[test]
fn timeouts_and_ids_are_validated_first() {
    let s = TxnSettings::default();
    let table = [
        ("txn", 1, Ok(())),
        ("txn", DEFAULT_TRANSACTION_MAX_TIMEOUT_MS, Ok(())),
        (
            "txn",
            DEFAULT_TRANSACTION_MAX_TIMEOUT_MS + 1,
            Err(InvalidTransactionTimeout),
        ),
        ("txn", 0, Err(InvalidTransactionTimeout)),
        ("txn", -5, Err(InvalidTransactionTimeout)),
        ("", 1000, Err(InvalidRequest)),
    ];
    for (id, timeout, expected) in table {
        let request = InitProducerIdRequest {
            transactional_id: id.to_string(),
            transaction_timeout_ms: timeout,
            expected: None,
        };
        let got = init_producer_id(None, &request, &s, NOW, alloc).map(|_| ());
        assert_eq!(got, expected, "{id:?} {timeout}");
    }
    assert_eq!(ProducerIdAndEpoch::from_init_request(-1, -1), Ok(None));
    assert_eq!(
        ProducerIdAndEpoch::from_init_request(5, -1),
        Err(InvalidRequest)
    );
    assert_eq!(
        ProducerIdAndEpoch::from_init_request(-1, 3),
        Err(InvalidRequest)
    );
    assert!(ProducerIdAndEpoch::from_init_request(5, 3).is_ok_and(|p| p.is_some()));
}

#[test]
fn a_new_transactional_id_gets_a_new_producer_id_at_epoch_zero() {
    for expected in [None, Some((7, 3))] {
        let t = bump(
            init_producer_id(
                None,
                &init_req(expected),
                &TxnSettings::default(),
                NOW,
                alloc,
            )
            .expect("init"),
        );
        assert_eq!(t.transit.producer_id, NEW_PID);
        assert_eq!(t.transit.producer_epoch, 0);
        assert_eq!(t.transit.state, Empty);
        assert_eq!(t.transit.txn_timeout_ms, 30_000);
        assert_eq!(t.base.pending_state, Some(Empty));
        let m = t.complete().expect("complete");
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (NEW_PID, 0, Empty)
        );
        assert_eq!(m.pending_state, None);
    }
}

/// (state, epoch, last epoch, expected (pid, epoch)) → (producer id, epoch, last epoch) or error.
#[test]
fn init_producer_id_on_a_known_id() {
    type Expect = Result<(i64, i16, i16), TxnError>;
    type Case = (TransactionState, i16, i16, Option<(i64, i16)>, Expect);
    let exhausted = i16::MAX - 1;
    let table: Vec<Case> = vec![
        // A new producer: bump, forget the last epoch.
        (Empty, 4, -1, None, Ok((PID, 5, -1))),
        (CompleteCommit, 4, 3, None, Ok((PID, 5, -1))),
        (CompleteAbort, 4, 3, None, Ok((PID, 5, -1))),
        // KIP-360: the same producer recovering: bump, remember the last epoch.
        (Empty, 4, -1, Some((PID, 4)), Ok((PID, 5, 4))),
        // A retry of a successful recovery: the same answer.
        (Empty, 5, 4, Some((PID, 4)), Ok((PID, 5, 4))),
        // An older epoch: fenced.
        (Empty, 5, 4, Some((PID, 2)), Err(ProducerFenced)),
        // Another producer id: fenced.
        (Empty, 5, 4, Some((999, 5)), Err(ProducerFenced)),
        // Exhausted epoch: a new producer id at 0.
        (Empty, exhausted, -1, None, Ok((NEW_PID, 0, -1))),
        (
            CompleteCommit,
            exhausted,
            -1,
            Some((PID, exhausted)),
            Ok((NEW_PID, 0, exhausted)),
        ),
        // A transaction being completed: come back later.
        (PrepareCommit, 4, -1, None, Err(ConcurrentTransactions)),
        (
            PrepareAbort,
            4,
            -1,
            Some((PID, 4)),
            Err(ConcurrentTransactions),
        ),
        // States a coordinator never holds for a request.
        (Dead, 4, -1, None, Err(UnknownServerError)),
        (PrepareEpochFence, 4, -1, None, Err(UnknownServerError)),
    ];
    for (state, epoch, last, expected, want) in table {
        let mut m = meta(state, epoch);
        m.last_producer_epoch = last;
        let got = init_producer_id(
            Some(&m),
            &init_req(expected),
            &TxnSettings::default(),
            NOW,
            alloc,
        )
        .map(|o| {
            let t = bump(o);
            (
                t.transit.producer_id,
                t.transit.producer_epoch,
                t.transit.last_producer_epoch,
            )
        });
        assert_eq!(
            got, want,
            "{state} epoch {epoch} last {last} expected {expected:?}"
        );
    }
}

#[test]
fn a_retry_after_a_producer_id_rotation_is_recognised() {
    // The producer had (PID, MAX-1); the bump rotated to NEW_PID but the answer was lost.
    let mut m = meta(Empty, 0);
    m.producer_id = NEW_PID;
    m.previous_producer_id = PID;
    m.last_producer_epoch = i16::MAX - 1;
    let t = bump(
        init_producer_id(
            Some(&m),
            &init_req(Some((PID, i16::MAX - 1))),
            &TxnSettings::default(),
            NOW,
            no_alloc,
        )
        .expect("init"),
    );
    assert_eq!(
        (t.transit.producer_id, t.transit.producer_epoch),
        (NEW_PID, 0)
    );
    // The same old id with a non-exhausted epoch is a zombie.
    let got = init_producer_id(
        Some(&m),
        &init_req(Some((PID, 3))),
        &TxnSettings::default(),
        NOW,
        no_alloc,
    );
    assert_eq!(got, Err(ProducerFenced));
}

#[test]
fn a_write_in_flight_makes_every_request_concurrent() {
    let mut m = meta(Ongoing, 4);
    m.pending_state = Some(PrepareCommit);
    let s = TxnSettings::default();
    assert_eq!(
        init_producer_id(Some(&m), &init_req(None), &s, NOW, no_alloc),
        Err(ConcurrentTransactions)
    );
    assert_eq!(
        add_partitions(
            Some(&m),
            PID,
            4,
            &set(&[("b", 0)]),
            TransactionVersion::Tv0,
            NOW
        ),
        Err(ConcurrentTransactions)
    );
    for version in [TransactionVersion::Tv0, TransactionVersion::Tv2] {
        let request = EndTxnRequest {
            producer_id: PID,
            producer_epoch: 4,
            result: TxnResult::Commit,
            client_version: version,
        };
        assert_eq!(
            end_txn(Some(&m), &request, NOW, no_alloc),
            Err(ConcurrentTransactions)
        );
    }
    assert!(!is_timed_out(&m, i64::MAX));
    assert_eq!(abort_timed_out(&m, PID, &s, NOW), Ok(None));
    let mut empty = meta(Empty, 4);
    empty.pending_state = Some(Ongoing);
    assert!(!should_expire(&empty, i64::MAX, &s));
}

#[test]
fn init_on_an_open_transaction_fences_and_aborts_it() {
    // (server version, has failed fence, epoch) → (written epoch, written last epoch, base epoch)
    let table = [
        (TransactionVersion::Tv0, false, 4, (5, -1, 5)),
        (TransactionVersion::Tv1, false, 4, (5, -1, 5)),
        // Version 2: one bump, the abort's (Kafka 4.1); the stored epoch moves with the write.
        (TransactionVersion::Tv2, false, 4, (5, 4, 4)),
        // An earlier fence failed to write: the classic epoch was already bumped; version 2
        // bumps from the stored epoch again.
        (TransactionVersion::Tv0, true, 5, (5, -1, 5)),
        (TransactionVersion::Tv2, true, 5, (6, 5, 5)),
        // Never past i16::MAX.
        (
            TransactionVersion::Tv0,
            false,
            i16::MAX,
            (i16::MAX, -1, i16::MAX),
        ),
        (
            TransactionVersion::Tv2,
            false,
            i16::MAX - 1,
            (i16::MAX, i16::MAX - 1, i16::MAX - 1),
        ),
    ];
    for (version, failed, epoch, (written, written_last, base_epoch)) in table {
        let mut m = meta(Ongoing, epoch);
        m.has_failed_epoch_fence = failed;
        let settings = TxnSettings {
            server_transaction_version: version,
            ..TxnSettings::default()
        };
        let got = init_producer_id(Some(&m), &init_req(None), &settings, NOW, no_alloc);
        let Ok(InitProducerIdOutcome::FenceAndAbort(t)) = got else {
            panic!("{version:?} {epoch}: {got:?}");
        };
        assert_eq!(t.transit.state, PrepareAbort);
        assert_eq!(t.transit.partitions, m.partitions);
        assert_eq!(t.transit.txn_start_timestamp_ms, m.txn_start_timestamp_ms);
        assert_eq!(
            (
                t.transit.producer_epoch,
                t.transit.last_producer_epoch,
                t.base.producer_epoch
            ),
            (written, written_last, base_epoch),
            "{version:?} failed={failed} epoch {epoch}"
        );
        let stored = if version.supports_epoch_bump() {
            version
        } else {
            TransactionVersion::Tv0
        };
        assert_eq!(t.transit.client_transaction_version, stored);
        // Classic: the old producer is fenced from now on, written or not. Version 2: the
        // stored epoch moves only with the write.
        let abandoned = t.clone().abandon(true);
        assert!(abandoned.has_failed_epoch_fence);
        assert_eq!(abandoned.producer_epoch, base_epoch);
        assert_eq!(abandoned.pending_state, None);
        let m = t.complete().expect("complete");
        assert_eq!(m.state, PrepareAbort);
    }
}

#[test]
fn add_partitions_table() {
    use AddPartitionsOutcome::*;
    let tv0 = TransactionVersion::Tv0;
    let b0 = set(&[("b", 0)]);
    let a0 = set(&[("a", 0)]);
    // (state, request pid, request epoch, partitions) → outcome kind
    type Case<'a> = (
        TransactionState,
        i64,
        i16,
        &'a BTreeSet<TopicPartition>,
        Result<&'static str, TxnError>,
    );
    let table: Vec<Case> = vec![
        (Empty, PID, 4, &b0, Ok("write")),
        (CompleteCommit, PID, 4, &b0, Ok("write")),
        (CompleteAbort, PID, 4, &b0, Ok("write")),
        (Ongoing, PID, 4, &b0, Ok("write")),
        (Ongoing, PID, 4, &a0, Ok("already")),
        (Ongoing, 999, 4, &b0, Err(InvalidProducerIdMapping)),
        (Ongoing, PID, 3, &b0, Err(ProducerFenced)),
        (Ongoing, PID, 5, &b0, Err(ProducerFenced)),
        (PrepareCommit, PID, 4, &b0, Err(ConcurrentTransactions)),
        (PrepareAbort, PID, 4, &b0, Err(ConcurrentTransactions)),
        (Dead, PID, 4, &b0, Err(UnknownServerError)),
    ];
    for (state, pid, epoch, partitions, want) in table {
        let m = meta(state, 4);
        let got = add_partitions(Some(&m), pid, epoch, partitions, tv0, NOW).map(|o| match o {
            Write(_) => "write",
            AlreadyAdded => "already",
        });
        assert_eq!(got, want, "{state} pid {pid} epoch {epoch}");
    }
    assert_eq!(
        add_partitions(None, PID, 4, &b0, tv0, NOW),
        Err(InvalidProducerIdMapping)
    );
}

#[test]
fn adding_partitions_opens_a_transaction_at_now_and_keeps_its_start_after() {
    let m = meta(Empty, 4);
    let Ok(AddPartitionsOutcome::Write(t)) = add_partitions(
        Some(&m),
        PID,
        4,
        &set(&[("b", 1)]),
        TransactionVersion::Tv2,
        NOW,
    ) else {
        panic!("write");
    };
    assert_eq!(t.transit.txn_start_timestamp_ms, NOW);
    assert_eq!(
        t.transit.client_transaction_version,
        TransactionVersion::Tv2
    );
    let m = t.complete().expect("complete");
    assert_eq!((m.state, m.txn_start_timestamp_ms), (Ongoing, NOW));
    let Ok(AddPartitionsOutcome::Write(t)) =
        add_offsets(Some(&m), PID, 4, 7, TransactionVersion::Tv2, NOW + 50)
    else {
        panic!("write");
    };
    let m = t.complete().expect("complete");
    assert_eq!(m.partitions, set(&[("__consumer_offsets", 7), ("b", 1)]));
    assert_eq!(m.txn_start_timestamp_ms, NOW);
    assert_eq!(m.txn_last_update_timestamp_ms, NOW + 50);
}

#[test]
fn unknown_topics_fail_the_whole_add() {
    let partitions = set(&[("known", 0), ("known", 1), ("missing", 0)]);
    let got = reject_unknown_partitions(&partitions, |(t, _)| t == "known").expect("rejected");
    assert_eq!(got[&tp("missing", 0)], UnknownTopicOrPartition);
    assert_eq!(got[&tp("known", 0)], OperationNotAttempted);
    assert_eq!(got[&tp("known", 1)], OperationNotAttempted);
    assert_eq!(reject_unknown_partitions(&partitions, |_| true), None);
}

#[test]
fn verify_only_batches() {
    let m = meta(Ongoing, 4);
    let asked = set(&[("a", 0), ("b", 0)]);
    let got = verify_partitions(Some(&m), PID, 4, &asked).expect("verified");
    assert_eq!(got[&tp("a", 0)], Ok(()));
    assert_eq!(got[&tp("b", 0)], Err(TransactionAbortable));
    let table = [
        (Some(meta(Ongoing, 4)), 999, 4, InvalidProducerIdMapping),
        (None, PID, 4, InvalidProducerIdMapping),
        (Some(meta(Ongoing, 4)), PID, 3, ProducerFenced),
        (Some(meta(PrepareCommit, 4)), PID, 4, ConcurrentTransactions),
    ];
    for (m, pid, epoch, want) in table {
        assert_eq!(verify_partitions(m.as_ref(), pid, epoch, &asked), Err(want));
    }
}

fn end(
    m: Option<&TransactionMetadata>,
    epoch: i16,
    result: TxnResult,
    v: TransactionVersion,
) -> Result<EndTxnOutcome, TxnError> {
    let request = EndTxnRequest {
        producer_id: PID,
        producer_epoch: epoch,
        result,
        client_version: v,
    };
    end_txn(m, &request, NOW, alloc)
}

fn kind(outcome: Result<EndTxnOutcome, TxnError>) -> Result<String, TxnError> {
    outcome.map(|o| match o {
        EndTxnOutcome::AlreadyDone {
            producer_id,
            producer_epoch,
        } => {
            format!("done {producer_id}/{producer_epoch}")
        }
        EndTxnOutcome::Prepare(t) => format!(
            "{} epoch {} last {}",
            t.transit.state, t.transit.producer_epoch, t.transit.last_producer_epoch
        ),
    })
}

#[test]
fn end_txn_classic_protocol() {
    use TxnResult::*;
    let v = TransactionVersion::Tv0;
    let ok = |s: &str| Ok(s.to_string());
    // (state, request epoch, result) → outcome; the metadata is at epoch 4.
    let table = [
        (Ongoing, 4, Commit, ok("PrepareCommit epoch 4 last -1")),
        (Ongoing, 4, Abort, ok("PrepareAbort epoch 4 last -1")),
        (Ongoing, 3, Commit, Err(ProducerFenced)),
        (Ongoing, 5, Commit, Err(ProducerFenced)),
        // Retries of a completed EndTxn succeed; the other result is an invalid state.
        (CompleteCommit, 4, Commit, ok("done -1/-1")),
        (CompleteCommit, 4, Abort, Err(InvalidTxnState)),
        (CompleteAbort, 4, Abort, ok("done -1/-1")),
        (CompleteAbort, 4, Commit, Err(InvalidTxnState)),
        // Retries while the markers are out: come back later.
        (PrepareCommit, 4, Commit, Err(ConcurrentTransactions)),
        (PrepareCommit, 4, Abort, Err(InvalidTxnState)),
        (PrepareAbort, 4, Abort, Err(ConcurrentTransactions)),
        (PrepareAbort, 4, Commit, Err(InvalidTxnState)),
        // Nothing to end.
        (Empty, 4, Commit, Err(InvalidTxnState)),
        (Empty, 4, Abort, Err(InvalidTxnState)),
        (Dead, 4, Abort, Err(UnknownServerError)),
        (PrepareEpochFence, 4, Abort, Err(UnknownServerError)),
    ];
    for (state, epoch, result, want) in table {
        let m = meta(state, 4);
        assert_eq!(
            kind(end(Some(&m), epoch, result, v)),
            want,
            "{state} {epoch} {result:?}"
        );
    }
    assert_eq!(kind(end(None, 4, Commit, v)), Err(InvalidProducerIdMapping));
    let mut other = meta(Ongoing, 4);
    other.producer_id = 999;
    assert_eq!(
        kind(end(Some(&other), 4, Commit, v)),
        Err(InvalidProducerIdMapping)
    );
}

#[test]
fn end_txn_version_2_bumps_the_epoch_and_knows_its_retries() {
    use TxnResult::*;
    let v = TransactionVersion::Tv2;
    let ok = |s: &str| Ok(s.to_string());
    // The metadata is at epoch 5; a retry carries 4 (the epoch before the bump).
    let table = [
        (Ongoing, 5, Commit, ok("PrepareCommit epoch 6 last 5")),
        (Ongoing, 5, Abort, ok("PrepareAbort epoch 6 last 5")),
        (Ongoing, 4, Commit, Err(ProducerFenced)),
        // Kafka's table for Empty / CompleteAbort / CompleteCommit.
        (Empty, 4, Abort, Err(ProducerFenced)),
        (Empty, 5, Abort, ok("PrepareAbort epoch 6 last 5")),
        (Empty, 4, Commit, Err(ProducerFenced)),
        (Empty, 5, Commit, Err(InvalidTxnState)),
        (CompleteAbort, 4, Abort, ok(&format!("done {PID}/5"))),
        (CompleteAbort, 5, Abort, ok("PrepareAbort epoch 6 last 5")),
        (CompleteAbort, 4, Commit, Err(InvalidTxnState)),
        (CompleteAbort, 5, Commit, Err(InvalidTxnState)),
        (CompleteCommit, 4, Abort, Err(InvalidTxnState)),
        (CompleteCommit, 5, Abort, ok("PrepareAbort epoch 6 last 5")),
        (CompleteCommit, 4, Commit, ok(&format!("done {PID}/5"))),
        (CompleteCommit, 5, Commit, Err(InvalidTxnState)),
        (CompleteCommit, 3, Commit, Err(ProducerFenced)),
        // A retry while the markers are out.
        (PrepareCommit, 4, Commit, Err(ConcurrentTransactions)),
        (PrepareCommit, 5, Commit, Err(ProducerFenced)),
        (PrepareCommit, 4, Abort, Err(InvalidTxnState)),
        (PrepareAbort, 4, Abort, Err(ConcurrentTransactions)),
        (PrepareAbort, 4, Commit, Err(InvalidTxnState)),
    ];
    for (state, epoch, result, want) in table {
        let m = v2(meta(state, 5));
        assert_eq!(
            kind(end(Some(&m), epoch, result, v)),
            want,
            "{state} {epoch} {result:?}"
        );
    }
}

#[test]
fn an_empty_abort_starts_now_and_completes_without_partitions() {
    let m = v2(meta(CompleteCommit, 5));
    let Ok(EndTxnOutcome::Prepare(t)) = end(Some(&m), 5, TxnResult::Abort, TransactionVersion::Tv2)
    else {
        panic!("prepare");
    };
    assert_eq!(t.transit.txn_start_timestamp_ms, NOW);
    let m = t.complete().expect("PrepareAbort from CompleteCommit");
    let t = prepare_complete(&m, NOW + 1).expect("complete");
    let m = t.complete().expect("CompleteAbort");
    assert_eq!((m.state, m.producer_epoch), (CompleteAbort, 6));
    assert!(m.partitions.is_empty());
}

#[test]
fn an_exhausted_epoch_moves_to_a_new_producer_id_at_completion() {
    let m = v2(meta(Ongoing, i16::MAX - 1));
    let Ok(EndTxnOutcome::Prepare(t)) = end(
        Some(&m),
        i16::MAX - 1,
        TxnResult::Commit,
        TransactionVersion::Tv2,
    ) else {
        panic!("prepare");
    };
    assert_eq!(t.transit.next_producer_id, NEW_PID);
    assert_eq!(t.transit.producer_epoch, i16::MAX);
    let prepared = t.complete().expect("PrepareCommit");
    let t = prepare_complete(&prepared, NOW + 1).expect("complete");
    assert_eq!(
        end_txn_response(TransactionVersion::Tv2, &t.transit),
        (NEW_PID, 0)
    );
    let done = t.complete().expect("CompleteCommit");
    assert_eq!(
        (
            done.producer_id,
            done.producer_epoch,
            done.previous_producer_id,
            done.next_producer_id
        ),
        (NEW_PID, 0, PID, NO_PRODUCER_ID)
    );
    // The client retries the commit with the old id and epoch: recognised, not fenced.
    let request = EndTxnRequest {
        producer_id: PID,
        producer_epoch: i16::MAX - 1,
        result: TxnResult::Commit,
        client_version: TransactionVersion::Tv2,
    };
    assert_eq!(
        end_txn(Some(&done), &request, NOW + 2, no_alloc),
        Ok(EndTxnOutcome::AlreadyDone {
            producer_id: NEW_PID,
            producer_epoch: 0
        })
    );
}

#[test]
fn a_whole_classic_transaction() {
    let s = TxnSettings::default();
    let t = bump(init_producer_id(None, &init_req(None), &s, NOW, alloc).expect("init"));
    let m = t.complete().expect("Empty");
    let Ok(AddPartitionsOutcome::Write(t)) = add_partitions(
        Some(&m),
        NEW_PID,
        0,
        &set(&[("a", 0), ("a", 1)]),
        TransactionVersion::Tv0,
        NOW + 1,
    ) else {
        panic!("add");
    };
    let m = t.complete().expect("Ongoing");
    let request = EndTxnRequest {
        producer_id: NEW_PID,
        producer_epoch: 0,
        result: TxnResult::Commit,
        client_version: TransactionVersion::Tv0,
    };
    let Ok(EndTxnOutcome::Prepare(t)) = end_txn(Some(&m), &request, NOW + 2, no_alloc) else {
        panic!("end");
    };
    let m = t.complete().expect("PrepareCommit");
    let t = prepare_complete(&m, NOW + 3).expect("markers");
    assert_eq!(
        end_txn_response(TransactionVersion::Tv0, &t.transit),
        (-1, -1)
    );
    let m = t.complete().expect("CompleteCommit");
    assert_eq!(
        (m.state, m.producer_epoch, m.txn_start_timestamp_ms),
        (CompleteCommit, 0, NOW + 1)
    );
    assert!(m.partitions.is_empty());
    // Completing a Complete state again is a bug, not a state.
    assert_eq!(prepare_complete(&m, NOW), Err(UnknownServerError));
}

#[test]
fn timeouts_are_strictly_after_start_plus_timeout() {
    let m = meta(Ongoing, 4); // started NOW - 100, timeout 60 s
    let deadline = NOW - 100 + 60_000;
    let table = [
        (Ongoing, deadline - 1, false),
        (Ongoing, deadline, false),
        (Ongoing, deadline + 1, true),
        (Empty, i64::MAX, false),
        (PrepareCommit, i64::MAX, false),
        (CompleteAbort, i64::MAX, false),
    ];
    for (state, now, want) in table {
        let mut m = m.clone();
        m.state = state;
        assert_eq!(is_timed_out(&m, now), want, "{state} at {now}");
    }
}

#[test]
fn a_timed_out_transaction_is_aborted_with_a_fencing_epoch() {
    let m = meta(Ongoing, 4);
    let s = TxnSettings {
        server_transaction_version: TransactionVersion::Tv0,
        ..TxnSettings::default()
    };
    let t = abort_timed_out(&m, PID, &s, NOW)
        .expect("ok")
        .expect("abort");
    assert_eq!(
        (t.transit.state, t.transit.producer_epoch),
        (PrepareAbort, 5)
    );
    let m = t.complete().expect("PrepareAbort");
    // The fenced producer's own EndTxn is refused.
    assert_eq!(
        kind(end(Some(&m), 4, TxnResult::Commit, TransactionVersion::Tv0)),
        Err(ProducerFenced)
    );
    let m = prepare_complete(&m, NOW + 1)
        .expect("markers")
        .complete()
        .expect("done");
    assert_eq!((m.state, m.producer_epoch), (CompleteAbort, 5));
    // Moved on since it was seen: skipped.
    let other = meta(Ongoing, 4);
    assert_eq!(abort_timed_out(&other, 999, &s, NOW), Ok(None));
    assert_eq!(abort_timed_out(&meta(Empty, 4), PID, &s, NOW), Ok(None));
}

#[test]
fn a_version_2_timeout_abort_bumps_once_and_the_producers_own_abort_is_a_retry() {
    let s = TxnSettings {
        server_transaction_version: TransactionVersion::Tv2,
        ..TxnSettings::default()
    };
    let t = abort_timed_out(&meta(Ongoing, 4), PID, &s, NOW)
        .expect("ok")
        .expect("abort");
    assert_eq!(
        (
            t.transit.state,
            t.transit.producer_epoch,
            t.transit.last_producer_epoch
        ),
        (PrepareAbort, 5, 4),
        "markers at e+1, not e+2"
    );
    let m = prepare_complete(&t.complete().expect("PrepareAbort"), NOW + 1)
        .expect("markers")
        .complete()
        .expect("done");
    assert_eq!((m.state, m.producer_epoch), (CompleteAbort, 5));
    let v2 = TransactionVersion::Tv2;
    // (request epoch, result) → answer, Kafka's table for CompleteAbort at e+1.
    let table = [
        (4, TxnResult::Abort, Ok(format!("done {PID}/5"))),
        (4, TxnResult::Commit, Err(InvalidTxnState)),
        (3, TxnResult::Abort, Err(ProducerFenced)),
    ];
    for (epoch, result, want) in table {
        assert_eq!(
            kind(end(Some(&m), epoch, result, v2)),
            want,
            "{epoch} {result:?}"
        );
    }
}

#[test]
fn transactional_ids_expire_only_idle_and_without_an_open_transaction() {
    let s = TxnSettings {
        transactional_id_expiration_ms: 1000,
        ..TxnSettings::default()
    };
    let updated = NOW - 100;
    let table = [
        (Empty, updated + 999, false),
        (Empty, updated + 1000, true),
        (CompleteCommit, updated + 1000, true),
        (CompleteAbort, updated + 5000, true),
        (Ongoing, updated + 5000, false),
        (PrepareCommit, updated + 5000, false),
        (PrepareAbort, updated + 5000, false),
        (Dead, updated + 5000, false),
    ];
    for (state, now, want) in table {
        let m = meta(state, 4);
        assert_eq!(should_expire(&m, now, &s), want, "{state} at {now}");
    }
    let t = prepare_dead(&meta(Empty, 4)).expect("dead");
    assert_eq!(t.transit.state, Dead);
    assert_eq!(t.complete().map(|m| m.state), Ok(Dead));
    assert_eq!(
        prepare_dead(&meta(Ongoing, 4)).map(|_| ()),
        Err(UnknownServerError)
    );
}

#[test]
fn completion_refuses_a_transit_that_does_not_follow_from_its_base() {
    let base = meta(Ongoing, 4);
    let Ok(AddPartitionsOutcome::Write(good)) = add_partitions(
        Some(&base),
        PID,
        4,
        &set(&[("b", 0)]),
        TransactionVersion::Tv0,
        NOW,
    ) else {
        panic!("add");
    };
    let mut lost_partition = good.clone();
    lost_partition.transit.partitions = set(&[("b", 0)]);
    let mut other_epoch = good.clone();
    other_epoch.transit.producer_epoch = 9;
    let mut other_timeout = good.clone();
    other_timeout.transit.txn_timeout_ms = 1;
    let mut not_pending = good.clone();
    not_pending.base.pending_state = None;
    for (name, t) in [
        ("lost partition", lost_partition),
        ("other epoch", other_epoch),
        ("other timeout", other_timeout),
        ("not pending", not_pending),
    ] {
        assert_eq!(t.complete().map(|_| ()), Err(UnknownServerError), "{name}");
    }
    assert!(good.complete().is_ok());
}

#[test]
fn a_stored_value_loads_back_without_the_last_epoch() {
    let m = v2(meta(Ongoing, 4));
    let Ok(EndTxnOutcome::Prepare(t)) = end(Some(&m), 4, TxnResult::Abort, TransactionVersion::Tv2)
    else {
        panic!("prepare");
    };
    let value = t.transit.to_log_value();
    let loaded = TransactionMetadata::from_log_value("txn", &value).expect("load");
    let mut expected = t.complete().expect("complete");
    expected.last_producer_epoch = NO_PRODUCER_EPOCH;
    assert_eq!(loaded, expected);
    let mut bad = value;
    bad.client_transaction_version = 9;
    assert!(TransactionMetadata::from_log_value("txn", &bad).is_err());
}

#[test]
fn versions_by_request() {
    assert_eq!(TransactionVersion::for_end_txn(4), TransactionVersion::Tv0);
    assert_eq!(TransactionVersion::for_end_txn(5), TransactionVersion::Tv2);
    assert_eq!(
        TransactionVersion::for_add_partitions(3),
        TransactionVersion::Tv0
    );
    assert_eq!(
        TransactionVersion::for_add_partitions(4),
        TransactionVersion::Tv2
    );
    assert_eq!(TransactionVersion::Tv0.log_value_version(), 0);
    assert_eq!(TransactionVersion::Tv1.log_value_version(), 1);
    assert_eq!(TransactionVersion::Tv2.log_value_version(), 1);
    assert!(!TransactionVersion::Tv1.supports_epoch_bump());
    assert!(is_epoch_exhausted(i16::MAX - 1));
    assert!(!is_epoch_exhausted(i16::MAX - 2));
}
