//! Connection limits shared by every listener of a node: the Kafka listeners, the controller
//! and replication gRPC listeners and the admin HTTP listener.
//!
//! Why: a listener without a bound lets one peer exhaust the node's file descriptors (and the
//! memory each connection costs), and then nobody can connect — not clients, not the other
//! nodes. Each listener therefore admits at most `max_connections`, and at most
//! `max_connections_per_ip` from one source address (Kafka's `max.connections.per.ip`, with
//! per-address `max.connections.per.ip.overrides`), so a single peer cannot lock the others
//! out. A connection over a bound is accepted and closed at once (the kernel's backlog would
//! otherwise hold it), logged, and counted in `shoal_listener_connections_rejected_total`.
//!
//! [`ConnectionLimiter::try_admit`] hands out a [`ConnectionPermit`] that gives its slot back
//! when dropped. [`LimitedIncoming`] is an accept stream for tonic's `serve_with_incoming`
//! whose items ([`LimitedStream`]) carry their permit; the admin HTTP listener wraps the same
//! limiter for axum, and the Kafka listener calls `try_admit` itself.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

/// The controller gRPC listener's connection bound: the voters, every broker (a few channels
/// each) and operators' tools fit with a wide margin.
pub const CONTROLLER_MAX_CONNECTIONS: usize = 1_024;
/// The replication gRPC listener's connection bound: one or a few channels per follower broker.
pub const REPLICATION_MAX_CONNECTIONS: usize = 1_024;
/// The admin HTTP listener's connection bound: scrapers, probes and operators.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;
/// Pause after a failed `accept` (e.g. out of file descriptors) so an accept loop does not spin.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 50;

/// The bounds of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one source address at most (`max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// Per-address exceptions to `max_connections_per_ip`
    /// (`max.connections.per.ip.overrides`).
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    /// A bound on the total only (any one address may use all of it).
    pub fn total(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            max_connections_per_ip: max_connections,
            max_connections_per_ip_overrides: HashMap::new(),
        }
    }

    fn per_ip(&self, ip: IpAddr) -> usize {
        self.max_connections_per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

/// Parses Kafka's `max.connections.per.ip.overrides`: `host:count,host:count`. Shoal takes IP
/// addresses as hosts (IPv6 as `[::1]:count` or `::1:count`); a host name is refused, since
/// resolving it once at start-up would silently go stale.
pub fn parse_per_ip_overrides(spec: &str) -> Result<HashMap<IpAddr, usize>, String> {
    let mut overrides = HashMap::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("entry {entry:?} must be host:count"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host
            .parse()
            .map_err(|_| format!("entry {entry:?}: {host:?} is not an IP address"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("entry {entry:?}: {count:?} is not a non-negative count"))?;
        overrides.insert(ip, count);
    }
    Ok(overrides)
}

/// Which bound closed a connection on accept (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MaxConnections,
    MaxConnectionsPerIp,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::MaxConnections => "max_connections",
            Rejection::MaxConnectionsPerIp => "max_connections_per_ip",
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts one listener's open connections against its [`ConnectionLimits`].
pub struct ConnectionLimiter {
    listener: String,
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

impl ConnectionLimiter {
    /// `listener` names the listener in logs and in the metrics' `listener` label.
    pub fn new(listener: impl Into<String>, limits: ConnectionLimits) -> Arc<ConnectionLimiter> {
        let listener = listener.into();
        shoal_metrics::record_listener_max_connections(&listener, limits.max_connections);
        Arc::new(ConnectionLimiter {
            listener,
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn listener(&self) -> &str {
        &self.listener
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Open connections now.
    pub fn open_connections(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer` or says which bound it hits (logged and counted).
    pub fn try_admit(self: &Arc<Self>, peer: SocketAddr) -> Result<ConnectionPermit, Rejection> {
        let ip = peer.ip();
        let verdict = {
            let mut counts = self.lock();
            let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if counts.total >= self.limits.max_connections {
                Err(Rejection::MaxConnections)
            } else if from_ip >= self.limits.per_ip(ip) {
                Err(Rejection::MaxConnectionsPerIp)
            } else {
                counts.total += 1;
                counts.per_ip.insert(ip, from_ip + 1);
                Ok(())
            }
        };
        match verdict {
            Ok(()) => {
                shoal_metrics::record_listener_connection(&self.listener, true);
                Ok(ConnectionPermit {
                    limiter: Arc::clone(self),
                    ip,
                })
            }
            Err(rejection) => {
                // One line per rejection would let a flood fill the log; debug level after
                // the metric says how many.
                shoal_metrics::record_listener_rejection(&self.listener, rejection.label());
                match rejection {
                    Rejection::MaxConnections => warn!(listener = %self.listener, %peer,
                        max_connections = self.limits.max_connections,
                        "closing new connection: connection limit reached"),
                    Rejection::MaxConnectionsPerIp => debug!(listener = %self.listener, %peer,
                        max_connections_per_ip = self.limits.per_ip(ip),
                        "closing new connection: max.connections.per.ip reached"),
                }
                Err(rejection)
            }
        }
    }
}

/// One admitted connection's slot; dropping it gives the slot back.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        {
            let mut counts = self.limiter.lock();
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&self.ip);
                }
            }
        }
        shoal_metrics::record_listener_connection(&self.limiter.listener, false);
    }
}

/// An accepted stream that holds its listener slot for as long as it lives.
pub struct LimitedStream<S> {
    inner: S,
    _permit: ConnectionPermit,
}

impl<S> LimitedStream<S> {
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for LimitedStream<TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepts from `listener` through `limiter`, with TCP_NODELAY set on every admitted socket.
pub struct LimitedIncoming {
    listener: TcpListener,
    limiter: Arc<ConnectionLimiter>,
}

impl LimitedIncoming {
    pub fn new(listener: TcpListener, limiter: Arc<ConnectionLimiter>) -> LimitedIncoming {
        LimitedIncoming { listener, limiter }
    }

    pub fn limiter(&self) -> &Arc<ConnectionLimiter> {
        &self.limiter
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Polls for the next admitted connection; connections over a bound are closed here.
    pub fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(LimitedStream<TcpStream>, SocketAddr)>> {
        loop {
            let (stream, peer) = match self.listener.poll_accept(cx) {
                Poll::Ready(Ok(accepted)) => accepted,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let Ok(permit) = self.limiter.try_admit(peer) else {
                drop(stream);
                continue;
            };
            // Without TCP_NODELAY small responses wait for the peer's delayed ACK (~40 ms).
            if let Err(e) = stream.set_nodelay(true) {
                debug!(listener = %self.limiter.listener, %peer, error = %e, "could not set TCP_NODELAY");
            }
            return Poll::Ready(Ok((
                LimitedStream {
                    inner: stream,
                    _permit: permit,
                },
                peer,
            )));
        }
    }

    /// The next admitted connection.
    pub async fn accept(&mut self) -> io::Result<(LimitedStream<TcpStream>, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The next admitted connection; a failed accept (out of file descriptors, a connection
    /// reset before it was taken) is logged and retried after [`ACCEPT_ERROR_BACKOFF_MS`].
    pub async fn accept_retrying(&mut self) -> (LimitedStream<TcpStream>, SocketAddr) {
        loop {
            match self.accept().await {
                Ok(accepted) => return accepted,
                Err(e) => {
                    warn!(listener = %self.limiter.listener, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS))
                        .await;
                }
            }
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = io::Result<LimitedStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _peer)| stream)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40_000)
    }

    #[test]
    fn per_ip_bound_and_overrides() {
        let limits = ConnectionLimits {
            max_connections: 10,
            max_connections_per_ip: 2,
            max_connections_per_ip_overrides: parse_per_ip_overrides("127.0.0.2:3, [::1]:0")
                .unwrap(),
        };
        let limiter = ConnectionLimiter::new("test", limits);
        let a: Vec<_> = (0..2)
            .map(|_| limiter.try_admit(peer("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(
            limiter.try_admit(peer("127.0.0.1")).err(),
            Some(Rejection::MaxConnectionsPerIp)
        );
        let b: Vec<_> = (0..3)
            .map(|_| limiter.try_admit(peer("127.0.0.2")).unwrap())
            .collect();
        assert!(limiter.try_admit(peer("127.0.0.2")).is_err());
        assert!(limiter.try_admit(peer("::1")).is_err());
        assert_eq!(limiter.open_connections(), 5);
        drop(a);
        assert!(limiter.try_admit(peer("127.0.0.1")).is_ok());
        drop(b);
        assert_eq!(limiter.open_connections(), 0);
    }

    #[test]
    fn total_bound_wins() {
        let limiter = ConnectionLimiter::new("test", ConnectionLimits::total(1));
        let held = limiter.try_admit(peer("127.0.0.1")).unwrap();
        assert_eq!(
            limiter.try_admit(peer("127.0.0.2")).err(),
            Some(Rejection::MaxConnections)
        );
        drop(held);
        assert!(limiter.try_admit(peer("127.0.0.2")).is_ok());
    }

    #[test]
    fn overrides_parse_kafka_format() {
        let parsed = parse_per_ip_overrides("10.0.0.1:5,::1:7, [fe80::1]:0 ,").unwrap();
        assert_eq!(parsed[&"10.0.0.1".parse::<IpAddr>().unwrap()], 5);
        assert_eq!(parsed[&"::1".parse::<IpAddr>().unwrap()], 7);
        assert_eq!(parsed[&"fe80::1".parse::<IpAddr>().unwrap()], 0);
        assert!(parse_per_ip_overrides("").unwrap().is_empty());
        assert!(parse_per_ip_overrides("host.example:5").is_err());
        assert!(parse_per_ip_overrides("10.0.0.1").is_err());
        assert!(parse_per_ip_overrides("10.0.0.1:-1").is_err());
    }

    #[tokio::test]
    async fn incoming_closes_connections_over_the_bound() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = LimitedIncoming::new(
            listener,
            ConnectionLimiter::new("test", ConnectionLimits::total(1)),
        );
        let _first_client = TcpStream::connect(addr).await.unwrap();
        let (first, _) = incoming.accept().await.unwrap();
        let mut second_client = TcpStream::connect(addr).await.unwrap();
        let accepting = tokio::spawn(async move {
            let next = incoming.accept().await;
            (incoming, next.map(|_| ()))
        });
        // The second connection is closed by the server (EOF), not served.
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            second_client.read(&mut buf),
        )
        .await
        .expect("over-limit connection was not closed");
        assert!(matches!(read, Ok(0) | Err(_)));
        // Once the first is gone, a new one is admitted.
        drop(first);
        let _third_client = TcpStream::connect(addr).await.unwrap();
        let (_incoming, third) =
            tokio::time::timeout(std::time::Duration::from_secs(10), accepting)
                .await
                .expect("third connection was not admitted")
                .unwrap();
        assert!(third.is_ok());
    }
}
