"""Every port the local stack listens on, by part and by the setting that moves it, and the check
`casewatch stack up` / `restart` make before they start anything: a port another program holds, or
two settings naming the same port, is one sentence naming the variable and the fix (exit 2).

Faust's own web server (``CASEWATCH_ENGINE_WEB_PORT``) stays off (services/engine/app.py:
``web_enabled=False``), so that port is not one the stack listens on and is not checked.
"""
from __future__ import annotations

from dataclasses import dataclass

from casewatch.command_errors import USAGE, CommandError, port_in_use
from casewatch.config import Settings


@dataclass(frozen=True)
class PortUse:
    part: str
    variable: str
    host: str
    port: int


def stack_ports(settings: Settings) -> dict[str, list[PortUse]]:
    """Part -> the ports it listens on (in ``START_ORDER``'s part names)."""
    s = settings
    h = s.host

    def use(part: str, field: str, host: str | None = None) -> PortUse:
        return PortUse(part, f"CASEWATCH_{field.upper()}", host or h, getattr(s, field))

    ports = {
        "kafka": [use("kafka", "kafka_port"), use("kafka", "kafka_controller_port")],
        "prometheus": [use("prometheus", "prometheus_port")],
        "alertmanager": [use("alertmanager", "alertmanager_port")],
        "mailbox": [use("mailbox", "smtp_port")],
        "notifier": [use("notifier", "notifier_port")],
        "engine": [use("engine", "engine_metrics_port")],
        "ingest": [use("ingest", "ingest_port")],
        "simulator": [],
    }
    if s.notifier_read_port is not None:
        ports["notifier"].append(use("notifier", "notifier_read_port", s.notifier_read_host))
    if s.ingest_read_port is not None:
        ports["ingest"].append(use("ingest", "ingest_read_port", s.ingest_read_host))
    return ports


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def check_ports(uses: list[PortUse]) -> None:
    """Raise :class:`CommandError` (exit 2) when two settings name one port or a port is taken;
    ``uses`` are the ports of the parts about to start."""
    seen: dict[tuple[str, int], PortUse] = {}
    for use in uses:
        other = seen.setdefault((use.host, use.port), use)
        if other is not use:
            raise CommandError(
                f"{other.variable} and {use.variable} are both {use.port} on {use.host}: give each its own "
                "port (README, \"Ports\"); nothing was started", USAGE)
    taken = [use for use in uses if port_in_use(use.host, use.port, use.variable)]
    if not taken:
        return
    if len(taken) == 1:
        use = taken[0]
        raise CommandError(
            f"port {use.port} on {use.host} ({use.variable}, for {use.part}) is already in use by another "
            f"program: stop that program or set {use.variable} to a free port; nothing was started", USAGE)
    listed = _names([f"{u.port} ({u.variable})" for u in taken])
    hosts = {u.host for u in taken}
    where = f" on {taken[0].host}" if len(hosts) == 1 else ""
    raise CommandError(
        f"ports {listed}{where} are already in use by other programs: stop them or set "
        f"{_names([u.variable for u in taken])} to free ports; nothing was started", USAGE)
