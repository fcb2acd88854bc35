"""The domain's errors, and the base of every casewatch error.

:class:`CasewatchError` is defined here, in the bottom layer, because every layer may import the
domain and the domain may import nothing else of the project (docs/architecture.md, "The layers,
as contracts"); its public home is :mod:`casewatch.errors`. Each error also keeps the built-in base
it had before (``ValueError``, ``RuntimeError``) so code that catches that goes on working.
"""
from __future__ import annotations

__all__ = ["CasewatchError", "DomainError", "CalendarError"]


class CasewatchError(Exception):
    """The base of every error casewatch raises on purpose."""


class DomainError(CasewatchError):
    """A rule of the domain cannot be applied as asked."""


class CalendarError(DomainError, ValueError):
    """A working-day calendar asked for an impossible range of years."""
