//! The HTTP admin listener: liveness, readiness, Prometheus metrics.
//!
//! `/healthz` answers whenever the process runs, so an orchestrator restarts only a hung or dead
//! process. `/readyz` answers 200 only while the node does its job with current metadata: a
//! broker once it is registered, caught up on metadata and unfenced by the controller (a
//! broker fenced after a pause or a network loss is not ready until the controller takes it
//! back); a controller-only node while it knows the quorum's leader. Load balancers and tests
//! wait for it rather than for an open port; the body says why a node is not ready.
//! `/metrics` is the Prometheus text format (docs/metrics.md).
//! The listener admits at most `shoal_net::ADMIN_MAX_CONNECTIONS` connections (issue #15):
//! more are closed on accept, so a flood of connections cannot exhaust the node's descriptors.
//! `/v1/quorum` is the metadata quorum as this node sees it (what
//! `kafka-metadata-quorum.sh describe --status` shows; controllers only), and `/v1/brokers`
//! the registered brokers with their epochs, listeners and fencing state, as JSON for scripts
//! and tests. With `admin.listener.token.file` set, `/metrics` and `/v1/*` need the bearer
//! token (`admin_token`) or, on a TLS admin listener that asks for client certificates
//! (`ADMIN:SSL`, `admin_listener`), a verified certificate; the probes stay open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use shoal_broker::Broker;

use crate::admin_token::AdminToken;
use shoal_meta::meta_properties::format_directory_id;
use shoal_meta::{MetaNode, MetadataImage};
use shoal_net::{ConnectionLimiter, ConnectionLimits, LimitedIncoming};

use crate::admin_listener::{AdminListener, AdminPeer};
use tokio::sync::watch;

/// Whether the node is ready, from what it runs.
pub struct Readiness {
    started: AtomicBool,
    broker: Option<Arc<Broker>>,
    meta: Option<Arc<MetaNode>>,
}

impl Readiness {
    pub fn new(broker: Option<Arc<Broker>>, meta: Option<Arc<MetaNode>>) -> Self {
        Readiness {
            started: AtomicBool::new(false),
            broker,
            meta,
        }
    }

    /// Start-up finished (true) or shutdown began (false).
    pub fn set_started(&self, started: bool) {
        self.started.store(started, Ordering::Release);
    }

    /// `Ok` if ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if !self.started.load(Ordering::Acquire) {
            return Err("starting or shutting down".to_string());
        }
        if let Some(broker) = &self.broker {
            if !broker.is_unfenced() {
                return Err(
                    "the broker is fenced: not heartbeating the active controller, or \
                            not caught up on metadata"
                        .to_string(),
                );
            }
            // A replica that cannot open is data this node should serve and does not: an
            // operator must look, so the node is not ready (issue #15) until it opens.
            let offline = broker.replicas.offline_partitions();
            if !offline.is_empty() {
                let image = broker.image();
                let mut named: Vec<String> = offline
                    .iter()
                    .map(|((topic_id, partition), reason)| {
                        let topic = image
                            .topic(topic_id)
                            .map_or_else(|| topic_id.to_string(), |t| t.name.clone());
                        format!("{topic}/{partition} ({reason})")
                    })
                    .collect();
                named.sort();
                let shown = named.len().min(MAX_OFFLINE_SHOWN);
                let more = named.len() - shown;
                return Err(format!(
                    "{} partition replica(s) assigned here cannot be opened (offline): {}{}",
                    named.len(),
                    named[..shown].join("; "),
                    if more > 0 {
                        format!("; and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
        } else if let Some(meta) = &self.meta
            && meta.leader_id().is_none()
        {
            return Err("no metadata quorum leader is known".to_string());
        }
        Ok(())
    }
}

/// Offline replicas named in a `/readyz` answer; the rest are counted.
const MAX_OFFLINE_SHOWN: usize = 10;

/// What the admin endpoints read.
pub struct AdminState {
    pub readiness: Arc<Readiness>,
    /// This node's quorum member, on controllers.
    pub meta: Option<Arc<MetaNode>>,
    /// The metadata images this node serves from.
    pub images: watch::Receiver<Arc<MetadataImage>>,
    pub node_id: i32,
    /// What the state gauges of `/metrics` read.
    pub metrics: Arc<crate::metrics::StateSources>,
    /// When set, `/metrics` and `/v1/*` answer only requests carrying it (or a client
    /// certificate, with `client_auth`).
    pub token: Option<AdminToken>,
    /// `ADMIN:SSL` asks clients for certificates (`ssl.client.auth` requested or required):
    /// one that verifies admits a request to `/metrics` and `/v1/*`.
    pub client_auth: bool,
}

pub struct AdminServer {
    listener: AdminListener,
    state: Arc<AdminState>,
}

impl AdminServer {
    /// Binds `addr`; with `tls` (`ADMIN:SSL`) every connection speaks TLS.
    pub async fn bind(
        addr: SocketAddr,
        state: AdminState,
        tls: Option<Arc<shoal_tls::TlsListener>>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind admin listener {addr}: {e}"))?;
        let limiter = ConnectionLimiter::new(
            "admin",
            ConnectionLimits::total(shoal_net::ADMIN_MAX_CONNECTIONS),
        );
        Ok(Self {
            listener: AdminListener::new(LimitedIncoming::new(listener, limiter), tls)?,
            state: Arc::new(state),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let token = state.token.clone();
        let client_auth = state.client_auth;
        let protected =
            Router::new()
                .route(
                    "/v1/quorum",
                    get({
                        let state = Arc::clone(&state);
                        move || quorum(Arc::clone(&state))
                    }),
                )
                .route(
                    "/v1/brokers",
                    get({
                        let state = Arc::clone(&state);
                        move || brokers(Arc::clone(&state))
                    }),
                )
                .route(
                    "/metrics",
                    get({
                        let state = Arc::clone(&state);
                        move || metrics(Arc::clone(&state))
                    }),
                )
                .route_layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        let token = token.clone();
                        async move {
                            require_credentials(token.as_ref(), client_auth, request, next).await
                        }
                    },
                ));
        let app = Router::new()
            .merge(protected)
            .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
            .route(
                "/readyz",
                get(move || {
                    let verdict = state.readiness.check();
                    async move {
                        match verdict {
                            Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                            Err(why) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("not ready: {why}\n"),
                            ),
                        }
                    }
                }),
            );
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<AdminPeer>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}

/// Lets a request through when the listener asks for no credentials (no token file, no
/// client certificates), when it carries the token, or when its connection presented a client
/// certificate the TLS handshake verified (mutual TLS); else 401.
async fn require_credentials(
    token: Option<&AdminToken>,
    client_auth: bool,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if token.is_none() && !client_auth {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<AdminPeer>>()
        .map(|info| info.0);
    let certified = peer.is_some_and(|peer| peer.client_certificate);
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if certified || token.is_some_and(|token| token.admits(presented)) {
        return next.run(request).await;
    }
    tracing::debug!(path = %request.uri().path(), remote = ?peer.map(|p| p.remote),
        "admin request without credentials");
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token (admin.listener.token.file) or a client certificate is required\n",
    )
        .into_response()
}

async fn metrics(state: Arc<AdminState>) -> impl IntoResponse {
    let body = crate::metrics::render(&state.metrics).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn quorum(state: Arc<AdminState>) -> axum::response::Response {
    let Some(meta) = &state.meta else {
        let body = serde_json::json!({
            "error": format!(
                "node {} is not a controller; ask a voter of controller.quorum.voters",
                state.node_id
            ),
        });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
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
                "directory_id": v.directory_id.map(format_directory_id),
                "reported_directory_id": v.reported_directory_id.map(format_directory_id),
            })
        })
        .collect();
    let observers: Vec<serde_json::Value> = status
        .observers
        .iter()
        .map(|o| {
            serde_json::json!({
                "node_id": o.node_id,
                "applied_offset": o.applied_offset,
                "lag": o.lag,
                "last_fetch_ms_ago": o.last_fetch_ms_ago,
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
        "learners": status.learners,
        "directory_id": status.directory_id.map(format_directory_id),
        "observers": observers,
    }))
    .into_response()
}

async fn brokers(state: Arc<AdminState>) -> impl IntoResponse {
    let image = state.images.borrow().clone();
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
