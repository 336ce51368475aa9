//! The broker's log directories (`log.dirs`, Kafka's JBOD): which directory holds which
//! partition, and where a new replica goes.
//!
//! **Identity.** Each directory has a directory id (KIP-858): the first one, which also holds
//! the metadata (`meta/`), is known by the node's metadata directory id; every other one by
//! the `meta.properties` in its root (Kafka's file: cluster id, node id, directory id), written
//! when the directory is first used. A directory of another cluster or node is refused, loudly,
//! at start. The broker registers with every directory id, and the controller takes a broker
//! whose registration lacks one it had before out of every ISR (`directories_replaced` in
//! shoal-meta): a directory that is gone, or replaced by an empty disk, took its partitions'
//! data with it, and the broker cannot tell which partitions they were once they are recreated
//! elsewhere.
//!
//! **Placement.** A partition stays in the directory that holds it. A new replica goes to the
//! directory with the fewest partitions (Kafka's default policy), the lowest position on a tie.
//! A partition found in two directories is not opened: which copy is right is the operator's
//! call, never a guess.
//!
//! **Moves.** AlterReplicaLogDirs moves a replica to another directory (`replica_moves`);
//! opening the set finishes or undoes a move a crash interrupted, before any log is opened.
//!
//! **Failure.** An I/O error on a log (`is_directory_failure`; not a full disk) takes its whole
//! directory offline while the broker runs (`ReplicaManager::storage_error`), as Kafka's
//! log-dir failure handling does: its partitions are closed and reported offline, and are not
//! recreated elsewhere until a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use crate::disk_space::DiskSpace;
use crate::log_dirs;

/// Most directories in `log.dirs`.
pub const MAX_LOG_DIRS: usize = 32;

/// One log directory.
pub struct LogDir {
    pub path: PathBuf,
    pub directory_id: Uuid,
    pub disk_space: Arc<DiskSpace>,
}

/// Every log directory of the broker; the first holds the metadata.
pub struct LogDirSet {
    dirs: Vec<LogDir>,
}

impl LogDirSet {
    /// The first directory (`data_dir`, known by `meta_directory_id`) and the others, each
    /// created if missing and given (or checked against) its `meta.properties`. Blocking.
    pub fn open(
        data_dir: &Path,
        meta_directory_id: Uuid,
        others: &[PathBuf],
        cluster_id: &str,
        node_id: i32,
        min_free_bytes: u64,
    ) -> Result<LogDirSet, String> {
        if others.len() + 1 > MAX_LOG_DIRS {
            return Err(format!(
                "log.dirs names {} directories; at most {MAX_LOG_DIRS}",
                others.len() + 1
            ));
        }
        let mut dirs = vec![LogDir {
            path: data_dir.to_path_buf(),
            directory_id: meta_directory_id,
            disk_space: DiskSpace::open(data_dir, min_free_bytes),
        }];
        for path in others {
            std::fs::create_dir_all(path)
                .map_err(|e| format!("cannot create log directory {}: {e}", path.display()))?;
            let props =
                shoal_meta::meta_properties::load_or_create(path, node_id, Some(cluster_id))
                    .map_err(|e| format!("log directory {}: {e}", path.display()))?;
            if dirs.iter().any(|d| d.directory_id == props.directory_id) {
                return Err(format!(
                    "log directory {} has the directory id of another one (a copied directory?)",
                    path.display()
                ));
            }
            dirs.push(LogDir {
                path: path.clone(),
                directory_id: props.directory_id,
                disk_space: DiskSpace::open_without_reserve(path, min_free_bytes),
            });
        }
        let paths: Vec<&Path> = dirs.iter().map(|d| d.path.as_path()).collect();
        crate::replica_moves::interrupted::finish_interrupted_moves(&paths)?;
        Ok(LogDirSet { dirs })
    }

    /// One directory, for tests and single-directory callers.
    pub fn single(data_dir: &Path, directory_id: Uuid, disk_space: Arc<DiskSpace>) -> LogDirSet {
        LogDirSet {
            dirs: vec![LogDir {
                path: data_dir.to_path_buf(),
                directory_id,
                disk_space,
            }],
        }
    }

    pub fn dirs(&self) -> &[LogDir] {
        &self.dirs
    }

    pub fn get(&self, index: usize) -> Option<&LogDir> {
        self.dirs.get(index)
    }

    /// Every directory id, the first directory's first (what the broker registers with).
    pub fn directory_ids(&self) -> Vec<Uuid> {
        self.dirs.iter().map(|d| d.directory_id).collect()
    }

    /// Which directory holds `topic`-`partition` now (blocking: looks at the file system).
    pub fn locate(&self, topic: &str, partition: i32) -> Result<Option<usize>, String> {
        let holding: Vec<usize> = self
            .dirs
            .iter()
            .enumerate()
            .filter(|(_, d)| log_dirs::partition_dir(&d.path, topic, partition).is_dir())
            .map(|(i, _)| i)
            .collect();
        match holding.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            several => Err(format!(
                "{topic}-{partition} is in several log directories ({}); move or delete all but \
                 the right copy",
                several
                    .iter()
                    .map(|i| self.dirs[*i].path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// The directory a new replica goes to: the fewest partitions, the lowest position on a tie;
/// `None` when every directory failed. `hosted[i]` is how many partitions directory `i` holds,
/// `None` for a failed one.
pub fn place_new_replica(hosted: &[Option<usize>]) -> Option<usize> {
    hosted
        .iter()
        .enumerate()
        .filter_map(|(i, count)| count.map(|c| (c, i)))
        .min()
        .map(|(_, i)| i)
}

/// Whether a log error means the directory under the log failed (Kafka takes a log directory
/// offline on any I/O error). A full disk is not a failure here: appends are trimmed back and
/// refused until space returns (`disk_space`), and the directory stays in service.
pub fn is_directory_failure(error: &shoal_log::LogError) -> bool {
    match error {
        shoal_log::LogError::Io { source, .. } => !matches!(
            source.raw_os_error(),
            Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
                || code == rustix::io::Errno::DQUOT.raw_os_error()
        ),
        shoal_log::LogError::Offline { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_replica_goes_to_the_directory_with_the_fewest_partitions() {
        for (hosted, expected) in [
            (&[][..], None),
            (&[Some(0)][..], Some(0)),
            (&[Some(3), Some(1), Some(2)][..], Some(1)),
            (&[Some(2), Some(2), Some(2)][..], Some(0)),
            (&[Some(5), Some(0), Some(0)][..], Some(1)),
            // A failed directory takes nothing, however empty.
            (&[Some(5), None, Some(7)][..], Some(0)),
            (&[None, None][..], None),
        ] {
            assert_eq!(place_new_replica(hosted), expected, "{hosted:?}");
        }
    }

    #[test]
    fn which_log_errors_fail_a_directory() {
        let io = |code: i32| shoal_log::LogError::Io {
            path: PathBuf::from("/d/t-0/00.log"),
            source: std::io::Error::from_raw_os_error(code),
        };
        let errno = |e: rustix::io::Errno| e.raw_os_error();
        assert!(is_directory_failure(&io(errno(rustix::io::Errno::IO))));
        assert!(is_directory_failure(&io(errno(rustix::io::Errno::ROFS))));
        assert!(is_directory_failure(&io(errno(rustix::io::Errno::NOENT))));
        // A full disk only stops appends.
        assert!(!is_directory_failure(&io(errno(rustix::io::Errno::NOSPC))));
        assert!(!is_directory_failure(&io(errno(rustix::io::Errno::DQUOT))));
        assert!(is_directory_failure(&shoal_log::LogError::Offline {
            dir: PathBuf::from("/d/t-0"),
            reason: "swap failed".into(),
        }));
        assert!(!is_directory_failure(&shoal_log::LogError::InvalidRecord(
            "bad".into()
        )));
    }

    #[test]
    fn directories_have_their_own_ids_and_a_foreign_one_is_refused() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = root.path().join("a");
        let second = root.path().join("b");
        std::fs::create_dir_all(&first).unwrap_or_else(|e| panic!("{e}"));
        let meta_id = Uuid::from_u128(1);
        let open = |cluster: &str, node: i32| {
            LogDirSet::open(
                &first,
                meta_id,
                std::slice::from_ref(&second),
                cluster,
                node,
                0,
            )
        };
        let set = open("cluster-one", 1).unwrap_or_else(|e| panic!("{e}"));
        let ids = set.directory_ids();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], meta_id);
        // The second directory keeps its id across starts.
        let again = open("cluster-one", 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.directory_ids(), ids);
        // Another node's or another cluster's directory is refused.
        assert!(open("cluster-one", 2).is_err());
        assert!(open("cluster-two", 1).is_err());
        // A partition in both directories is not guessed at.
        std::fs::create_dir_all(first.join("t-0")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.locate("t", 0), Ok(Some(0)));
        assert_eq!(set.locate("t", 1), Ok(None));
        std::fs::create_dir_all(second.join("t-0")).unwrap_or_else(|e| panic!("{e}"));
        assert!(set.locate("t", 0).is_err());
    }
}
