//! Settings of one Kafka listener, named after Apache Kafka's broker configs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// Kafka's `socket.request.max.bytes` default (100 MiB).
pub const DEFAULT_SOCKET_REQUEST_MAX_BYTES: usize = 104_857_600;
/// Kafka's `max.connections` default is unlimited; this crate insists on a bound.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Kafka's `max.connections.per.ip` default is unlimited; Shoal bounds one address to a tenth
/// of `max.connections`, so a single peer (a leaking client, a scanner) cannot take every slot
/// and lock everyone else out, while a NAT gateway or a busy application host still has room.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1_000;
/// `queued.max.request.bytes`: Kafka's default is -1 (unbounded); Shoal insists on a bound.
/// 256 MiB holds two maximal (`socket.request.max.bytes`) frames and thousands of ordinary
/// produce requests at once.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 256 * 1024 * 1024;
/// `socket.request.read.timeout.ms` (Shoal's own): a frame must arrive within this once its
/// first byte has; like Kafka's `request.timeout.ms`, 30 s.
pub const DEFAULT_REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
/// `socket.response.write.timeout.ms` (Shoal's own): a response write that makes no progress
/// for this long means the client stopped reading; the connection is closed, which gives back
/// the memory its responses held. 30 s, like a client's `request.timeout.ms`, after which the
/// client has given up on them anyway.
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT_MS: u64 = 30_000;
/// Requests read but not yet answered per connection before reading pauses.
pub const DEFAULT_MAX_INFLIGHT_PER_CONNECTION: usize = 64;
/// Kafka's `connections.max.idle.ms` default (10 minutes).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 600_000;
/// How long a graceful shutdown waits for in-flight responses (Kafka's
/// `controlled.shutdown`-style drain has no single config; 30 s like `request.timeout.ms`).
pub const DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Listener name (Kafka `listeners`, e.g. `PLAINTEXT`, `INTERNAL`), passed to the handler.
    pub listener_name: String,
    pub bind: SocketAddr,
    /// `socket.request.max.bytes`: frames larger than this close the connection.
    pub socket_request_max_bytes: usize,
    /// `max.connections`: connections beyond this are accepted and closed at once.
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections from one source address beyond this are closed
    /// at once.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: per-address exceptions to `max_connections_per_ip`.
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
    /// `queued.max.request.bytes`: the request memory pool (see `MemoryPool`); used when the
    /// server is not given a pool shared with other listeners.
    pub queued_max_request_bytes: usize,
    /// `socket.request.read.timeout.ms`: a frame must arrive within this once started.
    pub request_read_timeout_ms: u64,
    /// `socket.response.write.timeout.ms`: a response write with no progress for this long
    /// closes the connection.
    pub response_write_timeout_ms: u64,
    /// Bounded pipeline depth: requests handed to the handler whose responses are not yet written.
    pub max_inflight_per_connection: usize,
    /// `connections.max.idle.ms`: a connection with no request and nothing in flight for this long is closed.
    pub idle_timeout_ms: u64,
    /// Upper bound on how long `KafkaServer::run` waits for connections to drain after shutdown.
    pub shutdown_drain_timeout_ms: u64,
}

impl ServerConfig {
    /// Kafka's defaults for a listener named `listener_name` bound to `bind`.
    pub fn new(listener_name: impl Into<String>, bind: SocketAddr) -> ServerConfig {
        ServerConfig {
            listener_name: listener_name.into(),
            bind,
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connections_per_ip_overrides: HashMap::new(),
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            request_read_timeout_ms: DEFAULT_REQUEST_READ_TIMEOUT_MS,
            response_write_timeout_ms: DEFAULT_RESPONSE_WRITE_TIMEOUT_MS,
            max_inflight_per_connection: DEFAULT_MAX_INFLIGHT_PER_CONNECTION,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            shutdown_drain_timeout_ms: DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
        }
    }
}

impl Default for ServerConfig {
    /// `PLAINTEXT://127.0.0.1:9092` with Kafka's defaults.
    fn default() -> ServerConfig {
        ServerConfig::new(
            "PLAINTEXT",
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9092)),
        )
    }
}
