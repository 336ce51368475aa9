//! The cleaner's transaction decisions, one table per rule: a marker's fate, which markers the
//! producer state keeps, the walk over batches and aborted-transaction entries (Kafka's
//! `CleanedTransactionMetadata` cases), the delete-horizon rewrite and the entry reader.

use std::cell::Cell;
use std::rc::Rc;

use super::*;
use crate::batch::verify_crc;
use crate::control::build_marker_batch;
use crate::testing::{BatchSpec, TestRecord, build_batch_with, decode_records};

const NOW: i64 = 1_000_000;
const RETENTION: i64 = 500;

#[test]
fn marker_fates() {
    use MarkerFate::{Keep, Remove, SetHorizon};
    // (removable, horizon, protected, empty, fate)
    let cases = [
        // Data of its transaction remains: kept, whatever else.
        (false, None, false, false, Keep),
        (false, Some(NOW - 1), false, false, Keep),
        (false, None, false, true, Keep),
        // Removable, first time: the horizon is set (also when the producer state needs it).
        (true, None, false, false, SetHorizon(NOW + RETENTION)),
        (true, None, true, false, SetHorizon(NOW + RETENTION)),
        // Horizon not reached: kept.
        (true, Some(NOW + 1), false, false, Keep),
        // Reached (inclusive, as Kafka's `deleteHorizonMs <= currentTime`): removed...
        (true, Some(NOW), false, false, Remove),
        (true, Some(NOW - 10_000), false, false, Remove),
        // ...unless the producer state needs it.
        (true, Some(NOW - 10_000), true, false, Keep),
        // An empty control batch: nothing to read, gone unless needed.
        (true, None, false, true, Remove),
        (true, None, true, true, Keep),
    ];
    for (removable, horizon_ms, protected, empty, fate) in cases {
        let case = MarkerCase {
            removable,
            horizon_ms,
            protected,
            empty,
        };
        assert_eq!(marker_fate(case, NOW, RETENTION), fate, "{case:?}");
    }
    let case = MarkerCase {
        removable: true,
        horizon_ms: None,
        protected: false,
        empty: false,
    };
    assert_eq!(
        marker_fate(case, i64::MAX - 1, i64::MAX),
        SetHorizon(i64::MAX),
        "saturates"
    );
}

fn marker_header(producer_id: i64, epoch: i16, offset: i64) -> RecordBatchHeader {
    let mut batch = build_marker_batch(producer_id, epoch, 0, ControlType::Commit, NOW);
    batch[0..8].copy_from_slice(&offset.to_be_bytes());
    RecordBatchHeader::parse(&batch).unwrap()
}

#[test]
fn markers_the_producer_state_keeps() {
    let mut producers = ActiveProducers::new(Some(1_000));
    producers.insert(7, 3, Some(500)); // last data batch ends at 500
    producers.insert(8, 2, None); // no data recorded (e.g. an epoch bumped by a marker)
    // (producer, epoch, offset, kept)
    let cases = [
        // Tracked, its epoch, after its last data: possibly its last entry.
        (7, 3, 600, true),
        // Before its last data batch: that batch comes later.
        (7, 3, 400, false),
        // An older epoch: a later entry holds the current one.
        (7, 2, 600, false),
        // No data recorded: every marker of its epoch.
        (8, 2, 10, true),
        (8, 1, 10, false),
        // Not tracked (expired, or never here).
        (9, 0, 600, false),
        // At or above the producer snapshot: kept for the replay, whoever wrote it.
        (9, 0, 1_000, true),
        (7, 2, 5_000, true),
    ];
    for (producer_id, epoch, offset, kept) in cases {
        let header = marker_header(producer_id, epoch, offset);
        assert_eq!(
            producers.keeps_marker(&header),
            kept,
            "producer {producer_id} epoch {epoch} at {offset}"
        );
    }
    assert!(!ActiveProducers::default().keeps_marker(&marker_header(7, 3, 600)));
}

fn entry(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: last_offset + 1,
    }
}

/// One step of a walk and what it must answer.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A data batch (producer, base, last, transactional) → its transaction.
    Data(i64, i64, i64, bool, DataTxn),
    /// A control batch (producer, offset, type) → whether it is removable.
    Marker(i64, i64, Control, bool),
}

fn walk(entries: &[AbortedTxn], steps: &[Step], end_offset: i64) -> Vec<AbortedTxn> {
    let mut txns = CleanedTxns::new(entries.iter().copied().map(Ok));
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Data(producer_id, base_offset, last_offset, is_transactional, expected) => {
                let batch = TxnBatch {
                    producer_id,
                    base_offset,
                    last_offset,
                    is_transactional,
                };
                assert_eq!(txns.on_data(batch).unwrap(), expected, "step {i}: {step:?}");
            }
            Step::Marker(producer_id, offset, control, removable) => {
                let batch = TxnBatch {
                    producer_id,
                    base_offset: offset,
                    last_offset: offset,
                    is_transactional: true,
                };
                assert_eq!(
                    txns.on_control(batch, control).unwrap(),
                    removable,
                    "step {i}: {step:?}"
                );
            }
        }
    }
    txns.end_segment(end_offset)
}

/// What the walk is about, the entries, the steps, where it ends, the entries it keeps.
type WalkCase = (
    &'static str,
    Vec<AbortedTxn>,
    Vec<Step>,
    i64,
    Vec<AbortedTxn>,
);

#[test]
fn walks_over_transactions() {
    use Control::{Abort, Commit, Empty, Other};
    use DataTxn::{Aborted, Committed, None as Plain};
    use Step::{Data, Marker};
    // (what, entries, steps, end of the walk, entries kept)
    let cases: Vec<WalkCase> = vec![
        (
            "an aborted transaction seen whole: data removed, marker and entry kept",
            vec![entry(1, 0, 2)],
            vec![
                Data(1, 0, 0, true, Aborted),
                Data(1, 1, 1, true, Aborted),
                Marker(1, 2, Abort, false),
            ],
            3,
            vec![entry(1, 0, 2)],
        ),
        (
            "its data gone (an earlier pass): the marker may go, the entry goes",
            vec![entry(1, 0, 2)],
            vec![Data(9, 1, 1, false, Plain), Marker(1, 2, Abort, true)],
            3,
            vec![],
        ),
        (
            "a committed transaction traversed: its marker stays",
            vec![],
            vec![
                Data(1, 0, 1, true, Committed),
                Data(2, 2, 2, false, Plain),
                Marker(1, 3, Commit, false),
            ],
            4,
            vec![],
        ),
        (
            "a commit marker with no batch of its transaction left may go",
            vec![],
            vec![Data(2, 2, 2, false, Plain), Marker(1, 3, Commit, true)],
            4,
            vec![],
        ),
        (
            "an abort marker of an empty transaction (no entry) may go",
            vec![],
            vec![Marker(1, 3, Abort, true)],
            4,
            vec![],
        ),
        (
            "interleaved: one producer aborts, the other commits, neither shadows",
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 5,
                last_stable_offset: 1, // producer 2's transaction was still open
            }],
            vec![
                Data(1, 0, 0, true, Aborted),
                Data(2, 1, 1, true, Committed),
                Data(1, 2, 2, true, Aborted),
                Data(3, 3, 3, false, Plain),
                Data(2, 4, 4, true, Committed),
                Marker(1, 5, Abort, false),
                Data(2, 6, 6, true, Committed),
                Marker(2, 7, Commit, false),
            ],
            8,
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 5,
                last_stable_offset: 1,
            }],
        ),
        (
            "after its abort a producer's next transaction is committed",
            vec![entry(1, 0, 1)],
            vec![
                Data(1, 0, 0, true, Aborted),
                Marker(1, 1, Abort, false),
                Data(1, 2, 2, true, Committed),
                Marker(1, 3, Commit, false),
            ],
            4,
            vec![entry(1, 0, 1)],
        ),
        (
            "two aborted transactions of one producer, in turn",
            vec![entry(1, 0, 1), entry(1, 2, 3)],
            vec![
                Data(1, 0, 0, true, Aborted),
                Marker(1, 1, Abort, false),
                Marker(1, 3, Abort, true), // its data already gone
            ],
            4,
            vec![entry(1, 0, 1)],
        ),
        (
            "a non-transactional batch of a producer in an aborted transaction is not aborted",
            vec![entry(1, 0, 2)],
            vec![
                Data(1, 0, 0, true, Aborted),
                Data(1, 1, 1, false, Plain),
                Marker(1, 2, Abort, false),
            ],
            3,
            vec![entry(1, 0, 2)],
        ),
        (
            "a marker that does not read as one: kept; its entry kept since data went",
            vec![entry(1, 0, 1)],
            vec![
                Data(1, 0, 0, true, Aborted),
                Marker(1, 1, Other, false),
                Data(1, 2, 2, true, Committed),
            ],
            3,
            vec![entry(1, 0, 1)],
        ),
        (
            "an empty control batch may go",
            vec![],
            vec![Marker(1, 0, Empty, true)],
            1,
            vec![],
        ),
        (
            "a marker past the walk: data removed, entry left to its own segment",
            vec![entry(1, 0, 10)],
            vec![Data(1, 0, 0, true, Aborted), Data(2, 1, 1, false, Plain)],
            2,
            vec![],
        ),
        (
            "an entry whose marker the walk already passed removes nothing",
            vec![entry(1, 0, 1)],
            vec![Data(1, 5, 5, true, Committed)],
            6,
            vec![],
        ),
    ];
    for (what, entries, steps, end, kept) in cases {
        let got = std::panic::catch_unwind(|| walk(&entries, &steps, end))
            .unwrap_or_else(|_| panic!("case: {what}"));
        assert_eq!(got, kept, "{what}");
    }
}

#[test]
fn kept_entries_go_to_the_run_holding_their_marker() {
    // Producer 2's transaction (from 1) was open when producer 1's ended: LSO 1.
    let first = AbortedTxn {
        last_stable_offset: 1,
        ..entry(1, 0, 3)
    };
    let mut txns = CleanedTxns::new([first, entry(2, 1, 6)].into_iter().map(Ok));
    let data = |producer_id, offset| TxnBatch {
        producer_id,
        base_offset: offset,
        last_offset: offset,
        is_transactional: true,
    };
    assert_eq!(txns.on_data(data(1, 0)).unwrap(), DataTxn::Aborted);
    assert_eq!(txns.on_data(data(2, 1)).unwrap(), DataTxn::Aborted);
    // The run ends at 4 and its marker at 3 was not seen as one: the entry stays with the run.
    assert_eq!(txns.end_segment(4), vec![first]);
    assert!(!txns.on_control(data(2, 6), Control::Abort).unwrap());
    assert_eq!(txns.end_segment(7), vec![entry(2, 1, 6)]);
}

/// An iterator over `entries` that counts what it handed out.
fn counted(
    entries: Vec<AbortedTxn>,
    taken: Rc<Cell<usize>>,
) -> impl Iterator<Item = Result<AbortedTxn>> {
    entries.into_iter().map(move |e| {
        taken.set(taken.get() + 1);
        Ok(e)
    })
}

#[test]
fn entries_are_read_only_as_far_as_the_walk_needs() {
    // Short aborted transactions one after another: each entry's LSO is right after its marker.
    let entries: Vec<AbortedTxn> = (0..100).map(|i| entry(1, i * 10, i * 10 + 1)).collect();
    let taken = Rc::new(Cell::new(0));
    let mut txns = CleanedTxns::new(counted(entries, Rc::clone(&taken)));
    let plain = |offset| TxnBatch {
        producer_id: 2,
        base_offset: offset,
        last_offset: offset,
        is_transactional: false,
    };
    txns.on_data(plain(0)).unwrap();
    assert_eq!(taken.get(), 1, "the first entry's LSO (2) passes offset 0");
    txns.on_data(plain(35)).unwrap();
    assert_eq!(
        taken.get(),
        5,
        "up to the first entry whose LSO (42) passes 35"
    );
    // A long transaction (LSO held at 5 by another producer) makes it read on.
    let mut long = vec![AbortedTxn {
        producer_id: 3,
        first_offset: 6,
        last_offset: 8,
        last_stable_offset: 5,
    }];
    long.push(AbortedTxn {
        producer_id: 4,
        first_offset: 5,
        last_offset: 50,
        last_stable_offset: 51,
    });
    let taken = Rc::new(Cell::new(0));
    let mut txns = CleanedTxns::new(counted(long, Rc::clone(&taken)));
    assert_eq!(
        txns.on_data(TxnBatch {
            producer_id: 4,
            base_offset: 5,
            last_offset: 5,
            is_transactional: true,
        })
        .unwrap(),
        DataTxn::Aborted,
        "found behind an entry that ended earlier"
    );
    assert_eq!(taken.get(), 2);
}

#[test]
fn an_entry_read_error_stops_the_walk() {
    let entries = vec![Err(LogError::InvalidRecord("bad".to_owned()))];
    let mut txns = CleanedTxns::new(entries.into_iter());
    let batch = TxnBatch {
        producer_id: 1,
        base_offset: 0,
        last_offset: 0,
        is_transactional: true,
    };
    assert!(txns.on_data(batch).is_err());
}

#[test]
fn the_delete_horizon_rewrite_keeps_records_and_timestamps() {
    let marker = build_marker_batch(5, 2, 7, ControlType::Abort, NOW);
    let header = RecordBatchHeader::parse(&marker).unwrap();
    assert_eq!(delete_horizon(&header), None);
    let horizon = NOW + 86_400_000;
    let rewritten = with_delete_horizon(&header, &marker, horizon).unwrap();
    verify_crc(&rewritten).unwrap();
    let after = RecordBatchHeader::parse(&rewritten).unwrap();
    assert_eq!(after.size_bytes(), rewritten.len());
    assert_eq!(delete_horizon(&after), Some(horizon));
    assert_eq!(after.attributes, header.attributes | DELETE_HORIZON_BIT);
    assert!(after.is_control() && after.is_transactional());
    // Everything else in the header as it was.
    assert_eq!(
        (
            after.base_offset,
            after.last_offset_delta,
            after.max_timestamp,
            after.producer_id,
            after.producer_epoch,
            after.base_sequence,
            after.record_count
        ),
        (
            header.base_offset,
            header.last_offset_delta,
            header.max_timestamp,
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.record_count
        )
    );
    // Still the same marker, its record's timestamp unchanged.
    assert_eq!(
        parse_marker(&rewritten).unwrap(),
        Some((ControlType::Abort, 7))
    );
    let records = decode_records(&rewritten).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].timestamp_ms, NOW);
    assert_eq!(decode_records(&marker).unwrap()[0].key, records[0].key);

    // Several records with their own deltas, and a horizon below the base.
    let batch = build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW,
        attributes: 0x30,
        producer_id: 5,
        producer_epoch: 2,
        records: (0..3)
            .map(|i| TestRecord {
                key: Some(b"k"),
                value: Some(b"v"),
                timestamp_delta_ms: i * 1_000,
            })
            .collect(),
        ..BatchSpec::new(&[b""])
    });
    let header = RecordBatchHeader::parse(&batch).unwrap();
    for horizon in [NOW - 5_000, NOW + 300_000] {
        let rewritten = with_delete_horizon(&header, &batch, horizon).unwrap();
        verify_crc(&rewritten).unwrap();
        let before = decode_records(&batch).unwrap();
        let after = decode_records(&rewritten).unwrap();
        assert_eq!(before, after, "horizon {horizon}");
    }
}

#[test]
fn control_batches_are_classified() {
    let header_of = |batch: &[u8]| RecordBatchHeader::parse(batch).unwrap();
    let abort = build_marker_batch(1, 0, 0, ControlType::Abort, NOW);
    let commit = build_marker_batch(1, 0, 0, ControlType::Commit, NOW);
    assert_eq!(
        classify_control(&header_of(&abort), &abort),
        (Control::Abort, None)
    );
    assert_eq!(
        classify_control(&header_of(&commit), &commit),
        (Control::Commit, None)
    );
    // Another control type (KRaft's LEADER_CHANGE, 2): kept, not an error.
    let other = build_batch_with(&BatchSpec {
        attributes: 0x20,
        records: vec![TestRecord {
            key: Some(&[0, 0, 0, 2]),
            value: Some(&[0, 0]),
            timestamp_delta_ms: 0,
        }],
        ..BatchSpec::new(&[b""])
    });
    assert_eq!(
        classify_control(&header_of(&other), &other),
        (Control::Other, None)
    );
    // A marker record that does not parse: kept, and why is reported.
    let junk = build_batch_with(&BatchSpec {
        attributes: 0x30,
        records: vec![TestRecord {
            key: Some(&[0]),
            value: None,
            timestamp_delta_ms: 0,
        }],
        ..BatchSpec::new(&[b""])
    });
    let (control, why) = classify_control(&header_of(&junk), &junk);
    assert_eq!(control, Control::Other);
    assert!(why.is_some());
    // No records at all.
    let mut empty = abort[..RECORD_BATCH_HEADER_BYTES].to_vec();
    empty[8..12].copy_from_slice(&((RECORD_BATCH_HEADER_BYTES - 12) as i32).to_be_bytes());
    empty[57..61].copy_from_slice(&0i32.to_be_bytes());
    assert_eq!(
        classify_control(&header_of(&empty), &empty),
        (Control::Empty, None)
    );
}

#[test]
fn index_entries_read_files_in_order_then_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txnindex");
    let b = dir.path().join("b.txnindex");
    write_entries(&a, &[entry(1, 0, 1), entry(2, 2, 3)]).unwrap();
    write_entries(&b, &[entry(3, 4, 5)]).unwrap();
    // A torn last entry is not read.
    let mut bytes = std::fs::read(&b).unwrap();
    bytes.extend_from_slice(&[0u8; 10]);
    std::fs::write(&b, bytes).unwrap();
    let empty = dir.path().join("empty.txnindex");
    write_entries(&empty, &[]).unwrap();
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let paths = vec![a.clone(), dir.path().join("missing"), empty, b];
    let got: Vec<AbortedTxn> = IndexEntries::new(paths, vec![entry(4, 3, 9)])
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(
        got,
        vec![
            entry(1, 0, 1),
            entry(2, 2, 3),
            entry(3, 4, 5),
            entry(4, 3, 9)
        ]
    );
    // More entries than one read chunk.
    let many: Vec<AbortedTxn> = (0..2_500).map(|i| entry(i, i * 2, i * 2 + 1)).collect();
    write_entries(&a, &many).unwrap();
    let got: Vec<AbortedTxn> = IndexEntries::new(vec![a.clone()], Vec::new())
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(got, many);
    // An entry of an unknown version is an error, not skipped.
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[34..36].copy_from_slice(&1i16.to_be_bytes());
    std::fs::write(&a, bytes).unwrap();
    let read: Result<Vec<AbortedTxn>> = IndexEntries::new(vec![a], Vec::new()).collect();
    assert!(
        matches!(read, Err(LogError::CorruptIndex { .. })),
        "{read:?}"
    );
}
