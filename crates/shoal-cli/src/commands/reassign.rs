//! `shoalctl partition reassign` and `partition reassignments`, as
//! `kafka-reassign-partitions.sh --execute / --cancel / --verify`.
//!
//! A move is asked for with `--move TOPIC:P=B1,B2` (or Kafka's reassignment JSON file); the
//! brokers copy the data and the controller completes each move once the new replicas are in
//! sync, so the answer only says each move started. `--wait` then polls
//! ListPartitionReassignments until none of the partitions named is moving, printing what is
//! left on stderr once a second: a long operation reports progress.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::partition_describe::wanted_partitions;
use super::{check, reassign_throttle};
use crate::cli::{PartitionDescribe, Reassign};
use crate::kafka::Client;
use crate::output::{Output, list as id_list};

/// Most partitions one command moves (a reassignment file of a whole cluster fits).
const MAX_MOVES: usize = 10_000;
/// How often `--wait` asks which moves are left.
const WAIT_POLL_MS: u64 = 1_000;

/// One partition to move (`replicas`) or whose move to cancel (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<i32>>,
}

/// Kafka's reassignment JSON (`kafka-reassign-partitions --reassignment-json-file`).
#[derive(Debug, Deserialize)]
struct ReassignmentFile {
    version: i32,
    partitions: Vec<FilePartition>,
}

#[derive(Debug, Deserialize)]
struct FilePartition {
    topic: String,
    partition: i32,
    #[serde(default)]
    replicas: Vec<i32>,
    /// Per replica, its log directory on that broker, or "any" (KIP-113).
    #[serde(default)]
    log_dirs: Vec<String>,
}

/// A replica the reassignment file puts in a given log directory of its broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirMove {
    pub broker: i32,
    pub topic: String,
    pub partition: i32,
    pub dir: String,
}

/// The `log_dirs` of a reassignment file (none for `--move` or `--cancel`): each must name
/// one directory (or "any") per replica.
pub fn log_dir_moves(args: &Reassign) -> anyhow::Result<Vec<LogDirMove>> {
    let (Some(path), false) = (&args.reassignment_json_file, args.cancel) else {
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ReassignmentFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a reassignment JSON file", path.display()))?;
    let mut moves = Vec::new();
    for p in file.partitions {
        if p.log_dirs.is_empty() {
            continue;
        }
        if p.log_dirs.len() != p.replicas.len() {
            bail!(
                "{}:{}: {} log_dirs for {} replicas",
                p.topic,
                p.partition,
                p.log_dirs.len(),
                p.replicas.len()
            );
        }
        for (broker, dir) in p.replicas.iter().zip(&p.log_dirs) {
            if dir != "any" {
                moves.push(LogDirMove {
                    broker: *broker,
                    topic: p.topic.clone(),
                    partition: p.partition,
                    dir: dir.clone(),
                });
            }
        }
    }
    Ok(moves)
}

/// `TOPIC:P=B1,B2` (or `TOPIC:P` when cancelling).
fn parse_move(spec: &str, cancel: bool) -> anyhow::Result<Move> {
    let shape = if cancel {
        "TOPIC:PARTITION"
    } else {
        "TOPIC:PARTITION=BROKER,BROKER,..."
    };
    let (place, replicas) = match spec.split_once('=') {
        Some((place, list)) if !cancel => (place, Some(list)),
        None if cancel => (spec, None),
        _ => bail!("--move {spec:?}: expected {shape}"),
    };
    let (topic, partition) = place
        .rsplit_once(':')
        .with_context(|| format!("--move {spec:?}: expected {shape}"))?;
    let partition = partition
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p >= 0)
        .with_context(|| format!("--move {spec:?}: the partition must be a number 0 or more"))?;
    if topic.is_empty() {
        bail!("--move {spec:?}: the topic name is empty");
    }
    let replicas = replicas
        .map(|list| {
            list.split(',')
                .map(|b| b.trim().parse::<i32>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--move {spec:?}: broker ids must be numbers"))
        })
        .transpose()?;
    Ok(Move {
        topic: topic.to_string(),
        partition,
        replicas,
    })
}

/// The moves the flags ask for, checked before any broker is contacted.
pub fn plan(args: &Reassign) -> anyhow::Result<Vec<Move>> {
    let mut moves = args
        .moves
        .iter()
        .map(|spec| parse_move(spec, args.cancel))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(path) = &args.reassignment_json_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: ReassignmentFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a reassignment JSON file", path.display()))?;
        if file.version != 1 {
            bail!(
                "{}: version {} (only 1 exists)",
                path.display(),
                file.version
            );
        }
        moves.extend(file.partitions.into_iter().map(|p| Move {
            topic: p.topic,
            partition: p.partition,
            replicas: (!args.cancel).then_some(p.replicas),
        }));
    }
    if moves.is_empty() {
        bail!("nothing to reassign: give --move or --reassignment-json-file");
    }
    if moves.len() > MAX_MOVES {
        bail!(
            "{} partitions: at most {MAX_MOVES} per command",
            moves.len()
        );
    }
    let mut seen = BTreeSet::new();
    for m in &moves {
        if !seen.insert((m.topic.clone(), m.partition)) {
            bail!("{}:{} is named twice", m.topic, m.partition);
        }
    }
    Ok(moves)
}

/// One partition's answer to AlterPartitionReassignments.
pub struct MoveResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub message: Option<String>,
}

/// Sends `moves` as one AlterPartitionReassignments; the answer per partition.
pub async fn submit(
    client: &mut Client,
    moves: &[Move],
    disallow_replication_factor_change: bool,
) -> anyhow::Result<Vec<MoveResult>> {
    let mut by_topic: BTreeMap<&str, Vec<&Move>> = BTreeMap::new();
    for m in moves {
        by_topic.entry(m.topic.as_str()).or_default().push(m);
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_allow_replication_factor_change(!disallow_replication_factor_change)
        .with_topics(
            by_topic
                .iter()
                .map(|(topic, moves)| {
                    ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(
                            moves
                                .iter()
                                .map(|m| {
                                    ReassignablePartition::default()
                                        .with_partition_index(m.partition)
                                        .with_replicas(
                                            m.replicas
                                                .as_ref()
                                                .map(|r| r.iter().copied().map(BrokerId).collect()),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let connection = client.any();
    let version = connection.version::<AlterPartitionReassignmentsRequest>()?;
    if disallow_replication_factor_change && version == 0 {
        bail!(
            "{} only speaks AlterPartitionReassignments v0: the replication factor can always \
             change",
            connection.address
        );
    }
    let response = connection.call_at(request, version).await?;
    check(
        "AlterPartitionReassignments",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    Ok(response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| MoveResult {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                error_code: p.error_code,
                message: p
                    .error_message
                    .as_ref()
                    .filter(|m| !m.is_empty())
                    .map(|m| m.to_string()),
            })
        })
        .collect())
}

/// Starts `moves` and, if asked, waits: fails on the first refused move, naming it.
pub async fn start_and_wait(
    client: &mut Client,
    moves: &[Move],
    wait_timeout_ms: Option<u64>,
    out: &Output,
) -> anyhow::Result<()> {
    let results = submit(client, moves, false).await?;
    for r in &results {
        check(
            &format!("reassignment of {}:{}", r.topic, r.partition),
            r.error_code,
            r.message.as_deref(),
        )?;
    }
    if let Some(timeout_ms) = wait_timeout_ms {
        let started: Vec<(String, i32)> = results
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect();
        wait_for(client, &started, timeout_ms, out).await?;
    }
    Ok(())
}

pub async fn reassign(
    client: &mut Client,
    args: &Reassign,
    moves: Vec<Move>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let throttle = match args.throttle {
        Some(rate) => {
            let current = reassign_throttle::current_replicas(client, &moves).await?;
            let plan = reassign_throttle::throttled_replicas(&moves, &current)?;
            reassign_throttle::apply(client, &plan, Some(rate)).await?;
            out.emit_stderr(
                &json!({"throttle_bytes_per_s": rate, "brokers": plan.brokers}),
                &format!(
                    "throttled to {rate} bytes/s on brokers {}",
                    id_list(&plan.brokers.iter().copied().collect::<Vec<_>>())
                ),
            );
            Some(plan)
        }
        None => None,
    };
    // Replicas the file puts in given directories: asked of their brokers first, so one the
    // reassignment creates goes there (REPLICA_NOT_AVAILABLE: the broker remembers it), as
    // kafka-reassign-partitions does.
    let dir_moves = log_dir_moves(args)?;
    for m in &dir_moves {
        let code = super::move_dir::alter(client, m.broker, &m.topic, m.partition, &m.dir).await?;
        if code != 0 && code != kafka_protocol::ResponseError::ReplicaNotAvailable.code() {
            check(
                &format!(
                    "log directory {} of {}:{} on broker {}",
                    m.dir, m.topic, m.partition, m.broker
                ),
                code,
                None,
            )?;
        }
    }
    let exit = reassign_and_wait(client, args, moves, out).await;
    if exit.is_ok() && args.wait {
        // The replicas that existed already are being copied to their new directory.
        let mut by_broker: BTreeMap<i32, Vec<(String, i32, String)>> = BTreeMap::new();
        for m in dir_moves {
            by_broker
                .entry(m.broker)
                .or_default()
                .push((m.topic, m.partition, m.dir));
        }
        for (broker, specs) in by_broker {
            super::move_dir::wait_for(client, broker, &specs, args.wait_timeout_ms, out).await?;
        }
    }
    if let Some(plan) = throttle {
        match &exit {
            // Done (or refused): nothing is copying any more; the throttle goes, as --verify.
            Ok(_) => {
                reassign_throttle::apply(client, &plan, None).await?;
                out.emit_stderr(&json!({"throttle_removed": true}), "throttle removed");
            }
            Err(_) => out.emit_stderr(
                &json!({"throttle_removed": false}),
                "the throttle stays while the moves go on: once `shoalctl partition reassignments` \
                 lists none of them, run `shoalctl topic alter-config TOPIC --delete \
                 leader.replication.throttled.replicas --delete \
                 follower.replication.throttled.replicas` per topic and delete the brokers' \
                 *.replication.throttled.rate (kafka-configs --entity-type brokers)",
            ),
        }
    }
    exit
}

async fn reassign_and_wait(
    client: &mut Client,
    args: &Reassign,
    moves: Vec<Move>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let results = submit(client, &moves, args.disallow_replication_factor_change).await?;
    let done = if args.cancel { "cancelled" } else { "started" };
    let replicas_of: BTreeMap<(&str, i32), &Option<Vec<i32>>> = moves
        .iter()
        .map(|m| ((m.topic.as_str(), m.partition), &m.replicas))
        .collect();
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut failed = None;
    let mut started = Vec::new();
    for r in &results {
        let target = replicas_of
            .get(&(r.topic.as_str(), r.partition))
            .and_then(|t| t.as_ref());
        let status = if r.error_code == 0 {
            started.push((r.topic.clone(), r.partition));
            done
        } else {
            shoal_kafka::error_name(r.error_code)
        };
        if r.error_code != 0 && failed.is_none() {
            failed = check(
                &format!("reassignment of {}:{}", r.topic, r.partition),
                r.error_code,
                r.message.as_deref(),
            )
            .err();
        }
        rows.push(vec![
            r.topic.clone(),
            r.partition.to_string(),
            target.map_or("-".to_string(), |t| id_list(t)),
            status.to_string(),
        ]);
        json_rows.push(json!({"topic": r.topic, "partition": r.partition,
            "replicas": target, "result": status, "message": r.message}));
    }
    out.emit(
        &json!(json_rows),
        &[("", vec!["TOPIC", "PARTITION", "TARGET", "RESULT"], rows)],
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if args.wait && !started.is_empty() {
        wait_for(client, &started, args.wait_timeout_ms, out).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls until none of `partitions` is moving; progress on stderr.
async fn wait_for(
    client: &mut Client,
    partitions: &[(String, i32)],
    timeout_ms: u64,
    out: &Output,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let started = Instant::now();
    loop {
        let moving = list_moving(client).await?;
        let left: Vec<String> = partitions
            .iter()
            .filter(|(t, p)| {
                moving.topics.iter().any(|m| {
                    m.name.0.as_str() == t && m.partitions.iter().any(|x| x.partition_index == *p)
                })
            })
            .map(|(t, p)| format!("{t}:{p}"))
            .collect();
        if super::progress::report(out, &left, partitions.len(), started, "moves completed") {
            return Ok(());
        }
        super::progress::check_deadline(&left, partitions.len(), deadline, timeout_ms, "complete")?;
        tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
    }
}

async fn list_moving(client: &mut Client) -> anyhow::Result<ListPartitionReassignmentsResponse> {
    let response = client
        .any()
        .call(
            ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(None),
        )
        .await?;
    check(
        "ListPartitionReassignments",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    Ok(response)
}

pub async fn list_reassignments(
    client: &mut Client,
    args: &PartitionDescribe,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let wanted = wanted_partitions(&args.topic)?;
    let response = list_moving(client).await?;
    let shown = |topic: &str, partition: i32| {
        wanted.is_empty()
            || wanted
                .get(topic)
                .is_some_and(|w| w.as_ref().is_none_or(|ps| ps.contains(&partition)))
    };
    let ids = |b: &[BrokerId]| b.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut lines = Vec::new();
    for t in &response.topics {
        let topic = t.name.0.as_str();
        for p in t
            .partitions
            .iter()
            .filter(|p| shown(topic, p.partition_index))
        {
            let (replicas, adding, removing) = (
                ids(&p.replicas),
                ids(&p.adding_replicas),
                ids(&p.removing_replicas),
            );
            let cells = vec![
                topic.to_string(),
                p.partition_index.to_string(),
                id_list(&replicas),
                id_list(&adding),
                id_list(&removing),
            ];
            let value = json!({"topic": topic, "partition": p.partition_index,
                "replicas": replicas, "adding_replicas": adding, "removing_replicas": removing});
            lines.push((cells, value));
        }
    }
    out.emit_rows(
        "",
        vec!["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
        lines,
        Value::from,
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_specs() {
        assert_eq!(
            parse_move("orders:3=4,5,6", false).unwrap(),
            Move {
                topic: "orders".into(),
                partition: 3,
                replicas: Some(vec![4, 5, 6])
            }
        );
        // A topic name may hold a colon-free dot or dash; the last colon splits.
        assert_eq!(parse_move("a.b-c:0", true).unwrap().replicas, None);
        for bad in [
            "orders",
            "orders:x=1",
            "orders:-1=1",
            ":0=1",
            "orders:0=1,x",
            "orders:0",
        ] {
            assert!(parse_move(bad, false).is_err(), "{bad}");
        }
        assert!(
            parse_move("orders:0=1", true).is_err(),
            "cancel takes no replicas"
        );
    }

    #[test]
    fn log_dirs_of_a_reassignment_file() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        let args = |extra: &[&str]| {
            let mut argv = vec![
                "shoalctl",
                "partition",
                "reassign",
                "--reassignment-json-file",
            ];
            argv.push(file.to_str().unwrap());
            argv.extend_from_slice(extra);
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                crate::cli::Command::Partition(crate::cli::PartitionCommand::Reassign(r)) => r,
                other => panic!("{other:?}"),
            }
        };
        std::fs::write(
            &file,
            r#"{"version":1,"partitions":[
                {"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","/d2"]},
                {"topic":"t","partition":1,"replicas":[2,3]}]}"#,
        )
        .unwrap();
        assert_eq!(
            log_dir_moves(&args(&[])).unwrap(),
            vec![LogDirMove {
                broker: 2,
                topic: "t".into(),
                partition: 0,
                dir: "/d2".into()
            }]
        );
        assert!(log_dir_moves(&args(&["--cancel"])).unwrap().is_empty());
        std::fs::write(
            &file,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["/d2"]}]}"#,
        )
        .unwrap();
        assert!(
            log_dir_moves(&args(&[])).is_err(),
            "one directory per replica"
        );
    }
}
