//! openraft-owned values (vote, committed and purged log ids, snapshot meta) ⇄ bytes:
//! `[MAGIC, frame version 1] + serde_json`, or legacy JSON without the header.
//!
//! **Why JSON inside.** These are openraft's types: openraft defines and evolves them (and
//! would have to change its own serde shape to break them, which the legacy fixtures would
//! catch). Copying them into protobuf would duplicate openraft's schema for no gain; the
//! versioned header lets a later release change that decision and still be told apart.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::format::{FormatError, Framed, MAGIC, split_header};

/// The frame version written for openraft-owned values.
pub const STATE_FRAME_VERSION: u8 = 1;

pub fn encode_state<T: Serialize>(value: &T) -> Result<Vec<u8>, FormatError> {
    let mut bytes = vec![MAGIC, STATE_FRAME_VERSION];
    serde_json::to_writer(&mut bytes, value)
        .map_err(|e| FormatError::malformed("Raft state value", e.to_string()))?;
    Ok(bytes)
}

/// `what` names the value in errors (e.g. "vote").
pub fn decode_state<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, FormatError> {
    let json = match split_header(what, bytes)? {
        Framed::LegacyJson(json) => json,
        Framed::Versioned { version, body } => {
            FormatError::check_version(
                format!("{what} frame"),
                u32::from(version),
                1,
                u32::from(STATE_FRAME_VERSION),
            )?;
            body
        }
    };
    serde_json::from_slice(json).map_err(|e| FormatError::malformed(what, e.to_string()))
}
