"""The tests' free port.

In a serial run it is the stack's own (casewatch.stack.loopback: the operating system's choice).
Under pytest-xdist (``./dev test`` runs two workers) each worker picks from a range of its own
below the kernel's ephemeral range, so two workers never hand out the same port, and neither can
collide with the ports the operating system hands out (to clients' outgoing connections, the
backfill's temporary Prometheus, the benchmark's brokers). The ranges also keep clear of the
stack's default ports (29xxx), so a running ``./dev up`` is not disturbed. A port handed out once
is not handed out again by the same worker.
"""
from __future__ import annotations

import os
import random
import re
import socket

from casewatch.stack.loopback import free_port as _os_free_port

__all__ = ["free_port", "worker_port_range"]

# 20000-28999 split between the workers (29000-29999 holds the stack's default ports; the
# ephemeral range of a Linux kernel starts at 32768).
_FIRST, _LAST = 20000, 28999
_handed_out: set[int] = set()


def worker_port_range(worker: str | None = None, workers: str | None = None) -> range | None:
    """This xdist worker's ports, or None outside xdist (serial run)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER") if worker is None else worker
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") if workers is None else workers
    match = re.fullmatch(r"gw(\d+)", worker or "")
    if not match:
        return None
    count = max(int(workers or 1), int(match.group(1)) + 1)
    size = (_LAST - _FIRST + 1) // count
    start = _FIRST + int(match.group(1)) * size
    return range(start, start + size)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` now; use it at once."""
    ports = worker_port_range()
    if ports is None:
        return _os_free_port(host)
    for _ in range(2):
        candidates = [p for p in ports if p not in _handed_out]
        random.shuffle(candidates)
        for port in candidates:
            if _bindable(host, port):
                _handed_out.add(port)
                return port
        _handed_out.clear()   # every port handed out once: start again with those free now
    raise OSError(f"no free port in {ports.start}-{ports.stop - 1} on {host}")
