"""The simulator's errors (docs/architecture.md, "Errors"). Each is a ``CasewatchError``."""
from __future__ import annotations

from casewatch.errors import CasewatchError

__all__ = ["KafkaDown"]


class KafkaDown(CasewatchError):
    """``casewatch history load`` could not publish the history: Kafka did not answer or did not
    take the records. The message is the Kafka client's error name only; the command says it in
    one sentence with the fix."""
