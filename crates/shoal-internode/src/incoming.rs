//! Accepted node connections as tonic's server I/O, each with its [`NodePeer`].
//!
//! On a TLS listener the handshake runs in a task of its own per connection, bounded by
//! `shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS`: a peer that stalls mid-handshake must not hold up
//! the accept loop (it holds only its connection slot, which the listener's limiter bounds).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use shoal_net::{LimitedIncoming, LimitedStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::either::Either;
use tonic::transport::server::Connected;

use crate::identity::NodePeer;
use crate::tls::NodeTls;

/// Handshaken connections waiting for the server to take them. Small: the server takes them
/// as fast as they come; handshakes beyond it wait in their tasks.
const HANDSHAKEN_QUEUE: usize = 16;

type Plain = LimitedStream<TcpStream>;

type Io = Either<Plain, Box<tokio_rustls::server::TlsStream<Plain>>>;

/// One accepted node connection.
pub struct NodeStream {
    io: Io,
    peer: NodePeer,
}

impl Connected for NodeStream {
    type ConnectInfo = NodePeer;

    fn connect_info(&self) -> NodePeer {
        self.peer.clone()
    }
}

/// The accepted connections of a node listener.
pub struct NodeIncoming {
    inner: Pin<Box<dyn Stream<Item = io::Result<NodeStream>> + Send>>,
}

impl NodeIncoming {
    /// Plaintext when `tls` is `None`; else every connection completes a mutual TLS handshake
    /// first (the ones that fail are closed, logged and counted).
    pub fn new(incoming: LimitedIncoming, tls: Option<Arc<NodeTls>>) -> NodeIncoming {
        let inner = match tls {
            None => incoming
                .map(|accepted| {
                    accepted.map(|stream| {
                        let peer = NodePeer {
                            remote_addr: stream.connect_info().remote_addr(),
                            certificate: None,
                        };
                        NodeStream {
                            io: Either::Left(stream),
                            peer,
                        }
                    })
                })
                .boxed(),
            Some(tls) => {
                let (handshaken, rx) = mpsc::channel(HANDSHAKEN_QUEUE);
                tokio::spawn(accept_loop(incoming, tls, handshaken));
                ReceiverStream::new(rx).boxed()
            }
        };
        NodeIncoming { inner }
    }
}

impl Stream for NodeIncoming {
    type Item = io::Result<NodeStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Accepts until the server drops its end, handshaking each connection in a task.
async fn accept_loop(
    mut incoming: LimitedIncoming,
    tls: Arc<NodeTls>,
    handshaken: mpsc::Sender<io::Result<NodeStream>>,
) {
    loop {
        let accepted = tokio::select! {
            () = handshaken.closed() => return,
            accepted = incoming.next() => accepted,
        };
        match accepted {
            None => return,
            Some(Err(e)) => {
                if handshaken.send(Err(e)).await.is_err() {
                    return;
                }
            }
            Some(Ok(stream)) => {
                let tls = Arc::clone(&tls);
                let handshaken = handshaken.clone();
                tokio::spawn(async move {
                    if let Some(stream) = handshake(stream, &tls).await {
                        let _ = handshaken.send(Ok(stream)).await;
                    }
                });
            }
        }
    }
}

async fn handshake(stream: Plain, tls: &NodeTls) -> Option<NodeStream> {
    let remote_addr = stream.connect_info().remote_addr();
    let timeout = Duration::from_millis(shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS);
    let refused = |reason: String| {
        tracing::warn!(listener = tls.listener(), ?remote_addr, %reason,
            "refused a node connection");
        shoal_metrics::record_tls_handshake_failure(tls.listener());
    };
    let stream = match tokio::time::timeout(timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            refused(format!("TLS handshake failed: {e}"));
            return None;
        }
        Err(_) => {
            refused(format!(
                "TLS handshake did not finish within {} ms",
                shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS
            ));
            return None;
        }
    };
    let certificate = match tls.identify(stream.get_ref().1.peer_certificates()) {
        Ok(certificate) => certificate,
        Err(e) => {
            refused(e.to_string());
            shoal_metrics::record_internode_refusal("unmapped_certificate");
            return None;
        }
    };
    tracing::debug!(listener = tls.listener(), ?remote_addr, principal = %certificate.principal,
        node_id = ?certificate.node_id, "node connection authenticated");
    Some(NodeStream {
        io: Either::Right(Box::new(stream)),
        peer: NodePeer {
            remote_addr,
            certificate: Some(certificate),
        },
    })
}

impl AsyncRead for NodeStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
