//! Metadata as a node reads it back from its Raft store or a peer: a log entry, a snapshot, a
//! delta of every payload version. Garbage must be a FormatError, never a panic.

use shoal_meta::format::{decode_delta, decode_entry, decode_snapshot};

/// The target's body: libFuzzer calls it with generated inputs (`make fuzz`), and
/// `crates/shoal-broker/tests/fuzz_corpus.rs` replays the seed corpus through it in `make test`.
pub fn run(bytes: &[u8]) {
    let _ = decode_entry(bytes);
    let _ = decode_snapshot(bytes);
    if let Some((version, rest)) = bytes.split_first() {
        let _ = decode_delta(u32::from(*version % 4), rest);
    }
}
