//! `shoalctl topic ...`, what `kafka-topics.sh` and `kafka-configs.sh --entity-type topics` do.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::check;
use crate::cli::TopicCommand;
use crate::kafka::Client;
use crate::output::{Output, list};

/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs config_source of a value set on the topic itself (DYNAMIC_TOPIC_CONFIG).
const TOPIC_CONFIG: i8 = 1;
const ADMIN_TIMEOUT_MS: i32 = 30_000;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub async fn run(
    client: &mut Client,
    command: &TopicCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        TopicCommand::List { internal } => list_topics(client, *internal, out).await,
        TopicCommand::Produce(_) | TopicCommand::Consume(_) => {
            bail!("the console tools run outside the admin client")
        }
        TopicCommand::Describe { topic } => describe(client, topic, out).await,
        TopicCommand::Trim(args) => {
            let wanted = super::topic_trim::plan(args)?;
            super::topic_trim::run(client, wanted, out).await
        }
        TopicCommand::Create(c) => {
            let topic = CreatableTopic::default()
                .with_name(name(&c.topic))
                .with_num_partitions(c.partitions)
                .with_replication_factor(c.replication_factor)
                .with_configs(
                    c.config
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                );
            let response = client
                .any()
                .call(
                    CreateTopicsRequest::default()
                        .with_topics(vec![topic])
                        .with_timeout_ms(ADMIN_TIMEOUT_MS),
                )
                .await?;
            let result = response
                .topics
                .first()
                .context("empty CreateTopics answer")?;
            check(
                &format!("creating topic {}", c.topic),
                result.error_code,
                result.error_message.as_deref(),
            )?;
            out.emit(
                &json!({"topic": c.topic, "created": true,
                        "partitions": result.num_partitions, "replication_factor": result.replication_factor}),
                &[("", vec!["TOPIC", "STATUS"], vec![vec![c.topic.clone(), "created".into()]])],
            );
            Ok(ExitCode::SUCCESS)
        }
        TopicCommand::Delete { topics } => {
            let version = client.any().version::<DeleteTopicsRequest>()?;
            let request = if version >= 6 {
                DeleteTopicsRequest::default().with_topics(
                    topics
                        .iter()
                        .map(|t| DeleteTopicState::default().with_name(Some(name(t))))
                        .collect(),
                )
            } else {
                DeleteTopicsRequest::default()
                    .with_topic_names(topics.iter().map(|t| name(t)).collect())
            }
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
            let response = client.any().call_at(request, version).await?;
            let mut rows = Vec::new();
            let mut results = Vec::new();
            let mut failed = None;
            for (r, topic) in response.responses.iter().zip(topics) {
                let status = shoal_kafka::error_name(r.error_code);
                let ok = r.error_code == 0;
                rows.push(vec![
                    topic.clone(),
                    if ok {
                        "deleted".into()
                    } else {
                        status.to_string()
                    },
                ]);
                results.push(json!({"topic": topic, "deleted": ok, "error": if ok { None } else { Some(status) }}));
                if !ok && failed.is_none() {
                    failed = Some(check(
                        &format!("deleting topic {topic}"),
                        r.error_code,
                        r.error_message.as_deref(),
                    ));
                }
            }
            out.emit(&json!(results), &[("", vec!["TOPIC", "STATUS"], rows)]);
            match failed {
                Some(Err(e)) => Err(e),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        TopicCommand::AddPartitions { topic, count } => {
            let response = client
                .any()
                .call(
                    CreatePartitionsRequest::default()
                        .with_topics(vec![
                            CreatePartitionsTopic::default()
                                .with_name(name(topic))
                                .with_count(*count)
                                // None: the controller places the new partitions.
                                .with_assignments(None),
                        ])
                        .with_timeout_ms(ADMIN_TIMEOUT_MS),
                )
                .await?;
            let r = response
                .results
                .first()
                .context("empty CreatePartitions answer")?;
            check(
                &format!("adding partitions to {topic}"),
                r.error_code,
                r.error_message.as_deref(),
            )?;
            out.emit(
                &json!({"topic": topic, "partitions": count}),
                &[(
                    "",
                    vec!["TOPIC", "PARTITIONS"],
                    vec![vec![topic.clone(), count.to_string()]],
                )],
            );
            Ok(ExitCode::SUCCESS)
        }
        TopicCommand::AlterConfig { topic, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set name=value and/or --delete name");
            }
            super::alter_resource_configs(
                client,
                TOPIC_RESOURCE,
                topic,
                set,
                delete,
                &format!("altering configs of {topic}"),
            )
            .await?;
            let mut rows: Vec<Vec<String>> = set
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone(), "set".into()])
                .collect();
            rows.extend(
                delete
                    .iter()
                    .map(|k| vec![k.clone(), String::new(), "deleted".into()]),
            );
            out.emit(
                &json!({"topic": topic, "set": set.iter().cloned().collect::<BTreeMap<_, _>>(), "deleted": delete}),
                &[("", vec!["CONFIG", "VALUE", "CHANGE"], rows)],
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list_topics(
    client: &mut Client,
    internal: bool,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let md = client.metadata(None).await?;
    let mut topics: Vec<_> = md
        .topics
        .iter()
        .filter(|t| internal || !t.is_internal)
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let rf = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
            Some((name, t.partitions.len(), rf, t.is_internal))
        })
        .collect();
    topics.sort();
    out.emit(
        &json!(topics.iter().map(|(n, p, rf, i)| json!({"name": n, "partitions": p, "replication_factor": rf, "internal": i})).collect::<Vec<_>>()),
        &[("", vec!["NAME", "PARTITIONS", "REPLICAS"], topics.iter().map(|(n, p, rf, _)| vec![n.clone(), p.to_string(), rf.to_string()]).collect())],
    );
    Ok(ExitCode::SUCCESS)
}

/// (log start, high watermark) per partition, asking each leader.
pub async fn offsets(
    client: &mut Client,
    topic: &str,
    leaders: &[(i32, i32)],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (partition, leader) in leaders {
        if *leader >= 0 {
            by_leader.entry(*leader).or_default().push(*partition);
        }
    }
    let mut out = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(timestamp)
                                    .with_current_leader_epoch(-1)
                            })
                            .collect(),
                    ),
            ]);
        let response = client.broker(leader).await?.call(request).await?;
        for t in response.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    out.insert(p.partition_index, p.offset);
                }
            }
        }
    }
    Ok(out)
}

async fn describe(client: &mut Client, topic: &str, out: &Output) -> anyhow::Result<ExitCode> {
    let md = client.metadata(Some(&[topic.to_string()])).await?;
    let t = md.topics.first().context("empty Metadata answer")?;
    check(&format!("topic {topic}"), t.error_code, None)?;
    let mut partitions: Vec<_> = t.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    let leaders: Vec<(i32, i32)> = partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    let starts = offsets(client, topic, &leaders, -2).await?;
    let ends = offsets(client, topic, &leaders, -1).await?;

    let configs = client
        .any()
        .call(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                // None (or an empty list) = every config.
                .with_configuration_keys(None),
        ]))
        .await?;
    let result = configs
        .results
        .first()
        .context("empty DescribeConfigs answer")?;
    check(
        &format!("configs of {topic}"),
        result.error_code,
        result.error_message.as_deref(),
    )?;
    let non_default: BTreeMap<String, String> = result
        .configs
        .iter()
        .filter(|c| c.config_source == TOPIC_CONFIG)
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();

    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|p| {
            let i = p.partition_index;
            vec![
                i.to_string(),
                p.leader_id.0.to_string(),
                p.leader_epoch.to_string(),
                list(&ids(&p.replica_nodes)),
                list(&ids(&p.isr_nodes)),
                starts.get(&i).map_or("-".into(), |o| o.to_string()),
                ends.get(&i).map_or("-".into(), |o| o.to_string()),
            ]
        })
        .collect();
    let value = json!({
        "name": topic,
        "internal": t.is_internal,
        "partitions": partitions.iter().map(|p| {
            let i = p.partition_index;
            json!({
                "partition": i,
                "leader": p.leader_id.0,
                "leader_epoch": p.leader_epoch,
                "replicas": ids(&p.replica_nodes),
                "isr": ids(&p.isr_nodes),
                "log_start_offset": starts.get(&i),
                "high_watermark": ends.get(&i),
            })
        }).collect::<Vec<_>>(),
        "configs": non_default,
    });
    let config_rows: Vec<Vec<String>> = non_default
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    let summary = format!(
        "topic {topic}: {} partitions, replication factor {}",
        partitions.len(),
        partitions.first().map_or(0, |p| p.replica_nodes.len())
    );
    out.emit(
        &value,
        &[
            (
                &summary,
                vec![
                    "PARTITION",
                    "LEADER",
                    "EPOCH",
                    "REPLICAS",
                    "ISR",
                    "LOG_START",
                    "HIGH_WATERMARK",
                ],
                rows,
            ),
            ("configs (non-default):", vec!["NAME", "VALUE"], config_rows),
        ],
    );
    Ok(ExitCode::SUCCESS)
}
