"""The notifier's errors (docs/architecture.md, "Errors"). Each is a ``CasewatchError`` and keeps its
built-in base (``ValueError``), so code that catches that goes on working; each is also importable
from the module that raises it. (``WebhookSecretError``, read with the notifier's settings, is in
``casewatch.errors``.)"""
from __future__ import annotations

from casewatch.errors import CasewatchError

__all__ = ["RotaError"]


class RotaError(CasewatchError, ValueError):
    """The rota file is missing or malformed (the message names the field, never a person)."""
