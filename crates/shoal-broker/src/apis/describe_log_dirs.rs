//! DescribeLogDirs: this broker's log directory, the size of each partition in it, and the
//! file system's total and usable bytes (v4) — what `kafka-log-dirs`, admin clients and UIs
//! show as disk usage.
//!
//! As Kafka (`KafkaApis.handleDescribeLogDirsRequest`, `ReplicaManager.describeLogDirs`): the
//! principal needs DESCRIBE on the cluster, else the top-level CLUSTER_AUTHORIZATION_FAILED
//! with no results; `topics` null means every partition this broker holds, and a requested
//! partition it does not hold is left out, not an error; a topic without any listed
//! partition is left out; `offset_lag` is how far the log end is behind the high watermark
//! (0 once caught up). One result per log directory (`log.dirs`), each with the partitions it
//! holds; a partition that could not be opened (offline) is not listed, as Kafka lists only
//! open logs. A replica being moved (AlterReplicaLogDirs) is also listed in its target
//! directory with `is_future_key`, the bytes copied so far, and as lag how far the copy
//! trails the log end. The file system and the logs are read on the blocking pool.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, ResponseKind};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;
use crate::blocking::run_blocking;

/// One partition's log as this broker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSummary {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: u64,
    /// See [`offset_lag`] and [`future_offset_lag`].
    pub offset_lag: i64,
    /// A copy being made by AlterReplicaLogDirs (Kafka's future replica).
    pub is_future: bool,
}

/// The file system under the log directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpaceBytes {
    pub total_bytes: u64,
    pub usable_bytes: u64,
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> Reply {
    let mut response = DescribeLogDirsResponse::default();
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Describe)
    {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Reply::Ready(ResponseKind::DescribeLogDirs(response));
    }
    // None = every partition.
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let replicas = Arc::clone(&broker.replicas);
    let read = run_blocking(move || {
        let mut logs: Vec<Vec<LogSummary>> = vec![Vec::new(); replicas.log_dirs.dirs().len()];
        for (dir, p) in replicas.partitions_by_dir() {
            let Ok((size_bytes, log_end_offset)) =
                p.read_log(|log| Ok((log.size_bytes(), log.log_end_offset())))
            else {
                continue;
            };
            if let Some(in_dir) = logs.get_mut(dir) {
                in_dir.push(LogSummary {
                    topic: p.topic().to_string(),
                    partition: p.index(),
                    size_bytes,
                    offset_lag: offset_lag(log_end_offset, p.high_watermark()),
                    is_future: false,
                });
            }
        }
        // Replicas being moved: their copy in the target directory.
        for ((topic_id, index), mv) in replicas.moves.all() {
            let Some(p) = replicas.partition(topic_id, index) else {
                continue;
            };
            let Ok(log_end_offset) = p.read_log(|log| Ok(log.log_end_offset())) else {
                continue;
            };
            if let Some(in_dir) = logs.get_mut(mv.target) {
                in_dir.push(LogSummary {
                    topic: p.topic().to_string(),
                    partition: index,
                    size_bytes: mv.progress.bytes.load(std::sync::atomic::Ordering::Relaxed),
                    offset_lag: future_offset_lag(
                        log_end_offset,
                        mv.progress
                            .offset
                            .load(std::sync::atomic::Ordering::Relaxed),
                    ),
                    is_future: true,
                });
            }
        }
        let failed = replicas.failed_dirs();
        replicas
            .log_dirs
            .dirs()
            .iter()
            .zip(logs)
            .enumerate()
            .map(|(i, (dir, logs))| {
                let path = std::path::absolute(&dir.path).unwrap_or_else(|_| dir.path.clone());
                // A failed directory is reported as Kafka reports an offline one.
                let space = match failed.get(&i) {
                    Some(reason) => Err(std::io::Error::other(reason.clone())),
                    None => space_bytes(&path),
                };
                (path, logs, space)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Some(dirs) = read else {
        // The runtime is shutting down.
        return Reply::NoResponse;
    };
    for (path, logs, space) in dirs {
        let result = match space {
            Ok(space) => DescribeLogDirsResult::default()
                .with_topics(describe_topics(&logs, wanted.as_ref()))
                .with_total_bytes(clamp(space.total_bytes))
                .with_usable_bytes(clamp(space.usable_bytes)),
            Err(error) => {
                tracing::warn!(dir = %path.display(), %error, "DescribeLogDirs: cannot read the log directory's file system");
                DescribeLogDirsResult::default()
                    .with_error_code(ResponseError::KafkaStorageError.code())
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1)
            }
        };
        response
            .results
            .push(result.with_log_dir(str_bytes(&path.to_string_lossy())));
    }
    Reply::Ready(ResponseKind::DescribeLogDirs(response))
}

/// The partitions of `logs` that `wanted` asks for (all when `None`), by topic in name order,
/// partitions ascending; topics left without partitions are dropped.
pub(crate) fn describe_topics(
    logs: &[LogSummary],
    wanted: Option<&BTreeSet<(String, i32)>>,
) -> Vec<DescribeLogDirsTopic> {
    let mut by_topic: BTreeMap<&str, Vec<&LogSummary>> = BTreeMap::new();
    for log in logs {
        let asked = wanted.is_none_or(|w| w.contains(&(log.topic.clone(), log.partition)));
        if asked {
            by_topic.entry(log.topic.as_str()).or_default().push(log);
        }
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_by_key(|l| (l.partition, l.is_future));
            DescribeLogDirsTopic::default()
                .with_name(str_bytes(topic).into())
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|l| {
                            DescribeLogDirsPartition::default()
                                .with_partition_index(l.partition)
                                .with_partition_size(clamp(l.size_bytes))
                                .with_offset_lag(l.offset_lag)
                                .with_is_future_key(l.is_future)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Kafka's `getLogEndOffsetLag` for a current (not future) log.
pub(crate) fn offset_lag(log_end_offset: i64, high_watermark: i64) -> i64 {
    high_watermark.saturating_sub(log_end_offset).max(0)
}

/// Kafka's `getLogEndOffsetLag` for a future replica: how far the copy trails the log end.
pub(crate) fn future_offset_lag(log_end_offset: i64, copied_offset: i64) -> i64 {
    log_end_offset.saturating_sub(copied_offset).max(0)
}

fn clamp(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn space_bytes(dir: &Path) -> std::io::Result<SpaceBytes> {
    let st = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(SpaceBytes {
        total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
        usable_bytes: st.f_bavail.saturating_mul(st.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn log(topic: &str, partition: i32, size_bytes: u64, leo: i64, hw: i64) -> LogSummary {
        LogSummary {
            topic: topic.into(),
            partition,
            size_bytes,
            offset_lag: offset_lag(leo, hw),
            is_future: false,
        }
    }

    fn flat(topics: &[DescribeLogDirsTopic]) -> Vec<(String, i32, i64, i64)> {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.0.to_string(),
                        p.partition_index,
                        p.partition_size,
                        p.offset_lag,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn all_partitions_by_topic_then_partition() {
        let logs = [
            log("b", 1, 10, 5, 5),
            log("a", 2, 30, 9, 9),
            log("b", 0, 20, 3, 7),
            log("a", 0, 0, 0, 0),
        ];
        let got = describe_topics(&logs, None);
        assert_eq!(
            flat(&got),
            vec![
                ("a".into(), 0, 0, 0),
                ("a".into(), 2, 30, 0),
                ("b".into(), 0, 20, 4),
                ("b".into(), 1, 10, 0),
            ]
        );
    }

    #[test]
    fn only_what_was_asked_and_held() {
        let logs = [
            log("a", 0, 1, 1, 1),
            log("a", 1, 2, 1, 1),
            log("b", 0, 3, 1, 1),
        ];
        let wanted: BTreeSet<(String, i32)> = [
            ("a".to_string(), 1),
            ("b".to_string(), 7), // not held here: left out
            ("c".to_string(), 0), // unknown topic: left out
        ]
        .into_iter()
        .collect();
        let got = describe_topics(&logs, Some(&wanted));
        assert_eq!(flat(&got), vec![("a".into(), 1, 2, 0)]);
        // b has no asked partition held here, so no empty entry for it.
        assert_eq!(got.len(), 1);
        assert!(describe_topics(&logs, Some(&BTreeSet::new())).is_empty());
    }

    #[test]
    fn a_future_replica_is_listed_after_the_current_one() {
        let logs = [
            LogSummary {
                is_future: true,
                offset_lag: future_offset_lag(100, 40),
                ..log("a", 0, 7, 0, 0)
            },
            log("a", 0, 9, 100, 100),
        ];
        let got = describe_topics(&logs, None);
        let partitions = &got[0].partitions;
        assert_eq!(
            partitions
                .iter()
                .map(|p| (p.partition_size, p.offset_lag, p.is_future_key))
                .collect::<Vec<_>>(),
            vec![(9, 0, false), (7, 60, true)]
        );
        assert_eq!(future_offset_lag(10, 12), 0);
    }

    #[test]
    fn lag_is_how_far_the_log_end_trails_the_high_watermark() {
        // (log end, high watermark, lag)
        for (leo, hw, lag) in [(10, 10, 0), (12, 10, 0), (7, 10, 3), (0, 0, 0)] {
            assert_eq!(offset_lag(leo, hw), lag, "leo {leo} hw {hw}");
        }
    }

    #[test]
    fn reads_the_file_system_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let space = space_bytes(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.usable_bytes <= space.total_bytes);
        assert!(space_bytes(&dir.path().join("missing")).is_err());
    }
}
