"""The edge's errors (docs/architecture.md, "Errors")."""
from __future__ import annotations

from casewatch.domain.exceptions import CasewatchError

__all__ = ["PseudonymisationKeyError"]


class PseudonymisationKeyError(CasewatchError, RuntimeError):
    """No usable key: the ingest API and the loader refuse to start (exit code 2)."""
