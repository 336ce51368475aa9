//! `shoalctl cluster log-dirs`: disk usage per broker (DescribeLogDirs, Kafka's
//! `kafka-log-dirs.sh --describe`). Each broker answers for its own directories, so the request
//! goes to every broker asked for (all brokers in the metadata by default); a broker that
//! cannot be reached or refuses is reported as a row with its error, and the exit code is 1.

use std::collections::BTreeMap;
use std::process::ExitCode;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use super::check;
use crate::cli::LogDirsArgs;
use crate::kafka::Client;
use crate::output::Output;

/// One log directory of one broker, as answered.
struct DirRow {
    broker: i32,
    dir: String,
    error: Option<String>,
    total_bytes: i64,
    usable_bytes: i64,
    /// (topic, partition, size bytes, offset lag, a copy being made by AlterReplicaLogDirs),
    /// by topic then partition.
    partitions: Vec<(String, i32, i64, i64, bool)>,
}

pub async fn run(
    client: &mut Client,
    args: &LogDirsArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let md = client.metadata(Some(&[])).await?;
    let brokers: Vec<i32> = if args.broker_ids.is_empty() {
        let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort_unstable();
        ids
    } else {
        super::dedupe(args.broker_ids.clone())
    };
    let request = request(client, &args.topics).await?;
    let mut rows = Vec::new();
    for broker in brokers {
        let answer = match client.broker(broker).await {
            Ok(connection) => connection.call(request.clone()).await,
            Err(e) => Err(e),
        };
        let answer = answer.and_then(|r| {
            check("DescribeLogDirs", r.error_code, None)?;
            Ok(r)
        });
        match answer {
            Ok(response) => rows.extend(dir_rows(broker, response)),
            Err(e) => rows.push(DirRow {
                broker,
                dir: "-".into(),
                error: Some(format!("{e:#}")),
                total_bytes: -1,
                usable_bytes: -1,
                partitions: Vec::new(),
            }),
        }
    }
    emit(&rows, out);
    Ok(if rows.iter().any(|r| r.error.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Every partition of `topics` (as the metadata lists them), or null for all.
async fn request(client: &mut Client, topics: &[String]) -> anyhow::Result<DescribeLogDirsRequest> {
    if topics.is_empty() {
        return Ok(DescribeLogDirsRequest::default().with_topics(None));
    }
    let topics = super::dedupe(topics.to_vec());
    let md = client.metadata(Some(&topics)).await?;
    let mut asked = Vec::new();
    for t in &md.topics {
        let Some(name) = t.name.as_ref() else {
            continue;
        };
        check(&format!("topic {}", name.0), t.error_code, None)?;
        asked.push(
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.0.to_string())))
                .with_partitions(t.partitions.iter().map(|p| p.partition_index).collect()),
        );
    }
    Ok(DescribeLogDirsRequest::default().with_topics(Some(asked)))
}

fn dir_rows(broker: i32, response: DescribeLogDirsResponse) -> Vec<DirRow> {
    response
        .results
        .into_iter()
        .map(|d| {
            let mut partitions: Vec<(String, i32, i64, i64, bool)> = d
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.0.to_string(),
                            p.partition_index,
                            p.partition_size,
                            p.offset_lag,
                            p.is_future_key,
                        )
                    })
                })
                .collect();
            partitions.sort();
            DirRow {
                broker,
                dir: d.log_dir.to_string(),
                error: (d.error_code != 0)
                    .then(|| shoal_kafka::error_name(d.error_code).to_string()),
                total_bytes: d.total_bytes,
                usable_bytes: d.usable_bytes,
                partitions,
            }
        })
        .collect()
}

fn emit(rows: &[DirRow], out: &Output) {
    // JSON in kafka-log-dirs' shape: brokers, their log dirs, their partitions.
    let mut by_broker: BTreeMap<i32, Vec<Value>> = BTreeMap::new();
    for r in rows {
        by_broker.entry(r.broker).or_default().push(json!({
            "logDir": r.dir,
            "error": r.error,
            "totalBytes": r.total_bytes,
            "usableBytes": r.usable_bytes,
            "partitions": r.partitions.iter().map(|(t, p, size, lag, future)| json!({
                "partition": format!("{t}-{p}"), "size": size, "offsetLag": lag, "isFuture": future,
            })).collect::<Vec<_>>(),
        }));
    }
    let value = json!({
        "version": 1,
        "brokers": by_broker.into_iter().map(|(broker, dirs)| json!({"broker": broker, "logDirs": dirs}))
            .collect::<Vec<_>>(),
    });
    let dirs = rows
        .iter()
        .map(|r| {
            let used: i64 = r.partitions.iter().map(|p| p.2).sum();
            vec![
                r.broker.to_string(),
                r.dir.clone(),
                r.partitions.len().to_string(),
                used.to_string(),
                bytes_or_dash(r.total_bytes),
                bytes_or_dash(r.usable_bytes),
                r.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let partitions = rows
        .iter()
        .flat_map(|r| {
            r.partitions.iter().map(move |(t, p, size, lag, future)| {
                vec![
                    r.broker.to_string(),
                    r.dir.clone(),
                    t.clone(),
                    p.to_string(),
                    size.to_string(),
                    lag.to_string(),
                    if *future { "yes" } else { "-" }.to_string(),
                ]
            })
        })
        .collect();
    out.emit(
        &value,
        &[
            (
                "log directories",
                vec![
                    "BROKER",
                    "DIR",
                    "PARTITIONS",
                    "SIZE_BYTES",
                    "TOTAL_BYTES",
                    "USABLE_BYTES",
                    "ERROR",
                ],
                dirs,
            ),
            (
                "partitions",
                vec![
                    "BROKER",
                    "DIR",
                    "TOPIC",
                    "PARTITION",
                    "SIZE_BYTES",
                    "OFFSET_LAG",
                    "FUTURE",
                ],
                partitions,
            ),
        ],
    );
}

fn bytes_or_dash(bytes: i64) -> String {
    if bytes < 0 {
        "-".into()
    } else {
        bytes.to_string()
    }
}
