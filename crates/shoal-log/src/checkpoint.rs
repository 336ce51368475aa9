//! Small files that must never be seen half-written: checkpoints and markers.
//!
//! A checkpoint is replaced with write-temp, fsync, rename, fsync-directory. Rename is atomic,
//! so a reader sees the old contents or the new, never a torn mix, and the directory fsync
//! makes the rename itself survive power loss. Reads are bounded so a damaged file cannot make
//! the loader allocate without limit.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use crate::error::{IoResultExt, LogError, Result};

/// Suffix of a checkpoint being written; such files are leftovers of a crash and are deleted
/// when the log is loaded.
pub(crate) const TEMP_FILE_SUFFIX: &str = "tmp";

/// Replaces `path` with `contents` atomically and durably.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let temp = path.with_extension(TEMP_FILE_SUFFIX);
    {
        let mut file = File::create(&temp).at(&temp)?;
        file.write_all(contents).at(&temp)?;
        file.sync_all().at(&temp)?;
    }
    fs::rename(&temp, path).at(path)?;
    sync_parent_dir(path)
}

/// Reads a whole checkpoint of at most `max_bytes`; `None` if it does not exist.
pub(crate) fn read_bounded(path: &Path, max_bytes: u64) -> Result<Option<String>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(path),
    };
    let mut contents = String::new();
    let read = file.take(max_bytes + 1).read_to_string(&mut contents);
    match read {
        Ok(n) if n as u64 > max_bytes => Err(LogError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason: format!("larger than the {max_bytes}-byte limit"),
        }),
        Ok(_) => Ok(Some(contents)),
        Err(e) if e.kind() == ErrorKind::InvalidData => Err(LogError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason: "not UTF-8 text".to_owned(),
        }),
        Err(e) => Err(e).at(path),
    }
}

/// Suffix a damaged checkpoint is renamed to: kept for inspection, ignored by the loader.
pub(crate) const DAMAGED_FILE_SUFFIX: &str = "damaged";

/// Checkpoints are hints whose contents can be rebuilt from the log: a damaged one is moved
/// aside as `<name>.damaged` (replacing an older one), loudly, and the caller rebuilds.
pub(crate) fn set_aside_damaged(path: &Path, reason: &str) -> Result<()> {
    let aside = path.with_extension(DAMAGED_FILE_SUFFIX);
    tracing::warn!(
        path = %path.display(),
        moved_to = %aside.display(),
        reason,
        "damaged checkpoint set aside; rebuilding what it held from the log"
    );
    fs::rename(path, &aside).at(path)?;
    sync_parent_dir(path)
}

/// Makes creations, renames and removals of entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

fn sync_parent_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(read_bounded(&path, 100).unwrap().as_deref(), Some("second"));
        assert!(!path.with_extension(TEMP_FILE_SUFFIX).exists());
    }

    #[test]
    fn a_damaged_checkpoint_is_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        fs::write(&path, b"\x00junk").unwrap();
        set_aside_damaged(&path, "test").unwrap();
        assert!(!path.exists());
        assert_eq!(
            fs::read(dir.path().join("checkpoint.damaged")).unwrap(),
            b"\x00junk"
        );
    }

    #[test]
    fn missing_oversized_and_binary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(read_bounded(&path, 10).unwrap(), None);
        fs::write(&path, "0123456789AB").unwrap();
        assert!(matches!(
            read_bounded(&path, 10),
            Err(LogError::CorruptCheckpoint { .. })
        ));
        fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            read_bounded(&path, 10),
            Err(LogError::CorruptCheckpoint { .. })
        ));
    }
}
