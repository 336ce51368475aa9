//! Kafka-style listener lists: `NAME://host:port,NAME2://host:port`.
//!
//! Named listeners let a container bind one address and advertise another per network, which is
//! how the compose cluster serves both the host and the container network.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// The socket address to bind. An empty host means all interfaces, as in Kafka.
    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        (host, self.port)
            .to_socket_addrs()
            .with_context(|| {
                format!(
                    "cannot resolve listener {}://{}:{}",
                    self.name, host, self.port
                )
            })?
            .next()
            .with_context(|| format!("listener {} resolves to no address", self.name))
    }
}

pub fn parse_listeners(spec: &str) -> anyhow::Result<Vec<Listener>> {
    let mut listeners: Vec<Listener> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, address) = part
            .split_once("://")
            .with_context(|| format!("listener {part:?} must look like NAME://host:port"))?;
        let (host, port) = address
            .rsplit_once(':')
            .with_context(|| format!("listener {part:?} has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .with_context(|| format!("listener {part:?} has a bad port"))?;
        if name.is_empty() {
            bail!("listener {part:?} has no name");
        }
        if listeners.iter().any(|l| l.name == name) {
            bail!("listener name {name} appears twice");
        }
        listeners.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_listeners() {
        let l = parse_listeners("PLAINTEXT://127.0.0.1:9092, CONTROLLER://localhost:9093").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0],
            Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert_eq!(l[1].name, "CONTROLLER");
        assert_eq!(l[0].bind_addr().unwrap().port(), 9092);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse_listeners("127.0.0.1:9092").is_err());
        assert!(parse_listeners("A://host").is_err());
        assert!(parse_listeners("A://h:99999").is_err());
        assert!(parse_listeners("A://h:1,A://h:2").is_err());
    }
}
