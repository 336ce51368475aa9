"""librdkafka's regression suite over SASL and TLS (issue #19): the scenarios of the suite's
own `tests/sasl_test.py` (suite_security.py), each against a Shoal node (COMPAT_BROKERS=3:
three) whose listener speaks that protocol, configured as trivup configures Kafka's brokers: SCRAM credentials for the
suite's user, client certificates required on SSL, the `SSL_*` environment 0097_ssl_verify
reads, and `connections.max.reauth.ms` for 0142_reauthentication.

`make test` runs each scenario's quick tests (suite_security.Scenario.quick); `make
compat-security` (COMPAT_SECURITY=full) runs what sasl_test.py runs: every broker test in the
SASL SCRAM, SSL and SASL_SSL PLAIN scenarios, 0001 in the others, writing
target/compat/results-security.tsv. A scenario that must fail (a wrong user name) passes here
only when the suite fails to authenticate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

from cluster import Cluster
from conftest import ShoalNode, free_port
from suite_security import (PASSWORD, SCENARIOS, USER, Scenario, client_conf, make_suite_certs,
                            node_overrides)
from test_librdkafka_suite import (BROKERS, COMPAT, ONLY, RUNNER, all_broker_tests, kafka_shims,
                                   run_librdkafka_test, suite_overrides, timeout_s, verdict_of)

FULL = os.environ.get("COMPAT_SECURITY") == "full"

pytestmark = pytest.mark.skipif(
    not RUNNER.exists(),
    reason=f"librdkafka's test runner is not built ({RUNNER}); run `make compat-tools`",
)


def numbers_of(scenario: Scenario) -> tuple[str, ...]:
    if not FULL:
        return scenario.quick
    numbers = scenario.tests if scenario.tests is not None else tuple(all_broker_tests())
    # COMPAT_TESTS narrows the scenarios that run every test.
    return tuple(n for n in numbers if n in ONLY) if ONLY and scenario.tests is None else numbers


CASES = [
    pytest.param(scenario, number, id=f"{scenario.name}-{number}",
                 marks=pytest.mark.timeout(timeout_s(number, FULL) + 60))
    for scenario in SCENARIOS for number in numbers_of(scenario)
]


class SecuredNode:
    """One node, or (COMPAT_BROKERS=3) three, each with a PLAINTEXT listener (set-up, the
    shims) and one of the scenario's protocol."""

    def __init__(self, work: Path, scenario: Scenario):
        certs = make_suite_certs(work / "certs") if scenario.tls else None
        self.cluster = None
        if BROKERS == 1:
            self.nodes = [ShoalNode(work / "node", overrides=suite_overrides(FULL))]
        else:
            self.cluster = Cluster(work / "cluster", suite_overrides(FULL))
            self.nodes = self.cluster.brokers
        secure_ports = []
        for node in self.nodes:
            secure_ports.append(free_port())
            node.overrides.update(node_overrides(scenario, node.kafka_port, secure_ports[-1],
                                                 node.controller_port, certs))
        if self.cluster is not None:
            self.cluster.start()
        else:
            self.nodes[0].start()
        self.bootstrap = ",".join(n.bootstrap for n in self.nodes)
        # The suite's user, for PLAIN (checked against the SCRAM credential) and SCRAM.
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        upserts = [UserScramCredentialUpsertion(USER, ScramCredentialInfo(m, 4096), PASSWORD.encode())
                   for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(30)
        secure = ",".join(f"127.0.0.1:{p}" for p in secure_ports)
        self.conf = work / "test.conf"
        self.conf.write_text("\n".join(["test.timeout.multiplier=2", "test.topic.random=true",
                                        *client_conf(scenario, secure, certs)]) + "\n")
        self.env = certs.env() if certs is not None else {}
        self.kafka_path = kafka_shims(work)

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
        else:
            self.nodes[0].stop()


@pytest.fixture(scope="module")
def secured(request, tmp_path_factory):
    scenario: Scenario = request.param
    secured = SecuredNode(tmp_path_factory.mktemp(f"suite-{scenario.name}"), scenario)
    yield scenario, secured
    secured.stop()


@pytest.mark.parametrize("secured,number", CASES, indirect=["secured"])
def test_librdkafka_secured(secured, number):
    scenario, node = secured
    assert node.running, "a node died during the scenario"
    started = time.monotonic()
    rc, subtests, output = run_librdkafka_test(number, node.bootstrap, node.conf, node.kafka_path,
                                               extra_env=node.env, timeout=timeout_s(number, FULL))
    elapsed = time.monotonic() - started
    verdict = verdict_of(rc, subtests)
    authentication_refused = "Authentication failed" in output or "SASL authentication error" in output
    if scenario.expect_fail:
        # This scenario passes when the suite fails to log in.
        verdict = "PASSED" if verdict == "FAILED" and authentication_refused else "FAILED"
        subtests = [("login refused, as it must be", "PASSED")] if verdict == "PASSED" else subtests
    if FULL:
        COMPAT.mkdir(parents=True, exist_ok=True)
        with open(COMPAT / "results-security.tsv", "a") as results:
            detail = " ".join(f"{name}={state}" for name, state in subtests) or f"rc={rc}"
            results.write(f"{scenario.name}:{number}\t{verdict}\t{elapsed:.0f}\t{detail}\n")
    tail = "\n".join(output.splitlines()[-40:])
    if scenario.expect_fail:
        assert verdict == "PASSED", f"{scenario.name} {number} should fail to authenticate:\n{tail}"
        return
    if verdict == "FAILED":
        pytest.fail(f"librdkafka test {number} ({scenario.name}): exit {rc}, subtests {subtests}\n{tail}")
    if verdict == "SKIPPED":
        pytest.skip(f"librdkafka skipped every subtest of {number} ({scenario.name}): {subtests}")
