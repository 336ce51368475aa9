//! The HTTP admin listener: liveness, readiness (and, later, metrics).
//!
//! `/healthz` answers whenever the process runs, so an orchestrator restarts only a hung or dead
//! process. `/readyz` answers 200 only once the node serves Kafka requests with current
//! metadata, so load balancers and tests wait for it rather than for an open port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

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
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr, readiness: Arc<Readiness>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind admin listener {addr}: {e}"))?;
        Ok(Self {
            listener,
            readiness,
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
        let app = Router::new()
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
