//! One Kafka request frame (the bytes after the 4-byte size), routed as a connection does:
//! header, version rules, length guard, decode. Any input must give Ok or an error, never a
//! panic or an allocation beyond the frame's own size.

/// The target's body: libFuzzer calls it with generated inputs (`make fuzz`), and
/// `crates/shoal-broker/tests/fuzz_corpus.rs` replays the seed corpus through it in `make test`.
pub fn run(frame: &[u8]) {
    let _ = shoal_kafka::route_any_frame(bytes::Bytes::copy_from_slice(frame));
}
