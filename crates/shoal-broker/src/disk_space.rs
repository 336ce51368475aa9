//! Free space in the log directory, watched so that a full disk costs writes, never the node.
//!
//! An append that hits ENOSPC is trimmed back and refused, so a full disk loses nothing; but a
//! node whose disk is full could not even start, because the metadata store (sled) must write
//! to open, and registering with the controller appends to it. So:
//! - appends (produce and replication) are refused with KAFKA_STORAGE_ERROR while free space is
//!   below `log.dir.min.free.bytes`, which keeps headroom for metadata, checkpoints and
//!   producer snapshots; reads go on;
//! - a reserve file (`meta/space.reserve`, [`RESERVED_SPACE_BYTES`]) keeps room for the case
//!   where something else filled the disk: a start that finds less than the minimum free
//!   releases it, so the metadata store can open; appends then need the reserve's size on top
//!   of the minimum (the released space is the metadata's), and the reserve is taken again once
//!   space has returned.
//!
//! Free space is read with statvfs every [`DISK_SPACE_CHECK_INTERVAL_MS`] on a blocking thread,
//! and every append counts its bytes against the last reading in between; the decisions are
//! pure functions below.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The reserve file, in the metadata directory of the log directory.
pub const RESERVE_FILE: &str = "space.reserve";
/// Room the reserve holds back for the metadata store to start on a full disk.
pub const RESERVED_SPACE_BYTES: u64 = 16 << 20;
/// How often free space is read.
pub const DISK_SPACE_CHECK_INTERVAL_MS: u64 = 1_000;

/// Appends go on while at least `min_free_bytes` are free, plus the reserve's size while the
/// reserve is not held: space given back for the metadata store is never the logs' to fill.
pub fn appends_allowed(free_bytes: u64, min_free_bytes: u64, reserve_held: bool) -> bool {
    let needed = if reserve_held {
        min_free_bytes
    } else {
        min_free_bytes.saturating_add(RESERVED_SPACE_BYTES)
    };
    free_bytes >= needed
}

/// What to do with the reserve file at a reading of free space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveAction {
    Keep,
    /// At start-up, free space is short: give the reserve back so the metadata store opens.
    Release,
    /// Space has returned (with margin, so it does not flap): hold the reserve again.
    Take,
}

/// The reserve is released only when a node starts short of space (while it runs, the
/// minimum free keeps the metadata store's headroom), and taken again with margin.
pub fn reserve_action(
    starting: bool,
    reserve_held: bool,
    free_bytes: u64,
    min_free_bytes: u64,
) -> ReserveAction {
    if starting && reserve_held && free_bytes < min_free_bytes {
        ReserveAction::Release
    } else if !reserve_held
        && free_bytes >= min_free_bytes.saturating_add(RESERVED_SPACE_BYTES.saturating_mul(2))
    {
        ReserveAction::Take
    } else {
        ReserveAction::Keep
    }
}

/// The log directory's free space, as last read.
pub struct DiskSpace {
    data_dir: PathBuf,
    /// The reserve file, in the log directory that holds the metadata (`meta/`); `None` for
    /// the other log directories of a JBOD broker (nothing there must start on a full disk).
    reserve: Option<PathBuf>,
    min_free_bytes: u64,
    free_bytes: AtomicU64,
    reserve_held: AtomicBool,
    low: AtomicBool,
}

impl DiskSpace {
    /// Reads free space now and acts on the reserve (at start-up this runs before the metadata
    /// store opens, see the module docs).
    pub fn open(data_dir: &Path, min_free_bytes: u64) -> Arc<DiskSpace> {
        Self::open_with(
            data_dir,
            Some(data_dir.join("meta").join(RESERVE_FILE)),
            min_free_bytes,
        )
    }

    /// A log directory other than the first (`log.dirs`): watched the same way, without a
    /// reserve.
    pub fn open_without_reserve(dir: &Path, min_free_bytes: u64) -> Arc<DiskSpace> {
        Self::open_with(dir, None, min_free_bytes)
    }

    fn open_with(data_dir: &Path, reserve: Option<PathBuf>, min_free_bytes: u64) -> Arc<DiskSpace> {
        let space = Arc::new(DiskSpace {
            data_dir: data_dir.to_path_buf(),
            reserve,
            min_free_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            reserve_held: AtomicBool::new(false),
            low: AtomicBool::new(false),
        });
        space.check(true);
        space
    }

    /// Whether appends may go on now.
    pub fn appends_allowed(&self) -> bool {
        appends_allowed(
            self.free_bytes.load(Ordering::Relaxed),
            self.min_free_bytes,
            self.reserve_held.load(Ordering::Relaxed),
        )
    }

    /// Counts `bytes` just written against the last reading, so a burst of appends between two
    /// readings cannot run past the minimum.
    pub fn note_written(&self, bytes: u64) {
        let _ = self
            .free_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
                Some(free.saturating_sub(bytes))
            });
    }

    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.data_dir
    }

    /// Reads free space, acts on the reserve, and logs when appends stop or resume (blocking).
    pub fn refresh(&self) {
        self.check(false);
    }

    fn check(&self, starting: bool) {
        let Some(mut free) = read_free_bytes(&self.data_dir) else {
            return;
        };
        let Some(reserve) = self.reserve.clone() else {
            // No reserve here: appends need only the minimum.
            self.record(free, true);
            return;
        };
        match reserve_action(starting, reserve.exists(), free, self.min_free_bytes) {
            ReserveAction::Keep => {}
            ReserveAction::Release => match std::fs::remove_file(&reserve) {
                Ok(()) => {
                    tracing::warn!(path = %reserve.display(), free_bytes = free, reserved_bytes = RESERVED_SPACE_BYTES,
                        "log directory nearly full: released the space reserve so metadata can still be written");
                    free = read_free_bytes(&self.data_dir).unwrap_or(free);
                }
                Err(error) => {
                    tracing::warn!(path = %reserve.display(), %error, "cannot release the space reserve")
                }
            },
            ReserveAction::Take => {
                if let Err(error) = take_reserve(&reserve) {
                    tracing::debug!(path = %reserve.display(), %error, "cannot take the space reserve yet");
                    let _ = std::fs::remove_file(&reserve);
                }
                free = read_free_bytes(&self.data_dir).unwrap_or(free);
            }
        }
        self.record(free, reserve.exists());
    }

    /// Stores a reading and logs when appends stop or resume.
    fn record(&self, free: u64, held: bool) {
        self.reserve_held.store(held, Ordering::Relaxed);
        self.free_bytes.store(free, Ordering::Relaxed);
        shoal_metrics::set_log_dir_free_bytes(&self.data_dir.to_string_lossy(), free);
        let low = !appends_allowed(free, self.min_free_bytes, held);
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(dir = %self.data_dir.display(), free_bytes = free, min_free_bytes = self.min_free_bytes,
                    "log directory below log.dir.min.free.bytes: refusing appends (KAFKA_STORAGE_ERROR) until space returns; reads go on");
            } else {
                tracing::info!(dir = %self.data_dir.display(), free_bytes = free, "log directory has space again: appends resume");
            }
        }
    }

    /// Refreshes every [`DISK_SPACE_CHECK_INTERVAL_MS`] (the broker aborts it at shutdown).
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(DISK_SPACE_CHECK_INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let space = Arc::clone(&self);
            if tokio::task::spawn_blocking(move || space.refresh())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
fn read_free_bytes(dir: &Path) -> Option<u64> {
    match rustix::fs::statvfs(dir) {
        Ok(st) => Some(st.f_bavail.saturating_mul(st.f_frsize)),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot read the log directory's free space");
            None
        }
    }
}

/// Allocates the reserve for real (a sparse file would hold nothing back).
fn take_reserve(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = RESERVED_SPACE_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn appends_stop_below_the_minimum_and_never_eat_a_released_reserve() {
        let min = 64 * MIB;
        // (free, reserve held, allowed)
        let table = [
            (100 * MIB, true, true),
            (min, true, true),
            (min - 1, true, false),
            (min, false, false),
            (min + RESERVED_SPACE_BYTES, false, true),
            (0, true, false),
        ];
        for (free, held, allowed) in table {
            assert_eq!(
                appends_allowed(free, min, held),
                allowed,
                "free {free} held {held}"
            );
        }
        assert!(appends_allowed(0, 0, true));
    }

    #[test]
    fn the_reserve_is_released_only_at_start_and_taken_back_with_margin() {
        let min = 64 * MIB;
        // (starting, held, free, expected)
        let table = [
            (true, true, 10 * MIB, ReserveAction::Release),
            (false, true, 10 * MIB, ReserveAction::Keep),
            (true, true, min, ReserveAction::Keep),
            (false, false, min, ReserveAction::Keep),
            (
                false,
                false,
                min + RESERVED_SPACE_BYTES,
                ReserveAction::Keep,
            ),
            (
                false,
                false,
                min + 2 * RESERVED_SPACE_BYTES,
                ReserveAction::Take,
            ),
            (
                true,
                false,
                min + 2 * RESERVED_SPACE_BYTES,
                ReserveAction::Take,
            ),
            (false, true, 10 * min, ReserveAction::Keep),
        ];
        for (starting, held, free, expected) in table {
            assert_eq!(
                reserve_action(starting, held, free, min),
                expected,
                "starting {starting} held {held} free {free}"
            );
        }
    }

    #[test]
    fn the_reserve_is_a_real_file_taken_and_released() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // With no minimum it is taken, for real.
        let space = DiskSpace::open(dir.path(), 0);
        assert!(space.appends_allowed());
        let reserve = dir.path().join("meta").join(RESERVE_FILE);
        let size = std::fs::metadata(&reserve).map(|m| m.len()).unwrap_or(0);
        assert_eq!(size, RESERVED_SPACE_BYTES);
        // A minimum this large is never met: a running node keeps the reserve ...
        let short = DiskSpace {
            data_dir: dir.path().to_path_buf(),
            reserve: Some(reserve.clone()),
            min_free_bytes: u64::MAX,
            free_bytes: AtomicU64::new(0),
            reserve_held: AtomicBool::new(true),
            low: AtomicBool::new(false),
        };
        short.refresh();
        assert!(reserve.exists());
        assert!(!short.appends_allowed());
        // ... and a starting one gives it back.
        let space = DiskSpace::open(dir.path(), u64::MAX);
        assert!(!reserve.exists());
        assert!(!space.appends_allowed());
    }

    #[test]
    fn writes_count_against_the_last_reading() {
        let space = DiskSpace {
            data_dir: PathBuf::from("/nonexistent"),
            reserve: None,
            min_free_bytes: 10,
            free_bytes: AtomicU64::new(25),
            reserve_held: AtomicBool::new(true),
            low: AtomicBool::new(false),
        };
        assert!(space.appends_allowed());
        space.note_written(15);
        assert!(space.appends_allowed());
        space.note_written(1);
        assert!(!space.appends_allowed());
        space.note_written(u64::MAX);
        assert_eq!(space.free_bytes(), 0);
    }
}
