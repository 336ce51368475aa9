//! Metric names. Counters end in `_total`, durations are `_seconds` histograms, sizes are
//! `_bytes`; all carry the `shoal_` prefix. docs/metrics.md describes each one.

// Recorded as things happen.
pub const REQUESTS_TOTAL: &str = "shoal_kafka_requests_total";
pub const REQUEST_ERRORS_TOTAL: &str = "shoal_kafka_request_errors_total";
pub const REQUEST_DURATION_SECONDS: &str = "shoal_kafka_request_duration_seconds";
pub const RECORDS_IN_TOTAL: &str = "shoal_topic_records_in_total";
pub const BYTES_IN_TOTAL: &str = "shoal_topic_bytes_in_total";
pub const RECORDS_OUT_TOTAL: &str = "shoal_topic_records_out_total";
pub const BYTES_OUT_TOTAL: &str = "shoal_topic_bytes_out_total";
pub const ISR_SHRINKS_TOTAL: &str = "shoal_isr_shrinks_total";
pub const ISR_EXPANDS_TOTAL: &str = "shoal_isr_expands_total";
pub const INTERNAL_RECORDS_SKIPPED_TOTAL: &str = "shoal_internal_records_skipped_total";
pub const LOG_DIR_FREE_BYTES: &str = "shoal_log_dir_free_bytes";
pub const LISTENER_CONNECTIONS: &str = "shoal_listener_connections";
pub const LISTENER_MAX_CONNECTIONS: &str = "shoal_listener_max_connections";
pub const LISTENER_CONNECTIONS_REJECTED_TOTAL: &str = "shoal_listener_connections_rejected_total";
pub const REQUEST_MEMORY_POOL_USED_BYTES: &str = "shoal_kafka_request_memory_pool_used_bytes";
pub const REQUEST_MEMORY_POOL_CAPACITY_BYTES: &str =
    "shoal_kafka_request_memory_pool_capacity_bytes";
pub const REQUEST_MEMORY_POOL_WAITS_TOTAL: &str = "shoal_kafka_request_memory_pool_waits_total";
pub const FETCH_RESPONSE_POOL_USED_BYTES: &str = "shoal_kafka_fetch_response_pool_used_bytes";
pub const FETCH_RESPONSE_POOL_CAPACITY_BYTES: &str =
    "shoal_kafka_fetch_response_pool_capacity_bytes";
pub const FETCH_RESPONSE_POOL_WAITS_TOTAL: &str = "shoal_kafka_fetch_response_pool_waits_total";
pub const TLS_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: &str =
    "shoal_tls_certificate_expiry_timestamp_seconds";
pub const TLS_RELOADS_TOTAL: &str = "shoal_tls_reloads_total";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "shoal_tls_handshake_failures_total";
pub const INTERNODE_REFUSALS_TOTAL: &str = "shoal_internode_refusals_total";
pub const SASL_AUTHENTICATIONS_TOTAL: &str = "shoal_sasl_authentications_total";
pub const AUTHORIZATION_DENIALS_TOTAL: &str = "shoal_authorization_denials_total";
pub const FRAMES_REFUSED_TOTAL: &str = "shoal_kafka_frames_refused_total";
pub const QUOTA_THROTTLE_TIME_SECONDS: &str = "shoal_quota_throttle_time_seconds";
pub const TXN_COMPLETED_TOTAL: &str = "shoal_txn_completed_total";
pub const TXN_MARKERS_DURATION_SECONDS: &str = "shoal_txn_markers_duration_seconds";
pub const TXN_TIMED_OUT_TOTAL: &str = "shoal_txn_timed_out_total";

// Computed from the node's state at scrape time.
pub const PARTITIONS: &str = "shoal_partitions";
pub const LEADER_PARTITIONS: &str = "shoal_leader_partitions";
pub const UNDER_REPLICATED_PARTITIONS: &str = "shoal_under_replicated_partitions";
pub const UNDER_MIN_ISR_PARTITIONS: &str = "shoal_under_min_isr_partitions";
pub const OFFLINE_PARTITIONS: &str = "shoal_offline_partitions";
pub const OFFLINE_REPLICAS: &str = "shoal_offline_replicas";
pub const LOG_SIZE_BYTES: &str = "shoal_log_size_bytes";
pub const LOG_END_OFFSET: &str = "shoal_log_end_offset";
pub const HIGH_WATERMARK: &str = "shoal_high_watermark";
pub const LAST_STABLE_OFFSET: &str = "shoal_last_stable_offset";
pub const OPEN_TRANSACTIONS: &str = "shoal_open_transactions";
pub const OLDEST_OPEN_TRANSACTION_AGE_SECONDS: &str = "shoal_oldest_open_transaction_age_seconds";
pub const TXN_COORDINATOR_OPEN_TRANSACTIONS: &str = "shoal_txn_coordinator_open_transactions";
pub const LOG_CLEANER_SKIPPED_BATCHES_TOTAL: &str = "shoal_log_cleaner_skipped_batches_total";
pub const GROUP_LAG: &str = "shoal_consumer_group_lag";
pub const GROUP_COMMITTED_OFFSET: &str = "shoal_consumer_group_committed_offset";
pub const GROUPS: &str = "shoal_consumer_groups";
pub const ACTIVE_CONTROLLER: &str = "shoal_active_controller";
pub const RAFT_TERM: &str = "shoal_raft_term";
pub const RAFT_COMMIT_INDEX: &str = "shoal_raft_commit_index";
pub const RAFT_APPLIED_INDEX: &str = "shoal_raft_applied_index";
pub const METADATA_APPLIED_OFFSET: &str = "shoal_metadata_applied_offset";
pub const BROKERS: &str = "shoal_brokers";
pub const FENCED_BROKERS: &str = "shoal_fenced_brokers";
pub const BROKER_UNFENCED: &str = "shoal_broker_unfenced";
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "shoal_process_resident_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "shoal_process_open_fds";
pub const PROCESS_UPTIME_SECONDS: &str = "shoal_process_uptime_seconds";
