//! "Is the cluster whole?": every node answers `/readyz`, and every partition of the topic has
//! a leader and a full ISR. The nemesis waits for this between faults; the run waits for it
//! before the final read.

use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::config::ClientConfig;

use crate::client_settings::ClientSettings;

pub struct Probe {
    admin: Vec<String>,
    topic: String,
    http: ureq::Agent,
    metadata: Client<DefaultClientContext>,
}

impl Probe {
    pub fn new(
        brokers: &str,
        client: &ClientSettings,
        admin: Vec<String>,
        topic: String,
    ) -> anyhow::Result<Probe> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "3000")
            .set("reconnect.backoff.max.ms", "500");
        client.apply(&mut config);
        let native = config.create_native_config()?;
        let metadata = Client::new(
            &config,
            native,
            rdkafka::types::RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )?;
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(1)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Probe {
            admin,
            topic,
            http,
            metadata,
        })
    }

    /// Whether node `index` (0-based) answers 200 on /readyz.
    pub fn ready(&self, index: usize) -> bool {
        let Some(addr) = self.admin.get(index) else {
            return false;
        };
        match self.http.get(format!("http://{addr}/readyz")).call() {
            Ok(response) => response.status() == 200,
            Err(_) => false,
        }
    }

    /// What is still missing, or `None` when the cluster is whole.
    pub fn missing(&self) -> Option<String> {
        let not_ready: Vec<String> = (0..self.admin.len())
            .filter(|i| !self.ready(*i))
            .map(|i| (i + 1).to_string())
            .collect();
        if !not_ready.is_empty() {
            return Some(format!("node(s) {} not ready", not_ready.join(",")));
        }
        let md = match self
            .metadata
            .fetch_metadata(Some(&self.topic), Duration::from_secs(3))
        {
            Ok(md) => md,
            Err(e) => return Some(format!("no metadata: {e}")),
        };
        let Some(topic) = md.topics().iter().find(|t| t.name() == self.topic) else {
            return Some(format!("topic {} not in metadata", self.topic));
        };
        if topic.partitions().is_empty() {
            return Some(format!("topic {} has no partitions", self.topic));
        }
        for p in topic.partitions() {
            if p.leader() < 0 {
                return Some(format!("partition {} has no leader", p.id()));
            }
            if p.isr().len() < p.replicas().len() {
                return Some(format!(
                    "partition {} ISR {:?} of replicas {:?}",
                    p.id(),
                    p.isr(),
                    p.replicas()
                ));
            }
        }
        None
    }

    /// Waits until the cluster is whole; returns how long that took.
    pub fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let Some(missing) = self.missing() else {
                return Ok(started.elapsed());
            };
            if started.elapsed() >= timeout {
                bail!(
                    "still not whole after {:.0} s: {missing}",
                    timeout.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
