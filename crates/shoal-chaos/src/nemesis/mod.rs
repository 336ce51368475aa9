//! The nemesis: injects one fault at a time, heals it, and waits for the cluster to be whole
//! again before the next, so every fault is measured on its own and no two overlap into a loss
//! of quorum that the cluster is not built to survive (RF=3 tolerates one failure).
//!
//! What a fault does to a node is the target's business ([`local`] sends signals to processes,
//! [`compose`] drives the Docker engine); the schedule, the bounds and the record are here.
//!
//! Victims of single-node faults are picked in turn by three rules: any node (by the seed), the
//! transaction coordinator of one of the run's transactional ids, the group coordinator of one
//! of its groups ([`coordinator`]). Coordinators are where exactly-once is decided (the
//! transaction log, the markers, the pending transactional offsets), so they are hit on
//! purpose rather than one time in three by chance. A rule with nothing to aim at (no
//! transactional ids, no groups) is left out; a coordinator that cannot be found (its topic
//! not created yet, no leader) falls back to a random node, and the fault says so.

pub mod compose;
pub mod coordinator;
pub mod local;
pub mod probe;
pub mod reassign;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::history::{Fault, FaultKind, Recorder, VictimChoice};
use probe::Probe;

/// What a fault can do to one node (numbered from 1).
pub trait Target: Send {
    /// Node numbers, 1..=N.
    fn nodes(&self) -> Vec<u32>;
    /// Fails unless every node is there and running; run before the workload starts.
    fn preflight(&mut self) -> anyhow::Result<()>;
    fn kill(&mut self, node: u32) -> anyhow::Result<()>;
    fn start(&mut self, node: u32) -> anyhow::Result<()>;
    fn pause(&mut self, node: u32) -> anyhow::Result<()>;
    fn resume(&mut self, node: u32) -> anyhow::Result<()>;
    /// SIGTERM (controlled shutdown) and wait until the node has exited.
    fn terminate(&mut self, node: u32, timeout: Duration) -> anyhow::Result<()>;
    fn isolate(&mut self, node: u32) -> anyhow::Result<()>;
    fn reconnect(&mut self, node: u32) -> anyhow::Result<()>;
    /// Deletes a stopped node's data directory (a replaced disk).
    fn wipe(&mut self, node: u32) -> anyhow::Result<()>;
    /// The node's metadata directory id (`meta.properties` `directory.id`).
    fn directory_id(&self, node: u32) -> anyhow::Result<String>;
    /// `shoalctl cluster quorum add-voter` for `node` with `directory`, against `controllers`
    /// (addresses as the quorum knows them).
    fn add_voter(&self, controllers: &[String], node: u32, directory: &str) -> anyhow::Result<()> {
        let shoalctl = std::env::current_exe()
            .context("locating shoal-chaos")?
            .with_file_name("shoalctl");
        let mut command = std::process::Command::new(&shoalctl);
        command.args(add_voter_args(controllers, node, directory));
        add_voter_outcome(
            command
                .output()
                .with_context(|| format!("running {}", shoalctl.display()))?,
        )
    }
}

/// shoalctl's arguments for add-voter.
pub fn add_voter_args(controllers: &[String], node: u32, directory: &str) -> Vec<String> {
    vec![
        "--controllers".into(),
        controllers.join(","),
        "cluster".into(),
        "quorum".into(),
        "add-voter".into(),
        "--id".into(),
        node.to_string(),
        // One argument: a directory id is base64url and may start with '-', which would
        // otherwise be read as a flag.
        format!("--directory-id={directory}"),
    ]
}

/// Success, or a voter that needs no adding (already recorded, or a cluster below the
/// metadata.version that records directories).
pub fn add_voter_outcome(output: std::process::Output) -> anyhow::Result<()> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success()
        || stderr.contains("DUPLICATE_VOTER")
        || stderr.contains("need metadata.version")
    {
        return Ok(());
    }
    anyhow::bail!("{}", stderr.trim())
}

/// `--target none`: a cluster the run does not touch. Every fault is refused.
pub struct NoFaults(pub u32);

impl Target for NoFaults {
    fn nodes(&self) -> Vec<u32> {
        (1..=self.0).collect()
    }
    fn preflight(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn kill(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn start(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn pause(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn resume(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn terminate(&mut self, _: u32, _: Duration) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn isolate(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn reconnect(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn wipe(&mut self, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("--target none injects no faults")
    }
    fn directory_id(&self, _: u32) -> anyhow::Result<String> {
        anyhow::bail!("--target none injects no faults")
    }
}

/// The fault schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kinds: Vec<FaultKind>,
    pub first_at: Duration,
    pub interval: Duration,
    pub fault_for: Duration,
    pub max_faults: u32,
    pub heal_timeout: Duration,
    pub seed: u64,
    /// Transactional ids whose coordinator may be aimed at.
    pub txn_ids: Vec<String>,
    /// Consumer groups whose coordinator may be aimed at.
    pub groups: Vec<String>,
    /// How a reassign fault reaches the cluster (`shoalctl partition reassign`).
    pub reassigner: reassign::Reassigner,
}

/// A chosen victim: the node, the rule that chose it and, for a coordinator, whose.
struct Victim {
    node: u32,
    choice: VictimChoice,
    detail: String,
    /// A coordinator's partition (topic, partition): what a reassign fault moves.
    partition: Option<(String, i32)>,
}

/// The rule that picks the `n`-th single-node fault's victim: random, then each coordinator
/// kind the plan has something to aim at, in turn, each rule kept for one round of the plan's
/// single-node fault kinds. So every kind meets every victim: rotating both at once would lock
/// them together when their counts are equal (kill, pause, partition against random, txn, group
/// would always pause the transaction coordinator and never the group's).
fn victim_rule(n: usize, plan: &Plan) -> VictimChoice {
    let mut rules = vec![VictimChoice::Random];
    if !plan.txn_ids.is_empty() {
        rules.push(VictimChoice::TxnCoordinator);
    }
    if !plan.groups.is_empty() {
        rules.push(VictimChoice::GroupCoordinator);
    }
    let kinds = plan
        .kinds
        .iter()
        .filter(|k| **k != FaultKind::Restart)
        .count()
        .max(1);
    rules[(n / kinds) % rules.len()]
}

/// " (txn-coordinator of …)" for the progress line; nothing for a random pick.
fn describe(victim: &Victim) -> String {
    match (victim.choice, victim.detail.is_empty()) {
        (_, true) => String::new(),
        (VictimChoice::Random, false) => format!(" (random: {})", victim.detail),
        (choice, false) => format!(" ({} of {})", choice.name(), victim.detail),
    }
}

/// Faults currently in force, so that healing (also after an error) undoes exactly them.
#[derive(Default)]
struct Damage {
    killed: BTreeSet<u32>,
    paused: BTreeSet<u32>,
    isolated: BTreeSet<u32>,
}

pub struct Nemesis {
    target: Box<dyn Target>,
    probe: Probe,
    recorder: Recorder,
    plan: Plan,
    damage: Damage,
    rng: fastrand::Rng,
    /// Single-node faults so far: which victim rule is next.
    victims_chosen: usize,
}

impl Nemesis {
    pub fn new(target: Box<dyn Target>, probe: Probe, recorder: Recorder, plan: Plan) -> Nemesis {
        let rng = fastrand::Rng::with_seed(plan.seed);
        Nemesis {
            target,
            probe,
            recorder,
            plan,
            damage: Damage::default(),
            rng,
            victims_chosen: 0,
        }
    }

    /// Injects faults until `stop` is set or the plan's count is reached; always heals before
    /// returning. An error means a fault could not be injected or healed.
    pub fn run(&mut self, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
        let result = self.schedule(&stop);
        let healed = self.heal_all();
        result.and(healed)
    }

    fn schedule(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        if self.plan.kinds.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut next = started + self.plan.first_at;
        for i in 0..self.plan.max_faults {
            while Instant::now() < next {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let kind = self.plan.kinds[i as usize % self.plan.kinds.len()];
            self.inject(kind)?;
            self.wait_healthy()?;
            next = (next + self.plan.interval).max(Instant::now());
        }
        Ok(())
    }

    fn victim(&mut self) -> Victim {
        let nodes = self.target.nodes();
        let random = nodes[self.rng.usize(..nodes.len())];
        let choice = victim_rule(self.victims_chosen, &self.plan);
        self.victims_chosen += 1;
        let keys = match choice {
            VictimChoice::TxnCoordinator => &self.plan.txn_ids,
            VictimChoice::GroupCoordinator => &self.plan.groups,
            VictimChoice::Random | VictimChoice::Each => {
                return Victim {
                    node: random,
                    choice: VictimChoice::Random,
                    detail: String::new(),
                    partition: None,
                };
            }
        };
        let key = keys[self.rng.usize(..keys.len())].clone();
        let topic = coordinator::topic_of(choice).unwrap_or_default();
        match coordinator::find(&self.probe, choice, &key) {
            Some((partition, leader))
                if u32::try_from(leader).is_ok_and(|n| nodes.contains(&n)) =>
            {
                Victim {
                    node: leader as u32,
                    choice,
                    detail: format!("{key} ({topic}/{partition})"),
                    partition: Some((topic.to_string(), partition)),
                }
            }
            found => Victim {
                node: random,
                choice: VictimChoice::Random,
                detail: match found {
                    Some((partition, leader)) => format!(
                        "{} of {key} is node {leader} ({topic}/{partition}), not a target node",
                        choice.name()
                    ),
                    None => format!("{} of {key} not found", choice.name()),
                },
                partition: None,
            },
        }
    }

    fn inject(&mut self, kind: FaultKind) -> anyhow::Result<()> {
        match kind {
            FaultKind::Kill => {
                let victim = self.victim();
                let node = victim.node;
                let start_us = self.recorder.now_us();
                self.damage.killed.insert(node);
                self.target.kill(node)?;
                eprintln!("nemesis: kill node {node}{}", describe(&victim));
                std::thread::sleep(self.plan.fault_for);
                self.target.start(node)?;
                self.damage.killed.remove(&node);
                self.record(kind, &victim, start_us);
            }
            FaultKind::Pause => {
                let victim = self.victim();
                let node = victim.node;
                let start_us = self.recorder.now_us();
                self.damage.paused.insert(node);
                self.target.pause(node)?;
                eprintln!("nemesis: pause node {node}{}", describe(&victim));
                std::thread::sleep(self.plan.fault_for);
                self.target.resume(node)?;
                self.damage.paused.remove(&node);
                self.record(kind, &victim, start_us);
            }
            FaultKind::Partition => {
                let victim = self.victim();
                let node = victim.node;
                let start_us = self.recorder.now_us();
                self.damage.isolated.insert(node);
                self.target.isolate(node)?;
                eprintln!("nemesis: isolate node {node}{}", describe(&victim));
                std::thread::sleep(self.plan.fault_for);
                self.target.reconnect(node)?;
                self.damage.isolated.remove(&node);
                self.record(kind, &victim, start_us);
            }
            FaultKind::Replace => {
                let victim = self.victim();
                let node = victim.node;
                let start_us = self.recorder.now_us();
                self.damage.killed.insert(node);
                self.target.kill(node)?;
                self.target.wipe(node)?;
                eprintln!(
                    "nemesis: replace node {node}{} (killed, data directory deleted)",
                    describe(&victim)
                );
                std::thread::sleep(self.plan.fault_for);
                self.target.start(node)?;
                self.damage.killed.remove(&node);
                // Until an operator names its new directory, the controller's answers do not
                // count, so it cannot even catch up on the metadata log: add-voter first, then
                // wait for the broker to re-replicate.
                self.restore_vote(node)?;
                self.wait_healthy()?;
                self.record(kind, &victim, start_us);
            }
            FaultKind::Reassign => {
                let mut victim = self.victim();
                let node = victim.node;
                let start_us = self.recorder.now_us();
                let (topic, partition, replicas) = self.partition_to_move(&victim)?;
                let Some((without, back)) = reassign::plan_out_and_back(&replicas, node as i32)
                else {
                    anyhow::bail!(
                        "{topic}-{partition} has replicas {replicas:?}: a reassign fault needs \
                         node {node} among two or more"
                    );
                };
                if victim.detail.is_empty() {
                    victim.detail = format!("{topic}/{partition}");
                }
                eprintln!(
                    "nemesis: reassign {topic}-{partition} {replicas:?} -> {without:?}, node \
                     {node} leaves{}",
                    describe(&victim)
                );
                let timeout = self.plan.heal_timeout;
                self.plan
                    .reassigner
                    .reassign(&topic, partition, &without, timeout)?;
                eprintln!("nemesis: reassign {topic}-{partition} -> {back:?}, node {node} back");
                self.plan
                    .reassigner
                    .reassign(&topic, partition, &back, timeout)?;
                self.record(kind, &victim, start_us);
            }
            FaultKind::Restart => {
                eprintln!("nemesis: rolling restart");
                for node in self.target.nodes() {
                    let start_us = self.recorder.now_us();
                    self.damage.killed.insert(node);
                    self.target.terminate(node, self.plan.heal_timeout)?;
                    eprintln!("nemesis: node {node} stopped (SIGTERM)");
                    self.target.start(node)?;
                    self.damage.killed.remove(&node);
                    let victim = Victim {
                        node,
                        choice: VictimChoice::Each,
                        detail: String::new(),
                        partition: None,
                    };
                    self.record(kind, &victim, start_us);
                    // Kafka's rule for a rolling restart: the next node goes only once the
                    // last one is back in every ISR.
                    self.wait_healthy()?;
                }
            }
        }
        Ok(())
    }

    fn record(&self, kind: FaultKind, victim: &Victim, start_us: u64) {
        let end_us = self.recorder.now_us();
        self.recorder.lock().faults.push(Fault {
            kind,
            node: victim.node,
            victim: victim.choice,
            victim_detail: victim.detail.clone(),
            start_us,
            end_us,
        });
    }

    /// For a controller that came back with a new directory: `shoalctl cluster quorum add-voter`
    /// naming it (read from the node's `meta.properties`), retried until the heal timeout (the
    /// leader must have heard from the node first). A directory already recorded, or a cluster
    /// that records none (below metadata.version 5), needs nothing.
    /// The partition a reassign fault moves: the coordinator's partition when the victim is
    /// one, else one of the run's partitions on the victim, one it leads if there is one (its
    /// leadership then moves too). With the replicas it has now.
    fn partition_to_move(&mut self, victim: &Victim) -> anyhow::Result<(String, i32, Vec<i32>)> {
        let node = victim.node as i32;
        if let Some((topic, partition)) = &victim.partition
            && let Some((_, replicas)) = self.probe.replicas(topic, *partition)
            && replicas.contains(&node)
        {
            return Ok((topic.clone(), *partition, replicas));
        }
        let mut held = Vec::new();
        for topic in self.probe.topics() {
            for (partition, leader, replicas) in self.probe.partitions(topic).unwrap_or_default() {
                if replicas.contains(&node) {
                    held.push((leader == node, topic.clone(), partition, replicas));
                }
            }
        }
        let led: Vec<_> = held.iter().filter(|(leads, ..)| *leads).cloned().collect();
        let pool = if led.is_empty() { held } else { led };
        if pool.is_empty() {
            anyhow::bail!("node {node} holds no replica of the run's topics to move");
        }
        let (_, topic, partition, replicas) = pool[self.rng.usize(..pool.len())].clone();
        Ok((topic, partition, replicas))
    }

    fn restore_vote(&mut self, node: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.plan.heal_timeout;
        loop {
            let attempt = self.target.directory_id(node).and_then(|directory| {
                let controllers = self
                    .probe
                    .voter_addresses()
                    .context("no metadata leader answers /v1/quorum")?;
                self.target.add_voter(&controllers, node, &directory)
            });
            match attempt {
                Ok(()) => {
                    eprintln!("nemesis: node {node} is a voter again (add-voter)");
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("giving node {node} its vote back")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let took = self
            .probe
            .wait_healthy(self.plan.heal_timeout)
            .context("the cluster did not heal")?;
        eprintln!(
            "nemesis: cluster whole again after {:.1} s",
            took.as_secs_f64()
        );
        Ok(())
    }

    /// Undoes every fault in force; tries all of them even when one fails.
    fn heal_all(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        for node in std::mem::take(&mut self.damage.paused) {
            if let Err(e) = self.target.resume(node) {
                first_error.get_or_insert(e);
            }
        }
        for node in std::mem::take(&mut self.damage.isolated) {
            if let Err(e) = self.target.reconnect(node) {
                first_error.get_or_insert(e);
            }
        }
        for node in std::mem::take(&mut self.damage.killed) {
            if let Err(e) = self.target.start(node) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e.context("healing the cluster")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_id_is_passed_as_one_argument() {
        // A base64url id may start with '-' (it did, and shoalctl took it for a flag).
        let args = add_voter_args(&["127.0.0.1:19192".into()], 3, "-2Nh61LaTv-UzbzEURKFDg");
        assert!(args.contains(&"--directory-id=-2Nh61LaTv-UzbzEURKFDg".to_string()));
    }

    #[test]
    fn add_voter_outcomes() {
        use std::os::unix::process::ExitStatusExt;
        let output = |code: i32, stderr: &str| std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        };
        assert!(add_voter_outcome(output(0, "")).is_ok());
        // What shoalctl prints for a voter already recorded with the directory it runs with.
        let recorded =
            "shoalctl: error: DUPLICATE_VOTER: voter 2 is already a voter with directory x";
        assert!(add_voter_outcome(output(1, recorded)).is_ok());
        let low =
            "shoalctl: error: Voter directories need metadata.version 5; this cluster is at 4";
        assert!(add_voter_outcome(output(1, low)).is_ok());
        let other = "shoalctl: error: voter 2 has not answered the leader yet; start it and retry";
        assert!(add_voter_outcome(output(1, other)).is_err());
    }

    fn plan(txn_ids: &[&str], groups: &[&str]) -> Plan {
        Plan {
            kinds: vec![FaultKind::Kill],
            first_at: Duration::ZERO,
            interval: Duration::from_secs(10),
            fault_for: Duration::from_secs(4),
            max_faults: 10,
            heal_timeout: Duration::from_secs(60),
            seed: 1,
            txn_ids: txn_ids.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            reassigner: reassign::Reassigner::new("127.0.0.1:9092", &[])
                .expect("the test binary has a path"),
        }
    }

    #[test]
    fn victims_rotate_through_random_and_the_coordinators_there_are() {
        use VictimChoice::{GroupCoordinator as G, Random as R, TxnCoordinator as T};
        let rules = |p: &Plan| (0..6).map(|n| victim_rule(n, p)).collect::<Vec<_>>();
        assert_eq!(rules(&plan(&["t"], &["g"])), vec![R, T, G, R, T, G]);
        assert_eq!(rules(&plan(&[], &["g"])), vec![R, G, R, G, R, G]);
        assert_eq!(rules(&plan(&["t"], &[])), vec![R, T, R, T, R, T]);
        assert_eq!(rules(&plan(&[], &[])), vec![R; 6]);
    }

    #[test]
    fn every_fault_kind_meets_every_victim() {
        use FaultKind::{Kill, Partition, Pause, Replace, Restart};
        for kinds in [
            vec![Kill, Pause, Partition, Restart],
            vec![Pause, Kill],
            vec![Kill, Pause, Restart],
            vec![Kill, Replace, Restart],
        ] {
            let plan = Plan {
                kinds: kinds.clone(),
                ..plan(&["t"], &["g"])
            };
            let single: Vec<FaultKind> = kinds.iter().copied().filter(|k| *k != Restart).collect();
            // The n-th single-node fault is of kind single[n % len] (the rolling restarts in
            // between take no victim).
            let met: std::collections::BTreeSet<(String, &str)> = (0..single.len() * 3)
                .map(|n| {
                    (
                        format!("{:?}", single[n % single.len()]),
                        victim_rule(n, &plan).name(),
                    )
                })
                .collect();
            assert_eq!(met.len(), single.len() * 3, "{kinds:?}: {met:?}");
        }
    }

    #[test]
    fn the_progress_line_names_the_coordinator() {
        let victim = |choice, detail: &str| Victim {
            node: 2,
            choice,
            detail: detail.to_string(),
            partition: None,
        };
        assert_eq!(describe(&victim(VictimChoice::Random, "")), "");
        assert_eq!(
            describe(&victim(
                VictimChoice::TxnCoordinator,
                "t (__transaction_state/7)"
            )),
            " (txn-coordinator of t (__transaction_state/7))"
        );
        assert_eq!(
            describe(&victim(
                VictimChoice::Random,
                "group-coordinator of g not found"
            )),
            " (random: group-coordinator of g not found)"
        );
    }
}
