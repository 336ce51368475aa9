//! Planning IncrementalAlterConfigs for groups (KIP-848 group configs): a group's overrides of
//! `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms` become GroupConfig
//! records, all or nothing per group.
//!
//! As Kafka's `ControllerConfigurationValidator` for GROUP resources: the group's whole set of
//! overrides after the change is checked against this controller's `group.consumer.*` bounds
//! (`shoal_config::validate_group_configs`), so no combination can be stored that a
//! coordinator would refuse. A removal of something not set writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::broker_defaults::BrokerDefaults;
use crate::controller::alter_configs::not_a_list;
use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::{AlterConfigOpType, AlterGroupConfigs};
use crate::error::ControllerError;
use crate::features::GROUP_CONFIGS_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans each group resource of an IncrementalAlterConfigs request.
pub fn plan_alter_group_configs(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    resources: Vec<AlterGroupConfigs>,
) -> Vec<Planned<()>> {
    let items = reject_duplicates(resources, |r| r.group.clone(), "group resource");
    plan_in_order(image, items, |working, resource| {
        if working.metadata_version() < GROUP_CONFIGS_METADATA_VERSION {
            return Err(ControllerError::InvalidRequest(format!(
                "Group configs need metadata.version {GROUP_CONFIGS_METADATA_VERSION}; this \
                 cluster is at {} (shoalctl cluster features upgrade)",
                working.metadata_version()
            )));
        }
        if resource.group.is_empty() {
            return Err(ControllerError::InvalidRequest(
                "Default group resources are not allowed.".to_string(),
            ));
        }
        let current = working.group_configs.of(&resource.group);
        let mut after: BTreeMap<String, String> = current.cloned().unwrap_or_default();
        // Kafka's checks before any other (ConfigAdminManager.preprocess): no config twice, no
        // null value but in a DELETE.
        let mut seen = BTreeSet::new();
        for op in &resource.ops {
            if !seen.insert(op.name.as_str()) {
                return Err(ControllerError::InvalidRequest(format!(
                    "Error due to duplicate config keys: {}",
                    op.name
                )));
            }
        }
        let nulls: Vec<&str> = resource
            .ops
            .iter()
            .filter(|op| op.op != AlterConfigOpType::Delete && op.value.is_none())
            .map(|op| op.name.as_str())
            .collect();
        if !nulls.is_empty() {
            return Err(ControllerError::InvalidRequest(format!(
                "Null value not supported for : {}",
                nulls.join(", ")
            )));
        }
        for op in &resource.ops {
            match (op.op, &op.value) {
                // Only the configs left are checked, as Kafka: removing an unknown one is a
                // no-op.
                (AlterConfigOpType::Delete, _) => {
                    after.remove(&op.name);
                }
                (AlterConfigOpType::Set, Some(value)) => {
                    if shoal_config::group_config_def(&op.name).is_none() {
                        return Err(ControllerError::InvalidConfig(format!(
                            "Unknown group config name: {}",
                            op.name
                        )));
                    }
                    after.insert(op.name.clone(), value.clone());
                }
                // Refused by the null check above.
                (AlterConfigOpType::Set, None) => {
                    return Err(ControllerError::InvalidRequest(format!(
                        "Null value not supported for : {}",
                        op.name
                    )));
                }
                (AlterConfigOpType::Append | AlterConfigOpType::Subtract, _) => {
                    return Err(not_a_list(op));
                }
            }
        }
        let after = shoal_config::validate_group_configs(&after, defaults.configs())
            .map_err(|e| ControllerError::InvalidConfig(e.message))?;
        // One record per config that changes, in the order the request named them.
        let records = resource
            .ops
            .iter()
            .filter_map(|op| {
                let before = current.and_then(|c| c.get(&op.name));
                let now = after.get(&op.name);
                (before != now).then(|| MetadataRecord::GroupConfig {
                    group: resource.group.clone(),
                    name: op.name.clone(),
                    value: now.cloned(),
                })
            })
            .collect();
        Ok(((), records))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::requests::AlterConfigOp;
    use crate::controller::test_images::image_at_version;
    use crate::image::ApplyOutcome;

    const SESSION: &str = "consumer.session.timeout.ms";
    const HEARTBEAT: &str = "consumer.heartbeat.interval.ms";

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

    fn delete(name: &str) -> AlterConfigOp {
        op(name, AlterConfigOpType::Delete, None)
    }

    fn group(group: &str, ops: Vec<AlterConfigOp>) -> AlterGroupConfigs {
        AlterGroupConfigs {
            group: group.to_string(),
            ops,
        }
    }

    fn record(group: &str, name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::GroupConfig {
            group: group.into(),
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    fn outcome(planned: &Planned<()>) -> Result<Vec<MetadataRecord>, String> {
        match planned {
            Ok((_, records)) => Ok(records.clone()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn plan(image: &MetadataImage, resources: Vec<AlterGroupConfigs>) -> Vec<Planned<()>> {
        plan_alter_group_configs(image, &BrokerDefaults::default(), resources)
    }

    #[test]
    fn overrides_become_records_and_a_removal_of_nothing_writes_nothing() {
        let mut image = image_at_version(9);
        let planned = plan(
            &image,
            vec![group("g", vec![set(SESSION, " 50000 "), delete(HEARTBEAT)])],
        );
        assert_eq!(
            outcome(&planned[0]),
            Ok(vec![record("g", SESSION, Some("50000"))])
        );
        assert_eq!(
            image.apply(&record("g", SESSION, Some("50000"))),
            ApplyOutcome::Applied
        );
        // Setting the same value again, or removing what is not set, changes nothing.
        let planned = plan(
            &image,
            vec![group("g", vec![set(SESSION, "50000"), delete(HEARTBEAT)])],
        );
        assert_eq!(outcome(&planned[0]), Ok(vec![]));
        let planned = plan(&image, vec![group("g", vec![delete(SESSION)])]);
        assert_eq!(outcome(&planned[0]), Ok(vec![record("g", SESSION, None)]));
    }

    /// Each resource is judged on its own and in order: the second sees the first's change.
    #[test]
    fn the_whole_set_after_the_change_is_checked() {
        let defaults = BrokerDefaults::from_configs(
            [
                ("group.consumer.min.session.timeout.ms", "1000"),
                ("group.consumer.min.heartbeat.interval.ms", "1000"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
        .expect("valid settings");
        let mut image = image_at_version(9);
        assert_eq!(
            image.apply(&record("g", SESSION, Some("3000"))),
            ApplyOutcome::Applied
        );
        // g's session is 3000 ms: its interval may go to 2000. h overrides only its session,
        // which must stay above the broker's 5000 ms interval.
        let planned = plan_alter_group_configs(
            &image,
            &defaults,
            vec![
                group("g", vec![set(HEARTBEAT, "2000")]),
                group("h", vec![set(SESSION, "4000")]),
            ],
        );
        assert_eq!(
            outcome(&planned[0]),
            Ok(vec![record("g", HEARTBEAT, Some("2000"))])
        );
        let err = outcome(&planned[1]).expect_err("4000 <= 5000");
        assert!(
            err.contains(
                "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_resources_get_kafkas_errors() {
        let image = image_at_version(9);
        let cases: Vec<(AlterGroupConfigs, &str)> = vec![
            (
                group("", vec![set(SESSION, "50000")]),
                "Default group resources are not allowed",
            ),
            (
                group("g", vec![set("share.session.timeout.ms", "50000")]),
                "Unknown group config name: share.session.timeout.ms",
            ),
            (
                group("g", vec![op(SESSION, AlterConfigOpType::Set, None)]),
                "Null value not supported",
            ),
            (
                group("g", vec![op(SESSION, AlterConfigOpType::Append, Some("1"))]),
                "append is not allowed",
            ),
            (
                group("g", vec![set(SESSION, "abc")]),
                "Not a number of type INT",
            ),
            (
                group("g", vec![set(SESSION, "70000")]),
                "less than or equal to group.consumer.max.session.timeout.ms",
            ),
            (
                group("g", vec![set(SESSION, "50000"), delete(SESSION)]),
                "duplicate config keys",
            ),
        ];
        for (resource, needle) in cases {
            let planned = plan(&image, vec![resource.clone()]);
            let err = outcome(&planned[0]).expect_err(needle);
            assert!(err.contains(needle), "{resource:?}: {err}");
        }
        // The same group twice in one request: both refused.
        let planned = plan(
            &image,
            vec![group("g", vec![set(SESSION, "50000")]), group("g", vec![])],
        );
        assert!(planned.iter().all(Result::is_err));
    }

    /// Kafka's order and codes: duplicates and null values are bad requests, found before an
    /// unknown name; removing an unknown config is a no-op.
    #[test]
    fn duplicates_and_nulls_are_bad_requests_and_unknown_removals_do_nothing() {
        let image = image_at_version(9);
        let code = |ops: Vec<AlterConfigOp>| match &plan(&image, vec![group("g", ops)])[0] {
            Ok((_, records)) => format!("ok {}", records.len()),
            Err(ControllerError::InvalidRequest(_)) => "INVALID_REQUEST".to_string(),
            Err(ControllerError::InvalidConfig(_)) => "INVALID_CONFIG".to_string(),
            Err(other) => format!("{other:?}"),
        };
        let null_unknown = op("other.config", AlterConfigOpType::Set, None);
        assert_eq!(code(vec![set("no.such.config", "1")]), "INVALID_CONFIG");
        assert_eq!(
            code(vec![set("no.such.config", "1"), null_unknown]),
            "INVALID_REQUEST"
        );
        assert_eq!(code(vec![delete("no.such.config")]), "ok 0");
        assert_eq!(code(vec![set(SESSION, "50000"), delete("typo.ms")]), "ok 1");
    }

    #[test]
    fn a_cluster_below_metadata_version_9_refuses_group_configs() {
        let image = image_at_version(8);
        let planned = plan(&image, vec![group("g", vec![set(SESSION, "50000")])]);
        let err = outcome(&planned[0]).expect_err("below 9");
        assert!(err.contains("metadata.version 9"), "{err}");
    }
}
