"""The ingest service's errors (docs/architecture.md, "Errors"). Each is a ``CasewatchError`` and is
also importable from the module that raises it."""
from __future__ import annotations

from casewatch.errors import CasewatchError

__all__ = ["NotAcknowledged"]


class NotAcknowledged(CasewatchError):
    """Kafka did not acknowledge every record of a request: ``acknowledged`` of ``total`` were."""

    def __init__(self, acknowledged: int, total: int):
        super().__init__(f"{acknowledged} of {total} acknowledged")
        self.acknowledged = acknowledged
        self.total = total
