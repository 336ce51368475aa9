//! Metadata as a node reads it back from its Raft store or a peer: a log entry, a snapshot, a
//! delta of every payload version. Garbage must be a FormatError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_meta::format::{decode_delta, decode_entry, decode_snapshot};

fuzz_target!(|bytes: &[u8]| {
    let _ = decode_entry(bytes);
    let _ = decode_snapshot(bytes);
    if let Some((version, rest)) = bytes.split_first() {
        let _ = decode_delta(u32::from(*version % 4), rest);
    }
});
