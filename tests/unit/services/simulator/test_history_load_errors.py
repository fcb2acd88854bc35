"""``casewatch history load`` when Kafka will not take the history: the simulator's ``KafkaDown``
(services/simulator/exceptions.py) becomes one sentence with the fix and exit code 1, and nothing
after the publishing step runs. Kafka is a fake that refuses (no broker, no Prometheus)."""
from __future__ import annotations

import json
import os

from casewatch.adapters.kafka import topics
from casewatch.adapters.kafka.exceptions import KafkaUnavailable
from casewatch.cli import main
from casewatch.config import get_settings
from schemas.examples import valid_examples


def test_kafka_refusing_the_history_is_one_sentence_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env
    for name in [n for n in list(os.environ) if n.startswith("CASEWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASEWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CASEWATCH_PSEUDONYMISATION_KEY", "history-load-test-key-0123456789abcdef")
    monkeypatch.setenv("CASEWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    asked = []

    def refuse(settings):
        asked.append(settings.bootstrap)
        raise KafkaUnavailable("no broker")

    monkeypatch.setattr(topics, "ensure_topics", refuse)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in valid_examples().values()), encoding="utf-8")
    prometheus_data = tmp_path / "prometheus-data"
    get_settings.cache_clear()
    try:
        code = main(["history", "load", str(events), "--prometheus-data", str(prometheus_data), "--no-start"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert asked == ["127.0.0.1:9"]
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "casewatch history load: Kafka at 127.0.0.1:9 is not reachable (KafkaUnavailable); start it "
        "(`casewatch stack up --only kafka`) or set CASEWATCH_KAFKA_BOOTSTRAP, then run again.")
    assert not prometheus_data.exists()  # the backfill after the publishing step never ran
