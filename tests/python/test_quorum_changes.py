"""Changing the controller voters of a running cluster (issue #18, KIP-853), as real processes:
controllers 1-3 and broker-only nodes 4-6 (which know only voters 1-3), under an idempotent
acks=all load that the checker verifies at the end.

A new controller 7 finds the quorum through `controller.quorum.bootstrap.servers` and is added
with `shoalctl cluster quorum add-voter`; a voter's disk is wiped and it is made a voter again; a
follower and then the active controller are removed with `remove-voter` and stopped; node 7 is
SIGKILLed and restarts from its own log. Metadata keeps committing throughout, the
brokers follow the voters they were never told about, and nothing acknowledged is lost.

Order matters where Raft says so: a voter's disk is replaced while three others vote (with two
voters, the wiped one's acknowledgements do not count, and nothing could commit its new
directory; Kafka has the same rule)."""

from __future__ import annotations

import json
import shutil

import pytest

from checker import check
from cluster import Cluster, create_topic, leader_id, quorum, wait_for_topics
from conftest import ShoalNode
from test_cli import ctl, ok, one_line_error
from test_cluster_split import split  # noqa: F401 (the fixture)
from test_reassignment import assert_clean, wait_until
from workload import IdempotentWorkload, read_all


def voters_of(split: Cluster, controllers: str) -> list[int]:
    status = json.loads(ok(ctl(split.bootstrap, "-o", "json", "cluster", "quorum", controllers=controllers)))
    return sorted(v["node_id"] for v in status["voters"])


def joining_controller(split: Cluster, tmp_path) -> ShoalNode:
    """Controller 7, configured with bootstrap servers only (no voter list, no cluster id)."""
    node = ShoalNode(tmp_path / "node7", node_id=7, name="node7")
    bootstrap = ",".join(f"127.0.0.1:{n.controller_port}" for n in split.controllers)
    node.overrides.update({
        "process.roles": "controller",
        "listeners": f"CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": "",
        "controller.quorum.bootstrap.servers": bootstrap,
    })
    split.controllers.append(node)
    split.nodes.append(node)
    return node


@pytest.mark.timeout(240)
def test_the_quorum_grows_shrinks_and_replaces_a_voter_under_load(split, tmp_path):
    topic, count = "quorum-load", 6
    create_topic(split.bootstrap, topic, partitions=count)
    wait_for_topics(split.node(5), [topic])
    load = IdempotentWorkload(split.bootstrap, topic, count, rate=1000, max_records=200_000).start()
    wait_until("records acknowledged", lambda: load.acked_count() > 1000)
    controllers = ",".join(f"127.0.0.1:{n.controller_port}" for n in split.controllers)

    # A controller waiting to be added: it runs, knows no leader, and votes nowhere.
    new = joining_controller(split, tmp_path)
    new.start(wait=False)
    wait_until("node 7 answers", lambda: new.healthz() == 200)
    assert new.readyz() == 503
    assert quorum(new)["voters"] == []

    # Refusals change nothing: a voter's id, an unknown voter, another node's address.
    one_line_error(ctl(split.bootstrap, "cluster", "quorum", "remove-voter", "--id", "9",
                       controllers=controllers), 1, "VOTER_NOT_FOUND")
    one_line_error(ctl(split.bootstrap, "cluster", "quorum", "add-voter", "--id", "7", "--address",
                       f"127.0.0.1:{split.node(2).controller_port}", controllers=controllers), 1, "node 2")
    assert voters_of(split, controllers) == [1, 2, 3]

    r = ctl(split.bootstrap, "-o", "json", "cluster", "quorum", "add-voter", "--id", "7", "--address",
            f"127.0.0.1:{new.controller_port}", controllers=controllers)
    added = json.loads(ok(r))
    assert added["voters"] == [1, 2, 3, 7] and added["directory_id"] == quorum(new)["directory_id"], added
    new.wait_ready()
    one_line_error(ctl(split.bootstrap, "cluster", "quorum", "add-voter", "--id", "7", "--address",
                       f"127.0.0.1:{new.controller_port}", controllers=controllers), 1, "DUPLICATE_VOTER")
    controllers += f",127.0.0.1:{new.controller_port}"
    create_topic(split.bootstrap, "with-7", partitions=1)

    # Node 7 dies and comes back from its own log (it was never told a voter list).
    new.kill()
    create_topic(split.bootstrap, "while-7-is-down", partitions=1)
    new.start()
    create_topic(split.bootstrap, "after-7-restarts", partitions=1)

    # A follower's disk is replaced: it votes again after add-voter names its new directory.
    leader = leader_id(split)
    wiped = next(n.node_id for n in split.controllers[:3] if n.node_id != leader)
    split.node(wiped).kill()
    shutil.rmtree(split.node(wiped).data_dir)
    split.node(wiped).start(wait=False)
    wait_until("the wiped voter answers", lambda: split.node(wiped).healthz() == 200)
    replaced = wait_until("add-voter names the new directory", lambda: _add_voter(split, wiped, controllers))
    assert replaced["previous_directory_id"] and replaced["previous_directory_id"] != replaced["directory_id"]
    split.node(wiped).wait_ready()
    create_topic(split.bootstrap, "after-the-replacement", partitions=1)

    # Remove a follower, then the active controller; each stops once it is out.
    leader = leader_id(split)
    follower = next(n.node_id for n in split.controllers[:3] if n.node_id not in (leader, wiped))
    out = ok(ctl(split.bootstrap, "cluster", "quorum", "remove-voter", "--id", str(follower),
                 controllers=controllers))
    assert "voter removed:" in out and str(follower) in out, out
    split.node(follower).stop()
    create_topic(split.bootstrap, "without-a-follower", partitions=1)
    leader = leader_id(split)
    removed = json.loads(ok(ctl(split.bootstrap, "-o", "json", "cluster", "quorum", "remove-voter",
                                "--id", str(leader), controllers=controllers)))
    assert leader not in removed["voters"] and len(removed["voters"]) == 2, removed
    split.node(leader).stop()
    left = removed["voters"]
    wait_until("a new active controller", lambda: leader_id(split) in left, timeout=20)
    create_topic(split.bootstrap, "without-the-old-leader", partitions=1)
    assert voters_of(split, controllers) == sorted(left)
    for n in split.brokers:
        wait_for_topics(n, ["with-7", "after-7-restarts", "after-the-replacement", "without-the-old-leader"])

    log = load.stop()
    report = check(log.acked, read_all(split.node(5).bootstrap, topic, count), by_key=False)
    print(f"{report.summary()}; {len(log.acked)} acknowledged")
    assert_clean(report, log)


def _add_voter(split: Cluster, voter: int, controllers: str) -> dict | None:
    """`add-voter --id voter`, once the leader has heard the voter's new directory."""
    r = ctl(split.bootstrap, "-o", "json", "cluster", "quorum", "add-voter", "--id", str(voter),
            controllers=controllers)
    if r.returncode == 0:
        return json.loads(r.stdout)
    assert "has not answered the leader yet" in r.stderr, r.stderr
    return None
