"""librdkafka's own regression suite against a Shoal node (issue #19): a yardstick nobody here
wrote. Each librdkafka broker test runs in its own `test-runner` process (`TESTS=NNNN -p1 -L`:
one at a time, no local or mock tests) against one node, or three (COMPAT_BROKERS=3, as the
suite's own cluster), configured as the suite's default scenario expects (topics auto-created,
4 partitions), under an outer timeout; a test passes when every subtest it ran PASSED or was
SKIPPED by the suite itself.

`make test` runs STABLE, a subset of a few minutes that passed repeatedly. `make compat`
(COMPAT_SUITE=full) runs every broker test and writes target/compat/results.tsv, which
`tests/compat/report.py` prints as a table; docs/compatibility.md keeps the latest full result
and the reason for every test that does not pass. The runner is built by `make compat-tools`
(tests/compat/build.sh) from the sources the rdkafka-sys crate vendors."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from cluster import Cluster
from conftest import ShoalNode
from test_cli import shoalctl_bin

REPO = Path(__file__).resolve().parents[2]
COMPAT = REPO / "target" / "compat"
TESTS_DIR = COMPAT / "librdkafka" / "tests"
RUNNER = TESTS_DIR / "test-runner"

# Quick broker tests that passed in repeated runs (about 2.5 minutes together; CI's budget
# left out the slower passing ones: 0015, 0019, 0029, 0038, 0040, 0083, 0086).
STABLE = [
    "0001", "0002", "0003", "0005", "0007", "0008", "0011", "0012", "0013", "0014", "0016",
    "0017", "0018", "0021", "0022", "0031", "0034", "0035", "0036", "0041", "0042", "0044",
    "0048", "0054", "0056", "0057", "0059", "0060", "0063", "0064", "0065", "0067", "0068",
    "0070", "0073", "0082", "0085", "0090",
]
SUBTEST_LINE = re.compile(r"^\|\s*(\d{4}_[A-Za-z0-9_]+)\s*\|\s*(PASSED|FAILED|SKIPPED|RUNNING)\s*\|")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def all_broker_tests() -> list[str]:
    """Every numbered test of the suite but the unit tests (0000) and the manual ones (8xxx)."""
    if not TESTS_DIR.is_dir():
        return STABLE
    numbers = {m.group(1) for f in TESTS_DIR.iterdir()
               if (m := re.match(r"^(\d{4})-.*\.(c|cpp)$", f.name))}
    return sorted(n for n in numbers if "0001" <= n < "8000" and n != "1000")


FULL = os.environ.get("COMPAT_SUITE") == "full"
# Brokers the suite runs against (1 or 3; `make compat` uses 3, as the suite's own cluster).
BROKERS = int(os.environ.get("COMPAT_BROKERS", "1"))
# COMPAT_TESTS=0001,0081 narrows a run to those tests (a full run's failures, re-run alone).
ONLY = [t.strip() for t in os.environ.get("COMPAT_TESTS", "").split(",") if t.strip()]
SELECTED = ONLY or (all_broker_tests() if FULL else STABLE)
# Longest one librdkafka test may run (its own timeouts are 30 s x test.timeout.multiplier,
# raised by tests that need more; the slowest seen took about 2 minutes, 0081 with every
# subtest about 7), within pytest's: a full run's, and the stable subset's.
FULL_TEST_TIMEOUT_S, QUICK_TEST_TIMEOUT_S = 540, 280
# Tests made of many subtests that take longer than that when everything passes: 0113 runs
# about forty cooperative-rebalance scenarios (about 11 minutes against one node); 0081 takes
# about 7 minutes, 9 over SASL on three nodes.
LONG_TEST_TIMEOUT_S = {"0113": 1500, "0081": 900}

pytestmark = pytest.mark.skipif(
    not RUNNER.exists(),
    reason=f"librdkafka's test runner is not built ({RUNNER}); run `make compat-tools`",
)


class SuiteCluster:
    """The brokers the suite talks to: one node, or (COMPAT_BROKERS=3) three, as the suite's
    own trivup cluster has (tests that create topics with replication factor 3 need them)."""

    def __init__(self, work: Path, overrides: dict):
        self.nodes: list[ShoalNode] = []
        self.cluster = None
        if BROKERS == 1:
            node = ShoalNode(work / "node", overrides=overrides)
            node.start()
            self.nodes = [node]
            self.bootstrap = node.bootstrap
        else:
            self.cluster = Cluster(work / "cluster", overrides)
            self.cluster.start()
            self.nodes = self.cluster.brokers
            self.bootstrap = self.cluster.bootstrap

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
        else:
            for n in self.nodes:
                n.stop()


def suite_overrides(full: bool = FULL) -> dict:
    """The node settings the suite's default scenario expects: topics auto-created with 4
    partitions; for a full run also an authorizer that lets everyone do what no ACL denies, as
    the suite's brokers run (the admin tests, 0081, create ACLs)."""
    overrides = {"num.partitions": 4, "auto.create.topics.enable": "true"}
    if full:
        overrides.update({
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "true",
        })
    return overrides


def kafka_shims(work: Path) -> Path:
    """A KAFKA_PATH whose bin/kafka-topics.sh and kafka-acls.sh are the shoalctl shims."""
    kafka_path = work / "kafka"
    (kafka_path / "bin").mkdir(parents=True)
    for shim in ("kafka-topics.sh", "kafka-acls.sh"):
        (kafka_path / "bin" / shim).symlink_to(REPO / "tests" / "compat" / shim)
    return kafka_path


def verdict_of(rc: int, subtests: list) -> str:
    """PASSED when the runner exited 0 and every subtest it ran PASSED or was SKIPPED by the
    suite; SKIPPED when none PASSED; else FAILED."""
    failed = [name for name, state in subtests if state != "PASSED" and state != "SKIPPED"]
    if rc != 0 or failed:
        return "FAILED"
    return "PASSED" if any(state == "PASSED" for _, state in subtests) else "SKIPPED"


@pytest.fixture(scope="module")
def suite_node(tmp_path_factory):
    work = tmp_path_factory.mktemp("librdkafka-suite")
    overrides = suite_overrides()
    node = SuiteCluster(work, overrides)
    kafka_path = kafka_shims(work)
    conf = work / "test.conf"
    conf.write_text(f"bootstrap.servers={node.bootstrap}\ntest.timeout.multiplier=2\ntest.topic.random=true\n")
    yield node, conf, kafka_path
    node.stop()


def run_librdkafka_test(number: str, bootstrap: str, conf: Path, kafka_path: Path,
                        extra_env: dict[str, str] | None = None,
                        timeout: int | None = None) -> tuple[int, list, str]:
    """One test in its own runner process: (exit code, [(subtest, state)], output). `bootstrap`
    is where the suite's kafka-topics.sh / kafka-acls.sh shims connect (a PLAINTEXT listener);
    the clients connect as `conf` says."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "TESTS", "TESTS_SKIP", "SUBTESTS")},
        "TESTS": number,
        "RDKAFKA_TEST_CONF": str(conf),
        "LD_LIBRARY_PATH": f"{TESTS_DIR.parent / 'src'}:{TESTS_DIR.parent / 'src-cpp'}",
        # The suite skips or changes version-gated tests below the broker version it is told.
        "TEST_KAFKA_VERSION": "4.0.0",
        # The suite creates topics and ACLs itself only with both set (kafka-topics.sh and
        # kafka-acls.sh are shims over shoalctl).
        "KAFKA_PATH": str(kafka_path),
        "BROKERS": bootstrap,
        "SHOALCTL_BIN": str(shoalctl_bin()),
        **(extra_env or {}),
    }
    try:
        done = subprocess.run([str(RUNNER), "-p1", "-L"], cwd=TESTS_DIR, env=env, capture_output=True,
                              timeout=timeout or timeout_s(number))
        rc, output = done.returncode, (done.stdout + done.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc = -1
        output = ((e.stdout or b"") + (e.stderr or b"")).decode(errors="replace") + \
            f"\n(outer timeout after {timeout or timeout_s(number)} s)"
    output = ANSI.sub("", output)
    subtests = [m.groups() for line in output.splitlines() if (m := SUBTEST_LINE.match(line.strip()))]
    return rc, subtests, output


def timeout_s(number: str, full: bool = FULL) -> int:
    return LONG_TEST_TIMEOUT_S.get(number, FULL_TEST_TIMEOUT_S if full else QUICK_TEST_TIMEOUT_S)


@pytest.mark.parametrize("number", [
    pytest.param(n, marks=pytest.mark.timeout(timeout_s(n) + 60)) for n in SELECTED
])
def test_librdkafka(number, suite_node):
    node, conf, kafka_path = suite_node
    assert node.running, "the node died during the suite"
    started = time.monotonic()
    rc, subtests, output = run_librdkafka_test(number, node.bootstrap, conf, kafka_path)
    elapsed = time.monotonic() - started
    verdict = verdict_of(rc, subtests)
    if FULL:
        COMPAT.mkdir(parents=True, exist_ok=True)
        with open(COMPAT / "results.tsv", "a") as results:
            detail = " ".join(f"{name}={state}" for name, state in subtests) or f"rc={rc}"
            results.write(f"{number}\t{verdict}\t{elapsed:.0f}\t{detail}\n")
    if verdict == "FAILED":
        tail = "\n".join(output.splitlines()[-40:])
        pytest.fail(f"librdkafka test {number}: exit {rc}, subtests {subtests}\n{tail}")
    if verdict == "SKIPPED":
        pytest.skip(f"librdkafka skipped every subtest of {number}: {subtests}")
