"""The ``casewatch dlq list | show N | replay`` commands: reading the dead-letter topic, and
replaying what the ingest doors refused once it would now pass.

A dead letter is numbered by its partition and offset (``0:17``; the ingest dead-letter topic has
one partition, so ``17`` is enough). ``replay`` takes the dead letters of the validation stage
refused by ingest, the loader or an earlier replay, checks each stored payload again at the edge
(today's code lists and configuration; a team kept as a keyed digest is restored when it is now
configured; a correction only when its target is stored and of the same source system, as at the
ingest API), and publishes the ones that now pass to the events topic. Dead letters stay in the
topic (it is append-only); replaying twice republishes the same event ids, which the engine
de-duplicates.

The dead-letter record is not defined here: casewatch/adapters/kafka/dead_letters.py owns it
(``DeadLetterRecord``: what was refused, why, by whom, when and at which stage), with the one
reader of the topic (``read_dead_letters``, ``find``). It is written by the publisher
(casewatch/adapters/kafka/publisher.py: the refusals of ingest, the loader and replay) and the
feeds (services/feeds/envelope.py). This module is the ingest service's use of them.
"""
from __future__ import annotations

import json
import sys

from dataclasses import dataclass, field

from casewatch import bootstrap
from casewatch.adapters.kafka.dead_letters import (REPLAYABLE_SOURCES, StoredDeadLetter, find,
                                                   read_dead_letters)
from casewatch.adapters.kafka.event_sources import EventSources
from casewatch.adapters.kafka.publisher import STAGE_VALIDATION, EventPublisher
from casewatch.config import Settings
from casewatch.edge.authorisation import correction_checks


@dataclass
class ReplaySummary:
    examined: int = 0
    replayed: int = 0
    still_failing: int = 0
    skipped: int = 0
    replayed_numbers: list[str] = field(default_factory=list)


def replay(settings: Settings, publisher: EventPublisher, dry_run: bool = False,
           event_sources=None) -> ReplaySummary:
    sources = event_sources if event_sources is not None else EventSources(settings)
    summary = ReplaySummary()
    futures = []
    for letter in read_dead_letters(settings):
        value = letter.value
        payload = value.get("payload")
        if (value.get("stage") != STAGE_VALIDATION or value.get("source") not in REPLAYABLE_SOURCES
                or not isinstance(payload, dict)):
            summary.skipped += 1
            continue
        summary.examined += 1
        if "team" in payload:  # a team not configured then is kept as a keyed digest (pseudonymise.py)
            payload = dict(payload, team=publisher.pseudonymiser.restore_team(payload["team"], settings.team_list))
        source_system = payload.get("source_system") if isinstance(payload.get("source_system"), str) else None
        refusals, errors = correction_checks(payload, source_system or publisher.source_system, sources)
        checked = publisher.check(payload, source_system=source_system, extra_errors=refusals + errors)
        if not checked.ok:
            summary.still_failing += 1
            continue
        summary.replayed += 1
        summary.replayed_numbers.append(letter.number)
        if not dry_run:
            futures.append(publisher.publish(checked))
            sources.remember(checked.event.event_id, checked.event.source_system, checked.event.event_type)
    publisher.wait(futures)
    sources.close()
    return summary



def _summary_line(letter: StoredDeadLetter) -> str:
    value = letter.value
    payload = value.get("payload")
    event_type = payload.get("event_type") if isinstance(payload, dict) else None
    errors = value.get("errors") or []
    first = errors[0] if errors else {}
    reason = f"{first.get('type', '?')}" + (f" ({first.get('loc')})" if first.get("loc") else "")
    more = f" +{len(errors) - 1} more" if len(errors) > 1 else ""
    return (f"{letter.number:>8}  {value.get('received_at', '?'):<29}  {value.get('source', '?'):<8} "
            f"{value.get('stage', '?'):<10}  {str(event_type or '-'):<26}  {reason}{more}")


def cmd_list(args) -> int:
    settings = bootstrap.settings()
    count = 0
    print(f"{'number':>8}  {'received_at':<29}  {'source':<8} {'stage':<10}  {'event_type':<26}  reason")
    for letter in read_dead_letters(settings):
        count += 1
        if args.limit is None or count <= args.limit:
            print(_summary_line(letter))
    print(f"{count} dead letter(s) in {settings.deadletter_topic}")
    return 0


def cmd_show(args) -> int:
    letter = find(bootstrap.settings(), args.number)
    if letter is None:
        print(f"no dead letter {args.number}", file=sys.stderr)
        return 1
    print(json.dumps(letter.value, indent=2, ensure_ascii=False))
    return 0


def cmd_replay(args) -> int:
    from casewatch.edge.pseudonymise import PseudonymisationKeyError
    from casewatch.adapters.kafka.publisher import KafkaUnavailable
    parts = bootstrap.build()
    settings = parts.settings
    try:
        publisher = parts.publisher("replay", source="replay")
    except PseudonymisationKeyError as exc:
        print(f"casewatch dlq replay: {exc}", file=sys.stderr)
        return 2
    try:
        summary = replay(settings, publisher, dry_run=args.dry_run)
    except KafkaUnavailable as exc:
        print(f"casewatch dlq replay: {exc}", file=sys.stderr)
        return 1
    finally:
        publisher.close()
    verb = "would replay" if args.dry_run else "replayed"
    print(f"examined {summary.examined} dead letter(s) of the validation stage: {verb} {summary.replayed} "
          f"that now pass, {summary.still_failing} still fail; {summary.skipped} from other stages or sources skipped")
    if summary.replayed:
        print("note: replayed dead letters stay in the dead-letter topic; replaying again republishes the same "
              "event ids, which the engine de-duplicates")
    return 0
