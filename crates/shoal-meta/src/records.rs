//! Metadata records: the facts committed to the Raft log.
//!
//! Like KRaft's `__cluster_metadata` records, each record states what became true ("broker 3
//! registered with epoch 17", "partition 0 of topic X now has leader 2 at epoch 5"), never a
//! command to be interpreted against a clock or a random source. Applying the same records in the
//! same order therefore yields the same image on every node and after every restart. Anything
//! non-deterministic (UUIDs, broker epochs, placement choices) is decided by the controller
//! *before* proposing and written into the record.
//!
//! One Raft entry carries a [`MetadataBatch`]: records applied atomically (a topic with all its
//! partitions and configs is one entry, so no observer ever sees half a topic).

use serde::{Deserialize, Serialize};
use shoal_acl::AclBinding;
use shoal_sasl::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use crate::client_quotas::{ClientQuotaEntity, QuotaValue};

/// "No leader" in `leader` fields, as on the Kafka wire.
pub const NO_LEADER: i32 = -1;

/// The payload of one Raft entry: applied all together, in order.
pub type MetadataBatch = Vec<MetadataRecord>;

/// A named listener a broker accepts connections on (Kafka `listeners` / `advertised.listeners`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name, e.g. `PLAINTEXT`, `INTERNAL`, `EXTERNAL`.
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A feature and the range of its levels a broker supports (Kafka's
/// BrokerRegistrationRecord `Features`, e.g. `metadata.version` 1..=2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SupportedFeature {
    pub name: String,
    pub min_level: i16,
    pub max_level: i16,
}

/// One fact in the metadata log.
///
/// The serde derives here are the *legacy* JSON format of releases before versioning (still
/// read from old data dirs, never written): do not rename or retype fields; new fields need
/// `#[serde(default)]`. The stored format is `crate::format` (proto/metadata.proto).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker (re)registered. A new registration starts fenced, as in KRaft; an
    /// [`MetadataRecord::UnfenceBroker`] makes it eligible for leadership and placement.
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        broker_epoch: i64,
        listeners: Vec<Endpoint>,
        rack: Option<String>,
        /// The features the broker supports (record version 1, written once the cluster's
        /// finalized `metadata.version` is 2 or more). `None`: not reported (record version 0,
        /// the legacy JSON, or a cluster at `metadata.version` 1); such a broker counts as
        /// supporting `metadata.version` 1 only.
        #[serde(default)]
        supported_features: Option<Vec<SupportedFeature>>,
        /// The directory ids of the broker's log directories (record version 2,
        /// metadata.version 4; Kafka's BrokerRegistrationRecord `LogDirs`): a re-registration
        /// with none of the previous ids is a broker whose disk was replaced. Empty: not
        /// reported.
        #[serde(default)]
        log_dirs: Vec<Uuid>,
    },
    /// The broker with this epoch may no longer lead or be placed on.
    FenceBroker { broker_id: i32, broker_epoch: i64 },
    /// The broker with this epoch is alive and caught up.
    UnfenceBroker { broker_id: i32, broker_epoch: i64 },
    /// A topic came into existence (its partitions follow as `Partition` records).
    Topic { name: String, topic_id: Uuid },
    /// The full state of one partition (creation, or a replacement of its whole state).
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A partial change of one partition. `None` fields are unchanged. A `Some(leader)` bumps the
    /// leader epoch; every applied change bumps the partition epoch.
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
        /// A reassignment's replicas still catching up (KIP-455); `Some(vec![])` ends it.
        /// Record version 1 (metadata.version 4).
        #[serde(default)]
        adding_replicas: Option<Vec<i32>>,
        /// A reassignment's replicas to drop once the adding ones are in sync.
        /// Record version 1 (metadata.version 4).
        #[serde(default)]
        removing_replicas: Option<Vec<i32>>,
    },
    /// The topic, its partitions and its config overrides are gone.
    RemoveTopic { topic_id: Uuid },
    /// A topic config override was set (`Some`) or removed (`None`).
    TopicConfig {
        topic_id: Uuid,
        name: String,
        value: Option<String>,
    },
    /// Producer ids below this value have been handed out (reserved for InitProducerId).
    ProducerIds { next_producer_id_block_start: i64 },
    /// A feature's finalized level (Kafka's FeatureLevelRecord), e.g. `metadata.version`:
    /// what every node of the cluster may now write. Exists from `metadata.version` 2.
    FeatureLevel { name: String, level: i16 },
    /// An ACL came into force (Kafka's AccessControlEntryRecord); `id` is the controller's
    /// name for it. Exists from `metadata.version` 3.
    AccessControlEntry { id: Uuid, acl: AclBinding },
    /// The ACL with this id no longer applies. Exists from `metadata.version` 3.
    RemoveAccessControlEntry { id: Uuid },
    /// A user's SCRAM credential for one mechanism was set (Kafka's
    /// UserScramCredentialRecord). Exists from `metadata.version` 3.
    UserScramCredential {
        name: String,
        credential: ScramCredential,
    },
    /// The user's credential for `mechanism` is gone. Exists from `metadata.version` 3.
    RemoveUserScramCredential {
        name: String,
        mechanism: ScramMechanism,
    },
    /// The broker's registration at this epoch is gone (Kafka's UnregisterBrokerRecord): a
    /// retired broker, holding no replica. Exists from `metadata.version` 4.
    UnregisterBroker { broker_id: i32, broker_epoch: i64 },
    /// Controller voter `voter_id` is the node whose metadata directory has `directory_id`
    /// (KIP-853's voter key, Kafka's VotersRecord entry). A node whose directory id differs (its
    /// disk was wiped or replaced) neither votes nor stands for election until a newer record
    /// names its directory (`shoalctl cluster quorum add-voter`). Exists from
    /// `metadata.version` 5.
    VoterDirectory { voter_id: i32, directory_id: Uuid },
    /// A dynamic broker config was set (`Some`) or removed (`None`), for broker `broker_id`,
    /// or as the cluster default when `None` (Kafka's ConfigRecord of a BROKER resource, whose
    /// resource name is the id or empty). Exists from `metadata.version` 6.
    BrokerConfig {
        broker_id: Option<i32>,
        name: String,
        value: Option<String>,
    },
    /// A client quota was set (`Some`) or removed (`None`) for one entity (Kafka's
    /// ClientQuotaRecord). Exists from `metadata.version` 8.
    ClientQuota {
        entity: ClientQuotaEntity,
        key: String,
        value: Option<QuotaValue>,
    },
    /// A group config was set (`Some`) or removed (`None`) for group `group` (Kafka's
    /// ConfigRecord of a GROUP resource, KIP-848). Exists from `metadata.version` 9.
    GroupConfig {
        group: String,
        name: String,
        value: Option<String>,
    },
}

impl MetadataRecord {
    /// Short name of the record type, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker { .. } => "RegisterBroker",
            MetadataRecord::FenceBroker { .. } => "FenceBroker",
            MetadataRecord::UnfenceBroker { .. } => "UnfenceBroker",
            MetadataRecord::Topic { .. } => "Topic",
            MetadataRecord::Partition { .. } => "Partition",
            MetadataRecord::PartitionChange { .. } => "PartitionChange",
            MetadataRecord::RemoveTopic { .. } => "RemoveTopic",
            MetadataRecord::TopicConfig { .. } => "TopicConfig",
            MetadataRecord::ProducerIds { .. } => "ProducerIds",
            MetadataRecord::FeatureLevel { .. } => "FeatureLevel",
            MetadataRecord::AccessControlEntry { .. } => "AccessControlEntry",
            MetadataRecord::RemoveAccessControlEntry { .. } => "RemoveAccessControlEntry",
            MetadataRecord::UserScramCredential { .. } => "UserScramCredential",
            MetadataRecord::RemoveUserScramCredential { .. } => "RemoveUserScramCredential",
            MetadataRecord::UnregisterBroker { .. } => "UnregisterBroker",
            MetadataRecord::VoterDirectory { .. } => "VoterDirectory",
            MetadataRecord::BrokerConfig { .. } => "BrokerConfig",
            MetadataRecord::ClientQuota { .. } => "ClientQuota",
            MetadataRecord::GroupConfig { .. } => "GroupConfig",
        }
    }
}
