//! The server side of a SCRAM exchange (RFC 5802; SHA-256 and SHA-512 per RFC 7677), as two
//! pure steps: [`ScramServer::first`] answers the client-first message, [`ScramServer::last`]
//! checks the client's proof and answers with the server signature.
//!
//! - **No user-existence oracle.** An unknown user gets a server-first message like anyone's
//!   (a salt and iteration count derived from the name and a per-process secret) and fails
//!   only at the proof, with the same error as a wrong password.
//! - **No replay.** The server nonce is fresh per exchange (the caller supplies it from a
//!   CSPRNG), and the proof covers it, so a recorded client-final message fails in any other
//!   exchange. (The one other nonce form accepted is old librdkafka's, client nonce + full
//!   nonce, which still carries this exchange's server nonce.)
//! - **Bounded.** Messages over [`MAX_SCRAM_MESSAGE_BYTES`] are refused before parsing.
//!   No channel binding (`p=`) and no extensions (Kafka's delegation tokens' `tokenauth`) are
//!   accepted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac};

use crate::credential::{ScramCredential, ScramMechanism, constant_time_eq};

/// Longest client message accepted (a user name and a nonce fit with room to spare).
pub const MAX_SCRAM_MESSAGE_BYTES: usize = 4_096;
/// Longest user name accepted.
pub const MAX_SCRAM_USER_BYTES: usize = 1_024;

/// Why an exchange failed. The message is for logs; a client learns only that it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramFailure {
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    #[error("authentication failed: invalid credentials for {user:?}")]
    BadProof { user: String },
}

fn malformed(why: impl Into<String>) -> ScramFailure {
    ScramFailure::Malformed(why.into())
}

/// RFC 5802 `saslname` decoding: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn decode_saslname(raw: &str) -> Result<String, ScramFailure> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 3)
            .ok_or_else(|| malformed("bad = escape"))?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return Err(malformed("bad = escape")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn attribute(part: Option<&str>, name: char) -> Result<&str, ScramFailure> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| malformed(format!("expected the {name}= attribute")))
}

fn text(message: &[u8]) -> Result<&str, ScramFailure> {
    if message.len() > MAX_SCRAM_MESSAGE_BYTES {
        return Err(malformed(format!(
            "message of {} bytes (at most {MAX_SCRAM_MESSAGE_BYTES})",
            message.len()
        )));
    }
    std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))
}

/// A credential that fails every proof yet looks like a real one: salt and iterations derived
/// from the user name and `secret`, keys that no password yields.
fn decoy(mechanism: ScramMechanism, user: &str, secret: &[u8]) -> ScramCredential {
    let key = hmac::Key::new(mechanism.hmac(), secret);
    let salt = hmac::sign(&key, user.as_bytes()).as_ref()[..16].to_vec();
    let stored_key = hmac::sign(&key, b"stored-key").as_ref().to_vec();
    ScramCredential {
        mechanism,
        salt,
        server_key: stored_key.clone(),
        stored_key,
        iterations: 4_096,
    }
}

/// The exchange after the client-first message, waiting for the client-final one.
#[derive(Debug)]
pub struct ScramServer {
    user: String,
    credential: ScramCredential,
    /// The real credential was found (a decoy always fails).
    known: bool,
    gs2_header: String,
    client_nonce: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl ScramServer {
    /// Parses the client-first message and answers it. `lookup` finds the user's credential
    /// for this mechanism; `server_nonce` is fresh printable randomness (no `,`);
    /// `decoy_secret` is per process (see the module docs). Returns the exchange state and the
    /// server-first message.
    pub fn first(
        mechanism: ScramMechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: &str,
        decoy_secret: &[u8],
    ) -> Result<(ScramServer, Vec<u8>), ScramFailure> {
        let message = text(client_first)?;
        // gs2-header: "n," or "y," (no channel binding), then an optional authzid, then ",".
        let mut parts = message.splitn(3, ',');
        let cbind = parts.next().unwrap_or_default();
        if cbind != "n" && cbind != "y" {
            return Err(malformed("channel binding is not supported"));
        }
        let authzid = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or_else(|| malformed("no client-first-bare"))?;
        let mut attributes = bare.split(',');
        let user = decode_saslname(attribute(attributes.next(), 'n')?)?;
        let client_nonce = attribute(attributes.next(), 'r')?;
        if attributes.next().is_some() {
            return Err(malformed("SCRAM extensions are not supported"));
        }
        if user.is_empty() || user.len() > MAX_SCRAM_USER_BYTES {
            return Err(malformed(format!(
                "a user name is 1 to {MAX_SCRAM_USER_BYTES} bytes"
            )));
        }
        if !authzid.is_empty() {
            let requested = decode_saslname(
                authzid
                    .strip_prefix("a=")
                    .ok_or_else(|| malformed("bad authzid"))?,
            )?;
            if requested != user {
                return Err(malformed("an authorization id other than the user"));
            }
        }
        if client_nonce.is_empty()
            || !client_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(malformed("bad client nonce"));
        }
        let (credential, known) = match lookup(&user).filter(|c| c.mechanism == mechanism) {
            Some(c) => (c, true),
            None => (decoy(mechanism, &user, decoy_secret), false),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let reply = server_first.clone().into_bytes();
        Ok((
            ScramServer {
                user,
                credential,
                known,
                gs2_header: format!("{cbind},{authzid},"),
                client_nonce: client_nonce.to_owned(),
                nonce,
                client_first_bare: bare.to_owned(),
                server_first,
            },
            reply,
        ))
    }

    /// The user the exchange is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Checks the client-final message; on success returns the authenticated user and the
    /// server-final message.
    pub fn last(self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramFailure> {
        let message = text(client_final)?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding = attribute(attributes.next(), 'c')?;
        let nonce = attribute(attributes.next(), 'r')?;
        if attributes.next().is_some() {
            return Err(malformed("SCRAM extensions are not supported"));
        }
        let binding = BASE64
            .decode(binding)
            .map_err(|_| malformed("channel binding is not base64"))?;
        if binding != self.gs2_header.as_bytes() {
            return Err(malformed("channel binding differs from the gs2 header"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        let mechanism = self.credential.mechanism;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let stored = hmac::Key::new(mechanism.hmac(), &self.credential.stored_key);
        let signature = hmac::sign(&stored, auth_message.as_bytes());
        // librdkafka before 2.6.1 (e.g. Debian's kcat) sends its own nonce once more in front
        // of the full one (librdkafka#4895); Kafka 3.8.1–3.9 accepted that form. It still ends
        // in this exchange's server nonce, and the proof covers it as sent, so replay
        // protection holds; any other nonce fails.
        let legacy = format!("{}{}", self.client_nonce, self.nonce);
        let nonce_ok = constant_time_eq(nonce.as_bytes(), self.nonce.as_bytes())
            || constant_time_eq(nonce.as_bytes(), legacy.as_bytes());
        let proof_ok = proof.len() == signature.as_ref().len() && {
            let client_key: Vec<u8> = proof
                .iter()
                .zip(signature.as_ref())
                .map(|(p, s)| p ^ s)
                .collect();
            let derived = digest::digest(mechanism.digest(), &client_key);
            constant_time_eq(derived.as_ref(), &self.credential.stored_key)
        };
        if !(nonce_ok && proof_ok && self.known) {
            return Err(ScramFailure::BadProof { user: self.user });
        }
        let server = hmac::Key::new(mechanism.hmac(), &self.credential.server_key);
        let server_signature = hmac::sign(&server, auth_message.as_bytes());
        let reply = format!("v={}", BASE64.encode(server_signature.as_ref())).into_bytes();
        Ok((self.user, reply))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::credential::salted_password;

    const SECRET: &[u8] = b"per-process secret";

    fn pencil() -> ScramCredential {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096).unwrap();
        ScramCredential::from_salted_password(ScramMechanism::Sha256, salt, &salted, 4096).unwrap()
    }

    fn exchange(
        client_first: &str,
        user_has: bool,
    ) -> Result<(ScramServer, Vec<u8>), ScramFailure> {
        ScramServer::first(
            ScramMechanism::Sha256,
            client_first.as_bytes(),
            |u| (user_has && u == "user").then(pencil),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            SECRET,
        )
    }

    /// RFC 7677 section 3, byte for byte.
    #[test]
    fn the_rfc_7677_exchange() {
        let (server, first) = exchange("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", true).unwrap();
        assert_eq!(
            std::str::from_utf8(&first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (user, last) = server
            .last(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(user, "user");
        assert_eq!(
            std::str::from_utf8(&last).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn wrong_proofs_replays_and_unknown_users_fail_alike() {
        let final_message = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        // A flipped proof byte.
        let (server, _) = exchange("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", true).unwrap();
        let bad = String::from_utf8(final_message.to_vec())
            .unwrap()
            .replace("p=dHz", "p=dHy");
        assert!(matches!(
            server.last(bad.as_bytes()),
            Err(ScramFailure::BadProof { .. })
        ));
        // The recorded final message replayed into an exchange with another server nonce.
        let (server, _) = ScramServer::first(
            ScramMechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            |_| Some(pencil()),
            "another-server-nonce",
            SECRET,
        )
        .unwrap();
        assert!(matches!(
            server.last(final_message),
            Err(ScramFailure::BadProof { .. })
        ));
        // An unknown user gets a server-first message of the same shape, and fails at the end
        // with the same error; the decoy salt is stable per user.
        let (server, first) = exchange("n,,n=nobody,r=abc", false).unwrap();
        let first = String::from_utf8(first).unwrap();
        assert!(
            first.starts_with("r=abc%hvYD") && first.ends_with(",i=4096"),
            "{first}"
        );
        let (_, again) = exchange("n,,n=nobody,r=abc", false).unwrap();
        assert_eq!(first.as_bytes(), again.as_slice());
        assert!(matches!(
            server.last(b"c=biws,r=abc%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA"),
            Err(ScramFailure::BadProof { .. })
        ));
    }

    /// librdkafka before 2.6.1 repeats its nonce in front of the full one; that form passes
    /// (it carries the server nonce), a nonce without the server part does not.
    #[test]
    fn old_librdkafkas_repeated_client_nonce_is_accepted() {
        use base64::Engine;
        let salted =
            salted_password(ScramMechanism::Sha256, b"pencil", &pencil().salt, 4096).unwrap();
        let proof_for = |without_proof: &str, first: &str| {
            let auth = format!("n=user,r=abc,{first},{without_proof}");
            let client_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salted), b"Client Key");
            let stored = digest::digest(&digest::SHA256, client_key.as_ref());
            let sig = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, stored.as_ref()),
                auth.as_bytes(),
            );
            let proof: Vec<u8> = client_key
                .as_ref()
                .iter()
                .zip(sig.as_ref())
                .map(|(k, s)| k ^ s)
                .collect();
            format!("{without_proof},p={}", BASE64.encode(proof))
        };
        for (nonce, ok) in [
            ("abcabcSN", true),
            ("abcSN", true),
            ("abc", false),
            ("xyzabcSN", false),
        ] {
            let (server, first) = ScramServer::first(
                ScramMechanism::Sha256,
                b"n,,n=user,r=abc",
                |_| Some(pencil()),
                "SN",
                SECRET,
            )
            .unwrap();
            let first = String::from_utf8(first).unwrap();
            let message = proof_for(&format!("c=biws,r={nonce}"), &first);
            assert_eq!(server.last(message.as_bytes()).is_ok(), ok, "{nonce}");
        }
    }

    #[test]
    fn malformed_and_oversized_messages_are_refused() {
        let huge = format!("n,,n={},r=abc", "u".repeat(5_000));
        for bad in [
            "",
            "p=tls-unique,,n=user,r=abc",
            "n,,r=abc",
            "n,,n=user",
            "n,,n=,r=abc",
            "n,,n=us=41er,r=abc",
            "n,a=other,n=user,r=abc",
            "n,,n=user,r=abc,ext=1",
            "n,,n=user,r=a c",
            huge.as_str(),
        ] {
            assert!(
                matches!(exchange(bad, true), Err(ScramFailure::Malformed(_))),
                "{bad:.40}"
            );
        }
        assert!(exchange(&format!("n,,n={},r=abc", "u".repeat(1_025)), true).is_err());
        // Escapes decode; an authzid equal to the user is fine.
        let (server, _) = exchange("n,a=us=2Cer,n=us=2Cer,r=abc", true).unwrap();
        assert_eq!(server.user(), "us,er");
        let (server, _) = exchange("n,,n=user,r=abc", true).unwrap();
        for bad in [
            "c=biws,r=abc",
            "c=eSws,r=abc%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=x,p=!!",
        ] {
            let (s, _) = exchange("n,,n=user,r=abc", true).unwrap();
            assert!(s.last(bad.as_bytes()).is_err(), "{bad}");
        }
        drop(server);
    }
}
