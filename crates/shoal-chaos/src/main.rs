//! `shoal-chaos`: a Jepsen-style fault-injection run against a Kafka-compatible cluster.
//!
//! The run is: create fresh RF=3 topics; start the workload (`--workload`: idempotent acks=all
//! producers and a consumer group, and/or the exactly-once workload of `workload::eos`); let
//! the nemesis inject faults one at a time for `--duration-s`; heal; let consumers drain; read
//! every partition back; judge the history (see `checker` and `checker::eos`). The process
//! exits 0 only when no acknowledged record was lost, duplicated, reordered or re-consumed below
//! a commit and every exactly-once promise held.

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

use anyhow::Context as _;
use clap::Parser;

use crate::checker::eos::EosRules;
use crate::cli::{Args, TargetKind};
use crate::client_settings::ClientSettings;
use crate::history::Recorder;
use crate::nemesis::compose::ComposeTarget;
use crate::nemesis::local::LocalTarget;
use crate::nemesis::probe::Probe;
use crate::nemesis::reassign::Reassigner;
use crate::nemesis::{Nemesis, NoFaults, Plan, Target};
use crate::report::{Counts, EosReport, Report, RunInfo};
use crate::workload::eos::{EosRun, EosSpec};
use crate::workload::{idempotent, topic};

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
    if let Some(dir) = &args.empty_data_dir {
        return match empty_data_dir(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shoal-chaos: error: {}", one_line(&e));
                ExitCode::from(3)
            }
        };
    }
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

/// Deletes everything inside `dir` (a replaced disk; see `nemesis::compose`). Only a Shoal
/// data directory (one with `meta/meta.properties`) or an empty one is touched.
fn empty_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    if !entries.is_empty() && !dir.join("meta/meta.properties").is_file() {
        anyhow::bail!(
            "{} is not a Shoal data directory (no meta/meta.properties); left as it is",
            dir.display()
        );
    }
    for path in entries {
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
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

/// Creates one topic of the run (an error means the cluster is unreachable or refused it).
fn create_topic(args: &Args, client: &ClientSettings, name: &str) -> Result<(), Failure> {
    topic::create(
        &args.brokers,
        client,
        &topic::TopicSpec {
            name,
            partitions: args.partitions,
            replication_factor: args.replication_factor,
            min_insync_replicas: args.min_insync_replicas,
        },
        Duration::from_secs(15),
    )
    .map_err(Failure::Setup)
}

fn eos_spec(args: &Args, client: &ClientSettings, run_id: &str) -> EosSpec {
    EosSpec {
        brokers: args.brokers.clone(),
        client: client.clone(),
        run_id: run_id.to_string(),
        input_topic: format!("{run_id}-eos-in"),
        output_topic: format!("{run_id}-eos-out"),
        partitions: args.partitions,
        producers: args.eos_producers,
        records_per_txn: args.eos_records_per_txn,
        abort_every: args.eos_abort_every,
        txn_rate_per_s: args.eos_txn_rate,
        transformers: args.eos_transformers,
        transaction_timeout_ms: args.eos_transaction_timeout_ms,
    }
}

/// The progress line's exactly-once part: transactions committed / aborted / unknown.
fn eos_progress(h: &history::History) -> String {
    use crate::history::eos::Outcome;
    let mut by = [0u64; 3];
    for t in &h.eos.txns {
        by[match t.outcome {
            Outcome::Committed => 0,
            Outcome::Aborted => 1,
            Outcome::Unknown => 2,
        }] += 1;
    }
    format!(
        "  txns {}/{}/{}  reads {:>8}",
        by[0],
        by[1],
        by[2],
        h.eos.reads.len()
    )
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
    let workload = args.workload;

    let mut target = build_target(args);
    target.preflight().map_err(Failure::Setup)?;
    let eos = workload.eos().then(|| eos_spec(args, client, &topic_name));
    let mut run_topics = Vec::new();
    if workload.idempotent() {
        create_topic(args, client, &topic_name)?;
        run_topics.push(topic_name.clone());
    }
    if let Some(spec) = &eos {
        for name in [&spec.input_topic, &spec.output_topic] {
            create_topic(args, client, name)?;
            run_topics.push(name.clone());
        }
    }
    let partitions: Vec<i32> = (0..args.partitions).collect();
    let probe = Probe::new(
        &args.brokers,
        client,
        args.admin.clone(),
        run_topics.clone(),
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
    if workload.idempotent() {
        eprintln!(
            "shoal-chaos: topic {topic_name}, {} producers x {} rec/s, {} group members",
            args.producers, args.rate, args.consumers,
        );
    }
    if let Some(spec) = &eos {
        eprintln!(
            "shoal-chaos: eos topics {} -> {}, {} transactional producers x {} txn/s x {} records \
             (every {}th aborted), {} transform members",
            spec.input_topic,
            spec.output_topic,
            spec.producers,
            spec.txn_rate_per_s,
            spec.records_per_txn,
            spec.abort_every,
            spec.transformers
        );
    }
    eprintln!(
        "shoal-chaos: faults [{}] every {} s, seed {seed}",
        fault_names.join(","),
        args.interval_s
    );

    let recorder = Recorder::new();
    let stop_nemesis = Arc::new(AtomicBool::new(false));
    let mut idempotent = workload
        .idempotent()
        .then(|| idempotent::start(args, client, &topic_name, &recorder));
    let mut eos_run = eos
        .clone()
        .map(|spec| EosRun::start(spec, recorder.clone()));

    let mut groups = Vec::new();
    if workload.idempotent() && args.consumers > 0 {
        groups.push(idempotent::group_id(&topic_name));
    }
    if let Some(spec) = eos.as_ref().filter(|s| s.transformers > 0) {
        groups.push(spec.group());
    }
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
        txn_ids: eos.as_ref().map(EosSpec::txn_ids).unwrap_or_default(),
        groups,
        reassigner: Reassigner::new(&args.brokers, client.pairs()).map_err(Failure::Setup)?,
    };
    let nemesis_probe = Probe::new(&args.brokers, client, args.admin.clone(), run_topics)
        .map_err(Failure::Setup)?;
    let mut nemesis = Nemesis::new(target, nemesis_probe, recorder.clone(), plan);
    let nemesis_stop = stop_nemesis.clone();
    let mut nemesis_thread = Some(std::thread::spawn(move || nemesis.run(nemesis_stop)));
    let mut nemesis_result: Option<anyhow::Result<()>> = None;

    // The write phase, with a progress line every 10 s. A nemesis that fails ends it early, as
    // does an exactly-once thread that gave up (its error is reported when it is joined).
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
        if eos_run.as_ref().is_some_and(EosRun::any_finished) {
            eprintln!("shoal-chaos: an exactly-once workload thread stopped early");
            break;
        }
        if started.elapsed() >= next_progress {
            let h = recorder.lock();
            let mut line = format!("shoal-chaos: {:>4} s", started.elapsed().as_secs());
            if workload.idempotent() {
                line.push_str(&format!(
                    "  acked {:>8}  failed {:>5}  consumed {:>8}",
                    h.acks.len(),
                    h.failures.len(),
                    h.consumed.len()
                ));
            }
            if workload.eos() {
                line.push_str(&eos_progress(&h));
            }
            eprintln!("{line}  faults {}", h.faults.len());
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
    let mut counts = Counts::default();
    if let Some(i) = idempotent.as_mut() {
        i.stop_producers(&mut counts).map_err(Failure::Run)?;
    }
    if let Some(e) = eos_run.as_mut() {
        e.stop_sources().map_err(Failure::Run)?;
    }

    // Heal check, then let the consumers catch up to the end of the log before they stop.
    if let Err(e) = probe.wait_healthy(heal_timeout) {
        eprintln!("shoal-chaos: {}", one_line(&e));
    }
    let mut eos_notes = Vec::new();
    if let Some(e) = eos_run.as_mut() {
        let settle = Duration::from_secs(args.eos_hung_lso_s + 10);
        let drained = e
            .drain(settle, Duration::from_secs(args.eos_drain_timeout_s))
            .map_err(Failure::Run)?;
        for note in &drained.notes {
            eprintln!("shoal-chaos: eos: {note}");
        }
        eprintln!(
            "shoal-chaos: eos: drained in {:.1} s",
            drained.took.as_secs_f64()
        );
        eos_notes = drained.notes;
    }
    let observed = match idempotent {
        Some(i) => i
            .finish(args, client, &topic_name, &recorder, &mut counts)
            .map_err(Failure::Run)?,
        None => Vec::new(),
    };
    if let Some(e) = eos_run {
        let late = e.finish(heal_timeout).map_err(Failure::Run)?;
        for note in &late {
            eprintln!("shoal-chaos: eos: {note}");
        }
        eos_notes.extend(late);
    }
    let mut history = recorder.snapshot();
    history.observed = observed;

    let verdict = checker::check(&history);
    let eos_report = eos.as_ref().map(|spec| {
        let rules = EosRules {
            hung_lso_us: args.eos_hung_lso_s * 1_000_000,
            expect_outputs: spec.transformers > 0,
        };
        let (anomalies, eos_counts) = checker::eos::check(&history.eos, &rules);
        if history.eos.foreign > 0 {
            eprintln!(
                "shoal-chaos: {} records in the eos topics were not written by this run",
                history.eos.foreign
            );
        }
        EosReport {
            input_topic: spec.input_topic.clone(),
            output_topic: spec.output_topic.clone(),
            group: spec.group(),
            producers: spec.producers,
            records_per_txn: spec.records_per_txn,
            abort_every: spec.abort_every,
            txn_rate_per_producer: spec.txn_rate_per_s,
            transformers: spec.transformers,
            transaction_timeout_ms: spec.transaction_timeout_ms,
            hung_lso_s: args.eos_hung_lso_s,
            counts: eos_counts,
            anomalies,
            notes: eos_notes.clone(),
            transaction_errors: EosReport::errors_of(&history),
        }
    });
    // Unavailability from the idempotent acks, or else from the source commits.
    let ack_times = match (&eos, workload.idempotent()) {
        (Some(spec), false) => spec.commit_times(&history.eos.txns),
        _ => availability::ack_times(&history.acks),
    };
    let impacts = availability::impacts(&ack_times, &history.faults, &partitions);
    let unavailability = availability::summarize(&impacts);
    counts.acked = history.acks.len() as u64;
    counts.failed = history.failures.len() as u64;
    counts.stored = history.observed.len() as u64;
    counts.group_consumed = history.consumed.len() as u64;
    counts.group_commits = history.commits.len() as u64;
    let info = RunInfo {
        workload: workload.name().to_string(),
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
    let report = Report::new(
        info,
        counts,
        verdict,
        eos_report,
        impacts,
        unavailability,
        &history,
    );
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
    let passed = report.passed();
    match nemesis_result {
        Err(e) if passed => Err(Failure::Run(e)),
        _ => Ok(passed),
    }
}
