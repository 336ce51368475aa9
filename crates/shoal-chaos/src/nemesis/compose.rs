//! Containers of `make compose-up`, driven through the docker CLI: `kill` / `start`,
//! `pause` / `unpause`, `network disconnect` / `connect`, and `stop` (SIGTERM, then waits).

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Target;

pub struct ComposeTarget {
    containers: Vec<String>,
    network: String,
    /// The DNS aliases a container had on the network before it was disconnected; `connect`
    /// must give them back or the others cannot find it by name.
    aliases: HashMap<u32, Vec<String>>,
}

impl ComposeTarget {
    pub fn new(containers: Vec<String>, network: String) -> ComposeTarget {
        ComposeTarget {
            containers,
            network,
            aliases: HashMap::new(),
        }
    }

    fn name(&self, node: u32) -> anyhow::Result<&str> {
        node.checked_sub(1)
            .and_then(|i| self.containers.get(i as usize))
            .map(String::as_str)
            .with_context(|| format!("no container for node {node}"))
    }

    fn docker(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("docker")
            .args(args)
            .output()
            .context("running docker (is the Docker CLI installed?)")?;
        if !output.status.success() {
            bail!(
                "docker {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn on_node(&self, verb: &[&str], node: u32) -> anyhow::Result<()> {
        let name = self.name(node)?.to_string();
        let mut args = verb.to_vec();
        args.push(&name);
        self.docker(&args).map(|_| ())
    }
}

impl Target for ComposeTarget {
    fn nodes(&self) -> Vec<u32> {
        (1..=self.containers.len() as u32).collect()
    }

    fn preflight(&mut self) -> anyhow::Result<()> {
        for node in self.nodes() {
            let name = self.name(node)?.to_string();
            let state = self
                .docker(&["inspect", "-f", "{{.State.Status}}", &name])
                .with_context(|| format!("container {name} (is `make compose-up` running?)"))?;
            if state != "running" {
                bail!("container {name} is {state}, not running");
            }
        }
        self.docker(&["network", "inspect", "-f", "{{.Name}}", &self.network])
            .with_context(|| format!("network {}", self.network))?;
        Ok(())
    }

    fn kill(&mut self, node: u32) -> anyhow::Result<()> {
        self.on_node(&["kill", "--signal", "KILL"], node)
    }

    fn start(&mut self, node: u32) -> anyhow::Result<()> {
        self.on_node(&["start"], node)
    }

    fn pause(&mut self, node: u32) -> anyhow::Result<()> {
        self.on_node(&["pause"], node)
    }

    fn resume(&mut self, node: u32) -> anyhow::Result<()> {
        self.on_node(&["unpause"], node)
    }

    fn terminate(&mut self, node: u32, timeout: Duration) -> anyhow::Result<()> {
        let secs = timeout.as_secs().max(1).to_string();
        self.on_node(&["stop", "--time", &secs], node)
    }

    fn isolate(&mut self, node: u32) -> anyhow::Result<()> {
        let name = self.name(node)?.to_string();
        let template = format!(
            "{{{{json (index .NetworkSettings.Networks \"{}\").Aliases}}}}",
            self.network
        );
        let aliases: Vec<String> =
            serde_json::from_str(&self.docker(&["inspect", "-f", &template, &name])?)
                .unwrap_or_default();
        self.aliases.insert(node, aliases);
        self.docker(&["network", "disconnect", &self.network, &name])
            .map(|_| ())
    }

    fn reconnect(&mut self, node: u32) -> anyhow::Result<()> {
        let name = self.name(node)?.to_string();
        let aliases = self.aliases.remove(&node).unwrap_or_default();
        let mut args: Vec<&str> = vec!["network", "connect"];
        for alias in &aliases {
            // The container id prefix docker adds is not a name anyone resolves.
            if !name.starts_with(alias.as_str()) && !alias.is_empty() {
                args.extend(["--alias", alias.as_str()]);
            }
        }
        args.push(&self.network);
        args.push(&name);
        self.docker(&args).map(|_| ())
    }

    fn wipe(&mut self, _node: u32) -> anyhow::Result<()> {
        anyhow::bail!("--faults replace needs --target local")
    }

    fn directory_id(&self, _node: u32) -> anyhow::Result<String> {
        anyhow::bail!("--faults replace needs --target local")
    }
}
