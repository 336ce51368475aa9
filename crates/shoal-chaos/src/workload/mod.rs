//! The workloads: idempotent acks=all producers writing uniquely numbered records, a consumer
//! group reading and committing them, and the final reader the checker compares against; and
//! the exactly-once workload ([`eos`]: transactions, consume-transform-produce,
//! read_committed). All through librdkafka, the client most users run, configured the way they
//! would.

pub mod eos;
pub mod final_read;
pub mod group;
pub mod idempotent;
pub mod producer;
pub mod topic;

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;

/// Client-level errors librdkafka reports (brokers down, all brokers down, ...). Expected
/// during faults, so only the count and the last one are kept, for the report.
#[derive(Default)]
pub struct ClientErrors {
    inner: Mutex<(u64, Option<String>)>,
}

impl ClientErrors {
    fn note(&self, error: &KafkaError, reason: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        inner.1 = Some(format!("{error}: {reason}"));
    }

    pub fn last(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// A context that only counts client errors (for admin and metadata clients).
#[derive(Default)]
pub struct ErrorCountingContext {
    pub errors: ClientErrors,
}

impl ClientContext for ErrorCountingContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.note(&error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for ErrorCountingContext {}
