//! Finishing, at start-up, the replica moves a crash or a stop interrupted.
//!
//! A move's copy (`<topic>-<p>.<id>-future` in the target directory) becomes the replica only
//! through its marker, [`COMPLETE_FILE`], written once the source is closed and the copy is
//! byte-identical and fsynced. From then on the source is never written again before the
//! marker is gone. So at start:
//! - a copy without the marker is incomplete: deleted (the source is intact);
//! - a copy with the marker is the replica: every other copy of the partition is deleted and
//!   the copy renamed into place, then the marker removed;
//! - a replica renamed into place with its marker still there wins the same way (the rename
//!   of its source aside may not have reached the disk);
//! - copies it cannot decide between (two winners, another topic id under the same name) are
//!   refused at start-up, loudly;
//! - directories set aside for deletion (`*-delete`) are deleted.
//!
//! The plan is a pure function ([`plan_recovery`]); [`finish_interrupted_moves`] runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::log_dirs;

/// The marker of a complete copy.
pub const COMPLETE_FILE: &str = "future.complete";

/// One copy of a partition found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub path: PathBuf,
    /// From its `partition.metadata`.
    pub topic_id: Option<Uuid>,
    /// It holds [`COMPLETE_FILE`].
    pub marked: bool,
}

/// What start-up finds for one partition name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `<topic>-<p>` directories.
    pub current: Vec<Copy>,
    /// Copies being made, with where each would go.
    pub futures: Vec<(Copy, PathBuf)>,
}

/// One step of the recovery, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Delete a directory tree (renamed aside first, so a crash leaves no half-deleted replica).
    Delete(PathBuf),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    RemoveMarker(PathBuf),
}

/// The steps that leave `found` with at most one replica and no copy. A complete copy (or a
/// replica moved into place whose marker is still there) wins over the other replicas of the
/// same topic id; anything it cannot tell apart (two winners, another topic id, no id) is
/// refused rather than guessed.
pub fn plan_recovery(partition: &str, found: &Found) -> Result<Vec<Step>, String> {
    let complete: Vec<&(Copy, PathBuf)> = found.futures.iter().filter(|(c, _)| c.marked).collect();
    let moved: Vec<&Copy> = found.current.iter().filter(|c| c.marked).collect();
    let refuse = |why: &str| {
        Err(format!(
            "{partition}: {why}; move or delete all but the right copy ({})",
            found
                .current
                .iter()
                .map(|c| &c.path)
                .chain(found.futures.iter().map(|(c, _)| &c.path))
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let winner: Option<&Copy> = match (complete.as_slice(), moved.as_slice()) {
        ([], []) => None,
        ([(copy, _)], []) => Some(copy),
        ([], [copy]) => Some(copy),
        _ => return refuse("several copies claim to be the replica"),
    };
    let mut steps = Vec::new();
    let Some(winner) = winner else {
        // Nothing was committed: the copies are incomplete.
        steps.extend(
            found
                .futures
                .iter()
                .map(|(c, _)| Step::Delete(c.path.clone())),
        );
        return Ok(steps);
    };
    let Some(winner_id) = winner.topic_id else {
        return refuse("the moved copy has no partition.metadata");
    };
    for current in found.current.iter().filter(|c| !c.marked) {
        if current.topic_id != Some(winner_id) {
            return refuse("a moved copy and a replica of another topic id share the name");
        }
        steps.push(Step::Delete(current.path.clone()));
    }
    for (future, _) in found.futures.iter().filter(|(c, _)| !c.marked) {
        steps.push(Step::Delete(future.path.clone()));
    }
    match complete.as_slice() {
        [(copy, destination)] => {
            steps.push(Step::Rename {
                from: copy.path.clone(),
                to: destination.clone(),
            });
            steps.push(Step::RemoveMarker(destination.clone()));
        }
        _ => steps.push(Step::RemoveMarker(winner.path.clone())),
    }
    Ok(steps)
}

/// Finishes or undoes every interrupted move in `dirs` and deletes what was set aside for
/// deletion. Blocking; run before any log is opened.
pub fn finish_interrupted_moves(dirs: &[&Path]) -> Result<(), String> {
    let mut by_partition: BTreeMap<(String, i32), Found> = BTreeMap::new();
    for root in dirs {
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot list log directory {}: {e}", root.display())),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", root.display()))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if log_dirs::is_delete_dir_name(&name) {
                tracing::info!(dir = %path.display(), "deleting a replica set aside for deletion");
                remove_tree(&path)?;
            } else if let Some((topic, partition)) = log_dirs::parse_future_dir_name(&name) {
                let destination = log_dirs::partition_dir(root, &topic, partition);
                by_partition
                    .entry((topic, partition))
                    .or_default()
                    .futures
                    .push((found_copy(path), destination));
            } else if let Some((topic, partition)) = log_dirs::parse_dir_name(&name) {
                by_partition
                    .entry((topic, partition))
                    .or_default()
                    .current
                    .push(found_copy(path));
            }
        }
    }
    for ((topic, partition), found) in by_partition {
        if found.futures.is_empty() && found.current.iter().all(|c| !c.marked) {
            continue;
        }
        let steps = plan_recovery(&format!("{topic}-{partition}"), &found)?;
        for step in steps {
            run(&step)?;
        }
    }
    Ok(())
}

fn found_copy(path: PathBuf) -> Copy {
    Copy {
        topic_id: log_dirs::read_partition_metadata(&path),
        marked: path.join(COMPLETE_FILE).exists(),
        path,
    }
}

fn run(step: &Step) -> Result<(), String> {
    match step {
        Step::Delete(dir) => {
            tracing::info!(dir = %dir.display(), "deleting a replica copy left by an interrupted move");
            let aside = log_dirs::rename_for_delete(dir, uuid::Uuid::new_v4())
                .map_err(|e| format!("cannot set aside {}: {e}", dir.display()))?;
            sync_parent(&aside)?;
            remove_tree(&aside)
        }
        Step::Rename { from, to } => {
            tracing::info!(from = %from.display(), to = %to.display(), "finishing an interrupted replica move");
            std::fs::rename(from, to).map_err(|e| {
                format!("cannot rename {} to {}: {e}", from.display(), to.display())
            })?;
            sync_parent(to)
        }
        Step::RemoveMarker(dir) => remove_marker(dir),
    }
}

/// Removes the marker from `dir` durably.
pub fn remove_marker(dir: &Path) -> Result<(), String> {
    let marker = dir.join(COMPLETE_FILE);
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot remove {}: {e}", marker.display())),
    }
    sync_dir(dir)
}

/// Writes the marker into `dir` durably.
pub fn write_marker(dir: &Path) -> Result<(), String> {
    let marker = dir.join(COMPLETE_FILE);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot fsync {}: {e}", dir.display()))
}

pub fn sync_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn remove_tree(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot delete {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn a_complete_copy_wins_and_an_incomplete_one_goes() {
        let id = Some(Uuid::from_u128(7));
        let other = Some(Uuid::from_u128(8));
        let copy = |path: &str, topic_id: Option<Uuid>, marked: bool| Copy {
            path: p(path),
            topic_id,
            marked,
        };
        let future = |marked: bool, topic_id: Option<Uuid>| {
            (copy("/b/t-0.f-future", topic_id, marked), p("/b/t-0"))
        };
        let into_place = || {
            vec![
                Step::Rename {
                    from: p("/b/t-0.f-future"),
                    to: p("/b/t-0"),
                },
                Step::RemoveMarker(p("/b/t-0")),
            ]
        };
        // (found, expected steps or an error)
        let cases: Vec<(Found, Result<Vec<Step>, ()>)> = vec![
            // Copy interrupted: the source stays.
            (
                Found {
                    current: vec![copy("/a/t-0", id, false)],
                    futures: vec![future(false, id)],
                },
                Ok(vec![Step::Delete(p("/b/t-0.f-future"))]),
            ),
            // Complete copy, source not yet set aside: the copy wins.
            (
                Found {
                    current: vec![copy("/a/t-0", id, false)],
                    futures: vec![future(true, id)],
                },
                Ok([vec![Step::Delete(p("/a/t-0"))], into_place()].concat()),
            ),
            // Source already set aside (swept as a -delete directory).
            (
                Found {
                    current: vec![],
                    futures: vec![future(true, id)],
                },
                Ok(into_place()),
            ),
            // Renamed into place, marker not yet removed; the source's rename aside was lost.
            (
                Found {
                    current: vec![copy("/b/t-0", id, true), copy("/a/t-0", id, false)],
                    futures: vec![],
                },
                Ok(vec![
                    Step::Delete(p("/a/t-0")),
                    Step::RemoveMarker(p("/b/t-0")),
                ]),
            ),
            // Nothing to do for a replica alone.
            (
                Found {
                    current: vec![copy("/a/t-0", id, false)],
                    futures: vec![],
                },
                Ok(vec![]),
            ),
            // Two winners: refused.
            (
                Found {
                    current: vec![copy("/c/t-0", id, true)],
                    futures: vec![future(true, id)],
                },
                Err(()),
            ),
            // Another topic of the same name: refused, never deleted.
            (
                Found {
                    current: vec![copy("/a/t-0", other, false)],
                    futures: vec![future(true, id)],
                },
                Err(()),
            ),
            // A moved copy without an id: refused.
            (
                Found {
                    current: vec![copy("/a/t-0", id, false)],
                    futures: vec![future(true, None)],
                },
                Err(()),
            ),
        ];
        for (found, expected) in cases {
            let got = plan_recovery("t-0", &found).map_err(|_| ());
            assert_eq!(got, expected, "{found:?}");
        }
    }

    #[test]
    fn start_up_finishes_a_complete_move_and_drops_an_incomplete_one() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let make = |dir: &Path, content: &str| {
            log_dirs::write_partition_metadata(dir, Uuid::from_u128(7))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(dir.join("00000000000000000000.log"), content)
                .unwrap_or_else(|e| panic!("{e}"));
        };
        // t-0: complete copy in b; t-1: incomplete copy in b; a leftover -delete directory.
        make(&log_dirs::partition_dir(&a, "t", 0), "old");
        let done = log_dirs::future_dir(&b, "t", 0);
        make(&done, "new");
        write_marker(&done).unwrap_or_else(|e| panic!("{e}"));
        make(&log_dirs::partition_dir(&a, "t", 1), "kept");
        make(&log_dirs::future_dir(&b, "t", 1), "partial");
        let aside = log_dirs::rename_for_delete(
            &{
                let d = log_dirs::partition_dir(&a, "u", 0);
                make(&d, "gone");
                d
            },
            uuid::Uuid::new_v4(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        finish_interrupted_moves(&[&a, &b]).unwrap_or_else(|e| panic!("{e}"));
        let names = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(|e| {
                    e.unwrap_or_else(|e| panic!("{e}"))
                        .file_name()
                        .to_string_lossy()
                        .to_string()
                })
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&a), vec!["t-1"]);
        assert_eq!(names(&b), vec!["t-0"]);
        assert!(!aside.exists());
        let read = |dir: PathBuf| {
            std::fs::read_to_string(dir.join("00000000000000000000.log"))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(read(b.join("t-0")), "new");
        assert_eq!(read(a.join("t-1")), "kept");
        assert!(!b.join("t-0").join(COMPLETE_FILE).exists());
        // Nothing left to do the second time.
        finish_interrupted_moves(&[&a, &b]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(&b), vec!["t-0"]);
    }
}
