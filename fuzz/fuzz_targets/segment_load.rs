//! libFuzzer entry of `bodies/segment_load.rs` (what it checks is documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "bodies/segment_load.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
