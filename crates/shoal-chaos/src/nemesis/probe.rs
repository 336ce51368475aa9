//! "Is the cluster whole?": every node answers `/readyz`, and every partition of the run's
//! topics, and of the internal topics that exist (`__consumer_offsets`, `__transaction_state`:
//! the coordinators' logs), has a leader and a full ISR. The nemesis waits for this between
//! faults; the run waits for it before the final read. The probe also tells the nemesis which
//! node leads a partition (`leaders`), to aim at coordinators.

use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::config::ClientConfig;

use crate::client_settings::ClientSettings;

/// Internal topics checked when they exist: a fault on a coordinator's node must wait until
/// its log is whole again, like the run's own topics.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

pub struct Probe {
    admin: Vec<String>,
    topics: Vec<String>,
    http: ureq::Agent,
    metadata: Client<DefaultClientContext>,
}

impl Probe {
    pub fn new(
        brokers: &str,
        client: &ClientSettings,
        admin: Vec<String>,
        topics: Vec<String>,
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
            topics,
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
        // Every topic (no names): asking for an internal topic by name could auto-create it.
        let md = match self.metadata.fetch_metadata(None, Duration::from_secs(3)) {
            Ok(md) => md,
            Err(e) => return Some(format!("no metadata: {e}")),
        };
        for name in &self.topics {
            let Some(topic) = md.topics().iter().find(|t| t.name() == name) else {
                return Some(format!("topic {name} not in metadata"));
            };
            if topic.partitions().is_empty() {
                return Some(format!("topic {name} has no partitions"));
            }
        }
        let checked = md.topics().iter().filter(|t| {
            self.topics.iter().any(|n| n == t.name()) || INTERNAL_TOPICS.contains(&t.name())
        });
        for topic in checked {
            for p in topic.partitions() {
                if p.leader() < 0 {
                    return Some(format!(
                        "{} partition {} has no leader",
                        topic.name(),
                        p.id()
                    ));
                }
                if p.isr().len() < p.replicas().len() {
                    return Some(format!(
                        "{} partition {} ISR {:?} of replicas {:?}",
                        topic.name(),
                        p.id(),
                        p.isr(),
                        p.replicas()
                    ));
                }
            }
        }
        None
    }

    /// (partition, leader node id) of every partition of `topic`, or `None` when the topic is
    /// not in the metadata (or the metadata cannot be had).
    pub fn leaders(&self, topic: &str) -> Option<Vec<(i32, i32)>> {
        let md = self
            .metadata
            .fetch_metadata(None, Duration::from_secs(3))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        if t.partitions().is_empty() {
            return None;
        }
        Some(
            t.partitions()
                .iter()
                .map(|p| (p.id(), p.leader()))
                .collect(),
        )
    }

    /// The run's topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// (partition, leader, replicas) of every partition of `topic`, or `None` when the topic is
    /// not in the metadata (or the metadata cannot be had).
    pub fn partitions(&self, topic: &str) -> Option<Vec<(i32, i32, Vec<i32>)>> {
        let md = self
            .metadata
            .fetch_metadata(None, Duration::from_secs(3))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        Some(
            t.partitions()
                .iter()
                .map(|p| (p.id(), p.leader(), p.replicas().to_vec()))
                .collect(),
        )
    }

    /// (leader, replicas) of one partition.
    pub fn replicas(&self, topic: &str, partition: i32) -> Option<(i32, Vec<i32>)> {
        self.partitions(topic)?
            .into_iter()
            .find(|(p, ..)| *p == partition)
            .map(|(_, leader, replicas)| (leader, replicas))
    }

    /// The metadata leader's `/v1/quorum` (the leader alone hears every voter's directory).
    fn leader_quorum(&self) -> Option<serde_json::Value> {
        self.admin.iter().find_map(|addr| {
            let mut response = self
                .http
                .get(format!("http://{addr}/v1/quorum"))
                .call()
                .ok()?;
            if response.status() != 200 {
                return None;
            }
            let text = response.body_mut().read_to_string().ok()?;
            let quorum: serde_json::Value = serde_json::from_str(&text).ok()?;
            (quorum["state"] == "Leader").then_some(quorum)
        })
    }

    /// The controller addresses of the quorum, as the leader knows them.
    pub fn voter_addresses(&self) -> Option<Vec<String>> {
        let quorum = self.leader_quorum()?;
        Some(
            quorum["voters"]
                .as_array()?
                .iter()
                .filter_map(|v| v["address"].as_str().map(str::to_string))
                .collect(),
        )
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
