//! libFuzzer entry of `bodies/kafka_request.rs` (what it checks is documented there).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "bodies/kafka_request.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
