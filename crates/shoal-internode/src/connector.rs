//! Dialing a peer node: TCP (no Nagle delay), then mutual TLS when the link is secured.
//!
//! A tonic `Channel` built with [`NodeConnector::channel`] connects through it, so reconnects
//! pick up renewed certificates. The server's certificate is checked against the address dialed
//! (rustls' hostname check) and, when the peer's node id is known, against that id too: a
//! node that answers at another node's address with its own valid certificate is refused.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tower_service::Service;

use crate::tls::NodeTls;

/// What secures a connection a node (or an operator's tool) opens.
#[derive(Clone)]
pub enum ClientTls {
    /// A node's own certificates; the peer's node id is checked when known.
    Node(Arc<NodeTls>),
    /// A tool's client configuration (its certificate need not name a node).
    Config(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientTls::Node(node) => write!(f, "ClientTls::Node({})", node.listener()),
            ClientTls::Config(_) => f.write_str("ClientTls::Config"),
        }
    }
}

/// A tower connector for tonic: plaintext, or TLS by [`ClientTls`].
#[derive(Clone)]
pub struct NodeConnector {
    tls: Option<ClientTls>,
    /// The node expected at the far end (checked against its certificate on TLS links).
    peer_node_id: Option<i32>,
}

pub type NodeClientIo = TokioIo<Either<TcpStream, Box<TlsStream<TcpStream>>>>;

impl NodeConnector {
    pub fn new(tls: Option<ClientTls>, peer_node_id: Option<i32>) -> NodeConnector {
        NodeConnector { tls, peer_node_id }
    }

    /// A lazily connecting channel to `address` (host:port) through this connector.
    pub fn channel(
        self,
        address: &str,
        connect_timeout: Duration,
    ) -> Result<Channel, tonic::transport::Error> {
        Ok(Self::endpoint(address, connect_timeout)?.connect_with_connector_lazy(self))
    }

    /// Connects to `address` now.
    pub async fn connect(
        self,
        address: &str,
        connect_timeout: Duration,
    ) -> Result<Channel, tonic::transport::Error> {
        Self::endpoint(address, connect_timeout)?
            .connect_with_connector(self)
            .await
    }

    fn endpoint(
        address: &str,
        connect_timeout: Duration,
    ) -> Result<Endpoint, tonic::transport::Error> {
        // The scheme only frames the URI: TLS, when used, is this connector's, below HTTP/2.
        Ok(Endpoint::from_shared(format!("http://{address}"))?.connect_timeout(connect_timeout))
    }

    async fn dial(self, uri: Uri) -> io::Result<NodeClientIo> {
        let invalid =
            |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {what}"));
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let Some(tls) = self.tls else {
            return Ok(TokioIo::new(Either::Left(tcp)));
        };
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| invalid(&format!("not a TLS server name: {e}")))?;
        let connector = match &tls {
            ClientTls::Node(node) => node.connector(),
            ClientTls::Config(config) => tokio_rustls::TlsConnector::from(Arc::clone(config)),
        };
        let stream = connector.connect(server_name, tcp).await?;
        if let (ClientTls::Node(node), Some(expected)) = (&tls, self.peer_node_id) {
            let peer = node
                .identify(stream.get_ref().1.peer_certificates())
                .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()))?;
            if peer.node_id != Some(expected) {
                shoal_metrics::record_internode_refusal("node_id_mismatch");
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{host}:{port} should be node {expected}, but its certificate ({}) names \
                         {}",
                        peer.principal,
                        peer.node_id
                            .map_or_else(|| "no node".to_owned(), |id| format!("node {id}"))
                    ),
                ));
            }
        }
        Ok(TokioIo::new(Either::Right(Box::new(stream))))
    }
}

impl Service<Uri> for NodeConnector {
    type Response = NodeClientIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<NodeClientIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().dial(uri))
    }
}
