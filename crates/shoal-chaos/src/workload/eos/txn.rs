//! A transactional producer and the rules for ending a transaction, shared by both stages.
//!
//! librdkafka sorts every transactional error into classes (`RDKafkaError`), and the class
//! decides what a careful application does, as its documentation prescribes:
//! - retriable (a timeout, a coordinator moving): call the same function again;
//! - abortable (`txn_requires_abort`: a record failed, the group generation is stale): call
//!   `abort_transaction`, after which the transaction is known to be aborted;
//! - fatal (fenced by a newer instance, an unrecoverable sequence error): the producer is
//!   dead; build a new one, whose `init_transactions` fences the old epoch and ends (aborts or
//!   completes) whatever it left open.
//!
//! Only the two happy endings are outcomes the checker holds the cluster to: `Committed` when
//! `commit_transaction` returned Ok, `Aborted` when `abort_transaction` did. Anything else
//! (retries exhausted, fatal) is `Unknown`: either is allowed, but all or nothing. Every retry
//! is bounded by a deadline per transaction.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::history::Recorder;
use crate::history::eos::{Outcome, Txn, TxnId};
use crate::workload::ClientErrors;

use super::EosSpec;

/// Each call (init, commit, abort, send offsets) waits at most this long; a retriable timeout
/// is then retried until the transaction's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Context of a transactional producer: counts client errors, ignores delivery reports (a
/// transaction's fate is decided by commit or abort, not by its records' reports), and prints
/// librdkafka's debug lines (`-X debug=eos,...`) to stderr, named and timed, to line them up
/// with the brokers' logs.
pub struct TxnContext {
    pub errors: ClientErrors,
    transactional_id: String,
}

impl ClientContext for TxnContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.note(&error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if matches!(level, RDKafkaLogLevel::Debug) {
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            eprintln!(
                "librdkafka {unix_ms} {}: {facility} {message}",
                self.transactional_id
            );
        }
    }
}

impl ProducerContext for TxnContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// Threaded: librdkafka's `abort_transaction` and `commit_transaction` wait for the delivery
/// reports of purged or flushed records, which only a polling thread serves.
pub type TxnProducer = ThreadedProducer<TxnContext>;

/// What librdkafka says to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Retriable,
    Abortable,
    Fatal,
    /// Neither of the above: treated as abortable (abort, and see whether it holds).
    Other,
}

pub fn classify(error: &KafkaError) -> Class {
    match error {
        KafkaError::Transaction(e) if e.is_fatal() => Class::Fatal,
        KafkaError::Transaction(e) if e.txn_requires_abort() => Class::Abortable,
        KafkaError::Transaction(e) if e.is_retriable() => Class::Retriable,
        // commit_transaction flushes first (the rdkafka crate does); a flush that timed out
        // leaves the transaction open, to be committed again.
        KafkaError::Flush(_) => Class::Retriable,
        _ => Class::Other,
    }
}

/// How a transaction ended, and whether the producer must be thrown away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub outcome: Outcome,
    pub error: Option<String>,
    pub rebuild: bool,
}

/// What the history keeps of a transaction besides how it ended.
pub struct Begun {
    pub id: TxnId,
    pub records: u32,
    pub abort_on_purpose: bool,
    pub began_us: u64,
    /// Transform stage: the input offsets sent with `send_offsets_to_transaction`.
    pub offsets: Vec<(i32, i64)>,
}

/// Records how the transaction `begun` ended, and drops a producer that must be rebuilt.
pub fn record_end<P>(
    recorder: &Recorder,
    transactional_id: &str,
    producer: &mut Option<P>,
    begun: Begun,
    end: End,
) {
    let ended_us = recorder.now_us();
    if end.rebuild {
        if let Some(e) = &end.error {
            eprintln!("shoal-chaos: {transactional_id}: {e}; rebuilding");
        }
        *producer = None;
    }
    let mut history = recorder.lock();
    if end.rebuild {
        history.eos.client_rebuilds += 1;
    }
    history.eos.txns.push(Txn {
        id: begun.id,
        records: begun.records,
        abort_on_purpose: begun.abort_on_purpose,
        outcome: end.outcome,
        began_us: begun.began_us,
        ended_us,
        offsets: begun.offsets,
        error: end.error,
    });
}

/// A transactional producer for `transactional_id`, not yet initialised.
pub fn create(spec: &EosSpec, transactional_id: &str) -> anyhow::Result<TxnProducer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("client.id", transactional_id)
        .set("transactional.id", transactional_id)
        .set(
            "transaction.timeout.ms",
            spec.transaction_timeout_ms.to_string(),
        )
        .set("linger.ms", "5")
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    spec.client.apply(&mut config);
    if config.get("debug").is_some() {
        // The rdkafka crate sets librdkafka's log level from the `log` crate's, which this
        // binary does not use; `-X debug=...` asks for the lines, so let them through.
        config.set_log_level(RDKafkaLogLevel::Debug);
    }
    config
        .create_with_context(TxnContext {
            errors: ClientErrors::default(),
            transactional_id: transactional_id.to_string(),
        })
        .with_context(|| format!("creating transactional producer {transactional_id}"))
}

/// `init_transactions`, retried while retriable until `deadline`. An error means the producer
/// must be built again (fatal) or the cluster did not answer in time.
pub fn init(producer: &TxnProducer, deadline: Instant) -> Result<(), String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match producer.init_transactions(left.min(CALL_TIMEOUT)) {
            Ok(()) => return Ok(()),
            Err(e) if classify(&e) == Class::Retriable && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("init_transactions: {e}")),
        }
    }
}

/// Hands one record to the open transaction, waiting (bounded) while the queue is full.
pub fn send(
    producer: &TxnProducer,
    topic: &str,
    partition: i32,
    value: &str,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        let record: BaseRecord<'_, (), str, ()> =
            BaseRecord::to(topic).partition(partition).payload(value);
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(format!("send: {e}")),
        }
    }
}

/// Commits; on an abortable error aborts instead. Retries retriable errors until `deadline`.
pub fn commit(producer: &TxnProducer, deadline: Instant) -> End {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match producer.commit_transaction(left.min(CALL_TIMEOUT)) {
            Ok(()) => {
                return End {
                    outcome: Outcome::Committed,
                    error: None,
                    rebuild: false,
                };
            }
            Err(e) => e,
        };
        match classify(&error) {
            Class::Retriable if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Class::Abortable | Class::Other => {
                return abort(producer, deadline, Some(format!("commit: {error}")));
            }
            Class::Retriable | Class::Fatal => {
                return End {
                    outcome: Outcome::Unknown,
                    error: Some(format!("commit: {error}")),
                    rebuild: true,
                };
            }
        }
    }
}

/// Aborts, retrying retriable errors until `deadline`. `why` is the error that made the abort
/// necessary (none for an abort on purpose).
pub fn abort(producer: &TxnProducer, deadline: Instant, why: Option<String>) -> End {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match producer.abort_transaction(left.min(CALL_TIMEOUT)) {
            Ok(()) => {
                return End {
                    outcome: Outcome::Aborted,
                    error: why,
                    rebuild: false,
                };
            }
            Err(e) => e,
        };
        if classify(&error) == Class::Retriable && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let error = match why {
            Some(why) => format!("{why}; abort: {error}"),
            None => format!("abort: {error}"),
        };
        return End {
            outcome: Outcome::Unknown,
            error: Some(error),
            rebuild: true,
        };
    }
}
