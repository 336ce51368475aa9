//! The server side of `MetadataLog`: long-polled metadata fetches, answered from the journal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::format::{DELTA_PAYLOAD_VERSION, encode_delta};
use crate::image::MetadataImage;
use crate::metadata_log::delta::MetadataDelta;
use crate::metadata_log::journal::{JournalRead, MetadataJournal};
use crate::metadata_log::observers::Observers;
use crate::proto::metadata_log_server::MetadataLog;
use crate::proto::{FetchMetadataReply, FetchMetadataRequest, VoterEndpoint};
use crate::raft::types::{MetaRaft, to_kafka_node_id};
use crate::voter_book::VoterBook;

/// Longest a fetch is held when there is nothing new, whatever the caller asks.
pub const MAX_FETCH_WAIT_MS: u64 = 5_000;

pub struct MetadataLogService {
    cluster_id: String,
    node_id: i32,
    raft: MetaRaft,
    journal: Arc<Mutex<MetadataJournal>>,
    images: watch::Receiver<Arc<MetadataImage>>,
    observers: Arc<Observers>,
    voters: Arc<VoterBook>,
}

impl MetadataLogService {
    pub fn new(
        cluster_id: &str,
        node_id: i32,
        raft: MetaRaft,
        journal: Arc<Mutex<MetadataJournal>>,
        images: watch::Receiver<Arc<MetadataImage>>,
        observers: Arc<Observers>,
        voters: Arc<VoterBook>,
    ) -> Self {
        MetadataLogService {
            cluster_id: cluster_id.to_string(),
            node_id,
            raft,
            journal,
            images,
            observers,
            voters,
        }
    }

    /// The delta for a reader at `offset`, from the journal or, if it is too far behind, the
    /// image. The journal is updated before an image is published, so it is never behind the
    /// image the wait saw.
    fn delta_after(&self, offset: u64) -> MetadataDelta {
        let read = self
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read_after(offset);
        match read {
            JournalRead::Batches {
                batches,
                last_offset,
            } => MetadataDelta::Batches {
                batches: batches
                    .into_iter()
                    .map(|(index, batch)| (index, batch.as_ref().clone()))
                    .collect(),
                last_offset,
            },
            JournalRead::TooOld => {
                MetadataDelta::Image(Box::new(self.images.borrow().as_ref().clone()))
            }
        }
    }
}

#[tonic::async_trait]
impl MetadataLog for MetadataLogService {
    async fn fetch_metadata(
        &self,
        request: Request<FetchMetadataRequest>,
    ) -> Result<Response<FetchMetadataReply>, Status> {
        shoal_internode::check_claim(request.extensions(), request.get_ref().node_id)?;
        let request = request.into_inner();
        if request.cluster_id != self.cluster_id {
            tracing::warn!(
                from = request.node_id,
                their_cluster_id = %request.cluster_id,
                "refused a metadata fetch from another cluster"
            );
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: node {} belongs to cluster '{}', node {} to cluster '{}'",
                request.node_id, request.cluster_id, self.node_id, self.cluster_id
            )));
        }
        let offset = request.applied_offset;
        self.observers
            .record(request.node_id, offset, Instant::now());
        let wait_ms = u64::from(request.max_wait_ms).min(MAX_FETCH_WAIT_MS);
        let mut images = self.images.clone();
        if images.borrow().last_applied_index <= offset {
            let newer = images.wait_for(|image| image.last_applied_index > offset);
            // Nothing new within the wait (or shutting down): answer with what there is.
            let _ = tokio::time::timeout(Duration::from_millis(wait_ms), newer).await;
        }
        let delta = self.delta_after(offset);
        // The newest version both sides read: an older broker (0) still gets JSON.
        let payload_version = request.max_payload_version.min(DELTA_PAYLOAD_VERSION);
        let payload = encode_delta(&delta, payload_version)
            .map_err(|e| Status::internal(format!("cannot encode the metadata delta: {e}")))?;
        let leader_id = self
            .raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(to_kafka_node_id)
            .unwrap_or(-1);
        let voters = self
            .voters
            .voters()
            .into_iter()
            .map(|(node_id, address)| VoterEndpoint { node_id, address })
            .collect();
        Ok(Response::new(FetchMetadataReply {
            leader_id,
            payload,
            payload_version,
            voters,
        }))
    }
}
