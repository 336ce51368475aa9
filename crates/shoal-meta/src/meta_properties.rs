//! `meta.properties`: the identity of a metadata directory (cluster id and node id).
//!
//! Kafka writes this file when a log directory is formatted and checks it on every start, so a
//! node can never join a different cluster with old data, or two nodes swap directories. We do the
//! same: the first start writes it (generating a Kafka-style cluster id if none is configured);
//! later starts refuse to run if the configured cluster id or node id differs.
//!
//! The file is written to a temporary name, fsynced and renamed, so a crash leaves either no
//! file or a complete one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

/// A new cluster id like Kafka's: a random UUID as 22 characters of URL-safe base64.
pub fn generate_cluster_id() -> String {
    base64_url_no_pad(uuid::Uuid::new_v4().as_bytes())
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
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
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
            Ok(stored)
        }
        None => {
            let props = MetaProperties {
                cluster_id: configured_cluster_id.map_or_else(generate_cluster_id, str::to_string),
                node_id,
            };
            write(dir, &props)?;
            tracing::info!(cluster_id = %props.cluster_id, node_id, "formatted metadata directory");
            Ok(props)
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> MetaError {
    MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<Option<MetaProperties>, MetaError> {
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
    Ok(Some(MetaProperties {
        cluster_id,
        node_id,
    }))
}

fn write(dir: &Path, props: &MetaProperties) -> Result<(), MetaError> {
    let text = format!(
        "#\n# Written by shoal on first start; do not edit.\nversion={VERSION}\n\
         cluster.id={}\nnode.id={}\n",
        props.cluster_id, props.node_id
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
