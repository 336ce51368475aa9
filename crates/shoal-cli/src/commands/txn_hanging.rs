//! `shoalctl txn find-hanging`, as `kafka-transactions.sh find-hanging` (Apache Kafka's
//! `TransactionsCommand.FindHangingTransactionsCommand`).
//!
//! Why: a hanging transaction is one a partition holds open that no coordinator will ever end
//! (a client wrote to a partition it never added to its transaction while verification was
//! off, or a write arrived after its transaction's markers). It holds the partition's last
//! stable offset forever, and read_committed consumers stop there with no error. The partition
//! and its coordinator each see only half of it, so finding one means asking both:
//!
//! 1. DescribeProducers on the partitions searched: producers with an open transaction
//!    (`current_txn_start_offset >= 0`) whose last write is older than
//!    `--max-transaction-timeout` are candidates — a live transaction older than the largest
//!    timeout would have been aborted by its coordinator;
//! 2. ListTransactions (every broker) filtered by the candidates' producer ids, for their
//!    transactional ids;
//! 3. DescribeTransactions of those ids: a candidate is *not* hanging if its coordinator still
//!    has the transaction open with that partition in it (the marker will come).
//!
//! Steps 1 and 3 end in [`candidates`] and [`hanging`], pure functions with table tests; the
//! rest is requests. Deviations from Kafka's tool are in docs/cli.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use super::check;
use crate::cli::FindHanging;
use crate::kafka::Client;
use crate::output::{Output, Row};

/// Partitions per DescribeProducers request (Kafka's tool batches the same way).
const MAX_BATCH_PARTITIONS: usize = 500;
/// Retriable coordinator answers (COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
/// NOT_COORDINATOR): asked again this many times, this far apart, as Kafka's admin client does.
const RETRIABLE: [i16; 3] = [14, 15, 16];
const RETRIES: usize = 20;
const RETRY_BACKOFF: Duration = Duration::from_millis(250);
/// TRANSACTIONAL_ID_NOT_FOUND: the coordinator has no such id (any more).
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
/// Coordinator states in which a transaction is over: a partition it still lists gets no
/// marker from it.
const ENDED_STATES: [&str; 4] = ["Empty", "CompleteCommit", "CompleteAbort", "Dead"];

/// A producer's open transaction on one partition, as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTxn {
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i32,
    /// -1 when no coordinator has written a marker for this producer here.
    pub coordinator_epoch: i32,
    pub start_offset: i64,
    /// Max timestamp of the producer's last batch here; -1 when unknown.
    pub last_timestamp_ms: i64,
}

impl OpenTxn {
    /// The producer's open transaction on `topic`-`partition`, if it has one.
    fn from_producer(topic: &str, partition: i32, p: &ProducerState) -> Option<OpenTxn> {
        (p.current_txn_start_offset >= 0).then(|| OpenTxn {
            topic: topic.to_string(),
            partition,
            producer_id: p.producer_id.0,
            producer_epoch: p.producer_epoch,
            coordinator_epoch: p.coordinator_epoch,
            start_offset: p.current_txn_start_offset,
            last_timestamp_ms: p.last_timestamp,
        })
    }
}

/// What a coordinator says of a transactional id (DescribeTransactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorView {
    /// Kafka's state name (Ongoing, PrepareCommit, CompleteAbort, ...).
    pub state: String,
    /// The partitions it will still write markers to.
    pub partitions: BTreeSet<(String, i32)>,
}

/// A hanging transaction: the open transaction, and the transactional id its producer id
/// belongs to if a coordinator knows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hanging {
    pub txn: OpenTxn,
    pub transactional_id: Option<String>,
    /// Wall-clock ms the report was made at, for the duration.
    pub now_ms: i64,
}

impl Hanging {
    /// Since the producer's last write here; unknown without a timestamp.
    fn duration_ms(&self) -> Option<i64> {
        (self.txn.last_timestamp_ms >= 0).then(|| self.now_ms - self.txn.last_timestamp_ms)
    }
}

impl Row for Hanging {
    fn cells(&self) -> Vec<String> {
        let t = &self.txn;
        vec![
            t.topic.clone(),
            t.partition.to_string(),
            t.producer_id.to_string(),
            t.producer_epoch.to_string(),
            t.coordinator_epoch.to_string(),
            t.start_offset.to_string(),
            super::txn::time(t.last_timestamp_ms),
            self.duration_ms()
                .map_or("-".into(), |ms| (ms / 60_000).to_string()),
            self.transactional_id.clone().unwrap_or_else(|| "-".into()),
        ]
    }

    fn json(&self) -> Value {
        let t = &self.txn;
        json!({
            "topic": t.topic,
            "partition": t.partition,
            "producer_id": t.producer_id,
            "producer_epoch": t.producer_epoch,
            "coordinator_epoch": t.coordinator_epoch,
            "start_offset": t.start_offset,
            "last_timestamp_ms": t.last_timestamp_ms,
            "duration_ms": self.duration_ms(),
            "transactional_id": self.transactional_id,
        })
    }
}

const HEADER: [&str; 9] = [
    "TOPIC",
    "PARTITION",
    "PRODUCER_ID",
    "PRODUCER_EPOCH",
    "COORDINATOR_EPOCH",
    "START_OFFSET",
    "LAST_TIMESTAMP",
    "DURATION_MIN",
    "TRANSACTIONAL_ID",
];

/// Step 1: the open transactions whose producer last wrote more than `max_timeout_ms` before
/// `now_ms` (strictly, as Kafka; an unknown last timestamp, -1, counts as very old).
pub fn candidates(open: Vec<OpenTxn>, now_ms: i64, max_timeout_ms: i64) -> Vec<OpenTxn> {
    open.into_iter()
        .filter(|t| now_ms.saturating_sub(t.last_timestamp_ms) > max_timeout_ms)
        .collect()
}

/// Step 3: which candidates are hanging, given the transactional id of each producer id a
/// coordinator listed (`transactional_ids`) and what each id's coordinator said (`views`;
/// `None`: TRANSACTIONAL_ID_NOT_FOUND). As Kafka: hanging when no coordinator lists the
/// producer id, when its id is not found, or when the coordinator's transaction does not
/// include the partition. Also (Kafka's coordinators never list partitions then, so this only
/// matters for others) when the coordinator's transaction is over.
pub fn hanging(
    candidates: Vec<OpenTxn>,
    transactional_ids: &HashMap<i64, String>,
    views: &HashMap<String, Option<CoordinatorView>>,
    now_ms: i64,
) -> Vec<Hanging> {
    candidates
        .into_iter()
        .filter_map(|txn| {
            let transactional_id = transactional_ids.get(&txn.producer_id).cloned();
            let view = transactional_id
                .as_ref()
                .and_then(|id| views.get(id))
                .and_then(Option::as_ref);
            let coordinator_will_end_it = view.is_some_and(|v| {
                !ENDED_STATES.contains(&v.state.as_str())
                    && v.partitions.contains(&(txn.topic.clone(), txn.partition))
            });
            (!coordinator_will_end_it).then_some(Hanging {
                txn,
                transactional_id,
                now_ms,
            })
        })
        .collect()
}

fn wall_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// The partitions to search, each with its leader: the one named, a topic's, or (with only
/// `--broker-id`) those of every topic, internal ones included; with `--broker-id`, only those
/// that broker replicates.
async fn partitions_to_search(
    client: &mut Client,
    args: &FindHanging,
) -> anyhow::Result<Vec<((String, i32), i32)>> {
    let topics = args.topic.as_ref().map(|t| vec![t.clone()]);
    let md = client.metadata(topics.as_deref()).await?;
    let mut out = Vec::new();
    let mut named_partition_exists = false;
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        check(&format!("topic {name}"), t.error_code, None)?;
        for p in &t.partitions {
            if args.partition.is_some_and(|want| want != p.partition_index) {
                continue;
            }
            named_partition_exists = true;
            if let Some(broker) = args.broker_id
                && !p.replica_nodes.iter().any(|r| r.0 == broker)
            {
                continue;
            }
            out.push(((name.clone(), p.partition_index), p.leader_id.0));
        }
    }
    if let (Some(topic), Some(partition)) = (&args.topic, args.partition)
        && !named_partition_exists
    {
        bail!("{topic} has no partition {partition}");
    }
    out.sort();
    Ok(out)
}

/// Step 1's requests: every open transaction on `partitions`, asked of each one's leader.
async fn open_transactions(
    client: &mut Client,
    partitions: &[((String, i32), i32)],
) -> anyhow::Result<Vec<OpenTxn>> {
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for ((topic, partition), leader) in partitions {
        if *leader < 0 {
            bail!("{topic}-{partition} has no leader to describe its producers");
        }
        by_leader
            .entry(*leader)
            .or_default()
            .push((topic.clone(), *partition));
    }
    let mut open = Vec::new();
    for (leader, all) in by_leader {
        for batch in all.chunks(MAX_BATCH_PARTITIONS) {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in batch {
                by_topic.entry(topic).or_default().push(*partition);
            }
            let request = DescribeProducersRequest::default().with_topics(
                by_topic
                    .iter()
                    .map(|(topic, ps)| {
                        TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            );
            let response = client
                .broker(leader)
                .await?
                .call(request)
                .await
                .with_context(|| format!("describing producers on broker {leader}"))?;
            for t in &response.topics {
                for p in &t.partitions {
                    check(
                        &format!("describing producers of {}-{}", t.name.0, p.partition_index),
                        p.error_code,
                        p.error_message.as_deref(),
                    )?;
                    open.extend(p.active_producers.iter().filter_map(|x| {
                        OpenTxn::from_producer(t.name.0.as_str(), p.partition_index, x)
                    }));
                }
            }
        }
    }
    Ok(open)
}

/// Step 2: producer id -> transactional id, for the ids any coordinator lists.
async fn transactional_ids(
    client: &mut Client,
    producer_ids: &BTreeSet<i64>,
) -> anyhow::Result<HashMap<i64, String>> {
    let mut out = HashMap::new();
    for broker in client.broker_ids() {
        let request = ListTransactionsRequest::default()
            .with_producer_id_filters(producer_ids.iter().map(|id| ProducerId(*id)).collect())
            .with_duration_filter(-1);
        let mut attempt = 0;
        let response = loop {
            let response = client.broker(broker).await?.call(request.clone()).await?;
            attempt += 1;
            if RETRIABLE.contains(&response.error_code) && attempt < RETRIES {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            break response;
        };
        check(
            &format!("ListTransactions on broker {broker}"),
            response.error_code,
            None,
        )?;
        for t in response.transaction_states {
            // A broker that ignores the filter lists others: keep only the ones asked about.
            if producer_ids.contains(&t.producer_id.0) {
                out.insert(t.producer_id.0, t.transactional_id.0.to_string());
            }
        }
    }
    Ok(out)
}

/// Step 3's requests: what each id's coordinator says of it (`None`: not found).
async fn coordinator_views(
    client: &mut Client,
    ids: impl IntoIterator<Item = &String>,
) -> anyhow::Result<HashMap<String, Option<CoordinatorView>>> {
    let mut out = HashMap::new();
    for id in ids {
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.clone()))]);
        let mut attempt = 0;
        let state = loop {
            let response = client
                .transaction_coordinator(id)
                .await?
                .call(request.clone())
                .await?;
            let state = response
                .transaction_states
                .into_iter()
                .next()
                .context("empty DescribeTransactions answer")?;
            attempt += 1;
            if RETRIABLE.contains(&state.error_code) && attempt < RETRIES {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            break state;
        };
        if state.error_code == TRANSACTIONAL_ID_NOT_FOUND {
            out.insert(id.clone(), None);
            continue;
        }
        check(&format!("transactional id {id}"), state.error_code, None)?;
        let partitions = state
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect();
        out.insert(
            id.clone(),
            Some(CoordinatorView {
                state: state.transaction_state.to_string(),
                partitions,
            }),
        );
    }
    Ok(out)
}

pub async fn find_hanging(
    client: &mut Client,
    args: &FindHanging,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let max_timeout_ms = i64::from(args.max_transaction_timeout) * 60_000;
    let partitions = partitions_to_search(client, args).await?;
    let open = open_transactions(client, &partitions).await?;
    let now_ms = wall_ms();
    let candidates = candidates(open, now_ms, max_timeout_ms);
    let found = if candidates.is_empty() {
        Vec::new()
    } else {
        let producer_ids: BTreeSet<i64> = candidates.iter().map(|c| c.producer_id).collect();
        let ids = transactional_ids(client, &producer_ids).await?;
        let unique: BTreeSet<&String> = ids.values().collect();
        let views = coordinator_views(client, unique).await?;
        hanging(candidates.clone(), &ids, &views, now_ms)
    };
    let title = if found.is_empty() {
        format!(
            "no hanging transactions ({} partition(s) searched, {} open longer than {} min)",
            partitions.len(),
            candidates.len(),
            args.max_transaction_timeout
        )
    } else {
        format!(
            "{} hanging transaction(s) ({} partition(s) searched): abort each with `shoalctl txn \
             abort --topic T --partition P --start-offset O --force` once no producer runs it",
            found.len(),
            partitions.len()
        )
    };
    out.emit_rows(
        &title,
        HEADER.to_vec(),
        found.iter().map(|h| (h.cells(), h.json())),
        |hanging| {
            json!({
                "max_transaction_timeout_ms": max_timeout_ms,
                "partitions_searched": partitions.len(),
                "candidates": candidates.len(),
                "hanging": hanging,
            })
        },
    );
    if found.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 10_000_000;
    const MIN_MS: i64 = 60_000;

    fn txn(topic: &str, partition: i32, producer_id: i64, last_timestamp_ms: i64) -> OpenTxn {
        OpenTxn {
            topic: topic.into(),
            partition,
            producer_id,
            producer_epoch: 0,
            coordinator_epoch: -1,
            start_offset: 5,
            last_timestamp_ms,
        }
    }

    #[test]
    fn only_open_transactions_are_read_from_producers() {
        let mut p = ProducerState::default()
            .with_producer_id(ProducerId(7))
            .with_producer_epoch(3)
            .with_last_timestamp(1234)
            .with_coordinator_epoch(2)
            .with_current_txn_start_offset(-1);
        assert_eq!(OpenTxn::from_producer("t", 1, &p), None);
        p.current_txn_start_offset = 0;
        assert_eq!(
            OpenTxn::from_producer("t", 1, &p),
            Some(OpenTxn {
                topic: "t".into(),
                partition: 1,
                producer_id: 7,
                producer_epoch: 3,
                coordinator_epoch: 2,
                start_offset: 0,
                last_timestamp_ms: 1234,
            })
        );
    }

    #[test]
    fn candidates_are_older_than_the_max_timeout() {
        // (last write, max timeout, candidate?)
        let cases = [
            (NOW_MS - 16 * MIN_MS, 15 * MIN_MS, true),
            (NOW_MS - 15 * MIN_MS, 15 * MIN_MS, false), // strictly older, as Kafka
            (NOW_MS - 14 * MIN_MS, 15 * MIN_MS, false),
            (NOW_MS - 1, 0, true), // --max-transaction-timeout 0: every open one
            (NOW_MS, 0, false),    // written this very millisecond
            (NOW_MS + 5_000, 0, false), // a producer clock ahead of ours
            (-1, 15 * MIN_MS, true), // no timestamp: as old as can be
        ];
        for (last_ms, max_ms, want) in cases {
            let got = candidates(vec![txn("t", 0, 1, last_ms)], NOW_MS, max_ms);
            assert_eq!(!got.is_empty(), want, "last {last_ms}, max {max_ms}");
        }
    }

    fn view(state: &str, partitions: &[(&str, i32)]) -> Option<CoordinatorView> {
        Some(CoordinatorView {
            state: state.into(),
            partitions: partitions
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
        })
    }

    #[test]
    fn hanging_unless_the_coordinator_still_has_it_open_with_the_partition() {
        // What DescribeTransactions said of id "a": not asked (`None`), not found
        // (`Some(None)`), or its view.
        type Described = Option<Option<CoordinatorView>>;
        // (what ListTransactions gave for producer 1, what DescribeTransactions said, hanging?)
        let cases: Vec<(Option<&str>, Described, bool)> = vec![
            // No coordinator lists producer 1: nobody will end it.
            (None, None, true),
            // Listed, but the id is gone by the time it is described.
            (Some("a"), Some(None), true),
            // Listed, but its description is missing (not asked): hanging, as Kafka.
            (Some("a"), None, true),
            // Ongoing with this partition: the coordinator will write the marker.
            (
                Some("a"),
                Some(view("Ongoing", &[("t", 0), ("u", 3)])),
                false,
            ),
            (Some("a"), Some(view("PrepareCommit", &[("t", 0)])), false),
            (Some("a"), Some(view("PrepareAbort", &[("t", 0)])), false),
            (
                Some("a"),
                Some(view("PrepareEpochFence", &[("t", 0)])),
                false,
            ),
            // A state this tool does not know, with the partition: trusted to end it.
            (Some("a"), Some(view("SomeNewState", &[("t", 0)])), false),
            // Ongoing, but on other partitions only (same topic, other partition too).
            (
                Some("a"),
                Some(view("Ongoing", &[("t", 1), ("u", 0)])),
                true,
            ),
            // Over: no marker will come, whatever it lists.
            (Some("a"), Some(view("Empty", &[])), true),
            (Some("a"), Some(view("CompleteCommit", &[("t", 0)])), true),
            (Some("a"), Some(view("CompleteAbort", &[])), true),
            (Some("a"), Some(view("Dead", &[])), true),
        ];
        for (id, described, want) in cases {
            let ids: HashMap<i64, String> = id.iter().map(|i| (1, i.to_string())).collect();
            let views: HashMap<String, Option<CoordinatorView>> = described
                .clone()
                .map(|v| ("a".to_string(), v))
                .into_iter()
                .collect();
            let got = hanging(vec![txn("t", 0, 1, 0)], &ids, &views, NOW_MS);
            assert_eq!(!got.is_empty(), want, "{id:?} {described:?}");
            if let Some(h) = got.first() {
                assert_eq!(h.transactional_id.as_deref(), id);
            }
        }
    }

    #[test]
    fn each_partition_of_a_producer_is_judged_alone() {
        let ids = HashMap::from([(1, "a".to_string()), (2, "b".to_string())]);
        let views = HashMap::from([
            ("a".to_string(), view("Ongoing", &[("t", 0)])),
            ("b".to_string(), None),
        ]);
        let got = hanging(
            vec![
                txn("t", 0, 1, 0),
                txn("t", 1, 1, 0),
                txn("t", 0, 2, 0),
                txn("t", 2, 3, 0),
            ],
            &ids,
            &views,
            NOW_MS,
        );
        let which: Vec<(i64, i32)> = got
            .iter()
            .map(|h| (h.txn.producer_id, h.txn.partition))
            .collect();
        assert_eq!(which, [(1, 1), (2, 0), (3, 2)]);
    }

    #[test]
    fn rows_show_minutes_and_json_milliseconds() {
        let h = Hanging {
            txn: txn("t", 0, 9, NOW_MS - 17 * MIN_MS - 5),
            transactional_id: None,
            now_ms: NOW_MS,
        };
        let cells = h.cells();
        assert_eq!(cells[7], "17");
        assert_eq!(cells[8], "-");
        assert_eq!(h.json()["duration_ms"], 17 * MIN_MS + 5);
        assert_eq!(h.json()["transactional_id"], Value::Null);
        let unknown = Hanging {
            txn: txn("t", 0, 9, -1),
            transactional_id: Some("x".into()),
            now_ms: NOW_MS,
        };
        assert_eq!(unknown.cells()[7], "-");
        assert_eq!(unknown.cells()[6], "-");
        assert_eq!(unknown.json()["duration_ms"], Value::Null);
    }
}
