//! One consumer group member: reads, records what it was handed, commits what it has read
//! every `commit_interval` and when partitions are taken away (Kafka's usual pattern: commit in
//! the revoke callback, so the next owner starts where this one stopped).
//!
//! Only commits that returned success are recorded: those are the ones Kafka promised to keep,
//! and the checker holds the group to them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::client_settings::ClientSettings;
use crate::history::{Commit, Consumed, RecordId, Recorder};

use super::ClientErrors;

pub struct GroupSpec {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub member: u32,
    pub commit_interval: Duration,
    pub client: ClientSettings,
}

struct Context {
    member: u32,
    topic: String,
    recorder: Recorder,
    /// Next offset to commit per partition: read but not yet committed.
    pending: Mutex<BTreeMap<i32, i64>>,
    errors: ClientErrors,
    commit_failures: Mutex<u64>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.note(&error, reason);
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let partitions: Vec<i32> = revoked.elements().iter().map(|e| e.partition()).collect();
            self.commit(consumer, Some(&partitions));
        }
    }
}

impl Context {
    /// Commits pending offsets (only of `only`'s partitions when given). Offsets of partitions
    /// being revoked are dropped on failure; others stay pending for the next try.
    fn commit(&self, consumer: &BaseConsumer<Self>, only: Option<&[i32]>) {
        let taken: BTreeMap<i32, i64> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match only {
                None => std::mem::take(&mut *pending),
                Some(partitions) => partitions
                    .iter()
                    .filter_map(|p| pending.remove(p).map(|o| (*p, o)))
                    .collect(),
            }
        };
        if taken.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in &taken {
            if tpl
                .add_partition_offset(&self.topic, *partition, Offset::Offset(*next))
                .is_err()
            {
                return;
            }
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                let at_us = self.recorder.now_us();
                let mut history = self.recorder.lock();
                for (partition, offset) in taken {
                    history.commits.push(Commit {
                        member: self.member,
                        partition,
                        offset,
                        at_us,
                    });
                }
            }
            Err(_) => {
                *self
                    .commit_failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) += 1;
                if only.is_none() {
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    for (partition, offset) in taken {
                        let entry = pending.entry(partition).or_insert(offset);
                        *entry = (*entry).max(offset);
                    }
                }
            }
        }
    }
}

pub struct MemberEnd {
    pub commit_failures: u64,
    /// Values that were not `producer:seq` (nothing else writes the topic, so this is 0).
    pub foreign: u64,
}

/// Consumes until `stop` is set, then commits and leaves the group.
pub fn run(
    spec: GroupSpec,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<MemberEnd> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("client.id", format!("shoal-chaos-member-{}", spec.member))
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    spec.client.apply(&mut config);
    let consumer: BaseConsumer<Context> = config
        .create_with_context(Context {
            member: spec.member,
            topic: spec.topic.clone(),
            recorder: recorder.clone(),
            pending: Mutex::new(BTreeMap::new()),
            errors: ClientErrors::default(),
            commit_failures: Mutex::new(0),
        })
        .context("creating a group member")?;
    consumer
        .subscribe(&[&spec.topic])
        .context("subscribing the group member")?;

    let mut foreign = 0u64;
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let id = message
                .payload()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<RecordId>().ok());
            match id {
                Some(id) => {
                    let at_us = recorder.now_us();
                    recorder.lock().consumed.push(Consumed {
                        member: spec.member,
                        id,
                        partition: message.partition(),
                        offset: message.offset(),
                        at_us,
                    });
                }
                None => foreign += 1,
            }
            consumer
                .context()
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(message.partition(), message.offset() + 1);
        }
        if last_commit.elapsed() >= spec.commit_interval {
            consumer.context().commit(&consumer, None);
            last_commit = Instant::now();
        }
    }
    consumer.context().commit(&consumer, None);
    consumer.unsubscribe();
    let commit_failures = *consumer
        .context()
        .commit_failures
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Ok(MemberEnd {
        commit_failures,
        foreign,
    })
}
