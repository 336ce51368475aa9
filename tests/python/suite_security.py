"""The security scenarios of librdkafka's regression suite (its `tests/sasl_test.py`), for a
Shoal node: what each scenario's brokers listen with, and what trivup would hand the suite
(test.conf lines and the `SSL_*` environment 0097_ssl_verify reads).

Scenarios, as sasl_test.py names them:
- SASL PLAIN, SASL SCRAM (SCRAM-SHA-512), SASL_SSL PLAIN, SSL (client certificates required),
  SASL OAUTHBEARER (librdkafka's unsecured JWT, Shoal's unsecured validator);
- SASL PLAIN with a wrong user name, which must fail.

Not here: Kerberos (GSSAPI: Shoal has no GSSAPI), OAuth/OIDC (it needs an OIDC token endpoint
and a librdkafka built with curl), and OAUTHBEARER "with wrong scope" (Kafka's unsecured
validator takes a required scope from its JAAS options; Shoal's has none). docs/compatibility.md
lists them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tls_certs import make_ca, make_leaf

# sasl_test.py's user and password.
USER, PASSWORD = "myuser", "mypassword"
# trivup's key password (its `ssl_key_pass` default).
KEY_PASSWORD = "12345678"


@dataclass(frozen=True)
class Scenario:
    name: str
    # The listener's security protocol (librdkafka's security.protocol).
    protocol: str
    mechanism: str | None = None
    user: str = USER
    # The suite must fail (a wrong user name).
    expect_fail: bool = False
    # The tests sasl_test.py runs in this scenario (None: every broker test).
    tests: tuple[str, ...] | None = None
    # The quick ones `make test` runs (a stable subset).
    quick: tuple[str, ...] = ("0001",)

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


SCENARIOS = [
    Scenario("sasl_plain", "SASL_PLAINTEXT", "PLAIN", tests=("0001",), quick=("0001", "0135")),
    Scenario("sasl_scram", "SASL_PLAINTEXT", "SCRAM-SHA-512", quick=("0001", "0135")),
    Scenario("ssl", "SSL"),
    Scenario("sasl_ssl_plain", "SASL_SSL", "PLAIN", quick=("0001", "0135")),
    Scenario("sasl_plain_wrong_user", "SASL_PLAINTEXT", "PLAIN", user="wrongjoe", expect_fail=True,
             tests=("0001",)),
    Scenario("oauthbearer", "SASL_PLAINTEXT", "OAUTHBEARER", tests=("0001",)),
]

# How often sessions must re-authenticate (KIP-368): 0142_reauthentication reads it from the
# broker's configs and checks that clients re-authenticate within it (it creates its topic with
# replication factor 3, so it runs against three brokers: COMPAT_BROKERS=3). 0097_ssl_verify is not in the
# quick lists: its untrusted-certificate subtests expect a TLS stack's alert during the
# handshake (docs/compatibility.md).
REAUTH_MS = 10_000


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr.decode(errors='replace')}")


@dataclass
class SuiteCerts:
    """A CA, the broker's PEM keystore, and a client certificate in every encoding 0097 loads
    (trivup's `SslApp.create_cert`): PEM and DER, an encrypted PEM key, an unencrypted DER
    key, and a PKCS#12 of key, certificate and CA under the key password."""
    directory: Path
    ca_pem: Path
    ca_der: Path
    all_cas_pem: Path
    server_keystore: Path
    pub_pem: Path
    pub_der: Path
    priv_pem: Path
    priv_der: Path
    pkcs: Path

    def env(self) -> dict[str, str]:
        """The `SSL_*` variables trivup sets for the suite (root CA only, no intermediate)."""
        return {
            "SSL_ca_pem": str(self.ca_pem), "SSL_ca_der": str(self.ca_der),
            "SSL_all_cas_pem": str(self.all_cas_pem), "SSL_client_auth": "required",
            "SSL_pub_pem": str(self.pub_pem), "SSL_pub_der": str(self.pub_der),
            "SSL_priv_pem": str(self.priv_pem), "SSL_priv_der": str(self.priv_der),
            "SSL_pkcs": str(self.pkcs), "SSL_password": KEY_PASSWORD,
        }

    def client_conf(self) -> list[str]:
        return [f"ssl.ca.location={self.ca_pem}", f"ssl.certificate.location={self.pub_pem}",
                f"ssl.key.location={self.priv_pem}", f"ssl.key.password={KEY_PASSWORD}"]


def make_suite_certs(directory: Path) -> SuiteCerts:
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory, "suite-ca")
    other_ca, _ = make_ca(directory, "unused-ca")
    server_cert, server_key = make_leaf(directory, ca, "broker", server=True)
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(server_key.read_text() + server_cert.read_text())
    client_cert, client_key = make_leaf(directory, ca, "librdkafka", server=False)
    ca_der = directory / "suite-ca.der"
    _openssl("x509", "-in", str(ca[0]), "-outform", "DER", "-out", str(ca_der), cwd=directory)
    all_cas = directory / "all-cas.pem"
    all_cas.write_text(ca[0].read_text() + other_ca.read_text())
    pub_der = directory / "librdkafka-pub.der"
    _openssl("x509", "-in", str(client_cert), "-outform", "DER", "-out", str(pub_der), cwd=directory)
    priv_pem = directory / "librdkafka-priv.pem"
    _openssl("pkcs8", "-topk8", "-in", str(client_key), "-v2", "aes-256-cbc", "-passout",
             f"pass:{KEY_PASSWORD}", "-out", str(priv_pem), cwd=directory)
    priv_der = directory / "librdkafka-priv.der"
    _openssl("pkey", "-in", str(client_key), "-outform", "DER", "-out", str(priv_der), cwd=directory)
    pkcs = directory / "librdkafka.pfx"
    _openssl("pkcs12", "-export", "-inkey", str(client_key), "-in", str(client_cert), "-certfile",
             str(ca[0]), "-passout", f"pass:{KEY_PASSWORD}", "-out", str(pkcs), cwd=directory)
    return SuiteCerts(directory, ca[0], ca_der, all_cas, keystore, client_cert, pub_der, priv_pem,
                      priv_der, pkcs)


def node_overrides(scenario: Scenario, plain_port: int, secure_port: int, controller_port: int,
                   certs: SuiteCerts | None) -> dict[str, str]:
    """One node's listeners: a PLAINTEXT one (set-up, and the suite's kafka-topics.sh /
    kafka-acls.sh shims) and one of the scenario's protocol, which the suite's clients use."""
    name = scenario.protocol
    kafka = f"PLAINTEXT://127.0.0.1:{plain_port},{name}://127.0.0.1:{secure_port}"
    overrides = {
        "listeners": f"{kafka},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": kafka,
        "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,{name}:{name},CONTROLLER:PLAINTEXT",
    }
    if scenario.mechanism is not None:
        overrides["sasl.enabled.mechanisms"] = scenario.mechanism
        overrides["connections.max.reauth.ms"] = str(REAUTH_MS)
    if scenario.tls:
        assert certs is not None
        prefix = f"listener.name.{name.lower()}."
        overrides[prefix + "ssl.keystore.location"] = str(certs.server_keystore)
        overrides[prefix + "ssl.truststore.location"] = str(certs.ca_pem)
        # The node-wide setting, as trivup's brokers have it: an SSL listener requires client
        # certificates; a SASL_SSL one does not (KIP-684).
        overrides["ssl.client.auth"] = "required"
    return overrides


def client_conf(scenario: Scenario, bootstrap: str, certs: SuiteCerts | None) -> list[str]:
    """The suite's test.conf lines for the scenario (what trivup's LibrdkafkaTestApp writes)."""
    conf = [f"bootstrap.servers={bootstrap}", f"security.protocol={scenario.protocol}"]
    if scenario.mechanism is not None:
        conf.append(f"sasl.mechanisms={scenario.mechanism}")
        if scenario.mechanism == "OAUTHBEARER":
            # librdkafka's unsecured JWT, as trivup configures it without an OIDC server.
            conf += ["enable.sasl.oauthbearer.unsecure.jwt=true",
                     "sasl.oauthbearer.config=scope=requiredScope principal=admin"]
        else:
            conf += [f"sasl.username={scenario.user}", f"sasl.password={PASSWORD}"]
    if scenario.tls:
        assert certs is not None
        conf += certs.client_conf()
    return conf
