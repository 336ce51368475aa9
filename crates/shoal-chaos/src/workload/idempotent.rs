//! The idempotent workload's threads as one unit: its producers and its consumer group, started
//! together, the producers stopped at the end of the write phase, then the group drained to the
//! high watermarks and stopped, then the final read the checker compares the acks against.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::client_settings::ClientSettings;
use crate::history::{Observed, Recorder};
use crate::report::Counts;

use super::{final_read, group, producer};

fn join<T>(handle: JoinHandle<anyhow::Result<T>>, what: &str) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("{what} thread panicked"))?
}

/// The idempotent workload's threads.
pub struct Idempotent {
    producers: Vec<JoinHandle<anyhow::Result<producer::ProducerEnd>>>,
    members: Vec<JoinHandle<anyhow::Result<group::MemberEnd>>>,
    stop_producers: Arc<AtomicBool>,
    stop_group: Arc<AtomicBool>,
}

/// Starts the producers and the group members.
pub fn start(
    args: &Args,
    client: &ClientSettings,
    topic_name: &str,
    recorder: &Recorder,
) -> Idempotent {
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_group = Arc::new(AtomicBool::new(false));
    let producers = (0..args.producers)
        .map(|p| {
            let spec = producer::ProducerSpec {
                brokers: args.brokers.clone(),
                topic: topic_name.to_string(),
                partitions: args.partitions,
                producer: p,
                rate_per_s: args.rate,
                message_timeout_ms: args.message_timeout_ms,
                client: client.clone(),
            };
            let (r, s) = (recorder.clone(), stop_producers.clone());
            std::thread::spawn(move || producer::run(spec, r, s))
        })
        .collect();
    let members = (0..args.consumers)
        .map(|m| {
            let spec = group::GroupSpec {
                brokers: args.brokers.clone(),
                topic: topic_name.to_string(),
                group: group_id(topic_name),
                member: m + 1,
                commit_interval: Duration::from_secs(1),
                client: client.clone(),
            };
            let (r, s) = (recorder.clone(), stop_group.clone());
            std::thread::spawn(move || group::run(spec, r, s))
        })
        .collect();
    Idempotent {
        producers,
        members,
        stop_producers,
        stop_group,
    }
}

/// The consumer group's id.
pub fn group_id(topic_name: &str) -> String {
    format!("{topic_name}-group")
}

impl Idempotent {
    /// Stops the producers (each flushes, bounded); adds what they sent to `counts`.
    pub fn stop_producers(&mut self, counts: &mut Counts) -> anyhow::Result<()> {
        self.stop_producers.store(true, Ordering::Relaxed);
        for p in std::mem::take(&mut self.producers) {
            let end = join(p, "producer")?;
            counts.sent += end.sent;
            counts.undelivered += end.undelivered;
        }
        Ok(())
    }

    /// Lets the group catch up to the end of the log, then stops it; then the final read.
    pub fn finish(
        mut self,
        args: &Args,
        client: &ClientSettings,
        topic_name: &str,
        recorder: &Recorder,
        counts: &mut Counts,
    ) -> anyhow::Result<Vec<Observed>> {
        let heal_timeout = Duration::from_secs(args.heal_timeout_s);
        let partitions: Vec<i32> = (0..args.partitions).collect();
        let high = final_read::high_watermarks(
            &args.brokers,
            client,
            topic_name,
            &partitions,
            heal_timeout,
        )?;
        let group_deadline = Instant::now() + heal_timeout;
        while !self.members.is_empty() && Instant::now() < group_deadline {
            let caught_up = {
                let h = recorder.lock();
                let mut next: std::collections::BTreeMap<i32, i64> = Default::default();
                for c in &h.consumed {
                    let n = next.entry(c.partition).or_insert(0);
                    *n = (*n).max(c.offset + 1);
                }
                high.iter()
                    .all(|(p, hw)| *hw == 0 || next.get(p).is_some_and(|n| n >= hw))
            };
            if caught_up {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop_group.store(true, Ordering::Relaxed);
        for m in std::mem::take(&mut self.members) {
            let end = join(m, "group member")?;
            counts.group_commit_failures += end.commit_failures;
            if end.foreign > 0 {
                eprintln!(
                    "shoal-chaos: {} foreign records in {topic_name}",
                    end.foreign
                );
            }
        }
        let (observed, foreign) =
            final_read::read_all(&args.brokers, client, topic_name, &high, heal_timeout)?;
        if foreign > 0 {
            eprintln!(
                "shoal-chaos: {foreign} records in {topic_name} were not written by this run"
            );
        }
        Ok(observed)
    }
}
