//! Shoal's cluster metadata, KRaft-style.
//!
//! **Why Raft.** Every broker must agree on who leads each partition, at which leader epoch,
//! with which ISR; a disagreement is how acknowledged data gets lost. So every metadata change is
//! an entry in one replicated, totally ordered log (openraft, stored in sled under
//! `<data>/meta/`), committed by a quorum of controllers before anyone acts on it. The voters are
//! created from `controller.quorum.voters`, changed one at a time by AddVoter / RemoveVoter
//! (KIP-853, `controller::voter_changes`), and talk over gRPC (`proto/controller.proto`); one
//! voter works through the same path: a change exists once its entry is committed, and a
//! restart rebuilds the state from sled.
//!
//! **Why records are facts.** Entries carry [`records::MetadataRecord`]s that state what became
//! true, with every random or time-dependent choice (topic ids, broker epochs, placement) made by
//! the [`controller`] before proposing. Applying them ([`image::MetadataImage::apply`]) is a pure,
//! deterministic function, so every node and every restart computes the same image.
//!
//! **How brokers see it.** The applied state is an immutable [`image::MetadataImage`] published
//! after every apply on a `tokio::sync::watch` channel ([`node::MetaNode::subscribe`]). A broker
//! diffs consecutive images to decide what to do (become leader, follower, stop a replica). A
//! controller call returns the Raft log index its change committed at, and
//! [`node::MetaNode::wait_for_applied`] lets a broker wait until its image includes it.
//!
//! **How brokers that are not voters see it.** They follow the committed log over gRPC
//! (`metadata_log` on the voters, `client::MetadataFollower` on the broker) and send their
//! requests through `client::ControllerClient`, which a combined node uses too.
//!
//! Crate layout: `records` (facts), `image` (state + apply), `topic_name` / `topic_config` /
//! `broker_defaults` (Kafka rules), `client_quotas` (KIP-546 quota entities and values), `group_configs` (KIP-848 per-group
//! overrides), `format` (the versioned bytes of records, entries,
//! snapshots and deltas; docs/upgrading.md), `features` (`metadata.version` levels: which
//! versions may be written), `placement` (replica placement), `controller` (validation,
//! planning, proposing — the active controller), `client` (what brokers use: routing, metadata
//! following, registration and heartbeats), `metadata_log` (serving the committed log),
//! `raft` (openraft storage, state machine, gRPC transport), `quorum_voters` (voter list
//! syntax), `voter_book` (the voters now), `quorum_status` (DescribeQuorum), `controller_server` (the gRPC server),
//! `controller_service` (forwarded controller requests), `meta_properties` (directory
//! identity), `voter_directory` (a voter is a node id and a directory: a wiped voter does not
//! vote), `node` (start-up and wiring). No Kafka wire types appear here.

pub mod broker_defaults;
pub mod client;
pub mod client_quotas;
pub mod controller;
mod controller_server;
mod controller_service;
pub mod error;
pub mod features;
pub mod format;
pub mod group_configs;
pub mod image;
pub mod meta_properties;
pub mod metadata_log;
pub mod node;
pub mod placement;
pub mod quorum_marker;
pub mod quorum_status;
pub mod quorum_voters;
pub mod raft;
pub mod records;
pub mod topic_config;
pub mod topic_name;
pub mod voter_book;
pub mod voter_directory;

/// Generated from `proto/controller.proto` (package `shoal.controller.v1`, crate `shoal-proto`):
/// messages, the `RaftService` / `QuorumAdmin` servers and their clients.
pub use shoal_proto::controller as proto;

pub use broker_defaults::BrokerDefaults;
pub use client::{
    BrokerLifecycle, BrokerLifecycleConfig, ControllerClient, ControllerLease, DiscoveredQuorum,
    KnownLeader, LeaseTerms, MetadataFollower, MetadataFollowerConfig, ReplicaReports,
    discover_quorum, parse_bootstrap_servers,
};
pub use controller::{
    AlterBrokerConfigs, AlterConfigOp, AlterConfigOpType, AlterGroupConfigs, AlterPartitionRequest,
    AlterTopicConfigs, AlteredPartition, BrokerHeartbeat, BrokerLiveness,
    BrokerRegistrationRequest, ClientQuotaAlteration, ClientQuotaOp, Controller, ControllerResults,
    CreatePartitions, CreateTopic, CreatedTopic, ElectionType, FeatureUpdate, HeartbeatReply,
    IsrMember, PartitionReassignment, ProducerIdBlock, RegisteredBroker, ReplicaRef, ReplicaSize,
    TopicRef, UserScramAlteration,
};
pub use controller_service::{PRODUCER_ID_BLOCKS_BURST, PRODUCER_ID_BLOCKS_PER_SECOND};
pub use error::{BrokerError, ControllerError, MetaError};
pub use image::{
    BrokerRegistration, DynamicBrokerConfigs, MetadataImage, PartitionImage, TopicImage,
};
pub use metadata_log::MetadataDelta;
pub use node::{MetaConfig, MetaNode, RaftStatus};
pub use quorum_status::{ObserverStatus, QuorumStatus, VoterStatus};
pub use quorum_voters::{format_quorum_voters, parse_quorum_voters};
pub use records::{Endpoint, MetadataBatch, MetadataRecord, NO_LEADER, SupportedFeature};
pub use voter_book::VoterBook;
