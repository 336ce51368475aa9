//! `shoalctl group config GROUP [--set name=value] [--delete name]`: a consumer group's own
//! session timeout and heartbeat interval (KIP-848 group configs), as `kafka-configs
//! --entity-type groups` shows and alters them. Without a change it shows them; with one it
//! alters (IncrementalAlterConfigs on the GROUP resource) and then shows the result.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::{alter_resource_configs, check};
use crate::kafka::Client;
use crate::output::Output;

/// Kafka's ConfigResource.Type GROUP.
const GROUP_RESOURCE: i8 = 32;

/// Kafka's ConfigSource names, as kafka-configs prints them.
fn source_name(source: i8) -> &'static str {
    match source {
        5 => "DEFAULT_CONFIG",
        8 => "DYNAMIC_GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

pub async fn run(
    client: &mut Client,
    group: &str,
    set: &[(String, String)],
    delete: &[String],
    out: &Output,
) -> anyhow::Result<ExitCode> {
    if group.is_empty() {
        bail!("a group id is required (Kafka has no default group resource)");
    }
    if !set.is_empty() || !delete.is_empty() {
        alter_resource_configs(
            client,
            GROUP_RESOURCE,
            group,
            set,
            delete,
            &format!("altering configs of group {group}"),
        )
        .await?;
    }
    let response = client
        .any()
        .call(DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(GROUP_RESOURCE)
                    .with_resource_name(StrBytes::from_string(group.to_string()))
                    .with_configuration_keys(None),
            ]))
        .await?;
    let result = response
        .results
        .first()
        .context("empty DescribeConfigs answer")?;
    check(
        &format!("describing configs of group {group}"),
        result.error_code,
        result.error_message.as_deref(),
    )?;
    let rows: Vec<(String, String, &str)> = result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                source_name(c.config_source),
            )
        })
        .collect();
    out.emit(
        &json!({
            "group": group,
            "configs": rows.iter().map(|(n, v, s)| json!({"name": n, "value": v, "source": s})).collect::<Vec<_>>(),
        }),
        &[(
            "",
            vec!["CONFIG", "VALUE", "SOURCE"],
            rows.iter()
                .map(|(n, v, s)| vec![n.clone(), v.clone(), s.to_string()])
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}
