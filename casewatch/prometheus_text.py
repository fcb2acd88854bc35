"""The Prometheus text / OpenMetrics sample syntax casewatch writes by hand: the engine's fast
``/metrics`` rendering (casewatch/adapters/prometheus/exposition.py) and the backfill's OpenMetrics files
(casewatch/adapters/prometheus/backfill.py). Both write the same text for the same figure, the text
prometheus_client's ``generate_latest`` writes."""
from __future__ import annotations

__all__ = ["escape_label_value", "sample_value"]


def escape_label_value(value: str) -> str:
    """A label value inside its double quotes: backslash, newline and double quote escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample_value(value: float) -> str:
    """A sample's value: ``NaN``, ``+Inf``, ``-Inf``, else Python's shortest round-trip float
    (``3.0``, ``0.25``), as prometheus_client writes it."""
    value = float(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
