//! `shoalctl group ...`, what `kafka-consumer-groups.sh` does.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Buf;
use kafka_protocol::messages::consumer_group_describe_response;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde_json::json;

use super::{check, topic};
use crate::cli::GroupCommand;
use crate::kafka::Client;
use crate::output::Output;

pub fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

pub async fn run(
    client: &mut Client,
    command: &GroupCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        GroupCommand::List => {
            client.metadata(Some(&[])).await?;
            let mut groups = Vec::new();
            // Groups live on their coordinators: ask every broker, as Kafka's tools do.
            for id in client.broker_ids() {
                let response = client
                    .broker(id)
                    .await?
                    .call(ListGroupsRequest::default())
                    .await?;
                check(
                    &format!("ListGroups on broker {id}"),
                    response.error_code,
                    None,
                )?;
                for g in response.groups {
                    groups.push((
                        g.group_id.0.to_string(),
                        g.group_state.to_string(),
                        g.protocol_type.to_string(),
                        id,
                    ));
                }
            }
            groups.sort();
            out.emit(
                &json!(groups.iter().map(|(g, s, p, c)| json!({"group": g, "state": s, "protocol_type": p, "coordinator": c})).collect::<Vec<_>>()),
                &[("", vec!["GROUP", "STATE", "PROTOCOL_TYPE", "COORDINATOR"], groups.iter().map(|(g, s, p, c)| vec![g.clone(), s.clone(), p.clone(), c.to_string()]).collect())],
            );
            Ok(ExitCode::SUCCESS)
        }
        GroupCommand::Describe { group } => describe(client, group, out).await,
        GroupCommand::ResetOffsets(args) => super::reset_offsets::run(client, args, out).await,
        GroupCommand::Config { group, set, delete } => {
            super::group_config::run(client, group, set, delete, out).await
        }
        GroupCommand::Delete { groups } => {
            let mut rows = Vec::new();
            let mut results = Vec::new();
            let mut first_error = None;
            for group in groups {
                let response = client
                    .coordinator(group)
                    .await?
                    .call(DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]))
                    .await?;
                let code = response.results.first().map_or(0, |r| r.error_code);
                let ok = code == 0;
                rows.push(vec![
                    group.clone(),
                    if ok {
                        "deleted".into()
                    } else {
                        shoal_kafka::error_name(code).to_string()
                    },
                ]);
                results.push(json!({"group": group, "deleted": ok, "error": if ok { None } else { Some(shoal_kafka::error_name(code)) }}));
                if !ok && first_error.is_none() {
                    first_error = check(&format!("deleting group {group}"), code, None).err();
                }
            }
            out.emit(&json!(results), &[("", vec!["GROUP", "STATUS"], rows)]);
            match first_error {
                Some(e) => Err(e),
                None => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// Committed offsets of `group`: (topic, partition) -> offset.
pub async fn committed(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let connection = client.coordinator(group).await?;
    let version = connection.version::<OffsetFetchRequest>()?;
    let request = if version >= 8 {
        // topics None = every committed partition (the codec's default, an empty list, = none).
        OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(gid(group))
                .with_topics(None),
        ])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(None)
    };
    let response = connection.call_at(request, version).await?;
    // v8+ answers per group, older versions at the top level, in different types.
    let (code, rows): (i16, Vec<(String, i32, i64)>) = if version >= 8 {
        let g = response
            .groups
            .first()
            .context("empty OffsetFetch answer")?;
        let rows = g
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        (g.error_code, rows)
    } else {
        let rows = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        (response.error_code, rows)
    };
    check(&format!("offsets of group {group}"), code, None)?;
    let mut out = BTreeMap::new();
    for (topic, partition, offset) in rows {
        // -1: no commit for this partition.
        if offset >= 0 {
            out.insert((topic, partition), offset);
        }
    }
    Ok(out)
}

/// DescribeGroups for one group, from its coordinator; a Kafka error becomes the error.
pub async fn described(client: &mut Client, group: &str) -> anyhow::Result<DescribedGroup> {
    let response = client
        .coordinator(group)
        .await?
        .call(DescribeGroupsRequest::default().with_groups(vec![gid(group)]))
        .await?;
    let g = response
        .groups
        .into_iter()
        .next()
        .context("empty DescribeGroups answer")?;
    check(
        &format!("group {group}"),
        g.error_code,
        g.error_message.as_deref(),
    )?;
    Ok(g)
}

/// ConsumerGroupDescribe for one group, when its coordinator serves it and the group is a
/// KIP-848 consumer group (`None` otherwise: a classic group, or an older broker).
async fn consumer_described(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<Option<consumer_group_describe_response::DescribedGroup>> {
    let connection = client.coordinator(group).await?;
    if connection
        .version::<ConsumerGroupDescribeRequest>()
        .is_err()
    {
        return Ok(None);
    }
    let response = connection
        .call(ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(group)]))
        .await?;
    let g = response
        .groups
        .into_iter()
        .next()
        .context("empty ConsumerGroupDescribe answer")?;
    // GROUP_ID_NOT_FOUND: not a consumer group; DescribeGroups tells the rest.
    if g.error_code == 69 {
        return Ok(None);
    }
    check(
        &format!("group {group}"),
        g.error_code,
        g.error_message.as_deref(),
    )?;
    Ok(Some(g))
}

/// One member as `group describe` shows it; `epoch` and `target` only for KIP-848 groups.
struct MemberRow {
    id: String,
    client_id: String,
    host: String,
    assigned: Vec<(String, i32)>,
    epoch: Option<i32>,
    target: Option<Vec<(String, i32)>>,
    /// In a consumer group: the protocol the member speaks (`classic` while a group migrates).
    protocol: Option<&'static str>,
}

fn partitions(a: &consumer_group_describe_response::Assignment) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = a
        .topic_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_name.0.to_string(), *p))
        })
        .collect();
    out.sort();
    out
}

fn joined(parts: &[(String, i32)]) -> String {
    parts
        .iter()
        .map(|(t, p)| format!("{t}/{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn describe(client: &mut Client, group: &str, out: &Output) -> anyhow::Result<ExitCode> {
    if let Some(cg) = consumer_described(client, group).await? {
        let members = cg
            .members
            .iter()
            .map(|m| MemberRow {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assigned: partitions(&m.assignment),
                epoch: Some(m.member_epoch),
                target: Some(partitions(&m.target_assignment)),
                // KIP-1099's MemberType: 0 classic, 1 consumer.
                protocol: Some(if m.member_type == 0 {
                    "classic"
                } else {
                    "consumer"
                }),
            })
            .collect();
        let heading = Heading {
            state: cg.group_state.to_string(),
            protocol_type: "consumer".into(),
            protocol: cg.assignor_name.to_string(),
            epochs: Some((cg.group_epoch, cg.assignment_epoch)),
        };
        return show(client, group, heading, members, out).await;
    }
    let g = described(client, group).await?;
    let state = g.group_state.to_string();
    if state == "Dead" {
        anyhow::bail!("group {group}: GROUP_ID_NOT_FOUND");
    }

    // Members and what the leader assigned them (the consumer protocol's assignment).
    let mut members = Vec::new();
    for m in &g.members {
        let mut assigned: Vec<(String, i32)> = Vec::new();
        let mut bytes = m.member_assignment.clone();
        if g.protocol_type.as_str() == "consumer" && bytes.remaining() >= 2 {
            let version = bytes.get_i16();
            if let Ok(a) = ConsumerProtocolAssignment::decode(&mut bytes, version) {
                for tp in a.assigned_partitions {
                    for p in tp.partitions {
                        assigned.push((tp.topic.0.to_string(), p));
                    }
                }
            }
        }
        members.push(MemberRow {
            id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assigned,
            epoch: None,
            target: None,
            protocol: None,
        });
    }
    let heading = Heading {
        state,
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        epochs: None,
    };
    show(client, group, heading, members, out).await
}

/// The group-level part of `group describe`.
struct Heading {
    state: String,
    protocol_type: String,
    protocol: String,
    /// A KIP-848 group's (group epoch, assignment epoch).
    epochs: Option<(i32, i32)>,
}

/// Members, then each partition's committed offset, log end and lag.
async fn show(
    client: &mut Client,
    group: &str,
    heading: Heading,
    members: Vec<MemberRow>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in &members {
        for key in &m.assigned {
            owner.insert(key.clone(), m.id.clone());
        }
    }
    let committed = committed(client, group).await?;
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in committed.keys().chain(owner.keys()) {
        topics.entry(t.clone()).or_default().push(*p);
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (t, mut parts) in topics {
        parts.sort_unstable();
        parts.dedup();
        let md = client.metadata(Some(std::slice::from_ref(&t))).await?;
        let leaders: Vec<(i32, i32)> = md
            .topics
            .first()
            .map(|mt| {
                mt.partitions
                    .iter()
                    .filter(|p| parts.contains(&p.partition_index))
                    .map(|p| (p.partition_index, p.leader_id.0))
                    .collect()
            })
            .unwrap_or_default();
        for (p, end) in topic::offsets(client, &t, &leaders, -1).await? {
            ends.insert((t.clone(), p), end);
        }
    }
    let keys: Vec<(String, i32)> = {
        let mut k: Vec<_> = committed.keys().chain(owner.keys()).cloned().collect();
        k.sort();
        k.dedup();
        k
    };
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let c = committed.get(k);
            let e = ends.get(k);
            let lag = match (c, e) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => "-".into(),
            };
            vec![
                k.0.clone(),
                k.1.to_string(),
                c.map_or("-".into(), |v| v.to_string()),
                e.map_or("-".into(), |v| v.to_string()),
                lag,
                owner.get(k).cloned().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let tp_json = |parts: &[(String, i32)]| {
        parts
            .iter()
            .map(|(t, p)| json!({"topic": t, "partition": p}))
            .collect::<Vec<_>>()
    };
    let mut value = json!({
        "group": group,
        "state": heading.state,
        "protocol_type": heading.protocol_type,
        "protocol": heading.protocol,
        "members": members.iter().map(|m| {
            let mut v = json!({
                "member_id": m.id, "client_id": m.client_id, "host": m.host,
                "assignment": tp_json(&m.assigned),
            });
            if let (Some(epoch), Some(target)) = (m.epoch, &m.target) {
                v["member_epoch"] = json!(epoch);
                v["target_assignment"] = json!(tp_json(target));
            }
            if let Some(protocol) = m.protocol {
                v["member_protocol"] = json!(protocol);
            }
            v
        }).collect::<Vec<_>>(),
        "offsets": keys.iter().map(|k| {
            let c = committed.get(k).copied();
            let e = ends.get(k).copied();
            json!({"topic": k.0, "partition": k.1, "committed_offset": c, "log_end_offset": e,
                   "lag": c.zip(e).map(|(c, e)| (e - c).max(0)), "member_id": owner.get(k)})
        }).collect::<Vec<_>>(),
    });
    let kip848 = heading.epochs.is_some();
    value["type"] = json!("classic");
    if let Some((group_epoch, assignment_epoch)) = heading.epochs {
        value["type"] = json!("consumer");
        value["group_epoch"] = json!(group_epoch);
        value["assignment_epoch"] = json!(assignment_epoch);
    }
    let member_rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let mut row = vec![m.id.clone(), m.client_id.clone(), m.host.clone()];
            if kip848 {
                row.push(m.epoch.map_or("-".into(), |e| e.to_string()));
                row.push(m.protocol.unwrap_or("-").to_string());
            }
            row.push(joined(&m.assigned));
            if kip848 {
                row.push(m.target.as_deref().map_or("-".into(), joined));
            }
            row
        })
        .collect();
    let (title, member_columns) = match heading.epochs {
        Some((group_epoch, assignment_epoch)) => (
            format!(
                "group {group}: {}, {} members, group epoch {group_epoch}, assignment epoch {assignment_epoch}, assignor {}",
                heading.state,
                members.len(),
                heading.protocol
            ),
            vec![
                "MEMBER",
                "CLIENT_ID",
                "HOST",
                "EPOCH",
                "PROTOCOL",
                "ASSIGNMENT",
                "TARGET",
            ],
        ),
        None => (
            format!(
                "group {group}: {}, {} members",
                heading.state,
                members.len()
            ),
            vec!["MEMBER", "CLIENT_ID", "HOST", "ASSIGNMENT"],
        ),
    };
    out.emit(
        &value,
        &[
            (&title, member_columns, member_rows),
            (
                "offsets:",
                vec![
                    "TOPIC",
                    "PARTITION",
                    "COMMITTED",
                    "LOG_END",
                    "LAG",
                    "MEMBER",
                ],
                rows,
            ),
        ],
    );
    Ok(ExitCode::SUCCESS)
}
