//! SASL on a Kafka listener (SASL_PLAINTEXT, SASL_SSL): the per-connection session, Kafka's
//! framing of it (SaslHandshake v1, then SaslAuthenticate v0–v2, KIP-152) and re-authentication
//! (KIP-368, `connections.max.reauth.ms`).
//!
//! **Why in the front.** Authentication decides who every later request on the connection is,
//! so it belongs to the connection, as Kafka's `SaslServerAuthenticator` does: the broker's
//! handlers only ever see authenticated requests. [`SaslSession::step`] is a pure decision per
//! request (the clock and the nonce are its inputs); the connection does the I/O.
//!
//! **Rules** (Kafka's): before authentication only ApiVersions (answered by the front),
//! SaslHandshake and SaslAuthenticate are served; anything else closes the connection. A
//! failed authentication answers SASL_AUTHENTICATION_FAILED after
//! `connection.failed.authentication.delay.ms` and closes; the message never says whether the
//! user exists. With `connections.max.reauth.ms`, the session lifetime is sent in
//! SaslAuthenticate v1+, the client re-authenticates on the same connection (as the same
//! principal), and a request after expiry closes the connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::Principal;
use shoal_sasl::{ScramCredential, ScramMechanism, ScramServer};

/// Where a listener finds users' SCRAM credentials (the broker: its metadata image).
pub trait CredentialStore: Send + Sync + 'static {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// A SASL mechanism a listener may enable (`sasl.enabled.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::Scram(ScramMechanism::Sha256),
        SaslMechanism::Scram(ScramMechanism::Sha512),
        SaslMechanism::OAuthBearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A listener's SASL settings.
#[derive(Clone)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`, in the order announced.
    pub mechanisms: Vec<SaslMechanism>,
    /// `connections.max.reauth.ms`; 0 = sessions do not expire.
    pub reauth_ms: u64,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_delay_ms: u64,
    pub store: Arc<dyn CredentialStore>,
    /// Per process: seeds the decoy credentials of unknown users.
    pub decoy_secret: Arc<[u8]>,
    /// How OAUTHBEARER tokens are validated (required when it is enabled).
    pub oauth: Option<Arc<shoal_sasl::OAuthValidator>>,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanisms", &self.mechanisms)
            .field("reauth_ms", &self.reauth_ms)
            .finish_non_exhaustive()
    }
}

/// What the connection does with one request.
#[derive(Debug)]
pub enum SaslStep {
    /// An authenticated request: dispatch it as `principal`.
    Pass,
    /// A SASL request: answer with this.
    Reply(ResponseKind),
    /// Authentication failed: answer after the delay, then close.
    Fail {
        response: ResponseKind,
        delay: Duration,
        why: String,
    },
    /// A request the state does not allow: close without an answer.
    Close(String),
}

enum Phase {
    /// Nothing yet (or the previous session, when re-authenticating).
    Start,
    /// A mechanism was chosen by SaslHandshake.
    Chosen(SaslMechanism),
    /// SCRAM: the server-first message was sent.
    ScramSent(ScramMechanism, Box<ScramServer>),
    /// The exchange finished; requests pass.
    Done,
}

/// One connection's SASL state.
pub struct SaslSession {
    config: Arc<SaslConfig>,
    phase: Phase,
    /// The authenticated user and when the session ends (None: never).
    session: Option<(Arc<Principal>, Option<Instant>)>,
}

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;

fn authenticate_response(
    code: i16,
    message: Option<&str>,
    bytes: Vec<u8>,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(code)
        .with_error_message(message.map(|m| StrBytes::from_string(m.to_owned())))
        .with_auth_bytes(Bytes::from(bytes))
}

/// A fresh SCRAM server nonce: 24 random bytes, hex (printable, no `,`).
fn server_nonce() -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl SaslSession {
    pub fn new(config: Arc<SaslConfig>) -> SaslSession {
        SaslSession {
            config,
            phase: Phase::Start,
            session: None,
        }
    }

    /// The authenticated principal (once a session exists).
    pub fn principal(&self) -> Option<Arc<Principal>> {
        self.session.as_ref().map(|(p, _)| Arc::clone(p))
    }

    fn failed(&self, mechanism: &str, why: String) -> SaslStep {
        shoal_metrics::record_sasl_authentication(mechanism, false);
        SaslStep::Fail {
            response: ResponseKind::SaslAuthenticate(authenticate_response(
                SASL_AUTHENTICATION_FAILED,
                Some(&format!(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                )),
                Vec::new(),
            )),
            delay: Duration::from_millis(self.config.failed_delay_ms),
            why,
        }
    }

    /// Decides one request (see the module docs). `version` is the request's.
    pub fn step(&mut self, request: &RequestKind, version: i16, now: Instant) -> SaslStep {
        match request {
            RequestKind::SaslHandshake(handshake) => {
                let enabled: Vec<StrBytes> = self
                    .config
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect();
                if !matches!(self.phase, Phase::Start | Phase::Done) {
                    return SaslStep::Close("SaslHandshake in the middle of an exchange".into());
                }
                if matches!(self.phase, Phase::Done) && self.config.reauth_ms == 0 {
                    return SaslStep::Reply(ResponseKind::SaslHandshake(
                        SaslHandshakeResponse::default()
                            .with_error_code(ILLEGAL_SASL_STATE)
                            .with_mechanisms(enabled),
                    ));
                }
                let wanted = handshake.mechanism.as_str();
                match self
                    .config
                    .mechanisms
                    .iter()
                    .copied()
                    .find(|m| m.name() == wanted)
                {
                    Some(mechanism) if version >= 1 => {
                        self.phase = Phase::Chosen(mechanism);
                        SaslStep::Reply(ResponseKind::SaslHandshake(
                            SaslHandshakeResponse::default().with_mechanisms(enabled),
                        ))
                    }
                    // v0 would carry raw tokens outside Kafka framing (pre-KIP-152).
                    Some(_) => SaslStep::Close("SaslHandshake v0 is not supported".into()),
                    None => {
                        let mut name = wanted.to_owned();
                        name.truncate(64);
                        shoal_metrics::record_sasl_authentication("unsupported", false);
                        SaslStep::Fail {
                            response: ResponseKind::SaslHandshake(
                                SaslHandshakeResponse::default()
                                    .with_error_code(UNSUPPORTED_SASL_MECHANISM)
                                    .with_mechanisms(enabled),
                            ),
                            delay: Duration::ZERO,
                            why: format!("unsupported SASL mechanism {name:?}"),
                        }
                    }
                }
            }
            RequestKind::SaslAuthenticate(authenticate) => {
                self.authenticate(&authenticate.auth_bytes, version, now)
            }
            _ => match (&self.phase, &self.session) {
                (Phase::Done, Some((_, Some(expiry)))) if now >= *expiry => {
                    SaslStep::Close("the SASL session expired (connections.max.reauth.ms)".into())
                }
                (_, Some(_)) => SaslStep::Pass,
                (_, None) => SaslStep::Close(
                    "a request before SASL authentication (only ApiVersions, SaslHandshake and \
                     SaslAuthenticate are served)"
                        .into(),
                ),
            },
        }
    }

    fn authenticate(&mut self, bytes: &[u8], version: i16, now: Instant) -> SaslStep {
        let phase = std::mem::replace(&mut self.phase, Phase::Start);
        let store = Arc::clone(&self.config.store);
        match phase {
            Phase::Chosen(SaslMechanism::Plain) => {
                let lookup = |user: &str, m: ScramMechanism| store.scram_credential(user, m);
                match shoal_sasl::authenticate_plain(bytes, lookup) {
                    Ok(user) => self.succeed("PLAIN", user, Vec::new(), version, now),
                    Err(e) => self.failed("PLAIN", e.to_string()),
                }
            }
            Phase::Chosen(SaslMechanism::Scram(m)) => {
                let Some(nonce) = server_nonce() else {
                    return self.failed(m.name(), "the random source failed".into());
                };
                let lookup = |user: &str| store.scram_credential(user, m);
                match ScramServer::first(m, bytes, lookup, &nonce, &self.config.decoy_secret) {
                    Ok((server, reply)) => {
                        self.phase = Phase::ScramSent(m, Box::new(server));
                        SaslStep::Reply(ResponseKind::SaslAuthenticate(authenticate_response(
                            0, None, reply,
                        )))
                    }
                    Err(e) => self.failed(m.name(), e.to_string()),
                }
            }
            Phase::Chosen(SaslMechanism::OAuthBearer) => {
                let Some(validator) = self.config.oauth.clone() else {
                    return self.failed("OAUTHBEARER", "no token validator is configured".into());
                };
                let now_s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match shoal_sasl::client_token(bytes)
                    .and_then(|token| validator.validate(&token, now_s))
                {
                    Ok((subject, _expiry_s)) => {
                        self.succeed("OAUTHBEARER", subject, Vec::new(), version, now)
                    }
                    Err(e) => self.failed("OAUTHBEARER", e.to_string()),
                }
            }
            Phase::ScramSent(m, server) => match server.last(bytes) {
                Ok((user, reply)) => self.succeed(m.name(), user, reply, version, now),
                Err(e) => self.failed(m.name(), e.to_string()),
            },
            Phase::Start | Phase::Done => {
                self.phase = phase;
                SaslStep::Reply(ResponseKind::SaslAuthenticate(authenticate_response(
                    ILLEGAL_SASL_STATE,
                    Some("SaslAuthenticate without a SaslHandshake"),
                    Vec::new(),
                )))
            }
        }
    }

    fn succeed(
        &mut self,
        mechanism: &str,
        user: String,
        reply: Vec<u8>,
        version: i16,
        now: Instant,
    ) -> SaslStep {
        let principal = Principal::user(&user);
        if let Some((current, _)) = &self.session
            && **current != principal
        {
            return self.failed(
                mechanism,
                format!("re-authentication as {principal}, but the connection is {current}"),
            );
        }
        shoal_metrics::record_sasl_authentication(mechanism, true);
        let lifetime_ms = self.config.reauth_ms;
        let expiry = (lifetime_ms > 0).then(|| now + Duration::from_millis(lifetime_ms));
        self.session = Some((Arc::new(principal), expiry));
        self.phase = Phase::Done;
        let mut response = authenticate_response(0, None, reply);
        if version >= 1 {
            response.session_lifetime_ms = i64::try_from(lifetime_ms).unwrap_or(i64::MAX);
        }
        SaslStep::Reply(ResponseKind::SaslAuthenticate(response))
    }
}

#[cfg(test)]
#[path = "sasl_tests.rs"]
mod tests;
