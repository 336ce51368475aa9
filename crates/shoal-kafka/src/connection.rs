//! One client connection: a reader that hands requests to the handler strictly in order, and a
//! writer that writes their responses in that same order.
//!
//! Kafka clients pipeline (librdkafka up to 1,000,000 in flight, kafka-python 5) and match
//! responses by correlation id, yet rely on Kafka answering each connection in request order.
//! So the reader calls `Handler::handle` one request at a time and pushes the reply into a
//! `FuturesOrdered`; deferred replies (acks=all, long polls) overlap, and the writer takes
//! them out in order. Both halves run in the same task (no spawn per connection half).
//!
//! Limits: at most `max_inflight_per_connection` requests are read and not yet answered —
//! the reader stops reading the socket while that many are outstanding (backpressure; a client
//! that does not read its responses eventually stops being read). The write buffer is reused
//! and shrunk back after a large response. Responses are flushed only when nothing else is
//! ready, so a burst of pipelined replies costs one write syscall.
//!
//! Across connections, request bytes are bounded by the listener's [`MemoryPool`]
//! (`queued.max.request.bytes`): a frame's reservation is held until the handler has taken the
//! request, and a frame that does not arrive within `socket.request.read.timeout.ms` of its
//! first byte closes the connection ([`crate::frame`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::FutureExt;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, error, warn};

use crate::config::ServerConfig;

/// The user of a connection that proved nothing (Kafka's `User:ANONYMOUS`).
const ANONYMOUS_USER: &str = "ANONYMOUS";
use crate::error::FrameError;
use crate::frame::{Frame, FrameLimits, FrameReader};
use crate::handler::{Handler, Reply, RequestContext};
use crate::in_flight::{Completed, InFlight};
use crate::memory_pool::{MemoryPool, Reservation};
use crate::request::{Routed, route_request};
use crate::request_metrics;
use crate::response::encode_response_frame;
use crate::supported_apis::SupportedApis;

/// Write buffer kept per connection between bursts.
const WRITE_BUFFER_INITIAL_BYTES: usize = 64 * 1024;
/// A buffer grown beyond this by a large response is dropped after the flush.
const WRITE_BUFFER_RETAIN_BYTES: usize = 1024 * 1024;
/// Flush early once this much is buffered, even if more responses are ready.
const WRITE_FLUSH_THRESHOLD_BYTES: usize = 256 * 1024;

/// What every connection of one listener shares.
pub(crate) struct ListenerState<H> {
    pub handler: Arc<H>,
    pub supported: SupportedApis,
    pub config: ServerConfig,
    /// `queued.max.request.bytes`, shared by every connection (and maybe other listeners).
    pub pool: Arc<MemoryPool>,
    /// Set on an SSL listener: every connection starts with a TLS handshake.
    pub tls: Option<Arc<shoal_tls::TlsListener>>,
    /// Set on a SASL listener: every connection authenticates before its first request.
    pub sasl: Option<Arc<crate::sasl::SaslConfig>>,
}

/// Identity of one connection, for logs and request contexts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionId {
    pub id: u64,
    pub peer: SocketAddr,
}

/// Why the reading half stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    PeerClosed,
    Shutdown,
    IdleTimeout,
    ReadTimeout,
    BadInput,
    WriterGone,
    /// SASL authentication failed, or a request broke the SASL rules.
    Unauthenticated,
}

/// Serves `stream` until the peer closes, bad input arrives, the connection idles out, or
/// shutdown is signalled; requests already read are answered before the socket is closed.
pub(crate) async fn serve_connection<H: Handler>(
    stream: TcpStream,
    connection: ConnectionId,
    state: Arc<ListenerState<H>>,
    shutdown: watch::Receiver<bool>,
) {
    let ConnectionId { id, peer } = connection;
    debug!(%peer, connection_id = id, listener = %state.config.listener_name, "connection opened");
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, connection_id = id, error = %e, "could not set TCP_NODELAY");
    }
    match state.tls.as_ref().map(|tls| tls.acceptor()) {
        None => {
            let (read_half, write_half) = stream.into_split();
            let principal = Arc::new(shoal_acl::Principal::user(ANONYMOUS_USER));
            serve_halves(
                read_half, write_half, connection, state, shutdown, principal,
            )
            .await;
        }
        Some(acceptor) => {
            let timeout = Duration::from_millis(shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS);
            let listener = &state.config.listener_name;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let principal = match state
                        .tls
                        .as_ref()
                        .map(|listener| listener.principal(tls.get_ref().1.peer_certificates()))
                    {
                        Some(Ok(principal)) => match shoal_acl::Principal::parse(&principal) {
                            Ok(principal) => Arc::new(principal),
                            Err(e) => {
                                shoal_metrics::record_tls_handshake_failure(listener);
                                warn!(%peer, connection_id = id, %listener, error = %e,
                                    "closing connection: the certificate's principal is unusable");
                                return;
                            }
                        },
                        Some(Err(e)) => {
                            shoal_metrics::record_tls_handshake_failure(listener);
                            warn!(%peer, connection_id = id, %listener, error = %e,
                                "closing connection: the client certificate maps to no principal");
                            return;
                        }
                        None => Arc::new(shoal_acl::Principal::user(ANONYMOUS_USER)),
                    };
                    debug!(%peer, connection_id = id, %listener, %principal, "TLS connection authenticated");
                    let (read_half, write_half) = tokio::io::split(tls);
                    serve_halves(
                        read_half, write_half, connection, state, shutdown, principal,
                    )
                    .await;
                }
                Ok(Err(e)) => {
                    shoal_metrics::record_tls_handshake_failure(listener);
                    warn!(%peer, connection_id = id, %listener, error = %e,
                        "closing connection: TLS handshake failed");
                }
                Err(_elapsed) => {
                    shoal_metrics::record_tls_handshake_failure(listener);
                    warn!(%peer, connection_id = id, %listener,
                        timeout_ms = shoal_tls::TLS_HANDSHAKE_TIMEOUT_MS,
                        "closing connection: TLS handshake did not finish in time");
                }
            }
        }
    }
}

/// Serves one connection's requests over its two halves (plain TCP or TLS).
async fn serve_halves<H: Handler, R, W>(
    read_half: R,
    write_half: W,
    connection: ConnectionId,
    state: Arc<ListenerState<H>>,
    shutdown: watch::Receiver<bool>,
    principal: Arc<shoal_acl::Principal>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let ConnectionId { id, peer } = connection;
    let max_inflight = state.config.max_inflight_per_connection;
    assert!(
        max_inflight > 0,
        "max_inflight_per_connection must be positive"
    );
    let (in_flight_tx, in_flight_rx) = mpsc::channel(max_inflight);
    let permits = Arc::new(Semaphore::new(max_inflight));

    let reader = read_requests(
        read_half,
        in_flight_tx,
        permits,
        connection,
        &state,
        shutdown,
        principal,
    );
    let write_timeout = Duration::from_millis(state.config.response_write_timeout_ms);
    let writer = write_responses(write_half, in_flight_rx, connection, write_timeout);
    tokio::pin!(reader, writer);
    let (read_end, writer_ok) = tokio::select! {
        read_end = &mut reader => (read_end, (&mut writer).await),
        writer_ok = &mut writer => (ReadEnd::WriterGone, writer_ok),
    };
    debug!(%peer, connection_id = id, ?read_end, writer_ok, "connection closed");
}

async fn read_requests<H: Handler, R: AsyncRead + Unpin>(
    read_half: R,
    in_flight_tx: mpsc::Sender<InFlight>,
    permits: Arc<Semaphore>,
    connection: ConnectionId,
    state: &ListenerState<H>,
    mut shutdown: watch::Receiver<bool>,
    principal: Arc<shoal_acl::Principal>,
) -> ReadEnd {
    let ConnectionId { id, peer } = connection;
    let config = &state.config;
    let mut principal = principal;
    let mut sasl = state.sasl.clone().map(crate::sasl::SaslSession::new);
    let mut frames = FrameReader::new(
        read_half,
        FrameLimits {
            max_frame_bytes: config.socket_request_max_bytes,
            pool: Arc::clone(&state.pool),
            read_timeout: Duration::from_millis(config.request_read_timeout_ms),
        },
    );
    let idle_timeout = Duration::from_millis(config.idle_timeout_ms);
    let mute = crate::ConnectionMute::default();
    loop {
        // A throttled client (client quotas): no read until its throttle time has passed.
        if let Some(muted) = mute.remaining() {
            tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => return ReadEnd::Shutdown,
                () = tokio::time::sleep(muted) => {}
            }
        }
        // Backpressure: no socket read while the pipeline is full.
        let permit = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => return ReadEnd::Shutdown,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => return ReadEnd::WriterGone,
            },
        };
        let frame = loop {
            tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => return ReadEnd::Shutdown,
                read = tokio::time::timeout(idle_timeout, frames.read_frame()) => match read {
                    Ok(Ok(Some(frame))) => break frame,
                    Ok(Ok(None)) => return ReadEnd::PeerClosed,
                    // A peer that vanishes (reset, or mid-frame) is not bad input.
                    Ok(Err(e @ (FrameError::Io(_) | FrameError::TruncatedFrame { .. }))) => {
                        debug!(%peer, connection_id = id, error = %e, "peer went away");
                        return ReadEnd::PeerClosed;
                    }
                    Ok(Err(e @ FrameError::ReadTimeout { .. })) => {
                        shoal_metrics::record_frame_refused("read_timeout");
                        warn!(%peer, connection_id = id, error = %e, "closing connection: frame too slow");
                        return ReadEnd::ReadTimeout;
                    }
                    Ok(Err(e)) => {
                        match &e {
                            FrameError::TooLarge { .. } => shoal_metrics::record_frame_refused("too_large"),
                            FrameError::LargerThanPool { .. } => shoal_metrics::record_frame_refused("larger_than_pool"),
                            _ => {}
                        }
                        warn!(%peer, connection_id = id, error = %e, "closing connection: bad frame");
                        return ReadEnd::BadInput;
                    }
                    // read_frame is cancel-safe, so an idle tick loses nothing.
                    Err(_elapsed) => {
                        let nothing_in_flight = permits.available_permits() + 1 == config.max_inflight_per_connection;
                        if nothing_in_flight && frames.buffered_bytes() == 0 {
                            debug!(%peer, connection_id = id, idle_timeout_ms = config.idle_timeout_ms,
                                "closing idle connection (connections.max.idle.ms)");
                            return ReadEnd::IdleTimeout;
                        }
                    }
                },
            }
        };
        let Frame {
            payload,
            reservation,
        } = frame;
        let in_flight = match route_request(&state.supported, payload) {
            Ok(Routed::Local { slot, response }) => {
                InFlight::new(slot, Reply::Ready(response), permit)
            }
            Ok(Routed::Dispatch {
                slot,
                client_id,
                request,
            }) => {
                if let Some(session) = sasl.as_mut() {
                    use crate::sasl::SaslStep;
                    match session.step(&request, slot.body_version, std::time::Instant::now()) {
                        SaslStep::Pass => {}
                        SaslStep::Reply(response) => {
                            if let Some(authenticated) = session.principal() {
                                if *authenticated != *principal {
                                    debug!(%peer, connection_id = id, principal = %authenticated, "SASL authenticated");
                                }
                                principal = authenticated;
                            }
                            if in_flight_tx
                                .send(InFlight::new(slot, Reply::Ready(response), permit))
                                .await
                                .is_err()
                            {
                                return ReadEnd::WriterGone;
                            }
                            continue;
                        }
                        SaslStep::Fail {
                            response,
                            delay,
                            why,
                        } => {
                            warn!(%peer, connection_id = id, %why, "SASL authentication failed; closing the connection");
                            // Kafka's connection.failed.authentication.delay.ms: no fast retries.
                            tokio::time::sleep(delay).await;
                            let _ = in_flight_tx
                                .send(InFlight::new(slot, Reply::Ready(response), permit))
                                .await;
                            return ReadEnd::Unauthenticated;
                        }
                        SaslStep::Close(why) => {
                            warn!(%peer, connection_id = id, api = ?slot.api_key, %why, "closing connection");
                            return ReadEnd::Unauthenticated;
                        }
                    }
                }
                let ctx = RequestContext {
                    api_key: slot.api_key,
                    api_version: slot.body_version,
                    correlation_id: slot.correlation_id,
                    client_id: client_id.map(|c| c.as_str().to_owned()),
                    peer,
                    listener: config.listener_name.clone(),
                    connection_id: id,
                    principal: Arc::clone(&principal),
                    mute: mute.clone(),
                };
                let reply = state.handler.handle(ctx, request).await;
                // The handler has taken the request (as Kafka releases the buffer after
                // KafkaApis.handle): its bytes no longer count against the pool.
                drop(reservation);
                InFlight::new(slot, reply, permit)
            }
            Err(e) => {
                warn!(%peer, connection_id = id, error = %e, "closing connection: bad request");
                return ReadEnd::BadInput;
            }
        };
        if in_flight_tx.send(in_flight).await.is_err() {
            return ReadEnd::WriterGone;
        }
    }
}

/// Resolves once shutdown is signalled (or the server is gone).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: treat as shutdown too.
    let _ = shutdown.wait_for(|requested| *requested).await;
}

/// Writes responses in request order until the reader is done and every reply is written.
/// Returns false if the connection had to be cut short (write or encode failure).
async fn write_responses<W: AsyncWrite + Unpin>(
    write_half: W,
    mut in_flight_rx: mpsc::Receiver<InFlight>,
    connection: ConnectionId,
    write_timeout: Duration,
) -> bool {
    let ConnectionId { id, peer } = connection;
    let mut queue: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut outbox = Outbox {
        write_half,
        out: BytesMut::with_capacity(WRITE_BUFFER_INITIAL_BYTES),
        held: Vec::new(),
        connection,
        write_timeout,
    };
    let mut reader_open = true;
    loop {
        // Take everything that is ready now, then flush once.
        loop {
            let mut progressed = false;
            while reader_open {
                match in_flight_rx.try_recv() {
                    Ok(in_flight) => {
                        queue.push_back(in_flight);
                        progressed = true;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => reader_open = false,
                }
            }
            if let Some(Some(completed)) = queue.next().now_or_never() {
                if !outbox.append(completed) {
                    outbox.flush().await;
                    return false;
                }
                progressed = true;
                if outbox.out.len() >= WRITE_FLUSH_THRESHOLD_BYTES && !outbox.flush().await {
                    return false;
                }
            }
            if !progressed {
                break;
            }
        }
        if !outbox.out.is_empty() && !outbox.flush().await {
            return false;
        }
        if !reader_open && queue.is_empty() {
            if let Err(e) = outbox.write_half.shutdown().await {
                debug!(%peer, connection_id = id, error = %e, "socket shutdown failed");
            }
            return true;
        }
        tokio::select! {
            Some(completed) = queue.next(), if !queue.is_empty() => {
                if !outbox.append(completed) {
                    outbox.flush().await;
                    return false;
                }
            }
            received = in_flight_rx.recv(), if reader_open => match received {
                Some(in_flight) => queue.push_back(in_flight),
                None => reader_open = false,
            },
            else => {}
        }
    }
}

/// Encoded responses waiting to be written, and the pool memory they hold until then.
struct Outbox<W> {
    write_half: W,
    out: BytesMut,
    /// Pool memory of the responses in `out`: given back once they are written.
    held: Vec<Reservation>,
    connection: ConnectionId,
    write_timeout: Duration,
}

impl<W: AsyncWrite + Unpin> Outbox<W> {
    /// Encodes one completed response; false on an encode failure (already logged).
    fn append(&mut self, completed: Completed) -> bool {
        let Completed {
            slot,
            received,
            response,
            permit,
            memory,
        } = completed;
        self.held.extend(memory);
        let Some(response) = response else {
            request_metrics::record(slot.api_key, received, None);
            return true;
        };
        let result = encode_response_frame(&mut self.out, &slot, &response);
        drop(permit);
        request_metrics::record(slot.api_key, received, Some(&response));
        match result {
            Ok(()) => true,
            Err(e) => {
                error!(peer = %self.connection.peer, connection_id = self.connection.id,
                    correlation_id = slot.correlation_id, error = %e,
                    "closing connection: response does not encode");
                false
            }
        }
    }

    /// Writes and clears the buffer, then gives back the memory its responses held; false if
    /// the peer is gone or made no progress for `write_timeout`.
    async fn flush(&mut self) -> bool {
        let connection = self.connection;
        let write_timeout = self.write_timeout;
        if self.out.is_empty() {
            self.held.clear();
            return true;
        }
        let mut written = 0;
        while written < self.out.len() {
            let write = self.write_half.write(&self.out[written..]);
            match tokio::time::timeout(write_timeout, write).await {
                Ok(Ok(0)) => {
                    debug!(peer = %connection.peer, connection_id = connection.id, "peer stopped accepting writes");
                    return false;
                }
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) => {
                    debug!(peer = %connection.peer, connection_id = connection.id, error = %e, "write failed");
                    return false;
                }
                Err(_elapsed) => {
                    write_stalled(connection, self.out.len() - written, write_timeout);
                    return false;
                }
            }
        }
        // A TLS stream holds encrypted bytes until flushed (a no-op on plain TCP).
        match tokio::time::timeout(write_timeout, self.write_half.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(peer = %connection.peer, connection_id = connection.id, error = %e, "flush failed");
                return false;
            }
            Err(_elapsed) => {
                write_stalled(connection, 0, write_timeout);
                return false;
            }
        }
        if self.out.capacity() > WRITE_BUFFER_RETAIN_BYTES {
            self.out = BytesMut::with_capacity(WRITE_BUFFER_INITIAL_BYTES);
        } else {
            self.out.clear();
        }
        self.held.clear();
        true
    }
}

/// Logs and counts a connection closed because its writes made no progress.
fn write_stalled(connection: ConnectionId, unwritten_bytes: usize, write_timeout: Duration) {
    shoal_metrics::record_frame_refused("write_timeout");
    warn!(peer = %connection.peer, connection_id = connection.id, unwritten_bytes,
        write_timeout_ms = u64::try_from(write_timeout.as_millis()).unwrap_or(u64::MAX),
        "closing connection: the client stopped reading responses (socket.response.write.timeout.ms)");
}
