"""The backfill's OpenMetrics output for a small seeded authority, as one text: every weekly
figures file, then the compressed-line file the rule evaluation reads, each after a ``## <name>``
line. tests/data/backfill/small_authority_openmetrics.txt.gz holds this text as the backfill made
it before it was made faster (tests/data/backfill/README.md says how), and
tests/unit/adapters/prometheus/test_backfill_output.py checks the current code makes the same."""
from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

# A small authority (a tenth of the demo's children), seeded, with the demo's profile; 24 days of
# figures: four files, the last one shorter than a week.
SMALL_AUTHORITY = {"la_code": "E06000004", "population": 4500, "seed": 3, "profile": "stockton",
                   "history_start": date(2025, 10, 1), "first": date(2026, 10, 10), "last": date(2026, 11, 2)}
LABELS = {"job": "casewatch-engine", "instance": "127.0.0.1:29100"}


def backfill_openmetrics_text() -> str:
    from casewatch.adapters.prometheus.backfill import write_openmetrics_days
    from casewatch.adapters.prometheus.exposition import bounded_label_values
    from casewatch.bootstrap import make_calendar
    from casewatch.config import Settings
    from casewatch.simulation.authority import authority_events

    a = SMALL_AUTHORITY
    settings = Settings(la_codes=a["la_code"], pseudonymisation_key="backfill-fixture-key-0123456789abcdef")
    events = list(authority_events([a["la_code"]], a["population"], a["seed"], a["history_start"], a["last"],
                                   profile=a["profile"]))
    with tempfile.TemporaryDirectory(prefix="casewatch-backfill-fixture-") as tmp:
        raw, compressed = Path(tmp) / "raw", Path(tmp) / "compressed"
        write_openmetrics_days(events, raw, a["first"], a["last"], make_calendar(settings), extra_labels=LABELS,
                               allowed_labels=bounded_label_values(settings), compressed_dir=compressed)
        parts = [(f.name, f) for f in sorted(raw.glob("*.om"))] + [("compressed/figures.om", compressed / "figures.om")]
        return "".join(f"## {name}\n" + path.read_text(encoding="utf-8") for name, path in parts)


def write_fixture(path: Path) -> None:
    """Write :func:`backfill_openmetrics_text` gzipped to ``path`` (how the fixture was made)."""
    import gzip
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as fh:
        fh.write(backfill_openmetrics_text())


if __name__ == "__main__":
    import sys
    write_fixture(Path(sys.argv[1]))
