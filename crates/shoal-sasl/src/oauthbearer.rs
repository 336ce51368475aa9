//! SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255 and KIP-768): the client sends a JWT; the
//! server validates it and the principal is its subject.
//!
//! Two modes, as Kafka's two validator callback handlers:
//! - **Signed** (with `sasl.oauthbearer.jwks.endpoint.url`, here a `file:` URL or path): the
//!   token must be an RS256 or ES256 JWS signed by a key of the JWKS, unexpired (with
//!   `sasl.oauthbearer.clock.skew.seconds`), from `sasl.oauthbearer.expected.issuer` and for
//!   one of `sasl.oauthbearer.expected.audience` when those are set. The subject claim is
//!   `sasl.oauthbearer.sub.claim.name` (default `sub`).
//! - **Unsecured** (no JWKS; Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`, for
//!   development): `alg: none`, no signature; only the claims are checked. Anyone can mint
//!   such a token, so the node warns at start-up.
//!
//! Pure: the clock (`now_unix_s`) is an argument. Tokens over [`MAX_TOKEN_BYTES`] are refused
//! before decoding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use std::sync::{Arc, RwLock};

use ring::signature;
use serde_json::Value;

/// Longest client message / token accepted.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most keys a JWKS file may hold.
pub const MAX_JWKS_KEYS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthFailure {
    #[error("malformed OAUTHBEARER message: {0}")]
    Malformed(String),
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

fn invalid(why: impl Into<String>) -> OAuthFailure {
    OAuthFailure::InvalidToken(why.into())
}

/// A verification key from a JWKS.
#[derive(Debug, Clone)]
pub enum Jwk {
    Rsa {
        kid: Option<String>,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// P-256, as the uncompressed point `04 || x || y`.
    EcP256 { kid: Option<String>, point: Vec<u8> },
}

impl Jwk {
    fn kid(&self) -> Option<&str> {
        match self {
            Jwk::Rsa { kid, .. } | Jwk::EcP256 { kid, .. } => kid.as_deref(),
        }
    }
}

/// The keys of a JWKS document (`{"keys": [...]}`); keys of other types are skipped.
pub fn parse_jwks(json: &str) -> Result<Vec<Jwk>, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    if keys.len() > MAX_JWKS_KEYS {
        return Err(format!("more than {MAX_JWKS_KEYS} keys"));
    }
    let field = |key: &Value, name: &str| -> Result<Vec<u8>, String> {
        let text = key
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a key lacks \"{name}\""))?;
        BASE64URL
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    let mut out = Vec::new();
    for key in keys {
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
        match key.get("kty").and_then(Value::as_str) {
            Some("RSA") => out.push(Jwk::Rsa {
                kid,
                n: field(key, "n")?,
                e: field(key, "e")?,
            }),
            Some("EC") if key.get("crv").and_then(Value::as_str) == Some("P-256") => {
                let (x, y) = (field(key, "x")?, field(key, "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("a P-256 key's x and y are 32 bytes".to_owned());
                }
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                out.push(Jwk::EcP256 { kid, point });
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("no RSA or P-256 key".to_owned());
    }
    Ok(out)
}

/// The keys of a JWKS, replaceable while connections validate against them (a rotated JWKS
/// file is loaded again without a restart); a validation uses the set current when it began.
#[derive(Debug)]
pub struct JwksKeys(RwLock<Arc<Vec<Jwk>>>);

impl JwksKeys {
    pub fn new(keys: Vec<Jwk>) -> Arc<JwksKeys> {
        Arc::new(JwksKeys(RwLock::new(Arc::new(keys))))
    }

    pub fn current(&self) -> Arc<Vec<Jwk>> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub fn replace(&self, keys: Vec<Jwk>) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
    }
}

/// How tokens are checked (see the module docs).
#[derive(Debug, Clone)]
pub struct OAuthValidator {
    /// `None`: unsecured tokens (`alg: none`).
    pub keys: Option<Arc<JwksKeys>>,
    pub expected_issuer: Option<String>,
    pub expected_audience: Vec<String>,
    pub sub_claim_name: String,
    pub clock_skew_s: u64,
}

/// The token of a client's initial response: `gs2-header kvsep *(kvpair) kvsep`, with
/// `auth=Bearer <token>` among the pairs (RFC 7628 section 3.1).
pub fn client_token(message: &[u8]) -> Result<String, OAuthFailure> {
    if message.len() > MAX_TOKEN_BYTES {
        return Err(OAuthFailure::Malformed("message too long".into()));
    }
    let text =
        std::str::from_utf8(message).map_err(|_| OAuthFailure::Malformed("not UTF-8".into()))?;
    let (gs2, pairs) = text
        .split_once('\u{1}')
        .ok_or_else(|| OAuthFailure::Malformed("no \\x01 after the gs2 header".into()))?;
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err(OAuthFailure::Malformed(
            "channel binding is not supported".into(),
        ));
    }
    pairs
        .split('\u{1}')
        .find_map(|pair| pair.strip_prefix("auth="))
        .and_then(|auth| {
            auth.strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthFailure::Malformed("no auth=Bearer <token>".into()))
}

fn decode_json(part: &str, what: &str) -> Result<Value, OAuthFailure> {
    let bytes = BASE64URL
        .decode(part.trim_end_matches('='))
        .map_err(|_| invalid(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid(format!("the {what} is not JSON")))
}

impl OAuthValidator {
    /// Validates `token` at `now_unix_s`; returns the principal's name and the token's expiry
    /// (seconds since the epoch).
    pub fn validate(&self, token: &str, now_unix_s: u64) -> Result<(String, u64), OAuthFailure> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("a JWS has three dot-separated parts"));
        };
        let header_json = decode_json(header, "header")?;
        let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or("");
        match &self.keys {
            None => {
                if alg != "none" || !signature.is_empty() {
                    return Err(invalid("unsecured tokens only (alg none, no signature)"));
                }
            }
            Some(keys) => {
                let keys = keys.current();
                let signature = BASE64URL
                    .decode(signature)
                    .map_err(|_| invalid("the signature is not base64url"))?;
                let kid = header_json.get("kid").and_then(Value::as_str);
                let signed = format!("{header}.{payload}");
                let verified = keys
                    .iter()
                    .filter(|k| kid.is_none() || k.kid() == kid)
                    .any(|key| match (alg, key) {
                        ("RS256", Jwk::Rsa { n, e, .. }) => signature::RsaPublicKeyComponents {
                            n: n.as_slice(),
                            e: e.as_slice(),
                        }
                        .verify(
                            &signature::RSA_PKCS1_2048_8192_SHA256,
                            signed.as_bytes(),
                            &signature,
                        )
                        .is_ok(),
                        ("ES256", Jwk::EcP256 { point, .. }) => signature::UnparsedPublicKey::new(
                            &signature::ECDSA_P256_SHA256_FIXED,
                            point,
                        )
                        .verify(signed.as_bytes(), &signature)
                        .is_ok(),
                        _ => false,
                    });
                if !verified {
                    return Err(invalid(format!(
                        "no key of the JWKS verifies this {alg:?} signature"
                    )));
                }
            }
        }
        let claims = decode_json(payload, "payload")?;
        let number = |name: &str| claims.get(name).and_then(Value::as_f64);
        let exp = number("exp").ok_or_else(|| invalid("no exp claim"))?;
        let skew = self.clock_skew_s as f64;
        let now = now_unix_s as f64;
        if exp + skew <= now {
            return Err(invalid("the token has expired"));
        }
        if number("nbf").is_some_and(|nbf| nbf > now + skew) {
            return Err(invalid("the token is not valid yet (nbf)"));
        }
        if let Some(issuer) = &self.expected_issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(invalid("unexpected issuer"));
        }
        if !self.expected_audience.is_empty() {
            let audiences: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !audiences
                .iter()
                .any(|a| self.expected_audience.iter().any(|e| e == a))
            {
                return Err(invalid("unexpected audience"));
            }
        }
        let subject = claims
            .get(&self.sub_claim_name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 1_024)
            .ok_or_else(|| invalid(format!("no {} claim", self.sub_claim_name)))?;
        Ok((subject.to_owned(), exp.max(0.0) as u64))
    }
}

#[cfg(test)]
#[path = "oauthbearer_tests.rs"]
mod tests;
