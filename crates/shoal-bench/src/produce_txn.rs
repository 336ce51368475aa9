//! `shoal-bench produce-txn`: the records of `produce`, sent in transactions of
//! `--records-per-txn` records, with the commit latency an application sees.
//!
//! Why a mode of its own: a transaction adds a fixed cost to its records (AddPartitionsToTxn
//! before the first write to each partition, the flush of the last batches, EndTxn, and the
//! coordinator's replicated PrepareCommit before it answers), and a producer sends nothing
//! while it waits for its commit. So transactional throughput depends on the records per
//! transaction, and issue #17 asks for it at 10, 100 and 1,000 records next to idempotent
//! produce, plus the commit latency at a fixed load (`--rate`).
//!
//! Each producer (`--producers`, one thread and one client each) has its own
//! `transactional.id`, unique per run so that no run fences another's producers, and loops
//! begin -> N records -> commit, bounded by its share of `--records` and by `--max-seconds`
//! (checked between transactions: a transaction that has started is finished). Records,
//! payloads, keys and the per-record latency (send -> delivery report) are those of
//! `produce`; the commit is timed from the end of the transaction's sends to the return of
//! `commit_transaction`, and its two parts separately: the flush (the transaction's last
//! delivery reports) and EndTxn (see [`commit`] for why the flush is done here).
//!
//! Errors follow librdkafka's classification: a retriable one is retried within
//! `--txn-call-seconds`; one that requires an abort (or a commit that could not finish in that
//! time) aborts the transaction, which is counted and reported; a fatal one (a fenced producer,
//! ...) stops the run with an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use hdrhistogram::Histogram;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::cli::{Acks, ProduceTxnArgs, ProducerMode};
use crate::client::wait_for_topic;
use crate::produce::{
    BenchContext, CLOCK_EVERY, PAYLOAD_POOL, is_queue_full, make_payloads, producer_config, split,
};
use crate::summary::{
    Percentiles, Summary, TxnStats, cpu_since, new_latency_histogram, process_cpu_time,
};

type TxnProducer = BaseProducer<BenchContext>;

/// Pause between two attempts of a transactional call that failed with a retriable error
/// (librdkafka already waited inside the call; this only keeps a fast failure from spinning).
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Longest wait for the delivery reports of purged records after the last transaction.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// librdkafka configuration: `produce`'s, plus the transactional id.
pub fn txn_producer_config(args: &ProduceTxnArgs, transactional_id: &str) -> ClientConfig {
    let mut c = producer_config(&args.produce);
    // librdkafka refuses a message timeout longer than the transaction timeout.
    let message_timeout_ms = args.transaction_timeout_ms.min(30_000);
    c.set("transactional.id", transactional_id)
        .set(
            "transaction.timeout.ms",
            args.transaction_timeout_ms.to_string(),
        )
        .set("message.timeout.ms", message_timeout_ms.to_string());
    c
}

/// The transactional id prefix of this run: the given one, or one no other run uses.
fn id_prefix(args: &ProduceTxnArgs) -> String {
    args.transactional_id_prefix.clone().unwrap_or_else(|| {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("shoal-bench-{}-{unix_ms}", std::process::id())
    })
}

/// What to do after a transactional call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Try the same call again.
    Retriable,
    /// The transaction cannot commit; abort it and go on.
    Abort,
    /// The producer cannot go on (fenced, unsupported, ...): stop the run.
    Fatal,
    /// Not classified by librdkafka (e.g. a call in the wrong state).
    Other,
}

fn classify(e: &KafkaError) -> Failure {
    match e {
        KafkaError::Transaction(r) if r.is_fatal() => Failure::Fatal,
        KafkaError::Transaction(r) if r.txn_requires_abort() => Failure::Abort,
        KafkaError::Transaction(r) if r.is_retriable() => Failure::Retriable,
        // The flush inside commit_transaction ran out of time: records are still in flight.
        KafkaError::Flush(_) => Failure::Retriable,
        KafkaError::MessageProduction(RDKafkaErrorCode::Fatal) => Failure::Fatal,
        _ => Failure::Other,
    }
}

/// The client's fatal error, if it has one, as an error that stops the run.
fn fatal(producer: &TxnProducer, what: &str, e: &KafkaError) -> anyhow::Error {
    match producer.client().fatal_error() {
        Some((code, reason)) => anyhow!("{what}: fatal error: {code:?}: {reason}"),
        None => anyhow!("{what}: fatal error: {e}"),
    }
}

/// Calls `call` with the time left until it succeeds, fails with an error that is not
/// retriable, or `timeout` has passed; returns the last error.
fn retrying(
    timeout: Duration,
    mut call: impl FnMut(Duration) -> KafkaResult<()>,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match call(remaining) {
            Err(e)
                if classify(&e) == Failure::Retriable
                    && Instant::now() + RETRY_PAUSE < deadline =>
            {
                std::thread::sleep(RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

/// The result of one producer's loop.
struct ProducerOutcome {
    sent: u64,
    send_errors: u64,
    first_send_error: Option<String>,
    committed: u64,
    committed_records: u64,
    aborted: u64,
    aborted_records: u64,
    first_abort: Option<String>,
    commit_us: Histogram<u64>,
    flush_us: Histogram<u64>,
    end_txn_us: Histogram<u64>,
    /// When the last commit or abort returned, ns since the shared base.
    end_ns: u64,
    stopped_by: Option<&'static str>,
}

/// The fixed inputs of every producer's loop.
struct Plan<'a> {
    args: &'a ProduceTxnArgs,
    payloads: &'a [Vec<u8>],
    start_ns: u64,
    deadline_ns: u64,
}

pub fn run(args: &ProduceTxnArgs) -> anyhow::Result<Summary> {
    let p = &args.produce;
    if p.acks != Acks::All {
        bail!(
            "transactions need --acks all (librdkafka refuses acks={} with a transactional.id)",
            p.acks.as_config()
        );
    }
    if p.mode == ProducerMode::Future {
        bail!("produce-txn drives a BaseProducer: --mode inline or thread");
    }
    if p.rate > 0 && p.rate < u64::from(args.produce.producers) {
        bail!(
            "--rate {} is below one record/s per producer ({} producers)",
            p.rate,
            args.produce.producers
        );
    }

    // Create every producer and run init_transactions before the clock starts: the first
    // InitProducerId on a fresh cluster also creates `__transaction_state`.
    let base = Instant::now();
    let prefix = id_prefix(args);
    let mut producers: Vec<TxnProducer> = Vec::with_capacity(args.produce.producers as usize);
    let mut init = Duration::ZERO;
    for i in 0..args.produce.producers {
        let id = format!("{prefix}-{i}");
        let producer: TxnProducer = txn_producer_config(args, &id)
            .create_with_context(BenchContext::new(base)?)
            .with_context(|| format!("creating producer {id}"))?;
        let ctx = producer.context();
        wait_for_topic(
            producer.client(),
            &p.common.brokers,
            &p.topic,
            Duration::from_secs_f64(p.common.connect_timeout),
            || ctx.client_error.get(),
        )?;
        let t0 = Instant::now();
        retrying(args.txn_call_timeout(), |left| {
            producer.init_transactions(left)
        })
        .map_err(|e| {
            let why = ctx
                .client_error
                .get()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            anyhow!("init_transactions of {id}: {e}{why}")
        })?;
        init = init.max(t0.elapsed());
        producers.push(producer);
    }

    let payloads = make_payloads(p.record_size, PAYLOAD_POOL);
    let cpu0 = process_cpu_time();
    let start_ns = base.elapsed().as_nanos() as u64;
    let plan = Plan {
        args,
        payloads: &payloads,
        start_ns,
        deadline_ns: start_ns.saturating_add(p.max_duration().as_nanos() as u64),
    };
    let outcomes: Vec<anyhow::Result<ProducerOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(i, producer)| {
                let plan = &plan;
                s.spawn(move || drive(plan, producer, i as u32))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a producer thread panicked")))
            })
            .collect()
    });
    let client_cpu = cpu_since(cpu0);

    let mut outcomes_ok = Vec::with_capacity(outcomes.len());
    for (i, o) in outcomes.into_iter().enumerate() {
        outcomes_ok.push(o.with_context(|| format!("producer {prefix}-{i}"))?);
    }
    summarize(args, &producers, &outcomes_ok, start_ns, init, client_cpu)
}

/// One producer's loop: transactions until its share of the records is committed or
/// aborted, or the time is up.
fn drive(plan: &Plan<'_>, producer: &TxnProducer, index: u32) -> anyhow::Result<ProducerOutcome> {
    let args = plan.args;
    let inline = args.produce.mode == ProducerMode::Inline;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        if !inline {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    producer.poll(Duration::from_millis(10));
                }
            });
        }
        let outcome = transactions(plan, producer, index, inline);
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}

fn transactions(
    plan: &Plan<'_>,
    producer: &TxnProducer,
    index: u32,
    inline: bool,
) -> anyhow::Result<ProducerOutcome> {
    let args = plan.args;
    let p = &args.produce;
    let ctx = producer.context();
    let quota = split(p.records, args.produce.producers, index);
    let rate_per_s = split(p.rate, args.produce.producers, index);
    // Record indices (for keys and payloads) continue across producers, as one producer's would.
    let first_record: u64 = (0..index)
        .map(|i| split(p.records, args.produce.producers, i))
        .sum();
    let call_timeout = args.txn_call_timeout();
    let mut o = ProducerOutcome {
        sent: 0,
        send_errors: 0,
        first_send_error: None,
        committed: 0,
        committed_records: 0,
        aborted: 0,
        aborted_records: 0,
        first_abort: None,
        commit_us: new_latency_histogram()?,
        flush_us: new_latency_histogram()?,
        end_txn_us: new_latency_histogram()?,
        end_ns: plan.start_ns,
        stopped_by: None,
    };
    let topic = p.topic.as_str();
    // Records handed to the client, sent or not; paces --rate.
    let mut i: u64 = 0;
    let mut now: u64;
    while i < quota {
        now = ctx.now_ns();
        if now >= plan.deadline_ns {
            o.stopped_by = Some("time limit");
            break;
        }
        if let Err(e) = producer.begin_transaction() {
            return Err(match classify(&e) {
                Failure::Fatal => fatal(producer, "begin_transaction", &e),
                _ => anyhow!("begin_transaction: {e}"),
            });
        }
        let n = args.records_per_txn.min(quota - i);
        let mut in_txn: u64 = 0;
        let mut abort_reason: Option<String> = None;
        'records: for _ in 0..n {
            // Read as in `produce` (once per CLOCK_EVERY records), and at each transaction's
            // first record: a time read before the commit would add it to their latency.
            if in_txn.is_multiple_of(u64::from(CLOCK_EVERY)) {
                now = ctx.now_ns();
            }
            if rate_per_s > 0 && i.is_multiple_of(64) {
                let due = plan.start_ns + (i as u128 * 1_000_000_000 / rate_per_s as u128) as u64;
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                    now = ctx.now_ns();
                }
            }
            let global = first_record + i;
            let key = p.key_space.map(|k| (global % k).to_be_bytes());
            let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, now as usize)
                .payload(&plan.payloads[global as usize % PAYLOAD_POOL][..]);
            if let Some(k) = &key {
                record = record.key(&k[..]);
            }
            i += 1;
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) if is_queue_full(&e) => {
                        if inline {
                            producer.poll(Duration::from_millis(1));
                        } else {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        let t = ctx.now_ns();
                        if t >= plan
                            .deadline_ns
                            .saturating_add(call_timeout.as_nanos() as u64)
                        {
                            abort_reason = Some("client queue full past the time limit".into());
                            o.stopped_by = Some("time limit");
                            break 'records;
                        }
                        record = r.delivery_opaque(t as usize);
                    }
                    Err((e, _)) => {
                        o.send_errors += 1;
                        o.first_send_error.get_or_insert_with(|| e.to_string());
                        if classify(&e) == Failure::Fatal
                            || producer.client().fatal_error().is_some()
                        {
                            return Err(fatal(producer, "send", &e));
                        }
                        abort_reason = Some(format!("send failed: {e}"));
                        break 'records;
                    }
                }
            }
            in_txn += 1;
            o.sent += 1;
            if inline && i.is_multiple_of(64) {
                producer.poll(Duration::ZERO);
            }
        }

        if abort_reason.is_none() {
            match commit(producer, call_timeout, inline, args.commit_lingers) {
                Ok(t) => {
                    o.committed += 1;
                    o.committed_records += in_txn;
                    o.commit_us.saturating_record(micros(t.total));
                    o.flush_us.saturating_record(micros(t.flush));
                    o.end_txn_us.saturating_record(micros(t.end_txn));
                }
                Err(e) => match classify(&e) {
                    Failure::Fatal => return Err(fatal(producer, "commit_transaction", &e)),
                    // Abortable, or retriable / unclassified and still failing after
                    // --txn-call-seconds: librdkafka allows an abort after either.
                    _ => abort_reason = Some(format!("commit_transaction: {e}")),
                },
            }
        }
        if let Some(why) = abort_reason {
            retrying(call_timeout, |left| producer.abort_transaction(left)).map_err(|e| {
                match classify(&e) {
                    Failure::Fatal => fatal(producer, "abort_transaction", &e),
                    _ => anyhow!("abort_transaction after \"{why}\": {e}"),
                }
            })?;
            o.aborted += 1;
            o.aborted_records += in_txn;
            o.first_abort.get_or_insert(why);
        }
        o.end_ns = ctx.now_ns();
        if o.stopped_by.is_some() {
            break;
        }
    }

    // Serve the delivery reports of records an abort purged.
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while producer.in_flight_count() > 0 && Instant::now() < drain_deadline {
        producer.poll(Duration::from_millis(1));
    }
    producer.poll(Duration::ZERO);
    Ok(o)
}

/// How often [`commit`] checks whether the transaction's records are all delivered.
const FLUSH_STEP: Duration = Duration::from_micros(100);

/// What one commit took.
struct CommitTiming {
    /// From the call to its return: what `commit_transaction` costs the application.
    total: Duration,
    /// Waiting for the delivery reports of the transaction's records.
    flush: Duration,
    /// EndTxn, once the records are delivered, until the coordinator answers.
    end_txn: Duration,
}

/// Flushes the transaction's records and commits it; retriable failures are retried within
/// `timeout`.
///
/// Why not just `commit_transaction`: rust-rdkafka's flushes first with `rd_kafka_flush(0)`
/// and, while records are in flight, `poll(100 ms)`, which always blocks the whole 100 ms, so
/// a commit with records in flight would take at least 100 ms. Instead the commit sits in
/// librdkafka's own `rd_kafka_flush` ([`hold_flushing`]): that call marks the producer as
/// flushing for as long as it runs, so the last batches go out at once instead of waiting out
/// `linger.ms`, as in librdkafka's own commit and Java's `commitTransaction` (which flushes
/// first). With `--mode thread` the polling thread serves the delivery reports and the commit
/// waits in that call; inline, this thread must serve them, so it polls in 100 µs steps while
/// a helper thread holds the flush. `--commit-lingers` drops the flush, to measure a commit
/// that waits out the linger.
fn commit(
    producer: &TxnProducer,
    timeout: Duration,
    inline: bool,
    lingers: bool,
) -> KafkaResult<CommitTiming> {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let flushed = if inline && !lingers {
        std::thread::scope(|s| {
            s.spawn(|| hold_flushing(producer, timeout));
            wait_for_deliveries(producer, deadline, inline)
        })?
    } else {
        if !lingers {
            // The polling thread serves the delivery reports: wait in librdkafka's flush
            // itself, woken by the last report instead of checking in steps.
            hold_flushing(producer, timeout);
        }
        wait_for_deliveries(producer, deadline, inline)?
    };
    retrying(deadline.saturating_duration_since(flushed), |left| {
        producer.commit_transaction(left)
    })?;
    let done = Instant::now();
    Ok(CommitTiming {
        total: done.duration_since(t0),
        flush: flushed.duration_since(t0),
        end_txn: done.duration_since(flushed),
    })
}

/// Waits (polling in 100 µs steps when this thread serves the events) until no record is in
/// flight; returns when.
fn wait_for_deliveries(
    producer: &TxnProducer,
    deadline: Instant,
    inline: bool,
) -> KafkaResult<Instant> {
    loop {
        if inline {
            producer.poll(Duration::ZERO);
        }
        if producer.in_flight_count() == 0 {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        std::thread::sleep(FLUSH_STEP);
    }
}

/// Runs librdkafka's `rd_kafka_flush` until the in-flight count reaches zero (or `timeout`).
/// The producer's delivery reports are events (rust-rdkafka's mode), so this call serves
/// nothing: it only sets the producer's flushing flag, which makes its broker threads send
/// lingering batches at once, and waits on the message counter that the caller's polling
/// brings to zero.
#[allow(unsafe_code)]
fn hold_flushing(producer: &TxnProducer, timeout: Duration) {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the handle is valid while `producer` is borrowed, and rd_kafka_flush may be
    // called from any thread (librdkafka's API is thread-safe); in event mode it only waits.
    let _ =
        unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), timeout_ms) };
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

fn summarize(
    args: &ProduceTxnArgs,
    producers: &[TxnProducer],
    outcomes: &[ProducerOutcome],
    start_ns: u64,
    init: Duration,
    client_cpu: Option<Duration>,
) -> anyhow::Result<Summary> {
    let p = &args.produce;
    let mut latency_us = new_latency_histogram()?;
    let mut commit_us = new_latency_histogram()?;
    let mut flush_us = new_latency_histogram()?;
    let mut end_txn_us = new_latency_histogram()?;
    let (mut delivered, mut delivery_errors) = (0u64, 0u64);
    let mut first_error = None;
    for producer in producers {
        let st = producer.context().state();
        latency_us
            .add(&st.hist)
            .map_err(|e| anyhow!("merging latency histograms: {e:?}"))?;
        delivered += st.delivered;
        delivery_errors += st.errors;
        if first_error.is_none() {
            first_error.clone_from(&st.first_error);
        }
    }
    let sum = |f: fn(&ProducerOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    for o in outcomes {
        commit_us
            .add(&o.commit_us)
            .map_err(|e| anyhow!("merging commit histograms: {e:?}"))?;
        flush_us
            .add(&o.flush_us)
            .map_err(|e| anyhow!("merging flush histograms: {e:?}"))?;
        end_txn_us
            .add(&o.end_txn_us)
            .map_err(|e| anyhow!("merging EndTxn histograms: {e:?}"))?;
        if first_error.is_none() {
            first_error.clone_from(&o.first_send_error);
        }
    }
    let sent = sum(|o| o.sent);
    let send_errors = sum(|o| o.send_errors);
    let committed_records = sum(|o| o.committed_records);
    let end_ns = outcomes.iter().map(|o| o.end_ns).max().unwrap_or(start_ns);
    let per_record = p.record_size as u64 + if p.key_space.is_some() { 8 } else { 0 };
    let first_abort = outcomes.iter().find_map(|o| o.first_abort.clone());
    Ok(Summary {
        op: "produce-txn",
        topic: p.topic.clone(),
        records: committed_records,
        bytes: committed_records * per_record,
        elapsed: Duration::from_nanos(end_ns.saturating_sub(start_ns)),
        errors: delivery_errors + send_errors,
        undelivered: sent.saturating_sub(delivered + delivery_errors),
        stopped_by: outcomes.iter().find_map(|o| o.stopped_by),
        first_error,
        latency: Percentiles::from_micros(&latency_us),
        client_cpu,
        group: None,
        txn: Some(TxnStats {
            records_per_txn: args.records_per_txn,
            producers: args.produce.producers,
            committed: sum(|o| o.committed),
            aborted: sum(|o| o.aborted),
            aborted_records: sum(|o| o.aborted_records),
            first_abort,
            init,
            commit: Percentiles::from_micros(&commit_us),
            flush: Percentiles::from_micros(&flush_us),
            end_txn: Percentiles::from_micros(&end_txn_us),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn txn_args(extra: &[&str]) -> ProduceTxnArgs {
        let argv = ["shoal-bench", "produce-txn", "--topic", "t"];
        let cli = crate::cli::Cli::try_parse_from(argv.iter().chain(extra.iter()))
            .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            crate::cli::Command::ProduceTxn(a) => a,
            other => panic!("not produce-txn: {other:?}"),
        }
    }

    #[test]
    fn split_shares_everything() {
        for (total, parts) in [(10u64, 3u32), (1000, 1), (7, 8), (0, 4), (1_000_000, 64)] {
            let shares: Vec<u64> = (0..parts).map(|i| split(total, parts, i)).collect();
            assert_eq!(shares.iter().sum::<u64>(), total, "{total}/{parts}");
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{shares:?}");
        }
        assert_eq!(split(10, 3, 0), 4);
        assert_eq!(split(10, 3, 2), 3);
    }

    #[test]
    fn config_is_transactional() {
        let a = txn_args(&["--transaction-timeout-ms", "10000", "-X", "linger.ms=1"]);
        let c = txn_producer_config(&a, "run-0");
        assert_eq!(c.get("transactional.id"), Some("run-0"));
        assert_eq!(c.get("transaction.timeout.ms"), Some("10000"));
        // librdkafka refuses message.timeout.ms > transaction.timeout.ms.
        assert_eq!(c.get("message.timeout.ms"), Some("10000"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("linger.ms"), Some("1"), "-X overrides still apply");
        let c = txn_producer_config(&txn_args(&[]), "x");
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
    }

    #[test]
    fn prefixes_are_unique_unless_given() {
        assert_eq!(
            id_prefix(&txn_args(&["--transactional-id-prefix", "p"])),
            "p"
        );
        let generated = id_prefix(&txn_args(&[]));
        assert!(
            generated.starts_with(&format!("shoal-bench-{}-", std::process::id())),
            "{generated}"
        );
    }

    #[test]
    fn refuses_what_transactions_cannot_do() {
        let err = |extra: &[&str]| match run(&txn_args(extra)) {
            Ok(_) => panic!("{extra:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err(&["--acks", "1"]).contains("--acks all"));
        assert!(err(&["--mode", "future"]).contains("--mode inline or thread"));
        assert!(err(&["--rate", "3", "--producers", "4"]).contains("below one record/s"));
    }

    /// The abort path, against librdkafka's in-process mock cluster: the first Produce
    /// request fails with a non-retriable error, so the first transaction cannot commit; it
    /// is aborted and counted, and the run goes on to commit the rest.
    #[test]
    fn an_abortable_error_aborts_and_counts() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

        let cluster = MockCluster::new(1).unwrap_or_else(|e| panic!("mock cluster: {e}"));
        cluster
            .create_topic("t", 1, 1)
            .unwrap_or_else(|e| panic!("create topic: {e}"));
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
        );
        let brokers = cluster.bootstrap_servers();
        let args = txn_args(&[
            "--brokers",
            &brokers,
            "--records",
            "300",
            "--records-per-txn",
            "100",
            "--linger-ms",
            "0",
            "--max-seconds",
            "30",
            "--txn-call-seconds",
            "10",
        ]);
        let s = run(&args).unwrap_or_else(|e| panic!("run: {e:#}"));
        let t = s.txn.clone().unwrap_or_else(|| panic!("no txn stats"));
        // The mock broker may fail the next transaction too (its sequence state after the
        // failed batch); what matters is that aborts are counted and the run goes on.
        assert!(t.aborted >= 1 && t.committed >= 1, "{}", s.to_text());
        assert_eq!(t.committed + t.aborted, 3, "{}", s.to_text());
        assert_eq!(s.records, t.committed * 100, "{}", s.to_text());
        assert_eq!(t.aborted_records, t.aborted * 100, "{}", s.to_text());
        assert!(
            s.errors > 0,
            "the failed deliveries are counted: {}",
            s.to_text()
        );
        assert!(
            t.first_abort
                .as_deref()
                .is_some_and(|w| w.contains("commit_transaction")),
            "{:?}",
            t.first_abort
        );
        assert_eq!(t.commit.map(|_| ()), Some(()));
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(&KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)),
            Failure::Retriable
        );
        assert_eq!(
            classify(&KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)),
            Failure::Fatal
        );
        assert_eq!(
            classify(&KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge
            )),
            Failure::Other
        );
    }
}
