"""The tests' free port: the stack's own (casewatch.stack.loopback), one implementation for the
tests, the backfill and the benchmark."""
from __future__ import annotations

from casewatch.stack.loopback import free_port

__all__ = ["free_port"]
