//! The admin listener's bearer token (`admin.listener.token.file`).
//!
//! `/metrics` and `/v1/*` tell an attacker the cluster's shape, its topics, lag and brokers; with
//! a token file configured they answer only requests carrying `Authorization: Bearer <token>`
//! (what Prometheus' `authorization` scrape setting sends). `/healthz` and `/readyz` stay open:
//! orchestrators probe them without credentials, and they reveal nothing. The token lives in a
//! file, not in a setting, so it never shows in process arguments or DescribeConfigs; it is
//! compared in constant time.

use std::path::Path;

use anyhow::{Context as _, bail};
use subtle::ConstantTimeEq;

/// A token file larger than this is not a token.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Shorter tokens are guessable.
const MIN_TOKEN_BYTES: usize = 16;

#[derive(Clone)]
pub struct AdminToken(Vec<u8>);

impl AdminToken {
    /// Reads the token (surrounding whitespace trimmed) from `path`.
    pub fn load(path: &Path) -> anyhow::Result<AdminToken> {
        let what = || format!("admin.listener.token.file {}", path.display());
        let size = std::fs::metadata(path).with_context(what)?.len();
        if size > MAX_TOKEN_FILE_BYTES {
            bail!(
                "{}: {size} bytes is not a token (at most {MAX_TOKEN_FILE_BYTES})",
                what()
            );
        }
        let text = std::fs::read_to_string(path).with_context(what)?;
        let token = text.trim();
        if token.len() < MIN_TOKEN_BYTES || token.chars().any(char::is_whitespace) {
            bail!(
                "{}: the token must be at least {MIN_TOKEN_BYTES} characters without spaces \
                 (e.g. `openssl rand -hex 32`)",
                what()
            );
        }
        Ok(AdminToken(token.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        bool::from(presented.ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn admits_only_the_bearer_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  0123456789abcdef0123\n").unwrap();
        let token = AdminToken::load(&path).unwrap();
        for (header, admitted) in [
            (Some(&b"Bearer 0123456789abcdef0123"[..]), true),
            (Some(b"bearer 0123456789abcdef0123"), true),
            (Some(b"Bearer 0123456789abcdef012"), false),
            (Some(b"Bearer 0123456789abcdef01234"), false),
            (Some(b"Basic 0123456789abcdef0123"), false),
            (Some(b"0123456789abcdef0123"), false),
            (Some(b"Bearer "), false),
            (None, false),
        ] {
            assert_eq!(token.admits(header), admitted, "{header:?}");
        }
    }

    #[test]
    fn refuses_files_that_are_not_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        for contents in ["short", "has a space in the middle!!", ""] {
            std::fs::write(&path, contents).unwrap();
            assert!(AdminToken::load(&path).is_err(), "{contents:?}");
        }
        std::fs::write(&path, vec![b'a'; 5000]).unwrap();
        assert!(AdminToken::load(&path).is_err());
        assert!(AdminToken::load(&dir.path().join("missing")).is_err());
    }
}
