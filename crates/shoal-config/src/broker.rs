//! Every broker, controller and group setting a node accepts, by its Kafka name.
//!
//! Kafka's defaults, except where a row's documentation says why Shoal differs. Settings that
//! are units of another (`log.retention.hours`) are synonyms: Kafka's precedence is the canonical
//! name first, then the synonyms in table order.

use crate::def::{ConfigDef, ConfigType, DynamicScope, Section, Support, Synonym, Unit, Validator};

/// Kafka's (KRaft) authorizer class; the one value of `authorizer.class.name` that enables ACLs.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A setting with the defaults of most: read-only, applied, not a synonym (topic-only
/// definitions are built the same way).
pub(crate) const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    unit: Unit,
    validator: Validator,
    section: Section,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        config_type,
        default,
        unit,
        validator,
        doc,
        section,
        dynamic: DynamicScope::ReadOnly,
        support: Support::Applied,
        synonym_of: None,
        shoal_only: false,
        sensitive: false,
        reloaded: false,
    }
}

impl ConfigDef {
    const fn dynamic(mut self, scope: DynamicScope) -> Self {
        self.dynamic = scope;
        self
    }

    const fn ignored(mut self, reason: &'static str) -> Self {
        self.support = Support::Ignored(reason);
        self.section = Section::Ignored;
        self
    }

    const fn synonym_of(mut self, of: &'static str, scale: i64) -> Self {
        self.synonym_of = Some(Synonym { of, scale });
        self
    }

    const fn shoal(mut self) -> Self {
        self.shoal_only = true;
        self
    }

    const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Dynamic in Kafka and applied at once by Shoal (see [`ConfigDef::is_alterable`]).
    const fn reloaded(mut self, scope: DynamicScope) -> Self {
        self.dynamic = scope;
        self.reloaded = true;
        self
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, Short, String as Str};
use DynamicScope::{ClusterWide, PerBroker};
use Section::{Cleaner, Groups, Log, Network, Node, Replication, Transactions};
use Unit::{Bytes, BytesPerSecond, Count, Hours, Milliseconds, Minutes, Percent, Ratio, Seconds};
use Validator::{Any, AtLeast, Between, BetweenF, BetweenOr, ListOf, NonEmpty, OneOf, Positive};

const I64_MAX: &str = "9223372036854775807";
const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every setting, grouped by section; names are unique (a test checks).
/// Why the GSSAPI settings do nothing.
const KERBEROS: &str = "Shoal has no GSSAPI (Kerberos) SASL mechanism: as on a Kafka broker without a GSSAPI listener, a value (also set per broker with IncrementalAlterConfigs or AlterConfigs) is kept and shown, and has no effect";

pub static BROKER_CONFIGS: &[ConfigDef] = &[
    // ---- node ----
    def("node.id", Int, Some("1"), Unit::None, AtLeast(0), Node,
        "This node's id: its broker id and its controller voter id."),
    def("broker.id", Int, None, Unit::None, AtLeast(0), Node,
        "Kafka's older name for node.id; node.id wins when both are set.")
        .synonym_of("node.id", 1),
    def("process.roles", List, Some("broker,controller"), Unit::None,
        ListOf(&["broker", "controller"]), Node,
        "broker, controller, or both (docs/cluster.md). A voter must run controller; a broker-only node must not be a voter."),
    def("log.dirs", List, Some("./data"), Unit::None, NonEmpty, Node,
        "The log directories (Kafka's JBOD), comma-separated: the first holds meta/ (the metadata quorum) and partition logs, every other one partition logs; a new replica goes to the directory with the fewest partitions. At most 32, none inside another."),
    def("log.dir", Str, None, Unit::None, NonEmpty, Node,
        "Kafka's single-directory name; log.dirs wins when both are set.")
        .synonym_of("log.dirs", 1),
    def("cluster.id", Str, None, Unit::None, NonEmpty, Node,
        "The cluster this node belongs to: generated at the first start of a single voter; required at the first start of a multi-voter or broker-only node; a data directory of another cluster is refused."),
    def("broker.rack", Str, None, Unit::None, NonEmpty, Node,
        "This broker's rack, reported in Metadata and DescribeCluster; new replicas are spread over racks (Kafka's rack-aware assignment; brokers without one count as one rack)."),
    def("controller.quorum.voters", List, None, Unit::None, NonEmpty, Node,
        "The metadata quorum's voters, id@host:port,... Unset on a node that runs a controller: this node alone, at its controller listener (a one-voter quorum, as kafka-storage format --standalone)."),
    def("controller.listener.names", List, Some("CONTROLLER"), Unit::None, NonEmpty, Node,
        "Which of listeners carry controller traffic (gRPC) rather than Kafka clients."),
    def("broker.heartbeat.interval.ms", Int, Some("250"), Milliseconds, AtLeast(10), Node,
        "How often a broker heartbeats the active controller (Kafka: 2000; shorter here so a dead broker is fenced sooner)."),
    def("broker.session.timeout.ms", Int, Some("1500"), Milliseconds, AtLeast(100), Node,
        "A broker silent this long is fenced and its partitions get new leaders (Kafka: 9000; docs/cluster.md says why)."),
    def("controlled.shutdown.enable", Boolean, Some("true"), Unit::None, Any, Node,
        "On SIGTERM, ask the controller to move this broker's leaderships away before closing."),
    def("shutdown.timeout.ms", Long, Some("10000"), Milliseconds, AtLeast(0), Node,
        "How long SIGTERM waits for requests already read to finish.")
        .shoal(),
    def("admin.listener", Str, Some("127.0.0.1:9644"), Unit::None, NonEmpty, Node,
        "HTTP listener for /metrics, /healthz, /readyz and /v1/* (host:port).")
        .shoal(),
    def("admin.listener.token.file", Str, None, Unit::None, NonEmpty, Node,
        "A file holding a bearer token (at least 16 characters): /metrics and /v1/* then answer only requests with Authorization: Bearer <token> (or, with ADMIN:SSL and ssl.client.auth, a verified client certificate); /healthz and /readyz stay open.")
        .shoal(),
    // ---- network ----
    def("listeners", List, Some("PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
        Unit::None, NonEmpty, Network,
        "Named listeners to bind, NAME://host:port,... An empty host binds every interface.")
        .dynamic(PerBroker),
    def("advertised.listeners", List, None, Unit::None, Any, Network,
        "Addresses given to clients, per listener name (unset or empty: the Kafka listeners).")
        .dynamic(PerBroker),
    def("listener.security.protocol.map", List,
        Some("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Unit::None, NonEmpty, Network,
        "Listener name → security protocol. Kafka listeners serve PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL. The node links serve PLAINTEXT or SSL, which is mutual TLS with node certificates (CN=node-<id>): the controller listener's entry secures the quorum and every node's connections to it, the reserved name REPLICATION (absent: PLAINTEXT) secures replication; the reserved name ADMIN (absent: PLAINTEXT) serves the admin HTTP listener over TLS (docs/security.md).")
        .dynamic(PerBroker),
    // ---- TLS (KIP-651 PEM stores); each may be given per listener as listener.name.<name>.<setting> ----
    def("ssl.keystore.type", Str, Some("PEM"), Unit::None, OneOf(&["PEM"]), Network,
        "The listener's keystore format: PEM only (Kafka: JKS by default; convert with openssl)."),
    def("ssl.keystore.location", Str, None, Unit::None, NonEmpty, Network,
        "A PEM file holding the listener's private key and certificate chain."),
    def("ssl.keystore.certificate.chain", Str, None, Unit::None, NonEmpty, Network,
        "The listener's certificate chain as PEM text (with ssl.keystore.key, instead of ssl.keystore.location)."),
    def("ssl.keystore.key", Str, None, Unit::None, NonEmpty, Network,
        "The listener's private key as unencrypted PEM text.")
        .sensitive(),
    def("ssl.key.password", Str, None, Unit::None, Any, Network,
        "Password of an encrypted private key: not supported, refused when set (give an unencrypted key readable only by the node's user).")
        .sensitive(),
    def("ssl.truststore.type", Str, Some("PEM"), Unit::None, OneOf(&["PEM"]), Network,
        "The truststore format: PEM only."),
    def("ssl.truststore.location", Str, None, Unit::None, NonEmpty, Network,
        "A PEM file of the CAs client certificates must chain to (needed by ssl.client.auth requested or required)."),
    def("ssl.truststore.certificates", Str, None, Unit::None, NonEmpty, Network,
        "The truststore's CA certificates as PEM text."),
    def("ssl.client.auth", Str, Some("none"), Unit::None, OneOf(&["none", "requested", "required"]), Network,
        "Whether TLS clients must present a certificate that chains to the truststore (always required on the node links, CONTROLLER and REPLICATION)."),
    def("ssl.enabled.protocols", List, Some("TLSv1.2,TLSv1.3"), Unit::None, ListOf(&["TLSv1.2", "TLSv1.3"]), Network,
        "TLS versions offered; older ones are not supported."),
    def("ssl.principal.mapping.rules", Str, Some("DEFAULT"), Unit::None, NonEmpty, Network,
        "How a client certificate's subject (RFC 2253, e.g. CN=alice,OU=eng) becomes the principal User:<name>: RULE:<regex>/<replacement>/[L|U] and DEFAULT, first match wins; a subject no rule maps is refused."),
    def("ssl.keystore.reload.interval.ms", Long, Some("10000"), Milliseconds, AtLeast(100), Network,
        "How often a TLS listener checks its PEM files; changed files are loaded for new connections without a restart (a file that does not load keeps the old certificate).")
        .shoal(),
    def("sasl.enabled.mechanisms", List, Some("SCRAM-SHA-256,SCRAM-SHA-512"), Unit::None, ListOf(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]), Network,
        "SASL mechanisms a SASL_PLAINTEXT or SASL_SSL listener offers (per listener with listener.name.<l>.); users and credentials come from the metadata log (AlterUserScramCredentials), PLAIN checks passwords against them."),
    def("sasl.oauthbearer.jwks.endpoint.url", Str, None, Unit::None, Any, Network,
        "OAUTHBEARER: the JWKS whose keys sign valid tokens (RS256, ES256), as a file: URL or a path, read at start-up; unset: unsecured tokens (alg none) are accepted, for development only."),
    def("sasl.oauthbearer.jwks.endpoint.refresh.ms", Long, Some("3600000"), Milliseconds, AtLeast(100), Network,
        "OAUTHBEARER: how often the JWKS file is checked; a changed file that parses replaces the keys without a restart (one that does not keeps the old keys)."),
    def("sasl.oauthbearer.expected.issuer", Str, None, Unit::None, Any, Network,
        "OAUTHBEARER: the iss claim a token must carry (unset: any)."),
    def("sasl.oauthbearer.expected.audience", List, None, Unit::None, Any, Network,
        "OAUTHBEARER: audiences of which a token's aud claim must name one (unset: any)."),
    def("sasl.oauthbearer.sub.claim.name", Str, Some("sub"), Unit::None, NonEmpty, Network,
        "OAUTHBEARER: the claim that names the principal (User:<claim>)."),
    def("sasl.oauthbearer.clock.skew.seconds", Int, Some("30"), Seconds, AtLeast(0), Network,
        "OAUTHBEARER: how far clocks may disagree when checking exp and nbf."),
    def("connections.max.reauth.ms", Long, Some("0"), Milliseconds, AtLeast(0), Network,
        "A SASL session's lifetime: clients re-authenticate on the connection before it ends (KIP-368), and a request after it closes the connection; 0: sessions do not expire."),
    def("connection.failed.authentication.delay.ms", Int, Some("100"), Milliseconds, AtLeast(0), Network,
        "How long a failed SASL authentication waits before its answer and the closed connection, so a client cannot try passwords fast."),
    def("authorizer.class.name", Str, Some(""), Unit::None, OneOf(&["", STANDARD_AUTHORIZER]), Network,
        "Kafka's StandardAuthorizer class name switches ACL authorization on (ACLs from CreateAcls, kept in the metadata log); empty: every request is allowed."),
    def("super.users", Str, Some(""), Unit::None, Any, Network,
        "Principals allowed everything whatever the ACLs say, separated by ';' (e.g. User:admin;User:CN=ops)."),
    def("allow.everyone.if.no.acl.found", Boolean, Some("false"), Unit::None, Any, Network,
        "With an authorizer: whether a resource no ACL matches is open to everyone (false: only super users)."),
    def("inter.broker.listener.name", Str, Some("PLAINTEXT"), Unit::None, NonEmpty, Network,
        "Kafka's listener for broker-to-broker traffic; must name a Kafka listener.")
        .ignored("followers replicate over replication.listener (gRPC), not a Kafka listener"),
    def("replication.listener", Str, Some("127.0.0.1:9094"), Unit::None, NonEmpty, Network,
        "Where followers fetch from this broker (gRPC, docs/replication.md), host:port; port 0 picks one.")
        .shoal(),
    def("advertised.replication.listener", Str, None, Unit::None, Any, Network,
        "The host:port other brokers reach replication.listener at (unset or empty: the bound one); required when it binds 0.0.0.0.")
        .shoal(),
    def("socket.request.max.bytes", Int, Some("104857600"), Bytes, AtLeast(1), Network,
        "Largest request frame; a larger frame closes the connection."),
    def("max.request.partition.size.limit", Int, Some("2000"), Count, AtLeast(1), Network,
        "Most partitions one DescribeTopicPartitions answer carries (KIP-966); a client asking for more gets a cursor to continue from."),
    def("max.connections", Int, Some("10000"), Count, AtLeast(1), Network,
        "Connections per listener; more are closed on accept (Kafka: unlimited).")
        .dynamic(ClusterWide),
    def("max.connections.per.ip", Int, Some("1000"), Count, AtLeast(0), Network,
        "Connections per listener from one source address; more are closed on accept (Kafka: unlimited; bounded below max.connections so one peer cannot lock every other client out)."),
    def("max.connections.per.ip.overrides", Str, Some(""), Unit::None, Any, Network,
        "Per-address exceptions to max.connections.per.ip, ip:count,ip:count (IP addresses; IPv6 as [::1]:count)."),
    def("queued.max.request.bytes", Long, Some("268435456"), Bytes, AtLeast(1), Network,
        "Request bytes read or being handled across all Kafka connections of the node; a connection whose frame does not fit pauses reading until memory frees, a frame larger than this is refused (Kafka: -1, unbounded; Shoal insists on a bound)."),
    def("socket.request.read.timeout.ms", Long, Some("30000"), Milliseconds, AtLeast(1), Network,
        "Once a request frame's first byte has arrived, the whole frame must arrive within this, else the connection is closed (time waiting for queued.max.request.bytes does not count).")
        .shoal(),
    def("socket.response.write.timeout.ms", Long, Some("30000"), Milliseconds, AtLeast(1), Network,
        "A response write that makes no progress for this long (the client stopped reading) closes the connection, giving back the memory its responses held.")
        .shoal(),
    def("connections.max.idle.ms", Long, Some("600000"), Milliseconds, AtLeast(1000), Network,
        "Idle connections are closed after this."),
    def("queued.max.requests.per.connection", Int, Some("64"), Count, AtLeast(1), Network,
        "Pipelined requests read ahead per connection.")
        .shoal(),
    def("fetch.max.bytes", Int, Some("57671680"), Bytes, AtLeast(1024), Network,
        "Most record bytes in one Fetch response, whatever the client asks."),
    def("fetch.response.pool.bytes", Long, Some("268435456"), Bytes, AtLeast(1048576), Network,
        "Record bytes of Fetch responses read but not yet written to their sockets, across all Kafka connections of the node; a fetch reads at most what is free (at least one batch), and waits while less than 1 MiB is (Kafka sends from the page cache and has no such bound).")
        .shoal(),
    // ---- replication ----
    def("default.replication.factor", Short, Some("1"), Count, AtLeast(1), Replication,
        "Replicas of an auto-created topic, or of one created without a factor (single-node rule: docs/configuration.md)."),
    def("min.insync.replicas", Int, Some("1"), Count, AtLeast(1), Replication,
        "Minimum ISR size for an acks=all produce to succeed.")
        .dynamic(ClusterWide),
    def("unclean.leader.election.enable", Boolean, Some("false"), Unit::None, Any, Replication,
        "Allow a replica outside the ISR to become leader, at the cost of data loss.")
        .dynamic(ClusterWide),
    def("replica.lag.time.max.ms", Long, Some("30000"), Milliseconds, AtLeast(1), Replication,
        "A follower not caught up for this long is proposed out of the ISR."),
    def("replica.high.watermark.checkpoint.interval.ms", Long, Some("5000"), Milliseconds,
        AtLeast(10), Replication,
        "How often each partition's high watermark is checkpointed to disk."),
    def("auto.leader.rebalance.enable", Boolean, Some("true"), Unit::None, Any, Replication,
        "Move leadership back to preferred replicas that are in sync."),
    def("leader.imbalance.check.interval.seconds", Long, Some("300"), Seconds, AtLeast(1),
        Replication, "How often the active controller checks leader balance."),
    def("leader.imbalance.per.broker.percentage", Int, Some("10"), Percent, Between(0, 100),
        Replication, "A broker's share of misplaced leaders that triggers a rebalance."),
    def("leader.replication.throttled.rate", Long, Some("9223372036854775807"), BytesPerSecond,
        AtLeast(0), Replication,
        "Bytes/s this broker sends as leader to followers of throttled replicas (a topic's leader.replication.throttled.replicas) that are out of the ISR, measured over replication.quota.window.num windows. Dynamic: IncrementalAlterConfigs sets it for one broker or as the cluster default, applied at once.")
        .reloaded(ClusterWide),
    def("follower.replication.throttled.rate", Long, Some("9223372036854775807"), BytesPerSecond,
        AtLeast(0), Replication,
        "Bytes/s this broker fetches as follower for its throttled replicas (a topic's follower.replication.throttled.replicas) while out of the ISR. Dynamic, like leader.replication.throttled.rate.")
        .reloaded(ClusterWide),
    def("replica.alter.log.dirs.io.max.bytes.per.second", Long, Some("9223372036854775807"),
        BytesPerSecond, AtLeast(1), Replication,
        "Bytes/s a broker copies when moving replicas between its log directories (AlterReplicaLogDirs); the default means unlimited. Dynamic: IncrementalAlterConfigs sets it for one broker or as the cluster default, read before each copy pass.")
        .reloaded(ClusterWide),
    def("num.replica.alter.log.dirs.threads", Int, None, Count, AtLeast(1), Replication,
        "Most replica moves between log directories (AlterReplicaLogDirs) a broker copies at once; unset means one per log directory, as Kafka. Read at start-up.")
        .dynamic(PerBroker),
    def("shoal.balancer.enabled", Boolean, Some("false"), Unit::None, Any, Replication,
        "Shoal's own (Redpanda's continuous balancing): the active controller moves replicas to even replica counts, preferred leaders and bytes per broker, with the plan of shoalctl cluster balance, while no partition is moving and no broker holding replicas is down. Dynamic: the controller reads the cluster-wide value each round.")
        .shoal().reloaded(ClusterWide),
    def("shoal.balancer.max.concurrent.moves", Int, Some("4"), Count, AtLeast(1), Replication,
        "Shoal's own: most partition moves one balancer round starts; the next round waits until they complete. Dynamic, cluster-wide.")
        .shoal().reloaded(ClusterWide),
    def("shoal.balancer.bytes.tolerance.percent", Int, Some("10"), Percent, Between(0, 100),
        Replication,
        "Shoal's own: how far a broker's bytes may be from the mean before the balancer moves data (sizes from the leaders' heartbeats). Dynamic, cluster-wide.")
        .shoal().reloaded(ClusterWide),
    def("shoal.balancer.check.interval.ms", Long, Some("30000"), Milliseconds, AtLeast(100),
        Replication,
        "Shoal's own: how often the balancer looks, and how long the cluster must have had no partition moving before it starts moves.")
        .shoal(),
    def("cordoned.log.dirs", List, Some(""), Unit::None, Any, Replication,
        "KIP-1066: log directories that receive no new replicas (new topics and partitions, the balancer, internal topic growth); their replicas stay. Shoal has one log directory per broker, so * or its path cordons the broker. Set per broker with IncrementalAlterConfigs (shoalctl broker decommission does); the controller reads the dynamic value.")
        .reloaded(PerBroker),
    def("replication.quota.window.num", Int, Some("11"), Count, AtLeast(1), Replication,
        "Samples the replication throttles measure their rate over. Unlike Kafka, which measures over at least window.num - 1 samples and so lets a quiet throttle's first ten seconds' worth through at once, Shoal measures over at least one sample: a throttled move bursts one sample's worth at most."),
    def("replication.quota.window.size.seconds", Int, Some("1"), Seconds, AtLeast(1), Replication,
        "Length of each replication throttle sample."),
    def("quota.window.num", Int, Some("11"), Count, AtLeast(1), Network,
        "Samples client quotas (producer_byte_rate, consumer_byte_rate; AlterClientQuotas) measure a client's rate over; the longest throttle is quota.window.num x quota.window.size.seconds. As the replication throttles, Shoal measures over at least one sample (Kafka: window.num - 1), so a client new to its quota bursts one sample's worth at most."),
    def("quota.window.size.seconds", Int, Some("1"), Seconds, AtLeast(1), Network,
        "Length of each client quota sample."),
    // ---- log: broker defaults topics inherit ----
    def("num.partitions", Int, Some("1"), Count, AtLeast(1), Log,
        "Partitions of a topic created without a count (auto-created topics too)."),
    def("max.broker.partitions", Int, None, Count, AtLeast(1), Log,
        "KIP-578's name: partition replicas one broker may hold; a CreateTopics or CreatePartitions that would place more on any broker is refused (POLICY_VIOLATION), never accepted and left unopenable. Unset: derived at start from the file-descriptor limit, (RLIMIT_NOFILE - 256) / 3 (an open partition holds three files)."),
    def("auto.create.topics.enable", Boolean, Some("true"), Unit::None, Any, Log,
        "Create a topic when a client asks for metadata of one that does not exist."),
    def("delete.topic.enable", Boolean, Some("true"), Unit::None, Any, Log,
        "Whether DeleteTopics is allowed."),
    def("message.max.bytes", Int, Some("1048588"), Bytes, AtLeast(0), Log,
        "Largest record batch a topic accepts (topic: max.message.bytes).")
        .dynamic(ClusterWide),
    def("compression.type", Str, Some("producer"), Unit::None, OneOf(CODECS), Log,
        "Codec the leader stores batches with: producer keeps each batch as sent; any other codec recompresses batches sent with a different one (topic: compression.type).")
        .dynamic(ClusterWide),
    def("compression.gzip.level", Int, Some("-1"), Unit::None,
        BetweenOr { min: 1, max: 9, or: -1 }, Log,
        "gzip level when the leader recompresses to gzip; -1 is the codec default (topic: compression.gzip.level).")
        .dynamic(ClusterWide),
    def("compression.lz4.level", Int, Some("9"), Unit::None, Between(1, 17), Log,
        "lz4 level when the leader recompresses to lz4 (topic: compression.lz4.level).")
        .dynamic(ClusterWide),
    def("compression.zstd.level", Int, Some("3"), Unit::None, Between(-131_072, 22), Log,
        "zstd level when the leader recompresses to zstd; negative levels are zstd's fast modes (topic: compression.zstd.level).")
        .dynamic(ClusterWide),
    def("log.segment.bytes", Int, Some("1073741824"), Bytes, AtLeast(14), Log,
        "Size at which the active segment is rolled (topic: segment.bytes); a log needs room for one batch header (61 bytes).")
        .dynamic(ClusterWide),
    def("log.roll.ms", Long, Some("604800000"), Milliseconds, AtLeast(1), Log,
        "Age at which the active segment is rolled even if not full (topic: segment.ms).")
        .dynamic(ClusterWide),
    def("log.roll.hours", Int, None, Hours, AtLeast(1), Log,
        "log.roll.ms in hours; log.roll.ms wins.")
        .synonym_of("log.roll.ms", MS_PER_HOUR),
    def("log.roll.jitter.ms", Long, Some("0"), Milliseconds, AtLeast(0), Log,
        "Largest random jitter subtracted from the roll age (topic: segment.jitter.ms).")
        .dynamic(ClusterWide),
    def("log.roll.jitter.hours", Int, None, Hours, AtLeast(0), Log,
        "log.roll.jitter.ms in hours; log.roll.jitter.ms wins.")
        .synonym_of("log.roll.jitter.ms", MS_PER_HOUR),
    def("log.retention.ms", Long, Some("604800000"), Milliseconds, AtLeast(-1), Log,
        "Longest time a segment is kept; -1 keeps everything (topic: retention.ms).")
        .dynamic(ClusterWide),
    def("log.retention.minutes", Int, None, Minutes, Any, Log,
        "log.retention.ms in minutes; log.retention.ms wins; negative = no limit.")
        .synonym_of("log.retention.ms", MS_PER_MINUTE),
    def("log.retention.hours", Int, None, Hours, Any, Log,
        "log.retention.ms in hours (Kafka's stock file sets 168); the ms and minutes names win; negative = no limit.")
        .synonym_of("log.retention.ms", MS_PER_HOUR),
    def("log.retention.bytes", Long, Some("-1"), Bytes, AtLeast(-1), Log,
        "Largest size of a partition before old segments are deleted; -1 = no limit (topic: retention.bytes).")
        .dynamic(ClusterWide),
    def("log.retention.check.interval.ms", Long, Some("300000"), Milliseconds, AtLeast(1), Log,
        "How often retention runs."),
    def("log.dir.min.free.bytes", Long, Some("67108864"), Bytes, AtLeast(0), Log,
        "Shoal's own: appends (produce and replication) are refused with KAFKA_STORAGE_ERROR while the log directory has less free space, so a full disk never stops the node; reads go on (docs/operations: a full disk)."),
    def("log.cleanup.policy", List, Some("delete"), Unit::None, ListOf(&["compact", "delete"]),
        Log, "delete, compact or compact,delete (topic: cleanup.policy; docs/compaction.md).")
        .dynamic(ClusterWide),
    def("log.index.interval.bytes", Int, Some("4096"), Bytes, AtLeast(0), Log,
        "Log bytes between two offset index entries (topic: index.interval.bytes).")
        .dynamic(ClusterWide),
    def("log.index.size.max.bytes", Int, Some("10485760"), Bytes, AtLeast(4), Log,
        "Size limit of each segment's index; a full index rolls the segment (topic: segment.index.bytes).")
        .dynamic(ClusterWide),
    def("log.flush.interval.messages", Long, Some(I64_MAX), Count, AtLeast(1), Log,
        "fsync after this many records (topic: flush.messages); the default leaves it to the OS and to replication.")
        .dynamic(ClusterWide),
    def("log.flush.interval.ms", Long, Some(I64_MAX), Milliseconds, AtLeast(0), Log,
        "fsync when the last flush is this old (topic: flush.ms).")
        .dynamic(ClusterWide),
    def("log.flush.scheduler.interval.ms", Long, Some("1000"), Milliseconds, AtLeast(10), Log,
        "How often the flush policy and other log maintenance run (Kafka: never; Shoal runs its maintenance on this tick)."),
    def("log.message.timestamp.type", Str, Some("CreateTime"), Unit::None,
        OneOf(&["CreateTime", "LogAppendTime"]), Log,
        "Whether record timestamps are the producer's or the broker's (topic: message.timestamp.type).")
        .dynamic(ClusterWide),
    def("log.message.timestamp.before.max.ms", Long, Some(I64_MAX), Milliseconds, AtLeast(0), Log,
        "How far a CreateTime timestamp may be behind the broker's clock (topic: message.timestamp.before.max.ms).")
        .dynamic(ClusterWide),
    def("log.message.timestamp.after.max.ms", Long, Some("3600000"), Milliseconds, AtLeast(0), Log,
        "How far a CreateTime timestamp may be ahead of the broker's clock (topic: message.timestamp.after.max.ms).")
        .dynamic(ClusterWide),
    def("log.segment.delete.delay.ms", Long, Some("60000"), Milliseconds, AtLeast(0), Log,
        "Delay before a deleted segment's files are removed (topic: file.delete.delay.ms).")
        .dynamic(ClusterWide),
    def("log.preallocate", Boolean, Some("false"), Unit::None, Any, Log,
        "Preallocate segment files (topic: preallocate).")
        .dynamic(ClusterWide),
    // ---- cleaner ----
    def("log.cleaner.backoff.ms", Long, Some("15000"), Milliseconds, AtLeast(10), Cleaner,
        "How often compacted logs are checked for cleaning.")
        .dynamic(ClusterWide),
    def("log.cleaner.dedupe.buffer.size", Long, Some("134217728"), Bytes, AtLeast(1024), Cleaner,
        "Most bytes of keys one cleaning maps.")
        .dynamic(ClusterWide),
    def("log.cleaner.io.max.bytes.per.second", Double, Some("1.7976931348623157E308"),
        BytesPerSecond, Positive, Cleaner,
        "Read + write rate of the cleaner (the default means unlimited).")
        .dynamic(ClusterWide),
    def("log.cleaner.delete.retention.ms", Long, Some("86400000"), Milliseconds, AtLeast(0),
        Cleaner, "How long a tombstone is kept after its first cleaning (topic: delete.retention.ms).")
        .dynamic(ClusterWide),
    def("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), Ratio, BetweenF(0.0, 1.0), Cleaner,
        "Share of uncleaned bytes that triggers a cleaning (topic: min.cleanable.dirty.ratio).")
        .dynamic(ClusterWide),
    def("log.cleaner.min.compaction.lag.ms", Long, Some("0"), Milliseconds, AtLeast(0), Cleaner,
        "Records younger than this are not compacted (topic: min.compaction.lag.ms).")
        .dynamic(ClusterWide),
    def("log.cleaner.max.compaction.lag.ms", Long, Some(I64_MAX), Milliseconds, AtLeast(1),
        Cleaner, "Longest time a record stays ineligible for compaction (topic: max.compaction.lag.ms).")
        .dynamic(ClusterWide),
    // ---- groups ----
    def("offsets.topic.num.partitions", Int, Some("50"), Count, AtLeast(1), Groups,
        "Partitions of __consumer_offsets."),
    def("offsets.topic.replication.factor", Short, Some("3"), Count, AtLeast(1), Groups,
        "Replicas of __consumer_offsets; it is created once this many brokers are registered, except on a single-node cluster (see below)."),
    def("offsets.topic.segment.bytes", Int, Some("104857600"), Bytes, AtLeast(1024), Groups,
        "Segment size of __consumer_offsets."),
    def("offsets.commit.timeout.ms", Int, Some("5000"), Milliseconds, AtLeast(1), Groups,
        "How long an offset commit waits for its write to replicate."),
    def("offset.metadata.max.bytes", Int, Some("4096"), Bytes, Between(0, 32767), Groups,
        "Largest metadata string of one committed offset (at most 32767: the offset record stores it with an int16 length)."),
    def("group.initial.rebalance.delay.ms", Int, Some("3000"), Milliseconds, AtLeast(0), Groups,
        "How long a new group waits for more members before its first rebalance."),
    def("group.min.session.timeout.ms", Int, Some("6000"), Milliseconds, AtLeast(0), Groups,
        "Smallest session.timeout.ms a member may ask for."),
    def("group.max.session.timeout.ms", Int, Some("1800000"), Milliseconds, AtLeast(0), Groups,
        "Largest session.timeout.ms a member may ask for."),
    def("group.max.size", Int, Some("2147483647"), Count, AtLeast(1), Groups,
        "Most members of one group."),
    def("group.coordinator.rebalance.protocols", List, Some("classic,consumer"), Unit::None,
        ListOf(&["classic", "consumer"]), Groups,
        "The group protocols the coordinator serves: classic (JoinGroup/SyncGroup) and consumer (KIP-848's ConsumerGroupHeartbeat, group.protocol=consumer). Without consumer, ConsumerGroupHeartbeat is not offered."),
    def("group.consumer.session.timeout.ms", Int, Some("45000"), Milliseconds, AtLeast(1), Groups,
        "A KIP-848 consumer group member silent for this long is removed and its partitions are assigned to the others."),
    def("group.consumer.min.session.timeout.ms", Int, Some("45000"), Milliseconds, AtLeast(1), Groups,
        "Smallest group.consumer.session.timeout.ms."),
    def("group.consumer.max.session.timeout.ms", Int, Some("60000"), Milliseconds, AtLeast(1), Groups,
        "Largest group.consumer.session.timeout.ms."),
    def("group.consumer.heartbeat.interval.ms", Int, Some("5000"), Milliseconds, AtLeast(1), Groups,
        "How often a KIP-848 consumer heartbeats (the coordinator tells it); a member learns of a new assignment at its next heartbeat."),
    def("group.consumer.min.heartbeat.interval.ms", Int, Some("5000"), Milliseconds, AtLeast(1), Groups,
        "Smallest group.consumer.heartbeat.interval.ms."),
    def("group.consumer.max.heartbeat.interval.ms", Int, Some("15000"), Milliseconds, AtLeast(1), Groups,
        "Largest group.consumer.heartbeat.interval.ms."),
    def("group.consumer.max.size", Int, Some("2147483647"), Count, AtLeast(1), Groups,
        "Most members of one KIP-848 consumer group (GROUP_MAX_SIZE_REACHED past it)."),
    def("group.consumer.assignors", List, Some("uniform,range"), Unit::None,
        ListOf(&["uniform", "range"]), Groups,
        "The server-side assignors of KIP-848 consumer groups; the first is used when the members name none."),
    def("group.consumer.migration.policy", Str, Some("bidirectional"), Unit::None,
        OneOf(&["disabled", "upgrade", "downgrade", "bidirectional"]), Groups,
        "Whether a group with members moves between the protocols: upgrade (a classic group becomes a consumer group at the first group.protocol=consumer join, its classic members served by the coordinator's assignor), downgrade (a consumer group whose last consumer-protocol member leaves becomes a classic group again), both, or neither."),
    def("offsets.retention.minutes", Int, Some("10080"), Minutes, AtLeast(1), Groups,
        "How long committed offsets of an empty group are kept."),
    def("offsets.retention.check.interval.ms", Long, Some("600000"), Milliseconds, AtLeast(1),
        Groups, "How often expired offsets are removed."),
    // ---- transactions ----
    def("transaction.state.log.num.partitions", Int, Some("50"), Count, AtLeast(1), Transactions,
        "Partitions of __transaction_state; a transactional id's coordinator is the leader of the partition its id hashes to."),
    def("transaction.state.log.replication.factor", Short, Some("3"), Count, AtLeast(1),
        Transactions, "Replicas of __transaction_state; it is created once this many brokers are registered, except on a single-node cluster."),
    def("transaction.state.log.min.isr", Int, Some("2"), Count, AtLeast(1), Transactions,
        "min.insync.replicas of __transaction_state (at most its replication factor)."),
    def("transaction.state.log.segment.bytes", Int, Some("104857600"), Bytes, AtLeast(1024),
        Transactions, "Segment size of __transaction_state."),
    def("transaction.max.timeout.ms", Int, Some("900000"), Milliseconds, AtLeast(1), Transactions,
        "Largest transaction.timeout.ms a producer may ask for (a larger one gets INVALID_TRANSACTION_TIMEOUT)."),
    def("transactional.id.expiration.ms", Int, Some("604800000"), Milliseconds, AtLeast(1),
        Transactions, "A transactional id with no transaction for this long is forgotten."),
    def("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, Some("10000"),
        Milliseconds, AtLeast(1), Transactions,
        "How often the coordinator aborts transactions open longer than their timeout."),
    def("transaction.remove.expired.transaction.cleanup.interval.ms", Int, Some("3600000"),
        Milliseconds, AtLeast(1), Transactions, "How often expired transactional ids are removed."),
    def("transaction.partition.verification.enable", Boolean, Some("true"), Unit::None, Any,
        Transactions, "KIP-890: a partition leader asks the coordinator before the first transactional write of a producer, so a late write cannot join a finished transaction."),
    def("transaction.max.partitions", Int, Some("100000"), Count, AtLeast(1), Transactions,
        "Most partitions one transaction may write to (AddPartitionsToTxn beyond it is refused).")
        .shoal(),
    def("transaction.coordinator.max.open.transactions", Int, Some("100000"), Count, AtLeast(1),
        Transactions, "Most transactions one broker coordinates at once; a new transaction beyond it is refused with COORDINATOR_NOT_AVAILABLE (retriable).")
        .shoal(),
    // ---- accepted and ignored ----
    def("num.network.threads", Int, Some("3"), Count, AtLeast(1), Node,
        "Kafka's network thread count.")
        .ignored("Shoal's async runtime serves every connection from one worker pool sized to the cores"),
    def("num.io.threads", Int, Some("8"), Count, AtLeast(1), Node,
        "Kafka's request handler thread count.")
        .ignored("requests run on the async worker pool; disk work runs on its blocking pool"),
    def("num.recovery.threads.per.data.dir", Int, Some("2"), Count, AtLeast(1), Node,
        "Kafka's log recovery thread count.")
        .ignored("logs are recovered one by one as their partitions open"),
    def("num.replica.fetchers", Int, Some("1"), Count, AtLeast(1), Node,
        "Kafka's fetcher threads per source broker.")
        .ignored("a follower runs one fetch session per leader broker on the async runtime"),
    def("socket.send.buffer.bytes", Int, Some("102400"), Bytes, AtLeast(-1), Node,
        "Kafka's SO_SNDBUF for client sockets.")
        .ignored("the kernel autotunes socket buffers, which is faster than Kafka's fixed 100 KiB"),
    def("socket.receive.buffer.bytes", Int, Some("102400"), Bytes, AtLeast(-1), Node,
        "Kafka's SO_RCVBUF for client sockets.")
        .ignored("the kernel autotunes socket buffers, which is faster than Kafka's fixed 100 KiB"),
    def("controller.quorum.bootstrap.servers", List, None, Unit::None, NonEmpty, Node,
        "Controllers (host:port,...) to ask for the voters instead of listing them in controller.quorum.voters (KIP-853): a new controller started with it waits to be added (shoalctl cluster quorum add-voter), a broker-only node follows the voters as they change. A list naming only this node's own controller listener (Kafka's stock localhost:9093) starts a one-voter quorum, as kafka-storage format --standalone. Not together with controller.quorum.voters."),
    // Kafka's GSSAPI settings: per broker and dynamic in Kafka, where they do nothing on a
    // broker without a GSSAPI listener; Shoal has none, so the same holds here.
    def("sasl.kerberos.service.name", Str, None, Unit::None, Any, Network,
        "GSSAPI: the Kerberos name the broker runs as.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("sasl.kerberos.kinit.cmd", Str, Some("/usr/bin/kinit"), Unit::None, NonEmpty, Network,
        "GSSAPI: the kinit command.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("sasl.kerberos.min.time.before.relogin", Long, Some("60000"), Milliseconds, AtLeast(0),
        Network, "GSSAPI: the login thread's sleep between refresh attempts.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("sasl.kerberos.ticket.renew.window.factor", Double, Some("0.8"), Ratio, BetweenF(0.0, 1.0),
        Network, "GSSAPI: the share of a ticket's lifetime after which it is renewed.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("sasl.kerberos.ticket.renew.jitter", Double, Some("0.05"), Ratio, BetweenF(0.0, 1.0),
        Network, "GSSAPI: random jitter added to the renewal time.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("sasl.kerberos.principal.to.local.rules", List, Some("DEFAULT"), Unit::None, NonEmpty,
        Network, "GSSAPI: how a Kerberos principal becomes a short name.")
        .dynamic(PerBroker)
        .ignored(KERBEROS),
    def("share.coordinator.state.topic.replication.factor", Short, Some("3"), Count, AtLeast(1),
        Node, "Replicas of __share_group_state.")
        .ignored("share groups (KIP-932) are not served"),
    def("share.coordinator.state.topic.min.isr", Short, Some("2"), Count, AtLeast(1), Node,
        "min.insync.replicas of __share_group_state.")
        .ignored("share groups (KIP-932) are not served"),
];

/// Looks up a broker setting by name.
pub fn broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|def| def.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::def::normalize;

    #[test]
    fn names_are_unique_and_defaults_valid() {
        let mut seen = BTreeSet::new();
        for def in BROKER_CONFIGS {
            assert!(seen.insert(def.name), "{} twice", def.name);
            if let Some(default) = def.default {
                let normalized = normalize(def, default)
                    .unwrap_or_else(|e| panic!("default of {} invalid: {e}", def.name));
                assert_eq!(
                    normalized, default,
                    "{} default is not normalized",
                    def.name
                );
            }
            assert!(!def.doc.is_empty(), "{}", def.name);
        }
    }

    #[test]
    fn synonyms_point_at_canonical_settings_with_defaults() {
        for def in BROKER_CONFIGS {
            let Some(synonym) = def.synonym_of else {
                continue;
            };
            let canonical = broker_config_def(synonym.of)
                .unwrap_or_else(|| panic!("{} is a synonym of unknown {}", def.name, synonym.of));
            assert!(
                canonical.synonym_of.is_none(),
                "{} chains synonyms",
                def.name
            );
            assert!(
                def.default.is_none(),
                "{}: a synonym has no default",
                def.name
            );
            assert!(synonym.scale >= 1, "{}", def.name);
            // A synonym with a unit scale lives in the canonical's section.
            assert_eq!(def.section, canonical.section, "{}", def.name);
        }
    }
}
