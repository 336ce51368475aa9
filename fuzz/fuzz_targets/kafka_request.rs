//! One Kafka request frame (the bytes after the 4-byte size), routed as a connection does:
//! header, version rules, length guard, decode. Any input must give Ok or an error, never a
//! panic or an allocation beyond the frame's own size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = shoal_kafka::route_any_frame(bytes::Bytes::copy_from_slice(frame));
});
