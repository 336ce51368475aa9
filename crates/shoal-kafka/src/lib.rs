//! Shoal's Kafka wire-protocol front: TCP listener, framing, request headers, ApiVersions
//! negotiation, and dispatch of decoded requests to a [`Handler`] (implemented by the broker,
//! which knows about topics and partitions; this crate does not).
//!
//! Why it is shaped this way:
//! - **Ordered pipelining.** Clients send many requests per connection without waiting and
//!   match replies by correlation id, but Kafka answers each connection in request order and
//!   clients depend on it (kafka-clients.md §1). The handler sees requests one at a time, in
//!   order; slow replies are futures that overlap later requests; responses leave in order
//!   ([`connection`]).
//! - **Bad input never crashes the node** (Architecture rule 7). Frames are bounded by
//!   `socket.request.max.bytes` before any allocation ([`frame`]); every array count and
//!   string/bytes length in a body is checked against the frame before `kafka-protocol`
//!   decodes it ([`length_guard`]), because its decoder reserves capacity straight from the wire;
//!   anything unparseable closes the connection with a warning.
//! - **ApiVersions is answered here** ([`api_versions`]), including the v0-layout
//!   UNSUPPORTED_VERSION reply to versions above 4, since it is about the wire, not the data.
//!
//! Limits: one frame ≤ `socket_request_max_bytes`; request bytes being read or handled across
//! every connection ≤ `queued_max_request_bytes` ([`MemoryPool`]: a connection whose frame
//! the pool cannot grant pauses reading; a frame larger than the pool closes it); a frame
//! must arrive within `request_read_timeout_ms` of its first byte; requests read but
//! unanswered per connection ≤ `max_inflight_per_connection` (reading pauses); connections ≤
//! `max_connections`, and ≤ `max_connections_per_ip` from one address (extra ones are closed
//! at once, `shoal-net`); idle connections close after `idle_timeout_ms`; shutdown drains for
//! at most `shutdown_drain_timeout_ms`.

pub mod api_versions;
mod codec;
mod config;
mod connection;
mod error;
mod features;
mod frame;
mod handler;
mod header;
mod in_flight;
pub mod length_guard;
mod memory_pool;
mod mute;
mod request;
mod request_metrics;
mod response;
pub mod sasl;
mod schema;
mod server;
mod supported_apis;
mod unsupported;

pub use api_versions::UNSUPPORTED_VERSION;
pub use config::{
    DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_INFLIGHT_PER_CONNECTION, DEFAULT_QUEUED_MAX_REQUEST_BYTES,
    DEFAULT_REQUEST_READ_TIMEOUT_MS, DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
    DEFAULT_SOCKET_REQUEST_MAX_BYTES, ServerConfig,
};
pub use error::{EncodeError, FrameError, RequestError};
pub use features::{FeatureLevels, SharedFeatures};
pub use handler::{
    DeferredHeldResponse, DeferredResponse, Handler, HeldResponse, Reply, RequestContext,
};
pub use memory_pool::{MemoryPool, PoolKind, Reservation};
pub use mute::ConnectionMute;
pub use request::route_any_frame;
pub use request_metrics::{api_name, error_name, error_names};
pub use server::KafkaServer;
pub use supported_apis::{API_VERSIONS_MAX_VERSION, ApiRange, SupportedApis};
