//! libFuzzer entry of `bodies/record_batch.rs` (what it checks is documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "bodies/record_batch.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
