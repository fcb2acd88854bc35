"""`casewatch backfill-prometheus` end to end: a seeded history -> OpenMetrics -> promtool blocks,
the recording rules evaluated over them -> a real Prometheus started on those blocks answers, for
a day in the past, the value counted directly from the events file, for a raw figure and for a
recorded ratio, on series that carry the labels the engine's scrape adds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.kafka_topics import read_records
from tests.support.ports import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def casewatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "casewatch.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def query(base: str, expr: str, at: float) -> list:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr, 'time': str(at)})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success"
    return body["data"]["result"]


def test_backfilled_blocks_answer_past_days(tmp_path):
    events_file = tmp_path / "history.jsonl"
    done = casewatch("simulate", "--la", "E06000004", "--population", "6000", "--seed", "4",
                     "--history-years", "0.5", "--until", "2025-06-30", "--out", str(events_file))
    assert done.returncode == 0, done.stderr[-2000:]
    blocks = tmp_path / "blocks"
    done = casewatch("backfill-prometheus", "--events", str(events_file), "--out", str(blocks),
                     "--from-date", "2025-04-01", "--to-date", "2025-06-30", "--instance", "127.0.0.1:39999")
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(p.is_dir() for p in blocks.iterdir())

    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    day = date(2025, 5, 14)
    first = (day - timedelta(days=27)).isoformat()
    referrals_28d = sum(1 for e in events if e["event_type"] == "referral.received"
                        and first <= e["referral_date"] <= day.isoformat())
    twelve_months_ago = "2024-05-14"   # (day - 12 months, day]
    s47_12m = sum(1 for e in events if e["event_type"] == "s47.started"
                  and twelve_months_ago < e["start_date"] <= day.isoformat())
    assert referrals_28d > 0 and s47_12m > 0

    # Re-referral (docs/definitions.md, CIN census): a referral within 12 months of a previous
    # referral of the same child (earlier referral dated on or after this one minus 12 calendar
    # months); the 12-month window is (day - 12 months, day].
    def minus_12_months(d: date) -> date:
        try:
            return d.replace(year=d.year - 1)
        except ValueError:  # 29 February
            return d.replace(year=d.year - 1, day=28)
    referral_dates: dict[str, list[date]] = {}
    for e in events:
        if e["event_type"] == "referral.received":
            referral_dates.setdefault(e["child_ref"], []).append(date.fromisoformat(e["referral_date"]))
    in_window = [(child, r) for child, dates in referral_dates.items() for r in dates
                 if minus_12_months(day) < r <= day]
    rereferrals = sum(1 for child, r in in_window
                      if any(minus_12_months(r) <= earlier < r for earlier in referral_dates[child]))
    assert rereferrals > 0

    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/prometheus", f"--config.file={config}", f"--storage.tsdb.path={blocks}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=5y"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, "prometheus exited"
                assert time.monotonic() < deadline, "prometheus never became ready"
                time.sleep(0.5)
        at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()  # 00:00 UTC
        result = query(base, 'sum(casewatch_referrals{window="28d"})', at)
        assert float(result[0]["value"][1]) == referrals_28d
        result = query(base, 'sum(casewatch_s47_started{window="12m"})', at)
        assert float(result[0]["value"][1]) == s47_12m
        # the labels Prometheus's scrape of the engine adds, so the live series continue these
        result = query(base, 'casewatch_referrals{window="28d"}', at)
        assert {(r["metric"]["job"], r["metric"]["instance"]) for r in result} == {("casewatch-engine", "127.0.0.1:39999")}
        # a recording rule, evaluated over the backfilled figures
        result = query(base, 'casewatch:rereferral:ratio_la{la="E06000004",window="12m"}', at)
        assert float(result[0]["value"][1]) == pytest.approx(rereferrals / len(in_window), abs=1e-12)
        # one point a day, the first day through the last, and none outside
        result = query(base, 'casewatch:rereferral:ratio_la{la="E06000004",window="12m"}[200d]',
                       datetime(2025, 7, 30, tzinfo=timezone.utc).timestamp())
        stamps = [float(t) for t, _ in result[0]["values"]]
        assert stamps == [datetime(2025, 4, 1, tzinfo=timezone.utc).timestamp() + i * 86400 for i in range(91)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _start_prometheus(data_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    config = tmp_path / "prometheus-history.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=5y"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/-/ready", timeout=2).read()
            return proc, base
        except OSError:
            assert proc.poll() is None, "prometheus exited"
            assert time.monotonic() < deadline, "prometheus never became ready"
            time.sleep(0.5)


def test_history_load_publishes_one_replay_run_and_backfills(local_stack, tmp_path):
    """`casewatch history load`: the valid events reach Kafka as one replay-marked run ending with
    a replay-end on every partition, the invalid one is rejected and named in the summary, and the
    Prometheus data dir answers a past day's figure counted from the file."""
    from casewatch.adapters.kafka.replay_marking import CONTROL_HEADER, REPLAY_END, REPLAY_HEADER
    from casewatch.stack.components import settings_env
    from casewatch.adapters.kafka.topics import ensure_topics

    settings = local_stack.settings_for()
    ensure_topics(settings)
    env = dict(os.environ)
    env.update(settings_env(settings))
    until = date.today() - timedelta(days=1)
    events_file = tmp_path / "history.jsonl"
    made = subprocess.run([sys.executable, "-m", "casewatch.cli", "simulate", "--la", "E06000004",
                           "--population", "3000", "--seed", "7", "--history-years", "0.3",
                           "--until", until.isoformat(), "--out", str(events_file)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text(json.dumps({"event_type": "referral.received", "la_code": "E06000004"}) + "\n")
    data_dir = tmp_path / "prometheus-data"
    first = until - timedelta(days=40)
    done = subprocess.run([sys.executable, "-m", "casewatch.cli", "history", "load", str(events_file), str(bad_file),
                           "--prometheus-data", str(data_dir), "--instance", "127.0.0.1:39998", "--no-start",
                           "--from-date", first.isoformat(), "--to-date", until.isoformat()],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]   # one record rejected
    assert "history load summary" in done.stdout
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert f"valid events       {len(events)}" in done.stdout
    assert "rejected           1" in done.stdout

    records = read_records(settings.bootstrap, settings.events_topic)
    control = [r for r in records if dict(r.headers).get(CONTROL_HEADER) == REPLAY_END]
    data = [r for r in records if CONTROL_HEADER not in dict(r.headers)]
    runs = {dict(r.headers).get(REPLAY_HEADER) for r in records}
    assert len(runs) == 1 and None not in runs, "every record carries the one run's replay header"
    assert sorted(r.partition for r in control) == list(range(settings.partitions))
    assert sum(len(json.loads(r.value)) for r in data) == len(events)
    assert all(max(r.offset for r in data if r.partition == c.partition) < c.offset
               for c in control if any(r.partition == c.partition for r in data)), "the end marker comes last"

    day = until - timedelta(days=3)
    referrals_28d = sum(1 for e in events if e["event_type"] == "referral.received"
                        and (day - timedelta(days=27)).isoformat() <= e["referral_date"] <= day.isoformat())
    proc, base = _start_prometheus(data_dir, tmp_path)
    try:
        at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
        result = query(base, 'sum(casewatch_referrals{window="28d",job="casewatch-engine",instance="127.0.0.1:39998"})', at)
        assert float(result[0]["value"][1]) == referrals_28d
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # Loading it again: the same stable ids, and nothing left to backfill.
    again = subprocess.run([sys.executable, "-m", "casewatch.cli", "history", "load", str(events_file),
                            "--prometheus-data", str(data_dir), "--no-start", "--skip-kafka",
                            "--from-date", first.isoformat(), "--to-date", until.isoformat()],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to backfill" in again.stdout


@pytest.mark.parametrize("args, fix", [
    (["history", "load", "no-such-file.jsonl"], "give the paths of JSON-lines or CSV event files"),
    (["history", "load", "README.md", "--from-date", "2025-02-01", "--to-date", "2025-01-01"],
     "give a first day on or before the last"),
    (["backfill-prometheus", "--events", "no-such-file.jsonl", "--out", "x"], "give --events the JSON-lines"),
])
def test_a_history_cli_mistake_is_one_sentence_with_the_fix(args, fix):
    done = casewatch(*args)
    assert done.returncode == 2
    assert fix in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_backfill_counts_in_the_configured_working_day_calendar(tmp_path):
    """CASEWATCH_EXTRA_HOLIDAYS reaches the backfill (the engine's calendar): a referral decision
    is in time when made within 1 working day of the referral (CIN census / Working Together);
    with every weekday of the six weeks before the day declared a holiday no working day passes,
    so every decision in the 28 days is in time, while with the ordinary calendar some are late."""
    events_file = tmp_path / "history.jsonl"
    made = casewatch("simulate", "--la", "E06000004", "--population", "6000", "--seed", "5",
                     "--history-years", "0.25", "--until", "2025-06-30", "--out", str(events_file))
    assert made.returncode == 0, made.stderr[-2000:]
    day = date(2025, 6, 30)
    holidays = [day - timedelta(days=i) for i in range(42) if (day - timedelta(days=i)).weekday() < 5]

    def decisions(extra_holidays: str, name: str) -> tuple[float, float]:
        blocks = tmp_path / name
        env = dict(os.environ, CASEWATCH_EXTRA_HOLIDAYS=extra_holidays)
        done = subprocess.run([sys.executable, "-m", "casewatch.cli", "backfill-prometheus", "--events",
                               str(events_file), "--out", str(blocks), "--from-date", day.isoformat(),
                               "--to-date", day.isoformat()],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        proc, base = _start_prometheus(blocks, tmp_path)
        try:
            at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
            made = query(base, 'sum(casewatch_referral_decisions{window="28d"})', at)
            in_time = query(base, 'sum(casewatch_referral_decisions_in_time{window="28d"})', at)
            return float(made[0]["value"][1]), float(in_time[0]["value"][1])
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    made, in_time = decisions("", "ordinary")
    assert 0 < in_time < made
    made_h, in_time_h = decisions(",".join(d.isoformat() for d in holidays), "holidays")
    assert made_h == made and in_time_h == made_h


def test_the_backfill_default_calendar_is_the_configured_one(tmp_path, monkeypatch):
    """Without a calendar passed in, the backfill still counts in the deployment's calendar
    (casewatch.bootstrap.make_calendar of the settings), never a bare England calendar: an extra
    holiday on each weekday before the day makes every referral decision of the 28 days in time."""
    from casewatch.config import get_settings
    from casewatch.simulation.authority import authority_events
    from casewatch.adapters.prometheus.backfill import write_openmetrics

    day = date(2025, 6, 30)
    events = list(authority_events(["E06000004"], 6000, 5, date(2025, 3, 1), day, warmup_years=0))
    holidays = [day - timedelta(days=i) for i in range(42) if (day - timedelta(days=i)).weekday() < 5]

    def decisions(extra: str, name: str) -> tuple[float, float]:
        monkeypatch.setenv("CASEWATCH_EXTRA_HOLIDAYS", extra)
        get_settings.cache_clear()
        out = tmp_path / f"{name}.om"
        write_openmetrics(events, out, day, day)
        totals = {"casewatch_referral_decisions": 0.0, "casewatch_referral_decisions_in_time": 0.0}
        for line in out.read_text().splitlines():
            name_, _, rest = line.partition("{")
            if name_ in totals and 'window="28d"' in rest:
                totals[name_] += float(rest.rsplit("} ", 1)[1].split()[0])
        return totals["casewatch_referral_decisions"], totals["casewatch_referral_decisions_in_time"]

    try:
        made, in_time = decisions("", "ordinary")
        assert 0 < in_time < made
        made_h, in_time_h = decisions(",".join(d.isoformat() for d in holidays), "holidays")
        assert made_h == made and in_time_h == made_h
    finally:
        get_settings.cache_clear()
