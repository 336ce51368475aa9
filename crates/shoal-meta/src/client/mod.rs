//! What a broker uses to talk to the metadata quorum, whether or not its own node is a voter.
//!
//! **Why a client at all.** In KRaft a broker never touches Raft: it sends requests to the
//! active controller and follows the committed metadata log. Shoal does the same, so one broker
//! code path works on a combined node (controller + broker in one process) and on a broker-only
//! node: [`ControllerClient`] routes each request to the active controller (running it in
//! process when that is this node), [`MetadataFollower`] keeps a broker-only node's image by
//! fetching the committed log from a voter, and [`BrokerLifecycle`] registers the broker,
//! heartbeats, and shuts it down in a controlled way.
//!
//! Files: `bootstrap_servers` (finding the voters from controller.quorum.bootstrap.servers),
//! `controller_client` (routing), `forward` (the gRPC client of `ControllerService`),
//! `known_leader` (who leads, as far as a non-voter knows), `metadata_follower` (the
//! `MetadataLog` client), `broker_lifecycle` (registration, heartbeats, fencing state), `controller_lease` (how long
//! the broker may trust its own view of what it leads).

pub mod bootstrap_servers;
pub mod broker_lifecycle;
pub mod controller_client;
pub mod controller_lease;
pub mod forward;
pub mod known_leader;
pub mod metadata_follower;

pub use bootstrap_servers::{DiscoveredQuorum, discover_quorum, parse_bootstrap_servers};
pub use broker_lifecycle::{BrokerLifecycle, BrokerLifecycleConfig, ReplicaReports};
pub use controller_client::ControllerClient;
pub use controller_lease::{ControllerLease, LeaseTerms};
pub use known_leader::KnownLeader;
pub use metadata_follower::{MetadataFollower, MetadataFollowerConfig};
