"""casewatch against a Kafka broker secured as a council would run it: a SASL_SSL listener with
SCRAM-SHA-512 users, a certificate from the deployment's own CA (tests/support/kafka_sasl.py).

* a real `casewatch engine` process, given the security settings in its environment, counts an
  event that a kafka-python producer published over SASL_SSL;
* wrong credentials fail fast with a message that names authentication and never the password;
* a client that does not trust the broker's CA fails with a message that names TLS.
"""
from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaAdminClient

from casewatch.adapters.kafka.security import (KafkaAuthenticationFailed, KafkaTLSFailed, KafkaUnreachable,
                                               connect_producer,
                                               faust_credentials, kafka_python_config)
from tests.support.kafka_sasl import make_certificate_authority, start_sasl_broker
from casewatch.stack.processes import ProcessTable
from casewatch.adapters.kafka.topics import topic_specs
from tests.support.ports import free_port
from tests.support.engine_io import LA, referral, sample_sum, scrape, wait_for_figure

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def sasl_broker(local_stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("kafka-sasl")
    processes = ProcessTable(work / "state")
    broker = start_sasl_broker(local_stack.settings, work, processes, port=free_port(),
                               controller_port=free_port(), log=lambda msg: None)
    yield broker
    processes.stop(broker.name)


@pytest.fixture
def secure_settings(local_stack, sasl_broker):
    settings = sasl_broker.client_settings(local_stack.settings_for(fixed_today="2025-03-14"))
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=10000,
                             **kafka_python_config(settings))
    try:
        admin.create_topics(topic_specs(settings))
    finally:
        admin.close()
    return settings


def test_the_engine_counts_an_event_published_over_sasl_ssl(local_stack, sasl_broker, secure_settings):
    s = secure_settings
    assert s.kafka_security_protocol == "SASL_SSL" and s.kafka_sasl_mechanism == "SCRAM-SHA-512"
    local_stack.start_engine(s)
    try:
        producer = connect_producer(s)
        event = referral(1, "2025-03-12")
        producer.send(s.events_topic, key=event["child_ref"].encode(),
                      value=json.dumps(event).encode()).get(timeout=30)
        producer.close()

        wait_for_figure(s, "casewatch_events_processed_total", lambda v: v == 1.0, timeout=90,
                        event_type="referral.received", la=LA)
        assert sample_sum(scrape(s), "casewatch_referrals", window="12m", source_group="police") == 1.0
    finally:
        local_stack.stop("engine")
    # The worker's log never shows the password.
    assert sasl_broker.password not in local_stack.processes.tail("engine", 400)


def test_the_engine_credentials_carry_the_ca_and_mechanism(sasl_broker, secure_settings):
    credentials = faust_credentials(secure_settings)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == sasl_broker.username
    assert credentials.ssl_context.check_hostname is True
    assert sasl_broker.password not in repr(credentials)


def test_wrong_password_fails_fast_and_names_authentication(sasl_broker, secure_settings):
    wrong = "not-the-password-0123"
    settings = secure_settings.model_copy(update={"kafka_sasl_password": wrong})
    t0 = time.monotonic()
    with pytest.raises(KafkaAuthenticationFailed) as failure:
        connect_producer(settings)
    elapsed = time.monotonic() - t0
    message = str(failure.value)
    print(f"wrong credentials refused in {elapsed:.2f}s: {message}")
    assert elapsed < 30
    assert "refused the credentials" in message and "'casewatch'" in message
    assert "SASL SCRAM-SHA-512" in message
    assert wrong not in message and sasl_broker.password not in message
    assert failure.value.__cause__ is None  # kafka-python's internals are not chained in


def test_unknown_user_fails_the_same_way(secure_settings):
    settings = secure_settings.model_copy(update={"kafka_sasl_username": "nobody"})
    with pytest.raises(KafkaAuthenticationFailed, match="user 'nobody'"):
        connect_producer(settings, timeout=20)


def test_a_client_that_does_not_trust_the_ca_fails_with_a_tls_message(tmp_path, secure_settings):
    other_ca = make_certificate_authority(tmp_path / "other-ca", name="some other CA")
    settings = secure_settings.model_copy(update={"kafka_ssl_cafile": other_ca.cert})
    t0 = time.monotonic()
    with pytest.raises(KafkaTLSFailed) as failure:
        connect_producer(settings)
    assert time.monotonic() - t0 < 30
    message = str(failure.value)
    assert message.startswith(f"TLS handshake with the Kafka broker at {settings.bootstrap} failed")
    assert "not trusted" in message and str(other_ca.cert) in message

    no_ca = secure_settings.model_copy(update={"kafka_ssl_cafile": None})
    with pytest.raises(KafkaTLSFailed, match="system's trusted CAs"):
        connect_producer(no_ca)


def test_a_plaintext_client_gets_nothing_from_the_secure_listener(secure_settings):
    plain = secure_settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT"})
    t0 = time.monotonic()
    with pytest.raises(KafkaUnreachable, match="PLAINTEXT"):
        connect_producer(plain, timeout=5)
    assert time.monotonic() - t0 < 15
