//! The admin listener's connections, plain HTTP or TLS (`ADMIN:SSL`).
//!
//! With TLS each connection completes its handshake in a task of its own, within
//! `shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS`, so a client that stalls mid-handshake cannot hold up
//! the accept loop. Each connection carries an [`AdminPeer`]: whether the client presented a
//! certificate that chains to the listener's truststore, which lets it past the bearer-token
//! check (mutual TLS instead of a token).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use shoal_net::{LimitedIncoming, LimitedStream};
use shoal_tls::TlsListener;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::either::Either;

/// Handshaken connections waiting for the server; it takes them as fast as they come.
const HANDSHAKEN_QUEUE: usize = 16;

pub type AdminIo = Either<
    LimitedStream<TcpStream>,
    Box<tokio_rustls::server::TlsStream<LimitedStream<TcpStream>>>,
>;

/// Who is on the other end of one admin connection.
#[derive(Clone, Copy, Debug)]
pub struct AdminPeer {
    pub remote: SocketAddr,
    /// The client presented a certificate the TLS handshake verified.
    pub client_certificate: bool,
}

impl Connected<IncomingStream<'_, AdminListener>> for AdminPeer {
    fn connect_info(stream: IncomingStream<'_, AdminListener>) -> Self {
        *stream.remote_addr()
    }
}

/// The admin listener's accept loop for axum, through the connection limiter.
pub struct AdminListener {
    local: SocketAddr,
    accepted: Accepted,
}

enum Accepted {
    Plain(LimitedIncoming),
    Tls(mpsc::Receiver<(AdminIo, AdminPeer)>),
}

impl AdminListener {
    pub fn new(incoming: LimitedIncoming, tls: Option<Arc<TlsListener>>) -> io::Result<Self> {
        let local = incoming.local_addr()?;
        let accepted = match tls {
            None => Accepted::Plain(incoming),
            Some(tls) => {
                let (handshaken, rx) = mpsc::channel(HANDSHAKEN_QUEUE);
                tokio::spawn(accept_loop(incoming, tls, handshaken));
                Accepted::Tls(rx)
            }
        };
        Ok(AdminListener { local, accepted })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = AdminIo;
    type Addr = AdminPeer;

    async fn accept(&mut self) -> (AdminIo, AdminPeer) {
        match &mut self.accepted {
            Accepted::Plain(incoming) => {
                let (stream, remote) = incoming.accept_retrying().await;
                let peer = AdminPeer {
                    remote,
                    client_certificate: false,
                };
                (Either::Left(stream), peer)
            }
            Accepted::Tls(rx) => match rx.recv().await {
                Some(accepted) => accepted,
                // The accept loop ended (it only does when this listener is dropped).
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<AdminPeer> {
        Ok(AdminPeer {
            remote: self.local,
            client_certificate: false,
        })
    }
}

/// Accepts until the listener is dropped, handshaking each connection in a task.
async fn accept_loop(
    mut incoming: LimitedIncoming,
    tls: Arc<TlsListener>,
    handshaken: mpsc::Sender<(AdminIo, AdminPeer)>,
) {
    loop {
        let (stream, remote) = tokio::select! {
            () = handshaken.closed() => return,
            accepted = incoming.accept_retrying() => accepted,
        };
        let acceptor = tls.acceptor();
        let handshaken = handshaken.clone();
        let listener = tls.listener().to_owned();
        tokio::spawn(async move {
            let timeout = Duration::from_millis(shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS);
            let why = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let peer = AdminPeer {
                        remote,
                        client_certificate: stream.get_ref().1.peer_certificates().is_some(),
                    };
                    let _ = handshaken
                        .send((Either::Right(Box::new(stream)), peer))
                        .await;
                    return;
                }
                Ok(Err(e)) => format!("TLS handshake failed: {e}"),
                Err(_) => "TLS handshake timed out".to_owned(),
            };
            tracing::debug!(%listener, %remote, %why, "admin connection closed");
            shoal_metrics::record_tls_handshake_failure(&listener);
        });
    }
}
