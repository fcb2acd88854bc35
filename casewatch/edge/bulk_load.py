"""``casewatch load FILE...``: bulk-load case events from JSON-lines or CSV files.

* JSONL: one event (a JSON object) per line; blank lines skipped. CSV: one event per row, the
  columns are field names; an empty cell is an absent field; ``reasons`` and ``factors`` hold
  ``;``-separated codes; true/false, whole-number and decimal columns are converted by the event
  type's schema.
* Streaming: one record at a time, Kafka acknowledgements counted by callbacks, so memory stays
  constant whatever the file size.
* Stable ``event_id``: the record's own, else a UUIDv5 of the canonical JSON of the pseudonymised
  record, so loading the same file again (with the same key) yields the same event ids and the
  engine's de-duplication makes a re-load harmless.
* Every invalid record goes to the dead-letter topic; the summary counts read / published /
  dead-lettered by reason, and the exit code is 1 when anything was rejected.
"""
from __future__ import annotations

import csv
import json
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from schemas import EVENT_TYPES
from casewatch.adapters.kafka.publisher import STAGE_DECODE, Checked, EventPublisher, KafkaUnavailable

EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "casewatch:bulk-load")
LIST_FIELDS = ("reasons", "factors")
TRUE_TEXT = {"true", "1", "yes", "y"}
FALSE_TEXT = {"false", "0", "no", "n"}
MAX_REPORTED_REJECTIONS = 20
# The loader's producer: it waits for Kafka only at the end (and when its buffer is full), so it
# lingers to fill large batches; long timeouts ride out a broker's brief pause.
PRODUCER_OPTIONS = dict(max_block_ms=60000, delivery_timeout_ms=120000, linger_ms=20, batch_size=512 * 1024)


@dataclass
class Record:
    source: str          # "file:line" (no content)
    raw: Any             # the parsed record, or the raw bytes when the line is not JSON
    decoded: bool = True


@dataclass
class LoadSummary:
    read: int = 0
    published: int = 0
    dead_lettered: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    kafka_failures: int = 0
    rejections: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def render(self, dry_run: bool) -> str:
        verb = "valid" if dry_run else "published"
        lines = [f"read {self.read}, {verb} {self.read - self.rejected if dry_run else self.published}, "
                 f"{'rejected' if dry_run else 'dead-lettered'} {self.rejected if dry_run else self.dead_lettered}"]
        for reason, n in self.rejected_by_reason.most_common():
            lines.append(f"  {n:>8}  {reason}")
        if self.kafka_failures:
            lines.append(f"Kafka did not acknowledge {self.kafka_failures} record(s); load the file again "
                         "(event ids are stable, so nothing is counted twice)")
        return "\n".join(lines)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stable_event_id(record: dict) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical_json(record)))


# -- reading ---------------------------------------------------------------------------------------

def _lines(path: Path, bar: tqdm | None) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for line in fh:
            if bar is not None:
                bar.update(len(line))
            yield line


def read_jsonl(path: Path, bar: tqdm | None = None) -> Iterator[Record]:
    for number, line in enumerate(_lines(path, bar), 1):
        if not line.strip():
            continue
        try:
            yield Record(f"{path.name}:{number}", json.loads(line.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, RecursionError):
            yield Record(f"{path.name}:{number}", line.rstrip(b"\r\n"), decoded=False)


@lru_cache(maxsize=None)
def _column_types(event_type: str) -> dict[str, str]:
    """JSON types of an event type's fields, from its JSON Schema (``boolean``, ``integer``, ...)."""
    cls = EVENT_TYPES[event_type]
    types: dict[str, str] = {}
    for name, prop in cls.model_json_schema().get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        kinds = [o.get("type") for o in options if o.get("type") not in (None, "null")]
        if kinds:
            types[name] = kinds[0]
    return types


def _convert(text: str, kind: str | None) -> Any:
    if kind == "boolean":
        low = text.strip().lower()
        return True if low in TRUE_TEXT else False if low in FALSE_TEXT else text
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            return text
    if kind == "number":
        try:
            return float(text.strip())
        except ValueError:
            return text
    if kind == "array":
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def csv_row_to_event(row: dict[str, str | None]) -> dict:
    event_type = row.get("event_type")
    types = _column_types(event_type) if event_type in EVENT_TYPES else {}
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name is None:  # more cells than header columns: kept as an unknown field (rejected)
            out["(extra cells)"] = value
            continue
        if value is None or value == "":
            continue
        kind = types.get(name) or ("array" if name in LIST_FIELDS else None)
        out[name] = _convert(value, kind)
    return out


def read_csv(path: Path, bar: tqdm | None = None) -> Iterator[Record]:
    text_lines = (line.decode("utf-8-sig", errors="replace") for line in _lines(path, bar))
    reader = csv.DictReader(text_lines)
    for row in reader:
        yield Record(f"{path.name}:{reader.line_num}", csv_row_to_event(row))


def read_records(path: Path, fmt: str | None = None, bar: tqdm | None = None) -> Iterator[Record]:
    kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    return read_csv(path, bar) if kind == "csv" else read_jsonl(path, bar)


# -- loading ---------------------------------------------------------------------------------------

class BulkLoader:
    def __init__(self, publisher: EventPublisher, dry_run: bool = False):
        self.publisher = publisher
        self.dry_run = dry_run
        self.summary = LoadSummary()

    def _ack(self, dead_letter: bool):
        def on_success(_metadata):
            with self.summary._lock:
                if dead_letter:
                    self.summary.dead_lettered += 1
                else:
                    self.summary.published += 1
        return on_success

    def _failed(self, _exc):
        with self.summary._lock:
            self.summary.kafka_failures += 1

    def check(self, record: Record) -> Checked:
        if not record.decoded:
            return Checked(None, self.publisher.pseudonymiser.opaque(record.raw),
                           [{"loc": "", "msg": "the line is not valid UTF-8 JSON", "type": "json_invalid"}],
                           STAGE_DECODE)
        raw = record.raw
        if isinstance(raw, dict) and not raw.get("event_id"):
            pseudonymised = self.publisher.pseudonymiser.event(raw, keep_pseudonyms=self.publisher.pre_pseudonymised)
            try:
                event_id = stable_event_id(pseudonymised)
            except UnicodeEncodeError:  # a lone surrogate: the record is rejected for it, without an id
                return self.publisher.check(raw, pseudonymised=pseudonymised)
            # event_id is no identifier field: the pseudonymised record with the id is this one
            return self.publisher.check(dict(raw, event_id=event_id),
                                        pseudonymised=dict(pseudonymised, event_id=event_id))
        return self.publisher.check(raw)

    def load(self, record: Record) -> Checked:
        self.summary.read += 1
        checked = self.check(record)
        if not checked.ok:
            first = checked.errors[0] if checked.errors else {"type": "invalid", "loc": ""}
            located = first["loc"] and not first["loc"].startswith("(")
            reason = first["type"] + (f" ({first['loc']})" if located else "")
            self.summary.rejected_by_reason[reason] += 1
            if len(self.summary.rejections) < MAX_REPORTED_REJECTIONS:
                self.summary.rejections.append(
                    f"{record.source}: " + "; ".join(f"{e['loc'] or '(record)'}: {e['msg']}" for e in checked.errors))
        if not self.dry_run:
            future = self.publisher.publish(checked)
            future.add_callback(self._ack(not checked.ok))
            future.add_errback(self._failed)
        return checked

    def finish(self) -> LoadSummary:
        if not self.dry_run:
            self.publisher.flush()
        return self.summary


def load_files(paths: list[Path], publisher: EventPublisher, *, dry_run: bool = False, fmt: str | None = None,
               progress: bool = False) -> LoadSummary:
    loader = BulkLoader(publisher, dry_run=dry_run)
    total = sum(p.stat().st_size for p in paths)
    with tqdm(total=total, unit="B", unit_scale=True, desc="loading", file=sys.stderr,
              disable=not progress) as bar:
        for path in paths:
            for record in read_records(path, fmt, bar):
                loader.load(record)
    return loader.finish()


def run(args) -> int:
    """The ``casewatch load`` command."""
    from casewatch import bootstrap
    from casewatch.edge.pseudonymise import PseudonymisationKeyError

    parts = bootstrap.build()
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"casewatch load: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        publisher = parts.publisher(args.source_system, source="loader", **PRODUCER_OPTIONS)
    except PseudonymisationKeyError as exc:
        print(f"casewatch load: {exc}", file=sys.stderr)
        return 2
    progress = args.progress or sys.stderr.isatty()
    try:
        summary = load_files(paths, publisher, dry_run=args.dry_run, fmt=args.format, progress=progress)
    except KafkaUnavailable as exc:
        print(f"casewatch load: {exc}; stopped. Load the file(s) again when Kafka is back "
              "(event ids are stable, so nothing is counted twice).", file=sys.stderr)
        return 1
    finally:
        publisher.close()
    for line in summary.rejections:
        print(line, file=sys.stderr)
    if summary.rejected > len(summary.rejections):
        print(f"... and {summary.rejected - len(summary.rejections)} more rejected record(s)", file=sys.stderr)
    print(summary.render(args.dry_run))
    return 1 if summary.rejected or summary.kafka_failures else 0
