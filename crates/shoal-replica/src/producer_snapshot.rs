//! Persisting the producer table, so opening a log does not rescan it (Kafka's `.snapshot`).
//!
//! The snapshot records the log end offset it covers. On open the table is loaded and only the
//! batches after that offset are read back; a snapshot past the recovered log end (the tail was
//! truncated after it was taken) is discarded and the whole log is scanned instead.
//!
//! Format: JSON, `{"version": 1, "log_end_offset": …, "table": …}`. Version 1 added
//! transactions (open ones with each producer, decided ones the high watermark has not passed,
//! coordinator epochs). A snapshot without a version is the format before it and loads as it is
//! (it has no transactions; every field added since has a default). A newer version than this
//! broker knows is discarded with a WARN and the table rebuilt from the log: slower, never
//! wrong.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::producer_state::ProducerStateTable;

pub const SNAPSHOT_FILE: &str = "producer-state.json";
/// The format this broker writes.
pub const SNAPSHOT_VERSION: u32 = 1;
/// What a snapshot without a `version` field is.
const UNVERSIONED: u32 = 0;
/// A snapshot larger than this is not loaded (it cannot be one of ours: the table is bounded).
const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

fn unversioned() -> u32 {
    UNVERSIONED
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    #[serde(default = "unversioned")]
    pub version: u32,
    /// Every batch below this offset is reflected in `table`.
    pub log_end_offset: i64,
    pub table: ProducerStateTable,
}

impl ProducerSnapshot {
    /// A snapshot in this broker's format.
    pub fn new(log_end_offset: i64, table: ProducerStateTable) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            log_end_offset,
            table,
        }
    }
}

/// Just the version, read before the rest.
#[derive(Deserialize)]
struct Version {
    #[serde(default = "unversioned")]
    version: u32,
}

fn path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

pub fn write(dir: &Path, snapshot: &ProducerSnapshot) -> std::io::Result<()> {
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let bytes = serde_json::to_vec(snapshot).map_err(std::io::Error::other)?;
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path(dir))
}

/// Removes the snapshot (it describes a log tail that is gone); a missing one is fine.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match fs::remove_file(path(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The snapshot, or None if there is none or it cannot be trusted (logged).
pub fn read(dir: &Path) -> Option<ProducerSnapshot> {
    let p = path(dir);
    let size = fs::metadata(&p).ok()?.len();
    if size > MAX_SNAPSHOT_BYTES {
        tracing::warn!(path = %p.display(), size, "producer snapshot too large; rebuilding from the log");
        return None;
    }
    let bytes = fs::read(&p).ok()?;
    match serde_json::from_slice::<Version>(&bytes) {
        Ok(v) if v.version > SNAPSHOT_VERSION => {
            tracing::warn!(
                path = %p.display(),
                version = v.version,
                known = SNAPSHOT_VERSION,
                "producer snapshot of an unknown, newer format; rebuilding from the log"
            );
            return None;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(path = %p.display(), %error, "unreadable producer snapshot; rebuilding from the log");
            return None;
        }
    }
    match serde_json::from_slice(&bytes) {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::warn!(path = %p.display(), %error, "unreadable producer snapshot; rebuilding from the log");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic in a test is a failed test

    use super::*;

    #[test]
    fn versions() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &ProducerSnapshot::new(7, ProducerStateTable::default()),
        )
        .unwrap();
        let text = fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.contains("\"version\":1"), "{text}");
        assert_eq!(read(dir.path()).unwrap().log_end_offset, 7);

        // (file contents, loads)
        let cases = [
            (r#"{"log_end_offset":3,"table":{"producers":{}}}"#, true),
            (
                r#"{"version":1,"log_end_offset":3,"table":{"producers":{}}}"#,
                true,
            ),
            (
                r#"{"version":2,"log_end_offset":3,"table":{"producers":{}}}"#,
                false,
            ),
            (
                r#"{"version":2,"whatever":"a newer format could hold anything"}"#,
                false,
            ),
            (r#"{"version":1,"log_end_offset":3}"#, false),
            ("not json", false),
        ];
        for (text, loads) in cases {
            fs::write(path(dir.path()), text).unwrap();
            assert_eq!(read(dir.path()).is_some(), loads, "{text}");
        }
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert!(read(dir.path()).is_none());
    }
}
