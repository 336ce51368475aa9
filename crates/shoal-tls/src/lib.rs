//! TLS for Shoal's listeners, configured the way Kafka users already configure it.
//!
//! A listener whose security protocol is SSL (or, later, SASL_SSL) gets a [`TlsListener`]: its
//! PEM keystore and truststore read by Kafka's setting names ([`TlsSettings`]), client
//! certificates asked for or required per `ssl.client.auth`, TLS 1.2 and 1.3 only, and its files
//! reloaded when they change. rustls does the protocol (with the `ring` provider); this crate
//! only turns settings into its configuration, so nothing here touches sockets.

mod client;
mod error;
mod listener;
pub mod material;
mod principal;
mod settings;

pub use client::client_config;
pub use error::TlsError;
pub use listener::{TlsListener, spawn_every};
pub use principal::{ANONYMOUS, PrincipalMapper, distinguished_name};
pub use settings::{ClientAuth, Keystore, TlsSettings, TlsVersion, Truststore};
pub use tokio_rustls::{TlsAcceptor, TlsConnector, server::TlsStream};

/// A TLS handshake must finish within this once a connection is accepted; a peer that stalls
/// or sends garbage is closed (it holds a connection slot meanwhile).
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
