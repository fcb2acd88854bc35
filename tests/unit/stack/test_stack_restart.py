"""What a part was started with is kept as digests in its pid file (never a value), `stack up`
leaves a part whose settings changed alone and names it, and `restart` starts it with the new ones.
The part here is the stack's real mailbox (aiosmtpd), which starts in a second."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from casewatch.config import Settings
from casewatch.stack import components as c
from casewatch.stack.commands import _stale_sentence
from casewatch.stack.manager import StackManager
from casewatch.stack.processes import ProcessTable, changed_settings, settings_digests
from tests.conftest import free_port


def test_pid_files_keep_digests_of_the_settings_never_their_values(tmp_path):
    table = ProcessTable(tmp_path)
    secret = "a-key-nobody-may-read-0123456789"
    proc = table.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"],
                       settings={"CASEWATCH_PSEUDONYMISATION_KEY": secret, "CASEWATCH_FIXED_TODAY": "2026-04-01"})
    try:
        text = (tmp_path / "run" / "sleeper.json").read_text()
        assert secret not in text and "2026-04-01" not in text
        recorded = json.loads(text)["settings"]
        assert set(recorded) == {"CASEWATCH_PSEUDONYMISATION_KEY", "CASEWATCH_FIXED_TODAY"}
        assert table.get("sleeper").settings == recorded and proc.alive
        same = {"CASEWATCH_PSEUDONYMISATION_KEY": secret, "CASEWATCH_FIXED_TODAY": "2026-04-01"}
        assert changed_settings(recorded, same) == []
        assert changed_settings(recorded, {**same, "CASEWATCH_FIXED_TODAY": "2026-04-02"}) == ["CASEWATCH_FIXED_TODAY"]
        assert changed_settings(recorded, {**same, "CASEWATCH_PSEUDONYMISATION_KEY": "another"}) == \
            ["CASEWATCH_PSEUDONYMISATION_KEY"]
        # a variable set or unset since is a change too
        assert changed_settings(recorded, {"CASEWATCH_PSEUDONYMISATION_KEY": secret}) == ["CASEWATCH_FIXED_TODAY"]
        assert changed_settings(recorded, {**same, "CASEWATCH_LA_CODES": "E06000005"}) == ["CASEWATCH_LA_CODES"]
        # a pid file from before digests were kept: nothing to compare with, nothing reported
        assert changed_settings(None, same) == []
    finally:
        table.stop("sleeper", kill=True)


def test_digests_differ_by_variable_not_only_by_value():
    digests = settings_digests({"CASEWATCH_A": "1", "CASEWATCH_B": "1"})
    assert digests["CASEWATCH_A"] != digests["CASEWATCH_B"]


def test_what_changed_is_one_sentence_naming_the_parts_and_restart():
    assert _stale_sentence({"engine": ["CASEWATCH_FIXED_TODAY"]}) == (
        "engine runs with settings changed since it started (CASEWATCH_FIXED_TODAY): "
        "`casewatch stack restart engine` applies them")
    assert _stale_sentence({"ingest": ["CASEWATCH_LA_CODES"], "engine": ["CASEWATCH_FIXED_TODAY", "CASEWATCH_LA_CODES"],
                            "notifier": [f"CASEWATCH_V{i}" for i in range(4)]}) == (
        "notifier, engine and ingest run with settings changed since they started (CASEWATCH_FIXED_TODAY, "
        "CASEWATCH_LA_CODES, CASEWATCH_V0, CASEWATCH_V1 and 2 more): "
        "`casewatch stack restart notifier engine ingest` applies them")  # in start order


@pytest.fixture
def mailbox_settings(tmp_path):
    return Settings(state_dir=tmp_path / "state", smtp_port=free_port())


def test_a_changed_port_is_named_by_up_and_applied_by_restart(mailbox_settings):
    logged: list[str] = []
    first = StackManager(mailbox_settings, parts=["mailbox"], demo=False, log=logged.append)
    try:
        first.up()
        pid = first.processes.get("mailbox").pid
        assert c.port_open("127.0.0.1", mailbox_settings.smtp_port)

        moved = mailbox_settings.model_copy(update={"smtp_port": free_port()})
        again = StackManager(moved, parts=["mailbox"], demo=False, log=logged.append)
        again.up()
        assert again.stale == {"mailbox": ["CASEWATCH_SMTP_PORT"]}
        assert again.processes.get("mailbox").pid == pid  # left alone
        assert "running with changed settings (CASEWATCH_SMTP_PORT)" in logged[-1]
        [row] = again.status()
        assert "started with other CASEWATCH_SMTP_PORT: `casewatch stack restart mailbox`" in row[3]

        again.restart()
        assert again.processes.get("mailbox").pid != pid
        assert c.port_open("127.0.0.1", moved.smtp_port)
        assert not c.port_open("127.0.0.1", mailbox_settings.smtp_port)

        settled = StackManager(moved, parts=["mailbox"], demo=False, log=logged.append)
        settled.up()
        assert settled.stale == {} and "already running" in logged[-1]
    finally:
        first.down()
    assert ProcessTable(Path(mailbox_settings.state_dir)).all() == []
