//! `shoalctl partition describe`: per partition, where it lives (leader, replicas, ISR) and
//! its three offsets — log start, last stable offset (LSO) and high watermark (HW) — with the
//! gap between the last two.
//!
//! Why a verb of its own: `topic describe` shows the HW, which is what read_uncommitted
//! consumers reach. A read_committed consumer stops at the LSO, and a transaction that nobody
//! ends holds the LSO back while the HW moves on, so its consumers fall behind without any
//! error. `HW - LSO` ("lso lag") makes that visible per partition across topics; `txn
//! describe-producers` and `txn find-hanging` then say which producer holds it.
//!
//! Everything comes from Kafka APIs, so this works against Apache Kafka too: Metadata for the
//! placement, then ListOffsets to each partition's leader — EARLIEST for the log start, LATEST
//! with READ_COMMITTED for the LSO (asked first, so the HW read after it can only be larger),
//! LATEST with READ_UNCOMMITTED for the HW. One partition's failure (no leader, an unreachable
//! leader, a leader answering an error) is that partition's row, never the end of the command.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use super::check;
use crate::cli::PartitionDescribe;
use crate::kafka::Client;
use crate::output::{Output, Row, list};

/// ListOffsets timestamps: the log start and the latest offset.
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets isolation levels (v2+).
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;
/// LEADER_NOT_AVAILABLE, for a partition Metadata shows without a leader.
const LEADER_NOT_AVAILABLE: i16 = 5;
/// UNKNOWN_TOPIC_OR_PARTITION, for a partition asked for that the topic does not have.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Why a partition's offsets are missing: a Kafka error name and the detail, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub name: String,
    pub message: Option<String>,
}

impl RowError {
    fn code(code: i16, message: Option<String>) -> RowError {
        RowError {
            name: shoal_kafka::error_name(code).to_string(),
            message,
        }
    }
}

/// One partition's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub log_start_offset: Option<i64>,
    pub last_stable_offset: Option<i64>,
    pub high_watermark: Option<i64>,
    pub error: Option<RowError>,
}

impl PartitionRow {
    /// HW − LSO: the records read_committed consumers cannot see yet. Unknown unless both are.
    pub fn lso_lag(&self) -> Option<i64> {
        Some(self.high_watermark? - self.last_stable_offset?)
    }
}

fn offset(o: Option<i64>) -> String {
    o.map_or("-".into(), |o| o.to_string())
}

/// Broker ids, comma-separated; "-" for none (a partition the topic lacks).
fn nodes(ids: &[i32]) -> String {
    if ids.is_empty() {
        "-".into()
    } else {
        list(ids)
    }
}

impl Row for PartitionRow {
    fn cells(&self) -> Vec<String> {
        vec![
            self.topic.clone(),
            self.partition.to_string(),
            if self.leader < 0 {
                "-".into()
            } else {
                self.leader.to_string()
            },
            nodes(&self.replicas),
            nodes(&self.isr),
            offset(self.log_start_offset),
            offset(self.last_stable_offset),
            offset(self.high_watermark),
            offset(self.lso_lag()),
            self.error.as_ref().map_or("-".into(), |e| e.name.clone()),
        ]
    }

    fn json(&self) -> Value {
        json!({
            "topic": self.topic,
            "partition": self.partition,
            "leader": self.leader,
            "replicas": self.replicas,
            "isr": self.isr,
            "log_start_offset": self.log_start_offset,
            "last_stable_offset": self.last_stable_offset,
            "high_watermark": self.high_watermark,
            "lso_lag": self.lso_lag(),
            "error": self.error.as_ref().map(|e| e.name.clone()),
            "message": self.error.as_ref().and_then(|e| e.message.clone()),
        })
    }
}

const HEADER: [&str; 10] = [
    "TOPIC",
    "PARTITION",
    "LEADER",
    "REPLICAS",
    "ISR",
    "LOG_START",
    "LSO",
    "HIGH_WATERMARK",
    "LSO_LAG",
    "ERROR",
];

/// The partitions `--topic` specs name, by topic (`None`: all of its partitions). The whole
/// topic wins over a list of its partitions; lists add up.
pub fn wanted_partitions(
    specs: &[String],
) -> anyhow::Result<BTreeMap<String, Option<BTreeSet<i32>>>> {
    let mut wanted: BTreeMap<String, Option<BTreeSet<i32>>> = BTreeMap::new();
    for spec in specs {
        let (topic, partitions) = parse_topic_spec(spec)?;
        let entry = wanted.entry(topic).or_insert_with(|| Some(BTreeSet::new()));
        match (entry.as_mut(), partitions) {
            (Some(have), Some(more)) => have.extend(more),
            (_, None) => *entry = None,
            (None, Some(_)) => {}
        }
    }
    Ok(wanted)
}

/// `TOPIC` or `TOPIC:P1,P2`: the topic and the partitions named (`None`: all of them).
pub fn parse_topic_spec(spec: &str) -> anyhow::Result<(String, Option<BTreeSet<i32>>)> {
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, None),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
                .collect::<Option<BTreeSet<i32>>>()
                .with_context(|| {
                    format!(
                        "--topic {spec:?}: partitions must be numbers 0 or more, comma-separated"
                    )
                })?;
            (topic, Some(partitions))
        }
    };
    if topic.is_empty() {
        bail!("--topic {spec:?}: the topic name is empty");
    }
    Ok((topic.to_string(), partitions))
}

/// The rows Metadata gives, offsets still unknown: every partition of the wanted topics (all
/// topics for an empty `wanted`), or the named ones; a named partition the topic lacks is a
/// row with UNKNOWN_TOPIC_OR_PARTITION. A topic Metadata refuses fails the command.
fn placement(
    md: &MetadataResponse,
    wanted: &BTreeMap<String, Option<BTreeSet<i32>>>,
) -> anyhow::Result<Vec<PartitionRow>> {
    let mut rows = Vec::new();
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        check(&format!("topic {name}"), t.error_code, None)?;
        let only = wanted.get(&name).cloned().flatten();
        let mut seen = BTreeSet::new();
        for p in &t.partitions {
            if only
                .as_ref()
                .is_some_and(|o| !o.contains(&p.partition_index))
            {
                continue;
            }
            seen.insert(p.partition_index);
            let leader = p.leader_id.0;
            rows.push(PartitionRow {
                topic: name.clone(),
                partition: p.partition_index,
                leader,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                log_start_offset: None,
                last_stable_offset: None,
                high_watermark: None,
                error: (leader < 0).then(|| {
                    RowError::code(
                        if p.error_code != 0 {
                            p.error_code
                        } else {
                            LEADER_NOT_AVAILABLE
                        },
                        None,
                    )
                }),
            });
        }
        for missing in only.iter().flatten().filter(|p| !seen.contains(p)) {
            rows.push(PartitionRow {
                topic: name.clone(),
                partition: *missing,
                leader: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                log_start_offset: None,
                last_stable_offset: None,
                high_watermark: None,
                error: Some(RowError::code(UNKNOWN_TOPIC_OR_PARTITION, None)),
            });
        }
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(rows)
}

/// One offset per partition, or why not.
type Answers = BTreeMap<(String, i32), Result<i64, RowError>>;

/// ListOffsets for `partitions` (all led by the broker `conn` speaks to) at one timestamp and
/// isolation level. `None` when the broker cannot answer with that isolation level (ListOffsets
/// below v2 has none: the LSO stays unknown, no error).
async fn list_offsets(
    conn: &mut crate::kafka::connection::Connection,
    partitions: &[(String, i32)],
    timestamp: i64,
    isolation_level: i8,
) -> anyhow::Result<Option<Answers>> {
    let version = conn.version::<ListOffsetsRequest>()?;
    if isolation_level != READ_UNCOMMITTED && version < 2 {
        return Ok(None);
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(
            by_topic
                .iter()
                .map(|(topic, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(timestamp)
                                        .with_current_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = conn.call_at(request, version).await?;
    let mut answers = Answers::new();
    for t in response.topics {
        for p in t.partitions {
            let answer = if p.error_code == 0 {
                Ok(p.offset)
            } else {
                Err(RowError::code(p.error_code, None))
            };
            answers.insert((t.name.0.to_string(), p.partition_index), answer);
        }
    }
    Ok(Some(answers))
}

/// The three offsets of every row with a leader, asked of that leader; failures land in rows.
async fn fill_offsets(client: &mut Client, rows: &mut [PartitionRow]) {
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.error.is_none()) {
        by_leader
            .entry(row.leader)
            .or_default()
            .push((row.topic.clone(), row.partition));
    }
    for (leader, partitions) in by_leader {
        // LSO first: the HW asked after it can only have moved up (HW - LSO >= 0).
        let queries = [
            (LATEST_TIMESTAMP, READ_COMMITTED),
            (LATEST_TIMESTAMP, READ_UNCOMMITTED),
            (EARLIEST_TIMESTAMP, READ_UNCOMMITTED),
        ];
        let mut answers: Vec<Option<Answers>> = Vec::with_capacity(queries.len());
        let mut failure = None;
        match client.broker(leader).await {
            Err(e) => failure = Some(e),
            Ok(conn) => {
                for (timestamp, isolation) in queries {
                    match list_offsets(conn, &partitions, timestamp, isolation).await {
                        Ok(a) => answers.push(a),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        for row in rows
            .iter_mut()
            .filter(|r| r.error.is_none() && r.leader == leader)
        {
            if let Some(e) = &failure {
                row.error = Some(RowError {
                    name: "NETWORK_EXCEPTION".into(),
                    message: Some(format!("broker {leader}: {e:#}")),
                });
                continue;
            }
            let key = (row.topic.clone(), row.partition);
            let mut values = [None; 3];
            for (value, answer) in values.iter_mut().zip(&answers) {
                let Some(answer) = answer else { continue };
                match answer.get(&key) {
                    Some(Ok(o)) => *value = Some(*o),
                    Some(Err(e)) => {
                        row.error.get_or_insert_with(|| e.clone());
                    }
                    None => {
                        row.error.get_or_insert_with(|| RowError {
                            name: "UNKNOWN_SERVER_ERROR".into(),
                            message: Some(format!("broker {leader} did not answer for it")),
                        });
                    }
                }
            }
            [
                row.last_stable_offset,
                row.high_watermark,
                row.log_start_offset,
            ] = values;
        }
    }
}

pub async fn describe(
    client: &mut Client,
    args: &PartitionDescribe,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let wanted = wanted_partitions(&args.topic)?;
    let names: Vec<String> = wanted.keys().cloned().collect();
    let md = client
        .metadata(if names.is_empty() { None } else { Some(&names) })
        .await?;
    let mut rows = placement(&md, &wanted)?;
    fill_offsets(client, &mut rows).await;

    out.emit_rows(
        "",
        HEADER.to_vec(),
        rows.iter().map(|r| (r.cells(), r.json())),
        Value::from,
    );
    let failed: Vec<&PartitionRow> = rows.iter().filter(|r| r.error.is_some()).collect();
    if let Some(first) = failed.first() {
        let error = first.error.as_ref().map_or("", |e| e.name.as_str());
        bail!(
            "{} of {} partition(s) could not be described (first: {}-{}: {error})",
            failed.len(),
            rows.len(),
            first.topic,
            first.partition
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponsePartition, MetadataResponseTopic,
    };

    #[test]
    fn topic_specs() {
        let set = |v: &[i32]| Some(v.iter().copied().collect::<BTreeSet<i32>>());
        assert_eq!(parse_topic_spec("orders").unwrap(), ("orders".into(), None));
        assert_eq!(
            parse_topic_spec("orders:0").unwrap(),
            ("orders".into(), set(&[0]))
        );
        assert_eq!(
            parse_topic_spec("orders:2, 0,2").unwrap(),
            ("orders".into(), set(&[0, 2]))
        );
        for bad in ["orders:", "orders:x", "orders:-1", ":0", ""] {
            assert!(parse_topic_spec(bad).is_err(), "{bad:?}");
        }
    }

    fn row(hw: Option<i64>, lso: Option<i64>) -> PartitionRow {
        PartitionRow {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            replicas: vec![1, 2],
            isr: vec![1],
            log_start_offset: Some(0),
            last_stable_offset: lso,
            high_watermark: hw,
            error: None,
        }
    }

    #[test]
    fn lso_lag_is_hw_minus_lso_when_both_are_known() {
        for (hw, lso, lag) in [
            (Some(10), Some(10), Some(0)),
            (Some(10), Some(4), Some(6)),
            (None, Some(4), None),
            (Some(10), None, None),
        ] {
            assert_eq!(row(hw, lso).lso_lag(), lag, "{hw:?} {lso:?}");
        }
    }

    #[test]
    fn cells_and_json_carry_the_same_fields() {
        let mut r = row(Some(10), Some(4));
        assert_eq!(
            r.cells(),
            ["t", "0", "1", "1,2", "1", "0", "4", "10", "6", "-"]
        );
        r.leader = -1;
        r.error = Some(RowError::code(LEADER_NOT_AVAILABLE, None));
        r.high_watermark = None;
        assert_eq!(r.cells()[2], "-");
        assert_eq!(r.cells()[8], "-");
        assert_eq!(r.cells()[9], "LEADER_NOT_AVAILABLE");
        let j = r.json();
        assert_eq!(j["error"], "LEADER_NOT_AVAILABLE");
        assert_eq!(j["lso_lag"], Value::Null);
        assert_eq!(j["last_stable_offset"], 4);
    }

    fn metadata(topic: &str, partitions: &[(i32, i32)]) -> MetadataResponse {
        MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|(p, leader)| {
                            MetadataResponsePartition::default()
                                .with_partition_index(*p)
                                .with_leader_id(BrokerId(*leader))
                                .with_replica_nodes(vec![BrokerId(1)])
                                .with_isr_nodes(vec![BrokerId(1)])
                        })
                        .collect(),
                ),
        ])
    }

    #[test]
    fn placement_keeps_what_was_asked_and_names_what_is_missing() {
        let md = metadata("t", &[(1, 1), (0, -1), (2, 1)]);
        let all = BTreeMap::from([("t".to_string(), None)]);
        let rows = placement(&md, &all).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.partition).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(
            rows[0].error.as_ref().map(|e| e.name.as_str()),
            Some("LEADER_NOT_AVAILABLE")
        );
        assert!(rows[1].error.is_none() && rows[2].error.is_none());

        let some = BTreeMap::from([("t".to_string(), Some(BTreeSet::from([2, 7])))]);
        let rows = placement(&md, &some).unwrap();
        assert_eq!(rows.iter().map(|r| r.partition).collect::<Vec<_>>(), [2, 7]);
        assert!(rows[0].error.is_none());
        assert_eq!(
            rows[1].error.as_ref().map(|e| e.name.as_str()),
            Some("UNKNOWN_TOPIC_OR_PARTITION")
        );
    }

    #[test]
    fn a_topic_metadata_refuses_fails_the_command() {
        let md = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("nope"))))
                .with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
        ]);
        let err = placement(&md, &BTreeMap::new()).unwrap_err();
        assert!(
            format!("{err}").contains("topic nope: UNKNOWN_TOPIC_OR_PARTITION"),
            "{err}"
        );
    }
}
