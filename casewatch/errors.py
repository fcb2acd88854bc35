"""casewatch's errors: the common base and the errors of the library's top-level modules.

Every error casewatch raises on purpose is a :class:`CasewatchError`. Each package that raises its
own errors has an ``exceptions`` module (``casewatch.domain.exceptions``,
``casewatch.edge.exceptions``, ``casewatch.adapters.kafka.exceptions``,
``casewatch.stack.exceptions``, ``casewatch.packs.exceptions``); the modules that raise them
re-export them under their old names. What the engine does with an error in the stream (dead
letter with which reason, retry, stop) is declared in ``casewatch.processing.error_policy``.

The base class is defined in ``casewatch.domain.exceptions`` (the domain may import nothing else of
the project, and every layer may import the domain) and is re-exported here.
"""
from __future__ import annotations

from casewatch.domain.exceptions import CasewatchError

__all__ = ["CasewatchError", "ErasureError", "WebhookSecretError"]


class ErasureError(CasewatchError, RuntimeError):
    """Erasure cannot go ahead; the message is one sentence with the fix (never an identifier)."""


class WebhookSecretError(CasewatchError, RuntimeError):
    """The webhook credentials cannot be read: the notifier does not start."""
