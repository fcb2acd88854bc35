"""Where an import's events and dead letters go, and the summary it prints.

* ``JsonlSink``      — ``--out FILE.jsonl``: one raw event per line (identifier fields still raw:
                       ``casewatch load`` pseudonymises at the edge); dead letters beside it in
                       ``FILE.deadletters.jsonl``.
* ``PublisherSink``  — the default: ``casewatch.adapters.kafka.publisher.EventPublisher`` pseudonymises,
                       validates and sends each event; a feed dead letter goes to the dead-letter
                       topic with its ``child_ref`` pseudonymised.
* ``DryRunSink``     — ``--dry-run``: maps and counts, sends nothing.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from services.feeds.envelope import DeadLetter


@dataclass
class ImportSummary:
    """Counts only: event types, dead-letter reasons, records read. Safe to print and log."""
    records_read: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    dead_letters: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    rejected_at_publish: int = 0
    inputs: list[str] = field(default_factory=list)   # one line per return / file imported
    not_read: list[str] = field(default_factory=list)  # files in the folder that are no table we read
    problems: Counter = field(default_factory=Counter)  # every problem of every dead letter

    def render(self, title: str, destination: str) -> str:
        lines = [f"{title}: {sum(self.events.values())} events, {sum(self.dead_letters.values())} dead letters "
                 f"-> {destination}"]
        for line in self.inputs:
            lines.append(f"  {line}")
        if self.not_read:
            lines.append("  not read (no table of this import): " + ", ".join(self.not_read))
        for name, n in sorted(self.records_read.items()):
            lines.append(f"  read {name:<34} {n:>8}")
        for name, n in sorted(self.events.items()):
            lines.append(f"  event {name:<33} {n:>8}")
        if self.dead_letters:
            lines.append("  dropped (dead letters: records or parts not sent), by first problem; 'also' = further"
                         " problems listed in the same dead letters:")
            for name, n in sorted(self.dead_letters.items()):
                lines.append(f"  dead letter {name:<27} {n:>8}")
            more = self.problems - self.dead_letters
            for name, n in sorted(more.items()):
                lines.append(f"  also {name:<34} {n:>8}")
        if self.notes:
            lines.append("  notes (nothing dropped):")
            for name, n in sorted(self.notes.items()):
                lines.append(f"  note {name:<34} {n:>8}")
        if self.rejected_at_publish:
            lines.append(f"  failed validation at the edge (sent to dead letters) {self.rejected_at_publish:>8}")
        return "\n".join(lines)


class Sink:
    destination = "nowhere"

    def __init__(self, source: str):
        self.source = source
        self.summary = ImportSummary()

    def event(self, ev: dict) -> None:
        self.summary.events[ev["event_type"]] += 1
        self._event(ev)

    def dead_letter(self, dl: DeadLetter) -> None:
        self.summary.dead_letters[dl.reason] += 1
        self.summary.problems[dl.reason] += 1
        for reason, _loc in dl.also:
            self.summary.problems[reason] += 1
        self._dead_letter(dl)

    def _event(self, ev: dict) -> None:  # pragma: no cover - overridden
        pass

    def _dead_letter(self, dl: DeadLetter) -> None:  # pragma: no cover - overridden
        pass

    def close(self) -> None:
        pass


class DryRunSink(Sink):
    destination = "dry run (nothing sent)"


class CollectingSink(Sink):
    """Keeps everything in memory (tests, and the DfE API adapter's per-request batch)."""
    destination = "memory"

    def __init__(self, source: str):
        super().__init__(source)
        self.events: list[dict] = []
        self.dead_letters: list[DeadLetter] = []

    def _event(self, ev: dict) -> None:
        self.events.append(ev)

    def _dead_letter(self, dl: DeadLetter) -> None:
        self.dead_letters.append(dl)


class JsonlSink(Sink):
    def __init__(self, source: str, path: Path):
        super().__init__(source)
        self.path = Path(path)
        self.dead_path = self.path.with_name(self.path.stem + ".deadletters.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out: TextIO = self.path.open("w", encoding="utf-8")
        self._dead: TextIO | None = None
        self.destination = str(self.path)

    def _event(self, ev: dict) -> None:
        self._out.write(json.dumps(ev, separators=(",", ":"), ensure_ascii=False) + "\n")

    def _dead_letter(self, dl: DeadLetter) -> None:
        if self._dead is None:
            self._dead = self.dead_path.open("w", encoding="utf-8")
        self._dead.write(json.dumps(dl.to_record(self.source), separators=(",", ":"), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._out.close()
        if self._dead is not None:
            self._dead.close()


class PublisherSink(Sink):
    """Publishes through ``casewatch.adapters.kafka.publisher.EventPublisher`` (pseudonymise, validate, send).

    An import is history: its events carry the ``casewatch-replay`` header of one run (kind
    ``import``), and closing the sink sends the run's replay-end control record to every partition
    of the events topic (``casewatch.adapters.kafka.replay_marking``), so the engine reports itself catching up
    and publishes no figure from a half-imported history. Dead letters are not marked."""
    destination = "Kafka"

    def __init__(self, source: str, publisher: Any, batch: int = 500):
        super().__init__(source)
        self.publisher = publisher
        self.batch = batch
        self._futures: list = []
        self.run_id: str | None = None

    def _mark(self) -> None:
        from casewatch.adapters.kafka.replay_marking import mark_producer, new_run_id
        self.run_id = new_run_id("import")
        mark_producer(self.publisher.producer, self.run_id, self.publisher.settings.events_topic)

    def _event(self, ev: dict) -> None:
        if self.run_id is None:
            self._mark()
        checked = self.publisher.send(ev)
        if not checked.ok:
            self.summary.rejected_at_publish += 1
        self._pending(None)

    def _dead_letter(self, dl: DeadLetter) -> None:
        payload = self.publisher.pseudonymiser.event(dl.payload)
        record = dl.to_record(self.source)
        self._pending(self.publisher.dead_letter(payload, record["errors"], record["stage"], source=self.source))

    def _pending(self, future) -> None:
        if future is not None:
            self._futures.append(future)
        if len(self._futures) >= self.batch:
            self.publisher.wait(self._futures)
            self._futures.clear()

    def close(self) -> None:
        try:
            self.publisher.flush()
            if self._futures:
                self.publisher.wait(self._futures)
                self._futures.clear()
        finally:
            if self.run_id is not None:
                from casewatch.adapters.kafka.replay_marking import send_replay_end, unmark_producer
                producer = self.publisher.producer
                unmark_producer(producer)
                try:
                    send_replay_end(producer, self.publisher.settings.events_topic, self.run_id)
                except Exception:  # noqa: BLE001 - the engine ends the run after its replay silence
                    self.summary.notes["replay_end_not_sent"] += 1
            self.publisher.close()
