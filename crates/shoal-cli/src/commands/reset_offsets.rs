//! `shoalctl group reset-offsets`, as `kafka-consumer-groups.sh --reset-offsets`: compute the
//! new offsets, show them, and commit them only with `--execute`, and only for a group with
//! no active members (their next commit would silently undo the reset).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::group::{committed, described, gid};
use super::{check, topic};
use crate::cli::ResetOffsets;
use crate::kafka::Client;
use crate::output::Output;

/// Parses --to-datetime into milliseconds since the epoch.
pub fn parse_datetime(raw: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    bail!(
        "--to-datetime {raw:?}: not RFC 3339, YYYY-MM-DDTHH:MM:SS[.sss] (UTC) or epoch milliseconds"
    )
}

/// The partitions each `--topic` names (all of the topic's for a bare name).
async fn partitions(
    client: &mut Client,
    args: &ResetOffsets,
    current: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<BTreeMap<String, Vec<(i32, i32)>>> {
    let mut wanted: BTreeMap<String, Option<Vec<i32>>> = BTreeMap::new();
    if args.all_topics {
        for (t, _) in current.keys() {
            wanted.insert(t.clone(), None);
        }
        if wanted.is_empty() {
            bail!(
                "group {} has no committed offsets; name topics with --topic",
                args.group
            );
        }
    }
    for spec in &args.topic {
        match spec.split_once(':') {
            None => {
                wanted.insert(spec.clone(), None);
            }
            Some((t, list)) => {
                let parts: Result<Vec<i32>, _> =
                    list.split(',').map(|p| p.trim().parse::<i32>()).collect();
                wanted.insert(
                    t.to_string(),
                    Some(parts.with_context(|| {
                        format!("--topic {spec:?}: partitions must be numbers")
                    })?),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    for (t, only) in wanted {
        let md = client.metadata(Some(std::slice::from_ref(&t))).await?;
        let mt = md.topics.first().context("empty Metadata answer")?;
        check(&format!("topic {t}"), mt.error_code, None)?;
        let mut leaders: Vec<(i32, i32)> = mt
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        if let Some(only) = &only {
            for p in only {
                if !leaders.iter().any(|(i, _)| i == p) {
                    bail!("topic {t} has no partition {p}: UNKNOWN_TOPIC_OR_PARTITION");
                }
            }
            leaders.retain(|(i, _)| only.contains(i));
        }
        leaders.sort_unstable();
        out.insert(t, leaders);
    }
    Ok(out)
}

pub async fn run(
    client: &mut Client,
    args: &ResetOffsets,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let group = &args.group;
    let g = described(client, group).await?;
    let state = g.group_state.to_string();
    if !matches!(state.as_str(), "Empty" | "Dead") {
        bail!(
            "group {group} is {state} with {} active member(s): offsets can only be reset while it is inactive (stop its consumers first)",
            g.members.len()
        );
    }
    let current = committed(client, group).await?;
    let targets = partitions(client, args, &current).await?;
    let timestamp = args
        .to_datetime
        .as_deref()
        .map(parse_datetime)
        .transpose()?;

    let mut rows = Vec::new();
    let mut plan: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for (t, leaders) in &targets {
        let earliest = topic::offsets(client, t, leaders, -2).await?;
        let latest = topic::offsets(client, t, leaders, -1).await?;
        let by_time = match timestamp {
            Some(ms) => topic::offsets(client, t, leaders, ms).await?,
            None => BTreeMap::new(),
        };
        for (p, _) in leaders {
            let (lo, hi) = (
                *earliest
                    .get(p)
                    .with_context(|| format!("no log start for {t}/{p}"))?,
                *latest
                    .get(p)
                    .with_context(|| format!("no log end for {t}/{p}"))?,
            );
            let now = current.get(&(t.clone(), *p)).copied();
            let new = if args.to_earliest {
                lo
            } else if args.to_latest {
                hi
            } else if let Some(o) = args.to_offset {
                o.clamp(lo, hi)
            } else if timestamp.is_some() {
                // No record at or after the time: the log end, as Kafka does.
                by_time.get(p).copied().filter(|o| *o >= 0).unwrap_or(hi)
            } else if let Some(n) = args.shift_by {
                now.unwrap_or(lo).saturating_add(n).clamp(lo, hi)
            } else {
                bail!("no --to-* given")
            };
            rows.push((t.clone(), *p, now, new));
            plan.entry(t.clone()).or_default().push((*p, new));
        }
    }

    if args.execute {
        let request = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            // A commit from outside the group, as Kafka's tool makes: generation -1, no member.
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_topics(
                plan.iter()
                    .map(|(t, parts)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|(p, o)| {
                                        OffsetCommitRequestPartition::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(*o)
                                            .with_committed_leader_epoch(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = client.coordinator(group).await?.call(request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                check(
                    &format!(
                        "committing {}/{} for group {group}",
                        t.name.0, p.partition_index
                    ),
                    p.error_code,
                    None,
                )?;
            }
        }
    }
    let value = json!({
        "group": group,
        "executed": args.execute,
        "offsets": rows.iter().map(|(t, p, now, new)| json!({"topic": t, "partition": p, "current_offset": now, "new_offset": new})).collect::<Vec<_>>(),
    });
    let title = if args.execute {
        format!("group {group}: offsets reset")
    } else {
        format!("group {group}: dry run (add --execute to commit)")
    };
    out.emit(
        &value,
        &[(
            &title,
            vec!["TOPIC", "PARTITION", "CURRENT", "NEW"],
            rows.iter()
                .map(|(t, p, now, new)| {
                    vec![
                        t.clone(),
                        p.to_string(),
                        now.map_or("-".into(), |o| o.to_string()),
                        new.to_string(),
                    ]
                })
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes() {
        assert_eq!(
            parse_datetime("1700000000000").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z").ok(), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T01:00:01+01:00").ok(), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.250").ok(), Some(1250));
        assert!(parse_datetime("yesterday").is_err());
    }
}
