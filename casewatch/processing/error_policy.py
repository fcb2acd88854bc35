"""The engine's error policy: what the batch processor (processor.py) does with each kind of error.

One table, :data:`POLICY`, from an :class:`ErrorKind` to a :class:`Rule` (the action, the stage
and the dead-letter reason). The processor looks every dead letter up here instead of writing
reason strings of its own, and catches only the exceptions named here:

============================  ==========================  ========  ===========================
error kind                    action                      stage     dead-letter reason
============================  ==========================  ========  ===========================
``UNDECODABLE``               dead letter                 decode    ``undecodable``
``EMPTY_BATCH``               dead letter                 decode    ``empty_batch``
``MISSING_ENVELOPE_FIELD``    dead letter                 decode    ``missing_envelope_field``
``MISSING_KEY``               dead letter                 decode    ``missing_key``
``RULE_BREAK``                dead letter                 rules     the domain's reason
``GROUP_NOT_APPLIED``         retry, one event at a time  apply     (none)
``EVENT_NOT_APPLIED``         dead letter                 apply     ``unprocessable``
``PORT_FAILED``               stop                        (none)    (none)
============================  ==========================  ========  ===========================

* A record's bytes that are not JSON (:data:`DECODE_ERRORS`) are dead-lettered as ``undecodable``.
* A rule break is dead-lettered with the reason the domain gives it; the domain's reasons are one
  list, :data:`casewatch.domain.rejections.REJECTION_REASONS`.
* Poison isolation is the one documented catch-all: applying a child's group of events may raise
  anything (:data:`POISON_ISOLATION` is ``Exception``), because an event that breaks the domain's
  code must not stop the stream. The group is then retried one event at a time, and only the
  events that still raise are dead-lettered as ``unprocessable``.
* Anything else (the history store, a stored history that cannot be decoded, the changelog, the
  dead-letter sink) is not caught: it leaves ``BatchProcessor.process`` and stops the agent, since
  carrying on would lose a write or a dead letter without a trace.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from casewatch.domain.rejections import REJECTION_REASONS

__all__ = ["Action", "Stage", "EngineReason", "ErrorKind", "Rule", "POLICY", "DECODE_ERRORS",
           "POISON_ISOLATION", "ENGINE_REASONS", "DEAD_LETTER_REASONS", "reason_and_stage"]


class Action(enum.Enum):
    DEAD_LETTER = "dead_letter"
    RETRY_EACH = "retry_one_event_at_a_time"
    STOP = "stop"


class Stage(str, enum.Enum):
    """The ``stage`` of a dead letter (and of the dead-letter counter's label)."""
    DECODE = "decode"
    RULES = "rules"
    APPLY = "apply"


class EngineReason(str, enum.Enum):
    """The engine's own dead-letter reasons (the domain's rule breaks bring their own)."""
    UNDECODABLE = "undecodable"
    EMPTY_BATCH = "empty_batch"
    MISSING_ENVELOPE_FIELD = "missing_envelope_field"
    MISSING_KEY = "missing_key"
    UNPROCESSABLE = "unprocessable"


class ErrorKind(enum.Enum):
    UNDECODABLE = "a record's bytes are not JSON"
    EMPTY_BATCH = "a record holds an empty JSON array"
    MISSING_ENVELOPE_FIELD = "an event is not an object or lacks event_id, event_type or la_code"
    MISSING_KEY = "a record has no key"
    RULE_BREAK = "an event breaks a cross-event rule of the domain"
    GROUP_NOT_APPLIED = "applying a child's events of the batch raised"
    EVENT_NOT_APPLIED = "applying one event on its own raised (a poison event)"
    PORT_FAILED = "the store, the changelog or the dead-letter sink raised"


@dataclass(frozen=True)
class Rule:
    action: Action
    stage: Stage | None = None
    reason: EngineReason | None = None  # None for a rule break: the domain's reason is used


POLICY: dict[ErrorKind, Rule] = {
    ErrorKind.UNDECODABLE: Rule(Action.DEAD_LETTER, Stage.DECODE, EngineReason.UNDECODABLE),
    ErrorKind.EMPTY_BATCH: Rule(Action.DEAD_LETTER, Stage.DECODE, EngineReason.EMPTY_BATCH),
    ErrorKind.MISSING_ENVELOPE_FIELD: Rule(Action.DEAD_LETTER, Stage.DECODE, EngineReason.MISSING_ENVELOPE_FIELD),
    ErrorKind.MISSING_KEY: Rule(Action.DEAD_LETTER, Stage.DECODE, EngineReason.MISSING_KEY),
    ErrorKind.RULE_BREAK: Rule(Action.DEAD_LETTER, Stage.RULES),
    ErrorKind.GROUP_NOT_APPLIED: Rule(Action.RETRY_EACH, Stage.APPLY),
    ErrorKind.EVENT_NOT_APPLIED: Rule(Action.DEAD_LETTER, Stage.APPLY, EngineReason.UNPROCESSABLE),
    ErrorKind.PORT_FAILED: Rule(Action.STOP),
}

DECODE_ERRORS: tuple[type[BaseException], ...] = (ValueError, UnicodeDecodeError, TypeError, RecursionError)
"""What ``json.loads`` raises on a record's value (RecursionError: deep nesting)."""

POISON_ISOLATION: tuple[type[BaseException], ...] = (Exception,)
"""The one catch-all: whatever applying events raises sets the events aside (see the table)."""

ENGINE_REASONS: frozenset[str] = frozenset(r.value for r in EngineReason)
DEAD_LETTER_REASONS: frozenset[str] = ENGINE_REASONS | REJECTION_REASONS
"""Every reason the engine dead-letters with: its own and the domain's rule breaks."""


def reason_and_stage(kind: ErrorKind, reason: str | None = None) -> tuple[str, str]:
    """(reason, stage) of a dead letter of ``kind``, as plain strings; ``reason`` is the domain's
    for a rule break."""
    rule = POLICY[kind]
    if rule.action is not Action.DEAD_LETTER:
        raise LookupError(f"{kind.name} is not dead-lettered ({rule.action.value})")
    if rule.reason is None:
        if reason is None:
            raise LookupError(f"{kind.name} is dead-lettered with the domain's reason: give it")
        return reason, rule.stage.value
    return rule.reason.value, rule.stage.value
