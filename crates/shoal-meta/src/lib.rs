//! Shoal's cluster metadata, KRaft-style.
//!
//! **Why Raft.** Every broker must agree on who leads each partition, at which leader epoch,
//! with which ISR; a disagreement is how acknowledged data gets lost. So every metadata change is
//! an entry in one replicated, totally ordered log (openraft, stored in sled under
//! `<data>/meta/`), committed by a quorum of controllers before anyone acts on it. This issue runs
//! a single voter, but through the real Raft path: a change exists once its entry is committed,
//! and a restart rebuilds the state from sled.
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
//! Crate layout: `records` (facts), `image` (state + apply), `topic_name` / `topic_config` /
//! `broker_defaults` (Kafka rules), `placement` (replica placement), `controller` (validation,
//! planning, proposing), `raft` (openraft storage, state machine, network), `meta_properties`
//! (directory identity), `node` (start-up and wiring). No Kafka wire types appear here.

pub mod broker_defaults;
pub mod controller;
pub mod error;
pub mod image;
pub mod meta_properties;
pub mod node;
pub mod placement;
pub mod raft;
pub mod records;
pub mod topic_config;
pub mod topic_name;

pub use broker_defaults::BrokerDefaults;
pub use controller::{
    AlterConfigOp, AlterConfigOpType, AlterTopicConfigs, BrokerRegistrationRequest, Controller,
    ControllerResults, CreatePartitions, CreateTopic, CreatedTopic, ProducerIdBlock,
    RegisteredBroker, TopicRef,
};
pub use error::{ControllerError, MetaError};
pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use node::{MetaConfig, MetaNode, RaftStatus};
pub use records::{Endpoint, MetadataBatch, MetadataRecord, NO_LEADER};
