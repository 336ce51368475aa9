//! The record compression codecs of Kafka's batches, with a bound on what decompression may
//! produce.
//!
//! **Why bounded.** A batch is at most `max.message.bytes` on disk, but a compressed batch can
//! expand a thousand-fold; a hostile producer could plant such a batch and make whoever
//! decompresses it (the cleaner, a timestamp lookup) allocate without limit. Every
//! decompression here stops at `limit` bytes and fails rather than exceed it.
//!
//! Framing is Kafka's: gzip streams, Kafka/xerial-framed snappy (a 16-byte magic header, then
//! length-prefixed raw blocks; plain raw snappy is read too), LZ4 frames, zstd frames. The
//! algorithms are the `flate2`, `snap`, `lz4` and `zstd` crates.

use std::io::{Read, Write};

use crate::error::{LogError, Result};

pub const NONE: u8 = 0;
pub const GZIP: u8 = 1;
pub const SNAPPY: u8 = 2;
pub const LZ4: u8 = 3;
pub const ZSTD: u8 = 4;

/// Most bytes one batch's records may decompress to.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Kafka's `compression.lz4.level` default.
const DEFAULT_LZ4_LEVEL: u32 = 9;
/// Kafka's `compression.zstd.level` default (zstd's own).
const DEFAULT_ZSTD_LEVEL: i32 = 3;

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;

/// A payload under a valid CRC that does not decompress was built wrong: INVALID_RECORD (see
/// `record_view::bad`).
fn corrupt(codec: u8, why: impl std::fmt::Display) -> LogError {
    LogError::InvalidRecord(format!("codec {codec}: {why}"))
}

/// Decompresses a batch's records section with `codec`, producing at most `limit` bytes.
pub fn decompress(codec: u8, data: &[u8], limit: usize) -> Result<Vec<u8>> {
    match codec {
        NONE => {
            if data.len() > limit {
                return Err(too_large(codec, limit));
            }
            Ok(data.to_vec())
        }
        GZIP => read_bounded(codec, flate2::read::GzDecoder::new(data), limit),
        SNAPPY => decompress_snappy(data, limit),
        LZ4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, limit)
        }
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, limit)
        }
        other => Err(unknown_codec(other)),
    }
}

/// Compresses `data` with `codec` in Kafka's framing, at the codec's default level.
pub fn compress(codec: u8, data: &[u8]) -> Result<Vec<u8>> {
    compress_with_level(codec, data, None)
}

/// Compresses `data` with `codec` in Kafka's framing. `level` is the codec's own scale
/// (gzip 1..=9, lz4 1..=17, zstd -131072..=22; see `LogConfig::validate`); `None` is the
/// codec default (gzip 6, lz4 9, zstd 3). Snappy has no levels.
pub fn compress_with_level(codec: u8, data: &[u8], level: Option<i32>) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| corrupt(codec, e);
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => {
            let compression = match level.and_then(|l| u32::try_from(l).ok()) {
                Some(l) => flate2::Compression::new(l.min(9)),
                None => flate2::Compression::default(),
            };
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), compression);
            encoder.write_all(data).map_err(io)?;
            encoder.finish().map_err(io)
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(data.len() / 2 + XERIAL_HEADER_BYTES);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(SNAPPY_BLOCK_BYTES) {
                let compressed = encoder.compress_vec(block).map_err(|e| corrupt(codec, e))?;
                let len = u32::try_from(compressed.len()).map_err(|e| corrupt(codec, e))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        LZ4 => {
            // Kafka's frame: independent 64 KiB blocks (the Java client refuses linked blocks),
            // no content checksum.
            let level = level
                .and_then(|l| u32::try_from(l).ok())
                .unwrap_or(DEFAULT_LZ4_LEVEL);
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(level)
                .build(Vec::new())
                .map_err(io)?;
            encoder.write_all(data).map_err(io)?;
            let (out, result) = encoder.finish();
            result.map_err(io)?;
            Ok(out)
        }
        ZSTD => zstd::encode_all(data, level.unwrap_or(DEFAULT_ZSTD_LEVEL)).map_err(io),
        other => Err(unknown_codec(other)),
    }
}

/// Kafka's `CompressionType.forId` knows ids 0-4 only.
pub(crate) fn unknown_codec(codec: u8) -> LogError {
    LogError::UnsupportedCompressionType(format!("unknown compression type id {codec}"))
}

fn too_large(codec: u8, limit: usize) -> LogError {
    LogError::DecompressedTooLarge {
        codec,
        limit_bytes: limit,
    }
}

fn read_bounded(codec: u8, reader: impl Read, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if read > limit {
        return Err(too_large(codec, limit));
    }
    Ok(out)
}

fn decompress_snappy(data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let len = snap::raw::decompress_len(raw).map_err(|e| corrupt(SNAPPY, e))?;
        if out.len() + len > limit {
            return Err(too_large(SNAPPY, limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        decoder
            .decompress(raw, &mut out[start..])
            .map_err(|e| corrupt(SNAPPY, e))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| corrupt(SNAPPY, "short xerial header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(SNAPPY, "short block length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let raw = tail
            .get(..len)
            .ok_or_else(|| corrupt(SNAPPY, "block runs past the data"))?;
        block(raw, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "codec {codec}"
            );
        }
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &zeros).unwrap();
            assert!(
                matches!(
                    decompress(codec, &packed, 1000),
                    Err(LogError::DecompressedTooLarge {
                        limit_bytes: 1000,
                        ..
                    })
                ),
                "codec {codec} ignored the limit"
            );
        }
        assert!(decompress(GZIP, b"not gzip", 100).is_err());
        assert!(
            decompress(
                SNAPPY,
                b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff",
                100
            )
            .is_err()
        );
        assert!(decompress(9, b"", 100).is_err());
    }

    #[test]
    fn levels_are_applied() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("record-{}-{} ", i % 977, i % 13).into_bytes())
            .collect();
        for (codec, low, high) in [(GZIP, 1, 9), (LZ4, 1, 17), (ZSTD, 1, 19)] {
            let fast = compress_with_level(codec, &data, Some(low)).unwrap();
            let small = compress_with_level(codec, &data, Some(high)).unwrap();
            assert_ne!(
                fast, small,
                "codec {codec}: level {low} and {high} gave one output"
            );
            for packed in [fast, small] {
                assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data);
            }
        }
        let negative = compress_with_level(ZSTD, &data, Some(-5)).unwrap();
        assert_eq!(decompress(ZSTD, &negative, data.len()).unwrap(), data);
    }

    #[test]
    fn lz4_frames_have_independent_blocks_and_no_content_checksum() {
        let packed = compress(LZ4, b"lz4 frame as Kafka writes it").unwrap();
        // Magic 0x184D2204, then FLG: version 01, block independence set, no content checksum.
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18]);
        let flg = packed[4];
        assert_eq!(flg >> 6, 1, "version");
        assert_ne!(flg & 0x20, 0, "block independence");
        assert_eq!(flg & 0x04, 0, "content checksum");
        assert_eq!((packed[5] >> 4) & 0x7, 4, "64 KiB blocks");
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = b"raw snappy block, as some clients write it".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(SNAPPY, &raw, 10_000).unwrap(), data);
    }
}
