//! [`MetadataRecord`] ⇄ `RecordFrame`: one record type id and one version per record.
//!
//! The encoder writes each record at the lowest version that represents it exactly (a
//! `RegisterBroker` without reported features is version 0, readable by every versioned
//! release); the controller only produces values that need a newer version once the finalized
//! `metadata.version` allows it (`crate::features`). The decoder reads every version from 0 to
//! the newest and refuses anything newer (or an unknown type id) with an error that names it.
//! Adding a version: bump the constant in [`record_versions`], decode the older versions with
//! their documented defaults, and add a fixture of the previous version.

use prost::Message;
use shoal_acl::{
    AclBinding, AclEntry, Operation, PatternType, Permission, Principal, ResourcePattern,
    ResourceType,
};
use shoal_sasl::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use crate::client_quotas::{ClientQuotaEntity, QuotaEntityName, QuotaValue};
use crate::format::proto::{self, RecordFrame};
use crate::format::{FormatError, decode_message, required, uuid_bytes, uuid_from};
use crate::records::{Endpoint, MetadataBatch, MetadataRecord, SupportedFeature};

/// The type id and newest version of one record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordVersions {
    pub name: &'static str,
    pub type_id: u32,
    /// Versions `0..=max_version` are read; `max_version` is written.
    pub max_version: u32,
}

/// Version 1 adds `supported_features` (metadata.version 2); version 2 `log_dirs`
/// (metadata.version 4).
const REGISTER_BROKER: RecordVersions = RecordVersions {
    name: "RegisterBroker",
    type_id: 1,
    max_version: 2,
};
const FENCE_BROKER: RecordVersions = RecordVersions {
    name: "FenceBroker",
    type_id: 2,
    max_version: 0,
};
const UNFENCE_BROKER: RecordVersions = RecordVersions {
    name: "UnfenceBroker",
    type_id: 3,
    max_version: 0,
};
const TOPIC: RecordVersions = RecordVersions {
    name: "Topic",
    type_id: 4,
    max_version: 0,
};
const PARTITION: RecordVersions = RecordVersions {
    name: "Partition",
    type_id: 5,
    max_version: 0,
};
/// Version 1 adds `adding_replicas` / `removing_replicas` (metadata.version 4, KIP-455).
const PARTITION_CHANGE: RecordVersions = RecordVersions {
    name: "PartitionChange",
    type_id: 6,
    max_version: 1,
};
const REMOVE_TOPIC: RecordVersions = RecordVersions {
    name: "RemoveTopic",
    type_id: 7,
    max_version: 0,
};
const TOPIC_CONFIG: RecordVersions = RecordVersions {
    name: "TopicConfig",
    type_id: 8,
    max_version: 0,
};
const PRODUCER_IDS: RecordVersions = RecordVersions {
    name: "ProducerIds",
    type_id: 9,
    max_version: 0,
};

const FEATURE_LEVEL: RecordVersions = RecordVersions {
    name: "FeatureLevel",
    type_id: 10,
    max_version: 0,
};

const ACCESS_CONTROL_ENTRY: RecordVersions = RecordVersions {
    name: "AccessControlEntry",
    type_id: 11,
    max_version: 0,
};

const REMOVE_ACCESS_CONTROL_ENTRY: RecordVersions = RecordVersions {
    name: "RemoveAccessControlEntry",
    type_id: 12,
    max_version: 0,
};

const USER_SCRAM_CREDENTIAL: RecordVersions = RecordVersions {
    name: "UserScramCredential",
    type_id: 13,
    max_version: 0,
};

const REMOVE_USER_SCRAM_CREDENTIAL: RecordVersions = RecordVersions {
    name: "RemoveUserScramCredential",
    type_id: 14,
    max_version: 0,
};

const UNREGISTER_BROKER: RecordVersions = RecordVersions {
    name: "UnregisterBroker",
    type_id: 15,
    max_version: 0,
};

const VOTER_DIRECTORY: RecordVersions = RecordVersions {
    name: "VoterDirectory",
    type_id: 16,
    max_version: 0,
};

const BROKER_CONFIG: RecordVersions = RecordVersions {
    name: "BrokerConfig",
    type_id: 17,
    max_version: 0,
};

const CLIENT_QUOTA: RecordVersions = RecordVersions {
    name: "ClientQuota",
    type_id: 18,
    max_version: 0,
};

const GROUP_CONFIG: RecordVersions = RecordVersions {
    name: "GroupConfig",
    type_id: 19,
    max_version: 0,
};

const ALL: [RecordVersions; 19] = [
    REGISTER_BROKER,
    FENCE_BROKER,
    UNFENCE_BROKER,
    TOPIC,
    PARTITION,
    PARTITION_CHANGE,
    REMOVE_TOPIC,
    TOPIC_CONFIG,
    PRODUCER_IDS,
    FEATURE_LEVEL,
    ACCESS_CONTROL_ENTRY,
    REMOVE_ACCESS_CONTROL_ENTRY,
    USER_SCRAM_CREDENTIAL,
    REMOVE_USER_SCRAM_CREDENTIAL,
    UNREGISTER_BROKER,
    VOTER_DIRECTORY,
    BROKER_CONFIG,
    CLIENT_QUOTA,
    GROUP_CONFIG,
];

/// Every record type this binary knows, in type id order.
pub fn record_versions() -> &'static [RecordVersions] {
    &ALL
}

fn versions_of(record: &MetadataRecord) -> RecordVersions {
    match record {
        MetadataRecord::RegisterBroker { .. } => REGISTER_BROKER,
        MetadataRecord::FenceBroker { .. } => FENCE_BROKER,
        MetadataRecord::UnfenceBroker { .. } => UNFENCE_BROKER,
        MetadataRecord::Topic { .. } => TOPIC,
        MetadataRecord::Partition { .. } => PARTITION,
        MetadataRecord::PartitionChange { .. } => PARTITION_CHANGE,
        MetadataRecord::RemoveTopic { .. } => REMOVE_TOPIC,
        MetadataRecord::TopicConfig { .. } => TOPIC_CONFIG,
        MetadataRecord::ProducerIds { .. } => PRODUCER_IDS,
        MetadataRecord::FeatureLevel { .. } => FEATURE_LEVEL,
        MetadataRecord::AccessControlEntry { .. } => ACCESS_CONTROL_ENTRY,
        MetadataRecord::RemoveAccessControlEntry { .. } => REMOVE_ACCESS_CONTROL_ENTRY,
        MetadataRecord::UserScramCredential { .. } => USER_SCRAM_CREDENTIAL,
        MetadataRecord::RemoveUserScramCredential { .. } => REMOVE_USER_SCRAM_CREDENTIAL,
        MetadataRecord::UnregisterBroker { .. } => UNREGISTER_BROKER,
        MetadataRecord::VoterDirectory { .. } => VOTER_DIRECTORY,
        MetadataRecord::BrokerConfig { .. } => BROKER_CONFIG,
        MetadataRecord::ClientQuota { .. } => CLIENT_QUOTA,
        MetadataRecord::GroupConfig { .. } => GROUP_CONFIG,
    }
}

/// The lowest version of `record`'s type that represents it exactly (see the module docs).
fn version_of(record: &MetadataRecord) -> u32 {
    match record {
        MetadataRecord::RegisterBroker {
            supported_features: Some(_),
            log_dirs,
            ..
        } => {
            if log_dirs.is_empty() {
                1
            } else {
                2
            }
        }
        MetadataRecord::PartitionChange {
            adding_replicas,
            removing_replicas,
            ..
        } if adding_replicas.is_some() || removing_replicas.is_some() => 1,
        _ => 0,
    }
}

pub(crate) fn features_to_proto(features: &[SupportedFeature]) -> Vec<proto::SupportedFeature> {
    features
        .iter()
        .map(|f| proto::SupportedFeature {
            name: Some(f.name.clone()),
            min_level: Some(i32::from(f.min_level)),
            max_level: Some(i32::from(f.max_level)),
        })
        .collect()
}

pub(crate) fn level_from(
    what: &'static str,
    field: &'static str,
    level: Option<i32>,
) -> Result<i16, FormatError> {
    let level = required(what, field, level)?;
    i16::try_from(level).map_err(|_| {
        FormatError::malformed(
            what,
            format!("`{field}` {level} does not fit a 16-bit level"),
        )
    })
}

pub(crate) fn features_from_proto(
    what: &'static str,
    features: Vec<proto::SupportedFeature>,
) -> Result<Vec<SupportedFeature>, FormatError> {
    features
        .into_iter()
        .map(|f| {
            Ok(SupportedFeature {
                name: required(what, "supported_features.name", f.name)?,
                min_level: level_from(what, "supported_features.min_level", f.min_level)?,
                max_level: level_from(what, "supported_features.max_level", f.max_level)?,
            })
        })
        .collect()
}

pub(crate) fn endpoint_to_proto(e: &Endpoint) -> proto::Endpoint {
    proto::Endpoint {
        name: Some(e.name.clone()),
        host: Some(e.host.clone()),
        port: Some(u32::from(e.port)),
    }
}

pub(crate) fn endpoint_from_proto(
    what: &'static str,
    e: proto::Endpoint,
) -> Result<Endpoint, FormatError> {
    let port = required(what, "listeners.port", e.port)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            FormatError::malformed(what, format!("listener port {port} is not 1..=65535"))
        })?;
    Ok(Endpoint {
        name: required(what, "listeners.name", e.name)?,
        host: required(what, "listeners.host", e.host)?,
        port,
    })
}

pub(crate) fn acl_to_proto(id: &Uuid, acl: &AclBinding) -> proto::AccessControlEntryRecord {
    proto::AccessControlEntryRecord {
        id: uuid_bytes(id),
        resource_type: Some(i32::from(acl.pattern.resource_type.code())),
        resource_name: Some(acl.pattern.name.clone()),
        pattern_type: Some(i32::from(acl.pattern.pattern_type.code())),
        principal: Some(acl.entry.principal.to_string()),
        host: Some(acl.entry.host.clone()),
        operation: Some(i32::from(acl.entry.operation.code())),
        permission_type: Some(i32::from(acl.entry.permission.code())),
    }
}

/// An ACL as stored; unknown codes, a principal that is not `Type:name` or a binding Kafka
/// would not have accepted are malformed.
pub(crate) fn acl_from_proto(
    what: &'static str,
    m: proto::AccessControlEntryRecord,
) -> Result<(Uuid, AclBinding), FormatError> {
    let code = |field: &'static str, value: Option<i32>| -> Result<i8, FormatError> {
        let value = required(what, field, value)?;
        i8::try_from(value)
            .map_err(|_| FormatError::malformed(what, format!("`{field}` {value} is not a code")))
    };
    let bad = |e: shoal_acl::AclError| FormatError::malformed(what, e.to_string());
    let acl = AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(code("resource_type", m.resource_type)?)
                .map_err(bad)?,
            name: required(what, "resource_name", m.resource_name)?,
            pattern_type: PatternType::from_code(code("pattern_type", m.pattern_type)?)
                .map_err(bad)?,
        },
        entry: AclEntry {
            principal: Principal::parse(&required(what, "principal", m.principal)?).map_err(bad)?,
            host: required(what, "host", m.host)?,
            operation: Operation::from_code(code("operation", m.operation)?).map_err(bad)?,
            permission: Permission::from_code(code("permission_type", m.permission_type)?)
                .map_err(bad)?,
        },
    };
    acl.validate().map_err(bad)?;
    Ok((uuid_from(what, "id", &m.id)?, acl))
}

pub(crate) fn scram_to_proto(
    name: &str,
    credential: &ScramCredential,
) -> proto::UserScramCredentialRecord {
    proto::UserScramCredentialRecord {
        name: Some(name.to_owned()),
        mechanism: Some(i32::from(credential.mechanism.code())),
        salt: credential.salt.clone(),
        stored_key: credential.stored_key.clone(),
        server_key: credential.server_key.clone(),
        iterations: i64::from(credential.iterations).try_into().ok(),
    }
}

fn mechanism_from(what: &'static str, code: Option<i32>) -> Result<ScramMechanism, FormatError> {
    let code = required(what, "mechanism", code)?;
    i8::try_from(code)
        .ok()
        .and_then(|c| ScramMechanism::from_code(c).ok())
        .ok_or_else(|| FormatError::malformed(what, format!("unknown SCRAM mechanism {code}")))
}

/// A stored credential; one whose keys, salt or iterations are out of shape is malformed.
pub(crate) fn scram_from_proto(
    what: &'static str,
    m: proto::UserScramCredentialRecord,
) -> Result<(String, ScramCredential), FormatError> {
    let iterations = required(what, "iterations", m.iterations)?;
    let credential = ScramCredential {
        mechanism: mechanism_from(what, m.mechanism)?,
        salt: m.salt,
        stored_key: m.stored_key,
        server_key: m.server_key,
        iterations: u32::try_from(iterations).map_err(|_| {
            FormatError::malformed(what, format!("iterations {iterations} is negative"))
        })?,
    };
    credential
        .validate()
        .map_err(|e| FormatError::malformed(what, e.to_string()))?;
    Ok((required(what, "name", m.name)?, credential))
}

/// Encodes one record at the lowest version that represents it.
pub fn encode_record(record: &MetadataRecord) -> RecordFrame {
    let versions = versions_of(record);
    let payload = match record {
        MetadataRecord::RegisterBroker {
            broker_id,
            incarnation_id,
            broker_epoch,
            listeners,
            rack,
            supported_features,
            log_dirs,
        } => {
            // Directories are recorded only with features (version 2 implies 1).
            debug_assert!(log_dirs.is_empty() || supported_features.is_some());
            proto::RegisterBrokerRecord {
                broker_id: Some(*broker_id),
                incarnation_id: uuid_bytes(incarnation_id),
                broker_epoch: Some(*broker_epoch),
                listeners: listeners.iter().map(endpoint_to_proto).collect(),
                rack: rack.clone(),
                supported_features: supported_features
                    .as_deref()
                    .map(features_to_proto)
                    .unwrap_or_default(),
                log_dirs: log_dirs.iter().map(uuid_bytes).collect(),
            }
            .encode_to_vec()
        }
        MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch,
        } => proto::FenceBrokerRecord {
            broker_id: Some(*broker_id),
            broker_epoch: Some(*broker_epoch),
        }
        .encode_to_vec(),
        MetadataRecord::UnfenceBroker {
            broker_id,
            broker_epoch,
        } => proto::UnfenceBrokerRecord {
            broker_id: Some(*broker_id),
            broker_epoch: Some(*broker_epoch),
        }
        .encode_to_vec(),
        MetadataRecord::Topic { name, topic_id } => proto::TopicRecord {
            name: Some(name.clone()),
            topic_id: uuid_bytes(topic_id),
        }
        .encode_to_vec(),
        MetadataRecord::Partition {
            topic_id,
            partition,
            replicas,
            isr,
            leader,
            leader_epoch,
            partition_epoch,
        } => proto::PartitionRecord {
            topic_id: uuid_bytes(topic_id),
            partition: Some(*partition),
            replicas: replicas.clone(),
            isr: isr.clone(),
            leader: Some(*leader),
            leader_epoch: Some(*leader_epoch),
            partition_epoch: Some(*partition_epoch),
        }
        .encode_to_vec(),
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            leader,
            isr,
            replicas,
            adding_replicas,
            removing_replicas,
        } => {
            let list = |values: &Option<Vec<i32>>| {
                values.as_ref().map(|values| proto::Int32List {
                    values: values.clone(),
                })
            };
            proto::PartitionChangeRecord {
                topic_id: uuid_bytes(topic_id),
                partition: Some(*partition),
                leader: *leader,
                isr: list(isr),
                replicas: list(replicas),
                adding_replicas: list(adding_replicas),
                removing_replicas: list(removing_replicas),
            }
        }
        .encode_to_vec(),
        MetadataRecord::RemoveTopic { topic_id } => proto::RemoveTopicRecord {
            topic_id: uuid_bytes(topic_id),
        }
        .encode_to_vec(),
        MetadataRecord::TopicConfig {
            topic_id,
            name,
            value,
        } => proto::TopicConfigRecord {
            topic_id: uuid_bytes(topic_id),
            name: Some(name.clone()),
            value: value.clone(),
        }
        .encode_to_vec(),
        MetadataRecord::ProducerIds {
            next_producer_id_block_start,
        } => proto::ProducerIdsRecord {
            next_producer_id_block_start: Some(*next_producer_id_block_start),
        }
        .encode_to_vec(),
        MetadataRecord::FeatureLevel { name, level } => proto::FeatureLevelRecord {
            name: Some(name.clone()),
            level: Some(i32::from(*level)),
        }
        .encode_to_vec(),
        MetadataRecord::AccessControlEntry { id, acl } => acl_to_proto(id, acl).encode_to_vec(),
        MetadataRecord::RemoveAccessControlEntry { id } => {
            proto::RemoveAccessControlEntryRecord { id: uuid_bytes(id) }.encode_to_vec()
        }
        MetadataRecord::UserScramCredential { name, credential } => {
            scram_to_proto(name, credential).encode_to_vec()
        }
        MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
            proto::RemoveUserScramCredentialRecord {
                name: Some(name.clone()),
                mechanism: Some(i32::from(mechanism.code())),
            }
            .encode_to_vec()
        }
        MetadataRecord::UnregisterBroker {
            broker_id,
            broker_epoch,
        } => proto::UnregisterBrokerRecord {
            broker_id: Some(*broker_id),
            broker_epoch: Some(*broker_epoch),
        }
        .encode_to_vec(),
        MetadataRecord::VoterDirectory {
            voter_id,
            directory_id,
        } => proto::VoterDirectoryRecord {
            voter_id: Some(*voter_id),
            directory_id: uuid_bytes(directory_id),
        }
        .encode_to_vec(),
        MetadataRecord::BrokerConfig {
            broker_id,
            name,
            value,
        } => proto::BrokerConfigRecord {
            broker_id: *broker_id,
            name: Some(name.clone()),
            value: value.clone(),
        }
        .encode_to_vec(),
        MetadataRecord::ClientQuota { entity, key, value } => {
            client_quota_to_proto(entity, key, value.map(|v| v.0)).encode_to_vec()
        }
        MetadataRecord::GroupConfig { group, name, value } => proto::GroupConfigRecord {
            group: Some(group.clone()),
            name: Some(name.clone()),
            value: value.clone(),
        }
        .encode_to_vec(),
    };
    let record_version = version_of(record);
    debug_assert!(record_version <= versions.max_version);
    RecordFrame {
        record_type: versions.type_id,
        record_version,
        payload,
    }
}

/// Decodes one record of any version this binary reads.
pub fn decode_record(frame: &RecordFrame) -> Result<MetadataRecord, FormatError> {
    let Some(versions) = ALL.iter().find(|v| v.type_id == frame.record_type) else {
        return Err(unknown_type(frame.record_type));
    };
    FormatError::check_version(
        format!("{} record", versions.name),
        frame.record_version,
        0,
        versions.max_version,
    )?;
    let payload = frame.payload.as_slice();
    match versions.type_id {
        1 => {
            const W: &str = "RegisterBroker record";
            let m: proto::RegisterBrokerRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::RegisterBroker {
                broker_id: required(W, "broker_id", m.broker_id)?,
                incarnation_id: uuid_from(W, "incarnation_id", &m.incarnation_id)?,
                broker_epoch: required(W, "broker_epoch", m.broker_epoch)?,
                listeners: m
                    .listeners
                    .into_iter()
                    .map(|e| endpoint_from_proto(W, e))
                    .collect::<Result<_, _>>()?,
                rack: m.rack,
                // Version 0 has no features: "not reported" (see the proto).
                supported_features: match frame.record_version {
                    0 => None,
                    _ => Some(features_from_proto(W, m.supported_features)?),
                },
                // Versions 0 and 1 have no directories: not reported.
                log_dirs: if frame.record_version >= 2 {
                    m.log_dirs
                        .iter()
                        .map(|d| uuid_from(W, "log_dirs", d))
                        .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                },
            })
        }
        2 => {
            const W: &str = "FenceBroker record";
            let m: proto::FenceBrokerRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::FenceBroker {
                broker_id: required(W, "broker_id", m.broker_id)?,
                broker_epoch: required(W, "broker_epoch", m.broker_epoch)?,
            })
        }
        3 => {
            const W: &str = "UnfenceBroker record";
            let m: proto::UnfenceBrokerRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::UnfenceBroker {
                broker_id: required(W, "broker_id", m.broker_id)?,
                broker_epoch: required(W, "broker_epoch", m.broker_epoch)?,
            })
        }
        4 => {
            const W: &str = "Topic record";
            let m: proto::TopicRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::Topic {
                name: required(W, "name", m.name)?,
                topic_id: uuid_from(W, "topic_id", &m.topic_id)?,
            })
        }
        5 => {
            const W: &str = "Partition record";
            let m: proto::PartitionRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::Partition {
                topic_id: uuid_from(W, "topic_id", &m.topic_id)?,
                partition: required(W, "partition", m.partition)?,
                replicas: m.replicas,
                isr: m.isr,
                leader: required(W, "leader", m.leader)?,
                leader_epoch: required(W, "leader_epoch", m.leader_epoch)?,
                partition_epoch: required(W, "partition_epoch", m.partition_epoch)?,
            })
        }
        6 => {
            const W: &str = "PartitionChange record";
            let m: proto::PartitionChangeRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::PartitionChange {
                topic_id: uuid_from(W, "topic_id", &m.topic_id)?,
                partition: required(W, "partition", m.partition)?,
                leader: m.leader,
                isr: m.isr.map(|l| l.values),
                replicas: m.replicas.map(|l| l.values),
                // Version 0 has no reassignment fields: unchanged.
                adding_replicas: m
                    .adding_replicas
                    .filter(|_| frame.record_version >= 1)
                    .map(|l| l.values),
                removing_replicas: m
                    .removing_replicas
                    .filter(|_| frame.record_version >= 1)
                    .map(|l| l.values),
            })
        }
        7 => {
            const W: &str = "RemoveTopic record";
            let m: proto::RemoveTopicRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::RemoveTopic {
                topic_id: uuid_from(W, "topic_id", &m.topic_id)?,
            })
        }
        8 => {
            const W: &str = "TopicConfig record";
            let m: proto::TopicConfigRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::TopicConfig {
                topic_id: uuid_from(W, "topic_id", &m.topic_id)?,
                name: required(W, "name", m.name)?,
                value: m.value,
            })
        }
        9 => {
            const W: &str = "ProducerIds record";
            let m: proto::ProducerIdsRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::ProducerIds {
                next_producer_id_block_start: required(
                    W,
                    "next_producer_id_block_start",
                    m.next_producer_id_block_start,
                )?,
            })
        }
        10 => {
            const W: &str = "FeatureLevel record";
            let m: proto::FeatureLevelRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::FeatureLevel {
                name: required(W, "name", m.name)?,
                level: level_from(W, "level", m.level)?,
            })
        }
        11 => {
            const W: &str = "AccessControlEntry record";
            let (id, acl) = acl_from_proto(W, decode_message(W, payload)?)?;
            Ok(MetadataRecord::AccessControlEntry { id, acl })
        }
        12 => {
            const W: &str = "RemoveAccessControlEntry record";
            let m: proto::RemoveAccessControlEntryRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::RemoveAccessControlEntry {
                id: uuid_from(W, "id", &m.id)?,
            })
        }
        13 => {
            const W: &str = "UserScramCredential record";
            let (name, credential) = scram_from_proto(W, decode_message(W, payload)?)?;
            Ok(MetadataRecord::UserScramCredential { name, credential })
        }
        14 => {
            const W: &str = "RemoveUserScramCredential record";
            let m: proto::RemoveUserScramCredentialRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::RemoveUserScramCredential {
                name: required(W, "name", m.name)?,
                mechanism: mechanism_from(W, m.mechanism)?,
            })
        }
        15 => {
            const W: &str = "UnregisterBroker record";
            let m: proto::UnregisterBrokerRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::UnregisterBroker {
                broker_id: required(W, "broker_id", m.broker_id)?,
                broker_epoch: required(W, "broker_epoch", m.broker_epoch)?,
            })
        }
        16 => {
            const W: &str = "VoterDirectory record";
            let m: proto::VoterDirectoryRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::VoterDirectory {
                voter_id: required(W, "voter_id", m.voter_id)?,
                directory_id: uuid_from(W, "directory_id", &m.directory_id)?,
            })
        }
        17 => {
            const W: &str = "BrokerConfig record";
            let m: proto::BrokerConfigRecord = decode_message(W, payload)?;
            Ok(MetadataRecord::BrokerConfig {
                broker_id: m.broker_id,
                name: required(W, "name", m.name)?,
                value: m.value,
            })
        }
        18 => {
            const W: &str = "ClientQuota record";
            let m: proto::ClientQuotaRecord = decode_message(W, payload)?;
            let (entity, key, value) = client_quota_from_proto(W, m)?;
            Ok(MetadataRecord::ClientQuota {
                entity,
                key,
                value: value.map(QuotaValue),
            })
        }
        19 => {
            const W: &str = "GroupConfig record";
            let m: proto::GroupConfigRecord = decode_message(W, payload)?;
            let group = required(W, "group", m.group)?;
            if group.is_empty() {
                return Err(FormatError::malformed(W, "an empty group id"));
            }
            Ok(MetadataRecord::GroupConfig {
                group,
                name: required(W, "name", m.name)?,
                value: m.value,
            })
        }
        found => Err(unknown_type(found)),
    }
}

/// A client quota value as its record (also the snapshot's entry, `value` always set there).
pub(crate) fn client_quota_to_proto(
    entity: &ClientQuotaEntity,
    key: &str,
    value: Option<f64>,
) -> proto::ClientQuotaRecord {
    let name = |n: &QuotaEntityName| proto::QuotaEntityName {
        name: n.as_wire().map(str::to_string),
    };
    proto::ClientQuotaRecord {
        user: entity.user.as_ref().map(name),
        client_id: entity.client_id.as_ref().map(name),
        key: Some(key.to_string()),
        value,
    }
}

/// A client quota record's entity, key and value, checked: an entity names something, a
/// value is a finite positive number.
pub(crate) fn client_quota_from_proto(
    what: &'static str,
    m: proto::ClientQuotaRecord,
) -> Result<(ClientQuotaEntity, String, Option<f64>), FormatError> {
    let name = |n: proto::QuotaEntityName| QuotaEntityName::from_wire(n.name.as_deref());
    let entity = ClientQuotaEntity {
        user: m.user.map(name),
        client_id: m.client_id.map(name),
    };
    if !entity.is_valid() {
        return Err(FormatError::malformed(
            what,
            "an entity with neither user nor client id",
        ));
    }
    let key = required(what, "key", m.key)?;
    if let Some(v) = m.value
        && !(v.is_finite() && v > 0.0)
    {
        return Err(FormatError::malformed(
            what,
            format!("quota {key} of {entity} is {v}"),
        ));
    }
    Ok((entity, key, m.value))
}

fn unknown_type(found: u32) -> FormatError {
    FormatError::UnknownRecordType {
        found,
        max: ALL.iter().map(|v| v.type_id).max().unwrap_or(0),
    }
}

pub fn encode_batch(batch: &[MetadataRecord]) -> proto::RecordBatch {
    proto::RecordBatch {
        records: batch.iter().map(encode_record).collect(),
    }
}

pub fn decode_batch(batch: &proto::RecordBatch) -> Result<MetadataBatch, FormatError> {
    batch.records.iter().map(decode_record).collect()
}
