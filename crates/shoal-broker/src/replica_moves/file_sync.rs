//! Copying a partition directory file by file while its log keeps serving, then once more
//! with the log closed, so the copy ends up byte-identical to what the log left on disk.
//!
//! A pass copies every file whose `stat` (length, modification and change times, inode)
//! differs from the one taken just before its last copy, and removes from the copy the files
//! the source no longer has (retention, compaction). While the log serves, the active
//! segment is skipped: it changes with every append, and the mover rolls the log before a
//! pass so that nearly everything is in sealed segments, which only retention (the file
//! goes), compaction (a new inode) or a follower's truncation (the segment becomes the active
//! one again) change. The final pass, with the log closed, copies the last segment and every
//! small file (checkpoints, producer snapshots, the clean-shutdown marker) whatever their
//! `stat` says, so a change within one timestamp tick cannot be missed where it matters.
//!
//! Each copied file is fsynced before the pass ends: the pass that completes the copy then
//! has only its own files and the directory to sync before the copy is declared complete.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use shoal_log::cleaner_throttle::IoThrottle;

/// Most bytes copied per call, between checks of the cancel flag and the throttle.
pub const COPY_CHUNK_BYTES: usize = 1024 * 1024;
/// Fewest bytes per call, however low the throttle.
pub const MIN_COPY_CHUNK_BYTES: usize = 4096;

/// What a file looked like: a pass recopies a file whose `stat` changed since its last copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub len_bytes: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
}

impl FileStat {
    fn of(meta: &fs::Metadata) -> FileStat {
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStat {
            len_bytes: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
        }
    }
}

/// Whether the log serves while the pass runs, or is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    WhileServing,
    Final,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassPlan {
    pub copy: Vec<String>,
    pub remove: Vec<String>,
}

/// A segment file's base offset (`<base>.log`, `.index`, `.timeindex`, `.txnindex`).
pub fn segment_base_offset(name: &str) -> Option<i64> {
    let (base, extension) = name.split_once('.')?;
    if !matches!(extension, "log" | "index" | "timeindex" | "txnindex")
        || base.is_empty()
        || !base.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    base.parse().ok()
}

/// The base offset of the active segment: the last `.log` file.
pub fn active_base_offset<'a>(names: impl Iterator<Item = &'a String>) -> Option<i64> {
    names
        .filter(|n| n.ends_with(".log"))
        .filter_map(|n| segment_base_offset(n))
        .max()
}

/// One pass, from the source as it is now (`source`) and what was copied (`copied`, with the
/// `stat` each file had just before its copy).
pub fn plan_pass(
    source: &BTreeMap<String, FileStat>,
    copied: &BTreeMap<String, FileStat>,
    kind: PassKind,
) -> PassPlan {
    let active = active_base_offset(source.keys());
    let mut plan = PassPlan::default();
    for (name, stat) in source {
        let base = segment_base_offset(name);
        let in_active = base.is_some() && base == active;
        let changed = copied.get(name) != Some(stat);
        let copy = match kind {
            PassKind::WhileServing => changed && !in_active,
            // The last segment and the small files, always; sealed segments when changed.
            PassKind::Final => changed || in_active || base.is_none(),
        };
        if copy {
            plan.copy.push(name.clone());
        }
    }
    plan.remove = copied
        .keys()
        .filter(|name| !source.contains_key(*name))
        .cloned()
        .collect();
    plan
}

/// The regular files of `dir` with their `stat`.
pub fn list_files(dir: &Path) -> std::io::Result<BTreeMap<String, FileStat>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Deleted since the listing (retention, compaction): not there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        // A move's marker is never part of a copy: it would make a later half-made copy look
        // complete.
        if entry.file_name() == super::interrupted::COMPLETE_FILE {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            files.insert(name.to_string(), FileStat::of(&meta));
        }
    }
    Ok(files)
}

/// How far a copy is, for DescribeLogDirs: updated after every file.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes the copy holds.
    pub bytes: AtomicU64,
    /// Every offset below is in the copy (the base offset of the first segment not copied).
    pub offset: AtomicI64,
}

/// A copy in progress: the target directory and what it holds.
pub struct DirCopy<'a> {
    pub source: &'a Path,
    pub target: &'a Path,
    pub copied: BTreeMap<String, FileStat>,
    pub cancel: &'a AtomicBool,
    pub progress: &'a Progress,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOutcome {
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// The source's active segment when the pass began: every offset below it is copied.
    pub active_base_offset: Option<i64>,
}

impl DirCopy<'_> {
    /// Runs one pass (see [`plan_pass`]); each copied file is fsynced. A file that vanished
    /// from the source mid-pass (retention, compaction) is left for the next pass to remove.
    pub fn pass(
        &mut self,
        kind: PassKind,
        throttle: &mut IoThrottle,
    ) -> std::io::Result<PassOutcome> {
        let source = list_files(self.source)?;
        let plan = plan_pass(&source, &self.copied, kind);
        let mut outcome = PassOutcome {
            active_base_offset: active_base_offset(source.keys()),
            ..PassOutcome::default()
        };
        for name in &plan.remove {
            match fs::remove_file(self.target.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.copied.remove(name);
        }
        for name in &plan.copy {
            let Some(stat) = source.get(name) else {
                continue;
            };
            match copy_file(
                &self.source.join(name),
                &self.target.join(name),
                self.cancel,
                throttle,
            ) {
                Ok(bytes) => {
                    outcome.files_copied += 1;
                    outcome.bytes_copied += bytes;
                    self.copied.insert(name.clone(), *stat);
                    self.progress
                        .bytes
                        .store(self.size_bytes(), Ordering::Relaxed);
                    // A segment's log copied: what follows it is the next thing missing.
                    if let Some(base) = segment_base_offset(name).filter(|_| name.ends_with(".log"))
                        && let Some(next) = source
                            .keys()
                            .filter(|n| n.ends_with(".log"))
                            .filter_map(|n| segment_base_offset(n))
                            .find(|b| *b > base)
                    {
                        self.progress.offset.fetch_max(next, Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && kind != PassKind::Final => {
                    // Gone meanwhile (retention, compaction): so is its copy, if an earlier
                    // pass made one.
                    match fs::remove_file(self.target.join(name)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                    self.copied.remove(name);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(outcome)
    }

    /// Bytes the copy holds.
    pub fn size_bytes(&self) -> u64 {
        self.copied.values().map(|s| s.len_bytes).sum()
    }
}

/// Copies `from` over `to` (in the kernel where it can), fsyncs it, and returns the bytes
/// copied. Stops with `Interrupted` when `cancel` is set.
pub fn copy_file(
    from: &Path,
    to: &Path,
    cancel: &AtomicBool,
    throttle: &mut IoThrottle,
) -> std::io::Result<u64> {
    let mut input = File::open(from)?;
    let mut output = File::create(to)?;
    let mut copied: u64 = 0;
    let mut in_kernel = true;
    // Small enough that the throttle's sleep after each chunk stays below its longest one.
    let chunk_bytes = throttle
        .bytes_per_second()
        .map_or(COPY_CHUNK_BYTES, |rate| {
            usize::try_from(rate / 4)
                .unwrap_or(COPY_CHUNK_BYTES)
                .clamp(MIN_COPY_CHUNK_BYTES, COPY_CHUNK_BYTES)
        });
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        if cancel.load(Ordering::Acquire) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the move was cancelled",
            ));
        }
        let n = if in_kernel {
            match rustix::fs::copy_file_range(&input, None, &output, None, chunk_bytes) {
                Ok(n) => n,
                // Another file system, or one without it: copy through user space.
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP,
                ) if copied == 0 => {
                    in_kernel = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            buffer.resize(chunk_bytes, 0);
            let n = input.read(&mut buffer)?;
            output.write_all(&buffer[..n])?;
            n
        };
        if n == 0 {
            break;
        }
        copied += n as u64;
        throttle.account(n);
    }
    output.sync_all()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(len_bytes: u64, mtime_ns: i128) -> FileStat {
        FileStat {
            len_bytes,
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 1,
        }
    }

    fn files(entries: &[(&str, FileStat)]) -> BTreeMap<String, FileStat> {
        entries
            .iter()
            .map(|(name, stat)| (name.to_string(), *stat))
            .collect()
    }

    #[test]
    fn segment_files_are_recognised_by_name() {
        for (name, base) in [
            ("00000000000000000000.log", Some(0)),
            ("00000000000000000042.index", Some(42)),
            ("00000000000000000042.timeindex", Some(42)),
            ("00000000000000000042.txnindex", Some(42)),
            ("00000000000000000042.snapshot", None),
            ("00000000000000000042.log.swap", None),
            ("partition.metadata", None),
            ("clean-shutdown", None),
            (".log", None),
        ] {
            assert_eq!(segment_base_offset(name), base, "{name}");
        }
    }

    #[test]
    fn passes_copy_what_changed_and_the_final_one_the_tail_too() {
        let a = stat(100, 1);
        let source = files(&[
            ("00000000000000000000.log", a),
            ("00000000000000000000.index", a),
            ("00000000000000000010.log", stat(50, 2)),
            ("00000000000000000010.index", stat(8, 2)),
            ("partition.checkpoint", stat(30, 3)),
            ("00000000000000000010.snapshot", stat(20, 3)),
        ]);
        // (copied so far, kind, expected copies, expected removals)
        type Case = (
            BTreeMap<String, FileStat>,
            PassKind,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            // First pass while serving: everything but the active segment.
            (
                BTreeMap::new(),
                PassKind::WhileServing,
                vec![
                    "00000000000000000000.index",
                    "00000000000000000000.log",
                    "00000000000000000010.snapshot",
                    "partition.checkpoint",
                ],
                vec![],
            ),
            // Nothing changed: nothing to do while serving.
            (
                files(&[
                    ("00000000000000000000.log", a),
                    ("00000000000000000000.index", a),
                    ("partition.checkpoint", stat(30, 3)),
                    ("00000000000000000010.snapshot", stat(20, 3)),
                ]),
                PassKind::WhileServing,
                vec![],
                vec![],
            ),
            // A sealed segment rewritten (compaction: new inode) and a file that is gone.
            (
                files(&[
                    ("00000000000000000000.log", FileStat { inode: 9, ..a }),
                    ("00000000000000000000.index", a),
                    ("00000000000000000005.log", a),
                    ("partition.checkpoint", stat(30, 3)),
                    ("00000000000000000010.snapshot", stat(20, 3)),
                ]),
                PassKind::WhileServing,
                vec!["00000000000000000000.log"],
                vec!["00000000000000000005.log"],
            ),
            // Final: unchanged sealed segments stay; the last segment and small files always.
            (
                files(&[
                    ("00000000000000000000.log", a),
                    ("00000000000000000000.index", a),
                    ("00000000000000000010.log", stat(50, 2)),
                    ("00000000000000000010.index", stat(8, 2)),
                    ("partition.checkpoint", stat(30, 3)),
                    ("00000000000000000010.snapshot", stat(20, 3)),
                ]),
                PassKind::Final,
                vec![
                    "00000000000000000010.index",
                    "00000000000000000010.log",
                    "00000000000000000010.snapshot",
                    "partition.checkpoint",
                ],
                vec![],
            ),
        ];
        for (copied, kind, copy, remove) in cases {
            let plan = plan_pass(&source, &copied, kind);
            assert_eq!(plan.copy, copy, "{kind:?} from {copied:?}");
            assert_eq!(plan.remove, remove, "{kind:?} from {copied:?}");
        }
    }

    #[test]
    fn copies_files_and_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let from = dir.path().join("a");
        let to = dir.path().join("b");
        let data: Vec<u8> = (0..3 * COPY_CHUNK_BYTES + 17).map(|i| i as u8).collect();
        fs::write(&from, &data).unwrap_or_else(|e| panic!("{e}"));
        fs::write(&to, b"older, longer content that must not survive")
            .unwrap_or_else(|e| panic!("{e}"));
        let cancel = AtomicBool::new(false);
        let mut throttle = IoThrottle::new(None);
        let copied =
            copy_file(&from, &to, &cancel, &mut throttle).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(copied, data.len() as u64);
        assert_eq!(fs::read(&to).unwrap_or_else(|e| panic!("{e}")), data);
        cancel.store(true, Ordering::Release);
        let error = copy_file(&from, &to, &cancel, &mut throttle).err();
        assert_eq!(
            error.map(|e| e.kind()),
            Some(std::io::ErrorKind::Interrupted)
        );
    }

    #[test]
    fn a_pass_mirrors_the_source_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (source, target) = (dir.path().join("s"), dir.path().join("t"));
        fs::create_dir_all(&source).unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, data: &[u8]| {
            fs::write(source.join(name), data).unwrap_or_else(|e| panic!("{e}"))
        };
        write("00000000000000000000.log", b"sealed");
        write("00000000000000000006.log", b"active");
        write("partition.metadata", b"id");
        // A marker left in a replica is never copied (a later half-made copy would look
        // complete).
        write(super::super::interrupted::COMPLETE_FILE, b"");
        let cancel = AtomicBool::new(false);
        let progress = Progress::default();
        let mut copy = DirCopy {
            source: &source,
            target: &target,
            copied: BTreeMap::new(),
            cancel: &cancel,
            progress: &progress,
        };
        let mut throttle = IoThrottle::new(None);
        let first = copy
            .pass(PassKind::WhileServing, &mut throttle)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.files_copied, 2);
        assert!(!target.join("00000000000000000006.log").exists());
        assert_eq!(progress.offset.load(Ordering::Relaxed), 6);
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 6 + 2);
        fs::remove_file(source.join("00000000000000000000.log")).unwrap_or_else(|e| panic!("{e}"));
        write("00000000000000000006.log", b"active, grown");
        let last = copy
            .pass(PassKind::Final, &mut throttle)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last.files_copied, 2);
        let mut names: Vec<String> = list_files(&target)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_keys()
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["00000000000000000006.log", "partition.metadata"]
        );
        assert_eq!(
            fs::read(target.join("00000000000000000006.log")).unwrap_or_else(|e| panic!("{e}")),
            b"active, grown"
        );
        assert_eq!(copy.size_bytes(), 13 + 2);
    }
}
