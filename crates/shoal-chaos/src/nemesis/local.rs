//! The processes of `make cluster`: signals by pid (from `<dir>/node<N>.pid`), restarts through
//! the same script that started them, so a restarted node gets exactly its old command line.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Target;

pub struct LocalTarget {
    dir: PathBuf,
    script: PathBuf,
    nodes: u32,
}

impl LocalTarget {
    pub fn new(dir: PathBuf, script: PathBuf, nodes: u32) -> LocalTarget {
        LocalTarget { dir, script, nodes }
    }

    fn pid(&self, node: u32) -> anyhow::Result<Pid> {
        let path = self.dir.join(format!("node{node}.pid"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is `make cluster` running?)", path.display()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a pid", path.display()))?;
        Ok(Pid::from_raw(pid))
    }

    fn signal(&self, node: u32, signal: Signal) -> anyhow::Result<Pid> {
        let pid = self.pid(node)?;
        kill(pid, signal).with_context(|| format!("{signal} to node {node} (pid {pid})"))?;
        Ok(pid)
    }

    fn wait_exit(&self, pid: Pid, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while alive(pid) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// Running and not a zombie (a killed node whose parent has not reaped it yet is gone).
fn alive(pid: Pid) -> bool {
    if kill(pid, None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

impl Target for LocalTarget {
    fn nodes(&self) -> Vec<u32> {
        (1..=self.nodes).collect()
    }

    fn preflight(&mut self) -> anyhow::Result<()> {
        if !self.script.is_file() {
            bail!(
                "{} not found (run from the checkout, or pass --cluster-script)",
                self.script.display()
            );
        }
        for node in self.nodes() {
            let pid = self.pid(node)?;
            if !alive(pid) {
                bail!("node {node} (pid {pid}) is not running; start it with `make cluster`");
            }
        }
        Ok(())
    }

    fn kill(&mut self, node: u32) -> anyhow::Result<()> {
        let pid = self.signal(node, Signal::SIGKILL)?;
        if !self.wait_exit(pid, Duration::from_secs(10)) {
            bail!("node {node} (pid {pid}) still there 10 s after SIGKILL");
        }
        Ok(())
    }

    fn start(&mut self, node: u32) -> anyhow::Result<()> {
        let output = Command::new("bash")
            .arg(&self.script)
            .arg("start-node")
            .arg(node.to_string())
            .arg(&self.dir)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        if !output.status.success() {
            bail!(
                "restarting node {node}: {} {}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let pid = self.pid(node)?;
        if !alive(pid) {
            bail!(
                "node {node} is not running after a restart: {}",
                String::from_utf8_lossy(&output.stdout).trim()
            );
        }
        Ok(())
    }

    fn pause(&mut self, node: u32) -> anyhow::Result<()> {
        self.signal(node, Signal::SIGSTOP).map(|_| ())
    }

    fn resume(&mut self, node: u32) -> anyhow::Result<()> {
        self.signal(node, Signal::SIGCONT).map(|_| ())
    }

    fn terminate(&mut self, node: u32, timeout: Duration) -> anyhow::Result<()> {
        let pid = self.signal(node, Signal::SIGTERM)?;
        if !self.wait_exit(pid, timeout) {
            bail!(
                "node {node} (pid {pid}) did not stop within {:.0} s of SIGTERM",
                timeout.as_secs_f64()
            );
        }
        Ok(())
    }

    fn isolate(&mut self, _node: u32) -> anyhow::Result<()> {
        bail!("network partitions need --target compose")
    }

    fn reconnect(&mut self, _node: u32) -> anyhow::Result<()> {
        bail!("network partitions need --target compose")
    }

    fn wipe(&mut self, node: u32) -> anyhow::Result<()> {
        if alive(self.pid(node)?) {
            bail!("node {node} is running; a data directory is deleted only when it is stopped");
        }
        // `local-cluster.sh` gives node N `--data-dir <dir>/nodeN` (pid and log files sit beside).
        let data = self.dir.join(format!("node{node}"));
        match std::fs::remove_dir_all(&data) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", data.display())),
        }
    }

    fn directory_id(&self, node: u32) -> anyhow::Result<String> {
        let path = self.dir.join(format!("node{node}/meta/meta.properties"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .find_map(|line| line.trim().strip_prefix("directory.id="))
            .map(|id| id.trim().to_string())
            .with_context(|| format!("{} has no directory.id", path.display()))
    }
}
