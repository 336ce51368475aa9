//! Containers of `make compose-up`, driven through the docker CLI: `kill` / `start`,
//! `pause` / `unpause`, `network disconnect` / `connect`, and `stop` (SIGTERM, then waits).
//!
//! A replaced disk: the image has no shell, so the node's own image empties its data volume —
//! `shoal-chaos --empty-data-dir /data` in a throwaway container that mounts the stopped node's
//! volumes. The new directory id is read with `docker cp`, and `add-voter` runs as `shoalctl`
//! inside another node's container, where the controllers' addresses resolve.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Target, add_voter_args, add_voter_outcome};

/// Where the image keeps a node's data (its `VOLUME`).
const DATA_DIR: &str = "/data";

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

    fn wipe(&mut self, node: u32) -> anyhow::Result<()> {
        let name = self.name(node)?.to_string();
        if self.docker(&["inspect", "-f", "{{.State.Running}}", &name])? != "false" {
            bail!("container {name} is running; its data is deleted only when it is stopped");
        }
        let image = self.docker(&["inspect", "-f", "{{.Config.Image}}", &name])?;
        self.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            &name,
            "--entrypoint",
            "/usr/bin/shoal-chaos",
            &image,
            "--empty-data-dir",
            DATA_DIR,
        ])
        .map(|_| ())
    }

    fn directory_id(&self, node: u32) -> anyhow::Result<String> {
        let name = self.name(node)?;
        let copy = std::env::temp_dir().join(format!(
            "shoal-chaos-{}-node{node}-meta.properties",
            std::process::id()
        ));
        let copy_arg = copy.to_string_lossy().to_string();
        let source = format!("{name}:{DATA_DIR}/meta/meta.properties");
        let read = self
            .docker(&["cp", &source, &copy_arg])
            .and_then(|_| std::fs::read_to_string(&copy).context("reading the copied file"));
        let _ = std::fs::remove_file(&copy);
        read?
            .lines()
            .find_map(|line| line.trim().strip_prefix("directory.id="))
            .map(|id| id.trim().to_string())
            .with_context(|| format!("{source} has no directory.id"))
    }

    fn add_voter(&self, controllers: &[String], node: u32, directory: &str) -> anyhow::Result<()> {
        // From inside another running node: the quorum's addresses are container names.
        let other = self
            .nodes()
            .into_iter()
            .filter(|n| *n != node)
            .filter_map(|n| self.name(n).ok().map(str::to_string))
            .find(|name| {
                self.docker(&["inspect", "-f", "{{.State.Running}}", name])
                    .is_ok_and(|running| running == "true")
            })
            .context("no other running container to run shoalctl in")?;
        let output = Command::new("docker")
            .args(["exec", &other, "/usr/bin/shoalctl"])
            .args(add_voter_args(controllers, node, directory))
            .output()
            .context("running docker exec")?;
        add_voter_outcome(output)
    }
}
