//! `VoterBook`: where this node finds the controller voters, now that they can change.
//!
//! **Why one shared book.** With a static quorum the voter list was a constant every part of
//! the node copied at start. KIP-853 makes it change at run time (AddRaftVoter,
//! RemoveRaftVoter), so every user of it (forwarding controller requests, following the
//! metadata log, the controller's own checks, DescribeQuorum) reads one book that follows the
//! quorum: a controller updates it from its own Raft membership, a broker-only node from
//! every metadata fetch reply (the serving voter names the voters it knows).
//!
//! It starts from configuration: `controller.quorum.voters`, or what the
//! `controller.quorum.bootstrap.servers` said. A configured address wins over a learnt one for
//! the same id, so an operator who moves a static voter to another host still edits only the
//! voter list, as before; voters added later are reached at the address they were added with.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::quorum_voters::MAX_VOTERS;

/// The voters this node knows: node id → controller `host:port`.
#[derive(Debug, Default)]
pub struct VoterBook {
    /// What the configuration said (may be empty: a node that joined through bootstrap servers).
    configured: BTreeMap<i32, String>,
    current: RwLock<BTreeMap<i32, String>>,
}

impl VoterBook {
    /// A book that starts with `configured`.
    pub fn new(configured: BTreeMap<i32, String>) -> Self {
        VoterBook {
            current: RwLock::new(configured.clone()),
            configured,
        }
    }

    /// The voters now.
    pub fn voters(&self) -> BTreeMap<i32, String> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The voter ids now, ascending.
    pub fn ids(&self) -> Vec<i32> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// `id`'s controller address, if `id` is a voter.
    pub fn address(&self, id: i32) -> Option<String> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn contains(&self, id: i32) -> bool {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&id)
    }

    /// Replaces the voters with what the quorum says (`learnt`: id → address). An empty or
    /// oversized set is ignored: a quorum always has a voter, and a peer naming more than
    /// [`MAX_VOTERS`] is not to be believed. Returns whether anything changed.
    pub fn update(&self, learnt: &BTreeMap<i32, String>) -> bool {
        if learnt.is_empty() || learnt.len() > MAX_VOTERS {
            return false;
        }
        let next = merge(&self.configured, learnt);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if *current == next {
            return false;
        }
        tracing::info!(
            before = %crate::quorum_voters::format_quorum_voters(&current),
            after = %crate::quorum_voters::format_quorum_voters(&next),
            "the controller voters changed"
        );
        *current = next;
        true
    }
}

/// The learnt voters, each at its configured address when it has one.
fn merge(
    configured: &BTreeMap<i32, String>,
    learnt: &BTreeMap<i32, String>,
) -> BTreeMap<i32, String> {
    learnt
        .iter()
        .map(|(id, address)| (*id, configured.get(id).unwrap_or(address).clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(list: &[(i32, &str)]) -> BTreeMap<i32, String> {
        list.iter().map(|(id, a)| (*id, a.to_string())).collect()
    }

    #[test]
    fn the_book_follows_the_quorum_with_configured_addresses_first() {
        let book = VoterBook::new(voters(&[(1, "h1:9093"), (2, "h2:9093"), (3, "h3:9093")]));
        assert_eq!(book.ids(), vec![1, 2, 3]);
        // Node 7 added, node 3 removed; node 1's stored address is older than its config.
        assert!(book.update(&voters(&[(1, "old:9093"), (2, "h2:9093"), (7, "h7:9093")])));
        assert_eq!(
            book.voters(),
            voters(&[(1, "h1:9093"), (2, "h2:9093"), (7, "h7:9093")])
        );
        assert_eq!(book.address(7).as_deref(), Some("h7:9093"));
        assert!(!book.contains(3));
        // The same set again changes nothing; an empty one is not believed.
        assert!(!book.update(&voters(&[(1, "x:1"), (2, "h2:9093"), (7, "h7:9093")])));
        assert!(!book.update(&BTreeMap::new()));
        let too_many: BTreeMap<i32, String> = (0..=MAX_VOTERS as i32)
            .map(|id| (id, format!("h{id}:9093")))
            .collect();
        assert!(!book.update(&too_many));
        assert_eq!(book.ids(), vec![1, 2, 7]);
    }

    #[test]
    fn a_joining_node_starts_from_what_bootstrap_said() {
        let book = VoterBook::new(BTreeMap::new());
        assert!(book.ids().is_empty());
        assert!(book.update(&voters(&[(1, "h1:9093")])));
        assert_eq!(book.ids(), vec![1]);
    }
}
