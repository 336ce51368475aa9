//! Creating the topic under test, which doubles as the "is the cluster reachable" check.

use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use super::ErrorCountingContext;
use crate::client_settings::ClientSettings;

pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
}

/// Creates the topic; an error here means the cluster is unreachable or refused the topic.
pub fn create(
    brokers: &str,
    client: &ClientSettings,
    spec: &TopicSpec<'_>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.connection.setup.timeout.ms", "5000");
    client.apply(&mut config);
    let admin: AdminClient<ErrorCountingContext> = config
        .create_with_context(ErrorCountingContext::default())
        .context("creating the admin client")?;
    // Metadata first: it fails fast and clearly when nothing answers.
    if let Err(e) = admin.inner().fetch_metadata(None, timeout) {
        let last = admin.inner().context().errors.last();
        bail!(
            "cluster at {brokers} unreachable: {e}{}",
            last.map(|l| format!(" ({l})")).unwrap_or_default()
        );
    }
    let min_isr = spec.min_insync_replicas.to_string();
    let topic = NewTopic::new(
        spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    )
    .set("min.insync.replicas", &min_isr);
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")?;
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .context("CreateTopics")?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                bail!(
                    "topic {name} already exists; pick a new --topic (the checker needs an empty one)"
                )
            }
            Err((name, code)) => bail!("creating topic {name}: {code:?} ({code})"),
        }
    }
    Ok(())
}
