//! SASL/PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one message. Shoal verifies
//! the password against the user's SCRAM credential (no second credential store), so a PLAIN
//! user is a SCRAM user; PLAIN sends the password itself, so enable it only under TLS.

use crate::credential::{ScramCredential, ScramMechanism};

/// Longest PLAIN message accepted.
pub const MAX_PLAIN_MESSAGE_BYTES: usize = 4_096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainFailure {
    #[error("malformed PLAIN message: {0}")]
    Malformed(&'static str),
    #[error("authentication failed: invalid credentials for {user:?}")]
    BadPassword { user: String },
}

/// Checks a PLAIN message; returns the authenticated user. `lookup` gives the user's
/// credential for a mechanism. Every outcome costs one password derivation (an unknown user
/// too, against a decoy), so timing does not tell users apart.
pub fn authenticate_plain(
    message: &[u8],
    lookup: impl Fn(&str, ScramMechanism) -> Option<ScramCredential>,
) -> Result<String, PlainFailure> {
    if message.len() > MAX_PLAIN_MESSAGE_BYTES {
        return Err(PlainFailure::Malformed("message too long"));
    }
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainFailure::Malformed(
            "expected authzid NUL user NUL password",
        ));
    };
    let user = std::str::from_utf8(user).map_err(|_| PlainFailure::Malformed("user not UTF-8"))?;
    if user.is_empty() || password.is_empty() {
        return Err(PlainFailure::Malformed("empty user or password"));
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(PlainFailure::Malformed(
            "an authorization id other than the user",
        ));
    }
    let credential = ScramMechanism::ALL
        .into_iter()
        .find_map(|m| lookup(user, m));
    let verified = match &credential {
        Some(c) => c.verifies(password),
        None => {
            // Same work as a real check, then fail.
            let _ = crate::credential::salted_password(
                ScramMechanism::Sha256,
                password,
                user.as_bytes(),
                crate::credential::MIN_ITERATIONS,
            );
            false
        }
    };
    if verified {
        Ok(user.to_owned())
    } else {
        Err(PlainFailure::BadPassword {
            user: user.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_checks_the_password_against_the_scram_credential() {
        let alice = ScramCredential::from_password(ScramMechanism::Sha512, "s3cret", 4096).unwrap();
        let lookup = |u: &str, m: ScramMechanism| {
            (u == "alice" && m == ScramMechanism::Sha512).then(|| alice.clone())
        };
        assert_eq!(
            authenticate_plain(b"\0alice\0s3cret", lookup).unwrap(),
            "alice"
        );
        assert_eq!(
            authenticate_plain(b"alice\0alice\0s3cret", lookup).unwrap(),
            "alice"
        );
        for (message, bad_password) in [
            (&b"\0alice\0wrong"[..], true),
            (b"\0bob\0s3cret", true),
            (b"bob\0alice\0s3cret", false),
            (b"\0alice", false),
            (b"\0alice\0s3cret\0more", false),
            (b"\0\0s3cret", false),
            (b"\0alice\0", false),
            (b"\0\xff\0pw", false),
        ] {
            let err = authenticate_plain(message, lookup).unwrap_err();
            assert_eq!(
                matches!(err, PlainFailure::BadPassword { .. }),
                bad_password,
                "{message:?}"
            );
        }
        assert!(authenticate_plain(&vec![b'a'; 5_000], lookup).is_err());
    }
}
