//! `shoalctl partition move-dir`: move a broker's replicas between its log directories
//! (AlterReplicaLogDirs, what `kafka-reassign-partitions` sends for a reassignment JSON with
//! `log_dirs`). The broker answers at once and copies in the background; `--wait` then polls
//! the broker's DescribeLogDirs once a second, printing each copy's progress on stderr, until
//! every replica named is in its new directory.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::check;
use crate::cli::MoveDir;
use crate::kafka::Client;
use crate::output::Output;

/// Most replicas one command moves.
const MAX_MOVES: usize = 10_000;
/// How often `--wait` looks again.
const WAIT_POLL_MS: u64 = 1_000;

/// One replica to move: (topic, partition, directory).
type Spec = (String, i32, String);

/// `TOPIC:PARTITION=DIR`.
pub fn parse_spec(spec: &str) -> anyhow::Result<Spec> {
    let (partition, dir) = spec
        .split_once('=')
        .with_context(|| format!("{spec:?}: expected TOPIC:PARTITION=DIR"))?;
    let (topic, index) = partition
        .rsplit_once(':')
        .with_context(|| format!("{spec:?}: expected TOPIC:PARTITION=DIR"))?;
    let index: i32 = index
        .parse()
        .ok()
        .filter(|p| *p >= 0)
        .with_context(|| format!("{spec:?}: {index:?} is not a partition number"))?;
    if topic.is_empty() || dir.is_empty() {
        bail!("{spec:?}: expected TOPIC:PARTITION=DIR");
    }
    Ok((topic.to_string(), index, dir.to_string()))
}

pub fn plan(args: &MoveDir) -> anyhow::Result<Vec<Spec>> {
    if args.moves.len() > MAX_MOVES {
        bail!("at most {MAX_MOVES} moves at once");
    }
    let mut moves: BTreeMap<(String, i32), String> = BTreeMap::new();
    for spec in &args.moves {
        let (topic, partition, dir) = parse_spec(spec)?;
        if moves.insert((topic.clone(), partition), dir).is_some() {
            bail!("{topic}:{partition} is named twice");
        }
    }
    Ok(moves.into_iter().map(|((t, p), d)| (t, p, d)).collect())
}

pub async fn run(
    client: &mut Client,
    args: &MoveDir,
    moves: Vec<Spec>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let mut by_dir: BTreeMap<&str, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, partition, dir) in &moves {
        by_dir
            .entry(dir.as_str())
            .or_default()
            .entry(topic.as_str())
            .or_default()
            .push(*partition);
    }
    let request = AlterReplicaLogDirsRequest::default().with_dirs(
        by_dir
            .into_iter()
            .map(|(dir, topics)| {
                AlterReplicaLogDir::default()
                    .with_path(StrBytes::from_string(dir.to_string()))
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, partitions)| {
                                AlterReplicaLogDirTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let response = client.broker(args.broker).await?.call(request).await?;
    let mut codes: BTreeMap<(String, i32), i16> = BTreeMap::new();
    for topic in &response.results {
        for p in &topic.partitions {
            codes.insert(
                (topic.topic_name.0.to_string(), p.partition_index),
                p.error_code,
            );
        }
    }
    let results: Vec<(Spec, Option<i16>)> = moves
        .into_iter()
        .map(|spec| {
            let code = codes.get(&(spec.0.clone(), spec.1)).copied();
            (spec, code)
        })
        .collect();
    let started: Vec<Spec> = results
        .iter()
        .filter(|(_, code)| *code == Some(0))
        .map(|(spec, _)| spec.clone())
        .collect();
    let failed = results.iter().any(|(_, code)| *code != Some(0));
    let mut waited = Ok(());
    if args.wait && !started.is_empty() {
        waited = wait_for(client, args.broker, &started, args.wait_timeout_ms, out).await;
    }
    let done = if args.wait && waited.is_ok() {
        "moved"
    } else {
        "started"
    };
    out.emit_rows(
        "",
        vec!["BROKER", "TOPIC", "PARTITION", "DIR", "STATUS"],
        results.iter().map(|((topic, partition, dir), code)| {
            let status = match code {
                Some(0) => done.to_string(),
                Some(code) => shoal_kafka::error_name(*code).to_string(),
                None => "NO_ANSWER".to_string(),
            };
            (
                vec![
                    args.broker.to_string(),
                    topic.clone(),
                    partition.to_string(),
                    dir.clone(),
                    status.clone(),
                ],
                json!({"broker": args.broker, "topic": topic, "partition": partition, "dir": dir, "status": status}),
            )
        }),
        serde_json::Value::from,
    );
    waited?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks `broker` to move its replica of `topic`-`partition` to `dir`: the error code.
pub async fn alter(
    client: &mut Client,
    broker: i32,
    topic: &str,
    partition: i32,
    dir: &str,
) -> anyhow::Result<i16> {
    let request = AlterReplicaLogDirsRequest::default().with_dirs(vec![
        AlterReplicaLogDir::default()
            .with_path(StrBytes::from_string(dir.to_string()))
            .with_topics(vec![
                AlterReplicaLogDirTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![partition]),
            ]),
    ]);
    let response = client.broker(broker).await?.call(request).await?;
    Ok(response
        .results
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map_or(
            kafka_protocol::ResponseError::UnknownServerError.code(),
            |p| p.error_code,
        ))
}

/// Where each replica named is on `broker` now: (its directory, its copy's (directory, bytes,
/// lag) if it is moving).
type Placement = BTreeMap<(String, i32), (Option<String>, Option<(String, i64, i64)>)>;

async fn placement(client: &mut Client, broker: i32, moves: &[Spec]) -> anyhow::Result<Placement> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition, _) in moves {
        topics.entry(topic).or_default().push(*partition);
    }
    let request = DescribeLogDirsRequest::default().with_topics(Some(
        topics
            .into_iter()
            .map(|(topic, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(partitions)
            })
            .collect(),
    ));
    let response = client.broker(broker).await?.call(request).await?;
    check("DescribeLogDirs", response.error_code, None)?;
    let mut found: Placement = BTreeMap::new();
    for dir in &response.results {
        for topic in &dir.topics {
            for p in &topic.partitions {
                let entry = found
                    .entry((topic.name.0.to_string(), p.partition_index))
                    .or_default();
                if p.is_future_key {
                    entry.1 = Some((dir.log_dir.to_string(), p.partition_size, p.offset_lag));
                } else {
                    entry.0 = Some(dir.log_dir.to_string());
                }
            }
        }
    }
    Ok(found)
}

pub async fn wait_for(
    client: &mut Client,
    broker: i32,
    moves: &[Spec],
    timeout_ms: u64,
    out: &Output,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let started = Instant::now();
    loop {
        let now = placement(client, broker, moves).await?;
        let mut left = Vec::new();
        for (topic, partition, dir) in moves {
            let (current, copy) = now
                .get(&(topic.clone(), *partition))
                .cloned()
                .unwrap_or_default();
            if copy.is_none() && current.as_deref() == Some(dir.as_str()) {
                continue;
            }
            if copy.is_none() && current.is_some() {
                bail!(
                    "{topic}:{partition} is not moving and is in {current:?}, not {dir}: its move stopped (see the broker's log)"
                );
            }
            let progress = copy
                .map(|(_, bytes, lag)| format!(" ({bytes} bytes copied, {lag} offsets behind)"))
                .unwrap_or_default();
            left.push(format!("{topic}:{partition}{progress}"));
        }
        if super::progress::report(out, &left, moves.len(), started, "replicas moved") {
            return Ok(());
        }
        super::progress::check_deadline(&left, moves.len(), deadline, timeout_ms, "move")?;
        tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_partition_and_a_directory() {
        assert_eq!(
            parse_spec("my:topic:3=/disks/b").ok(),
            Some(("my:topic".to_string(), 3, "/disks/b".to_string()))
        );
        for bad in ["t:0", "t=/d", ":0=/d", "t:-1=/d", "t:x=/d", "t:0="] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
