use super::*;
use crate::batch::verify_crc;
use crate::testing::{BatchSpec, TestRecord, build_batch_with};

/// A COMMIT marker of producer 4242, epoch 3, coordinator epoch 7 at 1_700_000_000_123 ms, as
/// Kafka writes it (checked against the `kafka-protocol` crate's independent encoder).
const KAFKA_COMMIT_MARKER: [u8; 78] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // baseOffset 0
    0x00, 0x00, 0x00, 0x42, // batchLength 66
    0xff, 0xff, 0xff, 0xff, // partitionLeaderEpoch -1
    0x02, // magic
    0x10, 0x7a, 0x73, 0xe4, // CRC-32C
    0x00, 0x30, // attributes: transactional | control
    0x00, 0x00, 0x00, 0x00, // lastOffsetDelta
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, // baseTimestamp
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, // maxTimestamp
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x92, // producerId 4242
    0x00, 0x03, // producerEpoch
    0xff, 0xff, 0xff, 0xff, // baseSequence -1
    0x00, 0x00, 0x00, 0x01, // recordCount
    0x20, // record length 16
    0x00, 0x00, 0x00, // attributes, timestamp delta, offset delta
    0x08, 0x00, 0x00, 0x00, 0x01, // key: version 0, type COMMIT
    0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // value: version 0, coordinator epoch 7
    0x00, // no headers
];

#[test]
fn a_commit_marker_is_byte_for_byte_kafkas() {
    let batch = build_marker_batch(4242, 3, 7, ControlType::Commit, 1_700_000_000_123);
    assert_eq!(batch, KAFKA_COMMIT_MARKER);
    verify_crc(&batch).unwrap();
    let header = RecordBatchHeader::parse(&batch).unwrap();
    assert!(header.is_control() && header.is_transactional());
    assert_eq!(header.size_bytes(), batch.len());
    assert_eq!(header.base_sequence, -1);
}

#[test]
fn an_abort_marker_differs_only_in_its_type_and_crc() {
    let commit = build_marker_batch(4242, 3, 7, ControlType::Commit, 1_700_000_000_123);
    let abort = build_marker_batch(4242, 3, 7, ControlType::Abort, 1_700_000_000_123);
    let differing: Vec<usize> = (0..commit.len())
        .filter(|i| commit[*i] != abort[*i])
        .collect();
    // The CRC (17..21) and the key's type byte (offset 61 + 8).
    assert!(differing.iter().all(|i| (17..21).contains(i) || *i == 69));
    assert_eq!(abort[69], 0);
    verify_crc(&abort).unwrap();
}

#[test]
fn markers_round_trip() {
    for (control, epoch) in [
        (ControlType::Abort, 0),
        (ControlType::Commit, i32::MAX),
        (ControlType::Abort, -1),
    ] {
        let batch = build_marker_batch(1, 0, epoch, control, 5);
        assert_eq!(parse_marker(&batch).unwrap(), Some((control, epoch)));
    }
    assert_eq!(
        parse_marker(&KAFKA_COMMIT_MARKER).unwrap(),
        Some((ControlType::Commit, 7))
    );
}

/// A control batch with one record of the given key and value.
fn control_batch(key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        attributes: 0x30,
        producer_id: 9,
        producer_epoch: 0,
        records: vec![TestRecord {
            key,
            value,
            timestamp_delta_ms: 0,
        }],
        ..BatchSpec::new(&[])
    })
}

#[test]
fn decoding_rules() {
    type Expected = std::result::Result<Option<(ControlType, i32)>, ()>;
    type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Expected);
    // (key, value, expected)
    let cases: [Case<'_>; 9] = [
        (
            Some(&[0, 0, 0, 1]),
            Some(&[0, 0, 0, 0, 0, 3]),
            Ok(Some((ControlType::Commit, 3))),
        ),
        // A newer key or value version is read as version 0 (Kafka logs it and goes on).
        (
            Some(&[0, 1, 0, 0, 9]),
            Some(&[0, 4, 0, 0, 0, 3, 1]),
            Ok(Some((ControlType::Abort, 3))),
        ),
        // Other control types (KRaft's LEADER_CHANGE = 2, …) are not transaction markers.
        (Some(&[0, 0, 0, 2]), Some(&[1, 2, 3]), Ok(None)),
        (Some(&[0, 0, 0x7f, 0x7f]), None, Ok(None)),
        (Some(&[0, 0, 0]), Some(&[0, 0, 0, 0, 0, 3]), Err(())),
        (None, Some(&[0, 0, 0, 0, 0, 3]), Err(())),
        (
            Some(&[0xff, 0xff, 0, 1]),
            Some(&[0, 0, 0, 0, 0, 3]),
            Err(()),
        ),
        (Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0]), Err(())),
        (Some(&[0, 0, 0, 0]), None, Err(())),
    ];
    for (key, value, expected) in cases {
        let got = parse_marker(&control_batch(key, value)).map_err(|_| ());
        assert_eq!(got, expected, "key {key:?}, value {value:?}");
    }
}

#[test]
fn a_data_batch_is_not_a_marker_and_damage_is_an_error() {
    let data = build_batch_with(&BatchSpec::new(&[b"x"]));
    assert!(matches!(
        parse_marker(&data),
        Err(LogError::InvalidRecord(_))
    ));

    let marker = build_marker_batch(1, 0, 0, ControlType::Commit, 0);
    assert!(
        parse_marker(&marker[..marker.len() - 1]).is_err(),
        "cut short"
    );
    let mut lying = marker.clone();
    lying[61] = 0x7e; // record length 63: past the batch
    assert!(parse_marker(&lying).is_err());
    let mut two = marker.clone();
    two[57..61].copy_from_slice(&2i32.to_be_bytes()); // claims a second record
    assert!(parse_marker(&two).is_err());
    let mut huge = marker;
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(parse_marker(&huge).is_err(), "a lying batch length");
}

#[test]
fn an_emptied_control_batch_is_no_marker() {
    let mut marker = build_marker_batch(1, 0, 0, ControlType::Abort, 0);
    marker.truncate(RECORD_BATCH_HEADER_BYTES);
    marker[8..12].copy_from_slice(&49i32.to_be_bytes());
    marker[57..61].copy_from_slice(&0i32.to_be_bytes());
    assert_eq!(parse_marker(&marker).unwrap(), None);
}

#[test]
fn control_type_ids_are_kafkas() {
    assert_eq!(ControlType::Abort.id(), 0);
    assert_eq!(ControlType::Commit.id(), 1);
    assert_eq!(ControlType::from_id(1), Some(ControlType::Commit));
    assert_eq!(ControlType::from_id(0), Some(ControlType::Abort));
    assert_eq!(ControlType::from_id(2), None);
    assert_eq!(ControlType::from_id(-1), None);
}
