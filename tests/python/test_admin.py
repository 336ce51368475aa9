"""Admin APIs through confluent-kafka's AdminClient (and kafka-python where it
uses a different API), with exact Kafka error codes. This node has
auto.create.topics.enable=false; test_autocreate.py covers the other case."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic, OffsetSpec,
    ResourceType,
)

import kafka_wire as kw
from clients import OP_TIMEOUT, ck_admin, ck_consume, ck_create_topic, ck_produce, kp_admin, topic_names, \
    unique_topic, wait_for_partitions

SHOAL_OVERRIDES = {"auto.create.topics.enable": "false", "num.partitions": 1}
pytestmark = pytest.mark.timeout(90)


def error_code(fut) -> int:
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=OP_TIMEOUT)
    return ei.value.args[0].code()


def create(admin, name, partitions=3, config=None):
    return admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
                               operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)[name]


def describe(admin, topic) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=OP_TIMEOUT)[res].result(timeout=OP_TIMEOUT)


def source(entry) -> int:
    return entry.source.value if hasattr(entry.source, "value") else int(entry.source)


def test_dynamic_broker_configs_are_set_described_removed_and_bad_ones_refused(shoal):
    """Kafka's dynamic broker configs (`kafka-configs --entity-type brokers`): a broker's own
    value (resource name = its id) wins over the cluster default (empty name); DescribeConfigs
    names the source of each; deleting one falls back. Only settings Shoal applies while
    running may change: others, unknown names, bad values and bad broker names are refused."""
    admin = ck_admin(shoal.bootstrap)
    me = ConfigResource(ResourceType.BROKER, str(shoal.node_id))
    # The Python clients refuse an empty broker name; the wire speaks for the default, as
    # Java's `kafka-configs --entity-default` does.
    host, port = shoal.bootstrap.split(":")

    def alter_default(ops: list) -> tuple:
        conn = kw.Conn(host, int(port))
        try:
            return kw.incremental_alter_configs_v0(conn, kw.RESOURCE_BROKER, "", ops)
        finally:
            conn.close()

    def described_default() -> dict:
        conn = kw.Conn(host, int(port))
        try:
            code, configs = kw.describe_configs_v1(conn, kw.RESOURCE_BROKER, "")
        finally:
            conn.close()
        assert code == 0
        assert all(src == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value for _, src in configs.values()), configs
        return {k: v for k, (v, _) in configs.items()}

    def alter(resource_name: str, *entries):
        res = ConfigResource(ResourceType.BROKER, resource_name, incremental_configs=list(entries))
        return admin.incremental_alter_configs([res], request_timeout=OP_TIMEOUT)[res]

    def put(name, value):
        return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)

    def drop(name):
        return ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)

    def described(res) -> dict:
        return admin.describe_configs([res], request_timeout=OP_TIMEOUT)[res].result(timeout=OP_TIMEOUT)

    leader, follower = "leader.replication.throttled.rate", "follower.replication.throttled.rate"
    alter(str(shoal.node_id), put(leader, "1000000")).result(timeout=OP_TIMEOUT)
    assert alter_default([(leader, 0, "5"), (follower, 0, "2000000")]) == (0, None)
    mine = described(me)
    assert (mine[leader].value, source(mine[leader])) == ("1000000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert (mine[follower].value, source(mine[follower])) == \
        ("2000000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert not mine[leader].is_read_only and mine["log.dirs"].is_read_only
    # The cluster default resource holds its dynamic configs only.
    assert described_default() == {leader: "5", follower: "2000000"}

    for resource_name, entry, code in [
        (str(shoal.node_id), put("log.dirs", "/elsewhere"), KafkaError.INVALID_CONFIG),
        (str(shoal.node_id), put("no.such.setting", "1"), KafkaError.INVALID_CONFIG),
        (str(shoal.node_id), put(leader, "-5"), KafkaError.INVALID_CONFIG),
        (str(shoal.node_id), put(leader, "fast"), KafkaError.INVALID_CONFIG),
    ]:
        assert error_code(alter(resource_name, entry)) == code, (resource_name, entry)
    # Names librdkafka cannot route (it sends a broker resource to that broker), on the wire.
    for bad_name in ("broker-one", "-2"):
        conn = kw.Conn(host, int(port))
        try:
            code, message = kw.incremental_alter_configs_v0(conn, kw.RESOURCE_BROKER, bad_name, [(leader, 0, "1")])
        finally:
            conn.close()
        assert code == KafkaError.INVALID_REQUEST and "broker id" in message, (bad_name, code, message)
    assert described(me)[leader].value == "1000000", "a refused change changes nothing"

    alter(str(shoal.node_id), drop(leader)).result(timeout=OP_TIMEOUT)
    assert alter_default([(leader, 1, None), (follower, 1, None)]) == (0, None)
    mine = described(me)
    assert (mine[leader].value, source(mine[leader])) == ("9223372036854775807", ConfigSource.DEFAULT_CONFIG.value)
    assert source(mine[follower]) == ConfigSource.DEFAULT_CONFIG.value
    assert described_default() == {}


def test_create_then_duplicate_is_topic_already_exists(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("dup")
    create(admin, name).result(timeout=OP_TIMEOUT)
    assert error_code(create(admin, name)) == KafkaError.TOPIC_ALREADY_EXISTS  # 36
    wait_for_partitions(shoal.bootstrap, name, 3)


@pytest.mark.parametrize("bad_name", ["bad name", "a/b", "..", "x" * 250])
def test_invalid_topic_name(shoal, bad_name):
    admin = ck_admin(shoal.bootstrap)
    assert error_code(create(admin, bad_name)) == KafkaError.TOPIC_EXCEPTION  # 17 INVALID_TOPIC_EXCEPTION
    assert bad_name not in topic_names(shoal.bootstrap)


@pytest.mark.parametrize("config", [{"no.such.config": "1"}, {"retention.ms": "not-a-number"},
                                    {"cleanup.policy": "sometimes"}])
def test_invalid_config_on_create(shoal, config):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("badcfg")
    assert error_code(create(admin, name, config=config)) == KafkaError.INVALID_CONFIG  # 40
    assert name not in topic_names(shoal.bootstrap)


def test_describe_configs_shows_overrides_and_defaults(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("cfg")
    create(admin, name, config={"retention.ms": "3600000", "cleanup.policy": "delete"}).result(timeout=OP_TIMEOUT)
    entries = describe(admin, name)
    r = entries["retention.ms"]
    assert r.value == "3600000"
    assert source(r) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and not r.is_default
    # a config left alone is listed with its default and a non-topic source
    assert "segment.bytes" in entries, sorted(entries)
    seg = entries["segment.bytes"]
    assert seg.value is not None and int(seg.value) > 0
    assert source(seg) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def test_incremental_alter_configs_then_describe(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("alter")
    create(admin, name, config={"retention.ms": "3600000"}).result(timeout=OP_TIMEOUT)
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([res], request_timeout=OP_TIMEOUT)[res].result(timeout=OP_TIMEOUT)
    entries = describe(admin, name)
    assert entries["segment.bytes"].value == "1048576"
    assert source(entries["segment.bytes"]) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert source(entries["retention.ms"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["retention.ms"].value != "3600000"

    bad = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    assert error_code(admin.incremental_alter_configs([bad], request_timeout=OP_TIMEOUT)[bad]) == \
        KafkaError.INVALID_CONFIG


@pytest.mark.parametrize("name,value", [
    ("segment.bytes", "20"),  # within Kafka's type, but no log can hold a batch header
    ("retention.ms", "-5"),
    ("cleanup.policy", "bogus"),
    ("max.message.bytes", "-1"),
])
def test_invalid_topic_configs_are_refused_on_create_and_alter(shoal, name, value):
    admin = ck_admin(shoal.bootstrap)
    topic = unique_topic("badcfg")
    with pytest.raises(KafkaException) as ei:
        create(admin, topic, partitions=1, config={name: value}).result(timeout=OP_TIMEOUT)
    err = ei.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and name in err.str(), err
    assert topic not in topic_names(shoal.bootstrap)

    create(admin, topic, partitions=1, config={"retention.ms": "3600000"}).result(timeout=OP_TIMEOUT)
    before = {k: v.value for k, v in describe(admin, topic).items()}
    bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as ei:
        admin.incremental_alter_configs([bad], request_timeout=OP_TIMEOUT)[bad].result(timeout=OP_TIMEOUT)
    err = ei.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and name in err.str(), err
    # All or nothing: the valid segment.ms of the same request was not applied either.
    assert {k: v.value for k, v in describe(admin, topic).items()} == before
    produced = ck_produce(shoal.bootstrap, topic, 20, prefix="ok")
    assert not produced.errors and len(produced.acked) == 20


def test_create_partitions_then_produce_to_new_partition(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("grow")
    create(admin, name, partitions=3).result(timeout=OP_TIMEOUT)
    admin.create_partitions([NewPartitions(name, 5)], operation_timeout=OP_TIMEOUT,
                            request_timeout=OP_TIMEOUT)[name].result(timeout=OP_TIMEOUT)
    wait_for_partitions(shoal.bootstrap, name, 5)
    res = ck_produce(shoal.bootstrap, name, 10, prefix="p4", partition=4, conf={"acks": "all"})
    assert not res.errors, res.errors
    assert {a.partition for a in res.acked} == {4}
    recs = ck_consume(shoal.bootstrap, name, [4], 10)
    assert [r.offset for r in recs] == list(range(10))
    # shrinking is refused
    fut = admin.create_partitions([NewPartitions(name, 2)], request_timeout=OP_TIMEOUT)[name]
    assert error_code(fut) == KafkaError.INVALID_PARTITIONS  # 37


def test_delete_topic_removes_it_from_metadata(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("del")
    ck_create_topic(shoal.bootstrap, name, partitions=2)
    admin.delete_topics([name], operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)[name].result(
        timeout=OP_TIMEOUT)
    deadline = time.monotonic() + 20
    while name in topic_names(shoal.bootstrap):
        assert time.monotonic() < deadline, "deleted topic still listed after 20 s"
        time.sleep(0.2)
    # deleting it again: unknown topic
    fut = admin.delete_topics([name], request_timeout=OP_TIMEOUT)[name]
    assert error_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART  # 3


def test_describe_cluster_returns_the_node(shoal):
    admin = ck_admin(shoal.bootstrap)  # keep a reference until the future resolves
    res = admin.describe_cluster(request_timeout=OP_TIMEOUT).result(timeout=OP_TIMEOUT)
    assert [(n.id, n.host, n.port) for n in res.nodes] == [(shoal.node_id, "127.0.0.1", shoal.kafka_port)]
    assert res.cluster_id
    assert res.controller is None or res.controller.id == shoal.node_id


def test_describe_cluster_api_via_kafka_python(shoal):
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        apis = kw.api_versions(c).apis
    assert 60 in apis, "DescribeCluster (60) is not advertised"
    admin = kp_admin(shoal.bootstrap)
    try:
        md = admin.describe_cluster()
    finally:
        admin.close()
    brokers = md["brokers"]
    assert [(b["broker_id"], b["host"], b["port"]) for b in brokers] == [
        (shoal.node_id, "127.0.0.1", shoal.kafka_port)]
    assert md["cluster_id"]


def test_describe_log_dirs_reports_partition_sizes_and_disk_space(shoal):
    """DescribeLogDirs (kafka-python's describe_log_dirs, what kafka-log-dirs and UIs use):
    the data directory, each held partition's size and lag, the file system's space."""
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("logdirs")
    create(admin, name).result(timeout=OP_TIMEOUT)
    wait_for_partitions(shoal.bootstrap, name, 3)
    produced = ck_produce(shoal.bootstrap, name, 50, partition=1, value_size=1000)
    assert len(produced.acked) == 50

    kp = kp_admin(shoal.bootstrap)
    try:
        everything = kp.describe_log_dirs()
        only_p1 = kp.describe_log_dirs(topic_partitions={name: [1], "no-such-topic": [0]})
    finally:
        kp.close()
    assert [r["broker"] for r in everything] == [shoal.node_id]
    (log_dir,) = everything[0]["log_dirs"]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == str(shoal.data_dir.resolve())
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
    sizes = {p["partition_index"]: (p["partition_size"], p["offset_lag"])
             for t in log_dir["topics"] if t["name"] == name for p in t["partitions"]}
    assert sorted(sizes) == [0, 1, 2]
    assert sizes[1][0] >= 50 * 1000, sizes
    assert sizes[0] == (0, 0) and sizes[2] == (0, 0), sizes
    assert sizes[1][1] == 0, "a caught-up log has no lag"

    (filtered,) = only_p1[0]["log_dirs"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in filtered["topics"]] == [
        (name, [1])]


def test_list_offsets_earliest_latest_and_by_timestamp(shoal):
    admin = ck_admin(shoal.bootstrap)
    name = unique_topic("lo")
    ck_create_topic(shoal.bootstrap, name, partitions=1)
    p = Producer({"bootstrap.servers": shoal.bootstrap, "acks": "all", "linger.ms": 0})
    t0 = int(time.time() * 1000) - 60_000
    for i in range(10):
        p.produce(name, value=f"v{i}".encode(), timestamp=t0 + i * 1000)
        p.flush(10)  # one batch per record, so per-record timestamps are exact
    assert p.flush(10) == 0
    tp = TopicPartition(name, 0)

    def lo(spec):
        return admin.list_offsets({tp: spec}, request_timeout=OP_TIMEOUT)[tp].result(timeout=OP_TIMEOUT).offset

    assert lo(OffsetSpec.earliest()) == 0
    assert lo(OffsetSpec.latest()) == 10
    assert lo(OffsetSpec.for_timestamp(t0 + 4500)) == 5
    assert lo(OffsetSpec.for_timestamp(t0)) == 0
    assert lo(OffsetSpec.for_timestamp(t0 + 60_000)) == -1  # after the last record: no offset
    # the consumer-side calls agree
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": "shoal-tests-lo"})
    try:
        assert c.get_watermark_offsets(tp, timeout=10) == (0, 10)
        (got,) = c.offsets_for_times([TopicPartition(name, 0, t0 + 2000)], timeout=10)
        assert got.offset == 2
    finally:
        c.close()


def test_unknown_topic_is_unknown_topic_or_partition_when_auto_create_off(shoal):
    name = unique_topic("nope")
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        topics = kw.metadata_v4(c, [name], allow_auto_create=True)
    assert topics[name].error_code == kw.UNKNOWN_TOPIC_OR_PARTITION
    assert name not in topic_names(shoal.bootstrap)
    # a producer gets no acknowledgement for it
    p = Producer({"bootstrap.servers": shoal.bootstrap, "message.timeout.ms": 5000})
    errs = []
    p.produce(name, value=b"x", on_delivery=lambda err, msg: errs.append(err))
    p.flush(15)
    assert len(errs) == 1 and errs[0] is not None
    assert name not in topic_names(shoal.bootstrap)


def test_internal_topics_are_shoals_own(shoal):
    """Issue #15: a client could create `__consumer_offsets`, delete or grow it, and produce junk
    into it (every group then got NOT_COORDINATOR after a restart). Clients may read it only."""
    offsets = "__consumer_offsets"
    group = unique_topic("grp")
    topic = unique_topic("intl")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    assert not ck_produce(shoal.bootstrap, topic, 5, prefix="i").errors
    # A group commit makes sure the offsets topic exists (the coordinator creates it itself).
    committer = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                committer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
                break
            except KafkaException:
                assert time.monotonic() < deadline, "no coordinator for the commit"
                time.sleep(0.2)
    finally:
        committer.close()
    deadline = time.monotonic() + 30
    while offsets not in topic_names(shoal.bootstrap):
        assert time.monotonic() < deadline, "the coordinator never created __consumer_offsets"
        time.sleep(0.2)

    admin = ck_admin(shoal.bootstrap)
    assert error_code(create(admin, offsets, partitions=1)) == KafkaError.INVALID_REQUEST  # 42
    grow = admin.create_partitions([NewPartitions(offsets, 100)], request_timeout=OP_TIMEOUT)[offsets]
    assert error_code(grow) == KafkaError.INVALID_REQUEST
    delete = admin.delete_topics([offsets], request_timeout=OP_TIMEOUT)[offsets]
    assert error_code(delete) == KafkaError.INVALID_REQUEST
    # A mixed request: the internal topic is refused, the other one is created.
    other = unique_topic("mixed")
    futures = admin.create_topics([NewTopic(offsets, 1, 1), NewTopic(other, 1, 1)],
                                  request_timeout=OP_TIMEOUT)
    assert error_code(futures[offsets]) == KafkaError.INVALID_REQUEST
    futures[other].result(timeout=OP_TIMEOUT)

    conn = kw.Conn("127.0.0.1", shoal.kafka_port)
    try:
        batch = kw.record_batch_v2([(b"junk", b"\xff" * 16)])
        results = kw.produce_v3(conn, offsets, 0, batch)
        assert [r.error_code for r in results] == [17], results  # INVALID_TOPIC_EXCEPTION
        stored = kw.fetch_v4(conn, offsets, 0, 0)
        assert b"\xff" * 16 not in stored.records
        meta = kw.metadata_v4_full(conn, [offsets]).topics[offsets]
        assert len(meta) > 1, "still all its partitions"
    finally:
        conn.close()
    # The group's committed offset survived all of it.
    reader = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group})
    try:
        committed = reader.committed([TopicPartition(topic, 0)], timeout=OP_TIMEOUT)
        assert [tp.offset for tp in committed] == [5], committed
    finally:
        reader.close()


@pytest.mark.timeout(120)
def test_partitions_past_the_open_file_limit_are_refused_not_left_unopenable(shoal_factory):
    """Issue #15: CreateTopics of 10,000 partitions answered NO_ERROR though the node's
    open-file limit let a third of them never open (NOT_LEADER_OR_FOLLOWER forever). With 1,024
    open files, max.broker.partitions is derived as (1024 - 256) / 3 = 256."""
    import shutil

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is needed to start the node with a small open-file limit")
    node = shoal_factory(start=False)
    plain_args = node.args
    node.args = lambda: ["prlimit", "--nofile=1024:1024", "--"] + plain_args()
    node.start()
    admin = ck_admin(node.bootstrap)
    huge = unique_topic("huge")
    fut = admin.create_topics([NewTopic(huge, 10_000, 1)], request_timeout=OP_TIMEOUT)[huge]
    assert error_code(fut) == KafkaError.POLICY_VIOLATION  # 44
    assert huge not in topic_names(node.bootstrap)
    # Within the bound it works, and growing past it is refused the same way.
    fits = unique_topic("fits")
    admin.create_topics([NewTopic(fits, 100, 1)], request_timeout=OP_TIMEOUT)[fits].result(OP_TIMEOUT)
    grow = admin.create_partitions([NewPartitions(fits, 1_000)], request_timeout=OP_TIMEOUT)[fits]
    assert error_code(grow) == KafkaError.POLICY_VIOLATION
    wait_for_partitions(node.bootstrap, fits, 100)
    res = ck_produce(node.bootstrap, fits, 200, prefix="f", conf={"acks": "all"})
    assert not res.errors, res.errors[:3]
    assert node.readyz() == 200


def test_legacy_alter_configs_from_kafka_python(shoal):
    """AlterConfigs, the non-incremental API (kafka-python's alter_configs with
    incremental=False, which sends the whole set because AlterConfigs replaces it: a config
    not named goes back to its default, as the unit test of the translation shows). A config
    Kafka does not know is INVALID_CONFIG and nothing changes."""
    from kafka.admin import ConfigResource as KpResource, ConfigResourceType
    name = unique_topic("legacy-alter")
    ck_create_topic(shoal.bootstrap, name, partitions=1,
                    config={"retention.ms": "100000", "cleanup.policy": "compact,delete"})
    admin = kp_admin(shoal.bootstrap)
    try:
        result = admin.alter_configs([KpResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "200000"})],
                                     incremental=False)
        assert result == {"topic": {name: "OK"}}, result
        configs = describe(ck_admin(shoal.bootstrap), name)
        assert configs["retention.ms"].value == "200000"
        assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        # Kept because the client named it again.
        assert configs["cleanup.policy"].value == "compact,delete"

        result = admin.alter_configs([KpResource(ConfigResourceType.TOPIC, name, configs={"no.such.config": "1"})],
                                     incremental=False, raise_on_unknown=False)
        assert "InvalidConfigurationError" in result["topic"][name], result
        assert describe(ck_admin(shoal.bootstrap), name)["retention.ms"].value == "200000"
    finally:
        admin.close()


def test_describe_topic_partitions_pages_through_a_cursor(shoal):
    """DescribeTopicPartitions (KIP-966) from kafka-python: topics by name, at most
    response_partition_limit partitions a page, and a cursor to the next page; an unknown topic
    UNKNOWN_TOPIC_OR_PARTITION; a cursor on a topic not asked for INVALID_REQUEST."""
    a, b = unique_topic("dtp-a"), unique_topic("dtp-b")
    ck_create_topic(shoal.bootstrap, a, partitions=3)
    ck_create_topic(shoal.bootstrap, b, partitions=2)
    admin = kp_admin(shoal.bootstrap)
    try:
        seen, cursor, pages = [], None, 0
        while True:
            page = admin.describe_topic_partitions([b, a], response_partition_limit=2, cursor=cursor)
            pages += 1
            for t in page["topics"]:
                assert t["error_code"] == 0, t
                assert t["topic_authorized_operations"] != -2147483648, t
                seen.extend((t["name"], p["partition_index"], p["leader_id"]) for p in t["partitions"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10
        assert [(n, p) for n, p, _ in seen] == [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)], seen
        assert {leader for _, _, leader in seen} == {shoal.node_id}
        assert pages == 3

        unknown = admin.describe_topic_partitions([a, "no-such-topic-dtp"])
        codes = {t["name"]: t["error_code"] for t in unknown["topics"]}
        assert codes == {a: 0, "no-such-topic-dtp": KafkaError.UNKNOWN_TOPIC_OR_PART}, codes
        bad = admin.describe_topic_partitions([a], cursor={"topic_name": b, "partition_index": 0})
        assert [t["error_code"] for t in bad["topics"]] == [KafkaError.INVALID_REQUEST], bad
    finally:
        admin.close()


def test_broker_logger_levels_change_while_running(shoal):
    """BROKER_LOGGER configs (kafka-configs --entity-type broker-loggers): a logger's level set
    with IncrementalAlterConfigs takes effect at once (its DEBUG lines appear), DescribeConfigs
    lists it, DELETE returns it to the root's level; Kafka's refusals: an unknown level
    INVALID_CONFIG, the root logger's removal INVALID_CONFIG."""
    from kafka.admin import ConfigResource as KpResource, ConfigResourceType
    admin = kp_admin(shoal.bootstrap)
    me = str(shoal.node_id)
    logger = "shoal_broker::replica_manager"

    def levels():
        described = admin.describe_configs([KpResource(ConfigResourceType.BROKER_LOGGER, me)], config_filter="all")
        return {k: v["value"] if isinstance(v, dict) else v for k, v in described["broker_logger"][me].items()}

    def alter(configs):
        result = admin.alter_configs([KpResource(ConfigResourceType.BROKER_LOGGER, me, configs=configs)],
                                     incremental=True, raise_on_unknown=False)
        return result["broker_logger"][me]
    try:
        assert levels().get("root") == "INFO", levels()
        assert alter({logger: "DEBUG"}) == "OK"
        assert levels()[logger] == "DEBUG"
        topic = unique_topic("loggers")
        ck_create_topic(shoal.bootstrap, topic, partitions=1)
        deadline = time.monotonic() + 10
        while "partition opened" not in shoal.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, "no DEBUG line from the logger"
            time.sleep(0.1)
        assert "InvalidConfigurationError" in alter({logger: "LOUD"})
        assert "InvalidConfigurationError" in alter({"root": ("DELETE", None)})
        assert alter({logger: ("DELETE", None)}) == "OK"
        assert logger not in levels()
    finally:
        admin.close()
