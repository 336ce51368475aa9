//! SCRAM mechanisms and the stored credential (see the crate docs).

use std::fmt;
use std::num::NonZeroU32;

use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// Kafka's bounds on a credential's iteration count (`ScramMechanism.minIterations` /
/// `maxIterations`): fewer is too cheap to brute-force, more is a denial of service on login.
pub const MIN_ITERATIONS: u32 = 4_096;
pub const MAX_ITERATIONS: u32 = 16_384;
/// Length of the salts Shoal makes (random bytes; a client's salt may be any length up to
/// `MAX_SECRET_BYTES`).
pub const SALT_BYTES: usize = 32;
/// Longest salt or key accepted from a client or the metadata log.
const MAX_SECRET_BYTES: usize = 1_024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// Kafka's UNSUPPORTED_SASL_MECHANISM.
    #[error("unknown SCRAM mechanism {0}")]
    UnknownMechanism(String),
    /// Kafka's UNACCEPTABLE_CREDENTIAL.
    #[error("{0}")]
    Unacceptable(String),
}

/// Kafka's `ScramMechanism` (codes as in AlterUserScramCredentials).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    Sha256 = 1,
    Sha512 = 2,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn from_code(code: i8) -> Result<ScramMechanism, ScramError> {
        match code {
            1 => Ok(ScramMechanism::Sha256),
            2 => Ok(ScramMechanism::Sha512),
            other => Err(ScramError::UnknownMechanism(format!("code {other}"))),
        }
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Result<ScramMechanism, ScramError> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ScramError::UnknownMechanism(name.to_owned()))
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    pub(crate) fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    /// Length of the mechanism's keys (its hash's output).
    pub fn key_len(self) -> usize {
        self.digest().output_len()
    }

    pub fn check_iterations(self, iterations: u32) -> Result<(), ScramError> {
        if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            Ok(())
        } else {
            Err(ScramError::Unacceptable(format!(
                "{} iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {iterations}",
                self.name()
            )))
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 5802 `Hi(password, salt, i)`: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, ScramError> {
    mechanism.check_iterations(iterations)?;
    let iterations = NonZeroU32::new(iterations)
        .ok_or_else(|| ScramError::Unacceptable("zero iterations".to_owned()))?;
    let mut out = vec![0u8; mechanism.key_len()];
    pbkdf2::derive(mechanism.pbkdf2(), iterations, salt, password, &mut out);
    Ok(out)
}

/// A fresh random salt of [`SALT_BYTES`].
pub fn new_salt() -> Result<Vec<u8>, ScramError> {
    let mut salt = vec![0u8; SALT_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ScramError::Unacceptable("the system random source failed".to_owned()))?;
    Ok(salt)
}

/// What is stored for one user and mechanism (Kafka's UserScramCredentialRecord).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    /// Never the keys: they are secrets (a stolen StoredKey plus a sniffed exchange logs in).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(mechanism.hmac(), key), data)
        .as_ref()
        .to_vec()
}

impl ScramCredential {
    /// From the `SaltedPassword` a client computed (AlterUserScramCredentials): checks the
    /// iteration count, the salt and the key length.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        mechanism.check_iterations(iterations)?;
        if salt.is_empty() || salt.len() > MAX_SECRET_BYTES {
            return Err(ScramError::Unacceptable(format!(
                "the salt must be 1 to {MAX_SECRET_BYTES} bytes, not {}",
                salt.len()
            )));
        }
        if salted_password.len() != mechanism.key_len() {
            return Err(ScramError::Unacceptable(format!(
                "a {} salted password is {} bytes, not {}",
                mechanism.name(),
                mechanism.key_len(),
                salted_password.len()
            )));
        }
        let client_key = hmac(mechanism, salted_password, b"Client Key");
        let stored_key = digest::digest(mechanism.digest(), &client_key)
            .as_ref()
            .to_vec();
        let server_key = hmac(mechanism, salted_password, b"Server Key");
        Ok(ScramCredential {
            mechanism,
            salt,
            stored_key,
            server_key,
            iterations,
        })
    }

    /// From a password (`kafka-storage format --add-scram`, shoalctl), with a fresh salt.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<ScramCredential, ScramError> {
        let salt = new_salt()?;
        let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations)?;
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// Whether the stored values are well-formed (from the metadata log: never trusted blind).
    pub fn validate(&self) -> Result<(), ScramError> {
        self.mechanism.check_iterations(self.iterations)?;
        let len = self.mechanism.key_len();
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(ScramError::Unacceptable(format!(
                "{} keys are {len} bytes",
                self.mechanism.name()
            )));
        }
        if self.salt.is_empty() || self.salt.len() > MAX_SECRET_BYTES {
            return Err(ScramError::Unacceptable("bad salt length".to_owned()));
        }
        Ok(())
    }

    /// Whether `password` is this credential's (a PLAIN login): derives its StoredKey and
    /// compares in constant time.
    pub fn verifies(&self, password: &[u8]) -> bool {
        let Ok(salted) = salted_password(self.mechanism, password, &self.salt, self.iterations)
        else {
            return false;
        };
        let client_key = hmac(self.mechanism, &salted, b"Client Key");
        let stored_key = digest::digest(self.mechanism.digest(), &client_key);
        constant_time_eq(stored_key.as_ref(), &self.stored_key)
    }
}

/// Equality without an early exit (the lengths are public: the mechanism's).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 7677 section 3's example: user "user", password "pencil", salt
    /// base64 "W22ZaJ0SNY7soEsUEjb6gQ==", 4096 iterations. Its ClientProof and ServerSignature
    /// follow from these keys (checked with the exchange); here the derivation itself, against
    /// values computed independently (Python's hashlib.pbkdf2_hmac/hmac).
    #[test]
    fn derivation_matches_independent_values() {
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096).unwrap();
        assert_eq!(
            hex(&salted),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
        let c = ScramCredential::from_salted_password(
            ScramMechanism::Sha256,
            salt.to_vec(),
            &salted,
            4096,
        )
        .unwrap();
        assert_eq!(
            hex(&c.stored_key),
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert!(c.verifies(b"pencil"));
        assert!(!c.verifies(b"pencil "));
        assert!(!c.verifies(b""));
    }

    #[test]
    fn bounds_are_kafkas() {
        let m = ScramMechanism::Sha512;
        assert!(salted_password(m, b"p", b"s", 4095).is_err());
        assert!(salted_password(m, b"p", b"s", 16_385).is_err());
        let salted = salted_password(m, b"p", b"s", 4096).unwrap();
        assert_eq!(salted.len(), 64);
        assert!(ScramCredential::from_salted_password(m, vec![], &salted, 4096).is_err());
        assert!(
            ScramCredential::from_salted_password(m, b"s".to_vec(), &salted[..32], 4096).is_err()
        );
        let c = ScramCredential::from_password(m, "secret", 4096).unwrap();
        assert_eq!(c.salt.len(), SALT_BYTES);
        assert!(c.validate().is_ok() && c.verifies(b"secret"));
        assert!(
            !format!("{c:?}").contains("stored_key"),
            "keys never in logs"
        );
        assert_eq!(ScramMechanism::from_name("scram-sha-512").unwrap(), m);
        assert!(ScramMechanism::from_name("PLAIN").is_err());
        assert!(ScramMechanism::from_code(3).is_err());
    }
}
