//! SASL for Kafka listeners (issue #16), as pure functions: no sockets, no clocks.
//!
//! **SCRAM credentials** (`credential.rs`) are what the metadata log stores for a user and
//! mechanism: a random salt, an iteration count, and the two keys RFC 5802 derives from the
//! password (`StoredKey` = H(HMAC(SaltedPassword, "Client Key")), `ServerKey` =
//! HMAC(SaltedPassword, "Server Key")). The password itself is never stored, and the stored
//! keys do not let anyone log in (a client proves knowledge of `ClientKey`, which only the
//! password yields). Kafka's AlterUserScramCredentials carries the `SaltedPassword` the client
//! computed, so the password never crosses the network either. PLAIN logins verify against the
//! same credential (derive, compare in constant time): one credential store for both.
//!
//! **Logins** are pure steps too: `scram.rs` is the server side of a SCRAM exchange (the
//! RFC 7677 example is its test), `plain.rs` checks a PLAIN message against the same
//! credentials. The Kafka framing (SaslHandshake, SaslAuthenticate) is `shoal-kafka`'s.
//!
//! The primitives (PBKDF2, HMAC, SHA-2, the random source) are *ring*'s, already in the tree
//! through rustls.

mod credential;
mod oauthbearer;
mod plain;
mod scram;
mod scram_client;

pub use credential::{
    MAX_ITERATIONS, MIN_ITERATIONS, SALT_BYTES, ScramCredential, ScramError, ScramMechanism,
    new_salt, salted_password,
};
pub use oauthbearer::{
    Jwk, JwksKeys, MAX_TOKEN_BYTES, OAuthFailure, OAuthValidator, client_token, parse_jwks,
};
pub use plain::{MAX_PLAIN_MESSAGE_BYTES, PlainFailure, authenticate_plain};
pub use scram::{MAX_SCRAM_MESSAGE_BYTES, MAX_SCRAM_USER_BYTES, ScramFailure, ScramServer};
pub use scram_client::{ScramClient, ScramClientFinal};
