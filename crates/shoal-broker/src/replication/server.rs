//! The replication gRPC server on the broker's replication listener.
//!
//! Runs over an already bound listener (so the broker registers the real port, also when it
//! bound port 0), in the background. Stopping is graceful but bounded: a broker that shuts
//! down must stop serving followers promptly, so after `STOP_GRACE_MS` the task is aborted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shoal_internode::{NodeIncoming, NodeTls};
use shoal_net::{ConnectionLimiter, ConnectionLimits, LimitedIncoming};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::replication::MAX_MESSAGE_BYTES;
use crate::replication::proto::replication_server::ReplicationServer as GrpcServer;
use crate::replication::service::ReplicationService;

const STOP_GRACE_MS: u64 = 1_000;

pub struct ReplicationServer {
    local_address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ReplicationServer {
    /// Serves `service` on `listener`, over mutual TLS when `tls` is given.
    pub fn spawn(
        listener: TcpListener,
        service: ReplicationService,
        tls: Option<Arc<NodeTls>>,
    ) -> std::io::Result<Self> {
        let local_address = listener.local_addr()?;
        let service = GrpcServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(service);
        let task = tokio::spawn(async move {
            // `Server::tcp_nodelay` applies only to listeners tonic binds itself; an accepted
            // socket without TCP_NODELAY holds small responses for the peer's delayed ACK
            // (~40 ms on Linux), which once made every acks=all produce wait that long, so
            // LimitedIncoming sets it. It also bounds the listener's connections (issue #15):
            // closed on accept beyond `shoal_net::REPLICATION_MAX_CONNECTIONS`.
            let incoming = NodeIncoming::new(
                LimitedIncoming::new(
                    listener,
                    ConnectionLimiter::new(
                        "replication",
                        ConnectionLimits::total(shoal_net::REPLICATION_MAX_CONNECTIONS),
                    ),
                ),
                tls,
            );
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
            {
                tracing::error!(error = %e, "replication gRPC server failed");
            }
        });
        tracing::info!(address = %local_address, "replication listener up");
        Ok(ReplicationServer {
            local_address,
            stop: Some(stop),
            task,
        })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Stops accepting, lets in-flight fetches finish for up to `STOP_GRACE_MS`, then aborts.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_millis(STOP_GRACE_MS), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}
