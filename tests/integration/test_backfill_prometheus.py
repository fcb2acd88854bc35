"""`casewatch backfill-prometheus` end to end: a seeded history -> OpenMetrics -> promtool blocks,
the recording rules evaluated over them -> a real Prometheus started on those blocks answers, for
a day in the past, the value counted directly from the events file, for a raw figure and for a
recorded ratio, on series that carry the labels the engine's scrape adds."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
