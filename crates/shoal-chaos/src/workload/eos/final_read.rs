//! After the run: every partition of both topics read from its start to its end by a reader
//! outside any group, once read_committed (to the last stable offset, which equals the high
//! watermark once nothing is open) and once read_uncommitted (to the high watermark). The
//! first is what the checker judges; the second shows the aborted records are in the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::history::eos::{EosValue, Stored, Topic};

use super::lso::Ends;
use super::{EosSpec, Isolation, plain_consumer};

/// Every record below each partition's end at `isolation`, and how many values were not eos
/// records. Fails when the ends cannot be had or the read does not reach them within `timeout`
/// (the checker would otherwise call unread records lost).
pub fn read(
    spec: &EosSpec,
    isolation: Isolation,
    timeout: Duration,
) -> anyhow::Result<(Vec<Stored>, u64)> {
    let deadline = Instant::now() + timeout;
    let ends = Ends::new(spec)?;
    let mut until: BTreeMap<(Topic, i32), i64> = BTreeMap::new();
    for topic in spec.topics() {
        for partition in 0..spec.partitions {
            // A leader elected moments ago answers OFFSET_NOT_AVAILABLE for a while.
            let end = loop {
                match ends.end(isolation, spec.topic_name(topic), partition) {
                    Some(end) => break end,
                    None if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    None => bail!(
                        "no end offset for {}/{partition} ({isolation:?})",
                        spec.topic_name(topic)
                    ),
                }
            };
            until.insert((topic, partition), end);
        }
    }
    let consumer = plain_consumer(spec, "final", isolation)?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in until.keys() {
        tpl.add_partition_offset(spec.topic_name(*topic), *partition, Offset::Beginning)
            .context("building the final read's assignment")?;
    }
    consumer
        .assign(&tpl)
        .context("assigning the final read's partitions")?;

    let mut stored = Vec::new();
    let mut foreign = 0u64;
    let mut last_check = Instant::now();
    loop {
        let polled = consumer.poll(Duration::from_millis(200));
        let idle = polled.is_none();
        match polled {
            Some(Ok(m)) => {
                if let Some(topic) = spec.topic_of(m.topic())
                    && until
                        .get(&(topic, m.partition()))
                        .is_some_and(|end| m.offset() < *end)
                {
                    match m
                        .payload()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<EosValue>().ok())
                    {
                        Some(value) => stored.push(Stored {
                            topic,
                            partition: m.partition(),
                            offset: m.offset(),
                            value,
                        }),
                        None => foreign += 1,
                    }
                }
            }
            Some(Err(e)) => bail!("final read ({isolation:?}): {e}"),
            None => {}
        }
        if idle || last_check.elapsed() >= Duration::from_millis(200) {
            last_check = Instant::now();
            let behind = behind(&consumer, spec, &until);
            if behind.is_empty() {
                return Ok((stored, foreign));
            }
            if Instant::now() >= deadline {
                bail!(
                    "final read ({isolation:?}) incomplete after {:.0} s ({})",
                    timeout.as_secs_f64(),
                    behind.join(", ")
                );
            }
        }
    }
}

/// The partitions whose position is still below their end.
fn behind(
    consumer: &rdkafka::consumer::BaseConsumer<crate::workload::ErrorCountingContext>,
    spec: &EosSpec,
    until: &BTreeMap<(Topic, i32), i64>,
) -> Vec<String> {
    let positions: BTreeMap<(Topic, i32), i64> = consumer
        .position()
        .map(|tpl| {
            tpl.elements()
                .iter()
                .filter_map(|e| match (spec.topic_of(e.topic()), e.offset()) {
                    (Some(topic), Offset::Offset(o)) => Some(((topic, e.partition()), o)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    until
        .iter()
        .filter(|(_, end)| **end > 0)
        .filter_map(|(key, end)| {
            let at = positions.get(key).copied().unwrap_or(0);
            (at < *end).then(|| format!("{} {}: at {at} of {end}", key.0.name(), key.1))
        })
        .collect()
}
