//! The observer: a read_committed consumer outside any group, assigned every partition of both
//! topics from the start, recording each record it is handed and when. It is how an aborted
//! read by an ordinary consumer, or a visible record later truncated away, gets caught while
//! it happens rather than only in the final read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::history::Recorder;
use crate::history::eos::{EosValue, Read, Reader};

use super::{Doing, EosSpec, Isolation, plain_consumer};

/// Reads until `stop` is set.
pub fn run(
    spec: Arc<EosSpec>,
    _: u32,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    _: Doing,
) -> anyhow::Result<()> {
    let consumer = plain_consumer(&spec, "observer", Isolation::ReadCommitted)?;
    let mut tpl = TopicPartitionList::new();
    for topic in spec.topics() {
        for p in 0..spec.partitions {
            tpl.add_partition_offset(spec.topic_name(topic), p, Offset::Beginning)
                .context("building the observer's assignment")?;
        }
    }
    consumer
        .assign(&tpl)
        .context("assigning the observer's partitions")?;
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let Some(topic) = spec.topic_of(m.topic()) else {
            continue;
        };
        let value = m
            .payload()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<EosValue>().ok());
        let at_us = recorder.now_us();
        let mut history = recorder.lock();
        match value {
            Some(value) => history.eos.reads.push(Read {
                reader: Reader::Observer,
                topic,
                partition: m.partition(),
                offset: m.offset(),
                value,
                at_us,
            }),
            None => history.eos.foreign += 1,
        }
    }
    Ok(())
}
