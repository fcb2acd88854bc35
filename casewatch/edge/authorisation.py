"""What an authenticated source system may write (docs/dpia-data-flow.md §2a).

Each ingest token is bound to one source system (``IngestGrant``): the authorities it may write
(``la_codes``) and whether it may send references that are already pseudonyms (only the replay
tool). A correction (``event.voided``, or any event with ``correction_of``) may only target an event
of the same source system, looked up in ``EventSources``.

An event may not re-use the id of another source's stored event (it would take the id over).
``door_checks`` sorts what it finds into *refusals* (the request is answered 403 and nothing of it is
stored: a source writing outside its grant is not bad input to keep, it is a refusal) and *field
errors* (422 and a dead letter, like any invalid record: a correction whose target is not stored,
or a void of a child's event without ``child_ref``). Messages never quote a value.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

from casewatch.config import IngestGrant
from schemas import IDENTIFIER_FIELDS
from schemas.types import UUID_PATTERN
from casewatch.edge.pseudonymise import PSEUDONYM_RE, PSEUDONYM_REFUSED_MESSAGE


class EventOrigin(Protocol):
    source_system: str
    event_type: str


class EventSources(Protocol):
    """What the checks need of the stored events' origins (casewatch.adapters.kafka.event_sources
    keeps them, from the compacted ``casewatch.events.sources`` topic)."""

    def origin(self, event_id: str) -> EventOrigin | None: ...

    def known_origin(self, event_id: str) -> EventOrigin | None: ...

UUID_RE = re.compile(UUID_PATTERN)
NO_CHILD_EVENT_TYPES = ("workforce.snapshot",)

REFUSAL_TYPES = ("la_code_not_permitted", "pseudonym_not_permitted", "correction_other_source",
                 "event_id_other_source")
ID_OF_OTHER_SOURCE = {"loc": "event_id", "type": "event_id_other_source",
                      "msg": "is the id of another source system's event; every event needs its own id"}
LA_REFUSED = {"loc": "la_code", "type": "la_code_not_permitted",
              "msg": "this source system may not write for this authority (its token's la_codes)"}
OTHER_SOURCE = {"loc": "correction_of", "type": "correction_other_source",
                "msg": "names an event of another source system; a source may only correct its own events"}
TARGET_UNKNOWN = {"loc": "correction_of", "type": "correction_target_unknown",
                  "msg": "names no stored event; send the corrected event first (this dead letter can be "
                         "replayed once it is stored)"}


def correction_checks(record: dict, source_system: str, sources: EventSources) -> tuple[list[dict], list[dict]]:
    """(refusals, field errors) of a record's ``correction_of``, for ``source_system``."""
    target = record.get("correction_of")
    if not (isinstance(target, str) and UUID_RE.match(target)):
        return [], []  # absent, or not a UUID: validation reports it
    origin = sources.origin(target.lower())
    if origin is None:
        return [], [dict(TARGET_UNKNOWN)]
    if origin.source_system != source_system:
        return [dict(OTHER_SOURCE)], []
    if (record.get("event_type") == "event.voided" and record.get("child_ref") is None
            and origin.event_type not in NO_CHILD_EVENT_TYPES):
        return [], [{"loc": "child_ref", "type": "missing",
                     "msg": f"field required: the voided event is a {origin.event_type}, a child's event, "
                            "and its void must name the same child"}]
    return [], []


def door_checks(record: Any, grant: IngestGrant, sources: EventSources,
                served: tuple[str, ...] | list[str] = ()) -> tuple[list[dict], list[dict]]:
    """(refusals, field errors) of one record posted with ``grant``'s token. ``served``: the
    authorities this deployment serves; one of them outside the grant is refused (403), any other
    code is a validation error (422), as it is for every token."""
    if not isinstance(record, dict):
        return [], []
    refusals = []
    la_code = record.get("la_code")
    if isinstance(la_code, str) and la_code in served and la_code not in grant.la_codes:
        refusals.append(dict(LA_REFUSED))
    if not grant.pre_pseudonymised:
        for name in IDENTIFIER_FIELDS:
            value = record.get(name)
            if isinstance(value, str) and PSEUDONYM_RE.match(value):
                refusals.append({"loc": name, "type": "pseudonym_not_permitted", "msg": PSEUDONYM_REFUSED_MESSAGE})
    event_id = record.get("event_id")
    if isinstance(event_id, str) and UUID_RE.match(event_id):
        owner = sources.known_origin(event_id.lower())
        if owner is not None and owner.source_system != grant.source:
            refusals.append(dict(ID_OF_OTHER_SOURCE))
    if refusals:
        return refusals, []
    more, errors = correction_checks(record, grant.source, sources)
    return refusals + more, errors
