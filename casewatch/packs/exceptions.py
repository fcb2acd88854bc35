"""The packs' errors (docs/architecture.md, "Errors")."""
from __future__ import annotations

from casewatch.domain.exceptions import CasewatchError

__all__ = ["PeriodError", "RenderError", "SourceError"]


class PeriodError(CasewatchError, ValueError):
    """A period the packs cannot read; the message says the accepted forms."""


class RenderError(CasewatchError, RuntimeError):
    """The PDF could not be printed; the message says how to fix it."""


class SourceError(CasewatchError, RuntimeError):
    """Prometheus could not be asked or refused the query; the message says which."""
