//! `shoal-bench produce`: fixed-size records, per-record latency send -> delivery report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer, ProducerContext, PurgeConfig,
};

use crate::cli::{ProduceArgs, ProducerMode};
use crate::client::{ErrorSlot, apply_overrides, base_config, lock, wait_for_topic};
use crate::summary::{Percentiles, Summary, cpu_since, new_latency_histogram, process_cpu_time};

/// Number of distinct pre-built payloads cycled through (so compression sees some variety).
pub(crate) const PAYLOAD_POOL: usize = 64;

/// librdkafka producer configuration for the run.
pub fn producer_config(args: &ProduceArgs) -> ClientConfig {
    let mut c = base_config(&args.common);
    c.set("acks", args.acks.as_config())
        .set("linger.ms", format!("{}", args.linger_ms))
        .set("compression.type", args.compression.as_config())
        .set("queue.buffering.max.messages", args.max_queued.to_string())
        // librdkafka's maximum: bound the queue by message count only.
        .set("queue.buffering.max.kbytes", "2147483647")
        .set("message.timeout.ms", "30000")
        // Only failed deliveries need their message back; successes are counted.
        .set("delivery.report.only.error", "false");
    if let Some(b) = args.batch_size {
        c.set("batch.size", b.to_string());
    }
    apply_overrides(&mut c, &args.common);
    c
}

/// Pseudo-random printable payloads (xorshift), like kafka-producer-perf-test's.
pub fn make_payloads(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b'A' + (x % 26) as u8
                })
                .collect()
        })
        .collect()
}

/// What the delivery reports said so far (`produce-txn` reads it too).
pub(crate) struct DeliveryState {
    pub(crate) hist: Histogram<u64>,
    pub(crate) delivered: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) last_delivery_ns: u64,
    /// Deliveries since the clock was last read (see [`CLOCK_EVERY`]).
    since_clock: u32,
}

/// Reading the clock costs ~15 % of the client's CPU on this VM when done for every record,
/// so send and delivery times are read once per this many records: timestamps are shared by
/// neighbouring records and off by at most the few microseconds they take to process.
pub(crate) const CLOCK_EVERY: u32 = 16;

/// Receives delivery reports; the opaque of each record is its send time in ns since `base`.
pub struct BenchContext {
    base: Instant,
    /// Read the clock once per this many deliveries ([`CLOCK_EVERY`]), and for the first
    /// delivery of a record sent after the last read.
    clock_every: u32,
    state: Mutex<DeliveryState>,
    pub(crate) client_error: ErrorSlot,
}

impl BenchContext {
    pub(crate) fn new(base: Instant) -> anyhow::Result<Self> {
        Ok(BenchContext {
            base,
            clock_every: CLOCK_EVERY,
            state: Mutex::new(DeliveryState {
                hist: new_latency_histogram()?,
                delivered: 0,
                errors: 0,
                first_error: None,
                last_delivery_ns: 0,
                since_clock: CLOCK_EVERY,
            }),
            client_error: ErrorSlot::default(),
        })
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, DeliveryState> {
        lock(&self.state)
    }

    fn record(&self, sent_ns: u64, result: Result<(), String>) {
        let mut st = lock(&self.state);
        st.since_clock += 1;
        // A record sent after the last read belongs to a later burst (the next transaction of
        // `produce-txn`, after a pause): the time read for the previous burst is stale.
        if st.since_clock >= self.clock_every || sent_ns > st.last_delivery_ns {
            st.since_clock = 0;
            st.last_delivery_ns = self.now_ns();
        }
        let now = st.last_delivery_ns.max(sent_ns);
        match result {
            Ok(()) => {
                st.delivered += 1;
                st.hist
                    .saturating_record((now.saturating_sub(sent_ns) / 1000).max(1));
            }
            Err(e) => {
                st.errors += 1;
                if st.first_error.is_none() {
                    st.first_error = Some(e);
                }
            }
        }
    }
}

impl ClientContext for BenchContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.client_error.set(&error, reason);
    }
}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        self.record(
            sent_ns as u64,
            result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string()),
        );
    }
}

pub(crate) fn is_queue_full(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    )
}

pub fn run(args: &ProduceArgs) -> anyhow::Result<Summary> {
    match args.mode {
        ProducerMode::Thread | ProducerMode::Inline => run_base(args),
        ProducerMode::Future if args.producers > 1 => {
            bail!("--mode future drives one producer; --producers needs inline or thread")
        }
        ProducerMode::Future => run_future(args),
    }
}

fn run_base(args: &ProduceArgs) -> anyhow::Result<Summary> {
    let base = Instant::now();
    let parts = args.producers.max(1);
    if args.rate > 0 && args.rate < u64::from(parts) {
        bail!(
            "--rate {} is below one record/s per producer ({parts} producers)",
            args.rate
        );
    }
    let mut producers: Vec<BaseProducer<BenchContext>> = Vec::with_capacity(parts as usize);
    for _ in 0..parts {
        let producer: BaseProducer<BenchContext> = producer_config(args)
            .create_with_context(BenchContext::new(base)?)
            .context("creating producer")?;
        let ctx = producer.context();
        wait_for_topic(
            producer.client(),
            &args.common.brokers,
            &args.topic,
            Duration::from_secs_f64(args.common.connect_timeout),
            || ctx.client_error.get(),
        )?;
        producers.push(producer);
    }

    let payloads = make_payloads(args.record_size, PAYLOAD_POOL);
    let cpu0 = process_cpu_time();
    let start_ns = base.elapsed().as_nanos() as u64;
    let deadline_ns = start_ns.saturating_add(args.max_duration().as_nanos() as u64);
    let outcomes: Vec<SendOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(index, producer)| {
                let index = index as u32;
                let share = Share {
                    first_record: (0..index).map(|i| split(args.records, parts, i)).sum(),
                    records: split(args.records, parts, index),
                    rate_per_s: split(args.rate, parts, index),
                    start_ns,
                    deadline_ns,
                };
                let payloads = &payloads;
                s.spawn(move || send_share(args, producer, payloads, &share))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let client_cpu = cpu_since(cpu0);

    let mut hist = new_latency_histogram()?;
    let (mut sent, mut send_errors, mut delivered, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut last_delivery_ns = start_ns;
    let mut first_error = None;
    let mut stopped_by = None;
    let mut client_errors = None;
    for (producer, outcome) in producers.iter().zip(outcomes) {
        let ctx = producer.context();
        let st = lock(&ctx.state);
        hist.add(&st.hist)
            .map_err(|e| anyhow::anyhow!("merging latency histograms: {e:?}"))?;
        sent += outcome.sent;
        send_errors += outcome.send_errors;
        delivered += st.delivered;
        errors += st.errors;
        last_delivery_ns = last_delivery_ns.max(st.last_delivery_ns);
        first_error = first_error
            .or_else(|| st.first_error.clone())
            .or(outcome.first_send_error);
        stopped_by = stopped_by.or(outcome.stopped_by);
        client_errors = client_errors.or_else(|| ctx.client_error.get());
    }
    let per_record = args.record_size as u64 + if args.key_space.is_some() { 8 } else { 0 };
    let undelivered = (sent - send_errors).saturating_sub(delivered + errors);
    let first_error = first_error.or_else(|| (undelivered > 0).then_some(client_errors).flatten());
    Ok(Summary {
        op: "produce",
        topic: args.topic.clone(),
        records: delivered,
        bytes: delivered * per_record,
        elapsed: Duration::from_nanos(last_delivery_ns.saturating_sub(start_ns)),
        errors: errors + send_errors,
        undelivered,
        stopped_by,
        first_error,
        latency: Percentiles::from_micros(&hist),
        client_cpu,
        group: None,
        txn: None,
    })
}

/// `total` split into `parts` shares that differ by at most one (the first ones larger).
pub(crate) fn split(total: u64, parts: u32, index: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    let index = u64::from(index);
    total / parts + u64::from(index < total % parts)
}

/// One producer's part of a `produce` run.
struct Share {
    /// Index of its first record (keys and payloads continue across producers, as one
    /// producer's would).
    first_record: u64,
    records: u64,
    rate_per_s: u64,
    start_ns: u64,
    deadline_ns: u64,
}

/// What one producer's sends came to (its delivery reports are in its context).
struct SendOutcome {
    sent: u64,
    send_errors: u64,
    first_send_error: Option<String>,
    stopped_by: Option<&'static str>,
}

/// Sends one producer's share and waits for its delivery reports (purging what is still in
/// flight after --flush-seconds).
fn send_share(
    args: &ProduceArgs,
    producer: &BaseProducer<BenchContext>,
    payloads: &[Vec<u8>],
    share: &Share,
) -> SendOutcome {
    let ctx = producer.context();
    let inline = args.mode == ProducerMode::Inline;
    let stop = AtomicBool::new(false);
    let mut out = SendOutcome {
        sent: 0,
        send_errors: 0,
        first_send_error: None,
        stopped_by: None,
    };
    let (start_ns, deadline_ns) = (share.start_ns, share.deadline_ns);

    std::thread::scope(|s| {
        if !inline {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    producer.poll(Duration::from_millis(10));
                }
            });
        }
        let topic = args.topic.as_str();
        let mut now = start_ns;
        'records: for i in 0..share.records {
            if i % CLOCK_EVERY as u64 == 0 {
                now = ctx.now_ns();
            }
            if now >= deadline_ns {
                out.stopped_by = Some("time limit");
                break;
            }
            if share.rate_per_s > 0 && i % 64 == 0 {
                let due = start_ns + (i as u128 * 1_000_000_000 / share.rate_per_s as u128) as u64;
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                    now = ctx.now_ns();
                }
            }
            let global = share.first_record + i;
            let key = args.key_space.map(|k| (global % k).to_be_bytes());
            let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, now as usize)
                .payload(&payloads[global as usize % PAYLOAD_POOL][..]);
            if let Some(k) = &key {
                record = record.key(&k[..]);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) if is_queue_full(&e) => {
                        if inline {
                            producer.poll(Duration::from_millis(1));
                        } else {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        let now = ctx.now_ns();
                        if now >= deadline_ns {
                            out.stopped_by = Some("time limit");
                            break 'records;
                        }
                        record = r.delivery_opaque(now as usize);
                    }
                    Err((e, _)) => {
                        out.send_errors += 1;
                        out.first_send_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
            out.sent += 1;
            if inline && i % 64 == 0 {
                producer.poll(Duration::ZERO);
            }
        }

        // Wait for outstanding delivery reports.
        let flush_deadline = Instant::now() + Duration::from_secs_f64(args.flush_seconds);
        while producer.in_flight_count() > 0 && Instant::now() < flush_deadline {
            if inline {
                producer.poll(Duration::from_millis(1));
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if producer.in_flight_count() > 0 {
            // Give up on the rest: purged records get an error delivery report.
            producer.purge(PurgeConfig::default().queue().inflight());
            let purge_deadline = Instant::now() + Duration::from_secs(5);
            while producer.in_flight_count() > 0 && Instant::now() < purge_deadline {
                if inline {
                    producer.poll(Duration::from_millis(1));
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            out.stopped_by.get_or_insert("flush timeout");
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Serve anything still queued (the polling thread has stopped).
    producer.poll(Duration::ZERO);
    out
}

/// The FutureProducer variant: one `DeliveryFuture` per record, awaited on a current-thread
/// runtime with at most `--max-queued` outstanding. Kept to compare client overheads.
fn run_future(args: &ProduceArgs) -> anyhow::Result<Summary> {
    use futures::stream::{FuturesUnordered, StreamExt};

    let client_ctx = crate::client::QuietContext::default();
    let client_errors = client_ctx.errors.clone();
    let producer: FutureProducer<crate::client::QuietContext> = producer_config(args)
        .create_with_context(client_ctx)
        .context("creating producer")?;
    wait_for_topic(
        producer.client(),
        &args.common.brokers,
        &args.topic,
        Duration::from_secs_f64(args.common.connect_timeout),
        || client_errors.get(),
    )?;
    let payloads = make_payloads(args.record_size, PAYLOAD_POOL);
    let max_outstanding = args.max_queued.max(1) as usize;

    crate::client::block_on(async {
        let cpu0 = process_cpu_time();
        let ctx = BenchContext::new(Instant::now())?;
        let start_ns = ctx.now_ns();
        let deadline_ns = start_ns.saturating_add(args.max_duration().as_nanos() as u64);
        let mut pending = FuturesUnordered::new();
        let mut stopped_by = None;
        let mut send_errors = 0u64;
        let mut first_send_error = None;
        let settle = |done| settle_future(&ctx, done);
        for i in 0..args.records {
            let now = ctx.now_ns();
            if now >= deadline_ns {
                stopped_by = Some("time limit");
                break;
            }
            let key = args.key_space.map(|k| (i % k).to_be_bytes());
            let mut record = FutureRecord::<[u8], [u8]>::to(&args.topic)
                .payload(&payloads[i as usize % PAYLOAD_POOL][..]);
            if let Some(k) = &key {
                record = record.key(&k[..]);
            }
            loop {
                match producer.send_result(record) {
                    Ok(fut) => {
                        let sent_ns = ctx.now_ns();
                        pending.push(async move { (fut.await, sent_ns) });
                        break;
                    }
                    Err((e, r)) if is_queue_full(&e) => {
                        record = r;
                        match pending.next().await {
                            Some(done) => settle(done),
                            None => tokio::time::sleep(Duration::from_micros(200)).await,
                        }
                    }
                    Err((e, _)) => {
                        send_errors += 1;
                        first_send_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
            if pending.len() >= max_outstanding
                && let Some(done) = pending.next().await
            {
                settle(done);
            }
            // Collect whatever has completed, without waiting.
            if i % 64 == 0 {
                while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
                    settle(done);
                }
            }
        }
        let flush = tokio::time::timeout(Duration::from_secs_f64(args.flush_seconds), async {
            while let Some(done) = pending.next().await {
                settle(done);
            }
        })
        .await;
        if flush.is_err() {
            producer.purge(PurgeConfig::default().queue().inflight());
            stopped_by.get_or_insert("flush timeout");
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(done) = pending.next().await {
                    settle(done);
                }
            })
            .await;
        }
        let undelivered = pending.len() as u64;
        drop(pending);
        let st = lock(&ctx.state);
        let per_record = args.record_size as u64 + if args.key_space.is_some() { 8 } else { 0 };
        Ok(Summary {
            op: "produce",
            topic: args.topic.clone(),
            records: st.delivered,
            bytes: st.delivered * per_record,
            elapsed: Duration::from_nanos(st.last_delivery_ns.saturating_sub(start_ns)),
            errors: st.errors + send_errors,
            undelivered,
            stopped_by,
            first_error: st.first_error.clone().or(first_send_error),
            latency: Percentiles::from_micros(&st.hist),
            client_cpu: cpu_since(cpu0),
            group: None,
            txn: None,
        })
    })?
}

fn settle_future<E>(ctx: &BenchContext, (res, sent_ns): (Result<OwnedDeliveryResult, E>, u64)) {
    let outcome = match res {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e.to_string()),
        Err(_canceled) => Err("delivery future canceled".to_string()),
    };
    ctx.record(sent_ns, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_sent_after_the_last_clock_read_gets_a_fresh_delivery_time() {
        let ctx = BenchContext::new(Instant::now()).expect("context");
        ctx.record(ctx.now_ns(), Ok(()));
        std::thread::sleep(Duration::from_millis(2));
        // The next transaction's first record, delivered 1 ms after it was sent: one
        // delivery after the last read, far below CLOCK_EVERY.
        let sent_ns = ctx.now_ns();
        std::thread::sleep(Duration::from_millis(1));
        ctx.record(sent_ns, Ok(()));
        let st = ctx.state();
        assert_eq!(st.delivered, 2);
        assert!(st.hist.max() >= 1_000, "latency {} µs", st.hist.max());
    }

    #[test]
    fn payloads_are_fixed_size_and_varied() {
        let p = make_payloads(100, 4);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|v| v.len() == 100));
        assert!(p.iter().all(|v| v.iter().all(u8::is_ascii_uppercase)));
        assert_ne!(p[0], p[1]);
        assert!(make_payloads(0, 2).iter().all(Vec::is_empty));
    }
}
