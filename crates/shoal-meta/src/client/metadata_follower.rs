//! `MetadataFollower`: a broker-only node's copy of the metadata image, kept current by
//! long-polling a voter's `MetadataLog` (see `proto/controller.proto`).
//!
//! The follower asks the leader it last heard of (the freshest voter) and, when that one does
//! not answer, the voters in turn. Whatever a voter returns is committed, and
//! [`MetadataDelta::apply_to`] never moves the image backwards, so switching voters (even to
//! one that is behind) is always safe: the image only ever grows along the one committed log.
//! Every change is published on a watch channel, exactly as a voter's state machine publishes
//! its own, so the broker cannot tell the two apart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shoal_internode::{ClientTls, NodeConnector};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::client::known_leader::KnownLeader;
use crate::format::{DELTA_PAYLOAD_VERSION, decode_delta};
use crate::image::MetadataImage;
use crate::metadata_log::MetadataDelta;
use crate::proto::FetchMetadataRequest;
use crate::proto::metadata_log_client::MetadataLogClient;
use crate::raft::MAX_RAFT_MESSAGE_BYTES;
use crate::voter_book::VoterBook;

/// How long a voter may hold a fetch when nothing is new (it answers at once when something
/// is). Short enough that a dead voter is noticed quickly by the transport timeout below.
const FETCH_MAX_WAIT_MS: u32 = 1_000;
/// A fetch with no answer this long after its wait expired is given up on.
const FETCH_TIMEOUT_SLACK_MS: u64 = 1_000;
const RETRY_BACKOFF_MIN_MS: u64 = 50;
const RETRY_BACKOFF_MAX_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct MetadataFollowerConfig {
    pub cluster_id: String,
    /// This node's id (voters list it as an observer).
    pub node_id: i32,
    /// The voters' controller addresses: configured, then as the voters report them.
    pub voters: Arc<VoterBook>,
    pub connect_timeout: Duration,
    /// Mutual TLS to the voters, when the controller listener uses SSL.
    pub tls: Option<ClientTls>,
}

/// A running follower; stops when dropped or [`MetadataFollower::stop`]ped.
pub struct MetadataFollower {
    images: watch::Receiver<Arc<MetadataImage>>,
    task: JoinHandle<()>,
}

impl MetadataFollower {
    /// Starts following from an empty image. Leaders learned from replies go to `known_leader`.
    pub fn start(config: MetadataFollowerConfig, known_leader: Arc<KnownLeader>) -> Self {
        let image = Arc::new(MetadataImage::empty(config.cluster_id.clone()));
        let (publisher, images) = watch::channel(image);
        let task = tokio::spawn(follow(config, known_leader, publisher));
        MetadataFollower { images, task }
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MetadataFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    config: MetadataFollowerConfig,
    known_leader: Arc<KnownLeader>,
    publisher: watch::Sender<Arc<MetadataImage>>,
) {
    let mut clients: BTreeMap<i32, MetadataLogClient<Channel>> = BTreeMap::new();
    let mut rotation = 0usize;
    let mut backoff_ms = RETRY_BACKOFF_MIN_MS;
    let mut last_error: Option<String> = None;
    let mut image = publisher.borrow().clone();
    loop {
        let voter_ids = config.voters.ids();
        let Some(rotated) = voter_ids.get(rotation % voter_ids.len().max(1)).copied() else {
            tracing::error!("no controller voters to follow the metadata log from");
            return;
        };
        let target = known_leader
            .get()
            .filter(|id| config.voters.contains(*id))
            .unwrap_or(rotated);
        let outcome = fetch_once(&config, &mut clients, target, image.last_applied_index).await;
        match outcome {
            Ok((leader_id, delta)) => {
                if leader_id >= 0 {
                    known_leader.set(Some(leader_id));
                }
                if last_error.take().is_some() {
                    tracing::info!(voter = target, "following the metadata log again");
                }
                backoff_ms = RETRY_BACKOFF_MIN_MS;
                if delta.apply_to(Arc::make_mut(&mut image)) {
                    publisher.send_replace(Arc::clone(&image));
                }
            }
            Err(error) => {
                known_leader.forget(target);
                clients.remove(&target);
                rotation = rotation.wrapping_add(1);
                if last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(voter = target, %error, "metadata fetch failed; trying another voter");
                }
                last_error = Some(error);
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = backoff_ms.saturating_mul(2).min(RETRY_BACKOFF_MAX_MS);
            }
        }
    }
}

/// One long-polled fetch from `target`: its leader id and the delta.
async fn fetch_once(
    config: &MetadataFollowerConfig,
    clients: &mut BTreeMap<i32, MetadataLogClient<Channel>>,
    target: i32,
    applied_offset: u64,
) -> Result<(i32, MetadataDelta), String> {
    let client = match clients.get(&target) {
        Some(client) => client.clone(),
        None => {
            let address = config
                .voters
                .address(target)
                .ok_or_else(|| format!("node {target} is not a voter"))?;
            let channel = NodeConnector::new(config.tls.clone(), Some(target))
                .channel(&address, config.connect_timeout)
                .map_err(|e| format!("controller address '{address}' is invalid: {e}"))?;
            let client =
                MetadataLogClient::new(channel).max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES);
            clients.insert(target, client.clone());
            client
        }
    };
    let timeout =
        Duration::from_millis(u64::from(FETCH_MAX_WAIT_MS).saturating_add(FETCH_TIMEOUT_SLACK_MS));
    let mut request = tonic::Request::new(FetchMetadataRequest {
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id,
        applied_offset,
        max_wait_ms: FETCH_MAX_WAIT_MS,
        max_payload_version: DELTA_PAYLOAD_VERSION,
    });
    request.set_timeout(timeout);
    let mut client = client;
    let reply = tokio::time::timeout(timeout, client.fetch_metadata(request))
        .await
        .map_err(|_| format!("no answer from node {target} within {timeout:?}"))?
        .map_err(|status| {
            if status.code() == tonic::Code::FailedPrecondition {
                // A misconfiguration (another cluster), not a transient failure: say so loudly.
                tracing::error!(
                    voter = target,
                    message = status.message(),
                    "metadata fetch refused"
                );
            }
            format!("node {target}: {}: {}", status.code(), status.message())
        })?
        .into_inner();
    let delta = decode_delta(reply.payload_version, &reply.payload)
        .map_err(|e| format!("unreadable metadata delta from node {target}: {e}"))?;
    let voters: BTreeMap<i32, String> = reply
        .voters
        .into_iter()
        .map(|v| (v.node_id, v.address))
        .collect();
    if config.voters.update(&voters) {
        // A voter may have been re-added at another address: connect afresh.
        clients.clear();
    }
    Ok((reply.leader_id, delta))
}
