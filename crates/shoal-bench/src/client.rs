//! Pieces shared by every librdkafka client the benchmark creates.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;

use crate::cli::CommonArgs;

/// Client configuration with the bootstrap servers; `-X` overrides are applied by
/// [`apply_overrides`] once the subcommand has set its own properties.
pub fn base_config(common: &CommonArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &common.brokers)
        .set("client.id", "shoal-bench")
        // Fail metadata / connection problems in bounded time.
        .set("socket.connection.setup.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "1000");
    c
}

pub fn apply_overrides(c: &mut ClientConfig, common: &CommonArgs) {
    for (k, v) in &common.config {
        c.set(k, v);
    }
}

/// Locks a mutex, ignoring poisoning (a panicking callback must not hide the results).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most recent client-level error librdkafka reported (connection refused, all brokers
/// down, ...), used to explain failures in one line.
#[derive(Default)]
pub struct ErrorSlot(Mutex<Option<String>>);

impl ErrorSlot {
    pub fn set(&self, error: &KafkaError, reason: &str) {
        *lock(&self.0) = Some(format!("{error}: {reason}"));
    }

    pub fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

/// A client context that only remembers errors.
#[derive(Default)]
pub struct QuietContext {
    pub errors: Arc<ErrorSlot>,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.set(&error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for QuietContext {}

/// Waits until the cluster returns metadata for `topic` with a leader for every partition.
/// Returns the partition ids, sorted.
pub fn wait_for_topic<C: ClientContext>(
    client: &Client<C>,
    brokers: &str,
    topic: &str,
    timeout: Duration,
    last_client_error: impl Fn() -> Option<String>,
) -> anyhow::Result<Vec<i32>> {
    let deadline = Instant::now() + timeout;
    let mut problem;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match client.fetch_metadata(Some(topic), remaining.min(Duration::from_secs(3))) {
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                None => problem = format!("topic {topic:?} not in metadata"),
                Some(t) => {
                    if let Some(err) = t.error() {
                        problem = format!(
                            "topic {topic:?}: {:?}",
                            rdkafka::types::RDKafkaErrorCode::from(err)
                        );
                    } else if t.partitions().is_empty() {
                        problem = format!("topic {topic:?} has no partitions");
                    } else if let Some(p) = t.partitions().iter().find(|p| p.leader() < 0) {
                        problem = format!("topic {topic:?} partition {} has no leader", p.id());
                    } else {
                        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                        ids.sort_unstable();
                        return Ok(ids);
                    }
                }
            },
            Err(e) => {
                problem = match last_client_error() {
                    Some(last) => format!("{e} ({last})"),
                    None => e.to_string(),
                }
            }
        }
        if Instant::now() + Duration::from_millis(200) >= deadline {
            bail!(
                "no usable metadata for topic {topic:?} from {} within {:.1} s: {problem}",
                brokers,
                timeout.as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `f` in a current-thread tokio runtime (the admin API is async).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building tokio runtime")?;
    Ok(rt.block_on(f))
}
