"""A free loopback port, for the helper processes casewatch starts on ports of their own (the
backfill's temporary Prometheus, the benchmark's brokers and engines) and for the tests."""
from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` now (the operating system's choice; it may be
    taken again before it is used, so use it at once)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
