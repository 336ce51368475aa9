//! `quorum.initialized`: proof, outside the Raft store, that this node's quorum exists.
//!
//! openraft bootstraps a quorum on any node whose store is pristine, and a damaged sled store
//! can open as an empty one (20 bytes of garbage over its data file did exactly that): the node
//! would start a new, empty quorum, report ready, and set aside every partition as a stray. So
//! the first start that sees the store initialized writes this small file next to
//! `meta.properties`, and every later start that finds the file but a pristine (or missing)
//! store refuses to run instead of bootstrapping. Kafka gets the same protection from its
//! `meta.properties` being written only by `kafka-storage format`; Shoal formats on first start,
//! so the two facts ("formatted" and "quorum initialized") need two files.

use std::path::{Path, PathBuf};

use crate::error::MetaError;
use crate::meta_properties::write_durably;

pub const QUORUM_MARKER_FILE: &str = "quorum.initialized";

/// Where the marker of the metadata directory `data_dir` lives.
pub fn marker_path(data_dir: &Path) -> PathBuf {
    data_dir.join(QUORUM_MARKER_FILE)
}

/// Whether this directory's quorum was initialized by an earlier start.
pub fn was_initialized(data_dir: &Path) -> Result<bool, MetaError> {
    let path = marker_path(data_dir);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(MetaError::Io { path, source }),
    }
}

/// Records that the quorum is initialized (idempotent; written once).
pub fn record_initialized(
    data_dir: &Path,
    cluster_id: &str,
    node_id: i32,
) -> Result<(), MetaError> {
    if was_initialized(data_dir)? {
        return Ok(());
    }
    let text = format!(
        "# Written by shoal once this node's metadata quorum was initialized; do not delete.\n\
         # While it exists, a missing or empty Raft store is damage, never a new cluster.\n\
         cluster.id={cluster_id}\nnode.id={node_id}\n"
    );
    write_durably(data_dir, QUORUM_MARKER_FILE, &text)
}

/// The decision at start-up, before anything is bootstrapped: a store that is pristine
/// although the quorum was initialized before is damage.
pub fn check_store(marker_exists: bool, store_initialized: bool) -> Result<(), &'static str> {
    match (marker_exists, store_initialized) {
        (true, false) => Err("it holds no Raft log and no vote"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pristine_store_after_initialization_is_damage() {
        // (marker exists, store initialized, refused)
        let table = [
            (false, false, false),
            (false, true, false),
            (true, true, false),
            (true, false, true),
        ];
        for (marker, store, refused) in table {
            assert_eq!(
                check_store(marker, store).is_err(),
                refused,
                "marker {marker} store {store}"
            );
        }
    }

    #[test]
    fn the_marker_is_written_once_and_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!was_initialized(dir.path()).expect("check"));
        record_initialized(dir.path(), "c", 1).expect("write");
        assert!(was_initialized(dir.path()).expect("check"));
        record_initialized(dir.path(), "c", 1).expect("idempotent");
    }
}
