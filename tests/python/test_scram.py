"""SCRAM credentials (issue #16): managed with a real client's admin API (confluent-kafka's
alter_user_scram_credentials / describe_user_scram_credentials, KIP-554). librdkafka salts and
hashes the password itself and sends only the salted password; Shoal stores the keys RFC 5802
derives from it. (Logging in with them, SASL/SCRAM and SASL/PLAIN, is the next slice.)
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def described(admin: AdminClient) -> dict[str, list[tuple[str, int]]]:
    users = admin.describe_user_scram_credentials().result(30)
    return {name: sorted((i.mechanism.name, i.iterations) for i in d.scram_credential_infos)
            for name, d in users.items()}


@pytest.mark.timeout(120)
def test_credentials_through_confluent_kafkas_admin_client(shoal_factory):
    node = shoal_factory({"authorizer.class.name": STANDARD_AUTHORIZER,
                          "super.users": "User:ANONYMOUS"})
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192),
                                     b"s3cret", b"salt-of-alice"),
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                     b"s3cret", b"salt-of-alice"),
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100),
                                     b"pw", b"salt"),
    ])
    futures["alice"].result(30)
    with pytest.raises(KafkaException) as refused:
        futures["bob"].result(30)
    assert "UNACCEPTABLE_CREDENTIAL" in str(refused.value) or "iterations" in str(refused.value)
    assert described(admin) == {"alice": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)]}
    # A named user that has none: RESOURCE_NOT_FOUND.
    by_name = admin.describe_user_scram_credentials(["alice", "nobody"])
    assert len(by_name["alice"].result(30).scram_credential_infos) == 2
    with pytest.raises(KafkaException) as missing:
        by_name["nobody"].result(30)
    assert "RESOURCE_NOT_FOUND" in str(missing.value) or "does not exist" in str(missing.value)
    # Delete one mechanism; the credential survives a restart.
    admin.alter_user_scram_credentials([
        UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512)])["alice"].result(30)
    node.restart()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    assert described(admin) == {"alice": [("SCRAM_SHA_256", 8192)]}
    # (Denial, CLUSTER_AUTHORIZATION_FAILED, is checked in crates/shoal-broker/tests/
    # scram_credentials.rs: librdkafka 2.12 aborts the process on any request-level error of
    # DescribeUserScramCredentials, from Kafka too: it frees a string it did not allocate.)
