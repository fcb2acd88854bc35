"""The feeds' errors (docs/architecture.md, "Errors"). Each is a ``CasewatchError`` and keeps its
built-in base (``ValueError``), so code that catches that goes on working; each is also importable
from the module that raises it. No message names a child or a worker."""
from __future__ import annotations

from casewatch.errors import CasewatchError

__all__ = ["FeedConfigError", "ReturnsError"]


class FeedConfigError(CasewatchError, ValueError):
    """A feed cannot run as configured (no LA code, an unknown old LA number ...)."""


class ReturnsError(CasewatchError, ValueError):
    """The folder's SSDA903 files cannot be told apart into returns (the message names the files)."""
