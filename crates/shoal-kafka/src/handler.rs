//! The seam between the wire front and the broker: one decoded request in, one reply out.
//!
//! Ordering contract: `handle` is called strictly in request order per connection, and the
//! next request of that connection is not passed in until the previous call returns. Work
//! whose order matters (log appends, offset assignment) therefore happens inside `handle`.
//! Waiting (acks=all replication, Fetch long polls) goes into [`Reply::Deferred`], which runs
//! concurrently with later requests; responses are still written in request order.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::memory_pool::Reservation;

/// Who sent a request and how it was framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The header's client id; `None` when the client sent a null string.
    pub client_id: Option<String>,
    pub peer: SocketAddr,
    /// Name of the listener the request arrived on (e.g. `PLAINTEXT`).
    pub listener: String,
    /// Unique per server run, for correlating logs.
    pub connection_id: u64,
    /// Who the connection authenticated as (`User:ANONYMOUS` on PLAINTEXT, or on TLS without a
    /// client certificate; the mapped certificate subject otherwise).
    pub principal: std::sync::Arc<shoal_acl::Principal>,
    /// The connection's mute, for a handler that throttles the client (client quotas).
    pub mute: crate::ConnectionMute,
}

/// A future answer, e.g. a Produce waiting for the ISR or a Fetch long poll.
pub type DeferredResponse = Pin<Box<dyn Future<Output = ResponseKind> + Send>>;

/// A response and the pool memory its bytes were counted against: the connection holds the
/// reservation until the encoded response has been written to the socket, so a client that
/// stops reading keeps its responses' memory counted (see `fetch.response.pool.bytes`).
#[derive(Debug)]
pub struct HeldResponse {
    pub response: ResponseKind,
    pub memory: Option<Reservation>,
}

/// A future [`HeldResponse`].
pub type DeferredHeldResponse = Pin<Box<dyn Future<Output = HeldResponse> + Send>>;

/// What the handler answers.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per request; boxing Ready would add an allocation per response"
)]
pub enum Reply {
    /// Respond now.
    Ready(ResponseKind),
    /// Respond when the future completes; later requests keep flowing meanwhile.
    Deferred(DeferredResponse),
    /// No response bytes at all (Produce with acks=0); the order of the others is kept.
    NoResponse,
    /// Respond when the future completes, holding its memory reservation until written.
    Held(DeferredHeldResponse),
}

impl Reply {
    /// Wraps a future as [`Reply::Deferred`].
    pub fn deferred(response: impl Future<Output = ResponseKind> + Send + 'static) -> Reply {
        Reply::Deferred(Box::pin(response))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ready(response) => f.debug_tuple("Ready").field(response).finish(),
            Reply::Deferred(_) => f.write_str("Deferred(..)"),
            Reply::NoResponse => f.write_str("NoResponse"),
            Reply::Held(_) => f.write_str("Held(..)"),
        }
    }
}

/// Implemented by the broker. The response to a request must be the `ResponseKind` variant
/// of the same API; it is encoded at the request's version, so fields that version lacks must
/// keep their defaults (otherwise encoding fails and the connection is closed).
pub trait Handler: Send + Sync + 'static {
    /// Called in request order per connection; see the module docs.
    fn handle(
        &self,
        ctx: RequestContext,
        request: RequestKind,
    ) -> impl Future<Output = Reply> + Send;
}
