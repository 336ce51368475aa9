//! `shoalctl partition elect-leaders`, as `kafka-leader-election.sh`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::check;
use crate::cli::ElectLeaders;
use crate::kafka::Client;
use crate::output::Output;

/// ELECTION_NOT_NEEDED: the right leader is already in place; not a failure.
const ELECTION_NOT_NEEDED: i16 = 84;

pub async fn elect_leaders(
    client: &mut Client,
    args: &ElectLeaders,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let mut wanted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for spec in &args.topic {
        let (topic, parts) = match spec.split_once(':') {
            Some((t, list)) => (
                t.to_string(),
                list.split(',')
                    .map(|p| p.trim().parse::<i32>())
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("--topic {spec:?}: partitions must be numbers"))?,
            ),
            None => {
                let md = client.metadata(Some(std::slice::from_ref(spec))).await?;
                let t = md.topics.first().context("empty Metadata answer")?;
                check(&format!("topic {spec}"), t.error_code, None)?;
                (
                    spec.clone(),
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            }
        };
        wanted.entry(topic).or_default().extend(parts);
    }
    let request = ElectLeadersRequest::default()
        .with_election_type(if args.unclean { 1 } else { 0 })
        .with_topic_partitions(if wanted.is_empty() {
            None
        } else {
            Some(
                wanted
                    .iter()
                    .map(|(t, ps)| {
                        TopicPartitions::default()
                            .with_topic(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
        })
        .with_timeout_ms(30_000);
    let connection = client.any();
    let version = connection.version::<ElectLeadersRequest>()?;
    if args.unclean && version == 0 {
        anyhow::bail!(
            "{} only speaks ElectLeaders v0: preferred elections only",
            connection.address
        );
    }
    let response = connection.call_at(request, version).await?;
    check("ElectLeaders", response.error_code, None)?;

    let md = client.metadata(None).await?;
    let leader_of: BTreeMap<(String, i32), i32> = md
        .topics
        .iter()
        .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), t)))
        .flat_map(|(n, t)| {
            t.partitions
                .iter()
                .map(move |p| ((n.clone(), p.partition_index), p.leader_id.0))
        })
        .collect();
    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut failed = None;
    for t in &response.replica_election_results {
        for p in &t.partition_result {
            let topic = t.topic.0.to_string();
            let status = if p.error_code == 0 {
                "elected"
            } else {
                shoal_kafka::error_name(p.error_code)
            };
            let leader = leader_of.get(&(topic.clone(), p.partition_id)).copied();
            if p.error_code != 0 && p.error_code != ELECTION_NOT_NEEDED && failed.is_none() {
                failed = check(
                    &format!("election for {topic}/{}", p.partition_id),
                    p.error_code,
                    p.error_message.as_deref(),
                )
                .err();
            }
            rows.push(vec![
                topic.clone(),
                p.partition_id.to_string(),
                status.to_string(),
                leader.map_or("-".into(), |l| l.to_string()),
            ]);
            results.push(json!({"topic": topic, "partition": p.partition_id, "result": status, "leader": leader,
                "message": p.error_message.as_ref().filter(|m| !m.is_empty()).map(|m| m.to_string())}));
        }
    }
    out.emit(
        &json!(results),
        &[("", vec!["TOPIC", "PARTITION", "RESULT", "LEADER"], rows)],
    );
    match failed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
