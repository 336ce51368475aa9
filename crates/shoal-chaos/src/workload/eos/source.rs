//! The source stage: one transactional producer writing numbered records to the input topic,
//! `records_per_txn` per transaction, spread over the partitions so that a transaction spans
//! several of them (which is what makes a partial read possible to see). Every
//! `abort_every`-th transaction is aborted on purpose after its records were flushed to the
//! log, so aborted records really are there for a read_committed reader to wrongly return.
//!
//! One transaction at a time, its outcome recorded as the client was told it (`txn`). After
//! a fatal error the producer is built again with the same transactional id; its
//! `init_transactions` fences the dead one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;

use crate::history::Recorder;
use crate::history::eos::{EosValue, RecordKey, Stage, TxnId};

use super::txn::{self, TxnProducer};
use super::{Doing, EosSpec, ready_producer, sleep_until};

/// Writes transactions until `stop` is set; the last one is always ended before returning.
pub fn run(
    spec: Arc<EosSpec>,
    producer_index: u32,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    doing: Doing,
) -> anyhow::Result<()> {
    let transactional_id = spec.source_txn_id(producer_index);
    let interval = Duration::from_secs_f64(1.0 / f64::from(spec.txn_rate_per_s.max(1)));
    let mut producer: Option<TxnProducer> = None;
    let mut next_at = Instant::now();
    let mut txn: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(p) = producer.as_ref() else {
            producer = ready_producer(&spec, &transactional_id, &recorder, &stop, &doing)?;
            continue;
        };
        doing.set("waiting for the next transaction");
        if !sleep_until(next_at, &stop) {
            break;
        }
        // Keep the rate, but never make up for a stall with a burst.
        next_at = (next_at + interval).max(Instant::now());
        doing.set("begin_transaction");
        if let Err(e) = p.begin_transaction() {
            eprintln!("shoal-chaos: {transactional_id}: begin_transaction: {e}; rebuilding");
            producer = None;
            recorder.lock().eos.client_rebuilds += 1;
            continue;
        }
        let id = TxnId {
            stage: Stage::Source,
            writer: producer_index,
            txn,
        };
        txn += 1;
        let began_us = recorder.now_us();
        let deadline = Instant::now() + spec.txn_deadline();
        let on_purpose = spec.aborts_on_purpose(id.txn);
        let count = spec.records_per_txn;
        let mut failed = None;
        doing.set("send");
        for index in 0..count {
            let value = EosValue {
                key: RecordKey { txn: id, index },
                count,
                input: None,
            }
            .to_string();
            let partition = spec.partition_of(id.txn, index);
            if let Err(e) = txn::send(p, &spec.input_topic, partition, &value, deadline) {
                failed = Some(e);
                break;
            }
        }
        let end = if failed.is_some() || on_purpose {
            doing.set("abort_transaction");
            if on_purpose {
                // Into the log first, so the abort has records to hide.
                let _ = p.flush(spec.txn_deadline().min(Duration::from_secs(10)));
            }
            txn::abort(p, deadline, failed)
        } else {
            doing.set("commit_transaction");
            txn::commit(p, deadline)
        };
        let begun = txn::Begun {
            id,
            records: count,
            abort_on_purpose: on_purpose,
            began_us,
            offsets: Vec::new(),
        };
        txn::record_end(&recorder, &transactional_id, &mut producer, begun, end);
    }
    Ok(())
}
