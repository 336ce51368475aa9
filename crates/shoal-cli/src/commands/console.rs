//! `shoalctl topic produce|consume`: the console producer and consumer, through librdkafka
//! (the partitioner, batching, compression and the group protocol are the client's business,
//! and users expect the same behaviour as kafka-console-producer / -consumer and kcat).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::cli::{ConsumeArgs, ProduceArgs};
use crate::commands::reset_offsets::parse_datetime;
use crate::output::Output;

/// Largest line the producer reads (a record larger than this is an error, not an OOM).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

fn config(brokers: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "shoalctl")
        .set("socket.connection.setup.timeout.ms", "10000");
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

pub fn produce(
    brokers: &str,
    properties: &[(String, String)],
    args: &ProduceArgs,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let producer: ThreadedProducer<DefaultProducerContext> = {
        let mut c = config(brokers, properties);
        c.set("acks", &args.acks)
            .set("compression.type", &args.compression)
            .set("linger.ms", "5")
            .set("message.max.bytes", (MAX_LINE_BYTES + 1024).to_string());
        for (k, v) in &args.client_config {
            c.set(k, v);
        }
        c.create().context("creating the producer")?
    };
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut line = Vec::new();
    let mut produced = 0u64;
    loop {
        line.clear();
        let n = std::io::Read::take(&mut reader, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_LINE_BYTES {
            bail!("a line of stdin is longer than {MAX_LINE_BYTES} bytes");
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let mut rest: &[u8] = &line;
        let mut headers = OwnedHeaders::new();
        for (k, v) in &args.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        if args.parse_headers {
            let tab = rest
                .iter()
                .position(|b| *b == b'\t')
                .context("--parse-headers: a line has no TAB after its headers")?;
            let text = std::str::from_utf8(&rest[..tab]).context("headers must be UTF-8")?;
            for pair in text.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once(':')
                    .with_context(|| format!("header {pair:?} must be key:value"))?;
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            rest = &rest[tab + 1..];
        }
        let (key, value): (Option<&[u8]>, &[u8]) = match &args.key_separator {
            Some(sep) => {
                let sep = sep.as_bytes();
                match rest.windows(sep.len().max(1)).position(|w| w == sep) {
                    Some(i) => (Some(&rest[..i]), &rest[i + sep.len()..]),
                    None => bail!(
                        "line {} has no key separator {:?}",
                        produced + 1,
                        String::from_utf8_lossy(sep)
                    ),
                }
            }
            None => (None, rest),
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&args.topic)
            .payload(value)
            .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("producing to {}: {e}", args.topic),
            }
        }
        produced += 1;
    }
    producer
        .flush(timeout * 3)
        .context("flushing: not every record was acknowledged in time")?;
    if producer.in_flight_count() > 0 {
        bail!(
            "{} records were not acknowledged",
            producer.in_flight_count()
        );
    }
    out.emit_stderr(
        &json!({"topic": args.topic, "produced": produced}),
        &format!("produced {produced} records to {}", args.topic),
    );
    Ok(ExitCode::SUCCESS)
}

fn render(format: &str, m: &BorrowedMessage<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(t)) => {
                chars.next();
                match t {
                    't' => out.extend_from_slice(m.topic().as_bytes()),
                    'p' => out.extend_from_slice(m.partition().to_string().as_bytes()),
                    'o' => out.extend_from_slice(m.offset().to_string().as_bytes()),
                    'T' => out.extend_from_slice(
                        m.timestamp()
                            .to_millis()
                            .unwrap_or(-1)
                            .to_string()
                            .as_bytes(),
                    ),
                    'k' => out.extend_from_slice(m.key().unwrap_or_default()),
                    'v' => out.extend_from_slice(m.payload().unwrap_or_default()),
                    'h' => {
                        let mut first = true;
                        if let Some(h) = m.headers() {
                            for header in h.iter() {
                                if !first {
                                    out.push(b',');
                                }
                                first = false;
                                out.extend_from_slice(header.key.as_bytes());
                                out.push(b'=');
                                out.extend_from_slice(header.value.unwrap_or_default());
                            }
                        }
                    }
                    '%' => out.push(b'%'),
                    other => {
                        out.push(b'%');
                        out.extend_from_slice(other.to_string().as_bytes());
                    }
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push(b'\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push(b'\t');
            }
            (c, _) => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out
}

fn as_json(m: &BorrowedMessage<'_>) -> serde_json::Value {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<serde_json::Value> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| json!({"key": h.key, "value": text(h.value)}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
        "timestamp": m.timestamp().to_millis(), "key": text(m.key()), "value": text(m.payload()),
        "headers": headers,
    })
}

pub fn consume(
    brokers: &str,
    properties: &[(String, String)],
    args: &ConsumeArgs,
    out: &Output,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| "shoalctl-console".to_string());
    let mut c = config(brokers, properties);
    for (k, v) in &args.client_config {
        c.set(k, v);
    }
    c.set("group.id", &group)
        .set("enable.partition.eof", "false")
        .set(
            "enable.auto.commit",
            if args.group.is_some() {
                "true"
            } else {
                "false"
            },
        )
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    let consumer: BaseConsumer = c.create().context("creating the consumer")?;
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic]).context("subscribing")?;
    } else {
        let md = consumer
            .fetch_metadata(Some(&args.topic), timeout)
            .with_context(|| format!("metadata for {}", args.topic))?;
        let t = md.topics().first().context("empty metadata")?;
        if let Some(e) = t.error() {
            bail!(
                "topic {}: {:?}",
                args.topic,
                rdkafka::types::RDKafkaErrorCode::from(e)
            );
        }
        let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        if let Some(p) = args.partition {
            if !partitions.contains(&p) {
                bail!(
                    "topic {} has no partition {p}: UNKNOWN_TOPIC_OR_PARTITION",
                    args.topic
                );
            }
            partitions = vec![p];
        }
        let start = if args.from_beginning {
            Offset::Beginning
        } else if let Some(o) = args.offset {
            Offset::Offset(o)
        } else {
            Offset::End
        };
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(&args.topic, *p, start)?;
        }
        if let Some(ts) = &args.from_timestamp {
            let ms = parse_datetime(ts)?;
            let mut by_time = TopicPartitionList::new();
            for p in &partitions {
                by_time.add_partition_offset(&args.topic, *p, Offset::Offset(ms))?;
            }
            tpl = consumer
                .offsets_for_times(by_time, timeout)
                .context("offsets for the timestamp")?;
        }
        consumer.assign(&tpl).context("assigning partitions")?;
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let mut seen = 0u64;
    let mut last = Instant::now();
    while args.count.is_none_or(|n| seen < n) {
        if args
            .idle_timeout_ms
            .is_some_and(|ms| last.elapsed() >= Duration::from_millis(ms))
        {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => bail!("consuming {}: {e}", args.topic),
            Some(Ok(m)) => {
                last = Instant::now();
                seen += 1;
                if out.json() {
                    writeln!(w, "{}", as_json(&m))?;
                } else {
                    w.write_all(&render(&args.format, &m))?;
                }
            }
        }
    }
    w.flush()?;
    if args.group.is_some() {
        // Commit what was printed before leaving the group.
        let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    }
    Ok(ExitCode::SUCCESS)
}
