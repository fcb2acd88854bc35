"""What a ``casewatch`` command says when it fails: one sentence naming the cause and the fix.

``casewatch.cli.main`` is the one place that turns a failure into a message and an exit code:

* ``2`` — a usage or configuration mistake (invalid setting, missing file, key or token; a port
  `casewatch stack up` / `restart` finds taken before it starts anything, casewatch/stack/ports.py);
* ``1`` — a runtime failure (Kafka unreachable, credentials refused, a port already taken);
* ``130`` — interrupted (Ctrl-C).

A command that finds a mistake itself raises :class:`CommandError` with the sentence; known
exceptions from the libraries and from casewatch's own modules are explained by :func:`explain`.
A traceback is printed only with ``casewatch --debug ...``. No message here repeats a secret or
a setting's value that could hold one, nor anything read from an input file.
"""
from __future__ import annotations

import errno
import re
import socket

from casewatch.errors import CasewatchError

USAGE = 2
RUNTIME = 1
INTERRUPTED = 130

KAFKA_FIX = ("start Kafka (`casewatch stack up` locally) or point CASEWATCH_KAFKA_BOOTSTRAP at a "
             "running broker")


class CommandError(CasewatchError):
    """A failure the person running the command can fix; ``str()`` is the whole message."""

    def __init__(self, message: str, exit_code: int = RUNTIME):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------------
# Checks a long-running command does before it hands over to a server library (faust, uvicorn),
# which would otherwise report the same failure as a traceback from deep inside it.
# ---------------------------------------------------------------------------------------------

def port_in_use(host: str, port: int, variable: str) -> bool:
    """Whether another socket holds ``host:port`` (it cannot be bound). Any other reason the address
    cannot be bound (a host that is not this machine's, a port needing privileges) raises
    :class:`CommandError` naming ``variable``, the setting to change."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror}): check CASEWATCH_HOST "
                               f"and {variable}", USAGE) from None
    return False


def require_free_port(host: str, port: int, variable: str) -> None:
    """Raise :class:`CommandError` when ``host:port`` cannot be bound (another program has it)."""
    if port_in_use(host, port, variable):
        raise CommandError(
            f"port {port} on {host} is already in use by another program: stop that program "
            f"or choose another port with {variable}", RUNTIME)


def require_kafka(settings, timeout: float = 10.0) -> None:
    """Connect to the brokers once (TLS, SASL and all) and raise :class:`CommandError` naming what
    is wrong when that fails: unreachable, credentials refused, certificate not trusted."""
    from casewatch.adapters.kafka.security import _bootstrap_servers, connect_producer, kafka_python_config
    kafka_python_config(settings)  # incomplete security settings are a configuration mistake (exit 2)
    if not any(_accepts_connections(host, port) for host, port in _bootstrap_servers(settings)):
        raise CommandError(f"Kafka at {settings.bootstrap} is not reachable (connection refused): {KAFKA_FIX}",
                           RUNTIME)
    producer = connect_producer(settings, timeout=timeout)
    producer.close(timeout=1)


def _accepts_connections(host: str, port: int) -> bool:
    """False only when the address answers at once that nothing listens there; a slow or silent
    address is left to the Kafka client's own timeout."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except (ConnectionRefusedError, socket.gaierror):
        return False
    except OSError:
        return True


# ---------------------------------------------------------------------------------------------
# Explaining exceptions
# ---------------------------------------------------------------------------------------------

_SECRET_FIELD = re.compile(r"key|token|password|secret|credential", re.I)
_ADDRESS = re.compile(r"\(?'?([0-9a-fA-F.:]+|localhost)'?,\s*(\d+)\)?")


def _config_error(exc) -> tuple[str, int]:
    """pydantic's ValidationError for casewatch's settings: name the variable and what it needs."""
    problems = []
    for error in exc.errors():
        field = "_".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        variable = f"CASEWATCH_{field.upper()}" if field else "a setting"
        shown = ""
        if field and not _SECRET_FIELD.search(field) and isinstance(error.get("input"), (str, int, float)):
            shown = f"={str(error['input'])[:40]!r}"
        problems.append(f"{variable}{shown}: {error.get('msg', 'invalid').rstrip('.')}")
    return ("invalid configuration: " + "; ".join(problems)
            + " (fix it in the environment or in .env; see .env.example)"), USAGE


def explain(exc: BaseException, settings=None) -> tuple[str, int] | None:
    """The message and exit code for a known failure, or None for an unexpected one."""
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", INTERRUPTED

    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        ValidationError = ()
    if ValidationError and isinstance(exc, ValidationError):
        return _config_error(exc)

    from casewatch.adapters.kafka.security import (KafkaAuthenticationFailed, KafkaSecurityError,
                                                   KafkaSecurityMisconfigured, KafkaTLSFailed, KafkaUnreachable)
    if isinstance(exc, KafkaSecurityMisconfigured):
        return f"{exc}: fix the CASEWATCH_KAFKA_* settings (docs/operations.md, \"TLS and SASL\")", USAGE
    if isinstance(exc, KafkaUnreachable):
        return f"Kafka is not reachable: {exc}; {KAFKA_FIX}", RUNTIME
    if isinstance(exc, (KafkaAuthenticationFailed, KafkaTLSFailed, KafkaSecurityError)):
        return str(exc), RUNTIME

    bootstrap = getattr(settings, "bootstrap", None) or "the configured brokers"
    kind = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith(("kafka.", "aiokafka.")):
        if "Authentication" in kind or "Sasl" in kind:
            return (f"Kafka refused the credentials at {bootstrap}: check CASEWATCH_KAFKA_SASL_USERNAME "
                    "and CASEWATCH_KAFKA_SASL_PASSWORD(_FILE)"), RUNTIME
        if kind in ("NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError"):
            return f"Kafka at {bootstrap} is not reachable ({kind}): {KAFKA_FIX}", RUNTIME

    if kind == "PseudonymisationKeyError":
        return f"{exc}", USAGE
    if kind == "WebhookSecretError":
        return f"{exc}", USAGE
    if kind == "StackError":
        return f"{exc}", RUNTIME

    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None)
        if isinstance(exc, FileNotFoundError) and name:
            return f"{name}: no such file or folder; check the path (or the setting that names it)", USAGE
        if isinstance(exc, PermissionError) and name:
            return (f"{name}: permission denied; run as a user who may read it, or fix its owner and "
                    "mode"), USAGE
        if isinstance(exc, IsADirectoryError) and name:
            return f"{name} is a folder, not a file: give the file's path", USAGE
        if exc.errno == errno.EADDRINUSE:
            found = _ADDRESS.search(str(exc))
            where = f"port {found.group(2)} on {found.group(1)}" if found else "a port this command needs"
            return (f"{where} is already in use by another program: stop that program or choose another "
                    "port (the CASEWATCH_*_PORT settings, or --port)"), RUNTIME
        if exc.errno == errno.ECONNREFUSED:
            return (f"a service this command needs refused the connection ({exc.strerror}): is it running? "
                    "`casewatch stack status` shows the local stack"), RUNTIME
    return None


def unexpected(exc: BaseException, command: str | None) -> str:
    """One line for a failure nobody foresaw, without its (possibly personal) message."""
    where = f"casewatch {command}" if command else "casewatch"
    return (f"{where} failed unexpectedly ({type(exc).__name__}); run it again with --debug for the "
            "traceback and report it")
