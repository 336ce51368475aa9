//! Planning IncrementalAlterConfigs for brokers: dynamic broker configs, for one broker or as
//! the cluster-wide default, become BrokerConfig records, all or nothing per resource.
//!
//! Only the settings Shoal applies while running may change ([`ConfigDef::is_alterable`]):
//! Kafka's other dynamic settings are read at start-up here, and accepting a change that
//! nothing applies would tell the operator it worked when it did not. The exception is a
//! setting of a feature Shoal does not have (Kafka's GSSAPI ones): Kafka keeps such a value
//! without effect on a broker without the feature, and so does Shoal.

use std::collections::BTreeSet;

use shoal_config::def::normalize;
use shoal_config::{ConfigDef, DynamicScope, broker_config_def};

use crate::controller::alter_configs::not_a_list;
use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::{AlterBrokerConfigs, AlterConfigOp, AlterConfigOpType};
use crate::error::ControllerError;
use crate::features::BROKER_CONFIGS_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans each broker resource of an IncrementalAlterConfigs request.
pub fn plan_alter_broker_configs(
    image: &MetadataImage,
    resources: Vec<AlterBrokerConfigs>,
) -> Vec<Planned<()>> {
    let items = reject_duplicates(resources, |r| scope_name(r.broker_id), "broker resource");
    plan_in_order(image, items, |working, resource| {
        if working.metadata_version() < BROKER_CONFIGS_METADATA_VERSION {
            return Err(ControllerError::InvalidRequest(format!(
                "Dynamic broker configs need metadata.version {BROKER_CONFIGS_METADATA_VERSION}; \
                 this cluster is at {} (shoalctl cluster features upgrade)",
                working.metadata_version()
            )));
        }
        if let Some(id) = resource.broker_id
            && id < 0
        {
            return Err(ControllerError::InvalidRequest(format!(
                "Invalid broker id {id}: a broker resource is a broker id or empty (the cluster default)"
            )));
        }
        let mut seen = BTreeSet::new();
        let mut records = Vec::with_capacity(resource.ops.len());
        for op in &resource.ops {
            if !seen.insert(op.name.as_str()) {
                return Err(ControllerError::InvalidRequest(format!(
                    "Error due to duplicate config keys: {}",
                    op.name
                )));
            }
            let value = plan_value(resource.broker_id, op)?;
            records.push(MetadataRecord::BrokerConfig {
                broker_id: resource.broker_id,
                name: op.name.clone(),
                value,
            });
        }
        Ok(((), records))
    })
}

fn scope_name(broker_id: Option<i32>) -> String {
    broker_id.map_or_else(|| "<default>".to_string(), |id| id.to_string())
}

/// The value one operation leaves (`None`: removed), validated against the schema.
fn plan_value(
    broker_id: Option<i32>,
    op: &AlterConfigOp,
) -> Result<Option<String>, ControllerError> {
    let def = alterable_def(broker_id, &op.name)?;
    match op.op {
        AlterConfigOpType::Delete => Ok(None),
        AlterConfigOpType::Set => {
            let raw = op.value.as_deref().ok_or_else(|| {
                ControllerError::InvalidRequest(format!(
                    "Null value not supported for: {}",
                    op.name
                ))
            })?;
            normalize(def, raw)
                .map(Some)
                .map_err(|e| ControllerError::InvalidConfig(e.to_string()))
        }
        // Every alterable broker config is a number so far; a list would need append/subtract.
        AlterConfigOpType::Append | AlterConfigOpType::Subtract => Err(not_a_list(op)),
    }
}

fn alterable_def(
    broker_id: Option<i32>,
    name: &str,
) -> Result<&'static ConfigDef, ControllerError> {
    let def = broker_config_def(name)
        .filter(|d| d.synonym_of.is_none())
        .ok_or_else(|| ControllerError::InvalidConfig(format!("Unknown broker config: {name}")))?;
    if !def.is_alterable() {
        return Err(ControllerError::InvalidConfig(format!(
            "Cannot update {name} dynamically: Shoal reads it at start-up (set it in the \
             broker's properties); dynamic in Shoal: {}",
            alterable_names().join(", ")
        )));
    }
    if broker_id.is_none() && def.dynamic == DynamicScope::PerBroker {
        return Err(ControllerError::InvalidConfig(format!(
            "{name} is a per-broker config and cannot be set as the cluster default"
        )));
    }
    Ok(def)
}

fn alterable_names() -> Vec<&'static str> {
    shoal_config::BROKER_CONFIGS
        .iter()
        .filter(|d| d.is_alterable())
        .map(|d| d.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_images::image_at_version;

    const RATE: &str = "leader.replication.throttled.rate";

    fn op(name: &str, op: AlterConfigOpType, value: Option<&str>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.to_string(),
            op,
            value: value.map(str::to_string),
        }
    }

    fn set(name: &str, value: &str) -> AlterConfigOp {
        op(name, AlterConfigOpType::Set, Some(value))
    }

    fn resource(broker_id: Option<i32>, ops: Vec<AlterConfigOp>) -> AlterBrokerConfigs {
        AlterBrokerConfigs { broker_id, ops }
    }

    fn error_of(planned: &Planned<()>) -> String {
        match planned {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_dynamic_config_becomes_a_record_for_its_broker_or_the_cluster() {
        let image = image_at_version(6);
        let planned = plan_alter_broker_configs(
            &image,
            vec![
                resource(Some(1), vec![set(RATE, " 1000 ")]),
                resource(
                    None,
                    vec![
                        set("follower.replication.throttled.rate", "5"),
                        op(RATE, AlterConfigOpType::Delete, None),
                    ],
                ),
            ],
        );
        let records: Vec<_> = planned
            .into_iter()
            .flat_map(|p| p.map(|(_, r)| r).unwrap_or_default())
            .collect();
        assert_eq!(
            records,
            vec![
                MetadataRecord::BrokerConfig {
                    broker_id: Some(1),
                    name: RATE.into(),
                    value: Some("1000".into()),
                },
                MetadataRecord::BrokerConfig {
                    broker_id: None,
                    name: "follower.replication.throttled.rate".into(),
                    value: Some("5".into()),
                },
                MetadataRecord::BrokerConfig {
                    broker_id: None,
                    name: RATE.into(),
                    value: None,
                },
            ]
        );
    }

    /// Kafka's GSSAPI settings are kept per broker without effect, as on Kafka without a
    /// GSSAPI listener (librdkafka's 0081_admin sets one and expects NO_ERROR).
    #[test]
    fn a_kerberos_setting_is_kept_per_broker_only() {
        let image = image_at_version(6);
        let name = "sasl.kerberos.min.time.before.relogin";
        let planned = plan_alter_broker_configs(
            &image,
            vec![
                resource(Some(1), vec![set(name, "58000")]),
                resource(None, vec![set(name, "58000")]),
                resource(Some(2), vec![set(name, "soon")]),
            ],
        );
        let errors: Vec<String> = planned.iter().map(error_of).collect();
        assert_eq!(errors[0], "ok");
        assert!(errors[1].contains("per-broker config"), "{}", errors[1]);
        assert!(errors[2].contains(name), "{}", errors[2]);
        let records = planned
            .into_iter()
            .next()
            .and_then(Result::ok)
            .map(|(_, r)| r);
        assert_eq!(
            records,
            Some(vec![MetadataRecord::BrokerConfig {
                broker_id: Some(1),
                name: name.into(),
                value: Some("58000".into()),
            }])
        );
        // A setting Shoal reads at start-up still is not.
        let planned = plan_alter_broker_configs(
            &image,
            vec![resource(Some(1), vec![set("num.io.threads", "16")])],
        );
        assert!(error_of(&planned[0]).contains("Cannot update num.io.threads dynamically"));
    }

    #[test]
    fn bad_changes_are_refused_whole_and_name_the_reason() {
        let image = image_at_version(6);
        let cases: Vec<(AlterBrokerConfigs, &str)> = vec![
            (
                resource(Some(1), vec![set("no.such.config", "1")]),
                "Unknown broker config",
            ),
            (
                resource(Some(1), vec![set("log.dirs", "/x")]),
                "Cannot update log.dirs dynamically",
            ),
            (
                resource(Some(1), vec![set("log.retention.hours", "1")]),
                "Unknown broker config",
            ),
            (resource(Some(1), vec![set(RATE, "-1")]), "at least 0"),
            (resource(Some(1), vec![set(RATE, "fast")]), "LONG"),
            (
                resource(Some(1), vec![op(RATE, AlterConfigOpType::Set, None)]),
                "Null value",
            ),
            (
                resource(
                    Some(1),
                    vec![op(RATE, AlterConfigOpType::Append, Some("1"))],
                ),
                "not a list",
            ),
            (
                resource(Some(1), vec![set(RATE, "1"), set(RATE, "2")]),
                "duplicate config keys",
            ),
            (
                resource(Some(-3), vec![set(RATE, "1")]),
                "Invalid broker id -3",
            ),
            // A good op next to a bad one: nothing of the resource is planned.
            (
                resource(None, vec![set(RATE, "1"), set("log.dirs", "/x")]),
                "Cannot update",
            ),
        ];
        for (r, needle) in cases {
            let planned = plan_alter_broker_configs(&image, vec![r.clone()]);
            let error = error_of(&planned[0]);
            assert!(error.contains(needle), "{r:?}: {error}");
        }
        // The same resource twice in one request: both refused.
        let planned = plan_alter_broker_configs(
            &image,
            vec![
                resource(Some(2), vec![set(RATE, "1")]),
                resource(Some(2), vec![]),
            ],
        );
        assert!(
            planned
                .iter()
                .all(|p| error_of(p).contains("Duplicate broker resource"))
        );
    }

    #[test]
    fn an_older_metadata_version_writes_no_broker_config() {
        let planned = plan_alter_broker_configs(
            &image_at_version(5),
            vec![resource(Some(1), vec![set(RATE, "1")])],
        );
        assert!(
            error_of(&planned[0]).contains("metadata.version 6"),
            "{planned:?}"
        );
    }
}
