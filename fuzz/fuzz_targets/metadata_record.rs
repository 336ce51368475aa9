//! libFuzzer entry of `bodies/metadata_record.rs` (what it checks is documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "bodies/metadata_record.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
