//! Last stable offsets: sampled every second for every partition of both topics, next to the
//! high watermark, so the checker can see an LSO that stops moving while records pile up
//! behind it (a transaction nobody ends); and the waits, after the run, until nothing is open.
//!
//! librdkafka's `query_watermark_offsets` sends ListOffsets with the client's
//! `isolation.level` (`rd_kafka_ListOffsetsRequest` takes `rk_conf.isolation_level`), so the
//! "high" answer of a read_committed client is the last stable offset and that of a
//! read_uncommitted client the high watermark.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::history::Recorder;
use crate::history::eos::{LsoSample, Topic};
use crate::workload::ErrorCountingContext;

use super::{Doing, EosSpec, Isolation, plain_consumer, sleep_until};

const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Two clients, one per isolation level, asking for end offsets.
pub struct Ends {
    committed: BaseConsumer<ErrorCountingContext>,
    uncommitted: BaseConsumer<ErrorCountingContext>,
}

impl Ends {
    pub fn new(spec: &EosSpec) -> anyhow::Result<Ends> {
        Ok(Ends {
            committed: plain_consumer(spec, "lso", Isolation::ReadCommitted)?,
            uncommitted: plain_consumer(spec, "hw", Isolation::ReadUncommitted)?,
        })
    }

    /// The last stable offset (read_committed) or high watermark of one partition.
    pub fn end(&self, isolation: Isolation, topic: &str, partition: i32) -> Option<i64> {
        let client = match isolation {
            Isolation::ReadCommitted => &self.committed,
            Isolation::ReadUncommitted => &self.uncommitted,
        };
        client
            .fetch_watermarks(topic, partition, CALL_TIMEOUT)
            .ok()
            .map(|(_, high)| high)
    }

    /// (LSO, high watermark) of one partition, asked in that order.
    pub fn both(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let lso = self.end(Isolation::ReadCommitted, topic, partition)?;
        let high = self.end(Isolation::ReadUncommitted, topic, partition)?;
        Some((lso, high))
    }
}

/// Samples until `stop` is set.
pub fn run(
    spec: Arc<EosSpec>,
    _: u32,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    _: Doing,
) -> anyhow::Result<()> {
    let ends = Ends::new(&spec)?;
    let mut next = Instant::now();
    while sleep_until(next, &stop) {
        next = (next + SAMPLE_EVERY).max(Instant::now());
        for topic in spec.topics() {
            for partition in 0..spec.partitions {
                let at_us = recorder.now_us();
                if let Some((lso, high)) = ends.both(spec.topic_name(topic), partition) {
                    recorder.lock().eos.lso.push(LsoSample {
                        topic,
                        partition,
                        lso,
                        high,
                        at_us,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Waits until every partition of `topic` has its LSO at its high watermark (nothing open);
/// returns the LSOs then, or what is still open when `timeout` runs out.
pub fn settle(
    ends: &Ends,
    spec: &EosSpec,
    topic: Topic,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut open = Vec::new();
        let mut settled = BTreeMap::new();
        for partition in 0..spec.partitions {
            match ends.both(spec.topic_name(topic), partition) {
                Some((lso, high)) if lso >= high => {
                    settled.insert(partition, lso);
                }
                Some((lso, high)) => open.push(format!("{partition}: LSO {lso} < HW {high}")),
                None => open.push(format!("{partition}: no answer")),
            }
        }
        if open.is_empty() {
            return Ok(settled);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} topic not settled after {:.0} s ({})",
                topic.name(),
                timeout.as_secs_f64(),
                open.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
