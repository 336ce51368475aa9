//! Partition directories on disk: naming, the topic id stamp, and stray detection.
//!
//! A directory is named `<topic>-<partition>` as in Kafka, so operators' tools and habits work.
//! Names alone cannot tell a topic from a deleted-and-recreated one of the same name, so each
//! directory carries `partition.metadata` with the topic id (Kafka's KIP-516 file). A directory
//! whose id the metadata no longer knows is a stray: it is renamed `*-stray`, never deleted
//! outright, so a metadata bug cannot destroy data (Kafka 3.7+ does the same).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
const DELETE_SUFFIX: &str = "-delete";
const STRAY_SUFFIX: &str = "-stray";
/// A copy being made in another log directory (AlterReplicaLogDirs), Kafka's suffix.
const FUTURE_SUFFIX: &str = "-future";

/// A partition directory found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDir {
    pub path: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub topic_id: Option<Uuid>,
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Splits `<topic>-<partition>`; topic names may themselves contain '-'.
pub fn parse_dir_name(name: &str) -> Option<(String, i32)> {
    if name.ends_with(DELETE_SUFFIX)
        || name.ends_with(STRAY_SUFFIX)
        || name.ends_with(FUTURE_SUFFIX)
    {
        return None;
    }
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    if topic.is_empty() || partition < 0 {
        return None;
    }
    Some((topic.to_string(), partition))
}

pub fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    {
        let mut file = fs::File::create(&tmp)?;
        write!(file, "version: 0\ntopic_id: {topic_id}\n")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(PARTITION_METADATA_FILE))
}

pub fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("topic_id:"))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

/// Partition directories under `data_dir` (the metadata directory and files are skipped).
pub fn scan(data_dir: &Path) -> std::io::Result<Vec<PartitionDir>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some((topic, partition)) = name.to_str().and_then(parse_dir_name) else {
            continue;
        };
        let path = entry.path();
        let topic_id = read_partition_metadata(&path);
        found.push(PartitionDir {
            path,
            topic,
            partition,
            topic_id,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Moves a deleted partition's directory aside under a unique name, so a topic recreated with
/// the same name gets a fresh directory at once; the caller removes the renamed one.
pub fn rename_for_delete(dir: &Path, topic_id: Uuid) -> std::io::Result<PathBuf> {
    let target = with_suffix(dir, &format!(".{}{DELETE_SUFFIX}", topic_id.simple()));
    fs::rename(dir, &target)?;
    Ok(target)
}

pub fn rename_stray(dir: &Path) -> std::io::Result<PathBuf> {
    let target = with_suffix(dir, &format!(".{}{STRAY_SUFFIX}", Uuid::new_v4().simple()));
    fs::rename(dir, &target)?;
    Ok(target)
}

/// Where a copy of `topic`-`partition` is made in log directory `root` (Kafka's
/// `<topic>-<partition>.<id>-future`).
pub fn future_dir(root: &Path, topic: &str, partition: i32) -> PathBuf {
    with_suffix(
        &partition_dir(root, topic, partition),
        &format!(".{}{FUTURE_SUFFIX}", Uuid::new_v4().simple()),
    )
}

/// The partition a `future_dir` name belongs to.
pub fn parse_future_dir_name(name: &str) -> Option<(String, i32)> {
    let stem = name.strip_suffix(FUTURE_SUFFIX)?;
    let (partition_name, id) = stem.rsplit_once('.')?;
    Uuid::try_parse(id).ok()?;
    parse_dir_name(partition_name)
}

/// Whether `name` is a directory set aside for deletion (`rename_for_delete`).
pub fn is_delete_dir_name(name: &str) -> bool {
    name.strip_suffix(DELETE_SUFFIX)
        .and_then(|stem| stem.rsplit_once('.'))
        .is_some_and(|(set_aside, id)| !set_aside.is_empty() && Uuid::try_parse(id).is_ok())
}

/// Longest file name a directory entry may have (Linux `NAME_MAX`): a partition whose
/// `future_dir` name would be longer cannot be moved (Kafka's KAFKA-4893 check).
pub const MAX_DIR_NAME_BYTES: usize = 255;

/// Whether a `future_dir` of `topic`-`partition` fits in a directory entry.
pub fn future_dir_name_fits(topic: &str, partition: i32) -> bool {
    // `<topic>-<partition>.` + 32 hex digits + `-future`
    format!("{topic}-{partition}").len() + 1 + 32 + FUTURE_SUFFIX.len() <= MAX_DIR_NAME_BYTES
}

fn with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        assert_eq!(parse_dir_name("orders-3"), Some(("orders".into(), 3)));
        assert_eq!(parse_dir_name("my-topic-12"), Some(("my-topic".into(), 12)));
        assert_eq!(parse_dir_name("meta"), None);
        assert_eq!(parse_dir_name("t-x"), None);
        assert_eq!(parse_dir_name("-1"), None);
        let id = Uuid::new_v4();
        assert_eq!(parse_dir_name(&format!("t-0.{}-delete", id.simple())), None);
        assert_eq!(parse_dir_name(&format!("t-0.{}-stray", id.simple())), None);
    }

    #[test]
    fn future_and_delete_dirs_are_told_apart_from_partition_dirs() {
        let root = Path::new("/d");
        let future = future_dir(root, "my-topic", 3);
        let name = future.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("my-topic-3.") && name.ends_with("-future"),
            "{name}"
        );
        assert_eq!(parse_dir_name(name), None);
        assert_eq!(parse_future_dir_name(name), Some(("my-topic".into(), 3)));
        assert!(!is_delete_dir_name(name));
        for not_future in [
            "my-topic-3",
            "my-topic-3-future",
            "t-0.nothex-future",
            "x.y",
        ] {
            assert_eq!(parse_future_dir_name(not_future), None, "{not_future}");
        }
        let deleted = rename_target_for_test(&partition_dir(root, "t", 0));
        assert!(is_delete_dir_name(&deleted));
        assert!(!is_delete_dir_name("t-0"));
        assert!(!is_delete_dir_name("notes-delete"));
        // 249 characters is Kafka's longest topic name; its future name does not fit.
        assert!(future_dir_name_fits("t", 0));
        assert!(future_dir_name_fits(&"a".repeat(210), 12));
        assert!(!future_dir_name_fits(&"a".repeat(249), 0));
    }

    fn rename_target_for_test(dir: &Path) -> String {
        let target = with_suffix(dir, &format!(".{}{DELETE_SUFFIX}", Uuid::new_v4().simple()));
        target.file_name().unwrap().to_str().unwrap().to_string()
    }

    #[test]
    fn scan_reads_topic_ids() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let p = partition_dir(dir.path(), "a-b", 1);
        write_partition_metadata(&p, id).unwrap();
        fs::create_dir_all(dir.path().join("meta")).unwrap();
        fs::create_dir_all(dir.path().join("c-0")).unwrap();
        let found = scan(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].topic, "a-b");
        assert_eq!(found[0].topic_id, Some(id));
        assert_eq!(found[1].topic_id, None);
        let moved = rename_for_delete(&p, id).unwrap();
        assert!(moved.exists() && !p.exists());
        assert_eq!(scan(dir.path()).unwrap().len(), 1);
    }
}
