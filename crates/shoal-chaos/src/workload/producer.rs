//! One idempotent producer: `rate` records a second, each value `producer:seq`, spread over the
//! partitions in turn, every delivery report recorded with its send time.
//!
//! Client settings are those of a user who wants fast failover: a paused leader holds the
//! in-flight requests until `request.timeout.ms`, and an idempotent producer may not resend
//! them elsewhere before it knows their fate, so 5 s (not 30 s) bounds a pause's cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::client_settings::ClientSettings;
use crate::history::{Ack, RecordId, Recorder, SendFailure};

use super::ClientErrors;

pub struct ProducerSpec {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub producer: u32,
    pub rate_per_s: u32,
    pub message_timeout_ms: u32,
    pub client: ClientSettings,
}

/// What a delivery report needs to know about its record.
pub struct Sent {
    id: RecordId,
    partition: i32,
    sent_us: u64,
}

struct Context {
    recorder: Recorder,
    errors: ClientErrors,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.note(&error, reason);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        let now = self.recorder.now_us();
        match result {
            Ok(message) => self.recorder.lock().acks.push(Ack {
                id: sent.id,
                partition: message.partition(),
                offset: message.offset(),
                sent_us: sent.sent_us,
                acked_us: now,
            }),
            Err((error, _)) => self.recorder.lock().failures.push(SendFailure {
                id: sent.id,
                partition: sent.partition,
                sent_us: sent.sent_us,
                failed_us: now,
                error: error.to_string(),
            }),
        }
    }
}

/// How a producer thread ended.
pub struct ProducerEnd {
    pub sent: u64,
    /// Records still without a delivery report when the flush bound ran out.
    pub undelivered: u64,
}

/// Writes until `stop` is set, then flushes (bounded by the message timeout plus a margin).
pub fn run(
    spec: ProducerSpec,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ProducerEnd> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set(
            "client.id",
            format!("shoal-chaos-producer-{}", spec.producer),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", spec.message_timeout_ms.to_string())
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    spec.client.apply(&mut config);
    let producer: ThreadedProducer<Context> = config
        .create_with_context(Context {
            recorder: recorder.clone(),
            errors: ClientErrors::default(),
        })
        .context("creating a producer")?;

    let tick = Duration::from_millis(10);
    let per_tick = f64::from(spec.rate_per_s) * tick.as_secs_f64();
    let started = Instant::now();
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Catch up to the rate, never more than one second's worth at once.
        let due = (started.elapsed().as_secs_f64() / tick.as_secs_f64() * per_tick) as u64;
        let target = due.min(seq + u64::from(spec.rate_per_s));
        while seq < target && !stop.load(Ordering::Relaxed) {
            let id = RecordId {
                producer: spec.producer,
                seq,
            };
            let partition = (seq % spec.partitions as u64) as i32;
            let value = id.to_string();
            let mut sent = Box::new(Sent {
                id,
                partition,
                sent_us: recorder.now_us(),
            });
            loop {
                let record = BaseRecord::with_opaque_to(&spec.topic, sent)
                    .partition(partition)
                    .key(value.as_bytes())
                    .payload(value.as_bytes());
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        sent = r.delivery_opaque;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, r)) => {
                        let s = r.delivery_opaque;
                        recorder.lock().failures.push(SendFailure {
                            id: s.id,
                            partition: s.partition,
                            sent_us: s.sent_us,
                            failed_us: recorder.now_us(),
                            error: format!("enqueue: {e}"),
                        });
                        break;
                    }
                }
            }
            seq += 1;
        }
        std::thread::sleep(tick);
    }
    recorder.lock().sent += seq;
    let flush_bound =
        Duration::from_millis(u64::from(spec.message_timeout_ms)) + Duration::from_secs(10);
    let _ = producer.flush(flush_bound);
    Ok(ProducerEnd {
        sent: seq,
        undelivered: producer.in_flight_count().max(0) as u64,
    })
}
