"""Where simulated or replayed events go: a JSON-lines file, or Kafka through the ingest
publishing path (pseudonymised at the edge, exactly as ``casewatch load`` does).

Also the real-time pacing: events are released when the simulated clock (wall clock times a
speed-up factor) passes their ``recorded_at``.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from casewatch.config import Settings
from casewatch.simulation.demo import make_publisher


class EventSink(Protocol):
    def send(self, event: dict) -> None: ...
    def close(self) -> None: ...


class FileSink:
    """One event per line, UTF-8 JSON."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8")
        self.count = 0

    def send(self, event: dict) -> None:
        self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.count += 1

    def close(self) -> None:
        self._fh.close()


class KafkaSink:
    """Publishes through ``casewatch.adapters.kafka.publisher`` with ``casewatch.edge.pseudonymise``: the
    same path as the ingest edge and the bulk loader, so raw case-system ids never reach Kafka.

    With ``replay_kind`` (e.g. ``"replay"``) the events are one replay run
    (:mod:`casewatch.adapters.kafka.replay_marking`): each carries the run's ``casewatch-replay`` header, and
    :meth:`end_replay` (called by :meth:`close` at the latest) sends the run's replay-end to every
    partition, so the engine reports itself catching up, and publishes no indicator, until then."""

    def __init__(self, settings: Settings, source_system: str = "simulator", replay_kind: str | None = None):
        self._settings = settings
        self._publisher = make_publisher(settings, source_system)
        self.count = 0
        self.replay_run: str | None = None
        if replay_kind:
            self.start_replay(replay_kind)

    @property
    def publisher(self):
        return self._publisher

    def start_replay(self, kind: str = "replay") -> str:
        """Mark what is sent from now on as one replay run; returns its id."""
        from casewatch.adapters.kafka.replay_marking import mark_producer, new_run_id
        self.end_replay()
        self.replay_run = new_run_id(kind)
        mark_producer(self._publisher.producer, self.replay_run, self._settings.events_topic)
        return self.replay_run

    def end_replay(self) -> None:
        """Send the current replay run's end marker to every partition (nothing without a run)."""
        from casewatch.adapters.kafka.replay_marking import send_replay_end, unmark_producer
        run, self.replay_run = self.replay_run, None
        if run is None:
            return
        producer = self._publisher.producer
        unmark_producer(producer)
        send_replay_end(producer, self._settings.events_topic, run)

    def send(self, event: dict) -> None:
        self._publisher.send(event)
        self.count += 1

    def close(self) -> None:
        import sys

        from kafka.errors import KafkaError
        try:
            self.end_replay()
        except (KafkaError, ValueError) as exc:
            print(f"WARNING: the replay's end marker could not be sent ({type(exc).__name__}); the "
                  "engine takes the replay as ended once it has had no record of it for "
                  "CASEWATCH_ENGINE_REPLAY_SILENCE_SECONDS", file=sys.stderr)
        finally:
            self._publisher.close()


def read_events(path: Path) -> Iterator[dict]:
    """Events of a JSON-lines file (blank lines skipped). A line that is not a JSON object stops
    the read with its line number only (never its content)."""
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"line {number} of the events file is not valid JSON") from None
            if not isinstance(event, dict):
                raise ValueError(f"line {number} of the events file is not a JSON object")
            yield event


def paced(events: Iterable[dict], speed: float, released_before: datetime | None = None,
          duration: float | None = None, clock=time.monotonic, sleep=time.sleep,
          now: datetime | None = None) -> Iterator[dict]:
    """Release events at wall-clock pace times ``speed``. Events whose ``recorded_at`` is before
    ``released_before`` (the history part) go out at once. Stops after ``duration`` seconds."""
    from datetime import timezone
    origin_wall = clock()
    origin_sim = now or datetime.now(timezone.utc)
    for event in events:
        at = datetime.fromisoformat(event["recorded_at"])
        if released_before is None or at >= released_before:
            while True:
                elapsed = clock() - origin_wall
                if duration is not None and elapsed >= duration:
                    return
                wait = ((at - origin_sim).total_seconds() / speed) - elapsed
                if wait <= 0:
                    break
                sleep(min(wait, 1.0, max(0.0, duration - elapsed) if duration is not None else 1.0))
        elif duration is not None and clock() - origin_wall >= duration:
            return
        yield event
