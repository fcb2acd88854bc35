"""The engine's declared error policy (casewatch/processing/error_policy.py): every reason the
batch processor can dead-letter with is in it, and each row of its table is exercised through the
processor with the fakes of test_engine_processor. Expected reasons and stages are written out here
by hand, never read from the policy."""
from __future__ import annotations

import asyncio
import inspect
import json

import pytest

from casewatch.processing import error_policy, processor as processor_module
from casewatch.processing.error_policy import POLICY, Action, ErrorKind
from casewatch.processing.figures import Applied, PartitionedFigures
from casewatch.processing.processor import Record
from tests.unit.processing.test_engine_processor import (CALENDAR, CHILD_EVENTS, SCENARIO, Histories, PoisonFigures, processor,
                                              records)

# By hand: the engine's own reasons and the domain's rule breaks (docs/architecture.md, "Errors").
ENGINE_REASONS = {"undecodable", "empty_batch", "missing_envelope_field", "missing_key", "unprocessable"}
DOMAIN_REASONS = {"icpc_before_s47", "review_before_plan", "end_before_start"}


def test_every_reason_the_engine_dead_letters_with_is_in_the_policy():
    assert error_policy.ENGINE_REASONS == ENGINE_REASONS
    assert error_policy.DEAD_LETTER_REASONS == ENGINE_REASONS | DOMAIN_REASONS
    assert {rule.reason.value for rule in POLICY.values() if rule.reason} == ENGINE_REASONS
    assert set(POLICY) == set(ErrorKind)


def test_the_processor_writes_no_reason_of_its_own_and_no_bare_catch_all():
    source = inspect.getsource(processor_module)
    for reason in ENGINE_REASONS | DOMAIN_REASONS | {"decode", "apply", "rules"}:
        assert f'"{reason}"' not in source and f"'{reason}'" not in source, reason
    assert "except Exception" not in source and "except:" not in source
    # every kind the processor names is a row of the policy, and every dead-letter row is named
    named = {kind for kind in ErrorKind if f"ErrorKind.{kind.name}" in source}
    assert {k for k, rule in POLICY.items() if rule.action is not Action.STOP} <= named


def test_a_kind_that_is_not_dead_lettered_has_no_reason_to_give():
    with pytest.raises(LookupError):
        error_policy.reason_and_stage(ErrorKind.PORT_FAILED)
    with pytest.raises(LookupError):
        error_policy.reason_and_stage(ErrorKind.GROUP_NOT_APPLIED)
    with pytest.raises(LookupError):  # a rule break needs the domain's reason
        error_policy.reason_and_stage(ErrorKind.RULE_BREAK)


# --- each row through the processor ------------------------------------------------------------

ENVELOPE = {**CHILD_EVENTS[0], "event_id": "0b7c1f9e-5d4a-4c1b-9f33-2a6d8e0c4b11"}


def run(batch, **ports):
    proc, rec = processor(**ports)
    applied = asyncio.run(proc.process(batch))
    return applied, rec


class RejectingFigures(PartitionedFigures):
    """The real figures, reporting a rule break of the domain for the first event."""

    def apply(self, p, key, events, stored):
        applied = super().apply(p, key, events, stored)
        return Applied(applied.events, applied.duplicates, applied.history,
                       [(CHILD_EVENTS[0]["event_id"], "icpc_before_s47")], applied.appended)


class GroupFailsOnceFigures(PartitionedFigures):
    """Raises for a group of several events, applies them one at a time."""

    def __init__(self):
        super().__init__(CALENDAR, lambda: SCENARIO["as_of"])
        self.calls: list[int] = []

    def apply(self, p, key, events, stored):
        self.calls.append(len(events))
        if len(events) > 1:
            raise KeyError("not as a group")
        return super().apply(p, key, events, stored)


def test_undecodable_bytes_are_dead_lettered_at_decode():
    _, rec = run([Record(0, 1, b"k", b"\xff\xfe not json")])
    assert [(r, s) for r, s, _ in rec.dead] == [("undecodable", "decode")]


def test_an_empty_batch_is_dead_lettered_at_decode():
    _, rec = run([Record(0, 1, b"k", b"[]")])
    assert rec.dead == [("empty_batch", "decode", {})]


def test_an_event_without_its_envelope_is_dead_lettered_at_decode():
    _, rec = run([Record(0, 1, b"k", json.dumps({"event_type": ENVELOPE["event_type"]}).encode())])
    assert rec.dead == [("missing_envelope_field", "decode", {"event_type": ENVELOPE["event_type"]})]


def test_a_record_without_a_key_is_dead_lettered_at_decode():
    _, rec = run([Record(0, 1, None, json.dumps(ENVELOPE, default=str).encode())])
    assert [(r, s) for r, s, _ in rec.dead] == [("missing_key", "decode")]


def test_a_rule_break_is_dead_lettered_with_the_domains_reason():
    _, rec = run(records(CHILD_EVENTS[:1]), figures=RejectingFigures(CALENDAR, lambda: SCENARIO["as_of"]))
    assert rec.dead == [("icpc_before_s47", "rules", {"event_id": CHILD_EVENTS[0]["event_id"]})]


def test_a_group_that_raises_is_retried_one_event_at_a_time_and_nothing_is_dead_lettered():
    figures = GroupFailsOnceFigures()
    applied, rec = run(records(CHILD_EVENTS), figures=figures)
    assert figures.calls == [len(CHILD_EVENTS)] + [1] * len(CHILD_EVENTS)
    assert applied == len(CHILD_EVENTS) and rec.dead == []


def test_a_poison_event_is_dead_lettered_as_unprocessable_at_apply():
    poison = CHILD_EVENTS[1]
    applied, rec = run(records(CHILD_EVENTS), figures=PoisonFigures(poison["event_id"]))
    assert applied == len(CHILD_EVENTS) - 1
    assert rec.dead == [("unprocessable", "apply", {"event_type": poison["event_type"]})]


class Broken(Exception):
    pass


class FailingStore(Histories):
    def put(self, partition, key, value):
        raise Broken("store")


def test_a_failing_store_stops_the_batch():
    proc, rec = processor(store=FailingStore())
    with pytest.raises(Broken):
        asyncio.run(proc.process(records(CHILD_EVENTS)))
    assert rec.dead == [] and rec.flushes == 0


def test_a_stored_history_that_cannot_be_read_stops_the_batch():
    key = records(CHILD_EVENTS[:1])[0].key
    proc, rec = processor(store=Histories({(2, key): b"\x00 not a stored history"}))
    with pytest.raises(Exception) as raised:
        asyncio.run(proc.process(records(CHILD_EVENTS[:1])))
    assert not isinstance(raised.value, Broken)
    assert rec.dead == [] and rec.applied == []


def test_a_failing_changelog_or_dead_letter_sink_stops_the_batch():
    proc, rec = processor()

    async def failing_flush():
        raise Broken("changelog")
    rec.flush = failing_flush
    with pytest.raises(Broken):
        asyncio.run(proc.process(records(CHILD_EVENTS[:1])))

    proc, rec = processor()

    async def failing_sink(reason, stage, payload):
        raise Broken("dead letters")
    proc.dead_letters = failing_sink
    with pytest.raises(Broken):
        asyncio.run(proc.process([Record(0, 1, b"k", b"[]")]))
    assert rec.flushes == 0


def test_every_row_of_the_policy_has_its_test_here():
    tested = {
        ErrorKind.UNDECODABLE: test_undecodable_bytes_are_dead_lettered_at_decode,
        ErrorKind.EMPTY_BATCH: test_an_empty_batch_is_dead_lettered_at_decode,
        ErrorKind.MISSING_ENVELOPE_FIELD: test_an_event_without_its_envelope_is_dead_lettered_at_decode,
        ErrorKind.MISSING_KEY: test_a_record_without_a_key_is_dead_lettered_at_decode,
        ErrorKind.RULE_BREAK: test_a_rule_break_is_dead_lettered_with_the_domains_reason,
        ErrorKind.GROUP_NOT_APPLIED: test_a_group_that_raises_is_retried_one_event_at_a_time_and_nothing_is_dead_lettered,
        ErrorKind.EVENT_NOT_APPLIED: test_a_poison_event_is_dead_lettered_as_unprocessable_at_apply,
        ErrorKind.PORT_FAILED: test_a_failing_store_stops_the_batch,
    }
    assert set(tested) == set(ErrorKind)


# --- the library's errors: one base, each keeps its built-in base and its old import ---------------

MOVED = [  # (module it was defined in, name, built-in base it had)
    ("casewatch.edge.pseudonymise", "PseudonymisationKeyError", RuntimeError),
    ("casewatch.erasure", "ErasureError", RuntimeError),
    ("casewatch.config", "WebhookSecretError", RuntimeError),
    ("casewatch.stack.components", "StackError", RuntimeError),
    ("casewatch.packs.render", "RenderError", RuntimeError),
    ("casewatch.packs.source", "SourceError", RuntimeError),
    ("casewatch.packs.periods", "PeriodError", ValueError),
    ("casewatch.adapters.kafka.publisher", "KafkaUnavailable", RuntimeError),
    ("casewatch.adapters.kafka.security", "KafkaSecurityError", RuntimeError),
    ("casewatch.adapters.kafka.security", "KafkaSecurityMisconfigured", RuntimeError),
    ("casewatch.adapters.kafka.security", "KafkaAuthenticationFailed", RuntimeError),
    ("casewatch.adapters.kafka.security", "KafkaTLSFailed", RuntimeError),
    ("casewatch.adapters.kafka.security", "KafkaUnreachable", RuntimeError),
    ("casewatch.command_errors", "CommandError", Exception),
]


@pytest.mark.parametrize("module, name, builtin", MOVED, ids=[name for _, name, _ in MOVED])
def test_an_error_of_the_library_is_a_casewatch_error_and_keeps_its_old_base_and_name(module, name, builtin):
    import importlib

    from casewatch.errors import CasewatchError
    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, CasewatchError) and issubclass(error, builtin)
    assert error.__module__.endswith(("exceptions", "errors", "command_errors"))


def test_a_calendar_over_an_impossible_range_is_a_domain_error_and_still_a_value_error():
    from casewatch.domain.calendar import WorkingDayCalendar
    from casewatch.domain.exceptions import DomainError
    with pytest.raises(DomainError):
        WorkingDayCalendar(first_year=2020, last_year=2019)
    with pytest.raises(ValueError):
        WorkingDayCalendar(first_year=2020, last_year=2019)
