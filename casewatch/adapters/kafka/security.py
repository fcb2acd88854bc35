"""How casewatch's Kafka clients authenticate to the brokers and check who they are talking to.

The local stack runs Kafka in PLAINTEXT on 127.0.0.1. A council's deployment runs it with TLS
(``SSL``) and usually SASL on top (``SASL_SSL``, SCRAM-SHA-512 recommended). One set of settings
(``CASEWATCH_KAFKA_SECURITY_PROTOCOL``, ``..._SASL_MECHANISM``, ``..._SASL_USERNAME``,
``..._SASL_PASSWORD`` or ``..._SASL_PASSWORD_FILE``, ``..._SSL_CAFILE``) serves every client:

* :func:`faust_credentials` for the engine (``faust.App(broker_credentials=...)``);
* :func:`kafka_python_config` for kafka-python producers and admin clients (ingest, loaders);
* :func:`connect_producer`, a kafka-python producer that is known to be connected, and that fails
  fast with a message naming the real problem (refused credentials, an untrusted certificate)
  instead of kafka-python's generic "no brokers available" after a long wait.

No message raised here contains the password.
"""
from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

from casewatch.config import Settings
from casewatch.adapters.kafka.exceptions import (  # noqa: F401 - also importable from here
    KafkaSecurityError, KafkaSecurityMisconfigured, KafkaAuthenticationFailed, KafkaTLSFailed, KafkaUnreachable)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


# ---------------------------------------------------------------------------------------------
# Reading the settings
# ---------------------------------------------------------------------------------------------

def protocol(settings: Settings) -> str:
    value = (settings.kafka_security_protocol or "PLAINTEXT").upper()
    if value not in PROTOCOLS:
        raise KafkaSecurityMisconfigured(
            f"CASEWATCH_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
    return value


def uses_tls(settings: Settings) -> bool:
    return protocol(settings) in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    return protocol(settings) in ("SASL_PLAINTEXT", "SASL_SSL")


def security_configured(settings: Settings) -> bool:
    """True when the clients must do more than plain unauthenticated TCP."""
    return protocol(settings) != "PLAINTEXT"


def sasl_mechanism(settings: Settings) -> str:
    value = (settings.kafka_sasl_mechanism or "SCRAM-SHA-512").upper()
    if value not in SASL_MECHANISMS:
        raise KafkaSecurityMisconfigured(
            f"CASEWATCH_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
    return value


def sasl_password(settings: Settings) -> str | None:
    if settings.kafka_sasl_password:
        return settings.kafka_sasl_password
    if settings.kafka_sasl_password_file:
        path = Path(settings.kafka_sasl_password_file)
        try:
            return path.read_text().strip() or None
        except OSError as exc:
            raise KafkaSecurityMisconfigured(
                f"the Kafka SASL password file {path} cannot be read ({exc.strerror})") from None
    return None


def _sasl_user_and_password(settings: Settings) -> tuple[str, str]:
    username = settings.kafka_sasl_username
    password = sasl_password(settings)
    if not username or not password:
        raise KafkaSecurityMisconfigured(
            f"{protocol(settings)} needs CASEWATCH_KAFKA_SASL_USERNAME and CASEWATCH_KAFKA_SASL_PASSWORD "
            "(or CASEWATCH_KAFKA_SASL_PASSWORD_FILE)")
    return username, password


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that trusts ``kafka_ssl_cafile`` (else the system's CAs) and checks
    the broker's host name against its certificate."""
    cafile = settings.kafka_ssl_cafile
    if cafile is not None and not Path(cafile).is_file():
        raise KafkaSecurityMisconfigured(f"the Kafka CA file {cafile} does not exist")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ---------------------------------------------------------------------------------------------
# Client configurations
# ---------------------------------------------------------------------------------------------

def faust_credentials(settings: Settings):
    """``broker_credentials`` for ``faust.App``: None for PLAINTEXT."""
    import faust

    proto = protocol(settings)
    if proto == "PLAINTEXT":
        return None
    if proto == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    username, password = _sasl_user_and_password(settings)
    return faust.SASLCredentials(
        username=username, password=password, mechanism=sasl_mechanism(settings),
        ssl_context=ssl_context(settings) if proto == "SASL_SSL" else None)


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients (``KafkaProducer``, ``KafkaAdminClient``,
    ``KafkaConsumer``), without ``bootstrap_servers``."""
    proto = protocol(settings)
    config: dict[str, Any] = {"security_protocol": proto}
    if proto in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_cafile is not None:
            if not Path(settings.kafka_ssl_cafile).is_file():
                raise KafkaSecurityMisconfigured(
                    f"the Kafka CA file {settings.kafka_ssl_cafile} does not exist")
            config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
        config["ssl_check_hostname"] = True
    if proto in ("SASL_PLAINTEXT", "SASL_SSL"):
        username, password = _sasl_user_and_password(settings)
        config.update(sasl_mechanism=sasl_mechanism(settings), sasl_plain_username=username,
                      sasl_plain_password=password)
    return config


# ---------------------------------------------------------------------------------------------
# Connecting with clear failures
# ---------------------------------------------------------------------------------------------

def _bootstrap_servers(settings: Settings) -> list[tuple[str, int]]:
    servers = []
    for item in settings.bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        servers.append((host.strip("[]"), int(port)))
    return servers


def check_tls(settings: Settings, timeout: float = 10.0) -> None:
    """Do a TLS handshake with each bootstrap broker; raise :class:`KafkaTLSFailed` naming the
    broker and the reason when one fails. Brokers that do not answer at all are left to the
    client (it reports them as unreachable)."""
    context = ssl_context(settings)
    for host, port in _bootstrap_servers(settings):
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host):
                    pass
        except ssl.SSLCertVerificationError as exc:
            trust = (f"the CA file {settings.kafka_ssl_cafile}" if settings.kafka_ssl_cafile
                     else "the system's trusted CAs (CASEWATCH_KAFKA_SSL_CAFILE is not set)")
            raise KafkaTLSFailed(
                f"TLS handshake with the Kafka broker at {host}:{port} failed: its certificate is "
                f"not trusted by {trust} ({exc.verify_message or 'certificate verify failed'})"
            ) from None
        except ssl.SSLError as exc:
            raise KafkaTLSFailed(
                f"TLS handshake with the Kafka broker at {host}:{port} failed ({exc.reason or exc}); "
                "is CASEWATCH_KAFKA_SECURITY_PROTOCOL right for this listener?") from None
        except OSError:
            continue


def _auth_failure(settings: Settings) -> KafkaAuthenticationFailed:
    return KafkaAuthenticationFailed(
        f"Kafka refused the credentials for user {settings.kafka_sasl_username!r} "
        f"(SASL {sasl_mechanism(settings)} authentication failed at {settings.bootstrap}); check "
        "CASEWATCH_KAFKA_SASL_USERNAME / CASEWATCH_KAFKA_SASL_PASSWORD and the mechanism")


def check_authentication(settings: Settings, timeout: float = 10.0) -> None:
    """Open one connection to a bootstrap broker and authenticate with SASL; raise
    :class:`KafkaAuthenticationFailed` when the broker refuses the credentials.

    kafka-python closes a connection whose authentication failed and retries it later; the
    reason only reaches ``close(error=...)``, so the probe connection records it there."""
    from kafka.conn import BrokerConnection, get_ip_port_afi
    from kafka.errors import SaslAuthenticationFailedError

    class ProbeConnection(BrokerConnection):
        close_errors: list = []

        def close(self, error=None):
            if error is not None:
                self.close_errors.append(error)
            super().close(error)

    config = kafka_python_config(settings)
    for host, port in _bootstrap_servers(settings):
        host, _, afi = get_ip_port_afi(host)
        conn = ProbeConnection(host, port, afi, request_timeout_ms=int(timeout * 1000), **config)
        conn.close_errors = []
        try:
            connected = conn.connect_blocking(timeout=timeout)
        except SaslAuthenticationFailedError:
            connected = False
            conn.close_errors.append(SaslAuthenticationFailedError())
        finally:
            conn.close()
        if any(isinstance(e, SaslAuthenticationFailedError) for e in conn.close_errors):
            raise _auth_failure(settings) from None
        if connected:
            return


def connect_producer(settings: Settings, timeout: float = 20.0, **producer_kwargs):
    """A connected kafka-python ``KafkaProducer`` for ``settings``' brokers and security.

    Raises, within about ``timeout`` seconds: :class:`KafkaTLSFailed` (certificate not trusted,
    wrong protocol), :class:`KafkaAuthenticationFailed` (credentials refused),
    :class:`KafkaUnreachable` (no broker answered), :class:`KafkaSecurityMisconfigured`.
    kafka-python alone would keep retrying such connections in the background and report only a
    timeout on the first send.
    """
    from kafka import KafkaProducer
    from kafka.errors import NoBrokersAvailable

    config = kafka_python_config(settings)
    deadline = time.monotonic() + timeout
    if uses_tls(settings):
        check_tls(settings, timeout=min(timeout, 10.0))
    if uses_sasl(settings):
        check_authentication(settings, timeout=max(1.0, min(10.0, deadline - time.monotonic())))
    ms = int(max(1.0, deadline - time.monotonic()) * 1000)
    options: dict[str, Any] = {"request_timeout_ms": max(ms, 5000), "api_version_auto_timeout_ms": ms,
                               "max_block_ms": ms}
    options.update(producer_kwargs)
    try:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap, **config, **options)
    except NoBrokersAvailable:
        raise KafkaUnreachable(
            f"no Kafka broker at {settings.bootstrap} answered within {timeout:.0f}s "
            f"({protocol(settings)})") from None
    while not producer.bootstrap_connected():
        if time.monotonic() > deadline:
            producer.close(timeout=1)
            raise KafkaUnreachable(
                f"no Kafka broker at {settings.bootstrap} accepted a connection within "
                f"{timeout:.0f}s ({protocol(settings)})")
        time.sleep(0.05)
    return producer
