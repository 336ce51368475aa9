//! The HTTP admin listener: liveness, readiness (and, later, metrics).
//!
//! `/healthz` answers whenever the process runs, so an orchestrator restarts only a hung or dead
//! process. `/readyz` answers 200 only once the node serves Kafka requests with current
//! metadata, so load balancers and tests wait for it rather than for an open port.
//! `/v1/quorum` is the metadata quorum as this node sees it (what
//! `kafka-metadata-quorum.sh describe --status` shows), and `/v1/brokers` the registered
//! brokers with their epochs, listeners and fencing state, as JSON for scripts and tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use shoal_meta::MetaNode;

/// Flags the rest of the node flips as it starts and stops.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

pub struct AdminServer {
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    meta: Arc<MetaNode>,
}

impl AdminServer {
    pub async fn bind(
        addr: SocketAddr,
        readiness: Arc<Readiness>,
        meta: Arc<MetaNode>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind admin listener {addr}: {e}"))?;
        Ok(Self {
            listener,
            readiness,
            meta,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let readiness = self.readiness;
        let meta = self.meta;
        let app = Router::new()
            .route(
                "/v1/quorum",
                get({
                    let meta = Arc::clone(&meta);
                    move || quorum(Arc::clone(&meta))
                }),
            )
            .route("/v1/brokers", get(move || brokers(Arc::clone(&meta))))
            .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
            .route(
                "/readyz",
                get(move || {
                    let ready = readiness.is_ready();
                    async move {
                        if ready {
                            (StatusCode::OK, "ready\n")
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                        }
                    }
                }),
            );
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

async fn quorum(meta: Arc<MetaNode>) -> impl IntoResponse {
    let status = meta.describe_quorum().await;
    let voters: Vec<serde_json::Value> = status
        .voters
        .iter()
        .map(|v| {
            serde_json::json!({
                "node_id": v.node_id,
                "address": v.address,
                "match_index": v.match_index,
                "lag": v.lag,
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "cluster_id": status.cluster_id,
        "node_id": status.node_id,
        "state": status.state,
        "leader_id": status.leader_id,
        "current_term": status.current_term,
        "last_log_index": status.last_log_index,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "replication_known": status.replication_known,
        "voters": voters,
    }))
}

async fn brokers(meta: Arc<MetaNode>) -> impl IntoResponse {
    let image = meta.image();
    let brokers: Vec<serde_json::Value> = image
        .brokers
        .values()
        .map(|b| {
            let listeners: Vec<serde_json::Value> = b
                .listeners
                .iter()
                .map(|l| serde_json::json!({"name": l.name, "host": l.host, "port": l.port}))
                .collect();
            serde_json::json!({
                "broker_id": b.broker_id,
                "broker_epoch": b.broker_epoch,
                "incarnation_id": b.incarnation_id.to_string(),
                "fenced": b.fenced,
                "rack": b.rack,
                "listeners": listeners,
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "metadata_offset": image.last_applied_index,
        "brokers": brokers,
    }))
}
