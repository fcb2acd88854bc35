"""``casewatch dlq list | show | replay`` against a real Kafka."""
from __future__ import annotations

import json

import pytest

from casewatch import cli
from casewatch.config import get_settings
from schemas import parse_wire
from casewatch.adapters.kafka.publisher import EventPublisher
from casewatch.adapters.kafka.topics import ensure_topics

from tests.integration.test_ingest_kafka import KEY, RAW_PREFIX, raw_example, read_topic, topic_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(monkeypatch):
    def use(settings, teams):
        for name, value in {"KAFKA_BOOTSTRAP": settings.bootstrap, "EVENTS_TOPIC": settings.events_topic,
                            "DEADLETTER_TOPIC": settings.deadletter_topic, "PSEUDONYMISATION_KEY": KEY,
                            "TEAMS": teams, "LA_CODES": "E06000004"}.items():
            monkeypatch.setenv(f"CASEWATCH_{name}", value)
        get_settings.cache_clear()
    yield use
    get_settings.cache_clear()


def test_list_show_and_replay_after_the_team_is_configured(kafka_bootstrap, cli_env, capsys):
    s = topic_settings(kafka_bootstrap, teams="cp_1", la_codes="E06000004")
    ensure_topics(s)
    publisher = EventPublisher(s, source_system="mosaic", source="ingest")
    new_team = [raw_example("icpc.held", 1), raw_example("cp_plan.started", 2)]
    for event in new_team:
        event["team"] = "cp_new"
    unknown_code = raw_example("lac.started", 3)
    unknown_code["placement"] = "Q9"
    good = raw_example("lac.ended", 4)
    try:
        for raw in [*new_team, unknown_code, good]:
            publisher.send_and_wait(raw)
        publisher.wait([publisher.dead_letter(publisher.pseudonymiser.opaque(b"\xff\xfe not json"),
                                              [{"loc": "", "msg": "not JSON", "type": "json_invalid"}], "decode")])
    finally:
        publisher.close()

    cli_env(s, "cp_1")
    assert cli.main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1] == f"4 dead letter(s) in {s.deadletter_topic}"
    assert "icpc.held" in lines[1] and "team (team)" in lines[1]
    assert "lac.started" in lines[3] and "code_list (placement)" in lines[3]
    assert RAW_PREFIX not in out

    assert cli.main(["dlq", "show", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["payload"]["event_type"] == "lac.started"
    assert shown["errors"][0]["loc"] == "placement"
    assert cli.main(["dlq", "show", "9"]) == 1
    capsys.readouterr()

    # nothing passes yet: replay publishes nothing
    assert cli.main(["dlq", "replay"]) == 0
    assert "replayed 0 that now pass, 3 still fail; 1 from other stages or sources skipped" in capsys.readouterr().out

    # the team is configured now: the two events of cp_new pass, the unknown placement code still fails
    cli_env(s, "cp_1,cp_new")
    assert cli.main(["dlq", "replay"]) == 0
    assert "replayed 2 that now pass, 1 still fail" in capsys.readouterr().out
    events = [parse_wire(v) for _, v in read_topic(s, s.events_topic)]
    assert sorted(e.event_type for e in events if e.team == "cp_new") == ["cp_plan.started", "icpc.held"]
    replayed = {e.event_id: e for e in events if e.team == "cp_new"}
    assert set(replayed) == {new_team[0]["event_id"], new_team[1]["event_id"]}
    assert {e.source_system for e in replayed.values()} == {"mosaic"}
    assert len(events) == 3  # the good one plus the two replayed
