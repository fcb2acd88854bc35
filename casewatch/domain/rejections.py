"""The reasons an event is refused by the domain's cross-event rules (history.py), in one place.

An event that breaks a rule is reported by ``ChildHistory.rejections`` as ``(event_id, reason)``
with one of these reasons; the engine dead-letters it with that reason and counts it in
``casewatch_events_dead_lettered_total{reason=...}``. The engine's exposition takes its allowed
``reason`` label values from :data:`REJECTION_REASONS`, so a reason added here is published as
itself (never folded into ``other``).
"""
from __future__ import annotations

__all__ = ["ICPC_BEFORE_S47", "REVIEW_BEFORE_PLAN", "END_BEFORE_START", "REJECTION_REASONS"]

ICPC_BEFORE_S47 = "icpc_before_s47"
"""An ICPC dated before the start of the S47 enquiry it names (``s47_ref``)."""

REVIEW_BEFORE_PLAN = "review_before_plan"
"""A CP review before the start of the plan it names, or a LAC review dated before any period of
care in the child's history began."""

END_BEFORE_START = "end_before_start"
"""An S47 completion, CP plan end or assessment completion dated before the start event with the
same reference; a LAC end dated before any period of care began."""

REJECTION_REASONS: frozenset[str] = frozenset({ICPC_BEFORE_S47, REVIEW_BEFORE_PLAN, END_BEFORE_START})
