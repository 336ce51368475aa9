//! The client side of a SCRAM exchange (RFC 5802), for Shoal's own tools (`shoalctl`): the
//! mirror of [`crate::ScramServer`], tested against it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac};

use crate::credential::{MAX_ITERATIONS, ScramMechanism, constant_time_eq, salted_password};
use crate::scram::ScramFailure;

/// RFC 5802 `saslname`: `,` and `=` escaped.
fn encode_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn malformed(why: impl Into<String>) -> ScramFailure {
    ScramFailure::Malformed(why.into())
}

/// After the client-first message: waiting for the server-first one.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_nonce: String,
    client_first_bare: String,
}

/// After the client-final message: the server signature to expect.
#[derive(Debug)]
pub struct ScramClientFinal {
    expected_server_signature: Vec<u8>,
}

impl ScramClient {
    /// Starts an exchange; returns the state and the client-first message. `client_nonce` is
    /// fresh printable randomness without `,`.
    pub fn first(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        client_nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(user));
        let message = format!("n,,{client_first_bare}").into_bytes();
        (
            ScramClient {
                mechanism,
                password: password.to_owned(),
                client_nonce: client_nonce.to_owned(),
                client_first_bare,
            },
            message,
        )
    }

    /// Answers the server-first message with the client-final one (the proof).
    pub fn last(self, server_first: &[u8]) -> Result<(ScramClientFinal, Vec<u8>), ScramFailure> {
        let text = std::str::from_utf8(server_first).map_err(|_| malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in text.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => {
                    salt = Some(
                        BASE64
                            .decode(v)
                            .map_err(|_| malformed("salt is not base64"))?,
                    )
                }
                Some(("i=", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|_| malformed("bad iterations"))?)
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(malformed("server-first message lacks r=, s= or i="));
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(malformed("the server nonce does not extend ours"));
        }
        if iterations > MAX_ITERATIONS {
            return Err(malformed(format!(
                "{iterations} iterations is more than we do"
            )));
        }
        let salted = salted_password(self.mechanism, self.password.as_bytes(), &salt, iterations)
            .map_err(|e| malformed(e.to_string()))?;
        let key = |secret: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(self.mechanism.hmac(), secret), data)
                .as_ref()
                .to_vec()
        };
        let client_key = key(&salted, b"Client Key");
        let stored_key = digest::digest(self.mechanism.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = key(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = key(&salted, b"Server Key");
        let expected_server_signature = key(&server_key, auth_message.as_bytes());
        Ok((
            ScramClientFinal {
                expected_server_signature,
            },
            format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
        ))
    }
}

impl ScramClientFinal {
    /// Checks the server-final message: the server proves it knows the credential too.
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramFailure> {
        let text = std::str::from_utf8(server_final).map_err(|_| malformed("not UTF-8"))?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(malformed(format!("the server says: {error}")));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or_else(|| malformed("no server signature"))?;
        if constant_time_eq(&signature, &self.expected_server_signature) {
            Ok(())
        } else {
            Err(malformed(
                "the server's signature is wrong (not the real server?)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ScramCredential, ScramServer};

    #[test]
    fn the_client_and_the_server_agree_and_a_wrong_password_fails() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(mechanism, "s3cret", 4096).unwrap();
            for (password, ok) in [("s3cret", true), ("wrong", false)] {
                let (client, first) = ScramClient::first(mechanism, "al,i=ce", password, "cn0nce");
                let (server, server_first) = ScramServer::first(
                    mechanism,
                    &first,
                    |user| (user == "al,i=ce").then(|| credential.clone()),
                    "sn0nce",
                    b"secret",
                )
                .unwrap();
                let (client, last) = client.last(&server_first).unwrap();
                match server.last(&last) {
                    Ok((user, server_final)) => {
                        assert!(ok);
                        assert_eq!(user, "al,i=ce");
                        client.verify(&server_final).unwrap();
                    }
                    Err(_) => assert!(!ok),
                }
            }
        }
    }

    #[test]
    fn a_server_that_does_not_know_the_credential_is_caught() {
        let (client, _) = ScramClient::first(ScramMechanism::Sha256, "u", "pw", "abc");
        assert!(
            client.last(b"r=xyz,s=c2FsdA==,i=4096").is_err(),
            "nonce not ours"
        );
        let (client, _) = ScramClient::first(ScramMechanism::Sha256, "u", "pw", "abc");
        let (done, _) = client.last(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
        assert!(done.verify(b"v=AAAA").is_err());
        let (client, _) = ScramClient::first(ScramMechanism::Sha256, "u", "pw", "abc");
        assert!(
            client.last(b"r=abcdef,s=c2FsdA==,i=100000000").is_err(),
            "too costly"
        );
    }
}
