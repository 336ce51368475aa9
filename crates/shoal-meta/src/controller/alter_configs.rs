//! Planning IncrementalAlterConfigs for topics: each resource's operations are validated
//! together and become TopicConfig records, all or nothing per topic (as in Kafka).

use std::collections::BTreeSet;

use crate::broker_defaults::BrokerDefaults;
use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::{AlterConfigOp, AlterConfigOpType, AlterTopicConfigs};
use crate::error::ControllerError;
use crate::image::{MetadataImage, TopicImage};
use crate::records::MetadataRecord;
use crate::topic_config::{
    ConfigType, check_log_config, list_elements, resolve_topic_config, topic_config_def,
    validate_topic_config,
};

/// Plans each resource of an IncrementalAlterConfigs request.
pub fn plan_alter_configs(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    resources: Vec<AlterTopicConfigs>,
) -> Vec<Planned<()>> {
    let items = reject_duplicates(resources, |r| r.topic.clone(), "topic name");
    plan_in_order(image, items, |working, resource| {
        let Some(topic) = working.topic_by_name(&resource.topic) else {
            return Err(ControllerError::UnknownTopicOrPartition(resource.topic));
        };
        let mut seen = BTreeSet::new();
        let mut records = Vec::with_capacity(resource.ops.len());
        let mut after = topic.configs.clone();
        for op in &resource.ops {
            if !seen.insert(op.name.as_str()) {
                return Err(ControllerError::InvalidRequest(format!(
                    "Error due to duplicate config keys: {}",
                    op.name
                )));
            }
            let record = plan_op(topic, defaults, op)?;
            if let MetadataRecord::TopicConfig { name, value, .. } = &record {
                match value {
                    Some(value) => after.insert(name.clone(), value.clone()),
                    None => after.remove(name),
                };
            }
            records.push(record);
        }
        // The topic's logs must be able to run with the result, all changes together.
        check_log_config(&after, defaults.configs())?;
        Ok(((), records))
    })
}

fn plan_op(
    topic: &TopicImage,
    defaults: &BrokerDefaults,
    op: &AlterConfigOp,
) -> Result<MetadataRecord, ControllerError> {
    let def = topic_config_def(&op.name).ok_or_else(|| {
        ControllerError::InvalidConfig(format!("Unknown topic config name: {}", op.name))
    })?;
    let required_value = || {
        op.value.as_deref().ok_or_else(|| {
            ControllerError::InvalidRequest(format!("Null value not supported for: {}", op.name))
        })
    };
    let value = match op.op {
        AlterConfigOpType::Set => Some(validate_topic_config(&op.name, required_value()?)?),
        AlterConfigOpType::Delete => None,
        AlterConfigOpType::Append | AlterConfigOpType::Subtract => {
            if def.config_type() != ConfigType::List {
                return Err(not_a_list(op));
            }
            let current = resolve_topic_config(&op.name, &topic.configs, defaults.configs())?.value;
            let mut elements = list_elements(&current);
            let given = list_elements(required_value()?);
            if op.op == AlterConfigOpType::Append {
                for e in given {
                    if !elements.contains(&e) {
                        elements.push(e);
                    }
                }
            } else {
                elements.retain(|e| !given.contains(e));
            }
            Some(validate_topic_config(&op.name, &elements.join(","))?)
        }
    };
    Ok(MetadataRecord::TopicConfig {
        topic_id: topic.id,
        name: op.name.clone(),
        value,
    })
}

/// Kafka's refusal of APPEND or SUBTRACT on a config that is not a list.
pub(super) fn not_a_list(op: &AlterConfigOp) -> ControllerError {
    ControllerError::InvalidConfig(format!(
        "Config value {} is not allowed for config key {}: it is not a list",
        if op.op == AlterConfigOpType::Append {
            "append"
        } else {
            "subtract"
        },
        op.name
    ))
}
