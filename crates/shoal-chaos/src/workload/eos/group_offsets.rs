//! The transform group's committed offsets, asked every second from outside the group
//! (OffsetFetch needs no membership), so the checker can see an offset that goes backwards.
//! The asking client reads read_committed, so librdkafka sets `require_stable`: while a
//! transaction's offsets are pending the broker answers UNSTABLE_OFFSET_COMMIT and librdkafka
//! asks again, so an answer never predates a commit that had returned before the question.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::history::Recorder;
use crate::history::eos::GroupOffsetSample;
use crate::workload::ErrorCountingContext;

use super::{Doing, EosSpec, Isolation, group_consumer, sleep_until};

const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The committed offset of each input partition that has one; `None` when the question failed.
pub fn fetch(
    consumer: &BaseConsumer<ErrorCountingContext>,
    spec: &EosSpec,
) -> Option<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..spec.partitions {
        tpl.add_partition(&spec.input_topic, p);
    }
    let answer = consumer.committed_offsets(tpl, CALL_TIMEOUT).ok()?;
    let mut out = BTreeMap::new();
    for e in answer.elements() {
        if e.error().is_err() {
            return None;
        }
        if let Offset::Offset(o) = e.offset() {
            out.insert(e.partition(), o);
        }
    }
    Some(out)
}

/// A client of the transform group that never joins it.
pub fn asker(spec: &EosSpec) -> anyhow::Result<BaseConsumer<ErrorCountingContext>> {
    group_consumer(spec, "offsets", Isolation::ReadCommitted)
}

/// Samples until `stop` is set.
pub fn run(
    spec: Arc<EosSpec>,
    _: u32,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    _: Doing,
) -> anyhow::Result<()> {
    let consumer = asker(&spec)?;
    let mut next = Instant::now();
    while sleep_until(next, &stop) {
        next = (next + SAMPLE_EVERY).max(Instant::now());
        let at_us = recorder.now_us();
        if let Some(offsets) = fetch(&consumer, &spec) {
            let mut history = recorder.lock();
            for (partition, offset) in offsets {
                history.eos.group_offsets.push(GroupOffsetSample {
                    partition,
                    offset,
                    at_us,
                });
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}
