"""The backfill writes the same OpenMetrics as before it was made faster: the text for a small
seeded authority (tests/support/backfill_fixture.py) equals the fixture the earlier code wrote
(tests/data/backfill/README.md says how), line for line: same series, labels, values, timestamps
and files, the compressed-line file of the rule evaluation included."""
from __future__ import annotations

import gzip
from pathlib import Path

from tests.support.backfill_fixture import backfill_openmetrics_text

FIXTURE = Path(__file__).resolve().parents[3] / "data" / "backfill" / "small_authority_openmetrics.txt.gz"


def test_the_backfill_writes_what_it_wrote_before_it_was_made_faster():
    expected = gzip.decompress(FIXTURE.read_bytes()).decode("utf-8").splitlines()
    got = backfill_openmetrics_text().splitlines()
    assert len(expected) > 30_000 and sum(line.startswith("## ") for line in expected) == 5
    for n, (a, b) in enumerate(zip(expected, got, strict=False)):
        assert a == b, f"line {n + 1} differs:\n  before: {a}\n  now:    {b}"
    assert len(got) == len(expected)
