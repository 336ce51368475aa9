//! The exactly-once workload (`--workload eos`): what Kafka promises transactions, exercised
//! the way applications use them, with librdkafka's transactional API.
//!
//! - **Source** ([`source`]): transactional producers write numbered records to an input
//!   topic, a few per transaction over several partitions; every `abort_every`-th
//!   transaction is aborted on purpose.
//! - **Transform** ([`transform`]): a consumer group reading the input read_committed, whose
//!   members each turn a batch into output records and commit them together with the input
//!   offsets (`send_offsets_to_transaction`): the consume-transform-produce loop of Kafka
//!   Streams.
//! - **Watchers**: a read_committed [`observer`] of both topics, samples of every
//!   partition's last stable offset next to its high watermark ([`lso`]) and of the group's
//!   committed offsets ([`group_offsets`]).
//! - **After the run**: the sources stop; once nothing is open on the input the transform
//!   stage drains (until the group's committed offsets reach the input's end), then both
//!   topics are read to their ends, read_committed and read_uncommitted ([`final_read`]).
//!
//! Everything lands in the history's `eos` part; `checker::eos` judges it. Every thread stops
//! on its flag, every wait has a bound.

pub mod final_read;
pub mod group_offsets;
pub mod lso;
pub mod observer;
pub mod source;
pub mod transform;
pub mod txn;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;

use crate::client_settings::ClientSettings;
use crate::history::Recorder;
use crate::history::eos::{Outcome, Stage, Topic, Txn};

use super::ErrorCountingContext;
use txn::TxnProducer;

/// Everything the workload's threads need to know.
#[derive(Debug, Clone)]
pub struct EosSpec {
    pub brokers: String,
    pub client: ClientSettings,
    /// Names the run's transactional ids and group (the base topic name, `chaos-<unix s>`).
    pub run_id: String,
    pub input_topic: String,
    pub output_topic: String,
    pub partitions: i32,
    pub producers: u32,
    pub records_per_txn: u32,
    /// Every this-many-th transaction is aborted on purpose (0: never).
    pub abort_every: u32,
    pub txn_rate_per_s: u32,
    /// Members of the transform group (0: no transform stage).
    pub transformers: u32,
    pub transaction_timeout_ms: u32,
}

impl EosSpec {
    pub fn source_txn_id(&self, producer: u32) -> String {
        format!("shoal-{}-src-{producer}", self.run_id)
    }

    pub fn transform_txn_id(&self, member: u32) -> String {
        format!("shoal-{}-xform-{member}", self.run_id)
    }

    pub fn group(&self) -> String {
        format!("{}-eos-group", self.run_id)
    }

    /// Every transactional id of the run (for the nemesis to aim at their coordinators).
    pub fn txn_ids(&self) -> Vec<String> {
        (0..self.producers)
            .map(|p| self.source_txn_id(p))
            .chain((1..=self.transformers).map(|m| self.transform_txn_id(m)))
            .collect()
    }

    /// The topics the workload reads.
    pub fn topics(&self) -> [Topic; 2] {
        [Topic::Input, Topic::Output]
    }

    pub fn topic_name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Input => &self.input_topic,
            Topic::Output => &self.output_topic,
        }
    }

    pub fn topic_of(&self, name: &str) -> Option<Topic> {
        self.topics()
            .into_iter()
            .find(|t| self.topic_name(*t) == name)
    }

    /// Whether the writer's transaction number `txn` is one to abort on purpose.
    pub fn aborts_on_purpose(&self, txn: u64) -> bool {
        self.abort_every > 0 && (txn + 1).is_multiple_of(u64::from(self.abort_every))
    }

    /// The input partition of a source transaction's `index`-th record: consecutive records
    /// go to consecutive partitions, starting one further each transaction.
    pub fn partition_of(&self, txn: u64, index: u32) -> i32 {
        ((txn + u64::from(index)) % self.partitions.max(1) as u64) as i32
    }

    /// (partition, commit time) for every partition each committed source transaction wrote:
    /// the exactly-once workload's "acks", for the unavailability measure.
    pub fn commit_times(&self, txns: &[Txn]) -> Vec<(i32, u64)> {
        let mut out = Vec::new();
        for t in txns {
            if t.id.stage != Stage::Source || t.outcome != Outcome::Committed {
                continue;
            }
            let mut written: Vec<i32> = (0..t.records)
                .map(|i| self.partition_of(t.id.txn, i))
                .collect();
            written.sort_unstable();
            written.dedup();
            out.extend(written.into_iter().map(|p| (p, t.ended_us)));
        }
        out
    }

    /// How long one transaction may take from begin to its end, retries included: past the
    /// transaction timeout (after which the coordinator aborts it anyway) with room for a
    /// coordinator to fail over.
    pub fn txn_deadline(&self) -> Duration {
        Duration::from_millis(u64::from(self.transaction_timeout_ms)) + Duration::from_secs(30)
    }
}

/// A consumer's isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn setting(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

fn consumer_config(spec: &EosSpec, role: &str, group: &str, isolation: Isolation) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.brokers)
        .set("client.id", format!("shoal-chaos-{role}"))
        .set("group.id", group)
        .set("isolation.level", isolation.setting())
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "500");
    spec.client.apply(&mut config);
    config
}

/// A consumer outside any group (assigned partitions only; its group id is never joined).
pub fn plain_consumer(
    spec: &EosSpec,
    role: &str,
    isolation: Isolation,
) -> anyhow::Result<BaseConsumer<ErrorCountingContext>> {
    consumer_config(
        spec,
        role,
        &format!("shoal-chaos-{role}-{}", spec.run_id),
        isolation,
    )
    .create_with_context(ErrorCountingContext::default())
    .with_context(|| format!("creating the {role} consumer"))
}

/// A client carrying the transform group's id, for OffsetFetch; it never subscribes.
pub fn group_consumer(
    spec: &EosSpec,
    role: &str,
    isolation: Isolation,
) -> anyhow::Result<BaseConsumer<ErrorCountingContext>> {
    consumer_config(spec, role, &spec.group(), isolation)
        .create_with_context(ErrorCountingContext::default())
        .with_context(|| format!("creating the {role} client"))
}

/// Sleeps until `at` in short steps; false when `stop` was set first.
pub fn sleep_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Bound on one `init_transactions`, retries included.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A transactional producer ready for its first transaction, built again (once a second at
/// most) until its `init_transactions` succeeds; `None` when `stop` was set first. An error
/// is a client that cannot even be built (bad settings): the run's, not the cluster's.
fn ready_producer(
    spec: &EosSpec,
    transactional_id: &str,
    recorder: &Recorder,
    stop: &AtomicBool,
    doing: &Doing,
) -> anyhow::Result<Option<TxnProducer>> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        doing.set("init_transactions");
        let producer = txn::create(spec, transactional_id)?;
        match txn::init(&producer, Instant::now() + INIT_TIMEOUT) {
            Ok(()) => return Ok(Some(producer)),
            Err(e) => {
                eprintln!("shoal-chaos: {transactional_id}: {e}; building it again");
                recorder.lock().eos.client_rebuilds += 1;
                drop(producer);
                sleep_until(Instant::now() + Duration::from_secs(1), stop);
            }
        }
    }
}

/// What a worker thread is doing and since when, so that one stuck in a client call (they
/// take timeouts, but librdkafka does not always keep them) can be named in the report.
#[derive(Clone, Default)]
pub struct Doing(Arc<Mutex<Option<(&'static str, Instant)>>>);

impl Doing {
    pub fn set(&self, what: &'static str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((what, Instant::now()));
    }

    pub fn describe(&self) -> String {
        match *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((what, since)) => format!("in {what} for {:.0} s", since.elapsed().as_secs_f64()),
            None => "not started".to_string(),
        }
    }
}

/// One of the workload's threads.
struct Worker {
    name: String,
    handle: JoinHandle<anyhow::Result<()>>,
    doing: Doing,
}

/// Waits (at most `bound`) for every worker to end. One still running then is left behind
/// (it ends with the process) and named in `notes`; the first error of those that ended is
/// returned.
fn join_within(
    workers: Vec<Worker>,
    bound: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + bound;
    while workers.iter().any(|w| !w.handle.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut first_error = None;
    for w in workers {
        if !w.handle.is_finished() {
            notes.push(format!(
                "{} did not stop within {:.0} s of being asked to: {}",
                w.name,
                bound.as_secs_f64(),
                w.doing.describe()
            ));
            continue;
        }
        let result = w
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("{} panicked", w.name))
            .and_then(|r| r.with_context(|| w.name.clone()));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The workload's threads, from start to the final reads.
pub struct EosRun {
    spec: Arc<EosSpec>,
    recorder: Recorder,
    stop_sources: Arc<AtomicBool>,
    stop_transform: Arc<AtomicBool>,
    stop_watchers: Arc<AtomicBool>,
    sources: Vec<Worker>,
    members: Vec<Worker>,
    watchers: Vec<Worker>,
    /// What did not finish in time so far.
    notes: Vec<String>,
}

/// How the drain ended; each note is something that did not finish in time (the checker then
/// sees its consequences: a hung LSO, outputs missing).
pub struct Drained {
    pub notes: Vec<String>,
    pub took: Duration,
}

type WorkerFn = fn(Arc<EosSpec>, u32, Recorder, Arc<AtomicBool>, Doing) -> anyhow::Result<()>;

impl EosRun {
    /// Starts the sources, the transform members and the watchers.
    pub fn start(spec: EosSpec, recorder: Recorder) -> EosRun {
        let spec = Arc::new(spec);
        let stop_sources = Arc::new(AtomicBool::new(false));
        let stop_transform = Arc::new(AtomicBool::new(false));
        let stop_watchers = Arc::new(AtomicBool::new(false));
        let spawn = |name: String, f: WorkerFn, index: u32, stop: &Arc<AtomicBool>| {
            let (spec, recorder, stop) = (spec.clone(), recorder.clone(), stop.clone());
            let doing = Doing::default();
            let d = doing.clone();
            Worker {
                name,
                handle: std::thread::spawn(move || f(spec, index, recorder, stop, d)),
                doing,
            }
        };
        let watchers = vec![
            spawn("the observer".into(), observer::run, 0, &stop_watchers),
            spawn("the LSO sampler".into(), lso::run, 0, &stop_watchers),
            spawn(
                "the group offset sampler".into(),
                group_offsets::run,
                0,
                &stop_watchers,
            ),
        ];
        let sources = (0..spec.producers)
            .map(|p| {
                spawn(
                    format!("source producer {p}"),
                    source::run,
                    p,
                    &stop_sources,
                )
            })
            .collect();
        let members = (1..=spec.transformers)
            .map(|m| {
                spawn(
                    format!("transform member {m}"),
                    transform::run,
                    m,
                    &stop_transform,
                )
            })
            .collect();
        EosRun {
            spec,
            recorder,
            stop_sources,
            stop_transform,
            stop_watchers,
            sources,
            members,
            watchers,
            notes: Vec::new(),
        }
    }

    /// How long a worker may take to stop once asked: the transaction under way (its
    /// deadline), then a rewind or an init.
    fn stop_bound(&self) -> Duration {
        self.spec.txn_deadline() + Duration::from_secs(40)
    }

    /// Whether a thread ended early (with an error: the run cannot go on without it).
    pub fn any_finished(&self) -> bool {
        self.sources
            .iter()
            .chain(&self.members)
            .chain(&self.watchers)
            .any(|w| w.handle.is_finished())
    }

    /// Stops the sources; each ends its open transaction first.
    pub fn stop_sources(&mut self) -> anyhow::Result<()> {
        self.stop_sources.store(true, Ordering::Relaxed);
        let bound = self.stop_bound();
        join_within(std::mem::take(&mut self.sources), bound, &mut self.notes)
    }

    /// Once the cluster is whole: waits until nothing is open on the input, then until the
    /// transform group's committed offsets reach the input's end (at most `drain_timeout`),
    /// stops the members, and waits until nothing is open on the output. `settle_timeout`
    /// bounds each wait for open transactions to end.
    pub fn drain(
        &mut self,
        settle_timeout: Duration,
        drain_timeout: Duration,
    ) -> anyhow::Result<Drained> {
        let started = Instant::now();
        let mut notes = std::mem::take(&mut self.notes);
        let ends = lso::Ends::new(&self.spec)?;
        let input_end = match lso::settle(&ends, &self.spec, Topic::Input, settle_timeout) {
            Ok(end) => end,
            Err(e) => {
                // Something stays open (the checker will say so): drain up to where read_committed
                // readers can get, so that what is visible is still judged.
                notes.push(e);
                (0..self.spec.partitions)
                    .filter_map(|p| {
                        ends.end(Isolation::ReadCommitted, &self.spec.input_topic, p)
                            .map(|end| (p, end))
                    })
                    .collect::<BTreeMap<i32, i64>>()
            }
        };
        if self.spec.transformers > 0 && !input_end.is_empty() {
            let asker = group_offsets::asker(&self.spec)?;
            let deadline = Instant::now() + drain_timeout;
            loop {
                let committed = group_offsets::fetch(&asker, &self.spec).unwrap_or_default();
                let behind: Vec<String> = input_end
                    .iter()
                    .filter(|(p, end)| **end > 0 && committed.get(p).is_none_or(|c| c < end))
                    .map(|(p, end)| {
                        let at = committed
                            .get(p)
                            .map_or("none".to_string(), |c| c.to_string());
                        format!("{p}: committed {at} of {end}")
                    })
                    .collect();
                if behind.is_empty() {
                    break;
                }
                if Instant::now() >= deadline || self.members.iter().all(|m| m.handle.is_finished())
                {
                    let members: Vec<String> = self
                        .members
                        .iter()
                        .map(|m| format!("{} {}", m.name, m.doing.describe()))
                        .collect();
                    notes.push(format!(
                        "transform stage not drained after {:.0} s ({}; {})",
                        drain_timeout.as_secs_f64(),
                        behind.join(", "),
                        members.join(", ")
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        self.stop_transform.store(true, Ordering::Relaxed);
        let bound = self.stop_bound();
        join_within(std::mem::take(&mut self.members), bound, &mut notes)?;
        if let Err(e) = lso::settle(&ends, &self.spec, Topic::Output, settle_timeout) {
            notes.push(e);
        }
        Ok(Drained {
            notes,
            took: started.elapsed(),
        })
    }

    /// Stops the watchers (and anything still running) and reads both topics to their ends,
    /// both ways, into the history. Returns what did not stop in time.
    pub fn finish(mut self, timeout: Duration) -> anyhow::Result<Vec<String>> {
        self.stop_sources.store(true, Ordering::Relaxed);
        self.stop_transform.store(true, Ordering::Relaxed);
        self.stop_watchers.store(true, Ordering::Relaxed);
        let bound = self.stop_bound();
        let mut notes = std::mem::take(&mut self.notes);
        let workers: Vec<Worker> = std::mem::take(&mut self.sources)
            .into_iter()
            .chain(std::mem::take(&mut self.members))
            .chain(std::mem::take(&mut self.watchers))
            .collect();
        join_within(workers, bound, &mut notes)?;
        let (committed, foreign_c) =
            final_read::read(&self.spec, Isolation::ReadCommitted, timeout)?;
        let (uncommitted, foreign_u) =
            final_read::read(&self.spec, Isolation::ReadUncommitted, timeout)?;
        let mut history = self.recorder.lock();
        history.eos.final_committed = committed;
        history.eos.final_uncommitted = uncommitted;
        history.eos.foreign += foreign_c + foreign_u;
        Ok(notes)
    }
}
