//! Finishing, at start-up, the replica moves a crash or a stop interrupted.
//!
//! A move's copy (`<topic>-<p>.<id>-future` in the target directory) becomes the replica only
//! through its marker, [`COMPLETE_FILE`], written once the source is closed and the copy is
//! byte-identical and fsynced. From then on the source is never written again before the
//! marker is gone. So at start:
//! - a copy without the marker is incomplete: deleted (the source is intact);
//! - a copy with the marker is the replica: every other copy of the partition is deleted and
//!   the copy renamed into place, then the marker removed;
//! - a partition directory that still holds the marker was renamed into place and only the
//!   marker's removal was lost: the marker goes;
//! - two complete copies cannot be decided between: start-up is refused, loudly;
//! - directories set aside for deletion (`*-delete`) are deleted.
//!
//! The plan is a pure function ([`plan_recovery`]); [`finish_interrupted_moves`] runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::log_dirs;

/// The marker of a complete copy.
pub const COMPLETE_FILE: &str = "future.complete";

/// What start-up finds for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `<topic>-<p>` directories, with whether each holds the marker.
    pub current: Vec<(PathBuf, bool)>,
    /// Copies: (their directory, where they would go, whether complete).
    pub futures: Vec<(PathBuf, PathBuf, bool)>,
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

/// The steps that leave `found` with at most one replica and no copy.
pub fn plan_recovery(partition: &str, found: &Found) -> Result<Vec<Step>, String> {
    let complete: Vec<&(PathBuf, PathBuf, bool)> =
        found.futures.iter().filter(|(_, _, c)| *c).collect();
    let mut steps = Vec::new();
    match complete.as_slice() {
        [] => {
            for (future, _, _) in &found.futures {
                steps.push(Step::Delete(future.clone()));
            }
            for (current, marked) in &found.current {
                if *marked {
                    steps.push(Step::RemoveMarker(current.clone()));
                }
            }
        }
        [(winner, destination, _)] => {
            if found.current.iter().any(|(_, marked)| *marked) {
                return Err(format!(
                    "{partition}: a completed copy {} and a moved replica both claim to be the \
                     replica; move or delete all but the right one",
                    winner.display()
                ));
            }
            for (current, _) in &found.current {
                steps.push(Step::Delete(current.clone()));
            }
            for (future, _, complete) in &found.futures {
                if !complete {
                    steps.push(Step::Delete(future.clone()));
                }
            }
            steps.push(Step::Rename {
                from: winner.clone(),
                to: destination.clone(),
            });
            steps.push(Step::RemoveMarker(destination.clone()));
        }
        several => {
            return Err(format!(
                "{partition} has {} completed copies ({}); move or delete all but the right one",
                several.len(),
                several
                    .iter()
                    .map(|(p, _, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
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
                let complete = path.join(COMPLETE_FILE).exists();
                let destination = log_dirs::partition_dir(root, &topic, partition);
                by_partition
                    .entry((topic, partition))
                    .or_default()
                    .futures
                    .push((path, destination, complete));
            } else if let Some((topic, partition)) = log_dirs::parse_dir_name(&name) {
                let marked = path.join(COMPLETE_FILE).exists();
                by_partition
                    .entry((topic, partition))
                    .or_default()
                    .current
                    .push((path, marked));
            }
        }
    }
    for ((topic, partition), found) in by_partition {
        if found.futures.is_empty() && found.current.iter().all(|(_, marked)| !marked) {
            continue;
        }
        let steps = plan_recovery(&format!("{topic}-{partition}"), &found)?;
        for step in steps {
            run(&step)?;
        }
    }
    Ok(())
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
        let future = (p("/b/t-0.f-future"), p("/b/t-0"));
        // (found, expected steps or an error)
        let cases: Vec<(Found, Result<Vec<Step>, ()>)> = vec![
            // Copy interrupted: the source stays.
            (
                Found {
                    current: vec![(p("/a/t-0"), false)],
                    futures: vec![(future.0.clone(), future.1.clone(), false)],
                },
                Ok(vec![Step::Delete(future.0.clone())]),
            ),
            // Complete copy, source not yet set aside: the copy wins.
            (
                Found {
                    current: vec![(p("/a/t-0"), false)],
                    futures: vec![(future.0.clone(), future.1.clone(), true)],
                },
                Ok(vec![
                    Step::Delete(p("/a/t-0")),
                    Step::Rename {
                        from: future.0.clone(),
                        to: future.1.clone(),
                    },
                    Step::RemoveMarker(future.1.clone()),
                ]),
            ),
            // Source already set aside (swept as a -delete directory).
            (
                Found {
                    current: vec![],
                    futures: vec![(future.0.clone(), future.1.clone(), true)],
                },
                Ok(vec![
                    Step::Rename {
                        from: future.0.clone(),
                        to: future.1.clone(),
                    },
                    Step::RemoveMarker(future.1.clone()),
                ]),
            ),
            // Renamed into place, marker not yet removed.
            (
                Found {
                    current: vec![(p("/b/t-0"), true)],
                    futures: vec![],
                },
                Ok(vec![Step::RemoveMarker(p("/b/t-0"))]),
            ),
            // Two complete copies: refused.
            (
                Found {
                    current: vec![(p("/a/t-0"), false)],
                    futures: vec![
                        (future.0.clone(), future.1.clone(), true),
                        (p("/c/t-0.g-future"), p("/c/t-0"), true),
                    ],
                },
                Err(()),
            ),
            // A complete copy and a replica still marked as moved: refused.
            (
                Found {
                    current: vec![(p("/c/t-0"), true)],
                    futures: vec![(future.0.clone(), future.1.clone(), true)],
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
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
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
