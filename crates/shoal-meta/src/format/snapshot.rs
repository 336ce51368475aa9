//! [`MetadataImage`] ⇄ snapshot bytes.
//!
//! Format versions: 1 = the legacy JSON `{"format_version": 1, "image": ...}` (read only);
//! 2 = `[MAGIC, 2] + MetadataImage` protobuf; 3 = the same with brokers' supported features and
//! the finalized features (metadata.version 2); 4 = and the ACLs and SCRAM credentials
//! (metadata.version 3); 5 = and the reassignments in progress and brokers' log directory ids
//! (metadata.version 4); 6 = and the controller voters' directory ids (metadata.version 5);
//! 7 = and the dynamic broker configs (metadata.version 6).
//! Anything else is refused with the version
//! found. Like records, an image is written at the lowest format that represents it: format 2
//! while no feature is reported or finalized, so binaries that read only format 2 can follow a
//! cluster until its `metadata.version` is raised.

use std::collections::BTreeMap;

use crate::format::proto;
use crate::format::records::{
    acl_from_proto, acl_to_proto, client_quota_from_proto, client_quota_to_proto,
    endpoint_from_proto, endpoint_to_proto, features_from_proto, features_to_proto, level_from,
    scram_from_proto, scram_to_proto,
};
use crate::format::{
    FormatError, Framed, decode_message, required, split_header, uuid_bytes, uuid_from, with_header,
};
use crate::image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};

/// The newest snapshot format; versions `LEGACY_JSON_SNAPSHOT_FORMAT_VERSION..=` this are read.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 9;
/// The first protobuf format (no feature fields).
const FORMAT_WITHOUT_FEATURES: u8 = 2;
/// Features, no ACLs.
const FORMAT_WITHOUT_ACLS: u8 = 3;
/// ACLs and SCRAM credentials, no reassignments.
const FORMAT_WITHOUT_REASSIGNMENTS: u8 = 4;
/// Reassignments and brokers' directory ids, no voter directory ids.
const FORMAT_WITHOUT_VOTER_DIRECTORIES: u8 = 5;
/// Voter directory ids, no dynamic broker configs.
const FORMAT_WITHOUT_BROKER_CONFIGS: u8 = 6;
/// Dynamic broker configs, no client quotas.
const FORMAT_WITHOUT_CLIENT_QUOTAS: u8 = 7;
/// Client quotas, no group configs.
const FORMAT_WITHOUT_GROUP_CONFIGS: u8 = 8;
/// The unversioned-era JSON snapshot.
pub const LEGACY_JSON_SNAPSHOT_FORMAT_VERSION: u8 = 1;

const WHAT: &str = "metadata snapshot";

fn unsupported(found: u32) -> FormatError {
    FormatError::UnsupportedVersion {
        what: "snapshot format".to_string(),
        found,
        min: u32::from(LEGACY_JSON_SNAPSHOT_FORMAT_VERSION),
        max: u32::from(SNAPSHOT_FORMAT_VERSION),
    }
}

pub fn encode_snapshot(image: &MetadataImage) -> Vec<u8> {
    let message = proto::MetadataImage {
        cluster_id: Some(image.cluster_id.clone()),
        brokers: image
            .brokers
            .values()
            .map(|b| proto::BrokerRegistration {
                broker_id: Some(b.broker_id),
                incarnation_id: uuid_bytes(&b.incarnation_id),
                broker_epoch: Some(b.broker_epoch),
                listeners: b.listeners.iter().map(endpoint_to_proto).collect(),
                rack: b.rack.clone(),
                fenced: Some(b.fenced),
                supported_features: b.supported_features.as_deref().map(|f| {
                    proto::SupportedFeatures {
                        features: features_to_proto(f),
                    }
                }),
                log_dirs: b.log_dirs.iter().map(uuid_bytes).collect(),
            })
            .collect(),
        topics: image
            .topics
            .values()
            .map(|t| proto::TopicImage {
                topic_id: uuid_bytes(&t.id),
                name: Some(t.name.clone()),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| proto::PartitionImage {
                        partition: Some(p.partition),
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        leader: Some(p.leader),
                        leader_epoch: Some(p.leader_epoch),
                        partition_epoch: Some(p.partition_epoch),
                        adding_replicas: p.adding_replicas.clone(),
                        removing_replicas: p.removing_replicas.clone(),
                    })
                    .collect(),
                configs: t
                    .configs
                    .iter()
                    .map(|(name, value)| proto::ConfigEntry {
                        name: Some(name.clone()),
                        value: Some(value.clone()),
                    })
                    .collect(),
            })
            .collect(),
        next_producer_id: Some(image.next_producer_id),
        last_applied_index: Some(image.last_applied_index),
        finalized_features: image
            .finalized_features
            .iter()
            .map(|(name, level)| proto::FinalizedFeature {
                name: Some(name.clone()),
                level: Some(i32::from(*level)),
            })
            .collect(),
        acls: image
            .acls
            .iter()
            .map(|(id, acl)| acl_to_proto(id, acl))
            .collect(),
        scram_credentials: image
            .scram_credentials
            .iter()
            .flat_map(|(name, by_mechanism)| by_mechanism.values().map(|c| scram_to_proto(name, c)))
            .collect(),
        voter_directories: image
            .voter_directories
            .iter()
            .map(|(voter_id, directory_id)| proto::VoterDirectoryRecord {
                voter_id: Some(*voter_id),
                directory_id: uuid_bytes(directory_id),
            })
            .collect(),
        broker_configs: std::iter::once((None, &image.broker_configs.cluster))
            .chain(
                image
                    .broker_configs
                    .per_broker
                    .iter()
                    .map(|(id, configs)| (Some(*id), configs)),
            )
            .flat_map(|(broker_id, configs)| {
                configs
                    .iter()
                    .map(move |(name, value)| proto::BrokerConfigRecord {
                        broker_id,
                        name: Some(name.clone()),
                        value: Some(value.clone()),
                    })
            })
            .collect(),
        client_quotas: image
            .client_quotas
            .entities
            .iter()
            .flat_map(|(entity, values)| {
                values
                    .iter()
                    .map(move |(key, value)| client_quota_to_proto(entity, key, Some(value.0)))
            })
            .collect(),
        group_configs: image
            .group_configs
            .groups
            .iter()
            .flat_map(|(group, configs)| {
                configs
                    .iter()
                    .map(move |(name, value)| proto::GroupConfigRecord {
                        group: Some(group.clone()),
                        name: Some(name.clone()),
                        value: Some(value.clone()),
                    })
            })
            .collect(),
    };
    let has_features = !image.finalized_features.is_empty()
        || image
            .brokers
            .values()
            .any(|b| b.supported_features.is_some());
    let reassigning = image
        .topics
        .values()
        .any(|t| t.partitions.iter().any(|p| p.is_reassigning()));
    let directories = image.brokers.values().any(|b| !b.log_dirs.is_empty());
    let format = if !image.group_configs.is_empty() {
        SNAPSHOT_FORMAT_VERSION
    } else if !image.client_quotas.is_empty() {
        FORMAT_WITHOUT_GROUP_CONFIGS
    } else if !image.broker_configs.is_empty() {
        FORMAT_WITHOUT_CLIENT_QUOTAS
    } else if !image.voter_directories.is_empty() {
        FORMAT_WITHOUT_BROKER_CONFIGS
    } else if reassigning || directories {
        FORMAT_WITHOUT_VOTER_DIRECTORIES
    } else if !image.acls.is_empty() || !image.scram_credentials.is_empty() {
        FORMAT_WITHOUT_REASSIGNMENTS
    } else if has_features {
        FORMAT_WITHOUT_ACLS
    } else {
        FORMAT_WITHOUT_FEATURES
    };
    with_header(format, &message)
}

/// A snapshot in any format this binary reads.
pub fn decode_snapshot(bytes: &[u8]) -> Result<MetadataImage, FormatError> {
    match split_header(WHAT, bytes)? {
        Framed::LegacyJson(json) => decode_legacy_json(json),
        Framed::Versioned { version, body } => {
            if version <= LEGACY_JSON_SNAPSHOT_FORMAT_VERSION || version > SNAPSHOT_FORMAT_VERSION {
                return Err(unsupported(u32::from(version)));
            }
            image_from_proto(version, decode_message(WHAT, body)?)
        }
    }
}

fn decode_legacy_json(json: &[u8]) -> Result<MetadataImage, FormatError> {
    #[derive(serde::Deserialize)]
    struct LegacySnapshot {
        format_version: u32,
        image: serde_json::Value,
    }
    let legacy: LegacySnapshot = serde_json::from_slice(json)
        .map_err(|e| FormatError::malformed("legacy JSON snapshot", e.to_string()))?;
    if legacy.format_version != u32::from(LEGACY_JSON_SNAPSHOT_FORMAT_VERSION) {
        return Err(unsupported(legacy.format_version));
    }
    serde_json::from_value(legacy.image)
        .map_err(|e| FormatError::malformed("legacy JSON snapshot", e.to_string()))
}

fn image_from_proto(format: u8, m: proto::MetadataImage) -> Result<MetadataImage, FormatError> {
    // Format 2 has no feature fields: whatever is there is ignored, the defaults apply.
    let with_features = format >= FORMAT_WITHOUT_ACLS;
    let with_reassignments = format >= FORMAT_WITHOUT_VOTER_DIRECTORIES;
    let mut image = MetadataImage::empty(required(WHAT, "cluster_id", m.cluster_id)?);
    image.next_producer_id = required(WHAT, "next_producer_id", m.next_producer_id)?;
    image.last_applied_index = required(WHAT, "last_applied_index", m.last_applied_index)?;
    if format >= SNAPSHOT_FORMAT_VERSION {
        for c in m.group_configs {
            let group = required(WHAT, "group_configs.group", c.group)?;
            let name = required(WHAT, "group_configs.name", c.name)?;
            let value = required(WHAT, "group_configs.value", c.value)?;
            if group.is_empty() {
                return Err(FormatError::malformed(
                    WHAT,
                    "a group config of an empty group id",
                ));
            }
            if image.group_configs.get(&group, &name).is_some() {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("group config {name} twice for group {group}"),
                ));
            }
            image.group_configs.set(&group, &name, Some(&value));
        }
    }
    if format >= FORMAT_WITHOUT_GROUP_CONFIGS {
        for q in m.client_quotas {
            let (entity, key, value) = client_quota_from_proto(WHAT, q)?;
            let Some(value) = value else {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("client quota {key} of {entity} without a value"),
                ));
            };
            if image.client_quotas.get(&entity, &key).is_some() {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("client quota {key} of {entity} twice"),
                ));
            }
            image.client_quotas.set(&entity, &key, Some(value));
        }
    }
    if format >= FORMAT_WITHOUT_CLIENT_QUOTAS {
        for c in m.broker_configs {
            let name = required(WHAT, "broker_configs.name", c.name)?;
            let value = required(WHAT, "broker_configs.value", c.value)?;
            let scope = &image.broker_configs;
            if scope
                .scope(c.broker_id)
                .is_some_and(|s| s.contains_key(&name))
            {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("broker config {name} twice for broker {:?}", c.broker_id),
                ));
            }
            image.broker_configs.set(c.broker_id, &name, Some(&value));
        }
    }
    if format >= FORMAT_WITHOUT_BROKER_CONFIGS {
        for v in m.voter_directories {
            let voter_id = required(WHAT, "voter_directories.voter_id", v.voter_id)?;
            let directory_id = uuid_from(WHAT, "voter_directories.directory_id", &v.directory_id)?;
            if image
                .voter_directories
                .insert(voter_id, directory_id)
                .is_some()
            {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("voter {voter_id} has two directory ids"),
                ));
            }
        }
    }
    if with_features {
        for f in m.finalized_features {
            let name = required(WHAT, "finalized_features.name", f.name)?;
            let level = level_from(WHAT, "finalized_features.level", f.level)?;
            image.finalized_features.insert(name, level);
        }
    }
    if format >= FORMAT_WITHOUT_REASSIGNMENTS {
        for acl in m.acls {
            let (id, acl) = acl_from_proto(WHAT, acl)?;
            if image.acls.insert(id, acl).is_some() {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("ACL id {id} appears twice"),
                ));
            }
        }
        for credential in m.scram_credentials {
            let (name, credential) = scram_from_proto(WHAT, credential)?;
            let mechanism = credential.mechanism;
            let previous = image
                .scram_credentials
                .entry(name.clone())
                .or_default()
                .insert(mechanism, credential);
            if previous.is_some() {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("user {name:?} has two {mechanism} credentials"),
                ));
            }
        }
    }
    for b in m.brokers {
        let broker = BrokerRegistration {
            broker_id: required(WHAT, "brokers.broker_id", b.broker_id)?,
            incarnation_id: uuid_from(WHAT, "brokers.incarnation_id", &b.incarnation_id)?,
            broker_epoch: required(WHAT, "brokers.broker_epoch", b.broker_epoch)?,
            listeners: b
                .listeners
                .into_iter()
                .map(|e| endpoint_from_proto(WHAT, e))
                .collect::<Result<_, _>>()?,
            rack: b.rack,
            fenced: required(WHAT, "brokers.fenced", b.fenced)?,
            supported_features: match b.supported_features {
                Some(f) if with_features => Some(features_from_proto(WHAT, f.features)?),
                _ => None,
            },
            log_dirs: if with_reassignments {
                b.log_dirs
                    .iter()
                    .map(|d| uuid_from(WHAT, "brokers.log_dirs", d))
                    .collect::<Result<_, _>>()?
            } else {
                Vec::new()
            },
        };
        if image.brokers.insert(broker.broker_id, broker).is_some() {
            return Err(FormatError::malformed(WHAT, "a broker id appears twice"));
        }
    }
    for t in m.topics {
        let id = uuid_from(WHAT, "topics.topic_id", &t.topic_id)?;
        let name = required(WHAT, "topics.name", t.name)?;
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (index, p) in t.partitions.into_iter().enumerate() {
            let partition = required(WHAT, "partitions.partition", p.partition)?;
            if usize::try_from(partition).ok() != Some(index) {
                return Err(FormatError::malformed(
                    WHAT,
                    format!("topic '{name}': partition {partition} stored at position {index}"),
                ));
            }
            partitions.push(PartitionImage {
                partition,
                replicas: p.replicas,
                isr: p.isr,
                leader: required(WHAT, "partitions.leader", p.leader)?,
                leader_epoch: required(WHAT, "partitions.leader_epoch", p.leader_epoch)?,
                partition_epoch: required(WHAT, "partitions.partition_epoch", p.partition_epoch)?,
                adding_replicas: if with_reassignments {
                    p.adding_replicas
                } else {
                    Vec::new()
                },
                removing_replicas: if with_reassignments {
                    p.removing_replicas
                } else {
                    Vec::new()
                },
            });
        }
        let mut configs = BTreeMap::new();
        for c in t.configs {
            configs.insert(
                required(WHAT, "configs.name", c.name)?,
                required(WHAT, "configs.value", c.value)?,
            );
        }
        if image.topic_ids_by_name.insert(name.clone(), id).is_some() {
            return Err(FormatError::malformed(
                WHAT,
                format!("topic name '{name}' appears twice"),
            ));
        }
        let topic = TopicImage {
            id,
            name,
            partitions,
            configs,
        };
        if image.topics.insert(id, topic).is_some() {
            return Err(FormatError::malformed(
                WHAT,
                format!("topic id {id} appears twice"),
            ));
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use uuid::Uuid;

    use super::*;
    use crate::client_quotas::{
        CONSUMER_BYTE_RATE, ClientQuotaEntity, PRODUCER_BYTE_RATE, QuotaEntityName,
    };

    /// A format-6 snapshot whose voter directories are `entries`.
    fn with_voters(entries: Vec<proto::VoterDirectoryRecord>) -> Vec<u8> {
        let mut image = MetadataImage::empty("c");
        image.voter_directories.insert(1, Uuid::from_u128(1));
        let bytes = encode_snapshot(&image);
        assert_eq!(bytes[1], FORMAT_WITHOUT_BROKER_CONFIGS);
        let mut message = proto::MetadataImage::decode(&bytes[2..]).unwrap_or_default();
        message.voter_directories = entries;
        with_header(FORMAT_WITHOUT_BROKER_CONFIGS, &message)
    }

    /// A format-7 snapshot whose broker configs are `entries`.
    fn with_broker_configs(entries: Vec<proto::BrokerConfigRecord>) -> Vec<u8> {
        let mut image = MetadataImage::empty("c");
        image.broker_configs.set(Some(1), "x", Some("1"));
        let bytes = encode_snapshot(&image);
        assert_eq!(bytes[1], FORMAT_WITHOUT_CLIENT_QUOTAS);
        let mut message = proto::MetadataImage::decode(&bytes[2..]).unwrap_or_default();
        message.broker_configs = entries;
        with_header(FORMAT_WITHOUT_CLIENT_QUOTAS, &message)
    }

    /// A format-8 snapshot whose client quotas are `entries`.
    fn with_client_quotas(entries: Vec<proto::ClientQuotaRecord>) -> Vec<u8> {
        let mut image = MetadataImage::empty("c");
        image
            .client_quotas
            .set(&alice(), PRODUCER_BYTE_RATE, Some(1.0));
        let bytes = encode_snapshot(&image);
        assert_eq!(bytes[1], FORMAT_WITHOUT_GROUP_CONFIGS);
        let mut message = proto::MetadataImage::decode(&bytes[2..]).unwrap_or_default();
        message.client_quotas = entries;
        with_header(FORMAT_WITHOUT_GROUP_CONFIGS, &message)
    }

    /// A format-9 snapshot whose group configs are `entries`.
    fn with_group_configs(entries: Vec<proto::GroupConfigRecord>) -> Vec<u8> {
        let mut image = MetadataImage::empty("c");
        image
            .group_configs
            .set("g", "consumer.session.timeout.ms", Some("50000"));
        let bytes = encode_snapshot(&image);
        assert_eq!(bytes[1], SNAPSHOT_FORMAT_VERSION);
        let mut message = proto::MetadataImage::decode(&bytes[2..]).unwrap_or_default();
        message.group_configs = entries;
        with_header(SNAPSHOT_FORMAT_VERSION, &message)
    }

    #[test]
    fn group_configs_round_trip_and_bad_ones_are_refused() {
        let mut image = MetadataImage::empty("c");
        image
            .group_configs
            .set("g", "consumer.session.timeout.ms", Some("50000"));
        image
            .group_configs
            .set("g", "consumer.heartbeat.interval.ms", Some("6000"));
        image
            .group_configs
            .set("h", "consumer.session.timeout.ms", Some("46000"));
        assert_eq!(decode_snapshot(&encode_snapshot(&image)), Ok(image));
        let entry = |group: Option<&str>, name: Option<&str>, value: Option<&str>| {
            proto::GroupConfigRecord {
                group: group.map(str::to_string),
                name: name.map(str::to_string),
                value: value.map(str::to_string),
            }
        };
        let good = entry(Some("g"), Some("consumer.session.timeout.ms"), Some("1"));
        for (entries, needle) in [
            (vec![good.clone(), good.clone()], "twice"),
            (
                vec![entry(Some("g"), Some("n"), None)],
                "group_configs.value",
            ),
            (
                vec![entry(None, Some("n"), Some("1"))],
                "group_configs.group",
            ),
            (
                vec![entry(Some("g"), None, Some("1"))],
                "group_configs.name",
            ),
            (
                vec![entry(Some(""), Some("n"), Some("1"))],
                "empty group id",
            ),
        ] {
            let err = decode_snapshot(&with_group_configs(entries)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    fn alice() -> ClientQuotaEntity {
        ClientQuotaEntity::user(QuotaEntityName::Name("alice".into()))
    }

    #[test]
    fn client_quotas_round_trip_and_bad_ones_are_refused() {
        let mut image = MetadataImage::empty("c");
        let defaults = ClientQuotaEntity::user_and_client_id(
            QuotaEntityName::Default,
            QuotaEntityName::Default,
        );
        image
            .client_quotas
            .set(&alice(), PRODUCER_BYTE_RATE, Some(1024.0));
        image
            .client_quotas
            .set(&alice(), CONSUMER_BYTE_RATE, Some(2048.0));
        image
            .client_quotas
            .set(&defaults, PRODUCER_BYTE_RATE, Some(10.0));
        assert_eq!(decode_snapshot(&encode_snapshot(&image)), Ok(image));
        let quota = |value: Option<f64>| client_quota_to_proto(&alice(), PRODUCER_BYTE_RATE, value);
        let mut nameless = quota(Some(1.0));
        nameless.user = None;
        let mut keyless = quota(Some(1.0));
        keyless.key = None;
        for (entries, needle) in [
            (vec![quota(Some(1.0)), quota(Some(2.0))], "twice"),
            (vec![quota(None)], "without a value"),
            (vec![quota(Some(-1.0))], "is -1"),
            (vec![quota(Some(f64::NAN))], "is NaN"),
            (vec![nameless], "neither user nor client id"),
            (vec![keyless], "key"),
        ] {
            let err = decode_snapshot(&with_client_quotas(entries)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    fn config(
        broker_id: Option<i32>,
        name: Option<&str>,
        value: Option<&str>,
    ) -> proto::BrokerConfigRecord {
        proto::BrokerConfigRecord {
            broker_id,
            name: name.map(str::to_string),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn broker_configs_round_trip_and_bad_ones_are_refused() {
        let mut image = MetadataImage::empty("c");
        image.broker_configs.set(None, "a", Some("1"));
        image.broker_configs.set(Some(2), "a", Some("2"));
        image.broker_configs.set(Some(3), "b", Some("3"));
        assert_eq!(decode_snapshot(&encode_snapshot(&image)), Ok(image));
        for (entries, needle) in [
            (
                vec![
                    config(None, Some("a"), Some("1")),
                    config(None, Some("a"), Some("2")),
                ],
                "twice",
            ),
            (vec![config(Some(1), None, Some("1"))], "name"),
            (vec![config(Some(1), Some("a"), None)], "value"),
        ] {
            let err = decode_snapshot(&with_broker_configs(entries)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    fn voter(id: Option<i32>, directory: Vec<u8>) -> proto::VoterDirectoryRecord {
        proto::VoterDirectoryRecord {
            voter_id: id,
            directory_id: directory,
        }
    }

    #[test]
    fn voter_directories_round_trip_and_bad_ones_are_refused() {
        let a = Uuid::from_u128(0xa).as_bytes().to_vec();
        let b = Uuid::from_u128(0xb).as_bytes().to_vec();
        let decoded = decode_snapshot(&with_voters(vec![
            voter(Some(1), a.clone()),
            voter(Some(2), b.clone()),
        ]));
        assert_eq!(
            decoded.map(|i| i.voter_directories),
            Ok(BTreeMap::from([
                (1, Uuid::from_u128(0xa)),
                (2, Uuid::from_u128(0xb))
            ]))
        );
        for (entries, needle) in [
            (
                vec![voter(Some(1), a.clone()), voter(Some(1), b)],
                "two directory ids",
            ),
            (vec![voter(Some(1), vec![1, 2, 3])], "16-byte UUID"),
            (vec![voter(None, a)], "voter_id"),
        ] {
            let err = decode_snapshot(&with_voters(entries)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
