//! Consumer groups on this broker: the `shoal-group` coordinator, wired to the log and the
//! metadata.
//!
//! The coordinator itself knows nothing of partitions or metadata. This module gives it its
//! storage (`storage`: appends to `__consumer_offsets` that resolve once replicated), follows
//! leadership of that topic's partitions to load and unload its shards (`loader`), creates the
//! topic on first use (`crate::internal_topic`), and reads its settings (`config`). The Kafka APIs in
//! `apis/` call the coordinator through [`Groups`]. Transaction markers written on an offsets
//! partition led here reach the coordinator through [`Groups::marker_listener`], which decides
//! the transactional offsets (TxnOffsetCommit) pending there.

pub mod config;
pub mod lag;
pub mod loader;
pub mod storage;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use shoal_group::consumer::group::TopicResolver;
use shoal_group::coordinator::compile_subscription;
use shoal_group::{GroupCoordinator, OFFSETS_TOPIC};
use shoal_meta::{ControllerClient, ControllerLease, MetadataImage};
use shoal_replica::{ControlType, TxnMarker};

use crate::internal_topic::InternalTopicCreator;
use crate::internal_topic::authority::CoordinatorAuthority;
use crate::replica_manager::{MarkerListener, ReplicaManager};
pub use config::GroupsConfig;
use loader::OffsetsLoader;
use storage::LogOffsetsStorage;

pub struct Groups {
    pub coordinator: Arc<GroupCoordinator>,
    pub config: GroupsConfig,
    creator: InternalTopicCreator,
    loader: Arc<OffsetsLoader>,
    replicas: Arc<ReplicaManager>,
}

pub use crate::internal_topic::CoordinatorLocation;

impl Groups {
    pub fn new(
        config: GroupsConfig,
        replicas: Arc<ReplicaManager>,
        controller: Arc<ControllerClient>,
        quorum_voters: usize,
        lease: Arc<ControllerLease>,
    ) -> Self {
        let storage = Arc::new(LogOffsetsStorage::new(Arc::clone(&replicas)));
        let coordinator = GroupCoordinator::new(config.coordinator, storage);
        let authority = CoordinatorAuthority::new(lease);
        coordinator.set_authority(Arc::clone(&authority) as Arc<dyn shoal_group::Authority>);
        coordinator.set_topic_resolver(Arc::new(ImageTopics::new(Arc::clone(&replicas))));
        coordinator.set_group_configs(Arc::new(ImageGroupConfigs {
            replicas: Arc::clone(&replicas),
        }));
        let loader = OffsetsLoader::new(Arc::clone(&coordinator), Arc::clone(&replicas), authority);
        Self {
            creator: InternalTopicCreator::new(
                config.offsets_topic.spec(),
                controller,
                Arc::clone(&replicas),
                quorum_voters,
            ),
            coordinator,
            config,
            loader,
            replicas,
        }
    }

    /// The background tasks: shard loading/unloading and group timers.
    pub fn spawn_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(&self.loader).run()),
            tokio::spawn(Arc::clone(&self.coordinator).run_timers()),
        ]
    }

    /// What the replica manager tells of transaction markers (see
    /// [`ReplicaManager::set_marker_listener`]): those on `__consumer_offsets` complete the
    /// producer's pending offsets. It holds the coordinator weakly (the coordinator's storage
    /// holds the replica manager).
    pub fn marker_listener(&self) -> Arc<dyn MarkerListener> {
        Arc::new(OffsetsMarkerListener(Arc::downgrade(&self.coordinator)))
    }

    /// FindCoordinator for a group: the leader of its offsets partition, creating the topic on
    /// first use.
    pub async fn locate(&self, group_id: &str) -> CoordinatorLocation {
        let mut image = self.replicas.image();
        if image.topic_by_name(OFFSETS_TOPIC).is_none() {
            if !self.creator.ensure().await {
                return CoordinatorLocation::NotAvailable;
            }
            image = self.replicas.image();
        }
        coordinator_of(group_id, &image)
    }
}

/// Consumer groups' own settings (KIP-848 group configs) from the metadata image this broker
/// follows. The controller validated each value against its bounds; one that does not parse
/// (never written by this release) is ignored, and the broker's value applies.
struct ImageGroupConfigs {
    replicas: Arc<ReplicaManager>,
}

impl shoal_group::consumer::group_config::GroupConfigSource for ImageGroupConfigs {
    fn overrides(&self, group_id: &str) -> shoal_group::consumer::group_config::GroupOverrides {
        use shoal_config::group::{CONSUMER_HEARTBEAT_INTERVAL_MS, CONSUMER_SESSION_TIMEOUT_MS};
        let image = self.replicas.image();
        let get = |name: &str| {
            image
                .group_configs
                .get(group_id, name)
                .and_then(|v| v.parse::<i32>().ok())
                .filter(|ms| *ms > 0)
        };
        shoal_group::consumer::group_config::GroupOverrides {
            session_timeout_ms: get(CONSUMER_SESSION_TIMEOUT_MS),
            heartbeat_interval_ms: get(CONSUMER_HEARTBEAT_INTERVAL_MS),
        }
    }
}

/// Consumer groups look topics up in the metadata image this broker follows.
struct ImageTopics {
    replicas: Arc<ReplicaManager>,
    regexes: std::sync::Mutex<RegexCache>,
}

/// Most regular expressions whose compiled form and matches are kept; past it the cache
/// starts over (real groups use a handful). With each compiled pattern bounded
/// (`compile_subscription`), the cache stays within tens of MiB whatever clients send.
const MAX_CACHED_REGEXES: usize = 128;

/// The topics a regular expression matched; `None`: it does not compile.
type Matched = Option<Arc<BTreeSet<String>>>;

/// Subscriptions by regular expression: compiled once, matched again only when the metadata
/// moved (every heartbeat of such a member asks).
#[derive(Default)]
struct RegexCache {
    /// regex → (the image's last applied index, the topics it matched there).
    matched: HashMap<String, (u64, Matched)>,
    compiled: HashMap<String, Option<regex::Regex>>,
}

impl ImageTopics {
    fn new(replicas: Arc<ReplicaManager>) -> Self {
        ImageTopics {
            replicas,
            regexes: std::sync::Mutex::new(RegexCache::default()),
        }
    }
}

impl TopicResolver for ImageTopics {
    fn topic(&self, name: &str) -> Option<(uuid::Uuid, i32)> {
        let image = self.replicas.image();
        let topic = image.topic_by_name(name)?;
        Some((
            topic.id,
            i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
        ))
    }

    fn topic_name(&self, id: uuid::Uuid) -> Option<String> {
        self.replicas.image().topic(&id).map(|t| t.name.clone())
    }

    fn matching(&self, regex: &str) -> Option<Arc<BTreeSet<String>>> {
        let image = self.replicas.image();
        let at = image.last_applied_index;
        let mut cache = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen_at, matched)) = cache.matched.get(regex)
            && *seen_at == at
        {
            return matched.clone();
        }
        if cache.compiled.len() >= MAX_CACHED_REGEXES {
            *cache = RegexCache::default();
        }
        let compiled = cache
            .compiled
            .entry(regex.to_string())
            .or_insert_with(|| compile_subscription(regex).ok())
            .clone();
        let matched = compiled.map(|re| {
            Arc::new(
                image
                    .topic_ids_by_name
                    .keys()
                    .filter(|name| !shoal_meta::topic_name::is_internal(name) && re.is_match(name))
                    .cloned()
                    .collect::<BTreeSet<String>>(),
            )
        });
        cache
            .matched
            .insert(regex.to_string(), (at, matched.clone()));
        matched
    }
}

struct OffsetsMarkerListener(Weak<GroupCoordinator>);

impl MarkerListener for OffsetsMarkerListener {
    fn marker_written(
        &self,
        topic: &str,
        partition: i32,
        marker: &TxnMarker,
        offset: i64,
    ) -> BoxFuture<'static, ()> {
        let coordinator = if topic == OFFSETS_TOPIC {
            self.0.upgrade()
        } else {
            None
        };
        let producer_id = marker.producer_id;
        let commit = marker.control == ControlType::Commit;
        Box::pin(async move {
            if let Some(coordinator) = coordinator {
                coordinator
                    .complete_txn(partition, producer_id, commit, offset)
                    .await;
            }
        })
    }
}

/// The live leader of `group_id`'s offsets partition in `image`.
pub fn coordinator_of(group_id: &str, image: &MetadataImage) -> CoordinatorLocation {
    crate::internal_topic::coordinator_of(OFFSETS_TOPIC, group_id, image)
}
