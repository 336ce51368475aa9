//! A small Kafka admin client over `kafka-protocol`: bootstrap, metadata, and a connection per
//! broker, so each request goes where Kafka says it belongs (any broker for admin requests,
//! the leader for ListOffsets, the coordinator for group requests).

pub mod client;
pub mod connection;
pub mod security;

pub use client::Client;
