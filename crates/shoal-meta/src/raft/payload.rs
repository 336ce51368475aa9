//! The payload versions of the Raft RPCs (see `proto/controller.proto`, section 1).
//!
//! Version 1: AppendEntries is `AppendEntriesPayload` whose entries are the versioned entry
//! bytes ([`crate::format::encode_entry`]); Vote and InstallSnapshot are openraft's serde_json
//! (they carry no metadata records). Version 0 (releases before versioning) is serde_json of
//! every openraft request; it is read, never written.

use openraft::raft::AppendEntriesRequest;
use prost::Message;
use serde::de::DeserializeOwned;

use crate::format::proto::AppendEntriesPayload;
use crate::format::{FormatError, decode_entry, decode_log_id, encode_entry, encode_log_id};
use crate::raft::types::TypeConfig;

/// The payload version this binary sends.
pub const RAFT_PAYLOAD_VERSION: u32 = 1;
/// The oldest payload version this binary reads.
pub const MIN_RAFT_PAYLOAD_VERSION: u32 = 0;

const WHAT: &str = "AppendEntries payload";

/// Refuses a payload version this binary does not read.
pub fn check_version(version: u32) -> Result<(), FormatError> {
    FormatError::check_version(
        "Raft RPC payload",
        version,
        MIN_RAFT_PAYLOAD_VERSION,
        RAFT_PAYLOAD_VERSION,
    )
}

pub fn encode_append_entries(
    rpc: &AppendEntriesRequest<TypeConfig>,
) -> Result<Vec<u8>, FormatError> {
    let message = AppendEntriesPayload {
        vote_json: serde_json::to_vec(&rpc.vote)
            .map_err(|e| FormatError::malformed(WHAT, e.to_string()))?,
        prev_log_id: rpc.prev_log_id.as_ref().map(encode_log_id),
        leader_commit: rpc.leader_commit.as_ref().map(encode_log_id),
        entries: rpc
            .entries
            .iter()
            .map(encode_entry)
            .collect::<Result<_, _>>()?,
    };
    Ok(message.encode_to_vec())
}

pub fn decode_append_entries(
    version: u32,
    bytes: &[u8],
) -> Result<AppendEntriesRequest<TypeConfig>, FormatError> {
    check_version(version)?;
    if version == 0 {
        return decode_json(bytes);
    }
    let m = AppendEntriesPayload::decode(bytes)
        .map_err(|e| FormatError::malformed(WHAT, e.to_string()))?;
    Ok(AppendEntriesRequest {
        vote: serde_json::from_slice(&m.vote_json)
            .map_err(|e| FormatError::malformed(WHAT, format!("vote: {e}")))?,
        prev_log_id: m.prev_log_id.as_ref().map(decode_log_id),
        leader_commit: m.leader_commit.as_ref().map(decode_log_id),
        entries: m
            .entries
            .iter()
            .map(|bytes| decode_entry(bytes))
            .collect::<Result<_, _>>()?,
    })
}

/// Vote / InstallSnapshot requests and every reply: openraft's serde_json in all versions.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FormatError> {
    serde_json::from_slice(bytes)
        .map_err(|e| FormatError::malformed("Raft RPC payload", e.to_string()))
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    use super::*;
    use crate::records::MetadataRecord;

    fn request() -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 2),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 2), 9)),
            leader_commit: Some(LogId::new(CommittedLeaderId::new(2, 1), 8)),
            entries: vec![
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(3, 2), 10),
                    payload: EntryPayload::Blank,
                },
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(3, 2), 11),
                    payload: EntryPayload::Normal(vec![MetadataRecord::ProducerIds {
                        next_producer_id_block_start: 7,
                    }]),
                },
            ],
        }
    }

    fn same(a: &AppendEntriesRequest<TypeConfig>, b: &AppendEntriesRequest<TypeConfig>) {
        assert_eq!(a.vote, b.vote);
        assert_eq!(a.prev_log_id, b.prev_log_id);
        assert_eq!(a.leader_commit, b.leader_commit);
        assert_eq!(a.entries, b.entries);
    }

    #[test]
    fn append_entries_round_trips_in_both_versions() {
        let rpc = request();
        let v1 = encode_append_entries(&rpc).unwrap();
        same(&decode_append_entries(1, &v1).unwrap(), &rpc);
        let legacy = serde_json::to_vec(&rpc).unwrap();
        same(&decode_append_entries(0, &legacy).unwrap(), &rpc);
    }

    #[test]
    fn a_newer_payload_version_is_refused_by_name() {
        let v1 = encode_append_entries(&request()).unwrap();
        let err = decode_append_entries(2, &v1).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("Raft RPC payload version 2") && message.contains("0 to 1"),
            "{message}"
        );
    }
}
