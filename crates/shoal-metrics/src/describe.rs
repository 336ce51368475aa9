//! HELP text and units for every metric, registered once when the recorder is installed, and
//! the unlabelled counters touched at 0 so a rate() works before the first event.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

use crate::names::*;

pub fn describe_all() {
    describe_counter!(REQUESTS_TOTAL, "Kafka requests answered, by API.");
    describe_counter!(
        REQUEST_ERRORS_TOTAL,
        "Error codes in Kafka responses, by API and Kafka error name (per partition where the API reports per partition)."
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from reading a Kafka request to its encoded response, by API (includes acks=all and long-poll waits)."
    );
    describe_counter!(
        RECORDS_IN_TOTAL,
        "Records appended for producers, by topic."
    );
    describe_counter!(
        BYTES_IN_TOTAL,
        Unit::Bytes,
        "Record batch bytes appended for producers, by topic."
    );
    describe_counter!(
        RECORDS_OUT_TOTAL,
        "Records returned to consumers by Fetch, by topic."
    );
    describe_counter!(
        BYTES_OUT_TOTAL,
        Unit::Bytes,
        "Record batch bytes returned to consumers by Fetch, by topic."
    );
    describe_counter!(
        ISR_SHRINKS_TOTAL,
        "ISR shrinks this broker proposed as leader and the controller committed."
    );
    describe_counter!(
        ISR_EXPANDS_TOTAL,
        "ISR expansions this broker proposed as leader and the controller committed."
    );
    describe_counter!(
        INTERNAL_RECORDS_SKIPPED_TOTAL,
        "Records of an internal topic (__consumer_offsets) that a coordinator could not decode while loading and skipped, by topic."
    );
    describe_gauge!(
        LOG_DIR_FREE_BYTES,
        Unit::Bytes,
        "Free bytes of the log directory's file system; appends stop below log.dir.min.free.bytes."
    );
    describe_counter!(
        LOG_CLEANER_SKIPPED_BATCHES_TOTAL,
        "Batches of a compacted partition whose records the cleaner could not read and kept as they are, since the log was opened."
    );
    describe_gauge!(
        LISTENER_CONNECTIONS,
        "Open connections, by listener (kafka:<name>, controller, replication, admin)."
    );
    describe_gauge!(
        LISTENER_MAX_CONNECTIONS,
        "The connection bound of each listener (max.connections for Kafka listeners; docs/configuration.md)."
    );
    describe_counter!(
        LISTENER_CONNECTIONS_REJECTED_TOTAL,
        "Connections closed on accept, by listener and reason (max_connections, max_connections_per_ip)."
    );
    describe_gauge!(
        REQUEST_MEMORY_POOL_USED_BYTES,
        Unit::Bytes,
        "Request bytes reserved from the queued.max.request.bytes pool, across all Kafka connections."
    );
    describe_gauge!(
        REQUEST_MEMORY_POOL_CAPACITY_BYTES,
        Unit::Bytes,
        "The queued.max.request.bytes pool's size."
    );
    describe_counter!(
        REQUEST_MEMORY_POOL_WAITS_TOTAL,
        "Frames whose connection paused reading because the queued.max.request.bytes pool was full."
    );
    describe_gauge!(
        FETCH_RESPONSE_POOL_USED_BYTES,
        Unit::Bytes,
        "Record bytes of Fetch responses being read, queued or written, reserved from the fetch.response.pool.bytes pool."
    );
    describe_gauge!(
        FETCH_RESPONSE_POOL_CAPACITY_BYTES,
        Unit::Bytes,
        "The fetch.response.pool.bytes pool's size."
    );
    describe_counter!(
        FETCH_RESPONSE_POOL_WAITS_TOTAL,
        "Fetches that waited because the fetch.response.pool.bytes pool was full."
    );
    describe_counter!(
        TXN_COMPLETED_TOTAL,
        "Transactions this broker coordinated to the end, by result (commit, abort)."
    );
    describe_histogram!(
        TXN_MARKERS_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a transaction's prepared state to its last marker written on every partition, by result."
    );
    describe_counter!(
        TXN_TIMED_OUT_TOTAL,
        "Transactions the coordinator aborted because they stayed open longer than transaction.timeout.ms."
    );
    describe_gauge!(
        TLS_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "When each TLS listener's own certificate expires (seconds since the epoch), by listener."
    );
    describe_counter!(
        TLS_RELOADS_TOTAL,
        "TLS stores loaded again after their files changed, by listener and result (ok, failed: the previous certificate stays)."
    );
    describe_counter!(
        INTERNODE_REFUSALS_TOTAL,
        "Requests and connections refused on the controller and replication links because a peer's certificate does not name the node it speaks for, by reason."
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES_TOTAL,
        "TLS handshakes that failed or timed out, by listener (plaintext clients on a TLS listener, untrusted client certificates, garbage)."
    );
    describe_counter!(
        SASL_AUTHENTICATIONS_TOTAL,
        "SASL authentications, by mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; unsupported: a mechanism not enabled) and result (ok, failed)."
    );
    describe_counter!(
        AUTHORIZATION_DENIALS_TOTAL,
        "Requests (or resources of one) the ACL authorizer denied, by API; each is an audit line on the shoal::audit target (at most 100 lines a second)."
    );
    describe_counter!(
        FRAMES_REFUSED_TOTAL,
        "Kafka connections closed for a frame, by reason (too_large: socket.request.max.bytes; larger_than_pool: queued.max.request.bytes; read_timeout: socket.request.read.timeout.ms; write_timeout: socket.response.write.timeout.ms, a client that stopped reading its responses)."
    );
    describe_histogram!(
        QUOTA_THROTTLE_TIME_SECONDS,
        Unit::Seconds,
        "Throttle times given to clients over their client quota (AlterClientQuotas), by quota_type (produce, fetch, request) and the user and client_id the quota counts by (empty: not counted by it; the first 1000 values of each, later ones _other). rate(_sum) is the share of time a client is held back."
    );
    describe_gauge!(PARTITIONS, "Partition replicas hosted on this broker.");
    describe_gauge!(LEADER_PARTITIONS, "Partitions this broker leads.");
    describe_gauge!(
        UNDER_REPLICATED_PARTITIONS,
        "Partitions led here whose ISR is smaller than their replica set."
    );
    describe_gauge!(
        UNDER_MIN_ISR_PARTITIONS,
        "Partitions led here whose ISR is below min.insync.replicas (acks=all writes fail)."
    );
    describe_gauge!(
        OFFLINE_PARTITIONS,
        "Partitions with no leader (reported by the active controller only)."
    );
    describe_gauge!(
        OFFLINE_REPLICAS,
        "Partitions assigned to this broker whose log cannot be opened (reported offline)."
    );
    describe_gauge!(
        LOG_SIZE_BYTES,
        Unit::Bytes,
        "Bytes on disk of a partition's log, by topic and partition."
    );
    describe_gauge!(LOG_END_OFFSET, "A hosted partition's log end offset.");
    describe_gauge!(HIGH_WATERMARK, "A hosted partition's high watermark.");
    describe_gauge!(
        LAST_STABLE_OFFSET,
        "A partition's last stable offset (read_committed consumers read below it), reported by its leader."
    );
    describe_gauge!(
        OPEN_TRANSACTIONS,
        "Transactions open in a partition (their first batch written, no marker yet), reported by its leader; 0 on followers."
    );
    describe_gauge!(
        OLDEST_OPEN_TRANSACTION_AGE_SECONDS,
        Unit::Seconds,
        "Age of a partition's oldest open transaction, from the timestamp of its first batch; 0 when none is open (and on followers)."
    );
    describe_gauge!(
        TXN_COORDINATOR_OPEN_TRANSACTIONS,
        "Transactional ids this broker coordinates whose transaction is open (Ongoing, PrepareCommit, PrepareAbort, PrepareEpochFence)."
    );
    describe_gauge!(
        GROUP_LAG,
        "High watermark minus committed offset, by group, topic and partition (reported by the group's coordinator for partitions it hosts)."
    );
    describe_gauge!(
        GROUP_COMMITTED_OFFSET,
        "A group's committed offset, by group, topic and partition."
    );
    describe_gauge!(GROUPS, "Consumer groups this broker coordinates.");
    describe_gauge!(
        ACTIVE_CONTROLLER,
        "1 on the active controller (the Raft leader), 0 on other voters."
    );
    describe_gauge!(RAFT_TERM, "This voter's current Raft term.");
    describe_gauge!(
        RAFT_COMMIT_INDEX,
        "The metadata log's commit index as this voter knows it."
    );
    describe_gauge!(
        RAFT_APPLIED_INDEX,
        "The metadata log index this voter's state machine applied."
    );
    describe_gauge!(
        METADATA_APPLIED_OFFSET,
        "The metadata log offset of the image this node serves from."
    );
    describe_gauge!(BROKERS, "Registered brokers (active controller only).");
    describe_gauge!(
        FENCED_BROKERS,
        "Registered brokers that are fenced (active controller only)."
    );
    describe_gauge!(
        BROKER_UNFENCED,
        "1 while this broker is registered and unfenced."
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident set size of the process."
    );
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors of the process.");
    describe_gauge!(
        PROCESS_UPTIME_SECONDS,
        Unit::Seconds,
        "Seconds since the process started."
    );
    metrics::counter!(ISR_SHRINKS_TOTAL).absolute(0);
    metrics::counter!(ISR_EXPANDS_TOTAL).absolute(0);
    metrics::counter!(INTERNAL_RECORDS_SKIPPED_TOTAL, "topic" => "__consumer_offsets").absolute(0);
}
