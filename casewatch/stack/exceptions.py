"""The local stack's errors (docs/architecture.md, "Errors")."""
from __future__ import annotations

from casewatch.domain.exceptions import CasewatchError

__all__ = ["StackError"]


class StackError(CasewatchError, RuntimeError):
    """A part of the stack could not be prepared or started; the message says which and why."""
