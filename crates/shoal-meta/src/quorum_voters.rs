//! `controller.quorum.voters`: the static voter set, Kafka's syntax.
//!
//! `1@host1:9093,2@host2:9093,3@host3:9093` — every controller gets the same string, which is
//! what lets each of them bootstrap the quorum with the same membership (see `node`). Parsing
//! is strict because a typo here splits a cluster: duplicate ids, missing ports, port 0 and
//! negative ids are errors, not warnings.

use std::collections::BTreeMap;

use crate::error::MetaError;

/// Most voters accepted; Raft quorums are 1, 3 or 5 in practice.
pub const MAX_VOTERS: usize = 64;

/// Parses `id@host:port[,id@host:port...]` into node id → `host:port`. IPv6 hosts are written
/// in brackets (`1@[::1]:9093`). Whitespace around entries is ignored.
pub fn parse_quorum_voters(spec: &str) -> Result<BTreeMap<i32, String>, MetaError> {
    let invalid = |why: String| {
        MetaError::Config(format!(
            "controller.quorum.voters '{}' is invalid: {why} (expected \
             id@host:port[,id@host:port...], e.g. 1@127.0.0.1:9093)",
            spec.escape_debug()
        ))
    };
    let mut voters = BTreeMap::new();
    for entry in spec.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(invalid("an entry is empty".to_string()));
        }
        let Some((id, address)) = entry.split_once('@') else {
            return Err(invalid(format!("'{entry}' has no '@'")));
        };
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| invalid(format!("node id '{id}' is not an integer")))?;
        if id < 0 {
            return Err(invalid(format!("node id {id} is negative")));
        }
        let address = address.trim();
        check_address(address).map_err(|why| invalid(format!("node {id}: {why}")))?;
        if voters.insert(id, address.to_string()).is_some() {
            return Err(invalid(format!("node id {id} appears twice")));
        }
        if voters.len() > MAX_VOTERS {
            return Err(invalid(format!("more than {MAX_VOTERS} voters")));
        }
    }
    Ok(voters)
}

/// Formats voters back into the `controller.quorum.voters` syntax.
pub fn format_quorum_voters(voters: &BTreeMap<i32, String>) -> String {
    voters
        .iter()
        .map(|(id, address)| format!("{id}@{address}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks `host:port` (or `[v6]:port`) with a non-empty host and a port in 1..=65535.
fn check_address(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("address '{address}' has no port"));
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && !host.contains(':')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    if !host_ok {
        return Err(format!("host '{host}' is not a host name or IP address"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port '{port}' is not in 1..=65535")),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_syntax() {
        let voters = parse_quorum_voters("1@host1:9093, 2@10.0.0.2:9093 ,3@[::1]:19194").unwrap();
        assert_eq!(
            voters,
            BTreeMap::from([
                (1, "host1:9093".to_string()),
                (2, "10.0.0.2:9093".to_string()),
                (3, "[::1]:19194".to_string()),
            ])
        );
        assert_eq!(
            format_quorum_voters(&voters),
            "1@host1:9093,2@10.0.0.2:9093,3@[::1]:19194"
        );
        assert_eq!(
            parse_quorum_voters("1@127.0.0.1:9093").unwrap(),
            BTreeMap::from([(1, "127.0.0.1:9093".to_string())])
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "1@host:9093,",
            "1host:9093",
            "x@host:9093",
            "-1@host:9093",
            "1@host",
            "1@:9093",
            "1@host:0",
            "1@host:70000",
            "1@host:port",
            "1@::1:9093",
            "1@[nothost]:9093",
            "1@a b:9093",
            "1@h:1,1@h:2",
        ] {
            let err = parse_quorum_voters(bad).expect_err(bad);
            assert!(
                err.to_string().contains("controller.quorum.voters"),
                "{bad}: {err}"
            );
        }
    }
}
