//! `meta.properties`: the identity of a metadata directory (cluster id, node id, directory id).
//!
//! Kafka writes this file when a log directory is formatted and checks it on every start, so a
//! node can never join a different cluster with old data, or two nodes swap directories. We do the
//! same: the first start writes it (generating a Kafka-style cluster id if none is configured);
//! later starts refuse to run if the configured cluster id or node id differs.
//!
//! **Directory id** (`directory.id`, KIP-853/KIP-858): a random id written once, when the
//! directory is formatted, and never changed. A node whose directory was wiped comes back with
//! the same node id but a new directory id, which is how its peers can tell "node 3 restarted"
//! from "node 3 lost everything it promised" (a voter with an empty log must not vote as if it
//! still had it). A directory formatted by a release without the field gets one on its first
//! start with this one: it is the same data, so it is the directory's identity from then on.
//!
//! The file is written to a temporary name, fsynced and renamed, so a crash leaves either no
//! file or a complete one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::MetaError;

pub const META_PROPERTIES_FILE: &str = "meta.properties";
const VERSION: u32 = 1;
/// The file is a few lines; refuse to read anything larger.
const MAX_FILE_SIZE_BYTES: u64 = 64 * 1024;
/// Longest cluster id we accept (Kafka's are 22 characters).
pub const MAX_CLUSTER_ID_LENGTH: usize = 64;

/// The identity stored in `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    /// This directory's id; see the module docs.
    pub directory_id: Uuid,
}

/// A new cluster id like Kafka's: a random UUID as 22 characters of URL-safe base64.
pub fn generate_cluster_id() -> String {
    base64_url_no_pad(Uuid::new_v4().as_bytes())
}

/// Ids Kafka reserves for directory states (UNASSIGNED, LOST, MIGRATING, ...): the first 64
/// bits zero and the rest below 100 (`Uuid.RESERVED`).
fn is_reserved_directory_id(id: Uuid) -> bool {
    let (high, low) = id.as_u64_pair();
    high == 0 && low < 100
}

/// A new directory id: random, never one of Kafka's reserved ids.
pub fn generate_directory_id() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if !is_reserved_directory_id(id) {
            return id;
        }
    }
}

/// A directory id as Kafka prints one (22 characters of URL-safe base64).
pub fn format_directory_id(id: Uuid) -> String {
    base64_url_no_pad(id.as_bytes())
}

/// Parses a directory id written by [`format_directory_id`]; reserved ids are refused.
pub fn parse_directory_id(text: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    let id = Uuid::from_slice(&bytes).ok()?;
    (!is_reserved_directory_id(id)).then_some(id)
}

/// Checks a configured cluster id: 1..=64 characters of URL-safe base64's alphabet.
pub fn validate_cluster_id(cluster_id: &str) -> Result<(), MetaError> {
    let ok = !cluster_id.is_empty()
        && cluster_id.len() <= MAX_CLUSTER_ID_LENGTH
        && cluster_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(MetaError::Config(format!(
            "cluster id '{}' is invalid: use 1 to {MAX_CLUSTER_ID_LENGTH} characters of \
             [A-Za-z0-9_-], e.g. a generated 22-character id",
            cluster_id.escape_debug()
        )))
    }
}

fn base64_url_no_pad(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads `meta.properties` from `dir`, or creates it on first start. Fails if the stored identity
/// conflicts with the configured one.
pub fn load_or_create(
    dir: &Path,
    node_id: i32,
    configured_cluster_id: Option<&str>,
) -> Result<MetaProperties, MetaError> {
    if let Some(id) = configured_cluster_id {
        validate_cluster_id(id)?;
    }
    let path = dir.join(META_PROPERTIES_FILE);
    match read(&path)? {
        Some(stored) => {
            if let Some(configured) = configured_cluster_id
                && configured != stored.cluster_id
            {
                return Err(MetaError::ClusterIdMismatch {
                    path,
                    stored: stored.cluster_id,
                    configured: configured.to_string(),
                });
            }
            if stored.node_id != node_id {
                return Err(MetaError::NodeIdMismatch {
                    path,
                    stored: stored.node_id,
                    configured: node_id,
                });
            }
            match stored.directory_id {
                Some(directory_id) => Ok(MetaProperties {
                    cluster_id: stored.cluster_id,
                    node_id,
                    directory_id,
                }),
                None => {
                    // Formatted by a release without directory ids: the same data, so it gets
                    // its id now, once.
                    let props = MetaProperties {
                        cluster_id: stored.cluster_id,
                        node_id,
                        directory_id: generate_directory_id(),
                    };
                    write(dir, &props)?;
                    tracing::info!(
                        directory_id = %format_directory_id(props.directory_id),
                        "gave the metadata directory its directory id"
                    );
                    Ok(props)
                }
            }
        }
        None => {
            let props = MetaProperties {
                cluster_id: configured_cluster_id.map_or_else(generate_cluster_id, str::to_string),
                node_id,
                directory_id: generate_directory_id(),
            };
            write(dir, &props)?;
            tracing::info!(
                cluster_id = %props.cluster_id,
                node_id,
                directory_id = %format_directory_id(props.directory_id),
                "formatted metadata directory"
            );
            Ok(props)
        }
    }
}

/// What a `meta.properties` file holds; `directory_id` is absent in files of older releases.
struct StoredProperties {
    cluster_id: String,
    node_id: i32,
    directory_id: Option<Uuid>,
}

fn io_error(path: &Path, source: std::io::Error) -> MetaError {
    MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<Option<StoredProperties>, MetaError> {
    let size_bytes = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let corrupt = |reason: String| MetaError::CorruptProperties {
        path: path.to_path_buf(),
        reason,
    };
    if size_bytes > MAX_FILE_SIZE_BYTES {
        return Err(corrupt(format!(
            "file is {size_bytes} bytes, larger than expected"
        )));
    }
    let text = fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let mut cluster_id = None;
    let mut node_id = None;
    let mut version = None;
    let mut directory_id = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(corrupt(format!("line '{line}' is not key=value")));
        };
        match key.trim() {
            "cluster.id" => cluster_id = Some(value.trim().to_string()),
            "node.id" => {
                node_id = Some(
                    value
                        .trim()
                        .parse::<i32>()
                        .map_err(|_| corrupt(format!("node.id '{value}' is not an integer")))?,
                )
            }
            "version" => version = Some(value.trim().to_string()),
            "directory.id" => {
                directory_id = Some(parse_directory_id(value).ok_or_else(|| {
                    corrupt(format!(
                        "directory.id '{}' is not a directory id",
                        value.trim()
                    ))
                })?)
            }
            _ => {}
        }
    }
    if version.as_deref() != Some("1") {
        return Err(corrupt(format!(
            "unsupported version {version:?}, expected {VERSION}"
        )));
    }
    let cluster_id = cluster_id.ok_or_else(|| corrupt("missing cluster.id".to_string()))?;
    validate_cluster_id(&cluster_id).map_err(|e| corrupt(e.to_string()))?;
    let node_id = node_id.ok_or_else(|| corrupt("missing node.id".to_string()))?;
    Ok(Some(StoredProperties {
        cluster_id,
        node_id,
        directory_id,
    }))
}

fn write(dir: &Path, props: &MetaProperties) -> Result<(), MetaError> {
    let text = format!(
        "#\n# Written by shoal on first start; do not edit.\nversion={VERSION}\n\
         cluster.id={}\nnode.id={}\ndirectory.id={}\n",
        props.cluster_id,
        props.node_id,
        format_directory_id(props.directory_id)
    );
    write_durably(dir, META_PROPERTIES_FILE, &text)
}

/// Writes `dir/name` so that a crash leaves either no file, the old one, or the complete new
/// one: a temporary file, fsynced, renamed over, and the directory fsynced.
pub(crate) fn write_durably(dir: &Path, name: &str, text: &str) -> Result<(), MetaError> {
    let path = dir.join(name);
    let tmp: PathBuf = dir.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
    // Make the rename itself durable.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_url_no_pad(b""), "");
        assert_eq!(base64_url_no_pad(b"f"), "Zg");
        assert_eq!(base64_url_no_pad(b"fo"), "Zm8");
        assert_eq!(base64_url_no_pad(b"foo"), "Zm9v");
        assert_eq!(base64_url_no_pad(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_url_no_pad(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn generated_cluster_ids_look_like_kafkas() {
        let a = generate_cluster_id();
        let b = generate_cluster_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        validate_cluster_id(&a).unwrap();
    }

    #[test]
    fn creates_then_checks_identity() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 1, None).unwrap();
        assert_eq!(first.node_id, 1);
        let again = load_or_create(dir.path(), 1, None).unwrap();
        assert_eq!(first, again);
        let same = load_or_create(dir.path(), 1, Some(&first.cluster_id)).unwrap();
        assert_eq!(first, same);
        assert!(matches!(
            load_or_create(dir.path(), 1, Some("otherCluster")),
            Err(MetaError::ClusterIdMismatch { .. })
        ));
        assert!(matches!(
            load_or_create(dir.path(), 2, None),
            Err(MetaError::NodeIdMismatch { .. })
        ));
        assert!(load_or_create(dir.path(), 1, Some("bad id!")).is_err());
    }

    #[test]
    fn a_directory_keeps_its_id_and_a_wiped_one_gets_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 1, None).unwrap();
        let text = fs::read_to_string(dir.path().join(META_PROPERTIES_FILE)).unwrap();
        assert!(
            text.contains(&format!(
                "directory.id={}",
                format_directory_id(first.directory_id)
            )),
            "{text}"
        );
        assert_eq!(
            load_or_create(dir.path(), 1, None).unwrap().directory_id,
            first.directory_id
        );
        let wiped = tempfile::tempdir().unwrap();
        let again = load_or_create(wiped.path(), 1, Some(&first.cluster_id)).unwrap();
        assert_ne!(again.directory_id, first.directory_id);
    }

    #[test]
    fn a_file_of_an_older_release_gets_a_directory_id_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(META_PROPERTIES_FILE);
        fs::write(&path, "version=1\ncluster.id=oldCluster\nnode.id=4\n").unwrap();
        let upgraded = load_or_create(dir.path(), 4, None).unwrap();
        assert_eq!(upgraded.cluster_id, "oldCluster");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("directory.id="), "{text}");
        assert_eq!(load_or_create(dir.path(), 4, None).unwrap(), upgraded);
    }

    #[test]
    fn directory_ids_round_trip_and_reserved_ones_are_refused() {
        for _ in 0..100 {
            let id = generate_directory_id();
            let text = format_directory_id(id);
            assert_eq!(text.len(), 22);
            assert_eq!(parse_directory_id(&text), Some(id));
        }
        // Kafka's UNASSIGNED, LOST and MIGRATING.
        for reserved in [
            "AAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAQ",
            "AAAAAAAAAAAAAAAAAAAAAg",
        ] {
            assert_eq!(parse_directory_id(reserved), None, "{reserved}");
        }
        assert_eq!(parse_directory_id("not base64!"), None);
        assert_eq!(parse_directory_id("Zm9v"), None, "3 bytes are no UUID");
    }

    #[test]
    fn a_damaged_directory_id_is_corruption_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(META_PROPERTIES_FILE),
            "version=1\ncluster.id=c\nnode.id=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n",
        )
        .unwrap();
        assert!(matches!(
            load_or_create(dir.path(), 1, None),
            Err(MetaError::CorruptProperties { .. })
        ));
    }

    #[test]
    fn rejects_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(META_PROPERTIES_FILE),
            "version=1\nnode.id=x\n",
        )
        .unwrap();
        assert!(matches!(
            load_or_create(dir.path(), 1, None),
            Err(MetaError::CorruptProperties { .. })
        ));
    }
}
