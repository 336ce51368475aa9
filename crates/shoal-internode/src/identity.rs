//! Who is on the other end of a node link, and whether it may speak for the node it names.
//!
//! A node's certificate names its node id in the subject's common name, `CN=node-<id>` (other
//! attributes may follow), or — when `ssl.principal.mapping.rules` rewrites subjects — in the
//! principal `node-<id>` a rule makes. One fixed form keeps the binding auditable: the CA that
//! signs `CN=node-3` decides who is node 3.

use std::net::SocketAddr;

use tonic::Status;

/// The common-name prefix of a node certificate.
pub const NODE_NAME_PREFIX: &str = "node-";

/// The peer of one accepted connection, attached to every request that arrives on it.
#[derive(Clone, Debug, Default)]
pub struct NodePeer {
    pub remote_addr: Option<SocketAddr>,
    /// Present on TLS links (the handshake verified it against the cluster CA).
    pub certificate: Option<PeerCertificate>,
}

/// A verified peer certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject mapped by the listener's `ssl.principal.mapping.rules`.
    pub principal: String,
    /// The node the certificate names, if any (an operator's certificate names none).
    pub node_id: Option<i32>,
}

/// The node id a certificate principal names: `node-<id>` itself, or a subject whose only
/// common name is `node-<id>`.
pub fn node_id_of(principal: &str) -> Option<i32> {
    if let Some(id) = parse_node_name(principal) {
        return Some(id);
    }
    let mut common_names = split_unescaped(principal, &[',', '+'])
        .into_iter()
        .filter_map(|attribute| attribute.trim().strip_prefix("CN="));
    let first = common_names.next()?;
    if common_names.next().is_some() {
        return None;
    }
    parse_node_name(first)
}

fn parse_node_name(name: &str) -> Option<i32> {
    let digits = name.strip_prefix(NODE_NAME_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse::<i32>().ok()
}

/// Splits RFC 2253 text at separators not escaped with a backslash.
fn split_unescaped<'a>(text: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if separators.contains(&c) {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Whether the peer that sent a request (its connection's [`NodePeer`] in `extensions`) may
/// speak for node `claimed`; see [`NodePeer::may_speak_for`]. A call from inside the process
/// carries no peer.
#[allow(
    clippy::result_large_err,
    reason = "tonic's Status is what handlers return"
)]
pub fn check_claim(extensions: &tonic::Extensions, claimed: i32) -> Result<(), Status> {
    match extensions.get::<NodePeer>() {
        Some(peer) => peer.may_speak_for(claimed),
        None => Ok(()),
    }
}

impl NodePeer {
    /// On a TLS link the certificate must name node `claimed`; on a plaintext link there is no
    /// certificate to check and the caller's membership checks are all there is.
    #[allow(
        clippy::result_large_err,
        reason = "tonic's Status is what handlers return"
    )]
    pub fn may_speak_for(&self, claimed: i32) -> Result<(), Status> {
        let Some(certificate) = &self.certificate else {
            return Ok(());
        };
        match certificate.node_id {
            Some(id) if id == claimed => Ok(()),
            named => {
                tracing::warn!(
                    principal = %certificate.principal,
                    certificate_node_id = ?named,
                    claimed,
                    remote = ?self.remote_addr,
                    "refused a node request: its certificate does not name the node it speaks for"
                );
                shoal_metrics::record_internode_refusal("node_id_mismatch");
                Err(Status::permission_denied(match named {
                    Some(id) => format!(
                        "the certificate of {} is node {id}'s; it may not speak for node {claimed}",
                        certificate.principal
                    ),
                    None => format!(
                        "the certificate of {} names no node (CN=node-<id>); it may not speak \
                         for node {claimed}",
                        certificate.principal
                    ),
                }))
            }
        }
    }
}

/// An error with its causes, `: `-joined (tonic's transport errors say little at the top).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_come_from_the_common_name_or_a_mapped_principal() {
        let cases: &[(&str, Option<i32>)] = &[
            ("node-1", Some(1)),
            ("node-42", Some(42)),
            ("CN=node-3", Some(3)),
            ("CN=node-3,O=shoal,C=DE", Some(3)),
            ("O=shoal,CN=node-7", Some(7)),
            ("CN=node-3+OU=ops,O=shoal", Some(3)),
            // Not node names.
            ("CN=admin,O=shoal", None),
            ("node-", None),
            ("node-x", None),
            ("node--1", None),
            ("node-01", None),
            ("node-99999999999", None),
            ("CN=node-1x", None),
            ("CN=mynode-1", None),
            ("OU=node-1", None),
            // An escaped comma is part of the value, not a separator.
            ("CN=node-1\\,CN=node-2", None),
            // Two common names: ambiguous, no node.
            ("CN=node-1,CN=node-2", None),
            ("", None),
        ];
        for (principal, expected) in cases {
            assert_eq!(node_id_of(principal), *expected, "{principal:?}");
        }
    }

    fn with_peer(certificate: Option<PeerCertificate>) -> tonic::Extensions {
        let mut extensions = tonic::Extensions::new();
        extensions.insert(NodePeer {
            remote_addr: None,
            certificate,
        });
        extensions
    }

    #[test]
    fn a_certificate_speaks_only_for_the_node_it_names() {
        let node = |id: Option<i32>| {
            Some(PeerCertificate {
                principal: "CN=x".into(),
                node_id: id,
            })
        };
        assert!(check_claim(&with_peer(node(Some(2))), 2).is_ok());
        let other = check_claim(&with_peer(node(Some(2))), 3).unwrap_err();
        assert_eq!(other.code(), tonic::Code::PermissionDenied);
        assert!(other.message().contains("node 2's"), "{}", other.message());
        let none = check_claim(&with_peer(node(None)), 3).unwrap_err();
        assert_eq!(none.code(), tonic::Code::PermissionDenied);
        assert!(
            none.message().contains("names no node"),
            "{}",
            none.message()
        );
        // Plaintext links and in-process calls carry no certificate.
        assert!(check_claim(&with_peer(None), 3).is_ok());
        assert!(check_claim(&tonic::Extensions::new(), 3).is_ok());
    }
}
