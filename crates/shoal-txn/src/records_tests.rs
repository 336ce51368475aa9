//! Golden bytes derived by hand from Kafka's TransactionLogKey.json and
//! TransactionLogValue.json (4.x), round trips, and garbage.

use super::*;

fn ongoing() -> TransactionLogValue {
    TransactionLogValue {
        producer_id: 1000,
        previous_producer_id: 999,
        next_producer_id: -1,
        producer_epoch: 5,
        transaction_timeout_ms: 60_000,
        state: TransactionState::Ongoing,
        partitions: [("a".to_string(), 0), ("a".to_string(), 1)]
            .into_iter()
            .collect(),
        last_update_timestamp_ms: 2000,
        start_timestamp_ms: 1500,
        client_transaction_version: 2,
    }
}

#[test]
fn key_golden_bytes() {
    // int16 version 0, then the string: int16 length 2, "t1".
    let bytes = encode_key("t1").expect("encode");
    assert_eq!(bytes, [0x00, 0x00, 0x00, 0x02, b't', b'1']);
    assert_eq!(decode_key(&bytes), Ok(Some("t1".to_string())));
    // Another key version: not ours, skipped.
    assert_eq!(decode_key(&[0x00, 0x01, 0x00, 0x00]), Ok(None));
}

#[rustfmt::skip]
const V0: &[u8] = &[
    0x00, 0x00,                                     // value version 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xEA, 0x60,                         // TransactionTimeoutMs 60000
    0x01,                                           // TransactionStatus 1 = Ongoing
    0x00, 0x00, 0x00, 0x01,                         // TransactionPartitions: 1 topic
    0x00, 0x01, b'a',                               //   Topic "a"
    0x00, 0x00, 0x00, 0x02,                         //   PartitionIds: 2
    0x00, 0x00, 0x00, 0x00,                         //     0
    0x00, 0x00, 0x00, 0x01,                         //     1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xD0, // TransactionLastUpdateTimestampMs 2000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xDC, // TransactionStartTimestampMs 1500
];

#[rustfmt::skip]
const V1: &[u8] = &[
    0x00, 0x01,                                     // value version 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xEA, 0x60,                         // TransactionTimeoutMs 60000
    0x01,                                           // TransactionStatus 1 = Ongoing
    0x02,                                           // compact array: 1 topic (+1)
    0x02, b'a',                                     //   compact string "a" (length 1 + 1)
    0x03,                                           //   compact array: 2 ids (+1)
    0x00, 0x00, 0x00, 0x00,                         //     0
    0x00, 0x00, 0x00, 0x01,                         //     1
    0x00,                                           //   the entry's tagged fields: none
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xD0, // TransactionLastUpdateTimestampMs 2000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xDC, // TransactionStartTimestampMs 1500
    0x02,                                           // 2 tagged fields (NextProducerId is -1: omitted)
    0x00, 0x08,                                     //   tag 0 PreviousProducerId, 8 bytes
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE7, //     999
    0x02, 0x02,                                     //   tag 2 ClientTransactionVersion, 2 bytes
    0x00, 0x02,                                     //     2
];

#[test]
fn value_v0_golden_bytes() {
    assert_eq!(
        encode_value(&ongoing(), VALUE_VERSION_V0).expect("encode"),
        V0
    );
    // v0 has no tagged fields: they read back as their defaults.
    let expected = TransactionLogValue {
        previous_producer_id: -1,
        client_transaction_version: 0,
        ..ongoing()
    };
    assert_eq!(decode_value(V0), Ok(expected));
}

#[test]
fn value_v1_golden_bytes() {
    assert_eq!(
        encode_value(&ongoing(), VALUE_VERSION_V1).expect("encode"),
        V1
    );
    assert_eq!(decode_value(V1), Ok(ongoing()));
}

#[test]
fn an_empty_state_writes_null_partitions_and_default_tags_nothing() {
    let empty = TransactionLogValue {
        producer_id: 7,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 0,
        transaction_timeout_ms: 1000,
        state: TransactionState::Empty,
        partitions: BTreeSet::new(),
        last_update_timestamp_ms: 1,
        start_timestamp_ms: -1,
        client_transaction_version: 0,
    };
    let v1 = encode_value(&empty, VALUE_VERSION_V1).expect("encode");
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x01,
        0, 0, 0, 0, 0, 0, 0, 7,
        0x00, 0x00,
        0x00, 0x00, 0x03, 0xE8,
        0x00,                   // Empty
        0x00,                   // null compact array
        0, 0, 0, 0, 0, 0, 0, 1,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0x00,                   // no tagged fields
    ];
    assert_eq!(v1, expected);
    let v0 = encode_value(&empty, VALUE_VERSION_V0).expect("encode");
    assert_eq!(
        &v0[17..21],
        &[0xFF, 0xFF, 0xFF, 0xFF],
        "null array: count -1"
    );
    assert_eq!(decode_value(&v0), Ok(empty.clone()));
    assert_eq!(decode_value(&v1), Ok(empty));
}

#[test]
fn round_trips_every_state_and_version() {
    for state in TransactionState::ALL {
        for version in [VALUE_VERSION_V0, VALUE_VERSION_V1] {
            let mut value = ongoing();
            value.state = state;
            value.next_producer_id = 3000;
            value.partitions = [
                ("b".to_string(), 3),
                ("a".to_string(), 9),
                ("a".to_string(), 0),
            ]
            .into_iter()
            .collect();
            if state == TransactionState::Empty {
                value.partitions.clear();
            }
            if version == VALUE_VERSION_V0 {
                value.previous_producer_id = -1;
                value.next_producer_id = -1;
                value.client_transaction_version = 0;
            }
            let bytes = encode_value(&value, version).expect("encode");
            assert_eq!(decode_value(&bytes), Ok(value), "{state} v{version}");
        }
    }
}

#[test]
fn records_and_tombstones() {
    let key = encode_key("txn").expect("key");
    let value = encode_value(&ongoing(), VALUE_VERSION_V1).expect("value");
    assert_eq!(
        decode_record(&key, Some(&value)),
        Ok(TxnRecord::Value {
            transactional_id: "txn".to_string(),
            value: ongoing()
        })
    );
    let (key, value) = tombstone("txn").expect("tombstone");
    assert_eq!(value, None);
    assert_eq!(
        decode_record(&key, None),
        Ok(TxnRecord::Tombstone {
            transactional_id: "txn".to_string()
        })
    );
    assert_eq!(
        decode_record(&[0x00, 0x03, 0xAB], None),
        Ok(TxnRecord::UnknownKeyVersion(3))
    );
}

#[test]
fn unknown_tagged_fields_are_skipped() {
    let mut bytes = V1.to_vec();
    // Replace the 2-field section with 3 fields: tag 0, tag 2, and an unknown tag 9 (3 bytes).
    let section = V1.len() - 15;
    bytes.truncate(section);
    bytes.push(0x03);
    bytes.extend_from_slice(&V1[section + 1..]);
    bytes.extend_from_slice(&[0x09, 0x03, 0xAA, 0xBB, 0xCC]);
    assert_eq!(decode_value(&bytes), Ok(ongoing()));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for full in [V0, V1] {
        for len in 0..full.len() {
            assert!(
                decode_value(&full[..len]).is_err(),
                "{len} of {}",
                full.len()
            );
        }
    }
    let key = encode_key("txn").expect("key");
    for len in 0..key.len() {
        assert!(decode_key(&key[..len]).is_err(), "key {len}");
    }
}

#[test]
fn garbage_is_refused() {
    let mut huge_topics = V0[..17].to_vec();
    huge_topics.extend_from_slice(&0x7FFF_FFFFi32.to_be_bytes());
    let mut negative_topics = V0[..17].to_vec();
    negative_topics.extend_from_slice(&(-2i32).to_be_bytes());
    let mut many_ids = V1[..17].to_vec();
    many_ids.extend_from_slice(&[0x02, 0x02, b'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
    let mut bad_status = V0.to_vec();
    bad_status[16] = 8;
    let mut long_varint = V1[..17].to_vec();
    long_varint.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    let mut bad_utf8 = V0.to_vec();
    bad_utf8[23] = 0xFF;
    let mut short_tag = V1.to_vec();
    let at = V1.len() - 4;
    short_tag.splice(at..at + 4, [0x02, 0x01, 0x00]);
    let table: [(&str, Vec<u8>); 8] = [
        ("topic count beyond the bytes", huge_topics),
        ("negative count", negative_topics),
        ("id count beyond the limit", many_ids),
        ("unknown status", bad_status),
        ("varint past 32 bits", long_varint),
        ("topic not UTF-8", bad_utf8),
        ("a 1-byte int16 tag", short_tag),
        ("empty", Vec::new()),
    ];
    for (name, bytes) in table {
        assert!(
            matches!(decode_value(&bytes), Err(RecordError::Malformed(_))),
            "{name}: {:?}",
            decode_value(&bytes)
        );
    }
    assert_eq!(
        decode_value(&[0x00, 0x02, 0x00]),
        Err(RecordError::UnknownValueVersion(2))
    );
    assert_eq!(
        encode_value(&ongoing(), 2),
        Err(RecordError::UnknownValueVersion(2))
    );
    let long_id = "x".repeat(40_000);
    assert!(encode_key(&long_id).is_err());
}

#[test]
fn pseudo_random_bytes_never_panic() {
    // A small xorshift: the decoder must answer (Ok or Err) for anything.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..20_000 {
        let len = (round % 80) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        if round % 2 == 0 && len >= 2 {
            bytes[0] = 0;
            bytes[1] = (round % 3) as u8;
        }
        let _ = decode_value(&bytes);
        let _ = decode_key(&bytes);
    }
}
