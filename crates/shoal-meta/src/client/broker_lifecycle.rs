//! `BrokerLifecycle`: a broker's registration, heartbeats and controlled shutdown (Kafka's
//! `BrokerLifecycleManager`).
//!
//! **Why the broker heartbeats itself.** Fencing must happen exactly when the broker stops
//! working: a crash, a SIGSTOP, a lost network. So the heartbeats come from the broker's own
//! process, through the same [`ControllerClient`] its other requests use, whether the active
//! controller is in this process or on another node.
//!
//! Start-up: register with a fresh incarnation id (retrying while the previous incarnation's
//! session has not expired, DUPLICATE_BROKER_REGISTRATION), wait until the local image holds
//! the registration, then heartbeat every `broker.heartbeat.interval.ms`, each reporting the
//! metadata offset this node has applied. The controller unfences the broker once that offset
//! covers its registration; [`BrokerLifecycle::is_unfenced`] reads the outcome from the image,
//! the one source of truth every other broker also sees.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::client::controller_client::ControllerClient;
use crate::client::controller_lease::ControllerLease;
use crate::controller::{
    BrokerHeartbeat, BrokerRegistrationRequest, MAX_OFFLINE_REPLICAS_PER_HEARTBEAT,
    MAX_REPLICA_SIZES_PER_HEARTBEAT, ReplicaRef, ReplicaSize,
};
use crate::error::{BrokerError, ControllerError};
use crate::image::MetadataImage;
use crate::records::Endpoint;

/// A heartbeat that takes longer than this many intervals is abandoned (the next one follows).
const HEARTBEAT_TIMEOUT_INTERVALS: u32 = 4;

#[derive(Debug, Clone)]
pub struct BrokerLifecycleConfig {
    pub broker_id: i32,
    /// The advertised listeners (Kafka clients' and replication's) to register.
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Kafka's `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// Kafka's `broker.session.timeout.ms`, as configured here: the lease length assumed when
    /// the controller's answer does not state its own (see [`ControllerLease`]).
    pub session_timeout_ms: u64,
    /// How long start-up keeps trying to register.
    pub registration_timeout_ms: u64,
    /// The directory ids of its log directories (`directory.id` in meta.properties).
    pub log_dirs: Vec<Uuid>,
}

/// What the heartbeats report about this broker's replicas, read as each one is sent (the
/// broker's replica manager answers).
#[derive(Clone)]
pub struct ReplicaReports {
    /// The replicas assigned here whose log cannot be opened.
    pub offline: Arc<dyn Fn() -> Vec<ReplicaRef> + Send + Sync>,
    /// The sizes of the partitions this broker leads.
    pub sizes: Arc<dyn Fn() -> Vec<ReplicaSize> + Send + Sync>,
}

impl ReplicaReports {
    /// Reports nothing (brokers without local logs, tests).
    pub fn none() -> Self {
        ReplicaReports {
            offline: Arc::new(Vec::new),
            sizes: Arc::new(Vec::new),
        }
    }
}

/// A registered broker's lifecycle; heartbeats until stopped or shut down.
pub struct BrokerLifecycle {
    broker_id: i32,
    broker_epoch: i64,
    incarnation_id: Uuid,
    client: Arc<ControllerClient>,
    images: watch::Receiver<Arc<MetadataImage>>,
    heartbeat_interval: Duration,
    lease: Arc<ControllerLease>,
    heartbeats: Mutex<Option<JoinHandle<()>>>,
}

impl BrokerLifecycle {
    /// Registers the broker (see the module docs) and starts heartbeating. Returns once the
    /// registration is in this node's image; the broker is still fenced then.
    pub async fn start(
        client: Arc<ControllerClient>,
        images: watch::Receiver<Arc<MetadataImage>>,
        config: BrokerLifecycleConfig,
        reports: ReplicaReports,
    ) -> Result<Arc<Self>, ControllerError> {
        let deadline = Instant::now() + Duration::from_millis(config.registration_timeout_ms);
        let interval = Duration::from_millis(config.heartbeat_interval_ms.max(1));
        let request = BrokerRegistrationRequest {
            broker_id: config.broker_id,
            incarnation_id: Uuid::new_v4(),
            listeners: config.listeners,
            rack: config.rack,
            supported_features: Some(crate::features::supported_features()),
            log_dirs: config.log_dirs,
        };
        let mut waited_for_session = false;
        let registered = loop {
            match client.register(request.clone()).await {
                Ok(registered) => break registered,
                Err(BrokerError::DuplicateBrokerRegistration { .. })
                    if Instant::now() + interval < deadline =>
                {
                    if !waited_for_session {
                        tracing::info!(
                            broker_id = config.broker_id,
                            "the previous incarnation's session is still open; waiting for it to \
                             expire before registering"
                        );
                        waited_for_session = true;
                    }
                    tokio::time::sleep(interval).await;
                }
                Err(BrokerError::Controller(
                    e @ (ControllerError::RequestTimedOut | ControllerError::NotController { .. }),
                )) if Instant::now() + interval < deadline => {
                    tracing::debug!(error = %e, "registration not answered yet; retrying");
                    tokio::time::sleep(interval).await;
                }
                Err(e) => return Err(e.into_controller_error()),
            }
        };
        let mut waiting = images.clone();
        let wait = waiting.wait_for(|image| image.last_applied_index >= registered.log_index);
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                return Err(ControllerError::Internal(
                    "the metadata source stopped".to_string(),
                ));
            }
            Err(_) => return Err(ControllerError::RequestTimedOut),
        }
        tracing::info!(
            broker_id = request.broker_id,
            broker_epoch = registered.broker_epoch,
            incarnation_id = %request.incarnation_id,
            log_index = registered.log_index,
            "broker registered"
        );
        let lease = Arc::new(ControllerLease::new(config.session_timeout_ms));
        let lifecycle = Arc::new(BrokerLifecycle {
            broker_id: request.broker_id,
            broker_epoch: registered.broker_epoch,
            incarnation_id: request.incarnation_id,
            client: Arc::clone(&client),
            images: images.clone(),
            heartbeat_interval: interval,
            lease: Arc::clone(&lease),
            heartbeats: Mutex::new(None),
        });
        let task = tokio::spawn(heartbeat_loop(
            client,
            images,
            request.broker_id,
            registered.broker_epoch,
            interval,
            reports,
            lease,
        ));
        *lifecycle.lock_heartbeats() = Some(task);
        Ok(lifecycle)
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The epoch of this process's registration.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch
    }

    pub fn incarnation_id(&self) -> Uuid {
        self.incarnation_id
    }

    /// Whether the latest image shows this registration unfenced.
    pub fn is_unfenced(&self) -> bool {
        is_unfenced_in(&self.images.borrow(), self.broker_id, self.broker_epoch)
    }

    /// Waits (at most `timeout`) until this registration is unfenced in the image.
    pub async fn wait_until_unfenced(&self, timeout: Duration) -> bool {
        let mut images = self.images.clone();
        let (id, epoch) = (self.broker_id, self.broker_epoch);
        let wait = images.wait_for(|image| is_unfenced_in(image, id, epoch));
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// Controlled shutdown (Kafka's, on SIGTERM): stops the heartbeats and asks the controller
    /// to fence this broker now, which moves its leaderships to other in-sync replicas, and to
    /// end its session so the next start registers at once. Bounded by `timeout`; if it fails,
    /// the session simply expires.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.stop();
        let heartbeat = BrokerHeartbeat {
            broker_id: self.broker_id,
            broker_epoch: self.broker_epoch,
            caught_up_metadata_offset: self.images.borrow().last_applied_index,
            want_shutdown: true,
            offline_replicas: Vec::new(),
            replica_sizes: Vec::new(),
        };
        match self.client.broker_heartbeat(heartbeat, timeout).await {
            Ok(_) => tracing::info!(broker_epoch = self.broker_epoch, "controlled shutdown done"),
            Err(error) => {
                tracing::warn!(%error, "controlled shutdown failed; the session will expire instead")
            }
        }
    }

    /// Stops heartbeating (the session then expires, as after a crash).
    pub fn stop(&self) {
        if let Some(task) = self.lock_heartbeats().take() {
            task.abort();
        }
        self.lease.revoke();
    }

    /// How long this broker may trust its own view of what it leads (see
    /// [`ControllerLease`]); coordinators check it before answering from memory.
    pub fn lease(&self) -> Arc<ControllerLease> {
        Arc::clone(&self.lease)
    }

    /// The interval heartbeats are sent at.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    fn lock_heartbeats(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.heartbeats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for BrokerLifecycle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Picks which reports ride on the next heartbeat: all of them up to `max`, else a window
/// that moves on each time, so every one is reported within a few heartbeats.
#[derive(Debug)]
struct ReportWindow {
    start: usize,
    max: usize,
}

impl ReportWindow {
    fn new(max: usize) -> Self {
        ReportWindow { start: 0, max }
    }

    fn next<T: Ord + Copy>(&mut self, mut reports: Vec<T>) -> Vec<T> {
        if reports.len() <= self.max {
            return reports;
        }
        reports.sort_unstable();
        let start = self.start % reports.len();
        self.start = start + self.max;
        reports
            .iter()
            .cycle()
            .skip(start)
            .take(self.max)
            .copied()
            .collect()
    }
}

fn is_unfenced_in(image: &MetadataImage, broker_id: i32, broker_epoch: i64) -> bool {
    image
        .brokers
        .get(&broker_id)
        .is_some_and(|b| b.broker_epoch == broker_epoch && !b.fenced)
}

async fn heartbeat_loop(
    client: Arc<ControllerClient>,
    images: watch::Receiver<Arc<MetadataImage>>,
    broker_id: i32,
    broker_epoch: i64,
    interval: Duration,
    reports: ReplicaReports,
    lease: Arc<ControllerLease>,
) {
    let mut ticks = tokio::time::interval(interval);
    let mut offline_window = ReportWindow::new(MAX_OFFLINE_REPLICAS_PER_HEARTBEAT);
    let mut size_window = ReportWindow::new(MAX_REPLICA_SIZES_PER_HEARTBEAT);
    // Sizes are read off the async threads (a log's lock may be held through an fsync) and
    // never waited for: a heartbeat carries the sizes read since the previous one, if any.
    let mut sizes_read: Option<JoinHandle<Vec<ReplicaSize>>> = None;
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = interval.saturating_mul(HEARTBEAT_TIMEOUT_INTERVALS);
    let mut fenced: Option<bool> = None;
    loop {
        ticks.tick().await;
        let replica_sizes = match sizes_read.take() {
            Some(read) if read.is_finished() => read.await.unwrap_or_default(),
            pending => {
                sizes_read = pending;
                Vec::new()
            }
        };
        if sizes_read.is_none() {
            let sizes = Arc::clone(&reports.sizes);
            sizes_read = Some(tokio::task::spawn_blocking(move || sizes()));
        }
        let heartbeat = BrokerHeartbeat {
            broker_id,
            broker_epoch,
            caught_up_metadata_offset: images.borrow().last_applied_index,
            want_shutdown: false,
            offline_replicas: offline_window.next((reports.offline)()),
            replica_sizes: size_window.next(replica_sizes),
        };
        let sent_at = Instant::now();
        match client.broker_heartbeat(heartbeat, timeout).await {
            Ok(reply) => {
                if reply.fenced {
                    lease.revoke();
                } else {
                    lease.on_unfenced(sent_at, reply.lease);
                }
                if fenced != Some(reply.fenced) {
                    if reply.fenced {
                        tracing::warn!(broker_id, broker_epoch, "broker is fenced");
                    } else {
                        tracing::info!(broker_id, broker_epoch, "broker is unfenced");
                    }
                    fenced = Some(reply.fenced);
                }
            }
            Err(
                e @ (BrokerError::StaleBrokerEpoch { .. }
                | BrokerError::BrokerIdNotRegistered { .. }),
            ) => {
                lease.revoke();
                tracing::error!(
                    broker_id,
                    error = %e,
                    "this broker's registration was replaced; heartbeats stop and it stays \
                     fenced (restart the process to register again)"
                );
                return;
            }
            Err(e) => tracing::debug!(broker_id, error = %e, "broker heartbeat failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_offline_list_is_reported_in_turns() {
        let all: Vec<ReplicaRef> = (0..MAX_OFFLINE_REPLICAS_PER_HEARTBEAT as i32 * 2 + 7)
            .map(|partition| ReplicaRef {
                topic_id: Uuid::from_u128(1),
                partition,
            })
            .collect();
        let mut window = ReportWindow::new(MAX_OFFLINE_REPLICAS_PER_HEARTBEAT);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let sent = window.next(all.clone());
            assert_eq!(sent.len(), MAX_OFFLINE_REPLICAS_PER_HEARTBEAT);
            seen.extend(sent);
        }
        assert_eq!(
            seen.len(),
            all.len(),
            "every replica within three heartbeats"
        );
        let few = all[..3].to_vec();
        assert_eq!(window.next(few.clone()), few);
    }
}
