//! The listener: accepts connections up to `max.connections` (and `max.connections.per.ip`
//! from one address, through `shoal-net`'s limiter) and runs one task per connection. Every
//! connection reads its frames against one request [`MemoryPool`] (`queued.max.request.bytes`),
//! shared with the node's other Kafka listeners when given with
//! [`KafkaServer::with_memory_pool`].
//!
//! Graceful shutdown: when the shutdown future fires the listener stops accepting, every
//! connection stops reading new requests, answers the ones it already read (including
//! deferred replies) and closes. The drain is bounded by `shutdown_drain_timeout_ms`; what
//! is left after that is aborted.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_net::{ACCEPT_ERROR_BACKOFF_MS, ConnectionLimiter, ConnectionLimits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::ServerConfig;
use crate::connection::{ConnectionId, ListenerState, serve_connection};
use crate::handler::Handler;
use crate::memory_pool::MemoryPool;
use crate::supported_apis::SupportedApis;

/// A bound Kafka listener; call [`KafkaServer::run`] to serve it.
pub struct KafkaServer<H> {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: ListenerState<H>,
}

impl<H: Handler> KafkaServer<H> {
    /// Binds `config.bind` (port 0 picks an ephemeral port).
    pub async fn bind(
        config: ServerConfig,
        supported: SupportedApis,
        handler: Arc<H>,
    ) -> io::Result<KafkaServer<H>> {
        let invalid = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} must be positive"),
            )
        };
        if config.max_inflight_per_connection == 0 {
            return Err(invalid("max_inflight_per_connection"));
        }
        if config.socket_request_max_bytes == 0 {
            return Err(invalid("socket_request_max_bytes"));
        }
        if config.max_connections == 0 {
            return Err(invalid("max_connections"));
        }
        if config.queued_max_request_bytes == 0 {
            return Err(invalid("queued_max_request_bytes"));
        }
        if config.request_read_timeout_ms == 0 {
            return Err(invalid("request_read_timeout_ms"));
        }
        if config.response_write_timeout_ms == 0 {
            return Err(invalid("response_write_timeout_ms"));
        }
        let listener = TcpListener::bind(config.bind).await?;
        let local_addr = listener.local_addr()?;
        info!(listener = %config.listener_name, %local_addr, "Kafka listener bound");
        Ok(KafkaServer {
            listener,
            local_addr,
            state: ListenerState {
                handler,
                supported,
                pool: MemoryPool::new(config.queued_max_request_bytes),
                tls: None,
                sasl: None,
                config,
            },
        })
    }

    /// Reads requests against `pool` (one per node, shared by its Kafka listeners) instead of
    /// a pool of its own `queued_max_request_bytes`. Call before [`KafkaServer::run`].
    pub fn with_memory_pool(mut self, pool: Arc<MemoryPool>) -> KafkaServer<H> {
        self.state.pool = pool;
        self
    }

    /// Makes this an SSL listener: every connection starts with a TLS handshake against the
    /// listener's current certificate. Call before [`KafkaServer::run`].
    pub fn with_tls(mut self, tls: Arc<shoal_tls::TlsListener>) -> KafkaServer<H> {
        self.state.tls = Some(tls);
        self
    }

    /// Makes this a SASL listener (SASL_PLAINTEXT, or SASL_SSL together with
    /// [`Self::with_tls`]): connections authenticate first (see `sasl.rs`).
    pub fn with_sasl(mut self, sasl: Arc<crate::sasl::SaslConfig>) -> KafkaServer<H> {
        self.state.sasl = Some(sasl);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains connections (see module docs).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let KafkaServer {
            listener,
            local_addr,
            state,
        } = self;
        let state = Arc::new(state);
        let config = &state.config;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let limiter = ConnectionLimiter::new(
            format!("kafka:{}", config.listener_name),
            ConnectionLimits {
                max_connections: config.max_connections,
                max_connections_per_ip: config.max_connections_per_ip,
                max_connections_per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
            },
        );
        let mut connections = JoinSet::new();
        let mut next_connection_id: u64 = 1;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Over a bound: closed at once (logged and counted by the limiter).
                        let Ok(slot) = limiter.try_admit(peer) else {
                            drop(stream);
                            continue;
                        };
                        let connection = ConnectionId { id: next_connection_id, peer };
                        next_connection_id += 1;
                        let state = state.clone();
                        let shutdown_rx = shutdown_rx.clone();
                        connections.spawn(async move {
                            serve_connection(stream, connection, state, shutdown_rx).await;
                            drop(slot);
                        });
                    }
                    Err(e) => {
                        warn!(listener = %config.listener_name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                    }
                },
                Some(joined) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = joined {
                        warn!(error = %e, "connection task failed");
                    }
                }
            }
        }
        drop(listener);
        let open_connections = connections.len();
        info!(%local_addr, open_connections, "Kafka listener stopped accepting; draining connections");
        // Receivers see `true`; if none are left, there is nothing to tell.
        let _ = shutdown_tx.send(true);
        let drain_timeout = Duration::from_millis(config.shutdown_drain_timeout_ms);
        let drained = tokio::time::timeout(drain_timeout, async {
            while let Some(joined) = connections.join_next().await {
                if let Err(e) = joined {
                    warn!(error = %e, "connection task failed");
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = connections.len(),
                drain_timeout_ms = config.shutdown_drain_timeout_ms,
                "drain timeout: aborting remaining connections"
            );
            connections.shutdown().await;
        }
        debug!(%local_addr, "Kafka listener closed");
    }
}
