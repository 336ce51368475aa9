//! Broker-side compression (`compression.type`), as Kafka's `LogValidator` does it on the
//! leader.
//!
//! **When.** `producer` (the default) keeps every batch as sent, so the common path stays a
//! header check and one copy. Any other type rewrites a batch only when its codec differs
//! from the topic's; an uncompressed control batch stays uncompressed ("do not compress
//! control records unless they are written compressed"). Followers store the leader's bytes
//! as they are, so only `Log::append_as_leader` calls this.
//!
//! **What is kept.** The records section (already walked and checked by the validator) is
//! decompressed and compressed again with the topic's codec and level. The records themselves are not re-encoded: offset deltas, timestamp deltas, keys,
//! values and headers stay byte for byte, and so does the batch header (base timestamp, max
//! timestamp, producer id/epoch, base sequence, transactional and control bits). Only
//! `batchLength`, the codec bits and the CRC change; offsets and LogAppendTime are applied
//! afterwards like for any batch, and the new batch is validated again.
//!
//! **Bounded.** Decompression stops at `compression::MAX_DECOMPRESSED_BYTES` (or, when the
//! target is `uncompressed`, at what could still fit `max.message.bytes`) with
//! MESSAGE_TOO_LARGE; a rewritten batch above `max.message.bytes` is refused the same way.
//!
//! **Cost.** This is CPU work (a decompress and a compress per batch); callers on an async
//! runtime ask [`needs_recompression`] first and move the append off the async workers when
//! it says yes.

use crate::batch::reseal_with_codec;
use crate::batch::{RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, batches};
use crate::compression::{self, MAX_DECOMPRESSED_BYTES, NONE};
use crate::config::{CompressionType, LogConfig};
use crate::error::{LogError, Result};

/// The codec the leader must rewrite a batch into, or `None` to keep it as sent.
pub(crate) fn recompression_target(
    compression_type: CompressionType,
    header: &RecordBatchHeader,
) -> Option<u8> {
    let target = compression_type.codec()?;
    let source = header.compression_codec();
    if source == target || (header.is_control() && source == NONE) {
        return None;
    }
    Some(target)
}

/// Whether appending `records` as leader under `compression_type` rewrites any batch. Reads
/// headers only; a malformed buffer answers `false` (the append refuses it anyway).
pub fn needs_recompression(records: &[u8], compression_type: CompressionType) -> bool {
    if compression_type == CompressionType::Producer {
        return false;
    }
    batches(records)
        .map_while(|batch| batch.ok())
        .any(|batch| recompression_target(compression_type, &batch.header).is_some())
}

/// Most bytes a batch's records may decompress to: what could still be stored when the
/// rewrite is to `uncompressed`, else `compression::MAX_DECOMPRESSED_BYTES`.
pub(crate) fn decompression_limit(target: Option<u8>, max_message_bytes: u32) -> usize {
    if target == Some(NONE) {
        (max_message_bytes as usize)
            .saturating_sub(RECORD_BATCH_HEADER_BYTES)
            .min(MAX_DECOMPRESSED_BYTES)
    } else {
        MAX_DECOMPRESSED_BYTES
    }
}

/// Writes into `out` the batches of `records` (validated, records included; described by
/// `headers`) as the topic stores them; `sections` holds, by batch, records the validator
/// already decompressed. Returns `false`, leaving `out` untouched, when no batch needs a
/// rewrite.
pub(crate) fn compress_for_topic(
    records: &[u8],
    headers: &[RecordBatchHeader],
    sections: &[Option<Vec<u8>>],
    config: &LogConfig,
    out: &mut Vec<u8>,
) -> Result<bool> {
    if !headers
        .iter()
        .any(|h| recompression_target(config.compression_type, h).is_some())
    {
        return Ok(false);
    }
    out.clear();
    let mut position = 0;
    for (index, header) in headers.iter().enumerate() {
        let end = position + header.size_bytes();
        let batch = records.get(position..end).ok_or_else(|| {
            LogError::CorruptRecord(format!("batch at byte {position} runs past the request"))
        })?;
        let section = sections.get(index).and_then(Option::as_deref);
        match recompression_target(config.compression_type, header) {
            None => out.extend_from_slice(batch),
            Some(target) => recompress_batch(batch, header, section, target, config, out)?,
        }
        position = end;
    }
    Ok(true)
}

/// Appends to `out` one batch rewritten with codec `target` (see the module docs).
fn recompress_batch(
    batch: &[u8],
    header: &RecordBatchHeader,
    section: Option<&[u8]>,
    target: u8,
    config: &LogConfig,
    out: &mut Vec<u8>,
) -> Result<()> {
    let max_message_bytes = config.max_message_bytes as usize;
    let limit = decompression_limit(Some(target), config.max_message_bytes);
    let packed = batch
        .get(RECORD_BATCH_HEADER_BYTES..)
        .ok_or_else(|| LogError::CorruptRecord("a batch shorter than its header".to_owned()))?;
    let source = header.compression_codec();
    let decompressed;
    let section = match section {
        Some(section) => section,
        None if source == NONE => packed,
        None => {
            decompressed = compression::decompress(source, packed, limit)?;
            &decompressed[..]
        }
    };
    if section.len() > limit {
        return Err(LogError::DecompressedTooLarge {
            codec: source,
            limit_bytes: limit,
        });
    }
    let packed =
        compression::compress_with_level(target, section, config.compression_level(target))?;
    let size_bytes = RECORD_BATCH_HEADER_BYTES + packed.len();
    if size_bytes > max_message_bytes {
        return Err(LogError::RecordTooLarge {
            size_bytes,
            max_message_bytes,
        });
    }
    let start = out.len();
    out.extend_from_slice(&batch[..RECORD_BATCH_HEADER_BYTES]);
    out.extend_from_slice(&packed);
    reseal_with_codec(&mut out[start..], target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::verify_crc;
    use crate::compression::{GZIP, LZ4, SNAPPY, ZSTD};
    use crate::record_view::decompressed_section;
    use crate::testing::{BatchSpec, TestRecord, build_batch_with};

    const CODECS: [u8; 5] = [NONE, GZIP, SNAPPY, LZ4, ZSTD];
    const NOW_MS: i64 = 1_700_000_000_000;

    fn type_of(codec: u8) -> CompressionType {
        match codec {
            NONE => CompressionType::Uncompressed,
            GZIP => CompressionType::Gzip,
            SNAPPY => CompressionType::Snappy,
            LZ4 => CompressionType::Lz4,
            _ => CompressionType::Zstd,
        }
    }

    /// An idempotent, transactional batch with keys, a tombstone and mixed timestamp deltas.
    fn plain_batch() -> Vec<u8> {
        let value = b"value ".repeat(50);
        let record = |key: &'static [u8], delta| TestRecord {
            key: Some(key),
            value: Some(&value),
            timestamp_delta_ms: delta,
        };
        build_batch_with(&BatchSpec {
            base_timestamp_ms: NOW_MS - 5_000,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 17,
            attributes: 0x10,
            records: vec![
                record(b"k1", 0),
                record(b"k2", 7),
                TestRecord {
                    key: Some(b"k3"),
                    value: None,
                    timestamp_delta_ms: 3,
                },
                record(b"k4", 9),
            ],
            ..BatchSpec::new(&[b""])
        })
    }

    /// `plain` with its records compressed by `codec` (the codec crates at default levels).
    fn compressed(plain: &[u8], codec: u8) -> Vec<u8> {
        let packed = compression::compress(codec, &plain[RECORD_BATCH_HEADER_BYTES..]).unwrap();
        let mut batch = plain[..RECORD_BATCH_HEADER_BYTES].to_vec();
        batch.extend_from_slice(&packed);
        reseal_with_codec(&mut batch, codec).unwrap();
        batch
    }

    fn config(compression_type: CompressionType) -> LogConfig {
        LogConfig {
            compression_type,
            ..LogConfig::default()
        }
    }

    fn rewrite(records: &[u8], config: &LogConfig) -> Result<Option<Vec<u8>>> {
        let headers: Vec<_> = batches(records).map(|b| b.unwrap().header).collect();
        let mut out = Vec::new();
        Ok(compress_for_topic(records, &headers, &[], config, &mut out)?.then_some(out))
    }

    #[test]
    fn every_codec_pair_keeps_header_and_records() {
        let plain = plain_batch();
        let plain_header = RecordBatchHeader::parse(&plain).unwrap();
        for source in CODECS {
            let input = compressed(&plain, source);
            for target in CODECS {
                let out = rewrite(&input, &config(type_of(target))).unwrap();
                let Some(out) = out else {
                    assert_eq!(source, target, "{source}->{target} was not rewritten");
                    continue;
                };
                assert_ne!(source, target, "{source}->{target} rewritten needlessly");
                verify_crc(&out).unwrap();
                let header = RecordBatchHeader::parse(&out).unwrap();
                assert_eq!(header.size_bytes(), out.len());
                assert_eq!(header.compression_codec(), target);
                let expected = RecordBatchHeader {
                    batch_length: header.batch_length,
                    crc: header.crc,
                    attributes: (plain_header.attributes & !7) | i16::from(target),
                    ..plain_header
                };
                assert_eq!(header, expected, "{source}->{target}");
                assert!(header.is_transactional());
                assert_eq!(
                    decompressed_section(&out).unwrap(),
                    &plain[RECORD_BATCH_HEADER_BYTES..],
                    "{source}->{target}: records changed"
                );
            }
        }
    }

    #[test]
    fn producer_type_never_rewrites() {
        for source in CODECS {
            let input = compressed(&plain_batch(), source);
            assert!(!needs_recompression(&input, CompressionType::Producer));
            assert_eq!(
                rewrite(&input, &config(CompressionType::Producer)).unwrap(),
                None
            );
        }
    }

    #[test]
    fn only_batches_with_another_codec_are_rewritten() {
        let plain = plain_batch();
        let mut records = compressed(&plain, ZSTD);
        records.extend_from_slice(&plain);
        assert!(needs_recompression(&records, CompressionType::Zstd));
        let out = rewrite(&records, &config(CompressionType::Zstd))
            .unwrap()
            .unwrap();
        let found: Vec<_> = batches(&out).map(|b| b.unwrap()).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].bytes,
            &records[..found[0].bytes.len()],
            "kept as sent"
        );
        assert_eq!(found[1].header.compression_codec(), ZSTD);
    }

    #[test]
    fn uncompressed_control_batches_stay_uncompressed() {
        let control = build_batch_with(&BatchSpec {
            attributes: 0x30,
            producer_id: 5,
            ..BatchSpec::new(&[b"marker"])
        });
        assert!(!needs_recompression(&control, CompressionType::Gzip));
        let gzipped_control = compressed(&control, GZIP);
        assert!(needs_recompression(&gzipped_control, CompressionType::Zstd));
    }

    #[test]
    fn levels_reach_the_codec() {
        let value = (0..4_000u32)
            .map(|i| format!("{:05} ", i * 7919 % 10_007))
            .collect::<String>();
        let plain = build_batch_with(&BatchSpec {
            base_timestamp_ms: NOW_MS,
            ..BatchSpec::new(&[value.as_bytes(), value.as_bytes()])
        });
        let at = |level| {
            let config = LogConfig {
                compression_zstd_level: level,
                ..config(CompressionType::Zstd)
            };
            rewrite(&plain, &config).unwrap().unwrap()
        };
        let (fast, small) = (at(1), at(19));
        assert_ne!(fast, small);
        assert_eq!(
            decompressed_section(&fast).unwrap(),
            decompressed_section(&small).unwrap()
        );
    }

    #[test]
    fn bombs_and_oversized_results_are_refused() {
        let zeros = vec![0u8; 2 << 20];
        let plain = build_batch_with(&BatchSpec {
            base_timestamp_ms: NOW_MS,
            ..BatchSpec::new(&[&zeros[..]])
        });
        let bomb = compressed(&plain, ZSTD);
        assert!(bomb.len() < 1 << 20, "the bomb is small on the wire");
        let to_plain = rewrite(&bomb, &config(CompressionType::Uncompressed));
        assert!(
            matches!(to_plain, Err(LogError::DecompressedTooLarge { .. })),
            "{to_plain:?}"
        );
        let to_gzip = LogConfig {
            max_message_bytes: 1_000,
            ..config(CompressionType::Gzip)
        };
        assert!(matches!(
            rewrite(&bomb, &to_gzip),
            Err(LogError::RecordTooLarge { .. })
        ));
    }
}
