//! The gRPC links between nodes: the controller quorum (Raft, forwarded requests, metadata
//! followers) and replication.
//!
//! Kafka leaves these doors to the operator; Shoal closes them. When a node listener's security
//! protocol is SSL (`CONTROLLER:SSL`, `REPLICATION:SSL` in `listener.security.protocol.map`),
//! both ends present certificates of the cluster CA (mutual TLS), and each request that speaks
//! for a node — a vote, appended entries, a broker registration, a replica fetch — must come
//! over a connection whose certificate names that node ([`identity`]). A process without such a
//! certificate cannot take part, and a node cannot pose as another. Without TLS the links are
//! plaintext and the claims are only checked against the cluster's membership.
//!
//! [`NodeTls`] holds a listener's certificates (reloaded when the files change),
//! [`NodeIncoming`] turns accepted connections into tonic's I/O with the peer's identity
//! attached, and [`NodeConnector`] dials a peer the same way from the client side.

pub mod connector;
pub mod identity;
pub mod incoming;
#[cfg(feature = "test-certs")]
pub mod test_certs;
pub mod tls;

pub use connector::{ClientTls, NodeConnector};
pub use identity::{NodePeer, PeerCertificate, check_claim, error_chain, node_id_of};
pub use incoming::{NodeIncoming, NodeStream};
pub use tls::NodeTls;
/// The channel type `NodeConnector` makes, for callers that name it.
pub use tonic::transport::Channel;
