//! After healing: one reader, outside any group, reads every partition from its log start to
//! its high watermark. This is the state the checker compares the acks against.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::client_settings::ClientSettings;
use crate::history::{Observed, RecordId};

/// High watermark per partition.
pub fn high_watermarks(
    brokers: &str,
    client: &ClientSettings,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer = reader(brokers, client, topic)?;
    let deadline = Instant::now() + timeout;
    let mut out = BTreeMap::new();
    for &p in partitions {
        // A leader elected moments ago answers OFFSET_NOT_AVAILABLE until its HW catches up
        // with its epoch start; ask again rather than take an error (or a stale HW) as final.
        let high = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match consumer.fetch_watermarks(topic, p, left.min(Duration::from_secs(5))) {
                Ok((_, high)) => break high,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("high watermark of {topic}/{p}"));
                }
            }
        };
        out.insert(p, high);
    }
    Ok(out)
}

fn reader(brokers: &str, client: &ClientSettings, topic: &str) -> anyhow::Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("shoal-chaos-reader-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    client
        .apply(&mut config)
        .create()
        .context("creating the final reader")
}

/// Every record below each partition's high watermark; fails when the read does not reach
/// them within `timeout` (the checker would otherwise call unread records lost).
pub fn read_all(
    brokers: &str,
    client: &ClientSettings,
    topic: &str,
    until: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> anyhow::Result<(Vec<Observed>, u64)> {
    let consumer = reader(brokers, client, topic)?;
    let mut tpl = TopicPartitionList::new();
    for &p in until.keys() {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .context("building the assignment")?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    let mut next: BTreeMap<i32, i64> = until.keys().map(|p| (*p, 0)).collect();
    let mut observed = Vec::new();
    let mut foreign = 0u64;
    let deadline = Instant::now() + timeout;
    let done = |next: &BTreeMap<i32, i64>| {
        until
            .iter()
            .all(|(p, hw)| next.get(p).is_some_and(|n| n >= hw))
    };
    while !done(&next) {
        if Instant::now() >= deadline {
            let behind: Vec<String> = until
                .iter()
                .filter(|(p, hw)| next.get(p).is_none_or(|n| n < hw))
                .map(|(p, hw)| format!("{p}: at {} of {hw}", next.get(p).copied().unwrap_or(0)))
                .collect();
            bail!(
                "final read incomplete after {:.0} s ({})",
                timeout.as_secs_f64(),
                behind.join(", ")
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let (p, offset) = (m.partition(), m.offset());
                if until.get(&p).is_some_and(|hw| offset < *hw) {
                    match m
                        .payload()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<RecordId>().ok())
                    {
                        Some(id) => observed.push(Observed {
                            id,
                            partition: p,
                            offset,
                        }),
                        None => foreign += 1,
                    }
                }
                next.insert(p, offset + 1);
            }
            Some(Err(e)) => bail!("final read: {e}"),
            None => {}
        }
    }
    Ok((observed, foreign))
}
