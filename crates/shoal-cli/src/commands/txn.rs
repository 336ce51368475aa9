//! `shoalctl txn ...`, what `kafka-transactions.sh` does: list the transactions every broker
//! coordinates, describe one, and show a partition's active producers with their open
//! transactions (the signal for a last stable offset that does not move), find hanging ones
//! (`txn_hanging`) and abort one.

use std::process::ExitCode;

use anyhow::Context as _;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, TopicName,
    TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::check;
use crate::cli::TxnCommand;
use crate::kafka::Client;
use crate::output::Output;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A wall-clock time in ms as RFC 3339 UTC ("-" when unset).
pub(super) fn time(ms: i64) -> String {
    if ms < 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub async fn run(
    client: &mut Client,
    command: &TxnCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        TxnCommand::List {
            states,
            duration_ms,
        } => list(client, states, *duration_ms, out).await,
        TxnCommand::Describe { transactional_id } => describe(client, transactional_id, out).await,
        TxnCommand::DescribeProducers { topic, partition } => {
            describe_producers(client, topic, *partition, out).await
        }
        TxnCommand::Abort {
            topic,
            partition,
            start_offset,
            force,
        } => abort(client, topic, *partition, *start_offset, *force, out).await,
        TxnCommand::FindHanging(args) => super::txn_hanging::find_hanging(client, args, out).await,
    }
}

/// The leader of `topic`-`partition`, from the metadata.
async fn leader_of(client: &mut Client, topic: &str, partition: i32) -> anyhow::Result<i32> {
    let md = client.metadata(Some(&[topic.to_string()])).await?;
    let t = md.topics.first().context("empty Metadata answer")?;
    check(&format!("topic {topic}"), t.error_code, None)?;
    let leader = t
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .with_context(|| format!("{topic} has no partition {partition}"))?
        .leader_id
        .0;
    anyhow::ensure!(leader >= 0, "{topic}-{partition} has no leader");
    Ok(leader)
}

/// The partition's active producers, asked of its leader.
async fn producers_of(
    client: &mut Client,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(i32, Vec<ProducerState>)> {
    let leader = leader_of(client, topic, partition).await?;
    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![partition]),
    ]);
    let response = client.broker(leader).await?.call(request).await?;
    let p = response
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .context("empty DescribeProducers answer")?;
    check(
        &format!("{topic}-{partition}"),
        p.error_code,
        p.error_message.as_deref(),
    )?;
    Ok((leader, p.active_producers))
}

async fn abort(
    client: &mut Client,
    topic: &str,
    partition: i32,
    start_offset: i64,
    force: bool,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let (leader, producers) = producers_of(client, topic, partition).await?;
    let producer = producers
        .iter()
        .find(|p| p.current_txn_start_offset == start_offset)
        .with_context(|| {
            format!("no open transaction starts at offset {start_offset} of {topic}-{partition}")
        })?;
    anyhow::ensure!(
        force,
        "aborting the transaction of producer {} on {topic}-{partition} (started at offset \
         {start_offset}) cannot be undone, and breaks it if its producer is still running: \
         add --force",
        producer.producer_id.0
    );
    let epoch = i16::try_from(producer.producer_epoch).context("producer epoch out of range")?;
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(producer.producer_id)
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(producer.coordinator_epoch)
            .with_topics(vec![
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(vec![partition]),
            ]),
    ]);
    let response = client.broker(leader).await?.call(request).await?;
    let code = response
        .markers
        .first()
        .and_then(|m| m.topics.first())
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code);
    check(&format!("aborting on {topic}-{partition}"), code, None)?;
    out.emit(
        &json!({"topic": topic, "partition": partition, "producer_id": producer.producer_id.0, "start_offset": start_offset, "result": "aborted"}),
        &[(
            "",
            vec!["TOPIC", "PARTITION", "PRODUCER_ID", "START_OFFSET", "RESULT"],
            vec![vec![
                topic.to_string(),
                partition.to_string(),
                producer.producer_id.0.to_string(),
                start_offset.to_string(),
                "aborted".into(),
            ]],
        )],
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(
    client: &mut Client,
    states: &[String],
    duration_ms: Option<i64>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    client.metadata(Some(&[])).await?;
    let mut rows = Vec::new();
    // Transactions live on their coordinators: ask every broker, as Kafka's tools do.
    for id in client.broker_ids() {
        let request = ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|x| s(x)).collect())
            .with_duration_filter(duration_ms.unwrap_or(-1));
        let response = client.broker(id).await?.call(request).await?;
        check(
            &format!("ListTransactions on broker {id}"),
            response.error_code,
            None,
        )?;
        if let Some(unknown) = response.unknown_state_filters.first() {
            anyhow::bail!("unknown transaction state {unknown:?}");
        }
        for t in response.transaction_states {
            rows.push((
                t.transactional_id.0.to_string(),
                id,
                t.producer_id.0,
                t.transaction_state.to_string(),
            ));
        }
    }
    rows.sort();
    out.emit(
        &json!(rows.iter().map(|(t, c, p, st)| json!({"transactional_id": t, "coordinator": c, "producer_id": p, "state": st})).collect::<Vec<_>>()),
        &[(
            "",
            vec!["TRANSACTIONAL_ID", "COORDINATOR", "PRODUCER_ID", "STATE"],
            rows.iter()
                .map(|(t, c, p, st)| vec![t.clone(), c.to_string(), p.to_string(), st.clone()])
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}

async fn describe(
    client: &mut Client,
    transactional_id: &str,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s(transactional_id))]);
    let response = client
        .transaction_coordinator(transactional_id)
        .await?
        .call(request)
        .await?;
    let t = response
        .transaction_states
        .into_iter()
        .next()
        .context("empty DescribeTransactions answer")?;
    check(
        &format!("transactional id {transactional_id}"),
        t.error_code,
        None,
    )?;
    let partitions: Vec<String> = t
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(move |p| format!("{}-{p}", topic.topic.0))
        })
        .collect();
    let row = vec![
        transactional_id.to_string(),
        t.transaction_state.to_string(),
        t.producer_id.0.to_string(),
        t.producer_epoch.to_string(),
        t.transaction_timeout_ms.to_string(),
        time(t.transaction_start_time_ms),
        if partitions.is_empty() {
            "-".into()
        } else {
            partitions.join(",")
        },
    ];
    out.emit(
        &json!({
            "transactional_id": transactional_id,
            "state": t.transaction_state.to_string(),
            "producer_id": t.producer_id.0,
            "producer_epoch": t.producer_epoch,
            "transaction_timeout_ms": t.transaction_timeout_ms,
            "transaction_start_time_ms": t.transaction_start_time_ms,
            "partitions": partitions,
        }),
        &[(
            "",
            vec![
                "TRANSACTIONAL_ID",
                "STATE",
                "PRODUCER_ID",
                "EPOCH",
                "TIMEOUT_MS",
                "STARTED",
                "PARTITIONS",
            ],
            vec![row],
        )],
    );
    Ok(ExitCode::SUCCESS)
}

async fn describe_producers(
    client: &mut Client,
    topic: &str,
    partition: i32,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let (leader, active) = producers_of(client, topic, partition).await?;
    let mut producers: Vec<_> = active.iter().collect();
    producers.sort_by_key(|x| x.producer_id.0);
    out.emit_rows(
        "",
        vec![
            "PRODUCER_ID",
            "EPOCH",
            "LAST_SEQUENCE",
            "LAST_TIMESTAMP",
            "COORDINATOR_EPOCH",
            "CURRENT_TXN_START_OFFSET",
        ],
        producers.iter().map(|x| {
            (
                vec![
                    x.producer_id.0.to_string(),
                    x.producer_epoch.to_string(),
                    x.last_sequence.to_string(),
                    time(x.last_timestamp),
                    x.coordinator_epoch.to_string(),
                    if x.current_txn_start_offset < 0 {
                        "-".into()
                    } else {
                        x.current_txn_start_offset.to_string()
                    },
                ],
                json!({
                    "producer_id": x.producer_id.0,
                    "producer_epoch": x.producer_epoch,
                    "last_sequence": x.last_sequence,
                    "last_timestamp": x.last_timestamp,
                    "coordinator_epoch": x.coordinator_epoch,
                    "current_txn_start_offset": x.current_txn_start_offset,
                }),
            )
        }),
        |objects| json!({"topic": topic, "partition": partition, "leader": leader, "producers": objects}),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(-1), "-");
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(time(1_796_515_200_123), "2026-12-06T00:00:00Z");
    }
}
