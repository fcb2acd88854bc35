"""The alert rules with short durations, for tests that watch alerts fire on a real Prometheus.

``prometheus/rules/*.yml`` rewritten with every ``for:`` and ``keep_firing_for:`` set to a few
seconds and nothing else changed (expressions, catch-up gates, labels, annotations): an alert
whose expression holds for that long fires, so a test need not wait out the real 15-minute or
1-hour ``for:``. The real durations are pinned by the promtool unit tests
(prometheus/tests/for_test.yml, run by tests/unit/prometheus/test_prometheus_rules.py).
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHORT = "5s"


def short_duration_rules(dest: Path, duration: str = SHORT) -> Path:
    """prometheus/rules/*.yml written to ``dest`` with every `for:` and `keep_firing_for:` set to
    ``duration``; nothing else changes (expressions, gates, labels, annotations)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        for group in spec["groups"]:
            for rule in group["rules"]:
                for key in ("for", "keep_firing_for"):
                    if key in rule:
                        rule[key] = duration
        (dest / path.name).write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest
