//! The reassign fault: a partition moved off a node and back, through the operator's own tool
//! (`shoalctl partition reassign --wait`, KIP-455 AlterPartitionReassignments), while the
//! workloads run.
//!
//! **Why out and back.** On three nodes with three replicas there is nowhere else to move a
//! replica; dropping it and adding it again still does everything a move does: the replica's
//! log is deleted, the partition runs on the others (leadership moves if it led), then the
//! node copies the partition from scratch and rejoins the ISR. The preferred leader changes
//! too (the node comes back last). The checker must find nothing lost through both steps.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

/// The two targets: without `node`, then with it again, last. `None` when `node` is not a
/// replica or is the only one (a partition needs a replica left to copy from).
pub fn plan_out_and_back(replicas: &[i32], node: i32) -> Option<(Vec<i32>, Vec<i32>)> {
    if !replicas.contains(&node) || replicas.len() < 2 {
        return None;
    }
    let without: Vec<i32> = replicas.iter().copied().filter(|r| *r != node).collect();
    let mut back = without.clone();
    back.push(node);
    Some((without, back))
}

/// Runs `shoalctl partition reassign` against the cluster under test.
#[derive(Debug, Clone)]
pub struct Reassigner {
    shoalctl: PathBuf,
    /// `--brokers …` and one `--command-property k=v` per client setting of the run.
    connection: Vec<String>,
}

impl Reassigner {
    /// `shoalctl` beside this binary (as `make build-tools` and the image install them).
    pub fn new(brokers: &str, client_settings: &[(String, String)]) -> anyhow::Result<Self> {
        let shoalctl = std::env::current_exe()
            .context("locating shoal-chaos")?
            .with_file_name("shoalctl");
        let mut connection = vec!["--brokers".to_string(), brokers.to_string()];
        for (key, value) in client_settings {
            connection.push("--command-property".to_string());
            connection.push(format!("{key}={value}"));
        }
        Ok(Reassigner {
            shoalctl,
            connection,
        })
    }

    /// Moves `topic`-`partition` to `replicas` and waits (at most `timeout`) for the move to
    /// complete.
    pub fn reassign(
        &self,
        topic: &str,
        partition: i32,
        replicas: &[i32],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let list: Vec<String> = replicas.iter().map(i32::to_string).collect();
        let spec = format!("{topic}:{partition}={}", list.join(","));
        let timeout_ms = timeout.as_millis().max(1).to_string();
        let output = Command::new(&self.shoalctl)
            .args(&self.connection)
            .args(["partition", "reassign", "--move", &spec, "--wait"])
            .args(["--wait-timeout-ms", &timeout_ms])
            .output()
            .with_context(|| format!("running {}", self.shoalctl.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "shoalctl partition reassign --move {spec}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_and_back_keeps_the_others_in_order_and_returns_the_node_last() {
        assert_eq!(
            plan_out_and_back(&[1, 2, 3], 1),
            Some((vec![2, 3], vec![2, 3, 1]))
        );
        assert_eq!(
            plan_out_and_back(&[3, 1, 2], 1),
            Some((vec![3, 2], vec![3, 2, 1]))
        );
        assert_eq!(plan_out_and_back(&[1, 2], 2), Some((vec![1], vec![1, 2])));
        // Not a replica, or the last one: nothing to do.
        assert_eq!(plan_out_and_back(&[1, 2, 3], 4), None);
        assert_eq!(plan_out_and_back(&[1], 1), None);
    }
}
