//! `shoal-bench create-topic` via the AdminClient (CreateTopics).

use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::CreateTopicArgs;
use crate::client::{QuietContext, apply_overrides, base_config, block_on};

pub fn create_topic(args: &CreateTopicArgs) -> anyhow::Result<String> {
    let mut c = base_config(&args.common);
    apply_overrides(&mut c, &args.common);
    let ctx = QuietContext::default();
    let client_errors = ctx.errors.clone();
    let admin: AdminClient<QuietContext> = c
        .create_with_context(ctx)
        .context("creating admin client")?;
    let timeout = Duration::from_secs_f64(args.common.connect_timeout);
    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let mut topic = NewTopic::new(
        &args.topic,
        args.partitions,
        TopicReplication::Fixed(args.replication_factor),
    );
    for (name, value) in &args.configs {
        topic = topic.set(name, value);
    }
    let results = block_on(admin.create_topics([&topic], &opts))?.map_err(|e| {
        anyhow::anyhow!(
            "CreateTopics to {} failed: {e}{}",
            args.common.brokers,
            client_errors
                .get()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        )
    })?;
    match results.into_iter().next() {
        Some(Ok(name)) => Ok(format!(
            "created topic {name} with {} partitions, replication factor {}",
            args.partitions, args.replication_factor
        )),
        Some(Err((name, RDKafkaErrorCode::TopicAlreadyExists))) if args.if_not_exists => {
            Ok(format!("topic {name} already exists"))
        }
        Some(Err((name, code))) => bail!("creating topic {name}: {code}"),
        None => bail!("CreateTopics returned no result for {}", args.topic),
    }
}
