//! A controller voter is a node id *and* a metadata directory (KIP-853's voter key).
//!
//! **Why.** Raft's safety rests on two promises of every voter: it votes at most once per term,
//! and it never forgets an entry it acknowledged. A node whose disk was wiped or replaced keeps
//! its id but breaks both: with an empty log it would grant its vote to a stale candidate and
//! help elect a leader that lacks committed metadata. Its directory id (`meta.properties`
//! `directory.id`, new whenever the directory is created) tells the two apart.
//!
//! **How.** Once a voter's directory id is committed (`VoterDirectory` records, recorded by the
//! active controller the first time it hears from each voter, from `metadata.version` 5):
//! - every Vote request names the directory id its sender knows for the addressee, and a node
//!   refuses a Vote addressed to another directory than its own ([`vote_refusal`]), so a
//!   candidate never counts the vote of a wiped voter. As in KIP-853, the check is on the
//!   granting side: the candidate's view of the voters decides whose votes count, and a voter
//!   with a stale view can still vote for a legitimate candidate;
//! - every reply names the responder's directory, and a reply from another directory than the
//!   recorded one does not count ([`reply_refusal`]): a wiped voter also forgot its term, and
//!   would acknowledge the entries of a stale leader (one that resumed its old term after a
//!   restart) and let it commit over entries the cluster had committed without it;
//! - a node that sees its own id recorded with another directory stops standing for election
//!   ([`standing`]). `shoalctl cluster quorum add-voter` records its new directory; that needs
//!   no catch-up first: the record commits on a majority of the *other* voters (the wiped
//!   one's acknowledgements do not count), so every majority of the new voter set holds one
//!   of them, with every entry committed before the record. It then catches up as any voter.
//!
//! A voter whose directory was never recorded (wiped before the first record committed) is not
//! protected, exactly as Kafka's static `controller.quorum.voters` (kraft.version 0) is not.

use std::collections::BTreeMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::meta_properties::format_directory_id;

/// Directory ids the voters reported in their Raft replies to this node (the leader learns
/// every voter's from its AppendEntries replies).
#[derive(Debug, Default)]
pub struct ObservedDirectories {
    by_node: Mutex<BTreeMap<i32, Uuid>>,
}

impl ObservedDirectories {
    pub fn record(&self, node_id: i32, directory_id: Uuid) {
        let mut by_node = self.by_node.lock().unwrap_or_else(|e| e.into_inner());
        let previous = by_node.insert(node_id, directory_id);
        if previous.is_some_and(|p| p != directory_id) {
            tracing::warn!(
                node_id,
                directory_id = %format_directory_id(directory_id),
                previous = %previous.map(format_directory_id).unwrap_or_default(),
                "controller voter reports a new metadata directory id: its disk was wiped or \
                 replaced"
            );
        }
    }

    pub fn get(&self, node_id: i32) -> Option<Uuid> {
        self.by_node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node_id)
            .copied()
    }

    pub fn all(&self) -> BTreeMap<i32, Uuid> {
        self.by_node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Why this node refuses a Vote addressed to directory `expected`, if it does: a candidate that
/// knows this voter by another directory is asking the node whose log was lost.
pub fn vote_refusal(own: Uuid, expected: Option<Uuid>) -> Option<String> {
    match expected {
        Some(expected) if expected != own => Some(format!(
            "this node's metadata directory is {}, but the candidate knows this voter as \
             directory {}: the directory was wiped or replaced, so this node's vote does not \
             count until `shoalctl cluster quorum add-voter` names the new directory",
            format_directory_id(own),
            format_directory_id(expected)
        )),
        _ => None,
    }
}

/// Why an answer from directory `replied` does not count for a voter recorded with `expected`,
/// if it does not: a wiped voter forgot its term and its log, so its acknowledgement could
/// help a stale leader commit over entries the cluster already committed.
pub fn reply_refusal(expected: Option<Uuid>, replied: Option<Uuid>) -> Option<String> {
    match (expected, replied) {
        (Some(expected), Some(replied)) if expected != replied => Some(format!(
            "answered from metadata directory {}, but the voter is recorded with {}: its disk was \
             wiped or replaced, so its answers do not count until `shoalctl cluster quorum \
             add-voter` names the new directory",
            format_directory_id(replied),
            format_directory_id(expected)
        )),
        _ => None,
    }
}

/// Whether this node may stand for election, from the committed voter directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its directory is the recorded one.
    Voter,
    /// No directory recorded for it yet (before the first record, or below metadata.version 5).
    Unrecorded,
    /// Its id is recorded with another directory: its disk was wiped or replaced.
    Replaced { recorded: Uuid },
}

impl Standing {
    pub fn may_campaign(self) -> bool {
        !matches!(self, Standing::Replaced { .. })
    }
}

pub fn standing(recorded: &BTreeMap<i32, Uuid>, node_id: i32, own: Uuid) -> Standing {
    match recorded.get(&node_id) {
        None => Standing::Unrecorded,
        Some(d) if *d == own => Standing::Voter,
        Some(d) => Standing::Replaced { recorded: *d },
    }
}

/// A directory id on the wire: 16 bytes, or empty when unknown. Anything else is garbage.
pub fn from_wire(bytes: &[u8]) -> Result<Option<Uuid>, String> {
    match bytes.len() {
        0 => Ok(None),
        16 => Ok(Uuid::from_slice(bytes).ok()),
        n => Err(format!("a directory id is 16 bytes, got {n}")),
    }
}

pub fn to_wire(id: Option<Uuid>) -> Vec<u8> {
    id.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);

    #[test]
    fn a_vote_for_another_directory_is_refused() {
        let cases = [(A, None, false), (A, Some(A), false), (A, Some(B), true)];
        for (own, expected, refused) in cases {
            assert_eq!(
                vote_refusal(own, expected).is_some(),
                refused,
                "{own} {expected:?}"
            );
        }
    }

    #[test]
    fn an_answer_from_another_directory_does_not_count() {
        let cases = [
            (None, None, false),
            (None, Some(A), false),
            (Some(A), None, false),
            (Some(A), Some(A), false),
            (Some(A), Some(B), true),
        ];
        for (expected, replied, refused) in cases {
            assert_eq!(
                reply_refusal(expected, replied).is_some(),
                refused,
                "{expected:?} {replied:?}"
            );
        }
    }

    #[test]
    fn a_replaced_voter_does_not_campaign() {
        let recorded = BTreeMap::from([(1, A), (2, B)]);
        assert_eq!(standing(&recorded, 1, A), Standing::Voter);
        assert_eq!(standing(&recorded, 3, A), Standing::Unrecorded);
        assert_eq!(
            standing(&recorded, 2, A),
            Standing::Replaced { recorded: B }
        );
        assert!(Standing::Voter.may_campaign());
        assert!(Standing::Unrecorded.may_campaign());
        assert!(!Standing::Replaced { recorded: B }.may_campaign());
    }

    #[test]
    fn wire_ids_are_checked() {
        assert_eq!(from_wire(&[]), Ok(None));
        assert_eq!(from_wire(A.as_bytes()), Ok(Some(A)));
        assert!(from_wire(&[1, 2, 3]).is_err());
        assert_eq!(from_wire(&to_wire(Some(B))), Ok(Some(B)));
        assert!(to_wire(None).is_empty());
    }

    #[test]
    fn observations_keep_the_latest_directory() {
        let observed = ObservedDirectories::default();
        assert_eq!(observed.get(2), None);
        observed.record(2, A);
        observed.record(2, B);
        assert_eq!(observed.get(2), Some(B));
        assert_eq!(observed.all(), BTreeMap::from([(2, B)]));
    }
}
