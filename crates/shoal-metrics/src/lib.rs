//! Every metric Shoal exports, by name, in one place, so docs/metrics.md and the code cannot
//! drift apart, and the helpers that keep label sets bounded.
//!
//! Crates record through the `metrics` facade: with no recorder installed (unit tests, the
//! in-process test clusters) a record is a no-op; the `shoal` binary installs the Prometheus
//! recorder and serves it on the admin listener's `/metrics`. Gauges that describe state
//! (leaders, ISR health, lag, Raft indexes) are not recorded here but computed at scrape time
//! from the node's state, so they can never go stale.

mod describe;
pub mod names;
mod topic_label;

pub use describe::describe_all;

pub use topic_label::{
    MAX_QUOTA_ENTITY_LABELS, MAX_TOPIC_LABELS, OTHER_TOPICS, quota_client_id_label,
    quota_user_label, topic_label,
};

use std::time::Duration;

/// One Kafka request answered: its API, how long it took from read to encoded response, and
/// the error codes the response carried (`error` label: Kafka's error name).
pub fn record_request(api: &'static str, elapsed: Duration, errors: &[&'static str]) {
    metrics::counter!(names::REQUESTS_TOTAL, "api" => api).increment(1);
    metrics::histogram!(names::REQUEST_DURATION_SECONDS, "api" => api)
        .record(elapsed.as_secs_f64());
    for error in errors {
        metrics::counter!(names::REQUEST_ERRORS_TOTAL, "api" => api, "error" => *error)
            .increment(1);
    }
}

/// A client over its quota was throttled (`quota_type`: produce, fetch or request) for `throttle`; the
/// user and client id labels are those the quota counts by (empty when it does not), bounded.
pub fn record_quota_throttle(
    quota_type: &'static str,
    user: &str,
    client_id: &str,
    throttle: Duration,
) {
    let user = quota_user_label(user);
    let client_id = quota_client_id_label(client_id);
    metrics::histogram!(names::QUOTA_THROTTLE_TIME_SECONDS, "quota_type" => quota_type,
        "user" => user, "client_id" => client_id)
    .record(throttle.as_secs_f64());
}

/// Records and bytes a leader appended for producers.
pub fn record_produced(topic: &str, records: u64, bytes: u64) {
    let topic = topic_label(topic);
    metrics::counter!(names::RECORDS_IN_TOTAL, "topic" => topic.clone()).increment(records);
    metrics::counter!(names::BYTES_IN_TOTAL, "topic" => topic).increment(bytes);
}

/// Records and bytes returned to consumers by Fetch (followers replicate over gRPC and are not
/// counted here).
pub fn record_fetched(topic: &str, records: u64, bytes: u64) {
    let topic = topic_label(topic);
    metrics::counter!(names::RECORDS_OUT_TOTAL, "topic" => topic.clone()).increment(records);
    metrics::counter!(names::BYTES_OUT_TOTAL, "topic" => topic).increment(bytes);
}

/// Records of an internal topic that a coordinator's load could not decode and skipped.
pub fn record_internal_records_skipped(topic: &'static str, records: u64) {
    metrics::counter!(names::INTERNAL_RECORDS_SKIPPED_TOTAL, "topic" => topic).increment(records);
}

/// A coordinated transaction's markers are all written (`commit` or `abort`), and how long
/// writing them took.
pub fn record_txn_markers_written(commit: bool, took: std::time::Duration) {
    let result = if commit { "commit" } else { "abort" };
    metrics::counter!(names::TXN_COMPLETED_TOTAL, "result" => result).increment(1);
    metrics::histogram!(names::TXN_MARKERS_DURATION_SECONDS, "result" => result)
        .record(took.as_secs_f64());
}

/// The coordinator aborted a transaction open longer than its timeout.
pub fn record_txn_timed_out() {
    metrics::counter!(names::TXN_TIMED_OUT_TOTAL).increment(1);
}

/// A log directory's free bytes, as last read (`dir`: its path; at most `log.dirs` of them).
pub fn set_log_dir_free_bytes(dir: &str, bytes: u64) {
    metrics::gauge!(names::LOG_DIR_FREE_BYTES, "dir" => dir.to_string()).set(bytes as f64);
}

/// The controller committed an ISR change this leader proposed.
pub fn record_isr_change(shrunk: bool) {
    let name = if shrunk {
        names::ISR_SHRINKS_TOTAL
    } else {
        names::ISR_EXPANDS_TOTAL
    };
    metrics::counter!(name).increment(1);
}

/// A listener's connection bound (`listener`: `kafka:<name>`, `controller`, `replication`,
/// `admin`).
pub fn record_listener_max_connections(listener: &str, max_connections: usize) {
    metrics::gauge!(names::LISTENER_MAX_CONNECTIONS, "listener" => listener.to_owned())
        .set(max_connections as f64);
}

/// A connection admitted on (`opened`) or gone from a listener.
pub fn record_listener_connection(listener: &str, opened: bool) {
    let gauge = metrics::gauge!(names::LISTENER_CONNECTIONS, "listener" => listener.to_owned());
    if opened {
        gauge.increment(1.0);
    } else {
        gauge.decrement(1.0);
    }
}

/// A connection closed on accept; `reason` is the bound it hit.
pub fn record_listener_rejection(listener: &str, reason: &'static str) {
    metrics::counter!(names::LISTENER_CONNECTIONS_REJECTED_TOTAL,
        "listener" => listener.to_owned(), "reason" => reason)
    .increment(1);
}

/// The request memory pool's size (`queued.max.request.bytes`).
pub fn record_request_pool_capacity(capacity_bytes: usize) {
    metrics::gauge!(names::REQUEST_MEMORY_POOL_CAPACITY_BYTES).set(capacity_bytes as f64);
}

/// Bytes reserved from (`reserved`) or given back to the request memory pool. A delta, not
/// the total: concurrent connections would otherwise race to set a stale value.
pub fn record_request_pool_use(bytes: usize, reserved: bool) {
    let gauge = metrics::gauge!(names::REQUEST_MEMORY_POOL_USED_BYTES);
    if reserved {
        gauge.increment(bytes as f64);
    } else {
        gauge.decrement(bytes as f64);
    }
}

/// A connection paused reading until the request memory pool could grant its frame.
pub fn record_request_pool_wait() {
    metrics::counter!(names::REQUEST_MEMORY_POOL_WAITS_TOTAL).increment(1);
}

/// The fetch response pool's size (`fetch.response.pool.bytes`).
pub fn record_fetch_pool_capacity(capacity_bytes: usize) {
    metrics::gauge!(names::FETCH_RESPONSE_POOL_CAPACITY_BYTES).set(capacity_bytes as f64);
}

/// Bytes reserved from (`reserved`) or given back to the fetch response pool (a delta).
pub fn record_fetch_pool_use(bytes: usize, reserved: bool) {
    let gauge = metrics::gauge!(names::FETCH_RESPONSE_POOL_USED_BYTES);
    if reserved {
        gauge.increment(bytes as f64);
    } else {
        gauge.decrement(bytes as f64);
    }
}

/// A fetch waited for the fetch response pool.
pub fn record_fetch_pool_wait() {
    metrics::counter!(names::FETCH_RESPONSE_POOL_WAITS_TOTAL).increment(1);
}

/// When `listener`'s certificate expires.
pub fn record_tls_certificate_expiry(listener: &str, not_after_unix_s: i64) {
    metrics::gauge!(names::TLS_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS, "listener" => listener.to_owned())
        .set(not_after_unix_s as f64);
}

/// A reload of `listener`'s TLS stores after their files changed.
pub fn record_tls_reload(listener: &str, ok: bool) {
    metrics::counter!(names::TLS_RELOADS_TOTAL, "listener" => listener.to_owned(),
        "result" => if ok { "ok" } else { "failed" })
    .increment(1);
}

/// A SASL authentication finished (`mechanism` as named, or `unsupported`).
pub fn record_sasl_authentication(mechanism: &str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!(names::SASL_AUTHENTICATIONS_TOTAL, "mechanism" => mechanism.to_owned(), "result" => result)
        .increment(1);
}

/// The authorizer denied a request of `api` (or one resource of it).
pub fn record_authorization_denial(api: &'static str) {
    metrics::counter!(names::AUTHORIZATION_DENIALS_TOTAL, "api" => api).increment(1);
}

/// A TLS handshake on `listener` failed or timed out.
pub fn record_tls_handshake_failure(listener: &str) {
    metrics::counter!(names::TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => listener.to_owned())
        .increment(1);
}

/// A node link refused a peer (`node_id_mismatch`: its certificate names another node or none;
/// `unmapped_certificate`: no `ssl.principal.mapping.rules` rule maps its subject).
pub fn record_internode_refusal(reason: &'static str) {
    metrics::counter!(names::INTERNODE_REFUSALS_TOTAL, "reason" => reason).increment(1);
}

/// A Kafka connection closed for a frame (`too_large`, `larger_than_pool`, `read_timeout`).
pub fn record_frame_refused(reason: &'static str) {
    metrics::counter!(names::FRAMES_REFUSED_TOTAL, "reason" => reason).increment(1);
}
