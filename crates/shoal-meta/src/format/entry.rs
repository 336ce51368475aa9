//! openraft entries ⇄ bytes: `[MAGIC, frame version 1] + RaftEntry`, or legacy JSON.
//!
//! The same bytes are stored in sled's `raft_log` tree and sent inside AppendEntries, so a
//! follower stores exactly what the leader wrote. The entry's records are versioned records;
//! a membership change stays openraft's serde_json (openraft owns and evolves that type; its
//! serde shape is pinned by the `entry_membership` fixtures).

use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

use crate::format::proto::{self, raft_entry};
use crate::format::records::{decode_batch, encode_batch};
use crate::format::{FormatError, Framed, decode_message, required, split_header, with_header};
use crate::raft::types::{MetaEntry, MetaLogId, TypeConfig};

/// The frame version written for entries; versions `1..=ENTRY_FRAME_VERSION` are read.
pub const ENTRY_FRAME_VERSION: u8 = 1;

const WHAT: &str = "Raft log entry";

pub fn encode_log_id(log_id: &MetaLogId) -> proto::LogId {
    proto::LogId {
        term: log_id.leader_id.term,
        leader_node_id: log_id.leader_id.node_id,
        index: log_id.index,
    }
}

pub fn decode_log_id(log_id: &proto::LogId) -> MetaLogId {
    LogId::new(
        CommittedLeaderId::new(log_id.term, log_id.leader_node_id),
        log_id.index,
    )
}

/// The `RaftEntry` message of an entry (without header).
pub fn encode_entry_message(entry: &MetaEntry) -> Result<proto::RaftEntry, FormatError> {
    let payload = match &entry.payload {
        EntryPayload::Blank => raft_entry::Payload::Blank(proto::BlankPayload {}),
        EntryPayload::Normal(batch) => raft_entry::Payload::Records(encode_batch(batch)),
        EntryPayload::Membership(membership) => raft_entry::Payload::MembershipJson(
            serde_json::to_vec(membership)
                .map_err(|e| FormatError::malformed("membership", e.to_string()))?,
        ),
    };
    Ok(proto::RaftEntry {
        log_id: Some(encode_log_id(&entry.log_id)),
        payload: Some(payload),
    })
}

/// An entry in the current format.
pub fn encode_entry(entry: &MetaEntry) -> Result<Vec<u8>, FormatError> {
    Ok(with_header(
        ENTRY_FRAME_VERSION,
        &encode_entry_message(entry)?,
    ))
}

/// An entry in any format this binary reads (see the module docs).
pub fn decode_entry(bytes: &[u8]) -> Result<MetaEntry, FormatError> {
    match split_header(WHAT, bytes)? {
        Framed::LegacyJson(json) => serde_json::from_slice::<Entry<TypeConfig>>(json)
            .map_err(|e| FormatError::malformed("legacy JSON Raft log entry", e.to_string())),
        Framed::Versioned { version, body } => {
            FormatError::check_version(
                "Raft log entry frame",
                u32::from(version),
                1,
                u32::from(ENTRY_FRAME_VERSION),
            )?;
            let m: proto::RaftEntry = decode_message(WHAT, body)?;
            let log_id = decode_log_id(&required(WHAT, "log_id", m.log_id)?);
            let payload = match required(WHAT, "payload", m.payload)? {
                raft_entry::Payload::Blank(_) => EntryPayload::Blank,
                raft_entry::Payload::Records(batch) => EntryPayload::Normal(decode_batch(&batch)?),
                raft_entry::Payload::MembershipJson(json) => EntryPayload::Membership(
                    serde_json::from_slice(&json)
                        .map_err(|e| FormatError::malformed("membership", e.to_string()))?,
                ),
            };
            Ok(Entry { log_id, payload })
        }
    }
}
