use super::*;

fn txn(producer_id: i64, first_offset: i64, last_offset: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: lso,
    }
}

fn all(index: &TxnIndex) -> Vec<AbortedTxn> {
    let mut out = Vec::new();
    index
        .collect(i64::MIN, i64::MAX, usize::MAX, &mut out)
        .unwrap();
    out
}

#[test]
fn entries_are_kafkas_34_byte_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000000.txnindex");
    let mut index = TxnIndex::empty(path.clone());
    assert!(!path.exists(), "created on the first entry only");
    index.append(&txn(0x0102_0304_0506_0708, 5, 9, 10)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let expected: Vec<u8> = [
        &[0x00, 0x00][..],
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        &5i64.to_be_bytes(),
        &9i64.to_be_bytes(),
        &10i64.to_be_bytes(),
    ]
    .concat();
    assert_eq!(bytes, expected);
    let reopened = TxnIndex::open(path).unwrap();
    assert_eq!(all(&reopened), vec![txn(0x0102_0304_0506_0708, 5, 9, 10)]);
}

#[test]
fn last_offsets_must_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = TxnIndex::empty(dir.path().join("x.txnindex"));
    index.append(&txn(1, 0, 5, 6)).unwrap();
    assert!(index.append(&txn(2, 1, 5, 6)).is_err());
    assert!(index.append(&txn(2, 1, 4, 6)).is_err());
    index.append(&txn(2, 1, 6, 7)).unwrap();
    assert_eq!(index.len(), 2);
}

#[test]
fn collect_follows_kafkas_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = TxnIndex::empty(dir.path().join("x.txnindex"));
    let entries = [
        txn(1, 0, 10, 3),  // another transaction was open from 3
        txn(2, 3, 20, 21), // nothing open after it
        txn(3, 22, 30, 31),
        txn(4, 25, 40, 41),
    ];
    for entry in &entries {
        index.append(entry).unwrap();
    }
    // (start, upper bound, expected entries, complete)
    let cases: [(i64, i64, &[usize], Collected); 7] = [
        (0, 5, &[0, 1], Collected::Complete),
        // Entry 0 ends below the start; entry 1 overlaps, and its LSO 21 >= 15 stops the scan.
        (11, 15, &[1], Collected::Complete),
        (21, 22, &[], Collected::Complete),
        (21, 23, &[2], Collected::Complete),
        // Only entry 3 ends at or after 31; no LSO reaches 45, so later segments may hold more.
        (31, 45, &[3], Collected::Partial),
        (0, i64::MAX, &[0, 1, 2, 3], Collected::Partial),
        (41, 100, &[], Collected::Partial),
    ];
    for (start, upper, expected, complete) in cases {
        let mut out = Vec::new();
        let got = index.collect(start, upper, usize::MAX, &mut out).unwrap();
        let wanted: Vec<AbortedTxn> = expected.iter().map(|i| entries[*i]).collect();
        assert_eq!(out, wanted, "[{start}, {upper})");
        assert_eq!(got, complete, "[{start}, {upper})");
    }
}

#[test]
fn collect_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = TxnIndex::empty(dir.path().join("x.txnindex"));
    for i in 0..3 {
        index.append(&txn(i, i, 10 + i, i64::MAX)).unwrap();
    }
    let mut out = Vec::new();
    // The first entry's LSO stops the scan before the bound matters.
    assert_eq!(
        index.collect(0, 100, 1, &mut out).unwrap(),
        Collected::Complete
    );
    let mut index = TxnIndex::empty(dir.path().join("y.txnindex"));
    for i in 0..3 {
        index.append(&txn(i, i, 10 + i, 0)).unwrap();
    }
    let mut out = Vec::new();
    assert!(index.collect(0, 100, 3, &mut out).is_ok());
    let mut out = Vec::new();
    assert!(matches!(
        index.collect(0, 100, 2, &mut out),
        Err(LogError::TooManyAbortedTxns { limit: 2, .. })
    ));
}

#[test]
fn truncation_removes_entries_ending_at_or_after_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txnindex");
    let mut index = TxnIndex::empty(path.clone());
    for (i, last) in [5, 9, 14].iter().enumerate() {
        index.append(&txn(i as i64, 0, *last, last + 1)).unwrap();
    }
    index.truncate_from(15).unwrap();
    assert_eq!(index.len(), 3);
    index.truncate_from(9).unwrap();
    assert_eq!(all(&index), vec![txn(0, 0, 5, 6)]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
    // The next entry may reuse the removed offsets.
    index.append(&txn(7, 6, 9, 10)).unwrap();
    index.truncate_from(0).unwrap();
    assert_eq!(index.len(), 0);
    assert!(all(&TxnIndex::open(path).unwrap()).is_empty());
}

#[test]
fn a_torn_tail_is_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txnindex");
    let mut index = TxnIndex::empty(path.clone());
    index.append(&txn(1, 0, 5, 6)).unwrap();
    index.append(&txn(2, 6, 9, 10)).unwrap();
    drop(index);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..34 + 20]).unwrap();
    let mut index = TxnIndex::open(path.clone()).unwrap();
    assert_eq!(all(&index), vec![txn(1, 0, 5, 6)]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
    // Appends continue after the last whole entry.
    index.append(&txn(2, 6, 9, 10)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn an_unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txnindex");
    let mut index = TxnIndex::empty(path.clone());
    index.append(&txn(1, 0, 5, 6)).unwrap();
    index.append(&txn(2, 6, 9, 10)).unwrap();
    drop(index);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[34..36].copy_from_slice(&1i16.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        TxnIndex::open(path),
        Err(LogError::CorruptIndex { reason, .. }) if reason.contains("version 1")
    ));
}
