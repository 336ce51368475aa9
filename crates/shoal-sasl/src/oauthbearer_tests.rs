//! OAUTHBEARER validation as a table: unsecured and ES256-signed tokens (a key pair made per
//! test with ring), each claim's rule. RS256 is exercised end to end with confluent-kafka in
//! `tests/python/test_sasl.py` (keys made there).
#![allow(clippy::unwrap_used)]

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;

fn b64(value: &Value) -> String {
    BASE64URL.encode(serde_json::to_vec(value).unwrap())
}

fn unsecured(claims: Value) -> String {
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims))
}

struct Signer {
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        }
    }

    fn jwks(&self, kid: &str) -> String {
        let point = self.pair.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "other", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": kid,
             "x": BASE64URL.encode(&point[1..33]), "y": BASE64URL.encode(&point[33..])},
        ]})
        .to_string()
    }

    fn token(&self, kid: &str, claims: Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(&json!({"alg": "ES256", "kid": kid})),
            b64(&claims)
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", BASE64URL.encode(signature.as_ref()))
    }
}

fn validator(keys: Option<Vec<Jwk>>) -> OAuthValidator {
    OAuthValidator {
        keys: keys.map(JwksKeys::new),
        expected_issuer: Some("https://idp.example".into()),
        expected_audience: vec!["shoal".into()],
        sub_claim_name: "sub".into(),
        clock_skew_s: 30,
    }
}

fn good_claims() -> Value {
    json!({"sub": "alice", "exp": NOW + 600, "iat": NOW, "iss": "https://idp.example", "aud": ["other", "shoal"]})
}

#[test]
fn the_client_message_carries_the_token() {
    assert_eq!(
        client_token(b"n,,\x01auth=Bearer abc.def.\x01\x01").unwrap(),
        "abc.def."
    );
    assert_eq!(
        client_token(b"n,a=alice,\x01host=x\x01auth=Bearer t\x01\x01").unwrap(),
        "t"
    );
    for bad in [
        &b""[..],
        b"n,,",
        b"p=x,,\x01auth=Bearer t\x01\x01",
        b"n,,\x01auth=Basic t\x01\x01",
        b"n,,\x01\x01",
    ] {
        assert!(client_token(bad).is_err(), "{bad:?}");
    }
    assert!(client_token(&vec![b'a'; MAX_TOKEN_BYTES + 1]).is_err());
}

#[test]
fn unsecured_tokens_check_claims_only() {
    let v = validator(None);
    assert_eq!(
        v.validate(&unsecured(good_claims()), NOW).unwrap(),
        ("alice".into(), NOW + 600)
    );
    let signer = Signer::new();
    assert!(
        v.validate(&signer.token("k1", good_claims()), NOW).is_err(),
        "signed, not alg none"
    );
}

#[test]
fn signed_tokens_and_each_claim_rule() {
    let signer = Signer::new();
    let keys = parse_jwks(&signer.jwks("k1")).unwrap();
    assert_eq!(keys.len(), 2);
    let v = validator(Some(keys));
    assert_eq!(
        v.validate(&signer.token("k1", good_claims()), NOW)
            .unwrap()
            .0,
        "alice"
    );
    // Within the clock skew after expiry: still valid; beyond it: not.
    assert!(
        v.validate(&signer.token("k1", good_claims()), NOW + 620)
            .is_ok()
    );
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        ("expired", Box::new(|c| c["exp"] = json!(NOW - 31))),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("not yet", Box::new(|c| c["nbf"] = json!(NOW + 120))),
        (
            "issuer",
            Box::new(|c| c["iss"] = json!("https://evil.example")),
        ),
        ("audience", Box::new(|c| c["aud"] = json!("other"))),
        (
            "no subject",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
    ];
    for (case, change) in cases {
        let mut claims = good_claims();
        change(&mut claims);
        assert!(
            v.validate(&signer.token("k1", claims.clone()), NOW)
                .is_err(),
            "{case}"
        );
    }
    // Another key, another kid, a tampered payload, an unsecured token, garbage.
    let stranger = Signer::new();
    assert!(
        v.validate(&stranger.token("k1", good_claims()), NOW)
            .is_err(),
        "other key"
    );
    assert!(
        v.validate(&signer.token("k2", good_claims()), NOW).is_err(),
        "unknown kid"
    );
    let token = signer.token("k1", good_claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(
        &json!({"sub": "admin", "exp": NOW + 600, "iss": "https://idp.example", "aud": "shoal"}),
    );
    parts[1] = &forged;
    assert!(
        v.validate(&parts.join("."), NOW).is_err(),
        "payload swapped"
    );
    assert!(
        v.validate(&unsecured(good_claims()), NOW).is_err(),
        "alg none"
    );
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert!(v.validate(garbage, NOW).is_err(), "{garbage}");
    }
    // A custom subject claim.
    let v = OAuthValidator {
        sub_claim_name: "client_id".into(),
        ..v
    };
    let mut claims = good_claims();
    claims["client_id"] = json!("svc-billing");
    assert_eq!(
        v.validate(&signer.token("k1", claims), NOW).unwrap().0,
        "svc-billing"
    );
}

#[test]
fn jwks_documents_are_checked() {
    for bad in [
        "",
        "{}",
        "{\"keys\": []}",
        "{\"keys\": [{\"kty\": \"oct\"}]}",
        "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AA\", \"y\": \"AA\"}]}",
    ] {
        assert!(parse_jwks(bad).is_err(), "{bad}");
    }
}
