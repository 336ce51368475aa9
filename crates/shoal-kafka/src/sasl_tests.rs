//! The SASL session as a table of request sequences: what passes, what is answered, what
//! fails (with the delay) and what closes the connection.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use ring::{digest, hmac};

use super::*;

struct Users(HashMap<(String, ScramMechanism), ScramCredential>);

impl CredentialStore for Users {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0.get(&(user.to_owned(), mechanism)).cloned()
    }
}

fn config(reauth_ms: u64) -> Arc<SaslConfig> {
    let mut users = HashMap::new();
    for m in ScramMechanism::ALL {
        users.insert(
            ("alice".to_owned(), m),
            ScramCredential::from_password(m, "s3cret", 4096).unwrap(),
        );
        users.insert(
            ("bob".to_owned(), m),
            ScramCredential::from_password(m, "hunter2", 4096).unwrap(),
        );
    }
    Arc::new(SaslConfig {
        mechanisms: SaslMechanism::ALL.to_vec(),
        reauth_ms,
        failed_delay_ms: 100,
        store: Arc::new(Users(users)),
        decoy_secret: Arc::from(&b"test"[..]),
        oauth: Some(Arc::new(shoal_sasl::OAuthValidator {
            keys: None,
            expected_issuer: None,
            expected_audience: Vec::new(),
            sub_claim_name: "sub".into(),
            clock_skew_s: 30,
        })),
    })
}

fn handshake(mechanism: &str) -> RequestKind {
    RequestKind::SaslHandshake(
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_owned())),
    )
}

fn auth(bytes: &[u8]) -> RequestKind {
    RequestKind::SaslAuthenticate(
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(bytes)),
    )
}

fn metadata() -> RequestKind {
    RequestKind::Metadata(MetadataRequest::default())
}

fn reply_bytes(step: SaslStep) -> Vec<u8> {
    match step {
        SaslStep::Reply(ResponseKind::SaslAuthenticate(r)) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            r.auth_bytes.to_vec()
        }
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn is_fail(step: &SaslStep) -> bool {
    matches!(step, SaslStep::Fail { delay, .. } if *delay == Duration::from_millis(100))
}

/// A SCRAM client: returns the client-final message for `server_first`.
fn scram_client_final(
    m: ScramMechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> String {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for part in server_first.split(',') {
        match part.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = BASE64.decode(v).unwrap(),
            ("i=", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    let salted = shoal_sasl::salted_password(m, password.as_bytes(), &salt, iterations).unwrap();
    let (alg, dig) = match m {
        ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
        ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
    };
    let client_key = hmac::sign(&hmac::Key::new(alg, &salted), b"Client Key");
    let stored_key = digest::digest(dig, client_key.as_ref());
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac::sign(
        &hmac::Key::new(alg, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", BASE64.encode(proof))
}

fn scram_login(
    session: &mut SaslSession,
    m: ScramMechanism,
    user: &str,
    password: &str,
    now: Instant,
) -> SaslStep {
    assert!(matches!(
        session.step(&handshake(m.name()), 1, now),
        SaslStep::Reply(_)
    ));
    let bare = format!("n={user},r=clientnonce");
    let first = reply_bytes(session.step(&auth(format!("n,,{bare}").as_bytes()), 2, now));
    let first = String::from_utf8(first).unwrap();
    let last = scram_client_final(m, password, &bare, &first);
    session.step(&auth(last.as_bytes()), 2, now)
}

#[test]
fn only_sasl_requests_before_authentication() {
    let now = Instant::now();
    let mut s = SaslSession::new(config(0));
    assert!(matches!(s.step(&metadata(), 12, now), SaslStep::Close(_)));
    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list, then close.
    match s.step(&handshake("GSSAPI"), 1, now) {
        SaslStep::Fail {
            response: ResponseKind::SaslHandshake(r),
            ..
        } => {
            assert_eq!(r.error_code, UNSUPPORTED_SASL_MECHANISM);
            let names: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
            assert_eq!(
                names,
                ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
            );
        }
        other => panic!("{other:?}"),
    }
    let mut s = SaslSession::new(config(0));
    assert!(
        matches!(s.step(&handshake("PLAIN"), 0, now), SaslStep::Close(_)),
        "v0"
    );
    let mut s = SaslSession::new(config(0));
    match s.step(&auth(b"\0alice\0s3cret"), 2, now) {
        SaslStep::Reply(ResponseKind::SaslAuthenticate(r)) => {
            assert_eq!(r.error_code, ILLEGAL_SASL_STATE)
        }
        other => panic!("{other:?}"),
    }
    assert!(s.principal().is_none());
}

#[test]
fn plain_and_scram_logins_and_their_failures() {
    let now = Instant::now();
    // PLAIN, right and wrong.
    let mut s = SaslSession::new(config(0));
    assert!(matches!(
        s.step(&handshake("PLAIN"), 1, now),
        SaslStep::Reply(_)
    ));
    assert_eq!(reply_bytes(s.step(&auth(b"\0alice\0s3cret"), 2, now)), b"");
    assert_eq!(s.principal().unwrap().to_string(), "User:alice");
    assert!(matches!(s.step(&metadata(), 12, now), SaslStep::Pass));
    for bad in [&b"\0alice\0wrong"[..], b"\0nobody\0s3cret", b"garbage"] {
        let mut s = SaslSession::new(config(0));
        s.step(&handshake("PLAIN"), 1, now);
        assert!(is_fail(&s.step(&auth(bad), 2, now)), "{bad:?}");
        assert!(s.principal().is_none());
    }
    // SCRAM, both mechanisms; a wrong password and an unknown user fail alike.
    for m in ScramMechanism::ALL {
        let mut s = SaslSession::new(config(0));
        let done = scram_login(&mut s, m, "alice", "s3cret", now);
        let server_final = String::from_utf8(reply_bytes(done)).unwrap();
        assert!(server_final.starts_with("v="), "{server_final}");
        assert_eq!(s.principal().unwrap().to_string(), "User:alice");
        let mut s = SaslSession::new(config(0));
        assert!(is_fail(&scram_login(&mut s, m, "alice", "wrong", now)));
        let mut s = SaslSession::new(config(0));
        assert!(is_fail(&scram_login(&mut s, m, "nobody", "s3cret", now)));
    }
}

#[test]
fn sessions_expire_and_reauthenticate_as_the_same_principal() {
    let start = Instant::now();
    let later = start + Duration::from_millis(60_001);
    // Without connections.max.reauth.ms: no lifetime, never expires, no second handshake.
    let mut s = SaslSession::new(config(0));
    scram_login(&mut s, ScramMechanism::Sha256, "alice", "s3cret", start);
    assert!(matches!(s.step(&metadata(), 12, later), SaslStep::Pass));
    match s.step(&handshake("SCRAM-SHA-256"), 1, later) {
        SaslStep::Reply(ResponseKind::SaslHandshake(r)) => {
            assert_eq!(r.error_code, ILLEGAL_SASL_STATE)
        }
        other => panic!("{other:?}"),
    }
    // With 60 s: v1+ announces the lifetime; a request after it closes the connection.
    let mut s = SaslSession::new(config(60_000));
    match scram_login(&mut s, ScramMechanism::Sha256, "alice", "s3cret", start) {
        SaslStep::Reply(ResponseKind::SaslAuthenticate(r)) => {
            assert_eq!(r.session_lifetime_ms, 60_000)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.step(&metadata(), 12, later), SaslStep::Close(_)));
    // Re-authenticating in time extends the session; as another user it fails.
    let mut s = SaslSession::new(config(60_000));
    scram_login(&mut s, ScramMechanism::Sha256, "alice", "s3cret", start);
    let half = start + Duration::from_millis(30_000);
    assert!(matches!(
        scram_login(&mut s, ScramMechanism::Sha512, "alice", "s3cret", half),
        SaslStep::Reply(_)
    ));
    assert!(matches!(s.step(&metadata(), 12, later), SaslStep::Pass));
    assert!(is_fail(&scram_login(
        &mut s,
        ScramMechanism::Sha256,
        "bob",
        "hunter2",
        later
    )));
}

#[test]
fn oauthbearer_tokens_log_in_as_their_subject() {
    let now = Instant::now();
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |exp: u64| {
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(&format!(r#"{{"sub":"carol","exp":{exp}}}"#))
        )
    };
    let mut s = SaslSession::new(config(0));
    assert!(matches!(
        s.step(&handshake("OAUTHBEARER"), 1, now),
        SaslStep::Reply(_)
    ));
    let message = format!("n,,\x01auth=Bearer {}\x01\x01", token(unix + 600));
    assert_eq!(reply_bytes(s.step(&auth(message.as_bytes()), 2, now)), b"");
    assert_eq!(s.principal().unwrap().to_string(), "User:carol");
    let mut s = SaslSession::new(config(0));
    s.step(&handshake("OAUTHBEARER"), 1, now);
    let expired = format!("n,,\x01auth=Bearer {}\x01\x01", token(unix - 600));
    assert!(is_fail(&s.step(&auth(expired.as_bytes()), 2, now)));
}
