//! The transform stage: one member of a consume-transform-produce group. It reads the input
//! topic read_committed, and for each batch runs one transaction holding one output record
//! per input record (same partition number in the output topic; the value names the input
//! record and where it was read) and the input offsets (`send_offsets_to_transaction` with the
//! consumer's group metadata, KIP-447), so output and progress commit together or not at all.
//!
//! After anything but a commit (an abort on purpose every `abort_every`-th transaction, an
//! abortable error) the member rewinds to the group's committed offsets and does the work
//! again; after a fatal error it builds its producer again first (whose `init_transactions`
//! settles the old one's transaction, so the committed offsets it then reads are final). A
//! rebalance while a batch was being collected voids the batch the same way. Partitions whose
//! position moved without records to transform (past aborted records and markers) get an
//! offsets-only transaction now and then, so the group's committed offsets reach the end of
//! the input and the drain can tell that everything was processed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::history::Recorder;
use crate::history::eos::{
    EosValue, InputRef, Outcome, Read, Reader, RecordKey, Stage, Topic, TxnId,
};
use crate::workload::ClientErrors;

use super::txn::{self, Class, TxnProducer};
use super::{Doing, EosSpec, ready_producer};

/// At most this many input records per transaction...
const MAX_BATCH: usize = 100;
/// ...collected for at most this long.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// An offsets-only transaction at most this often.
const IDLE_COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long past a transaction's deadline a client call may run before it counts as stuck.
const STUCK_MARGIN: Duration = Duration::from_secs(5);
/// Bound on OffsetFetch and seek when rewinding.
const REWIND_TIMEOUT: Duration = Duration::from_secs(15);

struct MemberContext {
    /// Set by every rebalance callback; the loop clears it before collecting a batch.
    rebalanced: AtomicBool,
    errors: ClientErrors,
}

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.note(&error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Relaxed);
    }
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Relaxed);
    }
}

type MemberConsumer = BaseConsumer<MemberContext>;

fn member_consumer(spec: &EosSpec, member: u32) -> anyhow::Result<MemberConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("client.id", format!("shoal-chaos-transform-{member}"))
        .set("group.id", spec.group())
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    spec.client.apply(&mut config);
    let consumer: MemberConsumer = config
        .create_with_context(MemberContext {
            rebalanced: AtomicBool::new(false),
            errors: ClientErrors::default(),
        })
        .context("creating a transform member")?;
    consumer
        .subscribe(&[&spec.input_topic])
        .context("subscribing a transform member")?;
    Ok(consumer)
}

/// Puts every assigned partition back at the group's committed offset (the start when none).
fn rewind(consumer: &MemberConsumer) -> Result<(), String> {
    let assignment = consumer
        .assignment()
        .map_err(|e| format!("assignment: {e}"))?;
    if assignment.count() == 0 {
        return Ok(());
    }
    let committed = consumer
        .committed_offsets(assignment, REWIND_TIMEOUT)
        .map_err(|e| format!("committed offsets: {e}"))?;
    let mut to = TopicPartitionList::new();
    for e in committed.elements() {
        if let Err(error) = e.error() {
            return Err(format!("committed offset of {}: {error}", e.partition()));
        }
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        to.add_partition_offset(e.topic(), e.partition(), offset)
            .map_err(|e| format!("seek list: {e}"))?;
    }
    let sought = consumer
        .seek_partitions(to, REWIND_TIMEOUT)
        .map_err(|e| format!("seek: {e}"))?;
    for e in sought.elements() {
        if let Err(error) = e.error() {
            return Err(format!("seek of {}: {error}", e.partition()));
        }
    }
    Ok(())
}

/// The next offset to read of every assigned partition the consumer has a position for.
fn positions(consumer: &MemberConsumer) -> BTreeMap<i32, i64> {
    let Ok(tpl) = consumer.position() else {
        return BTreeMap::new();
    };
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

struct Input {
    partition: i32,
    offset: i64,
    value: EosValue,
}

/// Up to `MAX_BATCH` input records within `BATCH_WINDOW`, each recorded as read.
fn collect(
    consumer: &MemberConsumer,
    member: u32,
    recorder: &Recorder,
    stop: &AtomicBool,
) -> Vec<Input> {
    let started = Instant::now();
    let mut batch = Vec::new();
    while batch.len() < MAX_BATCH && !stop.load(Ordering::Relaxed) {
        let left = BATCH_WINDOW.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left) {
            Some(Ok(m)) => {
                let value = m
                    .payload()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<EosValue>().ok());
                let Some(value) = value else {
                    recorder.lock().eos.foreign += 1;
                    continue;
                };
                let input = Input {
                    partition: m.partition(),
                    offset: m.offset(),
                    value,
                };
                let at_us = recorder.now_us();
                recorder.lock().eos.reads.push(Read {
                    reader: Reader::Transform(member),
                    topic: Topic::Input,
                    partition: input.partition,
                    offset: input.offset,
                    value,
                    at_us,
                });
                batch.push(input);
            }
            // Transient consumer errors (a broker down) are the client's to retry.
            Some(Err(_)) => {}
            None if !batch.is_empty() => break,
            None => {}
        }
    }
    batch
}

/// How `send_offsets` went.
enum Sent {
    Done,
    Failed(String),
    /// The call did not return in time; the producer is given up.
    Stuck(String),
}

/// `send_offsets_to_transaction` with the consumer's current group metadata, retried while
/// retriable, on a helper thread waited for at most the transaction timeout (plus a margin).
///
/// librdkafka 2.12 can block in `send_offsets_to_transaction` far past its timeout (ten minutes
/// were seen) when the group coordinator's broker dropped out of the metadata for a moment (a
/// fenced broker, after a kill or a restart) while it was cached as coordinator: the broker
/// handle is decommissioned and nothing wakes the coordinator lookup again (librdkafka issues
/// #5511 and #5456, fix proposed in #5512). Kafka leaves fenced brokers out of its metadata
/// too, so this is the client's. An application can only give such a producer up: the helper
/// thread is left to return whenever it does, and the caller builds a new producer, whose
/// `init_transactions` fences the stuck one.
fn send_offsets(
    producer: &Arc<TxnProducer>,
    consumer: &MemberConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    deadline: Instant,
    txn_timeout: Duration,
) -> Sent {
    let Some(metadata) = consumer.group_metadata() else {
        return Sent::Failed("no group metadata".to_string());
    };
    let mut tpl = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            return Sent::Failed(format!("offset list: {e}"));
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let helper = producer.clone();
    let spawned = std::thread::Builder::new()
        .name("send-offsets".into())
        .spawn(move || {
            let result = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match helper.send_offsets_to_transaction(
                    &tpl,
                    &metadata,
                    left.min(Duration::from_secs(10)),
                ) {
                    Ok(()) => break Ok(()),
                    Err(e)
                        if txn::classify(&e) == Class::Retriable && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => break Err(format!("send_offsets_to_transaction: {e}")),
                }
            };
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Sent::Failed(format!("starting the send_offsets thread: {e}"));
    }
    // librdkafka caps the call at what is left of the transaction timeout, after which the
    // coordinator aborts the transaction anyway: past that (and a margin) it is stuck.
    let bound = deadline
        .saturating_duration_since(Instant::now())
        .min(txn_timeout)
        + STUCK_MARGIN;
    match rx.recv_timeout(bound) {
        Ok(Ok(())) => Sent::Done,
        Ok(Err(e)) => Sent::Failed(e),
        Err(_) => Sent::Stuck(format!(
            "send_offsets_to_transaction did not return within {:.0} s (librdkafka #5511); \
             producer given up",
            bound.as_secs_f64()
        )),
    }
}

/// Transforms until `stop` is set; the last transaction is always ended before returning.
pub fn run(
    spec: Arc<EosSpec>,
    member: u32,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    doing: Doing,
) -> anyhow::Result<()> {
    let transactional_id = spec.transform_txn_id(member);
    let mut producer: Option<Arc<TxnProducer>> = None;
    let mut consumer: Option<MemberConsumer> = None;
    let mut rewind_needed = false;
    // The offsets this member's last committed transaction sent (since its last rewind).
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_txn = Instant::now();
    let mut txn: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(p) = producer.as_ref() else {
            producer =
                ready_producer(&spec, &transactional_id, &recorder, &stop, &doing)?.map(Arc::new);
            rewind_needed = true;
            continue;
        };
        let Some(c) = consumer.as_ref() else {
            doing.set("creating the consumer");
            consumer = Some(member_consumer(&spec, member)?);
            // A new member starts at the committed offsets when it is assigned partitions.
            rewind_needed = false;
            committed.clear();
            continue;
        };
        if rewind_needed {
            doing.set("rewinding to the committed offsets");
            if let Err(e) = rewind(c) {
                eprintln!("shoal-chaos: transform member {member}: rewind: {e}; rebuilding");
                consumer = None;
                recorder.lock().eos.client_rebuilds += 1;
                continue;
            }
            rewind_needed = false;
            committed.clear();
        }
        doing.set("poll");
        c.context().rebalanced.store(false, Ordering::Relaxed);
        let batch = collect(c, member, &recorder, &stop);
        if c.context().rebalanced.swap(false, Ordering::Relaxed) {
            // Records of partitions that may have moved: do them again from the commits.
            rewind_needed = true;
            continue;
        }
        let offsets = positions(c);
        if batch.is_empty() {
            let moved = offsets.iter().any(|(p, o)| committed.get(p) != Some(o));
            if !moved || last_txn.elapsed() < IDLE_COMMIT_EVERY {
                continue;
            }
        }
        last_txn = Instant::now();
        doing.set("begin_transaction");
        if let Err(e) = p.begin_transaction() {
            eprintln!("shoal-chaos: {transactional_id}: begin_transaction: {e}; rebuilding");
            producer = None;
            recorder.lock().eos.client_rebuilds += 1;
            continue;
        }
        let id = TxnId {
            stage: Stage::Transform,
            writer: member,
            txn,
        };
        txn += 1;
        let began_us = recorder.now_us();
        let deadline = Instant::now() + spec.txn_deadline();
        let on_purpose = !batch.is_empty() && spec.aborts_on_purpose(id.txn);
        let count = batch.len() as u32;
        let mut failed = None;
        doing.set("send");
        for (index, input) in batch.iter().enumerate() {
            let value = EosValue {
                key: RecordKey {
                    txn: id,
                    index: index as u32,
                },
                count,
                input: Some(InputRef {
                    key: input.value.key,
                    partition: input.partition,
                    offset: input.offset,
                }),
            }
            .to_string();
            if let Err(e) = txn::send(p, &spec.output_topic, input.partition, &value, deadline) {
                failed = Some(e);
                break;
            }
        }
        let mut stuck = None;
        if failed.is_none() {
            doing.set("send_offsets_to_transaction");
            let txn_timeout = Duration::from_millis(u64::from(spec.transaction_timeout_ms));
            match send_offsets(p, c, &spec.input_topic, &offsets, deadline, txn_timeout) {
                Sent::Done => {}
                Sent::Failed(e) => failed = Some(e),
                Sent::Stuck(e) => stuck = Some(e),
            }
        }
        let end = if let Some(e) = stuck {
            recorder.lock().eos.stuck_calls += 1;
            txn::End {
                outcome: Outcome::Unknown,
                error: Some(e),
                rebuild: true,
            }
        } else if failed.is_some() || on_purpose {
            doing.set("abort_transaction");
            txn::abort(p, deadline, failed)
        } else {
            doing.set("commit_transaction");
            txn::commit(p, deadline)
        };
        if end.outcome == Outcome::Committed {
            committed = offsets.clone();
        } else {
            rewind_needed = true;
        }
        let begun = txn::Begun {
            id,
            records: count,
            abort_on_purpose: on_purpose,
            began_us,
            offsets: offsets.into_iter().collect(),
        };
        txn::record_end(&recorder, &transactional_id, &mut producer, begun, end);
    }
    Ok(())
}
