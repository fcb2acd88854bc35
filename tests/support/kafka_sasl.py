"""A single-node Kafka (KRaft) whose client listener is ``SASL_SSL`` with SCRAM-SHA-512: the
security a council's deployment uses, started locally so tests can prove casewatch's clients work
with it and fail clearly when they should.

* Its own certificate authority and a broker certificate for the host (IP and DNS subject
  alternative names), made with the ``openssl`` command; Kafka reads them as PEM
  (``ssl.keystore.type=PEM``), so no Java keystore is needed.
* SCRAM users are written into the metadata log when the storage is formatted
  (``StorageTool format --add-scram``, KIP-900): a KRaft cluster has no ZooKeeper to hold them.
* Listeners: ``SASL_SSL`` for clients and between brokers (user ``admin``), ``PLAINTEXT`` for the
  KRaft controller, both on ``host`` (127.0.0.1 by default).
* The jars are the local stack's (:func:`casewatch.stack.components.kafka_libs`).

Not a production recipe (one node, replication factor 1, no authorizer/ACLs): see
docs/operations.md for the production settings.
"""
from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from casewatch.config import Settings
from casewatch.stack.components import (KAFKA_DIR, StackError, kafka_answers_metadata, kafka_libs,
                                        new_kafka_cluster_id)
from casewatch.stack.processes import ManagedProcess, ProcessTable

MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"


@dataclass
class CertificateAuthority:
    cert: Path
    key: Path


@dataclass
class BrokerTLS:
    ca: CertificateAuthority
    cert: Path
    key: Path
    keystore: Path   # the broker's private key (PKCS#8) followed by its certificate chain, PEM


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"openssl {args[0]} failed:\n{done.stderr[-1500:]}")


def make_certificate_authority(directory: Path, name: str = "casewatch test CA") -> CertificateAuthority:
    """A self-signed CA (RSA 2048, 2 days) in ``directory``/ca.pem, ca.key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-sha256",
             "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key.chmod(0o600)
    return CertificateAuthority(cert, key)


def make_broker_certificate(directory: Path, ca: CertificateAuthority, host: str) -> BrokerTLS:
    """A server certificate for ``host`` (and localhost) signed by ``ca``."""
    directory.mkdir(parents=True, exist_ok=True)
    key, csr, cert = directory / "broker.key", directory / "broker.csr", directory / "broker.pem"
    ext = directory / "broker.ext"
    alt = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    ext.write_text("\n".join([
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
        f"subjectAltName={alt},DNS:localhost",
        "",
    ]))
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
    key.chmod(0o600)
    _openssl("req", "-new", "-key", str(key), "-subj", "/CN=casewatch-kafka", "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert))
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text() + ca.cert.read_text())
    keystore.chmod(0o600)
    return BrokerTLS(ca, cert, key, keystore)


@dataclass
class SaslBroker:
    """A running SASL_SSL broker and what a client needs to reach it."""
    host: str
    port: int
    controller_port: int
    data_dir: Path
    tls: BrokerTLS
    username: str
    password: str
    process: ManagedProcess
    name: str

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def client_settings(self, base: Settings, **overrides) -> Settings:
        """``base`` pointed at this broker with SASL_SSL, SCRAM-SHA-512 and this broker's CA."""
        update = {"kafka_bootstrap": self.bootstrap, "kafka_security_protocol": "SASL_SSL",
                  "kafka_sasl_mechanism": MECHANISM, "kafka_sasl_username": self.username,
                  "kafka_sasl_password": self.password, "kafka_sasl_password_file": None,
                  "kafka_ssl_cafile": self.tls.ca.cert}
        update.update(overrides)
        return base.model_copy(update=update)


def broker_properties(data_dir: Path, host: str, port: int, controller_port: int, tls: BrokerTLS,
                      admin_password: str) -> str:
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
            f'username="{ADMIN_USER}" password="{admin_password}";')
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{controller_port}",
        f"listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        f"advertised.listeners=SASL_SSL://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls.ca.cert}",
        "ssl.client.auth=none",
        "ssl.endpoint.identification.algorithm=https",
        "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        f"log.dirs={data_dir / 'logs'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=3",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "",
    ])


def start_sasl_broker(settings: Settings, work_dir: Path, processes: ProcessTable, *, port: int,
                      controller_port: int, username: str = "casewatch", password: str | None = None,
                      name: str = "kafka-sasl", timeout: float = 120.0,
                      log=print) -> SaslBroker:
    """Make the CA and certificate, format the storage with the SCRAM users, start the broker as a
    managed process ``name`` and wait until ``username`` can authenticate over SASL_SSL.
    Stop it with ``processes.stop(name)``."""
    host = settings.host
    libs = kafka_libs(settings, log)
    work_dir.mkdir(parents=True, exist_ok=True)
    ca = make_certificate_authority(work_dir / "ca")
    tls = make_broker_certificate(work_dir / "broker", ca, host)
    password = password or secrets.token_hex(16)
    admin_password = secrets.token_hex(16)
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    props = data_dir / "server.properties"
    props.write_text(broker_properties(data_dir, host, port, controller_port, tls, admin_password))
    props.chmod(0o600)
    java = ["java", "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}", "-cp", f"{libs}/*"]
    done = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", new_kafka_cluster_id(),
         "-c", str(props),
         "--add-scram", f"{MECHANISM}=[name={ADMIN_USER},password={admin_password}]",
         "--add-scram", f"{MECHANISM}=[name={username},password={password}]"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise StackError("formatting the SASL broker's storage failed:\n"
                         f"{done.stdout[-1500:]}{done.stderr[-1500:]}".replace(password, "***")
                         .replace(admin_password, "***"))
    proc = processes.start(name, [*java, "kafka.Kafka", str(props)])
    broker = SaslBroker(host, port, controller_port, data_dir, tls, username, password, proc, name)
    deadline = time.monotonic() + timeout
    why = "not started"
    while time.monotonic() < deadline:
        if not proc.alive:
            raise StackError(f"the SASL broker exited:\n{processes.tail(name, 30)}")
        ok, why = sasl_broker_ready(broker.client_settings(settings))
        if ok:
            return broker
        time.sleep(0.5)
    processes.stop(name)
    raise StackError(f"the SASL broker was not ready after {timeout:.0f}s ({why}):\n{processes.tail(name, 30)}")


def sasl_broker_ready(client_settings: Settings) -> tuple[bool, str]:
    """Whether a kafka-python admin client with these settings gets cluster metadata."""
    from casewatch.adapters.kafka.security import kafka_python_config
    return kafka_answers_metadata(client_settings.bootstrap, 5000, **kafka_python_config(client_settings))
