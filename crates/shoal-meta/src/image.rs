//! The metadata image: the state obtained by applying every committed record in order.
//!
//! Invariants:
//! - `apply` is pure and deterministic: no clocks, no randomness, no I/O, only ordered maps, so
//!   every node (and every restart) that applies the same records reaches the same image.
//! - A record that refers to something missing, or would move an epoch backwards, is skipped with
//!   a warning and changes nothing. It never panics: records come from disk and (later) from the
//!   network.
//! - `topic_ids_by_name` is exactly the inverse of `topics` (checked in debug builds).
//! - `TopicImage::partitions[i]` is partition `i`: partitions are only ever appended in order.
//!
//! Brokers never mutate an image; they receive a fresh `Arc<MetadataImage>` after every apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shoal_acl::AclBinding;
use shoal_sasl::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use crate::client_quotas::ClientQuotas;
use crate::group_configs::GroupConfigs;
use crate::placement::EligibleBroker;
use crate::records::{Endpoint, MetadataRecord, SupportedFeature};

/// A registered broker as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
    /// A fenced broker may not lead partitions and is not chosen for new replicas.
    pub fenced: bool,
    /// As registered; `None` = not reported (see [`MetadataRecord::RegisterBroker`]).
    #[serde(default)]
    pub supported_features: Option<Vec<SupportedFeature>>,
    /// Directory ids of its log directories, as registered; empty = not reported.
    #[serde(default)]
    pub log_dirs: Vec<Uuid>,
}

/// The replication state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub partition: i32,
    /// Assigned replicas; the first one is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Broker id of the leader, or [`crate::records::NO_LEADER`].
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas of the target not yet in sync. While it
    /// runs, `replicas` is the target followed by the original replicas that are leaving.
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// Replicas of the original set the reassignment drops once `adding_replicas` are in sync.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition will have once any reassignment completes.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| !self.removing_replicas.contains(id))
            .collect()
    }

    /// The replicas before the reassignment in progress began (all of them if none is).
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| !self.adding_replicas.contains(id))
            .collect()
    }
}

/// One topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: Uuid,
    pub name: String,
    /// `partitions[i].partition == i`.
    pub partitions: Vec<PartitionImage>,
    /// Only explicit per-topic overrides; defaults are resolved by [`crate::topic_config`].
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn partition(&self, partition: i32) -> Option<&PartitionImage> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Replication factor of the topic (taken from partition 0, as Kafka does; the target of a
    /// reassignment in progress).
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .first()
            .map_or(0, |p| p.replicas.len() - p.removing_replicas.len())
    }
}

/// The whole cluster metadata at one Raft log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicImage>,
    pub topic_ids_by_name: BTreeMap<String, Uuid>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Raft log index of the last entry applied to this image (0 = nothing applied).
    pub last_applied_index: u64,
    /// Finalized feature levels (FeatureLevel records). No `metadata.version` here means
    /// level 1 (see [`crate::features`]).
    #[serde(default)]
    pub finalized_features: BTreeMap<String, i16>,
    /// The ACLs in force, by the id the controller gave each (AccessControlEntry records).
    #[serde(default)]
    pub acls: BTreeMap<Uuid, AclBinding>,
    /// SCRAM credentials by user, then mechanism (UserScramCredential records).
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Each controller voter's metadata directory id (VoterDirectory records): the voter is
    /// the node with this id *and* this directory (KIP-853). A voter without an entry has not
    /// been seen yet (see `crate::voter_directory`).
    #[serde(default)]
    pub voter_directories: BTreeMap<i32, Uuid>,
    /// Dynamic broker configs (BrokerConfig records).
    #[serde(default)]
    pub broker_configs: DynamicBrokerConfigs,
    /// Client quotas (ClientQuota records).
    #[serde(default)]
    pub client_quotas: ClientQuotas,
    /// Group configs (GroupConfig records).
    #[serde(default)]
    pub group_configs: GroupConfigs,
}

/// KIP-1066's broker setting: log directories that receive no new replicas.
pub const CORDONED_LOG_DIRS: &str = "cordoned.log.dirs";

/// Dynamic broker configs: the cluster-wide defaults and each broker's own, which win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigs {
    pub cluster: BTreeMap<String, String>,
    pub per_broker: BTreeMap<i32, BTreeMap<String, String>>,
}

impl DynamicBrokerConfigs {
    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.per_broker.is_empty()
    }

    /// The configs of one scope: a broker's (`Some`) or the cluster default (`None`).
    pub fn scope(&self, broker_id: Option<i32>) -> Option<&BTreeMap<String, String>> {
        match broker_id {
            None => Some(&self.cluster),
            Some(id) => self.per_broker.get(&id),
        }
    }

    /// `name`'s dynamic value for `broker_id`: its own, else the cluster default; with
    /// whether it is the broker's own.
    pub fn value(&self, broker_id: i32, name: &str) -> Option<(&str, bool)> {
        if let Some(v) = self.per_broker.get(&broker_id).and_then(|c| c.get(name)) {
            return Some((v.as_str(), true));
        }
        self.cluster.get(name).map(|v| (v.as_str(), false))
    }

    pub fn set(&mut self, broker_id: Option<i32>, name: &str, value: Option<&str>) {
        let scope = match broker_id {
            None => &mut self.cluster,
            Some(id) => self.per_broker.entry(id).or_default(),
        };
        match value {
            Some(v) => scope.insert(name.to_string(), v.to_string()),
            None => scope.remove(name),
        };
        if let Some(id) = broker_id
            && self.per_broker.get(&id).is_some_and(BTreeMap::is_empty)
        {
            self.per_broker.remove(&id);
        }
    }
}

/// What applying one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ApplyOutcome {
    Applied,
    /// The record was ignored; the image is unchanged. The reason is also logged.
    Skipped(String),
}

impl MetadataImage {
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        MetadataImage {
            cluster_id: cluster_id.into(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_ids_by_name: BTreeMap::new(),
            next_producer_id: 0,
            last_applied_index: 0,
            finalized_features: BTreeMap::new(),
            acls: BTreeMap::new(),
            scram_credentials: BTreeMap::new(),
            voter_directories: BTreeMap::new(),
            broker_configs: DynamicBrokerConfigs::default(),
            client_quotas: ClientQuotas::default(),
            group_configs: GroupConfigs::default(),
        }
    }

    /// The finalized `metadata.version` (1 when none was ever finalized: clusters created
    /// before feature levels existed).
    pub fn metadata_version(&self) -> i16 {
        self.finalized_features
            .get(crate::features::METADATA_VERSION)
            .copied()
            .unwrap_or(crate::features::BASELINE_METADATA_VERSION)
    }

    /// The finalized `transaction.version`; 0 (the classic protocol) when none is.
    pub fn transaction_version(&self) -> i16 {
        self.finalized_features
            .get(crate::features::TRANSACTION_VERSION)
            .copied()
            .unwrap_or(0)
    }

    pub fn topic(&self, topic_id: &Uuid) -> Option<&TopicImage> {
        self.topics.get(topic_id)
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics.get(id))
    }

    /// Registered brokers that are not fenced, in ascending id order.
    pub fn unfenced_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.broker_id)
            .collect()
    }

    /// Registered brokers that are neither fenced nor cordoned, with their racks: where new
    /// replicas may go (new topics and partitions, the balancer, internal topic growth).
    pub fn placement_brokers(&self) -> Vec<EligibleBroker> {
        self.brokers
            .values()
            .filter(|b| !b.fenced && !self.is_cordoned(b.broker_id))
            .map(|b| EligibleBroker {
                id: b.broker_id,
                rack: b.rack.clone(),
            })
            .collect()
    }

    /// Whether `broker_id` is cordoned (KIP-1066): its `cordoned.log.dirs` is set, for it or as
    /// the cluster default, to anything but the empty list. Shoal keeps one log directory per
    /// broker, so `*` and its path both cordon the whole broker.
    pub fn is_cordoned(&self, broker_id: i32) -> bool {
        self.broker_configs
            .value(broker_id, CORDONED_LOG_DIRS)
            .is_some_and(|(dirs, _)| dirs.split(',').any(|d| !d.trim().is_empty()))
    }

    /// Applies one Raft entry's records, then records its index.
    pub fn apply_batch(&mut self, log_index: u64, records: &[MetadataRecord]) {
        for record in records {
            let _ = self.apply(record);
        }
        self.mark_applied(log_index);
    }

    /// Records that the entry at `log_index` (possibly one without records) has been applied.
    pub fn mark_applied(&mut self, log_index: u64) {
        debug_assert!(
            log_index >= self.last_applied_index,
            "applied index went backwards: {} -> {log_index}",
            self.last_applied_index
        );
        self.last_applied_index = log_index;
    }

    /// Applies one record. Pure and deterministic; see the module docs.
    pub fn apply(&mut self, record: &MetadataRecord) -> ApplyOutcome {
        let outcome = self.apply_inner(record);
        if let ApplyOutcome::Skipped(reason) = &outcome {
            tracing::warn!(record = record.kind(), %reason, "skipped metadata record");
        }
        debug_assert!(self.name_index_consistent());
        outcome
    }

    fn apply_inner(&mut self, record: &MetadataRecord) -> ApplyOutcome {
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch,
                listeners,
                rack,
                supported_features,
                log_dirs,
            } => {
                if let Some(existing) = self.brokers.get(broker_id)
                    && existing.broker_epoch >= *broker_epoch
                {
                    return skipped(format!(
                        "broker {broker_id} registration epoch {broker_epoch} is not newer than \
                         current epoch {}",
                        existing.broker_epoch
                    ));
                }
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation_id: *incarnation_id,
                        broker_epoch: *broker_epoch,
                        listeners: listeners.clone(),
                        rack: rack.clone(),
                        fenced: true,
                        supported_features: supported_features.clone(),
                        log_dirs: log_dirs.clone(),
                    },
                );
                ApplyOutcome::Applied
            }
            MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch,
            } => self.set_fenced(*broker_id, *broker_epoch, true),
            MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => self.set_fenced(*broker_id, *broker_epoch, false),
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(topic_id) {
                    return skipped(format!("topic id {topic_id} already exists"));
                }
                if self.topic_ids_by_name.contains_key(name) {
                    return skipped(format!("topic name '{name}' already exists"));
                }
                self.topics.insert(
                    *topic_id,
                    TopicImage {
                        id: *topic_id,
                        name: name.clone(),
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    },
                );
                self.topic_ids_by_name.insert(name.clone(), *topic_id);
                ApplyOutcome::Applied
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let Some(topic) = self.topics.get_mut(topic_id) else {
                    return skipped(format!("partition record for unknown topic id {topic_id}"));
                };
                let Ok(index) = usize::try_from(*partition) else {
                    return skipped(format!("negative partition id {partition}"));
                };
                let image = PartitionImage {
                    partition: *partition,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                };
                match index.cmp(&topic.partitions.len()) {
                    std::cmp::Ordering::Less => topic.partitions[index] = image,
                    std::cmp::Ordering::Equal => topic.partitions.push(image),
                    std::cmp::Ordering::Greater => {
                        return skipped(format!(
                            "partition {partition} of topic '{}' would leave a gap (it has {})",
                            topic.name,
                            topic.partitions.len()
                        ));
                    }
                }
                ApplyOutcome::Applied
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                adding_replicas,
                removing_replicas,
            } => {
                let Some(topic) = self.topics.get_mut(topic_id) else {
                    return skipped(format!("partition change for unknown topic id {topic_id}"));
                };
                let Some(p) = usize::try_from(*partition)
                    .ok()
                    .and_then(|i| topic.partitions.get_mut(i))
                else {
                    return skipped(format!(
                        "partition change for unknown partition {}-{partition}",
                        topic.name
                    ));
                };
                if leader.is_none()
                    && isr.is_none()
                    && replicas.is_none()
                    && adding_replicas.is_none()
                    && removing_replicas.is_none()
                {
                    return skipped("partition change without any change".to_string());
                }
                let new_replicas = replicas.as_ref().unwrap_or(&p.replicas);
                let new_adding = adding_replicas.as_ref().unwrap_or(&p.adding_replicas);
                let new_removing = removing_replicas.as_ref().unwrap_or(&p.removing_replicas);
                if new_adding
                    .iter()
                    .chain(new_removing)
                    .any(|id| !new_replicas.contains(id))
                    || new_adding.iter().any(|id| new_removing.contains(id))
                {
                    return skipped(format!(
                        "partition change would leave adding {new_adding:?} / removing \
                         {new_removing:?} outside the replicas {new_replicas:?} or overlapping"
                    ));
                }
                let Some(partition_epoch) = p.partition_epoch.checked_add(1) else {
                    return skipped("partition epoch would overflow".to_string());
                };
                let leader_epoch = match leader {
                    Some(_) => match p.leader_epoch.checked_add(1) {
                        Some(e) => e,
                        None => return skipped("leader epoch would overflow".to_string()),
                    },
                    None => p.leader_epoch,
                };
                if let Some(leader) = leader {
                    p.leader = *leader;
                }
                if let Some(isr) = isr {
                    p.isr = isr.clone();
                }
                if let Some(replicas) = replicas {
                    p.replicas = replicas.clone();
                }
                if let Some(adding) = adding_replicas {
                    p.adding_replicas = adding.clone();
                }
                if let Some(removing) = removing_replicas {
                    p.removing_replicas = removing.clone();
                }
                p.leader_epoch = leader_epoch;
                p.partition_epoch = partition_epoch;
                ApplyOutcome::Applied
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let Some(topic) = self.topics.remove(topic_id) else {
                    return skipped(format!("remove of unknown topic id {topic_id}"));
                };
                self.topic_ids_by_name.remove(&topic.name);
                ApplyOutcome::Applied
            }
            MetadataRecord::TopicConfig {
                topic_id,
                name,
                value,
            } => {
                let Some(topic) = self.topics.get_mut(topic_id) else {
                    return skipped(format!("config '{name}' for unknown topic id {topic_id}"));
                };
                match value {
                    Some(v) => topic.configs.insert(name.clone(), v.clone()),
                    None => topic.configs.remove(name),
                };
                ApplyOutcome::Applied
            }
            MetadataRecord::ProducerIds {
                next_producer_id_block_start,
            } => {
                if *next_producer_id_block_start < self.next_producer_id {
                    return skipped(format!(
                        "producer id block start {next_producer_id_block_start} is below the \
                         current {}",
                        self.next_producer_id
                    ));
                }
                self.next_producer_id = *next_producer_id_block_start;
                ApplyOutcome::Applied
            }
            MetadataRecord::FeatureLevel { name, level } => {
                if let Some(current) = self.finalized_features.get(name)
                    && current > level
                {
                    return skipped(format!(
                        "feature {name} level {level} is below the finalized {current} \
                         (downgrades are not supported)"
                    ));
                }
                self.finalized_features.insert(name.clone(), *level);
                ApplyOutcome::Applied
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                if self.acls.contains_key(id) {
                    return skipped(format!("ACL id {id} already exists"));
                }
                self.acls.insert(*id, acl.clone());
                ApplyOutcome::Applied
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if self.acls.remove(id).is_none() {
                    return skipped(format!("remove of unknown ACL id {id}"));
                }
                ApplyOutcome::Applied
            }
            MetadataRecord::UserScramCredential { name, credential } => {
                self.scram_credentials
                    .entry(name.clone())
                    .or_default()
                    .insert(credential.mechanism, credential.clone());
                ApplyOutcome::Applied
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let Some(user) = self.scram_credentials.get_mut(name) else {
                    return skipped(format!("remove of a credential of unknown user {name:?}"));
                };
                if user.remove(mechanism).is_none() {
                    return skipped(format!("user {name:?} has no {mechanism} credential"));
                }
                if user.is_empty() {
                    self.scram_credentials.remove(name);
                }
                ApplyOutcome::Applied
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                let Some(broker) = self.brokers.get(broker_id) else {
                    return skipped(format!("unregistration of unknown broker {broker_id}"));
                };
                if broker.broker_epoch != *broker_epoch {
                    return skipped(format!(
                        "unregistration of broker {broker_id} at epoch {broker_epoch}; it is \
                         registered at {}",
                        broker.broker_epoch
                    ));
                }
                self.brokers.remove(broker_id);
                ApplyOutcome::Applied
            }
            MetadataRecord::VoterDirectory {
                voter_id,
                directory_id,
            } => {
                self.voter_directories.insert(*voter_id, *directory_id);
                ApplyOutcome::Applied
            }
            MetadataRecord::BrokerConfig {
                broker_id,
                name,
                value,
            } => {
                self.broker_configs.set(*broker_id, name, value.as_deref());
                ApplyOutcome::Applied
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                self.client_quotas.set(entity, key, value.map(|v| v.0));
                ApplyOutcome::Applied
            }
            MetadataRecord::GroupConfig { group, name, value } => {
                self.group_configs.set(group, name, value.as_deref());
                ApplyOutcome::Applied
            }
        }
    }

    fn set_fenced(&mut self, broker_id: i32, broker_epoch: i64, fenced: bool) -> ApplyOutcome {
        let Some(broker) = self.brokers.get_mut(&broker_id) else {
            return skipped(format!(
                "fencing change for unregistered broker {broker_id}"
            ));
        };
        if broker.broker_epoch != broker_epoch {
            return skipped(format!(
                "fencing change for broker {broker_id} carries epoch {broker_epoch}, current is {}",
                broker.broker_epoch
            ));
        }
        broker.fenced = fenced;
        ApplyOutcome::Applied
    }

    fn name_index_consistent(&self) -> bool {
        self.topic_ids_by_name.len() == self.topics.len()
            && self
                .topic_ids_by_name
                .iter()
                .all(|(name, id)| self.topics.get(id).is_some_and(|t| &t.name == name))
    }
}

fn skipped(reason: String) -> ApplyOutcome {
    ApplyOutcome::Skipped(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::NO_LEADER;

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn register(broker_id: i32, epoch: i64) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id,
            incarnation_id: uuid(1000 + broker_id as u128),
            broker_epoch: epoch,
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            rack: None,
            supported_features: None,
        }
    }

    fn partition(topic: u128, p: i32, replicas: &[i32]) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id: uuid(topic),
            partition: p,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    fn topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: uuid(id),
        }
    }

    /// Applies `record` and asserts it was skipped without changing the image.
    fn assert_skipped(image: &mut MetadataImage, record: MetadataRecord) {
        let before = image.clone();
        let outcome = image.apply(&record);
        assert!(
            matches!(outcome, ApplyOutcome::Skipped(_)),
            "{record:?} -> {outcome:?}"
        );
        assert_eq!(*image, before, "{record:?} changed the image");
    }

    fn applied(image: &mut MetadataImage, record: MetadataRecord) {
        assert_eq!(image.apply(&record), ApplyOutcome::Applied, "{record:?}");
    }

    fn base() -> MetadataImage {
        let mut image = MetadataImage::empty("c1");
        applied(&mut image, register(1, 10));
        applied(&mut image, register(2, 11));
        applied(&mut image, topic("orders", 7));
        applied(&mut image, partition(7, 0, &[1, 2]));
        image
    }

    #[test]
    fn register_fence_unfence() {
        let mut image = base();
        assert!(image.brokers[&1].fenced, "registration starts fenced");
        assert!(image.unfenced_broker_ids().is_empty());
        applied(
            &mut image,
            MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 10,
            },
        );
        assert_eq!(image.unfenced_broker_ids(), vec![1]);
        applied(
            &mut image,
            MetadataRecord::FenceBroker {
                broker_id: 1,
                broker_epoch: 10,
            },
        );
        assert!(image.brokers[&1].fenced);

        // Stale epochs and unknown brokers change nothing.
        assert_skipped(
            &mut image,
            MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 9,
            },
        );
        assert_skipped(
            &mut image,
            MetadataRecord::FenceBroker {
                broker_id: 2,
                broker_epoch: 12,
            },
        );
        assert_skipped(
            &mut image,
            MetadataRecord::UnfenceBroker {
                broker_id: 3,
                broker_epoch: 1,
            },
        );
        assert_skipped(
            &mut image,
            MetadataRecord::FenceBroker {
                broker_id: 3,
                broker_epoch: 1,
            },
        );
        assert_skipped(&mut image, register(1, 10));
        assert_skipped(&mut image, register(1, 3));

        // A newer registration replaces the old one and is fenced again.
        applied(
            &mut image,
            MetadataRecord::UnfenceBroker {
                broker_id: 2,
                broker_epoch: 11,
            },
        );
        applied(&mut image, register(2, 20));
        assert_eq!(image.brokers[&2].broker_epoch, 20);
        assert!(image.brokers[&2].fenced);
    }

    #[test]
    fn topic_and_partitions() {
        let mut image = base();
        let t = image.topic_by_name("orders").unwrap();
        assert_eq!(
            (t.id, t.partitions.len(), t.replication_factor()),
            (uuid(7), 1, 2)
        );

        assert_skipped(&mut image, topic("orders", 8)); // name taken
        assert_skipped(&mut image, topic("other", 7)); // id taken
        assert_skipped(&mut image, partition(99, 0, &[1])); // unknown topic
        assert_skipped(&mut image, partition(7, 2, &[1])); // gap
        assert_skipped(&mut image, partition(7, -1, &[1])); // negative

        applied(&mut image, partition(7, 1, &[2, 1]));
        assert_eq!(
            image.topic(&uuid(7)).unwrap().partition(1).unwrap().leader,
            2
        );
        // A Partition record for an existing partition replaces it.
        applied(&mut image, partition(7, 0, &[2]));
        assert_eq!(
            image.topic(&uuid(7)).unwrap().partitions[0].replicas,
            vec![2]
        );
    }

    #[test]
    fn partition_change_bumps_epochs() {
        let mut image = base();
        let change = |leader, isr| MetadataRecord::PartitionChange {
            topic_id: uuid(7),
            partition: 0,
            leader,
            isr,
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        };
        applied(&mut image, change(None, Some(vec![1])));
        let p = image.topic(&uuid(7)).unwrap().partitions[0].clone();
        assert_eq!(
            (p.leader, p.leader_epoch, p.partition_epoch, p.isr),
            (1, 0, 1, vec![1])
        );

        applied(&mut image, change(Some(NO_LEADER), None));
        let p = image.topic(&uuid(7)).unwrap().partitions[0].clone();
        assert_eq!(
            (p.leader, p.leader_epoch, p.partition_epoch),
            (NO_LEADER, 1, 2)
        );

        applied(
            &mut image,
            MetadataRecord::PartitionChange {
                topic_id: uuid(7),
                partition: 0,
                leader: Some(2),
                isr: Some(vec![2]),
                replicas: Some(vec![2, 3]),
                adding_replicas: None,
                removing_replicas: None,
            },
        );
        let p = image.topic(&uuid(7)).unwrap().partitions[0].clone();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 2, 3));
        assert_eq!(p.replicas, vec![2, 3]);

        assert_skipped(&mut image, change(None, None)); // no change
        assert_skipped(
            &mut image,
            MetadataRecord::PartitionChange {
                topic_id: uuid(7),
                partition: 5,
                leader: Some(1),
                isr: None,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            },
        );
        assert_skipped(
            &mut image,
            MetadataRecord::PartitionChange {
                topic_id: uuid(8),
                partition: 0,
                leader: Some(1),
                isr: None,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            },
        );
    }

    #[test]
    fn topic_config_and_remove_topic() {
        let mut image = base();
        let config = |value: Option<&str>| MetadataRecord::TopicConfig {
            topic_id: uuid(7),
            name: "retention.ms".into(),
            value: value.map(str::to_string),
        };
        applied(&mut image, config(Some("1000")));
        assert_eq!(
            image.topic(&uuid(7)).unwrap().configs["retention.ms"],
            "1000"
        );
        applied(&mut image, config(None));
        assert!(image.topic(&uuid(7)).unwrap().configs.is_empty());
        assert_skipped(
            &mut image,
            MetadataRecord::TopicConfig {
                topic_id: uuid(9),
                name: "retention.ms".into(),
                value: Some("1".into()),
            },
        );

        applied(&mut image, config(Some("5")));
        applied(
            &mut image,
            MetadataRecord::RemoveTopic { topic_id: uuid(7) },
        );
        assert!(image.topics.is_empty() && image.topic_ids_by_name.is_empty());
        assert_skipped(
            &mut image,
            MetadataRecord::RemoveTopic { topic_id: uuid(7) },
        );
        // The name can be reused by a new topic, which starts without the old configs.
        applied(&mut image, topic("orders", 70));
        assert!(image.topic_by_name("orders").unwrap().configs.is_empty());
    }

    #[test]
    fn producer_ids_only_move_forward() {
        let mut image = base();
        applied(
            &mut image,
            MetadataRecord::ProducerIds {
                next_producer_id_block_start: 1000,
            },
        );
        assert_eq!(image.next_producer_id, 1000);
        applied(
            &mut image,
            MetadataRecord::ProducerIds {
                next_producer_id_block_start: 2000,
            },
        );
        assert_skipped(
            &mut image,
            MetadataRecord::ProducerIds {
                next_producer_id_block_start: 1500,
            },
        );
        assert_eq!(image.next_producer_id, 2000);
    }

    #[test]
    fn apply_batch_records_index() {
        let mut image = MetadataImage::empty("c1");
        image.apply_batch(5, &[register(1, 1), topic("a", 1), partition(1, 0, &[1])]);
        assert_eq!(image.last_applied_index, 5);
        assert_eq!(image.topic_by_name("a").unwrap().partitions.len(), 1);
        image.apply_batch(6, &[]);
        assert_eq!(image.last_applied_index, 6);
    }

    #[test]
    fn image_round_trips_through_json() {
        let mut image = base();
        applied(
            &mut image,
            MetadataRecord::TopicConfig {
                topic_id: uuid(7),
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
        );
        let bytes = serde_json::to_vec(&image).unwrap();
        let back: MetadataImage = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, image);
    }
}
