//! `/metrics`: the Prometheus recorder, and the gauges computed from the node's state at each
//! scrape.
//!
//! Counters and histograms (requests, bytes, ISR changes) are recorded where things happen,
//! through `shoal-metrics`. State (how many partitions lead here, which are under-replicated,
//! the Raft indexes, lag) is read fresh when Prometheus asks, so a gauge can never disagree
//! with the node; series for things that went away (a deleted topic) are dropped after
//! [`STALE_SERIES_AFTER`] without an update.

mod process;
mod state;
mod txn;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

pub use state::StateSources;

/// Series of gauges not set for this long disappear (scrapes set every live one).
pub const STALE_SERIES_AFTER: Duration = Duration::from_secs(120);

/// Latency buckets, seconds: 0.5 ms to 30 s (a long-polling Fetch waits up to its max wait).
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later calls reuse it.
pub fn install() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_S)?
        .idle_timeout(MetricKindMask::GAUGE, Some(STALE_SERIES_AFTER))
        .install_recorder()?;
    shoal_metrics::describe_all();
    process::start_clock();
    Ok(HANDLE.get_or_init(|| handle))
}

/// Sets the state gauges, then renders everything in the Prometheus text format.
pub async fn render(sources: &Arc<StateSources>) -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    state::refresh(sources).await;
    process::refresh();
    handle.run_upkeep();
    handle.render()
}
