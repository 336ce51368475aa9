//! The clean-shutdown marker: proof that the last `close()` flushed everything.
//!
//! `close()` writes it after every segment, index and checkpoint is on disk. Opening takes it
//! away (durably) before anything else happens, so any crash from then on leaves no marker and
//! the next open scans the unflushed tail. With the marker present, opening trusts the files
//! and only sanity-checks index sizes, which keeps a clean start fast however big the log is.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::Path;

use crate::checkpoint::sync_dir;
use crate::error::{IoResultExt, Result};

/// File name inside the partition directory.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";

/// Removes the marker; true if it was there.
pub(crate) fn take_marker(dir: &Path) -> Result<bool> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at(&path),
    }
}

/// Writes the marker durably. Call only once everything else is flushed.
pub(crate) fn write_marker(dir: &Path) -> Result<()> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    File::create(&path).and_then(|f| f.sync_all()).at(&path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!take_marker(dir.path()).unwrap());
        write_marker(dir.path()).unwrap();
        assert!(take_marker(dir.path()).unwrap());
        assert!(!take_marker(dir.path()).unwrap());
    }
}
