//! Process gauges from /proc/self (Linux): resident memory, open file descriptors, uptime.

use std::sync::OnceLock;
use std::time::Instant;

use shoal_metrics::names;

static STARTED: OnceLock<Instant> = OnceLock::new();

pub fn start_clock() {
    STARTED.get_or_init(Instant::now);
}

pub fn refresh() {
    if let Some(started) = STARTED.get() {
        metrics::gauge!(names::PROCESS_UPTIME_SECONDS).set(started.elapsed().as_secs_f64());
    }
    if let Some(rss) = resident_bytes() {
        metrics::gauge!(names::PROCESS_RESIDENT_MEMORY_BYTES).set(rss as f64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!(names::PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
}

/// VmRSS from /proc/self/status (in kB there).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
