//! Persisting the producer table, so opening a log does not rescan it (Kafka's `.snapshot`).
//!
//! The snapshot records the log end offset it covers. On open the table is loaded and only the
//! batches after that offset are read back; a snapshot past the recovered log end (the tail was
//! truncated after it was taken) is discarded and the whole log is scanned instead.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::producer_state::ProducerStateTable;

pub const SNAPSHOT_FILE: &str = "producer-state.json";
/// A snapshot larger than this is not loaded (it cannot be one of ours: the table is bounded).
const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    /// Every batch below this offset is reflected in `table`.
    pub log_end_offset: i64,
    pub table: ProducerStateTable,
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

/// The snapshot, or None if there is none or it cannot be trusted (logged).
pub fn read(dir: &Path) -> Option<ProducerSnapshot> {
    let p = path(dir);
    let size = fs::metadata(&p).ok()?.len();
    if size > MAX_SNAPSHOT_BYTES {
        tracing::warn!(path = %p.display(), size, "producer snapshot too large; rebuilding from the log");
        return None;
    }
    let bytes = fs::read(&p).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::warn!(path = %p.display(), %error, "unreadable producer snapshot; rebuilding from the log");
            None
        }
    }
}
