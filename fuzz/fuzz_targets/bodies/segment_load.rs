//! A partition directory holding one segment file of arbitrary bytes, opened as a restart opens
//! it: recovery must cut what does not parse and open the rest, never panic.

use shoal_log::{Log, LogConfig};

/// The target's body: libFuzzer calls it with generated inputs (`make fuzz`), and
/// `crates/shoal-broker/tests/fuzz_corpus.rs` replays the seed corpus through it in `make test`.
pub fn run(segment: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("t-0");
    if std::fs::create_dir_all(&path).is_err()
        || std::fs::write(path.join("00000000000000000000.log"), segment).is_err()
    {
        return;
    }
    if let Ok(log) = Log::open(&path, LogConfig::default(), 1_700_000_000_000) {
        let end = log.log_end_offset();
        let _ = log.read(log.log_start_offset(), 1 << 20, end, true);
        let _ = log.close();
    }
}
