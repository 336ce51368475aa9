//! `shoalctl topic trim`: delete a topic's records below an offset (DeleteRecords, as
//! `kafka-delete-records --offset-json-file`). Each partition's request goes to its leader,
//! which answers once every in-sync replica moved its log start; the new log start (the low
//! watermark) is printed per partition.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::json;

use crate::cli::TrimArgs;
use crate::kafka::Client;
use crate::output::Output;

/// How long the brokers may wait for their followers.
const TRIM_TIMEOUT_MS: i32 = 30_000;
/// Most partitions one command trims.
const MAX_PARTITIONS: usize = 10_000;

/// Kafka's `kafka-delete-records` file.
#[derive(Debug, Deserialize)]
struct OffsetFile {
    partitions: Vec<FilePartition>,
}

#[derive(Debug, Deserialize)]
struct FilePartition {
    topic: String,
    partition: i32,
    offset: i64,
}

/// (topic, partition) → offset (-1: the high watermark), from the flags or the file; the
/// partitions of a topic named without `--partition` are filled in from the metadata.
pub fn plan(args: &TrimArgs) -> anyhow::Result<Vec<(String, Option<i32>, i64)>> {
    let mut wanted = Vec::new();
    if let Some(path) = &args.offset_json_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: OffsetFile = serde_json::from_str(&text).with_context(|| {
            format!("{}: not a kafka-delete-records offset file", path.display())
        })?;
        wanted.extend(
            file.partitions
                .into_iter()
                .map(|p| (p.topic, Some(p.partition), p.offset)),
        );
    }
    if let Some(topic) = &args.topic {
        let offset = args.offset.unwrap_or(-1);
        if args.partition.is_empty() {
            wanted.push((topic.clone(), None, offset));
        } else {
            wanted.extend(
                args.partition
                    .iter()
                    .map(|p| (topic.clone(), Some(*p), offset)),
            );
        }
    }
    if wanted.is_empty() {
        bail!("nothing to trim: name a topic or --offset-json-file");
    }
    if wanted
        .iter()
        .any(|(_, p, offset)| p.is_some_and(|p| p < 0) || *offset < -1)
    {
        bail!("partitions are 0 or more, offsets 0 or more (or -1: the high watermark)");
    }
    Ok(wanted)
}

pub async fn run(
    client: &mut Client,
    wanted: Vec<(String, Option<i32>, i64)>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let topics: Vec<String> = {
        let mut names: Vec<String> = wanted.iter().map(|(t, _, _)| t.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let md = client.metadata(Some(&topics)).await?;
    // (topic, partition) → (leader, offset)
    let mut targets: BTreeMap<(String, i32), (i32, i64)> = BTreeMap::new();
    let mut rows: BTreeMap<(String, i32), (i64, String)> = BTreeMap::new();
    for (topic, partition, offset) in wanted {
        let found = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic));
        let Some(t) = found.filter(|t| t.error_code == 0) else {
            let code = found.map_or(3, |t| t.error_code);
            rows.insert(
                (topic, partition.unwrap_or(-1)),
                (-1, shoal_kafka::error_name(code).to_string()),
            );
            continue;
        };
        for p in &t.partitions {
            if partition.is_none_or(|want| want == p.partition_index) {
                targets.insert((topic.clone(), p.partition_index), (p.leader_id.0, offset));
            }
        }
        if let Some(want) = partition
            && !t.partitions.iter().any(|p| p.partition_index == want)
        {
            rows.insert(
                (topic, want),
                (-1, "UNKNOWN_TOPIC_OR_PARTITION".to_string()),
            );
        }
    }
    if targets.len() > MAX_PARTITIONS {
        bail!(
            "{} partitions: at most {MAX_PARTITIONS} per command",
            targets.len()
        );
    }
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<(i32, i64)>>> = BTreeMap::new();
    for ((topic, partition), (leader, offset)) in &targets {
        by_leader
            .entry(*leader)
            .or_default()
            .entry(topic.clone())
            .or_default()
            .push((*partition, *offset));
    }
    for (leader, topics) in by_leader {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(TRIM_TIMEOUT_MS)
            .with_topics(
                topics
                    .iter()
                    .map(|(topic, partitions)| {
                        DeleteRecordsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|(p, offset)| {
                                        DeleteRecordsPartition::default()
                                            .with_partition_index(*p)
                                            .with_offset(*offset)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let answer = match leader {
            -1 => Err(anyhow::anyhow!("LEADER_NOT_AVAILABLE")),
            _ => match client.broker(leader).await {
                Ok(connection) => connection.call(request).await,
                Err(e) => Err(e),
            },
        };
        match answer {
            Ok(response) => {
                for t in &response.topics {
                    for p in &t.partitions {
                        let status = match p.error_code {
                            0 => "trimmed".to_string(),
                            code => shoal_kafka::error_name(code).to_string(),
                        };
                        rows.insert(
                            (t.name.0.to_string(), p.partition_index),
                            (p.low_watermark, status),
                        );
                    }
                }
            }
            Err(e) => {
                for (topic, partitions) in &topics {
                    for (p, _) in partitions {
                        rows.insert((topic.clone(), *p), (-1, format!("{e:#}")));
                    }
                }
            }
        }
    }
    let failed = rows.values().any(|(_, status)| status != "trimmed");
    out.emit_rows(
        "",
        vec!["TOPIC", "PARTITION", "LOG_START", "RESULT"],
        rows.iter().map(|((topic, partition), (low, status))| {
            (
                vec![
                    topic.clone(),
                    partition.to_string(),
                    low.to_string(),
                    status.clone(),
                ],
                json!({"topic": topic, "partition": partition, "low_watermark": low, "result": status}),
            )
        }),
        serde_json::Value::from,
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
