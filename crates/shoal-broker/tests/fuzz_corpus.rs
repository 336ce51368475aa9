//! The fuzz targets' seed corpora replayed through the targets' own bodies (`fuzz/fuzz_targets/bodies/`), on
//! the stable toolchain: the deterministic part of fuzzing that `make test` runs. Real fuzzing
//! (nightly, libFuzzer, new inputs) is `make fuzz`; an input it finds that fails goes into the
//! corpus, and from then on this test fails until the bug is fixed.
//!
//! Here because this crate depends on everything the targets reach (wire, log, metadata).

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/fuzz_targets/bodies/kafka_request.rs"]
mod kafka_request;
#[path = "../../../fuzz/fuzz_targets/bodies/metadata_record.rs"]
mod metadata_record;
#[path = "../../../fuzz/fuzz_targets/bodies/record_batch.rs"]
mod record_batch;
#[path = "../../../fuzz/fuzz_targets/bodies/segment_load.rs"]
mod segment_load;

/// Every file of `fuzz/corpus/<target>`, sorted; a target without a corpus is an error (the
/// replay would pass without testing anything).
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.retain(|f| f.is_file());
    files.sort();
    assert!(!files.is_empty(), "{} holds no seed input", dir.display());
    files
}

/// Runs `body` on every seed of `target`; a panic names the input.
fn replay(target: &str, body: fn(&[u8])) {
    for file in corpus(target) {
        let input = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if std::panic::catch_unwind(|| body(&input)).is_err() {
            panic!(
                "fuzz target {target} panicked on {} (reproduce: cd fuzz && cargo +nightly fuzz \
                 run {target} {})",
                file.display(),
                file.display()
            );
        }
    }
}

#[test]
fn kafka_request_seeds() {
    replay("kafka_request", kafka_request::run);
}

#[test]
fn record_batch_seeds() {
    replay("record_batch", record_batch::run);
}

#[test]
fn metadata_record_seeds() {
    replay("metadata_record", metadata_record::run);
}

#[test]
fn segment_load_seeds() {
    replay("segment_load", segment_load::run);
}
