"""Bad Kafka credentials and an untrusted broker certificate, against a real SASL_SSL broker
(tests/support/kafka_sasl.py): `casewatch engine` says which in one line, exit 1, and never
prints the password."""
from __future__ import annotations

import pytest

from casewatch.config import Settings
from tests.support.kafka_sasl import MECHANISM, start_sasl_broker
from casewatch.stack.processes import ProcessTable
from tests.support.ports import free_port
from tests.unit.test_cli_errors import one_sentence, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli-kafka-sasl")
    processes = ProcessTable(work / "state")
    sasl = start_sasl_broker(Settings(state_dir=work / "state"), work, processes, port=free_port(),
                             controller_port=free_port(), log=lambda msg: None)
    yield sasl
    processes.stop(sasl.name)


def _env(broker, **overrides) -> dict[str, str]:
    env = {"CASEWATCH_KAFKA_BOOTSTRAP": broker.bootstrap, "CASEWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "CASEWATCH_KAFKA_SASL_MECHANISM": MECHANISM, "CASEWATCH_KAFKA_SASL_USERNAME": broker.username,
           "CASEWATCH_KAFKA_SASL_PASSWORD": broker.password, "CASEWATCH_KAFKA_SSL_CAFILE": str(broker.tls.ca.cert),
           "CASEWATCH_PSEUDONYMISATION_KEY": "k" * 64,
           # free ports, so a running demo stack (29100/29101) or another test cannot clash with this engine
           "CASEWATCH_ENGINE_METRICS_PORT": str(free_port()), "CASEWATCH_ENGINE_WEB_PORT": str(free_port())}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_refused_credentials_are_named_without_the_password(broker, tmp_path):
    (tmp_path / "home").mkdir()
    wrong = "not-the-password-" + "x" * 8
    done = run(tmp_path / "home", "engine", **_env(broker, CASEWATCH_KAFKA_SASL_PASSWORD=wrong))
    line = one_sentence(done)
    assert done.returncode == 1
    assert "refused the credentials" in line and "CASEWATCH_KAFKA_SASL_PASSWORD" in line
    assert wrong not in done.stdout + done.stderr


def test_an_untrusted_broker_certificate_is_named(broker, tmp_path):
    (tmp_path / "home").mkdir()
    done = run(tmp_path / "home", "engine", **_env(broker, CASEWATCH_KAFKA_SSL_CAFILE=None))
    line = one_sentence(done)
    assert done.returncode == 1
    assert "TLS handshake" in line and "not trusted" in line
