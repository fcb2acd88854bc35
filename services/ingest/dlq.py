"""``casewatch dlq list | show N | replay``: the commands over the dead-letter topic (the record, reading and
replaying are casewatch/adapters/kafka/dead_letters.py).
"""
from __future__ import annotations

import json
import sys

from casewatch.adapters.kafka.dead_letters import StoredDeadLetter, find, read_dead_letters, replay


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
    from casewatch.config import get_settings
    settings = get_settings()
    count = 0
    print(f"{'number':>8}  {'received_at':<29}  {'source':<8} {'stage':<10}  {'event_type':<26}  reason")
    for letter in read_dead_letters(settings):
        count += 1
        if args.limit is None or count <= args.limit:
            print(_summary_line(letter))
    print(f"{count} dead letter(s) in {settings.deadletter_topic}")
    return 0


def cmd_show(args) -> int:
    from casewatch.config import get_settings
    letter = find(get_settings(), args.number)
    if letter is None:
        print(f"no dead letter {args.number}", file=sys.stderr)
        return 1
    print(json.dumps(letter.value, indent=2, ensure_ascii=False))
    return 0


def cmd_replay(args) -> int:
    from casewatch.config import get_settings
    from casewatch.edge.pseudonymise import PseudonymisationKeyError
    from casewatch.adapters.kafka.publisher import EventPublisher, KafkaUnavailable
    settings = get_settings()
    try:
        publisher = EventPublisher(settings, source_system="replay", source="replay")
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
