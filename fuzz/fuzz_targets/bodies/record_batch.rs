//! The records of one Produce partition, checked as a leader append checks them (headers, CRC,
//! every record, decompression bounded), on a plain and on a compacted topic. Each input is
//! also tried with every batch's CRC made right, or the fuzzer would rarely get past the CRC to
//! the record walk.

use shoal_log::{CleanupPolicy, LogConfig, validate_produce};

const NOW_MS: i64 = 1_700_000_000_000;
/// baseOffset (8) + batchLength (4) + partitionLeaderEpoch (4) + magic (1).
const CRC_AT: usize = 17;
const CRC_COVERS_FROM: usize = 21;

/// The target's body: libFuzzer calls it with generated inputs (`make fuzz`), and
/// `crates/shoal-broker/tests/fuzz_corpus.rs` replays the seed corpus through it in `make test`.
pub fn run(records: &[u8]) {
    let plain = LogConfig::default();
    let compacted = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    };
    let mut fixed = records.to_vec();
    fix_crcs(&mut fixed);
    for input in [records, fixed.as_slice()] {
        let _ = validate_produce(input, &plain, NOW_MS);
        let _ = validate_produce(input, &compacted, NOW_MS);
    }
}

/// Rewrites each batch's CRC-32C over what its batchLength says it holds.
fn fix_crcs(bytes: &mut [u8]) {
    let mut at = 0usize;
    while let Some(length) = bytes.get(at + 8..at + 12) {
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let Ok(length) = usize::try_from(length) else {
            return;
        };
        let end = at + 12 + length;
        if end > bytes.len() || 12 + length < CRC_COVERS_FROM {
            return;
        }
        let crc = crc32c::crc32c(&bytes[at + CRC_COVERS_FROM..end]);
        bytes[at + CRC_AT..at + CRC_COVERS_FROM].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}
