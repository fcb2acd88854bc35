"""Red/amber/green marks against the thresholds of ``prometheus/rules/casewatch_thresholds.yml``
(generated from the catalogue's ``THRESHOLDS``, read by :func:`dashboards.thresholds.load_thresholds`), and how figures are
written in the packs (words as well as colours, so a black-and-white print keeps the meaning)."""
from __future__ import annotations

from dataclasses import dataclass

from casewatch.packs.suppression import NOT_APPLICABLE, NOT_AVAILABLE, ROUNDS_TO_ZERO, SUPPRESSED
from dashboards.thresholds import load_thresholds


@dataclass(frozen=True)
class Mark:
    rag: str        # red | amber | green | none
    text: str       # what the pack prints

    @property
    def css(self) -> str:
        return f"rag-{self.rag}"


NO_MARK = Mark("none", "no threshold")


def thresholds() -> dict[str, float]:
    return load_thresholds()


def mark_value(value: float | None, key: str, higher_is_better: bool | None, limits: dict[str, float],
               denominator: float | None = None) -> Mark:
    if not key:
        return NO_MARK
    if value is None:
        return Mark("none", "no data")
    if denominator is not None and denominator < limits.get("min_denominator", 0):
        return Mark("none", "too few to mark")
    warn, page = limits.get(f"{key}_warn"), limits.get(f"{key}_page")
    worse = (lambda v, t: v < t) if higher_is_better else (lambda v, t: v > t)
    if page is not None and worse(value, page):
        return Mark("red", "Red")
    if warn is not None and worse(value, warn):
        return Mark("amber", "Amber")
    return Mark("green", "Green")


def mark_unallocated(by_type: dict[str, float] | None) -> Mark:
    """O16: any unallocated CP case pages (red); any other unallocated case warns (amber)."""
    if by_type is None:
        return Mark("none", "no data")
    if by_type.get("cp", 0) > 0:
        return Mark("red", "Red")
    if any(v > 0 for v in by_type.values()):
        return Mark("amber", "Amber")
    return Mark("green", "Green")


def fmt(value, *, percent: bool = False, decimals: int = 0) -> str:
    """A figure as printed: a symbol stays a symbol; None is ``x`` (not available)."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, str):
        return value
    if percent:
        if 0 < value < 0.0005:
            return ROUNDS_TO_ZERO
        return f"{value * 100:.1f}%"
    if decimals:
        return f"{value:,.{decimals}f}"
    return f"{value:,.0f}"


def fmt_reference(value: float | None, percent: bool) -> str:
    if value is None:
        return "none published"
    return fmt(value, percent=percent, decimals=1 if (not percent and value != int(value)) else 0)


__all__ = ["Mark", "NO_MARK", "mark_value", "mark_unallocated", "fmt", "fmt_reference", "thresholds",
           "SUPPRESSED", "NOT_APPLICABLE", "NOT_AVAILABLE"]
