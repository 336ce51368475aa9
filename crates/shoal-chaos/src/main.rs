//! `shoal-chaos`: a Jepsen-style fault-injection run against a Kafka-compatible cluster.
//!
//! The run is: create a fresh RF=3 topic; start idempotent acks=all producers and a consumer
//! group; let the nemesis inject faults one at a time for `--duration-s`; heal; read every
//! partition back; judge the history (see `checker`). The process exits 0 only when no
//! acknowledged record was lost, duplicated, reordered or re-consumed below a commit.

mod availability;
mod checker;
mod cli;
mod client_settings;
mod history;
mod nemesis;
mod report;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::cli::{Args, TargetKind};
use crate::client_settings::ClientSettings;
use crate::history::Recorder;
use crate::nemesis::compose::ComposeTarget;
use crate::nemesis::local::LocalTarget;
use crate::nemesis::probe::Probe;
use crate::nemesis::{Nemesis, NoFaults, Plan, Target};
use crate::report::{Counts, Report, RunInfo};
use crate::workload::{final_read, group, producer, topic};

/// Why a run ended without a verdict.
enum Failure {
    /// Bad flags, unreachable cluster, missing nodes: nothing was tried (exit 2).
    Setup(anyhow::Error),
    /// The run started but could not finish (exit 3).
    Run(anyhow::Error),
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(message) = args.validate() {
        eprintln!("shoal-chaos: error: {message}");
        return ExitCode::from(2);
    }
    let client = match ClientSettings::load(args.command_config.as_deref(), &args.client_settings) {
        Ok(client) => client,
        Err(message) => {
            eprintln!("shoal-chaos: error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args, &client) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Setup(e)) => {
            eprintln!("shoal-chaos: error: {}", one_line(&e));
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("shoal-chaos: run failed: {}", one_line(&e));
            ExitCode::from(3)
        }
    }
}

fn build_target(args: &Args) -> Box<dyn Target> {
    match args.target {
        TargetKind::Local => Box::new(LocalTarget::new(
            args.cluster_dir.clone(),
            args.cluster_script.clone(),
            args.admin.len() as u32,
        )),
        TargetKind::Compose => Box::new(ComposeTarget::new(
            args.containers.clone(),
            args.network.clone(),
        )),
        TargetKind::None => Box::new(NoFaults(args.admin.len() as u32)),
    }
}

fn join<T>(handle: JoinHandle<anyhow::Result<T>>, what: &str) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("{what} thread panicked"))?
}

/// Returns whether the history passed the checker; `client` goes into every Kafka client.
fn run(args: &Args, client: &ClientSettings) -> Result<bool, Failure> {
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let topic_name = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("chaos-{}", unix_now.as_secs()));
    let seed = args
        .seed
        .unwrap_or_else(|| u64::from(unix_now.subsec_nanos()) ^ unix_now.as_secs());
    let heal_timeout = Duration::from_secs(args.heal_timeout_s);

    let mut target = build_target(args);
    target.preflight().map_err(Failure::Setup)?;
    topic::create(
        &args.brokers,
        client,
        &topic::TopicSpec {
            name: &topic_name,
            partitions: args.partitions,
            replication_factor: args.replication_factor,
            min_insync_replicas: args.min_insync_replicas,
        },
        Duration::from_secs(15),
    )
    .map_err(Failure::Setup)?;
    let partitions: Vec<i32> = (0..args.partitions).collect();
    let probe = Probe::new(
        &args.brokers,
        client,
        args.admin.clone(),
        topic_name.clone(),
    )
    .map_err(Failure::Setup)?;
    probe
        .wait_healthy(Duration::from_secs(30))
        .map_err(|e| Failure::Setup(e.context("the cluster is not whole before the run")))?;
    let fault_names: Vec<String> = match args.target {
        TargetKind::None => Vec::new(),
        _ => args
            .faults
            .iter()
            .map(|f| format!("{f:?}").to_lowercase())
            .collect(),
    };
    eprintln!(
        "shoal-chaos: topic {topic_name}, {} producers x {} rec/s, {} group members, faults [{}] every {} s, seed {seed}",
        args.producers,
        args.rate,
        args.consumers,
        fault_names.join(","),
        args.interval_s
    );

    let recorder = Recorder::new();
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_group = Arc::new(AtomicBool::new(false));
    let stop_nemesis = Arc::new(AtomicBool::new(false));

    let producers: Vec<_> = (0..args.producers)
        .map(|p| {
            let spec = producer::ProducerSpec {
                brokers: args.brokers.clone(),
                topic: topic_name.clone(),
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
    let members: Vec<_> = (0..args.consumers)
        .map(|m| {
            let spec = group::GroupSpec {
                brokers: args.brokers.clone(),
                topic: topic_name.clone(),
                group: format!("{topic_name}-group"),
                member: m + 1,
                commit_interval: Duration::from_secs(1),
                client: client.clone(),
            };
            let (r, s) = (recorder.clone(), stop_group.clone());
            std::thread::spawn(move || group::run(spec, r, s))
        })
        .collect();

    let plan = Plan {
        kinds: match args.target {
            TargetKind::None => Vec::new(),
            _ => args.faults.iter().map(|f| f.kind()).collect(),
        },
        first_at: Duration::from_secs(5.min(args.duration_s / 4)),
        interval: Duration::from_secs(args.interval_s),
        fault_for: Duration::from_secs(args.fault_s),
        max_faults: args.max_faults,
        heal_timeout,
        seed,
    };
    let nemesis_probe = Probe::new(
        &args.brokers,
        client,
        args.admin.clone(),
        topic_name.clone(),
    )
    .map_err(Failure::Setup)?;
    let mut nemesis = Nemesis::new(target, nemesis_probe, recorder.clone(), plan);
    let nemesis_stop = stop_nemesis.clone();
    let mut nemesis_thread = Some(std::thread::spawn(move || nemesis.run(nemesis_stop)));
    let mut nemesis_result: Option<anyhow::Result<()>> = None;

    // The write phase, with a progress line every 10 s. A nemesis that fails ends it early.
    let started = Instant::now();
    let duration = Duration::from_secs(args.duration_s);
    let mut next_progress = Duration::from_secs(10);
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(100));
        if nemesis_thread.as_ref().is_some_and(|t| t.is_finished())
            && let Some(t) = nemesis_thread.take()
        {
            let result = join(t, "nemesis");
            let failed = result.is_err();
            nemesis_result = Some(result);
            if failed {
                break;
            }
        }
        if started.elapsed() >= next_progress {
            let h = recorder.lock();
            eprintln!(
                "shoal-chaos: {:>4} s  acked {:>8}  failed {:>5}  consumed {:>8}  faults {}",
                started.elapsed().as_secs(),
                h.acks.len(),
                h.failures.len(),
                h.consumed.len(),
                h.faults.len()
            );
            next_progress += Duration::from_secs(10);
        }
    }
    stop_nemesis.store(true, Ordering::Relaxed);
    let nemesis_result = match (nemesis_thread.take(), nemesis_result) {
        (Some(t), _) => join(t, "nemesis"),
        (None, Some(result)) => result,
        (None, None) => Ok(()),
    };
    if let Err(e) = &nemesis_result {
        eprintln!("shoal-chaos: nemesis: {}", one_line(e));
    }
    // Keep writing a while after the last heal, so recovery from it is measured.
    let last_heal = recorder.lock().faults.iter().map(|f| f.end_us).max();
    if let Some(end_us) = last_heal {
        let tail_until = Duration::from_micros(end_us) + Duration::from_secs(5);
        let since_start = Duration::from_micros(recorder.now_us());
        if tail_until > since_start {
            std::thread::sleep(tail_until - since_start);
        }
    }
    let run_s = recorder.now_us() as f64 / 1e6;
    stop_producers.store(true, Ordering::Relaxed);
    let mut counts = Counts::default();
    for p in producers {
        match join(p, "producer") {
            Ok(end) => {
                counts.sent += end.sent;
                counts.undelivered += end.undelivered;
            }
            Err(e) => return Err(Failure::Run(e)),
        }
    }

    // Heal check, then let the group catch up to the end of the log before it stops.
    if let Err(e) = probe.wait_healthy(heal_timeout) {
        eprintln!("shoal-chaos: {}", one_line(&e));
    }
    let high = final_read::high_watermarks(
        &args.brokers,
        client,
        &topic_name,
        &partitions,
        heal_timeout,
    )
    .map_err(Failure::Run)?;
    let group_deadline = Instant::now() + heal_timeout;
    while args.consumers > 0 && Instant::now() < group_deadline {
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
    stop_group.store(true, Ordering::Relaxed);
    for m in members {
        match join(m, "group member") {
            Ok(end) => {
                counts.group_commit_failures += end.commit_failures;
                if end.foreign > 0 {
                    eprintln!(
                        "shoal-chaos: {} foreign records in {topic_name}",
                        end.foreign
                    );
                }
            }
            Err(e) => return Err(Failure::Run(e)),
        }
    }

    let (observed, foreign) =
        final_read::read_all(&args.brokers, client, &topic_name, &high, heal_timeout)
            .map_err(Failure::Run)?;
    if foreign > 0 {
        eprintln!("shoal-chaos: {foreign} records in {topic_name} were not written by this run");
    }
    let mut history = recorder.snapshot();
    history.observed = observed;

    let verdict = checker::check(&history);
    let impacts = availability::impacts(&history.acks, &history.faults, &partitions);
    let unavailability = availability::summarize(&impacts);
    counts.acked = history.acks.len() as u64;
    counts.failed = history.failures.len() as u64;
    counts.stored = history.observed.len() as u64;
    counts.group_consumed = history.consumed.len() as u64;
    counts.group_commits = history.commits.len() as u64;
    let info = RunInfo {
        topic: topic_name,
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        min_insync_replicas: args.min_insync_replicas,
        target: format!("{:?}", args.target).to_lowercase(),
        brokers: args.brokers.clone(),
        faults: fault_names,
        producers: args.producers,
        rate_per_producer: args.rate,
        consumers: args.consumers,
        seed,
        started_unix_s: unix_now.as_secs(),
        duration_s: run_s,
    };
    let report = Report::new(info, counts, verdict, impacts, unavailability, &history);
    report::write_all(&args.out, &report, &history, args.keep_history).map_err(Failure::Run)?;
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => return Err(Failure::Run(e.into())),
        }
    } else {
        println!("{}", report::table::render(&report));
        println!("report: {}", args.out.display());
    }
    let passed = report.anomalies.passed();
    match nemesis_result {
        Err(e) if passed => Err(Failure::Run(e)),
        _ => Ok(passed),
    }
}
