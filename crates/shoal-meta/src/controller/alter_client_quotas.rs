//! Planning AlterClientQuotas (KIP-546): each entity's changes become ClientQuota records, all
//! or nothing per entity, checked as Kafka's `ClientQuotaControlManager` checks them.
//!
//! Refused with INVALID_REQUEST: an empty entity, an entity type named twice, an unknown type,
//! IP entities (not served), a key named twice, a key Shoal does not enforce
//! (`controller_mutation_rate`), a value that is not a positive finite number, a fraction for a
//! whole-number key.

use std::collections::{BTreeMap, BTreeSet};

use crate::client_quotas::{
    CLIENT_ID_ENTITY, ClientQuotaEntity, IP_ENTITY, MAX_QUOTA_ENTITIES, QUOTA_KEYS,
    QuotaEntityName, QuotaValue, QuotaValueKind, USER_ENTITY, quota_key_kind,
};
use crate::controller::plan::{MAX_NAME_LENGTH, Planned, plan_in_order};
use crate::controller::requests::{ClientQuotaAlteration, ClientQuotaOp};
use crate::error::ControllerError;
use crate::features::CLIENT_QUOTAS_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans each entity's alteration, in request order.
pub fn plan_alter_client_quotas(
    image: &MetadataImage,
    alterations: Vec<ClientQuotaAlteration>,
) -> Vec<Planned<()>> {
    let parsed: Vec<Result<(ClientQuotaEntity, Vec<ClientQuotaOp>), ControllerError>> = alterations
        .into_iter()
        .map(|a| parse_entity(&a.entity).map(|entity| (entity, a.ops)))
        .collect();
    let mut counts = BTreeMap::new();
    for (entity, _) in parsed.iter().flatten() {
        *counts.entry(entity.clone()).or_insert(0usize) += 1;
    }
    let items = parsed
        .into_iter()
        .map(|item| match item {
            Ok((entity, _)) if counts.get(&entity).copied().unwrap_or(0) > 1 => Err(
                ControllerError::InvalidRequest(format!("Duplicate entity in request: {entity}")),
            ),
            other => other,
        })
        .collect();
    plan_in_order(image, items, |working, (entity, ops)| {
        if working.metadata_version() < CLIENT_QUOTAS_METADATA_VERSION {
            return Err(ControllerError::InvalidRequest(format!(
                "Client quotas need metadata.version {CLIENT_QUOTAS_METADATA_VERSION}; this \
                 cluster is at {} (shoalctl cluster features upgrade)",
                working.metadata_version()
            )));
        }
        let mut seen = BTreeSet::new();
        let mut records = Vec::with_capacity(ops.len());
        for op in &ops {
            if !seen.insert(op.key.as_str()) {
                return Err(ControllerError::InvalidRequest(format!(
                    "Duplicate quota key in request: {}",
                    op.key
                )));
            }
            let kind = quota_key_kind(&op.key).ok_or_else(|| {
                ControllerError::InvalidRequest(format!(
                    "Invalid configuration key {}; Shoal enforces: {}",
                    op.key,
                    QUOTA_KEYS.map(|(k, _)| k).join(", ")
                ))
            })?;
            if op.remove {
                if working.client_quotas.get(&entity, &op.key).is_some() {
                    records.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: op.key.clone(),
                        value: None,
                    });
                }
                continue;
            }
            check_value(&op.key, kind, op.value)?;
            records.push(MetadataRecord::ClientQuota {
                entity: entity.clone(),
                key: op.key.clone(),
                value: Some(QuotaValue(op.value)),
            });
        }
        let adds_entity = !working.client_quotas.entities.contains_key(&entity)
            && records
                .iter()
                .any(|r| matches!(r, MetadataRecord::ClientQuota { value: Some(_), .. }));
        if adds_entity && working.client_quotas.entities.len() >= MAX_QUOTA_ENTITIES {
            return Err(ControllerError::InvalidRequest(format!(
                "The cluster already has {MAX_QUOTA_ENTITIES} quota entities, the most it keeps"
            )));
        }
        Ok(((), records))
    })
}

/// A wire entity (`(entity_type, name)`, a null name for the default) as a quota entity.
pub fn parse_entity(
    parts: &[(String, Option<String>)],
) -> Result<ClientQuotaEntity, ControllerError> {
    let invalid = |why: String| Err(ControllerError::InvalidRequest(why));
    if parts.is_empty() {
        return invalid("Invalid empty client quota entity".to_string());
    }
    let mut entity = ClientQuotaEntity {
        user: None,
        client_id: None,
    };
    for (entity_type, name) in parts {
        if let Some(n) = name
            && n.len() > MAX_NAME_LENGTH
        {
            return invalid(format!(
                "A {entity_type} entity name is at most {MAX_NAME_LENGTH} bytes"
            ));
        }
        let slot = match entity_type.as_str() {
            USER_ENTITY => &mut entity.user,
            CLIENT_ID_ENTITY => &mut entity.client_id,
            IP_ENTITY => {
                return invalid(
                    "IP quotas (connection_creation_rate) are not supported by Shoal".to_string(),
                );
            }
            other => return invalid(format!("Unhandled client quota entity type: {other}")),
        };
        if slot.is_some() {
            return invalid(format!("Duplicate {entity_type} in the entity"));
        }
        *slot = Some(QuotaEntityName::from_wire(name.as_deref()));
    }
    Ok(entity)
}

fn check_value(key: &str, kind: QuotaValueKind, value: f64) -> Result<(), ControllerError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ControllerError::InvalidRequest(format!(
            "Quota {key} must be greater than 0, not {value}"
        )));
    }
    if kind == QuotaValueKind::Long && (value.fract() != 0.0 || value > i64::MAX as f64) {
        return Err(ControllerError::InvalidRequest(format!(
            "Configuration {key} must be a Long value, not {value}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};
    use crate::controller::test_images::image_at_version;

    fn part(entity_type: &str, name: Option<&str>) -> (String, Option<String>) {
        (entity_type.to_string(), name.map(str::to_string))
    }

    fn set(key: &str, value: f64) -> ClientQuotaOp {
        ClientQuotaOp {
            key: key.to_string(),
            value,
            remove: false,
        }
    }

    fn remove(key: &str) -> ClientQuotaOp {
        ClientQuotaOp {
            key: key.to_string(),
            value: 0.0,
            remove: true,
        }
    }

    fn alteration(
        entity: Vec<(String, Option<String>)>,
        ops: Vec<ClientQuotaOp>,
    ) -> ClientQuotaAlteration {
        ClientQuotaAlteration { entity, ops }
    }

    fn outcome(planned: &Planned<()>) -> String {
        match planned {
            Ok((_, records)) => format!("ok {}", records.len()),
            Err(e) => e.to_string(),
        }
    }

    fn alice() -> Vec<(String, Option<String>)> {
        vec![part(USER_ENTITY, Some("alice"))]
    }

    #[test]
    fn each_bad_alteration_is_refused_as_kafka_does() {
        let image = image_at_version(CLIENT_QUOTAS_METADATA_VERSION);
        let cases: Vec<(ClientQuotaAlteration, &str)> = vec![
            (
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, 1024.0)]),
                "ok 1",
            ),
            (
                alteration(vec![], vec![set(PRODUCER_BYTE_RATE, 1.0)]),
                "empty client quota entity",
            ),
            (
                alteration(
                    vec![part(USER_ENTITY, Some("a")), part(USER_ENTITY, None)],
                    vec![set(PRODUCER_BYTE_RATE, 1.0)],
                ),
                "Duplicate user",
            ),
            (
                alteration(
                    vec![part("topic", Some("x"))],
                    vec![set(PRODUCER_BYTE_RATE, 1.0)],
                ),
                "Unhandled client quota entity type: topic",
            ),
            (
                alteration(
                    vec![part(IP_ENTITY, Some("10.0.0.1"))],
                    vec![set("connection_creation_rate", 1.0)],
                ),
                "IP quotas",
            ),
            (
                alteration(alice(), vec![set("bogus_rate", 1.0)]),
                "Invalid configuration key bogus_rate",
            ),
            (
                alteration(alice(), vec![set("controller_mutation_rate", 5.0)]),
                "Invalid configuration key",
            ),
            // A share of a thread may be a fraction.
            (
                alteration(alice(), vec![set("request_percentage", 12.5)]),
                "ok 1",
            ),
            (
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, -5.0)]),
                "must be greater than 0",
            ),
            (
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, 0.0)]),
                "must be greater than 0",
            ),
            (
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, f64::NAN)]),
                "must be greater than 0",
            ),
            (
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, 1.5)]),
                "must be a Long value",
            ),
            (
                alteration(
                    alice(),
                    vec![set(PRODUCER_BYTE_RATE, 1.0), remove(PRODUCER_BYTE_RATE)],
                ),
                "Duplicate quota key",
            ),
            // Removing what is not set is no change at all.
            (
                alteration(alice(), vec![remove(CONSUMER_BYTE_RATE)]),
                "ok 0",
            ),
        ];
        for (alteration, expected) in cases {
            let described = format!("{alteration:?}");
            let planned = plan_alter_client_quotas(&image, vec![alteration]);
            assert_eq!(planned.len(), 1);
            let got = outcome(&planned[0]);
            assert!(
                got.contains(expected),
                "{described}: got {got:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn later_alterations_see_earlier_ones_and_duplicates_are_refused() {
        let mut image = image_at_version(CLIENT_QUOTAS_METADATA_VERSION);
        let default_client = vec![part(CLIENT_ID_ENTITY, None)];
        let planned = plan_alter_client_quotas(
            &image,
            vec![
                alteration(default_client.clone(), vec![set(CONSUMER_BYTE_RATE, 100.0)]),
                alteration(alice(), vec![set(PRODUCER_BYTE_RATE, 5.0)]),
                alteration(alice(), vec![remove(PRODUCER_BYTE_RATE)]),
            ],
        );
        assert_eq!(outcome(&planned[0]), "ok 1");
        assert!(outcome(&planned[1]).contains("Duplicate entity"));
        assert!(outcome(&planned[2]).contains("Duplicate entity"));
        for (_, records) in planned.iter().flatten() {
            for record in records {
                assert_eq!(image.apply(record), crate::image::ApplyOutcome::Applied);
            }
        }
        let entity = ClientQuotaEntity::client_id(QuotaEntityName::Default);
        assert_eq!(
            image.client_quotas.get(&entity, CONSUMER_BYTE_RATE),
            Some(100.0)
        );
        // Removing a value that is set writes a removal; the entity goes with its last value.
        let planned = plan_alter_client_quotas(
            &image,
            vec![alteration(default_client, vec![remove(CONSUMER_BYTE_RATE)])],
        );
        assert_eq!(outcome(&planned[0]), "ok 1");
        for (_, records) in planned.iter().flatten() {
            for record in records {
                assert_eq!(image.apply(record), crate::image::ApplyOutcome::Applied);
            }
        }
        assert!(image.client_quotas.is_empty());
    }

    #[test]
    fn older_metadata_versions_refuse_quotas() {
        let image = image_at_version(CLIENT_QUOTAS_METADATA_VERSION - 1);
        let planned = plan_alter_client_quotas(
            &image,
            vec![alteration(alice(), vec![set(PRODUCER_BYTE_RATE, 1.0)])],
        );
        assert!(
            outcome(&planned[0]).contains("metadata.version 8"),
            "{}",
            outcome(&planned[0])
        );
    }
}
