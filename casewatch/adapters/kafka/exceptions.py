"""The Kafka adapters' errors (docs/architecture.md, "Errors"). No message raised with them
contains a password."""
from __future__ import annotations

from casewatch.domain.exceptions import CasewatchError

__all__ = ["KafkaUnavailable", "KafkaSecurityError", "KafkaSecurityMisconfigured", "KafkaAuthenticationFailed",
           "KafkaTLSFailed", "KafkaUnreachable"]


class KafkaUnavailable(CasewatchError, RuntimeError):
    """Kafka did not take (or acknowledge) a record in time. Nothing may be reported as stored."""


class KafkaSecurityError(CasewatchError, RuntimeError):
    """A Kafka client could not be set up or could not connect securely."""


class KafkaSecurityMisconfigured(KafkaSecurityError):
    """The security settings are incomplete or contradictory."""


class KafkaAuthenticationFailed(KafkaSecurityError):
    """The broker refused the SASL credentials."""


class KafkaTLSFailed(KafkaSecurityError):
    """The TLS handshake with a broker failed (usually: its certificate is not trusted)."""


class KafkaUnreachable(KafkaSecurityError):
    """No bootstrap broker answered within the time allowed."""
