//! `shoal-bench consume`: read a topic from the beginning of every partition, either assigned
//! directly or as a consumer group member (`--group`: the coordinator's join and commit costs
//! are then measured too).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::cli::ConsumeArgs;
use crate::client::{QuietContext, apply_overrides, base_config, wait_for_topic};
use crate::summary::{GroupTiming, Summary, cpu_since, process_cpu_time};

/// Longest wait for the first assignment of a `--group` run (joins wait out the broker's
/// `group.initial.rebalance.delay.ms`, 3 s by default).
const MAX_JOIN_WAIT: Duration = Duration::from_secs(60);

pub fn consumer_config(args: &ConsumeArgs) -> ClientConfig {
    let mut c = base_config(&args.common);
    // librdkafka refuses assign() without a group.id ("Local: Unknown group"), but with
    // assign() + explicit start offsets + no commits the group is never joined and fetching
    // does not depend on a coordinator; a unique id keeps runs independent.
    match &args.group {
        Some(group) => c
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "true"),
        None => c
            .set("group.id", format!("shoal-bench-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false"),
    };
    c.set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "16777216")
        .set("fetch.wait.max.ms", "100")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "524288");
    apply_overrides(&mut c, &args.common);
    c
}

pub fn run(args: &ConsumeArgs) -> anyhow::Result<Summary> {
    let ctx = QuietContext::default();
    let client_errors = ctx.errors.clone();
    let consumer: BaseConsumer<QuietContext> = consumer_config(args)
        .create_with_context(ctx)
        .context("creating consumer")?;
    let partitions = wait_for_topic(
        consumer.client(),
        &args.common.brokers,
        &args.topic,
        Duration::from_secs_f64(args.common.connect_timeout),
        || client_errors.get(),
    )?;

    let cpu0 = process_cpu_time();
    let mut join = None;
    // Records a group member receives while its first assignment is being detected.
    let mut early: Vec<(i32, u64)> = Vec::new();
    if args.group.is_some() {
        consumer
            .subscribe(&[args.topic.as_str()])
            .context("subscribe")?;
        let asked = Instant::now();
        loop {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
                let size = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                early.push((m.partition(), size as u64));
            }
            if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                join = Some(asked.elapsed());
                break;
            }
            if asked.elapsed() > MAX_JOIN_WAIT {
                anyhow::bail!(
                    "no partitions assigned in group {:?} within {MAX_JOIN_WAIT:?}",
                    args.group
                );
            }
        }
    } else {
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for &p in &partitions {
            tpl.add_partition_offset(&args.topic, p, Offset::Beginning)
                .context("building assignment")?;
        }
        consumer.assign(&tpl).context("assign")?;
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.max_seconds);
    let stop_at_eof = !args.no_stop_at_eof;
    // Indexed by partition id; `None` for ids that are not assigned.
    let max_id = partitions.iter().copied().max().unwrap_or(0).max(0) as usize;
    let mut at_eof: Vec<Option<bool>> = vec![None; max_id + 1];
    for &p in &partitions {
        at_eof[p as usize] = Some(false);
    }
    let mut eof_count = 0usize;
    let (mut records, mut bytes, mut errors) = (early.len() as u64, 0u64, 0u64);
    bytes += early.iter().map(|(_, b)| b).sum::<u64>();
    let mut first_error = None;
    let mut stopped_by = None;
    let mut polls_since_clock = 0u32;

    while records < args.records {
        polls_since_clock += 1;
        if polls_since_clock >= 256 {
            polls_since_clock = 0;
            if Instant::now() >= deadline {
                stopped_by = Some("time limit");
                break;
            }
        }
        // A zero timeout spares librdkafka a clock read per message while records flow.
        let polled = match consumer.poll(Duration::ZERO) {
            None => {
                polls_since_clock = 256;
                consumer.poll(Duration::from_millis(100))
            }
            some => some,
        };
        match polled {
            None => {}
            Some(Ok(m)) => {
                records += 1;
                bytes +=
                    (m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len)) as u64;
                if let Some(Some(e)) = at_eof.get_mut(m.partition() as usize)
                    && *e
                {
                    *e = false;
                    eof_count -= 1;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(Some(e)) = at_eof.get_mut(p as usize)
                    && !*e
                {
                    *e = true;
                    eof_count += 1;
                }
                if stop_at_eof && eof_count == partitions.len() {
                    stopped_by = Some("end of partitions");
                    break;
                }
            }
            Some(Err(e)) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let elapsed = start.elapsed();
    let group = match join {
        Some(join) => {
            let committing = Instant::now();
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                errors += 1;
                first_error.get_or_insert_with(|| format!("final commit: {e}"));
            }
            Some(GroupTiming {
                join,
                final_commit: committing.elapsed(),
            })
        }
        None => None,
    };
    if records == 0 && args.records > 0 && stopped_by != Some("end of partitions") {
        anyhow::bail!(
            "no records read from topic {:?} within {:.1} s{}",
            args.topic,
            elapsed.as_secs_f64(),
            first_error
                .or_else(|| client_errors.get())
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    Ok(Summary {
        op: "consume",
        topic: args.topic.clone(),
        records,
        bytes,
        elapsed,
        errors,
        undelivered: 0,
        stopped_by,
        first_error,
        latency: None,
        client_cpu: cpu_since(cpu0),
        group,
        txn: None,
    })
}
